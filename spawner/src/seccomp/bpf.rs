//! Classic BPF, the part of it a seccomp filter uses: 32-bit loads from `struct seccomp_data`, an
//! AND, forward jumps and returns. Jump offsets count instructions after the jump itself; the
//! conditional ones are 8 bits, so the compiler keeps them short and uses `ja` for long distances.

pub use rawsys::seccomp::SockFilter as Instruction;

// Opcode parts, from linux/bpf_common.h.
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_AND: u16 = 0x50;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_K: u16 = 0x00;

/// The most instructions the kernel takes in one program (BPF_MAXINSNS).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// `struct seccomp_data` field offsets: `int nr; __u32 arch; __u64 instruction_pointer;
/// __u64 args[6];`.
pub const NR_OFFSET: u32 = 0;
pub const ARCH_OFFSET: u32 = 4;
const ARGS_OFFSET: u32 = 16;

/// Offsets of the low and high 32-bit halves of syscall argument `index`.
pub fn arg_halves(index: u8) -> (u32, u32) {
    let arg = ARGS_OFFSET + 8 * u32::from(index);
    if cfg!(target_endian = "little") {
        (arg, arg + 4)
    } else {
        (arg + 4, arg)
    }
}

/// A comparison of the accumulator with a constant (all unsigned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jump {
    Equal,
    Greater,
    GreaterOrEqual,
}

/// `ld [offset]`: a 32-bit word of `struct seccomp_data` into the accumulator.
pub fn load(offset: u32) -> Instruction {
    Instruction { code: BPF_LD | BPF_W | BPF_ABS, jt: 0, jf: 0, k: offset }
}

/// `and #k`.
pub fn and(k: u32) -> Instruction {
    Instruction { code: BPF_ALU | BPF_AND | BPF_K, jt: 0, jf: 0, k }
}

/// `jeq/jgt/jge #k, jt, jf`: skips `jt` instructions when the comparison holds, `jf` otherwise.
pub fn jump_if(jump: Jump, k: u32, jt: u8, jf: u8) -> Instruction {
    let op = match jump {
        Jump::Equal => BPF_JEQ,
        Jump::Greater => BPF_JGT,
        Jump::GreaterOrEqual => BPF_JGE,
    };
    Instruction { code: BPF_JMP | op | BPF_K, jt, jf, k }
}

/// `ja +offset`: skips `offset` instructions.
pub fn jump(offset: u32) -> Instruction {
    Instruction { code: BPF_JMP | BPF_JA, jt: 0, jf: 0, k: offset }
}

/// `ret #k`: the filter's verdict.
pub fn ret(k: u32) -> Instruction {
    Instruction { code: BPF_RET | BPF_K, jt: 0, jf: 0, k }
}

/// Runs filters on synthetic syscalls, checking each instruction the way the kernel's loader
/// would, so unit tests can check a compiled filter's decisions without installing it.
#[cfg(test)]
pub mod interpreter {
    use super::*;

    /// A syscall as the filter sees it (`struct seccomp_data`).
    #[derive(Clone, Copy, Debug, Default)]
    pub struct SeccompData {
        pub nr: u32,
        pub arch: u32,
        pub instruction_pointer: u64,
        pub args: [u64; 6],
    }

    impl SeccompData {
        fn bytes(&self) -> [u8; 64] {
            let mut b = [0u8; 64];
            b[0..4].copy_from_slice(&self.nr.to_ne_bytes());
            b[4..8].copy_from_slice(&self.arch.to_ne_bytes());
            b[8..16].copy_from_slice(&self.instruction_pointer.to_ne_bytes());
            for (i, arg) in self.args.iter().enumerate() {
                b[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
            }
            b
        }
    }

    /// The filter's return value and how many instructions it executed. Panics on anything the
    /// kernel would refuse or that would read past the program: an unknown opcode, a load outside
    /// `seccomp_data` or unaligned, a jump past the end, running off the end.
    pub fn run(program: &[Instruction], data: &SeccompData) -> (u32, usize) {
        assert!(!program.is_empty() && program.len() <= MAX_INSTRUCTIONS, "program length {}", program.len());
        let bytes = data.bytes();
        let (mut pc, mut acc, mut executed) = (0usize, 0u32, 0usize);
        loop {
            let insn = &program[pc];
            executed += 1;
            let next = pc + 1;
            pc = match insn.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => {
                    let k = insn.k as usize;
                    assert!(k.is_multiple_of(4) && k + 4 <= bytes.len(), "bad load offset {k} at {pc}");
                    acc = u32::from_ne_bytes(bytes[k..k + 4].try_into().unwrap());
                    next
                }
                c if c == BPF_ALU | BPF_AND | BPF_K => {
                    acc &= insn.k;
                    next
                }
                c if c == BPF_JMP | BPF_JA => next + insn.k as usize,
                c if c & 0x07 == BPF_JMP => {
                    let holds = match c & 0xf0 {
                        BPF_JEQ => acc == insn.k,
                        BPF_JGT => acc > insn.k,
                        BPF_JGE => acc >= insn.k,
                        op => panic!("unknown jump {op:#x} at {pc}"),
                    };
                    assert_eq!(c & 0x08, BPF_K, "jump against X at {pc}");
                    next + usize::from(if holds { insn.jt } else { insn.jf })
                }
                c if c == BPF_RET | BPF_K => return (insn.k, executed),
                c => panic!("unknown opcode {c:#x} at {pc}"),
            };
            assert!(pc < program.len(), "ran off the end of the program");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::interpreter::{run, SeccompData};
    use super::*;

    #[test]
    fn interpreter_follows_jumps_and_loads() {
        let program = [
            load(NR_OFFSET),
            jump_if(Jump::GreaterOrEqual, 10, 0, 1),
            jump(2),
            load(arg_halves(1).0),
            ret(0),
            and(0xf0),
            ret(1),
        ];
        let data = |nr, arg1| SeccompData { nr, args: [0, arg1, 0, 0, 0, 0], ..Default::default() };
        assert_eq!(run(&program, &data(3, 7)), (0, 4));
        assert_eq!(run(&program, &data(0xff, 7)), (1, 5));
    }

    #[test]
    #[should_panic(expected = "ran off the end")]
    fn interpreter_refuses_to_run_off_the_end() {
        run(&[load(NR_OFFSET)], &SeccompData::default());
    }
}
