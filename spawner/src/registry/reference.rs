//! Image references by Docker's rules (distribution's `reference.ParseNormalizedNamed`): `debian`
//! is `docker.io/library/debian:latest`; the first component is a registry when it has a `.` or a
//! `:` or is `localhost`; a tag, a digest, or both may follow the repository.

use crate::image::Digest;
use std::fmt;

/// Docker Hub as references name it, and the host its API answers on.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed reference: where the image is, and which one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// `library/debian`, `org/team/app`.
    pub repository: String,
    /// `latest` when neither a tag nor a digest is given.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// Why a string is not a reference; the message is the user's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceError {
    pub reference: String,
    pub reason: String,
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid reference {:?}: {}", self.reference, self.reason)
    }
}

impl std::error::Error for ReferenceError {}

/// `name`'s registry and the path after it, when its first component is one (a host: it has a
/// '.' or a ':', is `localhost`, or has capitals, as Docker tells them apart).
fn split_registry(name: &str) -> Option<(&str, &str)> {
    name.split_once('/').filter(|(first, _)| {
        first.contains(['.', ':']) || *first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase())
    })
}

impl Reference {
    /// Whether `text` is a short name: one that names no registry (`busybox`, `org/app:1`), which
    /// Docker takes for Docker Hub and podman looks up among its stored names first.
    pub fn is_short(text: &str) -> bool {
        let name = text.split_once('@').map_or(text, |(n, _)| n);
        split_registry(name).is_none()
    }

    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let fail = |reason: &str| ReferenceError { reference: text.to_string(), reason: reason.to_string() };
        if text.is_empty() {
            return Err(fail("empty"));
        }
        if text.len() > 255 + 128 + 80 {
            return Err(fail("too long"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, d)) => {
                let digest: Digest = d.parse().map_err(|e| fail(&format!("digest: {e}")))?;
                (rest, Some(digest))
            }
            None => (text, None),
        };
        // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(fail("a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with . or -"));
            }
        }
        let (registry, repository) = match split_registry(name) {
            Some((first, path)) => (first.to_string(), path.to_string()),
            None => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" { DOCKER_HUB.to_string() } else { registry };
        if !valid_registry(&registry) {
            return Err(fail("the registry is not a host name or address with an optional port"));
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(fail("repository name must be lowercase"));
        }
        if !repository.split('/').all(valid_component) {
            return Err(fail(
                "each part of the repository is lowercase letters and digits, joined by '.', '_', '__' or '-'",
            ));
        }
        if registry.len() + 1 + repository.len() > 255 {
            return Err(fail("the name is over 255 characters"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference { registry, repository, tag, digest })
    }

    /// The host (and port) the registry's API answers on.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What a manifest is asked for by: the digest when there is one (it pins the content), else
    /// the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// `registry/repository`, the name without tag or digest.
    pub fn name(&self) -> String {
        match self.repository.as_str() {
            // A registry alone (login).
            "" => self.registry.clone(),
            repository => format!("{}/{repository}", self.registry),
        }
    }

    /// The name Docker shows: Docker Hub and `library/` left out.
    pub fn familiar(&self) -> String {
        let name = match self.registry.as_str() {
            DOCKER_HUB => self.repository.strip_prefix("library/").unwrap_or(&self.repository).to_string(),
            _ => self.name(),
        };
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{name}:{t}"),
            (None, Some(d)) => format!("{name}@{d}"),
            (None, None) => name,
        }
    }
}

impl fmt::Display for Reference {
    /// The full form: `docker.io/library/debian:bookworm`, `host:5000/app@sha256:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(part: &str) -> bool {
    let b = part.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(&b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(&b[i]) {
            i += 1;
        }
        let sep = &part[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
            return false;
        }
    }
    true
}

/// A host name, an IPv4 address or a bracketed IPv6 one, with an optional port.
fn valid_registry(registry: &str) -> bool {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, after)) => {
                if v6.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                ("v6", after.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match registry.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit()));
    let host_ok = host == "v6"
        || host.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(text: &str) -> String {
        Reference::parse(text).unwrap().to_string()
    }

    #[test]
    fn normalized_as_docker_does() {
        assert_eq!(full("debian"), "docker.io/library/debian:latest");
        assert_eq!(full("debian:bookworm"), "docker.io/library/debian:bookworm");
        assert_eq!(full("me/app"), "docker.io/me/app:latest");
        assert_eq!(full("index.docker.io/library/busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("ghcr.io/org/team/app:1.0"), "ghcr.io/org/team/app:1.0");
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("127.0.0.1:5000/org/app:v2"), "127.0.0.1:5000/org/app:v2");
        assert_eq!(full("[::1]:5000/app"), "[::1]:5000/app:latest");
        let hex = "a".repeat(64);
        assert_eq!(full(&format!("busybox@sha256:{hex}")), format!("docker.io/library/busybox@sha256:{hex}"));
        let both = Reference::parse(&format!("host:5000/app:1@sha256:{hex}")).unwrap();
        assert_eq!((both.tag.as_deref(), both.manifest_ref()), (Some("1"), format!("sha256:{hex}")));
        // A ':' before the last '/' is a port, not a tag.
        let r = Reference::parse("host:5000/app").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("host:5000", "app", Some("latest"))
        );
    }

    #[test]
    fn api_host_and_familiar_names() {
        let hub = Reference::parse("debian:bookworm").unwrap();
        assert_eq!((hub.api_host(), hub.familiar()), ("registry-1.docker.io", "debian:bookworm".to_string()));
        let local = Reference::parse("127.0.0.1:5000/app").unwrap();
        assert_eq!(
            (local.api_host(), local.familiar()),
            ("127.0.0.1:5000", "127.0.0.1:5000/app:latest".to_string())
        );
    }

    #[test]
    fn refused_with_the_reason() {
        let reason = |t: &str| Reference::parse(t).unwrap_err().reason;
        assert_eq!(reason("Debian"), "repository name must be lowercase");
        assert!(reason("debian:").contains("tag"));
        assert!(reason("debian:-x").contains("tag"));
        assert!(reason("a//b").contains("part of the repository"));
        assert!(reason("app_").contains("part of the repository"));
        assert!(reason("debian@sha256:12").starts_with("digest"));
        assert!(reason("").contains("empty"));
        assert!(reason("host:port/app").contains("registry"));
        assert_eq!(
            Reference::parse("Debian").unwrap_err().to_string(),
            "invalid reference \"Debian\": repository name must be lowercase"
        );
    }
}
