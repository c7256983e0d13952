//! Registry credentials and challenges: where a user's login for a registry is found (as podman
//! and Docker look: `--creds`, `--authfile`, `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.docker/config.json`), and what a 401's
//! `WWW-Authenticate` asks for (Basic, or a Bearer token from a realm, as Docker Hub).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A user name and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ user: {:?}, password: <hidden> }}", self.user)
    }
}

impl Credentials {
    /// `USER:PASS`, as `--creds` takes it.
    pub fn parse(text: &str) -> Option<Credentials> {
        let (user, password) = text.split_once(':')?;
        (!user.is_empty()).then(|| Credentials { user: user.into(), password: password.into() })
    }

    /// The `Authorization` value for HTTP Basic.
    pub fn basic(&self) -> String {
        format!("Basic {}", base64_encode(format!("{}:{}", self.user, self.password).as_bytes()))
    }
}

/// The auth files to read, first match wins: the given one alone, else the environment's and
/// the usual places.
pub fn auth_files(authfile: Option<&Path>) -> Vec<PathBuf> {
    if let Some(f) = authfile {
        return vec![f.to_path_buf()];
    }
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(f));
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(dir).join("containers/auth.json"));
    }
    let uid = rustix::process::geteuid().as_raw();
    files.push(PathBuf::from(format!("/run/containers/{uid}/auth.json")));
    if let Some(home) = std::env::var_os("HOME") {
        files.push(PathBuf::from(&home).join(".config/containers/auth.json"));
        let docker = std::env::var_os("DOCKER_CONFIG")
            .map_or_else(|| PathBuf::from(&home).join(".docker"), PathBuf::from);
        files.push(docker.join("config.json"));
    }
    files
}

/// The credentials for `registry` in the first of `files` that has an entry for it. An entry
/// may be keyed by the bare host, a URL (`https://index.docker.io/v1/`, as docker login writes
/// Docker Hub's), or a repository path below the host. A file that cannot be parsed is an error
/// naming it.
pub fn lookup(files: &[PathBuf], registry: &str, repository: &str) -> Result<Option<Credentials>, String> {
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", file.display())),
        };
        let parsed: AuthFile =
            serde_json::from_str(&text).map_err(|e| format!("{}: not an auth file: {e}", file.display()))?;
        // Most specific first: registry/repo/path, then shorter, then the bare registry.
        let mut keys: Vec<String> = Vec::new();
        let parts: Vec<&str> = repository.split('/').collect();
        for n in (1..=parts.len()).rev() {
            keys.push(format!("{registry}/{}", parts[..n].join("/")));
        }
        keys.push(registry.to_string());
        for want in &keys {
            for (key, entry) in &parsed.auths {
                if normalize_key(key) == *want {
                    if let Some(c) = entry.credentials() {
                        return Ok(Some(c));
                    }
                }
            }
        }
    }
    Ok(None)
}

/// The registry a server argument names (`docker login`'s): `https://index.docker.io/v1/` →
/// `docker.io`, `http://host:5000/v2/` → `host:5000`.
pub fn registry_of(server: &str) -> String {
    let key = normalize_key(server);
    key.split('/').next().unwrap_or(&key).to_string()
}

/// An auth file's key as a registry (and path): `https://index.docker.io/v1/` → `docker.io`;
/// `http://host:5000` → `host:5000`.
fn normalize_key(key: &str) -> String {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let key = key.trim_end_matches('/');
    let key = key.strip_suffix("/v1").or_else(|| key.strip_suffix("/v2")).unwrap_or(key);
    match key {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => {
            key.strip_prefix("index.docker.io/").map_or_else(|| key.to_string(), |r| format!("docker.io/{r}"))
        }
    }
}

#[derive(serde::Deserialize, Default)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    /// base64 of `user:password`.
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl AuthEntry {
    fn credentials(&self) -> Option<Credentials> {
        if let Some(auth) = &self.auth {
            let decoded = base64_decode(auth.trim())?;
            let text = String::from_utf8(decoded).ok()?;
            return Credentials::parse(&text);
        }
        match (&self.username, &self.password, &self.identitytoken) {
            (Some(u), Some(p), _) => Some(Credentials { user: u.clone(), password: p.clone() }),
            (_, _, Some(t)) => Some(Credentials { user: "<token>".into(), password: t.clone() }),
            _ => None,
        }
    }
}

/// The auth file `login` writes: the one given, else `$REGISTRY_AUTH_FILE`, else podman's
/// (`$XDG_RUNTIME_DIR/containers/auth.json`, `/run/containers/UID/auth.json`).
pub fn login_file(authfile: Option<&Path>) -> PathBuf {
    if let Some(f) = authfile {
        return f.to_path_buf();
    }
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return PathBuf::from(f);
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) => PathBuf::from(dir).join("containers/auth.json"),
        None => PathBuf::from(format!("/run/containers/{}/auth.json", rustix::process::geteuid().as_raw())),
    }
}

/// Puts (`Some`) or removes (`None`) the entry for `registry` in the auth file, keeping the
/// others; the file is written whole (0600, renamed into place). Returns whether an entry was
/// there before.
pub fn store(file: &Path, registry: &str, credentials: Option<&Credentials>) -> Result<bool, String> {
    let mut doc: serde_json::Value = match std::fs::read_to_string(file) {
        Ok(text) => {
            serde_json::from_str(&text).map_err(|e| format!("{}: not an auth file: {e}", file.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    if !doc.is_object() {
        return Err(format!("{}: not an auth file", file.display()));
    }
    if !doc["auths"].is_object() {
        doc["auths"] = serde_json::json!({});
    }
    let auths = doc["auths"].as_object_mut().expect("auths is an object");
    let keys: Vec<String> = auths.keys().filter(|k| normalize_key(k) == registry).cloned().collect();
    let existed = !keys.is_empty();
    for k in keys {
        auths.remove(&k);
    }
    if let Some(c) = credentials {
        let encoded = base64_encode(format!("{}:{}", c.user, c.password).as_bytes());
        auths.insert(registry.to_string(), serde_json::json!({ "auth": encoded }));
    }
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".{}.tmp", file.file_name().and_then(|n| n.to_str()).unwrap_or("auth.json")));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        f.write_all(serde_json::to_string_pretty(&doc).expect("serializes").as_bytes())
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
    }
    std::fs::rename(&tmp, file).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(existed)
}

/// What a 401 asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    /// A token from `realm`, for `service` and `scope` (as given, or the pull scope we add).
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value: `Bearer realm="…",service="…",scope="…"` or `Basic …`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    Some(Challenge::Bearer {
        realm: params.get("realm")?.clone(),
        service: params.get("service").cloned(),
        scope: params.get("scope").cloned(),
    })
}

/// `key="value", key=value` pairs; commas inside quotes belong to the value.
fn parse_params(text: &str) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value =
                std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>().trim().to_string();
        }
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    params
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padded or not; None for anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let v = BASE64.iter().position(|b| *b == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_both_ways() {
        for text in ["", "a", "ab", "abc", "user:pa:ss", "é ü"] {
            assert_eq!(base64_decode(&base64_encode(text.as_bytes())).unwrap(), text.as_bytes());
        }
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert!(base64_decode("not base64!").is_none());
    }

    #[test]
    fn challenges() {
        let hub = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull""#;
        assert_eq!(
            parse_challenge(hub),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/debian:pull".into()),
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(r#"Bearer realm="http://127.0.0.1:1/t", scope="repository:a/b:pull,push""#),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: None,
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn auth_files_by_registry_and_repository() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        std::fs::write(
            &file,
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOmh1YnBhc3M="},
                "127.0.0.1:5000": {"auth": "bG9jYWw6bG9jYWxwYXNz"},
                "127.0.0.1:5000/team/app": {"username": "team", "password": "teampass"}
            }}"#,
        )
        .unwrap();
        let files = [file.clone()];
        let get = |reg: &str, repo: &str| lookup(&files, reg, repo).unwrap().map(|c| c.user);
        assert_eq!(get("docker.io", "library/debian").as_deref(), Some("hub"));
        assert_eq!(get("127.0.0.1:5000", "other").as_deref(), Some("local"));
        assert_eq!(get("127.0.0.1:5000", "team/app").as_deref(), Some("team"));
        assert_eq!(get("ghcr.io", "x/y"), None);
        std::fs::write(&file, "{not json").unwrap();
        assert!(lookup(&files, "docker.io", "x").unwrap_err().contains("auth.json: not an auth file"));
    }
}
