//! "Every other process in the container": who init signals when it drains or shuts down, and how it
//! knows that none are left.
//!
//! As PID 1 of a PID namespace that is `kill(-1, …)`: the kernel signals every process in the
//! namespace but init. Anywhere else (`-s` subreaper mode, or PID 1 of a VM, where kill(-1) would also
//! reach kernel threads) it is init's descendants, found by walking parent links in /proc.

use crate::cpath::{read_small_file, CPath};
use crate::sys;
use core::mem::MaybeUninit;
use rustix::io::Errno;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// PID 1 of a container's PID namespace.
    Namespace,
    /// Init's descendants (init's pid given).
    Descendants(i32),
}

impl Scope {
    /// Sends `sig` to every other process in scope; returns whether any was there.
    pub fn signal_all(self, sig: i32) -> bool {
        match self {
            Scope::Namespace => sys::kill(-1, sig).is_ok(),
            Scope::Descendants(me) => {
                let mut any = false;
                for_each_descendant(me, |pid| {
                    any = true;
                    let _ = sys::kill(pid, sig);
                });
                any
            }
        }
    }

    pub fn any_left(self) -> bool {
        match self {
            // Signal 0 checks for existence only; ESRCH means nobody is left.
            Scope::Namespace => sys::kill(-1, 0) != Err(Errno::SRCH),
            Scope::Descendants(me) => {
                let mut any = false;
                for_each_descendant(me, |_| any = true);
                any
            }
        }
    }
}

/// The parent pid from the text of `/proc/PID/stat` (field 4, after the `(comm)` that may hold spaces
/// and parentheses itself).
pub fn parse_stat_ppid(stat: &[u8]) -> Option<i32> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let mut fields = stat[close + 1..].split(|&b| b == b' ').filter(|f| !f.is_empty());
    let _state = fields.next()?;
    let ppid = crate::args::parse_u64(fields.next()?)?;
    i32::try_from(ppid).ok()
}

fn parent_of(pid: i32) -> Option<i32> {
    let mut path = CPath::new();
    path.push(b"/proc/");
    path.push_u32(pid as u32);
    path.push(b"/stat");
    let mut buf = [0u8; 1024];
    parse_stat_ppid(read_small_file(path.as_cstr(), &mut buf)?)
}

fn is_descendant(mut pid: i32, me: i32) -> bool {
    // Bounded: a chain deeper than this is not worth walking (and pid reuse can't loop us forever).
    for _ in 0..256 {
        match parent_of(pid) {
            Some(p) if p == me => return true,
            Some(p) if p > 1 => pid = p,
            _ => return false,
        }
    }
    false
}

/// Whether init has any child, running or a zombie. Without one it has no descendant at all: a
/// descendant's parent is alive, so the chain up to init ends in a child of init, and orphans are
/// re-parented to init (a subreaper). This spares the /proc scan, which reads every process on a
/// host (milliseconds), at the end of almost every run.
fn has_children() -> bool {
    use rustix::process::{waitid, WaitId, WaitIdOptions};
    let peek = WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT | WaitIdOptions::EXITED;
    !matches!(waitid(WaitId::All, peek), Err(Errno::CHILD))
}

fn for_each_descendant(me: i32, mut f: impl FnMut(i32)) {
    use rustix::fs::{open, Mode, OFlags, RawDir};
    if !has_children() {
        return;
    }
    let Ok(dir) = open(c"/proc", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) else {
        return;
    };
    let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
    let mut entries = RawDir::new(&dir, &mut buf);
    while let Some(Ok(entry)) = entries.next() {
        let Some(pid) = crate::args::parse_u64(entry.file_name().to_bytes()) else { continue };
        let pid = pid as i32;
        if pid != me && is_descendant(pid, me) {
            f(pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_from_stat_with_odd_comm() {
        assert_eq!(parse_stat_ppid(b"1234 (sleep) S 77 1234 1234 0 -1"), Some(77));
        assert_eq!(parse_stat_ppid(b"1234 (a) b) c) R 5 1 1"), Some(5));
        assert_eq!(parse_stat_ppid(b"garbage"), None);
    }

    #[test]
    fn finds_own_children_as_descendants() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let me = std::process::id() as i32;
        assert!(is_descendant(child.id() as i32, me));
        let mut found = false;
        for_each_descendant(me, |pid| found |= pid == child.id() as i32);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found);
        assert!(!is_descendant(1, me));
    }
}
