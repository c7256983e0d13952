//! The container's first process, between clone and exec: it waits for the parent to put it into the
//! cgroup, builds the rootfs in its new mount namespace, pivots into it, takes on the container's
//! hostname and credentials, and execs init (the sealed memfd) as PID 1. A failure is written to the
//! error pipe for the parent to report; success closes that pipe (close-on-exec) with nothing in it.

use super::process::{get_env, set_env, ProcessSpec};
use super::rootfs::{self, Context};
use super::user;
use crate::cgroup::Version;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::mount::MountAttrFlags;
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// A `-v HOST:CONTAINER[:OPTIONS]` bind mount, as the user gave it (the source is opened once, into
/// a [`rootfs::VolumeTree`], before the container is made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub host: PathBuf,
    pub container: PathBuf,
    pub read_only: bool,
    /// `dev`: device nodes in the volume open (default: nodev, as the rest of the container).
    pub devices: bool,
    /// `suid`: setuid and setgid bits in the volume take effect (default: nosuid).
    pub setuid: bool,
    /// `noexec`: nothing in the volume can be executed.
    pub noexec: bool,
}

/// Everything the child mounts, prepared by the parent before clone: consumed (and so closed) by
/// [`build_rootfs`] before the container's own content is used.
pub struct Mounts {
    /// The root file system (layers, upper and work directories), mounted but not attached yet.
    pub overlay: rootfs::Overlay,
    /// Where the overlay goes (the container's directory, in the child's mount namespace).
    pub merged: PathBuf,
    /// A detached tmpfs with /etc/hostname, /etc/hosts and /etc/resolv.conf (`super::ETC_FILES`).
    pub etc_files: OwnedFd,
    /// The host's device nodes for /dev (the first is /dev/null, used again for masking).
    pub devices: Vec<super::devices::DeviceMount>,
    /// `-v` sources as detached trees, with where each goes.
    pub volumes: Vec<(rootfs::VolumeTree, PathBuf)>,
    pub read_only: bool,
    /// Mask and make read-only the /proc and /sys paths Docker does.
    pub mask_paths: bool,
    pub cgroup_version: Version,
}

/// Everything the child needs, prepared by the parent before clone.
pub struct ChildPlan {
    pub mounts: Mounts,
    /// The container's network namespace (made beforehand, loopback up), or None for `--net host`.
    pub net: Option<OwnedFd>,
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
    let err = match setup_and_exec(plan, go, &errors, init) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = rustix::io::write(&errors, err.as_bytes());
    rawsys::exit(125)
}

enum Never {}

fn setup_and_exec(plan: ChildPlan, go: OwnedFd, errors: &OwnedFd, init: &OwnedFd) -> Result<Never, String> {
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
    let ChildPlan { mounts, net, cgroup_join, spec, security, seccomp, tty } = plan;
    drop((net, cgroup_join));
    build_rootfs(mounts).map_err(|e| e.to_string())?;
    log::debug!("container: root file system ready");
    // From here on paths come from the image (WorkingDir, /etc/passwd): no host file or directory may
    // be reachable through an open fd (/proc/self/fd/N/.. was runc's CVE-2024-21626). Every fd this
    // process inherited from spawner is closed, bar the three it needs.
    let keep = [errors.as_raw_fd(), init.as_raw_fd(), tty.as_ref().map_or(-1, |t| t.as_raw_fd())];
    close_inherited(&keep)?;
    if let Some(socket) = &tty {
        super::tty::attach_in_container(socket)?;
    }
    rustix::system::sethostname(spec.hostname.as_bytes()).map_err(|e| format!("sethostname: {e}"))?;
    let root = rustix::fs::open("/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| format!("open /: {e}"))?;
    let creds = {
        let passwd = read_image_file(root.as_fd(), "/etc/passwd")?;
        let group = read_image_file(root.as_fd(), "/etc/group")?;
        user::resolve(&spec.user, &passwd, &group).map_err(|e| e.to_string())?
    };
    // A working directory through a file descriptor (/proc/self/fd/N) is refused by name, for a clear
    // message; the in-root lookup below could not follow it anyway.
    if is_fd_path(&spec.cwd) {
        return Err(format!(
            "working directory {} is not allowed (a path through a file descriptor)",
            spec.cwd
        ));
    }
    // Docker creates a missing WorkingDir (as root, 0755, before dropping privileges): created and
    // opened inside the root, so a symlink in the image resolves in the rootfs, never on the host.
    let cwd = Path::new(&spec.cwd);
    let cwd_fd = rootfs::open_in_root(root.as_fd(), cwd, rootfs::Target::Dir)
        .map_err(|e| format!("working directory {}: {e}", cwd.display()))?;
    drop(root);
    // As runc does: enter the working directory while still root (a user may run in a directory it
    // could not enter itself, such as Debian's /root under -u nobody), and again as the user below
    // only if root was refused.
    let entered_as_root = rustix::process::fchdir(&cwd_fd).is_ok();
    // init must outlive an OOM kill in the container to report it: shield it (this needs
    // CAP_SYS_RESOURCE, which not every host's bounding set has; then init takes its chances). init
    // gives its own child the neutral score again.
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open("/proc/self/oom_score_adj") {
        let _ = std::io::Write::write_all(&mut f, b"-1000");
    }
    // Nothing spawner inherited or opened reaches the container: only 0, 1 and 2 survive the exec.
    rawsys::cloexec_from(3).map_err(|e| format!("close_range(CLOEXEC): {e}"))?;
    let sec = &security;
    super::security::limit_bounding_set(sec.capabilities)?;
    super::security::clear_inheritable()?;
    // The filter goes in as late as it can (so that the setup is not bound by it, as with runc),
    // but without no_new_privs only while CAP_SYS_ADMIN is still held: the kernel requires one of
    // the two, and `no-new-privileges=false` must leave no_new_privs off.
    let seccomp_now = |filter: &Option<crate::seccomp::Filter>| match filter {
        Some(filter) => super::security::install_seccomp(filter),
        None => Ok(()),
    };
    if !sec.no_new_privs {
        seccomp_now(&seccomp)?;
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
        rustix::process::fchdir(&cwd_fd)
            .map_err(|e| format!("chdir to working directory {}: {e}", cwd.display()))?;
    }
    drop(cwd_fd);
    match rustix::process::getcwd(Vec::new()) {
        Ok(dir) if dir.to_bytes().starts_with(b"/") => {}
        _ => return Err(format!("working directory {} is outside the container", cwd.display())),
    }
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    // A credential change clears the parent-death signal: set it again.
    die_with_parent().map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;

    let mut env = spec.env;
    if get_env(&env, "HOME").is_none() {
        set_env(&mut env, format!("HOME={}", creds.home));
    }
    if tty.is_some() && get_env(&env, "TERM").is_none() {
        set_env(&mut env, "TERM=xterm".into());
    }
    let argv: Vec<&str> = ["init", "--"].into_iter().chain(spec.argv.iter().map(String::as_str)).collect();
    let argv = c_strings(&argv)?;
    let env = c_strings(&env.iter().map(String::as_str).collect::<Vec<_>>())?;
    let (argv_ptrs, env_ptrs) = (null_terminated(&argv), null_terminated(&env));
    log::debug!("container: exec init");
    if sec.no_new_privs {
        seccomp_now(&seccomp)?;
    }
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

/// Closes every fd from 3 up but those in `keep` (-1 entries ignored). The fds closed belong to
/// spawner's objects, which this process never drops: it execs or exits.
fn close_inherited(keep: &[i32]) -> Result<(), String> {
    let mut keep: Vec<u32> = keep.iter().filter(|&&fd| fd >= 3).map(|&fd| fd as u32).collect();
    keep.sort_unstable();
    let mut first = 3u32;
    for fd in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if fd > first {
            rawsys::close_range(first, fd - 1).map_err(|e| format!("close_range: {e}"))?;
        }
        first = fd.saturating_add(1);
    }
    Ok(())
}

/// The most of /etc/passwd or /etc/group spawner reads (a file that size holds ~800,000 users).
const MAX_ACCOUNT_FILE: u64 = 64 << 20;

/// The image's `path` (/etc/passwd, /etc/group) as text, empty when it has none. Opened inside the
/// root (a symlink cannot lead to a host file), without blocking (a FIFO cannot hang the setup),
/// only if it is a regular file (not /dev/zero), and at most [`MAX_ACCOUNT_FILE`] bytes.
fn read_image_file(root: BorrowedFd<'_>, path: &str) -> Result<String, String> {
    use rustix::fs::{openat2, FileType, ResolveFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let fd = match openat2(root, path.trim_start_matches('/'), flags, Mode::empty(), resolve) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(String::new()),
        Err(e) => return Err(format!("the image's {path}: {e}")),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| format!("the image's {path}: {e}"))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(format!("the image's {path} is not a regular file"));
    }
    if st.st_size as u64 > MAX_ACCOUNT_FILE {
        return Err(format!("the image's {path} is larger than {} MiB", MAX_ACCOUNT_FILE >> 20));
    }
    let mut text = Vec::with_capacity(st.st_size as usize);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::from(fd), MAX_ACCOUNT_FILE),
        &mut text,
    )
    .map_err(|e| format!("read the image's {path}: {e}"))?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

fn build_rootfs(mounts: Mounts) -> rootfs::Result<()> {
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
    rootfs::attach_overlay(&mounts.overlay, &mounts.merged)?;
    let root =
        rustix::fs::open(&mounts.merged, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .context(|| format!("open {}", mounts.merged.display()))?;
    let root = root.as_fd();
    let hidden = MountAttrFlags::MOUNT_ATTR_NOSUID
        | MountAttrFlags::MOUNT_ATTR_NODEV
        | MountAttrFlags::MOUNT_ATTR_NOEXEC;
    rootfs::mount_in_root(root, "/proc", "proc", &[], hidden)?;
    rootfs::mount_in_root(root, "/sys", "sysfs", &[], hidden | MountAttrFlags::MOUNT_ATTR_RDONLY)?;
    rootfs::mount_cgroups(root, mounts.cgroup_version)?;
    rootfs::populate_dev(root, &mounts.devices)?;
    rootfs::bind_etc_files(root, &mounts.etc_files, &super::ETC_FILES)?;
    for (volume, target) in &mounts.volumes {
        rootfs::attach_in_root(root, &volume.tree, target, volume.kind)?;
    }
    rootfs::pivot_into(&mounts.merged)?;
    if mounts.read_only {
        // A bind remount replaces the mount's flags: `nodev` (the root's) must be given again.
        use rustix::mount::MountFlags;
        rustix::mount::mount_remount("/", MountFlags::BIND | MountFlags::RDONLY | MountFlags::NODEV, "")
            .context(|| "remount / read-only".into())?;
    }
    if mounts.mask_paths {
        let devnull = &mounts.devices.first().expect("/dev/null is the first device").tree;
        rootfs::mask_paths(devnull, &masked_paths(), &super::security::READONLY_PATHS)?;
    }
    Ok(())
}

/// Docker's masked paths, with `/sys/devices/system/cpu/*/thermal_throttle` expanded for this
/// machine's CPUs.
fn masked_paths() -> Vec<String> {
    let mut paths: Vec<String> = super::security::MASKED_PATHS.iter().map(|p| p.to_string()).collect();
    if let Ok(cpus) = std::fs::read_dir("/sys/devices/system/cpu") {
        for cpu in cpus.flatten() {
            let name = cpu.file_name();
            let number = name.to_str().and_then(|n| n.strip_prefix("cpu"));
            // Masking skips a path that does not exist.
            if number.is_some_and(|n| n.parse::<u32>().is_ok()) {
                paths.push(cpu.path().join("thermal_throttle").display().to_string());
            }
        }
    }
    paths
}
