//! A small D-Bus client: what the systemd cgroup driver needs to ask systemd for units
//! (`cgroup::systemd`), and nothing more. One blocking Unix socket, SASL `EXTERNAL`
//! authentication (the kernel vouches for our uid), method calls marshalled by [`wire`], replies
//! matched by serial, and signals kept aside until asked for.
//!
//! It talks either to the system bus (`dbus-daemon`: a `Hello` first, and every call names its
//! destination) or, as root, straight to systemd over its private socket (peer to peer: no
//! daemon, no `Hello`, no destination), which is there even on hosts without dbus.

pub mod wire;

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wire::{Arg, Call, Message};

/// Every failure talking D-Bus; `Display` is one line.
#[derive(Debug)]
pub enum Error {
    Connect {
        path: PathBuf,
        source: io::Error,
    },
    Io {
        op: &'static str,
        source: io::Error,
    },
    /// The server refused our credentials (its line).
    Auth(String),
    /// Bytes that are not the D-Bus protocol as this client reads it.
    Protocol(String),
    /// An error reply: its name and message.
    Remote {
        name: String,
        message: String,
    },
    /// Nothing came in time; what we waited for.
    Timeout(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect { path, source } => write!(f, "dbus: connect to {}: {source}", path.display()),
            Error::Io { op, source } => write!(f, "dbus: {op}: {source}"),
            Error::Auth(line) => write!(f, "dbus: authentication refused: {line:?}"),
            Error::Protocol(what) => write!(f, "dbus: protocol: {what}"),
            Error::Remote { name, message } => write!(f, "{message} ({name})"),
            Error::Timeout(what) => write!(f, "dbus: timed out waiting for {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect { source, .. } | Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// How long one reply may take (dbus's own default is 25 s).
const REPLY_TIMEOUT: Duration = Duration::from_secs(25);

/// An open, authenticated connection.
pub struct Connection {
    stream: UnixStream,
    serial: u32,
    /// On a message bus: calls carry a destination; peer to peer they do not.
    on_bus: bool,
    /// Signals that came in while waiting for a reply.
    signals: VecDeque<Message>,
}

/// The uid as SASL EXTERNAL takes it: its decimal digits, each as two hex digits.
pub fn external_auth_id(uid: u32) -> String {
    uid.to_string().bytes().map(|b| format!("{b:02x}")).collect()
}

impl Connection {
    /// Connects to the Unix socket at `path` and authenticates; `on_bus` when it is a message
    /// bus (then `Hello` is the first call, as the bus requires).
    pub fn open(path: &Path, on_bus: bool) -> Result<Connection> {
        let stream =
            UnixStream::connect(path).map_err(|source| Error::Connect { path: path.to_owned(), source })?;
        let io = |op| move |source| Error::Io { op, source };
        stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(io("set a read timeout"))?;
        stream.set_write_timeout(Some(REPLY_TIMEOUT)).map_err(io("set a write timeout"))?;
        let mut connection = Connection { stream, serial: 0, on_bus, signals: VecDeque::new() };
        connection.authenticate(rustix::process::geteuid().as_raw())?;
        if on_bus {
            connection.call(
                Call {
                    destination: Some("org.freedesktop.DBus"),
                    path: "/org/freedesktop/DBus",
                    interface: "org.freedesktop.DBus",
                    member: "Hello",
                },
                &[],
            )?;
        }
        Ok(connection)
    }

    /// Whether this is a message bus connection (not peer to peer).
    pub fn on_bus(&self) -> bool {
        self.on_bus
    }

    /// The NUL byte, `AUTH EXTERNAL`, `BEGIN`, and the server's `OK <guid>`.
    ///
    /// BEGIN goes with AUTH, as sd-bus's own clients send it, and the first message only once OK
    /// is read. systemd's private socket (sd-bus as the server) needs that order: a message that
    /// arrives in the same read as BEGIN stays in its buffer unprocessed until more bytes come,
    /// which they never do while we wait for its reply.
    fn authenticate(&mut self, uid: u32) -> Result<()> {
        let hello = format!("\0AUTH EXTERNAL {}\r\nBEGIN\r\n", external_auth_id(uid));
        self.stream.write_all(hello.as_bytes()).map_err(|source| Error::Io { op: "send AUTH", source })?;
        let line = self.read_line()?;
        if !line.starts_with("OK ") {
            return Err(Error::Auth(line));
        }
        Ok(())
    }

    /// One line of the authentication exchange, a byte at a time: the server sends nothing more
    /// until BEGIN, so nothing of the binary protocol is read by mistake.
    fn read_line(&mut self) -> Result<String> {
        let mut line = Vec::new();
        let mut byte = [0u8];
        while !line.ends_with(b"\r\n") {
            if line.len() > 512 {
                return Err(Error::Protocol("an authentication line over 512 bytes".into()));
            }
            match self.stream.read(&mut byte) {
                Ok(0) => return Err(Error::Protocol("the server closed during authentication".into())),
                Ok(_) => line.push(byte[0]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_error(e, "the authentication reply")),
            }
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Calls a method and returns its reply; an error reply is [`Error::Remote`].
    pub fn call(&mut self, mut call: Call, args: &[Arg]) -> Result<Message> {
        if !self.on_bus {
            call.destination = None;
        }
        self.serial = self.serial.wrapping_add(1).max(1);
        let serial = self.serial;
        let bytes = wire::method_call(serial, &call, args);
        log::debug!("dbus: call {}.{} (serial {serial}, {} bytes)", call.interface, call.member, bytes.len());
        self.stream.write_all(&bytes).map_err(|source| Error::Io { op: "send a method call", source })?;
        loop {
            let message = self.read_message(&format!("the reply to {}", call.member))?;
            match message.kind {
                wire::METHOD_RETURN if message.reply_serial == Some(serial) => return Ok(message),
                wire::ERROR if message.reply_serial == Some(serial) => {
                    return Err(Error::Remote {
                        name: message.error_name.clone().unwrap_or_default(),
                        message: message.first_string().unwrap_or_default(),
                    })
                }
                wire::SIGNAL => self.signals.push_back(message),
                _ => {}
            }
        }
    }

    /// The next signal, one that came in earlier first; [`Error::Timeout`] after `deadline`.
    pub fn next_signal(&mut self, deadline: Instant) -> Result<Message> {
        if let Some(signal) = self.signals.pop_front() {
            return Ok(signal);
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout("a signal".into()));
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|source| Error::Io { op: "set a read timeout", source })?;
            let message = self.read_message("a signal");
            let _ = self.stream.set_read_timeout(Some(REPLY_TIMEOUT));
            let message = message?;
            if message.kind == wire::SIGNAL {
                return Ok(message);
            }
        }
    }

    /// One whole message: the fixed header says how long it is.
    fn read_message(&mut self, what: &str) -> Result<Message> {
        let mut fixed = [0u8; wire::FIXED_HEADER];
        self.stream.read_exact(&mut fixed).map_err(|e| read_error(e, what))?;
        let length = wire::message_length(&fixed)?;
        let mut bytes = vec![0u8; length];
        bytes[..wire::FIXED_HEADER].copy_from_slice(&fixed);
        self.stream.read_exact(&mut bytes[wire::FIXED_HEADER..]).map_err(|e| read_error(e, what))?;
        let message = Message::parse(&bytes)?;
        log::debug!(
            "dbus: got type {} serial {} reply to {:?} {:?} {:?}",
            message.kind,
            message.serial,
            message.reply_serial,
            message.member.as_deref().or(message.error_name.as_deref()),
            message.signature
        );
        Ok(message)
    }
}

fn read_error(e: io::Error, what: &str) -> Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout(what.to_owned()),
        io::ErrorKind::UnexpectedEof => Error::Protocol(format!("the connection closed before {what}")),
        _ => Error::Io { op: "read", source: e },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn auth_id_is_the_decimal_uid_in_hex() {
        assert_eq!(external_auth_id(0), "30");
        assert_eq!(external_auth_id(1000), "31303030");
    }

    /// A peer that plays systemd's private socket: checks the authentication, answers one call
    /// with a signal first and then the reply, and then sends one more signal.
    #[test]
    fn call_and_signals_against_a_fake_peer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private");
        let listener = UnixListener::bind(&path).unwrap();
        let uid = rustix::process::geteuid().as_raw();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let expected = format!("\0AUTH EXTERNAL {}\r\n", external_auth_id(uid));
            let mut got = vec![0u8; expected.len()];
            s.read_exact(&mut got).unwrap();
            assert_eq!(got, expected.as_bytes());
            s.write_all(b"OK 0123456789abcdef0123456789abcdef\r\n").unwrap();
            let mut begin = [0u8; 7];
            s.read_exact(&mut begin).unwrap();
            assert_eq!(&begin, b"BEGIN\r\n");
            let mut fixed = [0u8; wire::FIXED_HEADER];
            s.read_exact(&mut fixed).unwrap();
            let mut call = vec![0u8; wire::message_length(&fixed).unwrap()];
            call[..wire::FIXED_HEADER].copy_from_slice(&fixed);
            s.read_exact(&mut call[wire::FIXED_HEADER..]).unwrap();
            let call = Message::parse(&call).unwrap();
            assert_eq!(call.member.as_deref(), Some("StopUnit"));
            s.write_all(&fake::signal("JobRemoved", 1)).unwrap();
            s.write_all(&fake::reply(call.serial, "/org/freedesktop/systemd1/job/1")).unwrap();
            s.write_all(&fake::signal("JobRemoved", 2)).unwrap();
        });
        let mut c = Connection::open(&path, false).unwrap();
        let reply = c
            .call(
                Call {
                    destination: Some("org.freedesktop.systemd1"),
                    path: "/org/freedesktop/systemd1",
                    interface: "org.freedesktop.systemd1.Manager",
                    member: "StopUnit",
                },
                &[Arg::Str("x.scope"), Arg::Str("replace")],
            )
            .unwrap();
        assert_eq!(reply.first_string().as_deref(), Some("/org/freedesktop/systemd1/job/1"));
        let deadline = Instant::now() + Duration::from_secs(5);
        let first = c.next_signal(deadline).unwrap();
        assert_eq!(first.body().u32().unwrap(), 1, "the signal that came before the reply, kept");
        assert_eq!(c.next_signal(deadline).unwrap().body().u32().unwrap(), 2);
        peer.join().unwrap();
        let err = c.next_signal(Instant::now() + Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, Error::Timeout(_) | Error::Protocol(_)), "{err}");
    }

    /// Messages a peer sends, built with the client's own writer (whose layout the wire tests
    /// check byte for byte).
    pub(crate) mod fake {
        use super::super::wire::{Writer, METHOD_RETURN, SIGNAL};

        /// A message with `fields`, then the body's signature field (flags 1: no reply expected).
        fn message(kind: u8, fields: impl FnOnce(&mut Writer), signature: &str, body: Writer) -> Vec<u8> {
            let fields = |w: &mut Writer| {
                fields(w);
                w.align(8);
                w.byte(8);
                w.signature("g");
                w.signature(signature);
            };
            super::super::wire::message(kind, 1, 1000, fields, &body)
        }

        pub fn reply(reply_serial: u32, path: &str) -> Vec<u8> {
            let mut body = Writer::default();
            body.string(path);
            let fields = |w: &mut Writer| {
                w.align(8);
                w.byte(5);
                w.signature("u");
                w.u32(reply_serial);
            };
            message(METHOD_RETURN, fields, "o", body)
        }

        /// systemd's `JobRemoved(u id, o job, s unit, s result)`.
        pub fn signal(member: &str, id: u32) -> Vec<u8> {
            let mut body = Writer::default();
            body.u32(id);
            body.string(&format!("/org/freedesktop/systemd1/job/{id}"));
            body.string("x.scope");
            body.string("done");
            let fields = |w: &mut Writer| {
                for (code, value) in [(2, "org.freedesktop.systemd1.Manager"), (3, member)] {
                    w.align(8);
                    w.byte(code);
                    w.signature("s");
                    w.string(value);
                }
            };
            message(SIGNAL, fields, "uoss", body)
        }
    }
}
