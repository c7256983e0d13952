//! `--network pasta`: user-mode networking by passt's pasta, with no bridge, no firewall rule and
//! no change to the host's network. The container's namespace gets a copy of the host's addresses
//! and routes; pasta carries its traffic through sockets of the host, and `-p` ports as its `-t`
//! and `-u` forwards. Only published ports are forwarded (pasta's own default forwards every port
//! the container binds).
//!
//! pasta runs in the foreground as spawner's child, killed when the container exits and, by the
//! parent-death signal, when spawner dies. It is given the namespace as a file: a bind mount of
//! spawner's fd onto `netns` in the container's directory, made in a mount namespace of pasta's
//! own (so it is gone with pasta). As root, this build of pasta needs `--runas 0 --netns-only`.

use super::{NetworkError, Publish};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running pasta; stopped when dropped.
pub struct Pasta {
    child: Child,
}

impl Drop for Pasta {
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let _ = self.child.wait();
    }
}

/// pasta's forwarding options for `publish`: none but those.
fn forwards(publish: &[Publish]) -> Vec<String> {
    let mut args = Vec::new();
    for (flag, protocol) in [("-t", super::Protocol::Tcp), ("-u", super::Protocol::Udp)] {
        let specs: Vec<String> = publish
            .iter()
            .filter(|p| p.protocol == protocol)
            .map(|p| {
                let host = match p.host_ip {
                    Some(ip) => format!("{ip}/{}", p.host_port),
                    None => p.host_port.to_string(),
                };
                format!("{host}:{}", p.container_port)
            })
            .collect();
        args.push(flag.to_string());
        args.push(if specs.is_empty() { "none".into() } else { specs.join(",") });
    }
    // Nor ports of the host's loopback into the container.
    args.extend(["-T", "none", "-U", "none"].map(String::from));
    args
}

/// Starts pasta on the namespace `netns`; returns once pasta has configured it (its pid file is
/// written after its set-up). `dir` is the container's directory.
pub fn start(netns: BorrowedFd<'_>, dir: &Path, publish: &[Publish]) -> Result<Pasta, NetworkError> {
    if publish.iter().any(|p| p.host_port == 0) {
        return Err(NetworkError("-p: pasta needs a host port for each published port".into()));
    }
    let target = dir.join("netns");
    let pid_file = dir.join("pasta.pid");
    std::fs::write(&target, "").map_err(|e| NetworkError(format!("create {}: {e}", target.display())))?;
    let _ = std::fs::remove_file(&pid_file);
    let log_path = dir.join("pasta.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| NetworkError(format!("create {}: {e}", log_path.display())))?;
    let mut cmd = Command::new("pasta");
    cmd.args(["--foreground", "--quiet", "--runas", "0", "--netns-only", "--config-net"])
        .args(forwards(publish))
        .arg("--pid")
        .arg(&pid_file)
        .arg("--netns")
        .arg(&target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let fd = netns.as_fd().as_raw_fd();
    let source = CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL");
    let target_c = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| NetworkError(format!("{}: a path with a NUL byte", target.display())))?;
    // SAFETY: the closure runs in the forked child before exec and makes only raw syscalls
    // (prctl, unshare, mount) on C strings made before the fork: no allocation, no lock.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS)?;
            rustix::mount::mount_change(
                c"/",
                rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
            )?;
            rustix::mount::mount_bind(source.as_c_str(), target_c.as_c_str())?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            NetworkError("--network pasta: pasta is not installed (Debian's passt)".into())
        }
        _ => NetworkError(format!("--network pasta: start pasta: {e}")),
    })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if std::fs::metadata(&pid_file).is_ok_and(|m| m.len() > 0) {
            return Ok(Pasta { child });
        }
        if let Ok(Some(status)) = child.try_wait() {
            let err = std::fs::read_to_string(&log_path).unwrap_or_default();
            let why = err.lines().find(|l| !l.contains("syslog")).unwrap_or("").to_string();
            return Err(NetworkError(format!("--network pasta: pasta exited ({status}): {why}")));
        }
        if Instant::now() > deadline {
            let pasta = Pasta { child };
            drop(pasta);
            return Err(NetworkError("--network pasta: pasta did not set up the namespace in 10 s".into()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_published_ports_are_forwarded() {
        assert_eq!(forwards(&[]).join(" "), "-t none -u none -T none -U none");
        let p = |s: &str| Publish::parse(s).unwrap();
        let args = forwards(&[p("8080:80"), p("127.0.0.1:5353:53/udp"), p("8443:443")]);
        assert_eq!(args.join(" "), "-t 8080:80,8443:443 -u 127.0.0.1/5353:53 -T none -U none");
    }
}
