//! What an attacker inside a container would try, one syscall at a time: the integration tests and
//! the VM test run this static binary in containers (bound in read-only) and read one line per
//! probe, `NAME: ok` or `NAME: ERRNO`, so that a test says exactly which defence held. A probe the
//! seccomp filter kills does not print; its caller sees the SIGSYS.

use std::ffi::CString;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: probe NAME [ARG...] [-- NAME [ARG...]]...");
        std::process::exit(2);
    }
    for probe in args.split(|a| a == "--") {
        let (name, rest) = probe.split_first().expect("a probe name");
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        let result = run(name, &rest);
        println!("{name}: {}", result.map_or_else(|e| e, |()| "ok".to_string()));
    }
}

type Outcome = Result<(), String>;

fn errno() -> String {
    errno_name(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

fn errno_name(code: i32) -> String {
    let name = match code {
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::ENOSYS => "ENOSYS",
        libc::EINVAL => "EINVAL",
        libc::ENOENT => "ENOENT",
        libc::EROFS => "EROFS",
        libc::ENXIO => "ENXIO",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ENODEV => "ENODEV",
        _ => return format!("errno {code}"),
    };
    name.to_string()
}

/// A raw syscall's result in a forked child: ok, or the errno.
fn raw(ret: libc::c_long) -> Result<(), i32> {
    if ret < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(255))
    } else {
        Ok(())
    }
}

/// The result of a raw syscall: ok, or the errno's name.
fn check(ret: libc::c_long) -> Outcome {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// Runs `f` in a forked child and reports how it ended (the child's errno comes back as its exit
/// code): a syscall under test that changes its caller (a new namespace, tracing) never changes
/// this process.
fn in_child(f: impl FnOnce() -> Result<(), i32>) -> Outcome {
    // SAFETY: the probe is single-threaded; the child only makes syscalls and exits.
    match unsafe { libc::fork() } {
        -1 => Err(errno()),
        0 => {
            let code = match f() {
                Ok(()) => 0,
                Err(errno) => errno,
            };
            // SAFETY: ends the child without running the parent's atexit handlers twice.
            unsafe { libc::_exit(code) }
        }
        pid => {
            let mut status = 0;
            // SAFETY: `status` is a valid out-pointer; `pid` is our child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            if libc::WIFSIGNALED(status) {
                Err(format!("killed by signal {}", libc::WTERMSIG(status)))
            } else if libc::WEXITSTATUS(status) == 0 {
                Ok(())
            } else {
                Err(errno_name(libc::WEXITSTATUS(status)))
            }
        }
    }
}

fn run(name: &str, args: &[&str]) -> Outcome {
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    // SAFETY (every raw syscall below): the arguments are plain integers or pointers to live,
    // correctly sized buffers of the kind the syscall expects.
    unsafe {
        match name {
            // A new user namespace: every capability inside it, the way to nf_tables and friends.
            "clone-newuser" => {
                let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_long;
                let pid = libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0);
                if pid == 0 {
                    libc::_exit(0);
                }
                check(pid)?;
                libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
                Ok(())
            }
            "clone3-newuser" => {
                #[repr(C)]
                #[derive(Default)]
                struct CloneArgs {
                    flags: u64,
                    pidfd: u64,
                    child_tid: u64,
                    parent_tid: u64,
                    exit_signal: u64,
                    stack: u64,
                    stack_size: u64,
                    tls: u64,
                }
                let args = CloneArgs {
                    flags: libc::CLONE_NEWUSER as u64,
                    exit_signal: libc::SIGCHLD as u64,
                    ..Default::default()
                };
                let pid = libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, size_of::<CloneArgs>());
                if pid == 0 {
                    libc::_exit(0);
                }
                check(pid)?;
                libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
                Ok(())
            }
            "unshare-newuser" => in_child(|| raw(libc::unshare(libc::CLONE_NEWUSER) as libc::c_long)),
            // A plain fork must keep working under the filter (clone without namespace flags).
            "fork" => in_child(|| Ok(())),
            "io_uring_setup" => {
                let mut params = [0u8; 120];
                let fd = libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr());
                check(fd)
            }
            "socket-vsock" => check(libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) as libc::c_long),
            "socket-inet" => check(libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) as libc::c_long),
            "personality" => {
                let persona = u64::from_str_radix(arg(0).trim_start_matches("0x"), 16).expect("hex persona");
                check(libc::syscall(libc::SYS_personality, persona))
            }
            "ptrace-traceme" => in_child(|| raw(libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0))),
            "keyctl" => check(libc::syscall(libc::SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0)),
            // An x32 syscall: the x32 bit on the native number (getpid).
            #[cfg(target_arch = "x86_64")]
            "x32-getpid" => check(libc::syscall(0x4000_0000 | libc::SYS_getpid)),
            #[cfg(target_arch = "x86_64")]
            "x32-unshare-newuser" => {
                in_child(|| raw(libc::syscall(0x4000_0000 | libc::SYS_unshare, libc::CLONE_NEWUSER)))
            }
            // Opens PATH for reading (r), writing (w) or both (rw), and reads or writes a byte.
            "open" => {
                let path = CString::new(arg(0)).expect("a path");
                let (flags, read, write) = match arg(1) {
                    "w" => (libc::O_WRONLY, false, true),
                    "rw" => (libc::O_RDWR, true, true),
                    _ => (libc::O_RDONLY, true, false),
                };
                let fd = libc::open(path.as_ptr(), flags | libc::O_CLOEXEC);
                check(fd as libc::c_long)?;
                let mut byte = [0u8];
                if read {
                    check(libc::read(fd, byte.as_mut_ptr().cast(), 1) as libc::c_long)?;
                }
                if write {
                    check(libc::pwrite(fd, byte.as_ptr().cast(), 1, 0) as libc::c_long)?;
                }
                libc::close(fd);
                Ok(())
            }
            "mknod-char" | "mknod-block" => {
                let path = CString::new(arg(0)).expect("a path");
                let kind = if name == "mknod-char" { libc::S_IFCHR } else { libc::S_IFBLK };
                let (major, minor): (u32, u32) =
                    (arg(1).parse().expect("major"), arg(2).parse().expect("minor"));
                check(libc::mknod(path.as_ptr(), kind | 0o600, libc::makedev(major, minor)) as libc::c_long)
            }
            // The ids this process runs with, for the setuid checks: `uid=R euid=E`.
            "ids" => {
                println!("uid={} euid={}", libc::getuid(), libc::geteuid());
                Ok(())
            }
            // A TCP SYN to 127.0.0.1:PORT sent as a raw frame to the gateway's MAC (CAP_NET_RAW is
            // in Docker's default set): `ok` when the host answered with a SYN-ACK, i.e. a host
            // service bound to loopback was reached from the container.
            "syn-to-host-loopback" => spoof_syn(arg(0), arg(1).parse().expect("a port")),
            other => Err(format!("unknown probe {other:?}")),
        }
    }
}

/// `syn-to-host-loopback OWN_IP PORT`: see `run`.
fn spoof_syn(own: &str, port: u16) -> Outcome {
    let own: std::net::Ipv4Addr = own.parse().map_err(|_| "OWN_IP".to_string())?;
    let mac = |text: &str| -> Option<[u8; 6]> {
        let bytes: Vec<u8> = text.trim().split(':').filter_map(|b| u8::from_str_radix(b, 16).ok()).collect();
        bytes.try_into().ok()
    };
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"));
    let src_mac = mac(&read("/sys/class/net/eth0/address")?).ok_or("eth0's MAC")?;
    let ifindex: i32 = read("/sys/class/net/eth0/ifindex")?.trim().parse().map_err(|_| "ifindex")?;
    // The gateway's MAC from the neighbour table (the caller pinged it).
    let arp = read("/proc/net/arp")?;
    let gw_mac = arp
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0].ends_with(".1"))
        .and_then(|f| mac(f[3]))
        .ok_or("no gateway in /proc/net/arp")?;
    let checksum = |data: &[u8], mut sum: u32| -> u16 {
        for pair in data.chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    };
    let dst = std::net::Ipv4Addr::LOCALHOST;
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&40123u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&port.to_be_bytes());
    tcp[4..8].copy_from_slice(&1u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&own.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 6, 0, 20]);
    let sum = pseudo.chunks(2).map(|p| u32::from(u16::from_be_bytes([p[0], p[1]]))).sum();
    let c = checksum(&tcp, sum);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&own.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut frame = Vec::new();
    frame.extend_from_slice(&gw_mac);
    frame.extend_from_slice(&src_mac);
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&tcp);
    // SAFETY: a packet socket, a sockaddr_ll for eth0, and buffers that live through each call.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, (libc::ETH_P_IP as u16).to_be() as i32);
        if fd < 0 {
            return Err(errno());
        }
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_IP as u16).to_be();
        addr.sll_ifindex = ifindex;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&gw_mac);
        let len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        if libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len) < 0 {
            return Err(errno());
        }
        let timeout = libc::timeval { tv_sec: 0, tv_usec: 200_000 };
        let tv = &timeout as *const _ as *const libc::c_void;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            tv,
            std::mem::size_of::<libc::timeval>() as u32,
        );
        let sent = libc::sendto(
            fd,
            frame.as_ptr().cast(),
            frame.len(),
            0,
            &addr as *const _ as *const libc::sockaddr,
            len,
        );
        if sent < 0 {
            return Err(errno());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut buf = [0u8; 2048];
        while std::time::Instant::now() < deadline {
            let n = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
            if n < 54 {
                continue;
            }
            let (ip, tcp) = (&buf[14..34], &buf[34..54]);
            let from_host_loopback = ip[9] == 6 && ip[12..16] == dst.octets() && ip[16..20] == own.octets();
            if from_host_loopback && tcp[0..2] == port.to_be_bytes() {
                return match tcp[13] & 0x12 {
                    0x12 => Ok(()),
                    _ => Err("answered without SYN-ACK".into()),
                };
            }
        }
        Err("no answer".into())
    }
}
