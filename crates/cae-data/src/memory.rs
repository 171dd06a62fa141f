//! How much memory a dataset may take: checked against the size a file announces (an `.npy`
//! header, an image count times the image size) before anything is read, so that a dataset
//! larger than memory fails at once instead of swapping.

use std::path::Path;

use crate::error::DataError;

/// The bytes a dataset may take, and where that figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    bytes: u64,
    from: &'static str,
}

impl Budget {
    /// `limit` if given, else the memory the system says is available (`MemAvailable` on Linux);
    /// `None` (no check) when neither is known.
    pub(crate) fn new(limit: Option<u64>) -> Option<Budget> {
        match limit {
            Some(bytes) => Some(Budget {
                bytes,
                from: "the configured memory limit",
            }),
            None => available_memory().map(|bytes| Budget {
                bytes,
                from: "the memory available on this machine",
            }),
        }
    }

    /// An error naming `path` if `bytes` do not fit.
    pub(crate) fn check(budget: Option<Budget>, path: &Path, bytes: u64) -> Result<(), DataError> {
        match budget {
            Some(b) if bytes > b.bytes => Err(DataError::OverMemoryBudget {
                path: path.to_path_buf(),
                bytes,
                budget: b.bytes,
                budget_from: b.from,
            }),
            _ => Ok(()),
        }
    }
}

/// `MemAvailable` from `/proc/meminfo`, in bytes; `None` elsewhere.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&info)
}

fn parse_mem_available(info: &str) -> Option<u64> {
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_from_limit_and_meminfo() {
        let info = "MemTotal:       16000000 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(parse_mem_available(info), Some(8_192_000_000));
        assert_eq!(parse_mem_available("MemTotal: 1 kB"), None);

        let b = Budget::new(Some(1000));
        assert!(Budget::check(b, Path::new("x.npy"), 1000).is_ok());
        let err = Budget::check(b, Path::new("x.npy"), 1001).unwrap_err();
        assert!(err.to_string().contains("x.npy"), "{err}");
        assert!(err.to_string().contains("configured memory limit"), "{err}");
        assert!(Budget::check(None, Path::new("x.npy"), u64::MAX).is_ok());
    }
}
