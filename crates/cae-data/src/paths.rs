//! Where datasets live on disk: the data root (`CAE_DATA_DIR`, the per-user cache) and the
//! spellings under which an IDX file may be found in a directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Environment variable that overrides the per-user data root.
pub const DATA_DIR_ENV: &str = "CAE_DATA_DIR";

/// The directory that holds one subdirectory per named dataset: `explicit` if given, else
/// `$CAE_DATA_DIR`, else `<per-user cache dir>/cae` (`~/.cache/cae` on Linux). `None` when
/// none of those exists.
pub fn data_root(explicit: Option<&Path>) -> Option<PathBuf> {
    resolve_data_root(
        explicit,
        std::env::var_os(DATA_DIR_ENV),
        dirs::cache_dir().map(|d| d.join("cae")),
    )
}

/// [`data_root`] with its inputs spelled out, so the precedence can be tested without touching
/// the process environment.
pub fn resolve_data_root(
    explicit: Option<&Path>,
    env: Option<OsString>,
    default: Option<PathBuf>,
) -> Option<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from))
        .or(default)
}

/// Finds `name` (e.g. `train-images-idx3-ubyte`) in `dir` under any of the spellings in use:
/// with or without `.gz`, and with `.idx` for `-idx` (`train-images.idx3-ubyte`, as some
/// unpacked archives have it).
pub fn find_idx_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let dotted = name.replacen("-idx", ".idx", 1);
    [
        format!("{name}.gz"),
        name.to_string(),
        format!("{dotted}.gz"),
        dotted,
    ]
    .into_iter()
    .map(|candidate| dir.join(candidate))
    .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_root_precedence() {
        let explicit = PathBuf::from("/explicit");
        let default = Some(PathBuf::from("/home/u/.cache/cae"));
        let env = Some(OsString::from("/from-env"));
        assert_eq!(
            resolve_data_root(Some(&explicit), env.clone(), default.clone()),
            Some(explicit)
        );
        assert_eq!(
            resolve_data_root(None, env, default.clone()),
            Some(PathBuf::from("/from-env"))
        );
        // An empty variable is treated as unset, as shells make that easy to do by accident.
        assert_eq!(
            resolve_data_root(None, Some(OsString::new()), default.clone()),
            default
        );
        assert_eq!(resolve_data_root(None, None, None), None);
    }

    #[test]
    fn idx_spellings() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_idx_file(dir.path(), "train-images-idx3-ubyte"), None);
        let dotted = dir.path().join("train-images.idx3-ubyte");
        std::fs::write(&dotted, b"").unwrap();
        assert_eq!(
            find_idx_file(dir.path(), "train-images-idx3-ubyte"),
            Some(dotted)
        );
        let gz = dir.path().join("train-images-idx3-ubyte.gz");
        std::fs::write(&gz, b"").unwrap();
        assert_eq!(
            find_idx_file(dir.path(), "train-images-idx3-ubyte"),
            Some(gz)
        );
    }
}
