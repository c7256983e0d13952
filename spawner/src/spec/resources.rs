//! `linux.resources` into the [`Limits`] the cgroup module applies. A value spawner cannot apply
//! is refused naming it; only the deprecated kernel-memory limits are dropped (with a debug line),
//! as runc does, because the kernel no longer has them.

use super::SpecError;
use crate::cgroup::devices::{MAX_MAJOR, MAX_MINOR};
use crate::cgroup::{Access, DeviceKind, DeviceRule, Limits};
use oci_spec::runtime as oci;
use std::collections::{BTreeMap, HashMap};

pub(super) fn resources(r: &oci::LinuxResources) -> Result<Limits, SpecError> {
    let mut limits = Limits::default();
    if let Some(memory) = r.memory() {
        self::memory(memory, &mut limits)?;
    }
    if let Some(cpu) = r.cpu() {
        self::cpu(cpu, &mut limits)?;
    }
    if let Some(pids) = r.pids() {
        // 0 or negative: no limit, in the spec as in Limits.
        limits.pids = Some(pids.limit());
    }
    if let Some(block_io) = r.block_io() {
        limits.block_io_weight = self::block_io(block_io)?;
    }
    if given(r.hugepage_limits()) {
        return Err(SpecError::unsupported("linux.resources.hugepageLimits"));
    }
    if let Some(network) = r.network() {
        if network.class_id().is_some() || given(network.priorities()) {
            return Err(SpecError::unsupported("linux.resources.network"));
        }
    }
    if r.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        return Err(SpecError::unsupported("linux.resources.rdma"));
    }
    if let Some(unified) = r.unified() {
        limits.unified = self::unified(unified)?;
    }
    let rules = r.devices().as_deref().unwrap_or_default();
    limits.devices = rules.iter().enumerate().map(|(i, d)| device_rule(i, d)).collect::<Result<_, _>>()?;
    Ok(limits)
}

fn memory(m: &oci::LinuxMemory, limits: &mut Limits) -> Result<(), SpecError> {
    const AT: &str = "linux.resources.memory";
    // Bytes, with -1 for "no limit"; 0 is what Go writes for "not set".
    let bytes = |field: &str, value: Option<i64>| match value {
        None | Some(-1) | Some(0) => Ok(None),
        Some(v) if v > 0 => Ok(Some(v as u64)),
        Some(v) => {
            Err(SpecError::invalid(format!("{AT}.{field}"), format!("{v} is not a size in bytes, nor -1")))
        }
    };
    limits.memory = bytes("limit", m.limit())?;
    limits.memory_reservation = bytes("reservation", m.reservation())?;
    limits.memory_swap = match (m.swap(), limits.memory) {
        (None | Some(0), _) => None,
        // Unlimited memory+swap without a memory limit is what no limit at all means already.
        (Some(-1), None) => None,
        (Some(-1), Some(_)) => Some(-1),
        (Some(swap), _) if swap < 0 => {
            return Err(SpecError::invalid(
                format!("{AT}.swap"),
                format!("{swap} is not a size in bytes, nor -1"),
            ))
        }
        (Some(swap), None) => {
            return Err(SpecError::invalid(
                format!("{AT}.swap"),
                format!("{swap}: a memory+swap limit needs memory.limit too"),
            ))
        }
        (Some(swap), Some(memory)) if (swap as u64) < memory => {
            return Err(SpecError::invalid(
                format!("{AT}.swap"),
                format!("{swap} is below memory.limit {memory}: it is memory plus swap"),
            ))
        }
        (Some(swap), Some(_)) => Some(swap),
    };
    if let Some(swappiness) = m.swappiness() {
        if swappiness > 100 {
            return Err(SpecError::invalid(
                format!("{AT}.swappiness"),
                format!("{swappiness} is not 0 to 100"),
            ));
        }
        limits.memory_swappiness = Some(swappiness);
    }
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        log::debug!("{AT}.kernel and kernelTCP are ignored: the kernel no longer has these limits");
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(SpecError::unsupported_value(format!("{AT}.disableOOMKiller"), "true"));
    }
    match m.use_hierarchy() {
        // What cgroup v2, and v1 since Linux 6.1, always do.
        Some(true) => log::debug!("{AT}.useHierarchy: cgroups are hierarchical already"),
        Some(false) => return Err(SpecError::unsupported_value(format!("{AT}.useHierarchy"), "false")),
        None => {}
    }
    if m.check_before_update().is_some() {
        // It is about updating the limit of a running container, which create never does.
        log::debug!("{AT}.checkBeforeUpdate applies to updates only");
    }
    Ok(())
}

fn cpu(c: &oci::LinuxCpu, limits: &mut Limits) -> Result<(), SpecError> {
    const AT: &str = "linux.resources.cpu";
    // 0 is what Go writes for "not set"; a real-time budget or idle class of 0 is the default too.
    // 1024 shares is what every new cgroup has (ctr asks for it by default): nothing to set, and a
    // host without the cpu controller is not refused for it.
    limits.cpu_shares = c.shares().filter(|&s| s != 0 && s != 1024);
    limits.cpu_quota = match c.quota() {
        None | Some(0) => None,
        Some(q) if q > 0 || q == -1 => Some(q),
        Some(q) => {
            return Err(SpecError::invalid(format!("{AT}.quota"), format!("{q} is not microseconds, nor -1")))
        }
    };
    limits.cpu_period = c.period().filter(|&p| p != 0);
    if c.burst().is_some_and(|b| b != 0) {
        return Err(SpecError::unsupported(format!("{AT}.burst")));
    }
    if c.realtime_runtime().is_some_and(|r| r != 0) {
        return Err(SpecError::unsupported(format!("{AT}.realtimeRuntime")));
    }
    if c.realtime_period().is_some_and(|p| p != 0) {
        return Err(SpecError::unsupported(format!("{AT}.realtimePeriod")));
    }
    if c.idle().is_some_and(|i| i != 0) {
        return Err(SpecError::unsupported(format!("{AT}.idle")));
    }
    limits.cpuset_cpus = cpu_list(&format!("{AT}.cpus"), c.cpus())?;
    limits.cpuset_mems = cpu_list(&format!("{AT}.mems"), c.mems())?;
    Ok(())
}

/// A cpuset list (`0-3,5`): numbers and ranges, comma-separated. Checked here so that a typo is
/// named with its field rather than by the kernel's EINVAL on a cgroup file.
fn cpu_list(field: &str, list: &Option<String>) -> Result<Option<String>, SpecError> {
    let Some(list) = list.as_deref().filter(|l| !l.is_empty()) else { return Ok(None) };
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let valid = list.split(',').all(|item| match item.split_once('-') {
        Some((first, last)) => number(first) && number(last),
        None => number(item),
    });
    match valid {
        true => Ok(Some(list.to_owned())),
        false => Err(SpecError::invalid(field, format!("{list:?} is not a list such as 0-3,5"))),
    }
}

fn block_io(b: &oci::LinuxBlockIo) -> Result<Option<u16>, SpecError> {
    const AT: &str = "linux.resources.blockIO";
    if b.leaf_weight().is_some() {
        return Err(SpecError::unsupported(format!("{AT}.leafWeight")));
    }
    if given(b.weight_device()) {
        return Err(SpecError::unsupported(format!("{AT}.weightDevice")));
    }
    for (field, list) in [
        ("throttleReadBpsDevice", b.throttle_read_bps_device()),
        ("throttleWriteBpsDevice", b.throttle_write_bps_device()),
        ("throttleReadIOPSDevice", b.throttle_read_iops_device()),
        ("throttleWriteIOPSDevice", b.throttle_write_iops_device()),
    ] {
        if given(list) {
            return Err(SpecError::unsupported(format!("{AT}.{field}")));
        }
    }
    match b.weight() {
        // dockerd always writes 0 for "no weight" (runc reads it so).
        Some(0) => Ok(None),
        Some(w) if !(10..=1000).contains(&w) => {
            Err(SpecError::invalid(format!("{AT}.weight"), format!("{w} is not 10 to 1000")))
        }
        weight => Ok(weight),
    }
}

/// A list that is there and not empty (Go writes an empty one for "not set").
fn given<T>(list: &Option<Vec<T>>) -> bool {
    list.as_ref().is_some_and(|l| !l.is_empty())
}

/// `unified`: each key names a file in the container's cgroup directory, so it must be a name,
/// not a path out of it.
fn unified(entries: &HashMap<String, String>) -> Result<BTreeMap<String, String>, SpecError> {
    let sorted: BTreeMap<String, String> = entries.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (key, value) in &sorted {
        let at = format!("linux.resources.unified[{key:?}]");
        super::checks::no_nul(&at, value)?;
        if key.is_empty() || key == "." || key == ".." || key.contains(['/', '\0']) {
            return Err(SpecError::invalid(at, "not a cgroup file name"));
        }
    }
    Ok(sorted)
}

/// One of `devices`: `type` a/c/b (none: a), major and minor absent or -1 for any, `access`
/// required (runc refuses a rule without it).
fn device_rule(i: usize, d: &oci::LinuxDeviceCgroup) -> Result<DeviceRule, SpecError> {
    let at = format!("linux.resources.devices[{i}]");
    let kind = match d.typ().unwrap_or(oci::LinuxDeviceType::A) {
        oci::LinuxDeviceType::A => DeviceKind::All,
        oci::LinuxDeviceType::C => DeviceKind::Char,
        oci::LinuxDeviceType::B => DeviceKind::Block,
        other => {
            return Err(SpecError::invalid(
                format!("{at}.type"),
                format!("{:?} is not a device rule type: a, c or b", other.as_str()),
            ))
        }
    };
    let number = |field: &str, value: Option<i64>, max: u32| match value {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n).ok().filter(|&n| n <= max).map(Some).ok_or_else(|| {
            SpecError::invalid(
                format!("{at}.{field}"),
                format!("{n} is not a device {field} number (0 to {max}), nor -1"),
            )
        }),
    };
    let letters = d.access().as_deref().unwrap_or_default();
    let access = Access::from_letters(letters).ok_or_else(|| {
        SpecError::invalid(format!("{at}.access"), format!("{letters:?} is not one to three of r, w, m"))
    })?;
    Ok(DeviceRule {
        allow: d.allow(),
        kind,
        major: number("major", d.major(), MAX_MAJOR)?,
        minor: number("minor", d.minor(), MAX_MINOR)?,
        access,
    })
}
