//! The container's mounts as data: a list of operations built from the config and what the front
//! end prepared, run in order by one small executor in the container's first process
//! (`rootfs::execute`). Built without touching anything, so what a container gets is unit-tested
//! without root.
//!
//! Order, as runc and crun do it: the spec's mounts in the order given; then the device nodes (the
//! host's default nodes bound in, the spec's `linux.devices` made with mknod, the front end's);
//! then /dev's symlinks; then the front end's own trees (the /etc files, volumes). The root is
//! attached before and pivoted into after; masks and read-only paths come after the pivot.

use crate::spec::{Config, DeviceKind, Mount, MountKind, NamespaceKind, Propagation};
use std::path::{Path, PathBuf};

/// Where an attached mount comes from: prepared in spawner, before the container exists, so that
/// every host path is looked up once (a detached mount cannot be swapped afterwards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A host path cloned (`open_tree`), with its submounts when `recursive` (OCI `rbind`).
    HostPath { path: PathBuf, recursive: bool },
    /// One of the host's default device nodes (/dev/null…), checked to be that device.
    HostDevice { name: &'static str, major: u32, minor: u32 },
    /// The front end's `n`th prepared tree (`Extras::trees`).
    Prepared(usize),
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A new file system at `target`: `fstype` configured with `options` (`key=value`, or a flag
    /// `key` with an empty value) and mount attributes `attrs` (`MOUNT_ATTR_*`).
    NewFs { target: PathBuf, fstype: String, source: String, options: Vec<(String, String)>, attrs: u64 },
    /// The cgroup file system(s) for the container's cgroup (OCI type `cgroup`).
    Cgroups { target: PathBuf, attrs: u64 },
    /// `sources[source]` attached at `target` (made as a directory or a file, as the source is,
    /// where missing), with `attrs` set and `cleared` cleared on its top mount and
    /// `recursive_set`/`recursive_clear` on every mount of it.
    Attach {
        target: PathBuf,
        source: usize,
        attrs: u64,
        cleared: u64,
        recursive_set: u64,
        recursive_clear: u64,
    },
    /// Files of the directory `sources[source]` bound over files of the container (the front end's
    /// /etc files): `(name in the source, target)`.
    AttachFiles { source: usize, files: Vec<(String, PathBuf)> },
    /// A node made with mknod (OCI `linux.devices`).
    Mknod { target: PathBuf, kind: DeviceKind, major: u32, minor: u32, mode: u32, uid: u32, gid: u32 },
    /// A symlink at `target` pointing at `to`, unless something is there already.
    Symlink { target: PathBuf, to: String },
    /// A propagation change of the mount at `target`.
    Propagate { target: PathBuf, propagation: Propagation },
}

/// The plan: the sources spawner prepares, and the operations the container runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub sources: Vec<Source>,
    pub ops: Vec<Op>,
    /// The source the masks bind over files: the host's /dev/null.
    pub devnull: usize,
}

/// What the front end adds to the spec's mounts (the paths of its prepared trees, in order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrontEndMounts {
    /// Host device nodes given with --device: (prepared tree index, target).
    pub devices: Vec<(usize, PathBuf)>,
    /// A directory whose files are bound over /etc files: (prepared tree index, names).
    pub etc_files: Option<(usize, Vec<String>)>,
    /// Volumes: (prepared tree index, target).
    pub volumes: Vec<(usize, PathBuf)>,
}

/// The default nodes every container gets (OCI: "the runtime MUST supply these devices"), with the
/// numbers the host's must have.
pub const DEFAULT_DEVICES: [(&str, u32, u32); 6] =
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];

/// The mount flags (MS_*) that map onto mount attributes (MOUNT_ATTR_*).
const FLAG_ATTRS: [(u64, u64); 7] = [
    (linux_raw_sys::general::MS_RDONLY as u64, linux_raw_sys::general::MOUNT_ATTR_RDONLY as u64),
    (linux_raw_sys::general::MS_NOSUID as u64, linux_raw_sys::general::MOUNT_ATTR_NOSUID as u64),
    (linux_raw_sys::general::MS_NODEV as u64, linux_raw_sys::general::MOUNT_ATTR_NODEV as u64),
    (linux_raw_sys::general::MS_NOEXEC as u64, linux_raw_sys::general::MOUNT_ATTR_NOEXEC as u64),
    (linux_raw_sys::general::MS_NOATIME as u64, linux_raw_sys::general::MOUNT_ATTR_NOATIME as u64),
    (linux_raw_sys::general::MS_NODIRATIME as u64, linux_raw_sys::general::MOUNT_ATTR_NODIRATIME as u64),
    (linux_raw_sys::general::MS_STRICTATIME as u64, linux_raw_sys::general::MOUNT_ATTR_STRICTATIME as u64),
];

/// The mount attributes for mount(2) flags; flags with no attribute are the file system's (see
/// [`superblock_options`]).
pub fn attrs_of(flags: u64) -> u64 {
    FLAG_ATTRS.iter().filter(|(flag, _)| flags & flag != 0).fold(0, |attrs, (_, attr)| attrs | attr)
}

/// mount(2) flags that are superblock options of a new file system (`sync`, `dirsync`,
/// `lazytime`, `mand`), as fsconfig takes them.
fn superblock_options(flags: u64) -> Vec<(String, String)> {
    use linux_raw_sys::general::{MS_DIRSYNC, MS_LAZYTIME, MS_MANDLOCK, MS_SYNCHRONOUS};
    [(MS_SYNCHRONOUS, "sync"), (MS_DIRSYNC, "dirsync"), (MS_LAZYTIME, "lazytime"), (MS_MANDLOCK, "mand")]
        .iter()
        .filter(|(flag, _)| flags & u64::from(*flag) != 0)
        .map(|(_, name)| (name.to_string(), String::new()))
        .collect()
}

/// A file system's `data` (`mode=755,size=65536k,newinstance`) as fsconfig options.
fn data_options(data: &str) -> Vec<(String, String)> {
    data.split(',')
        .filter(|o| !o.is_empty())
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (o.to_string(), String::new()),
        })
        .collect()
}

/// Builds the plan for `config` and the front end's additions.
pub fn plan(config: &Config, front_end: &FrontEndMounts) -> Plan {
    let mut plan = Plan::default();
    let userns = config.namespaces.iter().any(|ns| ns.kind == NamespaceKind::User && ns.path.is_none());
    for mount in &config.mounts {
        match userns {
            true => {
                if let Some(mount) = in_user_namespace(config, mount) {
                    add_mount(&mut plan, &mount)
                }
            }
            false => add_mount(&mut plan, mount),
        }
    }
    let (config_devices, devpts) = (&config.devices, config.mounts.iter().any(is_devpts));
    // The host's default nodes, unless the spec makes one at the same place; /dev/null always,
    // first: the masks clone it (by fd) later.
    for (name, major, minor) in DEFAULT_DEVICES {
        let target = PathBuf::from(format!("/dev/{name}"));
        if name != "null" && config_devices.iter().any(|d| d.path == target) {
            continue;
        }
        let source = push_source(&mut plan, Source::HostDevice { name, major, minor });
        if name == "null" {
            plan.devnull = source;
        }
        plan.ops.push(attach(target, source));
    }
    for device in config_devices.iter().filter(|d| d.path != Path::new("/dev/null")) {
        // No mknod in a user namespace: the host's node at the same path is bound in (as runc does).
        if userns {
            let source =
                push_source(&mut plan, Source::HostPath { path: device.path.clone(), recursive: false });
            plan.ops.push(attach(device.path.clone(), source));
            continue;
        }
        plan.ops.push(Op::Mknod {
            target: device.path.clone(),
            kind: device.kind,
            major: device.major,
            minor: device.minor,
            mode: device.mode,
            uid: device.uid,
            gid: device.gid,
        });
    }
    for (tree, target) in &front_end.devices {
        let source = push_source(&mut plan, Source::Prepared(*tree));
        plan.ops.push(attach(target.clone(), source));
    }
    // OCI's /dev symlinks, and /dev/ptmx into the container's own devpts.
    let mut links = vec![
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ];
    if devpts {
        links.insert(0, ("/dev/ptmx", "pts/ptmx"));
    }
    for (target, to) in links {
        plan.ops.push(Op::Symlink { target: target.into(), to: to.into() });
    }
    if let Some((tree, names)) = &front_end.etc_files {
        let source = push_source(&mut plan, Source::Prepared(*tree));
        let files = names.iter().map(|n| (n.clone(), Path::new("/etc").join(n))).collect();
        plan.ops.push(Op::AttachFiles { source, files });
    }
    for (tree, target) in &front_end.volumes {
        let source = push_source(&mut plan, Source::Prepared(*tree));
        plan.ops.push(attach(target.clone(), source));
    }
    plan
}

/// A mount as a container with a user namespace of its own can have it. sysfs can only be mounted
/// by the owner of the network namespace: when the container's is not one it makes, it gets the
/// host's /sys bound instead (read-only as asked), as runc does. mqueue can only be mounted by the
/// owner of the IPC namespace: when the container's is not one it makes, it gets none (the host may
/// have none mounted to bind).
fn in_user_namespace(config: &Config, mount: &Mount) -> Option<Mount> {
    // A namespace made now belongs to the container's user namespace; the host's, or one given by
    // path, does not (with a user namespace given by path, one given by path may; it is bound then
    // too, the safe side).
    let own = |kind| config.namespaces.iter().any(|ns| ns.kind == kind && ns.path.is_none());
    match &mount.kind {
        MountKind::Fs { fstype, .. } if fstype == "sysfs" && !own(NamespaceKind::Network) => Some(Mount {
            kind: MountKind::Bind { source: "/sys".into(), recursive: true },
            // Every mount below the host's /sys gets the flags too (read-only above all).
            recursive_set: mount.recursive_set | attrs_of(mount.flags),
            data: String::new(),
            ..mount.clone()
        }),
        MountKind::Fs { fstype, .. } if fstype == "mqueue" && !own(NamespaceKind::Ipc) => None,
        _ => Some(mount.clone()),
    }
}

fn is_devpts(mount: &Mount) -> bool {
    matches!(&mount.kind, MountKind::Fs { fstype, .. } if fstype == "devpts")
        && mount.destination == Path::new("/dev/pts")
}

fn push_source(plan: &mut Plan, source: Source) -> usize {
    plan.sources.push(source);
    plan.sources.len() - 1
}

fn attach(target: PathBuf, source: usize) -> Op {
    Op::Attach { target, source, attrs: 0, cleared: 0, recursive_set: 0, recursive_clear: 0 }
}

fn add_mount(plan: &mut Plan, mount: &Mount) {
    let target = mount.destination.clone();
    match &mount.kind {
        MountKind::Fs { fstype, .. } if fstype == "cgroup" || fstype == "cgroup2" => {
            plan.ops.push(Op::Cgroups { target: target.clone(), attrs: attrs_of(mount.flags) });
        }
        MountKind::Fs { fstype, source } => {
            let mut options = data_options(&mount.data);
            options.extend(superblock_options(mount.flags));
            plan.ops.push(Op::NewFs {
                target: target.clone(),
                fstype: fstype.clone(),
                source: source.clone(),
                options,
                attrs: attrs_of(mount.flags) | mount.recursive_set,
            });
        }
        MountKind::Bind { source, recursive } => {
            let index = push_source(plan, Source::HostPath { path: source.clone(), recursive: *recursive });
            plan.ops.push(Op::Attach {
                target: target.clone(),
                source: index,
                attrs: attrs_of(mount.flags),
                cleared: attrs_of(mount.cleared_flags),
                recursive_set: mount.recursive_set,
                recursive_clear: mount.recursive_clear,
            });
        }
    }
    for propagation in &mount.propagation {
        plan.ops.push(Op::Propagate { target: target.clone(), propagation: *propagation });
    }
}

/// The clone(2) flags for the namespaces the config makes new (not those joined by path). The
/// cgroup namespace is left out: the container's first process unshares it once it is in its
/// cgroup, so that the cgroup becomes its root; so is the time namespace, whose clock offsets
/// must be written before anything runs in it.
pub fn clone_flags(config: &Config) -> u64 {
    config
        .namespaces
        .iter()
        .filter(|ns| ns.path.is_none() && !matches!(ns.kind, NamespaceKind::Cgroup | NamespaceKind::Time))
        .fold(0, |flags, ns| flags | u64::from(ns.kind.clone_flag()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Device, Namespace};
    use linux_raw_sys::general as g;

    fn fs(destination: &str, fstype: &str, flags: u32, data: &str) -> Mount {
        Mount {
            destination: destination.into(),
            kind: MountKind::Fs { fstype: fstype.into(), source: fstype.into() },
            flags: flags.into(),
            cleared_flags: 0,
            recursive_set: 0,
            recursive_clear: 0,
            propagation: Vec::new(),
            data: data.into(),
        }
    }

    fn config(mounts: Vec<Mount>) -> Config {
        Config {
            oci_version: "1.0.2".into(),
            root: crate::spec::Root { path: "/rootfs".into(), readonly: false },
            mounts,
            process: None,
            hostname: None,
            domainname: None,
            namespaces: Vec::new(),
            uid_mappings: Vec::new(),
            gid_mappings: Vec::new(),
            sysctl: Default::default(),
            resources: Default::default(),
            cgroups_path: None,
            devices: Vec::new(),
            seccomp: None,
            rootfs_propagation: None,
            masked_paths: Vec::new(),
            readonly_paths: Vec::new(),
            personality: None,
            time_offsets: Vec::new(),
            hooks: Default::default(),
            annotations: Default::default(),
        }
    }

    #[test]
    fn spec_mounts_in_order_then_devices_links_and_front_end_trees() {
        let nosuid_noexec = g::MS_NOSUID | g::MS_NOEXEC;
        let mut bind = fs("/data", "bind", g::MS_RDONLY, "");
        bind.kind = MountKind::Bind { source: "/srv/data".into(), recursive: true };
        bind.recursive_set = g::MOUNT_ATTR_NODEV as u64;
        bind.propagation = vec![Propagation::Private { recursive: true }];
        let config = config(vec![
            fs("/proc", "proc", nosuid_noexec | g::MS_NODEV, ""),
            fs("/dev", "tmpfs", nosuid_noexec, "mode=755,size=65536k"),
            fs("/dev/pts", "devpts", nosuid_noexec, "newinstance,ptmxmode=0666"),
            fs("/sys/fs/cgroup", "cgroup", g::MS_RDONLY, ""),
            bind,
        ]);
        let front_end = FrontEndMounts {
            devices: vec![(0, "/dev/xda".into())],
            etc_files: Some((1, vec!["hostname".into()])),
            volumes: vec![(2, "/vol".into())],
        };
        let plan = plan(&config, &front_end);
        let attrs = |flags: u32| attrs_of(flags.into());
        assert_eq!(
            plan.ops[..5],
            [
                Op::NewFs {
                    target: "/proc".into(),
                    fstype: "proc".into(),
                    source: "proc".into(),
                    options: vec![],
                    attrs: attrs(nosuid_noexec | g::MS_NODEV)
                },
                Op::NewFs {
                    target: "/dev".into(),
                    fstype: "tmpfs".into(),
                    source: "tmpfs".into(),
                    options: vec![("mode".into(), "755".into()), ("size".into(), "65536k".into())],
                    attrs: attrs(nosuid_noexec)
                },
                Op::NewFs {
                    target: "/dev/pts".into(),
                    fstype: "devpts".into(),
                    source: "devpts".into(),
                    options: vec![("newinstance".into(), "".into()), ("ptmxmode".into(), "0666".into())],
                    attrs: attrs(nosuid_noexec)
                },
                Op::Cgroups { target: "/sys/fs/cgroup".into(), attrs: g::MOUNT_ATTR_RDONLY as u64 },
                Op::Attach {
                    target: "/data".into(),
                    source: 0,
                    attrs: g::MOUNT_ATTR_RDONLY as u64,
                    cleared: 0,
                    recursive_set: g::MOUNT_ATTR_NODEV as u64,
                    recursive_clear: 0
                },
            ]
        );
        assert_eq!(plan.sources[0], Source::HostPath { path: "/srv/data".into(), recursive: true });
        assert_eq!(
            plan.ops[5],
            Op::Propagate { target: "/data".into(), propagation: Propagation::Private { recursive: true } }
        );
        // The six default nodes, /dev/null first (the masks' source), then --device, the links
        // (ptmx: a devpts is mounted), the /etc files and the volume.
        let targets: Vec<String> = plan.ops[6..]
            .iter()
            .map(|op| match op {
                Op::Attach { target, .. } | Op::Symlink { target, .. } => target.display().to_string(),
                Op::AttachFiles { files, .. } => files[0].1.display().to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            targets,
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty",
                "/dev/xda",
                "/dev/ptmx",
                "/dev/fd",
                "/dev/stdin",
                "/dev/stdout",
                "/dev/stderr",
                "/etc/hostname",
                "/vol"
            ]
        );
        assert_eq!(plan.sources[plan.devnull], Source::HostDevice { name: "null", major: 1, minor: 3 });
        assert_eq!(plan.sources.last(), Some(&Source::Prepared(2)));
    }

    #[test]
    fn spec_devices_are_made_and_replace_a_default() {
        let mut config = config(vec![]);
        config.devices = vec![
            Device {
                path: "/dev/zero".into(),
                kind: DeviceKind::Char,
                major: 1,
                minor: 5,
                mode: 0o600,
                uid: 0,
                gid: 0,
            },
            Device {
                path: "/dev/fuse".into(),
                kind: DeviceKind::Char,
                major: 10,
                minor: 229,
                mode: 0o666,
                uid: 0,
                gid: 0,
            },
        ];
        let plan = plan(&config, &FrontEndMounts::default());
        let mknods: Vec<&Path> = plan
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Mknod { target, .. } => Some(target.as_path()),
                _ => None,
            })
            .collect();
        assert_eq!(mknods, [Path::new("/dev/zero"), Path::new("/dev/fuse")]);
        assert!(!plan.sources.contains(&Source::HostDevice { name: "zero", major: 1, minor: 5 }));
        // No devpts mount: no /dev/ptmx link.
        assert!(!plan
            .ops
            .iter()
            .any(|op| matches!(op, Op::Symlink { target, .. } if target == Path::new("/dev/ptmx"))));
    }

    #[test]
    fn new_namespaces_become_clone_flags() {
        let mut config = config(vec![]);
        config.namespaces = [
            (NamespaceKind::Mount, None),
            (NamespaceKind::Pid, None),
            (NamespaceKind::Network, Some("/run/netns/x")),
            (NamespaceKind::Cgroup, None),
            (NamespaceKind::Uts, None),
        ]
        .into_iter()
        .map(|(kind, path)| Namespace { kind, path: path.map(PathBuf::from) })
        .collect();
        assert_eq!(clone_flags(&config), (g::CLONE_NEWNS | g::CLONE_NEWPID | g::CLONE_NEWUTS) as u64);
    }

    #[test]
    fn a_user_namespace_binds_what_it_cannot_mount_or_make() {
        let ns = |kind| Namespace { kind, path: None };
        let mut config = config(vec![
            fs("/sys", "sysfs", g::MS_RDONLY | g::MS_NOSUID, ""),
            fs("/dev/mqueue", "mqueue", g::MS_NOSUID, ""),
            fs("/proc", "proc", 0, ""),
        ]);
        config.namespaces = vec![ns(NamespaceKind::User), ns(NamespaceKind::Mount), ns(NamespaceKind::Pid)];
        config.devices = vec![Device {
            path: "/dev/fuse".into(),
            kind: DeviceKind::Char,
            major: 10,
            minor: 229,
            mode: 0o666,
            uid: 0,
            gid: 0,
        }];
        let plan = plan(&config, &FrontEndMounts::default());
        // The host's network namespace: its /sys, read-only all the way down; its IPC namespace: no
        // mqueue; proc as asked (the PID namespace is the container's).
        let ro_nosuid = attrs_of((g::MS_RDONLY | g::MS_NOSUID).into());
        assert_eq!(
            plan.ops[0],
            Op::Attach {
                target: "/sys".into(),
                source: 0,
                attrs: ro_nosuid,
                cleared: 0,
                recursive_set: ro_nosuid,
                recursive_clear: 0
            }
        );
        assert_eq!(plan.sources[0], Source::HostPath { path: "/sys".into(), recursive: true });
        assert!(matches!(&plan.ops[1], Op::NewFs { fstype, .. } if fstype == "proc"));
        assert!(!plan.ops.iter().any(|op| matches!(op, Op::Mknod { .. })), "no mknod in a user namespace");
        assert!(plan.sources.contains(&Source::HostPath { path: "/dev/fuse".into(), recursive: false }));
        // With namespaces of its own, it mounts both itself.
        config.namespaces.extend([ns(NamespaceKind::Network), ns(NamespaceKind::Ipc)]);
        let plan = super::plan(&config, &FrontEndMounts::default());
        let fstypes: Vec<&str> = plan.ops[..3]
            .iter()
            .filter_map(|op| match op {
                Op::NewFs { fstype, .. } => Some(fstype.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(fstypes, ["sysfs", "mqueue", "proc"]);
    }
}
