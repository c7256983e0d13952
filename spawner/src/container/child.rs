//! The container's first process, between clone and exec: it waits for spawner to put it into the
//! cgroup, joins the namespaces given by path, builds the root file system from the mount plan in
//! its new mount namespace and pivots into it, closes every fd it inherited, takes on the process's
//! hostname, credentials, capabilities, limits and seccomp filter, and execs the process (or our
//! init, from its sealed memfd, with the process after `--`). A failure is written to the error
//! pipe for spawner to report; success closes that pipe (close-on-exec) with nothing in it.

use super::mount_plan::Plan;
use super::rootfs::{self, Context};
use super::user;
use crate::cgroup::Version;
use crate::spec::{Capabilities, Config, NamespaceKind, Process};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::mount::MountAttrFlags;
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// Everything the child needs, prepared by spawner before clone.
pub struct ChildPlan<'a> {
    pub config: &'a Config,
    pub process: &'a Process,
    /// The root file system as a detached mount to attach at `config.root.path` (the front end's
    /// overlay, or the bundle's root bound onto itself).
    pub root: Root,
    pub mounts: Plan,
    /// The plan's sources, opened by spawner (see `rootfs::open_sources`).
    pub sources: Vec<OwnedFd>,
    pub cgroup_version: Version,
    /// What to write `0` into to join the container's cgroup (see `cgroup::join_self`).
    pub cgroup_join: Vec<PathBuf>,
    /// Namespaces to join: those the config gives by path, opened by spawner, and those the front
    /// end made (the network namespace): `setns` into each.
    pub join: Vec<(NamespaceKind, OwnedFd)>,
    /// Whether the container gets a cgroup namespace of its own (unshared once in its cgroup).
    pub new_cgroup_namespace: bool,
    /// Whether the container has a user namespace of its own, new (see `super::userns`: spawner
    /// has written its maps by the time it says go) or joined before clone: the process becomes
    /// its root, and spawner sets the process's limits.
    pub user_namespace: bool,
    /// runc's `--no-pivot`: the root is moved onto `/` and chrooted into (see
    /// `rootfs::move_into`) instead of pivot_root.
    pub no_pivot: bool,
    /// Namespaces given by path that an intermediate process joins before it clones this one (see
    /// `super::namespaces::clone_via`); taken out by spawner before clone.
    pub via: Vec<(NamespaceKind, OwnedFd)>,
    /// The compiled seccomp filter, when the container gets one.
    pub seccomp: Option<crate::seccomp::Filter>,
    /// The socket over which the pty master goes to spawner (or to the console socket's owner).
    pub console: Option<OwnedFd>,
    /// Our init from its sealed memfd, as the container's first process (`docker run --init`):
    /// the process's args follow its `--`.
    pub init: Option<&'a OwnedFd>,
    /// Docker's `User` (name, uid, `name:group`…), looked up in the image's /etc/passwd and
    /// /etc/group inside the container: it replaces the process's user, sets HOME when the
    /// environment has none, and leaves a non-root user no capabilities (Docker's rule).
    pub image_user: Option<&'a str>,
    /// Docker's `--group-add`: more groups for the process, by name (looked up in the image's
    /// /etc/group) or gid.
    pub group_add: &'a [String],
    /// The container dies with spawner (a foreground run): parent-death signal.
    pub die_with_spawner: bool,
    /// runc's create: set up, the process says so (one 0 byte on the error pipe) and waits until
    /// `start` opens this FIFO (an O_PATH fd), right before exec.
    pub exec_fifo: Option<OwnedFd>,
    /// `--preserve-fds N`: fds 3 to 3+N-1 stay open for the process.
    pub preserve_fds: u32,
    /// The config's hooks that concern the process (see `super::hooks`), when it has any.
    pub hooks: Option<ChildHooks<'a>>,
    /// The process's stdin, stdout and stderr, instead of spawner's (a detached container's: see
    /// `super::Captured`).
    pub stdio: Option<[OwnedFd; 3]>,
}

/// The hooks' part in the container's setup.
pub struct ChildHooks<'a> {
    pub identity: super::hooks::Identity<'a>,
    /// Spawner runs `prestart` and `createRuntime` once the mounts are made: the process stops there
    /// (a 1 byte on the error pipe) until spawner lets it on (a byte on the go pipe).
    pub runtime: bool,
    /// Run by the process, in its namespaces, before it pivots (paths resolve on the host).
    pub create_container: &'a [crate::spec::Hook],
    /// Run by the process after `start`, right before exec (paths resolve in the container).
    pub start_container: &'a [crate::spec::Hook],
}

/// The root file system, ready to attach.
pub enum Root {
    Overlay(rootfs::Overlay),
    Tree(OwnedFd),
}

/// Runs in the child after clone; never returns.
pub fn run(plan: ChildPlan<'_>, go: OwnedFd, errors: OwnedFd) -> ! {
    let err = match setup_and_exec(plan, go, &errors) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if READY_SENT.load(std::sync::atomic::Ordering::Relaxed) {
        // `create` has returned: the message goes to the container's stderr (the write to the error
        // pipe nobody reads any more must not kill us before that).
        let _ = rawsys::reset_signal_disposition(13);
        let _ = rustix::io::write(rustix::stdio::stderr(), format!("spawner: {err}\n").as_bytes());
    }
    let _ = rustix::io::write(&errors, err.as_bytes());
    rawsys::exit(if err.contains("executable file not found") || err.contains("no such file or directory") {
        127
    } else {
        125
    })
}

pub enum Never {}

fn setup_and_exec(plan: ChildPlan<'_>, go: OwnedFd, errors: &OwnedFd) -> Result<Never, String> {
    let die_with_parent = || match plan.die_with_spawner {
        true => rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL)),
        false => Ok(()),
    };
    die_with_parent().map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    if let Some([stdin, stdout, stderr]) = &plan.stdio {
        let dup = rustix::stdio::dup2_stdin(stdin)
            .and_then(|()| rustix::stdio::dup2_stdout(stdout))
            .and_then(|()| rustix::stdio::dup2_stderr(stderr));
        dup.map_err(|e| format!("dup2 onto stdio: {e}"))?;
    }
    // Spawner writes one byte once the container may go on: EOF means it died first.
    wait_for_go(&go);
    // Kept for the second go, after the runtime hooks.
    let go = plan.hooks.as_ref().is_some_and(|h| h.runtime).then_some(go);
    // Still the host's root (uid 0 unmapped in a new user namespace): the cgroup's files are its own.
    crate::cgroup::join_self(&plan.cgroup_join)?;
    log::debug!("container: in its cgroup");
    if plan.user_namespace {
        super::userns::become_root()?;
    }
    if plan.config.namespaces.iter().any(|ns| ns.kind == NamespaceKind::Time && ns.path.is_none()) {
        new_time_namespace(&plan.config.time_offsets)?;
    }
    // Before sysfs is mounted: /sys/class/net shows the network namespace of whoever mounts it.
    for (kind, fd) in &plan.join {
        super::namespaces::join(*kind, fd.as_fd())?;
    }
    // The container gets a session of its own: a keystroke's signal to the host terminal's foreground
    // group does not also hit it (spawner relays signals once), and without a terminal it has no
    // controlling one through which to push input into the host's (TIOCSTI).
    rustix::process::setsid().map_err(|e| format!("setsid: {e}"))?;
    let ChildPlan {
        config,
        process,
        root,
        mounts,
        sources,
        cgroup_version,
        console,
        init,
        image_user,
        group_add,
        exec_fifo,
        preserve_fds,
        hooks,
        ..
    } = plan;
    mount_rootfs(config, &root, &mounts, &sources, cgroup_version, plan.new_cgroup_namespace)
        .map_err(|e| e.to_string())?;
    // The hooks' state gives the process's pid as the host sees it: the host's /proc is still the
    // one at /proc.
    let start_hooks = match &hooks {
        Some(h) => {
            let pid = std::fs::read_link("/proc/self")
                .ok()
                .and_then(|p| p.to_str()?.parse().ok())
                .unwrap_or_else(|| rustix::process::getpid().as_raw_nonzero().get());
            if let Some(go) = go {
                rustix::io::write(errors, &[1]).map_err(|e| format!("report mounts made: {e}"))?;
                wait_for_go(&go);
            }
            super::hooks::run(
                "createContainer",
                h.create_container,
                &h.identity.state("creating", Some(pid)),
            )?;
            Some((h.start_container, h.identity.state("created", Some(pid))))
        }
        None => None,
    };
    enter_rootfs(config, &mounts, &sources, plan.no_pivot).map_err(|e| e.to_string())?;
    drop((root, sources));
    log::debug!("container: root file system ready");
    // From here on paths come from the image (the working directory, /etc/passwd): no host file or
    // directory may be reachable through an open fd (/proc/self/fd/N/.. was runc's CVE-2024-21626).
    // Every fd this process inherited from spawner is closed, bar the three it needs.
    let mut keep = vec![
        errors.as_raw_fd(),
        init.map_or(-1, |i| i.as_raw_fd()),
        console.as_ref().map_or(-1, |t| t.as_raw_fd()),
        exec_fifo.as_ref().map_or(-1, |f| f.as_raw_fd()),
    ];
    keep.extend((3..3 + preserve_fds).map(|fd| fd as i32));
    // These are closed with the rest just below: forgotten, so that nothing closes their numbers
    // again later (by then another file may have one of them; a debug build aborts on it).
    std::mem::forget(plan.join);
    std::mem::forget(plan.stdio);
    close_inherited(&keep)?;
    if let Some(socket) = &console {
        super::tty::attach_in_container(socket, process.console_size, true)?;
    }
    if let Some(persona) = config.personality {
        rawsys::personality(persona).map_err(|e| format!("personality({persona:#x}): {e}"))?;
    }
    if config.namespaces.iter().any(|ns| ns.kind == NamespaceKind::Uts) {
        if let Some(hostname) = &config.hostname {
            rustix::system::sethostname(hostname.as_bytes()).map_err(|e| format!("sethostname: {e}"))?;
        }
        if let Some(domainname) = &config.domainname {
            rustix::system::setdomainname(domainname.as_bytes())
                .map_err(|e| format!("setdomainname: {e}"))?;
        }
    }
    let process_plan = ProcessPlan {
        process,
        readonly_root: config.root.readonly,
        image_user,
        group_add,
        init,
        exec_fifo,
        preserve_fds,
        seccomp: plan.seccomp,
        die_with_spawner: plan.die_with_spawner,
        start_hooks,
        limits_applied: plan.user_namespace,
    };
    become_process(process_plan, errors)
}

/// A time namespace with the config's clock offsets. The process enters it at exec (a time
/// namespace takes in the children and the next program of whoever unshares it), and the offsets
/// must be written before anything runs in it.
fn new_time_namespace(offsets: &[crate::spec::TimeOffset]) -> Result<(), String> {
    // SAFETY: CLONE_NEWTIME changes no file descriptor table, and this process has one thread.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWTIME) }
        .map_err(|e| format!("unshare(CLONE_NEWTIME): {e}"))?;
    if offsets.is_empty() {
        return Ok(());
    }
    let text: String = offsets.iter().map(|o| format!("{} {} {}\n", o.clock, o.secs, o.nanosecs)).collect();
    std::fs::write("/proc/self/timens_offsets", text)
        .map_err(|e| format!("linux.timeOffsets: write /proc/self/timens_offsets: {e}"))
}

/// Blocks until spawner writes the go byte; exits when spawner is gone instead (EOF).
fn wait_for_go(go: &OwnedFd) {
    let mut byte = [0u8];
    loop {
        match rustix::io::read(go, &mut byte) {
            Ok(1) => return,
            Err(rustix::io::Errno::INTR) => continue,
            _ => rawsys::exit(125),
        }
    }
}

/// What the process part of the setup needs (the container's first process, or one `exec` runs in
/// a container that exists).
pub struct ProcessPlan<'a> {
    pub process: &'a Process,
    /// Make the root read-only once the working directory is made (config.json's root.readonly).
    pub readonly_root: bool,
    pub image_user: Option<&'a str>,
    /// See `ChildPlan::group_add`.
    pub group_add: &'a [String],
    pub init: Option<&'a OwnedFd>,
    pub exec_fifo: Option<OwnedFd>,
    pub preserve_fds: u32,
    pub seccomp: Option<crate::seccomp::Filter>,
    pub die_with_spawner: bool,
    /// `startContainer` hooks and the state they read, run after `start`, right before exec.
    pub start_hooks: Option<(&'a [crate::spec::Hook], String)>,
    /// Spawner set the process's rlimits and OOM score already (see `super::limits`).
    pub limits_applied: bool,
}

/// The process's own setup, in the container's mount namespace with every host fd closed: its user
/// and groups (looked up in the image for `image_user`), working directory, OOM score, rlimits,
/// capabilities, no_new_privs and seccomp filter, then exec (after `start`, with an exec FIFO).
pub fn become_process(plan: ProcessPlan<'_>, errors: &OwnedFd) -> Result<Never, String> {
    let ProcessPlan {
        process,
        readonly_root,
        image_user,
        group_add,
        init,
        exec_fifo,
        preserve_fds,
        seccomp,
        die_with_spawner,
        start_hooks,
        limits_applied,
    } = plan;
    let die_with_parent = || match die_with_spawner {
        true => rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL)),
        false => Ok(()),
    };
    let root_fd = rustix::fs::open("/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| format!("open /: {e}"))?;
    let mut creds = Credentials::of(process);
    if let Some(spec) = image_user {
        let passwd = read_image_file(root_fd.as_fd(), "/etc/passwd")?;
        let group = read_image_file(root_fd.as_fd(), "/etc/group")?;
        let found = user::resolve(spec, &passwd, &group).map_err(|e| e.to_string())?;
        creds = Credentials {
            uid: found.uid,
            gid: found.gid,
            groups: found.groups,
            home: Some(found.home),
            ..creds
        };
        // Docker's rule: a non-root user keeps none of the capabilities.
        if creds.uid != 0 {
            let none = rustix::thread::CapabilitySet::empty();
            creds.capabilities =
                Capabilities { effective: none, permitted: none, ambient: none, ..creds.capabilities };
        }
    }
    if !group_add.is_empty() {
        let group = read_image_file(root_fd.as_fd(), "/etc/group")?;
        for name in group_add {
            let gid = user::resolve_group(name, &group).map_err(|e| e.to_string())?;
            if !creds.groups.contains(&gid) {
                creds.groups.push(gid);
            }
        }
    }
    // A working directory through a file descriptor (/proc/self/fd/N) is refused by name, for a clear
    // message; the in-root lookup below could not follow it anyway.
    if is_fd_path(&process.cwd) {
        return Err(format!(
            "working directory {} is not allowed (a path through a file descriptor)",
            process.cwd.display()
        ));
    }
    // A missing working directory is made (as root, 0755, before dropping privileges, as runc and
    // Docker do): made and opened inside the root, so a symlink in the image resolves in the rootfs,
    // never on the host.
    let cwd = process.cwd.as_path();
    let cwd_fd = rootfs::open_in_root(root_fd.as_fd(), cwd, rootfs::Target::Dir)
        .map_err(|e| format!("working directory {}: {e}", cwd.display()))?;
    drop(root_fd);
    // Read-only once the working directory is made (as runc: a missing one is made first).
    if readonly_root {
        let slash = rustix::fs::open("/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| format!("open /: {e}"))?;
        // Only the flag: the root's other flags (nodev on an overlay of store layers) stay.
        let rdonly = u64::from(MountAttrFlags::MOUNT_ATTR_RDONLY.bits());
        rawsys::mount::mount_setattr(slash.as_fd(), rdonly, 0, false)
            .map_err(|e| format!("make / read-only: {e}"))?;
    }
    // As runc does: enter the working directory while still root (a user may run in a directory it
    // could not enter itself, such as Debian's /root under -u nobody), and again as the user below
    // only if root was refused.
    let entered_as_root = rustix::process::fchdir(&cwd_fd).is_ok();
    if !limits_applied {
        super::limits::apply(None, process, init.is_some())?;
    }
    // Nothing spawner inherited or opened reaches the container: only 0, 1 and 2 (and the fds to
    // preserve) survive the exec.
    rawsys::cloexec_from(3 + preserve_fds).map_err(|e| format!("close_range(CLOEXEC): {e}"))?;
    let caps = &creds.capabilities;
    super::security::limit_bounding_set(caps.bounding)?;
    // The filter goes in as late as it can (so that the setup is not bound by it, as with runc),
    // but without no_new_privs only while CAP_SYS_ADMIN is still held: the kernel requires one of
    // the two, and no_new_privs off must stay off.
    let seccomp_now = |filter: &Option<crate::seccomp::Filter>| match filter {
        Some(filter) => super::security::install_seccomp(filter),
        None => Ok(()),
    };
    if !process.no_new_privileges {
        seccomp_now(&seccomp)?;
    }
    super::security::change_user(creds.uid, creds.gid, &creds.groups, caps)?;
    if process.no_new_privileges {
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
    let umask = creds.umask.unwrap_or(0o022);
    rustix::process::umask(Mode::from_raw_mode(umask));
    // A credential change clears the parent-death signal: set it again.
    die_with_parent().map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;

    let mut env = process.env.clone();
    if let Some(home) = &creds.home {
        if get_env(&env, "HOME").is_none() {
            env.push(format!("HOME={home}"));
        }
    }
    if process.terminal && get_env(&env, "TERM").is_none() {
        env.push("TERM=xterm".into());
    }
    let env = c_strings(&env.iter().map(String::as_str).collect::<Vec<_>>())?;
    let env_ptrs = null_terminated(&env);
    // A program that is not there fails create, as with runc, not start.
    let program = match init {
        Some(_) => None,
        None => Some(find_program(&process.args[0], &process.env)?),
    };
    // Held open until the exec closes it (CLOEXEC): `start` returns once it sees that, so that
    // poststart hooks run after the process has started, as the spec orders.
    let _started = exec_fifo.as_ref().map(|fifo| wait_for_start(errors, fifo)).transpose()?;
    if let Some((hooks, state)) = &start_hooks {
        super::hooks::run("startContainer", hooks, state)?;
    }
    match init {
        Some(init) => {
            let argv: Vec<&str> =
                ["init", "--"].into_iter().chain(process.args.iter().map(String::as_str)).collect();
            let argv = c_strings(&argv)?;
            let argv_ptrs = null_terminated(&argv);
            log::debug!("container: exec init");
            if process.no_new_privileges {
                seccomp_now(&seccomp)?;
            }
            // SAFETY: both arrays are NULL-terminated and point into `argv`/`env`, which outlive the call.
            let errno =
                unsafe { rawsys::execveat_fd(init.as_raw_fd(), argv_ptrs.as_ptr(), env_ptrs.as_ptr()) };
            Err(format!("exec init: {errno}"))
        }
        None => {
            let program = program.expect("looked up above");
            let argv = c_strings(&process.args.iter().map(String::as_str).collect::<Vec<_>>())?;
            let argv_ptrs = null_terminated(&argv);
            let path = CString::new(program.as_os_str().as_encoded_bytes())
                .map_err(|_| format!("exec: {:?}: contains a NUL byte", process.args[0]))?;
            // The process starts with no signal blocked and the default dispositions (spawner's Rust
            // runtime ignores SIGPIPE; an ignored signal would survive the exec).
            let _ = rawsys::reset_signal_disposition(13);
            rawsys::set_signal_mask(0).map_err(|e| format!("sigprocmask: {e}"))?;
            log::debug!("container: exec {}", program.display());
            if process.no_new_privileges {
                seccomp_now(&seccomp)?;
            }
            // SAFETY: `path` is NUL-terminated; both arrays are NULL-terminated and point into
            // `argv`/`env`, which outlive the call.
            let errno =
                unsafe { rawsys::execve(path.as_ptr() as *const u8, argv_ptrs.as_ptr(), env_ptrs.as_ptr()) };
            Err(exec_error(&process.args[0], &program, errno))
        }
    }
}

/// Set once `create` was told the process is ready: a failure after that is no longer `create`'s to
/// report.
static READY_SENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// runc's exec FIFO: tells `create` the container is ready (a 0 byte on the error pipe), then blocks
/// opening the FIFO for writing until `start` opens it for reading, and writes it one byte. Returns
/// the FIFO's write end, which `start` waits to see closed. A failure after this point is the
/// container's own: it goes to its stderr too, since `create` has stopped reading the error pipe.
fn wait_for_start(errors: &OwnedFd, fifo: &OwnedFd) -> Result<OwnedFd, String> {
    rustix::io::write(errors, &[0]).map_err(|e| format!("report ready: {e}"))?;
    READY_SENT.store(true, std::sync::atomic::Ordering::Relaxed);
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let fifo = rustix::fs::open(path.as_str(), OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| format!("open the exec FIFO: {e}"))?;
    rustix::io::write(&fifo, b"0").map_err(|e| format!("write the exec FIFO: {e}"))?;
    Ok(fifo)
}

/// The process's credentials as they will be set.
struct Credentials {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    umask: Option<u32>,
    home: Option<String>,
    capabilities: Capabilities,
}

impl Credentials {
    fn of(process: &Process) -> Credentials {
        let user = &process.user;
        let mut groups = vec![user.gid];
        groups.extend(user.additional_gids.iter().filter(|g| **g != user.gid));
        Credentials {
            uid: user.uid,
            gid: user.gid,
            groups,
            umask: user.umask,
            home: None,
            capabilities: process.capabilities.clone(),
        }
    }
}

fn get_env<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter().find_map(|e| e.strip_prefix(name)?.strip_prefix('='))
}

/// args[0] as exec finds it: a path with a slash as it is, else the first executable file of that
/// name in the process's PATH (runc's lookup; the default PATH when it has none).
fn find_program(name: &str, env: &[String]) -> Result<PathBuf, String> {
    if name.contains('/') {
        return match std::fs::metadata(name) {
            Ok(_) => Ok(PathBuf::from(name)),
            Err(e) => Err(format!("exec: {name:?}: stat {name}: {}", exec_error_text(e.raw_os_error()))),
        };
    }
    let path = get_env(env, "PATH").unwrap_or(crate::docker::process::DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK).is_ok()
            && std::fs::metadata(&candidate).is_ok_and(|m| m.is_file())
        {
            return Ok(candidate);
        }
    }
    Err(format!("exec: {name:?}: executable file not found in $PATH"))
}

/// runc's wording of an exec failure, which engines read to choose 127 or 126 (Go's lower-case
/// errno texts: `no such file or directory`, `permission denied`).
fn exec_error(name: &str, program: &Path, errno: rustix::io::Errno) -> String {
    let text = exec_error_text(Some(errno.raw_os_error()));
    if errno == rustix::io::Errno::NOENT {
        format!("exec: {name:?}: stat {}: {text}", program.display())
    } else {
        format!("exec: {name:?}: {text}")
    }
}

fn exec_error_text(errno: Option<i32>) -> String {
    match errno.map(rustix::io::Errno::from_raw_os_error) {
        Some(rustix::io::Errno::NOENT) => "no such file or directory".into(),
        Some(rustix::io::Errno::ACCESS) => "permission denied".into(),
        Some(rustix::io::Errno::NOEXEC) => "exec format error".into(),
        Some(e) => e.to_string().to_lowercase(),
        None => "unknown error".into(),
    }
}

/// Closes every fd from 3 up but those in `keep` (-1 entries ignored). The fds closed belong to
/// spawner's objects, which this process never drops: it execs or exits.
pub(super) fn close_inherited(keep: &[i32]) -> Result<(), String> {
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

/// `/proc/self/fd/N`, `/proc/thread-self/fd/N`, `/proc/PID/fd/N` (and below them).
fn is_fd_path(path: &Path) -> bool {
    let parts: Vec<&str> =
        path.to_str().unwrap_or("").split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    matches!(parts.as_slice(), ["proc", who, "fd", ..] if *who == "self" || *who == "thread-self" || who.parse::<u32>().is_ok())
}

fn c_strings(items: &[&str]) -> Result<Vec<CString>, String> {
    items.iter().map(|s| CString::new(*s).map_err(|_| format!("{s:?} contains a NUL byte"))).collect()
}

fn null_terminated(items: &[CString]) -> Vec<*const u8> {
    items.iter().map(|c| c.as_ptr() as *const u8).chain(std::iter::once(std::ptr::null())).collect()
}

/// The container's mounts, made below its root in its own mount namespace (the host's root is
/// still `/`: the runtime hooks run now).
fn mount_rootfs(
    config: &Config,
    root: &Root,
    plan: &Plan,
    sources: &[OwnedFd],
    cgroup_version: Version,
    new_cgroup_namespace: bool,
) -> rootfs::Result<()> {
    if new_cgroup_namespace {
        // A cgroup namespace rooted at the container's cgroup (joined at the start).
        // SAFETY: CLONE_NEWCGROUP changes no file descriptor table, and this process has one thread.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWCGROUP) }
            .context(|| "unshare(CLONE_NEWCGROUP)".into())?;
    }
    // Nothing mounted from here on may propagate back to the host.
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .context(|| "make / private".into())?;
    rustix::process::umask(rustix::fs::Mode::empty());
    let root_path = &config.root.path;
    match root {
        Root::Overlay(overlay) => rootfs::attach_overlay(overlay, root_path)?,
        Root::Tree(tree) => rustix::mount::move_mount(
            tree,
            "",
            rustix::fs::CWD,
            root_path,
            rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .context(|| format!("attach the root at {}", root_path.display()))?,
    }
    // The root's clone keeps its source's propagation (shared, under dockerd's data root), and
    // pivot_root refuses a shared new root: private, as everything else here (rootfsPropagation
    // is applied after the pivot).
    rustix::mount::mount_change(
        root_path,
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .context(|| format!("make the root at {} private", root_path.display()))?;
    let root_fd =
        rustix::fs::open(root_path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .context(|| format!("open {}", root_path.display()))?;
    rootfs::execute(root_fd.as_fd(), plan, sources, cgroup_version)
}

/// Pivots into the root, then what needs the container's /proc: propagation, sysctls, masks.
fn enter_rootfs(config: &Config, plan: &Plan, sources: &[OwnedFd], no_pivot: bool) -> rootfs::Result<()> {
    let root_path = &config.root.path;
    match no_pivot {
        true => {
            rootfs::move_into(root_path)?;
            log::debug!("container: root moved onto / and chrooted into (no pivot_root)");
        }
        false => {
            rootfs::pivot_into(root_path)?;
            log::debug!("container: pivoted into the root");
        }
    }
    if let Some(propagation) = config.rootfs_propagation {
        let slash = rustix::fs::open("/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .context(|| "open /".into())?;
        rootfs::set_propagation(slash.as_fd(), propagation).context(|| "rootfsPropagation".into())?;
    }
    // Before /proc/sys is made read-only below.
    for (key, value) in &config.sysctl {
        write_sysctl(key, value)?;
    }
    if !config.masked_paths.is_empty() || !config.readonly_paths.is_empty() {
        rootfs::mask_paths(&sources[plan.devnull], &config.masked_paths, &config.readonly_paths)?;
    }
    Ok(())
}

/// Writes one `linux.sysctl` entry through the container's own /proc/sys.
fn write_sysctl(key: &str, value: &str) -> rootfs::Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let fd = rustix::fs::openat2(
        rustix::fs::CWD,
        &path,
        OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        rustix::fs::ResolveFlags::NO_MAGICLINKS | rustix::fs::ResolveFlags::NO_SYMLINKS,
    )
    .context(|| format!("sysctl {key}: open {path}"))?;
    rustix::io::write(&fd, value.as_bytes()).context(|| format!("sysctl {key}={value}"))?;
    Ok(())
}
