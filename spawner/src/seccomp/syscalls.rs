//! Syscall names to numbers for the architecture spawner is built for, from the kernel headers
//! (linux-raw-sys), so that a misspelt name here is a compile error rather than a syscall quietly
//! left out of a filter. Profiles name syscalls of every architecture (`chown32`, `_llseek`,
//! `arm_fadvise64_64`…): a name missing here is simply not a syscall of this one.

use linux_raw_sys::general::*;

/// One table of syscalls, sorted by name. The names are one string (an entry's name is the span
/// `spans[i]` of it) rather than a `&str` each: a few hundred string pointers would cost a
/// relocation each in a position-independent binary.
struct Table {
    names: &'static str,
    spans: &'static [(u16, u16)],
    numbers: &'static [u32],
    /// `by_first_byte[b]..by_first_byte[b + 1]` are the entries whose name starts with byte `b`.
    by_first_byte: &'static [u16; 257],
}

/// The table of the `__NR_*` constants given, built at compile time.
macro_rules! table {
    ($($nr:ident),* $(,)?) => {{
        const NAMES: &str = concat!($(stringify!($nr), " "),*);
        const NUMBERS: &[u32] = &[$($nr),*];
        const SPANS: [(u16, u16); NUMBERS.len()] = spans(NAMES);
        const BY_FIRST_BYTE: [u16; 257] = first_byte_index(NAMES, &SPANS);
        Table { names: NAMES, spans: &SPANS, numbers: NUMBERS, by_first_byte: &BY_FIRST_BYTE }
    }};
}

/// Where each name is in `"__NR_a __NR_b "`, without its `__NR_`.
const fn spans<const N: usize>(names: &str) -> [(u16, u16); N] {
    let bytes = names.as_bytes();
    let mut spans = [(0, 0); N];
    let (mut at, mut i) = (0, 0);
    while i < N {
        let start = at + "__NR_".len();
        at = start;
        while bytes[at] != b' ' {
            at += 1;
        }
        spans[i] = (start as u16, at as u16);
        at += 1;
        i += 1;
    }
    assert!(at == bytes.len() && at <= u16::MAX as usize);
    spans
}

/// For each byte, where the names starting with it begin (see [`Table::by_first_byte`]).
const fn first_byte_index(names: &str, spans: &[(u16, u16)]) -> [u16; 257] {
    let mut index = [0u16; 257];
    let (mut byte, mut i) = (0, 0);
    while byte < 257 {
        while i < spans.len() && (names.as_bytes()[spans[i].0 as usize] as usize) < byte {
            i += 1;
        }
        index[byte] = i as u16;
        byte += 1;
    }
    index
}

impl Table {
    fn name(&self, (start, end): (u16, u16)) -> &'static str {
        &self.names[usize::from(start)..usize::from(end)]
    }

    fn number(&self, name: &str) -> Option<u32> {
        // Only the names that start with the same byte: a profile resolves a few hundred names per
        // container start, and this halves the comparisons.
        let first = usize::from(*name.as_bytes().first()?);
        let (lo, hi) = (usize::from(self.by_first_byte[first]), usize::from(self.by_first_byte[first + 1]));
        self.spans[lo..hi]
            .binary_search_by(|&span| self.name(span).cmp(name))
            .ok()
            .map(|i| self.numbers[lo + i])
    }
}

/// The syscalls every supported architecture has (x86_64 and aarch64), sorted by name.
const COMMON: Table = table![
    __NR_accept,
    __NR_accept4,
    __NR_acct,
    __NR_add_key,
    __NR_adjtimex,
    __NR_bind,
    __NR_bpf,
    __NR_brk,
    __NR_cachestat,
    __NR_capget,
    __NR_capset,
    __NR_chdir,
    __NR_chroot,
    __NR_clock_adjtime,
    __NR_clock_getres,
    __NR_clock_gettime,
    __NR_clock_nanosleep,
    __NR_clock_settime,
    __NR_clone,
    __NR_clone3,
    __NR_close,
    __NR_close_range,
    __NR_connect,
    __NR_copy_file_range,
    __NR_delete_module,
    __NR_dup,
    __NR_dup3,
    __NR_epoll_create1,
    __NR_epoll_ctl,
    __NR_epoll_pwait,
    __NR_epoll_pwait2,
    __NR_eventfd2,
    __NR_execve,
    __NR_execveat,
    __NR_exit,
    __NR_exit_group,
    __NR_faccessat,
    __NR_faccessat2,
    __NR_fadvise64,
    __NR_fallocate,
    __NR_fanotify_init,
    __NR_fanotify_mark,
    __NR_fchdir,
    __NR_fchmod,
    __NR_fchmodat,
    __NR_fchmodat2,
    __NR_fchown,
    __NR_fchownat,
    __NR_fcntl,
    __NR_fdatasync,
    __NR_fgetxattr,
    __NR_finit_module,
    __NR_flistxattr,
    __NR_flock,
    __NR_fremovexattr,
    __NR_fsconfig,
    __NR_fsetxattr,
    __NR_fsmount,
    __NR_fsopen,
    __NR_fspick,
    __NR_fstat,
    __NR_fstatfs,
    __NR_fsync,
    __NR_ftruncate,
    __NR_futex,
    __NR_futex_requeue,
    __NR_futex_wait,
    __NR_futex_waitv,
    __NR_futex_wake,
    __NR_get_mempolicy,
    __NR_get_robust_list,
    __NR_getcpu,
    __NR_getcwd,
    __NR_getdents64,
    __NR_getegid,
    __NR_geteuid,
    __NR_getgid,
    __NR_getgroups,
    __NR_getitimer,
    __NR_getpeername,
    __NR_getpgid,
    __NR_getpid,
    __NR_getppid,
    __NR_getpriority,
    __NR_getrandom,
    __NR_getresgid,
    __NR_getresuid,
    __NR_getrlimit,
    __NR_getrusage,
    __NR_getsid,
    __NR_getsockname,
    __NR_getsockopt,
    __NR_gettid,
    __NR_gettimeofday,
    __NR_getuid,
    __NR_getxattr,
    __NR_getxattrat,
    __NR_init_module,
    __NR_inotify_add_watch,
    __NR_inotify_init1,
    __NR_inotify_rm_watch,
    __NR_io_cancel,
    __NR_io_destroy,
    __NR_io_getevents,
    __NR_io_pgetevents,
    __NR_io_setup,
    __NR_io_submit,
    __NR_io_uring_enter,
    __NR_io_uring_register,
    __NR_io_uring_setup,
    __NR_ioctl,
    __NR_ioprio_get,
    __NR_ioprio_set,
    __NR_kcmp,
    __NR_kexec_file_load,
    __NR_kexec_load,
    __NR_keyctl,
    __NR_kill,
    __NR_landlock_add_rule,
    __NR_landlock_create_ruleset,
    __NR_landlock_restrict_self,
    __NR_lgetxattr,
    __NR_linkat,
    __NR_listen,
    __NR_listmount,
    __NR_listxattr,
    __NR_listxattrat,
    __NR_llistxattr,
    __NR_lookup_dcookie,
    __NR_lremovexattr,
    __NR_lseek,
    __NR_lsetxattr,
    __NR_lsm_get_self_attr,
    __NR_lsm_list_modules,
    __NR_lsm_set_self_attr,
    __NR_madvise,
    __NR_map_shadow_stack,
    __NR_mbind,
    __NR_membarrier,
    __NR_memfd_create,
    __NR_memfd_secret,
    __NR_migrate_pages,
    __NR_mincore,
    __NR_mkdirat,
    __NR_mknodat,
    __NR_mlock,
    __NR_mlock2,
    __NR_mlockall,
    __NR_mmap,
    __NR_mount,
    __NR_mount_setattr,
    __NR_move_mount,
    __NR_move_pages,
    __NR_mprotect,
    __NR_mq_getsetattr,
    __NR_mq_notify,
    __NR_mq_open,
    __NR_mq_timedreceive,
    __NR_mq_timedsend,
    __NR_mq_unlink,
    __NR_mremap,
    __NR_mseal,
    __NR_msgctl,
    __NR_msgget,
    __NR_msgrcv,
    __NR_msgsnd,
    __NR_msync,
    __NR_munlock,
    __NR_munlockall,
    __NR_munmap,
    __NR_name_to_handle_at,
    __NR_nanosleep,
    __NR_newfstatat,
    __NR_nfsservctl,
    __NR_open_by_handle_at,
    __NR_open_tree,
    __NR_open_tree_attr,
    __NR_openat,
    __NR_openat2,
    __NR_perf_event_open,
    __NR_personality,
    __NR_pidfd_getfd,
    __NR_pidfd_open,
    __NR_pidfd_send_signal,
    __NR_pipe2,
    __NR_pivot_root,
    __NR_pkey_alloc,
    __NR_pkey_free,
    __NR_pkey_mprotect,
    __NR_ppoll,
    __NR_prctl,
    __NR_pread64,
    __NR_preadv,
    __NR_preadv2,
    __NR_prlimit64,
    __NR_process_madvise,
    __NR_process_mrelease,
    __NR_process_vm_readv,
    __NR_process_vm_writev,
    __NR_pselect6,
    __NR_ptrace,
    __NR_pwrite64,
    __NR_pwritev,
    __NR_pwritev2,
    __NR_quotactl,
    __NR_quotactl_fd,
    __NR_read,
    __NR_readahead,
    __NR_readlinkat,
    __NR_readv,
    __NR_reboot,
    __NR_recvfrom,
    __NR_recvmmsg,
    __NR_recvmsg,
    __NR_remap_file_pages,
    __NR_removexattr,
    __NR_removexattrat,
    __NR_renameat,
    __NR_renameat2,
    __NR_request_key,
    __NR_restart_syscall,
    __NR_rseq,
    __NR_rt_sigaction,
    __NR_rt_sigpending,
    __NR_rt_sigprocmask,
    __NR_rt_sigqueueinfo,
    __NR_rt_sigreturn,
    __NR_rt_sigsuspend,
    __NR_rt_sigtimedwait,
    __NR_rt_tgsigqueueinfo,
    __NR_sched_get_priority_max,
    __NR_sched_get_priority_min,
    __NR_sched_getaffinity,
    __NR_sched_getattr,
    __NR_sched_getparam,
    __NR_sched_getscheduler,
    __NR_sched_rr_get_interval,
    __NR_sched_setaffinity,
    __NR_sched_setattr,
    __NR_sched_setparam,
    __NR_sched_setscheduler,
    __NR_sched_yield,
    __NR_seccomp,
    __NR_semctl,
    __NR_semget,
    __NR_semop,
    __NR_semtimedop,
    __NR_sendfile,
    __NR_sendmmsg,
    __NR_sendmsg,
    __NR_sendto,
    __NR_set_mempolicy,
    __NR_set_mempolicy_home_node,
    __NR_set_robust_list,
    __NR_set_tid_address,
    __NR_setdomainname,
    __NR_setfsgid,
    __NR_setfsuid,
    __NR_setgid,
    __NR_setgroups,
    __NR_sethostname,
    __NR_setitimer,
    __NR_setns,
    __NR_setpgid,
    __NR_setpriority,
    __NR_setregid,
    __NR_setresgid,
    __NR_setresuid,
    __NR_setreuid,
    __NR_setrlimit,
    __NR_setsid,
    __NR_setsockopt,
    __NR_settimeofday,
    __NR_setuid,
    __NR_setxattr,
    __NR_setxattrat,
    __NR_shmat,
    __NR_shmctl,
    __NR_shmdt,
    __NR_shmget,
    __NR_shutdown,
    __NR_sigaltstack,
    __NR_signalfd4,
    __NR_socket,
    __NR_socketpair,
    __NR_splice,
    __NR_statfs,
    __NR_statmount,
    __NR_statx,
    __NR_swapoff,
    __NR_swapon,
    __NR_symlinkat,
    __NR_sync,
    __NR_sync_file_range,
    __NR_syncfs,
    __NR_sysinfo,
    __NR_syslog,
    __NR_tee,
    __NR_tgkill,
    __NR_timer_create,
    __NR_timer_delete,
    __NR_timer_getoverrun,
    __NR_timer_gettime,
    __NR_timer_settime,
    __NR_timerfd_create,
    __NR_timerfd_gettime,
    __NR_timerfd_settime,
    __NR_times,
    __NR_tkill,
    __NR_truncate,
    __NR_umask,
    __NR_umount2,
    __NR_uname,
    __NR_unlinkat,
    __NR_unshare,
    __NR_userfaultfd,
    __NR_utimensat,
    __NR_vhangup,
    __NR_vmsplice,
    __NR_wait4,
    __NR_waitid,
    __NR_write,
    __NR_writev,
];

/// The syscalls only x86_64 has (older interfaces aarch64 never got, and x86 specifics), sorted.
#[cfg(target_arch = "x86_64")]
const ARCH_ONLY: Table = table![
    __NR__sysctl,
    __NR_access,
    __NR_afs_syscall,
    __NR_alarm,
    __NR_arch_prctl,
    __NR_chmod,
    __NR_chown,
    __NR_creat,
    __NR_create_module,
    __NR_dup2,
    __NR_epoll_create,
    __NR_epoll_ctl_old,
    __NR_epoll_wait,
    __NR_epoll_wait_old,
    __NR_eventfd,
    __NR_fork,
    __NR_futimesat,
    __NR_get_kernel_syms,
    __NR_get_thread_area,
    __NR_getdents,
    __NR_getpgrp,
    __NR_getpmsg,
    __NR_inotify_init,
    __NR_ioperm,
    __NR_iopl,
    __NR_lchown,
    __NR_link,
    __NR_lstat,
    __NR_mkdir,
    __NR_mknod,
    __NR_modify_ldt,
    __NR_open,
    __NR_pause,
    __NR_pipe,
    __NR_poll,
    __NR_putpmsg,
    __NR_query_module,
    __NR_readlink,
    __NR_rename,
    __NR_rmdir,
    __NR_security,
    __NR_select,
    __NR_set_thread_area,
    __NR_signalfd,
    __NR_stat,
    __NR_symlink,
    __NR_sysfs,
    __NR_time,
    __NR_tuxcall,
    __NR_unlink,
    __NR_uretprobe,
    __NR_uselib,
    __NR_ustat,
    __NR_utime,
    __NR_utimes,
    __NR_vfork,
    __NR_vserver,
];

/// aarch64 has no syscall x86_64 lacks: it uses the generic table, which x86_64's includes.
#[cfg(target_arch = "aarch64")]
const ARCH_ONLY: Table = table![];

/// The number of syscall `name` on this architecture, or None when it has no such syscall.
pub fn number(name: &str) -> Option<u32> {
    COMMON.number(name).or_else(|| ARCH_ONLY.number(name))
}

/// Every syscall name this architecture has.
#[cfg(test)]
pub fn names() -> impl Iterator<Item = &'static str> {
    [COMMON, ARCH_ONLY].into_iter().flat_map(|t| t.spans.iter().map(move |&span| t.name(span)))
}

/// The highest syscall number this table knows: a filter answers anything above it ENOSYS (see
/// `compile`), as a syscall from a newer kernel than these headers is one no profile could list.
pub const MAX_NUMBER: u32 = max(COMMON.numbers, max(ARCH_ONLY.numbers, 0));

const fn max(numbers: &[u32], mut highest: u32) -> u32 {
    let mut i = 0;
    while i < numbers.len() {
        if numbers[i] > highest {
            highest = numbers[i];
        }
        i += 1;
    }
    highest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_every_number_is_unique() {
        for table in [COMMON, ARCH_ONLY] {
            let names: Vec<_> = table.spans.iter().map(|&span| table.name(span)).collect();
            assert!(names.windows(2).all(|w| w[0] < w[1]), "not sorted by name");
            assert_eq!(names.len(), table.numbers.len());
        }
        let mut numbers: Vec<u32> = COMMON.numbers.iter().chain(ARCH_ONLY.numbers).copied().collect();
        numbers.sort_unstable();
        let count = numbers.len();
        numbers.dedup();
        assert_eq!(numbers.len(), count, "two names share a number");
    }

    #[test]
    fn names_resolve_to_this_architectures_numbers() {
        assert_eq!(number("read"), Some(__NR_read));
        assert_eq!(number("clone3"), Some(__NR_clone3));
        assert_eq!(number("chown32"), None);
        assert_eq!(number("__NR_read"), None);
        assert_eq!(number(""), None);
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(number("read"), Some(0));
            assert_eq!(number("open"), Some(2));
            assert_eq!(number("arch_prctl"), Some(158));
        }
        #[cfg(target_arch = "aarch64")]
        assert_eq!(number("open"), None);
        assert_eq!(MAX_NUMBER, COMMON.numbers.iter().chain(ARCH_ONLY.numbers).copied().max().unwrap());
        // Every name of the tables, first and last of each included.
        for name in names() {
            assert!(number(name).is_some(), "{name}");
        }
        assert_eq!(number("accept"), Some(__NR_accept));
        assert_eq!(number("writev"), Some(__NR_writev));
    }
}
