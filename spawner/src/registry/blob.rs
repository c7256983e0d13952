//! A layer blob as one stream, however many connections it takes: every byte read is appended to
//! the content store's ingest file (hashed there) on its way to whoever reads the stream (the
//! unpacker, while the download goes on). What an earlier, interrupted download left in the
//! ingest file comes first, from the file. A connection that breaks, ends early or stalls is
//! resumed with a Range request from the next byte, after a backoff; from a server that ignores
//! the range, the bytes already passed on are read again and skipped (the blob's digest, checked
//! at the end, covers whatever was kept).

use std::io::{self, Read};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use super::client::Client;
use super::progress::Layer;
use super::RegistryError;
use crate::image::Digest;
use crate::store::content::Ingest;
use crate::store::StoreError;

/// Retries of one request (5xx, reset, stalled) before the pull fails.
pub(super) const ATTEMPTS: u32 = 5;

pub(super) struct BlobStream<'a> {
    client: &'a Client,
    digest: &'a Digest,
    size: u64,
    line: &'a Layer,
    ingest: Ingest<'a>,
    /// Bytes handed to the reader so far.
    pos: u64,
    /// The open connection, and how many of its first bytes were passed on already.
    response: Option<(Box<dyn Read + Send>, u64)>,
    attempt: u32,
    /// Why the stream failed, kept typed for the caller (the reader sees an `io::Error`).
    failure: &'a Mutex<Option<RegistryError>>,
}

impl<'a> BlobStream<'a> {
    pub(super) fn new(
        client: &'a Client,
        digest: &'a Digest,
        size: u64,
        line: &'a Layer,
        ingest: Ingest<'a>,
        failure: &'a Mutex<Option<RegistryError>>,
    ) -> BlobStream<'a> {
        line.at(ingest.written());
        BlobStream { client, digest, size, line, ingest, pos: 0, response: None, attempt: 0, failure }
    }

    /// Reads the rest of the blob and stores it, checked against its digest and size.
    pub(super) fn finish(mut self) -> Result<(), RegistryError> {
        if let Some(failure) = self.failure.lock().expect("failure lock").take() {
            return Err(failure);
        }
        if let Err(e) = io::copy(&mut self, &mut io::sink()) {
            let failure = self.failure.lock().expect("failure lock").take();
            return Err(failure.unwrap_or_else(|| self.transport(e.to_string())));
        }
        self.line.verifying();
        let client = self.client;
        self.ingest.commit().map_err(|e| match e {
            StoreError::DigestMismatch { expected, actual, .. } => RegistryError::DigestMismatch {
                reference: client.reference().to_string(),
                what: format!("layer blob {expected}"),
                expected: expected.to_string(),
                actual,
            },
            other => other.into(),
        })
    }

    fn transport(&self, reason: String) -> RegistryError {
        RegistryError::Transport {
            registry: self.client.reference().registry.clone(),
            what: format!("blob {}", self.digest),
            reason,
        }
    }

    /// Remembers `error` for the caller and hands the reader an `io::Error` saying the same.
    fn fail(&mut self, error: RegistryError) -> io::Error {
        let e = io::Error::other(error.to_string());
        *self.failure.lock().expect("failure lock") = Some(error);
        e
    }

    /// After a failed or short connection: Ok to try again (after the backoff), or the error
    /// that ends the stream.
    fn retry(&mut self, failure: String) -> Result<(), RegistryError> {
        self.response = None;
        self.attempt += 1;
        if self.attempt >= ATTEMPTS {
            return Err(self.transport(format!("{failure} ({} attempts)", self.attempt)));
        }
        log::warn!("blob {}: {failure}; resuming at byte {}", self.digest, self.ingest.written());
        std::thread::sleep(Duration::from_millis(200 << self.attempt));
        Ok(())
    }

    /// One read from the network into `buf`, appended to the ingest: Ok(0) only at the blob's end.
    fn read_network(&mut self, buf: &mut [u8]) -> Result<usize, RegistryError> {
        loop {
            let written = self.ingest.written();
            if written >= self.size {
                return Ok(0);
            }
            let Some((reader, skip)) = &mut self.response else {
                match self.client.blob(&self.digest.to_string(), written) {
                    Ok((reader, partial)) => {
                        let skip = if written > 0 && !partial { written } else { 0 };
                        self.response = Some((reader, skip));
                    }
                    Err(e) if e.retryable() => self.retry(e.to_string())?,
                    Err(e) => return Err(e),
                }
                continue;
            };
            let failure = match reader.read(buf) {
                Ok(0) => format!("the connection ended after {written} of {} bytes", self.size),
                Ok(n) => {
                    // From a server that ignored the range: drop what was passed on already.
                    let dropped = usize::try_from(*skip).unwrap_or(usize::MAX).min(n);
                    *skip -= dropped as u64;
                    if dropped == n {
                        continue;
                    }
                    buf.copy_within(dropped..n, 0);
                    let n = n - dropped;
                    if let Err(e) = self.ingest.append(&buf[..n])? {
                        return Err(self.transport(e.to_string()));
                    }
                    self.line.bytes(n as u64);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => e.to_string(),
            };
            self.retry(failure)?;
        }
    }
}

impl Read for BlobStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // First what an earlier download left in the ingest file.
        let n = if self.pos < self.ingest.written() {
            let want = buf.len().min(usize::try_from(self.ingest.written() - self.pos).unwrap_or(usize::MAX));
            self.ingest.read_at(&mut buf[..want], self.pos)?
        } else {
            match self.read_network(buf) {
                Ok(n) => n,
                Err(e) => return Err(self.fail(e)),
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

/// Bytes handed from the fetching thread to the reader per message.
const CHUNK: usize = 256 << 10;
/// Chunks fetched ahead of the reader: the download runs ahead of a slower unpacker by this
/// much memory at most.
const CHUNKS_AHEAD: usize = 16;

/// The reading end of [`read_ahead`].
pub(super) struct ReadAhead {
    chunks: mpsc::Receiver<io::Result<Vec<u8>>>,
    spare: mpsc::Sender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

/// Reads `inner` to its end on a thread of `scope`, so that the network, the ingest file and
/// the blob's hash cost the thread that decompresses nothing (it is the unpack's slower half).
/// The thread returns `inner` once it has read everything, met an error (passed on to the
/// reader), or the reader is dropped.
pub(super) fn read_ahead<'scope, R: Read + Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    mut inner: R,
) -> (ReadAhead, std::thread::ScopedJoinHandle<'scope, R>) {
    let (chunks_tx, chunks) = mpsc::sync_channel(CHUNKS_AHEAD);
    let (spare, spare_rx) = mpsc::channel::<Vec<u8>>();
    let fetcher = std::thread::Builder::new()
        .name("fetch".into())
        .spawn_scoped(scope, move || {
            loop {
                let mut buf = spare_rx.try_recv().unwrap_or_default();
                buf.resize(CHUNK, 0);
                let message = match inner.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        Ok(buf)
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                let failed = message.is_err();
                if chunks_tx.send(message).is_err() || failed {
                    break;
                }
            }
            inner
        })
        .expect("spawn the fetching thread");
    (ReadAhead { chunks, spare, chunk: Vec::new(), pos: 0 }, fetcher)
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            let used = std::mem::take(&mut self.chunk);
            if used.capacity() > 0 {
                let _ = self.spare.send(used);
            }
            self.pos = 0;
            match self.chunks.recv() {
                Ok(chunk) => self.chunk = chunk?,
                Err(mpsc::RecvError) => return Ok(0), // the end
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
