//! The spawner command line: `spawner run IMAGE [-- cmd args…]` (an archive or a registry
//! reference), `spawner pull REF`, `spawner images`, `spawner rmi REF`, `spawner prune`.
//! Spawner's own failures exit 125 with one line on stderr; the container's status is spawner's.

use clap::{Args, Parser, Subcommand};
use spawner::cgroup::{parse_size, Limits};
use spawner::docker::{self, process::Overrides, RunOptions};
use spawner::store::LayerStore;
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "spawner", version, about = "Run a Docker/OCI image archive with nothing but the kernel")]
struct Cli {
    /// Log each setup step on stderr (-vv for more; RUST_LOG works too).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = false)]
    verbose: u8,
    /// State directory (layer store, containers) [env: SPAWNER_ROOT; default /var/lib/spawner].
    #[arg(long)]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a container from an image archive (docker save, skopeo/podman docker-archive or
    /// oci-archive, download-frozen-image-v2, OCI layout; a tar file or a directory).
    Run(Box<RunArgs>),
    /// List the images whose layers are in the store.
    Images {
        /// Re-hash every stored layer and check it against the digest recorded when it was
        /// unpacked; exit 1 if any layer changed or any image lacks a layer.
        #[arg(long)]
        verify: bool,
        /// Print only the image IDs.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// A Go-style template: {{.Repository}} {{.Tag}} {{.ID}} {{.CreatedAt}} {{.Size}}.
        #[arg(long)]
        format: Option<String>,
    },
    /// Remove layers and blobs that no stored image and no container uses.
    Prune,
    /// Load the images of an archive into the store, to run by name (docker load).
    Load {
        /// The archive (docker save, podman save, skopeo docker-archive or oci-archive, OCI layout).
        #[arg(short = 'i', long = "input")]
        input: PathBuf,
    },
    /// Write images to an archive that docker load and podman load take.
    Save {
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        /// The images, by name.
        #[arg(required = true)]
        references: Vec<String>,
    },
    /// Log in to a registry: check the credentials, and keep them in the auth file.
    Login {
        #[arg(short = 'u', long)]
        username: Option<String>,
        /// The password (visible to other users in the process list: prefer --password-stdin).
        #[arg(short = 'p', long)]
        password: Option<String>,
        /// Read the password from stdin.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        registry: RegistryArgs,
        /// The registry: host[:port] (docker.io when left out).
        server: Option<String>,
    },
    /// Forget a registry's credentials (or every registry's, with --all).
    Logout {
        #[arg(long)]
        authfile: Option<PathBuf>,
        #[arg(long)]
        all: bool,
        server: Option<String>,
    },
    /// Remove an image's name; the image, once it has no name left, and what only it used.
    Rmi {
        /// The image: a name as `images` lists it (busybox:latest, host:5000/app:1).
        references: Vec<String>,
    },
    /// List containers: running ones, or all with -a.
    Ps(PsArgs),
    /// Commands on containers: ls (as ps), prune.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// The disk images and containers use (df).
    #[command(subcommand)]
    System(SystemCommand),
    /// A running container's processes, as the host's ps shows them (ps options: default -ef).
    Top {
        container: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_options: Vec<String>,
    },
    /// A running container's published ports (or the host addresses of one of its ports).
    Port {
        container: String,
        /// PRIVATE_PORT[/tcp|udp].
        private_port: Option<String>,
    },
    /// Give a container a new name (running or not).
    Rename { container: String, new_name: String },
    /// Copy files between a running container and the host: cp CONTAINER:PATH HOSTPATH, or
    /// cp HOSTPATH CONTAINER:PATH (PATH/. copies a directory's contents).
    Cp {
        /// Print nothing on success.
        #[arg(short = 'q', long)]
        quiet: bool,
        src: String,
        dest: String,
    },
    /// Print a container's output (stdout and stderr as it wrote them; every run of it since it was made).
    Logs {
        /// Keep printing what it writes until it exits.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only the last N lines ("all": every line).
        #[arg(short = 'n', long)]
        tail: Option<String>,
        /// Each line after the time it was written.
        #[arg(short = 't', long)]
        timestamps: bool,
        /// Only lines written since: an RFC 3339 time or date, Unix seconds, or a duration
        /// before now (10m, 1h30m).
        #[arg(long)]
        since: Option<String>,
        /// Only lines written before, in the same forms.
        #[arg(long)]
        until: Option<String>,
        container: String,
    },
    /// Stop running containers: the stop signal, then SIGKILL after the timeout.
    Stop {
        /// Seconds to wait before SIGKILL (default: the container's --stop-timeout, else 10).
        #[arg(short = 't', long = "time")]
        time: Option<u32>,
        /// The signal to send first (default: the container's stop signal).
        #[arg(short = 's', long)]
        signal: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal (default SIGKILL) to running containers.
    Kill {
        #[arg(short = 's', long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers: stopped ones, or running ones too with -f.
    Rm {
        #[arg(short = 'f', long)]
        force: bool,
        /// Remove the container's anonymous volumes too.
        #[arg(short = 'v', long)]
        volumes: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Wait for containers to stop; print each one's exit status.
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Start stopped containers again, in the background (or attached with -a).
    Start {
        #[arg(short = 'a', long)]
        attach: bool,
        #[arg(short = 'i', long)]
        interactive: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop containers and start them again.
    Restart {
        #[arg(short = 't', long = "time")]
        time: Option<u32>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Run a command in a running container (its namespaces, cgroup, capabilities and seccomp filter).
    Exec {
        /// Keep stdin open (without it, the command's stdin is /dev/null).
        #[arg(short = 'i', long)]
        interactive: bool,
        #[arg(short = 't', long)]
        tty: bool,
        /// Start the command and return.
        #[arg(short = 'd', long)]
        detach: bool,
        /// The user: name, uid, name:group or uid:gid, looked up in the container.
        #[arg(short = 'u', long)]
        user: Option<String>,
        #[arg(short = 'w', long)]
        workdir: Option<String>,
        #[arg(short = 'e', long = "env")]
        env: Vec<String>,
        /// Every capability (still in the container's namespaces, cgroup and filter).
        #[arg(long)]
        privileged: bool,
        container: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Manage volumes: create, ls, inspect, rm, prune.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage bridge networks: create, ls, rm (`run --network NAME` joins one).
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Print containers' details as Docker's JSON (or as --format says).
    Inspect {
        #[arg(short = 'f', long)]
        format: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Pull an image from a registry into the store (debian, ghcr.io/org/app:1, host:5000/app@sha256:…).
    Pull {
        #[command(flatten)]
        registry: RegistryArgs,
        /// Print only the image ID.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// The image reference.
        reference: String,
    },
}

#[derive(Subcommand)]
enum VolumeCommand {
    /// Make a volume (a generated name when none is given); print its name.
    Create { name: Option<String> },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Print volumes' details as Docker's JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes no container uses.
    #[command(alias = "remove")]
    Rm {
        /// Accepted as Docker's; a volume in use is still refused.
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused anonymous volumes (every unused volume with -a).
    Prune {
        #[arg(short = 'a', long)]
        all: bool,
        #[arg(short = 'f', long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum NetworkCommand {
    /// Make a bridge network (its bridge is made when a container first uses it).
    Create {
        /// A.B.C.D/N; without it, the first free 10.x.0.0/16 from 10.90.0.0/16.
        #[arg(long)]
        subnet: Option<String>,
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Remove networks no running container uses, with their bridges and rules.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

fn network(state_dir: &std::path::Path, command: NetworkCommand) {
    use spawner::network::networks;
    match command {
        NetworkCommand::Create { subnet, name } => {
            networks::create(state_dir, &name, subnet.as_deref()).unwrap_or_else(|e| fail(e));
            println!("{name}");
        }
        NetworkCommand::Ls { quiet } => {
            let bridges = networks::list(state_dir);
            if !quiet {
                println!("{:<20} {:<8} {:<18} BRIDGE", "NAME", "DRIVER", "SUBNET");
            }
            let fixed = [("host", "host"), ("none", "null"), ("pasta", "pasta")];
            let rows = bridges
                .iter()
                .map(|(p, c)| (p.name.as_str(), "bridge", c.subnet.as_str(), c.bridge.as_str()))
                .chain(fixed.iter().map(|(name, driver)| (*name, *driver, "", "")));
            for (name, driver, subnet, bridge) in rows {
                match quiet {
                    true => println!("{name}"),
                    false => {
                        println!("{}", format!("{name:<20} {driver:<8} {subnet:<18} {bridge}").trim_end())
                    }
                }
            }
        }
        NetworkCommand::Rm { names } => {
            for name in &names {
                networks::remove(state_dir, name).unwrap_or_else(|e| fail(e));
                println!("{name}");
            }
        }
    }
}

#[derive(Args)]
struct PsArgs {
    #[arg(short = 'a', long)]
    all: bool,
    /// Print only the IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Full IDs and commands.
    #[arg(long)]
    no_trunc: bool,
    /// name=SUBSTRING, id=PREFIX, status=created|running|exited|dead.
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    /// A Go-style template: {{.ID}} {{.Image}} {{.Command}} {{.CreatedAt}} {{.RunningFor}}
    /// {{.Status}} {{.State}} {{.Ports}} {{.Names}}; `table` first for a header.
    #[arg(long)]
    format: Option<String>,
}

#[derive(Subcommand)]
enum ContainerCommand {
    /// List containers (as ps).
    #[command(visible_aliases = ["list", "ps"])]
    Ls(PsArgs),
    /// Remove every container that is not running.
    Prune {
        /// Do not ask first.
        #[arg(short = 'f', long)]
        force: bool,
    },
}

/// The containers (by name) that use the volume `name`.
fn volume_users(state_dir: &std::path::Path, name: &str) -> Vec<String> {
    docker::record::list(&containers_dir(state_dir))
        .into_iter()
        .filter(|c| c.record.mounts.iter().any(|m| m.kind == "volume" && m.name == name))
        .map(|c| c.record.name)
        .collect()
}

fn volume(state_dir: &std::path::Path, command: VolumeCommand) {
    let store = docker::volumes::Store::open(state_dir);
    match command {
        VolumeCommand::Create { name } => {
            let name = name.unwrap_or_else(docker::record::new_id);
            store.ensure(&name, false).unwrap_or_else(|e| fail(e));
            println!("{name}");
        }
        VolumeCommand::Ls { quiet } => {
            if !quiet {
                println!("{:<10} VOLUME NAME", "DRIVER");
            }
            for v in store.list() {
                match quiet {
                    true => println!("{}", v.name),
                    false => println!("{:<10} {}", "local", v.name),
                }
            }
        }
        VolumeCommand::Inspect { names } => {
            let all: Vec<serde_json::Value> = names
                .iter()
                .map(|n| {
                    let info = store.info(n).unwrap_or_else(|e| fail(e));
                    serde_json::json!({
                        "CreatedAt": spawner::clock::rfc3339(spawner::clock::from_ns(info.created)),
                        "Driver": "local",
                        "Labels": info.labels,
                        "Mountpoint": store.data(n),
                        "Name": info.name,
                        "Options": {},
                        "Scope": "local",
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        }
        VolumeCommand::Rm { force: _, names } => {
            for name in &names {
                let users = volume_users(state_dir, name);
                if !users.is_empty() {
                    fail(format!("volume {name} is in use by container {}", users.join(", ")));
                }
                store.remove(name).unwrap_or_else(|e| fail(e));
                println!("{name}");
            }
        }
        VolumeCommand::Prune { all, force: _ } => {
            println!("Deleted Volumes:");
            for v in store.list() {
                if (v.anonymous || all) && volume_users(state_dir, &v.name).is_empty() {
                    store.remove(&v.name).unwrap_or_else(|e| fail(e));
                    println!("{}", v.name);
                }
            }
        }
    }
}

#[derive(Subcommand)]
enum SystemCommand {
    /// The disk images and containers use.
    Df,
}

/// How to reach a registry, as podman and skopeo spell it.
#[derive(Args, Clone)]
struct RegistryArgs {
    /// Platform os/arch[/variant] to pull from a multi-platform image (default: this host's).
    #[arg(long)]
    platform: Option<String>,
    /// Require HTTPS with a verified certificate (false: skip the check, allow plain HTTP).
    #[arg(long, default_value = "true", action = clap::ArgAction::Set)]
    tls_verify: bool,
    /// CA (*.crt) and client (*.cert, *.key) certificates for the registry.
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// USER:PASSWORD for the registry.
    #[arg(long)]
    creds: Option<String>,
    /// Auth file with the registry's credentials (as podman login and docker login write).
    #[arg(long)]
    authfile: Option<PathBuf>,
    /// Layers downloaded at once.
    #[arg(long, default_value = "3")]
    jobs: usize,
}

impl RegistryArgs {
    fn options(&self) -> spawner::registry::PullOptions {
        let creds = self.creds.as_deref().map(|c| {
            spawner::registry::auth::Credentials::parse(c)
                .unwrap_or_else(|| fail("--creds: give USER:PASSWORD"))
        });
        spawner::registry::PullOptions {
            registry: spawner::registry::Options {
                insecure: !self.tls_verify,
                cert_dir: self.cert_dir.clone(),
                creds,
                authfile: self.authfile.clone(),
            },
            platform: self
                .platform
                .as_deref()
                .map(|p| spawner::registry::Platform::parse(p).unwrap_or_else(|e| fail(e))),
            jobs: self.jobs.max(1),
            quiet: false,
        }
    }
}

#[derive(Args)]
struct RunArgs {
    /// Environment variable NAME=VALUE (or NAME, taken from spawner's environment).
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Read environment variables from a file: NAME=VALUE lines (NAME alone: from spawner's
    /// environment), blank lines and # comments skipped; applied before -e.
    #[arg(long = "env-file")]
    env_file: Vec<PathBuf>,
    /// Set a label KEY=VALUE on the container (KEY alone: empty value).
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// Read labels from a file of KEY=VALUE lines; --label wins over it.
    #[arg(long = "label-file")]
    label_file: Vec<PathBuf>,
    /// Write the container's ID to this file (which must not exist).
    #[arg(long)]
    cidfile: Option<PathBuf>,
    /// Run an init as PID 1 that forwards signals and reaps zombies (spawner's default).
    #[arg(long, conflicts_with = "no_init")]
    init: bool,
    /// Run the command itself as PID 1, with no init.
    #[arg(long)]
    no_init: bool,
    /// Mount a tmpfs: PATH[:OPTIONS] (default rw,noexec,nosuid,nodev; e.g. size=64m,mode=1777,exec).
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Size of /dev/shm (default 64m).
    #[arg(long)]
    shm_size: Option<String>,
    /// Resource limit NAME=SOFT[:HARD] (nofile, nproc, core, memlock, stack, ...; -1: unlimited).
    #[arg(long)]
    ulimit: Vec<String>,
    /// Namespaced kernel parameter KEY=VALUE (kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, net.*).
    #[arg(long)]
    sysctl: Vec<String>,
    /// Add the process to a group: a name from the image's /etc/group, or a gid.
    #[arg(long = "group-add")]
    group_add: Vec<String>,
    /// PID namespace: host (the host's) instead of one of its own.
    #[arg(long)]
    pid: Option<String>,
    /// IPC namespace: private (default), shareable, host, or none (no /dev/shm).
    #[arg(long)]
    ipc: Option<String>,
    /// UTS namespace: host (the host's hostname) instead of one of its own.
    #[arg(long)]
    uts: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// User: name, uid, name:group or uid:gid (resolved with the image's /etc/passwd and /etc/group).
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Replace the image's Entrypoint ("" clears it).
    #[arg(long)]
    entrypoint: Option<String>,
    #[arg(long)]
    hostname: Option<String>,
    /// A volume: HOST:CONTAINER (a bind mount), NAME:CONTAINER (a named volume, made and filled
    /// from the image on first use) or CONTAINER (an anonymous one), with :OPTIONS ro|rw, dev,
    /// suid, noexec, nocopy (nodev,nosuid unless it says dev or suid; z, Z accepted).
    #[arg(short = 'v', long = "volume")]
    volumes: Vec<String>,
    /// type=bind|volume|tmpfs,source=…,target=…[,readonly][,volume-nocopy][,tmpfs-size=…][,tmpfs-mode=…]
    #[arg(long = "mount")]
    mounts: Vec<String>,
    /// Give the container a host device: HOST[:CONTAINER][:PERMS], PERMS of r, w, m (default rwm).
    #[arg(long = "device")]
    devices: Vec<String>,
    /// Mount the container's root file system read-only.
    #[arg(long)]
    read_only: bool,
    /// Memory limit (e.g. 64m, 1g).
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap).
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// CPUs, e.g. 0.5.
    #[arg(long)]
    cpus: Option<f64>,
    /// Relative CPU weight (2-262144; Docker's default 1024).
    #[arg(long, allow_hyphen_values = true)]
    cpu_shares: Option<String>,
    /// CPUs the container may run on (0-3, 0,1).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes the container may use (0-3, 0,1).
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// CFS period and quota in microseconds (the precise form of --cpus; not with it).
    #[arg(long)]
    cpu_period: Option<u64>,
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// 0-100: how readily the container's memory is swapped (cgroup v1).
    #[arg(long)]
    memory_swappiness: Option<u64>,
    /// Relative block I/O weight, 10-1000.
    #[arg(long)]
    blkio_weight: Option<u16>,
    /// The container's NIS domain name.
    #[arg(long)]
    domainname: Option<String>,
    /// Print nothing while pulling the image.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Memory soft limit (e.g. 32m), at most --memory.
    #[arg(long)]
    memory_reservation: Option<String>,
    /// Parent cgroup (default: below spawner's own cgroup).
    #[arg(long)]
    cgroup_parent: Option<PathBuf>,
    /// Network: bridge (spawner0, with NAT; the default as root), none (loopback only), host,
    /// pasta (user-mode, through Debian's passt), or container:NAME (a running container's).
    #[arg(long = "network", visible_alias = "net")]
    network: Option<String>,
    /// Publish a container port: [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp], ports or ranges of the
    /// same length (8080-8081:80-81).
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// The bridge network's subnet, at its first use (default 10.89.0.0/16).
    #[arg(long)]
    subnet: Option<String>,
    /// A DNS server for the container's /etc/resolv.conf (instead of the host's).
    #[arg(long)]
    dns: Vec<std::net::IpAddr>,
    /// A DNS search domain.
    #[arg(long = "dns-search")]
    dns_search: Vec<String>,
    /// A resolver option (ndots:2, ...).
    #[arg(long = "dns-option")]
    dns_option: Vec<String>,
    /// Add NAME:IP to the container's /etc/hosts.
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// Name the container (the name must be unused; default: a generated one).
    #[arg(long)]
    name: Option<String>,
    /// Remove the container when it exits (otherwise it stays, stopped, until `spawner rm`).
    #[arg(long)]
    rm: bool,
    /// Run in the background: print the container's ID and return; its output goes to its log.
    #[arg(short = 'd', long)]
    detach: bool,
    /// The signal `stop` sends first (default: the image's StopSignal, else SIGTERM).
    #[arg(long)]
    stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10).
    #[arg(long)]
    stop_timeout: Option<u32>,
    /// Restart policy of a detached container: no, on-failure[:MAX-RETRIES], always, unless-stopped.
    #[arg(long, default_value = "no")]
    restart: String,
    /// A detached container's log rotation, as Docker's json-file driver: max-size=SIZE (10k, 5m:
    /// rotate at that size), max-file=N (files kept, default 1).
    #[arg(long = "log-opt")]
    log_opt: Vec<String>,
    /// Give the container every capability, no seccomp filter, no masked paths (as Docker does).
    #[arg(long)]
    privileged: bool,
    /// Add a capability (NET_ADMIN, CAP_SYS_TIME, ALL) to Docker's default set.
    #[arg(long = "cap-add")]
    cap_add: Vec<String>,
    /// Drop a capability (or ALL) from the default set.
    #[arg(long = "cap-drop")]
    cap_drop: Vec<String>,
    /// seccomp=unconfined, seccomp=FILE (a Docker or OCI profile), no-new-privileges=true|false.
    #[arg(long = "security-opt")]
    security_opt: Vec<String>,
    /// Give the container a pseudo-terminal (raw mode, window size kept in sync).
    #[arg(short = 't', long)]
    tty: bool,
    /// Keep stdin open for the container (without it, its stdin is /dev/null).
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Attach only these streams (stdin, stdout, stderr; repeatable): the others are /dev/null.
    #[arg(short = 'a', long = "attach")]
    attach: Vec<String>,
    /// Most bytes the image's layers may unpack to (e.g. 20g), counting 4 KiB for each file on
    /// top of its content; a bigger image is refused.
    #[arg(long, default_value = "20g")]
    max_image_size: String,
    /// Image to run when the archive holds several (repo:tag or #index).
    #[arg(long)]
    image: Option<String>,
    /// Pull a registry image: missing (when not stored), always, never.
    #[arg(long, default_value = "missing")]
    pull: String,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The image: an archive (a path, optionally with :repo:tag; docker-archive:, oci-archive:
    /// and oci: say which) or a registry reference; then the command and its arguments (they
    /// replace the image's Cmd; everything after the image is the command's).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "IMAGE [COMMAND]..."
    )]
    image_and_command: Vec<String>,
}

/// `--network`, `-p`, `--subnet`, `--dns*` and `--add-host`. The bridge is the default for root
/// (as Docker's); other users get a network namespace of their own with loopback only.
fn network_options(args: &RunArgs) -> Result<spawner::network::Options, spawner::network::NetworkError> {
    use spawner::network::{self, Mode, NetworkError};
    let mode = match &args.network {
        Some(m) => Mode::parse(m)?,
        None if rustix::process::geteuid().is_root() => Mode::Bridge,
        None => Mode::None,
    };
    let mut publish = Vec::new();
    for p in &args.publish {
        publish.extend(network::Publish::parse_ranges(p)?);
    }
    if !publish.is_empty() && !matches!(mode, Mode::Bridge | Mode::Network(_) | Mode::Pasta) {
        return Err(NetworkError("-p: ports are published on bridge networks and pasta only".into()));
    }
    let subnet = args.subnet.as_deref().map(network::parse_subnet).transpose()?;
    if subnet.is_some() && mode != Mode::Bridge {
        return Err(NetworkError(
            "--subnet: for the default bridge network at its first use (network create --subnet for others)"
                .into(),
        ));
    }
    let hosts = args
        .add_host
        .iter()
        .map(|h| {
            let (name, ip) =
                h.split_once(':').ok_or_else(|| NetworkError(format!("--add-host {h}: use NAME:IP")))?;
            let ip = ip.trim_matches(|c| c == '[' || c == ']');
            let ip = ip
                .parse()
                .map_err(|_| NetworkError(format!("--add-host {h}: {ip:?} is not an IP address")))?;
            Ok((name.to_string(), ip))
        })
        .collect::<Result<Vec<_>, NetworkError>>()?;
    let dns = network::dns::Settings {
        servers: args.dns.clone(),
        search: args.dns_search.clone(),
        options: args.dns_option.clone(),
        hosts,
    };
    Ok(network::Options { mode, publish, dns, subnet })
}

/// `load -i ARCHIVE`: every image of the archive unpacked into the layer store and named in the
/// content store under its full reference (busybox:latest is docker.io/library/busybox:latest).
fn load(state_dir: &std::path::Path, input: &std::path::Path) {
    let archive = spawner::image::Archive::open(input).unwrap_or_else(|e| fail(e));
    let store = LayerStore::open(state_dir.join("store")).unwrap_or_else(|e| fail(e));
    let content = spawner::store::content::Content::open(store.root()).unwrap_or_else(|e| fail(e));
    // Everything is checked and unpacked before anything is named.
    let mut ready = Vec::new();
    for i in 0..archive.images().len() {
        let image = archive.select(Some(&format!("#{i}"))).unwrap_or_else(|e| fail(e));
        let Some(diff_ids) = image.config.diff_ids().map(<[_]>::to_vec) else {
            fail(format!(
                "{}: a legacy archive (no diff_ids in its config) runs as a file, but cannot be loaded",
                input.display()
            ))
        };
        store.ensure_image(&archive, &image).unwrap_or_else(|e| fail(e));
        let layers: Vec<_> = diff_ids.iter().map(|d| (d.clone(), store.layer_size(d).unwrap_or(0))).collect();
        // An OCI ref.name is often a tag alone (`latest`): beside a full name (containerd's
        // annotation) it is left out; alone it names the image as podman names it
        // (`localhost/latest:latest`).
        let bare = |n: &String| !n.contains(['/', ':', '@']);
        let full = image.names.iter().any(|n| !bare(n));
        let names: Vec<String> = image
            .names
            .iter()
            .filter(|n| !(full && bare(n)))
            .map(|n| if bare(n) { format!("localhost/{n}") } else { n.clone() })
            .map(|n| {
                spawner::registry::Reference::parse(&n).map(|r| r.to_string()).unwrap_or_else(|e| fail(e))
            })
            .collect();
        let config = archive.config_bytes(&image).unwrap_or_else(|e| fail(e));
        ready.push((image.config_digest.clone(), config, layers, names));
    }
    for (id, config, layers, names) in ready {
        content.import(&config, &id, &layers, &names).unwrap_or_else(|e| fail(e));
        if names.is_empty() {
            println!("Loaded image ID: {id}");
        }
        for name in names {
            println!("Loaded image: {name}");
        }
    }
}

fn login(user: Option<String>, password: Option<String>, stdin: bool, registry: &RegistryArgs, server: &str) {
    let host = spawner::registry::auth::registry_of(server);
    let user = user.unwrap_or_else(|| fail("login: give the user name with -u"));
    let password = match (password, stdin) {
        (Some(_), true) => fail("login: give --password or --password-stdin, not both"),
        (Some(p), false) => p,
        (None, true) => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .unwrap_or_else(|e| fail(format!("stdin: {e}")));
            text.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => fail("login: give the password with --password-stdin (or -p)"),
    };
    let credentials = spawner::registry::auth::Credentials { user, password };
    let mut options = registry.options().registry;
    options.creds = Some(credentials.clone());
    let reference = spawner::registry::Reference {
        registry: host.clone(),
        repository: String::new(),
        tag: None,
        digest: None,
    };
    let client = spawner::registry::client::Client::new(&reference, &options).unwrap_or_else(|e| fail(e));
    client.login().unwrap_or_else(|e| fail(e));
    let file = spawner::registry::auth::login_file(registry.authfile.as_deref());
    spawner::registry::auth::store(&file, &host, Some(&credentials)).unwrap_or_else(|e| fail(e));
    println!("Login Succeeded!");
}

/// Removes what no image and no container (running, kept or crashed) uses.
fn prune(store: &LayerStore, state_dir: &std::path::Path) -> spawner::store::PruneReport {
    let containers = state_dir.join("containers");
    store.prune_keeping(&|| docker::layers_in_use(&containers)).unwrap_or_else(|e| fail(e))
}

/// `repo:tag` → (`repo`, `tag`); `repo@digest` → (`repo`, `<none>`).
fn split_name(name: &str) -> (&str, &str) {
    if let Some((repo, _)) = name.split_once('@') {
        return (repo, "<none>");
    }
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], &name[slash + i + 1..]),
        None => (name, "<none>"),
    }
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000_000 => format!("{:.2}GB", b as f64 / 1e9),
        b if b >= 1_000_000 => format!("{:.1}MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1}kB", b as f64 / 1e3),
        b => format!("{b}B"),
    }
}

fn containers_dir(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("containers")
}

/// The container NAME (or ID prefix) names, or exit 125 saying it does not exist.
fn find(state_dir: &std::path::Path, name: &str) -> docker::record::Container {
    docker::record::Container::find(&containers_dir(state_dir), name).unwrap_or_else(|e| fail(e))
}

fn ps(state_dir: &std::path::Path, args: &PsArgs) {
    docker::lifecycle::ps(
        &containers_dir(state_dir),
        args.all,
        args.quiet,
        args.no_trunc,
        &args.filter,
        args.format.as_deref(),
    )
    .unwrap_or_else(|e| fail(e))
}

/// Docker's question before a prune: `y` on stdin goes on; anything else (or nothing) stops.
fn confirm(warning: &str) -> bool {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y")
}

/// `-a`: which of stdin, stdout and stderr the container gets (Docker's rule: all but stdin when
/// none is named, stdin only with -i or `-a stdin`); refused with -d.
fn attached_streams(names: &[String], interactive: bool, detach: bool) -> [bool; 3] {
    if names.is_empty() {
        return [interactive, true, true];
    }
    if detach {
        fail("conflicting options: -a and -d");
    }
    let mut attach = [false; 3];
    for name in names {
        match name.to_ascii_lowercase().as_str() {
            "stdin" => attach[0] = true,
            "stdout" => attach[1] = true,
            "stderr" => attach[2] = true,
            other => fail(format!("-a {other}: give stdin, stdout or stderr")),
        }
    }
    attach
}

/// The container's stdin is /dev/null unless -i: spawner's own is, before the container inherits it.
fn stdin_from_dev_null() {
    match std::fs::File::open("/dev/null") {
        Ok(null) => {
            if let Err(e) = rustix::stdio::dup2_stdin(&null) {
                fail(format!("stdin: {e}"));
            }
        }
        Err(e) => fail(format!("/dev/null: {e}")),
    }
}

/// `start`: the container made before, run again from its record, under a monitor (or attached,
/// in the foreground: its exit status is returned). A running container is left as it is.
fn start_container(state_dir: &std::path::Path, name: &str, attach: bool, interactive: bool) -> i32 {
    let c = find(state_dir, name);
    if c.status() == docker::record::Status::Running {
        return 0;
    }
    // The run's words again, from where they were given (relative volume paths).
    let _ = std::env::set_current_dir(&c.record.run_cwd);
    let words = ["spawner", "run"].into_iter().map(String::from).chain(c.record.run_args.iter().cloned());
    let mut args = match Cli::try_parse_from(words) {
        Ok(Cli { command: Command::Run(args), .. }) => args,
        _ => fail(format!("container {name}: its record's run arguments no longer parse")),
    };
    // The environment and labels it was made with, as Docker keeps them: --env-file and
    // --label-file are not read again (they may have changed or gone), nor `-e NAME` from this
    // shell's environment.
    args.env_file.clear();
    args.env = c.record.env.clone();
    args.label_file.clear();
    args.label = c.record.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let opts = run_options(*args, state_dir.to_path_buf(), c.record.run_args.clone());
    if !attach {
        return match docker::monitor::detach(&opts, Some(c)) {
            Ok(_) => 0,
            Err(code) => std::process::exit(code),
        };
    }
    if !interactive {
        stdin_from_dev_null();
    }
    match docker::run(&opts, docker::Launch { existing: Some(c), ..Default::default() }) {
        Ok(code) => code,
        Err(e) => fail_with_causes(&e),
    }
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("spawner: {message}");
    std::process::exit(125)
}

/// [`fail`] for a typed error: its one line, and with -v the chain of its causes.
fn fail_with_causes(error: &dyn std::error::Error) -> ! {
    eprintln!("spawner: {error}");
    if log::log_enabled!(log::Level::Info) {
        spawner::print_causes(error);
    }
    std::process::exit(125)
}

/// `image.tar:repo:tag` → (`image.tar`, `repo:tag`): the longest prefix that exists is the archive.
fn split_archive_ref(spec: &str) -> (PathBuf, Option<String>) {
    if std::path::Path::new(spec).exists() {
        return (spec.into(), None);
    }
    for (i, _) in spec.match_indices(':') {
        if std::path::Path::new(&spec[..i]).exists() {
            return (spec[..i].into(), Some(spec[i + 1..].to_string()));
        }
    }
    (spec.into(), None)
}

/// Whether the image argument is an archive (a path, or a transport as skopeo spells them) or a
/// registry reference: a file that exists, a path-looking string or a `.tar` name is an archive.
fn image_source(spec: &str) -> Result<(PathBuf, Option<String>), spawner::registry::Reference> {
    for transport in ["docker-archive:", "oci-archive:", "oci:"] {
        if let Some(path) = spec.strip_prefix(transport) {
            return Ok(split_archive_ref(path));
        }
    }
    let (path, name) = split_archive_ref(spec);
    let path_like = spec.starts_with(['/', '.']) || spec.ends_with(".tar") || spec.ends_with(".tar.gz");
    if path.exists() || path_like {
        return Ok((path, name));
    }
    match spawner::registry::Reference::parse(spec) {
        Ok(reference) => Err(reference),
        // Neither a file nor a reference: the file is what is missing, most likely.
        Err(_) => Ok((path, name)),
    }
}

fn run_options(args: RunArgs, state_dir: PathBuf, run_args: Vec<String>) -> RunOptions {
    let mut words = args.image_and_command.clone().into_iter();
    let image = words.next().unwrap_or_else(|| fail("run: give the image"));
    let mut command: Vec<String> = words.collect();
    // `IMAGE -- COMMAND` (the `--` spawner has always taken) is `IMAGE COMMAND`.
    if command.first().is_some_and(|w| w == "--") {
        command.remove(0);
    }
    if args.rm && args.restart != "no" {
        fail("conflicting options: --restart and --rm");
    }
    if let Err(e) = docker::monitor::Restart::parse(&args.restart) {
        fail(e);
    }
    if let Err(e) = docker::logs::Rotation::parse(&args.log_opt) {
        fail(e);
    }
    let policy = match args.pull.as_str() {
        "missing" => docker::PullPolicy::Missing,
        "always" => docker::PullPolicy::Always,
        "never" => docker::PullPolicy::Never,
        other => fail(format!("--pull {other}: give missing, always or never")),
    };
    let (archive, reference, pull) = match image_source(&image) {
        Ok((archive, reference)) => (archive, reference, None),
        Err(r) => {
            let mut options = args.registry.options();
            options.quiet = args.quiet;
            let pull = docker::Pull { given: image.clone(), reference: r, policy, options };
            (state_dir.join("store/content"), None, Some(pull))
        }
    };
    if reference.is_some() && args.image.is_some() {
        fail("give the image either as ARCHIVE:REPO:TAG or with --image, not both");
    }
    let size = |what: &str, v: &str| {
        parse_size(v).unwrap_or_else(|_| {
            fail(format!("--{what} {v}: invalid size (a number of bytes, or 64m, 1g...)"))
        })
    };
    let memory_swap =
        args.memory_swap.as_deref().map(|v| if v == "-1" { -1 } else { size("memory-swap", v) as i64 });
    let memory = args.memory.as_deref().map(|v| size("memory", v));
    let memory_reservation = args.memory_reservation.as_deref().map(|v| size("memory-reservation", v));
    if let (Some(r), Some(m)) = (memory_reservation, memory.filter(|&m| m > 0)) {
        if r > m {
            fail(format!(
                "--memory-reservation {}: must not be above the memory limit (--memory {})",
                args.memory_reservation.as_deref().unwrap_or_default(),
                args.memory.as_deref().unwrap_or_default()
            ));
        }
    }
    for (flag, list, online) in [
        ("--cpuset-cpus", &args.cpuset_cpus, "/sys/devices/system/cpu/online"),
        ("--cpuset-mems", &args.cpuset_mems, "/sys/devices/system/node/online"),
    ] {
        if let Some(list) = list {
            // A machine without NUMA nodes in sysfs has node 0 only.
            let online = std::fs::read_to_string(online).unwrap_or_else(|_| "0".into());
            docker::flags::check_cpuset(flag, list, &online).unwrap_or_else(|e| fail(e));
        }
    }
    let limits = Limits {
        memory,
        memory_swap,
        pids: args.pids_limit,
        cpus: args.cpus,
        memory_reservation,
        cpu_shares: args.cpu_shares.as_deref().map(|v| {
            v.parse().unwrap_or_else(|_| {
                fail(format!("--cpu-shares {v}: give a whole number (a relative weight, e.g. 512)"))
            })
        }),
        cpuset_cpus: args.cpuset_cpus.clone(),
        cpuset_mems: args.cpuset_mems.clone(),
        cpu_period: args.cpu_period,
        cpu_quota: args.cpu_quota,
        memory_swappiness: args.memory_swappiness,
        block_io_weight: args.blkio_weight,
        // The device rules are the container's to set, from the nodes it gets.
        ..Limits::default()
    };
    let network = network_options(&args).unwrap_or_else(|e| fail(e));
    let flags = run_flags(&args, &network.mode);
    // `-e` over `--env-file`, as Docker applies them.
    let mut env = Vec::new();
    for file in &args.env_file {
        env.extend(docker::flags::read_kv_file("--env-file", file).unwrap_or_else(|e| fail(e)));
    }
    env.extend(args.env.iter().cloned());
    let hostname = match flags.uts {
        docker::flags::Sharing::Private => args.hostname.clone(),
        // The host's name, in HOSTNAME and /etc/hostname too, as Docker's --uts host has it.
        docker::flags::Sharing::Host => {
            Some(rustix::system::uname().nodename().to_string_lossy().into_owned())
        }
    };
    let mut volumes: Vec<docker::Volume> =
        args.volumes.iter().map(|v| docker::volumes::parse(v).unwrap_or_else(|e| fail(e))).collect();
    let mut tmpfs = flags.tmpfs;
    for m in &args.mounts {
        match docker::volumes::parse_mount(m).unwrap_or_else(|e| fail(e)) {
            docker::volumes::MountSpec::Volume(v) => volumes.push(v),
            docker::volumes::MountSpec::Tmpfs(t) => tmpfs.push(t.mount()),
        }
    }
    let devices =
        args.devices.iter().map(|d| docker::devices::parse(d).unwrap_or_else(|e| fail(e))).collect();
    RunOptions {
        archive,
        pull,
        devices,
        image: reference.or(args.image),
        state_dir,
        overrides: Overrides {
            command,
            entrypoint: args.entrypoint,
            env,
            workdir: args.workdir,
            user: args.user,
            hostname,
        },
        volumes,
        tmpfs,
        read_only: args.read_only,
        network,
        limits,
        cgroup_parent: args.cgroup_parent,
        rm: args.rm,
        name: args.name,
        interactive: args.interactive,
        stop_signal: args.stop_signal,
        stop_timeout: args.stop_timeout,
        restart: args.restart,
        security_args: docker::record::SecurityArgs {
            privileged: args.privileged,
            cap_add: args.cap_add.clone(),
            cap_drop: args.cap_drop.clone(),
            security_opt: args.security_opt.clone(),
        },
        ports: args.publish.clone(),
        run_args,
        domainname: args.domainname.clone(),
        tty: args.tty,
        max_image_bytes: size("max-image-size", &args.max_image_size),
        security: spawner::docker::security::Security::from_options(
            args.privileged,
            &args.cap_add,
            &args.cap_drop,
            &args.security_opt,
        )
        .unwrap_or_else(|e| fail(e)),
        log_opts: args.log_opt,
        ..flags
    }
}

/// The flags that become parts of the spec (see `docker::flags`), checked against each other and
/// the network mode; the rest of the options are `run_options`'.
fn run_flags(args: &RunArgs, network: &spawner::network::Mode) -> RunOptions {
    use docker::flags::{self, IpcMode, Sharing, SysctlNamespace};
    fn or_fail<T>(r: Result<T, String>) -> T {
        r.unwrap_or_else(|e| fail(e))
    }
    let pid = or_fail(flags::parse_host_only("--pid", "PID", args.pid.as_deref()));
    let uts = or_fail(flags::parse_host_only("--uts", "UTS", args.uts.as_deref()));
    let ipc = or_fail(flags::parse_ipc(args.ipc.as_deref()));
    if uts == Sharing::Host && args.hostname.is_some() {
        fail("conflicting options: --hostname and --uts host (the host's hostname is the container's)");
    }
    let mut sysctl = std::collections::BTreeMap::new();
    for (key, (value, namespace)) in or_fail(flags::parse_sysctls(&args.sysctl)) {
        let shared = match namespace {
            SysctlNamespace::Ipc if ipc == IpcMode::Host => Some("--ipc host"),
            SysctlNamespace::Network if *network == spawner::network::Mode::Host => Some("--network host"),
            SysctlNamespace::Network if matches!(network, spawner::network::Mode::Container(_)) => {
                Some("--network container:NAME")
            }
            _ => None,
        };
        if let Some(shared) = shared {
            fail(format!(
                "--sysctl {key}={value}: not allowed with {shared}: the namespace is not the container's own"
            ));
        }
        sysctl.insert(key, value);
    }
    let mut label_entries = Vec::new();
    for file in &args.label_file {
        label_entries.extend(or_fail(flags::read_kv_file("--label-file", file)));
    }
    label_entries.extend(args.label.iter().cloned());
    let shm_size = args.shm_size.as_deref().map(|v| {
        let bytes = parse_size(v).unwrap_or_else(|_| {
            fail(format!("--shm-size {v}: invalid size (a number of bytes, or 64m, 1g...)"))
        });
        // 0 is Docker's default size.
        if bytes == 0 {
            docker::DEFAULT_SHM_SIZE
        } else {
            bytes
        }
    });
    RunOptions {
        labels: or_fail(flags::parse_labels(&label_entries)),
        cidfile: args.cidfile.clone(),
        no_init: args.no_init,
        tmpfs: or_fail(flags::parse_tmpfs_all(&args.tmpfs)),
        shm_size,
        rlimits: or_fail(flags::parse_ulimits(&args.ulimit)),
        sysctl,
        group_add: args.group_add.clone(),
        pid,
        ipc,
        uts,
        ..RunOptions::default()
    }
}

/// `--cidfile`: made, empty, before any work (refused if it exists, as Docker refuses it); the
/// run writes the ID into it.
fn create_cidfile(path: &std::path::Path) {
    match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => fail(format!(
            "--cidfile: container ID file found, make sure the other container isn't running or delete {}",
            path.display()
        )),
        Err(e) => fail(format!("--cidfile {}: {e}", path.display())),
    }
}

/// A run that failed before the container was made leaves no empty `--cidfile` behind (as Docker).
fn remove_empty_cidfile(path: Option<&std::path::Path>) {
    if let Some(path) = path.filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() == 0)) {
        let _ = std::fs::remove_file(path);
    }
}

/// dlmalloc, not musl's malloc: musl's maps and unmaps memory for small allocations as they come
/// and go (about 170 mmap/munmap calls in one `spawner run`, each munmap a TLB flush, each fresh
/// page a fault: a quarter of spawner's own time in a profile). dlmalloc keeps freed memory.
#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

/// dlmalloc behind calls that are never inlined: with LTO, inlining it into every allocating
/// function made the binary 350 KB larger.
struct Allocator;

// SAFETY: every method passes its arguments unchanged to dlmalloc's GlobalAlloc, which keeps the
// trait's contract.
unsafe impl std::alloc::GlobalAlloc for Allocator {
    #[inline(never)]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller keeps `alloc`'s contract, which is dlmalloc's.
        unsafe { dlmalloc::GlobalDlmalloc.alloc(layout) }
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe { dlmalloc::GlobalDlmalloc.alloc_zeroed(layout) }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from this allocator (dlmalloc) with `layout`, as the caller promises.
        unsafe { dlmalloc::GlobalDlmalloc.dealloc(ptr, layout) }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` is valid for `layout`'s alignment, as promised.
        unsafe { dlmalloc::GlobalDlmalloc.realloc(ptr, layout, new_size) }
    }
}

fn main() {
    // Called as `spawner-runc` (a link to this binary, for engines' runtime settings): runc's
    // command line, whose `run` takes a bundle and an id, not an image.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let name = args.first().map(std::path::Path::new).and_then(|p| p.file_name()).unwrap_or_default();
    if name.to_string_lossy().ends_with("runc") {
        spawner::runc::main(args);
    }
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        let code = if e.use_stderr() { 125 } else { 0 };
        let _ = e.print();
        std::process::exit(code)
    });
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // Each line says when, since spawner started: -v doubles as a profile of the run.
    let start = std::time::Instant::now();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format(move |buf, record| {
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            writeln!(buf, "[{:<5} {ms:7.3} ms] {}", record.level(), record.args())
        })
        .init();
    let state_dir = cli.root.unwrap_or_else(docker::default_state_dir);
    let needs_root = matches!(
        cli.command,
        Command::Run(_) | Command::Start { .. } | Command::Restart { .. } | Command::Exec { .. }
    );
    if needs_root && !rustix::process::geteuid().is_root() {
        fail(
            "running containers needs root (spawner has no rootless mode yet): run it as root, or with sudo",
        );
    }
    match cli.command {
        Command::Run(args) => {
            // The words after `run`, kept in the container's record for `start`.
            let words: Vec<String> = std::env::args().collect();
            let at = words.iter().skip(1).position(|w| w == "run").map_or(words.len(), |i| i + 2);
            let run_args = words[at.min(words.len())..].to_vec();
            let detach = args.detach;
            let attach = attached_streams(&args.attach, args.interactive, detach);
            if args.tty && args.interactive && !rustix::termios::isatty(rustix::stdio::stdin()) {
                fail("the input device is not a TTY");
            }
            let mut opts = run_options(*args, state_dir, run_args);
            opts.detached_streams = [!attach[1], !attach[2]];
            // Last of the checks: nothing refused after it is made.
            if let Some(cidfile) = &opts.cidfile {
                create_cidfile(cidfile);
            }
            let cidfile = opts.cidfile.as_deref();
            if detach {
                match docker::monitor::detach(&opts, None) {
                    Ok(id) => println!("{id}"),
                    Err(code) => {
                        remove_empty_cidfile(cidfile);
                        std::process::exit(code)
                    }
                }
                return;
            }
            if !attach[0] {
                stdin_from_dev_null();
            }
            match docker::run(&opts, docker::Launch::default()) {
                Ok(code) => std::process::exit(code),
                Err(e) => {
                    remove_empty_cidfile(cidfile);
                    fail_with_causes(&e)
                }
            }
        }
        Command::Ps(args) | Command::Container(ContainerCommand::Ls(args)) => ps(&state_dir, &args),
        Command::Container(ContainerCommand::Prune { force }) => {
            if !force && !confirm("WARNING! This will remove all stopped containers.") {
                return;
            }
            let (removed, reclaimed) = docker::lifecycle::prune(&containers_dir(&state_dir));
            if !removed.is_empty() {
                println!("Deleted Containers:\n{}\n", removed.join("\n"));
            }
            println!("Total reclaimed space: {}", docker::template::human_size(reclaimed));
        }
        Command::System(SystemCommand::Df) => {
            print!("{}", docker::df::system_df(&state_dir).unwrap_or_else(|e| fail(e)))
        }
        Command::Top { container, ps_options } => {
            let c = find(&state_dir, &container);
            print!("{}", docker::top::top(&c, &ps_options).unwrap_or_else(|e| fail(e)));
        }
        Command::Port { container, private_port } => {
            let c = find(&state_dir, &container);
            for line in docker::port::lines(&c, private_port.as_deref()).unwrap_or_else(|e| fail(e)) {
                println!("{line}");
            }
        }
        Command::Rename { container, new_name } => {
            docker::lifecycle::rename(&find(&state_dir, &container), &new_name).unwrap_or_else(|e| fail(e))
        }
        Command::Cp { quiet, src, dest } => {
            let done =
                docker::copy::copy(&containers_dir(&state_dir), &src, &dest).unwrap_or_else(|e| fail(e));
            if !quiet {
                eprintln!("{done}");
            }
        }
        Command::Logs { follow, tail, timestamps, since, until, container } => {
            let c = find(&state_dir, &container);
            let tail = match tail.as_deref() {
                None | Some("all") => None,
                Some(n) => {
                    Some(n.parse().unwrap_or_else(|_| fail(format!("--tail {n}: give a number or all"))))
                }
            };
            let now = std::time::SystemTime::now();
            let time = |flag: &str, value: Option<String>| {
                value.map(|v| {
                    spawner::clock::parse_time_arg(&v, now).unwrap_or_else(|e| fail(format!("--{flag} {e}")))
                })
            };
            let (since, until) = (time("since", since), time("until", until));
            let how = docker::logs::Show { tail, timestamps, follow, since, until };
            let dir = c.dir.clone();
            let running = move || {
                docker::record::Container::load(&dir).is_ok_and(|c| {
                    matches!(c.status(), docker::record::Status::Running | docker::record::Status::Created)
                })
            };
            let path = c.dir.join(docker::record::LOG_FILE);
            if let Err(e) = docker::logs::show(&path, &how, &running) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    fail(format!("{}: {e}", path.display()));
                }
            }
        }
        Command::Stop { time, signal, containers } => {
            let sig = signal.map(|s| spawner::signal::parse(&s).unwrap_or_else(|e| fail(e)));
            for name in &containers {
                docker::lifecycle::stop(&find(&state_dir, name), time, sig).unwrap_or_else(|e| fail(e));
                println!("{name}");
            }
        }
        Command::Kill { signal, containers } => {
            let sig = spawner::signal::parse(&signal).unwrap_or_else(|e| fail(e));
            for name in &containers {
                docker::lifecycle::kill(&find(&state_dir, name), sig).unwrap_or_else(|e| fail(e));
                println!("{name}");
            }
        }
        Command::Rm { force, volumes, containers } => {
            for name in &containers {
                let c = find(&state_dir, name);
                docker::lifecycle::remove(&c, force).unwrap_or_else(|e| fail(e));
                if volumes {
                    docker::remove_anonymous_volumes(&state_dir, &c.record.mounts);
                }
                println!("{name}");
            }
        }
        Command::Volume(command) => volume(&state_dir, command),
        Command::Network(command) => network(&state_dir, command),
        Command::Wait { containers } => {
            for name in &containers {
                let status = docker::lifecycle::wait(&mut find(&state_dir, name)).unwrap_or_else(|e| fail(e));
                println!("{status}");
            }
        }
        Command::Start { attach, interactive, containers } => {
            if attach && containers.len() > 1 {
                fail("start -a: give one container");
            }
            for name in &containers {
                let code = start_container(&state_dir, name, attach, interactive);
                if attach {
                    std::process::exit(code);
                }
                println!("{name}");
            }
        }
        Command::Restart { time, containers } => {
            for name in &containers {
                docker::lifecycle::stop(&find(&state_dir, name), time, None).unwrap_or_else(|e| fail(e));
                start_container(&state_dir, name, false, false);
                println!("{name}");
            }
        }
        Command::Exec { interactive, tty, detach, user, workdir, env, privileged, container, command } => {
            let c = find(&state_dir, &container);
            let args = docker::lifecycle::ExecArgs {
                command,
                interactive,
                tty,
                detach,
                user,
                workdir,
                env,
                privileged,
            };
            let code = docker::lifecycle::exec(&c, &args).unwrap_or_else(|e| fail(e));
            std::process::exit(code);
        }
        Command::Inspect { format, containers } => {
            let all: Vec<serde_json::Value> =
                containers.iter().map(|n| docker::lifecycle::inspect_json(&find(&state_dir, n))).collect();
            match format {
                Some(f) => {
                    for c in &all {
                        println!("{}", docker::template::render(&f, c).unwrap_or_else(|e| fail(e)));
                    }
                }
                None => println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default()),
            }
        }
        Command::Images { verify: true, .. } => {
            let store = LayerStore::open(state_dir.join("store")).unwrap_or_else(|e| fail(e));
            let report = store.verify().unwrap_or_else(|e| fail(e));
            for (layer, problem) in &report.layers {
                match problem {
                    None => println!("ok      {layer}"),
                    Some(problem) => println!("FAILED  {layer}: {problem}"),
                }
            }
            for (image, missing) in &report.incomplete_images {
                let missing: Vec<String> = missing.iter().map(|d| d.to_string()).collect();
                println!(
                    "FAILED  image {} ({}): missing layer {}",
                    image.config_digest,
                    image.names.join(" "),
                    missing.join(" ")
                );
            }
            let failed = report.layers.iter().filter(|(_, p)| p.is_some()).count();
            if report.is_ok() {
                eprintln!("spawner: {} layers verified, all intact", report.layers.len());
            } else {
                eprintln!(
                    "spawner: verification failed: {failed} of {} layers changed, {} images incomplete",
                    report.layers.len(),
                    report.incomplete_images.len()
                );
                std::process::exit(1);
            }
        }
        Command::Images { verify: false, quiet, format } => {
            let store = LayerStore::open(state_dir.join("store")).unwrap_or_else(|e| fail(e));
            let mut rows = Vec::new();
            for image in store.list_images().unwrap_or_else(|e| fail(e)) {
                let id = image.config_digest.to_string();
                let short = id.split(':').nth(1).unwrap_or(&id).chars().take(12).collect::<String>();
                let size: u64 = image.layers.iter().filter_map(|l| store.layer_size(l)).sum();
                let created = image
                    .created
                    .as_deref()
                    .map(|c| c.chars().take(19).collect::<String>().replace('T', " "));
                // One row a name, as Docker shows it (docker.io/library/busybox:latest and
                // busybox:latest are one).
                let mut names: Vec<String> = Vec::new();
                for name in &image.names {
                    let shown = spawner::registry::Reference::parse(name)
                        .map(|r| r.familiar())
                        .unwrap_or(name.clone());
                    if !names.contains(&shown) {
                        names.push(shown);
                    }
                }
                if names.is_empty() {
                    names.push("<none>".into());
                }
                for name in names {
                    let (repo, tag) = split_name(&name);
                    rows.push(serde_json::json!({
                        "Repository": repo, "Tag": tag, "ID": short,
                        "CreatedAt": created.as_deref().unwrap_or("-"), "Size": human_size(size),
                    }));
                }
            }
            if quiet {
                let mut seen = std::collections::BTreeSet::new();
                for row in &rows {
                    if seen.insert(row["ID"].to_string()) {
                        println!("{}", row["ID"].as_str().unwrap_or(""));
                    }
                }
            } else if let Some(format) = format {
                for row in &rows {
                    println!("{}", docker::template::render(&format, row).unwrap_or_else(|e| fail(e)));
                }
            } else {
                println!("{:<40} {:<16} {:<14} {:<22} SIZE", "REPOSITORY", "TAG", "IMAGE ID", "CREATED");
                for row in &rows {
                    let f = |k: &str| row[k].as_str().unwrap_or("").to_string();
                    println!(
                        "{:<40} {:<16} {:<14} {:<22} {}",
                        f("Repository"),
                        f("Tag"),
                        f("ID"),
                        f("CreatedAt"),
                        f("Size")
                    );
                }
            }
        }
        Command::Pull { registry, quiet, reference } => {
            let reference = spawner::registry::Reference::parse(&reference).unwrap_or_else(|e| fail(e));
            let mut options = registry.options();
            options.quiet = quiet;
            let store = LayerStore::open(state_dir.join("store")).unwrap_or_else(|e| fail(e));
            let pulled = spawner::registry::pull(&store, &reference, &options).unwrap_or_else(|e| fail(e));
            println!("{}", pulled.config_digest);
        }
        Command::Prune => {
            let store = LayerStore::open(state_dir.join("store")).unwrap_or_else(|e| fail(e));
            let report = prune(&store, &state_dir);
            for layer in &report.removed_layers {
                println!("removed layer {layer}");
            }
            println!(
                "{} layers removed, {} blobs removed, {} interrupted unpacks cleaned",
                report.removed_layers.len(),
                report.removed_blobs,
                report.removed_scratch
            );
        }
        Command::Load { input } => load(&state_dir, &input),
        Command::Save { output, references } => {
            let store = LayerStore::open(state_dir.join("store")).unwrap_or_else(|e| fail(e));
            let content = spawner::store::content::Content::open(store.root()).unwrap_or_else(|e| fail(e));
            let stored = content.names().unwrap_or_else(|e| fail(e));
            let names: Vec<(String, String)> = references
                .iter()
                .map(|r| {
                    let found = docker::image_names::resolve(&stored, r).unwrap_or_else(|e| fail(e));
                    let full = found.as_deref().unwrap_or(r);
                    let reference = spawner::registry::Reference::parse(full).unwrap_or_else(|e| fail(e));
                    (reference.to_string(), reference.familiar())
                })
                .collect();
            content.save(&names, &output).unwrap_or_else(|e| fail(e));
        }
        Command::Login { username, password, password_stdin, registry, server } => {
            login(username, password, password_stdin, &registry, server.as_deref().unwrap_or("docker.io"))
        }
        Command::Logout { authfile, all, server } => {
            let file = spawner::registry::auth::login_file(authfile.as_deref());
            if all {
                match std::fs::remove_file(&file) {
                    Ok(()) => println!("Removed login credentials for all registries"),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => fail(format!("{}: {e}", file.display())),
                }
                return;
            }
            let server = spawner::registry::auth::registry_of(server.as_deref().unwrap_or("docker.io"));
            match spawner::registry::auth::store(&file, &server, None) {
                Ok(true) => println!("Removed login credentials for {server}"),
                Ok(false) => fail(format!("not logged in to {server}")),
                Err(e) => fail(e),
            }
        }
        Command::Rmi { references } => {
            let store = LayerStore::open(state_dir.join("store")).unwrap_or_else(|e| fail(e));
            let content = spawner::store::content::Content::open(store.root()).unwrap_or_else(|e| fail(e));
            let stored = content.names().unwrap_or_else(|e| fail(e));
            for reference in &references {
                let full = docker::image_names::to_remove(&stored, reference)
                    .unwrap_or_else(|e| fail(e))
                    .or_else(|| spawner::registry::Reference::parse(reference).map(|r| r.to_string()).ok());
                let named = full.as_deref().map(|f| content.untag(f)).transpose().unwrap_or_else(|e| fail(e));
                let image = store.untag(full.as_deref().unwrap_or(reference)).unwrap_or_else(|e| fail(e));
                if image.is_none() && named != Some(true) {
                    fail(format!("no such image: {reference}"));
                }
                let shown = full.as_deref().and_then(|f| spawner::registry::Reference::parse(f).ok());
                println!("Untagged: {}", shown.map_or(reference.clone(), |r| r.familiar()));
            }
            let report = prune(&store, &state_dir);
            for layer in &report.removed_layers {
                println!("Deleted: {layer}");
            }
        }
    }
}
