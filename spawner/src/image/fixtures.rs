//! Test fixtures: layer tars and whole archives in each format, built in memory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::Digest;

/// mtime given to every fixture entry.
pub(crate) const MTIME: u64 = 1_600_000_000;

/// Builds a layer tar entry by entry. Names are written verbatim (even `../x` or `/abs`, which
/// `tar::Builder`'s own path setters refuse), so tests can feed the unpacker hostile archives.
pub(crate) struct LayerBuilder {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    pub(crate) fn new() -> LayerBuilder {
        LayerBuilder { builder: tar::Builder::new(Vec::new()) }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(MTIME);
        header.set_uid(0);
        header.set_gid(0);
        header
    }

    fn append(&mut self, mut header: tar::Header, path: &str, data: &[u8]) -> &mut Self {
        if path.len() < 100 {
            let name = &mut header.as_old_mut().name;
            name.fill(0);
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            self.builder.append(&header, data).unwrap();
        } else {
            // Long names go through the builder, which emits a GNU long-name entry.
            self.builder.append_data(&mut header, path, data).unwrap();
        }
        self
    }

    pub(crate) fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.append(Self::header(tar::EntryType::Directory, mode, 0), path, b"")
    }

    pub(crate) fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.file_with(path, 0o644, 0, 0, data)
    }

    pub(crate) fn file_with(&mut self, path: &str, mode: u32, uid: u64, gid: u64, data: &[u8]) -> &mut Self {
        let mut header = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        header.set_uid(uid);
        header.set_gid(gid);
        self.append(header, path, data)
    }

    /// A PAX header carrying `SCHILY.xattr.<name>` records for the next entry.
    pub(crate) fn xattrs(&mut self, xattrs: &[(&str, &[u8])]) -> &mut Self {
        let records: Vec<(String, &[u8])> =
            xattrs.iter().map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v)).collect();
        self.builder.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v))).unwrap();
        self
    }

    fn link(&mut self, kind: tar::EntryType, path: &str, target: &str) -> &mut Self {
        let mut header = Self::header(kind, 0o777, 0);
        header.set_link_name(target).unwrap_or_else(|_| {
            // Absolute or `..` targets: set the raw bytes.
            let name = &mut header.as_old_mut().linkname;
            name.fill(0);
            name[..target.len()].copy_from_slice(target.as_bytes());
        });
        self.append(header, path, b"")
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.link(tar::EntryType::Symlink, path, target)
    }

    pub(crate) fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.link(tar::EntryType::Link, path, target)
    }

    pub(crate) fn chardev(&mut self, path: &str, major: u32, minor: u32) -> &mut Self {
        let mut header = Self::header(tar::EntryType::Char, 0o666, 0);
        header.set_device_major(major).unwrap();
        header.set_device_minor(minor).unwrap();
        self.append(header, path, b"")
    }

    pub(crate) fn fifo(&mut self, path: &str) -> &mut Self {
        self.append(Self::header(tar::EntryType::Fifo, 0o600, 0), path, b"")
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

/// A one-file layer.
pub(crate) fn simple_layer(path: &str, data: &[u8]) -> Vec<u8> {
    LayerBuilder::new().file(path, data).finish()
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

pub(crate) fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// An image config JSON for uncompressed layers `tars`.
pub(crate) fn config_json(cmd: &str, tars: &[&[u8]]) -> Vec<u8> {
    let diff_ids: Vec<String> = tars.iter().map(|t| Digest::sha256_of(t).to_string()).collect();
    serde_json::to_vec(&json!({
        "architecture": super::oci::host_platform().1,
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": [cmd], "WorkingDir": "/", "Labels": {"a": "b"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// The files of an archive, written either as a tar file or as a directory.
#[derive(Default, Clone)]
pub(crate) struct Layout {
    files: BTreeMap<String, Vec<u8>>,
    symlinks: BTreeMap<String, String>,
}

impl Layout {
    pub(crate) fn add(&mut self, name: &str, data: impl Into<Vec<u8>>) -> &mut Self {
        self.files.insert(name.to_owned(), data.into());
        self
    }

    pub(crate) fn add_json(&mut self, name: &str, value: serde_json::Value) -> &mut Self {
        self.add(name, serde_json::to_vec(&value).unwrap())
    }

    pub(crate) fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.symlinks.insert(name.to_owned(), target.to_owned());
        self
    }

    /// Stores `data` as an OCI blob and returns its digest.
    pub(crate) fn add_blob(&mut self, data: &[u8]) -> Digest {
        let digest = Digest::sha256_of(data);
        self.add(&digest.blob_path(), data);
        digest
    }

    pub(crate) fn get(&self, name: &str) -> &[u8] {
        &self.files[name]
    }

    pub(crate) fn remove(&mut self, name: &str) -> &mut Self {
        self.files.remove(name);
        self
    }

    pub(crate) fn write_tar(&self, path: &Path) {
        let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
        for (name, data) in &self.files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, &data[..]).unwrap();
        }
        for (name, target) in &self.symlinks {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, name, target).unwrap();
        }
        builder.finish().unwrap();
    }

    pub(crate) fn write_dir(&self, path: &Path) {
        for (name, data) in &self.files {
            let file = path.join(name);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, data).unwrap();
        }
        for (name, target) in &self.symlinks {
            let link = path.join(name);
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, link).unwrap();
        }
    }
}

/// A classic `docker save` archive: `manifest.json`, `<hex>.json` configs, `<n>/layer.tar`.
/// `images` is (RepoTags, uncompressed layer tars).
pub(crate) fn docker_archive(images: &[(&[&str], &[&[u8]])]) -> Layout {
    let mut layout = Layout::default();
    let mut manifest = Vec::new();
    for (i, (tags, tars)) in images.iter().enumerate() {
        let config = config_json(&format!("cmd{i}"), tars);
        let config_name = format!("{}.json", Digest::sha256_of(&config).hex());
        layout.add(&config_name, config);
        let mut layers = Vec::new();
        for (j, tar) in tars.iter().enumerate() {
            let name = format!("img{i}layer{j}/layer.tar");
            layout.add(&name, *tar);
            layers.push(name);
        }
        manifest.push(json!({"Config": config_name, "RepoTags": tags, "Layers": layers}));
    }
    layout.add_json("manifest.json", json!(manifest));
    layout
}

/// What Docker 25+ `docker save` writes: an OCI layout plus a `manifest.json` pointing into
/// `blobs/sha256/`.
pub(crate) fn docker25_archive(tag: &str, tars: &[&[u8]]) -> Layout {
    let mut layout = Layout::default();
    let config = layout.add_blob(&config_json("sh", tars));
    let layers: Vec<Digest> = tars.iter().map(|t| layout.add_blob(t)).collect();
    let manifest = layout.add_blob(
        &serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config.to_string(), "size": 1},
            "layers": layers.iter().map(|d| json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": d.to_string(), "size": 1})).collect::<Vec<_>>(),
        }))
        .unwrap(),
    );
    layout.add_json("oci-layout", json!({"imageLayoutVersion": "1.0.0"}));
    layout.add_json(
        "index.json",
        json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest.to_string(), "size": 1,
            "annotations": {"io.containerd.image.name": format!("docker.io/library/{tag}")}}]}),
    );
    layout.add_json(
        "manifest.json",
        json!([{"Config": config.blob_path(), "RepoTags": [tag],
                "Layers": layers.iter().map(Digest::blob_path).collect::<Vec<_>>()}]),
    );
    // Docker 25 also keeps legacy-looking symlinked layer dirs; they must not confuse us.
    layout.symlink(&format!("{}/layer.tar", layers[0].hex()), &format!("../{}", layers[0].blob_path()));
    layout
}

/// `download-frozen-image-v2.sh` output without `manifest.json`: gzip data named `layer.tar`,
/// v1 ids linked by `parent`, `repositories`. Layers are given bottom to top.
pub(crate) fn legacy_archive(repo_tag: Option<(&str, &str)>, blobs: &[Vec<u8>]) -> Layout {
    let mut layout = Layout::default();
    let mut parent: Option<String> = None;
    for (i, blob) in blobs.iter().enumerate() {
        // Ids in reverse order of the layers, so directory order says nothing about layer order.
        let id = format!("{:064x}", 1000 - i);
        layout.add(&format!("{id}/layer.tar"), blob.clone());
        layout.add(&format!("{id}/VERSION"), "1.0");
        let mut json = json!({"id": id, "created": "2020-01-01T00:00:00Z"});
        if let Some(p) = &parent {
            json["parent"] = json!(p);
        }
        if i == blobs.len() - 1 {
            json["config"] = json!({"Cmd": ["legacy"], "Env": null});
            json["architecture"] = json!("amd64");
            json["os"] = json!("linux");
        }
        layout.add_json(&format!("{id}/json"), json);
        parent = Some(id);
    }
    if let (Some((repo, tag)), Some(top)) = (repo_tag, parent) {
        layout.add_json("repositories", json!({ repo: { tag: top } }));
    }
    layout
}

/// An OCI layout whose `index.json` points at a multi-platform index: this host's manifest with
/// the given layer blobs, plus an arm/v5 manifest and an attestation manifest (unknown/unknown).
pub(crate) fn oci_multiplatform(name: &str, tars: &[&[u8]], blobs: &[Vec<u8>]) -> Layout {
    let mut layout = Layout::default();
    let config = layout.add_blob(&config_json("oci", tars));
    let layers: Vec<(Digest, usize)> = blobs.iter().map(|b| (layout.add_blob(b), b.len())).collect();
    let host = layout.add_blob(
        &serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config.to_string(), "size": 1},
            "layers": layers.iter().map(|(d, size)| json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": d.to_string(), "size": size})).collect::<Vec<_>>(),
        }))
        .unwrap(),
    );
    // Other platforms' manifests are never read, so their blobs need not exist.
    let absent = Digest::sha256_of(b"not here");
    let (_, arch, _) = super::oci::host_platform();
    let nested = layout.add_blob(
        &serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "digest": absent.to_string(), "size": 1,
                 "platform": {"os": "linux", "architecture": "arm", "variant": "v5"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "digest": host.to_string(), "size": 1,
                 "platform": {"os": "linux", "architecture": arch}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "digest": absent.to_string(), "size": 1,
                 "platform": {"os": "unknown", "architecture": "unknown"}},
            ],
        }))
        .unwrap(),
    );
    layout.add_json("oci-layout", json!({"imageLayoutVersion": "1.0.0"}));
    layout.add_json(
        "index.json",
        json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": nested.to_string(), "size": 1,
            "annotations": {"org.opencontainers.image.ref.name": name}}]}),
    );
    layout
}
