//! Docker's profiles: the form Docker writes them in (rules that apply only with some capabilities,
//! on some architectures or from some kernel version on), resolved the way Docker resolves them,
//! and Docker's default profile as our own table.
//!
//! The default is moby's profiles/seccomp/default.json as it stands since mid-2025 (moby #46762,
//! #47341, #50077, #50097: syscalls up to kernel 6.13, io_uring out, lsm_* for CAP_SYS_ADMIN): an
//! allow-list with EPERM for everything else; `clone` only without namespace flags and `clone3`
//! answering ENOSYS (so that libc falls back to `clone`) unless the container has CAP_SYS_ADMIN;
//! `socket` refused for AF_VSOCK; `personality` for five values only; io_uring refused (moby
//! #46762: it runs syscalls the filter never sees); the syscalls a capability governs allowed only
//! with that capability; ptrace from kernel 4.8 on (before it, ptrace could bypass seccomp).
//! Groups for other architectures (ppc64le, s390x, riscv64, mips) are left out.

use super::{native, Action, ArgCondition, Flag, KernelVersion, Name, Op, Profile, Rule, ENOSYS, EPERM};
use rustix::thread::CapabilitySet;

/// A profile in Docker's form: its rules still depend on the container and the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileTemplate {
    pub default_action: Action,
    /// SCMP_ARCH_* names (Docker's `archMap` already resolved for this architecture).
    pub architectures: Vec<String>,
    pub flags: Vec<Flag>,
    pub rules: Vec<ConditionalRule>,
}

/// A rule that applies when everything in `includes` holds and nothing in `excludes` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionalRule {
    pub rule: Rule,
    pub includes: Gate,
    pub excludes: Gate,
}

/// Docker's `includes`/`excludes`. In `includes` every entry must hold (all the capabilities, one of
/// the architectures, at least the kernel version); in `excludes` any entry that holds excludes the
/// rule (one of the capabilities, one of the architectures, at least the kernel version).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gate {
    /// `CAP_SYS_ADMIN` etc. (the `CAP_` is optional).
    pub caps: Vec<Name>,
    /// Go architecture names: amd64, arm64, x86, x32, arm…
    pub arches: Vec<Name>,
    pub min_kernel: Option<KernelVersion>,
}

impl ProfileTemplate {
    /// The profile for a container with the bounding set `capabilities`, on a `kernel` of this
    /// architecture (Docker's `setupSeccomp`).
    pub fn resolve(&self, capabilities: CapabilitySet, kernel: KernelVersion) -> Profile {
        let has = |cap: &Name| {
            let bare = cap.trim_start_matches("CAP_").to_ascii_uppercase();
            // A capability this build does not know is one the container cannot hold.
            CapabilitySet::from_name(&bare).is_some_and(|c| capabilities.contains(c))
        };
        let arch_is = |arches: &[Name]| arches.iter().any(|a| a == native::GO_ARCH);
        let applies = |r: &ConditionalRule| {
            let (inc, exc) = (&r.includes, &r.excludes);
            let excluded = arch_is(&exc.arches)
                || exc.caps.iter().any(has)
                || exc.min_kernel.is_some_and(|min| kernel >= min);
            let included = (inc.arches.is_empty() || arch_is(&inc.arches))
                && inc.caps.iter().all(has)
                && inc.min_kernel.is_none_or(|min| kernel >= min);
            included && !excluded
        };
        Profile {
            default_action: self.default_action,
            architectures: self.architectures.clone(),
            flags: self.flags.clone(),
            syscalls: self.rules.iter().filter(|r| applies(r)).map(|r| r.rule.clone()).collect(),
        }
    }
}

/// Docker's default profile for a container with `capabilities` on `kernel`.
pub fn default_profile(capabilities: CapabilitySet, kernel: KernelVersion) -> Profile {
    default_template().resolve(capabilities, kernel)
}

/// When a group of Docker's default profile applies.
enum When {
    Always,
    /// The container has this capability.
    With(&'static str),
    /// It does not.
    Without(&'static str),
    /// The kernel is at least this version.
    Kernel(u32, u32),
    /// The architecture is one of these (Go names).
    Arch(&'static [&'static str]),
}

struct Group {
    /// Separated by white space (one string per group rather than a `&str` per name, which would
    /// cost a relocation each in a position-independent binary).
    names: &'static str,
    action: Action,
    args: &'static [ArgCondition],
    when: When,
}

const fn arg(index: u8, op: Op, value: u64, value_two: u64) -> ArgCondition {
    ArgCondition { index, op, value, value_two }
}

/// The namespace flags of clone(2): CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;
const AF_VSOCK: u64 = 40;
const ALLOW: Action = Action::Allow;

/// Docker's default profile, in its order.
fn default_template() -> ProfileTemplate {
    let rules = DEFAULT_GROUPS
        .iter()
        .map(|g| {
            let borrowed = |names: &[&'static str]| names.iter().map(|&n| Name::Borrowed(n)).collect();
            let gate = |caps: &[&'static str], arches: &[&'static str], min_kernel| Gate {
                caps: borrowed(caps),
                arches: borrowed(arches),
                min_kernel,
            };
            let none = Gate::default();
            let (includes, excludes) = match g.when {
                When::Always => (none.clone(), none),
                When::With(cap) => (gate(&[cap], &[], None), none),
                When::Without(cap) => (none, gate(&[cap], &[], None)),
                When::Kernel(major, minor) => (gate(&[], &[], Some(KernelVersion { major, minor })), none),
                When::Arch(arches) => (gate(&[], arches, None), none),
            };
            let names = g.names.split_ascii_whitespace().map(Name::Borrowed).collect();
            let rule = Rule { names, action: g.action, args: g.args.to_vec() };
            ConditionalRule { rule, includes, excludes }
        })
        .collect();
    // Docker's archMap adds x86 and x32 (or arm) here; this filter serves the native ABI only.
    let architectures = vec![native::SCMP_ARCH.to_string()];
    ProfileTemplate { default_action: Action::Errno(EPERM), architectures, flags: Vec::new(), rules }
}

const DEFAULT_GROUPS: &[Group] = &[
    Group { names: ALLOWED, action: ALLOW, args: &[], when: When::Always },
    Group {
        names: "process_vm_readv process_vm_writev ptrace",
        action: ALLOW,
        args: &[],
        when: When::Kernel(4, 8),
    },
    // Docker allows socket when arg0 != AF_VSOCK, which compares all 64 bits: the kernel reads the
    // domain as an int, so AF_VSOCK with any high bit set would pass. Refusing what the kernel
    // reads as AF_VSOCK, then allowing the rest, is the same rule without that gap.
    Group {
        names: "socket",
        action: Action::Errno(EPERM),
        args: &[arg(0, Op::MaskedEqual, 0xffff_ffff, AF_VSOCK)],
        when: When::Always,
    },
    Group { names: "socket", action: ALLOW, args: &[], when: When::Always },
    Group { names: "personality", action: ALLOW, args: &[arg(0, Op::Equal, 0, 0)], when: When::Always },
    Group { names: "personality", action: ALLOW, args: &[arg(0, Op::Equal, 0x0008, 0)], when: When::Always },
    Group { names: "personality", action: ALLOW, args: &[arg(0, Op::Equal, 0x20000, 0)], when: When::Always },
    Group { names: "personality", action: ALLOW, args: &[arg(0, Op::Equal, 0x20008, 0)], when: When::Always },
    Group {
        names: "personality",
        action: ALLOW,
        args: &[arg(0, Op::Equal, 0xffff_ffff, 0)],
        when: When::Always,
    },
    Group {
        names: "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
        action: ALLOW,
        args: &[],
        when: When::Arch(&["arm", "arm64"]),
    },
    Group { names: "arch_prctl", action: ALLOW, args: &[], when: When::Arch(&["amd64", "x32"]) },
    Group { names: "modify_ldt", action: ALLOW, args: &[], when: When::Arch(&["amd64", "x32", "x86"]) },
    Group { names: "open_by_handle_at", action: ALLOW, args: &[], when: When::With("DAC_READ_SEARCH") },
    Group {
        names: "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie \
            lsm_get_self_attr lsm_list_modules lsm_set_self_attr mount mount_setattr move_mount open_tree \
            perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog umount umount2 \
            unshare",
        action: ALLOW,
        args: &[],
        when: When::With("SYS_ADMIN"),
    },
    Group {
        names: "clone",
        action: ALLOW,
        args: &[arg(0, Op::MaskedEqual, CLONE_NAMESPACE_FLAGS, 0)],
        when: When::Without("SYS_ADMIN"),
    },
    Group { names: "clone3", action: Action::Errno(ENOSYS), args: &[], when: When::Without("SYS_ADMIN") },
    Group { names: "reboot", action: ALLOW, args: &[], when: When::With("SYS_BOOT") },
    Group { names: "chroot", action: ALLOW, args: &[], when: When::With("SYS_CHROOT") },
    Group {
        names: "delete_module init_module finit_module",
        action: ALLOW,
        args: &[],
        when: When::With("SYS_MODULE"),
    },
    Group { names: "acct", action: ALLOW, args: &[], when: When::With("SYS_PACCT") },
    Group {
        names: "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
        action: ALLOW,
        args: &[],
        when: When::With("SYS_PTRACE"),
    },
    Group { names: "iopl ioperm", action: ALLOW, args: &[], when: When::With("SYS_RAWIO") },
    Group {
        names: "settimeofday stime clock_settime clock_settime64",
        action: ALLOW,
        args: &[],
        when: When::With("SYS_TIME"),
    },
    Group { names: "vhangup", action: ALLOW, args: &[], when: When::With("SYS_TTY_CONFIG") },
    Group {
        names: "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
        action: ALLOW,
        args: &[],
        when: When::With("SYS_NICE"),
    },
    Group { names: "syslog", action: ALLOW, args: &[], when: When::With("SYSLOG") },
    Group { names: "bpf", action: ALLOW, args: &[], when: When::With("BPF") },
    Group { names: "perf_event_open", action: ALLOW, args: &[], when: When::With("PERFMON") },
];

/// What every container may call, as Docker lists it. Names of other architectures (`chown32`,
/// `_llseek`…) resolve to nothing here.
const ALLOWED: &str = "\
    accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32 \
    clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 \
    clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 \
    epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait \
    epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 \
    fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl \
    fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 \
    fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait \
    futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid \
    geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid \
    getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list \
    getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr \
    getxattrat inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy \
    io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc kill \
    landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link \
    linkat listen listmount listxattr listxattrat llistxattr _llseek lremovexattr lseek lsetxattr lstat \
    lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod \
    mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive \
    mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv \
    msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat \
    openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll \
    ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 \
    pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg \
    recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat rename renameat renameat2 \
    restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn \
    rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity \
    sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler \
    sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam \
    sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send \
    sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 \
    setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 \
    setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt \
    set_thread_area set_tid_address setuid setuid32 setxattr setxattrat shmat shmctl shmdt shmget \
    shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat \
    stat64 statfs statfs64 statmount statx symlink symlinkat sync sync_file_range syncfs sysinfo tee \
    tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime \
    timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 \
    times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat \
    utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev";

#[cfg(test)]
mod tests {
    use super::super::bpf::interpreter::{run, SeccompData};
    use super::super::{syscalls, Filter};
    use super::*;

    const KERNEL: KernelVersion = KernelVersion { major: 6, minor: 1 };
    const CLONE_NEWNS: u64 = 0x0002_0000;
    const CLONE_NEWUSER: u64 = 0x1000_0000;
    /// What glibc's fork and pthread_create pass.
    const SIGCHLD: u64 = 17;
    const THREAD_FLAGS: u64 = 0x003d_0f00;

    /// Docker's default capability set.
    fn docker_caps() -> CapabilitySet {
        crate::docker::security::Security::default().capabilities
    }

    fn filter(caps: CapabilitySet, kernel: KernelVersion) -> Filter {
        default_profile(caps, kernel).compile().unwrap()
    }

    /// The filter's answer, and the instructions it took, for `name(args…)`.
    fn decide(filter: &Filter, name: &str, args: &[u64]) -> (Action, usize) {
        let nr = syscalls::number(name).unwrap_or_else(|| panic!("{name} is not a syscall here"));
        decide_nr(filter, nr, args)
    }

    fn decide_nr(filter: &Filter, nr: u32, args: &[u64]) -> (Action, usize) {
        let mut data = SeccompData { nr, arch: native::AUDIT_ARCH, ..Default::default() };
        data.args[..args.len()].copy_from_slice(args);
        let (ret, executed) = run(filter.instructions(), &data);
        (action_of(ret), executed)
    }

    fn action_of(ret: u32) -> Action {
        let data = (ret & 0xffff) as u16;
        match ret & 0xffff_0000 {
            0x7fff_0000 => Action::Allow,
            0x0005_0000 => Action::Errno(data),
            0x8000_0000 => Action::KillProcess,
            0 => Action::KillThread,
            other => panic!("unexpected return {other:#x}"),
        }
    }

    const EPERM_: Action = Action::Errno(EPERM);

    #[test]
    fn everyday_syscalls_are_allowed() {
        let f = filter(docker_caps(), KERNEL);
        for name in ["read", "write", "execve", "openat", "mmap", "exit_group", "futex", "getpid", "statx"] {
            assert_eq!(decide(&f, name, &[]).0, ALLOW, "{name}");
        }
        #[cfg(target_arch = "x86_64")]
        assert_eq!(decide(&f, "arch_prctl", &[]).0, ALLOW);
    }

    #[test]
    fn escapes_and_host_wide_syscalls_are_refused_with_eperm() {
        let f = filter(docker_caps(), KERNEL);
        let refused = [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "keyctl",
            "add_key",
            "request_key",
            "bpf",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "kexec_load",
            "kexec_file_load",
            "init_module",
            "finit_module",
            "open_by_handle_at",
            "pivot_root",
            "userfaultfd",
            "perf_event_open",
            "fsopen",
            "open_tree",
            "move_mount",
            "kcmp",
            "reboot",
            "swapon",
            "settimeofday",
            "lsm_set_self_attr",
        ];
        for name in refused {
            assert_eq!(decide(&f, name, &[]).0, EPERM_, "{name}");
        }
    }

    #[test]
    fn clone_without_namespaces_only_and_clone3_answers_enosys() {
        let f = filter(docker_caps(), KERNEL);
        assert_eq!(decide(&f, "clone", &[SIGCHLD]).0, ALLOW);
        assert_eq!(decide(&f, "clone", &[THREAD_FLAGS]).0, ALLOW);
        assert_eq!(decide(&f, "clone", &[CLONE_NEWUSER | SIGCHLD]).0, EPERM_);
        assert_eq!(decide(&f, "clone", &[CLONE_NEWNS]).0, EPERM_);
        assert_eq!(decide(&f, "clone3", &[]).0, Action::Errno(ENOSYS));
    }

    #[test]
    fn capabilities_open_their_syscalls() {
        let admin = filter(docker_caps() | CapabilitySet::SYS_ADMIN, KERNEL);
        for name in ["mount", "unshare", "setns", "umount2", "fsopen"] {
            assert_eq!(decide(&admin, name, &[]).0, ALLOW, "{name}");
        }
        assert_eq!(decide(&admin, "clone", &[CLONE_NEWUSER | SIGCHLD]).0, ALLOW);
        assert_eq!(decide(&admin, "clone3", &[]).0, ALLOW);
        let ptrace = filter(docker_caps() | CapabilitySet::SYS_PTRACE, KERNEL);
        assert_eq!(decide(&ptrace, "kcmp", &[]).0, ALLOW);
        let module = filter(docker_caps() | CapabilitySet::SYS_MODULE, KERNEL);
        assert_eq!(decide(&module, "init_module", &[]).0, ALLOW);
        let dac = filter(docker_caps() | CapabilitySet::DAC_READ_SEARCH, KERNEL);
        assert_eq!(decide(&dac, "open_by_handle_at", &[]).0, ALLOW);
        // Without SYS_CHROOT (in Docker's default set), no chroot.
        assert_eq!(decide(&filter(docker_caps(), KERNEL), "chroot", &[]).0, ALLOW);
        assert_eq!(
            decide(&filter(docker_caps() - CapabilitySet::SYS_CHROOT, KERNEL), "chroot", &[]).0,
            EPERM_
        );
    }

    #[test]
    fn ptrace_needs_kernel_4_8() {
        assert_eq!(decide(&filter(docker_caps(), KERNEL), "ptrace", &[]).0, ALLOW);
        assert_eq!(
            decide(&filter(docker_caps(), KernelVersion { major: 4, minor: 8 }), "ptrace", &[]).0,
            ALLOW
        );
        let old = filter(docker_caps(), KernelVersion { major: 4, minor: 7 });
        assert_eq!(decide(&old, "ptrace", &[]).0, EPERM_);
        assert_eq!(decide(&old, "process_vm_readv", &[]).0, EPERM_);
    }

    #[test]
    fn socket_refuses_af_vsock_only() {
        let f = filter(docker_caps(), KERNEL);
        const AF_INET: u64 = 2;
        assert_eq!(decide(&f, "socket", &[AF_INET, 1, 0]).0, ALLOW);
        assert_eq!(decide(&f, "socket", &[AF_VSOCK, 1, 0]).0, EPERM_);
        // The kernel reads the domain as an int: a high bit must not get AF_VSOCK through.
        assert_eq!(decide(&f, "socket", &[1 << 32 | AF_VSOCK, 1, 0]).0, EPERM_);
    }

    #[test]
    fn personality_only_for_docker_values() {
        let f = filter(docker_caps(), KERNEL);
        for allowed in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
            assert_eq!(decide(&f, "personality", &[allowed]).0, ALLOW, "{allowed:#x}");
        }
        const READ_IMPLIES_EXEC: u64 = 0x0040_0000;
        assert_eq!(decide(&f, "personality", &[READ_IMPLIES_EXEC]).0, EPERM_);
        // Equal in the low half, different in the high one: not a match.
        assert_eq!(decide(&f, "personality", &[1 << 32]).0, EPERM_);
        assert_eq!(decide(&f, "personality", &[1 << 32 | 8]).0, EPERM_);
    }

    #[test]
    fn other_abis_are_killed_and_unknown_numbers_get_enosys() {
        let f = filter(docker_caps(), KERNEL);
        const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
        let i386 = SeccompData { nr: 3, arch: AUDIT_ARCH_I386, ..Default::default() };
        assert_eq!(action_of(run(f.instructions(), &i386).0), Action::KillProcess);
        #[cfg(target_arch = "x86_64")]
        for name in ["read", "write", "mount", "clone"] {
            let x32 = syscalls::number(name).unwrap() | 0x4000_0000;
            assert_eq!(decide_nr(&f, x32, &[SIGCHLD]).0, Action::KillProcess, "{name} as x32");
        }
        assert_eq!(decide_nr(&f, syscalls::MAX_NUMBER + 1, &[]).0, Action::Errno(ENOSYS));
        assert_eq!(decide_nr(&f, 1000, &[]).0, Action::Errno(ENOSYS));
    }

    #[test]
    fn the_filter_is_small_and_decides_in_a_logarithmic_number_of_steps() {
        let caps_all = CapabilitySet::from_bits_retain((1 << 41) - 1);
        for caps in [docker_caps(), caps_all] {
            let f = filter(caps, KERNEL);
            assert!(f.instructions().len() < 1024, "{} instructions", f.instructions().len());
            let mut worst = 0;
            for name in syscalls::names() {
                let (action, executed) = decide(&f, name, &[SIGCHLD]);
                if action == ALLOW {
                    worst = worst.max(executed);
                }
            }
            assert!(worst < 40, "an allowed syscall took {worst} instructions");
        }
    }
}
