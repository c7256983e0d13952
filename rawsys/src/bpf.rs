//! bpf(2), as much of it as a container's device filter needs: load a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program and attach it to a cgroup2 directory.
//!
//! linux-raw-sys 0.11 has the syscall number (`general`) but no bindings for `linux/bpf.h`; only
//! classic BPF's opcode subset is there (feature `ptrace`), without the eBPF-only opcodes (`ALU64`,
//! `MOV`, `JNE`, `EXIT`). So the instruction encoding, the few constants and the two `union
//! bpf_attr` members used are written out here from the UAPI header, all in one place.

use core::ffi::CStr;

use rustix::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::io::Errno;

use super::{check, syscall};

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`: opcode, two 4-bit register
/// numbers in one byte, a signed 16-bit offset and a signed 32-bit immediate.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// `dst_reg:4, src_reg:4` as C bitfields: which nibble is which depends on byte order.
    regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        #[cfg(target_endian = "little")]
        let regs = (dst & 0xf) | (src << 4);
        #[cfg(target_endian = "big")]
        let regs = (dst << 4) | (src & 0xf);
        Insn { code, regs, off, imm }
    }

    pub const fn dst(&self) -> u8 {
        #[cfg(target_endian = "little")]
        let dst = self.regs & 0xf;
        #[cfg(target_endian = "big")]
        let dst = self.regs >> 4;
        dst
    }

    pub const fn src(&self) -> u8 {
        #[cfg(target_endian = "little")]
        let src = self.regs >> 4;
        #[cfg(target_endian = "big")]
        let src = self.regs & 0xf;
        src
    }
}

/// The parts of an opcode (`linux/bpf_common.h`, `linux/bpf.h`): class | size/mode | operation |
/// source.
pub mod op {
    // Instruction classes.
    pub const LDX: u8 = 0x01;
    pub const ALU: u8 = 0x04;
    pub const JMP: u8 = 0x05;
    pub const ALU64: u8 = 0x07;
    // Load size and mode.
    pub const W: u8 = 0x00;
    pub const MEM: u8 = 0x60;
    // Operand source: the immediate or the source register.
    pub const K: u8 = 0x00;
    pub const X: u8 = 0x08;
    // ALU operations.
    pub const AND: u8 = 0x50;
    pub const RSH: u8 = 0x70;
    pub const MOV: u8 = 0xb0;
    // Jumps.
    pub const JA: u8 = 0x00;
    pub const JEQ: u8 = 0x10;
    pub const JSET: u8 = 0x40;
    pub const JNE: u8 = 0x50;
    pub const EXIT: u8 = 0x90;
}

/// `BPF_CGROUP_DEVICE` of `enum bpf_attach_type`.
pub const BPF_CGROUP_DEVICE: u32 = 6;
/// Attach beside the programs already on the cgroup and below it; every one of them must allow.
pub const BPF_F_ALLOW_MULTI: u32 = 2;

/// `struct bpf_cgroup_dev_ctx.access_type` holds `access << 16 | type`.
pub const BPF_DEVCG_ACC_MKNOD: u32 = 1;
pub const BPF_DEVCG_ACC_READ: u32 = 2;
pub const BPF_DEVCG_ACC_WRITE: u32 = 4;
pub const BPF_DEVCG_DEV_BLOCK: u32 = 1;
pub const BPF_DEVCG_DEV_CHAR: u32 = 2;

// `enum bpf_cmd` and `enum bpf_prog_type`.
const BPF_PROG_LOAD: usize = 5;
const BPF_PROG_ATTACH: usize = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;

/// The kernel refuses a verifier log larger than this (`UINT_MAX >> 2`).
const MAX_LOG_SIZE: usize = (u32::MAX >> 2) as usize;

/// The `BPF_PROG_LOAD` member of `union bpf_attr`, up to the last field we set. The kernel takes a
/// shorter attr than its own and zero-fills the rest.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// The `BPF_PROG_ATTACH` member of `union bpf_attr`.
#[repr(C)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// bpf(2) with command `cmd` and its attr.
///
/// # Safety
/// `attr` is the `union bpf_attr` member of `cmd`, and every pointer in it is valid for the kernel
/// to read (a log buffer: to write) for the length it declares, for the duration of the call.
unsafe fn bpf<T>(cmd: usize, attr: &mut T) -> Result<usize, Errno> {
    let size = core::mem::size_of::<T>();
    // SAFETY: the caller vouches for the pointers inside `attr`; `attr` itself lives across the
    // call and its size is passed with it.
    unsafe { check(syscall(linux_raw_sys::general::__NR_bpf, [cmd, attr as *mut T as usize, size, 0, 0])) }
}

/// Loads a cgroup device program. With a non-empty `log` (at least 128 bytes: kernels before 6.4
/// refuse smaller ones) the verifier writes its trace into it, a NUL-terminated string with the
/// reason for a refusal on its last line. With an empty one it runs without a log, which is faster
/// and cannot fail for a log too small (before Linux 6.4 a full log made the load fail, ENOSPC).
///
/// The returned fd is close-on-exec (the kernel always makes bpf fds so).
pub fn prog_load_cgroup_device(insns: &[Insn], license: &CStr, log: &mut [u8]) -> Result<OwnedFd, Errno> {
    let insn_cnt = u32::try_from(insns.len()).map_err(|_| Errno::TOOBIG)?;
    let log_size = log.len().min(MAX_LOG_SIZE);
    // Visible in `bpftool prog` (up to 15 characters; letters, digits, '_' and '.').
    let mut prog_name = [0u8; 16];
    prog_name[..15].copy_from_slice(b"spawner_devices");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt,
        insns: insns.as_ptr() as usize as u64,
        license: license.as_ptr() as usize as u64,
        log_level: u32::from(log_size > 0),
        log_size: log_size as u32,
        log_buf: if log_size > 0 { log.as_mut_ptr() as usize as u64 } else { 0 },
        kern_version: 0,
        prog_flags: 0,
        prog_name,
    };
    // SAFETY: `insns` holds `insn_cnt` instructions, `license` is NUL-terminated, and `log` is
    // writable for `log_size` bytes (or null with size 0); all outlive the call.
    let fd = unsafe { bpf(BPF_PROG_LOAD, &mut attr)? };
    // SAFETY: the kernel just returned this fd to us, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches program `prog` to the cgroup2 directory open at `target` (`BPF_PROG_ATTACH`). The
/// cgroup then holds the program: closing `prog` afterwards keeps it attached, and removing the
/// cgroup releases it.
pub fn prog_attach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> Result<(), Errno> {
    let mut attr = ProgAttachAttr {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
    };
    // SAFETY: the attach attr holds no pointers, only fd numbers and flags.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(drop)
}
