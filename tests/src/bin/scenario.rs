//! Programs the integration tests run as init's child: each subcommand is one scenario that a real
//! workload produces (orphans, bursts of exits, signal handling, memory pressure).

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let num = |i: usize| arg(i).parse::<usize>().expect("a number");
    match arg(0) {
        "orphans" => orphans(num(1)),
        "spawn-and-leave" => spawn_and_leave(num(1)),
        "burst" => burst(num(1)),
        "wait-eof" => {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        "catch" => catch(),
        "alloc" => alloc(num(1)),
        "hold-orphans" => hold_orphans(&args[1..]),
        other => {
            eprintln!("scenario: unknown scenario {other:?}");
            std::process::exit(2);
        }
    }
}

/// What an engine's shim is to a runtime: becomes a child subreaper, runs `command` to its end
/// (printing its exit code), then keeps the orphans it inherited unreaped, zombies once they exit,
/// until its stdin closes; then reaps them all.
fn hold_orphans(command: &[String]) {
    // SAFETY: prctl with integer arguments changes only this process's reaping.
    let set = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(set, 0, "PR_SET_CHILD_SUBREAPER: {}", std::io::Error::last_os_error());
    let status = Command::new(&command[0]).args(&command[1..]).status().expect("run the command");
    println!("{}", status.code().unwrap_or(-1));
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    // SAFETY: waitpid on any child with no status pointer; this process has no other waiter.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) } > 0 {}
}

/// (pid, state) of every process this /proc shows.
fn processes() -> Vec<(u32, char)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()).unwrap_or('?');
        out.push((pid, state));
    }
    out
}

/// Leaves `n` orphans behind (through an intermediate that exits at once), then waits until no
/// process but init and itself is left, and prints how many zombies it saw at the end.
fn orphans(n: usize) {
    let me = std::process::id();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["spawn-and-leave", &n.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let others: Vec<_> = processes().into_iter().filter(|&(pid, _)| pid != me && pid != 1).collect();
        if others.is_empty() || Instant::now() > deadline {
            let zombies = others.iter().filter(|&&(_, s)| s == 'Z').count();
            println!("left {} zombies {zombies}", others.len());
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `n` short-lived children and exits without waiting for them: leaving zombies for init to
/// reap is the point.
#[allow(clippy::zombie_processes)]
fn spawn_and_leave(n: usize) {
    for _ in 0..n {
        Command::new("true").spawn().unwrap();
    }
}

/// `n` children that all exit the moment this process does (they wait for EOF on a pipe whose
/// only writer is this process): a burst of exits together with the main child.
fn burst(n: usize) {
    let mut children = Vec::new();
    let (reader, writer) = std::io::pipe().unwrap();
    for _ in 0..n {
        let child = Command::new(std::env::current_exe().unwrap())
            .arg("wait-eof")
            .stdin(reader.try_clone().unwrap())
            .spawn()
            .unwrap();
        children.push(child);
    }
    drop(reader);
    println!("burst ready");
    std::mem::forget(children);
    drop(writer);
    std::process::exit(3);
}

/// Prints `got N` for every signal that reaches it; exits 0 on SIGUSR2 (so a test can end it).
fn catch() {
    use signal_hook::consts::*;
    let wanted =
        [SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM, SIGALRM, SIGWINCH, SIGCONT, SIGURG, SIGPIPE];
    let mut signals = signal_hook::iterator::Signals::new(wanted).unwrap();
    println!("ready");
    std::io::stdout().flush().unwrap();
    for sig in signals.forever() {
        println!("got {sig}");
        std::io::stdout().flush().unwrap();
        if sig == SIGUSR2 {
            return;
        }
    }
}

/// Allocates and touches `mib` MiB, then says so.
fn alloc(mib: usize) {
    let v = vec![1u8; mib << 20];
    println!("allocated {}", v.iter().step_by(4096).map(|&b| b as usize).sum::<usize>());
}
