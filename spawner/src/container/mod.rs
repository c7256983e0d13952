//! The container core: one container from one [`Config`] (an OCI runtime spec, checked), with
//! what a front end adds beside it ([`Extras`]: a root made of store layers, our init as PID 1, an
//! image user to look up, trees it prepared). In the order it happens: compile the seccomp filter,
//! create the cgroup, open every mount source and namespace path once, clone into the new
//! namespaces (the child builds the rootfs, pivots and execs), then relay signals until the
//! process exits, and remove the cgroup.

pub mod child;
pub mod exec;
pub mod hooks;
mod init_binary;
mod limits;
pub mod mount_plan;
mod namespaces;
pub mod net;
pub mod rootfs;
pub mod security;
pub mod tty;
pub mod user;
mod userns;

pub use init_binary::sealed_memfd;

use crate::cgroup::Cgroup;
use crate::spec::{Config, NamespaceKind};
use child::ChildPlan;
use mount_plan::FrontEndMounts;
use rustix::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Declares [`RunError`]: `Message`, and a variant (with its `From`) for each module error given.
macro_rules! run_error {
    ($($variant:ident($t:ty)),*) => {
        /// Why a container could not be made or run (the core's and the Docker front end's error):
        /// one line for the user, who gets exit status 125 with it; the errors of the modules below
        /// keep their type, and with it their causes (`-v` prints them).
        #[derive(Debug)]
        pub enum RunError {
            /// A step that says what failed in its own words.
            Message(String),
            $($variant($t)),*
        }

        impl RunError {
            /// The typed error inside, if any (the one-line message is its Display).
            fn inner(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    RunError::Message(_) => None,
                    $(RunError::$variant(e) => Some(e)),*
                }
            }
        }

        $(impl From<$t> for RunError {
            fn from(e: $t) -> Self {
                RunError::$variant(e)
            }
        })*
    };
}
run_error!(
    Image(crate::image::ImageError),
    Store(crate::store::StoreError),
    Cgroup(crate::cgroup::Error),
    Mount(rootfs::MountError),
    Registry(crate::registry::RegistryError),
    Network(crate::network::NetworkError),
    Spec(crate::spec::SpecError)
);

impl RunError {
    pub fn msg(message: impl Into<String>) -> RunError {
        RunError::Message(message.into())
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self, self.inner()) {
            (RunError::Message(m), _) => f.write_str(m),
            (_, Some(e)) => write!(f, "{e}"),
            (_, None) => Ok(()),
        }
    }
}

impl std::error::Error for RunError {
    /// The inner error's own causes: its message is already this error's.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner().and_then(|e| e.source())
    }
}

/// What a front end gives the core beside the config.
#[derive(Default)]
pub struct Extras {
    /// The container's name, for its cgroup when the config gives no `cgroupsPath`.
    pub id: String,
    /// The root file system as an overlay the front end prepared, attached at `config.root.path`;
    /// None: `config.root.path` itself (bound onto itself, as runc does).
    pub overlay: Option<rootfs::Overlay>,
    /// Detached mounts the front end prepared, referred to by `mounts`.
    pub trees: Vec<Option<OwnedFd>>,
    pub mounts: FrontEndMounts,
    /// Namespaces the front end made beforehand (the network namespace): joined like a path.
    pub join: Vec<(NamespaceKind, OwnedFd)>,
    /// Our init (a sealed memfd) as the container's first process, with the process's args after
    /// its `--` (Docker's `--init`).
    pub init: Option<OwnedFd>,
    /// Docker's `User`, looked up in the image (see `child::ChildPlan::image_user`).
    pub image_user: Option<String>,
    /// Docker's `--group-add` (see `child::ChildPlan::group_add`).
    pub group_add: Vec<String>,
    /// No cgroup of the container's own (crun's `--cgroup-manager disabled`, which podman's
    /// `--cgroups=disabled` asks for): its processes stay in spawner's cgroup, and `linux.resources`
    /// is not applied (a warning says so).
    pub no_cgroup: bool,
    /// runc's `--systemd-cgroup`: systemd makes the cgroup, a unit with the process in it, once
    /// the process exists (see `cgroup::systemd`); `linux.cgroupsPath` is `slice:prefix:name`.
    /// Only [`create`] takes it.
    pub systemd_cgroup: bool,
    /// runc's `--no-pivot` (a root on a ramfs, which pivot_root refuses): moved onto `/` and
    /// chrooted into.
    pub no_pivot: bool,
}

/// How a container ended.
pub struct Exit {
    /// The exit status as a shell gives it: the code, or 128+N for signal N.
    pub status: i32,
    /// OOM kills in the container's cgroup (read only when it died of SIGKILL).
    pub oom_kills: u64,
    /// The memory limit the container had, for the OOM report.
    pub memory_limit: Option<u64>,
    /// The cgroup could not be removed (its processes, say): why.
    pub cgroup_left: Option<crate::cgroup::Error>,
}

/// A container's output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Where a captured container's output goes (a container's log, and an attached one's terminal).
pub trait Sink {
    /// Takes `bytes` the container wrote on `stream`; false when that stream has no reader any
    /// more (spawner's stdout closed): it is closed, and the container's next write there fails
    /// as it would have written to that reader itself (SIGPIPE).
    fn write(&mut self, stream: Stream, bytes: &[u8]) -> bool;
}

/// A container whose stdio are not spawner's (conmon's job, for a detached container): it gets
/// `stdio`, and what comes out of `stdout` and `stderr` (the far ends of its output pipes), or out
/// of its terminal, is handed to `sink` while spawner waits.
pub struct Captured<'a> {
    pub stdio: [OwnedFd; 3],
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub sink: &'a mut dyn Sink,
    /// A foreground run: spawner's terminal is the container's too (stdin copied to its pty, in
    /// raw mode, window sizes passed on), and the sink shows the output as well as keeping it.
    pub attached: bool,
}

/// Told of the container's process once it runs: its pid and cgroup.
pub type Started<'a> = dyn FnMut(i32, Option<&crate::cgroup::CgroupLocation>) + 'a;

/// What a front end watches of a foreground run.
#[derive(Default)]
pub struct Watch<'a> {
    pub captured: Option<Captured<'a>>,
    /// The process's stdin, stdout and stderr, when not spawner's own and not captured.
    pub stdio: Option<[OwnedFd; 3]>,
    /// Called once the container's process runs (it has exec'd), with its pid and cgroup.
    pub started: Option<&'a mut Started<'a>>,
    /// Called once the filter is compiled and the cgroup made, right before the clone: the front
    /// end completes the extras there with what it made meanwhile on another thread (the network
    /// namespace, and the /etc files that need its address).
    pub finish: Option<&'a mut Finish<'a>>,
}

pub type Finish<'a> = dyn FnMut(&mut Extras) -> Result<(), RunError> + 'a;

const RELAYED: [i32; 6] = [1, 2, 3, 10, 12, 15]; // HUP INT QUIT USR1 USR2 TERM
const SIGCHLD: i32 = 17;
const SIGWINCH: i32 = 28;

fn signal_set(signals: &[i32]) -> rawsys::SigSet {
    signals.iter().fold(0, |set, s| set | 1 << (s - 1))
}

/// Runs the container in the foreground, spawner its parent: it dies with spawner, its terminal
/// (if it has one) is spawner's, signals sent to spawner reach it. Returns how it ended.
pub fn run(config: &Config, extras: Extras, watch: Watch<'_>) -> Result<Exit, RunError> {
    if config.hooks != crate::spec::Hooks::default() {
        return Err(RunError::msg("config.json: hooks: only a container made by create runs them"));
    }
    let mut prepared = prepare(config, extras)?;
    let status = (|| {
        let (tty_here, tty_there) = match prepared.process.terminal {
            true => {
                let (here, there) = tty::socket_pair().map_err(RunError::msg)?;
                (Some(here), Some(there))
            }
            false => (None, None),
        };
        let (process, init) = (prepared.process, prepared.extras.init.is_some());
        let Watch { captured, stdio, mut started, finish } = watch;
        if let Some(finish) = finish {
            finish(&mut prepared.extras)?;
        }
        let location = prepared.cgroup.as_ref().map(Cgroup::location);
        let mut plan = prepared.child_plan(config, tty_there, None, 0, true, None)?;
        let mut output = Output::default();
        plan.stdio = stdio;
        if let Some(c) = captured {
            plan.stdio = Some(c.stdio);
            output.captured =
                Some(Capture { pipes: [Some(c.stdout), Some(c.stderr)], sink: c.sink, attached: c.attached });
        }
        let before_go = |pid| before_go(config, process, init, pid);
        let mut on_start = |pid: i32| {
            if let Some(f) = started.as_mut() {
                f(pid, location.as_ref())
            }
        };
        output.started = Some(&mut on_start);
        let via = std::mem::take(&mut plan.via);
        let flags = mount_plan::clone_flags(config);
        spawn_and_wait_with(flags, &via, tty_here, &before_go, output, move |go, errors| {
            child::run(plan, go, errors);
        })
    })();
    let Some(cgroup) = prepared.cgroup else {
        return Ok(Exit { status: status?, oom_kills: 0, memory_limit: None, cgroup_left: None });
    };
    // Only a SIGKILL (137) can be the OOM killer's: the counter is read for nothing otherwise.
    let oom_kills = match &status {
        Ok(137) => cgroup.oom_kills().unwrap_or(0),
        _ => 0,
    };
    let memory_limit = cgroup.memory_limit();
    let cgroup_left = cgroup.remove().err();
    Ok(Exit { status: status?, oom_kills, memory_limit, cgroup_left })
}

/// How `create` holds a container before it starts.
pub struct Held {
    /// The FIFO `start` opens: the container's process, set up, waits on it right before exec.
    pub exec_fifo: PathBuf,
    /// `--console-socket`: where the pty master goes when the process has a terminal.
    pub console_socket: Option<OwnedFd>,
    /// `--preserve-fds N`: the caller's fds 3 to 3+N-1 are the process's too.
    pub preserve_fds: u32,
    /// The bundle, for the state the hooks read.
    pub bundle: PathBuf,
}

/// A container made by [`create`]: its first process is set up and waits for `start`.
pub struct Created {
    pub pid: i32,
    /// None with `Extras::no_cgroup`.
    pub cgroup: Option<Cgroup>,
}

/// Makes the container and returns once its first process is set up and waiting on the exec FIFO
/// (runc's create): nothing of it depends on spawner from then on, and when spawner exits the
/// process is the orphan of whoever reaps orphans there (the engine's shim or conmon).
pub fn create(config: &Config, extras: Extras, held: Held) -> Result<Created, RunError> {
    let mut prepared = prepare(config, extras)?;
    let systemd_unit = prepared.systemd_unit.take();
    let systemd_cgroup = std::cell::RefCell::new(None);
    let pid = (|| {
        let fifo = rustix::fs::open(
            &held.exec_fifo,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| RunError::msg(format!("open {}: {e}", held.exec_fifo.display())))?;
        let console = if prepared.process.terminal {
            Some(held.console_socket.ok_or_else(|| {
                RunError::msg("process.terminal is set: a --console-socket is needed to pass the terminal")
            })?)
        } else {
            None
        };
        let id = prepared.extras.id.clone();
        let identity = hooks::Identity {
            oci_version: &config.oci_version,
            id: &id,
            bundle: &held.bundle,
            annotations: &config.annotations,
        };
        let h = &config.hooks;
        let child_hooks = child::ChildHooks {
            identity,
            runtime: !h.prestart.is_empty() || !h.create_runtime.is_empty(),
            create_container: &h.create_container,
            start_container: &h.start_container,
        };
        let any = child_hooks.runtime || !h.create_container.is_empty() || !h.start_container.is_empty();
        // prestart (deprecated, still written by engines) and createRuntime: in spawner's
        // namespaces, while the process waits with its mounts made and before it pivots.
        let runtime_hooks = |pid: i32| {
            let state = identity.state("creating", Some(pid));
            hooks::run("prestart", &h.prestart, &state)?;
            hooks::run("createRuntime", &h.create_runtime, &state)
        };
        let (process, init) = (prepared.process, prepared.extras.init.is_some());
        let plan = prepared.child_plan(
            config,
            console,
            Some(fifo),
            held.preserve_fds,
            false,
            any.then_some(child_hooks),
        )?;
        let before_go = |pid| {
            // The unit is made with the process in it, before the process goes on to anything.
            if let Some((place, limits)) = &systemd_unit {
                *systemd_cgroup.borrow_mut() = Some(crate::cgroup::systemd::start(place, &id, pid, limits)?);
            }
            before_go(config, process, init, pid)
        };
        spawn_held(plan, mount_plan::clone_flags(config), &before_go, &runtime_hooks)
    })();
    // A unit made for a process that then failed is stopped when its handle drops.
    let cgroup = prepared.cgroup.or(systemd_cgroup.into_inner());
    match pid {
        Ok(pid) => Ok(Created { pid, cgroup }),
        Err(e) => {
            if let Some(cgroup) = cgroup {
                let _ = cgroup.remove();
            }
            Err(e)
        }
    }
}

/// A front end's wait for a container it made with [`create`] and started (runc's `run` without
/// --detach): signals sent to the front end from [`Foreground::hold_signals`] on reach the
/// container's process, and with a terminal, the container's pty is the front end's.
pub struct Foreground {
    signals: OwnedFd,
    master: Option<OwnedFd>,
    raw: Option<tty::RawMode>,
}

impl Foreground {
    /// Holds the relayed signals from now on (blocked, read from a signalfd): none is lost while
    /// the container is made, and each reaches its process once it runs.
    pub fn hold_signals() -> Result<Foreground, RunError> {
        let held = signal_set(&RELAYED) | signal_set(&[SIGCHLD, SIGWINCH]);
        rawsys::set_signal_mask(held).map_err(|e| RunError::msg(format!("sigprocmask: {e}")))?;
        let signals = rawsys::signalfd(held).map_err(|e| RunError::msg(format!("signalfd: {e}")))?;
        Ok(Foreground { signals, master: None, raw: None })
    }

    /// Takes the container's terminal from `socket`, the far end of the console socket it sent its
    /// pty master to, before it starts: the pty gets the size of the caller's terminal, which is
    /// put in raw mode (until the wait ends) and whose bytes are copied to and from it.
    pub fn attach_terminal(&mut self, socket: &OwnedFd) -> Result<(), RunError> {
        let master = tty::receive_master(socket)
            .map_err(RunError::msg)?
            .ok_or_else(|| RunError::msg("the container sent no terminal"))?;
        tty::sync_window_size(master.as_fd());
        self.raw = tty::RawMode::enter();
        self.master = Some(master);
        Ok(())
    }

    /// Waits for the container's process `pid` (the caller's child) and returns its exit status,
    /// relaying signals (and the terminal).
    pub fn wait(self, pid: i32) -> Result<i32, RunError> {
        let status = wait_relaying(pid, &self.signals, self.master.as_ref(), None);
        drop(self.raw);
        status
    }
}

/// What both ways of starting share: the filter compiled, the cgroup made, the mount sources, root
/// and namespace paths opened.
struct Prepared<'a> {
    process: &'a crate::spec::Process,
    seccomp: Option<crate::seccomp::Filter>,
    cgroup: Option<Cgroup>,
    /// With `Extras::systemd_cgroup`: the unit to make once the process exists, and its limits.
    systemd_unit: Option<(crate::cgroup::systemd::UnitPlace, crate::cgroup::Limits)>,
    extras: Extras,
}

fn prepare(config: &Config, extras: Extras) -> Result<Prepared<'_>, RunError> {
    let process =
        config.process.as_ref().ok_or_else(|| RunError::msg("config.json: process: required to start"))?;
    refuse_unsupported(config)?;
    // Compiled while the front end's network thread may still run (see `Watch::finish`): spawner's
    // allocator keeps what it maps, so the compiler's allocations cost no unmap (a TLB shootdown on
    // every CPU while another thread runs).
    let seccomp =
        config.seccomp.as_ref().map(security::compile_seccomp).transpose().map_err(RunError::msg)?;
    let mut systemd_unit = None;
    let cgroup = match extras.no_cgroup {
        false if extras.systemd_cgroup => {
            let path = config.cgroups_path.as_deref().map(|p| p.to_string_lossy());
            let place = crate::cgroup::systemd::UnitPlace::parse(path.as_deref(), &extras.id)?;
            let limits = container_limits(config);
            limits.validate()?;
            systemd_unit = Some((place, limits));
            None
        }
        true => {
            // The caller chose it (podman's --cgroups=disabled sends its default pids limit and
            // device rules anyway, as crun takes them): said, not refused.
            if config.resources != crate::cgroup::Limits::default() {
                log::info!("linux.resources not applied: the cgroup manager is disabled");
            }
            None
        }
        false => {
            let (cgroup_name, cgroup_parent) = cgroup_place(config, &extras.id)?;
            let cgroup = Cgroup::create(&cgroup_name, cgroup_parent.as_deref(), &container_limits(config))?;
            log::info!("cgroup {:?} ({:?})", cgroup.paths(), cgroup.version());
            log::info!("devices: {}", cgroup.device_control());
            Some(cgroup)
        }
    };
    Ok(Prepared { process, seccomp, cgroup, systemd_unit, extras })
}

/// The limits a container's cgroup gets: the spec's, with the spec's device rules followed by what
/// every container may use (runc's and crun's rule: with no rules at all, only that).
fn container_limits(config: &Config) -> crate::cgroup::Limits {
    let mut limits = config.resources.clone();
    limits.devices.extend(crate::cgroup::always_allowed());
    limits
}

impl<'a> Prepared<'a> {
    fn child_plan<'b>(
        &'b mut self,
        config: &'b Config,
        console: Option<OwnedFd>,
        exec_fifo: Option<OwnedFd>,
        preserve_fds: u32,
        foreground: bool,
        hooks: Option<child::ChildHooks<'b>>,
    ) -> Result<ChildPlan<'b>, RunError> {
        let extras = &mut self.extras;
        let plan = mount_plan::plan(config, &extras.mounts);
        let sources = rootfs::open_sources(&plan, &mut extras.trees)?;
        let root = match extras.overlay.take() {
            Some(overlay) => child::Root::Overlay(overlay),
            None => child::Root::Tree(rootfs::bind_root(&config.root.path)?),
        };
        let mut join = namespaces::open_paths(config).map_err(RunError::msg)?;
        join.append(&mut extras.join);
        let via = match namespaces::needs_intermediate(config) {
            true => std::mem::take(&mut join),
            false => Vec::new(),
        };
        Ok(ChildPlan {
            config,
            process: self.process,
            root,
            mounts: plan,
            sources,
            cgroup_version: match &self.cgroup {
                Some(cgroup) => cgroup.version(),
                None => crate::cgroup::detect()?,
            },
            cgroup_join: self.cgroup.as_ref().map(Cgroup::self_join_files).unwrap_or_default(),
            join,
            new_cgroup_namespace: config
                .namespaces
                .iter()
                .any(|ns| ns.kind == NamespaceKind::Cgroup && ns.path.is_none()),
            user_namespace: config.namespaces.iter().any(|ns| ns.kind == NamespaceKind::User),
            no_pivot: extras.no_pivot,
            via,
            seccomp: self.seccomp.take(),
            console,
            init: extras.init.as_ref(),
            image_user: extras.image_user.as_deref(),
            group_add: &extras.group_add,
            die_with_spawner: foreground,
            exec_fifo,
            preserve_fds,
            hooks,
            stdio: None,
        })
    }
}

/// Clones the container's first process and returns once it is set up and waiting on its exec
/// FIFO (it writes one 0 byte to the error pipe then), or with the error it wrote. With runtime
/// hooks it stops once before that, its mounts made (a 1 byte): `runtime_hooks` runs then, and a
/// byte on the go pipe lets it on.
fn spawn_held(
    mut plan: ChildPlan<'_>,
    clone_flags: u64,
    before_go: &dyn Fn(i32) -> Result<(), RunError>,
    runtime_hooks: &dyn Fn(i32) -> Result<(), String>,
) -> Result<i32, RunError> {
    let (go_read, go_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    let via = std::mem::take(&mut plan.via);
    // SAFETY: spawner is single-threaded here, so the child may allocate.
    let pid = unsafe { clone_child(clone_flags, &via) }?;
    if pid == 0 {
        drop((go_write, err_read));
        child::run(plan, go_read, err_write);
    }
    drop(via);
    let waits_for_hooks = plan.hooks.as_ref().is_some_and(|h| h.runtime);
    drop((go_read, err_write, plan));
    log::info!("container process {pid}");
    let reap = || {
        rustix::process::waitpid(rustix::process::Pid::from_raw(pid), rustix::process::WaitOptions::empty())
    };
    if let Err(e) = before_go(pid) {
        kill_and_reap(pid);
        return Err(e);
    }
    rustix::io::write(&go_write, b"g").map_err(|e| RunError::msg(format!("start container: {e}")))?;
    let mut go_write = waits_for_hooks.then_some(go_write);
    let mut message = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match rustix::io::read(&err_read, &mut buf) {
            Ok(0) => break,
            Ok(n) => message.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(RunError::msg(format!("read the container's setup errors: {e}"))),
        }
        if message == [0] {
            return Ok(pid);
        }
        if message == [1] {
            if let Some(go) = go_write.take() {
                message.clear();
                if let Err(e) = runtime_hooks(pid) {
                    kill_and_reap(pid);
                    return Err(RunError::msg(e));
                }
                rustix::io::write(&go, b"h").map_err(|e| RunError::msg(format!("resume container: {e}")))?;
            }
        }
    }
    // Failed: the process is gone (or going); reap it, its parent is still spawner.
    let _ = reap();
    Err(RunError::msg(match message.is_empty() {
        true => "the container's process ended during setup".into(),
        false => String::from_utf8_lossy(&message).into_owned(),
    }))
}

/// What the core cannot do yet, refused by name rather than done wrong.
fn refuse_unsupported(config: &Config) -> Result<(), RunError> {
    let refuse =
        |what: &str| Err(RunError::msg(format!("config.json: {what}: not supported by spawner yet")));
    if !config.namespaces.iter().any(|ns| ns.kind == NamespaceKind::Mount && ns.path.is_none()) {
        return Err(RunError::msg("config.json: linux.namespaces: spawner needs a new mount namespace"));
    }
    if let Some(p) = &config.process {
        if p.apparmor_profile.as_deref().is_some_and(|a| !a.is_empty() && a != "unconfined") {
            return refuse("process.apparmorProfile");
        }
        if p.selinux_label.as_deref().is_some_and(|l| !l.is_empty()) {
            return refuse("process.selinuxLabel");
        }
    }
    Ok(())
}

/// Whether the config makes a user namespace of its own.
fn new_user_namespace(config: &Config) -> bool {
    config.namespaces.iter().any(|ns| ns.kind == NamespaceKind::User && ns.path.is_none())
}

/// What spawner does to the container's first process between clone and go: with a user namespace
/// of its own, the id maps (of a new one) and the limits it could not set itself.
fn before_go(config: &Config, process: &crate::spec::Process, init: bool, pid: i32) -> Result<(), RunError> {
    if new_user_namespace(config) {
        userns::write_maps(pid, &config.uid_mappings, &config.gid_mappings).map_err(RunError::msg)?;
    }
    if config.namespaces.iter().any(|ns| ns.kind == NamespaceKind::User) {
        limits::apply(rustix::process::Pid::from_raw(pid), process, init).map_err(RunError::msg)?;
    }
    Ok(())
}

/// The cgroup's name and parent: `linux.cgroupsPath` (absolute: below the cgroup mount; one
/// relative name: below spawner's own cgroup), else the container's id below spawner's cgroup.
fn cgroup_place(config: &Config, id: &str) -> Result<(String, Option<PathBuf>), RunError> {
    let Some(path) = &config.cgroups_path else { return Ok((id.to_string(), None)) };
    if crate::cgroup::systemd::is_unit_path(&path.to_string_lossy()) {
        return Err(RunError::msg(format!(
            "config.json: linux.cgroupsPath {:?} is systemd's slice:prefix:name form: it needs the systemd \
             cgroup driver (--systemd-cgroup)",
            path.display().to_string()
        )));
    }
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        RunError::msg(format!("config.json: linux.cgroupsPath {}: no cgroup name", path.display()))
    })?;
    let parent = path.parent().filter(|p| *p != Path::new("") && *p != Path::new("/"));
    match parent {
        Some(p) if !p.is_absolute() => Err(RunError::msg(format!(
            "config.json: linux.cgroupsPath {}: a relative path with directories is not supported",
            path.display()
        ))),
        _ => Ok((
            name.to_string(),
            parent.map(Path::to_path_buf).or(path.is_absolute().then(|| PathBuf::from("/"))),
        )),
    }
}

/// Clones the container's process with `flags`, directly or (with namespaces to join first, `via`)
/// through an intermediate process (see `namespaces::clone_via`). 0 in the child, its pid here.
///
/// # Safety
/// As `rawsys::clone_process`: spawner is single-threaded.
unsafe fn clone_child(flags: u64, via: &[(NamespaceKind, OwnedFd)]) -> Result<i32, RunError> {
    match via.is_empty() {
        // SAFETY: the caller's promise.
        true => unsafe { rawsys::clone_process(flags) }.map_err(|e| RunError::msg(format!("clone: {e}"))),
        // SAFETY: the caller's promise.
        false => unsafe { namespaces::clone_via(flags, via) }.map_err(RunError::msg),
    }
}

/// Ends a child spawner cloned whose setup cannot go on.
fn kill_and_reap(pid: i32) {
    let _ = rawsys::kill(pid, 9);
    let _ =
        rustix::process::waitpid(rustix::process::Pid::from_raw(pid), rustix::process::WaitOptions::empty());
}

/// Reads `fd` to its end (a pipe whose every writer has closed or exec'd).
pub(crate) fn read_to_end(fd: impl AsFd) -> rustix::io::Result<Vec<u8>> {
    let mut all = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match rustix::io::read(fd.as_fd(), &mut buf) {
            Ok(0) => return Ok(all),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RunError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| RunError::msg(format!("pipe: {e}")))
}

/// What the wait does with the container's output besides relaying it: a captured container's
/// pipes are read into its sink; `started` hears of the process once it runs.
#[derive(Default)]
pub(crate) struct Output<'a, 'b> {
    captured: Option<Capture<'a>>,
    started: Option<&'b mut dyn FnMut(i32)>,
}

/// Clones a process that runs `child` (given the go and error pipes), lets it go once `before_go`
/// is done with it, waits for its setup, then for its end, relaying signals (and with
/// `tty_socket`, its terminal). Returns the exit status.
pub(crate) fn spawn_and_wait_with(
    clone_flags: u64,
    via: &[(NamespaceKind, OwnedFd)],
    tty_socket: Option<OwnedFd>,
    before_go: &dyn Fn(i32) -> Result<(), RunError>,
    mut output: Output<'_, '_>,
    child: impl FnOnce(OwnedFd, OwnedFd),
) -> Result<i32, RunError> {
    // Signals for the container wait in a signalfd from now on, none lost while it starts.
    let relayed = signal_set(&RELAYED) | signal_set(&[SIGCHLD, SIGWINCH]);
    rawsys::set_signal_mask(relayed).map_err(|e| RunError::msg(format!("sigprocmask: {e}")))?;
    let signals = rawsys::signalfd(relayed).map_err(|e| RunError::msg(format!("signalfd: {e}")))?;
    let (go_read, go_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    // SAFETY: spawner is single-threaded here (the front end joined its threads before), so the
    // child may allocate.
    let pid = unsafe { clone_child(clone_flags, via) }?;
    if pid == 0 {
        drop((go_write, err_read, signals, tty_socket));
        child(go_read, err_write);
        // `child` execs or exits.
        rawsys::exit(125);
    }
    drop((go_read, err_write));
    log::info!("container process {pid}");
    if let Err(e) = before_go(pid) {
        kill_and_reap(pid);
        return Err(e);
    }
    rustix::io::write(&go_write, b"g").map_err(|e| RunError::msg(format!("start container: {e}")))?;
    drop(go_write);
    let setup = wait_for_setup(pid, &err_read, &signals)?;
    // What the child was given (the plan: its mount sources, its end of the tty socket) is let go
    // here only now. A detached tree the container cloned from rather than attached (the /etc
    // files' tmpfs) is dissolved by its last close, which waits for an RCU grace period: here,
    // while the container runs, not in its setup. And only the container holds its end of the tty
    // socket from here on: EOF there means its setup failed.
    drop(child);
    let (message, pending) = match setup {
        Setup::Done { message, pending } => (message, pending),
        Setup::Interrupted(sig) => {
            log::info!("signal {sig} during setup: the container was stopped before it started");
            return Ok(128 + sig);
        }
    };
    // Signals that came during setup reach the process now (they stay pending, blocked, until it
    // reads them, or are delivered once it unblocks them).
    for sig in pending {
        let _ = rawsys::kill(pid, sig);
    }
    if let (Some(started), true) = (output.started.as_mut(), message.is_empty()) {
        started(pid);
    }
    let master = match (&tty_socket, message.is_empty()) {
        (Some(socket), true) => tty::receive_master(socket).map_err(RunError::msg)?,
        _ => None,
    };
    if let Some(m) = &master {
        tty::sync_window_size(m.as_fd());
    }
    // A detached container's terminal is not spawner's.
    let attached = output.captured.as_ref().is_none_or(|c| c.attached);
    let raw = master.as_ref().filter(|_| attached).and_then(|_| tty::RawMode::enter());
    let status = wait_relaying(pid, &signals, master.as_ref(), output.captured.as_mut())?;
    log::debug!("container exited: {status}");
    drop(raw);
    if !message.is_empty() {
        return Err(RunError::msg(String::from_utf8_lossy(&message).into_owned()));
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
            Err(e) => return Err(RunError::msg(format!("poll: {e}"))),
        }
        // The error pipe first: once it is at EOF the process has exec'd, and a signal that came
        // at the same time is for it (it stays in the signalfd, relayed by the caller), not a
        // reason to kill it.
        if !fds[0].revents().is_empty() {
            match rustix::io::read(errors, &mut buf) {
                Ok(0) => return Ok(Setup::Done { message, pending }),
                Ok(n) => message.extend_from_slice(&buf[..n]),
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(RunError::msg(format!("read the container's setup errors: {e}"))),
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

/// A captured container's output pipes (each closed once its sink has no reader) and where their
/// bytes go; `attached` as in [`Captured`].
struct Capture<'a> {
    pipes: [Option<OwnedFd>; 2],
    sink: &'a mut dyn Sink,
    attached: bool,
}

/// Waits for the container's first process (init), relaying signals; with a terminal, also copies
/// stdin to the pty and the pty to stdout, and passes window-size changes on. A captured container's
/// output (its pipes, or its terminal) goes to the capture's sink instead, and stdin is not read.
fn wait_relaying(
    pid: i32,
    signals: &OwnedFd,
    master: Option<&OwnedFd>,
    mut captured: Option<&mut Capture<'_>>,
) -> Result<i32, RunError> {
    use rustix::event::{poll, PollFd, PollFlags};
    use rustix::process::{waitpid, Pid, WaitOptions};
    let child = Pid::from_raw(pid).expect("a child pid is positive");
    let (stdin, stdout) = (rustix::stdio::stdin(), rustix::stdio::stdout());
    let attached = captured.as_ref().is_none_or(|c| c.attached);
    let mut stdin_open = master.is_some() && attached;
    let mut master_open = master.is_some();
    let mut status = None;
    loop {
        if status.is_none() {
            if let Some((_, s)) = waitpid(Some(child), WaitOptions::NOHANG)
                .map_err(|e| RunError::msg(format!("waitpid: {e}")))?
            {
                status = Some(match (s.exit_status(), s.terminating_signal()) {
                    (Some(code), _) => code,
                    (_, Some(sig)) => 128 + sig,
                    _ => 125,
                });
            }
        }
        if let Some(code) = status {
            // What the container left in its pty or pipes is still to be copied: every process of
            // its PID namespace is gone, so nothing more comes.
            if let (Some(m), true) = (master, master_open) {
                rustix::io::ioctl_fionbio(m, true).ok();
                match captured.as_mut() {
                    Some(c) => while capture(m, Stream::Stdout, c.sink) {},
                    None => while tty::pump(m.as_fd(), stdout) {},
                }
            }
            if let Some(c) = captured.as_mut() {
                for (fd, stream) in c.pipes.iter().zip([Stream::Stdout, Stream::Stderr]) {
                    if let Some(fd) = fd {
                        rustix::io::ioctl_fionbio(fd, true).ok();
                        while capture(fd, stream, c.sink) {}
                    }
                }
            }
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(signals, PollFlags::IN)];
        let (mut master_at, mut stdin_at, mut pipes_at) = (None, None, [None; 2]);
        if let (Some(m), true) = (master, master_open) {
            master_at = Some(fds.len());
            fds.push(PollFd::new(m, PollFlags::IN));
        }
        if stdin_open {
            stdin_at = Some(fds.len());
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        if let Some(c) = captured.as_ref() {
            for (i, fd) in c.pipes.iter().enumerate() {
                if let Some(fd) = fd {
                    pipes_at[i] = Some(fds.len());
                    fds.push(PollFd::new(fd, PollFlags::IN));
                }
            }
        }
        let _ = poll(&mut fds, None);
        let ready = |at: Option<usize>| at.is_some_and(|i| !fds[i].revents().is_empty());
        let (master_ready, stdin_ready) = (ready(master_at), ready(stdin_at));
        let pipes_ready = [ready(pipes_at[0]), ready(pipes_at[1])];
        drop(fds);
        if let Some(m) = master {
            if master_ready {
                master_open = match captured.as_mut() {
                    Some(c) => capture(m, Stream::Stdout, c.sink),
                    None => tty::pump(m.as_fd(), stdout),
                };
            }
            if stdin_ready {
                stdin_open = tty::pump(stdin, m.as_fd());
            }
        }
        if let Some(c) = captured.as_mut() {
            for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
                let open = match &c.pipes[i] {
                    Some(fd) if pipes_ready[i] => capture(fd, stream, c.sink),
                    _ => true,
                };
                if !open {
                    c.pipes[i] = None;
                }
            }
        }
        while let Some(sig) = rawsys::read_signal(signals.as_fd()) {
            match (sig, master) {
                (SIGCHLD, _) => {}
                (SIGWINCH, Some(m)) if attached => tty::sync_window_size(m.as_fd()),
                (SIGWINCH, _) => {}
                _ => {
                    log::debug!("relaying signal {sig} to the container");
                    let _ = rawsys::kill(pid, sig);
                }
            }
        }
    }
}

/// Reads what is ready on `fd` into `sink`; false once it is at its end (or failed).
fn capture(fd: &OwnedFd, stream: Stream, sink: &mut dyn Sink) -> bool {
    let mut buf = [0u8; 16384];
    match rustix::io::read(fd, &mut buf) {
        Ok(0) => false,
        Ok(n) => sink.write(stream, &buf[..n]),
        Err(rustix::io::Errno::INTR) => true,
        // Drained (non-blocking), or a pty whose processes are all gone (EIO).
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module's error keeps its type inside RunError: the same one line, and its causes under it.
    #[test]
    fn typed_errors_keep_their_line_and_causes() {
        let mount = rootfs::MountError { what: "mount /data".into(), errno: rustix::io::Errno::NOENT };
        let e = RunError::from(mount);
        assert!(matches!(e, RunError::Mount(_)));
        assert_eq!(e.to_string(), "mount /data: No such file or directory (os error 2)");
        let cause = std::error::Error::source(&e).expect("the errno");
        assert_eq!(cause.to_string(), "No such file or directory (os error 2)");
        assert!(std::error::Error::source(&RunError::msg("plain")).is_none());
    }
}
