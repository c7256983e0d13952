//! Any bytes as a layer (plain, gzip or zstd tar), unpacked by the layer store into a fresh store
//! on tmpfs: it must end in Ok or a clean error, leave nothing half-made in the store, and never
//! write outside it. The bytes go in as the one layer of a legacy archive, whose diff_ids are
//! computed while unpacking, so no digest check stops them early.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fn archive_with_layer(path: &Path, layer: &[u8]) -> std::io::Result<()> {
    let mut builder = tar::Builder::new(std::fs::File::create(path)?);
    let mut add = |name: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, data)
    };
    add("l/layer.tar", layer)?;
    add("l/json", br#"{"id":"l","config":{"Cmd":["sh"]}}"#)?;
    add("l/VERSION", b"1.0")?;
    add("repositories", br#"{"fuzz":{"latest":"l"}}"#)?;
    builder.into_inner()?;
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let dir = Path::new("/dev/shm").join(format!("spawner-fuzz-unpack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let archive_path = dir.join("image.tar");
    if archive_with_layer(&archive_path, data).is_ok() {
        if let Ok(archive) = spawner::image::Archive::open(&archive_path) {
            if let Ok(image) = archive.select(None) {
                let limits = spawner::store::Limits { max_image_bytes: 64 << 20 };
                if let Ok(store) = spawner::store::LayerStore::open_with(dir.join("store"), limits) {
                    let result = store.ensure_image(&archive, &image);
                    // Whatever happened, no unpack is left half-made in tmp/.
                    let tmp = dir.join("store/tmp");
                    let leftovers = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
                    assert_eq!(leftovers, 0, "partial unpack left in {} ({result:?})", tmp.display());
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
});
