//! Unpacking one layer's tar stream into an empty directory, in overlayfs form.
//!
//! The `tar` crate only parses; everything is created here, because `tar::Entry::unpack` follows
//! absolute symlinks against the host (Debian's `var/run -> /run` would send `var/run/x` to the
//! host's `/run/x`) and writes device nodes as empty files.
//!
//! Every entry's parent directory is opened with `openat2(RESOLVE_IN_ROOT)`, so `..` and symlinks,
//! absolute or relative, resolve inside the layer as they will inside the container; the final
//! component is then created relative to that directory fd (`openat(O_EXCL|O_NOFOLLOW)`,
//! `mkdirat`, `symlinkat`, `linkat`, `mknodat`), never following a symlink.
//!
//! Whiteouts become what overlayfs reads: `.wh.NAME` a 0:0 char device `NAME`, `.wh..wh..opq` the
//! xattr `trusted.overlay.opaque=y` on its directory.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;
use std::sync::mpsc;

use crate::in_root::openat2;
use rustix::fs::{
    chmodat, chownat, fchmod, fchown, fsetxattr, futimens, linkat, lsetxattr, makedev, mkdirat, mknodat,
    openat, statat, symlinkat, syncfs, unlinkat, utimensat, AtFlags, Dir, FileType, Gid, Mode, OFlags,
    ResolveFlags, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;

use super::error::{io_err, StoreError};
use super::split::Recorder;
use super::tree::Format;
use crate::image::{Algorithm, Decompressor, Digest, DigestReader, Hasher};

/// What each entry costs against the size limit besides its content: an inode and a directory
/// entry take about a block on disk, so a layer of a million empty files is not free (its tar
/// stream alone, 512 bytes an entry, would let 40 million of them through a 20 GiB limit).
const ENTRY_COST: u64 = 4096;

/// Reused for copying file contents: one chunk from the decompressing thread at most.
const COPY_BUFFER: usize = CHUNK;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Names starting with this are AUFS metadata (`.wh..wh.plnk`, `.wh..wh.aufs`), except the opaque
/// marker below.
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// overlayfs reads its own xattrs as instructions (redirects, opaque dirs, metacopy). A layer must
/// not smuggle them in; only whiteout entries may produce them.
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
/// The same, for overlayfs mounted with `userxattr`.
const USER_OVERLAY_XATTR_PREFIX: &[u8] = b"user.overlay.";
const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

fn in_root() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// What went wrong with one entry, before the layer and entry names are attached.
enum Failure {
    /// The tar stream itself (headers, decompression, entry data).
    Read(io::Error),
    /// A syscall creating the entry.
    Op(&'static str, io::Error),
    /// The entry's name or link target leaves the layer.
    Unsafe(&'static str),
    /// The layer's files add up to more than the bytes left for the image.
    TooLarge(u64),
}

impl Failure {
    fn into_error(self, layer: &str, entry: String) -> StoreError {
        let layer = layer.to_owned();
        match self {
            Failure::Read(source) if entry.is_empty() => StoreError::LayerRead { layer, source },
            Failure::Read(source) => StoreError::LayerRead { layer: format!("{layer}: {entry}"), source },
            Failure::Op(op, source) => StoreError::Entry { layer, entry, op, source },
            Failure::Unsafe(reason) => StoreError::UnsafeEntry { layer, entry, reason },
            // Named down to the entry that went over.
            Failure::TooLarge(limit) => StoreError::TooLarge { layer: format!("{layer}: {entry}"), limit },
        }
    }
}

fn op(name: &'static str) -> impl FnOnce(Errno) -> Failure {
    move |e| Failure::Op(name, e.into())
}

/// What unpacking one layer found: the digests and sizes the caller checks.
pub(crate) struct Unpacked {
    pub diff_id: Digest,
    /// Bytes in the uncompressed tar stream.
    pub tar_size: u64,
    /// Digest of the blob as stored, when one was asked for.
    pub blob_digest: Option<Digest>,
    /// Bytes of file content written (sparse files count their holes), plus
    /// [`ENTRY_COST`] for each entry.
    pub written: u64,
    /// The unpacked tree's digest (see `tree.rs`), for verifying the layer later, and its format.
    pub tree_digest: Digest,
    pub tree_format: Format,
    /// The layer's tar-split (see `split.rs`).
    pub split: Vec<u8>,
}

/// Files at least this big start going to disk as soon as they are written, so the syncfs that
/// ends the unpack waits for less (the bulk of a layer's bytes is in its few big files).
const EARLY_WRITEBACK: u64 = 128 << 10;

/// Uncompressed bytes handed from the decompressing thread to the unpacking one per message.
const CHUNK: usize = 256 << 10;
/// Chunks in flight between the two threads: enough to ride out a burst of small files on one
/// side or a slow inflate on the other, while memory stays a couple of MiB.
const CHUNKS_IN_FLIGHT: usize = 8;
/// Bytes the tar parser may read to produce one entry: its header, GNU long name and long link
/// members, PAX extensions and sparse maps, all of which the tar crate keeps in memory.
/// Real ones are a few KiB; without a cap a small compressed layer could ask for gigabytes.
const MAX_HEADER_BYTES: u64 = 8 << 20;

/// One message from the decompressing thread: a buffer and how many of its bytes are data, or
/// the error that ended the stream.
type Chunk = io::Result<(Vec<u8>, usize)>;

/// Why the decompressing thread stopped early.
enum StreamError {
    /// The blob could not be read or decoded.
    Read(io::Error),
    /// The layer is larger than the bytes left for the image.
    TooLarge,
    /// The unpacking side failed and hung up; its error is the one to report.
    Cancelled,
}

/// What the decompressing thread hands back at the end of a good stream.
struct StreamDone {
    blob_digest: Option<Digest>,
}

/// Unpacks the layer `stream` decodes into the empty directory `dest`, on two threads: one reads
/// the blob (hashing it when its `DigestReader` does) and decompresses it; this one hashes the tar
/// stream with `diff_algorithm`, parses it and creates the files. They overlap, as
/// `gzip -d | tar -x` does (inflating is the heavier half, so the stream's hash is on this
/// side). At most `budget` bytes of tar stream and of file content are accepted. The caller
/// compares digests; `dest` is complete and synced to disk when this returns. `label` names the
/// layer in errors. The blob is read up to the end of the compressed data; the rest of it (when
/// it is not hashed here) is the caller's to read.
pub(crate) fn unpack_layer<R: Read + Send>(
    stream: Decompressor<BufReader<DigestReader<R>>>,
    label: &str,
    dest: &Path,
    diff_algorithm: Algorithm,
    budget: u64,
) -> Result<Unpacked, StoreError> {
    let root = rustix::fs::open(dest, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(io_err("open", dest))?;
    let too_large = || StoreError::TooLarge { layer: label.to_owned(), limit: budget };
    std::thread::scope(|scope| {
        let (chunks_tx, chunks_rx) = mpsc::sync_channel::<Chunk>(CHUNKS_IN_FLIGHT);
        let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
        let producer = std::thread::Builder::new()
            .name("decompress".into())
            .spawn_scoped(scope, move || produce(stream, budget, chunks_tx, spare_rx))
            .map_err(io_err("spawn thread for", dest))?;

        let header_budget = Rc::new(Cell::new(None));
        let split = Rc::new(RefCell::new(Recorder::default()));
        let reader = ChannelReader {
            split: split.clone(),
            chunks: chunks_rx,
            spare: spare_tx,
            buf: Vec::new(),
            pos: 0,
            len: 0,
            failed: false,
            header_budget: header_budget.clone(),
            hasher: Hasher::new(diff_algorithm),
            total: 0,
        };
        let mut tar = tar::Archive::new(reader);
        let mut unpacker = Unpacker::new(root, budget, split.clone());
        let consumed = match unpacker.run(&mut tar, &header_budget) {
            Ok(()) => {
                // The digest covers the whole stream: the end-of-archive blocks and any padding
                // the tar parser stopped before. Draining also lets the other thread finish.
                let mut reader = tar.into_inner();
                reader.header_budget.set(None);
                match io::copy(&mut reader, &mut io::sink()) {
                    Ok(_) => Ok((reader.hasher.finish(), reader.total)),
                    Err(e) => Err((String::new(), Failure::Read(e))),
                }
            }
            Err(e) => {
                // Hanging up stops the other thread at its next chunk.
                drop(tar);
                Err(e)
            }
        };
        let produced = producer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let ((diff_id, tar_size), done) = match (consumed, produced) {
            (Ok(stream), Ok(done)) => (stream, done),
            // The stream's own error explains a read failure on this side best.
            (Err((_, Failure::Read(_))) | Ok(_), Err(StreamError::Read(source))) => {
                return Err(StoreError::LayerRead { layer: label.to_owned(), source })
            }
            (Err((_, Failure::Read(_))) | Ok(_), Err(StreamError::TooLarge)) => return Err(too_large()),
            (Err((entry, failure)), _) => return Err(failure.into_error(label, entry)),
            (Ok(_), Err(StreamError::Cancelled)) => {
                unreachable!("the unpacking side hung up without failing")
            }
        };
        let written = unpacker.written;
        let (root, replaced) =
            unpacker.finish().map_err(|(entry, failure)| failure.into_error(label, entry))?;
        let split = Rc::try_unwrap(split).map_or_else(|_| Vec::new(), |s| s.into_inner().finish());
        // Writing the layer back to disk waits on the device; walking the tree (stats only, in
        // the usual format) needs the CPU: side by side.
        let sync = std::thread::Builder::new()
            .name("syncfs".into())
            .spawn_scoped(scope, move || syncfs(&root))
            .map_err(io_err("spawn thread for", dest))?;
        let tree_format = if replaced { Format::Inline } else { Format::SizeOnly };
        let tree_digest = super::tree::tree_digest(dest, tree_format)?;
        sync.join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            .map_err(io_err("syncfs", dest))?;
        Ok(Unpacked {
            diff_id,
            tar_size,
            blob_digest: done.blob_digest,
            written,
            tree_digest,
            tree_format,
            split,
        })
    })
}

/// The decompressing thread: reads, hashes and decodes the blob, and sends the tar stream on in
/// chunks, reusing the buffers the other side sends back. Returns the blob's digest when the
/// blob is hashed.
fn produce<R: Read>(
    mut stream: Decompressor<BufReader<DigestReader<R>>>,
    budget: u64,
    chunks: mpsc::SyncSender<Chunk>,
    spare: mpsc::Receiver<Vec<u8>>,
) -> Result<StreamDone, StreamError> {
    let fail = |chunks: &mpsc::SyncSender<Chunk>, error: StreamError| {
        let message = match &error {
            StreamError::Read(e) => io::Error::new(e.kind(), e.to_string()),
            _ => io::Error::other("layer stream stopped"),
        };
        let _ = chunks.send(Err(message));
        error
    };
    let mut total = 0u64;
    loop {
        let mut buf = spare.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
        let n = match fill(&mut stream, &mut buf) {
            Ok(n) => n,
            Err(e) => return Err(fail(&chunks, StreamError::Read(e))),
        };
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > budget {
            return Err(fail(&chunks, StreamError::TooLarge));
        }
        if chunks.send(Ok((buf, n))).is_err() {
            return Err(StreamError::Cancelled);
        }
    }
    drop(chunks); // end of stream for the other side
    let blob = stream.into_inner().into_inner();
    if !blob.is_hashing() {
        return Ok(StreamDone { blob_digest: None });
    }
    // Whatever follows the compressed data is part of the blob too.
    let (digest, _, _) = blob.finish().map_err(StreamError::Read)?;
    Ok(StreamDone { blob_digest: Some(digest) })
}

/// Reads until `buf` is full or the stream ends.
fn fill(stream: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match stream.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The unpacking side of the channel, read by the tar parser.
struct ChannelReader {
    chunks: mpsc::Receiver<Chunk>,
    spare: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// The stream ended in an error, already returned once.
    failed: bool,
    /// While the parser looks for the next entry: how many more bytes it may read.
    header_budget: Rc<Cell<Option<u64>>>,
    /// The diff_id being computed, and the stream's length so far.
    hasher: Hasher,
    total: u64,
    /// What the parser reads, recorded as the layer's tar-split.
    split: Rc<RefCell<Recorder>>,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.len {
            if self.failed {
                return Err(io::Error::other("layer stream failed"));
            }
            let buf = std::mem::take(&mut self.buf);
            if !buf.is_empty() {
                let _ = self.spare.send(buf);
            }
            (self.buf, self.pos, self.len) = match self.chunks.recv() {
                Ok(Ok((buf, len))) => {
                    self.hasher.update(&buf[..len]);
                    self.total += len as u64;
                    (buf, 0, len)
                }
                Ok(Err(e)) => {
                    self.failed = true;
                    return Err(e);
                }
                Err(mpsc::RecvError) => return Ok(0), // the stream ended well
            };
        }
        let mut n = out.len().min(self.len - self.pos);
        if let Some(left) = self.header_budget.get() {
            if left == 0 && n > 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("tar headers of one entry exceed {} MiB", MAX_HEADER_BYTES >> 20),
                ));
            }
            n = n.min(usize::try_from(left).unwrap_or(usize::MAX));
            self.header_budget.set(Some(left - n as u64));
        }
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.split.borrow_mut().read(&out[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// Ownership, permissions and time of one entry (its xattrs are in `Unpacker::xattrs`).
struct Meta {
    mode: Mode,
    uid: Option<Uid>,
    gid: Option<Gid>,
    mtime: Timespec,
}

impl Meta {
    fn timestamps(&self) -> Timestamps {
        // Tar keeps no atime worth restoring; use mtime for both.
        Timestamps { last_access: self.mtime, last_modification: self.mtime }
    }
}

/// The last parent directory opened. Tar entries come grouped by directory, so this saves an
/// `openat2` per entry.
///
/// The fd stays valid while later entries share the same parent path: those entries only create
/// or replace children of that directory, which cannot change what the directory is. Any entry
/// with another parent replaces the slot.
#[derive(Default)]
struct ParentCache {
    slot: Option<(Vec<u8>, OwnedFd)>,
}

impl ParentCache {
    fn get(&mut self, root: &OwnedFd, parent: &[u8]) -> Result<BorrowedFd<'_>, Failure> {
        let hit = matches!(&self.slot, Some((path, _)) if path.as_slice() == parent);
        if !hit {
            let fd = open_or_create_dir(root, parent)?;
            match &mut self.slot {
                Some((path, slot_fd)) => {
                    path.clear();
                    path.extend_from_slice(parent);
                    *slot_fd = fd;
                }
                None => self.slot = Some((parent.to_vec(), fd)),
            }
        }
        Ok(self.slot.as_ref().expect("filled above").1.as_fd())
    }
}

struct Unpacker {
    root: OwnedFd,
    parents: ParentCache,
    /// The current entry's cleaned path.
    path: Vec<u8>,
    /// The current hard link's cleaned target.
    link: Vec<u8>,
    buf: Vec<u8>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Directory mtimes, set at the end: creating entries inside a directory changes its mtime.
    dir_times: Vec<(Vec<u8>, Timespec)>,
    /// File content written so far, and the most allowed.
    written: u64,
    budget: u64,
    /// Told where each regular file's content is in the stream.
    split: Rc<RefCell<Recorder>>,
    /// Set when an entry replaced one already unpacked: the tar-split then names a path whose
    /// bytes are gone (see the tree digest's formats).
    replaced: Cell<bool>,
}

impl Unpacker {
    fn new(root: OwnedFd, budget: u64, split: Rc<RefCell<Recorder>>) -> Unpacker {
        Unpacker {
            root,
            parents: ParentCache::default(),
            path: Vec::new(),
            link: Vec::new(),
            buf: vec![0; COPY_BUFFER],
            xattrs: Vec::new(),
            dir_times: Vec::new(),
            written: 0,
            budget,
            split,
            replaced: Cell::new(false),
        }
    }

    /// Unpacks every entry; on failure returns the entry's name with what went wrong.
    /// `header_budget` caps what the parser reads between entries (see [`MAX_HEADER_BYTES`]).
    fn run<R: Read>(
        &mut self,
        tar: &mut tar::Archive<R>,
        header_budget: &Cell<Option<u64>>,
    ) -> Result<(), (String, Failure)> {
        let no_entry = |e| (String::new(), Failure::Read(e));
        header_budget.set(Some(MAX_HEADER_BYTES));
        let mut entries = tar.entries().map_err(no_entry)?;
        loop {
            header_budget.set(Some(MAX_HEADER_BYTES));
            let Some(entry) = entries.next() else { break };
            header_budget.set(None);
            let mut entry = entry.map_err(no_entry)?;
            let named = |entry: &tar::Entry<'_, R>, f| (printable(&entry.path_bytes()), f);
            self.entry(&mut entry).map_err(|f| named(&entry, f))?;
            // Whatever data the entry has left (a directory or link with a size, say) is read
            // here, so the parser's own skipping stays within the header budget.
            io::copy(&mut entry, &mut io::sink()).map_err(|e| named(&entry, Failure::Read(e)))?;
        }
        Ok(())
    }

    /// Counts `bytes` as written; fails once the budget is exceeded.
    fn charge(&mut self, bytes: u64) -> Result<(), Failure> {
        self.written += bytes;
        if self.written > self.budget {
            return Err(Failure::TooLarge(self.budget));
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), Failure> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            // Metadata for other entries; the tar crate already folds the local ones in.
            return Ok(());
        }
        clean_path(&entry.path_bytes(), &mut self.path)?;
        if self.path.starts_with(WHITEOUT_META_PREFIX) && self.path != OPAQUE_MARKER {
            // Top-level AUFS metadata (`.wh..wh.plnk/…`, `.wh..wh.aufs`): not part of the tree.
            return Ok(());
        }
        self.charge(ENTRY_COST)?;
        let meta = self.read_meta(entry)?;
        // Split borrows: `path` is read while the cache and buffers are used mutably.
        let path = std::mem::take(&mut self.path);
        let result = self.entry_at(entry, kind, &path, &meta);
        self.path = path;
        result
    }

    fn read_meta<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<Meta, Failure> {
        let header = entry.header();
        let mode = header.mode().map_err(Failure::Read)? & 0o7777;
        // The tar crate already applied PAX uid/gid over the header's.
        let id = |raw: io::Result<u64>| -> Result<Option<u32>, Failure> {
            // u32::MAX is -1 to chown: "leave unchanged". Treat it, and overflows, as unknown.
            Ok(raw.map_err(Failure::Read)?.try_into().ok().filter(|&id: &u32| id != u32::MAX))
        };
        let uid = id(header.uid())?.map(Uid::from_raw);
        let gid = id(header.gid())?.map(Gid::from_raw);
        let mut mtime = Timespec { tv_sec: header.mtime().map_err(Failure::Read)? as i64, tv_nsec: 0 };
        self.xattrs.clear();
        if let Some(pax) = entry.pax_extensions().map_err(Failure::Read)? {
            for ext in pax {
                let ext = ext.map_err(Failure::Read)?;
                let key = ext.key_bytes();
                if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
                    if !name.starts_with(OVERLAY_XATTR_PREFIX) && !name.starts_with(USER_OVERLAY_XATTR_PREFIX)
                    {
                        self.xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                    }
                } else if key == b"mtime" {
                    if let Some(t) = parse_pax_time(ext.value_bytes()) {
                        mtime = t;
                    }
                }
            }
        }
        Ok(Meta { mode: Mode::from_raw_mode(mode), uid, gid, mtime })
    }

    fn entry_at<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: tar::EntryType,
        path: &[u8],
        meta: &Meta,
    ) -> Result<(), Failure> {
        let (parent, name) = split_parent(path);
        if name.is_empty() {
            // `./` itself: the layer root takes the entry's metadata.
            if !kind.is_dir() {
                return Err(Failure::Unsafe("entry would replace the layer root"));
            }
            apply_to_fd(self.root.as_fd(), meta, &self.xattrs)?;
            self.dir_times.push((Vec::new(), meta.mtime));
            return Ok(());
        }
        let dir = self.parents.get(&self.root, parent)?;

        if name.starts_with(WHITEOUT_PREFIX) {
            if name == OPAQUE_MARKER {
                // Marks the directory only: siblings from this same layer stay.
                return set_xattr(
                    |n, v| fsetxattr(dir, n, v, XattrFlags::empty()),
                    OPAQUE_XATTR.as_bytes(),
                    b"y",
                );
            }
            if name.starts_with(WHITEOUT_META_PREFIX) {
                return Ok(());
            }
            let hidden = &name[WHITEOUT_PREFIX.len()..];
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(Failure::Unsafe("whiteout of ., .. or an empty name"));
            }
            return create_retrying(dir, hidden, false, &self.replaced, || {
                mknodat(dir, hidden, FileType::CharacterDevice, Mode::empty(), makedev(0, 0))
                    .map_err(op("mknodat"))
            });
        }

        if kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse() {
            let fd = create_retrying_fd(dir, name, &self.replaced, || {
                openat(
                    dir,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(op("openat"))
            })?;
            let mut file = File::from(fd);
            let mut left = entry.size();
            // A sparse file's stream is not its content: it stays in the tar-split verbatim.
            let plain = !kind.is_gnu_sparse();
            if plain {
                self.split.borrow_mut().begin_file(path);
            }
            loop {
                let n = entry.read(&mut self.buf).map_err(Failure::Read)?;
                if n == 0 {
                    if left > 0 {
                        let e = io::Error::new(io::ErrorKind::UnexpectedEof, "layer ends inside this file");
                        return Err(Failure::Read(e));
                    }
                    break;
                }
                left = left.saturating_sub(n as u64);
                // Counted as written, not as read: a sparse file's holes cost nothing in the
                // stream.
                self.charge(n as u64)?;
                file.write_all(&self.buf[..n]).map_err(|e| Failure::Op("write", e))?;
            }
            if plain {
                self.split.borrow_mut().end_file();
            }
            if entry.size() >= EARLY_WRITEBACK {
                // Best effort: the syncfs at the end is what makes the layer durable.
                let _ = rawsys::start_writeback(file.as_fd());
            }
            apply_to_fd(file.as_fd(), meta, &self.xattrs)?;
            futimens(&file, &meta.timestamps()).map_err(op("futimens"))?;
        } else if kind.is_dir() {
            // A directory over a directory keeps it (and its contents), taking the new metadata.
            create_retrying(dir, name, true, &self.replaced, || {
                mkdirat(dir, name, Mode::from_raw_mode(0o700)).map_err(op("mkdirat"))
            })?;
            let fd = open_dir_nofollow(dir, name)?;
            apply_to_fd(fd.as_fd(), meta, &self.xattrs)?;
            self.dir_times.push((path.to_vec(), meta.mtime));
        } else if kind.is_symlink() {
            // The target is kept verbatim: an absolute target is resolved against the
            // container's root when the container uses it, not against ours now.
            let target = entry.link_name_bytes().ok_or(Failure::Unsafe("symlink without a target"))?;
            create_retrying(dir, name, false, &self.replaced, || {
                symlinkat(&*target, dir, name).map_err(op("symlinkat"))
            })?;
            apply_to_name(dir, name, meta, &self.xattrs, false)?;
        } else if kind.is_hard_link() {
            let target = entry.link_name_bytes().ok_or(Failure::Unsafe("hard link without a target"))?;
            clean_path(&target, &mut self.link)?;
            if self.link.as_slice() == path {
                return Ok(());
            }
            let (target_parent, target_name) = split_parent(&self.link);
            if target_name.is_empty() {
                return Err(Failure::Unsafe("hard link to the layer root"));
            }
            // Resolved in-root like any path: a link can only ever point inside the layer.
            let target_dir = openat2(
                &self.root,
                nonempty(target_parent),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                in_root(),
            )
            .map_err(op("openat2 (hard link target)"))?;
            create_retrying(dir, name, false, &self.replaced, || {
                // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
                linkat(&target_dir, target_name, dir, name, AtFlags::empty()).map_err(op("linkat"))
            })?;
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let (file_type, dev) = if kind.is_fifo() {
                (FileType::Fifo, 0)
            } else {
                let header = entry.header();
                let major = header.device_major().map_err(Failure::Read)?.unwrap_or(0);
                let minor = header.device_minor().map_err(Failure::Read)?.unwrap_or(0);
                let file_type = if kind.is_character_special() {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                (file_type, makedev(major, minor))
            };
            create_retrying(dir, name, false, &self.replaced, || {
                mknodat(dir, name, file_type, Mode::from_raw_mode(0o600), dev).map_err(op("mknodat"))
            })?;
            apply_to_name(dir, name, meta, &self.xattrs, true)?;
        } else {
            log::warn!("skipping tar entry {} of unsupported type {:?}", printable(path), kind);
        }
        Ok(())
    }

    /// Sets directory mtimes now that nothing more is created inside them. Returns the root, for
    /// syncing the layer to disk once (cheaper than an fsync per file, and enough: the caller
    /// renames the layer into place only after that), and whether an entry replaced another.
    fn finish(self) -> Result<(OwnedFd, bool), (String, Failure)> {
        for (path, mtime) in &self.dir_times {
            let named = |f| (printable(path), f);
            let fd = match openat2(&self.root, nonempty(path), DIR_NOFOLLOW, Mode::empty(), in_root()) {
                Ok(fd) => fd,
                // Replaced by a later entry (a file or a symlink): its time was set then.
                Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => continue,
                Err(e) => return Err(named(op("openat2")(e))),
            };
            let times = Timestamps { last_access: *mtime, last_modification: *mtime };
            futimens(&fd, &times).map_err(|e| named(op("futimens")(e)))?;
        }
        Ok((self.root, self.replaced.get()))
    }
}

/// An entry name for a message: lossy UTF-8 with control characters escaped (`\n`, `\0`), so
/// a hostile name cannot break the one-line error or write to the terminal.
fn printable(name: &[u8]) -> String {
    crate::image::printable(&String::from_utf8_lossy(name))
}

/// `.` for the empty path (the root), the path itself otherwise.
fn nonempty(path: &[u8]) -> &[u8] {
    if path.is_empty() {
        b"."
    } else {
        path
    }
}

/// Normalizes an entry name into `out`: no leading `/` or `./`, no empty or `.` components, and
/// `..` applied lexically. A name whose `..` would climb above the root is refused, as Docker
/// refuses it; symlinks inside the layer are left to `RESOLVE_IN_ROOT`.
fn clean_path(raw: &[u8], out: &mut Vec<u8>) -> Result<(), Failure> {
    out.clear();
    if raw.contains(&0) {
        // Only a PAX record can carry one; no file name can.
        return Err(Failure::Unsafe("name contains a NUL byte"));
    }
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                if out.is_empty() {
                    return Err(Failure::Unsafe("path leaves the layer root"));
                }
                let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(())
}

/// `a/b/c` → (`a/b`, `c`); `c` → (``, `c`).
fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&path[..0], path),
    }
}

/// Parses a PAX time, `seconds[.fraction]`.
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let value = std::str::from_utf8(value).ok()?;
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let mut tv_nsec = 0i64;
    if !frac.is_empty() && tv_sec >= 0 {
        let digits: String = frac.chars().take(9).collect();
        tv_nsec = format!("{digits:0<9}").parse().ok()?;
    }
    Some(Timespec { tv_sec, tv_nsec })
}

/// Opens directory `path` of the layer (resolved in-root), creating missing components as
/// `0755 root:root` directories, as Docker does for parents a tar leaves implicit.
fn open_or_create_dir(root: &OwnedFd, path: &[u8]) -> Result<OwnedFd, Failure> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    match openat2(root, nonempty(path), flags, Mode::empty(), in_root()) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(op("openat2")(e)),
    }
    // Walk prefix by prefix. Each prefix is resolved from the root, so a symlinked component
    // resolves in-root; a missing one is made inside the directory its parent resolved to.
    let mut dir = openat2(root, ".", flags, Mode::empty(), in_root()).map_err(op("openat2"))?;
    let mut end = 0;
    for component in path.split(|&b| b == b'/') {
        end += component.len();
        let prefix = &path[..end];
        end += 1;
        dir = match openat2(root, prefix, flags, Mode::empty(), in_root()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                mkdirat(&dir, component, Mode::from_raw_mode(0o755)).map_err(|e| match e {
                    // The name is there but resolves to nothing: a symlink to a directory the
                    // layer does not have. Made in-root it would be wherever the link points;
                    // `mkdir -p` refuses that too.
                    Errno::EXIST => {
                        Failure::Unsafe("a parent directory is a symlink to nothing in the layer")
                    }
                    e => op("mkdirat")(e),
                })?;
                let fd =
                    openat(&dir, component, flags | OFlags::NOFOLLOW, Mode::empty()).map_err(op("openat"))?;
                // Not left to the umask.
                fchmod(&fd, Mode::from_raw_mode(0o755)).map_err(op("fchmod"))?;
                fd
            }
            Err(e) => return Err(op("openat2")(e)),
        };
    }
    Ok(dir)
}

/// Runs `create`; if the name is taken, clears it (keeping a directory when `keep_dir`) and
/// tries once more. A later entry of the same name wins.
fn create_retrying(
    dir: BorrowedFd<'_>,
    name: &[u8],
    keep_dir: bool,
    replaced: &Cell<bool>,
    mut create: impl FnMut() -> Result<(), Failure>,
) -> Result<(), Failure> {
    match create() {
        Err(Failure::Op(_, e)) if e.raw_os_error() == Some(Errno::EXIST.raw_os_error()) => {
            match clear_name(dir, name, keep_dir)? {
                Cleared::KeptDir => return Ok(()),
                Cleared::Removed => replaced.set(true),
                Cleared::Nothing => {}
            }
            create()
        }
        other => other,
    }
}

/// [`create_retrying`] for a creation that returns an fd.
fn create_retrying_fd(
    dir: BorrowedFd<'_>,
    name: &[u8],
    replaced: &Cell<bool>,
    mut create: impl FnMut() -> Result<OwnedFd, Failure>,
) -> Result<OwnedFd, Failure> {
    match create() {
        Err(Failure::Op(_, e)) if e.raw_os_error() == Some(Errno::EXIST.raw_os_error()) => {
            if clear_name(dir, name, false)? == Cleared::Removed {
                replaced.set(true);
            }
            create()
        }
        other => other,
    }
}

/// What [`clear_name`] found.
#[derive(Debug, PartialEq, Eq)]
enum Cleared {
    Nothing,
    /// A directory, kept as asked.
    KeptDir,
    Removed,
}

/// Removes whatever `name` is in `dir`, unless it is a directory and `keep_dir`.
fn clear_name(dir: BorrowedFd<'_>, name: &[u8], keep_dir: bool) -> Result<Cleared, Failure> {
    let stat = match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::NOENT) => return Ok(Cleared::Nothing),
        Err(e) => return Err(op("fstatat")(e)),
    };
    if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
        if keep_dir {
            return Ok(Cleared::KeptDir);
        }
        remove_tree(dir, name)?;
    } else {
        unlinkat(dir, name, AtFlags::empty()).map_err(op("unlinkat"))?;
    }
    Ok(Cleared::Removed)
}

/// How the unpacker opens a directory of the layer: never through a symlink.
const DIR_NOFOLLOW: OFlags =
    OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC);

/// Opens the directory `dir/name` without following a symlink there.
fn open_dir_nofollow(dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Failure> {
    openat(dir, name, DIR_NOFOLLOW, Mode::empty()).map_err(op("openat"))
}

/// `rm -rf dir/name` without following symlinks.
fn remove_tree(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Failure> {
    let fd = open_dir_nofollow(dir, name)?;
    // Names are collected first: removing while reading a directory may skip entries.
    let mut children = Vec::new();
    let mut entries = Dir::read_from(&fd).map_err(op("getdents"))?;
    while let Some(child) = entries.read() {
        let child = child.map_err(op("getdents"))?;
        let child_name = child.file_name().to_bytes();
        if child_name != b"." && child_name != b".." {
            children.push((child_name.to_vec(), child.file_type()));
        }
    }
    for (child, file_type) in children {
        let is_dir = match file_type {
            FileType::Directory => true,
            FileType::Unknown => {
                let stat = statat(&fd, &child, AtFlags::SYMLINK_NOFOLLOW).map_err(op("fstatat"))?;
                FileType::from_raw_mode(stat.st_mode) == FileType::Directory
            }
            _ => false,
        };
        if is_dir {
            remove_tree(fd.as_fd(), &child)?;
        } else {
            unlinkat(&fd, &child, AtFlags::empty()).map_err(op("unlinkat"))?;
        }
    }
    unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(op("rmdir"))
}

/// Ownership, then mode, then xattrs on an open file or directory.
fn apply_to_fd(fd: BorrowedFd<'_>, meta: &Meta, xattrs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), Failure> {
    fchown(fd, meta.uid, meta.gid).map_err(op("fchown"))?;
    // After chown, which clears setuid/setgid; then the xattrs, since chown also drops
    // security.capability.
    fchmod(fd, meta.mode).map_err(op("fchmod"))?;
    for (name, value) in xattrs {
        set_xattr(|n, v| fsetxattr(fd, n, v, XattrFlags::empty()), name, value)?;
    }
    Ok(())
}

/// Metadata for a symlink or device node, which cannot be opened for writing: by name, without
/// following. Mode is applied only to nodes (`chmod` would follow a symlink).
fn apply_to_name(
    dir: BorrowedFd<'_>,
    name: &[u8],
    meta: &Meta,
    xattrs: &[(Vec<u8>, Vec<u8>)],
    set_mode: bool,
) -> Result<(), Failure> {
    chownat(dir, name, meta.uid, meta.gid, AtFlags::SYMLINK_NOFOLLOW).map_err(op("fchownat"))?;
    if set_mode {
        chmodat(dir, name, meta.mode, AtFlags::empty()).map_err(op("fchmodat"))?;
    }
    if !xattrs.is_empty() {
        // There is no *xattrat syscall before Linux 6.13, and an O_PATH fd refuses fsetxattr;
        // `/proc/self/fd/N/name` names the entry through the already-resolved directory fd.
        let mut proc_path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
        proc_path.extend_from_slice(name);
        for (xattr, value) in xattrs {
            set_xattr(|n, v| lsetxattr(proc_path.as_slice(), n, v, XattrFlags::empty()), xattr, value)?;
        }
    }
    utimensat(dir, name, &meta.timestamps(), AtFlags::SYMLINK_NOFOLLOW).map_err(op("utimensat"))
}

/// Sets one xattr through `set`; a filesystem without xattr support only costs the xattr.
fn set_xattr(
    set: impl FnOnce(&[u8], &[u8]) -> rustix::io::Result<()>,
    name: &[u8],
    value: &[u8],
) -> Result<(), Failure> {
    match set(name, value) {
        Ok(()) => Ok(()),
        Err(Errno::OPNOTSUPP) => {
            log::warn!("xattr {} not supported here; dropped", String::from_utf8_lossy(name));
            Ok(())
        }
        Err(e) => Err(op("setxattr")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(raw: &str) -> Result<String, &'static str> {
        let mut out = Vec::new();
        match clean_path(raw.as_bytes(), &mut out) {
            Ok(()) => Ok(String::from_utf8(out).unwrap()),
            Err(Failure::Unsafe(reason)) => Err(reason),
            Err(_) => unreachable!(),
        }
    }

    #[test]
    fn cleans_names() {
        assert_eq!(clean("./etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(clean("/etc//x/").unwrap(), "etc/x");
        assert_eq!(clean("a/../b").unwrap(), "b");
        assert_eq!(clean("./").unwrap(), "");
        assert!(clean("../../etc/x").is_err());
        assert!(clean("a/../../x").is_err());
    }

    #[test]
    fn pax_times() {
        let t = parse_pax_time(b"1600000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_600_000_000, 500_000_000));
        let t = parse_pax_time(b"12").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (12, 0));
        assert!(parse_pax_time(b"x").is_none());
    }
}
