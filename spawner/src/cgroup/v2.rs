//! cgroup v2: one directory in the unified hierarchy.
//!
//! Controllers reach a cgroup only if its parent lists them in `cgroup.subtree_control`, and
//! the kernel refuses to enable controllers there while the parent itself holds processes (the
//! "no internal processes" rule; the root cgroup is exempt). Our own cgroup usually holds us, so,
//! like crun and podman, we first move every process of our cgroup into a leaf child [`LEAF`],
//! then enable the controllers, then create the container cgroup beside the leaf. We stay in the
//! leaf afterwards; later calls recognise it and keep using its parent.

use std::path::{Path, PathBuf};

use rustix::io::Errno;

use super::{
    cpu_max_line, device_bpf, files, keyed_value, read_proc_self_cgroup, relative_cgroup_path, Error, Limits,
    ProcCgroup, Result, SwapTotal,
};

/// The leaf cgroup our own processes move into, below our own cgroup.
pub const LEAF: &str = "spawner-self";

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

/// The controllers to enable for a container: memory whenever available (OOM kills are counted
/// in memory.events), pids and cpu only for their limits. `available` is the content of
/// `available_file` (a `cgroup.controllers`), named in the error when a limit cannot be applied.
pub(crate) fn needed_controllers(
    limits: &Limits,
    available: &str,
    available_file: &Path,
) -> Result<Vec<&'static str>> {
    let has = |c: &str| available.split_whitespace().any(|a| a == c);
    let mut needed = Vec::new();
    let wanted = [
        ("memory", limits.memory_max().is_some(), "memory limit"),
        ("pids", limits.pids_max().is_some(), "pids limit"),
        ("cpu", limits.cpu_quota().is_some(), "cpus limit"),
    ];
    for (controller, required, why) in wanted {
        if has(controller) {
            if required || controller == "memory" {
                needed.push(controller);
            }
        } else if required {
            return Err(Error::Unavailable(format!(
                "{why} needs the {controller} controller, which is not in {}",
                available_file.display()
            )));
        } else if controller == "memory" {
            log::warn!("no memory controller in {}: OOM kills will not be counted", available_file.display());
        }
    }
    Ok(needed)
}

/// What to write to `cgroup.subtree_control` to enable `needed` given what it says now
/// (`enabled`), or `None` if everything is already enabled.
pub(crate) fn subtree_control_line(enabled: &str, needed: &[&str]) -> Option<String> {
    let missing: Vec<String> = needed
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| format!("+{c}"))
        .collect();
    (!missing.is_empty()).then(|| missing.join(" "))
}

/// Enable `needed` in `dir`'s subtree_control. If `dir` is our own cgroup and the kernel says
/// EBUSY (it holds processes), move its processes into the leaf and try again.
fn enable_controllers(dir: &Path, needed: &[&str], own: &Path) -> Result<()> {
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

/// Write the limits into the cgroup directory `dir`.
pub(crate) fn apply_limits(dir: &Path, limits: &Limits) -> Result<()> {
    if let Some(memory) = limits.memory_max() {
        files::write(&dir.join("memory.max"), &memory.to_string())?;
        // v2 limits swap alone, Docker's --memory-swap is memory plus swap.
        if let Some(total) = limits.swap_total() {
            let swap_max = match total {
                SwapTotal::Unlimited => "max".to_string(),
                SwapTotal::Bytes(t) => t.saturating_sub(memory).to_string(),
            };
            let file = dir.join("memory.swap.max");
            if file.exists() {
                files::write(&file, &swap_max)?;
            } else if limits.memory_swap.is_some() {
                log::warn!("no {}: swap accounting is off, memory-swap limit ignored", file.display());
            }
        }
    }
    if let Some(max) = limits.pids_max() {
        files::write(&dir.join("pids.max"), &max.to_string())?;
    }
    if let Some(quota) = limits.cpu_quota() {
        files::write(&dir.join("cpu.max"), &cpu_max_line(quota))?;
    }
    Ok(())
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
        let own = root.join(own_cgroup(&read_proc_self_cgroup()?)?);
        let (base, chain) = placement(root, &own, parent)?;
        let available_file = chain[0].join("cgroup.controllers");
        let needed = needed_controllers(limits, &files::read(&available_file)?, &available_file)?;
        for dir in &chain {
            if !dir.is_dir() {
                // Like Docker, an explicit parent is created if missing and left in place.
                files::mkdir_all(dir)?;
            }
            enable_controllers(dir, &needed, &own)?;
        }
        let cgroup = CgroupV2 { dir: base.join(name) };
        files::mkdir(&cgroup.dir)?;
        let configured = (|| {
            // Before any process can join: a device opened before the program is attached stays open.
            if !limits.devices.is_empty() {
                device_bpf::attach(&cgroup.dir, &limits.devices)?;
            }
            apply_limits(&cgroup.dir, limits)
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

    /// Names of the cgroups below `parent` or our own cgroup.
    pub(crate) fn children(root: &Path, parent: Option<&Path>) -> Result<Vec<String>> {
        let own = root.join(own_cgroup(&read_proc_self_cgroup()?)?);
        let (base, _) = placement(root, &own, parent)?;
        files::child_cgroups(&base)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn oom_kills(&self) -> Result<u64> {
        let path = self.dir.join("memory.events");
        let text = files::read(&path)?;
        keyed_value(&text, "oom_kill").ok_or_else(|| Error::Parse { path, what: "no oom_kill line".into() })
    }

    /// cgroup.kill (Linux 5.14+) kills the whole subtree atomically, even a fork bomb; the
    /// kill loop then only waits for the processes to leave (and covers older kernels).
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
    fn controllers_needed() {
        let file = Path::new("/sys/fs/cgroup/x/cgroup.controllers");
        let all = "cpuset cpu io memory hugetlb pids rdma misc";
        assert_eq!(needed_controllers(&Limits::default(), all, file).unwrap(), ["memory"]);
        let limits = Limits { memory: Some(64 << 20), pids: Some(10), cpus: Some(1.0), ..Limits::default() };
        assert_eq!(needed_controllers(&limits, all, file).unwrap(), ["memory", "pids", "cpu"]);
        // No memory controller: fine without a memory limit.
        assert!(needed_controllers(&Limits::default(), "hugetlb", file).unwrap().is_empty());
        let err = needed_controllers(&limits, "memory cpu", file).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cgroup: pids limit needs the pids controller, which is not in \
             /sys/fs/cgroup/x/cgroup.controllers"
        );
    }

    #[test]
    fn subtree_control_lines() {
        assert_eq!(subtree_control_line("", &["memory", "pids"]).as_deref(), Some("+memory +pids"));
        assert_eq!(
            subtree_control_line("cpu memory\n", &["memory", "pids", "cpu"]).as_deref(),
            Some("+pids")
        );
        assert_eq!(subtree_control_line("memory pids", &["memory"]), None);
        assert_eq!(subtree_control_line("", &[]), None);
    }

    fn fake_cgroup(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        dir
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
}
