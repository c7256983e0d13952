//! mount_setattr(2) (Linux 5.12), which rustix has no API for: changes the flags or the propagation
//! of a mount, or of a whole detached tree at once with AT_RECURSIVE (a read-only volume whose
//! submounts are read-only too, which a bind remount cannot do in one step).

use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;

/// `struct mount_attr`, version 0 (32 bytes).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets the `MOUNT_ATTR_*` flags in `set` and clears those in `clear` on the mount `fd` refers to
/// (an fd from open_tree or fsmount, or any fd on the mount's root), and with `recursive` on every
/// mount below it as well.
pub fn mount_setattr(fd: BorrowedFd<'_>, set: u64, clear: u64, recursive: bool) -> Result<(), Errno> {
    setattr(fd, MountAttr { attr_set: set, attr_clr: clear, propagation: 0, userns_fd: 0 }, recursive)
}

/// Changes the propagation of the mount `fd` refers to (`MS_PRIVATE`, `MS_SHARED`, `MS_SLAVE` or
/// `MS_UNBINDABLE`), and with `recursive` of every mount below it.
pub fn mount_set_propagation(fd: BorrowedFd<'_>, propagation: u64, recursive: bool) -> Result<(), Errno> {
    setattr(fd, MountAttr { attr_set: 0, attr_clr: 0, propagation, userns_fd: 0 }, recursive)
}

fn setattr(fd: BorrowedFd<'_>, attr: MountAttr, recursive: bool) -> Result<(), Errno> {
    use linux_raw_sys::general::{__NR_mount_setattr, AT_EMPTY_PATH, AT_RECURSIVE};
    let flags = AT_EMPTY_PATH | if recursive { AT_RECURSIVE } else { 0 };
    let empty = b"\0";
    // SAFETY: `fd` is a live fd for the call, the path is an empty NUL-terminated string (so only
    // `fd` is acted on), and `attr` is a valid version-0 `struct mount_attr` whose size is passed.
    unsafe {
        super::check(super::syscall(
            __NR_mount_setattr,
            [
                fd.as_raw_fd() as usize,
                empty.as_ptr() as usize,
                flags as usize,
                &attr as *const MountAttr as usize,
                core::mem::size_of::<MountAttr>(),
            ],
        ))
    }
    .map(drop)
}
