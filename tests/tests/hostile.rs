//! Hostile images against the real spawner (issue: "an image tar is untrusted input, and spawner
//! runs as root"). Each trick either fails with one `spawner: …` line naming the file and exit
//! 125, or is contained (what it writes lands inside the layer). Either way the layer store holds
//! no partial layer afterwards and the host is untouched: every host path a trick aims at is a
//! unique canary under /tmp, which must still not exist, and /etc/passwd and /etc/shadow (hard
//! link targets) must be exactly as before.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use integration_tests::hostile;
use integration_tests::*;

/// A host path a trick tries to write: `/tmp/hostile-canary-<pid>-<trick>`. Must not exist
/// before or after; removed on drop should a failing test have let it be created.
struct Canary(PathBuf);

impl Canary {
    fn new(trick: &str) -> Canary {
        let path = PathBuf::from(format!("/tmp/hostile-canary-{}-{trick}", std::process::id()));
        assert!(!path.exists(), "{} exists before the test", path.display());
        Canary(path)
    }

    fn assert_untouched(&self) {
        assert!(!self.0.exists(), "the image wrote {} on the host", self.0.display());
    }

    /// The canary path inside a layer (without its leading `/`).
    fn in_layer(&self, layer: &Path) -> PathBuf {
        layer.join(self.0.strip_prefix("/").unwrap())
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A host file's inode, link count, size, mtime and ctime (`None`: absent).
type FileState = (PathBuf, Option<(u64, u64, u64, i64, i64)>);

/// A trick, and what its one-line error must say.
type Case = (fn(&Path) -> PathBuf, &'static [&'static str]);

/// Identity and times of host files a trick aims at, to show they are unchanged.
fn host_files() -> Vec<FileState> {
    ["/etc/passwd", "/etc/shadow"]
        .iter()
        .map(|p| {
            let meta = std::fs::symlink_metadata(p).ok();
            (PathBuf::from(p), meta.map(|m| (m.ino(), m.nlink(), m.size(), m.mtime(), m.ctime())))
        })
        .collect()
}

/// A state dir, a place for the trick's archive inside it, and the host's state before.
struct Trial {
    state: StateDir,
    dir: PathBuf,
    host: Vec<FileState>,
}

impl Trial {
    fn new(name: &str) -> Trial {
        let state = StateDir::new(&format!("hostile-{name}"));
        let dir = state.0.join("archives");
        std::fs::create_dir_all(&dir).unwrap();
        Trial { state, dir, host: host_files() }
    }

    fn run(&self, archive: &Path) -> Output {
        self.state.run(&["run", archive.to_str().unwrap(), "--", "true"])
    }

    fn store(&self) -> PathBuf {
        self.state.0.join("store")
    }

    /// The unpacked layers in the store.
    fn layers(&self) -> Vec<PathBuf> {
        let dir = self.store().join("layers/sha256");
        let mut layers: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries.map(|e| e.unwrap().path().join("diff")).collect(),
            Err(_) => Vec::new(),
        };
        layers.sort();
        layers
    }

    /// Nothing half-done in the store, the host as it was.
    fn assert_clean(&self) {
        let tmp = self.store().join("tmp");
        if tmp.exists() {
            let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().path()).collect();
            assert!(left.is_empty(), "scratch left in the store: {left:?}");
        }
        assert_eq!(host_files(), self.host, "a host file changed");
    }

    /// Refused: exit 125, one line `spawner: <archive>: … <needles>`, no layer stored.
    fn assert_refused(&self, out: &Output, archive: &Path, needles: &[&str]) {
        let err = stderr(out);
        assert_eq!(code(out), 125, "{}: stderr: {err}", archive.display());
        assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
        let prefix = format!("spawner: {}: ", archive.display());
        assert!(err.starts_with(&prefix), "{err:?} does not start with {prefix:?}");
        assert_eq!(err.matches(&archive.display().to_string()).count(), 1, "archive named twice: {err:?}");
        for needle in needles {
            assert!(err.contains(needle), "{err:?} does not mention {needle:?}");
        }
        assert!(self.layers().is_empty(), "a layer was stored: {:?}", self.layers());
        self.assert_clean();
    }

    /// Contained: unpacked and run (exit 127: the image has no `true`), one layer stored,
    /// which is returned.
    fn assert_contained(&self, out: &Output, archive: &Path) -> PathBuf {
        assert_ne!(code(out), 125, "{}: {}", archive.display(), stderr(out));
        let layers = self.layers();
        assert_eq!(layers.len(), 1, "{layers:?}");
        self.assert_clean();
        layers[0].clone()
    }
}

// ---- names and links that try to leave the layer ----

#[test]
fn dotdot_names_are_refused() {
    let t = Trial::new("dotdot");
    let canary = Canary::new("dotdot");
    let archive = hostile::dotdot_name(&t.dir, &canary.0);
    let out = t.run(&archive);
    t.assert_refused(&out, &archive, &["layer0/layer.tar: ../", "path leaves the layer root"]);
    canary.assert_untouched();
}

#[test]
fn absolute_names_land_inside_the_layer() {
    let t = Trial::new("absolute");
    let canary = Canary::new("absolute");
    let archive = hostile::absolute_name(&t.dir, &canary.0);
    let layer = t.assert_contained(&t.run(&archive), &archive);
    assert_eq!(std::fs::read(canary.in_layer(&layer).join("absolute")).unwrap(), b"inside");
    canary.assert_untouched();
}

#[test]
fn a_symlink_out_cannot_be_written_through() {
    // The link points at nothing in the layer: refused, as `mkdir -p` through it would be.
    let t = Trial::new("symlink-out");
    let canary = Canary::new("symlink-out");
    let archive = hostile::symlink_out_then_file(&t.dir, &canary.0);
    let out = t.run(&archive);
    t.assert_refused(&out, &archive, &["out/through", "symlink to nothing in the layer"]);
    canary.assert_untouched();

    // The target exists in the layer: the file goes there, resolved as in the container.
    let t = Trial::new("symlink-out-existing");
    let archive = hostile::symlink_out_existing_target(&t.dir, &canary.0);
    let layer = t.assert_contained(&t.run(&archive), &archive);
    assert_eq!(std::fs::read(canary.in_layer(&layer).join("through")).unwrap(), b"through a symlink");
    assert_eq!(std::fs::read_link(layer.join("out")).unwrap(), canary.0, "symlink kept verbatim");
    canary.assert_untouched();
}

#[test]
fn symlink_chains_with_dotdot_stay_inside() {
    let t = Trial::new("chain");
    let canary = Canary::new("chain");
    let archive = hostile::symlink_chain_dotdot(&t.dir, &canary.0);
    let layer = t.assert_contained(&t.run(&archive), &archive);
    assert_eq!(std::fs::read(canary.in_layer(&layer).join("chain")).unwrap(), b"chained");
    canary.assert_untouched();
}

#[test]
fn hard_links_cannot_reach_host_files() {
    for (name, make, needles) in [
        (
            "hardlink-out",
            hostile::hardlink_out as fn(&Path) -> PathBuf,
            &["passwd-link", "hard link target", "No such file"][..],
        ),
        ("hardlink-dotdot", hostile::hardlink_dotdot, &["passwd-link", "path leaves the layer root"]),
        ("hardlink-via-symlink", hostile::hardlink_via_symlink, &["shadow-link", "hard link target"]),
        ("hardlink-forward", hostile::hardlink_forward, &["early", "linkat", "No such file"]),
    ] {
        let t = Trial::new(name);
        let archive = make(&t.dir);
        let out = t.run(&archive);
        t.assert_refused(&out, &archive, needles);
    }
}

#[test]
fn nul_in_a_name_is_refused() {
    let t = Trial::new("nul");
    let canary = Canary::new("nul");
    let archive = hostile::nul_in_name(&t.dir, &canary.0);
    let out = t.run(&archive);
    t.assert_refused(&out, &archive, &["name contains a NUL byte", "nul\\u{0}../"]);
    assert!(!stderr(&out).contains('\0'));
    canary.assert_untouched();
}

#[test]
fn control_characters_in_names_cannot_forge_error_lines() {
    let t = Trial::new("control");
    let (entry, member) = hostile::control_characters_in_names(&t.dir);
    let out = t.run(&entry);
    t.assert_refused(&out, &entry, &["../x\\nspawner: all good\\u{1b}[2J", "path leaves the layer root"]);
    let out = t.run(&member);
    t.assert_refused(&out, &member, &["missing\\nspawner: all good\\u{1b}[2J: missing from archive"]);
}

#[test]
fn names_over_path_max_and_name_max_are_refused() {
    let t = Trial::new("long");
    let (deep, wide) = hostile::overlong_names(&t.dir);
    for archive in [deep, wide] {
        let out = t.run(&archive);
        // glibc says "File name too long", musl "Filename too long".
        t.assert_refused(&out, &archive, &["too long"]);
    }
}

#[test]
fn a_directory_replaced_by_a_symlink_is_not_written_through_stale() {
    let t = Trial::new("dir-then-symlink");
    let canary = Canary::new("dir-then-symlink");
    let archive = hostile::dir_replaced_by_symlink(&t.dir, &canary.0);
    let layer = t.assert_contained(&t.run(&archive), &archive);
    assert_eq!(std::fs::read_link(layer.join("d")).unwrap(), canary.0);
    assert_eq!(std::fs::read(canary.in_layer(&layer).join("after")).unwrap(), b"2");
    assert!(!canary.in_layer(&layer).join("before").exists());
    canary.assert_untouched();
}

#[test]
fn whiteouts_cannot_escape() {
    let t = Trial::new("whiteouts");
    let canary = Canary::new("whiteouts");
    let archives = hostile::whiteout_escapes(&t.dir, &canary.0);
    let expected: [&[&str]; 3] = [
        &["path leaves the layer root"],
        &["a/.wh..", "whiteout of ., .."],
        &["s/.wh.victim", "symlink to nothing in the layer"],
    ];
    for (archive, needles) in archives.iter().zip(expected) {
        let out = t.run(archive);
        t.assert_refused(&out, archive, needles);
    }
    canary.assert_untouched();
}

#[test]
fn an_opaque_marker_in_a_symlinked_dir_marks_the_layer_dir() {
    let t = Trial::new("opaque");
    let canary = Canary::new("opaque");
    let archive = hostile::opaque_in_symlinked_dir(&t.dir, &canary.0);
    let layer = t.assert_contained(&t.run(&archive), &archive);
    let mut buf = [0u8; 8];
    let n = rustix::fs::lgetxattr(canary.in_layer(&layer), "trusted.overlay.opaque", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"y");
    assert!(rustix::fs::lgetxattr(layer.join("s"), "trusted.overlay.opaque", &mut buf[..]).is_err());
    canary.assert_untouched();
}

/// The store's root is 0711 and `layers/` 0700: no other host user reaches what is inside.
fn assert_store_closed(t: &Trial) {
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(t.store()), 0o711);
    assert_eq!(mode(t.store().join("layers")), 0o700);
}

#[test]
fn device_nodes_stay_inside_the_closed_store() {
    let t = Trial::new("devices");
    let archive = hostile::device_nodes(&t.dir);
    let layer = t.assert_contained(&t.run(&archive), &archive);
    let disk = std::fs::symlink_metadata(layer.join("disk")).unwrap();
    assert!(disk.file_type().is_block_device());
    assert_eq!((rustix::fs::major(disk.rdev()), rustix::fs::minor(disk.rdev())), (8, 0));
    assert!(std::fs::symlink_metadata(layer.join("tty0")).unwrap().file_type().is_char_device());
    assert_store_closed(&t);
}

#[test]
fn setuid_files_keep_their_mode_inside_the_closed_store() {
    let t = Trial::new("setuid");
    let archive = hostile::setuid_file(&t.dir);
    let layer = t.assert_contained(&t.run(&archive), &archive);
    let meta = std::fs::metadata(layer.join("suid")).unwrap();
    assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o4755, 0));
    assert_store_closed(&t);
}

#[test]
fn debian_var_run_symlink_resolves_inside_the_layer() {
    let t = Trial::new("var-run");
    let name = format!("hostile-canary-{}-var-run", std::process::id());
    let archive = hostile::debian_var_run(&t.dir, &name);
    let layer = t.assert_contained(&t.run(&archive), &archive);
    assert_eq!(std::fs::read_link(layer.join("var/run")).unwrap(), Path::new("/run"));
    assert_eq!(std::fs::read(layer.join("run").join(&name)).unwrap(), b"in run");
    assert!(!Path::new("/run").join(&name).exists(), "wrote to the host's /run");
}

// ---- malformed archives ----

#[test]
fn malformed_archives_fail_in_one_line_naming_the_file() {
    let t = Trial::new("malformed");
    let cases: [Case; 8] = [
        (hostile::manifest_not_json, &["manifest.json: "]),
        (hostile::missing_config, &["config.json: missing from archive"]),
        (hostile::missing_layer, &["layer0/layer.tar: missing from archive"]),
        (hostile::diff_id_mismatch, &["layer0/layer.tar: diff_id mismatch"]),
        (hostile::truncated_gzip, &["layer0/layer.tar: "]),
        (hostile::truncated_zstd, &["layer0/layer.tar: "]),
        (hostile::xz_layer, &["xz-layer.tar: layer0/layer.tar: unsupported layer compression xz"]),
        (hostile::tar_ends_early, &["layer0/layer.tar: hello: layer ends inside this file"]),
    ];
    for (make, needles) in cases {
        let archive = make(&t.dir);
        let out = t.run(&archive);
        eprintln!("{}", stderr(&out).trim_end());
        t.assert_refused(&out, &archive, needles);
    }
}

#[test]
fn a_decompression_bomb_stops_at_max_image_size() {
    let t = Trial::new("bomb");
    // 1 GiB of zeros in a ~1 MiB layer, against a 64 MiB limit.
    let archive = hostile::gzip_bomb(&t.dir, 1 << 30);
    let out = t.state.run(&["run", "--max-image-size", "67108864", archive.to_str().unwrap(), "--", "true"]);
    t.assert_refused(&out, &archive, &["layer0/layer.tar", "image unpacks to more than the limit of 64 MiB"]);
}

/// A device node from the image must not be usable inside the container: a block node for the
/// host's disk would be the whole host. Docker closes this with its devices cgroup; spawner
/// mounts /dev as its own tmpfs, so the overlay root can be `nodev`. The node here is 1:3 (the
/// null device), harmless if it does open.
#[test]
fn image_device_nodes_cannot_be_opened_in_the_container() {
    let t = Trial::new("device-open");
    let archive = hostile::device_on_busybox(&t.dir, &image("busybox-docker.tar"));
    let out = t.state.run(&[
        "run",
        archive.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "test -c /opt/null && echo node-present; echo x > /opt/null && echo opened",
    ]);
    assert_eq!(stdout(&out), "node-present\n", "{}", stderr(&out));
    t.assert_clean();
}
