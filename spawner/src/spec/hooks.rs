//! `hooks`: the six lists, in order. `prestart` is deprecated by the spec, but engines still
//! write it (Docker's network setup, podman's hooks), so it is kept.

use super::checks;
use super::{Hook, Hooks, SpecError};
use oci_spec::runtime as oci;

// oci-spec marks the `prestart` field deprecated, and with it its getter.
#[allow(deprecated)]
pub(super) fn hooks(h: &oci::Hooks) -> Result<Hooks, SpecError> {
    let list = |name: &str, list: &Option<Vec<oci::Hook>>| -> Result<Vec<Hook>, SpecError> {
        let list = list.as_deref().unwrap_or_default();
        list.iter().enumerate().map(|(i, hook)| self::hook(&format!("hooks.{name}[{i}]"), hook)).collect()
    };
    Ok(Hooks {
        prestart: list("prestart", h.prestart())?,
        create_runtime: list("createRuntime", h.create_runtime())?,
        create_container: list("createContainer", h.create_container())?,
        start_container: list("startContainer", h.start_container())?,
        poststart: list("poststart", h.poststart())?,
        poststop: list("poststop", h.poststop())?,
    })
}

fn hook(at: &str, h: &oci::Hook) -> Result<Hook, SpecError> {
    let timeout = match h.timeout() {
        None => None,
        Some(t) => Some(u32::try_from(t).ok().filter(|&t| t > 0).ok_or_else(|| {
            SpecError::invalid(format!("{at}.timeout"), format!("{t} is not a number of seconds above 0"))
        })?),
    };
    Ok(Hook {
        path: checks::absolute(&format!("{at}.path"), h.path())?,
        args: checks::args(&format!("{at}.args"), h.args().as_deref().unwrap_or_default())?,
        env: checks::env(&format!("{at}.env"), h.env().as_deref().unwrap_or_default())?,
        timeout,
    })
}
