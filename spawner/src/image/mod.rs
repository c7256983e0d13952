//! Reading image archives: what images an archive holds, their configuration, and their layers as
//! streams. Nothing here knows about containers or the layer store.
//!
//! # Formats
//! * **docker-archive** (`docker save`): `manifest.json` lists each image's `Config`, `RepoTags`
//!   and `Layers`. Docker 25+ also writes an OCI layout with layers at `blobs/sha256/<hex>`; the
//!   `manifest.json` is read first whenever it exists. Newer `download-frozen-image-v2.sh` output
//!   has one too.
//! * **legacy** (`download-frozen-image-v2.sh` without `manifest.json`): `<id>/layer.tar`,
//!   `<id>/json`, `repositories`. Layer order comes from the `parent` links, the config is the top
//!   layer's `json`, and there are no diff_ids ([`LayerRef::diff_id`] is `None`: the store
//!   computes them while unpacking).
//! * **OCI image layout**: `oci-layout`, `index.json` → manifest (through nested indexes, picking
//!   this host's platform) → config and layer blobs under `blobs/<alg>/<hex>`.
//!
//! Each may be a tar file (indexed in one pass and read member by member, never unpacked) or a
//! directory. Layer blobs may be plain tar, gzip or zstd, decided by their first bytes.
//!
//! # Use
//! ```no_run
//! # fn main() -> Result<(), spawner::image::ImageError> {
//! use spawner::image::Archive;
//! let archive = Archive::open("busybox.tar")?;
//! let image = archive.select(Some("busybox"))?; // or None when it holds one image
//! for layer in &image.layers {
//!     let tar_stream = archive.open_layer(layer)?; // uncompressed tar, streamed
//!     # drop(tar_stream);
//! }
//! # Ok(()) }
//! ```
//!
//! `Archive` is `Sync`: layers may be read from several threads at once.

mod config;
mod digest;
mod docker;
mod error;
mod layer;
mod legacy;
pub(crate) mod oci;
mod platform;
mod reference;
mod source;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use config::{ImageConfig, RootFs, RunConfig};
pub use digest::{Algorithm, Digest, DigestParseError, DigestReader, Hasher};
pub use error::{printable, ImageError};
pub use layer::{Compression, Decompressor};
pub use platform::Platform;
pub(crate) use reference::matches as reference_matches;
pub use source::MemberReader;

use source::Source;

/// Buffer between a compressed blob and its decoder. Large reads keep syscalls and decoder
/// calls few.
const BLOB_BUFFER: usize = 1 << 20;

/// JSON members larger than this are refused rather than read into memory.
const MAX_JSON: u64 = 64 << 20;

/// The layout an archive uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `docker save` output (any version), or anything else with a `manifest.json`.
    DockerArchive,
    /// `<id>/layer.tar` + `<id>/json` + `repositories`, no `manifest.json`.
    Legacy,
    /// OCI image layout.
    Oci,
}

/// One image of an archive, as listed by [`Archive::images`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Position in [`Archive::images`]; also accepted by [`Archive::select`] as a reference.
    pub index: usize,
    /// The names the archive gives it (`busybox:latest`); may be empty.
    pub names: Vec<String>,
}

impl ImageRef {
    /// The names joined for messages, or `#<index>` for an unnamed image.
    pub fn label(&self) -> String {
        if self.names.is_empty() {
            format!("#{}", self.index)
        } else {
            self.names.join(" ")
        }
    }
}

/// A selected image: its configuration and its layers, bottom to top.
#[derive(Debug, Clone)]
pub struct Image {
    pub index: usize,
    pub names: Vec<String>,
    pub config: ImageConfig,
    /// sha256 of the config JSON as stored in the archive: Docker's image ID.
    pub config_digest: Digest,
    pub layers: Vec<LayerRef>,
}

/// Where one layer's blob is and what it should hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    /// The archive member holding the blob.
    pub member: String,
    /// sha256 of the uncompressed tar, from the config's `rootfs.diff_ids`. `None` for the legacy
    /// layout, whose configs have no `rootfs`.
    pub diff_id: Option<Digest>,
    /// Digest of the blob as stored (compressed or not), when the format names it: OCI
    /// descriptors and `blobs/<alg>/<hex>` member paths.
    pub blob_digest: Option<Digest>,
    /// Blob size from an OCI descriptor.
    pub size: Option<u64>,
}

/// A blob an index points at, before it is read.
#[derive(Debug, Clone)]
struct BlobRef {
    member: String,
    digest: Option<Digest>,
    size: Option<u64>,
}

/// What an archive's index says about one image.
#[derive(Debug, Clone)]
struct IndexedImage {
    names: Vec<String>,
    config: BlobRef,
    layers: Vec<BlobRef>,
}

/// An opened image archive (tar file or directory).
pub struct Archive {
    path: PathBuf,
    source: Source,
    format: Format,
    images: Vec<IndexedImage>,
    refs: Vec<ImageRef>,
}

impl Archive {
    /// Opens and indexes an archive: reads its index (`manifest.json`, `repositories` and layer
    /// `json`s, or `index.json` and manifests), but no config and no layer yet.
    pub fn open(path: impl AsRef<Path>) -> Result<Archive, ImageError> {
        let path = path.as_ref().to_path_buf();
        let source = Source::open(&path).map_err(|source| ImageError::Io {
            archive: path.clone(),
            member: None,
            source,
        })?;
        let mut archive =
            Archive { path, source, format: Format::DockerArchive, images: Vec::new(), refs: Vec::new() };
        let (format, images) = if archive.has_member(docker::MANIFEST)? {
            (Format::DockerArchive, docker::index(&archive)?)
        } else if archive.has_member(oci::INDEX)? {
            (Format::Oci, oci::index(&archive)?)
        } else if let Some(images) = legacy::index(&archive)? {
            (Format::Legacy, images)
        } else {
            return Err(ImageError::UnknownFormat { archive: archive.path });
        };
        archive.format = format;
        archive.refs = images
            .iter()
            .enumerate()
            .map(|(index, image)| ImageRef { index, names: image.names.clone() })
            .collect();
        archive.images = images;
        Ok(archive)
    }

    /// The path the archive was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The images in the archive, in index order.
    pub fn images(&self) -> &[ImageRef] {
        &self.refs
    }

    /// Picks one image and reads its configuration.
    ///
    /// `reference` is a name (`busybox`, `busybox:1.36`, `docker.io/library/busybox:latest`,
    /// matched loosely against the archive's names) or an index into [`Archive::images`]. Without
    /// a reference the archive must hold exactly one image.
    pub fn select(&self, reference: Option<&str>) -> Result<Image, ImageError> {
        let index = self.find(reference)?;
        let indexed = &self.images[index];
        let bytes = self.read_member(&indexed.config.member, indexed.config.digest.as_ref())?;
        let config: ImageConfig = self.parse_json(&indexed.config.member, &bytes)?;
        let diff_ids = config.diff_ids();
        if let Some(ids) = diff_ids {
            if ids.len() != indexed.layers.len() {
                return Err(self.malformed(
                    &indexed.config.member,
                    format!(
                        "rootfs.diff_ids lists {} layers but the manifest lists {}",
                        ids.len(),
                        indexed.layers.len()
                    ),
                ));
            }
        }
        let layers = indexed
            .layers
            .iter()
            .enumerate()
            .map(|(i, blob)| LayerRef {
                member: blob.member.clone(),
                diff_id: diff_ids.map(|ids| ids[i].clone()),
                blob_digest: blob.digest.clone(),
                size: blob.size,
            })
            .collect();
        Ok(Image {
            index,
            names: indexed.names.clone(),
            config_digest: Digest::sha256_of(&bytes),
            config,
            layers,
        })
    }

    /// The image's config JSON as the archive holds it (its sha256 is the image ID).
    pub fn config_bytes(&self, image: &Image) -> Result<Vec<u8>, ImageError> {
        let config = &self.images[image.index].config;
        self.read_member(&config.member, Some(&image.config_digest))
    }

    /// Opens a layer's blob as stored (possibly compressed).
    pub fn open_blob(&self, layer: &LayerRef) -> Result<MemberReader, ImageError> {
        self.source
            .open_member(&layer.member)
            .map_err(|e| self.io_error(&layer.member, e))?
            .ok_or_else(|| self.missing(&layer.member))
    }

    /// Wraps a reader of `layer`'s blob (from [`Archive::open_blob`], perhaps through a
    /// [`DigestReader`]) in the decoder its first bytes call for.
    pub fn decompress<R: Read>(
        &self,
        layer: &LayerRef,
        blob: R,
    ) -> Result<Decompressor<BufReader<R>>, ImageError> {
        Decompressor::sniffed(blob, BLOB_BUFFER).map_err(|e| self.io_error(&layer.member, e))?.map_err(
            |format| ImageError::UnsupportedCompression {
                archive: self.path.clone(),
                member: layer.member.clone(),
                format,
            },
        )
    }

    /// Opens a layer as a stream of its uncompressed tar. Memory use does not grow with the
    /// layer's size.
    pub fn open_layer(&self, layer: &LayerRef) -> Result<Decompressor<BufReader<MemberReader>>, ImageError> {
        self.decompress(layer, self.open_blob(layer)?)
    }

    /// Which image `reference` names.
    fn find(&self, reference: Option<&str>) -> Result<usize, ImageError> {
        let labels = || self.refs.iter().map(ImageRef::label).collect::<Vec<_>>();
        if self.refs.is_empty() {
            return Err(ImageError::NoImages { archive: self.path.clone() });
        }
        let Some(reference) = reference else {
            if self.refs.len() == 1 {
                return Ok(0);
            }
            return Err(ImageError::Ambiguous { archive: self.path.clone(), available: labels() });
        };
        let by_name = self
            .refs
            .iter()
            .position(|image| image.names.iter().any(|name| reference::matches(reference, name)));
        let by_index = || {
            reference
                .strip_prefix('#')
                .unwrap_or(reference)
                .parse::<usize>()
                .ok()
                .filter(|&i| i < self.refs.len())
        };
        by_name.or_else(by_index).ok_or_else(|| ImageError::NoMatch {
            archive: self.path.clone(),
            reference: reference.to_owned(),
            available: labels(),
        })
    }

    // Helpers for the format readers: member access with errors that name the member.

    fn has_member(&self, member: &str) -> Result<bool, ImageError> {
        Ok(self.source.open_member(member).map_err(|e| self.io_error(member, e))?.is_some())
    }

    /// Reads a whole (small) member, checking its digest when one is expected.
    fn read_member(&self, member: &str, expected: Option<&Digest>) -> Result<Vec<u8>, ImageError> {
        let mut reader = self
            .source
            .open_member(member)
            .map_err(|e| self.io_error(member, e))?
            .ok_or_else(|| self.missing(member))?;
        if reader.len() > MAX_JSON {
            return Err(self.malformed(member, format!("{} bytes is too large", reader.len())));
        }
        let mut bytes = Vec::with_capacity(reader.len() as usize);
        reader.read_to_end(&mut bytes).map_err(|e| self.io_error(member, e))?;
        if let Some(expected) = expected {
            let actual = expected.compute_same(&bytes);
            if &actual != expected {
                return Err(ImageError::DigestMismatch {
                    archive: self.path.clone(),
                    member: member.to_owned(),
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        Ok(bytes)
    }

    fn parse_json<T: DeserializeOwned>(&self, member: &str, bytes: &[u8]) -> Result<T, ImageError> {
        // serde quotes field names with backticks; plain quotes read better in a message.
        serde_json::from_slice(bytes).map_err(|e| self.malformed(member, e.to_string().replace('`', "\"")))
    }

    fn read_json<T: DeserializeOwned>(
        &self,
        member: &str,
        expected: Option<&Digest>,
    ) -> Result<T, ImageError> {
        let bytes = self.read_member(member, expected)?;
        self.parse_json(member, &bytes)
    }

    fn io_error(&self, member: &str, source: std::io::Error) -> ImageError {
        ImageError::Io { archive: self.path.clone(), member: Some(member.to_owned()), source }
    }

    fn missing(&self, member: &str) -> ImageError {
        ImageError::MissingMember { archive: self.path.clone(), member: member.to_owned() }
    }

    fn malformed(&self, member: &str, reason: impl Into<String>) -> ImageError {
        ImageError::Malformed { archive: self.path.clone(), member: member.to_owned(), reason: reason.into() }
    }
}
