//! The content-addressed layer store: each layer unpacked once, keyed by its diff_id (the sha256
//! of its uncompressed tar), shared by every image and every run that uses it.
//!
//! # Layout under the root (e.g. `/var/lib/spawner`)
//! ```text
//! layers/sha256/<hex>/diff/        the unpacked tree, in overlayfs form (a lowerdir)
//! layers/sha256/<hex>/layer.json   diff_id, tar size, blob digest, tree digest, where it came from
//! images/<config-hex>.json         an image's names and layers (for `images` and `prune`)
//! by-blob/sha256/<hex>             diff_id of a blob, for layouts whose config has no diff_ids
//! locks/store.lock                 shared while ensuring, exclusive while pruning
//! locks/sha256-<hex>.lock          held while unpacking that layer
//! tmp/                             unpacks in progress
//! ```
//!
//! # Guarantees
//! * A layer directory is either absent or complete: a layer is unpacked into `tmp/`, synced,
//!   and renamed into `layers/` only after its digest matched. Any failure removes the partial
//!   unpack; a crash leaves only `tmp/` debris, which [`LayerStore::prune`] clears.
//! * Concurrent runs (threads or processes) unpack a layer once: the per-layer lock is taken and
//!   the layer re-checked before unpacking.
//! * Layer content is what the image says: the uncompressed stream must hash to the config's
//!   `rootfs.diff_ids` entry, and a compressed blob to its OCI descriptor digest.
//! * A layer stays what was unpacked: its tree's digest (`tree.rs`) is recorded when it is
//!   unpacked, and [`LayerStore::verify`] (`spawner images --verify`) re-hashes every layer.

pub mod content;
mod error;
mod lock;
mod split;
mod tree;
mod unpack;

#[cfg(test)]
mod breakouts;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::image::{Algorithm, Archive, Decompressor, Digest, DigestReader, Image, LayerRef};
use error::io_err;
pub use error::StoreError;
use lock::{LockFile, LockMode};

/// Read buffer for hashing a whole blob.
const HASH_BUFFER: usize = 1 << 20;

/// An image the store has recorded, as [`LayerStore::list_images`] returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredImage {
    /// sha256 of the image config: Docker's image ID.
    pub config_digest: Digest,
    /// Every name the image was seen under.
    pub names: Vec<String>,
    /// diff_ids, bottom to top.
    pub layers: Vec<Digest>,
    /// The config's `created`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// A shared hold on the store (see [`LayerStore::hold`]).
pub struct StoreHold {
    _lock: LockFile,
}

/// What [`LayerStore::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Layers no recorded image used.
    pub removed_layers: Vec<Digest>,
    /// Leftovers of interrupted unpacks in `tmp/`.
    pub removed_scratch: usize,
    /// Content-store blobs no named image reaches.
    pub removed_blobs: usize,
}

/// What [`LayerStore::verify`] found, layer by layer and image by image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Every layer in the store, with what is wrong with it (`None`: intact).
    pub layers: Vec<(Digest, Option<String>)>,
    /// Recorded images that name a layer the store does not have, with those layers.
    pub incomplete_images: Vec<(StoredImage, Vec<Digest>)>,
}

impl VerifyReport {
    /// Whether every layer is intact and every image complete.
    pub fn is_ok(&self) -> bool {
        self.layers.iter().all(|(_, problem)| problem.is_none()) && self.incomplete_images.is_empty()
    }
}

/// `layer.json`, written beside each unpacked tree.
#[derive(Debug, Serialize, Deserialize)]
struct LayerInfo {
    diff_id: Digest,
    /// Bytes in the uncompressed tar.
    tar_size: u64,
    #[serde(default)]
    blob_digest: Option<Digest>,
    /// `archive: member` the layer was first unpacked from; for humans.
    source: String,
    /// Digest of the unpacked tree (see `tree.rs`); what `verify` checks the layer against.
    /// Absent for layers unpacked before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tree_digest: Option<Digest>,
    /// How `tree_digest` takes file contents (see `tree.rs`): 1 (absent in older records) or 2.
    #[serde(default = "first_tree_format")]
    tree_format: u32,
}

fn first_tree_format() -> u32 {
    1
}

/// A layer unpacked in `tmp/`, not yet in place, with the `layer.json` it will get.
struct Unpacked {
    scratch: Scratch,
    info: LayerInfo,
}

/// A directory in `tmp/` that is removed on drop unless moved into place.
struct Scratch {
    path: PathBuf,
    armed: bool,
}

impl Scratch {
    fn create(tmp: &Path, label: &str) -> Result<Scratch, StoreError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = tmp.join(format!("{label}-{}-{n}", std::process::id()));
        fs::DirBuilder::new().mode(0o700).create(&path).map_err(io_err("mkdir", &path))?;
        let scratch = Scratch { path, armed: true };
        let diff = scratch.diff();
        fs::DirBuilder::new().mode(0o755).create(&diff).map_err(io_err("mkdir", &diff))?;
        Ok(scratch)
    }

    fn diff(&self) -> PathBuf {
        self.path.join("diff")
    }

    /// Renames the scratch directory to `dest`, which must not exist.
    fn persist(mut self, dest: &Path) -> Result<(), StoreError> {
        fs::rename(&self.path, dest).map_err(io_err("rename", dest))?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = fs::remove_dir_all(&self.path) {
                log::warn!("removing {}: {e}", self.path.display());
            }
        }
    }
}

/// Bounds on what an (untrusted) image may make the store write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes the layers unpacked for one image may hold: the larger of each layer's
    /// uncompressed tar stream and what it writes (file content, sparse files' holes included,
    /// plus 4 KiB for each entry's inode and name), summed over the layers
    /// [`LayerStore::ensure_image`] unpacks. Layers already in the store were checked when they
    /// came in and are not counted again.
    pub max_image_bytes: u64,
}

impl Limits {
    /// `--max-image-size`'s default.
    pub const DEFAULT_MAX_IMAGE_BYTES: u64 = 20 << 30;
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_image_bytes: Limits::DEFAULT_MAX_IMAGE_BYTES }
    }
}

/// The layer store under one root directory. `Sync`: one store may be used from many threads.
pub struct LayerStore {
    root: PathBuf,
    limits: Limits,
    unpacked: AtomicUsize,
}

impl LayerStore {
    /// Opens the store at `root` with the default [`Limits`], creating its directories if needed.
    pub fn open(root: impl AsRef<Path>) -> Result<LayerStore, StoreError> {
        LayerStore::open_with(root, Limits::default())
    }

    /// Opens the store at `root`, creating its directories if needed.
    pub fn open_with(root: impl AsRef<Path>, limits: Limits) -> Result<LayerStore, StoreError> {
        let root = root.as_ref().to_path_buf();
        // Layers hold setuid binaries and device nodes owned by whoever the image says: keep
        // other host users out of the whole tree.
        for (dir, mode) in [
            (root.clone(), 0o711),
            (root.join("layers"), 0o700),
            (root.join("layers/sha256"), 0o700),
            (root.join("images"), 0o700),
            (root.join("by-blob/sha256"), 0o700),
            (root.join("locks"), 0o700),
            (root.join("tmp"), 0o700),
        ] {
            fs::DirBuilder::new().recursive(true).mode(mode).create(&dir).map_err(io_err("mkdir", &dir))?;
        }
        let store = LayerStore { root, limits, unpacked: AtomicUsize::new(0) };
        // If nobody else is using the store, whatever is in tmp/ is left from a crash.
        if let Some(_alone) = LockFile::try_acquire(&store.store_lock(), LockMode::Exclusive)? {
            store.clear_scratch()?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The unpacked tree of a layer (whether or not it exists): usable as an overlayfs lowerdir.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layer_home(diff_id).join("diff")
    }

    /// Whether the layer is in the store (complete: only complete layers are ever in place).
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        // Not following a symlink: one in place of a layer is not a layer (and is refused by
        // `checked_layer_dir` rather than unpacked over).
        fs::symlink_metadata(self.layer_home(diff_id)).is_ok_and(|m| !m.file_type().is_symlink())
            && self.layer_dir(diff_id).is_dir()
    }

    /// Holds off [`LayerStore::prune`] until dropped: taken before a container's layers are
    /// ensured and kept until the container has put them on record.
    pub fn hold(&self) -> Result<StoreHold, StoreError> {
        Ok(StoreHold { _lock: self.lock_store(LockMode::Shared)? })
    }

    /// The bytes of a layer's uncompressed tar, as recorded when it was unpacked.
    pub fn layer_size(&self, diff_id: &Digest) -> Option<u64> {
        read_json::<LayerInfo>(&self.layer_home(diff_id).join("layer.json")).ok().map(|i| i.tar_size)
    }

    /// Forgets `name` (and, when it was the image's last name, the image). Returns the image it
    /// named, if any. Its layers stay until [`LayerStore::prune`].
    pub fn untag(&self, name: &str) -> Result<Option<StoredImage>, StoreError> {
        let _store = self.lock_store(LockMode::Shared)?;
        for mut image in self.list_images()? {
            let before = image.names.len();
            image.names.retain(|n| !crate::image::reference_matches(name, n));
            if image.names.len() == before {
                continue;
            }
            let path = self.image_record(&image.config_digest);
            if image.names.is_empty() {
                fs::remove_file(&path).map_err(io_err("unlink", &path))?;
            } else {
                write_atomic(&path, &serde_json::to_vec_pretty(&image).expect("image record serializes"))?;
            }
            return Ok(Some(image));
        }
        Ok(None)
    }

    /// How many layers this handle has unpacked (not found already present) since it was opened.
    pub fn layers_unpacked(&self) -> usize {
        self.unpacked.load(Ordering::Relaxed)
    }

    /// Makes sure every layer of `image` is in the store, unpacking the missing ones from
    /// `archive`, and records the image. Returns the layer directories bottom to top.
    pub fn ensure_image(&self, archive: &Archive, image: &Image) -> Result<Vec<PathBuf>, StoreError> {
        let _store = self.lock_store(LockMode::Shared)?;
        let mut diff_ids = Vec::with_capacity(image.layers.len());
        let mut budget = self.limits.max_image_bytes;
        for layer in &image.layers {
            diff_ids.push(self.ensure_layer(archive, layer, &mut budget)?);
        }
        self.record_image(image, &diff_ids)?;
        diff_ids.iter().map(|d| self.checked_layer_dir(d)).collect()
    }

    /// The bytes one image may unpack, for [`LayerStore::unpack_streamed`].
    pub fn image_budget(&self) -> AtomicU64 {
        AtomicU64::new(self.limits.max_image_bytes)
    }

    /// A layer's directory for a container to use, checked to be the store's own: the layer's home
    /// and its tree real directories (not symlinks to anywhere) owned by the user the store runs
    /// as. A layer directory that something replaced is refused, never mounted.
    pub fn checked_layer_dir(&self, diff_id: &Digest) -> Result<PathBuf, StoreError> {
        let me = rustix::process::geteuid().as_raw();
        let home = self.layer_home(diff_id);
        let diff = home.join("diff");
        for path in [&home, &diff] {
            let meta = fs::symlink_metadata(path).map_err(io_err("lstat", path))?;
            let reason = if meta.file_type().is_symlink() {
                "is a symlink".to_string()
            } else if !meta.is_dir() {
                "is not a directory".to_string()
            } else if meta.uid() != me {
                format!("is owned by uid {}, not {me}", meta.uid())
            } else {
                continue;
            };
            return Err(StoreError::Corrupt {
                path: path.clone(),
                reason: format!("{reason}: not the store's own layer directory, refusing to use it"),
            });
        }
        Ok(diff)
    }

    /// The images recorded by [`LayerStore::ensure_image`], by config digest.
    pub fn list_images(&self) -> Result<Vec<StoredImage>, StoreError> {
        let dir = self.root.join("images");
        let mut images = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("readdir", &dir))? {
            let entry = entry.map_err(io_err("readdir", &dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue; // a record being written
            }
            images.push(read_json::<StoredImage>(&entry.path())?);
        }
        images.sort_by(|a, b| a.config_digest.cmp(&b.config_digest));
        Ok(images)
    }

    /// Forgets an image (its layers stay until [`LayerStore::prune`]). Returns whether it was
    /// recorded.
    pub fn remove_image(&self, config_digest: &Digest) -> Result<bool, StoreError> {
        let path = self.image_record(config_digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("unlink", &path)(e)),
        }
    }

    /// The diff_ids of every layer in the store.
    pub fn list_layers(&self) -> Result<Vec<Digest>, StoreError> {
        let mut layers = Vec::new();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join("layers").join(algorithm.name());
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("readdir", &dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err("readdir", &dir))?;
                let name = entry.file_name();
                // Anything not named like a digest is not ours to judge; leave it.
                if let Ok(digest) = format!("{}:{}", algorithm.name(), name.to_string_lossy()).parse() {
                    layers.push(digest);
                }
            }
        }
        layers.sort();
        Ok(layers)
    }

    /// Re-hashes every layer's tree and compares it with the digest recorded when it was
    /// unpacked, checks that each `layer.json` belongs to its directory, and that each recorded
    /// image's layers are present. Runs beside [`LayerStore::ensure_image`] (layers in place never
    /// change); waits for a running [`LayerStore::prune`].
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let _store = self.lock_store(LockMode::Shared)?;
        let mut report = VerifyReport::default();
        for layer in self.list_layers()? {
            let problem = self.verify_layer(&layer).err();
            report.layers.push((layer, problem));
        }
        for image in self.list_images()? {
            let missing: Vec<Digest> = image.layers.iter().filter(|l| !self.has_layer(l)).cloned().collect();
            if !missing.is_empty() {
                report.incomplete_images.push((image, missing));
            }
        }
        Ok(report)
    }

    /// `Err(what is wrong)` when the layer is not as it was unpacked.
    fn verify_layer(&self, diff_id: &Digest) -> Result<(), String> {
        let info_path = self.layer_home(diff_id).join("layer.json");
        let info: LayerInfo = read_json(&info_path).map_err(|e| e.to_string())?;
        if info.diff_id != *diff_id {
            return Err(format!("{}: records layer {}", info_path.display(), info.diff_id));
        }
        let Some(recorded) = info.tree_digest else {
            return Err(format!(
                "{}: no tree digest recorded (unpacked by an older spawner); remove {} to have it \
                 unpacked afresh",
                info_path.display(),
                self.layer_home(diff_id).display()
            ));
        };
        let Some(format) = tree::Format::from_number(info.tree_format) else {
            return Err(format!("{}: unknown tree digest format {}", info_path.display(), info.tree_format));
        };
        let dir = self.layer_dir(diff_id);
        let actual = tree::tree_digest(&dir, format).map_err(|e| e.to_string())?;
        if actual != recorded {
            return Err(format!(
                "{}: files differ from what was unpacked (tree digest {actual}, recorded {recorded})",
                dir.display()
            ));
        }
        if format == tree::Format::SizeOnly {
            // The contents: the tar stream made again from them must be the layer's own.
            let home = self.layer_home(diff_id);
            let remade = split::Reassembled::open(&home)
                .and_then(|found| {
                    found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no tar-split"))
                })
                .and_then(|(stream, _)| DigestReader::new(stream, diff_id.algorithm()).finish());
            let problem = match remade {
                Ok((digest, _, _)) if digest == *diff_id => return Ok(()),
                Ok((digest, _, _)) => format!("their tar stream is {digest}"),
                Err(e) => e.to_string(),
            };
            return Err(format!("{}: files differ from what was unpacked ({problem})", dir.display()));
        }
        Ok(())
    }

    /// Removes layers that no recorded image uses, and debris of interrupted unpacks. Waits for
    /// running [`LayerStore::ensure_image`] calls to finish, and blocks new ones meanwhile.
    pub fn prune(&self) -> Result<PruneReport, StoreError> {
        self.prune_keeping(&|| Ok(HashSet::new()))
    }

    /// [`LayerStore::prune`], also keeping the layers `in_use` names (the containers' layers),
    /// asked once the store is locked: a container that holds [`LayerStore::hold`] until its
    /// layers are on record cannot lose one in between.
    pub fn prune_keeping(
        &self,
        in_use: &dyn Fn() -> Result<HashSet<Digest>, StoreError>,
    ) -> Result<PruneReport, StoreError> {
        let _store = self.lock_store(LockMode::Exclusive)?;
        let mut report = PruneReport::default();
        let tmp = self.root.join("tmp");
        report.removed_scratch = self.clear_scratch()?;
        let mut used: HashSet<Digest> =
            self.list_images()?.into_iter().flat_map(|image| image.layers).collect();
        used.extend(in_use()?);
        if self.root.join("content").exists() {
            report.removed_blobs = content::Content::open(&self.root)?.prune()?;
        }
        for layer in self.list_layers()? {
            if used.contains(&layer) {
                continue;
            }
            // Out of `layers/` in one rename, so a crash mid-removal cannot leave a partial
            // layer in place.
            let doomed = tmp.join(format!("prune-{}", layer.hex()));
            let home = self.layer_home(&layer);
            fs::rename(&home, &doomed).map_err(io_err("rename", &home))?;
            remove_any(&doomed)?;
            report.removed_layers.push(layer);
        }
        // Every lock but the store's: whoever takes one holds the store lock shared first, so
        // none is held or awaited now.
        let locks = self.root.join("locks");
        for entry in fs::read_dir(&locks).map_err(io_err("readdir", &locks))? {
            let entry = entry.map_err(io_err("readdir", &locks))?;
            if entry.file_name() != "store.lock" {
                remove_any(&entry.path())?;
            }
        }
        // Blob → diff_id notes for layers that are gone.
        let by_blob = self.root.join("by-blob/sha256");
        for entry in fs::read_dir(&by_blob).map_err(io_err("readdir", &by_blob))? {
            let path = entry.map_err(io_err("readdir", &by_blob))?.path();
            if !matches!(read_blob_note(&path), Ok(Some(diff_id)) if self.has_layer(&diff_id)) {
                remove_any(&path)?;
            }
        }
        Ok(report)
    }

    /// Empties `tmp/`. Only with the store lock held exclusively: then no unpack is running and
    /// everything there is debris.
    fn clear_scratch(&self) -> Result<usize, StoreError> {
        let tmp = self.root.join("tmp");
        let mut removed = 0;
        for entry in fs::read_dir(&tmp).map_err(io_err("readdir", &tmp))? {
            let path = entry.map_err(io_err("readdir", &tmp))?.path();
            remove_any(&path)?;
            removed += 1;
        }
        Ok(removed)
    }

    // ---- layers ----

    /// Makes one layer present; returns its diff_id.
    /// `budget`: bytes the image may still unpack; reduced by what this layer takes.
    fn ensure_layer(
        &self,
        archive: &Archive,
        layer: &LayerRef,
        budget: &mut u64,
    ) -> Result<Digest, StoreError> {
        if let Some(diff_id) = &layer.diff_id {
            if self.has_layer(diff_id) {
                return Ok(diff_id.clone());
            }
            let _lock = LockFile::acquire(&self.layer_lock(diff_id), LockMode::Exclusive)?;
            // Another run may have unpacked it while we waited.
            if self.has_layer(diff_id) {
                return Ok(diff_id.clone());
            }
            let unpacked = self.unpack(archive, layer, &lock_name(diff_id), budget)?;
            self.commit_checked(unpacked, diff_id)?;
            return Ok(diff_id.clone());
        }

        // No diff_id (legacy layout): the blob's digest identifies it until it is unpacked.
        let blob_digest = match &layer.blob_digest {
            Some(digest) => digest.clone(),
            None => self.hash_blob(archive, layer)?,
        };
        if let Some(diff_id) = self.diff_id_of_blob(&blob_digest)? {
            return Ok(diff_id);
        }
        let _blob_lock = LockFile::acquire(&self.blob_lock(&blob_digest), LockMode::Exclusive)?;
        if let Some(diff_id) = self.diff_id_of_blob(&blob_digest)? {
            return Ok(diff_id);
        }
        let unpacked = self.unpack(archive, layer, &format!("blob-{}", blob_digest.hex()), budget)?;
        let diff_id = unpacked.info.diff_id.clone();
        {
            // The same content may have come in under another blob (other compression).
            let _lock = LockFile::acquire(&self.layer_lock(&diff_id), LockMode::Exclusive)?;
            if !self.has_layer(&diff_id) {
                self.commit(unpacked)?;
            }
        }
        let note = self.blob_note(&blob_digest);
        write_atomic(&note, format!("{diff_id}\n").as_bytes())?;
        Ok(diff_id)
    }

    /// The diff_id recorded for a blob, if that layer is still present.
    fn diff_id_of_blob(&self, blob: &Digest) -> Result<Option<Digest>, StoreError> {
        Ok(read_blob_note(&self.blob_note(blob))?.filter(|diff_id| self.has_layer(diff_id)))
    }

    /// sha256 of a blob as stored, in one read.
    fn hash_blob(&self, archive: &Archive, layer: &LayerRef) -> Result<Digest, StoreError> {
        let blob = BufReader::with_capacity(HASH_BUFFER, archive.open_blob(layer)?);
        let (digest, _, _) = DigestReader::new(blob, Algorithm::Sha256)
            .finish()
            .map_err(|source| StoreError::LayerRead { layer: layer_label(archive, layer), source })?;
        Ok(digest)
    }

    /// Unpacks a layer into a fresh scratch directory, hashing it (and its compressed blob when
    /// that has a digest of its own to check), within `budget` bytes, which it reduces.
    fn unpack(
        &self,
        archive: &Archive,
        layer: &LayerRef,
        label: &str,
        budget: &mut u64,
    ) -> Result<Unpacked, StoreError> {
        let source = layer_label(archive, layer);
        let diff_algorithm = layer.diff_id.as_ref().map_or(Algorithm::Sha256, Digest::algorithm);
        // An uncompressed blob's digest is its diff_id, checked anyway; hash twice only when the
        // blob is something else (compressed).
        let blob_check = layer.blob_digest.as_ref().filter(|blob| Some(*blob) != layer.diff_id.as_ref());
        let blob = DigestReader::hashing_if(archive.open_blob(layer)?, blob_check.map(Digest::algorithm));
        // The decoder is chosen here, from the blob's first bytes, so that an unsupported one is
        // reported as such.
        let stream = archive.decompress(layer, blob)?;
        let (unpacked, blob_digest) =
            self.unpack_stream(stream, source, label, diff_algorithm, layer.blob_digest.clone(), budget)?;
        if let (Some(expected), Some(actual)) = (blob_check, blob_digest) {
            if actual != *expected {
                return Err(StoreError::DigestMismatch {
                    layer: unpacked.info.source,
                    what: "blob digest",
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        Ok(unpacked)
    }

    /// Unpacks a decoded layer stream into a fresh scratch directory with its `layer.json` to
    /// be; returns it with the blob's digest when the stream hashed the blob.
    fn unpack_stream<R: Read + Send>(
        &self,
        stream: Decompressor<BufReader<DigestReader<R>>>,
        source: String,
        label: &str,
        diff_algorithm: Algorithm,
        blob_digest: Option<Digest>,
        budget: &mut u64,
    ) -> Result<(Unpacked, Option<Digest>), StoreError> {
        let scratch = Scratch::create(&self.root.join("tmp"), label)?;
        log::debug!("unpacking {source} into {}", scratch.path.display());
        let done = unpack::unpack_layer(stream, &source, &scratch.diff(), diff_algorithm, *budget)?;
        *budget -= done.tar_size.max(done.written).min(*budget);
        let info = LayerInfo {
            diff_id: done.diff_id,
            tar_size: done.tar_size,
            blob_digest,
            source,
            tree_digest: Some(done.tree_digest),
            tree_format: done.tree_format.number(),
        };
        let split_path = scratch.path.join(split::FILE_NAME);
        fs::write(&split_path, &done.split).map_err(io_err("write", &split_path))?;
        Ok((Unpacked { scratch, info }, done.blob_digest))
    }

    /// Unpacks the layer `diff_id` from `blob` as its bytes arrive (a download), so that fetching,
    /// verifying and unpacking overlap. `blob_digest` is the blob's, recorded; `source` names it
    /// in errors. Once the layer's tar has ended, `finish` gets the blob reader to read the rest
    /// and check the blob's own digest; the layer is put in place only if that succeeds and the
    /// diff_id matches. Returns the reader, unread, when the layer is already there. `budget`:
    /// the bytes the image may still unpack (see [`LayerStore::image_budget`]), shared by layers
    /// unpacked at once and reduced by this one.
    pub fn unpack_streamed<R: Read + Send, E: From<StoreError>>(
        &self,
        diff_id: &Digest,
        blob_digest: &Digest,
        source: &str,
        budget: &AtomicU64,
        mut blob: R,
        finish: impl FnOnce(R) -> Result<(), E>,
    ) -> Result<Option<R>, E> {
        let _store = self.lock_store(LockMode::Shared)?;
        if self.has_layer(diff_id) {
            return Ok(Some(blob));
        }
        let _lock = LockFile::acquire(&self.layer_lock(diff_id), LockMode::Exclusive)?;
        if self.has_layer(diff_id) {
            return Ok(Some(blob));
        }
        let read_error = |e| StoreError::LayerRead { layer: source.to_owned(), source: e };
        let stream = Decompressor::sniffed(DigestReader::hashing_if(&mut blob, None), HASH_BUFFER)
            .map_err(read_error)?
            .map_err(|format| {
                read_error(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("{format} compression is not supported"),
                ))
            })?;
        let mut left = budget.load(Ordering::Relaxed);
        let before = left;
        let (unpacked, _) = self.unpack_stream(
            stream,
            source.to_owned(),
            &lock_name(diff_id),
            diff_id.algorithm(),
            Some(blob_digest.clone()),
            &mut left,
        )?;
        let used = before - left;
        let _ = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(b.saturating_sub(used)));
        finish(blob)?;
        self.commit_checked(unpacked, diff_id)?;
        Ok(None)
    }

    /// Moves an unpack into place if it is the layer `diff_id` names. The caller holds the
    /// layer's lock.
    fn commit_checked(&self, unpacked: Unpacked, diff_id: &Digest) -> Result<(), StoreError> {
        if unpacked.info.diff_id != *diff_id {
            return Err(StoreError::DigestMismatch {
                layer: unpacked.info.source,
                what: "diff_id",
                expected: diff_id.clone(),
                actual: unpacked.info.diff_id,
            });
        }
        self.commit(unpacked)
    }

    /// Moves a verified unpack into place. The caller holds the layer's lock.
    fn commit(&self, unpacked: Unpacked) -> Result<(), StoreError> {
        let Unpacked { scratch, info } = unpacked;
        let info_path = scratch.path.join("layer.json");
        let json = serde_json::to_vec_pretty(&info).expect("layer info serializes");
        // Synced like the tree (which unpacking synced already) before the rename publishes it.
        let mut file = fs::File::create(&info_path).map_err(io_err("create", &info_path))?;
        std::io::Write::write_all(&mut file, &json).map_err(io_err("write", &info_path))?;
        file.sync_all().map_err(io_err("fsync", &info_path))?;
        let home = self.layer_home(&info.diff_id);
        let parent = home.parent().expect("layer home has a parent");
        fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(io_err("mkdir", parent))?;
        scratch.persist(&home)?;
        sync_dir(parent)?;
        self.unpacked.fetch_add(1, Ordering::Relaxed);
        log::info!("unpacked layer {}", info.diff_id);
        Ok(())
    }

    // ---- images ----

    /// Writes (or extends with new names) the image's record; unchanged records are not
    /// rewritten.
    fn record_image(&self, image: &Image, layers: &[Digest]) -> Result<(), StoreError> {
        let path = self.image_record(&image.config_digest);
        let mut names: BTreeSet<String> = image.names.iter().cloned().collect();
        if path.exists() {
            let existing: StoredImage = read_json(&path)?;
            if existing.layers == layers && image.names.iter().all(|n| existing.names.contains(n)) {
                return Ok(());
            }
            names.extend(existing.names);
        }
        let record = StoredImage {
            config_digest: image.config_digest.clone(),
            names: names.into_iter().collect(),
            layers: layers.to_vec(),
            created: image.config.created.clone(),
        };
        let json = serde_json::to_vec_pretty(&record).expect("image record serializes");
        write_atomic(&path, &json)
    }

    // ---- paths and locks ----

    fn layer_home(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.algorithm().name()).join(diff_id.hex())
    }

    fn layer_lock(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("locks").join(format!("{}.lock", lock_name(diff_id)))
    }

    fn blob_lock(&self, blob: &Digest) -> PathBuf {
        self.root.join("locks").join(format!("blob-{}.lock", lock_name(blob)))
    }

    fn blob_note(&self, blob: &Digest) -> PathBuf {
        self.root.join("by-blob").join(blob.algorithm().name()).join(blob.hex())
    }

    fn image_record(&self, config_digest: &Digest) -> PathBuf {
        self.root.join("images").join(format!("{}.json", config_digest.hex()))
    }

    fn store_lock(&self) -> PathBuf {
        self.root.join("locks/store.lock")
    }

    fn lock_store(&self, mode: LockMode) -> Result<LockFile, StoreError> {
        LockFile::acquire(&self.store_lock(), mode)
    }
}

/// `sha256-<hex>`: a digest as a file name without the colon.
/// `archive: member`, how messages name a layer.
fn layer_label(archive: &Archive, layer: &LayerRef) -> String {
    format!("{}: {}", archive.path().display(), crate::image::printable(&layer.member))
}

/// The diff_id a `by-blob/` note records; None when there is no note.
fn read_blob_note(note: &Path) -> Result<Option<Digest>, StoreError> {
    let text = match fs::read_to_string(note) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", note)(e)),
    };
    let diff_id = text
        .trim()
        .parse()
        .map_err(|e| StoreError::Corrupt { path: note.to_path_buf(), reason: format!("{e}") })?;
    Ok(Some(diff_id))
}

fn lock_name(digest: &Digest) -> String {
    format!("{}-{}", digest.algorithm().name(), digest.hex())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, StoreError> {
    let bytes = fs::read(path).map_err(io_err("read", path))?;
    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string().replace('`', "\""),
    })
}

/// Writes a small file so readers see the old or the new content, never a mix.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().expect("store files have a parent");
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err("mkdir", dir))?;
    let name = path.file_name().expect("store files have a name");
    let tmp = dir.join(format!(
        ".{}.{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::write(&tmp, bytes).map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("rename", path)(e)
    })
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(io_err("open", dir))?;
    rustix::fs::fsync(&fd).map_err(io_err("fsync", dir))
}

/// Removes a file or a whole tree (not following symlinks).
fn remove_any(path: &Path) -> Result<(), StoreError> {
    let meta = fs::symlink_metadata(path).map_err(io_err("lstat", path))?;
    let result = if meta.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) };
    result.map_err(io_err("remove", path))
}
