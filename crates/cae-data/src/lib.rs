//! MNIST and IDX datasets: download, verify, cache, parse, batch (work in progress).
