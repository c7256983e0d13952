//! Addresses on the bridge, one lease file each under `STATE/network/leases/`: made whole and
//! locked under a dot-name, then renamed into place without replacing, so a lease is never seen
//! unlocked while its run lives. The kernel drops the lock when the run dies, however it dies: a
//! lease file nobody locks belongs to a dead run, and the next run reclaims it (and the ports it
//! published).

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

/// A held lease: the file is removed when it is dropped.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
    _lock: OwnedFd,
    pub record: Record,
}

impl Lease {
    /// Records `self.record` again (its ports, once published) in the lease file.
    pub fn rewrite(&self) -> Result<(), NetworkError> {
        let text = serde_json::to_vec(&self.record).expect("a lease record serializes");
        // Written through the locked file itself: a rename would put an unlocked file in place.
        let fd =
            rustix::fs::open(&self.path, OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| err("open", &self.path, e))?;
        rustix::fs::ftruncate(&fd, 0).map_err(|e| err("truncate", &self.path, e))?;
        rustix::io::write(&fd, &text).map_err(|e| err("write", &self.path, e))?;
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn err(what: &str, path: &Path, e: impl std::fmt::Display) -> NetworkError {
    NetworkError(format!("{what} {}: {e}", path.display()))
}

fn lock_file(path: &Path) -> rustix::io::Result<OwnedFd> {
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
    flock(&fd, FlockOperation::NonBlockingLockExclusive)?;
    Ok(fd)
}

/// The records of the live leases in `dir`; the dead ones are handed to `reclaim` and removed.
pub fn scan(dir: &Path, mut reclaim: impl FnMut(&Record)) -> Vec<Record> {
    let mut live = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return live };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let dot = name.to_string_lossy().starts_with('.');
        // A run between making its dot-file and locking it holds it for microseconds: only an old
        // one is dead.
        let old = || {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 60))
        };
        if dot && !old() {
            continue;
        }
        let record = || -> Option<Record> { serde_json::from_slice(&std::fs::read(&path).ok()?).ok() };
        match lock_file(&path) {
            // Alive (or a dot-file being made: it is renamed once whole).
            Err(_) => {
                if !dot {
                    live.extend(record());
                }
            }
            Ok(_lock) => {
                // A dot-file is old when it is unlocked: its maker died before the rename.
                if let Some(r) = record().filter(|_| !dot) {
                    reclaim(&r);
                }
                match std::fs::remove_file(&path) {
                    Ok(()) => log::info!("released {} left by a spawner that died", path.display()),
                    Err(e) => log::warn!("remove stale lease {}: {e}", path.display()),
                }
            }
        }
    }
    live
}

/// Leases the first free address of `hosts` (in order) for `record`.
pub fn lease(
    dir: &Path,
    hosts: impl Iterator<Item = Ipv4Addr>,
    mut record: Record,
) -> Result<Lease, NetworkError> {
    std::fs::create_dir_all(dir).map_err(|e| err("mkdir", dir, e))?;
    let tmp = dir.join(format!(".{}-{}", std::process::id(), super::thread_token()));
    for address in hosts {
        record.address = address;
        let text = serde_json::to_vec(&record).expect("a lease record serializes");
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let lock =
            rustix::fs::open(&tmp, flags, Mode::from_raw_mode(0o644)).map_err(|e| err("create", &tmp, e))?;
        flock(&lock, FlockOperation::NonBlockingLockExclusive).map_err(|e| err("lock", &tmp, e))?;
        rustix::io::write(&lock, &text).map_err(|e| err("write", &tmp, e))?;
        let path = dir.join(address.to_string());
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            &tmp,
            rustix::fs::CWD,
            &path,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => return Ok(Lease { path, _lock: lock, record }),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(err("rename", &tmp, e));
            }
        }
    }
    let _ = std::fs::remove_file(&tmp);
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
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left behind");
    }

    #[test]
    fn a_dead_runs_lease_is_reclaimed_with_its_ports() {
        let dir = tempfile::tempdir().unwrap();
        let record =
            Record { address: Ipv4Addr::new(10, 0, 0, 2), name: "dead".into(), ..Default::default() };
        // A lease file nobody holds a lock on: its run died.
        std::fs::write(dir.path().join("10.0.0.2"), serde_json::to_vec(&record).unwrap()).unwrap();
        let mut reclaimed = Vec::new();
        assert!(scan(dir.path(), |r| reclaimed.push(r.name.clone())).is_empty());
        assert_eq!(reclaimed, ["dead"]);
        let next = lease(dir.path(), hosts(), Record::default()).unwrap();
        assert_eq!(next.record.address, Ipv4Addr::new(10, 0, 0, 2));
    }
}
