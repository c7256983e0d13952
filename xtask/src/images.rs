//! `cargo xtask images [--big]`: a small busybox image, written into target/images in every
//! archive form that `spawner run IMAGE.tar` reads: `docker save` before and since Docker 25, moby's
//! download-frozen-image-v2.sh (with and without manifest.json), OCI layouts (gzip, zstd,
//! multi-arch), an archive holding two images, and the same image as skopeo, umoci and podman
//! rewrite it when they install. `--big` adds big.tar, a ~300 MB layer for unpack benchmarks.
//!
//! The archives are deterministic: fixed mtimes, uid/gid 0 (but home/app), entries sorted by path
//! (but one, on purpose), JSON keys sorted. The tool-made extras carry the tools' own timestamps.

use crate::util::{apt_install, cmd, output, root, run, Result};
use flate2::{write::GzEncoder, Compression};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Every entry's mtime, and the images' creation time.
const MTIME: u64 = 1_704_067_200;
const CREATED: &str = "2024-01-01T00:00:00Z";
/// The name containerd and Docker 25 give the image in OCI annotations.
const FULL_NAME: &str = "docker.io/library/busybox:latest";
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The busybox applets linked in bin/.
const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "ps", "hostname", "id", "env", "sleep", "true", "false", "mkdir", "rm",
    "touch", "grep", "wc", "head", "mount", "pwd", "test", "[", "kill", "stat", "readlink", "whoami", "dd",
    "uname", "cut", "seq", "tr", "sed", "find", "ln", "chmod", "stty", "tty",
];

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
";
const GROUP: &str = "root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n";

mod media {
    pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
}

/// busybox-docker.tar among the images [`build`] wrote.
pub fn busybox(images: &[PathBuf]) -> Result<&PathBuf> {
    Ok(images.iter().find(|p| p.ends_with("busybox-docker.tar")).ok_or("no busybox-docker.tar")?)
}

/// Builds the images and prints their paths and sizes.
pub fn build(big: bool) -> Result<Vec<PathBuf>> {
    build_with(big, false)
}

/// `debian`: also debian.tar, a minimal Debian bookworm made by debootstrap and saved by podman.
pub fn build_with(big: bool, debian: bool) -> Result<Vec<PathBuf>> {
    apt_install(&["busybox-static"])?;
    let busybox = std::fs::read("/bin/busybox").map_err(|e| format!("/bin/busybox: {e}"))?;
    let dir = root().join("target/images");
    std::fs::create_dir_all(&dir)?;

    let image = busybox_image(&busybox);
    let other = other_image(&image);
    let mut written = vec![
        write(&dir, "busybox-docker.tar", |t| docker_archive(t, &[(&image, "busybox:latest")], false))?,
        write(&dir, "busybox-docker25.tar", |t| docker25_archive(t, &image))?,
        write(&dir, "busybox-legacy.tar", |t| legacy_archive(t, &image, true))?,
        write(&dir, "busybox-legacy-nomanifest.tar", |t| legacy_archive(t, &image, false))?,
        write(&dir, "busybox-oci-gzip.tar", |t| {
            oci_archive(t, &image.config, &image.gzip, media::LAYER_GZIP)
        })?,
        write(&dir, "busybox-oci-zstd.tar", |t| {
            let zstd: Vec<Blob> = image.layers.iter().map(|l| zstd(&l.bytes)).collect();
            oci_archive(t, &image.config, &zstd, media::LAYER_ZSTD)
        })?,
        write(&dir, "busybox-oci-multiarch.tar", |t| oci_multiarch(t, &image))?,
        write(&dir, "symlinks.tar", |t| {
            let image = Image::new(vec![layer1(&busybox), symlinks_layer()], |d| busybox_config(d, false));
            docker_archive(t, &[(&image, "symlinks:latest")], false)
        })?,
        write(&dir, "service.tar", |t| {
            docker_archive(t, &[(&service_image(&image), "service:latest")], false)
        })?,
        write(&dir, "pause.tar", |t| docker_archive(t, &[(&pause_image(&image), "pause:latest")], false))?,
        write(&dir, "multi.tar", |t| {
            docker_archive(t, &[(&image, "busybox:latest"), (&other, "busybox:other")], false)
        })?,
    ];
    if big {
        eprintln!("xtask: generating big.tar (~300 MB of files in one gzip layer)");
        let big = big_image(&busybox);
        written.push(write(&dir, "big.tar", |t| docker_archive(t, &[(&big, "big:latest")], true))?);
    }

    let mut warnings = Vec::new();
    let mut extra = |tool: &str, made: Result<Vec<PathBuf>>| match made {
        Ok(paths) => written.extend(paths),
        Err(e) => {
            eprintln!("xtask: warning: {tool}: {e}");
            warnings.push(tool.to_string());
        }
    };
    extra("skopeo", skopeo(&dir));
    extra("umoci", umoci(&dir));
    extra("podman", podman(&dir));
    if debian {
        written.push(debian_image(&dir)?);
    }

    for path in &written {
        println!("{:>10} bytes  {}", std::fs::metadata(path)?.len(), path.display());
    }
    if !warnings.is_empty() {
        eprintln!("xtask: no tool-made images from {} (see the warnings above)", warnings.join(", "));
    }
    Ok(written)
}

// ---------------------------------------------------------------------------------------------
// Tar archives and blobs

enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

struct Entry {
    path: String,
    mode: u32,
    owner: u64,
    kind: Kind,
    /// Kept after the sorted entries, in the order added.
    unsorted: bool,
}

/// A tar archive built in memory, written with its entries sorted by path.
#[derive(Default)]
struct Tar {
    entries: Vec<Entry>,
    paths: HashSet<String>,
    unsorted: bool,
}

impl Tar {
    fn push(&mut self, path: &str, mode: u32, owner: u64, kind: Kind) -> &mut Self {
        assert!(self.paths.insert(path.to_string()), "{path} added twice");
        self.entries.push(Entry { path: path.to_string(), mode, owner, kind, unsorted: self.unsorted });
        self
    }

    fn has(&self, path: &str) -> bool {
        self.paths.contains(path)
    }

    fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.push(path, mode, 0, Kind::Dir)
    }

    fn dir_owned(&mut self, path: &str, mode: u32, owner: u64) -> &mut Self {
        self.push(path, mode, owner, Kind::Dir)
    }

    fn file(&mut self, path: &str, mode: u32, data: impl Into<Vec<u8>>) -> &mut Self {
        self.push(path, mode, 0, Kind::File(data.into()))
    }

    fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.push(path, 0o777, 0, Kind::Symlink(target.to_string()))
    }

    /// Adds `blobs/sha256/<hex>` (and its directories), unless an earlier image added it.
    fn blob(&mut self, blob: &Blob) -> &mut Self {
        for dir in ["blobs/", "blobs/sha256/"] {
            if !self.has(dir) {
                self.dir(dir, 0o755);
            }
        }
        let path = format!("blobs/sha256/{}", blob.hex());
        if !self.has(&path) {
            self.file(&path, 0o644, blob.bytes.clone());
        }
        self
    }

    /// Entries added from now on are written after the sorted ones, in the order added.
    fn then_unsorted(&mut self) -> &mut Self {
        self.unsorted = true;
        self
    }

    fn write<W: Write>(mut self, out: W) -> io::Result<W> {
        self.entries.sort_by(|a, b| match (a.unsorted, b.unsorted) {
            (false, false) => a.path.cmp(&b.path),
            (a, b) => a.cmp(&b),
        });
        let mut builder = tar::Builder::new(out);
        for entry in &self.entries {
            let mut header = tar::Header::new_ustar();
            header.set_mtime(MTIME);
            header.set_uid(entry.owner);
            header.set_gid(entry.owner);
            header.set_mode(entry.mode);
            header.set_size(0);
            let data: &[u8] = match &entry.kind {
                Kind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    b""
                }
                Kind::File(data) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(data.len() as u64);
                    data
                }
                Kind::Symlink(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_link_name(target)?;
                    b""
                }
            };
            // The name goes in verbatim, keeping a directory's trailing slash and a leading "./",
            // which the builder's path setters normalize away.
            let name = &mut header.as_old_mut().name;
            if entry.path.len() > name.len() {
                builder.append_data(&mut header, &entry.path, data)?;
            } else {
                name[..entry.path.len()].copy_from_slice(entry.path.as_bytes());
                header.set_cksum();
                builder.append(&header, data)?;
            }
        }
        builder.into_inner()
    }

    fn into_bytes(self) -> Vec<u8> {
        self.write(Vec::new()).expect("writing a tar to memory")
    }
}

/// Content-addressed data: a layer, a config, a manifest or an index.
#[derive(Clone)]
struct Blob {
    /// `sha256:<hex>`.
    digest: String,
    size: u64,
    bytes: Vec<u8>,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Blob {
        Blob { digest: format!("sha256:{}", sha256_hex(&bytes)), size: bytes.len() as u64, bytes }
    }

    fn json(value: &Value) -> Blob {
        Blob::new(serde_json::to_vec(value).expect("JSON values serialize"))
    }

    fn hex(&self) -> &str {
        &self.digest["sha256:".len()..]
    }

    /// The OCI descriptor of this blob.
    fn descriptor(&self, media_type: &str) -> Value {
        json!({ "mediaType": media_type, "digest": self.digest, "size": self.size })
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn gzip(bytes: &[u8]) -> Blob {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("compressing in memory");
    Blob::new(encoder.finish().expect("compressing in memory"))
}

fn zstd(bytes: &[u8]) -> Blob {
    Blob::new(zstd::encode_all(bytes, 3).expect("compressing in memory"))
}

/// Writes the archive that `fill` builds to `dir/name` (through a temporary file), and reads it
/// back to check it.
fn write(dir: &Path, name: &str, fill: impl FnOnce(&mut Tar)) -> Result<PathBuf> {
    let mut tar = Tar::default();
    fill(&mut tar);
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    tar.write(BufWriter::new(File::create(&tmp)?))?.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    verify(&path)?;
    Ok(path)
}

// ---------------------------------------------------------------------------------------------
// The image

/// Layer 1: the busybox userland.
fn layer1(busybox: &[u8]) -> Tar {
    let mut t = Tar::default();
    t.dir("bin/", 0o755).file("bin/busybox", 0o755, busybox);
    for applet in APPLETS {
        t.symlink(&format!("bin/{applet}"), "busybox");
    }
    t.dir("dev/", 0o755)
        .dir("etc/", 0o755)
        .file("etc/passwd", 0o644, PASSWD)
        .file("etc/group", 0o644, GROUP)
        .file("etc/deleted-later", 0o644, "should be gone\n")
        .dir("home/", 0o755)
        .dir_owned("home/app/", 0o755, 1000)
        .dir("opt/", 0o755)
        .dir("opt/replaced/", 0o755)
        .file("opt/replaced/old-a", 0o644, "old a\n")
        .file("opt/replaced/old-b", 0o644, "old b\n")
        .dir("proc/", 0o555)
        .dir("root/", 0o700)
        .dir("run/", 0o755)
        .dir("sys/", 0o555)
        .dir("tmp/", 0o1777)
        .dir("var/", 0o755)
        .symlink("var/run", "/run");
    t
}

/// Layer 2: a whiteout, and an opaque directory whose marker comes after the directory's new file
/// (so an unpacker must not apply the markers in archive order).
fn layer2() -> Tar {
    let mut t = Tar::default();
    t.dir("etc/", 0o755)
        .file("etc/.wh.deleted-later", 0o644, "")
        .file("etc/layer2", 0o644, "layer 2\n")
        .dir("opt/", 0o755)
        .dir("opt/replaced/", 0o755)
        .file("opt/replaced/new", 0o644, "new\n")
        .then_unsorted()
        .file("opt/replaced/.wh..wh..opq", 0o644, "");
    t
}

/// A layer whose mount targets are symlinks pointing out of the rootfs (CVE-2019-16884 family):
/// a runtime that follows them on the host would mount over host paths.
fn symlinks_layer() -> Tar {
    let mut t = Tar::default();
    t.symlink("data", "/tmp/spawner-escape-data")
        .symlink("data2", "../../../../../../tmp/spawner-escape-data2")
        .symlink("proc", "/")
        .dir("etc/", 0o755)
        .symlink("etc/hostname", "/tmp/spawner-escape-hostname");
    t
}

/// Layer 3: a message of the day and a script on PATH.
fn layer3() -> Tar {
    let mut t = Tar::default();
    t.dir("etc/", 0o755)
        .file("etc/motd", 0o644, "hello from spawner's busybox image\n")
        .dir("usr/", 0o755)
        .dir("usr/local/", 0o755)
        .dir("usr/local/bin/", 0o755)
        .file("usr/local/bin/greet", 0o755, "#!/bin/sh\necho \"greetings, $1\"\n");
    t
}

struct Image {
    config: Blob,
    /// The sha256 of each uncompressed layer, as in the config's rootfs.
    diff_ids: Vec<String>,
    /// The uncompressed layers.
    layers: Vec<Blob>,
    gzip: Vec<Blob>,
}

impl Image {
    fn new(layers: Vec<Tar>, config: impl FnOnce(&[String]) -> Value) -> Image {
        let layers: Vec<Blob> = layers.into_iter().map(|t| Blob::new(t.into_bytes())).collect();
        let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
        let gzip = layers.iter().map(|l| gzip(&l.bytes)).collect();
        Image { config: Blob::json(&config(&diff_ids)), diff_ids, layers, gzip }
    }

    fn config(&self) -> Value {
        serde_json::from_slice(&self.config.bytes).expect("our config is JSON")
    }
}

/// The image config of busybox:latest, or with `other` of busybox:other.
fn busybox_config(diff_ids: &[String], other: bool) -> Value {
    let (cmd, env) = match other {
        false => (vec!["sh"], vec![PATH_ENV, "GREETING=hello"]),
        true => (vec!["echo", "other image"], vec![PATH_ENV, "GREETING=hello", "OTHER=1"]),
    };
    let step = |created_by: &str, empty: bool| match empty {
        false => json!({ "created": CREATED, "created_by": created_by }),
        true => json!({ "created": CREATED, "created_by": created_by, "empty_layer": true }),
    };
    let mut history = vec![
        step("ADD busybox-userland.tar /", false),
        step("RUN rm /etc/deleted-later && rm -r /opt/replaced/* && echo new > /opt/replaced/new", false),
        step("COPY motd /etc/ && COPY greet /usr/local/bin/", false),
        step("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin GREETING=hello", true),
        step("LABEL org.example.test=busybox", true),
    ];
    if other {
        history.push(step("ENV OTHER=1", true));
    }
    history.push(step(&format!("CMD {}", serde_json::to_string(&cmd).unwrap()), true));
    json!({
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "Env": env,
            "Cmd": cmd,
            "WorkingDir": "/",
            "Labels": { "org.example.test": "busybox" },
        },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": history,
    })
}

fn busybox_image(busybox: &[u8]) -> Image {
    Image::new(vec![layer1(busybox), layer2(), layer3()], |diff_ids| busybox_config(diff_ids, false))
}

/// busybox:other: the same layers, another config.
fn other_image(image: &Image) -> Image {
    Image {
        config: Blob::json(&busybox_config(&image.diff_ids, true)),
        diff_ids: image.diff_ids.clone(),
        layers: image.layers.clone(),
        gzip: image.gzip.clone(),
    }
}

/// service:latest: busybox's layers with a config as a service image has one: a VOLUME over a
/// directory the image fills (/opt/replaced holds `new`) and a StopSignal.
fn service_image(image: &Image) -> Image {
    let mut config = busybox_config(&image.diff_ids, false);
    config["config"]["Volumes"] = json!({ "/opt/replaced": {} });
    config["config"]["StopSignal"] = json!("SIGUSR1");
    Image {
        config: Blob::json(&config),
        diff_ids: image.diff_ids.clone(),
        layers: image.layers.clone(),
        gzip: image.gzip.clone(),
    }
}

/// pause:latest: busybox's layers with a command that blocks, the CRI tests' sandbox (pause)
/// image: a pod's sandbox container must keep running for its containers to join its namespaces.
fn pause_image(image: &Image) -> Image {
    let mut config = busybox_config(&image.diff_ids, false);
    config["config"]["Cmd"] = json!(["sleep", "inf"]);
    Image {
        config: Blob::json(&config),
        diff_ids: image.diff_ids.clone(),
        layers: image.layers.clone(),
        gzip: image.gzip.clone(),
    }
}

/// The arm64 half of the multi-arch image: one small layer and its own config.
fn arm64_image() -> Image {
    let mut layer = Tar::default();
    layer.dir("etc/", 0o755).file("etc/arch", 0o644, "arm64\n");
    Image::new(vec![layer], |diff_ids| {
        json!({
            "architecture": "arm64",
            "variant": "v8",
            "os": "linux",
            "created": CREATED,
            "config": { "Env": [PATH_ENV], "Cmd": ["/bin/sh"] },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": [{ "created": CREATED, "created_by": "ADD arch /etc/" }],
        })
    })
}

/// One gzip layer of ~300 MB: the busybox userland (so the image runs) and ~5,000 files of
/// pseudo-random sizes (64 B to 8 MiB, most small) and content (words, or bytes of 6 random bits),
/// which gzip shrinks to about a half.
fn big_image(busybox: &[u8]) -> Image {
    const TOTAL: u64 = 300 << 20;
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let words: Vec<Vec<u8>> =
        (0..512).map(|_| (0..3 + rng.below(8)).map(|_| b'a' + rng.below(26) as u8).collect()).collect();
    let mut t = layer1(busybox);
    t.dir("data/", 0o755);
    for d in 0..64 {
        t.dir(&format!("data/{d:02}/"), 0o755);
    }
    let (mut total, mut n) = (0, 0);
    while total < TOTAL {
        let (lo, hi) = if rng.below(100) < 97 { (64.0, 65536.0) } else { (65536.0, 8388608.0) };
        let size = f64::exp(f64::ln(lo) + rng.unit() * (f64::ln(hi) - f64::ln(lo))) as usize;
        let mut data = Vec::with_capacity(size + 16);
        let text = rng.below(3) < 2;
        while data.len() < size {
            if text {
                data.extend_from_slice(&words[rng.below(512) as usize]);
                data.push(if rng.below(12) == 0 { b'\n' } else { b' ' });
            } else {
                data.extend_from_slice(&(rng.next() & 0x3f3f_3f3f_3f3f_3f3f).to_le_bytes());
            }
        }
        data.truncate(size);
        total += size as u64;
        let ext = if text { "txt" } else { "bin" };
        t.file(&format!("data/{:02}/f{n:05}.{ext}", n % 64), 0o644, data);
        n += 1;
    }
    Image::new(vec![t], |diff_ids| {
        json!({
            "architecture": "amd64",
            "os": "linux",
            "created": CREATED,
            "config": { "Env": [PATH_ENV], "Cmd": ["sh"], "WorkingDir": "/" },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": [{ "created": CREATED, "created_by": format!("ADD busybox and {n} files /") }],
        })
    })
}

/// xorshift64*: deterministic, and fast enough in a debug build.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ---------------------------------------------------------------------------------------------
// Archive forms

/// The `container_config` of Docker's v1 layer json for the layers below the top one.
fn empty_container_config() -> Value {
    json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false, "AttachStdout": false,
        "AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": null,
        "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "", "Entrypoint": null,
        "OnBuild": null, "Labels": null,
    })
}

/// The config without what v1 layer json does not have.
fn v1_config(image: &Image) -> Value {
    let mut config = image.config();
    let fields = config.as_object_mut().expect("a config is an object");
    fields.remove("rootfs");
    fields.remove("history");
    config
}

/// The v1 ids and `json` files of the layers, as `docker save` (Docker ≤ 24) makes them: each
/// layer's id hashes its json with its chain id, like moby's `v1.CreateID`; the top layer's json
/// is the image config, so two images that share all layers but differ in config get different
/// top ids.
fn docker_v1_layers(image: &Image) -> Vec<(String, Value)> {
    let mut layers: Vec<(String, Value)> = Vec::new();
    let mut chain_id = String::new();
    for (i, diff_id) in image.diff_ids.iter().enumerate() {
        chain_id = match i {
            0 => diff_id.clone(),
            _ => format!("sha256:{}", sha256_hex(format!("{chain_id} {diff_id}").as_bytes())),
        };
        let mut json = match i + 1 == image.diff_ids.len() {
            true => v1_config(image),
            false => {
                json!({ "created": "1970-01-01T00:00:00Z", "container_config": empty_container_config() })
            }
        };
        json["os"] = json!("linux");
        if let Some((parent, _)) = layers.last() {
            json["parent"] = json!(parent);
        }
        let mut hashed = json.clone();
        hashed["layer_id"] = json!(chain_id);
        let id = sha256_hex(&serde_json::to_vec(&hashed).unwrap());
        json["id"] = json!(id);
        layers.push((id, json));
    }
    layers
}

/// A docker-archive as `docker save` (Docker ≤ 24) writes it: `<v1id>/{VERSION,json,layer.tar}`
/// per layer, `<config hex>.json`, `manifest.json` and `repositories`. A layer that a second image
/// saves under another v1 id is a symlink to the first copy, as Docker does. `gzip` writes the
/// layers compressed (which `docker load` also accepts).
fn docker_archive(t: &mut Tar, images: &[(&Image, &str)], gzip: bool) {
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<&str, BTreeMap<&str, String>> = BTreeMap::new();
    let mut saved: BTreeMap<&str, String> = BTreeMap::new();
    for &(image, repo_tag) in images {
        let v1_layers = docker_v1_layers(image);
        let payloads = if gzip { &image.gzip } else { &image.layers };
        let mut layer_paths = Vec::new();
        for (((id, json), diff_id), payload) in v1_layers.iter().zip(&image.diff_ids).zip(payloads) {
            let path = format!("{id}/layer.tar");
            layer_paths.push(path.clone());
            if t.has(&format!("{id}/")) {
                continue;
            }
            t.dir(&format!("{id}/"), 0o755).file(&format!("{id}/VERSION"), 0o644, "1.0").file(
                &format!("{id}/json"),
                0o644,
                serde_json::to_vec(json).unwrap(),
            );
            match saved.get(diff_id.as_str()) {
                Some(earlier) => t.symlink(&path, &format!("../{earlier}")),
                None => t.file(&path, 0o644, payload.bytes.clone()),
            };
            saved.entry(diff_id).or_insert(path);
        }
        let config = format!("{}.json", image.config.hex());
        if !t.has(&config) {
            t.file(&config, 0o644, image.config.bytes.clone());
        }
        manifest.push(json!({ "Config": config, "RepoTags": [repo_tag], "Layers": layer_paths }));
        let (repo, tag) = repo_tag.split_once(':').expect("repo:tag");
        let (top, _) = v1_layers.last().expect("an image has layers");
        repositories.entry(repo).or_default().insert(tag, top.clone());
    }
    t.file("manifest.json", 0o644, json_line(&json!(manifest))).file(
        "repositories",
        0o644,
        json_line(&json!(repositories)),
    );
}

/// JSON as Go's `json.Encoder`, which `docker save` uses, writes it: compact, then a newline.
fn json_line(value: &Value) -> Vec<u8> {
    format!("{value}\n").into_bytes()
}

/// A docker-archive as `docker save` writes it since Docker 25: an OCI layout with uncompressed
/// layers, plus a `manifest.json` pointing into blobs/ and `repositories`.
fn docker25_archive(t: &mut Tar, image: &Image) {
    let manifest = oci_manifest(t, &image.config, &image.layers, media::LAYER);
    oci_layout(t, vec![tagged(manifest.descriptor(media::MANIFEST))]);
    let blob = |b: &Blob| format!("blobs/sha256/{}", b.hex());
    let docker_manifest = json!([{
        "Config": blob(&image.config),
        "RepoTags": ["busybox:latest"],
        "Layers": image.layers.iter().map(blob).collect::<Vec<_>>(),
    }]);
    let top = image.layers.last().expect("an image has layers").hex();
    t.file("manifest.json", 0o644, json_line(&docker_manifest)).file(
        "repositories",
        0o644,
        json_line(&json!({ "busybox": { "latest": top } })),
    );
}

/// What moby's contrib/download-frozen-image-v2.sh leaves, tarred as it advises (`tar -cC dir .`,
/// hence the "./" names): per layer `<id>/layer.tar` holding the registry's gzip blob as is, a
/// `json` (the image config on the top layer) and `VERSION`; `repositories`; and, from newer
/// versions of the script (`with_manifest`), `manifest.json` and the config. Its fake layer ids
/// are `sha256("<parent id>\n<blob digest>\n")`; its JSON comes from jq, pretty-printed.
fn legacy_archive(t: &mut Tar, image: &Image, with_manifest: bool) {
    let pretty = |v: &Value| format!("{}\n", serde_json::to_string_pretty(v).unwrap());
    t.dir("./", 0o755);
    let mut parent = String::new();
    let mut layer_paths = Vec::new();
    for (i, blob) in image.gzip.iter().enumerate() {
        let id = sha256_hex(format!("{parent}\n{}\n", blob.digest).as_bytes());
        let mut json = match i + 1 == image.gzip.len() {
            true => v1_config(image),
            false => {
                json!({ "created": "0001-01-01T00:00:00Z", "container_config": empty_container_config() })
            }
        };
        json["id"] = json!(id);
        if !parent.is_empty() {
            json["parent"] = json!(parent);
        }
        t.dir(&format!("./{id}/"), 0o755)
            .file(&format!("./{id}/VERSION"), 0o644, "1.0\n")
            .file(&format!("./{id}/json"), 0o644, pretty(&json))
            .file(&format!("./{id}/layer.tar"), 0o644, blob.bytes.clone());
        layer_paths.push(format!("{id}/layer.tar"));
        parent = id;
    }
    t.file("./repositories", 0o644, format!("{{\n\t\"busybox\": {{ \"latest\": \"{parent}\" }}\n}}\n"));
    if with_manifest {
        let config = format!("{}.json", image.config.hex());
        let manifest = json!([{ "Config": config, "RepoTags": ["busybox:latest"], "Layers": layer_paths }]);
        t.file(&format!("./{config}"), 0o644, image.config.bytes.clone()).file(
            "./manifest.json",
            0o644,
            pretty(&manifest),
        );
    }
}

/// Adds an image's config, layers and OCI manifest to blobs/; returns the manifest.
fn oci_manifest(t: &mut Tar, config: &Blob, layers: &[Blob], layer_type: &str) -> Blob {
    let manifest = Blob::json(&json!({
        "schemaVersion": 2,
        "mediaType": media::MANIFEST,
        "config": config.descriptor(media::CONFIG),
        "layers": layers.iter().map(|l| l.descriptor(layer_type)).collect::<Vec<_>>(),
    }));
    t.blob(config);
    for layer in layers {
        t.blob(layer);
    }
    t.blob(&manifest);
    manifest
}

/// The descriptor with the tag annotations that containerd and Docker write.
fn tagged(mut descriptor: Value) -> Value {
    descriptor["annotations"] = json!({
        "io.containerd.image.name": FULL_NAME,
        "org.opencontainers.image.ref.name": "latest",
    });
    descriptor
}

/// `oci-layout` and `index.json`.
fn oci_layout(t: &mut Tar, manifests: Vec<Value>) {
    let index = json!({ "schemaVersion": 2, "mediaType": media::INDEX, "manifests": manifests });
    t.file("oci-layout", 0o644, r#"{"imageLayoutVersion":"1.0.0"}"#).file(
        "index.json",
        0o644,
        serde_json::to_vec(&index).unwrap(),
    );
}

/// An OCI image layout holding one image, its layers compressed as `layers` are.
fn oci_archive(t: &mut Tar, config: &Blob, layers: &[Blob], layer_type: &str) {
    let manifest = oci_manifest(t, config, layers, layer_type);
    oci_layout(t, vec![tagged(manifest.descriptor(media::MANIFEST))]);
}

/// An OCI layout whose index.json names a nested image index of two images: linux/arm64 (a tiny
/// one) and linux/amd64 (ours).
fn oci_multiarch(t: &mut Tar, image: &Image) {
    let arm64 = arm64_image();
    let arm64_manifest = oci_manifest(t, &arm64.config, &arm64.gzip, media::LAYER_GZIP);
    let amd64_manifest = oci_manifest(t, &image.config, &image.gzip, media::LAYER_GZIP);
    let mut arm64_descriptor = arm64_manifest.descriptor(media::MANIFEST);
    arm64_descriptor["platform"] = json!({ "architecture": "arm64", "os": "linux", "variant": "v8" });
    let mut amd64_descriptor = amd64_manifest.descriptor(media::MANIFEST);
    amd64_descriptor["platform"] = json!({ "architecture": "amd64", "os": "linux" });
    let index = Blob::json(&json!({
        "schemaVersion": 2,
        "mediaType": media::INDEX,
        "manifests": [arm64_descriptor, amd64_descriptor],
    }));
    t.blob(&index);
    oci_layout(t, vec![tagged(index.descriptor(media::INDEX))]);
}

// ---------------------------------------------------------------------------------------------
// Checks

/// Reads an archive back: each JSON file parses, each blob matches its digest, and what
/// manifest.json and index.json name is there.
fn verify(path: &Path) -> Result<()> {
    let fail = |what: String| format!("{}: {what}", path.display());
    let mut names = HashSet::new();
    let mut references = Vec::new();
    let mut archive = tar::Archive::new(io::BufReader::new(File::open(path)?));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().trim_start_matches("./").to_string();
        names.insert(name.clone());
        let base = name.rsplit('/').next().unwrap_or_default();
        let json = name.ends_with(".json") || matches!(base, "json" | "repositories" | "oci-layout");
        let blob = name.strip_prefix("blobs/sha256/").filter(|hex| !hex.is_empty());
        if entry.header().entry_type() != tar::EntryType::Regular || !(json || blob.is_some()) {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        if let Some(hex) = blob {
            if sha256_hex(&bytes) != hex {
                return Err(fail(format!("{name} does not match its digest")).into());
            }
        }
        if json {
            let value: Value = serde_json::from_slice(&bytes).map_err(|e| fail(format!("{name}: {e}")))?;
            match name.as_str() {
                "manifest.json" => {
                    for image in value.as_array().into_iter().flatten() {
                        references.push(image["Config"].as_str().unwrap_or_default().to_string());
                        let layers = image["Layers"].as_array().into_iter().flatten();
                        references.extend(layers.map(|l| l.as_str().unwrap_or_default().to_string()));
                    }
                }
                "index.json" => {
                    for manifest in value["manifests"].as_array().into_iter().flatten() {
                        let digest = manifest["digest"].as_str().unwrap_or_default();
                        references.push(format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")));
                    }
                }
                _ => {}
            }
        }
    }
    match references.iter().find(|r| !names.contains(r.as_str())) {
        Some(missing) => Err(fail(format!("names {missing}, which it does not hold")).into()),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// The same image as real tools write it

/// Removes what an earlier run left at `path`.
fn remove(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path)?,
        Ok(_) => std::fs::remove_file(path)?,
        Err(_) => {}
    }
    Ok(())
}

/// busybox-oci-gzip.tar copied by skopeo into a docker-archive and an oci-archive.
fn skopeo(dir: &Path) -> Result<Vec<PathBuf>> {
    apt_install(&["skopeo"])?;
    let source = format!("oci-archive:{}:latest", dir.join("busybox-oci-gzip.tar").display());
    let docker = dir.join("busybox-skopeo-docker.tar");
    let oci = dir.join("busybox-skopeo-oci.tar");
    for (path, destination) in [
        (&docker, format!("docker-archive:{}:busybox:latest", docker.display())),
        (&oci, format!("oci-archive:{}:latest", oci.display())),
    ] {
        remove(path)?;
        run(cmd("skopeo").args(["--insecure-policy", "copy", "--quiet", &source, &destination]))?;
        verify(path)?;
    }
    Ok(vec![docker, oci])
}

/// umoci unpacks busybox-oci-gzip.tar (a check that a real tool applies our whiteouts as we
/// mean them), then repacks it with one more file: busybox-umoci.tar, an OCI layout of 4 layers.
fn umoci(dir: &Path) -> Result<Vec<PathBuf>> {
    apt_install(&["umoci"])?;
    let work = dir.join(".umoci");
    remove(&work)?;
    let (layout, bundle) = (work.join("layout"), work.join("bundle"));
    tar::Archive::new(File::open(dir.join("busybox-oci-gzip.tar"))?).unpack(&layout)?;
    let image = format!("{}:latest", layout.display());
    run(cmd("umoci").args(["unpack", "--image", &image]).arg(&bundle))?;
    check_rootfs(&bundle.join("rootfs"))?;
    std::fs::write(bundle.join("rootfs/etc/umoci"), "repacked by umoci\n")?;
    run(cmd("umoci").args(["repack", "--image", &image]).arg(&bundle))?;
    run(cmd("umoci").args(["gc", "--layout"]).arg(&layout))?;
    let mut t = Tar::default();
    add_dir(&mut t, &layout, "")?;
    let path = write(dir, "busybox-umoci.tar", |tar| *tar = t)?;
    remove(&work)?;
    Ok(vec![path])
}

/// What the three layers make, unpacked by another tool.
fn check_rootfs(rootfs: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).unwrap_or_default();
    let mut replaced: Vec<String> = std::fs::read_dir(rootfs.join("opt/replaced"))?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<_>>()?;
    replaced.sort();
    let checks = [
        ("etc/deleted-later is gone", !rootfs.join("etc/deleted-later").exists()),
        ("opt/replaced holds only new", replaced == ["new"]),
        ("etc/layer2", read("etc/layer2") == "layer 2\n"),
        ("etc/motd", read("etc/motd") == "hello from spawner's busybox image\n"),
        ("bin/sh -> busybox", std::fs::read_link(rootfs.join("bin/sh"))? == Path::new("busybox")),
        ("var/run -> /run", std::fs::read_link(rootfs.join("var/run"))? == Path::new("/run")),
        ("tmp is 1777", std::fs::metadata(rootfs.join("tmp"))?.permissions().mode() & 0o7777 == 0o1777),
        ("home/app is 1000's", std::fs::metadata(rootfs.join("home/app"))?.uid() == 1000),
    ];
    match checks.iter().find(|(_, ok)| !ok) {
        Some((what, _)) => Err(format!("unpacked rootfs fails the check: {what}").into()),
        None => Ok(()),
    }
}

/// Adds a directory tree (regular files, directories and symlinks) to `t`, sorted.
fn add_dir(t: &mut Tar, dir: &Path, prefix: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let meta = entry.path().symlink_metadata()?;
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            t.dir(&format!("{name}/"), mode);
            add_dir(t, &entry.path(), &format!("{name}/"))?;
        } else if meta.is_symlink() {
            t.symlink(&name, &std::fs::read_link(entry.path())?.to_string_lossy());
        } else {
            t.file(&name, mode, std::fs::read(entry.path())?);
        }
    }
    Ok(())
}

/// busybox-docker.tar loaded into podman (storage under target/images/.podman, removed after),
/// and saved again as a docker-archive and an oci-archive.
/// A real distribution userland, made the way users get one: debootstrap (minbase bookworm and
/// python3, from Debian's archive; cached under target/images/.debian-rootfs), then `podman import` with the
/// image config set by `--change`, and `podman save` as a docker-archive.
fn debian_image(dir: &Path) -> Result<PathBuf> {
    apt_install(&["debootstrap", "podman"])?;
    let rootfs = dir.join(".debian-rootfs");
    let complete = dir.join(".debian-rootfs.complete");
    // python3 for a real server (http.server) in the lifecycle tests; the marker says what the
    // cached rootfs holds, so a change here makes it again.
    let include = "--include=python3";
    if std::fs::read_to_string(&complete).ok().as_deref() != Some(include) {
        remove(&rootfs)?;
        eprintln!("xtask: debootstrap of Debian bookworm with python3 (about a minute, once)");
        run(cmd("debootstrap")
            .args(["--variant=minbase", include, "bookworm"])
            .arg(&rootfs)
            .arg("http://deb.debian.org/debian"))?;
        std::fs::write(&complete, include)?;
    }
    let out = dir.join("debian.tar");
    if out.exists() && std::fs::metadata(&out)?.modified()? >= std::fs::metadata(&complete)?.modified()? {
        return Ok(out);
    }
    let store = dir.join(".podman-debian");
    remove(&store)?;
    let podman = || {
        let mut c = cmd("podman");
        c.arg("--root").arg(store.join("root")).arg("--runroot").arg(store.join("run"));
        c.args(["--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs"]);
        c
    };
    let tarball = dir.join(".debian-rootfs.tar");
    let result = (|| -> Result<()> {
        // Without the .debs debootstrap leaves in apt's cache (40 MB), as Debian's own images.
        run(cmd("tar")
            .arg("-C")
            .arg(&rootfs)
            .args(["--numeric-owner", "--exclude=./var/cache/apt/archives/*.deb", "-cf"])
            .arg(&tarball)
            .arg("."))?;
        output(
            podman()
                .args(["import", "--quiet", "--change", "ENV LANG=C.UTF-8", "--change", "WORKDIR /root"])
                .args(["--change", "CMD [\"bash\"]"])
                .arg(&tarball)
                .arg("debian:bookworm"),
        )?;
        remove(&out)?;
        run(podman()
            .args(["save", "--quiet", "--format", "docker-archive", "--output"])
            .arg(&out)
            .arg("debian:bookworm"))
    })();
    remove(&store)?;
    let _ = std::fs::remove_file(&tarball);
    result?;
    Ok(out)
}

fn podman(dir: &Path) -> Result<Vec<PathBuf>> {
    // Installing podman took ~10 s on this machine.
    apt_install(&["podman"])?;
    let store = dir.join(".podman");
    remove(&store)?;
    let podman = || {
        let mut c = cmd("podman");
        c.arg("--root").arg(store.join("root")).arg("--runroot").arg(store.join("run"));
        c.args(["--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs"]);
        c
    };
    let docker = dir.join("busybox-podman.tar");
    let oci = dir.join("busybox-podman-oci.tar");
    let result = (|| -> Result<Vec<PathBuf>> {
        output(podman().args(["load", "--quiet", "--input"]).arg(dir.join("busybox-docker.tar")))?;
        for (path, format) in [(&docker, "docker-archive"), (&oci, "oci-archive")] {
            remove(path)?;
            run(podman()
                .args(["save", "--quiet", "--format", format, "--output"])
                .arg(path)
                .arg("busybox:latest"))?;
            verify(path)?;
        }
        Ok(vec![docker.clone(), oci.clone()])
    })();
    remove(&store)?;
    result
}
