//! `cargo xtask bench oci`: spawner as an OCI runtime (`spawner-runc`) beside crun and runc, on the
//! one busybox bundle `bench run` makes, in one run, interleaved: `run` start-to-exit of /bin/true,
//! and create + start + delete as youki's README measures it (`create -b B ID && start ID &&
//! delete -f ID`). `spawner run` of the image archive is there for reference.

use crate::util::{apt_install, cmd, output, root, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 40;

/// As `bench run`: the runtimes run in a private mount namespace without /sys/fs/cgroup/unified,
/// which crun refuses on a hybrid host (shared/notes/machine.md); xtask re-executes itself there.
pub fn oci() -> Result<()> {
    apt_install(&["crun", "runc", "util-linux"])?;
    crate::bench_run::in_bundle_namespace("bench-oci", "__bench-oci-inner")
}

/// One runtime's command line: its program and global flags (the state root its own).
struct Runtime {
    name: &'static str,
    program: std::path::PathBuf,
    global: Vec<String>,
}

impl Runtime {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.global).args(args);
        c
    }
}

/// A measured thing: what one iteration runs, and the times it took.
struct Row {
    name: String,
    steps: Vec<Command>,
    times: Vec<Duration>,
}

impl Row {
    fn once(&mut self, errors: &Path) -> Result<Duration> {
        let mut total = Duration::ZERO;
        for step in &mut self.steps {
            total += time_step(step, errors).map_err(|e| format!("{}: {e}", self.name))?;
        }
        Ok(total)
    }
}

/// Times one command to its exit. Its output goes to /dev/null and a file, never a pipe: the
/// process `create` leaves waiting holds create's stdio, and a pipe would not end until it exits.
fn time_step(command: &mut Command, errors: &Path) -> Result<Duration> {
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(errors)?);
    let start = Instant::now();
    let status = command.status()?;
    let elapsed = start.elapsed();
    if !status.success() {
        return Err(
            format!("failed: {status}: {}", std::fs::read_to_string(errors).unwrap_or_default()).into()
        );
    }
    Ok(elapsed)
}

/// Runs inside the private mount namespace.
pub fn inner(spawner: &Path, image: &Path, bundle: &Path, work: &Path) -> Result<()> {
    let _ = Command::new("umount").arg("/sys/fs/cgroup/unified").status();
    let state = |name: &str| work.join(name).display().to_string();
    // crun and runc run here only without a cgroup of their own (crun --cgroup-manager=disabled,
    // runc --rootless=true, whose cgroup failures are warnings): spawner-runc runs both ways.
    let runtimes = [
        Runtime {
            name: "spawner-runc, no cgroup",
            program: spawner.with_file_name("spawner-runc"),
            global: vec!["--cgroup-manager=disabled".into(), "--root".into(), state("spawner-plain")],
        },
        Runtime {
            name: "spawner-runc, own cgroup",
            program: spawner.with_file_name("spawner-runc"),
            global: vec!["--root".into(), state("spawner-cgroup")],
        },
        Runtime {
            name: "crun",
            program: "crun".into(),
            global: vec!["--cgroup-manager=disabled".into(), "--root".into(), state("crun")],
        },
        Runtime {
            name: "runc",
            program: "runc".into(),
            global: vec!["--rootless=true".into(), "--root".into(), state("runc")],
        },
    ];
    let b = bundle.to_str().ok_or("bundle path is not UTF-8")?;
    let mut rows = Vec::new();
    for (i, r) in runtimes.iter().enumerate() {
        let id = format!("bench-{i}");
        rows.push(Row {
            name: format!("{}: run", r.name),
            steps: vec![r.command(&["run", "-b", b, &id])],
            times: vec![],
        });
    }
    let mut archive = Command::new(spawner);
    archive
        .arg("--root")
        .arg(work.join("spawner-state"))
        .args(["run", "--rm", "--network", "none"])
        .arg(image)
        .args(["--", "/bin/true"]);
    rows.push(Row { name: "spawner run image.tar (reference)".into(), steps: vec![archive], times: vec![] });
    for (i, r) in runtimes.iter().enumerate() {
        let id = format!("life-{i}");
        let steps = vec![
            r.command(&["create", "-b", b, &id]),
            r.command(&["start", &id]),
            r.command(&["delete", "-f", &id]),
        ];
        rows.push(Row { name: format!("{}: create + start + delete", r.name), steps, times: vec![] });
    }
    // Warm-up, then rounds that interleave everything, so that drift on the machine spreads over all.
    let errors = work.join("stderr");
    for row in &mut rows {
        for _ in 0..3 {
            row.once(&errors)?;
        }
    }
    for _ in 0..RUNS {
        for row in &mut rows {
            let t = row.once(&errors)?;
            row.times.push(t);
        }
    }
    let median = |row: &Row| {
        let mut t = row.times.clone();
        t.sort();
        t[t.len() / 2].as_secs_f64() * 1000.0
    };
    let crun_run = median(&rows[2]);
    let date = output(cmd("date").arg("+%Y-%m-%d"))?;
    let mut table = format!(
        "Measured {} by `cargo xtask bench oci` (2 cores): one busybox OCI bundle (the one `bench run`\n\
         makes: same namespaces, mounts, masked paths and capabilities; no seccomp filter), {RUNS} rounds\n\
         interleaving every row after 3 warm-up runs; medians. `run` is start-to-exit of /bin/true;\n\
         create + start + delete is the three commands back to back, as youki's README measures it. crun\n\
         runs with --cgroup-manager=disabled and runc with --rootless=true, the only ways they run on this\n\
         hybrid-cgroup host; spawner-runc runs once so and once with the cgroup it makes here.\n\n\
         | runtime | median | vs crun run |\n|---|---:|---:|\n",
        date.trim()
    );
    for row in &rows {
        let m = median(row);
        table.push_str(&format!("| {} | {m:.2} ms | {:.2}x |\n", row.name, m / crun_run));
    }
    println!("\n{table}");
    crate::util::write_section(&root().join("docs/benchmarks.md"), "oci", &table)?;
    Ok(())
}
