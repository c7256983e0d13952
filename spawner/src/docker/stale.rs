//! What a spawner that died (SIGKILL, a crash, a power cut) left behind, found and removed by the next
//! run on the same state directory: container directories and their cgroups. The container itself
//! died with its spawner (parent-death signal on its first process; on cgroup v2 the cgroup is
//! killed whole when removed).
//!
//! A live run holds an exclusive flock on its container directory for as long as it lives; the
//! kernel drops it when the process dies, however it dies. A directory is created under a dot-name,
//! locked, and only then renamed into place, so a starting run is never taken for a dead one.
//!
//! A container's cgroup exists only while its directory does: the directory is in place before the
//! cgroup is made, and a run removes it only after the cgroup is gone (it keeps the directory when
//! the cgroup cannot be removed). So the cgroups are looked through only when a dead run's directory
//! is found, not on every run.

use rustix::fd::OwnedFd;
use rustix::fs::{flock, FlockOperation, Mode, OFlags};
use std::path::Path;

/// Marks a container directory that is meant to outlive its run (`--keep`, `--name`).
pub const KEEP_MARKER: &str = "keep";
/// In a kept directory: its run removed its cgroup, so there is nothing of it to look for.
pub const CGROUP_GONE_MARKER: &str = "cgroup-removed";

/// Locks `dir` for this run; fails with EWOULDBLOCK when a live run holds it, and with ELOOP or
/// ENOTDIR when `dir` is not a directory of its own (a symlink is never followed: what the cleanup
/// below removes must be in `containers/`).
pub fn claim(dir: &Path) -> rustix::io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::open(dir, flags, Mode::empty())?;
    flock(&fd, FlockOperation::NonBlockingLockExclusive)?;
    Ok(fd)
}

/// The cgroup name prefix for containers of the state directory `state_dir`: runs on other state
/// directories (other users, tests) never touch each other's cgroups.
pub fn cgroup_prefix(state_dir: &Path) -> String {
    // FNV-1a over the path: stable, short, no dependency.
    let hash = state_dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3));
    format!("spawner-{:08x}-", hash as u32)
}

/// Removes the container directories in `containers` whose runs are dead, then, if there were any,
/// the cgroups of this state directory that no live run owns.
pub fn remove_stale(containers: &Path, cgroup_prefix: &str, cgroup_parent: Option<&Path>) {
    let Ok(entries) = std::fs::read_dir(containers) else { return };
    let mut dead_found = false;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with('.') {
            // A run between mkdir and its lock holds it for microseconds: only old ones are dead.
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 60));
            if !(old && claim(&path).is_ok()) {
                continue;
            }
        } else {
            match claim(&path) {
                Err(_) => continue,
                // Kept; its cgroup may be left if its run died before removing it.
                Ok(_lock) if path.join(KEEP_MARKER).exists() => {
                    dead_found |= !path.join(CGROUP_GONE_MARKER).exists();
                    continue;
                }
                Ok(_lock) => {}
            }
        }
        dead_found = true;
        match std::fs::remove_dir_all(&path) {
            Ok(()) => log::info!("removed {} left by a spawner that died", path.display()),
            Err(e) => log::warn!("remove stale {}: {e}", path.display()),
        }
    }
    if !dead_found {
        return;
    }
    // Checked when each cgroup is looked at, not from the scan above: a run that started since has
    // its directory in place and locked before it creates its cgroup.
    let live = |dir: &Path| dir.exists() && claim(dir).is_err();
    let listed = std::cell::OnceCell::new();
    let is_alive = |cgroup: &str| {
        cgroup.strip_prefix(cgroup_prefix).is_some_and(|name| {
            // Named after its container; or after the name a running container had before
            // `rename`, which its state records.
            live(&containers.join(name))
                || listed
                    .get_or_init(|| super::record::list(containers))
                    .iter()
                    .any(|c| c.state.cgroup.as_ref().is_some_and(|l| l.name == cgroup) && live(&c.dir))
        })
    };
    match crate::cgroup::remove_stale(cgroup_parent, cgroup_prefix, is_alive) {
        Ok(removed) => {
            for name in removed {
                log::info!("removed cgroup {name} left by a spawner that died");
            }
        }
        Err(e) => log::debug!("looking for stale cgroups: {e}"),
    }
}
