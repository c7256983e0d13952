//! `cargo xtask bench init`: our init beside tini-static, dumb-init and catatonit, measured in one
//! run on this machine: binary size, idle RSS as PID 1, and time to reap 10,000 orphans.

use crate::util::{apt_install, cmd, root, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Peer {
    name: &'static str,
    path: PathBuf,
}

struct Row {
    name: &'static str,
    size: u64,
    /// Shared libraries the binary needs at run time (0 for a static binary).
    shared_libs: u64,
    rss_kib: u64,
    reap_ms: f64,
    reap_cpu_ms: f64,
}

const ORPHANS: usize = 10_000;
const ROUNDS: usize = 11;

pub fn init() -> Result<()> {
    apt_install(&["tini", "dumb-init", "catatonit", "util-linux"])?;
    let dist = crate::dist()?;
    let peers = [
        Peer { name: "init (this project)", path: dist.init },
        Peer { name: "tini-static", path: "/usr/bin/tini-static".into() },
        Peer { name: "dumb-init", path: "/usr/bin/dumb-init".into() },
        Peer { name: "catatonit", path: "/usr/bin/catatonit".into() },
    ];
    // Rounds interleave the inits, so that drift on the machine spreads over all of them.
    let mut rss: Vec<Vec<u64>> = vec![Vec::new(); peers.len()];
    let mut reap: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
    let mut reap_cpu: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
    for round in 0..ROUNDS {
        eprintln!("xtask: round {} of {ROUNDS}", round + 1);
        for (i, peer) in peers.iter().enumerate() {
            rss[i].push(idle_rss_kib(&peer.path)?);
            let (wall, cpu) = reap_ms(&peer.path)?;
            reap[i].push(wall);
            reap_cpu[i].push(cpu);
        }
    }
    let mut rows = Vec::new();
    for (i, peer) in peers.iter().enumerate() {
        rows.push(Row {
            name: peer.name,
            size: std::fs::metadata(&peer.path)?.len(),
            shared_libs: shared_libs_size(&peer.path)?,
            rss_kib: median_u64(rss[i].clone()),
            reap_ms: median_f64(reap[i].clone()),
            reap_cpu_ms: median_f64(reap_cpu[i].clone()),
        });
    }
    let date = crate::util::output(cmd("date").arg("+%Y-%m-%d"))?;
    let kernel = crate::util::output(cmd("uname").arg("-r"))?;
    let mut table = format!(
        "Measured {} on this project's machine kind (2 cores, kernel {}), by `cargo xtask bench init`.\n\
         Idle RSS: median of {ROUNDS} runs of `unshare --pid --fork INIT -- sleep 30`, VmRSS of the init.\n\
         Reap: median of {ROUNDS} runs (rounds interleaving the inits); a child leaves {ORPHANS} orphans\n\
         blocked on a pipe, then closes it: time until all {ORPHANS} have exited and been reaped, seen\n\
         from /proc of the PID namespace, polled every millisecond. The kernel's exit work for 10,000\n\
         processes is most of that time, and it swings by half from run to run on 2 cores; the init's own\n\
         CPU time (user + system, from /proc/1/stat, 10 ms ticks) over the same span is its own cost.\n\n\
         | init | binary size | shared libraries needed | idle RSS as PID 1 | reap {ORPHANS} orphans | init CPU while reaping |\n\
         |---|---:|---:|---:|---:|---:|\n",
        date.trim(),
        kernel.trim()
    );
    for r in &rows {
        let libs = if r.shared_libs == 0 {
            "none (static)".to_string()
        } else {
            format!("{} KB", r.shared_libs / 1000)
        };
        table.push_str(&format!(
            "| {} | {:.1} KB | {libs} | {} KiB | {:.0} ms | {:.0} ms |\n",
            r.name,
            r.size as f64 / 1000.0,
            r.rss_kib,
            r.reap_ms,
            r.reap_cpu_ms
        ));
    }
    println!("\n{table}");
    crate::util::write_section(&root().join("docs/benchmarks.md"), "init", &table)?;
    println!("written to docs/benchmarks.md");
    Ok(())
}

fn median_u64(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The sizes of the shared libraries `ldd` lists (0 for a static binary).
fn shared_libs_size(bin: &Path) -> Result<u64> {
    let out = Command::new("ldd").arg(bin).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut total = 0;
    for line in text.lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next().filter(|p| p.starts_with('/')),
        };
        if let Some(p) = path {
            total += std::fs::metadata(std::fs::canonicalize(p)?)?.len();
        }
    }
    Ok(total)
}

/// The pid of the child of `pid` (unshare --fork has exactly one: the init).
fn only_child(pid: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

fn idle_rss_kib(init: &Path) -> Result<u64> {
    let mut child = cmd("unshare")
        .args(["--pid", "--fork", "--kill-child"])
        .arg(init)
        .args(["--", "sleep", "30"])
        .stdout(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let result = loop {
        std::thread::sleep(Duration::from_millis(100));
        // Measured once init has started its child and settled into its loop.
        let pid = only_child(child.id());
        let sleeping = pid.and_then(only_child).is_some();
        if let (Some(pid), true) = (pid, sleeping) {
            std::thread::sleep(Duration::from_millis(200));
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
            let rss = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .ok_or("no VmRSS")?;
            break Ok(rss);
        }
        if Instant::now() > deadline {
            break Err("init did not start its child".into());
        }
    };
    child.kill()?;
    child.wait()?;
    result
}

/// Wall time to reap, and the init's CPU time meanwhile, in ms.
fn reap_ms(init: &Path) -> Result<(f64, f64)> {
    let xtask = std::env::current_exe()?;
    let mut child = cmd("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(init)
        .arg("--")
        .arg(xtask)
        .args(["__reap-bench", &ORPHANS.to_string()])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out)?;
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("reap benchmark under {} failed: {status}", init.display()).into());
    }
    let mut fields = out.split_whitespace().map(str::parse::<f64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(wall)), Some(Ok(cpu))) => Ok((wall, cpu)),
        _ => Err(format!("reap benchmark printed {out:?}").into()),
    }
}

/// user + system CPU time of PID 1 (of the caller's PID namespace) in clock ticks (10 ms).
fn init_cpu_ticks() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/1/stat")?;
    // After "(comm)": state is field 3; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').ok_or("odd /proc/1/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).ok_or("odd /proc/1/stat");
    Ok(tick(11)? + tick(12)?)
}

fn count_processes() -> usize {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
                .count()
        })
        .unwrap_or(0)
}

/// Runs as the init's child in the benchmark's PID namespace: leaves `n` orphans that block on a
/// pipe, releases them all at once, and prints the milliseconds until the init has reaped them all
/// (a zombie stays in /proc until it is reaped).
pub fn reap_helper(n: usize) -> Result<()> {
    let (reader, writer) = std::io::pipe()?;
    let script = format!("exec 3<&0; i=0; while [ $i -lt {n} ]; do read x <&3 & i=$((i+1)); done");
    let status = cmd("sh").args(["-c", &script]).stdin(reader).status()?;
    if !status.success() {
        return Err("could not start the orphans".into());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_processes() < n + 2 {
        if Instant::now() > deadline {
            return Err("orphans did not start".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let cpu_before = init_cpu_ticks()?;
    let start = Instant::now();
    drop(writer);
    // Polled with sleeps, not spun: a spinning observer would take one of the two cores from the
    // init being measured.
    while count_processes() > 2 {
        if Instant::now() > deadline + Duration::from_secs(60) {
            return Err("orphans were not reaped".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let wall = start.elapsed().as_secs_f64() * 1000.0;
    let cpu_ms = (init_cpu_ticks()? - cpu_before) * 10;
    println!("{wall:.1} {cpu_ms}");
    Ok(())
}
