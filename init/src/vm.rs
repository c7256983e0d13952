//! VM mode: init is PID 1 of a (small) machine, not of a container. It mounts the pseudo file systems
//! a userland expects, and when the child is done it syncs, unmounts and powers the machine off.

use crate::cpath::read_small_file;
use crate::log::Bytes;
use core::ffi::CStr;
use rustix::fs::{Mode, OFlags};
use rustix::mount::{MountFlags, UnmountFlags};

struct PseudoFs {
    source: &'static CStr,
    target: &'static CStr,
    fstype: &'static CStr,
    flags: MountFlags,
    data: &'static CStr,
}

const NOSUID: MountFlags = MountFlags::NOSUID;
const NODEV: MountFlags = MountFlags::NODEV;
const NOEXEC: MountFlags = MountFlags::NOEXEC;

fn mounts() -> [PseudoFs; 7] {
    let m = |source, target, fstype, flags, data| PseudoFs { source, target, fstype, flags, data };
    [
        m(c"proc", c"/proc", c"proc", NOSUID | NODEV | NOEXEC, c""),
        m(c"sysfs", c"/sys", c"sysfs", NOSUID | NODEV | NOEXEC, c""),
        m(c"devtmpfs", c"/dev", c"devtmpfs", NOSUID, c"mode=0755"),
        m(c"devpts", c"/dev/pts", c"devpts", NOSUID | NOEXEC, c"gid=5,mode=620,ptmxmode=666"),
        m(c"tmpfs", c"/dev/shm", c"tmpfs", NOSUID | NODEV, c"mode=1777"),
        m(c"tmpfs", c"/run", c"tmpfs", NOSUID | NODEV, c"mode=0755"),
        m(c"cgroup2", c"/sys/fs/cgroup", c"cgroup2", NOSUID | NODEV | NOEXEC, c"nsdelegate"),
    ]
}

/// Which of `mounts()` init mounted (bit i), so that only those are unmounted at the end.
pub struct Mounted(u32);

/// Whether init should act as a VM's PID 1 without being told: PID 1 and no /proc yet.
pub fn detect(pid1: bool) -> bool {
    pid1 && rustix::fs::access(c"/proc/self", rustix::fs::Access::EXISTS).is_err()
}

pub fn setup() -> Mounted {
    leave_rootfs();
    let mut mounted = 0;
    for (i, fs) in mounts().iter().enumerate() {
        let _ = rustix::fs::mkdir(fs.target, Mode::from_raw_mode(0o755));
        match rustix::mount::mount(fs.source, fs.target, fs.fstype, fs.flags, fs.data) {
            Ok(()) => mounted |= 1 << i,
            Err(rustix::io::Errno::BUSY) => {}
            Err(e) => crate::warn!("mount {}: {e}", Bytes(fs.target.to_bytes())),
        }
    }
    ensure_console();
    set_hostname();
    // With Ctrl-Alt-Del off, the kernel sends SIGINT to PID 1 instead of rebooting at once, so the
    // keystroke becomes a clean shutdown.
    let _ = rustix::system::reboot(rustix::system::RebootCommand::CadOff);
    Mounted(mounted)
}

/// `statfs` f_type of ramfs and tmpfs, what an initramfs is unpacked into.
const RAMFS_MAGIC: u64 = 0x8584_58f6;
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// Booted from an initramfs, `/` is the rootfs mount, which has no parent: pivot_root(2) refuses to
/// leave it (EINVAL), so container runtimes fail there (runc has --no-pivot for this). Putting a
/// recursive bind of `/` on top of `/` and entering it, as switch_root-less initramfs setups do, gives
/// init and its children a root that pivot_root can leave.
fn leave_rootfs() {
    use rustix::mount::{move_mount, open_tree, MoveMountFlags, OpenTreeFlags};
    // f_type is a signed long on most architectures and u32 on a few; the magics fit either.
    #[allow(clippy::unnecessary_cast)]
    let on_ram = rustix::fs::statfs(c"/")
        .is_ok_and(|st| matches!(st.f_type as u64 & 0xffff_ffff, RAMFS_MAGIC | TMPFS_MAGIC));
    if !on_ram {
        return;
    }
    let flags =
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_RECURSIVE;
    let result = open_tree(rustix::fs::CWD, c"/", flags).and_then(|tree| {
        // The working directory follows the clone when it is attached over `/`; chroot(".") enters it.
        rustix::process::fchdir(&tree)?;
        move_mount(&tree, c"", rustix::fs::CWD, c"/", MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)?;
        rustix::process::chroot(c".")?;
        rustix::process::chdir(c"/")
    });
    if let Err(e) = result {
        crate::warn!("cannot leave the initramfs root (pivot_root will fail in it): {e}");
        let _ = rustix::process::chdir(c"/");
    }
}

/// A kernel started without /dev/console in the initramfs gives init no fds 0-2.
fn ensure_console() {
    // SAFETY: fd 2 is only probed; if it is not open the call fails with EBADF.
    if rustix::io::fcntl_getfd(unsafe { rustix::fd::BorrowedFd::borrow_raw(2) }).is_ok() {
        return;
    }
    if let Ok(console) = rustix::fs::open(c"/dev/console", OFlags::RDWR | OFlags::NOCTTY, Mode::empty()) {
        use rustix::fd::IntoRawFd;
        let fd = console.into_raw_fd();
        for target in 0..3 {
            if target != fd {
                // SAFETY: fds 0-2 are not open (checked above) and so are owned by nobody.
                let mut t = unsafe { <rustix::fd::OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(target) };
                // SAFETY: `fd` stays open until the loop ends.
                let _ = rustix::io::dup2(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) }, &mut t);
                core::mem::forget(t);
            }
        }
        if fd > 2 {
            let _ = crate::sys::close_range(fd as u32, fd as u32);
        }
    }
}

fn set_hostname() {
    let mut buf = [0u8; 64];
    let name = match read_small_file(c"/etc/hostname", &mut buf) {
        Some(n) if !n.trim_ascii().is_empty() => n.trim_ascii(),
        _ => b"localhost",
    };
    if let Err(e) = rustix::system::sethostname(name) {
        crate::warn!("sethostname: {e}");
    }
}

/// Syncs, unmounts what `setup` mounted (last first) and powers off. Never returns: if the kernel
/// refuses, init exits (which panics the kernel, the only way left to stop).
pub fn power_off(mounted: Mounted, code: i32) -> ! {
    rustix::fs::sync();
    for (i, fs) in mounts().iter().enumerate().rev() {
        if mounted.0 & (1 << i) != 0 {
            let _ = rustix::mount::unmount(fs.target, UnmountFlags::DETACH);
        }
    }
    rustix::fs::sync();
    if let Err(e) = rustix::system::reboot(rustix::system::RebootCommand::PowerOff) {
        crate::error!("power off: {e}");
    }
    crate::sys::exit(code)
}
