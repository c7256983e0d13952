//! Starting the child: fork, give it a clean signal state and its own process group (the terminal's
//! foreground group when there is a terminal), then exec with a PATH search.

use crate::cpath::CPath;
use crate::log::Bytes;
use crate::{signals, sys};
use core::ffi::CStr;
use rustix::io::Errno;

pub struct ChildSetup {
    /// stdin is a terminal: make the child's group its foreground group.
    pub tty: bool,
    /// `--setsid`: the child leads a session of its own.
    pub setsid: bool,
    /// init runs shielded from the OOM killer (oom_score_adj -1000, as spawner starts it, so that it
    /// lives to report the kill): the child must not inherit that, and gets the neutral 0.
    pub reset_oom_score: bool,
}

pub const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Forks and execs `argv` (NULL-terminated) with `envp`; returns the child's pid.
///
/// # Safety
/// `argv` and `envp` are NULL-terminated arrays of NUL-terminated strings that outlive the call, and
/// the process is single-threaded (see `sys::fork`).
pub unsafe fn spawn(
    argv: *const *const u8,
    envp: *const *const u8,
    path_var: Option<&[u8]>,
    setup: &ChildSetup,
) -> Result<i32, Errno> {
    match sys::fork()? {
        0 => child(argv, envp, path_var, setup),
        pid => {
            // Also done in the child: whichever runs first, the group exists before init forwards a
            // signal to it. A session leader must not be put in a group first (setsid would fail).
            if !setup.setsid {
                let _ = rustix::process::setpgid(rustix::process::Pid::from_raw(pid), None);
            }
            Ok(pid)
        }
    }
}

unsafe fn child(
    argv: *const *const u8,
    envp: *const *const u8,
    path_var: Option<&[u8]>,
    setup: &ChildSetup,
) -> ! {
    use rustix::process::{getpid, setpgid, setsid};
    // Signals are still blocked here (inherited from init), so tcsetpgrp from what is for a moment a
    // background group cannot stop us with SIGTTOU.
    if setup.setsid {
        let _ = setsid();
        if setup.tty {
            let _ = rustix::process::ioctl_tiocsctty(rustix::stdio::stdin());
        }
    } else {
        let _ = setpgid(None, None);
        if setup.tty {
            if let Err(e) = rustix::termios::tcsetpgrp(rustix::stdio::stdin(), getpid()) {
                crate::debug!("tcsetpgrp: {e}");
            }
        }
    }
    if setup.reset_oom_score {
        if let Ok(fd) = rustix::fs::open(
            c"/proc/self/oom_score_adj",
            rustix::fs::OFlags::WRONLY,
            rustix::fs::Mode::empty(),
        ) {
            let _ = rustix::io::write(&fd, b"0");
        }
    }
    for sig in 1..=signals::MAX {
        if sig != signals::SIGKILL && sig != signals::SIGSTOP {
            let _ = sys::reset_signal_disposition(sig);
        }
    }
    let _ = sys::set_signal_mask(0);
    let name = CStr::from_ptr(*argv as *const core::ffi::c_char).to_bytes();
    let (code, why) = exec(name, argv, envp, path_var.unwrap_or(DEFAULT_PATH));
    crate::error!("cannot run '{}': {}", Bytes(name), why);
    sys::exit(code)
}

/// Runs `name` like execvp: directly when it has a slash, else through each PATH entry. Returns the
/// exit code to use (127 not found, 126 found but not runnable, as Docker and shells do) and why.
unsafe fn exec(
    name: &[u8],
    argv: *const *const u8,
    envp: *const *const u8,
    path_var: &[u8],
) -> (i32, &'static str) {
    if name.is_empty() {
        return (127, "empty command name");
    }
    let mut path = CPath::new();
    if name.contains(&b'/') {
        if !path.push(name) {
            return (126, "path too long");
        }
        return describe(sys::execve(path.as_cstr().as_ptr() as *const u8, argv, envp));
    }
    let mut denied = None;
    for dir in path_var.split(|&b| b == b':') {
        path.clear();
        let dir = if dir.is_empty() { &b"."[..] } else { dir };
        if !(path.push(dir) && path.push(b"/") && path.push(name)) {
            continue;
        }
        match sys::execve(path.as_cstr().as_ptr() as *const u8, argv, envp) {
            Errno::NOENT | Errno::NOTDIR | Errno::NAMETOOLONG | Errno::LOOP => {}
            Errno::ACCESS | Errno::PERM => denied = Some(Errno::ACCESS),
            other => return describe(other),
        }
    }
    match denied {
        Some(e) => describe(e),
        None => (127, "command not found"),
    }
}

fn describe(e: Errno) -> (i32, &'static str) {
    match e {
        Errno::NOENT => (127, "no such file or directory"),
        Errno::NOTDIR => (127, "a path component is not a directory"),
        Errno::ACCESS | Errno::PERM => (126, "permission denied"),
        Errno::NOEXEC => (126, "exec format error"),
        Errno::ISDIR => (126, "is a directory"),
        Errno::TXTBSY => (126, "text file busy"),
        Errno::NOMEM => (126, "out of memory"),
        Errno::LOOP => (126, "too many levels of symbolic links"),
        _ => (126, "exec failed"),
    }
}
