//! The state directory (`--root`) as spawner may trust it: a real directory (not a symlink) owned
//! by the user spawner runs as (root) and writable by nobody else, so no other host user can
//! plant a symlink or a layer in it; and its `containers/` directory closed to everyone else, so
//! a setuid file a container wrote in its upper directory cannot be run by a host user
//! (CVE-2021-41091's class). The layer store below it keeps its own modes (see `store`).

use super::RunError;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Creates the state directory if needed, checks it, and returns its `containers/` directory
/// (created, or tightened to 0700 if an older spawner left it open).
pub fn prepare(state_dir: &Path) -> Result<PathBuf, RunError> {
    let io = |what: &str, p: &Path, e: std::io::Error| RunError::msg(format!("{what} {}: {e}", p.display()));
    if std::fs::symlink_metadata(state_dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(state_dir)
            .map_err(|e| io("create", state_dir, e))?;
    }
    check(state_dir, 0o022)?;
    let containers = state_dir.join("containers");
    match std::fs::DirBuilder::new().mode(0o700).create(&containers) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io("create", &containers, e)),
    }
    let meta = check(&containers, 0)?;
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(&containers, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io("chmod", &containers, e))?;
    }
    Ok(containers)
}

/// `dir` must be a directory, not a symlink, owned by this user, with none of `forbidden` mode bits.
pub fn check(dir: &Path, forbidden: u32) -> Result<std::fs::Metadata, RunError> {
    let refuse =
        |why: String| RunError::msg(format!("state directory {}: {why}: refusing to use it", dir.display()));
    let meta = std::fs::symlink_metadata(dir).map_err(|e| refuse(e.to_string()))?;
    if meta.file_type().is_symlink() {
        return Err(refuse("is a symlink".into()));
    }
    if !meta.is_dir() {
        return Err(refuse("is not a directory".into()));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(refuse(format!("is owned by uid {}, not {me}", meta.uid())));
    }
    if meta.mode() & forbidden != 0 {
        return Err(refuse(format!("is writable by other users (mode {:o})", meta.mode() & 0o7777)));
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_or_foreign_state_dirs_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("state");
        let containers = prepare(&root).unwrap();
        assert_eq!(std::fs::metadata(&containers).unwrap().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(&root).unwrap().mode() & 0o777, 0o711);
        // An older state dir's containers/ is closed on the next run.
        std::fs::set_permissions(&containers, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare(&root).unwrap();
        assert_eq!(std::fs::metadata(&containers).unwrap().mode() & 0o777, 0o700);

        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = prepare(&root).unwrap_err().to_string();
        assert!(e.contains("writable by other users (mode 777)"), "{e}");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();

        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&root, &link).unwrap();
        assert!(prepare(&link).unwrap_err().to_string().contains("is a symlink"));

        std::fs::remove_dir(&containers).unwrap();
        std::os::unix::fs::symlink("/", &containers).unwrap();
        assert!(prepare(&root).unwrap_err().to_string().contains("containers: is a symlink"));

        let other = tmp.path().join("other");
        std::fs::create_dir(&other).unwrap();
        rustix::fs::chown(&other, Some(rustix::process::Uid::from_raw(4242)), None).unwrap();
        assert!(prepare(&other).unwrap_err().to_string().contains("owned by uid 4242"));
    }
}
