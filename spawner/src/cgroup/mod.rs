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
//! Leftovers: a spawner that is SIGKILLed cannot remove its cgroup. Name container cgroups with a
//! common prefix (e.g. `spawner-<pid>-<n>`) and call [`remove_stale`] on start-up with a predicate
//! that says whether the owner of a name is still alive.

mod device_bpf;
pub mod devices;
mod files;
pub mod v1;
pub mod v2;

#[cfg(test)]
mod root_tests;

use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

pub use devices::{docker_default, Access, DeviceKind, DeviceRule};

/// Where the cgroup filesystem (v2) or the tmpfs holding the v1 hierarchies is mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// `CGROUP2_SUPER_MAGIC` from `linux/magic.h`: the `f_type` statfs reports for cgroup2.
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// The cpu period written with every cpu quota (v1 `cpu.cfs_period_us`, second field of v2
/// `cpu.max`). 100 ms is the kernel default and what Docker uses for `--cpus`.
pub const CPU_PERIOD_US: u64 = 100_000;

/// The kernel rejects quotas below 1 ms; with a 100 ms period that is `--cpus 0.01`, which is
/// also Docker's documented minimum.
const MIN_CPU_QUOTA_US: u64 = 1_000;

/// Docker refuses memory limits below 6 MiB: a container cannot even start its init below that.
pub const MIN_MEMORY: u64 = 6 << 20;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Resource limits with Docker's meaning. `None` (and the "unlimited" values noted per field)
/// leave the kernel default, which is unlimited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// `--memory`: bytes of RAM. `Some(0)` means no limit, as in Docker.
    pub memory: Option<u64>,
    /// `--memory-swap`: memory *plus* swap, in bytes; `-1` is unlimited swap, `0` is "not set".
    /// Not set while `memory` is set gives memory+swap = 2 x memory (swap as large as memory),
    /// Docker's default. Setting it equal to `memory` disables swap. Needs `memory`.
    pub memory_swap: Option<i64>,
    /// `--pids-limit`: maximum number of tasks. `0` or negative means unlimited, as in Docker.
    pub pids: Option<i64>,
    /// `--cpus`: CPU time as a number of CPUs, `0.5` is half of one CPU. `0` means no limit.
    pub cpus: Option<f64>,
    /// Device access rules (OCI `linux.resources.devices`), later rules overriding earlier ones;
    /// Docker's are [`docker_default`]. Empty: no device control at all.
    pub devices: Vec<DeviceRule>,
    /// OCI `memory.reservation`, Docker's `--memory-reservation`: a soft limit in bytes (v1
    /// `memory.soft_limit_in_bytes`, v2 `memory.low`). Not applied yet.
    pub memory_reservation: Option<u64>,
    /// OCI `memory.swappiness` (0-100; v1 only). Not applied yet.
    pub memory_swappiness: Option<u64>,
    /// OCI `cpu.shares`, Docker's `--cpu-shares`. Not applied yet.
    pub cpu_shares: Option<u64>,
    /// OCI `cpu.quota` and `cpu.period`, in microseconds: the precise form of `cpus`. Not applied
    /// yet.
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    /// OCI `cpu.cpus` / `cpu.mems`: cpuset lists such as `0-3,5`. Not applied yet.
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// OCI `blockIO.weight` (10-1000). Not applied yet.
    pub block_io_weight: Option<u16>,
    /// OCI `unified`: cgroup v2 files written as given (v2 only). Not applied yet.
    pub unified: std::collections::BTreeMap<String, String>,
}

/// What the memory+swap limit resolves to once Docker's defaults are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SwapTotal {
    Unlimited,
    /// memory + swap, in bytes.
    Bytes(u64),
}

impl Limits {
    /// Check the limits the way `docker run` does, before anything is created.
    pub fn validate(&self) -> Result<()> {
        let memory = self.memory_max();
        if let Some(m) = memory {
            if m < MIN_MEMORY {
                return Err(Error::Invalid(format!(
                    "memory limit {m} is below the minimum of {MIN_MEMORY} bytes (6 MiB)"
                )));
            }
        }
        match (self.memory_swap, memory) {
            (None | Some(0), _) => {}
            (Some(_), None) => {
                return Err(Error::Invalid("a memory-swap limit needs a memory limit too".into()))
            }
            (Some(-1), Some(_)) => {}
            (Some(s), Some(m)) if s < 0 || (s as u64) < m => {
                return Err(Error::Invalid(format!(
                    "memory-swap limit {s} must be -1 (unlimited) or at least the memory limit \
                     {m}: it is memory plus swap"
                )))
            }
            (Some(_), Some(_)) => {}
        }
        if let Some(c) = self.cpus {
            if !c.is_finite() || c < 0.0 {
                return Err(Error::Invalid(format!("cpus {c} must be a non-negative number")));
            }
            if c > 0.0 && cpu_quota_us(c) < MIN_CPU_QUOTA_US {
                return Err(Error::Invalid(format!("cpus {c} is below the minimum of 0.01")));
            }
        }
        self.devices.iter().try_for_each(DeviceRule::validate)
    }

    /// The memory limit to write, if any.
    pub(crate) fn memory_max(&self) -> Option<u64> {
        self.memory.filter(|&m| m > 0)
    }

    /// Memory plus swap, with Docker's default of twice the memory when only memory is set.
    pub(crate) fn swap_total(&self) -> Option<SwapTotal> {
        let memory = self.memory_max()?;
        Some(match self.memory_swap {
            None | Some(0) => SwapTotal::Bytes(memory.saturating_mul(2)),
            Some(s) if s < 0 => SwapTotal::Unlimited,
            Some(s) => SwapTotal::Bytes(s as u64),
        })
    }

    /// The pids limit to write, if any.
    pub(crate) fn pids_max(&self) -> Option<u64> {
        self.pids.filter(|&p| p > 0).map(|p| p as u64)
    }

    /// The cpu quota per [`CPU_PERIOD_US`] to write, if any.
    pub(crate) fn cpu_quota(&self) -> Option<u64> {
        self.cpus.filter(|&c| c > 0.0).map(cpu_quota_us)
    }
}

fn cpu_quota_us(cpus: f64) -> u64 {
    (cpus * CPU_PERIOD_US as f64).round() as u64
}

/// The v2 `cpu.max` line for a number of CPUs: `"<quota> <period>"`.
pub(crate) fn cpu_max_line(quota_us: u64) -> String {
    format!("{quota_us} {CPU_PERIOD_US}")
}

/// Parse a size the way Docker does for `--memory` (go-units `RAMInBytes`): a decimal number,
/// optionally with a fraction, an optional space, and an optional binary unit `b`, `k`, `m`,
/// `g`, `t`, `p` (any case, 1024-based) optionally followed by `i` and/or `b`: `100`, `512k`,
/// `64m`, `64MB`, `64MiB`, `1.5g`. Fractions are truncated to whole bytes.
pub fn parse_size(s: &str) -> Result<u64> {
    let invalid = || Error::Invalid(format!("invalid size {s:?}"));
    let digits_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let suffix = suffix.strip_prefix(' ').unwrap_or(suffix).to_ascii_lowercase();
    let shift = match suffix.as_str() {
        "" | "b" => 0,
        _ => {
            let mut chars = suffix.chars();
            let shift = match chars.next() {
                Some('k') => 10,
                Some('m') => 20,
                Some('g') => 30,
                Some('t') => 40,
                Some('p') => 50,
                _ => return Err(invalid()),
            };
            match chars.as_str() {
                "" | "b" | "i" | "ib" => shift,
                _ => return Err(invalid()),
            }
        }
    };
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (number, None),
    };
    if int.is_empty() || frac.is_some_and(|f| f.is_empty() || f.contains('.')) {
        return Err(invalid());
    }
    let whole: u64 = int.parse().map_err(|_| invalid())?;
    let mut bytes = whole.checked_mul(1u64 << shift).ok_or_else(invalid)?;
    if let Some(frac) = frac {
        // Only the fraction goes through f64, so whole numbers stay exact.
        let f: f64 = format!("0.{frac}").parse().map_err(|_| invalid())?;
        bytes = bytes.checked_add((f * (1u64 << shift) as f64) as u64).ok_or_else(invalid)?;
    }
    Ok(bytes)
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
/// Dropping it without [`Cgroup::remove`] still kills what is inside and removes it, best effort,
/// logging failures: a container's cgroup must not outlive the spawner that created it.
pub struct Cgroup {
    name: String,
    backend: Backend,
    memory_limit: Option<u64>,
    device_control: DeviceControl,
    removed: bool,
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
            memory_limit: limits.memory_max(),
            device_control,
            removed: false,
        })
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

    /// How many processes the kernel OOM killer has killed in this cgroup.
    pub fn oom_kills(&self) -> Result<u64> {
        match &self.backend {
            Backend::V1(c) => c.oom_kills(),
            Backend::V2(c) => c.oom_kills(),
        }
    }

    /// The memory limit that was applied, in bytes (as requested; the kernel rounds it down to
    /// whole pages).
    pub fn memory_limit(&self) -> Option<u64> {
        self.memory_limit
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
        self.removed = true;
        self.remove_now()
    }

    fn remove_now(&self) -> Result<()> {
        // Kill first: a populated cgroup cannot be removed. Try removing even if killing
        // reported an error, and report the first error.
        let killed = self.kill_all();
        let removed = match &self.backend {
            Backend::V1(c) => c.remove_dirs(),
            Backend::V2(c) => c.remove_dir(),
        };
        killed.and(removed)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !self.removed {
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
            .field("memory_limit", &self.memory_limit)
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
            memory_limit: None,
            device_control: DeviceControl::not_asked(),
            removed: false,
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

    #[test]
    fn sizes_parse_like_docker() {
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("100b").unwrap(), 100);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("64MB").unwrap(), 64 << 20);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("64 mb").unwrap(), 64 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("2t").unwrap(), 2 << 40);
        assert_eq!(parse_size("0").unwrap(), 0);
        for bad in ["", "m", "-1", "1x", "1.m", ".5m", "1.2.3m", "1mm", "1  m", "1e3", "99999999p"] {
            assert!(parse_size(bad).is_err(), "{bad:?} should not parse");
        }
        assert_eq!(parse_size("12q").unwrap_err().to_string(), "cgroup: invalid size \"12q\"");
    }

    #[test]
    fn swap_follows_docker() {
        let m = 64 << 20;
        let only_memory = Limits { memory: Some(m), ..Limits::default() };
        assert_eq!(only_memory.swap_total(), Some(SwapTotal::Bytes(2 * m)));
        let unlimited = Limits { memory_swap: Some(-1), ..only_memory.clone() };
        assert_eq!(unlimited.swap_total(), Some(SwapTotal::Unlimited));
        let no_swap = Limits { memory_swap: Some(m as i64), ..only_memory.clone() };
        assert_eq!(no_swap.swap_total(), Some(SwapTotal::Bytes(m)));
        assert_eq!(Limits::default().swap_total(), None);

        assert!(only_memory.validate().is_ok());
        assert!(unlimited.validate().is_ok());
        let swap_without_memory = Limits { memory_swap: Some(1 << 30), ..Limits::default() };
        assert!(swap_without_memory.validate().is_err());
        let swap_below_memory = Limits { memory_swap: Some(m as i64 - 1), ..only_memory.clone() };
        assert!(swap_below_memory.validate().is_err());
        let tiny = Limits { memory: Some(1 << 20), ..Limits::default() };
        assert!(tiny.validate().is_err());
    }

    #[test]
    fn pids_and_cpus() {
        let l = Limits { pids: Some(0), cpus: Some(0.0), ..Limits::default() };
        assert_eq!((l.pids_max(), l.cpu_quota()), (None, None));
        let l = Limits { pids: Some(-1), cpus: Some(1.5), ..Limits::default() };
        assert_eq!((l.pids_max(), l.cpu_quota()), (None, Some(150_000)));
        assert_eq!(cpu_max_line(l.cpu_quota().unwrap()), "150000 100000");
        let half = Limits { cpus: Some(0.5), pids: Some(100), ..Limits::default() };
        assert_eq!(half.pids_max(), Some(100));
        assert_eq!(cpu_max_line(half.cpu_quota().unwrap()), "50000 100000");
        assert_eq!(cpu_quota_us(0.01), 1000);
        assert_eq!(cpu_quota_us(2.0), 200_000);
        for bad in [f64::NAN, f64::INFINITY, -1.0, 0.001] {
            let l = Limits { cpus: Some(bad), ..Limits::default() };
            assert!(l.validate().is_err(), "cpus {bad}");
        }
    }

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
