//! `cargo xtask vm-test`: boots a Debian kernel under QEMU (TCG, no KVM) with an initramfs whose PID 1
//! is our init (VM mode), and runs spawner there on a pure cgroup v2 machine: the checks that need a
//! kernel of their own (the root cgroup, the "no internal processes" rule, OOM kills, pids and cpu
//! limits, init powering the machine off). The script in the VM prints `PASS name` / `FAIL name:
//! detail`; init prints `... powering off (exit status N)` on the console, which is parsed here.
//! Three machines boot at once (one vCPU each): the checks, a SIGTERM to PID 1, and a Ctrl-Alt-Del
//! typed through QEMU's monitor.
//!
//! A fourth boot has systemd as PID 1 (a Debian userland, see `vm_systemd`) for spawner-runc's
//! systemd cgroup driver.
//!
//! `VM_KERNEL=linux-image-6.12-amd64` boots another Debian kernel (default: `linux-image-amd64`'s);
//! `VM_TEST_DIST=DIR` tests the static `init` and `spawner` in DIR instead of building them;
//! `VM_TEST_ONLY=systemd` boots the systemd machine alone.

use crate::util::{apt_install, cmd, output, root, run, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A boot that has not powered off by then has failed (TCG is slow, but a boot takes 5-20 s).
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// What each boot's script must report as `PASS name`.
const MAIN_CHECKS: &[&str] = &[
    "vm-mounts",
    "vm-hostname",
    "overlay",
    "root-cgroup",
    "hello",
    "oom",
    "pids-limit",
    "cpus",
    "cpu-flags",
    "cgroup-removed",
    "cgroup-parent",
    "spawner-killed",
    "busy-cgroup",
    "device-program",
    "device-option",
    "seccomp-vm",
    "x32",
    "escapes-vm",
    "runc-devices",
    "runc-userns",
];

/// The script init runs as its child (`/test.sh MODE`). It runs in the root cgroup of a pure cgroup
/// v2 machine. Every check asserts exact output and exit codes, so that it fails if the feature goes.
const SCRIPT: &str = r#"
echo
PATH=/bin; export PATH
[ -e /bin/ls ] || /bin/busybox --install -s /bin
IMG=/images/busybox-docker.tar
S="spawner --root /tmp/state"
mode=$1
if [ "$mode" = signal ]; then
    # A shutdown request (SIGTERM to PID 1): init must stop its child and power off, saying how the
    # child ended.
    echo "READY signal"
    kill -TERM 1
    sleep 30
    echo "FAIL signal: init did not stop the script within 30 s"
    exit 1
fi
if [ "$mode" = cad ]; then
    # Ctrl-Alt-Del, pressed by the host through QEMU's monitor once it reads READY: init turned CAD off,
    # so the kernel sends PID 1 SIGINT instead of rebooting at once.
    echo "READY cad"
    sleep 30
    echo "FAIL cad: init did not stop the script within 30 s"
    exit 1
fi
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
oneline() { tr '\n' '|' < "$1"; }
# Container cgroups below $1 (spawner-self is where spawner moves the processes of a busy cgroup).
containers() { for d in "$1"/spawner-*; do [ -d "$d" ] && [ "${d##*/}" != spawner-self ] && echo "$d"; done; }

# What init's VM mode set up: the pseudo file systems (cgroup2 with nsdelegate) and the hostname. (It
# also binds the initramfs over itself: rootfs has no parent mount, so spawner's pivot_root below would
# fail with EINVAL on it.)
missing=
for m in "proc /proc proc" "sysfs /sys sysfs" "devtmpfs /dev devtmpfs" "devpts /dev/pts devpts" \
    "tmpfs /dev/shm tmpfs" "tmpfs /run tmpfs" "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate"; do
    grep -q "^$m" /proc/mounts || missing="$missing [$m]"
done
if [ -z "$missing" ]; then pass vm-mounts; else fail vm-mounts "missing$missing in $(oneline /proc/mounts)"; fi
if [ "$(hostname)" = vmtest-host ]; then pass vm-hostname; else fail vm-hostname "$(hostname)"; fi
mount -t tmpfs -o mode=1777 tmp /tmp

echo "INFO kernel $(uname -r), $(nproc) cpus, cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"

if insmod /lib/overlay.ko && grep -qw overlay /proc/filesystems; then pass overlay; else fail overlay "insmod failed"; fi

cg=$(cat /proc/self/cgroup)
if [ "$cg" = "0::/" ]; then pass root-cgroup; else fail root-cgroup "the script is in $cg, not the root cgroup"; fi

# A plain run from the root cgroup (exempt from the no-internal-processes rule), in its own UTS namespace.
out=$($S run --network none $IMG -- sh -c 'echo hello from $(hostname)' 2>/tmp/err); rc=$?
case "$rc:$out" in
    "0:hello from vmtest-host") fail hello "the container has the VM's hostname" ;;
    "0:hello from "?*) pass hello; echo "INFO $out" ;;
    *) fail hello "exit $rc, stdout '$out', stderr $(oneline /tmp/err)" ;;
esac

$S run --network none --memory 32m $IMG -- dd if=/dev/zero of=/dev/null bs=128M count=1 >/tmp/out 2>/tmp/err; rc=$?
if [ $rc = 137 ] \
    && grep -qxF 'spawner: container was killed by the OOM killer (memory limit 32 MiB)' /tmp/err \
    && grep -qxF 'init: OOM killer killed 1 process in this container (memory limit 32 MiB)' /tmp/err; then
    pass oom
else
    # Seen about 1 run in 10: after dd, the OOM killer also kills the container's init (memfd:spawner-i).
    fail oom "exit $rc, stderr $(oneline /tmp/err) kernel: $(dmesg | grep 'Killed process' | tail -n 2 | cut -c1-80 | tr '\n' '|')"
fi

# A fork bomb of 100 sleeps under a limit of 20 tasks: forks fail and the run ends.
start=$(date +%s)
$S run --network none --pids-limit 20 $IMG -- sh -c 'for i in $(seq 100); do sleep 3 & echo $i; done; wait' >/tmp/out 2>/tmp/err
rc=$?; n=$(wc -l < /tmp/out); took=$(($(date +%s) - start))
if [ "$n" -gt 0 ] && [ "$n" -lt 20 ] && grep -q "can't fork" /tmp/err && [ $took -lt 30 ]; then
    pass pids-limit; echo "INFO pids-limit: $n of 100 sleeps started, exit $rc, ${took}s"
else
    fail pids-limit "$n of 100 sleeps started, exit $rc, ${took}s, stderr $(oneline /tmp/err)"
fi

# The container sees its own cgroup (cgroup namespace) at /sys/fs/cgroup.
out=$($S run --network none --cpus 0.5 $IMG -- cat /sys/fs/cgroup/cpu.max 2>/tmp/err); rc=$?
if [ "$rc:$out" = "0:50000 100000" ]; then pass cpus; else fail cpus "exit $rc, cpu.max '$out', stderr $(oneline /tmp/err)"; fi

# Docker's other cpu and memory flags, as runc maps them to cgroup v2: --cpu-shares 512 is
# cpu.weight 20, a quota over a period is cpu.max, --memory-reservation is memory.low.
out=$($S run --network none --cpu-shares 512 --cpuset-cpus 0 --cpu-period 50000 --cpu-quota 25000 \
    --memory-reservation 8m $IMG -- cat /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpuset.cpus \
    /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.low 2>/tmp/err); rc=$?
out=$(echo "$out" | tr '\n' '|')
if [ "$rc:$out" = "0:20|0|25000 50000|8388608|" ]; then pass cpu-flags; else fail cpu-flags "exit $rc, stdout '$out', stderr $(oneline /tmp/err)"; fi

left=$(containers /sys/fs/cgroup)
if [ -z "$left" ]; then pass cgroup-removed; else fail cgroup-removed "left behind: $left"; fi

# An explicit parent that does not exist yet: created (and kept, as Docker does), controllers enabled
# from the root down, the container's cgroup removed from below it afterwards.
out=$($S run --network none --cgroup-parent /vmtest/ctrs --memory 16m $IMG -- cat /proc/self/cgroup /sys/fs/cgroup/memory.max 2>/tmp/err); rc=$?
out=$(echo "$out" | tr '\n' '|'); left=$(containers /sys/fs/cgroup/vmtest/ctrs)
if [ "$rc:$out" = "0:0::/|16777216|" ] && [ -d /sys/fs/cgroup/vmtest/ctrs ] && [ -z "$left" ]; then
    pass cgroup-parent
else
    fail cgroup-parent "exit $rc, stdout '$out', left '$left', stderr $(oneline /tmp/err)"
fi

# spawner SIGKILLed: the container must die with it.
$S run --network none $IMG -- sleep 100 >/dev/null 2>/tmp/err &
sp=$!
ctr=; tasks=
for i in $(seq 100); do
    ctr=$(containers /sys/fs/cgroup | head -n 1)
    [ -n "$ctr" ] && tasks=$(cat "$ctr/cgroup.procs" | wc -l) && [ "$tasks" -ge 2 ] && break
    sleep 0.1
done
running=$(ps -o args | grep -c '^sleep 100')
kill -9 $sp; wait $sp 2>/dev/null
gone=no
for i in $(seq 50); do
    [ "$(ps -o args | grep -c '^sleep 100')" = 0 ] && [ -z "$(cat "$ctr/cgroup.procs" 2>/dev/null)" ] && { gone=yes; break; }
    sleep 0.1
done
if [ -n "$ctr" ] && [ "$running" = 1 ] && [ $gone = yes ]; then
    pass spawner-killed
else
    fail spawner-killed "cgroup '$ctr' with $tasks tasks, $running sleep running before, gone after: $gone"
fi
if [ -n "$ctr" ] && [ -d "$ctr" ]; then
    echo "INFO spawner-killed: the empty cgroup $ctr is left behind"
    $S run --network none $IMG -- true 2>/dev/null
    if [ -d "$ctr" ]; then
        echo "INFO spawner-killed: still there after the next spawner run (no stale cleanup); removing it"
        rmdir "$ctr"
    else
        echo "INFO spawner-killed: the next spawner run removed it"
    fi
else
    echo "INFO spawner-killed: no cgroup left behind"
fi

# The no-internal-processes rule: spawner started from a non-root cgroup that holds processes.
mkdir /sys/fs/cgroup/busy
sh -c '
    echo $$ > /sys/fs/cgroup/busy/cgroup.procs
    sleep 100 & bg=$!
    spawner --root /tmp/state run --network none --memory 64m --pids-limit 50 --cpus 1 '$IMG' -- cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max >/tmp/out 2>/tmp/err
    echo $? > /tmp/rc
    kill $bg
'
rc=$(cat /tmp/rc); out=$(oneline /tmp/out); left=$(containers /sys/fs/cgroup/busy)
if [ "$rc:$out" = "0:0::/|67108864|50|" ] && [ -z "$left" ] && [ -z "$(cat /sys/fs/cgroup/busy/cgroup.procs)" ]; then
    pass busy-cgroup
    echo "INFO busy-cgroup: busy/ now has $(ls -d /sys/fs/cgroup/busy/spawner-* | tr '\n' ' '); subtree_control: $(cat /sys/fs/cgroup/busy/cgroup.subtree_control)"
else
    fail busy-cgroup "exit $rc, stdout '$out', left $left, stderr $(oneline /tmp/err)"
fi

# Device access control on cgroup v2: the BPF program on the container's cgroup. The host's /dev is
# given as a volume with the `dev` option, so mount flags do not stop anything and only the program
# does: the VM's RAM disk (its "host disk") must not open, /dev/null must.
P="-v /bin/probe:/probe:ro"
insmod /lib/brd.ko rd_nr=1 rd_size=1024 && printf 'vm disk data' > /dev/ram0
$S -v run --network none $P -v /dev:/hostdev:dev $IMG -- /probe open /hostdev/ram0 r -- open /hostdev/null rw >/tmp/out 2>/tmp/err; rc=$?
out=$(oneline /tmp/out)
if [ "$rc:$out" = "0:open: EPERM|open: ok|" ] && grep -q "devices: device rules enforced by a cgroup2 BPF program" /tmp/err; then
    pass device-program
else
    fail device-program "exit $rc, stdout '$out', stderr $(oneline /tmp/err)"
fi
# --device with read-only access: read works, write is refused by the program.
$S run --network none $P --device /dev/ram0:/dev/xda:r $IMG -- sh -c 'head -c 12 /dev/xda; echo; /probe open /dev/xda w' >/tmp/out 2>/tmp/err; rc=$?
out=$(oneline /tmp/out)
if [ "$rc:$out" = "0:vm disk data|open: EPERM|" ]; then pass device-option; else fail device-option "exit $rc, stdout '$out', stderr $(oneline /tmp/err)"; fi

# Docker's seccomp profile on this kernel: no nested user namespace, no io_uring.
$S run --network none $P $IMG -- /probe clone-newuser -- clone3-newuser -- io_uring_setup -- fork >/tmp/out 2>/tmp/err; rc=$?
out=$(oneline /tmp/out)
if [ "$rc:$out" = "0:clone-newuser: EPERM|clone3-newuser: ENOSYS|io_uring_setup: EPERM|fork: ok|" ]; then
    pass seccomp-vm
else
    fail seccomp-vm "exit $rc, stdout '$out', stderr $(oneline /tmp/err)"
fi

# x32 syscalls (this boot has syscall.x32=y): they work without the filter (so x32 is really on) and
# kill the process under it, a new user namespace included.
$S run --network none $P --security-opt seccomp=unconfined $IMG -- /probe x32-getpid >/tmp/out 2>/tmp/err; rc1=$?; out1=$(oneline /tmp/out)
$S run --network none $P $IMG -- /probe x32-unshare-newuser >/tmp/out 2>/tmp/err; rc2=$?; out2=$(oneline /tmp/out)
$S run --network none $P $IMG -- /probe x32-getpid >/tmp/out 2>/tmp/err; rc3=$?
if [ "$rc1:$out1" = "0:x32-getpid: ok|" ] && [ "$rc2:$out2" = "0:x32-unshare-newuser: killed by signal 31|" ] && [ $rc3 = 159 ]; then
    pass x32
else
    fail x32 "unconfined: exit $rc1 '$out1'; unshare: exit $rc2 '$out2'; getpid: exit $rc3"
fi

# The escapes of tests/tests/escapes.rs that depend most on the kernel's mount API, on this older
# kernel: a disk node made in the container, a working directory through a leaked fd, a mask
# redirected through a volume, a writable submount under a read-only volume.
mkdir -p /tmp/devvol /tmp/rv/sub && ln -s /proc/sys/kernel/core_pattern /tmp/devvol/null && mount -t tmpfs none /tmp/rv/sub
problems=
out=$($S run --network none $P $IMG -- /probe mknod-block /dev/disk 1 0 -- open /dev/disk r 2>&1 | tr '\n' '|')
[ "$out" = "mknod-block: ok|open: EACCES|" ] || problems="$problems [mknod: $out]"
$S run --network none -w /dev/fd/5/../../../../../../tmp/vm-canary $IMG -- true 2>/dev/null; rc=$?
{ [ $rc = 125 ] && [ ! -e /tmp/vm-canary ]; } || problems="$problems [workdir: exit $rc, canary $(ls -d /tmp/vm-canary 2>&1)]"
out=$($S run --network none -v /tmp/devvol/null:/dev/null $IMG -- stat -c '%F %t:%T' /proc/keys 2>&1)
[ "$out" = "character special file 1:3" ] || problems="$problems [mask: $out]"
out=$($S run --network none -v /tmp/rv:/data:ro $IMG -- sh -c 'touch /data/sub/x 2>&1; echo $?' | tr '\n' '|')
[ "$out" = "touch: /data/sub/x: Read-only file system|1|" ] || problems="$problems [ro: $out]"
umount /tmp/rv/sub
if [ -z "$problems" ]; then pass escapes-vm; else fail escapes-vm "$problems"; fi

# spawner-runc on a bundle of the image. A containerd-style spec (every device denied, nothing
# allowed) still gets the nodes every runtime allows, and no other: the rootfs's own disk node
# stays shut.
mkdir -p /tmp/oci/img /tmp/oci/b/rootfs && ln -s /bin/spawner /tmp/oci/spawner-runc
tar -xf $IMG -C /tmp/oci/img
for l in $(sed 's/.*"Layers":\[//; s/\].*//; s/[",]/ /g' /tmp/oci/img/manifest.json); do tar -xf /tmp/oci/img/$l -C /tmp/oci/b/rootfs; done
cp /bin/probe /tmp/oci/b/rootfs/probe && mknod /tmp/oci/b/rootfs/ram0 b 1 0
R="/tmp/oci/spawner-runc --root /tmp/oci/state"
(cd /tmp/oci/b && /tmp/oci/spawner-runc spec)
sed -i 's|"sh"|"/probe", "open", "/dev/null", "rw", "--", "open", "/ram0", "r"|' /tmp/oci/b/config.json
$R run -b /tmp/oci/b d1 >/tmp/out 2>/tmp/err; rc=$?
out=$(oneline /tmp/out)
if [ "$rc:$out" = "0:open: ok|open: EPERM|" ]; then pass runc-devices; else fail runc-devices "exit $rc, stdout '$out', stderr $(oneline /tmp/err)"; fi
# A user namespace of its own on a pure v2 host: root inside is 100000 outside, and its cgroup
# namespace (owned by the user namespace) lets it mount its cgroup2.
chown -R 100000:100000 /tmp/oci/b/rootfs
sed -i 's|"/probe", "open", "/dev/null", "rw", "--", "open", "/ram0", "r"|"sh", "-c", "id -u; grep -c cgroup2 /proc/mounts; awk '"'"'{print $1, $2, $3}'"'"' /proc/self/uid_map"|' /tmp/oci/b/config.json
sed -i 's|"namespaces": \[|"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}], "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}], "namespaces": [{"type": "user"},|' /tmp/oci/b/config.json
$R run -b /tmp/oci/b u1 >/tmp/out 2>/tmp/err; rc=$?
out=$(oneline /tmp/out)
if [ "$rc:$out" = "0:0|1|0 100000 65536|" ]; then pass runc-userns; else fail runc-userns "exit $rc, stdout '$out', stderr $(oneline /tmp/err)"; fi

echo "DONE $fails failed"
exit $fails
"#;

/// A kernel package extracted under target/vm: its vmlinuz, and the overlay and brd (RAM disk)
/// modules.
struct Kernel {
    vmlinuz: PathBuf,
    overlay: PathBuf,
    brd: PathBuf,
}

/// The kernel a meta package (`linux-image-amd64`, or `VM_KERNEL=linux-image-6.12-amd64`) depends
/// on, downloaded and extracted once into target/vm.
fn kernel(dir: &Path) -> Result<Kernel> {
    let meta = std::env::var("VM_KERNEL").unwrap_or_else(|_| "linux-image-amd64".into());
    let depends = output(cmd("apt-cache").args(["depends", &meta]))?;
    let package = depends
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .map(str::trim)
        .filter(|p| p.starts_with("linux-image-"))
        .ok_or_else(|| format!("apt-cache depends {meta} names no linux-image package"))?
        .to_string();
    let version = package.trim_start_matches("linux-image-").to_string();
    // The modules the VM loads, by their place in the package (without the compression suffix).
    let wanted = ["fs/overlayfs/overlay.ko", "drivers/block/brd.ko"];
    // Named for what it holds: an extraction of an older set of modules is not reused.
    let extracted = dir.join(format!("{package}-overlay-brd"));
    let vmlinuz = extracted.join(format!("boot/vmlinuz-{version}"));
    let module_path = |m: &str| extracted.join(format!("lib/modules/{version}/kernel")).join(m);
    if !vmlinuz.exists() {
        std::fs::create_dir_all(dir)?;
        // Exactly this package: a glob would fetch every kernel version there is.
        if run(cmd("apt-get").current_dir(dir).args(["download", "-q", &package])).is_err() {
            run(cmd("apt-get").args(["update", "-q"]))?;
            run(cmd("apt-get").current_dir(dir).args(["download", "-q", &package]))?;
        }
        let deb = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                name.starts_with(&format!("{package}_")) && name.ends_with(".deb")
            })
            .ok_or_else(|| format!("apt-get download {package} left no .deb in {}", dir.display()))?;
        let tmp = dir.join(format!("{package}.tmp"));
        let _ = std::fs::remove_dir_all(&tmp);
        run(cmd("dpkg-deb").arg("-x").arg(&deb).arg(&tmp))?;
        // Keep only what the VM needs (the package holds ~400 MB of modules).
        let keep = tmp.join("keep");
        let module_dirs = wanted.map(|m| {
            let parent = Path::new(m).parent().unwrap_or(Path::new("")).display().to_string();
            format!("lib/modules/{version}/kernel/{parent}")
        });
        for part in std::iter::once(format!("boot/vmlinuz-{version}")).chain(module_dirs) {
            let to = keep.join(&part);
            if to.exists() {
                continue;
            }
            std::fs::create_dir_all(to.parent().ok_or("no parent")?)?;
            std::fs::rename(tmp.join(&part), &to)?;
        }
        std::fs::rename(&keep, &extracted)?;
        std::fs::remove_dir_all(&tmp)?;
        std::fs::remove_file(&deb)?;
    }
    let mut modules = Vec::new();
    for m in wanted {
        let module = module_path(m);
        if !module.exists() {
            // Compressed modules: busybox insmod may not read them, so decompress on the host.
            for (ext, tool) in [("xz", "xz"), ("zst", "zstd")] {
                let packed = PathBuf::from(format!("{}.{ext}", module.display()));
                if packed.exists() {
                    apt_install(&[if tool == "xz" { "xz-utils" } else { "zstd" }])?;
                    run(cmd(tool).args(["-d", "-k", "-q"]).arg(&packed))?;
                }
            }
        }
        if !module.exists() {
            return Err(format!("no module {} in {}", m, extracted.display()).into());
        }
        modules.push(module);
    }
    let [overlay, brd] = <[PathBuf; 2]>::try_from(modules).map_err(|_| "two modules")?;
    Ok(Kernel { vmlinuz, overlay, brd })
}

/// The initramfs: init at /init, busybox, spawner, the overlay module, the image and the script.
fn initramfs(dir: &Path, dist: &crate::Dist, image: &Path, kernel: &Kernel) -> Result<PathBuf> {
    let stage = dir.join("stage");
    let _ = std::fs::remove_dir_all(&stage);
    for d in ["bin", "lib", "images", "etc", "dev", "proc", "sys", "run", "tmp"] {
        std::fs::create_dir_all(stage.join(d))?;
    }
    let copy = |from: &Path, to: &str| -> Result<()> {
        std::fs::copy(from, stage.join(to)).map_err(|e| format!("copy {}: {e}", from.display()))?;
        Ok(())
    };
    copy(&dist.init, "init")?;
    copy(&dist.spawner, "bin/spawner")?;
    copy(Path::new("/bin/busybox"), "bin/busybox")?;
    copy(&kernel.overlay, "lib/overlay.ko")?;
    copy(&kernel.brd, "lib/brd.ko")?;
    copy(&dist.probe, "bin/probe")?;
    copy(image, "images/busybox-docker.tar")?;
    std::os::unix::fs::symlink("busybox", stage.join("bin/sh"))?;
    std::fs::write(stage.join("test.sh"), SCRIPT)?;
    std::fs::write(stage.join("etc/hostname"), "vmtest-host\n")?;
    // The kernel opens /dev/console for init before anything is mounted.
    run(cmd("mknod").arg(stage.join("dev/console")).args(["c", "5", "1"]))?;
    let cpio = dir.join("initramfs.cpio");
    pack_cpio(&stage, &cpio)?;
    Ok(cpio)
}

/// Everything below `stage`, owned by root, as a newc cpio archive at `out` (an initramfs part).
pub(crate) fn pack_cpio(stage: &Path, out: &Path) -> Result<()> {
    run(cmd("sh")
        .current_dir(stage)
        .arg("-c")
        .arg("find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet > \"$0\"")
        .arg(out))
}

/// What one boot printed and how it ended.
struct Boot {
    console: Vec<String>,
    took: Duration,
    /// None when QEMU had to be killed (the machine did not power off in time).
    exit_status: Option<i32>,
    powered_off: bool,
}

/// Boots the VM with `cmdline` at the end of the kernel's command line (`rdinit=… -- ARGS`) and
/// `memory` MiB, echoing the console. When a console line ends with `trigger.0`, `trigger.1` is typed
/// into QEMU's stdin (the serial line, or the monitor after Ctrl-A c).
fn boot(
    kernel: &Kernel,
    initrd: &Path,
    name: &str,
    cmdline: &str,
    memory: u32,
    trigger: Option<(&str, &str)>,
) -> Result<Boot> {
    // syscall.x32=y: Debian builds x32 in but leaves it off; the x32 check needs it on.
    let append = format!("console=ttyS0 quiet panic=-1 syscall.x32=y {cmdline}");
    let mut qemu = Command::new("qemu-system-x86_64");
    // TCG: a KVM guest hangs on this machine.
    qemu.args(["-machine", "q35", "-smp", "1", "-nographic", "-no-reboot", "-nic", "none"])
        .args(["-m", &memory.to_string()])
        .arg("-kernel")
        .arg(&kernel.vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(&append)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    println!("\n$ qemu-system-x86_64 … -append \"{append}\"");
    let start = Instant::now();
    let mut child = qemu.spawn().map_err(|e| format!("qemu-system-x86_64: {e}"))?;
    let stdout = child.stdout.take().ok_or("no qemu stdout")?;
    let mut stdin = child.stdin.take().ok_or("no qemu stdin")?;
    let trigger = trigger.map(|(line, keys)| (line.to_string(), keys.to_string()));
    let (tx, rx) = mpsc::channel();
    let name = name.to_string();
    let reader = std::thread::spawn(move || {
        use std::io::Write;
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = strip_escapes(&String::from_utf8_lossy(&line));
            println!("[{name} {:5.1}s] {text}", start.elapsed().as_secs_f64());
            if let Some((_, keys)) = trigger.as_ref().filter(|(t, _)| text.ends_with(t.as_str())) {
                let _ = stdin.write_all(keys.as_bytes()).and_then(|()| stdin.flush());
            }
            // SeaBIOS ends "Booting from ROM.." without a newline: the first line of Linux follows it.
            let text = match text.strip_prefix("Booting from ROM") {
                Some(rest) => rest.trim_start_matches('.').to_string(),
                None => text,
            };
            let _ = tx.send(text);
            line.clear();
        }
    });
    let powered_off = loop {
        if let Some(status) = child.try_wait()? {
            break status.success();
        }
        if start.elapsed() > BOOT_TIMEOUT {
            eprintln!("xtask: the VM has not powered off after {BOOT_TIMEOUT:?}: killing QEMU");
            child.kill()?;
            child.wait()?;
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = start.elapsed();
    let _ = reader.join();
    let console: Vec<String> = rx.try_iter().collect();
    let exit_status = console.iter().rev().find_map(|l| exit_status(l));
    Ok(Boot { console, took, exit_status, powered_off })
}

/// The line without its line end and the terminal escapes SeaBIOS sends (`ESC c`, `ESC [ … letter`).
fn strip_escapes(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.trim_end_matches(['\r', '\n']).chars();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// N from init's `init: main process …; powering off (exit status N)`.
fn exit_status(line: &str) -> Option<i32> {
    let rest = &line[line.find("init: main process ")?..];
    rest.split_once("; powering off (exit status ")?.1.strip_suffix(')')?.parse().ok()
}

/// Checks one boot's console: every expected check passed, none failed, init reported `status`
/// (None: PID 1 is not our init, and says nothing).
fn verdict(boot: &Boot, expected: &[&str], status: Option<i32>, must_say: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    for line in &boot.console {
        if let Some(fail) = line.strip_prefix("FAIL ") {
            problems.push(format!("check failed: {fail}"));
        }
        if line.contains("Kernel panic") {
            problems.push(format!("kernel: {line}"));
        }
    }
    for name in expected {
        // A kernel message may land in front of a line of the script's.
        if !boot.console.iter().any(|l| l.ends_with(&format!("PASS {name}"))) {
            problems.push(format!("check {name} did not pass"));
        }
    }
    for text in must_say {
        if !boot.console.iter().any(|l| l.contains(text)) {
            problems.push(format!("the console never said {text:?}"));
        }
    }
    match (boot.exit_status, status) {
        (_, None) => {}
        (None, Some(_)) => problems.push("init printed no `powering off (exit status N)` line".into()),
        (Some(s), Some(status)) if s != status => {
            problems.push(format!("init's exit status was {s}, expected {status}"))
        }
        (Some(_), Some(_)) => {}
    }
    if !boot.powered_off {
        problems.push(format!("the VM did not power off cleanly ({:.0?})", boot.took));
    }
    problems
}

/// `built`: the static binaries and busybox image the caller has just built (`cargo xtask test`),
/// else they are built here.
pub fn test(built: Option<(&crate::Dist, &PathBuf)>) -> Result<()> {
    apt_install(&["qemu-system-x86", "cpio", "busybox-static"])?;
    let dir = root().join("target/vm");
    let kernel = kernel(&dir)?;
    // VM_TEST_DIST=DIR: test the static init and spawner in DIR instead of building them.
    let test_dist = std::env::var_os("VM_TEST_DIST").map(PathBuf::from);
    let owned;
    let (dist, image) = match (test_dist, built) {
        (None, Some((dist, image))) => (dist, image.clone()),
        (test_dist, _) => {
            owned = match test_dist {
                Some(d) => {
                    crate::Dist { init: d.join("init"), spawner: d.join("spawner"), probe: d.join("probe") }
                }
                None => crate::dist()?,
            };
            (&owned, crate::images::busybox(&crate::images::build(false)?)?.clone())
        }
    };
    let initrd = initramfs(&dir, dist, &image, &kernel)?;
    println!("initramfs: {} bytes", std::fs::metadata(&initrd)?.len());
    let systemd_initrd = crate::vm_systemd::initramfs(&dir, &dist.spawner, &image)?;
    println!("systemd initramfs: {} bytes", std::fs::metadata(&systemd_initrd)?.len());
    let only_systemd = std::env::var("VM_TEST_ONLY").is_ok_and(|v| v == "systemd");

    // Four machines at once: one vCPU each (a 2-vCPU TCG guest now and then oopses in early boot
    // while patching kernel text), so the two host cores are shared; the signal boots end in
    // seconds, so mostly two run side by side.
    type Handle<'s> = std::thread::ScopedJoinHandle<'s, std::result::Result<Boot, String>>;
    let (classic, systemd) = std::thread::scope(|s| {
        let boot = |name: &'static str, initrd: &PathBuf, cmdline: String, memory, trigger| {
            let (kernel, initrd) = (&kernel, initrd.clone());
            s.spawn(move || boot(kernel, &initrd, name, &cmdline, memory, trigger).map_err(|e| e.to_string()))
        };
        let ours = |args: &str| format!("rdinit=/init -- /bin/sh /test.sh {args}");
        // The systemd userland is ~100 MB, unpacked into RAM beside its cpio.
        let systemd = boot("vm-systemd", &systemd_initrd, crate::vm_systemd::CMDLINE.into(), 1024, None);
        let classic = (!only_systemd).then(|| {
            (
                boot("vm", &initrd, ours("main"), 512, None),
                boot("vm-sigterm", &initrd, ours("signal"), 512, None),
                // Ctrl-A c: QEMU's monitor; then the key combination, as if pressed on the machine's
                // keyboard.
                boot(
                    "vm-cad",
                    &initrd,
                    ours("cad"),
                    512,
                    Some(("READY cad", "\x01c\nsendkey ctrl-alt-delete\n\x01c")),
                ),
            )
        });
        let join = |h: Handle<'_>| h.join().map_err(|_| "a boot thread panicked".to_string()).and_then(|r| r);
        (classic.map(|(main, term, cad)| (join(main), join(term), join(cad))), join(systemd))
    });
    let systemd = systemd?;
    let classic = match classic {
        Some((main, term, cad)) => Some((main?, term?, cad?)),
        None => None,
    };
    println!("\nvm-test summary:");
    let consoles = classic.iter().map(|(main, _, _)| main).chain([&systemd]);
    for line in consoles.flat_map(|boot| boot.console.iter()) {
        if line.starts_with("PASS ") || line.starts_with("FAIL ") {
            println!("  {line}");
        }
    }
    let mut boots = Vec::new();
    if let Some((main, term, cad)) = &classic {
        boots.push(("checks", main, verdict(main, MAIN_CHECKS, Some(0), &[])));
        let said = ["init: main process killed by SIGTERM"];
        boots.push((
            "SIGTERM to PID 1",
            term,
            verdict(
                term,
                &[],
                Some(143),
                &["READY signal", "init: SIGTERM received: shutting down", said[0]],
            ),
        ));
        boots.push((
            "Ctrl-Alt-Del",
            cad,
            verdict(cad, &[], Some(143), &["READY cad", "init: SIGINT received: shutting down", said[0]]),
        ));
    }
    let systemd_checks = crate::vm_systemd::CHECKS;
    boots.push(("systemd", &systemd, verdict(&systemd, systemd_checks, None, &["DONE 0 failed"])));
    // Each check that printed its PASS line, and each boot judged ok, is a pass.
    let checks = classic.iter().flat_map(|(main, _, _)| MAIN_CHECKS.iter().map(move |c| (main, c)));
    let mut passed = checks
        .chain(systemd_checks.iter().map(|c| (&systemd, c)))
        .filter(|(boot, c)| boot.console.iter().any(|l| l.trim_end().ends_with(&format!("PASS {c}"))))
        .count();
    let mut failed = 0;
    for (name, boot, problems) in boots {
        let status = boot.exit_status.map_or("none".to_string(), |s| s.to_string());
        if problems.is_empty() {
            passed += 1;
            println!(
                "  ok    {name}: powered off after {:.1}s, exit status {status}",
                boot.took.as_secs_f64()
            );
        } else {
            failed += problems.len();
            for p in problems {
                println!("  FAIL  {name}: {p}");
            }
        }
    }
    println!("vm-test: {passed} passed, {failed} failed");
    if failed > 0 {
        return Err(format!("vm-test: {failed} problem(s)").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::exit_status;

    #[test]
    fn strips_terminal_escapes() {
        assert_eq!(super::strip_escapes("\x1bc\x1b[?7l\x1b[2JSeaBIOS\r\n"), "SeaBIOS");
        assert_eq!(super::strip_escapes("PASS oom\r\n"), "PASS oom");
    }

    #[test]
    fn parses_inits_power_off_line() {
        let line = "init: main process exited with code 3; powering off (exit status 3)\r";
        assert_eq!(exit_status(line.trim_end()), Some(3));
        let line = "[  5.1] init: main process killed by SIGTERM; powering off (exit status 143)";
        assert_eq!(exit_status(line), Some(143));
        assert_eq!(exit_status("init: main process exited with code 0"), None);
        assert_eq!(exit_status("powering off (exit status 1)"), None);
    }
}
