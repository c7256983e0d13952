//! What the container core needs, and nothing else: an OCI runtime spec (`config.json`) checked and
//! resolved (paths absolute, names turned into numbers, mount options parsed into flags, the seccomp
//! profile and the cgroup limits in the forms the `seccomp` and `cgroup` modules take). Every field of
//! the spec is either here or refused by [`super::validate`] with an error naming it; a field the core
//! cannot honour is never dropped when it concerns security or resources.
//!
//! Front ends build these from a spec: the runc command line from a bundle's `config.json`, and
//! `spawner run` (the Docker front end) from an image and Docker's flags. What a front end knows that
//! a spec cannot say (a root file system made of store layers, a user to look up in the image, the
//! embedded init) travels beside the config, in the core's own options, not in here.

use crate::cgroup::Limits;
use crate::seccomp::Profile;
use rustix::thread::CapabilitySet;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A container's configuration, from one OCI runtime spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `ociVersion`: any 1.x is accepted.
    pub oci_version: String,
    pub root: Root,
    /// `mounts`, in order (the order they are made in).
    pub mounts: Vec<Mount>,
    /// `process`: required to start the container, not to create it.
    pub process: Option<Process>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// `linux.namespaces`: the namespaces the container gets; a kind absent here is the runtime's.
    pub namespaces: Vec<Namespace>,
    /// `linux.uidMappings` / `gidMappings`, for a user namespace.
    pub uid_mappings: Vec<IdMapping>,
    pub gid_mappings: Vec<IdMapping>,
    /// `linux.sysctl`, by key.
    pub sysctl: BTreeMap<String, String>,
    /// `linux.resources`, as the cgroup module applies them (device rules included).
    pub resources: Limits,
    /// `linux.cgroupsPath`: absolute (below the cgroup mount) or relative (below spawner's own
    /// cgroup); `None` when the spec gives none.
    pub cgroups_path: Option<PathBuf>,
    /// `linux.devices`: the device nodes to make in the container.
    pub devices: Vec<Device>,
    /// `linux.seccomp`, resolved into a profile the seccomp compiler takes; `None`: no filter.
    pub seccomp: Option<Profile>,
    /// `linux.rootfsPropagation`.
    pub rootfs_propagation: Option<Propagation>,
    /// `linux.maskedPaths`, `linux.readonlyPaths`: absolute paths in the container.
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    /// `linux.personality`: the execution domain (`LINUX` or `LINUX32`) as personality(2) takes it.
    pub personality: Option<u32>,
    /// `linux.timeOffsets`: the clocks of a new time namespace, moved by these offsets.
    pub time_offsets: Vec<TimeOffset>,
    pub hooks: Hooks,
    pub annotations: BTreeMap<String, String>,
}

/// `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// Absolute: a relative `root.path` is resolved against the bundle directory.
    pub path: PathBuf,
    pub readonly: bool,
}

/// One entry of `mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Absolute, in the container (resolved inside its root when mounted).
    pub destination: PathBuf,
    pub kind: MountKind,
    /// `mount(2)` flags to set (`MS_*`: ro, nosuid, nodev, noexec, noatime, …; never MS_BIND or
    /// propagation, which have their own fields).
    pub flags: u64,
    /// Flags the options turn off explicitly (`rw`, `suid`, `dev`, `exec`, `atime`…): what a bind
    /// mount would otherwise keep from its source.
    pub cleared_flags: u64,
    /// `mount_setattr(2)` attributes set on the mount and every mount below it (`rro`, `rnosuid`,
    /// `rnodev`, `rnoexec`, `rnoatime`…: `MOUNT_ATTR_*`), and those cleared (`rrw`, `rsuid`…).
    pub recursive_set: u64,
    pub recursive_clear: u64,
    /// Propagation changes, in the order given (`rprivate`, `shared`…).
    pub propagation: Vec<Propagation>,
    /// The file system's own options (`mode=755`, `size=65536k`, `newinstance`…), comma-joined as
    /// mount(2)'s data argument takes them.
    pub data: String,
}

/// How a mount is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// `bind` / `rbind` (type `bind`, or any type with a bind option): `source` is an absolute host
    /// path (a relative one is resolved against the bundle).
    Bind { source: PathBuf, recursive: bool },
    /// A new file system of `fstype` (`proc`, `tmpfs`, `sysfs`, `cgroup`, `mqueue`, `devpts`…) with
    /// `source` as its device name (`none`, `tmpfs`…).
    Fs { fstype: String, source: String },
}

/// Mount propagation (`rootfsPropagation`, and propagation options of a mount).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Private { recursive: bool },
    Shared { recursive: bool },
    Slave { recursive: bool },
    Unbindable { recursive: bool },
}

/// `process`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// At least one element.
    pub args: Vec<String>,
    /// `NAME=VALUE` entries, in order.
    pub env: Vec<String>,
    /// Absolute.
    pub cwd: PathBuf,
    pub user: User,
    pub terminal: bool,
    /// `consoleSize`: (rows, columns).
    pub console_size: Option<(u16, u16)>,
    pub capabilities: Capabilities,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    /// `apparmorProfile`, `selinuxLabel`: kept so that the core can refuse what it cannot apply.
    pub apparmor_profile: Option<String>,
    pub selinux_label: Option<String>,
}

/// `process.user`, numeric as the spec gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// `umask`; `None`: the runtime's default (0022, as runc).
    pub umask: Option<u32>,
    pub additional_gids: Vec<u32>,
}

/// `process.capabilities`: the five sets. An absent set is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub bounding: CapabilitySet,
    pub effective: CapabilitySet,
    pub inheritable: CapabilitySet,
    pub permitted: CapabilitySet,
    pub ambient: CapabilitySet,
}

impl Default for Capabilities {
    fn default() -> Self {
        let none = CapabilitySet::empty();
        Capabilities { bounding: none, effective: none, inheritable: none, permitted: none, ambient: none }
    }
}

/// One of `process.rlimits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// `RLIMIT_*` number (from the `RLIMIT_NOFILE`-style name).
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

/// The kinds of namespace (`linux.namespaces[].type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NamespaceKind {
    Mount,
    Pid,
    Network,
    Ipc,
    Uts,
    User,
    Cgroup,
    Time,
}

impl NamespaceKind {
    /// The spec's name of the kind (`linux.namespaces[].type`).
    pub fn name(self) -> &'static str {
        match self {
            NamespaceKind::Mount => "mount",
            NamespaceKind::Pid => "pid",
            NamespaceKind::Network => "network",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Uts => "uts",
            NamespaceKind::User => "user",
            NamespaceKind::Cgroup => "cgroup",
            NamespaceKind::Time => "time",
        }
    }

    /// Its `CLONE_NEW*` flag (what clone/unshare take, and NS_GET_NSTYPE answers).
    pub fn clone_flag(self) -> u32 {
        use linux_raw_sys::general as g;
        match self {
            NamespaceKind::Mount => g::CLONE_NEWNS,
            NamespaceKind::Pid => g::CLONE_NEWPID,
            NamespaceKind::Network => g::CLONE_NEWNET,
            NamespaceKind::Ipc => g::CLONE_NEWIPC,
            NamespaceKind::Uts => g::CLONE_NEWUTS,
            NamespaceKind::User => g::CLONE_NEWUSER,
            NamespaceKind::Cgroup => g::CLONE_NEWCGROUP,
            NamespaceKind::Time => g::CLONE_NEWTIME,
        }
    }
}

/// One of `linux.namespaces`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub kind: NamespaceKind,
    /// `path`: join this existing namespace (setns) instead of making a new one.
    pub path: Option<PathBuf>,
}

/// One of `linux.timeOffsets`: a clock of the time namespace and how far it is moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeOffset {
    /// `monotonic` or `boottime`, as /proc/PID/timens_offsets names them.
    pub clock: String,
    pub secs: i64,
    /// Below one second.
    pub nanosecs: u32,
}

/// One of `linux.uidMappings` / `gidMappings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// One of `linux.devices`: a node to make at `path` in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub path: PathBuf,
    /// `c`/`u` (char), `b` (block), `p` (FIFO).
    pub kind: DeviceKind,
    pub major: u32,
    pub minor: u32,
    /// Permission bits (`fileMode`), 0666 when the spec gives none.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Char,
    Block,
    Fifo,
}

/// `hooks`, each list in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hooks {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

/// One hook: a program run with the container's state on its stdin. Serialised in spawner-runc's
/// state (the hooks `start` and `delete` run).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hook {
    /// Absolute.
    pub path: PathBuf,
    /// `args` as given (the first is `argv[0]`); empty: `argv[0]` is the path.
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Seconds; `None`: no limit.
    pub timeout: Option<u32>,
}
