//! The container's root file system: the overlay of the image's layers, the pseudo file systems, /dev,
//! the /etc files and bind mounts, and pivot_root into it. Runs in the child, inside its new mount
//! namespace, before init is executed.
//!
//! Every path inside the rootfs comes from the image (untrusted): targets are opened with openat2
//! RESOLVE_IN_ROOT (a symlink such as `proc -> /` resolves inside the rootfs, never on the host) and
//! mounts are attached to those fds with the new mount API, so nothing can swap a path in between.

use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, FileType, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount, open_tree,
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// A setup step that failed: what was being done, on which path, and the errno.
#[derive(Debug)]
pub struct MountError {
    pub what: String,
    pub errno: Errno,
}

impl std::fmt::Display for MountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.errno)
    }
}

impl std::error::Error for MountError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.errno)
    }
}

pub type Result<T> = std::result::Result<T, MountError>;

pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, Errno> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|errno| MountError { what: what(), errno })
    }
}

/// How a mount target is created when missing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Dir,
    File,
}

fn in_root_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// Opens (O_PATH) `path` inside `root`, creating missing directories (and the last component as
/// `kind`) on the way. Symlinks resolve inside `root`, dangling ones included: a mount target
/// `data -> /elsewhere` creates and opens `<root>/elsewhere`, never a host path (as runc's
/// securejoin does).
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, kind: Target) -> Result<OwnedFd> {
    // Mount targets almost always exist (the init layer has them): one openat2 resolves the whole
    // path in the root, as the walk below would, which takes one per component. The walk handles
    // the rest (creating, dangling symlinks) and names what failed.
    let flags = if kind == Target::Dir { OFlags::DIRECTORY } else { OFlags::empty() };
    let relative = path.strip_prefix("/").unwrap_or(path);
    if let Ok(fd) =
        fs::openat2(root, relative, flags | OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), in_root_flags())
    {
        return Ok(fd);
    }
    open_in_root_following(root, path, kind, 0)
}

fn open_in_root_following(root: BorrowedFd<'_>, path: &Path, kind: Target, links: u32) -> Result<OwnedFd> {
    if links > 40 {
        return Err(MountError { what: format!("resolve {}", path.display()), errno: Errno::LOOP });
    }
    let parts: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            Component::ParentDir => Some("..".as_ref()),
            _ => None,
        })
        .collect();
    let open = |p: &Path, flags: OFlags| {
        fs::openat2(root, p, flags | OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), in_root_flags())
    };
    let mut sofar = PathBuf::from("/");
    let mut fd = open(&sofar, OFlags::DIRECTORY).context(|| "open container root".into())?;
    for (i, name) in parts.iter().enumerate() {
        let parent = sofar.clone();
        sofar.push(name);
        let last = i + 1 == parts.len();
        let flags = if last && kind == Target::File { OFlags::empty() } else { OFlags::DIRECTORY };
        match open(&sofar, flags) {
            Ok(next) => fd = next,
            Err(Errno::NOENT) => {
                // `fd` is the resolved parent. A dangling symlink is followed (inside the root);
                // anything else missing is created.
                if let Ok(target) = fs::readlinkat(&fd, *name, Vec::new()) {
                    let target = Path::new(std::ffi::OsStr::from_bytes(target.as_bytes()));
                    let mut next = if target.is_absolute() { PathBuf::from("/") } else { parent };
                    next.push(target);
                    for rest in &parts[i + 1..] {
                        next.push(rest);
                    }
                    return open_in_root_following(root, &next, kind, links + 1);
                }
                if last && kind == Target::File {
                    let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
                    drop(
                        fs::openat(&fd, *name, flags, Mode::from_raw_mode(0o644))
                            .context(|| format!("create {}", sofar.display()))?,
                    );
                } else {
                    match fs::mkdirat(&fd, *name, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => {
                            return Err(MountError { what: format!("mkdir {}", sofar.display()), errno: e })
                        }
                    }
                }
                fd = open(&sofar, flags).context(|| format!("open {}", sofar.display()))?;
            }
            Err(e) => return Err(MountError { what: format!("open {}", sofar.display()), errno: e }),
        }
    }
    Ok(fd)
}

/// Attaches a detached mount (from fsmount or open_tree) onto `target`.
fn attach(mnt: &OwnedFd, target: BorrowedFd<'_>, what: &str) -> Result<()> {
    move_mount(
        mnt,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .context(|| format!("move_mount {what}"))
}

/// A new file system instance, configured with `options` (`key=value`, or a flag `key` when the value
/// is empty), not yet attached anywhere.
pub fn new_fs(fstype: &str, options: &[(&str, &str)], attrs: MountAttrFlags) -> Result<OwnedFd> {
    let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC).context(|| format!("fsopen {fstype}"))?;
    for (key, value) in options {
        if value.is_empty() {
            fsconfig_set_flag(&fs, *key).context(|| format!("{fstype}: option {key}"))?;
        } else {
            fsconfig_set_string(&fs, *key, *value).context(|| format!("{fstype}: option {key}={value}"))?;
        }
    }
    fsconfig_create(&fs).context(|| format!("create {fstype} file system"))?;
    fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs).context(|| format!("fsmount {fstype}"))
}

/// Mounts a fresh `fstype` at `path` inside `root`.
pub fn mount_in_root(
    root: BorrowedFd<'_>,
    path: &str,
    fstype: &str,
    options: &[(&str, &str)],
    attrs: MountAttrFlags,
) -> Result<()> {
    let target = open_in_root(root, Path::new(path), Target::Dir)?;
    let mnt = new_fs(fstype, options, attrs)?;
    attach(&mnt, target.as_fd(), path)
}

/// A `-v` volume's source, cloned (with everything mounted below it) into a detached tree the
/// moment it is named: the path is looked up this once, never again, so nothing that swaps it later
/// (CVE-2021-30465's pattern) changes what the container gets. The tree's flags are set recursively
/// (`MOUNT_ATTR_*`: nodev and nosuid by default, read-only for `:ro`), submounts included.
pub struct VolumeTree {
    pub tree: OwnedFd,
    /// Directory or file, for the mount target made in the container.
    pub kind: Target,
    /// What the path resolved to, for messages.
    pub resolved: PathBuf,
}

/// Opens the host's `source` (following symlinks, once) and clones the mount tree from that fd for
/// [`attach_in_root`], with `attrs` set on every mount of the tree.
pub fn volume_tree(source: &Path, attrs: MountAttrFlags) -> Result<VolumeTree> {
    let what = || format!("volume source {}", source.display());
    let fd = fs::open(source, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).context(what)?;
    // The path the source resolved to, from the fd: what the container gets, for messages.
    let resolved = fs::readlink(format!("/proc/self/fd/{}", fd.as_raw_fd()), Vec::new())
        .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p.as_bytes())))
        .unwrap_or_else(|_| source.to_path_buf());
    let tree = open_tree(
        &fd,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::AT_EMPTY_PATH,
    )
    .context(|| format!("{}: open_tree", what()))?;
    rawsys::mount::mount_setattr(tree.as_fd(), u64::from(attrs.bits()), 0, true)
        .context(|| format!("{}: mount_setattr", what()))?;
    let st = fs::fstat(&tree).context(|| format!("{}: fstat", what()))?;
    let kind =
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory { Target::Dir } else { Target::File };
    Ok(VolumeTree { tree, kind, resolved })
}

/// The bundle's root file system bound onto itself (with what is mounted below it), as runc does, to
/// attach in the container's mount namespace: pivot_root needs a mount point.
pub fn bind_root(path: &Path) -> Result<OwnedFd> {
    open_tree(
        CWD,
        path,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_RECURSIVE,
    )
    .context(|| format!("root.path {}", path.display()))
}

/// Attaches a detached mount (a volume's tree, a device node) at `path` inside `root`, creating the
/// target as `kind` where it is missing.
pub fn attach_in_root(root: BorrowedFd<'_>, tree: &OwnedFd, path: &Path, kind: Target) -> Result<()> {
    let target = open_in_root(root, path, kind)?;
    attach(tree, target.as_fd(), &path.display().to_string())
}

/// `/dev/console` for a process with a terminal, after pivot_root: the pty's slave bound over it
/// (made as a file where missing), as the spec's default devices ask ("/dev/console is set up if
/// terminal is enabled in the config by bind mounting the pseudoterminal pty to /dev/console").
pub fn bind_console(slave: BorrowedFd<'_>) -> Result<()> {
    let root = fs::open("/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .context(|| "open /".into())?;
    let flags =
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_EMPTY_PATH;
    let tree = open_tree(slave, "", flags).context(|| "open_tree of the terminal".into())?;
    attach_in_root(root.as_fd(), &tree, Path::new("/dev/console"), Target::File)
}

/// A small detached tmpfs holding `files` (never attached anywhere itself, on Linux 6.15+), for
/// [`bind_etc_files`]. spawner makes it before the container's process exists (the new mount API's
/// detached mounts can be attached in another mount namespace), off the start-up path.
pub fn etc_files_fs(files: &[(&str, String)]) -> Result<OwnedFd> {
    let tmpfs = new_fs(
        "tmpfs",
        &[("mode", "755"), ("size", "64k")],
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    for (name, text) in files {
        let file = fs::openat(
            &tmpfs,
            *name,
            OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .context(|| format!("create /etc/{name} for the container"))?;
        rustix::io::write(&file, text.as_bytes())
            .context(|| format!("write /etc/{name} for the container"))?;
    }
    Ok(tmpfs)
}

/// Binds files of the detached directory `tmpfs` (from [`etc_files_fs`]) over files of the
/// container: `(name in tmpfs, target inside root)`.
pub fn attach_files(root: BorrowedFd<'_>, tmpfs: &OwnedFd, files: &[(String, PathBuf)]) -> Result<()> {
    let clone = |dir: BorrowedFd<'_>, name: &str| {
        open_tree(dir, name, OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC)
    };
    // Before Linux 6.15 a file cannot be cloned out of a detached mount (EINVAL): attach the tmpfs
    // inside the container's tree for as long as the binds take. The first file's clone, which
    // tells, is the one attached: one dropped unattached would be unmounted on its close, which
    // waits for an RCU grace period.
    let mut first = files.first().map(|(name, _)| clone(tmpfs.as_fd(), name));
    let staged = match &first {
        Some(Err(Errno::INVAL)) => Some(stage_in_root(root, tmpfs)?),
        _ => None,
    };
    let dir = staged.as_ref().map_or(tmpfs.as_fd(), |d| d.as_fd());
    let mut result = Ok(());
    for (name, target) in files {
        result = open_in_root(root, target, Target::File).and_then(|target_fd| {
            let tree = match first.take() {
                Some(Ok(tree)) => tree,
                _ => clone(dir, name).context(|| format!("open_tree {}", target.display()))?,
            };
            attach(&tree, target_fd.as_fd(), &target.display().to_string())
        });
        if result.is_err() {
            break;
        }
    }
    if staged.is_some() {
        let path = format!("/proc/self/fd/{}/{STAGE}", rustix::fd::AsRawFd::as_raw_fd(&root));
        rustix::mount::unmount(path.as_str(), rustix::mount::UnmountFlags::DETACH)
            .context(|| format!("umount /{STAGE}"))?;
        let _ = fs::unlinkat(root, STAGE, fs::AtFlags::REMOVEDIR);
    }
    result
}

/// Where the /etc files' tmpfs is attached while they are bound, on kernels before 6.15.
const STAGE: &str = ".spawner-etc";

fn stage_in_root(root: BorrowedFd<'_>, tmpfs: &OwnedFd) -> Result<OwnedFd> {
    let stage = open_in_root(root, &Path::new("/").join(STAGE), Target::Dir)?;
    attach(tmpfs, stage.as_fd(), STAGE)?;
    fs::openat2(
        root,
        STAGE,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        in_root_flags(),
    )
    .context(|| format!("open /{STAGE}"))
}

/// The container's root file system before it is attached: a detached overlay mount, or (before
/// Linux 6.5) the options for mount(2), which can only mount in place.
pub enum Overlay {
    Detached(OwnedFd),
    Options(std::ffi::CString),
}

/// The overlay of `layers` (bottom to top) with `upper` and `work`, ready for [`attach_overlay`].
/// `volatile` (when the upper directory is thrown away at exit) skips overlayfs's syncs of the upper
/// file system, which are pure cost for data nobody keeps. spawner prepares it before the
/// container's process exists, off the start-up path.
pub fn prepare_overlay(layers: &[PathBuf], upper: &Path, work: &Path, volatile: bool) -> Result<Overlay> {
    match overlay_fs(layers, upper, work, volatile) {
        Ok(fs) => {
            // nodev: device nodes an image ships (a block node for the host's disk, say) must not
            // open in the container, which has no devices cgroup; /dev is a tmpfs of its own.
            let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::MOUNT_ATTR_NODEV)
                .context(|| "fsmount overlay".into())?;
            Ok(Overlay::Detached(mnt))
        }
        // Before Linux 6.5 overlayfs parsed its options only at create (so `lowerdir+` fails there)
        // and fsconfig strings were limited to 256 bytes: mount(2) takes a page of options.
        Err(e) if e.errno == Errno::INVAL => {
            let list: Vec<String> = layers.iter().rev().map(|p| p.display().to_string()).collect();
            let mut data = format!(
                "lowerdir={},upperdir={},workdir={}",
                list.join(":"),
                upper.display(),
                work.display()
            );
            if volatile {
                data.push_str(",volatile");
            }
            let data = std::ffi::CString::new(data)
                .map_err(|_| MountError { what: "overlay options".into(), errno: Errno::INVAL })?;
            Ok(Overlay::Options(data))
        }
        Err(e) => Err(e),
    }
}

/// Attaches the overlay at `merged`, in the container's mount namespace.
pub fn attach_overlay(overlay: &Overlay, merged: &Path) -> Result<()> {
    match overlay {
        Overlay::Detached(mnt) => move_mount(mnt, "", CWD, merged, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
            .context(|| format!("attach overlay at {}", merged.display())),
        Overlay::Options(data) => rustix::mount::mount(
            "overlay",
            merged,
            "overlay",
            rustix::mount::MountFlags::NODEV,
            data.as_c_str(),
        )
        .context(|| format!("mount overlay on {}", merged.display())),
    }
}

/// The overlay configured through the new mount API: `lowerdir+` (Linux 6.8) takes one layer per
/// call, so no option string can outgrow a page however many layers an image has; top layer first.
fn overlay_fs(layers: &[PathBuf], upper: &Path, work: &Path, volatile: bool) -> Result<OwnedFd> {
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).context(|| "fsopen overlay".into())?;
    for layer in layers.iter().rev() {
        fsconfig_set_string(&fs, "lowerdir+", layer)
            .context(|| format!("overlay lowerdir+ {}", layer.display()))?;
    }
    fsconfig_set_string(&fs, "upperdir", upper)
        .context(|| format!("overlay upperdir {}", upper.display()))?;
    fsconfig_set_string(&fs, "workdir", work).context(|| format!("overlay workdir {}", work.display()))?;
    if volatile {
        fsconfig_set_flag(&fs, "volatile").context(|| "overlay volatile".into())?;
    }
    fsconfig_create(&fs).context(|| "create overlay".into())?;
    Ok(fs)
}

/// Runs the container's mount plan inside `root` (before pivot_root): each operation in order,
/// with `sources` the plan's sources as spawner opened them (see [`open_sources`]).
pub fn execute(
    root: BorrowedFd<'_>,
    plan: &super::mount_plan::Plan,
    sources: &[OwnedFd],
    cgroup_version: crate::cgroup::Version,
) -> Result<()> {
    use super::mount_plan::Op;
    // The last tmpfs mounted, fresh and ours: nothing of the image is in it, so what goes directly
    // in it is made by name there rather than by a walk from the root (the device nodes in /dev).
    let mut fresh: Option<(PathBuf, OwnedFd)> = None;
    for op in &plan.ops {
        match op {
            Op::NewFs { target, fstype, source: _, options, attrs } => {
                let options: Vec<(&str, &str)> =
                    options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let attrs = MountAttrFlags::from_bits_retain(*attrs as u32);
                let mnt = new_fs(fstype, &options, attrs)?;
                let dir = open_in_root(root, target, Target::Dir)?;
                attach(&mnt, dir.as_fd(), &target.display().to_string())?;
                fresh = (fstype == "tmpfs")
                    .then(|| {
                        fs::openat(
                            &mnt,
                            ".",
                            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                            Mode::empty(),
                        )
                    })
                    .transpose()
                    .context(|| format!("open {}", target.display()))?
                    .map(|fd| (target.clone(), fd));
            }
            Op::Cgroups { target, attrs } => {
                mount_cgroups(root, target, cgroup_version, MountAttrFlags::from_bits_retain(*attrs as u32))?
            }
            Op::Attach { target, source, attrs, cleared, recursive_set, recursive_clear } => {
                let tree = &sources[*source];
                if attrs | cleared != 0 {
                    rawsys::mount::mount_setattr(tree.as_fd(), *attrs, *cleared, false)
                        .context(|| format!("{}: mount_setattr", target.display()))?;
                }
                if recursive_set | recursive_clear != 0 {
                    rawsys::mount::mount_setattr(tree.as_fd(), *recursive_set, *recursive_clear, true)
                        .context(|| format!("{}: mount_setattr", target.display()))?;
                }
                let st = fs::fstat(tree).context(|| format!("{}: fstat source", target.display()))?;
                let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                match in_fresh(&fresh, target) {
                    Some((dir, name)) if !is_dir => {
                        let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
                        drop(
                            fs::openat(dir, &name, flags, Mode::from_raw_mode(0o644))
                                .context(|| format!("create {}", target.display()))?,
                        );
                        move_mount(tree, "", dir, &name, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
                            .context(|| format!("move_mount {}", target.display()))?;
                    }
                    _ => attach_in_root(root, tree, target, if is_dir { Target::Dir } else { Target::File })?,
                }
            }
            Op::AttachFiles { source, files } => attach_files(root, &sources[*source], files)?,
            Op::Mknod { target, kind, major, minor, mode, uid, gid } => {
                let (parent, name) = parent_in_root(root, target)?;
                let file_type = match kind {
                    crate::spec::DeviceKind::Char => FileType::CharacterDevice,
                    crate::spec::DeviceKind::Block => FileType::BlockDevice,
                    crate::spec::DeviceKind::Fifo => FileType::Fifo,
                };
                match fs::mknodat(
                    &parent,
                    &name,
                    file_type,
                    Mode::from_raw_mode(*mode),
                    fs::makedev(*major, *minor),
                ) {
                    Ok(()) => {}
                    // "If a file already exists at `path` that does not match the requested
                    // device, the runtime MUST generate an error."
                    Err(Errno::EXIST) => {
                        let st = fs::statat(&parent, &name, fs::AtFlags::SYMLINK_NOFOLLOW)
                            .context(|| format!("stat {}", target.display()))?;
                        let same_type = FileType::from_raw_mode(st.st_mode) == file_type;
                        let same_number =
                            file_type == FileType::Fifo || st.st_rdev == fs::makedev(*major, *minor);
                        if !(same_type && same_number) {
                            return Err(MountError {
                                what: format!(
                                    "linux.devices: {} is there already and is not the device asked for",
                                    target.display()
                                ),
                                errno: Errno::EXIST,
                            });
                        }
                    }
                    Err(e) => {
                        return Err(MountError { what: format!("mknod {}", target.display()), errno: e })
                    }
                }
                fs::chmodat(&parent, &name, Mode::from_raw_mode(*mode), fs::AtFlags::empty())
                    .context(|| format!("chmod {}", target.display()))?;
                fs::chownat(
                    &parent,
                    &name,
                    Some(rustix::fs::Uid::from_raw(*uid)),
                    Some(rustix::fs::Gid::from_raw(*gid)),
                    fs::AtFlags::SYMLINK_NOFOLLOW,
                )
                .context(|| format!("chown {}", target.display()))?;
            }
            Op::Symlink { target, to } => {
                let made = match in_fresh(&fresh, target) {
                    Some((dir, name)) => fs::symlinkat(to.as_str(), dir, &name),
                    None => parent_in_root(root, target)
                        .and_then(|(parent, name)| {
                            fs::symlinkat(to.as_str(), &parent, &name)
                                .context(|| format!("symlink {}", target.display()))
                        })
                        .map_err(|e| e.errno),
                };
                match made {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => {
                        return Err(MountError { what: format!("symlink {}", target.display()), errno: e })
                    }
                }
            }
            Op::Propagate { target, propagation } => {
                // The mount was just made there, directory or file (Target::File opens either).
                let fd = open_in_root(root, target, Target::File)?;
                set_propagation(fd.as_fd(), *propagation)
                    .context(|| format!("propagation of {}", target.display()))?;
            }
        }
    }
    Ok(())
}

/// `target`'s name when it goes directly in `fresh` (see [`execute`]), with that directory.
fn in_fresh<'a>(fresh: &'a Option<(PathBuf, OwnedFd)>, target: &Path) -> Option<(BorrowedFd<'a>, String)> {
    let (dir, fd) = fresh.as_ref()?;
    let name = target.strip_prefix(dir).ok()?.to_str()?;
    (!name.is_empty() && !name.contains('/') && name != "..").then(|| (fd.as_fd(), name.to_string()))
}

/// Sets a mount's propagation (MS_PRIVATE, MS_SHARED, MS_SLAVE, MS_UNBINDABLE; recursive or not).
pub fn set_propagation(
    mount: BorrowedFd<'_>,
    propagation: crate::spec::Propagation,
) -> std::result::Result<(), Errno> {
    use crate::spec::Propagation as P;
    use linux_raw_sys::general::{MS_PRIVATE, MS_SHARED, MS_SLAVE, MS_UNBINDABLE};
    let (flag, recursive) = match propagation {
        P::Private { recursive } => (MS_PRIVATE, recursive),
        P::Shared { recursive } => (MS_SHARED, recursive),
        P::Slave { recursive } => (MS_SLAVE, recursive),
        P::Unbindable { recursive } => (MS_UNBINDABLE, recursive),
    };
    rawsys::mount::mount_set_propagation(mount, u64::from(flag), recursive)
}

/// The directory that holds `path` inside `root` (made if missing) and the last component's name.
fn parent_in_root(root: BorrowedFd<'_>, path: &Path) -> Result<(OwnedFd, std::ffi::OsString)> {
    let name = path
        .file_name()
        .ok_or(MountError { what: format!("{}: no file name", path.display()), errno: Errno::INVAL })?;
    let parent = open_in_root(root, path.parent().unwrap_or(Path::new("/")), Target::Dir)?;
    // O_PATH cannot make entries: reopen the directory itself.
    let parent =
        fs::openat(&parent, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .context(|| format!("open {}", path.parent().unwrap_or(Path::new("/")).display()))?;
    Ok((parent, name.to_os_string()))
}

/// Opens the plan's sources, in spawner before the container exists: host paths cloned once
/// (open_tree from an O_PATH fd), the host's default device nodes checked to be those devices, and
/// the front end's prepared trees taken over.
pub fn open_sources(
    plan: &super::mount_plan::Plan,
    prepared: &mut [Option<OwnedFd>],
) -> Result<Vec<OwnedFd>> {
    use super::mount_plan::Source;
    let clone = |fd: BorrowedFd<'_>, recursive: bool| {
        let mut flags =
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_EMPTY_PATH;
        if recursive {
            flags |= OpenTreeFlags::AT_RECURSIVE;
        }
        open_tree(fd, "", flags)
    };
    plan.sources
        .iter()
        .map(|source| match source {
            Source::HostPath { path, recursive } => {
                let fd = fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
                    .context(|| format!("bind mount source {}", path.display()))?;
                clone(fd.as_fd(), *recursive)
                    .context(|| format!("bind mount source {}: open_tree", path.display()))
            }
            Source::HostDevice { name, major, minor } => {
                let path = format!("/dev/{name}");
                let fd = fs::open(&path, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                    .context(|| format!("device {path}"))?;
                let st = fs::fstat(&fd).context(|| format!("device {path}: fstat"))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::CharacterDevice
                    || (fs::major(st.st_rdev), fs::minor(st.st_rdev)) != (*major, *minor)
                {
                    return Err(MountError {
                        what: format!("host {path} is not the char device {major}:{minor}"),
                        errno: Errno::NODEV,
                    });
                }
                // The bind keeps the host mount's flags: nosuid and noexec would mean nothing on a
                // device node.
                clone(fd.as_fd(), false).context(|| format!("device {path}: open_tree"))
            }
            Source::Prepared(i) => prepared.get_mut(*i).and_then(Option::take).ok_or(MountError {
                what: format!("prepared mount {i} missing or used twice"),
                errno: Errno::INVAL,
            }),
        })
        .collect()
}

/// /sys/fs/cgroup inside the container (OCI type `cgroup`): the container's own cgroup as the root
/// (the child has unshared its cgroup namespace already), nosuid, nodev, noexec, and read-only
/// unless `attrs` says otherwise. init reads memory.events / memory.oom_control there to report
/// OOM kills. On v1, a tmpfs with the memory hierarchy in it (the one spawner uses).
pub fn mount_cgroups(
    root: BorrowedFd<'_>,
    target: &Path,
    version: crate::cgroup::Version,
    attrs: MountAttrFlags,
) -> Result<()> {
    let attrs = attrs
        | MountAttrFlags::MOUNT_ATTR_NOSUID
        | MountAttrFlags::MOUNT_ATTR_NODEV
        | MountAttrFlags::MOUNT_ATTR_NOEXEC;
    let target_str = target.display().to_string();
    match version {
        crate::cgroup::Version::V2 => mount_in_root(root, &target_str, "cgroup2", &[], attrs),
        crate::cgroup::Version::V1 => {
            mount_in_root(
                root,
                &target_str,
                "tmpfs",
                &[("mode", "755")],
                attrs - MountAttrFlags::MOUNT_ATTR_RDONLY,
            )?;
            mount_in_root(root, &format!("{target_str}/memory"), "cgroup", &[("memory", "")], attrs)?;
            // The tmpfs read-only too once its mount point is made, as Docker's /sys/fs/cgroup is.
            if attrs.contains(MountAttrFlags::MOUNT_ATTR_RDONLY) {
                let tmpfs = open_in_root(root, target, Target::Dir)?;
                let rdonly = u64::from(MountAttrFlags::MOUNT_ATTR_RDONLY.bits());
                rawsys::mount::mount_setattr(tmpfs.as_fd(), rdonly, 0, false)
                    .context(|| format!("{target_str}: mount_setattr"))?;
            }
            Ok(())
        }
    }
}

/// pivot_root into `new_root` (a mount point) and detach the old root, so that no host path stays
/// reachable from the container.
pub fn pivot_into(new_root: &Path) -> Result<()> {
    rustix::process::chdir(new_root).context(|| format!("chdir {}", new_root.display()))?;
    rustix::process::pivot_root(".", ".").context(|| "pivot_root".into())?;
    rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH).context(|| "detach old root".into())?;
    rustix::process::chdir("/").context(|| "chdir /".into())
}

/// runc's `--no-pivot`: the new root moved onto `/` and chrooted into, for a root pivot_root
/// refuses (on a ramfs or initramfs). The old root's mounts stay below it, out of reach by
/// path; a process with CAP_SYS_CHROOT can climb out of a chroot, which is why runc and spawner
/// make it the caller's choice.
pub fn move_into(new_root: &Path) -> Result<()> {
    rustix::process::chdir(new_root).context(|| format!("chdir {}", new_root.display()))?;
    rustix::mount::mount_move(".", "/").context(|| format!("move {} onto /", new_root.display()))?;
    rustix::process::chroot(".").context(|| "chroot".into())?;
    rustix::process::chdir("/").context(|| "chdir /".into())
}

/// `PROC_SUPER_MAGIC` and `SYSFS_MAGIC` from linux/magic.h.
const PROC_SUPER_MAGIC: u64 = 0x9fa0;
const SYSFS_MAGIC: u64 = 0x6265_6572;

/// Hides `masked` (a file gets /dev/null bound over it, a directory an empty read-only tmpfs) and
/// makes `readonly` read-only, inside the container after pivot_root. Everything is done by fd, never
/// by path (runc's CVE-2025-31133): the /dev/null is `devnull`, the host's node that was attached
/// before any volume (checked to be 1:3 when it was opened), and each target is resolved inside the
/// root and must be on procfs or sysfs, so a volume holding `null -> /proc/sys/…` or covering /proc
/// cannot turn a mask into a writable host file. Paths the kernel does not have are skipped.
pub fn mask_paths(devnull: &OwnedFd, masked: &[PathBuf], readonly: &[PathBuf]) -> Result<()> {
    let root = fs::open("/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .context(|| "open /".into())?;
    let null_st = fs::fstat(devnull).context(|| "fstat /dev/null".into())?;
    if FileType::from_raw_mode(null_st.st_mode) != FileType::CharacterDevice
        || (fs::major(null_st.st_rdev), fs::minor(null_st.st_rdev)) != (1, 3)
    {
        return Err(MountError {
            what: "mask: /dev/null is not the char device 1:3".into(),
            errno: Errno::INVAL,
        });
    }
    for path in masked {
        let Some((target, kind)) = pseudo_fs_target(root.as_fd(), path)? else { continue };
        let mnt = if kind == FileType::Directory {
            new_fs("tmpfs", &[("size", "0")], MountAttrFlags::MOUNT_ATTR_RDONLY)?
        } else {
            open_tree(
                devnull,
                "",
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_EMPTY_PATH,
            )
            .context(|| format!("mask {}: open_tree /dev/null", path.display()))?
        };
        attach(&mnt, target.as_fd(), &format!("mask {}", path.display()))?;
    }
    for path in readonly {
        let Some((target, _)) = pseudo_fs_target(root.as_fd(), path)? else { continue };
        let tree = open_tree(
            &target,
            "",
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_EMPTY_PATH
                | OpenTreeFlags::AT_RECURSIVE,
        )
        .context(|| format!("bind {}", path.display()))?;
        let attrs = MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC;
        rawsys::mount::mount_setattr(tree.as_fd(), u64::from(attrs.bits()), 0, true)
            .context(|| format!("make {} read-only", path.display()))?;
        attach(&tree, target.as_fd(), &path.display().to_string())?;
    }
    Ok(())
}

/// `path` opened (O_PATH, not following a last symlink) inside `root`, checked to be on procfs or
/// sysfs, with its file type; None when it does not exist.
fn pseudo_fs_target(root: BorrowedFd<'_>, path: &Path) -> Result<Option<(OwnedFd, FileType)>> {
    let relative = path.strip_prefix("/").unwrap_or(path);
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let shown = path.display();
    let target = match fs::openat2(root, relative, flags, Mode::empty(), in_root_flags()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(MountError { what: format!("mask {shown}: open"), errno: e }),
    };
    let fs_type = fs::fstatfs(&target).context(|| format!("mask {shown}: fstatfs"))?.f_type as u64;
    let kind =
        FileType::from_raw_mode(fs::fstat(&target).context(|| format!("mask {shown}: fstat"))?.st_mode);
    if (fs_type != PROC_SUPER_MAGIC && fs_type != SYSFS_MAGIC) || kind == FileType::Symlink {
        return Err(MountError {
            what: format!("mask {shown}: not a procfs or sysfs entry (something is mounted over it)"),
            errno: Errno::XDEV,
        });
    }
    Ok(Some((target, kind)))
}
