//! OOM-kill reporting from init's own cgroup: cgroup v2 `memory.events` (`oom_kill N`, watched with
//! inotify) or cgroup v1 `memory.oom_control` (`oom_kill N`, re-read whenever a child dies). No other
//! init reports these; for a user, "exit 137" without this is a guessing game.

use crate::cpath::{read_small_file, CPath};
use core::ffi::CStr;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Version {
    V1,
    V2,
}

/// Where init's own cgroup is, as named by `/proc/self/cgroup`.
#[derive(Debug, PartialEq, Eq)]
pub struct CgroupPaths<'a> {
    /// The `0::PATH` line (cgroup v2).
    pub unified: Option<&'a [u8]>,
    /// The path of the v1 hierarchy that has the memory controller.
    pub memory_v1: Option<&'a [u8]>,
}

pub fn parse_proc_cgroup(content: &[u8]) -> CgroupPaths<'_> {
    let mut paths = CgroupPaths { unified: None, memory_v1: None };
    for line in content.split(|&b| b == b'\n') {
        let mut fields = line.splitn(3, |&b| b == b':');
        let (Some(id), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if id == b"0" && controllers.is_empty() {
            paths.unified = Some(path);
        } else if controllers.split(|&b| b == b',').any(|c| c == b"memory") {
            paths.memory_v1 = Some(path);
        }
    }
    paths
}

/// The value of the `key N` line of a flat-keyed cgroup file.
pub fn parse_key(content: &[u8], key: &[u8]) -> Option<u64> {
    content.split(|&b| b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(b" ")?;
        crate::args::parse_u64(rest.trim_ascii())
    })
}

/// A memory limit from `memory.max` / `memory.limit_in_bytes`; None when unlimited.
pub fn parse_limit(content: &[u8]) -> Option<u64> {
    let limit = crate::args::parse_u64(content.trim_ascii())?;
    // v1 reports "no limit" as a huge page-aligned number near i64::MAX.
    (limit < 1 << 60).then_some(limit)
}

/// Shows a byte count the way people set limits: `64 MiB`, `1 GiB`, `1536 KiB`.
pub struct Size(pub u64);

impl core::fmt::Display for Size {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let n = self.0;
        for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if n >= 1 << shift && n.is_multiple_of(1 << shift) {
                return write!(f, "{} {unit}", n >> shift);
            }
        }
        if n >= 1 << 20 {
            return write!(f, "{} MiB", n >> 20);
        }
        write!(f, "{n} bytes")
    }
}

pub struct OomWatch {
    version: Version,
    /// The cgroup directory, ending in `/`.
    dir: CPath,
    baseline: u64,
    last: u64,
}

fn cgroup_dir(mount: &[u8], path: &[u8]) -> CPath {
    let mut dir = CPath::new();
    dir.push(mount);
    let path = path.trim_ascii_end();
    let path = path.strip_prefix(b"/").unwrap_or(path);
    if !path.is_empty() {
        dir.push(b"/");
        dir.push(path);
    }
    dir.push(b"/");
    dir
}

fn exists(dir: &CPath, file: &[u8]) -> bool {
    let mut p = CPath::new();
    p.push(dir.as_bytes());
    p.push(file);
    rustix::fs::access(p.as_cstr(), rustix::fs::Access::EXISTS).is_ok()
}

impl OomWatch {
    /// Finds init's memory cgroup and remembers its OOM-kill count, so that only kills from now on
    /// are reported. None when there is no memory accounting to read.
    pub fn find() -> Option<OomWatch> {
        let mut buf = [0u8; 4096];
        let content = read_small_file(c"/proc/self/cgroup", &mut buf)?;
        let paths = parse_proc_cgroup(content);
        let mut candidates: [Option<(Version, CPath)>; 3] = [None, None, None];
        if let Some(p) = paths.unified {
            candidates[0] = Some((Version::V2, cgroup_dir(b"/sys/fs/cgroup", p)));
            candidates[1] = Some((Version::V2, cgroup_dir(b"/sys/fs/cgroup/unified", p)));
        }
        if let Some(p) = paths.memory_v1 {
            candidates[2] = Some((Version::V1, cgroup_dir(b"/sys/fs/cgroup/memory", p)));
        }
        for (version, dir) in candidates.into_iter().flatten() {
            let file: &[u8] = match version {
                Version::V2 => b"memory.events",
                Version::V1 => b"memory.oom_control",
            };
            if exists(&dir, file) {
                let mut watch = OomWatch { version, dir, baseline: 0, last: 0 };
                let count = watch.read_count().unwrap_or(0);
                watch.baseline = count;
                watch.last = count;
                crate::debug!(
                    "watching OOM kills in {}{}",
                    crate::log::Bytes(watch.dir.as_bytes()),
                    crate::log::Bytes(file)
                );
                return Some(watch);
            }
        }
        None
    }

    fn file(&self, name: &[u8]) -> CPath {
        let mut p = CPath::new();
        p.push(self.dir.as_bytes());
        p.push(name);
        p
    }

    /// The file to watch with inotify (v2 only: v1 files do not notify).
    pub fn events_file(&self) -> Option<CPath> {
        (self.version == Version::V2).then(|| self.file(b"memory.events"))
    }

    fn read_count(&self) -> Option<u64> {
        let (name, _) = self.files();
        let mut buf = [0u8; 1024];
        parse_key(read_small_file(self.file(name).as_cstr(), &mut buf)?, b"oom_kill")
    }

    fn files(&self) -> (&'static [u8], &'static [u8]) {
        match self.version {
            Version::V2 => (b"memory.events", b"memory.max"),
            Version::V1 => (b"memory.oom_control", b"memory.limit_in_bytes"),
        }
    }

    pub fn limit(&self) -> Option<u64> {
        let (_, name) = self.files();
        let mut buf = [0u8; 64];
        parse_limit(read_small_file(self.file(name).as_cstr(), &mut buf)?)
    }

    /// Re-reads the counter and reports kills since the last check on stderr.
    pub fn check(&mut self) {
        let Some(count) = self.read_count() else { return };
        if count <= self.last {
            return;
        }
        let new = count - self.last;
        self.last = count;
        let plural = if new == 1 { "" } else { "es" };
        match self.limit() {
            Some(limit) => crate::warn!(
                "OOM killer killed {new} process{plural} in this container (memory limit {})",
                Size(limit)
            ),
            None => crate::warn!("OOM killer killed {new} process{plural} in this container"),
        }
    }

    /// OOM kills since init started.
    pub fn total(&self) -> u64 {
        self.last - self.baseline
    }

    pub fn dir(&self) -> &CStr {
        self.dir.as_cstr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_cgroup_hybrid_and_unified() {
        let hybrid = b"9:name=systemd:/\n4:memory:/process_api/8a87\n3:cpuset:/\n1:cpu,cpuacct:/\n0::/\n";
        let p = parse_proc_cgroup(hybrid);
        assert_eq!(p.memory_v1, Some(&b"/process_api/8a87"[..]));
        assert_eq!(p.unified, Some(&b"/"[..]));
        let v2 = b"0::/user.slice/user-0.slice/session-1.scope\n";
        let p = parse_proc_cgroup(v2);
        assert_eq!(p.unified, Some(&b"/user.slice/user-0.slice/session-1.scope"[..]));
        assert_eq!(p.memory_v1, None);
    }

    #[test]
    fn oom_counters() {
        let v2 = b"low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(parse_key(v2, b"oom_kill"), Some(1));
        assert_eq!(parse_key(v2, b"oom"), Some(2));
        let v1 = b"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_key(v1, b"oom_kill"), Some(3));
        assert_eq!(parse_key(b"under_oom 0\n", b"oom_kill"), None);
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(b"67108864\n"), Some(64 << 20));
        assert_eq!(parse_limit(b"max\n"), None);
        assert_eq!(parse_limit(b"9223372036854771712\n"), None);
        assert_eq!(std::format!("{}", Size(64 << 20)), "64 MiB");
        assert_eq!(std::format!("{}", Size(1 << 30)), "1 GiB");
        assert_eq!(std::format!("{}", Size(1536 << 10)), "1536 KiB");
        assert_eq!(std::format!("{}", Size(100)), "100 bytes");
    }

    #[test]
    fn cgroup_dirs() {
        assert_eq!(cgroup_dir(b"/sys/fs/cgroup", b"/").as_bytes(), b"/sys/fs/cgroup/");
        assert_eq!(cgroup_dir(b"/sys/fs/cgroup/memory", b"/a/b\n").as_bytes(), b"/sys/fs/cgroup/memory/a/b/");
    }
}
