//! spawner: run a Docker/OCI image archive with nothing but the kernel, and be an OCI runtime.
//!
//! The path a container takes through this crate reads in order: a front end makes the container's
//! config (`docker`: an image and Docker's flags; an OCI bundle's config.json, checked by `spec`),
//! the image's layers are in the store (`image`, `store`); the core (`container`) compiles the
//! seccomp filter (`seccomp`), creates the cgroup (`cgroup`), clones into the namespaces, builds the
//! rootfs from its mount plan, pivots, execs, and waits.

pub mod cgroup;
pub mod clock;
pub mod container;
/// A small D-Bus client, for asking systemd for cgroup units.
pub mod dbus;
pub mod docker;
pub mod image;
pub mod in_root;
pub mod network;
pub mod registry;
pub mod runc;
/// seccomp profiles (Docker's default, profile files) compiled into BPF filters.
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod store;

/// Writes the causes under an error's one line to stderr (`-v`, runc's `--debug`).
pub fn print_causes(error: &dyn std::error::Error) {
    for cause in std::iter::successors(error.source(), |c| c.source()) {
        eprintln!("spawner:   caused by: {cause}");
    }
}
