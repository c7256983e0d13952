//! Real engines driving spawner as their OCI runtime (`spawner-runc`), with Debian's packages, on
//! this host (`shared/notes/engines.md` says how): podman through conmon. Each engine runs in a
//! mount namespace of the test's own (its storage mounts end with it) and with a state of its own in
//! a temporary directory; it makes no cgroup (`--cgroups=disabled`, so nothing at a hierarchy root).

use integration_tests::*;
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
    assert_eq!((line(&out, "rm"), line(&out, "left")), ("0", "0"), "{out}");
}
