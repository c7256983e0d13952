//! The init that becomes the container's PID 1, as a sealed memfd: the container execs it from the fd
//! and can neither see it in its file system nor write to it (the runc /proc/self/exe overwrite,
//! CVE-2019-5736, cannot happen to a sealed memfd).

use rustix::fd::OwnedFd;
use rustix::fs::{memfd_create, MemfdFlags, SealFlags};
use std::io::Write;

static EMBEDDED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/init"));

fn find_bytes() -> Result<std::borrow::Cow<'static, [u8]>, String> {
    if !EMBEDDED.is_empty() {
        return Ok(EMBEDDED.into());
    }
    let path = match std::env::var_os("SPAWNER_INIT") {
        Some(p) => std::path::PathBuf::from(p),
        None => std::env::current_exe().map_err(|e| format!("/proc/self/exe: {e}"))?.with_file_name("init"),
    };
    std::fs::read(&path)
        .map(Into::into)
        .map_err(|e| format!("{}: {e} (this spawner has no embedded init: build it with `cargo xtask dist`, or set SPAWNER_INIT)", path.display()))
}

pub fn sealed_memfd() -> Result<OwnedFd, String> {
    let bytes = find_bytes()?;
    let fd = memfd_create("spawner-init", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .map_err(|e| format!("memfd_create: {e}"))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&bytes).map_err(|e| format!("write init memfd: {e}"))?;
    let fd = OwnedFd::from(file);
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )
    .map_err(|e| format!("seal init memfd: {e}"))?;
    Ok(fd)
}
