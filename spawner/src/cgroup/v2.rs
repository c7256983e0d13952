//! cgroup v2: one directory in the unified hierarchy.
//!
//! Controllers reach a cgroup only if its parent lists them in `cgroup.subtree_control`, and
//! the kernel refuses to enable controllers there while the parent itself holds processes (the
//! "no internal processes" rule; the root cgroup is exempt). Our own cgroup usually holds us, so,
//! like crun and podman, we first move every process of our cgroup into a leaf child [`LEAF`],
//! then enable the controllers, then create the container cgroup beside the leaf. We stay in the
//! leaf afterwards; later calls recognise it and keep using its parent.
//!
//! Besides the controllers its limits need (an error if one is missing), a container cgroup gets
//! every other controller of [`ENABLED_WHEN_AVAILABLE`] the parent can give, as runc and crun
//! enable them all: an update later finds their files.

use std::path::{Path, PathBuf};

use rustix::io::Errno;

use super::freezer::{self, FreezerState, FREEZE_TIMEOUT};
use super::limits::{cpu_max_line, cpu_weight_from_shares, io_weight_from_blkio, unified_controller};
use super::limits::{Apply, Max, Settings};
use super::{
    device_bpf, files, keyed_value, read_proc_self_cgroup, relative_cgroup_path, Error, Limits, ProcCgroup,
    Result, SwapTotal,
};

/// The leaf cgroup our own processes move into, below our own cgroup.
pub const LEAF: &str = "spawner-self";

/// The controllers a container cgroup gets when its parent has them, needed or not.
pub(crate) const ENABLED_WHEN_AVAILABLE: [&str; 5] = ["memory", "pids", "cpu", "cpuset", "io"];

/// A container cgroup on a unified (v2) host.
#[derive(Debug)]
pub struct CgroupV2 {
    dir: PathBuf,
}

/// Our cgroup relative to the v2 root, from the `0::` line. If an earlier create moved us into
/// [`LEAF`], the cgroup delegated to us is the leaf's parent.
pub(crate) fn own_cgroup(procs: &[ProcCgroup]) -> Result<PathBuf> {
    let line = procs
        .iter()
        .find(|p| p.hierarchy == 0 && p.controllers.is_empty())
        .ok_or_else(|| Error::Unavailable("no 0:: (cgroup v2) line in /proc/self/cgroup".into()))?;
    let rel = relative_cgroup_path(Path::new(&line.path))?;
    Ok(match rel.file_name() {
        Some(n) if n == LEAF => rel.parent().map(Path::to_path_buf).unwrap_or_default(),
        _ => rel,
    })
}

/// The controllers `settings` cannot do without, each of which must be in `available` (the
/// content of `available_file`, a `cgroup.controllers`, named in the error): memory, pids, cpu,
/// cpuset and io for their limits, and the controller of each `unified` key.
pub(crate) fn required_controllers(
    settings: &Settings,
    available: &str,
    available_file: &Path,
) -> Result<Vec<String>> {
    let has = |c: &str| available.split_whitespace().any(|a| a == c);
    let mut required: Vec<(String, String)> = [
        ("memory", settings.memory_why()),
        ("pids", settings.pids_why()),
        ("cpu", settings.cpu_why()),
        ("cpuset", settings.cpuset_why()),
        ("io", settings.block_io_why()),
    ]
    .into_iter()
    .filter_map(|(c, why)| why.map(|why| (c.to_owned(), why.to_owned())))
    .collect();
    for key in settings.unified.keys() {
        if let Some(c) = unified_controller(key) {
            required.push((c.to_owned(), format!("unified key {key:?}")));
        }
    }
    let mut controllers = Vec::new();
    for (controller, why) in required {
        if !has(&controller) {
            return Err(Error::Unavailable(format!(
                "{why} needs the {controller} controller, which is not in {}",
                available_file.display()
            )));
        }
        if !controllers.contains(&controller) {
            controllers.push(controller);
        }
    }
    Ok(controllers)
}

/// What to write to `cgroup.subtree_control` to enable `needed` given what it says now
/// (`enabled`), or `None` if everything is already enabled.
pub(crate) fn subtree_control_line<S: AsRef<str>>(enabled: &str, needed: &[S]) -> Option<String> {
    let missing: Vec<String> = needed
        .iter()
        .map(AsRef::as_ref)
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    (!missing.is_empty()).then(|| missing.join(" "))
}

/// Enable `needed` in `dir`'s subtree_control. If `dir` is our own cgroup and the kernel says
/// EBUSY (it holds processes), move its processes into the leaf and try again.
fn enable_controllers<S: AsRef<str>>(dir: &Path, needed: &[S], own: &Path) -> Result<()> {
    let file = dir.join("cgroup.subtree_control");
    let Some(line) = subtree_control_line(&files::read(&file)?, needed) else {
        return Ok(());
    };
    match files::write(&file, &line) {
        Err(e) if files::is_errno(&e, Errno::BUSY) && dir == own => {
            move_processes_to_leaf(own)?;
            files::write(&file, &line)
        }
        other => other,
    }
}

/// Enable what can be enabled of `wanted`: all at once, or else one by one, leaving out (and
/// logging) what the kernel refuses.
fn enable_if_possible(dir: &Path, wanted: &[&str], own: &Path) {
    if enable_controllers(dir, wanted, own).is_ok() {
        return;
    }
    for controller in wanted {
        if let Err(e) = enable_controllers(dir, &[controller], own) {
            log::debug!("cgroup v2: {controller} not enabled in {}: {e}", dir.display());
        }
    }
}

/// Processes may fork while we move them; each round moves what is listed now.
const MOVE_ROUNDS: u32 = 100;

/// Move every process of our own cgroup (us, and whoever else is in it: moving a process one
/// level down changes none of its limits) into the leaf child.
fn move_processes_to_leaf(own: &Path) -> Result<()> {
    let leaf = own.join(LEAF);
    match files::mkdir(&leaf) {
        Err(e) if !files::is_errno(&e, Errno::EXIST) => return Err(e),
        _ => {}
    }
    let procs = leaf.join("cgroup.procs");
    for _ in 0..MOVE_ROUNDS {
        let pids = files::read_procs(own)?;
        if pids.is_empty() {
            log::debug!("moved the processes of {} into {LEAF}", own.display());
            return Ok(());
        }
        for pid in pids {
            match files::write(&procs, &pid.to_string()) {
                // It exited meanwhile.
                Err(e) if files::is_errno(&e, Errno::SRCH) => {}
                other => other?,
            }
        }
    }
    Err(Error::StillPopulated { path: own.to_path_buf(), pids: files::read_procs(own)? })
}

fn max_text(max: Max) -> String {
    match max {
        Max::Unlimited => "max".to_owned(),
        Max::Value(v) => v.to_string(),
    }
}

/// Write the settings into the cgroup directory `dir`, `unified` last so that it overrides.
pub(crate) fn apply_settings(dir: &Path, s: &Settings) -> Result<()> {
    if let Some(memory) = s.memory {
        files::write(&dir.join("memory.max"), &max_text(memory))?;
        // v2 limits swap alone, Docker's --memory-swap is memory plus swap.
        if let Some(total) = s.memory_swap {
            let swap_max = match (total, memory) {
                (SwapTotal::Bytes(t), Max::Value(m)) => t.saturating_sub(m).to_string(),
                _ => "max".to_owned(),
            };
            let file = dir.join("memory.swap.max");
            if file.exists() {
                files::write(&file, &swap_max)?;
            } else if s.memory_swap_explicit {
                log::warn!("no {}: swap accounting is off, memory-swap limit ignored", file.display());
            }
        }
    }
    if let Some(reservation) = s.memory_reservation {
        files::write(&dir.join("memory.low"), &reservation.to_string())?;
    }
    if let Some(swappiness) = s.memory_swappiness {
        log::debug!(
            "memory swappiness {swappiness} ignored: cgroup v2 has no per-cgroup swappiness (as in runc)"
        );
    }
    if let Some(max) = s.pids {
        files::write(&dir.join("pids.max"), &max_text(max))?;
    }
    if let Some(shares) = s.cpu_shares {
        files::write(&dir.join("cpu.weight"), &cpu_weight_from_shares(shares).to_string())?;
    }
    if s.cpu_quota.is_some() || s.cpu_period.is_some() {
        set_cpu_max(dir, s.cpu_quota, s.cpu_period)?;
    }
    if let Some(cpus) = s.cpuset_cpus {
        files::write(&dir.join("cpuset.cpus"), cpus)?;
    }
    if let Some(mems) = s.cpuset_mems {
        files::write(&dir.join("cpuset.mems"), mems)?;
    }
    if let Some(weight) = s.block_io_weight {
        set_io_weight(dir, weight)?;
    }
    for (key, value) in s.unified {
        write_unified(dir, key, value)?;
    }
    Ok(())
}

/// `cpu.max`, keeping from the file whichever of quota and period is not given.
fn set_cpu_max(dir: &Path, quota: Option<Max>, period: Option<u64>) -> Result<()> {
    let path = dir.join("cpu.max");
    let current = if quota.is_none() || period.is_none() { files::read(&path)? } else { String::new() };
    let line = cpu_max_line(quota, period, &current).ok_or_else(|| Error::Parse {
        path: path.clone(),
        what: format!("{current:?} is not QUOTA PERIOD"),
    })?;
    files::write(&path, &line)
}

/// BFQ's `io.bfq.weight` takes the blkio range as it is; without BFQ, blk-iocost's `io.weight`
/// takes 1-10000, converted as runc does.
pub(crate) fn set_io_weight(dir: &Path, weight: u16) -> Result<()> {
    let bfq = dir.join("io.bfq.weight");
    if bfq.exists() {
        return files::write(&bfq, &weight.to_string());
    }
    let iocost = dir.join("io.weight");
    if iocost.exists() {
        return files::write(&iocost, &format!("default {}", io_weight_from_blkio(weight)));
    }
    Err(Error::Unavailable(format!(
        "block IO weight needs io.bfq.weight (the BFQ I/O scheduler) or io.weight (blk-iocost), and {} \
         has neither",
        dir.display()
    )))
}

/// One `unified` file. A value of several lines (io.max for several devices) is written a line
/// at a time: the kernel takes one entry per write.
fn write_unified(dir: &Path, key: &str, value: &str) -> Result<()> {
    let path = dir.join(key);
    if !value.contains('\n') {
        return files::write(&path, value);
    }
    value.lines().filter(|l| !l.trim().is_empty()).try_for_each(|line| files::write(&path, line))
}

/// Where container cgroups go: below `parent` (relative to the root) or our own cgroup; and the
/// cgroups from the top whose subtree_control must carry the controllers. With our own cgroup
/// that is just it (its ancestors were set up by whoever delegated it); with an explicit parent
/// it is every level from the root down.
fn placement(root: &Path, own: &Path, parent: Option<&Path>) -> Result<(PathBuf, Vec<PathBuf>)> {
    match parent {
        None => Ok((own.to_path_buf(), vec![own.to_path_buf()])),
        Some(p) => {
            let mut dir = root.to_path_buf();
            let mut chain = vec![dir.clone()];
            for c in relative_cgroup_path(p)?.components() {
                dir.push(c);
                chain.push(dir.clone());
            }
            Ok((dir, chain))
        }
    }
}

impl CgroupV2 {
    /// Create `name` in the v2 hierarchy mounted at `root` (`/sys/fs/cgroup` normally).
    pub(crate) fn create(
        root: &Path,
        name: &str,
        parent: Option<&Path>,
        limits: &Limits,
    ) -> Result<CgroupV2> {
        let settings = limits.settings(Apply::Create);
        let own = root.join(own_cgroup(&read_proc_self_cgroup()?)?);
        let (base, chain) = placement(root, &own, parent)?;
        let available_file = chain[0].join("cgroup.controllers");
        let available = files::read(&available_file)?;
        let mut needed = required_controllers(&settings, &available, &available_file)?;
        // memory whenever available: OOM kills are counted in memory.events.
        if available.split_whitespace().any(|c| c == "memory") {
            if !needed.iter().any(|c| c == "memory") {
                needed.insert(0, "memory".to_owned());
            }
        } else {
            log::warn!("no memory controller in {}: OOM kills will not be counted", available_file.display());
        }
        let optional: Vec<&str> = ENABLED_WHEN_AVAILABLE
            .into_iter()
            .filter(|c| available.split_whitespace().any(|a| a == *c) && !needed.iter().any(|n| n == c))
            .collect();
        for dir in &chain {
            if !dir.is_dir() {
                // Like Docker, an explicit parent is created if missing and left in place.
                files::mkdir_all(dir)?;
            }
            enable_controllers(dir, &needed, &own)?;
            enable_if_possible(dir, &optional, &own);
        }
        let cgroup = CgroupV2 { dir: base.join(name) };
        files::mkdir(&cgroup.dir)?;
        let configured = (|| {
            // Before any process can join: a device opened before the program is attached stays open.
            if !limits.devices.is_empty() {
                device_bpf::attach(&cgroup.dir, &limits.devices)?;
            }
            apply_settings(&cgroup.dir, &settings)
        })();
        if let Err(e) = configured {
            if let Err(cleanup) = cgroup.remove_dir() {
                log::warn!("cleaning up after failed cgroup create: {cleanup}");
            }
            return Err(e);
        }
        log::debug!("cgroup v2 {}", cgroup.dir.display());
        Ok(cgroup)
    }

    /// The cgroup `name` below `parent` or our own cgroup, for removing leftovers.
    pub(crate) fn existing(root: &Path, name: &str, parent: Option<&Path>) -> Result<CgroupV2> {
        let own = root.join(own_cgroup(&read_proc_self_cgroup()?)?);
        let (base, _) = placement(root, &own, parent)?;
        Ok(CgroupV2 { dir: base.join(name) })
    }

    /// A cgroup from its saved directory (checked by the caller).
    pub(crate) fn reopen(dir: PathBuf) -> CgroupV2 {
        CgroupV2 { dir }
    }

    /// Names of the cgroups below `parent` or our own cgroup.
    pub(crate) fn children(root: &Path, parent: Option<&Path>) -> Result<Vec<String>> {
        let own = root.join(own_cgroup(&read_proc_self_cgroup()?)?);
        let (base, _) = placement(root, &own, parent)?;
        files::child_cgroups(&base)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Change the limits of a running container. The controllers its settings need must be
    /// enabled for the cgroup already (its own `cgroup.controllers` lists them): the parents are
    /// not touched once processes run.
    pub(crate) fn update(&self, limits: &Limits) -> Result<()> {
        let settings = limits.settings(Apply::Update);
        let enabled_file = self.dir.join("cgroup.controllers");
        required_controllers(&settings, &files::read(&enabled_file)?, &enabled_file)?;
        apply_settings(&self.dir, &settings)
    }

    pub(crate) fn oom_kills(&self) -> Result<u64> {
        let path = self.dir.join("memory.events");
        let text = files::read(&path)?;
        keyed_value(&text, "oom_kill").ok_or_else(|| Error::Parse { path, what: "no oom_kill line".into() })
    }

    pub(crate) fn pids(&self) -> Result<Vec<i32>> {
        files::pids_below(&self.dir)
    }

    pub(crate) fn freeze(&self) -> Result<()> {
        freezer::freeze_v2(&self.dir, FREEZE_TIMEOUT)
    }

    pub(crate) fn thaw(&self) -> Result<()> {
        freezer::thaw_v2(&self.dir)
    }

    pub(crate) fn freezer_state(&self) -> Result<FreezerState> {
        freezer::state_v2(&self.dir)
    }

    /// cgroup.kill (Linux 5.14+) kills the whole subtree atomically, even a fork bomb, and frozen
    /// processes too; the kill loop then only waits for the processes to leave (and covers older
    /// kernels, where SIGKILL also ends a v2-frozen process).
    pub(crate) fn kill_all(&self) -> Result<()> {
        let kill = self.dir.join("cgroup.kill");
        if kill.exists() {
            files::write(&kill, "1")?;
        }
        files::kill_all(&[&self.dir])
    }

    pub(crate) fn remove_dir(&self) -> Result<()> {
        files::remove_tree(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::parse_proc_cgroup;

    #[test]
    fn own_cgroup_from_proc() {
        let procs = parse_proc_cgroup("0::/user.slice/x\n").unwrap();
        assert_eq!(own_cgroup(&procs).unwrap(), PathBuf::from("user.slice/x"));
        let procs = parse_proc_cgroup("0::/user.slice/x/spawner-self\n").unwrap();
        assert_eq!(own_cgroup(&procs).unwrap(), PathBuf::from("user.slice/x"));
        let procs = parse_proc_cgroup("0::/\n").unwrap();
        assert_eq!(own_cgroup(&procs).unwrap(), PathBuf::new());
        let procs = parse_proc_cgroup("4:memory:/a\n").unwrap();
        assert!(own_cgroup(&procs).is_err());
    }

    #[test]
    fn placement_below_own_or_explicit_parent() {
        let root = Path::new("/sys/fs/cgroup");
        let own = root.join("user.slice/x");
        let (base, chain) = placement(root, &own, None).unwrap();
        assert_eq!((base, chain), (own.clone(), vec![own.clone()]));
        let (base, chain) = placement(root, &own, Some(Path::new("/machine/ctr"))).unwrap();
        assert_eq!(base, root.join("machine/ctr"));
        assert_eq!(chain, vec![root.to_path_buf(), root.join("machine"), root.join("machine/ctr")]);
        let (base, chain) = placement(root, &own, Some(Path::new("/"))).unwrap();
        assert_eq!((base, chain), (root.to_path_buf(), vec![root.to_path_buf()]));
    }

    #[test]
    fn controllers_required() {
        let file = Path::new("/sys/fs/cgroup/x/cgroup.controllers");
        let all = "cpuset cpu io memory hugetlb pids rdma misc";
        let required =
            |l: &Limits, available: &str| required_controllers(&l.settings(Apply::Create), available, file);
        assert!(required(&Limits::default(), all).unwrap().is_empty());
        let limits = Limits { memory: Some(64 << 20), pids: Some(10), cpus: Some(1.0), ..Limits::default() };
        assert_eq!(required(&limits, all).unwrap(), ["memory", "pids", "cpu"]);
        let new_ones = Limits {
            memory_reservation: Some(1 << 20),
            memory_swappiness: Some(10),
            cpu_shares: Some(100),
            cpuset_cpus: Some("0".into()),
            block_io_weight: Some(100),
            unified: [("hugetlb.2MB.max", "0"), ("memory.high", "1G"), ("cgroup.max.depth", "2")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..Limits::default()
        };
        assert_eq!(required(&new_ones, all).unwrap(), ["memory", "cpu", "cpuset", "io", "hugetlb"]);
        // Swappiness alone needs nothing: v2 ignores it.
        assert!(required(&Limits { memory_swappiness: Some(1), ..Limits::default() }, "")
            .unwrap()
            .is_empty());
        let err = required(&limits, "memory cpu").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cgroup: pids limit needs the pids controller, which is not in \
             /sys/fs/cgroup/x/cgroup.controllers"
        );
        let err = required(&new_ones, "memory cpu cpuset io").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cgroup: unified key \"hugetlb.2MB.max\" needs the hugetlb controller, which is not in \
             /sys/fs/cgroup/x/cgroup.controllers"
        );
        let err = required(&Limits { block_io_weight: Some(10), ..Limits::default() }, "memory").unwrap_err();
        assert!(err.to_string().starts_with("cgroup: block IO weight needs the io controller"), "{err}");
    }

    #[test]
    fn subtree_control_lines() {
        assert_eq!(subtree_control_line("", &["memory", "pids"]).as_deref(), Some("+memory +pids"));
        assert_eq!(
            subtree_control_line("cpu memory\n", &["memory", "pids", "cpu"]).as_deref(),
            Some("+pids")
        );
        assert_eq!(subtree_control_line("memory pids", &["memory"]), None);
        assert_eq!(subtree_control_line::<&str>("", &[]), None);
    }

    fn fake_cgroup(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        dir
    }

    fn apply_limits(dir: &Path, limits: &Limits) -> Result<()> {
        apply_settings(dir, &limits.settings(Apply::Create))
    }

    fn contents(dir: &Path, file: &str) -> String {
        std::fs::read_to_string(dir.join(file)).unwrap()
    }

    #[test]
    fn limit_files() {
        let dir = fake_cgroup(&["memory.max", "memory.swap.max", "pids.max", "cpu.max"]);
        let limits = Limits {
            memory: Some(64 << 20),
            memory_swap: Some(96 << 20),
            pids: Some(100),
            cpus: Some(0.5),
            ..Limits::default()
        };
        apply_limits(dir.path(), &limits).unwrap();
        assert_eq!(contents(dir.path(), "memory.max"), "67108864");
        assert_eq!(contents(dir.path(), "memory.swap.max"), "33554432");
        assert_eq!(contents(dir.path(), "pids.max"), "100");
        assert_eq!(contents(dir.path(), "cpu.max"), "50000 100000");

        // Docker's default: swap as large as memory.
        let dir = fake_cgroup(&["memory.max", "memory.swap.max"]);
        let only_memory = Limits { memory: Some(64 << 20), ..Limits::default() };
        apply_limits(dir.path(), &only_memory).unwrap();
        assert_eq!(contents(dir.path(), "memory.swap.max"), "67108864");

        let dir = fake_cgroup(&["memory.max", "memory.swap.max"]);
        let unlimited_swap = Limits { memory_swap: Some(-1), ..only_memory.clone() };
        apply_limits(dir.path(), &unlimited_swap).unwrap();
        assert_eq!(contents(dir.path(), "memory.swap.max"), "max");

        // No swap accounting: memory.swap.max is absent and skipped.
        let dir = fake_cgroup(&["memory.max"]);
        apply_limits(dir.path(), &unlimited_swap).unwrap();
        assert!(!dir.path().join("memory.swap.max").exists());

        // Nothing asked, nothing written (the files would not even exist).
        let empty = tempfile::tempdir().unwrap();
        apply_limits(empty.path(), &Limits::default()).unwrap();
    }

    /// Each new limit's v2 file and value, on create.
    #[test]
    fn new_limit_files() {
        let dir = fake_cgroup(&[
            "memory.low",
            "cpu.weight",
            "cpu.max",
            "cpuset.cpus",
            "cpuset.mems",
            "io.weight",
            "memory.high",
            "io.max",
        ]);
        std::fs::write(dir.path().join("cpu.max"), "max 100000\n").unwrap();
        let limits = Limits {
            memory_reservation: Some(32 << 20),
            memory_swappiness: Some(10),
            cpu_shares: Some(1024),
            cpu_quota: Some(20_000),
            cpuset_cpus: Some("0-1".into()),
            cpuset_mems: Some("0".into()),
            block_io_weight: Some(500),
            unified: [("memory.high", "1073741824"), ("io.max", "8:0 rbps=1000\n8:16 wbps=2000\n")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..Limits::default()
        };
        apply_limits(dir.path(), &limits).unwrap();
        assert_eq!(contents(dir.path(), "memory.low"), "33554432");
        assert_eq!(contents(dir.path(), "cpu.weight"), "39");
        assert_eq!(contents(dir.path(), "cpu.max"), "20000 100000");
        assert_eq!(contents(dir.path(), "cpuset.cpus"), "0-1");
        assert_eq!(contents(dir.path(), "cpuset.mems"), "0");
        assert_eq!(contents(dir.path(), "io.weight"), "default 4950");
        assert_eq!(contents(dir.path(), "memory.high"), "1073741824");
        // One write per line; a regular file keeps the last one over the first.
        assert_eq!(contents(dir.path(), "io.max"), "8:16 wbps=2000");
        assert!(!dir.path().join("memory.swappiness").exists());

        // A quota of -1 is "max", with the period given.
        let dir = fake_cgroup(&["cpu.max"]);
        let unlimited = Limits { cpu_quota: Some(-1), cpu_period: Some(50_000), ..Limits::default() };
        apply_limits(dir.path(), &unlimited).unwrap();
        assert_eq!(contents(dir.path(), "cpu.max"), "max 50000");
    }

    /// `unified` comes last: it overrides what the named limits wrote.
    #[test]
    fn unified_overrides() {
        let dir = fake_cgroup(&["memory.max", "pids.max"]);
        let limits = Limits {
            pids: Some(7),
            unified: [("pids.max".to_owned(), "5".to_owned())].into_iter().collect(),
            ..Limits::default()
        };
        apply_limits(dir.path(), &limits).unwrap();
        assert_eq!(contents(dir.path(), "pids.max"), "5");
    }

    #[test]
    fn io_weight_file_by_scheduler() {
        let bfq = fake_cgroup(&["io.bfq.weight", "io.weight"]);
        set_io_weight(bfq.path(), 500).unwrap();
        assert_eq!(contents(bfq.path(), "io.bfq.weight"), "500");
        assert_eq!(contents(bfq.path(), "io.weight"), "");
        let neither = fake_cgroup(&[]);
        let err = set_io_weight(neither.path(), 500).unwrap_err();
        assert!(
            matches!(&err, Error::Unavailable(m) if m.starts_with("block IO weight needs io.bfq.weight")),
            "{err}"
        );
    }

    /// An update writes "no limit" explicitly, keeps the cpu period it is not given, and needs
    /// the controllers enabled for the cgroup.
    #[test]
    fn update_files() {
        let dir = fake_cgroup(&["memory.max", "memory.swap.max", "pids.max", "cpu.max", "memory.low"]);
        std::fs::write(dir.path().join("cgroup.controllers"), "memory pids cpu\n").unwrap();
        std::fs::write(dir.path().join("cpu.max"), "20000 50000\n").unwrap();
        let cgroup = CgroupV2::reopen(dir.path().to_path_buf());
        let lift = Limits {
            memory: Some(0),
            pids: Some(-1),
            cpus: Some(0.0),
            memory_reservation: Some(0),
            ..Limits::default()
        };
        cgroup.update(&lift).unwrap();
        assert_eq!(contents(dir.path(), "memory.max"), "max");
        assert_eq!(contents(dir.path(), "memory.swap.max"), "max");
        assert_eq!(contents(dir.path(), "pids.max"), "max");
        // A regular file keeps the old tail beyond a shorter write (cgroupfs takes the write as
        // the whole value): the written value is the start.
        assert!(contents(dir.path(), "cpu.max").starts_with("max 50000"), "period kept");
        assert_eq!(contents(dir.path(), "memory.low"), "0");

        let period = Limits { cpu_period: Some(25_000), ..Limits::default() };
        std::fs::write(dir.path().join("cpu.max"), "20000 50000\n").unwrap();
        cgroup.update(&period).unwrap();
        assert_eq!(contents(dir.path(), "cpu.max").trim(), "20000 25000");

        let err = cgroup.update(&Limits { cpuset_cpus: Some("0".into()), ..Limits::default() }).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cgroup: cpuset cpus needs the cpuset controller, which is not in {}",
                dir.path().join("cgroup.controllers").display()
            )
        );
    }
}
