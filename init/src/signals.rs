//! Signal names and the rules for which signals init passes on.

/// Names of the standard signals, indexed by number (Linux numbering on x86_64 and aarch64).
const NAMES: [&str; 32] = [
    "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE",
    "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ",
    "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

pub const MAX: i32 = 64;
pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;
pub const SIGCHLD: i32 = 17;
pub const SIGSTOP: i32 = 19;
pub const SIGPWR: i32 = 30;

/// Parses `TERM`, `SIGTERM`, `term` or `15` (any of 1..=64).
pub fn parse(text: &[u8]) -> Option<i32> {
    if let Some(n) = crate::args::parse_u64(text) {
        return (1..=MAX as u64).contains(&n).then_some(n as i32);
    }
    let name = match text {
        [b'S' | b's', b'I' | b'i', b'G' | b'g', rest @ ..] => rest,
        _ => text,
    };
    NAMES.iter().position(|n| !n.is_empty() && n.as_bytes().eq_ignore_ascii_case(name)).map(|i| i as i32)
}

/// The name for messages: `SIGTERM`, or `signal 40` for real-time signals.
pub struct Name(pub i32);

impl core::fmt::Display for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match NAMES.get(self.0 as usize) {
            Some(n) if !n.is_empty() => write!(f, "SIG{n}"),
            _ => write!(f, "signal {}", self.0),
        }
    }
}

/// Signals init receives but never passes on: SIGCHLD is init's own business, the synchronous ones
/// (a fault in init itself) make no sense for the child, and SIGTTIN/SIGTTOU are about init's own
/// terminal access (tini draws the same line).
pub fn is_forwardable(sig: i32) -> bool {
    !matches!(sig, 4 | 5 | 6 | 7 | 8 | 11 | 17 | 21 | 22 | 31) && (1..=MAX).contains(&sig)
}

/// `--rewrite FROM:TO`: what each incoming signal becomes (0 = dropped). Starts as identity.
#[derive(Clone, Copy, Debug)]
pub struct Rewrite([u8; MAX as usize + 1]);

impl Default for Rewrite {
    fn default() -> Self {
        let mut map = [0u8; MAX as usize + 1];
        let mut i = 0;
        while i < map.len() {
            map[i] = i as u8;
            i += 1;
        }
        Rewrite(map)
    }
}

impl Rewrite {
    pub fn set(&mut self, from: i32, to: i32) {
        self.0[from as usize] = to as u8;
    }

    /// The signal to deliver for `sig`, or None when it is to be dropped.
    pub fn apply(&self, sig: i32) -> Option<i32> {
        match self.0.get(sig as usize) {
            Some(0) => None,
            Some(&to) => Some(to as i32),
            None => Some(sig),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(parse(b"TERM"), Some(15));
        assert_eq!(parse(b"SIGKILL"), Some(9));
        assert_eq!(parse(b"sigusr1"), Some(10));
        assert_eq!(parse(b"15"), Some(15));
        assert_eq!(parse(b"64"), Some(64));
        assert_eq!(parse(b"65"), None);
        assert_eq!(parse(b"0"), None);
        assert_eq!(parse(b"NOPE"), None);
        assert_eq!(parse(b""), None);
    }

    #[test]
    fn forwards_catchable_asynchronous_signals_only() {
        assert!(is_forwardable(SIGTERM));
        assert!(is_forwardable(SIGHUP));
        assert!(is_forwardable(28));
        assert!(is_forwardable(40));
        assert!(!is_forwardable(SIGCHLD));
        assert!(!is_forwardable(11));
        assert!(!is_forwardable(0));
    }

    #[test]
    fn rewrite_maps_and_drops() {
        let mut r = Rewrite::default();
        r.set(15, 3);
        r.set(2, 0);
        assert_eq!(r.apply(15), Some(3));
        assert_eq!(r.apply(2), None);
        assert_eq!(r.apply(1), Some(1));
    }

    #[test]
    fn names_for_messages() {
        assert_eq!(std::format!("{}", Name(15)), "SIGTERM");
        assert_eq!(std::format!("{}", Name(40)), "signal 40");
    }
}
