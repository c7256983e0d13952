//! `cargo xtask bench pull`: pulling from one loopback registry (Debian's docker-registry, filled
//! by skopeo) into a cold store, in one run: `spawner pull` beside `skopeo copy … oci:DIR` (no
//! unpacking), `podman pull`, `ctr images pull` (containerd) and `docker pull` (dockerd), for the
//! busybox and the Debian image; and pull + run of /bin/true end to end, spawner beside podman.
//! Wall time and peak RSS, median of [`ROUNDS`], alternating.
//!
//! podman runs crun in a private mount namespace without /sys/fs/cgroup/unified, with no cgroup
//! and explicit ulimits: the only way it runs a container on this hybrid host (its pull needs
//! none of that).

use crate::engine_daemons::{Daemons, Engine};
use crate::util::{apt_install, cmd, output, root, run, Result};
use std::path::Path;
use std::process::{Command, Stdio};

const ROUNDS: usize = 5;

pub fn pull() -> Result<()> {
    apt_install(&[
        "docker-registry",
        "skopeo",
        "podman",
        "crun",
        "time",
        "util-linux",
        "containerd",
        "docker.io",
    ])?;
    let dist = crate::dist()?;
    let images = crate::images::build_with(false, true)?;
    let find = |name: &str| images.iter().find(|p| p.ends_with(name)).cloned().ok_or(format!("no {name}"));
    let (busybox, debian) = (find("busybox-docker.tar")?, find("debian.tar")?);
    let work = root().join("target/bench-pull");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let host = format!("127.0.0.1:{port}");
    std::fs::write(
        work.join("registry.yml"),
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}/registry\nhttp:\n  addr: {host}\n",
            work.display()
        ),
    )?;
    let mut registry = Command::new("docker-registry")
        .arg("serve")
        .arg(work.join("registry.yml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("registry.log"))?)
        .spawn()?;
    let result = (|| {
        for _ in 0..200 {
            if std::net::TcpStream::connect(&host).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        for (archive, name) in [(&busybox, "library/busybox:latest"), (&debian, "library/debian:bookworm")] {
            run(cmd("skopeo")
                .args(["copy", "-q", "--dest-tls-verify=false"])
                .arg(format!("docker-archive:{}", archive.display()))
                .arg(format!("docker://{host}/{name}")))?;
        }
        measure(&dist.spawner, &host, &work)
    })();
    let _ = registry.kill();
    let _ = registry.wait();
    for entry in std::fs::read_dir(&work).into_iter().flatten().flatten() {
        let _ = std::fs::remove_dir_all(runroot(&entry.path()));
    }
    result
}

fn measure(spawner: &Path, host: &str, work: &Path) -> Result<()> {
    let (layer_tar_seconds, layer_size) = tar_of_layer(work)?;
    let mut rows: Vec<(String, Vec<(f64, u64)>)> = Vec::new();
    let mut record = |name: String, value: (f64, u64)| match rows.iter_mut().find(|(n, _)| *n == name) {
        Some((_, v)) => v.push(value),
        None => rows.push((name, vec![value])),
    };
    for round in 0..ROUNDS {
        eprintln!("xtask: round {} of {ROUNDS}", round + 1);
        for (image, reference) in
            [("busybox", "library/busybox:latest"), ("debian", "library/debian:bookworm")]
        {
            let reference = format!("{host}/{reference}");
            let fresh = |what: &str| {
                let dir = work.join(format!("{what}-{image}-{round}"));
                let _ = std::fs::remove_dir_all(&dir);
                let _ = std::fs::remove_dir_all(runroot(&dir));
                dir
            };
            let spawner_state = fresh("spawner");
            let mut ours = Command::new(spawner);
            ours.arg("--root").arg(&spawner_state).args(["pull", "-q", &reference]);
            let mut skopeo = Command::new("skopeo");
            skopeo
                .args(["copy", "-q", "--src-tls-verify=false", &format!("docker://{reference}")])
                .arg(format!("oci:{}", fresh("skopeo").display()));
            let podman_store = fresh("podman");
            let mut podman = podman_cmd(&podman_store);
            podman.args(["pull", "-q", "--tls-verify=false", &reference]);
            // The order alternates, so that caches warmed by one do not always favour the next.
            let mut runs: Vec<(String, Command)> = vec![
                (format!("{image}: spawner pull"), ours),
                (format!("{image}: skopeo copy to oci: (no unpack)"), skopeo),
                (format!("{image}: podman pull"), podman),
            ];
            if round % 2 == 1 {
                runs.reverse();
            }
            for (name, mut c) in runs {
                settle(work, spawner)?;
                let value = crate::bench_run::timed_rss(&mut c).map_err(|e| format!("{name}: {e}"))?;
                record(name, value);
            }
            // The engines' daemons do the pull: each starts afresh (a cold store), then its client
            // is timed, and the daemon's peak RSS is taken.
            for engine in [Engine::Containerd, Engine::Dockerd] {
                let name = match engine {
                    Engine::Containerd => format!("{image}: ctr images pull (containerd)"),
                    Engine::Dockerd => format!("{image}: docker pull (dockerd)"),
                };
                let daemons = Daemons::start(engine, &fresh(engine.name()))?;
                let mut client = daemons.client();
                match engine {
                    Engine::Containerd => client.args(["images", "pull", "--plain-http", &reference]),
                    Engine::Dockerd => client.args(["pull", "-q", &reference]),
                };
                settle(work, spawner)?;
                let (secs, _) =
                    crate::bench_run::timed_rss(&mut client).map_err(|e| format!("{name}: {e}"))?;
                record(name, (secs, daemons.peak_rss_kib()?));
            }
            if image == "debian" {
                let state = fresh("spawner-run");
                let mut ours = Command::new(spawner);
                ours.arg("--root").arg(&state).args([
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    &reference,
                    "--",
                    "/bin/true",
                ]);
                settle(work, spawner)?;
                record(
                    "debian: spawner run REF (pull + run)".into(),
                    crate::bench_run::timed_rss(&mut ours)?,
                );
                let store = fresh("podman-run");
                let script = format!(
                    "umount /sys/fs/cgroup/unified 2>/dev/null; exec {} run --rm --network none --cgroups=disabled \
                     --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --tls-verify=false {reference} /bin/true",
                    podman_line(&store)
                );
                let mut theirs = Command::new("unshare");
                theirs.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
                settle(work, spawner)?;
                record(
                    "debian: podman run REF (pull + run)".into(),
                    crate::bench_run::timed_rss(&mut theirs)?,
                );
            }
        }
    }
    let date = output(cmd("date").arg("+%Y-%m-%d"))?;
    let mut table = format!(
        "Measured {} by `cargo xtask bench pull` (2 cores): from one docker-registry on 127.0.0.1 into a\n\
         cold store each time, median of {ROUNDS}, order alternating. Before each: writes flushed, the\n\
         page cache dropped, then the registry's blobs and each tool's binaries read in again (see\n\
         `settle`: on this VM, first-touched memory is slow, and would tax whichever tool ran first).\n\
         busybox: 3 small gzip layers; debian: a Debian bookworm (debootstrap, podman save), one {:.0} MB\n\
         gzip layer. skopeo only copies blobs to an OCI layout (no unpack); podman pull unpacks into its\n\
         overlay store; spawner pull verifies and unpacks into its layer store; containerd 1.6 (ctr) and\n\
         dockerd 20.10 pull and unpack in their daemons, each started afresh with an empty store before\n\
         its pull (not timed). `tar -xzf` of the Debian layer alone, same disk: {layer_tar_seconds:.2} s.\n\
         Peak RSS of the largest process (GNU time; for ctr and docker, the daemon's VmHWM).\n\n\
         | what | time | peak RSS |\n|---|---:|---:|\n",
        date.trim(),
        layer_size as f64 / 1e6
    );
    for (name, mut values) in rows {
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (secs, rss) = values[values.len() / 2];
        table.push_str(&format!("| {name} | {secs:.2} s | {} MiB |\n", rss / 1024));
    }
    println!("\n{table}");
    crate::util::write_section(&root().join("docs/benchmarks.md"), "pull", &table)?;
    Ok(())
}

/// Before each measured command: earlier writes flushed, the page cache dropped, then the
/// registry's blobs and every tool's binary and libraries read back in. On this VM, memory the guest has not
/// touched since boot is slow to touch the first time (a page copy into it costs several times
/// a reused page's), and without the drop whichever tool ran first on fresh memory paid for it.
/// So every command writes into reused pages, as on a host that has been up a while, and
/// starts with its binary and the registry's data cached.
fn settle(work: &Path, spawner: &Path) -> Result<()> {
    run(&mut cmd("sync"))?;
    std::fs::write("/proc/sys/vm/drop_caches", "1\n")?;
    let mut files = vec![spawner.to_path_buf()];
    for tool in [
        "skopeo",
        "podman",
        "crun",
        "conmon",
        "tar",
        "gzip",
        "ctr",
        "containerd",
        "dockerd",
        "/usr/bin/docker",
    ] {
        if let Ok(path) = output(cmd("sh").args(["-c", &format!("command -v {tool}")])) {
            files.push(path.trim().into());
        }
    }
    // Their shared libraries too (podman's crun and conmon have some).
    let listed = output(
        cmd("sh").args(["-c", "ldd $(command -v crun conmon podman skopeo tar gzip dockerd) 2>/dev/null"]),
    )
    .unwrap_or_default();
    files
        .extend(listed.split_whitespace().filter(|w| w.starts_with('/') && !w.contains(':')).map(Into::into));
    let mut stack = vec![work.join("registry")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)?.flatten() {
            let path = e.path();
            if e.file_type()?.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for file in files {
        std::io::copy(&mut std::fs::File::open(&file)?, &mut std::io::sink())?;
    }
    Ok(())
}

fn podman_line(store: &Path) -> String {
    format!(
        "podman --root {}/root --runroot {} --cgroup-manager cgroupfs --events-backend file",
        store.display(),
        runroot(store).display()
    )
}

/// podman refuses a runroot path over 50 characters: a short one in /tmp, per store.
fn runroot(store: &Path) -> std::path::PathBuf {
    let name = store.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Path::new("/tmp").join(format!("sbp-{name}"))
}

fn podman_cmd(store: &Path) -> Command {
    let mut c = Command::new("podman");
    c.arg("--root").arg(store.join("root")).arg("--runroot").arg(store.join("run")).args([
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
    ]);
    c
}

/// The biggest blob in the registry's storage (the Debian layer, gzip as skopeo pushed it),
/// unpacked by `tar -xzf` (then synced): the floor any pull has. Returns seconds and its size.
fn tar_of_layer(work: &Path) -> Result<(f64, u64)> {
    let mut biggest: Option<(u64, std::path::PathBuf)> = None;
    let mut stack = vec![work.join("registry")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)?.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if e.file_name() == "data" {
                let len = e.metadata()?.len();
                if biggest.as_ref().is_none_or(|(l, _)| len > *l) {
                    biggest = Some((len, path));
                }
            }
        }
    }
    let (size, layer) = biggest.ok_or("no blob in the registry")?;
    let out = work.join("tar-layer");
    std::fs::create_dir_all(&out)?;
    settle(work, Path::new("/bin/true"))?;
    let script = format!("tar -xzf {} -C {} && sync -f {}", layer.display(), out.display(), out.display());
    let (secs, _) = crate::bench_run::timed_rss(Command::new("sh").args(["-c", &script]))?;
    Ok((secs, size))
}
