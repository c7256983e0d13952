//! cgroup v1: one directory per hierarchy.
//!
//! memory is always used, because it is where OOM kills are counted; a hierarchy a limit needs
//! (pids, cpu, cpuset, blkio) must be usable or creation fails. Besides those, the container gets
//! a directory in every other usable hierarchy of [`HIERARCHIES`], as runc joins them all: so that
//! `update` can set any limit later, and the freezer can pause it. Usable means delegated to us
//! (our cgroup there is not the root) or below an explicit parent. Hierarchies are found through
//! `/proc/self/mountinfo` (the `cgroup` mounts whose super options name the controller) and our
//! place in each through `/proc/self/cgroup`.
//!
//! Device rules go to the devices hierarchy when it is delegated to us (or a parent is given).
//! When it is not, but the host is hybrid and our cgroup in its cgroup2 (`unified`) hierarchy is
//! not the root, a directory there carries them as a BPF program instead: the kernel runs cgroup2
//! device programs on hybrid hosts too. Failing both, the container goes without device control
//! (not an error: it is the host's setup), and [`CgroupV1::device_control`] says why.

use std::path::{Path, PathBuf};

use rustix::io::Errno;

use super::freezer::{self, FreezerState, FREEZE_TIMEOUT};
use super::limits::{Apply, Max, Settings};
use super::location::SavedDir;
use super::{
    device_bpf, devices, files, read_mountinfo, read_proc_self_cgroup, relative_cgroup_path, v2,
    DeviceControl, Error, Limits, Mount, ProcCgroup, Result, SwapTotal,
};

/// The v1 hierarchies a container cgroup is made in, memory first ("devices" is handled apart:
/// its absence is not an error).
pub(crate) const HIERARCHIES: [&str; 6] = ["memory", "pids", "cpu", "cpuset", "blkio", "freezer"];

/// The [`Dir::controller`] of a hybrid host's cgroup2 directory holding the device program.
pub const UNIFIED: &str = "cgroup2";

/// The static name of a controller read back from a saved location.
pub(crate) fn controller_name(name: &str) -> Option<&'static str> {
    HIERARCHIES.into_iter().chain(["devices", UNIFIED]).find(|c| *c == name)
}

/// A v1 controller this container needs, and why (for error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Need {
    pub controller: &'static str,
    pub why: &'static str,
}

/// The hierarchies `settings` need, memory always.
pub(crate) fn needs(settings: &Settings) -> Vec<Need> {
    let memory_why = settings.memory_why().unwrap_or("OOM accounting");
    let mut needs = vec![Need { controller: "memory", why: memory_why }];
    for (controller, why) in [
        ("pids", settings.pids_why()),
        ("cpu", settings.cpu_why()),
        ("cpuset", settings.cpuset_why()),
        ("blkio", settings.block_io_why()),
    ] {
        if let Some(why) = why {
            needs.push(Need { controller, why });
        }
    }
    needs
}

/// `unified` holds cgroup2 files, which v1 hierarchies do not have.
fn refuse_unified(settings: &Settings) -> Result<()> {
    match settings.unified.keys().next() {
        Some(key) => Err(Error::Unavailable(format!(
            "unified key {key:?} is a cgroup v2 file, and this host's limits go through the v1 hierarchies"
        ))),
        None => Ok(()),
    }
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
    /// Why there is no freezer directory, when there is none.
    freezer_unavailable: Option<String>,
}

/// A directory to create: in which hierarchy, and below which existing (or explicit parent)
/// directory.
struct Planned {
    controller: &'static str,
    base: PathBuf,
    /// Where the hierarchy is mounted (for cpuset, whose levels below it are filled in).
    mount_point: Option<PathBuf>,
}

/// Everything a new v1 cgroup will be, resolved before anything is created, so that a limit we
/// cannot apply leaves nothing behind.
struct Plan {
    dirs: Vec<Planned>,
    /// A hybrid host's cgroup2 directory for the device program, below this base.
    unified_base: Option<PathBuf>,
    device_control: DeviceControl,
    freezer_unavailable: Option<String>,
}

impl Plan {
    fn new(parent: Option<&Path>, settings: &Settings, devices: &[devices::DeviceRule]) -> Result<Plan> {
        let mounts = read_mountinfo()?;
        let procs = read_proc_self_cgroup()?;
        let needs = needs(settings);
        let mut plan = Plan {
            dirs: Vec::new(),
            unified_base: None,
            device_control: DeviceControl::not_asked(),
            freezer_unavailable: None,
        };
        for need in &needs {
            let hierarchy = Hierarchy::find(need.controller, &mounts, &procs)?.ok_or_else(|| {
                Error::Unavailable(format!(
                    "{} needs the v1 {c} hierarchy, but no cgroup mount with option {c} in \
                     /proc/self/mountinfo shows our cgroup",
                    need.why,
                    c = need.controller
                ))
            })?;
            let base = hierarchy.base_dir(parent, need.why)?;
            plan.dirs.push(Planned {
                controller: need.controller,
                base,
                mount_point: Some(hierarchy.mount_point),
            });
        }
        for controller in HIERARCHIES.into_iter().filter(|c| !needs.iter().any(|n| n.controller == *c)) {
            let why = if controller == "freezer" { "pausing" } else { "a later update" };
            let usable = match Hierarchy::find(controller, &mounts, &procs)? {
                None => Err(format!("{why} needs the v1 {controller} hierarchy, but none shows our cgroup")),
                Some(hierarchy) => match hierarchy.base_dir(parent, why) {
                    Ok(base) => Ok(Planned { controller, base, mount_point: Some(hierarchy.mount_point) }),
                    Err(Error::Unavailable(why)) => Err(why),
                    Err(e) => return Err(e),
                },
            };
            match usable {
                Ok(p) => plan.dirs.push(p),
                Err(why) if controller == "freezer" => plan.freezer_unavailable = Some(why),
                Err(why) => log::debug!("cgroup v1: no {controller} directory: {why}"),
            }
        }
        if !devices.is_empty() {
            match device_placement(parent, &mounts, &procs)? {
                DevicePlacement::V1(base) => {
                    plan.dirs.push(Planned { controller: "devices", base, mount_point: None });
                    plan.device_control = DeviceControl::V1;
                }
                DevicePlacement::Unified(base) => {
                    plan.unified_base = Some(base);
                    plan.device_control = DeviceControl::Bpf;
                }
                DevicePlacement::Unavailable(why) => plan.device_control = DeviceControl::Unavailable(why),
            }
        }
        Ok(plan)
    }
}

impl CgroupV1 {
    pub(crate) fn create(name: &str, parent: Option<&Path>, limits: &Limits) -> Result<CgroupV1> {
        let settings = limits.settings(Apply::Create);
        refuse_unified(&settings)?;
        let plan = Plan::new(parent, &settings, &limits.devices)?;
        let mut cgroup = CgroupV1 {
            dirs: Vec::new(),
            device_control: plan.device_control,
            freezer_unavailable: plan.freezer_unavailable,
        };
        let built = (|| {
            for p in plan.dirs {
                if parent.is_some() {
                    // Like Docker, an explicit parent is created if missing and left in place.
                    files::mkdir_all(&p.base)?;
                }
                if let ("cpuset", Some(mount_point)) = (p.controller, &p.mount_point) {
                    fill_cpuset_chain(mount_point, &p.base)?;
                }
                let path = p.base.join(name);
                // Co-mounted controllers (cpu,cpuacct style) share one directory.
                if !cgroup.dirs.iter().any(|d| d.path == path) {
                    files::mkdir(&path)?;
                }
                cgroup.dirs.push(Dir { controller: p.controller, path });
            }
            if let Some(base) = plan.unified_base {
                let path = base.join(name);
                files::mkdir(&path)?;
                cgroup.dirs.push(Dir { controller: UNIFIED, path: path.clone() });
                device_bpf::attach(&path, &limits.devices)?;
            }
            if let Some(dir) = cgroup.dir("devices") {
                for (file, line) in devices::v1_writes(&limits.devices) {
                    files::write(&dir.join(file.name()), &line)?;
                }
            }
            cgroup.apply(&settings)?;
            if let Some(dir) = cgroup.dir("cpuset") {
                // After the requested values: only what was not asked for is inherited.
                fill_cpuset_from_parent(dir)?;
            }
            Ok(())
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
        Ok(CgroupV1 { dirs, device_control: DeviceControl::not_asked(), freezer_unavailable: None })
    }

    /// A cgroup from its saved directories (checked by the caller).
    pub(crate) fn reopen(
        saved: &[SavedDir],
        device_control: DeviceControl,
        freezer_unavailable: Option<String>,
    ) -> Result<CgroupV1> {
        let dirs = saved
            .iter()
            .map(|d| {
                let controller = controller_name(&d.controller)
                    .ok_or_else(|| Error::Invalid(format!("unknown v1 hierarchy {:?}", d.controller)))?;
                Ok(Dir { controller, path: d.path.clone() })
            })
            .collect::<Result<_>>()?;
        Ok(CgroupV1 { dirs, device_control, freezer_unavailable })
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

    pub(crate) fn freezer_unavailable(&self) -> Option<&str> {
        self.freezer_unavailable.as_deref()
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

    /// Change the limits of a running container: each hierarchy a setting needs must have a
    /// directory of this cgroup.
    pub(crate) fn update(&self, limits: &Limits) -> Result<()> {
        let settings = limits.settings(Apply::Update);
        refuse_unified(&settings)?;
        for need in needs(&settings) {
            if self.dir(need.controller).is_none() {
                return Err(Error::Unavailable(format!(
                    "{} needs the v1 {} hierarchy, and this cgroup has no directory there (it was not \
                     usable when the cgroup was created)",
                    need.why, need.controller
                )));
            }
        }
        self.apply(&settings)
    }

    fn apply(&self, s: &Settings) -> Result<()> {
        if let Some(dir) = self.dir("memory") {
            apply_memory(dir, s)?;
        }
        if let (Some(dir), Some(max)) = (self.dir("pids"), s.pids) {
            files::write(&dir.join("pids.max"), &max_text(max, "max"))?;
        }
        if let Some(dir) = self.dir("cpu") {
            if let Some(shares) = s.cpu_shares {
                files::write(&dir.join("cpu.shares"), &shares.to_string())?;
            }
            set_cpu_bandwidth(dir, s.cpu_quota, s.cpu_period)?;
        }
        if let Some(dir) = self.dir("cpuset") {
            if let Some(cpus) = s.cpuset_cpus {
                files::write(&dir.join("cpuset.cpus"), cpus)?;
            }
            if let Some(mems) = s.cpuset_mems {
                files::write(&dir.join("cpuset.mems"), mems)?;
            }
        }
        if let (Some(dir), Some(weight)) = (self.dir("blkio"), s.block_io_weight) {
            set_blkio_weight(dir, weight)?;
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

    /// The processes in the cgroup and below, from the memory hierarchy: every process of the
    /// container is there, as memory is the one hierarchy every v1 container cgroup has.
    pub(crate) fn pids(&self) -> Result<Vec<i32>> {
        let dir = self.dir("memory").or_else(|| self.dirs.first().map(|d| d.path.as_path()));
        match dir {
            Some(dir) => files::pids_below(dir),
            None => Ok(Vec::new()),
        }
    }

    fn freezer_dir(&self) -> Result<&Path> {
        self.dir("freezer").ok_or_else(|| {
            Error::Unavailable(self.freezer_unavailable.clone().unwrap_or_else(|| {
                "pausing needs a v1 freezer directory, and this cgroup has none".to_owned()
            }))
        })
    }

    pub(crate) fn freeze(&self) -> Result<()> {
        freezer::freeze_v1(self.freezer_dir()?, FREEZE_TIMEOUT)
    }

    pub(crate) fn thaw(&self) -> Result<()> {
        freezer::thaw_v1(self.freezer_dir()?)
    }

    /// Without a freezer directory nothing of ours can have frozen the cgroup: thawed.
    pub(crate) fn freezer_state(&self) -> Result<FreezerState> {
        match self.dir("freezer") {
            Some(dir) => freezer::state_v1(dir),
            None => Ok(FreezerState::Thawed),
        }
    }

    pub(crate) fn kill_all(&self) -> Result<()> {
        // A v1-frozen task does not act on SIGKILL until it is thawed.
        if let Some(dir) = self.dir("freezer").filter(|d| d.exists()) {
            freezer::thaw_v1(dir)?;
        }
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

/// A limit as v1 files write it; `unlimited` is the file's word for no limit.
fn max_text(max: Max, unlimited: &str) -> String {
    match max {
        Max::Unlimited => unlimited.to_owned(),
        Max::Value(v) => v.to_string(),
    }
}

/// Base directories for the hierarchies we use, skipping those that are not mounted and those
/// where we may not create cgroups (our cgroup is the root and no parent was given); and where
/// device rules would go.
fn usable_bases(parent: Option<&Path>) -> Result<Vec<(&'static str, PathBuf)>> {
    let mounts = read_mountinfo()?;
    let procs = read_proc_self_cgroup()?;
    let mut bases = Vec::new();
    for controller in HIERARCHIES {
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

/// The memory hierarchy's settings: the limits, the soft limit and swappiness.
pub(crate) fn apply_memory(dir: &Path, s: &Settings) -> Result<()> {
    if let Some(limit) = s.memory {
        set_memory(dir, limit, s.memory_swap, s.memory_swap_explicit)?;
    }
    if let Some(reservation) = s.memory_reservation {
        let soft = if reservation == 0 { "-1".to_owned() } else { reservation.to_string() };
        files::write(&dir.join("memory.soft_limit_in_bytes"), &soft)?;
    }
    if let Some(swappiness) = s.memory_swappiness {
        files::write(&dir.join("memory.swappiness"), &swappiness.to_string())?;
    }
    Ok(())
}

/// Write the memory limit and, if swap accounting is on (the memsw file exists), the
/// memory+swap limit.
///
/// The kernel insists on memsw >= limit after every single write. A new cgroup has both
/// unlimited, so the limit goes first, then memsw. Should the limit be refused with EINVAL
/// (memsw currently below the new limit: raising both, or lifting the limit), memsw is written
/// first instead.
pub(crate) fn set_memory(dir: &Path, limit: Max, swap: Option<SwapTotal>, swap_explicit: bool) -> Result<()> {
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
    let limit = max_text(limit, "-1");
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

/// `cpu.cfs_period_us` then `cpu.cfs_quota_us` (`-1` is no quota). A smaller period can be
/// refused (EINVAL) while the old quota would exceed what the parent allows per period; with a
/// new quota coming, the period is written again after it, as runc does.
pub(crate) fn set_cpu_bandwidth(dir: &Path, quota: Option<Max>, period: Option<u64>) -> Result<()> {
    let period_file = dir.join("cpu.cfs_period_us");
    let mut period_again = None;
    if let Some(period) = period {
        match files::write(&period_file, &period.to_string()) {
            Err(e) if files::is_errno(&e, Errno::INVAL) && quota.is_some() => period_again = Some(period),
            other => other?,
        }
    }
    if let Some(quota) = quota {
        files::write(&dir.join("cpu.cfs_quota_us"), &max_text(quota, "-1"))?;
        if let Some(period) = period_again {
            files::write(&period_file, &period.to_string())?;
        }
    }
    Ok(())
}

/// `blkio.weight` (CFQ) if the kernel has it, else `blkio.bfq.weight` (BFQ), as runc chooses.
pub(crate) fn set_blkio_weight(dir: &Path, weight: u16) -> Result<()> {
    for file in ["blkio.weight", "blkio.bfq.weight"] {
        let path = dir.join(file);
        if path.exists() {
            return files::write(&path, &weight.to_string());
        }
    }
    Err(Error::Unavailable(format!(
        "block IO weight needs blkio.weight (CFQ) or blkio.bfq.weight (BFQ), and {} has neither: no \
         proportional-weight I/O scheduler",
        dir.display()
    )))
}

/// A new v1 cpuset cgroup starts with empty `cpuset.cpus` and `cpuset.mems` (unless its parent
/// sets `cgroup.clone_children`), and no process can join it like that. Copy the parent's where
/// they are empty, as runc does.
pub(crate) fn fill_cpuset_from_parent(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else { return Ok(()) };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let path = dir.join(file);
        if files::read(&path)?.trim().is_empty() {
            let inherited = files::read(&parent.join(file))?;
            files::write(&path, inherited.trim())?;
        }
    }
    Ok(())
}

/// [`fill_cpuset_from_parent`] for every level from below the hierarchy's mount point down to
/// `base` (an explicit parent created just now has empty sets at each level), top first.
pub(crate) fn fill_cpuset_chain(mount_point: &Path, base: &Path) -> Result<()> {
    let Ok(below) = base.strip_prefix(mount_point) else { return Ok(()) };
    let mut dir = mount_point.to_path_buf();
    for c in below.components() {
        dir.push(c);
        fill_cpuset_from_parent(&dir)?;
    }
    Ok(())
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
            freezer_unavailable: None,
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
        let needs_of = |l: &Limits| {
            needs(&l.settings(Apply::Create)).iter().map(|n| (n.controller, n.why)).collect::<Vec<_>>()
        };
        assert_eq!(needs_of(&Limits::default()), [("memory", "OOM accounting")]);
        let all = Limits { memory: Some(64 << 20), pids: Some(10), cpus: Some(0.5), ..Limits::default() };
        assert_eq!(
            needs_of(&all),
            [("memory", "memory limit"), ("pids", "pids limit"), ("cpu", "cpus limit")]
        );
        let new_ones = Limits {
            memory_reservation: Some(32 << 20),
            cpu_shares: Some(512),
            cpuset_mems: Some("0".into()),
            block_io_weight: Some(500),
            ..Limits::default()
        };
        assert_eq!(
            needs_of(&new_ones),
            [
                ("memory", "memory reservation"),
                ("cpu", "cpu shares"),
                ("cpuset", "cpuset mems"),
                ("blkio", "block IO weight")
            ]
        );
        let quota = Limits { cpu_quota: Some(20_000), ..Limits::default() };
        assert_eq!(needs_of(&quota)[1], ("cpu", "cpu quota"));
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
        set_memory(dir.path(), Max::Value(32 << 20), Some(SwapTotal::Bytes(64 << 20)), false).unwrap();
        assert_eq!(contents(dir.path(), "memory.limit_in_bytes"), "33554432");
        assert_eq!(contents(dir.path(), "memory.memsw.limit_in_bytes"), "67108864");

        let dir = fake_memory_dir(true);
        set_memory(dir.path(), Max::Value(32 << 20), Some(SwapTotal::Unlimited), true).unwrap();
        assert_eq!(contents(dir.path(), "memory.memsw.limit_in_bytes"), "-1");

        // Swap accounting off: the memsw file is absent and only the limit is written.
        let dir = fake_memory_dir(false);
        set_memory(dir.path(), Max::Value(32 << 20), Some(SwapTotal::Bytes(64 << 20)), true).unwrap();
        assert_eq!(contents(dir.path(), "memory.limit_in_bytes"), "33554432");
        assert!(!dir.path().join("memory.memsw.limit_in_bytes").exists());
    }

    /// A fake v1 cgroup: one temporary directory per hierarchy, each with the (empty) files
    /// the kernel would have.
    struct FakeV1 {
        _root: tempfile::TempDir,
        cgroup: CgroupV1,
    }

    impl FakeV1 {
        fn new(hierarchies: &[(&'static str, &[&str])]) -> FakeV1 {
            let root = tempfile::tempdir().unwrap();
            let mut dirs = Vec::new();
            for (controller, files) in hierarchies {
                let path = root.path().join(controller).join("ctr");
                std::fs::create_dir_all(&path).unwrap();
                for f in *files {
                    std::fs::write(path.join(f), "").unwrap();
                }
                dirs.push(Dir { controller, path });
            }
            let cgroup =
                CgroupV1 { dirs, device_control: DeviceControl::not_asked(), freezer_unavailable: None };
            FakeV1 { _root: root, cgroup }
        }

        fn contents(&self, controller: &str, file: &str) -> String {
            contents(self.cgroup.dir(controller).unwrap(), file)
        }
    }

    const MEMORY_FILES: &[&str] = &[
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "memory.soft_limit_in_bytes",
        "memory.swappiness",
    ];
    const CPU_FILES: &[&str] = &["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"];

    /// Each new limit's v1 file and value, on create.
    #[test]
    fn new_limit_files() {
        let fake = FakeV1::new(&[
            ("memory", MEMORY_FILES),
            ("cpu", CPU_FILES),
            ("cpuset", &["cpuset.cpus", "cpuset.mems"]),
            ("blkio", &["blkio.weight"]),
        ]);
        let limits = Limits {
            memory_reservation: Some(32 << 20),
            memory_swappiness: Some(10),
            cpu_shares: Some(512),
            cpu_quota: Some(20_000),
            cpu_period: Some(50_000),
            cpuset_cpus: Some("0-1".into()),
            cpuset_mems: Some("0".into()),
            block_io_weight: Some(300),
            ..Limits::default()
        };
        fake.cgroup.apply(&limits.settings(Apply::Create)).unwrap();
        assert_eq!(fake.contents("memory", "memory.soft_limit_in_bytes"), "33554432");
        assert_eq!(fake.contents("memory", "memory.swappiness"), "10");
        assert_eq!(fake.contents("memory", "memory.limit_in_bytes"), "", "no memory limit asked");
        assert_eq!(fake.contents("cpu", "cpu.shares"), "512");
        assert_eq!(fake.contents("cpu", "cpu.cfs_quota_us"), "20000");
        assert_eq!(fake.contents("cpu", "cpu.cfs_period_us"), "50000");
        assert_eq!(fake.contents("cpuset", "cpuset.cpus"), "0-1");
        assert_eq!(fake.contents("cpuset", "cpuset.mems"), "0");
        assert_eq!(fake.contents("blkio", "blkio.weight"), "300");

        // --cpus is quota and period; shares out of range are clamped as Docker does.
        let fake = FakeV1::new(&[("memory", MEMORY_FILES), ("cpu", CPU_FILES)]);
        let cpus = Limits { cpus: Some(1.5), cpu_shares: Some(1), ..Limits::default() };
        fake.cgroup.apply(&cpus.settings(Apply::Create)).unwrap();
        assert_eq!(fake.contents("cpu", "cpu.cfs_quota_us"), "150000");
        assert_eq!(fake.contents("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(fake.contents("cpu", "cpu.shares"), "2");
        let fake = FakeV1::new(&[("memory", MEMORY_FILES), ("cpu", CPU_FILES)]);
        let unlimited = Limits { cpu_quota: Some(-1), ..Limits::default() };
        fake.cgroup.apply(&unlimited.settings(Apply::Create)).unwrap();
        assert_eq!(fake.contents("cpu", "cpu.cfs_quota_us"), "-1");
        assert_eq!(fake.contents("cpu", "cpu.cfs_period_us"), "");
    }

    #[test]
    fn blkio_weight_file_by_scheduler() {
        let bfq = FakeV1::new(&[("blkio", &["blkio.bfq.weight"])]);
        set_blkio_weight(bfq.cgroup.dir("blkio").unwrap(), 500).unwrap();
        assert_eq!(bfq.contents("blkio", "blkio.bfq.weight"), "500");
        let both = FakeV1::new(&[("blkio", &["blkio.weight", "blkio.bfq.weight"])]);
        set_blkio_weight(both.cgroup.dir("blkio").unwrap(), 500).unwrap();
        assert_eq!(
            (
                both.contents("blkio", "blkio.weight").as_str(),
                both.contents("blkio", "blkio.bfq.weight").as_str()
            ),
            ("500", "")
        );
        let neither = FakeV1::new(&[("blkio", &[])]);
        let err = set_blkio_weight(neither.cgroup.dir("blkio").unwrap(), 500).unwrap_err();
        assert!(
            matches!(&err, Error::Unavailable(m) if m.starts_with("block IO weight needs blkio.weight")),
            "{err}"
        );
    }

    /// An update writes "no limit" explicitly, and leaves alone what it is not given.
    #[test]
    fn update_files() {
        let fake = FakeV1::new(&[("memory", MEMORY_FILES), ("pids", &["pids.max"]), ("cpu", CPU_FILES)]);
        let lift = Limits {
            memory: Some(0),
            pids: Some(0),
            cpus: Some(0.0),
            memory_reservation: Some(0),
            ..Limits::default()
        };
        fake.cgroup.update(&lift).unwrap();
        assert_eq!(fake.contents("memory", "memory.limit_in_bytes"), "-1");
        assert_eq!(fake.contents("memory", "memory.memsw.limit_in_bytes"), "-1");
        assert_eq!(fake.contents("memory", "memory.soft_limit_in_bytes"), "-1");
        assert_eq!(fake.contents("memory", "memory.swappiness"), "");
        assert_eq!(fake.contents("pids", "pids.max"), "max");
        assert_eq!(fake.contents("cpu", "cpu.cfs_quota_us"), "-1");
        assert_eq!(fake.contents("cpu", "cpu.cfs_period_us"), "");

        let fake = FakeV1::new(&[("memory", MEMORY_FILES)]);
        fake.cgroup.update(&Limits { memory: Some(64 << 20), ..Limits::default() }).unwrap();
        assert_eq!(fake.contents("memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(fake.contents("memory", "memory.memsw.limit_in_bytes"), "", "no default swap on update");

        // A hierarchy the cgroup has no directory in, and cgroup2 files: refused, naming why.
        let err = fake.cgroup.update(&Limits { cpu_shares: Some(512), ..Limits::default() }).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cgroup: cpu shares needs the v1 cpu hierarchy, and this cgroup has no directory there (it was \
             not usable when the cgroup was created)"
        );
        let unified = Limits {
            unified: std::collections::BTreeMap::from([("memory.high".to_owned(), "1G".to_owned())]),
            ..Limits::default()
        };
        let err = fake.cgroup.update(&unified).unwrap_err();
        assert!(
            matches!(&err, Error::Unavailable(m) if m.starts_with("unified key \"memory.high\" is a cgroup v2 file")),
            "{err}"
        );
    }

    #[test]
    fn cpuset_inherits_what_is_not_given() {
        let root = tempfile::tempdir().unwrap();
        let mount = root.path().join("cpuset");
        let base = mount.join("docker/sub");
        let ctr = base.join("ctr");
        std::fs::create_dir_all(&ctr).unwrap();
        let write = |dir: &Path, cpus: &str, mems: &str| {
            std::fs::write(dir.join("cpuset.cpus"), cpus).unwrap();
            std::fs::write(dir.join("cpuset.mems"), mems).unwrap();
        };
        write(&mount, "0-3\n", "0\n");
        write(&mount.join("docker"), "\n", "\n");
        write(&base, "", "");
        write(&ctr, "", "");
        fill_cpuset_chain(&mount, &base).unwrap();
        assert_eq!(contents(&mount.join("docker"), "cpuset.cpus"), "0-3");
        assert_eq!(contents(&base, "cpuset.cpus"), "0-3");
        assert_eq!(contents(&base, "cpuset.mems"), "0");
        // The container's own cpus were given: only mems is inherited.
        std::fs::write(ctr.join("cpuset.cpus"), "1").unwrap();
        fill_cpuset_from_parent(&ctr).unwrap();
        assert_eq!(contents(&ctr, "cpuset.cpus"), "1");
        assert_eq!(contents(&ctr, "cpuset.mems"), "0");
    }

    #[test]
    fn freezing_without_a_freezer_directory_says_why() {
        let mut fake = FakeV1::new(&[("memory", MEMORY_FILES)]);
        let err = fake.cgroup.freeze().unwrap_err();
        assert_eq!(err.to_string(), "cgroup: pausing needs a v1 freezer directory, and this cgroup has none");
        fake.cgroup.freezer_unavailable =
            Some("pausing needs the v1 freezer hierarchy, but none shows our cgroup".into());
        let err = fake.cgroup.freeze().unwrap_err();
        assert_eq!(
            err.to_string(),
            "cgroup: pausing needs the v1 freezer hierarchy, but none shows our cgroup"
        );
        assert!(matches!(fake.cgroup.thaw(), Err(Error::Unavailable(_))));
        assert_eq!(fake.cgroup.freezer_state().unwrap(), FreezerState::Thawed);

        let with_freezer = FakeV1::new(&[("memory", MEMORY_FILES), ("freezer", &["freezer.state"])]);
        with_freezer.cgroup.freeze().unwrap();
        assert_eq!(with_freezer.contents("freezer", "freezer.state"), "FROZEN");
        assert_eq!(with_freezer.cgroup.freezer_state().unwrap(), FreezerState::Frozen);
        with_freezer.cgroup.thaw().unwrap();
        assert_eq!(with_freezer.cgroup.freezer_state().unwrap(), FreezerState::Thawed);
    }
}
