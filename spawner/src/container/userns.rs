//! A user namespace of the container's own (`linux.uidMappings`, `linux.gidMappings`). clone makes
//! it together with the other new namespaces, so that they all belong to it (a mount or a sysctl in
//! them needs privilege in it, never on the host). While the process waits for the go byte, spawner
//! writes its id maps; the process then becomes the namespace's root before anything else, so that
//! what it creates in the root file system belongs to the container's root, not to the host's.

use crate::spec::IdMapping;

/// Writes `/proc/PID/uid_map` and `gid_map` (spawner is root on the host: any mapping, and
/// setgroups stays allowed in the namespace).
pub fn write_maps(pid: i32, uid: &[IdMapping], gid: &[IdMapping]) -> Result<(), String> {
    for (file, mappings, field) in
        [("uid_map", uid, "linux.uidMappings"), ("gid_map", gid, "linux.gidMappings")]
    {
        let text: String =
            mappings.iter().map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size)).collect();
        let path = format!("/proc/{pid}/{file}");
        // One write: the kernel takes a map once, whole.
        std::fs::write(&path, text.as_bytes()).map_err(|e| format!("{field}: write {path}: {e}"))?;
    }
    Ok(())
}

/// In the container's process, right after the maps are written (or after it joined a user
/// namespace): uid and gid 0 of the namespace, no supplementary groups. Its capabilities in the
/// namespace stay whole (it was not root there before, so nothing is dropped).
pub fn become_root() -> Result<(), String> {
    use rustix::process::{Gid, Uid};
    let unmapped = |what: &str, e: rustix::io::Errno| match e {
        rustix::io::Errno::INVAL => format!("become root in the user namespace: {what} 0 is not mapped"),
        e => format!("become root in the user namespace: set{what}: {e}"),
    };
    rustix::thread::set_thread_res_gid(Gid::ROOT, Gid::ROOT, Gid::ROOT).map_err(|e| unmapped("gid", e))?;
    rustix::thread::set_thread_groups(&[]).map_err(|e| format!("setgroups: {e}"))?;
    rustix::thread::set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT).map_err(|e| unmapped("uid", e))
}
