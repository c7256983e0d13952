//! `process`: what the container's first process runs as, with which capabilities and limits.

use super::checks;
use super::{Capabilities, Process, Rlimit, SpecError, User};
use crate::container::security::parse_capability;
use linux_raw_sys::general as sys;
use oci_spec::runtime as oci;
use rustix::thread::CapabilitySet;

pub(super) fn process(p: &oci::Process) -> Result<Process, SpecError> {
    // Fields spawner cannot apply yet: refused rather than ignored, since each changes how the
    // process runs.
    if p.io_priority().is_some() {
        return Err(SpecError::unsupported("process.ioPriority"));
    }
    if p.scheduler().is_some() {
        return Err(SpecError::unsupported("process.scheduler"));
    }
    if p.exec_cpu_affinity().is_some() {
        return Err(SpecError::unsupported("process.execCPUAffinity"));
    }
    if p.command_line().as_deref().is_some_and(|c| !c.is_empty()) {
        return Err(SpecError::invalid("process.commandLine", "Windows only: Linux takes process.args"));
    }
    let args = p.args().as_deref().unwrap_or_default();
    if args.is_empty() {
        return Err(SpecError::invalid("process.args", "required, with at least the program to run"));
    }
    let oom_score_adj = match p.oom_score_adj() {
        Some(adj) if !(-1000..=1000).contains(&adj) => {
            return Err(SpecError::invalid("process.oomScoreAdj", format!("{adj} is outside -1000..1000")))
        }
        adj => adj,
    };
    Ok(Process {
        args: checks::args("process.args", args)?,
        env: checks::env("process.env", p.env().as_deref().unwrap_or_default())?,
        cwd: checks::absolute("process.cwd", p.cwd())?,
        user: user(p.user())?,
        terminal: p.terminal().unwrap_or(false),
        console_size: console_size(p.console_size())?,
        capabilities: capabilities(p.capabilities().as_ref())?,
        rlimits: rlimits(p.rlimits().as_deref().unwrap_or_default())?,
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        oom_score_adj,
        apparmor_profile: label("process.apparmorProfile", p.apparmor_profile())?,
        selinux_label: label("process.selinuxLabel", p.selinux_label())?,
    })
}

fn user(u: &oci::User) -> Result<User, SpecError> {
    if u.username().as_deref().is_some_and(|n| !n.is_empty()) {
        return Err(SpecError::invalid("process.user.username", "Windows only: Linux takes uid and gid"));
    }
    if let Some(umask) = u.umask().filter(|&m| m > 0o777) {
        return Err(SpecError::invalid(
            "process.user.umask",
            format!("{umask:#o} is not a umask (0 to 0o777)"),
        ));
    }
    Ok(User {
        uid: u.uid(),
        gid: u.gid(),
        umask: u.umask(),
        additional_gids: u.additional_gids().clone().unwrap_or_default(),
    })
}

/// `consoleSize`, as (rows, columns): the sizes a terminal's winsize holds.
fn console_size(size: Option<oci::Box>) -> Result<Option<(u16, u16)>, SpecError> {
    let Some(size) = size else { return Ok(None) };
    let dimension = |field: &str, value: u64| {
        u16::try_from(value).map_err(|_| {
            SpecError::invalid(format!("process.consoleSize.{field}"), format!("{value} is more than 65535"))
        })
    };
    Ok(Some((dimension("height", size.height())?, dimension("width", size.width())?)))
}

/// The five sets; an absent set, or absent `capabilities`, is empty.
fn capabilities(caps: Option<&oci::LinuxCapabilities>) -> Result<Capabilities, SpecError> {
    let Some(caps) = caps else { return Ok(Capabilities::default()) };
    let set = |name: &str, set: &Option<oci::Capabilities>| -> Result<CapabilitySet, SpecError> {
        set.iter().flatten().try_fold(CapabilitySet::empty(), |all, cap| {
            // oci-spec's names are the kernel's without `CAP_` (`SYS_ADMIN`); a capability it knows
            // and spawner's table does not would be silently lost, so it is refused.
            let name_of = cap.to_string();
            parse_capability(&name_of).map(|c| all | c).ok_or_else(|| {
                SpecError::invalid(
                    format!("process.capabilities.{name}"),
                    format!("CAP_{name_of} is not a capability spawner knows"),
                )
            })
        })
    };
    Ok(Capabilities {
        bounding: set("bounding", caps.bounding())?,
        effective: set("effective", caps.effective())?,
        inheritable: set("inheritable", caps.inheritable())?,
        permitted: set("permitted", caps.permitted())?,
        ambient: set("ambient", caps.ambient())?,
    })
}

/// `rlimits`: each resource at most once (the spec's MUST NOT), soft at most hard (setrlimit(2)
/// refuses anything else).
fn rlimits(limits: &[oci::PosixRlimit]) -> Result<Vec<Rlimit>, SpecError> {
    let mut out: Vec<Rlimit> = Vec::with_capacity(limits.len());
    for (i, limit) in limits.iter().enumerate() {
        let resource = resource(limit.typ());
        if let Some(first) = out.iter().position(|r| r.resource == resource) {
            return Err(SpecError::invalid(
                format!("process.rlimits[{i}].type"),
                format!("{} is given twice (also process.rlimits[{first}])", limit.typ()),
            ));
        }
        if limit.soft() > limit.hard() {
            return Err(SpecError::invalid(
                format!("process.rlimits[{i}]"),
                format!("{}: soft limit {} is above hard limit {}", limit.typ(), limit.soft(), limit.hard()),
            ));
        }
        out.push(Rlimit { resource, soft: limit.soft(), hard: limit.hard() });
    }
    Ok(out)
}

/// The RLIMIT_* number of a resource (linux/resource.h, through linux-raw-sys).
fn resource(kind: oci::PosixRlimitType) -> u32 {
    use oci::PosixRlimitType as T;
    match kind {
        T::RlimitCpu => sys::RLIMIT_CPU,
        T::RlimitFsize => sys::RLIMIT_FSIZE,
        T::RlimitData => sys::RLIMIT_DATA,
        T::RlimitStack => sys::RLIMIT_STACK,
        T::RlimitCore => sys::RLIMIT_CORE,
        T::RlimitRss => sys::RLIMIT_RSS,
        T::RlimitNproc => sys::RLIMIT_NPROC,
        T::RlimitNofile => sys::RLIMIT_NOFILE,
        T::RlimitMemlock => sys::RLIMIT_MEMLOCK,
        T::RlimitAs => sys::RLIMIT_AS,
        T::RlimitLocks => sys::RLIMIT_LOCKS,
        T::RlimitSigpending => sys::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => sys::RLIMIT_MSGQUEUE,
        T::RlimitNice => sys::RLIMIT_NICE,
        T::RlimitRtprio => sys::RLIMIT_RTPRIO,
        T::RlimitRttime => sys::RLIMIT_RTTIME,
    }
}

/// An LSM label: kept when given (the core refuses what it cannot apply), an empty one is none.
fn label(field: &str, value: &Option<String>) -> Result<Option<String>, SpecError> {
    match value.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => checks::no_nul(field, text).map(|()| Some(text.to_owned())),
    }
}
