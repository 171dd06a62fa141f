//! Logging through `tracing`: `-q` / `-v` / `-vv` or `RUST_LOG` set the level; colours only on a
//! terminal.
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Logs go to stderr; `RUST_LOG` overrides the level chosen by -q / -v.
pub fn init(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only where a terminal will render them, not in a log file or a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .compact()
        .init();
}
