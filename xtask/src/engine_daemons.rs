//! containerd, and dockerd on it, started for a benchmark with everything of theirs in one fresh
//! directory (shared/notes/engines.md): a private mount namespace whose cgroup tree is read-only
//! (they make no container here, and so may make no cgroup anywhere), /run a tmpfs of its own, and
//! a PID namespace whose first process is killed with everything in it when [`Daemons`] drops.

use crate::util::Result;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which daemons to start.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Containerd,
    /// dockerd on its own containerd (dockerd 20.10 pulls and unpacks itself).
    Dockerd,
}

pub struct Daemons {
    engine: Engine,
    dir: PathBuf,
    /// `unshare`, whose child is the namespace's PID 1.
    namespace: Child,
}

const SCRIPT: &str = r#"
set -u
die() { echo "$*" >&2; exit 1; }
mount -t tmpfs -o mode=755 tmpfs /run || die "tmpfs on /run"
mount -o remount,bind,ro /sys/fs/cgroup || die "remount /sys/fs/cgroup"
for h in /sys/fs/cgroup/*; do
    mountpoint -q "$h" || continue
    # dockerd refuses to start without a devices hierarchy; read-only, it can make nothing there.
    case ${h##*/} in
        devices) mount -o remount,bind,ro "$h" || die "remount $h";;
        *) umount "$h" || die "umount $h";;
    esac
done
printf '%s\n' 'version = 2' "root = \"$D/containerd-root\"" "state = \"$D/containerd-state\"" \
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]' '[grpc]' "address = \"$D/containerd.sock\"" \
    '[ttrpc]' "address = \"$D/containerd.sock.ttrpc\"" '[plugins."io.containerd.internal.v1.opt"]' \
    "path = \"$D/containerd-opt\"" > "$D/containerd.toml"
containerd --config "$D/containerd.toml" > "$D/containerd.log" 2>&1 &
for i in $(seq 100); do ctr --address "$D/containerd.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
ctr --address "$D/containerd.sock" version >/dev/null 2>&1 || die "containerd did not start"
if [ "$ENGINE" = dockerd ]; then
    mkdir -p "$D/etc-docker" && mount --bind "$D/etc-docker" /etc/docker || die "bind /etc/docker"
    dockerd --containerd "$D/containerd.sock" --data-root "$D/docker-data" --exec-root "$D/docker-exec" \
        --pidfile "$D/dockerd.pid" -H "unix://$D/docker.sock" \
        --bridge none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
        --userland-proxy=false > "$D/dockerd.log" 2>&1 &
    for i in $(seq 150); do /usr/bin/docker -H "unix://$D/docker.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
    /usr/bin/docker -H "unix://$D/docker.sock" version >/dev/null 2>&1 || die "dockerd did not start"
fi
touch "$D/ready"
exec sleep infinity
"#;

impl Daemons {
    /// Starts `engine` with its state in `dir` (made afresh), and returns once it answers.
    pub fn start(engine: Engine, dir: &Path) -> Result<Daemons> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("client"))?;
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc", "--kill-child"])
            .args(["sh", "-c", SCRIPT])
            .env("D", dir)
            .env("ENGINE", if engine == Engine::Dockerd { "dockerd" } else { "containerd" })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("script.log"))?);
        let mut daemons = Daemons { engine, dir: dir.to_path_buf(), namespace: command.spawn()? };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !dir.join("ready").exists() {
            if daemons.namespace.try_wait()?.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("script.log")).unwrap_or_default();
                return Err(format!("{} did not start: {}", engine.name(), log.trim()).into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(daemons)
    }

    /// ctr, or docker (Debian's client, which matches its dockerd 20.10), for these daemons.
    pub fn client(&self) -> Command {
        match self.engine {
            Engine::Containerd => {
                let mut c = Command::new("ctr");
                c.arg("--address").arg(self.dir.join("containerd.sock"));
                c
            }
            Engine::Dockerd => {
                let mut c = Command::new("/usr/bin/docker");
                c.arg("--config").arg(self.dir.join("client"));
                c.arg("-H").arg(format!("unix://{}", self.dir.join("docker.sock").display()));
                c
            }
        }
    }

    /// The peak RSS in KiB of the daemon that did the work (dockerd, or containerd), from its
    /// VmHWM: the pull happens in the daemon, not in its client.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        let children = |pid: u32| -> Vec<u32> {
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        };
        let wanted = self.engine.name();
        for init in children(self.namespace.id()) {
            for pid in children(init) {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() != wanted {
                    continue;
                }
                let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
                let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:"));
                return Ok(hwm
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap_or(0));
            }
        }
        Err(format!("no {wanted} process found").into())
    }
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Containerd => "containerd",
            Engine::Dockerd => "dockerd",
        }
    }
}

impl Drop for Daemons {
    /// Kills `unshare` (started by this program): with --kill-child its child, the namespace's
    /// PID 1, dies too, and with it every process of the namespace; its mounts go with it.
    fn drop(&mut self) {
        let _ = self.namespace.kill();
        let _ = self.namespace.wait();
        // The PID namespace's last process may still be exiting: its mounts go when it is gone.
        for _ in 0..50 {
            if std::fs::remove_dir_all(&self.dir).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
