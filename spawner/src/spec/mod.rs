//! The OCI runtime spec, checked and resolved into the [`Config`] the container core runs.
//!
//! [`load`] reads a bundle's `config.json` into oci-spec's types and hands it to [`validate`],
//! which turns every field into its place in [`Config`] or refuses it with a [`SpecError`] naming
//! the field the way the spec does (`linux.namespaces[2].type`).

mod checks;
mod config;
mod devices;
mod error;
mod hooks;
mod json_path;
mod mounts;
mod namespaces;
mod process;
mod resources;
mod seccomp;
mod sysctl;
pub(crate) use sysctl::IPC as IPC_SYSCTLS;
mod validate;

#[cfg(test)]
mod tests;

pub use config::*;
pub use error::SpecError;
pub use validate::{load, load_process, load_resources, validate};
