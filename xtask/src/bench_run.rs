//! `cargo xtask bench run`: start-to-exit of `/bin/true` from the busybox image with a warm layer
//! store, beside crun and runc (an OCI bundle over the same rootfs, same namespaces) and bubblewrap,
//! all in one run, interleaved; and unpacking a large image against GNU `tar -x`.

use crate::util::{apt_install, cmd, output, root, run, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 60;

/// Peers run in a private mount namespace where /sys/fs/cgroup/unified is unmounted: crun refuses
/// hybrid cgroup hosts otherwise (see shared/notes/machine.md). xtask re-executes itself there.
pub fn start_to_exit() -> Result<()> {
    apt_install(&["crun", "runc", "bubblewrap", "util-linux", "time"])?;
    in_bundle_namespace("bench-run", "__bench-run-inner")
}

/// Builds the dist binaries and the busybox image, makes `target/NAME/bundle` of it, and
/// re-executes xtask as `INNER SPAWNER IMAGE BUNDLE WORK` in a private mount namespace (where the
/// inner part unmounts /sys/fs/cgroup/unified for crun).
pub fn in_bundle_namespace(name: &str, inner: &str) -> Result<()> {
    let dist = crate::dist()?;
    let images = crate::images::build(false)?;
    let image = crate::images::busybox(&images)?.clone();
    let work = root().join("target").join(name);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let bundle = work.join("bundle");
    make_bundle(&image, &bundle)?;
    let exe = std::env::current_exe()?;
    run(cmd("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(exe)
        .arg(inner)
        .arg(&dist.spawner)
        .arg(&image)
        .arg(&bundle)
        .arg(&work))
}

pub struct Peer {
    pub name: &'static str,
    pub command: Command,
    pub times: Vec<Duration>,
}

impl Peer {
    pub fn new(name: &'static str, command: Command) -> Peer {
        Peer { name, command, times: Vec::new() }
    }

    /// The median of its times, in ms.
    pub fn median(&self) -> f64 {
        let mut t = self.times.clone();
        t.sort();
        t[t.len() / 2].as_secs_f64() * 1000.0
    }
}

/// Times each of `peers` `runs` times after 3 warm-up runs (the first fills caches and stores),
/// interleaved: each round starts with the next peer, so that a run's place after another (whose
/// teardown may still be running, or whose files are warm) is no one's advantage.
pub fn interleaved(peers: &mut [Peer], runs: usize) -> Result<()> {
    for p in peers.iter_mut() {
        for _ in 0..3 {
            time_once(&mut p.command).map_err(|e| format!("{}: {e}", p.name))?;
        }
    }
    let n = peers.len();
    for round in 0..runs {
        for i in 0..n {
            let p = &mut peers[(round + i) % n];
            p.times.push(time_once(&mut p.command).map_err(|e| format!("{}: {e}", p.name))?);
        }
    }
    Ok(())
}

/// Runs inside the private mount namespace.
pub fn inner(spawner: &Path, image: &Path, bundle: &Path, work: &Path) -> Result<()> {
    let _ = Command::new("umount").arg("/sys/fs/cgroup/unified").status();
    let state = work.join("spawner-state");
    let rootfs = bundle.join("rootfs");
    let mut spawner_cmd = Command::new(spawner);
    spawner_cmd
        .arg("--root")
        .arg(&state)
        .args(["run", "--rm", "--network", "none"])
        .arg(image)
        .args(["--", "/bin/true"]);
    let mut crun = Command::new("crun");
    crun.args(["--cgroup-manager=disabled", "--root"])
        .arg(work.join("crun-state"))
        .args(["run", "-b"])
        .arg(bundle)
        .arg("bench-crun");
    let mut runc = Command::new("runc");
    runc.args(["--rootless=true", "--root"])
        .arg(work.join("runc-state"))
        .args(["run", "-b"])
        .arg(bundle)
        .arg("bench-runc");
    let mut bwrap = Command::new("bwrap");
    bwrap
        .arg("--bind")
        .arg(&rootfs)
        .args(["/", "--proc", "/proc", "--dev", "/dev", "--unshare-pid", "--unshare-net", "--unshare-ipc"])
        .args(["--unshare-uts", "--unshare-cgroup", "--die-with-parent", "/bin/true"]);
    let mut bare = Command::new(rootfs.join("bin/busybox"));
    bare.arg("true");
    let mut unconfined = Command::new(spawner);
    unconfined
        .arg("--root")
        .arg(&state)
        .args(["run", "--rm", "--network", "none", "--security-opt", "seccomp=unconfined"])
        .arg(image);
    unconfined.args(["--", "/bin/true"]);
    let mut peers = vec![
        Peer { name: "spawner run (this project)", command: spawner_cmd, times: Vec::new() },
        Peer { name: "spawner run, seccomp=unconfined", command: unconfined, times: Vec::new() },
        Peer { name: "bubblewrap", command: bwrap, times: Vec::new() },
        Peer { name: "crun run", command: crun, times: Vec::new() },
        Peer { name: "runc run", command: runc, times: Vec::new() },
        Peer { name: "bare exec (no container)", command: bare, times: Vec::new() },
    ];
    // BENCH_SPAWNER_BASELINE=PATH: an earlier spawner build beside this one, in the same run (what
    // a change costs or saves, measured rather than compared with an old figure).
    if let Some(baseline) = std::env::var_os("BENCH_SPAWNER_BASELINE") {
        let mut command = Command::new(baseline);
        command
            .arg("--root")
            .arg(work.join("baseline-state"))
            .args(["run", "--rm"])
            .arg(image)
            .args(["--", "/bin/true"]);
        peers.insert(1, Peer { name: "spawner run, baseline build", command, times: Vec::new() });
    }
    interleaved(&mut peers, RUNS)?;
    let median = Peer::median;
    let ours = median(&peers[0]);
    let date = output(cmd("date").arg("+%Y-%m-%d"))?;
    let mut table = format!(
        "Measured {} by `cargo xtask bench run` (2 cores): start-to-exit of `/bin/true` from the busybox\n\
         image, {RUNS} runs each, interleaved (each round starting with the next runtime), after 3 warm-up runs; medians. spawner runs the image archive\n\
         itself (archive index, warm layer store, overlay, cgroup, 6 namespaces, pivot_root, init as PID 1);\n\
         crun and runc run an OCI bundle of the same rootfs with the same namespaces, mounts, masked paths\n\
         and capabilities (crun with\n\
         --cgroup-manager=disabled, runc --rootless=true: the only ways they run on this hybrid-cgroup\n\
         host); bubblewrap binds the same rootfs. The baseline build, when there is one, is\n\
         `BENCH_SPAWNER_BASELINE`: {}.\n\n\
         | runtime | median | vs spawner |\n|---|---:|---:|\n",
        date.trim(),
        std::env::var("BENCH_SPAWNER_BASELINE_NOTE").unwrap_or_else(|_| "none in this run".into())
    );
    for p in &peers {
        let m = median(p);
        table.push_str(&format!("| {} | {m:.2} ms | {:.2}x |\n", p.name, m / ours));
    }
    println!("\n{table}");
    crate::util::write_section(&root().join("docs/benchmarks.md"), "run", &table)?;
    Ok(())
}

fn time_once(command: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    let out = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        return Err(format!("failed: {}: {}", out.status, String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(elapsed)
}

const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// An OCI bundle: the image's layers extracted in order into rootfs/, and a config.json with the same
/// namespaces, mounts, masked and read-only paths and capabilities spawner sets up (not its seccomp
/// filter: that would need a profile file per runtime).
fn make_bundle(image: &Path, bundle: &Path) -> Result<()> {
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs)?;
    let unpacked = bundle.join("archive");
    std::fs::create_dir_all(&unpacked)?;
    run(cmd("tar").arg("-xf").arg(image).arg("-C").arg(&unpacked))?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json"))?)?;
    for layer in manifest[0]["Layers"].as_array().ok_or("manifest.json without Layers")? {
        let layer = unpacked.join(layer.as_str().ok_or("bad layer")?);
        run(cmd("tar").arg("-xf").arg(&layer).arg("-C").arg(&rootfs))?;
    }
    std::fs::remove_dir_all(&unpacked)?;
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "noNewPrivileges": true,
            "capabilities": {
                "bounding": DOCKER_CAPS, "effective": DOCKER_CAPS, "permitted": DOCKER_CAPS
            }
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                            "/sys/devices/virtual/powercap"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    std::fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    Ok(())
}

/// Unpacking big.tar's one gzip layer (about 320 MB, 6,000 entries): spawner into an empty store
/// against GNU `tar -xzf` of the same layer; both end with the data synced; peak RSS from GNU time.
pub fn unpack() -> Result<()> {
    apt_install(&["time"])?;
    let dist = crate::dist()?;
    let images = crate::images::build(true)?;
    let big = images.iter().find(|p| p.ends_with("big.tar")).ok_or("no big.tar")?.clone();
    let work = root().join("target/bench-unpack");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let archive = work.join("archive");
    std::fs::create_dir_all(&archive)?;
    run(cmd("tar").arg("-xf").arg(&big).arg("-C").arg(&archive))?;
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(archive.join("manifest.json"))?)?;
    let layer = archive.join(manifest[0]["Layers"][0].as_str().ok_or("no layer")?);
    let mut ours = Vec::new();
    let mut tar = Vec::new();
    // Nothing is deleted until the end (on this ext4, recently freed inodes make the next writer
    // 2-3x slower), earlier writes are flushed before each measurement, and the order alternates.
    for i in 0..3 {
        let state = work.join(format!("state-{i}"));
        let dir = work.join(format!("tar-{i}"));
        std::fs::create_dir_all(&dir)?;
        let script =
            format!("tar -xzf {} -C {} && sync -f {}", layer.display(), dir.display(), dir.display());
        let ours_once = |state: &Path| -> Result<(f64, u64)> {
            run(&mut cmd("sync"))?;
            timed_rss(
                Command::new(&dist.spawner)
                    .arg("--root")
                    .arg(state)
                    .args(["run", "--rm", "--network", "none"])
                    .arg(&big)
                    .args(["--", "true"]),
            )
        };
        let tar_once = || -> Result<(f64, u64)> {
            run(&mut cmd("sync"))?;
            timed_rss(Command::new("sh").args(["-c", &script]))
        };
        if i % 2 == 0 {
            ours.push(ours_once(&state)?);
            tar.push(tar_once()?);
        } else {
            tar.push(tar_once()?);
            ours.push(ours_once(&state)?);
        }
    }
    let median = |v: &mut Vec<(f64, u64)>| {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v[v.len() / 2]
    };
    let (ours, tar) = (median(&mut ours), median(&mut tar));
    let size = std::fs::metadata(&layer)?.len();
    let date = output(cmd("date").arg("+%Y-%m-%d"))?;
    let table = format!(
        "Measured {} by `cargo xtask bench unpack`: one gzip layer of {:.0} MB compressed (big.tar from\n\
         `cargo xtask images --big`), median of 3, alternating, each into an empty directory, data synced\n\
         at the end, earlier writes flushed before each run, nothing deleted until all are done.\n\
         spawner's figure is a whole `spawner run big.tar -- true` on an empty store (unpack, verify the\n\
         digest, then run the container).\n\n\
         | unpacker | time | peak RSS |\n|---|---:|---:|\n\
         | spawner (this project) | {:.2} s | {} MiB |\n| GNU tar -xzf + sync | {:.2} s | {} MiB |\n",
        date.trim(),
        size as f64 / 1e6,
        ours.0,
        ours.1 / 1024,
        tar.0,
        tar.1 / 1024
    );
    println!("\n{table}");
    crate::util::write_section(&root().join("docs/benchmarks.md"), "unpack", &table)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Wall seconds and peak RSS (KiB, of the largest process in the tree as GNU time reports it).
pub fn timed_rss(command: &mut Command) -> Result<(f64, u64)> {
    let mut timed = Command::new("/usr/bin/time");
    timed.args(["-f", "%e %M"]).arg(command.get_program()).args(command.get_args());
    let out = timed.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{:?} failed: {err}", command.get_program()).into());
    }
    let last = err.lines().last().ok_or("no output from time")?;
    let mut f = last.split_whitespace();
    let secs: f64 = f.next().ok_or("time")?.parse()?;
    let rss: u64 = f.next().ok_or("rss")?.parse()?;
    Ok((secs, rss))
}

pub fn work_paths(args: &[&str]) -> Option<(PathBuf, PathBuf, PathBuf, PathBuf)> {
    match args {
        [a, b, c, d] => Some((a.into(), b.into(), c.into(), d.into())),
        _ => None,
    }
}
