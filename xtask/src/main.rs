//! `cargo xtask <command>`: the project's build, test, demo and benchmark entry points. Each command
//! installs what it needs (Debian packages, the musl target) so that it works on a fresh machine.

mod bench;
mod bench_lifecycle;
mod bench_net;
mod bench_oci;
mod bench_pull;
mod bench_run;
mod engine_daemons;
mod images;
mod util;
mod vm;
mod vm_systemd;

use std::path::{Path, PathBuf};
use util::{apt_install, cmd, root, run, Result};

const MUSL: &str = "x86_64-unknown-linux-musl";

const USAGE: &str = "usage: cargo xtask <command>

  dist        build static musl release binaries into target/dist and print their sizes
  test        install what the tests need, build, lint (fmt, clippy) and run every test
  demo        build, make the demo image, and run it with spawner; then init alone as PID 1
  bench       all of the below, tables into docs/benchmarks.md
  bench init  init's size, idle RSS and reaping speed beside tini-static, dumb-init, catatonit
  bench run   start-to-exit of /bin/true beside crun, runc and bubblewrap
  bench oci   spawner-runc beside crun and runc on one OCI bundle: run, create + start + delete
  bench net   start-to-exit with --network none, bridge, bridge -p, pasta beside podman; iperf3
  bench lifecycle  run -d, exec, stop, rm of a detached container, and exec alone, beside podman
  bench pull  pulling busybox and Debian from a loopback registry beside skopeo and podman
  bench unpack  unpacking a ~320 MB layer beside GNU tar -x
  lint        cargo fmt --check and clippy -D warnings on both workspaces
  vm-test     boot a kernel under QEMU with init as PID 1 and run spawner's cgroup v2 checks there
  images      busybox test images in every archive form into target/images (--big: also big.tar)
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["dist"] => dist().map(drop),
        ["test"] => test(),
        ["demo"] => demo(),
        ["lint"] => lint(),
        ["bench", "init"] => bench::init(),
        ["bench", "run"] => bench_run::start_to_exit(),
        ["bench", "oci"] => bench_oci::oci(),
        ["bench", "pull"] => bench_pull::pull(),
        ["bench", "net"] => bench_net::net(),
        ["__bench-net-inner", spawner, image, work] => {
            bench_net::inner(Path::new(spawner), Path::new(image), Path::new(work))
        }
        ["bench", "lifecycle"] => bench_lifecycle::lifecycle(),
        ["__bench-lifecycle-inner", spawner, image, work] => {
            bench_lifecycle::inner(Path::new(spawner), Path::new(image), Path::new(work))
        }
        ["bench", "unpack"] => bench_run::unpack(),
        ["bench"] => bench::init()
            .and_then(|()| bench_run::start_to_exit())
            .and_then(|()| bench_oci::oci())
            .and_then(|()| bench_pull::pull())
            .and_then(|()| bench_net::net())
            .and_then(|()| bench_lifecycle::lifecycle())
            .and_then(|()| bench_run::unpack()),
        ["__bench-run-inner", rest @ ..] => match bench_run::work_paths(rest) {
            Some((spawner, image, bundle, work)) => bench_run::inner(&spawner, &image, &bundle, &work),
            None => Err("usage: __bench-run-inner SPAWNER IMAGE BUNDLE WORK".into()),
        },
        ["__bench-oci-inner", rest @ ..] => match bench_run::work_paths(rest) {
            Some((spawner, image, bundle, work)) => bench_oci::inner(&spawner, &image, &bundle, &work),
            None => Err("usage: __bench-oci-inner SPAWNER IMAGE BUNDLE WORK".into()),
        },
        ["vm-test"] => vm::test(None),
        ["images"] => images::build(false).map(drop),
        ["images", "--big"] => images::build(true).map(drop),
        ["images", "--debian"] => images::build_with(false, true).map(drop),
        ["__reap-bench", n] => bench::reap_helper(n.parse().unwrap_or(10_000)),
        _ => {
            eprint!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("xtask: {e}");
        std::process::exit(1);
    }
}

/// The musl target and the C toolchain for it (zstd's C code in spawner is built with musl-gcc).
fn ensure_toolchain() -> Result<()> {
    let installed = util::output(cmd("rustup").args(["target", "list", "--installed"]))?;
    if !installed.lines().any(|l| l.trim() == MUSL) {
        run(cmd("rustup").args(["target", "add", MUSL]))?;
    }
    apt_install(&["musl-tools"])
}

pub struct Dist {
    pub init: PathBuf,
    pub spawner: PathBuf,
    /// The tests' attack probe (tests/src/bin/probe.rs), static, to run inside containers.
    pub probe: PathBuf,
}

/// Builds the static binaries into target/dist.
pub fn dist() -> Result<Dist> {
    ensure_toolchain()?;
    let root = root();
    let dist = root.join("target/dist");
    std::fs::create_dir_all(&dist)?;
    run(cmd("cargo").current_dir(&root).args([
        "build",
        "--quiet",
        "--release",
        "--manifest-path",
        "init/Cargo.toml",
        "--target",
        MUSL,
        "--target-dir",
        "target/init",
    ]))?;
    let init = dist.join("init");
    util::copy(&root.join(format!("target/init/{MUSL}/release/init")), &init)?;
    // spawner embeds the init just built (see spawner/build.rs): one static file runs a container.
    run(cmd("cargo")
        .current_dir(&root)
        // An explicit target dir: the copy below must find what was built even when the caller
        // has CARGO_TARGET_DIR set.
        .args([
            "build",
            "--quiet",
            "--release",
            "--package",
            "spawner",
            "--target",
            MUSL,
            "--target-dir",
            "target",
        ])
        .env("SPAWNER_INIT_BIN", &init))?;
    let spawner = dist.join("spawner");
    util::copy(&root.join(format!("target/{MUSL}/release/spawner")), &spawner)?;
    run(cmd("cargo").current_dir(&root).args([
        "build",
        "--quiet",
        "--release",
        "--package",
        "integration-tests",
        "--bin",
        "probe",
        "--target",
        MUSL,
        "--target-dir",
        "target",
    ]))?;
    // runc's command line is spawner called as spawner-runc (engines' runtime path points at it).
    let runc = dist.join("spawner-runc");
    let _ = std::fs::remove_file(&runc);
    std::os::unix::fs::symlink("spawner", &runc)?;
    let probe = dist.join("probe");
    util::copy(&root.join(format!("target/{MUSL}/release/probe")), &probe)?;
    for bin in [&init, &spawner] {
        println!("{:>8} bytes  {}", std::fs::metadata(bin)?.len(), bin.display());
    }
    Ok(Dist { init, spawner, probe })
}

fn lint() -> Result<()> {
    // Clippy builds the whole workspace, the CRI client with it (tests/cri-client, for containerd's
    // CRI plugin: Debian has no crictl): k8s-cri's build script runs protoc on the CRI's protobufs.
    apt_install(&["protobuf-compiler"])?;
    let root = root();
    run(cmd("cargo").current_dir(&root).args(["fmt", "--all", "--check"]))?;
    run(cmd("cargo").current_dir(root.join("init")).args(["fmt", "--all", "--check"]))?;
    run(cmd("cargo").current_dir(&root).args([
        "clippy",
        "--quiet",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cmd("cargo").current_dir(root.join("init")).args([
        "clippy",
        "--quiet",
        "--all-targets",
        "--target-dir",
        "../target/init",
        "--",
        "-D",
        "warnings",
    ]))
}

fn test() -> Result<()> {
    // util-linux gives unshare (init runs as PID 1 of a new PID namespace in the tests) and setpriv
    // (a host user in the escape tests); mount gives losetup (a host disk for them).
    // podman (with conmon) drives spawner-runc in the engine tests, and so do containerd's runc shim
    // (through ctr) and dockerd 20.10 on that containerd: containerd and docker.io. The tests run
    // daemons of their own; the install starts none here (no systemd, and policy-rc.d says no).
    apt_install(&["util-linux", "procps", "mount", "podman", "containerd", "docker.io"])?;
    // The pull tests' registry, its client and certificates.
    apt_install(&["docker-registry", "skopeo", "openssl", "apache2-utils"])?;
    // The network tests: ip (veths, addresses in namespaces they make), nft (spawner's table),
    // pasta (passt).
    apt_install(&["iproute2", "nftables", "passt"])?;
    let dist = dist()?;
    let images = images::build_with(false, true)?;
    lint()?;
    let root = root();
    run(cmd("cargo").current_dir(root.join("init")).args(["test", "--target-dir", "../target/init"]))?;
    run(cmd("cargo").current_dir(&root).args(["test", "--workspace", "--no-run"]))?;
    // The engine tests run the CRI client from beside their own binary (target/debug).
    run(cmd("cargo").current_dir(&root).args(["build", "--quiet", "--package", "cri-client"]))?;
    // spawner's default network is a bridge it makes in the namespace it runs in: the tests run in
    // a network namespace of their own (loopback up, for the registries they start), never in the
    // machine's.
    run(cmd("unshare")
        .current_dir(&root)
        .args(["--net", "sh", "-c", "ip link set lo up && exec cargo test --workspace"])
        .env("INIT_BIN", &dist.init)
        .env("SPAWNER_BIN", &dist.spawner)
        .env("PROBE_BIN", &dist.probe))?;
    vm::test(Some((&dist, images::busybox(&images)?)))?;
    Ok(())
}

fn demo() -> Result<()> {
    apt_install(&["util-linux", "procps", "iproute2", "nftables"])?;
    let dist = dist()?;
    let images = images::build(false)?;
    let busybox = images::busybox(&images)?;
    let state = root().join("target/demo-state");
    let script = "echo hello from $(hostname); cat /etc/motd; ip -4 -o addr show eth0; ps";
    // The container gets spawner's bridge network; the demo makes it in a network namespace of its
    // own, never in the machine's.
    let line = format!("spawner --root {} run {} -- sh -c '{script}'", state.display(), busybox.display());
    println!("\n$ unshare --net  # loopback up, then:\n$ {line}");
    run(cmd("unshare")
        .args(["--net", "sh", "-c", r#"ip link set lo up && exec "$@""#, "sh"])
        .arg(&dist.spawner)
        .arg("--root")
        .arg(&state)
        .arg("run")
        .arg(busybox)
        .args(["--", "sh", "-c", script]))?;
    let script = r#"
echo "== a child that leaves 5 orphans behind, then lingers:"
sh -c 'for i in 1 2 3 4 5; do sleep 0.$i & done'
ps -o pid,ppid,stat,comm
sleep 1
echo "== a second later, init has reaped them (no <defunct> left):"
ps -o pid,ppid,stat,comm
"#;
    println!("\n$ unshare --pid --fork --mount-proc {} -w -- sh -c '…'", dist.init.display());
    run(cmd("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(&dist.init)
        .args(["-w", "--", "sh", "-c", script]))
}
