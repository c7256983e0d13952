//! The D-Bus wire format, for the few types systemd's manager calls need: marshalling a method call
//! ([`method_call`]) and reading back a reply, an error or a signal ([`Message::parse`]).
//!
//! Every value is aligned to its own size, counted from the start of the message (the body starts
//! on an 8-byte boundary, so a body marshalled from offset 0 lines up the same): `y`/`g` 1, `b`/`u`/
//! `s`/`o`/array lengths 4, `t` and every struct 8. An array's length counts its elements' bytes
//! only, not the padding between the length and the first element.

use super::Error;

/// A value this client sends: what systemd's unit properties take.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    U64(u64),
    ArrayU32(Vec<u32>),
}

impl Value {
    /// The D-Bus signature, as written in a variant.
    pub fn signature(&self) -> &'static str {
        match self {
            Value::Str(_) => "s",
            Value::Bool(_) => "b",
            Value::U64(_) => "t",
            Value::ArrayU32(_) => "au",
        }
    }
}

/// A method call's argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'a> {
    Str(&'a str),
    Bool(bool),
    /// `a(sv)`: systemd's properties.
    Properties(&'a [(String, Value)]),
    /// `a(sa(sv))`: StartTransientUnit's auxiliary units (this client sends none).
    NoAuxUnits,
}

impl Arg<'_> {
    fn signature(&self) -> &'static str {
        match self {
            Arg::Str(_) => "s",
            Arg::Bool(_) => "b",
            Arg::Properties(_) => "a(sv)",
            Arg::NoAuxUnits => "a(sa(sv))",
        }
    }
}

/// Little-endian marshalling into a growing buffer.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn align(&mut self, to: usize) {
        while !self.buf.len().is_multiple_of(to) {
            self.buf.push(0);
        }
    }

    pub fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }

    pub fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.u32(u32::from(v));
    }

    /// `s` and `o`: a u32 length, the bytes, a NUL.
    pub fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// `g`: a one-byte length, the bytes, a NUL.
    pub fn signature(&mut self, s: &str) {
        self.byte(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// An array whose elements align to `element_align`: the length is patched in once `elements`
    /// has written them.
    pub fn array(&mut self, element_align: usize, elements: impl FnOnce(&mut Writer)) {
        self.u32(0);
        let length_at = self.buf.len() - 4;
        self.align(element_align);
        let start = self.buf.len();
        elements(self);
        let length = (self.buf.len() - start) as u32;
        self.buf[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
    }

    pub fn variant(&mut self, value: &Value) {
        self.signature(value.signature());
        match value {
            Value::Str(s) => self.string(s),
            Value::Bool(b) => self.bool(*b),
            Value::U64(v) => self.u64(*v),
            Value::ArrayU32(items) => self.array(4, |w| items.iter().for_each(|&i| w.u32(i))),
        }
    }

    /// `a(sv)`.
    pub fn properties(&mut self, properties: &[(String, Value)]) {
        self.array(8, |w| {
            for (name, value) in properties {
                w.align(8);
                w.string(name);
                w.variant(value);
            }
        });
    }

    fn arg(&mut self, arg: &Arg) {
        match arg {
            Arg::Str(s) => self.string(s),
            Arg::Bool(b) => self.bool(*b),
            Arg::Properties(p) => self.properties(p),
            Arg::NoAuxUnits => self.array(8, |_| {}),
        }
    }
}

/// Message types.
pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;

/// Header field codes.
const FIELD_PATH: u8 = 1;
const FIELD_INTERFACE: u8 = 2;
const FIELD_MEMBER: u8 = 3;
const FIELD_ERROR_NAME: u8 = 4;
const FIELD_REPLY_SERIAL: u8 = 5;
const FIELD_DESTINATION: u8 = 6;
const FIELD_SENDER: u8 = 7;
const FIELD_SIGNATURE: u8 = 8;

/// Where a method call goes.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The bus name; None on a peer-to-peer connection (systemd's private socket).
    pub destination: Option<&'a str>,
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
}

/// A whole method call message, header and body, ready to send.
pub fn method_call(serial: u32, call: &Call, args: &[Arg]) -> Vec<u8> {
    let mut body = Writer::default();
    for arg in args {
        body.arg(arg);
    }
    let signature: String = args.iter().map(Arg::signature).collect();
    let field = |w: &mut Writer, code: u8, sig: &str, value: &str| {
        w.align(8);
        w.byte(code);
        w.signature(sig);
        match sig {
            "g" => w.signature(value),
            _ => w.string(value),
        }
    };
    let fields = |w: &mut Writer| {
        field(w, FIELD_PATH, "o", call.path);
        field(w, FIELD_INTERFACE, "s", call.interface);
        field(w, FIELD_MEMBER, "s", call.member);
        if let Some(destination) = call.destination {
            field(w, FIELD_DESTINATION, "s", destination);
        }
        if !signature.is_empty() {
            field(w, FIELD_SIGNATURE, "g", &signature);
        }
    };
    message(METHOD_CALL, 0, serial, fields, &body)
}

/// A whole message in little-endian order: the fixed header (`kind`, `flags`, version 1, the
/// body's length, `serial`), the header fields `fields` writes, padding to 8, then `body`.
pub(crate) fn message(
    kind: u8,
    flags: u8,
    serial: u32,
    fields: impl FnOnce(&mut Writer),
    body: &Writer,
) -> Vec<u8> {
    let mut w = Writer::default();
    w.byte(b'l');
    w.byte(kind);
    w.byte(flags);
    w.byte(1);
    w.u32(body.buf.len() as u32);
    w.u32(serial);
    w.array(8, fields);
    w.align(8);
    w.buf.extend_from_slice(&body.buf);
    w.buf
}

/// Reads values from a message, in its byte order, aligned from its start.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], pos: usize, big_endian: bool) -> Reader<'a> {
        Reader { buf, pos, big_endian }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end =
            end.ok_or_else(|| Error::Protocol(format!("message ends within a value at byte {}", self.pos)))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn align(&mut self, to: usize) -> Result<(), Error> {
        let padding = (to - self.pos % to) % to;
        self.take(padding).map(|_| ())
    }

    pub fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, Error> {
        self.align(4)?;
        let bytes: [u8; 4] = self.take(4)?.try_into().expect("4 bytes");
        Ok(if self.big_endian { u32::from_be_bytes(bytes) } else { u32::from_le_bytes(bytes) })
    }

    fn text(&mut self, len: usize) -> Result<String, Error> {
        let bytes = self.take(len)?;
        if self.take(1)? != [0] {
            return Err(Error::Protocol("a string without its NUL".into()));
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::Protocol("a string that is not UTF-8".into()))
    }

    /// `s` or `o`.
    pub fn string(&mut self) -> Result<String, Error> {
        let len = self.u32()? as usize;
        self.text(len)
    }

    pub fn signature(&mut self) -> Result<String, Error> {
        let len = usize::from(self.byte()?);
        self.text(len)
    }
}

/// A message read back: a reply, an error or a signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: u8,
    pub serial: u32,
    pub reply_serial: Option<u32>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub signature: String,
    /// The body bytes, from an 8-aligned start.
    pub body: Vec<u8>,
    pub big_endian: bool,
}

/// The fixed part of a header: byte order, type, flags, version, body length, serial, and the
/// length of the header fields array.
pub const FIXED_HEADER: usize = 16;

/// The largest message the protocol allows (128 MiB); anything claiming more is refused.
const MAX_MESSAGE: usize = 128 << 20;

/// From the fixed header, the length of the whole message.
pub fn message_length(fixed: &[u8; FIXED_HEADER]) -> Result<usize, Error> {
    let big_endian = match fixed[0] {
        b'l' => false,
        b'B' => true,
        other => return Err(Error::Protocol(format!("byte order {other:#x} is neither 'l' nor 'B'"))),
    };
    let mut r = Reader::new(fixed, 4, big_endian);
    let body = r.u32()? as usize;
    let _serial = r.u32()?;
    let fields = r.u32()? as usize;
    let header = (FIXED_HEADER + fields).div_ceil(8) * 8;
    let total = header.saturating_add(body);
    if total > MAX_MESSAGE {
        return Err(Error::Protocol(format!("a message of {total} bytes")));
    }
    Ok(total)
}

impl Message {
    /// Parses one whole message (its length from [`message_length`]).
    pub fn parse(buf: &[u8]) -> Result<Message, Error> {
        let fixed: &[u8; FIXED_HEADER] = buf
            .get(..FIXED_HEADER)
            .and_then(|f| f.try_into().ok())
            .ok_or_else(|| Error::Protocol("a message shorter than its header".into()))?;
        if message_length(fixed)? != buf.len() {
            return Err(Error::Protocol("a message whose length does not match its header".into()));
        }
        let big_endian = buf[0] == b'B';
        let mut r = Reader::new(buf, 1, big_endian);
        let kind = r.byte()?;
        let _flags = r.byte()?;
        let version = r.byte()?;
        if version != 1 {
            return Err(Error::Protocol(format!("protocol version {version}")));
        }
        let body_len = r.u32()? as usize;
        let serial = r.u32()?;
        let fields_len = r.u32()? as usize;
        let fields_end = r.pos + fields_len;
        let mut message = Message {
            kind,
            serial,
            reply_serial: None,
            interface: None,
            member: None,
            error_name: None,
            signature: String::new(),
            body: Vec::new(),
            big_endian,
        };
        while r.pos < fields_end {
            r.align(8)?;
            let code = r.byte()?;
            let sig = r.signature()?;
            match sig.as_str() {
                "s" | "o" => {
                    let value = r.string()?;
                    match code {
                        FIELD_INTERFACE => message.interface = Some(value),
                        FIELD_MEMBER => message.member = Some(value),
                        FIELD_ERROR_NAME => message.error_name = Some(value),
                        FIELD_PATH | FIELD_DESTINATION | FIELD_SENDER => {}
                        _ => {}
                    }
                }
                "g" => {
                    let value = r.signature()?;
                    if code == FIELD_SIGNATURE {
                        message.signature = value;
                    }
                }
                "u" => {
                    let value = r.u32()?;
                    if code == FIELD_REPLY_SERIAL {
                        message.reply_serial = Some(value);
                    }
                }
                other => return Err(Error::Protocol(format!("header field {code} of type {other:?}"))),
            }
        }
        if r.pos != fields_end {
            return Err(Error::Protocol("header fields overrun their array".into()));
        }
        r.align(8)?;
        message.body = r.take(body_len)?.to_vec();
        Ok(message)
    }

    /// A reader over the body.
    pub fn body(&self) -> Reader<'_> {
        Reader::new(&self.body, 0, self.big_endian)
    }

    /// The first argument when it is a string (an error's message, Hello's name, a job's path).
    pub fn first_string(&self) -> Option<String> {
        matches!(self.signature.chars().next(), Some('s' | 'o')).then(|| self.body().string().ok()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_types_are_aligned_from_the_start() {
        let mut w = Writer::default();
        w.byte(7);
        w.u32(0x0102_0304);
        w.byte(1);
        w.u64(5);
        w.string("ab");
        w.signature("au");
        w.bool(true);
        assert_eq!(
            w.buf,
            [
                7, 0, 0, 0, 4, 3, 2, 1, // y, pad to 4, u
                1, 0, 0, 0, 0, 0, 0, 0, // y, pad to 8
                5, 0, 0, 0, 0, 0, 0, 0, // t
                2, 0, 0, 0, b'a', b'b', 0, // s
                2, b'a', b'u', 0, // g
                0, 1, 0, 0, 0, // pad to 4, b
            ]
        );
    }

    #[test]
    fn array_length_excludes_the_padding_before_its_first_element() {
        let mut w = Writer::default();
        w.array(8, |w| w.u64(9));
        // length 8 (not 12): the 4 bytes of padding after it are not counted.
        assert_eq!(w.buf, [8, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        let mut empty = Writer::default();
        empty.array(8, |_| {});
        // An empty array of structs still pads to its element alignment.
        assert_eq!(empty.buf, [0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn properties_marshal_as_structs_of_name_and_variant() {
        let mut w = Writer::default();
        w.properties(&[
            ("PIDs".into(), Value::ArrayU32(vec![42])),
            ("MemoryMax".into(), Value::U64(1 << 20)),
            ("Delegate".into(), Value::Bool(true)),
        ]);
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[0, 0, 0, 0, 0, 0, 0, 0][..],                  // length (patched below), pad to 8
            &[4, 0, 0, 0], b"PIDs\0",                        // s at 8
            &[2], b"au\0", &[0, 0, 0],                       // g at 17, pad to 24
            &[4, 0, 0, 0], &[42, 0, 0, 0],                   // au at 24: length 4, one u
            &[9, 0, 0, 0], b"MemoryMax\0",                   // struct at 32: s
            &[1], b"t\0", &[0, 0, 0, 0, 0, 0, 0],           // g at 46, pad to 56
            &[0, 0, 16, 0, 0, 0, 0, 0],                      // t at 56
            &[8, 0, 0, 0], b"Delegate\0",                    // struct at 64: s
            &[1], b"b\0",                                    // g at 77
            &[1, 0, 0, 0],                                   // b at 80
        ]
        .concat();
        let mut expected = expected;
        let length = (expected.len() - 8) as u32;
        expected[..4].copy_from_slice(&length.to_le_bytes());
        assert_eq!(w.buf, expected);
    }

    #[test]
    fn method_call_round_trips_through_the_parser() {
        let call = Call {
            destination: Some("org.freedesktop.systemd1"),
            path: "/org/freedesktop/systemd1",
            interface: "org.freedesktop.systemd1.Manager",
            member: "StopUnit",
        };
        let bytes = method_call(7, &call, &[Arg::Str("spawner-x.scope"), Arg::Str("replace")]);
        assert_eq!(&bytes[..4], &[b'l', METHOD_CALL, 0, 1]);
        assert_eq!(bytes.len() % 8, 0, "the header is padded to 8 and the body is two strings");
        let fixed: [u8; FIXED_HEADER] = bytes[..FIXED_HEADER].try_into().unwrap();
        let total = message_length(&fixed).unwrap();
        // The body (two strings: 4+15+1, pad, 4+7+1) follows the 8-aligned header.
        let body_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        assert_eq!(body_len, 20 + 12);
        assert_eq!(total, bytes.len());
        let parsed = Message::parse(&bytes[..total]).unwrap();
        assert_eq!(parsed.kind, METHOD_CALL);
        assert_eq!(parsed.serial, 7);
        assert_eq!(parsed.member.as_deref(), Some("StopUnit"));
        assert_eq!(parsed.interface.as_deref(), Some("org.freedesktop.systemd1.Manager"));
        assert_eq!(parsed.signature, "ss");
        let mut body = parsed.body();
        assert_eq!(body.string().unwrap(), "spawner-x.scope");
        assert_eq!(body.string().unwrap(), "replace");
    }

    #[test]
    fn start_transient_unit_signature() {
        let call = Call { destination: None, path: "/", interface: "i", member: "m" };
        let props = [("Slice".to_string(), Value::Str("system.slice".into()))];
        let bytes = method_call(
            1,
            &call,
            &[Arg::Str("a.scope"), Arg::Str("replace"), Arg::Properties(&props), Arg::NoAuxUnits],
        );
        let parsed = Message::parse(&bytes).unwrap();
        assert_eq!(parsed.signature, "ssa(sv)a(sa(sv))");
        // No destination on a peer-to-peer connection: path, interface, member, signature only.
        let mut body = parsed.body();
        assert_eq!(body.string().unwrap(), "a.scope");
        assert_eq!(body.string().unwrap(), "replace");
        let props_len = body.u32().unwrap();
        body.align(8).unwrap();
        assert_eq!(body.string().unwrap(), "Slice");
        assert_eq!(body.signature().unwrap(), "s");
        assert_eq!(body.string().unwrap(), "system.slice");
        // "Slice" (4+5+1), its signature (3), padding to 16 (3), "system.slice" (4+12+1).
        assert_eq!(props_len, 10 + 3 + 3 + 17);
        assert_eq!(body.u32().unwrap(), 0, "no auxiliary units");
    }

    /// A reply as dbus-daemon or systemd sends it, big-endian too.
    fn reply(big_endian: bool, reply_serial: u32, error: Option<&str>, body_string: &str) -> Vec<u8> {
        let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut fields = Vec::new();
        let field = |fields: &mut Vec<u8>, code: u8, sig: &[u8], value: &[u8]| {
            while !fields.len().is_multiple_of(8) {
                fields.push(0);
            }
            fields.push(code);
            fields.extend_from_slice(sig);
            fields.extend_from_slice(value);
        };
        field(&mut fields, FIELD_REPLY_SERIAL, b"\x01u\0", &u32b(reply_serial));
        if let Some(name) = error {
            let mut v = u32b(name.len() as u32).to_vec();
            v.extend_from_slice(name.as_bytes());
            v.push(0);
            field(&mut fields, FIELD_ERROR_NAME, b"\x01s\0", &v);
        }
        field(&mut fields, FIELD_SIGNATURE, b"\x01g\0", b"\x01s\0");
        let mut body = u32b(body_string.len() as u32).to_vec();
        body.extend_from_slice(body_string.as_bytes());
        body.push(0);
        let mut m = vec![
            if big_endian { b'B' } else { b'l' },
            if error.is_some() { ERROR } else { METHOD_RETURN },
            1,
            1,
        ];
        m.extend_from_slice(&u32b(body.len() as u32));
        m.extend_from_slice(&u32b(99));
        m.extend_from_slice(&u32b(fields.len() as u32));
        m.extend_from_slice(&fields);
        while !m.len().is_multiple_of(8) {
            m.push(0);
        }
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn replies_and_errors_in_either_byte_order() {
        for big_endian in [false, true] {
            let bytes = reply(big_endian, 3, None, ":1.42");
            let fixed: [u8; FIXED_HEADER] = bytes[..FIXED_HEADER].try_into().unwrap();
            assert_eq!(message_length(&fixed).unwrap(), bytes.len());
            let m = Message::parse(&bytes).unwrap();
            assert_eq!((m.kind, m.serial, m.reply_serial), (METHOD_RETURN, 99, Some(3)));
            assert_eq!(m.first_string().as_deref(), Some(":1.42"));
            let e = Message::parse(&reply(
                big_endian,
                4,
                Some("org.freedesktop.systemd1.NoSuchUnit"),
                "Unit x not loaded.",
            ))
            .unwrap();
            assert_eq!(e.kind, ERROR);
            assert_eq!(e.error_name.as_deref(), Some("org.freedesktop.systemd1.NoSuchUnit"));
            assert_eq!(e.first_string().as_deref(), Some("Unit x not loaded."));
        }
    }

    #[test]
    fn truncated_and_hostile_messages_are_errors() {
        let bytes = reply(false, 3, None, "x");
        assert!(Message::parse(&bytes[..bytes.len() - 1]).is_err());
        let mut wrong_order = bytes.clone();
        wrong_order[0] = b'x';
        assert!(Message::parse(&wrong_order).is_err());
        let mut huge = [0u8; FIXED_HEADER];
        huge[0] = b'l';
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(message_length(&huge).is_err());
        let mut r = Reader::new(&[5, 0, 0, 0, b'a'], 0, false);
        assert!(r.string().is_err(), "a string running past the end");
    }
}
