//! A NUL-terminated path built on the stack (init does not allocate).

use core::ffi::CStr;

pub struct CPath {
    buf: [u8; 4096],
    len: usize,
}

impl CPath {
    pub const fn new() -> Self {
        CPath { buf: [0; 4096], len: 0 }
    }

    /// Appends `bytes`; returns false (and leaves the path unchanged) when it would not fit or when
    /// `bytes` holds a NUL.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        if self.len + bytes.len() >= self.buf.len() || bytes.contains(&0) {
            return false;
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        self.buf[self.len] = 0;
        true
    }

    pub fn push_u32(&mut self, mut n: u32) -> bool {
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..])
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.buf[0] = 0;
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn as_cstr(&self) -> &CStr {
        // The buffer always holds a NUL at `len` (see `push`), and `push` refuses interior NULs.
        CStr::from_bytes_until_nul(&self.buf[..=self.len]).unwrap_or(c"")
    }
}

impl Default for CPath {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads up to `buf.len()` bytes of a small file (procfs, cgroupfs) in one go.
pub fn read_small_file<'b>(path: &CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    use rustix::fs::{open, Mode, OFlags};
    let fd = open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
    Some(&buf[..len])
}
