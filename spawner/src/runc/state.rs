//! A container's state between runc commands: `ROOT/ID/state.json` (what `create` learned: the
//! process, its start time, the bundle, the cgroup, the hooks to run at delete) and `ROOT/ID/exec.fifo`
//! (present until `start`). Each command reads it again; the status is never stored, it is worked out
//! from the process (its pid and its start time, so that a recycled pid is never taken for it), the
//! FIFO and the cgroup's freezer.

use super::RuncError;
use crate::cgroup::CgroupLocation;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Saved {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    /// Field 22 of /proc/PID/stat when the process was made.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// None when the container has no cgroup of its own (`--cgroup-manager disabled`).
    pub cgroup: Option<CgroupLocation>,
    /// The config's `poststart` hooks, which `start` runs.
    #[serde(default)]
    pub poststart: Vec<crate::spec::Hook>,
    /// The config's `poststop` hooks, which `delete` runs.
    #[serde(default)]
    pub poststop: Vec<crate::spec::Hook>,
}

/// runc's status names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The state directory of one container.
pub struct ContainerState {
    pub dir: PathBuf,
    pub saved: Saved,
}

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// runc's rule for IDs: letters, digits, `_`, `+`, `-`, `.`, not `.` or `..`.
pub fn check_id(id: &str) -> Result<(), RuncError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(RuncError::InvalidId(id.to_string()))
    }
}

impl ContainerState {
    /// Reads `ROOT/ID/state.json`; `container does not exist` (runc's words, which engines match)
    /// when there is none.
    pub fn load(root: &Path, id: &str) -> Result<ContainerState, RuncError> {
        check_id(id)?;
        let dir = root.join(id);
        let text = match std::fs::read(dir.join(STATE_FILE)) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(RuncError::NotExist),
            Err(e) => return Err(RuncError::io(format!("read {}", dir.join(STATE_FILE).display()))(e)),
        };
        let saved = serde_json::from_slice(&text)
            .map_err(RuncError::io(format!("parse {}", dir.join(STATE_FILE).display())))?;
        Ok(ContainerState { dir, saved })
    }

    /// Writes `state.json` atomically (a temporary file renamed over it).
    pub fn store(&self) -> Result<(), RuncError> {
        let tmp = self.dir.join(".state.json.tmp");
        let json = serde_json::to_vec(&self.saved).map_err(RuncError::io("state.json"))?;
        std::fs::write(&tmp, json).map_err(RuncError::io(format!("write {}", tmp.display())))?;
        std::fs::rename(&tmp, self.dir.join(STATE_FILE))
            .map_err(RuncError::io(format!("rename {}", tmp.display())))
    }

    /// Whether the process `create` made is still the one at its pid, and has not exited: a
    /// zombie its parent has yet to reap is stopped, as runc counts it.
    pub fn alive(&self) -> bool {
        self.saved.pid > 0
            && matches!(stat(self.saved.pid), Some((state, start)) if start == self.saved.start_time && !matches!(state, 'Z' | 'X'))
    }

    pub fn status(&self) -> Status {
        if !self.alive() {
            return Status::Stopped;
        }
        if self.dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        let frozen =
            self.saved.cgroup.as_ref().is_some_and(|l| {
                crate::cgroup::Cgroup::reopen(l).and_then(|c| c.is_frozen()).unwrap_or(false)
            });
        if frozen {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// What the hooks' state says of the container.
    pub fn hook_identity(&self) -> crate::container::hooks::Identity<'_> {
        crate::container::hooks::Identity {
            oci_version: &self.saved.oci_version,
            id: &self.saved.id,
            bundle: &self.saved.bundle,
            annotations: &self.saved.annotations,
        }
    }

    /// The OCI state as runc prints it (`pid` 0 once stopped).
    pub fn oci_state(&self) -> serde_json::Value {
        let status = self.status();
        let mut state = serde_json::json!({
            "ociVersion": self.saved.oci_version,
            "id": self.saved.id,
            "pid": if status == Status::Stopped { 0 } else { self.saved.pid },
            "status": status.name(),
            "bundle": self.saved.bundle,
            "rootfs": self.saved.rootfs,
            "created": self.saved.created,
            "owner": self.saved.owner,
        });
        if !self.saved.annotations.is_empty() {
            state["annotations"] = serde_json::json!(self.saved.annotations);
        }
        state
    }
}

/// Field 22 of /proc/PID/stat (the start time in clock ticks since boot).
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// Fields 3 (the state: `R`, `S`, `Z`…) and 22 (the start time) of /proc/PID/stat.
fn stat(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let mut rest = stat[stat.rfind(')')? + 2..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.nth(18)?.parse().ok()?))
}

pub use crate::clock::now_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_as_runc_takes_them() {
        for ok in ["abc", "a-b_c.d+e", "0123456789abcdef"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ä"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn start_time_of_this_process() {
        let mine = start_time(std::process::id() as i32).unwrap();
        assert!(mine > 0);
        assert_eq!(start_time(i32::MAX), None);
    }
}
