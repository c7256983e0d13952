//! The main loop: wait for signals on a signalfd, reap every zombie, pass signals on, and decide when
//! it is over. One blocking poll; deadlines (a held SIGTERM, the grace period) are its timeout.

use crate::args::Config;
use crate::oom::OomWatch;
use crate::procs::Scope;
use crate::signals::{self, Name};
use crate::sys;
use rustix::event::Timespec;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::fd::OwnedFd;
use rustix::process::{wait, WaitOptions, WaitStatus};

pub struct Supervisor<'a> {
    pub cfg: &'a Config,
    pub main_pid: i32,
    pub scope: Scope,
    pub vm: bool,
    pub oom: Option<OomWatch>,
    pub signals: OwnedFd,
    pub oom_events: Option<OwnedFd>,
}

#[derive(Default)]
struct State {
    main_status: Option<WaitStatus>,
    /// When a held SIGTERM (`--term-delay`) is due.
    term_at: Option<u64>,
    /// When whatever is left gets SIGKILL.
    kill_at: Option<u64>,
    /// The main child is gone and the others were asked to leave.
    draining: bool,
}

impl Supervisor<'_> {
    /// Runs until the main child has exited and no process that init must wait for is left; returns the
    /// main child's status and the OOM watch, checked one last time.
    pub fn run(mut self) -> (WaitStatus, Option<OomWatch>) {
        let mut st = State::default();
        loop {
            // The OOM killer sends SIGKILL: only such a death can have moved the counter (v2 also
            // announces it on memory.events, below). Re-reading it for every batch of exits would
            // cost a file read per wake-up in a storm of orphans.
            let checked = self.reap(&mut st);
            if checked {
                self.check_oom();
            }
            if let Some(status) = st.main_status {
                if !self.cfg.wait_all && !st.draining {
                    st.draining = true;
                    if self.scope.signal_all(signals::SIGTERM) {
                        crate::info!("main process exited; sent SIGTERM to the processes left");
                        st.kill_at.get_or_insert(sys::now_ms() + self.cfg.grace_ms);
                    }
                }
                if !self.scope.any_left() {
                    // One last look, unless the reap above just took it.
                    if !checked {
                        self.check_oom();
                    }
                    return (status, self.oom);
                }
            }
            let now = sys::now_ms();
            if st.term_at.is_some_and(|t| t <= now) {
                st.term_at = None;
                self.deliver(&mut st, signals::SIGTERM, now);
            }
            if st.kill_at.is_some_and(|t| t <= now) {
                st.kill_at = None;
                crate::info!("grace period over: sending SIGKILL to every process left");
                if st.main_status.is_none() {
                    let _ = sys::kill(self.main_pid, signals::SIGKILL);
                }
                self.scope.signal_all(signals::SIGKILL);
            }
            // A SIGKILLed child's reap re-reads the counter at the top of the loop; only a change the
            // kernel announced on memory.events needs one here.
            if self.wait(&st, now) {
                self.check_oom();
            }
            self.read_signals(&mut st);
        }
    }

    /// Reaps every zombie there is; returns whether one of them was killed by SIGKILL. The main
    /// child's exit is noticed here, never from a SIGCHLD's siginfo: several SIGCHLDs merge into
    /// one, so only waitpid can be trusted to see each exit.
    fn reap(&self, st: &mut State) -> bool {
        let mut killed = false;
        while let Ok(Some((pid, status))) = wait(WaitOptions::NOHANG) {
            killed |= status.terminating_signal() == Some(signals::SIGKILL as _);
            let pid = pid.as_raw_nonzero().get();
            if pid == self.main_pid {
                crate::info!("main process {pid} exited: {}", Status(status));
                st.main_status = Some(status);
            } else if self.cfg.warn_on_reap {
                crate::warn!("reaped zombie process {pid}");
            } else {
                crate::debug!("reaped process {pid}: {}", Status(status));
            }
        }
        killed
    }

    /// Sleeps until a signal, an OOM event (v2) or the next deadline; returns whether memory.events
    /// changed.
    fn wait(&self, st: &State, now: u64) -> bool {
        let deadline = match (st.term_at, st.kill_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = deadline.map(|d| {
            let ms = d.saturating_sub(now);
            Timespec { tv_sec: (ms / 1000) as i64, tv_nsec: ((ms % 1000) * 1_000_000) as i64 }
        });
        let mut fds = [PollFd::new(&self.signals, PollFlags::IN), PollFd::new(&self.signals, PollFlags::IN)];
        let n = match &self.oom_events {
            Some(fd) => {
                fds[1] = PollFd::new(fd, PollFlags::IN);
                2
            }
            None => 1,
        };
        let _ = poll(&mut fds[..n], timeout.as_ref());
        match &self.oom_events {
            Some(fd) if !fds[1].revents().is_empty() => {
                let mut buf = [0u8; 256];
                while matches!(rustix::io::read(fd, &mut buf), Ok(n) if n > 0) {}
                true
            }
            _ => false,
        }
    }

    fn check_oom(&mut self) {
        if let Some(oom) = self.oom.as_mut() {
            oom.check();
        }
    }

    fn read_signals(&mut self, st: &mut State) {
        use rustix::fd::AsFd;
        while let Some(sig) = sys::read_signal(self.signals.as_fd()) {
            self.on_signal(st, sig);
        }
    }

    fn on_signal(&mut self, st: &mut State, sig: i32) {
        if sig == signals::SIGCHLD {
            return;
        }
        if !signals::is_forwardable(sig) {
            crate::debug!("ignoring {}", Name(sig));
            return;
        }
        let now = sys::now_ms();
        if self.vm && matches!(sig, signals::SIGINT | signals::SIGTERM | signals::SIGPWR) {
            // Ctrl-Alt-Del, or a shutdown request to the machine: ask the child to stop, then kill.
            crate::warn!("{} received: shutting down", Name(sig));
            self.send(st, signals::SIGTERM);
            st.kill_at.get_or_insert(now + self.cfg.grace_ms);
            return;
        }
        let Some(sig) = self.cfg.rewrite.apply(sig) else {
            crate::debug!("dropping {} (--rewrite)", Name(sig));
            return;
        };
        if sig == signals::SIGTERM && self.cfg.term_delay_ms > 0 && st.main_status.is_none() {
            if st.term_at.is_none() {
                crate::info!("holding SIGTERM for {} ms", self.cfg.term_delay_ms);
                st.term_at = Some(now + self.cfg.term_delay_ms);
            }
            return;
        }
        self.deliver(st, sig, now);
    }

    fn deliver(&self, st: &mut State, sig: i32, now: u64) {
        if self.cfg.wait_all && sig == signals::SIGTERM {
            crate::info!("passing SIGTERM to every process");
            let _ = sys::kill(self.main_pid, sig);
            self.scope.signal_all(sig);
            st.kill_at.get_or_insert(now + self.cfg.grace_ms);
            return;
        }
        self.send(st, sig);
    }

    /// Passes `sig` to the main child (its group with `-g` or `--setsid`), or to everyone left once the
    /// main child is gone.
    fn send(&self, st: &State, sig: i32) {
        if st.main_status.is_some() {
            self.scope.signal_all(sig);
            return;
        }
        let target = if self.cfg.kill_group || self.cfg.setsid { -self.main_pid } else { self.main_pid };
        crate::debug!("forwarding {} to {target}", Name(sig));
        match sys::kill(target, sig) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => crate::warn!("forwarding {} to {target}: {e}", Name(sig)),
        }
    }
}

/// `exited with code 3` / `killed by SIGKILL`.
pub struct Status(pub WaitStatus);

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match (self.0.exit_status(), self.0.terminating_signal()) {
            (Some(code), _) => write!(f, "exited with code {code}"),
            (_, Some(sig)) => write!(f, "killed by {}", Name(sig)),
            _ => write!(f, "status {:#x}", self.0.as_raw()),
        }
    }
}

/// The shell's convention: the exit code, or 128+N for death by signal N.
pub fn exit_code(status: WaitStatus) -> i32 {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => code,
        (_, Some(sig)) => 128 + sig,
        _ => 255,
    }
}
