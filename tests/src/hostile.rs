//! Hostile image archives: one function per trick, each writing a docker-archive into a
//! directory and returning its path. An image tar is untrusted input and spawner runs as root;
//! `tests/hostile.rs` runs the real spawner against each of these.
//!
//! Every path a trick tries to reach on the host is under the caller's canary directory (a
//! unique name under /tmp), never a real system file.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// mtime of every entry.
const MTIME: u64 = 1_600_000_000;

/// `sha256:<hex>`.
pub fn sha256(data: &[u8]) -> String {
    let mut hex = String::with_capacity(71);
    hex.push_str("sha256:");
    for b in Sha256::digest(data) {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// A layer tar built entry by entry, with names and link targets written verbatim (`../x`,
/// `/abs`), which `tar::Builder`'s own setters refuse.
pub struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    /// The directories of `path` (absolute or not), each as its own entry, parents first.
    pub fn dirs_to(&mut self, path: &str) -> &mut Self {
        let mut prefix = String::new();
        for part in path.trim_start_matches('/').split('/') {
            prefix = format!("{prefix}{part}/");
            self.dir(&prefix, 0o755);
        }
        self
    }

    pub fn new() -> Layer {
        Layer { builder: tar::Builder::new(Vec::new()) }
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

    /// Appends with `name` as raw bytes: in the header when it fits, else in a PAX `path`
    /// record (which may hold anything, NUL included).
    fn append(&mut self, mut header: tar::Header, name: &[u8], data: &[u8]) -> &mut Self {
        let field = &mut header.as_old_mut().name;
        field.fill(0);
        if name.len() <= field.len() && !name.contains(&0) {
            field[..name.len()].copy_from_slice(name);
        } else {
            self.builder.append_pax_extensions([("path", name)]).unwrap();
            field[..7].copy_from_slice(b"longpax");
        }
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.append(Self::header(tar::EntryType::Directory, mode, 0), name.as_bytes(), b"")
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.file_with(name.as_bytes(), 0o644, data)
    }

    pub fn file_with(&mut self, name: &[u8], mode: u32, data: &[u8]) -> &mut Self {
        self.append(Self::header(tar::EntryType::Regular, mode, data.len() as u64), name, data)
    }

    fn link(&mut self, kind: tar::EntryType, name: &str, target: &str) -> &mut Self {
        let mut header = Self::header(kind, 0o777, 0);
        let field = &mut header.as_old_mut().linkname;
        assert!(target.len() <= field.len());
        field.fill(0);
        field[..target.len()].copy_from_slice(target.as_bytes());
        self.append(header, name.as_bytes(), b"")
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(tar::EntryType::Symlink, name, target)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(tar::EntryType::Link, name, target)
    }

    pub fn fifo(&mut self, name: &str) -> &mut Self {
        self.append(Self::header(tar::EntryType::Fifo, 0o644, 0), name.as_bytes(), b"")
    }

    pub fn device(&mut self, name: &str, kind: tar::EntryType, major: u32, minor: u32) -> &mut Self {
        let mut header = Self::header(kind, 0o666, 0);
        header.set_device_major(major).unwrap();
        header.set_device_minor(minor).unwrap();
        self.append(header, name.as_bytes(), b"")
    }

    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new())).into_inner().unwrap()
    }
}

/// One layer of an archive: its blob as stored, and the uncompressed tar its diff_id is of.
pub struct Blob {
    pub tar: Vec<u8>,
    pub stored: Vec<u8>,
}

impl Blob {
    pub fn plain(tar: Vec<u8>) -> Blob {
        Blob { stored: tar.clone(), tar }
    }
}

/// Members of a docker-archive, written in order.
#[derive(Default)]
pub struct Members(pub Vec<(String, Vec<u8>)>);

impl Members {
    /// `manifest.json` + `config.json` + `layerN/layer.tar` for `blobs`, bottom to top.
    pub fn docker(blobs: &[Blob]) -> Members {
        let diff_ids: Vec<String> = blobs.iter().map(|b| sha256(&b.tar)).collect();
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let layers: Vec<String> = (0..blobs.len()).map(|i| format!("layer{i}/layer.tar")).collect();
        let manifest =
            serde_json::json!([{"Config": "config.json", "RepoTags": ["hostile:latest"], "Layers": layers}]);
        let mut members = Members::default();
        members.0.push(("manifest.json".into(), serde_json::to_vec(&manifest).unwrap()));
        members.0.push(("config.json".into(), serde_json::to_vec(&config).unwrap()));
        for (name, blob) in layers.into_iter().zip(blobs) {
            members.0.push((name, blob.stored.clone()));
        }
        members
    }

    pub fn set(&mut self, name: &str, data: Vec<u8>) -> &mut Self {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(member) => member.1 = data,
            None => self.0.push((name.into(), data)),
        }
        self
    }

    /// Changes the image config (the member the manifest names) with `edit`.
    pub fn edit_config(&mut self, edit: impl FnOnce(&mut serde_json::Value)) -> &mut Self {
        let find = |name: &str| self.0.iter().find(|(n, _)| n == name).unwrap().1.clone();
        let manifest: serde_json::Value = serde_json::from_slice(&find("manifest.json")).unwrap();
        let config_name = manifest[0]["Config"].as_str().unwrap().to_owned();
        let mut config: serde_json::Value = serde_json::from_slice(&find(&config_name)).unwrap();
        edit(&mut config);
        self.set(&config_name, serde_json::to_vec(&config).unwrap())
    }

    pub fn remove(&mut self, name: &str) -> &mut Self {
        self.0.retain(|(n, _)| n != name);
        self
    }

    /// Writes the archive as `dir/NAME.tar`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.tar"));
        let mut builder = tar::Builder::new(std::fs::File::create(&path).unwrap());
        for (member, data) in &self.0 {
            let mut header = tar::Header::new_ustar();
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            header.set_mtime(MTIME);
            builder.append_data(&mut header, member, &data[..]).unwrap();
        }
        builder.into_inner().unwrap().sync_all().unwrap();
        path
    }
}

/// A one-layer docker-archive of `tar` (uncompressed) at `dir/NAME.tar`.
pub fn one_layer(dir: &Path, name: &str, tar: Vec<u8>) -> PathBuf {
    Members::docker(&[Blob::plain(tar)]).write(dir, name)
}

// ---- escapes ----

/// `../../…/CANARY/dotdot`: a name that climbs out of the layer.
pub fn dotdot_name(dir: &Path, canary: &Path) -> PathBuf {
    let name = format!("../../../../../../../..{}/dotdot", canary.display());
    one_layer(dir, "dotdot-name", Layer::new().file(&name, b"escaped").finish())
}

/// `/CANARY/absolute`: an absolute name (lands inside the layer, at `CANARY/absolute`).
pub fn absolute_name(dir: &Path, canary: &Path) -> PathBuf {
    let name = format!("{}/absolute", canary.display());
    one_layer(dir, "absolute-name", Layer::new().file(&name, b"inside").finish())
}

/// `out -> CANARY` (absolute, pointing at the host), then `out/through`.
pub fn symlink_out_then_file(dir: &Path, canary: &Path) -> PathBuf {
    let target = canary.display().to_string();
    one_layer(
        dir,
        "symlink-out",
        Layer::new().symlink("out", &target).file("out/through", b"through a symlink").finish(),
    )
}

/// Like [`symlink_out_then_file`], but the symlink's target exists in the layer too, so the file
/// goes somewhere: it must be the layer's own `CANARY` directory.
pub fn symlink_out_existing_target(dir: &Path, canary: &Path) -> PathBuf {
    let target = canary.display().to_string();
    let mut layer = Layer::new();
    layer.dirs_to(&target);
    one_layer(
        dir,
        "symlink-out-existing",
        layer.symlink("out", &target).file("out/through", b"through a symlink").finish(),
    )
}

/// A chain of relative symlinks whose `..`s climb far past the root: `a -> b/c`,
/// `b/c -> ../../../../../../..`, then `a/CANARY/chain`.
pub fn symlink_chain_dotdot(dir: &Path, canary: &Path) -> PathBuf {
    let mut layer = Layer::new();
    layer.dir("b", 0o755).symlink("b/c", "../../../../../../..").symlink("a", "b/c");
    let mut prefix = String::from("a");
    for part in canary.display().to_string().trim_start_matches('/').split('/') {
        prefix = format!("{prefix}/{part}");
        layer.dir(&prefix, 0o755);
    }
    layer.file(&format!("{prefix}/chain"), b"chained");
    one_layer(dir, "symlink-chain", layer.finish())
}

/// A hard link to a host file: `passwd-link` => `/etc/passwd`, and one through `..`.
pub fn hardlink_out(dir: &Path) -> PathBuf {
    one_layer(
        dir,
        "hardlink-out",
        Layer::new().file("x", b"").hardlink("passwd-link", "/etc/passwd").finish(),
    )
}

/// A hard link climbing out with `..`.
pub fn hardlink_dotdot(dir: &Path) -> PathBuf {
    one_layer(
        dir,
        "hardlink-dotdot",
        Layer::new().file("x", b"").hardlink("passwd-link", "../../../../etc/passwd").finish(),
    )
}

/// A hard link through a symlink that points out: `etc -> /etc`, `shadow-link` => `etc/shadow`.
pub fn hardlink_via_symlink(dir: &Path) -> PathBuf {
    one_layer(
        dir,
        "hardlink-via-symlink",
        Layer::new().symlink("etc", "/etc").hardlink("shadow-link", "etc/shadow").finish(),
    )
}

/// A hard link to a member that comes later in the tar.
pub fn hardlink_forward(dir: &Path) -> PathBuf {
    one_layer(dir, "hardlink-forward", Layer::new().hardlink("early", "later").file("later", b"x").finish())
}

/// A name with a NUL byte in it (in a PAX `path` record: a header name ends at its first NUL).
pub fn nul_in_name(dir: &Path, canary: &Path) -> PathBuf {
    let mut name = canary.display().to_string().into_bytes();
    name.extend_from_slice(b"/nul\0../../../../x");
    one_layer(dir, "nul-name", Layer::new().file_with(&name, 0o644, b"nul").finish())
}

/// Names with a newline and an escape sequence, to forge a second error line or drive the
/// terminal: an entry that is refused, and a layer member that does not exist.
pub fn control_characters_in_names(dir: &Path) -> (PathBuf, PathBuf) {
    let entry =
        one_layer(dir, "newline-entry", Layer::new().file("../x\nspawner: all good\x1b[2J", b"").finish());
    let mut members = Members::docker(&[Blob::plain(Layer::new().file("a", b"").finish())]);
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": ["x:1"],
        "Layers": ["missing\nspawner: all good\u{1b}[2J"],
    }]);
    members.set("manifest.json", serde_json::to_vec(&manifest).unwrap());
    (entry, members.write(dir, "newline-member"))
}

/// A name longer than PATH_MAX (4096), and one with a component over NAME_MAX (255).
pub fn overlong_names(dir: &Path) -> (PathBuf, PathBuf) {
    let deep = vec!["d"; 2100].join("/") + "/f";
    let wide = format!("{}/f", "n".repeat(300));
    (
        one_layer(dir, "path-max", Layer::new().file(&deep, b"deep").finish()),
        one_layer(dir, "name-max", Layer::new().file(&wide, b"wide").finish()),
    )
}

/// `d/` is a directory, then replaced by `d -> CANARY` in the same layer, then `d/after` is
/// written through it.
pub fn dir_replaced_by_symlink(dir: &Path, canary: &Path) -> PathBuf {
    let target = canary.display().to_string();
    let mut layer = Layer::new();
    layer.dir("d", 0o755).file("d/before", b"1").symlink("d", &target);
    // The target's directories exist in the layer, so the write has somewhere to go.
    layer.dirs_to(&target).file("d/after", b"2");
    one_layer(dir, "dir-then-symlink", layer.finish())
}

/// Whiteouts that try to leave their directory: `.wh.../../x`, `a/.wh..`, `.wh.` + `/CANARY`.
pub fn whiteout_escapes(dir: &Path, canary: &Path) -> Vec<PathBuf> {
    vec![
        one_layer(dir, "whiteout-dotdot", Layer::new().file(".wh.../../../../x", b"").finish()),
        one_layer(dir, "whiteout-of-dotdot", Layer::new().dir("a", 0o755).file("a/.wh..", b"").finish()),
        one_layer(
            dir,
            "whiteout-through-symlink",
            Layer::new().symlink("s", &canary.display().to_string()).file("s/.wh.victim", b"").finish(),
        ),
    ]
}

/// An opaque marker in a directory that is a symlink pointing out: `s -> CANARY`, with the
/// target's directories in the layer, then `s/.wh..wh..opq`.
pub fn opaque_in_symlinked_dir(dir: &Path, canary: &Path) -> PathBuf {
    let target = canary.display().to_string();
    let mut layer = Layer::new();
    layer.dirs_to(&target);
    layer.symlink("s", &target).file("s/.wh..wh..opq", b"");
    one_layer(dir, "opaque-symlinked", layer.finish())
}

/// Device nodes: `disk` a block device 8:0 (sda), `tty0` a char device 4:0.
pub fn device_nodes(dir: &Path) -> PathBuf {
    one_layer(
        dir,
        "devices",
        Layer::new()
            .device("disk", tar::EntryType::Block, 8, 0)
            .device("tty0", tar::EntryType::Char, 4, 0)
            .finish(),
    )
}

/// A setuid-root, world-writable-looking file.
pub fn setuid_file(dir: &Path) -> PathBuf {
    one_layer(dir, "setuid", Layer::new().file_with(b"suid", 0o4755, b"#!/bin/sh\n").finish())
}

/// Debian's `var/run -> /run` with `var/run/NAME` written through it.
pub fn debian_var_run(dir: &Path, name: &str) -> PathBuf {
    one_layer(
        dir,
        "var-run",
        Layer::new()
            .dir("run", 0o755)
            .dir("var", 0o755)
            .symlink("var/run", "/run")
            .file(&format!("var/run/{name}"), b"in run")
            .finish(),
    )
}

// ---- malformed archives ----

fn a_layer() -> Vec<u8> {
    Layer::new().file("hello", &[b'h'; 200_000]).finish()
}

/// `manifest.json` that is not JSON.
pub fn manifest_not_json(dir: &Path) -> PathBuf {
    Members::docker(&[Blob::plain(a_layer())])
        .set("manifest.json", b"[{not json".to_vec())
        .write(dir, "bad-manifest")
}

/// The config the manifest names is not in the archive.
pub fn missing_config(dir: &Path) -> PathBuf {
    Members::docker(&[Blob::plain(a_layer())]).remove("config.json").write(dir, "missing-config")
}

/// A layer the manifest names is not in the archive.
pub fn missing_layer(dir: &Path) -> PathBuf {
    Members::docker(&[Blob::plain(a_layer())]).remove("layer0/layer.tar").write(dir, "missing-layer")
}

/// The layer is not what the config's diff_id says.
pub fn diff_id_mismatch(dir: &Path) -> PathBuf {
    let real = a_layer();
    let mut members = Members::docker(&[Blob::plain(Layer::new().file("other", b"").finish())]);
    members.set("layer0/layer.tar", real);
    members.write(dir, "diff-id-mismatch")
}

/// A gzip layer cut in the middle.
pub fn truncated_gzip(dir: &Path) -> PathBuf {
    let tar = a_layer();
    let mut stored = gzip(&tar);
    stored.truncate(stored.len() / 2);
    Members::docker(&[Blob { tar, stored }]).write(dir, "truncated-gzip")
}

/// A zstd layer cut in the middle.
pub fn truncated_zstd(dir: &Path) -> PathBuf {
    let tar = Layer::new().file("a", &[1u8; 300_000]).file("b", &sha256(b"x").into_bytes()).finish();
    let mut stored = zstd(&tar);
    stored.truncate(stored.len() / 2);
    Members::docker(&[Blob { tar, stored }]).write(dir, "truncated-zstd")
}

/// An uncompressed tar that ends in the middle of a file's data.
pub fn tar_ends_early(dir: &Path) -> PathBuf {
    let tar = a_layer();
    let stored = tar[..100_000].to_vec();
    Members::docker(&[Blob { tar, stored }]).write(dir, "tar-ends-early")
}

/// An xz layer (only its magic: spawner reads gzip, zstd and plain tar).
pub fn xz_layer(dir: &Path) -> PathBuf {
    let tar = a_layer();
    let mut stored = vec![0xfd, b'7', b'z', b'X', b'Z', 0x00];
    stored.extend_from_slice(&[0; 100]);
    Members::docker(&[Blob { tar, stored }]).write(dir, "xz-layer")
}

/// A layer of `size` (a multiple of 1 MiB) bytes of zeros in a gzip blob of about a thousandth
/// of that: one gzip member of 1 MiB of zeros, repeated (a multi-member gzip is one stream). Its
/// diff_id is made up: the size limit must stop it before any digest is compared.
pub fn gzip_bomb(dir: &Path, size: u64) -> PathBuf {
    assert_eq!(size % (1 << 20), 0);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_path("zeros").unwrap();
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(size);
    header.set_mtime(MTIME);
    header.set_cksum();
    let mut stored = gzip(header.as_bytes());
    let mib = gzip(&vec![0u8; 1 << 20]);
    for _ in 0..size >> 20 {
        stored.extend_from_slice(&mib);
    }
    stored.extend_from_slice(&gzip(&[0u8; 1024])); // end of archive
    let members = Members::docker(&[Blob { tar: b"made up".to_vec(), stored }]);
    members.write(dir, "gzip-bomb")
}

/// The members of an existing docker-archive (`busybox-docker.tar`, say) with `tar` added as a
/// top layer, so the trick's image has a shell to look around with.
pub fn on_top_of(base: &Path, tar: Vec<u8>) -> Members {
    let mut archive = tar::Archive::new(std::fs::File::open(base).unwrap());
    let mut members = Members::default();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        members.0.push((name, data));
    }
    let find = |members: &Members, name: &str| members.0.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let mut manifest: serde_json::Value = serde_json::from_slice(&find(&members, "manifest.json")).unwrap();
    let config_name = manifest[0]["Config"].as_str().unwrap().to_owned();
    let mut config: serde_json::Value = serde_json::from_slice(&find(&members, &config_name)).unwrap();
    config["rootfs"]["diff_ids"].as_array_mut().unwrap().push(sha256(&tar).into());
    manifest[0]["Config"] = "hostile-config.json".into();
    manifest[0]["RepoTags"] = serde_json::json!(["hostile:latest"]);
    manifest[0]["Layers"].as_array_mut().unwrap().push("hostile/layer.tar".into());
    members.set("hostile-config.json", serde_json::to_vec(&config).unwrap());
    members.set("hostile/layer.tar", tar);
    members.set("manifest.json", serde_json::to_vec(&manifest).unwrap());
    members
}

/// `base` with a char device 1:3 (the host's /dev/null: harmless to open) at `/opt/null`.
pub fn device_on_busybox(dir: &Path, base: &Path) -> PathBuf {
    let layer = Layer::new().dir("opt", 0o755).device("opt/null", tar::EntryType::Char, 1, 3).finish();
    on_top_of(base, layer).write(dir, "device-on-busybox")
}
