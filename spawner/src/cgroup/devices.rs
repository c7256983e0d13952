//! Device access rules for a container's cgroup, as data: the OCI `linux.resources.devices`
//! entries (`{allow, type, major, minor, access}`), Docker's rule syntax (`c 1:3 rwm`, `b 7:* r`,
//! `a *:* rwm`, as in `--device-cgroup-rule`), Docker's default list, and the lines the v1 devices
//! controller is given. The v2 enforcement (a BPF program) is compiled in [`super::device_bpf`].
//!
//! Meaning of a rule list (what both enforcements implement): a device access that no rule
//! matches is denied; otherwise each requested access bit (read, write, mknod) is decided by the
//! last rule that matches the device and names that bit, and the request is allowed only if every
//! one of its bits is. So later rules override earlier ones: `deny a *:* rwm` first, then allows.

use std::fmt;
use std::ops::BitOr;
use std::str::FromStr;

use super::{Error, Result};

/// The largest major and minor numbers a Linux device can have (`dev_t` is 12 + 20 bits inside
/// the kernel). A rule beyond them could never match, and staying within them keeps every
/// number a positive 32-bit immediate in the BPF program.
pub const MAX_MAJOR: u32 = (1 << 12) - 1;
pub const MAX_MINOR: u32 = (1 << 20) - 1;

/// Which devices a rule is about: OCI's and the kernel's `type` letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// `a`: character and block devices.
    All,
    /// `c`
    Char,
    /// `b`
    Block,
}

impl DeviceKind {
    pub fn letter(self) -> char {
        match self {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        }
    }
}

/// A set of device accesses: read, write, mknod (`rwm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Access(u8);

impl Access {
    pub const NONE: Access = Access(0);
    pub const READ: Access = Access(1);
    pub const WRITE: Access = Access(2);
    pub const MKNOD: Access = Access(4);
    pub const ALL: Access = Access(7);

    pub fn contains(self, other: Access) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// One to three of the letters `r`, `w`, `m`, in any order.
    pub fn from_letters(s: &str) -> Option<Access> {
        if s.is_empty() || s.len() > 3 {
            return None;
        }
        s.chars().try_fold(Access::NONE, |acc, c| match c {
            'r' => Some(acc | Access::READ),
            'w' => Some(acc | Access::WRITE),
            'm' => Some(acc | Access::MKNOD),
            _ => None,
        })
    }
}

impl BitOr for Access {
    type Output = Access;

    fn bitor(self, other: Access) -> Access {
        Access(self.0 | other.0)
    }
}

/// `rwm` letters, always in that order.
impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, letter) in [(Access::READ, "r"), (Access::WRITE, "w"), (Access::MKNOD, "m")] {
            if self.contains(bit) {
                f.write_str(letter)?;
            }
        }
        Ok(())
    }
}

impl FromStr for Access {
    type Err = Error;

    fn from_str(s: &str) -> Result<Access> {
        Access::from_letters(s)
            .ok_or_else(|| Error::Invalid(format!("device access {s:?} must be one to three of r, w, m")))
    }
}

/// One device cgroup rule. `None` for major or minor is the wildcard `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
}

impl DeviceRule {
    /// Allow `access` to one character device.
    pub const fn allow_char(major: u32, minor: Option<u32>, access: Access) -> DeviceRule {
        DeviceRule { allow: true, kind: DeviceKind::Char, major: Some(major), minor, access }
    }

    /// `deny a *:* rwm`: every device, every access.
    pub const DENY_ALL: DeviceRule =
        DeviceRule { allow: false, kind: DeviceKind::All, major: None, minor: None, access: Access::ALL };

    /// `allow a *:* rwm` (what `--privileged` amounts to).
    pub const ALLOW_ALL: DeviceRule = DeviceRule { allow: true, ..DeviceRule::DENY_ALL };

    /// Parse Docker's rule syntax, `TYPE MAJOR:MINOR ACCESS` (`c 1:3 rwm`, `b 7:* r`, `a *:* m`),
    /// into an allowing (`--device-cgroup-rule`) or denying rule.
    pub fn parse(allow: bool, text: &str) -> Result<DeviceRule> {
        let invalid = |why: &str| Error::Invalid(format!("device rule {text:?}: {why}"));
        let fields: Vec<&str> = text.split(' ').collect();
        let [kind, numbers, access] = fields.as_slice() else {
            return Err(invalid("expected TYPE MAJOR:MINOR ACCESS, e.g. \"c 1:3 rwm\""));
        };
        let kind = match *kind {
            "a" => DeviceKind::All,
            "c" => DeviceKind::Char,
            "b" => DeviceKind::Block,
            _ => return Err(invalid("type must be a, c or b")),
        };
        let (major, minor) = numbers.split_once(':').ok_or_else(|| invalid("expected MAJOR:MINOR"))?;
        let number = |s: &str| -> Result<Option<u32>> {
            match s {
                "*" => Ok(None),
                _ if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                    s.parse().map(Some).map_err(|_| invalid("device number out of range"))
                }
                _ => Err(invalid("major and minor must be numbers or *")),
            }
        };
        let rule = DeviceRule {
            allow,
            kind,
            major: number(major)?,
            minor: number(minor)?,
            access: Access::from_letters(access)
                .ok_or_else(|| invalid("access must be one to three of r, w, m"))?,
        };
        rule.validate()?;
        Ok(rule)
    }

    /// Docker's and the v1 controller's form: `c 1:3 rwm`, `a *:* rwm`.
    pub fn cgroup_line(&self) -> String {
        let number = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        format!("{} {}:{} {}", self.kind.letter(), number(self.major), number(self.minor), self.access)
    }

    /// Matches every device and every access: rules before it can no longer decide anything.
    pub fn is_catch_all(&self) -> bool {
        self.kind == DeviceKind::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == Access::ALL
    }

    /// An access must be named, and numbers must be ones a device can have.
    pub fn validate(&self) -> Result<()> {
        if self.access.is_empty() {
            return Err(Error::Invalid(format!("device rule {self}: no access (r, w, m) given")));
        }
        if self.major.is_some_and(|m| m > MAX_MAJOR) || self.minor.is_some_and(|m| m > MAX_MINOR) {
            return Err(Error::Invalid(format!(
                "device rule {self}: device numbers go up to {MAX_MAJOR}:{MAX_MINOR}"
            )));
        }
        Ok(())
    }
}

/// `allow c 1:3 rwm`, `deny a *:* rwm`.
impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", if self.allow { "allow" } else { "deny" }, self.cgroup_line())
    }
}

/// Docker's default for a container that is not `--privileged`: nothing, except creating any
/// device node (opening it is another matter) and using the few devices every process expects.
/// This is moby's default spec (deny all; null, zero, urandom, random, tty, console) plus what runc
/// adds to every container (`specconv.AllowedDevices`: mknod of any char and block device, full,
/// ptmx, the devpts range 136:*). runc 1.2.0-1.2.3 left out tun/tap (10:200), which runc had
/// allowed since its first version; runc 1.2.4 and crun put it back for compatibility. It stays
/// out here: a container that wants /dev/net/tun asks for it.
pub fn docker_default() -> Vec<DeviceRule> {
    let mut rules = vec![DeviceRule::DENY_ALL];
    rules.extend(always_allowed());
    rules
}

/// What every container may use whatever its spec's rules say, as runc and crun append them after
/// those rules: mknod of any node (opening it is what the rules decide) and the nodes the OCI spec
/// says a runtime supplies (null, zero, full, random, urandom, tty, console, ptmx, pts/*).
/// containerd's specs deny everything and count on the runtime for these.
pub fn always_allowed() -> Vec<DeviceRule> {
    let rwm = |major, minor| DeviceRule::allow_char(major, Some(minor), Access::ALL);
    vec![
        DeviceRule { allow: true, kind: DeviceKind::Char, major: None, minor: None, access: Access::MKNOD },
        DeviceRule { allow: true, kind: DeviceKind::Block, major: None, minor: None, access: Access::MKNOD },
        rwm(1, 3),                                      // null
        rwm(1, 5),                                      // zero
        rwm(1, 7),                                      // full
        rwm(1, 8),                                      // random
        rwm(1, 9),                                      // urandom
        rwm(5, 0),                                      // tty
        rwm(5, 1),                                      // console
        rwm(5, 2),                                      // ptmx
        DeviceRule::allow_char(136, None, Access::ALL), // pts/*
    ]
}

/// The v1 controller file a rule line goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum V1File {
    Allow,
    Deny,
}

impl V1File {
    pub(crate) fn name(self) -> &'static str {
        match self {
            V1File::Allow => "devices.allow",
            V1File::Deny => "devices.deny",
        }
    }
}

/// The writes that give a new v1 devices cgroup `rules`, in order.
///
/// A new v1 cgroup inherits its parent's list, usually "allow everything", so it starts with `a`
/// into devices.deny (deny everything, forget inherited exceptions) unless the rules start that
/// way themselves; then each rule goes to devices.allow or devices.deny in order. `a` lines are
/// special to the kernel: it takes any line starting with `a` as "reset to allow/deny all", so
/// only a catch-all rule is written as `a`, and an `a` rule with numbers or fewer accesses is
/// written as its `c` and `b` halves.
///
/// One difference from the BPF program remains, the kernel's own: with deny-all as the default,
/// a deny only takes accesses away from an allow line for exactly the same type and numbers, so a
/// deny inside a wider allow (`c 136:5` after `c 136:*`) changes nothing on v1.
pub(crate) fn v1_writes(rules: &[DeviceRule]) -> Vec<(V1File, String)> {
    let mut writes = Vec::with_capacity(rules.len() + 1);
    if !rules.first().is_some_and(|r| r.is_catch_all() && !r.allow) {
        writes.push((V1File::Deny, "a".to_owned()));
    }
    for rule in rules {
        let file = if rule.allow { V1File::Allow } else { V1File::Deny };
        if rule.is_catch_all() {
            writes.push((file, "a".to_owned()));
        } else if rule.kind == DeviceKind::All {
            for kind in [DeviceKind::Char, DeviceKind::Block] {
                writes.push((file, DeviceRule { kind, ..*rule }.cgroup_line()));
            }
        } else {
            writes.push((file, rule.cgroup_line()));
        }
    }
    writes
}

/// Whether `rules` allow `access` to a device: the meaning stated at the top of this module,
/// written plainly, for checking the BPF program against.
#[cfg(test)]
pub(crate) fn allows(rules: &[DeviceRule], kind: DeviceKind, major: u32, minor: u32, access: Access) -> bool {
    [Access::READ, Access::WRITE, Access::MKNOD].into_iter().filter(|&bit| access.contains(bit)).all(|bit| {
        rules
            .iter()
            .rev()
            .find(|r| {
                (r.kind == DeviceKind::All || r.kind == kind)
                    && (r.major.is_none() || r.major == Some(major))
                    && (r.minor.is_none() || r.minor == Some(minor))
                    && r.access.contains(bit)
            })
            .is_some_and(|r| r.allow)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_docker_syntax() {
        let rule = DeviceRule::parse(true, "c 1:3 rwm").unwrap();
        assert_eq!(rule, DeviceRule::allow_char(1, Some(3), Access::ALL));
        assert_eq!(rule.cgroup_line(), "c 1:3 rwm");
        assert_eq!(rule.to_string(), "allow c 1:3 rwm");

        let rule = DeviceRule::parse(false, "b 7:* r").unwrap();
        assert_eq!(
            rule,
            DeviceRule {
                allow: false,
                kind: DeviceKind::Block,
                major: Some(7),
                minor: None,
                access: Access::READ
            }
        );
        assert_eq!(rule.to_string(), "deny b 7:* r");

        let rule = DeviceRule::parse(false, "a *:* rwm").unwrap();
        assert_eq!(rule, DeviceRule::DENY_ALL);
        assert!(rule.is_catch_all());
        assert!(!DeviceRule::parse(true, "a *:* rw").unwrap().is_catch_all());

        // Access letters in any order come out as rwm.
        assert_eq!(DeviceRule::parse(true, "c 136:* mwr").unwrap().cgroup_line(), "c 136:* rwm");
        assert_eq!(DeviceRule::parse(true, "c 10:200 wm").unwrap().access, Access::WRITE | Access::MKNOD);
        assert_eq!(DeviceRule::parse(true, "c *:5 m").unwrap().cgroup_line(), "c *:5 m");

        for bad in [
            "",
            "c",
            "c 1:3",
            "x 1:3 rwm",
            "c 1-3 rwm",
            "c 1:3 rwx",
            "c 1:3 ",
            "c 1:3 rwmr",
            "c  1:3 rwm",
            "c -1:3 rwm",
            "c +1:3 rwm",
            "c :3 rwm",
            "c 4096:0 r",
            "c 1:1048576 r",
            "c 99999999999:0 r",
            "c 1:3 rwm extra",
        ] {
            assert!(DeviceRule::parse(true, bad).is_err(), "{bad:?} should not parse");
        }
        assert!(DeviceRule::parse(true, "c 4095:1048575 r").is_ok());
        assert_eq!(
            DeviceRule::parse(true, "c 1:3 rwx").unwrap_err().to_string(),
            "cgroup: device rule \"c 1:3 rwx\": access must be one to three of r, w, m"
        );
    }

    #[test]
    fn rules_built_as_data_are_validated() {
        let no_access =
            DeviceRule { access: Access::NONE, ..DeviceRule::allow_char(1, Some(3), Access::ALL) };
        assert!(no_access.validate().is_err());
        let too_big = DeviceRule::allow_char(MAX_MAJOR + 1, None, Access::READ);
        assert_eq!(
            too_big.validate().unwrap_err().to_string(),
            "cgroup: device rule allow c 4096:* r: device numbers go up to 4095:1048575"
        );
        assert!(docker_default().iter().all(|r| r.validate().is_ok()));
    }

    #[test]
    fn docker_default_list() {
        let lines: Vec<String> = docker_default().iter().map(DeviceRule::to_string).collect();
        assert_eq!(
            lines,
            [
                "deny a *:* rwm",
                "allow c *:* m",
                "allow b *:* m",
                "allow c 1:3 rwm",
                "allow c 1:5 rwm",
                "allow c 1:7 rwm",
                "allow c 1:8 rwm",
                "allow c 1:9 rwm",
                "allow c 5:0 rwm",
                "allow c 5:1 rwm",
                "allow c 5:2 rwm",
                "allow c 136:* rwm",
            ]
        );
    }

    #[test]
    fn v1_lines_in_order() {
        let writes = v1_writes(&docker_default());
        let as_text: Vec<String> = writes.iter().map(|(f, l)| format!("{} {l}", f.name())).collect();
        assert_eq!(
            as_text,
            [
                "devices.deny a",
                "devices.allow c *:* m",
                "devices.allow b *:* m",
                "devices.allow c 1:3 rwm",
                "devices.allow c 1:5 rwm",
                "devices.allow c 1:7 rwm",
                "devices.allow c 1:8 rwm",
                "devices.allow c 1:9 rwm",
                "devices.allow c 5:0 rwm",
                "devices.allow c 5:1 rwm",
                "devices.allow c 5:2 rwm",
                "devices.allow c 136:* rwm",
            ]
        );

        // Rules that do not start from deny-all still get it first: the default is deny, as in
        // the BPF program. `a` with numbers or partial access is written as c and b; a catch-all
        // later in the list is written as `a`.
        let rules = [
            DeviceRule::parse(true, "a 1:* r").unwrap(),
            DeviceRule::parse(false, "c 1:3 w").unwrap(),
            DeviceRule::ALLOW_ALL,
        ];
        let as_text: Vec<String> =
            v1_writes(&rules).iter().map(|(f, l)| format!("{} {l}", f.name())).collect();
        assert_eq!(
            as_text,
            [
                "devices.deny a",
                "devices.allow c 1:* r",
                "devices.allow b 1:* r",
                "devices.deny c 1:3 w",
                "devices.allow a",
            ]
        );
    }

    #[test]
    fn meaning_of_a_rule_list() {
        let rules = docker_default();
        let c = DeviceKind::Char;
        let rw = Access::READ | Access::WRITE;
        assert!(allows(&rules, c, 1, 3, rw));
        assert!(!allows(&rules, c, 10, 200, Access::READ));
        assert!(allows(&rules, c, 10, 200, Access::MKNOD));
        assert!(!allows(&[], c, 1, 3, Access::READ), "no rule: denied");
        // A later deny of one access takes it from a request that includes it.
        let mut no_write = rules.clone();
        no_write.push(DeviceRule::parse(false, "c 1:3 w").unwrap());
        assert!(!allows(&no_write, c, 1, 3, rw));
        assert!(allows(&no_write, c, 1, 3, Access::READ));
    }
}
