//! runc's command line, as engines call it (argument structs only; `super` runs them). Flags runc
//! has that change nothing here are accepted so that engines' command lines work unchanged.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "spawner-runc", version, about = "spawner as an OCI runtime, with runc's command line")]
pub struct Cli {
    /// Where containers' state lives (a tmpfs, as runc's /run/runc).
    #[arg(long, global = true, default_value = "/run/spawner")]
    pub root: PathBuf,
    /// A file errors (and with --debug everything) are written to.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// `text` or `json` (one object a line: level, msg, time).
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    #[arg(long, global = true)]
    pub debug: bool,
    /// runc's systemd cgroup driver: systemd makes each container's cgroup, a transient unit
    /// (linux.cgroupsPath is slice:prefix:name).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// crun's: `disabled` runs containers without a cgroup of their own (podman's --cgroups=disabled);
    /// `systemd` is --systemd-cgroup, `cgroupfs` the default.
    #[arg(long = "cgroup-manager", global = true)]
    pub cgroup_manager: Option<String>,
    /// Accepted for runc compatibility (before the command; `spec --rootless` is another flag).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Accepted for runc compatibility (checkpointing is not supported).
    #[arg(long, global = true)]
    pub criu: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create a container from a bundle; its process waits for `start`.
    Create(Create),
    /// Start the process of a created container.
    Start { id: String },
    /// Print a container's state (JSON).
    State { id: String },
    /// Send a signal (default TERM) to a container's process, or with --all to all of its processes.
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Delete a stopped container (with --force, any: its processes are killed first).
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create and start a container; without --detach, wait for it and delete it.
    Run(Run),
    /// Run a process in a running container (its namespaces, cgroup, capabilities and filter).
    Exec(Box<Exec>),
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// The processes of a container (`--format json`: a JSON array of host pids).
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Change a running container's limits: `--resources FILE` (or `-` for stdin), a
    /// linux.resources JSON object, as containerd's shim sends it.
    Update {
        #[arg(short, long)]
        resources: PathBuf,
        id: String,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Write a default config.json (runc's).
    Spec {
        #[arg(short, long)]
        bundle: Option<PathBuf>,
        #[arg(long)]
        rootless: bool,
    },
    /// What this runtime supports (the OCI features document).
    Features,
}

#[derive(Args)]
pub struct Create {
    #[command(flatten)]
    pub common: CreateArgs,
    pub id: String,
}

#[derive(Args)]
pub struct Run {
    #[command(flatten)]
    pub common: CreateArgs,
    /// Return once started (the container outlives this command).
    #[arg(short, long)]
    pub detach: bool,
    /// Accepted for runc compatibility.
    #[arg(long)]
    pub keep: bool,
    pub id: String,
}

#[derive(Args)]
pub struct CreateArgs {
    /// The bundle directory (config.json and the root file system); default: the current directory.
    #[arg(short, long)]
    pub bundle: Option<PathBuf>,
    /// Write the container process's pid here (no newline).
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// A Unix socket the terminal's master end is sent to (SCM_RIGHTS) when process.terminal is set.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Pass this many more fds (from 3 up) to the container's process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Move the root onto / and chroot instead of pivot_root (for a root on a ramfs).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for runc compatibility (no session keyring is made).
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
}

#[derive(Args)]
pub struct Exec {
    /// The process to run, as an OCI `process` JSON object (then COMMAND is not given).
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// NAME=VALUE, added to the container's environment.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// UID[:GID].
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// A capability to add (CAP_NET_ADMIN…).
    #[arg(short, long)]
    pub cap: Vec<String>,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Exec even when the container is paused.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Accepted for runc compatibility (no AppArmor or SELinux here).
    #[arg(long)]
    pub apparmor: Option<String>,
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}
