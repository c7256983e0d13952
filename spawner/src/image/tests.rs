//! Archive reading across formats, as tar files and as directories.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::fixtures::*;
use super::*;

/// Writes `layout` both ways and returns the two paths (tar file, directory).
fn write_both(layout: &Layout, dir: &Path) -> [PathBuf; 2] {
    let tar = dir.join("image.tar");
    layout.write_tar(&tar);
    let unpacked = dir.join("unpacked");
    layout.write_dir(&unpacked);
    [tar, unpacked]
}

fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn docker_archive_tar_and_dir() {
    let base = simple_layer("bin/sh", b"shell");
    let top = simple_layer("etc/motd", b"hi");
    let layout = docker_archive(&[(&["busybox:latest"], &[&base, &top])]);
    let tmp = tempfile::tempdir().unwrap();
    for path in write_both(&layout, tmp.path()) {
        let archive = Archive::open(&path).unwrap();
        assert_eq!(archive.format(), Format::DockerArchive);
        assert_eq!(archive.images()[0].names, ["busybox:latest"]);
        let image = archive.select(None).unwrap();
        assert_eq!(image.config.config.cmd, Some(vec!["cmd0".to_owned()]));
        assert_eq!(image.config.config.labels["a"], "b");
        assert_eq!(image.layers.len(), 2);
        assert_eq!(image.layers[0].diff_id, Some(Digest::sha256_of(&base)));
        assert_eq!(image.layers[0].blob_digest, None);
        assert_eq!(read_all(archive.open_layer(&image.layers[1]).unwrap()), top);
        let config_name = format!("{}.json", image.config_digest.hex());
        assert!(archive.has_member(&config_name).unwrap(), "config digest is its sha256");
    }
}

#[test]
fn docker25_archive_reads_manifest_json_first() {
    let base = simple_layer("bin/sh", b"shell");
    let layout = docker25_archive("busybox:1.36", &[&base]);
    let tmp = tempfile::tempdir().unwrap();
    for path in write_both(&layout, tmp.path()) {
        let archive = Archive::open(&path).unwrap();
        assert_eq!(archive.format(), Format::DockerArchive);
        let image = archive.select(Some("busybox:1.36")).unwrap();
        let layer = &image.layers[0];
        assert_eq!(layer.member, Digest::sha256_of(&base).blob_path());
        assert_eq!(layer.blob_digest, Some(Digest::sha256_of(&base)));
        assert_eq!(read_all(archive.open_layer(layer).unwrap()), base);
        // The legacy-looking symlink resolves to the same blob.
        let via_link =
            LayerRef { member: format!("{}/layer.tar", Digest::sha256_of(&base).hex()), ..layer.clone() };
        assert_eq!(read_all(archive.open_layer(&via_link).unwrap()), base);
    }
}

#[test]
fn legacy_layout_walks_parents_and_sniffs_gzip() {
    let tars: Vec<Vec<u8>> = (0..3).map(|i| simple_layer(&format!("layer{i}"), b"x")).collect();
    let layout =
        legacy_archive(Some(("busybox", "latest")), &tars.iter().map(|t| gzip(t)).collect::<Vec<_>>());
    let tmp = tempfile::tempdir().unwrap();
    for path in write_both(&layout, tmp.path()) {
        let archive = Archive::open(&path).unwrap();
        assert_eq!(archive.format(), Format::Legacy);
        let image = archive.select(Some("busybox")).unwrap();
        assert_eq!(image.names, ["busybox:latest"]);
        assert_eq!(image.config.config.cmd, Some(vec!["legacy".to_owned()]));
        assert!(image.config.rootfs.is_none());
        assert_eq!(image.layers.len(), 3);
        for (layer, tar) in image.layers.iter().zip(&tars) {
            assert_eq!(layer.diff_id, None);
            assert!(layer.member.ends_with("/layer.tar"));
            let mut stream = archive.open_layer(layer).unwrap();
            assert_eq!(stream.compression(), Compression::Gzip);
            assert_eq!(&read_all(&mut stream), tar, "bottom-to-top order");
        }
    }
}

#[test]
fn legacy_layout_without_repositories_finds_top_layers() {
    let layout = legacy_archive(None, &[simple_layer("a", b""), simple_layer("b", b"")]);
    let tmp = tempfile::tempdir().unwrap();
    for path in write_both(&layout, tmp.path()) {
        let archive = Archive::open(&path).unwrap();
        assert_eq!(archive.images().len(), 1);
        assert_eq!(archive.images()[0].label(), "#0");
        assert_eq!(archive.select(None).unwrap().layers.len(), 2);
    }
}

#[test]
fn legacy_layout_with_manifest_uses_manifest() {
    // Newer download-frozen-image-v2.sh also writes manifest.json and a config with rootfs.
    let tar = simple_layer("a", b"1");
    let mut layout = legacy_archive(Some(("app", "v1")), &[gzip(&tar)]);
    let config = config_json("from-manifest", &[&tar]);
    let config_name = format!("{}.json", Digest::sha256_of(&config).hex());
    layout.add(&config_name, config);
    let layer = format!("{:064x}/layer.tar", 1000);
    layout.add_json(
        "manifest.json",
        serde_json::json!([{"Config": config_name, "RepoTags": ["app:v1"], "Layers": [layer]}]),
    );
    let tmp = tempfile::tempdir().unwrap();
    let archive = Archive::open(&write_both(&layout, tmp.path())[0]).unwrap();
    let image = archive.select(Some("app:v1")).unwrap();
    assert_eq!(image.config.config.cmd, Some(vec!["from-manifest".into()]));
    assert_eq!(image.layers[0].diff_id, Some(Digest::sha256_of(&tar)));
    assert_eq!(read_all(archive.open_layer(&image.layers[0]).unwrap()), tar);
}

#[test]
fn oci_layout_picks_host_platform_gzip_and_zstd() {
    let a = simple_layer("a", b"gzip layer");
    let b = simple_layer("b", b"zstd layer");
    let layout = oci_multiplatform("example.com/app:2", &[&a, &b], &[gzip(&a), zstd(&b)]);
    let tmp = tempfile::tempdir().unwrap();
    for path in write_both(&layout, tmp.path()) {
        let archive = Archive::open(&path).unwrap();
        assert_eq!(archive.format(), Format::Oci);
        assert_eq!(archive.images()[0].names, ["example.com/app:2"]);
        let image = archive.select(Some("example.com/app:2")).unwrap();
        assert_eq!(image.config.config.cmd, Some(vec!["oci".to_owned()]));
        assert_eq!(image.layers[0].blob_digest, Some(Digest::sha256_of(&gzip(&a))));
        assert_eq!(image.layers[1].diff_id, Some(Digest::sha256_of(&b)));
        let mut first = archive.open_layer(&image.layers[0]).unwrap();
        assert_eq!(first.compression(), Compression::Gzip);
        assert_eq!(read_all(&mut first), a);
        let mut second = archive.open_layer(&image.layers[1]).unwrap();
        assert_eq!(second.compression(), Compression::Zstd);
        assert_eq!(read_all(&mut second), b);
    }
}

#[test]
fn oci_layout_without_host_platform_says_so() {
    let mut layout = Layout::default();
    layout.add_json("oci-layout", serde_json::json!({"imageLayoutVersion": "1.0.0"}));
    layout.add_json(
        "index.json",
        serde_json::json!({"schemaVersion": 2, "manifests": [{
            "digest": Digest::sha256_of(b"x").to_string(), "size": 1,
            "platform": {"os": "windows", "architecture": "amd64"}}]}),
    );
    let tmp = tempfile::tempdir().unwrap();
    let err = Archive::open(&write_both(&layout, tmp.path())[0]).err().unwrap();
    assert!(matches!(err, ImageError::NoPlatform { .. }), "{err}");
    assert!(err.to_string().contains("windows/amd64"), "{err}");
}

#[test]
fn selection_among_several_images() {
    let l = simple_layer("f", b"");
    let layout = docker_archive(&[
        (&["busybox:latest"], &[&l]),
        (&["alpine:3.19", "alpine:latest"], &[&l]),
        (&[], &[&l]),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let archive = Archive::open(&write_both(&layout, tmp.path())[0]).unwrap();
    let labels: Vec<String> = archive.images().iter().map(ImageRef::label).collect();
    assert_eq!(labels, ["busybox:latest", "alpine:3.19 alpine:latest", "#2"]);

    let err = archive.select(None).unwrap_err();
    assert!(matches!(err, ImageError::Ambiguous { .. }));
    let msg = err.to_string();
    assert!(msg.contains("busybox:latest") && msg.contains("alpine:3.19"), "{msg}");

    assert_eq!(archive.select(Some("busybox")).unwrap().index, 0);
    assert_eq!(archive.select(Some("alpine")).unwrap().index, 1);
    let full = archive.select(Some("docker.io/library/alpine:3.19")).unwrap();
    assert_eq!(full.index, 1);
    assert_eq!(full.config.config.cmd, Some(vec!["cmd1".to_owned()]));
    assert_eq!(archive.select(Some("2")).unwrap().index, 2);
    assert_eq!(archive.select(Some("#2")).unwrap().index, 2);

    let err = archive.select(Some("nginx")).unwrap_err();
    assert!(matches!(err, ImageError::NoMatch { .. }));
    assert!(err.to_string().contains("busybox:latest"), "{err}");
}

#[test]
fn malformed_manifest_names_archive_and_member() {
    let mut layout = Layout::default();
    layout.add("manifest.json", r#"[{"RepoTags": [], "Layers": []}]"#);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("image.tar");
    layout.write_tar(&path);
    let err = Archive::open(&path).err().unwrap();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: manifest.json: missing field \"Config\"", path.display())),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
}

#[test]
fn missing_config_and_layer_blobs_are_named() {
    let base = simple_layer("a", b"");
    let mut layout = docker25_archive("x:1", &[&base]);
    let config = Digest::sha256_of(&config_json("sh", &[&base]));
    layout.remove(&config.blob_path());
    let tmp = tempfile::tempdir().unwrap();
    let archive = Archive::open(&write_both(&layout, tmp.path())[0]).unwrap();
    let err = archive.select(None).unwrap_err();
    assert!(matches!(err, ImageError::MissingMember { .. }), "{err}");
    assert!(err.to_string().contains(&config.blob_path()), "{err}");

    let layout = docker_archive(&[(&["x:1"], &[&base])]);
    let mut layout = layout.clone();
    layout.remove("img0layer0/layer.tar");
    let tmp = tempfile::tempdir().unwrap();
    let archive = Archive::open(&write_both(&layout, tmp.path())[1]).unwrap();
    let image = archive.select(None).unwrap();
    let err = archive.open_layer(&image.layers[0]).err().unwrap();
    assert!(err.to_string().ends_with("img0layer0/layer.tar: missing from archive"), "{err}");
}

#[test]
fn tampered_oci_manifest_is_a_digest_mismatch() {
    let a = simple_layer("a", b"");
    let mut layout = oci_multiplatform("app", &[&a], &[gzip(&a)]);
    // Replace the host manifest's content under its old name.
    let index: serde_json::Value = serde_json::from_slice(layout.get("index.json")).unwrap();
    let nested: Digest = index["manifests"][0]["digest"].as_str().unwrap().parse().unwrap();
    layout.add(&nested.blob_path(), r#"{"manifests": []}"#);
    let tmp = tempfile::tempdir().unwrap();
    let err = Archive::open(&write_both(&layout, tmp.path())[0]).err().unwrap();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
}

#[test]
fn unknown_layout_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = Layout::default();
    layout.add("hello.txt", "not an image");
    let err = Archive::open(&write_both(&layout, tmp.path())[0]).err().unwrap();
    assert!(matches!(err, ImageError::UnknownFormat { .. }), "{err}");
}

#[test]
fn directory_symlinks_stay_inside_the_layout() {
    // A layout directory whose manifest.json is a symlink to a host file must not read the host.
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret.json");
    std::fs::write(&secret, r#"[{"Config": "c.json", "Layers": []}]"#).unwrap();
    let dir = tmp.path().join("layout");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink(&secret, dir.join("manifest.json")).unwrap();
    let err = Archive::open(&dir).err().unwrap();
    assert!(matches!(err, ImageError::UnknownFormat { .. }), "{err}");
}

#[test]
fn compressed_archive_is_explained() {
    let layout = docker_archive(&[(&["x:1"], &[&simple_layer("a", b"")])]);
    let tmp = tempfile::tempdir().unwrap();
    let tar = tmp.path().join("image.tar");
    layout.write_tar(&tar);
    let gz = tmp.path().join("image.tar.gz");
    std::fs::write(&gz, gzip(&std::fs::read(&tar).unwrap())).unwrap();
    let err = Archive::open(&gz).err().unwrap();
    assert!(err.to_string().ends_with("archive is gzip-compressed; decompress it first"), "{err}");
    let junk = tmp.path().join("junk");
    std::fs::write(&junk, vec![b'x'; 2000]).unwrap();
    let err = Archive::open(&junk).err().unwrap();
    assert!(err.to_string().contains("not a tar archive"), "{err}");
}
