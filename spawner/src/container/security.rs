//! The container's defences, on by default as in Docker: capabilities cut to Docker's default set
//! (bounding and ambient sets included), no_new_privs, a seccomp filter refusing the syscalls Docker's
//! default profile refuses, and /proc and /sys paths masked or made read-only. `--privileged`,
//! `--cap-add/--cap-drop` and `--security-opt` relax them.

use rustix::thread::CapabilitySet;
use std::collections::BTreeMap;

/// Capability names by number (`CAP_` prefix left off), as in linux/capability.h.
const CAP_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's default capability set.
const DOCKER_DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Paths Docker hides from containers (files get /dev/null bound over them, directories an empty
/// read-only tmpfs) and paths it makes read-only.
pub const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
pub const READONLY_PATHS: [&str; 5] =
    ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The syscalls Docker's default seccomp profile does not allow (its profile is an allowlist; these
/// are the ones a container could use against the host or to escape), refused with EPERM.
const REFUSED_SYSCALLS: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "sysfs",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
    "_sysctl",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    pub capabilities: CapabilitySet,
    pub no_new_privs: bool,
    pub seccomp: bool,
    pub mask_paths: bool,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            capabilities: DOCKER_DEFAULT
                .iter()
                .map(|n| parse_capability(n).unwrap())
                .fold(CapabilitySet::empty(), |a, b| a | b),
            no_new_privs: true,
            seccomp: true,
            mask_paths: true,
        }
    }
}

/// `NET_ADMIN`, `CAP_NET_ADMIN` or `net_admin`.
pub fn parse_capability(name: &str) -> Option<CapabilitySet> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    CAP_NAMES.iter().position(|n| *n == bare).map(|bit| CapabilitySet::from_bits_retain(1 << bit))
}

fn all_capabilities() -> CapabilitySet {
    CapabilitySet::from_bits_retain((1u64 << CAP_NAMES.len()) - 1)
}

impl Security {
    /// Applies `--privileged`, `--cap-add`, `--cap-drop` and `--security-opt` the way Docker does.
    pub fn from_options(
        privileged: bool,
        cap_add: &[String],
        cap_drop: &[String],
        opts: &[String],
    ) -> Result<Security, String> {
        let mut s = Security::default();
        if privileged {
            s = Security {
                capabilities: all_capabilities(),
                no_new_privs: false,
                seccomp: false,
                mask_paths: false,
            };
        }
        let caps = |names: &[String]| -> Result<CapabilitySet, String> {
            names.iter().try_fold(CapabilitySet::empty(), |set, n| {
                if n.eq_ignore_ascii_case("ALL") {
                    return Ok(set | all_capabilities());
                }
                parse_capability(n).map(|c| set | c).ok_or_else(|| format!("unknown capability {n:?}"))
            })
        };
        s.capabilities = (s.capabilities - caps(cap_drop)?) | caps(cap_add)?;
        for opt in opts {
            match opt.replace(':', "=").as_str() {
                "seccomp=unconfined" => s.seccomp = false,
                "no-new-privileges" | "no-new-privileges=true" => s.no_new_privs = true,
                "no-new-privileges=false" => s.no_new_privs = false,
                other => return Err(format!("unsupported --security-opt {other:?} (supported: seccomp=unconfined, no-new-privileges=true|false)")),
            }
        }
        Ok(s)
    }
}

/// Drops every capability outside `keep` from the bounding set and clears the ambient set. Runs as
/// root before the credentials change.
pub fn limit_bounding_set(keep: CapabilitySet) -> Result<(), String> {
    for bit in 0..64u32 {
        let cap = CapabilitySet::from_bits_retain(1 << bit);
        if keep.contains(cap) {
            continue;
        }
        match rustix::thread::remove_capability_from_bounding_set(cap) {
            Ok(()) => {}
            // Past the kernel's last capability.
            Err(rustix::io::Errno::INVAL) => break,
            Err(e) => {
                return Err(format!("drop capability {}: {e}", CAP_NAMES.get(bit as usize).unwrap_or(&"?")))
            }
        }
    }
    rustix::thread::clear_ambient_capability_set().map_err(|e| format!("clear ambient capabilities: {e}"))
}

/// Sets the effective, permitted and inheritable sets to `keep` (for a root container process; a
/// non-root one lost them all when its uid changed, as with Docker).
pub fn set_capabilities(keep: CapabilitySet) -> Result<(), String> {
    // Never more than this process holds (a host may lack some, e.g. CAP_SYS_RESOURCE under a
    // restricted bounding set; --privileged then means "all we have").
    let held = rustix::thread::capabilities(None).map_err(|e| format!("capget: {e}"))?.permitted;
    let keep = keep & held;
    let sets = rustix::thread::CapabilitySets { effective: keep, permitted: keep, inheritable: keep };
    rustix::thread::set_capabilities(None, sets).map_err(|e| format!("capset: {e}"))
}

/// Compiles the default seccomp filter (EPERM for the refused syscalls, everything else allowed).
/// spawner does it while the network namespace is being made, off the container's start-up path.
pub fn default_seccomp_filter() -> Result<seccompiler::BpfProgram, String> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let arch: TargetArch = std::env::consts::ARCH.try_into().map_err(|e| format!("seccomp: {e:?}"))?;
    let mut rules = BTreeMap::new();
    for name in REFUSED_SYSCALLS {
        if let Some(nr) = syscall_number(name) {
            rules.insert(nr, Vec::new());
        }
    }
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc_eperm()), arch)
        .map_err(|e| format!("seccomp filter: {e}"))?;
    let program: BpfProgram = filter.try_into().map_err(|e| format!("seccomp filter: {e:?}"))?;
    Ok(program)
}

/// Installs a filter from [`default_seccomp_filter`] on the calling thread.
pub fn install_seccomp(program: &seccompiler::BpfProgram) -> Result<(), String> {
    seccompiler::apply_filter(program).map_err(|e| format!("install seccomp filter: {e}"))
}

fn libc_eperm() -> u32 {
    rustix::io::Errno::PERM.raw_os_error() as u32
}

/// The syscall number for `name` on this architecture (None where the architecture lacks it).
fn syscall_number(name: &str) -> Option<i64> {
    use linux_raw_sys::general as g;
    let nr = match name {
        "acct" => g::__NR_acct,
        "add_key" => g::__NR_add_key,
        "bpf" => g::__NR_bpf,
        "clock_adjtime" => g::__NR_clock_adjtime,
        "clock_settime" => g::__NR_clock_settime,
        "delete_module" => g::__NR_delete_module,
        "finit_module" => g::__NR_finit_module,
        "fsconfig" => g::__NR_fsconfig,
        "fsmount" => g::__NR_fsmount,
        "fsopen" => g::__NR_fsopen,
        "fspick" => g::__NR_fspick,
        "get_mempolicy" => g::__NR_get_mempolicy,
        "init_module" => g::__NR_init_module,
        "kcmp" => g::__NR_kcmp,
        "kexec_file_load" => g::__NR_kexec_file_load,
        "kexec_load" => g::__NR_kexec_load,
        "keyctl" => g::__NR_keyctl,
        "mbind" => g::__NR_mbind,
        "mount" => g::__NR_mount,
        "mount_setattr" => g::__NR_mount_setattr,
        "move_mount" => g::__NR_move_mount,
        "move_pages" => g::__NR_move_pages,
        "name_to_handle_at" => g::__NR_name_to_handle_at,
        "open_by_handle_at" => g::__NR_open_by_handle_at,
        "open_tree" => g::__NR_open_tree,
        "perf_event_open" => g::__NR_perf_event_open,
        "pivot_root" => g::__NR_pivot_root,
        "process_vm_readv" => g::__NR_process_vm_readv,
        "process_vm_writev" => g::__NR_process_vm_writev,
        "ptrace" => g::__NR_ptrace,
        "quotactl" => g::__NR_quotactl,
        "reboot" => g::__NR_reboot,
        "request_key" => g::__NR_request_key,
        "set_mempolicy" => g::__NR_set_mempolicy,
        "setns" => g::__NR_setns,
        "settimeofday" => g::__NR_settimeofday,
        "swapoff" => g::__NR_swapoff,
        "swapon" => g::__NR_swapon,
        "umount2" => g::__NR_umount2,
        "unshare" => g::__NR_unshare,
        "userfaultfd" => g::__NR_userfaultfd,
        #[cfg(target_arch = "x86_64")]
        "create_module" => g::__NR_create_module,
        #[cfg(target_arch = "x86_64")]
        "get_kernel_syms" => g::__NR_get_kernel_syms,
        #[cfg(target_arch = "x86_64")]
        "ioperm" => g::__NR_ioperm,
        #[cfg(target_arch = "x86_64")]
        "iopl" => g::__NR_iopl,
        #[cfg(target_arch = "x86_64")]
        "lookup_dcookie" => g::__NR_lookup_dcookie,
        #[cfg(target_arch = "x86_64")]
        "nfsservctl" => g::__NR_nfsservctl,
        #[cfg(target_arch = "x86_64")]
        "query_module" => g::__NR_query_module,
        #[cfg(target_arch = "x86_64")]
        "sysfs" => g::__NR_sysfs,
        #[cfg(target_arch = "x86_64")]
        "uselib" => g::__NR_uselib,
        #[cfg(target_arch = "x86_64")]
        "ustat" => g::__NR_ustat,
        #[cfg(target_arch = "x86_64")]
        "_sysctl" => g::__NR__sysctl,
        _ => return None,
    };
    Some(nr as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_capabilities() {
        assert_eq!(Security::default().capabilities.bits(), 0xa80425fb);
        assert_eq!(parse_capability("cap_net_admin"), Some(CapabilitySet::NET_ADMIN));
        let s = Security::from_options(false, &["NET_ADMIN".into()], &["CHOWN".into()], &[]).unwrap();
        assert!(
            s.capabilities.contains(CapabilitySet::NET_ADMIN)
                && !s.capabilities.contains(CapabilitySet::CHOWN)
        );
        let s = Security::from_options(
            false,
            &[],
            &["ALL".into()],
            &["seccomp=unconfined".into(), "no-new-privileges:false".into()],
        )
        .unwrap();
        assert!(s.capabilities.is_empty() && !s.seccomp && !s.no_new_privs);
        let s = Security::from_options(true, &[], &[], &[]).unwrap();
        assert!(s.capabilities.contains(CapabilitySet::SYS_ADMIN) && !s.mask_paths);
        assert!(Security::from_options(false, &["NOPE".into()], &[], &[]).is_err());
        assert!(Security::from_options(false, &[], &[], &["apparmor=x".into()]).is_err());
    }

    #[test]
    fn every_refused_syscall_has_a_number_here() {
        let missing: Vec<_> = REFUSED_SYSCALLS
            .iter()
            .filter(|n| syscall_number(n).is_none() && !matches!(**n, "vm86" | "vm86old"))
            .collect();
        assert!(missing.is_empty() || cfg!(not(target_arch = "x86_64")), "{missing:?}");
    }
}
