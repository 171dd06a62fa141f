//! The `cae-cli` binary end to end, as one test binary (one link, one place for the helpers that run
//! it): each module tests one part of the command line.
mod commands;
mod crash;
mod eval;
mod helpers;
mod messages;
mod mnist_encode;
mod own_data;
mod own_eval;
mod own_presets;
mod pipeline;
mod published_weights;
mod resume;
mod squared_error;
mod tables;
