//! Docker's commands around running containers, beyond the lifecycle itself: `top`, `port`,
//! `rename`, `container prune`/`ls`, `logs --since/--until`, json-file log rotation (`--log-opt`),
//! `system df` and `cp` (with the symlink attacks a container can try on it). Each test has a
//! state directory of its own; whatever it leaves running is removed with `rm -f` when it ends.

use integration_tests::*;
use std::process::Stdio;
use std::time::Duration;

const BUSYBOX: &str = "busybox-docker.tar";

fn busybox() -> String {
    image(BUSYBOX).display().to_string()
}

/// The PID namespace of a host process.
fn pid_ns(pid: &str) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap_or_default()
}

#[test]
fn top_lists_the_containers_processes_as_ps_shows_them() {
    let c = Containers::new("lm-top");
    c.detach("box", &[], &["sh", "-c", "sleep 4711 & exec sleep 4712"]);
    let init = c.inspect("box", "{{.State.Pid}}");
    c.until("both sleeps", || c.ok(&["top", "box"]).contains("sleep 4711"));
    let top = c.ok(&["top", "box"]);
    let mut lines = top.lines();
    let header = lines.next().unwrap();
    let titles: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(titles, ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "{top}");
    assert!(header.starts_with(&format!("{:<20}PID", "UID")), "Docker's columns, 20 wide: {top}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    // Its init (the recorded pid), the two sleeps, nothing of the host's.
    assert_eq!(rows.len(), 3, "{top}");
    assert!(rows.iter().any(|r| r[1] == init && r[7] == "init"), "{top}");
    assert!(rows.iter().any(|r| r[7..] == ["sleep", "4711"]), "{top}");
    assert!(rows.iter().any(|r| r[7..] == ["sleep", "4712"]), "{top}");
    for row in &rows {
        assert_eq!(pid_ns(row[1]), pid_ns(&init), "{} is not the container's: {top}", row[1]);
    }
    // ps options, as Docker passes them.
    let custom = c.ok(&["top", "box", "-o", "pid,comm"]);
    assert_eq!(custom.lines().next().unwrap().split_whitespace().collect::<Vec<_>>(), ["PID", "COMMAND"]);
    assert_eq!(custom.lines().count(), 4, "{custom}");
    c.refused(&["top", "box", "-o", "user=PID"], "is not allowed");
    c.refused(&["top", "box", "-o", "comm"], "Couldn't find PID field");
    c.ok(&["stop", "-t", "0", "box"]);
    c.refused(&["top", "box"], "is not running");
    c.refused(&["top", "nobox"], "No such container: nobox");
}

/// `port` on the bridge: the host ports as bound (one the kernel picked, too), each reaching
/// the container.
#[test]
fn port_prints_the_published_ports_as_bound() {
    assert_own_network_namespace();
    let c = Containers::new("lm-port");
    let img = busybox();
    let web = "mkdir /w && echo hello > /w/index.html && exec httpd -f -p 80 -h /w";
    let args = ["run", "-d", "--name", "web", "-p", "80", "-p", "127.0.0.1:18081:81/udp"];
    let out = c.run(&[&args[..], &[&img, "sh", "-c", web]].concat());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let all = c.ok(&["port", "web"]);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 2, "{all}");
    let picked = lines[0].strip_prefix("80/tcp -> 0.0.0.0:").unwrap_or_else(|| panic!("{all}"));
    let picked: u16 = picked.parse().unwrap();
    assert_ne!(picked, 0);
    assert_eq!(lines[1], "81/udp -> 127.0.0.1:18081");
    let ps = c.ok(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(ps, format!("0.0.0.0:{picked}->80/tcp, 127.0.0.1:18081->81/udp\n"));
    assert_eq!(c.ok(&["port", "web", "80/tcp"]), format!("0.0.0.0:{picked}\n"));
    assert_eq!(c.ok(&["port", "web", "81/udp"]), "127.0.0.1:18081\n");
    // The port printed is the one that reaches the container.
    c.until("the server", || {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", picked)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = std::io::Write::write_all(&mut s, b"GET /index.html HTTP/1.0\r\n\r\n");
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut answer);
        answer.contains("hello")
    });
    c.refused(&["port", "web", "443"], "No public port '443/tcp' published for web");
    c.refused(&["port", "web", "80/sctp"], "PRIVATE_PORT");
    c.ok(&["stop", "-t", "1", "web"]);
    assert_eq!(c.ok(&["port", "web"]), "", "a stopped container publishes nothing");
}

#[test]
fn rename_renames_stopped_and_running_containers() {
    let c = Containers::new("lm-rename");
    let id = c.detach("old", &[], &["sh", "-c", "echo ran; sleep 100"]);
    c.ok(&["stop", "-t", "0", "old"]);
    c.detach("other", &[], &["true"]);
    c.refused(&["rename", "old", "other"], "already in use");
    c.refused(&["rename", "old", "bad/name"], "invalid container name");
    c.refused(&["rename", "old", "old"], "already named");
    assert_eq!(c.ok(&["rename", "old", "new"]), "");
    c.refused(&["inspect", "old"], "No such container: old");
    assert_eq!(c.inspect("new", "{{.Name}} {{.Id}}"), format!("/new {id}"));
    assert!(c.ok(&["ps", "-a", "--format", "{{.Names}}"]).lines().any(|n| n == "new"));
    // Its run again under the new name (its record's `--name old` is not taken at its word).
    c.ok(&["start", "new"]);
    c.until_eq("the second run", "new", "ran\nran\n", || c.ok(&["logs", "new"]));
    assert_eq!(c.inspect("new", "{{.State.Status}}"), "running");
    assert!(!c.0 .0.join("containers/old").exists());

    // Running: renamed under its run, which follows it (exec, logs, stop, its end recorded).
    assert_eq!(c.ok(&["rename", "new", "newer"]), "");
    assert_eq!(c.ok(&["exec", "newer", "echo", "inside"]), "inside\n");
    assert_eq!(c.ok(&["ps", "--format", "{{.Names}}"]), "newer\n");
    // A dead run's directory makes the next run look through the cgroups: the renamed
    // container's cgroup, still under its old name, is known for a live one and stays.
    std::fs::create_dir(c.0 .0.join("containers/ghost")).unwrap();
    c.ok(&["run", "--rm", "--network", "none", &busybox(), "true"]);
    assert!(!c.0 .0.join("containers/ghost").exists(), "the dead run's directory went");
    assert_eq!(c.inspect("newer", "{{.State.Status}}"), "running", "the renamed one still runs");
    assert_eq!(c.ok(&["exec", "newer", "echo", "still"]), "still\n");
    c.ok(&["stop", "-t", "0", "newer"]);
    assert_eq!(c.inspect("newer", "{{.State.Status}} {{.State.ExitCode}}"), "exited 137");
    assert_eq!(c.ok(&["logs", "newer"]), "ran\nran\n");
    c.ok(&["rm", "newer"]);
    let left: Vec<_> =
        std::fs::read_dir(c.0 .0.join("containers")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left.len(), 1, "only `other` is left: {left:?}");
}

#[test]
fn container_prune_removes_the_stopped_ones_and_ls_lists_like_ps() {
    let c = Containers::new("lm-prune");
    let img = busybox();
    let done = c.detach("done", &[], &["sh", "-c", "head -c 3000 /dev/zero > /blob"]);
    c.ok(&["wait", "done"]);
    assert_eq!(
        code(&c.run(&["run", "--network", "none", "--name", "failed", &img, "sh", "-c", "exit 3"])),
        3
    );
    let failed = c.inspect("failed", "{{.Id}}");
    let live = c.detach("live", &[], &["sleep", "100"]);
    assert_eq!(c.ok(&["container", "ls", "-a"]).lines().count(), 4);
    assert_eq!(c.ok(&["container", "ls", "-q"]), format!("{}\n", &live[..12]));
    // Without -f it asks; anything but y keeps them.
    let ask = |answer: &[u8]| {
        let mut child = c.spawner(&["container", "prune"]).stdin(Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), answer).unwrap();
        drop(child.stdin.take());
        wait_or_kill(child, Duration::from_secs(20))
    };
    let out = ask(b"n\n");
    assert!(
        stdout(&out).starts_with("WARNING! This will remove all stopped containers.\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(c.ok(&["ps", "-aq"]).lines().count(), 3, "kept on no");
    let out = ask(b"y\n");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let after = text.split_once("[y/N] ").unwrap().1;
    let lines: Vec<&str> = after.lines().collect();
    assert_eq!(lines[0], "Deleted Containers:", "{text}");
    let mut deleted = lines[1..3].to_vec();
    deleted.sort();
    let mut want = [done.as_str(), failed.as_str()];
    want.sort();
    assert_eq!(deleted, want, "{text}");
    assert_eq!(lines[3], "");
    assert_eq!(lines[4], "Total reclaimed space: 3kB", "the writable layers' bytes: {text}");
    assert_eq!(c.ok(&["ps", "-aq"]), format!("{}\n", &live[..12]), "the running one stays");
    assert!(!c.0 .0.join("containers/done").exists());
    assert_eq!(c.ok(&["container", "prune", "-f"]), "Total reclaimed space: 0B\n");
}

#[test]
fn logs_since_and_until_select_by_time() {
    let c = Containers::new("lm-since");
    c.detach("talk", &[], &["sh", "-c", "echo one; sleep 1.2; echo two"]);
    c.ok(&["wait", "talk"]);
    let stamped = c.ok(&["logs", "-t", "talk"]);
    let times: Vec<&str> = stamped.lines().map(|l| l.split_once(' ').unwrap().0).collect();
    assert_eq!(times.len(), 2, "{stamped}");
    assert_eq!(c.ok(&["logs", "--since", times[1], "talk"]), "two\n", "since is inclusive");
    assert_eq!(c.ok(&["logs", "--until", times[0], "talk"]), "one\n", "until is inclusive");
    // Between the two, as a date-time without fraction (they are 1.2 s apart).
    let second = &times[1][..19];
    let second_start = format!("{second}Z");
    let expected = if second_start.as_str() <= times[0] { "one\ntwo\n" } else { "two\n" };
    assert_eq!(c.ok(&["logs", "--since", &second_start, "talk"]), expected);
    // Durations before now.
    assert_eq!(c.ok(&["logs", "--since", "1h", "talk"]), "one\ntwo\n");
    assert_eq!(c.ok(&["logs", "--until", "1h", "talk"]), "");
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 3600;
    assert_eq!(c.ok(&["logs", "--since", &unix.to_string(), "talk"]), "one\ntwo\n");
    c.refused(&["logs", "--since", "yesterday", "talk"], "--since");
    c.refused(&["logs", "--until", "2026-13-40", "talk"], "--until");
}

#[test]
fn the_log_rotates_at_max_size_keeping_max_file_files() {
    let c = Containers::new("lm-rotate");
    let script = "i=1; while [ $i -le 300 ]; do echo line $i; i=$((i+1)); done";
    let opts = ["--log-opt", "max-size=2k", "--log-opt", "max-file=3"];
    c.detach("chatty", &opts, &["sh", "-c", script]);
    c.ok(&["wait", "chatty"]);
    let dir = c.0 .0.join("containers/chatty");
    for file in ["json.log", "json.log.1", "json.log.2"] {
        let size = std::fs::metadata(dir.join(file)).map(|m| m.len()).unwrap_or(0);
        assert!(size > 0 && size < 2000 + 200, "{file}: {size} bytes");
    }
    assert!(!dir.join("json.log.3").exists(), "max-file=3 keeps three files");
    // logs reads them oldest first: the last lines, in order, without a gap.
    let logs = c.ok(&["logs", "chatty"]);
    let numbers: Vec<u32> = logs.lines().map(|l| l.strip_prefix("line ").unwrap().parse().unwrap()).collect();
    assert_eq!(*numbers.last().unwrap(), 300);
    assert!(numbers.len() > 40 && numbers.len() < 300, "{} lines kept", numbers.len());
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{logs}");
    assert_eq!(c.ok(&["logs", "--tail", "2", "chatty"]), "line 299\nline 300\n");
    assert_eq!(
        c.inspect("chatty", "{{json .HostConfig.LogConfig}}"),
        r#"{"Config":{"max-file":"3","max-size":"2k"},"Type":"json-file"}"#
    );
    // Without the options the log keeps everything.
    c.detach("whole", &[], &["sh", "-c", script]);
    c.ok(&["wait", "whole"]);
    assert_eq!(c.ok(&["logs", "whole"]).lines().count(), 300);
    let img = busybox();
    for (opt, why) in [
        ("max-size=0", "max-size must be a positive number"),
        ("max-file=0", "max-file cannot be less than 1"),
        ("compress=true", "unknown log opt 'compress'"),
        ("max-size=big", "max-size=big"),
    ] {
        c.refused(&["run", "-d", "--network", "none", "--log-opt", opt, &img, "true"], why);
    }
}

#[test]
fn system_df_shows_images_and_containers_as_docker_does() {
    let c = Containers::new("lm-df");
    let img = busybox();
    let empty = c.ok(&["system", "df"]);
    assert_eq!(
        empty.lines().next().unwrap(),
        "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE",
        "{empty}"
    );
    assert!(empty.contains("\nImages          0         0         0B        0B\n"), "{empty}");
    assert!(empty.contains("\nContainers      0         0         0B        0B\n"), "{empty}");
    c.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "writer",
        &img,
        "sh",
        "-c",
        "head -c 5000 /dev/zero > /blob",
    ]);
    c.detach("idle", &[], &["sleep", "100"]);
    let df = c.ok(&["system", "df"]);
    let row = |name: &str| row_of(&df, name);
    let images = row("Images");
    assert_eq!(&images[..2], ["1", "1"], "one image, used: {df}");
    assert!(images[2] != "0B" && images[3] == "0B" && images[4] == "(0%)", "{df}");
    assert_eq!(row("Containers"), ["2", "1", "5kB", "5kB", "(100%)"], "{df}");
    assert_eq!(row("Local Volumes"), ["0", "0", "0B", "0B"]);
    c.ok(&["rm", "writer"]);
    // Nothing written: no share to give, as Docker prints it.
    assert_eq!(row_of(&c.ok(&["system", "df"]), "Containers"), ["1", "1", "0B", "0B"]);
}

fn row_of(df: &str, name: &str) -> Vec<String> {
    let line = df.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{df}"));
    line[name.len()..].split_whitespace().map(String::from).collect()
}

/// cp in both directions, and a container's symlinks (absolute and `..`-relative, to /etc)
/// never lead cp to the host's files.
#[test]
fn cp_copies_both_ways_and_container_symlinks_stay_inside() {
    let c = Containers::new("lm-cp");
    let setup = "echo inside > /etc/marker && ln -s /etc /evil && ln -s ../../../../../../etc /up \
        && mkdir -p /data/sub && echo deep > /data/sub/file && ln -s /etc/passwd /data/link \
        && touch /ready && exec sleep 100";
    c.detach("box", &["-v", "/vol"], &["sh", "-c", setup]);
    c.until("the setup", || code(&c.run(&["exec", "box", "test", "-e", "/ready"])) == 0);
    let host = c.0 .0.join("host");
    std::fs::create_dir_all(&host).unwrap();
    let at = |p: &str| host.join(p).display().to_string();
    // Out of the container: a file, a file to an existing directory, a directory.
    c.ok(&["cp", "box:/etc/marker", &at("marker")]);
    assert_eq!(std::fs::read_to_string(host.join("marker")).unwrap(), "inside\n");
    std::fs::create_dir(host.join("into")).unwrap();
    c.ok(&["cp", "box:/etc/marker", &at("into")]);
    assert_eq!(std::fs::read_to_string(host.join("into/marker")).unwrap(), "inside\n");
    let out = c.run(&["cp", "box:/data", &at("data")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).starts_with("Successfully copied "), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(host.join("data/sub/file")).unwrap(), "deep\n");
    assert_eq!(std::fs::read_link(host.join("data/link")).unwrap(), std::path::Path::new("/etc/passwd"));
    // Through the container's symlinks to /etc: its /etc.
    let theirs = c.ok(&["exec", "box", "cat", "/etc/passwd"]);
    assert_ne!(theirs, std::fs::read_to_string("/etc/passwd").unwrap(), "the test needs them to differ");
    for (src, name) in [("box:/evil/passwd", "evil"), ("box:/up/passwd", "up"), ("box:evil/passwd", "rel")] {
        c.ok(&["cp", src, &at(name)]);
        assert_eq!(std::fs::read_to_string(host.join(name)).unwrap(), theirs, "{src}");
    }
    // Into the container: a file, a directory's contents; through its symlinks, into its /etc.
    std::fs::write(host.join("payload"), "from the host\n").unwrap();
    let tag = format!("spawner-cp-attack-{}", std::process::id());
    for dest in [format!("box:/evil/{tag}"), format!("box:/up/{tag}-up"), "box:/evil".to_string()] {
        c.ok(&["cp", &at("payload"), &dest]);
    }
    for name in [tag.clone(), format!("{tag}-up"), "payload".to_string()] {
        assert!(!std::path::Path::new("/etc").join(&name).exists(), "the host's /etc/{name} was written");
        assert_eq!(c.ok(&["exec", "box", "cat", &format!("/etc/{name}")]), "from the host\n");
    }
    c.ok(&["cp", &format!("{}/.", at("data")), "box:/copied"]);
    assert_eq!(c.ok(&["exec", "box", "cat", "/copied/sub/file"]), "deep\n");
    // A symlink where a file is written is replaced, never written through.
    let group = c.ok(&["exec", "box", "cat", "/etc/group"]);
    c.ok(&["exec", "box", "ln", "-s", "/etc/group", "/trap"]);
    c.ok(&["cp", &at("payload"), "box:/trap"]);
    assert_eq!(c.ok(&["exec", "box", "cat", "/trap"]), "from the host\n");
    assert_eq!(c.ok(&["exec", "box", "cat", "/etc/group"]), group);
    // Bad input.
    c.refused(&["cp", &at("payload"), &at("other")], "CONTAINER:PATH");
    c.refused(&["cp", "box:/etc/marker", "box:/tmp/x"], "between containers");
    c.refused(&["cp", "box:/nonexistent", &at("x")], "/nonexistent");
    c.refused(&["cp", "box:/data", &at("marker")], "cannot copy a directory to a file");
    // A stopped container: its layers are mounted again for the copy, with the same confinement.
    c.ok(&["stop", "-t", "0", "box"]);
    c.ok(&["cp", "box:/etc/marker", &at("late")]);
    assert_eq!(std::fs::read_to_string(host.join("late")).unwrap(), "inside\n");
    c.ok(&["cp", "box:/up/passwd", &at("late-up")]);
    assert_eq!(std::fs::read_to_string(host.join("late-up")).unwrap(), theirs);
    c.ok(&["cp", &at("payload"), &format!("box:/evil/{tag}-late")]);
    assert!(
        !std::path::Path::new("/etc").join(format!("{tag}-late")).exists(),
        "the host's /etc was written"
    );
    c.ok(&["cp", &format!("box:/etc/{tag}-late"), &at("back")]);
    assert_eq!(std::fs::read_to_string(host.join("back")).unwrap(), "from the host\n");
    c.refused(&["cp", &at("payload"), "box:/vol/x"], "volume of the stopped container box");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(c.0 .0.to_str().unwrap()), "cp left a mount: {mounts}");
}

#[test]
fn unnamed_containers_started_at_once_each_get_a_name_of_their_own() {
    let c = Containers::new("lm-names");
    let img = busybox();
    // Forty at once on an empty store, from 576 plain names: each chooses its name, then waits for
    // the layers. Without the name reserved when chosen, two of them take the same one (and one
    // fails with "in use") far more often than not.
    let runs: Vec<_> =
        (0..40).map(|_| c.spawner(&["run", "--network", "none", &img, "true"]).spawn().unwrap()).collect();
    for run in runs {
        let out = wait_or_kill(run, Duration::from_secs(60));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let names = c.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    assert_eq!(names.len(), 40, "{names:?}");
    assert!(names.iter().all(|n| n.split_once('_').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())));
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 40, "every name is one container's");
    let left: Vec<_> = std::fs::read_dir(c.0 .0.join("containers"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "no reservation is left: {left:?}");
}

/// Attack: a container's recorded pid now belongs to another process (the container died, its pid
/// was reused). `kill`, `stop` and `rm -f` check the process's start time against the record
/// (through a pidfd, so the check and the signal are about one process) and never signal it.
#[test]
fn a_reused_pid_is_never_signalled() {
    let c = Containers::new("lm-reused-pid");
    c.ok(&["run", "--network", "none", "--name", "box", &busybox(), "true"]);
    let mut bystander = std::process::Command::new("sleep").arg("100").spawn().unwrap();
    let state_file = c.0 .0.join("containers/box/state.json");
    let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    state["phase"] = "running".into();
    state["pid"] = bystander.id().into();
    state["start_time"] = 12345.into();
    std::fs::write(&state_file, serde_json::to_vec(&state).unwrap()).unwrap();
    assert!(c.ok(&["ps", "-a"]).lines().any(|l| l.contains("Dead") && l.ends_with("box")));
    c.refused(&["kill", "box"], "is not running");
    let _ = c.run(&["stop", "-t", "0", "box"]);
    c.ok(&["rm", "-f", "box"]);
    let alive = bystander.try_wait().unwrap().is_none();
    let _ = bystander.kill();
    let _ = bystander.wait();
    assert!(alive, "the process that took the container's pid was signalled");
}
