//! `docker save` archives: `manifest.json` names each image's config and layer members.

use serde::Deserialize;

use super::digest::Digest;
use super::source::normalize;
use super::{Archive, BlobRef, ImageError, IndexedImage};

pub(super) const MANIFEST: &str = "manifest.json";

/// One element of the `manifest.json` array.
#[derive(Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    /// `null` for an image saved by ID.
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Reads `manifest.json` into one [`IndexedImage`] per entry.
pub(super) fn index(archive: &Archive) -> Result<Vec<IndexedImage>, ImageError> {
    let entries: Vec<ManifestEntry> = archive.read_json(MANIFEST, None)?;
    Ok(entries
        .into_iter()
        .map(|entry| IndexedImage {
            names: entry.repo_tags.unwrap_or_default(),
            config: blob(&entry.config),
            layers: entry.layers.iter().map(|layer| blob(layer)).collect(),
        })
        .collect())
}

/// A member path; under `blobs/<alg>/<hex>` (Docker 25+) its name is its digest, which lets the
/// blob be verified. Older `<id>/layer.tar` names carry no digest.
fn blob(member: &str) -> BlobRef {
    let member = normalize(member);
    BlobRef { digest: Digest::from_blob_path(&member), member, size: None }
}
