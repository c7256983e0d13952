//! `linux.namespaces` and the user namespace's `uidMappings` / `gidMappings`.

use super::checks;
use super::{IdMapping, Namespace, NamespaceKind, SpecError, TimeOffset};
use oci_spec::runtime as oci;

/// The namespaces, each kind at most once (the spec's MUST), joined ones by absolute path.
pub(super) fn namespaces(list: &[oci::LinuxNamespace]) -> Result<Vec<Namespace>, SpecError> {
    let mut out: Vec<Namespace> = Vec::with_capacity(list.len());
    for (i, ns) in list.iter().enumerate() {
        let kind = kind(ns.typ());
        if let Some(first) = out.iter().position(|n| n.kind == kind) {
            return Err(SpecError::invalid(
                format!("linux.namespaces[{i}].type"),
                format!("{:?} is given twice (also linux.namespaces[{first}])", kind.name()),
            ));
        }
        let path = match ns.path().as_deref() {
            Some(path) if !path.as_os_str().is_empty() => {
                Some(checks::absolute(&format!("linux.namespaces[{i}].path"), path)?)
            }
            _ => None,
        };
        out.push(Namespace { kind, path });
    }
    Ok(out)
}

fn kind(typ: oci::LinuxNamespaceType) -> NamespaceKind {
    use oci::LinuxNamespaceType as T;
    match typ {
        T::Mount => NamespaceKind::Mount,
        T::Pid => NamespaceKind::Pid,
        T::Network => NamespaceKind::Network,
        T::Ipc => NamespaceKind::Ipc,
        T::Uts => NamespaceKind::Uts,
        T::User => NamespaceKind::User,
        T::Cgroup => NamespaceKind::Cgroup,
        T::Time => NamespaceKind::Time,
    }
}

/// Whether the container has a namespace of `kind` of its own (new, or joined by path), rather
/// than the runtime's.
pub(super) fn has(namespaces: &[Namespace], kind: NamespaceKind) -> bool {
    namespaces.iter().any(|n| n.kind == kind)
}

/// `uidMappings` and `gidMappings`: only for a user namespace, and needed by a new one (a new user
/// namespace without mappings leaves every id unmapped: runc refuses it too). When a namespace is
/// joined by path, mappings may still be given (containerd and CRI-O write both); they are kept for
/// the core to compare with the namespace's own.
pub(super) fn id_mappings(
    namespaces: &[Namespace],
    uid: &[oci::LinuxIdMapping],
    gid: &[oci::LinuxIdMapping],
) -> Result<(Vec<IdMapping>, Vec<IdMapping>), SpecError> {
    let user = namespaces.iter().find(|n| n.kind == NamespaceKind::User);
    for (field, list) in [("linux.uidMappings", uid), ("linux.gidMappings", gid)] {
        match user {
            None if !list.is_empty() => {
                return Err(SpecError::invalid(field, "given, but linux.namespaces has no user namespace"))
            }
            Some(Namespace { path: None, .. }) if list.is_empty() => {
                return Err(SpecError::invalid(field, "required for a new user namespace"))
            }
            _ => {}
        }
    }
    Ok((mappings("linux.uidMappings", uid)?, mappings("linux.gidMappings", gid)?))
}

fn mappings(field: &str, list: &[oci::LinuxIdMapping]) -> Result<Vec<IdMapping>, SpecError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if m.size() == 0 {
            return Err(SpecError::invalid(format!("{at}.size"), "must be at least 1"));
        }
        // The last id of each range must be an id (uid_map(5) refuses ranges past 2^32 - 1).
        let past_end = |start: u32| u64::from(start) + u64::from(m.size()) > 1 << 32;
        for (name, start) in [("containerID", m.container_id()), ("hostID", m.host_id())] {
            if past_end(start) {
                return Err(SpecError::invalid(
                    &at,
                    format!("{name} {start} + size {} goes past the largest id, 4294967295", m.size()),
                ));
            }
        }
        out.push(IdMapping { container_id: m.container_id(), host_id: m.host_id(), size: m.size() });
    }
    Ok(out)
}

/// `linux.timeOffsets`: only for a time namespace the container makes (a joined one has its
/// offsets already), clocks `monotonic` and `boottime`, nanoseconds below one second.
pub(super) fn time_offsets(
    namespaces: &[Namespace],
    offsets: Option<&std::collections::HashMap<String, oci::LinuxTimeOffset>>,
) -> Result<Vec<TimeOffset>, SpecError> {
    let Some(offsets) = offsets.filter(|o| !o.is_empty()) else { return Ok(Vec::new()) };
    if !namespaces.iter().any(|n| n.kind == NamespaceKind::Time && n.path.is_none()) {
        return Err(SpecError::invalid(
            "linux.timeOffsets",
            "needs a new time namespace in linux.namespaces",
        ));
    }
    let mut out = Vec::with_capacity(offsets.len());
    for (clock, offset) in offsets {
        let at = format!("linux.timeOffsets.{clock}");
        if clock != "monotonic" && clock != "boottime" {
            return Err(SpecError::invalid(at, "not a clock a time namespace moves (monotonic, boottime)"));
        }
        let nanosecs = offset.nanosecs().unwrap_or(0);
        if nanosecs >= 1_000_000_000 {
            return Err(SpecError::invalid(
                format!("{at}.nanosecs"),
                format!("{nanosecs} is not below one second"),
            ));
        }
        out.push(TimeOffset { clock: clock.clone(), secs: offset.secs().unwrap_or(0), nanosecs });
    }
    // The map's order is arbitrary: a stable one.
    out.sort_by(|a, b| a.clock.cmp(&b.clock));
    Ok(out)
}
