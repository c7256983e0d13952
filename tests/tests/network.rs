//! `--network`, `-p`, DNS: what a container on spawner's bridge can reach, and what is left after it.
//!
//! Every test runs its script in a network namespace it makes (`unshare --net`), standing for the
//! host: the bridge and the nftables table live there. An "outside world" namespace is joined to it
//! by a veth, with a server (`netpeer`) on 192.0.2.2 standing for the internet; the host's default
//! route points there. Nothing touches the machine's own network namespace.

use integration_tests::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The start of every script: the host namespace's loopback, the outside world (`$W` runs a
/// command in it), `serve` to start a netpeer there, `$S` for spawner on the test's state
/// directory, `gone` to print what a run may have left on the host.
const WORLD: &str = r#"
set -u
die() { echo "$*" >&2; exit 1; }
servers=""
world=""
trap 'kill $world $servers 2>/dev/null' EXIT
ip link set lo up || die "lo up"
unshare --net sleep 600 & world=$!
for i in $(seq 100); do
    [ "$(readlink /proc/$world/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break; sleep 0.02
done
W="nsenter -t $world -n"
ip link add wan type veth peer name wan netns $world || die "veth to the world"
ip addr add 192.0.2.1/24 dev wan && ip link set wan up && ip route add default via 192.0.2.2 || die "host side"
$W ip link set lo up && $W ip addr add 192.0.2.2/24 dev wan && $W ip link set wan up || die "world side"
# serve NAME ARGS: a netpeer in the world, up before serve returns.
serve() {
    name=$1; shift
    $W "$NETPEER" "$@" > "$D/$name.out" 2>&1 & servers="$servers $!"
    for i in $(seq 100); do grep -q ready "$D/$name.out" 2>/dev/null && return; sleep 0.02; done
    die "netpeer $name did not start: $(cat "$D/$name.out")"
}
S="$SPAWNER --root $D"
# What runs leave: veths, leases, published ports (map elements). A container's veth goes with
# its network namespace, which the kernel tears down in the background: given a moment.
veths() { ip -o link show type veth | grep -vc ' wan@'; }
gone() {
    for i in $(seq 100); do [ "$(veths)" = 0 ] && break; sleep 0.05; done
    echo "$(veths) veths, $(leased "$D/network" | wc -l) leases, $(ports) ports"
}
# leased NETWORK_DIR: the addresses leased there (a lease file stays, recording nothing, once its
# run has ended).
leased() { for f in "$1"/leases/*; do grep -qs '"address"' "$f" && basename "$f"; done; }
# The published ports: the elements of spawner's maps.
ports() { nft list table ip spawner 2>/dev/null | grep -v 'type ' | grep -o ' : ' | wc -l; }
# until_up URL: waits for a server in a container to answer.
until_up() {
    for i in $(seq 100); do wget -qO- "$1" 2>/dev/null && return; sleep 0.05; done
    echo "nothing answered $1"
}
"#;

/// Runs `WORLD` then `script` in a network (and mount) namespace of its own; its stdout.
fn in_network_namespace(dir: &StateDir, script: &str) -> String {
    for (program, args) in [("ip", &["-V"][..]), ("nft", &["--version"]), ("nsenter", &["--version"])] {
        assert_installed(program, args);
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "--mount", "--propagation", "private", "sh", "-c"]);
    cmd.arg(format!("{WORLD}\n{script}"));
    cmd.env("D", &dir.0)
        .env("SPAWNER", spawner_bin())
        .env("NETPEER", env!("CARGO_BIN_EXE_netpeer"))
        .env("PROBE", probe_bin())
        .env("IMG", image("busybox-docker.tar"))
        .env("PATH", format!("{}:{}", busybox_dir(dir).display(), std::env::var("PATH").unwrap_or_default()));
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = wait_or_kill(cmd.spawn().unwrap(), Duration::from_secs(240));
    let text = stdout(&out);
    assert!(out.status.success(), "the script failed:\n{text}\n{}", stderr(&out));
    text
}

/// A directory with `wget`, for the scripts' HTTP client on the host side: busybox from the test
/// image, run by spawner's own `--network host` container would be circular, so the host's
/// busybox is used when there is one, else a copy of the image's.
fn busybox_dir(dir: &StateDir) -> std::path::PathBuf {
    let bin = dir.0.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| extract_busybox(&bin));
    let wget = bin.join("wget");
    if !wget.exists() {
        std::os::unix::fs::symlink(busybox, &wget).unwrap();
    }
    bin
}

/// The static busybox of the test image, written to `dir`.
fn extract_busybox(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("busybox");
    let mut outer = tar::Archive::new(std::fs::File::open(image("busybox-docker.tar")).unwrap());
    for entry in outer.entries().unwrap() {
        let entry = entry.unwrap();
        if !entry.path().unwrap().to_string_lossy().ends_with(".tar") {
            continue;
        }
        let mut layer = tar::Archive::new(entry);
        for file in layer.entries().unwrap() {
            let mut file = file.unwrap();
            if file.path().unwrap().to_string_lossy().trim_start_matches("./") == "bin/busybox" {
                file.unpack(&out).unwrap();
                return out;
            }
        }
    }
    panic!("no bin/busybox in the test image");
}

fn line<'a>(output: &'a str, name: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name:?} line in:\n{output}"))
}

const NOTHING_LEFT: &str = "0 veths, 0 leases, 0 ports";

#[test]
fn bridge_reaches_the_outside_through_the_masquerade() {
    let dir = StateDir::new("net-bridge");
    let out = in_network_namespace(
        &dir,
        r#"
serve http http 192.0.2.2:80
echo "outside sees: $($S run $IMG busybox wget -qO- http://192.0.2.2/)"
echo "address: $($S run $IMG sh -c 'ip -o -4 addr show eth0' | awk '{print $4}')"
echo "route: $($S run $IMG busybox ip route show default)"
echo "hosts: $($S run --hostname web $IMG grep web /etc/hosts | awk '{print $1 ~ /^10\.89\./, $2}')"
echo "bridge: $(ip -o -4 addr show spawner0 | awk '{print $4}')"
echo "ipv6: $($S run $IMG cat /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/eth0/disable_ipv6 | tr '\n' ' ')"
echo "ipv6 on: $($S run --sysctl net.ipv6.conf.all.disable_ipv6=0 $IMG cat /proc/sys/net/ipv6/conf/all/disable_ipv6)"
$S run $IMG no-such-command 2>/dev/null; echo "not found: $?"
$S run -v /nonexistent:/x $IMG true 2>/dev/null; echo "bad volume: $?"
echo "left: $(gone)"
"#,
    );
    // The server sees the host's address on its side, not the container's.
    assert_eq!(line(&out, "outside sees"), "192.0.2.1", "{out}");
    assert!(line(&out, "address").starts_with("10.89."), "{out}");
    assert_eq!(line(&out, "route"), "default via 10.89.0.1 dev eth0 ", "{out}");
    assert_eq!(line(&out, "hosts"), "1 web", "/etc/hosts holds the container's own address: {out}");
    assert_eq!(line(&out, "bridge"), "10.89.0.1/16", "{out}");
    assert_eq!(line(&out, "ipv6"), "1 1 ", "IPv6 off in the container, as Docker has it: {out}");
    assert_eq!(line(&out, "ipv6 on"), "0", "--sysctl turns it on again: {out}");
    assert_eq!(line(&out, "not found"), "127", "{out}");
    assert_eq!(line(&out, "bad volume"), "125", "{out}");
    assert_eq!(line(&out, "left"), NOTHING_LEFT, "runs that failed left nothing either: {out}");
}

#[test]
fn published_ports_reach_the_container_from_outside_and_from_localhost() {
    let dir = StateDir::new("net-publish");
    let out = in_network_namespace(
        &dir,
        r#"
web='mkdir /w && echo hello from the container > /w/index.html && exec httpd -f -p 80 -h /w'
$S run -p 8080:80 -p 127.0.0.1:8081:80 $IMG sh -c "$web" > "$D/web.log" 2>&1 & web_pid=$!
echo "host address: $(until_up http://192.0.2.1:8080/)"
echo "from the world: $($W wget -qO- http://192.0.2.1:8080/)"
echo "localhost: $(wget -qO- http://127.0.0.1:8080/)"
echo "localhost only: $(wget -qO- http://127.0.0.1:8081/)"
echo "not from the world: $($W wget -qO- http://192.0.2.1:8081/ 2>/dev/null || echo refused)"
$S run -p 8080:80 $IMG true 2>"$D/taken.err"; echo "taken: $? $(cat "$D/taken.err")"
kill -TERM $web_pid; wait $web_pid; echo "stopped: $?"
echo "after: $(wget -qO- http://127.0.0.1:8080/ 2>/dev/null || echo refused)"
$S run -p 192.0.2.99:8082:80 $IMG true 2>"$D/foreign.err"; echo "foreign: $? $(cat "$D/foreign.err")"
two='mkdir /w && echo range > /w/index.html && httpd -p 80 -h /w && exec httpd -f -p 81 -h /w'
$S run -p 9000-9001:80-81 $IMG sh -c "$two" > "$D/range.log" 2>&1 & range_pid=$!
echo "range: $(until_up http://192.0.2.1:9000/) $(until_up http://192.0.2.1:9001/)"
kill -TERM $range_pid; wait $range_pid
echo "left: $(gone)"
"#,
    );
    assert_eq!(line(&out, "host address"), "hello from the container", "{out}");
    assert_eq!(line(&out, "from the world"), "hello from the container", "{out}");
    assert_eq!(line(&out, "localhost"), "hello from the container", "{out}");
    assert_eq!(line(&out, "localhost only"), "hello from the container", "{out}");
    assert_eq!(
        line(&out, "not from the world"),
        "refused",
        "127.0.0.1:8081 is published on loopback only: {out}"
    );
    let taken = line(&out, "taken");
    assert!(taken.starts_with("125 ") && taken.contains("8080/tcp: the port is already in use"), "{out}");
    assert_eq!(line(&out, "stopped"), "143", "{out}");
    assert_eq!(line(&out, "after"), "refused", "{out}");
    let foreign = line(&out, "foreign");
    assert!(foreign.starts_with("125 ") && foreign.contains("not an address of this host"), "{out}");
    assert_eq!(line(&out, "range"), "range range", "{out}");
    assert_eq!(line(&out, "left"), NOTHING_LEFT, "a failed setup is undone too: {out}");
}

#[test]
fn containers_on_the_bridge_reach_each_other_by_address_and_name() {
    let dir = StateDir::new("net-peers");
    let out = in_network_namespace(
        &dir,
        r#"
web='mkdir /w && echo api here > /w/index.html && ln -s /etc/hosts /w/hosts && exec httpd -f -p 80 -h /w'
$S run --name api $IMG sh -c "$web" > "$D/api.log" 2>&1 & api_pid=$!
for i in $(seq 100); do [ -n "$(leased "$D/network")" ] && break; sleep 0.05; done
api_ip=$(leased "$D/network")
echo "by address: $($S run $IMG sh -c "for i in \$(seq 50); do wget -qO- http://$api_ip/ && exit; sleep 0.1; done")"
echo "by name: $($S run $IMG busybox wget -qO- http://api/)"
# A container that starts later is added to api's /etc/hosts, and taken out when it exits.
$S run --name late $IMG sleep 30 > /dev/null 2>&1 & late_pid=$!
for i in $(seq 100); do [ "$(leased "$D/network" | wc -l)" = 2 ] && break; sleep 0.05; done
for i in $(seq 100); do wget -qO- "http://$api_ip/hosts" 2>/dev/null | grep -q late && break; sleep 0.05; done
echo "api knows late: $(wget -qO- "http://$api_ip/hosts" | grep -c 'late$')"
kill -TERM $late_pid; wait $late_pid
echo "api forgot late: $(wget -qO- "http://$api_ip/hosts" | grep -c 'late$')"
kill -TERM $api_pid; wait $api_pid
echo "left: $(gone)"
"#,
    );
    assert_eq!(line(&out, "by address"), "api here", "{out}");
    assert_eq!(line(&out, "by name"), "api here", "{out}");
    assert_eq!(line(&out, "api knows late"), "1", "{out}");
    assert_eq!(line(&out, "api forgot late"), "0", "{out}");
    assert_eq!(line(&out, "left"), NOTHING_LEFT, "{out}");
}

#[test]
fn dns_settings_reach_the_containers_resolver() {
    let dir = StateDir::new("net-dns");
    let out = in_network_namespace(
        &dir,
        r#"
serve dns dns 192.0.2.2:53 203.0.113.7
echo "answer: $($S run --dns 192.0.2.2 $IMG busybox nslookup example.test | grep -A1 'Name:' | sed -n 's/^Address: *//p')"
echo "search: $($S run --dns 192.0.2.2 --dns-search corp.example --dns-option ndots:2 $IMG cat /etc/resolv.conf | tr '\n' ' ')"
echo "added: $($S run --add-host db.local:192.0.2.50 $IMG grep db.local /etc/hosts)"
# A host on systemd-resolved's stub: the container gets the upstream servers instead.
printf 'nameserver 127.0.0.53\noptions edns0\n' > "$D/stub.conf"
mount --bind "$D/stub.conf" /etc/resolv.conf
mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/resolve
printf 'nameserver 192.0.2.2\n' > /run/systemd/resolve/resolv.conf
echo "upstream: $($S run $IMG cat /etc/resolv.conf | tr '\n' ' ')"
echo "upstream answer: $($S run $IMG busybox nslookup example.test | grep -A1 'Name:' | sed -n 's/^Address: *//p')"
printf 'nameserver 127.0.0.1\n' > "$D/stub.conf"
echo "loopback only: $($S run $IMG cat /etc/resolv.conf | tr '\n' ' ')"
echo "left: $(gone)"
"#,
    );
    assert_eq!(line(&out, "answer"), "203.0.113.7", "{out}");
    assert_eq!(line(&out, "search"), "search corp.example nameserver 192.0.2.2 options ndots:2 ", "{out}");
    assert_eq!(line(&out, "added"), "192.0.2.50\tdb.local", "{out}");
    assert_eq!(line(&out, "upstream"), "nameserver 192.0.2.2 ", "{out}");
    assert_eq!(line(&out, "upstream answer"), "203.0.113.7", "{out}");
    assert_eq!(line(&out, "loopback only"), "nameserver 8.8.8.8 nameserver 8.8.4.4 ", "{out}");
    assert_eq!(line(&out, "left"), NOTHING_LEFT, "{out}");
}

#[test]
fn none_and_host_networks() {
    let dir = StateDir::new("net-modes");
    let out = in_network_namespace(
        &dir,
        r#"
serve http http 192.0.2.2:80
echo "none: $($S run --network none $IMG ls /sys/class/net | tr '\n' ' ')"
echo "none outbound: $($S run --network none $IMG busybox wget -qO- http://192.0.2.2/ 2>/dev/null || echo unreachable)"
echo "host: $($S run --network host $IMG ls /sys/class/net | grep -c wan)"
echo "host outbound: $($S run --net host $IMG busybox wget -qO- http://192.0.2.2/)"
$S run --network none -p 80:80 $IMG true 2>"$D/err"; echo "publish on none: $? $(cat "$D/err")"
$S run --network nope $IMG true 2>"$D/err"; echo "unknown: $? $(cat "$D/err")"
echo "bridge made: $(ip link show spawner0 >/dev/null 2>&1 && echo yes || echo no)"
# Without nft the bridge cannot get its table: refused, and the half-made bridge is removed.
env PATH=/nonexistent $SPAWNER --root $D run $IMG true 2>"$D/err"; echo "no nft: $? $(cat "$D/err")"
echo "bridge after the failure: $(ip link show spawner0 >/dev/null 2>&1 && echo yes || echo no)"
echo "leases after the failure: $(leased "$D/network" | wc -l)"
"#,
    );
    assert_eq!(line(&out, "none"), "lo ", "{out}");
    let no_nft = line(&out, "no nft");
    assert!(no_nft.starts_with("125 spawner: nft: ") && no_nft.contains("--network none"), "{out}");
    assert_eq!(line(&out, "bridge after the failure"), "no", "{out}");
    assert_eq!(line(&out, "leases after the failure"), "0", "{out}");
    assert_eq!(line(&out, "none outbound"), "unreachable", "{out}");
    assert_eq!(line(&out, "host"), "1", "{out}");
    assert_eq!(line(&out, "host outbound"), "192.0.2.1", "{out}");
    assert!(line(&out, "publish on none").starts_with("125 spawner: -p:"), "{out}");
    assert!(line(&out, "unknown").starts_with("125 spawner: --network nope: no such network"), "{out}");
    assert_eq!(line(&out, "bridge made"), "no", "none and host make no bridge: {out}");
}

#[test]
fn a_killed_spawner_leaves_nothing_the_next_run_does_not_reclaim() {
    let dir = StateDir::new("net-kill");
    let out = in_network_namespace(
        &dir,
        r#"
$S run -p 8080:80 $IMG sleep 60 > /dev/null 2>&1 & victim=$!
for i in $(seq 100); do [ "$(ports)" = 1 ] && break; sleep 0.05; done
echo "running: $(gone)"
kill -KILL $victim; wait $victim 2>/dev/null
for i in $(seq 100); do [ "$(veths)" = 0 ] && break; sleep 0.05; done
echo "after the kill: $(gone)"
$S run -p 8080:80 $IMG true; echo "port again: $?"
echo "left: $(gone)"
"#,
    );
    assert_eq!(line(&out, "running"), "1 veths, 1 leases, 1 ports", "{out}");
    // The veth goes with the container's namespace; the lease and the port stay until a next run.
    assert_eq!(line(&out, "after the kill"), "0 veths, 1 leases, 1 ports", "{out}");
    assert_eq!(line(&out, "port again"), "0", "{out}");
    assert_eq!(line(&out, "left"), NOTHING_LEFT, "{out}");
}

#[test]
fn a_thousand_runs_leak_nothing() {
    let dir = StateDir::new("net-many");
    let out = in_network_namespace(
        &dir,
        r#"
for i in $(seq 1000); do
    $S run $IMG true || { echo "run $i failed"; break; }
done
echo "left: $(gone)"
echo "links: $(ip -o link | wc -l)"
echo "addresses on the bridge: $(ip -o addr show spawner0 | wc -l)"
"#,
    );
    // lo, wan, spawner0.
    assert_eq!(line(&out, "links"), "3", "{out}");
    assert_eq!(line(&out, "left"), NOTHING_LEFT, "{out}");
    assert_eq!(line(&out, "addresses on the bridge"), "2", "its IPv4 and link-local IPv6: {out}");
}

#[test]
fn pasta_gives_user_mode_networking_with_published_ports() {
    assert_installed("pasta", &["--version"]);
    let dir = StateDir::new("net-pasta");
    let out = in_network_namespace(
        &dir,
        r#"
# Not on the gateway's address: pasta maps that one to the host itself.
$W ip addr add 198.51.100.1/32 dev wan
serve http http 198.51.100.1:80
echo "outside sees: $($S run --network pasta $IMG busybox timeout 10 busybox wget -qO- http://198.51.100.1/)"
echo "interfaces: $($S run --network pasta $IMG ls /sys/class/net | tr '\n' ' ')"
web='mkdir /w && echo hello through pasta > /w/index.html && exec httpd -f -p 80 -h /w'
$S run --network pasta -p 8080:80 $IMG sh -c "$web" > "$D/web.log" 2>&1 & web_pid=$!
for i in $(seq 100); do $W wget -qO- http://192.0.2.1:8080/ > "$D/got" 2>/dev/null && break; sleep 0.05; done
echo "from the world: $(cat "$D/got")"
echo "pasta running: $(ps -eo args | grep -c '^pasta ')"
kill -TERM $web_pid; wait $web_pid
echo "pasta left: $(ps -eo args | grep -c '^pasta ')"
echo "mounts left: $(grep -c "$D" /proc/self/mountinfo)"
echo "bridge made: $(ip link show spawner0 >/dev/null 2>&1 && echo yes || echo no)"
"#,
    );
    assert_eq!(
        line(&out, "outside sees"),
        "192.0.2.1",
        "pasta's traffic leaves through the host's sockets: {out}"
    );
    assert_eq!(line(&out, "interfaces"), "lo wan ", "pasta's tap copies the host's interface name: {out}");
    assert_eq!(line(&out, "from the world"), "hello through pasta", "{out}");
    assert_eq!(line(&out, "pasta running"), "1", "{out}");
    assert_eq!(line(&out, "pasta left"), "0", "{out}");
    assert_eq!(line(&out, "mounts left"), "0", "{out}");
    assert_eq!(line(&out, "bridge made"), "no", "{out}");
}

/// Attack: a container sends a SYN for 127.0.0.1 straight to the bridge (a raw frame: CAP_NET_RAW
/// is in Docker's default set). The bridge has route_localnet (for -p via localhost), so without
/// the guard rule the host's loopback-only service answers.
#[test]
fn a_container_cannot_reach_the_hosts_loopback_services() {
    let dir = StateDir::new("net-loopback");
    let out = in_network_namespace(
        &dir,
        r#"
"$NETPEER" http 127.0.0.1:9000 > "$D/local.out" 2>&1 & servers="$servers $!"
for i in $(seq 100); do grep -q ready "$D/local.out" && break; sleep 0.02; done
attack='busybox ping -c1 -W1 10.89.0.1 >/dev/null; /probe syn-to-host-loopback $(busybox ip -4 -o addr show eth0 | busybox awk "{print \$4}" | busybox cut -d/ -f1) 9000'
echo "$($S run -v "$PROBE:/probe:ro" $IMG sh -c "$attack")"
# The same frame without the guard (the host's own rule removed): the attack itself works.
nft flush chain ip spawner guard
echo "unguarded $($S run -v "$PROBE:/probe:ro" $IMG sh -c "$attack")"
"#,
    );
    assert_eq!(line(&out, "syn-to-host-loopback"), "no answer", "{out}");
    assert_eq!(
        line(&out, "unguarded syn-to-host-loopback"),
        "ok",
        "the probe must be able to reach it: {out}"
    );
}

#[test]
fn a_container_joins_another_running_containers_network() {
    let dir = StateDir::new("net-join");
    let out = in_network_namespace(
        &dir,
        r#"
web='mkdir /w && echo shared loopback > /w/index.html && exec httpd -f -p 127.0.0.1:80 -h /w'
$S run --name web $IMG sh -c "$web" > "$D/web.log" 2>&1 & web_pid=$!
for i in $(seq 100); do grep -qs '"netns":"[0-9]' "$D/containers/web/state.json" && break; sleep 0.05; done
echo "joined: $($S run --network container:web $IMG sh -c 'for i in $(seq 50); do busybox wget -qO- http://127.0.0.1/ && exit; sleep 0.1; done')"
echo "same address: $($S run --network container:web $IMG busybox ip -4 -o addr show eth0 | awk '{print $4}')"
kill -TERM $web_pid; wait $web_pid
$S run --network container:web $IMG true 2>"$D/err"; echo "stopped: $? $(cat "$D/err")"
$S run --network container:nope $IMG true 2>"$D/err"; echo "unknown: $? $(cat "$D/err")"
echo "left: $(gone)"
"#,
    );
    assert_eq!(line(&out, "joined"), "shared loopback", "{out}");
    assert_eq!(line(&out, "same address"), "10.89.0.2/16", "{out}");
    let stopped = line(&out, "stopped");
    assert!(stopped.starts_with("125 ") && stopped.contains("no running container of that name"), "{out}");
    assert!(line(&out, "unknown").starts_with("125 "), "{out}");
    assert_eq!(line(&out, "left"), NOTHING_LEFT, "{out}");
}

#[test]
fn user_defined_networks_resolve_names_inside_and_isolate_from_each_other() {
    let dir = StateDir::new("net-user");
    let out = in_network_namespace(
        &dir,
        r#"
$S network create front > /dev/null; echo "create: $?"
$S network create --subnet 10.77.0.0/24 back > /dev/null
$S network create front 2>&1; echo "again: $?"
$S network create --subnet 10.89.5.0/24 clash 2>&1; echo "overlap: $?"
$S network create host 2>&1; echo "reserved: $?"
echo "ls: $($S network ls | awk 'NR > 1 { print $1 "=" $3 }' | tr '\n' ' ')"
$S run --network nosuch $IMG true 2>&1; echo "unknown: $?"
web='mkdir /w && echo web here > /w/index.html && exec httpd -f -p 80 -h /w'
$S run -d --name web --network front $IMG sh -c "$web" > /dev/null
web_ip=$(leased "$D/network/networks/front")
echo "address: $web_ip"
echo "by name: $($S run --network front $IMG sh -c 'for i in $(seq 50); do busybox wget -qO- http://web/ && exit; sleep 0.1; done')"
probe='busybox nc -w 1 '$web_ip' 80 </dev/null >/dev/null 2>&1 && echo open || echo closed'
echo "from back: $($S run --network back $IMG sh -c "$probe")"
echo "from the default bridge: $($S run $IMG sh -c "$probe")"
$S run -d --name pub --network back -p 8080:80 $IMG sh -c "$web" > /dev/null
echo "published port from front: $($S run --network front $IMG sh -c 'for i in $(seq 50); do busybox wget -qO- http://10.90.0.1:8080/ && exit; sleep 0.1; done')"
$S network rm front 2>&1; echo "rm in use: $?"
$S rm -f web pub > /dev/null
$S network rm front back > /dev/null; echo "rm: $?"
echo "bridges: $(ip -o link show type bridge | awk -F': ' '{print $2}' | tr '\n' ' ')"
echo "rules: $(nft list table ip spawner | grep -c 'spawner-')"
echo "ls after: $($S network ls -q | tr '\n' ' ')"
echo "left: $(gone)"
"#,
    );
    assert_eq!(line(&out, "create"), "0", "{out}");
    assert_eq!(line(&out, "again"), "125", "{out}");
    assert!(out.contains("network with name front already exists"), "{out}");
    assert_eq!(line(&out, "overlap"), "125", "{out}");
    assert!(out.contains("overlaps network bridge (10.89.0.0/16)"), "{out}");
    assert_eq!(line(&out, "reserved"), "125", "{out}");
    assert_eq!(
        line(&out, "ls"),
        "bridge=10.89.0.0/16 back=10.77.0.0/24 front=10.90.0.0/16 host= none= pasta= ",
        "{out}"
    );
    assert!(out.contains("--network nosuch: no such network"), "{out}");
    assert_eq!(line(&out, "unknown"), "125", "{out}");
    assert!(line(&out, "address").starts_with("10.90.0."), "{out}");
    assert_eq!(line(&out, "by name"), "web here", "{out}");
    assert_eq!(line(&out, "from back"), "closed", "another network cannot reach it: {out}");
    assert_eq!(line(&out, "from the default bridge"), "closed", "{out}");
    assert_eq!(line(&out, "published port from front"), "web here", "published ports are open to all: {out}");
    assert!(out.contains("network front has active endpoints (containers web)"), "{out}");
    assert_eq!(line(&out, "rm in use"), "125", "{out}");
    assert_eq!(line(&out, "rm"), "0", "{out}");
    assert_eq!(line(&out, "bridges"), "spawner0 ", "the networks' bridges are gone: {out}");
    assert_eq!(line(&out, "rules"), "0", "and their rules: {out}");
    assert_eq!(line(&out, "ls after"), "bridge host none pasta ", "{out}");
    assert_eq!(line(&out, "left"), NOTHING_LEFT, "{out}");
}

#[test]
fn runs_from_several_state_directories_that_make_the_bridge_at_once_all_start() {
    let dir = StateDir::new("net-race");
    let out = in_network_namespace(
        &dir,
        r#"
failed=0
for i in $(seq 40); do
    ip link del spawner0 2>/dev/null
    runs=""
    for k in 1 2 3 4; do $SPAWNER --root "$D/s$k" run --rm $IMG true 2>>"$D/err" & runs="$runs $!"; done
    for run in $runs; do wait $run || failed=$((failed + 1)); done
done
echo "failed runs: $failed $(head -1 "$D/err")"
"#,
    );
    // Each directory has its own lock; the bridge is the namespace's: one run makes it, the
    // others find it made (or made meanwhile: without that case, a few of these 160 runs fail).
    assert_eq!(line(&out, "failed runs"), "0 ", "{out}");
}
