//! Image references as users type them, found among the stored images the way Docker and podman
//! find them, before anything is pulled: the full name (`busybox` is
//! `docker.io/library/busybox:latest`); then an image ID or a unique prefix of one (`086db5f4`,
//! `sha256:086d…`, as Docker takes them); then, for a short name, a stored name that ends with it
//! (`busybox` finds `localhost/busybox:latest`, which podman gives to what it built or loaded, or
//! `quay.io/org/busybox:latest`), as podman resolves short names in its local storage. A short
//! name that more than one stored image ends with is an error listing them, never a guess.

use crate::container::RunError;
use crate::image::Digest;
use crate::registry::Reference;

/// A stored name with its image ID, as [`crate::store::content::Content::names`] lists them.
pub type Stored = (String, Option<Digest>);

/// The stored name `given` refers to, if any.
pub fn resolve(stored: &[Stored], given: &str) -> Result<Option<String>, RunError> {
    if let Some(name) = by_name(stored, given)? {
        return Ok(Some(name));
    }
    Ok(by_id(stored, given)?.and_then(|(_, names)| names.into_iter().next()))
}

/// The stored name `given` is, in full or as a short name.
pub fn by_name(stored: &[Stored], given: &str) -> Result<Option<String>, RunError> {
    let Ok(reference) = Reference::parse(given) else { return Ok(None) };
    let full = reference.to_string();
    if stored.iter().any(|(name, _)| *name == full) {
        return Ok(Some(full));
    }
    if !Reference::is_short(given) {
        return Ok(None);
    }
    // The path as typed (`busybox`, not Docker Hub's `library/busybox`), with its tag or digest.
    let typed = given.split(['@', ':']).next().unwrap_or(given);
    let suffix = match (&reference.tag, &reference.digest) {
        (_, Some(d)) => format!("/{typed}@{d}"),
        (Some(t), None) => format!("/{typed}:{t}"),
        (None, None) => format!("/{typed}:latest"),
    };
    let mut found: Vec<&str> =
        stored.iter().map(|(name, _)| name.as_str()).filter(|name| name.ends_with(&suffix)).collect();
    found.sort();
    found.dedup();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.to_string())),
        several => Err(RunError::msg(format!(
            "image name {given:?} is ambiguous: it may be {}; give the full name",
            several.join(", ")
        ))),
    }
}

/// The stored name `rmi given` removes: by name (a short one too), else by ID when that image has
/// one name only (several are refused, as `docker rmi` refuses them without -f).
pub fn to_remove(stored: &[Stored], given: &str) -> Result<Option<String>, RunError> {
    if let Some(name) = by_name(stored, given)? {
        return Ok(Some(name));
    }
    match by_id(stored, given)? {
        Some((_, names)) if names.len() > 1 => Err(RunError::msg(format!(
            "image {given} has several names ({}): remove it by name",
            names.join(", ")
        ))),
        Some((_, names)) => Ok(names.into_iter().next()),
        None => Ok(None),
    }
}

/// The image whose ID `given` is, or begins with (a unique prefix, `sha256:` or not), with its
/// stored names.
pub fn by_id(stored: &[Stored], given: &str) -> Result<Option<(Digest, Vec<String>)>, RunError> {
    let hex = given.strip_prefix("sha256:").unwrap_or(given);
    if hex.is_empty()
        || hex.len() > 64
        || !hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Ok(None);
    }
    let mut ids: Vec<&Digest> =
        stored.iter().filter_map(|(_, id)| id.as_ref()).filter(|id| id.hex().starts_with(hex)).collect();
    ids.sort_by_key(|id| id.hex());
    ids.dedup();
    match ids.as_slice() {
        [] => Ok(None),
        [id] => {
            let names =
                stored.iter().filter(|(_, i)| i.as_ref() == Some(id)).map(|(n, _)| n.clone()).collect();
            Ok(Some(((*id).clone(), names)))
        }
        _ => Err(RunError::msg(format!("image ID prefix {given:?} is ambiguous: give more of it"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> Option<Digest> {
        format!("sha256:{}", c.to_string().repeat(64)).parse().ok()
    }

    fn stored() -> Vec<Stored> {
        vec![
            ("docker.io/library/alpine:3.19".into(), id('a')),
            ("localhost/busybox:latest".into(), id('b')),
            ("docker.io/library/debian:bookworm".into(), id('d')),
            ("quay.io/org/app:1".into(), id('c')),
            ("localhost/app:1".into(), id('e')),
            ("localhost/tool:latest".into(), id('e')),
        ]
    }

    #[test]
    fn full_names_then_ids_then_short_names() {
        let s = stored();
        let r = |given: &str| resolve(&s, given).map_err(|e| e.to_string());
        assert_eq!(r("alpine:3.19"), Ok(Some("docker.io/library/alpine:3.19".into())));
        assert_eq!(r("debian:bookworm"), Ok(Some("docker.io/library/debian:bookworm".into())));
        assert_eq!(r("busybox"), Ok(Some("localhost/busybox:latest".into())), "podman's localhost/ images");
        assert_eq!(r("busybox:latest"), Ok(Some("localhost/busybox:latest".into())));
        assert_eq!(r("busybox:1.36"), Ok(None), "the tag must match");
        assert_eq!(r("bbbbbbbb"), Ok(Some("localhost/busybox:latest".into())), "an ID prefix");
        assert_eq!(
            r(&format!("sha256:{}", "d".repeat(64))),
            Ok(Some("docker.io/library/debian:bookworm".into()))
        );
        assert_eq!(r("tool"), Ok(Some("localhost/tool:latest".into())));
        assert_eq!(
            r("app:1"),
            Err("image name \"app:1\" is ambiguous: it may be localhost/app:1, quay.io/org/app:1; give the full name"
                .into())
        );
        assert_eq!(r("quay.io/app:1"), Ok(None), "a name with a registry is taken as it is");
        assert_eq!(r("org/app:1"), Ok(Some("quay.io/org/app:1".into())));
        assert_eq!(r("nginx"), Ok(None));
        assert_eq!(r("pine:3.19"), Ok(None), "a suffix is whole path components");
    }

    #[test]
    fn ids_name_every_name_of_the_image() {
        let s = stored();
        let (digest, names) = by_id(&s, "eee").unwrap().unwrap();
        assert_eq!(digest, id('e').unwrap());
        assert_eq!(names, ["localhost/app:1", "localhost/tool:latest"]);
        let mut two = s.clone();
        two.push(("x/y:z".into(), format!("sha256:e{}", "f".repeat(63)).parse().ok()));
        assert!(by_id(&two, "e").is_err(), "a prefix two IDs share");
        assert_eq!(by_id(&s, "xyz").unwrap(), None);
        assert!(to_remove(&s, "eee").is_err(), "rmi by an ID with two names");
        assert_eq!(to_remove(&s, "bbb").unwrap().as_deref(), Some("localhost/busybox:latest"));
        assert_eq!(to_remove(&s, "tool").unwrap().as_deref(), Some("localhost/tool:latest"));
    }
}
