//! Docker's `run` flags that become parts of the container's spec, parsed and checked with
//! Docker's rules before any work is done: `--env-file` and `--label-file` (KEY=VALUE files),
//! `--label`, `--ulimit`, `--sysctl`, `--tmpfs`, `--cpuset-cpus`/`--cpuset-mems`, and the
//! namespace modes of `--pid`, `--ipc` and `--uts`. Each error names the flag and what is wrong.

// The sysctls `--sysctl` takes (Docker's list) are the IPC namespace's (the spec's list, and
// `fs.mqueue.*`) and the network namespace's; anything else would change the host.
use crate::spec::IPC_SYSCTLS;
use crate::spec::{Mount, MountKind, Rlimit};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The entries of a Docker env or label file (`--env-file`, `--label-file`), as Docker reads them:
/// one `KEY=VALUE` or bare `KEY` a line (leading whitespace dropped, the value kept as written),
/// blank lines and `#` comments skipped. A bare `KEY` stays bare: for `--env-file` it is taken
/// from spawner's environment, as `-e KEY` is.
pub fn parse_kv_file(flag: &str, path: &Path, bytes: &[u8]) -> Result<Vec<String>, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut entries = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw)
            .map_err(|_| format!("{flag} {}: invalid UTF-8 bytes at line {}", path.display(), i + 1))?;
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line.trim_end(), None),
        };
        if key.is_empty() {
            return Err(format!("{flag} {}: no variable name on line {line:?}", path.display()));
        }
        if key.contains(char::is_whitespace) {
            return Err(format!("{flag} {}: variable {key:?} contains whitespace", path.display()));
        }
        entries.push(match value {
            Some(v) => format!("{key}={v}"),
            None => key.to_string(),
        });
    }
    Ok(entries)
}

/// Reads and parses the file of `--env-file` or `--label-file`.
pub fn read_kv_file(flag: &str, path: &Path) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    parse_kv_file(flag, path, &bytes)
}

/// `--label-file` entries then `--label`s (`KEY=VALUE`, or `KEY` for an empty value): later ones
/// win, as in Docker. A key must be non-empty and free of whitespace.
pub fn parse_labels(entries: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    for entry in entries {
        let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("--label {entry}: invalid label: empty name"));
        }
        if key.contains(char::is_whitespace) {
            return Err(format!("--label {entry}: label {key:?} contains whitespace"));
        }
        labels.insert(key.to_string(), value.to_string());
    }
    Ok(labels)
}

/// Docker's `--ulimit` names (go-units; `as` is left out there too).
const ULIMITS: [(&str, u32); 15] = {
    use linux_raw_sys::general as g;
    [
        ("core", g::RLIMIT_CORE),
        ("cpu", g::RLIMIT_CPU),
        ("data", g::RLIMIT_DATA),
        ("fsize", g::RLIMIT_FSIZE),
        ("locks", g::RLIMIT_LOCKS),
        ("memlock", g::RLIMIT_MEMLOCK),
        ("msgqueue", g::RLIMIT_MSGQUEUE),
        ("nice", g::RLIMIT_NICE),
        ("nofile", g::RLIMIT_NOFILE),
        ("nproc", g::RLIMIT_NPROC),
        ("rss", g::RLIMIT_RSS),
        ("rtprio", g::RLIMIT_RTPRIO),
        ("rttime", g::RLIMIT_RTTIME),
        ("sigpending", g::RLIMIT_SIGPENDING),
        ("stack", g::RLIMIT_STACK),
    ]
};

/// `--ulimit NAME=SOFT[:HARD]` (HARD defaults to SOFT; -1 is unlimited), Docker's names. Of
/// several for one resource the last counts, as in Docker.
pub fn parse_ulimits(args: &[String]) -> Result<Vec<Rlimit>, String> {
    let mut limits: Vec<Rlimit> = Vec::new();
    for arg in args {
        let limit = parse_ulimit(arg).map_err(|e| format!("--ulimit {arg}: {e}"))?;
        limits.retain(|l| l.resource != limit.resource);
        limits.push(limit);
    }
    Ok(limits)
}

fn parse_ulimit(arg: &str) -> Result<Rlimit, String> {
    let (name, values) = arg.split_once('=').ok_or("give NAME=SOFT[:HARD]")?;
    let resource = ULIMITS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r).ok_or_else(|| {
        let names: Vec<&str> = ULIMITS.iter().map(|(n, _)| *n).collect();
        format!("invalid ulimit type {name:?} (one of {})", names.join(", "))
    })?;
    let value = |v: &str| -> Result<u64, String> {
        match v.parse::<i64>() {
            Ok(-1) => Ok(u64::MAX),
            Ok(n) if n >= 0 => Ok(n as u64),
            _ => Err(format!("invalid ulimit value {v:?} (a number, or -1 for unlimited)")),
        }
    };
    let (soft, hard) = match values.split(':').collect::<Vec<_>>().as_slice() {
        [soft] => (value(soft)?, value(soft)?),
        [soft, hard] => (value(soft)?, value(hard)?),
        _ => return Err(format!("too many limit values in {values:?}: give SOFT[:HARD]")),
    };
    if soft > hard {
        let shown = |v: u64| if v == u64::MAX { "unlimited".to_string() } else { v.to_string() };
        return Err(format!(
            "the soft limit must not be above the hard limit: {} > {}",
            shown(soft),
            shown(hard)
        ));
    }
    Ok(Rlimit { resource, soft, hard })
}

/// Which namespace a sysctl `--sysctl` takes belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysctlNamespace {
    Ipc,
    Network,
}

/// `--sysctl KEY=VALUE`: only the namespaced sysctls Docker allows; the namespace each needs.
pub fn parse_sysctls(args: &[String]) -> Result<BTreeMap<String, (String, SysctlNamespace)>, String> {
    let mut sysctls = BTreeMap::new();
    for arg in args {
        let (key, value) = arg.split_once('=').ok_or_else(|| format!("--sysctl {arg}: give KEY=VALUE"))?;
        // sysctl(8) also takes `/` as the separator; every part must be a name (the key becomes a
        // path below /proc/sys).
        let key = key.replace('/', ".");
        if key.split('.').any(str::is_empty) || key.contains('\0') || value.contains('\0') {
            return Err(format!("--sysctl {arg}: {key:?} is not a sysctl name"));
        }
        let namespace = if IPC_SYSCTLS.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            SysctlNamespace::Ipc
        } else if key.starts_with("net.") {
            SysctlNamespace::Network
        } else {
            return Err(format!(
                "--sysctl {arg}: not allowed: only the IPC namespace's (kernel.msg*, kernel.sem, \
                 kernel.shm*, fs.mqueue.*) and the network namespace's (net.*) are, the rest would \
                 change the host"
            ));
        };
        sysctls.insert(key, (value.to_string(), namespace));
    }
    Ok(sysctls)
}

/// A `--tmpfs` mount's flags by default, as Docker's: noexec, nosuid, nodev.
fn tmpfs_default_flags() -> u64 {
    use linux_raw_sys::general::{MS_NODEV, MS_NOEXEC, MS_NOSUID};
    u64::from(MS_NOSUID | MS_NODEV | MS_NOEXEC)
}

/// The tmpfs options that are the file system's own (Docker's list).
const TMPFS_DATA: [&str; 7] = ["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"];

/// `--tmpfs PATH[:OPTIONS]`: a new tmpfs at PATH (absolute), `rw,noexec,nosuid,nodev` unless
/// OPTIONS say otherwise (`ro`, `exec`, `suid`, `dev`, `noatime`…), with the file system's own
/// options (`size=64m`, `mode=1777`, `uid=`, `gid=`, `nr_inodes=`, `nr_blocks=`, `mpol=`).
pub fn parse_tmpfs(arg: &str) -> Result<Mount, String> {
    use linux_raw_sys::general as g;
    let (path, options) = arg.split_once(':').unwrap_or((arg, ""));
    if !path.starts_with('/') {
        return Err(format!("--tmpfs {arg}: the mount path {path:?} must be absolute"));
    }
    if path.contains('\0') || options.contains('\0') {
        return Err(format!("--tmpfs {arg}: contains a NUL byte"));
    }
    let mut flags = tmpfs_default_flags();
    let mut data = Vec::new();
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let (set, bits) = match option {
            "ro" => (true, g::MS_RDONLY),
            "rw" => (false, g::MS_RDONLY),
            "exec" => (false, g::MS_NOEXEC),
            "noexec" => (true, g::MS_NOEXEC),
            "suid" => (false, g::MS_NOSUID),
            "nosuid" => (true, g::MS_NOSUID),
            "dev" => (false, g::MS_NODEV),
            "nodev" => (true, g::MS_NODEV),
            "atime" => (false, g::MS_NOATIME),
            "noatime" => (true, g::MS_NOATIME),
            "diratime" => (false, g::MS_NODIRATIME),
            "nodiratime" => (true, g::MS_NODIRATIME),
            "strictatime" => (true, g::MS_STRICTATIME),
            "sync" => (true, g::MS_SYNCHRONOUS),
            "async" => (false, g::MS_SYNCHRONOUS),
            _ => {
                let key = option.split_once('=').map_or(option, |(k, _)| k);
                if !TMPFS_DATA.contains(&key) || !option.contains('=') {
                    return Err(format!(
                        "--tmpfs {arg}: invalid tmpfs option {option:?} (flags ro, rw, exec, noexec, suid, \
                         nosuid, dev, nodev, atime, noatime, sync; or {}=VALUE)",
                        TMPFS_DATA.join("=, ")
                    ));
                }
                data.push(option.to_string());
                continue;
            }
        };
        match set {
            true => flags |= u64::from(bits),
            false => flags &= !u64::from(bits),
        }
    }
    Ok(tmpfs_mount(PathBuf::from(path), flags, data.join(",")))
}

/// A tmpfs at `destination` as a spec mount (`--tmpfs`, `--mount type=tmpfs`).
pub fn tmpfs_mount(destination: PathBuf, flags: u64, data: String) -> Mount {
    Mount {
        destination,
        kind: MountKind::Fs { fstype: "tmpfs".into(), source: "tmpfs".into() },
        flags,
        cleared_flags: 0,
        recursive_set: 0,
        recursive_clear: 0,
        propagation: Vec::new(),
        data,
    }
}

/// Every `--tmpfs`, each mount point once (Docker: "Duplicate mount point").
pub fn parse_tmpfs_all(args: &[String]) -> Result<Vec<Mount>, String> {
    let mut mounts: Vec<Mount> = Vec::new();
    for arg in args {
        let mount = parse_tmpfs(arg)?;
        if mounts.iter().any(|m| m.destination == mount.destination) {
            return Err(format!("--tmpfs {arg}: duplicate mount point {}", mount.destination.display()));
        }
        mounts.push(mount);
    }
    Ok(mounts)
}

/// A cpuset list (`0-3,5`) as a set of numbers, for `--cpuset-cpus` / `--cpuset-mems`.
pub fn parse_cpuset(flag: &str, list: &str) -> Result<BTreeSet<u32>, String> {
    let invalid = || format!("{flag} {list}: invalid format: give a list such as 0-3,5");
    let number = |s: &str| -> Result<u32, String> {
        match s.bytes().all(|b| b.is_ascii_digit()) {
            true => s.parse().map_err(|_| invalid()),
            false => Err(invalid()),
        }
    };
    let mut set = BTreeSet::new();
    for item in list.split(',') {
        match item.split_once('-') {
            Some((low, high)) => {
                let (low, high) = (number(low)?, number(high)?);
                if low > high {
                    return Err(invalid());
                }
                set.extend(low..=high);
            }
            None => {
                set.insert(number(item)?);
            }
        }
    }
    Ok(set)
}

/// `--cpuset-cpus` / `--cpuset-mems`, checked against what the machine has (`online`: the kernel's
/// list, /sys/devices/system/cpu/online or node/online), as Docker checks it.
pub fn check_cpuset(flag: &str, list: &str, online: &str) -> Result<(), String> {
    let asked = parse_cpuset(flag, list)?;
    let available = parse_cpuset(flag, online.trim()).unwrap_or_default();
    if !asked.is_subset(&available) {
        let what = if flag.ends_with("mems") { "memory nodes" } else { "CPUs" };
        return Err(format!(
            "{flag} {list}: requested {what} are not available (available: {})",
            online.trim()
        ));
    }
    Ok(())
}

/// A namespace the container has of its own (Docker's default) or shares with the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sharing {
    #[default]
    Private,
    Host,
}

/// `--pid` and `--uts`: `host`, or left out.
pub fn parse_host_only(flag: &str, what: &str, mode: Option<&str>) -> Result<Sharing, String> {
    match mode {
        None | Some("") => Ok(Sharing::Private),
        Some("host") => Ok(Sharing::Host),
        Some(other) => Err(format!("{flag} {other}: invalid {what} mode (give host)")),
    }
}

/// `--ipc`: `private` (the default) or `shareable` (the same here: nothing joins it by name),
/// `host`, or `none` (an IPC namespace of its own, and no /dev/shm).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IpcMode {
    #[default]
    Private,
    Host,
    None,
}

pub fn parse_ipc(mode: Option<&str>) -> Result<IpcMode, String> {
    match mode {
        None | Some("") | Some("private") | Some("shareable") => Ok(IpcMode::Private),
        Some("host") => Ok(IpcMode::Host),
        Some("none") => Ok(IpcMode::None),
        Some(other) => {
            Err(format!("--ipc {other}: invalid IPC mode (give private, shareable, host or none)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linux_raw_sys::general as g;

    fn kv(text: &str) -> Result<Vec<String>, String> {
        parse_kv_file("--env-file", Path::new("f.env"), text.as_bytes())
    }

    #[test]
    fn env_files_as_docker_reads_them() {
        let text =
            "\u{feff}# comment\n\n  A=1\nB= spaced value \r\nFROM_HOST\n  # indented comment\nC=x=y\nD=\n";
        assert_eq!(kv(text).unwrap(), ["A=1", "B= spaced value ", "FROM_HOST", "C=x=y", "D="]);
        assert_eq!(
            kv("BAD KEY=1").unwrap_err(),
            "--env-file f.env: variable \"BAD KEY\" contains whitespace"
        );
        assert_eq!(kv("=1").unwrap_err(), "--env-file f.env: no variable name on line \"=1\"");
        let bad = parse_kv_file("--env-file", Path::new("f"), b"A=1\nB=\xff\n").unwrap_err();
        assert_eq!(bad, "--env-file f: invalid UTF-8 bytes at line 2");
        let missing = read_kv_file("--env-file", Path::new("/nonexistent/env")).unwrap_err();
        assert!(missing.starts_with("--env-file /nonexistent/env: No such file"), "{missing}");
    }

    #[test]
    fn labels_later_win_and_bare_keys_are_empty() {
        let labels = parse_labels(&["a=1".into(), "b".into(), "a=2".into(), "c=x=y".into()]).unwrap();
        let want: BTreeMap<String, String> = [("a", "2"), ("b", ""), ("c", "x=y")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(labels, want);
        assert_eq!(parse_labels(&["=v".into()]).unwrap_err(), "--label =v: invalid label: empty name");
        assert!(parse_labels(&["a b=1".into()]).unwrap_err().contains("contains whitespace"));
    }

    #[test]
    fn ulimits_by_docker_names() {
        let l = parse_ulimits(&["nofile=1024:2048".into(), "core=0".into(), "stack=-1".into()]).unwrap();
        assert_eq!(
            l,
            [
                Rlimit { resource: g::RLIMIT_NOFILE, soft: 1024, hard: 2048 },
                Rlimit { resource: g::RLIMIT_CORE, soft: 0, hard: 0 },
                Rlimit { resource: g::RLIMIT_STACK, soft: u64::MAX, hard: u64::MAX },
            ]
        );
        // The last one for a resource counts.
        let l = parse_ulimits(&["nproc=10".into(), "nproc=20:30".into()]).unwrap();
        assert_eq!(l, [Rlimit { resource: g::RLIMIT_NPROC, soft: 20, hard: 30 }]);
        let err = |a: &str| parse_ulimits(&[a.to_string()]).unwrap_err();
        assert!(err("nofiles=1").starts_with("--ulimit nofiles=1: invalid ulimit type \"nofiles\""));
        assert_eq!(err("nofile"), "--ulimit nofile: give NAME=SOFT[:HARD]");
        assert!(err("nofile=x").contains("invalid ulimit value \"x\""));
        assert!(err("nofile=-2").contains("invalid ulimit value \"-2\""));
        assert!(err("nofile=1:2:3").contains("too many limit values"));
        assert!(err("nofile=20:10").ends_with("the soft limit must not be above the hard limit: 20 > 10"));
        assert!(err("nofile=-1:10").ends_with("unlimited > 10"));
    }

    #[test]
    fn only_namespaced_sysctls() {
        let s = parse_sysctls(&[
            "net.ipv4.ip_forward=1".into(),
            "kernel.shmmax=4096".into(),
            "fs/mqueue/msg_max=20".into(),
        ])
        .unwrap();
        assert_eq!(s["net.ipv4.ip_forward"], ("1".to_string(), SysctlNamespace::Network));
        assert_eq!(s["kernel.shmmax"], ("4096".to_string(), SysctlNamespace::Ipc));
        assert_eq!(s["fs.mqueue.msg_max"], ("20".to_string(), SysctlNamespace::Ipc));
        for bad in ["kernel.panic=1", "vm.swappiness=1", "kernel.hostname=x", "net=1"] {
            assert!(parse_sysctls(&[bad.into()]).unwrap_err().contains("not allowed"), "{bad}");
        }
        assert!(parse_sysctls(&["net..x=1".into()]).unwrap_err().contains("not a sysctl name"));
        assert_eq!(parse_sysctls(&["net.x".into()]).unwrap_err(), "--sysctl net.x: give KEY=VALUE");
    }

    #[test]
    fn tmpfs_defaults_and_options() {
        let m = parse_tmpfs("/run").unwrap();
        assert_eq!(m.destination, Path::new("/run"));
        assert_eq!(m.flags, u64::from(g::MS_NOSUID | g::MS_NODEV | g::MS_NOEXEC));
        assert_eq!(m.data, "");
        let m = parse_tmpfs("/scratch:size=64m,mode=1770,exec,ro,uid=5").unwrap();
        assert_eq!(m.flags, u64::from(g::MS_NOSUID | g::MS_NODEV | g::MS_RDONLY));
        assert_eq!(m.data, "size=64m,mode=1770,uid=5");
        assert!(matches!(m.kind, MountKind::Fs { ref fstype, .. } if fstype == "tmpfs"));
        assert!(parse_tmpfs("run").unwrap_err().contains("must be absolute"));
        assert!(parse_tmpfs("/run:bogus").unwrap_err().contains("invalid tmpfs option \"bogus\""));
        assert!(parse_tmpfs("/run:size").unwrap_err().contains("invalid tmpfs option \"size\""));
        let dup = parse_tmpfs_all(&["/a".into(), "/a:size=1m".into()]).unwrap_err();
        assert_eq!(dup, "--tmpfs /a:size=1m: duplicate mount point /a");
    }

    #[test]
    fn cpusets_parse_and_must_be_online() {
        assert_eq!(parse_cpuset("--cpuset-cpus", "0-2,5").unwrap(), BTreeSet::from([0, 1, 2, 5]));
        for bad in ["", "a", "1-", "3-1", "1,,2", "-1"] {
            assert!(parse_cpuset("--cpuset-cpus", bad).is_err(), "{bad:?}");
        }
        assert!(check_cpuset("--cpuset-cpus", "0-1", "0-1\n").is_ok());
        assert_eq!(
            check_cpuset("--cpuset-cpus", "0-3", "0-1\n").unwrap_err(),
            "--cpuset-cpus 0-3: requested CPUs are not available (available: 0-1)"
        );
        assert!(check_cpuset("--cpuset-mems", "1", "0").unwrap_err().contains("memory nodes"));
    }

    #[test]
    fn namespace_modes() {
        assert_eq!(parse_host_only("--pid", "PID", None), Ok(Sharing::Private));
        assert_eq!(parse_host_only("--pid", "PID", Some("host")), Ok(Sharing::Host));
        assert_eq!(
            parse_host_only("--uts", "UTS", Some("container:x")).unwrap_err(),
            "--uts container:x: invalid UTS mode (give host)"
        );
        assert_eq!(parse_ipc(Some("shareable")), Ok(IpcMode::Private));
        assert_eq!(parse_ipc(Some("host")), Ok(IpcMode::Host));
        assert_eq!(parse_ipc(Some("none")), Ok(IpcMode::None));
        assert!(parse_ipc(Some("hots")).unwrap_err().starts_with("--ipc hots: invalid IPC mode"));
    }
}
