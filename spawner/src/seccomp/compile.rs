//! The compiler: a [`Profile`] into one classic BPF program.
//!
//! The program, in order:
//! 1. Any architecture but this one is killed (SECCOMP_RET_KILL_PROCESS). Our table has only this
//!    architecture's numbers, so a syscall made through another ABI (int 0x80 from an x86_64
//!    process, which the kernel reports as AUDIT_ARCH_I386) must never reach the rules, where its
//!    number would mean another syscall. Docker allows i386 and x32 syscalls through their own
//!    tables; we refuse them (libseccomp's answer to an architecture it was not given is a kill
//!    too). On x86_64 the same goes for any number with the x32 bit (0x40000000) set: the kernel
//!    reports x32 syscalls as AUDIT_ARCH_X86_64, and only the number tells them apart.
//! 2. Numbers above the highest this table knows answer ENOSYS (unless the default action lets
//!    everything through anyway), as runc does: a newer kernel's syscall is one the profile could
//!    not list, and ENOSYS is what makes libc fall back to an older one.
//! 3. A balanced binary search on the number over ranges of consecutive numbers with the same
//!    outcome. A node is `jge K` (jt 0, jf 1) followed by `ja` to the upper half, so conditional
//!    offsets stay within their 8 bits however long the program. A leaf is a `ret`, or the syscall's
//!    argument rules. A leaf that depends on the number alone lets the kernel's action cache (5.11+)
//!    skip the filter altogether for the syscalls it allows.
//! 4. Argument rules compare all 64 bits, as libseccomp does: the high half, then the low one. The
//!    conditions of a rule must all hold; a syscall's rules are tried in profile order and the first
//!    that holds decides; when none does, the default action does.

use super::bpf::{self, Instruction, Jump};
use super::{syscalls, Action, ArgCondition, Filter, Op, Profile, SeccompError, ENOSYS, MAX_ARGS};

/// What a filter does with one syscall number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome<'a> {
    /// Decided by the number alone.
    Ret(Action),
    /// Decided by the arguments: the first branch whose conditions all hold, else `otherwise`.
    Rules { branches: &'a [Branch<'a>], otherwise: Action },
}

/// One way for a syscall to get `action`: all of `conditions` hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Branch<'a> {
    conditions: &'a [ArgCondition],
    action: Action,
}

/// The first number of a range of numbers that share an outcome (the range ends where the next
/// one starts).
struct Range<'a> {
    first: u32,
    outcome: Outcome<'a>,
}

/// The x32 ABI's syscall numbers have this bit set.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = linux_raw_sys::general::__X32_SYSCALL_BIT;

pub(super) fn compile(profile: &Profile) -> Result<Filter, SeccompError> {
    super::check_architectures(&profile.architectures, "architectures")?;
    let flags = profile.flags.iter().fold(0, |bits, flag| bits | flag.bits());
    let (numbers, branches) = branches_by_number(profile)?;
    let ranges = ranges(&numbers, &branches, profile.default_action);

    let kill = bpf::ret(Action::KillProcess.ret());
    let mut program = vec![
        bpf::load(bpf::ARCH_OFFSET),
        bpf::jump_if(Jump::Equal, super::native::AUDIT_ARCH, 1, 0),
        kill,
        bpf::load(bpf::NR_OFFSET),
    ];
    #[cfg(target_arch = "x86_64")]
    program.extend([bpf::jump_if(Jump::GreaterOrEqual, X32_SYSCALL_BIT, 0, 1), kill]);
    emit_search(&mut program, &ranges);
    if program.len() > bpf::MAX_INSTRUCTIONS {
        return Err(SeccompError::TooLong { instructions: program.len() });
    }
    Ok(Filter { instructions: program, flags })
}

/// Every rule's branches with their syscall numbers, sorted by number and, for one number, in
/// profile order: `numbers[i]` is the number of `branches[i]`.
fn branches_by_number(profile: &Profile) -> Result<(Vec<u32>, Vec<Branch<'_>>), SeccompError> {
    let (mut flat, mut skipped) = (Vec::new(), Vec::new());
    for (i, rule) in profile.syscalls.iter().enumerate() {
        let args = &rule.args;
        if let Some(c) = args.iter().find(|c| u32::from(c.index) >= MAX_ARGS) {
            let at = format!("syscalls[{i}] ({})", rule.names.join(", "));
            return Err(SeccompError::ArgIndex { at, index: c.index.into() });
        }
        // When two conditions test the same argument, one branch per condition (runc's reading of
        // such a rule); otherwise one branch with all of them.
        let repeats = args.iter().enumerate().any(|(i, c)| args[..i].iter().any(|d| d.index == c.index));
        for name in &rule.names {
            // Profiles name the syscalls of every architecture (runc skips the others' too).
            let Some(nr) = syscalls::number(name) else {
                skipped.push(name.as_ref());
                continue;
            };
            let branch = |conditions| (nr, Branch { conditions, action: rule.action });
            match repeats {
                true => flat.extend(args.iter().map(|c| branch(std::slice::from_ref(c)))),
                false => flat.push(branch(args)),
            }
        }
    }
    if !skipped.is_empty() {
        log::debug!("seccomp: not syscalls on {}, skipped: {}", std::env::consts::ARCH, skipped.join(" "));
    }
    // Stable: a number's branches stay in profile order.
    flat.sort_by_key(|&(nr, _)| nr);
    Ok(flat.into_iter().unzip())
}

/// A syscall's outcome: its branches up to the first without conditions (nothing after it can
/// decide), without trailing branches that decide what would be decided anyway.
fn outcome<'a>(branches: &'a [Branch<'a>], default: Action) -> Outcome<'a> {
    let (mut branches, otherwise) = match branches.iter().position(|b| b.conditions.is_empty()) {
        Some(i) => (&branches[..i], branches[i].action),
        None => (branches, default),
    };
    while let [rest @ .., last] = branches {
        if last.action != otherwise {
            break;
        }
        branches = rest;
    }
    match branches.is_empty() {
        true => Outcome::Ret(otherwise),
        false => Outcome::Rules { branches, otherwise },
    }
}

/// Numbers 0 to the table's highest merged into ranges of one outcome; above the table, ENOSYS
/// (see the module's comment).
fn ranges<'a>(numbers: &[u32], branches: &'a [Branch<'a>], default: Action) -> Vec<Range<'a>> {
    let mut ranges: Vec<Range> = Vec::new();
    let mut push = |first: u32, outcome: Outcome<'a>| {
        if ranges.last().map(|r| r.outcome) != Some(outcome) {
            ranges.push(Range { first, outcome });
        }
    };
    let mut start = 0;
    for nr in 0..=syscalls::MAX_NUMBER {
        let end = start + numbers[start..].iter().take_while(|&&n| n == nr).count();
        push(nr, outcome(&branches[start..end], default));
        start = end;
    }
    let unknown = if default.permits() { default } else { Action::Errno(ENOSYS) };
    push(syscalls::MAX_NUMBER + 1, Outcome::Ret(unknown));
    ranges
}

/// The binary search over `ranges` (the accumulator holds the syscall number).
fn emit_search(program: &mut Vec<Instruction>, ranges: &[Range]) {
    if let [range] = ranges {
        return emit_outcome(program, &range.outcome);
    }
    let middle = ranges.len() / 2;
    program.push(bpf::jump_if(Jump::GreaterOrEqual, ranges[middle].first, 0, 1));
    let to_upper = program.len();
    program.push(bpf::jump(0));
    emit_search(program, &ranges[..middle]);
    program[to_upper].k = (program.len() - to_upper - 1) as u32;
    emit_search(program, &ranges[middle..])
}

fn emit_outcome(program: &mut Vec<Instruction>, outcome: &Outcome) {
    let (branches, otherwise) = match outcome {
        Outcome::Ret(action) => return program.push(bpf::ret(action.ret())),
        Outcome::Rules { branches, otherwise } => (branches, otherwise),
    };
    // Jumps taken when a condition fails, patched to the next branch once its start is known.
    let mut to_next_branch = Vec::new();
    for branch in *branches {
        for condition in branch.conditions {
            emit_condition(program, condition, &mut to_next_branch);
        }
        program.push(bpf::ret(branch.action.ret()));
        for (at, side) in to_next_branch.drain(..) {
            // A branch is at most six conditions (one per argument, see `branches_by_number`) of five
            // instructions, and a ret: always within a conditional jump's reach.
            let offset = program.len() - at - 1;
            debug_assert!(offset <= usize::from(u8::MAX));
            let offset = offset as u8;
            match side {
                Side::True => program[at].jt = offset,
                Side::False => program[at].jf = offset,
            }
        }
    }
    program.push(bpf::ret(otherwise.ret()));
}

/// Where a conditional jump goes.
#[derive(Clone, Copy)]
enum To {
    /// The next instruction.
    Next,
    /// Past this condition: it holds.
    Holds,
    /// To the next branch: it does not.
    Fails,
}

#[derive(Clone, Copy)]
enum Side {
    True,
    False,
}

/// One condition: falls through when it holds, jumps to the next branch when it does not
/// (recorded in `fails` for patching).
fn emit_condition(program: &mut Vec<Instruction>, c: &ArgCondition, fails: &mut Vec<(usize, Side)>) {
    let (lo_offset, hi_offset) = bpf::arg_halves(c.index);
    let (hi, lo) = ((c.value >> 32) as u32, c.value as u32);
    let load_hi = Step::Insn(bpf::load(hi_offset));
    let load_lo = Step::Insn(bpf::load(lo_offset));
    let jump = |jump, k, jt, jf| Step::Jump(jump, k, jt, jf);
    use Jump::{Equal as Eq, Greater as Gt, GreaterOrEqual as Ge};
    use To::{Fails, Holds, Next};
    let steps: Vec<Step> = match c.op {
        Op::Equal => vec![load_hi, jump(Eq, hi, Next, Fails), load_lo, jump(Eq, lo, Next, Fails)],
        Op::NotEqual => vec![load_hi, jump(Eq, hi, Next, Holds), load_lo, jump(Eq, lo, Fails, Next)],
        Op::GreaterThan => {
            vec![
                load_hi,
                jump(Gt, hi, Holds, Next),
                jump(Eq, hi, Next, Fails),
                load_lo,
                jump(Gt, lo, Next, Fails),
            ]
        }
        Op::GreaterOrEqual => {
            vec![
                load_hi,
                jump(Gt, hi, Holds, Next),
                jump(Eq, hi, Next, Fails),
                load_lo,
                jump(Ge, lo, Next, Fails),
            ]
        }
        Op::LessThan => {
            vec![
                load_hi,
                jump(Ge, hi, Next, Holds),
                jump(Gt, hi, Fails, Next),
                load_lo,
                jump(Ge, lo, Fails, Next),
            ]
        }
        Op::LessOrEqual => {
            vec![
                load_hi,
                jump(Ge, hi, Next, Holds),
                jump(Gt, hi, Fails, Next),
                load_lo,
                jump(Gt, lo, Fails, Next),
            ]
        }
        Op::MaskedEqual => {
            let (mask_hi, mask_lo) = ((c.value >> 32) as u32, c.value as u32);
            let (want_hi, want_lo) = ((c.value_two >> 32) as u32, c.value_two as u32);
            let mut steps = Vec::new();
            // `(hi & 0) == 0` always holds (the usual case: a mask of 32-bit flags).
            if mask_hi != 0 || want_hi != 0 {
                steps.extend([load_hi, Step::Insn(bpf::and(mask_hi)), jump(Eq, want_hi, Next, Fails)]);
            }
            steps.extend([load_lo, Step::Insn(bpf::and(mask_lo)), jump(Eq, want_lo, Next, Fails)]);
            steps
        }
    };
    let start = program.len();
    let end = start + steps.len();
    for (i, step) in steps.into_iter().enumerate() {
        let at = start + i;
        let insn = match step {
            Step::Insn(insn) => insn,
            Step::Jump(jump, k, jt, jf) => {
                // A condition is at most five instructions: its own offsets always fit. The jumps
                // to the next branch are patched by the caller once that branch's start is known.
                let offset = |to| match to {
                    Next | Fails => 0,
                    Holds => (end - at - 1) as u8,
                };
                for (to, side) in [(jt, Side::True), (jf, Side::False)] {
                    if let Fails = to {
                        fails.push((at, side));
                    }
                }
                bpf::jump_if(jump, k, offset(jt), offset(jf))
            }
        };
        program.push(insn);
    }
}

/// One instruction of a condition, its jump targets still symbolic.
#[derive(Clone, Copy)]
enum Step {
    Insn(Instruction),
    Jump(Jump, u32, To, To),
}

#[cfg(test)]
mod tests {
    use super::super::bpf::interpreter::{run, SeccompData};
    use super::super::{native, Rule};
    use super::*;

    fn nr(name: &str) -> u32 {
        syscalls::number(name).unwrap()
    }

    fn call(name: &str, args: [u64; 6]) -> SeccompData {
        SeccompData { nr: nr(name), arch: native::AUDIT_ARCH, args, ..Default::default() }
    }

    fn profile(rules: Vec<Rule>) -> Profile {
        Profile { default_action: Action::Errno(1), architectures: vec![], flags: vec![], syscalls: rules }
    }

    fn rule(name: &'static str, action: Action, args: &[(u8, Op, u64, u64)]) -> Rule {
        let args =
            args.iter().map(|&(index, op, value, value_two)| ArgCondition { index, op, value, value_two });
        Rule { names: vec![name.into()], action, args: args.collect() }
    }

    /// Every comparison against a 64-bit value, on values either side of it in both halves.
    #[test]
    fn comparisons_are_unsigned_64_bit_like_libseccomp() {
        let value = 0x0000_0005_8000_0000u64;
        let probes = [
            0,
            value - 1,
            value,
            value + 1,
            value ^ (1 << 32),
            value ^ (1 << 40),
            u64::MAX,
            value & 0xffff_ffff,
        ];
        // The comparison as Rust makes it on u64.
        let holds = |op, a: u64, v: u64| match op {
            Op::Equal => a == v,
            Op::NotEqual => a != v,
            Op::LessThan => a < v,
            Op::LessOrEqual => a <= v,
            Op::GreaterThan => a > v,
            Op::GreaterOrEqual => a >= v,
            Op::MaskedEqual => unreachable!(),
        };
        let ops =
            [Op::Equal, Op::NotEqual, Op::LessThan, Op::LessOrEqual, Op::GreaterThan, Op::GreaterOrEqual];
        for op in ops {
            let filter = profile(vec![rule("read", Action::Allow, &[(2, op, value, 0)])]).compile().unwrap();
            for arg in probes {
                let (ret, _) = run(filter.instructions(), &call("read", [0, 0, arg, 0, 0, 0]));
                let want = if holds(op, arg, value) { Action::Allow } else { Action::Errno(1) };
                assert_eq!(ret, want.ret(), "{op:?} {arg:#x} against {value:#x}");
            }
        }
    }

    #[test]
    fn masked_equal_compares_both_halves() {
        let rules = vec![rule("read", Action::Allow, &[(0, Op::MaskedEqual, 0x1_0000_00ff, 0x1_0000_0012)])];
        let filter = profile(rules).compile().unwrap();
        for (arg, allowed) in
            [(0x1_0000_0012, true), (0x1_ffff_ff12, true), (0x12, false), (0x1_0000_0013, false)]
        {
            let (ret, _) = run(filter.instructions(), &call("read", [arg, 0, 0, 0, 0, 0]));
            assert_eq!(ret == Action::Allow.ret(), allowed, "{arg:#x}");
        }
    }

    #[test]
    fn the_first_rule_that_holds_decides_in_profile_order() {
        let rules = vec![
            rule("write", Action::Errno(5), &[(0, Op::Equal, 7, 0)]),
            rule("write", Action::Allow, &[(1, Op::Equal, 1, 0)]),
            rule("write", Action::Errno(9), &[]),
            rule("write", Action::Allow, &[]),
        ];
        let filter = profile(rules).compile().unwrap();
        let ret = |a0, a1| run(filter.instructions(), &call("write", [a0, a1, 0, 0, 0, 0])).0;
        assert_eq!(ret(7, 1), Action::Errno(5).ret());
        assert_eq!(ret(6, 1), Action::Allow.ret());
        // Neither holds: the rule without conditions decides, and the one after it never does.
        assert_eq!(ret(6, 2), Action::Errno(9).ret());
    }

    #[test]
    fn conditions_on_different_arguments_must_all_hold() {
        let rules = vec![rule("write", Action::Allow, &[(0, Op::Equal, 1, 0), (2, Op::Equal, 3, 0)])];
        let filter = profile(rules).compile().unwrap();
        let ret = |a0, a2| run(filter.instructions(), &call("write", [a0, 0, a2, 0, 0, 0])).0;
        assert_eq!(ret(1, 3), Action::Allow.ret());
        assert_eq!(ret(1, 4), Action::Errno(1).ret());
        assert_eq!(ret(2, 3), Action::Errno(1).ret());
    }

    #[test]
    fn conditions_on_one_argument_are_split_into_one_rule_each() {
        let rules = vec![rule("write", Action::Allow, &[(0, Op::Equal, 1, 0), (0, Op::Equal, 2, 0)])];
        let filter = profile(rules).compile().unwrap();
        let ret = |a0| run(filter.instructions(), &call("write", [a0, 0, 0, 0, 0, 0])).0;
        assert_eq!(ret(1), Action::Allow.ret());
        assert_eq!(ret(2), Action::Allow.ret());
        assert_eq!(ret(3), Action::Errno(1).ret());
    }

    #[test]
    fn unknown_names_are_skipped_and_bad_indexes_refused() {
        let filter =
            profile(vec![rule("chown32", Action::Allow, &[]), rule("read", Action::Allow, &[])]).compile();
        assert_eq!(run(filter.unwrap().instructions(), &call("read", [0; 6])).0, Action::Allow.ret());
        let err = profile(vec![rule("read", Action::Allow, &[(6, Op::Equal, 0, 0)])]).compile().unwrap_err();
        assert_eq!(err.to_string(), "syscalls[0] (read): argument index 6 (a syscall has arguments 0 to 5)");
    }

    #[test]
    fn numbers_above_the_table_get_enosys_unless_the_default_allows() {
        let above =
            SeccompData { nr: syscalls::MAX_NUMBER + 1, arch: native::AUDIT_ARCH, ..Default::default() };
        let filter = profile(vec![]).compile().unwrap();
        assert_eq!(run(filter.instructions(), &above).0, Action::Errno(ENOSYS).ret());
        let far = SeccompData { nr: 0x3fff_ffff, ..above };
        assert_eq!(run(filter.instructions(), &far).0, Action::Errno(ENOSYS).ret());
        let allow = Profile { default_action: Action::Log, ..profile(vec![]) };
        assert_eq!(run(allow.compile().unwrap().instructions(), &above).0, Action::Log.ret());
    }

    #[test]
    fn other_architectures_and_x32_numbers_are_killed() {
        let filter = profile(vec![rule("read", Action::Allow, &[])]).compile().unwrap();
        const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
        let i386 = SeccompData { arch: AUDIT_ARCH_I386, ..call("read", [0; 6]) };
        assert_eq!(run(filter.instructions(), &i386).0, Action::KillProcess.ret());
        #[cfg(target_arch = "x86_64")]
        for nr in [0, 1, nr("read"), syscalls::MAX_NUMBER, u32::MAX >> 1, u32::MAX] {
            let x32 = SeccompData { nr: nr | X32_SYSCALL_BIT, ..call("read", [0; 6]) };
            assert_eq!(run(filter.instructions(), &x32).0, Action::KillProcess.ret(), "{nr:#x}");
        }
    }

    #[test]
    fn flags_are_passed_and_a_too_long_filter_is_refused() {
        let p =
            Profile { flags: vec![super::super::Flag::Log, super::super::Flag::Tsync], ..profile(vec![]) };
        assert_eq!(p.compile().unwrap().flags, rawsys::seccomp::FILTER_FLAG_LOG);
        // Every syscall with a six-condition rule of its own: far more than 4096 instructions.
        let rules = syscalls::names()
            .map(|name| {
                let value = 1 << 40 | u64::from(nr(name));
                let conditions: Vec<_> = (0..6).map(|i| (i, Op::GreaterThan, value, 0)).collect();
                rule(name, Action::Allow, &conditions)
            })
            .collect();
        let err = profile(rules).compile().unwrap_err();
        assert!(matches!(err, SeccompError::TooLong { instructions } if instructions > 4096), "{err}");
    }
}
