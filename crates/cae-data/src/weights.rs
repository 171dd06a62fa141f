//! Where fetched model weights live on this machine: the one answer that `cargo xtask
//! fetch-weights` (which installs there) and `cae-cli` (which looks there when no `--weights` is
//! given) both ask for.

use std::ffi::OsString;
use std::path::PathBuf;

/// Environment variable that overrides the per-user weights directory.
pub const WEIGHTS_DIR_ENV: &str = "CAE_WEIGHTS_DIR";

/// The file in [`weights_dir`] that `cae-cli` uses when no `--weights` is given.
pub const INSTALLED_WEIGHTS_FILE: &str = "model.safetensors";

/// `$CAE_WEIGHTS_DIR`, else `<per-user data dir>/cae/weights` (`~/.local/share/cae/weights` on
/// Linux). `None` when neither is known (no home directory).
pub fn weights_dir() -> Option<PathBuf> {
    resolve_weights_dir(
        std::env::var_os(WEIGHTS_DIR_ENV),
        dirs::data_dir().map(|d| d.join("cae").join("weights")),
    )
}

/// [`weights_dir`] with its inputs spelled out, so the precedence can be tested without touching
/// the process environment. An empty variable counts as unset.
pub fn resolve_weights_dir(env: Option<OsString>, default: Option<PathBuf>) -> Option<PathBuf> {
    env.filter(|v| !v.is_empty()).map(PathBuf::from).or(default)
}

/// `<weights dir>/model.safetensors`: where `cargo xtask fetch-weights` installs the default
/// file and where `cae-cli` looks for it, whether or not it exists.
pub fn installed_weights_path() -> Option<PathBuf> {
    weights_dir().map(|d| d.join(INSTALLED_WEIGHTS_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_wins_unless_empty() {
        let default = Some(PathBuf::from("/home/u/.local/share/cae/weights"));
        assert_eq!(
            resolve_weights_dir(Some("/tmp/w".into()), default.clone()),
            Some(PathBuf::from("/tmp/w"))
        );
        assert_eq!(
            resolve_weights_dir(Some("".into()), default.clone()),
            default
        );
        assert_eq!(resolve_weights_dir(None, default.clone()), default);
        assert_eq!(resolve_weights_dir(None, None), None);
    }
}
