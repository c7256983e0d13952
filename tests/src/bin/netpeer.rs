//! The "internet" of the network tests: started in the outside namespace a test made, it answers
//! every HTTP request with the address the connection came from (so a test sees the masquerade),
//! and every DNS A query with one address.
//!
//! `netpeer http ADDR:PORT`, `netpeer dns ADDR:PORT IP`; both print `ready` once listening.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["http", addr] => http(addr),
        ["dns", addr, ip] => dns(addr, ip.parse().expect("an IPv4 address")),
        _ => {
            eprintln!("usage: netpeer http ADDR:PORT | netpeer dns ADDR:PORT IP");
            std::process::exit(2);
        }
    }
}

fn ready() {
    println!("ready");
    std::io::stdout().flush().unwrap();
}

fn http(addr: &str) {
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    ready();
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        let peer = stream.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
        let _ = write!(stream, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{peer}\n", peer.len() + 1);
    }
}

fn dns(addr: &str, answer: Ipv4Addr) {
    let socket = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    ready();
    let mut query = [0u8; 512];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut query) else { continue };
        let query = &query[..n];
        // The header, then one question: labels up to a zero byte, QTYPE, QCLASS.
        let Some(end) = query.iter().skip(12).position(|b| *b == 0).map(|p| 12 + p + 5) else { continue };
        if end > query.len() {
            continue;
        }
        let qtype = u16::from_be_bytes([query[end - 4], query[end - 3]]);
        let a = qtype == 1;
        let mut reply = Vec::with_capacity(end + 16);
        reply.extend_from_slice(&query[..2]);
        reply.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(a), 0, 0, 0, 0]);
        reply.extend_from_slice(&query[12..end]);
        if a {
            reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            reply.extend_from_slice(&answer.octets());
        }
        let _ = socket.send_to(&reply, from);
    }
}
