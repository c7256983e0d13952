//! A detached container's output, in Docker's json-file format: one JSON object a line, `{"log":
//! "…\n","stream":"stdout","time":"…"}`, written by its monitor (see `super::monitor`) and read by
//! `spawner logs`. A line longer than 16 KiB is cut into pieces, as Docker cuts it; a line the
//! container left unfinished is written without its newline when it ends.

use crate::container::{Sink, Stream};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Read, Seek, Write};
use std::path::Path;

/// Docker's longest log message: a longer line is written in pieces.
const MAX_LINE: usize = 16 * 1024;

#[derive(Serialize, Deserialize)]
struct Entry<'a> {
    log: std::borrow::Cow<'a, str>,
    stream: &'a str,
    time: String,
}

/// The writer: what a stream has of an unfinished line is held until its newline comes.
pub struct JsonLog {
    file: std::fs::File,
    pending: [Vec<u8>; 2],
}

impl JsonLog {
    pub fn create(path: &Path) -> std::io::Result<JsonLog> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonLog { file, pending: [Vec::new(), Vec::new()] })
    }

    fn entry(&mut self, stream: Stream, bytes: &[u8]) {
        let entry = Entry {
            log: String::from_utf8_lossy(bytes),
            stream: match stream {
                Stream::Stdout => "stdout",
                Stream::Stderr => "stderr",
            },
            time: crate::clock::now_rfc3339(),
        };
        let mut line = serde_json::to_vec(&entry).unwrap_or_default();
        line.push(b'\n');
        // A full disk loses log lines, never the container.
        let _ = self.file.write_all(&line);
    }

    /// Writes what the streams hold of unfinished lines (the container ended).
    pub fn finish(&mut self) {
        for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
            let rest = std::mem::take(&mut self.pending[i]);
            if !rest.is_empty() {
                self.entry(stream, &rest);
            }
        }
    }
}

impl Sink for JsonLog {
    fn write(&mut self, stream: Stream, bytes: &[u8]) {
        let i = stream as usize;
        let mut data = std::mem::take(&mut self.pending[i]);
        data.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(n) = data[start..].iter().position(|&b| b == b'\n') {
            let end = start + n + 1;
            for piece in data[start..end].chunks(MAX_LINE) {
                self.entry(stream, piece);
            }
            start = end;
        }
        let mut rest = data.split_off(start);
        while rest.len() >= MAX_LINE {
            let tail = rest.split_off(MAX_LINE);
            self.entry(stream, &rest);
            rest = tail;
        }
        self.pending[i] = rest;
    }
}

/// What `spawner logs` prints.
pub struct Show {
    /// Only the last N lines (None: all).
    pub tail: Option<usize>,
    /// Each line after its RFC 3339 time.
    pub timestamps: bool,
    /// Keep printing what comes while `running` says the container runs.
    pub follow: bool,
}

/// Prints the log at `path` to stdout and stderr, each line to the stream it came from.
pub fn show(path: &Path, how: &Show, running: &dyn Fn() -> bool) -> std::io::Result<()> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        // A container that never ran detached has written nothing.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !how.follow => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            while running() && !path.exists() {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            match std::fs::File::open(path) {
                Ok(f) => f,
                Err(_) => return Ok(()),
            }
        }
        Err(e) => return Err(e),
    };
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    let mut print = |line: &[u8]| -> std::io::Result<()> {
        let Ok(entry) = serde_json::from_slice::<Entry>(line) else { return Ok(()) };
        let sink: &mut dyn Write = if entry.stream == "stderr" { &mut err } else { &mut out };
        if how.timestamps {
            write!(sink, "{} ", entry.time)?;
        }
        sink.write_all(entry.log.as_bytes())?;
        sink.flush()
    };
    // The lines there are now (the last `tail` of them).
    let mut reader = std::io::BufReader::new(&mut file);
    let mut lines: std::collections::VecDeque<Vec<u8>> = Default::default();
    let mut consumed = 0u64;
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line)?;
        // A line still being written is read again later, whole.
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        consumed += n as u64;
        lines.push_back(line);
        if how.tail.is_some_and(|t| lines.len() > t) {
            lines.pop_front();
        }
    }
    for line in &lines {
        print(line)?;
    }
    if !how.follow {
        return Ok(());
    }
    // Then what comes, until the container's run has ended and nothing is left to read.
    drop(reader);
    file.seek(std::io::SeekFrom::Start(consumed))?;
    let mut pending = Vec::new();
    loop {
        let alive = running();
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk)?;
        pending.extend_from_slice(&chunk);
        while let Some(n) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=n).collect();
            print(&line)?;
        }
        if !alive && chunk.is_empty() {
            return Ok(());
        }
        if chunk.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(path: &Path) -> Vec<(String, String)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert!(v["time"].as_str().unwrap().ends_with('Z'));
                (v["stream"].as_str().unwrap().to_string(), v["log"].as_str().unwrap().to_string())
            })
            .collect()
    }

    #[test]
    fn lines_are_written_whole_per_stream() {
        let path = std::env::temp_dir().join(format!("spawner-jsonlog-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut log = JsonLog::create(&path).unwrap();
        log.write(Stream::Stdout, b"one\ntw");
        log.write(Stream::Stderr, b"oops\n");
        log.write(Stream::Stdout, b"o\n\"quoted\"\tand \xff\nunfinished");
        log.finish();
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            entries(&path),
            [
                s("stdout", "one\n"),
                s("stderr", "oops\n"),
                s("stdout", "two\n"),
                s("stdout", "\"quoted\"\tand \u{fffd}\n"),
                s("stdout", "unfinished")
            ]
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn long_lines_are_cut_as_docker_cuts_them() {
        let path = std::env::temp_dir().join(format!("spawner-jsonlog-long-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut log = JsonLog::create(&path).unwrap();
        let mut long = vec![b'x'; MAX_LINE * 2 + 10];
        long.push(b'\n');
        log.write(Stream::Stdout, &long[..100]);
        log.write(Stream::Stdout, &long[100..]);
        log.finish();
        let sizes: Vec<usize> = entries(&path).iter().map(|(_, l)| l.len()).collect();
        assert_eq!(sizes, [MAX_LINE, MAX_LINE, 11]);
        std::fs::remove_file(&path).unwrap();
    }
}
