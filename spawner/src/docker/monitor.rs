//! Detached containers (`run -d`, `start`): each runs under a monitor of its own, a spawner process
//! that is the container's parent (conmon's job, without a daemon): it writes the container's output
//! to its log, waits for it, records how it ended, and starts it again as its `--restart` policy
//! says. The command that made it returns once the container runs (printing its ID), or with the
//! error that stopped it, and its exit status.

use super::lifecycle::STOPPED_MARKER;
use super::record::Container;
use super::{Launch, RunOptions};
use rustix::fd::OwnedFd;
use std::time::{Duration, Instant};

/// `--restart`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    No,
    /// At most this many times (0: no limit) after a non-zero exit.
    OnFailure(u32),
    Always,
    UnlessStopped,
}

impl Restart {
    pub fn parse(s: &str) -> Result<Restart, String> {
        match s {
            "" | "no" => Ok(Restart::No),
            "always" => Ok(Restart::Always),
            "unless-stopped" => Ok(Restart::UnlessStopped),
            "on-failure" => Ok(Restart::OnFailure(0)),
            other => match other.strip_prefix("on-failure:").map(str::parse::<u32>) {
                Some(Ok(n)) => Ok(Restart::OnFailure(n)),
                _ => Err(format!(
                    "--restart {other}: give no, on-failure[:MAX-RETRIES], always or unless-stopped"
                )),
            },
        }
    }

    /// Whether a run that ended with `status`, the `restarts`-th restart, goes again. A container
    /// stopped by `stop` or `kill` stays stopped, as Docker leaves it until its daemon restarts.
    fn again(self, status: i32, restarts: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match self {
            Restart::No => false,
            Restart::OnFailure(max) => status != 0 && (max == 0 || restarts < max),
            Restart::Always | Restart::UnlessStopped => true,
        }
    }
}

/// Starts the container `opts` describes (or `existing`, made before) under a monitor, and returns
/// its ID once it runs. When it cannot start, the monitor has said why on stderr, and its exit
/// status is the error.
pub fn detach(opts: &RunOptions, existing: Option<Container>) -> Result<String, i32> {
    let (ready_read, ready_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| report(&format!("pipe: {e}")))?;
    // SAFETY: spawner is single-threaded here (no thread has been started yet).
    let pid = unsafe { rawsys::clone_process(0) }.map_err(|e| report(&format!("fork: {e}")))?;
    if pid == 0 {
        drop(ready_read);
        rawsys::exit(monitor(opts, existing, ready_write));
    }
    drop(ready_write);
    let id = crate::container::read_to_end(&ready_read).unwrap_or_default();
    if id.ends_with(b"\n") {
        return Ok(String::from_utf8_lossy(&id).trim().to_string());
    }
    // The monitor ended before the container ran: its status is ours.
    let status =
        rustix::process::waitpid(rustix::process::Pid::from_raw(pid), rustix::process::WaitOptions::empty());
    Err(match status {
        Ok(Some((_, s))) => s.exit_status().unwrap_or(125),
        _ => 125,
    })
}

fn report(message: &str) -> i32 {
    eprintln!("spawner: {message}");
    125
}

/// The monitor: a session of its own, stdin and stdout /dev/null (stderr stays the caller's until
/// the container runs, for the errors that stop it); runs the container until its policy lets it
/// be. Returns the monitor's exit status.
fn monitor(opts: &RunOptions, existing: Option<Container>, ready: OwnedFd) -> i32 {
    let _ = rustix::process::setsid();
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdin(&null);
        let _ = rustix::stdio::dup2_stdout(&null);
    }
    let policy = Restart::parse(&opts.restart).unwrap_or(Restart::No);
    let id = existing.as_ref().map_or_else(super::record::new_id, |c| c.record.id.clone());
    let mut launch = Launch { id: Some(id.clone()), existing, detached: true, ready: Some(ready) };
    let mut delay = Duration::from_millis(100);
    loop {
        let began = Instant::now();
        let first = launch.ready.is_some();
        let outcome = super::run(opts, launch);
        let status = match outcome {
            Ok(status) => status,
            // Said on the caller's stderr while it waits; then the status is the command's.
            Err(e) if first => return report(&e.to_string()),
            Err(e) => {
                log::warn!("{e}");
                125
            }
        };
        // The container as its run left it (gone with --rm, or by `rm -f`).
        let Some(container) = find(opts, &id) else { return 0 };
        let stopped = container.dir.join(STOPPED_MARKER).exists();
        if !policy.again(status, container.state.restart_count, stopped) {
            return 0;
        }
        // Docker's back-off: doubled after each quick failure, reset after a run of 10 s.
        if began.elapsed() > Duration::from_secs(10) {
            delay = Duration::from_millis(100);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(60));
        // `stop` or `rm` during the wait end it; a `rename` does not (found again by its ID).
        let Some(mut container) = find(opts, &id) else { return 0 };
        if container.dir.join(STOPPED_MARKER).exists() {
            return 0;
        }
        container.state.restart_count += 1;
        launch = Launch { id: None, existing: Some(container), detached: true, ready: None };
    }
}

/// The container with the ID `id`, if it is still there.
fn find(opts: &RunOptions, id: &str) -> Option<Container> {
    Container::find(&opts.state_dir.join("containers"), id).ok().filter(|c| c.record.id == id)
}

#[cfg(test)]
mod tests {
    use super::Restart;

    #[test]
    fn restart_policies_as_docker_has_them() {
        assert_eq!(Restart::parse("no"), Ok(Restart::No));
        assert_eq!(Restart::parse("on-failure:3"), Ok(Restart::OnFailure(3)));
        assert!(Restart::parse("sometimes").is_err());
        assert!(!Restart::No.again(1, 0, false));
        assert!(Restart::OnFailure(3).again(1, 2, false));
        assert!(!Restart::OnFailure(3).again(1, 3, false));
        assert!(!Restart::OnFailure(0).again(0, 0, false));
        assert!(Restart::Always.again(0, 100, false));
        assert!(!Restart::Always.again(0, 0, true));
    }
}
