//! The container's first process, between clone and exec: it waits for the parent to put it into the
//! cgroup, builds the rootfs in its new mount namespace, pivots into it, takes on the container's
//! hostname and credentials, and execs init (the sealed memfd) as PID 1. A failure is written to the
//! error pipe for the parent to report; success closes that pipe (close-on-exec) with nothing in it.

use super::process::{get_env, set_env, ProcessSpec};
use super::rootfs::{self, Context};
use super::user;
use crate::cgroup::Version;
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::mount::MountAttrFlags;
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// A `-v host:container[:ro]` bind mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub host: PathBuf,
    pub container: PathBuf,
    pub read_only: bool,
}

/// Everything the child needs, prepared by the parent before clone.
pub struct ChildPlan {
    /// The root file system (layers, upper and work directories), mounted but not attached yet.
    pub overlay: rootfs::Overlay,
    /// Where the overlay goes (the container's directory, in the child's mount namespace).
    pub merged: PathBuf,
    /// A detached tmpfs with /etc/hostname, /etc/hosts and /etc/resolv.conf (`super::ETC_FILES`).
    pub etc_files: OwnedFd,
    pub volumes: Vec<Volume>,
    pub read_only: bool,
    /// The container's network namespace (made beforehand, loopback up), or None for `--net host`.
    pub net: Option<OwnedFd>,
    pub cgroup_version: Version,
    /// What to write `0` into to join the container's cgroup (see `cgroup::join_self`).
    pub cgroup_join: Vec<PathBuf>,
    pub spec: ProcessSpec,
    pub security: super::security::Security,
    /// The compiled seccomp filter, when the container gets one.
    pub seccomp: Option<crate::seccomp::Filter>,
    /// With `-t`: the socket over which the container's pty master goes to spawner.
    pub tty: Option<OwnedFd>,
}

/// Runs in the child after clone; never returns.
pub fn run(plan: ChildPlan, go: OwnedFd, errors: OwnedFd, init: &OwnedFd) -> ! {
    let err = match setup_and_exec(plan, go, init) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = rustix::io::write(&errors, err.as_bytes());
    rawsys::exit(125)
}

enum Never {}

fn setup_and_exec(plan: ChildPlan, go: OwnedFd, init: &OwnedFd) -> Result<Never, String> {
    let die_with_parent =
        || rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    die_with_parent().map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    // The parent writes one byte right after clone: EOF means it died before the death signal was set.
    let mut byte = [0u8];
    if rustix::io::read(&go, &mut byte) != Ok(1) {
        rawsys::exit(125);
    }
    drop(go);
    crate::cgroup::join_self(&plan.cgroup_join)?;
    log::debug!("container: in its cgroup");
    // Before sysfs is mounted: /sys/class/net shows the network namespace of whoever mounts it.
    if let Some(net) = &plan.net {
        super::net::join(net)?;
    }
    // The container gets a session of its own: a keystroke's signal to the host terminal's foreground
    // group does not also hit it (spawner relays signals once), and without -t it has no controlling
    // terminal through which to push input into the host's (TIOCSTI).
    rustix::process::setsid().map_err(|e| format!("setsid: {e}"))?;
    build_rootfs(&plan).map_err(|e| e.to_string())?;
    log::debug!("container: root file system ready");
    if let Some(socket) = &plan.tty {
        super::tty::attach_in_container(socket)?;
    }
    rustix::system::sethostname(plan.spec.hostname.as_bytes()).map_err(|e| format!("sethostname: {e}"))?;
    let creds = {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
        user::resolve(&plan.spec.user, &passwd, &group).map_err(|e| e.to_string())?
    };
    // A working directory through a leaked fd (/proc/self/fd/N) would be a host directory
    // (CVE-2024-21626): refused by name before anything is created there, checked again after chdir.
    if is_fd_path(&plan.spec.cwd) {
        return Err(format!(
            "working directory {} is not allowed (a path through a file descriptor)",
            plan.spec.cwd
        ));
    }
    // Docker creates a missing WorkingDir (as root, before dropping privileges).
    let cwd = Path::new(&plan.spec.cwd);
    if std::fs::metadata(cwd).is_err() {
        std::fs::create_dir_all(cwd)
            .map_err(|e| format!("create working directory {}: {e}", cwd.display()))?;
    }
    // As runc does: enter the working directory while still root (a user may run in a directory it
    // could not enter itself, such as Debian's /root under -u nobody), and again as the user below
    // only if root was refused.
    let entered_as_root = rustix::process::chdir(cwd).is_ok();
    // init must outlive an OOM kill in the container to report it: shield it (this needs
    // CAP_SYS_RESOURCE, which not every host's bounding set has; then init takes its chances). init
    // gives its own child the neutral score again.
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open("/proc/self/oom_score_adj") {
        let _ = std::io::Write::write_all(&mut f, b"-1000");
    }
    // Nothing spawner inherited or opened reaches the container: only 0, 1 and 2 survive the exec.
    rawsys::cloexec_from(3).map_err(|e| format!("close_range(CLOEXEC): {e}"))?;
    let sec = &plan.security;
    super::security::limit_bounding_set(sec.capabilities)?;
    // While still root with every capability (so without needing no_new_privs first).
    if let Some(program) = &plan.seccomp {
        super::security::install_seccomp(program)?;
    }
    let groups: Vec<rustix::process::Gid> =
        creds.groups.iter().map(|&g| rustix::process::Gid::from_raw(g)).collect();
    rustix::thread::set_thread_groups(&groups).map_err(|e| format!("setgroups: {e}"))?;
    rustix::thread::set_thread_gid(rustix::process::Gid::from_raw(creds.gid))
        .map_err(|e| format!("setgid {}: {e}", creds.gid))?;
    rustix::thread::set_thread_uid(rustix::process::Uid::from_raw(creds.uid))
        .map_err(|e| format!("setuid {}: {e}", creds.uid))?;
    // A non-root user lost every capability with the uid change, as in Docker.
    if creds.uid == 0 {
        super::security::set_capabilities(sec.capabilities)?;
    }
    if sec.no_new_privs {
        rustix::thread::set_no_new_privs(true).map_err(|e| format!("prctl(PR_SET_NO_NEW_PRIVS): {e}"))?;
    }
    if !entered_as_root {
        rustix::process::chdir(cwd)
            .map_err(|e| format!("chdir to working directory {}: {e}", cwd.display()))?;
    }
    match rustix::process::getcwd(Vec::new()) {
        Ok(dir) if dir.to_bytes().starts_with(b"/") => {}
        _ => return Err(format!("working directory {} is outside the container", cwd.display())),
    }
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    // A credential change clears the parent-death signal: set it again.
    die_with_parent().map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;

    let mut env = plan.spec.env.clone();
    if get_env(&env, "HOME").is_none() {
        set_env(&mut env, format!("HOME={}", creds.home));
    }
    if plan.tty.is_some() && get_env(&env, "TERM").is_none() {
        set_env(&mut env, "TERM=xterm".into());
    }
    let argv: Vec<&str> =
        ["init", "--"].into_iter().chain(plan.spec.argv.iter().map(String::as_str)).collect();
    let argv = c_strings(&argv)?;
    let env = c_strings(&env.iter().map(String::as_str).collect::<Vec<_>>())?;
    let (argv_ptrs, env_ptrs) = (null_terminated(&argv), null_terminated(&env));
    log::debug!("container: exec init");
    // SAFETY: both arrays are NULL-terminated and point into `argv`/`env`, which outlive the call.
    let errno = unsafe { rawsys::execveat_fd(init.as_raw_fd(), argv_ptrs.as_ptr(), env_ptrs.as_ptr()) };
    Err(format!("exec init: {errno}"))
}

/// `/proc/self/fd/N`, `/proc/thread-self/fd/N`, `/proc/PID/fd/N` (and below them).
fn is_fd_path(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    matches!(parts.as_slice(), ["proc", who, "fd", ..] if *who == "self" || *who == "thread-self" || who.parse::<u32>().is_ok())
}

fn c_strings(items: &[&str]) -> Result<Vec<CString>, String> {
    items.iter().map(|s| CString::new(*s).map_err(|_| format!("{s:?} contains a NUL byte"))).collect()
}

fn null_terminated(items: &[CString]) -> Vec<*const u8> {
    items.iter().map(|c| c.as_ptr() as *const u8).chain(std::iter::once(std::ptr::null())).collect()
}

fn build_rootfs(plan: &ChildPlan) -> rootfs::Result<()> {
    // A cgroup namespace rooted at the container's cgroup (joined at the start).
    // SAFETY: CLONE_NEWCGROUP changes no file descriptor table, and this process has one thread.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWCGROUP) }
        .context(|| "unshare(CLONE_NEWCGROUP)".into())?;
    // Nothing mounted from here on may propagate back to the host.
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .context(|| "make / private".into())?;
    rustix::process::umask(rustix::fs::Mode::empty());
    rootfs::attach_overlay(&plan.overlay, &plan.merged)?;
    let root = rustix::fs::open(
        &plan.merged,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .context(|| format!("open {}", plan.merged.display()))?;
    let root = root.as_fd();
    let hidden = MountAttrFlags::MOUNT_ATTR_NOSUID
        | MountAttrFlags::MOUNT_ATTR_NODEV
        | MountAttrFlags::MOUNT_ATTR_NOEXEC;
    rootfs::mount_in_root(root, "/proc", "proc", &[], hidden)?;
    rootfs::mount_in_root(root, "/sys", "sysfs", &[], hidden | MountAttrFlags::MOUNT_ATTR_RDONLY)?;
    rootfs::mount_cgroups(root, plan.cgroup_version)?;
    rootfs::populate_dev(root)?;
    rootfs::bind_etc_files(root, &plan.etc_files, &super::ETC_FILES)?;
    for v in &plan.volumes {
        rootfs::bind_in_root(root, &v.host, &v.container)?;
    }
    rootfs::pivot_into(&plan.merged)?;
    for v in plan.volumes.iter().filter(|v| v.read_only) {
        remount_read_only(&v.container, false)?;
    }
    if plan.read_only {
        remount_read_only(Path::new("/"), true)?;
    }
    if plan.security.mask_paths {
        rootfs::mask_paths(&super::security::MASKED_PATHS, &super::security::READONLY_PATHS)?;
    }
    Ok(())
}

/// A bind remount replaces the mount's flags: `nodev` (the root's) must be given again.
fn remount_read_only(path: &Path, nodev: bool) -> rootfs::Result<()> {
    use rustix::mount::MountFlags;
    let flags =
        MountFlags::BIND | MountFlags::RDONLY | if nodev { MountFlags::NODEV } else { MountFlags::empty() };
    rustix::mount::mount_remount(path, flags, "").context(|| format!("remount {} read-only", path.display()))
}
