//! [`validate`]: an oci-spec [`Spec`](oci::Spec) into a [`Config`], field by field, every field
//! either placed or refused; [`load`]: a bundle's `config.json` read, parsed and validated.

use super::{checks, devices, hooks, mounts, namespaces, process, resources, seccomp, sysctl};
use super::{json_path, Config, NamespaceKind, Process, Propagation, Root, SpecError};
use crate::cgroup::Limits;
use oci_spec::runtime as oci;
use rustix::thread::CapabilitySet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The longest host or domain name the kernel takes (`__NEW_UTS_LEN`).
const MAX_NAME: usize = 64;
/// personality(2)'s PER_LINUX32 (`linux/personality.h`); PER_LINUX is 0.
const PER_LINUX32: u32 = 0x0008;

/// Reads `BUNDLE/config.json` and validates it. A file that cannot be read, or is not a runtime
/// spec's JSON, is an error naming the file (and for the latter the line, column and field).
pub fn load(bundle: &Path) -> Result<Config, SpecError> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|source| SpecError::Read { path: path.clone(), source })?;
    let parse_error = |source: serde_json::Error| {
        let field = match source.classify() {
            serde_json::error::Category::Data => json_path::field_at(&text, source.line(), source.column()),
            _ => None,
        };
        SpecError::Parse { path: path.clone(), line: source.line(), column: source.column(), field, source }
    };
    let spec: oci::Spec = serde_json::from_slice(&text).map_err(parse_error)?;
    let beyond: BeyondOciSpec = serde_json::from_slice(&text).map_err(parse_error)?;
    if beyond.freebsd.is_some() {
        return Err(SpecError::unsupported("freebsd"));
    }
    beyond.device_numbers()?;
    validate(&spec, bundle)
}

/// Reads a JSON file of one part of a spec (`T`), with `load`'s error reporting.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path, text: Option<Vec<u8>>) -> Result<T, SpecError> {
    let text = match text {
        Some(text) => text,
        None => std::fs::read(path).map_err(|source| SpecError::Read { path: path.to_path_buf(), source })?,
    };
    serde_json::from_slice(&text).map_err(|source: serde_json::Error| {
        let field = match source.classify() {
            serde_json::error::Category::Data => json_path::field_at(&text, source.line(), source.column()),
            _ => None,
        };
        SpecError::Parse {
            path: path.to_path_buf(),
            line: source.line(),
            column: source.column(),
            field,
            source,
        }
    })
}

/// `runc exec --process FILE`: one `process` object, checked as config.json's is.
pub fn load_process(path: &Path) -> Result<Process, SpecError> {
    let process: oci::Process = read_json(path, None)?;
    super::process::process(&process)
}

/// `runc update --resources FILE` (or `-`: `text` read from stdin): one `linux.resources` object.
pub fn load_resources(path: &Path, text: Option<Vec<u8>>) -> Result<Limits, SpecError> {
    let resources: oci::LinuxResources = read_json(path, text)?;
    super::resources::resources(&resources)
}

/// What oci-spec 0.9 drops unseen: fields it does not have, and whether fields it defaults were
/// given at all.
#[derive(Deserialize)]
struct BeyondOciSpec {
    /// Runtime spec 1.3's FreeBSD platform.
    freebsd: Option<serde::de::IgnoredAny>,
    linux: Option<BeyondLinux>,
}

#[derive(Deserialize)]
struct BeyondLinux {
    devices: Option<Vec<DeviceNumbers>>,
}

/// A `linux.devices` entry's numbers as given: oci-spec reads a missing one as 0.
#[derive(Deserialize)]
struct DeviceNumbers {
    #[serde(rename = "type")]
    kind: Option<String>,
    major: Option<serde::de::IgnoredAny>,
    minor: Option<serde::de::IgnoredAny>,
}

impl BeyondOciSpec {
    /// "`major, minor` (int64, REQUIRED unless `type` is `p`)".
    fn device_numbers(&self) -> Result<(), SpecError> {
        let devices = self.linux.as_ref().and_then(|l| l.devices.as_deref()).unwrap_or_default();
        for (i, d) in devices.iter().enumerate() {
            if d.kind.as_deref() == Some("p") {
                continue;
            }
            for (field, given) in [("major", d.major.is_some()), ("minor", d.minor.is_some())] {
                if !given {
                    return Err(SpecError::invalid(
                        format!("linux.devices[{i}].{field}"),
                        "required for a device node (type c, u or b)",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The [`Config`] a spec describes, with relative paths resolved against `bundle` (the bundle
/// directory, itself made absolute against the current directory if it is not).
pub fn validate(spec: &oci::Spec, bundle: &Path) -> Result<Config, SpecError> {
    version(spec.version())?;
    platforms(spec)?;
    let bundle =
        std::path::absolute(bundle).map_err(|source| SpecError::Bundle { path: bundle.into(), source })?;
    let process = spec.process().as_ref().map(process::process).transpose()?;
    let hostname = name("hostname", spec.hostname())?;
    let domainname = name("domainname", spec.domainname())?;
    let linux = spec.linux().as_ref();
    if let Some(linux) = linux {
        unsupported_linux_fields(linux)?;
    }

    let namespaces =
        namespaces::namespaces(linux.and_then(|l| l.namespaces().as_deref()).unwrap_or_default())?;
    for (field, value) in [("hostname", &hostname), ("domainname", &domainname)] {
        // The spec: "you can only set this if your bundle creates a new UTS namespace"; runc
        // accepts a joined one too.
        if value.is_some() && !namespaces::has(&namespaces, NamespaceKind::Uts) {
            return Err(SpecError::invalid(
                field,
                "needs a UTS namespace (linux.namespaces has no uts entry)",
            ));
        }
    }
    let (uid_mappings, gid_mappings) = namespaces::id_mappings(
        &namespaces,
        linux.and_then(|l| l.uid_mappings().as_deref()).unwrap_or_default(),
        linux.and_then(|l| l.gid_mappings().as_deref()).unwrap_or_default(),
    )?;
    let time_offsets = namespaces::time_offsets(&namespaces, linux.and_then(|l| l.time_offsets().as_ref()))?;
    let sysctl = match linux.and_then(|l| l.sysctl().as_ref()) {
        Some(entries) => sysctl::sysctl(entries, &namespaces, hostname.as_deref(), domainname.as_deref())?,
        None => BTreeMap::new(),
    };
    let resources = match linux.and_then(|l| l.resources().as_ref()) {
        Some(r) => resources::resources(r)?,
        None => Limits::default(),
    };
    let bounding = process.as_ref().map_or(CapabilitySet::empty(), |p| p.capabilities.bounding);
    let seccomp = match linux.and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(seccomp::seccomp(s, bounding)?),
        None => None,
    };
    let paths = |field: &str, list: Option<&Vec<String>>| -> Result<Vec<PathBuf>, SpecError> {
        let list = list.map(Vec::as_slice).unwrap_or_default();
        list.iter()
            .enumerate()
            .map(|(i, p)| checks::absolute(&format!("{field}[{i}]"), Path::new(p)))
            .collect()
    };

    Ok(Config {
        oci_version: spec.version().clone(),
        root: root(spec.root().as_ref(), &bundle)?,
        mounts: mounts::mounts(spec.mounts().as_deref().unwrap_or_default(), &bundle)?,
        process,
        hostname,
        domainname,
        namespaces,
        uid_mappings,
        gid_mappings,
        sysctl,
        resources,
        cgroups_path: cgroups_path(linux.and_then(|l| l.cgroups_path().as_deref()))?,
        devices: devices::devices(linux.and_then(|l| l.devices().as_deref()).unwrap_or_default())?,
        seccomp,
        rootfs_propagation: rootfs_propagation(linux.and_then(|l| l.rootfs_propagation().as_deref()))?,
        masked_paths: paths("linux.maskedPaths", linux.and_then(|l| l.masked_paths().as_ref()))?,
        readonly_paths: paths("linux.readonlyPaths", linux.and_then(|l| l.readonly_paths().as_ref()))?,
        personality: personality(linux.and_then(|l| l.personality().as_ref()))?,
        time_offsets,
        hooks: match spec.hooks() {
            Some(h) => hooks::hooks(h)?,
            None => Default::default(),
        },
        annotations: annotations(spec.annotations().as_ref())?,
    })
}

/// `annotations`: "Keys MUST NOT be an empty string"; any other key is kept, known or not.
fn annotations(
    map: Option<&std::collections::HashMap<String, String>>,
) -> Result<BTreeMap<String, String>, SpecError> {
    let map: BTreeMap<String, String> =
        map.into_iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
    match map.contains_key("") {
        true => Err(SpecError::invalid("annotations", "a key is an empty string")),
        false => Ok(map),
    }
}

/// `ociVersion`: SemVer with major version 1 (`1.0.2`, `1.2.1`, `1.0.0-rc5`, `1.3.0+dev`).
/// Runtime spec versions are compatible within a major version; 0.x predates the compatibility
/// promise and a 2.x would be a different format.
fn version(v: &str) -> Result<(), SpecError> {
    if v.is_empty() {
        return Err(SpecError::invalid("ociVersion", "required"));
    }
    let (core, suffix) = match v.find(['-', '+']) {
        Some(at) => (&v[..at], Some(&v[at + 1..])),
        None => (v, None),
    };
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = core.split('.').collect();
    let semver = parts.len() == 3 && parts.iter().all(|p| number(p)) && suffix != Some("");
    match (semver, parts.first()) {
        (true, Some(&"1")) => Ok(()),
        (true, _) => {
            Err(SpecError::invalid("ociVersion", format!("{v:?}: spawner implements runtime spec 1.x")))
        }
        (false, _) => {
            Err(SpecError::invalid("ociVersion", format!("{v:?} is not a version (MAJOR.MINOR.PATCH)")))
        }
    }
}

/// Other platforms' sections, and oci-spec's top-level id mappings (not part of the runtime
/// spec, which has them under `linux`).
fn platforms(spec: &oci::Spec) -> Result<(), SpecError> {
    for (field, set) in [
        ("solaris", spec.solaris().is_some()),
        ("windows", spec.windows().is_some()),
        ("vm", spec.vm().is_some()),
        ("zos", spec.zos().is_some()),
    ] {
        if set {
            return Err(SpecError::unsupported(field));
        }
    }
    for (field, list) in [("uidMappings", spec.uid_mappings()), ("gidMappings", spec.gid_mappings())] {
        if list.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(SpecError::invalid(
                field,
                format!("not a top-level field: user namespace mappings go in linux.{field}"),
            ));
        }
    }
    Ok(())
}

/// `linux` fields spawner does not implement: refused when set, each by its name.
fn unsupported_linux_fields(linux: &oci::Linux) -> Result<(), SpecError> {
    for (field, set) in [
        ("linux.mountLabel", linux.mount_label().as_deref().is_some_and(|m| !m.is_empty())),
        ("linux.intelRdt", linux.intel_rdt().is_some()),
        ("linux.memoryPolicy", linux.memory_policy().is_some()),
        ("linux.netDevices", linux.net_devices().as_ref().is_some_and(|d| !d.is_empty())),
    ] {
        if set {
            return Err(SpecError::unsupported(field));
        }
    }
    Ok(())
}

/// `root`: required on Linux; a relative path is the bundle's.
fn root(root: Option<&oci::Root>, bundle: &Path) -> Result<Root, SpecError> {
    let root = root.ok_or_else(|| SpecError::invalid("root", "required"))?;
    Ok(Root {
        path: checks::in_bundle("root.path", root.path(), bundle)?,
        readonly: root.readonly().unwrap_or(false),
    })
}

/// `hostname` / `domainname`: an empty one is none (what Go writes for "not set").
fn name(field: &str, value: &Option<String>) -> Result<Option<String>, SpecError> {
    let Some(name) = value.as_deref().filter(|n| !n.is_empty()) else { return Ok(None) };
    checks::no_nul(field, name)?;
    if name.len() > MAX_NAME {
        return Err(SpecError::invalid(field, format!("{name:?} is longer than {MAX_NAME} bytes")));
    }
    Ok(Some(name.to_owned()))
}

/// `linux.cgroupsPath`: a path, absolute (below the cgroup mount) or relative (below spawner's
/// own cgroup), or systemd's `slice:prefix:name`, kept as it is: which form is right depends on the
/// cgroup driver the runtime is run with, and the core checks it against that. A path going up
/// (`..`) would leave the part of the tree it is given.
fn cgroups_path(path: Option<&Path>) -> Result<Option<PathBuf>, SpecError> {
    const FIELD: &str = "linux.cgroupsPath";
    let Some(path) = path.filter(|p| !p.as_os_str().is_empty()) else { return Ok(None) };
    let text = path.to_string_lossy();
    checks::no_nul(FIELD, &text)?;
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(SpecError::invalid(FIELD, format!("{text:?} goes up (..)")));
    }
    Ok(Some(path.to_owned()))
}

fn rootfs_propagation(value: Option<&str>) -> Result<Option<Propagation>, SpecError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => mounts::propagation(v).map(Some).ok_or_else(|| {
            SpecError::invalid(
                "linux.rootfsPropagation",
                format!("{v:?} is not shared, slave, private or unbindable (or rshared, rslave…)"),
            )
        }),
    }
}

/// `linux.personality`: the execution domain; no flag is defined by the spec yet, so any is refused.
fn personality(p: Option<&oci::LinuxPersonality>) -> Result<Option<u32>, SpecError> {
    let Some(p) = p else { return Ok(None) };
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(SpecError::unsupported("linux.personality.flags"));
    }
    Ok(Some(match p.domain() {
        oci::LinuxPersonalityDomain::PerLinux => 0,
        oci::LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    }))
}
