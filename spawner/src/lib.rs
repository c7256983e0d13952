//! spawner: run a Docker/OCI image archive with nothing but the kernel.

pub mod cgroup;
