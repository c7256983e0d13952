//! Checks many fields share: absolute paths, strings that reach a syscall (and so cannot hold a
//! NUL byte, which would cut them short there), environment entries.

use super::SpecError;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `text` as a C string would carry it: refused if it has a NUL byte.
pub(super) fn no_nul(field: &str, text: &str) -> Result<(), SpecError> {
    match text.contains('\0') {
        true => Err(SpecError::invalid(field, format!("{text:?} contains a NUL byte"))),
        false => Ok(()),
    }
}

/// A path the spec says MUST be absolute, given (not empty) and without a NUL byte.
pub(super) fn absolute(field: &str, path: &Path) -> Result<PathBuf, SpecError> {
    if path.as_os_str().is_empty() {
        return Err(SpecError::invalid(field, "required, and must be an absolute path"));
    }
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(SpecError::invalid(field, format!("{path:?} contains a NUL byte")));
    }
    if !path.is_absolute() {
        return Err(SpecError::invalid(field, format!("{path:?} is not an absolute path")));
    }
    Ok(path.to_owned())
}

/// An absolute path, or one relative to the bundle directory (`root.path`, a bind mount's
/// source), as the spec allows there.
pub(super) fn in_bundle(field: &str, path: &Path, bundle: &Path) -> Result<PathBuf, SpecError> {
    if path.as_os_str().is_empty() {
        return Err(SpecError::invalid(field, "required"));
    }
    absolute(field, &bundle.join(path))
}

/// `NAME=VALUE` entries (`process.env`, a hook's `env`): the name must be there; an entry without
/// `=` would reach the program as a variable nobody can read.
pub(super) fn env(field: &str, entries: &[String]) -> Result<Vec<String>, SpecError> {
    for (i, entry) in entries.iter().enumerate() {
        let at = || format!("{field}[{i}]");
        no_nul(&at(), entry)?;
        match entry.split_once('=') {
            Some((name, _)) if !name.is_empty() => {}
            Some(_) => return Err(SpecError::invalid(at(), format!("{entry:?} has an empty name"))),
            None => return Err(SpecError::invalid(at(), format!("{entry:?} is not NAME=VALUE"))),
        }
    }
    Ok(entries.to_vec())
}

/// Strings passed as an argument vector (`process.args`, a hook's `args`).
pub(super) fn args(field: &str, args: &[String]) -> Result<Vec<String>, SpecError> {
    for (i, arg) in args.iter().enumerate() {
        no_nul(&format!("{field}[{i}]"), arg)?;
    }
    Ok(args.to_vec())
}
