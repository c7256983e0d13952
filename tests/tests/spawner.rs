//! Black-box tests of `spawner run`: real containers from image archives made by `cargo xtask
//! images` (ours, and the same image re-written by podman, skopeo and umoci).

use integration_tests::*;
use std::time::Duration;

const BUSYBOX: &str = "busybox-docker.tar";

fn busybox() -> String {
    image(BUSYBOX).display().to_string()
}

#[test]
fn every_image_form_runs() {
    let state = StateDir::new("forms");
    let mut forms = vec![
        "busybox-docker.tar",
        "busybox-docker25.tar",
        "busybox-legacy.tar",
        "busybox-legacy-nomanifest.tar",
        "busybox-oci-gzip.tar",
        "busybox-oci-zstd.tar",
        "busybox-oci-multiarch.tar",
    ];
    // Made by the real tools from our OCI image, when they were available to `cargo xtask images`.
    for tool_made in [
        "busybox-skopeo-docker.tar",
        "busybox-skopeo-oci.tar",
        "busybox-podman.tar",
        "busybox-podman-oci.tar",
        "busybox-umoci.tar",
    ] {
        if workspace().join("target/images").join(tool_made).exists() {
            forms.push(tool_made);
        } else {
            eprintln!("note: {tool_made} was not built (tool missing)");
        }
    }
    for form in forms {
        let out = state.run(&["run", image(form).to_str().unwrap(), "--", "cat", "/etc/motd"]);
        assert_eq!(stdout(&out), "hello from spawner's busybox image\n", "{form}: {}", stderr(&out));
        assert_eq!(code(&out), 0, "{form}");
    }
}

#[test]
fn selects_an_image_from_a_multi_image_archive() {
    let state = StateDir::new("multi");
    let multi = image("multi.tar").display().to_string();
    let out = state.run(&["run", &multi]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("busybox:latest") && stderr(&out).contains("busybox:other"),
        "{}",
        stderr(&out)
    );
    let out = state.run(&["run", &format!("{multi}:busybox:other")]);
    assert_eq!(stdout(&out), "other image\n", "{}", stderr(&out));
    let out =
        state.run(&["run", "--image", "busybox:latest", &multi, "--", "sh", "-c", "echo $OTHER-$GREETING"]);
    assert_eq!(stdout(&out), "-hello\n", "{}", stderr(&out));
}

#[test]
fn whiteouts_and_opaque_directories_apply() {
    let state = StateDir::new("whiteouts");
    let out = state.run(&[
        "run",
        &busybox(),
        "--",
        "sh",
        "-c",
        "ls /etc/deleted-later; ls /opt/replaced; cat /etc/layer2",
    ]);
    assert_eq!(stdout(&out), "new\nlayer 2\n", "{}", stderr(&out));
    assert!(stderr(&out).contains("/etc/deleted-later: No such file or directory"));
}

#[test]
fn image_config_is_applied() {
    let state = StateDir::new("config");
    // No command: the image's Cmd (sh) reads stdin, which is /dev/null, and exits 0.
    let out = state.run(&["run", &busybox()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = state.run(&["run", &busybox(), "--", "sh", "-c", "echo $GREETING $PATH; pwd; id"]);
    assert_eq!(
        stdout(&out),
        "hello /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/\nuid=0(root) gid=0(root) groups=0(root)\n",
        "{}",
        stderr(&out)
    );
}

#[test]
fn command_line_overrides() {
    let state = StateDir::new("overrides");
    let out = state.run(&[
        "run",
        "-e",
        "GREETING=hi",
        "-e",
        "NEW=1",
        "-w",
        "/srv/work",
        "-u",
        "app",
        "--hostname",
        "box",
        &busybox(),
        "--",
        "sh",
        "-c",
        "echo $GREETING $NEW $HOME; pwd; id; hostname; cat /etc/hostname",
    ]);
    assert_eq!(
        stdout(&out),
        "hi 1 /home/app\n/srv/work\nuid=1000(app) gid=1000(app) groups=50(staff),1000(app)\nbox\nbox\n",
        "{}",
        stderr(&out)
    );
    let out = state.run(&["run", "-u", "65534:65534", &busybox(), "--", "id"]);
    assert_eq!(
        stdout(&out),
        "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n",
        "{}",
        stderr(&out)
    );
    let out = state.run(&["run", "--entrypoint", "/usr/local/bin/greet", &busybox(), "--", "world"]);
    assert_eq!(stdout(&out), "greetings, world\n", "{}", stderr(&out));
    let out = state.run(&["run", "-u", "nosuchuser", &busybox(), "--", "id"]);
    assert_eq!(code(&out), 125);
    assert_eq!(stderr(&out), "spawner: unable to find user nosuchuser: no matching entries in /etc/passwd\n");
}

#[test]
fn exit_codes() {
    let state = StateDir::new("exit");
    for (script, want) in [("exit 0", 0), ("exit 42", 42), ("kill -TERM $$", 143), ("kill -KILL $$", 137)] {
        let out = state.run(&["run", &busybox(), "--", "sh", "-c", script]);
        assert_eq!(code(&out), want, "{script}: {}", stderr(&out));
    }
    let out = state.run(&["run", &busybox(), "--", "no-such-command"]);
    assert_eq!(code(&out), 127);
    assert!(stderr(&out).contains("no-such-command': command not found"), "{}", stderr(&out));
    let out = state.run(&["run", &busybox(), "--", "/etc/motd"]);
    assert_eq!(code(&out), 126, "{}", stderr(&out));
    let out = state.run(&["run", "/no/such/image.tar"]);
    assert_eq!(code(&out), 125);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).starts_with("spawner: ") && stderr(&out).contains("/no/such/image.tar"));
    let out = state.run(&["run", "--bogus-flag", &busybox()]);
    assert_eq!(code(&out), 125);
    // As Docker: a relative -w and an invalid --hostname are refused, not bent into shape.
    let out = state.run(&["run", "--network", "none", "-w", "relative", &busybox(), "--", "pwd"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (125, ""), "{}", stderr(&out));
    assert_eq!(stderr(&out), "spawner: -w relative: the working directory must be an absolute path\n");
    for bad in ["under_score", "-lead", "a..b"] {
        let flag = format!("--hostname={bad}");
        let out = state.run(&["run", "--network", "none", &flag, &busybox(), "--", "hostname"]);
        assert_eq!(code(&out), 125, "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains("not a valid hostname"), "{bad}: {}", stderr(&out));
    }
}

#[test]
fn signals_sent_to_spawner_reach_the_container() {
    use std::io::{BufRead, BufReader};
    let state = StateDir::new("signals");
    for (sig, name) in [(15, "TERM"), (2, "INT"), (1, "HUP"), (10, "USR1"), (12, "USR2"), (3, "QUIT")] {
        let script =
            format!("trap 'echo got {name}; exit 3' {name}; echo ready; while :; do sleep 0.05; done");
        let mut child = state.spawner(&["run", &busybox(), "--", "sh", "-c", &script]).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        send(&child, sig);
        line.clear();
        lines.read_line(&mut line).unwrap();
        assert_eq!(line, format!("got {name}\n"));
        let out = wait_or_kill(child, Duration::from_secs(20));
        assert_eq!(code(&out), 3);
    }
}

#[test]
fn memory_limit_oom_kill_is_reported() {
    let state = StateDir::new("oom");
    let out = state.run(&[
        "run",
        "--memory",
        "32m",
        &busybox(),
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=128M",
        "count=1",
    ]);
    assert_eq!(code(&out), 137, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("spawner: container was killed by the OOM killer (memory limit 32 MiB)\n"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("init: OOM killer killed 1 process in this container (memory limit 32 MiB)")
    );
    // Under the limit it just runs.
    let out = state.run(&[
        "run",
        "--memory",
        "64m",
        &busybox(),
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=8M",
        "count=1",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn hostname_pid_and_network_isolation() {
    let state = StateDir::new("isolation");
    let out = state.run(&["run", &busybox(), "--", "sh", "-c", "hostname; ps -o pid,comm; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags; ls /sys/class/net"]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0].len(), 12, "a container id as hostname: {text}");
    assert_ne!(lines[0], std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim());
    // Only the container's processes: init, sh, ps.
    let procs: Vec<&str> = lines[2..]
        .iter()
        .take_while(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .copied()
        .collect();
    assert_eq!(procs.len(), 3, "{text}");
    assert!(procs[0].trim().starts_with("1 "), "init is PID 1: {text}");
    assert!(text.contains("0x9\n"), "loopback is up (IFF_UP|IFF_LOOPBACK): {text}");
    assert!(text.ends_with("lo\n"), "only loopback: {text}");
}

#[test]
fn bind_mounts_read_write_and_read_only() {
    let state = StateDir::new("binds");
    let host = state.0.join("host-dir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from host\n").unwrap();
    let rw = format!("{}:/data", host.display());
    let out = state.run(&[
        "run",
        "-v",
        &rw,
        &busybox(),
        "--",
        "sh",
        "-c",
        "cat /data/in; echo from container > /data/out",
    ]);
    assert_eq!(stdout(&out), "from host\n", "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap(), "from container\n");
    let ro = format!("{}:/data:ro", host.display());
    let out = state.run(&["run", "-v", &ro, &busybox(), "--", "sh", "-c", "cat /data/in; touch /data/x"]);
    assert_eq!(stdout(&out), "from host\n");
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));
    assert!(!host.join("x").exists());
}

#[test]
fn read_only_root() {
    let state = StateDir::new("readonly");
    let out = state.run(&[
        "run",
        "--read-only",
        &busybox(),
        "--",
        "sh",
        "-c",
        "touch /x || echo refused; touch /dev/shm/ok && echo tmpfs-ok",
    ]);
    assert_eq!(stdout(&out), "refused\ntmpfs-ok\n", "{}", stderr(&out));
    assert!(stderr(&out).contains("Read-only file system"));
}

#[test]
fn writes_are_gone_in_the_next_run_and_the_store_is_unchanged() {
    let state = StateDir::new("ephemeral");
    let out = state.run(&["run", &busybox(), "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let before = state.store_listing();
    let out = state.run(&[
        "run",
        &busybox(),
        "--",
        "sh",
        "-c",
        "echo changed > /etc/motd; rm /bin/ls; echo new > /new",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = state.run(&["run", &busybox(), "--", "sh", "-c", "cat /etc/motd; ls /new; ls /bin/ls"]);
    assert_eq!(stdout(&out), "hello from spawner's busybox image\n/bin/ls\n", "{}", stderr(&out));
    assert_eq!(state.store_listing(), before);
}

#[test]
fn nothing_is_left_after_a_run() {
    let state = StateDir::new("leftovers");
    let mut cgroups = Vec::new();
    for args in
        [&["--", "true"][..], &["--", "sh", "-c", "sleep 4321 & exit 3"][..], &["--", "no-such-command"][..]]
    {
        let img = busybox();
        let mut all = vec!["-v", "run", "--rm", "--memory", "64m", &img];
        all.extend_from_slice(args);
        let out = state.run(&all);
        assert_ne!(code(&out), 125, "{}", stderr(&out));
        // `-v` names the cgroup: `[INFO ] cgroup ["/sys/fs/cgroup/memory/…/spawner-<id>"] (V1)`.
        let err = stderr(&out);
        let line = err.lines().find(|l| l.contains("] cgroup [")).expect("the cgroup line");
        let path = line.split('"').nth(1).unwrap().to_string();
        cgroups.push(path);
    }
    for cg in &cgroups {
        assert!(!std::path::Path::new(cg).exists(), "cgroup left: {cg}");
    }
    let containers: Vec<_> = std::fs::read_dir(state.0.join("containers")).unwrap().flatten().collect();
    assert!(containers.is_empty(), "container dirs left: {containers:?}");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(state.0.to_str().unwrap()), "mounts left");
    // The `sleep 4321` left behind was killed with its container (a duration no other test
    // uses: tests run side by side).
    let sleeping = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == b"sleep\x004321\x00"));
    assert!(!sleeping, "a container process outlived its container");
}

/// `images` lists name, tag, ID, created and size; `rmi` removes the name and what only that
/// image used, but never a layer under a running container (prune keeps what containers mount).
#[test]
fn images_rmi_and_prune_keep_what_containers_use() {
    let state = StateDir::new("images");
    assert_eq!(code(&state.run(&["run", "--rm", &busybox(), "--", "true"])), 0);
    let out = state.run(&["images"]);
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"], "{}", stdout(&out));
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!((row[0], row[1], row[2].len()), ("busybox", "latest", 12), "{}", stdout(&out));
    assert!(row.last().unwrap().ends_with("MB"), "the layers' size: {}", stdout(&out));
    let out = state.run(&["prune"]);
    assert!(stdout(&out).contains("0 layers removed"), "{}", stdout(&out));

    // A container runs while its image is removed: its layers stay until it is gone.
    let script = "echo up; sleep 1.5; ls /bin/busybox >/dev/null && echo still here";
    let mut child = state.spawner(&["run", "--rm", &busybox(), "--", "sh", "-c", script]).spawn().unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut first)
        .unwrap();
    assert_eq!(first, "up\n");
    let out = state.run(&["rmi", "busybox:latest"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "Untagged: busybox:latest\n"), "{}", stderr(&out));
    let out = wait_or_kill(child, Duration::from_secs(30));
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "still here\n"), "{}", stderr(&out));
    assert_eq!(stdout(&state.run(&["images"])).lines().count(), 1, "no image left");
    let out = state.run(&["prune"]);
    assert!(stdout(&out).contains("\n3 layers removed"), "the container is gone: {}", stdout(&out));
    let out = state.run(&["rmi", "busybox:latest"]);
    assert_eq!((code(&out), stderr(&out).as_str()), (125, "spawner: no such image: busybox:latest\n"));
}

#[test]
fn parallel_runs_share_the_store() {
    let state = StateDir::new("parallel");
    let children: Vec<_> = (0..8)
        .map(|i| {
            state
                .spawner(&["-v", "run", &busybox(), "--", "sh", "-c", &format!("echo run {i}")])
                .spawn()
                .unwrap()
        })
        .collect();
    let mut unpacks = 0;
    for (i, child) in children.into_iter().enumerate() {
        let out = wait_or_kill(child, Duration::from_secs(60));
        assert_eq!(stdout(&out), format!("run {i}\n"), "{}", stderr(&out));
        unpacks += stderr(&out).matches("unpacked layer").count();
    }
    // Eight runs at once on an empty store: each of the 3 layers unpacked by exactly one of them.
    assert_eq!(unpacks, 3);
    let layers = std::fs::read_dir(state.0.join("store/layers/sha256")).unwrap().count();
    assert_eq!(layers, 3);
    assert_eq!(std::fs::read_dir(state.0.join("store/tmp")).unwrap().count(), 0, "leftovers in store/tmp");
    // And the store verifies: every layer re-hashed matches what its one unpack recorded.
    let out = state.run(&["images", "--verify"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).lines().filter(|l| l.starts_with("ok ")).count(), 3, "{}", stdout(&out));
    assert!(stderr(&out).contains("3 layers verified, all intact"), "{}", stderr(&out));
}

#[test]
fn images_verify_finds_a_changed_layer() {
    let state = StateDir::new("verify");
    assert_eq!(code(&state.run(&["run", &busybox(), "--", "true"])), 0);
    assert_eq!(code(&state.run(&["images", "--verify"])), 0);
    // Someone edits a file in the store by hand: same size, so only its bytes differ.
    let layers = state.0.join("store/layers/sha256");
    let changed = std::fs::read_dir(&layers)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|layer| layer.join("diff/bin/busybox").exists())
        .expect("a layer with bin/busybox");
    let busybox_file = changed.join("diff/bin/busybox");
    let mut bytes = std::fs::read(&busybox_file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&busybox_file, &bytes).unwrap();
    let out = state.run(&["images", "--verify"]);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let name = changed.file_name().unwrap().to_str().unwrap();
    let listing = stdout(&out);
    let failed: Vec<&str> = listing.lines().filter(|l| l.starts_with("FAILED")).collect();
    assert_eq!(failed.len(), 1, "{listing}");
    assert!(failed[0].contains(name) && failed[0].contains("files differ"), "{}", failed[0]);
    assert!(stderr(&out).contains("verification failed: 1 of 3 layers changed"), "{}", stderr(&out));
}

#[test]
fn tty_gives_the_container_a_terminal_of_its_own() {
    let state = StateDir::new("tty");
    let cmd = state.spawner(&[
        "run",
        "-it",
        &busybox(),
        "--",
        "sh",
        "-c",
        "tty; stty size; echo $TERM; read line; echo got:$line; exit 5",
    ]);
    let (child, mut master) = spawn_on_terminal(cmd, Some((45, 123)));
    // Typed once the line is out whole: typed earlier, its echo can land inside it.
    let seen = read_until(&mut master, "xterm\r\n");
    std::io::Write::write_all(&mut master, b"hello\r").unwrap();
    let seen = seen + &read_until(&mut master, "got:hello");
    let out = wait_or_kill(child, Duration::from_secs(20));
    assert_eq!(code(&out), 5, "{seen:?}");
    assert!(seen.contains("/dev/pts/0\r\n45 123\r\nxterm\r\n"), "{seen:?}");
    assert!(seen.contains("got:hello"), "{seen:?}");
}

#[test]
fn hardening_is_on_by_default_and_visible_inside() {
    let state = StateDir::new("hardening");
    let script = "grep -E '^(CapInh|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; sleep 10 & sleep 0.1; ls /proc/$!/fd | tr '\\n' ' '; kill $!; echo; \
                  ls /sys/firmware | wc -l; echo x > /proc/sys/kernel/hostname || echo proc-sys-ro; \
                  mkdir /sys/fs/cgroup/x 2>/dev/null || echo cgroup-ro";
    // fd 7, open in spawner, must not reach the container. The fds listed are those of a process the
    // container's shell starts (sleep), once it has settled: the shell's own hold pipe ends and
    // saved fds for a moment around the commands it runs, and the child replaces its stdin with
    // /dev/null (close, then open) as it starts.
    let mut cmd = state.spawner(&["run", &busybox(), "--", "sh", "-c", script]);
    let extra = std::fs::File::open("/etc/hostname").unwrap();
    let extra_fd = std::os::fd::AsRawFd::as_raw_fd(&extra);
    // SAFETY of pre_exec: dup2 is async-signal-safe and only changes the child's fd table.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            let mut seven = <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(7);
            let r = rustix::io::dup2(std::os::fd::BorrowedFd::borrow_raw(extra_fd), &mut seven);
            std::mem::forget(seven);
            r.map_err(Into::into)
        });
    }
    let out = run(cmd);
    assert_eq!(
        stdout(&out),
        "CapInh:\t0000000000000000\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n\
         0 1 2 \n0\nproc-sys-ro\ncgroup-ro\n",
        "{}",
        stderr(&out)
    );
    // A non-root user has no effective capabilities.
    let out = state.run(&["run", "-u", "app", &busybox(), "--", "grep", "CapEff", "/proc/self/status"]);
    assert_eq!(stdout(&out), "CapEff:\t0000000000000000\n");
}

#[test]
fn security_options_relax_the_defaults_as_in_docker() {
    let state = StateDir::new("seccomp");
    let script = "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mounted";
    // Without the filter, CAP_SYS_ADMIN alone decides.
    let out =
        state.run(&["run", "--security-opt", "seccomp=unconfined", &busybox(), "--", "sh", "-c", script]);
    assert_eq!(stdout(&out), "", "{}", stderr(&out));
    let out = state.run(&[
        "run",
        "--cap-add",
        "SYS_ADMIN",
        "--security-opt",
        "seccomp=unconfined",
        &busybox(),
        "--",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(stdout(&out), "mounted\n", "{}", stderr(&out));
    let out = state.run(&[
        "run",
        "--privileged",
        &busybox(),
        "--",
        "sh",
        "-c",
        "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; ls /sys/firmware | wc -l; test -c /dev/kmsg && echo kmsg",
    ]);
    assert!(stdout(&out).starts_with("NoNewPrivs:\t0\nSeccomp:\t0\n"), "{}", stdout(&out));
    // And the host's devices, as Docker gives them (none of them without it).
    assert!(stdout(&out).ends_with("kmsg\n"), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(code(&state.run(&["run", "--rm", &busybox(), "--", "test", "-e", "/dev/kmsg"])), 1);
    let out = state.run(&[
        "run",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "net_admin",
        &busybox(),
        "--",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert_eq!(stdout(&out), "CapEff:\t0000000000001000\n");
}

#[test]
fn mounts_inside_do_not_reach_the_host() {
    use std::io::{BufRead, BufReader};
    let state = StateDir::new("propagation");
    let script = "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mounted && sleep 5";
    let mut child =
        state.spawner(&["run", "--privileged", &busybox(), "--", "sh", "-c", script]).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "mounted\n");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    // Stopped the way a user would (SIGTERM, relayed), so that spawner removes its cgroup; a SIGKILL
    // would leave it for a next run on this state dir, which this test does not make.
    send(&child, 15);
    wait_or_kill(child, Duration::from_secs(20));
    assert!(!mountinfo.contains(state.0.to_str().unwrap()), "a container mount shows on the host");
}

#[test]
fn working_directory_through_a_file_descriptor_is_refused() {
    let state = StateDir::new("fdcwd");
    for dir in ["/proc/self/fd/3", "/proc/1/fd/5", "/proc/thread-self/fd/4/x"] {
        let out = state.run(&["run", "-w", dir, &busybox(), "--", "pwd"]);
        assert_eq!(code(&out), 125, "{dir}");
        assert!(stderr(&out).contains("is not allowed"), "{dir}: {}", stderr(&out));
    }
}

#[test]
fn without_tty_the_container_has_no_controlling_terminal() {
    // Run spawner itself on a terminal: the container must not share it (TIOCSTI, CVE-2017-5226).
    let state = StateDir::new("notty");
    let cmd =
        state.spawner(&["run", &busybox(), "--", "sh", "-c", "echo tty_nr=$(cut -d' ' -f7 /proc/1/stat)"]);
    let (child, mut master) = spawn_on_terminal(cmd, None);
    let seen = read_until(&mut master, "tty_nr=");
    let seen = seen + &read_until(&mut master, "\n");
    wait_or_kill(child, Duration::from_secs(20));
    assert!(seen.contains("tty_nr=0"), "{seen:?}");
}

#[test]
fn a_killed_spawner_takes_its_container_along_and_the_next_run_cleans_up() {
    use std::io::{BufRead, BufReader};
    let state = StateDir::new("crash");
    let mut child = state
        .spawner(&["-v", "run", "--rm", &busybox(), "--", "sh", "-c", "echo $$ started; exec sleep 100"])
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "2 started\n");
    // The container's init is spawner's only child: the sleep runs under it.
    let init = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap();
    let init: u32 = init.split_whitespace().next().unwrap().parse().unwrap();
    let sleep = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).unwrap();
    let sleep: u32 = sleep.split_whitespace().next().unwrap().parse().unwrap();
    child.kill().unwrap(); // SIGKILL: no cleanup by spawner itself.
    child.wait().unwrap();
    let gone = |pid: u32| {
        (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
        })
    };
    assert!(gone(sleep) && gone(init), "the container outlived its spawner");
    let left: Vec<_> =
        std::fs::read_dir(state.0.join("containers")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(left.len(), 1, "the dead run's directory is there to clean: {left:?}");
    let out = state.run(&["-v", "run", "--rm", &busybox(), "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("left by a spawner that died"), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(state.0.join("containers")).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
    let cgroups: Vec<_> = own_memory_cgroup()
        .and_then(|d| std::fs::read_dir(d).ok())
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    // `[INFO ] cgroup ["/sys/fs/cgroup/memory/…/spawner-<state hash>-<id>"] (V1)`
    let err = stderr(&out);
    let line = err.lines().find(|l| l.contains("] cgroup [")).expect("the cgroup line");
    let name = line.split('"').nth(1).unwrap().rsplit('/').next().unwrap();
    let state_prefix = &name[..name.rfind('-').unwrap() + 1];
    assert_eq!(state_prefix.len(), "spawner-01234567-".len(), "{state_prefix}");
    assert!(!cgroups.iter().any(|c| c.starts_with(state_prefix)), "stale cgroups: {cgroups:?}");
}

#[test]
fn kept_and_named_containers_stay_and_names_are_checked() {
    let state = StateDir::new("named");
    let out = state.run(&["run", "--name", "web-1", &busybox(), "--", "sh", "-c", "echo data > /kept"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(state.0.join("containers/web-1/upper/kept")).unwrap(), "data\n");
    let out = state.run(&["run", "--name", "web-1", &busybox(), "--", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));
    // Another run does not take a kept container for a dead one.
    assert_eq!(code(&state.run(&["run", &busybox(), "--", "true"])), 0);
    assert!(state.0.join("containers/web-1/upper/kept").exists());
    let out = state.run(&["run", "--name", "../escape", &busybox(), "--", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("invalid container name"), "{}", stderr(&out));
}

/// A real distribution: Debian bookworm from debootstrap, imported and saved by podman
/// (`cargo xtask images --debian`).
#[test]
fn a_debian_userland_works() {
    let state = StateDir::new("debian");
    let debian = image("debian.tar").display().to_string();
    let script = "set -e; . /etc/os-release; echo $ID $VERSION_CODENAME; pwd; echo $LANG; apt-get --version | head -1 | cut -d' ' -f1; \
                  useradd -m -s /bin/bash bob; su bob -c 'id -un; cd; pwd'; dpkg-query -W -f='${Status}\\n' coreutils; \
                  readlink /var/run";
    let out = state.run(&["run", &debian, "--", "bash", "-c", script]);
    assert_eq!(
        stdout(&out),
        "debian bookworm\n/root\nC.UTF-8\napt\nbob\n/home/bob\ninstall ok installed\n/run\n",
        "{}",
        stderr(&out)
    );
    // The image's Cmd (bash) and WorkingDir, as another user: runc's rule lets nobody start in /root.
    let out = state.run(&["run", "-u", "nobody", &debian, "--", "sh", "-c", "id; pwd"]);
    assert_eq!(
        stdout(&out),
        "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n/root\n",
        "{}",
        stderr(&out)
    );
    let out = state.run(&["run", &debian]);
    assert_eq!(code(&out), 0, "bash on an empty stdin exits 0: {}", stderr(&out));
}

#[test]
fn symlinked_mount_targets_stay_inside_the_container() {
    let state = StateDir::new("symlinks");
    let host = state.0.join("host-data");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("file"), "host file\n").unwrap();
    let outside = ["/tmp/spawner-escape-data", "/tmp/spawner-escape-data2", "/tmp/spawner-escape-hostname"];
    for p in outside {
        let _ = std::fs::remove_dir_all(p);
        let _ = std::fs::remove_file(p);
    }
    let img = image("symlinks.tar").display().to_string();
    let (v1, v2) = (format!("{}:/data", host.display()), format!("{}:/data2/sub", host.display()));
    let out = state.run(&[
        "run", "-v", &v1, "-v", &v2, &img, "--", "sh", "-c",
        "cat /data/file /data2/sub/file /tmp/spawner-escape-data/file; ls /proc/self/exe >/dev/null && echo proc-ok; cat /etc/hostname | wc -c",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The binds landed where the links lead inside the rootfs; /proc and /etc/hostname are spawner's.
    assert_eq!(stdout(&out), "host file\nhost file\nhost file\nproc-ok\n13\n", "{}", stderr(&out));
    for p in outside {
        assert!(!std::path::Path::new(p).exists(), "{p} was created on the host");
    }
}

#[test]
fn init_cannot_be_seen_or_written_from_inside() {
    // Even with every capability: init runs from a sealed memfd, in no file system of the container.
    let state = StateDir::new("sealed");
    let out = state.run(&[
        "run", "--privileged", &busybox(), "--", "sh", "-c",
        "readlink /proc/1/exe; echo x > /proc/1/exe || echo refused; dd if=/dev/zero of=/proc/1/exe bs=1 count=1 conv=notrunc 2>/dev/null || echo refused",
    ]);
    assert_eq!(stdout(&out), "/memfd:spawner-init (deleted)\nrefused\nrefused\n", "{}", stderr(&out));
}

#[test]
fn memory_limits_are_applied_and_visible_inside() {
    // The container's cgroup namespace makes its own cgroup the root of what it sees.
    let state = StateDir::new("limits");
    let script = "grep memory /proc/self/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes";
    let out =
        state.run(&["run", "--memory", "32m", "--memory-swap", "64m", &busybox(), "--", "sh", "-c", script]);
    let on_v1 = own_memory_cgroup().is_some_and(|d| d.starts_with("/sys/fs/cgroup/memory"));
    if on_v1 {
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with(":memory:/"), "the container's own cgroup is its root: {text}");
        assert_eq!(lines[1..], ["33554432", "67108864"], "{}", stderr(&out));
    }
    // Limits this host cannot apply are refused up front, naming why (a memory limit below Docker's 6 MiB minimum).
    let out = state.run(&["run", "--memory", "1k", &busybox(), "--", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).starts_with("spawner: "), "{}", stderr(&out));
}

/// `load -i` unpacks an archive's images and names them in the store: they run by name, with no
/// archive and no registry; an archive that cannot be named (legacy, no diff_ids) is refused.
#[test]
fn load_then_run_by_name() {
    let state = StateDir::new("load");
    let out = state.run(&["load", "-i", image("multi.tar").to_str().unwrap()]);
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (
            0,
            "Loaded image: docker.io/library/busybox:latest\nLoaded image: docker.io/library/busybox:other\n"
        ),
        "{}",
        stderr(&out)
    );
    let out = state.run(&["run", "--pull", "never", "busybox:other", "--", "sh", "-c", "echo by name"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "by name\n"), "{}", stderr(&out));
    // An OCI ref.name that is a tag alone: not a name beside containerd's full one; alone, the
    // name podman gives it.
    for (file, loaded) in [
        ("busybox-oci-zstd.tar", "docker.io/library/busybox:latest"),
        ("busybox-skopeo-oci.tar", "localhost/latest:latest"),
    ] {
        let out = StateDir::new("load-oci").run(&["load", "-i", image(file).to_str().unwrap()]);
        assert_eq!(stdout(&out), format!("Loaded image: {loaded}\n"), "{file}: {}", stderr(&out));
    }
    let legacy = image("busybox-legacy-nomanifest.tar");
    let out = StateDir::new("load-legacy").run(&["load", "-i", legacy.to_str().unwrap()]);
    assert_eq!(
        (code(&out), stderr(&out)),
        (
            125,
            format!(
                "spawner: {}: a legacy archive (no diff_ids in its config) runs as a file, but cannot be loaded\n",
                legacy.display()
            )
        )
    );
}

/// A short name finds podman's `localhost/` image, an image ID prefix finds its image, as
/// `podman run` and `docker run` find them; both work for `rmi` too.
#[test]
fn short_names_and_image_ids_find_stored_images() {
    let state = StateDir::new("short-names");
    let out = state.run(&["load", "-i", image("busybox-podman.tar").to_str().unwrap()]);
    assert_eq!(stdout(&out), "Loaded image: localhost/busybox:latest\n", "{}", stderr(&out));
    let run = |name: &str| state.run(&["run", "--rm", "--pull", "never", name, "echo", "found"]);
    for name in ["busybox", "busybox:latest", "localhost/busybox"] {
        let out = run(name);
        assert_eq!((code(&out), stdout(&out).as_str()), (0, "found\n"), "{name}: {}", stderr(&out));
    }
    let id = stdout(&state.run(&["images", "-q"])).trim().to_string();
    assert_eq!(id.len(), 12, "{id}");
    for prefix in [&id[..6], &format!("sha256:{id}")] {
        let out = run(prefix);
        assert_eq!((code(&out), stdout(&out).as_str()), (0, "found\n"), "{prefix}: {}", stderr(&out));
    }
    let out = run("busybox:1.36");
    assert_eq!(
        (code(&out), stderr(&out).as_str()),
        (125, "spawner: docker.io/library/busybox:1.36: not in the store, and --pull never forbids pulling it\n")
    );
    let out = state.run(&["rmi", &id[..8]]);
    assert_eq!((code(&out), stdout(&out).lines().next()), (0, Some("Untagged: localhost/busybox:latest")));
    assert_eq!(stdout(&state.run(&["images", "-q"])), "", "no image left");
    state.run(&["load", "-i", image("busybox-podman.tar").to_str().unwrap()]);
    let out = state.run(&["rmi", "busybox"]);
    assert_eq!((code(&out), stdout(&out).lines().next()), (0, Some("Untagged: localhost/busybox:latest")));
}

/// A loaded image is saved with the very layers it came with, made again from the unpacked trees
/// and their tar-splits: the archive loads elsewhere under the same image ID (the load checks
/// every diff_id). A tree changed since is refused, never saved as the same digest.
#[test]
fn loaded_images_are_saved_byte_for_byte() {
    let state = StateDir::new("save-loaded");
    state.run(&["load", "-i", image("busybox-docker.tar").to_str().unwrap()]);
    let id = stdout(&state.run(&["images", "-q"]));
    let saved = state.0.join("saved.tar");
    let out = state.run(&["save", "-o", saved.to_str().unwrap(), "busybox"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let other = StateDir::new("save-loaded-again");
    let out = other.run(&["load", "-i", saved.to_str().unwrap()]);
    assert_eq!(stdout(&out), "Loaded image: docker.io/library/busybox:latest\n", "{}", stderr(&out));
    assert_eq!(stdout(&other.run(&["images", "-q"])), id, "the same image");
    let out = other.run(&["run", "--rm", "--pull", "never", "busybox", "echo", "saved"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "saved\n"), "{}", stderr(&out));
    // A file of a layer changed in the store: the layer made again is not the one loaded.
    let passwd = std::fs::read_dir(state.0.join("store/layers/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path().join("diff/etc/passwd"))
        .find(|p| p.exists())
        .expect("a layer with /etc/passwd");
    let mut bytes = std::fs::read(&passwd).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&passwd, bytes).unwrap();
    let again = state.0.join("again.tar");
    let out = state.run(&["save", "-o", again.to_str().unwrap(), "busybox"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("its files changed since it was unpacked"), "{}", stderr(&out));
    assert!(!again.exists(), "nothing written");
}

/// Archives named with skopeo's transports run as the file they name; a name that is neither a
/// file nor a path is a registry reference.
#[test]
fn archive_transports_on_the_command_line() {
    let state = StateDir::new("transports");
    for (transport, file) in [
        ("docker-archive:", "busybox-docker.tar"),
        ("oci-archive:", "busybox-oci-gzip.tar"),
        ("oci:", "busybox-oci-gzip.tar"),
    ] {
        let spec = format!("{transport}{}", image(file).display());
        let out = state.run(&["run", &spec, "--", "sh", "-c", "echo ran"]);
        assert_eq!((code(&out), stdout(&out).as_str()), (0, "ran\n"), "{spec}: {}", stderr(&out));
    }
    let out = state.run(&["run", "./no-such-archive.tar", "--", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("no-such-archive.tar"), "a missing file is named: {}", stderr(&out));
    let out = state.run(&["run", "--pull", "never", "no-such-image:1", "--", "true"]);
    assert_eq!(
        stderr(&out),
        "spawner: docker.io/library/no-such-image:1: not in the store, and --pull never forbids pulling it\n"
    );
}
