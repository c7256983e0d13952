//! openat2(2) for lookups confined to a root (RESOLVE_IN_ROOT, RESOLVE_BENEATH), retried when the
//! kernel asks: such a lookup fails with EAGAIN when a rename or a mount anywhere on the system
//! raced with its `..` checks (the kernel cannot then vouch that it stayed inside). Another
//! process's mounts are enough, so a busy host hits it; the lookup is simply done again.

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// How many times a lookup is tried before EAGAIN is given to the caller.
const ATTEMPTS: usize = 128;

/// `openat2(dir, path, flags, mode, resolve)`, tried again on EAGAIN.
pub fn openat2<P: rustix::path::Arg>(
    dir: impl AsFd,
    path: P,
    flags: OFlags,
    mode: Mode,
    resolve: ResolveFlags,
) -> Result<OwnedFd, Errno> {
    let dir = dir.as_fd();
    let path = path.into_c_str()?;
    let mut attempt = 0;
    loop {
        match rustix::fs::openat2(dir, path.as_ref(), flags, mode, resolve) {
            Err(Errno::AGAIN) if attempt + 1 < ATTEMPTS => attempt += 1,
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Renames elsewhere on the system make in-root lookups through `..` fail with EAGAIN now and
    /// then; none reaches the caller.
    #[test]
    fn lookups_racing_renames_succeed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b/c")).unwrap();
        std::fs::write(dir.path().join("a/f"), "").unwrap();
        let root = rustix::fs::open(dir.path(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let (x, y) = (dir.path().join("x"), dir.path().join("y"));
                std::fs::write(&x, "").unwrap();
                while !stop.load(Ordering::Relaxed) {
                    std::fs::rename(&x, &y).unwrap();
                    std::fs::rename(&y, &x).unwrap();
                }
            });
            let result = (0..20_000).try_for_each(|_| {
                openat2(
                    &root,
                    "a/b/c/../../../a/b/../f",
                    OFlags::RDONLY,
                    Mode::empty(),
                    ResolveFlags::IN_ROOT,
                )
                .map(drop)
            });
            stop.store(true, Ordering::Relaxed);
            result.unwrap();
        });
    }
}
