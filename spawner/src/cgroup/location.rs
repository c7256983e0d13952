//! Where a container's cgroup is, saved so that another process can find it again: runc's command
//! line runs `create`, `start`, `pause`, `kill` and `delete` as separate processes, and each one
//! after `create` reopens the cgroup from the container's state file ([`super::Cgroup::reopen`]).
//!
//! A saved location is trusted only as far as it describes a container cgroup: every directory is
//! named for the container, lies on a cgroup filesystem and is not a hierarchy root. `remove` on a
//! reopened cgroup kills everything inside, so a location naming, say, the memory hierarchy's root
//! must never get that far.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{validate_name, DeviceControl, Error, Result, Version, CGROUP2_SUPER_MAGIC};

/// `CGROUP_SUPER_MAGIC` from `linux/magic.h`: the `f_type` of a v1 hierarchy.
const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;

/// Everything needed to work with a container's cgroup from another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupLocation {
    /// The container cgroup's name, the last component of every directory.
    pub name: String,
    pub version: Version,
    /// One per hierarchy: on v2 the single cgroup2 directory; on v1 memory first, then the other
    /// hierarchies used, and on a hybrid host maybe a cgroup2 directory for the device program.
    pub dirs: Vec<SavedDir>,
    pub device_control: DeviceControl,
    /// The memory limit in force, for the OOM message.
    pub memory_limit: Option<u64>,
    /// v1 only: why the cgroup has no freezer directory (so why it cannot be paused).
    pub freezer_unavailable: Option<String>,
    /// The systemd unit owning the cgroup (`--systemd-cgroup`), which removal stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
}

/// One directory of a saved cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedDir {
    /// The v1 controller (`memory`, `cpu`, …) or `cgroup2`.
    pub controller: String,
    pub path: PathBuf,
}

impl CgroupLocation {
    /// The checks that need no filesystem: a valid name, known controllers, absolute paths
    /// without `..` that end in the name, the directories the version allows.
    pub(crate) fn check_shape(&self) -> Result<()> {
        let invalid = |why: String| Err(Error::Invalid(format!("saved cgroup {:?}: {why}", self.name)));
        validate_name(&self.name)?;
        if self.dirs.is_empty() {
            return invalid("no directories".into());
        }
        for dir in &self.dirs {
            let plain = dir.path.is_absolute()
                && dir.path.components().skip(1).all(|c| matches!(c, Component::Normal(_)));
            if !plain || dir.path.file_name().is_none_or(|n| n != self.name.as_str()) {
                return invalid(format!(
                    "directory {} is not an absolute path ending in the cgroup's name",
                    dir.path.display()
                ));
            }
        }
        match self.version {
            Version::V2 => {
                if self.dirs.len() != 1 || self.dirs[0].controller != super::v1::UNIFIED {
                    return invalid(format!("a v2 cgroup has one {} directory", super::v1::UNIFIED));
                }
            }
            Version::V1 => {
                if let Some(d) =
                    self.dirs.iter().find(|d| super::v1::controller_name(&d.controller).is_none())
                {
                    return invalid(format!("unknown hierarchy {:?}", d.controller));
                }
            }
        }
        Ok(())
    }

    /// The checks against the filesystem: each directory that still exists is a cgroup (cgroup2
    /// for [`super::v1::UNIFIED`], v1 otherwise) and not the root of its mount. A directory that
    /// is gone is fine: it was removed already.
    pub(crate) fn check_dirs(&self) -> Result<()> {
        for dir in &self.dirs {
            let expected =
                if dir.controller == super::v1::UNIFIED { CGROUP2_SUPER_MAGIC } else { CGROUP_SUPER_MAGIC };
            check_cgroup_dir(&dir.path, expected)?;
        }
        Ok(())
    }
}

fn check_cgroup_dir(path: &Path, expected_magic: u64) -> Result<()> {
    let st = match rustix::fs::statfs(path) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(Error::io("statfs", path, e.into())),
    };
    // f_type is a signed long on most architectures and u32 on a few; the magic fits either.
    #[allow(clippy::unnecessary_cast)]
    let fs_type = st.f_type as u64 & 0xffff_ffff;
    if fs_type != expected_magic {
        return Err(Error::Invalid(format!(
            "saved cgroup directory {} is not on a cgroup filesystem",
            path.display()
        )));
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let dev = |p: &Path| rustix::fs::stat(p).map(|s| s.st_dev).map_err(|e| Error::io("stat", p, e.into()));
    if dev(path)? != dev(parent)? {
        return Err(Error::Invalid(format!(
            "saved cgroup directory {} is the root of a cgroup mount, not a container cgroup",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(version: Version, dirs: &[(&str, &str)]) -> CgroupLocation {
        CgroupLocation {
            name: "ctr".into(),
            version,
            dirs: dirs.iter().map(|(c, p)| SavedDir { controller: (*c).into(), path: p.into() }).collect(),
            device_control: DeviceControl::Bpf,
            memory_limit: Some(64 << 20),
            freezer_unavailable: None,
            systemd_unit: None,
        }
    }

    #[test]
    fn serde_round_trip() {
        let saved = CgroupLocation {
            freezer_unavailable: Some("no v1 freezer hierarchy".into()),
            device_control: DeviceControl::Unavailable("not delegated".into()),
            ..location(Version::V1, &[("memory", "/sys/fs/cgroup/memory/x/ctr"), ("cgroup2", "/u/ctr")])
        };
        let json = serde_json::to_string(&saved).unwrap();
        assert!(json.contains(r#""version":"v1""#), "{json}");
        assert_eq!(serde_json::from_str::<CgroupLocation>(&json).unwrap(), saved);
        let v2 = location(Version::V2, &[("cgroup2", "/sys/fs/cgroup/x/ctr")]);
        assert_eq!(serde_json::from_str::<CgroupLocation>(&serde_json::to_string(&v2).unwrap()).unwrap(), v2);
    }

    #[test]
    fn shape_of_a_container_cgroup() {
        assert!(location(Version::V2, &[("cgroup2", "/sys/fs/cgroup/x/ctr")]).check_shape().is_ok());
        let v1 = location(Version::V1, &[("memory", "/sys/fs/cgroup/memory/a/ctr"), ("freezer", "/f/ctr")]);
        assert!(v1.check_shape().is_ok());
        for (version, dirs) in [
            (Version::V2, vec![("cgroup2", "/sys/fs/cgroup")]),
            (Version::V2, vec![("cgroup2", "/sys/fs/cgroup/x/other")]),
            (Version::V2, vec![("cgroup2", "/sys/fs/cgroup/../ctr")]),
            (Version::V2, vec![("cgroup2", "relative/ctr")]),
            (Version::V2, vec![("memory", "/sys/fs/cgroup/ctr")]),
            (Version::V2, vec![("cgroup2", "/a/ctr"), ("cgroup2", "/b/ctr")]),
            (Version::V1, vec![("nonsense", "/sys/fs/cgroup/nonsense/ctr")]),
            (Version::V1, vec![]),
        ] {
            let loc = location(version, &dirs);
            assert!(matches!(loc.check_shape(), Err(Error::Invalid(_))), "{dirs:?}");
        }
        let bad_name = CgroupLocation { name: "..".into(), ..location(Version::V2, &[("cgroup2", "/x/..")]) };
        assert!(bad_name.check_shape().is_err());
    }

    #[test]
    fn directories_must_be_cgroups_below_a_mount_root() {
        let tmp = tempfile::tempdir().unwrap();
        let ctr = tmp.path().join("ctr");
        std::fs::create_dir(&ctr).unwrap();
        let err = check_cgroup_dir(&ctr, CGROUP_SUPER_MAGIC).unwrap_err().to_string();
        assert!(err.ends_with("is not on a cgroup filesystem"), "{err}");
        // Gone: removed already, nothing to check.
        assert!(check_cgroup_dir(&tmp.path().join("gone"), CGROUP_SUPER_MAGIC).is_ok());
    }
}
