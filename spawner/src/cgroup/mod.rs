//! Container cgroups, v1 and v2 behind one interface.
//!
//! [`Cgroup::create`] makes one cgroup per container, applies [`Limits`] (Docker's `--memory`,
//! `--memory-swap`, `--pids-limit`, `--cpus`, and the device rules of [`devices`]), and later moves
//! processes in, reports OOM kills, kills everything inside and removes itself.
//!
//! Which version is used is decided at run time by [`detect`]: if `/sys/fs/cgroup` is a cgroup2
//! mount the host is pure v2 (the usual systemd host today) and [`v2`] is used. Otherwise it is
//! a legacy or hybrid host (a tmpfs with v1 hierarchies below it, maybe plus a controller-less
//! `unified` cgroup2 mount for systemd); limits there can only be applied through the v1
//! hierarchies, so [`v1`] is used.
//!
//! Placement: without an explicit parent the container cgroup goes below the cgroup *we* are in
//! (read from `/proc/self/cgroup`), which is the part of the tree that was delegated to us. In
//! v1 we refuse to create directly below a hierarchy root unless the parent is given explicitly:
//! being in the root cgroup of a hierarchy means nobody delegated it to us.
//!
//! Device rules are enforced by a BPF program on v2 ([`device_bpf`]) and by the devices controller
//! on v1, where that hierarchy is delegated to us; on a hybrid host where it is not, a cgroup2
//! directory of ours below the `unified` mount can carry the BPF program instead. Where neither
//! exists the container runs without device control, and [`Cgroup::device_control`] says why.
//!
//! For an OCI runtime's commands: [`Cgroup::update`] changes limits of a running container,
//! [`Cgroup::freeze`] and [`Cgroup::thaw`] pause and resume it ([`freezer`]), [`Cgroup::pids`]
//! lists its processes, and [`Cgroup::location`] / [`Cgroup::reopen`] let a later process (runc's
//! command line runs one per verb) find the cgroup again ([`location`]). [`limits`] holds what the
//! limits mean and how they are checked.
//!
//! Leftovers: a spawner that is SIGKILLed cannot remove its cgroup. Name container cgroups with a
//! common prefix (e.g. `spawner-<pid>-<n>`) and call [`remove_stale`] on start-up with a predicate
//! that says whether the owner of a name is still alive.

mod device_bpf;
pub mod devices;
mod files;
mod freezer;
mod limits;
pub mod location;
pub mod systemd;
pub mod v1;
pub mod v2;

#[cfg(test)]
mod root_tests;

use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

pub use devices::{always_allowed, docker_default, Access, DeviceKind, DeviceRule};
pub use freezer::FreezerState;
pub(crate) use limits::SwapTotal;
pub use limits::{parse_size, Limits, CPU_PERIOD_US, MIN_MEMORY};
pub use location::{CgroupLocation, SavedDir};

/// Where the cgroup filesystem (v2) or the tmpfs holding the v1 hierarchies is mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// `CGROUP2_SUPER_MAGIC` from `linux/magic.h`: the `f_type` statfs reports for cgroup2.
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

pub type Result<T> = std::result::Result<T, Error>;

/// Every failure in this module. `Display` is one line that names the operation and the path.
#[derive(Debug)]
pub enum Error {
    /// A filesystem operation on a cgroup file or directory failed.
    Io { op: &'static str, path: PathBuf, source: io::Error },
    /// A file had contents we could not understand.
    Parse { path: PathBuf, what: String },
    /// A limit needs a controller or hierarchy we cannot use here; the message says which and why.
    Unavailable(String),
    /// Invalid input: limits, a cgroup name, a size string, a parent path.
    Invalid(String),
    /// Processes were still in the cgroup after killing them for a while.
    StillPopulated { path: PathBuf, pids: Vec<i32> },
    /// The kernel did not get to a state in time (a freeze that did not finish).
    Timeout { op: &'static str, path: PathBuf, what: String },
    /// systemd (the `--systemd-cgroup` driver) refused or could not be asked: what and why.
    Systemd(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io { op, path: path.into(), source }
    }

    /// The errno of an I/O failure, so callers can tell e.g. EBUSY from ENOENT.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, path, source } => {
                write!(f, "cgroup: {op} {}: {}", path.display(), errno_text(source))
            }
            Error::Parse { path, what } => write!(f, "cgroup: parse {}: {what}", path.display()),
            Error::Unavailable(msg) | Error::Invalid(msg) => write!(f, "cgroup: {msg}"),
            Error::StillPopulated { path, pids } => {
                write!(f, "cgroup: kill {}: processes {pids:?} still there after SIGKILL", path.display())
            }
            Error::Timeout { op, path, what } => write!(f, "cgroup: {op} {}: {what}", path.display()),
            Error::Systemd(msg) => write!(f, "systemd: {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `Device or resource busy` rather than std's `Device or resource busy (os error 16)`: the
/// messages read like the kernel's own, and the number is still there through `source()`.
fn errno_text(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text.strip_suffix(&format!(" (os error {code})")).map(str::to_owned).unwrap_or(text),
        None => text,
    }
}

/// The cgroup version this module drives on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    /// Legacy or hybrid host: limits through the v1 hierarchies.
    V1,
    /// Unified host: `/sys/fs/cgroup` is cgroup2.
    V2,
}

/// Moves the calling (single-threaded) process into a cgroup through the files
/// [`Cgroup::self_join_files`] named. Made of plain syscalls, so it can run in a freshly cloned child.
pub fn join_self(files: &[PathBuf]) -> std::result::Result<(), String> {
    for file in files {
        let fd = rustix::fs::open(
            file,
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| format!("cgroup: open {}: {e}", file.display()))?;
        rustix::io::write(&fd, b"0").map_err(|e| format!("cgroup: write {}: {e}", file.display()))?;
    }
    Ok(())
}

/// Decide v1 or v2 the way runc and systemd do: by the filesystem type of `/sys/fs/cgroup`.
pub fn detect() -> Result<Version> {
    let st = rustix::fs::statfs(CGROUP_ROOT).map_err(|e| Error::io("statfs", CGROUP_ROOT, e.into()))?;
    // f_type is a signed long on most architectures and u32 on a few; the magic fits either.
    #[allow(clippy::unnecessary_cast)]
    let fs_type = st.f_type as u64 & 0xffff_ffff;
    Ok(if fs_type == CGROUP2_SUPER_MAGIC { Version::V2 } else { Version::V1 })
}

/// One line of `/proc/<pid>/cgroup`: `hierarchy-ID:controller-list:cgroup-path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcCgroup {
    pub hierarchy: u32,
    /// Empty for the v2 line (`0::/path`); `name=systemd` for named v1 hierarchies.
    pub controllers: Vec<String>,
    pub path: String,
}

pub(crate) fn parse_proc_cgroup(text: &str) -> std::result::Result<Vec<ProcCgroup>, String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            // The path is last and may itself contain ':'.
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("line {line:?} is not id:controllers:path"));
            };
            Ok(ProcCgroup {
                hierarchy: id.parse().map_err(|_| format!("bad hierarchy id in {line:?}"))?,
                controllers: ctrls.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

pub(crate) fn read_proc_self_cgroup() -> Result<Vec<ProcCgroup>> {
    let path = Path::new("/proc/self/cgroup");
    let text = files::read(path)?;
    parse_proc_cgroup(&text).map_err(|what| Error::Parse { path: path.into(), what })
}

/// The fields of a `/proc/self/mountinfo` line that matter for finding cgroup hierarchies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The directory of the filesystem that is mounted: `/` unless a subtree was bind-mounted.
    pub root: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
    /// For v1 cgroup mounts these name the controllers: `rw,cpu,cpuacct`, `rw,name=systemd`.
    pub super_options: Vec<String>,
}

/// Parse mountinfo: `id parent maj:min root mount-point options [optional...] - type source
/// super-options`. The optional fields vary in number, so the lone `-` is the anchor.
pub(crate) fn parse_mountinfo(text: &str) -> std::result::Result<Vec<Mount>, String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields
                .iter()
                .skip(6)
                .position(|f| *f == "-")
                .map(|p| p + 6)
                .ok_or_else(|| format!("no separator in {line:?}"))?;
            if fields.len() < sep + 4 {
                return Err(format!("too few fields in {line:?}"));
            }
            Ok(Mount {
                root: unescape_mountinfo(fields[3]),
                mount_point: PathBuf::from(unescape_mountinfo(fields[4])),
                fs_type: fields[sep + 1].to_owned(),
                super_options: fields[sep + 3].split(',').map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// The kernel writes space, tab, newline and backslash in mountinfo paths as `\ooo` octal.
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let Some(d) = octal {
            let value =
                (u32::from(d[0] - b'0') << 6) | (u32::from(d[1] - b'0') << 3) | u32::from(d[2] - b'0');
            out.push(value as u8);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn read_mountinfo() -> Result<Vec<Mount>> {
    let path = Path::new("/proc/self/mountinfo");
    let text = files::read(path)?;
    parse_mountinfo(&text).map_err(|what| Error::Parse { path: path.into(), what })
}

/// The value of `key` in a flat keyed file such as v2 `memory.events` or v1
/// `memory.oom_control` (`oom_kill 3`).
pub(crate) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// Turn a cgroup path relative to a hierarchy root (`/a/b`, `a/b`) into path components we can
/// join below a mount point. `..` is refused: a parent must not escape the hierarchy.
pub(crate) fn relative_cgroup_path(p: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::Invalid(format!("cgroup path {} must not contain ..", p.display())))
            }
        }
    }
    Ok(out)
}

fn validate_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > 255
        || name.contains(['/', '\0', '\n'])
        || name == v2::LEAF;
    if bad {
        return Err(Error::Invalid(format!(
            "cgroup name {name:?} must be one non-empty path component other than {:?}",
            v2::LEAF
        )));
    }
    Ok(())
}

/// What enforces a container's device rules on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceControl {
    /// A BPF program attached to the container's cgroup2 directory.
    Bpf,
    /// The v1 devices controller (`devices.deny`, `devices.allow`).
    V1,
    /// Nothing; the reason, in one line.
    Unavailable(String),
}

impl DeviceControl {
    fn not_asked() -> DeviceControl {
        DeviceControl::Unavailable("no device rules were given".into())
    }
}

/// `device rules enforced by ...` / `device rules not enforced: <why>`.
impl fmt::Display for DeviceControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceControl::Bpf => f.write_str("device rules enforced by a cgroup2 BPF program"),
            DeviceControl::V1 => f.write_str("device rules enforced by the v1 devices controller"),
            DeviceControl::Unavailable(why) => write!(f, "device rules not enforced: {why}"),
        }
    }
}

enum Backend {
    V1(v1::CgroupV1),
    V2(v2::CgroupV2),
}

/// One container's cgroup, in every hierarchy that is used on this host.
///
/// Dropping the handle that [`Cgroup::create`] returned, without [`Cgroup::remove`] or
/// [`Cgroup::into_location`], still kills what is inside and removes the cgroup, best effort,
/// logging failures: a container's cgroup must not outlive the spawner that created it unless it
/// is handed on. A handle from [`Cgroup::reopen`] removes nothing when dropped.
pub struct Cgroup {
    name: String,
    backend: Backend,
    /// Bytes, 0 for none; atomic so that [`Cgroup::update`] can change it through `&self`.
    memory_limit: AtomicU64,
    device_control: DeviceControl,
    /// Whether dropping this handle removes the cgroup.
    remove_on_drop: bool,
    /// The systemd unit that owns the cgroup ([`systemd`]): stopped on removal, and told of
    /// updates.
    systemd_unit: Option<String>,
}

impl Cgroup {
    /// Create the cgroup `name` and apply `limits`.
    ///
    /// `parent` is Docker's `--cgroup-parent`: a path relative to the hierarchy root, created if
    /// missing (and left in place on removal). `None` puts the cgroup below our own cgroup. On
    /// failure nothing this call created is left behind.
    ///
    /// Device rules are in force before this returns, so before any process can join. A v2 host
    /// that cannot load or attach the program is an error; a v1 host without a usable devices
    /// hierarchy is not (see [`Cgroup::device_control`]).
    pub fn create(name: &str, parent: Option<&Path>, limits: &Limits) -> Result<Cgroup> {
        validate_name(name)?;
        limits.validate()?;
        let (backend, device_control) = match detect()? {
            Version::V1 => {
                let c = v1::CgroupV1::create(name, parent, limits)?;
                let control = c.device_control().clone();
                (Backend::V1(c), control)
            }
            Version::V2 => {
                let c = v2::CgroupV2::create(Path::new(CGROUP_ROOT), name, parent, limits)?;
                let control =
                    if limits.devices.is_empty() { DeviceControl::not_asked() } else { DeviceControl::Bpf };
                (Backend::V2(c), control)
            }
        };
        Ok(Cgroup {
            name: name.to_owned(),
            backend,
            memory_limit: AtomicU64::new(limits.memory_max().unwrap_or(0)),
            device_control,
            remove_on_drop: true,
            systemd_unit: None,
        })
    }

    /// The cgroup a [`Cgroup::location`] describes, from another process (runc's `start`, `kill`,
    /// `pause`, `delete` after `create`). The location must describe a container cgroup of this
    /// host's cgroup version (see [`location`]); directories already gone are fine. Dropping the
    /// handle leaves the cgroup alone; [`Cgroup::remove`] removes it.
    pub fn reopen(saved: &CgroupLocation) -> Result<Cgroup> {
        saved.check_shape()?;
        let host = detect()?;
        if saved.version != host {
            return Err(Error::Invalid(format!(
                "saved cgroup {:?} is {:?}, and this host uses {host:?}",
                saved.name, saved.version
            )));
        }
        saved.check_dirs()?;
        let backend = match saved.version {
            Version::V1 => Backend::V1(v1::CgroupV1::reopen(
                &saved.dirs,
                saved.device_control.clone(),
                saved.freezer_unavailable.clone(),
            )?),
            Version::V2 => Backend::V2(v2::CgroupV2::reopen(saved.dirs[0].path.clone())),
        };
        Ok(Cgroup {
            name: saved.name.clone(),
            backend,
            memory_limit: AtomicU64::new(saved.memory_limit.unwrap_or(0)),
            device_control: saved.device_control.clone(),
            remove_on_drop: false,
            systemd_unit: saved.systemd_unit.clone(),
        })
    }

    /// Where this cgroup is, to save in the container's state and [`Cgroup::reopen`] later.
    pub fn location(&self) -> CgroupLocation {
        let (version, dirs, freezer_unavailable) = match &self.backend {
            Backend::V1(c) => (
                Version::V1,
                c.dirs()
                    .iter()
                    .map(|d| SavedDir { controller: d.controller.into(), path: d.path.clone() })
                    .collect(),
                c.freezer_unavailable().map(str::to_owned),
            ),
            Backend::V2(c) => (
                Version::V2,
                vec![SavedDir { controller: v1::UNIFIED.into(), path: c.dir().to_path_buf() }],
                None,
            ),
        };
        CgroupLocation {
            name: self.name.clone(),
            version,
            dirs,
            device_control: self.device_control.clone(),
            memory_limit: self.memory_limit(),
            freezer_unavailable,
            systemd_unit: self.systemd_unit.clone(),
        }
    }

    /// Hand the cgroup on: the location is returned and dropping no longer removes it (runc's
    /// `create` exits while the container lives on).
    pub fn into_location(mut self) -> CgroupLocation {
        self.remove_on_drop = false;
        self.location()
    }

    /// What enforces the device rules given to [`Cgroup::create`], or why nothing does.
    pub fn device_control(&self) -> DeviceControl {
        self.device_control.clone()
    }

    pub fn version(&self) -> Version {
        match self.backend {
            Backend::V1(_) => Version::V1,
            Backend::V2(_) => Version::V2,
        }
    }

    /// Every directory of this cgroup: the v2 directory, or one per v1 hierarchy with memory first
    /// (and on a hybrid host maybe a cgroup2 directory holding the device program, last).
    pub fn paths(&self) -> Vec<&Path> {
        match &self.backend {
            Backend::V1(c) => c.dirs().iter().map(|d| d.path.as_path()).collect(),
            Backend::V2(c) => vec![c.dir()],
        }
    }

    /// The v2 directory, for `clone3(CLONE_INTO_CGROUP)` (open it with `O_DIRECTORY`); `None`
    /// on v1, where the child has to be moved with [`Cgroup::add_process`].
    pub fn v2_dir(&self) -> Option<&Path> {
        match &self.backend {
            Backend::V1(_) => None,
            Backend::V2(c) => Some(c.dir()),
        }
    }

    /// The files a single-threaded process writes `0` into to move itself into this cgroup (see
    /// [`join_self`]): v1 `tasks` (moving only the calling thread spares the kernel its global
    /// threadgroup lock and the RCU grace period that comes with it: 5-15 ms per container
    /// otherwise), v2 `cgroup.procs`.
    pub fn self_join_files(&self) -> Vec<PathBuf> {
        match &self.backend {
            Backend::V1(c) => c.self_join_files(),
            Backend::V2(c) => vec![c.dir().join("cgroup.procs")],
        }
    }

    /// Move process `pid` (all its threads) into the cgroup, in every hierarchy used.
    pub fn add_process(&self, pid: u32) -> Result<()> {
        for dir in self.paths() {
            files::write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The processes in the cgroup and the cgroups below it, sorted (runc's `ps`, `kill --all`).
    /// Processes outside our pid namespace have no number here and are left out.
    pub fn pids(&self) -> Result<Vec<i32>> {
        match &self.backend {
            Backend::V1(c) => c.pids(),
            Backend::V2(c) => c.pids(),
        }
    }

    /// Change the limits of the running container (runc's `update`): the fields that are set are
    /// validated as for [`Cgroup::create`] and written, "no limit" values (`Some(0)` memory,
    /// pids `<= 0`, cpus `0`, cpu quota `-1`) lifting a limit set before; `None` and empty fields
    /// are left as they are. Docker's default swap (twice the memory) is not applied: memory+swap
    /// changes only when given. Device rules stay as created, as with runc's `update`.
    pub fn update(&self, limits: &Limits) -> Result<()> {
        limits.validate()?;
        if !limits.devices.is_empty() {
            log::debug!("cgroup {}: update leaves the device rules as they were created", self.name);
        }
        if let Some(unit) = &self.systemd_unit {
            // systemd first: it writes its properties' files again whenever it reloads, so it must
            // hold the new values; then the files, for what it has no property for.
            systemd::set_properties(unit, limits, self.version())?;
        }
        match &self.backend {
            Backend::V1(c) => c.update(limits)?,
            Backend::V2(c) => c.update(limits)?,
        }
        if let Some(memory) = limits.memory {
            self.memory_limit.store(memory, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Stop every process in the cgroup (runc's `pause`), waiting until all have stopped, at most
    /// about ten seconds (then the cgroup is thawed again and it is an error). v2 `cgroup.freeze`;
    /// on v1 the freezer hierarchy, which must have been usable when the cgroup was created
    /// (delegated to us, or below an explicit parent): otherwise [`Error::Unavailable`] with why.
    pub fn freeze(&self) -> Result<()> {
        match &self.backend {
            Backend::V1(c) => c.freeze(),
            Backend::V2(c) => c.freeze(),
        }
    }

    /// Let the processes run again (runc's `resume`).
    pub fn thaw(&self) -> Result<()> {
        match &self.backend {
            Backend::V1(c) => c.thaw(),
            Backend::V2(c) => c.thaw(),
        }
    }

    /// Whether the cgroup is frozen by [`Cgroup::freeze`], being frozen, or running.
    pub fn freezer_state(&self) -> Result<FreezerState> {
        match &self.backend {
            Backend::V1(c) => c.freezer_state(),
            Backend::V2(c) => c.freezer_state(),
        }
    }

    /// runc's `state` says "paused" exactly when this is true.
    pub fn is_frozen(&self) -> Result<bool> {
        Ok(self.freezer_state()? == FreezerState::Frozen)
    }

    /// How many processes the kernel OOM killer has killed in this cgroup.
    pub fn oom_kills(&self) -> Result<u64> {
        match &self.backend {
            Backend::V1(c) => c.oom_kills(),
            Backend::V2(c) => c.oom_kills(),
        }
    }

    /// The memory limit in force, in bytes (as requested; the kernel rounds it down to whole
    /// pages).
    pub fn memory_limit(&self) -> Option<u64> {
        Some(self.memory_limit.load(Ordering::Relaxed)).filter(|&m| m > 0)
    }

    /// SIGKILL every process in the cgroup (and cgroups below it) and wait until they are gone
    /// from it. Our own process is never signalled, even if someone put it in here.
    pub fn kill_all(&self) -> Result<()> {
        match &self.backend {
            Backend::V1(c) => c.kill_all(),
            Backend::V2(c) => c.kill_all(),
        }
    }

    /// Kill everything inside, then remove the cgroup from every hierarchy.
    pub fn remove(mut self) -> Result<()> {
        self.remove_on_drop = false;
        self.remove_now()
    }

    fn remove_now(&self) -> Result<()> {
        // Kill first: a populated cgroup cannot be removed. Try removing even if killing
        // reported an error, and report the first error.
        let killed = self.kill_all();
        // systemd removes its unit's directories itself; ours then find them gone.
        let stopped = self.systemd_unit.as_deref().map_or(Ok(()), systemd::stop);
        let removed = match &self.backend {
            Backend::V1(c) => c.remove_dirs(),
            Backend::V2(c) => c.remove_dir(),
        };
        killed.and(stopped).and(removed)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if self.remove_on_drop {
            if let Err(e) = self.remove_now() {
                log::warn!("dropping cgroup {}: {e}", self.name);
            }
        }
    }
}

impl fmt::Debug for Cgroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cgroup")
            .field("name", &self.name)
            .field("paths", &self.paths())
            .field("memory_limit", &self.memory_limit())
            .field("device_control", &self.device_control)
            .finish_non_exhaustive()
    }
}

/// Remove cgroups a previous, killed spawner left behind: every cgroup below `parent` (or our own
/// cgroup) whose name starts with `prefix` and for which `is_alive(name)` is false is emptied
/// with SIGKILL and removed. Returns the names removed. Failures to remove one cgroup are logged
/// and do not stop the others; only failing to look is an error.
///
/// Design: name containers `<prefix><spawner pid>-<n>` and let `is_alive` check whether that
/// spawner pid still exists (and is a spawner). The v2 leaf we may have moved ourselves into
/// ([`v2::LEAF`]) is never considered.
pub fn remove_stale(
    parent: Option<&Path>,
    prefix: &str,
    is_alive: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    if prefix.is_empty() {
        return Err(Error::Invalid("stale cgroup prefix must not be empty".into()));
    }
    let version = detect()?;
    let root = Path::new(CGROUP_ROOT);
    let names = match version {
        Version::V1 => v1::CgroupV1::children(parent)?,
        Version::V2 => v2::CgroupV2::children(root, parent)?,
    };
    let mut removed = Vec::new();
    for name in names {
        if !name.starts_with(prefix) || name == v2::LEAF || is_alive(&name) {
            continue;
        }
        let backend = match version {
            Version::V1 => Backend::V1(v1::CgroupV1::existing(&name, parent)?),
            Version::V2 => Backend::V2(v2::CgroupV2::existing(root, &name, parent)?),
        };
        let cgroup = Cgroup {
            name: name.clone(),
            backend,
            memory_limit: AtomicU64::new(0),
            device_control: DeviceControl::not_asked(),
            remove_on_drop: true,
            systemd_unit: None,
        };
        match cgroup.remove() {
            Ok(()) => removed.push(name),
            Err(e) => log::warn!("removing stale cgroup {name}: {e}"),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_PROC_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/27f324edb8b0f3d54f6fc166de0d0c1e
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn proc_cgroup_hybrid() {
        let entries = parse_proc_cgroup(HYBRID_PROC_CGROUP).unwrap();
        assert_eq!(entries.len(), 10);
        assert_eq!(
            entries[5],
            ProcCgroup {
                hierarchy: 4,
                controllers: vec!["memory".into()],
                path: "/process_api/27f324edb8b0f3d54f6fc166de0d0c1e".into(),
            }
        );
        assert_eq!(entries[0].controllers, vec!["name=systemd".to_string()]);
        assert_eq!(entries[9], ProcCgroup { hierarchy: 0, controllers: vec![], path: "/".into() });
    }

    #[test]
    fn proc_cgroup_v2_and_comounted() {
        let entries = parse_proc_cgroup("0::/user.slice/x\n").unwrap();
        assert_eq!(
            entries,
            vec![ProcCgroup { hierarchy: 0, controllers: vec![], path: "/user.slice/x".into() }]
        );
        let entries = parse_proc_cgroup("3:cpu,cpuacct:/a:b\n").unwrap();
        assert_eq!(entries[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(entries[0].path, "/a:b");
        assert!(parse_proc_cgroup("garbage\n").is_err());
    }

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn mountinfo_cgroup_mounts() {
        let mounts = parse_mountinfo(HYBRID_MOUNTINFO).unwrap();
        assert_eq!(mounts.len(), 6);
        assert_eq!(
            mounts[2],
            Mount {
                root: "/".into(),
                mount_point: "/sys/fs/cgroup/memory".into(),
                fs_type: "cgroup".into(),
                super_options: vec!["rw".into(), "memory".into()],
            }
        );
        assert_eq!(mounts[0].fs_type, "tmpfs");
        assert_eq!(mounts[5].fs_type, "cgroup2");
        // Optional fields (shared:N, master:N) come before the separator; escaped paths.
        let line = "25 1 0:22 /sub /mnt/my\\040cg rw shared:5 master:1 - cgroup cg rw,cpu,cpuacct\n";
        let m = &parse_mountinfo(line).unwrap()[0];
        assert_eq!(m.root, "/sub");
        assert_eq!(m.mount_point, PathBuf::from("/mnt/my cg"));
        assert_eq!(m.super_options, vec!["rw", "cpu", "cpuacct"]);
        assert!(parse_mountinfo("1 2 3 4 5 6 7\n").is_err());
    }

    #[test]
    fn keyed_files() {
        let events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(keyed_value(events, "oom_kill"), Some(2));
        assert_eq!(keyed_value(events, "oom"), Some(3));
        let oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n";
        assert_eq!(keyed_value(oom_control, "oom_kill"), Some(1));
        assert_eq!(keyed_value("oom_kill_disable 0\nunder_oom 0\n", "oom_kill"), None);
    }

    #[test]
    fn errors_are_one_line_with_path_and_op() {
        let e = Error::io(
            "write",
            "/sys/fs/cgroup/memory/x/memory.limit_in_bytes",
            io::Error::from_raw_os_error(16),
        );
        assert_eq!(
            e.to_string(),
            "cgroup: write /sys/fs/cgroup/memory/x/memory.limit_in_bytes: Device or resource busy"
        );
        assert_eq!(e.raw_os_error(), Some(16));
    }

    #[test]
    fn names_and_parents() {
        assert!(validate_name("spawner-1").is_ok());
        for bad in ["", ".", "..", "a/b", v2::LEAF] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(relative_cgroup_path(Path::new("/docker/x")).unwrap(), PathBuf::from("docker/x"));
        assert_eq!(relative_cgroup_path(Path::new("/")).unwrap(), PathBuf::new());
        assert!(relative_cgroup_path(Path::new("/a/../..")).is_err());
    }
}
