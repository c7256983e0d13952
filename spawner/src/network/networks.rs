//! User-defined bridge networks (`spawner network create|ls|rm`, `run --network NAME`), as Docker's:
//! each a bridge of its own on a subnet of its own. Containers on one network reach each other by
//! address and by name; traffic from one network's bridge to another's is dropped (published ports
//! excepted, as Docker's proxy would carry it).
//!
//! The default network, `bridge`, keeps its files in `STATE/network` (its config from the first
//! use, leases, lock); a user-defined one in `STATE/network/networks/NAME`, the same files. A
//! network's bridge is made at its first use, as the default's is, with the nftables table made
//! again to hold every network's rules; `rm` removes the bridge and its rules.

use super::{firewall, ipam, netlink::Netlink, parse_subnet, BridgeConfig, NetworkError};
use super::{BRIDGE, DEFAULT_SUBNET};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The default network's name.
pub const DEFAULT: &str = "bridge";
/// Names `--network` gives other meanings.
const RESERVED: [&str; 5] = ["bridge", "default", "host", "none", "pasta"];

/// Where a bridge network's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub name: String,
    pub dir: PathBuf,
}

fn named_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("network").join("networks")
}

/// The default network's place.
pub fn default_place(state_dir: &Path) -> Place {
    Place { name: DEFAULT.into(), dir: state_dir.join("network") }
}

/// A user-defined network's place; an error naming it when there is no such network.
pub fn place(state_dir: &Path, name: &str) -> Result<Place, NetworkError> {
    let dir = named_dir(state_dir).join(name);
    match check_name(name).is_ok() && dir.join("config.json").is_file() {
        true => Ok(Place { name: name.into(), dir }),
        false => Err(NetworkError(format!("--network {name}: no such network (see spawner network ls)"))),
    }
}

/// Docker's rule for network names: a letter or digit, then letters, digits, `_`, `.` or `-`.
fn check_name(name: &str) -> Result<(), NetworkError> {
    let ok = name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    match ok {
        true => Ok(()),
        false => Err(NetworkError(format!(
            "network name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
        ))),
    }
}

fn read_config(path: &Path) -> Result<BridgeConfig, NetworkError> {
    let bytes = std::fs::read(path).map_err(|e| NetworkError(format!("read {}: {e}", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| NetworkError(format!("{}: {e}", path.display())))
}

/// Every bridge network: the default first (its subnet on record, else the one it will get), then
/// the user-defined ones by name.
pub fn list(state_dir: &Path) -> Vec<(Place, BridgeConfig)> {
    let default = default_place(state_dir);
    let config = read_config(&default.dir.join("config.json")).unwrap_or_else(|_| BridgeConfig {
        bridge: BRIDGE.into(),
        subnet: format!("{}/{}", DEFAULT_SUBNET.0, DEFAULT_SUBNET.1),
    });
    let mut all = vec![(default, config)];
    let mut named: Vec<(Place, BridgeConfig)> = std::fs::read_dir(named_dir(state_dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let place = place(state_dir, &name).ok()?;
            let config = read_config(&place.dir.join("config.json")).ok()?;
            Some((place, config))
        })
        .collect();
    named.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    all.extend(named);
    all
}

/// Whether two subnets share an address.
fn overlap(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let mask = super::mask(a.1.min(b.1));
    u32::from(a.0) & mask == u32::from(b.0) & mask
}

/// The bridge of network `name`: `spawner-` and 7 hex digits of its name's hash (an interface name
/// has 15 bytes at most).
fn bridge_name(name: &str) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(name.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("spawner-{}", &hex[..7])
}

/// `network create NAME [--subnet A.B.C.D/N]`: the network on record (its bridge is made at its
/// first use). Without a subnet, the first /16 from 10.90.0.0 that no other network overlaps.
pub fn create(state_dir: &Path, name: &str, subnet: Option<&str>) -> Result<BridgeConfig, NetworkError> {
    check_name(name)?;
    if RESERVED.contains(&name) {
        return Err(NetworkError(format!("network {name} is a pre-defined network and cannot be created")));
    }
    let others = list(state_dir);
    if others.iter().any(|(p, _)| p.name == name) {
        return Err(NetworkError(format!("network with name {name} already exists")));
    }
    let taken: Vec<(Ipv4Addr, u8)> = others.iter().filter_map(|(_, c)| c.parsed().ok()).collect();
    let subnet = match subnet {
        Some(s) => {
            let asked = parse_subnet(s)?;
            if let Some((p, c)) = others.iter().find(|(_, c)| c.parsed().is_ok_and(|o| overlap(o, asked))) {
                return Err(NetworkError(format!(
                    "--subnet {s}: overlaps network {} ({})",
                    p.name, c.subnet
                )));
            }
            asked
        }
        None => (90..=255u8)
            .map(|b| (Ipv4Addr::new(10, b, 0, 0), 16))
            .find(|s| !taken.iter().any(|t| overlap(*t, *s)))
            .ok_or_else(|| NetworkError("no free 10.x.0.0/16 subnet left: give --subnet".into()))?,
    };
    let bridge = bridge_name(name);
    if let Some((p, _)) = others.iter().find(|(_, c)| c.bridge == bridge) {
        return Err(NetworkError(format!(
            "network {name} would share a bridge with {}: pick another name",
            p.name
        )));
    }
    let config = BridgeConfig { bridge, subnet: format!("{}/{}", subnet.0, subnet.1) };
    // Made whole in a directory of its own, then renamed into place: a network is there with its
    // config, or not at all.
    let parent = named_dir(state_dir);
    std::fs::create_dir_all(&parent).map_err(|e| NetworkError(format!("mkdir {}: {e}", parent.display())))?;
    let tmp = parent.join(format!(".new-{name}-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir(&tmp)?;
        std::fs::write(tmp.join("config.json"), serde_json::to_vec_pretty(&config).expect("serializes"))?;
        std::fs::rename(&tmp, parent.join(name))
    };
    write().map_err(|e| {
        let _ = std::fs::remove_dir_all(&tmp);
        match e.kind() {
            // Another create of the same name won the race.
            std::io::ErrorKind::DirectoryNotEmpty | std::io::ErrorKind::AlreadyExists => {
                NetworkError(format!("network with name {name} already exists"))
            }
            _ => NetworkError(format!("network create {name}: {e}")),
        }
    })?;
    Ok(config)
}

/// The published ports of every live run on any network (the table is made again whole).
pub fn live_elements(state_dir: &Path) -> Vec<firewall::Element> {
    list(state_dir)
        .iter()
        .flat_map(|(p, _)| ipam::live(&p.dir.join("leases")))
        .flat_map(|r| r.ports)
        .collect()
}

/// Takes the lock under which bridges are made and removed (and the table made again).
pub fn lock_bridges(state_dir: &Path) -> Result<rustix::fd::OwnedFd, NetworkError> {
    let dir = state_dir.join("network");
    std::fs::create_dir_all(&dir).map_err(|e| NetworkError(format!("mkdir {}: {e}", dir.display())))?;
    let path = dir.join("lock");
    let lock = rustix::fs::open(
        &path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CREATE | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .map_err(|e| NetworkError(format!("open {}: {e}", path.display())))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| NetworkError(format!("lock {}: {e}", path.display())))?;
    Ok(lock)
}

/// `network rm NAME`: refused while a container runs on it; its bridge, its rules and its files
/// go.
pub fn remove(state_dir: &Path, name: &str) -> Result<(), NetworkError> {
    if RESERVED.contains(&name) {
        return Err(NetworkError(format!("{name} is a pre-defined network and cannot be removed")));
    }
    let place = place(state_dir, name).map_err(|_| NetworkError(format!("network {name} not found")))?;
    let config = read_config(&place.dir.join("config.json"))?;
    let _lock = lock_bridges(state_dir)?;
    let users: Vec<String> = ipam::live(&place.dir.join("leases")).into_iter().map(|r| r.name).collect();
    if !users.is_empty() {
        return Err(NetworkError(format!(
            "network {name} has active endpoints (containers {})",
            users.join(", ")
        )));
    }
    let mut host = Netlink::open()?;
    if let Some(index) = host.index_of(&config.bridge)? {
        host.delete_link(index)?;
        // The table holds the rules of every network whose bridge was made: made again without
        // this one's.
        let rest: Vec<BridgeConfig> =
            list(state_dir).into_iter().filter(|(p, _)| p.name != name).map(|(_, c)| c).collect();
        let elements: Vec<firewall::Element> =
            live_elements(state_dir).into_iter().filter(|e| !in_subnet(e.container_ip, &config)).collect();
        firewall::apply(&(firewall::table(&rest) + &firewall::add_script(&elements)))?;
    }
    let gone = place.dir.with_file_name(format!(".rm-{name}-{}", std::process::id()));
    std::fs::rename(&place.dir, &gone)
        .map_err(|e| NetworkError(format!("remove {}: {e}", place.dir.display())))?;
    std::fs::remove_dir_all(&gone).map_err(|e| NetworkError(format!("remove {}: {e}", gone.display())))
}

fn in_subnet(ip: Ipv4Addr, config: &BridgeConfig) -> bool {
    config.parsed().is_ok_and(|(net, prefix)| u32::from(ip) & super::mask(prefix) == u32::from(net))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_created_listed_and_refused_as_docker_refuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path();
        let first = create(state, "front", None).unwrap();
        assert_eq!(first.subnet, "10.90.0.0/16");
        assert_eq!(first.bridge.len(), 15);
        assert_eq!(create(state, "back", None).unwrap().subnet, "10.91.0.0/16");
        assert_eq!(create(state, "lab", Some("192.168.7.0/24")).unwrap().subnet, "192.168.7.0/24");
        let names: Vec<String> = list(state).into_iter().map(|(p, _)| p.name).collect();
        assert_eq!(names, ["bridge", "back", "front", "lab"]);
        for (name, subnet, says) in [
            ("front", None, "already exists"),
            ("host", None, "pre-defined"),
            ("-x", None, "network name"),
            ("a/b", None, "network name"),
            ("wide", Some("10.0.0.0/8"), "overlaps network bridge"),
            ("lab2", Some("192.168.7.128/25"), "overlaps network lab"),
        ] {
            let e = create(state, name, subnet).unwrap_err();
            assert!(e.0.contains(says), "{name}: {e}");
        }
        assert!(place(state, "front").is_ok());
        assert!(place(state, "nosuch").unwrap_err().0.contains("no such network"));
        assert!(place(state, "../network").is_err());
    }

    #[test]
    fn subnets_overlap_when_they_share_an_address() {
        let net = |a, b, c, p| (Ipv4Addr::new(10, a, b, c), p);
        assert!(overlap(net(89, 0, 0, 16), net(89, 5, 0, 24)));
        assert!(!overlap(net(89, 0, 0, 16), net(90, 0, 0, 16)));
        assert!(overlap(net(0, 0, 0, 8), net(200, 0, 0, 16)));
    }
}
