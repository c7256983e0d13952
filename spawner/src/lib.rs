//! spawner: run a Docker/OCI image archive with nothing but the kernel.
//!
//! The path a container takes through this crate reads in order: parse the image (`image`), ensure its
//! layers are in the store (`store`), build the rootfs, create the cgroup (`cgroup`), clone into
//! namespaces, pivot, exec init, wait (`container`).

pub mod cgroup;
pub mod container;
pub mod image;
/// seccomp profiles (Docker's default, profile files) compiled into BPF filters.
pub mod seccomp;
pub mod spec;
pub mod store;
