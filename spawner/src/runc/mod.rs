//! spawner as an OCI runtime, with runc's command line (`spawner-runc`, a link to spawner): the
//! front end engines drive (podman through conmon, containerd's runc shim, and so Docker and
//! Kubernetes). A bundle's config.json is checked (`spec::load`) and run by the same core as
//! `spawner run`; the container's state lives in `--root` between commands (`state`).
//!
//! `create` returns once the container's process is set up and waiting on its exec FIFO, reparented
//! to whoever reaps orphans for the caller (the shim, conmon); `start` opens the FIFO and the process
//! execs. Errors go to stderr and, with `--log`, to that file (`--log-format json`: the
//! `{"level":"error","msg":…,"time":…}` lines engines read), worded as runc's where engines match
//! them: `container does not exist`, `container with id exists`, exec errors (126/127).

mod cli;
mod error;
pub mod state;

use crate::container::{self, Extras, Held};
use clap::Parser;
use cli::{Cli, Command, CreateArgs};
pub use error::RuncError;
use state::{ContainerState, Saved, Status};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The runc command line's entry point: `args` as given (argv[0] first). Never returns.
pub fn main(args: Vec<std::ffi::OsString>) -> ! {
    let cli = Cli::try_parse_from(args).unwrap_or_else(|e| {
        let code = if e.use_stderr() { 1 } else { 0 };
        let _ = e.print();
        std::process::exit(code)
    });
    let log = Log { path: cli.log.clone(), json: cli.log_format == "json" };
    let level = if cli.debug { "debug" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    match dispatch(&cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            log.error(&e.to_string());
            if cli.debug {
                crate::print_causes(&e);
            }
            std::process::exit(1)
        }
    }
}

/// Where errors go besides stderr.
struct Log {
    path: Option<PathBuf>,
    json: bool,
}

impl Log {
    fn error(&self, message: &str) {
        eprintln!("spawner: {message}");
        let Some(path) = &self.path else { return };
        let line = match self.json {
            true => format!(
                "{}\n",
                serde_json::json!({"level": "error", "msg": message, "time": state::now_rfc3339()})
            ),
            false => format!("time=\"{}\" level=error msg={message:?}\n", state::now_rfc3339()),
        };
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

fn dispatch(cli: &Cli) -> Result<i32, RuncError> {
    let driver = match cli.cgroup_manager.as_deref() {
        Some("disabled") => CgroupDriver::Disabled,
        Some("systemd") => CgroupDriver::Systemd,
        _ if cli.systemd_cgroup => CgroupDriver::Systemd,
        _ => CgroupDriver::Cgroupfs,
    };
    // As runc: refused before anything is made. Later commands find the unit in the state.
    let creates = matches!(cli.command, Command::Create(_) | Command::Run(_));
    if creates && driver == CgroupDriver::Systemd && !crate::cgroup::systemd::running() {
        return Err(RuncError::Usage(crate::cgroup::systemd::NOT_RUNNING.into()));
    }
    let root = &cli.root;
    match &cli.command {
        Command::Create(c) => create(root, &c.id, &c.common, driver).map(|_| 0),
        Command::Start { id } => start(root, id).map(|()| 0),
        Command::State { id } => {
            let state = ContainerState::load(root, id)?;
            println!("{}", serde_json::to_string_pretty(&state.oci_state()).unwrap_or_default());
            Ok(0)
        }
        Command::Kill { all, id, signal } => {
            kill(root, id, signal.as_deref().unwrap_or("TERM"), *all).map(|()| 0)
        }
        Command::Delete { force, id } => delete(root, id, *force).map(|()| 0),
        Command::Run(r) => run(root, &r.id, &r.common, r.detach, driver),
        Command::Exec(e) => exec(root, e),
        Command::List { format, quiet } => list(root, format, *quiet).map(|()| 0),
        Command::Ps { format, id, .. } => ps(root, id, format).map(|()| 0),
        Command::Update { resources, id } => update(root, id, resources).map(|()| 0),
        Command::Pause { id } => freeze(root, id, true).map(|()| 0),
        Command::Resume { id } => freeze(root, id, false).map(|()| 0),
        Command::Spec { bundle, rootless } => spec(bundle.as_deref(), *rootless).map(|()| 0),
        Command::Features => {
            println!("{}", serde_json::to_string_pretty(&features()).unwrap_or_default());
            Ok(0)
        }
    }
}

/// Who makes containers' cgroups: spawner (`cgroupfs`, the default), systemd (`--systemd-cgroup`,
/// or crun's `--cgroup-manager systemd`), or nobody (`--cgroup-manager disabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CgroupDriver {
    Cgroupfs,
    Systemd,
    Disabled,
}

fn bundle_dir(bundle: Option<&Path>) -> Result<PathBuf, RuncError> {
    let dir = bundle.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    std::path::absolute(&dir).map_err(RuncError::io(format!("bundle {}", dir.display())))
}

/// `create`: the container set up, its process waiting on `ROOT/ID/exec.fifo`.
fn create(
    root: &Path,
    id: &str,
    args: &CreateArgs,
    driver: CgroupDriver,
) -> Result<ContainerState, RuncError> {
    let console_socket = args.console_socket.as_deref().map(connect_console).transpose()?;
    create_with(root, id, args, driver, console_socket)
}

/// `create` with the console socket given (runc's `run` makes its own for a terminal).
fn create_with(
    root: &Path,
    id: &str,
    args: &CreateArgs,
    driver: CgroupDriver,
    console_socket: Option<rustix::fd::OwnedFd>,
) -> Result<ContainerState, RuncError> {
    state::check_id(id)?;
    let bundle = bundle_dir(args.bundle.as_deref())?;
    let config = crate::spec::load(&bundle)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(root)
        .map_err(RuncError::io(format!("create {}", root.display())))?;
    let dir = root.join(id);
    match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(RuncError::Exists(id.to_string()))
        }
        Err(e) => return Err(RuncError::io(format!("create {}", dir.display()))(e)),
    }
    let made = (|| {
        let fifo = dir.join(state::EXEC_FIFO);
        // 0622, as runc: the process may open it after changing to a non-root user.
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o622),
            0,
        )
        .map_err(RuncError::io(format!("mkfifo {}", fifo.display())))?;
        rustix::fs::chmod(&fifo, rustix::fs::Mode::from_raw_mode(0o622))
            .map_err(RuncError::io(format!("chmod {}", fifo.display())))?;
        let extras = Extras {
            id: id.to_string(),
            no_cgroup: driver == CgroupDriver::Disabled,
            systemd_cgroup: driver == CgroupDriver::Systemd,
            no_pivot: args.no_pivot,
            ..Default::default()
        };
        let held =
            Held { exec_fifo: fifo, console_socket, preserve_fds: args.preserve_fds, bundle: bundle.clone() };
        let created = container::create(&config, extras, held).map_err(|e| {
            // The spec's lifecycle goes on at delete when create fails: poststop hooks run (as
            // runc's destroy runs them), so that what a prestart hook set up is undone.
            let identity = container::hooks::Identity {
                oci_version: &config.oci_version,
                id,
                bundle: &bundle,
                annotations: &config.annotations,
            };
            container::hooks::run_warning(
                "poststop",
                &config.hooks.poststop,
                &identity.state("stopped", None),
            );
            RuncError::Container(e)
        })?;
        // The cgroup outlives this command now: its handle must not remove it when dropped.
        let cgroup = created.cgroup.map(crate::cgroup::Cgroup::into_location);
        let start_time = match state::start_time(created.pid) {
            Some(t) => t,
            None => {
                remove_cgroup(cgroup.as_ref());
                return Err(RuncError::State("the container's process is gone".into()));
            }
        };
        let state = ContainerState {
            dir: dir.clone(),
            saved: Saved {
                oci_version: config.oci_version.clone(),
                id: id.to_string(),
                pid: created.pid,
                start_time,
                bundle: bundle.clone(),
                rootfs: config.root.path.clone(),
                created: state::now_rfc3339(),
                owner: String::new(),
                annotations: config.annotations.clone(),
                cgroup,
                poststart: config.hooks.poststart.clone(),
                poststop: config.hooks.poststop.clone(),
            },
        };
        if let Err(e) = state.store() {
            let _ = rawsys::kill(created.pid, 9);
            remove_cgroup(state.saved.cgroup.as_ref());
            return Err(e);
        }
        if let Some(pid_file) = &args.pid_file {
            write_pid_file(pid_file, created.pid)?;
        }
        Ok(state)
    })();
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    made
}

/// Removes a cgroup `create` made, when it fails after making it.
fn remove_cgroup(location: Option<&crate::cgroup::CgroupLocation>) {
    if let Some(cgroup) = location.and_then(|l| crate::cgroup::Cgroup::reopen(l).ok()) {
        let _ = cgroup.remove();
    }
}

/// `--pid-file`: the decimal pid, no newline, written to a temporary file and renamed into place.
fn write_pid_file(path: &Path, pid: i32) -> Result<(), RuncError> {
    let path = std::path::absolute(path).map_err(RuncError::io(format!("{}", path.display())))?;
    let tmp =
        path.with_file_name(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("pid")));
    std::fs::write(&tmp, pid.to_string()).map_err(RuncError::io(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(RuncError::io(format!("rename {}", path.display())))
}

/// Connects to `--console-socket`.
fn connect_console(path: &Path) -> Result<rustix::fd::OwnedFd, RuncError> {
    use rustix::net::{connect, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let socket = socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
        .map_err(RuncError::io("console socket"))?;
    let addr =
        SocketAddrUnix::new(path).map_err(RuncError::io(format!("console socket {}", path.display())))?;
    connect(&socket, &addr)
        .map_err(RuncError::io(format!("connect to the console socket {}", path.display())))?;
    Ok(socket)
}

/// `start`: opens the exec FIFO, which lets the waiting process exec, and returns once it has
/// (its end of the FIFO closes with the exec), after the poststart hooks.
fn start(root: &Path, id: &str) -> Result<(), RuncError> {
    let state = ContainerState::load(root, id)?;
    match state.status() {
        Status::Created => {}
        Status::Stopped => return Err(RuncError::State("cannot start a container that has stopped".into())),
        _ => return Err(RuncError::State("cannot start an already running container".into())),
    }
    let fifo_path = state.dir.join(state::EXEC_FIFO);
    use rustix::fs::{Mode, OFlags};
    // Not blocking: the process may die before it opens its end.
    let fifo =
        rustix::fs::open(&fifo_path, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty())
            .map_err(RuncError::io(format!("open {}", fifo_path.display())))?;
    let mut byte = [0u8];
    loop {
        match rustix::io::read(&fifo, &mut byte) {
            Ok(1) => break,
            Ok(_) | Err(rustix::io::Errno::AGAIN) => {
                if !state.alive() {
                    let _ = std::fs::remove_file(&fifo_path);
                    return Err(RuncError::State(
                        "the container's process exited before it could start".into(),
                    ));
                }
                let mut fds = [rustix::event::PollFd::new(&fifo, rustix::event::PollFlags::IN)];
                let timeout = rustix::event::Timespec { tv_sec: 0, tv_nsec: 50_000_000 };
                let _ = rustix::event::poll(&mut fds, Some(&timeout));
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(RuncError::io(format!("read {}", fifo_path.display()))(e)),
        }
    }
    std::fs::remove_file(&fifo_path).map_err(RuncError::io(format!("remove {}", fifo_path.display())))?;
    // startContainer hooks run now, then the exec closes the process's end (or its death does).
    loop {
        match rustix::io::read(&fifo, &mut byte) {
            Ok(0) => break,
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                if !state.alive() {
                    break;
                }
                let mut fds = [rustix::event::PollFd::new(&fifo, rustix::event::PollFlags::IN)];
                let timeout = rustix::event::Timespec { tv_sec: 0, tv_nsec: 50_000_000 };
                let _ = rustix::event::poll(&mut fds, Some(&timeout));
            }
            Err(e) => return Err(RuncError::io(format!("read {}", fifo_path.display()))(e)),
        }
    }
    // The spec's rule: a failing poststart hook is a warning, and the container runs on.
    let state_for_hooks = state.hook_identity().state("running", Some(state.saved.pid));
    container::hooks::run_warning("poststart", &state.saved.poststart, &state_for_hooks);
    Ok(())
}

fn kill(root: &Path, id: &str, signal: &str, all: bool) -> Result<(), RuncError> {
    let state = ContainerState::load(root, id)?;
    let sig = crate::signal::parse(signal).map_err(RuncError::Usage)?;
    if all {
        for pid in pids(&state)? {
            let _ = rawsys::kill(pid, sig);
        }
        return Ok(());
    }
    if state.status() == Status::Stopped {
        return Err(RuncError::State("container not running".into()));
    }
    rawsys::kill(state.saved.pid, sig).map_err(RuncError::io(format!("kill {}", state.saved.pid)))
}

/// `delete`: a stopped (or never started) container's cgroup and state removed; with --force a
/// running one is killed first; an unknown one is fine with --force, as engines expect.
fn delete(root: &Path, id: &str, force: bool) -> Result<(), RuncError> {
    let state = match ContainerState::load(root, id) {
        Ok(state) => state,
        Err(RuncError::NotExist) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    match state.status() {
        Status::Stopped => {}
        Status::Created => kill_and_wait(&state),
        status if force => {
            if status == Status::Paused {
                let _ = freeze(root, id, false);
            }
            kill_and_wait(&state)
        }
        status => {
            return Err(RuncError::State(format!(
                "cannot delete container {id} that is not stopped: {}",
                status.name()
            )))
        }
    }
    if let Some(location) = &state.saved.cgroup {
        crate::cgroup::Cgroup::reopen(location)?.remove()?;
    }
    // The spec's rule: a failing poststop hook is a warning, and the delete goes on.
    let state_for_hooks = state.hook_identity().state("stopped", Some(state.saved.pid));
    container::hooks::run_warning("poststop", &state.saved.poststop, &state_for_hooks);
    std::fs::remove_dir_all(&state.dir).map_err(RuncError::io(format!("remove {}", state.dir.display())))
}

/// SIGKILLs the container's process and waits (up to 10 s) until it is gone or a zombie its parent
/// has yet to reap.
fn kill_and_wait(state: &ContainerState) {
    let pid = state.saved.pid;
    let _ = rawsys::kill(pid, 9);
    for _ in 0..1000 {
        if !state.alive() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// `run`: create and start; without --detach wait for the process (spawner is its parent) and
/// delete the container, exiting with its status.
///
/// In the foreground, as runc: the signals spawner gets go to the process, and a process with
/// `terminal` and no --console-socket gets a pty whose other side is spawner's stdio.
fn run(
    root: &Path,
    id: &str,
    args: &CreateArgs,
    detach: bool,
    driver: CgroupDriver,
) -> Result<i32, RuncError> {
    if detach {
        create(root, id, args, driver)?;
        return start(root, id).map(|()| 0);
    }
    let mut foreground = container::Foreground::hold_signals()?;
    let terminal = args.console_socket.is_none()
        && crate::spec::load(&bundle_dir(args.bundle.as_deref())?)?.process.is_some_and(|p| p.terminal);
    let (here, there) = match terminal {
        true => container::tty::socket_pair().map(|(a, b)| (Some(a), Some(b))).map_err(RuncError::Usage)?,
        false => (None, None),
    };
    let state = create_with(root, id, args, driver, there)?;
    let waited = here
        .map_or(Ok(()), |socket| foreground.attach_terminal(&socket))
        .map_err(RuncError::Container)
        .and_then(|()| start(root, id))
        .and_then(|()| foreground.wait(state.saved.pid).map_err(RuncError::Container));
    let deleted = delete(root, id, true);
    let status = waited?;
    deleted?;
    Ok(status)
}

/// `exec`: a process in the running container, from `--process FILE` or from the container's own
/// process with COMMAND and the flags applied. Waits for it (its exit status is ours) unless
/// --detach.
fn exec(root: &Path, args: &cli::Exec) -> Result<i32, RuncError> {
    let state = ContainerState::load(root, &args.id)?;
    match state.status() {
        Status::Running => {}
        Status::Paused if args.ignore_paused => {}
        Status::Paused => {
            return Err(RuncError::State(
                "cannot exec in a paused container (use --ignore-paused to override)".into(),
            ))
        }
        Status::Created => {
            return Err(RuncError::State("cannot exec in a container that has not started".into()))
        }
        Status::Stopped => return Err(RuncError::State("cannot exec in a stopped container".into())),
    }
    let config = crate::spec::load(&state.saved.bundle)?;
    let process = match &args.process {
        Some(file) => crate::spec::load_process(file)?,
        None => {
            let mut process = config
                .process
                .clone()
                .ok_or_else(|| RuncError::Usage("config.json has no process to start from".into()))?;
            if args.command.is_empty() {
                return Err(RuncError::Usage("exec: no command given (and no --process)".into()));
            }
            process.args = args.command.clone();
            process.terminal = args.tty;
            process.console_size = None;
            if let Some(cwd) = &args.cwd {
                process.cwd = cwd.clone();
            }
            process.env.extend(args.env.iter().cloned());
            if let Some(user) = &args.user {
                let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
                let bad = || RuncError::Usage(format!("--user {user}: not UID[:GID]"));
                process.user.uid = uid.parse().map_err(|_| bad())?;
                process.user.gid = gid.parse().map_err(|_| bad())?;
            }
            process.user.additional_gids.extend(&args.additional_gids);
            for cap in &args.cap {
                let cap = crate::container::security::parse_capability(cap)
                    .ok_or_else(|| RuncError::Usage(format!("unknown capability {cap:?}")))?;
                let c = &mut process.capabilities;
                c.bounding |= cap;
                c.effective |= cap;
                c.permitted |= cap;
            }
            process.no_new_privileges |= args.no_new_privs;
            process
        }
    };
    let console_socket = args.console_socket.as_deref().map(connect_console).transpose()?;
    let request = container::exec::Exec {
        pid: state.saved.pid,
        cgroup: state.saved.cgroup.as_ref(),
        process: &process,
        seccomp: config.seccomp.as_ref(),
        console_socket,
        preserve_fds: args.preserve_fds,
        detach: args.detach,
        image_user: None,
    };
    match container::exec::exec(request)? {
        container::exec::Outcome::Detached(pid) => {
            if let Some(pid_file) = &args.pid_file {
                write_pid_file(pid_file, pid)?;
            }
            Ok(0)
        }
        container::exec::Outcome::Exited(status) => Ok(status),
    }
}

fn list(root: &Path, format: &str, quiet: bool) -> Result<(), RuncError> {
    let mut states = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Ok(state) = ContainerState::load(root, &name) {
                states.push(state);
            }
        }
    }
    states.sort_by(|a, b| a.saved.id.cmp(&b.saved.id));
    if quiet {
        for s in &states {
            println!("{}", s.saved.id);
        }
    } else if format == "json" {
        let all: Vec<serde_json::Value> = states.iter().map(ContainerState::oci_state).collect();
        println!("{}", serde_json::Value::Array(all));
    } else {
        println!("{:<24} {:<8} {:<10} {:<40} {:<32} OWNER", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
        for s in &states {
            let status = s.status();
            let pid = if status == Status::Stopped { 0 } else { s.saved.pid };
            println!(
                "{:<24} {:<8} {:<10} {:<40} {:<32} {}",
                s.saved.id,
                pid,
                status.name(),
                s.saved.bundle.display(),
                s.saved.created,
                if s.saved.owner.is_empty() { "root" } else { &s.saved.owner }
            );
        }
    }
    Ok(())
}

/// `ps`: the container's processes from its cgroup (host pids).
fn ps(root: &Path, id: &str, format: &str) -> Result<(), RuncError> {
    let state = ContainerState::load(root, id)?;
    let pids = pids(&state)?;
    if format == "json" {
        println!("{}", serde_json::json!(pids));
    } else {
        println!("PID   CMD");
        for pid in pids {
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            println!("{pid:<5} {}", cmd.trim_end());
        }
    }
    Ok(())
}

/// The container's processes: its cgroup's, or without one its first process alone.
fn pids(state: &ContainerState) -> Result<Vec<i32>, RuncError> {
    match &state.saved.cgroup {
        Some(location) => Ok(crate::cgroup::Cgroup::reopen(location).and_then(|c| c.pids())?),
        None if state.alive() => Ok(vec![state.saved.pid]),
        None => Ok(Vec::new()),
    }
}

fn update(root: &Path, id: &str, resources: &Path) -> Result<(), RuncError> {
    let state = ContainerState::load(root, id)?;
    if state.status() == Status::Stopped {
        return Err(RuncError::State("container not running".into()));
    }
    let text = match resources == Path::new("-") {
        true => {
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut text)
                .map_err(RuncError::io("read stdin"))?;
            Some(text)
        }
        false => None,
    };
    let limits = crate::spec::load_resources(resources, text)?;
    let location = state
        .saved
        .cgroup
        .as_ref()
        .ok_or_else(|| RuncError::State("the container has no cgroup to update".into()))?;
    Ok(crate::cgroup::Cgroup::reopen(location)?.update(&limits)?)
}

fn freeze(root: &Path, id: &str, frozen: bool) -> Result<(), RuncError> {
    let state = ContainerState::load(root, id)?;
    match (state.status(), frozen) {
        (Status::Running, true) | (Status::Paused, false) => {}
        (Status::Paused, true) => return Err(RuncError::State("container already paused".into())),
        (_, true) => return Err(RuncError::State("container not running".into())),
        (_, false) => return Err(RuncError::State("container not paused".into())),
    }
    let location = state
        .saved
        .cgroup
        .as_ref()
        .ok_or_else(|| RuncError::State("the container has no cgroup to freeze".into()))?;
    let cgroup = crate::cgroup::Cgroup::reopen(location)?;
    Ok(match frozen {
        true => cgroup.freeze(),
        false => cgroup.thaw(),
    }?)
}

/// `spec`: runc's default config.json (a busybox-style `sh` on a terminal), into the bundle.
fn spec(bundle: Option<&Path>, rootless: bool) -> Result<(), RuncError> {
    let dir = bundle_dir(bundle)?;
    let path = dir.join("config.json");
    if path.exists() {
        return Err(RuncError::Usage(format!("File {} exists. Remove it first", path.display())));
    }
    let spec = match rootless {
        true => oci_spec::runtime::Spec::rootless(
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        ),
        false => oci_spec::runtime::Spec::default(),
    };
    // As runc's: every device denied but those a runtime always allows (the core adds them), and
    // the runtime's name as the hostname (oci-spec's default names another runtime).
    let mut spec = serde_json::to_value(&spec).map_err(RuncError::io("config.json"))?;
    spec["hostname"] = "spawner".into();
    if !rootless {
        spec["linux"]["resources"]["devices"] = serde_json::json!([{"allow": false, "access": "rwm"}]);
    }
    let json = serde_json::to_string_pretty(&spec).map_err(RuncError::io("config.json"))?;
    std::fs::write(&path, json + "\n").map_err(RuncError::io(format!("write {}", path.display())))
}

/// The OCI features document: what this runtime takes.
fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "sync", "async", "dirsync",
            "remount", "mand", "nomand", "atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime",
            "strictatime", "nostrictatime", "lazytime", "nolazytime", "bind", "rbind", "private", "rprivate",
            "shared", "rshared", "slave", "rslave", "unbindable", "runbindable", "rro", "rrw", "rnosuid", "rsuid",
            "rnodev", "rdev", "rnoexec", "rexec", "rnoatime", "ratime", "rnodiratime", "rdiratime", "rrelatime",
            "rnorelatime", "rstrictatime", "nosymfollow", "rnosymfollow"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": crate::container::security::capability_names(),
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {"org.opencontainers.runc.version": "spawner"}
    })
}

use std::os::unix::fs::DirBuilderExt;

#[cfg(test)]
mod tests {
    /// What `features` claims is what the core takes: every namespace kind and hook list.
    #[test]
    fn features_name_every_namespace_and_hook_list() {
        let features = super::features();
        let names = |v: &serde_json::Value| -> Vec<String> {
            v.as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect()
        };
        assert_eq!(
            names(&features["linux"]["namespaces"]),
            ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]
        );
        assert_eq!(
            names(&features["hooks"]),
            ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
        );
    }
}
