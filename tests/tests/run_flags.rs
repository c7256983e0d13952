//! `docker run` parity (issue 12): the flags that become parts of the container's spec, each seen
//! from inside the container (or by `inspect`), and each refusal of bad input: one line, exit 125,
//! before anything is made.

use integration_tests::*;
use std::path::Path;

fn busybox() -> String {
    image("busybox-docker.tar").display().to_string()
}

/// `run --rm --network none FLAGS… busybox sh -c SCRIPT`.
fn sh(state: &StateDir, flags: &[&str], script: &str) -> std::process::Output {
    let img = busybox();
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[&img, "sh", "-c", script]);
    state.run(&args)
}

/// [`sh`], which must succeed: its stdout.
fn ok(state: &StateDir, flags: &[&str], script: &str) -> String {
    let out = sh(state, flags, script);
    assert_eq!(code(&out), 0, "{flags:?} {script}: {}", stderr(&out));
    stdout(&out)
}

/// A refusal: exit 125, one line `spawner: …` containing `want`, and no container made.
fn refused(state: &StateDir, flags: &[&str], want: &str) {
    let out = sh(state, flags, "true");
    let err = stderr(&out);
    assert_eq!(code(&out), 125, "{flags:?}: {err}");
    assert!(err.starts_with("spawner: ") && err.lines().count() == 1, "{flags:?}: {err:?}");
    assert!(err.contains(want), "{flags:?}: {err:?} lacks {want:?}");
    let containers = state.0.join("containers");
    let made = std::fs::read_dir(&containers).map(|d| d.count()).unwrap_or(0);
    assert_eq!(made, 0, "{flags:?} left something in {}", containers.display());
}

fn host_namespace(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap().display().to_string()
}

#[test]
fn env_file_comes_before_e() {
    let state = StateDir::new("flags-envfile");
    let file = state.0.join("app.env");
    std::fs::write(&file, "# settings\n\nA=from-file\n  B=two words \nPASSED\nUNSET_HERE\n").unwrap();
    let f = file.display().to_string();
    let mut cmd = state.spawner(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--env-file",
        &f,
        "-e",
        "B=from-e",
        &busybox(),
        "sh",
        "-c",
        "echo \"$A|$B|$PASSED|${UNSET_HERE-unset}\"",
    ]);
    cmd.env("PASSED", "from-spawner").env_remove("UNSET_HERE");
    let out = run(cmd);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "from-file|from-e|from-spawner|unset\n");
    // Without -e the file's value, trailing space and all.
    assert_eq!(ok(&state, &["--env-file", &f], "echo \"[$B]\""), "[two words ]\n");

    // `start` runs it with the environment and labels it was made with: the files are not read
    // again, nor the shell's variables.
    let labels = state.0.join("app.labels");
    std::fs::write(&labels, "tier=web\n").unwrap();
    let l = labels.display().to_string();
    let script = "echo \"$A|$PASSED\"";
    let args = [
        "run",
        "--network",
        "none",
        "--name",
        "kept",
        "--env-file",
        &f,
        "--label-file",
        &l,
        &busybox(),
        "sh",
        "-c",
        script,
    ];
    let mut cmd = state.spawner(&args);
    cmd.env("PASSED", "at-run");
    assert_eq!(stdout(&run(cmd)), "from-file|at-run\n");
    std::fs::remove_file(&file).unwrap();
    std::fs::remove_file(&labels).unwrap();
    let mut cmd = state.spawner(&["start", "-a", "kept"]);
    cmd.env("PASSED", "at-start");
    let out = run(cmd);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "from-file|at-run\n"), "{}", stderr(&out));
    let out = state.run(&["inspect", "-f", "{{json .Config.Labels}}", "kept"]);
    assert!(stdout(&out).contains("\"tier\":\"web\""), "{}{}", stdout(&out), stderr(&out));
    state.run(&["rm", "kept"]);

    std::fs::write(&file, "GOOD=1\nBAD NAME=2\n").unwrap();
    refused(&state, &["--env-file", &f], "variable \"BAD NAME\" contains whitespace");
    refused(&state, &["--env-file", "/nonexistent/app.env"], "--env-file /nonexistent/app.env: No such file");
}

#[test]
fn labels_are_kept_for_inspect() {
    let state = StateDir::new("flags-labels");
    let file = state.0.join("labels");
    std::fs::write(&file, "# team labels\ntier=backend\nowner=file\n").unwrap();
    let f = file.display().to_string();
    let img = busybox();
    let out = state.run(&[
        "run",
        "--network",
        "none",
        "--name",
        "labelled",
        "--label-file",
        &f,
        "-l",
        "owner=ops",
        "--label",
        "empty",
        &img,
        "true",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = state.run(&["inspect", "-f", "{{json .Config.Labels}}", "labelled"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let labels: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    // The image's label (org.example.test) stays beside them.
    assert_eq!(
        labels,
        serde_json::json!({"empty": "", "org.example.test": "busybox", "owner": "ops", "tier": "backend"})
    );
    let out = state.run(&["rm", "labelled"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    refused(&state, &["--label", "=x"], "invalid label: empty name");
    refused(&state, &["--label-file", "/nonexistent/labels"], "--label-file /nonexistent/labels");
}

#[test]
fn cidfile_gets_the_id_and_is_never_overwritten() {
    let state = StateDir::new("flags-cidfile");
    let cid = state.0.join("cid");
    let c = cid.display().to_string();
    let out = ok(&state, &["--cidfile", &c], "hostname");
    let id = std::fs::read_to_string(&cid).unwrap();
    assert!(id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id:?}");
    // The default hostname is the ID's short form: the same container.
    assert_eq!(out.trim(), &id[..12]);
    refused(
        &state,
        &["--cidfile", &c],
        &format!("container ID file found, make sure the other container isn't running or delete {c}"),
    );
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id, "the file of the other container stays");
    // A run refused later leaves no empty file.
    std::fs::remove_file(&cid).unwrap();
    let out = state.run(&["run", "--rm", "--network", "none", "--cidfile", &c, "/nonexistent.tar", "true"]);
    assert_eq!(code(&out), 125);
    assert!(!cid.exists(), "an empty cidfile was left behind");
}

#[test]
fn no_init_runs_the_command_as_pid_1() {
    let state = StateDir::new("flags-init");
    let comm = "cat /proc/1/comm; echo $$";
    assert_eq!(ok(&state, &["--no-init"], comm), "sh\n1\n");
    // Our init (run from its sealed memfd) is PID 1, the command its child.
    for flags in [&["--init"][..], &[]] {
        let out = ok(&state, flags, comm);
        assert!(out.starts_with("memfd:spawner") && out.ends_with("\n2\n"), "{flags:?}: {out}");
    }
    let out = sh(&state, &["--init", "--no-init"], "true");
    assert_eq!(code(&out), 125, "{}", stderr(&out));
}

#[test]
fn tmpfs_mounts_with_docker_defaults_and_options() {
    let state = StateDir::new("flags-tmpfs");
    // busybox runs the applet its name says.
    let script = "grep -E ' /(scratch|run/app) ' /proc/mounts; cp /bin/busybox /scratch/true && /scratch/true && echo ran";
    let out = ok(&state, &["--tmpfs", "/scratch:size=2m,mode=1770,exec", "--tmpfs", "/run/app"], script);
    let scratch = out.lines().find(|l| l.contains(" /scratch ")).unwrap_or_else(|| panic!("{out}"));
    assert!(scratch.contains(" /scratch tmpfs rw,nosuid,nodev,"), "{scratch}");
    assert!(scratch.contains("size=2048k") && scratch.contains("mode=1770"), "{scratch}");
    assert!(!scratch.contains("noexec"), "{scratch}");
    let run = out.lines().find(|l| l.contains(" /run/app ")).unwrap_or_else(|| panic!("{out}"));
    assert!(run.contains(" /run/app tmpfs rw,nosuid,nodev,noexec,"), "{run}");
    assert!(out.ends_with("ran\n"), "{out}");
    // noexec by default, as Docker's.
    let out = sh(&state, &["--tmpfs", "/scratch"], "cp /bin/busybox /scratch/true && /scratch/true");
    assert_eq!(code(&out), 126, "{}", stderr(&out));

    refused(&state, &["--tmpfs", "scratch"], "must be absolute");
    refused(&state, &["--tmpfs", "/scratch:bogus=1"], "invalid tmpfs option \"bogus=1\"");
}

#[test]
fn shm_size_sets_dev_shm() {
    let state = StateDir::new("flags-shm");
    let df = "df -k /dev/shm | tail -1 | awk '{print $2}'";
    assert_eq!(ok(&state, &[], df), "65536\n");
    assert_eq!(ok(&state, &["--shm-size", "128m"], df), "131072\n");
    refused(&state, &["--shm-size", "lots"], "--shm-size lots: invalid size");
}

#[test]
fn ulimits_reach_the_process() {
    let state = StateDir::new("flags-ulimit");
    // At or below this machine's hard limits (raising one needs CAP_SYS_RESOURCE).
    let out = ok(
        &state,
        &["--ulimit", "nofile=1024:2048", "--ulimit", "core=0", "--ulimit", "nproc=500"],
        "grep -E 'Max (open files|core file size|processes)' /proc/self/limits",
    );
    let row = |name: &str| -> Vec<String> {
        let line = out.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{out}"));
        line[name.len()..].split_whitespace().take(2).map(String::from).collect()
    };
    assert_eq!(row("Max open files"), ["1024", "2048"]);
    assert_eq!(row("Max core file size"), ["0", "0"]);
    assert_eq!(row("Max processes"), ["500", "500"]);
    // Set before our init runs: the command's shell sees them as PID 1's children do.
    assert_eq!(ok(&state, &["--ulimit", "nofile=1000"], "ulimit -n"), "1000\n");

    refused(&state, &["--ulimit", "files=10"], "--ulimit files=10: invalid ulimit type \"files\"");
    refused(&state, &["--ulimit", "nofile=20:10"], "soft limit must not be above the hard limit: 20 > 10");
}

#[test]
fn sysctls_in_the_containers_namespaces() {
    let state = StateDir::new("flags-sysctl");
    let out = ok(
        &state,
        &["--sysctl", "kernel.shmmni=1234", "--sysctl", "net.ipv4.ip_unprivileged_port_start=80"],
        "cat /proc/sys/kernel/shmmni /proc/sys/net/ipv4/ip_unprivileged_port_start",
    );
    assert_eq!(out, "1234\n80\n");
    // The host's are untouched.
    let host = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    assert_ne!(host.trim(), "1234");

    refused(&state, &["--sysctl", "kernel.panic=1"], "--sysctl kernel.panic=1: not allowed");
    refused(&state, &["--sysctl", "vm.swappiness=1"], "not allowed");
    refused(&state, &["--ipc", "host", "--sysctl", "kernel.shmmni=1"], "not allowed with --ipc host");
    let img = busybox();
    let out =
        state.run(&["run", "--rm", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", &img, "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("not allowed with --network host"), "{}", stderr(&out));
}

#[test]
fn group_add_by_name_and_gid() {
    let state = StateDir::new("flags-groups");
    // The test image's /etc/group: app (1000, app's own), staff (50, app is a member), nogroup
    // (65534). The kernel keeps supplementary groups sorted.
    let out = ok(&state, &["--group-add", "nogroup", "--group-add", "4242", "-u", "app"], "id -G");
    assert_eq!(out, "1000 50 4242 65534\n");
    // Root too, and a group the user has already is not repeated.
    assert_eq!(ok(&state, &["--group-add", "root", "--group-add", "staff"], "id -G"), "0 50\n");
    let out = sh(&state, &["--group-add", "no-such-group"], "true");
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("unable to find group no-such-group"), "{}", stderr(&out));
}

#[test]
fn host_pid_ipc_and_uts_namespaces() {
    let state = StateDir::new("flags-hostns");
    let ns = "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts";
    let own: Vec<String> = ok(&state, &[], ns).lines().map(String::from).collect();
    let (pid, ipc, uts) = (host_namespace("pid"), host_namespace("ipc"), host_namespace("uts"));
    assert!(own[0] != pid && own[1] != ipc && own[2] != uts, "{own:?}");
    let shared: Vec<String> = ok(&state, &["--pid", "host", "--ipc", "host", "--uts", "host"], ns)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(shared, [pid, ipc, uts]);
    // One at a time: the others stay the container's own.
    let only_pid: Vec<String> = ok(&state, &["--pid", "host"], ns).lines().map(String::from).collect();
    assert!(only_pid[0] == host_namespace("pid") && only_pid[1] != host_namespace("ipc"), "{only_pid:?}");
    // The host's processes are visible with --pid host; our own test process among them.
    let me = std::process::id();
    assert_eq!(ok(&state, &["--pid", "host"], &format!("test -d /proc/{me} && echo seen")), "seen\n");
    // --uts host: the host's hostname, in HOSTNAME and /etc/hostname too.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let out = ok(&state, &["--uts", "host"], "hostname; echo $HOSTNAME; cat /etc/hostname");
    assert_eq!(out, format!("{host}\n{host}\n{host}\n"));
    // --ipc host: the host's /dev/shm.
    let marker = Path::new("/dev/shm").join(format!("spawner-test-ipc-{me}"));
    std::fs::write(&marker, "").unwrap();
    let seen = sh(&state, &["--ipc", "host"], &format!("test -e {}", marker.display()));
    let hidden = sh(&state, &[], &format!("test -e {}", marker.display()));
    std::fs::remove_file(&marker).unwrap();
    assert_eq!((code(&seen), code(&hidden)), (0, 1));

    refused(
        &state,
        &["--uts", "host", "--hostname", "web"],
        "conflicting options: --hostname and --uts host",
    );
    refused(&state, &["--pid", "container:x"], "--pid container:x: invalid PID mode");
    refused(&state, &["--ipc", "bogus"], "--ipc bogus: invalid IPC mode");
}

#[test]
fn memory_reservation_is_the_soft_limit() {
    let state = StateDir::new("flags-memres");
    // The container's memory cgroup (v1 here: the cgroup namespace makes it the root it sees).
    let script =
        "cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.low";
    assert_eq!(ok(&state, &["--memory-reservation", "32m"], script), format!("{}\n", 32 << 20));
    refused(
        &state,
        &["--memory", "64m", "--memory-reservation", "128m"],
        "--memory-reservation 128m: must not be above the memory limit (--memory 64m)",
    );
    refused(&state, &["--memory-reservation", "lots"], "--memory-reservation lots: invalid size");
}

#[test]
fn cpu_flags_reach_the_cgroup_or_are_refused() {
    let state = StateDir::new("flags-cpu");
    refused(&state, &["--cpuset-cpus", "0-9999"], "--cpuset-cpus 0-9999: requested CPUs are not available");
    refused(&state, &["--cpuset-cpus", "a-b"], "--cpuset-cpus a-b: invalid format");
    refused(&state, &["--cpuset-mems", "5"], "--cpuset-mems 5: requested memory nodes are not available");
    refused(&state, &["--cpu-shares", "x"], "--cpu-shares x: give a whole number");
    // Where the cpu controllers can be used (cgroup v2, or delegated v1 hierarchies), the
    // container's cgroup has the values; on a hybrid host without them the run says which
    // hierarchy it needs, rather than dropping the limit.
    let script = "cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus 2>/dev/null || \
                  cat /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpuset.cpus";
    let out = sh(&state, &["--cpu-shares", "512", "--cpuset-cpus", "0"], script);
    if code(&out) == 0 {
        let text = stdout(&out);
        assert!(text == "512\n0\n" || text == "20\n0\n", "{text}");
    } else {
        assert_eq!(code(&out), 125, "{}", stderr(&out));
        assert!(stderr(&out).contains("needs the v1 cpu"), "{}", stderr(&out));
    }
}

#[test]
fn domainname_swappiness_and_quiet() {
    let state = StateDir::new("flags-misc");
    assert_eq!(
        ok(&state, &["--domainname", "example.org"], "cat /proc/sys/kernel/domainname"),
        "example.org\n"
    );
    // memory.swappiness is v1's; on v2 the run says it is ignored and goes on.
    let out = ok(
        &state,
        &["--memory", "64m", "--memory-swappiness", "10"],
        "cat /sys/fs/cgroup/memory/memory.swappiness 2>/dev/null || echo v2",
    );
    assert!(out == "10\n" || out == "v2\n", "{out}");
    refused(&state, &["--memory-swappiness", "101"], "swappiness");
    refused(&state, &["--blkio-weight", "5"], "weight");
    // --cpu-quota with --cpus is Docker's conflict.
    refused(&state, &["--cpus", "1", "--cpu-quota", "50000"], "cpu");
}
