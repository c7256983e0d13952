//! `flock` locks on files under `<store>/locks/`, shared between processes and between threads
//! (each lock opens its own file description, so two threads conflict like two processes).

use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{flock, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use super::error::{io_err, StoreError};

/// A held lock; released when dropped (closing the fd releases the flock).
#[derive(Debug)]
pub(crate) struct LockFile {
    _fd: OwnedFd,
}

/// Whether others may hold the lock at the same time.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LockMode {
    Shared,
    Exclusive,
}

impl LockFile {
    /// Blocks until the lock at `path` (created if missing) is held.
    pub(crate) fn acquire(path: &Path, mode: LockMode) -> Result<LockFile, StoreError> {
        let operation = match mode {
            LockMode::Shared => FlockOperation::LockShared,
            LockMode::Exclusive => FlockOperation::LockExclusive,
        };
        Ok(Self::lock(path, operation)?.expect("a blocking flock does not return EWOULDBLOCK"))
    }

    /// Takes the lock only if that needs no waiting; `None` if someone else holds it.
    pub(crate) fn try_acquire(path: &Path, mode: LockMode) -> Result<Option<LockFile>, StoreError> {
        let operation = match mode {
            LockMode::Shared => FlockOperation::NonBlockingLockShared,
            LockMode::Exclusive => FlockOperation::NonBlockingLockExclusive,
        };
        Self::lock(path, operation)
    }

    fn lock(path: &Path, operation: FlockOperation) -> Result<Option<LockFile>, StoreError> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o600),
        )
        .map_err(io_err("open", path))?;
        loop {
            match flock(&fd, operation) {
                Ok(()) => return Ok(Some(LockFile { _fd: fd })),
                Err(Errno::INTR) => continue,
                Err(Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(io_err("flock", path)(e)),
            }
        }
    }
}
