//! Resource limits with Docker's and OCI's meaning ([`Limits`]), checked before anything is
//! created ([`Limits::validate`]), and resolved into [`Settings`]: the values the cgroup files are
//! given, for a new cgroup or for an update of a running one. [`super::v1`] and [`super::v2`] turn
//! settings into files; nothing here touches the filesystem.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use super::{DeviceRule, Error, Result};

/// The cpu period written with every `--cpus` quota (v1 `cpu.cfs_period_us`, second field of v2
/// `cpu.max`). 100 ms is the kernel default and what Docker uses for `--cpus`.
pub const CPU_PERIOD_US: u64 = 100_000;

/// The kernel rejects quotas below 1 ms; with a 100 ms period that is `--cpus 0.01`, which is
/// also Docker's documented minimum.
const MIN_CPU_QUOTA_US: u64 = 1_000;

/// The CFS periods the kernel accepts: 1 ms to 1 s.
const CPU_PERIOD_RANGE: RangeInclusive<u64> = 1_000..=1_000_000;

/// Docker refuses memory limits below 6 MiB: a container cannot even start its init below that.
pub const MIN_MEMORY: u64 = 6 << 20;

/// The v1 `cpu.shares` the kernel keeps (it clamps anything else into this range). Docker clamps
/// `--cpu-shares` to it before runc sees the value, and runc's conversion to v2 `cpu.weight`
/// maps exactly this range onto 1-10000.
const CPU_SHARES_RANGE: RangeInclusive<u64> = 2..=262_144;

/// OCI `blockIO.weight` and Docker's `--blkio-weight`.
const BLOCK_IO_WEIGHT_RANGE: RangeInclusive<u16> = 10..=1000;

/// v1 `memory.swappiness` takes 0-100.
const MAX_SWAPPINESS: u64 = 100;

/// cgroup2 files that are not limits: writing them through `unified` would move processes, kill
/// or freeze the container, or give the container cgroup children, behind the runtime's back.
const UNIFIED_REFUSED: [&str; 6] = [
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.kill",
    "cgroup.freeze",
    "cgroup.subtree_control",
    "cgroup.type",
];

/// Resource limits with Docker's meaning. `None` (and the "unlimited" values noted per field)
/// leave the kernel default, which is unlimited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// `--memory`: bytes of RAM. `Some(0)` means no limit, as in Docker.
    pub memory: Option<u64>,
    /// `--memory-swap`: memory *plus* swap, in bytes; `-1` is unlimited swap, `0` is "not set".
    /// Not set while `memory` is set gives memory+swap = 2 x memory (swap as large as memory),
    /// Docker's default. Setting it equal to `memory` disables swap. Needs `memory`.
    pub memory_swap: Option<i64>,
    /// `--pids-limit`: maximum number of tasks. `0` or negative means unlimited, as in Docker.
    pub pids: Option<i64>,
    /// `--cpus`: CPU time as a number of CPUs, `0.5` is half of one CPU. `0` means no limit.
    pub cpus: Option<f64>,
    /// Device access rules (OCI `linux.resources.devices`), later rules overriding earlier ones;
    /// Docker's are [`super::docker_default`]. Empty: no device control at all.
    pub devices: Vec<DeviceRule>,
    /// OCI `memory.reservation`, Docker's `--memory-reservation`: a soft limit in bytes (v1
    /// `memory.soft_limit_in_bytes`, v2 `memory.low`), at most `memory`. `0` is none.
    pub memory_reservation: Option<u64>,
    /// OCI `memory.swappiness` (0-100; v1 `memory.swappiness`; ignored on v2 with a -v line, as
    /// runc does: v2 has no per-cgroup swappiness).
    pub memory_swappiness: Option<u64>,
    /// OCI `cpu.shares`, Docker's `--cpu-shares` (v1 `cpu.shares`; v2 `cpu.weight`, converted as
    /// runc does), clamped to 2-262144 as Docker does. `0` is not set.
    pub cpu_shares: Option<u64>,
    /// OCI `cpu.quota` and `cpu.period`, in microseconds: the precise form of `cpus` (a quota of
    /// -1 is no limit, `0` or none leaves it; a period of 1 ms to 1 s, `0` or none leaves it).
    /// Either set together with `cpus` is an error, as in Docker.
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    /// OCI `cpu.cpus` / `cpu.mems`, Docker's `--cpuset-cpus` / `--cpuset-mems`: cpuset lists
    /// such as `0-3,5`. Empty is not set.
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// OCI `blockIO.weight` (10-1000; v1 `blkio.weight` or `blkio.bfq.weight`, v2
    /// `io.bfq.weight` or `io.weight`). `0` is not set.
    pub block_io_weight: Option<u16>,
    /// OCI `unified`: cgroup v2 files of the container's cgroup written as given, after
    /// everything else (so they win). Keys are file names of limits (no `/`, `..`, or files such
    /// as `cgroup.procs`); v2 only: an error on v1.
    pub unified: BTreeMap<String, String>,
}

/// What the memory+swap limit resolves to once Docker's defaults are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SwapTotal {
    Unlimited,
    /// memory + swap, in bytes.
    Bytes(u64),
}

/// A limit as a cgroup file takes it: a number, or no limit at all (v1 `-1`, v2 `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Max {
    Unlimited,
    Value(u64),
}

/// Whether limits go to a new cgroup or change a running one. They differ in what "no limit"
/// means for the files: nothing to write on a new cgroup (unlimited is the kernel's default), but
/// an explicit unlimited on an update, to lift a limit set earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Apply {
    Create,
    Update,
}

/// The values to write, resolved from [`Limits`] with Docker's defaults and units; `None` leaves a
/// file as it is. Device rules are not here: they are set once, at creation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings<'a> {
    pub memory: Option<Max>,
    pub memory_swap: Option<SwapTotal>,
    /// The swap limit was asked for, not Docker's default: only then is a host without swap
    /// accounting worth a warning.
    pub memory_swap_explicit: bool,
    /// Bytes; `0` is no reservation (v1 `-1`, v2 `0`).
    pub memory_reservation: Option<u64>,
    pub memory_swappiness: Option<u64>,
    pub pids: Option<Max>,
    /// Clamped into [`CPU_SHARES_RANGE`].
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<Max>,
    pub cpu_period: Option<u64>,
    /// The quota comes from `--cpus` (for error messages: "cpus limit").
    pub cpu_quota_from_cpus: bool,
    pub cpuset_cpus: Option<&'a str>,
    pub cpuset_mems: Option<&'a str>,
    pub block_io_weight: Option<u16>,
    pub unified: &'a BTreeMap<String, String>,
}

impl Limits {
    /// Check the limits the way `docker run` and runc do, before anything is created.
    pub fn validate(&self) -> Result<()> {
        let invalid = |msg: String| Err(Error::Invalid(msg));
        let memory = self.memory_max();
        if let Some(m) = memory {
            if m < MIN_MEMORY {
                return invalid(format!(
                    "memory limit {m} is below the minimum of {MIN_MEMORY} bytes (6 MiB)"
                ));
            }
        }
        match (self.memory_swap, memory) {
            (None | Some(0), _) => {}
            (Some(_), None) => return invalid("a memory-swap limit needs a memory limit too".into()),
            (Some(-1), Some(_)) => {}
            (Some(s), Some(m)) if s < 0 || (s as u64) < m => {
                return invalid(format!(
                    "memory-swap limit {s} must be -1 (unlimited) or at least the memory limit \
                     {m}: it is memory plus swap"
                ))
            }
            (Some(_), Some(_)) => {}
        }
        if let (Some(r), Some(m)) = (self.memory_reservation, memory) {
            if r > m {
                return invalid(format!("memory reservation {r} must not be above the memory limit {m}"));
            }
        }
        if let Some(s) = self.memory_swappiness.filter(|&s| s > MAX_SWAPPINESS) {
            return invalid(format!("memory swappiness {s} must be 0-{MAX_SWAPPINESS}"));
        }
        if let Some(c) = self.cpus {
            if !c.is_finite() || c < 0.0 {
                return invalid(format!("cpus {c} must be a non-negative number"));
            }
            if c > 0.0 && cpu_quota_us(c) < MIN_CPU_QUOTA_US {
                return invalid(format!("cpus {c} is below the minimum of 0.01"));
            }
            // --cpus sets both quota and period; Docker refuses it beside either as well.
            if self.cpu_quota.is_some() || self.cpu_period.is_some() {
                return invalid(
                    "cpus and cpu quota/period cannot both be set: cpus is a quota per 100 ms".into(),
                );
            }
        }
        match self.cpu_quota {
            None | Some(0) | Some(-1) => {}
            Some(q) if q < 0 || (q as u64) < MIN_CPU_QUOTA_US => {
                return invalid(format!(
                    "cpu quota {q} must be -1 (unlimited) or at least {MIN_CPU_QUOTA_US} microseconds"
                ))
            }
            Some(_) => {}
        }
        if let Some(p) = self.cpu_period.filter(|&p| p != 0 && !CPU_PERIOD_RANGE.contains(&p)) {
            return invalid(format!(
                "cpu period {p} must be {}-{} microseconds",
                CPU_PERIOD_RANGE.start(),
                CPU_PERIOD_RANGE.end()
            ));
        }
        for (what, list) in [("cpuset cpus", &self.cpuset_cpus), ("cpuset mems", &self.cpuset_mems)] {
            if let Some(list) = list.as_deref().filter(|l| !l.is_empty()) {
                validate_cpuset_list(what, list)?;
            }
        }
        if let Some(w) = self.block_io_weight.filter(|&w| w != 0 && !BLOCK_IO_WEIGHT_RANGE.contains(&w)) {
            return invalid(format!(
                "block IO weight {w} must be {}-{}",
                BLOCK_IO_WEIGHT_RANGE.start(),
                BLOCK_IO_WEIGHT_RANGE.end()
            ));
        }
        for (key, value) in &self.unified {
            validate_unified(key, value)?;
        }
        self.devices.iter().try_for_each(DeviceRule::validate)
    }

    /// The memory limit to write on a new cgroup, if any.
    pub(crate) fn memory_max(&self) -> Option<u64> {
        self.memory.filter(|&m| m > 0)
    }

    /// Memory plus swap, with Docker's default of twice the memory when only memory is set.
    pub(crate) fn swap_total(&self) -> Option<SwapTotal> {
        let memory = self.memory_max()?;
        Some(match self.memory_swap {
            None | Some(0) => SwapTotal::Bytes(memory.saturating_mul(2)),
            Some(s) if s < 0 => SwapTotal::Unlimited,
            Some(s) => SwapTotal::Bytes(s as u64),
        })
    }

    /// The pids limit to write on a new cgroup, if any.
    pub(crate) fn pids_max(&self) -> Option<u64> {
        self.pids.filter(|&p| p > 0).map(|p| p as u64)
    }

    /// What to write for these limits. On [`Apply::Update`] every field that is set is written,
    /// its "no limit" values as an explicit unlimited.
    pub(crate) fn settings(&self, apply: Apply) -> Settings<'_> {
        let update = apply == Apply::Update;
        let memory = match self.memory {
            Some(0) if update => Some(Max::Unlimited),
            _ => self.memory_max().map(Max::Value),
        };
        let memory_swap = match (apply, memory) {
            (Apply::Create, _) => self.swap_total(),
            // v1 wants memory+swap >= memory after every write: lifting the memory limit lifts
            // memory+swap too unless it is given (runc does the same).
            (Apply::Update, Some(Max::Unlimited)) if matches!(self.memory_swap, None | Some(0)) => {
                Some(SwapTotal::Unlimited)
            }
            (Apply::Update, _) => match self.memory_swap {
                None | Some(0) => None,
                Some(s) if s < 0 => Some(SwapTotal::Unlimited),
                Some(s) => Some(SwapTotal::Bytes(s as u64)),
            },
        };
        let pids = match self.pids {
            Some(p) if p <= 0 && update => Some(Max::Unlimited),
            _ => self.pids_max().map(Max::Value),
        };
        let (cpu_quota, cpu_period) = match self.cpus {
            Some(c) if c > 0.0 => (Some(Max::Value(cpu_quota_us(c))), Some(CPU_PERIOD_US)),
            Some(_) if update => (Some(Max::Unlimited), None),
            _ => (
                match self.cpu_quota {
                    Some(q) if q < 0 => Some(Max::Unlimited),
                    Some(q) if q > 0 => Some(Max::Value(q as u64)),
                    _ => None,
                },
                self.cpu_period.filter(|&p| p > 0),
            ),
        };
        Settings {
            memory,
            memory_swap,
            memory_swap_explicit: self.memory_swap.is_some(),
            memory_reservation: self.memory_reservation.filter(|&r| r > 0 || update),
            memory_swappiness: self.memory_swappiness,
            pids,
            cpu_shares: self.cpu_shares.filter(|&s| s > 0).map(clamp_cpu_shares),
            cpu_quota,
            cpu_period,
            cpu_quota_from_cpus: self.cpus.is_some(),
            cpuset_cpus: non_empty(&self.cpuset_cpus),
            cpuset_mems: non_empty(&self.cpuset_mems),
            block_io_weight: self.block_io_weight.filter(|&w| w > 0),
            unified: &self.unified,
        }
    }
}

impl Settings<'_> {
    /// Why the memory controller is needed beyond OOM accounting, if it is. (Swappiness is left
    /// out: v2 ignores it, and v1 always has a memory directory.)
    pub(crate) fn memory_why(&self) -> Option<&'static str> {
        if self.memory.is_some() {
            Some("memory limit")
        } else if self.memory_reservation.is_some() {
            Some("memory reservation")
        } else {
            None
        }
    }

    pub(crate) fn pids_why(&self) -> Option<&'static str> {
        self.pids.map(|_| "pids limit")
    }

    pub(crate) fn cpu_why(&self) -> Option<&'static str> {
        if self.cpu_quota.is_some() && self.cpu_quota_from_cpus {
            Some("cpus limit")
        } else if self.cpu_shares.is_some() {
            Some("cpu shares")
        } else if self.cpu_quota.is_some() {
            Some("cpu quota")
        } else if self.cpu_period.is_some() {
            Some("cpu period")
        } else {
            None
        }
    }

    pub(crate) fn cpuset_why(&self) -> Option<&'static str> {
        if self.cpuset_cpus.is_some() {
            Some("cpuset cpus")
        } else if self.cpuset_mems.is_some() {
            Some("cpuset mems")
        } else {
            None
        }
    }

    pub(crate) fn block_io_why(&self) -> Option<&'static str> {
        self.block_io_weight.map(|_| "block IO weight")
    }
}

/// OCI leaves an unset string empty.
fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn cpu_quota_us(cpus: f64) -> u64 {
    (cpus * CPU_PERIOD_US as f64).round() as u64
}

fn clamp_cpu_shares(shares: u64) -> u64 {
    shares.clamp(*CPU_SHARES_RANGE.start(), *CPU_SHARES_RANGE.end())
}

/// runc's conversion of v1 `cpu.shares` (2-262144) to v2 `cpu.weight` (1-10000): linear, so the
/// default 1024 shares become weight 39 (not the v2 default of 100, as in runc).
pub(crate) fn cpu_weight_from_shares(shares: u64) -> u64 {
    let shares = clamp_cpu_shares(shares);
    1 + ((shares - 2) * 9999) / 262_142
}

/// runc's conversion of a blkio weight (10-1000) to v2 `io.weight` (1-10000), used when BFQ's
/// `io.bfq.weight` (which takes the blkio range as it is) is not there.
pub(crate) fn io_weight_from_blkio(weight: u16) -> u64 {
    let weight = u64::from(weight.clamp(*BLOCK_IO_WEIGHT_RANGE.start(), *BLOCK_IO_WEIGHT_RANGE.end()));
    1 + (weight - 10) * 9999 / 990
}

/// The v2 `cpu.max` line: `"<quota|max> <period>"`. What is not given is kept from `current`
/// (the file as it reads now, `max 100000` on a new cgroup), so that an update of the period
/// alone does not lift the quota.
pub(crate) fn cpu_max_line(quota: Option<Max>, period: Option<u64>, current: &str) -> Option<String> {
    let mut fields = current.split_whitespace();
    let (current_quota, current_period) = (fields.next(), fields.next());
    let quota = match quota {
        Some(Max::Unlimited) => "max".to_owned(),
        Some(Max::Value(q)) => q.to_string(),
        None => current_quota?.to_owned(),
    };
    let period = match period {
        Some(p) => p.to_string(),
        None => current_period?.to_owned(),
    };
    Some(format!("{quota} {period}"))
}

/// A cpuset list as the kernel takes it: `0-3,5,7-8`, numbers and ascending ranges.
fn validate_cpuset_list(what: &str, list: &str) -> Result<()> {
    let number =
        |s: &str| -> Option<u32> { s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse().ok()).flatten() };
    let item_ok = |item: &str| match item.split_once('-') {
        Some((low, high)) => number(low).zip(number(high)).is_some_and(|(l, h)| l <= h),
        None => number(item).is_some(),
    };
    if list.split(',').all(item_ok) {
        Ok(())
    } else {
        Err(Error::Invalid(format!("{what} {list:?} must be a list such as 0-3,5 (numbers and ranges)")))
    }
}

/// A key of OCI `unified` is one file name in the container's cgroup directory, and a limit.
fn validate_unified(key: &str, value: &str) -> Result<()> {
    let invalid = |why: &str| Err(Error::Invalid(format!("unified key {key:?}: {why}")));
    if key.is_empty() || key.contains(['/', '\0']) || key.contains("..") {
        return invalid("must be a file name of the cgroup directory (no / or ..)");
    }
    if !key.contains('.') {
        return invalid("must be CONTROLLER.FILE, e.g. memory.high");
    }
    if UNIFIED_REFUSED.contains(&key) {
        return invalid("is not a resource limit");
    }
    if value.contains('\0') {
        return invalid("the value must not contain NUL");
    }
    Ok(())
}

/// The controller a `unified` key belongs to, or `None` for the core `cgroup.*` files, which
/// every cgroup2 directory has.
pub(crate) fn unified_controller(key: &str) -> Option<&str> {
    key.split_once('.').map(|(c, _)| c).filter(|c| *c != "cgroup")
}

/// Parse a size the way Docker does for `--memory` (go-units `RAMInBytes`): a decimal number,
/// optionally with a fraction, an optional space, and an optional binary unit `b`, `k`, `m`,
/// `g`, `t`, `p` (any case, 1024-based) optionally followed by `i` and/or `b`: `100`, `512k`,
/// `64m`, `64MB`, `64MiB`, `1.5g`. Fractions are truncated to whole bytes.
pub fn parse_size(s: &str) -> Result<u64> {
    let invalid = || Error::Invalid(format!("invalid size {s:?}"));
    let digits_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let suffix = suffix.strip_prefix(' ').unwrap_or(suffix).to_ascii_lowercase();
    let shift = match suffix.as_str() {
        "" | "b" => 0,
        _ => {
            let mut chars = suffix.chars();
            let shift = match chars.next() {
                Some('k') => 10,
                Some('m') => 20,
                Some('g') => 30,
                Some('t') => 40,
                Some('p') => 50,
                _ => return Err(invalid()),
            };
            match chars.as_str() {
                "" | "b" | "i" | "ib" => shift,
                _ => return Err(invalid()),
            }
        }
    };
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (number, None),
    };
    if int.is_empty() || frac.is_some_and(|f| f.is_empty() || f.contains('.')) {
        return Err(invalid());
    }
    let whole: u64 = int.parse().map_err(|_| invalid())?;
    let mut bytes = whole.checked_mul(1u64 << shift).ok_or_else(invalid)?;
    if let Some(frac) = frac {
        // Only the fraction goes through f64, so whole numbers stay exact.
        let f: f64 = format!("0.{frac}").parse().map_err(|_| invalid())?;
        bytes = bytes.checked_add((f * (1u64 << shift) as f64) as u64).ok_or_else(invalid)?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_docker() {
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("100b").unwrap(), 100);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("64MB").unwrap(), 64 << 20);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("64 mb").unwrap(), 64 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("2t").unwrap(), 2 << 40);
        assert_eq!(parse_size("0").unwrap(), 0);
        for bad in ["", "m", "-1", "1x", "1.m", ".5m", "1.2.3m", "1mm", "1  m", "1e3", "99999999p"] {
            assert!(parse_size(bad).is_err(), "{bad:?} should not parse");
        }
        assert_eq!(parse_size("12q").unwrap_err().to_string(), "cgroup: invalid size \"12q\"");
    }

    #[test]
    fn swap_follows_docker() {
        let m = 64 << 20;
        let only_memory = Limits { memory: Some(m), ..Limits::default() };
        assert_eq!(only_memory.swap_total(), Some(SwapTotal::Bytes(2 * m)));
        let unlimited = Limits { memory_swap: Some(-1), ..only_memory.clone() };
        assert_eq!(unlimited.swap_total(), Some(SwapTotal::Unlimited));
        let no_swap = Limits { memory_swap: Some(m as i64), ..only_memory.clone() };
        assert_eq!(no_swap.swap_total(), Some(SwapTotal::Bytes(m)));
        assert_eq!(Limits::default().swap_total(), None);

        assert!(only_memory.validate().is_ok());
        assert!(unlimited.validate().is_ok());
        let swap_without_memory = Limits { memory_swap: Some(1 << 30), ..Limits::default() };
        assert!(swap_without_memory.validate().is_err());
        let swap_below_memory = Limits { memory_swap: Some(m as i64 - 1), ..only_memory.clone() };
        assert!(swap_below_memory.validate().is_err());
        let tiny = Limits { memory: Some(1 << 20), ..Limits::default() };
        assert!(tiny.validate().is_err());
    }

    #[test]
    fn pids_and_cpus() {
        let quota = |l: &Limits| l.settings(Apply::Create).cpu_quota;
        let l = Limits { pids: Some(0), cpus: Some(0.0), ..Limits::default() };
        assert_eq!((l.pids_max(), quota(&l)), (None, None));
        let l = Limits { pids: Some(-1), cpus: Some(1.5), ..Limits::default() };
        assert_eq!((l.pids_max(), quota(&l)), (None, Some(Max::Value(150_000))));
        let half = Limits { cpus: Some(0.5), pids: Some(100), ..Limits::default() };
        assert_eq!(half.pids_max(), Some(100));
        assert_eq!(quota(&half), Some(Max::Value(50_000)));
        assert_eq!(cpu_quota_us(0.01), 1000);
        assert_eq!(cpu_quota_us(2.0), 200_000);
        for bad in [f64::NAN, f64::INFINITY, -1.0, 0.001] {
            let l = Limits { cpus: Some(bad), ..Limits::default() };
            assert!(l.validate().is_err(), "cpus {bad}");
        }
    }

    /// Each new limit's range check, with its message.
    #[test]
    fn validation_errors() {
        let err = |l: Limits| l.validate().unwrap_err().to_string();
        let m = 64 << 20;
        assert_eq!(
            err(Limits { memory: Some(m), memory_reservation: Some(m + 1), ..Limits::default() }),
            format!("cgroup: memory reservation {} must not be above the memory limit {m}", m + 1)
        );
        assert!(Limits { memory: Some(m), memory_reservation: Some(m), ..Limits::default() }
            .validate()
            .is_ok());
        assert!(Limits { memory_reservation: Some(1 << 40), ..Limits::default() }.validate().is_ok());
        assert_eq!(
            err(Limits { memory_swappiness: Some(101), ..Limits::default() }),
            "cgroup: memory swappiness 101 must be 0-100"
        );
        assert!(Limits { memory_swappiness: Some(0), ..Limits::default() }.validate().is_ok());
        assert_eq!(
            err(Limits { cpus: Some(0.5), cpu_quota: Some(50_000), ..Limits::default() }),
            "cgroup: cpus and cpu quota/period cannot both be set: cpus is a quota per 100 ms"
        );
        assert!(Limits { cpus: Some(1.0), cpu_period: Some(50_000), ..Limits::default() }
            .validate()
            .is_err());
        for bad in [-2, 1, 999] {
            assert_eq!(
                err(Limits { cpu_quota: Some(bad), ..Limits::default() }),
                format!("cgroup: cpu quota {bad} must be -1 (unlimited) or at least 1000 microseconds")
            );
        }
        for good in [-1, 0, 1000, 250_000] {
            assert!(Limits { cpu_quota: Some(good), ..Limits::default() }.validate().is_ok(), "{good}");
        }
        assert_eq!(
            err(Limits { cpu_period: Some(999), ..Limits::default() }),
            "cgroup: cpu period 999 must be 1000-1000000 microseconds"
        );
        assert!(Limits { cpu_period: Some(1_000_001), ..Limits::default() }.validate().is_err());
        for bad in ["1-", "-1", "3-1", "a", "0,,1", "0 1", "1,", "0-1-2"] {
            let l = Limits { cpuset_cpus: Some(bad.into()), ..Limits::default() };
            assert_eq!(
                err(l),
                format!("cgroup: cpuset cpus {bad:?} must be a list such as 0-3,5 (numbers and ranges)")
            );
        }
        for good in ["0", "0-3,5", "1-1", "0,2,4-7", ""] {
            let l = Limits {
                cpuset_cpus: Some(good.into()),
                cpuset_mems: Some(good.into()),
                ..Limits::default()
            };
            assert!(l.validate().is_ok(), "{good:?}");
        }
        assert!(Limits { cpuset_mems: Some("x".into()), ..Limits::default() }.validate().is_err());
        for bad in [9, 1001] {
            assert_eq!(
                err(Limits { block_io_weight: Some(bad), ..Limits::default() }),
                format!("cgroup: block IO weight {bad} must be 10-1000")
            );
        }
        assert!(Limits { block_io_weight: Some(0), ..Limits::default() }.validate().is_ok());
        assert!(Limits { block_io_weight: Some(10), ..Limits::default() }.validate().is_ok());
    }

    #[test]
    fn unified_keys_are_file_names_of_limits() {
        let with = |key: &str, value: &str| Limits {
            unified: BTreeMap::from([(key.to_owned(), value.to_owned())]),
            ..Limits::default()
        };
        for key in ["memory.high", "cpu.weight", "io.max", "cgroup.max.depth", "hugetlb.2MB.max"] {
            assert!(with(key, "1").validate().is_ok(), "{key}");
        }
        for (key, why) in [
            ("../memory.max", "must be a file name of the cgroup directory (no / or ..)"),
            ("sub/memory.max", "must be a file name of the cgroup directory (no / or ..)"),
            ("memory..max", "must be a file name of the cgroup directory (no / or ..)"),
            ("", "must be a file name of the cgroup directory (no / or ..)"),
            ("memory", "must be CONTROLLER.FILE, e.g. memory.high"),
            ("cgroup.procs", "is not a resource limit"),
            ("cgroup.kill", "is not a resource limit"),
            ("cgroup.freeze", "is not a resource limit"),
            ("cgroup.subtree_control", "is not a resource limit"),
        ] {
            assert_eq!(
                with(key, "1").validate().unwrap_err().to_string(),
                format!("cgroup: unified key {key:?}: {why}")
            );
        }
        assert!(with("memory.high", "1\0").validate().is_err());
        assert_eq!(unified_controller("memory.high"), Some("memory"));
        assert_eq!(unified_controller("hugetlb.2MB.max"), Some("hugetlb"));
        assert_eq!(unified_controller("cgroup.max.depth"), None);
    }

    #[test]
    fn shares_to_weight_as_runc() {
        assert_eq!(cpu_weight_from_shares(2), 1);
        assert_eq!(cpu_weight_from_shares(1024), 39);
        assert_eq!(cpu_weight_from_shares(512), 20);
        assert_eq!(cpu_weight_from_shares(262_144), 10_000);
        // Clamped into 2..=262144 first, as Docker clamps --cpu-shares.
        assert_eq!(cpu_weight_from_shares(0), 1);
        assert_eq!(cpu_weight_from_shares(1), 1);
        assert_eq!(cpu_weight_from_shares(1 << 40), 10_000);
        let l = Limits { cpu_shares: Some(1), ..Limits::default() };
        assert_eq!(l.settings(Apply::Create).cpu_shares, Some(2));
        let l = Limits { cpu_shares: Some(1 << 20), ..Limits::default() };
        assert_eq!(l.settings(Apply::Create).cpu_shares, Some(262_144));
    }

    #[test]
    fn blkio_to_io_weight_as_runc() {
        assert_eq!(io_weight_from_blkio(10), 1);
        assert_eq!(io_weight_from_blkio(500), 4950);
        assert_eq!(io_weight_from_blkio(1000), 10_000);
    }

    #[test]
    fn cpu_max_keeps_what_is_not_given() {
        let new = "max 100000\n";
        assert_eq!(cpu_max_line(Some(Max::Value(50_000)), Some(100_000), new).unwrap(), "50000 100000");
        assert_eq!(cpu_max_line(Some(Max::Value(20_000)), None, new).unwrap(), "20000 100000");
        assert_eq!(cpu_max_line(None, Some(50_000), "20000 100000\n").unwrap(), "20000 50000");
        assert_eq!(cpu_max_line(Some(Max::Unlimited), None, "20000 50000\n").unwrap(), "max 50000");
        assert_eq!(cpu_max_line(Some(Max::Unlimited), Some(10_000), new).unwrap(), "max 10000");
        assert_eq!(cpu_max_line(Some(Max::Value(1000)), Some(2000), "").unwrap(), "1000 2000");
        assert_eq!(cpu_max_line(None, Some(2000), ""), None);
        assert_eq!(cpu_max_line(None, None, ""), None);
    }

    /// A new cgroup gets only what differs from the kernel's defaults; an update writes every
    /// field given, "no limit" as an explicit unlimited.
    #[test]
    fn settings_for_create_and_update() {
        let m = 64 << 20;
        let limits = Limits {
            memory: Some(0),
            pids: Some(-1),
            cpus: Some(0.0),
            memory_reservation: Some(0),
            cpu_shares: Some(0),
            block_io_weight: Some(0),
            cpuset_cpus: Some(String::new()),
            ..Limits::default()
        };
        let create = limits.settings(Apply::Create);
        assert_eq!(
            (create.memory, create.memory_swap, create.pids, create.cpu_quota, create.cpu_period),
            (None, None, None, None, None)
        );
        assert_eq!(
            (create.memory_reservation, create.cpu_shares, create.block_io_weight),
            (None, None, None)
        );
        assert_eq!(create.cpuset_cpus, None);
        assert_eq!(create.cpu_why(), None);
        let update = limits.settings(Apply::Update);
        assert_eq!(update.memory, Some(Max::Unlimited));
        assert_eq!(update.memory_swap, Some(SwapTotal::Unlimited), "lifted with memory");
        assert_eq!(update.pids, Some(Max::Unlimited));
        assert_eq!((update.cpu_quota, update.cpu_period), (Some(Max::Unlimited), None));
        assert_eq!(update.memory_reservation, Some(0));
        assert_eq!(update.cpu_why(), Some("cpus limit"));

        // Docker's default swap (2 x memory) is for new containers only.
        let memory_only = Limits { memory: Some(m), ..Limits::default() };
        assert_eq!(memory_only.settings(Apply::Create).memory_swap, Some(SwapTotal::Bytes(2 * m)));
        assert_eq!(memory_only.settings(Apply::Update).memory_swap, None);
        assert_eq!(memory_only.settings(Apply::Update).memory, Some(Max::Value(m)));

        let precise = Limits { cpu_quota: Some(-1), cpu_period: Some(50_000), ..Limits::default() };
        let s = precise.settings(Apply::Create);
        assert_eq!(
            (s.cpu_quota, s.cpu_period, s.cpu_why()),
            (Some(Max::Unlimited), Some(50_000), Some("cpu quota"))
        );
        let cpus = Limits { cpus: Some(1.5), ..Limits::default() };
        let s = cpus.settings(Apply::Create);
        assert_eq!((s.cpu_quota, s.cpu_period), (Some(Max::Value(150_000)), Some(CPU_PERIOD_US)));
        let period_only = Limits { cpu_period: Some(20_000), ..Limits::default() };
        assert_eq!(period_only.settings(Apply::Create).cpu_why(), Some("cpu period"));
    }
}
