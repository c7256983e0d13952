//! init: a tiny static PID 1 for containers and small VMs.
//!
//! It reads top to bottom like tini: parse the arguments, become a subreaper when not PID 1, block
//! every signal, start the child, then loop on a signalfd reaping zombies and passing signals on, and
//! finally exit with the child's status (and report OOM kills from the cgroup on the way).
//!
//! `no_std` and allocation-free so that the static binary stays far under 100 KB; every syscall is
//! made through rustix, or `sys` for the few rustix has no stable API for.

#![cfg_attr(not(test), no_std)]

pub mod args;
pub mod cpath;
pub mod log;
pub mod oom;
pub mod procs;
pub mod signals;
pub mod spawn;
pub mod status;
pub mod supervise;
pub use rawsys as sys;
pub mod vm;

use args::{Action, Config};
use core::ffi::{c_char, CStr};
use log::Bytes;
use procs::Scope;
use status::ExitRecord;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const LICENSE: &str = "init is licensed under the MIT license or the Apache License 2.0, at your option.\n";

/// The process environment as the kernel handed it over.
#[derive(Clone, Copy)]
pub struct Environ(*const *const c_char);

impl Environ {
    pub fn get(&self, name: &[u8]) -> Option<&'static [u8]> {
        let mut p = self.0;
        if p.is_null() {
            return None;
        }
        // SAFETY: envp is the NULL-terminated array of NUL-terminated strings the kernel put on the
        // initial stack; init never modifies it, so it lives (unchanged) as long as the process.
        unsafe {
            while !(*p).is_null() {
                let entry = CStr::from_ptr(*p).to_bytes();
                if let Some(value) = entry.strip_prefix(name).and_then(|r| r.strip_prefix(b"=")) {
                    return Some(value);
                }
                p = p.add(1);
            }
        }
        None
    }
}

/// init's whole life. `argv`/`envp` are the C start-up arguments.
///
/// # Safety
/// `argv` holds `argc` valid NUL-terminated strings followed by NULL, and `envp` is a NULL-terminated
/// array of them (as `main` receives from the C start files).
pub unsafe fn start(argc: i32, argv: *const *const c_char, envp: *const *const c_char) -> ! {
    let env = Environ(envp);
    // Arguments after argv[0], as byte slices, on the stack (the kernel caps argv far below this).
    let mut arg_buf: [&[u8]; 256] = [&[]; 256];
    let nargs = (argc.max(1) as usize - 1).min(arg_buf.len());
    for (i, slot) in arg_buf.iter_mut().take(nargs).enumerate() {
        *slot = CStr::from_ptr(*argv.add(i + 1)).to_bytes();
    }
    let getenv = |name: &[u8]| env.get(name);
    let cfg = match args::parse(&arg_buf[..nargs], &getenv) {
        Ok(Action::Run(cfg)) => cfg,
        Ok(Action::Help) => {
            log::write_all(1, args::USAGE.as_bytes());
            sys::exit(0)
        }
        Ok(Action::Version) => {
            log::write_all(1, b"init ");
            log::write_all(1, VERSION.as_bytes());
            log::write_all(1, b"\n");
            sys::exit(0)
        }
        Ok(Action::License) => {
            log::write_all(1, LICENSE.as_bytes());
            sys::exit(0)
        }
        Err(e) => {
            if e.arg.is_empty() {
                error!("{}", e.what);
            } else {
                error!("{}: '{}'", e.what, Bytes(e.arg));
            }
            log::write_all(2, b"Try 'init --help' for more information.\n");
            sys::exit(2)
        }
    };
    log::set_verbosity(cfg.verbosity);
    let child_argv = argv.add(1 + cfg.command) as *const *const u8;
    let code = run(&cfg, child_argv, envp as *const *const u8, env);
    sys::exit(code)
}

unsafe fn run(cfg: &Config, child_argv: *const *const u8, envp: *const *const u8, env: Environ) -> i32 {
    use rustix::process::{getpid, Pid};
    let pid1 = getpid() == Pid::INIT;
    let vm = pid1 && (cfg.vm || vm::detect(pid1));
    let mounted = vm.then(vm::setup);
    if !pid1 {
        // Orphans of our descendants must come to us, or they would be nobody's zombies to reap; tini
        // only warns here and makes users pass -s.
        if let Err(e) = rustix::process::set_child_subreaper(Some(getpid())) {
            warn!("cannot become a subreaper: {e}; orphans will not be reaped");
        }
    }
    if let Some(sig) = cfg.pdeathsig {
        let sig = rustix::process::Signal::from_named_raw(sig);
        if let Err(e) = rustix::process::set_parent_process_death_signal(sig) {
            warn!("-p: {e}");
        }
    }
    // Block everything before the child exists, so no signal can slip by unhandled: they wait in the
    // signalfd until the loop reads them. (SIGKILL and SIGSTOP cannot be blocked, as intended.)
    if let Err(e) = sys::set_signal_mask(sys::SIG_BLOCK_ALL) {
        error!("sigprocmask: {e}");
        return 125;
    }
    let oom = oom::OomWatch::find();
    if let Some(fd) = cfg.status_fd {
        // The child must not hold the record's fd, or whoever reads it would wait for the child too.
        let fd = rustix::fd::BorrowedFd::borrow_raw(fd);
        if let Err(e) = rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC) {
            warn!("--status-fd: {e}");
        }
    }
    let tty = rustix::termios::isatty(rustix::stdio::stdin())
        && rustix::termios::tcgetpgrp(rustix::stdio::stdin()).is_ok();
    let mut adj = [0u8; 16];
    let shielded = cpath::read_small_file(c"/proc/self/oom_score_adj", &mut adj)
        .is_some_and(|a| a.trim_ascii() == b"-1000");
    let setup = spawn::ChildSetup { tty, setsid: cfg.setsid, reset_oom_score: shielded };
    let main_pid = match spawn::spawn(child_argv, envp, env.get(b"PATH"), &setup) {
        Ok(pid) => pid,
        Err(e) => {
            error!("fork: {e}");
            return 125;
        }
    };
    info!("started {} as process {main_pid}", Bytes(CStr::from_ptr(*child_argv as *const c_char).to_bytes()));
    // init holds no host directory and no inherited fd while the container runs.
    let _ = rustix::process::chdir(c"/");
    close_inherited_fds(cfg.status_fd);
    let signals = match sys::signalfd(sys::SIG_BLOCK_ALL) {
        Ok(fd) => fd,
        Err(e) => {
            error!("signalfd: {e}");
            let _ = sys::kill(main_pid, signals::SIGKILL);
            return 125;
        }
    };
    let oom_events = oom.as_ref().and_then(|o| o.events_file()).and_then(|path| {
        use rustix::fs::inotify;
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK).ok()?;
        inotify::add_watch(&fd, path.as_cstr(), inotify::WatchFlags::MODIFY).ok()?;
        Some(fd)
    });
    let scope =
        if pid1 && !vm { Scope::Namespace } else { Scope::Descendants(getpid().as_raw_nonzero().get()) };
    let (status, oom) = supervise::Supervisor { cfg, main_pid, scope, vm, oom, signals, oom_events }.run();
    let signal = status.terminating_signal();
    let oom_kills = oom.as_ref().map_or(0, |o| o.total());
    let oom_killed = signal == Some(signals::SIGKILL) && oom_kills > 0;
    if oom_killed {
        warn!("main process was killed by the OOM killer");
    }
    let mut code = supervise::exit_code(status);
    if cfg.remap.contains(code as u8) {
        code = 0;
    }
    if let Some(fd) = cfg.status_fd {
        ExitRecord { exit_code: code, signal, oom_killed, oom_kills }.write_to(fd);
    }
    if let Some(mounted) = mounted {
        // The console is all a VM's user sees: always say how it ended.
        error!("main process {}; powering off (exit status {code})", supervise::Status(status));
        vm::power_off(mounted, code);
    }
    code
}

/// Closes fds above 2 that init inherited (the child already has its copies), keeping `--status-fd`.
fn close_inherited_fds(keep: Option<i32>) {
    match keep {
        Some(fd) if fd > 3 => {
            let _ = sys::close_range(3, fd as u32 - 1);
            let _ = sys::close_range(fd as u32 + 1, u32::MAX);
        }
        Some(3) => {
            let _ = sys::close_range(4, u32::MAX);
        }
        _ => {
            let _ = sys::close_range(3, u32::MAX);
        }
    }
}
