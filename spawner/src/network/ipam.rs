//! Addresses on the bridge, one lease file each under `STATE/network/leases/`, named for its
//! address. A run holds its address by an exclusive lock on that file, which records the container
//! while the run lives; the kernel drops the lock when the run dies, however it dies. The files
//! stay: a run leases an address by locking its file, and releases it by recording nothing in it
//! before the lock goes, so a start or an exit makes no file and removes none (each costs an inode,
//! and on a file system that discards freed blocks, a wait for the disk). An unlocked file that
//! still records a container belongs to a run that died: the next run reclaims it (and the ports
//! it published).

use super::NetworkError;
use rustix::fd::OwnedFd;
use rustix::fs::{flock, FlockOperation, Mode, OFlags};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// What a lease file records: enough for another run to find the container by name and to undo
/// what a dead run published.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub address: Ipv4Addr,
    /// The container's name (or id), for the other containers' /etc/hosts.
    pub name: String,
    /// Published ports, as the firewall's map elements.
    pub ports: Vec<super::firewall::Element>,
    /// Where its spawner holds its /etc/hosts: pid and fd (see `names`).
    #[serde(default)]
    pub hosts: Option<(u32, i32)>,
}

impl Default for Record {
    fn default() -> Self {
        Record { address: Ipv4Addr::UNSPECIFIED, name: String::new(), ports: Vec::new(), hosts: None }
    }
}

/// A held lease: released (its file records nothing, then is unlocked) when it is dropped.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
    lock: OwnedFd,
    pub record: Record,
}

impl Lease {
    /// Records `self.record` again (its ports, once published) in the lease file.
    pub fn rewrite(&self) -> Result<(), NetworkError> {
        store(&self.lock, Some(&self.record)).map_err(|e| err("write", &self.path, e))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Err(e) = store(&self.lock, None) {
            log::warn!("release {}: {e}", self.path.display());
        }
    }
}

fn err(what: &str, path: &Path, e: impl std::fmt::Display) -> NetworkError {
    NetworkError(format!("{what} {}: {e}", path.display()))
}

/// Writes `record` (JSON; `null` for none) over the file's start, padded with spaces to the file's
/// length: the file is never truncated, so its block is never freed.
fn store(fd: &OwnedFd, record: Option<&Record>) -> rustix::io::Result<()> {
    let mut text = serde_json::to_vec(&record).expect("a lease record serializes");
    let len = rustix::fs::fstat(fd)?.st_size as usize;
    if text.len() < len {
        text.resize(len, b' ');
    }
    let mut written = 0;
    while written < text.len() {
        written += rustix::io::pwrite(fd, &text[written..], written as u64)?;
    }
    Ok(())
}

/// What a lease file records; None when nothing, or nothing readable (a file being made).
fn recorded(fd: &OwnedFd) -> Option<Record> {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::pread(fd, &mut buf, text.len() as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
        if text.len() > 1 << 20 {
            return None;
        }
    }
    serde_json::from_slice::<Option<Record>>(&text).ok().flatten()
}

fn open(path: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(
        path,
        flags | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
}

/// The lease files of `dir`, open, with whether this process got their lock (the file is not
/// held by a live run); dot-files (an older spawner's leases being made) are removed when old and
/// unheld, and otherwise passed over.
fn each(dir: &Path, mut f: impl FnMut(&Path, &OwnedFd, bool)) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(fd) = open(&path, OFlags::empty()) else { continue };
        let unheld = flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok();
        if entry.file_name().to_string_lossy().starts_with('.') {
            let old = || {
                entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|a| a.as_secs() > 60))
            };
            if unheld && old() {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        }
        f(&path, &fd, unheld);
    }
}

/// The records of the live leases in `dir`, read only (a dead run's lease stays for a run that
/// reclaims it, see [`scan`]).
pub fn live(dir: &Path) -> Vec<Record> {
    let mut live = Vec::new();
    each(dir, |_, fd, unheld| {
        if !unheld {
            live.extend(recorded(fd));
        }
    });
    live
}

/// The records of the live leases in `dir`; the dead ones are handed to `reclaim`, then released.
pub fn scan(dir: &Path, mut reclaim: impl FnMut(&Record)) -> Vec<Record> {
    let mut live = Vec::new();
    each(dir, |path, fd, unheld| match (unheld, recorded(fd)) {
        (false, record) => live.extend(record),
        (true, Some(dead)) => {
            reclaim(&dead);
            match store(fd, None) {
                Ok(()) => log::info!("released {} left by a spawner that died", path.display()),
                Err(e) => log::warn!("release stale lease {}: {e}", path.display()),
            }
        }
        (true, None) => {}
    });
    live
}

/// Leases the first free address of `hosts` (in order) for `record`.
pub fn lease(
    dir: &Path,
    hosts: impl Iterator<Item = Ipv4Addr>,
    mut record: Record,
) -> Result<Lease, NetworkError> {
    std::fs::create_dir_all(dir).map_err(|e| err("mkdir", dir, e))?;
    for address in hosts {
        let path = dir.join(address.to_string());
        let lock = open(&path, OFlags::CREATE).map_err(|e| err("open", &path, e))?;
        // Held by a live run; or left recording a run that died, until a scan reclaims its ports.
        if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() || recorded(&lock).is_some() {
            continue;
        }
        record.address = address;
        store(&lock, Some(&record)).map_err(|e| err("write", &path, e))?;
        return Ok(Lease { path, lock, record });
    }
    Err(NetworkError(format!("no free address left on the bridge (leases in {})", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> impl Iterator<Item = Ipv4Addr> {
        (2..=4).map(|i| Ipv4Addr::new(10, 0, 0, i))
    }

    #[test]
    fn leases_are_unique_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let a = lease(dir.path(), hosts(), Record::default()).unwrap();
        let b = lease(dir.path(), hosts(), Record::default()).unwrap();
        assert_eq!(
            (a.record.address, b.record.address),
            (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3))
        );
        let c = lease(dir.path(), hosts(), Record::default()).unwrap();
        let full = lease(dir.path(), hosts(), Record::default()).unwrap_err();
        assert!(full.0.contains("no free address"), "{full}");
        drop(b);
        let again = lease(dir.path(), hosts(), Record::default()).unwrap();
        assert_eq!(again.record.address, Ipv4Addr::new(10, 0, 0, 3));
        assert_eq!(scan(dir.path(), |_| panic!("nothing is stale")).len(), 3);
        drop((a, c, again));
        // The files stay, recording nothing: free for the next run, with nothing to reclaim.
        assert!(live(dir.path()).is_empty());
        assert!(scan(dir.path(), |_| panic!("nothing is stale")).is_empty());
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            assert_eq!(text.trim_end(), "null");
        }
        let first = lease(dir.path(), hosts(), Record::default()).unwrap();
        assert_eq!(first.record.address, Ipv4Addr::new(10, 0, 0, 2));
    }

    #[test]
    fn a_longer_record_then_a_shorter_one_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut a =
            lease(dir.path(), hosts(), Record { name: "a-long-name".repeat(20), ..Default::default() })
                .unwrap();
        a.record.name = "a".into();
        a.rewrite().unwrap();
        let fd = open(&dir.path().join("10.0.0.2"), OFlags::empty()).unwrap();
        assert_eq!(recorded(&fd), Some(a.record.clone()));
    }

    /// A lease directory with 10.0.0.2's file recording "dead", which nobody holds a lock on: its
    /// run died.
    fn dead_runs_lease() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let record =
            Record { address: Ipv4Addr::new(10, 0, 0, 2), name: "dead".into(), ..Default::default() };
        std::fs::write(dir.path().join("10.0.0.2"), serde_json::to_vec(&record).unwrap()).unwrap();
        dir
    }

    #[test]
    fn a_dead_runs_lease_is_reclaimed_with_its_ports() {
        let dir = dead_runs_lease();
        let mut reclaimed = Vec::new();
        assert!(scan(dir.path(), |r| reclaimed.push(r.name.clone())).is_empty());
        assert_eq!(reclaimed, ["dead"]);
        let next = lease(dir.path(), hosts(), Record::default()).unwrap();
        assert_eq!(next.record.address, Ipv4Addr::new(10, 0, 0, 2));
    }

    #[test]
    fn a_dead_runs_lease_waits_for_a_scan_that_reclaims_it() {
        let dir = dead_runs_lease();
        // Readers leave it (its ports are not withdrawn yet), and no run takes its address.
        assert!(live(dir.path()).is_empty());
        let next = lease(dir.path(), hosts(), Record::default()).unwrap();
        assert_eq!(next.record.address, Ipv4Addr::new(10, 0, 0, 3));
        let mut reclaimed = Vec::new();
        assert_eq!(scan(dir.path(), |r| reclaimed.push(r.name.clone())).len(), 1);
        assert_eq!(reclaimed, ["dead"]);
    }
}
