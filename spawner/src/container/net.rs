//! The container's network namespace: made on a short-lived thread while the main thread reads the
//! image and creates the cgroup (creating a network namespace is the slowest part of a clone, about
//! half a millisecond), with its loopback interface up (SIOCSIFFLAGS, as `ip link set lo up`). The
//! container's first process joins it with setns (see `namespaces`).

use rustix::io::Errno;
use rustix::net::{socket, AddressFamily, SocketType};

#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: i16,
    _pad: [u8; 22],
}

struct GetFlags(IfReq);
struct SetFlags(IfReq);

// SAFETY (both impls): the opcodes are SIOCGIFFLAGS / SIOCSIFFLAGS, whose argument is a `struct ifreq`
// that `IfReq` lays out (40 bytes: the name, then the flags in the union), and the kernel writes at
// most that struct back.
unsafe impl rustix::ioctl::Ioctl for GetFlags {
    type Output = i16;
    const IS_MUTATING: bool = true;
    fn opcode(&self) -> rustix::ioctl::Opcode {
        linux_raw_sys::ioctl::SIOCGIFFLAGS as rustix::ioctl::Opcode
    }
    fn as_ptr(&mut self) -> *mut core::ffi::c_void {
        &mut self.0 as *mut IfReq as *mut _
    }
    unsafe fn output_from_ptr(
        _: rustix::ioctl::IoctlOutput,
        ptr: *mut core::ffi::c_void,
    ) -> rustix::io::Result<i16> {
        Ok((*(ptr as *mut IfReq)).flags)
    }
}

unsafe impl rustix::ioctl::Ioctl for SetFlags {
    type Output = ();
    const IS_MUTATING: bool = false;
    fn opcode(&self) -> rustix::ioctl::Opcode {
        linux_raw_sys::ioctl::SIOCSIFFLAGS as rustix::ioctl::Opcode
    }
    fn as_ptr(&mut self) -> *mut core::ffi::c_void {
        &mut self.0 as *mut IfReq as *mut _
    }
    unsafe fn output_from_ptr(
        _: rustix::ioctl::IoctlOutput,
        _: *mut core::ffi::c_void,
    ) -> rustix::io::Result<()> {
        Ok(())
    }
}

pub fn loopback_up() -> Result<(), Errno> {
    let sock = socket(AddressFamily::INET, SocketType::DGRAM, None)?;
    let mut name = [0u8; 16];
    name[..2].copy_from_slice(b"lo");
    // SAFETY: see the Ioctl impls above.
    let flags = unsafe { rustix::ioctl::ioctl(&sock, GetFlags(IfReq { name, flags: 0, _pad: [0; 22] }))? };
    const IFF_UP: i16 = 1;
    let up = flags | IFF_UP;
    // SAFETY: see the Ioctl impls above.
    unsafe { rustix::ioctl::ioctl(&sock, SetFlags(IfReq { name, flags: up, _pad: [0; 22] })) }
}

/// Starts making a network namespace with loopback up; join the handle for an fd to it.
pub fn prepare_namespace() -> std::thread::JoinHandle<Result<rustix::fd::OwnedFd, String>> {
    std::thread::spawn(|| {
        // SAFETY: unshare(CLONE_NEWNET) moves only this thread (which exits right after) into the
        // new namespace and touches no file descriptor table.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
            .map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
        loopback_up().map_err(|e| format!("bring up loopback: {e}"))?;
        rustix::fs::open(
            "/proc/thread-self/ns/net",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| format!("open /proc/thread-self/ns/net: {e}"))
    })
}
