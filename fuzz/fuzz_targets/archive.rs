//! Any bytes as an image archive: the tar index, manifest.json / index.json / repositories / config
//! parsing, image selection and layer decompression must end in Ok or a clean error, never a panic or
//! a hang, whatever the archive says.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Read;

fuzz_target!(|data: &[u8]| {
    // Archive::open reads members by position from a file: give it one (tmpfs, per process).
    let path = std::env::temp_dir().join(format!("spawner-fuzz-archive-{}.tar", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(archive) = spawner::image::Archive::open(&path) {
        let names: Vec<Option<String>> =
            archive.images().iter().map(|r| r.names.first().cloned()).chain([None]).collect();
        for name in names {
            if let Ok(image) = archive.select(name.as_deref()) {
                for layer in &image.layers {
                    if let Ok(mut reader) = archive.open_layer(layer) {
                        // Bounded: a decompression bomb must not be read to the end here.
                        let mut buf = vec![0u8; 1 << 16];
                        let mut total = 0;
                        while let Ok(n) = reader.read(&mut buf) {
                            total += n;
                            if n == 0 || total > 1 << 24 {
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_file(&path);
});
