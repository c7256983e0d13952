//! Names on the bridge kept current. A container's /etc/hosts lists the containers already on the
//! bridge when it starts (see `dns::hosts`); each one that starts later adds its line to theirs,
//! and takes it out again when it exits (a run that died leaves its line until the peers exit, as
//! Docker's links did). Small files edited under the network lock, rather than a resolver process
//! per bridge: nothing runs between containers, and a container's lookups stay its own.
//!
//! A running container's hosts file is reached through its spawner's fd to it
//! (`/proc/PID/fd/FD`, kept in its lease): the very file on spawner's tmpfs, never a path inside a
//! container, which the container could point elsewhere.

use super::ipam::{self, Record};
use super::NetworkError;
use rustix::fs::{FlockOperation, Mode, OFlags};
use std::path::Path;

/// The line a container has in its peers' hosts files.
fn line(record: &Record) -> String {
    format!("{}\t{}", record.address, record.name)
}

fn lock(network_dir: &Path) -> Result<rustix::fd::OwnedFd, NetworkError> {
    let path = network_dir.join("lock");
    let fd = rustix::fs::open(
        &path,
        OFlags::RDONLY | OFlags::CREATE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| NetworkError(format!("open {}: {e}", path.display())))?;
    rustix::fs::flock(&fd, FlockOperation::LockExclusive)
        .map_err(|e| NetworkError(format!("lock {}: {e}", path.display())))?;
    Ok(fd)
}

/// Edits the hosts file of each live peer of `me` with `edit`.
fn edit_peers(
    network_dir: &Path,
    me: &Record,
    edit: impl Fn(&str) -> Option<String>,
) -> Result<(), NetworkError> {
    let _lock = lock(network_dir)?;
    for peer in ipam::live(&network_dir.join("leases")) {
        let Some((pid, fd)) = peer.hosts.filter(|_| peer.address != me.address) else { continue };
        let path = format!("/proc/{pid}/fd/{fd}");
        let Ok(file) =
            rustix::fs::open(&path, OFlags::RDWR | OFlags::CLOEXEC | OFlags::NONBLOCK, Mode::empty())
        else {
            continue;
        };
        // A regular file on a tmpfs of 64 KiB: read whole.
        let mut text = Vec::new();
        let mut buf = [0u8; 8192];
        let mut offset = 0;
        while let Ok(n @ 1..) = rustix::io::pread(&file, &mut buf, offset) {
            text.extend_from_slice(&buf[..n]);
            offset += n as u64;
            if text.len() > 1 << 16 {
                break;
            }
        }
        if let Some(new) = edit(&String::from_utf8_lossy(&text)) {
            let _ = rustix::fs::ftruncate(&file, 0);
            let _ = rustix::io::pwrite(&file, new.as_bytes(), 0);
        }
    }
    Ok(())
}

/// Adds `me` to the hosts files of the containers on the bridge.
pub fn announce(network_dir: &Path, me: &Record) -> Result<(), NetworkError> {
    let mine = line(me);
    edit_peers(network_dir, me, |text| {
        (!text.lines().any(|l| l == mine)).then(|| {
            let sep = if text.is_empty() || text.ends_with('\n') { "" } else { "\n" };
            format!("{text}{sep}{mine}\n")
        })
    })
}

/// Takes `me` out of the hosts files of the containers on the bridge.
pub fn withdraw(network_dir: &Path, me: &Record) -> Result<(), NetworkError> {
    let mine = line(me);
    edit_peers(network_dir, me, |text| {
        text.lines()
            .any(|l| l == mine)
            .then(|| text.lines().filter(|l| *l != mine).map(|l| format!("{l}\n")).collect())
    })
}
