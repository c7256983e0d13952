//! Docker's lifecycle on spawner: containers that stay until `rm`, `run -d` under a monitor, `ps`,
//! `logs`, `exec`, `stop`, `kill`, `rm`, `wait`, `start`, `inspect`, restart policies, and the
//! `run` flags that go with them (`-i`, the command after the image). Each test has a state
//! directory of its own; whatever it leaves running is removed with `rm -f` when it ends.

use integration_tests::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

const BUSYBOX: &str = "busybox-docker.tar";

fn busybox() -> String {
    image(BUSYBOX).display().to_string()
}

#[test]
fn a_detached_container_runs_logs_and_stops() {
    let c = Containers::new("lc-detach");
    let script = "trap 'echo got TERM; exit 3' TERM; echo out; echo err >&2; while true; do sleep 0.05; done";
    let id = c.detach("web", &[], &["sh", "-c", script]);
    assert!(id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()), "run -d prints the ID: {id:?}");
    let ps = c.ok(&["ps"]);
    let row = ps.lines().nth(1).unwrap_or_default();
    assert!(row.starts_with(&id[..12]) && row.contains("Up ") && row.ends_with("web"), "{ps}");
    assert_eq!(c.ok(&["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(c.inspect("web", "{{.State.Status}} {{.Name}} {{.Id}}"), format!("running /web {id}"));
    c.until("the first lines in the log", || c.ok(&["logs", "web"]) == "out\n");
    let out = c.run(&["logs", "web"]);
    assert_eq!((stdout(&out).as_str(), stderr(&out).as_str()), ("out\n", "err\n"), "each line on its stream");
    let stamped = c.ok(&["logs", "-t", "web"]);
    assert!(stamped.starts_with("20") && stamped.contains("Z out\n"), "{stamped}");
    // By ID prefix too; stop waits for the trap's exit.
    assert_eq!(c.ok(&["stop", &id[..6]]), format!("{}\n", &id[..6]));
    assert_eq!(c.inspect("web", "{{.State.Status}} {{.State.ExitCode}}"), "exited 3");
    assert_eq!(c.ok(&["logs", "--tail", "1", "web"]), "got TERM\n");
    assert!(c.ok(&["ps"]).lines().count() == 1, "ps lists running containers only");
    let all = c.ok(&["ps", "-a", "--format", "{{.Names}}\\t{{.Status}}"]);
    assert!(all.starts_with("web\tExited (3) "), "{all}");
}

#[test]
fn logs_follow_prints_lines_as_they_come_and_ends_with_the_container() {
    let c = Containers::new("lc-follow");
    c.detach("ticker", &[], &["sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.3; done"]);
    let started = Instant::now();
    let mut follow = c.spawner(&["logs", "-f", "ticker"]).spawn().unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(follow.stdout.as_mut().unwrap()), &mut first)
        .unwrap();
    assert_eq!(first, "tick 1\n");
    assert!(started.elapsed() < Duration::from_millis(500), "the first line came while the container ran");
    let out = wait_or_kill(follow, Duration::from_secs(10));
    assert_eq!(code(&out), 0, "logs -f ends when the container does: {}", stderr(&out));
    assert_eq!(stdout(&out), "tick 2\ntick 3\n");
}

#[test]
fn stop_sends_the_stop_signal_then_kills_after_the_timeout() {
    let c = Containers::new("lc-stop");
    // Ignores SIGTERM: killed once the timeout passes.
    c.detach("stubborn", &[], &["sh", "-c", "trap '' TERM; touch /trapped; while true; do sleep 0.05; done"]);
    // `run -d` returns once sh runs, which may be before its trap is set.
    c.until("the trap", || code(&c.run(&["exec", "stubborn", "test", "-e", "/trapped"])) == 0);
    let began = Instant::now();
    c.ok(&["stop", "-t", "1", "stubborn"]);
    let took = began.elapsed();
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(5), "stop took {took:?}");
    assert_eq!(c.inspect("stubborn", "{{.State.ExitCode}}"), "137");
    // --stop-signal: what `stop` sends first.
    let script = "trap 'echo got USR1; exit 4' USR1; while true; do sleep 0.05; done";
    c.detach("usr1", &["--stop-signal", "SIGUSR1"], &["sh", "-c", script]);
    c.until("the trap", || c.ok(&["ps"]).contains("usr1"));
    std::thread::sleep(Duration::from_millis(200));
    c.ok(&["stop", "usr1"]);
    assert_eq!(c.inspect("usr1", "{{.State.ExitCode}} {{.Config.StopSignal}}"), "4 10");
    assert_eq!(c.ok(&["logs", "usr1"]), "got USR1\n");
    // kill: SIGKILL by default, or the signal given.
    c.detach("victim", &[], &["sleep", "100"]);
    c.ok(&["kill", "victim"]);
    assert_eq!(c.inspect("victim", "{{.State.Status}} {{.State.ExitCode}}"), "exited 137");
    let out = c.run(&["kill", "victim"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
}

/// What exec runs gets the container's namespaces, cgroup, capabilities, seccomp filter and
/// no_new_privs, never more, and Docker's flags.
#[test]
fn exec_runs_inside_with_the_containers_restrictions() {
    let c = Containers::new("lc-exec");
    c.detach("box", &["-e", "FROM_RUN=1", "-w", "/tmp"], &["sleep", "100"]);
    let status = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .map(|l| l[key.len()..].trim().to_string())
            .unwrap_or_default()
    };
    let mine = c.ok(&["exec", "box", "cat", "/proc/self/status"]);
    let init = c.ok(&["exec", "box", "cat", "/proc/1/status"]);
    for key in ["CapEff:", "CapBnd:", "NoNewPrivs:", "Seccomp:"] {
        assert_eq!(status(&mine, key), status(&init, key), "{key} of exec vs the container's init");
    }
    assert_eq!(status(&mine, "Seccomp:"), "2", "exec is under the seccomp filter");
    assert_eq!(status(&mine, "NoNewPrivs:"), "1");
    assert_ne!(status(&mine, "CapEff:"), "000001ffffffffff", "not every capability");
    assert_eq!(
        c.ok(&["exec", "box", "cat", "/proc/self/cgroup"]),
        c.ok(&["exec", "box", "cat", "/proc/1/cgroup"])
    );
    // Its PID namespace (init is 1 there), working directory and environment.
    let out = c.ok(&["exec", "box", "sh", "-c", "head -c 7 /proc/1/cmdline; echo; pwd; echo $FROM_RUN"]);
    assert_eq!(out, "init\0--\n/tmp\n1\n");
    assert_eq!(c.ok(&["exec", "-w", "/etc", "-e", "X=2", "box", "sh", "-c", "pwd; echo $X"]), "/etc\n2\n");
    assert_eq!(c.ok(&["exec", "-u", "nobody", "box", "id", "-un"]), "nobody\n");
    // --privileged: every capability, still in the container.
    let privileged = c.ok(&["exec", "--privileged", "box", "cat", "/proc/self/status"]);
    assert_ne!(status(&privileged, "CapEff:"), status(&init, "CapEff:"));
    // Exit statuses: the command's, 127 for a missing command, 125 for a stopped container.
    assert_eq!(code(&c.run(&["exec", "box", "sh", "-c", "exit 7"])), 7);
    let out = c.run(&["exec", "box", "no-such-command"]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    // Several at once.
    let execs: Vec<_> = (0..4)
        .map(|i| c.spawner(&["exec", "box", "sh", "-c", &format!("sleep 0.2; echo {i}")]).spawn().unwrap())
        .collect();
    for (i, e) in execs.into_iter().enumerate() {
        assert_eq!(stdout(&wait_or_kill(e, Duration::from_secs(10))), format!("{i}\n"));
    }
    // -d returns at once; the process runs on in the container.
    c.ok(&["exec", "-d", "box", "sh", "-c", "sleep 0.2; touch /tmp/detached"]);
    c.until("the detached exec", || code(&c.run(&["exec", "box", "test", "-e", "/tmp/detached"])) == 0);
    c.ok(&["stop", "-t", "0", "box"]);
    let out = c.run(&["exec", "box", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
}

#[test]
fn containers_stay_until_rm_and_start_runs_them_again() {
    let c = Containers::new("lc-persist");
    let img = busybox();
    // Without --rm the container stays, stopped, with its writable layer.
    let out = c.run(&[
        "run",
        "--network",
        "none",
        "--name",
        "keep",
        &img,
        "sh",
        "-c",
        "n=$(cat /n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /n; echo $n",
    ]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "1\n"), "{}", stderr(&out));
    assert!(c.ok(&["ps", "-a"]).lines().any(|l| l.contains("Exited (0)") && l.ends_with("keep")));
    // start -a: the same container again, in the foreground, on its own files.
    let out = c.run(&["start", "-a", "keep"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "2\n"), "{}", stderr(&out));
    // start: in the background, under a monitor.
    assert_eq!(c.ok(&["start", "keep"]), "keep\n");
    assert_eq!(c.ok(&["wait", "keep"]), "0\n");
    assert_eq!(c.ok(&["logs", "keep"]), "1\n2\n3\n", "every run of it logs, in the foreground too");
    // An unnamed container gets a name of Docker's kind.
    c.ok(&["run", "--network", "none", &img, "true"]);
    let names = c.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(names.lines().any(|n| n != "keep" && n.contains('_')), "{names}");
    // rm: the container and everything of it; the name is free again.
    let dir = c.0 .0.join("containers/keep");
    assert!(dir.exists());
    assert_eq!(c.ok(&["rm", "keep"]), "keep\n");
    assert!(!dir.exists());
    let out = c.run(&["rm", "keep"]);
    assert_eq!((code(&out), stderr(&out).as_str()), (125, "spawner: No such container: keep\n"));
    // --rm --name twice: each run's container goes with it, so the name is free for the next.
    for _ in 0..2 {
        c.ok(&["run", "--rm", "--network", "none", "--name", "once", &img, "true"]);
    }
    assert!(!c.ok(&["ps", "-a"]).contains("once"));
}

#[test]
fn rm_refuses_a_running_container_and_rm_f_removes_it_whole() {
    let c = Containers::new("lc-rm");
    c.detach("busy", &["--memory", "64m"], &["sh", "-c", "sleep 4322 & sleep 100"]);
    let cgroup = c.inspect("busy", "{{.State.Pid}}");
    let cgroup = std::fs::read_to_string(format!("/proc/{cgroup}/cgroup")).unwrap();
    let out = c.run(&["rm", "busy"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("is running"), "{}", stderr(&out));
    assert_eq!(c.ok(&["rm", "-f", "busy"]), "busy\n");
    assert_eq!(c.ok(&["ps", "-aq"]), "");
    assert!(std::fs::read_dir(c.0 .0.join("containers")).unwrap().next().is_none(), "nothing left of it");
    let memory = cgroup.lines().find(|l| l.contains(":memory:")).unwrap().rsplit(':').next().unwrap();
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/memory{memory}")).exists(), "cgroup left");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(c.0 .0.to_str().unwrap()), "mounts left");
    let sleeping = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == b"sleep\x004322\x00"));
    assert!(!sleeping, "a process of the removed container is left");
}

#[test]
fn restart_policies_start_a_failing_container_again() {
    let c = Containers::new("lc-restart");
    c.detach("flaky", &["--restart", "on-failure:2"], &["sh", "-c", "echo try; exit 1"]);
    c.until("two restarts", || {
        c.inspect("flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
            && c.ok(&["logs", "flaky"]) == "try\ntry\ntry\n"
    });
    assert_eq!(c.inspect("flaky", "{{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}}"), "1 on-failure");
    // always: restarted after a clean exit too, until it is stopped.
    c.detach("forever", &["--restart", "always"], &["sh", "-c", "sleep 0.1"]);
    c.until("a restart", || c.inspect("forever", "{{.RestartCount}}") != "0");
    c.ok(&["stop", "forever"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.inspect("forever", "{{.State.Status}}"), "exited", "a stopped container stays stopped");
    let out = c.run(&["run", "--rm", "--restart", "always", &busybox(), "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("--restart and --rm"), "{}", stderr(&out));
}

/// The monitor SIGKILLed: its container dies with it, `ps` says so, and `rm` cleans up.
#[test]
fn a_killed_monitor_leaves_a_dead_container_that_rm_removes() {
    let c = Containers::new("lc-dead");
    c.detach("orphan", &[], &["sleep", "100"]);
    let init: i32 = c.inspect("orphan", "{{.State.Pid}}").parse().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
    let monitor: i32 =
        stat[stat.rfind(')').unwrap() + 2..].split_whitespace().nth(1).unwrap().parse().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{monitor}/comm")).unwrap();
    assert_eq!(comm.trim(), "spawner", "the container's parent is its monitor");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(monitor).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    c.until("the container to die with its monitor", || {
        !std::path::Path::new(&format!("/proc/{init}")).exists()
    });
    assert_eq!(c.inspect("orphan", "{{.State.Status}}"), "dead");
    let cgroup = std::fs::read_to_string(c.0 .0.join("containers/orphan/state.json")).unwrap();
    let cgroup: serde_json::Value = serde_json::from_str(&cgroup).unwrap();
    let cgroup_dirs: Vec<String> = serde_json::from_value(cgroup["cgroup"]["dirs"].clone())
        .map(|dirs: Vec<serde_json::Value>| {
            dirs.iter().filter_map(|d| d["path"].as_str().map(String::from)).collect()
        })
        .unwrap_or_default();
    assert!(cgroup_dirs.iter().any(|d| std::path::Path::new(d).exists()), "the dead run's cgroup: {cgroup}");
    assert!(c.ok(&["ps", "-a"]).lines().any(|l| l.contains("Dead")));
    assert_eq!(c.ok(&["rm", "orphan"]), "orphan\n");
    assert_eq!(c.ok(&["ps", "-aq"]), "");
    for d in &cgroup_dirs {
        assert!(!std::path::Path::new(d).exists(), "rm left the dead run's cgroup {d}");
    }
}

#[test]
fn wait_prints_the_exit_status() {
    let c = Containers::new("lc-wait");
    c.detach("short", &[], &["sh", "-c", "sleep 0.3; exit 5"]);
    assert_eq!(c.ok(&["wait", "short"]), "5\n");
}

/// stdin is the container's only with -i, and everything after the image is the command's.
#[test]
fn stdin_needs_i_and_the_command_follows_the_image() {
    let c = Containers::new("lc-stdin");
    let img = busybox();
    let fed = |args: &[&str]| {
        let mut child = c.spawner(args).stdin(Stdio::piped()).spawn().unwrap();
        // Without -i spawner may have let go of the pipe already (EPIPE): what matters is the output.
        let _ = std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"fed\n");
        drop(child.stdin.take());
        stdout(&wait_or_kill(child, Duration::from_secs(20)))
    };
    assert_eq!(fed(&["run", "--rm", "--network", "none", &img, "cat"]), "");
    assert_eq!(fed(&["run", "--rm", "-i", "--network", "none", &img, "cat"]), "fed\n");
    let out = c.run(&["run", "--rm", "-it", "--network", "none", &img, "true"]);
    assert_eq!((code(&out), stderr(&out).as_str()), (125, "spawner: the input device is not a TTY\n"));
    // -a: only the streams named reach the caller.
    let script = "echo out; echo err >&2";
    for (stream, want_out, want_err) in [("stdout", "out\n", ""), ("stderr", "", "err\n")] {
        let out = c.run(&["run", "--rm", "-a", stream, "--network", "none", &img, "sh", "-c", script]);
        assert_eq!((code(&out), stdout(&out).as_str(), stderr(&out).as_str()), (0, want_out, want_err));
    }
    let out = c.run(&["run", "-d", "-a", "stdout", "--network", "none", &img, "true"]);
    assert_eq!((code(&out), stderr(&out).as_str()), (125, "spawner: conflicting options: -a and -d\n"));
    // `-e X=1` after the image is the command's argument, not spawner's flag.
    let script = "for a in \"$@\"; do echo \"<$a>\"; done";
    let out = c.ok(&["run", "--rm", "--network", "none", &img, "sh", "-c", script, "sh", "-e", "X=1"]);
    assert_eq!(out, "<-e>\n<X=1>\n");
}

/// A named volume outlives its containers and is shared by two; a new one is filled from the
/// image; anonymous volumes (`-v /path`, the image's VOLUME) go with `rm -v` and `--rm`.
#[test]
fn volumes_persist_share_and_are_filled_from_the_image() {
    let c = Containers::new("lc-volumes");
    let img = busybox();
    let none = ["--network", "none"];
    // Filled from the image's /etc on first use, then the container's writes stay.
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(&none);
        all.extend_from_slice(args);
        c.ok(&all)
    };
    assert_eq!(
        run(&["-v", "conf:/etc", &img, "sh", "-c", "cat /etc/motd; echo mine > /etc/mine"]),
        "hello from spawner's busybox image\n"
    );
    assert_eq!(
        run(&["-v", "conf:/data:ro", &img, "cat", "/data/mine"]),
        "mine\n",
        "the volume outlived its container"
    );
    let out = c.run(&["run", "--rm", "--network", "none", "-v", "conf:/data:ro", &img, "touch", "/data/x"]);
    assert_ne!(code(&out), 0, ":ro is read-only");
    // Two containers at once on one volume.
    c.detach("writer", &["-v", "shared:/s"], &["sh", "-c", "echo from writer > /s/note; sleep 100"]);
    c.until("the writer's note", || run(&["-v", "shared:/s", &img, "cat", "/s/note"]) == "from writer\n");
    // In use: refused; once no container has it, removed.
    let out = c.run(&["volume", "rm", "shared"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("in use by container writer"), "{}", stderr(&out));
    c.ok(&["rm", "-f", "writer"]);
    assert_eq!(c.ok(&["volume", "rm", "shared"]), "shared\n");
    assert_eq!(c.ok(&["volume", "ls", "-q"]), "conf\n");
    let inspect: serde_json::Value = serde_json::from_str(&c.ok(&["volume", "inspect", "conf"])).unwrap();
    assert_eq!(inspect[0]["Name"], "conf");
    assert!(inspect[0]["Mountpoint"].as_str().unwrap().ends_with("volumes/conf/_data"));

    // The image's VOLUME: an anonymous volume filled from the image, kept by `start`, gone with rm -v.
    let service = image("service.tar").display().to_string();
    let out = c.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "svc",
        &service,
        "sh",
        "-c",
        "ls /opt/replaced; echo kept >> /opt/replaced/new",
    ]);
    assert_eq!(out, "new\n");
    let anon = c.inspect("svc", "{{json .Mounts}}");
    assert!(anon.contains("\"Destination\":\"/opt/replaced\""), "{anon}");
    assert_eq!(c.ok(&["volume", "ls", "-q"]).lines().count(), 2);
    let out = c.run(&["start", "-a", "svc"]);
    assert_eq!(stdout(&out), "new\n", "{}", stderr(&out));
    c.ok(&["run", "--rm", "--network", "none", &service, "true"]);
    assert_eq!(c.ok(&["volume", "ls", "-q"]).lines().count(), 2, "--rm took its anonymous volume along");
    c.ok(&["rm", "-v", "svc"]);
    assert_eq!(c.ok(&["volume", "ls", "-q"]), "conf\n", "rm -v took the anonymous volume along");
    // The image's StopSignal (SIGUSR1) is what stop sends.
    let script = "trap 'echo got USR1; exit 6' USR1; echo ready; while true; do sleep 0.05; done";
    c.ok(&["run", "-d", "--rm", "--network", "none", "--name", "sig", &service, "sh", "-c", script]);
    assert_eq!(c.inspect("sig", "{{.Config.StopSignal}}"), "10");
    c.until("the trap", || c.ok(&["logs", "sig"]) == "ready\n");
    c.ok(&["stop", "-t", "5", "sig"]);
    assert_eq!(c.ok(&["volume", "ls", "-q"]), "conf\n", "--rm -d took its anonymous volume along");
    // A volume where spawner mounts the kernel's file systems is refused.
    for bad in ["/tmp:/proc", "conf:/sys/kernel", "/tmp:/dev"] {
        let out = c.run(&["run", "--rm", "--network", "none", "-v", bad, &img, "true"]);
        assert_eq!(code(&out), 125, "{bad}");
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }
    // --mount type=tmpfs.
    let out = run(&[
        "--mount",
        "type=tmpfs,target=/scratch,tmpfs-size=1m",
        &img,
        "sh",
        "-c",
        "grep ' /scratch ' /proc/mounts",
    ]);
    assert!(out.contains(" /scratch tmpfs rw,nosuid,nodev") && out.contains("size=1024k"), "{out}");
}

/// `images -q` and `--format`; and a user who is not root is told that root is needed, before
/// anything is written.
#[test]
fn images_format_and_running_as_a_user() {
    let c = Containers::new("lc-images");
    c.ok(&["run", "--rm", "--network", "none", &busybox(), "true"]);
    let ids = c.ok(&["images", "-q"]);
    assert!(ids.len() == 13 && ids.ends_with('\n'), "{ids:?}");
    assert_eq!(
        c.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]),
        format!("busybox:latest {ids}")
    );
    let state = std::env::temp_dir().join(format!("spawner-test-lc-user-{}", std::process::id()));
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(spawner_bin())
        .arg("--root")
        .arg(&state)
        .args(["run", "--rm", &busybox(), "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("needs root"), "{}", stderr(&out));
    assert!(!state.exists(), "nothing was written");
}

/// A detached web server, reached through `exec` on the container's own loopback.
#[test]
fn a_detached_server_is_reached_through_exec() {
    let c = Containers::new("lc-httpd");
    let script = "mkdir -p /www && echo served > /www/index.html && exec busybox httpd -f -vv -p 127.0.0.1:8080 -h /www";
    c.detach("web", &[], &["sh", "-c", script]);
    let fetch = || c.run(&["exec", "web", "busybox", "wget", "-qO-", "http://127.0.0.1:8080/"]);
    c.until("the server", || code(&fetch()) == 0);
    assert_eq!(stdout(&fetch()), "served\n");
    // httpd -vv logs each request on stderr: the log has them.
    c.until("the request in the log", || stderr(&c.run(&["logs", "web"])).contains("url:/"));
    c.ok(&["stop", "web"]);
}

/// A real server on Debian (debootstrap's bookworm with python3): `run -d`, reached through
/// `exec` on the container's loopback, its request in `logs`, `exec -u` with Debian's users, then
/// stopped by SIGTERM.
#[test]
fn a_debian_http_server_runs_detached_and_answers_through_exec() {
    let c = Containers::new("lc-debian");
    let debian = image("debian.tar").display().to_string();
    let server = ["python3", "-m", "http.server", "8000", "--bind", "127.0.0.1", "--directory", "/etc"];
    let mut args = vec!["run", "-d", "--network", "none", "--name", "web", &debian];
    args.extend(server);
    c.ok(&args);
    let fetch = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/os-release').read().decode())";
    c.until("the server answers", || code(&c.run(&["exec", "web", "python3", "-c", fetch])) == 0);
    let page = c.ok(&["exec", "web", "python3", "-c", fetch]);
    assert!(page.contains("VERSION_CODENAME=bookworm"), "{page}");
    assert_eq!(c.ok(&["exec", "-u", "nobody", "web", "id", "-un"]), "nobody\n");
    assert_eq!(c.ok(&["exec", "-w", "/tmp", "web", "pwd"]), "/tmp\n");
    c.until("the request in the log", || {
        let out = c.run(&["logs", "web"]);
        stderr(&out).contains("\"GET /os-release HTTP/1.1\" 200")
    });
    let ps = c.ok(&["ps", "--format", "{{.Names}} {{.Command}}"]);
    assert!(ps.starts_with("web \"python3 -m http."), "{ps}");
    c.ok(&["stop", "web"]);
    assert_eq!(c.inspect("web", "{{.State.Status}}"), "exited");
    c.ok(&["rm", "web"]);
    assert_eq!(c.ok(&["ps", "-aq"]), "");
}

/// A container run in the foreground (and kept) shows its output and keeps it in its log, as
/// Docker's: `logs` prints it afterwards. Its stdin with -i, its streams with -a, and a reader
/// that goes away (SIGPIPE, as if it wrote to that reader itself) behave as without the log.
#[test]
fn a_foreground_run_shows_its_output_and_logs_it() {
    let c = Containers::new("lc-fg-log");
    let img = busybox();
    let out = c.run(&[
        "run",
        "--network",
        "none",
        "--name",
        "fg",
        &img,
        "sh",
        "-c",
        "echo out; echo err >&2; printf end",
    ]);
    assert_eq!((code(&out), stdout(&out).as_str(), stderr(&out).as_str()), (0, "out\nend", "err\n"));
    let logs = c.run(&["logs", "fg"]);
    assert_eq!((stdout(&logs).as_str(), stderr(&logs).as_str()), ("out\nend", "err\n"), "logs after the run");

    let mut child = c
        .spawner(&["run", "-i", "--network", "none", "--name", "cat", &img, "cat"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"typed\n").unwrap();
    drop(child.stdin.take());
    let out = wait_or_kill(child, Duration::from_secs(20));
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "typed\n"), "{}", stderr(&out));
    assert_eq!(c.ok(&["logs", "cat"]), "typed\n");

    let out = c.run(&[
        "run",
        "-a",
        "stdout",
        "--network",
        "none",
        "--name",
        "quiet",
        &img,
        "sh",
        "-c",
        "echo shown; echo hidden >&2",
    ]);
    assert_eq!((stdout(&out).as_str(), stderr(&out).as_str()), ("shown\n", ""), "-a stdout");
    assert_eq!(stderr(&c.run(&["logs", "quiet"])), "hidden\n", "logged all the same");

    // `spawner run … | head -c 2`: the container ends by SIGPIPE once the reader is gone.
    let mut child = c
        .spawner(&[
            "run",
            "--network",
            "none",
            "--name",
            "yes",
            &img,
            "sh",
            "-c",
            "while true; do echo y; done",
        ])
        .spawn()
        .unwrap();
    let mut two = [0u8; 2];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut two).unwrap();
    assert_eq!(&two, b"y\n");
    drop(child.stdout.take());
    let out = wait_or_kill(child, Duration::from_secs(20));
    assert_eq!(code(&out), 141, "128 + SIGPIPE: {}", stderr(&out));
    assert_eq!(c.inspect("yes", "{{.State.ExitCode}}"), "141");
}
