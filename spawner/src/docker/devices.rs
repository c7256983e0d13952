//! `--device HOST[:CONTAINER][:PERMS]`: a host device node for the container. Its /dev is a `nodev`
//! tmpfs, so a node made at run time (container root keeps CAP_MKNOD, as in Docker) opens nowhere;
//! the nodes it may use are the host's own, bind-mounted one by one (runc's way inside a user
//! namespace; the core binds the default ones). spawner opens each as a detached mount before the
//! container exists, checked to be a device, and the container attaches it; its cgroup rule goes
//! after Docker's allow-list.

use rustix::fd::OwnedFd;
use rustix::fs::FileType;
use rustix::mount::{open_tree, OpenTreeFlags};
use std::path::{Path, PathBuf};

/// Character or block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Char,
    Block,
}

/// A device the container may use: where it appears, which node it is, and what access the
/// device cgroup grants (`rwm` letters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub host: PathBuf,
    pub container: PathBuf,
    pub kind: Kind,
    pub major: u32,
    pub minor: u32,
    pub access: String,
}

impl Device {
    /// The device cgroup rule that lets the container use this node.
    pub fn rule(&self) -> crate::cgroup::DeviceRule {
        use crate::cgroup::{Access, DeviceKind, DeviceRule};
        let kind = match self.kind {
            Kind::Char => DeviceKind::Char,
            Kind::Block => DeviceKind::Block,
        };
        // `parse` checked the letters.
        let access = Access::from_letters(&self.access).unwrap_or(Access::ALL);
        DeviceRule { allow: true, kind, major: Some(self.major), minor: Some(self.minor), access }
    }
}

/// A device node ready to attach: a detached mount of the host's node.
pub struct DeviceMount {
    pub tree: OwnedFd,
    pub device: Device,
}

#[derive(Debug)]
pub struct DeviceError(pub String);

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `--device HOST[:CONTAINER][:PERMS]`, Docker's syntax: PERMS is any of `r`, `w`, `m` (default
/// `rwm`); the container path defaults to the host's. Only the syntax is checked here; the node
/// is looked at once, by [`open`].
pub fn parse(spec: &str) -> Result<(PathBuf, PathBuf, String), DeviceError> {
    let bad = |why: &str| DeviceError(format!("invalid --device {spec:?}: {why}"));
    let is_perms = |s: &str| !s.is_empty() && s.chars().all(|c| "rwm".contains(c));
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if is_perms(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => return Err(bad("expected HOST[:CONTAINER][:PERMS]")),
    };
    if !host.starts_with('/') || !container.starts_with('/') {
        return Err(bad("both paths must be absolute"));
    }
    if !is_perms(perms) {
        return Err(bad("permissions must be letters of rwm"));
    }
    Ok((host.into(), container.into(), perms.into()))
}

/// Opens the `requested` nodes (from [`parse`]) as detached mounts.
pub fn open(requested: &[(PathBuf, PathBuf, String)]) -> Result<Vec<DeviceMount>, DeviceError> {
    requested.iter().map(|(host, container, perms)| open_node(host, container, perms)).collect()
}

/// `--privileged`: every device node of the host's /dev (and its subdirectories), at the same
/// path, as Docker gives them; not the default nodes the core binds anyway, nor the terminals
/// (`pts`, `console`, `ptmx`, `tty*`: the container's terminal is its own), shared memory or queues.
pub fn host_devices() -> Vec<(PathBuf, PathBuf, String)> {
    let defaults: Vec<&str> = crate::container::mount_plan::DEFAULT_DEVICES.iter().map(|d| d.0).collect();
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else { continue };
            let skipped = ["pts", "shm", "mqueue", "hugepages", "console", "ptmx", "fd"]
                .contains(&name.as_str())
                || name.starts_with("tty")
                || (dir == Path::new("/dev") && defaults.contains(&name.as_str()));
            if skipped {
                continue;
            }
            use std::os::unix::fs::FileTypeExt;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_char_device() || kind.is_block_device() {
                found.push((path.clone(), path, "rwm".to_string()));
            }
        }
    }
    found.sort();
    found
}

/// Opens what [`host_devices`] found; a node that cannot be opened is left out (said with -v).
pub fn open_host_devices() -> Vec<DeviceMount> {
    host_devices()
        .iter()
        .filter_map(|(host, container, access)| match open_node(host, container, access) {
            Ok(d) => Some(d),
            Err(e) => {
                log::info!("--privileged: {e}: left out");
                None
            }
        })
        .collect()
}

fn open_node(host: &Path, container: &Path, access: &str) -> Result<DeviceMount, DeviceError> {
    let err =
        |what: &str, e: rustix::io::Errno| DeviceError(format!("device {}: {what}: {e}", host.display()));
    // The clone is of the node itself, whatever it was reached through: what is checked below is
    // what the container gets.
    let tree =
        open_tree(rustix::fs::CWD, host, OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC)
            .map_err(|e| err("open_tree", e))?;
    // The bind keeps the host mount's flags: nosuid and noexec would mean nothing on a device node.
    let st = rustix::fs::fstat(&tree).map_err(|e| err("fstat", e))?;
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::CharacterDevice => Kind::Char,
        FileType::BlockDevice => Kind::Block,
        _ => return Err(DeviceError(format!("device {}: not a device node", host.display()))),
    };
    let rdev = st.st_rdev;
    let device = Device {
        host: host.to_path_buf(),
        container: container.to_path_buf(),
        kind,
        major: rustix::fs::major(rdev),
        minor: rustix::fs::minor(rdev),
        access: access.to_string(),
    };
    Ok(DeviceMount { tree, device })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_device_syntax() {
        let p = |s: &str| parse(s).map(|(h, c, a)| (h.display().to_string(), c.display().to_string(), a));
        assert_eq!(p("/dev/loop0").unwrap(), ("/dev/loop0".into(), "/dev/loop0".into(), "rwm".into()));
        assert_eq!(p("/dev/loop0:r").unwrap(), ("/dev/loop0".into(), "/dev/loop0".into(), "r".into()));
        assert_eq!(
            p("/dev/loop0:/dev/xvda").unwrap(),
            ("/dev/loop0".into(), "/dev/xvda".into(), "rwm".into())
        );
        assert_eq!(
            p("/dev/loop0:/dev/xvda:rw").unwrap(),
            ("/dev/loop0".into(), "/dev/xvda".into(), "rw".into())
        );
        for bad in ["loop0", "/dev/loop0:xvda", "/dev/loop0:/dev/x:rwx", "/a:/b:r:w", "/dev/loop0:/dev/x:"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_file_is_not_a_device() {
        let e = open_node(Path::new("/etc/hostname"), Path::new("/dev/x"), "rwm").err().unwrap();
        assert!(e.0.contains("not a device node"), "{e}");
    }
}
