//! OCI image layouts: `index.json` → (nested indexes →) manifest → config and layer blobs under
//! `blobs/<alg>/<hex>`. Docker's manifest-list and v2 manifest media types are read the same way.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::digest::Digest;
use super::{Archive, BlobRef, ImageError, IndexedImage, Platform};

pub(super) const INDEX: &str = "index.json";

const INDEX_MEDIA_TYPES: &[&str] =
    &["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];

/// Annotations that carry an image's name, most specific first: containerd writes the full
/// reference, the OCI one is often just a tag.
const NAME_ANNOTATIONS: &[&str] = &["io.containerd.image.name", "org.opencontainers.image.ref.name"];

/// Index → index nesting allowed before the layout is called malformed.
const MAX_NESTING: usize = 4;

/// An OCI descriptor, as image layouts and registries give them. The size is optional here (some
/// archive writers leave it out); the registry protocol requires it (see `registry::pull`).
#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub media_type: Option<String>,
    pub digest: Digest,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// An index or a manifest. Which one is told by the media type or, when a writer left that out,
/// by whether it lists `manifests`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IndexOrManifest {
    /// 1 for Docker's long-deprecated schema 1 manifests.
    #[serde(default)]
    pub schema_version: Option<u32>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Option<Vec<Descriptor>>,
}

/// This host as an OCI platform: GOOS/GOARCH names, as image indexes use.
pub(crate) fn host_platform() -> (&'static str, &'static str, Option<&'static str>) {
    let little = cfg!(target_endian = "little");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" if little => "ppc64le",
        "powerpc64" => "ppc64",
        "mips64" if little => "mips64le",
        "mips" if little => "mipsle",
        "loongarch64" => "loong64",
        other => other,
    };
    let variant = match arch {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    };
    ("linux", arch, variant)
}

fn host_platform_name() -> String {
    Platform::host().to_string()
}

/// How well a descriptor's platform fits this host: `None` if it does not run here.
fn platform_score(platform: Option<&Platform>) -> Option<u8> {
    Platform::host().fit(platform)
}

fn names(annotations: Option<&BTreeMap<String, String>>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for key in NAME_ANNOTATIONS {
        if let Some(name) = annotations.and_then(|a| a.get(*key)) {
            if !name.is_empty() && !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

/// Reads `index.json` and every manifest it leads to (for this host's platform).
pub(super) fn index(archive: &Archive) -> Result<Vec<IndexedImage>, ImageError> {
    let index: IndexOrManifest = archive.read_json(INDEX, None)?;
    let manifests = index.manifests.ok_or_else(|| archive.malformed(INDEX, "missing field \"manifests\""))?;
    let mut images = Vec::new();
    let mut other_platforms = Vec::new();
    for descriptor in &manifests {
        if platform_score(descriptor.platform.as_ref()).is_none() {
            other_platforms.extend(descriptor.platform.as_ref().map(Platform::to_string));
            continue;
        }
        let (config, layers) = resolve(archive, descriptor, 0)?;
        images.push(IndexedImage { names: names(descriptor.annotations.as_ref()), config, layers });
    }
    if images.is_empty() && !other_platforms.is_empty() {
        return Err(ImageError::NoPlatform {
            archive: archive.path.clone(),
            member: INDEX.to_owned(),
            wanted: host_platform_name(),
            available: other_platforms,
        });
    }
    Ok(images)
}

/// Follows a descriptor through nested indexes to a manifest; returns its config and layers.
fn resolve(
    archive: &Archive,
    descriptor: &Descriptor,
    depth: usize,
) -> Result<(BlobRef, Vec<BlobRef>), ImageError> {
    let member = descriptor.digest.blob_path();
    let doc: IndexOrManifest = archive.read_json(&member, Some(&descriptor.digest))?;
    let media_type = descriptor.media_type.as_deref().or(doc.media_type.as_deref());
    let is_index = media_type.is_some_and(|m| INDEX_MEDIA_TYPES.contains(&m)) || doc.manifests.is_some();
    if is_index {
        if depth >= MAX_NESTING {
            return Err(archive.malformed(&member, "image indexes nested too deep"));
        }
        let manifests = doc.manifests.unwrap_or_default();
        let best = manifests
            .iter()
            .filter_map(|d| platform_score(d.platform.as_ref()).map(|score| (score, d)))
            // max_by_key keeps the last of equals; prefer the first listed.
            .rev()
            .max_by_key(|(score, _)| *score)
            .map(|(_, d)| d);
        let Some(chosen) = best else {
            return Err(ImageError::NoPlatform {
                archive: archive.path.clone(),
                member,
                wanted: host_platform_name(),
                available: manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(Platform::to_string))
                    .collect(),
            });
        };
        return resolve(archive, chosen, depth + 1);
    }
    let config = doc.config.ok_or_else(|| archive.malformed(&member, "missing field \"config\""))?;
    let layers = doc.layers.ok_or_else(|| archive.malformed(&member, "missing field \"layers\""))?;
    let blob = |d: Descriptor| BlobRef { member: d.digest.blob_path(), digest: Some(d.digest), size: d.size };
    Ok((blob(config), layers.into_iter().map(blob).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_linux_goarch() {
        let (os, arch, _) = host_platform();
        assert_eq!(os, "linux");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(arch, "amd64");
        }
    }

    #[test]
    fn platform_preference() {
        let (os, arch, _) = host_platform();
        let p = |variant: Option<&str>| Platform {
            os: os.to_owned(),
            architecture: arch.to_owned(),
            variant: variant.map(str::to_owned),
        };
        assert!(platform_score(Some(&p(None))) > platform_score(None));
        let other = Platform { os: "linux".into(), architecture: "s390x-not-here".into(), variant: None };
        assert_eq!(platform_score(Some(&other)), None);
        let unknown = Platform { os: "unknown".into(), architecture: "unknown".into(), variant: None };
        assert_eq!(platform_score(Some(&unknown)), None);
    }
}
