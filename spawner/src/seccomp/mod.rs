//! seccomp filters for the container: a profile in OCI's shape (a default action, and rules that
//! give syscalls, possibly only with some arguments, another one) compiled by our own compiler into
//! a classic BPF program, installed on the container's first process.
//!
//! - `docker`: Docker's profile form (rules with includes/excludes on capabilities, architecture
//!   and kernel version) and Docker's default profile, resolved into a [`Profile`].
//! - `json`: profile files (`--security-opt seccomp=FILE`), in Docker's format or OCI's.
//! - `compile`: a [`Profile`] into a [`Filter`].
//! - `bpf`: the instructions (and, for tests, an interpreter to run a filter on synthetic syscalls).
//! - `syscalls`: syscall names to numbers on this architecture.

pub mod bpf;
mod compile;
pub mod docker;
pub mod json;
pub mod syscalls;

use std::fmt;

/// What a filter does with a syscall (SCMP_ACT_* in a profile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Allow,
    /// The syscall is not run and fails with this errno.
    Errno(u16),
    KillThread,
    KillProcess,
    /// SIGSYS to the thread.
    Trap,
    /// Hands the syscall to a ptrace tracer, with this value as the event message (ENOSYS for the
    /// caller when there is no tracer).
    Trace(u16),
    /// Allowed, and logged.
    Log,
}

pub const EPERM: u16 = 1;
pub const ENOSYS: u16 = 38;
/// The highest errno the kernel passes on (MAX_ERRNO); it clamps anything above.
const MAX_ERRNO: u32 = 4095;

impl Action {
    /// The action a profile names, with its `errnoRet` (EPERM when there is none, as in runc).
    pub fn from_name(name: &str, errno_ret: Option<u32>, at: &str) -> Result<Action, SeccompError> {
        let errno = || match errno_ret {
            None => Ok(EPERM),
            Some(e) if e <= MAX_ERRNO => Ok(e as u16),
            Some(e) => Err(SeccompError::ErrnoOutOfRange { at: at.into(), value: e }),
        };
        let action = match name {
            "SCMP_ACT_ALLOW" => Action::Allow,
            "SCMP_ACT_ERRNO" => return errno().map(Action::Errno),
            "SCMP_ACT_TRACE" => return errno().map(Action::Trace),
            // libseccomp's SCMP_ACT_KILL has always meant the thread.
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_LOG" => Action::Log,
            "SCMP_ACT_NOTIFY" => {
                return Err(SeccompError::Unsupported { at: at.into(), what: "SCMP_ACT_NOTIFY".into() })
            }
            _ => return Err(SeccompError::UnknownName { at: at.into(), kind: "action", name: name.into() }),
        };
        match errno_ret {
            Some(_) => Err(SeccompError::ErrnoRetWithoutErrno { at: at.into(), action: name.into() }),
            None => Ok(action),
        }
    }

    /// The value the filter returns (SECCOMP_RET_*, with the errno or trace data).
    pub fn ret(self) -> u32 {
        match self {
            Action::KillProcess => 0x8000_0000,
            Action::KillThread => 0,
            Action::Trap => 0x0003_0000,
            Action::Errno(e) => 0x0005_0000 | u32::from(e),
            Action::Trace(data) => 0x7ff0_0000 | u32::from(data),
            Action::Log => 0x7ffc_0000,
            Action::Allow => 0x7fff_0000,
        }
    }

    /// Whether a profile with this default action lets through what it does not name (runc adds
    /// no ENOSYS answer for syscalls newer than its table then, and neither do we).
    fn permits(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }
}

/// How a syscall argument is compared (SCMP_CMP_*); all comparisons are unsigned, on 64 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    NotEqual,
    LessThan,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    GreaterThan,
    /// `(arg & value) == value_two`.
    MaskedEqual,
}

impl Op {
    pub fn from_name(name: &str, at: &str) -> Result<Op, SeccompError> {
        Ok(match name {
            "SCMP_CMP_NE" => Op::NotEqual,
            "SCMP_CMP_LT" => Op::LessThan,
            "SCMP_CMP_LE" => Op::LessOrEqual,
            "SCMP_CMP_EQ" => Op::Equal,
            "SCMP_CMP_GE" => Op::GreaterOrEqual,
            "SCMP_CMP_GT" => Op::GreaterThan,
            "SCMP_CMP_MASKED_EQ" => Op::MaskedEqual,
            _ => return Err(SeccompError::UnknownName { at: at.into(), kind: "op", name: name.into() }),
        })
    }
}

/// A condition on one syscall argument (OCI's `args` entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArgCondition {
    /// 0 to 5.
    pub index: u8,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

/// The most arguments a syscall has.
pub const MAX_ARGS: u32 = 6;

/// A syscall, capability or architecture name: borrowed from our own tables (Docker's default
/// profile resolves without copying a name), owned when read from a file.
pub type Name = std::borrow::Cow<'static, str>;

/// Syscalls that get `action` when every condition in `args` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub names: Vec<Name>,
    pub action: Action,
    pub args: Vec<ArgCondition>,
}

/// Filter flags a profile may ask for (SECCOMP_FILTER_FLAG_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    Log,
    SpecAllow,
    /// Accepted and ignored: the process installing the filter has one thread.
    Tsync,
}

impl Flag {
    pub fn from_name(name: &str) -> Result<Flag, SeccompError> {
        Ok(match name {
            "SECCOMP_FILTER_FLAG_LOG" => Flag::Log,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => Flag::SpecAllow,
            "SECCOMP_FILTER_FLAG_TSYNC" => Flag::Tsync,
            _ => {
                return Err(SeccompError::UnknownName { at: "flags".into(), kind: "flag", name: name.into() })
            }
        })
    }

    fn bits(self) -> u32 {
        match self {
            Flag::Log => rawsys::seccomp::FILTER_FLAG_LOG,
            Flag::SpecAllow => rawsys::seccomp::FILTER_FLAG_SPEC_ALLOW,
            Flag::Tsync => 0,
        }
    }
}

/// A seccomp profile for this architecture, with nothing left to resolve: the rules apply in
/// order, the first whose conditions all hold decides, and `default_action` decides the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub default_action: Action,
    /// SCMP_ARCH_* names; empty means this architecture only. Must include this architecture:
    /// the filter serves only it (see `compile`).
    pub architectures: Vec<String>,
    pub flags: Vec<Flag>,
    pub syscalls: Vec<Rule>,
}

impl Profile {
    /// The BPF program for this profile.
    pub fn compile(&self) -> Result<Filter, SeccompError> {
        compile::compile(self)
    }
}

/// The architecture the filter is compiled for, by its libseccomp name, its Go name (what Docker
/// profiles' `arches` say) and its audit number (what the kernel puts in `seccomp_data.arch`).
#[cfg(target_arch = "x86_64")]
pub mod native {
    pub const SCMP_ARCH: &str = "SCMP_ARCH_X86_64";
    pub const GO_ARCH: &str = "amd64";
    /// EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
    pub const AUDIT_ARCH: u32 = 62 | 0x8000_0000 | 0x4000_0000;
}
#[cfg(target_arch = "aarch64")]
pub mod native {
    pub const SCMP_ARCH: &str = "SCMP_ARCH_AARCH64";
    pub const GO_ARCH: &str = "arm64";
    /// EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
    pub const AUDIT_ARCH: u32 = 183 | 0x8000_0000 | 0x4000_0000;
}

/// The SCMP_ARCH_* names libseccomp knows.
const KNOWN_ARCHES: [&str; 23] = [
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

/// Refuses unknown architecture names, and a list that leaves out this architecture (an empty
/// list means this one only).
pub fn check_architectures(architectures: &[String], at: &str) -> Result<(), SeccompError> {
    if let Some(unknown) = architectures.iter().find(|a| !KNOWN_ARCHES.contains(&a.as_str())) {
        return Err(SeccompError::UnknownName { at: at.into(), kind: "architecture", name: unknown.clone() });
    }
    if !architectures.is_empty() && !architectures.iter().any(|a| a == native::SCMP_ARCH) {
        return Err(SeccompError::ArchitectureMissing { at: at.into() });
    }
    Ok(())
}

/// A kernel version, major.minor (what Docker's `minKernel` compares).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    /// `4.8`, or a release string such as `6.1.0-18-amd64` (what follows the minor is ignored).
    pub fn parse(text: &str) -> Option<KernelVersion> {
        let mut parts = text.splitn(3, |c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(KernelVersion { major, minor })
    }

    /// The running kernel's version (uname's release).
    pub fn running() -> Result<KernelVersion, SeccompError> {
        let uname = rustix::system::uname();
        let release = uname.release().to_string_lossy();
        KernelVersion::parse(&release)
            .ok_or_else(|| SeccompError::KernelVersion { at: "uname".into(), value: release.into_owned() })
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A compiled filter, ready to install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    instructions: Vec<bpf::Instruction>,
    /// SECCOMP_FILTER_FLAG_* bits.
    flags: u32,
}

impl Filter {
    pub fn instructions(&self) -> &[bpf::Instruction] {
        &self.instructions
    }

    /// Installs the filter on the calling thread, for it and everything it later runs. Sets no
    /// no_new_privs: the caller needs CAP_SYS_ADMIN, or to have set no_new_privs itself.
    pub fn install(&self) -> Result<(), SeccompError> {
        rawsys::seccomp::set_mode_filter(&self.instructions, self.flags).map_err(SeccompError::Install)
    }
}

/// Why a profile could not be read, compiled or installed. `at` says where in the profile.
#[derive(Debug)]
pub enum SeccompError {
    /// Not JSON, or not a profile's shape (serde's message names the field, line and column).
    Json(serde_json::Error),
    UnknownName {
        at: String,
        kind: &'static str,
        name: String,
    },
    Unsupported {
        at: String,
        what: String,
    },
    Missing {
        at: String,
        what: &'static str,
    },
    ErrnoOutOfRange {
        at: String,
        value: u32,
    },
    ErrnoRetWithoutErrno {
        at: String,
        action: String,
    },
    ArgIndex {
        at: String,
        index: u32,
    },
    ArchitectureMissing {
        at: String,
    },
    BothArchitecturesAndArchMap,
    BothNameAndNames {
        at: String,
    },
    KernelVersion {
        at: String,
        value: String,
    },
    TooLong {
        instructions: usize,
    },
    Install(rustix::io::Errno),
}

impl fmt::Display for SeccompError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeccompError::Json(e) => write!(f, "{e}"),
            SeccompError::UnknownName { at, kind, name } => write!(f, "{at}: unknown {kind} {name:?}"),
            SeccompError::Unsupported { at, what } => {
                write!(f, "{at}: {what} is not supported (spawner has no seccomp agent)")
            }
            SeccompError::Missing { at, what } => write!(f, "{at}: {what} is missing"),
            SeccompError::ErrnoOutOfRange { at, value } => {
                write!(f, "{at}: errnoRet {value} is not an errno (0 to {MAX_ERRNO})")
            }
            SeccompError::ErrnoRetWithoutErrno { at, action } => {
                write!(f, "{at}: errnoRet only goes with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {action}")
            }
            SeccompError::ArgIndex { at, index } => {
                write!(f, "{at}: argument index {index} (a syscall has arguments 0 to {})", MAX_ARGS - 1)
            }
            SeccompError::ArchitectureMissing { at } => {
                write!(f, "{at}: this host's architecture, {}, is not among the profile's", native::SCMP_ARCH)
            }
            SeccompError::BothArchitecturesAndArchMap => {
                write!(f, "both architectures and archMap are given: use one of them")
            }
            SeccompError::BothNameAndNames { at } => write!(f, "{at}: both name and names are given"),
            SeccompError::KernelVersion { at, value } => {
                write!(f, "{at}: kernel version {value:?} is not MAJOR.MINOR")
            }
            SeccompError::TooLong { instructions } => write!(
                f,
                "the filter has {instructions} instructions, more than the kernel takes ({})",
                bpf::MAX_INSTRUCTIONS
            ),
            SeccompError::Install(e) => write!(f, "seccomp(SECCOMP_SET_MODE_FILTER): {e}"),
        }
    }
}

impl std::error::Error for SeccompError {}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::io::Errno;

    /// Installs Docker's default filter in a forked child and checks what the kernel then answers.
    /// As root the filter goes in without no_new_privs, as it does in a container's first process;
    /// otherwise the child sets no_new_privs first (the kernel's condition for an unprivileged
    /// filter). Either way the kernel, not the test interpreter, decides.
    #[test]
    fn the_kernel_applies_the_installed_filter() {
        let caps = crate::docker::security::Security::default().capabilities;
        let filter = docker::default_profile(caps, KernelVersion::running().unwrap()).compile().unwrap();
        let root = rustix::process::geteuid().is_root();
        // SAFETY: the child makes syscalls only (no allocation, no lock another thread of the test
        // harness could have held) and exits.
        let pid = unsafe { rawsys::fork() }.unwrap();
        if pid == 0 {
            rawsys::exit(checks_under_filter(&filter, root));
        }
        let pid = rustix::process::Pid::from_raw(pid).unwrap();
        let (_, status) =
            rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()).unwrap().unwrap();
        assert_eq!(status.exit_status(), Some(0), "{status:?} (exit status: the first check that failed)");
    }

    #[test]
    fn kernel_versions_from_release_strings() {
        let v = |major, minor| Some(KernelVersion { major, minor });
        assert_eq!(KernelVersion::parse("6.1.0-18-amd64"), v(6, 1));
        assert_eq!(KernelVersion::parse("6.18.44-fc-v1045"), v(6, 18));
        assert_eq!(KernelVersion::parse("4.8"), v(4, 8));
        assert_eq!(KernelVersion::parse("5"), None);
        assert_eq!(KernelVersion::parse("x.y"), None);
        assert!(KernelVersion::running().unwrap() >= KernelVersion { major: 3, minor: 17 });
    }

    /// Runs in the forked child: 0 when every answer is the filter's, else the failed check's number.
    fn checks_under_filter(filter: &Filter, root: bool) -> i32 {
        if !root && rustix::thread::set_no_new_privs(true).is_err() {
            return 1;
        }
        if filter.install().is_err() {
            return 2;
        }
        // Without the filter this succeeds (root, or unprivileged user namespaces).
        // SAFETY: CLONE_NEWUSER changes no file descriptor table.
        if unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWUSER) }
            != Err(Errno::PERM)
        {
            return 3;
        }
        // Without it: a socket, or EAFNOSUPPORT without the vsock module; never EPERM.
        let vsock =
            rustix::net::socket(rustix::net::AddressFamily::VSOCK, rustix::net::SocketType::STREAM, None);
        if vsock.err() != Some(Errno::PERM) {
            return 4;
        }
        if rustix::process::getpid().as_raw_nonzero().get() <= 0 {
            return 5;
        }
        0
    }
}
