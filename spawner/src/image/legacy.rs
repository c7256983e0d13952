//! The legacy layout written by `download-frozen-image-v2.sh` (and `docker save` before 1.10)
//! when there is no `manifest.json`: one directory per layer holding `layer.tar`, `json` and
//! `VERSION`, and `repositories` mapping `{repo: {tag: top-layer-id}}`.
//!
//! Layer order is found by walking `parent` links down from the top layer; the image config is the
//! top layer's `json`, which has no `rootfs`, so diff_ids are unknown until the layers are hashed.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;

use super::{Archive, BlobRef, ImageError, IndexedImage};

const REPOSITORIES: &str = "repositories";

/// Docker never allowed more than 127 layers; this only stops a `parent` cycle.
const MAX_DEPTH: usize = 1000;

/// The part of a layer's `json` that gives the layer order.
#[derive(Deserialize)]
struct LayerJson {
    #[serde(default)]
    parent: Option<String>,
}

/// Layer directories and their parents, read once each.
struct Layers<'a> {
    archive: &'a Archive,
    parents: HashMap<String, Option<String>>,
}

impl Layers<'_> {
    fn parent(&mut self, id: &str) -> Result<Option<String>, ImageError> {
        if let Some(parent) = self.parents.get(id) {
            return Ok(parent.clone());
        }
        let member = format!("{id}/json");
        let json: LayerJson = self.archive.read_json(&member, None)?;
        let parent = json.parent.filter(|p| !p.is_empty());
        if let Some(p) = &parent {
            check_id(self.archive, &member, p)?;
        }
        self.parents.insert(id.to_owned(), parent.clone());
        Ok(parent)
    }

    /// Layer ids from the bottom layer up to `top`.
    fn chain(&mut self, top: &str) -> Result<Vec<String>, ImageError> {
        let mut chain = vec![top.to_owned()];
        let mut seen = HashSet::from([top.to_owned()]);
        while let Some(parent) = self.parent(chain.last().expect("chain starts non-empty"))? {
            if !seen.insert(parent.clone()) || chain.len() > MAX_DEPTH {
                return Err(self.archive.malformed(&format!("{parent}/json"), "parent links form a cycle"));
            }
            chain.push(parent);
        }
        chain.reverse();
        Ok(chain)
    }
}

/// A layer id becomes a member path, so it must be one plain path component.
fn check_id(archive: &Archive, member: &str, id: &str) -> Result<(), ImageError> {
    if id.is_empty() || id == "." || id == ".." || id.contains('/') {
        return Err(archive.malformed(member, format!("invalid layer id {id:?}")));
    }
    Ok(())
}

/// The images of a legacy layout, or `None` if this is not one.
pub(super) fn index(archive: &Archive) -> Result<Option<Vec<IndexedImage>>, ImageError> {
    let mut layers = Layers { archive, parents: HashMap::new() };
    // Top layer id → names, in a stable order.
    let mut tops: Vec<(String, Vec<String>)> = Vec::new();
    if archive.has_member(REPOSITORIES)? {
        let repositories: BTreeMap<String, BTreeMap<String, String>> =
            archive.read_json(REPOSITORIES, None)?;
        for (repo, tags) in repositories {
            for (tag, id) in tags {
                check_id(archive, REPOSITORIES, &id)?;
                let name = format!("{repo}:{tag}");
                match tops.iter_mut().find(|(top, _)| *top == id) {
                    Some((_, names)) => names.push(name),
                    None => tops.push((id, vec![name])),
                }
            }
        }
    } else {
        // No names at all: every layer that is nobody's parent is an image.
        let dirs = archive.source.top_level_dirs().map_err(|e| archive.io_error(".", e))?;
        let mut ids = Vec::new();
        for dir in dirs {
            if archive.has_member(&format!("{dir}/json"))? {
                ids.push(dir);
            }
        }
        if ids.is_empty() {
            return Ok(None);
        }
        let mut parents = HashSet::new();
        for id in &ids {
            parents.extend(layers.parent(id)?);
        }
        tops = ids.into_iter().filter(|id| !parents.contains(id)).map(|id| (id, Vec::new())).collect();
    }
    let mut images = Vec::new();
    for (top, names) in tops {
        let chain = layers.chain(&top)?;
        images.push(IndexedImage {
            names,
            config: BlobRef { member: format!("{top}/json"), digest: None, size: None },
            layers: chain
                .iter()
                .map(|id| BlobRef { member: format!("{id}/layer.tar"), digest: None, size: None })
                .collect(),
        });
    }
    Ok(Some(images))
}
