//! Member access for an archive that is either one tar file or an unpacked directory.
//!
//! A tar archive is never unpacked: one pass over its headers (seeking past member data) records
//! where each member's bytes live, and a member is then read with `pread` through a
//! [`MemberReader`] bounded to that span. A directory is read with every member path resolved
//! inside the directory (`openat2` + `RESOLVE_IN_ROOT`), so a symlink in an untrusted layout
//! cannot make us read host files.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::in_root::openat2;
use rustix::fs::{Dir, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::layer::Compression;

/// Symlink hops followed inside a tar archive before giving up (the kernel's own limit).
const MAX_LINK_HOPS: usize = 40;

/// Where a member of a tar archive lives.
#[derive(Debug, Clone)]
pub(crate) enum TarMember {
    File {
        offset: u64,
        size: u64,
    },
    /// A symlink or hard link, with its target already made into an archive-root-relative name.
    Link(String),
    Dir,
}

/// A tar file or a directory, read member by member.
pub(crate) enum Source {
    Tar { file: Arc<File>, members: HashMap<String, TarMember> },
    Dir { root: Arc<File> },
}

/// A bounded reader over one member's bytes.
///
/// Reads use `pread` at the reader's own position, so several readers can share one open
/// archive file (and be used from several threads) without disturbing each other.
pub struct MemberReader {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl MemberReader {
    /// The member's size in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Read for MemberReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated: the archive is shorter than its tar headers say",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Lexically normalizes a member name: no leading `/` or `./`, no empty or `.` components, and
/// `..` clamped at the archive root (a member name cannot point outside the archive).
pub(crate) fn normalize(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn parent(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(dir, _)| dir)
}

impl Source {
    /// Opens `path`: a directory is used as an unpacked layout, anything else is indexed as tar.
    pub(crate) fn open(path: &Path) -> io::Result<Source> {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        let file = File::from(fd);
        if file.metadata()?.is_dir() {
            return Ok(Source::Dir { root: Arc::new(file) });
        }
        // `docker save | gzip` output cannot be read by seeking; say so instead of failing
        // on a bad tar header.
        let mut head = [0u8; 512];
        let n = file.read_at(&mut head, 0)?;
        let compressed = match Compression::from_magic(&head[..n]) {
            Ok(Compression::None) => None,
            Ok(Compression::Gzip) => Some("gzip"),
            Ok(Compression::Zstd) => Some("zstd"),
            Err(format) => Some(format),
        };
        if let Some(format) = compressed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("archive is {format}-compressed; decompress it first"),
            ));
        }
        let members = index_tar(&file)
            .map_err(|e| io::Error::new(e.kind(), format!("not a tar archive or a directory: {e}")))?;
        Ok(Source::Tar { file: Arc::new(file), members })
    }

    /// Opens a member for reading; `Ok(None)` when there is no such regular file.
    pub(crate) fn open_member(&self, name: &str) -> io::Result<Option<MemberReader>> {
        match self {
            Source::Tar { file, members } => {
                let mut name = normalize(name);
                for _ in 0..MAX_LINK_HOPS {
                    match members.get(&name) {
                        Some(TarMember::File { offset, size }) => {
                            return Ok(Some(MemberReader {
                                file: file.clone(),
                                pos: *offset,
                                end: offset + size,
                            }))
                        }
                        Some(TarMember::Link(target)) => name = target.clone(),
                        Some(TarMember::Dir) | None => return Ok(None),
                    }
                }
                Err(io::Error::from(Errno::LOOP))
            }
            Source::Dir { root } => {
                let opened = openat2(
                    root.as_ref(),
                    normalize(name),
                    OFlags::RDONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
                );
                let fd = match opened {
                    Ok(fd) => fd,
                    Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                let stat = rustix::fs::fstat(&fd)?;
                if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
                    return Ok(None);
                }
                Ok(Some(MemberReader { file: Arc::new(File::from(fd)), pos: 0, end: stat.st_size as u64 }))
            }
        }
    }

    /// Names of the top-level directories (the per-layer directories of a legacy layout).
    pub(crate) fn top_level_dirs(&self) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = match self {
            Source::Tar { members, .. } => members
                .iter()
                .filter_map(|(name, member)| match name.split_once('/') {
                    Some((top, _)) => Some(top.to_owned()),
                    None if matches!(member, TarMember::Dir) => Some(name.clone()),
                    None => None,
                })
                .collect(),
            Source::Dir { root } => {
                let mut dir = Dir::read_from(root.as_ref())?;
                let mut names = Vec::new();
                while let Some(entry) = dir.read() {
                    let entry = entry?;
                    let name = entry.file_name().to_string_lossy();
                    if entry.file_type() == FileType::Directory && name != "." && name != ".." {
                        names.push(name.into_owned());
                    }
                }
                names
            }
        };
        names.sort();
        names.dedup();
        Ok(names)
    }
}

/// One pass over the tar headers, seeking past member data, recording each member's span.
fn index_tar(file: &File) -> io::Result<HashMap<String, TarMember>> {
    // `&File` is Read + Seek; a small buffer is enough since we mostly read 512-byte headers.
    let mut archive = tar::Archive::new(BufReader::with_capacity(16 * 1024, file));
    let mut members = HashMap::new();
    for entry in archive.entries_with_seek()? {
        let entry = entry?;
        let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        let kind = entry.header().entry_type();
        let member = if kind.is_file() || kind.is_contiguous() {
            TarMember::File { offset: entry.raw_file_position(), size: entry.size() }
        } else if kind.is_dir() {
            TarMember::Dir
        } else if kind.is_symlink() || kind.is_hard_link() {
            let Some(target) = entry.link_name_bytes() else {
                continue;
            };
            let target = String::from_utf8_lossy(&target);
            // A symlink's target is relative to the link's directory; a hard link's names a
            // member from the archive root.
            let resolved = if kind.is_symlink() && !target.starts_with('/') {
                normalize(&format!("{}/{}", parent(&name), target))
            } else {
                normalize(&target)
            };
            TarMember::Link(resolved)
        } else {
            continue;
        };
        members.insert(name, member);
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes_member_names() {
        assert_eq!(normalize("./manifest.json"), "manifest.json");
        assert_eq!(normalize("/abc//layer.tar"), "abc/layer.tar");
        assert_eq!(normalize("abc/../def/layer.tar"), "def/layer.tar");
        assert_eq!(normalize("../../etc/passwd"), "etc/passwd");
    }
}
