//! Real engines driving spawner as their OCI runtime (`spawner-runc`), with Debian's packages, on
//! this host (`shared/notes/engines.md` says how): podman through conmon, and containerd's runc shim
//! (containerd-shim-runc-v2) through `ctr`, through containerd's CRI plugin (with the `cri` client
//! of tests/cri-client in kubelet's place) and through dockerd 20.10. Each engine runs in a mount
//! namespace of the test's own (its storage mounts end with it) and with a state of its own in a
//! temporary directory. podman makes no cgroup (`--cgroups=disabled`); containerd and dockerd put
//! their containers' cgroups below a cgroup the test makes below its own memory cgroup, the one
//! hierarchy delegated here, and nothing else of the cgroup tree is writable for them.

use integration_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `script` with sh in a private mount namespace; returns its output, one `name: value` line
/// a check.
fn in_private_namespace(script: &str, env: &[(&str, String)]) -> String {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", script]);
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = wait_or_kill(cmd.spawn().unwrap(), Duration::from_secs(240));
    assert!(out.status.success(), "the script failed: {}\n{}", stdout(&out), stderr(&out));
    stdout(&out)
}

fn line<'a>(output: &'a str, name: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name:?} line in:\n{output}"))
}

/// Fails the test unless `program ARGS` can be run: an engine test never passes by skipping.
#[test]
fn podman_runs_containers_through_spawner() {
    assert!(
        Command::new("podman").arg("--version").output().is_ok(),
        "podman is missing: `cargo xtask test` installs it"
    );
    let dir = StateDir::new("podman");
    std::fs::write(
        dir.0.join("containers.conf"),
        format!(
            "[engine]\nruntime = \"spawner\"\nruntime_supports_nocgroup = [\"spawner\"]\nruntime_supports_json = [\"spawner\"]\n\
             cgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n[engine.runtimes]\nspawner = [\"{}\"]\n\
             [containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\nnetns = \"none\"\n",
            runc_bin().display()
        ),
    )
    .unwrap();
    let d = dir.0.display().to_string();
    std::fs::write(
        dir.0.join("storage.conf"),
        format!("[storage]\ndriver = \"overlay\"\nrunroot = \"{d}/runroot\"\ngraphroot = \"{d}/graph\"\n"),
    )
    .unwrap();
    let script = r#"
set -u
export CONTAINERS_CONF="$D/containers.conf" CONTAINERS_STORAGE_CONF="$D/storage.conf"
P="timeout 60 podman --root $D/graph --runroot $D/runroot --cgroup-manager cgroupfs"
R="--cgroups=disabled --network none"
$P load -q -i "$IMG" >/dev/null 2>&1
echo "runtime: $($P info --format '{{.Host.OCIRuntime.Path}}')"
out=$($P run --rm $R busybox:latest sh -c 'echo out; id -u; exit 3'); echo "run: $? $(echo $out)"
$P run -d --name web $R busybox:latest sh -c 'trap "echo got TERM; exit 0" TERM; echo up; while :; do sleep 0.1; done' >/dev/null
echo "detach: $?"
for i in $(seq 50); do $P logs web 2>/dev/null | grep -q up && break; sleep 0.1; done
echo "logs: $($P logs web | tr '\n' ' ')"
echo "exec: $($P exec web sh -c 'echo in the container; cat /proc/1/cmdline | tr "\0" " "' | tr '\n' ' ')"
$P exec web sh -c 'exit 4'; echo "exec status: $?"
$P exec web no-such-program >/dev/null 2>&1; echo "exec missing: $?"
echo "exec user: $($P exec -u 1000 web id -u)"
$P stop -t 5 web >/dev/null; echo "stop: $?"
echo "stopped logs: $($P logs web | tr '\n' ' ')"
$P rm web >/dev/null; echo "rm: $?"
# -t: conmon gets the pty master through --console-socket.
echo "exec tty: $($P run -d --name t $R busybox:latest sleep 100 >/dev/null; $P exec -t t sh -c 'tty; echo $((6 * 7))' | tr -d '\r' | tr '\n' ' ')"
echo "run tty: $($P run --rm -t $R busybox:latest tty | tr -d '\r')"
# kill (SIGKILL by default), and stop's SIGTERM, SIGKILL after -t seconds for a process that ignores it.
$P kill t >/dev/null; echo "kill: $? $($P wait t)"
$P run -d --name deaf $R busybox:latest sh -c 'trap "" TERM; while :; do sleep 0.1; done' >/dev/null
$P stop -t 1 deaf >/dev/null; echo "stop escalates: $? $($P inspect -f '{{.State.ExitCode}}' deaf)"
$P rm t deaf >/dev/null; echo "rm both: $?"
echo "left: $($P ps -aq | wc -l)"
"#;
    let env = [("D", d.clone()), ("IMG", image("busybox-docker.tar").display().to_string())];
    let out = in_private_namespace(script, &env);
    assert_eq!(line(&out, "runtime"), runc_bin().display().to_string(), "{out}");
    assert_eq!(line(&out, "run"), "3 out 0", "{out}");
    assert_eq!(line(&out, "detach"), "0", "{out}");
    assert_eq!(line(&out, "logs"), "up ", "{out}");
    assert!(line(&out, "exec").starts_with("in the container sh -c trap"), "{out}");
    assert_eq!(line(&out, "exec status"), "4", "{out}");
    assert_eq!(
        line(&out, "exec missing"),
        "127",
        "podman maps runc's 'executable file not found' to 127: {out}"
    );
    assert_eq!(line(&out, "exec user"), "1000", "{out}");
    // podman stop sends SIGTERM through spawner-runc kill; the trap ran.
    assert_eq!(line(&out, "stop"), "0", "{out}");
    assert_eq!(line(&out, "stopped logs"), "up got TERM ", "{out}");
    assert_eq!(line(&out, "exec tty"), "/dev/pts/0 42 ", "{out}");
    assert_eq!(line(&out, "run tty"), "/dev/pts/0", "{out}");
    assert_eq!(line(&out, "kill"), "0 137", "{out}");
    assert_eq!(line(&out, "stop escalates"), "0 137", "SIGKILL once the timeout passed: {out}");
    assert_eq!(line(&out, "rm both"), "0", "{out}");
    assert_eq!((line(&out, "rm"), line(&out, "left")), ("0", "0"), "{out}");
}

/// A cgroup below the test's own v1 memory cgroup, the engines' cgroup parent; removed, with
/// whatever an engine left below it, when dropped.
struct EngineCgroup {
    dir: PathBuf,
    /// Its path in the hierarchy (what `ctr --cgroup`, `dockerd --cgroup-parent` and
    /// `cgroupsPath` take).
    path: String,
}

impl EngineCgroup {
    fn new(test: &str) -> EngineCgroup {
        let own = own_memory_cgroup().expect("no memory cgroup in /proc/self/cgroup");
        let rel = own.strip_prefix("/sys/fs/cgroup/memory").unwrap_or_else(|_| {
            panic!(
                "{}: the engine tests confine engines to a hybrid host's v1 memory hierarchy",
                own.display()
            )
        });
        assert!(
            !rel.as_os_str().is_empty(),
            "the test runs in the memory hierarchy's root: no cgroup is delegated to it"
        );
        let name = format!("spawner-{test}-{}", std::process::id());
        let dir = own.join(&name);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let path = Path::new("/").join(rel).join(name).display().to_string();
        EngineCgroup { dir, path }
    }
}

impl Drop for EngineCgroup {
    fn drop(&mut self) {
        fn deepest_first(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    deepest_first(&e.path(), out);
                }
            }
            out.push(dir.to_path_buf());
        }
        // Every process of the engine's PID namespace is dead by now, but the kernel may take a
        // moment to empty their cgroups.
        for _ in 0..100 {
            let mut dirs = Vec::new();
            deepest_first(&self.dir, &mut dirs);
            if dirs.iter().all(|d| std::fs::remove_dir(d).is_ok()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("warning: could not remove {}", self.dir.display());
    }
}

/// Runs [`CONFINE`] then `script` with sh as PID 1 of a new PID namespace, in a private mount
/// namespace: whatever the engines leave running (daemons, shims, containers) is killed with it when
/// the script ends, or when the test kills `unshare` on a hang (`--kill-child`), and their mounts go
/// with the mount namespace. Returns the script's output, one `name: value` line a check, then its
/// stderr and the end of each daemon's log (`DIR/*.log`), for failure messages.
fn in_engine_namespace(script: &str, dir: &Path, env: &[(&str, String)]) -> String {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc", "--kill-child"]);
    cmd.args(["sh", "-c", &format!("{CONFINE}\n{script}")]);
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = wait_or_kill(cmd.spawn().unwrap(), Duration::from_secs(240));
    let mut text = format!("{}\n--- stderr:\n{}", stdout(&out), stderr(&out));
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().extension().is_some_and(|x| x == "log") {
            let log = std::fs::read_to_string(e.path()).unwrap_or_default();
            let last: Vec<&str> = log.lines().rev().take(15).collect();
            text += &format!("--- {} (end):\n", e.path().display());
            last.iter().rev().for_each(|l| text += &format!("{l}\n"));
        }
    }
    assert!(out.status.success(), "the script failed:\n{text}");
    text
}

/// The start of the containerd and dockerd scripts (engines.md), in the engine namespace: `$D` is
/// the test's directory, `$CG` its cgroup ([`EngineCgroup`]), both given by the test.
///
/// The cgroup tree becomes read-only but for `$CG`, so that no engine can make a cgroup anywhere
/// else. Of the hierarchies only memory stays (ours), and devices (dockerd refuses to start without
/// it; the tests unmount it before they make a container): spawner, given a cgroup path, makes the container's cgroup
/// in every v1 hierarchy it sees, as runc does, and only memory is delegated to this test; a
/// hierarchy that is not mounted is skipped. /run becomes a tmpfs of the namespace's own: containerd
/// 1.6 puts its shims' sockets in /run/containerd/s whatever its state directory. Then containerd
/// starts with everything of its own in `$D`, and without the CRI plugin unless `$CRI_TOML` holds
/// the plugin's configuration; `$C` is ctr for it.
const CONFINE: &str = r#"
set -u
die() { echo "$*" >&2; exit 1; }
host_links=$(ls /sys/class/net | tr '\n' ' ')
mount -t tmpfs -o mode=755 tmpfs /run || die "tmpfs on /run"
mount -o remount,bind,ro /sys/fs/cgroup || die "remount /sys/fs/cgroup"
for h in /sys/fs/cgroup/*; do
    mountpoint -q "$h" || continue
    case ${h##*/} in
        memory|devices) mount -o remount,bind,ro "$h" || die "remount $h";;
        *) umount "$h" || die "umount $h";;
    esac
done
mount --bind "$CG" "$CG" && mount -o remount,bind,rw "$CG" || die "bind $CG"
{
    printf '%s\n' 'version = 2' "root = \"$D/containerd-root\"" "state = \"$D/containerd-state\""
    [ -n "${CRI_TOML:-}" ] || echo 'disabled_plugins = ["io.containerd.grpc.v1.cri"]'
    printf '%s\n' '[grpc]' "address = \"$D/containerd.sock\"" '[ttrpc]' "address = \"$D/containerd.sock.ttrpc\"" \
        '[plugins."io.containerd.internal.v1.opt"]' "path = \"$D/containerd-opt\"" "${CRI_TOML:-}"
} > "$D/containerd.toml"
containerd --config "$D/containerd.toml" > "$D/containerd.log" 2>&1 &
C="timeout 60 ctr --address $D/containerd.sock"
for i in $(seq 100); do $C version >/dev/null 2>&1 && break; sleep 0.1; done
$C version >/dev/null 2>&1 || die "containerd did not start"
memory_cgroup_of() { sed -n 's/^[0-9]*:memory://p' "/proc/$1/cgroup"; }
"#;

/// Checks what the containerd and dockerd scripts print at their end.
fn assert_all_gone_and_host_untouched(out: &str) {
    assert_eq!(line(out, "left"), "0 containers, 0 runtime states, 0 cgroups", "{out}");
    assert_eq!(line(out, "host links"), "unchanged", "no engine touched the host's network: {out}");
}

#[test]
fn containerd_runs_containers_through_spawner() {
    for (program, args) in [
        ("containerd", &["--version"][..]),
        ("ctr", &["--version"]),
        ("containerd-shim-runc-v2", &["-v"]),
        ("script", &["--version"]),
    ] {
        assert_installed(program, args);
    }
    let dir = StateDir::new("containerd");
    let cgroup = EngineCgroup::new("containerd");
    let script = r#"
umount /sys/fs/cgroup/devices || die "umount devices"
$C images import "$IMG" >/dev/null || die "ctr images import"
I=docker.io/library/busybox:latest
# ctr's default cpu.shares (1024, every cgroup's own) is no limit to spawner. Without --net-host,
# ctr gives each container a network namespace of its own.
R="--runc-binary $RUNC --runc-root $D/runc --fifo-dir $D/fifo"
out=$($C run --rm $R --cgroup $CGP/one $I one sh -c 'echo out; id -u; exit 3'); echo "run: $? $(echo $out)"
$C run -d $R --cgroup $CGP/web --log-uri "file://$D/web.out" $I web \
    sh -c 'trap "echo got TERM; exit 0" TERM; echo up; while :; do sleep 0.1; done'
echo "detach: $?"
for i in $(seq 50); do grep -q up "$D/web.out" 2>/dev/null && break; sleep 0.1; done
echo "logs: $(tr '\n' ' ' < "$D/web.out")"
grep -q '"startTime"' "$D/runc/default/web/state.json" && echo "runtime state: spawner"
echo "cgroup: $(memory_cgroup_of "$($C task ls | awk '$1 == "web" { print $2 }')")"
echo "exec: $($C task exec --exec-id e1 web sh -c 'echo in the container; cat /proc/1/cmdline | tr "\0" " "' | tr '\n' ' ')"
$C task exec --exec-id e2 web sh -c 'exit 4'; echo "exec status: $?"
echo "exec user: $($C task exec --exec-id e3 --user 1000 web id -u)"
echo "links: $($C task exec --exec-id e4 web ls /sys/class/net | tr '\n' ' ')"
# ctr -t wants a terminal of its own: script gives it one. ctr runs in the terminal's foreground
# process group (no `timeout` between them: it would put ctr in a group of its own, where setting
# the terminal raw stops it with SIGTTOU; that hung CI). script's stdin is a FIFO held open until
# it is done: at the end of its input, script 2.38 sends the terminal an EOF that can race the
# command's start.
mkfifo "$D/tty-in" && { sleep 120 > "$D/tty-in" & hold=$!; }
tty=$(timeout -k 5 30 script -qec "ctr --address $D/containerd.sock task exec -t --exec-id e5 web sh -c 'tty; echo \$((6 * 7))'" /dev/null < "$D/tty-in")
echo "exec tty: $(echo "$tty" | tr -d '\r' | grep -oE '^(/dev/pts/[0-9]+|42)$' | tr '\n' ' ')"
kill $hold
missing=$($C task exec --exec-id e6 web no-such-program 2>&1); echo "exec missing: $? $missing"
$C task kill web; echo "kill: $?"
for i in $(seq 50); do $C task ls | grep -q '^web .*STOPPED' && break; sleep 0.1; done
echo "stopped logs: $(tr '\n' ' ' < "$D/web.out")"
$C task delete web >/dev/null && $C container delete web; echo "rm: $?"
missing=$($C run --rm $R --cgroup $CGP/miss $I miss no-such-program 2>&1); echo "run missing: $? $missing"
echo "left: $($C container ls -q | wc -l) containers, $(ls "$D/runc/default" | wc -l) runtime states, $(find "$CG" -mindepth 1 -type d | wc -l) cgroups"
echo "host links: $([ "$(ls /sys/class/net | tr '\n' ' ')" = "$host_links" ] && echo unchanged)"
"#;
    let env = [
        ("D", dir.0.display().to_string()),
        ("CG", cgroup.dir.display().to_string()),
        ("CGP", cgroup.path.clone()),
        ("RUNC", runc_bin().display().to_string()),
        ("IMG", image("busybox-docker.tar").display().to_string()),
    ];
    let out = in_engine_namespace(script, &dir.0, &env);
    assert_eq!(line(&out, "run"), "3 out 0", "{out}");
    assert_eq!(line(&out, "detach"), "0", "{out}");
    assert_eq!(line(&out, "logs"), "up ", "{out}");
    assert_eq!(line(&out, "runtime state"), "spawner", "spawner-runc made the container: {out}");
    assert_eq!(line(&out, "cgroup"), format!("{}/web", cgroup.path), "{out}");
    assert!(line(&out, "exec").starts_with("in the container sh -c trap"), "{out}");
    assert_eq!(line(&out, "exec status"), "4", "{out}");
    assert_eq!(line(&out, "exec user"), "1000", "{out}");
    assert_eq!(line(&out, "links"), "lo ", "the container has a network namespace of its own: {out}");
    assert_eq!(line(&out, "exec tty"), "/dev/pts/0 42 ", "{out}");
    // ctr has no exit status of its own for a process that never ran: it says why, and exits 1.
    let not_found = r#"exec: "no-such-program": executable file not found in $PATH"#;
    let missing = line(&out, "exec missing");
    assert!(missing.starts_with("1 ") && missing.contains(not_found), "{out}");
    // ctr task kill sends SIGTERM through spawner-runc kill; the trap ran.
    assert_eq!(line(&out, "kill"), "0", "{out}");
    assert_eq!(line(&out, "stopped logs"), "up got TERM ", "{out}");
    assert_eq!(line(&out, "rm"), "0", "{out}");
    let missing = line(&out, "run missing");
    assert!(missing.starts_with("1 ") && missing.contains(not_found), "{out}");
    assert_all_gone_and_host_untouched(&out);
}

/// containerd's CRI plugin, the path kubelet drives, with the `cri` client (tests/cri-client) in
/// kubelet's place: a pod on the host network whose sandbox (pause) and containers run through
/// spawner-runc, picked by a runtime handler as a RuntimeClass picks it. No CNI: host network only.
#[test]
fn containerd_cri_runs_pods_through_spawner() {
    for (program, args) in [("containerd", &["--version"][..]), ("containerd-shim-runc-v2", &["-v"])] {
        assert_installed(program, args);
    }
    let cri = cri_client_bin();
    let dir = StateDir::new("containerd-cri");
    let cgroup = EngineCgroup::new("containerd-cri");
    let d = dir.0.display();
    // containerd gives every sandbox cpu.shares 2, a limit in the v1 cpu hierarchy, which is not
    // delegated to the test (machine.md): spawner refuses a limit it cannot apply, as runc does. The
    // runtime containerd calls is spawner-runc behind this script, which takes that one setting out
    // of the config.json it is given and changes nothing else (the test's containers ask for no cpu
    // shares).
    let runtime = dir.0.join("spawner-runc-memory-only");
    let wrapper = r#"#!/bin/sh
for a; do [ "${prev:-}" = --bundle ] && sed -i 's/,"cpu":{"shares":2}//' "$a/config.json"; prev=$a; done
exec RUNC "$@"
"#;
    std::fs::write(&runtime, wrapper.replace("RUNC", &runc_bin().display().to_string())).unwrap();
    std::fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The pause image is busybox running `sleep inf`: the sandbox must keep running for the
    // containers to join its namespaces. The pause container asks for oom_score_adj -998, which
    // needs CAP_SYS_RESOURCE: restricted to containerd's own. The stream server (exec, attach)
    // listens on loopback, on a port of the kernel's choosing.
    let cri_toml = format!(
        r#"[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/library/pause:latest"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "spawner"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.spawner]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.spawner.options]
      BinaryName = "{runtime}"
      Root = "{d}/runc"
      SystemdCgroup = false
"#,
        runtime = runtime.display()
    );
    let script = r#"
umount /sys/fs/cgroup/devices || die "umount devices"
K="timeout 60 $CRI --socket $D/containerd.sock"
for i in $(seq 100); do $K version >/dev/null 2>&1 && break; sleep 0.1; done
$K version >/dev/null || die "the CRI plugin does not answer"
$C -n k8s.io images import "$IMG" >/dev/null && $C -n k8s.io images import "$PAUSE" >/dev/null || die "ctr images import"
for i in $(seq 50); do [ "$($K images | grep -c -e /busybox:latest -e /pause:latest)" = 2 ] && break; sleep 0.1; done
# kubelet makes the pod's cgroup, the pod's cgroup parent, and removes it once the pod is gone.
mkdir "$CG/pod" || die "mkdir the pod cgroup"
mkdir "$D/logs"
POD="--pod web --namespace spawner-test --cgroup-parent $CGP/pod --log-dir $D/logs --host-network --runtime spawner"
pod=$($K runp $POD) || die "runp failed"
grep -qs '"startTime"' "$D/runc/k8s.io/$pod/state.json" && echo "sandbox runtime state: spawner"
sandbox=$($K inspectp "$pod" /info/info/pid)
echo "handler: $($K inspectp "$pod" /info/info/runtimeHandler)"
echo "sandbox state: $($K inspectp "$pod" /status/state)"
echo "sandbox cgroup: $(memory_cgroup_of "$sandbox" | sed "s/$pod\$/ID/")"
app=$($K create "$pod" $POD --name app --image busybox:latest --log-path app.log --memory 67108864 --pid pod -- \
    sh -c 'trap "echo got TERM; exit 0" TERM; echo out; echo err >&2; while :; do sleep 0.1; done') || die "create failed"
$K start "$app" || die "start failed"
grep -qs '"startTime"' "$D/runc/k8s.io/$app/state.json" && echo "runtime state: spawner"
pid=$($K status "$app" /info/info/pid)
echo "state: $($K status "$app" /status/state)"
# The namespaces the spec has the container join by path: those of the sandbox's process.
echo "joined by path: $($K status "$app" /info/info/runtimeSpec/linux/namespaces | grep -o '"path":"[^"]*","type":"[a-z]*"' \
    | sed "s|^\"path\":\"/proc/$sandbox/ns/[a-z]*\",\"type\":\"\([a-z]*\)\"\$|\1|" | sort | tr '\n' ' ')"
# And where the container's process is: in the sandbox's namespace (pod), in one the sandbox shares
# with the host (host), or in one of its own (own).
same() { [ "$(readlink "/proc/$1/ns/$3")" = "$(readlink "/proc/$2/ns/$3")" ]; }
echo "namespaces: $(for n in pid ipc uts net; do
    if ! same "$pid" "$sandbox" $n; then w=own; elif same "$sandbox" $$ $n; then w=host; else w=pod; fi
    printf '%s ' "$n:$w"; done)"
echo "cgroup: $(memory_cgroup_of "$pid" | sed "s/$app\$/ID/")"
echo "memory: $(cat "/sys/fs/cgroup/memory$(memory_cgroup_of "$pid")/memory.limit_in_bytes")"
for i in $(seq 50); do grep -qs ' err$' "$D/logs/app.log" && grep -qs ' out$' "$D/logs/app.log" && break; sleep 0.1; done
# CRI log lines: TIME STREAM F(ull line) TEXT.
echo "logs: $(cut -d' ' -f2- "$D/logs/app.log" | sort | tr '\n' ' ')"
out=$($K exec-sync "$app" -- sh -c 'echo in the pod; cat /proc/1/cmdline | tr "\0" " "; exit 3'); echo "exec-sync: $? $(echo $out)"
job=$($K create "$pod" $POD --name job --image busybox:latest --log-path job.log -- sh -c 'exit 7') && $K start "$job" || die "job failed"
for i in $(seq 50); do [ "$($K status "$job" /status/state)" = 2 ] && break; sleep 0.1; done
echo "job exit: $($K status "$job" /status/state) $($K status "$job" /status/exit_code)"
$K stop "$app" 5; echo "stop: $?"
echo "stopped: $($K status "$app" /status/state) $($K status "$app" /status/exit_code) $(grep -c ' got TERM$' "$D/logs/app.log")"
$K rm "$app" && $K rm "$job"; echo "rm: $?"
$K stopp "$pod" && $K rmp "$pod"; echo "rmp: $?"
rmdir "$CG/pod"
echo "left: $($C -n k8s.io container ls -q | wc -l) containers, $(ls "$D/runc/k8s.io" | wc -l) runtime states, $(find "$CG" -mindepth 1 -type d | wc -l) cgroups"
echo "pods left: $($K pods | wc -l)"
echo "host links: $([ "$(ls /sys/class/net | tr '\n' ' ')" = "$host_links" ] && echo unchanged)"
"#;
    let env = [
        ("D", dir.0.display().to_string()),
        ("CG", cgroup.dir.display().to_string()),
        ("CGP", cgroup.path.clone()),
        ("CRI", cri.display().to_string()),
        ("CRI_TOML", cri_toml),
        ("IMG", image("busybox-docker.tar").display().to_string()),
        ("PAUSE", image("pause.tar").display().to_string()),
    ];
    let out = in_engine_namespace(script, &dir.0, &env);
    assert_eq!(line(&out, "sandbox runtime state"), "spawner", "spawner-runc made the sandbox: {out}");
    assert_eq!(line(&out, "handler"), "spawner", "{out}");
    assert_eq!(line(&out, "sandbox state"), "0", "SANDBOX_READY: {out}");
    assert_eq!(line(&out, "sandbox cgroup"), format!("{}/pod/ID", cgroup.path), "{out}");
    assert_eq!(line(&out, "runtime state"), "spawner", "spawner-runc made the container: {out}");
    assert_eq!(line(&out, "state"), "1", "CONTAINER_RUNNING: {out}");
    assert_eq!(line(&out, "joined by path"), "ipc network pid uts ", "{out}");
    // The pod is on the host network: its sandbox keeps the host's network and UTS namespaces.
    assert_eq!(line(&out, "namespaces"), "pid:pod ipc:pod uts:host net:host ", "{out}");
    assert_eq!(line(&out, "cgroup"), format!("{}/pod/ID", cgroup.path), "{out}");
    assert_eq!(line(&out, "memory"), "67108864", "{out}");
    assert_eq!(line(&out, "logs"), "stderr F err stdout F out ", "{out}");
    // The pod's PID 1 is the sandbox's pause process.
    assert_eq!(line(&out, "exec-sync"), "3 in the pod sleep inf", "{out}");
    assert_eq!(line(&out, "job exit"), "2 7", "CONTAINER_EXITED, its exit code: {out}");
    // StopContainer sends SIGTERM through spawner-runc kill; the trap ran.
    assert_eq!(line(&out, "stop"), "0", "{out}");
    assert_eq!(line(&out, "stopped"), "2 0 1", "{out}");
    assert_eq!((line(&out, "rm"), line(&out, "rmp")), ("0", "0"), "{out}");
    assert_eq!(line(&out, "pods left"), "0", "{out}");
    assert_all_gone_and_host_untouched(&out);
}

#[test]
fn dockerd_runs_containers_through_spawner() {
    // Debian's docker.io client, not another one earlier in PATH: it matches dockerd 20.10.
    for (program, args) in [
        ("containerd", &["--version"][..]),
        ("containerd-shim-runc-v2", &["-v"]),
        ("dockerd", &["--version"]),
        ("/usr/bin/docker", &["--version"]),
    ] {
        assert_installed(program, args);
    }
    let dir = StateDir::new("dockerd");
    let cgroup = EngineCgroup::new("dockerd");
    let script = r#"
# dockerd writes its key.json into /etc/docker: a directory of the test's own there.
mkdir -p "$D/etc-docker" "$D/client" && mount --bind "$D/etc-docker" /etc/docker || die "bind /etc/docker"
# No network of dockerd's making: no bridge, iptables, forwarding or proxy; containers get none.
dockerd --containerd "$D/containerd.sock" --data-root "$D/data" --exec-root "$D/exec" \
    --pidfile "$D/dockerd.pid" -H "unix://$D/docker.sock" \
    --bridge none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --userland-proxy=false --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "$CGP" \
    --add-runtime "spawner=$RUNC" > "$D/dockerd.log" 2>&1 &
export DOCKER_CONFIG="$D/client"
K="timeout 60 /usr/bin/docker -H unix://$D/docker.sock"
for i in $(seq 150); do $K version >/dev/null 2>&1 && break; sleep 0.1; done
$K version >/dev/null 2>&1 || die "dockerd did not start"
# dockerd checked at start-up that a devices hierarchy is mounted; spawner would put the
# container's device cgroup there, outside what is delegated to the test (see CONFINE).
umount /sys/fs/cgroup/devices || die "umount devices"
$K load -q -i "$IMG" >/dev/null || die "docker load"
R="--runtime spawner --network none"
out=$($K run --rm $R busybox:latest sh -c 'echo out; id -u; exit 3' 2>&1); echo "run: $? $(echo $out)"
$K run -d --name web $R busybox:latest sh -c 'trap "echo got TERM; exit 0" TERM; echo up; while :; do sleep 0.1; done' >/dev/null
echo "detach: $?"
for i in $(seq 50); do $K logs web 2>/dev/null | grep -q up && break; sleep 0.1; done
echo "logs: $($K logs web | tr '\n' ' ')"
id=$($K inspect -f '{{.Id}}' web)
echo "runtime: $($K inspect -f '{{.HostConfig.Runtime}}' web)"
grep -qs '"startTime"' "$D"/exec/runtime-*/moby/"$id"/state.json && echo "runtime state: spawner"
echo "cgroup: $(memory_cgroup_of "$($K inspect -f '{{.State.Pid}}' web)" | sed "s/$id\$/ID/")"
echo "exec: $($K exec web sh -c 'echo in the container; cat /proc/1/cmdline | tr "\0" " "' | tr '\n' ' ')"
$K exec web sh -c 'exit 4'; echo "exec status: $?"
echo "exec user: $($K exec -u 1000 web id -u)"
echo "links: $($K exec web ls /sys/class/net | tr '\n' ' ')"
echo "exec tty: $($K exec -t web sh -c 'tty; echo $((6 * 7))' | tr -d '\r' | tr '\n' ' ')"
missing=$($K exec web no-such-program 2>&1); echo "exec missing: $? $missing"
$K stop -t 5 web >/dev/null; echo "stop: $?"
echo "stopped logs: $($K logs web | tr '\n' ' ')"
echo "exit code: $($K inspect -f '{{.State.ExitCode}}' web)"
$K rm web >/dev/null; echo "rm: $?"
missing=$($K run --rm $R busybox:latest no-such-program 2>&1); echo "run missing: $? $missing"
# --init: dockerd binds its docker-init (tini) in and makes it the process; its child is ours.
echo "init: $($K run --rm $R --init busybox:latest sh -c 'echo $(cat /proc/1/comm) $PPID')"
# -m, update and top, on a container that runs: the limit in its memory cgroup, from the host.
$K run -d --name lim $R -m 64m --memory-swap 64m busybox:latest sleep 100 >/dev/null
limit() { cat "/sys/fs/cgroup/memory$(memory_cgroup_of "$($K inspect -f '{{.State.Pid}}' lim)")/memory.limit_in_bytes"; }
echo "memory: $(limit)"
$K update -m 96m --memory-swap 96m lim >/dev/null; echo "update: $? $(limit)"
echo "top: $($K top lim | sed 1d | grep -c 'sleep 100')"
$K rm -f lim >/dev/null; echo "rm -f: $?"
echo "left: $($K ps -aq | wc -l) containers, $(ls "$D"/exec/runtime-*/moby 2>/dev/null | wc -l) runtime states, $(find "$CG" -mindepth 1 -type d | wc -l) cgroups"
echo "host links: $([ "$(ls /sys/class/net | tr '\n' ' ')" = "$host_links" ] && echo unchanged)"
"#;
    let env = [
        ("D", dir.0.display().to_string()),
        ("CG", cgroup.dir.display().to_string()),
        ("CGP", cgroup.path.clone()),
        ("RUNC", runc_bin().display().to_string()),
        ("IMG", image("busybox-docker.tar").display().to_string()),
    ];
    let out = in_engine_namespace(script, &dir.0, &env);
    assert_eq!(line(&out, "run"), "3 out 0", "{out}");
    assert_eq!(line(&out, "detach"), "0", "{out}");
    assert_eq!(line(&out, "logs"), "up ", "{out}");
    assert_eq!(line(&out, "runtime"), "spawner", "{out}");
    assert_eq!(line(&out, "runtime state"), "spawner", "spawner-runc made the container: {out}");
    assert_eq!(line(&out, "cgroup"), format!("{}/ID", cgroup.path), "{out}");
    assert!(line(&out, "exec").starts_with("in the container sh -c trap"), "{out}");
    assert_eq!(line(&out, "exec status"), "4", "{out}");
    assert_eq!(line(&out, "exec user"), "1000", "{out}");
    assert_eq!(line(&out, "links"), "lo ", "--network none: {out}");
    assert_eq!(line(&out, "exec tty"), "/dev/pts/0 42 ", "{out}");
    // docker exec reports 126 for any exec the runtime refuses (as with runc), with its reason.
    let not_found = r#"exec: "no-such-program": executable file not found in $PATH"#;
    let missing = line(&out, "exec missing");
    assert!(missing.starts_with("126 ") && missing.contains(not_found), "{out}");
    // docker stop sends SIGTERM through spawner-runc kill; the trap ran and the container exited 0.
    assert_eq!(line(&out, "stop"), "0", "{out}");
    assert_eq!(line(&out, "stopped logs"), "up got TERM ", "{out}");
    assert_eq!(line(&out, "exit code"), "0", "{out}");
    assert_eq!(line(&out, "rm"), "0", "{out}");
    // docker run maps the runtime's "executable file not found" to 127.
    let missing = line(&out, "run missing");
    assert!(missing.starts_with("127 ") && missing.contains(not_found), "{out}");
    assert_eq!(line(&out, "init"), "docker-init 1", "docker-init is PID 1, the shell its child: {out}");
    assert_eq!(line(&out, "memory"), "67108864", "{out}");
    assert_eq!(line(&out, "update"), "0 100663296", "{out}");
    assert_eq!(line(&out, "top"), "1", "docker top lists the container's process: {out}");
    assert_eq!(line(&out, "rm -f"), "0", "{out}");
    assert_all_gone_and_host_untouched(&out);
}
