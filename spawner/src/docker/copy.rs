//! `spawner cp SRC DEST`: files between the host and a container (`CONTAINER:PATH` on one
//! side), as `docker cp` copies them. The container's side is reached through `/proc/PID/root` of
//! its first process, and every path there is resolved inside that root (`openat2` with
//! `RESOLVE_IN_ROOT`): a symlink the container made (`/evil -> /etc`) leads to the container's
//! `/etc`, never the host's. Below the first directory, each entry is opened from its parent's fd
//! without following symlinks, and a symlink is copied as a symlink, so nothing the container
//! changes during the copy can lead it out. Files copied to the host lose their setuid and setgid
//! bits (the container chose them). A stopped container's root is its layers mounted again for the
//! copy (see [`stopped_root`]).

use super::record::{Container, Status};
use crate::container::RunError;
use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;

/// How deep a copied tree may go (a container could make one deeper than the stack allows).
const MAX_DEPTH: usize = 512;

/// One side of a copy, as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Host(String),
    Container { name: String, path: String },
}

impl Endpoint {
    /// `CONTAINER:PATH`, or a host path (one with a `:` is written `./a:b`, as Docker has it).
    pub fn parse(arg: &str) -> Endpoint {
        if !arg.starts_with(['/', '.']) {
            if let Some((name, path)) = arg.split_once(':') {
                if !name.is_empty() && !name.contains('/') {
                    return Endpoint::Container { name: name.into(), path: path.into() };
                }
            }
        }
        Endpoint::Host(arg.into())
    }
}

/// Where paths of one side are resolved: the host's (relative to the working directory), or a
/// container's root.
struct Side {
    root: Option<OwnedFd>,
    /// A stopped container's lock, held while the copy lasts.
    _lock: Option<OwnedFd>,
}

impl Side {
    fn open(&self, path: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        let flags = flags | OFlags::CLOEXEC;
        match &self.root {
            Some(root) => crate::in_root::openat2(
                root,
                path,
                flags,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ),
            None => rustix::fs::open(path, flags, Mode::empty()),
        }
    }

    fn dir(&self, path: &str) -> Result<OwnedFd, Errno> {
        self.open(path, OFlags::RDONLY | OFlags::DIRECTORY)
    }

    fn is_container(&self) -> bool {
        self.root.is_some()
    }
}

/// A path cut into the directory that holds it and its last name (None: the path is a directory
/// by itself, `/` or ending in `/.`, whose contents are what is copied).
struct Split {
    parent: String,
    name: Option<CString>,
    contents: bool,
}

fn split(path: &str, container: bool) -> Result<Split, RunError> {
    let contents = path == "." || path.ends_with("/.");
    let trimmed = path.trim_end_matches("/.").trim_end_matches('/');
    let default_parent = if container { "/" } else { "." };
    if trimmed.is_empty() || trimmed == "." {
        let parent = if path.starts_with('/') { "/" } else { default_parent };
        return Ok(Split { parent: parent.into(), name: None, contents: true });
    }
    let (parent, name) = match trimmed.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((parent, name)) => (parent, name),
        None => (default_parent, trimmed),
    };
    if name == ".." {
        return Ok(Split { parent: trimmed.into(), name: None, contents: true });
    }
    let name = CString::new(name).map_err(|_| RunError::msg(format!("{path:?}: a path has no NUL")))?;
    Ok(Split { parent: parent.into(), name: Some(name), contents })
}

/// What a copy did: its bytes, for Docker's closing line.
#[derive(Default)]
struct Copied {
    bytes: u64,
}

/// Copies `SRC` to `DEST`, one of them `CONTAINER:PATH`; the line Docker prints on stderr.
pub fn copy(containers: &std::path::Path, src: &str, dest: &str) -> Result<String, RunError> {
    let (src, dest) = (Endpoint::parse(src), Endpoint::parse(dest));
    let open_side = |e: &Endpoint| -> Result<(Side, String), RunError> {
        match e {
            Endpoint::Host(path) => Ok((Side { root: None, _lock: None }, path.clone())),
            Endpoint::Container { name, path } => {
                let c = Container::find(containers, name)?;
                let path = if path.starts_with('/') { path.clone() } else { format!("/{path}") };
                let (root, lock) = container_root(&c)?;
                if lock.is_some() {
                    check_not_on_volume(&c, &path)?;
                }
                Ok((Side { root: Some(root), _lock: lock }, path))
            }
        }
    };
    match (&src, &dest) {
        (Endpoint::Host(_), Endpoint::Host(_)) => {
            return Err(RunError::msg("cp: give CONTAINER:PATH as the source or the destination"))
        }
        (Endpoint::Container { .. }, Endpoint::Container { .. }) => {
            return Err(RunError::msg("cp: copying between containers is not supported"))
        }
        _ => {}
    }
    let (from, from_path) = open_side(&src)?;
    let (to, to_path) = open_side(&dest)?;
    let copied = copy_between(&from, &from_path, &to, &to_path)?;
    let shown = match &dest {
        Endpoint::Host(p) => p.clone(),
        Endpoint::Container { name, path } => format!("{name}:{path}"),
    };
    Ok(format!("Successfully copied {} to {shown}", super::template::human_size(copied.bytes)))
}

/// The root of the container `c`: a running one's as its first process sees it, a stopped one's
/// its overlay mounted again, with the lock that keeps it from starting while the copy lasts.
fn container_root(c: &Container) -> Result<(OwnedFd, Option<OwnedFd>), RunError> {
    match c.status() {
        Status::Running => running_root(c).map(|root| (root, None)),
        _ => stopped_root(c).map(|(root, lock)| (root, Some(lock))),
    }
}

/// The root of the running container `c`, as its first process sees it; checked to still be that
/// process's once opened (a pid reused since would be another's root).
fn running_root(c: &Container) -> Result<OwnedFd, RunError> {
    let not_running = || RunError::msg(format!("container {} stopped while cp looked at it", c.record.name));
    let path = format!("/proc/{}/root", c.state.pid);
    let root = rustix::fs::open(&path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|_| not_running())?;
    match c.running() {
        true => Ok(root),
        false => Err(not_running()),
    }
}

/// The root of the stopped container `c`: its image's layers and its writable layer, mounted as
/// its run mounts them, but detached (reached by fd only, in no mount namespace) or, on kernels
/// before 6.5, in a mount namespace of this process's own. Its volumes are not there: a path on
/// one is refused by [`check_not_on_volume`].
fn stopped_root(c: &Container) -> Result<(OwnedFd, OwnedFd), RunError> {
    let name = &c.record.name;
    // Locked as a run locks it: `start` waits for no copy, it fails while one holds the lock.
    let Some(lock) = super::lifecycle::lock_idle(c)? else {
        return Err(RunError::msg(format!("container {name} started while cp looked at it")));
    };
    if super::lifecycle::restarting(c) {
        return Err(RunError::msg(format!("container {name} is restarting: try again once it runs")));
    }
    let mut layers = c.layers()?;
    // containers/NAME is below the state directory, which holds the init layer.
    if let Some(state_dir) = c.dir.parent().and_then(|d| d.parent()) {
        layers.push(super::init_layer(state_dir)?);
    }
    let (upper, work) = (c.dir.join("upper"), c.dir.join("work"));
    let overlay = crate::container::rootfs::prepare_overlay(&layers, &upper, &work, false)
        .map_err(|e| RunError::msg(format!("container {name}: mount its layers: {e}")))?;
    let root = match overlay {
        crate::container::rootfs::Overlay::Detached(mnt) => mnt,
        options => {
            // Mounted over the container's own directory, in this process's namespace only.
            // SAFETY: unshare(CLONE_NEWNS) changes only this process's mount namespace (cp is one
            // thread); no memory or fd the program holds is affected.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
                .map_err(|e| RunError::msg(format!("unshare a mount namespace: {e}")))?;
            rustix::mount::mount_change(
                "/",
                rustix::mount::MountPropagationFlags::REC | rustix::mount::MountPropagationFlags::PRIVATE,
            )
            .map_err(|e| RunError::msg(format!("make / private: {e}")))?;
            crate::container::rootfs::attach_overlay(&options, &c.dir)
                .map_err(|e| RunError::msg(format!("container {name}: mount its layers: {e}")))?;
            rustix::fs::open(&c.dir, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| RunError::msg(format!("open {}: {e}", c.dir.display())))?
        }
    };
    Ok((root, lock))
}

/// Refuses a path of the stopped container `c` that is on one of its volumes or bind mounts:
/// what is there lives outside its layers, and is not mounted while it is stopped.
fn check_not_on_volume(c: &Container, path: &str) -> Result<(), RunError> {
    let path = std::path::Path::new(path);
    match c.record.mounts.iter().find(|m| path.starts_with(&m.destination)) {
        Some(m) => Err(RunError::msg(format!(
            "cp: {}: on a {} of the stopped container {} (mounted only while it runs): start it, or copy to {}",
            path.display(),
            if m.kind == "bind" { "bind mount" } else { "volume" },
            c.record.name,
            m.source.display()
        ))),
        None => Ok(()),
    }
}

fn errno(what: &str, path: &str, e: Errno) -> RunError {
    let why = match e {
        Errno::LOOP => "a symlink is in the way (not followed)".to_string(),
        e => e.to_string(),
    };
    RunError::msg(format!("cp: {what} {path}: {why}"))
}

fn copy_between(from: &Side, src: &str, to: &Side, dest: &str) -> Result<Copied, RunError> {
    let s = split(src, from.is_container())?;
    let src_parent = from.dir(&s.parent).map_err(|e| errno("open", src, e))?;
    let src_is_dir = match &s.name {
        None => true,
        Some(name) => {
            let stat = rustix::fs::statat(&src_parent, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| errno("stat", src, e))?;
            let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
            if src.ends_with('/') && !is_dir {
                return Err(RunError::msg(format!("cp: {src}: not a directory")));
            }
            is_dir
        }
    };
    let mut copied = Copied::default();
    // An existing directory takes the source inside it (its contents, for `SRC/.`).
    match to.dir(dest) {
        Ok(dir) => {
            match (&s.name, s.contents) {
                (Some(name), false) => copy_entry(&src_parent, name, &dir, name, to, 0, &mut copied)?,
                (Some(name), true) => {
                    let inner = open_dir_nofollow(&src_parent, name).map_err(|e| errno("open", src, e))?;
                    copy_children(&inner, &dir, to, 0, &mut copied)?
                }
                (None, _) => copy_children(&src_parent, &dir, to, 0, &mut copied)?,
            }
            return Ok(copied);
        }
        Err(Errno::NOTDIR) if src_is_dir => {
            return Err(RunError::msg(format!("cp: cannot copy a directory to a file ({dest})")))
        }
        Err(Errno::NOTDIR) | Err(Errno::NOENT) => {}
        Err(e) => return Err(errno("open", dest, e)),
    }
    // Otherwise it is made (or, for a file, replaced) under the name given.
    if dest.ends_with('/') {
        return Err(RunError::msg(format!("cp: destination directory {dest} does not exist")));
    }
    let d = split(dest, to.is_container())?;
    let Some(dest_name) = d.name else {
        return Err(RunError::msg(format!("cp: {dest}: give a file or directory name")));
    };
    let dest_parent = to.dir(&d.parent).map_err(|e| errno("open", &d.parent, e))?;
    match &s.name {
        Some(name) => copy_entry(&src_parent, name, &dest_parent, &dest_name, to, 0, &mut copied)?,
        None => {
            make_dir(&dest_parent, &dest_name, 0o755).map_err(|e| errno("mkdir", dest, e))?;
            let dir = open_dir_nofollow(&dest_parent, &dest_name).map_err(|e| errno("open", dest, e))?;
            copy_children(&src_parent, &dir, to, 0, &mut copied)?;
        }
    }
    Ok(copied)
}

fn open_dir_nofollow(parent: &OwnedFd, name: &CStr) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// mkdir, or the directory already there.
fn make_dir(parent: &OwnedFd, name: &CStr, mode: u32) -> Result<(), Errno> {
    match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(mode)) {
        Err(Errno::EXIST) => {
            let stat = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => Ok(()),
                _ => Err(Errno::EXIST),
            }
        }
        other => other,
    }
}

/// Removes what is at `name` so a file or symlink can be made there (never a directory).
fn clear(parent: &OwnedFd, name: &CStr) -> Result<(), Errno> {
    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

fn copy_children(
    src: &OwnedFd,
    dest: &OwnedFd,
    to: &Side,
    depth: usize,
    copied: &mut Copied,
) -> Result<(), RunError> {
    let mut names = Vec::new();
    let dir = rustix::fs::Dir::read_from(src).map_err(|e| errno("read", "directory", e))?;
    for entry in dir {
        let entry = entry.map_err(|e| errno("read", "directory", e))?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    for name in names {
        copy_entry(src, &name, dest, &name, to, depth + 1, copied)?;
    }
    Ok(())
}

/// Copies the entry `src_name` of the directory `src` to `dest_name` in `dest`, never following
/// a symlink on either side.
fn copy_entry(
    src: &OwnedFd,
    src_name: &CStr,
    dest: &OwnedFd,
    dest_name: &CStr,
    to: &Side,
    depth: usize,
    copied: &mut Copied,
) -> Result<(), RunError> {
    let shown = OsStr::from_bytes(src_name.to_bytes()).to_string_lossy().into_owned();
    if depth > MAX_DEPTH {
        return Err(RunError::msg(format!("cp: {shown}: more than {MAX_DEPTH} directories deep")));
    }
    let stat =
        rustix::fs::statat(src, src_name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| errno("stat", &shown, e))?;
    // The container chose the source's mode: no setuid or setgid file of its making on the host.
    let mode = match to.is_container() {
        true => stat.st_mode & 0o7777,
        false => stat.st_mode & 0o1777,
    };
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory => {
            make_dir(dest, dest_name, 0o700).map_err(|e| errno("mkdir", &shown, e))?;
            let into = open_dir_nofollow(dest, dest_name).map_err(|e| errno("open", &shown, e))?;
            let from = open_dir_nofollow(src, src_name).map_err(|e| errno("open", &shown, e))?;
            copy_children(&from, &into, to, depth, copied)?;
            rustix::fs::fchmod(&into, Mode::from_raw_mode(mode)).map_err(|e| errno("chmod", &shown, e))?;
        }
        FileType::RegularFile => {
            let from = rustix::fs::openat(
                src,
                src_name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| errno("open", &shown, e))?;
            clear(dest, dest_name).map_err(|e| errno("replace", &shown, e))?;
            let into = rustix::fs::openat(
                dest,
                dest_name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| errno("create", &shown, e))?;
            let (mut from, mut into) = (std::fs::File::from(from), std::fs::File::from(into));
            copied.bytes += std::io::copy(&mut from, &mut into)
                .map_err(|e| RunError::msg(format!("cp: copy {shown}: {e}")))?;
            rustix::fs::fchmod(&into, Mode::from_raw_mode(mode)).map_err(|e| errno("chmod", &shown, e))?;
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(src, src_name, Vec::new())
                .map_err(|e| errno("readlink", &shown, e))?;
            clear(dest, dest_name).map_err(|e| errno("replace", &shown, e))?;
            rustix::fs::symlinkat(target.as_c_str(), dest, dest_name)
                .map_err(|e| errno("symlink", &shown, e))?;
            copied.bytes += target.as_bytes().len() as u64;
        }
        _ => log::warn!("cp: {shown}: not a file, directory or symlink: skipped"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_as_docker_tells_them_apart() {
        let c = |n: &str, p: &str| Endpoint::Container { name: n.into(), path: p.into() };
        assert_eq!(Endpoint::parse("web:/etc/hosts"), c("web", "/etc/hosts"));
        assert_eq!(Endpoint::parse("web:etc"), c("web", "etc"));
        assert_eq!(Endpoint::parse("./a:b"), Endpoint::Host("./a:b".into()));
        assert_eq!(Endpoint::parse("/tmp/x"), Endpoint::Host("/tmp/x".into()));
        assert_eq!(Endpoint::parse("out"), Endpoint::Host("out".into()));
    }

    /// Copies within a directory standing in for a container's root: its symlinks resolve inside it.
    #[test]
    fn symlinks_in_the_root_stay_in_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "inside\n").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("evil")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc", root.join("up")).unwrap();
        let fd = rustix::fs::open(&root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let container = Side { root: Some(fd), _lock: None };
        let host = Side { root: None, _lock: None };
        let out = tmp.path().join("out");
        for src in ["/evil/passwd", "/up/passwd"] {
            let _ = std::fs::remove_file(&out);
            copy_between(&container, src, &host, out.to_str().unwrap()).unwrap();
            assert_eq!(std::fs::read_to_string(&out).unwrap(), "inside\n", "{src}");
        }
        // Into the container through its symlink: its /etc, not the host's.
        let file = tmp.path().join("file");
        std::fs::write(&file, "new\n").unwrap();
        copy_between(&host, file.to_str().unwrap(), &container, "/evil/spawner-cp-test").unwrap();
        assert_eq!(std::fs::read_to_string(root.join("etc/spawner-cp-test")).unwrap(), "new\n");
        assert!(!std::path::Path::new("/etc/spawner-cp-test").exists());
        // A directory, with a symlink in it copied as a symlink.
        copy_between(&container, "/etc", &host, tmp.path().join("copy").to_str().unwrap()).unwrap();
        assert_eq!(std::fs::read_to_string(tmp.path().join("copy/passwd")).unwrap(), "inside\n");
        copy_between(&container, "/", &host, tmp.path().join("whole").to_str().unwrap()).unwrap();
        assert_eq!(std::fs::read_link(tmp.path().join("whole/evil")).unwrap(), std::path::Path::new("/etc"));
    }
}
