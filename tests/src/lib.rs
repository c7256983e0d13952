//! Helpers shared by the integration tests: where the binaries are, running a command with a hang
//! guard, and running init as PID 1 of a new PID namespace.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (tests/ is one level below it).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The static init that `cargo xtask dist` built (or `INIT_BIN`).
pub fn init_bin() -> PathBuf {
    let path = std::env::var_os("INIT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/dist/init"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask dist` first (or `cargo xtask test`)",
        path.display()
    );
    path
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

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
