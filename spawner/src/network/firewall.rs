//! spawner's own nftables table, `ip spawner`: masquerade for what leaves the bridge's subnet, and
//! published ports as elements of DNAT maps, so that publishing or withdrawing a port is one element,
//! never a rule, and nobody else's rules are read or touched.
//!
//! The `nft` binary makes the table once (when the bridge is made); a run's elements are added and
//! removed over nfnetlink (see `nftables`). Traffic from the host itself to its loopback address reaches a published port through
//! the output hook, `route_localnet` on the bridge and a masquerade of 127.0.0.0/8 towards it (as
//! Docker without its userland proxy): no proxy process per port. `route_localnet` would also let a
//! container reach the host's loopback-only services with a frame to the bridge addressed to
//! 127.0.0.1 (CVE-2020-8558's path); the `guard` chain drops whatever comes in from the bridge for
//! 127.0.0.0/8 before routing, as Docker's raw-table rule does.

use super::{BridgeConfig, NetworkError};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

pub const TABLE: &str = "spawner";

/// A published port as a map element: `HOST[:PORT] → CONTAINER:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Element {
    pub protocol: Protocol,
    /// None: every address of the host.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl Element {
    fn map(&self) -> String {
        let scope = if self.host_ip.is_some() { "addr" } else { "any" };
        format!("{}_{scope}", self.protocol.name())
    }

    fn key(&self) -> String {
        match self.host_ip {
            Some(ip) => format!("{ip} . {}", self.host_port),
            None => self.host_port.to_string(),
        }
    }

    fn add(&self) -> String {
        format!(
            "add element ip {TABLE} {} {{ {} : {} . {} }}\n",
            self.map(),
            self.key(),
            self.container_ip,
            self.container_port
        )
    }
}

/// The table for the bridge networks `networks` (made again whole: `nft -f` replaces a table of
/// that name atomically, with the elements of live runs put back by the caller). Traffic from one
/// network's bridge to another's is dropped, unless it is to a published port (DNAT).
pub fn table(networks: &[BridgeConfig]) -> String {
    let mut guard = String::new();
    let mut postrouting = String::new();
    let mut forward = String::new();
    for n in networks {
        let (bridge, subnet) = (&n.bridge, &n.subnet);
        guard += &format!("        iifname \"{bridge}\" ip daddr 127.0.0.0/8 drop\n");
        postrouting += &format!(
            "        ip saddr {subnet} oifname != \"{bridge}\" masquerade\n        ip saddr 127.0.0.0/8 oifname \"{bridge}\" masquerade\n"
        );
        for other in networks.iter().filter(|o| o.bridge != *bridge) {
            forward += &format!("        iifname \"{bridge}\" oifname \"{}\" drop\n", other.bridge);
        }
    }
    for n in networks {
        let bridge = &n.bridge;
        forward += &format!(
            "        iifname \"{bridge}\" accept\n        oifname \"{bridge}\" ct state established,related accept\n"
        );
    }
    format!(
        r#"table ip {TABLE}
delete table ip {TABLE}
table ip {TABLE} {{
    map tcp_any {{ type inet_service : ipv4_addr . inet_service; }}
    map tcp_addr {{ type ipv4_addr . inet_service : ipv4_addr . inet_service; }}
    map udp_any {{ type inet_service : ipv4_addr . inet_service; }}
    map udp_addr {{ type ipv4_addr . inet_service : ipv4_addr . inet_service; }}
    chain publish {{
        dnat ip to ip daddr . tcp dport map @tcp_addr
        dnat ip to tcp dport map @tcp_any
        dnat ip to ip daddr . udp dport map @udp_addr
        dnat ip to udp dport map @udp_any
    }}
    chain guard {{
        type filter hook prerouting priority -300; policy accept;
{guard}    }}
    chain prerouting {{
        type nat hook prerouting priority -100; policy accept;
        fib daddr type local jump publish
    }}
    chain output {{
        type nat hook output priority -100; policy accept;
        fib daddr type local jump publish
    }}
    chain postrouting {{
        type nat hook postrouting priority 100; policy accept;
{postrouting}    }}
    chain forward {{
        type filter hook forward priority 0; policy accept;
        ct status dnat accept
{forward}    }}
}}
"#
    )
}

/// Runs `nft -f -` on `script`.
pub fn apply(script: &str) -> Result<(), NetworkError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            NetworkError(format!(
                "nft: {e} (the bridge network needs nftables' nft command; or run with --network none)"
            ))
        })?;
    let written = child.stdin.take().expect("piped").write_all(script.as_bytes());
    let out = child.wait_with_output().map_err(|e| NetworkError(format!("nft: {e}")))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let first = text.lines().next().unwrap_or("failed");
        return Err(NetworkError(format!("nft: {first}")));
    }
    written.map_err(|e| NetworkError(format!("nft: write its input: {e}")))
}

pub fn add_script(elements: &[Element]) -> String {
    elements.iter().map(Element::add).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_isolates_networks_from_each_other() {
        let net = |bridge: &str, subnet: &str| BridgeConfig { bridge: bridge.into(), subnet: subnet.into() };
        let one = table(&[net("spawner0", "10.89.0.0/16")]);
        assert!(one.contains("iifname \"spawner0\" ip daddr 127.0.0.0/8 drop"));
        assert!(one.contains("ip saddr 10.89.0.0/16 oifname != \"spawner0\" masquerade"));
        assert!(!one.contains("oifname \"spawner0\" drop"));
        let two = table(&[net("spawner0", "10.89.0.0/16"), net("spawner-abcdef0", "10.90.0.0/16")]);
        let dnat = two.find("ct status dnat accept").unwrap();
        let isolation = two.find("iifname \"spawner0\" oifname \"spawner-abcdef0\" drop").unwrap();
        let accept = two.find("iifname \"spawner0\" accept").unwrap();
        // Published ports first, then the isolation, then what each bridge may send.
        assert!(dnat < isolation && isolation < accept, "{two}");
        assert!(two.contains("iifname \"spawner-abcdef0\" oifname \"spawner0\" drop"));
        assert!(two.contains("iifname \"spawner-abcdef0\" ip daddr 127.0.0.0/8 drop"));
    }

    #[test]
    fn elements_name_their_map_and_key() {
        let any = Element {
            protocol: Protocol::Tcp,
            host_ip: None,
            host_port: 8080,
            container_ip: Ipv4Addr::new(10, 89, 0, 2),
            container_port: 80,
        };
        assert_eq!(add_script(&[any]), "add element ip spawner tcp_any { 8080 : 10.89.0.2 . 80 }\n");
        let local = Element { protocol: Protocol::Udp, host_ip: Some(Ipv4Addr::LOCALHOST), ..any };
        assert_eq!(
            add_script(&[local]),
            "add element ip spawner udp_addr { 127.0.0.1 . 8080 : 10.89.0.2 . 80 }\n"
        );
    }
}
