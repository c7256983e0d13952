//! `linux.devices`: the device nodes to make in the container (not the cgroup's device rules,
//! which are `linux.resources.devices`, in `resources`).

use super::checks;
use super::{Device, DeviceKind, SpecError};
use crate::cgroup::devices::{MAX_MAJOR, MAX_MINOR};
use oci_spec::runtime as oci;

/// Permission bits of a node whose `fileMode` is not given (runc's default).
const DEFAULT_MODE: u32 = 0o666;
/// The permission bits of a mode; the file type comes from `type` (runc drops the rest too).
const PERMISSION_BITS: u32 = 0o7777;

pub(super) fn devices(list: &[oci::LinuxDevice]) -> Result<Vec<Device>, SpecError> {
    list.iter().enumerate().map(|(i, d)| device(&format!("linux.devices[{i}]"), d)).collect()
}

fn device(at: &str, d: &oci::LinuxDevice) -> Result<Device, SpecError> {
    let kind = match d.typ() {
        oci::LinuxDeviceType::C | oci::LinuxDeviceType::U => DeviceKind::Char,
        oci::LinuxDeviceType::B => DeviceKind::Block,
        oci::LinuxDeviceType::P => DeviceKind::Fifo,
        oci::LinuxDeviceType::A => {
            return Err(SpecError::invalid(format!("{at}.type"), "\"a\" is not a kind of node: c, u, b or p"))
        }
    };
    // A FIFO has no device number; the spec does not require one.
    let number = |field: &str, value: i64, max: u32| match kind {
        DeviceKind::Fifo => Ok(0),
        _ => u32::try_from(value).ok().filter(|&n| n <= max).ok_or_else(|| {
            SpecError::invalid(
                format!("{at}.{field}"),
                format!("{value} is not a device {field} number (0 to {max})"),
            )
        }),
    };
    Ok(Device {
        path: checks::absolute(&format!("{at}.path"), d.path())?,
        kind,
        major: number("major", d.major(), MAX_MAJOR)?,
        minor: number("minor", d.minor(), MAX_MINOR)?,
        mode: d.file_mode().map_or(DEFAULT_MODE, |m| m & PERMISSION_BITS),
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}
