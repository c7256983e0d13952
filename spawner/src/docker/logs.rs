//! A detached container's output, in Docker's json-file format: one JSON object a line, `{"log":
//! "…\n","stream":"stdout","time":"…"}`, written by its monitor (see `super::monitor`) and read by
//! `spawner logs`. A line longer than 16 KiB is cut into pieces, as Docker cuts it; a line the
//! container left unfinished is written without its newline when it ends. With `--log-opt
//! max-size` the file is rotated as Docker's json-file driver rotates it: `json.log` becomes
//! `json.log.1` (the older ones move up, `max-file` of them are kept in all), and `logs` reads
//! them oldest first.

use crate::container::{Sink, Stream};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Docker's longest log message: a longer line is written in pieces.
const MAX_LINE: usize = 16 * 1024;

#[derive(Serialize, Deserialize)]
struct Entry<'a> {
    log: std::borrow::Cow<'a, str>,
    stream: &'a str,
    time: &'a str,
}

/// json-file's `--log-opt max-size=SIZE` and `max-file=N`: the log is rotated once it holds
/// `max_size` bytes, and `max_files` files are kept (the current one included). Default: one file
/// that grows without limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    pub max_size: Option<u64>,
    /// 0 is taken as 1.
    pub max_files: u32,
}

impl Rotation {
    /// `--log-opt KEY=VALUE`s, as Docker's json-file driver takes them (sizes are decimal: `10k`
    /// is 10000 bytes).
    pub fn parse(opts: &[String]) -> Result<Rotation, String> {
        let mut rotation = Rotation { max_size: None, max_files: 1 };
        for opt in opts {
            let (key, value) =
                opt.split_once('=').ok_or_else(|| format!("--log-opt {opt}: give KEY=VALUE"))?;
            match key {
                "max-size" => {
                    let size = human_bytes(value)
                        .ok_or_else(|| format!("--log-opt max-size={value}: give a size (10k, 5m, 1g)"))?;
                    if size == 0 {
                        return Err("max-size must be a positive number".into());
                    }
                    rotation.max_size = Some(size);
                }
                "max-file" => {
                    let n: i64 =
                        value.parse().map_err(|_| format!("--log-opt max-file={value}: give a number"))?;
                    if n < 1 {
                        return Err("max-file cannot be less than 1".into());
                    }
                    rotation.max_files = u32::try_from(n).unwrap_or(u32::MAX);
                }
                other => {
                    return Err(format!(
                        "unknown log opt '{other}' for json-file log driver (spawner takes max-size and max-file)"
                    ))
                }
            }
        }
        Ok(rotation)
    }
}

/// A size as go-units' `FromHumanSize` reads it: `10`, `10k`, `1.5MB`, `2g` (decimal units).
fn human_bytes(s: &str) -> Option<u64> {
    let number_len = s.bytes().take_while(|c| c.is_ascii_digit() || *c == b'.').count();
    let number: f64 = s[..number_len].parse().ok()?;
    let unit = s[number_len..].trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let scale = match unit {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "p" => 1e15,
        _ => return None,
    };
    Some((number * scale) as u64)
}

/// `json.log.N`: the Nth newest rotated file.
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The writer: what a stream has of an unfinished line is held until its newline comes.
pub struct JsonLog {
    file: std::fs::File,
    path: PathBuf,
    /// The bytes in `file`.
    size: u64,
    rotation: Rotation,
    pending: [Vec<u8>; 2],
    /// Whole lines not yet in `file`: what one read from the container gave, written at once.
    out: Vec<u8>,
    /// The time of the lines being made (when their bytes were read).
    time: String,
}

impl JsonLog {
    /// The log at `path` (added to when it exists: a restarted container's), never rotated.
    pub fn create(path: &Path) -> std::io::Result<JsonLog> {
        JsonLog::with_rotation(path, Rotation::default())
    }

    pub fn with_rotation(path: &Path, rotation: Rotation) -> std::io::Result<JsonLog> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog {
            file,
            path: path.to_path_buf(),
            size,
            rotation,
            pending: [Vec::new(), Vec::new()],
            out: Vec::new(),
            time: String::new(),
        })
    }

    /// As Docker: once the file has reached the size, before the next line goes in, it becomes
    /// `json.log.1` (the others move up one, the oldest beyond max-file goes) and a new one starts.
    fn rotate_if_full(&mut self) -> std::io::Result<()> {
        let Some(max) = self.rotation.max_size else { return Ok(()) };
        if self.size < max {
            return Ok(());
        }
        // In the container's directory as it is named now (`rename` while it runs).
        if let Some(path) = super::path_of(std::os::fd::AsFd::as_fd(&self.file)) {
            self.path = path;
        }
        let keep = self.rotation.max_files.max(1);
        if keep > 1 {
            for n in (1..keep - 1).rev() {
                match std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        } else {
            // A reader following the old file sees it replaced and moves to the new one.
            std::fs::remove_file(&self.path)?;
        }
        self.file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = 0;
        Ok(())
    }

    fn entry(&mut self, stream: Stream, bytes: &[u8]) {
        let entry = Entry {
            log: String::from_utf8_lossy(bytes),
            stream: match stream {
                Stream::Stdout => "stdout",
                Stream::Stderr => "stderr",
            },
            time: &self.time,
        };
        let mut line = serde_json::to_vec(&entry).unwrap_or_default();
        line.push(b'\n');
        if self.rotation.max_size.is_some_and(|max| self.size >= max) {
            self.flush();
            if let Err(e) = self.rotate_if_full() {
                log::warn!("rotate {}: {e}", self.path.display());
            }
        }
        self.size += line.len() as u64;
        self.out.extend_from_slice(&line);
    }

    /// Writes the lines made since the last time. A full disk loses log lines, never the container.
    fn flush(&mut self) {
        let _ = self.file.write_all(&self.out);
        self.out.clear();
    }

    /// Writes what the streams hold of unfinished lines (the container ended).
    pub fn finish(&mut self) {
        self.time = crate::clock::now_rfc3339();
        for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
            let rest = std::mem::take(&mut self.pending[i]);
            if !rest.is_empty() {
                self.entry(stream, &rest);
            }
        }
        self.flush();
    }
}

/// A foreground container's output: kept in its log, and shown on spawner's stdout and stderr
/// (the streams `show` says: `-a` may leave one out).
pub struct Attached<'a> {
    pub log: &'a mut JsonLog,
    pub show: [bool; 2],
}

impl Sink for Attached<'_> {
    fn write(&mut self, stream: Stream, bytes: &[u8]) -> bool {
        self.log.write(stream, bytes);
        let to = match stream {
            Stream::Stdout => rustix::stdio::stdout(),
            Stream::Stderr => rustix::stdio::stderr(),
        };
        !self.show[stream as usize] || crate::container::tty::write_all(to, bytes)
    }
}

impl Sink for JsonLog {
    fn write(&mut self, stream: Stream, bytes: &[u8]) -> bool {
        self.time = crate::clock::now_rfc3339();
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
        self.flush();
        true
    }
}

/// What `spawner logs` prints.
#[derive(Default)]
pub struct Show {
    /// Only the last N lines (None: all).
    pub tail: Option<usize>,
    /// Each line after its RFC 3339 time.
    pub timestamps: bool,
    /// Keep printing what comes while `running` says the container runs.
    pub follow: bool,
    /// Only lines written at or after this time, at or before that one (ns since the epoch).
    pub since: Option<i128>,
    pub until: Option<i128>,
}

/// The (device, inode) of a file: a rotation replaces the file at the log's path.
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// Prints the log at `path` (its rotated files first, oldest first) to stdout and stderr, each
/// line to the stream it came from.
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
        if how.since.is_some() || how.until.is_some() {
            let Some(time) = crate::clock::parse_rfc3339(entry.time) else { return Ok(()) };
            if how.since.is_some_and(|since| time < since) || how.until.is_some_and(|until| time > until) {
                return Ok(());
            }
        }
        let sink: &mut dyn Write = if entry.stream == "stderr" { &mut err } else { &mut out };
        if how.timestamps {
            write!(sink, "{} ", entry.time)?;
        }
        sink.write_all(entry.log.as_bytes())?;
        sink.flush()
    };
    // The lines there are now (the last `tail` of them): the rotated files', then the current's.
    let mut lines: std::collections::VecDeque<Vec<u8>> = Default::default();
    let keep = |line: Vec<u8>, lines: &mut std::collections::VecDeque<Vec<u8>>| {
        lines.push_back(line);
        if how.tail.is_some_and(|t| lines.len() > t) {
            lines.pop_front();
        }
    };
    let older = (1..).take_while(|n| rotated(path, *n).exists()).count() as u32;
    for n in (1..=older).rev() {
        let Ok(old) = std::fs::File::open(rotated(path, n)) else { continue };
        for line in std::io::BufReader::new(old).split(b'\n') {
            let mut line = line?;
            line.push(b'\n');
            keep(line, &mut lines);
        }
    }
    let mut reader = std::io::BufReader::new(&mut file);
    let mut consumed = 0u64;
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line)?;
        // A line still being written is read again later, whole.
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        consumed += n as u64;
        keep(line, &mut lines);
    }
    for line in &lines {
        print(line)?;
    }
    if !how.follow {
        return Ok(());
    }
    // Then what comes, until the container's run has ended and nothing is left to read (or
    // `until` has passed); a rotation is followed to the new file.
    drop(reader);
    file.seek(std::io::SeekFrom::Start(consumed))?;
    let mut pending = Vec::new();
    loop {
        let alive = running() && how.until.is_none_or(|until| crate::clock::now_ns() as i128 <= until);
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk)?;
        if chunk.is_empty() {
            let replaced = match (std::fs::metadata(path), file.metadata()) {
                (Ok(now), Ok(ours)) => identity(&now) != identity(&ours),
                _ => false,
            };
            if replaced {
                // What was written to the old file before it was replaced, then the new one.
                file.read_to_end(&mut chunk)?;
                if let Ok(new) = std::fs::File::open(path) {
                    file = new;
                }
            }
        }
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
    fn the_log_is_rotated_at_its_size_and_read_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let rotation = Rotation::parse(&["max-size=200".into(), "max-file=3".into()]).unwrap();
        assert_eq!(rotation, Rotation { max_size: Some(200), max_files: 3 });
        let mut log = JsonLog::with_rotation(&path, rotation).unwrap();
        for i in 0..20 {
            log.write(Stream::Stdout, format!("line {i}\n").as_bytes());
        }
        // Each entry is about 70 bytes: three a file, the oldest ones gone.
        let mut kept: Vec<String> = Vec::new();
        for p in [rotated(&path, 2), rotated(&path, 1), path.clone()] {
            assert!(std::fs::metadata(&p).unwrap().len() <= 200 + 100, "{}", p.display());
            kept.extend(entries(&p).into_iter().map(|(_, l)| l));
        }
        assert!(!rotated(&path, 3).exists(), "max-file counts the current file");
        let want: Vec<String> = (20 - kept.len()..20).map(|i| format!("line {i}\n")).collect();
        assert_eq!(kept, want);
        assert!(kept.len() >= 6 && kept.len() < 20);
        for bad in ["max-size=0", "max-file=0", "max-size=lots", "compress=true", "max-size"] {
            assert!(Rotation::parse(&[bad.into()]).is_err(), "{bad}");
        }
        assert_eq!(human_bytes("10k"), Some(10_000));
        assert_eq!(human_bytes("1.5MB"), Some(1_500_000));
        assert_eq!(Rotation::parse(&[]).unwrap().max_size, None);
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
