//! Running one container, in the order it happens: open the image, make sure its layers are in the
//! store, prepare the container's directory and /etc files, create its cgroup, clone into new
//! namespaces (the child builds the rootfs and execs init), then relay signals until it exits, report
//! an OOM kill, and remove everything the run created.

pub mod child;
pub mod devices;
mod init_binary;
mod net;
pub mod process;
pub mod rootfs;
pub mod security;
mod stale;
mod state_dir;
mod tty;
pub mod user;

use crate::cgroup::{Cgroup, Limits};
use crate::image::Archive;
use crate::store::LayerStore;
use child::{ChildPlan, Mounts, Volume};
use process::Overrides;
use rustix::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// One line for the user; spawner exits 125 with it.
#[derive(Debug)]
pub struct RunError(pub String);

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! from_error {
    ($($t:ty),*) => {$(
        impl From<$t> for RunError {
            fn from(e: $t) -> Self {
                RunError(e.to_string())
            }
        }
    )*};
}
from_error!(
    crate::image::ImageError,
    crate::store::StoreError,
    crate::cgroup::Error,
    process::NoCommand,
    rootfs::MountError,
    devices::DeviceError
);

#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    pub archive: PathBuf,
    pub image: Option<String>,
    pub state_dir: PathBuf,
    pub overrides: Overrides,
    pub volumes: Vec<Volume>,
    /// `--device HOST[:CONTAINER][:PERMS]`, as [`devices::parse`] gives them.
    pub devices: Vec<(PathBuf, PathBuf, String)>,
    pub read_only: bool,
    pub net_host: bool,
    pub limits: Limits,
    pub cgroup_parent: Option<PathBuf>,
    /// Keep the container's upper directory after it exits (implied by `name`).
    pub keep: bool,
    pub name: Option<String>,
    pub tty: bool,
    pub security: security::Security,
    /// The most bytes an image's layers may unpack to (a decompression bomb stops there).
    pub max_image_bytes: u64,
}

/// Parses `-v HOST:CONTAINER[:OPTIONS]`; OPTIONS is a comma-separated list of `ro`/`rw` and, as
/// podman takes them, `dev`/`nodev`, `suid`/`nosuid`, `exec`/`noexec`. A volume is `nodev,nosuid`
/// unless it says otherwise. Only the syntax is checked here: the source is opened once, when the
/// container is made.
pub fn parse_volume(spec: &str) -> Result<Volume, RunError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, options) = match parts.as_slice() {
        [h, c] => (*h, *c, ""),
        [h, c, o] => (*h, *c, *o),
        _ => return Err(RunError(format!("invalid volume {spec:?}: expected HOST:CONTAINER[:OPTIONS]"))),
    };
    if !container.starts_with('/') || host.is_empty() {
        return Err(RunError(format!(
            "invalid volume {spec:?}: both paths must be given, the container path absolute"
        )));
    }
    let mut volume = Volume {
        host: std::path::absolute(host).map_err(|e| RunError(format!("volume source {host}: {e}")))?,
        container: container.into(),
        read_only: false,
        devices: false,
        setuid: false,
        noexec: false,
    };
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" => volume.read_only = true,
            "rw" => volume.read_only = false,
            "dev" => volume.devices = true,
            "nodev" => volume.devices = false,
            "suid" => volume.setuid = true,
            "nosuid" => volume.setuid = false,
            "exec" => volume.noexec = false,
            "noexec" => volume.noexec = true,
            other => {
                return Err(RunError(format!(
                    "invalid volume {spec:?}: unknown option {other:?} (ro, rw, dev, nodev, suid, nosuid, exec, noexec)"
                )))
            }
        }
    }
    Ok(volume)
}

/// Opens each volume's source, once, into a detached tree with its flags set.
fn open_volumes(volumes: &[Volume]) -> Result<Vec<(rootfs::VolumeTree, PathBuf)>, RunError> {
    use rustix::mount::MountAttrFlags as A;
    volumes
        .iter()
        .map(|v| {
            let mut attrs = A::empty();
            attrs.set(A::MOUNT_ATTR_RDONLY, v.read_only);
            attrs.set(A::MOUNT_ATTR_NODEV, !v.devices);
            attrs.set(A::MOUNT_ATTR_NOSUID, !v.setuid);
            attrs.set(A::MOUNT_ATTR_NOEXEC, v.noexec);
            let tree = rootfs::volume_tree(&v.host, attrs)?;
            log::info!("volume {} on {} ({attrs:?})", tree.resolved.display(), v.container.display());
            Ok((tree, v.container.clone()))
        })
        .collect()
}

fn random_id() -> String {
    let mut bytes = [0u8; 6];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_err()
    {
        bytes = (std::process::id() as u64 ^ rawsys::now_ms()).to_le_bytes()[..6].try_into().unwrap();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The container's directory in the state dir: overlay upper/work dirs and its /etc files.
struct ContainerDir {
    path: PathBuf,
    keep: bool,
    /// This run's flock on the directory (see `stale`): released last, after the removal.
    _lock: OwnedFd,
}

impl Drop for ContainerDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // What an untouched run leaves, removed by name (each rmdir is a journaled ext4 update; no
        // directory walk); anything else (files the container wrote) by a walk of what is left.
        let _ = std::fs::remove_file(self.path.join("work/work/incompat/volatile/dirty"));
        for leftover in ["work/work/incompat/volatile", "work/work/incompat", "work/work", "work", "upper"] {
            let _ = std::fs::remove_dir(self.path.join(leftover));
        }
        if std::fs::remove_dir(&self.path).is_err() {
            if let Err(e) = std::fs::remove_dir_all(&self.path) {
                log::warn!("remove {}: {e}", self.path.display());
            }
        }
    }
}

/// A read-only layer on top of every image holding the mount targets spawner needs (/proc, /sys,
/// /dev, /etc/hostname, /etc/hosts, /etc/resolv.conf), as Docker's "init layer" does: with them there,
/// bind-mounting the /etc files copies nothing up, so a run leaves its upper directory empty and
/// creating and removing it stays cheap. Made once per state directory, atomically.
fn init_layer(state_dir: &Path) -> Result<PathBuf, RunError> {
    let path = state_dir.join("init-layer");
    if path.is_dir() {
        return Ok(path);
    }
    let tmp = state_dir.join(format!("init-layer.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let build = || -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for (dir, mode) in [("", 0o755), ("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("etc", 0o755)] {
            let d = tmp.join(dir);
            std::fs::create_dir_all(&d)?;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode))?;
        }
        for file in ETC_FILES {
            std::fs::write(tmp.join("etc").join(file), "")?;
        }
        Ok(())
    };
    build().map_err(|e| RunError(format!("create {}: {e}", tmp.display())))?;
    match std::fs::rename(&tmp, &path) {
        Ok(()) => Ok(path),
        // Another run made it first.
        Err(_) if path.is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(path)
        }
        Err(e) => Err(RunError(format!("rename {} to {}: {e}", tmp.display(), path.display()))),
    }
}

/// Creates `containers/NAME` with its upper and work directories, locked for this run: made as
/// `.ID.new`, locked, then renamed into place without replacing anything (a taken name is an error).
fn create_container_dir(
    containers: &Path,
    name: &str,
    id: &str,
    keep: bool,
) -> Result<ContainerDir, RunError> {
    let path = containers.join(name);
    let in_use = || RunError(format!("container name {name:?} is already in use ({})", path.display()));
    if path.exists() {
        return Err(in_use());
    }
    let tmp = containers.join(format!(".{id}.new"));
    let io = |what: &str, p: &Path, e: std::io::Error| RunError(format!("{what} {}: {e}", p.display()));
    // 0700: no other host user may reach the upper directory (setuid files the container wrote).
    // The upper directory itself keeps 0755: it is the container's `/`.
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&tmp)
        .map_err(|e| io("create", &tmp, e))?;
    let prepare = || -> Result<OwnedFd, RunError> {
        let lock = stale::claim(&tmp).map_err(|e| RunError(format!("lock {}: {e}", tmp.display())))?;
        for d in ["upper", "work"] {
            std::fs::create_dir(tmp.join(d)).map_err(|e| io("create", &tmp.join(d), e))?;
        }
        if keep {
            std::fs::write(tmp.join(stale::KEEP_MARKER), "").map_err(|e| io("write", &tmp, e))?;
        }
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            &tmp,
            rustix::fs::CWD,
            &path,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => Ok(lock),
            Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => Err(in_use()),
            Err(e) => Err(RunError(format!("rename {} to {}: {e}", tmp.display(), path.display()))),
        }
    };
    match prepare() {
        Ok(lock) => Ok(ContainerDir { path, keep, _lock: lock }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// The contents of /etc/hostname, /etc/hosts and /etc/resolv.conf for the container, written into a
/// small detached tmpfs and bound over the image's by the child (no file on the host disk).
fn etc_files(hostname: &str, net_host: bool) -> Vec<(&'static str, String)> {
    let [hostname_file, hosts_file, resolv_file] = ETC_FILES;
    let hosts = if net_host {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n")
    };
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    vec![(hostname_file, format!("{hostname}\n")), (hosts_file, hosts), (resolv_file, resolv)]
}

/// The files in /etc the container gets from spawner.
const ETC_FILES: [&str; 3] = ["hostname", "hosts", "resolv.conf"];

const RELAYED: [i32; 6] = [1, 2, 3, 10, 12, 15]; // HUP INT QUIT USR1 USR2 TERM
const SIGCHLD: i32 = 17;
const SIGWINCH: i32 = 28;

fn signal_set(signals: &[i32]) -> rawsys::SigSet {
    signals.iter().fold(0, |set, s| set | 1 << (s - 1))
}

/// Runs the container; returns its exit status (128+N for a signal, 137 for an OOM kill).
pub fn run(opts: &RunOptions) -> Result<i32, RunError> {
    // Docker's rule for names (it also keeps them valid as directory and cgroup names), checked
    // before any work is done.
    if let Some(name) = &opts.name {
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            && name.len() <= 128;
        if !valid {
            return Err(RunError(format!("invalid container name {name:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*")));
        }
    }
    let containers = state_dir::prepare(&opts.state_dir)?;
    // Host paths the user named are looked up now, once; the container gets what they were.
    let volumes = open_volumes(&opts.volumes)?;
    let devices = devices::open(&opts.devices)?;
    // Compiled while spawner has one thread: the compiler's allocations map and unmap memory (musl),
    // and an unmap in a process with other threads running costs a TLB shootdown on every CPU. On
    // a thread of its own beside the work below it cost 1 ms of CPU per run here, before them 0.35.
    let seccomp = security::seccomp_filter(&opts.security).map_err(RunError)?;
    let net = (!opts.net_host).then(net::prepare_namespace);
    let archive = Archive::open(&opts.archive)?;
    let image = archive.select(opts.image.as_deref())?;
    log::debug!("archive indexed");
    log::info!(
        "image {} from {}",
        image.names.first().map(String::as_str).unwrap_or("(unnamed)"),
        opts.archive.display()
    );
    let limits = crate::store::Limits { max_image_bytes: opts.max_image_bytes };
    let store = LayerStore::open_with(opts.state_dir.join("store"), limits)?;
    let mut layers = store.ensure_image(&archive, &image)?;
    layers.push(init_layer(&opts.state_dir)?);
    log::info!("{} layers ready in {}", layers.len(), store.root().display());

    let id = random_id();
    let spec = process::resolve(&image.config, &opts.overrides, &id, |n| std::env::var(n).ok())?;
    let dir_name = opts.name.clone().unwrap_or_else(|| id.clone());
    let cgroup_prefix = stale::cgroup_prefix(&opts.state_dir);
    stale::remove_stale(&containers, &cgroup_prefix, opts.cgroup_parent.as_deref());
    let mut dir = create_container_dir(&containers, &dir_name, &id, opts.keep || opts.name.is_some())?;
    let (upper, work) = (dir.path.join("upper"), dir.path.join("work"));
    let etc_files = etc_files(&spec.hostname, opts.net_host);

    // Docker's device allow-list, and each --device node after it (`--privileged`: no device rules;
    // its /dev still has only the default nodes and those given with --device).
    let mut limits = opts.limits.clone();
    if !opts.security.privileged {
        limits.devices = crate::cgroup::docker_default();
        limits.devices.extend(devices.iter().map(|d| d.device.rule()));
    }
    let cgroup =
        Cgroup::create(&format!("{cgroup_prefix}{dir_name}"), opts.cgroup_parent.as_deref(), &limits)?;
    let cgroup_version = cgroup.version();
    log::info!("cgroup {:?} ({cgroup_version:?})", cgroup.paths());
    log::info!("devices: {}", cgroup.device_control());
    let init = init_binary::sealed_memfd().map_err(RunError)?;
    // Mounts that need no namespace of the container's are made here, while the network namespace
    // thread works; the container attaches them.
    let overlay = rootfs::prepare_overlay(&layers, &upper, &work, !dir.keep)?;
    let etc_files = rootfs::etc_files_fs(&etc_files)?;
    // Joined before clone: spawner is single-threaded again when it forks.
    let net = match net.map(|thread| thread.join()) {
        Some(Ok(result)) => Some(result.map_err(RunError)?),
        Some(Err(_)) => return Err(RunError("network namespace thread panicked".into())),
        None => None,
    };
    let (tty_here, tty_there) = match opts.tty {
        true => {
            let (here, there) = tty::socket_pair().map_err(RunError)?;
            (Some(here), Some(there))
        }
        false => (None, None),
    };

    let plan = ChildPlan {
        mounts: Mounts {
            overlay,
            // The overlay is mounted over the container's own directory, in the child's mount
            // namespace only: no separate mount point to create and remove.
            merged: dir.path.clone(),
            etc_files,
            devices,
            volumes,
            read_only: opts.read_only,
            mask_paths: opts.security.mask_paths,
            cgroup_version,
        },
        net,
        cgroup_join: cgroup.self_join_files(),
        spec,
        security: opts.security.clone(),
        seccomp,
        tty: tty_there,
    };
    let status = spawn_and_wait(plan, &init, tty_here)?;
    // Only a SIGKILL (137) can be the OOM killer's: the counter is read for nothing otherwise.
    let oom_kills = if status == 137 { cgroup.oom_kills().unwrap_or(0) } else { 0 };
    let limit = cgroup.memory_limit();
    match cgroup.remove() {
        Ok(()) if dir.keep => {
            let _ = std::fs::write(dir.path.join(stale::CGROUP_GONE_MARKER), "");
        }
        Ok(()) => {}
        Err(e) => {
            // The directory stays, unlocked once spawner exits: the next run takes it for a dead
            // run's and tries the cgroup again (see `stale`).
            log::warn!("{e}");
            dir.keep = true;
        }
    }
    drop(dir);
    log::debug!("cleaned up");
    if oom_kills > 0 {
        match limit {
            Some(l) => {
                eprintln!("spawner: container was killed by the OOM killer (memory limit {})", human_size(l))
            }
            None => eprintln!("spawner: container was killed by the OOM killer"),
        }
    }
    Ok(status)
}

fn human_size(n: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RunError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| RunError(format!("pipe: {e}")))
}

/// Clones the container's first process, lets it go once it is in the cgroup, and waits for it while
/// relaying signals. Returns the exit status.
fn spawn_and_wait(plan: ChildPlan, init: &OwnedFd, tty_socket: Option<OwnedFd>) -> Result<i32, RunError> {
    use rustix::thread::UnshareFlags as F;
    let flags = F::NEWNS | F::NEWPID | F::NEWUTS | F::NEWIPC;
    // Signals for the container wait in a signalfd from now on, none lost while it starts.
    let relayed = signal_set(&RELAYED) | signal_set(&[SIGCHLD, SIGWINCH]);
    rawsys::set_signal_mask(relayed).map_err(|e| RunError(format!("sigprocmask: {e}")))?;
    let signals = rawsys::signalfd(relayed).map_err(|e| RunError(format!("signalfd: {e}")))?;
    let (go_read, go_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    // SAFETY: spawner is single-threaded here (the network namespace thread, its only one, was joined
    // before), so the child may allocate.
    let pid =
        unsafe { rawsys::clone_process(flags.bits() as u64) }.map_err(|e| RunError(format!("clone: {e}")))?;
    if pid == 0 {
        drop((go_write, err_read, signals, tty_socket));
        child::run(plan, go_read, err_write, init);
    }
    drop((go_read, err_write));
    // Only the container holds its end of the tty socket now: EOF there means its setup failed.
    drop(plan);
    log::info!("container process {pid}");
    rustix::io::write(&go_write, b"g").map_err(|e| RunError(format!("start container: {e}")))?;
    drop(go_write);
    let (message, pending) = match wait_for_setup(pid, &err_read, &signals)? {
        Setup::Done { message, pending } => (message, pending),
        Setup::Interrupted(sig) => {
            log::info!("signal {sig} during setup: the container was stopped before it started");
            return Ok(128 + sig);
        }
    };
    // Signals that came during setup reach init now (they stay pending, blocked, until it reads them).
    for sig in pending {
        let _ = rawsys::kill(pid, sig);
    }
    let master = match (&tty_socket, message.is_empty()) {
        (Some(socket), true) => tty::receive_master(socket).map_err(RunError)?,
        _ => None,
    };
    if let Some(m) = &master {
        tty::sync_window_size(m.as_fd());
    }
    let raw = master.as_ref().and_then(|_| tty::RawMode::enter());
    let status = wait_relaying(pid, &signals, master.as_ref())?;
    log::debug!("container exited: {status}");
    drop(raw);
    if !message.is_empty() {
        return Err(RunError(String::from_utf8_lossy(&message).into_owned()));
    }
    Ok(status)
}

/// How the container's setup ended.
enum Setup {
    /// Its first process exec'd init (an empty message) or failed (the message says why);
    /// `pending` are the signals to relay once init runs.
    Done { message: Vec<u8>, pending: Vec<i32> },
    /// A stop signal (INT, TERM, HUP or QUIT) came first: the half-made container was killed, and
    /// the run ends as a container killed by that signal would.
    Interrupted(i32),
}

/// Reads the error pipe until the container's first process execs or fails, watching the signals
/// meanwhile: setup touches the image's files, and however long that takes, Ctrl-C ends the run.
fn wait_for_setup(pid: i32, errors: &OwnedFd, signals: &OwnedFd) -> Result<Setup, RunError> {
    use rustix::event::{poll, PollFd, PollFlags};
    let (mut message, mut pending) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 512];
    loop {
        let mut fds = [PollFd::new(errors, PollFlags::IN), PollFd::new(signals, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(RunError(format!("poll: {e}"))),
        }
        // The error pipe first: once it is at EOF the process has exec'd, and a signal that came
        // at the same time is for it (it stays in the signalfd, relayed by the caller), not a
        // reason to kill it.
        if !fds[0].revents().is_empty() {
            match rustix::io::read(errors, &mut buf) {
                Ok(0) => return Ok(Setup::Done { message, pending }),
                Ok(n) => message.extend_from_slice(&buf[..n]),
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(RunError(format!("read the container's setup errors: {e}"))),
            }
            continue;
        }
        while let Some(sig) = rawsys::read_signal(signals.as_fd()) {
            match sig {
                1 | 2 | 3 | 15 => {
                    let _ = rawsys::kill(pid, 9);
                    let _ = rustix::process::waitpid(
                        rustix::process::Pid::from_raw(pid),
                        rustix::process::WaitOptions::empty(),
                    );
                    return Ok(Setup::Interrupted(sig));
                }
                SIGCHLD | SIGWINCH => {}
                other => pending.push(other),
            }
        }
    }
}

/// Waits for the container's first process (init), relaying signals; with a terminal, also copies
/// stdin to the pty and the pty to stdout, and passes window-size changes on.
fn wait_relaying(pid: i32, signals: &OwnedFd, master: Option<&OwnedFd>) -> Result<i32, RunError> {
    use rustix::event::{poll, PollFd, PollFlags};
    use rustix::process::{waitpid, Pid, WaitOptions};
    let child = Pid::from_raw(pid).expect("a child pid is positive");
    let (stdin, stdout) = (rustix::stdio::stdin(), rustix::stdio::stdout());
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    let mut status = None;
    loop {
        if status.is_none() {
            if let Some((_, s)) =
                waitpid(Some(child), WaitOptions::NOHANG).map_err(|e| RunError(format!("waitpid: {e}")))?
            {
                status = Some(match (s.exit_status(), s.terminating_signal()) {
                    (Some(code), _) => code,
                    (_, Some(sig)) => 128 + sig,
                    _ => 125,
                });
            }
        }
        match status {
            // With a terminal, the output the container left in the pty is still to be copied.
            Some(code) if !master_open => return Ok(code),
            Some(code) => {
                let m = master.expect("master_open implies a master");
                rustix::io::ioctl_fionbio(m, true).ok();
                while tty::pump(m.as_fd(), stdout) {}
                return Ok(code);
            }
            None => {}
        }
        let mut fds = vec![PollFd::new(signals, PollFlags::IN)];
        let mut master_at = None;
        let mut stdin_at = None;
        if let (Some(m), true) = (master, master_open) {
            master_at = Some(fds.len());
            fds.push(PollFd::new(m, PollFlags::IN));
        }
        if stdin_open {
            stdin_at = Some(fds.len());
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        let _ = poll(&mut fds, None);
        let ready = |at: Option<usize>| at.is_some_and(|i| !fds[i].revents().is_empty());
        let (master_ready, stdin_ready) = (ready(master_at), ready(stdin_at));
        drop(fds);
        if let Some(m) = master {
            if master_ready {
                master_open = tty::pump(m.as_fd(), stdout);
            }
            if stdin_ready {
                stdin_open = tty::pump(stdin, m.as_fd());
            }
        }
        while let Some(sig) = rawsys::read_signal(signals.as_fd()) {
            match (sig, master) {
                (SIGCHLD, _) => {}
                (SIGWINCH, Some(m)) => tty::sync_window_size(m.as_fd()),
                (SIGWINCH, None) => {}
                _ => {
                    log::debug!("relaying signal {sig} to the container");
                    let _ = rawsys::kill(pid, sig);
                }
            }
        }
    }
}

/// The default state directory: `SPAWNER_ROOT`, else /var/lib/spawner.
pub fn default_state_dir() -> PathBuf {
    std::env::var_os("SPAWNER_ROOT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib/spawner"))
}
