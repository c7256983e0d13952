//! Tests against the real cgroup hierarchies of this machine. They need root and a delegated
//! (non-root) cgroup of ours: in the v1 memory hierarchy on a v1/hybrid host, in the cgroup2
//! hierarchy on a v2 host. Without those they cannot run, and say so: a skip with a message, or a
//! failure with `CI=true` (CI runs as root in a delegated cgroup, so there it is a broken setup).
//! Tests named `v1_…` are about v1 alone and skip on a v2 host; the others run on both and assert
//! what each host does, including the reason a limit is unavailable (this hybrid machine
//! delegates only memory). Everything they create goes below our own cgroup and is removed by
//! Drop guards, also when an assertion fails.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::*;

/// A unique cgroup name per test and test process.
fn test_name(test: &str) -> String {
    format!("spawner-test-{}-{test}", std::process::id())
}

/// A test that cannot run here says why and returns; with `CI=true` it fails instead.
fn cannot_run<T>(why: impl std::fmt::Display) -> Option<T> {
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI=true, and this test cannot run: {why}");
    eprintln!("skipped: {why}");
    None
}

/// Our own cgroup directory in the v1 memory hierarchy, if these tests can run here.
fn v1_memory_base() -> Option<PathBuf> {
    if !rustix::process::geteuid().is_root() {
        return cannot_run("not root");
    }
    if detect().ok()? != Version::V1 {
        // Not a failure on CI: the v1 tests' subjects do not exist on a v2 host.
        eprintln!("skipped: not a v1/hybrid host");
        return None;
    }
    let mounts = read_mountinfo().ok()?;
    let procs = read_proc_self_cgroup().ok()?;
    let Some(memory) = v1::Hierarchy::find("memory", &mounts, &procs).ok()? else {
        return cannot_run("no v1 memory hierarchy");
    };
    match memory.base_dir(None, "test") {
        Ok(base) => Some(base),
        Err(e) => cannot_run(e),
    }
}

/// This host's cgroup version, if the tests that run on both can create cgroups here (as root,
/// below a cgroup of ours that is not a hierarchy root).
fn usable_host() -> Option<Version> {
    if !rustix::process::geteuid().is_root() {
        return cannot_run("not root");
    }
    match detect().unwrap() {
        Version::V1 => v1_memory_base().map(|_| Version::V1),
        Version::V2 => {
            let own = v2::own_cgroup(&read_proc_self_cgroup().unwrap()).unwrap();
            if own.as_os_str().is_empty() {
                cannot_run("our cgroup in the cgroup2 hierarchy is its root")
            } else {
                Some(Version::V2)
            }
        }
    }
}

/// The directory the cgroup of `name` gets on this host: v2, or the v1 memory hierarchy.
fn container_dir(name: &str) -> PathBuf {
    match detect().unwrap() {
        Version::V1 => v1_memory_base().unwrap().join(name),
        Version::V2 => {
            Path::new(CGROUP_ROOT).join(v2::own_cgroup(&read_proc_self_cgroup().unwrap()).unwrap()).join(name)
        }
    }
}

/// Whether our cgroup in v1 hierarchy `controller` is its root (not delegated), as on this host
/// for pids and cpu.
fn v1_own_is_root(controller: &'static str) -> bool {
    let mounts = read_mountinfo().unwrap();
    let procs = read_proc_self_cgroup().unwrap();
    v1::Hierarchy::find(controller, &mounts, &procs).unwrap().is_some_and(|h| h.own.as_os_str().is_empty())
}

/// A child we started: killed and reaped on drop unless waited for.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn spawn_gated(script: &str) -> ChildGuard {
        // `read` holds the script until the child is in the cgroup.
        let child = Command::new("sh")
            .args(["-c", &format!("read x; {script}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh");
        ChildGuard(Some(child))
    }

    fn id(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    fn release(&mut self) {
        let stdin = self.0.as_mut().unwrap().stdin.as_mut().unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        self.0.take().unwrap().wait().unwrap()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Removes a directory left by a test that failed before a `Cgroup` owned it.
struct DirGuard(PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn read_trimmed(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

#[test]
fn v1_memory_limit_oom_kill_and_remove() {
    let Some(base) = v1_memory_base() else { return };
    let name = test_name("oom");
    let _leftover = DirGuard(base.join(&name));
    let limits = Limits { memory: Some(32 << 20), ..Limits::default() };
    let cgroup = Cgroup::create(&name, None, &limits).unwrap();
    let dir = base.join(&name);
    // Memory first; where other hierarchies are delegated too, they follow.
    assert_eq!(cgroup.paths()[0], dir.as_path());
    assert_eq!(cgroup.v2_dir(), None);
    assert_eq!(cgroup.memory_limit(), Some(32 << 20));
    assert_eq!(read_trimmed(&dir.join("memory.limit_in_bytes")), "33554432");
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    if memsw.exists() {
        assert_eq!(read_trimmed(&memsw), "67108864", "Docker default: 2 x memory");
    }
    assert_eq!(cgroup.oom_kills().unwrap(), 0);

    // 128 MiB at once, bounded so that a broken limit cannot eat the machine. python3 is the
    // child itself (exec); the fallback pipeline makes sh report 128 + 9.
    let mut child = ChildGuard::spawn_gated(
        "if command -v python3 >/dev/null; then exec python3 -c \"x = b'x' * (128 << 20)\"; \
         else head -c 200m /dev/zero | tail; fi",
    );
    cgroup.add_process(child.id()).unwrap();
    assert_eq!(files::read_procs(&dir).unwrap(), vec![child.id() as i32]);
    child.release();
    let status = child.wait();
    assert!(status.signal() == Some(9) || status.code() == Some(137), "expected an OOM kill, got {status:?}");
    assert_eq!(cgroup.oom_kills().unwrap(), 1);

    cgroup.remove().unwrap();
    assert!(!dir.exists());
}

#[test]
fn v1_kill_all_kills_children_too() {
    let Some(base) = v1_memory_base() else { return };
    let name = test_name("kill");
    let _leftover = DirGuard(base.join(&name));
    let cgroup = Cgroup::create(&name, None, &Limits::default()).unwrap();
    let dir = base.join(&name);
    assert_eq!(cgroup.memory_limit(), None);
    assert_eq!(read_trimmed(&dir.join("memory.limit_in_bytes")).len(), 19);

    let mut child = ChildGuard::spawn_gated("sleep 100 & sleep 100 & wait");
    cgroup.add_process(child.id()).unwrap();
    child.release();
    wait_until("sh and two sleeps in the cgroup", || files::read_procs(&dir).unwrap().len() == 3);
    cgroup.kill_all().unwrap();
    assert_eq!(child.wait().signal(), Some(9));
    assert!(files::read_procs(&dir).unwrap().is_empty());
    cgroup.remove().unwrap();
    assert!(!dir.exists());
}

#[test]
fn v1_drop_removes_with_process_inside() {
    let Some(base) = v1_memory_base() else { return };
    let name = test_name("drop");
    let dir = base.join(&name);
    let _leftover = DirGuard(dir.clone());
    let mut child = ChildGuard::spawn_gated("exec sleep 100");
    {
        let cgroup = Cgroup::create(&name, None, &Limits::default()).unwrap();
        cgroup.add_process(child.id()).unwrap();
        assert!(dir.is_dir());
    }
    assert!(!dir.exists());
    assert_eq!(child.wait().signal(), Some(9));
}

#[test]
fn v1_pids_and_cpu_limits_need_delegated_hierarchies() {
    let Some(base) = v1_memory_base() else { return };
    for (controller, why, limits) in [
        ("pids", "pids limit", Limits { memory: Some(32 << 20), pids: Some(10), ..Limits::default() }),
        ("cpu", "cpus limit", Limits { cpus: Some(0.5), ..Limits::default() }),
    ] {
        if !v1_own_is_root(controller) {
            eprintln!("skipped {controller}: our {controller} cgroup is delegated here");
            continue;
        }
        let name = test_name(&format!("refused-{controller}"));
        let _leftover = DirGuard(base.join(&name));
        let err = Cgroup::create(&name, None, &limits).unwrap_err().to_string();
        let expected = format!("cgroup: {why} needs the v1 {controller} hierarchy");
        assert!(err.starts_with(&expected) && err.contains("not delegated to us"), "{err}");
        assert!(!base.join(&name).exists(), "nothing may be created: {err}");
    }
}

#[test]
fn v1_create_refuses_existing_and_bad_limits() {
    let Some(base) = v1_memory_base() else { return };
    let name = test_name("exists");
    let _leftover = DirGuard(base.join(&name));
    let first = Cgroup::create(&name, None, &Limits::default()).unwrap();
    let err = Cgroup::create(&name, None, &Limits::default()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(Errno::EXIST.raw_os_error()));
    assert!(err.to_string().starts_with("cgroup: create /"), "{err}");
    // The failed second create must not have removed the first one's directory.
    assert!(base.join(&name).is_dir());
    first.remove().unwrap();

    let tiny = Limits { memory: Some(1 << 20), ..Limits::default() };
    assert!(matches!(Cgroup::create(&name, None, &tiny), Err(Error::Invalid(_))));
    assert!(!base.join(&name).exists());
}

#[test]
fn v1_remove_stale_leftovers() {
    let Some(base) = v1_memory_base() else { return };
    let prefix = format!("{}-", test_name("stale"));
    let (dead, alive) = (format!("{prefix}dead"), format!("{prefix}alive"));
    let _leftovers = (DirGuard(base.join(&dead)), DirGuard(base.join(&alive)));
    // A spawner killed with SIGKILL never runs its destructors.
    std::mem::forget(Cgroup::create(&dead, None, &Limits::default()).unwrap());
    let keep = Cgroup::create(&alive, None, &Limits::default()).unwrap();
    let removed = remove_stale(None, &prefix, |n| n.ends_with("alive")).unwrap();
    assert_eq!(removed, vec![dead.clone()]);
    assert!(!base.join(&dead).exists());
    assert!(base.join(&alive).is_dir());
    keep.remove().unwrap();
}

/// Device rules on a v1/hybrid host: the devices controller enforces them where that hierarchy is
/// delegated; where it is not (this machine) the cgroup is made all the same, without them, and
/// `device_control` says why.
#[test]
fn v1_device_rules_or_the_reason_there_are_none() {
    let Some(base) = v1_memory_base() else { return };
    let name = test_name("devices");
    let dir = base.join(&name);
    let _leftover = DirGuard(dir.clone());
    let limits = Limits { devices: docker_default(), ..Limits::default() };
    let cgroup = Cgroup::create(&name, None, &limits).unwrap();
    let Backend::V1(v1) = &cgroup.backend else { unreachable!("v1_memory_base checked the version") };
    match cgroup.device_control() {
        DeviceControl::Unavailable(why) => {
            assert!(v1_own_is_root("devices"), "devices is delegated, yet: {why}");
            assert!(why.starts_with("the v1 devices hierarchy (") && why.contains("not delegated"), "{why}");
            assert_eq!(cgroup.paths(), vec![dir.as_path()]);
            assert_eq!(cgroup.self_join_files(), vec![dir.join("tasks")]);
        }
        DeviceControl::V1 => {
            let devices = v1.dirs().iter().find(|d| d.controller == "devices").expect("a devices directory");
            let mut listed: Vec<String> =
                read_trimmed(&devices.path.join("devices.list")).lines().map(str::to_owned).collect();
            let mut expected: Vec<String> =
                docker_default()[1..].iter().map(DeviceRule::cgroup_line).collect();
            listed.sort();
            expected.sort();
            assert_eq!(listed, expected);
            assert!(cgroup.self_join_files().contains(&devices.path.join("tasks")));
        }
        DeviceControl::Bpf => {
            let unified = v1.dirs().last().unwrap();
            assert_eq!(unified.controller, v1::UNIFIED);
            assert_eq!(cgroup.self_join_files().last(), Some(&unified.path.join("cgroup.procs")));
        }
    }
    cgroup.remove().unwrap();
    assert!(!dir.exists());
}

/// Wherever device rules are enforced (a BPF program on v2 or on a hybrid host's cgroup2, or the v1
/// devices controller), a process in the cgroup opens /dev/null but not /dev/kmsg, and may make a
/// node for kmsg but not open it. Skips where they cannot be enforced.
#[test]
fn device_rules_are_enforced() {
    if usable_host().is_none() {
        return;
    }
    let limits = Limits { devices: docker_default(), ..Limits::default() };
    let cgroup = Cgroup::create(&test_name("device-rules"), None, &limits).unwrap();
    if let DeviceControl::Unavailable(_) = cgroup.device_control() {
        eprintln!("skipped: {}", cgroup.device_control());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let node = tmp.path().join("kmsg");
    let mut child = ChildGuard::spawn_gated(&format!(
        "dd if=/dev/null of=/dev/null count=0 2>/dev/null || exit 2; \
         dd if=/dev/kmsg of=/dev/null count=0 2>/dev/null && exit 3; \
         mknod {node} c 1 11 || exit 4; \
         dd if={node} of=/dev/null count=0 2>/dev/null && exit 5; \
         exit 0",
        node = node.display()
    ));
    cgroup.add_process(child.id()).unwrap();
    child.release();
    // 2: /dev/null refused; 3: /dev/kmsg opened; 4: mknod refused; 5: the new node opened.
    assert_eq!(child.wait().code(), Some(0));
    cgroup.remove().unwrap();
}

/// v2 create/add/kill/remove on the hybrid host's `unified` mount, which has no controllers.
/// Only runs when our cgroup there is not the root (creating at its root is not allowed here).
#[test]
fn v2_on_unified_without_controllers() {
    if !rustix::process::geteuid().is_root() {
        cannot_run::<()>("not root");
        return;
    }
    let root = Path::new("/sys/fs/cgroup/unified");
    let is_cgroup2 = rustix::fs::statfs(root)
        .map(|st| {
            #[allow(clippy::unnecessary_cast)]
            let t = st.f_type as u64 & 0xffff_ffff;
            t == CGROUP2_SUPER_MAGIC
        })
        .unwrap_or(false);
    if !is_cgroup2 {
        eprintln!("skipped: no cgroup2 at {}", root.display());
        return;
    }
    let own = v2::own_cgroup(&read_proc_self_cgroup().unwrap()).unwrap();
    if own.as_os_str().is_empty() {
        eprintln!("skipped: our cgroup in {} is its root", root.display());
        return;
    }
    let name = test_name("v2");
    let dir = root.join(&own).join(&name);
    let _leftover = DirGuard(dir.clone());
    let cgroup = Cgroup {
        name: name.clone(),
        backend: Backend::V2(v2::CgroupV2::create(root, &name, None, &Limits::default()).unwrap()),
        memory_limit: AtomicU64::new(0),
        device_control: DeviceControl::not_asked(),
        remove_on_drop: true,
        systemd_unit: None,
    };
    assert_eq!(cgroup.v2_dir(), Some(dir.as_path()));
    let mut child = ChildGuard::spawn_gated("exec sleep 100");
    cgroup.add_process(child.id()).unwrap();
    assert_eq!(files::read_procs(&dir).unwrap(), vec![child.id() as i32]);
    cgroup.kill_all().unwrap();
    assert_eq!(child.wait().signal(), Some(9));
    cgroup.remove().unwrap();
    assert!(!dir.exists());
}

/// The error of a create whose limits need a v1 hierarchy that is not delegated here, after
/// checking that nothing was left behind.
fn refused_on_v1(name: &str, limits: &Limits) -> String {
    let err = Cgroup::create(name, None, limits).unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(!container_dir(name).exists(), "nothing may be created: {err}");
    err.to_string()
}

/// The expected start of [`refused_on_v1`]'s error for a `controller` that is not delegated.
fn not_delegated(why: &str, controller: &str) -> String {
    format!("cgroup: {why} needs the v1 {controller} hierarchy (/sys/fs/cgroup/{controller}) below /, which is not delegated to us")
}

/// CPU time (user + system, in clock ticks) that process `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command (which may hold spaces) in parentheses: state is field 3, utime 14.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Memory reservation (soft limit) and swappiness, then a memory update of the running cgroup:
/// v1 memory.soft_limit_in_bytes and memory.swappiness, v2 memory.low (swappiness ignored).
#[test]
fn memory_reservation_swappiness_and_update() {
    let Some(version) = usable_host() else { return };
    let name = test_name("reservation");
    let dir = container_dir(&name);
    let _leftover = DirGuard(dir.clone());
    let limits = Limits {
        memory: Some(64 << 20),
        memory_reservation: Some(32 << 20),
        memory_swappiness: Some(10),
        ..Limits::default()
    };
    let cgroup = Cgroup::create(&name, None, &limits).unwrap();
    let (limit_file, soft_file) = match version {
        Version::V1 => {
            assert_eq!(read_trimmed(&dir.join("memory.swappiness")), "10");
            ("memory.limit_in_bytes", "memory.soft_limit_in_bytes")
        }
        Version::V2 => ("memory.max", "memory.low"),
    };
    assert_eq!(read_trimmed(&dir.join(limit_file)), "67108864");
    assert_eq!(read_trimmed(&dir.join(soft_file)), "33554432");

    let mut child = ChildGuard::spawn_gated("exec sleep 100");
    cgroup.add_process(child.id()).unwrap();
    cgroup
        .update(&Limits { memory: Some(48 << 20), memory_reservation: Some(16 << 20), ..Limits::default() })
        .unwrap();
    assert_eq!(read_trimmed(&dir.join(limit_file)), "50331648");
    assert_eq!(read_trimmed(&dir.join(soft_file)), "16777216");
    assert_eq!(cgroup.memory_limit(), Some(48 << 20));
    // Lifting the limit: unlimited in the kernel's words.
    cgroup.update(&Limits { memory: Some(0), ..Limits::default() }).unwrap();
    let unlimited = read_trimmed(&dir.join(limit_file));
    assert!(unlimited == "max" || unlimited.len() == 19, "{unlimited}");
    assert_eq!(cgroup.memory_limit(), None);
    assert!(matches!(
        cgroup.update(&Limits { memory: Some(1 << 20), ..Limits::default() }),
        Err(Error::Invalid(_))
    ));
    cgroup.remove().unwrap();
    assert_eq!(child.wait().signal(), Some(9));
}

/// cpu shares, quota and period: v2 cpu.weight (converted) and cpu.max, updated while running;
/// on v1, cpu.shares and the CFS files where the cpu hierarchy is delegated, else the reason.
#[test]
fn cpu_weight_and_max_or_why_not() {
    let Some(version) = usable_host() else { return };
    let name = test_name("cpu");
    let dir = container_dir(&name);
    let _leftover = DirGuard(dir.clone());
    let limits = Limits {
        cpu_shares: Some(512),
        cpu_quota: Some(20_000),
        cpu_period: Some(50_000),
        ..Limits::default()
    };
    if version == Version::V1 && v1_own_is_root("cpu") {
        let err = refused_on_v1(&name, &limits);
        assert!(err.starts_with(&not_delegated("cpu shares", "cpu")), "{err}");
        return;
    }
    let cgroup = Cgroup::create(&name, None, &limits).unwrap();
    if let Backend::V1(c) = &cgroup.backend {
        let cpu = &c.dirs().iter().find(|d| d.controller == "cpu").unwrap().path;
        assert_eq!(read_trimmed(&cpu.join("cpu.shares")), "512");
        assert_eq!(read_trimmed(&cpu.join("cpu.cfs_quota_us")), "20000");
        assert_eq!(read_trimmed(&cpu.join("cpu.cfs_period_us")), "50000");
        return;
    }
    assert_eq!(read_trimmed(&dir.join("cpu.weight")), "20");
    assert_eq!(read_trimmed(&dir.join("cpu.max")), "20000 50000");
    let mut child = ChildGuard::spawn_gated("exec sleep 100");
    cgroup.add_process(child.id()).unwrap();
    cgroup.update(&Limits { cpus: Some(0.5), cpu_shares: Some(2048), ..Limits::default() }).unwrap();
    assert_eq!(read_trimmed(&dir.join("cpu.max")), "50000 100000");
    assert_eq!(read_trimmed(&dir.join("cpu.weight")), "79");
    cgroup.update(&Limits { cpu_period: Some(20_000), ..Limits::default() }).unwrap();
    assert_eq!(read_trimmed(&dir.join("cpu.max")), "50000 20000", "the quota is kept");
    cgroup.update(&Limits { cpu_quota: Some(-1), ..Limits::default() }).unwrap();
    assert_eq!(read_trimmed(&dir.join("cpu.max")), "max 20000");
    cgroup.remove().unwrap();
    assert_eq!(child.wait().signal(), Some(9));
}

/// cpuset cpus and mems: v2 cpuset.cpus/mems (the cpuset controller enabled for it); on v1 the
/// reason where the cpuset hierarchy is not delegated.
#[test]
fn cpuset_or_why_not() {
    let Some(version) = usable_host() else { return };
    let name = test_name("cpuset");
    let dir = container_dir(&name);
    let _leftover = DirGuard(dir.clone());
    let limits = Limits { cpuset_cpus: Some("0".into()), cpuset_mems: Some("0".into()), ..Limits::default() };
    if version == Version::V1 && v1_own_is_root("cpuset") {
        let err = refused_on_v1(&name, &limits);
        assert!(err.starts_with(&not_delegated("cpuset cpus", "cpuset")), "{err}");
        return;
    }
    let cgroup = Cgroup::create(&name, None, &limits).unwrap();
    let (cpuset_dir, effective) = match &cgroup.backend {
        Backend::V2(_) => (dir.clone(), "cpuset.cpus.effective"),
        Backend::V1(c) => (
            c.dirs().iter().find(|d| d.controller == "cpuset").unwrap().path.clone(),
            "cpuset.effective_cpus",
        ),
    };
    assert_eq!(read_trimmed(&cpuset_dir.join("cpuset.cpus")), "0");
    assert_eq!(read_trimmed(&cpuset_dir.join("cpuset.mems")), "0");
    assert_eq!(read_trimmed(&cpuset_dir.join(effective)), "0");
    // A process that joins runs on CPU 0 only.
    let mut child = ChildGuard::spawn_gated("exec sleep 100");
    cgroup.add_process(child.id()).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    assert!(status.lines().any(|l| l == "Cpus_allowed_list:\t0"), "{status}");
    cgroup.remove().unwrap();
    assert_eq!(child.wait().signal(), Some(9));
}

/// Block IO weight: v2 io.bfq.weight or io.weight when the kernel has either (else the reason);
/// on v1 the reason where blkio is not delegated.
#[test]
fn block_io_weight_or_why_not() {
    let Some(version) = usable_host() else { return };
    let name = test_name("io");
    let dir = container_dir(&name);
    let _leftover = DirGuard(dir.clone());
    let limits = Limits { block_io_weight: Some(500), ..Limits::default() };
    if version == Version::V1 && v1_own_is_root("blkio") {
        let err = refused_on_v1(&name, &limits);
        assert!(err.starts_with(&not_delegated("block IO weight", "blkio")), "{err}");
        return;
    }
    match Cgroup::create(&name, None, &limits) {
        Ok(cgroup) => {
            let weight_dir = match &cgroup.backend {
                Backend::V2(_) => dir.clone(),
                Backend::V1(c) => c.dirs().iter().find(|d| d.controller == "blkio").unwrap().path.clone(),
            };
            let read = |f: &str| std::fs::read_to_string(weight_dir.join(f)).ok();
            let written = match version {
                Version::V2 => read("io.bfq.weight")
                    .map(|w| ("io.bfq.weight", w))
                    .or(read("io.weight").map(|w| ("io.weight", w))),
                Version::V1 => read("blkio.weight")
                    .map(|w| ("blkio.weight", w))
                    .or(read("blkio.bfq.weight").map(|w| ("blkio.bfq.weight", w))),
            };
            let (file, text) = written.expect("a weight file");
            eprintln!("block IO weight went to {file}: {text:?}");
            match file {
                "io.weight" => assert!(text.starts_with("default 4950"), "{text}"),
                _ => assert!(text.starts_with("default 500") || text.trim() == "500", "{text}"),
            }
            cgroup.remove().unwrap();
        }
        Err(e) => {
            eprintln!("block IO weight unavailable here: {e}");
            assert!(e.to_string().starts_with("cgroup: block IO weight needs"), "{e}");
            assert!(!dir.exists(), "nothing may be left: {e}");
        }
    }
}

/// OCI `unified`: v2 files written as given, after (so over) the named limits; on v1 refused,
/// naming the key, before anything is created.
#[test]
fn unified_files_or_why_not() {
    let Some(version) = usable_host() else { return };
    let name = test_name("unified");
    let dir = container_dir(&name);
    let _leftover = DirGuard(dir.clone());
    let limits = Limits {
        memory: Some(64 << 20),
        unified: [("memory.high", "33554432"), ("memory.max", "50331648")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ..Limits::default()
    };
    if version == Version::V1 {
        let err = refused_on_v1(&name, &limits);
        assert!(err.starts_with("cgroup: unified key \"memory.high\" is a cgroup v2 file"), "{err}");
        return;
    }
    let cgroup = Cgroup::create(&name, None, &limits).unwrap();
    assert_eq!(read_trimmed(&dir.join("memory.high")), "33554432");
    assert_eq!(read_trimmed(&dir.join("memory.max")), "50331648", "unified wins");
    cgroup
        .update(&Limits {
            unified: [("memory.high".to_owned(), "max".to_owned())].into(),
            ..Limits::default()
        })
        .unwrap();
    assert_eq!(read_trimmed(&dir.join("memory.high")), "max");
    cgroup.remove().unwrap();
}

/// pids limits set by update; on v1 here refused, as the pids hierarchy is not delegated.
#[test]
fn update_pids_or_why_not() {
    let Some(version) = usable_host() else { return };
    let name = test_name("update-pids");
    let dir = container_dir(&name);
    let _leftover = DirGuard(dir.clone());
    let cgroup = Cgroup::create(&name, None, &Limits::default()).unwrap();
    let update = Limits { pids: Some(50), ..Limits::default() };
    if version == Version::V1 && v1_own_is_root("pids") {
        let err = cgroup.update(&update).unwrap_err().to_string();
        assert_eq!(
            err,
            "cgroup: pids limit needs the v1 pids hierarchy, and this cgroup has no directory there (it \
             was not usable when the cgroup was created)"
        );
        cgroup.remove().unwrap();
        return;
    }
    let pids_dir = match &cgroup.backend {
        Backend::V2(_) => dir.clone(),
        Backend::V1(c) => c.dirs().iter().find(|d| d.controller == "pids").unwrap().path.clone(),
    };
    cgroup.update(&update).unwrap();
    assert_eq!(read_trimmed(&pids_dir.join("pids.max")), "50");
    cgroup.update(&Limits { pids: Some(-1), ..Limits::default() }).unwrap();
    assert_eq!(read_trimmed(&pids_dir.join("pids.max")), "max");
    cgroup.remove().unwrap();
}

/// Freezing stops the processes (a busy loop's CPU time stops growing) until thawed, and a frozen
/// cgroup can still be removed. On v1 without a usable freezer hierarchy: the reason.
#[test]
fn freeze_and_thaw_or_why_not() {
    let Some(version) = usable_host() else { return };
    let name = test_name("freeze");
    let dir = container_dir(&name);
    let _leftover = DirGuard(dir.clone());
    let cgroup = Cgroup::create(&name, None, &Limits::default()).unwrap();
    assert_eq!(cgroup.freezer_state().unwrap(), FreezerState::Thawed);
    if version == Version::V1 && v1_own_is_root("freezer") {
        let err = cgroup.freeze().unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err}");
        assert!(
            err.to_string().starts_with(
                "cgroup: pausing needs the v1 freezer hierarchy (/sys/fs/cgroup/freezer) below /, which is \
                 not delegated to us"
            ),
            "{err}"
        );
        // The reason survives a reopen in another process.
        let reopened = Cgroup::reopen(&cgroup.location()).unwrap();
        assert_eq!(reopened.freeze().unwrap_err().to_string(), err.to_string());
        assert!(!cgroup.is_frozen().unwrap());
        cgroup.remove().unwrap();
        return;
    }
    let mut child = ChildGuard::spawn_gated("while :; do :; done");
    cgroup.add_process(child.id()).unwrap();
    child.release();
    let pid = child.id();
    wait_until("the busy loop uses CPU", || cpu_ticks(pid) > 0);
    let ran = |what: &str| {
        let before = cpu_ticks(pid);
        std::thread::sleep(Duration::from_millis(300));
        let after = cpu_ticks(pid);
        eprintln!("{what}: {before} -> {after} ticks");
        after > before
    };
    cgroup.freeze().unwrap();
    assert_eq!(cgroup.freezer_state().unwrap(), FreezerState::Frozen);
    assert!(cgroup.is_frozen().unwrap());
    assert!(!ran("frozen"), "the process ran while frozen");
    cgroup.thaw().unwrap();
    assert!(!cgroup.is_frozen().unwrap());
    assert!(ran("thawed"), "the process did not run after thawing");
    // Frozen again, and removed as it is: the processes die all the same.
    cgroup.freeze().unwrap();
    let reopened = Cgroup::reopen(&cgroup.location()).unwrap();
    assert!(reopened.is_frozen().unwrap(), "a reopened handle sees the pause");
    cgroup.remove().unwrap();
    assert_eq!(child.wait().signal(), Some(9));
    assert!(!dir.exists());
}

/// `pids()` lists every process in the cgroup, sorted (runc's `ps`).
#[test]
fn pids_of_the_processes_inside() {
    if usable_host().is_none() {
        return;
    }
    let name = test_name("pids");
    let dir = container_dir(&name);
    let _leftover = DirGuard(dir.clone());
    let cgroup = Cgroup::create(&name, None, &Limits::default()).unwrap();
    assert_eq!(cgroup.pids().unwrap(), Vec::<i32>::new());
    let mut child = ChildGuard::spawn_gated("sleep 100 & wait");
    cgroup.add_process(child.id()).unwrap();
    assert_eq!(cgroup.pids().unwrap(), vec![child.id() as i32]);
    child.release();
    wait_until("sh and its sleep", || cgroup.pids().unwrap().len() == 2);
    let pids = cgroup.pids().unwrap();
    assert!(pids.contains(&(child.id() as i32)) && pids.windows(2).all(|w| w[0] < w[1]), "{pids:?}");
    // The other one is the shell's background sleep.
    let sleep = pids.iter().find(|&&p| p != child.id() as i32).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{sleep}/status")).unwrap();
    assert!(status.lines().any(|l| l == format!("PPid:\t{}", child.id())), "{status}");
    cgroup.remove().unwrap();
    assert_eq!(child.wait().signal(), Some(9));
}

/// A cgroup found again from its saved location (as runc's `kill` or `delete` after `create`):
/// the same directories and processes; dropping the reopened handle leaves the cgroup, `remove`
/// on it kills and removes. A location naming a hierarchy root is refused.
#[test]
fn reopen_from_saved_location_and_remove() {
    let Some(version) = usable_host() else { return };
    let name = test_name("reopen");
    let dir = container_dir(&name);
    let _leftover = DirGuard(dir.clone());
    let limits = Limits { memory: Some(64 << 20), devices: docker_default(), ..Limits::default() };
    let cgroup = Cgroup::create(&name, None, &limits).unwrap();
    let mut child = ChildGuard::spawn_gated("exec sleep 100");
    cgroup.add_process(child.id()).unwrap();
    let paths: Vec<PathBuf> = cgroup.paths().iter().map(|p| p.to_path_buf()).collect();
    let control = cgroup.device_control();
    // What `create` would save in the state file; the cgroup outlives the handle.
    let json = serde_json::to_string(&cgroup.into_location()).unwrap();
    assert!(dir.is_dir());
    let saved: CgroupLocation = serde_json::from_str(&json).unwrap();
    assert_eq!(saved.version, version);
    {
        let reopened = Cgroup::reopen(&saved).unwrap();
        assert_eq!(reopened.paths(), paths.iter().map(PathBuf::as_path).collect::<Vec<_>>());
        assert_eq!(reopened.pids().unwrap(), vec![child.id() as i32]);
        assert_eq!(reopened.memory_limit(), Some(64 << 20));
        assert_eq!(reopened.device_control(), control);
        assert_eq!(reopened.oom_kills().unwrap(), 0);
    }
    assert!(dir.is_dir(), "dropping a reopened handle removes nothing");
    Cgroup::reopen(&saved).unwrap().remove().unwrap();
    assert_eq!(child.wait().signal(), Some(9));
    for p in &paths {
        assert!(!p.exists(), "{}", p.display());
    }
    // Gone already: reopening and removing again is fine.
    Cgroup::reopen(&saved).unwrap().remove().unwrap();

    // The root of the hierarchy, under a name that matches its last component: refused.
    let root = match version {
        Version::V1 => PathBuf::from("/sys/fs/cgroup/memory"),
        Version::V2 => PathBuf::from(CGROUP_ROOT),
    };
    let hostile = CgroupLocation {
        name: root.file_name().unwrap().to_string_lossy().into_owned(),
        dirs: vec![SavedDir { controller: saved.dirs[0].controller.clone(), path: root.clone() }],
        ..saved.clone()
    };
    let err = Cgroup::reopen(&hostile).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "cgroup: saved cgroup directory {} is the root of a cgroup mount, not a container cgroup",
            root.display()
        )
    );
    let other_version = CgroupLocation {
        version: if version == Version::V1 { Version::V2 } else { Version::V1 },
        ..saved.clone()
    };
    assert!(Cgroup::reopen(&other_version).is_err());
}
