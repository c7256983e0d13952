//! `spawner pull` and `spawner run REF` against a real registry (Debian's docker-registry, the
//! CNCF distribution server) on 127.0.0.1, filled with skopeo from the project's test images: by
//! tag, by digest, platform choice, TLS with a CA the test makes, basic auth, auth files, a
//! tampered blob, concurrent pulls. All traffic stays on loopback.

use integration_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A registry of the test's own: its storage, config and (with TLS) certificates in `dir`,
/// listening on 127.0.0.1:`port`; stopped and removed when dropped.
struct Registry {
    child: Child,
    dir: PathBuf,
    host: String,
    /// The CA's directory (ca.crt) when the registry speaks TLS.
    certs: Option<PathBuf>,
}

/// The user and password of a registry with basic auth.
const USER: &str = "tester";
const PASSWORD: &str = "s3cret-pass";

impl Registry {
    fn start(test: &str, tls_and_auth: bool) -> Registry {
        Registry::start_with(test, tls_and_auth, None)
    }

    /// With `token`: the registry takes Bearer tokens that [`TokenServer`] issues (plain HTTP).
    fn start_with(test: &str, tls_and_auth: bool, token: Option<&TokenServer>) -> Registry {
        for (program, args) in [
            ("docker-registry", &["--version"][..]),
            ("skopeo", &["--version"]),
            ("openssl", &["version"]),
            ("htpasswd", &["-h"]),
        ] {
            assert_installed(program, args);
        }
        let dir = std::env::temp_dir().join(format!("spawner-registry-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}/data\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.display()
        );
        let certs = tls_and_auth.then(|| {
            let certs = dir.join("certs");
            make_certificates(&certs);
            config += &format!(
                "  tls:\n    certificate: {0}/server.crt\n    key: {0}/server.key\nauth:\n  htpasswd:\n    realm: spawner-test\n    path: {1}/htpasswd\n",
                certs.display(),
                dir.display()
            );
            let out = Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]).output().unwrap();
            assert!(out.status.success(), "htpasswd: {}", stderr(&out));
            std::fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
            // The CA alone, for clients' --cert-dir.
            let ca = dir.join("ca");
            std::fs::create_dir_all(&ca).unwrap();
            std::fs::copy(certs.join("ca.crt"), ca.join("ca.crt")).unwrap();
            ca
        });
        if let Some(t) = token {
            config += &format!(
                "auth:\n  token:\n    realm: http://{}/token\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                t.host,
                t.dir.join("token.crt").display()
            );
        }
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("registry.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("registry.err")).unwrap())
            .spawn()
            .unwrap();
        let registry = Registry { child, dir, host, certs };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&registry.host).is_err() {
            assert!(Instant::now() < deadline, "the registry did not start: {}", registry.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.err")).unwrap_or_default()
    }

    /// Copies `source` (a skopeo source, e.g. `docker-archive:PATH`) to `name` in the registry,
    /// every platform of it.
    fn push(&self, source: &str, name: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q", "--all"]);
        match &self.certs {
            Some(ca) => {
                cmd.arg("--dest-cert-dir").arg(ca).args(["--dest-creds", &format!("{USER}:{PASSWORD}")]);
            }
            None => {
                cmd.arg("--dest-tls-verify=false");
            }
        }
        cmd.arg(source).arg(format!("docker://{}/{name}", self.host));
        let out = run(cmd);
        assert!(out.status.success(), "skopeo copy {source}: {}\n{}", stderr(&out), self.log());
    }

    /// The blob files in the registry's storage, biggest first.
    fn blobs(&self) -> Vec<PathBuf> {
        let mut blobs = Vec::new();
        let mut stack = vec![self.dir.join("data/docker/registry/v2/blobs")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else if e.file_name() == "data" {
                    blobs.push(e.path());
                }
            }
        }
        blobs.sort_by_key(|b| std::cmp::Reverse(std::fs::metadata(b).unwrap().len()));
        blobs
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA, and a certificate it signed for 127.0.0.1 (P-256 keys: quick to make).
fn make_certificates(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &[&str]| {
        let out = run({
            let mut c = Command::new("openssl");
            c.current_dir(dir).args(args);
            c
        });
        assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=spawner test CA"],
        ]
        .concat(),
    );
    openssl(
        &[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]]
            .concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

/// The one line a failed command printed, with its exit status.
fn failure(out: &std::process::Output) -> (i32, String) {
    (code(out), stderr(out).lines().filter(|l| l.starts_with("spawner:")).collect::<Vec<_>>().join("\n"))
}

/// The names the content store's index holds.
fn stored_names(state: &StateDir) -> Vec<String> {
    let index = std::fs::read_to_string(state.0.join("store/content/index.json")).unwrap_or_default();
    let index: serde_json::Value = serde_json::from_str(&index).unwrap_or_default();
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["annotations"]["io.containerd.image.name"].as_str().map(str::to_string))
        .collect()
}

fn docker_archive(name: &str) -> String {
    format!("docker-archive:{}", image(name).display())
}

#[test]
fn pull_by_tag_and_digest_then_run_by_name() {
    let registry = Registry::start("tag", false);
    registry.push(&docker_archive("busybox-docker.tar"), "library/busybox:latest");
    let state = StateDir::new("pull-tag");
    let name = format!("{}/library/busybox", registry.host);

    let out = state.run(&["pull", &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let image_id = stdout(&out).trim().to_string();
    assert!(image_id.starts_with("sha256:"), "pull prints the image ID: {}", stdout(&out));
    assert_eq!(stderr(&out).matches(": downloading").count(), 3, "three layers: {}", stderr(&out));
    let digest = stderr(&out).lines().find_map(|l| l.strip_prefix("Digest: ")).unwrap().to_string();
    let images = stdout(&state.run(&["images"]));
    assert!(
        images.lines().nth(1).unwrap().split_whitespace().take(3).collect::<Vec<_>>()
            == [name.as_str(), "latest", &image_id["sha256:".len()..][..12]],
        "{images}"
    );

    // Pulled again, nothing is downloaded; by digest, the same image.
    let again = state.run(&["pull", &name]);
    assert_eq!((code(&again), stdout(&again).trim()), (0, image_id.as_str()), "{}", stderr(&again));
    assert!(!stderr(&again).contains("downloading"), "{}", stderr(&again));
    let by_digest = state.run(&["pull", &format!("{name}@{digest}")]);
    assert_eq!(
        (code(&by_digest), stdout(&by_digest).trim()),
        (0, image_id.as_str()),
        "{}",
        stderr(&by_digest)
    );

    // run REF runs the stored image, by its name, with no archive.
    let out = state.run(&["run", "--rm", &name, "--", "sh", "-c", "echo hello from the registry"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "hello from the registry\n"), "{}", stderr(&out));

    // What is not there: one line naming the reference, 125, nothing stored under it.
    let before = stored_names(&state);
    let out = state.run(&["pull", &format!("{name}:nope")]);
    assert_eq!(
        failure(&out),
        (125, format!("spawner: {name}:nope: not found in the registry: no tag nope")),
        "{}",
        stderr(&out)
    );
    let unknown = format!("{name}@sha256:{}", "0".repeat(64));
    let out = state.run(&["pull", &unknown]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(failure(&out).1.contains("not found in the registry"), "{}", stderr(&out));
    let out = state.run(&["run", "--rm", "--pull", "never", &format!("{name}:other"), "--", "true"]);
    assert_eq!(
        failure(&out),
        (125, format!("spawner: {name}:other: not in the store, and --pull never forbids pulling it")),
    );
    assert_eq!(stored_names(&state), before, "failures name nothing");
    assert_eq!(stored_names(&state), [format!("{name}:latest"), format!("{name}@{digest}")]);

    // rmi of both names: the image, its layers and its blobs go.
    let out = state.run(&["rmi", &format!("{name}:latest"), &format!("{name}@{digest}")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).matches("Deleted: sha256:").count(), 3, "{}", stdout(&out));
    assert_eq!(stored_names(&state), Vec::<String>::new());
    let blobs = std::fs::read_dir(state.0.join("store/content/blobs/sha256")).unwrap().count();
    assert_eq!(blobs, 0, "no blob left");
}

#[test]
fn run_pulls_a_missing_image_and_chooses_the_platform() {
    let registry = Registry::start("platform", false);
    registry
        .push(&format!("oci-archive:{}", image("busybox-oci-multiarch.tar").display()), "org/team/multi:1.0");
    let state = StateDir::new("pull-platform");
    let name = format!("{}/org/team/multi:1.0", registry.host);
    // Not stored: run pulls it (this host's platform), then runs it.
    let out = state.run(&["run", "--rm", &name, "--", "sh", "-c", "echo ran"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "ran\n"), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("Pulling {name}")), "{}", stderr(&out));
    let host_id = stdout(&state.run(&["pull", "-q", &name])).trim().to_string();
    let arm_id = stdout(&state.run(&["pull", "-q", "--platform", "linux/arm64", &name])).trim().to_string();
    assert!(
        arm_id.starts_with("sha256:") && arm_id != host_id,
        "another platform, another image: {arm_id} {host_id}"
    );
    let out = state.run(&["pull", "--platform", "linux/s390x", &name]);
    assert_eq!(
        failure(&out),
        (125, format!("spawner: {name}: no image for platform linux/s390x (the registry has linux/arm64/v8, linux/amd64)"))
    );
}

/// The registry serves whatever bytes its storage holds: one changed byte in a layer, and the
/// pull stops at its digest with nothing named, no blob and no layer stored.
#[test]
fn a_tampered_blob_is_refused_and_nothing_is_stored() {
    let registry = Registry::start("tamper", false);
    registry.push(&docker_archive("busybox-docker.tar"), "library/busybox:latest");
    let blob = registry.blobs().into_iter().next().unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&blob, bytes).unwrap();
    let state = StateDir::new("pull-tamper");
    let name = format!("{}/library/busybox:latest", registry.host);
    let out = state.run(&["pull", &name]);
    let (status, line) = failure(&out);
    assert_eq!(status, 125, "{}", stderr(&out));
    assert!(
        line.starts_with(&format!("spawner: {name}: layer blob sha256:"))
            && line.contains("does not match its digest"),
        "{line}"
    );
    assert_eq!(stored_names(&state), Vec::<String>::new());
    let layer_hex = blob.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        !state.0.join("store/content/blobs/sha256").join(&layer_hex).exists(),
        "the tampered blob is not stored"
    );
    assert!(!state.0.join("store/content/ingest").join(&layer_hex).exists(), "nor kept to resume");
    assert_eq!(stdout(&state.run(&["images"])).lines().count(), 1, "no image recorded");
}

/// TLS with a CA only the test has, and HTTP basic auth: refused without the CA, refused without
/// credentials or with wrong ones; pulled with --cert-dir and --creds, or an auth file.
#[test]
fn tls_with_a_private_ca_and_basic_auth() {
    let registry = Registry::start("tls", true);
    registry.push(&docker_archive("busybox-docker.tar"), "app/busybox:1");
    let ca = registry.certs.clone().unwrap();
    let name = format!("{}/app/busybox:1", registry.host);
    let creds = format!("{USER}:{PASSWORD}");
    let state = StateDir::new("pull-tls");
    let pull = |extra: &[&str]| state.run(&[&["pull", "-q"][..], extra, &[name.as_str()]].concat());

    let (status, line) = failure(&pull(&["--creds", &creds]));
    assert_eq!(status, 125);
    assert!(
        line.contains(&registry.host) && line.to_lowercase().contains("certificate"),
        "no CA, no trust: {line}"
    );
    let (status, line) = failure(&pull(&["--cert-dir", ca.to_str().unwrap()]));
    assert_eq!(
        (status, line.as_str()),
        (
            125,
            format!(
                "spawner: {name}: unauthorized: the registry requires credentials (--creds or --authfile)"
            )
            .as_str()
        )
    );
    let (status, line) = failure(&pull(&["--cert-dir", ca.to_str().unwrap(), "--creds", "tester:wrong"]));
    assert_eq!(
        (status, line.as_str()),
        (125, format!("spawner: {name}: unauthorized: the registry refused the credentials").as_str())
    );
    assert_eq!(stored_names(&state), Vec::<String>::new());

    let out = pull(&["--cert-dir", ca.to_str().unwrap(), "--creds", &creds]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();

    // An auth file as podman login writes it, in a fresh store.
    let other = StateDir::new("pull-tls-authfile");
    let auth = other.0.join("auth.json");
    let encoded = {
        let out =
            Command::new("base64").arg("-w0").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        use std::io::Write;
        let mut out = out;
        out.stdin.take().unwrap().write_all(creds.as_bytes()).unwrap();
        String::from_utf8(out.wait_with_output().unwrap().stdout).unwrap()
    };
    std::fs::write(&auth, format!(r#"{{"auths": {{"{}": {{"auth": "{encoded}"}}}}}}"#, registry.host))
        .unwrap();
    let out = other.run(&[
        "pull",
        "-q",
        "--cert-dir",
        ca.to_str().unwrap(),
        "--authfile",
        auth.to_str().unwrap(),
        &name,
    ]);
    assert_eq!((code(&out), stdout(&out).trim()), (0, id.as_str()), "{}", stderr(&out));

    // login checks the credentials and keeps them in the auth file; logout forgets them.
    let login_file = other.0.join("login.json");
    let login = |password: &str| {
        let mut cmd = other.spawner(&[
            "login",
            "--authfile",
            login_file.to_str().unwrap(),
            "--cert-dir",
            ca.to_str().unwrap(),
            "-u",
            USER,
            "--password-stdin",
            &registry.host,
        ]);
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
        wait_or_kill(child, Duration::from_secs(30))
    };
    let out = login("wrong");
    assert_eq!(
        failure(&out),
        (125, format!("spawner: {}: unauthorized: the registry refused the credentials", registry.host))
    );
    assert!(!login_file.exists(), "a failed login writes nothing");
    let out = login(PASSWORD);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "Login Succeeded!\n"), "{}", stderr(&out));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&login_file).unwrap().permissions().mode() & 0o777, 0o600);
    let fresh = StateDir::new("pull-tls-login");
    let with_login = |state: &StateDir| {
        state.run(&[
            "pull",
            "-q",
            "--cert-dir",
            ca.to_str().unwrap(),
            "--authfile",
            login_file.to_str().unwrap(),
            &name,
        ])
    };
    let out = with_login(&fresh);
    assert_eq!((code(&out), stdout(&out).trim()), (0, id.as_str()), "{}", stderr(&out));
    let out = other.run(&["logout", "--authfile", login_file.to_str().unwrap(), &registry.host]);
    assert_eq!(stdout(&out), format!("Removed login credentials for {}\n", registry.host));
    let out = with_login(&StateDir::new("pull-tls-logout"));
    assert_eq!(code(&out), 125, "logged out: {}", stderr(&out));

    // --tls-verify=false trusts any certificate (credentials still needed).
    let third = StateDir::new("pull-tls-insecure");
    let out = third.run(&["pull", "-q", "--tls-verify=false", "--creds", &creds, &name]);
    assert_eq!((code(&out), stdout(&out).trim()), (0, id.as_str()), "{}", stderr(&out));
}

/// Two pulls of one image into one store at once: both succeed, one copy of each layer.
#[test]
fn concurrent_pulls_share_the_store() {
    let registry = Registry::start("concurrent", false);
    registry.push(&docker_archive("busybox-docker.tar"), "library/busybox:latest");
    let state = StateDir::new("pull-concurrent");
    let name = format!("{}/library/busybox:latest", registry.host);
    let children: Vec<Child> =
        (0..3).map(|_| state.spawner(&["pull", "-q", &name]).spawn().unwrap()).collect();
    let outs: Vec<_> = children.into_iter().map(|c| wait_or_kill(c, Duration::from_secs(60))).collect();
    for out in &outs {
        assert_eq!(code(out), 0, "{}", stderr(out));
        assert_eq!(stdout(out), stdout(&outs[0]));
    }
    let layers = std::fs::read_dir(state.0.join("store/layers/sha256")).unwrap().count();
    assert_eq!(layers, 3, "one copy of each layer");
    let out = state.run(&["run", "--rm", &name, "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// What [`FaultProxy`] breaks.
#[derive(Clone, Copy)]
enum Fault {
    /// The first blob response bigger than N bytes ends after N bytes of its body.
    CutBlobAfter(u64),
    /// The first N manifest or blob requests get 503.
    Unavailable(usize),
    /// The first blob response bigger than N bytes stops sending after N bytes of its body,
    /// the connection left open (for 100 s: longer than any test waits).
    StallBlobAfter(u64),
    /// As `CutBlobAfter`, and Range headers are dropped on the way: the resumed request gets the
    /// whole blob again, as from a server without range support.
    CutAndIgnoreRanges(u64),
}

/// An HTTP proxy on 127.0.0.1 in front of a registry that breaks things on purpose, and logs
/// each request it saw (`METHOD PATH` and its Range header).
struct FaultProxy {
    host: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FaultProxy {
    fn start(upstream: &str, fault: Fault) -> FaultProxy {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (upstream, log2, stop2) = (upstream.to_string(), log.clone(), stop.clone());
        let faults_left = Arc::new(AtomicUsize::new(match fault {
            Fault::CutBlobAfter(_) | Fault::StallBlobAfter(_) | Fault::CutAndIgnoreRanges(_) => 1,
            Fault::Unavailable(n) => n,
        }));
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (upstream, log, faults_left) =
                            (upstream.clone(), log2.clone(), faults_left.clone());
                        std::thread::spawn(move || {
                            let _ = proxy_one(client, &upstream, fault, &log, &faults_left);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy { host, log, stop }
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// How many requests asked for a blob from byte `from` on.
    fn range_requests(&self, from: u64) -> usize {
        let wanted = format!("[range: bytes={from}-]");
        self.requests().iter().filter(|r| r.to_ascii_lowercase().contains(&wanted)).count()
    }
}

/// The pulled image `name` is whole: its layers verify (when `verify`) and it runs.
fn assert_whole(state: &StateDir, name: &str, verify: bool) {
    if verify {
        let out = state.run(&["images", "--verify"]);
        assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    }
    let out = state.run(&["run", "--rm", name, "--", "sh", "-c", "echo whole"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "whole\n"), "{}", stderr(&out));
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One connection: one request forwarded with `Connection: close`, its response copied back,
/// unless the fault applies to it.
fn proxy_one(
    mut client: std::net::TcpStream,
    upstream: &str,
    fault: Fault,
    log: &std::sync::Mutex<Vec<String>>,
    faults_left: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<()> {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    // A TLS ClientHello (a client trying HTTPS first) gets the 400 a Go HTTP server sends.
    let mut first = [0u8];
    if client.peek(&mut first)? == 1 && first[0] == 0x16 {
        return client
            .write_all(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n");
    }
    let head = read_head(&mut client)?;
    let text = String::from_utf8_lossy(&head).into_owned();
    let request_line = text.lines().next().unwrap_or("").to_string();
    let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
    let range =
        text.lines().find(|l| l.to_ascii_lowercase().starts_with("range:")).map(|l| l.trim().to_string());
    log.lock().unwrap().push(format!(
        "{}{}",
        request_line,
        range.map(|r| format!(" [{r}]")).unwrap_or_default()
    ));
    let content_request = path.contains("/blobs/") || path.contains("/manifests/");
    if let Fault::Unavailable(_) = fault {
        if content_request
            && faults_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
        {
            return client.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    }
    let mut forwarded: String = text
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .filter(|l| {
            !(matches!(fault, Fault::CutAndIgnoreRanges(_)) && l.to_ascii_lowercase().starts_with("range:"))
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    forwarded += "Connection: close\r\n\r\n";
    let mut server = std::net::TcpStream::connect(upstream)?;
    server.write_all(forwarded.as_bytes())?;
    let response_head = read_head(&mut server)?;
    client.write_all(&response_head)?;
    let length = String::from_utf8_lossy(&response_head)
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<u64>().unwrap_or(0))
        })
        .unwrap_or(0);
    let cut = match fault {
        Fault::CutBlobAfter(n) | Fault::StallBlobAfter(n) | Fault::CutAndIgnoreRanges(n)
            if path.contains("/blobs/") && length > n =>
        {
            faults_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
                .is_ok()
                .then_some(n)
        }
        _ => None,
    };
    match cut {
        Some(n) => {
            std::io::copy(&mut (&mut server).take(n), &mut client)?;
            client.flush()?;
            if let Fault::StallBlobAfter(_) = fault {
                // Nothing more, the connection open: until the client gives up on it.
                let mut byte = [0u8];
                client.set_read_timeout(Some(Duration::from_secs(100)))?;
                let _ = client.read(&mut byte);
            }
            // The connection breaks mid-body.
            let _ = client.shutdown(std::net::Shutdown::Both);
        }
        None => {
            std::io::copy(&mut server, &mut client)?;
        }
    }
    Ok(())
}

/// Reads an HTTP head (through the blank line), byte by byte: nothing of the body is taken.
fn read_head(stream: &mut std::net::TcpStream) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before the head ended",
            ));
        }
        head.push(byte[0]);
        if head.len() > 64 << 10 {
            return Err(std::io::Error::other("head too long"));
        }
    }
    Ok(head)
}

/// A connection that breaks in the middle of a layer: the pull resumes the blob with a Range
/// request from the byte it stopped at, and the image is whole.
#[test]
fn a_broken_download_resumes_where_it_stopped() {
    let registry = Registry::start("resume", false);
    registry.push(&docker_archive("busybox-docker.tar"), "library/busybox:latest");
    let proxy = FaultProxy::start(&registry.host, Fault::CutBlobAfter(300_000));
    let state = StateDir::new("pull-resume");
    let name = format!("{}/library/busybox:latest", proxy.host);
    let out = state.run(&["pull", &name]);
    assert_eq!(code(&out), 0, "{}\n{:?}", stderr(&out), proxy.requests());
    assert_eq!(
        proxy.range_requests(300_000),
        1,
        "one Range request from the byte the connection broke at: {:?}",
        proxy.requests()
    );
    assert_whole(&state, &name, false);
}

/// A connection that breaks in the middle of a layer, then a server that ignores the Range the
/// resumed request sends (a 200 with the whole blob): the bytes already unpacked are read again
/// and dropped, and the image is whole.
#[test]
fn a_resumed_download_from_a_server_without_ranges_skips_what_it_had() {
    let registry = Registry::start("no-range", false);
    registry.push(&docker_archive("busybox-docker.tar"), "library/busybox:latest");
    let proxy = FaultProxy::start(&registry.host, Fault::CutAndIgnoreRanges(300_000));
    let state = StateDir::new("pull-no-range");
    let name = format!("{}/library/busybox:latest", proxy.host);
    let out = state.run(&["pull", &name]);
    assert_eq!(code(&out), 0, "{}\n{:?}", stderr(&out), proxy.requests());
    assert_eq!(proxy.range_requests(300_000), 1, "the pull asked for the rest: {:?}", proxy.requests());
    assert_whole(&state, &name, true);
}

/// A connection that stalls in the middle of a layer (open, sending nothing): the pull gives up
/// on it after its timeout (`SPAWNER_REGISTRY_TIMEOUT`, 2 s here; 60 s by default) and resumes the
/// blob from the byte it had, instead of waiting for ever.
#[test]
fn a_stalled_download_is_given_up_and_resumed() {
    let registry = Registry::start("stall", false);
    registry.push(&docker_archive("busybox-docker.tar"), "library/busybox:latest");
    let proxy = FaultProxy::start(&registry.host, Fault::StallBlobAfter(300_000));
    let state = StateDir::new("pull-stall");
    let name = format!("{}/library/busybox:latest", proxy.host);
    let mut cmd = state.spawner(&["pull", &name]);
    cmd.env("SPAWNER_REGISTRY_TIMEOUT", "2");
    // Killed after 40 s: a pull that waits on the stalled connection never ends by itself.
    let out = wait_or_kill(cmd.spawn().unwrap(), Duration::from_secs(40));
    assert_eq!(code(&out), 0, "{}\n{:?}", stderr(&out), proxy.requests());
    assert_eq!(
        proxy.range_requests(300_000),
        1,
        "resumed from the byte it stalled at: {:?}",
        proxy.requests()
    );
    assert_whole(&state, &name, false);
}

/// A pull killed in the middle of a layer keeps what it had downloaded: the next pull unpacks
/// those bytes from the store again, asks the registry only for the rest (one Range request),
/// and the image is whole.
#[test]
fn a_killed_pull_is_resumed_by_the_next() {
    let registry = Registry::start("killed", false);
    registry.push(&docker_archive("busybox-docker.tar"), "library/busybox:latest");
    let proxy = FaultProxy::start(&registry.host, Fault::StallBlobAfter(300_000));
    let state = StateDir::new("pull-killed");
    let name = format!("{}/library/busybox:latest", proxy.host);
    let mut first = state.spawner(&["pull", &name]).spawn().unwrap();
    let ingest = state.0.join("store/content/ingest");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let kept = loop {
        let sizes: Vec<u64> = std::fs::read_dir(&ingest)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok().map(|m| m.len()))
            .collect();
        if sizes.contains(&300_000) {
            break 300_000u64;
        }
        assert!(std::time::Instant::now() < deadline, "the first pull never reached the stall: {sizes:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    first.kill().unwrap();
    first.wait().unwrap();
    let out = state.run(&["pull", &name]);
    assert_eq!(code(&out), 0, "{}\n{:?}", stderr(&out), proxy.requests());
    assert_eq!(
        proxy.range_requests(kept),
        1,
        "resumed from the byte the first pull had: {:?}",
        proxy.requests()
    );
    assert_whole(&state, &name, true);
}

/// A registry that answers 503 a few times: the pull tries again, with backoff, and succeeds.
#[test]
fn server_errors_are_retried() {
    let registry = Registry::start("retry", false);
    registry.push(&docker_archive("busybox-docker.tar"), "library/busybox:latest");
    let proxy = FaultProxy::start(&registry.host, Fault::Unavailable(3));
    let state = StateDir::new("pull-retry");
    let name = format!("{}/library/busybox:latest", proxy.host);
    let out = state.run(&["pull", &name]);
    assert_eq!(code(&out), 0, "{}\n{:?}", stderr(&out), proxy.requests());
    assert!(stderr(&out).contains("HTTP status 503"), "the retries are said: {}", stderr(&out));
    // Five attempts at most: a registry that keeps failing fails the pull, naming the status.
    let down = FaultProxy::start(&registry.host, Fault::Unavailable(1000));
    let out = StateDir::new("pull-down").run(&["pull", &format!("{}/library/busybox:latest", down.host)]);
    let (status, line) = failure(&out);
    assert_eq!(status, 125);
    assert!(line.ends_with("HTTP status 503"), "{line}");
}

const TOKEN_SERVICE: &str = "spawner-test-registry";
const TOKEN_ISSUER: &str = "spawner-test-issuer";

/// A token server as Docker Hub's auth.docker.io: `GET /token?service=…&scope=repository:NAME:ACTIONS`
/// answers `{"token": JWT}`, a JWT the registry accepts (RS256, signed with openssl by a key
/// whose self-signed certificate is the registry's `rootcertbundle` and rides in the `x5c`
/// header). Anyone gets what they ask for; each request is logged with whether it carried
/// credentials.
struct TokenServer {
    host: String,
    dir: PathBuf,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TokenServer {
    fn start(test: &str) -> TokenServer {
        let dir = std::env::temp_dir().join(format!("spawner-token-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = run({
                let mut c = Command::new("openssl");
                c.current_dir(&dir).args(args);
                c
            });
            assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "token.key",
            "-out",
            "token.crt",
            "-days",
            "2",
            "-subj",
            "/CN=spawner test token signer",
        ]);
        openssl(&["x509", "-in", "token.crt", "-outform", "DER", "-out", "token.der"]);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (dir2, log2, stop2) = (dir.clone(), log.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let _ = answer_token_request(&mut client, &dir2, &log2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TokenServer { host, dir, log, stop }
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn answer_token_request(
    client: &mut std::net::TcpStream,
    dir: &Path,
    log: &std::sync::Mutex<Vec<String>>,
) -> std::io::Result<()> {
    use std::io::Write;
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let head = String::from_utf8_lossy(&read_head(client)?).into_owned();
    let target = head.lines().next().unwrap_or("").split(' ').nth(1).unwrap_or("").to_string();
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    let credentials = head.lines().any(|l| l.to_ascii_lowercase().starts_with("authorization: basic "));
    let scopes: Vec<&str> = params.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.as_str()).collect();
    log.lock().unwrap().push(format!("scope={} credentials={credentials}", scopes.join(" ")));
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER, "sub": if credentials { "tester" } else { "" }, "aud": TOKEN_SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", std::process::id()),
        "access": access,
    });
    let der = std::fs::read(dir.join("token.der"))?;
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [base64(&der, false)]});
    let signing_input = format!(
        "{}.{}",
        base64(header.to_string().as_bytes(), true),
        base64(claims.to_string().as_bytes(), true)
    );
    let mut sign = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(dir.join("token.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    sign.stdin.take().unwrap().write_all(signing_input.as_bytes())?;
    let signature = sign.wait_with_output()?.stdout;
    let token = format!("{signing_input}.{}", base64(&signature, true));
    let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string();
    write!(
        client,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Standard base64, or base64url without padding (JWTs).
fn base64(bytes: &[u8], url: bool) -> String {
    let table: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(table[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Docker Hub's way: a 401 names a token realm; the pull gets a token there (anonymously, or
/// with the user's credentials as Basic), and reuses it for every request after.
#[test]
fn bearer_tokens_from_the_realm_the_registry_names() {
    let tokens = TokenServer::start("bearer");
    let registry = Registry::start_with("bearer", false, Some(&tokens));
    registry.push(&docker_archive("busybox-docker.tar"), "library/busybox:latest");
    let pushed = tokens.requests().len();
    assert!(pushed > 0, "skopeo's push went through the token server");
    let state = StateDir::new("pull-bearer");
    let name = format!("{}/library/busybox:latest", registry.host);
    let out = state.run(&["pull", &name]);
    assert_eq!(code(&out), 0, "{}\n{}", stderr(&out), registry.log());
    let asked: Vec<String> = tokens.requests()[pushed..].to_vec();
    assert_eq!(
        asked,
        ["scope=repository:library/busybox:pull credentials=false"],
        "one anonymous token, for pulling this repository, reused for the manifest and every blob"
    );
    // With credentials, the token server gets them (as Basic).
    let other = StateDir::new("pull-bearer-creds");
    let out = other.run(&["pull", "--creds", "tester:pw", &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(tokens.requests().last().unwrap(), "scope=repository:library/busybox:pull credentials=true");
    // login asks the token server with the credentials and no scope, as docker login does.
    let file = other.0.join("auth.json");
    let out = other.run(&[
        "login",
        "--authfile",
        file.to_str().unwrap(),
        "-u",
        "tester",
        "-p",
        "pw",
        &registry.host,
    ]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "Login Succeeded!\n"), "{}", stderr(&out));
    assert_eq!(tokens.requests().last().unwrap(), "scope= credentials=true");
}

/// `spawner run debian:bookworm` with registries.conf naming a loopback registry for docker.io
/// (and a mirror before it that is down): the Debian image is pulled from there, nothing else is
/// asked, and apt works inside.
#[test]
fn debian_from_a_configured_registry_runs_apt() {
    let registry = Registry::start("debian", false);
    registry.push(&docker_archive("debian.tar"), "library/debian:bookworm");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let state = StateDir::new("pull-debian");
    let conf = state.0.join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nprefix = \"docker.io\"\nlocation = \"{}\"\ninsecure = true\n[[registry.mirror]]\nlocation = \"{dead}\"\ninsecure = true\n",
            registry.host
        ),
    )
    .unwrap();
    let mut cmd = state.spawner(&[
        "run",
        "--rm",
        "debian:bookworm",
        "--",
        "sh",
        "-c",
        ". /etc/os-release; echo $VERSION_CODENAME; apt-get check >/dev/null && echo apt ok; dpkg -s apt | grep '^Status'",
    ]);
    cmd.env("CONTAINERS_REGISTRIES_CONF", &conf);
    let out = wait_or_kill(cmd.spawn().unwrap(), Duration::from_secs(300));
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "bookworm\napt ok\nStatus: install ok installed\n"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("Pulling docker.io/library/debian:bookworm"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("mirror {dead}: ")),
        "the dead mirror was tried first: {}",
        stderr(&out)
    );
    assert_eq!(stored_names(&state), ["docker.io/library/debian:bookworm"]);
}

/// On a terminal, a line a layer, redrawn in place with its state and bytes; the image ID still
/// goes alone to stdout (here the same terminal), and -q shows nothing but it.
#[test]
fn progress_on_a_terminal() {
    let registry = Registry::start("progress", false);
    registry.push(&docker_archive("busybox-docker.tar"), "library/busybox:latest");
    let state = StateDir::new("pull-progress");
    let name = format!("{}/library/busybox:latest", registry.host);
    let mut cmd = Command::new(spawner_bin());
    // A terminal that can redraw (CI may run with TERM unset).
    cmd.arg("--root").arg(&state.0).args(["pull", &name]).env("TERM", "xterm");
    let (child, mut master) = spawn_on_terminal(cmd, Some((30, 120)));
    let seen = read_until(&mut master, "Digest: ");
    let seen = seen + &read_until(&mut master, "\n");
    let out = wait_or_kill(child, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{seen:?}");
    // Each layer's line: 12 hex digits, then its state.
    let mut layers: Vec<&str> = seen
        .match_indices(": Waiting")
        .filter_map(|(i, _)| seen.get(i.checked_sub(12)?..i))
        .filter(|short| short.bytes().all(|c| c.is_ascii_hexdigit()))
        .collect();
    layers.sort();
    layers.dedup();
    assert_eq!(layers.len(), 3, "a line a layer: {seen:?}");
    for short in layers {
        assert!(seen.contains(&format!("{short}: Download complete")), "{short}: {seen:?}");
    }
    assert!(seen.contains("\x1b["), "redrawn in place: {seen:?}");
    assert!(!seen.contains(": downloading"), "no event lines on a terminal: {seen:?}");
}

/// `save -o` writes a pulled image as Docker 25 does (manifest.json over an OCI layout): podman
/// loads it under its name, and spawner runs the file.
#[test]
fn save_then_podman_load() {
    assert_installed("podman", &["--version"]);
    let registry = Registry::start("save", false);
    registry.push(&docker_archive("busybox-docker.tar"), "library/busybox:latest");
    let state = StateDir::new("pull-save");
    let name = format!("{}/library/busybox:latest", registry.host);
    let id = stdout(&state.run(&["pull", "-q", &name])).trim().to_string();
    let archive = state.0.join("saved.tar");
    let out = state.run(&["save", "-o", archive.to_str().unwrap(), &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = StateDir::new("pull-save-run").run(&[
        "run",
        "--rm",
        archive.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "echo saved",
    ]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "saved\n"), "{}", stderr(&out));
    // podman's own store, in the test's directory (its runroot must be a short path).
    let runroot = std::env::temp_dir().join(format!("sbpl-{}", std::process::id()));
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--root").arg(state.0.join("podman")).arg("--runroot").arg(&runroot);
        c.args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(args);
        c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        run(c)
    };
    let out = podman(&["load", "-i", archive.to_str().unwrap()]);
    let listed = podman(&["images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let _ = podman(&["rmi", "-a", "-f"]);
    let _ = std::fs::remove_dir_all(&runroot);
    assert!(out.status.success(), "podman load: {}", stderr(&out));
    assert_eq!(
        stdout(&listed).trim(),
        format!("{name} {id}"),
        "podman has it under its name and ID: {}",
        stderr(&listed)
    );
    let out = state.run(&["save", "-o", state.0.join("none.tar").to_str().unwrap(), "no-such:1"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("no image docker.io/library/no-such:1 in the store"), "{}", stderr(&out));
    assert!(!state.0.join("none.tar").exists(), "nothing written");
}

/// A pull skips the layers the store has unpacked already (here from `load` of a plain docker
/// save), so their compressed blobs never come: `save` writes those layers as their plain tar,
/// made again from the tree, under a rewritten manifest (as `docker save` writes layers), and
/// the archive runs and loads elsewhere as the same image.
#[test]
fn save_of_an_image_whose_layers_were_there_before_the_pull() {
    let registry = Registry::start("save-kept", false);
    registry.push(&docker_archive("busybox-docker.tar"), "library/busybox:latest");
    let state = StateDir::new("pull-save-kept");
    let out = state.run(&["load", "-i", image("busybox-docker.tar").to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let name = format!("{}/library/busybox:latest", registry.host);
    let out = state.run(&["pull", &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stored: Vec<u64> = std::fs::read_dir(state.0.join("store/content/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    assert!(stored.iter().all(|&len| len < 64 << 10), "no layer blob came, only small ones: {stored:?}");
    let archive = state.0.join("saved.tar");
    let out = state.run(&["save", "-o", archive.to_str().unwrap(), &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let fresh = StateDir::new("pull-save-kept-load");
    let out = fresh.run(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = fresh.run(&["run", "--rm", &name, "--", "sh", "-c", "echo saved"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "saved\n"), "{}", stderr(&out));
    let ids = |s: &StateDir| {
        let out = s.run(&["images", "-q"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out).split_whitespace().map(str::to_owned).collect::<Vec<_>>()
    };
    let loaded = ids(&fresh);
    assert_eq!(loaded.len(), 1, "{loaded:?}");
    assert!(ids(&state).contains(&loaded[0]), "the same image ID: {loaded:?} vs {:?}", ids(&state));
}
