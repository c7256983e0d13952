//! A process's `rlimits` and `oomScoreAdj`. The process sets them on itself during its setup; in a
//! user namespace of its own it could neither raise a hard limit nor lower its score (both need
//! privilege over the host's namespace), so spawner sets them on it instead, from outside, while it
//! waits for the go byte (runc does the same from its parent).

use crate::spec::{Process, Rlimit};
use rustix::process::Pid;

/// Sets the limits and OOM score of `pid` (None: the calling process). With our init as PID 1
/// (`init`), init is shielded instead (-1000) so that it outlives an OOM kill in the container to
/// report it; it gives its own child the neutral score again. That needs CAP_SYS_RESOURCE, which not
/// every host's bounding set has: init then takes its chances.
pub fn apply(pid: Option<Pid>, process: &Process, init: bool) -> Result<(), String> {
    set_oom_score_adj(pid, process, init)?;
    for limit in &process.rlimits {
        set_rlimit(pid, limit)?;
    }
    Ok(())
}

fn set_oom_score_adj(pid: Option<Pid>, process: &Process, init: bool) -> Result<(), String> {
    let value = match (init, process.oom_score_adj) {
        (true, _) => -1000,
        (false, Some(v)) => v,
        (false, None) => return Ok(()),
    };
    let path = match pid {
        Some(pid) => format!("/proc/{}/oom_score_adj", pid.as_raw_nonzero()),
        None => "/proc/self/oom_score_adj".into(),
    };
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, value.to_string().as_bytes()));
    match (written, init) {
        (Ok(()), _) | (Err(_), true) => Ok(()),
        (Err(e), false) => Err(format!("write oom_score_adj {value}: {e}")),
    }
}

fn set_rlimit(pid: Option<Pid>, limit: &Rlimit) -> Result<(), String> {
    use rustix::process::{Resource, Rlimit};
    let resource = match limit.resource {
        0 => Resource::Cpu,
        1 => Resource::Fsize,
        2 => Resource::Data,
        3 => Resource::Stack,
        4 => Resource::Core,
        5 => Resource::Rss,
        6 => Resource::Nproc,
        7 => Resource::Nofile,
        8 => Resource::Memlock,
        9 => Resource::As,
        10 => Resource::Locks,
        11 => Resource::Sigpending,
        12 => Resource::Msgqueue,
        13 => Resource::Nice,
        14 => Resource::Rtprio,
        15 => Resource::Rttime,
        other => return Err(format!("setrlimit: unknown resource {other}")),
    };
    let value = |v: u64| (v != u64::MAX).then_some(v);
    let new = Rlimit { current: value(limit.soft), maximum: value(limit.hard) };
    let set = match pid {
        Some(pid) => rustix::process::prlimit(Some(pid), resource, new).map(drop),
        None => rustix::process::setrlimit(resource, new),
    };
    set.map_err(|e| format!("setrlimit {resource:?} to {}:{}: {e}", limit.soft, limit.hard))
}
