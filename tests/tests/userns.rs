//! A user namespace of the container's own (`linux.uidMappings` / `gidMappings`), through
//! spawner-runc as podman's `--uidmap` or a Kubernetes pod without host users asks for it: the
//! container's root is an unprivileged id on the host, whatever capabilities it holds inside.

use integration_tests::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const HOST_ROOT_OF_CONTAINER: u32 = 100_000;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Docker's capabilities and then some: what would reach host files without the user namespace.
const CAPS: [&str; 6] =
    ["CAP_DAC_OVERRIDE", "CAP_CHOWN", "CAP_FOWNER", "CAP_MKNOD", "CAP_SYS_ADMIN", "CAP_SETUID"];

/// A busybox bundle whose container root is host uid/gid 100000 (its rootfs chowned to match, as
/// engines do), with CAPS, and `edit` applied.
fn userns_bundle(rt: &Runc, name: &str, args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let bundle = rt.bundle(name, args, |c| {
        c["root"]["readonly"] = false.into();
        c["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "user"}));
        let map = serde_json::json!([{"containerID": 0, "hostID": HOST_ROOT_OF_CONTAINER, "size": 65536}]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set] = serde_json::json!(CAPS);
        }
        edit(c)
    });
    let out = std::process::Command::new("chown")
        .args(["-R", &format!("{HOST_ROOT_OF_CONTAINER}:{HOST_ROOT_OF_CONTAINER}")])
        .arg(bundle.join("rootfs"))
        .output()
        .unwrap();
    assert!(out.status.success(), "chown: {}", stderr(&out));
    bundle
}

fn bind(source: &Path, destination: &str) -> serde_json::Value {
    serde_json::json!({"destination": destination, "type": "bind", "source": s(source), "options": ["rbind", "rw"]})
}

/// The attack: container root with CAP_DAC_OVERRIDE, CAP_MKNOD and CAP_SYS_ADMIN, a host directory
/// bound in. Without the user namespace it reads the host's root-only file, and what it writes is
/// the host root's.
#[test]
fn container_root_is_an_unprivileged_host_id() {
    assert!(is_root(), "needs root");
    let rt = Runc::new("userns-root");
    let shared = rt.dir.0.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(shared.join("secret"), "host secret\n").unwrap();
    std::fs::set_permissions(shared.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let script = "id -u; cat /proc/self/uid_map | tr -s ' '; cat /shared/secret 2>&1; echo x > /shared/made; \
                  mknod /tmp/disk b 8 0 2>&1 || true; { echo 1 > /proc/sys/kernel/panic_on_oops; } 2>&1 || true";
    let bundle = userns_bundle(&rt, "b", &["sh", "-c", script], |c| {
        c["mounts"].as_array_mut().unwrap().push(bind(&shared, "/shared"));
    });
    let out = rt.run(&["run", "--bundle", s(&bundle), "u1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0", "root inside: {text}");
    assert_eq!(lines[1].trim(), format!("0 {HOST_ROOT_OF_CONTAINER} 65536"), "{text}");
    assert!(lines[2].contains("Permission denied"), "the host's root-only file was read: {text}");
    let made = std::fs::metadata(shared.join("made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (HOST_ROOT_OF_CONTAINER, HOST_ROOT_OF_CONTAINER));
    assert!(lines[3].contains("Operation not permitted"), "mknod of a block device: {text}");
    assert!(
        lines[4].contains("Permission denied") || lines[4].contains("Read-only"),
        "a host sysctl written: {text}"
    );
}

/// exec joins the user namespace first (the others belong to it) and is its root.
#[test]
fn exec_joins_the_user_namespace() {
    assert!(is_root(), "needs root");
    let rt = Runc::new("userns-exec");
    let bundle = userns_bundle(&rt, "b", &["sleep", "100"], |_| {});
    let pid_file = rt.dir.0.join("pid");
    let out = rt.run(&["run", "--detach", "--pid-file", s(&pid_file), "--bundle", s(&bundle), "u2"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    let out = rt.run(&["exec", "u2", "sh", "-c", "id -u; readlink /proc/self/ns/user; touch /made"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("0\n{}\n", theirs.display()));
    let made = std::fs::metadata(bundle.join("rootfs/made")).unwrap();
    assert_eq!(made.uid(), HOST_ROOT_OF_CONTAINER, "exec's root is the namespace's");
    let out = rt.run(&["exec", "--user", "1000:1000", "u2", "id", "-u"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "1000\n"), "{}", stderr(&out));
}

/// Sharing the host's network namespace, the container cannot mount a sysfs (only the network
/// namespace's owner can): it gets the host's /sys, read-only with every mount below it.
#[test]
fn host_network_gets_the_hosts_sys_read_only() {
    assert!(is_root(), "needs root");
    let rt = Runc::new("userns-sys");
    let script = "ls /sys/class/net | grep -x lo; grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; \
                  touch /sys/x 2>&1 || true";
    let bundle = userns_bundle(&rt, "b", &["sh", "-c", script], |c| {
        let namespaces = c["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|ns| ns["type"] != "network");
    });
    let out = rt.run(&["run", "--bundle", s(&bundle), "u3"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..2], ["lo", "ro"], "{text}");
    assert!(lines[2].contains("Read-only file system") || lines[2].contains("Permission denied"), "{text}");
}

/// A Kubernetes pod without host users: the sandbox makes the user namespace, each container joins
/// it by path and makes its other namespaces inside it (so that they belong to it: proc, sysfs and
/// its cgroup mount work, and it is root there).
#[test]
fn a_user_namespace_given_by_path_is_joined_and_owns_the_new_ones() {
    assert!(is_root(), "needs root");
    let rt = Runc::new("userns-join");
    let sandbox = userns_bundle(&rt, "sandbox", &["sleep", "100"], |_| {});
    let pid_file = rt.dir.0.join("pid");
    let out = rt.run(&["run", "--detach", "--pid-file", s(&pid_file), "--bundle", s(&sandbox), "pod"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let pod_user = std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    let script = "id -u; readlink /proc/self/ns/user; echo $$; ls /sys/class/net | tr '\\n' ' '; echo; \
                  awk '{print $1, $2, $3}' /proc/self/uid_map";
    let app = userns_bundle(&rt, "app", &["sh", "-c", script], |c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "user" {
                ns["path"] = format!("/proc/{pid}/ns/user").into();
            }
        }
    });
    let out = rt.run(&["run", "--bundle", s(&app), "app"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("0\n{}\n1\nlo \n0 {HOST_ROOT_OF_CONTAINER} 65536\n", pod_user.display()),
        "root of the pod's user namespace, PID 1 of its own, a network namespace of its own with sysfs"
    );
}

/// A new user namespace beside a network namespace given by path (podman's --uidmap with a network
/// namespace it made): the process enters the network namespace before its user namespace is made,
/// as it could not after. A namespace the test made, bound at a file of its own and unmounted after.
#[test]
fn a_new_user_namespace_beside_a_network_namespace_given_by_path() {
    assert!(is_root(), "needs root");
    let rt = Runc::new("userns-netns");
    let netns = rt.dir.0.join("netns");
    std::fs::write(&netns, "").unwrap();
    let made = std::process::Command::new("unshare")
        .arg(format!("--net={}", s(&netns)))
        .arg("true")
        .output()
        .unwrap();
    assert!(made.status.success(), "unshare --net: {}", stderr(&made));
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&netns);
    let inode = std::fs::metadata(&netns).unwrap().ino();
    let bundle = userns_bundle(&rt, "b", &["sh", "-c", "id -u; readlink /proc/self/ns/net"], |c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = s(&netns).into();
            }
        }
    });
    let out = rt.run(&["run", "--bundle", s(&bundle), "n1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("0\nnet:[{inode}]\n"));
}
