//! runc's systemd cgroup driver (`--systemd-cgroup`): systemd makes the container's cgroup, as a
//! transient unit it owns, instead of spawner making a directory itself. On a systemd host this is
//! what keeps systemd's view of the tree true: it does not treat the container's cgroup as a
//! stranger's, and the slice's limits and accounting cover it.
//!
//! The container's place comes from `linux.cgroupsPath` in runc's `slice:prefix:name` form
//! ([`UnitPlace::parse`]): a scope `prefix-name.scope` in `slice` (default `system.slice`), or a
//! slice unit when the name ends in `.slice`. [`start`] asks systemd (over D-Bus, [`crate::dbus`])
//! for the unit with the container's process in it and the limits systemd has properties for,
//! waits for the job, and then writes every limit into the unit's cgroup files with the cgroupfs
//! code (what systemd has no property for, such as device rules or cpusets, and exact values where
//! systemd rounds). [`stop`] ends the unit; [`set_properties`] is `update`'s half.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::limits::{cpu_weight_from_shares, Apply, Max, Settings, SwapTotal};
use super::{
    detect, device_bpf, devices, files, parse_proc_cgroup, read_mountinfo, v1, v2, Cgroup, DeviceControl,
    Error, Limits, Result, Version, CGROUP_ROOT, CPU_PERIOD_US,
};
use crate::dbus::wire::{Arg, Call, Value};
use crate::dbus::{self, Connection};

/// runc's words when systemd is not there.
pub const NOT_RUNNING: &str = "systemd not running on this host, cannot use systemd cgroups manager";

/// What the default cgroupsPath's prefix is (runc's is `runc`).
pub const DEFAULT_PREFIX: &str = "spawner";

/// How long systemd may take to start or stop a unit.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether systemd is the init system here: the directory systemd makes at boot (sd_booted's test).
pub fn running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Where a container's unit goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitPlace {
    /// The parent slice (`system.slice`, `-.slice` for the root).
    pub slice: String,
    /// The unit: `prefix-name.scope`, or `name` when that is a slice.
    pub unit: String,
}

impl UnitPlace {
    /// runc's rules for `linux.cgroupsPath` under the systemd driver: `slice:prefix:name`, an empty
    /// slice being `system.slice`; without a cgroupsPath, `system.slice:spawner:ID`.
    pub fn parse(cgroups_path: Option<&str>, id: &str) -> Result<UnitPlace> {
        let default = format!(":{DEFAULT_PREFIX}:{id}");
        let text = cgroups_path.filter(|p| !p.is_empty()).unwrap_or(&default);
        let bad = |why: &str| {
            Error::Invalid(format!(
                "linux.cgroupsPath {text:?} is not systemd's slice:prefix:name ({why}), as the systemd cgroup \
                 driver needs"
            ))
        };
        let [slice, prefix, name] = text.split(':').collect::<Vec<_>>()[..] else {
            return Err(bad("three parts separated by ':'"));
        };
        if name.is_empty() {
            return Err(bad("an empty name"));
        }
        let slice = if slice.is_empty() { "system.slice" } else { slice };
        expand_slice(slice).map_err(|why| bad(&why))?;
        let unit = match (name.ends_with(".slice"), prefix.is_empty()) {
            (true, _) => {
                expand_slice(name).map_err(|why| bad(&why))?;
                name.to_owned()
            }
            (false, true) => format!("{name}.scope"),
            (false, false) => format!("{prefix}-{name}.scope"),
        };
        check_unit_name(&unit).map_err(|why| bad(&why))?;
        Ok(UnitPlace { slice: slice.to_owned(), unit })
    }

    pub fn is_slice(&self) -> bool {
        self.unit.ends_with(".slice")
    }

    /// The unit's cgroup, relative to the hierarchy root: a scope below its slice's path; a
    /// slice where its own name puts it (`a-b.slice` is always below `a.slice`).
    pub fn cgroup_path(&self) -> PathBuf {
        let expand = |s: &str| expand_slice(s).expect("checked by parse");
        match self.is_slice() {
            true => PathBuf::from(expand(&self.unit)),
            false => PathBuf::from(expand(&self.slice)).join(&self.unit),
        }
    }
}

/// Whether a cgroupsPath is in systemd's `slice:prefix:name` form rather than a path (a path may
/// hold colons too, as `/kubepods/pod1:x:y`).
pub fn is_unit_path(text: &str) -> bool {
    match text.split(':').collect::<Vec<_>>()[..] {
        [slice, _, _] => !text.starts_with('/') && (slice.is_empty() || slice.ends_with(".slice")),
        _ => false,
    }
}

/// A slice's cgroup path: each `-` is a level, `a-b-c.slice` being
/// `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root, `/`.
pub fn expand_slice(slice: &str) -> std::result::Result<String, String> {
    let Some(base) = slice.strip_suffix(".slice") else {
        return Err(format!("slice {slice:?} does not end in .slice"));
    };
    if base == "-" {
        return Ok("/".to_owned());
    }
    if base.is_empty() || base.contains('/') {
        return Err(format!("slice {slice:?} is not a slice name"));
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return Err(format!("slice {slice:?} has an empty part between dashes"));
        }
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
    }
    Ok(path)
}

/// systemd's rule for unit names: ASCII letters, digits, `:-_.\`, at most 255 bytes.
fn check_unit_name(unit: &str) -> std::result::Result<(), String> {
    if unit.len() > 255 {
        return Err(format!("unit name {unit:?} is longer than 255 bytes"));
    }
    match unit.chars().find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\".contains(*c))) {
        Some(c) => Err(format!("{c:?} is not allowed in a unit name")),
        None => Ok(()),
    }
}

/// The properties a new unit gets: the process, its place, delegation, accounting, and the
/// limits systemd knows.
pub(crate) fn unit_properties(
    place: &UnitPlace,
    pid: u32,
    id: &str,
    settings: &Settings,
    version: Version,
) -> Vec<(String, Value)> {
    let mut props = vec![prop("Description", Value::Str(format!("spawner container {id}")))];
    if place.is_slice() {
        // A slice's parent is in its name; it holds no processes of its own in systemd's eyes,
        // and it cannot be delegated: the process is moved in once it exists.
        props.push(prop("Wants", Value::Str(place.slice.clone())));
    } else {
        props.push(prop("Slice", Value::Str(place.slice.clone())));
        props.push(prop("Delegate", Value::Bool(true)));
        props.push(prop("PIDs", Value::ArrayU32(vec![pid])));
    }
    // Accounting on, as runc: the controllers are enabled for the unit even without a limit.
    let io_accounting = if version == Version::V2 { "IOAccounting" } else { "BlockIOAccounting" };
    for name in ["MemoryAccounting", "CPUAccounting", io_accounting, "TasksAccounting"] {
        props.push(prop(name, Value::Bool(true)));
    }
    props.push(prop("DefaultDependencies", Value::Bool(false)));
    props.extend(resource_properties(settings, version));
    props
}

fn prop(name: &str, value: Value) -> (String, Value) {
    (name.to_owned(), value)
}

/// systemd's `infinity`.
const INFINITY: u64 = u64::MAX;

fn max_value(max: Max) -> Value {
    Value::U64(match max {
        Max::Unlimited => INFINITY,
        Max::Value(v) => v,
    })
}

/// The limits systemd has properties for, as runc sets them. What is left out (cpusets, block IO
/// weight, swappiness, `unified`, device rules) is written to the files only.
pub(crate) fn resource_properties(s: &Settings, version: Version) -> Vec<(String, Value)> {
    let mut props = Vec::new();
    if let Some(memory) = s.memory {
        let name = if version == Version::V2 { "MemoryMax" } else { "MemoryLimit" };
        props.push(prop(name, max_value(memory)));
        if let (Version::V2, Some(total)) = (version, s.memory_swap) {
            let swap = match (total, memory) {
                (SwapTotal::Bytes(t), Max::Value(m)) => t.saturating_sub(m),
                _ => INFINITY,
            };
            props.push(prop("MemorySwapMax", Value::U64(swap)));
        }
    }
    if let (Version::V2, Some(low)) = (version, s.memory_reservation) {
        props.push(prop("MemoryLow", Value::U64(low)));
    }
    if let Some(pids) = s.pids {
        props.push(prop("TasksMax", max_value(pids)));
    }
    if let Some(shares) = s.cpu_shares {
        props.push(match version {
            Version::V2 => prop("CPUWeight", Value::U64(cpu_weight_from_shares(shares))),
            Version::V1 => prop("CPUShares", Value::U64(shares)),
        });
    }
    if let Some(quota) = s.cpu_quota {
        props.push(prop("CPUQuotaPerSecUSec", Value::U64(quota_per_second(quota, s.cpu_period))));
    }
    props
}

/// CPU time per second of wall time, as systemd's `CPUQuotaPerSecUSec`. systemd keeps it as a
/// whole percentage of a CPU, so runc rounds up to 10 ms; the exact quota and period then go to
/// the cgroup file.
fn quota_per_second(quota: Max, period: Option<u64>) -> u64 {
    let Max::Value(quota) = quota else { return INFINITY };
    let period = period.unwrap_or(CPU_PERIOD_US).max(1);
    let per_second = quota.saturating_mul(1_000_000) / period;
    per_second.div_ceil(10_000) * 10_000
}

/// The systemd manager's object and interface.
fn manager(member: &str) -> Call<'_> {
    Call {
        destination: Some("org.freedesktop.systemd1"),
        path: "/org/freedesktop/systemd1",
        interface: "org.freedesktop.systemd1.Manager",
        member,
    }
}

/// A connection to systemd: as root its private socket (no dbus-daemon needed), else the system
/// bus.
fn connect() -> Result<Connection> {
    let private = Path::new("/run/systemd/private");
    // `unix:path=/x,guid=…` (other transports are not for root's system bus).
    let system_bus = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .ok()
        .and_then(|a| a.strip_prefix("unix:path=").and_then(|p| p.split(',').next()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/run/dbus/system_bus_socket"));
    let connection = match rustix::process::geteuid().is_root() && private.exists() {
        true => Connection::open(private, false).or_else(|e| {
            log::debug!("systemd's private socket: {e}; trying the system bus");
            Connection::open(&system_bus, true)
        }),
        false => Connection::open(&system_bus, true),
    };
    connection.map_err(|e| Error::Systemd(format!("connect to systemd: {e}")))
}

fn dbus_error(what: &str, unit: &str) -> impl FnOnce(dbus::Error) -> Error {
    let context = format!("{what} {unit}");
    move |e| Error::Systemd(format!("{context}: {e}"))
}

/// Asks for JobRemoved signals: systemd sends them only to subscribers (and on the bus, the
/// daemon only to connections with a match rule).
fn subscribe(c: &mut Connection) -> std::result::Result<(), dbus::Error> {
    if c.on_bus() {
        let rule =
            "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',\
                    member='JobRemoved',path='/org/freedesktop/systemd1'";
        let add_match = Call {
            destination: Some("org.freedesktop.DBus"),
            path: "/org/freedesktop/DBus",
            interface: "org.freedesktop.DBus",
            member: "AddMatch",
        };
        c.call(add_match, &[Arg::Str(rule)])?;
    }
    match c.call(manager("Subscribe"), &[]) {
        // A second job on the same connection (a stop after a failed start).
        Err(dbus::Error::Remote { name, .. }) if name == "org.freedesktop.systemd1.AlreadySubscribed" => {
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

/// Waits for the job at `job` to be removed and returns its result (`done`, `failed`, …).
fn wait_for_job(c: &mut Connection, job: &str) -> std::result::Result<String, dbus::Error> {
    let deadline = Instant::now() + JOB_TIMEOUT;
    loop {
        let signal = c.next_signal(deadline)?;
        if signal.member.as_deref() != Some("JobRemoved") || signal.signature != "uoss" {
            continue;
        }
        let mut body = signal.body();
        let _id = body.u32()?;
        if body.string()? == job {
            let _unit = body.string()?;
            return body.string();
        }
    }
}

/// Runs a manager method that returns a job and waits for the job: `done` or an error.
fn run_job(c: &mut Connection, unit: &str, what: &str, member: &str, args: &[Arg]) -> Result<()> {
    subscribe(c).map_err(dbus_error("subscribe to systemd's jobs for", unit))?;
    let reply = c.call(manager(member), args).map_err(dbus_error(what, unit))?;
    let job =
        reply.first_string().ok_or_else(|| Error::Systemd(format!("{what} {unit}: no job in the reply")))?;
    let result = wait_for_job(c, &job).map_err(dbus_error(what, unit))?;
    match result.as_str() {
        "done" => Ok(()),
        other => Err(Error::Systemd(format!("{what} {unit}: systemd's job ended {other:?}"))),
    }
}

/// Makes the container's unit with `pid` in it and applies `limits`; the handle stops the unit
/// when dropped (as [`Cgroup::create`]'s removes its directory) unless handed on.
pub fn start(place: &UnitPlace, id: &str, pid: i32, limits: &Limits) -> Result<Cgroup> {
    limits.validate()?;
    let version = detect()?;
    let settings = limits.settings(Apply::Create);
    let pid_u32 = u32::try_from(pid).map_err(|_| Error::Invalid(format!("pid {pid}")))?;
    let props = unit_properties(place, pid_u32, id, &settings, version);
    let unit = place.unit.as_str();
    let mut c = connect()?;
    let args = [Arg::Str(unit), Arg::Str("replace"), Arg::Properties(&props), Arg::NoAuxUnits];
    run_job(&mut c, unit, "start unit", "StartTransientUnit", &args)?;
    let configured = (|| {
        let backend = match version {
            Version::V2 => {
                let dir = Path::new(CGROUP_ROOT).join(super::relative_cgroup_path(&place.cgroup_path())?);
                if place.is_slice() {
                    files::write(&dir.join("cgroup.procs"), &pid.to_string())?;
                }
                if !limits.devices.is_empty() {
                    device_bpf::attach(&dir, &limits.devices)?;
                }
                v2::apply_settings(&dir, &settings)?;
                super::Backend::V2(v2::CgroupV2::reopen(dir))
            }
            Version::V1 => super::Backend::V1(v1_unit(place, pid, limits)?),
        };
        let device_control = match &backend {
            super::Backend::V1(c) => c.device_control().clone(),
            super::Backend::V2(_) if limits.devices.is_empty() => DeviceControl::not_asked(),
            super::Backend::V2(_) => DeviceControl::Bpf,
        };
        Ok(Cgroup {
            name: unit.to_owned(),
            backend,
            memory_limit: std::sync::atomic::AtomicU64::new(limits.memory_max().unwrap_or(0)),
            device_control,
            remove_on_drop: true,
            systemd_unit: Some(unit.to_owned()),
        })
    })();
    if configured.is_err() {
        if let Err(e) = stop_with(&mut c, unit) {
            log::warn!("stopping unit {unit} after a failed start: {e}");
        }
    }
    configured
}

/// On v1 the unit has a directory in each hierarchy systemd delegated: found from the process's
/// `/proc/PID/cgroup`, its device rules written, then the limits.
fn v1_unit(place: &UnitPlace, pid: i32, limits: &Limits) -> Result<v1::CgroupV1> {
    let proc_path = PathBuf::from(format!("/proc/{pid}/cgroup"));
    let text = files::read(&proc_path)?;
    let lines = parse_proc_cgroup(&text).map_err(|what| Error::Parse { path: proc_path.clone(), what })?;
    let mounts = read_mountinfo()?;
    let mut dirs = Vec::new();
    for line in lines.iter().filter(|l| l.path.rsplit('/').next() == Some(place.unit.as_str())) {
        for controller in &line.controllers {
            let Some(name) = v1::controller_name(controller).filter(|c| *c != v1::UNIFIED) else { continue };
            let mount =
                mounts.iter().find(|m| m.fs_type == "cgroup" && m.super_options.iter().any(|o| o == name));
            if let Some(mount) = mount {
                let path = mount.mount_point.join(super::relative_cgroup_path(Path::new(&line.path))?);
                dirs.push(super::SavedDir { controller: name.to_owned(), path });
            }
        }
    }
    dirs.sort_by_key(|d| d.controller != "memory");
    let device_control = match dirs.iter().find(|d| d.controller == "devices") {
        Some(dir) if !limits.devices.is_empty() => {
            for (file, line) in devices::v1_writes(&limits.devices) {
                files::write(&dir.path.join(file.name()), &line)?;
            }
            DeviceControl::V1
        }
        Some(_) => DeviceControl::not_asked(),
        None => DeviceControl::Unavailable(format!("systemd gave unit {} no devices hierarchy", place.unit)),
    };
    let cgroup = v1::CgroupV1::reopen(&dirs, device_control, None)?;
    cgroup.update(limits)?;
    Ok(cgroup)
}

fn stop_with(c: &mut Connection, unit: &str) -> Result<()> {
    match run_job(c, unit, "stop unit", "StopUnit", &[Arg::Str(unit), Arg::Str("replace")]) {
        // Gone already: a scope whose processes all ended is stopped and collected by systemd.
        Err(Error::Systemd(e)) if e.contains("org.freedesktop.systemd1.NoSuchUnit") => Ok(()),
        other => other,
    }
}

/// Stops the unit (runc's `delete`); a unit that is gone already is fine.
pub fn stop(unit: &str) -> Result<()> {
    stop_with(&mut connect()?, unit)
}

/// Sets the limits systemd knows on the running unit (runc's `update`; the files follow).
pub fn set_properties(unit: &str, limits: &Limits, version: Version) -> Result<()> {
    let props = resource_properties(&limits.settings(Apply::Update), version);
    if props.is_empty() {
        return Ok(());
    }
    let mut c = connect()?;
    c.call(manager("SetUnitProperties"), &[Arg::Str(unit), Arg::Bool(true), Arg::Properties(&props)])
        .map(|_| ())
        .map_err(dbus_error("set properties of", unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(slice: &str, unit: &str) -> UnitPlace {
        UnitPlace { slice: slice.into(), unit: unit.into() }
    }

    #[test]
    fn cgroups_paths_as_runc_reads_them() {
        assert_eq!(
            UnitPlace::parse(Some("system.slice:spawner:abc"), "x").unwrap(),
            place("system.slice", "spawner-abc.scope")
        );
        assert_eq!(UnitPlace::parse(None, "abc").unwrap(), place("system.slice", "spawner-abc.scope"));
        assert_eq!(UnitPlace::parse(Some(""), "abc").unwrap(), place("system.slice", "spawner-abc.scope"));
        assert_eq!(
            UnitPlace::parse(Some(":crio:abc"), "x").unwrap(),
            place("system.slice", "crio-abc.scope"),
            "an empty slice is system.slice"
        );
        assert_eq!(UnitPlace::parse(Some("user.slice::abc"), "x").unwrap(), place("user.slice", "abc.scope"));
        let pod = "kubepods-besteffort-pod1.slice";
        assert_eq!(
            UnitPlace::parse(Some(&format!("{pod}:cri-containerd:abc")), "x").unwrap(),
            place(pod, "cri-containerd-abc.scope")
        );
        let sub = UnitPlace::parse(Some("kubepods.slice:x:kubepods-pod2.slice"), "x").unwrap();
        assert_eq!(sub, place("kubepods.slice", "kubepods-pod2.slice"), "a .slice name is a slice");
        assert!(sub.is_slice());
        assert_eq!(sub.cgroup_path(), PathBuf::from("/kubepods.slice/kubepods-pod2.slice"));
        assert_eq!(
            UnitPlace::parse(Some(&format!("{pod}:cri-containerd:abc")), "x").unwrap().cgroup_path(),
            PathBuf::from("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope")
        );
        assert_eq!(
            UnitPlace::parse(Some("-.slice:p:n"), "x").unwrap().cgroup_path(),
            PathBuf::from("/p-n.scope"),
            "-.slice is the root"
        );
    }

    #[test]
    fn paths_not_in_the_form_are_named_in_the_error() {
        for bad in [
            "/docker/abc",
            "a:b",
            "a:b:c:d",
            "system.slice:p:",
            "nodots:p:n",
            "a/b.slice:p:n",
            "a--b.slice:p:n",
        ] {
            let err = UnitPlace::parse(Some(bad), "x").unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")) && err.contains("slice:prefix:name"), "{err}");
        }
        let err = UnitPlace::parse(Some("system.slice:p:a+b"), "x").unwrap_err().to_string();
        assert!(err.contains("'+' is not allowed in a unit name"), "{err}");
    }

    #[test]
    fn unit_paths_told_from_cgroupfs_paths() {
        for unit in ["system.slice:docker:3f4e", ":libpod:3f4e", "-.slice:p:n"] {
            assert!(is_unit_path(unit), "{unit}");
        }
        for path in ["/kubepods/burstable/pod1:x:y", "spawner/c1", "a:b", "x:y:z"] {
            assert!(!is_unit_path(path), "{path}");
        }
    }

    #[test]
    fn slices_expand_to_their_ancestors() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(expand_slice("a-b-c.slice").unwrap(), "/a.slice/a-b.slice/a-b-c.slice");
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        for bad in ["a", "-a.slice", "a-.slice", "a--b.slice", ".slice", "a/b.slice"] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    fn names(props: &[(String, Value)]) -> Vec<&str> {
        props.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn get<'a>(props: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
        props.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    #[test]
    fn a_scope_gets_the_process_and_delegation() {
        let limits = Limits { memory: Some(64 << 20), pids: Some(100), ..Default::default() };
        let settings = limits.settings(Apply::Create);
        let props =
            unit_properties(&place("system.slice", "spawner-a.scope"), 42, "a", &settings, Version::V2);
        assert_eq!(get(&props, "PIDs"), Some(&Value::ArrayU32(vec![42])));
        assert_eq!(get(&props, "Slice"), Some(&Value::Str("system.slice".into())));
        assert_eq!(get(&props, "Delegate"), Some(&Value::Bool(true)));
        assert_eq!(get(&props, "DefaultDependencies"), Some(&Value::Bool(false)));
        assert_eq!(get(&props, "MemoryMax"), Some(&Value::U64(64 << 20)));
        assert_eq!(get(&props, "TasksMax"), Some(&Value::U64(100)));
        assert_eq!(get(&props, "Description"), Some(&Value::Str("spawner container a".into())));
        let slice = unit_properties(&place("k.slice", "k-p.slice"), 42, "a", &settings, Version::V2);
        assert_eq!(get(&slice, "Wants"), Some(&Value::Str("k.slice".into())));
        for absent in ["PIDs", "Slice", "Delegate"] {
            assert!(!names(&slice).contains(&absent), "a slice has no {absent}");
        }
    }

    #[test]
    fn resources_by_cgroup_version() {
        let limits = Limits {
            memory: Some(100 << 20),
            memory_swap: Some(150 << 20),
            cpu_shares: Some(1024),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            cpuset_cpus: Some("0".into()),
            ..Default::default()
        };
        let settings = limits.settings(Apply::Create);
        let v2 = resource_properties(&settings, Version::V2);
        assert_eq!(names(&v2), ["MemoryMax", "MemorySwapMax", "CPUWeight", "CPUQuotaPerSecUSec"]);
        assert_eq!(get(&v2, "MemorySwapMax"), Some(&Value::U64(50 << 20)));
        assert_eq!(get(&v2, "CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(get(&v2, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        let v1 = resource_properties(&settings, Version::V1);
        assert_eq!(names(&v1), ["MemoryLimit", "CPUShares", "CPUQuotaPerSecUSec"]);
        assert_eq!(get(&v1, "CPUShares"), Some(&Value::U64(1024)));
    }

    #[test]
    fn updates_lift_limits_as_infinity_and_quotas_round_up() {
        let lift = Limits { memory: Some(0), pids: Some(-1), cpu_quota: Some(-1), ..Default::default() };
        let props = resource_properties(&lift.settings(Apply::Update), Version::V2);
        for name in ["MemoryMax", "TasksMax", "CPUQuotaPerSecUSec"] {
            assert_eq!(get(&props, name), Some(&Value::U64(u64::MAX)), "{name}");
        }
        // 1 ms in a 30 ms period is 33333 µs a second: 40 ms once rounded up to whole percent.
        assert_eq!(quota_per_second(Max::Value(1_000), Some(30_000)), 40_000);
        assert_eq!(quota_per_second(Max::Value(150_000), None), 1_500_000);
    }

    #[test]
    fn start_and_stop_against_a_fake_systemd() {
        use crate::dbus::wire::{self as w, Message};
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut auth = Vec::new();
            while !auth.ends_with(b"\r\n") {
                let mut b = [0u8];
                s.read_exact(&mut b).unwrap();
                auth.push(b[0]);
            }
            s.write_all(b"OK 00\r\n").unwrap();
            let mut begin = [0u8; 7];
            s.read_exact(&mut begin).unwrap();
            let mut members = Vec::new();
            for _ in 0..2 {
                let mut fixed = [0u8; w::FIXED_HEADER];
                s.read_exact(&mut fixed).unwrap();
                let mut m = vec![0u8; w::message_length(&fixed).unwrap()];
                m[..w::FIXED_HEADER].copy_from_slice(&fixed);
                s.read_exact(&mut m[w::FIXED_HEADER..]).unwrap();
                let m = Message::parse(&m).unwrap();
                members.push(m.member.clone().unwrap());
                s.write_all(&crate::dbus::tests::fake::reply(m.serial, "/org/freedesktop/systemd1/job/1"))
                    .unwrap();
            }
            s.write_all(&crate::dbus::tests::fake::signal("JobRemoved", 1)).unwrap();
            members
        });
        let mut c = Connection::open(&path, false).unwrap();
        run_job(&mut c, "x.scope", "stop unit", "StopUnit", &[Arg::Str("x.scope"), Arg::Str("replace")])
            .unwrap();
        assert_eq!(peer.join().unwrap(), ["Subscribe", "StopUnit"]);
    }
}
