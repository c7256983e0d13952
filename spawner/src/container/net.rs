//! Loopback up in a new network namespace (SIOCSIFFLAGS, as `ip link set lo up`): the front end
//! makes the namespace (see `crate::network`), and the container's first process joins it with setns
//! (see `namespaces`).

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

/// Brings up `lo` in the calling thread's network namespace.
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
