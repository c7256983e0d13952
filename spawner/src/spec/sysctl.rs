//! `linux.sysctl`: kept only where the value stays inside the container, as runc decides it
//! (libcontainer/configs/validate): a sysctl that belongs to a namespace the container has of its
//! own. Anything else (`kernel.panic`, `vm.*`) would change the host, and is refused.

use super::namespaces::has;
use super::{checks, Namespace, NamespaceKind, SpecError};
use std::collections::{BTreeMap, HashMap};

/// IPC namespace sysctls besides `fs.mqueue.*`.
pub(crate) const IPC: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

pub(super) fn sysctl(
    entries: &HashMap<String, String>,
    namespaces: &[Namespace],
    hostname: Option<&str>,
    domainname: Option<&str>,
) -> Result<BTreeMap<String, String>, SpecError> {
    // In key order, so that of several bad keys the same one is named every time.
    let sorted: BTreeMap<&String, &String> = entries.iter().collect();
    for (key, value) in &sorted {
        let at = format!("linux.sysctl[{key:?}]");
        checks::no_nul(&at, value)?;
        let name = dotted(&at, key)?;
        let needs = |kind: NamespaceKind, what: &str| match has(namespaces, kind) {
            true => Ok(()),
            false => Err(SpecError::invalid(&at, format!("needs the container's own {what} namespace"))),
        };
        let conflicts = |field: &str, given: Option<&str>| match given {
            Some(_) => {
                Err(SpecError::invalid(&at, format!("conflicts with the {field} field: give one of them")))
            }
            None => Ok(()),
        };
        match name.as_str() {
            n if IPC.contains(&n) || n.starts_with("fs.mqueue.") => needs(NamespaceKind::Ipc, "IPC")?,
            // A network namespace joined by path might be the host's: the core, which can look,
            // has to check that one.
            n if n.starts_with("net.") => needs(NamespaceKind::Network, "network")?,
            "kernel.hostname" => {
                needs(NamespaceKind::Uts, "UTS")?;
                conflicts("hostname", hostname)?
            }
            "kernel.domainname" => {
                needs(NamespaceKind::Uts, "UTS")?;
                conflicts("domainname", domainname)?
            }
            _ => return Err(SpecError::invalid(&at, "not a namespaced sysctl: it would change the host")),
        }
    }
    Ok(entries.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// The key in dotted form, for matching: sysctl(8) also takes `/` as the separator. Every part
/// must be a name: an empty one (`net..x`, `net/../kernel/x`) could walk out of the part of
/// /proc/sys the prefix allows once the key becomes a path there.
fn dotted(at: &str, key: &str) -> Result<String, SpecError> {
    checks::no_nul(at, key)?;
    // Dotted, the parts cannot be empty, so neither `fs.mqueue.` nor `net.` alone passes below.
    if key.split(['.', '/']).any(str::is_empty) {
        return Err(SpecError::invalid(
            at,
            "not a sysctl name (a part is empty, or the key starts or ends with a separator)",
        ));
    }
    Ok(key.replace('/', "."))
}
