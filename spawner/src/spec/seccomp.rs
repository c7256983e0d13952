//! `linux.seccomp` into a [`Profile`], through the same reader as `--security-opt seccomp=FILE`
//! (`crate::seccomp::json`), which takes OCI's `linux.seccomp` object as it is: oci-spec's types
//! are serialized back to that JSON and read there, so both ways in check a profile the same way.
//!
//! What oci-spec writes and that reader takes differ in two places, settled here first: oci-spec
//! knows `SCMP_ARCH_NATIVE` (libseccomp's name for "this one"), and the flag
//! `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`, which only means something to a seccomp agent.

use super::SpecError;
use crate::seccomp::{json, native, KernelVersion, Profile, SeccompError, MAX_ARGS};
use oci_spec::runtime as oci;
use rustix::thread::CapabilitySet;

/// The profile for a process whose bounding set is `bounding` (OCI rules have no capability gates,
/// but the reader's templates do, and are resolved the one way).
pub(super) fn seccomp(s: &oci::LinuxSeccomp, bounding: CapabilitySet) -> Result<Profile, SpecError> {
    for (i, flag) in s.flags().iter().flatten().enumerate() {
        if *flag == oci::LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv {
            return Err(SpecError::unsupported_value(
                format!("linux.seccomp.flags[{i}]"),
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (for seccomp agents)",
            ));
        }
    }
    // oci-spec reads the index as a usize, the reader as a u32: past either, name the field here.
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        for (j, arg) in rule.args().iter().flatten().enumerate() {
            if arg.index() >= MAX_ARGS as usize {
                return Err(SpecError::invalid(
                    format!("linux.seccomp.syscalls[{i}].args[{j}].index"),
                    format!("{} is not an argument index (0 to {})", arg.index(), MAX_ARGS - 1),
                ));
            }
        }
    }
    let json_error = |e| SpecError::Seccomp { source: SeccompError::Json(e) };
    let mut value = serde_json::to_value(s).map_err(json_error)?;
    if let Some(arches) = value.get_mut("architectures").and_then(serde_json::Value::as_array_mut) {
        for arch in arches.iter_mut().filter(|a| *a == "SCMP_ARCH_NATIVE") {
            *arch = native::SCMP_ARCH.into();
        }
    }
    let text = serde_json::to_string(&value).map_err(json_error)?;
    let template = json::parse(&text).map_err(|source| SpecError::Seccomp { source })?;
    let kernel = KernelVersion::running().map_err(|source| SpecError::Seccomp { source })?;
    Ok(template.resolve(bounding, kernel))
}
