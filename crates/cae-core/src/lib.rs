//! Contractive autoencoder model and exact Jacobian penalty (work in progress).
