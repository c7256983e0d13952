//! The container's /etc/resolv.conf and /etc/hosts on a network of its own.
//!
//! resolv.conf is the host's, as Docker makes it: a loopback name server (systemd-resolved's stub at
//! 127.0.0.53, a local dnsmasq) cannot be reached from the container's namespace, so for the stub
//! the upstream servers systemd-resolved lists in /run/systemd/resolve/resolv.conf are used, other
//! loopback servers are dropped, and when none are left the container gets Google's public
//! servers, as Docker does. `--dns` and `--dns-search` replace the host's.

use std::net::{IpAddr, Ipv4Addr};

/// What the user asked for with `--dns`, `--dns-search`, `--dns-option` and `--add-host`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub servers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
    /// `--add-host NAME:IP`.
    pub hosts: Vec<(String, IpAddr)>,
}

/// systemd-resolved's list of the upstream servers.
pub const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

/// The container's resolv.conf, from the host's text (`host`), systemd-resolved's upstream list
/// (read only when `host` points at its stub), and the user's settings.
pub fn resolv_conf(host: &str, upstream: impl FnOnce() -> Option<String>, settings: &Settings) -> String {
    let servers = |text: &str| -> Vec<IpAddr> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .filter_map(|a| a.trim().split('%').next()?.parse().ok())
            .collect()
    };
    let stub = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53));
    let mut host_servers = servers(host);
    let mut base = host.to_string();
    if host_servers.contains(&stub) {
        if let Some(text) = upstream() {
            host_servers = servers(&text);
            base = text;
        }
    }
    host_servers.retain(|s| !s.is_loopback());
    if host_servers.is_empty() {
        host_servers = vec![IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)), IpAddr::V4(Ipv4Addr::new(8, 8, 4, 4))];
    }
    let servers = if settings.servers.is_empty() { host_servers } else { settings.servers.clone() };
    let field = |name: &str| -> Option<String> {
        base.lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .next_back()
    };
    let mut out = String::new();
    let search = if settings.search.is_empty() { field("search") } else { Some(settings.search.join(" ")) };
    if let Some(search) = search.filter(|s| !s.is_empty() && s != ".") {
        out += &format!("search {search}\n");
    }
    for server in servers {
        out += &format!("nameserver {server}\n");
    }
    let options =
        if settings.options.is_empty() { field("options") } else { Some(settings.options.join(" ")) };
    if let Some(options) = options.filter(|o| !o.is_empty()) {
        out += &format!("options {options}\n");
    }
    out
}

/// The container's /etc/hosts: loopback, its own address under its hostname, the other containers
/// on the bridge by name, and `--add-host` entries.
pub fn hosts(
    hostname: &str,
    own: Option<Ipv4Addr>,
    others: &[(String, Ipv4Addr)],
    settings: &Settings,
) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    match own {
        Some(ip) => out += &format!("{ip}\t{hostname}\n"),
        None => out += &format!("127.0.1.1\t{hostname}\n"),
    }
    for (name, ip) in others {
        out += &format!("{ip}\t{name}\n");
    }
    for (name, ip) in &settings.hosts {
        out += &format!("{ip}\t{name}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_systemd_stub_is_replaced_by_its_upstream_servers() {
        let host = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.com\n";
        let upstream = "nameserver 192.0.2.1\nnameserver 192.0.2.2\nsearch corp.example\n";
        let out = resolv_conf(host, || Some(upstream.into()), &Settings::default());
        assert_eq!(out, "search corp.example\nnameserver 192.0.2.1\nnameserver 192.0.2.2\n");
    }

    #[test]
    fn loopback_servers_are_dropped_and_public_ones_used_when_none_is_left() {
        let out = resolv_conf("nameserver 127.0.0.1\nnameserver ::1\n", || None, &Settings::default());
        assert_eq!(out, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let kept = resolv_conf("nameserver 127.0.0.1\nnameserver 192.0.2.9\n", || None, &Settings::default());
        assert_eq!(kept, "nameserver 192.0.2.9\n");
    }

    #[test]
    fn dns_flags_replace_the_hosts_settings() {
        let settings = Settings {
            servers: vec!["192.0.2.53".parse().unwrap()],
            search: vec!["a.example".into(), "b.example".into()],
            options: vec!["ndots:2".into()],
            hosts: Vec::new(),
        };
        let out = resolv_conf("nameserver 192.0.2.1\nsearch host.example\n", || None, &settings);
        assert_eq!(out, "search a.example b.example\nnameserver 192.0.2.53\noptions ndots:2\n");
    }

    #[test]
    fn hosts_names_the_container_its_peers_and_added_hosts() {
        let settings =
            Settings { hosts: vec![("db".into(), "192.0.2.7".parse().unwrap())], ..Default::default() };
        let out = hosts(
            "web1",
            Some(Ipv4Addr::new(10, 89, 0, 3)),
            &[("api".into(), Ipv4Addr::new(10, 89, 0, 2))],
            &settings,
        );
        assert!(
            out.contains("10.89.0.3\tweb1\n")
                && out.contains("10.89.0.2\tapi\n")
                && out.contains("192.0.2.7\tdb\n"),
            "{out}"
        );
    }
}
