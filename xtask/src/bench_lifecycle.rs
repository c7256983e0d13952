//! `cargo xtask bench lifecycle`: a detached container's life, step by step, beside podman: `run -d`,
//! `exec`, `stop`, `rm`, each timed on its own, and `exec` alone on one running container. Everything
//! runs in a network and mount namespace the benchmark makes (podman's view of the cgroup hierarchies
//! is changed there, and no container of either tool could touch the machine's network).

use crate::bench_run::{interleaved, Peer};
use crate::util::{apt_install, cmd, output, root, run, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Round trips per tool, interleaved.
const ROUNDS: usize = 30;
/// `exec NAME true` repetitions per tool on one running container, interleaved.
const EXECS: usize = 100;
/// The round trip's container (one name, reused: each round removes it).
const NAME: &str = "bench-lifecycle";
/// The container `exec` alone runs in.
const EXEC_NAME: &str = "bench-lifecycle-exec";
/// podman refuses a runroot path over 50 characters: short ones of the benchmark's own (its libpod
/// tmpdir too, so that nothing of this store lands in the machine's /run/libpod).
const RUNROOT: &str = "/tmp/sbl-runroot";
const TMPDIR: &str = "/tmp/sbl-tmpdir";
/// The step labels, in the order a round runs them.
const STEPS: [&str; 4] = ["run -d IMAGE sleep 1000", "exec NAME true", "stop -t 1 NAME", "rm NAME"];

pub fn lifecycle() -> Result<()> {
    // catatonit is podman's `--init` (see `Tool::podman`).
    apt_install(&["podman", "catatonit", "util-linux"])?;
    let dist = crate::dist()?;
    let images = crate::images::build(false)?;
    let image = crate::images::busybox(&images)?.clone();
    let work = root().join("target/bench-lifecycle");
    let _ = std::fs::remove_dir_all(&work);
    for dir in [RUNROOT, TMPDIR] {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::fs::create_dir_all(&work)?;
    run(cmd("unshare")
        .args(["--net", "--mount", "--propagation", "private"])
        .arg(std::env::current_exe()?)
        .arg("__bench-lifecycle-inner")
        .arg(&dist.spawner)
        .arg(&image)
        .arg(&work))
}

/// One tool's commands, all on fixed container names.
struct Tool {
    name: &'static str,
    /// The command line up to the subcommand: `spawner --root STATE`, `podman --root … --runroot …`.
    base: Box<dyn Fn() -> Command>,
    /// `run -d`'s options before the image (podman's image is its loaded name, spawner's the archive).
    run_args: Vec<String>,
    image: String,
    /// The round trip's steps, in order, with their times (ms medians through `Peer::median`).
    steps: Vec<Peer>,
    /// Each recorded round's four steps together.
    totals: Vec<Duration>,
}

impl Tool {
    fn spawner(spawner: &Path, state: &Path, image: &Path) -> Tool {
        let (spawner, state) = (spawner.to_path_buf(), state.to_path_buf());
        let base = move || {
            let mut c = Command::new(&spawner);
            c.arg("--root").arg(&state);
            c
        };
        Tool::new("spawner", Box::new(base), &["--network", "none"], image.display().to_string())
    }

    /// podman on this hybrid host, as `bench net` runs it: cgroups disabled (`/sys/fs/cgroup/unified`
    /// is out of its sight), ulimits no higher than the hard limits, the image loaded into a store of
    /// the benchmark's own. `--init` puts catatonit in as PID 1, which forwards `stop`'s SIGTERM to
    /// `sleep`, as spawner's init does: without it `sleep` is PID 1, ignores SIGTERM, and every
    /// `stop -t 1` would be the full second plus SIGKILL.
    fn podman(store: &Path) -> Tool {
        let store = store.to_path_buf();
        let base = move || {
            let mut c = Command::new("podman");
            c.arg("--root").arg(&store).args(["--runroot", RUNROOT, "--tmpdir", TMPDIR]);
            c.args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"]);
            c
        };
        let run_args = [
            "--init",
            "--network",
            "none",
            "--cgroups=disabled",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ];
        Tool::new("podman", Box::new(base), &run_args, "localhost/busybox:latest".into())
    }

    fn new(name: &'static str, base: Box<dyn Fn() -> Command>, run_args: &[&str], image: String) -> Tool {
        let mut tool = Tool {
            name,
            base,
            run_args: run_args.iter().map(|s| s.to_string()).collect(),
            image,
            steps: Vec::new(),
            totals: Vec::new(),
        };
        let commands = [
            tool.run_detached(NAME),
            tool.command(&["exec", NAME, "true"]),
            tool.command(&["stop", "-t", "1", NAME]),
            tool.command(&["rm", NAME]),
        ];
        tool.steps = STEPS.iter().zip(commands).map(|(label, c)| Peer::new(label, c)).collect();
        tool
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = (self.base)();
        c.args(args);
        c
    }

    /// `run -d --name NAME … IMAGE sleep 1000`.
    fn run_detached(&self, name: &str) -> Command {
        let mut c = self.command(&["run", "-d", "--name", name]);
        c.args(&self.run_args).arg(&self.image).args(["sleep", "1000"]);
        c
    }

    /// One round trip; its times are kept when `record`.
    fn round(&mut self, record: bool) -> Result<()> {
        let mut total = Duration::ZERO;
        for step in &mut self.steps {
            let (elapsed, _) =
                time_once(&mut step.command).map_err(|e| format!("{} {}: {e}", self.name, step.name))?;
            total += elapsed;
            if record {
                step.times.push(elapsed);
            }
        }
        if record {
            self.totals.push(total);
        }
        Ok(())
    }

    /// The status column of `ps -a` for the container `name` (None when there is no such container).
    fn status(&self, name: &str) -> Result<Option<String>> {
        let listing = output(&mut self.command(&["ps", "-a", "--format", "{{.Names}}|{{.Status}}"]))?;
        Ok(listing.lines().find_map(|l| l.strip_prefix(&format!("{name}|")).map(str::to_string)))
    }

    /// Before anything is timed, one round trip by hand, checked: `run -d` prints a full ID, `exec`
    /// runs the command (its exit status comes back), `stop -t 1` ends the container by SIGTERM (exit
    /// 143, not the timeout's SIGKILL: 137), `rm` leaves no container behind.
    fn check(&self) -> Result<()> {
        let fail = |what: String| -> Result<()> { Err(format!("{}: {what}", self.name).into()) };
        let (_, id) = time_once(&mut self.run_detached(NAME))?;
        let id = id.trim();
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return fail(format!("run -d printed {id:?}, not a container ID"));
        }
        let status = self.command(&["exec", NAME, "sh", "-c", "exit 3"]).stdin(Stdio::null()).status()?;
        if status.code() != Some(3) {
            return fail(format!("exec NAME sh -c 'exit 3' exited with {status}, not 3"));
        }
        time_once(&mut self.command(&["exec", NAME, "true"]))?;
        time_once(&mut self.command(&["stop", "-t", "1", NAME]))?;
        match self.status(NAME)? {
            Some(s) if s.contains("(143)") => {}
            s => return fail(format!("after stop -t 1, ps -a says {s:?}, not Exited (143)")),
        }
        time_once(&mut self.command(&["rm", NAME]))?;
        if let Some(s) = self.status(NAME)? {
            return fail(format!("after rm, ps -a still lists it: {s}"));
        }
        Ok(())
    }

    /// Removes whatever of the benchmark's containers is left (after an error, too).
    fn clean_up(&self) {
        for name in [NAME, EXEC_NAME] {
            let mut c = self.command(&["rm", "-f", name]);
            let _ = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

/// The median of `times`, in ms.
fn median(times: &[Duration]) -> f64 {
    let mut t = times.to_vec();
    t.sort();
    t[t.len() / 2].as_secs_f64() * 1000.0
}

/// Runs `command` once: its wall time and its stdout; an error with its stderr when it fails.
fn time_once(command: &mut Command) -> Result<(Duration, String)> {
    let start = Instant::now();
    let out = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).output()?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        return Err(format!(
            "{command:?} failed: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok((elapsed, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// Runs inside the benchmark's network and mount namespaces.
pub fn inner(spawner: &Path, image: &Path, work: &Path) -> Result<()> {
    let _ = Command::new("umount").arg("/sys/fs/cgroup/unified").status();
    let mut tools =
        [Tool::spawner(spawner, &work.join("spawner-state"), image), Tool::podman(&work.join("podman"))];
    run(tools[1].command(&["load", "-q", "-i"]).arg(image))?;
    let result = measure(&mut tools);
    for tool in &tools {
        tool.clean_up();
    }
    let exec = result?;
    report(&tools, &exec)
}

/// The round trips, then `exec` alone: `exec`'s two peers (spawner's, podman's).
fn measure(tools: &mut [Tool; 2]) -> Result<[Peer; 2]> {
    for tool in tools.iter() {
        tool.check()?;
    }
    // 3 warm-up rounds each (the first run of the archive fills spawner's layer store), then rounds
    // alternating which tool goes first.
    for tool in tools.iter_mut() {
        for _ in 0..3 {
            tool.round(false)?;
        }
    }
    for round in 0..ROUNDS {
        for i in 0..tools.len() {
            tools[(round + i) % tools.len()].round(true)?;
        }
    }
    for tool in tools.iter() {
        time_once(&mut tool.run_detached(EXEC_NAME)).map_err(|e| format!("{}: {e}", tool.name))?;
    }
    let mut exec = tools.each_ref().map(|t| Peer::new(t.name, t.command(&["exec", EXEC_NAME, "true"])));
    interleaved(&mut exec, EXECS)?;
    Ok(exec)
}

fn report(tools: &[Tool; 2], exec: &[Peer; 2]) -> Result<()> {
    let [ours, theirs] = tools;
    let mut rows: Vec<(String, f64, f64)> = ours
        .steps
        .iter()
        .zip(&theirs.steps)
        .map(|(a, b)| (format!("`{}`", a.name), a.median(), b.median()))
        .collect();
    rows.push(("round trip (the four together)".into(), median(&ours.totals), median(&theirs.totals)));
    rows.push((format!("`exec NAME true` alone, {EXECS} times"), exec[0].median(), exec[1].median()));
    let date = output(cmd("date").arg("+%Y-%m-%d"))?;
    let mut table = format!(
        "Measured {} by `cargo xtask bench lifecycle` (2 cores), in a network namespace of the benchmark's\n\
         own: a detached busybox container's round trip, `run -d IMAGE sleep 1000` → `exec NAME true` →\n\
         `stop -t 1 NAME` → `rm NAME`, each command timed on its own, {ROUNDS} rounds per tool after 3 warm-up\n\
         rounds, alternating which tool goes first; then `exec NAME true` alone in one running container,\n\
         {EXECS} times each, interleaved, after 3 warm-up runs. Medians; the round trip is the median of each\n\
         round's sum. Both run with `--network none`; podman with `--cgroups=disabled` (this hybrid-cgroup\n\
         host), crun, its own store, and `--init`: catatonit as PID 1 forwards `stop`'s SIGTERM to `sleep`,\n\
         as spawner's init does (without it `sleep` is PID 1, ignores SIGTERM, and podman's `stop -t 1` is\n\
         the whole second and a SIGKILL). Checked before timing: both containers exit 143 (SIGTERM) on\n\
         `stop -t 1`, before the timeout. The issue's target is each step 10x faster than podman's.\n\n\
         | step | spawner | podman | podman ÷ spawner | 10x target |\n|---|---:|---:|---:|---|\n",
        date.trim()
    );
    for (step, a, b) in &rows {
        let ratio = b / a;
        let target = if ratio >= 10.0 { "met" } else { "missed" };
        table.push_str(&format!("| {step} | {a:.2} ms | {b:.2} ms | {ratio:.1}x | {target} |\n"));
    }
    println!("\n{table}");
    crate::util::write_section(&root().join("docs/benchmarks.md"), "lifecycle", &table)?;
    Ok(())
}
