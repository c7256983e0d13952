//! `mounts` and mount options: runc's option table (libcontainer/specconv) split into what
//! mount(2) takes as flags, what mount_setattr(2) takes for a whole tree (the `r*` options),
//! propagation changes, and the file system's own options, passed on as mount(2)'s data.

use super::checks;
use super::{Mount, MountKind, Propagation, SpecError};
use linux_raw_sys::general as sys;
use oci_spec::runtime as oci;
use std::path::Path;

/// `mounts`, in order.
pub(super) fn mounts(mounts: &[oci::Mount], bundle: &Path) -> Result<Vec<Mount>, SpecError> {
    mounts.iter().enumerate().map(|(i, m)| mount(&format!("mounts[{i}]"), m, bundle)).collect()
}

fn mount(at: &str, m: &oci::Mount, bundle: &Path) -> Result<Mount, SpecError> {
    // runc >= 1.2 warns about a relative destination and resolves it against the root; refusing
    // it says the same thing earlier, and the spec calls it a MUST.
    let destination = checks::absolute(&format!("{at}.destination"), m.destination())?;
    for (field, mappings) in [("uidMappings", m.uid_mappings()), ("gidMappings", m.gid_mappings())] {
        if mappings.as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(SpecError::unsupported_value(format!("{at}.{field}"), "an id-mapped mount"));
        }
    }
    let options = parse_options(&format!("{at}.options"), m.options().as_deref().unwrap_or_default())?;
    let fstype = m.typ().as_deref().unwrap_or_default();
    checks::no_nul(&format!("{at}.type"), fstype)?;
    let kind = match options.bind {
        // Type `bind` without a bind option: one mount, not its submounts (what `bind` means).
        None if fstype == "bind" => MountKind::Bind { source: bind_source(at, m, bundle)?, recursive: false },
        Some(recursive) => MountKind::Bind { source: bind_source(at, m, bundle)?, recursive },
        None if fstype.is_empty() => {
            return Err(SpecError::invalid(
                format!("{at}.type"),
                "required for a mount that is not a bind mount",
            ))
        }
        None => {
            let source = match m.source() {
                Some(source) => source.to_str().ok_or_else(|| {
                    SpecError::invalid(format!("{at}.source"), format!("{source:?} is not UTF-8"))
                })?,
                None => "",
            };
            checks::no_nul(&format!("{at}.source"), source)?;
            // No source: the type's name, which is what mountinfo then shows (`proc`, `tmpfs`).
            let source = if source.is_empty() { fstype } else { source };
            MountKind::Fs { fstype: fstype.to_owned(), source: source.to_owned() }
        }
    };
    Ok(Mount {
        destination,
        kind,
        flags: options.flags,
        cleared_flags: options.cleared_flags,
        recursive_set: options.recursive_set,
        recursive_clear: options.recursive_clear,
        propagation: options.propagation,
        data: options.data.join(","),
    })
}

/// A bind mount's source: a host path, relative ones resolved against the bundle (as runc does).
fn bind_source(at: &str, m: &oci::Mount, bundle: &Path) -> Result<std::path::PathBuf, SpecError> {
    let source = m.source().as_deref().unwrap_or(Path::new(""));
    if source.as_os_str().is_empty() {
        return Err(SpecError::invalid(format!("{at}.source"), "required for a bind mount"));
    }
    checks::in_bundle(&format!("{at}.source"), source, bundle)
}

/// What a mount's options amount to.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Options {
    /// `bind` / `rbind`: Some(recursive).
    pub bind: Option<bool>,
    pub flags: u64,
    pub cleared_flags: u64,
    pub recursive_set: u64,
    pub recursive_clear: u64,
    pub propagation: Vec<Propagation>,
    pub data: Vec<String>,
}

/// What one option is.
enum Meaning {
    /// A mount(2) flag set (`nosuid`) or cleared (`suid`).
    Flag {
        set: bool,
        bits: u32,
    },
    Bind {
        recursive: bool,
    },
    Propagation(Propagation),
    /// A mount_setattr(2) attribute for the whole tree, set or cleared.
    Recursive {
        set: bool,
        attr: u32,
    },
    /// The access-time mode of the whole tree, which mount_setattr(2) takes as one value.
    RecursiveAtime(u32),
    /// Changes nothing (`defaults`, and `rnorelatime`, whose runc meaning, clearing a value of 0, is
    /// no change).
    Nothing,
    /// Known to runc, not implemented here: the reason.
    Refused(&'static str),
    /// The file system's own (`mode=755`, `size=64m`, `newinstance`).
    Data,
}

/// runc's tables, option by option.
fn meaning(option: &str) -> Meaning {
    use Meaning::{Flag, Recursive, RecursiveAtime};
    let set = |bits| Flag { set: true, bits };
    let clear = |bits| Flag { set: false, bits };
    match option {
        "ro" => set(sys::MS_RDONLY),
        "rw" => clear(sys::MS_RDONLY),
        "nosuid" => set(sys::MS_NOSUID),
        "suid" => clear(sys::MS_NOSUID),
        "nodev" => set(sys::MS_NODEV),
        "dev" => clear(sys::MS_NODEV),
        "noexec" => set(sys::MS_NOEXEC),
        "exec" => clear(sys::MS_NOEXEC),
        "sync" => set(sys::MS_SYNCHRONOUS),
        "async" => clear(sys::MS_SYNCHRONOUS),
        "dirsync" => set(sys::MS_DIRSYNC),
        "noatime" => set(sys::MS_NOATIME),
        "atime" => clear(sys::MS_NOATIME),
        "nodiratime" => set(sys::MS_NODIRATIME),
        "diratime" => clear(sys::MS_NODIRATIME),
        "relatime" => set(sys::MS_RELATIME),
        "norelatime" => clear(sys::MS_RELATIME),
        "strictatime" => set(sys::MS_STRICTATIME),
        "nostrictatime" => clear(sys::MS_STRICTATIME),
        "lazytime" => set(sys::MS_LAZYTIME),
        "nolazytime" => clear(sys::MS_LAZYTIME),
        "mand" => set(sys::MS_MANDLOCK),
        "nomand" => clear(sys::MS_MANDLOCK),
        "iversion" => set(sys::MS_I_VERSION),
        "noiversion" => clear(sys::MS_I_VERSION),
        "silent" => set(sys::MS_SILENT),
        "loud" => clear(sys::MS_SILENT),
        "nosymfollow" => set(sys::MS_NOSYMFOLLOW),
        "symfollow" => clear(sys::MS_NOSYMFOLLOW),
        "remount" => set(sys::MS_REMOUNT),
        "defaults" => Meaning::Nothing,
        "bind" => Meaning::Bind { recursive: false },
        "rbind" => Meaning::Bind { recursive: true },
        "rro" => Recursive { set: true, attr: sys::MOUNT_ATTR_RDONLY },
        "rrw" => Recursive { set: false, attr: sys::MOUNT_ATTR_RDONLY },
        "rnosuid" => Recursive { set: true, attr: sys::MOUNT_ATTR_NOSUID },
        "rsuid" => Recursive { set: false, attr: sys::MOUNT_ATTR_NOSUID },
        "rnodev" => Recursive { set: true, attr: sys::MOUNT_ATTR_NODEV },
        "rdev" => Recursive { set: false, attr: sys::MOUNT_ATTR_NODEV },
        "rnoexec" => Recursive { set: true, attr: sys::MOUNT_ATTR_NOEXEC },
        "rexec" => Recursive { set: false, attr: sys::MOUNT_ATTR_NOEXEC },
        "rnodiratime" => Recursive { set: true, attr: sys::MOUNT_ATTR_NODIRATIME },
        "rdiratime" => Recursive { set: false, attr: sys::MOUNT_ATTR_NODIRATIME },
        "rnosymfollow" => Recursive { set: true, attr: sys::MOUNT_ATTR_NOSYMFOLLOW },
        "rsymfollow" => Recursive { set: false, attr: sys::MOUNT_ATTR_NOSYMFOLLOW },
        "rnoatime" => RecursiveAtime(sys::MOUNT_ATTR_NOATIME),
        "rstrictatime" => RecursiveAtime(sys::MOUNT_ATTR_STRICTATIME),
        // Not noatime, not strictatime: the kernel's default, relatime. (runc puts NOATIME or
        // STRICTATIME alone in attr_clr for these, which the kernel refuses with EINVAL: the
        // access-time bits are cleared all together or not at all.)
        "rrelatime" | "ratime" | "rnostrictatime" => RecursiveAtime(sys::MOUNT_ATTR_RELATIME),
        "rnorelatime" => Meaning::Nothing,
        "idmap" | "ridmap" => Meaning::Refused("an id-mapped mount"),
        "tmpcopyup" => Meaning::Refused("copying the image's files up into a tmpfs"),
        _ => match propagation(option) {
            Some(p) => Meaning::Propagation(p),
            None => Meaning::Data,
        },
    }
}

/// Options in order, a later one overriding an earlier one it contradicts (`ro,rw` is rw).
pub(super) fn parse_options(field: &str, options: &[String]) -> Result<Options, SpecError> {
    let mut o = Options::default();
    for (i, option) in options.iter().enumerate() {
        let at = || format!("{field}[{i}]");
        checks::no_nul(&at(), option)?;
        match meaning(option) {
            Meaning::Flag { set: true, bits } => {
                o.flags |= u64::from(bits);
                o.cleared_flags &= !u64::from(bits);
            }
            Meaning::Flag { set: false, bits } => {
                o.flags &= !u64::from(bits);
                o.cleared_flags |= u64::from(bits);
            }
            // `bind,rbind` in either order is recursive, as in runc (MS_REC is never taken back).
            Meaning::Bind { recursive } => o.bind = Some(recursive || o.bind == Some(true)),
            Meaning::Propagation(p) => o.propagation.push(p),
            Meaning::Recursive { set: true, attr } => {
                o.recursive_set |= u64::from(attr);
                o.recursive_clear &= !u64::from(attr);
            }
            Meaning::Recursive { set: false, attr } => {
                o.recursive_clear |= u64::from(attr);
                o.recursive_set &= !u64::from(attr);
            }
            Meaning::RecursiveAtime(mode) => {
                // mount_setattr(2): an access-time mode in attr_set needs all of MOUNT_ATTR__ATIME
                // in attr_clr.
                let atime = u64::from(sys::MOUNT_ATTR__ATIME);
                o.recursive_set = (o.recursive_set & !atime) | u64::from(mode);
                o.recursive_clear |= atime;
            }
            Meaning::Nothing => {}
            Meaning::Refused(what) => {
                return Err(SpecError::unsupported_value(at(), format!("{option:?} ({what})")))
            }
            Meaning::Data => o.data.push(option.clone()),
        }
    }
    Ok(o)
}

/// A propagation option or `rootfsPropagation` value.
pub(super) fn propagation(name: &str) -> Option<Propagation> {
    let (recursive, kind) = match name.strip_prefix('r') {
        Some(rest @ ("private" | "shared" | "slave" | "unbindable")) => (true, rest),
        _ => (false, name),
    };
    Some(match kind {
        "private" => Propagation::Private { recursive },
        "shared" => Propagation::Shared { recursive },
        "slave" => Propagation::Slave { recursive },
        "unbindable" => Propagation::Unbindable { recursive },
        _ => return None,
    })
}
