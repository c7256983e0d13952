//! spawner as an OCI runtime, through runc's command line (`spawner-runc`), as engines drive it: a
//! bundle of the busybox test image, the container's life (create, start, state, kill, delete, run),
//! the errors engines read, and config.json's fields, each checked from inside the container so that
//! a field the core ignored would show.

use integration_tests::*;
use std::path::Path;
use std::time::Duration;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn create_start_state_kill_delete() {
    let rt = Runc::new("life");
    let bundle = rt.bundle("b", &["sh", "-c", "echo started; exec sleep 100"], |_| {});
    let pid_file = rt.dir.0.join("pid");
    let out = rt.run(&["create", "--bundle", s(&bundle), "--pid-file", s(&pid_file), "c1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "create prints nothing: the container's output is the container's");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(!pid.ends_with('\n') && pid.parse::<i32>().is_ok(), "pid file {pid:?}");
    let state: serde_json::Value = serde_json::from_slice(&rt.run(&["state", "c1"]).stdout).unwrap();
    assert_eq!(state["status"], "created");
    assert_eq!(state["pid"].to_string(), pid);
    assert_eq!(state["bundle"], s(&bundle));
    assert_eq!(state["id"], "c1");
    // Created: the process exists, and has not run the image's program yet.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");
    let out = rt.run(&["create", "--bundle", s(&bundle), "c1"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("container with id exists: c1"), "{}", stderr(&out));
    assert_eq!(code(&rt.run(&["start", "c1"])), 0);
    for _ in 0..100 {
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim() == "sleep" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(rt.status("c1"), "running");
    let out = rt.run(&["start", "c1"]);
    assert!(stderr(&out).contains("cannot start an already running container"), "{}", stderr(&out));
    let out = rt.run(&["delete", "c1"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("cannot delete container c1 that is not stopped: running"),
        "{}",
        stderr(&out)
    );
    let ps: Vec<i32> = serde_json::from_slice(&rt.run(&["ps", "--format", "json", "c1"]).stdout).unwrap();
    assert_eq!(ps, [pid.parse::<i32>().unwrap()]);
    assert_eq!(code(&rt.run(&["kill", "c1", "KILL"])), 0);
    for _ in 0..100 {
        if rt.status("c1") == "stopped" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let state: serde_json::Value = serde_json::from_slice(&rt.run(&["state", "c1"]).stdout).unwrap();
    assert_eq!((state["status"].as_str(), state["pid"].as_i64()), (Some("stopped"), Some(0)));
    let out = rt.run(&["kill", "c1", "TERM"]);
    assert!(stderr(&out).contains("container not running"), "{}", stderr(&out));
    assert_eq!(code(&rt.run(&["delete", "c1"])), 0);
    let out = rt.run(&["state", "c1"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("container does not exist"), "{}", stderr(&out));
    // Engines delete with --force after a failed create: an unknown id is fine then.
    assert_eq!(code(&rt.run(&["delete", "--force", "c1"])), 0);
    assert_eq!(code(&rt.run(&["delete", "c1"])), 1);
}

#[test]
fn run_waits_and_returns_the_status() {
    let rt = Runc::new("run");
    let bundle = rt.bundle("b", &["sh", "-c", "echo out; echo err >&2; exit 7"], |_| {});
    let out = rt.run(&["run", "--bundle", s(&bundle), "r1"]);
    assert_eq!((code(&out), stdout(&out).as_str(), stderr(&out).as_str()), (7, "out\n", "err\n"));
    assert_eq!(code(&rt.run(&["state", "r1"])), 1, "run deletes the container once it exits");
    let out = rt.run(&["run", "--detach", "--bundle", s(&bundle), "r2"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// In the foreground, signals sent to `spawner-runc run` reach the container's process (as runc
/// forwards them): the shell's TERM trap runs and its status is run's.
#[test]
fn run_in_the_foreground_relays_signals() {
    let rt = Runc::new("runsig");
    let script = "trap 'echo got TERM; exit 0' TERM; echo up; while :; do sleep 0.1; done";
    let bundle = rt.bundle("b", &["sh", "-c", script], |_| {});
    let out_path = rt.dir.0.join("run.out");
    let mut cmd = rt.command(&["run", "--bundle", s(&bundle), "sig1"]);
    cmd.stdout(std::fs::File::create(&out_path).unwrap());
    let child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&out_path).unwrap().contains("up") && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    rustix::process::kill_process(rustix::process::Pid::from_child(&child), rustix::process::Signal::TERM)
        .unwrap();
    let out = wait_or_kill(child, Duration::from_secs(20));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), "up\ngot TERM\n");
    assert_eq!(code(&rt.run(&["state", "sig1"])), 1, "run deletes the container once it exits");
}

/// A process with `terminal: true` and no --console-socket gets a pty of the container's own whose
/// other side is `spawner-runc run`'s terminal, as with runc: keys typed go in, output comes out.
#[test]
fn run_in_the_foreground_gives_a_terminal() {
    let rt = Runc::new("runtty");
    let script = "tty; stty size; read line; echo got:$line; exit 5";
    let bundle = rt.bundle("b", &["sh", "-c", script], |c| c["process"]["terminal"] = true.into());
    let mut cmd = std::process::Command::new(runc_bin());
    cmd.arg("--root").arg(&rt.root).args(["run", "--bundle", s(&bundle), "tty1"]);
    let (child, mut master) = spawn_on_terminal(cmd, Some((45, 123)));
    let seen = read_until(&mut master, "45 123");
    std::io::Write::write_all(&mut master, b"hello\r").unwrap();
    let seen = seen + &read_until(&mut master, "got:hello");
    let out = wait_or_kill(child, Duration::from_secs(20));
    assert_eq!(code(&out), 5, "{seen:?}");
    assert!(seen.contains("/dev/pts/0\r\n45 123\r\n"), "{seen:?}");
    assert!(seen.contains("got:hello"), "{seen:?}");
}

#[test]
fn errors_are_worded_as_runc_and_logged_as_json() {
    let rt = Runc::new("errors");
    let log = rt.dir.0.join("log.json");
    let bundle = rt.bundle("b", &["no-such-program"], |_| {});
    let out = rt.run(&["--log", s(&log), "--log-format", "json", "create", "--bundle", s(&bundle), "e1"]);
    assert_eq!(code(&out), 1);
    let last = std::fs::read_to_string(&log).unwrap().lines().last().unwrap().to_string();
    let line: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(line["level"], "error");
    assert!(
        line["msg"]
            .as_str()
            .unwrap()
            .contains(r#"exec: "no-such-program": executable file not found in $PATH"#),
        "{line}"
    );
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(code(&rt.run(&["state", "e1"])), 1, "a failed create leaves nothing");
    let bundle = rt.bundle("c", &["/no/such/file"], |_| {});
    let out = rt.run(&["create", "--bundle", s(&bundle), "e2"]);
    assert!(stderr(&out).contains("no such file or directory"), "{}", stderr(&out));
    // A config.json error names the file, the place and the field.
    std::fs::write(bundle.join("config.json"), r#"{"ociVersion": "1.0.2", "process": {"args": 5}}"#).unwrap();
    let out = rt.run(&["create", "--bundle", s(&bundle), "e3"]);
    assert!(
        stderr(&out).contains("config.json:1:") && stderr(&out).contains("process.args"),
        "{}",
        stderr(&out)
    );
}

/// `--systemd-cgroup` on a host whose init is not systemd (this one's): runc's one line, exit 1,
/// and nothing made; without it, a cgroupsPath in systemd's form is refused by name. (The VM test
/// runs the driver under systemd.)
#[test]
fn systemd_cgroup_without_systemd() {
    if Path::new("/run/systemd/system").is_dir() {
        eprintln!("skipped: systemd runs this host");
        return;
    }
    let rt = Runc::new("systemd");
    let bundle = rt.bundle("b", &["true"], |c| c["linux"]["cgroupsPath"] = "system.slice:spawner:s1".into());
    let by_flag = ["--systemd-cgroup", "run", "--bundle", s(&bundle), "s1"];
    let by_manager = ["--cgroup-manager", "systemd", "create", "--bundle", s(&bundle), "s1"];
    for args in [&by_flag[..], &by_manager[..]] {
        let out = rt.run(args);
        assert_eq!(code(&out), 1, "{args:?}");
        assert_eq!(
            stderr(&out),
            "spawner: systemd not running on this host, cannot use systemd cgroups manager\n",
            "{args:?}"
        );
        assert!(!rt.root.join("s1").exists(), "no state left by {args:?}");
    }
    let out = rt.run(&["run", "--bundle", s(&bundle), "s2"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(r#""system.slice:spawner:s1" is systemd's slice:prefix:name form"#)
            && stderr(&out).contains("--systemd-cgroup"),
        "{}",
        stderr(&out)
    );
    assert_eq!(code(&rt.run(&["state", "s2"])), 1, "a refused create leaves nothing");
}

/// Each config.json field the core honours, checked from inside: `edit` sets it, the script
/// prints what the container sees.
#[test]
fn config_fields_are_honoured() {
    let rt = Runc::new("fields");
    let data = rt.dir.0.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("file"), "from the host\n").unwrap();
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, &str, Edit, &str)> = vec![
        ("hostname", "hostname", Box::new(|c| c["hostname"] = "fieldbox".into()), "fieldbox\n"),
        (
            "personality",
            "uname -m",
            Box::new(|c| c["linux"]["personality"] = serde_json::json!({"domain": "LINUX32"})),
            "i686\n",
        ),
        (
            "timeOffsets",
            "test $(cut -d. -f1 /proc/uptime) -ge 1000000 && echo moved",
            Box::new(|c| {
                c["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "time"}));
                c["linux"]["timeOffsets"] =
                    serde_json::json!({"boottime": {"secs": 1000000}, "monotonic": {"secs": 1000000}});
            }),
            "moved\n",
        ),
        (
            "env",
            "echo $GREETING",
            Box::new(|c| c["process"]["env"] = serde_json::json!(["PATH=/bin", "GREETING=hi"])),
            "hi\n",
        ),
        ("cwd", "pwd", Box::new(|c| c["process"]["cwd"] = "/tmp/made".into()), "/tmp/made\n"),
        (
            "user",
            "id",
            Box::new(|c| {
                c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 7]})
            }),
            "uid=1000(app) gid=1001 groups=5,7,1001\n",
        ),
        ("umask", "umask", Box::new(|c| c["process"]["user"]["umask"] = 0o077.into()), "0077\n"),
        (
            "capabilities",
            "grep CapEff /proc/self/status",
            Box::new(|c| {
                let caps = serde_json::json!(["CAP_CHOWN", "CAP_KILL"]);
                for set in ["bounding", "effective", "permitted"] {
                    c["process"]["capabilities"][set] = caps.clone();
                }
            }),
            "CapEff:\t0000000000000021\n",
        ),
        (
            "rlimits",
            "ulimit -n",
            Box::new(|c| {
                c["process"]["rlimits"] =
                    serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}])
            }),
            "256\n",
        ),
        (
            "noNewPrivileges",
            "grep NoNewPrivs /proc/self/status",
            // runc spec's default is true: false shows the field is read.
            Box::new(|c| c["process"]["noNewPrivileges"] = false.into()),
            "NoNewPrivs:\t0\n",
        ),
        (
            "oomScoreAdj",
            "cat /proc/self/oom_score_adj",
            Box::new(|c| c["process"]["oomScoreAdj"] = 500.into()),
            "500\n",
        ),
        (
            "mounts (bind, ro)",
            "cat /data/file; touch /data/x 2>&1 | grep -c Read-only",
            Box::new(move |c| {
                c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
                    "destination": "/data", "type": "bind", "source": "DATA", "options": ["rbind", "ro"]}))
            }),
            "from the host\n1\n",
        ),
        (
            "mounts (tmpfs options)",
            "grep ' /scratch ' /proc/mounts | grep -o 'size=[0-9]*k'",
            Box::new(|c| {
                c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
                    "destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1024k"]}))
            }),
            "size=1024k\n",
        ),
        (
            "root.readonly",
            "touch /x 2>&1 | grep -c Read-only",
            Box::new(|c| c["root"]["readonly"] = true.into()),
            "1\n",
        ),
        (
            "maskedPaths",
            "wc -c < /proc/cpuinfo",
            Box::new(|c| c["linux"]["maskedPaths"] = serde_json::json!(["/proc/cpuinfo"])),
            "0\n",
        ),
        (
            "readonlyPaths",
            "(echo 1 > /proc/sys/kernel/domainname) 2>&1 | grep -c Read-only",
            Box::new(|c| c["linux"]["readonlyPaths"] = serde_json::json!(["/proc/sys"])),
            "1\n",
        ),
        (
            "sysctl",
            "cat /proc/sys/kernel/shmmni",
            Box::new(|c| {
                c["linux"]["sysctl"] = serde_json::json!({"kernel.shmmni": "1000"});
                c["linux"]["readonlyPaths"] = serde_json::json!([]);
            }),
            "1000\n",
        ),
        (
            "devices",
            "stat -c '%F %t:%T %a' /dev/fuse",
            Box::new(
                |c| c["linux"]["devices"] = serde_json::json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640}]),
            ),
            "character special file a:e5 640\n",
        ),
        (
            "seccomp",
            "mkdir /tmp/d 2>&1 | grep -c 'Permission denied'",
            Box::new(|c| {
                c["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]})
            }),
            "1\n",
        ),
    ];
    let data_path = data.display().to_string();
    for (i, (field, script, edit, expected)) in cases.into_iter().enumerate() {
        let data_path = data_path.clone();
        let bundle = rt.bundle(&format!("f{i}"), &["sh", "-c", script], |c| {
            edit(c);
            if let Some(mounts) = c["mounts"].as_array_mut() {
                for m in mounts.iter_mut().filter(|m| m["source"] == "DATA") {
                    m["source"] = data_path.clone().into();
                }
            }
        });
        let out = rt.run(&["run", "--bundle", s(&bundle), &format!("f{i}")]);
        assert_eq!(stdout(&out), expected, "{field}: {}", stderr(&out));
    }
}

#[test]
fn exec_runs_in_the_container_and_update_changes_its_limits() {
    let rt = Runc::new("exec");
    let bundle = rt.bundle("b", &["sh", "-c", "echo $$ > /tmp/pid1; exec sleep 100"], |c| {
        c["root"]["readonly"] = false.into();
        c["linux"]["resources"] = serde_json::json!({"memory": {"limit": 67108864}});
    });
    assert_eq!(code(&rt.run(&["run", "--detach", "--bundle", s(&bundle), "x1"])), 0);
    // The exec'd process sees the container's files and PID 1, and waits: its status is exec's.
    let wait = "while [ ! -s /tmp/pid1 ]; do sleep 0.05; done";
    let out = rt.run(&["exec", "x1", "sh", "-c", &format!("{wait}; cat /tmp/pid1; hostname; exit 5")]);
    assert_eq!((code(&out), stdout(&out).as_str()), (5, "1\nspawner\n"), "{}", stderr(&out));
    let out = rt.run(&["exec", "--user", "1000:1000", "--env", "X=y", "x1", "sh", "-c", "id -u; echo $X"]);
    assert_eq!(stdout(&out), "1000\ny\n", "{}", stderr(&out));
    // --process FILE and --detach with a pid file, as conmon and the containerd shim call it.
    let process = rt.dir.0.join("process.json");
    std::fs::write(
        &process,
        r#"{"args": ["sh", "-c", "echo detached > /tmp/out"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "env": ["PATH=/bin"]}"#,
    )
    .unwrap();
    let pid_file = rt.dir.0.join("exec.pid");
    let out = rt.run(&["exec", "--process", s(&process), "--detach", "--pid-file", s(&pid_file), "x1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(std::fs::read_to_string(&pid_file).unwrap().parse::<i32>().is_ok());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stdout(&rt.run(&["exec", "x1", "cat", "/tmp/out"])), "detached\n");
    let out = rt.run(&["exec", "x1", "no-such-program"]);
    assert!(stderr(&out).contains("executable file not found in $PATH"), "{}", stderr(&out));
    // update: the new limit, seen from inside.
    let resources = rt.dir.0.join("resources.json");
    std::fs::write(&resources, r#"{"memory": {"limit": 33554432}}"#).unwrap();
    assert_eq!(code(&rt.run(&["update", "--resources", s(&resources), "x1"])), 0);
    let on_v1 = own_memory_cgroup().is_some_and(|d| d.starts_with("/sys/fs/cgroup/memory"));
    let file =
        if on_v1 { "/sys/fs/cgroup/memory/memory.limit_in_bytes" } else { "/sys/fs/cgroup/memory.max" };
    assert_eq!(stdout(&rt.run(&["exec", "x1", "cat", file])), "33554432\n");
}

/// Every hook list runs at its point of the life, in order, with the state of that moment on stdin:
/// prestart, createRuntime and poststart, poststop in spawner's mount namespace, createContainer
/// and startContainer in the container's (startContainer's path resolved inside it).
#[test]
fn hooks_run_in_order_where_the_spec_says() {
    let rt = Runc::new("hooks");
    let logs = rt.dir.0.join("hooklog");
    std::fs::create_dir(&logs).unwrap();
    let log = logs.join("log");
    let host_hook = |stage: &str| {
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo \"$0 $(readlink /proc/self/ns/mnt) $(cat)\" >> {}", s(&log)), stage],
            "env": ["PATH=/usr/bin:/bin"],
        })
    };
    let bundle = rt.bundle("b", &["true"], |c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/hooklog", "type": "bind", "source": s(&logs), "options": ["rbind", "rw"]
        }));
        c["annotations"] = serde_json::json!({"org.example/hooks": "yes"});
        c["hooks"] = serde_json::json!({
            "prestart": [host_hook("prestart")],
            "createRuntime": [host_hook("createRuntime")],
            "createContainer": [host_hook("createContainer")],
            "startContainer": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", "echo \"$0 $(readlink /proc/self/ns/mnt) $(cat)\" >> /hooklog/log", "startContainer"],
                "env": ["PATH=/bin"],
            }],
            "poststart": [host_hook("poststart")],
            "poststop": [host_hook("poststop")],
        });
    });
    let pid_file = rt.dir.0.join("pid");
    let out = rt.run(&["create", "--bundle", s(&bundle), "--pid-file", s(&pid_file), "h1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let container_ns = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    let out = rt.run(&["start", "h1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for _ in 0..500 {
        if rt.status("h1") == "stopped" {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = rt.run(&["delete", "h1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let host_ns = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<(&str, &str, serde_json::Value)> = text
        .lines()
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let (stage, ns, state) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
            (stage, ns, serde_json::from_str(state).unwrap_or_else(|e| panic!("{l}: {e}")))
        })
        .collect();
    let stages: Vec<&str> = lines.iter().map(|l| l.0).collect();
    assert_eq!(
        stages,
        ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "{text}"
    );
    for (stage, ns, state) in &lines {
        let status = match *stage {
            "prestart" | "createRuntime" | "createContainer" => "creating",
            "startContainer" => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        assert_eq!(state["status"], status, "{stage}: {state}");
        assert_eq!(
            (state["id"].as_str(), state["bundle"].as_str()),
            (Some("h1"), Some(s(&bundle))),
            "{stage}"
        );
        assert_eq!(state["annotations"]["org.example/hooks"], "yes", "{stage}");
        assert_eq!(state["pid"], pid, "{stage}: the pid as the host sees it");
        let in_container = *stage == "createContainer" || *stage == "startContainer";
        let expected = if in_container { &container_ns } else { &host_ns };
        assert_eq!(Path::new(ns), expected.as_path(), "{stage} ran in the wrong mount namespace");
    }
}

/// A failing createRuntime hook fails create, naming the hook and what it said, leaves no
/// container, and the poststop hooks still run (the lifecycle goes on at delete); a failing
/// poststart hook is a warning and the container runs on.
#[test]
fn failing_hooks() {
    let rt = Runc::new("hookfail");
    let marker = rt.dir.0.join("poststop-ran");
    let bundle = rt.bundle("b", &["sleep", "100"], |c| {
        c["hooks"] = serde_json::json!({
            "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo no network for you >&2; exit 4"]}],
            "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("/usr/bin/touch {}", s(&marker))]}],
        });
    });
    let out = rt.run(&["create", "--bundle", s(&bundle), "hf1"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("createRuntime hook #0 (/bin/sh): exit status 4: no network for you"),
        "{}",
        stderr(&out)
    );
    assert_eq!(code(&rt.run(&["state", "hf1"])), 1, "a failed create leaves nothing");
    assert!(marker.exists(), "poststop hooks run when create fails");
    let bundle = rt.bundle("c", &["sleep", "100"], |c| {
        c["hooks"] = serde_json::json!({"poststart": [{"path": "/bin/false"}]});
    });
    assert_eq!(code(&rt.run(&["create", "--bundle", s(&bundle), "hf2"])), 0);
    let out = rt.run(&["start", "hf2"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("poststart hook #0 (/bin/false): exit status 1"), "{}", stderr(&out));
    assert_eq!(rt.status("hf2"), "running");
}

/// `--no-pivot` (runc's, for a root on a ramfs, which pivot_root refuses): the root is moved onto
/// / and chrooted into, as --debug says; the container runs the same.
#[test]
fn no_pivot_moves_the_root_instead() {
    let rt = Runc::new("nopivot");
    let bundle = rt.bundle("b", &["sh", "-c", "ls /bin/busybox; cat /proc/self/mountinfo | wc -l"], |_| {});
    let pivoted = rt.run(&["--debug", "run", "--bundle", s(&bundle), "np1"]);
    let moved = rt.run(&["--debug", "run", "--no-pivot", "--bundle", s(&bundle), "np2"]);
    for out in [&pivoted, &moved] {
        assert_eq!((code(out), stdout(out).lines().next()), (0, Some("/bin/busybox")), "{}", stderr(out));
    }
    assert_eq!(stdout(&pivoted), stdout(&moved), "the same mounts are visible");
    assert!(stderr(&pivoted).contains("container: pivoted into the root"), "{}", stderr(&pivoted));
    assert!(
        stderr(&moved).contains("container: root moved onto / and chrooted into (no pivot_root)"),
        "{}",
        stderr(&moved)
    );
}
