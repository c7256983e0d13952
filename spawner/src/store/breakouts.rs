//! containerd's tar breakout cases, one test each, against our unpacker.
//!
//! The cases are `TestBreakouts` in containerd's `pkg/archive/tar_test.go`, plus two nearby
//! (`TestRelativeSymlinks`, and `DirectoryCreation` of `TestApplyTar`). The entries are the
//! same; what is checked is containerd's validator's intent *inside the layer root*, since we
//! never apply a tar onto an existing tree: each layer is unpacked alone into an empty
//! directory, absolute and relative symlinks resolve in that root (`RESOLVE_IN_ROOT`), and
//! overlayfs stacks the layers. A case with an `apply` step (a tree the tar is applied onto)
//! runs twice: the applied tree as a lower layer of a two-layer image (what it means for us;
//! checked on the layers and, read-only, on their real overlayfs mount), and the same entries
//! followed by the tar's as a single layer.
//!
//! Every case also runs twice more: with containerd's names (`etc` is the layer's `etc`, so an
//! escape would hit the host's `/etc`), and aimed at a canary tree in the test's temp dir
//! (`etc` becomes `tmp/.tmpXXXX/outside/etc`, `/etc` its absolute path, relative targets get
//! ten more `../`), so an escape would write, link, chmod or delete a file we watch. After every
//! unpack, the canary tree, the host paths the cases name (`/etc/passwd`, `/etc/unbroken`,
//! `/localetc`, …) and the lower layer must be exactly as before (type, mode, owner, inode, link
//! count, size, times incl. ctime, content, xattrs); a refused layer must leave nothing in the
//! store.
//!
//! | containerd case | our outcome |
//! |---|---|
//! | SymlinkAbsolute | unpacked; `localetc -> /etc` kept verbatim, `localetc/unbroken` written to the layer's `etc/unbroken` |
//! | SymlinkUpAndOut | unpacked; `localetc -> /dummy/../etc` resolves in root: layer's `etc/unbroken` |
//! | SymlinkMultipleAbsolute | unpacked; `dummy/etc -> /etc`: layer's `etc/unbroken` |
//! | SymlinkMultipleRelative | unpacked; same, `localetc -> ./dummy/etc` kept |
//! | SymlinkEmptyFile | unpacked; the layer's `etc/emptied` replaced by an empty file |
//! | HardlinkRelative | unpacked; `breakouts/d1 -> ../../etc` clamps to the root: `breakouts/mypasswd` is the layer's `etc/passwd` inode |
//! | HardlinkDownAndOut | unpacked; same through `../downandout/../../etc` |
//! | HardlinkAbsolute | unpacked; `localpasswd` is the layer's `etc/passwd` inode |
//! | HardlinkRelativeLong | unpacked; `../../../../../../../etc` clamps: same inode |
//! | HardlinkRelativeUpAndOut | refused, `Entry` (`localpasswd: openat2 (hard link target)`, ENOENT): `localetc -> upandout/../../../etc` dangles, as it would in the container (`upandout` does not exist); containerd cleans it lexically and links |
//! | HardlinkDirectRelative | refused, `UnsafeEntry` (`localpasswd: path leaves the layer root`), as Docker refuses it; containerd clamps |
//! | HardlinkDirectAbsolute | unpacked; `localpasswd` is the layer's `etc/passwd` inode |
//! | SymlinkParentDirectory | refused, `UnsafeEntry` (`..: path leaves the layer root`); containerd skips the entry |
//! | SymlinkEmptyFilename | refused, `UnsafeEntry` (the empty name: `entry would replace the layer root`); containerd skips it |
//! | SymlinkParentRelative | unpacked; `localetc/sub/..` is `localetc`, a symlink to `/etc/`; `localetc/localpasswd` is the layer's `etc/localpasswd`, the `etc/passwd` inode |
//! | SymlinkSlashEnded | unpacked; `localetc` a directory, `localetc/localpasswd` the `etc/passwd` inode |
//! | SymlinkOverrideDirectory | over a lower layer: refused, `UnsafeEntry` (`/localetc/localpasswd: a parent directory is a symlink to nothing in the layer`; hard links cannot reach lower layers). One layer: the `localetc` directory is replaced by the symlink; `etc/localpasswd` is the `etc/passwd` inode |
//! | SymlinkOverrideDirectoryRelative | the same, with `localetc -> ../../etc` |
//! | DirectoryOverrideSymlink | over a lower layer: refused, `Entry` (`/localetc/localpasswd: openat2 (hard link target)`, ENOENT: no `etc/passwd` in this layer). One layer: the `localetc` symlink is replaced by a directory; `localetc/localpasswd` is the `etc/passwd` inode |
//! | DirectoryOverrideSymlinkAndHardlink | unpacked, both ways: `localetc/localpasswd` a new file ("different") in a real `localetc` directory; `etc/passwd` and its hard link `etc/localpasswd` keep "inside" |
//! | WhiteoutRootParent | refused, `UnsafeEntry` (`.wh...: whiteout of ., .. or an empty name`), lower layer untouched |
//! | WhiteoutParent | refused, `UnsafeEntry` (`etc/.wh...`), lower layer untouched |
//! | WhiteoutRoot | refused, `UnsafeEntry` (`.wh..`), lower layer untouched |
//! | WhiteoutCurrentDirectory | refused, `UnsafeEntry` (`etc/.wh..`), lower layer untouched |
//! | WhiteoutSymlink | over a lower layer: `localetc` becomes a 0:0 char device in the upper layer; merged, `localetc` is gone and `etc/passwd` intact. One layer: the whiteout replaces the `localetc` symlink itself, `etc/passwd` intact |
//! | WhiteoutSymlinkPath | over a lower layer: the upper layer gets a real directory `localetc` holding the whiteout `whitedout`; merged, `localetc` is that directory (not merged with the lower symlink, so overlayfs lists the whiteout's name `whitedout` there, which looks up as ENOENT) and `etc/whitedout` **stays** — containerd follows the lower layer's symlink and deletes it (its own TODO says that should change); we never follow another layer's symlinks, like Docker's overlay2 driver. One layer: `localetc` resolves to `etc`, so `etc/whitedout` becomes the whiteout |
//! | WhiteoutDirectoryName | unpacked; a plain directory `.wh.etc` with `somefile` ("non-empty"); no whiteout |
//! | WhiteoutDeadSymlinkParent | over a lower layer: upper gets a directory `localetc` with whiteout `etc`; merged, `etc/passwd` intact. One layer: refused, `UnsafeEntry` (`localetc/.wh.etc: a parent directory is a symlink to nothing in the layer`) |
//! | WhiteoutRelativePath | `dne/../.wh.etc` is cleaned lexically to `.wh.etc`: over a lower layer, `etc` becomes a whiteout and merged `etc/passwd` is gone; one layer: the layer's own `etc` tree is replaced by the whiteout |
//! | HardlinkSymlinkBeforeCreateTarget | unpacked; `localpasswd-dup` is a hard link to the symlink `localpasswd` (never followed), resolving in root to the `etc/passwd` written after it |
//! | HardlinkSymlinkRelative | unpacked; `localpasswd` a hard link to the symlink `passwdlink` (same target), resolving in root to `etc/passwd` |
//! | HardlinkSymlinkAbsolute | the same with `passwdlink -> /etc/passwd` |
//! | HardlinkSymlinkChmod | unpacked; the symlink named by a host path lands inside the layer, `sketchylink` is a hard link to it; the host's `perm400` keeps 0400 (hard links get no chmod, symlinks never one) |
//! | TestRelativeSymlinks (nearby) | unpacked; every escaping relative and absolute symlink kept verbatim, nothing created outside |
//! | TestApplyTar/DirectoryCreation (nearby) | unpacked; directories and their implicit parents created in the upper layer |

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::MountAttrFlags;
use rustix::mount::{fsconfig_create, fsconfig_set_string, fsmount, fsopen, FsMountFlags, FsOpenFlags};
use tempfile::TempDir;

use super::tests::{assert_nothing_left, xattr};
use super::*;
use crate::image::fixtures::*;
use crate::image::{Archive, Digest};

/// One tar entry, with placeholders: `{P}` is the prefix that puts `etc`, `dne`… where the run
/// aims (empty, or `tmp/.tmpXXXX/outside/`), `{UP}` extra `../` that reach the host's `/` from
/// any depth, `{OUT}` the canary tree's absolute path.
#[derive(Clone, Copy)]
enum E {
    Dir(&'static str, u32),
    File(&'static str, &'static [u8]),
    Symlink(&'static str, &'static str),
    Hardlink(&'static str, &'static str),
}
use E::{Dir, File, Hardlink, Symlink};

/// Where a run's names point.
#[derive(Clone, Copy, Debug)]
enum Aim {
    /// containerd's names: an escape would reach the host's `/etc`.
    Host,
    /// Names moved under the canary tree: an escape would reach it.
    Canary,
}

/// Host paths the cases name; none may appear, change or vanish.
const HOST_PATHS: &[&str] = &[
    "/etc/passwd",
    "/etc/unbroken",
    "/etc/emptied",
    "/etc/localpasswd",
    "/etc/whitedout",
    "/etc/somefile",
    "/etc/subdir",
    "/etc/subdir2",
    "/localetc",
    "/localpasswd",
    "/localpasswd-dup",
    "/passwdlink",
    "/sketchylink",
    "/breakouts",
    "/breakout",
    "/dummy",
    "/dne",
    "/upandout",
    "/downandout",
    "/other",
    "/.wh.etc",
    "/home/breakout",
];

/// A temp dir with a canary tree `outside/`, the image archive and the store, and what the
/// watched paths looked like before anything was unpacked.
struct World {
    case: &'static str,
    aim: Aim,
    dir: TempDir,
    outside: PathBuf,
    /// `{P}`: empty, or the canary tree's path without the leading `/`, with a trailing one.
    prefix: String,
    up: String,
    before: BTreeMap<PathBuf, String>,
    runs: Cell<usize>,
}

/// Runs `f` once aimed at the host's names and once at the canary tree.
fn each_aim(case: &'static str, f: impl Fn(&World)) {
    for aim in [Aim::Host, Aim::Canary] {
        f(&World::new(case, aim));
    }
}

impl World {
    fn new(case: &'static str, aim: Aim) -> World {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir_all(outside.join("etc")).unwrap();
        for (name, mode, data) in [
            ("etc/passwd", 0o644, &b"outside: canary"[..]),
            ("etc/whitedout", 0o644, b"outside: must stay"),
            ("etc/emptied", 0o644, b"outside: not empty"),
            ("perm400", 0o400, b"..."),
            ("also-exists-outside-root", 0o640, b"..."),
        ] {
            let path = outside.join(name);
            fs::write(&path, data).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        }
        let (prefix, up) = match aim {
            Aim::Host => (String::new(), String::new()),
            Aim::Canary => {
                let rel = outside.strip_prefix("/").unwrap().to_str().unwrap();
                (format!("{rel}/"), "../".repeat(10))
            }
        };
        let mut world =
            World { case, aim, dir, outside, prefix, up, before: BTreeMap::new(), runs: Cell::new(0) };
        world.before = world.observe();
        world
    }

    fn sub(&self, s: &str) -> String {
        s.replace("{P}", &self.prefix)
            .replace("{UP}", &self.up)
            .replace("{OUT}", self.outside.to_str().unwrap())
    }

    /// The in-layer path of a name with placeholders.
    fn p(&self, s: &str) -> String {
        self.sub(s)
    }

    fn layer(&self, entries: &[E]) -> Vec<u8> {
        let mut b = LayerBuilder::new();
        for entry in entries {
            match *entry {
                Dir(path, mode) => b.dir(&self.sub(path), mode),
                File(path, data) => b.file(&self.sub(path), data),
                Symlink(path, target) | Hardlink(path, target) => {
                    let target = self.sub(target);
                    assert!(target.len() < 100, "{target}: too long for the fixture's link field");
                    if matches!(entry, Symlink(..)) {
                        b.symlink(&self.sub(path), &target)
                    } else {
                        b.hardlink(&self.sub(path), &target)
                    }
                }
            };
        }
        b.finish()
    }

    /// The canary tree and the host paths, one line per entry.
    fn observe(&self) -> BTreeMap<PathBuf, String> {
        let mut seen = BTreeMap::new();
        snapshot(&self.outside, &mut seen);
        for path in HOST_PATHS {
            seen.insert(PathBuf::from(path), describe(Path::new(path)));
        }
        seen
    }

    /// Unpacks `upper` as one layer, over `lower` as another when that is not empty, and checks
    /// that nothing outside the upper layer changed.
    fn run(&self, lower: &[E], upper: &[E]) -> Run {
        let shape = if lower.is_empty() { "one layer" } else { "over a lower layer" };
        let label = format!("{} [{:?} names, {shape}]", self.case, self.aim);
        let upper_tar = self.layer(upper);
        let lower_tar = (!lower.is_empty()).then(|| self.layer(lower));
        let layout = match &lower_tar {
            Some(lower) => docker_archive(&[(&["lower:1"], &[lower]), (&["test:1"], &[lower, &upper_tar])]),
            None => docker_archive(&[(&["test:1"], &[&upper_tar])]),
        };
        // A fresh archive and store for each run.
        let n = self.runs.get();
        self.runs.set(n + 1);
        let path = self.dir.path().join(format!("image{n}.tar"));
        layout.write_tar(&path);
        let archive = Archive::open(&path).unwrap();
        let store = LayerStore::open(self.dir.path().join(format!("store{n}"))).unwrap();
        let mut lower_dir = None;
        let mut lower_before = BTreeMap::new();
        if lower_tar.is_some() {
            let image = archive.select(Some("lower:1")).unwrap();
            let dirs = store.ensure_image(&archive, &image).unwrap_or_else(|e| panic!("{label}: lower: {e}"));
            snapshot(&dirs[0], &mut lower_before);
            lower_dir = Some(dirs[0].clone());
        }
        let image = archive.select(Some("test:1")).unwrap();
        let result = store.ensure_image(&archive, &image);

        assert_eq!(diff(&self.before, &self.observe()), "", "{label}: changed outside the layer");
        if let Some(dir) = &lower_dir {
            let mut after = BTreeMap::new();
            snapshot(dir, &mut after);
            assert_eq!(diff(&lower_before, &after), "", "{label}: changed the lower layer");
        }
        Run { label, store, lower_dir, upper: Digest::sha256_of(&upper_tar), result }
    }
}

/// One unpack and its outcome.
struct Run {
    label: String,
    store: LayerStore,
    lower_dir: Option<PathBuf>,
    upper: Digest,
    result: Result<Vec<PathBuf>, StoreError>,
}

impl Run {
    /// The unpacked upper layer's root.
    fn ok(&self) -> &Path {
        match &self.result {
            Ok(dirs) => {
                assert_eq!(dirs.last().unwrap(), &self.store.layer_dir(&self.upper));
                dirs.last().unwrap()
            }
            Err(e) => panic!("{}: refused: {e}", self.label),
        }
    }

    /// The refusal; the store holds nothing of the refused layer.
    fn refused(&self) -> &StoreError {
        let err = match &self.result {
            Ok(_) => panic!("{}: unpacked, expected a refusal", self.label),
            Err(e) => e,
        };
        if self.lower_dir.is_some() {
            assert!(!self.store.has_layer(&self.upper), "{}: refused layer kept", self.label);
            assert_eq!(self.store.list_layers().unwrap().len(), 1, "{}: only the lower layer", self.label);
            assert!(fs::read_dir(self.store.root().join("tmp")).unwrap().next().is_none(), "{}", self.label);
        } else {
            assert_nothing_left(&self.store);
        }
        assert!(!err.to_string().contains('\n'));
        err
    }

    /// Refused as an `UnsafeEntry` for `entry`, saying `reason`.
    fn refused_unsafe(&self, entry: &str, reason: &str) {
        let err = self.refused();
        match err {
            StoreError::UnsafeEntry { entry: e, reason: r, .. } if e == entry && *r == reason => {}
            _ => panic!("{}: expected UnsafeEntry {entry:?}: {reason:?}, got {err:?}", self.label),
        }
        assert!(err.to_string().ends_with(&format!(": {entry}: {reason}")), "{}: {err}", self.label);
    }

    /// Refused as an `Entry` error for `entry`: `op` failed with ENOENT.
    fn refused_enoent(&self, entry: &str, op: &str) {
        let err = self.refused();
        match err {
            StoreError::Entry { entry: e, op: o, source, .. }
                if e == entry && *o == op && source.kind() == io::ErrorKind::NotFound => {}
            _ => panic!("{}: expected Entry {entry:?} {op}: ENOENT, got {err:?}", self.label),
        }
        assert!(err.to_string().contains(&format!(": {entry}: {op}: ")), "{}: {err}", self.label);
    }

    /// The lower and upper layers, bottom to top.
    fn layers(&self) -> Vec<PathBuf> {
        self.result.as_ref().unwrap().clone()
    }
}

/// `path`'s type, mode, owner, inode, link count, size, device, times (ctime catches chmod,
/// chown, link and xattr changes), content or target, and xattrs; or `absent`.
fn describe(path: &Path) -> String {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return "absent".into(),
        Err(e) => return format!("error {e}"),
    };
    let mut text = format!(
        "mode={:o} owner={}:{} ino={} nlink={} size={} rdev={} mtime={}.{} ctime={}.{}",
        meta.mode(),
        meta.uid(),
        meta.gid(),
        meta.ino(),
        meta.nlink(),
        meta.size(),
        meta.rdev(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    );
    if meta.file_type().is_symlink() {
        text += &format!(" -> {:?}", fs::read_link(path).unwrap());
    } else if meta.is_file() && meta.size() < 4096 {
        text += &format!(" data={:?}", String::from_utf8_lossy(&fs::read(path).unwrap()));
    }
    let mut names = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(path, &mut names[..]).unwrap_or(0);
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        text += &format!(" xattr {name}={:?}", xattr(path, &name));
    }
    text
}

/// Every entry under `root` (not following symlinks), described.
fn snapshot(root: &Path, out: &mut BTreeMap<PathBuf, String>) {
    out.insert(root.to_path_buf(), describe(root));
    if fs::symlink_metadata(root).is_ok_and(|m| m.is_dir()) {
        for entry in fs::read_dir(root).unwrap() {
            snapshot(&entry.unwrap().path(), out);
        }
    }
}

/// The entries that differ, one line each; empty when none.
fn diff(before: &BTreeMap<PathBuf, String>, after: &BTreeMap<PathBuf, String>) -> String {
    let mut text = String::new();
    for path in before.keys().chain(after.keys().filter(|k| !before.contains_key(*k))) {
        let (was, is) = (before.get(path), after.get(path));
        if was != is {
            text += &format!("\n{}: {was:?} -> {is:?}", path.display());
        }
    }
    text
}

/// (dev, inode) of `path` resolved inside `root` as the container would, following symlinks.
fn in_root(root: &Path, path: &str) -> Option<(u64, u64)> {
    let dir =
        rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap();
    let fd =
        rustix::fs::openat2(&dir, path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), ResolveFlags::IN_ROOT)
            .ok()?;
    let stat = rustix::fs::fstat(&fd).unwrap();
    Some((stat.st_dev, stat.st_ino))
}

/// containerd's `sameFile`, inside the layer: both resolve (in root) to one inode.
fn assert_same_file(run: &Run, root: &Path, a: &str, b: &str) {
    let (x, y) = (in_root(root, a), in_root(root, b));
    assert!(x.is_some() && x == y, "{}: {a} and {b} are not the same file: {x:?} {y:?}", run.label);
}

fn ino(path: &Path) -> u64 {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).ino()
}

fn assert_data(run: &Run, path: &Path, data: &[u8]) {
    let got = fs::read(path).unwrap_or_else(|e| panic!("{}: {}: {e}", run.label, path.display()));
    assert_eq!(got, data, "{}: {}", run.label, path.display());
}

fn assert_symlink(run: &Run, path: &Path, target: &str) {
    let got = fs::read_link(path).unwrap_or_else(|e| panic!("{}: {}: {e}", run.label, path.display()));
    assert_eq!(got, Path::new(target), "{}: {}", run.label, path.display());
}

fn assert_dir(run: &Run, path: &Path) {
    let meta =
        fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {}: {e}", run.label, path.display()));
    assert!(meta.is_dir(), "{}: {} is not a directory", run.label, path.display());
}

fn assert_absent(run: &Run, path: &Path) {
    assert!(fs::symlink_metadata(path).is_err(), "{}: {} exists", run.label, path.display());
}

/// An overlayfs whiteout: a 0:0 char device.
fn assert_whiteout(run: &Run, path: &Path) {
    let meta =
        fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {}: {e}", run.label, path.display()));
    assert!(
        meta.file_type().is_char_device() && meta.rdev() == 0,
        "{}: {} not a whiteout",
        run.label,
        path.display()
    );
}

/// Runs `f` on the read-only overlayfs of `layers` (bottom to top), as a container would see
/// them. The mount is detached (attached nowhere; gone when its fd closes) and reached through
/// `/proc/self/fd`.
fn with_merged<T>(layers: &[PathBuf], f: impl FnOnce(&Path) -> T) -> T {
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).unwrap();
    for layer in layers.iter().rev() {
        fsconfig_set_string(&fs, "lowerdir+", layer).unwrap();
    }
    fsconfig_create(&fs).unwrap();
    let mnt = fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY | MountAttrFlags::MOUNT_ATTR_NODEV,
    )
    .unwrap();
    f(Path::new(&format!("/proc/self/fd/{}", mnt.as_raw_fd())))
}

const UNBROKEN: &[u8] = b"unbroken";

/// containerd's `unbrokenCheck`: the layer's own `etc/unbroken`.
fn assert_unbroken(w: &World, run: &Run) {
    let root = run.ok();
    assert_data(run, &root.join(w.p("{P}etc/unbroken")), UNBROKEN);
    assert_absent(run, &root.join("localetc/unbroken"));
}

#[test]
fn symlink_absolute() {
    each_aim("SymlinkAbsolute", |w| {
        let run = w.run(
            &[],
            &[Dir("{P}etc", 0o755), Symlink("localetc", "/{P}etc"), File("/localetc/unbroken", UNBROKEN)],
        );
        assert_unbroken(w, &run);
        assert_symlink(&run, &run.ok().join("localetc"), &w.p("/{P}etc"));
    });
}

#[test]
fn symlink_up_and_out() {
    each_aim("SymlinkUpAndOut", |w| {
        let run = w.run(
            &[],
            &[
                Dir("{P}etc", 0o755),
                Dir("dummy", 0o755),
                Symlink("localetc", "/dummy/../{P}etc"),
                File("/localetc/unbroken", UNBROKEN),
            ],
        );
        assert_unbroken(w, &run);
        assert_symlink(&run, &run.ok().join("localetc"), &w.p("/dummy/../{P}etc"));
    });
}

#[test]
fn symlink_multiple_absolute() {
    each_aim("SymlinkMultipleAbsolute", |w| {
        let run = w.run(
            &[],
            &[
                Dir("{P}etc", 0o755),
                Dir("dummy", 0o755),
                Symlink("/dummy/etc", "/{P}etc"),
                Symlink("localetc", "/dummy/etc"),
                File("/dummy/etc/unbroken", UNBROKEN),
            ],
        );
        assert_unbroken(w, &run);
        assert_symlink(&run, &run.ok().join("dummy/etc"), &w.p("/{P}etc"));
    });
}

#[test]
fn symlink_multiple_relative() {
    each_aim("SymlinkMultipleRelative", |w| {
        let run = w.run(
            &[],
            &[
                Dir("{P}etc", 0o755),
                Dir("dummy", 0o755),
                Symlink("/dummy/etc", "/{P}etc"),
                Symlink("localetc", "./dummy/etc"),
                File("/dummy/etc/unbroken", UNBROKEN),
            ],
        );
        assert_unbroken(w, &run);
        assert_symlink(&run, &run.ok().join("localetc"), "./dummy/etc");
    });
}

#[test]
fn symlink_empty_file() {
    each_aim("SymlinkEmptyFile", |w| {
        let run = w.run(
            &[],
            &[
                Dir("{P}etc", 0o755),
                File("{P}etc/emptied", b"notempty"),
                Symlink("localetc", "/{P}etc"),
                File("/localetc/emptied", b""),
            ],
        );
        assert_data(&run, &run.ok().join(w.p("{P}etc/emptied")), b"");
    });
}

/// `etc/passwd` ("inside") followed by `more`, for the hard link cases.
fn with_passwd(more: &[E]) -> Vec<E> {
    [&[Dir("{P}etc", 0o770), File("/{P}etc/passwd", b"inside")][..], more].concat()
}

/// The hard link cases' check: `link` is the layer's `etc/passwd` inode, which is intact.
fn assert_linked_to_passwd(w: &World, run: &Run, link: &str) {
    let root = run.ok();
    let passwd = w.p("{P}etc/passwd");
    assert_eq!(ino(&root.join(link)), ino(&root.join(&passwd)), "{}: {link}", run.label);
    assert_data(run, &root.join(&passwd), b"inside");
}

#[test]
fn hardlink_relative() {
    each_aim("HardlinkRelative", |w| {
        let run = w.run(
            &[],
            &with_passwd(&[
                Dir("breakouts", 0o755),
                Symlink("breakouts/d1", "{UP}../../{P}etc"),
                Hardlink("breakouts/mypasswd", "/breakouts/d1/passwd"),
            ]),
        );
        assert_linked_to_passwd(w, &run, "breakouts/mypasswd");
    });
}

#[test]
fn hardlink_down_and_out() {
    each_aim("HardlinkDownAndOut", |w| {
        let run = w.run(
            &[],
            &with_passwd(&[
                Dir("breakouts", 0o755),
                Dir("downandout", 0o755),
                Symlink("breakouts/d1", "{UP}../downandout/../../{P}etc"),
                Hardlink("breakouts/mypasswd", "/breakouts/d1/passwd"),
            ]),
        );
        assert_linked_to_passwd(w, &run, "breakouts/mypasswd");
    });
}

#[test]
fn hardlink_absolute() {
    each_aim("HardlinkAbsolute", |w| {
        let run = w.run(
            &[],
            &with_passwd(&[Symlink("localetc", "/{P}etc"), Hardlink("localpasswd", "/localetc/passwd")]),
        );
        assert_linked_to_passwd(w, &run, "localpasswd");
    });
}

#[test]
fn hardlink_relative_long() {
    each_aim("HardlinkRelativeLong", |w| {
        let run = w.run(
            &[],
            &with_passwd(&[
                Symlink("localetc", "{UP}../../../../../../../{P}etc"),
                Hardlink("localpasswd", "/localetc/passwd"),
            ]),
        );
        assert_linked_to_passwd(w, &run, "localpasswd");
    });
}

#[test]
fn hardlink_relative_up_and_out() {
    each_aim("HardlinkRelativeUpAndOut", |w| {
        let run = w.run(
            &[],
            &with_passwd(&[
                Symlink("localetc", "upandout/../../../{UP}{P}etc"),
                Hardlink("localpasswd", "/localetc/passwd"),
            ]),
        );
        // `upandout` does not exist, so neither does anything through `localetc`: not here, and
        // not in the container.
        run.refused_enoent("localpasswd", "openat2 (hard link target)");
    });
}

#[test]
fn hardlink_direct_relative() {
    each_aim("HardlinkDirectRelative", |w| {
        let run = w.run(&[], &with_passwd(&[Hardlink("localpasswd", "../../../../../{P}etc/passwd")]));
        run.refused_unsafe("localpasswd", "path leaves the layer root");
    });
}

#[test]
fn hardlink_direct_absolute() {
    each_aim("HardlinkDirectAbsolute", |w| {
        let run = w.run(&[], &with_passwd(&[Hardlink("localpasswd", "/{P}etc/passwd")]));
        assert_linked_to_passwd(w, &run, "localpasswd");
    });
}

#[test]
fn symlink_parent_directory() {
    each_aim("SymlinkParentDirectory", |w| {
        let run =
            w.run(&[], &with_passwd(&[Symlink("..", "/{P}etc/"), Hardlink("localpasswd", "/{P}etc/passwd")]));
        run.refused_unsafe("..", "path leaves the layer root");
    });
}

#[test]
fn symlink_empty_filename() {
    each_aim("SymlinkEmptyFilename", |w| {
        let run =
            w.run(&[], &with_passwd(&[Symlink("", "/{P}etc/"), Hardlink("localpasswd", "/{P}etc/passwd")]));
        run.refused_unsafe("", "entry would replace the layer root");
    });
}

#[test]
fn symlink_parent_relative() {
    each_aim("SymlinkParentRelative", |w| {
        let run = w.run(
            &[],
            &with_passwd(&[
                Symlink("localetc/sub/..", "/{P}etc/"),
                Hardlink("/localetc/localpasswd", "/{P}etc/passwd"),
            ]),
        );
        let root = run.ok();
        assert_symlink(&run, &root.join("localetc"), &w.p("/{P}etc/"));
        assert_same_file(&run, root, "/localetc/localpasswd", &w.p("/{P}etc/passwd"));
        assert_linked_to_passwd(w, &run, &w.p("{P}etc/localpasswd"));
    });
}

#[test]
fn symlink_slash_ended() {
    each_aim("SymlinkSlashEnded", |w| {
        let run = w.run(
            &[],
            &with_passwd(&[Dir("localetc/", 0o770), Hardlink("/localetc/localpasswd", "/{P}etc/passwd")]),
        );
        assert_dir(&run, &run.ok().join("localetc"));
        assert_linked_to_passwd(w, &run, "localetc/localpasswd");
    });
}

/// `apply` of the override cases: `etc/passwd` and a directory `localetc`.
const PASSWD_AND_LOCALETC_DIR: &[E] =
    &[Dir("{P}etc", 0o755), File("/{P}etc/passwd", b"inside"), Dir("/localetc/", 0o755)];

/// SymlinkOverrideDirectory and its relative twin: `localetc -> target` over a directory.
fn symlink_over_directory(case: &'static str, target: &'static str) {
    each_aim(case, |w| {
        let tar = [Symlink("localetc", target), Hardlink("/localetc/localpasswd", "/{P}etc/passwd")];
        // The link's parent is a symlink to `etc`, which only the lower layer has; hard links
        // cannot reach into another layer.
        let run = w.run(PASSWD_AND_LOCALETC_DIR, &tar);
        run.refused_unsafe(
            "/localetc/localpasswd",
            "a parent directory is a symlink to nothing in the layer",
        );

        let run = w.run(&[], &[PASSWD_AND_LOCALETC_DIR, &tar].concat());
        let root = run.ok();
        assert_symlink(&run, &root.join("localetc"), &w.sub(target));
        assert_same_file(&run, root, "/localetc/localpasswd", &w.p("/{P}etc/passwd"));
        assert_linked_to_passwd(w, &run, &w.p("{P}etc/localpasswd"));
    });
}

#[test]
fn symlink_override_directory() {
    symlink_over_directory("SymlinkOverrideDirectory", "/{P}etc");
}

#[test]
fn symlink_override_directory_relative() {
    symlink_over_directory("SymlinkOverrideDirectoryRelative", "{UP}../../{P}etc");
}

#[test]
fn directory_override_symlink() {
    each_aim("DirectoryOverrideSymlink", |w| {
        let apply = [Dir("{P}etc", 0o755), File("/{P}etc/passwd", b"inside"), Symlink("localetc", "/{P}etc")];
        let tar = [Dir("/localetc/", 0o755), Hardlink("/localetc/localpasswd", "/{P}etc/passwd")];
        // The target is in the lower layer only.
        let run = w.run(&apply, &tar);
        run.refused_enoent("/localetc/localpasswd", "openat2 (hard link target)");

        let run = w.run(&[], &[&apply[..], &tar].concat());
        let root = run.ok();
        assert_dir(&run, &root.join("localetc"));
        assert_linked_to_passwd(w, &run, "localetc/localpasswd");
        assert_absent(&run, &root.join(w.p("{P}etc/localpasswd")));
    });
}

#[test]
fn directory_override_symlink_and_hardlink() {
    each_aim("DirectoryOverrideSymlinkAndHardlink", |w| {
        let apply = [
            Dir("{P}etc", 0o755),
            File("/{P}etc/passwd", b"inside"),
            Symlink("localetc", "{P}etc"),
            Hardlink("/localetc/localpasswd", "/{P}etc/passwd"),
        ];
        let tar = [Dir("/localetc/", 0o755), File("/localetc/localpasswd", b"different")];
        let passwd = w.p("{P}etc/passwd");

        let run = w.run(&apply, &tar);
        let root = run.ok();
        assert_dir(&run, &root.join("localetc"));
        assert_data(&run, &root.join("localetc/localpasswd"), b"different");
        let lower = run.lower_dir.as_ref().unwrap();
        assert_data(&run, &lower.join(&passwd), b"inside");
        assert_eq!(ino(&lower.join(&passwd)), ino(&lower.join(w.p("{P}etc/localpasswd"))));
        with_merged(&run.layers(), |merged| {
            assert_data(&run, &merged.join("localetc/localpasswd"), b"different");
            assert_data(&run, &merged.join(&passwd), b"inside");
            assert_data(&run, &merged.join(w.p("{P}etc/localpasswd")), b"inside");
        });

        let run = w.run(&[], &[&apply[..], &tar].concat());
        let root = run.ok();
        assert_dir(&run, &root.join("localetc"));
        assert_data(&run, &root.join("localetc/localpasswd"), b"different");
        assert_ne!(ino(&root.join("localetc/localpasswd")), ino(&root.join(&passwd)));
        assert_linked_to_passwd(w, &run, &w.p("{P}etc/localpasswd"));
    });
}

/// `apply` of the first whiteout cases.
const PASSWD_INSIDE: &[E] = &[Dir("{P}etc", 0o755), File("/{P}etc/passwd", b"inside")];

/// A whiteout of `.`, `..` or nothing, refused over a lower layer and in one layer.
fn whiteout_refused(case: &'static str, name: &'static str) {
    each_aim(case, |w| {
        let tar = [File(name, b"")];
        w.run(PASSWD_INSIDE, &tar).refused_unsafe(&w.p(name), "whiteout of ., .. or an empty name");
        w.run(&[], &[PASSWD_INSIDE, &tar].concat())
            .refused_unsafe(&w.p(name), "whiteout of ., .. or an empty name");
    });
}

#[test]
fn whiteout_root_parent() {
    whiteout_refused("WhiteoutRootParent", ".wh...");
}

#[test]
fn whiteout_parent() {
    whiteout_refused("WhiteoutParent", "{P}etc/.wh...");
}

#[test]
fn whiteout_root() {
    whiteout_refused("WhiteoutRoot", ".wh..");
}

#[test]
fn whiteout_current_directory() {
    whiteout_refused("WhiteoutCurrentDirectory", "{P}etc/.wh..");
}

/// `apply` of the later whiteout cases: `etc/passwd`, `etc/whitedout` and `localetc -> target`.
fn all_users(target: &'static str) -> [E; 4] {
    [
        Dir("{P}etc", 0o755),
        File("/{P}etc/passwd", b"all users"),
        File("/{P}etc/whitedout", b"ahhhh whiteout"),
        Symlink("localetc", target),
    ]
}

#[test]
fn whiteout_symlink() {
    each_aim("WhiteoutSymlink", |w| {
        let apply = all_users("/{P}etc");
        let tar = [File(".wh.localetc", b"")];
        let passwd = w.p("{P}etc/passwd");

        let run = w.run(&apply, &tar);
        assert_whiteout(&run, &run.ok().join("localetc"));
        assert_symlink(&run, &run.lower_dir.as_ref().unwrap().join("localetc"), &w.p("/{P}etc"));
        with_merged(&run.layers(), |merged| {
            assert_absent(&run, &merged.join("localetc"));
            assert_data(&run, &merged.join(&passwd), b"all users");
        });

        let run = w.run(&[], &[&apply[..], &tar].concat());
        let root = run.ok();
        assert_whiteout(&run, &root.join("localetc"));
        assert_data(&run, &root.join(&passwd), b"all users");
    });
}

#[test]
fn whiteout_symlink_path() {
    each_aim("WhiteoutSymlinkPath", |w| {
        let apply = all_users("/{P}etc");
        let tar = [File("localetc/.wh.whitedout", b"")];
        let (passwd, whitedout) = (w.p("{P}etc/passwd"), w.p("{P}etc/whitedout"));

        // The upper layer has no `localetc` symlink to follow: it gets a directory.
        let run = w.run(&apply, &tar);
        let root = run.ok();
        assert_dir(&run, &root.join("localetc"));
        assert_whiteout(&run, &root.join("localetc/whitedout"));
        assert_absent(&run, &root.join(w.p("{P}etc")));
        with_merged(&run.layers(), |merged| {
            assert_data(&run, &merged.join(&passwd), b"all users");
            // containerd deletes it through the lower symlink; overlayfs shows the upper
            // directory over the lower symlink instead.
            assert_data(&run, &merged.join(&whitedout), b"ahhhh whiteout");
            assert_dir(&run, &merged.join("localetc"));
            // That directory is not merged with anything below, so overlayfs lists its
            // contents as they are: the whiteout's name shows, but looks up as nothing.
            let names: Vec<_> =
                fs::read_dir(merged.join("localetc")).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names, ["whitedout"], "{}", run.label);
            assert_absent(&run, &merged.join("localetc/whitedout"));
        });

        // In one layer the symlink resolves (in root) to `etc`: the whiteout replaces the file.
        let run = w.run(&[], &[&apply[..], &tar].concat());
        let root = run.ok();
        assert_whiteout(&run, &root.join(&whitedout));
        assert_data(&run, &root.join(&passwd), b"all users");
        assert_symlink(&run, &root.join("localetc"), &w.p("/{P}etc"));
    });
}

#[test]
fn whiteout_directory_name() {
    each_aim("WhiteoutDirectoryName", |w| {
        let apply = all_users("/{P}etc");
        let tar = [File("{P}.wh.etc/somefile", b"non-empty")];
        let passwd = w.p("{P}etc/passwd");

        let run = w.run(&apply, &tar);
        let root = run.ok();
        assert_data(&run, &root.join(w.p("{P}.wh.etc/somefile")), b"non-empty");
        assert_absent(&run, &root.join(w.p("{P}etc")));
        with_merged(&run.layers(), |merged| {
            assert_data(&run, &merged.join(&passwd), b"all users");
            assert_data(&run, &merged.join(w.p("{P}.wh.etc/somefile")), b"non-empty");
        });

        let run = w.run(&[], &[&apply[..], &tar].concat());
        let root = run.ok();
        assert_data(&run, &root.join(&passwd), b"all users");
        assert_data(&run, &root.join(w.p("{P}.wh.etc/somefile")), b"non-empty");
    });
}

#[test]
fn whiteout_dead_symlink_parent() {
    each_aim("WhiteoutDeadSymlinkParent", |w| {
        let apply = all_users("/{P}dne");
        let tar = [File("localetc/.wh.etc", b"")];
        let passwd = w.p("{P}etc/passwd");

        let run = w.run(&apply, &tar);
        let root = run.ok();
        assert_dir(&run, &root.join("localetc"));
        assert_whiteout(&run, &root.join("localetc/etc"));
        with_merged(&run.layers(), |merged| {
            assert_data(&run, &merged.join(&passwd), b"all users");
            assert_dir(&run, &merged.join("localetc"));
        });

        let run = w.run(&[], &[&apply[..], &tar].concat());
        run.refused_unsafe("localetc/.wh.etc", "a parent directory is a symlink to nothing in the layer");
    });
}

#[test]
fn whiteout_relative_path() {
    each_aim("WhiteoutRelativePath", |w| {
        let apply = all_users("/{P}dne");
        let tar = [File("{P}dne/../.wh.etc", b"")];
        let etc = w.p("{P}etc");

        let run = w.run(&apply, &tar);
        let root = run.ok();
        assert_whiteout(&run, &root.join(&etc));
        assert_absent(&run, &root.join(w.p("{P}dne")));
        with_merged(&run.layers(), |merged| {
            assert_absent(&run, &merged.join(&etc));
            assert!(merged.join(w.p("{P}")).is_dir() && merged.join("localetc").is_symlink());
        });

        // In one layer the whiteout replaces the layer's own `etc`, contents and all.
        let run = w.run(&[], &[&apply[..], &tar].concat());
        assert_whiteout(&run, &run.ok().join(&etc));
    });
}

#[test]
fn hardlink_symlink_before_create_target() {
    each_aim("HardlinkSymlinkBeforeCreateTarget", |w| {
        let run = w.run(
            &[],
            &[
                Dir("{P}etc", 0o770),
                Symlink("localpasswd", "/{P}etc/passwd"),
                Hardlink("localpasswd-dup", "localpasswd"),
                File("/{P}etc/passwd", b"after"),
            ],
        );
        let root = run.ok();
        // A hard link to a symlink links the symlink: the same inode, the same target.
        assert_symlink(&run, &root.join("localpasswd-dup"), &w.p("/{P}etc/passwd"));
        assert_eq!(ino(&root.join("localpasswd-dup")), ino(&root.join("localpasswd")), "{}", run.label);
        assert_same_file(&run, root, "localpasswd-dup", &w.p("{P}etc/passwd"));
        assert_data(&run, &root.join(w.p("{P}etc/passwd")), b"after");
    });
}

/// HardlinkSymlinkRelative and HardlinkSymlinkAbsolute: a hard link to `passwdlink -> target`.
fn hardlink_to_symlink(case: &'static str, target: &'static str) {
    each_aim(case, |w| {
        let run = w
            .run(&[], &with_passwd(&[Symlink("passwdlink", target), Hardlink("localpasswd", "/passwdlink")]));
        let root = run.ok();
        assert_symlink(&run, &root.join("localpasswd"), &w.sub(target));
        assert_eq!(ino(&root.join("localpasswd")), ino(&root.join("passwdlink")), "{}", run.label);
        assert_same_file(&run, root, "/localpasswd", &w.p("/{P}etc/passwd"));
        assert_data(&run, &root.join(w.p("{P}etc/passwd")), b"inside");
    });
}

#[test]
fn hardlink_symlink_relative() {
    hardlink_to_symlink("HardlinkSymlinkRelative", "{UP}../../../../../{P}etc/passwd");
}

#[test]
fn hardlink_symlink_absolute() {
    hardlink_to_symlink("HardlinkSymlinkAbsolute", "/{P}etc/passwd");
}

#[test]
fn hardlink_symlink_chmod() {
    each_aim("HardlinkSymlinkChmod", |w| {
        // Host paths, whatever the aim: the canary tree's `perm400` (0400) and
        // `also-exists-outside-root` (0640).
        let run = w.run(
            &[],
            &[
                Symlink("{OUT}/also-exists-outside-root", "{OUT}/perm400"),
                Hardlink("sketchylink", "{OUT}/also-exists-outside-root"),
            ],
        );
        let root = run.ok();
        let inside = root.join(w.sub("{OUT}/also-exists-outside-root").trim_start_matches('/'));
        assert_symlink(&run, &inside, &w.sub("{OUT}/perm400"));
        assert_eq!(ino(&root.join("sketchylink")), ino(&inside), "{}", run.label);
        let perm = fs::symlink_metadata(w.outside.join("perm400")).unwrap().mode() & 0o7777;
        assert_eq!(perm, 0o400, "{}: perm400 chmodded", run.label);
    });
}

/// containerd's `baseApplier`.
const BASE: &[E] = &[
    Dir("/{P}etc/", 0o755),
    File("/{P}etc/hosts", b"127.0.0.1 localhost"),
    Hardlink("/{P}etc/hosts.allow", "/{P}etc/hosts"),
    Dir("/usr/local/lib", 0o755),
    File("/usr/local/lib/libnothing.so", b"\0\0"),
    Symlink("/usr/local/lib/libnothing.so.2", "libnothing.so"),
    Dir("/home", 0o755),
    Dir("/home/derek", 0o700),
];

#[test]
fn relative_symlinks() {
    // TestRelativeSymlinks: each set of escaping symlinks over the base tree round-trips.
    let sets: &[&[(&str, &str)]] = &[
        &[
            ("/home/derek/other", "../other"),
            ("/home/derek/etc", "../../{P}etc"),
            ("/home/derek/updown", "up/../../other"),
        ],
        &[("/home/derek/breakout", "{UP}../../../breakout")],
        &[("/breakout", "{UP}../../breakout")],
        &[("/breakout", "{P}etc/../../upandout")],
        &[("/home/breakout", "derek/../../../downandout")],
        &[("localetc", "/{P}etc")],
    ];
    each_aim("TestRelativeSymlinks", |w| {
        for set in sets {
            let links: Vec<E> = set.iter().map(|&(name, target)| Symlink(name, target)).collect();
            let run = w.run(&[], &[BASE, &links].concat());
            let root = run.ok();
            for (name, target) in set.iter() {
                assert_symlink(&run, &root.join(name.trim_start_matches('/')), &w.sub(target));
            }
            assert_eq!(ino(&root.join(w.p("{P}etc/hosts.allow"))), ino(&root.join(w.p("{P}etc/hosts"))));
            assert_eq!(fs::symlink_metadata(root.join("home/derek")).unwrap().mode() & 0o7777, 0o700);
        }
    });
}

#[test]
fn directory_creation() {
    each_aim("TestApplyTar/DirectoryCreation", |w| {
        let run = w.run(
            &[Dir("/{P}etc/", 0o755)],
            &[
                Dir("/{P}etc/subdir", 0o755),
                Dir("/{P}etc/subdir2/", 0o755),
                Dir("/{P}etc/subdir2/more", 0o755),
                Dir("/other/noparent-1/1", 0o755),
                Dir("/other/noparent-2/2/", 0o755),
            ],
        );
        let root = run.ok();
        for dir in [
            "{P}etc/subdir",
            "{P}etc/subdir2",
            "{P}etc/subdir2/more",
            "other/noparent-1/1",
            "other/noparent-2/2",
        ] {
            assert_dir(&run, &root.join(w.p(dir)));
        }
        assert_eq!(
            fs::symlink_metadata(root.join("other")).unwrap().mode() & 0o7777,
            0o755,
            "implicit parent"
        );
        with_merged(&run.layers(), |merged| assert_dir(&run, &merged.join(w.p("{P}etc/subdir2/more"))));
    });
}
