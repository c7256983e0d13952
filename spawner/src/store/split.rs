//! A layer's tar-split, as Docker and containers/storage keep one: everything in its tar stream
//! except the contents of its regular files (headers, extension records, padding, the end
//! blocks, verbatim), with each file's content replaced by its path in the unpacked tree. Recorded
//! while the layer is unpacked, so that the very same stream, with the same diff_id, can be made
//! again from the tree (`save`) without keeping the tar.
//!
//! ```text
//! tar-split.gz   gzip of records:  'R' len:u32le bytes          (stream bytes, verbatim)
//!                                  'F' len:u32le path size:u64le (size bytes of file `path`)
//! ```
//!
//! Made again, the stream is hashed and must match the layer's diff_id: a tree changed since
//! (or a path the layer wrote twice) is an error, never a different layer under the same digest.
//! Files are opened inside the tree without following any symlink.

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use flate2::{read::GzDecoder, write::GzEncoder, Compression};
use rustix::fs::{Mode, OFlags, ResolveFlags};

pub const FILE_NAME: &str = "tar-split.gz";

const RAW: u8 = b'R';
const FILE: u8 = b'F';

/// Records a stream as it is read: [`Recorder::raw`] for bytes kept verbatim, [`Recorder::content`]
/// for bytes of the file begun with [`Recorder::begin_file`].
pub struct Recorder {
    out: GzEncoder<Vec<u8>>,
    raw: Vec<u8>,
    file: Option<(Vec<u8>, u64)>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder { out: GzEncoder::new(Vec::new(), Compression::fast()), raw: Vec::new(), file: None }
    }
}

impl Recorder {
    /// Bytes of the stream read now: verbatim, or the current file's.
    pub fn read(&mut self, bytes: &[u8]) {
        match &mut self.file {
            Some((_, size)) => *size += bytes.len() as u64,
            None => {
                self.raw.extend_from_slice(bytes);
                if self.raw.len() >= 64 << 10 {
                    self.flush_raw();
                }
            }
        }
    }

    /// The bytes read from now until [`Recorder::end_file`] are the content of `path`.
    pub fn begin_file(&mut self, path: &[u8]) {
        self.flush_raw();
        self.file = Some((path.to_vec(), 0));
    }

    pub fn end_file(&mut self) {
        if let Some((path, size)) = self.file.take() {
            let mut record = vec![FILE];
            record.extend_from_slice(&(path.len() as u32).to_le_bytes());
            record.extend_from_slice(&path);
            record.extend_from_slice(&size.to_le_bytes());
            // Into a Vec: cannot fail.
            let _ = self.out.write_all(&record);
        }
    }

    fn flush_raw(&mut self) {
        if self.raw.is_empty() {
            return;
        }
        let _ = self.out.write_all(&[RAW]);
        let _ = self.out.write_all(&(self.raw.len() as u32).to_le_bytes());
        let _ = self.out.write_all(&self.raw);
        self.raw.clear();
    }

    /// The compressed records.
    pub fn finish(mut self) -> Vec<u8> {
        self.end_file();
        self.flush_raw();
        self.out.finish().unwrap_or_default()
    }
}

/// The stream made again from `split` (the file's bytes) and the unpacked tree at `root`.
pub struct Reassembled {
    records: GzDecoder<io::Cursor<Vec<u8>>>,
    root: OwnedFd,
    /// What is being copied: verbatim bytes left, or a file and its bytes left.
    current: Current,
}

enum Current {
    Idle,
    Raw(u32),
    File(std::fs::File, u64),
}

impl Reassembled {
    pub fn new(split: Vec<u8>, root: OwnedFd) -> Reassembled {
        Reassembled { records: GzDecoder::new(io::Cursor::new(split)), root, current: Current::Idle }
    }

    /// The layer kept at `home` (`diff/` and its tar-split), to be made again, with the length
    /// of its stream; None when it has no tar-split (unpacked before spawner kept them).
    pub fn open(home: &Path) -> io::Result<Option<(Reassembled, u64)>> {
        let split = match std::fs::read(home.join(FILE_NAME)) {
            Ok(split) => split,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let size = stream_size(&split)?;
        let diff = home.join("diff");
        let root =
            rustix::fs::open(&diff, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        Ok(Some((Reassembled::new(split, root), size)))
    }

    /// The next record, or false at the end.
    fn next_record(&mut self) -> io::Result<bool> {
        let mut tag = [0u8; 1];
        if self.records.read(&mut tag)? == 0 {
            return Ok(false);
        }
        let mut len = [0u8; 4];
        self.records.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len);
        self.current = match tag[0] {
            RAW => Current::Raw(len),
            FILE => {
                let mut path = vec![0u8; len as usize];
                self.records.read_exact(&mut path)?;
                let mut size = [0u8; 8];
                self.records.read_exact(&mut size)?;
                let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
                let path = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&path);
                let fd = crate::in_root::openat2(&self.root, path, flags, Mode::empty(), resolve)
                    .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
                Current::File(std::fs::File::from(fd), u64::from_le_bytes(size))
            }
            other => return Err(io::Error::other(format!("tar-split: unknown record {other:#x}"))),
        };
        Ok(true)
    }
}

/// The length of the stream `split` makes, from its records alone.
fn stream_size(split: &[u8]) -> io::Result<u64> {
    let mut records = GzDecoder::new(split);
    let mut total = 0u64;
    let mut tag = [0u8; 1];
    while records.read(&mut tag)? == 1 {
        let mut len = [0u8; 4];
        records.read_exact(&mut len)?;
        let len = u64::from(u32::from_le_bytes(len));
        match tag[0] {
            RAW => {
                io::copy(&mut (&mut records).take(len), &mut io::sink())?;
                total += len;
            }
            FILE => {
                io::copy(&mut (&mut records).take(len), &mut io::sink())?;
                let mut size = [0u8; 8];
                records.read_exact(&mut size)?;
                total += u64::from_le_bytes(size);
            }
            other => return Err(io::Error::other(format!("tar-split: unknown record {other:#x}"))),
        }
    }
    Ok(total)
}

impl Read for Reassembled {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match &mut self.current {
                Current::Idle => {
                    if !self.next_record()? {
                        return Ok(0);
                    }
                }
                Current::Raw(0) | Current::File(_, 0) => self.current = Current::Idle,
                Current::Raw(left) => {
                    let n = out.len().min(*left as usize);
                    self.records.read_exact(&mut out[..n])?;
                    *left -= n as u32;
                    return Ok(n);
                }
                Current::File(file, left) => {
                    let n = out.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let got = file.read(&mut out[..n])?;
                    if got == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "a file of the layer got shorter",
                        ));
                    }
                    *left -= got as u64;
                    return Ok(got);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_stream_is_made_again_from_the_tree() {
        let dir = std::env::temp_dir().join(format!("spawner-split-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/hostname"), b"box\n").unwrap();
        let mut r = Recorder::default();
        r.read(b"HEADER-1");
        r.begin_file(b"etc/hostname");
        r.read(b"box\n");
        r.end_file();
        r.read(b"PAD");
        r.read(b"END");
        let split = r.finish();
        let root = rustix::fs::open(&dir, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let mut again = Vec::new();
        Reassembled::new(split.clone(), root).read_to_end(&mut again).unwrap();
        assert_eq!(again, b"HEADER-1box\nPADEND");
        assert_eq!(stream_size(&split).unwrap(), again.len() as u64);
        // A symlink where the file was is never followed out of the tree.
        std::fs::remove_file(dir.join("etc/hostname")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.join("etc/hostname")).unwrap();
        let root = rustix::fs::open(&dir, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        assert!(Reassembled::new(split, root).read_to_end(&mut Vec::new()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
