//! What the container runs: the image config's Entrypoint, Cmd, Env, WorkingDir and User with the
//! command line's overrides applied, by Docker's rules.

use crate::image::ImageConfig;

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The overrides a user gives on the command line.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `-- cmd args…` (replaces the image's Cmd).
    pub command: Vec<String>,
    /// `--entrypoint` (replaces the Entrypoint and clears the image's Cmd, as Docker does).
    pub entrypoint: Option<String>,
    /// `-e NAME=VALUE` or `-e NAME` (take the value from spawner's own environment).
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// As given (`name`, `uid`, `name:group`, `uid:gid`); resolved against the rootfs later.
    pub user: String,
    pub hostname: String,
}

#[derive(Debug, PartialEq, Eq)]
pub struct NoCommand;

impl std::fmt::Display for NoCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no command given and the image has neither Entrypoint nor Cmd")
    }
}

/// Sets or replaces `NAME=…` in `env`.
pub fn set_env(env: &mut Vec<String>, entry: String) {
    let name = entry.split('=').next().unwrap_or("").to_string();
    env.retain(|e| e.split('=').next() != Some(name.as_str()));
    env.push(entry);
}

pub fn get_env<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter().find_map(|e| e.strip_prefix(name)?.strip_prefix('='))
}

/// Docker's checks of `-w` and `--hostname`, made before any work: a relative working directory
/// is refused (Docker: "needs to be an absolute path"), and a hostname must be a valid RFC 1123
/// name of at most 64 bytes (what the kernel takes).
pub fn check_overrides(o: &Overrides) -> Result<(), String> {
    if let Some(w) = o.workdir.as_deref().filter(|w| !w.starts_with('/')) {
        return Err(format!("-w {w}: the working directory must be an absolute path"));
    }
    if let Some(h) = &o.hostname {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if h.is_empty() || h.len() > 64 || !h.split('.').all(label_ok) {
            return Err(format!(
                "--hostname {h:?}: not a valid hostname (letters, digits and inner hyphens, dot-separated, 64 bytes at most)"
            ));
        }
    }
    Ok(())
}

pub fn resolve(
    config: &ImageConfig,
    o: &Overrides,
    default_hostname: &str,
    host_env: impl Fn(&str) -> Option<String>,
) -> Result<ProcessSpec, NoCommand> {
    let c = &config.config;
    let (entrypoint, cmd) = match &o.entrypoint {
        // `--entrypoint ""` clears it; any entrypoint override drops the image's Cmd.
        Some(e) if e.is_empty() => (Vec::new(), o.command.clone()),
        Some(e) => (vec![e.clone()], o.command.clone()),
        None => {
            let cmd =
                if o.command.is_empty() { c.cmd.clone().unwrap_or_default() } else { o.command.clone() };
            (c.entrypoint.clone().unwrap_or_default(), cmd)
        }
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(NoCommand);
    }
    // Later entries replace earlier ones of the same name, in the first one's place; one pass with
    // an index, so an image with 100,000 Env entries costs no more than reading them.
    let mut env: Vec<String> = Vec::with_capacity(c.env.len() + o.env.len());
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut merge = |entry: String| {
        let name = entry.split('=').next().unwrap_or("").to_string();
        match index.get(&name) {
            Some(&i) => env[i] = entry,
            None => {
                index.insert(name, env.len());
                env.push(entry);
            }
        }
    };
    for e in &c.env {
        merge(e.clone());
    }
    for e in &o.env {
        if e.contains('=') {
            merge(e.clone());
        } else if let Some(v) = host_env(e) {
            merge(format!("{e}={v}"));
        }
    }
    if get_env(&env, "PATH").is_none() {
        set_env(&mut env, format!("PATH={DEFAULT_PATH}"));
    }
    let hostname = o
        .hostname
        .clone()
        .or_else(|| (!c.hostname.is_empty()).then(|| c.hostname.clone()))
        .unwrap_or_else(|| default_hostname.to_string());
    if get_env(&env, "HOSTNAME").is_none() {
        env.insert(0, format!("HOSTNAME={hostname}"));
    }
    let cwd = o.workdir.clone().unwrap_or_else(|| c.working_dir.clone());
    let cwd = if cwd.is_empty() { "/".to_string() } else { cwd };
    let user = o.user.clone().unwrap_or_else(|| c.user.clone());
    Ok(ProcessSpec { argv, env, cwd, user, hostname })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageConfig;

    fn config(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        let mut c = ImageConfig::default();
        c.config.entrypoint = entrypoint.map(|v| v.iter().map(|s| s.to_string()).collect());
        c.config.cmd = cmd.map(|v| v.iter().map(|s| s.to_string()).collect());
        c.config.env = vec!["PATH=/bin".into(), "A=1".into()];
        c.config.working_dir = "/srv".into();
        c.config.user = "app".into();
        c
    }

    fn argv(c: &ImageConfig, o: &Overrides) -> Vec<String> {
        resolve(c, o, "abc", |_| None).unwrap().argv
    }

    #[test]
    fn docker_rules_for_entrypoint_and_cmd() {
        let c = config(Some(&["/ep", "-x"]), Some(&["default"]));
        assert_eq!(argv(&c, &Overrides::default()), ["/ep", "-x", "default"]);
        let o = Overrides { command: vec!["mine".into()], ..Default::default() };
        assert_eq!(argv(&c, &o), ["/ep", "-x", "mine"]);
        let o = Overrides { entrypoint: Some("/other".into()), ..Default::default() };
        assert_eq!(argv(&c, &o), ["/other"]);
        let o =
            Overrides { entrypoint: Some(String::new()), command: vec!["sh".into()], ..Default::default() };
        assert_eq!(argv(&c, &o), ["sh"]);
        let c = config(None, None);
        assert_eq!(resolve(&c, &Overrides::default(), "h", |_| None), Err(NoCommand));
    }

    #[test]
    fn relative_workdirs_and_bad_hostnames_are_refused() {
        let o = |w: Option<&str>, h: Option<&str>| Overrides {
            workdir: w.map(String::from),
            hostname: h.map(String::from),
            ..Default::default()
        };
        assert!(check_overrides(&o(Some("/srv"), Some("web-1.example"))).is_ok());
        assert!(check_overrides(&o(Some("srv"), None)).unwrap_err().contains("absolute path"));
        for bad in ["", "-web", "web-", "we_b", "a..b", "web/1", &"x".repeat(65)] {
            assert!(check_overrides(&o(None, Some(bad))).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn env_workdir_user_hostname() {
        let c = config(None, Some(&["sh"]));
        let o = Overrides {
            env: vec!["A=2".into(), "B=3".into(), "FROM_HOST".into(), "UNSET".into()],
            workdir: Some("/tmp".into()),
            hostname: Some("box".into()),
            ..Default::default()
        };
        let spec = resolve(&c, &o, "abc", |n| (n == "FROM_HOST").then(|| "h".to_string())).unwrap();
        assert_eq!(spec.env, ["HOSTNAME=box", "PATH=/bin", "A=2", "B=3", "FROM_HOST=h"]);
        assert_eq!(spec.cwd, "/tmp");
        assert_eq!(spec.user, "app");
        assert_eq!(spec.hostname, "box");
        let spec = resolve(
            &ImageConfig::default(),
            &Overrides { command: vec!["x".into()], ..Default::default() },
            "id",
            |_| None,
        )
        .unwrap();
        assert_eq!(spec.cwd, "/");
        assert_eq!(spec.hostname, "id");
        assert!(spec.env.contains(&format!("PATH={DEFAULT_PATH}")));
    }
}
