//! The one error type of the `store` module.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::image::{Digest, ImageError};

/// Everything that can go wrong keeping layers. `Display` is one line naming the file, layer or
/// layer entry and the failed operation, e.g.
/// `image.tar: blobs/sha256/ab…: dev/null: mknodat: Operation not permitted`.
#[derive(Debug)]
pub enum StoreError {
    /// A filesystem operation on the store itself failed.
    Io { op: &'static str, path: PathBuf, source: io::Error },
    /// Reading the image archive failed.
    Image(ImageError),
    /// The layer stream could not be read: corrupt compression, broken tar headers, short blob.
    LayerRead { layer: String, source: io::Error },
    /// Creating one entry of a layer failed.
    Entry { layer: String, entry: String, op: &'static str, source: io::Error },
    /// An entry's name or link target would leave the layer's root.
    UnsafeEntry { layer: String, entry: String, reason: &'static str },
    /// A layer's content does not hash to the digest the image gives for it.
    DigestMismatch {
        layer: String,
        /// `diff_id` or `blob digest`.
        what: &'static str,
        expected: Digest,
        actual: Digest,
    },
    /// A file or directory of the store is not what the store made.
    Corrupt { path: PathBuf, reason: String },
    /// The image unpacks to more than [`super::Limits::max_image_bytes`] (a decompression bomb,
    /// or just too big for this host).
    TooLarge { layer: String, limit: u64 },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Entry names and the tar parser's messages come from the image: no control characters.
        f.write_str(&crate::image::printable(&Unescaped(self).to_string()))
    }
}

/// The message before control characters are escaped.
struct Unescaped<'a>(&'a StoreError);

impl fmt::Display for Unescaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            StoreError::Io { op, path, source } => {
                write!(f, "{}: {op}: {source}", path.display())
            }
            StoreError::Image(e) => e.fmt(f),
            StoreError::LayerRead { layer, source } => write!(f, "{layer}: {source}"),
            StoreError::Entry { layer, entry, op, source } => write!(f, "{layer}: {entry}: {op}: {source}"),
            StoreError::UnsafeEntry { layer, entry, reason } => write!(f, "{layer}: {entry}: {reason}"),
            StoreError::DigestMismatch { layer, what, expected, actual } => {
                write!(f, "{layer}: {what} mismatch: image says {expected}, content is {actual}")
            }
            StoreError::Corrupt { path, reason } => write!(f, "{}: {reason}", path.display()),
            StoreError::TooLarge { layer, limit } => {
                write!(f, "{layer}: image unpacks to more than the limit of {}", human_bytes(*limit))
            }
        }
    }
}

/// `20 GiB`, `1.5 MiB`, `512 bytes`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.1}");
    format!("{} {}", text.strip_suffix(".0").unwrap_or(&text), UNITS[unit])
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. }
            | StoreError::LayerRead { source, .. }
            | StoreError::Entry { source, .. } => Some(source),
            StoreError::Image(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ImageError> for StoreError {
    fn from(e: ImageError) -> StoreError {
        StoreError::Image(e)
    }
}

/// Shorthand for store-level I/O errors: `io_err("rename", &path)(e)`.
pub(super) fn io_err<E: Into<io::Error>>(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(E) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { op, path, source: source.into() }
}
