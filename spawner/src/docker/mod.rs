//! `spawner run`: Docker's front end on the container core. It turns an image archive, the image's
//! config and Docker's flags into a container [`Config`] (what an OCI runtime spec says) plus what a
//! spec cannot say ([`Extras`]: the root as an overlay of store layers, our init as PID 1 as `docker
//! run --init` has it, the image user to look up, the /etc files and volumes it prepared), runs it,
//! and cleans up after it. Docker's semantics live here: Entrypoint/Cmd/Env (`process`), volumes,
//! `--device`, `--security-opt` (`security`), the init layer, the /etc files, container names and
//! the state directory (`state_dir`, `stale`).

pub mod copy;
pub mod devices;
pub mod df;
pub mod flags;
pub mod image_names;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
mod names;
pub mod port;
pub mod process;
pub mod record;
pub mod security;
mod stale;
mod state_dir;
pub mod template;
pub mod top;
pub mod volumes;

use crate::cgroup::Limits;
use crate::container::mount_plan::FrontEndMounts;
use crate::container::{self, rootfs, Extras, RunError};
use crate::image::Archive;
use crate::network::{self, dns, Mode};
use crate::spec::{self, Config, Mount, MountKind, NamespaceKind};
use crate::store::LayerStore;
use process::Overrides;
use rustix::fd::{AsFd, OwnedFd};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use volumes::Volume;

macro_rules! from_error {
    ($($t:ty),*) => {$(
        impl From<$t> for RunError {
            fn from(e: $t) -> Self {
                RunError::msg(e.to_string())
            }
        }
    )*};
}
from_error!(process::NoCommand, devices::DeviceError);

#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    pub archive: PathBuf,
    pub image: Option<String>,
    /// The image is a registry reference (`archive` is the content store's layout then): pulled
    /// as the policy says before the run.
    pub pull: Option<Pull>,
    pub state_dir: PathBuf,
    pub overrides: Overrides,
    pub volumes: Vec<Volume>,
    /// `--device HOST[:CONTAINER][:PERMS]`, as [`devices::parse`] gives them.
    pub devices: Vec<(PathBuf, PathBuf, String)>,
    pub read_only: bool,
    pub network: crate::network::Options,
    pub limits: Limits,
    pub cgroup_parent: Option<PathBuf>,
    /// `--rm`: the container (its directory, writable layer, record) goes when its run ends;
    /// otherwise it stays, stopped, until `spawner rm`, as Docker keeps it.
    pub rm: bool,
    pub name: Option<String>,
    /// `-i`: the container's stdin is spawner's (otherwise /dev/null).
    pub interactive: bool,
    /// `--stop-signal` and `--stop-timeout` (else the image's StopSignal, SIGTERM, and 10 s).
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u32>,
    /// `--restart` as given, checked.
    pub restart: String,
    /// The flags as given, for the container's record (`start` runs it again from them).
    pub security_args: record::SecurityArgs,
    pub ports: Vec<String>,
    pub run_args: Vec<String>,
    pub tty: bool,
    pub security: security::Security,
    /// The most bytes an image's layers may unpack to (a decompression bomb stops there).
    pub max_image_bytes: u64,
    /// `--label` and `--label-file`, over the image's labels: the spec's annotations, and the
    /// record's labels.
    pub labels: BTreeMap<String, String>,
    /// `--cidfile`: the container's ID is written there once its directory exists (`run` made
    /// the file, empty, before any work).
    pub cidfile: Option<PathBuf>,
    /// `--no-init`: the command itself is the container's first process (otherwise our init is,
    /// as with `docker run --init`).
    pub no_init: bool,
    /// `--tmpfs` mounts, after Docker's own (one at the same place replaces Docker's).
    pub tmpfs: Vec<Mount>,
    /// `--shm-size`: bytes of /dev/shm (None: Docker's 64 MiB).
    pub shm_size: Option<u64>,
    /// `--ulimit`s.
    pub rlimits: Vec<spec::Rlimit>,
    /// `--sysctl`s (checked: namespaced, in a namespace of the container's own).
    pub sysctl: BTreeMap<String, String>,
    /// `--group-add`: names (looked up in the image's /etc/group) or gids.
    pub group_add: Vec<String>,
    /// `--domainname`.
    pub domainname: Option<String>,
    /// `-a` without stdout, without stderr: the container gets /dev/null there (spawner's own
    /// messages still reach its stderr).
    pub detached_streams: [bool; 2],
    /// `--pid host`, `--ipc`, `--uts host`: the host's namespace instead of one of its own.
    pub pid: flags::Sharing,
    pub ipc: flags::IpcMode,
    pub uts: flags::Sharing,
    /// `--log-opt` as given (see [`logs::Rotation`]).
    pub log_opts: Vec<String>,
}

/// `--pull`, as Docker: pull when the image is not stored, always, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Missing,
    Always,
    Never,
}

/// An image named by reference, and how to get it.
#[derive(Debug, Clone)]
pub struct Pull {
    /// The reference as typed (a short name or an image ID is looked up among the stored images).
    pub given: String,
    pub reference: crate::registry::Reference,
    pub policy: PullPolicy,
    pub options: crate::registry::PullOptions,
}

/// Makes sure the image `pull` names is in the store (pulling it as its policy says), and returns
/// the name it is stored under.
fn ensure_pulled(pull: &Pull, store: &LayerStore) -> Result<String, RunError> {
    let content = crate::store::content::Content::open(store.root())?;
    let found = match pull.policy {
        PullPolicy::Always => None,
        _ => image_names::resolve(&content.names()?, &pull.given)?,
    };
    let stored = found.is_some();
    let name = found.unwrap_or_else(|| pull.reference.to_string());
    match (pull.policy, stored) {
        (PullPolicy::Never, false) => {
            return Err(RunError::msg(format!(
                "{name}: not in the store, and --pull never forbids pulling it"
            )))
        }
        (PullPolicy::Missing, true) | (PullPolicy::Never, true) => {}
        (PullPolicy::Always, _) | (PullPolicy::Missing, false) => {
            crate::registry::pull(store, &pull.reference, &pull.options)?;
        }
    }
    Ok(name)
}

/// A volume with its source found: the host path to mount, and for a volume of the store, its
/// name and whether it was just made (and so is filled from the image).
struct Resolved {
    volume: Volume,
    host: PathBuf,
    name: Option<String>,
    anonymous: bool,
}

/// Finds each volume's host path: `-v`/`--mount` as given, then an anonymous volume for each of
/// the image's VOLUMEs nothing else covers. A container made before (`start`) gets its own
/// anonymous volumes again, by their targets.
fn resolve_volumes(
    opts: &RunOptions,
    image: &crate::image::ImageConfig,
    existing: Option<&record::Container>,
) -> Vec<Resolved> {
    let store = volumes::Store::open(&opts.state_dir);
    let mut all = opts.volumes.clone();
    for path in image.config.volumes.keys() {
        let target: PathBuf = Path::new(path).components().collect();
        if target.is_absolute() && !all.iter().any(|v| v.container == target) {
            let mut v = volumes::parse(&target.to_string_lossy()).unwrap_or_else(|_| Volume {
                source: volumes::Source::Anonymous,
                container: target.clone(),
                read_only: false,
                devices: false,
                setuid: false,
                noexec: false,
                nocopy: false,
            });
            v.source = volumes::Source::Anonymous;
            all.push(v);
        }
    }
    all.into_iter()
        .map(|volume| match &volume.source {
            volumes::Source::Host(path) => {
                Resolved { host: path.clone(), volume, name: None, anonymous: false }
            }
            volumes::Source::Named(name) => {
                Resolved { host: store.data(name), name: Some(name.clone()), volume, anonymous: false }
            }
            volumes::Source::Anonymous => {
                let recorded = existing.and_then(|c| {
                    c.record.mounts.iter().find(|m| m.anonymous && m.destination == volume.container)
                });
                let name = recorded.map_or_else(record::new_id, |m| m.name.clone());
                Resolved { host: store.data(&name), name: Some(name), volume, anonymous: true }
            }
        })
        .collect()
}

/// The volumes as the container's record keeps them.
fn mount_records(resolved: &[Resolved]) -> Vec<record::MountRecord> {
    resolved
        .iter()
        .map(|r| record::MountRecord {
            kind: if r.name.is_some() { "volume" } else { "bind" }.into(),
            name: r.name.clone().unwrap_or_default(),
            source: r.host.clone(),
            destination: r.volume.container.clone(),
            rw: !r.volume.read_only,
            anonymous: r.anonymous,
        })
        .collect()
}

/// Makes the store's volumes that do not exist yet; those made now are filled from the image's
/// files at their paths (unless `nocopy`), through the container's overlay.
fn ensure_volumes(
    state_dir: &Path,
    resolved: &[Resolved],
    overlay: &rootfs::Overlay,
) -> Result<(), RunError> {
    let store = volumes::Store::open(state_dir);
    for r in resolved {
        let Some(name) = &r.name else { continue };
        if store.ensure(name, r.anonymous)? && !r.volume.nocopy {
            match volumes::overlay_root(overlay) {
                Some(root) => volumes::copy_up(root, &r.volume.container, &r.host)?,
                None => log::info!(
                    "volume {name}: not filled from the image (this kernel mounts the overlay late)"
                ),
            }
        }
    }
    Ok(())
}

/// Opens each volume's source, once, into a detached tree with its flags set.
fn open_volumes(volumes: &[Resolved]) -> Result<Vec<(rootfs::VolumeTree, PathBuf)>, RunError> {
    use rustix::mount::MountAttrFlags as A;
    volumes
        .iter()
        .map(|r| {
            let v = &r.volume;
            let mut attrs = A::empty();
            attrs.set(A::MOUNT_ATTR_RDONLY, v.read_only);
            attrs.set(A::MOUNT_ATTR_NODEV, !v.devices);
            attrs.set(A::MOUNT_ATTR_NOSUID, !v.setuid);
            attrs.set(A::MOUNT_ATTR_NOEXEC, v.noexec);
            let tree = rootfs::volume_tree(&r.host, attrs)?;
            log::info!("volume {} on {} ({attrs:?})", tree.resolved.display(), v.container.display());
            Ok((tree, v.container.clone()))
        })
        .collect()
}

/// A run's anonymous volumes, removed on drop when its container goes (`--rm`).
struct AnonymousVolumes<'a> {
    state_dir: &'a Path,
    mounts: Vec<record::MountRecord>,
    remove: bool,
}

impl Drop for AnonymousVolumes<'_> {
    fn drop(&mut self) {
        if self.remove {
            remove_anonymous_volumes(self.state_dir, &self.mounts);
        }
    }
}

/// Removes the container's anonymous volumes (it is being removed: `--rm`, `rm -v`).
pub fn remove_anonymous_volumes(state_dir: &Path, mounts: &[record::MountRecord]) {
    let store = volumes::Store::open(state_dir);
    for m in mounts.iter().filter(|m| m.anonymous) {
        if let Err(e) = store.remove(&m.name) {
            log::warn!("{e}");
        }
    }
}

/// The container's directory in the state dir: overlay upper/work dirs and its /etc files.
struct ContainerDir {
    path: PathBuf,
    keep: bool,
    /// This run's flock on the directory (see `stale`): released last, after the removal.
    _lock: OwnedFd,
}

impl ContainerDir {
    /// Follows a `rename` of the running container: the directory's path now, as its fd has it.
    fn refresh(&mut self) {
        if let Some(path) = path_of(self._lock.as_fd()) {
            self.path = path;
        }
    }
}

/// Where the file or directory open at `fd` is now (it may have been renamed), from /proc.
pub fn path_of(fd: rustix::fd::BorrowedFd<'_>) -> Option<PathBuf> {
    let path = std::fs::read_link(format!("/proc/self/fd/{}", rustix::fd::AsRawFd::as_raw_fd(&fd))).ok()?;
    (path.is_absolute() && !path.as_os_str().as_encoded_bytes().ends_with(b" (deleted)")).then_some(path)
}

impl Drop for ContainerDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        self.refresh();
        // What an untouched run leaves, removed by name (each rmdir is a journaled ext4 update; no
        // directory walk); anything else (files the container wrote) by a walk of what is left.
        let _ = std::fs::remove_file(self.path.join("work/work/incompat/volatile/dirty"));
        for leftover in ["work/work/incompat/volatile", "work/work/incompat", "work/work", "work", "upper"] {
            let _ = std::fs::remove_dir(self.path.join(leftover));
        }
        if std::fs::remove_dir(&self.path).is_err() {
            if let Err(e) = std::fs::remove_dir_all(&self.path) {
                log::warn!("remove {}: {e}", self.path.display());
            }
        }
    }
}

/// The file in which a container made before its record held its layers names them (one store
/// layer directory a line); still read for such containers ([`record::Container::layers`]).
pub const LAYERS_FILE: &str = "layers";

/// The diff_ids of the layers every container in `containers` (running, kept or left by a crash)
/// mounts, from their records.
pub fn layers_in_use(
    containers: &Path,
) -> Result<std::collections::HashSet<crate::image::Digest>, crate::store::StoreError> {
    let mut used = std::collections::HashSet::new();
    let Ok(entries) = std::fs::read_dir(containers) else { return Ok(used) };
    for entry in entries.flatten() {
        // A directory whose run has not written its record yet holds the store's hold instead.
        let Ok(container) = record::Container::load(&entry.path()) else { continue };
        for layer in container.layers().unwrap_or_default() {
            // STORE/layers/sha256/<hex>/diff
            let hex = layer.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str());
            if let Some(d) = hex.and_then(|h| format!("sha256:{h}").parse().ok()) {
                used.insert(d);
            }
        }
    }
    Ok(used)
}

/// A read-only layer on top of every image holding the mount targets spawner needs (/proc, /sys,
/// /dev, /etc/hostname, /etc/hosts, /etc/resolv.conf), as Docker's "init layer" does: with them there,
/// bind-mounting the /etc files copies nothing up, so a run leaves its upper directory empty and
/// creating and removing it stays cheap. Made once per state directory, atomically.
pub(super) fn init_layer(state_dir: &Path) -> Result<PathBuf, RunError> {
    let path = state_dir.join("init-layer");
    if path.is_dir() {
        return Ok(path);
    }
    let tmp = state_dir.join(format!("init-layer.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let build = || -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for (dir, mode) in [("", 0o755), ("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("etc", 0o755)] {
            let d = tmp.join(dir);
            std::fs::create_dir_all(&d)?;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode))?;
        }
        for file in ETC_FILES {
            std::fs::write(tmp.join("etc").join(file), "")?;
        }
        Ok(())
    };
    build().map_err(|e| RunError::msg(format!("create {}: {e}", tmp.display())))?;
    match std::fs::rename(&tmp, &path) {
        Ok(()) => Ok(path),
        // Another run made it first.
        Err(_) if path.is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(path)
        }
        Err(e) => Err(RunError::msg(format!("rename {} to {}: {e}", tmp.display(), path.display()))),
    }
}

/// Creates `containers/NAME` with its upper and work directories and its record, locked for this
/// run: filled in the name's reservation (`.NAME.name`, locked since the name was chosen), then
/// renamed into place without replacing anything (a taken name is an error).
fn create_container_dir(
    containers: &Path,
    record: &record::Record,
    keep: bool,
    reserved: names::Reserved,
) -> Result<ContainerDir, RunError> {
    let name = record.name.as_str();
    let path = containers.join(name);
    let in_use = || RunError::msg(format!("container name {name:?} is already in use ({})", path.display()));
    let (tmp, lock) = reserved.into_staging();
    let io = |what: &str, p: &Path, e: std::io::Error| RunError::msg(format!("{what} {}: {e}", p.display()));
    let prepare = || -> Result<(), RunError> {
        // The reservation is 0700 (see `names::reserve`); the upper directory itself keeps 0755:
        // it is the container's `/`.
        for d in ["upper", "work"] {
            let dir = tmp.join(d);
            match std::fs::create_dir(&dir) {
                // A reservation taken over from a run that died may hold what it made.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::fs::remove_dir_all(&dir).and_then(|()| std::fs::create_dir(&dir))
                }
                r => r,
            }
            .map_err(|e| io("create", &dir, e))?;
        }
        match keep {
            true => std::fs::write(tmp.join(stale::KEEP_MARKER), "").map_err(|e| io("write", &tmp, e))?,
            false => {
                let _ = std::fs::remove_file(tmp.join(stale::KEEP_MARKER));
            }
        }
        record::write_record(&tmp, record)?;
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            &tmp,
            rustix::fs::CWD,
            &path,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => Err(in_use()),
            Err(e) => Err(RunError::msg(format!("rename {} to {}: {e}", tmp.display(), path.display()))),
        }
    };
    match prepare() {
        Ok(()) => Ok(ContainerDir { path, keep, _lock: lock }),
        Err(e) => {
            // Removed while still locked, as a dropped reservation is.
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Locks the directory of a container made before, for this run (`start`, a restart).
fn claim_container_dir(container: &record::Container) -> Result<ContainerDir, RunError> {
    let path = container.dir.clone();
    match stale::claim(&path) {
        Ok(lock) => {
            let _ = std::fs::remove_file(path.join(CGROUP_GONE));
            let _ = std::fs::remove_file(path.join(lifecycle::STOPPED_MARKER));
            Ok(ContainerDir { path, keep: !container.record.auto_remove, _lock: lock })
        }
        Err(rustix::io::Errno::WOULDBLOCK) => {
            Err(RunError::msg(format!("container {} is already running", container.record.name)))
        }
        Err(e) => Err(RunError::msg(format!("lock {}: {e}", path.display()))),
    }
}

const CGROUP_GONE: &str = stale::CGROUP_GONE_MARKER;

/// The contents of /etc/hostname, /etc/hosts and /etc/resolv.conf for the container, written into a
/// small detached tmpfs and bound over the image's by the child (no file on the host disk). With
/// the host's network (`attached` None) they are the host's, with `--add-host` entries added.
fn etc_files(
    hostname: &str,
    attached: Option<&network::Attached>,
    settings: &dns::Settings,
) -> Vec<(&'static str, String)> {
    let [hostname_file, hosts_file, resolv_file] = ETC_FILES;
    let (hosts, resolv) = match attached {
        Some(a) => (dns::hosts(hostname, a.address, &a.peers, settings), a.resolv_conf.clone()),
        None => {
            let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            hosts.extend(settings.hosts.iter().map(|(name, ip)| format!("{ip}\t{name}\n")));
            (hosts, std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
        }
    };
    vec![(hostname_file, format!("{hostname}\n")), (hosts_file, hosts), (resolv_file, resolv)]
}

/// The files in /etc the container gets from spawner.
const ETC_FILES: [&str; 3] = ["hostname", "hosts", "resolv.conf"];

/// Where the /etc files' tree is among a run's prepared trees.
const ETC_TREE: usize = 0;

fn human_size(n: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

/// The default state directory: `SPAWNER_ROOT`, else /var/lib/spawner.
pub fn default_state_dir() -> PathBuf {
    std::env::var_os("SPAWNER_ROOT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib/spawner"))
}

/// How a run starts, beyond its options.
#[derive(Default)]
pub struct Launch {
    /// The container made before (`start`, a restart): its directory, record and writable layer
    /// are used again.
    pub existing: Option<record::Container>,
    /// The new container's ID (default: a new one).
    pub id: Option<String>,
    /// A detached run (see `monitor`): its stdin is /dev/null, its output goes to its log.
    pub detached: bool,
    /// Told once the container's process runs (the ID and a newline are written to it, then it is
    /// closed, as is spawner's stderr: nobody reads them any more).
    pub ready: Option<OwnedFd>,
}

/// The network namespace thread, joined however the run goes: a run that fails before it takes
/// the thread's result still waits for it, and what it made (the lease, the veth) is undone by
/// dropping that result.
struct NetThread(Option<network::Pending>);

impl Drop for NetThread {
    fn drop(&mut self) {
        if let Some(pending) = self.0.take() {
            drop(pending.result());
        }
    }
}

/// Docker's rule for names (it also keeps them valid as directory and cgroup names).
pub(crate) fn check_name(name: &str) -> Result<(), RunError> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 128;
    match valid {
        true => Ok(()),
        false => {
            Err(RunError::msg(format!("invalid container name {name:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*")))
        }
    }
}

/// Runs the container `opts` describes; returns its exit status (128+N for a signal, 137 for an
/// OOM kill).
pub fn run(opts: &RunOptions, launch: Launch) -> Result<i32, RunError> {
    // Checked before any work is done.
    if let Some(name) = opts.name.as_deref().filter(|_| launch.existing.is_none()) {
        check_name(name)?;
    }
    process::check_overrides(&opts.overrides).map_err(RunError::msg)?;
    let rotation = logs::Rotation::parse(&opts.log_opts).map_err(RunError::msg)?;
    let containers = state_dir::prepare(&opts.state_dir)?;
    // The network namespace (for a bridge: namespace, then lease, veth, address, route once the
    // container has a name) is made on a thread of its own from here on: it is the longest part
    // of a bridged start, and everything below overlaps it.
    let mut net =
        NetThread((opts.network.mode != Mode::Host).then(|| network::start(&opts.state_dir, &opts.network)));
    // A new container's name is this run's from here until its directory has it.
    let (id, dir_name, mut reserved) = match &launch.existing {
        Some(c) => (c.record.id.clone(), c.record.name.clone(), None),
        None => {
            let id = launch.id.clone().unwrap_or_else(record::new_id);
            let reserved = match &opts.name {
                Some(name) => names::reserve(&containers, name)?,
                None => names::reserve_generated(&containers, &id)?,
            };
            (id, reserved.name.clone(), Some(reserved))
        }
    };
    let short_id = &id[..12];
    if let Some(pending) = net.0.as_mut() {
        pending.named(&dir_name, &id);
    }
    let mut devices = devices::open(&opts.devices)?;
    // --privileged: the host's devices, as Docker gives them (not those given with --device again).
    if opts.security.privileged {
        let given: Vec<PathBuf> = devices.iter().map(|d| d.device.container.clone()).collect();
        devices.extend(
            devices::open_host_devices().into_iter().filter(|d| !given.contains(&d.device.container)),
        );
    }
    let seccomp = security::seccomp_profile(&opts.security).map_err(RunError::msg)?;
    let limits = crate::store::Limits { max_image_bytes: opts.max_image_bytes };
    let store = LayerStore::open_with(opts.state_dir.join("store"), limits)?;
    let pulled = opts.pull.as_ref().map(|p| ensure_pulled(p, &store)).transpose()?;
    let archive = Archive::open(&opts.archive)?;
    let image = archive.select(pulled.as_deref().or(opts.image.as_deref()))?;
    log::debug!("archive indexed");
    log::info!(
        "image {} from {}",
        image.names.first().map(String::as_str).unwrap_or("(unnamed)"),
        opts.archive.display()
    );
    // prune waits until the container's layers are on record in its directory.
    let hold = store.hold()?;
    let mut layers = store.ensure_image(&archive, &image)?;
    let image_layers = layers.clone();
    layers.push(init_layer(&opts.state_dir)?);
    log::info!("{} layers ready in {}", layers.len(), store.root().display());

    let process = process::resolve(&image.config, &opts.overrides, short_id, |n| std::env::var(n).ok())?;
    let resolved = resolve_volumes(opts, &image.config, launch.existing.as_ref());
    let cgroup_prefix = stale::cgroup_prefix(&opts.state_dir);
    stale::remove_stale(&containers, &cgroup_prefix, opts.cgroup_parent.as_deref());
    let mut dir = match &launch.existing {
        Some(c) => claim_container_dir(c)?,
        None => {
            let mut record = new_record(opts, &id, &dir_name, &image, &process)?;
            record.mounts = mount_records(&resolved);
            record.layers = image_layers.clone();
            let reserved = reserved.take().expect("a new container's name is reserved");
            let dir = create_container_dir(&containers, &record, !opts.rm, reserved)?;
            if let Some(cidfile) = &opts.cidfile {
                std::fs::write(cidfile, &id)
                    .map_err(|e| RunError::msg(format!("--cidfile {}: {e}", cidfile.display())))?;
            }
            dir
        }
    };
    // A container started again may have been made from other layers (an image pulled again), or
    // before its record held them.
    if let Some(c) = launch.existing.as_ref().filter(|c| c.record.layers != image_layers) {
        let mut record = c.record.clone();
        record.layers = image_layers.clone();
        record::write_record(&dir.path, &record)?;
        let _ = std::fs::remove_file(dir.path.join(LAYERS_FILE));
    }
    drop(hold);
    let (upper, work) = (dir.path.join("upper"), dir.path.join("work"));

    // Mounts that need no namespace of the container's are made here, while the network namespace
    // thread works; the container attaches them.
    let overlay = rootfs::prepare_overlay(&layers, &upper, &work, !dir.keep)?;
    // A removed container's anonymous volumes go with it, however the run ends.
    let mut anonymous =
        AnonymousVolumes { state_dir: &opts.state_dir, mounts: mount_records(&resolved), remove: !dir.keep };
    ensure_volumes(&opts.state_dir, &resolved, &overlay)?;
    // Host paths the user named are looked up now, once; the container gets what they were.
    let volumes = open_volumes(&resolved)?;
    // The network thread's work, and the /etc files that need its address, wait until the core
    // has compiled the filter and made the cgroup (see `container::Watch::finish`): those overlap
    // the thread too.
    let attached: std::cell::OnceCell<network::Attached> = std::cell::OnceCell::new();
    let mut pasta = None;
    let (hostname, dir_path) = (process.hostname.clone(), dir.path.clone());
    let mut finish = |extras: &mut Extras| -> Result<(), RunError> {
        // The thread is joined (`_exiting` dropped) once the /etc files are made: spawner is
        // single-threaded again when the core clones, and the thread's exit overlaps that work.
        let (joined, _exiting) = match net.0.take().map(network::Pending::result) {
            Some((result, exiting)) => (Some(result.map_err(RunError::from)?), Some(exiting)),
            None => (None, None),
        };
        if let Some(a) = joined.as_ref().filter(|a| a.address.is_some()) {
            log::info!("network: {:?}", a);
        }
        if let (Mode::Pasta, Some(a)) = (&opts.network.mode, &joined) {
            pasta = Some(
                network::pasta::start(a.netns.as_fd(), &dir_path, &opts.network.publish)
                    .map_err(RunError::from)?,
            );
        }
        let etc_files = rootfs::etc_files_fs(&etc_files(&hostname, joined.as_ref(), &opts.network.dns))?;
        let mut joined = joined;
        if let Some(a) = joined.as_mut().filter(|a| a.address.is_some()) {
            let flags = rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC;
            let hosts = rustix::fs::openat(&etc_files, "hosts", flags, rustix::fs::Mode::empty())
                .map_err(|e| RunError::msg(format!("open the container's /etc/hosts: {e}")))?;
            a.announce(hosts).map_err(RunError::from)?;
        }
        extras.trees[ETC_TREE] = Some(etc_files);
        if let Some(a) = joined {
            let netns =
                a.netns.try_clone().map_err(|e| RunError::msg(format!("dup network namespace fd: {e}")))?;
            extras.join.push((NamespaceKind::Network, netns));
            let _ = attached.set(a);
        }
        Ok(())
    };
    // The /etc files' place, filled by `finish`.
    let mut trees: Vec<Option<OwnedFd>> = vec![None];
    let mut mounts = FrontEndMounts {
        etc_files: Some((ETC_TREE, ETC_FILES.iter().map(|f| f.to_string()).collect())),
        ..Default::default()
    };
    for (volume, target) in volumes {
        mounts.volumes.push((trees.len(), target));
        trees.push(Some(volume.tree));
    }
    let mut limits = opts.limits.clone();
    // Docker's device allow-list, and each --device node after it (`--privileged`: no device rules,
    // and the host's nodes in its /dev).
    if !opts.security.privileged {
        limits.devices = crate::cgroup::docker_default();
        limits.devices.extend(devices.iter().map(|d| d.device.rule()));
    }
    for device in devices {
        mounts.devices.push((trees.len(), device.device.container.clone()));
        trees.push(Some(device.tree));
    }
    let cgroup_name = format!("{cgroup_prefix}{dir_name}");
    let cgroups_path = match &opts.cgroup_parent {
        Some(parent) => Path::new("/").join(parent).join(&cgroup_name),
        None => PathBuf::from(&cgroup_name),
    };
    let labels = container_labels(&image.config, &opts.labels);
    let config = container_config(opts, process, dir.path.clone(), limits, cgroups_path, seccomp, labels);
    let extras = Extras {
        id: dir_name,
        overlay: Some(overlay),
        trees,
        mounts,
        // The network namespace, from `finish`: joined before the core clones, so spawner is
        // single-threaded again when it forks.
        join: Vec::new(),
        init: match opts.no_init {
            true => None,
            false => Some(container::sealed_memfd().map_err(RunError::msg)?),
        },
        image_user: Some(opts_user(opts, &image.config)),
        group_add: opts.group_add.clone(),
        no_cgroup: false,
        systemd_cgroup: false,
        no_pivot: false,
    };
    let restart_count = launch.existing.as_ref().map_or(0, |c| c.state.restart_count);
    let mut state =
        record::RunState { monitor: std::process::id() as i32, restart_count, ..Default::default() };
    // A new container has no state yet (it reads as created); one run again forgets its last end.
    if launch.existing.is_some() {
        record::write_state(&dir.path, &state)?;
    }
    // A detached container's output goes to its log; a kept one in the foreground shows it and
    // keeps it too (`logs` works on it after, as Docker's); an --rm one writes to spawner's stdout
    // and stderr itself, with no copy between.
    let mut log =
        match launch.detached || dir.keep {
            true => Some(logs::JsonLog::with_rotation(&dir.path.join(record::LOG_FILE), rotation).map_err(
                |e| RunError::msg(format!("create {}: {e}", dir.path.join(record::LOG_FILE).display())),
            )?),
            false => None,
        };
    let mut ready = launch.ready;
    let state_dir = dir.path.clone();
    let mut started = |pid: i32, cgroup: Option<&crate::cgroup::CgroupLocation>| {
        state.ports = attached.get().map(network::Attached::published).unwrap_or_default();
        // Others may share it (`--network container:NAME`) while the container runs.
        state.netns = match &opts.network.mode {
            Mode::Container(_) => String::new(),
            _ => attached.get().map(network::namespace_holder).unwrap_or_default(),
        };
        state.phase = record::Phase::Running;
        state.pid = pid;
        state.start_time = crate::runc::state::start_time(pid).unwrap_or(0);
        state.started_at = crate::clock::now_ns();
        state.cgroup = cgroup.cloned();
        if let Err(e) = record::write_state(&state_dir, &state) {
            log::warn!("{e}");
        }
        if let Some(ready) = ready.take() {
            let _ = rustix::io::write(&ready, format!("{id}\n").as_bytes());
            if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                let _ = rustix::stdio::dup2_stderr(&null);
            }
        }
    };
    let mut watch = container::Watch {
        captured: None,
        stdio: None,
        started: Some(&mut started),
        finish: Some(&mut finish),
    };
    let mut shown;
    if let Some(log) = log.as_mut() {
        watch.captured = Some(match launch.detached {
            true => capture_pipes(log, dev_null()?, false)?,
            false => {
                let [out, err] = opts.detached_streams;
                shown = logs::Attached { log, show: [!out, !err] };
                capture_pipes(&mut shown, dup_own(0)?, true)?
            }
        });
    } else if opts.detached_streams.contains(&true) {
        let stream = |fd: i32, detached: bool| if detached { dev_null() } else { dup_own(fd) };
        let [out, err] = opts.detached_streams;
        watch.stdio = Some([stream(0, false)?, stream(1, out)?, stream(2, err)?]);
    }
    let exit = container::run(&config, extras, watch);
    // The network goes first: its ports and address are released, and the kernel tears the
    // namespace and its veth down on a worker of its own while the rest is cleaned up here, rather
    // than while the next run makes its network (the teardown holds the lock every network change
    // takes).
    drop(pasta);
    let released = attached.into_inner().map(network::Attached::release);
    if let Some(log) = log.as_mut() {
        log.finish();
    }
    // Renamed while it ran, perhaps.
    dir.refresh();
    let exit = match exit {
        Ok(exit) => exit,
        Err(e) => {
            if dir.keep {
                let failed = record::RunState {
                    phase: record::Phase::Exited,
                    exit_code: 125,
                    error: e.to_string(),
                    finished_at: crate::clock::now_ns(),
                    restart_count,
                    ..Default::default()
                };
                let _ = record::write_state(&dir.path, &failed);
            }
            return Err(e);
        }
    };
    match exit.cgroup_left {
        None if dir.keep => {
            let _ = std::fs::write(dir.path.join(stale::CGROUP_GONE_MARKER), "");
        }
        None => {}
        Some(e) => {
            // The directory stays, unlocked once spawner exits: the next run takes it for a dead
            // run's and tries the cgroup again (see `stale`).
            log::warn!("{e}");
            dir.keep = true;
        }
    }
    if dir.keep {
        // What `started` recorded, kept in memory: nothing else writes a running container's state.
        state.phase = record::Phase::Exited;
        state.exit_code = exit.status;
        state.oom_killed = exit.oom_kills > 0;
        state.finished_at = crate::clock::now_ns();
        state.pid = 0;
        // Withdrawn with the run.
        state.ports.clear();
        state.netns.clear();
        record::write_state(&dir.path, &state)?;
    }
    anonymous.remove = !dir.keep;
    drop(dir);
    drop(anonymous);
    log::debug!("cleaned up");
    drop(released);
    if exit.oom_kills > 0 {
        match exit.memory_limit {
            Some(l) => {
                eprintln!("spawner: container was killed by the OOM killer (memory limit {})", human_size(l))
            }
            None => eprintln!("spawner: container was killed by the OOM killer"),
        }
    }
    Ok(exit.status)
}

/// The record of a container about to be made.
fn new_record(
    opts: &RunOptions,
    id: &str,
    name: &str,
    image: &crate::image::Image,
    process: &process::ProcessSpec,
) -> Result<record::Record, RunError> {
    let stop_signal = match opts.stop_signal.as_deref().or(image.config.config.stop_signal.as_deref()) {
        Some(s) => crate::signal::parse(s).map_err(|e| RunError::msg(format!("stop signal: {e}")))?,
        None => 15,
    };
    // As `images` names it: the reference, the archive's name for the image, or the archive.
    let image_name =
        match &opts.pull {
            Some(p) => p.reference.familiar(),
            None => opts.image.clone().or_else(|| image.names.first().cloned()).unwrap_or_else(|| {
                opts.archive.file_name().unwrap_or_default().to_string_lossy().into_owned()
            }),
        };
    Ok(record::Record {
        id: id.into(),
        name: name.into(),
        image: image_name,
        image_id: image.config_digest.to_string(),
        created: crate::clock::now_ns(),
        command: process.argv.clone(),
        env: process.env.clone(),
        cwd: process.cwd.clone(),
        user: opts_user(opts, &image.config),
        hostname: process.hostname.clone(),
        security: opts.security_args.clone(),
        stop_signal,
        stop_timeout: opts.stop_timeout.unwrap_or(10),
        auto_remove: opts.rm,
        tty: opts.tty,
        network: opts.network.mode.to_string(),
        ports: opts.ports.clone(),
        restart: opts.restart.clone(),
        mounts: Vec::new(),
        run_args: opts.run_args.clone(),
        run_cwd: std::env::current_dir().unwrap_or_default(),
        labels: container_labels(&image.config, &opts.labels),
        log_opts: opts.log_opts.clone(),
        layers: Vec::new(),
    })
}

/// The container's labels: the image's, with `--label` and `--label-file` over them (Docker's
/// rule).
fn container_labels(
    image: &crate::image::ImageConfig,
    given: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels = image.config.labels.clone();
    labels.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels
}

/// A copy of spawner's own stdin, stdout or stderr (`fd` 0, 1 or 2), for the container.
fn dup_own(fd: i32) -> Result<OwnedFd, RunError> {
    // SAFETY: 0, 1 and 2 are open for as long as spawner runs (stdin is /dev/null without -i);
    // only borrowed to be duplicated.
    let own = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_dupfd_cloexec(own, 3).map_err(|e| RunError::msg(format!("dup fd {fd}: {e}")))
}

fn dev_null() -> Result<OwnedFd, RunError> {
    rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| RunError::msg(format!("open /dev/null: {e}")))
}

/// The pipes a container writes its output into, with `sink` reading them; `stdin` its input, and
/// `attached` whether spawner's terminal is its too (see [`container::Captured`]).
fn capture_pipes(
    sink: &mut dyn container::Sink,
    stdin: OwnedFd,
    attached: bool,
) -> Result<container::Captured<'_>, RunError> {
    let pipe = || {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| RunError::msg(format!("pipe: {e}")))
    };
    let ((out_read, out_write), (err_read, err_write)) = (pipe()?, pipe()?);
    Ok(container::Captured {
        stdio: [stdin, out_write, err_write],
        stdout: out_read,
        stderr: err_read,
        sink,
        attached,
    })
}

/// Docker's `User` for the container: `-u`, else the image's (empty: root).
fn opts_user(opts: &RunOptions, image: &crate::image::ImageConfig) -> String {
    opts.overrides.user.clone().unwrap_or_else(|| image.config.user.clone())
}

/// Docker's size of /dev/shm, 64 MiB.
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;

/// The mounts every Docker container has, in Docker's order, made `nodev` where Docker's are not
/// (/dev: nodes come only from the host, bound in). /dev/shm is `shm_size` bytes; with `--ipc host`
/// it is the host's, and with `--ipc none` there is none.
fn docker_mounts(shm_size: u64, ipc: flags::IpcMode) -> Vec<Mount> {
    use linux_raw_sys::general::{MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY};
    let hidden = u64::from(MS_NOSUID | MS_NODEV | MS_NOEXEC);
    let fs = |destination: &str, fstype: &str, flags: u64, data: &str| Mount {
        destination: destination.into(),
        kind: MountKind::Fs { fstype: fstype.into(), source: fstype.into() },
        flags,
        cleared_flags: 0,
        recursive_set: 0,
        recursive_clear: 0,
        propagation: Vec::new(),
        data: data.into(),
    };
    let shm = match ipc {
        flags::IpcMode::Private => {
            Some(fs("/dev/shm", "tmpfs", hidden, &format!("mode=1777,size={shm_size}")))
        }
        flags::IpcMode::Host => Some(Mount {
            kind: MountKind::Bind { source: "/dev/shm".into(), recursive: true },
            ..fs("/dev/shm", "", hidden, "")
        }),
        flags::IpcMode::None => None,
    };
    [
        fs("/proc", "proc", hidden, ""),
        fs("/sys", "sysfs", hidden | u64::from(MS_RDONLY), ""),
        fs("/sys/fs/cgroup", "cgroup", hidden | u64::from(MS_RDONLY), ""),
        fs("/dev", "tmpfs", hidden, "mode=755,size=65536k"),
        fs(
            "/dev/pts",
            "devpts",
            u64::from(MS_NOSUID | MS_NOEXEC),
            "newinstance,ptmxmode=0666,mode=0620,gid=5",
        ),
    ]
    .into_iter()
    .chain(shm)
    .chain([fs("/dev/mqueue", "mqueue", hidden, "")])
    .collect()
}

/// Docker's mounts, then the `--tmpfs` ones (a `--tmpfs` at one of Docker's mount points replaces
/// it).
fn container_mounts(opts: &RunOptions) -> Vec<Mount> {
    let mut mounts = docker_mounts(opts.shm_size.unwrap_or(DEFAULT_SHM_SIZE), opts.ipc);
    mounts.retain(|m| !opts.tmpfs.iter().any(|t| t.destination == m.destination));
    mounts.extend(opts.tmpfs.iter().cloned());
    mounts
}

/// Docker's masked paths, with `/sys/devices/system/cpu/*/thermal_throttle` expanded for this
/// machine's CPUs (masking skips what does not exist).
fn masked_paths() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = security::MASKED_PATHS.iter().map(PathBuf::from).collect();
    if let Ok(cpus) = std::fs::read_dir("/sys/devices/system/cpu") {
        for cpu in cpus.flatten() {
            let name = cpu.file_name();
            let number = name.to_str().and_then(|n| n.strip_prefix("cpu"));
            if number.is_some_and(|n| n.parse::<u32>().is_ok()) {
                paths.push(cpu.path().join("thermal_throttle"));
            }
        }
    }
    paths
}

/// The container as a spec would describe it.
fn container_config(
    opts: &RunOptions,
    process: process::ProcessSpec,
    root: PathBuf,
    limits: Limits,
    cgroups_path: PathBuf,
    seccomp: Option<crate::seccomp::Profile>,
    labels: BTreeMap<String, String>,
) -> Config {
    let sec = &opts.security;
    let caps = sec.capabilities;
    let none = rustix::thread::CapabilitySet::empty();
    let mut namespaces: Vec<spec::Namespace> = [
        NamespaceKind::Mount,
        NamespaceKind::Pid,
        NamespaceKind::Uts,
        NamespaceKind::Ipc,
        NamespaceKind::Cgroup,
    ]
    .into_iter()
    .filter(|kind| match kind {
        NamespaceKind::Pid => opts.pid == flags::Sharing::Private,
        NamespaceKind::Uts => opts.uts == flags::Sharing::Private,
        NamespaceKind::Ipc => opts.ipc != flags::IpcMode::Host,
        _ => true,
    })
    .map(|kind| spec::Namespace { kind, path: None })
    .collect();
    namespaces.sort_by_key(|ns| ns.kind);
    Config {
        oci_version: "1.2.0".into(),
        root: spec::Root { path: root, readonly: opts.read_only },
        mounts: container_mounts(opts),
        process: Some(spec::Process {
            args: process.argv,
            env: process.env,
            cwd: PathBuf::from(process.cwd),
            // Looked up in the image by the core (`Extras::image_user`).
            user: spec::User { uid: 0, gid: 0, umask: None, additional_gids: Vec::new() },
            terminal: opts.tty,
            // The size of spawner's own terminal from the start, as docker run -t: a process that
            // asks for it at once (stty size) must not see 0 0 before spawner passes it on.
            // (stdin's, or stdout's when stdin is not attached).
            console_size: opts
                .tty
                .then(|| {
                    rustix::termios::tcgetwinsize(rustix::stdio::stdin())
                        .or_else(|_| rustix::termios::tcgetwinsize(rustix::stdio::stdout()))
                        .ok()
                })
                .flatten()
                .map(|w| (w.ws_row, w.ws_col)),
            capabilities: spec::Capabilities {
                bounding: caps,
                effective: caps,
                permitted: caps,
                inheritable: none,
                ambient: none,
            },
            rlimits: opts.rlimits.clone(),
            no_new_privileges: sec.no_new_privs,
            oom_score_adj: None,
            apparmor_profile: None,
            selinux_label: None,
        }),
        hostname: Some(process.hostname),
        domainname: opts.domainname.clone(),
        namespaces,
        uid_mappings: Vec::new(),
        gid_mappings: Vec::new(),
        sysctl: opts.sysctl.clone(),
        resources: limits,
        cgroups_path: Some(cgroups_path),
        devices: Vec::new(),
        seccomp,
        rootfs_propagation: None,
        masked_paths: if sec.mask_paths { masked_paths() } else { Vec::new() },
        readonly_paths: if sec.mask_paths {
            security::READONLY_PATHS.iter().map(PathBuf::from).collect()
        } else {
            Vec::new()
        },
        personality: None,
        time_offsets: Vec::new(),
        hooks: Default::default(),
        annotations: labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's container directory is its name's reservation, filled and renamed: one directory
    /// and lock, and what a dead run left in its reservation is not the next run's.
    #[test]
    fn the_container_directory_is_made_of_the_reservation() {
        let containers = std::env::temp_dir().join(format!("spawner-cdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&containers);
        std::fs::create_dir_all(&containers).unwrap();
        let record = record::Record { id: record::new_id(), name: "web".into(), ..Default::default() };

        // A run that died while filling its reservation: its lock is gone, its files are not.
        let (left, lock) = names::reserve(&containers, "web").unwrap().into_staging();
        std::fs::create_dir_all(left.join("upper/etc")).unwrap();
        std::fs::write(left.join(stale::KEEP_MARKER), "").unwrap();
        // As an older spawner made it.
        std::fs::set_permissions(&left, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        drop(lock);

        let reserved = names::reserve(&containers, "web").unwrap();
        let dir = create_container_dir(&containers, &record, false, reserved).unwrap();
        assert_eq!(dir.path, containers.join("web"));
        let entries = |p: &Path| {
            let mut names: Vec<String> = std::fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        };
        assert_eq!(entries(&containers), ["web"], "the reservation became the directory");
        assert_eq!(entries(&dir.path), ["container.json", "upper", "work"]);
        assert!(entries(&dir.path.join("upper")).is_empty(), "a dead run's upper files are gone");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "no other host user reaches the upper directory");
        assert_eq!(stale::claim(&dir.path).err(), Some(rustix::io::Errno::WOULDBLOCK), "still locked");
        assert!(names::reserve(&containers, "web").is_err(), "the name is the container's");

        let again = names::reserve(&containers, "web2").unwrap();
        let taken = record::Record { name: "web".into(), ..record.clone() };
        assert!(create_container_dir(&containers, &taken, false, again).is_err());
        assert_eq!(entries(&containers), ["web"], "a failed rename leaves no reservation");
        drop(dir);
        std::fs::remove_dir_all(&containers).unwrap();
    }
}
