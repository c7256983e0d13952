//! A digest of an unpacked layer tree, so that `spawner images --verify` can tell whether a layer
//! still holds what was unpacked into it.
//!
//! The tar stream's digest (the diff_id) cannot be recomputed from the files: a tar is one of many
//! encodings of a tree. So the tree itself is hashed right after unpacking and the digest kept in
//! `layer.json`; verifying walks the tree again the same way.
//!
//! The digest is a Merkle tree over directories: each entry's record is the sha256 of its name,
//! type, permission bits, owner, mtime (not for directories), xattrs and (by type) content, link target or device
//! number; a directory's record also covers the sha256 of its children's records in name order.
//! Hard links are not told apart from copies; atime, ctime and inode numbers are left out (they
//! change without the content changing). Nothing is followed: symlinks are read, not entered.
//!
//! Two formats differ only in how a regular file's content enters its record. The first hashes
//! the bytes inline, so the digest after an unpack reads every file back. The second (recorded
//! since December 2026) takes only the size: the contents are checked instead by making the tar
//! stream again from the layer's tar-split (`split.rs`) and comparing its sha256 with the
//! diff_id, so the walk after an unpack only stats, and verifying still reads every byte. A layer
//! that replaced one of its own entries while unpacking cannot be made again from its tar-split
//! (it names the old file's path for the old file's bytes): it gets the first format.
//!
//! The walk holds one directory fd at a time (a directory is listed, closed, and its
//! subdirectories opened again by path from the root), so a deep tree cannot run it out of fds.

use std::ffi::{CString, OsStr};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    fgetxattr, flistxattr, lgetxattr, llistxattr, openat, openat2, statat, AtFlags, Dir, FileType, Mode,
    OFlags, ResolveFlags, Stat,
};
use sha2::{Digest as _, Sha256};

use super::error::{io_err, StoreError};
use crate::image::{Algorithm, Digest};

/// Largest xattr name list and value the kernel allows (XATTR_LIST_MAX, XATTR_SIZE_MAX).
const XATTR_MAX: usize = 64 * 1024;
const READ_BUFFER: usize = 256 * 1024;

/// How a regular file's content enters its record (see the module's comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The size, then the bytes.
    Inline,
    /// The size; the bytes are the tar-split's to check.
    SizeOnly,
}

impl Format {
    /// Its number in `layer.json`.
    pub(crate) fn number(self) -> u32 {
        match self {
            Format::Inline => 1,
            Format::SizeOnly => 2,
        }
    }

    pub(crate) fn from_number(number: u32) -> Option<Format> {
        [Format::Inline, Format::SizeOnly].into_iter().find(|f| f.number() == number)
    }
}

/// The digest of the tree under `root` (a directory), as recorded in `layer.json`, in `format`.
pub(crate) fn tree_digest(root: &Path, format: Format) -> Result<Digest, StoreError> {
    let root_fd = noatime(|atime| {
        rustix::fs::open(root, DIR | OFlags::NOFOLLOW | OFlags::CLOEXEC | atime, Mode::empty())
    })
    .map_err(io_err("open", root))?;
    let mut walker = Walker {
        root,
        root_fd: &root_fd,
        format,
        buf: vec![0; READ_BUFFER],
        names: vec![0; XATTR_MAX],
        value: vec![0; XATTR_MAX],
    };
    let stat = rustix::fs::fstat(&root_fd).map_err(io_err("fstat", root))?;
    let mut record = Sha256::new();
    meta(&mut record, b".", &stat);
    walker.xattrs(&mut record, XattrSource::Fd(root_fd.as_fd()), b"")?;
    record.update(walker.walk()?);
    Ok(Digest::from_raw(Algorithm::Sha256, &record.finalize()))
}

struct Walker<'a> {
    root: &'a Path,
    root_fd: &'a OwnedFd,
    format: Format,
    buf: Vec<u8>,
    names: Vec<u8>,
    value: Vec<u8>,
}

enum XattrSource<'a> {
    Fd(BorrowedFd<'a>),
    /// A `/proc/self/fd/N/name` path: for entries that cannot be opened for reading (symlinks,
    /// devices, fifos), without building a host path that could exceed PATH_MAX.
    Path(CString),
}

const DIR: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY);

/// Opens with O_NOATIME (reading the store for a digest should not dirty its inodes), or without it
/// where the caller may not (EPERM: it needs ownership or CAP_FOWNER).
fn noatime(open: impl Fn(OFlags) -> rustix::io::Result<OwnedFd>) -> rustix::io::Result<OwnedFd> {
    match open(OFlags::NOATIME) {
        Err(rustix::io::Errno::PERM) => open(OFlags::empty()),
        other => other,
    }
}

/// Length-prefixed, so no two different sequences of fields hash alike.
fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// A directory being hashed: its children's records in name order, those of subdirectories
/// waiting for the subdirectory's own digest.
struct Frame {
    rel: Vec<u8>,
    names: Vec<Vec<u8>>,
    records: Vec<[u8; 32]>,
    /// Index in `records`, and the record so far (the subdirectory's metadata).
    subdirs: Vec<(usize, Sha256)>,
    next_subdir: usize,
}

impl Frame {
    fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update((self.records.len() as u64).to_le_bytes());
        for record in &self.records {
            hasher.update(record);
        }
        hasher.finalize().into()
    }
}

impl Walker<'_> {
    /// The digest of the root's children. Depth-first without recursion: a layer may nest
    /// directories two thousand deep (a PATH_MAX of one-letter names).
    fn walk(&mut self) -> Result<[u8; 32], StoreError> {
        let mut stack = vec![self.list(Vec::new(), None)?];
        loop {
            let top = stack.last_mut().expect("the stack holds the root until the end");
            if top.next_subdir < top.subdirs.len() {
                let (index, record) = &mut top.subdirs[top.next_subdir];
                let child = join(&top.rel, &top.names[*index]);
                let frame = self.list(child, Some(record))?;
                stack.push(frame);
                continue;
            }
            let done = stack.pop().expect("not empty").digest();
            let Some(parent) = stack.last_mut() else { return Ok(done) };
            let (index, record) = &mut parent.subdirs[parent.next_subdir];
            let mut record = std::mem::take(record);
            record.update(done);
            parent.records[*index] = record.finalize().into();
            parent.next_subdir += 1;
        }
    }

    /// The host path of `rel`, for error messages only.
    fn host(&self, rel: &[u8]) -> PathBuf {
        self.root.join(OsStr::from_bytes(rel))
    }

    /// Lists the directory at `rel` (relative to the root; empty for the root itself) and hashes
    /// every child but the contents of subdirectories. `own_record`: the directory's record in its
    /// parent, which gets the directory's xattrs (read here, through the fd this opens anyway).
    fn list(&mut self, rel: Vec<u8>, own_record: Option<&mut Sha256>) -> Result<Frame, StoreError> {
        let path = if rel.is_empty() { b".".as_slice() } else { &rel };
        let fd = noatime(|atime| {
            openat2(
                self.root_fd,
                path,
                DIR | OFlags::NOFOLLOW | OFlags::CLOEXEC | atime,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            )
        })
        .map_err(|e| io_err("open", self.host(&rel))(e))?;
        if let Some(record) = own_record {
            self.xattrs(record, XattrSource::Fd(fd.as_fd()), &rel)?;
        }
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut dir = Dir::read_from(&fd).map_err(|e| io_err("readdir", self.host(&rel))(e))?;
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| io_err("readdir", self.host(&rel))(e))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        drop(dir);
        names.sort_unstable();

        // Records of the children in name order; a subdirectory's is finished once it is walked.
        let mut records: Vec<[u8; 32]> = Vec::with_capacity(names.len());
        let mut subdirs: Vec<(usize, Sha256)> = Vec::new();
        for name in &names {
            let child_rel = join(&rel, name);
            let cname = CString::new(name.clone()).expect("directory entries have no NUL");
            let stat = statat(&fd, &cname, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| io_err("stat", self.host(&child_rel))(e))?;
            let mut record = Sha256::new();
            meta(&mut record, name, &stat);
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => {
                    subdirs.push((records.len(), record));
                    records.push([0; 32]);
                    continue;
                }
                FileType::RegularFile => {
                    let file = noatime(|atime| {
                        openat(
                            &fd,
                            &cname,
                            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | atime,
                            Mode::empty(),
                        )
                    })
                    .map_err(|e| io_err("open", self.host(&child_rel))(e))?;
                    self.xattrs(&mut record, XattrSource::Fd(file.as_fd()), &child_rel)?;
                    let size = stat.st_size as u64;
                    record.update(size.to_le_bytes());
                    if self.format == Format::Inline {
                        self.content(&mut record, file, size, &child_rel)?;
                    }
                }
                kind => {
                    let mut proc_path = format!("/proc/self/fd/{}/", fd.as_raw_fd()).into_bytes();
                    proc_path.extend_from_slice(name);
                    let proc_path = CString::new(proc_path).expect("directory entries have no NUL");
                    self.xattrs(&mut record, XattrSource::Path(proc_path), &child_rel)?;
                    match kind {
                        FileType::Symlink => {
                            let target = rustix::fs::readlinkat(&fd, &cname, Vec::new())
                                .map_err(|e| io_err("readlink", self.host(&child_rel))(e))?;
                            field(&mut record, target.as_bytes());
                        }
                        FileType::CharacterDevice | FileType::BlockDevice => {
                            record.update(stat.st_rdev.to_le_bytes());
                        }
                        _ => {}
                    }
                }
            }
            records.push(record.finalize().into());
        }
        Ok(Frame { rel, names, records, subdirs, next_subdir: 0 })
    }

    /// The xattrs, sorted by name.
    fn xattrs(&mut self, record: &mut Sha256, xattrs: XattrSource<'_>, rel: &[u8]) -> Result<(), StoreError> {
        let len = match &xattrs {
            XattrSource::Fd(fd) => flistxattr(fd, &mut self.names[..]),
            XattrSource::Path(path) => llistxattr(path.as_c_str(), &mut self.names[..]),
        };
        let len = match len {
            Ok(len) => len,
            // File systems without xattrs (and, for some, symlinks): nothing to record.
            Err(rustix::io::Errno::NOTSUP) => 0,
            Err(e) => return Err(io_err("listxattr", self.host(rel))(e)),
        };
        let mut list: Vec<&[u8]> = self.names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()).collect();
        list.sort_unstable();
        record.update((list.len() as u64).to_le_bytes());
        for xattr in list {
            let cname = CString::new(xattr).expect("split at NUL");
            let value_len = match &xattrs {
                XattrSource::Fd(fd) => fgetxattr(fd, cname.as_c_str(), &mut self.value[..]),
                XattrSource::Path(path) => lgetxattr(path.as_c_str(), cname.as_c_str(), &mut self.value[..]),
            }
            .map_err(|e| io_err("getxattr", self.host(rel))(e))?;
            field(record, xattr);
            field(record, &self.value[..value_len]);
        }
        Ok(())
    }

    /// The bytes into `record`; the file must hold exactly `size` of them.
    fn content(
        &mut self,
        record: &mut Sha256,
        file: OwnedFd,
        size: u64,
        rel: &[u8],
    ) -> Result<(), StoreError> {
        let mut file = std::fs::File::from(file);
        let mut seen = 0u64;
        loop {
            let n = match file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("read", self.host(rel))(e)),
            };
            record.update(&self.buf[..n]);
            seen += n as u64;
        }
        if seen != size {
            return Err(io_err("read", self.host(rel))(io::Error::other(format!(
                "file changed while it was read ({seen} bytes, stat said {size})"
            ))));
        }
        Ok(())
    }
}

/// Name, type and permission bits, owner and mtime (not a directory's).
// `Stat`'s field types differ between architectures; the casts fix the hashed widths.
#[allow(clippy::unnecessary_cast)]
fn meta(record: &mut Sha256, name: &[u8], stat: &Stat) {
    field(record, name);
    record.update((stat.st_mode as u32).to_le_bytes());
    record.update(stat.st_uid.to_le_bytes());
    record.update(stat.st_gid.to_le_bytes());
    // A directory's mtime is left out: entries added or removed show in its children, and
    // directories the archive does not list (the root, implied parents) get the time of the
    // unpack, which would make the digest differ between two unpacks of one layer.
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        record.update((stat.st_mtime as i64).to_le_bytes());
        record.update((stat.st_mtime_nsec as u64).to_le_bytes());
    }
}

fn join(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rel.len() + 1 + name.len());
    if !rel.is_empty() {
        out.extend_from_slice(rel);
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}
