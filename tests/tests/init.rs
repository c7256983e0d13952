//! Black-box tests of the static init: the real binary runs (as PID 1 of a new PID namespace where it
//! matters) and what a user sees is asserted: exit codes, messages, signals, reaping.

use integration_tests::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const SCENARIO: &str = env!("CARGO_BIN_EXE_scenario");

#[test]
fn zombie_storm_of_1000_orphans_is_reaped() {
    let out = run(pid1(&["--", SCENARIO, "orphans", "1000"]));
    assert_eq!(stdout(&out).trim(), "left 0 zombies 0", "stderr: {}", stderr(&out));
    assert_eq!(code(&out), 0);
}

#[test]
fn burst_of_exits_with_the_main_child_does_not_hang() {
    for _ in 0..5 {
        let out = run(pid1(&["--", SCENARIO, "burst", "200"]));
        assert_eq!(code(&out), 3, "stderr: {}", stderr(&out));
        assert!(stdout(&out).contains("burst ready"));
    }
}

#[test]
fn exit_code_matrix() {
    for (script, want) in [
        ("exit 0", 0),
        ("exit 1", 1),
        ("exit 42", 42),
        ("exit 255", 255),
        ("kill -TERM $$", 143),
        ("kill -KILL $$", 137),
        ("kill -SEGV $$", 139),
    ] {
        let out = run(pid1(&["--", "sh", "-c", script]));
        assert_eq!(code(&out), want, "as PID 1: {script}: {}", stderr(&out));
        let out = run(init(&["--", "sh", "-c", script]));
        assert_eq!(code(&out), want, "as subreaper: {script}: {}", stderr(&out));
    }
}

/// Starts `init ARGS -- scenario catch`, waits for "ready", and returns the child and its stdout.
fn catcher(args: &[&str]) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut cmd = init(args);
    cmd.args(["--", SCENARIO, "catch"]);
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    lines.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    (child, lines)
}

fn expect_line(lines: &mut BufReader<std::process::ChildStdout>, want: &str) {
    let mut line = String::new();
    lines.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), want);
}

#[test]
fn every_forwarded_signal_reaches_the_child() {
    let (child, mut lines) = catcher(&[]);
    // HUP INT QUIT USR1 TERM ALRM WINCH CONT URG PIPE, then USR2 ends the catcher.
    for sig in [1, 2, 3, 10, 15, 14, 28, 18, 23, 13, 12] {
        send(&child, sig);
        expect_line(&mut lines, &format!("got {sig}"));
    }
    let out = wait_or_kill(child, Duration::from_secs(10));
    assert_eq!(code(&out), 0);
}

#[test]
fn rewrite_maps_and_drops_signals() {
    let (child, mut lines) = catcher(&["--rewrite", "TERM:USR1", "--rewrite", "HUP:0"]);
    send(&child, 1); // dropped
    send(&child, 15); // arrives as USR1
    expect_line(&mut lines, "got 10");
    send(&child, 12);
    expect_line(&mut lines, "got 12");
    assert_eq!(code(&wait_or_kill(child, Duration::from_secs(10))), 0);
}

#[test]
fn term_delay_holds_sigterm() {
    // The child ends (USR2) while SIGTERM is held, so the TERM never reaches it.
    let (child, mut lines) = catcher(&["--term-delay", "30"]);
    send(&child, 15);
    send(&child, 10);
    expect_line(&mut lines, "got 10");
    send(&child, 12);
    expect_line(&mut lines, "got 12");
    let out = wait_or_kill(child, Duration::from_secs(10));
    assert_eq!(code(&out), 0);
    let mut rest = String::new();
    lines.read_to_string(&mut rest).unwrap();
    assert!(!rest.contains("got 15"), "{rest}");
}

#[test]
fn term_delay_forwards_after_the_delay() {
    let (child, mut lines) = catcher(&["--term-delay", "0.2"]);
    send(&child, 15);
    expect_line(&mut lines, "got 15");
    send(&child, 12);
    assert_eq!(code(&wait_or_kill(child, Duration::from_secs(10))), 0);
}

#[test]
fn default_mode_terminates_what_is_left_when_the_main_child_exits() {
    // The grandchild would print after a second; init ends it when the main child exits, as PID 1
    // (kill(-1)) and as a subreaper (its descendants, found through /proc).
    for cmd in [
        pid1(&["--", "sh", "-c", "(sleep 1; echo grandchild done) & exit 4"]),
        init(&["--", "sh", "-c", "(sleep 1; echo grandchild done) & exit 4"]),
    ] {
        let out = run(cmd);
        assert_eq!(code(&out), 4);
        assert!(!stdout(&out).contains("grandchild done"));
    }
}

#[test]
fn wait_all_waits_for_a_lingering_grandchild() {
    for mut cmd in [
        pid1(&["--wait-all", "--", "sh", "-c", "(sleep 1; echo grandchild done) & exit 4"]),
        init(&["--wait-all", "--", "sh", "-c", "(sleep 1; echo grandchild done) & exit 4"]),
    ] {
        let out = wait_or_kill(cmd.spawn().unwrap(), Duration::from_secs(20));
        assert_eq!(code(&out), 4, "{}", stderr(&out));
        assert_eq!(stdout(&out), "grandchild done\n");
    }
}

#[test]
fn wait_all_passes_sigterm_to_all_and_kills_what_ignores_it() {
    // The first background process ignores SIGTERM: only the SIGKILL after --grace can end it (else
    // init would wait out its 60 s and the hang guard would fail the test).
    let script = "(trap '' TERM; echo ignoring; exec sleep 60) & (trap 'echo sub got TERM; exit 0' TERM; echo ready; while :; do sleep 0.05; done) & wait";
    let mut child = init(&["--wait-all", "--grace", "0.5", "--", "sh", "-c", script]).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut first_two = [String::new(), String::new()];
    for line in &mut first_two {
        lines.read_line(line).unwrap();
    }
    first_two.sort();
    assert_eq!(first_two, ["ignoring\n", "ready\n"]);
    send(&child, 15);
    let out = wait_or_kill(child, Duration::from_secs(20));
    let mut rest = String::new();
    lines.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("sub got TERM"), "{rest}");
    assert_eq!(code(&out), 143, "{}", stderr(&out));
}

#[test]
fn kill_process_group_flag_signals_the_whole_group() {
    // Neither shell ends before sh's trap has run: the sub loops until sh's trap creates the stop file
    // (or its own USR1 trap ends it), and sh loops rather than ending in `wait`, because dash exits
    // without running a pending trap when its last command is a `wait` that the sub's exit completed.
    let script = "stop=/tmp/init-g-test.$$; trap 'echo sh got USR1; : > $stop; wait; rm -f $stop; exit 0' USR1; \
                  (trap 'echo sub got USR1; exit 0' USR1; echo ready; while [ ! -e $stop ]; do sleep 0.05; done) & \
                  while :; do sleep 0.05; done";
    for (flag, sub_gets_it) in [(Some("-g"), true), (None, false)] {
        let mut cmd = init(&[]);
        if let Some(f) = flag {
            cmd.arg(f);
        }
        let mut child = cmd.args(["--", "sh", "-c", script]).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        send(&child, 10);
        let out = wait_or_kill(child, Duration::from_secs(20));
        let mut rest = String::new();
        lines.read_to_string(&mut rest).unwrap();
        assert!(rest.contains("sh got USR1"), "{flag:?}: {rest}");
        assert_eq!(rest.contains("sub got USR1"), sub_gets_it, "{flag:?}: {rest}");
        assert_eq!(code(&out), 0);
    }
}

#[test]
fn remap_exit_codes_to_zero() {
    assert_eq!(code(&run(init(&["-e", "3", "--", "sh", "-c", "exit 3"]))), 0);
    assert_eq!(code(&run(init(&["-e", "143", "-e", "7", "--", "sh", "-c", "kill $$"]))), 0);
    assert_eq!(code(&run(init(&["-e", "3", "--", "sh", "-c", "exit 4"]))), 4);
    let mut cmd = init(&["--", "sh", "-c", "exit 5"]);
    cmd.env("INIT_REMAP_EXIT", "5");
    assert_eq!(code(&run(cmd)), 0);
}

#[test]
fn becomes_a_subreaper_when_not_pid1_with_or_without_dash_s() {
    // The orphaned sleep must be re-parented to init (and reaped by it), not to the host's PID 1.
    let script = "(sleep 5 & echo $!) > /tmp/orphan.$$; sleep 0.2; o=$(cat /tmp/orphan.$$); rm /tmp/orphan.$$; cut -d' ' -f4 /proc/$o/stat; kill $o";
    for args in [&["-s", "--"][..], &["--"][..]] {
        let mut cmd = init(args);
        cmd.args(["sh", "-c", script]);
        let child = cmd.spawn().unwrap();
        let init_pid = child.id();
        let out = wait_or_kill(child, Duration::from_secs(20));
        assert_eq!(stdout(&out).trim(), init_pid.to_string(), "{args:?}: {}", stderr(&out));
        assert_eq!(code(&out), 0);
    }
}

#[test]
fn setsid_makes_the_child_a_session_leader() {
    let out = run(init(&["--setsid", "--", "sh", "-c", "cut -d' ' -f1,6 /proc/$$/stat"]));
    let text = stdout(&out);
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields.len(), 2, "{text}");
    assert_eq!(fields[0], fields[1], "pid and session id");
}

#[test]
fn missing_or_non_executable_command() {
    let out = run(init(&["--", "no-such-command-here"]));
    assert_eq!(code(&out), 127);
    assert_eq!(stderr(&out), "init: cannot run 'no-such-command-here': command not found\n");
    let out = run(init(&["--", "/no/such/file"]));
    assert_eq!(code(&out), 127);
    assert!(stderr(&out).contains("no such file or directory"), "{}", stderr(&out));
    let file = std::env::temp_dir().join(format!("init-test-not-executable-{}", std::process::id()));
    std::fs::write(&file, "#!/bin/sh\n").unwrap();
    let out = run(init(&["--", file.to_str().unwrap()]));
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code(&out), 126);
    assert_eq!(stderr(&out), format!("init: cannot run '{}': permission denied\n", file.display()));
    let out = run(pid1(&["--", "no-such-command-here"]));
    assert_eq!(code(&out), 127);
}

#[test]
fn usage_errors_and_help() {
    let out = run(init(&["--bogus", "true"]));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).starts_with("init: unknown option: '--bogus'\n"), "{}", stderr(&out));
    let out = run(init(&[]));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("missing command"));
    let out = run(init(&["--help"]));
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("--wait-all"));
}

#[test]
fn status_fd_writes_a_json_exit_record() {
    // fd 3 is the record's pipe (our stdout), and the child's stdout goes nowhere: only init writes there.
    let script =
        format!("exec {} --status-fd 3 -- sh -c 'kill -TERM $$' 3>&1 1>/dev/null", init_bin().display());
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = run(cmd);
    assert_eq!(code(&out), 143);
    assert_eq!(stdout(&out), "{\"exit_code\":143,\"signal\":15,\"oom_killed\":false,\"oom_kills\":0}\n");
}

fn spawn_on_pty(args: &[&str]) -> (std::process::Child, std::fs::File) {
    let mut cmd = Command::new(init_bin());
    cmd.args(args);
    spawn_on_terminal(cmd, None)
}

#[test]
fn on_a_terminal_the_child_is_the_foreground_group_and_gets_ctrl_c() {
    // /proc/PID/stat fields: 1 pid, 5 pgrp, 8 tpgid (the terminal's foreground group).
    let (child, mut master) = spawn_on_pty(&["--", "sh", "-c", "cut -d' ' -f1,5,8 /proc/$$/stat; echo end"]);
    let seen = read_until(&mut master, "end");
    let out = wait_or_kill(child, Duration::from_secs(20));
    assert_eq!(code(&out), 0);
    let fields: Vec<&str> = seen.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(fields[0], fields[1], "the child leads its own process group: {seen:?}");
    assert_eq!(fields[1], fields[2], "its group is the terminal's foreground group: {seen:?}");

    let script = "trap 'echo got INT; exit 7' INT; echo ready; while :; do sleep 0.05; done";
    let (child, mut master) = spawn_on_pty(&["--", "sh", "-c", script]);
    read_until(&mut master, "ready");
    master.write_all(b"\x03").unwrap();
    let seen = read_until(&mut master, "got INT");
    let out = wait_or_kill(child, Duration::from_secs(20));
    assert!(seen.contains("got INT"), "{seen:?}");
    assert_eq!(code(&out), 7);
}

/// A v1 memory cgroup below the test's own, removed on drop (after the processes in it are gone).
struct MemoryCgroup(std::path::PathBuf);

impl MemoryCgroup {
    fn create(limit: &str) -> Option<MemoryCgroup> {
        // A v1 memory controller only (own_memory_cgroup also finds v2, which this does not use).
        let own = own_memory_cgroup().filter(|d| d.starts_with("/sys/fs/cgroup/memory"))?;
        let dir = own.join(format!("init-test-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        let cg = MemoryCgroup(dir);
        std::fs::write(cg.0.join("memory.limit_in_bytes"), limit).unwrap();
        if cg.0.join("memory.memsw.limit_in_bytes").exists() {
            std::fs::write(cg.0.join("memory.memsw.limit_in_bytes"), limit).unwrap();
        }
        Some(cg)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn oom_kill_in_a_v1_memory_cgroup_is_reported() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let Some(cg) = MemoryCgroup::create("32M") else {
        panic!("cannot create a v1 memory cgroup below our own: this host is expected to delegate one");
    };
    let procs = cg.0.join("cgroup.procs");
    let script = format!(
        "echo $$ > {} && exec unshare --pid --fork --mount-proc --kill-child {} --status-fd 3 -- {SCENARIO} alloc 128 3>&1 1>/dev/null",
        procs.display(),
        init_bin().display()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = run(cmd);
    assert_eq!(code(&out), 137, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("init: OOM killer killed 1 process in this container (memory limit 32 MiB)\n"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("init: main process was killed by the OOM killer"));
    assert_eq!(stdout(&out), "{\"exit_code\":137,\"signal\":9,\"oom_killed\":true,\"oom_kills\":1}\n");
}

#[test]
fn no_oom_report_for_a_plain_sigkill() {
    let out = run(init(&["--status-fd", "1", "--", "sh", "-c", "kill -KILL $$"]));
    assert_eq!(code(&out), 137);
    assert!(!stderr(&out).contains("OOM"));
    assert_eq!(stdout(&out), "{\"exit_code\":137,\"signal\":9,\"oom_killed\":false,\"oom_kills\":0}\n");
}
