//! The container's network, as `docker run --network` and `-p` give it: `none` (a namespace of its
//! own with loopback only), `host` (the host's), and `bridge` (the default when root, as Docker's):
//! a bridge `spawner0` on a private subnet, a veth pair per container with an address leased under
//! the state directory, a default route via the bridge, masquerade on the way out and published
//! ports by DNAT, in an nftables table of spawner's own; and user-defined bridge networks (see
//! [`networks`]), each with a bridge and subnet of its own.
//!
//! The bridge and its table stay once made, as Docker leaves docker0: the next run starts without
//! setting them up again, and nothing is left that belongs to a container (its veth goes with its
//! namespace, its lease and ports when it exits, or at the next run after its spawner died).
//!
//! A bridged start's work is split between two threads that overlap the root file system's
//! preparation: one makes the container's namespace, then the veth and eth0's address and route;
//! the main thread opens the host's side (the bridge, the leases) once the container has a name
//! (see [`Pending`]).

pub mod dns;
pub mod firewall;
pub mod ipam;
pub mod names;
pub mod netlink;
pub mod networks;
pub mod nftables;
pub mod pasta;

use firewall::{Element, Protocol};
use netlink::Netlink;
use rustix::fd::OwnedFd;
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

/// A network error: one line naming what failed.
#[derive(Debug)]
pub struct NetworkError(pub String);

impl std::fmt::Display for NetworkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NetworkError {}

impl From<netlink::NetlinkError> for NetworkError {
    fn from(e: netlink::NetlinkError) -> Self {
        NetworkError(e.to_string())
    }
}

/// `--network`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    /// A namespace of its own with loopback only.
    #[default]
    None,
    /// The host's namespace.
    Host,
    /// The default bridge network.
    Bridge,
    /// A user-defined bridge network, by name (see [`networks`]).
    Network(String),
    /// User-mode networking by pasta (see [`pasta`]).
    Pasta,
    /// Another running container's namespace (`container:NAME`).
    Container(String),
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, NetworkError> {
        match s {
            "none" => Ok(Mode::None),
            "host" => Ok(Mode::Host),
            "bridge" | "default" => Ok(Mode::Bridge),
            "pasta" => Ok(Mode::Pasta),
            other if other.starts_with("container:") => match &other["container:".len()..] {
                "" => Err(NetworkError("--network container:NAME: no container named".into())),
                name => Ok(Mode::Container(name.to_string())),
            },
            other if !other.contains(':') => Ok(Mode::Network(other.to_string())),
            other => Err(NetworkError(format!(
                "--network {other}: unknown network (none, host, bridge, pasta, container:NAME or a network's name)"
            ))),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::None => f.write_str("none"),
            Mode::Host => f.write_str("host"),
            Mode::Bridge => f.write_str("bridge"),
            Mode::Network(name) => f.write_str(name),
            Mode::Pasta => f.write_str("pasta"),
            Mode::Container(name) => write!(f, "container:{name}"),
        }
    }
}

/// `-p [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    pub protocol: Protocol,
    pub host_ip: Option<Ipv4Addr>,
    /// 0: a free port the kernel picks.
    pub host_port: u16,
    pub container_port: u16,
}

impl Publish {
    /// One `-p` without ranges.
    pub fn parse(s: &str) -> Result<Publish, NetworkError> {
        let all = Publish::parse_ranges(s)?;
        match all[..] {
            [one] => Ok(one),
            _ => Err(NetworkError(format!("-p {s}: a range where one port was expected"))),
        }
    }

    /// One `-p`, whose ports may be ranges of the same length (`8080-8081:80-81`), as Docker
    /// takes them: a publish for each port.
    pub fn parse_ranges(s: &str) -> Result<Vec<Publish>, NetworkError> {
        let bad = |why: &str| {
            NetworkError(format!("-p {s}: {why} (use [IP:][HOSTPORT[-END]:]CONTAINERPORT[-END][/tcp|udp])"))
        };
        let (spec, protocol) = match s.rsplit_once('/') {
            Some((spec, "tcp")) => (spec, Protocol::Tcp),
            Some((spec, "udp")) => (spec, Protocol::Udp),
            Some((_, other)) => return Err(bad(&format!("unknown protocol {other:?}"))),
            None => (s, Protocol::Tcp),
        };
        let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
        let port = |p: &str| -> Result<u16, NetworkError> {
            match p.parse::<u16>() {
                Ok(0) => Err(bad("port 0")),
                Ok(n) => Ok(n),
                Err(_) => Err(bad(&format!("{p:?} is not a port"))),
            }
        };
        let range = |p: &str| -> Result<(u16, u16), NetworkError> {
            match p.split_once('-') {
                Some((first, last)) => match (port(first)?, port(last)?) {
                    (first, last) if first <= last => Ok((first, last)),
                    _ => Err(bad(&format!("{p:?}: a range ends after it starts"))),
                },
                None => port(p).map(|n| (n, n)),
            }
        };
        let container = range(parts[0])?;
        let host = match parts.get(1) {
            None | Some(&"") => None,
            Some(p) => Some(range(p)?),
        };
        let host_ip = match parts.get(2) {
            None | Some(&"") => None,
            Some(ip) => match ip.parse::<Ipv4Addr>() {
                Ok(ip) if ip.is_unspecified() => None,
                Ok(ip) => Some(ip),
                Err(_) => return Err(bad(&format!("{ip:?} is not an IPv4 address"))),
            },
        };
        let count = container.1 - container.0;
        if host.is_some_and(|h| h.1 - h.0 != count) {
            return Err(bad("the host and container ranges differ in length"));
        }
        Ok((0..=count)
            .map(|i| Publish {
                protocol,
                host_ip,
                // 0: a free port the kernel picks.
                host_port: host.map_or(0, |h| h.0 + i),
                container_port: container.0 + i,
            })
            .collect())
    }
}

/// Everything `run` says about the network.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub mode: Mode,
    pub publish: Vec<Publish>,
    pub dns: dns::Settings,
    /// `--subnet` for the bridge, at its first use.
    pub subnet: Option<(Ipv4Addr, u8)>,
}

/// The bridge network's settings, kept in `STATE/network/config.json` from its first use.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BridgeConfig {
    pub bridge: String,
    pub subnet: String,
}

pub const DEFAULT_SUBNET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 89, 0, 0), 16);
pub const BRIDGE: &str = "spawner0";

impl BridgeConfig {
    fn parsed(&self) -> Result<(Ipv4Addr, u8), NetworkError> {
        parse_subnet(&self.subnet)
    }
}

/// `A.B.C.D/N`, with no host bits, N from 8 to 30.
pub fn parse_subnet(s: &str) -> Result<(Ipv4Addr, u8), NetworkError> {
    let bad = |why: &str| NetworkError(format!("subnet {s:?}: {why}"));
    let (ip, prefix) = s.split_once('/').ok_or_else(|| bad("use A.B.C.D/N"))?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad("not an IPv4 address"))?;
    let prefix: u8 =
        prefix.parse().ok().filter(|p| (8..=30).contains(p)).ok_or_else(|| bad("prefix must be 8 to 30"))?;
    if u32::from(ip) & !mask(prefix) != 0 {
        return Err(bad("host bits are set"));
    }
    Ok((ip, prefix))
}

fn mask(prefix: u8) -> u32 {
    u32::MAX << (32 - prefix)
}

/// The gateway (the bridge's address) and the addresses containers lease, in order.
fn addresses((net, prefix): (Ipv4Addr, u8)) -> (Ipv4Addr, impl Iterator<Item = Ipv4Addr>) {
    let base = u32::from(net);
    let broadcast = base | !mask(prefix);
    (Ipv4Addr::from(base + 1), (base + 2..broadcast).map(Ipv4Addr::from))
}

/// A bridge network's config: the one on record; for the default network, else made from
/// `--subnet` or the default and recorded (atomically: a rename).
fn bridge_config(
    place: &networks::Place,
    subnet: Option<(Ipv4Addr, u8)>,
) -> Result<BridgeConfig, NetworkError> {
    let dir = &place.dir;
    let path = dir.join("config.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let config: BridgeConfig = serde_json::from_slice(&bytes)
                .map_err(|e| NetworkError(format!("{}: {e}", path.display())))?;
            let on_record = config.parsed()?;
            if let Some(asked) = subnet.filter(|s| *s != on_record) {
                return Err(NetworkError(format!(
                    "--subnet {}/{}: the {} network already uses {} ({})",
                    asked.0,
                    asked.1,
                    place.name,
                    config.subnet,
                    path.display()
                )));
            }
            Ok(config)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && place.name == networks::DEFAULT => {
            let (net, prefix) = subnet.unwrap_or(DEFAULT_SUBNET);
            let config = BridgeConfig { bridge: BRIDGE.into(), subnet: format!("{net}/{prefix}") };
            std::fs::create_dir_all(dir)
                .map_err(|e| NetworkError(format!("mkdir {}: {e}", dir.display())))?;
            let tmp = dir.join(format!(".config.{}", thread_token()));
            let text = serde_json::to_vec_pretty(&config).expect("serializes");
            std::fs::write(&tmp, text).map_err(|e| NetworkError(format!("write {}: {e}", tmp.display())))?;
            std::fs::rename(&tmp, &path)
                .map_err(|e| NetworkError(format!("rename {}: {e}", tmp.display())))?;
            Ok(config)
        }
        Err(e) => Err(NetworkError(format!("read {}: {e}", path.display()))),
    }
}

/// A name for temporary files unique to this thread.
fn thread_token() -> String {
    format!("{}-{}", std::process::id(), rustix::thread::gettid().as_raw_nonzero())
}

/// What the network thread made: the namespace for the container to join, and what must live as
/// long as the container (dropped after it exits: ports withdrawn, then the address released).
pub struct Attached {
    pub netns: OwnedFd,
    pub address: Option<Ipv4Addr>,
    /// The other containers on the bridge, by name, for its /etc/hosts.
    pub peers: Vec<(String, Ipv4Addr)>,
    /// Its /etc/resolv.conf.
    pub resolv_conf: String,
    ports: Option<Ports>,
    lease: Option<ipam::Lease>,
    /// The container's /etc/hosts, once announced to its peers; and the network directory.
    hosts: Option<(OwnedFd, PathBuf)>,
    /// The bridge network's directory (its leases, and the peers' hosts files to edit).
    network_dir: Option<PathBuf>,
}

impl Attached {
    /// A namespace with no address of spawner's (none, pasta, another container's): the host's
    /// resolv.conf, as Docker gives it.
    fn unaddressed(netns: OwnedFd) -> Attached {
        Attached {
            netns,
            address: None,
            peers: Vec::new(),
            resolv_conf: std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            ports: None,
            lease: None,
            hosts: None,
            network_dir: None,
        }
    }

    /// The published ports as bound: a host port left to the kernel is the one it picked.
    pub fn published(&self) -> Vec<Element> {
        self.ports.as_ref().map_or_else(Vec::new, |p| p.elements.clone())
    }

    /// Adds the container to the hosts files of the others on the bridge, and records where its
    /// own (`hosts`, a file this process keeps open) is, for those that come later.
    pub fn announce(&mut self, hosts: OwnedFd) -> Result<(), NetworkError> {
        use rustix::fd::AsRawFd;
        let (Some(lease), Some(dir)) = (self.lease.as_mut(), self.network_dir.clone()) else { return Ok(()) };
        lease.record.hosts = Some((std::process::id(), hosts.as_raw_fd()));
        lease.rewrite()?;
        names::announce(&dir, &lease.record)?;
        self.hosts = Some((hosts, dir));
        Ok(())
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let (Some((_, dir)), Some(lease)) = (&self.hosts, &self.lease) {
            if let Err(e) = names::withdraw(dir, &lease.record) {
                log::warn!("{e}");
            }
        }
    }
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached")
            .field("address", &self.address)
            .field("published", &self.ports.as_ref().map(|p| &p.elements))
            .finish()
    }
}

/// Published ports: the host ports held by a bound socket each (so no host process takes one, and
/// a port in use is refused), and the map elements, removed when dropped.
struct Ports {
    elements: Vec<Element>,
    _sockets: Vec<OwnedFd>,
    /// None once the elements are withdrawn (see [`Attached::release`]).
    nftables: Option<nftables::Session>,
}

impl Ports {
    /// Withdraws the elements; the session that did it.
    fn withdraw(&mut self) -> Option<nftables::Session> {
        let mut nftables = self.nftables.take()?;
        if let Err(e) = nftables.delete(&self.elements) {
            log::warn!("withdraw published ports: {e}");
        }
        Some(nftables)
    }
}

impl Drop for Ports {
    fn drop(&mut self) {
        self.withdraw();
    }
}

impl Attached {
    /// Releases the network (its ports withdrawn, its address and hosts lines, its namespace),
    /// all but what is best closed last: the nftables socket that withdrew the ports. Closing an
    /// nftables socket waits until the kernel's worker has freed the last transaction, an RCU
    /// grace period after it (about 8 ms here, on every `-p` run's exit): closed once the rest is
    /// cleaned up, it waits only for what is left of that.
    pub fn release(mut self) -> Released {
        Released { _nftables: self.ports.as_mut().and_then(Ports::withdraw) }
    }
}

/// See [`Attached::release`].
pub struct Released {
    _nftables: Option<nftables::Session>,
}

/// The network thread of a run, started before the container has a name: it makes the network
/// namespace at once (the slowest step of it, about 0.8 ms), then for a bridge waits for what the
/// main thread opens and leases in the host's namespace once the container has a name
/// ([`Pending::named`]) to make the veth. [`Pending::result`] takes what it made.
pub struct Pending {
    thread: std::thread::JoinHandle<()>,
    result: std::sync::mpsc::Receiver<Result<Attached, NetworkError>>,
    /// A bridged run's: where its host side goes, and what it is opened from.
    host_side: Option<(HostSideSender, PathBuf, Options)>,
}

type HostSideSender = std::sync::mpsc::Sender<Result<HostSide, NetworkError>>;

impl Pending {
    /// The container's name and ID. For a bridge, its host side is opened and its address leased
    /// here, on the calling thread, while the network thread makes the namespace: the two halves
    /// of the work overlap. An error is the thread's, reported with its result.
    pub fn named(&mut self, name: &str, id: &str) {
        if let Some((sender, state_dir, opts)) = self.host_side.take() {
            // The thread may be gone already (an error it will report with its result).
            let _ = sender.send(HostSide::open(&state_dir, &opts, name, id));
        }
    }

    /// What the thread made, as soon as it is made; and the thread, which is exiting then (its
    /// stack unmapped, its TLS freed): joined when dropped, once the caller has done what needs
    /// no second thread gone.
    pub fn result(self) -> (Result<Attached, NetworkError>, Exiting) {
        drop(self.host_side);
        let result = self
            .result
            .recv()
            .unwrap_or_else(|_| Err(NetworkError("the network namespace thread panicked".into())));
        (result, Exiting(Some(self.thread)))
    }
}

/// The network thread on its way out, joined when dropped.
pub struct Exiting(Option<std::thread::JoinHandle<()>>);

impl Drop for Exiting {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

/// Starts making the container's network namespace for `opts` (not for `host`).
pub fn start(state_dir: &Path, opts: &Options) -> Pending {
    let (sender, host_side) = std::sync::mpsc::channel::<Result<HostSide, NetworkError>>();
    let (done, result) = std::sync::mpsc::channel();
    let bridged = matches!(opts.mode, Mode::Bridge | Mode::Network(_));
    let (containers, mode, dns) = (state_dir.join("containers"), opts.mode.clone(), opts.dns.clone());
    let thread = std::thread::spawn(move || {
        let made = (|| match mode {
            Mode::Container(other) => Ok(Attached::unaddressed(container_namespace(&containers, &other)?)),
            _ if !bridged => Ok(Attached::unaddressed(own_namespace(Ipv6::On)?)),
            _ => {
                let netns = own_namespace(Ipv6::Off)?;
                log::debug!("network: namespace made");
                let host = host_side
                    .recv()
                    .map_err(|_| NetworkError("the run ended before its container had a name".into()))??;
                bridge(host, &dns, netns)
            }
        })();
        // Should nobody take it (the receiver gone), what was made is undone here.
        let _ = done.send(made);
    });
    let host_side = bridged.then(|| (sender, state_dir.to_path_buf(), opts.clone()));
    Pending { thread, result, host_side }
}

/// Where this spawner holds `attached`'s namespace, `PID FD` (its pid and its fd to the
/// namespace), for the run's state (`netns` in its state.json) while the container runs: what
/// `--network container:NAME` opens.
pub fn namespace_holder(attached: &Attached) -> String {
    use rustix::fd::AsRawFd;
    format!("{} {}", std::process::id(), attached.netns.as_raw_fd())
}

/// The network namespace of the running container `name` (its spawner's fd to it, opened through
/// /proc), checked to be a network namespace other than this one.
fn container_namespace(containers: &Path, name: &str) -> Result<OwnedFd, NetworkError> {
    use rustix::fs::{FlockOperation, Mode as FileMode, OFlags};
    let not_running =
        || NetworkError(format!("--network container:{name}: no running container of that name"));
    if name.contains('/') || name.starts_with('.') {
        return Err(not_running());
    }
    let dir = containers.join(name);
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let lock = rustix::fs::open(&dir, flags, FileMode::empty()).map_err(|_| not_running())?;
    // Its run holds an exclusive lock on it while it lives.
    if rustix::fs::flock(&lock, FlockOperation::NonBlockingLockShared).is_ok() {
        return Err(not_running());
    }
    // Its run writes the state once the container runs; `netns` is empty when the container has
    // no namespace of its own to share (--network host, or container:OTHER).
    let state = std::fs::read(dir.join(crate::docker::record::STATE_FILE)).map_err(|_| not_running())?;
    let state: crate::docker::record::RunState = serde_json::from_slice(&state).map_err(|_| not_running())?;
    let holder = state.netns;
    if holder.is_empty() {
        return Err(NetworkError(format!(
            "--network container:{name}: it has no network namespace of its own to share"
        )));
    }
    let (pid, fd) = holder.split_once(' ').ok_or_else(not_running)?;
    let path = format!("/proc/{pid}/fd/{fd}");
    let link = std::fs::read_link(&path).map_err(|_| not_running())?;
    let own = std::fs::read_link("/proc/thread-self/ns/net").ok();
    if !link.to_string_lossy().starts_with("net:[") || Some(&link) == own.as_ref() {
        return Err(not_running());
    }
    rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, FileMode::empty())
        .map_err(|e| NetworkError(format!("--network container:{name}: open its namespace: {e}")))
}

/// IPv6 in a new network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ipv6 {
    On,
    /// Off, as Docker has it on a network without IPv6 (`--sysctl
    /// net.ipv6.conf.all.disable_ipv6=0` turns it on again): the bridge gives IPv4 only, so eth0
    /// gets no link-local IPv6 address to talk to its peers with beside the IPv4 rules. Turned off
    /// before loopback is up, which then never gets ::1 (nor its routes) to lose again. Nothing to
    /// do on a kernel without IPv6.
    Off,
}

/// Moves this thread into a new network namespace with loopback up; an fd to it.
fn own_namespace(ipv6: Ipv6) -> Result<OwnedFd, NetworkError> {
    // SAFETY: unshare(CLONE_NEWNET) moves only this thread (which exits once its work is done)
    // into the new namespace and touches no file descriptor table.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
        .map_err(|e| NetworkError(format!("unshare(CLONE_NEWNET): {e}")))?;
    if ipv6 == Ipv6::Off {
        for conf in ["all", "default"] {
            let path = format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6");
            if let Err(e) = std::fs::write(&path, "1") {
                log::debug!("{path}: {e}");
            }
        }
    }
    crate::container::net::loopback_up().map_err(|e| NetworkError(format!("bring up loopback: {e}")))?;
    rustix::fs::open(
        "/proc/thread-self/ns/net",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| NetworkError(format!("open /proc/thread-self/ns/net: {e}")))
}

/// What a bridged container's network needs from the host's namespace, opened by the main thread
/// (a socket keeps the namespace it was made in): the bridge (made if missing), a netlink socket
/// there, the leases scanned (a dead run's published ports withdrawn) and the container's own
/// taken, and for `-p` the ports' sockets (not yet bound) with the nftables session that adds
/// their elements.
struct HostSide {
    place: networks::Place,
    config: BridgeConfig,
    netlink: Netlink,
    bridge_index: u32,
    /// The other containers on the network.
    others: Vec<ipam::Record>,
    lease: ipam::Lease,
    /// The container's ID, for its veth's name.
    id: String,
    publish: Vec<Publish>,
    port_sockets: Vec<OwnedFd>,
    nftables: Option<nftables::Session>,
}

impl HostSide {
    fn open(state_dir: &Path, opts: &Options, name: &str, id: &str) -> Result<HostSide, NetworkError> {
        let place = match &opts.mode {
            Mode::Network(network) => networks::place(state_dir, network)?,
            _ => networks::default_place(state_dir),
        };
        let config = bridge_config(&place, opts.subnet)?;
        let subnet = config.parsed()?;
        let (gateway, hosts) = addresses(subnet);
        let mut netlink = Netlink::open()?;
        let bridge_index = ensure_bridge(&mut netlink, state_dir, &config, gateway, subnet)?;
        let port_sockets = opts
            .publish
            .iter()
            .map(|p| {
                let (kind, proto) = match p.protocol {
                    Protocol::Tcp => (rustix::net::SocketType::STREAM, rustix::net::ipproto::TCP),
                    Protocol::Udp => (rustix::net::SocketType::DGRAM, rustix::net::ipproto::UDP),
                };
                rustix::net::socket_with(
                    rustix::net::AddressFamily::INET,
                    kind,
                    rustix::net::SocketFlags::CLOEXEC,
                    Some(proto),
                )
                .map_err(|e| NetworkError(format!("socket: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut nftables = match opts.publish.is_empty() {
            true => None,
            false => Some(nftables::Session::open()?),
        };
        let leases = place.dir.join("leases");
        let others = ipam::scan(&leases, |dead| {
            // One element a batch: one already gone must not keep the others.
            for element in &dead.ports {
                if nftables.is_none() {
                    nftables = nftables::Session::open().ok();
                }
                if let Some(session) = nftables.as_mut() {
                    let _ = session.delete(std::slice::from_ref(element));
                }
            }
        });
        log::debug!("network: host side open");
        let lease = ipam::lease(&leases, hosts, ipam::Record { name: name.into(), ..Default::default() })?;
        log::debug!("network: leased {}", lease.record.address);
        Ok(HostSide {
            place,
            config,
            netlink,
            bridge_index,
            others,
            lease,
            id: id.to_string(),
            publish: opts.publish.clone(),
            port_sockets,
            nftables,
        })
    }
}

/// The bridge part of a container's network, from this thread, which is in the container's new
/// namespace `netns` (made with IPv6 off); `host` holds what stays in the host's.
fn bridge(host: HostSide, dns: &dns::Settings, netns: OwnedFd) -> Result<Attached, NetworkError> {
    let HostSide {
        place,
        config,
        netlink: mut host,
        bridge_index,
        others,
        mut lease,
        id,
        publish: published,
        port_sockets,
        nftables,
    } = host;
    let subnet = config.parsed()?;
    let (gateway, _) = addresses(subnet);
    let address = lease.record.address;
    let ports = publish(&published, port_sockets, nftables, address, &mut lease)?;
    let host_end = format!("veth{}", &id[..id.len().min(11)]);
    let peer = host.add_veth(&host_end, bridge_index, "eth0", &netns)?;
    log::debug!("network: veth pair made");
    let mut inner = Netlink::open()?;
    let eth0 = match peer {
        Some(index) => index,
        // A kernel before 6.1 does not echo the new link.
        None => inner
            .index_of("eth0")?
            .ok_or_else(|| NetworkError("eth0 did not appear in the container".into()))?,
    };
    inner.set_up_with_default_route(eth0, address, subnet.1, gateway)?;
    log::debug!("network: eth0 addressed and routed");
    let peers: Vec<(String, Ipv4Addr)> = others.iter().map(|r| (r.name.clone(), r.address)).collect();
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv_conf =
        dns::resolv_conf(&host_resolv, || std::fs::read_to_string(dns::RESOLVED_UPSTREAM).ok(), dns);
    Ok(Attached {
        netns,
        address: Some(address),
        peers,
        resolv_conf,
        ports,
        lease: Some(lease),
        hosts: None,
        network_dir: Some(place.dir.clone()),
    })
}

/// The bridge's index; made (with its address, forwarding and the firewall table, made again with
/// every network's rules and the live runs' ports) when missing.
fn ensure_bridge(
    host: &mut Netlink,
    state_dir: &Path,
    config: &BridgeConfig,
    gateway: Ipv4Addr,
    subnet: (Ipv4Addr, u8),
) -> Result<u32, NetworkError> {
    if let Some(index) = host.index_of(&config.bridge)? {
        return Ok(index);
    }
    let _lock = networks::lock_bridges(state_dir)?;
    if let Some(index) = host.index_of(&config.bridge)? {
        return Ok(index);
    }
    let index = match host.add_bridge(&config.bridge) {
        Ok(index) => index,
        // Made meanwhile by a spawner with another state directory (the lock is the directory's),
        // whose run sets it up.
        Err(e) if e.errno == rustix::io::Errno::EXIST => {
            return host.index_of(&config.bridge)?.ok_or_else(|| e.into());
        }
        Err(e) if e.errno == rustix::io::Errno::OPNOTSUPP => {
            return Err(NetworkError(format!(
                "{e} (this kernel has no bridge support: use --network none, host or pasta)"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let setup = |host: &mut Netlink| -> Result<(), NetworkError> {
        host.add_address(index, gateway, subnet.1)?;
        host.set_up(index)?;
        for (path, value) in [
            ("/proc/sys/net/ipv4/ip_forward".to_string(), "1"),
            (format!("/proc/sys/net/ipv4/conf/{}/route_localnet", config.bridge), "1"),
        ] {
            std::fs::write(&path, value).map_err(|e| NetworkError(format!("write {path}: {e}")))?;
        }
        let all: Vec<BridgeConfig> = networks::list(state_dir).into_iter().map(|(_, c)| c).collect();
        let script = firewall::table(&all) + &firewall::add_script(&networks::live_elements(state_dir));
        firewall::apply(&script)
    };
    match setup(host) {
        Ok(()) => {
            log::info!("made bridge {} on {}", config.bridge, config.subnet);
            Ok(index)
        }
        Err(e) => {
            // Undone: the next run sets it up whole.
            let _ = host.delete_link(index);
            Err(e)
        }
    }
}

/// Reserves the host ports of `publish` (a bound socket each) and adds their DNAT elements, after
/// recording them in the lease, so a run that dies leaves them to be withdrawn by the next.
fn publish(
    publish: &[Publish],
    sockets: Vec<OwnedFd>,
    nftables: Option<nftables::Session>,
    address: Ipv4Addr,
    lease: &mut ipam::Lease,
) -> Result<Option<Ports>, NetworkError> {
    if publish.is_empty() {
        return Ok(None);
    }
    let mut elements = Vec::new();
    for (p, socket) in publish.iter().zip(&sockets) {
        let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let shown = format!("{ip}:{}/{}", p.host_port, p.protocol.name());
        rustix::net::bind(socket, &SocketAddrV4::new(ip, p.host_port)).map_err(|e| match e {
            rustix::io::Errno::ADDRINUSE => NetworkError(format!("-p {shown}: the port is already in use")),
            rustix::io::Errno::ADDRNOTAVAIL => {
                NetworkError(format!("-p {shown}: {ip} is not an address of this host"))
            }
            e => NetworkError(format!("-p {shown}: bind: {e}")),
        })?;
        let host_port = match rustix::net::getsockname(socket) {
            Ok(addr) => SocketAddrV4::try_from(addr).map(|a| a.port()).unwrap_or(p.host_port),
            Err(_) => p.host_port,
        };
        elements.push(Element {
            protocol: p.protocol,
            host_ip: p.host_ip,
            host_port,
            container_ip: address,
            container_port: p.container_port,
        });
    }
    lease.record.ports = elements.clone();
    lease.rewrite()?;
    let mut nftables = nftables.ok_or_else(|| NetworkError("no nftables session for -p".into()))?;
    nftables.add(&elements)?;
    Ok(Some(Ports { elements, _sockets: sockets, nftables: Some(nftables) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_takes_dockers_forms() {
        let p = |s: &str| Publish::parse(s).unwrap();
        assert_eq!(
            p("8080:80"),
            Publish { protocol: Protocol::Tcp, host_ip: None, host_port: 8080, container_port: 80 }
        );
        assert_eq!(p("127.0.0.1:8080:80/udp").host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(p("127.0.0.1:8080:80/udp").protocol, Protocol::Udp);
        assert_eq!(p("80").host_port, 0);
        assert_eq!(p("127.0.0.1::80").host_port, 0);
        assert_eq!(p("0.0.0.0:53:53/udp").host_ip, None);
        for bad in ["x:80", "8080:0", "8080:80/sctp", "999999:80", "1.2.3:80:80", "8080-8081:80"] {
            assert!(Publish::parse(bad).is_err(), "{bad}");
        }
        let ranges = Publish::parse_ranges("127.0.0.1:8080-8082:80-82/udp").unwrap();
        let pairs: Vec<(u16, u16)> = ranges.iter().map(|p| (p.host_port, p.container_port)).collect();
        assert_eq!(pairs, [(8080, 80), (8081, 81), (8082, 82)]);
        assert!(ranges.iter().all(|p| p.protocol == Protocol::Udp && p.host_ip == Some(Ipv4Addr::LOCALHOST)));
        assert_eq!(Publish::parse_ranges("80-81").unwrap().len(), 2);
        for bad in ["8080-8081:80-82", "8082-8080:80-82"] {
            assert!(Publish::parse_ranges(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subnets_are_checked_and_give_gateway_and_hosts() {
        assert_eq!(parse_subnet("10.89.0.0/16").unwrap(), (Ipv4Addr::new(10, 89, 0, 0), 16));
        for bad in ["10.89.0.1/16", "10.89.0.0", "10.89.0.0/31", "x/16"] {
            assert!(parse_subnet(bad).is_err(), "{bad}");
        }
        let (gateway, hosts) = addresses((Ipv4Addr::new(192, 168, 5, 0), 30));
        assert_eq!(gateway, Ipv4Addr::new(192, 168, 5, 1));
        assert_eq!(hosts.collect::<Vec<_>>(), [Ipv4Addr::new(192, 168, 5, 2)]);
    }

    #[test]
    fn the_subnet_is_kept_from_the_first_use() {
        let dir = tempfile::tempdir().unwrap();
        let place = networks::default_place(dir.path());
        let first = bridge_config(&place, Some((Ipv4Addr::new(10, 5, 0, 0), 24))).unwrap();
        assert_eq!(first.subnet, "10.5.0.0/24");
        assert_eq!(bridge_config(&place, None).unwrap(), first);
        let e = bridge_config(&place, Some(DEFAULT_SUBNET)).unwrap_err();
        assert!(e.0.contains("already uses 10.5.0.0/24"), "{e}");
    }
}
