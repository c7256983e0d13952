//! The systemd boot of `cargo xtask vm-test`: the same Debian kernel, with systemd as PID 1 (a
//! Debian bookworm userland made by debootstrap, cached under target/vm, booted as the initramfs),
//! and spawner-runc's systemd cgroup driver run there as Kubernetes' runc shim runs it: a scope unit
//! in system.slice that systemd makes with the container in it and the memory limit set, updated,
//! and stopped by delete.
//!
//! systemd starts one unit, `vmtest.service`, which runs the script and powers the machine off
//! whichever way it ends (no getty, no dbus-daemon: spawner talks to systemd's private socket).

use crate::util::{apt_install, cmd, run, Result};
use std::path::{Path, PathBuf};

/// What the script must report as `PASS name`.
pub const CHECKS: &[&str] = &[
    "systemd-pid1",
    "systemd-scope",
    "systemd-limit",
    "systemd-process",
    "systemd-oom",
    "systemd-update",
    "systemd-delete",
    "systemd-default-path",
    "systemd-bad-path",
];

/// The script systemd runs. Every check asserts exact output.
const SCRIPT: &str = r#"
echo
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
oneline() { tr '\n' '|' < "$1"; }
show() { systemctl show -p "$2" --value "$1" 2>&1; }

comm=$(cat /proc/1/comm)
if [ "$comm" = systemd ] && [ -d /run/systemd/system ]; then pass systemd-pid1; else fail systemd-pid1 "PID 1 is $comm"; fi
echo "INFO $(systemctl --version | head -n 1); cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"

# A bundle of the busybox image, its config from spawner-runc spec: a sleep, no terminal, a
# memory limit of 32 MiB and the cgroupsPath containerd's shim gives with SystemdCgroup = true.
mkdir -p /tmp/oci/img /tmp/oci/b/rootfs
tar -xf /images/busybox-docker.tar -C /tmp/oci/img
for l in $(sed 's/.*"Layers":\[//; s/\].*//; s/[",]/ /g' /tmp/oci/img/manifest.json); do tar -xf /tmp/oci/img/$l -C /tmp/oci/b/rootfs; done
(cd /tmp/oci/b && spawner-runc spec)
sed -i 's|"sh"|"sleep", "1000"|; s|"terminal": true|"terminal": false|' /tmp/oci/b/config.json
sed -i 's|"resources": {|"resources": {"memory": {"limit": 33554432},|' /tmp/oci/b/config.json
sed -i 's|"namespaces": \[|"cgroupsPath": "system.slice:spawner:c1", "namespaces": [|' /tmp/oci/b/config.json
# The root is the initramfs (rootfs), which pivot_root refuses: --no-pivot, as on a ramfs.
R="spawner-runc --systemd-cgroup --root /run/spawner"
unit=spawner-c1.scope
dir=/sys/fs/cgroup/system.slice/$unit

$R run --detach --no-pivot -b /tmp/oci/b c1 >/tmp/out 2>/tmp/err; rc=$?
state=$(show $unit ActiveState); cg=$(show $unit ControlGroup)
if [ $rc = 0 ] && [ "$state" = active ] && [ "$cg" = /system.slice/$unit ] && [ -d $dir ]; then
    pass systemd-scope
else
    fail systemd-scope "exit $rc, ActiveState '$state', ControlGroup '$cg', stderr $(oneline /tmp/err)"
fi
limit=$(cat $dir/memory.max 2>&1); prop=$(show $unit MemoryMax); delegate=$(show $unit Delegate)
if [ "$limit:$prop:$delegate" = "33554432:33554432:yes" ]; then
    pass systemd-limit
else
    fail systemd-limit "memory.max '$limit', MemoryMax '$prop', Delegate '$delegate'"
fi
pid=$($R state c1 | sed -n 's/^ *"pid": \([0-9]*\),*$/\1/p')
if [ -n "$pid" ] && [ "$(cat /proc/$pid/cgroup)" = "0::/system.slice/$unit" ] && grep -qx "$pid" $dir/cgroup.procs; then
    pass systemd-process
else
    fail systemd-process "pid '$pid' in $(cat /proc/$pid/cgroup 2>&1), the unit holds $(oneline $dir/cgroup.procs)"
fi
# The limit holds: 64 MiB in one buffer, in the container's cgroup, is OOM-killed.
$R exec c1 dd if=/dev/zero of=/dev/null bs=64M count=1 >/tmp/out 2>/tmp/err; rc=$?
kills=$(sed -n 's/^oom_kill //p' $dir/memory.events)
if [ $rc = 137 ] && [ "$kills" -ge 1 ]; then pass systemd-oom; else fail systemd-oom "exit $rc, oom_kill '$kills', stderr $(oneline /tmp/err)"; fi
# update: systemd's property and the file both change.
echo '{"memory": {"limit": 67108864}, "pids": {"limit": 50}}' | $R update --resources - c1 2>/tmp/err; rc=$?
got="$(cat $dir/memory.max):$(show $unit MemoryMax):$(cat $dir/pids.max):$(show $unit TasksMax)"
if [ "$rc:$got" = "0:67108864:67108864:50:50" ]; then pass systemd-update; else fail systemd-update "exit $rc, $got, stderr $(oneline /tmp/err)"; fi
$R delete --force c1 2>/tmp/err; rc=$?
load=$(show $unit LoadState)
if [ $rc = 0 ] && [ "$load" = not-found ] && [ ! -d $dir ] && [ ! -d /run/spawner/c1 ]; then
    pass systemd-delete
else
    fail systemd-delete "exit $rc, LoadState '$load', dir $(ls -d $dir 2>&1), stderr $(oneline /tmp/err)"
fi

# No cgroupsPath: system.slice:spawner:ID; a foreground run sees its unit and leaves none behind.
sed -i 's|"cgroupsPath": "system.slice:spawner:c1", ||; s|"sleep", "1000"|"cat", "/proc/self/cgroup"|' /tmp/oci/b/config.json
out=$($R run --no-pivot -b /tmp/oci/b c2 2>/tmp/err); rc=$?
load=$(show spawner-c2.scope LoadState)
case "$rc:$out:$load" in
    "0:0::/system.slice/spawner-c2.scope:not-found" | "0:0::/:not-found") pass systemd-default-path ;;
    *) fail systemd-default-path "exit $rc, stdout '$out', LoadState '$load', stderr $(oneline /tmp/err)" ;;
esac
sed -i 's|"namespaces": \[|"cgroupsPath": "/not/a/unit", "namespaces": [|' /tmp/oci/b/config.json
$R run --no-pivot -b /tmp/oci/b c3 >/tmp/out 2>/tmp/err; rc=$?
if [ $rc = 1 ] && grep -q '"/not/a/unit" is not systemd.s slice:prefix:name' /tmp/err && [ ! -d /run/spawner/c3 ]; then
    pass systemd-bad-path
else
    fail systemd-bad-path "exit $rc, stderr $(oneline /tmp/err)"
fi

echo "DONE $fails failed"
exit $fails
"#;

const TARGET: &str = "[Unit]
Description=spawner VM test
Requires=vmtest.service
After=vmtest.service
AllowIsolate=yes
";

const SERVICE: &str = "[Unit]
Description=spawner-runc --systemd-cgroup checks
DefaultDependencies=no
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
Environment=PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
ExecStart=/bin/sh /test-systemd.sh
StandardOutput=tty
StandardError=tty
TTYPath=/dev/console
";

/// The packages debootstrap adds to minbase; the marker file says what the cached rootfs holds.
const INCLUDE: &str = "--include=systemd,systemd-sysv";

/// A Debian bookworm userland with systemd, made once by debootstrap and kept as a cpio archive
/// (the initramfs's first part): target/vm/systemd-rootfs.cpio.
fn rootfs_cpio(dir: &Path) -> Result<PathBuf> {
    let cpio = dir.join("systemd-rootfs.cpio");
    let complete = dir.join("systemd-rootfs.complete");
    if cpio.exists() && std::fs::read_to_string(&complete).ok().as_deref() == Some(INCLUDE) {
        return Ok(cpio);
    }
    apt_install(&["debootstrap", "cpio"])?;
    let rootfs = dir.join(".systemd-rootfs");
    if rootfs.exists() {
        std::fs::remove_dir_all(&rootfs)?;
    }
    eprintln!("xtask: debootstrap of Debian bookworm with systemd (a few minutes, once)");
    run(cmd("debootstrap")
        .args(["--variant=minbase", INCLUDE, "bookworm"])
        .arg(&rootfs)
        .arg("http://deb.debian.org/debian"))?;
    // Without what a boot never reads (documentation, locales, apt's caches): less to copy into the
    // VM's memory at every boot.
    run(cmd("sh")
        .current_dir(&rootfs)
        .arg("-c")
        .arg(
            "find . \\( -path ./usr/share/doc -o -path ./usr/share/man -o -path ./usr/share/locale \
             -o -path ./usr/share/info -o -path ./var/cache/apt -o -path ./var/lib/apt/lists \\) -prune \
             -o -print | LC_ALL=C sort | cpio -o -H newc --quiet > \"$0\"",
        )
        .arg(&cpio))?;
    std::fs::remove_dir_all(&rootfs)?;
    std::fs::write(&complete, INCLUDE)?;
    Ok(cpio)
}

/// The initramfs: the cached userland, then (a second cpio archive, which the kernel unpacks over
/// the first) spawner, the image, the script and the units.
pub fn initramfs(dir: &Path, spawner: &Path, image: &Path) -> Result<PathBuf> {
    let base = rootfs_cpio(dir)?;
    let stage = dir.join("systemd-stage");
    let _ = std::fs::remove_dir_all(&stage);
    for d in ["usr/local/bin", "images", "etc/systemd/system", "dev"] {
        std::fs::create_dir_all(stage.join(d))?;
    }
    std::fs::copy(spawner, stage.join("usr/local/bin/spawner"))?;
    std::os::unix::fs::symlink("spawner", stage.join("usr/local/bin/spawner-runc"))?;
    std::fs::copy(image, stage.join("images/busybox-docker.tar"))?;
    std::fs::write(stage.join("test-systemd.sh"), SCRIPT)?;
    std::fs::write(stage.join("etc/systemd/system/vmtest.target"), TARGET)?;
    std::fs::write(stage.join("etc/systemd/system/vmtest.service"), SERVICE)?;
    std::fs::write(stage.join("etc/hostname"), "vmtest-systemd\n")?;
    run(cmd("mknod").arg(stage.join("dev/console")).args(["c", "5", "1"]))?;
    let extra = dir.join("systemd-extra.cpio");
    crate::vm::pack_cpio(&stage, &extra)?;
    let initrd = dir.join("initramfs-systemd.cpio");
    run(cmd("sh").arg("-c").arg("cat \"$0\" \"$1\" > \"$2\"").arg(&base).arg(&extra).arg(&initrd))?;
    std::fs::remove_file(&extra)?;
    Ok(initrd)
}

/// The kernel command line after `console=…`: systemd from the initramfs, our target only.
pub const CMDLINE: &str = "rdinit=/usr/lib/systemd/systemd systemd.unit=vmtest.target systemd.show_status=0";
