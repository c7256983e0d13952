//! Namespaces the container joins rather than makes (`linux.namespaces[].path`, and those a front
//! end made beforehand): opened by spawner before clone, joined with setns by the container's first
//! process. A PID namespace is the exception: setns into one only moves the children of the caller,
//! so spawner enters it itself just before clone, and the container's first process is born there.

use crate::spec::{Config, NamespaceKind};
use rustix::fd::{BorrowedFd, OwnedFd};
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
