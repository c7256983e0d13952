//! Signals by name or number, as users and engines give them.

/// A signal by number or name (`9`, `KILL`, `SIGKILL`), as engines and runtime-tools send them.
pub fn parse(text: &str) -> Result<i32, String> {
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=64).contains(&n) { Ok(n) } else { Err(format!("invalid signal: {text}")) };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE",
        "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ",
        "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    if name == "IOT" {
        return Ok(6);
    }
    NAMES
        .iter()
        .position(|n| *n == name)
        .map(|i| i as i32 + 1)
        .ok_or_else(|| format!("invalid signal: {text}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_and_numbers() {
        assert_eq!(super::parse("9"), Ok(9));
        assert_eq!(super::parse("SIGTERM"), Ok(15));
        assert_eq!(super::parse("quit"), Ok(3));
        assert!(super::parse("SIGNOPE").is_err());
        assert!(super::parse("65").is_err());
    }
}
