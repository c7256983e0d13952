//! One registry's HTTP API (distribution spec v2), as Docker and podman speak it: manifests by tag
//! or digest with the Accept headers for Docker schema 2 and OCI, blobs streamed, and the auth a
//! 401 asks for (HTTP Basic, or a Bearer token from the realm it names, anonymous or with the
//! user's credentials), reused until the registry refuses it.
//!
//! TLS uses the system's roots (`/etc/ssl/certs`), plus `ca.crt` and a client `*.cert`/`*.key`
//! pair from `/etc/containers/certs.d/HOST/`, `/etc/docker/certs.d/HOST/` or `--cert-dir`. Plain
//! HTTP is used only for a loopback registry or with `--tls-verify=false`, after HTTPS failed, as
//! Docker treats 127.0.0.0/8. Redirects (to blob storage) are followed without the
//! `Authorization` header.

use super::auth::{self, Challenge, Credentials};
use super::reference::Reference;
use super::RegistryError;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// How to reach registries, from the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--tls-verify=false`: no certificate check, and plain HTTP allowed for any host.
    pub insecure: bool,
    /// `--cert-dir DIR`: CA and client certificates, instead of the certs.d directories.
    pub cert_dir: Option<PathBuf>,
    /// `--creds USER:PASS`.
    pub creds: Option<Credentials>,
    /// `--authfile FILE`.
    pub authfile: Option<PathBuf>,
}

/// The Accept header for manifests: Docker schema 2 and OCI, single and index.
pub const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A manifest (or index) as the registry sent it.
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub media_type: Option<String>,
    /// `Docker-Content-Digest`, when the registry sent one.
    pub digest_header: Option<String>,
}

/// A connection to one registry, for one repository's pull.
pub struct Client {
    agent: ureq::Agent,
    /// `https://host` or `http://host`, once known.
    base: Mutex<Option<String>>,
    reference: Reference,
    credentials: Option<Credentials>,
    /// The Authorization value that last worked (or was issued).
    authorization: Mutex<Option<String>>,
    insecure: bool,
}

/// Manifests bigger than this are refused (Docker's limit is 4 MiB).
const MANIFEST_LIMIT: u64 = 4 << 20;

/// How long a registry may send nothing (no response, no byte of a body) before the request is
/// given up and tried again: 60 s, or `SPAWNER_REGISTRY_TIMEOUT` seconds.
fn stall_timeout() -> Duration {
    let seconds = std::env::var("SPAWNER_REGISTRY_TIMEOUT").ok().and_then(|s| s.parse::<u64>().ok());
    Duration::from_secs(seconds.filter(|&s| s > 0).unwrap_or(60))
}

impl Client {
    pub fn new(reference: &Reference, options: &Options) -> Result<Client, RegistryError> {
        let host = reference.api_host().to_string();
        let credentials = match &options.creds {
            Some(c) => Some(c.clone()),
            None => auth::lookup(
                &auth::auth_files(options.authfile.as_deref()),
                &reference.registry,
                &reference.repository,
            )
            .map_err(RegistryError::Auth)?,
        };
        let tls = tls_config(&host, options)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .max_redirects(10)
            .user_agent(concat!("spawner/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(stall_timeout()))
            // A stalled body: no byte for this long ends the read (and the retry resumes it).
            .timeout_recv_body(None)
            .timeout_per_read(Some(stall_timeout()))
            .build();
        Ok(Client {
            agent: config.new_agent(),
            base: Mutex::new(None),
            reference: reference.clone(),
            credentials,
            authorization: Mutex::new(None),
            insecure: options.insecure,
        })
    }

    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// `https://host`, or `http://host` when HTTPS fails and plain HTTP is allowed: the
    /// registry's `/v2/` answers (any status) on one of them.
    fn base(&self) -> Result<String, RegistryError> {
        if let Some(b) = self.base.lock().expect("base lock").clone() {
            return Ok(b);
        }
        let host = self.reference.api_host();
        let https = format!("https://{host}");
        let base = match self.agent.get(format!("{https}/v2/")).call() {
            Ok(_) => https,
            Err(e) if self.insecure || is_loopback(host) => {
                // Only a registry that speaks plain HTTP (its /v2/ answering 200 or 401) is used
                // so: a TLS port that refused our trust answers 400 to HTTP, and its certificate
                // error is the one to report.
                log::debug!("{https}: {e}; trying plain HTTP");
                let http = format!("http://{host}");
                match self.agent.get(format!("{http}/v2/")).call() {
                    Ok(r) if r.status() == 200 || r.status() == 401 => http,
                    _ => {
                        return Err(RegistryError::Connect {
                            registry: self.reference.registry.clone(),
                            reason: e.to_string(),
                        })
                    }
                }
            }
            Err(e) => {
                return Err(RegistryError::Connect {
                    registry: self.reference.registry.clone(),
                    reason: e.to_string(),
                })
            }
        };
        *self.base.lock().expect("base lock") = Some(base.clone());
        Ok(base)
    }

    /// GET `path` (below `/v2/REPO/`) with the auth the registry asks for; `extra` headers too.
    /// Returns the response whatever its status, but 401 after authenticating is an error.
    fn get(
        &self,
        path: &str,
        extra: &[(&str, String)],
    ) -> Result<ureq::http::Response<ureq::Body>, RegistryError> {
        let url = format!("{}/v2/{}/{path}", self.base()?, self.reference.repository);
        let send = |authorization: Option<&str>| {
            let mut request = self.agent.get(&url);
            for (k, v) in extra {
                request = request.header(*k, v.as_str());
            }
            if let Some(a) = authorization {
                request = request.header("Authorization", a);
            }
            request.call().map_err(|e| self.transport(&url, e))
        };
        let current = self.authorization.lock().expect("auth lock").clone();
        let response = send(current.as_deref())?;
        if response.status() != 401 {
            return Ok(response);
        }
        let authorization = match self.challenge(&response)? {
            Challenge::Basic => match &self.credentials {
                Some(c) => c.basic(),
                None => {
                    return Err(self.unauthorized("the registry requires credentials (--creds or --authfile)"))
                }
            },
            Challenge::Bearer { realm, service, scope } => {
                format!("Bearer {}", self.token(&realm, service, scope)?)
            }
        };
        let response = send(Some(&authorization))?;
        if response.status() == 401 || response.status() == 403 {
            let why = match self.credentials {
                Some(_) => "the registry refused the credentials",
                None => "the registry requires credentials (--creds or --authfile)",
            };
            return Err(self.unauthorized(why));
        }
        *self.authorization.lock().expect("auth lock") = Some(authorization);
        Ok(response)
    }

    /// A Bearer token from `realm` for pulling this repository, with the credentials when we have
    /// them (anonymous otherwise).
    fn token(
        &self,
        realm: &str,
        service: Option<String>,
        scope: Option<String>,
    ) -> Result<String, RegistryError> {
        // No repository (a login): no scope, as docker login asks.
        let scope = scope.or_else(|| {
            (!self.reference.repository.is_empty())
                .then(|| format!("repository:{}:pull", self.reference.repository))
        });
        let mut request = self.agent.get(realm);
        if let Some(scope) = &scope {
            request = request.query("scope", scope);
        }
        if let Some(s) = &service {
            request = request.query("service", s);
        }
        if let Some(c) = &self.credentials {
            request = request.header("Authorization", c.basic());
        }
        let mut response = request.call().map_err(|e| self.transport(realm, e))?;
        if response.status() != 200 {
            return Err(
                self.unauthorized(&format!("the token server {realm} answered {}", response.status()))
            );
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| self.transport(realm, e))?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let token: Token = serde_json::from_slice(&body)
            .map_err(|e| self.unauthorized(&format!("the token server {realm} sent no token: {e}")))?;
        token
            .token
            .or(token.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.unauthorized(&format!("the token server {realm} sent no token")))
    }

    /// Checks the credentials against the registry (`docker login`): `/v2/` answers 200 with
    /// them, through whatever auth its 401 asks for.
    pub fn login(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base()?);
        let response = self.agent.get(&url).call().map_err(|e| self.transport(&url, e))?;
        let authorization = match response.status().as_u16() {
            200 => return Ok(()),
            401 => {
                let challenge = self.challenge(&response)?;
                let Some(credentials) = &self.credentials else {
                    return Err(self.unauthorized("no credentials given"));
                };
                match challenge {
                    Challenge::Basic => credentials.basic(),
                    Challenge::Bearer { realm, service, .. } => {
                        format!("Bearer {}", self.token(&realm, service, None)?)
                    }
                }
            }
            status => {
                return Err(RegistryError::Status {
                    registry: self.reference.registry.clone(),
                    what: "/v2/".into(),
                    status,
                    retry: false,
                })
            }
        };
        let response = self
            .agent
            .get(&url)
            .header("Authorization", &authorization)
            .call()
            .map_err(|e| self.transport(&url, e))?;
        match response.status().as_u16() {
            200 => Ok(()),
            _ => Err(self.unauthorized("the registry refused the credentials")),
        }
    }

    /// A manifest or index by tag or digest.
    pub fn manifest(&self, reference: &str) -> Result<Fetched, RegistryError> {
        let accept = MANIFEST_TYPES.join(", ");
        let mut response = self.get(&format!("manifests/{reference}"), &[("Accept", accept)])?;
        let what = match reference.contains(':') {
            true => format!("manifest {reference}"),
            false => format!("no tag {reference}"),
        };
        self.check_status(&response, &what)?;
        let header =
            |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let media_type = header("content-type").map(|t| t.split(';').next().unwrap_or("").trim().to_string());
        let digest_header = header("docker-content-digest");
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MANIFEST_LIMIT)
            .read_to_vec()
            .map_err(|e| self.transport(&format!("manifest {reference}"), e))?;
        Ok(Fetched { bytes, media_type, digest_header })
    }

    /// A blob's body from byte `from` on (a Range request when it is not 0). Returns the reader
    /// and whether the registry honoured the range (206); a 200 means the whole blob again.
    pub fn blob(&self, digest: &str, from: u64) -> Result<(Box<dyn Read + Send>, bool), RegistryError> {
        let extra: Vec<(&str, String)> = match from {
            0 => Vec::new(),
            n => vec![("Range", format!("bytes={n}-"))],
        };
        let response = self.get(&format!("blobs/{digest}"), &extra)?;
        self.check_status(&response, &format!("blob {digest}"))?;
        let partial = response.status() == 206;
        Ok((Box::new(response.into_body().into_reader()), partial))
    }

    /// What a 401 asks for, from its `WWW-Authenticate`.
    fn challenge(&self, response: &ureq::http::Response<ureq::Body>) -> Result<Challenge, RegistryError> {
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .and_then(auth::parse_challenge)
            .ok_or_else(|| self.unauthorized("the registry answered 401 without a challenge it understands"))
    }

    fn check_status(
        &self,
        response: &ureq::http::Response<ureq::Body>,
        what: &str,
    ) -> Result<(), RegistryError> {
        match response.status().as_u16() {
            200 | 206 => Ok(()),
            404 => {
                Err(RegistryError::NotFound { reference: self.reference.to_string(), what: what.to_string() })
            }
            status => Err(RegistryError::Status {
                registry: self.reference.registry.clone(),
                what: what.to_string(),
                status,
                retry: status >= 500 || status == 429,
            }),
        }
    }

    fn transport(&self, url: &str, e: ureq::Error) -> RegistryError {
        RegistryError::Transport {
            registry: self.reference.registry.clone(),
            what: url.to_string(),
            reason: e.to_string(),
        }
    }

    fn unauthorized(&self, reason: &str) -> RegistryError {
        RegistryError::Unauthorized { reference: self.reference.to_string(), reason: reason.to_string() }
    }
}

/// 127.0.0.0/8, ::1 and localhost, with or without a port.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost"
        || name.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback())
        || name.parse::<std::net::Ipv6Addr>().is_ok_and(|a| a.is_loopback())
}

/// Where the system keeps its CA bundle (Debian, Fedora, Alpine), or `$SSL_CERT_FILE`.
const SYSTEM_BUNDLES: &[&str] =
    &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/// The roots (system bundle plus certs.d `*.crt`) and client certificate for `host`.
fn tls_config(host: &str, options: &Options) -> Result<ureq::tls::TlsConfig, RegistryError> {
    use ureq::tls::{parse_pem, Certificate, ClientCert, PemItem, RootCerts, TlsConfig};
    let bad = |path: &Path, e: &dyn std::fmt::Display| RegistryError::Certificates {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut roots: Vec<Certificate<'static>> = Vec::new();
    let system: Vec<PathBuf> = match std::env::var_os("SSL_CERT_FILE") {
        Some(f) => vec![PathBuf::from(f)],
        None => SYSTEM_BUNDLES.iter().map(PathBuf::from).collect(),
    };
    if let Some(bundle) = system.iter().find(|p| p.is_file()) {
        let pem = std::fs::read(bundle).map_err(|e| bad(bundle, &e))?;
        roots.extend(parse_pem(&pem).filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        }));
    }
    let dirs: Vec<PathBuf> = match &options.cert_dir {
        Some(d) => vec![d.clone()],
        None => ["/etc/containers/certs.d", "/etc/docker/certs.d"]
            .iter()
            .map(|d| Path::new(d).join(host))
            .collect(),
    };
    let mut client: Option<ClientCert> = None;
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| bad(dir, &e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for path in &entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".crt") {
                let pem = std::fs::read(path).map_err(|e| bad(path, &e))?;
                let certs: Vec<_> = parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    return Err(bad(path, &"no certificate in it"));
                }
                roots.extend(certs);
            } else if let Some(stem) = name.strip_suffix(".cert") {
                let key_path = dir.join(format!("{stem}.key"));
                let chain_pem = std::fs::read(path).map_err(|e| bad(path, &e))?;
                let key_pem = std::fs::read(&key_path).map_err(|e| bad(&key_path, &e))?;
                let chain: Vec<_> = parse_pem(&chain_pem)
                    .filter_map(|i| match i {
                        Ok(PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                let key = ureq::tls::PrivateKey::from_pem(&key_pem).map_err(|e| bad(&key_path, &e))?;
                client = Some(ClientCert::new_with_certs(&chain, key));
            }
        }
    }
    let roots = if roots.is_empty() { RootCerts::WebPki } else { RootCerts::new_with_certs(&roots) };
    Ok(TlsConfig::builder()
        .root_certs(roots)
        .client_cert(client)
        .disable_verification(options.insecure)
        .build())
}
