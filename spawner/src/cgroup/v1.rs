//! cgroup v1: one directory per hierarchy, created only in the hierarchies a container needs.
//!
//! memory is always used, because it is where OOM kills are counted; pids and cpu only when a
//! limit asks for them. Hierarchies are found through `/proc/self/mountinfo` (the `cgroup`
//! mounts whose super options name the controller) and our place in each through
//! `/proc/self/cgroup`.
//!
//! Device rules go to the devices hierarchy when it is delegated to us (or a parent is given).
//! When it is not, but the host is hybrid and our cgroup in its cgroup2 (`unified`) hierarchy is
//! not the root, a directory there carries them as a BPF program instead: the kernel runs cgroup2
//! device programs on hybrid hosts too. Failing both, the container goes without device control
//! (not an error: it is the host's setup), and [`CgroupV1::device_control`] says why.

use std::path::{Path, PathBuf};

use rustix::io::Errno;

use super::{
    device_bpf, devices, files, read_mountinfo, read_proc_self_cgroup, relative_cgroup_path, v2,
    DeviceControl, Error, Limits, Mount, ProcCgroup, Result, SwapTotal, CPU_PERIOD_US,
};

/// The v1 hierarchies this module creates cgroups in for limits ("devices" is handled apart:
/// its absence is not an error).
const LIMIT_CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// The [`Dir::controller`] of a hybrid host's cgroup2 directory holding the device program.
pub const UNIFIED: &str = "cgroup2";

/// A v1 controller this container needs, and why (for error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Need {
    pub controller: &'static str,
    pub why: &'static str,
}

pub(crate) fn needs(limits: &Limits) -> Vec<Need> {
    let memory_why = if limits.memory_max().is_some() { "memory limit" } else { "OOM accounting" };
    let mut needs = vec![Need { controller: "memory", why: memory_why }];
    if limits.pids_max().is_some() {
        needs.push(Need { controller: "pids", why: "pids limit" });
    }
    if limits.cpu_quota().is_some() {
        needs.push(Need { controller: "cpu", why: "cpus limit" });
    }
    needs
}

/// A mounted v1 hierarchy and where our process is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    pub controller: &'static str,
    pub mount_point: PathBuf,
    /// The hierarchy directory that is mounted, relative to the hierarchy root ("" for all of it).
    pub mount_root: PathBuf,
    /// Our cgroup, relative to the hierarchy root ("" when we are in the root cgroup).
    pub own: PathBuf,
}

impl Hierarchy {
    /// The hierarchy holding `controller`, if one is mounted where we can see our own cgroup.
    pub(crate) fn find(
        controller: &'static str,
        mounts: &[Mount],
        procs: &[ProcCgroup],
    ) -> Result<Option<Hierarchy>> {
        let Some(line) =
            procs.iter().find(|p| p.hierarchy != 0 && p.controllers.iter().any(|c| c == controller))
        else {
            return Ok(None);
        };
        let own = relative_cgroup_path(Path::new(&line.path))?;
        for m in mounts {
            if m.fs_type != "cgroup" || !m.super_options.iter().any(|o| o == controller) {
                continue;
            }
            let mount_root = relative_cgroup_path(Path::new(&m.root))?;
            // A bind mount of a subtree only shows cgroups below its root.
            if own.starts_with(&mount_root) {
                return Ok(Some(Hierarchy {
                    controller,
                    mount_point: m.mount_point.clone(),
                    mount_root,
                    own,
                }));
            }
        }
        Ok(None)
    }

    /// The directory of the cgroup `rel` (relative to the hierarchy root), if this mount shows it.
    fn dir_of(&self, rel: &Path) -> Option<PathBuf> {
        let below_mount = rel.strip_prefix(&self.mount_root).ok()?;
        Some(self.mount_point.join(below_mount))
    }

    /// Where a container cgroup goes in this hierarchy: below `parent` if given, else below our
    /// own cgroup, which must not be the hierarchy root (in the root we were delegated nothing).
    pub(crate) fn base_dir(&self, parent: Option<&Path>, why: &str) -> Result<PathBuf> {
        let rel = match parent {
            Some(p) => relative_cgroup_path(p)?,
            None if self.own.as_os_str().is_empty() => {
                return Err(Error::Unavailable(format!(
                    "{why} needs the v1 {c} hierarchy ({m}) below /, which is not delegated to us \
                     (our cgroup there is the root); give an explicit cgroup parent to use it anyway",
                    c = self.controller,
                    m = self.mount_point.display(),
                )))
            }
            None => self.own.clone(),
        };
        self.dir_of(&rel).ok_or_else(|| {
            Error::Unavailable(format!(
                "cgroup {} is outside the part of the v1 {} hierarchy mounted at {}",
                rel.display(),
                self.controller,
                self.mount_point.display()
            ))
        })
    }
}

/// Where a container's device rules can be enforced on a v1 or hybrid host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DevicePlacement {
    /// In the v1 devices hierarchy, in a cgroup below this directory.
    V1(PathBuf),
    /// As a BPF program on a cgroup2 directory below this one.
    Unified(PathBuf),
    /// Nowhere, and why.
    Unavailable(String),
}

/// Where device rules go (see the module comment). The cgroup2 fallback is only taken below our
/// own cgroup: an explicit parent is a place in the v1 hierarchies.
pub(crate) fn device_placement(
    parent: Option<&Path>,
    mounts: &[Mount],
    procs: &[ProcCgroup],
) -> Result<DevicePlacement> {
    let v1_reason = match Hierarchy::find("devices", mounts, procs)? {
        None => "no v1 devices hierarchy shows our cgroup".to_owned(),
        Some(h) if parent.is_none() && h.own.as_os_str().is_empty() => format!(
            "the v1 devices hierarchy ({}) is not delegated to us (our cgroup there is its root)",
            h.mount_point.display()
        ),
        Some(h) => return h.base_dir(parent, "device rules").map(DevicePlacement::V1),
    };
    if parent.is_some() {
        return Ok(DevicePlacement::Unavailable(v1_reason));
    }
    Ok(match unified_base(mounts, procs) {
        Ok(base) => DevicePlacement::Unified(base),
        Err(why) => DevicePlacement::Unavailable(format!("{v1_reason}, and {why}")),
    })
}

/// Our own cgroup's directory in a cgroup2 mount, if there is one and it is not the root.
fn unified_base(mounts: &[Mount], procs: &[ProcCgroup]) -> std::result::Result<PathBuf, String> {
    let own = v2::own_cgroup(procs).map_err(|_| "we are in no cgroup2 hierarchy".to_owned())?;
    let shown = mounts.iter().filter(|m| m.fs_type == "cgroup2").find_map(|m| {
        let mount_root = relative_cgroup_path(Path::new(&m.root)).ok()?;
        Some((m, own.strip_prefix(mount_root).ok()?))
    });
    match shown {
        None => Err("no cgroup2 mount shows our cgroup".into()),
        Some((m, _)) if own.as_os_str().is_empty() => {
            Err(format!("our cgroup in the cgroup2 hierarchy ({}) is its root", m.mount_point.display()))
        }
        Some((m, below_mount)) => Ok(m.mount_point.join(below_mount)),
    }
}

/// One directory of a v1 cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dir {
    /// The v1 controller, or [`UNIFIED`].
    pub controller: &'static str,
    pub path: PathBuf,
}

/// A container cgroup on a v1 (or hybrid) host: one directory per hierarchy used, memory first.
#[derive(Debug)]
pub struct CgroupV1 {
    dirs: Vec<Dir>,
    device_control: DeviceControl,
}

impl CgroupV1 {
    pub(crate) fn create(name: &str, parent: Option<&Path>, limits: &Limits) -> Result<CgroupV1> {
        let mounts = read_mountinfo()?;
        let procs = read_proc_self_cgroup()?;
        // Resolve every hierarchy before creating anything, so that a limit we cannot apply
        // leaves nothing behind.
        let mut planned = Vec::new();
        for need in needs(limits) {
            let h = Hierarchy::find(need.controller, &mounts, &procs)?.ok_or_else(|| {
                Error::Unavailable(format!(
                    "{} needs the v1 {c} hierarchy, but no cgroup mount with option {c} in \
                     /proc/self/mountinfo shows our cgroup",
                    need.why,
                    c = need.controller
                ))
            })?;
            planned.push((need.controller, h.base_dir(parent, need.why)?));
        }
        let mut device_control = DeviceControl::not_asked();
        let mut unified = None;
        if !limits.devices.is_empty() {
            match device_placement(parent, &mounts, &procs)? {
                DevicePlacement::V1(base) => {
                    planned.push(("devices", base));
                    device_control = DeviceControl::V1;
                }
                DevicePlacement::Unified(base) => {
                    unified = Some(base);
                    device_control = DeviceControl::Bpf;
                }
                DevicePlacement::Unavailable(why) => device_control = DeviceControl::Unavailable(why),
            }
        }

        let mut cgroup = CgroupV1 { dirs: Vec::new(), device_control };
        let built = (|| {
            for (controller, base) in planned {
                if parent.is_some() {
                    // Like Docker, an explicit parent is created if missing and left in place.
                    files::mkdir_all(&base)?;
                }
                let path = base.join(name);
                files::mkdir(&path)?;
                cgroup.dirs.push(Dir { controller, path });
            }
            if let Some(base) = unified {
                let path = base.join(name);
                files::mkdir(&path)?;
                cgroup.dirs.push(Dir { controller: UNIFIED, path: path.clone() });
                device_bpf::attach(&path, &limits.devices)?;
            }
            cgroup.apply(limits)
        })();
        match built {
            Ok(()) => {
                log::debug!("cgroup v1 {name}: {:?}", cgroup.dirs);
                Ok(cgroup)
            }
            Err(e) => {
                if let Err(cleanup) = cgroup.remove_dirs() {
                    log::warn!("cleaning up after failed cgroup create: {cleanup}");
                }
                Err(e)
            }
        }
    }

    /// The cgroup `name` as it exists in the hierarchies we use, for removing leftovers.
    pub(crate) fn existing(name: &str, parent: Option<&Path>) -> Result<CgroupV1> {
        let dirs = usable_bases(parent)?
            .into_iter()
            .map(|(controller, base)| Dir { controller, path: base.join(name) })
            .filter(|d| d.path.is_dir())
            .collect();
        Ok(CgroupV1 { dirs, device_control: DeviceControl::not_asked() })
    }

    /// Names of the cgroups below `parent` (or our own cgroup) in the hierarchies we use.
    pub(crate) fn children(parent: Option<&Path>) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for (_, base) in usable_bases(parent)? {
            names.extend(files::child_cgroups(&base)?);
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    pub fn dirs(&self) -> &[Dir] {
        &self.dirs
    }

    pub(crate) fn device_control(&self) -> &DeviceControl {
        &self.device_control
    }

    /// `tasks` in each v1 directory, `cgroup.procs` in the cgroup2 one (see
    /// [`super::Cgroup::self_join_files`]).
    pub(crate) fn self_join_files(&self) -> Vec<PathBuf> {
        let file = |d: &Dir| if d.controller == UNIFIED { "cgroup.procs" } else { "tasks" };
        self.dirs.iter().map(|d| d.path.join(file(d))).collect()
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs.iter().find(|d| d.controller == controller).map(|d| d.path.as_path())
    }

    fn apply(&self, limits: &Limits) -> Result<()> {
        if let (Some(dir), Some(limit)) = (self.dir("memory"), limits.memory_max()) {
            set_memory(dir, limit, limits.swap_total(), limits.memory_swap.is_some())?;
        }
        if let (Some(dir), Some(max)) = (self.dir("pids"), limits.pids_max()) {
            files::write(&dir.join("pids.max"), &max.to_string())?;
        }
        if let (Some(dir), Some(quota)) = (self.dir("cpu"), limits.cpu_quota()) {
            files::write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
            files::write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
        }
        if let Some(dir) = self.dir("devices") {
            for (file, line) in devices::v1_writes(&limits.devices) {
                files::write(&dir.join(file.name()), &line)?;
            }
        }
        Ok(())
    }

    pub(crate) fn oom_kills(&self) -> Result<u64> {
        let dir = self.dir("memory").ok_or_else(|| {
            Error::Unavailable("cgroup has no v1 memory directory to count OOM kills in".into())
        })?;
        let path = dir.join("memory.oom_control");
        let text = files::read(&path)?;
        super::keyed_value(&text, "oom_kill")
            .ok_or_else(|| Error::Parse { path, what: "no oom_kill line (kernel before 4.13?)".into() })
    }

    pub(crate) fn kill_all(&self) -> Result<()> {
        let dirs: Vec<&Path> = self.dirs.iter().map(|d| d.path.as_path()).collect();
        files::kill_all(&dirs)
    }

    /// Remove the directory in every hierarchy, trying all of them; the first error is returned.
    pub(crate) fn remove_dirs(&self) -> Result<()> {
        let mut first_error = None;
        for d in &self.dirs {
            if let Err(e) = files::remove_tree(&d.path) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Base directories for the hierarchies we use, skipping those that are not mounted and those
/// where we may not create cgroups (our cgroup is the root and no parent was given); and where
/// device rules would go.
fn usable_bases(parent: Option<&Path>) -> Result<Vec<(&'static str, PathBuf)>> {
    let mounts = read_mountinfo()?;
    let procs = read_proc_self_cgroup()?;
    let mut bases = Vec::new();
    for controller in LIMIT_CONTROLLERS {
        if let Some(h) = Hierarchy::find(controller, &mounts, &procs)? {
            if let Ok(base) = h.base_dir(parent, "looking for leftover cgroups") {
                bases.push((controller, base));
            }
        }
    }
    match device_placement(parent, &mounts, &procs) {
        Ok(DevicePlacement::V1(base)) => bases.push(("devices", base)),
        Ok(DevicePlacement::Unified(base)) => bases.push((UNIFIED, base)),
        Ok(DevicePlacement::Unavailable(_)) | Err(_) => {}
    }
    Ok(bases)
}

/// Write the memory limit and, if swap accounting is on (the memsw file exists), the
/// memory+swap limit.
///
/// The kernel insists on memsw >= limit after every single write. A new cgroup has both
/// unlimited, so the limit goes first, then memsw. Should the limit be refused with EINVAL
/// (memsw currently below the new limit), memsw is written first instead.
pub(crate) fn set_memory(dir: &Path, limit: u64, swap: Option<SwapTotal>, swap_explicit: bool) -> Result<()> {
    let limit_file = dir.join("memory.limit_in_bytes");
    let memsw_file = dir.join("memory.memsw.limit_in_bytes");
    let memsw = swap.map(|s| match s {
        SwapTotal::Unlimited => "-1".to_string(),
        SwapTotal::Bytes(b) => b.to_string(),
    });
    let memsw = match memsw {
        Some(_) if !memsw_file.exists() => {
            // Docker warns and carries on the same way.
            if swap_explicit {
                log::warn!("no {}: swap accounting is off, memory-swap limit ignored", memsw_file.display());
            }
            None
        }
        m => m,
    };
    let limit = limit.to_string();
    match (files::write(&limit_file, &limit), memsw) {
        (Ok(()), Some(memsw)) => files::write(&memsw_file, &memsw),
        (Ok(()), None) => Ok(()),
        (Err(e), Some(memsw)) if files::is_errno(&e, Errno::INVAL) => {
            files::write(&memsw_file, &memsw)?;
            files::write(&limit_file, &limit)
        }
        (Err(e), _) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::{parse_mountinfo, parse_proc_cgroup};

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const PROC_CGROUP: &str = "\
8:pids:/
4:memory:/process_api/27f3
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

    fn hierarchy(controller: &'static str) -> Option<Hierarchy> {
        let mounts = parse_mountinfo(MOUNTINFO).unwrap();
        let procs = parse_proc_cgroup(PROC_CGROUP).unwrap();
        Hierarchy::find(controller, &mounts, &procs).unwrap()
    }

    #[test]
    fn finds_hierarchies_by_super_option() {
        let memory = hierarchy("memory").unwrap();
        assert_eq!(memory.mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(memory.own, PathBuf::from("process_api/27f3"));
        assert_eq!(
            memory.base_dir(None, "x").unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/process_api/27f3")
        );
        // "cpu" must not match the cpuacct or cpuset mounts.
        assert_eq!(hierarchy("cpu").unwrap().mount_point, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert!(hierarchy("blkio").is_none());
    }

    #[test]
    fn refuses_hierarchy_root_without_explicit_parent() {
        let pids = hierarchy("pids").unwrap();
        let err = pids.base_dir(None, "pids limit").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "cgroup: pids limit needs the v1 pids hierarchy (/sys/fs/cgroup/pids) below /, \
                 which is not delegated to us (our cgroup there is the root)"
            ),
            "{err}"
        );
        assert_eq!(
            pids.base_dir(Some(Path::new("/docker")), "pids limit").unwrap(),
            PathBuf::from("/sys/fs/cgroup/pids/docker")
        );
    }

    #[test]
    fn bind_mounted_subtree() {
        let mounts = parse_mountinfo("1 0 0:1 /outer /cg/memory rw - cgroup cgroup rw,memory\n").unwrap();
        let inside = parse_proc_cgroup("4:memory:/outer/me\n").unwrap();
        let h = Hierarchy::find("memory", &mounts, &inside).unwrap().unwrap();
        assert_eq!(h.base_dir(None, "x").unwrap(), PathBuf::from("/cg/memory/me"));
        assert!(h.base_dir(Some(Path::new("/elsewhere")), "x").is_err());
        let outside = parse_proc_cgroup("4:memory:/other\n").unwrap();
        assert_eq!(Hierarchy::find("memory", &mounts, &outside).unwrap(), None);
    }

    /// Mounts of a hybrid host: devices and the controller-less cgroup2 `unified`.
    const HYBRID_MOUNTINFO: &str = "\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    fn placement(proc_cgroup: &str, mountinfo: &str, parent: Option<&str>) -> DevicePlacement {
        let mounts = parse_mountinfo(mountinfo).unwrap();
        let procs = parse_proc_cgroup(proc_cgroup).unwrap();
        device_placement(parent.map(Path::new), &mounts, &procs).unwrap()
    }

    #[test]
    fn device_rules_placement() {
        // This test machine: devices and cgroup2 both at their root.
        let here = "5:devices:/\n4:memory:/process_api/27f3\n0::/\n";
        assert_eq!(
            placement(here, HYBRID_MOUNTINFO, None),
            DevicePlacement::Unavailable(
                "the v1 devices hierarchy (/sys/fs/cgroup/devices) is not delegated to us (our cgroup \
                 there is its root), and our cgroup in the cgroup2 hierarchy (/sys/fs/cgroup/unified) is \
                 its root"
                    .into()
            )
        );
        // An explicit parent may be placed in the devices hierarchy, as for pids and cpu.
        assert_eq!(
            placement(here, HYBRID_MOUNTINFO, Some("/docker")),
            DevicePlacement::V1("/sys/fs/cgroup/devices/docker".into())
        );
        // A delegated devices hierarchy is used first.
        let delegated = "5:devices:/user.slice\n0::/user.slice/session-1.scope\n";
        assert_eq!(
            placement(delegated, HYBRID_MOUNTINFO, None),
            DevicePlacement::V1("/sys/fs/cgroup/devices/user.slice".into())
        );
        // Not delegated, but our cgroup2 cgroup is not the root: a BPF program there.
        let in_unified = "5:devices:/\n0::/user.slice/session-1.scope\n";
        assert_eq!(
            placement(in_unified, HYBRID_MOUNTINFO, None),
            DevicePlacement::Unified("/sys/fs/cgroup/unified/user.slice/session-1.scope".into())
        );
        // ... but not below an explicit parent, which names a place in the v1 hierarchies.
        let no_devices_mount = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                                41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            placement(in_unified, no_devices_mount, Some("/docker")),
            DevicePlacement::Unavailable("no v1 devices hierarchy shows our cgroup".into())
        );
        // A legacy host: no cgroup2 mount at all.
        let legacy = "36 31 0:33 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n";
        let DevicePlacement::Unavailable(why) = placement(in_unified, legacy, None) else { panic!() };
        assert!(why.ends_with(", and no cgroup2 mount shows our cgroup"), "{why}");
    }

    #[test]
    fn join_files_per_directory_kind() {
        let cgroup = CgroupV1 {
            dirs: vec![
                Dir { controller: "memory", path: "/cg/memory/x".into() },
                Dir { controller: "devices", path: "/cg/devices/x".into() },
                Dir { controller: UNIFIED, path: "/cg/unified/x".into() },
            ],
            device_control: DeviceControl::Bpf,
        };
        assert_eq!(
            cgroup.self_join_files(),
            [
                PathBuf::from("/cg/memory/x/tasks"),
                PathBuf::from("/cg/devices/x/tasks"),
                PathBuf::from("/cg/unified/x/cgroup.procs")
            ]
        );
    }

    #[test]
    fn needs_only_what_limits_ask_for() {
        let controllers = |l: &Limits| needs(l).iter().map(|n| n.controller).collect::<Vec<_>>();
        assert_eq!(controllers(&Limits::default()), ["memory"]);
        let all = Limits { memory: Some(64 << 20), pids: Some(10), cpus: Some(0.5), ..Limits::default() };
        assert_eq!(controllers(&all), ["memory", "pids", "cpu"]);
    }

    fn fake_memory_dir(with_memsw: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("memory.limit_in_bytes"), "").unwrap();
        if with_memsw {
            std::fs::write(dir.path().join("memory.memsw.limit_in_bytes"), "").unwrap();
        }
        dir
    }

    fn contents(dir: &Path, file: &str) -> String {
        std::fs::read_to_string(dir.join(file)).unwrap()
    }

    #[test]
    fn memory_and_memsw_files() {
        let dir = fake_memory_dir(true);
        set_memory(dir.path(), 32 << 20, Some(SwapTotal::Bytes(64 << 20)), false).unwrap();
        assert_eq!(contents(dir.path(), "memory.limit_in_bytes"), "33554432");
        assert_eq!(contents(dir.path(), "memory.memsw.limit_in_bytes"), "67108864");

        let dir = fake_memory_dir(true);
        set_memory(dir.path(), 32 << 20, Some(SwapTotal::Unlimited), true).unwrap();
        assert_eq!(contents(dir.path(), "memory.memsw.limit_in_bytes"), "-1");

        // Swap accounting off: the memsw file is absent and only the limit is written.
        let dir = fake_memory_dir(false);
        set_memory(dir.path(), 32 << 20, Some(SwapTotal::Bytes(64 << 20)), true).unwrap();
        assert_eq!(contents(dir.path(), "memory.limit_in_bytes"), "33554432");
        assert!(!dir.path().join("memory.memsw.limit_in_bytes").exists());
    }
}
