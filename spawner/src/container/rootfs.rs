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

/// Attaches a detached mount (a volume's tree, a device node) at `path` inside `root`, creating the
/// target as `kind` where it is missing.
pub fn attach_in_root(root: BorrowedFd<'_>, tree: &OwnedFd, path: &Path, kind: Target) -> Result<()> {
    let target = open_in_root(root, path, kind)?;
    attach(tree, target.as_fd(), &path.display().to_string())
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

/// Binds each of `names` in `tmpfs` (from [`etc_files_fs`]) over /etc/NAME inside `root`.
pub fn bind_etc_files(root: BorrowedFd<'_>, tmpfs: &OwnedFd, names: &[&str]) -> Result<()> {
    let clone = |dir: BorrowedFd<'_>, name: &str| {
        open_tree(dir, name, OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC)
    };
    // Before Linux 6.15 a file cannot be cloned out of a detached mount (EINVAL): attach the tmpfs
    // inside the container's tree for as long as the binds take.
    let staged = match names.first().map(|name| clone(tmpfs.as_fd(), name)) {
        Some(Err(Errno::INVAL)) => Some(stage_in_root(root, tmpfs)?),
        _ => None,
    };
    let dir = staged.as_ref().map_or(tmpfs.as_fd(), |d| d.as_fd());
    let mut result = Ok(());
    for name in names {
        result = open_in_root(root, &Path::new("/etc").join(name), Target::File).and_then(|target| {
            let tree = clone(dir, name).context(|| format!("open_tree /etc/{name}"))?;
            attach(&tree, target.as_fd(), &format!("/etc/{name}"))
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

/// /dev as a `nodev` tmpfs (a node made in it at run time opens nowhere) with the host's own nodes
/// for `devices` bound into it, devpts, shm and mqueue (never the host's /dev).
pub fn populate_dev(root: BorrowedFd<'_>, devices: &[super::devices::DeviceMount]) -> Result<()> {
    let nosuid_noexec = MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC;
    let hidden = nosuid_noexec | MountAttrFlags::MOUNT_ATTR_NODEV;
    mount_in_root(root, "/dev", "tmpfs", &[("mode", "755"), ("size", "65536k")], hidden)?;
    let dev = open_in_root(root, Path::new("/dev"), Target::Dir)?;
    for device in devices {
        let target = &device.device.container;
        match target.strip_prefix("/dev").ok().and_then(|p| p.to_str()).filter(|n| !n.contains('/')) {
            // Directly in /dev, the fresh tmpfs of this container's own, where nothing of the image is
            // yet: the mount point is made and the node attached by name, with no walk.
            Some(name) if !name.is_empty() && name != ".." && name != "." => {
                let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
                drop(
                    fs::openat(&dev, name, flags, Mode::from_raw_mode(0o644))
                        .context(|| format!("create {}", target.display()))?,
                );
                move_mount(&device.tree, "", &dev, name, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
                    .context(|| format!("move_mount {}", target.display()))?;
            }
            _ => attach_in_root(root, &device.tree, target, Target::File)?,
        }
    }
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        fs::symlinkat(target, &dev, link).context(|| format!("symlink /dev/{link}"))?;
    }
    // devpts gives the container's own ptys: devpts cannot hold any other node (no mknod there).
    mount_in_root(
        root,
        "/dev/pts",
        "devpts",
        &[("newinstance", ""), ("ptmxmode", "0666"), ("mode", "0620"), ("gid", "5")],
        nosuid_noexec,
    )?;
    mount_in_root(root, "/dev/shm", "tmpfs", &[("mode", "1777"), ("size", "65536k")], hidden)?;
    mount_in_root(root, "/dev/mqueue", "mqueue", &[], hidden)
}

/// /sys/fs/cgroup inside the container: the container's own cgroup as the root (the child has
/// unshared its cgroup namespace already), read-only. init reads memory.events / memory.oom_control
/// there to report OOM kills.
pub fn mount_cgroups(root: BorrowedFd<'_>, version: crate::cgroup::Version) -> Result<()> {
    let attrs = MountAttrFlags::MOUNT_ATTR_NOSUID
        | MountAttrFlags::MOUNT_ATTR_NODEV
        | MountAttrFlags::MOUNT_ATTR_NOEXEC
        | MountAttrFlags::MOUNT_ATTR_RDONLY;
    match version {
        crate::cgroup::Version::V2 => mount_in_root(root, "/sys/fs/cgroup", "cgroup2", &[], attrs),
        crate::cgroup::Version::V1 => {
            mount_in_root(
                root,
                "/sys/fs/cgroup",
                "tmpfs",
                &[("mode", "755")],
                attrs - MountAttrFlags::MOUNT_ATTR_RDONLY,
            )?;
            mount_in_root(root, "/sys/fs/cgroup/memory", "cgroup", &[("memory", "")], attrs)
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

/// `PROC_SUPER_MAGIC` and `SYSFS_MAGIC` from linux/magic.h.
const PROC_SUPER_MAGIC: u64 = 0x9fa0;
const SYSFS_MAGIC: u64 = 0x6265_6572;

/// Hides `masked` (a file gets /dev/null bound over it, a directory an empty read-only tmpfs) and
/// makes `readonly` read-only, inside the container after pivot_root. Everything is done by fd, never
/// by path (runc's CVE-2025-31133): the /dev/null is `devnull`, the host's node that was attached
/// before any volume (checked to be 1:3 when it was opened), and each target is resolved inside the
/// root and must be on procfs or sysfs, so a volume holding `null -> /proc/sys/…` or covering /proc
/// cannot turn a mask into a writable host file. Paths the kernel does not have are skipped.
pub fn mask_paths(devnull: &OwnedFd, masked: &[String], readonly: &[&str]) -> Result<()> {
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
            .context(|| format!("mask {path}: open_tree /dev/null"))?
        };
        attach(&mnt, target.as_fd(), &format!("mask {path}"))?;
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
        .context(|| format!("bind {path}"))?;
        let attrs = MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC;
        rawsys::mount::mount_setattr(tree.as_fd(), u64::from(attrs.bits()), 0, true)
            .context(|| format!("make {path} read-only"))?;
        attach(&tree, target.as_fd(), path)?;
    }
    Ok(())
}

/// `path` opened (O_PATH, not following a last symlink) inside `root`, checked to be on procfs or
/// sysfs, with its file type; None when it does not exist.
fn pseudo_fs_target(root: BorrowedFd<'_>, path: &str) -> Result<Option<(OwnedFd, FileType)>> {
    let relative = path.trim_start_matches('/');
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let target = match fs::openat2(root, relative, flags, Mode::empty(), in_root_flags()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(MountError { what: format!("mask {path}: open"), errno: e }),
    };
    let fs_type = fs::fstatfs(&target).context(|| format!("mask {path}: fstatfs"))?.f_type as u64;
    let kind = FileType::from_raw_mode(fs::fstat(&target).context(|| format!("mask {path}: fstat"))?.st_mode);
    if (fs_type != PROC_SUPER_MAGIC && fs_type != SYSFS_MAGIC) || kind == FileType::Symlink {
        return Err(MountError {
            what: format!("mask {path}: not a procfs or sysfs entry (something is mounted over it)"),
            errno: Errno::XDEV,
        });
    }
    Ok(Some((target, kind)))
}
