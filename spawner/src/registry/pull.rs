//! `spawner pull REF`: the manifest (by tag, checked against the registry's
//! `Docker-Content-Digest`, or by digest), through an index to the platform's manifest, the config,
//! then the layer blobs not already in the store, `jobs` at a time, each unpacked into the layer
//! store while it downloads into the content store (one pass: network, hash, decompress, unpack,
//! as `curl | tee | tar -xz` would), and each put in place only once both its digests match;
//! then the image is named in the content store's index and recorded, as an archive's image is.
//! Nothing is named before every blob it needs is verified and stored.

use super::blob::{read_ahead, BlobStream, ReadAhead, ATTEMPTS};
use super::client::{Client, Fetched, Options};
use super::reference::Reference;
use super::RegistryError;
use crate::image::oci::{Descriptor, IndexOrManifest as Document};
use crate::image::{Archive, Digest, Platform};
use crate::store::content::Content;
use crate::store::LayerStore;
use serde::Deserialize;
use std::time::Duration;

/// What `pull` is asked for.
#[derive(Debug, Clone)]
pub struct PullOptions {
    pub registry: Options,
    /// `--platform`; this host's when None.
    pub platform: Option<Platform>,
    /// Layers downloaded at once (Docker's max-concurrent-downloads: 3).
    pub jobs: usize,
    /// No progress lines.
    pub quiet: bool,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions { registry: Options::default(), platform: None, jobs: 3, quiet: false }
    }
}

/// What a pull stored.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The full reference the image is stored under.
    pub name: String,
    pub manifest_digest: Digest,
    /// Docker's image ID.
    pub config_digest: Digest,
    /// Layer blobs downloaded (not found in the store already).
    pub downloaded: usize,
}

/// A blob the manifest names, with the size the registry protocol requires of its descriptor.
struct Blob {
    digest: Digest,
    size: u64,
}

impl Blob {
    fn of(reference: &str, d: &Descriptor) -> Result<Blob, RegistryError> {
        let size = d.size.ok_or_else(|| RegistryError::Unsupported {
            reference: reference.to_string(),
            reason: format!("the manifest gives no size for {}", d.digest),
        })?;
        Ok(Blob { digest: d.digest.clone(), size })
    }
}

#[derive(Deserialize)]
struct ConfigRootFs {
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
];

const CONFIG_TYPES: &[&str] =
    &["application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"];

/// Pulls `reference` into `store` (its content store and layers) and names it there.
pub fn pull(
    store: &LayerStore,
    reference: &Reference,
    options: &PullOptions,
) -> Result<Pulled, RegistryError> {
    // prune waits for the pull (it removes unfinished downloads and unnamed blobs).
    let _hold = store.hold()?;
    let content = Content::open(store.root())?;
    let name = reference.to_string();
    let wanted = options.platform.clone().unwrap_or_else(Platform::host);
    let progress = super::progress::Progress::new(options.quiet);
    let say = |line: &str| progress.say(line);
    say(&format!("Pulling {name}"));

    // The manifest: by digest (pinned), or by tag (checked against the registry's digest); from
    // the first mirror that has it, else the registry.
    let (client, fetched) = first_answer(reference, options)?;
    let mut digest = manifest_digest(&name, reference.digest.as_ref(), &fetched)?;
    let mut bytes = fetched.bytes;
    let mut media_type = fetched.media_type;
    for _ in 0..3 {
        let doc = parse(&name, &bytes)?;
        let Some(manifests) = doc.manifests else { break };
        let chosen = choose(&manifests, &wanted).ok_or_else(|| RegistryError::NoPlatform {
            reference: name.clone(),
            wanted: wanted.to_string(),
            available: manifests
                .iter()
                .filter_map(|m| m.platform.as_ref().map(Platform::to_string))
                .collect(),
        })?;
        let fetched = retry(|| client.manifest(&chosen.digest.to_string()))?;
        digest = manifest_digest(&name, Some(&chosen.digest), &fetched)?;
        bytes = fetched.bytes;
        media_type = chosen.media_type.clone().or(fetched.media_type);
    }
    let doc = parse(&name, &bytes)?;
    let (Some(config), Some(layers)) = (doc.config, doc.layers) else {
        return Err(RegistryError::Unsupported {
            reference: name,
            reason: "the manifest names no config and layers (or an index nests too deep)".into(),
        });
    };
    let media_type = doc.media_type.or(media_type);
    if let Some(t) = config.media_type.as_deref().filter(|t| !CONFIG_TYPES.contains(t)) {
        return Err(RegistryError::Unsupported {
            reference: name,
            reason: format!("unsupported media type {t}: not a container image config (an artifact?)"),
        });
    }
    if let Some(l) =
        layers.iter().find(|l| l.media_type.as_deref().is_some_and(|t| !LAYER_TYPES.contains(&t)))
    {
        return Err(RegistryError::Unsupported {
            reference: name,
            reason: format!("unsupported layer media type {}", l.media_type.as_deref().unwrap_or("")),
        });
    }

    let config = Blob::of(&name, &config)?;
    let layers = layers.iter().map(|l| Blob::of(&name, l)).collect::<Result<Vec<_>, _>>()?;

    // The config, then the layers whose content the store lacks.
    if !content.has_blob(&config.digest) {
        let config_bytes = retry(|| fetch_small(&client, &config))?;
        content.put(&config.digest, &config_bytes)?;
    }
    let config_bytes = std::fs::read(content.blob_path(&config.digest)).map_err(|e| {
        RegistryError::Store(crate::store::StoreError::Io {
            op: "read",
            path: content.blob_path(&config.digest),
            source: e,
        })
    })?;
    let diff_ids = serde_json::from_slice::<ConfigRootFs>(&config_bytes)
        .ok()
        .and_then(|c| c.rootfs)
        .map(|r| r.diff_ids)
        .unwrap_or_default();
    if diff_ids.len() != layers.len() {
        return Err(RegistryError::Unsupported {
            reference: name,
            reason: format!("the config lists {} layers, the manifest {}", diff_ids.len(), layers.len()),
        });
    }
    let missing: Vec<(&Blob, &Digest)> = layers
        .iter()
        .zip(&diff_ids)
        .filter(|(layer, diff_id)| !store.has_layer(diff_id) && !content.has_blob(&layer.digest))
        .collect();
    download_all(&client, store, &content, &missing, options.jobs.max(1), &progress)?;

    // Named only now, every blob it needs in place and its layers unpacked; then recorded as any
    // stored image.
    content.put(&digest, &bytes)?;
    let descriptor = serde_json::json!({
        "mediaType": media_type.unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into()),
        "digest": digest.to_string(),
        "size": bytes.len(),
    });
    content.tag(&name, descriptor)?;
    let archive = Archive::open(content.path())?;
    let image = archive.select(Some(&name))?;
    store.ensure_image(&archive, &image)?;
    say(&format!("Digest: {digest}"));
    Ok(Pulled { name, manifest_digest: digest, config_digest: config.digest, downloaded: missing.len() })
}

/// A client for the first endpoint (mirrors of registries.conf, then the registry) that serves
/// the manifest, and that manifest. A mirror's failure is said and the next one tried.
fn first_answer(reference: &Reference, options: &PullOptions) -> Result<(Client, Fetched), RegistryError> {
    let endpoints = super::mirrors::endpoints(reference, &super::mirrors::config_files())?;
    for endpoint in endpoints {
        let mut registry = options.registry.clone();
        registry.insecure |= endpoint.insecure;
        let attempt = Client::new(&endpoint.reference, &registry).and_then(|client| {
            let fetched = retry(|| client.manifest(&endpoint.reference.manifest_ref()))?;
            Ok((client, fetched))
        });
        match attempt {
            Err(e) if endpoint.mirror => {
                log::warn!("mirror {}: {e}; trying the next", endpoint.reference.registry)
            }
            other => return other,
        }
    }
    unreachable!("the registry itself is the last endpoint")
}

/// The digest a fetched manifest must have, checked: the one asked for, else the registry's
/// `Docker-Content-Digest` (as containerd checks it), else its own.
fn manifest_digest(
    name: &str,
    expected: Option<&Digest>,
    fetched: &Fetched,
) -> Result<Digest, RegistryError> {
    let header = fetched.digest_header.as_deref().and_then(|h| h.parse::<Digest>().ok());
    let Some(expected) = expected.or(header.as_ref()) else {
        return Ok(Digest::sha256_of(&fetched.bytes));
    };
    let actual = expected.compute_same(&fetched.bytes);
    if actual != *expected {
        return Err(RegistryError::DigestMismatch {
            reference: name.to_string(),
            what: "the manifest".into(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(actual)
}

fn parse(name: &str, bytes: &[u8]) -> Result<Document, RegistryError> {
    let doc: Document = serde_json::from_slice(bytes).map_err(|e| RegistryError::Unsupported {
        reference: name.to_string(),
        reason: format!("the manifest is not valid JSON: {e}"),
    })?;
    let schema1 = doc.schema_version == Some(1)
        || doc
            .media_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/vnd.docker.distribution.manifest.v1"));
    if schema1 {
        return Err(RegistryError::Unsupported {
            reference: name.to_string(),
            reason: "Docker schema 1 manifests are not supported (deprecated since 2017): push the image again with a current client".into(),
        });
    }
    Ok(doc)
}

/// The index entry that fits `wanted` best (see [`Platform::fit`]).
fn choose<'a>(manifests: &'a [Descriptor], wanted: &Platform) -> Option<&'a Descriptor> {
    manifests
        .iter()
        .filter_map(|d| wanted.fit(d.platform.as_ref()).map(|s| (s, d)))
        .max_by_key(|(s, _)| *s)
        .map(|(_, d)| d)
}

/// A config blob, whole (at most 8 MiB), checked by the content store when put.
fn fetch_small(client: &Client, blob: &Blob) -> Result<Vec<u8>, RegistryError> {
    if blob.size > 8 << 20 {
        return Err(RegistryError::Unsupported {
            reference: client.reference().to_string(),
            reason: format!("config {} is {} bytes, over 8 MiB", blob.digest, blob.size),
        });
    }
    let (reader, _) = client.blob(&blob.digest.to_string(), 0)?;
    let mut bytes = Vec::with_capacity(blob.size as usize);
    std::io::Read::read_to_end(&mut std::io::Read::take(reader, blob.size + 1), &mut bytes).map_err(|e| {
        RegistryError::Transport {
            registry: client.reference().registry.clone(),
            what: format!("blob {}", blob.digest),
            reason: e.to_string(),
        }
    })?;
    Ok(bytes)
}

/// Downloads `blobs` (each with its layer's diff_id) into the content store, `jobs` at a time on
/// scoped threads sharing the client, each unpacked into the layer store as it arrives; the
/// first failure is returned once all have stopped.
fn download_all(
    client: &Client,
    store: &LayerStore,
    content: &Content,
    blobs: &[(&Blob, &Digest)],
    jobs: usize,
    progress: &super::progress::Progress,
) -> Result<(), RegistryError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let errors = std::sync::Mutex::new(Vec::new());
    let lines: Vec<_> = blobs.iter().map(|(b, _)| progress.layer(&b.digest.hex()[..12], b.size)).collect();
    let budget = store.image_budget();
    std::thread::scope(|s| {
        for _ in 0..jobs.min(blobs.len()) {
            s.spawn(|| loop {
                if failed.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (Some((blob, diff_id)), Some(line)) = (blobs.get(i), lines.get(i)) else { return };
                line.downloading();
                match download(client, store, content, &budget, blob, diff_id, line) {
                    Ok(()) => line.done(),
                    Err(e) => {
                        line.failed();
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                        errors.lock().expect("errors lock").push(e);
                        return;
                    }
                }
            });
        }
    });
    match errors.into_inner().expect("errors lock").into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One blob into the content store and its layer into the layer store, in one pass: the bytes
/// go to the ingest file and to the unpacker as they arrive (see `blob.rs` for resuming).
/// Neither is put in place unless the blob's digest and size and the layer's diff_id all match.
fn download(
    client: &Client,
    store: &LayerStore,
    content: &Content,
    budget: &std::sync::atomic::AtomicU64,
    blob: &Blob,
    diff_id: &Digest,
    line: &super::progress::Layer,
) -> Result<(), RegistryError> {
    let Some(ingest) = content.ingest(&blob.digest, Some(blob.size))? else {
        return Ok(());
    };
    let failure = std::sync::Mutex::new(None);
    let stream = BlobStream::new(client, &blob.digest, blob.size, line, ingest, &failure);
    let source = format!("{}: blob {}", client.reference(), blob.digest);
    std::thread::scope(|scope| {
        let (reader, fetcher) = read_ahead(scope, stream);
        let fetcher = std::cell::Cell::new(Some(fetcher));
        // Once the unpacker has what it needs (or the layer is there already): the rest of the
        // blob, then its digest. A failure to fetch is in `failure`, which `finish` reports.
        let finish = |mut reader: ReadAhead| {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            let fetcher = fetcher.take().expect("the blob is finished once");
            fetcher.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)).finish()
        };
        match store.unpack_streamed(diff_id, &blob.digest, &source, budget, reader, finish) {
            Ok(None) => Ok(()),
            // The layer was there already (another pull unpacked it meanwhile): the blob is
            // still wanted, for `save`.
            Ok(Some(reader)) => finish(reader),
            Err(e) => {
                // A read that failed says why in `failure`, typed.
                if let Some(failed) = failure.lock().expect("failure lock").take() {
                    return Err(failed);
                }
                // A blob that does not decode may be a tampered one: its digest says so best
                // (and a blob that fails it is not kept to resume).
                match fetcher
                    .take()
                    .map(|f| f.join().unwrap_or_else(|p| std::panic::resume_unwind(p)).finish())
                {
                    Some(Err(mismatch @ RegistryError::DigestMismatch { .. })) => Err(mismatch),
                    _ => Err(e),
                }
            }
        }
    })
}

/// Runs `f` again after a retryable failure, with backoff.
fn retry<T>(mut f: impl FnMut() -> Result<T, RegistryError>) -> Result<T, RegistryError> {
    let mut attempt = 0;
    loop {
        match f() {
            Err(e) if e.retryable() && attempt + 1 < ATTEMPTS => {
                attempt += 1;
                log::warn!("{e}; trying again");
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(platform: &str) -> Descriptor {
        Descriptor {
            media_type: None,
            digest: Digest::sha256_of(platform.as_bytes()),
            size: Some(1),
            annotations: None,
            platform: Some(Platform::parse(platform).unwrap()),
        }
    }

    #[test]
    fn platform_choice() {
        let index = [desc("linux/arm/v6"), desc("linux/arm/v7"), desc("linux/amd64"), desc("linux/arm64/v8")];
        let pick = |w: &str| {
            choose(&index, &Platform::parse(w).unwrap()).map(|d| d.platform.clone().unwrap().to_string())
        };
        assert_eq!(pick("linux/amd64").as_deref(), Some("linux/amd64"));
        assert_eq!(pick("linux/arm/v7").as_deref(), Some("linux/arm/v7"));
        assert_eq!(pick("linux/arm64").as_deref(), Some("linux/arm64/v8"));
        assert_eq!(pick("linux/s390x"), None);
        assert!(Platform::parse("linux").is_err());
    }

    #[test]
    fn a_blob_needs_its_size() {
        let mut d = desc("linux/amd64");
        assert_eq!(Blob::of("r", &d).unwrap().size, 1);
        d.size = None;
        let e = Blob::of("r", &d).err().unwrap();
        assert!(e.to_string().starts_with("r: the manifest gives no size for sha256:"), "{e}");
    }

    #[test]
    fn schema1_refused_by_name() {
        let e = parse("docker.io/library/old:1", br#"{"schemaVersion": 1, "name": "old"}"#).err().unwrap();
        assert!(
            e.to_string().starts_with("docker.io/library/old:1: Docker schema 1 manifests are not supported"),
            "{e}"
        );
    }

    #[test]
    fn manifest_checked_against_the_registry_digest() {
        let bytes = br#"{"schemaVersion":2}"#.to_vec();
        let good = Digest::sha256_of(&bytes);
        let fetched = |header: Option<String>| Fetched {
            bytes: bytes.clone(),
            media_type: None,
            digest_header: header,
        };
        assert_eq!(manifest_digest("r", None, &fetched(Some(good.to_string()))).unwrap(), good);
        assert_eq!(manifest_digest("r", None, &fetched(None)).unwrap(), good);
        let other = Digest::sha256_of(b"other");
        let e = manifest_digest("r", None, &fetched(Some(other.to_string()))).unwrap_err();
        assert!(e.to_string().starts_with("r: the manifest does not match its digest"), "{e}");
        assert!(manifest_digest("r", Some(&other), &fetched(Some(good.to_string()))).is_err());
    }
}
