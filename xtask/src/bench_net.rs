//! `cargo xtask bench net`: what a network costs spawner's start, beside podman, and what the
//! bridge carries. Everything runs in a network namespace the benchmark makes (the bridge, its
//! table and pasta live there), with an "outside world" namespace joined to it by a veth: pasta
//! needs a routable interface, and iperf3's server runs there.

use crate::bench_run::{interleaved, Peer};
use crate::util::{apt_install, cmd, output, root, run, Result};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 40;

pub fn net() -> Result<()> {
    apt_install(&["iproute2", "nftables", "passt", "iperf3", "podman", "util-linux"])?;
    let dist = crate::dist()?;
    let images = crate::images::build(false)?;
    let image = crate::images::busybox(&images)?.clone();
    let work = root().join("target/bench-net");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    run(cmd("unshare")
        .args(["--net", "--mount", "--propagation", "private"])
        .arg(std::env::current_exe()?)
        .arg("__bench-net-inner")
        .arg(&dist.spawner)
        .arg(&image)
        .arg(&work))
}

/// The outside world: a namespace held by a `sleep` of ours, joined to this one by a veth
/// (192.0.2.1 here, 192.0.2.2 there; the default route points there).
struct World {
    holder: Child,
}

impl World {
    fn new() -> Result<World> {
        let holder = Command::new("unshare").args(["--net", "sleep", "3600"]).spawn()?;
        let pid = holder.id().to_string();
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/net")).ok();
        let deadline = Instant::now() + Duration::from_secs(5);
        while ns(&pid) == ns("self") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let world = World { holder };
        let script = format!(
            "set -e; ip link set lo up; ip link add wan type veth peer name wan netns {pid}; \
             ip addr add 192.0.2.1/24 dev wan; ip link set wan up; ip route add default via 192.0.2.2; \
             nsenter -t {pid} -n sh -c 'ip link set lo up; ip addr add 192.0.2.2/24 dev wan; ip link set wan up'"
        );
        run(cmd("sh").args(["-c", &script]))?;
        Ok(world)
    }

    fn enter(&self) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t").arg(self.holder.id().to_string()).arg("-n");
        c
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Runs inside the benchmark's network and mount namespaces.
pub fn inner(spawner: &Path, image: &Path, work: &Path) -> Result<()> {
    let world = World::new()?;
    let state = work.join("spawner-state");
    let spawner_run = |args: &[&str]| {
        let mut c = Command::new(spawner);
        c.arg("--root").arg(&state).args(["run", "--rm"]).args(args).arg(image).args(["--", "/bin/true"]);
        c
    };
    // podman on this hybrid host: cgroups disabled, /sys/fs/cgroup/unified out of its sight, the
    // image loaded into a store of the benchmark's own.
    let _ = Command::new("umount").arg("/sys/fs/cgroup/unified").status();
    let store = work.join("podman");
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--root").arg(store.join("root")).arg("--runroot").arg(RUNROOT);
        c.args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"]).args(args);
        c
    };
    run(podman(&["load", "-q", "-i"]).arg(image))?;
    let mut podman_none = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cgroups=disabled",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
    ]);
    podman_none.args(["localhost/busybox:latest", "/bin/true"]);
    // Its bridge: Debian's podman 4.3 uses CNI (cni-podman0, iptables), built in this
    // benchmark's namespace like spawner's; it has no pasta network yet (that came in 4.4).
    let mut podman_bridge = podman(&[
        "run",
        "--rm",
        "--network",
        "bridge",
        "--cgroups=disabled",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
    ]);
    podman_bridge.args(["localhost/busybox:latest", "/bin/true"]);
    let mut rows = vec![
        Peer::new("spawner --network none", spawner_run(&["--network", "none"])),
        Peer::new("spawner --network bridge", spawner_run(&["--network", "bridge"])),
        Peer::new(
            "spawner --network bridge -p 8080:80",
            spawner_run(&["--network", "bridge", "-p", "8080:80"]),
        ),
        Peer::new("spawner --network pasta", spawner_run(&["--network", "pasta"])),
        Peer::new("podman --network none", podman_none),
        Peer::new("podman --network bridge (CNI)", podman_bridge),
    ];
    interleaved(&mut rows, RUNS)?;
    let median = Peer::median;
    let none = median(&rows[0]);
    let (plain, bridged) = throughput(&world, spawner, &state, image)?;
    let date = output(cmd("date").arg("+%Y-%m-%d"))?;
    let mut table = format!(
        "Measured {} by `cargo xtask bench net` (2 cores), in a network namespace of the benchmark's own:\n\
         start-to-exit of `/bin/true` from the busybox image, {RUNS} runs each, interleaved, after 3 warm-up\n\
         runs; medians. The bridge exists from the warm-up on (as docker0 does once made). podman runs\n\
         with `--cgroups=disabled` (this hybrid-cgroup host); its bridge is Debian's podman 4.3 with CNI\n\
         (bridge cni-podman0 and iptables rules in the benchmark's namespace; leases under\n\
         /var/lib/cni, released by --rm); it has no pasta network (podman 4.4 added it). With `-p`,\n\
         publishing is one nfnetlink batch at the start (~0.1 ms); the exit's\n\
         withdrawal waits for the kernel to free the nftables transaction (an RCU grace period).\n\n\
         | network | median | vs none |\n|---|---:|---:|\n",
        date.trim()
    );
    for r in &rows {
        let m = median(r);
        table.push_str(&format!("| {} | {m:.2} ms | {:+.2} ms |\n", r.name, m - none));
    }
    table.push_str(&format!(
        "\niperf3 (TCP, 5 s) to a server in the outside namespace: from a container on the bridge\n\
         (veth, bridge, forwarding, masquerade, then the link out) {bridged:.1} Gbit/s; between the two plain\n\
         namespaces (one veth) {plain:.1} Gbit/s.\n"
    ));
    println!("\n{table}");
    crate::util::write_section(&root().join("docs/benchmarks.md"), "net", &table)?;
    Ok(())
}

/// podman refuses a runroot path over 50 characters: a short one of the benchmark's own.
const RUNROOT: &str = "/tmp/sbn-runroot";

/// iperf3's Gbit/s between the two plain namespaces, then from a container on the bridge (the
/// client runs in the container's network namespace).
fn throughput(world: &World, spawner: &Path, state: &Path, image: &Path) -> Result<(f64, f64)> {
    let measure = |client: &mut Command| -> Result<f64> {
        let mut server =
            world.enter().args(["iperf3", "-s", "-1", "-B", "192.0.2.2"]).stdout(Stdio::null()).spawn()?;
        std::thread::sleep(Duration::from_millis(300));
        let out =
            client.args(["iperf3", "-c", "192.0.2.2", "-t", "5", "-J"]).stderr(Stdio::inherit()).output();
        let _ = server.wait();
        let out = out?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let bps = json["end"]["sum_received"]["bits_per_second"].as_f64().ok_or("no iperf3 result")?;
        Ok(bps / 1e9)
    };
    let plain = measure(&mut Command::new("env"))?;
    let mut container = Command::new(spawner)
        .arg("--root")
        .arg(state)
        .args(["run", "--rm", "--network", "bridge"])
        .arg(image)
        .args(["--", "sleep", "60"])
        .stdin(Stdio::null())
        .spawn()?;
    let result = (|| -> Result<f64> {
        let pid = container_pid(container.id())?;
        let mut client = Command::new("nsenter");
        client.arg("-t").arg(pid.to_string()).arg("-n");
        measure(&mut client)
    })();
    // SIGTERM reaches the container's init through spawner.
    let _ = Command::new("kill").arg(container.id().to_string()).status();
    let _ = container.wait();
    Ok((plain, result?))
}

/// The container's first process: the child of `spawner` (pid) in another network namespace.
fn container_pid(spawner: u32) -> Result<u32> {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/net")).ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let children =
            std::fs::read_to_string(format!("/proc/{spawner}/task/{spawner}/children")).unwrap_or_default();
        for child in children.split_whitespace() {
            if ns(child).is_some() && ns(child) != ns("self") {
                return Ok(child.parse()?);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("the container did not start".into())
}
