//! Namespaces the container joins rather than makes (`linux.namespaces[].path`, and those a front
//! end made beforehand): opened by spawner before clone, joined with setns by the container's first
//! process. A PID namespace is the exception: setns into one only moves the children of the caller,
//! so spawner enters it itself just before clone, and the container's first process is born there.
//! With a user namespace of the container's own, the joins come before the clone instead, in an
//! intermediate process (see [`needs_intermediate`]).

use crate::spec::{Config, NamespaceKind};
use linux_raw_sys::general::CLONE_PARENT;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

fn link_type(kind: NamespaceKind) -> LinkNameSpaceType {
    match kind {
        NamespaceKind::Mount => LinkNameSpaceType::Mount,
        NamespaceKind::Pid => LinkNameSpaceType::ProcessID,
        NamespaceKind::Network => LinkNameSpaceType::Network,
        NamespaceKind::Ipc => LinkNameSpaceType::InterProcessCommunication,
        NamespaceKind::Uts => LinkNameSpaceType::HostNameAndNISDomainName,
        NamespaceKind::User => LinkNameSpaceType::User,
        NamespaceKind::Cgroup => LinkNameSpaceType::ControlGroup,
        NamespaceKind::Time => LinkNameSpaceType::Time,
    }
}

/// The namespaces the config gives by path, opened (a PID namespace is entered for the children of
/// spawner right away, see the module doc, and not returned).
pub fn open_paths(config: &Config) -> Result<Vec<(NamespaceKind, OwnedFd)>, String> {
    let mut joined = Vec::new();
    for ns in &config.namespaces {
        let Some(path) = &ns.path else { continue };
        let fd = rustix::fs::open(
            path,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| format!("linux.namespaces: {}: {e}", path.display()))?;
        // "The runtime MUST generate an error if `path` is not associated with a namespace of
        // type `type`."
        let is = rawsys::namespace_type(fd.as_fd())
            .map_err(|e| format!("linux.namespaces: {}: not a namespace: {e}", path.display()))?;
        if is != ns.kind.clone_flag() {
            return Err(format!(
                "linux.namespaces: {} is not a namespace of type {}",
                path.display(),
                ns.kind.name()
            ));
        }
        if ns.kind == NamespaceKind::Pid {
            rustix::thread::move_into_link_name_space(
                rustix::fd::AsFd::as_fd(&fd),
                Some(LinkNameSpaceType::ProcessID),
            )
            .map_err(|e| format!("linux.namespaces: join the PID namespace {}: {e}", path.display()))?;
            continue;
        }
        joined.push((ns.kind, fd));
    }
    Ok(joined)
}

/// Moves the calling (single-threaded) process into the namespace `fd` names.
pub fn join(kind: NamespaceKind, fd: BorrowedFd<'_>) -> Result<(), String> {
    move_into_link_name_space(fd, Some(link_type(kind)))
        .map_err(|e| format!("join the container's {kind:?} namespace: {e}"))
}

/// Whether the container's process must be cloned by an intermediate process that joined the
/// namespaces given by path first: when the container's user namespace is one given by path (the
/// namespaces clone makes must belong to it, so clone must run inside it), or when it is a new one
/// and others are given by path (those belong to the host's user namespace: once inside the new one
/// the process could no longer enter them). runc's nsexec joins and then unshares for the same
/// reason.
pub fn needs_intermediate(config: &Config) -> bool {
    let user = config.namespaces.iter().find(|ns| ns.kind == NamespaceKind::User);
    match user {
        Some(ns) if ns.path.is_some() => true,
        Some(_) => config.namespaces.iter().any(|ns| ns.path.is_some() && ns.kind != NamespaceKind::Pid),
        None => false,
    }
}

/// Clones the container's first process with `flags` from an intermediate process that joined
/// `joined` first (a user namespace before the others, which belong to it): the intermediate
/// clones it as spawner's own child (CLONE_PARENT), says its pid and exits. Returns 0 in the
/// container's process, its pid in spawner.
///
/// # Safety
/// As `rawsys::clone_process`: spawner is single-threaded.
pub unsafe fn clone_via(flags: u64, joined: &[(NamespaceKind, OwnedFd)]) -> Result<i32, String> {
    let (pid_read, pid_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the caller's promise (single-threaded).
    let intermediate = unsafe { rawsys::clone_process(0) }.map_err(|e| format!("clone: {e}"))?;
    if intermediate == 0 {
        drop(pid_read);
        let user_first = joined.iter().filter(|(k, _)| *k == NamespaceKind::User);
        let others = joined.iter().filter(|(k, _)| *k != NamespaceKind::User);
        let cloned = user_first
            .chain(others)
            .try_for_each(|(kind, fd)| join(*kind, fd.as_fd()))
            // SAFETY: this process is a copy of single-threaded spawner.
            .and_then(|()| {
                unsafe { rawsys::clone_process(flags | u64::from(CLONE_PARENT)) }
                    .map_err(|e| format!("clone: {e}"))
            });
        match cloned {
            Ok(0) => return Ok(0),
            Ok(pid) => {
                let _ = rustix::io::write(&pid_write, &pid.to_ne_bytes());
                rawsys::exit(0)
            }
            Err(e) => {
                let _ = rustix::io::write(&pid_write, e.as_bytes());
                rawsys::exit(1)
            }
        }
    }
    drop(pid_write);
    let said = super::read_to_end(&pid_read).map_err(|e| format!("read the container's pid: {e}"))?;
    let _ = rustix::process::waitpid(
        rustix::process::Pid::from_raw(intermediate),
        rustix::process::WaitOptions::empty(),
    );
    match <[u8; 4]>::try_from(said.as_slice()) {
        Ok(bytes) => Ok(i32::from_ne_bytes(bytes)),
        Err(_) if said.is_empty() => Err("the intermediate process ended before cloning".into()),
        Err(_) => Err(String::from_utf8_lossy(&said).into_owned()),
    }
}
