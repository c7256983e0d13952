//! `User` (`name`, `uid`, `name:group`, `uid:gid`) resolved the way Docker does it: with the image's
//! own /etc/passwd and /etc/group, plus the supplementary groups the user is listed in.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum UserError {
    UnknownUser(String),
    UnknownGroup(String),
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserError::UnknownUser(u) => {
                write!(f, "unable to find user {u}: no matching entries in /etc/passwd")
            }
            UserError::UnknownGroup(g) => {
                write!(f, "unable to find group {g}: no matching entries in /etc/group")
            }
        }
    }
}

/// `passwd` and `group` are the files' contents (empty when the image has none).
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<Credentials, UserError> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    // passwd: name:x:uid:gid:gecos:home:shell
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == user || (user.parse::<u32>().is_ok() && f[2] == user)));
    let (uid, mut gid, name, home) = match (&entry, user.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().map_err(|_| UserError::UnknownUser(user.into()))?,
            f[3].parse().map_err(|_| UserError::UnknownUser(user.into()))?,
            Some(f[0]),
            f.get(5).copied().unwrap_or("/").to_string(),
        ),
        // A numeric uid needs no passwd entry.
        (None, Ok(uid)) => (uid, 0, None, "/".to_string()),
        (None, Err(_)) => return Err(UserError::UnknownUser(user.into())),
    };
    let groups_file: Vec<Vec<&str>> =
        group.lines().map(|l| l.split(':').collect::<Vec<_>>()).filter(|f| f.len() >= 3).collect();
    if let Some(g) = grp {
        gid = match groups_file.iter().find(|f| f[0] == g) {
            Some(f) => f[2].parse().map_err(|_| UserError::UnknownGroup(g.into()))?,
            None => g.parse().map_err(|_| UserError::UnknownGroup(g.into()))?,
        };
    }
    let mut groups = vec![gid];
    if let (Some(name), None) = (name, grp) {
        for f in &groups_file {
            let members = f.get(3).copied().unwrap_or("");
            if members.split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse() {
                    if !groups.contains(&g) {
                        groups.push(g);
                    }
                }
            }
        }
    }
    Ok(Credentials { uid, gid, groups, home })
}

/// Docker's `--group-add`: a group by name, looked up in `group` (the image's /etc/group), or a gid.
pub fn resolve_group(name: &str, group: &str) -> Result<u32, UserError> {
    let entry =
        group.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() >= 3 && f[0] == name);
    match entry {
        Some(f) => f[2].parse().map_err(|_| UserError::UnknownGroup(name.into())),
        None => name.parse().map_err(|_| UserError::UnknownGroup(name.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nstaff:x:50:app,other\nwheel:x:10:root\n";

    #[test]
    fn names_numbers_and_groups() {
        let c = resolve("app", PASSWD, GROUP).unwrap();
        assert_eq!(
            (c.uid, c.gid, c.groups.clone(), c.home.as_str()),
            (1000, 1000, vec![1000, 50], "/home/app")
        );
        let c = resolve("", PASSWD, GROUP).unwrap();
        assert_eq!((c.uid, c.gid, c.groups), (0, 0, vec![0, 10]));
        let c = resolve("1000", PASSWD, GROUP).unwrap();
        assert_eq!(c.uid, 1000);
        let c = resolve("4242:4343", PASSWD, GROUP).unwrap();
        assert_eq!((c.uid, c.gid, c.groups), (4242, 4343, vec![4343]));
        let c = resolve("app:staff", PASSWD, GROUP).unwrap();
        assert_eq!((c.uid, c.gid, c.groups), (1000, 50, vec![50]));
        assert_eq!(resolve("nobody", PASSWD, GROUP), Err(UserError::UnknownUser("nobody".into())));
        assert_eq!(resolve("app:nogroup", PASSWD, GROUP), Err(UserError::UnknownGroup("nogroup".into())));
        assert_eq!(resolve("7", "", "").unwrap().uid, 7);
    }

    #[test]
    fn added_groups_by_name_or_number() {
        assert_eq!(resolve_group("staff", GROUP), Ok(50));
        assert_eq!(resolve_group("4242", GROUP), Ok(4242));
        assert_eq!(resolve_group("nogroup", GROUP), Err(UserError::UnknownGroup("nogroup".into())));
    }
}
