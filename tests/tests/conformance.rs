//! The OCI runtime spec's requirements on a Linux runtime, each checked against the spec's wording
//! through `spawner-runc`. The list is runtime-tools' catalogue of the spec's MUSTs (`specerror`,
//! in Debian's golang-github-opencontainers-runtime-tools-dev) for config.md, config-linux.md,
//! runtime.md and runtime-linux.md; each check quotes the sentence it tests. Requirements checked
//! in depth elsewhere name the test:
//! - hooks called in order, with the state on stdin, prestart/poststart/poststop timing:
//!   `runc::hooks_run_in_order_where_the_spec_says`; a failing prestart/createRuntime hook is an
//!   error and the lifecycle goes on at delete, a failing poststart/poststop hook a warning:
//!   `runc::failing_hooks`;
//! - `root.readonly`, `oomScoreAdj` set, `maskedPaths`, `readonlyPaths`, `sysctl`, seccomp's
//!   `errnoRet`, `personality`, `timeOffsets`: `runc::config_fields_are_honoured`;
//! - the state's fields, a second create with the same ID, start/kill/delete of a container in the
//!   wrong state, `delete --force`: `runc::create_start_state_kill_delete`.
//!
//! Not applicable here: Windows, Solaris and z/OS fields (refused with an error naming them), and
//! `intelRdt` beyond the error this host must give (no resctrl file system is mounted).

use integration_tests::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `run` of a bundle made with `edit`: (exit code, stdout, stderr).
fn run_with(rt: &Runc, id: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> (i32, String, String) {
    let bundle = rt.bundle(id, args, edit);
    let out = rt.run(&["run", "--bundle", s(&bundle), id]);
    (code(&out), stdout(&out), stderr(&out))
}

/// Asserts that `run` of a bundle made with `edit` fails with one error line that names `field`,
/// and leaves no container behind.
fn refused(rt: &Runc, id: &str, must: &str, field: &str, edit: impl FnOnce(&mut Value)) {
    let (status, out, err) = run_with(rt, id, &["true"], edit);
    assert_ne!(status, 0, "{must}: accepted\n{err}");
    assert_eq!(out, "", "{must}: something ran");
    assert!(err.contains(field), "{must}: the error does not name {field}: {err}");
    assert_eq!(code(&rt.run(&["state", id])), 1, "{must}: a container was left: {err}");
}

/// Asserts that `run` of `args` in a bundle made with `edit` succeeds and prints `expected`.
fn runs(rt: &Runc, id: &str, must: &str, args: &[&str], expected: &str, edit: impl FnOnce(&mut Value)) {
    let (status, out, err) = run_with(rt, id, args, edit);
    assert_eq!((status, out.as_str()), (0, expected), "{must}\n{err}");
}

/// A cgroupsPath below this test's own memory cgroup (the one hierarchy delegated here), and its
/// directory: (path, directory).
fn test_cgroup(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let own = own_memory_cgroup().expect("no memory cgroup in /proc/self/cgroup");
    let rel = own.strip_prefix("/sys/fs/cgroup/memory").expect("a v1 memory hierarchy (this host is hybrid)");
    let path = Path::new("/").join(rel).join(format!("{name}-{}", std::process::id()));
    let dir = Path::new("/sys/fs/cgroup/memory").join(path.strip_prefix("/").unwrap());
    (path, dir)
}

fn sh(script: &str) -> [&str; 3] {
    ["sh", "-c", script]
}

/// config.md: specification version, root, unknown properties, annotations.
#[test]
fn config_version_root_extensibility_annotations() {
    let rt = Runc::new("conf-config");
    let must = "`ociVersion` MUST be in SemVer v2.0.0 format";
    for (i, version) in ["1.0.0", "1.2.1", "1.3.0", "1.0.2-dev", "1.1.0+build.5"].iter().enumerate() {
        runs(&rt, &format!("v{i}"), must, &["echo", "ok"], "ok\n", |c| c["ociVersion"] = json!(version));
    }
    refused(&rt, "v-bad", must, "ociVersion", |c| c["ociVersion"] = json!("one"));
    refused(&rt, "v-two", must, "ociVersion", |c| c["ociVersion"] = json!("2.0.0"));

    let must = "root: On all other platforms, this field is REQUIRED";
    refused(&rt, "no-root", must, "root", |c| c.as_object_mut().unwrap().remove("root").map(drop).unwrap());
    let must = "root.path: A directory MUST exist at the path declared by the field";
    refused(&rt, "root-gone", must, "nowhere", |c| c["root"]["path"] = json!("nowhere"));

    let must = "Runtimes that are reading or processing this configuration file MUST NOT generate an \
                error if they encounter an unknown property";
    runs(&rt, "unknown", must, &["echo", "ok"], "ok\n", |c| {
        c["org.example.future"] = json!({"anything": [1, 2]});
        c["process"]["org.example.knob"] = json!(true);
        c["linux"]["org.example.setting"] = json!("on");
    });

    let must = "Implementations that are reading/processing this configuration file MUST NOT generate \
                an error if they encounter an unknown annotation key";
    runs(&rt, "annotated", must, &["echo", "ok"], "ok\n", |c| {
        c["annotations"] = json!({"com.example.unknown": "1", "org.opencontainers.image.title": "t"});
    });
    let must = "Keys MUST NOT be an empty string";
    refused(&rt, "empty-key", must, "annotations", |c| c["annotations"] = json!({"": "x"}));
    let must = "Values MUST be strings";
    refused(&rt, "number-value", must, "annotations", |c| c["annotations"] = json!({"a": 1}));
}

/// config.md: the process, its rlimits, capabilities and oom_score_adj.
#[test]
fn process_cwd_args_console_rlimits_capabilities_oom() {
    let rt = Runc::new("conf-process");
    let must = "cwd: This value MUST be an absolute path";
    refused(&rt, "cwd", must, "process.cwd", |c| c["process"]["cwd"] = json!("tmp"));
    let must = "args: at least one entry is REQUIRED";
    refused(&rt, "args", must, "process.args", |c| c["process"]["args"] = json!([]));
    let must = "process: This property is REQUIRED when `start` is called";
    refused(&rt, "no-process", must, "process", |c| {
        c.as_object_mut().unwrap().remove("process").map(drop).unwrap()
    });

    let must = "Runtimes MUST ignore `consoleSize` if `terminal` is `false` or unset";
    runs(&rt, "console", must, &sh("tty >/dev/null || echo no terminal"), "no terminal\n", |c| {
        c["process"]["consoleSize"] = json!({"height": 10, "width": 20});
    });

    let must = "rlim.rlim_cur MUST match the configured value; rlim.rlim_max MUST match the configured value";
    let limits = json!([{"type": "RLIMIT_NOFILE", "soft": 300, "hard": 600}, {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]);
    runs(&rt, "rlimits", must, &sh("ulimit -Sn; ulimit -Hn; ulimit -Hc"), "300\n600\n0\n", |c| {
        c["process"]["rlimits"] = limits
    });
    let must = "The runtime MUST generate an error for any values which cannot be mapped to a relevant \
                kernel interface";
    refused(&rt, "rlimit-type", must, "process.rlimits[0].type", |c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_SPEED", "soft": 1, "hard": 1}])
    });
    let must =
        "If `rlimits` contains duplicated entries with same `type`, the runtime MUST generate an error";
    refused(&rt, "rlimit-twice", must, "process.rlimits[1].type", |c| {
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 10, "hard": 10}, {"type": "RLIMIT_NOFILE", "soft": 20, "hard": 20}])
    });
    let must =
        "capabilities: Any value which cannot be mapped to a relevant kernel interface MUST cause an error";
    refused(&rt, "cap", must, "process.capabilities.bounding", |c| {
        c["process"]["capabilities"]["bounding"] = json!(["CAP_CHOWN", "CAP_FLY"])
    });

    let must = "If `oomScoreAdj` is not set, the runtime MUST NOT change the value of `oom_score_adj`";
    let bundle = rt.bundle("oom", &["cat", "/proc/self/oom_score_adj"], |c| {
        c["process"].as_object_mut().unwrap().remove("oomScoreAdj");
    });
    // The runtime's own value is what the container inherits.
    let out = Command::new("sh")
        .args(["-c", "echo 123 > /proc/self/oom_score_adj && exec \"$@\"", "sh"])
        .arg(runc_bin())
        .args(["--root", s(&rt.root), "run", "--bundle", s(&bundle), "oom"])
        .output()
        .unwrap();
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "123\n"), "{must}\n{}", stderr(&out));
    let must = "If `oomScoreAdj` is set, the runtime MUST set `oom_score_adj` to the given value";
    runs(&rt, "oom-set", must, &["cat", "/proc/self/oom_score_adj"], "456\n", |c| {
        c["process"]["oomScoreAdj"] = json!(456)
    });

    let must = "hooks: `path` MUST be absolute";
    refused(&rt, "hook-path", must, "hooks.poststart[0].path", |c| {
        c["hooks"] = json!({"poststart": [{"path": "bin/true"}]})
    });
    let must = "hooks: If set, `timeout` MUST be greater than zero";
    refused(&rt, "hook-timeout", must, "hooks.poststart[0].timeout", |c| {
        c["hooks"] = json!({"poststart": [{"path": "/bin/true", "timeout": 0}]})
    });
}

/// config-linux.md: namespaces.
#[test]
fn namespaces_new_joined_inherited_refused() {
    let rt = Runc::new("conf-ns");
    let own = |kind: &str| std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap().display().to_string();
    // A process in IPC and UTS namespaces of its own, for the container to join by path.
    let mut holder = Command::new("unshare").args(["--ipc", "--uts", "sleep", "60"]).spawn().unwrap();
    let ns_of = |kind: &str| {
        for _ in 0..100 {
            let link = std::fs::read_link(format!("/proc/{}/ns/{kind}", holder.id())).unwrap();
            if link.display().to_string() != own(kind) {
                return link.display().to_string();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("unshare made no {kind} namespace");
    };
    let (holder_ipc, holder_uts) = (ns_of("ipc"), ns_of("uts"));
    let path = |kind: &str| format!("/proc/{}/ns/{kind}", holder.id());
    let set_path = |c: &mut Value, kind: &str, path: &str| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == kind {
                ns["path"] = json!(path);
            }
        }
    };

    let must = "The runtime MUST place the container process in the namespace associated with that `path`";
    let ipc_path = path("ipc");
    let expected = format!("{holder_ipc}\n");
    runs(&rt, "joined", must, &["readlink", "/proc/self/ns/ipc"], &expected, |c| {
        set_path(c, "ipc", &ipc_path)
    });

    let must = "If `path` is not specified, the runtime MUST create a new container namespace of type `type`";
    let (status, out, err) =
        run_with(&rt, "new", &sh("readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts"), |_| {});
    assert_eq!(status, 0, "{err}");
    for line in out.lines() {
        assert!(line != own("ipc") && line != own("uts") && line != holder_ipc, "{must}: {out}");
    }

    let must = "If a namespace type is not specified in the `namespaces` array, the container MUST \
                inherit the runtime namespace of that type";
    let expected = format!("{}\n", own("uts"));
    runs(&rt, "inherited", must, &["readlink", "/proc/self/ns/uts"], &expected, |c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().retain(|ns| ns["type"] != "uts");
        c.as_object_mut().unwrap().remove("hostname");
    });

    let must =
        "The runtime MUST generate an error if `path` is not associated with a namespace of type `type`";
    let uts_path = path("uts");
    refused(&rt, "wrong-type", must, &format!("{uts_path} is not a namespace of type ipc"), |c| {
        set_path(c, "ipc", &uts_path)
    });
    let must = "path: This value MUST be an absolute path in the runtime mount namespace";
    let relative = uts_path.trim_start_matches('/').to_string();
    refused(&rt, "relative", must, "linux.namespaces[", |c| set_path(c, "uts", &relative));
    let must = "If a `namespaces` field contains duplicated namespaces with same `type`, the runtime MUST \
                generate an error";
    refused(&rt, "twice", must, "\"ipc\" is given twice", |c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "ipc"}))
    });
    assert_ne!(holder_uts, own("uts"));
    let _ = holder.kill();
    let _ = holder.wait();
}

/// config-linux.md: devices, default devices; runtime-linux.md: /dev symbolic links.
#[test]
fn devices_default_devices_and_dev_links() {
    let rt = Runc::new("conf-dev");
    let must = "devices (array of objects, OPTIONAL) lists devices that MUST be available in the container";
    runs(
        &rt,
        "listed",
        must,
        &sh("stat -c '%F %t:%T %a %u:%g' /dev/fuse; stat -c %F /run/pipe"),
        "character special file a:e5 620 7:8\nfifo\n",
        |c| {
            c["linux"]["devices"] = json!([
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o620, "uid": 7, "gid": 8},
                {"path": "/run/pipe", "type": "p"},
            ])
        },
    );

    let must = "If a file already exists at `path` that does not match the requested device, the runtime \
                MUST generate an error";
    refused(&rt, "clash", must, "/etc/passwd", |c| {
        c["linux"]["devices"] = json!([{"path": "/etc/passwd", "type": "c", "major": 1, "minor": 3}])
    });
    // One that matches is the device asked for: fine.
    let bundle = rt.bundle("match", &["stat", "-c", "%t:%T", "/etc/null-node"], |c| {
        c["linux"]["devices"] = json!([{"path": "/etc/null-node", "type": "c", "major": 1, "minor": 3}])
    });
    let made = Command::new("mknod").arg(bundle.join("rootfs/etc/null-node")).args(["c", "1", "3"]).status();
    assert!(made.unwrap().success());
    let out = rt.run(&["run", "--bundle", s(&bundle), "match"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "1:3\n"), "{must}: {}", stderr(&out));

    let must = "`major, minor` (int64, REQUIRED unless `type` is `p`)";
    refused(&rt, "no-major", must, "linux.devices[0].major", |c| {
        c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "minor": 229}])
    });

    let must = "In addition to any devices configured with this setting, the runtime MUST also supply \
                default devices";
    let script = "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T' /dev/$d; done; \
                  readlink /dev/ptmx";
    runs(
        &rt,
        "defaults",
        must,
        &sh(script),
        "/dev/null character special file 1:3\n/dev/zero character special file 1:5\n\
         /dev/full character special file 1:7\n/dev/random character special file 1:8\n\
         /dev/urandom character special file 1:9\n/dev/tty character special file 5:0\npts/ptmx\n",
        |_| {},
    );
    // "/dev/console is set up if terminal is enabled in the config by bind mounting the
    // pseudoterminal pty to /dev/console."
    let bundle = rt.bundle("console", &sh("stat -c '%F %t' /dev/console; tty"), |c| {
        c["process"]["terminal"] = true.into()
    });
    let mut cmd = Command::new(runc_bin());
    cmd.arg("--root").arg(&rt.root).args(["run", "--bundle", s(&bundle), "console"]);
    let (child, mut master) = spawn_on_terminal(cmd, Some((24, 80)));
    let seen = read_until(&mut master, "/dev/pts/0");
    let out = wait_or_kill(child, Duration::from_secs(20));
    assert_eq!(code(&out), 0, "{seen:?}");
    // devpts's major number is 136 (0x88).
    assert!(seen.contains("character special file 88\r\n/dev/pts/0"), "{must}: /dev/console: {seen:?}");

    let must = "runtimes MUST create default symlinks if the source file exists after processing `mounts`";
    runs(
        &rt,
        "links",
        must,
        &sh("for l in fd stdin stdout stderr; do readlink /dev/$l; done"),
        "/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\n",
        |_| {},
    );
}

/// config-linux.md: cgroupsPath; runtime.md: delete removes what create made, and only that.
#[test]
fn cgroups_path_attach_refuse_and_remove() {
    let rt = Runc::new("conf-cgroup");
    let (path, dir) = test_cgroup("conformance");

    let must = "In the case of an absolute path (starting with `/`), the runtime MUST take the path to be \
                relative to the cgroups mount point";
    let bundle = rt.bundle("placed", &["sleep", "100"], |c| c["linux"]["cgroupsPath"] = json!(path));
    let pid_file = rt.dir.0.join("pid");
    let out = rt.run(&["create", "--bundle", s(&bundle), "--pid-file", s(&pid_file), "placed"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let memory = cgroups.lines().find_map(|l| l.split_once(":memory:").map(|(_, p)| p)).unwrap();
    assert_eq!(Path::new(memory), path, "{must}");
    assert!(dir.is_dir());
    let must = "Deleting a container MUST delete the resources that were created during the `create` step";
    assert_eq!(code(&rt.run(&["delete", "--force", "placed"])), 0);
    assert!(!dir.exists(), "{must}: {} is left", dir.display());

    let must = "Runtimes MAY consider certain `cgroupsPath` values to be invalid, and MUST generate an \
                error if this is the case";
    refused(&rt, "up", must, "linux.cgroupsPath", |c| c["linux"]["cgroupsPath"] = json!("../../escape"));

    // A cgroup that exists already was not made by the container: spawner refuses it (an invalid
    // value) and leaves it where it is.
    let must = "Note that resources associated with the container, but not created by this container, \
                MUST NOT be deleted";
    std::fs::create_dir(&dir).unwrap();
    let (status, _, err) = run_with(&rt, "existing", &["true"], |c| c["linux"]["cgroupsPath"] = json!(path));
    let kept = dir.is_dir();
    let _ = std::fs::remove_dir(&dir);
    assert!(status != 0 && err.contains(s(&dir)), "{err}");
    assert!(kept, "{must}");
}

/// config-linux.md: seccomp, maskedPaths, readonlyPaths, intelRdt values the runtime must refuse.
#[test]
fn linux_values_that_must_be_refused() {
    let rt = Runc::new("conf-linux");
    let must = "seccomp syscalls: `names` MUST contain at least one entry";
    refused(&rt, "names", must, "linux.seccomp", |c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]})
    });
    let must = "maskedPaths: The values MUST be absolute paths in the container namespace";
    refused(&rt, "masked", must, "linux.maskedPaths[0]", |c| {
        c["linux"]["maskedPaths"] = json!(["proc/kcore"])
    });
    let must = "readonlyPaths: The values MUST be absolute paths in the container namespace";
    refused(&rt, "readonly", must, "linux.readonlyPaths[0]", |c| {
        c["linux"]["readonlyPaths"] = json!(["proc/sys"])
    });
    let must = "If no mounted `resctrl` pseudo-filesystem is available in the runtime mount namespace, \
                the runtime MUST generate an error";
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(" resctrl "), "this check assumes a host without resctrl mounted");
    refused(&rt, "rdt", must, "linux.intelRdt", |c| c["linux"]["intelRdt"] = json!({"closID": "c1"}));
    let must =
        "mounts: Destination of mount point: path inside container. This value MUST be an absolute path";
    refused(&rt, "dest", must, "mounts[", |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "rel", "type": "tmpfs", "source": "tmpfs"}))
    });
    let must = "The runtime MUST mount entries in the listed order";
    runs(&rt, "order", must, &sh("grep -c ' /m' /proc/mounts; ls /m"), "2\nn\n", |c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs"}));
        mounts.push(json!({"destination": "/m/n", "type": "tmpfs", "source": "tmpfs"}));
    });
}

/// runtime.md: the operations and the lifecycle.
#[test]
fn operations_and_lifecycle() {
    let rt = Runc::new("conf-life");
    let must = "This operation MUST generate an error if it is not provided the ID of a container";
    for op in ["state", "start", "kill", "delete"] {
        assert_ne!(code(&rt.run(&[op])), 0, "{op}: {must}");
    }
    let bundle_dir = rt.dir.0.join("b");
    let marker = rt.dir.0.join("marker");
    std::fs::create_dir(&marker).unwrap();
    let script = "echo started >> /marker/log; trap 'echo got USR1 >> /marker/log' USR1; \
                  while :; do sleep 0.05; done";
    let bundle = rt.bundle("b", &sh(script), |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/marker", "type": "bind", "source": s(&marker), "options": ["rbind"]}));
    });
    let must = "This operation MUST generate an error if it is not provided a path to the bundle and the \
                container ID";
    assert_ne!(code(&rt.run(&["create", "--bundle", s(&bundle)])), 0, "{must}");
    let must = "Attempting to query a container that does not exist MUST generate an error";
    assert_eq!(code(&rt.run(&["state", "l1"])), 1, "{must}");
    let must = "Attempting to start a container that does not exist MUST generate an error";
    assert_ne!(code(&rt.run(&["start", "l1"])), 0, "{must}");

    let out = rt.run(&["create", "--bundle", s(&bundle), "l1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let log = marker.join("log");
    let must = "Upon successful completion of this operation the `status` property of this container MUST \
                be `created`";
    assert_eq!(rt.status("l1"), "created", "{must}");
    std::thread::sleep(Duration::from_millis(200));
    let must = "the user-specified program (from `process`) MUST NOT be run at this time";
    assert!(!log.exists(), "{must}");
    let must = "Any updates to `config.json` after this step MUST NOT affect the container";
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(bundle_dir.join("config.json")).unwrap()).unwrap();
    config["process"]["args"] = json!(["sh", "-c", "echo changed >> /marker/log"]);
    std::fs::write(bundle_dir.join("config.json"), config.to_string()).unwrap();

    let out = rt.run(&["start", "l1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let wait_for = |text: &str| {
        for _ in 0..250 {
            if std::fs::read_to_string(&log).unwrap_or_default().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{text:?} never reached {}", log.display());
    };
    wait_for("started");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "started\n", "{must}");
    let must = "Upon successful completion of this operation the `status` property of this container MUST \
                be `running`";
    assert_eq!(rt.status("l1"), "running", "{must}");
    let must = "Attempting to start an already started container MUST have no effect on the container and \
                MUST generate an error";
    assert_ne!(code(&rt.run(&["start", "l1"])), 0, "{must}");
    assert_eq!(rt.status("l1"), "running", "{must}");
    let must = "This operation MUST send the specified signal to the process in the container";
    assert_eq!(code(&rt.run(&["kill", "l1", "USR1"])), 0);
    wait_for("got USR1");
    let must2 = "Attempting to delete a container whose process is still running MUST generate an error";
    assert_ne!(code(&rt.run(&["delete", "l1"])), 0, "{must2}");
    assert_eq!(rt.status("l1"), "running", "{must} / {must2}");

    assert_eq!(code(&rt.run(&["kill", "l1", "KILL"])), 0);
    let must = "When the process in the container is stopped ... the `status` property of this container \
                MUST be `stopped`";
    for _ in 0..250 {
        if rt.status("l1") == "stopped" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(rt.status("l1"), "stopped", "{must}");
    let must = "Attempting to send a signal to a container that is not running MUST have no effect on the \
                container and MUST generate an error";
    assert_ne!(code(&rt.run(&["kill", "l1", "TERM"])), 0, "{must}");
    assert_eq!(rt.status("l1"), "stopped", "{must}");
    let must = "Deleting a container MUST delete the resources that were created during the `create` step";
    assert_eq!(code(&rt.run(&["delete", "l1"])), 0);
    assert!(!rt.root.join("l1").exists(), "{must}");
    let must = "Attempting to delete a container that does not exist MUST generate an error";
    assert_eq!(code(&rt.run(&["delete", "l1"])), 1, "{must}");
    let must = "Once a container is deleted its ID MAY be used by a subsequent container";
    let (status, out, err) = run_with(&rt, "l1", &["echo", "again"], |_| {});
    assert_eq!((status, out.as_str()), (0, "again\n"), "{must}: {err}");

    // A process that has exited but that nobody has reaped yet (a zombie of the engine's shim,
    // which a subreaper stands for here) is stopped: delete takes it.
    let must = "When the process in the container is stopped, irrespective of it being as a result of a \
                `kill` operation or any other reason, the `status` property of this container MUST be \
                `stopped`";
    let bundle = rt.bundle("exits", &["true"], |_| {});
    let pid_file = rt.dir.0.join("exits.pid");
    let mut shim = Command::new(env!("CARGO_BIN_EXE_scenario"))
        .arg("hold-orphans")
        .arg(runc_bin())
        .args(["--root", s(&rt.root), "create", "--bundle", s(&bundle), "--pid-file", s(&pid_file), "exits"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut created = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(shim.stdout.as_mut().unwrap()), &mut created)
        .unwrap();
    assert_eq!(created.trim(), "0", "create under the stand-in shim");
    assert_eq!(code(&rt.run(&["start", "exits"])), 0);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let zombie = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'))
    };
    for _ in 0..250 {
        if zombie() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(zombie(), "the container's process is an unreaped zombie");
    let (status, deleted) = (rt.status("exits"), code(&rt.run(&["delete", "exits"])));
    drop(shim.stdin.take());
    let _ = shim.wait();
    assert_eq!((status.as_str(), deleted), ("stopped", 0), "{must}");
}

/// runtime.md: "Unless otherwise stated, generating an error MUST leave the state of the
/// environment as if the operation were never attempted", and a property that cannot be applied
/// creates no container.
#[test]
fn a_failed_create_leaves_nothing() {
    let rt = Runc::new("conf-fail");
    let (path, dir) = test_cgroup("conformance-fail");
    let must = "If the runtime cannot apply a property as specified in the configuration, it MUST generate \
                an error and a new container MUST NOT be created";
    let bundle = rt.bundle("f", &["true"], |c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/data", "type": "bind", "source": "/nonexistent/source", "options": ["rbind"]}));
    });
    let out = rt.run(&["create", "--bundle", s(&bundle), "f1"]);
    assert_eq!(code(&out), 1, "{must}");
    assert!(stderr(&out).contains("/nonexistent/source"), "{}", stderr(&out));
    assert_eq!(code(&rt.run(&["state", "f1"])), 1, "{must}");
    assert!(!rt.root.join("f1").exists(), "{must}: a state directory is left");
    assert!(!dir.exists(), "{must}: the cgroup {} is left", dir.display());
    assert!(!bundle.join("rootfs/data").exists(), "the mount point made for it is left");
}
