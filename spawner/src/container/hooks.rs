//! OCI hooks: programs run at points of a container's life, each given the container's state (the
//! JSON `runc state` prints, with the status of that moment) on its stdin. Where each list runs:
//!
//! - `prestart`, `createRuntime`: by `create`, in spawner's namespaces, once the container's mounts
//!   are made and before it pivots into its root (the container's process waits meanwhile);
//! - `createContainer`: by the container's process itself, in its namespaces, at that same point;
//! - `startContainer`: by the container's process, after `start`, right before exec (with the
//!   process's credentials and filter, as runc);
//! - `poststart`: by `start`, once the process runs; `poststop`: by `delete`.
//!
//! A hook runs with its own args and env only; its stdout and stderr are kept (the last few KiB)
//! for the error when it fails. It is done when it exits, not when its output closes: a hook that
//! leaves a daemon behind holding the pipe does not hang the container.

use crate::spec::Hook;
use rustix::fd::{AsFd, OwnedFd};
use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How much of a failing hook's output the error keeps.
const KEPT_OUTPUT: usize = 2048;

/// What the state hooks read says of the container beside its status and pid.
#[derive(Clone, Copy)]
pub struct Identity<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub annotations: &'a BTreeMap<String, String>,
}

impl Identity<'_> {
    /// The container's state as hooks read it on stdin (the spec's state, as `runc state` gives
    /// it).
    pub fn state(&self, status: &str, pid: Option<i32>) -> String {
        let mut state = serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": status,
            "bundle": self.bundle,
        });
        if let Some(pid) = pid {
            state["pid"] = pid.into();
        }
        if !self.annotations.is_empty() {
            state["annotations"] = serde_json::json!(self.annotations);
        }
        state.to_string()
    }
}

/// Runs `hooks` in order, each with `state` on its stdin; the first failure stops the list and is
/// returned, naming the list (`stage`), the hook and why.
pub fn run(stage: &str, hooks: &[Hook], state: &str) -> Result<(), String> {
    for (i, hook) in hooks.iter().enumerate() {
        run_one(hook, state).map_err(|e| format!("{stage} hook #{i} ({}): {e}", hook.path.display()))?;
    }
    Ok(())
}

/// Runs the list and logs a failure as a warning instead (`poststart`, `poststop`: the spec has the
/// lifecycle go on). Returns whether every hook succeeded.
pub fn run_warning(stage: &str, hooks: &[Hook], state: &str) -> bool {
    for (i, hook) in hooks.iter().enumerate() {
        if let Err(e) = run_one(hook, state) {
            log::warn!("{stage} hook #{i} ({}): {e}", hook.path.display());
            return false;
        }
    }
    true
}

fn run_one(hook: &Hook, state: &str) -> Result<(), String> {
    let (out_read, out_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let err_write = out_write.try_clone().map_err(|e| format!("dup: {e}"))?;
    let mut command = Command::new(&hook.path);
    match hook.args.split_first() {
        Some((argv0, rest)) => command.arg0(argv0).args(rest),
        None => &mut command,
    };
    command
        .env_clear()
        .envs(hook.env.iter().filter_map(|e| e.split_once('=')))
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out_write))
        .stderr(Stdio::from(err_write));
    let mut child = command.spawn().map_err(|e| e.to_string())?;
    // Dropped with `command`'s handles: only the hook holds the write end now.
    drop(command);
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its state is fine: EPIPE here is not an error.
        let _ = std::io::Write::write_all(&mut stdin, state.as_bytes());
    }
    let deadline = hook.timeout.map(|s| Instant::now() + Duration::from_secs(u64::from(s)));
    let output = match wait_collecting(&mut child, out_read, deadline)? {
        Waited::Exited(output) => output,
        Waited::TimedOut => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {} s", hook.timeout.unwrap_or(0)));
        }
    };
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let why = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (_, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    };
    let output = String::from_utf8_lossy(&output);
    let output = output.trim();
    match output.is_empty() {
        true => Err(why),
        false => Err(format!("{why}: {}", output.replace('\n', "; "))),
    }
}

enum Waited {
    /// The hook exited; what it wrote (its last [`KEPT_OUTPUT`] bytes).
    Exited(Vec<u8>),
    TimedOut,
}

/// Reads the hook's output until it exits (its pidfd turns readable) or the deadline passes.
fn wait_collecting(
    child: &mut std::process::Child,
    output: OwnedFd,
    deadline: Option<Instant>,
) -> Result<Waited, String> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let pid = rustix::process::Pid::from_raw(child.id() as i32).ok_or("the hook has no pid")?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| format!("pidfd_open: {e}"))?;
    let mut kept = Vec::new();
    let mut output_open = true;
    let mut buf = [0u8; 4096];
    loop {
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Waited::TimedOut);
                }
                Some(Timespec { tv_sec: left.as_secs() as i64, tv_nsec: i64::from(left.subsec_nanos()) })
            }
            None => None,
        };
        let mut fds = vec![PollFd::new(&pidfd, PollFlags::IN)];
        if output_open {
            fds.push(PollFd::new(&output, PollFlags::IN));
        }
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let exited = !fds[0].revents().is_empty();
        let readable = fds.get(1).is_some_and(|f| !f.revents().is_empty());
        drop(fds);
        if readable || exited {
            // Once it has exited, what is left in the pipe is read without waiting for writers a
            // daemon of the hook may still hold.
            if exited {
                rustix::io::ioctl_fionbio(&output, true).map_err(|e| format!("ioctl(FIONBIO): {e}"))?;
            }
            while output_open {
                match rustix::io::read(output.as_fd(), &mut buf) {
                    Ok(0) => output_open = false,
                    Ok(n) => {
                        kept.extend_from_slice(&buf[..n]);
                        if kept.len() > KEPT_OUTPUT {
                            kept.drain(..kept.len() - KEPT_OUTPUT);
                        }
                        if !exited {
                            break;
                        }
                    }
                    Err(rustix::io::Errno::INTR) => {}
                    Err(_) => break,
                }
            }
        }
        if exited {
            return Ok(Waited::Exited(kept));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(script: &str, timeout: Option<u32>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["HOOK_ENV=yes".into()],
            timeout,
        }
    }

    #[test]
    fn state_has_the_spec_fields() {
        let annotations = BTreeMap::from([("a".to_string(), "b".to_string())]);
        let identity =
            Identity { oci_version: "1.2.0", id: "c1", bundle: Path::new("/b"), annotations: &annotations };
        let state: serde_json::Value = serde_json::from_str(&identity.state("creating", Some(42))).unwrap();
        assert_eq!(state["id"], "c1");
        assert_eq!(state["status"], "creating");
        assert_eq!(state["pid"], 42);
        assert_eq!(state["bundle"], "/b");
        assert_eq!(state["annotations"]["a"], "b");
        assert_eq!(state["ociVersion"], "1.2.0");
    }

    #[test]
    fn a_hook_reads_the_state_and_sees_only_its_env() {
        let out = std::env::temp_dir().join(format!("spawner-hook-test-{}", std::process::id()));
        let script = format!("cat > {0}; echo \" $HOOK_ENV ${{HOME:-nohome}}\" >> {0}", out.display());
        run("prestart", &[hook(&script, None)], "{\"id\":\"x\"}").unwrap();
        let written = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        assert_eq!(written, "{\"id\":\"x\"} yes nohome\n");
    }

    #[test]
    fn a_failing_hook_is_named_with_its_status_and_output() {
        let e = run("createRuntime", &[hook("true", None), hook("echo broken >&2; exit 3", None)], "{}")
            .unwrap_err();
        assert_eq!(e, "createRuntime hook #1 (/bin/sh): exit status 3: broken");
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed() {
        let start = Instant::now();
        let e = run("prestart", &[hook("exec sleep 30", Some(1))], "{}").unwrap_err();
        assert_eq!(e, "prestart hook #0 (/bin/sh): timed out after 1 s");
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_daemon_left_behind_does_not_hold_the_hook() {
        let start = Instant::now();
        run("poststart", &[hook("sleep 5 & exit 0", None)], "{}").unwrap();
        assert!(start.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn a_missing_hook_says_so() {
        let missing = Hook { path: "/nonexistent/hook".into(), args: vec![], env: vec![], timeout: None };
        let e = run("poststop", &[missing], "{}").unwrap_err();
        assert!(e.starts_with("poststop hook #0 (/nonexistent/hook): No such file"), "{e}");
    }
}
