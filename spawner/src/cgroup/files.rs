//! cgroupfs file and directory operations shared by v1 and v2, each error naming the path and
//! the operation; and the kill loop that empties a cgroup.

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, Signal};

use super::{Error, Result};

pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))
}

/// Write `value` with a single write(2) to an existing file. No O_CREAT or O_TRUNC: cgroupfs
/// files always exist, and every write is one command to the kernel.
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| Error::io("write", path, e))
}

pub(crate) fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir(path).map_err(|e| Error::io("create", path, e))
}

/// Create `path` and missing parents (for an explicit cgroup parent). An existing directory is
/// fine.
pub(crate) fn mkdir_all(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| Error::io("create", path, e))
}

pub(crate) fn is_errno(e: &Error, errno: Errno) -> bool {
    e.raw_os_error() == Some(errno.raw_os_error())
}

/// The names of the directories (child cgroups) directly below `dir`.
pub(crate) fn child_cgroups(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let is_dir = entry.file_type().map_err(|e| Error::io("stat", entry.path(), e))?.is_dir();
        if is_dir {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// `dir` and every cgroup below it, parents before children.
fn subtree(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let children = child_cgroups(&out[i])?;
        let parent = out[i].clone();
        out.extend(children.into_iter().map(|c| parent.join(c)));
        i += 1;
    }
    Ok(out)
}

/// Remove the cgroup `dir` and any cgroups below it (children first). A missing directory is
/// already removed. EBUSY is retried with short sleeps: after the last process of a cgroup is
/// reaped the kernel releases the cgroup asynchronously, so rmdir can fail for a moment.
pub(crate) fn remove_tree(dir: &Path) -> Result<()> {
    for d in subtree(dir)?.iter().rev() {
        rmdir_retrying(d)?;
    }
    Ok(())
}

const RMDIR_ATTEMPTS: u32 = 10;

fn rmdir_retrying(dir: &Path) -> Result<()> {
    let mut delay = Duration::from_millis(5);
    let mut attempt = 1;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(Errno::BUSY.raw_os_error()) && attempt < RMDIR_ATTEMPTS => {
                sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
                attempt += 1;
            }
            Err(e) => return Err(Error::io("remove", dir, e)),
        }
    }
}

/// The pids in `dir/cgroup.procs`; none if the cgroup is gone.
pub(crate) fn read_procs(dir: &Path) -> Result<Vec<i32>> {
    let path = dir.join("cgroup.procs");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    text.lines()
        .map(|l| {
            l.trim()
                .parse()
                .map_err(|_| Error::Parse { path: path.clone(), what: format!("{l:?} is not a pid") })
        })
        .collect()
}

/// Every pid in the cgroup `dir` and the cgroups below it, sorted, without pid 0 (a process
/// outside our pid namespace, which has no number here).
pub(crate) fn pids_below(dir: &Path) -> Result<Vec<i32>> {
    let mut pids = Vec::new();
    for d in subtree(dir)? {
        pids.extend(read_procs(&d)?.into_iter().filter(|&p| p > 0));
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// Every pid in the cgroups `dirs` and below them, except our own process and pid 0 (which we
/// could not signal anyway).
fn procs_in(dirs: &[&Path]) -> Result<Vec<i32>> {
    let me = rustix::process::getpid().as_raw_nonzero().get();
    let mut pids = Vec::new();
    for dir in dirs {
        pids.extend(pids_below(dir)?.into_iter().filter(|&p| p != me));
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// How we will signal one pid.
enum Target {
    Pidfd(OwnedFd),
    /// pidfd_open is missing (kernel before 5.3): signal by number.
    Pid(Pid),
    Gone,
}

fn target(pid: i32) -> Target {
    let Some(p) = Pid::from_raw(pid) else {
        return Target::Gone;
    };
    match rustix::process::pidfd_open(p, PidfdFlags::empty()) {
        Ok(fd) => Target::Pidfd(fd),
        Err(Errno::NOSYS) => Target::Pid(p),
        Err(_) => Target::Gone,
    }
}

/// Up to about two seconds: enough for killed processes to exit, bounded for a fork bomb that
/// outruns us (a pids limit, or the v2 cgroup.kill, is the real answer to those).
const KILL_ROUNDS: u32 = 200;

/// SIGKILL every process in the cgroups `dirs` (and below) until none is left.
///
/// A pid read from cgroup.procs could exit and be reused by an unrelated process before we
/// signal it. So each round opens pidfds first and then re-reads cgroup.procs: a pidfd opened
/// for a pid that is still listed afterwards refers to a process that is (or just was) in the
/// cgroup, and a pidfd cannot be redirected to a newer process.
pub(crate) fn kill_all(dirs: &[&Path]) -> Result<()> {
    let mut pids = Vec::new();
    for round in 0..KILL_ROUNDS {
        pids = procs_in(dirs)?;
        if pids.is_empty() {
            return Ok(());
        }
        let targets: Vec<(i32, Target)> = pids.iter().map(|&p| (p, target(p))).collect();
        let still_there = procs_in(dirs)?;
        for (pid, target) in targets {
            if still_there.binary_search(&pid).is_err() {
                continue;
            }
            let sent = match target {
                Target::Pidfd(fd) => rustix::process::pidfd_send_signal(&fd, Signal::KILL),
                Target::Pid(p) => rustix::process::kill_process(p, Signal::KILL),
                Target::Gone => Ok(()),
            };
            match sent {
                Ok(()) | Err(Errno::SRCH) => {}
                Err(e) => log::warn!("cgroup: SIGKILL pid {pid}: {e}"),
            }
        }
        // Killed processes need a moment to exit; poll quickly at first.
        sleep(Duration::from_millis(if round < 10 { 1 } else { 10 }));
    }
    Err(Error::StillPopulated { path: dirs.first().map(|d| d.to_path_buf()).unwrap_or_default(), pids })
}
