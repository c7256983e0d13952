//! Layer store tests. They run as root (chown, mknod, trusted.* xattrs need it).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use tempfile::TempDir;

use super::*;
use crate::image::fixtures::*;
use crate::image::{Archive, Digest, Image};

/// A docker-archive of one image with `tars` as layers, opened, and an empty store beside it.
struct Setup {
    dir: TempDir,
    store: LayerStore,
    archive: Archive,
    image: Image,
}

fn setup_layout(layout: &Layout) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    layout.write_tar(&path);
    let archive = Archive::open(&path).unwrap();
    let image = archive.select(None).unwrap();
    let store = LayerStore::open(dir.path().join("store")).unwrap();
    Setup { dir, store, archive, image }
}

fn setup(tars: &[&[u8]]) -> Setup {
    setup_layout(&docker_archive(&[(&["test:latest"], tars)]))
}

/// The single layer's unpacked tree.
fn unpack_one(tar: &[u8]) -> (Setup, PathBuf) {
    let s = setup(&[tar]);
    let dirs = s.store.ensure_image(&s.archive, &s.image).unwrap();
    let dir = dirs[0].clone();
    (s, dir)
}

pub(super) fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = [0u8; 256];
    rustix::fs::lgetxattr(path, name, &mut buf[..]).ok().map(|n| buf[..n].to_vec())
}

fn dir_is_empty(path: &Path) -> bool {
    fs::read_dir(path).unwrap().next().is_none()
}

/// Nothing of a failed unpack is left: no layer, no scratch directory.
pub(super) fn assert_nothing_left(store: &LayerStore) {
    assert!(store.list_layers().unwrap().is_empty());
    assert!(dir_is_empty(&store.root().join("tmp")), "tmp/ not clean");
    assert!(dir_is_empty(&store.root().join("layers/sha256")));
}

#[test]
fn unpacks_metadata_faithfully() {
    let long_name = format!("opt/{}/file", "d".repeat(120));
    let tar = LayerBuilder::new()
        .file_with("etc/shadow", 0o640, 0, 42, b"secret")
        .file_with("usr/bin/su", 0o4755, 0, 0, b"su")
        .file_with("usr/bin/wall", 0o2755, 0, 5, b"wall")
        .dir("tmp", 0o1777)
        .file_with("home/user/.profile", 0o600, 1000, 1000, b"profile")
        // The directory entry after its contents: its mode and time still apply.
        .dir("home/user", 0o750)
        .hardlink("usr/bin/su-again", "usr/bin/su")
        .chardev("dev/null", 1, 3)
        .fifo("run/initctl")
        .xattrs(&[("user.spawner.test", b"yes"), ("trusted.overlay.redirect", b"/etc")])
        .file("bin/ping", b"ping")
        // Symlinks and nodes cannot be opened for fsetxattr; user.* is not allowed on them.
        .xattrs(&[("trusted.spawner.test", b"link")])
        .symlink("bin/link", "ping")
        .xattrs(&[("trusted.spawner.test", b"node")])
        .chardev("dev/zero", 1, 5)
        .file(&long_name, b"long")
        .finish();
    let (_s, root) = unpack_one(&tar);

    let meta = |p: &str| fs::symlink_metadata(root.join(p)).unwrap();
    assert_eq!(fs::read(root.join("etc/shadow")).unwrap(), b"secret");
    assert_eq!((meta("etc/shadow").mode() & 0o7777, meta("etc/shadow").gid()), (0o640, 42));
    assert_eq!(meta("usr/bin/su").mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!(meta("usr/bin/wall").mode() & 0o7777, 0o2755, "setgid kept after chown");
    assert_eq!(meta("tmp").mode() & 0o7777, 0o1777, "sticky kept");
    assert_eq!(meta("home/user").mode() & 0o7777, 0o750);
    assert_eq!(meta("home/user/.profile").uid(), 1000);
    assert_eq!(meta("home").mode() & 0o7777, 0o755, "implicit parent");
    assert_eq!(meta("etc/shadow").mtime(), MTIME as i64);
    assert_eq!(meta("home/user").mtime(), MTIME as i64, "dir mtime set last");
    assert_eq!(meta("usr/bin/su-again").ino(), meta("usr/bin/su").ino(), "hard link");
    let null = meta("dev/null");
    assert!(null.file_type().is_char_device());
    assert_eq!((rustix::fs::major(null.rdev()), rustix::fs::minor(null.rdev())), (1, 3));
    assert!(meta("run/initctl").file_type().is_fifo());
    let ping = root.join("bin/ping");
    assert_eq!(xattr(&ping, "user.spawner.test").as_deref(), Some(&b"yes"[..]));
    assert_eq!(xattr(&ping, "trusted.overlay.redirect"), None, "overlay xattrs dropped");
    assert_eq!(xattr(&root.join("bin/link"), "trusted.spawner.test").as_deref(), Some(&b"link"[..]));
    assert_eq!(xattr(&root.join("dev/zero"), "trusted.spawner.test").as_deref(), Some(&b"node"[..]));
    assert_eq!(fs::read(root.join(&long_name)).unwrap(), b"long");
}

#[test]
fn absolute_symlinks_kept_and_resolved_in_root() {
    let unique = format!("spawner-test-{}", std::process::id());
    let tar = LayerBuilder::new()
        .dir("run", 0o755)
        .dir("var", 0o755)
        .symlink("var/run", "/run")
        .file(&format!("var/run/{unique}"), b"inside")
        .symlink("up", "../../../../..")
        .file(&format!("up/tmp/{unique}"), b"contained")
        .finish();
    let (_s, root) = unpack_one(&tar);
    assert_eq!(fs::read_link(root.join("var/run")).unwrap(), Path::new("/run"));
    assert_eq!(fs::read(root.join("run").join(&unique)).unwrap(), b"inside");
    assert!(!Path::new("/run").join(&unique).exists(), "wrote to the host");
    assert_eq!(fs::read(root.join("tmp").join(&unique)).unwrap(), b"contained");
    assert!(!Path::new("/tmp").join(&unique).exists(), "wrote to the host");
}

#[test]
fn dot_dot_names_cannot_escape() {
    for tar in [
        LayerBuilder::new().file("../../etc/x", b"evil").finish(),
        LayerBuilder::new().file("a", b"").hardlink("b", "../../etc/passwd").finish(),
    ] {
        let s = setup(&[&tar]);
        let err = s.store.ensure_image(&s.archive, &s.image).unwrap_err();
        assert!(matches!(err, StoreError::UnsafeEntry { .. }), "{err}");
        assert!(err.to_string().contains("leaves the layer root"), "{err}");
        assert_nothing_left(&s.store);
        assert!(!s.dir.path().join("etc").exists());
    }
}

#[test]
fn whiteouts_become_overlayfs_markers() {
    let tar = LayerBuilder::new()
        .dir("etc", 0o755)
        .file("etc/kept", b"1")
        .dir("etc/sub", 0o755)
        // The opaque marker after its siblings: it must not remove them.
        .file("etc/.wh..wh..opq", b"")
        .file("etc/after", b"2")
        .dir("usr", 0o755)
        .file("usr/.wh.gone", b"")
        .dir(".wh..wh.plnk", 0o700)
        .file(".wh..wh.plnk/1234.5678", b"aufs")
        .finish();
    let (_s, root) = unpack_one(&tar);
    assert_eq!(xattr(&root.join("etc"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert!(root.join("etc/kept").is_file());
    assert!(root.join("etc/sub").is_dir());
    assert!(root.join("etc/after").is_file());
    assert!(!root.join("etc/.wh..wh..opq").exists());
    let gone = fs::symlink_metadata(root.join("usr/gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(!root.join("usr/.wh.gone").exists());
    assert!(!root.join(".wh..wh.plnk").exists(), "AUFS metadata skipped");
}

#[test]
fn later_entries_replace_earlier_ones() {
    let tar = LayerBuilder::new()
        .file("a", b"file first")
        .dir("a", 0o755)
        .file("a/child", b"")
        .dir("d", 0o700)
        .file("d/keep", b"")
        .dir("d", 0o711) // dir over dir: contents stay, metadata updated
        .dir("s", 0o755)
        .file("s/x", b"")
        .symlink("s", "/elsewhere") // symlink over dir
        .file("f", b"old")
        .file("f", b"new")
        .finish();
    let (_s, root) = unpack_one(&tar);
    assert!(root.join("a/child").is_file());
    assert!(root.join("d/keep").is_file());
    assert_eq!(fs::metadata(root.join("d")).unwrap().permissions().mode() & 0o7777, 0o711);
    assert_eq!(fs::read_link(root.join("s")).unwrap(), Path::new("/elsewhere"));
    assert_eq!(fs::read(root.join("f")).unwrap(), b"new");
}

#[test]
fn diff_id_mismatch_leaves_nothing() {
    let real = simple_layer("a", b"real");
    let claimed = simple_layer("a", b"claimed");
    // A config whose diff_id is for other content than the layer holds.
    let mut layout = Layout::default();
    let config = config_json("sh", &[&claimed]);
    layout.add("config.json", config);
    layout.add("l/layer.tar", real);
    layout.add_json(
        "manifest.json",
        serde_json::json!([{"Config": "config.json", "RepoTags": ["x:1"], "Layers": ["l/layer.tar"]}]),
    );
    let s = setup_layout(&layout);
    let err = s.store.ensure_image(&s.archive, &s.image).unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { what: "diff_id", .. }), "{err}");
    assert!(err.to_string().contains("l/layer.tar"), "{err}");
    assert_nothing_left(&s.store);
    assert!(s.store.list_images().unwrap().is_empty());
}

#[test]
fn oci_compressed_layers_verified_against_blob_digest() {
    let a = simple_layer("a", b"gzip");
    let b = simple_layer("b", b"zstd");
    let layout = oci_multiplatform("app:1", &[&a, &b], &[gzip(&a), zstd(&b)]);
    let s = setup_layout(&layout);
    let dirs = s.store.ensure_image(&s.archive, &s.image).unwrap();
    assert_eq!(fs::read(dirs[0].join("a")).unwrap(), b"gzip");
    assert_eq!(fs::read(dirs[1].join("b")).unwrap(), b"zstd");
    assert_eq!(dirs[1], s.store.layer_dir(&Digest::sha256_of(&b)));

    // Same uncompressed content, but the blob is not the one the manifest names.
    let mut tampered = layout.clone();
    let blob = Digest::sha256_of(&gzip(&a));
    let mut other = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut other, &a).unwrap();
    tampered.add(&blob.blob_path(), other.finish().unwrap());
    let s = setup_layout(&tampered);
    let err = s.store.ensure_image(&s.archive, &s.image).unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { what: "blob digest", .. }), "{err}");
    assert_nothing_left(&s.store);
}

#[test]
fn corrupt_stream_is_a_read_error_and_cleaned_up() {
    let a = simple_layer("a", &[7u8; 100_000]);
    let mut broken = gzip(&a);
    let middle = broken.len() / 2;
    broken.truncate(middle);
    let mut layout = Layout::default();
    layout.add("config.json", config_json("sh", &[&a]));
    layout.add("l/layer.tar", broken);
    layout
        .add_json("manifest.json", serde_json::json!([{"Config": "config.json", "Layers": ["l/layer.tar"]}]));
    let s = setup_layout(&layout);
    let err = s.store.ensure_image(&s.archive, &s.image).unwrap_err();
    assert!(matches!(err, StoreError::LayerRead { .. }), "{err}");
    assert_nothing_left(&s.store);
}

#[test]
fn second_ensure_is_a_no_op() {
    let a = simple_layer("a", b"1");
    let b = simple_layer("b", b"2");
    let s = setup(&[&a, &b]);
    let first = s.store.ensure_image(&s.archive, &s.image).unwrap();
    assert_eq!(s.store.layers_unpacked(), 2);
    let stamp = fs::metadata(&first[0]).unwrap().ino();
    let second = s.store.ensure_image(&s.archive, &s.image).unwrap();
    assert_eq!(first, second);
    assert_eq!(s.store.layers_unpacked(), 2, "nothing unpacked again");
    assert_eq!(fs::metadata(&second[0]).unwrap().ino(), stamp);
    // Another handle on the same store (another process) finds them too.
    let again = LayerStore::open(s.store.root()).unwrap();
    again.ensure_image(&s.archive, &s.image).unwrap();
    assert_eq!(again.layers_unpacked(), 0);
}

#[test]
fn concurrent_ensures_unpack_once() {
    let tars: Vec<Vec<u8>> =
        (0..4).map(|i| simple_layer(&format!("f{i}"), &vec![i as u8; 200_000])).collect();
    let refs: Vec<&[u8]> = tars.iter().map(Vec::as_slice).collect();
    let s = setup(&refs);
    // Separate handles, as separate processes would have.
    let handles: Vec<LayerStore> = (0..2).map(|_| LayerStore::open(s.store.root()).unwrap()).collect();
    std::thread::scope(|scope| {
        let runs: Vec<_> = handles
            .iter()
            .map(|store| scope.spawn(|| store.ensure_image(&s.archive, &s.image).unwrap()))
            .collect();
        let results: Vec<Vec<PathBuf>> = runs.into_iter().map(|r| r.join().unwrap()).collect();
        assert_eq!(results[0], results[1]);
    });
    let total: usize = handles.iter().map(LayerStore::layers_unpacked).sum();
    assert_eq!(total, 4, "each layer unpacked exactly once");
    assert!(dir_is_empty(&s.store.root().join("tmp")));
}

#[test]
fn legacy_layers_get_computed_diff_ids() {
    let tars = [simple_layer("a", b"1"), simple_layer("b", b"2")];
    let layout = legacy_archive(Some(("old", "latest")), &[gzip(&tars[0]), zstd(&tars[1])]);
    let s = setup_layout(&layout);
    assert!(s.image.layers[0].diff_id.is_none());
    let dirs = s.store.ensure_image(&s.archive, &s.image).unwrap();
    assert_eq!(dirs[0], s.store.layer_dir(&Digest::sha256_of(&tars[0])));
    assert_eq!(fs::read(dirs[1].join("b")).unwrap(), b"2");
    let images = s.store.list_images().unwrap();
    assert_eq!(images[0].layers, tars.iter().map(|t| Digest::sha256_of(t)).collect::<Vec<_>>());
    assert_eq!(images[0].names, ["old:latest"]);
    // Found again through the blob notes, without unpacking.
    s.store.ensure_image(&s.archive, &s.image).unwrap();
    assert_eq!(s.store.layers_unpacked(), 2);
}

#[test]
fn list_and_prune() {
    let shared = simple_layer("shared", b"s");
    let only_a = simple_layer("a", b"a");
    let only_b = simple_layer("b", b"b");
    let layout = docker_archive(&[(&["a:1"], &[&shared, &only_a]), (&["b:1"], &[&shared, &only_b])]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.tar");
    layout.write_tar(&path);
    let archive = Archive::open(&path).unwrap();
    let store = LayerStore::open(dir.path().join("store")).unwrap();
    let a = archive.select(Some("a:1")).unwrap();
    let b = archive.select(Some("b:1")).unwrap();
    store.ensure_image(&archive, &a).unwrap();
    store.ensure_image(&archive, &b).unwrap();
    assert_eq!(store.layers_unpacked(), 3);
    let images = store.list_images().unwrap();
    assert_eq!(images.len(), 2);
    assert!(images.iter().any(|i| i.names == ["b:1"]));

    // Debris of a crashed unpack: cleared by the next open that finds the store idle...
    fs::create_dir_all(store.root().join("tmp/sha256-dead-1-0/diff")).unwrap();
    LayerStore::open(store.root()).unwrap();
    assert!(dir_is_empty(&store.root().join("tmp")));
    // ...and by prune.
    fs::create_dir_all(store.root().join("tmp/sha256-dead-1-0/diff")).unwrap();
    assert_eq!(
        store.prune().unwrap(),
        PruneReport { removed_layers: vec![], removed_scratch: 1, removed_blobs: 0 }
    );

    assert!(store.remove_image(&b.config_digest).unwrap());
    let report = store.prune().unwrap();
    assert_eq!(report.removed_layers, [Digest::sha256_of(&only_b)]);
    assert!(store.has_layer(&Digest::sha256_of(&shared)));
    assert!(store.has_layer(&Digest::sha256_of(&only_a)));
    assert!(!store.has_layer(&Digest::sha256_of(&only_b)));
    assert!(dir_is_empty(&store.root().join("tmp")));
}

#[test]
fn error_messages_are_one_line_with_context() {
    let tar = LayerBuilder::new().file("../x", b"").finish();
    let s = setup(&[&tar]);
    let msg = s.store.ensure_image(&s.archive, &s.image).unwrap_err().to_string();
    assert!(!msg.contains('\n'));
    assert!(
        msg.starts_with(&format!("{}: img0layer0/layer.tar: ../x: ", s.archive.path().display())),
        "{msg}"
    );
}

/// Unpack speed against a real (possibly compressed) tar: `SPAWNER_BENCH_TAR=/path/layer.tar
/// cargo test --release -p
/// spawner --lib -- --ignored --nocapture unpack_speed`. Compare with `tar -xf` + `sync -f`.
#[test]
#[ignore]
fn unpack_speed() {
    let Ok(tar) = std::env::var("SPAWNER_BENCH_TAR") else {
        return;
    };
    let tar = PathBuf::from(tar);
    let dir = tempfile::tempdir_in(tar.parent().unwrap()).unwrap();
    let layout = dir.path().join("layout");
    fs::create_dir_all(layout.join("l")).unwrap();
    // A hard link: the layout directory must hold the tar (members resolve inside it).
    fs::hard_link(&tar, layout.join("l/layer.tar")).unwrap();
    let hash_start = std::time::Instant::now();
    // The tar may be compressed: the diff_id is the hash of what it decompresses to.
    let mut file = std::io::BufReader::new(fs::File::open(&tar).unwrap());
    let compression = crate::image::Compression::sniff(&mut file).unwrap().unwrap();
    let stream = crate::image::Decompressor::new(file, compression).unwrap();
    let mut hasher = DigestReader::new(stream, Algorithm::Sha256);
    std::io::copy(&mut hasher, &mut std::io::sink()).unwrap();
    let (diff_id, tar_size, _) = hasher.finish().unwrap();
    eprintln!("sha256 of the {tar_size}-byte tar alone: {:?}", hash_start.elapsed());
    let config = serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [diff_id]}});
    fs::write(layout.join("config.json"), config.to_string()).unwrap();
    fs::write(layout.join("manifest.json"), r#"[{"Config": "config.json", "Layers": ["l/layer.tar"]}]"#)
        .unwrap();
    let archive = Archive::open(&layout).unwrap();
    let image = archive.select(None).unwrap();
    let store = LayerStore::open(dir.path().join("store")).unwrap();
    let start = std::time::Instant::now();
    store.ensure_image(&archive, &image).unwrap();
    eprintln!("unpacked {} in {:?}", tar.display(), start.elapsed());
    if std::env::var_os("SPAWNER_BENCH_KEEP").is_some() {
        eprintln!("kept {}", store.layer_dir(&diff_id).display());
        let _ = dir.keep();
    }
}

/// A one-layer docker-archive with `blob` as the layer (its diff_id is the sha256 of `tar`), and
/// a store with `limits`.
fn setup_limited(tar: &[u8], blob: Vec<u8>, limits: Limits) -> Setup {
    let mut layout = Layout::default();
    layout.add("config.json", config_json("sh", &[tar]));
    layout.add("l/layer.tar", blob);
    layout
        .add_json("manifest.json", serde_json::json!([{"Config": "config.json", "Layers": ["l/layer.tar"]}]));
    let mut s = setup_layout(&layout);
    s.store = LayerStore::open_with(s.dir.path().join("store-limited"), limits).unwrap();
    s
}

#[test]
fn decompression_bomb_stops_at_the_image_limit() {
    // 16 MiB of zeros: 16 KiB of gzip.
    let tar = simple_layer("zeros", &vec![0u8; 16 << 20]);
    let s = setup_limited(&tar, gzip(&tar), Limits { max_image_bytes: 1 << 20 });
    let err = s.store.ensure_image(&s.archive, &s.image).unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { limit: 1048576, .. }), "{err}");
    let msg = err.to_string();
    // Named by the layer (and the entry, when the file side notices first).
    assert!(msg.contains("image.tar: l/layer.tar: "), "{msg}");
    assert!(msg.ends_with("image unpacks to more than the limit of 1 MiB"), "{msg}");
    assert_nothing_left(&s.store);

    // The limit is for the whole image: two layers that fit alone do not fit together.
    let a = simple_layer("a", &vec![1u8; 600 << 10]);
    let b = simple_layer("b", &vec![2u8; 600 << 10]);
    let mut s = setup(&[&a, &b]);
    s.store = LayerStore::open_with(s.dir.path().join("store-limited"), Limits { max_image_bytes: 1 << 20 })
        .unwrap();
    let err = s.store.ensure_image(&s.archive, &s.image).unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("img0layer1/layer.tar"), "{err}");
    assert_eq!(s.store.list_layers().unwrap().len(), 1, "the first layer fit and stays");
    assert!(dir_is_empty(&s.store.root().join("tmp")));
    // With the default limit both go in.
    let store = LayerStore::open(s.dir.path().join("store-default")).unwrap();
    store.ensure_image(&s.archive, &s.image).unwrap();
}

#[test]
fn sparse_file_holes_count_against_the_limit() {
    // A GNU sparse entry: 512 bytes of data at offset 16 MiB, so a 16 MiB file from a 2 KiB tar.
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::GNUSparse);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME);
    header.set_size(512);
    {
        let gnu = header.as_gnu_mut().unwrap();
        gnu.sparse[0].set_offset(16 << 20);
        gnu.sparse[0].set_length(512);
        gnu.set_real_size((16 << 20) + 512);
        let name = b"holes";
        gnu.name[..name.len()].copy_from_slice(name);
    }
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &[7u8; 512][..]).unwrap();
    let tar = builder.into_inner().unwrap();
    let s = setup_limited(&tar, tar.clone(), Limits { max_image_bytes: 1 << 20 });
    let err = s.store.ensure_image(&s.archive, &s.image).unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("holes: image unpacks to more than"), "{err}");
    assert_nothing_left(&s.store);
    // Within the limit, the file is whole.
    let s = setup_limited(&tar, tar.clone(), Limits { max_image_bytes: 32 << 20 });
    let dirs = s.store.ensure_image(&s.archive, &s.image).unwrap();
    let data = fs::read(dirs[0].join("holes")).unwrap();
    assert_eq!(data.len(), (16 << 20) + 512);
    assert!(data[..16 << 20].iter().all(|&b| b == 0) && data[16 << 20..].iter().all(|&b| b == 7));
}

#[test]
fn oversized_tar_headers_are_refused_not_buffered() {
    // A 16 MiB PAX record (16 KiB of gzip): the tar crate would hold it in memory.
    let mut builder = tar::Builder::new(Vec::new());
    let huge = vec![b'x'; 16 << 20];
    builder.append_pax_extensions([("comment", &huge[..])]).unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_size(1);
    header.set_mode(0o644);
    builder.append_data(&mut header, "after", &b"1"[..]).unwrap();
    let tar = builder.into_inner().unwrap();
    let s = setup_limited(&tar, gzip(&tar), Limits::default());
    let err = s.store.ensure_image(&s.archive, &s.image).unwrap_err();
    assert!(matches!(err, StoreError::LayerRead { .. }), "{err}");
    assert!(err.to_string().ends_with("l/layer.tar: tar headers of one entry exceed 8 MiB"), "{err}");
    assert_nothing_left(&s.store);
}

#[test]
fn failures_on_either_side_of_the_pipeline_leave_nothing() {
    // The file-creating side fails early while the decompressing side has megabytes to go.
    let tar = LayerBuilder::new().file("../escape", b"x").file("big", &vec![3u8; 8 << 20]).finish();
    let s = setup_limited(&tar, zstd(&tar), Limits::default());
    let err = s.store.ensure_image(&s.archive, &s.image).unwrap_err();
    assert!(matches!(err, StoreError::UnsafeEntry { .. }), "{err}");
    assert_nothing_left(&s.store);
    // The decompressing side fails (truncated zstd) after the other has created files.
    let tar = LayerBuilder::new().file("first", b"x").file("big", &vec![3u8; 8 << 20]).finish();
    let mut blob = zstd(&tar);
    blob.truncate(blob.len() - 16);
    let s = setup_limited(&tar, blob, Limits::default());
    let err = s.store.ensure_image(&s.archive, &s.image).unwrap_err();
    assert!(matches!(err, StoreError::LayerRead { .. }), "{err}");
    assert!(!err.to_string().contains('\n'));
    assert_nothing_left(&s.store);
}

/// A layer with one entry of each kind the tree digest records, in a fresh store.
fn verify_setup() -> (Setup, Digest, PathBuf) {
    let tar = LayerBuilder::new()
        .file_with("etc/shadow", 0o640, 0, 42, b"secret")
        .hardlink("etc/shadow-again", "etc/shadow")
        .xattrs(&[("user.spawner.test", b"yes")])
        .file("bin/ping", b"ping")
        .symlink("bin/link", "ping")
        .chardev("dev/null", 1, 3)
        .fifo("run/initctl")
        .dir("tmp", 0o1777)
        .finish();
    let (s, root) = unpack_one(&tar);
    let diff_id = Digest::sha256_of(&tar);
    (s, diff_id, root)
}

fn verify_problem(store: &LayerStore, diff_id: &Digest) -> Option<String> {
    let report = store.verify().unwrap();
    report.layers.into_iter().find(|(d, _)| d == diff_id).expect("layer listed").1
}

/// Records the layer's tree digest in `format`, as a spawner of that format's time would have.
fn record_tree_format(store: &LayerStore, diff_id: &Digest, root: &Path, format: tree::Format) {
    let info_path = store.layer_home(diff_id).join("layer.json");
    let mut info: LayerInfo = read_json(&info_path).unwrap();
    let digest = tree::tree_digest(root, format).unwrap();
    if format != tree::Format::SizeOnly {
        assert_ne!(info.tree_digest.as_ref(), Some(&digest), "the formats differ");
    }
    info.tree_digest = Some(digest);
    info.tree_format = format.number();
    fs::write(&info_path, serde_json::to_vec(&info).unwrap()).unwrap();
}

#[test]
fn verify_passes_on_a_fresh_store_and_digests_are_reproducible() {
    let (s, diff_id, root) = verify_setup();
    let report = s.store.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.layers.len(), 1);
    // A second unpack of the same layer, at another time, records the same tree digest.
    let (s2, _, _) = verify_setup();
    let info =
        |s: &Setup| -> LayerInfo { read_json(&s.store.layer_home(&diff_id).join("layer.json")).unwrap() };
    assert!(info(&s).tree_digest.is_some());
    assert_eq!(info(&s).tree_digest, info(&s2).tree_digest);
    assert_eq!(Some(tree::tree_digest(&root, tree::Format::SizeOnly).unwrap()), info(&s).tree_digest);
}

#[test]
fn verify_finds_every_kind_of_change() {
    use std::os::unix::fs::symlink;
    type Change = fn(&Path);
    let changes: [(&str, Change); 10] = [
        ("content, same size", |r| fs::write(r.join("bin/ping"), b"pong").unwrap()),
        ("content through a hard link", |r| fs::write(r.join("etc/shadow-again"), b"SECRET").unwrap()),
        ("permission bits", |r| {
            fs::set_permissions(r.join("etc/shadow"), fs::Permissions::from_mode(0o644)).unwrap()
        }),
        ("owner", |r| std::os::unix::fs::lchown(r.join("bin/link"), Some(1), None).unwrap()),
        ("mtime", |r| {
            let f = fs::File::options().write(true).open(r.join("bin/ping")).unwrap();
            f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        }),
        ("added file", |r| fs::write(r.join("tmp/new"), b"").unwrap()),
        ("removed file", |r| fs::remove_file(r.join("run/initctl")).unwrap()),
        ("symlink target", |r| {
            fs::remove_file(r.join("bin/link")).unwrap();
            symlink("/bin/sh", r.join("bin/link")).unwrap();
        }),
        ("xattr", |r| {
            rustix::fs::lsetxattr(
                r.join("bin/ping"),
                "user.spawner.test",
                b"no",
                rustix::fs::XattrFlags::empty(),
            )
            .unwrap()
        }),
        ("device number", |r| {
            fs::remove_file(r.join("dev/null")).unwrap();
            let dev = rustix::fs::makedev(1, 5);
            rustix::fs::mknodat(
                rustix::fs::CWD,
                r.join("dev/null"),
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::from_raw_mode(0o600),
                dev,
            )
            .unwrap();
        }),
    ];
    for (format, (what, change)) in
        [tree::Format::Inline, tree::Format::SizeOnly].into_iter().flat_map(|f| changes.map(|c| (f, c)))
    {
        let (s, diff_id, root) = verify_setup();
        record_tree_format(&s.store, &diff_id, &root, format);
        assert_eq!(verify_problem(&s.store, &diff_id), None, "{what}: before the change");
        change(&root);
        let problem = verify_problem(&s.store, &diff_id).unwrap_or_else(|| panic!("{what}: not detected"));
        assert!(problem.contains("files differ from what was unpacked"), "{what} ({format:?}): {problem}");
        assert!(!s.store.verify().unwrap().is_ok());
    }
}

#[test]
fn verify_checks_layer_records_and_images() {
    let (s, diff_id, _) = verify_setup();
    let info_path = s.store.layer_home(&diff_id).join("layer.json");
    let original = fs::read(&info_path).unwrap();

    // layer.json of another layer.
    let mut info: LayerInfo = read_json(&info_path).unwrap();
    info.diff_id = Digest::sha256_of(b"other");
    fs::write(&info_path, serde_json::to_vec(&info).unwrap()).unwrap();
    assert!(verify_problem(&s.store, &diff_id).unwrap().contains("records layer sha256:"));

    // A layer unpacked before tree digests were recorded cannot be vouched for.
    let mut info: LayerInfo = serde_json::from_slice(&original).unwrap();
    info.tree_digest = None;
    fs::write(&info_path, serde_json::to_vec(&info).unwrap()).unwrap();
    assert!(verify_problem(&s.store, &diff_id).unwrap().contains("no tree digest recorded"));

    fs::write(&info_path, b"{").unwrap();
    assert!(verify_problem(&s.store, &diff_id).is_some());

    // An image whose layer is gone.
    fs::write(&info_path, &original).unwrap();
    assert!(s.store.verify().unwrap().is_ok());
    fs::remove_dir_all(s.store.layer_home(&diff_id)).unwrap();
    let report = s.store.verify().unwrap();
    assert!(report.layers.is_empty());
    assert_eq!(report.incomplete_images.len(), 1);
    assert_eq!(report.incomplete_images[0].1, [diff_id]);
    assert!(!report.is_ok());
}

#[test]
fn tree_digest_walks_a_tree_nested_1500_deep() {
    // Deeper than a recursive walk's stack or one fd per level (ulimit -n 1024) would allow.
    let dir = tempfile::tempdir().unwrap();
    let mut cur = rustix::fs::open(dir.path(), OFlags::DIRECTORY, Mode::empty()).unwrap();
    for _ in 0..1500 {
        rustix::fs::mkdirat(&cur, "d", Mode::from_raw_mode(0o755)).unwrap();
        cur = rustix::fs::openat(&cur, "d", OFlags::DIRECTORY, Mode::empty()).unwrap();
    }
    let leaf = |content: &[u8]| {
        let fd = rustix::fs::openat(
            &cur,
            "leaf",
            OFlags::CREATE | OFlags::WRONLY | OFlags::TRUNC,
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        rustix::io::write(&fd, content).unwrap();
    };
    leaf(b"one");
    let first = tree::tree_digest(dir.path(), tree::Format::Inline).unwrap();
    assert_eq!(tree::tree_digest(dir.path(), tree::Format::Inline).unwrap(), first);
    leaf(b"two");
    assert_ne!(
        tree::tree_digest(dir.path(), tree::Format::Inline).unwrap(),
        first,
        "a change 1500 levels down counts"
    );
}

#[test]
fn every_entry_costs_a_block_against_the_limit() {
    // 300 empty files: a 150 KiB tar stream and no content, but 300 inodes; at 4 KiB each, more
    // than 1 MiB of disk.
    let mut builder = LayerBuilder::new();
    for i in 0..300 {
        builder.file(&format!("f{i}"), b"");
    }
    let tar = builder.finish();
    assert!(tar.len() < 200 << 10);
    let s = setup_limited(&tar, tar.clone(), Limits { max_image_bytes: 1 << 20 });
    let err = s.store.ensure_image(&s.archive, &s.image).unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert_nothing_left(&s.store);
    // 200 of them fit.
    let mut builder = LayerBuilder::new();
    for i in 0..200 {
        builder.file(&format!("f{i}"), b"");
    }
    let tar = builder.finish();
    let s = setup_limited(&tar, tar.clone(), Limits { max_image_bytes: 1 << 20 });
    s.store.ensure_image(&s.archive, &s.image).unwrap();
}

#[test]
fn a_layer_that_writes_a_path_twice_records_the_tree_it_leaves() {
    // The first `a` is replaced; the hard link made before the replacement keeps its content.
    let tar = LayerBuilder::new()
        .file("a", b"first")
        .hardlink("b", "a")
        .file("a", b"second, longer")
        .file("c", b"same size 1")
        .file("c", b"same size 2")
        .finish();
    let (s, root) = unpack_one(&tar);
    assert_eq!(fs::read(root.join("a")).unwrap(), b"second, longer");
    assert_eq!(fs::read(root.join("b")).unwrap(), b"first");
    assert_eq!(fs::read(root.join("c")).unwrap(), b"same size 2");
    let report = s.store.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    // Its tar-split cannot make the first `a` again: the tree digest takes the contents itself.
    let diff_id = Digest::sha256_of(&tar);
    let info: LayerInfo = read_json(&s.store.layer_home(&diff_id).join("layer.json")).unwrap();
    assert_eq!(info.tree_format, tree::Format::Inline.number());
    fs::write(root.join("b"), b"FIRST").unwrap();
    assert!(
        verify_problem(&s.store, &diff_id).is_some(),
        "a change in the replaced path's old content counts"
    );
}
