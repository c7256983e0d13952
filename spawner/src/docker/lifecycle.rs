//! Docker's commands on containers that exist: `ps`, `logs`, `stop`, `kill`, `rm`, `wait`, `exec`,
//! `inspect`. They read each container's record (see `record`) and reach its run through the pid it
//! recorded (checked against its start time, signalled through a pidfd): no daemon is asked.

use super::record::{self, Container, Status};
use crate::container::RunError;
use rustix::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// In a container's directory: `stop`, `kill` or `rm -f` ended its run, so its restart policy
/// lets it be.
pub const STOPPED_MARKER: &str = "stopped";

/// The container's first process, held by a pidfd: while it is held, signals reach that process
/// and no other that took its pid. None when it is not running.
fn process(c: &Container) -> Option<OwnedFd> {
    if c.status() != Status::Running {
        return None;
    }
    let pid = rustix::process::Pid::from_raw(c.state.pid)?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
    // Opened before this check: if the pid is still the container's now, the fd is its process.
    c.running().then_some(fd)
}

fn signal(pidfd: &OwnedFd, pid: i32, sig: i32) -> Result<(), RunError> {
    let sent = match rustix::process::Signal::from_named_raw(sig) {
        Some(s) => rustix::process::pidfd_send_signal(pidfd, s),
        None => rawsys::kill(pid, sig).map_err(|e| rustix::io::Errno::from_raw_os_error(e.raw_os_error())),
    };
    match sent {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(RunError::msg(format!("signal {sig} to the container's process {pid}: {e}"))),
    }
}

/// Waits up to `limit` (None: for ever) for the process to end; whether it did.
fn wait_exit(pidfd: &OwnedFd, limit: Option<Duration>) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let deadline = limit.map(|l| Instant::now() + l);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let timeout = left.map(|l| Timespec { tv_sec: l.as_secs() as i64, tv_nsec: l.subsec_nanos() as i64 });
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Waits until the run of the container in `dir` has ended and recorded how (it holds the
/// directory's lock until then). A removed directory (`--rm`) has nothing more to wait for.
fn wait_recorded(dir: &Path) {
    let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC;
    if let Ok(fd) = rustix::fs::open(dir, flags, rustix::fs::Mode::empty()) {
        let _ = rustix::fs::flock(fd.as_fd(), rustix::fs::FlockOperation::LockShared);
    }
}

fn mark_stopped(c: &Container) {
    let _ = std::fs::write(c.dir.join(STOPPED_MARKER), "");
}

/// `stop [-t N] [-s SIG]`: the container's stop signal (its image's StopSignal, `--stop-signal`,
/// else SIGTERM), then SIGKILL after the timeout (its `--stop-timeout`, else 10 s). A container that
/// is not running is left as it is.
pub fn stop(c: &Container, timeout: Option<u32>, sig: Option<i32>) -> Result<(), RunError> {
    let Some(pidfd) = process(c) else { return Ok(()) };
    mark_stopped(c);
    let pid = c.state.pid;
    signal(&pidfd, pid, sig.unwrap_or(c.record.stop_signal))?;
    let limit = Duration::from_secs(timeout.unwrap_or(c.record.stop_timeout).into());
    if !wait_exit(&pidfd, Some(limit)) {
        log::info!("{} did not stop in {} s: killed", c.record.name, limit.as_secs());
        signal(&pidfd, pid, 9)?;
        wait_exit(&pidfd, None);
    }
    wait_recorded(&c.dir);
    Ok(())
}

/// `kill [-s SIG]`: a signal (default SIGKILL) to a running container.
pub fn kill(c: &Container, sig: i32) -> Result<(), RunError> {
    let Some(pidfd) = process(c) else {
        return Err(RunError::msg(format!("cannot kill container {}: it is not running", c.record.name)));
    };
    mark_stopped(c);
    signal(&pidfd, c.state.pid, sig)?;
    if sig == 9 {
        wait_exit(&pidfd, None);
        wait_recorded(&c.dir);
    }
    Ok(())
}

/// `rm [-f]`: the container's directory (record, writable layer, log) removed; a running one only
/// with `force`, killed first.
pub fn remove(c: &Container, force: bool) -> Result<(), RunError> {
    if let Some(pidfd) = process(c) {
        if !force {
            return Err(RunError::msg(format!(
                "cannot remove container {}: it is running (stop it first, or use rm -f)",
                c.record.name
            )));
        }
        mark_stopped(c);
        signal(&pidfd, c.state.pid, 9)?;
        wait_exit(&pidfd, None);
    }
    // The run (or a restart's wait) may still hold the directory: removed once it is done with it.
    let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::NOFOLLOW;
    let dir = rustix::fs::open(&c.dir, flags | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
        .map_err(|e| RunError::msg(format!("open {}: {e}", c.dir.display())))?;
    rustix::fs::flock(&dir, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| RunError::msg(format!("lock {}: {e}", c.dir.display())))?;
    // A run that died without recording its end (its spawner SIGKILLed) left its cgroup.
    let left = Container::load(&c.dir).map(|now| now.state).unwrap_or_else(|_| c.state.clone());
    if let (record::Phase::Running, Some(location)) = (left.phase, &left.cgroup) {
        match crate::cgroup::Cgroup::reopen(location).and_then(|cgroup| cgroup.remove()) {
            Ok(()) => log::info!("removed the cgroup {} left by a dead run", c.record.name),
            Err(e) => log::warn!("cgroup of {}: {e}", c.record.name),
        }
    }
    discard(c)
}

/// Removes the directory of `c`, whose lock the caller holds: renamed out of the way first, so a
/// half-removed container is never listed.
fn discard(c: &Container) -> Result<(), RunError> {
    let trash = c.dir.with_file_name(format!(".{}.rm", c.record.id));
    std::fs::rename(&c.dir, &trash).map_err(|e| RunError::msg(format!("rename {}: {e}", c.dir.display())))?;
    std::fs::remove_dir_all(&trash).map_err(|e| RunError::msg(format!("remove {}: {e}", trash.display())))
}

/// The lock of a container's run, taken for a command that changes its directory; None while a
/// run (starting, running, or recording its end) holds it.
pub(super) fn lock_idle(c: &Container) -> Result<Option<OwnedFd>, RunError> {
    match super::stale::claim(&c.dir) {
        Ok(lock) => Ok(Some(lock)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(RunError::msg(format!("lock {}: {e}", c.dir.display()))),
    }
}

/// Whether a detached container that exited waits for its restart (its monitor lives on, and its
/// policy starts it again).
pub(super) fn restarting(c: &Container) -> bool {
    let monitor_alive = c.state.monitor > 0
        && std::fs::read_to_string(format!("/proc/{}/comm", c.state.monitor))
            .is_ok_and(|comm| comm.trim() == "spawner");
    !matches!(c.record.restart.as_str(), "" | "no") && monitor_alive && !c.dir.join(STOPPED_MARKER).exists()
}

/// `rename OLD NEW`: the container's directory is renamed and its record says the new name, as
/// Docker renames, running or not. A running container's run finds its directory again through
/// its fd (its state, log and removal follow), its cgroup keeps the name it was made with (its
/// state records it, so the stale-run cleanup knows it for a live one), and its bridge peers'
/// /etc/hosts keep the old name until they start again. One starting, or recording its end, is
/// refused for that moment.
pub fn rename(c: &Container, new: &str) -> Result<(), RunError> {
    super::check_name(new)?;
    let old = &c.record.name;
    if new == old {
        return Err(RunError::msg(format!("container {old} is already named {new}")));
    }
    let busy =
        || RunError::msg(format!("cannot rename container {old} now: it is starting or stopping; try again"));
    let _lock = match c.status() {
        Status::Running => None,
        _ => Some(lock_idle(c)?.ok_or_else(busy)?),
    };
    // Not while a starting run holds the name.
    let containers = c.dir.parent().unwrap_or(Path::new("/"));
    let _reserved = super::names::reserve(containers, new)?;
    let target = c.dir.with_file_name(new);
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        &c.dir,
        rustix::fs::CWD,
        &target,
        rustix::fs::RenameFlags::NOREPLACE,
    ) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => {
            return Err(RunError::msg(format!("container name {new:?} is already in use")))
        }
        Err(e) => return Err(RunError::msg(format!("rename {}: {e}", c.dir.display()))),
    }
    let mut record = c.record.clone();
    record.name = new.to_string();
    if let Err(e) = record::write_record(&target, &record) {
        // Back to the name its record has.
        let _ = std::fs::rename(&target, &c.dir);
        return Err(e);
    }
    Ok(())
}

/// `container prune`: every container that is not running is removed (not one whose run holds
/// its directory, starting or recording its end, nor one waiting for its restart). The IDs of
/// those removed, and the bytes their writable layers held.
pub fn prune(containers: &Path) -> (Vec<String>, u64) {
    let mut removed = Vec::new();
    let mut reclaimed = 0;
    for c in record::list(containers) {
        if c.status() == Status::Running || restarting(&c) {
            continue;
        }
        let Ok(Some(_lock)) = lock_idle(&c) else { continue };
        let size = super::df::disk_usage(&c.dir.join("upper"));
        match discard(&c) {
            Ok(()) => {
                removed.push(c.record.id.clone());
                reclaimed += size;
            }
            Err(e) => log::warn!("{e}"),
        }
    }
    (removed, reclaimed)
}

/// `wait`: blocks until the container's run ends; its exit status.
pub fn wait(c: &mut Container) -> Result<i32, RunError> {
    if let Some(pidfd) = process(c) {
        wait_exit(&pidfd, None);
        wait_recorded(&c.dir);
        if c.refresh().is_err() {
            // Removed at its end (--rm): how it ended went with it.
            return Ok(0);
        }
    }
    Ok(c.state.exit_code)
}

/// `ps`: one row a container, as Docker prints it, or as `format` says.
pub fn ps(
    containers: &Path,
    all: bool,
    quiet: bool,
    no_trunc: bool,
    filters: &[String],
    format: Option<&str>,
) -> Result<(), RunError> {
    let mut rows = Vec::new();
    for c in record::list(containers).into_iter().rev() {
        if !all && c.status() != Status::Running {
            continue;
        }
        if !matches_filters(&c, filters)? {
            continue;
        }
        rows.push(c);
    }
    if quiet {
        for c in &rows {
            println!("{}", if no_trunc { c.record.id.as_str() } else { c.short_id() });
        }
        return Ok(());
    }
    if let Some(format) = format {
        let (table, format) = match format.strip_prefix("table") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, format),
        };
        if table {
            let header = ps_row_json(None, no_trunc);
            println!("{}", super::template::render(format, &header)?);
        }
        for c in &rows {
            println!("{}", super::template::render(format, &ps_row_json(Some(c), no_trunc))?);
        }
        return Ok(());
    }
    let columns = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"];
    let mut table = vec![ps_row_json(None, no_trunc)];
    table.extend(rows.iter().map(|c| ps_row_json(Some(c), no_trunc)));
    let cells: Vec<Vec<String>> = table
        .iter()
        .map(|row| columns.iter().map(|k| row[k].as_str().unwrap_or("").to_string()).collect())
        .collect();
    print!("{}", super::template::tabwrite(&cells, 10, 3));
    Ok(())
}

/// A `ps` row's fields, by the names `--format` uses (the column titles for `c` None).
fn ps_row_json(c: Option<&Container>, no_trunc: bool) -> serde_json::Value {
    let Some(c) = c else {
        return serde_json::json!({"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
            "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Status": "STATUS", "State": "STATE",
            "Ports": "PORTS", "Names": "NAMES"});
    };
    let command = c.record.command.join(" ");
    let command = match no_trunc || command.chars().count() <= 20 {
        true => format!("\"{command}\""),
        false => format!("\"{}…\"", command.chars().take(19).collect::<String>()),
    };
    serde_json::json!({
        "ID": if no_trunc { c.record.id.as_str() } else { c.short_id() },
        "Image": c.record.image,
        "Command": command,
        "CreatedAt": crate::clock::rfc3339(crate::clock::from_ns(c.record.created)),
        "RunningFor": format!("{} ago", crate::clock::since(c.record.created)),
        "Status": c.status_line(),
        "State": c.status().name(),
        "Ports": super::port::bindings(c)
            .iter()
            .map(|b| format!("{}->{}", b.public(), b.private()))
            .collect::<Vec<_>>()
            .join(", "),
        "Names": c.record.name,
    })
}

/// `--filter KEY=VALUE`: name (a substring), id (a prefix), status, as Docker takes them.
fn matches_filters(c: &Container, filters: &[String]) -> Result<bool, RunError> {
    for filter in filters {
        let (key, value) = filter
            .split_once('=')
            .ok_or_else(|| RunError::msg(format!("--filter {filter}: give KEY=VALUE (name, id, status)")))?;
        let ok = match key {
            "name" => c.record.name.contains(value),
            "id" => c.record.id.starts_with(value),
            "status" => c.status().name() == value,
            other => {
                return Err(RunError::msg(format!("--filter {other}: unknown filter (name, id, status)")))
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `inspect`: Docker's fields for the container, as JSON.
pub fn inspect_json(c: &Container) -> serde_json::Value {
    let status = c.status();
    let time = |ns: u64| match ns {
        0 => "0001-01-01T00:00:00Z".to_string(),
        ns => crate::clock::rfc3339(crate::clock::from_ns(ns)),
    };
    let restart = super::monitor::Restart::parse(&c.record.restart).unwrap_or(super::monitor::Restart::No);
    let (policy, retries) = match restart {
        super::monitor::Restart::No => ("no", 0),
        super::monitor::Restart::OnFailure(n) => ("on-failure", n),
        super::monitor::Restart::Always => ("always", 0),
        super::monitor::Restart::UnlessStopped => ("unless-stopped", 0),
    };
    let (path, args) = c.record.command.split_first().map_or(("", &[][..]), |(p, a)| (p.as_str(), a));
    serde_json::json!({
        "Id": c.record.id,
        "Created": time(c.record.created),
        "Path": path,
        "Args": args,
        "State": {
            "Status": status.name(),
            "Running": status == Status::Running,
            "Paused": false,
            "Restarting": false,
            "OOMKilled": c.state.oom_killed,
            "Dead": status == Status::Dead,
            "Pid": if status == Status::Running { c.state.pid } else { 0 },
            "ExitCode": c.state.exit_code,
            "Error": c.state.error,
            "StartedAt": time(c.state.started_at),
            "FinishedAt": time(c.state.finished_at),
        },
        "Image": c.record.image_id,
        "Name": format!("/{}", c.record.name),
        "RestartCount": c.state.restart_count,
        "LogPath": c.dir.join(record::LOG_FILE),
        "Config": {
            "Hostname": c.record.hostname,
            "User": c.record.user,
            "Tty": c.record.tty,
            "Env": c.record.env,
            "Cmd": c.record.command,
            "Image": c.record.image,
            "WorkingDir": c.record.cwd,
            "StopSignal": c.record.stop_signal,
            "StopTimeout": c.record.stop_timeout,
            "Labels": c.record.labels,
        },
        "HostConfig": {
            "AutoRemove": c.record.auto_remove,
            "NetworkMode": c.record.network,
            "PortBindings": c.record.ports,
            "Privileged": c.record.security.privileged,
            "CapAdd": c.record.security.cap_add,
            "CapDrop": c.record.security.cap_drop,
            "SecurityOpt": c.record.security.security_opt,
            "RestartPolicy": {"Name": policy, "MaximumRetryCount": retries},
            "LogConfig": {
                "Type": "json-file",
                "Config": c.record.log_opts.iter().filter_map(|o| o.split_once('=')).collect::<std::collections::BTreeMap<_, _>>(),
            },
        },
        "Mounts": c.record.mounts.iter().map(|m| serde_json::json!({
            "Type": m.kind, "Name": m.name, "Source": m.source, "Destination": m.destination, "RW": m.rw,
        })).collect::<Vec<_>>(),
    })
}

/// What `exec` runs, as the user gave it.
pub struct ExecArgs {
    pub command: Vec<String>,
    pub interactive: bool,
    pub tty: bool,
    pub detach: bool,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub env: Vec<String>,
    pub privileged: bool,
}

/// `exec`: a process in the running container with its namespaces, cgroup, capabilities, seccomp
/// filter and no_new_privs (`--privileged`: every capability, still in the container). Returns its
/// exit status; a process that could not start is 126 (127: its command was not found), said on
/// stderr, as Docker has it.
pub fn exec(c: &Container, args: &ExecArgs) -> Result<i32, RunError> {
    if c.status() != Status::Running {
        return Err(RunError::msg(format!("container {} is not running", c.record.name)));
    }
    if args.command.is_empty() {
        return Err(RunError::msg("exec: no command given"));
    }
    if args.tty && args.interactive && !rustix::termios::isatty(rustix::stdio::stdin()) {
        return Err(RunError::msg("the input device is not a TTY"));
    }
    if let Some(w) = args.workdir.as_deref().filter(|w| !w.starts_with('/')) {
        return Err(RunError::msg(format!("-w {w}: the working directory must be an absolute path")));
    }
    let mut sec = c.record.security.security().map_err(RunError::msg)?;
    if args.privileged {
        sec.capabilities = crate::container::security::all_capabilities();
    }
    let seccomp = super::security::seccomp_profile(&sec).map_err(RunError::msg)?;
    let mut env = c.record.env.clone();
    for e in &args.env {
        let entry = match e.contains('=') {
            true => e.clone(),
            false => match std::env::var(e) {
                Ok(v) => format!("{e}={v}"),
                Err(_) => continue,
            },
        };
        super::process::set_env(&mut env, entry);
    }
    let caps = sec.capabilities;
    let none = rustix::thread::CapabilitySet::empty();
    let process = crate::spec::Process {
        args: args.command.clone(),
        env,
        cwd: args.workdir.clone().unwrap_or_else(|| c.record.cwd.clone()).into(),
        user: crate::spec::User { uid: 0, gid: 0, umask: None, additional_gids: Vec::new() },
        terminal: args.tty,
        console_size: args
            .tty
            .then(|| rustix::termios::tcgetwinsize(rustix::stdio::stdout()).ok())
            .flatten()
            .map(|w| (w.ws_row, w.ws_col)),
        capabilities: crate::spec::Capabilities {
            bounding: caps,
            effective: caps,
            permitted: caps,
            inheritable: none,
            ambient: none,
        },
        rlimits: Vec::new(),
        no_new_privileges: sec.no_new_privs,
        oom_score_adj: None,
        apparmor_profile: None,
        selinux_label: None,
    };
    let user = args.user.clone().unwrap_or_else(|| c.record.user.clone());
    let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null");
    let null = null.map_err(|e| RunError::msg(format!("/dev/null: {e}")))?;
    if !args.interactive {
        rustix::stdio::dup2_stdin(&null).map_err(|e| RunError::msg(format!("dup2: {e}")))?;
    }
    // A detached process writes nowhere the caller sees; spawner's own errors still do.
    let saved_stderr = match args.detach {
        true => {
            let saved = rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stderr(), 3)
                .map_err(|e| RunError::msg(format!("dup: {e}")))?;
            let _ = rustix::stdio::dup2_stdout(&null);
            let _ = rustix::stdio::dup2_stderr(&null);
            Some(saved)
        }
        false => None,
    };
    let request = crate::container::exec::Exec {
        pid: c.state.pid,
        cgroup: c.state.cgroup.as_ref(),
        process: &process,
        seccomp: seccomp.as_ref(),
        console_socket: None,
        preserve_fds: 0,
        detach: args.detach,
        image_user: (!user.is_empty()).then_some(user.as_str()),
    };
    let outcome = crate::container::exec::exec(request);
    if let Some(saved) = saved_stderr {
        let _ = rustix::stdio::dup2_stderr(&saved);
    }
    match outcome {
        Ok(crate::container::exec::Outcome::Exited(status)) => Ok(status),
        Ok(crate::container::exec::Outcome::Detached(_)) => Ok(0),
        Err(e) => {
            eprintln!("spawner: {e}");
            let text = e.to_string();
            let not_found = text.contains("not found") || text.contains("no such file");
            Ok(if not_found { 127 } else { 126 })
        }
    }
}
