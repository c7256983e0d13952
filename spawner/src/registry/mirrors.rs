//! Mirrors from `registries.conf` (containers-registries.conf v2, as podman and skopeo read it):
//! a `[[registry]]` whose `prefix` (or `location`) matches the reference lists `[[registry.mirror]]`
//! locations to try first, in order, before the registry itself; `insecure` allows plain HTTP
//! and unverified TLS for one of them; `mirror-by-digest-only` keeps a registry's mirrors for pulls
//! by digest; `blocked` refuses the registry.
//!
//! Read from `$CONTAINERS_REGISTRIES_CONF`, else `/etc/containers/registries.conf` and the
//! `registries.conf.d/*.conf` beside it (later files add registries, and replace one with the
//! same prefix).

use super::reference::Reference;
use super::RegistryError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where a pull may get an image, in the order to try: mirrors, then the registry itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The reference as this endpoint names it (the prefix rewritten to the mirror's location).
    pub reference: Reference,
    /// Plain HTTP and unverified TLS allowed.
    pub insecure: bool,
    pub mirror: bool,
}

#[derive(Deserialize, Default)]
struct File {
    #[serde(default)]
    registry: Vec<Registry>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "kebab-case")]
struct Registry {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<Mirror>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "kebab-case")]
struct Mirror {
    location: String,
    #[serde(default)]
    insecure: bool,
}

/// The configuration files in the order they apply.
pub fn config_files() -> Vec<PathBuf> {
    if let Some(f) = std::env::var_os("CONTAINERS_REGISTRIES_CONF") {
        return vec![PathBuf::from(f)];
    }
    let main = PathBuf::from("/etc/containers/registries.conf");
    let mut files = vec![main.clone()];
    let dropins = main.with_extension("conf.d");
    if let Ok(entries) = std::fs::read_dir(&dropins) {
        let mut extra: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        extra.sort();
        files.extend(extra);
    }
    files
}

/// The endpoints for `reference` by the files given (missing files are skipped).
pub fn endpoints(reference: &Reference, files: &[PathBuf]) -> Result<Vec<Endpoint>, RegistryError> {
    let mut registries: Vec<Registry> = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(bad(file, &e)),
        };
        let parsed: File = toml::from_str(&text).map_err(|e| bad(file, &e.message()))?;
        for r in parsed.registry {
            if r.prefix.is_none() && r.location.is_none() {
                return Err(bad(file, &"a [[registry]] needs a prefix or a location"));
            }
            let key = |r: &Registry| r.prefix.clone().or_else(|| r.location.clone());
            registries.retain(|old| key(old) != key(&r));
            registries.push(r);
        }
    }
    let full = reference.name();
    // The longest matching prefix wins, as containers/image decides.
    let matching = registries
        .iter()
        .filter_map(|r| {
            let prefix = r.prefix.as_deref().or(r.location.as_deref())?;
            prefix_matches(prefix, &full).then_some((prefix.len(), r, prefix))
        })
        .max_by_key(|(len, _, _)| *len);
    let Some((_, registry, prefix)) = matching else {
        return Ok(vec![Endpoint { reference: reference.clone(), insecure: false, mirror: false }]);
    };
    if registry.blocked {
        return Err(RegistryError::Unsupported {
            reference: reference.to_string(),
            reason: format!("registries.conf blocks {prefix}"),
        });
    }
    let rewrite = |location: &str| -> Result<Reference, RegistryError> {
        let rest = &full[prefix.len()..];
        let mut text = format!("{location}{rest}");
        if let Some(t) = &reference.tag {
            text += &format!(":{t}");
        }
        if let Some(d) = &reference.digest {
            text += &format!("@{d}");
        }
        let mut r = Reference::parse(&text)?;
        // Only the registry and repository change: a mirror of docker.io keeps library/.
        if r.registry == super::reference::DOCKER_HUB && !r.repository.contains('/') {
            r.repository = format!("library/{}", r.repository);
        }
        Ok(r)
    };
    let mut endpoints = Vec::new();
    if !registry.mirror_by_digest_only || reference.digest.is_some() {
        for m in &registry.mirror {
            endpoints.push(Endpoint { reference: rewrite(&m.location)?, insecure: m.insecure, mirror: true });
        }
    }
    let location = registry.location.as_deref().unwrap_or(prefix);
    endpoints.push(Endpoint { reference: rewrite(location)?, insecure: registry.insecure, mirror: false });
    Ok(endpoints)
}

/// `prefix` matches `name` whole or up to a `/` (so `docker.io/lib` does not match
/// `docker.io/library`); a `*.example.com` prefix matches any subdomain's registry.
fn prefix_matches(prefix: &str, name: &str) -> bool {
    if let Some(domain) = prefix.strip_prefix("*.") {
        let host = name.split('/').next().unwrap_or("");
        return host.ends_with(&format!(".{domain}"));
    }
    name == prefix || name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

fn bad(file: &Path, e: &dyn std::fmt::Display) -> RegistryError {
    RegistryError::Auth(format!("{}: {}", file.display(), e.to_string().trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("registries.conf");
        std::fs::write(&file, text).unwrap();
        (dir, vec![file])
    }

    fn names(reference: &str, text: &str) -> Vec<(String, bool)> {
        let (_dir, files) = conf(text);
        endpoints(&Reference::parse(reference).unwrap(), &files)
            .unwrap()
            .into_iter()
            .map(|e| (e.reference.to_string(), e.insecure))
            .collect()
    }

    const HUB_MIRROR: &str = r#"
unqualified-search-registries = ["docker.io"]
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "127.0.0.1:5000"
insecure = true
[[registry.mirror]]
location = "mirror.example.com/hub"
"#;

    #[test]
    fn mirrors_first_then_the_registry() {
        assert_eq!(
            names("debian:bookworm", HUB_MIRROR),
            [
                ("127.0.0.1:5000/library/debian:bookworm".to_string(), true),
                ("mirror.example.com/hub/library/debian:bookworm".to_string(), false),
                ("docker.io/library/debian:bookworm".to_string(), false),
            ]
        );
        assert_eq!(names("quay.io/org/app:1", HUB_MIRROR), [("quay.io/org/app:1".to_string(), false)]);
        assert_eq!(names("debian:x", ""), [("docker.io/library/debian:x".to_string(), false)]);
    }

    #[test]
    fn prefixes_digest_only_and_blocked() {
        let text = r#"
[[registry]]
prefix = "example.com/team"
location = "internal.example.com:5000/mirror/team"
insecure = true
[[registry]]
location = "ghcr.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "cache.local"
[[registry]]
location = "blocked.io"
blocked = true
"#;
        assert_eq!(
            names("example.com/team/app:2", text),
            [("internal.example.com:5000/mirror/team/app:2".to_string(), true)]
        );
        assert_eq!(names("example.com/teams/app:2", text), [("example.com/teams/app:2".to_string(), false)]);
        assert_eq!(names("ghcr.io/o/a:1", text), [("ghcr.io/o/a:1".to_string(), false)]);
        let digest = format!("ghcr.io/o/a@sha256:{}", "b".repeat(64));
        assert_eq!(names(&digest, text).len(), 2, "mirrors serve pulls by digest");
        let (_dir, files) = conf(text);
        let e = endpoints(&Reference::parse("blocked.io/x").unwrap(), &files).unwrap_err();
        assert_eq!(e.to_string(), "blocked.io/x:latest: registries.conf blocks blocked.io");
        let (_dir, files) = conf("[[registry]]\ninsecure = true\n");
        let e = endpoints(&Reference::parse("x").unwrap(), &files).unwrap_err().to_string();
        assert!(e.ends_with("registries.conf: a [[registry]] needs a prefix or a location"), "{e}");
    }
}
