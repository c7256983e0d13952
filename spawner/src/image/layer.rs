//! Layer blobs: which compression a blob uses (by its first bytes, never by its name or media
//! type: `download-frozen-image-v2.sh` writes gzip data named `layer.tar`), and a streaming
//! reader of the uncompressed tar.

use std::io::{self, BufRead, Read};

use flate2::{Decompress, FlushDecompress, Status};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar stream.
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const BZIP2_MAGIC: &[u8] = b"BZh";
/// Offset of the `ustar` magic in a tar header.
const USTAR_OFFSET: usize = 257;

impl Compression {
    /// Decides from a blob's first bytes. `Err` names a compression that is recognised but not
    /// supported (xz, bzip2).
    pub fn from_magic(head: &[u8]) -> Result<Compression, &'static str> {
        if head.starts_with(GZIP_MAGIC) {
            return Ok(Compression::Gzip);
        }
        if head.starts_with(ZSTD_MAGIC) {
            return Ok(Compression::Zstd);
        }
        // Checked before the weaker magics below: a tar whose first member is named `BZh…` is
        // still a tar.
        if head.get(USTAR_OFFSET..USTAR_OFFSET + 5) == Some(b"ustar") {
            return Ok(Compression::None);
        }
        if head.starts_with(XZ_MAGIC) {
            return Err("xz");
        }
        if head.starts_with(BZIP2_MAGIC) {
            return Err("bzip2");
        }
        // Old v7 tars have no magic, and an empty layer may be zero bytes long.
        Ok(Compression::None)
    }

    /// Peeks at the start of `reader` (consuming nothing) and decides.
    pub fn sniff<R: BufRead>(reader: &mut R) -> io::Result<Result<Compression, &'static str>> {
        Ok(Compression::from_magic(reader.fill_buf()?))
    }
}

/// The uncompressed tar stream of a layer blob. Memory use is the decoder's window, whatever the
/// layer's size.
pub enum Decompressor<R: BufRead> {
    Plain(R),
    /// Boxed: the inflate state is large and would bloat every variant.
    Gzip(Box<Gunzip<R>>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> Decompressor<R> {
    pub fn new(reader: R, compression: Compression) -> io::Result<Decompressor<R>> {
        Ok(match compression {
            Compression::None => Decompressor::Plain(reader),
            // Multi-member: gzip files may be concatenations of members, all part of the stream.
            Compression::Gzip => Decompressor::Gzip(Box::new(Gunzip::new(reader))),
            // The zstd reader continues across concatenated frames by default.
            Compression::Zstd => Decompressor::Zstd(zstd::stream::read::Decoder::with_buffer(reader)?),
        })
    }

    pub fn compression(&self) -> Compression {
        match self {
            Decompressor::Plain(_) => Compression::None,
            Decompressor::Gzip(_) => Compression::Gzip,
            Decompressor::Zstd(_) => Compression::Zstd,
        }
    }

    /// The compressed reader underneath, e.g. to finish hashing the blob. Bytes the decoder had
    /// buffered but not used are lost, which is fine for a reader that hashes as it reads.
    pub fn into_inner(self) -> R {
        match self {
            Decompressor::Plain(r) => r,
            Decompressor::Gzip(d) => d.into_inner(),
            Decompressor::Zstd(d) => d.finish(),
        }
    }
}

impl<R: Read> Decompressor<io::BufReader<R>> {
    /// Buffers `blob` (`capacity` bytes) and wraps it in the decoder its first bytes call for.
    /// The inner `Err` names a compression that is recognised but not supported (xz, bzip2).
    pub fn sniffed(blob: R, capacity: usize) -> io::Result<Result<Self, &'static str>> {
        let mut blob = io::BufReader::with_capacity(capacity, blob);
        match Compression::sniff(&mut blob)? {
            Ok(compression) => Decompressor::new(blob, compression).map(Ok),
            Err(format) => Ok(Err(format)),
        }
    }
}

impl<R: BufRead> Read for Decompressor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decompressor::Plain(r) => r.read(buf),
            Decompressor::Gzip(d) => d.read(buf),
            Decompressor::Zstd(d) => d.read(buf),
        }
    }
}

/// gzip members, one after another until the input ends, inflated as raw deflate.
///
/// The trailer's CRC-32 is not computed: a layer's stream is checked by sha256 anyway (the
/// diff_id always, the blob's digest when it has one), and the CRC took a tenth of the CPU time
/// of unpacking a gzip layer. The trailer's length is checked, and anything after a member that
/// is not another member is an error, as `gzip -d` and Go's reader have it.
pub struct Gunzip<R: BufRead> {
    inner: R,
    inflate: Decompress,
    phase: Phase,
    /// Bytes this member has produced (its trailer's ISIZE is this modulo 2^32).
    produced: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A member's header is next (the first one is always there: the magic chose gzip).
    Header {
        first: bool,
    },
    Body,
    Trailer,
}

const FTEXT_RESERVED: u8 = 0xe0;
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("gzip: {what}"))
}

impl<R: BufRead> Gunzip<R> {
    pub fn new(inner: R) -> Gunzip<R> {
        Gunzip { inner, inflate: Decompress::new(false), phase: Phase::Header { first: true }, produced: 0 }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads a member's header; false at the clean end of the input (never before the first).
    fn header(&mut self, first: bool) -> io::Result<bool> {
        if !first && self.inner.fill_buf()?.is_empty() {
            return Ok(false);
        }
        let mut fixed = [0u8; 10];
        self.inner.read_exact(&mut fixed).map_err(|_| invalid("truncated header"))?;
        if fixed[..2] != *GZIP_MAGIC {
            return Err(invalid("data after the last member is not another member"));
        }
        if fixed[2] != 8 {
            return Err(invalid("compression method is not deflate"));
        }
        let flags = fixed[3];
        if flags & FTEXT_RESERVED != 0 {
            return Err(invalid("reserved header flags set"));
        }
        if flags & FEXTRA != 0 {
            let mut len = [0u8; 2];
            self.inner.read_exact(&mut len)?;
            let len = u16::from_le_bytes(len) as u64;
            let skipped = io::copy(&mut (&mut self.inner).take(len), &mut io::sink())?;
            if skipped != len {
                return Err(invalid("truncated extra field"));
            }
        }
        for flag in [FNAME, FCOMMENT] {
            if flags & flag != 0 {
                // Zero-terminated; its bytes are not needed.
                let mut skipped = Vec::new();
                self.inner.read_until(0, &mut skipped)?;
                if skipped.last() != Some(&0) {
                    return Err(invalid("truncated header"));
                }
            }
        }
        if flags & FHCRC != 0 {
            self.inner.read_exact(&mut [0u8; 2])?;
        }
        Ok(true)
    }
}

impl<R: BufRead> Read for Gunzip<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match self.phase {
                Phase::Header { first } => {
                    if !self.header(first)? {
                        return Ok(0);
                    }
                    self.inflate.reset(false);
                    self.produced = 0;
                    self.phase = Phase::Body;
                }
                Phase::Body => {
                    let input = self.inner.fill_buf()?;
                    let (in_before, out_before) = (self.inflate.total_in(), self.inflate.total_out());
                    let status = self
                        .inflate
                        .decompress(input, out, FlushDecompress::None)
                        .map_err(|e| invalid(&e.to_string()))?;
                    let used = (self.inflate.total_in() - in_before) as usize;
                    let made = (self.inflate.total_out() - out_before) as usize;
                    let ended_input = input.is_empty();
                    self.inner.consume(used);
                    self.produced += made as u64;
                    if status == Status::StreamEnd {
                        self.phase = Phase::Trailer;
                    } else if made == 0 && used == 0 {
                        return Err(match ended_input {
                            true => io::Error::new(io::ErrorKind::UnexpectedEof, "gzip: truncated data"),
                            false => invalid("the deflate stream makes no progress"),
                        });
                    }
                    if made > 0 {
                        return Ok(made);
                    }
                }
                Phase::Trailer => {
                    let mut trailer = [0u8; 8];
                    self.inner.read_exact(&mut trailer).map_err(|_| invalid("truncated trailer"))?;
                    let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
                    if size != self.produced as u32 {
                        return Err(invalid("length in the trailer does not match the data"));
                    }
                    self.phase = Phase::Header { first: false };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn detects_by_magic() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"x").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(Compression::from_magic(&gz), Ok(Compression::Gzip));
        let zst = zstd::encode_all(&b"x"[..], 1).unwrap();
        assert_eq!(Compression::from_magic(&zst), Ok(Compression::Zstd));
        assert_eq!(Compression::from_magic(b""), Ok(Compression::None));
        assert_eq!(Compression::from_magic(XZ_MAGIC), Err("xz"));
        let mut tar = vec![0u8; 512];
        tar[..3].copy_from_slice(b"BZh");
        tar[USTAR_OFFSET..USTAR_OFFSET + 5].copy_from_slice(b"ustar");
        assert_eq!(Compression::from_magic(&tar), Ok(Compression::None));
    }

    #[test]
    fn multi_member_gzip_reads_whole() {
        let mut data = Vec::new();
        for part in [&b"hello "[..], b"world"] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(part).unwrap();
            data.extend(gz.finish().unwrap());
        }
        let mut out = String::new();
        Decompressor::new(&data[..], Compression::Gzip).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello world");
    }

    fn gzip(data: &[u8], builder: flate2::GzBuilder) -> Vec<u8> {
        let mut gz = builder.write(Vec::new(), flate2::Compression::default());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    fn gunzip(data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        // A small buffer, so that headers and trailers straddle refills.
        Gunzip::new(io::BufReader::with_capacity(7, data)).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn gunzip_reads_optional_header_fields_and_many_members() {
        let text: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let mut data =
            gzip(&text, flate2::GzBuilder::new().filename("layer.tar").comment("c").extra(vec![1, 2, 3]));
        data.extend(gzip(b"", flate2::GzBuilder::new()));
        data.extend(gzip(b"tail", flate2::GzBuilder::new()));
        let mut expected = text.clone();
        expected.extend(b"tail");
        assert_eq!(gunzip(&data).unwrap(), expected);
    }

    #[test]
    fn gunzip_refuses_damage() {
        let good = gzip(b"hello hello hello", flate2::GzBuilder::new());
        let mut bad_size = good.clone();
        let n = bad_size.len();
        bad_size[n - 4] ^= 1;
        let mut garbage = good.clone();
        garbage.extend(b"junk after");
        for (what, data) in [
            ("truncated", &good[..good.len() - 6]),
            ("cut in the data", &good[..14]),
            ("trailer length", &bad_size[..]),
            ("garbage after", &garbage[..]),
        ] {
            assert!(gunzip(data).is_err(), "{what}");
        }
        // The CRC is left to the layer's sha256: a wrong one is not an error here.
        let mut bad_crc = good.clone();
        bad_crc[n - 8] ^= 1;
        assert_eq!(gunzip(&bad_crc).unwrap(), b"hello hello hello");
    }
}
