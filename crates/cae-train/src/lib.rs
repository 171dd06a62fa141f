//! Training loop for contractive autoencoders (work in progress).
