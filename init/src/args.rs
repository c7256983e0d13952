//! Command line and environment switches. tini's short flags work unchanged (`-s -g -p SIG -e CODE
//! -v -w -l`), so init drops in where tini is used; the rest are long options of our own, each with an
//! `INIT_*` environment switch. Flags win over the environment.

use crate::signals::{self, Rewrite};

pub const USAGE: &str = "\
usage: init [options] [--] command [args...]

Runs command as its child, reaps every zombie, forwards signals, and exits with the
child's status (128+N when signal N killed it).

  -s               subreaper mode (automatic when init is not PID 1)  [INIT_SUBREAPER]
  -g               send forwarded signals to the child's process group [INIT_KILL_PROCESS_GROUP]
  -p SIG           parent-death signal for init itself                 [INIT_PDEATHSIG]
  -e CODE          exit 0 when the child exits with CODE (repeatable)   [INIT_REMAP_EXIT=1,2]
  -v               more logging (repeatable)                           [INIT_VERBOSITY=N]
  -w               log each reaped zombie                              [INIT_WARN_REAP]
  -l               show license and exit
  --wait-all       stay until every process has exited; a SIGTERM goes to all of them
                                                                       [INIT_WAIT_ALL]
  --grace SECS     after the main child exits (or after SIGTERM with --wait-all), SIGKILL
                   what is left after SECS (default 5)                 [INIT_GRACE]
  --rewrite F:T    deliver signal T when F arrives; T=0 drops F        [INIT_REWRITE=15:3,2:0]
  --setsid         run the child as a session leader, signal its session [INIT_SETSID]
  --term-delay S   hold SIGTERM for S seconds before forwarding it     [INIT_TERM_DELAY]
  --status-fd N    write a JSON exit record to fd N before exiting     [INIT_STATUS_FD]
  --vm             PID 1 of a VM: mount /proc, /sys, /dev…, power off at the end [INIT_VM]
                   (automatic when PID 1 and /proc is not mounted)
  -h, --help       this text;  --version  the version
";

/// Exit codes `-e` maps to 0.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct ExitRemap([u64; 4]);

impl ExitRemap {
    pub fn add(&mut self, code: u8) {
        self.0[code as usize / 64] |= 1 << (code % 64);
    }

    pub fn contains(&self, code: u8) -> bool {
        self.0[code as usize / 64] & (1 << (code % 64)) != 0
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub verbosity: u8,
    pub subreaper: bool,
    pub kill_group: bool,
    pub pdeathsig: Option<i32>,
    pub remap: ExitRemap,
    pub warn_on_reap: bool,
    pub wait_all: bool,
    pub grace_ms: u64,
    pub rewrite: Rewrite,
    pub setsid: bool,
    pub term_delay_ms: u64,
    pub status_fd: Option<i32>,
    pub vm: bool,
    /// Index (in the arguments after argv[0]) where the command starts.
    pub command: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            verbosity: 1,
            subreaper: false,
            kill_group: false,
            pdeathsig: None,
            remap: ExitRemap::default(),
            warn_on_reap: false,
            wait_all: false,
            grace_ms: 5000,
            rewrite: Rewrite::default(),
            setsid: false,
            term_delay_ms: 0,
            status_fd: None,
            vm: false,
            command: 0,
        }
    }
}

pub enum Action {
    Run(Config),
    Help,
    Version,
    License,
}

/// A usage error: what is wrong, and the argument or variable it is about.
#[derive(Debug, PartialEq, Eq)]
pub struct ArgError<'a> {
    pub what: &'static str,
    pub arg: &'a [u8],
}

fn err<'a, T>(what: &'static str, arg: &'a [u8]) -> Result<T, ArgError<'a>> {
    Err(ArgError { what, arg })
}

pub fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 {
        return None;
    }
    text.iter().try_fold(0u64, |n, &b| b.is_ascii_digit().then(|| n * 10 + (b - b'0') as u64))
}

/// Seconds as `5`, `0.5` or `1.25`, in milliseconds.
pub fn parse_seconds(text: &[u8]) -> Option<u64> {
    let (whole, frac) = match text.iter().position(|&b| b == b'.') {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, &b""[..]),
    };
    if frac.len() > 3 || (whole.is_empty() && frac.is_empty()) {
        return None;
    }
    let whole = if whole.is_empty() { 0 } else { parse_u64(whole)? };
    let mut ms = 0;
    for i in 0..3 {
        let digit = match frac.get(i) {
            Some(d) if d.is_ascii_digit() => (d - b'0') as u64,
            Some(_) => return None,
            None => 0,
        };
        ms = ms * 10 + digit;
    }
    whole.checked_mul(1000)?.checked_add(ms)
}

fn parse_code(text: &[u8]) -> Option<u8> {
    parse_u64(text).filter(|&n| n <= 255).map(|n| n as u8)
}

fn parse_rewrite(text: &[u8]) -> Option<(i32, i32)> {
    let colon = text.iter().position(|&b| b == b':')?;
    let from = signals::parse(&text[..colon])?;
    let to_text = &text[colon + 1..];
    let to = if to_text == b"0" { 0 } else { signals::parse(to_text)? };
    Some((from, to))
}

fn truthy(value: &[u8]) -> bool {
    !value.is_empty() && value != b"0"
}

fn split_commas(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b',').filter(|s| !s.is_empty())
}

/// Applies the `INIT_*` (and tini's `TINI_*`) environment switches.
fn apply_env<'a>(cfg: &mut Config, getenv: &dyn Fn(&[u8]) -> Option<&'a [u8]>) -> Result<(), ArgError<'a>> {
    let flag = |names: &[&[u8]]| names.iter().any(|n| getenv(n).is_some_and(truthy));
    cfg.subreaper |= flag(&[b"INIT_SUBREAPER", b"TINI_SUBREAPER"]);
    cfg.kill_group |= flag(&[b"INIT_KILL_PROCESS_GROUP", b"TINI_KILL_PROCESS_GROUP"]);
    cfg.warn_on_reap |= flag(&[b"INIT_WARN_REAP"]);
    cfg.wait_all |= flag(&[b"INIT_WAIT_ALL"]);
    cfg.setsid |= flag(&[b"INIT_SETSID"]);
    cfg.vm |= flag(&[b"INIT_VM"]);
    for name in [&b"INIT_VERBOSITY"[..], b"TINI_VERBOSITY"] {
        if let Some(v) = getenv(name) {
            cfg.verbosity =
                parse_u64(v).map(|n| n.min(9) as u8).ok_or(ArgError { what: "bad verbosity", arg: v })?;
        }
    }
    if let Some(v) = getenv(b"INIT_PDEATHSIG") {
        cfg.pdeathsig =
            Some(signals::parse(v).ok_or(ArgError { what: "unknown signal in INIT_PDEATHSIG", arg: v })?);
    }
    if let Some(v) = getenv(b"INIT_REMAP_EXIT") {
        for code in split_commas(v) {
            cfg.remap.add(
                parse_code(code).ok_or(ArgError { what: "bad exit code in INIT_REMAP_EXIT", arg: code })?,
            );
        }
    }
    if let Some(v) = getenv(b"INIT_GRACE") {
        cfg.grace_ms = parse_seconds(v).ok_or(ArgError { what: "bad seconds in INIT_GRACE", arg: v })?;
    }
    if let Some(v) = getenv(b"INIT_TERM_DELAY") {
        cfg.term_delay_ms =
            parse_seconds(v).ok_or(ArgError { what: "bad seconds in INIT_TERM_DELAY", arg: v })?;
    }
    if let Some(v) = getenv(b"INIT_REWRITE") {
        for pair in split_commas(v) {
            let (from, to) =
                parse_rewrite(pair).ok_or(ArgError { what: "bad FROM:TO in INIT_REWRITE", arg: pair })?;
            cfg.rewrite.set(from, to);
        }
    }
    if let Some(v) = getenv(b"INIT_STATUS_FD") {
        cfg.status_fd = Some(
            parse_u64(v)
                .filter(|&n| n <= i32::MAX as u64)
                .ok_or(ArgError { what: "bad fd in INIT_STATUS_FD", arg: v })? as i32,
        );
    }
    Ok(())
}

/// Parses the arguments after argv[0]. Options stop at `--` or at the first non-option (so
/// `init ls -l` runs `ls -l`, as with tini).
pub fn parse<'a>(
    args: &[&'a [u8]],
    getenv: &dyn Fn(&[u8]) -> Option<&'a [u8]>,
) -> Result<Action, ArgError<'a>> {
    let mut cfg = Config::default();
    apply_env(&mut cfg, getenv)?;
    let mut i = 0;
    // The value of an option: the rest of a short cluster (`-e143`), `--opt=value`, or the next argument.
    let value = |i: &mut usize, inline: Option<&'a [u8]>, opt: &'a [u8]| -> Result<&'a [u8], ArgError<'a>> {
        match inline {
            Some(v) => Ok(v),
            None => {
                *i += 1;
                args.get(*i).copied().ok_or(ArgError { what: "option needs a value", arg: opt })
            }
        }
    };
    while i < args.len() {
        let arg = args[i];
        if arg == b"--" {
            i += 1;
            break;
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let (name, inline) = match long.iter().position(|&b| b == b'=') {
                Some(eq) => (&long[..eq], Some(&long[eq + 1..])),
                None => (long, None),
            };
            match name {
                b"help" => return Ok(Action::Help),
                b"version" => return Ok(Action::Version),
                b"wait-all" => cfg.wait_all = true,
                b"setsid" => cfg.setsid = true,
                b"vm" => cfg.vm = true,
                b"grace" => {
                    let v = value(&mut i, inline, arg)?;
                    cfg.grace_ms =
                        parse_seconds(v).ok_or(ArgError { what: "bad seconds for --grace", arg: v })?;
                }
                b"term-delay" => {
                    let v = value(&mut i, inline, arg)?;
                    cfg.term_delay_ms =
                        parse_seconds(v).ok_or(ArgError { what: "bad seconds for --term-delay", arg: v })?;
                }
                b"rewrite" => {
                    let v = value(&mut i, inline, arg)?;
                    let (from, to) =
                        parse_rewrite(v).ok_or(ArgError { what: "bad FROM:TO for --rewrite", arg: v })?;
                    cfg.rewrite.set(from, to);
                }
                b"status-fd" => {
                    let v = value(&mut i, inline, arg)?;
                    let fd = parse_u64(v).filter(|&n| n <= i32::MAX as u64);
                    cfg.status_fd =
                        Some(fd.ok_or(ArgError { what: "bad fd for --status-fd", arg: v })? as i32);
                }
                _ => return err("unknown option", arg),
            }
            i += 1;
            continue;
        }
        if arg.len() < 2 || arg[0] != b'-' {
            break;
        }
        // A cluster of short flags: `-vvg`, `-e143`, `-p SIGKILL`.
        let mut j = 1;
        while j < arg.len() {
            let c = arg[j];
            j += 1;
            let rest = (j < arg.len()).then(|| &arg[j..]);
            match c {
                b'h' => return Ok(Action::Help),
                b'l' => return Ok(Action::License),
                b's' => cfg.subreaper = true,
                b'g' => cfg.kill_group = true,
                b'w' => cfg.warn_on_reap = true,
                b'v' => cfg.verbosity = cfg.verbosity.saturating_add(1),
                b'e' => {
                    let v = value(&mut i, rest, arg)?;
                    cfg.remap.add(
                        parse_code(v).ok_or(ArgError { what: "exit code for -e must be 0-255", arg: v })?,
                    );
                    break;
                }
                b'p' => {
                    let v = value(&mut i, rest, arg)?;
                    cfg.pdeathsig =
                        Some(signals::parse(v).ok_or(ArgError { what: "unknown signal for -p", arg: v })?);
                    break;
                }
                _ => return err("unknown option", arg),
            }
        }
        i += 1;
    }
    if i >= args.len() {
        return err("missing command", b"");
    }
    cfg.command = i;
    Ok(Action::Run(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&'static str], env: &[(&'static str, &'static str)]) -> Result<Config, ArgError<'static>> {
        let args: std::vec::Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let env = env.to_vec();
        let getenv =
            move |name: &[u8]| env.iter().find(|(k, _)| k.as_bytes() == name).map(|(_, v)| v.as_bytes());
        match parse(&args, &getenv)? {
            Action::Run(cfg) => Ok(cfg),
            _ => panic!("not a run"),
        }
    }

    #[test]
    fn command_starts_after_double_dash_or_first_word() {
        assert_eq!(run(&["--", "sleep", "1"], &[]).unwrap().command, 1);
        assert_eq!(run(&["sleep", "-v"], &[]).unwrap().command, 0);
        assert_eq!(run(&["-v", "--", "-weird"], &[]).unwrap().command, 2);
        assert_eq!(run(&["-s", "-g", "cmd"], &[]).unwrap().command, 2);
    }

    #[test]
    fn tini_short_flags() {
        let cfg = run(&["-sgvvw", "-e", "143", "-e2", "-p", "SIGKILL", "--", "x"], &[]).unwrap();
        assert!(cfg.subreaper && cfg.kill_group && cfg.warn_on_reap);
        assert_eq!(cfg.verbosity, 3);
        assert!(cfg.remap.contains(143) && cfg.remap.contains(2) && !cfg.remap.contains(0));
        assert_eq!(cfg.pdeathsig, Some(9));
    }

    #[test]
    fn long_options() {
        let cfg = run(
            &[
                "--wait-all",
                "--grace=0.25",
                "--rewrite",
                "TERM:QUIT",
                "--rewrite=2:0",
                "--setsid",
                "--term-delay",
                "3",
                "--status-fd",
                "7",
                "--vm",
                "cmd",
            ],
            &[],
        )
        .unwrap();
        assert!(cfg.wait_all && cfg.setsid && cfg.vm);
        assert_eq!(cfg.grace_ms, 250);
        assert_eq!(cfg.term_delay_ms, 3000);
        assert_eq!(cfg.status_fd, Some(7));
        assert_eq!(cfg.rewrite.apply(15), Some(3));
        assert_eq!(cfg.rewrite.apply(2), None);
    }

    #[test]
    fn environment_switches_and_flags_win() {
        let env = [
            ("INIT_WAIT_ALL", "1"),
            ("TINI_SUBREAPER", "yes"),
            ("INIT_GRACE", "2"),
            ("INIT_REMAP_EXIT", "1,143"),
            ("INIT_REWRITE", "15:3"),
            ("INIT_STATUS_FD", "9"),
            ("INIT_SETSID", "0"),
        ];
        let cfg = run(&["--grace", "1", "cmd"], &env).unwrap();
        assert!(cfg.wait_all && cfg.subreaper && !cfg.setsid);
        assert_eq!(cfg.grace_ms, 1000);
        assert!(cfg.remap.contains(1) && cfg.remap.contains(143));
        assert_eq!(cfg.rewrite.apply(15), Some(3));
        assert_eq!(cfg.status_fd, Some(9));
    }

    #[test]
    fn errors_name_the_argument() {
        assert_eq!(run(&["-x", "cmd"], &[]).unwrap_err().arg, b"-x");
        assert_eq!(run(&["-e", "256", "cmd"], &[]).unwrap_err().arg, b"256");
        assert_eq!(run(&["-p", "NOPE", "cmd"], &[]).unwrap_err().arg, b"NOPE");
        assert_eq!(run(&["--grace"], &[]).unwrap_err().what, "option needs a value");
        assert_eq!(run(&["-v"], &[]).unwrap_err().what, "missing command");
        assert_eq!(run(&[], &[]).unwrap_err().what, "missing command");
        assert_eq!(run(&["--bogus", "x"], &[]).unwrap_err().arg, b"--bogus");
        assert_eq!(run(&["cmd"], &[("INIT_GRACE", "soon")]).unwrap_err().arg, b"soon");
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds(b"5"), Some(5000));
        assert_eq!(parse_seconds(b"0.5"), Some(500));
        assert_eq!(parse_seconds(b".05"), Some(50));
        assert_eq!(parse_seconds(b"1.2345"), None);
        assert_eq!(parse_seconds(b"x"), None);
        assert_eq!(parse_seconds(b""), None);
    }
}
