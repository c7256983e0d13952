//! The few rtnetlink requests a bridged container needs: make the bridge, a veth pair with one end
//! in the container's namespace, addresses, links up, the default route. One socket per network
//! namespace (a netlink socket acts in the namespace it was made in), each request acknowledged
//! before the next.

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
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
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
}

fn io_error(what: &str, e: std::io::Error) -> NetlinkError {
    NetlinkError {
        what: what.to_string(),
        errno: rustix::io::Errno::from_raw_os_error(e.raw_os_error().unwrap_or(libc_eio())),
    }
}

fn libc_eio() -> i32 {
    rustix::io::Errno::IO.raw_os_error()
}

impl Netlink {
    pub fn open() -> Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| io_error("socket(NETLINK_ROUTE)", e))?;
        socket.bind_auto().map_err(|e| io_error("bind", e))?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(|e| io_error("connect", e))?;
        Ok(Netlink { socket, sequence: 0 })
    }

    /// Sends `message` and waits for its acknowledgement; a link's index when the kernel replied
    /// with one (to a GetLink).
    fn request(&mut self, message: RouteNetlinkMessage, flags: u16, what: &str) -> Result<Option<u32>> {
        self.sequence += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(|e| io_error(what, e))?;
        // Replies are read by hand (the header, an error's code, a link's index): the crate's
        // parsers for every message kind would add more to the binary than all of this module.
        let mut reply = None;
        loop {
            let (data, _) = self.socket.recv_from_full().map_err(|e| io_error(what, e))?;
            let mut offset = 0;
            while let Some(header) = data.get(offset..offset + 16) {
                let u32_at =
                    |b: &[u8], i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().expect("4 bytes"));
                let len = u32_at(header, 0) as usize;
                let kind = u16::from_ne_bytes([header[4], header[5]]);
                let sequence = u32_at(header, 8);
                let Some(body) = data.get(offset + 16..offset + len.max(16)) else { break };
                offset += (len.max(16) + 3) & !3;
                if sequence != self.sequence {
                    continue;
                }
                match kind {
                    NLMSG_ERROR if body.len() >= 4 => {
                        let code = i32::from_ne_bytes(body[..4].try_into().expect("4 bytes"));
                        return match code {
                            0 => Ok(reply),
                            code => Err(NetlinkError {
                                what: what.to_string(),
                                errno: rustix::io::Errno::from_raw_os_error(-code),
                            }),
                        };
                    }
                    // struct ifinfomsg: family, pad, type, then the index.
                    RTM_NEWLINK if body.len() >= 8 => reply = Some(u32_at(body, 4)),
                    _ => {}
                }
            }
        }
    }

    /// The index of the link called `name`, if there is one.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        let mut message = LinkMessage::default();
        message.attributes.push(LinkAttribute::IfName(name.into()));
        match self.request(RouteNetlinkMessage::GetLink(message), 0, &format!("get link {name}")) {
            Ok(index) => Ok(index),
            Err(e) if e.errno == rustix::io::Errno::NODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes the bridge `name`; its index.
    pub fn add_bridge(&mut self, name: &str) -> Result<u32> {
        let mut message = LinkMessage::default();
        message.attributes.push(LinkAttribute::IfName(name.into()));
        message.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
        let what = format!("add bridge {name}");
        self.request(RouteNetlinkMessage::NewLink(message), NLM_F_CREATE | NLM_F_EXCL, &what)?;
        self.link_index(name)?.ok_or(NetlinkError { what, errno: rustix::io::Errno::NODEV })
    }

    /// Makes a veth pair: `name` here, up and enslaved to the bridge `master`; `peer` in the
    /// network namespace `netns` (down, to be set up there).
    pub fn add_veth(&mut self, name: &str, master: u32, peer: &str, netns: impl AsFd) -> Result<()> {
        let mut peer_message = LinkMessage::default();
        peer_message.attributes.push(LinkAttribute::IfName(peer.into()));
        peer_message.attributes.push(LinkAttribute::NetNsFd(netns.as_fd().as_raw_fd()));
        let mut message = LinkMessage::default();
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        message.attributes.push(LinkAttribute::IfName(name.into()));
        message.attributes.push(LinkAttribute::Controller(master));
        message.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_message))),
        ]));
        let what = format!("add veth {name} (peer {peer})");
        self.request(RouteNetlinkMessage::NewLink(message), NLM_F_CREATE | NLM_F_EXCL, &what)?;
        Ok(())
    }

    /// Removes the link `index` (a veth's peer goes with it).
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(message), 0, &format!("delete link {index}"))?;
        Ok(())
    }

    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(message), 0, &format!("set link {index} up"))?;
        Ok(())
    }

    /// Gives link `index` the address `address/prefix` (EEXIST when it has it).
    pub fn add_address(&mut self, index: u32, address: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.prefix_len = prefix;
        message.header.index = index;
        message.attributes.push(AddressAttribute::Local(address.into()));
        message.attributes.push(AddressAttribute::Address(address.into()));
        let what = format!("add address {address}/{prefix} to link {index}");
        self.request(RouteNetlinkMessage::NewAddress(message), NLM_F_CREATE | NLM_F_EXCL, &what)?;
        Ok(())
    }

    /// The default route, via `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<()> {
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
        self.request(RouteNetlinkMessage::NewRoute(message), NLM_F_CREATE | NLM_F_EXCL, &what)?;
        Ok(())
    }
}
