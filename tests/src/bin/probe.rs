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
            other => Err(format!("unknown probe {other:?}")),
        }
    }
}
