//! The few raw syscalls rustix has no stable API for: fork and clone with namespace flags, the signal
//! mask, signal dispositions, signalfd, kill with any pid (-1, -pgid), execve/execveat, close_range,
//! exit_group and a monotonic clock read without the vDSO; and in their own modules mount_setattr
//! (`mount`), loading and attaching a cgroup device program (`bpf`) and installing a seccomp filter
//! (`seccomp`). Shared by init (no_std) and spawner, so the inline assembly lives in one place.

#![no_std]

pub mod bpf;
pub mod mount;
pub mod seccomp;

use core::arch::asm;
use rustix::fd::{FromRawFd, OwnedFd};
use rustix::io::Errno;

/// A kernel signal set for the 64 signals Linux has (`sigset_t` as the kernel sees it: 8 bytes).
pub type SigSet = u64;

pub const SIG_BLOCK_ALL: SigSet = !0;

mod nr {
    pub use linux_raw_sys::general::{
        __NR_clock_gettime, __NR_clone, __NR_close_range, __NR_execve, __NR_execveat, __NR_exit_group,
        __NR_ioctl, __NR_kill, __NR_personality, __NR_rt_sigaction, __NR_rt_sigprocmask, __NR_signalfd4,
        __NR_sync_file_range,
    };
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn syscall(n: u32, a: [usize; 5]) -> isize {
    let ret: isize;
    // SAFETY (caller): the arguments are valid for syscall `n`. The kernel clobbers rcx and r11 only.
    asm!(
        "syscall",
        inlateout("rax") n as isize => ret,
        in("rdi") a[0], in("rsi") a[1], in("rdx") a[2], in("r10") a[3], in("r8") a[4],
        lateout("rcx") _, lateout("r11") _,
        options(nostack)
    );
    ret
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
unsafe fn syscall(n: u32, a: [usize; 5]) -> isize {
    let ret: isize;
    // SAFETY (caller): the arguments are valid for syscall `n`.
    asm!(
        "svc 0",
        in("x8") n as usize,
        inlateout("x0") a[0] as isize => ret,
        in("x1") a[1], in("x2") a[2], in("x3") a[3], in("x4") a[4],
        options(nostack)
    );
    ret
}

fn check(ret: isize) -> Result<usize, Errno> {
    if (-4095..0).contains(&ret) {
        Err(Errno::from_raw_os_error(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// fork(2) as `clone(SIGCHLD)`. Returns 0 in the child, the child's pid in the parent.
///
/// # Safety
/// The process must be single-threaded (init never starts a thread) and the child must only make
/// syscalls and then exec or exit: nothing of libc's state is used after start-up, so there is no lock
/// or buffer a fork could leave in a bad state.
pub unsafe fn fork() -> Result<i32, Errno> {
    // SAFETY: the caller upholds fork's contract, which is clone_process's.
    unsafe { clone_process(0) }
}

/// clone(2) without a new stack: fork semantics plus `flags` (CLONE_NEW* namespaces). Returns 0 in
/// the child, the child's pid in the parent. With CLONE_NEWPID the child is PID 1 of a new namespace.
///
/// # Safety
/// As for [`fork`]: the calling process must be single-threaded, so that no lock (the allocator's,
/// stdio's) can be held by a thread that does not exist in the child.
pub unsafe fn clone_process(flags: u64) -> Result<i32, Errno> {
    let flags = flags as usize | linux_raw_sys::general::SIGCHLD as usize;
    check(syscall(nr::__NR_clone, [flags, 0, 0, 0, 0])).map(|pid| pid as i32)
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH): runs the program open at `fd` (a sealed memfd copy of
/// init, in spawner), whatever the mount namespace now shows. Returns only on failure.
///
/// # Safety
/// `argv` and `envp` are NULL-terminated arrays of NUL-terminated strings.
pub unsafe fn execveat_fd(fd: i32, argv: *const *const u8, envp: *const *const u8) -> Errno {
    let empty = b"\0";
    let flags = linux_raw_sys::general::AT_EMPTY_PATH as usize;
    let ret = syscall(
        nr::__NR_execveat,
        [fd as usize, empty.as_ptr() as usize, argv as usize, envp as usize, flags],
    );
    check(ret).err().unwrap_or(Errno::INVAL)
}

/// Replaces the calling thread's signal mask.
pub fn set_signal_mask(set: SigSet) -> Result<(), Errno> {
    const SIG_SETMASK: usize = 2;
    // SAFETY: `set` lives across the call; the old-set pointer is null; 8 is the kernel sigset size.
    unsafe { check(syscall(nr::__NR_rt_sigprocmask, [SIG_SETMASK, &set as *const SigSet as usize, 0, 8, 0])) }
        .map(drop)
}

/// Sets signal `sig`'s disposition back to SIG_DFL (used in the child before exec: an ignored
/// disposition inherited from whoever started init would otherwise survive the exec).
pub fn reset_signal_disposition(sig: i32) -> Result<(), Errno> {
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: SigSet,
    }
    let act = KernelSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };
    // SAFETY: `act` is a valid kernel `struct sigaction` with SIG_DFL (0) as handler, so no restorer
    // is needed; the old-action pointer is null.
    unsafe {
        check(syscall(
            nr::__NR_rt_sigaction,
            [sig as usize, &act as *const KernelSigaction as usize, 0, 8, 0],
        ))
    }
    .map(drop)
}

/// A non-blocking, close-on-exec signalfd for the signals in `set`.
pub fn signalfd(set: SigSet) -> Result<OwnedFd, Errno> {
    // SFD_CLOEXEC and SFD_NONBLOCK share O_CLOEXEC's and O_NONBLOCK's values.
    let flags = (linux_raw_sys::general::O_CLOEXEC | linux_raw_sys::general::O_NONBLOCK) as usize;
    // SAFETY: fd -1 asks for a new signalfd; `set` lives across the call.
    let fd = unsafe {
        check(syscall(nr::__NR_signalfd4, [-1isize as usize, &set as *const SigSet as usize, 8, flags, 0]))?
    };
    // SAFETY: the kernel just returned this fd to us, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The next signal waiting in a signalfd from [`signalfd`]; None when there is none (the fd does
/// not block).
pub fn read_signal(fd: rustix::fd::BorrowedFd<'_>) -> Option<i32> {
    // `struct signalfd_siginfo` is 128 bytes; the signal number is its first u32.
    let mut info = [0u8; 128];
    match rustix::io::read(fd, &mut info) {
        Ok(128) => Some(u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32),
        _ => None,
    }
}

/// kill(2) with the full pid range: a pid, -pgid, or -1 for every process we may signal.
pub fn kill(pid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    unsafe { check(syscall(nr::__NR_kill, [pid as isize as usize, sig as usize, 0, 0, 0])) }.map(drop)
}

/// personality(2): sets the execution domain (`PER_LINUX32`: `uname -m` says i686), returns the old.
pub fn personality(persona: u32) -> Result<u32, Errno> {
    // SAFETY: a plain integer argument.
    unsafe { check(syscall(nr::__NR_personality, [persona as usize, 0, 0, 0, 0])) }.map(|old| old as u32)
}

/// The kind of namespace a namespace file (`/proc/PID/ns/*`, or a bind mount of one) refers to,
/// as its `CLONE_NEW*` flag (ioctl NS_GET_NSTYPE, Linux 4.11).
pub fn namespace_type(fd: rustix::fd::BorrowedFd<'_>) -> Result<u32, Errno> {
    const NS_GET_NSTYPE: usize = 0xb703;
    use rustix::fd::AsRawFd;
    // SAFETY: an ioctl with no argument; the fd is borrowed, so it stays open for the call.
    unsafe { check(syscall(nr::__NR_ioctl, [fd.as_raw_fd() as usize, NS_GET_NSTYPE, 0, 0, 0])) }
        .map(|t| t as u32)
}

/// execve(2); returns only on failure.
///
/// # Safety
/// `path` is a NUL-terminated string; `argv` and `envp` are NULL-terminated arrays of them.
pub unsafe fn execve(path: *const u8, argv: *const *const u8, envp: *const *const u8) -> Errno {
    let ret = syscall(nr::__NR_execve, [path as usize, argv as usize, envp as usize, 0, 0]);
    check(ret).err().unwrap_or(Errno::INVAL)
}

/// Closes every fd in `first..=last` (kernel 5.9+). Errors are returned for the caller to ignore.
pub fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    // SAFETY: init owns every fd in the range: none is borrowed by live Rust objects at this point.
    unsafe { check(syscall(nr::__NR_close_range, [first as usize, last as usize, 0, 0, 0])) }.map(drop)
}

/// Marks every fd from `first` up close-on-exec (close_range with CLOSE_RANGE_CLOEXEC, Linux 5.11):
/// nothing a process inherited beyond them survives its next exec.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: usize = 1 << 2;
    // SAFETY: only sets a flag on fds; no fd is closed, so no live Rust object loses its fd.
    unsafe {
        check(syscall(nr::__NR_close_range, [first as usize, u32::MAX as usize, CLOSE_RANGE_CLOEXEC, 0, 0]))
    }
    .map(drop)
}

/// sync_file_range(2) with SYNC_FILE_RANGE_WRITE over the whole file: starts writing its dirty
/// pages back and returns without waiting (what dpkg does for each file it unpacks), so that a
/// later syncfs or fsync has less left to wait for.
pub fn start_writeback(fd: rustix::fd::BorrowedFd<'_>) -> Result<(), Errno> {
    const SYNC_FILE_RANGE_WRITE: usize = 2;
    use rustix::fd::AsRawFd;
    // SAFETY: plain integer arguments; the fd is borrowed, so it stays open for the call.
    unsafe {
        check(syscall(nr::__NR_sync_file_range, [fd.as_raw_fd() as usize, 0, 0, SYNC_FILE_RANGE_WRITE, 0]))
    }
    .map(drop)
}

/// Milliseconds on CLOCK_MONOTONIC, read by the syscall (no vDSO, so no auxv lookup is needed).
pub fn now_ms() -> u64 {
    let mut ts = [0i64; 2];
    // SAFETY: `ts` is a writable `struct timespec` (two 64-bit fields on 64-bit targets).
    let _ = unsafe { syscall(nr::__NR_clock_gettime, [1, ts.as_mut_ptr() as usize, 0, 0, 0]) };
    (ts[0] as u64) * 1000 + (ts[1] as u64) / 1_000_000
}

/// exit_group(2).
pub fn exit(code: i32) -> ! {
    // SAFETY: ends the process; no Rust state outlives it.
    unsafe {
        syscall(nr::__NR_exit_group, [code as usize, 0, 0, 0, 0]);
    }
    #[allow(clippy::empty_loop)]
    loop {}
}
