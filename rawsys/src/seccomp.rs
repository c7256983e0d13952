//! seccomp(2) in filter mode: hands a classic BPF program to the kernel, which runs it on every
//! syscall the thread (and everything it later starts) makes. rustix has no API for it.
//!
//! Nothing here sets no_new_privs: the kernel takes a filter from a caller that has CAP_SYS_ADMIN
//! without it, and whether the container gets no_new_privs is the runtime's decision
//! (`--security-opt no-new-privileges=false`), not a side effect of installing a filter.

use super::{check, syscall};
use rustix::io::Errno;

/// One classic BPF instruction (`struct sock_filter`), in the layout the kernel reads.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `struct sock_fprog`: the program's length and where it is.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

const SECCOMP_SET_MODE_FILTER: usize = 1;

/// Synchronise the filter onto every thread of the process.
pub const FILTER_FLAG_TSYNC: u32 = 1 << 0;
/// Log every action other than ALLOW.
pub const FILTER_FLAG_LOG: u32 = 1 << 1;
/// Leave the speculative store bypass mitigation off (the kernel turns it on with a filter).
pub const FILTER_FLAG_SPEC_ALLOW: u32 = 1 << 2;

/// Installs `program` as a seccomp filter on the calling thread, with `flags`
/// (`FILTER_FLAG_*`). Fails with EACCES when the caller has neither CAP_SYS_ADMIN nor
/// no_new_privs, and with EINVAL for an empty program or one longer than the kernel takes.
pub fn set_mode_filter(program: &[SockFilter], flags: u32) -> Result<(), Errno> {
    let len = u16::try_from(program.len()).map_err(|_| Errno::INVAL)?;
    let fprog = SockFprog { len, filter: program.as_ptr() };
    // SAFETY: `fprog` points to `len` initialised instructions that outlive the call (the kernel
    // copies the program before returning); the remaining arguments are plain integers.
    unsafe {
        check(syscall(
            linux_raw_sys::general::__NR_seccomp,
            [SECCOMP_SET_MODE_FILTER, flags as usize, &fprog as *const SockFprog as usize, 0, 0],
        ))
    }
    .map(drop)
}
