//! Profile files (`--security-opt seccomp=FILE`): Docker's format (`archMap`, rules with
//! `includes`/`excludes`, the old single `name`) or a plain OCI `linux.seccomp` object (the same
//! fields without Docker's). Every field is checked when the file is read, so that a misspelt field,
//! action or operator is an error naming it rather than a filter that quietly does something else.

use super::docker::{ConditionalRule, Gate, ProfileTemplate};
use super::{native, Action, ArgCondition, Flag, KernelVersion, Name, Op, Rule, SeccompError, MAX_ARGS};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProfileFile {
    default_action: Option<String>,
    default_errno_ret: Option<u32>,
    architectures: Option<Vec<String>>,
    arch_map: Option<Vec<ArchMapEntry>>,
    flags: Option<Vec<String>>,
    listener_path: Option<String>,
    listener_metadata: Option<String>,
    syscalls: Option<Vec<RuleEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ArchMapEntry {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RuleEntry {
    names: Option<Vec<String>>,
    /// Docker's format before `names`.
    name: Option<String>,
    action: String,
    errno_ret: Option<u32>,
    args: Option<Vec<ArgEntry>>,
    #[serde(rename = "comment")]
    _comment: Option<String>,
    includes: Option<GateEntry>,
    excludes: Option<GateEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ArgEntry {
    index: u32,
    value: u64,
    value_two: Option<u64>,
    op: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GateEntry {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

/// Reads a profile file's text into a template, to be resolved for the container's capabilities
/// and the running kernel.
pub fn parse(text: &str) -> Result<ProfileTemplate, SeccompError> {
    let file: ProfileFile = serde_json::from_str(text).map_err(SeccompError::Json)?;
    if file.listener_path.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err(SeccompError::Unsupported { at: "listenerPath".into(), what: "a seccomp agent".into() });
    }
    if file.listener_metadata.as_deref().is_some_and(|m| !m.is_empty()) {
        return Err(SeccompError::Unsupported {
            at: "listenerMetadata".into(),
            what: "a seccomp agent".into(),
        });
    }
    let default_action = file
        .default_action
        .as_deref()
        .ok_or(SeccompError::Missing { at: "profile".into(), what: "defaultAction" })?;
    let default_action = Action::from_name(default_action, file.default_errno_ret, "defaultAction")?;
    let architectures = match (file.architectures, file.arch_map) {
        (Some(a), Some(m)) if !a.is_empty() && !m.is_empty() => {
            return Err(SeccompError::BothArchitecturesAndArchMap)
        }
        (_, Some(map)) if !map.is_empty() => {
            // Docker keeps only this architecture's entry: it and its sub-architectures.
            let entry = map
                .into_iter()
                .find(|e| e.architecture == native::SCMP_ARCH)
                .ok_or(SeccompError::ArchitectureMissing { at: "archMap".into() })?;
            std::iter::once(entry.architecture).chain(entry.sub_architectures.unwrap_or_default()).collect()
        }
        (architectures, _) => architectures.unwrap_or_default(),
    };
    super::check_architectures(&architectures, "architectures")?;
    let flags =
        file.flags.unwrap_or_default().iter().map(|f| Flag::from_name(f)).collect::<Result<_, _>>()?;
    let rules = file.syscalls.unwrap_or_default().into_iter().enumerate().map(|(i, r)| rule(i, r));
    Ok(ProfileTemplate { default_action, architectures, flags, rules: rules.collect::<Result<_, _>>()? })
}

fn rule(i: usize, entry: RuleEntry) -> Result<ConditionalRule, SeccompError> {
    let names = match (entry.name, entry.names) {
        (Some(_), Some(names)) if !names.is_empty() => {
            return Err(SeccompError::BothNameAndNames { at: format!("syscalls[{i}]") })
        }
        (Some(name), _) => vec![name],
        (None, names) => names.unwrap_or_default(),
    };
    let names: Vec<Name> = names.into_iter().map(Name::Owned).collect();
    let at = format!("syscalls[{i}] ({})", names.join(", "));
    if names.is_empty() {
        return Err(SeccompError::Missing { at, what: "names" });
    }
    let action = Action::from_name(&entry.action, entry.errno_ret, &at)?;
    let args = entry.args.unwrap_or_default().into_iter().map(|a| arg(a, &at)).collect::<Result<_, _>>()?;
    let gate = |g: Option<GateEntry>, field: &str| -> Result<Gate, SeccompError> {
        let Some(g) = g else { return Ok(Gate::default()) };
        let min_kernel = match g.min_kernel {
            None => None,
            Some(v) => Some(min_kernel(&v).ok_or_else(|| SeccompError::KernelVersion {
                at: format!("{at}.{field}.minKernel"),
                value: v.clone(),
            })?),
        };
        let names =
            |names: Option<Vec<String>>| names.unwrap_or_default().into_iter().map(Name::Owned).collect();
        Ok(Gate { caps: names(g.caps), arches: names(g.arches), min_kernel })
    };
    Ok(ConditionalRule {
        includes: gate(entry.includes, "includes")?,
        excludes: gate(entry.excludes, "excludes")?,
        rule: Rule { names, action, args },
    })
}

fn arg(entry: ArgEntry, at: &str) -> Result<ArgCondition, SeccompError> {
    if entry.index >= MAX_ARGS {
        return Err(SeccompError::ArgIndex { at: at.into(), index: entry.index });
    }
    Ok(ArgCondition {
        index: entry.index as u8,
        op: Op::from_name(&entry.op, at)?,
        value: entry.value,
        value_two: entry.value_two.unwrap_or(0),
    })
}

/// Docker's `minKernel`: exactly MAJOR.MINOR, not 0.0.
fn min_kernel(text: &str) -> Option<KernelVersion> {
    let (major, minor) = text.split_once('.')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(major) || !all_digits(minor) {
        return None;
    }
    let version = KernelVersion { major: major.parse().ok()?, minor: minor.parse().ok()? };
    (version != KernelVersion { major: 0, minor: 0 }).then_some(version)
}

#[cfg(test)]
mod tests {
    use super::super::bpf::interpreter::{run, SeccompData};
    use super::super::{syscalls, Filter, Profile, ENOSYS, EPERM};
    use super::*;
    use rustix::thread::CapabilitySet;

    const KERNEL: KernelVersion = KernelVersion { major: 5, minor: 10 };

    fn ret(filter: &Filter, name: &str, args: &[u64]) -> u32 {
        let mut data = SeccompData {
            nr: syscalls::number(name).unwrap(),
            arch: native::AUDIT_ARCH,
            ..Default::default()
        };
        data.args[..args.len()].copy_from_slice(args);
        run(filter.instructions(), &data).0
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    /// Docker's format: archMap, names and the old name, includes and excludes on capabilities,
    /// architectures and kernel versions, comments, nulls where Go writes them.
    const DOCKER: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
            {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}
        ],
        "syscalls": [
            {"names": ["read", "write", "chown32"], "action": "SCMP_ACT_ALLOW", "args": null, "comment": ""},
            {"name": "getpid", "action": "SCMP_ACT_ALLOW", "includes": {}, "excludes": {}},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["chroot"], "action": "SCMP_ACT_ALLOW",
                "excludes": {"caps": ["CAP_SYS_ADMIN", "CAP_SYS_BOOT"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.11"}},
            {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.11"}},
            {"names": ["uname"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "arm64"]}},
            {"names": ["sync"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}},
            {"names": ["syncfs"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64", "arm64"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]
    }"#;

    #[test]
    fn docker_format_resolves_like_docker() {
        let template = parse(DOCKER).unwrap();
        let sub = if cfg!(target_arch = "x86_64") { "SCMP_ARCH_X86" } else { "SCMP_ARCH_ARM" };
        assert_eq!(template.architectures[..2], [native::SCMP_ARCH, sub]);
        let plain = template.resolve(CapabilitySet::empty(), KERNEL).compile().unwrap();
        let (allow, eperm) = (Action::Allow.ret(), Action::Errno(EPERM).ret());
        for name in ["read", "write", "getpid", "chroot", "kcmp", "uname"] {
            assert_eq!(ret(&plain, name, &[]), allow, "{name}");
        }
        for name in ["mount", "ptrace", "sync", "syncfs"] {
            assert_eq!(ret(&plain, name, &[]), eperm, "{name}");
        }
        assert_eq!(ret(&plain, "clone3", &[]), Action::Errno(ENOSYS).ret());
        // One capability of an exclude's list is enough to exclude; every one of an include's is needed.
        let admin = template.resolve(CapabilitySet::SYS_ADMIN, KernelVersion { major: 5, minor: 11 });
        let admin = admin.compile().unwrap();
        assert_eq!(ret(&admin, "mount", &[]), allow);
        assert_eq!(ret(&admin, "chroot", &[]), eperm);
        assert_eq!(ret(&admin, "ptrace", &[]), allow);
        assert_eq!(ret(&admin, "kcmp", &[]), eperm);
    }

    #[test]
    fn plain_oci_object() {
        let text = r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64", "SCMP_ARCH_X86"],
            "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [
                {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS",
                    "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getuid"], "action": "SCMP_ACT_LOG"},
                {"names": ["getgid"], "action": "SCMP_ACT_TRAP"},
                {"names": ["gettid"], "action": "SCMP_ACT_KILL"},
                {"names": ["getppid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}
            ]
        }"#;
        let profile = parse(text).unwrap().resolve(CapabilitySet::empty(), KERNEL);
        assert_eq!(profile.flags, [Flag::SpecAllow]);
        let f = profile.compile().unwrap();
        assert_eq!(ret(&f, "mkdirat", &[]), Action::Errno(13).ret());
        assert_eq!(ret(&f, "kill", &[1, 9]), Action::KillProcess.ret());
        assert_eq!(ret(&f, "kill", &[1, 15]), Action::Allow.ret());
        assert_eq!(ret(&f, "getuid", &[]), Action::Log.ret());
        assert_eq!(ret(&f, "getgid", &[]), Action::Trap.ret());
        assert_eq!(ret(&f, "gettid", &[]), Action::KillThread.ret());
        assert_eq!(ret(&f, "getppid", &[]), Action::Trace(7).ret());
        // A default that allows: nothing above the table is refused either.
        let above =
            SeccompData { nr: syscalls::MAX_NUMBER + 1, arch: native::AUDIT_ARCH, ..Default::default() };
        assert_eq!(run(f.instructions(), &above).0, Action::Allow.ret());
    }

    #[test]
    fn rules_apply_in_order_and_same_argument_conditions_split() {
        let text = r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 95,
            "syscalls": [
                {"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                    "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
                {"names": ["write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 4, "op": "SCMP_CMP_GE"}
                ]},
                {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 1, "value": 65280, "valueTwo": 21504, "op": "SCMP_CMP_MASKED_EQ"},
                    {"index": 2, "value": 0, "op": "SCMP_CMP_NE"}
                ]},
                {"names": ["close"], "action": "SCMP_ACT_ERRNO"}
            ]
        }"#;
        let f = parse(text).unwrap().resolve(CapabilitySet::empty(), KERNEL).compile().unwrap();
        let (allow, default) = (Action::Allow.ret(), Action::Errno(95).ret());
        assert_eq!(ret(&f, "write", &[2]), Action::Errno(5).ret());
        assert_eq!(ret(&f, "write", &[1]), allow);
        // Two conditions on argument 0: either one allows.
        assert_eq!(ret(&f, "read", &[1]), allow);
        assert_eq!(ret(&f, "read", &[7]), allow);
        assert_eq!(ret(&f, "read", &[2]), default);
        // Conditions on different arguments: both must hold.
        assert_eq!(ret(&f, "ioctl", &[0, 0x5401, 1]), allow);
        assert_eq!(ret(&f, "ioctl", &[0, 0x5401, 0]), default);
        assert_eq!(ret(&f, "ioctl", &[0, 0x54ff, 1]), allow);
        assert_eq!(ret(&f, "ioctl", &[0, 0x5501, 1]), default);
        // SCMP_ACT_ERRNO without errnoRet is EPERM, not the default's errno.
        assert_eq!(ret(&f, "close", &[]), Action::Errno(EPERM).ret());
    }

    /// The error for a profile with this one rule.
    fn rule_error(rule: &str) -> String {
        error(&format!(r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{rule}]}}"#))
    }

    #[test]
    fn mistakes_are_errors_that_name_them() {
        let e = rule_error(r#"{"nmaes": ["read"], "action": "SCMP_ACT_ALLOW"}"#);
        assert!(e.starts_with("unknown field `nmaes`"), "{e}");
        let e = rule_error(r#"{"names": ["read"], "action": "SCMP_ACT_ALOW"}"#);
        assert_eq!(e, r#"syscalls[0] (read): unknown action "SCMP_ACT_ALOW""#);
        let e = rule_error(r#"{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}"#);
        assert_eq!(e, "syscalls[0] (read): SCMP_ACT_NOTIFY is not supported (spawner has no seccomp agent)");
        let e = error(r#"{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock"}"#);
        assert!(e.starts_with("listenerPath: "), "{e}");
        let arg = |arg: &str| {
            rule_error(&format!(r#"{{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{arg}]}}"#))
        };
        let e = arg(r#"{"index": 0, "value": 1, "op": "SCMP_CMP_EQUAL"}"#);
        assert_eq!(e, r#"syscalls[0] (read): unknown op "SCMP_CMP_EQUAL""#);
        let e = arg(r#"{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}"#);
        assert_eq!(e, "syscalls[0] (read): argument index 6 (a syscall has arguments 0 to 5)");
        let e = arg(r#"{"index": 0, "value": 1, "op": "SCMP_CMP_EQ", "valueTow": 2}"#);
        assert!(e.starts_with("unknown field `valueTow`"), "{e}");
        let e =
            error(r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}"#);
        assert_eq!(e, r#"flags: unknown flag "SECCOMP_FILTER_FLAG_NEW_LISTENER""#);
        let e = error(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}"#);
        assert_eq!(e, "defaultAction: errnoRet 5000 is not an errno (0 to 4095)");
        let e = rule_error(r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}"#);
        assert!(e.contains("errnoRet only goes with SCMP_ACT_ERRNO or SCMP_ACT_TRACE"), "{e}");
        assert_eq!(error(r#"{"syscalls": []}"#), "profile: defaultAction is missing");
        let e =
            rule_error(r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}}"#);
        assert_eq!(e, r#"syscalls[0] (read).includes.minKernel: kernel version "4" is not MAJOR.MINOR"#);
        let e = rule_error(r#"{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}"#);
        assert_eq!(e, "syscalls[0]: both name and names are given");
        assert_eq!(rule_error(r#"{"action": "SCMP_ACT_ALLOW"}"#), "syscalls[0] (): names is missing");
        assert!(error("{").contains("EOF"));
    }

    #[test]
    fn a_profile_must_cover_this_architecture() {
        let other = if cfg!(target_arch = "x86_64") { "SCMP_ARCH_AARCH64" } else { "SCMP_ARCH_X86_64" };
        let e = error(&format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["{other}"]}}"#));
        assert!(e.starts_with("architectures: this host's architecture"), "{e}");
        let e = error(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{{"architecture": "{other}"}}]}}"#
        ));
        assert!(e.starts_with("archMap: this host's architecture"), "{e}");
        let e = error(r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_65"]}"#);
        assert_eq!(e, r#"architectures: unknown architecture "SCMP_ARCH_X86_65""#);
        let both = r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#;
        assert_eq!(error(both), "both architectures and archMap are given: use one of them");
        // None given: this architecture.
        let none: Profile =
            parse(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap().resolve(CapabilitySet::empty(), KERNEL);
        assert!(none.architectures.is_empty() && none.compile().is_ok());
    }
}
