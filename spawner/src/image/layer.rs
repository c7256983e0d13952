//! Layer blobs: which compression a blob uses (by its first bytes, never by its name or media
//! type: `download-frozen-image-v2.sh` writes gzip data named `layer.tar`), and a streaming
//! reader of the uncompressed tar.

use std::io::{self, BufRead, Read};

use flate2::bufread::MultiGzDecoder;

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
    Gzip(Box<MultiGzDecoder<R>>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> Decompressor<R> {
    pub fn new(reader: R, compression: Compression) -> io::Result<Decompressor<R>> {
        Ok(match compression {
            Compression::None => Decompressor::Plain(reader),
            // Multi-member: gzip files may be concatenations of members, all part of the stream.
            Compression::Gzip => Decompressor::Gzip(Box::new(MultiGzDecoder::new(reader))),
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

impl<R: BufRead> Read for Decompressor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decompressor::Plain(r) => r.read(buf),
            Decompressor::Gzip(d) => d.read(buf),
            Decompressor::Zstd(d) => d.read(buf),
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
}
