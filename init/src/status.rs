//! The machine-readable exit record (`--status-fd N`): one JSON line for tools that embed init.

use core::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitRecord {
    /// What init exits with (after `-e` remapping).
    pub exit_code: i32,
    /// The signal that killed the main child, if one did.
    pub signal: Option<i32>,
    pub oom_killed: bool,
    pub oom_kills: u64,
}

impl ExitRecord {
    pub fn to_line(&self) -> crate::log::Line {
        let mut line = crate::log::Line::new();
        let _ = write!(line, "{{\"exit_code\":{},\"signal\":", self.exit_code);
        let _ = match self.signal {
            Some(s) => write!(line, "{s}"),
            None => line.write_str("null"),
        };
        let _ = writeln!(line, ",\"oom_killed\":{},\"oom_kills\":{}}}", self.oom_killed, self.oom_kills);
        line
    }

    pub fn write_to(&self, fd: i32) {
        crate::log::write_all(fd, self.to_line().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line() {
        let r = ExitRecord { exit_code: 137, signal: Some(9), oom_killed: true, oom_kills: 1 };
        assert_eq!(
            r.to_line().as_bytes(),
            b"{\"exit_code\":137,\"signal\":9,\"oom_killed\":true,\"oom_kills\":1}\n"
        );
        let r = ExitRecord { exit_code: 0, signal: None, oom_killed: false, oom_kills: 0 };
        assert_eq!(
            r.to_line().as_bytes(),
            b"{\"exit_code\":0,\"signal\":null,\"oom_killed\":false,\"oom_kills\":0}\n"
        );
    }
}
