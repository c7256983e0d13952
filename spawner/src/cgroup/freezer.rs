//! Freezing a container's processes (runc's `pause` and `resume`), on one cgroup directory: v2
//! `cgroup.freeze` with `cgroup.events` telling when every process has stopped, v1
//! `freezer.state`.
//!
//! Freezing is not instant: the kernel stops each task when it next leaves the kernel, so both
//! versions wait, bounded, for the cgroup to report itself frozen, and thaw it again if it does
//! not (a cgroup left half-frozen would hang whoever touches its processes).

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{files, keyed_value, Error, Result};

/// How long a freeze may take before it is given up (runc waits as long, on both versions).
pub(crate) const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// A cgroup's freezer state, as runc's `state` reports it ("paused" when frozen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezerState {
    Thawed,
    /// Asked to freeze, and some processes are still running.
    Freezing,
    Frozen,
}

/// Write 1 to `cgroup.freeze` and wait until `cgroup.events` says `frozen 1`.
pub(crate) fn freeze_v2(dir: &Path, timeout: Duration) -> Result<()> {
    let freeze = dir.join("cgroup.freeze");
    if !freeze.exists() {
        return Err(Error::Unavailable(format!(
            "freezing needs cgroup.freeze (Linux 5.2 or later), and {} has none",
            dir.display()
        )));
    }
    files::write(&freeze, "1")?;
    let events = dir.join("cgroup.events");
    let frozen = wait_for(timeout, || Ok(events_frozen(&events)? == Some(1)));
    match frozen {
        Ok(true) => Ok(()),
        Ok(false) => {
            thaw_after_failed_freeze(&freeze, "0");
            Err(Error::Timeout {
                op: "freeze",
                path: events,
                what: format!("not frozen after {timeout:?}; thawed again"),
            })
        }
        Err(e) => {
            thaw_after_failed_freeze(&freeze, "0");
            Err(e)
        }
    }
}

pub(crate) fn thaw_v2(dir: &Path) -> Result<()> {
    files::write(&dir.join("cgroup.freeze"), "0")
}

/// Frozen when we asked for it (`cgroup.freeze` is 1) and the kernel says it is done; a cgroup
/// frozen only through an ancestor was not paused by us and counts as thawed, as in runc.
pub(crate) fn state_v2(dir: &Path) -> Result<FreezerState> {
    let freeze = dir.join("cgroup.freeze");
    let asked = match std::fs::read_to_string(&freeze) {
        Ok(text) => text.trim() == "1",
        // A kernel without the v2 freezer cannot have frozen it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::io("read", freeze, e)),
    };
    if !asked {
        return Ok(FreezerState::Thawed);
    }
    let events = dir.join("cgroup.events");
    Ok(match events_frozen(&events)? {
        Some(1) => FreezerState::Frozen,
        _ => FreezerState::Freezing,
    })
}

fn events_frozen(events: &Path) -> Result<Option<u64>> {
    let text = files::read(events)?;
    match keyed_value(&text, "frozen") {
        Some(v) => Ok(Some(v)),
        None => Err(Error::Parse { path: events.to_path_buf(), what: "no frozen line".into() }),
    }
}

/// runc's experience with the v1 freezer: while processes keep appearing (forks, joins) it can
/// stay in FREEZING; thawing now and then and trying again gets it through.
const V1_THAW_EVERY: u32 = 50;

/// Write FROZEN to `freezer.state` until it reads FROZEN (it may say FREEZING for a while).
pub(crate) fn freeze_v1(dir: &Path, timeout: Duration) -> Result<()> {
    let state = dir.join("freezer.state");
    let mut attempt = 0u32;
    let frozen = wait_for(timeout, || {
        attempt += 1;
        if attempt.is_multiple_of(V1_THAW_EVERY) {
            files::write(&state, "THAWED")?;
            sleep(Duration::from_millis(10));
        }
        files::write(&state, "FROZEN")?;
        let now = files::read(&state)?;
        match now.trim() {
            "FROZEN" => Ok(true),
            "FREEZING" => Ok(false),
            other => Err(Error::Parse { path: state.clone(), what: format!("unexpected state {other:?}") }),
        }
    });
    match frozen {
        Ok(true) => Ok(()),
        Ok(false) => {
            thaw_after_failed_freeze(&state, "THAWED");
            Err(Error::Timeout {
                op: "freeze",
                path: state,
                what: format!("still FREEZING after {timeout:?}; thawed again"),
            })
        }
        Err(e) => {
            thaw_after_failed_freeze(&state, "THAWED");
            Err(e)
        }
    }
}

pub(crate) fn thaw_v1(dir: &Path) -> Result<()> {
    files::write(&dir.join("freezer.state"), "THAWED")
}

/// `freezer.state`, with runc's reading of FROZEN: paused by us only if `freezer.self_freezing`
/// says this cgroup itself was frozen (not just an ancestor).
pub(crate) fn state_v1(dir: &Path) -> Result<FreezerState> {
    let path = dir.join("freezer.state");
    let text = files::read(&path)?;
    match text.trim() {
        "THAWED" => Ok(FreezerState::Thawed),
        "FREEZING" => Ok(FreezerState::Freezing),
        "FROZEN" => match std::fs::read_to_string(dir.join("freezer.self_freezing")) {
            Ok(s) if s.trim() == "0" => Ok(FreezerState::Thawed),
            // Kernels before 3.13 have no self_freezing: frozen is frozen.
            _ => Ok(FreezerState::Frozen),
        },
        other => Err(Error::Parse { path, what: format!("unknown freezer state {other:?}") }),
    }
}

fn thaw_after_failed_freeze(file: &Path, thawed: &str) {
    if let Err(e) = files::write(file, thawed) {
        log::warn!("thawing after a failed freeze: {e}");
    }
}

/// Poll `done` until it says true or `timeout` passes (then false). Quick polls first: a cgroup
/// of a few idle processes freezes within a millisecond.
fn wait_for(timeout: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
    let start = Instant::now();
    let mut round = 0u32;
    loop {
        if done()? {
            return Ok(true);
        }
        if start.elapsed() >= timeout {
            return Ok(false);
        }
        sleep(Duration::from_millis(if round < 10 { 1 } else { 10 }));
        round += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_cgroup(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn contents(dir: &Path, file: &str) -> String {
        std::fs::read_to_string(dir.join(file)).unwrap()
    }

    #[test]
    fn v2_freeze_waits_for_the_kernel_and_thaws_on_timeout() {
        let done = fake_cgroup(&[("cgroup.freeze", "0\n"), ("cgroup.events", "populated 1\nfrozen 1\n")]);
        freeze_v2(done.path(), Duration::from_millis(50)).unwrap();
        assert_eq!(contents(done.path(), "cgroup.freeze"), "1\n");
        assert_eq!(state_v2(done.path()).unwrap(), FreezerState::Frozen);
        thaw_v2(done.path()).unwrap();
        assert_eq!(contents(done.path(), "cgroup.freeze"), "0\n");
        assert_eq!(state_v2(done.path()).unwrap(), FreezerState::Thawed);

        let stuck = fake_cgroup(&[("cgroup.freeze", "0"), ("cgroup.events", "populated 1\nfrozen 0\n")]);
        let err = freeze_v2(stuck.path(), Duration::from_millis(30)).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "cgroup: freeze {}: not frozen after 30ms; thawed again",
                stuck.path().join("cgroup.events").display()
            )
        );
        assert_eq!(contents(stuck.path(), "cgroup.freeze"), "0");

        let old_kernel = fake_cgroup(&[("cgroup.events", "populated 1\n")]);
        assert!(matches!(freeze_v2(old_kernel.path(), FREEZE_TIMEOUT), Err(Error::Unavailable(_))));
        assert_eq!(state_v2(old_kernel.path()).unwrap(), FreezerState::Thawed);
    }

    #[test]
    fn v2_state_while_freezing() {
        let dir = fake_cgroup(&[("cgroup.freeze", "1\n"), ("cgroup.events", "populated 1\nfrozen 0\n")]);
        assert_eq!(state_v2(dir.path()).unwrap(), FreezerState::Freezing);
    }

    #[test]
    fn v1_freeze_thaw_and_state() {
        let dir = fake_cgroup(&[("freezer.state", "THAWED\n"), ("freezer.self_freezing", "1\n")]);
        freeze_v1(dir.path(), Duration::from_millis(50)).unwrap();
        assert_eq!(contents(dir.path(), "freezer.state").trim(), "FROZEN");
        assert_eq!(state_v1(dir.path()).unwrap(), FreezerState::Frozen);
        thaw_v1(dir.path()).unwrap();
        assert_eq!(state_v1(dir.path()).unwrap(), FreezerState::Thawed);

        // Frozen through an ancestor only: not paused by us.
        let by_parent = fake_cgroup(&[("freezer.state", "FROZEN\n"), ("freezer.self_freezing", "0\n")]);
        assert_eq!(state_v1(by_parent.path()).unwrap(), FreezerState::Thawed);
        let freezing = fake_cgroup(&[("freezer.state", "FREEZING\n")]);
        assert_eq!(state_v1(freezing.path()).unwrap(), FreezerState::Freezing);
        let odd = fake_cgroup(&[("freezer.state", "MELTING\n")]);
        assert!(matches!(state_v1(odd.path()), Err(Error::Parse { .. })));
    }
}
