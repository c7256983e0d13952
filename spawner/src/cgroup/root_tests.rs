//! Tests against the real cgroup hierarchies of this machine. They need root and a delegated
//! (non-root) cgroup of ours in the v1 memory hierarchy, and skip with a message otherwise.
//! Everything they create goes below our own cgroup and is removed by Drop guards, also when an
//! assertion fails.

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

/// Our own cgroup directory in the v1 memory hierarchy, if these tests can run here.
fn v1_memory_base() -> Option<PathBuf> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: not root");
        return None;
    }
    if detect().ok()? != Version::V1 {
        eprintln!("skipped: not a v1/hybrid host");
        return None;
    }
    let mounts = read_mountinfo().ok()?;
    let procs = read_proc_self_cgroup().ok()?;
    let Some(memory) = v1::Hierarchy::find("memory", &mounts, &procs).ok()? else {
        eprintln!("skipped: no v1 memory hierarchy");
        return None;
    };
    match memory.base_dir(None, "test") {
        Ok(base) => Some(base),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
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
    assert_eq!(cgroup.paths(), vec![dir.as_path()]);
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
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: not root");
        return;
    }
    // Cgroup::create goes below our own cgroup, which must not be a hierarchy root.
    let own_is_root = match detect().unwrap() {
        Version::V2 => v2::own_cgroup(&read_proc_self_cgroup().unwrap()).unwrap().as_os_str().is_empty(),
        Version::V1 => v1_memory_base().is_none(),
    };
    if own_is_root {
        eprintln!("skipped: our cgroup is a hierarchy root");
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
        eprintln!("skipped: not root");
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
        memory_limit: None,
        device_control: DeviceControl::not_asked(),
        removed: false,
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
