//! The content store: manifests, configs and layer blobs by digest, and a name index, kept as an
//! OCI image layout under `STORE/content` (as containerd's content store), so that the archive
//! reader opens it like any layout and a stored image runs by name.
//!
//! ```text
//! content/oci-layout, index.json     the layout; index.json names each image's manifest
//!                                    (io.containerd.image.name = the full reference)
//! content/blobs/sha256/<hex>         verified blobs, written once, read-only
//! content/ingest/<hex>               a blob being downloaded (kept to resume it)
//! ```
//!
//! A blob appears under `blobs/` only once its digest matched (renamed from `ingest/`); the index
//! is rewritten whole (to a temporary file, renamed) under the content lock.

use super::error::io_err;
use super::lock::{LockFile, LockMode};
use super::{sync_dir, write_atomic, StoreError};
use crate::image::{Digest, DigestReader, Hasher, ImageConfig};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The annotations that carry a stored image's full reference: containerd's, and the OCI one
/// (which `oci:` readers such as skopeo match).
pub const NAME_ANNOTATION: &str = "io.containerd.image.name";
const REF_ANNOTATION: &str = "org.opencontainers.image.ref.name";

pub struct Content {
    root: PathBuf,
}

impl Content {
    /// Opens (and makes, the first time) the content store of the store at `store_root`.
    pub fn open(store_root: &Path) -> Result<Content, StoreError> {
        let root = store_root.join("content");
        for dir in [root.join("blobs/sha256"), root.join("ingest"), root.join("locks")] {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(io_err("mkdir", &dir))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            write_atomic(&index, br#"{"schemaVersion":2,"manifests":[]}"#)?;
        }
        Ok(Content { root })
    }

    /// The layout's directory, for the archive reader.
    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join(digest.algorithm().name()).join(digest.hex())
    }

    /// Where the layer store keeps the layer whose diff_id is `digest`.
    /// Whether the layer store keeps an unpacked layer with this diff_id and its tar-split.
    fn has_split(&self, diff_id: &Digest) -> bool {
        self.layer_home(diff_id).join(super::split::FILE_NAME).exists()
    }

    /// The diff_ids a stored config lists.
    fn diff_ids(&self, config: &Digest) -> Result<Vec<Digest>, StoreError> {
        let path = self.blob_path(config);
        let bytes = fs::read(&path).map_err(io_err("read", &path))?;
        let config: ImageConfig = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt { path, reason: e.to_string() })?;
        Ok(config.diff_ids().unwrap_or_default().to_vec())
    }

    fn layer_home(&self, digest: &Digest) -> PathBuf {
        let store = self.root.parent().unwrap_or(&self.root);
        store.join("layers").join(digest.algorithm().name()).join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Stores `bytes` as the blob `digest` (a manifest or config fetched whole), checked first.
    pub fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        let actual = digest.compute_same(bytes);
        if actual != *digest {
            return Err(StoreError::DigestMismatch {
                layer: format!("blob {digest}"),
                what: "content digest",
                expected: digest.clone(),
                actual,
            });
        }
        if !self.has_blob(digest) {
            write_atomic(&self.blob_path(digest), bytes)?;
        }
        Ok(())
    }

    /// Starts (or resumes) writing the blob `digest`; only one writer at a time per blob (the
    /// lock waits for another pull's). None: the blob is there (another pull stored it).
    pub fn ingest(&self, digest: &Digest, size: Option<u64>) -> Result<Option<Ingest<'_>>, StoreError> {
        let lock = LockFile::acquire(
            &self.root.join("locks").join(format!("{}.lock", digest.hex())),
            LockMode::Exclusive,
        )?;
        if self.has_blob(digest) {
            return Ok(None);
        }
        let path = self.root.join("ingest").join(digest.hex());
        let mut file = fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        // What an earlier, interrupted download left is hashed again and kept.
        let mut hasher = Hasher::new(digest.algorithm());
        let mut written = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf).map_err(io_err("read", &path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            written += n as u64;
        }
        if size.is_some_and(|s| written > s) {
            file.set_len(0).map_err(io_err("truncate", &path))?;
            hasher = Hasher::new(digest.algorithm());
            written = 0;
        }
        Ok(Some(Ingest {
            content: self,
            digest: digest.clone(),
            size,
            path,
            file,
            hasher,
            written,
            _lock: lock,
        }))
    }

    /// The manifest descriptor stored under `name` (a full reference), if any.
    pub fn lookup(&self, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let index = self.read_index()?;
        Ok(index["manifests"].as_array().and_then(|m| {
            m.iter().find(|d| d["annotations"][NAME_ANNOTATION].as_str() == Some(name)).cloned()
        }))
    }

    /// Each stored image name (a full reference) with its image ID, the digest of the config its
    /// manifest names (None when the manifest cannot be read).
    pub fn names(&self) -> Result<Vec<(String, Option<Digest>)>, StoreError> {
        let index = self.read_index()?;
        let config_of = |descriptor: &serde_json::Value| -> Option<Digest> {
            let manifest: Digest = descriptor["digest"].as_str()?.parse().ok()?;
            let bytes = fs::read(self.blob_path(&manifest)).ok()?;
            let manifest: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            manifest["config"]["digest"].as_str()?.parse().ok()
        };
        Ok(index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| Some((d["annotations"][NAME_ANNOTATION].as_str()?.to_string(), config_of(d))))
            .collect())
    }

    /// Names a manifest: `name` (the full reference) now points at `descriptor`, replacing what
    /// it pointed at before.
    pub fn tag(&self, name: &str, mut descriptor: serde_json::Value) -> Result<(), StoreError> {
        let _lock = LockFile::acquire(&self.root.join("locks/index.lock"), LockMode::Exclusive)?;
        let mut index = self.read_index()?;
        let mut annotations = serde_json::Map::new();
        annotations.insert(NAME_ANNOTATION.into(), name.into());
        annotations.insert(REF_ANNOTATION.into(), name.into());
        descriptor["annotations"] = annotations.into();
        let manifests = index["manifests"].as_array_mut().ok_or_else(|| StoreError::Corrupt {
            path: self.root.join("index.json"),
            reason: "no manifests list".into(),
        })?;
        manifests.retain(|d| d["annotations"][NAME_ANNOTATION].as_str() != Some(name));
        manifests.push(descriptor);
        let bytes = serde_json::to_vec_pretty(&index).expect("index serializes");
        write_atomic(&self.root.join("index.json"), &bytes)
    }

    /// Names an archive's image here (`load`): its config, and an OCI manifest whose layers are
    /// the uncompressed tars, by diff_id (the layer store holds them unpacked), under each of
    /// `names` (full references). Returns the manifest's digest.
    pub fn import(
        &self,
        config: &[u8],
        config_digest: &Digest,
        layers: &[(Digest, u64)],
        names: &[String],
    ) -> Result<Digest, StoreError> {
        self.put(config_digest, config)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.to_string(),
                "size": config.len(),
            },
            "layers": layers.iter().map(|(diff_id, size)| serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": diff_id.to_string(),
                "size": size,
            })).collect::<Vec<_>>(),
        });
        let bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
        let digest = Digest::sha256_of(&bytes);
        self.put(&digest, &bytes)?;
        for name in names {
            let descriptor = serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest.to_string(),
                "size": bytes.len(),
            });
            self.tag(name, descriptor)?;
        }
        Ok(digest)
    }

    /// Writes the images `names` (full references, each with the name it is shown by) to `out` as
    /// an archive `docker load` and `podman load` take: manifest.json (Docker's index, with
    /// RepoTags) over an OCI layout (oci-layout, index.json, blobs/sha256/), as Docker 25 writes.
    /// The blobs must be here (a pulled image's are; a layer that was in the store already when
    /// the image came is not). Written to a temporary file, renamed into place when complete.
    pub fn save(&self, names: &[(String, String)], out: &Path) -> Result<(), StoreError> {
        let mut docker_index = Vec::new();
        let mut oci_index = Vec::new();
        let mut blobs: Vec<Digest> = Vec::new();
        // Manifests written for this archive only (see below), by digest.
        let mut made: std::collections::HashMap<Digest, Vec<u8>> = std::collections::HashMap::new();
        for (name, shown) in names {
            let descriptor = self.lookup(name)?.ok_or_else(|| StoreError::Corrupt {
                path: self.root.join("index.json"),
                reason: format!("no image {name} in the store"),
            })?;
            let digest: Digest =
                descriptor["digest"].as_str().unwrap_or("").parse().map_err(|_| StoreError::Corrupt {
                    path: self.root.join("index.json"),
                    reason: format!("{name}: bad digest"),
                })?;
            let manifest: serde_json::Value = serde_json::from_slice(
                &fs::read(self.blob_path(&digest)).map_err(io_err("read", &self.blob_path(&digest)))?,
            )
            .map_err(|e| StoreError::Corrupt { path: self.blob_path(&digest), reason: e.to_string() })?;
            let digest_of = |v: &serde_json::Value| -> Result<Digest, StoreError> {
                v["digest"].as_str().unwrap_or("").parse().map_err(|_| StoreError::Corrupt {
                    path: self.blob_path(&digest),
                    reason: "a descriptor without a digest (an index?)".into(),
                })
            };
            let config = digest_of(&manifest["config"])?;
            let mut layers = manifest["layers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(digest_of)
                .collect::<Result<Vec<_>, _>>()?;
            let mut descriptor = descriptor;
            let mut digest = digest;
            // A compressed layer that was unpacked already when the image came was not
            // downloaded: it is saved as its plain tar (made again from its tar-split, digest =
            // diff_id) under a manifest rewritten to name it, as `docker save` writes layers.
            let unkept: Vec<usize> = (0..layers.len())
                .filter(|&i| !self.has_blob(&layers[i]) && !self.has_split(&layers[i]))
                .collect();
            if !unkept.is_empty() {
                let diff_ids = self.diff_ids(&config)?;
                let mut manifest = manifest.clone();
                let docker = manifest["mediaType"].as_str().is_some_and(|t| t.contains("docker"));
                for i in unkept {
                    let diff_id = diff_ids.get(i).filter(|d| self.has_split(d)).ok_or_else(|| StoreError::Corrupt {
                        path: self.blob_path(&layers[i]),
                        reason: format!(
                            "{name}: the store keeps neither layer blob {} nor a tar-split to make it again (a layer \
                             unpacked by an older spawner): pull the image into an empty store to save it",
                            layers[i]
                        ),
                    })?;
                    let home = self.layer_home(diff_id);
                    let (_, size) = super::split::Reassembled::open(&home)
                        .map_err(io_err("read", &home))?
                        .ok_or_else(|| io_err("open", &home)(io::Error::from(io::ErrorKind::NotFound)))?;
                    manifest["layers"][i] = serde_json::json!({
                        "mediaType": if docker { DOCKER_TAR } else { OCI_TAR },
                        "digest": diff_id.to_string(),
                        "size": size,
                    });
                    layers[i] = diff_id.clone();
                }
                let bytes = serde_json::to_vec(&manifest).expect("a manifest serializes");
                digest = Digest::sha256_of(&bytes);
                descriptor["digest"] = serde_json::json!(digest.to_string());
                descriptor["size"] = serde_json::json!(bytes.len());
                made.insert(digest.clone(), bytes);
            }
            for blob in std::iter::once(&config).chain(&layers) {
                if !self.has_blob(blob) && !self.has_split(blob) {
                    return Err(StoreError::Corrupt {
                        path: self.blob_path(blob),
                        reason: format!("{name}: the store does not keep blob {blob}"),
                    });
                }
            }
            let path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
            let tags: Vec<&str> = if shown.contains('@') { vec![] } else { vec![shown.as_str()] };
            docker_index.push(serde_json::json!({
                "Config": path(&config),
                "RepoTags": tags,
                "Layers": layers.iter().map(path).collect::<Vec<_>>(),
            }));
            let mut d = descriptor;
            d["annotations"] = serde_json::json!({ REF_ANNOTATION: shown, NAME_ANNOTATION: name });
            oci_index.push(d);
            blobs.push(digest);
            blobs.push(config);
            blobs.extend(layers);
        }
        blobs.sort();
        blobs.dedup();
        let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{}.tmp", out.file_name().and_then(|n| n.to_str()).unwrap_or("save")));
        let written = (|| -> Result<(), StoreError> {
            let file = fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
            let mut tar = tar::Builder::new(io::BufWriter::new(file));
            let mut add = |name: &str, size: u64, data: &mut dyn Read| -> Result<(), StoreError> {
                let mut header = tar::Header::new_ustar();
                header.set_size(size);
                header.set_mode(0o644);
                header.set_mtime(0);
                header.set_entry_type(tar::EntryType::Regular);
                tar.append_data(&mut header, name, data).map_err(io_err("write", &tmp))
            };
            add("oci-layout", 30, &mut &br#"{"imageLayoutVersion":"1.0.0"}"#[..])?;
            for blob in &blobs {
                let name = format!("blobs/sha256/{}", blob.hex());
                if let Some(bytes) = made.get(blob) {
                    add(&name, bytes.len() as u64, &mut &bytes[..])?;
                    continue;
                }
                let path = self.blob_path(blob);
                if !path.exists() {
                    let home = self.layer_home(blob);
                    let remade = super::split::Reassembled::open(&home).map_err(io_err("read", &home))?;
                    let Some((stream, size)) = remade else {
                        return Err(io_err("open", &path)(io::Error::from(io::ErrorKind::NotFound)));
                    };
                    let mut hashed = DigestReader::new(stream, blob.algorithm());
                    add(&name, size, &mut hashed)?;
                    let (digest, _, _) = hashed.finish().map_err(io_err("read", &home))?;
                    if digest != *blob {
                        return Err(StoreError::Corrupt {
                            path: home,
                            reason: format!("the layer made again is {digest}, not {blob}: its files changed since it was unpacked"),
                        });
                    }
                    continue;
                }
                let mut f = fs::File::open(&path).map_err(io_err("open", &path))?;
                let size = f.metadata().map_err(io_err("stat", &path))?.len();
                add(&name, size, &mut f)?;
            }
            let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": oci_index}))
                .expect("index serializes");
            add("index.json", index.len() as u64, &mut &index[..])?;
            let manifest = serde_json::to_vec(&docker_index).expect("manifest serializes");
            add("manifest.json", manifest.len() as u64, &mut &manifest[..])?;
            let buffered = tar.into_inner().map_err(io_err("write", &tmp))?;
            let file = buffered.into_inner().map_err(|e| io_err("write", &tmp)(e.into_error()))?;
            file.sync_all().map_err(io_err("fsync", &tmp))?;
            fs::rename(&tmp, out).map_err(io_err("rename", out))
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// Forgets the name `name` (a full reference). Returns whether it was there.
    pub fn untag(&self, name: &str) -> Result<bool, StoreError> {
        let _lock = LockFile::acquire(&self.root.join("locks/index.lock"), LockMode::Exclusive)?;
        let mut index = self.read_index()?;
        let Some(manifests) = index["manifests"].as_array_mut() else { return Ok(false) };
        let before = manifests.len();
        manifests.retain(|d| d["annotations"][NAME_ANNOTATION].as_str() != Some(name));
        if manifests.len() == before {
            return Ok(false);
        }
        write_atomic(
            &self.root.join("index.json"),
            &serde_json::to_vec_pretty(&index).expect("index serializes"),
        )?;
        Ok(true)
    }

    /// Removes every blob no named image reaches (through its index, manifest, config and
    /// layers) and every unfinished download. Only with the store held exclusively (no pull is
    /// running then). Returns how many blobs went.
    pub fn prune(&self) -> Result<usize, StoreError> {
        let mut reachable = std::collections::HashSet::new();
        let mut pending: Vec<String> = self.read_index()?["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["digest"].as_str().map(str::to_string))
            .collect();
        while let Some(digest) = pending.pop() {
            if !reachable.insert(digest.clone()) {
                continue;
            }
            let Ok(d) = digest.parse::<Digest>() else { continue };
            let Ok(bytes) = fs::read(self.blob_path(&d)) else { continue };
            let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else { continue };
            let children = doc["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(doc["layers"].as_array().into_iter().flatten());
            pending.extend(
                children
                    .chain(std::iter::once(&doc["config"]))
                    .filter_map(|c| c["digest"].as_str().map(str::to_string)),
            );
        }
        let mut removed = 0;
        let blobs = self.root.join("blobs/sha256");
        for entry in fs::read_dir(&blobs).map_err(io_err("readdir", &blobs))?.flatten() {
            let name = format!("sha256:{}", entry.file_name().to_string_lossy());
            if !reachable.contains(&name) {
                fs::remove_file(entry.path()).map_err(io_err("unlink", &entry.path()))?;
                removed += 1;
            }
        }
        let ingest = self.root.join("ingest");
        for entry in fs::read_dir(&ingest).map_err(io_err("readdir", &ingest))?.flatten() {
            fs::remove_file(entry.path()).map_err(io_err("unlink", &entry.path()))?;
        }
        Ok(removed)
    }

    fn read_index(&self) -> Result<serde_json::Value, StoreError> {
        let path = self.root.join("index.json");
        let bytes = fs::read(&path).map_err(io_err("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt { path, reason: e.to_string() })
    }
}

/// Bytes of a blob written between two starts of its writeback.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// Media types of a plain (uncompressed) layer tar.
const OCI_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const DOCKER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// A blob being written: bytes are hashed as they go to `ingest/`, and [`Ingest::commit`] moves
/// the file under `blobs/` only when the digest (and size) match.
pub struct Ingest<'a> {
    content: &'a Content,
    digest: Digest,
    size: Option<u64>,
    path: PathBuf,
    file: fs::File,
    hasher: Hasher,
    written: u64,
    _lock: LockFile,
}

impl Ingest<'_> {
    /// Bytes already there (to resume from).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends `bytes` (as they came from the registry) to the blob. An `io::Error` when they
    /// would make it longer than its descriptor says (the source's fault); a `StoreError` when
    /// the file cannot be written.
    pub fn append(&mut self, bytes: &[u8]) -> Result<Result<(), io::Error>, StoreError> {
        if self.size.is_some_and(|s| self.written + bytes.len() as u64 > s) {
            return Ok(Err(io::Error::other(format!(
                "more than the {} bytes its descriptor gives",
                self.size.unwrap_or(0)
            ))));
        }
        self.file.write_all(bytes).map_err(io_err("write", &self.path))?;
        self.hasher.update(bytes);
        let before = self.written;
        self.written += bytes.len() as u64;
        if before / WRITEBACK_EVERY != self.written / WRITEBACK_EVERY {
            // Best effort, as the unpacker does for big files: commit's fsync waits for less.
            use std::os::fd::AsFd;
            let _ = rawsys::start_writeback(self.file.as_fd());
        }
        Ok(Ok(()))
    }

    /// Bytes already written, from `offset` on (to replay what an earlier, interrupted
    /// download left).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
    }

    /// Checks the digest and size, and publishes the blob. A mismatch removes what was written.
    pub fn commit(self) -> Result<(), StoreError> {
        let actual = self.hasher.finish();
        if actual != self.digest || self.size.is_some_and(|s| s != self.written) {
            let _ = fs::remove_file(&self.path);
            return Err(StoreError::DigestMismatch {
                layer: format!("blob {}", self.digest),
                what: "content digest",
                expected: self.digest.clone(),
                actual,
            });
        }
        self.file.sync_all().map_err(io_err("fsync", &self.path))?;
        let target = self.content.blob_path(&self.digest);
        fs::rename(&self.path, &target).map_err(io_err("rename", &target))?;
        sync_dir(target.parent().expect("blob has a parent"))
    }
}
