//! Container escapes, tried as an attacker would (issue: "Close the container escapes"). Each test
//! is one attack from a hostile image or a hostile container against the real spawner, and names
//! the defence that stops it; each fails if that defence is removed. Host paths an attack aims at
//! are canaries under /tmp, never real system files; no host sysctl is written.

use integration_tests::hostile::{self, Layer};
use integration_tests::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn busybox() -> PathBuf {
    image("busybox-docker.tar")
}

/// A host path an attack tries to create or read: `/tmp/escape-canary-<pid>-<name>`. Must not exist
/// before; removed on drop.
struct Canary(PathBuf);

impl Canary {
    fn new(name: &str) -> Canary {
        let path = PathBuf::from(format!("/tmp/escape-canary-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let _ = std::fs::remove_file(&path);
        Canary(path)
    }

    fn assert_absent(&self) {
        assert!(!self.0.exists(), "the attack created {} on the host", self.0.display());
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A loop device over a 1 MiB file of the test's, detached on drop: a host disk the container
/// must not reach (machine note: the VM's own disk cannot be opened through a new node even by
/// the host, a loop device can).
struct LoopDisk {
    device: PathBuf,
    file: PathBuf,
}

impl LoopDisk {
    const DATA: &'static [u8] = b"host disk data";

    fn new(dir: &Path) -> LoopDisk {
        let file = dir.join("disk.img");
        let mut data = Self::DATA.to_vec();
        data.resize(1 << 20, 0);
        std::fs::write(&file, data).unwrap();
        let out = Command::new("losetup").args(["--find", "--show"]).arg(&file).output().unwrap();
        assert!(out.status.success(), "losetup: {}", stderr(&out));
        LoopDisk { device: PathBuf::from(stdout(&out).trim()), file }
    }

    fn numbers(&self) -> (u32, u32) {
        let rdev = std::fs::metadata(&self.device).unwrap().rdev();
        (rustix::fs::major(rdev), rustix::fs::minor(rdev))
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
        let _ = std::fs::remove_file(&self.file);
    }
}

/// `spawner run [OPTIONS] IMAGE -- /probe PROBES…` with the probe bound in; returns its output.
fn probe(state: &StateDir, options: &[&str], image: &Path, probes: &str) -> Output {
    let volume = probe_volume();
    let mut args = vec!["run", "-v", &volume];
    args.extend_from_slice(options);
    let image = image.display().to_string();
    args.extend_from_slice(&[&image, "--", "/probe"]);
    args.extend(probes.split(' '));
    state.run(&args)
}

fn assert_lines(out: &Output, expected: &[&str]) {
    let text = stdout(out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, expected, "stderr: {}", stderr(out));
}

// ---- devices ----

#[test]
fn a_host_disk_node_made_in_the_container_opens_nowhere() {
    let state = StateDir::new("esc-mknod");
    let disk = LoopDisk::new(&state.0);
    let (major, minor) = disk.numbers();
    let volume = state.0.join("volume");
    std::fs::create_dir(&volume).unwrap();
    let vol = format!("{}:/vol", volume.display());
    let (ma, mi) = (major.to_string(), minor.to_string());
    let mut probes = Vec::new();
    // CAP_MKNOD stays (Docker's default set): the node is made, in /dev, the rootfs and a volume, and
    // opens in none of them; nor does a /dev/kmsg made the same way (writes into the host's log).
    for dir in ["/dev", "/tmp", "/vol"] {
        probes.push(format!("mknod-block {dir}/disk {ma} {mi} -- open {dir}/disk r"));
    }
    probes.push("mknod-char /dev/kmsg 1 11 -- open /dev/kmsg w".into());
    let out = probe(&state, &["-v", &vol], &busybox(), &probes.join(" -- "));
    assert_lines(
        &out,
        &[
            "mknod-block: ok",
            "open: EACCES",
            "mknod-block: ok",
            "open: EACCES",
            "mknod-block: ok",
            "open: EACCES",
            "mknod-char: ok",
            "open: EACCES",
        ],
    );
}

#[test]
fn a_device_given_with_device_is_usable() {
    let state = StateDir::new("esc-device");
    let disk = LoopDisk::new(&state.0);
    let spec = format!("{}:/dev/xda", disk.device.display());
    let out = state.run(&[
        "run",
        "--device",
        &spec,
        &busybox().display().to_string(),
        "--",
        "head",
        "-c",
        "14",
        "/dev/xda",
    ]);
    assert_eq!(stdout(&out).as_bytes(), LoopDisk::DATA, "{}", stderr(&out));
    // Not a device: refused up front, in one line.
    let out =
        state.run(&["run", "--device", "/etc/hostname", &busybox().display().to_string(), "--", "true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(stderr(&out), "spawner: device /etc/hostname: not a device node\n");
}

#[test]
fn default_devices_are_the_hosts_nodes_on_a_nodev_dev() {
    let state = StateDir::new("esc-devs");
    let script = "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T' /dev/$d; done; \
                  head -c 3 /dev/zero | wc -c; echo x > /dev/null && echo null-ok; grep ' /dev ' /proc/mounts | grep -c nodev";
    let out = state.run(&["run", &busybox().display().to_string(), "--", "sh", "-c", script]);
    assert_eq!(
        stdout(&out),
        "/dev/null character special file 1:3\n/dev/zero character special file 1:5\n\
         /dev/full character special file 1:7\n/dev/random character special file 1:8\n\
         /dev/urandom character special file 1:9\n/dev/tty character special file 5:0\n3\nnull-ok\n1\n",
        "{}",
        stderr(&out)
    );
}

// ---- host fds and image-controlled paths ----

#[test]
fn working_directory_through_an_fd_creates_nothing_on_the_host() {
    let state = StateDir::new("esc-cwd");
    let canary = Canary::new("cwd");
    let up = "../".repeat(12);
    let bb = busybox().display().to_string();
    for fd in 3..=12 {
        for via in ["/dev/fd", "/proc/self/fd"] {
            let dir = format!("{via}/{fd}/{up}{}", canary.0.strip_prefix("/").unwrap().display());
            let out = state.run(&["run", "-w", &dir, &bb, "--", "pwd"]);
            canary.assert_absent();
            assert_eq!(code(&out), 125, "{dir}: {}", stdout(&out));
            assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
        }
    }
    // The same from the image's config.
    let dir = state.0.join("archives");
    std::fs::create_dir(&dir).unwrap();
    let cwd = format!("/dev/fd/4/{up}{}", canary.0.strip_prefix("/").unwrap().display());
    let archive = hostile::on_top_of(&busybox(), Layer::new().dir("opt", 0o755).finish())
        .edit_config(|c| c["config"]["WorkingDir"] = cwd.into())
        .write(&dir, "workdir-fd");
    let out = state.run(&["run", archive.to_str().unwrap(), "--", "pwd"]);
    assert_eq!(code(&out), 125, "{}", stdout(&out));
    canary.assert_absent();
}

#[test]
fn passwd_through_an_fd_reads_no_host_file() {
    let state = StateDir::new("esc-passwd");
    // A root-only host file shaped like a passwd entry: the container must not run as its uid.
    let secret = Canary::new("passwd-secret");
    std::fs::write(&secret.0, "secretuser:x:4242:4242::/:/bin/sh\n").unwrap();
    std::fs::set_permissions(&secret.0, std::fs::Permissions::from_mode(0o600)).unwrap();
    let dir = state.0.join("archives");
    std::fs::create_dir(&dir).unwrap();
    let up = "../".repeat(10);
    for (fd, via) in (3..=8).flat_map(|fd| [(fd, "/dev/fd"), (fd, "/proc/self/fd")]) {
        let target = format!("{via}/{fd}/{up}{}", secret.0.strip_prefix("/").unwrap().display());
        let archive = hostile::on_top_of(&busybox(), Layer::new().symlink("etc/passwd", &target).finish())
            .write(&dir, &format!("passwd-fd{fd}-{}", via.len()));
        let out = state.run(&["run", "-u", "secretuser", archive.to_str().unwrap(), "--", "id", "-u"]);
        assert_ne!(stdout(&out), "4242\n", "fd {fd}: a host file was read as the image's /etc/passwd");
        assert_eq!(code(&out), 125, "fd {fd}: {}", stderr(&out));
        assert!(stderr(&out).contains("/etc/passwd"), "{}", stderr(&out));
    }
}

#[test]
fn a_passwd_that_never_ends_fails_at_once() {
    let state = StateDir::new("esc-fifo");
    let dir = state.0.join("archives");
    std::fs::create_dir(&dir).unwrap();
    let fifo = hostile::on_top_of(&busybox(), Layer::new().fifo("etc/passwd").finish()).write(&dir, "fifo");
    let zero = hostile::on_top_of(&busybox(), Layer::new().symlink("etc/group", "/dev/zero").finish())
        .write(&dir, "zero");
    for (archive, file) in [(fifo, "/etc/passwd"), (zero, "/etc/group")] {
        let out = run_with_limit(state.spawner(&["run", archive.to_str().unwrap(), "--", "true"]), 20);
        assert_eq!(code(&out), 125, "{}", stderr(&out));
        assert_eq!(stderr(&out), format!("spawner: the image's {file} is not a regular file\n"));
    }
}

fn run_with_limit(mut cmd: Command, secs: u64) -> Output {
    wait_or_kill(cmd.spawn().unwrap(), Duration::from_secs(secs))
}

/// SIGKILLs a process this test started, when dropped.
struct KillOnDrop(rustix::process::Pid);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(self.0, rustix::process::Signal::KILL);
    }
}

/// Ctrl-C while the container is still being set up ends the run at once, leaving nothing. The
/// container's first process is stopped (SIGSTOP) in the middle of its setup, which reads a 64 MB
/// /etc/passwd, so that the setup cannot finish by itself.
#[test]
fn ctrl_c_during_setup_ends_the_run() {
    let state = StateDir::new("esc-setup-int");
    let passwd = state.0.join("passwd");
    let line = "someone:x:1000:1000::/home/someone:/bin/sh\n";
    std::fs::write(&passwd, line.repeat((60 << 20) / line.len())).unwrap();
    let vol = format!("{}:/etc/passwd:ro", passwd.display());
    let bb = busybox().display().to_string();
    for attempt in 0..20 {
        let mut child = state.spawner(&["run", "--rm", "-v", &vol, &bb, "--", "true"]).spawn().unwrap();
        let children = format!("/proc/{0}/task/{0}/children", child.id());
        let setup = loop {
            let text = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(pid) = text.split_whitespace().next() {
                break pid.parse::<i32>().unwrap();
            }
            if child.try_wait().unwrap().is_some() {
                panic!("spawner ended before its container process showed");
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        let pid = rustix::process::Pid::from_raw(setup).unwrap();
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::STOP);
        // Still spawner's code (not init yet): the stop caught it in setup.
        let comm = std::fs::read_to_string(format!("/proc/{setup}/comm")).unwrap_or_default();
        if comm.trim() != "spawner" {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::CONT);
            wait_or_kill(child, Duration::from_secs(20));
            eprintln!("attempt {attempt}: setup was already done");
            continue;
        }
        // Should spawner not end it, the test does (a stopped process outlives a killed parent).
        let _stopped = KillOnDrop(pid);
        send(&child, 2);
        let out = wait_or_kill(child, Duration::from_secs(10));
        assert_eq!(code(&out), 130, "{}", stderr(&out));
        assert!(!Path::new(&format!("/proc/{setup}")).exists(), "the stopped container process is left");
        let left: Vec<_> = std::fs::read_dir(state.0.join("containers")).unwrap().flatten().collect();
        assert!(left.is_empty(), "{left:?}");
        return;
    }
    panic!("never caught the container in its setup");
}

// ---- masked paths ----

#[test]
fn masked_paths_cannot_be_redirected_through_a_volume() {
    let state = StateDir::new("esc-mask");
    // A volume over /dev/null that leads to a host sysctl (a volume over all of /dev is refused):
    // the masks must still be the real /dev/null, so /proc/keys stays a harmless null device
    // (never a writable core_pattern).
    let dev = state.0.join("dev");
    std::fs::create_dir(&dev).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", dev.join("null")).unwrap();
    let vol = format!("{}:/dev/null", dev.join("null").display());
    let script = "stat -c '%F %t:%T' /proc/keys /proc/timer_list /proc/interrupts; \
                  if [ -d /sys/devices/virtual/powercap ]; then ls /sys/devices/virtual/powercap | wc -l; else echo 0; fi; \
                  cat /proc/keys | wc -c";
    let out = state.run(&["run", "-v", &vol, &busybox().display().to_string(), "--", "sh", "-c", script]);
    assert_eq!(
        stdout(&out),
        "character special file 1:3\ncharacter special file 1:3\ncharacter special file 1:3\n0\n0\n",
        "{}",
        stderr(&out)
    );
}

// ---- seccomp ----

#[test]
fn seccomp_refuses_what_dockers_profile_refuses() {
    let state = StateDir::new("esc-seccomp");
    let probes = "clone-newuser -- clone3-newuser -- unshare-newuser -- io_uring_setup -- socket-vsock -- \
                  socket-inet -- personality 0 -- personality 0xffffffff -- personality 0400000 -- keyctl -- \
                  fork -- ptrace-traceme";
    let out = probe(&state, &[], &busybox(), probes);
    assert_lines(
        &out,
        &[
            "clone-newuser: EPERM",
            "clone3-newuser: ENOSYS",
            "unshare-newuser: EPERM",
            "io_uring_setup: EPERM",
            "socket-vsock: EPERM",
            "socket-inet: ok",
            "personality: ok",
            "personality: ok",
            "personality: EPERM",
            "keyctl: EPERM",
            "fork: ok",
            "ptrace-traceme: ok",
        ],
    );
}

#[test]
fn x32_syscalls_are_killed() {
    // On a kernel without x32 the kernel itself answers ENOSYS; the filter must kill before that
    // (with x32 enabled, `cargo xtask vm-test` shows the same filter stopping a real x32 unshare).
    let state = StateDir::new("esc-x32");
    let out = probe(&state, &[], &busybox(), "x32-getpid");
    assert_eq!(code(&out), 128 + 31, "killed by SIGSYS: {}{}", stdout(&out), stderr(&out));
    let out = probe(&state, &["--security-opt", "seccomp=unconfined"], &busybox(), "x32-getpid");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn capabilities_open_what_docker_opens() {
    let state = StateDir::new("esc-caps");
    let out = probe(&state, &["--cap-add", "SYS_ADMIN"], &busybox(), "clone-newuser -- clone3-newuser");
    assert_lines(&out, &["clone-newuser: ok", "clone3-newuser: ok"]);
    let script = "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mounted";
    let bb = busybox().display().to_string();
    let out = state.run(&["run", "--cap-add", "SYS_ADMIN", &bb, "--", "sh", "-c", script]);
    assert_eq!(stdout(&out), "mounted\n", "{}", stderr(&out));
    let out = state.run(&["run", &bb, "--", "sh", "-c", script]);
    assert_eq!(stdout(&out), "", "mount without CAP_SYS_ADMIN: {}", stderr(&out));
}

#[test]
fn no_new_privileges_false_keeps_setuid_working_under_the_filter() {
    let state = StateDir::new("esc-nnp");
    let vol = state.0.join("suid");
    std::fs::create_dir(&vol).unwrap();
    std::fs::copy(probe_bin(), vol.join("probe")).unwrap();
    std::fs::set_permissions(vol.join("probe"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    let v = format!("{}:/suid:ro,suid", vol.display());
    let bb = busybox().display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "-u", "1000", "-v", &v];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            &bb,
            "--",
            "sh",
            "-c",
            "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; /suid/probe ids",
        ]);
        state.run(&args)
    };
    let out = run(&["--security-opt", "no-new-privileges=false"]);
    assert_eq!(stdout(&out), "NoNewPrivs:\t0\nSeccomp:\t2\nuid=1000 euid=0\nids: ok\n", "{}", stderr(&out));
    let out = run(&[]);
    assert_eq!(
        stdout(&out),
        "NoNewPrivs:\t1\nSeccomp:\t2\nuid=1000 euid=1000\nids: ok\n",
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_seccomp_profile_file_is_used_and_a_bad_one_refused() {
    let state = StateDir::new("esc-profile");
    let profile = state.0.join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let bb = busybox().display().to_string();
    let out = state.run(&["run", "--security-opt", &opt, &bb, "--", "mkdir", "/tmp/x"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));
    std::fs::write(&profile, r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscals": []}"#).unwrap();
    let out = state.run(&["run", "--security-opt", &opt, &bb, "--", "true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&profile.display().to_string()) && stderr(&out).contains("syscals"),
        "{}",
        stderr(&out)
    );
}

// ---- volumes ----

#[test]
fn a_volume_source_swapped_during_start_is_not_followed() {
    // Another party that can write the source's parent swaps `src` (a directory) and a symlink to
    // a host directory, as fast as it can. Whatever spawner resolved the source to (its -v line),
    // the container gets that directory: the source is opened once, never looked up again.
    let state = StateDir::new("esc-swap");
    let parent = state.0.join("parent");
    let host = Canary::new("swap-host");
    std::fs::create_dir_all(parent.join("src")).unwrap();
    std::fs::write(parent.join("src/marker"), "volume\n").unwrap();
    std::fs::create_dir(&host.0).unwrap();
    std::fs::write(host.0.join("marker"), "host\n").unwrap();
    std::os::unix::fs::symlink(&host.0, parent.join("alt")).unwrap();
    let _swapper = Swapper::start(parent.join("src"), parent.join("alt"));
    let vol = format!("{}:/data", parent.join("src").display());
    let bb = busybox().display().to_string();
    let (mut volume, mut followed) = (0, 0);
    for _ in 0..40 {
        let out = state.run(&["-v", "run", "-v", &vol, &bb, "--", "cat", "/data/marker"]);
        let err = stderr(&out);
        let line = err.lines().find(|l| l.contains("] volume ")).expect("the volume line");
        let resolved = line.split("] volume ").nth(1).unwrap().split(" on /data").next().unwrap();
        if resolved == host.0.display().to_string() {
            assert_eq!(stdout(&out), "host\n", "{line}");
            followed += 1;
        } else {
            // The directory itself, wherever the swaps have moved it since.
            assert!(resolved.starts_with(&parent.display().to_string()), "{line}");
            assert_eq!(
                stdout(&out),
                "volume\n",
                "resolved {resolved} but the container got another directory"
            );
            volume += 1;
        }
    }
    eprintln!("{volume} runs saw the directory, {followed} the symlink, each consistently");
}

/// A thread exchanging two paths as fast as it can, until dropped (a failing test stops it too).
struct Swapper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Swapper {
    fn start(a: PathBuf, b: PathBuf) -> Swapper {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let swapped = rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &a,
                    rustix::fs::CWD,
                    &b,
                    rustix::fs::RenameFlags::EXCHANGE,
                );
                if swapped.is_err() {
                    return;
                }
            }
        });
        Swapper { stop, thread: Some(thread) }
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn read_only_volumes_are_read_only_all_the_way_down() {
    let state = StateDir::new("esc-rro");
    let data = state.0.join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    // A submount inside the volume's source, in a mount namespace of the test's own.
    let script = format!(
        "mount --make-rprivate / && mount -t tmpfs none {data}/sub && exec {spawner} --root {root} run -v {data}:/data:ro {bb} -- sh -c 'touch /data/x; touch /data/sub/x; grep -c \" /data\" /proc/mounts'",
        data = data.display(),
        spawner = spawner_bin().display(),
        root = state.0.display(),
        bb = busybox().display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run(cmd);
    assert_eq!(stdout(&out), "2\n", "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("touch: /data/x: Read-only file system"), "{err}");
    assert!(err.contains("touch: /data/sub/x: Read-only file system"), "{err}");
}

#[test]
fn device_nodes_and_setuid_files_in_a_volume_are_inert() {
    let state = StateDir::new("esc-volnodes");
    let disk = LoopDisk::new(&state.0);
    let (major, minor) = disk.numbers();
    let vol = state.0.join("vol");
    std::fs::create_dir(&vol).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        vol.join("disk"),
        rustix::fs::FileType::BlockDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        rustix::fs::makedev(major, minor),
    )
    .unwrap();
    std::fs::copy(probe_bin(), vol.join("probe")).unwrap();
    std::fs::set_permissions(vol.join("probe"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    let bb = busybox().display().to_string();
    let run = |options: &str| {
        let v = format!("{}:/vol{options}", vol.display());
        state.run(&["run", "-v", &v, &bb, "--", "/vol/probe", "open", "/vol/disk", "r"])
    };
    // As root in the container the node does not open; with the `dev` option it does (so it is the
    // default that stops it).
    assert_lines(&run(""), &["open: EACCES"]);
    assert_lines(&run(":dev"), &["open: ok"]);
    let user = |options: &str| {
        let v = format!("{}:/vol{options}", vol.display());
        state.run(&[
            "run",
            "-u",
            "1000",
            "-v",
            &v,
            "--security-opt",
            "no-new-privileges=false",
            &bb,
            "--",
            "/vol/probe",
            "ids",
        ])
    };
    assert_eq!(stdout(&user("")), "uid=1000 euid=1000\nids: ok\n", "nosuid by default");
    assert_eq!(stdout(&user(":suid")), "uid=1000 euid=0\nids: ok\n", "the suid option");
}

// ---- the state directory ----

#[test]
fn a_setuid_file_a_container_wrote_cannot_be_run_by_a_host_user() {
    let state = StateDir::new("esc-upper");
    let bb = busybox().display().to_string();
    let out = state.run(&[
        "run",
        "--name",
        "suid",
        &bb,
        "--",
        "sh",
        "-c",
        "cp /bin/busybox /tmp/sb && chmod 4755 /tmp/sb",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let sb = state.0.join("containers/suid/upper/tmp/sb");
    assert_eq!(std::fs::metadata(&sb).unwrap().mode() & 0o7777, 0o4755);
    let out = run({
        let mut cmd = Command::new("setpriv");
        // Through a shell, as the user would: setpriv's own execve still holds root's capabilities.
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c"])
            .arg(format!("{} id -u", sb.display()));
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    });
    assert_ne!(stdout(&out), "0\n", "a host user ran a container's setuid-root file");
    assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));
    for dir in [state.0.join("containers"), state.0.join("containers/suid")] {
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700, "{}", dir.display());
    }
}

#[test]
fn an_open_or_foreign_state_dir_is_refused() {
    let state = StateDir::new("esc-root");
    let bb = busybox().display().to_string();
    std::fs::set_permissions(&state.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = state.run(&["run", &bb, "--", "true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        format!(
            "spawner: state directory {}: is writable by other users (mode 777): refusing to use it\n",
            state.0.display()
        )
    );
    assert!(std::fs::read_dir(&state.0).unwrap().next().is_none(), "something was written");
    std::fs::set_permissions(&state.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("/tmp", state.0.join("containers")).unwrap();
    let out = state.run(&["run", &bb, "--", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("containers: is a symlink"), "{}", stderr(&out));
}

#[test]
fn stale_cleanup_never_follows_a_symlink() {
    let state = StateDir::new("esc-stale");
    let bb = busybox().display().to_string();
    // A dead-looking run directory elsewhere, reached through `containers` and through an entry.
    let canary = Canary::new("stale");
    std::fs::create_dir_all(canary.0.join("deadrun")).unwrap();
    std::os::unix::fs::symlink(&canary.0, state.0.join("containers")).unwrap();
    let out = state.run(&["run", &bb, "--", "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(canary.0.join("deadrun").exists(), "cleanup followed `containers` and removed a run there");
    std::fs::remove_file(state.0.join("containers")).unwrap();
    assert_eq!(code(&state.run(&["run", &bb, "--", "true"])), 0);
    std::os::unix::fs::symlink(canary.0.join("deadrun"), state.0.join("containers/planted")).unwrap();
    std::fs::create_dir(state.0.join("containers/deadrun")).unwrap();
    let out = state.run(&["-v", "run", &bb, "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("left by a spawner that died"), "{}", stderr(&out));
    assert!(canary.0.join("deadrun").exists(), "cleanup removed what a symlink led to");
}

#[test]
fn a_layer_directory_that_is_not_the_stores_own_is_refused() {
    let state = StateDir::new("esc-layer");
    let bb = busybox().display().to_string();
    assert_eq!(code(&state.run(&["run", &bb, "--", "true"])), 0);
    let layers: Vec<PathBuf> =
        std::fs::read_dir(state.0.join("store/layers/sha256")).unwrap().map(|e| e.unwrap().path()).collect();
    let layer = &layers[0];
    // Replaced by a symlink to another tree.
    let other = state.0.join("other-tree");
    std::fs::create_dir(&other).unwrap();
    std::fs::rename(layer.join("diff"), state.0.join("saved-diff")).unwrap();
    std::os::unix::fs::symlink(&other, layer.join("diff")).unwrap();
    let out = state.run(&["run", &bb, "--", "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("diff: is a symlink: not the store's own layer directory"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(layer.join("diff")).unwrap();
    std::fs::rename(state.0.join("saved-diff"), layer.join("diff")).unwrap();
    // Owned by another user.
    rustix::fs::chown(layer.join("diff"), Some(rustix::process::Uid::from_raw(4242)), None).unwrap();
    let out = state.run(&["run", &bb, "--", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("is owned by uid 4242"), "{}", stderr(&out));
}

// ---- bounds ----

#[test]
fn an_image_with_100000_env_entries_starts() {
    let state = StateDir::new("esc-env");
    let dir = state.0.join("archives");
    std::fs::create_dir(&dir).unwrap();
    let env: Vec<String> = (0..100_000).map(|i| format!("E{i}={}", i % 10)).collect();
    let archive = hostile::on_top_of(&busybox(), Layer::new().dir("opt", 0o755).finish())
        .edit_config(|c| c["config"]["Env"] = env.into())
        .write(&dir, "env");
    let before = children_cpu();
    let out = state.run(&["run", archive.to_str().unwrap(), "--", "sh", "-c", "echo $E99999 $E5"]);
    assert_eq!(stdout(&out), "9 5\n", "{}", stderr(&out));
    eprintln!(
        "spawner CPU for an image with 100,000 Env entries: {:.0} ms",
        (children_cpu() - before) * 1000.0
    );
}

/// CPU seconds (user + system) of this process's waited-for children.
fn children_cpu() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid out-pointer for getrusage.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
