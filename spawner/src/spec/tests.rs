//! The configs engines write, validated whole, and one test per kind of refusal checking that the
//! one-line message names the field.

use super::*;
use crate::cgroup::{Access, DeviceKind as RuleKind, DeviceRule};
use crate::seccomp::{native, Action, ArgCondition, Flag, Op};
use linux_raw_sys::general as sys;
use oci_spec::runtime as oci;
use rustix::thread::CapabilitySet;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const BUNDLE: &str = "/run/bundle";

fn spec_of(text: &str) -> oci::Spec {
    serde_json::from_str(text).unwrap()
}

fn config_of(text: &str) -> Config {
    validate(&spec_of(text), Path::new(BUNDLE)).unwrap()
}

/// What `runc spec` (runc 1.2) prints.
const RUNC_SPEC: &str = r#"{
	"ociVersion": "1.2.0",
	"process": {
		"terminal": true,
		"user": {
			"uid": 0,
			"gid": 0
		},
		"args": [
			"sh"
		],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"effective": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"permitted": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			]
		},
		"rlimits": [
			{
				"type": "RLIMIT_NOFILE",
				"hard": 1024,
				"soft": 1024
			}
		],
		"noNewPrivileges": true
	},
	"root": {
		"path": "rootfs",
		"readonly": true
	},
	"hostname": "runc",
	"mounts": [
		{
			"destination": "/proc",
			"type": "proc",
			"source": "proc"
		},
		{
			"destination": "/dev",
			"type": "tmpfs",
			"source": "tmpfs",
			"options": [
				"nosuid",
				"strictatime",
				"mode=755",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/pts",
			"type": "devpts",
			"source": "devpts",
			"options": [
				"nosuid",
				"noexec",
				"newinstance",
				"ptmxmode=0666",
				"mode=0620",
				"gid=5"
			]
		},
		{
			"destination": "/dev/shm",
			"type": "tmpfs",
			"source": "shm",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"mode=1777",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/mqueue",
			"type": "mqueue",
			"source": "mqueue",
			"options": [
				"nosuid",
				"noexec",
				"nodev"
			]
		},
		{
			"destination": "/sys",
			"type": "sysfs",
			"source": "sysfs",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"ro"
			]
		},
		{
			"destination": "/sys/fs/cgroup",
			"type": "cgroup",
			"source": "cgroup",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"relatime",
				"ro"
			]
		}
	],
	"linux": {
		"resources": {
			"devices": [
				{
					"allow": false,
					"access": "rwm"
				}
			]
		},
		"namespaces": [
			{
				"type": "pid"
			},
			{
				"type": "network"
			},
			{
				"type": "ipc"
			},
			{
				"type": "uts"
			},
			{
				"type": "mount"
			},
			{
				"type": "cgroup"
			}
		],
		"maskedPaths": [
			"/proc/acpi",
			"/proc/asound",
			"/proc/kcore",
			"/proc/keys",
			"/proc/latency_stats",
			"/proc/timer_list",
			"/proc/timer_stats",
			"/proc/sched_debug",
			"/sys/firmware",
			"/proc/scsi"
		],
		"readonlyPaths": [
			"/proc/bus",
			"/proc/fs",
			"/proc/irq",
			"/proc/sys",
			"/proc/sysrq-trigger"
		]
	}
}"#;

fn caps(names: &[&str]) -> CapabilitySet {
    names
        .iter()
        .map(|n| crate::container::security::parse_capability(n).unwrap())
        .fold(CapabilitySet::empty(), |a, b| a | b)
}

fn fs(destination: &str, fstype: &str, source: &str, flags: u32, data: &str) -> Mount {
    Mount {
        destination: destination.into(),
        kind: MountKind::Fs { fstype: fstype.into(), source: source.into() },
        flags: u64::from(flags),
        cleared_flags: 0,
        recursive_set: 0,
        recursive_clear: 0,
        propagation: vec![],
        data: data.into(),
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn paths(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

#[test]
fn runc_spec_is_exactly_what_the_file_says() {
    let (nosuid, noexec, nodev, ro) = (sys::MS_NOSUID, sys::MS_NOEXEC, sys::MS_NODEV, sys::MS_RDONLY);
    let runc_caps = caps(&["AUDIT_WRITE", "KILL", "NET_BIND_SERVICE"]);
    let ns = |kind| Namespace { kind, path: None };
    let expected = Config {
        oci_version: "1.2.0".into(),
        root: Root { path: "/run/bundle/rootfs".into(), readonly: true },
        mounts: vec![
            fs("/proc", "proc", "proc", 0, ""),
            fs("/dev", "tmpfs", "tmpfs", nosuid | sys::MS_STRICTATIME, "mode=755,size=65536k"),
            fs("/dev/pts", "devpts", "devpts", nosuid | noexec, "newinstance,ptmxmode=0666,mode=0620,gid=5"),
            fs("/dev/shm", "tmpfs", "shm", nosuid | noexec | nodev, "mode=1777,size=65536k"),
            fs("/dev/mqueue", "mqueue", "mqueue", nosuid | noexec | nodev, ""),
            fs("/sys", "sysfs", "sysfs", nosuid | noexec | nodev | ro, ""),
            fs("/sys/fs/cgroup", "cgroup", "cgroup", nosuid | noexec | nodev | sys::MS_RELATIME | ro, ""),
        ],
        process: Some(Process {
            args: strings(&["sh"]),
            env: strings(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ]),
            cwd: "/".into(),
            user: User { uid: 0, gid: 0, umask: None, additional_gids: vec![] },
            terminal: true,
            console_size: None,
            capabilities: Capabilities {
                bounding: runc_caps,
                effective: runc_caps,
                inheritable: CapabilitySet::empty(),
                permitted: runc_caps,
                ambient: CapabilitySet::empty(),
            },
            rlimits: vec![Rlimit { resource: sys::RLIMIT_NOFILE, soft: 1024, hard: 1024 }],
            no_new_privileges: true,
            oom_score_adj: None,
            apparmor_profile: None,
            selinux_label: None,
        }),
        hostname: Some("runc".into()),
        domainname: None,
        namespaces: vec![
            ns(NamespaceKind::Pid),
            ns(NamespaceKind::Network),
            ns(NamespaceKind::Ipc),
            ns(NamespaceKind::Uts),
            ns(NamespaceKind::Mount),
            ns(NamespaceKind::Cgroup),
        ],
        uid_mappings: vec![],
        gid_mappings: vec![],
        sysctl: Default::default(),
        resources: crate::cgroup::Limits { devices: vec![DeviceRule::DENY_ALL], ..Default::default() },
        cgroups_path: None,
        devices: vec![],
        seccomp: None,
        rootfs_propagation: None,
        masked_paths: paths(&[
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi",
        ]),
        readonly_paths: paths(&["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]),
        personality: None,
        time_offsets: Vec::new(),
        hooks: Hooks::default(),
        annotations: Default::default(),
    };
    assert_eq!(config_of(RUNC_SPEC), expected);
}

/// What dockerd (27, cgroupfs driver, `docker run -t -m 512m --memory-swap 1g --cpus 0.5
/// --cpu-shares 512 --cpuset-cpus 0-1 --pids-limit 100 -v /srv/data:/data:ro …`) hands runc, cut
/// to a few entries per list, with podman's annotations and a createRuntime hook of the kind
/// podman's hooks directory adds. NATIVE stands for this host's seccomp architecture.
const ENGINE_SPEC: &str = r#"{
  "ociVersion": "1.2.0",
  "process": {
    "terminal": true,
    "consoleSize": {"height": 50, "width": 200},
    "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [1000, 10]},
    "args": ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=3f4e5d6c7b8a", "TERM=xterm", "NGINX_VERSION=1.27.0", "EMPTY="],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"],
      "effective": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"],
      "permitted": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
    },
    "rlimits": [
      {"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1024},
      {"type": "RLIMIT_NPROC", "hard": 4194304, "soft": 4194304}
    ],
    "apparmorProfile": "docker-default",
    "oomScoreAdj": 0,
    "noNewPrivileges": true
  },
  "root": {"path": "/var/lib/docker/overlay2/9c1e0c2a/merged"},
  "hostname": "3f4e5d6c7b8a",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev/shm", "type": "bind", "source": "/var/lib/docker/containers/3f4e5d6c7b8a/mounts/shm", "options": ["rbind", "rprivate"]},
    {"destination": "/etc/resolv.conf", "type": "bind", "source": "/var/lib/docker/containers/3f4e5d6c7b8a/resolv.conf", "options": ["rbind", "rprivate"]},
    {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro", "rprivate"]},
    {"destination": "/cache", "type": "none", "source": "cache", "options": ["bind", "nosuid", "nodev", "rro"]}
  ],
  "hooks": {
    "prestart": [
      {"path": "/proc/4242/exe", "args": ["libnetwork-setkey", "-exec-root=/var/run/docker", "3f4e5d6c7b8a", "c0ffee"]}
    ],
    "createRuntime": [
      {"path": "/usr/libexec/oci/hooks.d/oci-nvidia-hook", "args": ["oci-nvidia-hook", "prestart"], "env": ["PATH=/usr/bin"], "timeout": 10}
    ],
    "poststop": [
      {"path": "/usr/bin/podman", "args": ["podman", "container", "cleanup"]}
    ]
  },
  "linux": {
    "sysctl": {
      "net.ipv4.ip_unprivileged_port_start": "0",
      "net.ipv4.ping_group_range": "0 2147483647",
      "kernel.shmmax": "68719476736"
    },
    "resources": {
      "devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": -1, "minor": -1, "access": "m"},
        {"allow": true, "type": "b", "major": -1, "minor": -1, "access": "m"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 136, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rw"}
      ],
      "memory": {"limit": 536870912, "swap": 1073741824, "reservation": 268435456, "kernel": -1, "disableOOMKiller": false},
      "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1"},
      "pids": {"limit": 100},
      "blockIO": {"weight": 500},
      "unified": {"memory.high": "400000000"}
    },
    "cgroupsPath": "/docker/3f4e5d6c7b8a",
    "namespaces": [
      {"type": "mount"},
      {"type": "network", "path": "/var/run/docker/netns/5f1a2b3c"},
      {"type": "uts"},
      {"type": "pid"},
      {"type": "ipc"},
      {"type": "cgroup"}
    ],
    "devices": [
      {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 8630, "uid": 0, "gid": 0},
      {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}
    ],
    "seccomp": {
      "defaultAction": "SCMP_ACT_ERRNO",
      "defaultErrnoRet": 1,
      "architectures": ["NATIVE", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
      "syscalls": [
        {"names": ["accept", "read", "write", "futex"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["no_such_syscall_yet"], "action": "SCMP_ACT_ALLOW"}
      ]
    },
    "rootfsPropagation": "rslave",
    "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/sys/firmware", "/sys/devices/virtual/powercap"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  },
  "annotations": {
    "io.container.manager": "libpod",
    "org.opencontainers.image.stopSignal": "15"
  }
}"#;

fn engine_spec() -> String {
    ENGINE_SPEC.replace("NATIVE", native::SCMP_ARCH)
}

#[test]
fn an_engine_config_is_read_whole() {
    let c = config_of(&engine_spec());
    assert_eq!(c.root, Root { path: "/var/lib/docker/overlay2/9c1e0c2a/merged".into(), readonly: false });

    let p = c.process.as_ref().unwrap();
    assert_eq!(p.args, strings(&["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]));
    assert_eq!(p.env.len(), 5);
    assert_eq!(p.user, User { uid: 1000, gid: 1000, umask: Some(0o22), additional_gids: vec![1000, 10] });
    assert_eq!((p.terminal, p.console_size), (true, Some((50, 200))));
    // Docker's default set.
    assert_eq!(p.capabilities.bounding.bits(), 0xa80425fb);
    assert_eq!(p.capabilities.effective, p.capabilities.bounding);
    assert_eq!(p.capabilities.ambient, CapabilitySet::empty());
    assert_eq!(
        p.rlimits,
        [
            Rlimit { resource: sys::RLIMIT_NOFILE, soft: 1024, hard: 1048576 },
            Rlimit { resource: sys::RLIMIT_NPROC, soft: 4194304, hard: 4194304 }
        ]
    );
    assert_eq!((p.oom_score_adj, p.apparmor_profile.as_deref()), (Some(0), Some("docker-default")));
    assert!(p.no_new_privileges);

    // The volume: `rbind,ro,rprivate`.
    let data = c.mounts.iter().find(|m| m.destination == Path::new("/data")).unwrap();
    assert_eq!(data.kind, MountKind::Bind { source: "/srv/data".into(), recursive: true });
    assert_eq!((data.flags, data.cleared_flags), (u64::from(sys::MS_RDONLY), 0));
    assert_eq!(data.propagation, [Propagation::Private { recursive: true }]);
    assert_eq!(data.data, "");
    // A bind by option on type `none`, its source in the bundle, read-only all the way down.
    let cache = c.mounts.last().unwrap();
    assert_eq!(cache.kind, MountKind::Bind { source: "/run/bundle/cache".into(), recursive: false });
    assert_eq!(cache.flags, u64::from(sys::MS_NOSUID | sys::MS_NODEV));
    assert_eq!((cache.recursive_set, cache.recursive_clear), (u64::from(sys::MOUNT_ATTR_RDONLY), 0));
    assert_eq!(c.mounts.len(), 10);

    assert_eq!(c.hooks.prestart.len(), 1);
    assert_eq!(c.hooks.prestart[0].args[0], "libnetwork-setkey");
    assert_eq!(
        c.hooks.create_runtime,
        [Hook {
            path: "/usr/libexec/oci/hooks.d/oci-nvidia-hook".into(),
            args: strings(&["oci-nvidia-hook", "prestart"]),
            env: strings(&["PATH=/usr/bin"]),
            timeout: Some(10),
        }]
    );
    assert_eq!((c.hooks.poststop.len(), c.hooks.poststop[0].timeout), (1, None));

    assert_eq!(c.sysctl.len(), 3);
    assert_eq!(c.sysctl["net.ipv4.ping_group_range"], "0 2147483647");
    let r = &c.resources;
    assert_eq!(
        (r.memory, r.memory_swap, r.memory_reservation),
        (Some(512 << 20), Some(1 << 30), Some(256 << 20))
    );
    assert_eq!(
        (r.cpu_shares, r.cpu_quota, r.cpu_period, r.cpus),
        (Some(512), Some(50000), Some(100000), None)
    );
    assert_eq!((r.cpuset_cpus.as_deref(), r.cpuset_mems.as_deref()), (Some("0-1"), None));
    assert_eq!((r.pids, r.block_io_weight), (Some(100), Some(500)));
    assert_eq!(r.unified.get("memory.high").map(String::as_str), Some("400000000"));
    let rule = |allow, kind, major, minor, access| DeviceRule { allow, kind, major, minor, access };
    assert_eq!(
        r.devices,
        [
            DeviceRule::DENY_ALL,
            rule(true, RuleKind::Char, None, None, Access::MKNOD),
            rule(true, RuleKind::Block, None, None, Access::MKNOD),
            rule(true, RuleKind::Char, Some(1), Some(3), Access::ALL),
            rule(true, RuleKind::Char, Some(136), None, Access::ALL),
            rule(true, RuleKind::Char, Some(10), Some(200), Access::READ | Access::WRITE),
        ]
    );
    assert_eq!(c.cgroups_path, Some("/docker/3f4e5d6c7b8a".into()));
    assert_eq!(
        c.namespaces[1],
        Namespace { kind: NamespaceKind::Network, path: Some("/var/run/docker/netns/5f1a2b3c".into()) }
    );
    assert_eq!(c.namespaces.len(), 6);
    assert_eq!(
        c.devices,
        [
            // fileMode 8630 is 0o20666: the type bits go, the permissions stay.
            Device {
                path: "/dev/fuse".into(),
                kind: DeviceKind::Char,
                major: 10,
                minor: 229,
                mode: 0o666,
                uid: 0,
                gid: 0
            },
            Device {
                path: "/dev/sda".into(),
                kind: DeviceKind::Block,
                major: 8,
                minor: 0,
                mode: 0o666,
                uid: 0,
                gid: 0
            },
        ]
    );

    let profile = c.seccomp.as_ref().unwrap();
    assert_eq!(profile.default_action, Action::Errno(1));
    assert_eq!(profile.architectures, strings(&[native::SCMP_ARCH, "SCMP_ARCH_X86", "SCMP_ARCH_X32"]));
    assert_eq!(profile.flags, []);
    assert_eq!(profile.syscalls.len(), 5);
    assert_eq!(profile.syscalls[0].names, ["accept", "read", "write", "futex"]);
    assert_eq!(
        profile.syscalls[2].args,
        [ArgCondition { index: 0, op: Op::MaskedEqual, value: 0x7e02_0000, value_two: 0 }]
    );
    assert_eq!(profile.syscalls[3].action, Action::Errno(38));
    // It compiles (an unknown syscall name is skipped, as runc does).
    assert!(profile.compile().is_ok());

    assert_eq!(c.rootfs_propagation, Some(Propagation::Slave { recursive: true }));
    assert_eq!(c.masked_paths.len(), 6);
    assert_eq!(c.readonly_paths[4], Path::new("/proc/sysrq-trigger"));
    assert_eq!(c.annotations.get("io.container.manager").map(String::as_str), Some("libpod"));
}

/// The one-line error for the minimal valid spec changed by `patch`.
fn refusal(patch: impl FnOnce(&mut Value)) -> String {
    let mut spec = json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"},
        "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}]}
    });
    patch(&mut spec);
    let spec: oci::Spec = serde_json::from_value(spec).unwrap();
    let e = validate(&spec, Path::new(BUNDLE)).unwrap_err().to_string();
    assert!(!e.contains('\n'), "{e}");
    e
}

/// Sets `value` at the JSON pointer `at`, making the objects on the way.
fn set(spec: &mut Value, at: &str, value: Value) {
    let (parent, key) = at.rsplit_once('/').unwrap();
    let mut node = spec;
    for part in parent.split('/').skip(1) {
        node = node.as_object_mut().unwrap().entry(part).or_insert(json!({}));
    }
    node[key] = value;
}

fn refused(at: &str, value: Value) -> String {
    refusal(|s| set(s, at, value))
}

#[test]
fn the_minimal_spec_is_valid() {
    let mut spec = json!({"ociVersion": "1.0.0-rc5", "root": {"path": "/abs/rootfs"}});
    let c = validate(&serde_json::from_value(spec.clone()).unwrap(), Path::new(BUNDLE)).unwrap();
    assert_eq!((c.root.path, c.process, c.namespaces), ("/abs/rootfs".into(), None, vec![]));
    for ok in ["1.0.0", "1.0.2-dev", "1.3.0", "1.2.1+dev", "1.10.0-rc.1"] {
        spec["ociVersion"] = json!(ok);
        assert!(validate(&serde_json::from_value(spec.clone()).unwrap(), Path::new(BUNDLE)).is_ok(), "{ok}");
    }
}

#[test]
fn versions_other_than_1_x() {
    assert_eq!(
        refused("/ociVersion", json!("2.0.0")),
        r#"config.json: ociVersion: "2.0.0": spawner implements runtime spec 1.x"#
    );
    assert_eq!(
        refused("/ociVersion", json!("0.5.0-dev")),
        r#"config.json: ociVersion: "0.5.0-dev": spawner implements runtime spec 1.x"#
    );
    assert_eq!(
        refused("/ociVersion", json!("1.2")),
        r#"config.json: ociVersion: "1.2" is not a version (MAJOR.MINOR.PATCH)"#
    );
    assert_eq!(refused("/ociVersion", json!("")), "config.json: ociVersion: required");
}

#[test]
fn root_is_required() {
    assert_eq!(refusal(|s| drop(s.as_object_mut().unwrap().remove("root"))), "config.json: root: required");
    assert_eq!(refused("/root/path", json!("")), "config.json: root.path: required");
}

#[test]
fn mount_refusals_name_the_mount() {
    let mount = |m: Value| refused("/mounts", json!([{"destination": "/ok", "type": "tmpfs"}, m]));
    assert_eq!(
        mount(json!({"destination": "data", "type": "bind", "source": "/srv"})),
        r#"config.json: mounts[1].destination: "data" is not an absolute path"#
    );
    assert_eq!(
        mount(json!({"destination": "/data", "source": "tmpfs"})),
        "config.json: mounts[1].type: required for a mount that is not a bind mount"
    );
    assert_eq!(
        mount(json!({"destination": "/data", "type": "bind"})),
        "config.json: mounts[1].source: required for a bind mount"
    );
    assert_eq!(
        mount(
            json!({"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "idmap"]})
        ),
        r#"config.json: mounts[1].options[1]: "idmap" (an id-mapped mount) is not supported by spawner"#
    );
    assert_eq!(
        mount(json!({"destination": "/tmp", "type": "tmpfs", "options": ["tmpcopyup"]})),
        r#"config.json: mounts[1].options[0]: "tmpcopyup" (copying the image's files up into a tmpfs) is not supported by spawner"#
    );
    let idmapped = json!({"destination": "/d", "type": "bind", "source": "/srv",
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}], "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]});
    assert_eq!(
        mount(idmapped),
        "config.json: mounts[1].uidMappings: an id-mapped mount is not supported by spawner"
    );
}

#[test]
fn mount_options_follow_runcs_table() {
    let options = |list: &[&str]| mounts::parse_options("o", &strings(list)).unwrap();
    // Later options override earlier ones, and what is turned off is said so.
    let o = options(&["ro", "rw", "nosuid", "suid", "nodev", "noexec", "exec", "mode=0755", "size=1m"]);
    assert_eq!(o.flags, u64::from(sys::MS_NODEV));
    assert_eq!(o.cleared_flags, u64::from(sys::MS_RDONLY | sys::MS_NOSUID | sys::MS_NOEXEC));
    assert_eq!(o.data, ["mode=0755", "size=1m"]);
    let o = options(&[
        "sync",
        "dirsync",
        "noatime",
        "nodiratime",
        "lazytime",
        "mand",
        "remount",
        "nosymfollow",
        "defaults",
    ]);
    let all = sys::MS_SYNCHRONOUS
        | sys::MS_DIRSYNC
        | sys::MS_NOATIME
        | sys::MS_NODIRATIME
        | sys::MS_LAZYTIME
        | sys::MS_MANDLOCK
        | sys::MS_REMOUNT
        | sys::MS_NOSYMFOLLOW;
    assert_eq!((o.flags, o.data.len()), (u64::from(all), 0));
    let o = options(&[
        "async",
        "atime",
        "diratime",
        "nolazytime",
        "nomand",
        "symfollow",
        "norelatime",
        "nostrictatime",
    ]);
    let cleared = sys::MS_SYNCHRONOUS
        | sys::MS_NOATIME
        | sys::MS_NODIRATIME
        | sys::MS_LAZYTIME
        | sys::MS_MANDLOCK
        | sys::MS_NOSYMFOLLOW
        | sys::MS_RELATIME
        | sys::MS_STRICTATIME;
    assert_eq!((o.flags, o.cleared_flags), (0, u64::from(cleared)));
    // Propagation, in order.
    let o = options(&[
        "rprivate",
        "shared",
        "rslave",
        "unbindable",
        "runbindable",
        "private",
        "rshared",
        "slave",
    ]);
    assert_eq!(
        o.propagation,
        [
            Propagation::Private { recursive: true },
            Propagation::Shared { recursive: false },
            Propagation::Slave { recursive: true },
            Propagation::Unbindable { recursive: false },
            Propagation::Unbindable { recursive: true },
            Propagation::Private { recursive: false },
            Propagation::Shared { recursive: true },
            Propagation::Slave { recursive: false },
        ]
    );
    // Recursive attributes: set, cleared, and the last word wins.
    let o = options(&["rro", "rnosuid", "rnodev", "rnoexec", "rnodiratime", "rnosymfollow", "rsuid"]);
    let set = sys::MOUNT_ATTR_RDONLY
        | sys::MOUNT_ATTR_NODEV
        | sys::MOUNT_ATTR_NOEXEC
        | sys::MOUNT_ATTR_NODIRATIME
        | sys::MOUNT_ATTR_NOSYMFOLLOW;
    assert_eq!((o.recursive_set, o.recursive_clear), (u64::from(set), u64::from(sys::MOUNT_ATTR_NOSUID)));
    let o = options(&["rrw", "rdev", "rexec", "rdiratime", "rsymfollow"]);
    let clear = sys::MOUNT_ATTR_RDONLY
        | sys::MOUNT_ATTR_NODEV
        | sys::MOUNT_ATTR_NOEXEC
        | sys::MOUNT_ATTR_NODIRATIME
        | sys::MOUNT_ATTR_NOSYMFOLLOW;
    assert_eq!((o.recursive_set, o.recursive_clear), (0, u64::from(clear)));
    // Access time is one value: set with all of MOUNT_ATTR__ATIME cleared, the last one given.
    let atime = u64::from(sys::MOUNT_ATTR__ATIME);
    let mode = |list: &[&str]| {
        let o = options(list);
        assert_eq!(o.recursive_clear, atime, "{list:?}");
        o.recursive_set
    };
    assert_eq!(mode(&["rnoatime"]), u64::from(sys::MOUNT_ATTR_NOATIME));
    assert_eq!(mode(&["rstrictatime"]), u64::from(sys::MOUNT_ATTR_STRICTATIME));
    assert_eq!(mode(&["rnoatime", "rrelatime"]), u64::from(sys::MOUNT_ATTR_RELATIME));
    assert_eq!(mode(&["rnoatime", "ratime"]), u64::from(sys::MOUNT_ATTR_RELATIME));
    assert_eq!(mode(&["rstrictatime", "rnostrictatime"]), u64::from(sys::MOUNT_ATTR_RELATIME));
    assert_eq!(mode(&["rstrictatime", "rnorelatime"]), u64::from(sys::MOUNT_ATTR_STRICTATIME));
    // `bind` and `rbind`.
    assert_eq!(options(&["bind"]).bind, Some(false));
    assert_eq!(options(&["rbind", "bind"]).bind, Some(true));
    assert_eq!(options(&["bind", "rbind"]).bind, Some(true));
    assert_eq!(options(&["ro"]).bind, None);
}

#[test]
fn process_refusals() {
    assert_eq!(
        refused("/process/args", json!([])),
        "config.json: process.args: required, with at least the program to run"
    );
    assert_eq!(
        refused("/process/cwd", json!("work")),
        r#"config.json: process.cwd: "work" is not an absolute path"#
    );
    assert_eq!(
        refused("/process/env", json!(["A=1", "B"])),
        r#"config.json: process.env[1]: "B" is not NAME=VALUE"#
    );
    assert_eq!(
        refused("/process/env", json!(["=1"])),
        r#"config.json: process.env[0]: "=1" has an empty name"#
    );
    assert_eq!(
        refused("/process/user/username", json!("root")),
        "config.json: process.user.username: Windows only: Linux takes uid and gid"
    );
    assert_eq!(
        refused("/process/user/umask", json!(0o1777)),
        "config.json: process.user.umask: 0o1777 is not a umask (0 to 0o777)"
    );
    assert_eq!(
        refused("/process/oomScoreAdj", json!(1001)),
        "config.json: process.oomScoreAdj: 1001 is outside -1000..1000"
    );
    assert_eq!(
        refused("/process/consoleSize", json!({"height": 70000, "width": 80})),
        "config.json: process.consoleSize.height: 70000 is more than 65535"
    );
    assert_eq!(
        refused(
            "/process/rlimits",
            json!([
                {"type": "RLIMIT_NOFILE", "hard": 10, "soft": 10},
                {"type": "RLIMIT_CORE", "hard": 0, "soft": 0},
                {"type": "RLIMIT_NOFILE", "hard": 20, "soft": 20}
            ])
        ),
        "config.json: process.rlimits[2].type: RLIMIT_NOFILE is given twice (also process.rlimits[0])"
    );
    assert_eq!(
        refused("/process/rlimits", json!([{"type": "RLIMIT_CORE", "hard": 1, "soft": 2}])),
        "config.json: process.rlimits[0]: RLIMIT_CORE: soft limit 2 is above hard limit 1"
    );
    assert_eq!(
        refused("/process/commandLine", json!("cmd.exe")),
        "config.json: process.commandLine: Windows only: Linux takes process.args"
    );
    for (field, value) in [
        ("ioPriority", json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0})),
        ("scheduler", json!({"policy": "SCHED_BATCH"})),
        ("execCPUAffinity", json!({"initial": "0"})),
    ] {
        assert_eq!(
            refused(&format!("/process/{field}"), value),
            format!("config.json: process.{field}: not supported by spawner")
        );
    }
}

#[test]
fn every_capability_maps_to_its_bit() {
    // capabilities(7), in bit order.
    let names = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    for (bit, name) in names.iter().enumerate() {
        let mut spec: Value = serde_json::from_str(RUNC_SPEC).unwrap();
        spec["process"]["capabilities"]["bounding"] = json!([format!("CAP_{name}")]);
        let spec = spec.to_string();
        let bounding = config_of(&spec).process.unwrap().capabilities.bounding;
        assert_eq!(bounding, CapabilitySet::from_bits_retain(1 << bit), "CAP_{name}");
    }
}

#[test]
fn hostname_needs_a_uts_namespace() {
    let without_uts = |field: &str| {
        refusal(|s| {
            s["hostname"] = json!("box");
            s["domainname"] = json!("example.org");
            s["linux"]["namespaces"] = json!([{"type": "mount"}]);
            if field == "domainname" {
                s.as_object_mut().unwrap().remove("hostname");
            }
        })
    };
    assert_eq!(
        without_uts("hostname"),
        "config.json: hostname: needs a UTS namespace (linux.namespaces has no uts entry)"
    );
    assert_eq!(
        without_uts("domainname"),
        "config.json: domainname: needs a UTS namespace (linux.namespaces has no uts entry)"
    );
    assert_eq!(
        refused("/hostname", json!("x".repeat(65))),
        format!("config.json: hostname: {:?} is longer than 64 bytes", "x".repeat(65))
    );
}

#[test]
fn namespace_refusals() {
    assert_eq!(
        refused("/linux/namespaces", json!([{"type": "pid"}, {"type": "uts"}, {"type": "pid"}])),
        r#"config.json: linux.namespaces[2].type: "pid" is given twice (also linux.namespaces[0])"#
    );
    assert_eq!(
        refused("/linux/namespaces", json!([{"type": "network", "path": "run/netns/x"}])),
        r#"config.json: linux.namespaces[0].path: "run/netns/x" is not an absolute path"#
    );
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    assert_eq!(
        refused("/linux/uidMappings", map.clone()),
        "config.json: linux.uidMappings: given, but linux.namespaces has no user namespace"
    );
    let userns = |uid: Value, gid: Value| {
        refusal(|s| {
            s["linux"]["namespaces"] = json!([{"type": "user"}, {"type": "mount"}]);
            s["linux"]["uidMappings"] = uid;
            s["linux"]["gidMappings"] = gid;
        })
    };
    assert_eq!(
        userns(json!([]), map.clone()),
        "config.json: linux.uidMappings: required for a new user namespace"
    );
    assert_eq!(
        userns(map.clone(), json!([{"containerID": 0, "hostID": 1, "size": 0}])),
        "config.json: linux.gidMappings[0].size: must be at least 1"
    );
    assert_eq!(
        userns(map.clone(), json!([{"containerID": 4294967295u32, "hostID": 1, "size": 2}])),
        "config.json: linux.gidMappings[0]: containerID 4294967295 + size 2 goes past the largest id, 4294967295"
    );
    // A user namespace with mappings is accepted, and joining one needs none.
    let spec = |ns: Value, maps: bool| {
        let mut s = json!({"ociVersion": "1.2.0", "root": {"path": "r"}, "linux": {"namespaces": ns}});
        if maps {
            s["linux"]["uidMappings"] = map.clone();
            s["linux"]["gidMappings"] = map.clone();
        }
        validate(&serde_json::from_value(s).unwrap(), Path::new(BUNDLE)).unwrap()
    };
    let c = spec(json!([{"type": "user"}]), true);
    assert_eq!(c.uid_mappings, [IdMapping { container_id: 0, host_id: 100000, size: 65536 }]);
    assert_eq!(c.gid_mappings, c.uid_mappings);
    assert!(spec(json!([{"type": "user", "path": "/proc/42/ns/user"}]), false).uid_mappings.is_empty());
}

#[test]
fn sysctls_must_stay_in_the_container() {
    let sysctl = |key: &str, namespaces: Value| {
        refusal(|s| {
            s["linux"]["sysctl"] = json!({key: "1"});
            s["linux"]["namespaces"] = namespaces;
        })
    };
    let none = json!([{"type": "mount"}]);
    assert_eq!(
        sysctl("kernel.shmmax", none.clone()),
        r#"config.json: linux.sysctl["kernel.shmmax"]: needs the container's own IPC namespace"#
    );
    assert_eq!(
        sysctl("fs.mqueue.msg_max", none.clone()),
        r#"config.json: linux.sysctl["fs.mqueue.msg_max"]: needs the container's own IPC namespace"#
    );
    assert_eq!(
        sysctl("net.ipv4.ip_forward", none.clone()),
        r#"config.json: linux.sysctl["net.ipv4.ip_forward"]: needs the container's own network namespace"#
    );
    assert_eq!(
        sysctl("kernel.domainname", none),
        r#"config.json: linux.sysctl["kernel.domainname"]: needs the container's own UTS namespace"#
    );
    let all = json!([{"type": "mount"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}]);
    assert_eq!(
        sysctl("kernel.panic", all.clone()),
        r#"config.json: linux.sysctl["kernel.panic"]: not a namespaced sysctl: it would change the host"#
    );
    assert_eq!(
        sysctl("vm.overcommit_memory", all.clone()),
        r#"config.json: linux.sysctl["vm.overcommit_memory"]: not a namespaced sysctl: it would change the host"#
    );
    // A key that would climb out of net/ once it is a path under /proc/sys.
    assert!(sysctl("net/../kernel/core_pattern", all.clone())
        .starts_with(r#"config.json: linux.sysctl["net/../kernel/core_pattern"]: not a sysctl name"#));
    assert!(sysctl("net.", all).contains("not a sysctl name"));
    let conflict = refusal(|s| {
        s["hostname"] = json!("box");
        s["linux"]["sysctl"] = json!({"kernel.hostname": "other"});
    });
    assert_eq!(
        conflict,
        r#"config.json: linux.sysctl["kernel.hostname"]: conflicts with the hostname field: give one of them"#
    );
    // The namespaced ones, with their namespaces, are kept.
    let mut s: Value = serde_json::from_str(RUNC_SPEC).unwrap();
    s["linux"]["sysctl"] = json!({"kernel.msgmax": "8192", "fs.mqueue.queues_max": "1", "net/ipv4/conf/eth0.100/forwarding": "1", "kernel.domainname": "x"});
    let c = validate(&serde_json::from_value(s).unwrap(), Path::new(BUNDLE)).unwrap();
    assert_eq!(c.sysctl.len(), 4);
}

#[test]
fn resource_refusals() {
    let memory = |m: Value| refused("/linux/resources/memory", m);
    assert_eq!(
        memory(json!({"disableOOMKiller": true})),
        "config.json: linux.resources.memory.disableOOMKiller: true is not supported by spawner"
    );
    assert_eq!(
        memory(json!({"swap": 1000000000})),
        "config.json: linux.resources.memory.swap: 1000000000: a memory+swap limit needs memory.limit too"
    );
    assert_eq!(
        memory(json!({"limit": 200000000, "swap": 100000000})),
        "config.json: linux.resources.memory.swap: 100000000 is below memory.limit 200000000: it is memory plus swap"
    );
    assert_eq!(
        memory(json!({"limit": -2})),
        "config.json: linux.resources.memory.limit: -2 is not a size in bytes, nor -1"
    );
    assert_eq!(
        memory(json!({"swappiness": 101})),
        "config.json: linux.resources.memory.swappiness: 101 is not 0 to 100"
    );
    assert_eq!(
        memory(json!({"useHierarchy": false})),
        "config.json: linux.resources.memory.useHierarchy: false is not supported by spawner"
    );
    for field in ["realtimeRuntime", "realtimePeriod", "idle", "burst"] {
        assert_eq!(
            refused(&format!("/linux/resources/cpu/{field}"), json!(1000)),
            format!("config.json: linux.resources.cpu.{field}: not supported by spawner")
        );
    }
    assert_eq!(
        refused("/linux/resources/cpu/cpus", json!("0-a")),
        r#"config.json: linux.resources.cpu.cpus: "0-a" is not a list such as 0-3,5"#
    );
    assert_eq!(
        refused("/linux/resources/cpu/quota", json!(-5)),
        "config.json: linux.resources.cpu.quota: -5 is not microseconds, nor -1"
    );
    assert_eq!(
        refused(
            "/linux/resources/blockIO",
            json!({"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]})
        ),
        "config.json: linux.resources.blockIO.throttleReadBpsDevice: not supported by spawner"
    );
    assert_eq!(
        refused("/linux/resources/blockIO/weight", json!(5)),
        "config.json: linux.resources.blockIO.weight: 5 is not 10 to 1000"
    );
    assert_eq!(
        refused("/linux/resources/hugepageLimits", json!([{"pageSize": "2MB", "limit": 1}])),
        "config.json: linux.resources.hugepageLimits: not supported by spawner"
    );
    assert_eq!(
        refused("/linux/resources/network", json!({"classID": 1048577})),
        "config.json: linux.resources.network: not supported by spawner"
    );
    assert_eq!(
        refused("/linux/resources/rdma", json!({"mlx5_1": {"hcaHandles": 3}})),
        "config.json: linux.resources.rdma: not supported by spawner"
    );
    assert_eq!(
        refused("/linux/resources/unified", json!({"../cgroup.procs": "1"})),
        r#"config.json: linux.resources.unified["../cgroup.procs"]: not a cgroup file name"#
    );
    let rule = |r: Value| refused("/linux/resources/devices", json!([{"allow": false, "access": "rwm"}, r]));
    assert_eq!(
        rule(json!({"allow": true, "type": "p", "access": "rwm"})),
        r#"config.json: linux.resources.devices[1].type: "p" is not a device rule type: a, c or b"#
    );
    assert_eq!(
        rule(json!({"allow": true, "type": "c", "major": 1})),
        r#"config.json: linux.resources.devices[1].access: "" is not one to three of r, w, m"#
    );
    assert_eq!(
        rule(json!({"allow": true, "type": "c", "major": 5000, "access": "r"})),
        "config.json: linux.resources.devices[1].major: 5000 is not a device major number (0 to 4095), nor -1"
    );
    // Kernel memory limits are dropped, as runc does; no swap limit at all is no limit.
    let mut s: Value = serde_json::from_str(RUNC_SPEC).unwrap();
    s["linux"]["resources"]["memory"] =
        json!({"kernel": 1000000, "kernelTCP": 1000000, "swap": -1, "limit": 0});
    let c = validate(&serde_json::from_value(s).unwrap(), Path::new(BUNDLE)).unwrap();
    assert_eq!((c.resources.memory, c.resources.memory_swap), (None, None));
}

#[test]
fn cgroups_path_forms() {
    assert_eq!(
        refused("/linux/cgroupsPath", json!("../../elsewhere")),
        r#"config.json: linux.cgroupsPath: "../../elsewhere" goes up (..)"#
    );
    let path = |p: &str| {
        let mut s: Value = serde_json::from_str(RUNC_SPEC).unwrap();
        s["linux"]["cgroupsPath"] = json!(p);
        validate(&serde_json::from_value(s).unwrap(), Path::new(BUNDLE)).unwrap().cgroups_path
    };
    assert_eq!(path("/kubepods/burstable/pod1:x:y"), Some("/kubepods/burstable/pod1:x:y".into()));
    assert_eq!(path("spawner/c1"), Some("spawner/c1".into()));
    // systemd's form is kept for the driver to read (and the cgroupfs one to refuse).
    assert_eq!(path("system.slice:docker:3f4e"), Some("system.slice:docker:3f4e".into()));
    assert_eq!(path(":libpod:3f4e"), Some(":libpod:3f4e".into()));
    assert_eq!(path(""), None);
}

#[test]
fn device_node_refusals() {
    let device = |d: Value| refused("/linux/devices", json!([d]));
    assert_eq!(
        device(json!({"path": "/dev/x", "type": "a"})),
        r#"config.json: linux.devices[0].type: "a" is not a kind of node: c, u, b or p"#
    );
    assert_eq!(
        device(json!({"path": "dev/x", "type": "c", "major": 1, "minor": 3})),
        r#"config.json: linux.devices[0].path: "dev/x" is not an absolute path"#
    );
    assert_eq!(
        device(json!({"path": "/dev/x", "type": "b", "major": -1, "minor": 0})),
        "config.json: linux.devices[0].major: -1 is not a device major number (0 to 4095)"
    );
    let mut s: Value = serde_json::from_str(RUNC_SPEC).unwrap();
    s["linux"]["devices"] = json!([{"path": "/dev/fifo", "type": "p", "fileMode": 384, "uid": 5, "gid": 6}, {"path": "/dev/ttyX", "type": "u", "major": 4, "minor": 64}]);
    let c = validate(&serde_json::from_value(s).unwrap(), Path::new(BUNDLE)).unwrap();
    assert_eq!(
        c.devices,
        [
            Device {
                path: "/dev/fifo".into(),
                kind: DeviceKind::Fifo,
                major: 0,
                minor: 0,
                mode: 0o600,
                uid: 5,
                gid: 6
            },
            Device {
                path: "/dev/ttyX".into(),
                kind: DeviceKind::Char,
                major: 4,
                minor: 64,
                mode: 0o666,
                uid: 0,
                gid: 0
            },
        ]
    );
}

#[test]
fn seccomp_refusals() {
    let seccomp = |s: Value| refused("/linux/seccomp", s);
    assert_eq!(
        seccomp(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})),
        "config.json: linux.seccomp: syscalls[0] (mkdir): SCMP_ACT_NOTIFY is not supported (spawner has no seccomp agent)"
    );
    assert!(seccomp(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}))
        .starts_with("config.json: linux.seccomp: listenerPath: "));
    assert_eq!(
        seccomp(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]})),
        "config.json: linux.seccomp.flags[1]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (for seccomp agents) is not supported by spawner"
    );
    assert_eq!(
        seccomp(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 9, "op": "SCMP_CMP_EQ"}]}]})
        ),
        "config.json: linux.seccomp.syscalls[0].args[0].index: 6 is not an argument index (0 to 5)"
    );
    assert_eq!(
        seccomp(json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1})),
        "config.json: linux.seccomp: defaultAction: errnoRet only goes with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW"
    );
    let other = if cfg!(target_arch = "x86_64") { "SCMP_ARCH_AARCH64" } else { "SCMP_ARCH_X86_64" };
    assert!(seccomp(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [other]}))
        .starts_with("config.json: linux.seccomp: architectures: this host's architecture"));
}

/// Every name oci-spec writes back (actions, operators, architectures, flags) is one the profile
/// reader takes, with the meaning it has in the spec.
#[test]
fn seccomp_names_survive_the_round_trip() {
    let arches = [
        "SCMP_ARCH_NATIVE",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_ARM",
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64",
        "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL",
        "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32",
        "SCMP_ARCH_PPC",
        "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE",
        "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X",
        "SCMP_ARCH_RISCV64",
    ];
    let ops = [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    let args: Vec<Value> =
        ops.iter().map(|op| json!({"index": 1, "value": 7, "valueTwo": 3, "op": op})).collect();
    let mut s: Value = serde_json::from_str(RUNC_SPEC).unwrap();
    s["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_KILL_PROCESS",
        "architectures": arches,
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [
            {"names": ["a"], "action": "SCMP_ACT_KILL"},
            {"names": ["b"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["c"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["d"], "action": "SCMP_ACT_TRAP"},
            {"names": ["e"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["f"], "action": "SCMP_ACT_TRACE", "errnoRet": 3},
            {"names": ["g"], "action": "SCMP_ACT_LOG"},
            {"names": ["h", "i"], "action": "SCMP_ACT_ALLOW", "args": args},
            {"names": ["j"], "action": "SCMP_ACT_ERRNO"}
        ]
    });
    let c = validate(&serde_json::from_value(s).unwrap(), Path::new(BUNDLE)).unwrap();
    let p = c.seccomp.unwrap();
    assert_eq!(p.default_action, Action::KillProcess);
    assert_eq!(p.flags, [Flag::Tsync, Flag::Log, Flag::SpecAllow]);
    // SCMP_ARCH_NATIVE is this architecture.
    assert_eq!(p.architectures[0], native::SCMP_ARCH);
    assert_eq!(p.architectures.len(), arches.len());
    let actions: Vec<Action> = p.syscalls.iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        [
            Action::KillThread,
            Action::KillThread,
            Action::KillProcess,
            Action::Trap,
            Action::Errno(13),
            Action::Trace(3),
            Action::Log,
            Action::Allow,
            Action::Errno(1)
        ]
    );
    let ops: Vec<Op> = p.syscalls[7].args.iter().map(|a| a.op).collect();
    use Op::*;
    assert_eq!(ops, [NotEqual, LessThan, LessOrEqual, Equal, GreaterOrEqual, GreaterThan, MaskedEqual]);
    assert_eq!(p.syscalls[7].args[6], ArgCondition { index: 1, op: MaskedEqual, value: 7, value_two: 3 });
    assert_eq!(p.syscalls[7].names, ["h", "i"]);
}

#[test]
fn linux_refusals() {
    assert_eq!(
        refused("/linux/rootfsPropagation", json!("bogus")),
        r#"config.json: linux.rootfsPropagation: "bogus" is not shared, slave, private or unbindable (or rshared, rslave…)"#
    );
    assert_eq!(
        refused("/linux/maskedPaths", json!(["/proc/kcore", "proc/keys"])),
        r#"config.json: linux.maskedPaths[1]: "proc/keys" is not an absolute path"#
    );
    assert_eq!(
        refused("/linux/readonlyPaths", json!(["sys"])),
        r#"config.json: linux.readonlyPaths[0]: "sys" is not an absolute path"#
    );
    for (field, value) in [
        ("mountLabel", json!("system_u:object_r:container_file_t:s0:c1,c2")),
        ("intelRdt", json!({"closID": "guaranteed_group"})),
        ("memoryPolicy", json!({"mode": "MPOL_BIND", "nodes": "0"})),
        ("netDevices", json!({"eth1": {"name": "eth0"}})),
    ] {
        assert_eq!(
            refused(&format!("/linux/{field}"), value),
            format!("config.json: linux.{field}: not supported by spawner")
        );
    }
    assert_eq!(
        refused("/linux/personality", json!({"domain": "LINUX", "flags": ["SHORT_INODE"]})),
        "config.json: linux.personality.flags: not supported by spawner"
    );
    let personality = |domain: &str| {
        let mut s: Value = serde_json::from_str(RUNC_SPEC).unwrap();
        s["linux"]["personality"] = json!({"domain": domain});
        validate(&serde_json::from_value(s).unwrap(), Path::new(BUNDLE)).unwrap().personality
    };
    assert_eq!((personality("LINUX"), personality("LINUX32")), (Some(0), Some(8)));
}

#[test]
fn time_offsets_need_a_new_time_namespace_and_valid_clocks() {
    let with_time_ns = |offsets: Value, path: Option<&str>| {
        let mut s: Value = serde_json::from_str(RUNC_SPEC).unwrap();
        let ns = match path {
            Some(p) => json!({"type": "time", "path": p}),
            None => json!({"type": "time"}),
        };
        s["linux"]["namespaces"].as_array_mut().unwrap().push(ns);
        s["linux"]["timeOffsets"] = offsets;
        validate(&serde_json::from_value(s).unwrap(), Path::new(BUNDLE)).map_err(|e| e.to_string())
    };
    let c = with_time_ns(json!({"monotonic": {"secs": -5, "nanosecs": 7}, "boottime": {"secs": 9}}), None)
        .unwrap();
    assert_eq!(
        c.time_offsets,
        [
            TimeOffset { clock: "boottime".into(), secs: 9, nanosecs: 0 },
            TimeOffset { clock: "monotonic".into(), secs: -5, nanosecs: 7 }
        ]
    );
    assert_eq!(
        refused("/linux/timeOffsets", json!({"monotonic": {"secs": 100}})),
        "config.json: linux.timeOffsets: needs a new time namespace in linux.namespaces"
    );
    assert_eq!(
        with_time_ns(json!({"monotonic": {"secs": 1}}), Some("/proc/1/ns/time")).unwrap_err(),
        "config.json: linux.timeOffsets: needs a new time namespace in linux.namespaces"
    );
    assert_eq!(
        with_time_ns(json!({"realtime": {"secs": 1}}), None).unwrap_err(),
        "config.json: linux.timeOffsets.realtime: not a clock a time namespace moves (monotonic, boottime)"
    );
    assert_eq!(
        with_time_ns(json!({"boottime": {"nanosecs": 1000000000u32}}), None).unwrap_err(),
        "config.json: linux.timeOffsets.boottime.nanosecs: 1000000000 is not below one second"
    );
}

#[test]
fn hook_refusals() {
    assert_eq!(
        refused("/hooks/poststart", json!([{"path": "bin/hook"}])),
        r#"config.json: hooks.poststart[0].path: "bin/hook" is not an absolute path"#
    );
    assert_eq!(
        refused("/hooks/createContainer", json!([{"path": "/bin/hook", "timeout": 0}])),
        "config.json: hooks.createContainer[0].timeout: 0 is not a number of seconds above 0"
    );
    assert_eq!(
        refused("/hooks/startContainer", json!([{"path": "/bin/hook", "env": ["X"]}])),
        r#"config.json: hooks.startContainer[0].env[0]: "X" is not NAME=VALUE"#
    );
}

#[test]
fn other_platforms_are_refused() {
    for (field, value) in [
        ("solaris", json!({"milestone": "svc:/milestone/container:default"})),
        ("windows", json!({"layerFolders": ["C:\\layers"]})),
        ("vm", json!({"kernel": {"path": "/vmlinuz"}})),
        ("zos", json!({})),
    ] {
        assert_eq!(
            refused(&format!("/{field}"), value),
            format!("config.json: {field}: not supported by spawner")
        );
    }
    assert_eq!(
        refused("/uidMappings", json!([{"containerID": 0, "hostID": 1000, "size": 1}])),
        "config.json: uidMappings: not a top-level field: user namespace mappings go in linux.uidMappings"
    );
}

#[test]
fn nul_bytes_are_refused() {
    assert_eq!(
        refused("/process/args", json!(["sh", "-c\u{0}x"])),
        r#"config.json: process.args[1]: "-c\0x" contains a NUL byte"#
    );
    assert_eq!(
        refused("/mounts", json!([{"destination": "/t", "type": "tmpfs", "options": ["size=1m\u{0}"]}])),
        r#"config.json: mounts[0].options[0]: "size=1m\0" contains a NUL byte"#
    );
}

/// `load` in a bundle directory holding `config`.
fn load_error(config: &str) -> (String, SpecError) {
    let bundle = tempfile::tempdir().unwrap();
    std::fs::write(bundle.path().join("config.json"), config).unwrap();
    let e = load(bundle.path()).unwrap_err();
    let file = bundle.path().join("config.json").display().to_string();
    let text = e.to_string();
    assert!(text.starts_with(&file), "{text}");
    (text[file.len()..].to_owned(), e)
}

#[test]
fn load_reads_and_validates_the_bundle() {
    let bundle = tempfile::tempdir().unwrap();
    std::fs::write(bundle.path().join("config.json"), RUNC_SPEC).unwrap();
    let c = load(bundle.path()).unwrap();
    assert_eq!(c.root.path, bundle.path().join("rootfs"));
    // No file.
    let e = load(&bundle.path().join("nowhere")).unwrap_err();
    assert!(matches!(e, SpecError::Read { .. }));
    assert!(
        e.to_string().starts_with(&format!("{}: ", bundle.path().join("nowhere/config.json").display())),
        "{e}"
    );
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn load_names_file_line_and_column() {
    // Broken JSON: where, and no field.
    let (rest, e) = load_error("{\n  \"ociVersion\": \"1.2.0\",\n  \"root\": {\"path\": \"rootfs\"\n}\n");
    assert_eq!(rest, ":5:0: EOF while parsing an object");
    assert!(matches!(e, SpecError::Parse { line: 5, column: 0, field: None, .. }));
    let (rest, _) = load_error("{\"ociVersion\": \"1.2.0\",, }");
    assert_eq!(rest, ":1:24: key must be a string");
    // Valid JSON, not a spec: the field too.
    let spec = RUNC_SPEC.replace("RLIMIT_NOFILE", "RLIMIT_FOO");
    let (rest, e) = load_error(&spec);
    assert!(
        rest.starts_with(":36:24: process.rlimits[0].type: unknown variant `RLIMIT_FOO`, expected one of"),
        "{rest}"
    );
    assert_eq!(e.field(), Some("process.rlimits[0].type"));
    let spec = RUNC_SPEC.replacen("\"type\": \"ipc\"", "\"type\": \"foo\"", 1);
    let (rest, _) = load_error(&spec);
    assert!(rest.starts_with(":141:17: linux.namespaces[2].type: unknown variant `foo`"), "{rest}");
    let spec = RUNC_SPEC.replacen("\"CAP_KILL\"", "\"CAP_FOO\"", 1);
    let (rest, _) = load_error(&spec);
    // oci-spec refuses the name after reading it, so serde_json places the error at the end of
    // the list: the list is named.
    assert_eq!(rest, ":21:4: process.capabilities.bounding: no variant for CAP_FOO (converted to FOO)");
    let spec = RUNC_SPEC.replacen("\"cwd\": \"/\",", "", 1);
    let (rest, _) = load_error(&spec);
    assert!(rest.ends_with(": process: missing field `cwd`"), "{rest}");
    let spec = RUNC_SPEC.replacen("\"uid\": 0", "\"uid\": \"root\"", 1);
    let (rest, _) = load_error(&spec);
    assert_eq!(rest, r#":6:16: process.user.uid: invalid type: string "root", expected u32"#);
    let (rest, _) = load_error(r#"{"ociVersion": "1.2.0", "linux": {"sysctl": {"net.ipv4.ip_forward": 1}}}"#);
    assert_eq!(
        rest,
        r#":1:69: linux.sysctl["net.ipv4.ip_forward"]: invalid type: integer `1`, expected a string"#
    );
}

#[test]
fn load_refuses_what_oci_spec_would_drop() {
    let bundle = tempfile::tempdir().unwrap();
    let config = RUNC_SPEC.replacen('{', r#"{"freebsd": {"jail": {"host": "new"}},"#, 1);
    std::fs::write(bundle.path().join("config.json"), config).unwrap();
    assert_eq!(
        load(bundle.path()).unwrap_err().to_string(),
        "config.json: freebsd: not supported by spawner"
    );
}

#[test]
fn messages_are_one_line() {
    // A newline in a syscall name reaches the message through the seccomp reader: escaped.
    let e = refused(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read\nx"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert_eq!(
        e,
        r"config.json: linux.seccomp: syscalls[0] (read\nx): SCMP_ACT_NOTIFY is not supported (spawner has no seccomp agent)"
    );
}

#[test]
fn field_paths_from_positions() {
    let text = br#"{"a": {"b\"c": [1, {"d": "x"}, [2, 3]]}, "e": [], "f": 4}"#;
    // The field whose value ends where the first `needle` does.
    let at = |needle: &str| {
        let end = text.windows(needle.len()).position(|w| w == needle.as_bytes()).unwrap() + needle.len();
        json_path::field_at(text, 1, end)
    };
    assert_eq!(at(r#""x""#).as_deref(), Some(r#"a["b\"c"][1].d"#));
    assert_eq!(at("3").as_deref(), Some(r#"a["b\"c"][2][1]"#));
    assert_eq!(at("1").as_deref(), Some(r#"a["b\"c"][0]"#));
    assert_eq!(at("[]").as_deref(), Some("e"));
    assert_eq!(at("4").as_deref(), Some("f"));
    assert_eq!(at("{").as_deref(), None);
    // Lines count from 1, columns in bytes.
    assert_eq!(json_path::field_at(b"{\n \"g\": \"\xc3\xa9\"\n}", 2, 10).as_deref(), Some("g"));
}

/// Values engines write for "not set" are not limits: dockerd's blockIO weight 0, ctr's 1024 cpu
/// shares (what every new cgroup has).
#[test]
fn engine_defaults_are_no_limits() {
    let limits = |at: &str, value: Value| {
        let mut s: Value = serde_json::from_str(RUNC_SPEC).unwrap();
        set(&mut s, at, value);
        validate(&serde_json::from_value(s).unwrap(), Path::new(BUNDLE)).unwrap().resources
    };
    assert_eq!(limits("/linux/resources/blockIO/weight", json!(0)).block_io_weight, None);
    assert_eq!(limits("/linux/resources/cpu/shares", json!(1024)).cpu_shares, None);
    assert_eq!(limits("/linux/resources/cpu/shares", json!(0)).cpu_shares, None);
    assert_eq!(limits("/linux/resources/cpu/shares", json!(512)).cpu_shares, Some(512));
}
