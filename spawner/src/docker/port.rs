//! `spawner port`: a running container's published ports as Docker prints them,
//! `80/tcp -> 0.0.0.0:8080`. The host ports are the ones bound: a `-p 80` port the kernel picked
//! is in the run's state (see `RunState::ports`); pasta's, always given, are the `-p` values.

use super::record::{Container, Status};
use crate::container::RunError;
use crate::network::firewall::Protocol;
use crate::network::Publish;
use std::net::Ipv4Addr;

/// One published port: the container's port and protocol, and the host address it is reached at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Binding {
    pub container_port: u16,
    pub protocol: Protocol,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
}

impl Binding {
    /// `80/tcp`.
    pub fn private(&self) -> String {
        format!("{}/{}", self.container_port, self.protocol.name())
    }

    /// `0.0.0.0:8080`.
    pub fn public(&self) -> String {
        format!("{}:{}", self.host_ip, self.host_port)
    }
}

/// The container's published ports, in Docker's order (by port, then protocol); none unless it
/// runs, as Docker has them.
pub fn bindings(c: &Container) -> Vec<Binding> {
    if c.status() != Status::Running {
        return Vec::new();
    }
    let mut all: Vec<Binding> = match c.state.ports.is_empty() {
        false => c
            .state
            .ports
            .iter()
            .map(|e| Binding {
                container_port: e.container_port,
                protocol: e.protocol,
                host_ip: e.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                host_port: e.host_port,
            })
            .collect(),
        // Not on the bridge (pasta): the ports as given, each with its host port.
        true => c
            .record
            .ports
            .iter()
            .filter_map(|p| Publish::parse_ranges(p).ok())
            .flatten()
            .filter(|p| p.host_port != 0)
            .map(|p| Binding {
                container_port: p.container_port,
                protocol: p.protocol,
                host_ip: p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                host_port: p.host_port,
            })
            .collect(),
    };
    all.sort();
    all
}

/// `PRIVATE_PORT[/PROTO]`, tcp when no protocol is given.
pub fn parse_private(s: &str) -> Result<(u16, Protocol), RunError> {
    let bad = || RunError::msg(format!("port {s:?}: give PRIVATE_PORT[/tcp|udp]"));
    let (port, protocol) = match s.split_once('/') {
        Some((port, "tcp")) => (port, Protocol::Tcp),
        Some((port, "udp")) => (port, Protocol::Udp),
        Some(_) => return Err(bad()),
        None => (s, Protocol::Tcp),
    };
    let port = port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?;
    Ok((port, protocol))
}

/// The lines `port` prints: every binding as `80/tcp -> 0.0.0.0:8080`, or, for one private port,
/// its host addresses; an error when that port is not published.
pub fn lines(c: &Container, private: Option<&str>) -> Result<Vec<String>, RunError> {
    let all = bindings(c);
    let Some(private) = private else {
        return Ok(all.iter().map(|b| format!("{} -> {}", b.private(), b.public())).collect());
    };
    let (port, protocol) = parse_private(private)?;
    let found: Vec<String> = all
        .iter()
        .filter(|b| b.container_port == port && b.protocol == protocol)
        .map(Binding::public)
        .collect();
    if found.is_empty() {
        return Err(RunError::msg(format!(
            "No public port '{port}/{}' published for {}",
            protocol.name(),
            c.record.name
        )));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::record::{Phase, Record, RunState};
    use crate::network::firewall::Element;

    fn running(ports: &[&str], bound: Vec<Element>) -> Container {
        let me = std::process::id() as i32;
        Container {
            dir: "/nonexistent".into(),
            record: Record {
                name: "web".into(),
                ports: ports.iter().map(|p| p.to_string()).collect(),
                ..Default::default()
            },
            state: RunState {
                phase: Phase::Running,
                pid: me,
                start_time: crate::runc::state::start_time(me).unwrap(),
                ports: bound,
                ..Default::default()
            },
        }
    }

    #[test]
    fn bound_ports_as_docker_prints_them() {
        let element = |host_port, container_port, protocol| Element {
            protocol,
            host_ip: None,
            host_port,
            container_ip: Ipv4Addr::new(10, 89, 0, 2),
            container_port,
        };
        // `-p 443 -p 8080:80 -p 53:53/udp`: the kernel picked 40001 for 443.
        let c = running(
            &["443", "8080:80", "53:53/udp"],
            vec![
                element(40001, 443, Protocol::Tcp),
                element(8080, 80, Protocol::Tcp),
                element(53, 53, Protocol::Udp),
            ],
        );
        assert_eq!(
            lines(&c, None).unwrap(),
            ["53/udp -> 0.0.0.0:53", "80/tcp -> 0.0.0.0:8080", "443/tcp -> 0.0.0.0:40001"]
        );
        assert_eq!(lines(&c, Some("443")).unwrap(), ["0.0.0.0:40001"]);
        assert_eq!(lines(&c, Some("53/udp")).unwrap(), ["0.0.0.0:53"]);
        assert_eq!(
            lines(&c, Some("53")).unwrap_err().to_string(),
            "No public port '53/tcp' published for web"
        );
        assert!(lines(&c, Some("x/tcp")).is_err());
        assert!(lines(&c, Some("80/sctp")).is_err());
        // Without bound ports on record (pasta): the -p values.
        let c = running(&["127.0.0.1:9000-9001:90-91"], Vec::new());
        assert_eq!(lines(&c, None).unwrap(), ["90/tcp -> 127.0.0.1:9000", "91/tcp -> 127.0.0.1:9001"]);
    }
}
