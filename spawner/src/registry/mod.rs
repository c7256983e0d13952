//! Pulling images from registries: references by Docker's rules ([`reference`]), credentials and
//! challenges ([`auth`]), one registry's HTTP API ([`client`]), and the pull itself ([`pull`]):
//! manifest (through an index, for a platform) → config → layer blobs into the content store,
//! then unpacked into the layer store as an archive's image would be.

pub mod auth;
mod blob;
pub mod client;
pub mod mirrors;
pub mod progress;
pub mod pull;
pub mod reference;

pub use crate::image::Platform;
pub use client::Options;
pub use pull::{pull, PullOptions, Pulled};
pub use reference::{Reference, ReferenceError};

use crate::image::{Digest, ImageError};
use crate::store::StoreError;
use std::fmt;
use std::path::PathBuf;

/// Why a pull failed; the Display is the user's one line, naming the reference or registry.
#[derive(Debug)]
pub enum RegistryError {
    Reference(ReferenceError),
    /// Neither HTTPS nor (where allowed) HTTP reached the registry.
    Connect {
        registry: String,
        reason: String,
    },
    /// A request failed on the way (reset, timeout, TLS).
    Transport {
        registry: String,
        what: String,
        reason: String,
    },
    Unauthorized {
        reference: String,
        reason: String,
    },
    NotFound {
        reference: String,
        what: String,
    },
    Status {
        registry: String,
        what: String,
        status: u16,
        retry: bool,
    },
    Certificates {
        path: PathBuf,
        reason: String,
    },
    /// An auth file that cannot be read.
    Auth(String),
    DigestMismatch {
        reference: String,
        what: String,
        expected: String,
        actual: Digest,
    },
    Unsupported {
        reference: String,
        reason: String,
    },
    NoPlatform {
        reference: String,
        wanted: String,
        available: Vec<String>,
    },
    Store(StoreError),
    Image(ImageError),
}

impl RegistryError {
    /// Whether trying again may help (5xx, 429, a broken connection).
    pub fn retryable(&self) -> bool {
        matches!(self, RegistryError::Status { retry: true, .. } | RegistryError::Transport { .. })
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RegistryError::*;
        match self {
            Reference(e) => write!(f, "{e}"),
            Connect { registry, reason } => write!(f, "registry {registry}: cannot connect: {reason}"),
            Transport { registry, what, reason } => write!(f, "registry {registry}: {what}: {reason}"),
            Unauthorized { reference, reason } => write!(f, "{reference}: unauthorized: {reason}"),
            NotFound { reference, what } => write!(f, "{reference}: not found in the registry: {what}"),
            Status { registry, what, status, .. } => {
                write!(f, "registry {registry}: {what}: HTTP status {status}")
            }
            Certificates { path, reason } => write!(f, "{}: {reason}", path.display()),
            Auth(e) => write!(f, "{e}"),
            DigestMismatch { reference, what, expected, actual } => {
                write!(f, "{reference}: {what} does not match its digest: expected {expected}, got {actual}")
            }
            Unsupported { reference, reason } => write!(f, "{reference}: {reason}"),
            NoPlatform { reference, wanted, available } => write!(
                f,
                "{reference}: no image for platform {wanted} (the registry has {})",
                if available.is_empty() { "none listed".to_string() } else { available.join(", ") }
            ),
            Store(e) => write!(f, "{e}"),
            Image(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegistryError::Store(e) => Some(e),
            RegistryError::Image(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        RegistryError::Store(e)
    }
}

impl From<ImageError> for RegistryError {
    fn from(e: ImageError) -> Self {
        RegistryError::Image(e)
    }
}

impl From<ReferenceError> for RegistryError {
    fn from(e: ReferenceError) -> Self {
        RegistryError::Reference(e)
    }
}
