//! `spawner system df`: the disk the images and containers use, as Docker's table shows it.

use super::record::{self, Status};
use super::template::{human_size, tabwrite};
use crate::container::RunError;
use crate::store::LayerStore;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The bytes of the files below `path` (each hard-linked file once; symlinks not followed),
/// as Docker counts a container's writable layer.
pub fn disk_usage(path: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.nlink() < 2 || seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    total
}

/// `123B (45%)`: Docker's RECLAIMABLE cell.
fn reclaimable(bytes: u64, total: u64) -> String {
    match total {
        0 => human_size(bytes),
        total => format!("{} ({}%)", human_size(bytes), bytes * 100 / total),
    }
}

/// The table `system df` prints.
pub fn system_df(state_dir: &Path) -> Result<String, RunError> {
    let containers = record::list(&state_dir.join("containers"));
    let store = LayerStore::open(state_dir.join("store"))?;
    let images = store.list_images()?;
    let in_use: HashSet<&str> = containers.iter().map(|c| c.record.image_id.as_str()).collect();
    let size_of = |layers: &mut dyn Iterator<Item = &crate::image::Digest>| -> u64 {
        let unique: HashSet<_> = layers.collect();
        unique.into_iter().filter_map(|l| store.layer_size(l)).sum()
    };
    let images_size = size_of(&mut images.iter().flat_map(|i| &i.layers));
    let active: Vec<_> =
        images.iter().filter(|i| in_use.contains(i.config_digest.to_string().as_str())).collect();
    let used = size_of(&mut active.iter().flat_map(|i| &i.layers));

    let sizes: Vec<(bool, u64)> = containers
        .iter()
        .map(|c| (c.status() == Status::Running, disk_usage(&c.dir.join("upper"))))
        .collect();
    let containers_size: u64 = sizes.iter().map(|(_, s)| s).sum();
    let idle: u64 = sizes.iter().filter(|(running, _)| !running).map(|(_, s)| s).sum();
    let running = sizes.iter().filter(|(running, _)| *running).count();

    let row = |cells: [String; 5]| cells.to_vec();
    let rows = vec![
        row(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"].map(String::from)),
        row([
            "Images".into(),
            images.len().to_string(),
            active.len().to_string(),
            human_size(images_size),
            reclaimable(images_size.saturating_sub(used), images_size),
        ]),
        row([
            "Containers".into(),
            containers.len().to_string(),
            running.to_string(),
            human_size(containers_size),
            reclaimable(idle, containers_size),
        ]),
        // spawner has no named volumes (a -v is a host directory) and no build cache.
        row(["Local Volumes", "0", "0", "0B", "0B"].map(String::from)),
        row(["Build Cache", "0", "0", "0B", "0B"].map(String::from)),
    ];
    Ok(tabwrite(&rows, 10, 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_links_count_once_and_symlinks_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a"), [0u8; 1000]).unwrap();
        std::fs::hard_link(dir.path().join("sub/a"), dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("c"), [0u8; 10]).unwrap();
        std::os::unix::fs::symlink("/usr", dir.path().join("usr")).unwrap();
        assert_eq!(disk_usage(dir.path()), 1000 + 10 + 4);
        assert_eq!(reclaimable(10, 40), "10B (25%)");
        assert_eq!(reclaimable(0, 0), "0B");
    }
}
