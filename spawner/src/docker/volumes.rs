//! Docker's volumes: `-v HOST:CONTAINER` (a bind mount), `-v NAME:CONTAINER` (a named volume),
//! `-v CONTAINER` and the image's `VOLUME`s (anonymous volumes), `--mount type=bind|volume|tmpfs`,
//! and the volume store they live in: `STATE/volumes/NAME/_data`, with `volume.json` beside it.
//! A new (empty) volume is filled from the image's files at its path when first mounted, as Docker
//! does, through the container's own overlay before it runs, never following a link out of it.

use crate::container::RunError;
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a volume's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A host path (absolute, as given or made so).
    Host(PathBuf),
    /// A named volume in the store (made on first use).
    Named(String),
    /// A volume of its own for this container, named by a random ID.
    Anonymous,
}

/// A volume as the user gave it (the source is opened once, into a detached tree, before the
/// container is made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub source: Source,
    pub container: PathBuf,
    pub read_only: bool,
    /// `dev`: device nodes in the volume open (default: nodev, as the rest of the container).
    pub devices: bool,
    /// `suid`: setuid and setgid bits in the volume take effect (default: nosuid).
    pub setuid: bool,
    /// `noexec`: nothing in the volume can be executed.
    pub noexec: bool,
    /// `nocopy` / `volume-nocopy`: a new volume is not filled from the image.
    pub nocopy: bool,
}

impl Volume {
    fn new(source: Source, container: &str, spec: &str) -> Result<Volume, RunError> {
        let container = check_target(container, spec)?;
        Ok(Volume {
            source,
            container,
            read_only: false,
            devices: false,
            setuid: false,
            noexec: false,
            nocopy: false,
        })
    }
}

/// Docker's rule for volume names.
fn is_name(s: &str) -> bool {
    s.len() >= 2
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// The container path must be absolute, and not one of the file systems spawner mounts itself.
fn check_target(target: &str, spec: &str) -> Result<PathBuf, RunError> {
    if !target.starts_with('/') {
        return Err(RunError::msg(format!("invalid volume {spec:?}: the container path must be absolute")));
    }
    let path = Path::new(target);
    let clean: PathBuf = path.components().collect();
    if clean == Path::new("/") {
        return Err(RunError::msg(format!("invalid volume {spec:?}: a volume cannot be the container's /")));
    }
    for own in ["/proc", "/sys"] {
        if clean.starts_with(own) {
            return Err(RunError::msg(format!(
                "invalid volume {spec:?}: {own} is the kernel's, mounted by spawner; a volume cannot go there"
            )));
        }
    }
    if clean == Path::new("/dev") {
        return Err(RunError::msg(format!(
            "invalid volume {spec:?}: /dev is spawner's (use --device for a host device)"
        )));
    }
    Ok(clean)
}

/// Applies `-v`'s OPTIONS (comma-separated): `ro`/`rw` and, as podman takes them, `dev`/`nodev`,
/// `suid`/`nosuid`, `exec`/`noexec`, `nocopy`; SELinux's `z`/`Z` and macOS's `cached`,
/// `delegated`, `consistent` mean nothing here and are accepted.
fn apply_options(v: &mut Volume, options: &str, spec: &str) -> Result<(), RunError> {
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" | "readonly" => v.read_only = true,
            "rw" => v.read_only = false,
            "dev" => v.devices = true,
            "nodev" => v.devices = false,
            "suid" => v.setuid = true,
            "nosuid" => v.setuid = false,
            "exec" => v.noexec = false,
            "noexec" => v.noexec = true,
            "nocopy" => v.nocopy = true,
            "z" | "Z" | "cached" | "delegated" | "consistent" => {
                log::info!("volume {spec}: option {option} has no meaning here: ignored")
            }
            "rprivate" | "private" | "rslave" | "slave" | "rshared" | "shared" => {
                log::info!("volume {spec}: propagation {option}: volumes are private here")
            }
            other => {
                return Err(RunError::msg(format!(
                    "invalid volume {spec:?}: unknown option {other:?} (ro, rw, dev, nodev, suid, nosuid, exec, noexec, nocopy, z, Z)"
                )))
            }
        }
    }
    Ok(())
}

/// Parses `-v HOST:CONTAINER[:OPTIONS]`, `-v NAME:CONTAINER[:OPTIONS]` or `-v CONTAINER`. Only the
/// syntax is checked here.
pub fn parse(spec: &str) -> Result<Volume, RunError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, container, options) = match parts.as_slice() {
        [c] => (None, *c, ""),
        [s, c] => (Some(*s), *c, ""),
        [s, c, o] => (Some(*s), *c, *o),
        _ => {
            return Err(RunError::msg(format!(
                "invalid volume {spec:?}: expected [SOURCE:]CONTAINER[:OPTIONS]"
            )))
        }
    };
    let source = match source {
        None => Source::Anonymous,
        Some("") => return Err(RunError::msg(format!("invalid volume {spec:?}: the source is empty"))),
        Some(s) if s.starts_with('/') || s.starts_with('.') || s.starts_with('~') => Source::Host(
            std::path::absolute(s).map_err(|e| RunError::msg(format!("volume source {s}: {e}")))?,
        ),
        Some(s) if is_name(s) => Source::Named(s.to_string()),
        Some(s) => {
            return Err(RunError::msg(format!(
                "invalid volume {spec:?}: {s:?} is neither an absolute host path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)"
            )))
        }
    };
    let mut volume = Volume::new(source, container, spec)?;
    apply_options(&mut volume, options, spec)?;
    Ok(volume)
}

/// What `--mount` gives: a volume (bind or volume), or a tmpfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    Volume(Volume),
    Tmpfs(Tmpfs),
}

/// A tmpfs of the container's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpfs {
    pub target: PathBuf,
    pub size: Option<u64>,
    pub mode: Option<u32>,
    pub read_only: bool,
}

impl Tmpfs {
    /// As a spec mount: nosuid and nodev as Docker's, with its size and mode.
    pub fn mount(&self) -> crate::spec::Mount {
        use linux_raw_sys::general::{MS_NODEV, MS_NOSUID, MS_RDONLY};
        let mut flags = u64::from(MS_NOSUID | MS_NODEV);
        if self.read_only {
            flags |= u64::from(MS_RDONLY);
        }
        let mut data = Vec::new();
        if let Some(size) = self.size {
            data.push(format!("size={size}"));
        }
        if let Some(mode) = self.mode {
            data.push(format!("mode={mode:o}"));
        }
        super::flags::tmpfs_mount(self.target.clone(), flags, data.join(","))
    }
}

/// Parses `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,volume-nocopy]
/// [,tmpfs-size=…][,tmpfs-mode=…]`, as Docker spells it.
pub fn parse_mount(spec: &str) -> Result<MountSpec, RunError> {
    let bad = |why: &str| RunError::msg(format!("invalid --mount {spec:?}: {why}"));
    let (mut kind, mut source, mut target) = ("volume", None, None);
    let (mut read_only, mut nocopy, mut size, mut mode) = (false, false, None, None);
    for field in spec.split(',') {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        match key {
            "type" => kind = value,
            "source" | "src" => source = Some(value),
            "target" | "destination" | "dst" => target = Some(value),
            "readonly" | "ro" => read_only = matches!(value, "" | "true" | "1"),
            "volume-nocopy" => nocopy = matches!(value, "" | "true" | "1"),
            "tmpfs-size" => {
                size = Some(crate::cgroup::parse_size(value).map_err(|e| bad(&format!("tmpfs-size: {e}")))?)
            }
            "tmpfs-mode" => {
                mode = Some(u32::from_str_radix(value, 8).map_err(|_| bad("tmpfs-mode: give an octal mode"))?)
            }
            "bind-propagation" | "consistency" | "z" | "Z" => {
                log::info!("--mount {spec}: {key} has no meaning here: ignored")
            }
            other => return Err(bad(&format!("unknown field {other:?}"))),
        }
    }
    let target = target.ok_or_else(|| bad("no target"))?;
    match kind {
        "tmpfs" => {
            if source.is_some() {
                return Err(bad("a tmpfs has no source"));
            }
            let target = check_target(target, spec)?;
            Ok(MountSpec::Tmpfs(Tmpfs { target, size, mode, read_only }))
        }
        "bind" | "volume" => {
            let source = match (kind, source) {
                ("bind", None) => return Err(bad("a bind mount needs a source")),
                ("bind", Some(s)) if !s.starts_with('/') => {
                    return Err(bad("a bind mount's source must be an absolute path"))
                }
                ("bind", Some(s)) => Source::Host(PathBuf::from(s)),
                (_, None) | (_, Some("")) => Source::Anonymous,
                (_, Some(s)) if is_name(s) => Source::Named(s.to_string()),
                (_, Some(s)) => return Err(bad(&format!("{s:?} is not a volume name"))),
            };
            let mut volume = Volume::new(source, target, spec)?;
            volume.read_only = read_only;
            volume.nocopy = nocopy;
            Ok(MountSpec::Volume(volume))
        }
        other => Err(bad(&format!("unknown type {other:?} (bind, volume, tmpfs)"))),
    }
}

/// `volume.json`: what `volume inspect` says beyond the path.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Info {
    pub name: String,
    /// Nanoseconds since the epoch.
    pub created: u64,
    /// Made for one container (`-v /path`, an image's VOLUME): removed with it by `rm -v` and
    /// `--rm`, and by `volume prune`.
    pub anonymous: bool,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The volume store: `STATE/volumes`.
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn open(state_dir: &Path) -> Store {
        Store { root: state_dir.join("volumes") }
    }

    pub fn data(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// The volume `name`, made now if there is none (made whole, then renamed into place).
    /// Whether it is new.
    pub fn ensure(&self, name: &str, anonymous: bool) -> Result<bool, RunError> {
        if !is_name(name) {
            return Err(RunError::msg(format!(
                "invalid volume name {name:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]+"
            )));
        }
        let dir = self.root.join(name);
        if dir.join("_data").is_dir() {
            return Ok(false);
        }
        let io = |p: &Path, e: std::io::Error| RunError::msg(format!("create {}: {e}", p.display()));
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .recursive(true)
            .create(&self.root)
            .map_err(|e| io(&self.root, e))?;
        let tmp = self.root.join(format!(".{name}.{}.new", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let info = Info {
            name: name.into(),
            created: crate::clock::now_ns(),
            anonymous,
            labels: Default::default(),
        };
        let make = || -> std::io::Result<()> {
            std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o701).create(&tmp)?;
            std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o755)
                .create(tmp.join("_data"))?;
            std::fs::write(tmp.join("volume.json"), serde_json::to_vec(&info).unwrap_or_default())
        };
        make().map_err(|e| io(&tmp, e))?;
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            &tmp,
            rustix::fs::CWD,
            &dir,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => Ok(true),
            // Made by another run meanwhile.
            Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Ok(false)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(RunError::msg(format!("rename {} to {}: {e}", tmp.display(), dir.display())))
            }
        }
    }

    pub fn info(&self, name: &str) -> Result<Info, RunError> {
        let path = self.root.join(name).join("volume.json");
        if !is_name(name) || !self.data(name).is_dir() {
            return Err(RunError::msg(format!("no such volume: {name}")));
        }
        let text = std::fs::read(&path).map_err(|e| RunError::msg(format!("{}: {e}", path.display())))?;
        serde_json::from_slice(&text).map_err(|e| RunError::msg(format!("{}: {e}", path.display())))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Vec<Info> {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Vec::new() };
        let mut all: Vec<Info> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .filter_map(|n| self.info(&n).ok())
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Removes the volume `name` (renamed out of the list first).
    pub fn remove(&self, name: &str) -> Result<(), RunError> {
        self.info(name)?;
        let dir = self.root.join(name);
        let trash = self.root.join(format!(".{name}.rm"));
        std::fs::rename(&dir, &trash).map_err(|e| RunError::msg(format!("rename {}: {e}", dir.display())))?;
        std::fs::remove_dir_all(&trash).map_err(|e| RunError::msg(format!("remove {}: {e}", trash.display())))
    }
}

/// Fills the empty volume directory `dst` from the directory at `path` in the container's root
/// file system `root` (its overlay, not yet attached), as Docker does for a new volume: contents,
/// modes and owners; links are copied as links (never followed), device nodes, FIFOs and sockets
/// are left out. Nothing if the image has nothing at `path`.
pub fn copy_up(root: BorrowedFd<'_>, path: &Path, dst: &Path) -> Result<(), RunError> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let what = |e: rustix::io::Errno| {
        RunError::msg(format!("copy the image's {} into its volume: {e}", path.display()))
    };
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let resolve = rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS;
    let src = match crate::in_root::openat2(root, rel, flags, Mode::empty(), resolve) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => return Ok(()),
        Err(e) => return Err(what(e)),
    };
    let dst = rustix::fs::open(dst, flags | OFlags::NOFOLLOW, Mode::empty()).map_err(what)?;
    // The volume's root takes the image directory's owner and mode.
    let st = rustix::fs::fstat(&src).map_err(what)?;
    rustix::fs::fchown(&dst, Some(uid(st.st_uid)), Some(gid(st.st_gid))).map_err(what)?;
    rustix::fs::fchmod(&dst, Mode::from_raw_mode(st.st_mode & 0o7777)).map_err(what)?;
    let mut stack = vec![(src, dst)];
    while let Some((src, dst)) = stack.pop() {
        let dir = rustix::fs::Dir::read_from(&src).map_err(what)?;
        for entry in dir {
            let entry = entry.map_err(what)?;
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let st = rustix::fs::statat(&src, name, AtFlags::SYMLINK_NOFOLLOW).map_err(what)?;
            let (owner, group, mode) =
                (uid(st.st_uid), gid(st.st_gid), Mode::from_raw_mode(st.st_mode & 0o7777));
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {
                    rustix::fs::mkdirat(&dst, name, Mode::from_raw_mode(0o700)).map_err(what)?;
                    let s = rustix::fs::openat(&src, name, flags | OFlags::NOFOLLOW, Mode::empty())
                        .map_err(what)?;
                    let d = rustix::fs::openat(&dst, name, flags | OFlags::NOFOLLOW, Mode::empty())
                        .map_err(what)?;
                    rustix::fs::fchown(&d, Some(owner), Some(group)).map_err(what)?;
                    rustix::fs::fchmod(&d, mode).map_err(what)?;
                    stack.push((s, d));
                }
                FileType::RegularFile => {
                    let s = rustix::fs::openat(
                        &src,
                        name,
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(what)?;
                    let create =
                        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                    let d =
                        rustix::fs::openat(&dst, name, create, Mode::from_raw_mode(0o600)).map_err(what)?;
                    let (mut from, mut to) = (std::fs::File::from(s), std::fs::File::from(d));
                    std::io::copy(&mut from, &mut to).map_err(|e| {
                        RunError::msg(format!("copy the image's {} into its volume: {e}", path.display()))
                    })?;
                    rustix::fs::fchown(&to, Some(owner), Some(group)).map_err(what)?;
                    rustix::fs::fchmod(&to, mode).map_err(what)?;
                }
                FileType::Symlink => {
                    let target = rustix::fs::readlinkat(&src, name, Vec::new()).map_err(what)?;
                    rustix::fs::symlinkat(target.as_c_str(), &dst, name).map_err(what)?;
                    rustix::fs::chownat(&dst, name, Some(owner), Some(group), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(what)?;
                }
                other => log::info!("volume {}: {name:?} ({other:?}) not copied", path.display()),
            }
        }
    }
    Ok(())
}

fn uid(raw: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(raw)
}

fn gid(raw: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(raw)
}

/// Whether the directory `dir` is empty.
pub fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false)
}

/// The container's root to copy a volume's contents from: its overlay when it is a detached mount
/// (on older kernels there is none before the container mounts it: no copy then, said with -v).
pub fn overlay_root(overlay: &crate::container::rootfs::Overlay) -> Option<BorrowedFd<'_>> {
    match overlay {
        crate::container::rootfs::Overlay::Detached(fd) => Some(fd.as_fd()),
        crate::container::rootfs::Overlay::Options(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_forms() {
        let v = parse("/srv/data:/data:ro").unwrap();
        assert_eq!(
            (v.source, v.container.as_path(), v.read_only),
            (Source::Host("/srv/data".into()), Path::new("/data"), true)
        );
        let v = parse("pgdata:/var/lib/postgresql/data").unwrap();
        assert_eq!(v.source, Source::Named("pgdata".into()));
        assert_eq!(parse("/data").unwrap().source, Source::Anonymous);
        assert!(parse("/srv:/data:Z").is_ok(), "SELinux's Z is accepted");
        assert!(parse("/srv:/data:cached,ro").unwrap().read_only);
        for bad in [
            "/srv:/proc",
            "/srv:/proc/sys",
            "x1:/sys/fs",
            "/srv:/dev",
            "/srv:/",
            "a:b:c:d",
            "/srv:rel",
            "a b:/x",
            "/srv:/x:bogus",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let err = parse("/srv:/proc").unwrap_err().to_string();
        assert!(err.contains("/proc is the kernel's"), "{err}");
    }

    #[test]
    fn mount_forms() {
        assert_eq!(
            parse_mount("type=volume,source=v1,target=/data,readonly").unwrap(),
            MountSpec::Volume(Volume {
                source: Source::Named("v1".into()),
                container: "/data".into(),
                read_only: true,
                devices: false,
                setuid: false,
                noexec: false,
                nocopy: false
            })
        );
        assert!(matches!(
            parse_mount("type=bind,src=/srv,dst=/srv").unwrap(),
            MountSpec::Volume(Volume { source: Source::Host(_), .. })
        ));
        assert_eq!(
            parse_mount("type=tmpfs,destination=/run,tmpfs-size=64m,tmpfs-mode=1770").unwrap(),
            MountSpec::Tmpfs(Tmpfs {
                target: "/run".into(),
                size: Some(64 << 20),
                mode: Some(0o1770),
                read_only: false
            })
        );
        for bad in [
            "type=bind,target=/x",
            "type=bind,source=rel,target=/x",
            "type=nfs,target=/x",
            "source=v",
            "type=tmpfs,source=x,target=/t",
            "type=volume,target=/proc",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_store_makes_lists_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path());
        assert!(store.ensure("data", false).unwrap());
        assert!(!store.ensure("data", false).unwrap(), "made once");
        assert!(store.ensure("../x", false).is_err());
        assert_eq!(store.list().iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["data"]);
        store.remove("data").unwrap();
        assert!(store.list().is_empty());
        assert!(store.remove("data").unwrap_err().to_string().contains("no such volume"));
    }

    #[test]
    fn copy_up_copies_and_never_follows_links_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("data/sub")).unwrap();
        std::fs::write(root.join("data/sub/file"), "image data").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("data/link")).unwrap();
        // The volume path itself a link out of the root: resolved inside the root.
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        let dst = dir.path().join("vol");
        std::fs::create_dir(&dst).unwrap();
        let fd = rustix::fs::open(&root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        copy_up(fd.as_fd(), Path::new("/data"), &dst).unwrap();
        assert_eq!(std::fs::read_to_string(dst.join("sub/file")).unwrap(), "image data");
        assert_eq!(std::fs::read_link(dst.join("link")).unwrap(), Path::new("/etc/passwd"));
        let other = dir.path().join("vol2");
        std::fs::create_dir(&other).unwrap();
        copy_up(fd.as_fd(), Path::new("/escape"), &other).unwrap();
        assert!(is_empty(&other), "the host's /etc was not copied");
        copy_up(fd.as_fd(), Path::new("/missing"), &other).unwrap();
    }
}
