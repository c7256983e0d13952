//! A process run in a container that exists (runc's `exec`, which `podman exec`, `docker exec` and
//! `kubectl exec` come down to): it joins the container's cgroup and namespaces, and gets the
//! process's user, capabilities, limits and no_new_privs and the container's seccomp filter, never
//! more than the spec gives it. Its namespaces are the container's first process's, opened from
//! /proc before the fork; a PID namespace is entered by spawner itself so that its child is born in
//! it, the mount namespace joined last by the child.

use super::child::{self, ProcessPlan};
use super::{pipe, RunError};
use crate::cgroup::{Cgroup, CgroupLocation};
use crate::seccomp::Profile;
use crate::spec::{NamespaceKind, Process};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::fs::{Mode, OFlags};

/// What `exec` runs, and where.
pub struct Exec<'a> {
    /// The container's first process, whose namespaces the new one joins.
    pub pid: i32,
    /// The container's cgroup (None: it has none of its own).
    pub cgroup: Option<&'a CgroupLocation>,
    pub process: &'a Process,
    /// The container's seccomp profile (config.json's linux.seccomp).
    pub seccomp: Option<&'a Profile>,
    /// `--console-socket`, for a detached process with a terminal.
    pub console_socket: Option<OwnedFd>,
    pub preserve_fds: u32,
    /// Return once the process runs (its pid), instead of waiting for it.
    pub detach: bool,
    /// Docker's `-u` (name, uid, `name:group`…), looked up in the container's /etc/passwd and
    /// /etc/group as the container's own user is (it replaces `process.user`).
    pub image_user: Option<&'a str>,
}

/// How an exec ended for its caller.
pub enum Outcome {
    /// `--detach`: the process runs; its pid.
    Detached(i32),
    /// The process's exit status (128+N for signal N).
    Exited(i32),
}

/// The namespaces of the container, by kind and /proc/PID/ns name: the user namespace first (the
/// others belong to it: joining them needs privilege there), mount last.
const NAMESPACES: [(NamespaceKind, &str); 8] = [
    (NamespaceKind::User, "user"),
    (NamespaceKind::Time, "time"),
    (NamespaceKind::Ipc, "ipc"),
    (NamespaceKind::Uts, "uts"),
    (NamespaceKind::Network, "net"),
    (NamespaceKind::Cgroup, "cgroup"),
    (NamespaceKind::Pid, "pid"),
    (NamespaceKind::Mount, "mnt"),
];

pub fn exec(req: Exec<'_>) -> Result<Outcome, RunError> {
    let filter = req.seccomp.map(super::security::compile_seccomp).transpose().map_err(RunError::msg)?;
    let cgroup_join = match req.cgroup {
        Some(location) => Cgroup::reopen(location)?.self_join_files(),
        None => Vec::new(),
    };
    let join = open_namespaces(req.pid)?;
    let in_userns = join.iter().any(|(kind, _)| *kind == NamespaceKind::User);
    let terminal = req.process.terminal;
    let (tty_here, console) = match (terminal, req.detach) {
        (false, _) => (None, None),
        (true, true) => (
            None,
            Some(req.console_socket.ok_or_else(|| {
                RunError::msg("process.terminal is set: a --console-socket is needed to pass the terminal")
            })?),
        ),
        (true, false) => match req.console_socket {
            Some(socket) => (None, Some(socket)),
            None => {
                let (here, there) = super::tty::socket_pair().map_err(RunError::msg)?;
                (Some(here), Some(there))
            }
        },
    };
    let process = req.process;
    let preserve_fds = req.preserve_fds;
    let detach = req.detach;
    let image_user = req.image_user;
    let run_child = move |go: OwnedFd, errors: OwnedFd| {
        let err = match setup(
            go,
            &errors,
            &cgroup_join,
            &join,
            console,
            process,
            preserve_fds,
            filter,
            detach,
            in_userns,
            image_user,
        ) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        let _ = rustix::io::write(&errors, err.as_bytes());
        rawsys::exit(
            if err.contains("executable file not found") || err.contains("no such file or directory") {
                127
            } else {
                126
            },
        )
    };
    // In the container's user namespace the process could not raise its own hard limits: they are
    // set on it from here, before it goes.
    let before_go = |pid: i32| match in_userns {
        true => {
            super::limits::apply(rustix::process::Pid::from_raw(pid), process, false).map_err(RunError::msg)
        }
        false => Ok(()),
    };
    if !detach {
        return super::spawn_and_wait_with(0, &[], tty_here, &before_go, Default::default(), run_child)
            .map(Outcome::Exited);
    }
    let (go_read, go_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    // SAFETY: spawner is single-threaded here, so the child may allocate.
    let pid = unsafe { rawsys::clone_process(0) }.map_err(|e| RunError::msg(format!("clone: {e}")))?;
    if pid == 0 {
        drop((go_write, err_read));
        run_child(go_read, err_write);
        rawsys::exit(126);
    }
    drop((go_read, err_write, run_child));
    if let Err(e) = before_go(pid) {
        super::kill_and_reap(pid);
        return Err(e);
    }
    rustix::io::write(&go_write, b"g").map_err(|e| RunError::msg(format!("start the process: {e}")))?;
    drop(go_write);
    // EOF: the process exec'd (the pipe is close-on-exec); anything before it is its error.
    let message = super::read_to_end(&err_read)
        .map_err(|e| RunError::msg(format!("read the process's setup errors: {e}")))?;
    if !message.is_empty() {
        let _ = rustix::process::waitpid(
            rustix::process::Pid::from_raw(pid),
            rustix::process::WaitOptions::empty(),
        );
        return Err(RunError::msg(String::from_utf8_lossy(&message).into_owned()));
    }
    Ok(Outcome::Detached(pid))
}

/// The container's namespaces that are not spawner's own, opened; its PID namespace entered for
/// spawner's children right away.
fn open_namespaces(pid: i32) -> Result<Vec<(NamespaceKind, OwnedFd)>, RunError> {
    let mut join = Vec::new();
    for (kind, name) in NAMESPACES {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let fd = rustix::fs::open(theirs.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| RunError::msg(format!("open {theirs}: {e}")))?;
        let same = match (rustix::fs::fstat(&fd), rustix::fs::stat(format!("/proc/self/ns/{name}").as_str()))
        {
            (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
            _ => false,
        };
        if same {
            continue;
        }
        if kind == NamespaceKind::Pid {
            super::namespaces::join(kind, fd.as_fd()).map_err(RunError::msg)?;
            continue;
        }
        join.push((kind, fd));
    }
    Ok(join)
}

/// In the new process: the cgroup, the namespaces, its own session, every inherited fd closed but
/// those it needs, the terminal, then the process's setup as the container's first process has it.
#[allow(clippy::too_many_arguments)]
fn setup(
    go: OwnedFd,
    errors: &OwnedFd,
    cgroup_join: &[std::path::PathBuf],
    join: &[(NamespaceKind, OwnedFd)],
    console: Option<OwnedFd>,
    process: &Process,
    preserve_fds: u32,
    seccomp: Option<crate::seccomp::Filter>,
    detach: bool,
    in_userns: bool,
    image_user: Option<&str>,
) -> Result<child::Never, String> {
    let mut byte = [0u8];
    if rustix::io::read(&go, &mut byte) != Ok(1) {
        rawsys::exit(126);
    }
    drop(go);
    crate::cgroup::join_self(cgroup_join)?;
    // The mount namespace last (NAMESPACES' order): setns into it moves the root and the working
    // directory to the container's.
    for (kind, fd) in join {
        super::namespaces::join(*kind, fd.as_fd())?;
    }
    if in_userns {
        super::userns::become_root()?;
    }
    rustix::process::setsid().map_err(|e| format!("setsid: {e}"))?;
    let mut keep = vec![errors.as_raw_fd(), console.as_ref().map_or(-1, |c| c.as_raw_fd())];
    keep.extend((3..3 + preserve_fds).map(|fd| fd as i32));
    child::close_inherited(&keep)?;
    if let Some(socket) = &console {
        super::tty::attach_in_container(socket, process.console_size, false)?;
    }
    let plan = ProcessPlan {
        process,
        readonly_root: false,
        image_user,
        group_add: &[],
        init: None,
        exec_fifo: None,
        preserve_fds,
        seccomp,
        die_with_spawner: !detach,
        start_hooks: None,
        limits_applied: in_userns,
    };
    child::become_process(plan, errors)
}
