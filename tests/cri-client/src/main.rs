//! `cri`: the few CRI calls the engine tests make to containerd's CRI plugin, as kubelet makes
//! them (Debian ships no crictl). Requests are built from flags; answers are printed as JSON (or
//! one id, or one value of them with a JSON pointer).

use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::collections::HashMap;
use std::io::Write;
use tonic::transport::{Channel, Endpoint, Uri};

const USAGE: &str = "usage: cri --socket SOCKET COMMAND [ARG...]

  version                         the runtime's name and version (JSON)
  images                          image tags, one a line
  runp POD                        runs a pod sandbox; prints its id
  create POD_ID POD CONTAINER -- COMMAND...  creates a container in the pod; prints its id
  start ID
  exec-sync ID -- COMMAND...      runs COMMAND in the container: prints its stdout (its stderr to
                                  stderr) and exits with its exit code
  status ID [POINTER]             the container's status, verbose (JSON, or the value at POINTER)
  inspectp ID [POINTER]           the pod sandbox's status, verbose (JSON, or the value at POINTER)
  stop ID [TIMEOUT]               stops the container (SIGTERM, SIGKILL after TIMEOUT seconds)
  rm ID | stopp ID | rmp ID       removes the container; stops, removes the pod sandbox
  ps | pods                       ids of all containers, of all pod sandboxes, one a line

POD (the same for runp and create, as kubelet passes it to both):
  --pod NAME --namespace NS --cgroup-parent PATH --log-dir DIR --host-network --runtime HANDLER
CONTAINER:
  --name NAME --image REF --log-path PATH (below the pod's log dir) --memory BYTES
  --pid pod|container|node (the container's PID namespace)
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (socket, command) = match args.split_first() {
        Some((flag, rest)) if flag == "--socket" && !rest.is_empty() => (rest[0].clone(), rest[1..].to_vec()),
        _ => usage(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    match runtime.block_on(run(&socket, &command)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("cri: {}: {e}", command.first().map_or("", String::as_str));
            std::process::exit(1);
        }
    }
}

fn usage() -> ! {
    eprint!("{USAGE}");
    std::process::exit(2);
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Makes the call `command` names; returns the exit code.
async fn run(socket: &str, command: &[String]) -> Result<i32> {
    let channel = connect(socket).await?;
    let mut rt = RuntimeServiceClient::new(channel.clone());
    let mut images = ImageServiceClient::new(channel);
    let words: Vec<&str> = command.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["version"] => print_json(&rt.version(cri::VersionRequest::default()).await?.into_inner(), None)?,
        ["images"] => {
            let list = images.list_images(cri::ListImagesRequest::default()).await?.into_inner();
            list.images.iter().flat_map(|i| &i.repo_tags).for_each(|t| println!("{t}"));
        }
        ["runp", pod @ ..] => {
            let (config, handler) = pod_config(&Flags::parse(pod)?)?;
            let request = cri::RunPodSandboxRequest { config: Some(config), runtime_handler: handler };
            println!("{}", rt.run_pod_sandbox(request).await?.into_inner().pod_sandbox_id);
        }
        ["create", pod_id, rest @ ..] => {
            let split = rest.iter().position(|a| *a == "--").ok_or("create: no -- COMMAND")?;
            let flags = Flags::parse(&rest[..split])?;
            let request = cri::CreateContainerRequest {
                pod_sandbox_id: pod_id.to_string(),
                config: Some(container_config(&flags, &rest[split + 1..])?),
                sandbox_config: Some(pod_config(&flags)?.0),
            };
            println!("{}", rt.create_container(request).await?.into_inner().container_id);
        }
        ["start", id] => {
            rt.start_container(cri::StartContainerRequest { container_id: id.to_string() }).await?;
        }
        ["exec-sync", id, "--", cmd @ ..] if !cmd.is_empty() => {
            let cmd = cmd.iter().map(|s| s.to_string()).collect();
            let request = cri::ExecSyncRequest { container_id: id.to_string(), cmd, timeout: 60 };
            let out = rt.exec_sync(request).await?.into_inner();
            std::io::stdout().write_all(&out.stdout)?;
            std::io::stderr().write_all(&out.stderr)?;
            return Ok(out.exit_code);
        }
        ["status", id, pointer @ ..] if pointer.len() <= 1 => {
            let request = cri::ContainerStatusRequest { container_id: id.to_string(), verbose: true };
            print_json(&rt.container_status(request).await?.into_inner(), pointer.first().copied())?;
        }
        ["inspectp", id, pointer @ ..] if pointer.len() <= 1 => {
            let request = cri::PodSandboxStatusRequest { pod_sandbox_id: id.to_string(), verbose: true };
            print_json(&rt.pod_sandbox_status(request).await?.into_inner(), pointer.first().copied())?;
        }
        ["stop", id, timeout @ ..] if timeout.len() <= 1 => {
            let timeout = timeout.first().map_or(Ok(10), |t| t.parse())?;
            rt.stop_container(cri::StopContainerRequest { container_id: id.to_string(), timeout }).await?;
        }
        ["rm", id] => {
            rt.remove_container(cri::RemoveContainerRequest { container_id: id.to_string() }).await?;
        }
        ["stopp", id] => {
            rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: id.to_string() }).await?;
        }
        ["rmp", id] => {
            rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id.to_string() }).await?;
        }
        ["ps"] => {
            let list = rt.list_containers(cri::ListContainersRequest::default()).await?.into_inner();
            list.containers.iter().for_each(|c| println!("{}", c.id));
        }
        ["pods"] => {
            let list = rt.list_pod_sandbox(cri::ListPodSandboxRequest::default()).await?.into_inner();
            list.items.iter().for_each(|p| println!("{}", p.id));
        }
        _ => usage(),
    }
    Ok(0)
}

/// A gRPC channel over the unix socket (the URI is a placeholder: the connector ignores it).
async fn connect(socket: &str) -> Result<Channel> {
    let path = socket.to_string();
    let connector = tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move {
            let stream = tokio::net::UnixStream::connect(path).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }
    });
    let channel = Endpoint::try_from("http://[::1]")?.connect_with_connector(connector).await;
    // tonic's error says only "transport error": the cause is in its source.
    channel.map_err(|e| {
        let cause = std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
        format!("connect to {socket}: {cause}").into()
    })
}

/// Prints `value` as JSON, or only its value at `pointer` on one line (a string bare). The
/// runtime's verbose `info` values are JSON in strings: they are printed as JSON (as crictl does).
fn print_json(value: &impl serde::Serialize, pointer: Option<&str>) -> Result<()> {
    let mut value = serde_json::to_value(value)?;
    if let Some(serde_json::Value::Object(info)) = value.get_mut("info") {
        for v in info.values_mut() {
            if let Some(parsed) = v.as_str().and_then(|s| serde_json::from_str(s).ok()) {
                *v = parsed;
            }
        }
    }
    match pointer.map(|p| value.pointer(p).ok_or_else(|| format!("nothing at {p}"))) {
        None => println!("{}", serde_json::to_string_pretty(&value)?),
        Some(Ok(serde_json::Value::String(s))) => println!("{s}"),
        Some(Ok(v)) => println!("{v}"),
        Some(Err(e)) => return Err(e.into()),
    }
    Ok(())
}

/// The POD and CONTAINER flags.
#[derive(Default)]
struct Flags {
    values: HashMap<String, String>,
    host_network: bool,
}

impl Flags {
    fn parse(args: &[&str]) -> Result<Flags> {
        const VALUED: &[&str] = &[
            "--pod",
            "--namespace",
            "--cgroup-parent",
            "--log-dir",
            "--runtime",
            "--name",
            "--image",
            "--log-path",
            "--memory",
            "--pid",
        ];
        let mut flags = Flags::default();
        let mut args = args.iter();
        while let Some(&flag) = args.next() {
            if flag == "--host-network" {
                flags.host_network = true;
            } else if VALUED.contains(&flag) {
                let value = args.next().ok_or_else(|| format!("{flag} wants a value"))?;
                flags.values.insert(flag.to_string(), value.to_string());
            } else {
                return Err(format!("unknown flag {flag:?}").into());
            }
        }
        Ok(flags)
    }

    fn get(&self, flag: &str) -> String {
        self.values.get(flag).cloned().unwrap_or_default()
    }

    fn required(&self, flag: &str) -> Result<String> {
        self.values.get(flag).cloned().ok_or_else(|| format!("{flag} is required").into())
    }
}

/// The pod sandbox's config and runtime handler.
fn pod_config(flags: &Flags) -> Result<(cri::PodSandboxConfig, String)> {
    let name = flags.required("--pod")?;
    let network = if flags.host_network { cri::NamespaceMode::Node } else { cri::NamespaceMode::Pod };
    let config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            uid: format!("{name}-uid"),
            name,
            namespace: flags.get("--namespace"),
            attempt: 0,
        }),
        log_directory: flags.get("--log-dir"),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: flags.get("--cgroup-parent"),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: network.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok((config, flags.get("--runtime")))
}

fn container_config(flags: &Flags, command: &[&str]) -> Result<cri::ContainerConfig> {
    let pid = match flags.get("--pid").as_str() {
        "" | "pod" => cri::NamespaceMode::Pod,
        "container" => cri::NamespaceMode::Container,
        "node" => cri::NamespaceMode::Node,
        other => return Err(format!("--pid {other:?}: pod, container or node").into()),
    };
    let network = if flags.host_network { cri::NamespaceMode::Node } else { cri::NamespaceMode::Pod };
    let memory = flags.values.get("--memory").map_or(Ok(0), |m| m.parse())?;
    Ok(cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata { name: flags.required("--name")?, attempt: 0 }),
        image: Some(cri::ImageSpec { image: flags.required("--image")?, ..Default::default() }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: flags.get("--log-path"),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: memory,
                ..Default::default()
            }),
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: network.into(),
                    pid: pid.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    })
}
