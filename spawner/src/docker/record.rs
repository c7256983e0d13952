//! A Docker container's record, kept in its directory (`containers/NAME/`) for as long as the
//! container exists (until `rm`, or its run's end with `--rm`): `container.json`, what the container
//! is (written once, when it is made: the image, the command, the flags `start` needs again), and
//! `state.json`, how its runs go (written by the run: running with its pid, then exited with its
//! status). A run that died without saying so (SIGKILL) is told apart from a live one by its pid's
//! start time, as runc does; nothing is locked to read a record.

use crate::cgroup::CgroupLocation;
use crate::container::RunError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const RECORD_FILE: &str = "container.json";
pub const STATE_FILE: &str = "state.json";
/// The container's output, in Docker's json-file format (see `super::logs`).
pub const LOG_FILE: &str = "json.log";

/// What the container is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    /// 64 hex digits; the first 12 are its short form (and its default hostname).
    pub id: String,
    pub name: String,
    /// The image as the user named it, and its config digest.
    pub image: String,
    pub image_id: String,
    /// Nanoseconds since the epoch.
    pub created: u64,
    /// The process's command line (Entrypoint and Cmd resolved), environment, working directory,
    /// user (as given: looked up in the container) and hostname.
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub hostname: String,
    /// The security flags, from which `exec` gets the container's capabilities and filter again.
    pub security: SecurityArgs,
    /// The signal `stop` sends first, and the seconds it waits before SIGKILL.
    pub stop_signal: i32,
    pub stop_timeout: u32,
    /// `--rm`: removed when its run ends.
    pub auto_remove: bool,
    pub tty: bool,
    pub network: String,
    /// `-p` as given.
    pub ports: Vec<String>,
    /// `--restart` as given (no, on-failure[:N], always, unless-stopped).
    pub restart: String,
    /// Its volumes and bind mounts (anonymous volumes are found again by `start`, and go with the
    /// container on `rm -v` or `--rm`).
    #[serde(default)]
    pub mounts: Vec<MountRecord>,
    /// The `run` arguments (after `run`, without -d/--detach) and the directory they were given
    /// in: `start` runs the container again from them.
    pub run_args: Vec<String>,
    pub run_cwd: PathBuf,
    /// The image's labels with `--label` and `--label-file` over them.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `--log-opt` as given (max-size, max-file).
    #[serde(default)]
    pub log_opts: Vec<String>,
    /// The store layers it mounts, lowest first (`STORE/layers/sha256/HEX/diff`): `prune` keeps
    /// them while the container exists. Empty in a record from before this field: the directory's
    /// `layers` file lists them then ([`Container::layers`]).
    #[serde(default)]
    pub layers: Vec<PathBuf>,
}

/// A volume or bind mount of the container, as `inspect` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRecord {
    /// `bind` or `volume`.
    pub kind: String,
    /// The volume's name (empty for a bind mount).
    pub name: String,
    pub source: PathBuf,
    pub destination: PathBuf,
    pub rw: bool,
    pub anonymous: bool,
}

/// `--privileged`, `--cap-add`, `--cap-drop` and `--security-opt`, as given.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SecurityArgs {
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
}

impl SecurityArgs {
    pub fn security(&self) -> Result<super::security::Security, String> {
        super::security::Security::from_options(
            self.privileged,
            &self.cap_add,
            &self.cap_drop,
            &self.security_opt,
        )
    }
}

/// Where the container's life is, as its last run wrote it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    #[default]
    Created,
    Running,
    Exited,
}

/// `state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunState {
    pub phase: Phase,
    /// The container's first process (our init) while it runs, and field 22 of its /proc stat.
    pub pid: i32,
    pub start_time: u64,
    /// The pid of the spawner that runs it (a `run -d`'s monitor, or the foreground `run`).
    pub monitor: i32,
    pub exit_code: i32,
    pub oom_killed: bool,
    /// Nanoseconds since the epoch; 0 when not yet.
    pub started_at: u64,
    pub finished_at: u64,
    pub cgroup: Option<CgroupLocation>,
    /// Why the last start failed.
    pub error: String,
    pub restart_count: u32,
    /// `stop` or `kill` ended it (a restart policy other than `always` then lets it be).
    pub stopped_by_user: bool,
    /// The published ports as bound on the host (a `-p 80` host port is the one the kernel
    /// picked), while it runs on the bridge.
    #[serde(default)]
    pub ports: Vec<crate::network::firewall::Element>,
    /// Where its run holds its network namespace (`PID FD`, see
    /// [`crate::network::namespace_holder`]) while it runs; empty when it has none of its own.
    #[serde(default)]
    pub netns: String,
}

/// The container as `ps` and `inspect` see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Exited,
    /// Its run said it was running, and died without saying more (its spawner was SIGKILLed).
    Dead,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// A container found in the state directory.
#[derive(Debug, Clone)]
pub struct Container {
    pub dir: PathBuf,
    pub record: Record,
    pub state: RunState,
}

impl Container {
    /// Reads the container in `dir`.
    pub fn load(dir: &Path) -> Result<Container, RunError> {
        let read = |file: &str| -> Result<Vec<u8>, RunError> {
            let path = dir.join(file);
            std::fs::read(&path).map_err(|e| RunError::msg(format!("{}: {e}", path.display())))
        };
        let record = read(RECORD_FILE)?;
        let record = serde_json::from_slice(&record)
            .map_err(|e| RunError::msg(format!("{}: {e}", dir.join(RECORD_FILE).display())))?;
        // A container whose run has not written its state yet is just made.
        let state = match read(STATE_FILE) {
            Ok(text) => serde_json::from_slice(&text)
                .map_err(|e| RunError::msg(format!("{}: {e}", dir.join(STATE_FILE).display())))?,
            Err(_) => RunState::default(),
        };
        Ok(Container { dir: dir.to_path_buf(), record, state })
    }

    /// The store layers the container mounts: from its record, or, for a container made before
    /// the record held them, from its directory's `layers` file (one a line).
    pub fn layers(&self) -> Result<Vec<PathBuf>, RunError> {
        if !self.record.layers.is_empty() {
            return Ok(self.record.layers.clone());
        }
        let listed = self.dir.join(super::LAYERS_FILE);
        let text = std::fs::read_to_string(&listed)
            .map_err(|e| RunError::msg(format!("{}: {e}", listed.display())))?;
        Ok(text.lines().map(Into::into).collect())
    }

    /// Reads the container's state again.
    pub fn refresh(&mut self) -> Result<(), RunError> {
        *self = Container::load(&self.dir)?;
        Ok(())
    }

    /// The container in `containers` named `name_or_id`: by its name, else by a prefix of its id
    /// that only it has (Docker's rule).
    pub fn find(containers: &Path, name_or_id: &str) -> Result<Container, RunError> {
        let missing = || RunError::msg(format!("No such container: {name_or_id}"));
        let plain = !name_or_id.is_empty()
            && name_or_id.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            && !name_or_id.starts_with('.');
        if !plain {
            return Err(missing());
        }
        let by_name = containers.join(name_or_id);
        if by_name.join(RECORD_FILE).exists() {
            return Container::load(&by_name);
        }
        let mut found: Vec<Container> =
            list(containers).into_iter().filter(|c| c.record.id.starts_with(name_or_id)).collect();
        match found.len() {
            0 => Err(missing()),
            1 => Ok(found.remove(0)),
            _ => Err(RunError::msg(format!("multiple containers match {name_or_id}: give more of the id"))),
        }
    }

    /// Whether its first process is alive: the pid the run recorded, with the same start time.
    pub fn running(&self) -> bool {
        self.state.phase == Phase::Running
            && self.state.pid > 0
            && crate::runc::state::start_time(self.state.pid) == Some(self.state.start_time)
    }

    pub fn status(&self) -> Status {
        match self.state.phase {
            Phase::Created => Status::Created,
            Phase::Exited => Status::Exited,
            Phase::Running if self.running() => Status::Running,
            Phase::Running => Status::Dead,
        }
    }

    /// `ps`'s STATUS column: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created".
    pub fn status_line(&self) -> String {
        match self.status() {
            Status::Created => "Created".into(),
            Status::Running => format!("Up {}", crate::clock::since(self.state.started_at)),
            Status::Exited => format!(
                "Exited ({}) {} ago",
                self.state.exit_code,
                crate::clock::since(self.state.finished_at)
            ),
            Status::Dead => "Dead".into(),
        }
    }

    pub fn short_id(&self) -> &str {
        &self.record.id[..self.record.id.len().min(12)]
    }
}

/// Every container in `containers`, oldest first (directories being made, dot-named, and those
/// without a record are not containers yet).
pub fn list(containers: &Path) -> Vec<Container> {
    let Ok(entries) = std::fs::read_dir(containers) else { return Vec::new() };
    let mut all: Vec<Container> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| Container::load(&e.path()).ok())
        .collect();
    all.sort_by_key(|c| c.record.created);
    all
}

/// Writes `value` as `dir/file`, atomically (a temporary file renamed over it).
fn write_json(dir: &Path, file: &str, value: &impl Serialize) -> Result<(), RunError> {
    let tmp = dir.join(format!(".{file}.tmp"));
    let json = serde_json::to_vec(value).map_err(|e| RunError::msg(format!("{file}: {e}")))?;
    std::fs::write(&tmp, json).map_err(|e| RunError::msg(format!("write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, dir.join(file)).map_err(|e| RunError::msg(format!("rename {}: {e}", tmp.display())))
}

pub fn write_record(dir: &Path, record: &Record) -> Result<(), RunError> {
    write_json(dir, RECORD_FILE, record)
}

pub fn write_state(dir: &Path, state: &RunState) -> Result<(), RunError> {
    write_json(dir, STATE_FILE, state)
}

/// 64 random hex digits.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_err()
    {
        let seed = (std::process::id() as u64 ^ rawsys::now_ms()).to_le_bytes();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = seed[i % 8].wrapping_add(i as u8);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("spawner-record-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn make(containers: &Path, name: &str, id: &str, created: u64) {
        let dir = containers.join(name);
        std::fs::create_dir(&dir).unwrap();
        let record = Record { id: id.into(), name: name.into(), created, ..Default::default() };
        write_record(&dir, &record).unwrap();
    }

    /// `prune` and `cp` read a container's layers from its record, and from the `layers` file of
    /// a container made before the record held them.
    #[test]
    fn layers_come_from_the_record_or_an_older_containers_file() {
        let dir = scratch("layers");
        make(&dir, "old", "a1", 1);
        let old = Container::load(&dir.join("old")).unwrap();
        assert!(old.layers().is_err(), "neither the record nor a file names them");
        std::fs::write(dir.join("old").join(super::super::LAYERS_FILE), "/s/l1/diff\n/s/l2/diff\n").unwrap();
        assert_eq!(old.layers().unwrap(), [PathBuf::from("/s/l1/diff"), PathBuf::from("/s/l2/diff")]);

        let new_dir = dir.join("new");
        std::fs::create_dir(&new_dir).unwrap();
        let layers = vec![PathBuf::from("/s/l3/diff")];
        write_record(
            &new_dir,
            &Record { id: "b2".into(), name: "new".into(), layers: layers.clone(), ..Default::default() },
        )
        .unwrap();
        assert_eq!(Container::load(&new_dir).unwrap().layers().unwrap(), layers);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn found_by_name_or_unique_id_prefix() {
        let dir = scratch("find");
        make(&dir, "web", "abc123", 2);
        make(&dir, "db", "abd456", 1);
        assert_eq!(Container::find(&dir, "web").unwrap().record.id, "abc123");
        assert_eq!(Container::find(&dir, "abd").unwrap().record.name, "db");
        assert!(Container::find(&dir, "ab").unwrap_err().to_string().contains("multiple containers"));
        assert_eq!(Container::find(&dir, "zz").unwrap_err().to_string(), "No such container: zz");
        assert!(Container::find(&dir, "../web").is_err());
        let names: Vec<String> = list(&dir).into_iter().map(|c| c.record.name).collect();
        assert_eq!(names, ["db", "web"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_run_that_died_is_dead_not_running() {
        let dir = scratch("dead");
        make(&dir, "c", "1234", 1);
        let mut c = Container::find(&dir, "c").unwrap();
        assert_eq!(c.status(), Status::Created);
        let me = std::process::id() as i32;
        c.state = RunState {
            phase: Phase::Running,
            pid: me,
            start_time: crate::runc::state::start_time(me).unwrap(),
            ..Default::default()
        };
        assert_eq!(c.status(), Status::Running);
        c.state.start_time += 1;
        assert_eq!(c.status(), Status::Dead);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
