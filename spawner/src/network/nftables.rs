//! Published ports' map elements added and removed over nfnetlink, one batch per run start and one
//! per exit: the `nft` command takes about 7 ms a call (start-up and its cache), which would be most
//! of a container's start. The table itself is still made by `nft -f` (see `firewall`), once.
//!
//! A batch is BEGIN, one NEWSETELEM or DELSETELEM per element (each asking for an ACK), END; the
//! kernel applies it whole or not at all, and answers every message that asked.
//!
//! Element layout, as nft stores it: a key or value that concatenates fields gives each field a
//! 4-byte register (an inet_service in the first 2, network order); a lone inet_service is 2 bytes.

use super::firewall::{Element, Protocol, TABLE};
use super::NetworkError;
use netlink_sys::{Socket, SocketAddr};

const NETLINK_NETFILTER: isize = 12;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFPROTO_IPV4: u8 = 2;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

/// A netlink message being built: header, nfgenmsg, attributes.
struct Message {
    buf: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16, sequence: u32, family: u8, res_id: u16) -> Message {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&sequence.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        buf.extend_from_slice(&[family, 0]);
        buf.extend_from_slice(&res_id.to_be_bytes());
        Message { buf }
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, kind: u16, data: &[u8]) {
        self.buf.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    /// A nested attribute holding what `fill` adds.
    fn nest(&mut self, kind: u16, fill: impl FnOnce(&mut Message)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        fill(self);
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn finish(mut self, out: &mut Vec<u8>) {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&self.buf);
    }
}

/// A value of fields, each in a 4-byte register, or a lone port in 2 bytes.
fn key(element: &Element) -> Vec<u8> {
    match element.host_ip {
        Some(ip) => [&ip.octets()[..], &element.host_port.to_be_bytes(), &[0, 0]].concat(),
        None => element.host_port.to_be_bytes().to_vec(),
    }
}

fn value(element: &Element) -> Vec<u8> {
    [&element.container_ip.octets()[..], &element.container_port.to_be_bytes(), &[0, 0]].concat()
}

fn set_name(element: &Element) -> String {
    let proto = match element.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    format!("{proto}_{}\0", if element.host_ip.is_some() { "addr" } else { "any" })
}

fn cstr(s: &str) -> Vec<u8> {
    [s.as_bytes(), b"\0"].concat()
}

/// A socket for spawner's batches. Closing an nfnetlink socket right after a batch waits for the
/// kernel to release the batch's transaction (an RCU grace period, ~10 ms here), so a run keeps
/// its socket from the publish to the withdrawal, and pays that wait once, at its exit.
pub struct Session {
    socket: Socket,
    sequence: u32,
}

impl Session {
    pub fn open() -> Result<Session, NetworkError> {
        let fail = |e: std::io::Error| NetworkError(format!("nftables: netlink socket: {e}"));
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(fail)?;
        socket.bind_auto().map_err(fail)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(fail)?;
        Ok(Session { socket, sequence: 0 })
    }

    /// Adds `elements` to spawner's maps, all or none.
    pub fn add(&mut self, elements: &[Element]) -> Result<(), NetworkError> {
        self.batch(elements, true)
    }

    /// Removes `elements` from spawner's maps, all or none.
    pub fn delete(&mut self, elements: &[Element]) -> Result<(), NetworkError> {
        self.batch(elements, false)
    }

    fn batch(&mut self, elements: &[Element], add: bool) -> Result<(), NetworkError> {
        if elements.is_empty() {
            return Ok(());
        }
        let what = if add { "publish" } else { "withdraw" };
        let fail = |e: std::io::Error| NetworkError(format!("nftables: {what} ports: {e}"));
        let socket = &self.socket;
        let first = self.sequence + 1;
        self.sequence += elements.len() as u32 + 2;
        let mut buf = Vec::new();
        Message::new(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, first, 0, NFNL_SUBSYS_NFTABLES).finish(&mut buf);
        let (kind, flags) = match add {
            true => (NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL),
            false => (NFT_MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ACK),
        };
        for (i, element) in elements.iter().enumerate() {
            let mut m = Message::new(
                (NFNL_SUBSYS_NFTABLES << 8) | kind,
                flags,
                first + 1 + i as u32,
                NFPROTO_IPV4,
                0,
            );
            m.attr(NFTA_SET_ELEM_LIST_TABLE, &cstr(TABLE));
            m.attr(NFTA_SET_ELEM_LIST_SET, set_name(element).as_bytes());
            m.nest(NFTA_SET_ELEM_LIST_ELEMENTS, |m| {
                m.nest(NFTA_LIST_ELEM, |m| {
                    m.nest(NFTA_SET_ELEM_KEY, |m| m.attr(NFTA_DATA_VALUE, &key(element)));
                    if add {
                        m.nest(NFTA_SET_ELEM_DATA, |m| m.attr(NFTA_DATA_VALUE, &value(element)));
                    }
                });
            });
            m.finish(&mut buf);
        }
        let last = first + elements.len() as u32 + 1;
        Message::new(NFNL_MSG_BATCH_END, NLM_F_REQUEST, last, 0, NFNL_SUBSYS_NFTABLES).finish(&mut buf);
        socket.send(&buf, 0).map_err(fail)?;
        // Every element's message is answered (0 or an errno); a batch the kernel refuses whole is
        // answered on BEGIN.
        let mut waiting: Vec<u32> = (first + 1..last).collect();
        let mut error = None;
        while !waiting.is_empty() {
            let (data, _) = socket.recv_from_full().map_err(fail)?;
            let mut offset = 0;
            while let Some(header) = data.get(offset..offset + 16) {
                let len = u32::from_ne_bytes(header[..4].try_into().expect("4 bytes")) as usize;
                let kind = u16::from_ne_bytes([header[4], header[5]]);
                let sequence = u32::from_ne_bytes(header[8..12].try_into().expect("4 bytes"));
                let body = data.get(offset + 16..offset + len.max(16)).unwrap_or(&[]);
                offset += (len.max(16) + 3) & !3;
                if kind != NLMSG_ERROR || body.len() < 4 {
                    continue;
                }
                let code = i32::from_ne_bytes(body[..4].try_into().expect("4 bytes"));
                if code != 0 {
                    let index = sequence.checked_sub(first + 1).map(|i| i as usize);
                    error.get_or_insert((index, rustix::io::Errno::from_raw_os_error(-code)));
                }
                if sequence == first && code != 0 {
                    waiting.clear();
                }
                waiting.retain(|s| *s != sequence);
            }
        }
        match error {
            None => Ok(()),
            Some((index, errno)) => {
                let on = index
                    .and_then(|i| elements.get(i))
                    .map(|e| format!(" ({})", describe(e)))
                    .unwrap_or_default();
                Err(NetworkError(format!("nftables: {what} ports{on}: {errno}")))
            }
        }
    }
}

fn describe(e: &Element) -> String {
    let host = e.host_ip.map(|ip| format!("{ip}:")).unwrap_or_default();
    format!("{host}{}/{} -> {}:{}", e.host_port, e.protocol.name(), e.container_ip, e.container_port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn keys_and_values_use_nfts_register_layout() {
        let e = Element {
            protocol: Protocol::Udp,
            host_ip: Some(Ipv4Addr::new(127, 0, 0, 1)),
            host_port: 8080,
            container_ip: Ipv4Addr::new(10, 89, 0, 2),
            container_port: 53,
        };
        assert_eq!(key(&e), [127, 0, 0, 1, 0x1f, 0x90, 0, 0]);
        assert_eq!(value(&e), [10, 89, 0, 2, 0, 53, 0, 0]);
        assert_eq!(set_name(&e), "udp_addr\0");
        let any = Element { host_ip: None, protocol: Protocol::Tcp, ..e };
        assert_eq!(key(&any), [0x1f, 0x90]);
        assert_eq!(set_name(&any), "tcp_any\0");
    }
}
