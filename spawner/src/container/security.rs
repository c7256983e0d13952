//! Capabilities and the seccomp filter as the container's first process applies them: the bounding
//! set cut, the user and groups changed with the capabilities the process keeps, and the filter
//! installed without setting no_new_privs itself.

use crate::seccomp::Filter;
use crate::spec::Capabilities;
use rustix::thread::CapabilitySet;

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

/// `NET_ADMIN`, `CAP_NET_ADMIN` or `net_admin`.
pub fn parse_capability(name: &str) -> Option<CapabilitySet> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    CAP_NAMES.iter().position(|n| *n == bare).map(|bit| CapabilitySet::from_bits_retain(1 << bit))
}

/// Every capability name this table knows, as the OCI spec writes them (`CAP_CHOWN`…).
pub fn capability_names() -> Vec<String> {
    CAP_NAMES.iter().map(|n| format!("CAP_{n}")).collect()
}

/// Every capability this table knows.
pub fn all_capabilities() -> CapabilitySet {
    CapabilitySet::from_bits_retain((1u64 << CAP_NAMES.len()) - 1)
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

/// Changes to `uid`, `gid` and `groups` and leaves the process `caps`' effective, permitted,
/// inheritable and ambient sets (runc's order: keep the capabilities across the uid change, then
/// set them). Never more than this process holds: a host may lack some (CAP_SYS_RESOURCE under a
/// restricted bounding set; `--privileged` then means "all there is").
pub fn change_user(uid: u32, gid: u32, groups: &[u32], caps: &Capabilities) -> Result<(), String> {
    let held = rustix::thread::capabilities(None).map_err(|e| format!("capget: {e}"))?.permitted;
    let keep_any = !(caps.permitted & held).is_empty();
    if uid != 0 && keep_any {
        rustix::thread::set_keep_capabilities(true).map_err(|e| format!("prctl(PR_SET_KEEPCAPS): {e}"))?;
    }
    let groups: Vec<rustix::process::Gid> =
        groups.iter().map(|&g| rustix::process::Gid::from_raw(g)).collect();
    rustix::thread::set_thread_groups(&groups).map_err(|e| format!("setgroups: {e}"))?;
    rustix::thread::set_thread_gid(rustix::process::Gid::from_raw(gid))
        .map_err(|e| format!("setgid {gid}: {e}"))?;
    rustix::thread::set_thread_uid(rustix::process::Uid::from_raw(uid))
        .map_err(|e| format!("setuid {uid}: {e}"))?;
    if uid != 0 && keep_any {
        rustix::thread::set_keep_capabilities(false).map_err(|e| format!("prctl(PR_SET_KEEPCAPS): {e}"))?;
    }
    // Inheritable too as given (Docker: empty; CVE-2022-29162: an inheritable capability lets a
    // program with file capabilities gain it across exec, even as a non-root user).
    let sets = rustix::thread::CapabilitySets {
        effective: caps.effective & held,
        permitted: caps.permitted & held,
        // The kernel takes no inheritable capability outside the bounding set cut above.
        inheritable: caps.inheritable & held & caps.bounding,
    };
    rustix::thread::set_capabilities(None, sets).map_err(|e| format!("capset: {e}"))?;
    for (bit, name) in CAP_NAMES.iter().enumerate() {
        let cap = CapabilitySet::from_bits_retain(1 << bit);
        if caps.ambient.contains(cap) && (sets.permitted & sets.inheritable).contains(cap) {
            rustix::thread::configure_capability_in_ambient_set(cap, true)
                .map_err(|e| format!("raise ambient capability {name}: {e}"))?;
        }
    }
    Ok(())
}

/// Compiles the config's seccomp profile (before clone).
pub fn compile_seccomp(profile: &crate::seccomp::Profile) -> Result<Filter, String> {
    let filter = profile.compile().map_err(|e| format!("linux.seccomp: {e}"))?;
    log::debug!("seccomp filter: {} instructions", filter.instructions().len());
    Ok(filter)
}

/// Installs `filter` on the calling thread. It does not set no_new_privs: while the process still
/// has CAP_SYS_ADMIN the kernel takes the filter without it.
pub fn install_seccomp(filter: &Filter) -> Result<(), String> {
    filter.install().map_err(|e| format!("install seccomp filter: {e}"))
}
