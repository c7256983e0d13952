//! Image references as users type them (`busybox`, `busybox:1.36`,
//! `docker.io/library/busybox:latest`), compared loosely: Docker Hub's implied registry,
//! `library/` namespace and `latest` tag are all optional.

/// Registries that mean Docker Hub.
const DOCKER_HUB: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// The canonical `name:tag` (or `name@digest`) form of a reference, for comparison only.
pub(crate) fn canonical(reference: &str) -> String {
    let reference = reference.trim();
    let (name, suffix) = match reference.split_once('@') {
        Some((name, digest)) => (name, format!("@{digest}")),
        None => {
            let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
            match reference[last_slash..].rfind(':') {
                Some(i) => (&reference[..last_slash + i], format!(":{}", &reference[last_slash + i + 1..])),
                None => (reference, ":latest".to_owned()),
            }
        }
    };
    // Only Docker Hub is implied; any other registry host has to be written out to match.
    let mut name = name;
    if let Some((first, rest)) = name.split_once('/') {
        if DOCKER_HUB.contains(&first) {
            name = rest;
        }
    }
    let name = name.strip_prefix("library/").unwrap_or(name);
    format!("{name}{suffix}")
}

/// Whether a user's `query` names the image called `candidate` (a RepoTag, `repositories` entry or
/// name annotation).
pub(crate) fn matches(query: &str, candidate: &str) -> bool {
    query == candidate || canonical(query) == canonical(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_matching() {
        assert!(matches("busybox", "busybox:latest"));
        assert!(matches("docker.io/library/busybox:latest", "busybox:latest"));
        assert!(matches("busybox:latest", "docker.io/library/busybox"));
        assert!(matches("library/busybox", "busybox"));
        assert!(matches("docker.io/me/app:1", "me/app:1"));
        assert!(matches("localhost:5000/app", "localhost:5000/app:latest"));
        assert!(!matches("busybox:1.36", "busybox:latest"));
        assert!(!matches("quay.io/busybox", "busybox"));
        assert!(!matches("alpine", "busybox"));
        assert!(matches("app@sha256:ab", "docker.io/library/app@sha256:ab"));
    }
}
