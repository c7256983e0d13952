//! Helpers shared by the integration tests: where the binaries are, running a command with a hang
//! guard, and running init as PID 1 of a new PID namespace.

pub mod hostile;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (tests/ is one level below it).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A binary `cargo xtask dist` built into target/dist, or the path in the environment variable `var`.
fn dist_bin(var: &str, name: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/dist").join(name));
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask dist` first (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// The static init that `cargo xtask dist` built (or `INIT_BIN`).
pub fn init_bin() -> PathBuf {
    dist_bin("INIT_BIN", "init")
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Waits for `child`, killing it (a process this test started) if it takes longer than `limit`: a hang
/// is a failure, never a stuck test run.
pub fn wait_or_kill(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "hung for {limit:?}; stdout: {} stderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `init ARGS` as PID 1 of a new PID namespace with its own /proc. `unshare --kill-child` takes the
/// whole namespace down if the test kills unshare.
pub fn pid1(args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount", "--mount-proc", "--kill-child"]).arg(init_bin()).args(args);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// `init ARGS` as a plain child of the test (subreaper mode).
pub fn init(args: &[&str]) -> Command {
    let mut cmd = Command::new(init_bin());
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

pub fn run(mut cmd: Command) -> Output {
    wait_or_kill(cmd.spawn().unwrap(), Duration::from_secs(60))
}

/// The exit status as a shell reports it: the code, or 128+N for a signal.
pub fn code(out: &Output) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    out.status.code().unwrap_or_else(|| 128 + out.status.signal().unwrap())
}

/// Sends signal `sig` to `child`.
pub fn send(child: &Child, sig: i32) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::from_named_raw(sig).unwrap()).unwrap();
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The static spawner that `cargo xtask dist` built, with init embedded (or `SPAWNER_BIN`).
pub fn spawner_bin() -> PathBuf {
    dist_bin("SPAWNER_BIN", "spawner")
}

/// spawner with runc's command line (`target/dist/spawner-runc`, a link to spawner).
pub fn runc_bin() -> PathBuf {
    dist_bin("SPAWNER_RUNC_BIN", "spawner-runc")
}

/// An OCI bundle in `dir`: the busybox test image's layers extracted into `dir/rootfs`, and
/// `config.json` as `spawner-runc spec` writes it, then changed by `edit` (a JSON value).
pub fn busybox_bundle(dir: &std::path::Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let mut archive = tar::Archive::new(std::fs::File::open(image("busybox-docker.tar")).unwrap());
    let mut members = std::collections::HashMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        members.insert(name, data);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
    for layer in manifest[0]["Layers"].as_array().unwrap() {
        let mut layer = tar::Archive::new(&members[layer.as_str().unwrap()][..]);
        layer.set_preserve_permissions(true);
        layer.unpack(&rootfs).unwrap();
    }
    let out = Command::new(runc_bin()).arg("spec").arg("--bundle").arg(dir).output().unwrap();
    assert!(out.status.success(), "spawner-runc spec: {}", String::from_utf8_lossy(&out.stderr));
    let config = dir.join("config.json");
    let mut value: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    value["process"]["terminal"] = false.into();
    edit(&mut value);
    std::fs::write(&config, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    dir.to_path_buf()
}

/// The static attack probe that `cargo xtask dist` built (or `PROBE_BIN`): bind it into a container
/// with [`probe_volume`] and run `/probe NAME [ARG...]`.
pub fn probe_bin() -> PathBuf {
    dist_bin("PROBE_BIN", "probe")
}

/// `-v` argument that puts the probe at /probe in a container.
pub fn probe_volume() -> String {
    format!("{}:/probe:ro", probe_bin().display())
}

/// The CRI client (`tests/cri-client`), beside the test binary: `cargo build -p cri-client` puts it
/// there (`cargo xtask test` does).
pub fn cri_client_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/TEST-HASH: the client is target/debug/cri.
    let path = exe.ancestors().nth(2).unwrap().join("cri");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p cri-client` first (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// Fails the test when `program` cannot be run (never a silent pass: CI installs it).
pub fn assert_installed(program: &str, args: &[&str]) {
    let ran = Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(ran.is_ok(), "{program} is missing: `cargo xtask test` installs it");
}

/// A test image that `cargo xtask images` built.
pub fn image(name: &str) -> PathBuf {
    let path = workspace().join("target/images").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask images` first (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// Fails unless the test runs in a network namespace other than the machine's (PID 1's): spawner's
/// default network builds a bridge and firewall rules in the namespace it runs in.
pub fn assert_own_network_namespace() {
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap_or_default();
    assert_ne!(
        ns("self"),
        ns("1"),
        "the tests run spawner, whose default network builds a bridge: run them with `cargo xtask test` \
         (a network namespace of their own), or under `unshare --net` with loopback up"
    );
}

/// A state directory of the test's own (layer store, containers), removed when dropped.
pub struct StateDir(pub PathBuf);

impl StateDir {
    pub fn new(test: &str) -> StateDir {
        let dir = std::env::temp_dir().join(format!("spawner-test-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        StateDir(dir)
    }

    /// `spawner --root STATE ARGS`, stdin from /dev/null, output captured.
    pub fn spawner(&self, args: &[&str]) -> Command {
        assert_own_network_namespace();
        let mut cmd = Command::new(spawner_bin());
        cmd.arg("--root").arg(&self.0).args(args);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run(self.spawner(args))
    }

    /// Every path below the layer store with its size and mode: to show a run left it unchanged.
    pub fn store_listing(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![self.0.join("store/layers")];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                let meta = e.path().symlink_metadata().unwrap();
                use std::os::unix::fs::MetadataExt;
                out.push(format!("{} {} {:o} {}", e.path().display(), meta.len(), meta.mode(), meta.mtime()));
                if meta.is_dir() {
                    stack.push(e.path());
                }
            }
        }
        out.sort();
        out
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The v1 memory cgroup (or v2 cgroup) this test process is in, as a directory.
pub fn own_memory_cgroup() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
        if ctrl.split(',').any(|c| c == "memory") {
            return Some(PathBuf::from(format!("/sys/fs/cgroup/memory{}", path.trim_end_matches('/'))));
        }
    }
    let v2 = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(PathBuf::from(format!("/sys/fs/cgroup{}", v2.trim_end_matches('/'))))
}

/// A pty pair; the slave is opened as the controlling terminal of the child's new session.
pub fn open_pty() -> (std::fs::File, std::fs::File) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new().read(true).write(true).open(name.to_str().unwrap()).unwrap();
    (std::fs::File::from(master), slave)
}

/// Reads from the pty master until `want` shows up (or EOF/EIO).
pub fn read_until(master: &mut std::fs::File, want: &str) -> String {
    let mut seen = String::new();
    let mut buf = [0u8; 1024];
    while !seen.contains(want) {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    seen
}

/// Spawns `cmd` as the leader of a new session whose controlling terminal (and stdio) is a fresh pty,
/// as a shell on a terminal would; returns the child and the pty master. `size` sets the window size.
pub fn spawn_on_terminal(mut cmd: Command, size: Option<(u16, u16)>) -> (std::process::Child, std::fs::File) {
    let (master, slave) = open_pty();
    if let Some((rows, cols)) = size {
        let ws = rustix::termios::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        rustix::termios::tcsetwinsize(&slave, ws).unwrap();
    }
    cmd.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    // SAFETY of pre_exec: setsid and the TIOCSCTTY ioctl are async-signal-safe syscalls.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            rustix::process::setsid()?;
            rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    // Only the child may hold the slave, or the master would never see the end of it.
    drop((cmd, slave));
    (child, master)
}

/// A `spawner-runc` root and bundles of a test's own, removed (containers deleted first) on drop.
pub struct Runc {
    pub root: PathBuf,
    pub dir: StateDir,
}

impl Runc {
    pub fn new(test: &str) -> Runc {
        let dir = StateDir::new(&format!("runc-{test}"));
        Runc { root: dir.0.join("root"), dir }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(runc_bin());
        cmd.arg("--root").arg(&self.root).args(args);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    /// Runs a command to its end (30 s at most). Its output goes through files, not pipes: the
    /// container's process `create` leaves behind holds the same stdout and stderr (as an engine's
    /// pipes), and a pipe would not reach EOF until the container exits.
    pub fn run(&self, args: &[&str]) -> Output {
        let (out_path, err_path) = (self.dir.0.join("cmd.out"), self.dir.0.join("cmd.err"));
        let mut cmd = self.command(args);
        cmd.stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap());
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("spawner-runc {args:?} hung");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Output {
            status,
            stdout: std::fs::read(&out_path).unwrap(),
            stderr: std::fs::read(&err_path).unwrap(),
        }
    }

    /// A busybox bundle named `name` with `args` as the process and `edit` applied to config.json.
    pub fn bundle(&self, name: &str, args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
        busybox_bundle(&self.dir.0.join(name), |c| {
            c["process"]["args"] = serde_json::json!(args);
            edit(c)
        })
    }

    pub fn status(&self, id: &str) -> String {
        let out = self.run(&["state", id]);
        let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        state["status"].as_str().unwrap_or("").to_string()
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.run(&["delete", "--force", &id]);
            }
        }
    }
}

/// A state directory whose containers are force-removed when the test ends, however it ends.
pub struct Containers(pub StateDir);

impl Containers {
    pub fn new(test: &str) -> Containers {
        Containers(StateDir::new(test))
    }

    pub fn spawner(&self, args: &[&str]) -> Command {
        self.0.spawner(args)
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.0.run(args)
    }

    /// Runs `args`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        stdout(&out)
    }

    /// Runs `args`, which must fail as spawner's bad input does: exit 125, one line on stderr
    /// containing `want`.
    pub fn refused(&self, args: &[&str], want: &str) {
        let out = self.run(args);
        let err = stderr(&out);
        assert_eq!(code(&out), 125, "{args:?}: {err}");
        assert!(
            err.starts_with("spawner: ") && err.lines().count() == 1 && err.contains(want),
            "{args:?}: {err}"
        );
    }

    /// `run -d --network none --name NAME IMAGE COMMAND…`: the ID it printed.
    pub fn detach(&self, name: &str, extra: &[&str], command: &[&str]) -> String {
        let img = image("busybox-docker.tar").display().to_string();
        let mut args = vec!["run", "-d", "--network", "none", "--name", name];
        args.extend_from_slice(extra);
        args.push(&img);
        args.extend_from_slice(command);
        self.ok(&args).trim().to_string()
    }

    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, name]).trim().to_string()
    }

    /// Polls `what` until it holds, for up to 10 s.
    pub fn until(&self, what: &str, check: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `value` is `expected`; a timeout names the last value and the state of
    /// `container` (what a rare failure needs to be understood).
    pub fn until_eq(&self, what: &str, container: &str, expected: &str, value: impl Fn() -> String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = value();
            if now == expected {
                return;
            }
            if Instant::now() >= deadline {
                let state = self.0.run(&[
                    "inspect",
                    "-f",
                    "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}",
                    container,
                ]);
                panic!(
                    "timed out waiting for {what}: {now:?}, not {expected:?}; {container}: {} {}",
                    stdout(&state).trim(),
                    String::from_utf8_lossy(&state.stderr).trim()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        let out = self.0.run(&["ps", "-aq"]);
        for id in stdout(&out).split_whitespace() {
            let _ = self.0.run(&["rm", "-f", id]);
        }
    }
}
