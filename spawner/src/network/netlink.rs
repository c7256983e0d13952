//! The few rtnetlink requests a bridged container needs: make the bridge, a veth pair with one end
//! in the container's namespace, addresses, links up, the default route. One socket per network
//! namespace (a netlink socket acts in the namespace it was made in). A container's end is found by
//! the veth's own request, then set up, addressed and routed in one datagram: two round trips.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};

const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;

/// A failed request: what was asked, and the kernel's answer.
#[derive(Debug)]
pub struct NetlinkError {
    pub what: String,
    pub errno: rustix::io::Errno,
}

impl std::fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "netlink: {}: {}", self.what, self.errno)
    }
}

impl std::error::Error for NetlinkError {}

type Result<T> = std::result::Result<T, NetlinkError>;

/// A route netlink socket in the calling thread's network namespace.
pub struct Netlink {
    socket: Socket,
    sequence: u32,
    /// Where replies are read: an acknowledgement is 36 bytes, a new link's echo about 1.5 KiB.
    buffer: Vec<u8>,
}

const IFLA_LINK: u16 = 5;
const NLM_F_ECHO: u16 = 8;

fn io_error(what: &str, e: std::io::Error) -> NetlinkError {
    NetlinkError {
        what: what.to_string(),
        errno: rustix::io::Errno::from_raw_os_error(e.raw_os_error().unwrap_or(libc_eio())),
    }
}

fn libc_eio() -> i32 {
    rustix::io::Errno::IO.raw_os_error()
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_ne_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

/// `IFLA_LINK` of an RTM_NEWLINK message's body (struct ifinfomsg, 16 bytes; then attributes, each
/// length, type and value, 4-byte aligned): for a veth, its peer's index (in the peer's namespace).
fn link_of(body: &[u8]) -> Option<u32> {
    let mut link = None;
    let mut at = 16;
    while let Some(header) = body.get(at..at + 4) {
        let len = u16::from_ne_bytes([header[0], header[1]]) as usize;
        let kind = u16::from_ne_bytes([header[2], header[3]]) & 0x3fff;
        if len < 4 {
            break;
        }
        if kind == IFLA_LINK && len >= 8 && body.len() >= at + 8 {
            link = Some(u32_at(body, at + 4));
        }
        at += (len + 3) & !3;
    }
    link
}

impl Netlink {
    pub fn open() -> Result<Netlink> {
        // Neither bound nor connected: the kernel binds it at its first send, and what it sends
        // with no address goes to the kernel.
        let socket = Socket::new(NETLINK_ROUTE).map_err(|e| io_error("socket(NETLINK_ROUTE)", e))?;
        Ok(Netlink { socket, sequence: 0, buffer: vec![0; 32 * 1024] })
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(&mut self, message: RouteNetlinkMessage, flags: u16, what: &str) -> Result<Option<u32>> {
        let mut replies = self.requests(vec![(message, flags, what.to_string())])?;
        Ok(replies.pop().unwrap_or_default())
    }

    /// Sends `batch` in one datagram (the kernel handles its messages in order, each as if sent
    /// alone) and waits for every acknowledgement; the first refusal is the error. Per request,
    /// the peer of the link it made, when the kernel echoed it (see [`Netlink::add_veth`]).
    fn requests(&mut self, batch: Vec<(RouteNetlinkMessage, u16, String)>) -> Result<Vec<Option<u32>>> {
        let first = self.sequence + 1;
        let mut whats = Vec::new();
        let mut datagram = Vec::new();
        for (message, flags, what) in batch {
            self.sequence += 1;
            let mut header = NetlinkHeader::default();
            header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
            header.sequence_number = self.sequence;
            let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
            packet.finalize();
            let at = datagram.len();
            datagram.resize(at + packet.buffer_len(), 0);
            packet.serialize(&mut datagram[at..]);
            whats.push(what);
        }
        let send_error = |e| io_error(&whats[0], e);
        self.socket.send(&datagram, 0).map_err(send_error)?;
        // Replies are read by hand (the header, an error's code, a new veth's peer): the
        // crate's parsers for every message kind would add more to the binary than this module.
        let mut replies = vec![None; whats.len()];
        let mut acknowledged = 0;
        let mut refused = None;
        while acknowledged < whats.len() {
            let len = self.socket.recv(&mut &mut self.buffer[..], 0).map_err(|e| io_error(&whats[0], e))?;
            let data = &self.buffer[..len.min(self.buffer.len())];
            let mut offset = 0;
            while let Some(header) = data.get(offset..offset + 16) {
                let len = u32_at(header, 0) as usize;
                let kind = u16::from_ne_bytes([header[4], header[5]]);
                let sequence = u32_at(header, 8);
                let Some(body) = data.get(offset + 16..offset + len.max(16)) else { break };
                offset += (len.max(16) + 3) & !3;
                let Some(i) = sequence.checked_sub(first).map(|i| i as usize).filter(|i| *i < whats.len())
                else {
                    continue;
                };
                match kind {
                    NLMSG_ERROR if body.len() >= 4 => {
                        acknowledged += 1;
                        let code = i32::from_ne_bytes(body[..4].try_into().expect("4 bytes"));
                        if code != 0 && refused.is_none() {
                            refused = Some(NetlinkError {
                                what: whats[i].clone(),
                                errno: rustix::io::Errno::from_raw_os_error(-code),
                            });
                        }
                    }
                    RTM_NEWLINK if body.len() >= 16 => replies[i] = link_of(body),
                    _ => {}
                }
            }
        }
        match refused {
            Some(e) => Err(e),
            None => Ok(replies),
        }
    }

    /// The index of the link called `name`, if there is one, as `if_nametoindex` finds it: the
    /// kernel looks the name up without the lock every network change takes (which a namespace
    /// being torn down holds), and answers with no more than the index.
    pub fn index_of(&self, name: &str) -> Result<Option<u32>> {
        match rustix::net::netdevice::name_to_index(&self.socket, name) {
            Ok(index) => Ok(Some(index)),
            Err(rustix::io::Errno::NODEV) => Ok(None),
            Err(errno) => Err(NetlinkError { what: format!("find link {name}"), errno }),
        }
    }

    /// Makes the bridge `name`; its index.
    pub fn add_bridge(&mut self, name: &str) -> Result<u32> {
        let mut message = LinkMessage::default();
        message.attributes.push(LinkAttribute::IfName(name.into()));
        message.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
        let what = format!("add bridge {name}");
        self.request(RouteNetlinkMessage::NewLink(message), NLM_F_CREATE | NLM_F_EXCL, &what)?;
        self.index_of(name)?.ok_or(NetlinkError { what, errno: rustix::io::Errno::NODEV })
    }

    /// Makes a veth pair: `name` here, up and enslaved to the bridge `master`; `peer` in the
    /// network namespace `netns`, down. The peer's index there when the kernel says it (Linux 6.1+
    /// echoes the new link, whose `IFLA_LINK` is its peer's).
    pub fn add_veth(&mut self, name: &str, master: u32, peer: &str, netns: impl AsFd) -> Result<Option<u32>> {
        // One queue each way, as a veth uses by default; said, so that the kernel makes only one
        // (it makes one per CPU, then waits for an RCU grace period to drop the rest).
        let queues = [LinkAttribute::NumTxQueues(1), LinkAttribute::NumRxQueues(1)];
        // The peer is set up later: at its creation it has no peer yet to be up with (ENOTCONN).
        let mut peer_message = LinkMessage::default();
        peer_message.attributes.push(LinkAttribute::IfName(peer.into()));
        peer_message.attributes.push(LinkAttribute::NetNsFd(netns.as_fd().as_raw_fd()));
        peer_message.attributes.extend(queues.clone());
        let mut message = LinkMessage::default();
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        message.attributes.push(LinkAttribute::IfName(name.into()));
        message.attributes.extend(queues);
        message.attributes.push(LinkAttribute::Controller(master));
        message.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_message))),
        ]));
        let what = format!("add veth {name} (peer {peer})");
        let flags = NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO;
        let reply = self.request(RouteNetlinkMessage::NewLink(message), flags, &what)?;
        Ok(reply)
    }

    /// Removes the link `index` (a veth's peer goes with it).
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(message), 0, &format!("delete link {index}"))?;
        Ok(())
    }

    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let (message, flags, what) = up_request(index);
        self.request(message, flags, &what)?;
        Ok(())
    }

    /// Gives link `index` the address `address/prefix` (EEXIST when it has it).
    pub fn add_address(&mut self, index: u32, address: Ipv4Addr, prefix: u8) -> Result<()> {
        let (message, flags, what) = address_request(index, address, prefix);
        self.request(message, flags, &what)?;
        Ok(())
    }

    /// Sets link `index` up with the address `address/prefix`, and the default route via
    /// `gateway` (one datagram).
    pub fn set_up_with_default_route(
        &mut self,
        index: u32,
        address: Ipv4Addr,
        prefix: u8,
        gateway: Ipv4Addr,
    ) -> Result<()> {
        self.requests(vec![
            up_request(index),
            address_request(index, address, prefix),
            default_route_request(gateway),
        ])?;
        Ok(())
    }
}

fn up_request(index: u32) -> (RouteNetlinkMessage, u16, String) {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message.header.flags = LinkFlags::Up;
    message.header.change_mask = LinkFlags::Up;
    (RouteNetlinkMessage::SetLink(message), 0, format!("set link {index} up"))
}

fn address_request(index: u32, address: Ipv4Addr, prefix: u8) -> (RouteNetlinkMessage, u16, String) {
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.prefix_len = prefix;
    message.header.index = index;
    message.attributes.push(AddressAttribute::Local(address.into()));
    message.attributes.push(AddressAttribute::Address(address.into()));
    let what = format!("add address {address}/{prefix} to link {index}");
    (RouteNetlinkMessage::NewAddress(message), NLM_F_CREATE | NLM_F_EXCL, what)
}

fn default_route_request(gateway: Ipv4Addr) -> (RouteNetlinkMessage, u16, String) {
    let mut message = RouteMessage::default();
    message.header = RouteHeader {
        address_family: AddressFamily::Inet,
        table: RouteHeader::RT_TABLE_MAIN,
        protocol: RouteProtocol::Boot,
        scope: RouteScope::Universe,
        kind: RouteType::Unicast,
        ..message.header
    };
    message.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
    let what = format!("add default route via {gateway}");
    (RouteNetlinkMessage::NewRoute(message), NLM_F_CREATE | NLM_F_EXCL, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_links_echo_gives_its_peer() {
        // ifinfomsg of link 7, then IFLA_IFNAME "veth0" (padded) and IFLA_LINK 2.
        let mut body = vec![0u8; 16];
        body[4..8].copy_from_slice(&7u32.to_ne_bytes());
        body.extend_from_slice(&10u16.to_ne_bytes());
        body.extend_from_slice(&3u16.to_ne_bytes());
        body.extend_from_slice(b"veth0\0\0\0");
        body.extend_from_slice(&8u16.to_ne_bytes());
        body.extend_from_slice(&IFLA_LINK.to_ne_bytes());
        body.extend_from_slice(&2u32.to_ne_bytes());
        assert_eq!(link_of(&body), Some(2));
        assert_eq!(link_of(&body[..28]), None);
    }
}
