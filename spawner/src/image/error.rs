//! The one error type of the `image` module.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::digest::Digest;

/// Everything that can go wrong reading an image archive. Every variant names the archive, and
/// where it applies the member (`manifest.json`, `blobs/sha256/…`), so the one-line `Display` says
/// exactly what to look at: `image.tar: manifest.json: missing field "Config"`.
#[derive(Debug)]
pub enum ImageError {
    /// Reading the archive or one of its members failed at the OS level.
    Io { archive: PathBuf, member: Option<String>, source: io::Error },
    /// A member the format requires is not in the archive.
    MissingMember { archive: PathBuf, member: String },
    /// A member is there but its content is not what the format says it must be.
    Malformed { archive: PathBuf, member: String, reason: String },
    /// A blob's content does not hash to the digest it is referenced by.
    DigestMismatch { archive: PathBuf, member: String, expected: Digest, actual: Digest },
    /// The path is neither a docker-archive, a legacy `docker save` layout nor an OCI layout.
    UnknownFormat { archive: PathBuf },
    /// The archive is well-formed but holds no image.
    NoImages { archive: PathBuf },
    /// The requested reference matches none of the archive's images.
    NoMatch { archive: PathBuf, reference: String, available: Vec<String> },
    /// No reference was given and the archive holds several images.
    Ambiguous { archive: PathBuf, available: Vec<String> },
    /// An image index has no manifest for this host's platform.
    NoPlatform { archive: PathBuf, member: String, wanted: String, available: Vec<String> },
    /// A layer blob uses a compression this crate does not read.
    UnsupportedCompression { archive: PathBuf, member: String, format: &'static str },
}

impl ImageError {
    /// The archive the error is about.
    pub fn archive(&self) -> &std::path::Path {
        match self {
            ImageError::Io { archive, .. }
            | ImageError::MissingMember { archive, .. }
            | ImageError::Malformed { archive, .. }
            | ImageError::DigestMismatch { archive, .. }
            | ImageError::UnknownFormat { archive }
            | ImageError::NoImages { archive }
            | ImageError::NoMatch { archive, .. }
            | ImageError::Ambiguous { archive, .. }
            | ImageError::NoPlatform { archive, .. }
            | ImageError::UnsupportedCompression { archive, .. } => archive,
        }
    }
}

/// A name from the archive for a message: control characters escaped (`\n`, `\0`, `\u{1b}`),
/// so a hostile member or entry name cannot break a one-line error or drive the terminal.
pub fn printable(name: &str) -> String {
    if !name.chars().any(char::is_control) {
        return name.to_owned();
    }
    name.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.iter().map(|n| printable(n)).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // OS and parser messages may quote names from the archive too.
        f.write_str(&printable(&Unescaped(self).to_string()))
    }
}

/// The message before control characters are escaped.
struct Unescaped<'a>(&'a ImageError);

impl fmt::Display for Unescaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.0.archive().display())?;
        match self.0 {
            ImageError::Io { member: Some(member), source, .. } => {
                write!(f, "{}: {source}", printable(member))
            }
            ImageError::Io { member: None, source, .. } => write!(f, "{source}"),
            ImageError::MissingMember { member, .. } => {
                write!(f, "{}: missing from archive", printable(member))
            }
            ImageError::Malformed { member, reason, .. } => {
                write!(f, "{}: {}", printable(member), printable(reason))
            }
            ImageError::DigestMismatch { member, expected, actual, .. } => {
                write!(f, "{}: digest mismatch: expected {expected}, got {actual}", printable(member))
            }
            ImageError::UnknownFormat { .. } => {
                write!(f, "not an image archive (no manifest.json, repositories, or oci-layout + index.json)")
            }
            ImageError::NoImages { .. } => write!(f, "archive holds no image"),
            ImageError::NoMatch { reference, available, .. } => {
                write!(f, "no image matches {reference:?}; available: {}", list(available))
            }
            ImageError::Ambiguous { available, .. } => {
                write!(f, "archive holds {} images, name one: {}", available.len(), list(available))
            }
            ImageError::NoPlatform { member, wanted, available, .. } => {
                let member = printable(member);
                write!(f, "{member}: no manifest for platform {wanted}; available: {}", list(available))
            }
            ImageError::UnsupportedCompression { member, format, .. } => {
                write!(f, "{}: unsupported layer compression {format}", printable(member))
            }
        }
    }
}

impl std::error::Error for ImageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ImageError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
