//! Docker's defences, on by default: capabilities cut to Docker's default set, no_new_privs,
//! Docker's default seccomp profile (or the one `--security-opt seccomp=FILE` gives), and its
//! masked and read-only /proc and /sys paths. `--privileged`, `--cap-add/--cap-drop` and
//! `--security-opt` change them, as in Docker. What they become is part of the container's config.

use crate::container::security::{all_capabilities, parse_capability};
use crate::seccomp::docker::{self, ProfileTemplate};
use crate::seccomp::{KernelVersion, Profile};
use rustix::thread::CapabilitySet;
use std::path::PathBuf;

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
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
pub const READONLY_PATHS: [&str; 5] =
    ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    pub capabilities: CapabilitySet,
    pub no_new_privs: bool,
    pub seccomp: Seccomp,
    pub mask_paths: bool,
    /// `--privileged` (which also means: no device rules).
    pub privileged: bool,
}

/// The container's seccomp profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seccomp {
    /// Docker's default profile.
    DockerDefault,
    /// No filter (`seccomp=unconfined`, `--privileged`).
    Unconfined,
    /// `seccomp=FILE`, read and checked when the options were (still to be resolved for the
    /// container's capabilities and the kernel).
    File { path: PathBuf, profile: ProfileTemplate },
}

impl Seccomp {
    /// `seccomp=FILE`: reads and checks the profile now, so that a bad file fails before anything
    /// of the container exists.
    fn from_file(path: &str) -> Result<Seccomp, String> {
        let fail = |e: &dyn std::fmt::Display| format!("seccomp profile {path}: {e}");
        let text = std::fs::read_to_string(path).map_err(|e| fail(&e))?;
        let profile = crate::seccomp::json::parse(&text).map_err(|e| fail(&e))?;
        Ok(Seccomp::File { path: path.into(), profile })
    }
}

impl Default for Security {
    fn default() -> Self {
        Security {
            capabilities: DOCKER_DEFAULT
                .iter()
                .map(|n| parse_capability(n).unwrap())
                .fold(CapabilitySet::empty(), |a, b| a | b),
            no_new_privs: true,
            seccomp: Seccomp::DockerDefault,
            mask_paths: true,
            privileged: false,
        }
    }
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
                seccomp: Seccomp::Unconfined,
                mask_paths: false,
                privileged: true,
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
            let (key, value) = opt.split_once(['=', ':']).unwrap_or((opt, ""));
            match (key, value) {
                ("seccomp", "unconfined") => s.seccomp = Seccomp::Unconfined,
                ("seccomp", path) if !path.is_empty() => s.seccomp = Seccomp::from_file(path)?,
                ("no-new-privileges", "" | "true") => s.no_new_privs = true,
                ("no-new-privileges", "false") => s.no_new_privs = false,
                _ => {
                    return Err(format!(
                        "unsupported --security-opt {opt:?} (supported: seccomp=unconfined|FILE, \
                         no-new-privileges=true|false)"
                    ))
                }
            }
        }
        // As in Docker, --privileged runs without a filter whatever the options say.
        if privileged {
            s.seccomp = Seccomp::Unconfined;
        }
        Ok(s)
    }
}

/// The seccomp profile for `sec`, resolved for the container's final capabilities (the bounding set
/// it gets) and the running kernel. None when unconfined.
pub fn seccomp_profile(sec: &Security) -> Result<Option<Profile>, String> {
    let template = match &sec.seccomp {
        Seccomp::Unconfined => return Ok(None),
        Seccomp::DockerDefault => None,
        Seccomp::File { profile, .. } => Some(profile),
    };
    let kernel = KernelVersion::running().map_err(|e| format!("seccomp: {e}"))?;
    Ok(Some(match template {
        None => docker::default_profile(sec.capabilities, kernel),
        Some(template) => template.resolve(sec.capabilities, kernel),
    }))
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
        assert!(s.capabilities.is_empty() && s.seccomp == Seccomp::Unconfined && !s.no_new_privs);
        let s = Security::from_options(true, &[], &[], &[]).unwrap();
        assert!(s.capabilities.contains(CapabilitySet::SYS_ADMIN) && !s.mask_paths && s.privileged);
        assert!(Security::from_options(false, &["NOPE".into()], &[], &[]).is_err());
        assert!(Security::from_options(false, &[], &[], &["apparmor=x".into()]).is_err());
    }

    /// The filter the container core would compile from the profile.
    fn seccomp_filter(sec: &Security) -> Result<Option<crate::seccomp::Filter>, String> {
        seccomp_profile(sec)?.map(|p| crate::container::security::compile_seccomp(&p)).transpose()
    }

    #[test]
    fn seccomp_options() {
        let opts = |o: &[&str]| {
            Security::from_options(false, &[], &[], &o.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(opts(&[]).unwrap().seccomp, Seccomp::DockerDefault);
        assert_eq!(opts(&["seccomp:unconfined"]).unwrap().seccomp, Seccomp::Unconfined);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.json");
        let profile = r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]}"#;
        std::fs::write(&path, profile).unwrap();
        let s = opts(&[&format!("seccomp={}", path.display())]).unwrap();
        assert!(matches!(&s.seccomp, Seccomp::File { path: p, .. } if *p == path));
        let filter = seccomp_filter(&s).unwrap().unwrap();
        assert!(!filter.instructions().is_empty());
        // --privileged wins over a profile, as in Docker.
        let p = Security::from_options(true, &[], &[], &[format!("seccomp={}", path.display())]).unwrap();
        assert_eq!(p.seccomp, Seccomp::Unconfined);
        assert_eq!(seccomp_filter(&p).unwrap(), None);
        // A bad file fails when the options are read, naming the file and the problem.
        std::fs::write(&path, r#"{"defaultAction": "SCMP_ACT_ERRNO", "sycalls": []}"#).unwrap();
        let err = opts(&[&format!("seccomp={}", path.display())]).unwrap_err();
        assert!(
            err.starts_with(&format!("seccomp profile {}: unknown field `sycalls`", path.display())),
            "{err}"
        );
        let err = opts(&["seccomp=/nonexistent/profile.json"]).unwrap_err();
        assert!(err.starts_with("seccomp profile /nonexistent/profile.json: "), "{err}");
        assert!(opts(&["seccomp="]).is_err());
    }

    #[test]
    fn the_default_filter_follows_the_final_capabilities() {
        let data = |name: &str, arg0| crate::seccomp::bpf::interpreter::SeccompData {
            nr: crate::seccomp::syscalls::number(name).unwrap(),
            arch: crate::seccomp::native::AUDIT_ARCH,
            args: [arg0, 0, 0, 0, 0, 0],
            ..Default::default()
        };
        let ret = |s: &Security, name, arg0| {
            let filter = seccomp_filter(s).unwrap().unwrap();
            crate::seccomp::bpf::interpreter::run(filter.instructions(), &data(name, arg0)).0
        };
        let allow = crate::seccomp::Action::Allow.ret();
        let plain = Security::default();
        assert_ne!(ret(&plain, "mount", 0), allow);
        let admin = Security::from_options(false, &["SYS_ADMIN".into()], &[], &[]).unwrap();
        assert_eq!(ret(&admin, "mount", 0), allow);
        // Dropped by --cap-drop: the filter follows.
        let no_chroot = Security::from_options(false, &[], &["SYS_CHROOT".into()], &[]).unwrap();
        assert_eq!(ret(&plain, "chroot", 0), allow);
        assert_ne!(ret(&no_chroot, "chroot", 0), allow);
    }
}
