//! `-t`: the container gets a pseudo-terminal from its own devpts instance (so `tty` inside names
//! /dev/pts/0, as with Docker). The container's first process opens it and passes the master to
//! spawner over a socket; spawner puts its own terminal in raw mode (restored on every way out),
//! copies bytes both ways, and passes window-size changes on.

use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcgetattr, tcgetwinsize, tcsetattr, tcsetwinsize, OptionalActions, Termios};

/// The socket pair over which the pty master travels: (spawner's end, the container's end).
pub fn socket_pair() -> Result<(OwnedFd, OwnedFd), String> {
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
        .map_err(|e| format!("socketpair: {e}"))
}

/// In the container (after pivot_root): opens a pty from /dev/ptmx, makes the slave the controlling
/// terminal and stdio of this process (already a session leader), and sends the master to spawner.
/// The container's first process (`console`) also gets it bound over /dev/console; an exec'd one
/// does not.
pub fn attach_in_container(socket: &OwnedFd, size: Option<(u16, u16)>, console: bool) -> Result<(), String> {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
        .map_err(|e| format!("open /dev/ptmx: {e}"))?;
    if let Some((rows, cols)) = size {
        let size = rustix::termios::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        tcsetwinsize(&master, size).map_err(|e| format!("set the console size: {e}"))?;
    }
    grantpt(&master).map_err(|e| format!("grantpt: {e}"))?;
    unlockpt(&master).map_err(|e| format!("unlockpt: {e}"))?;
    let name = ptsname(&master, Vec::new()).map_err(|e| format!("ptsname: {e}"))?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("open {}: {e}", name.to_string_lossy()))?;
    rustix::process::ioctl_tiocsctty(&slave).map_err(|e| format!("TIOCSCTTY: {e}"))?;
    if console {
        super::rootfs::bind_console(rustix::fd::AsFd::as_fd(&slave)).map_err(|e| e.to_string())?;
    }
    for fd in 0..3 {
        // SAFETY: fds 0-2 are this process's stdio, replaced before anything else uses them.
        let mut target = unsafe { <OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(fd) };
        let dup = rustix::io::dup2(&slave, &mut target);
        std::mem::forget(target);
        dup.map_err(|e| format!("dup2 pty to fd {fd}: {e}"))?;
    }
    use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let fds = [rustix::fd::AsFd::as_fd(&master)];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    sendmsg(socket, &[std::io::IoSlice::new(b"m")], &mut control, SendFlags::empty())
        .map_err(|e| format!("send pty master: {e}"))?;
    Ok(())
}

/// In spawner: the master the container sent, or None when it closed the socket without one (its
/// setup failed, and the error pipe says why).
pub fn receive_master(socket: &OwnedFd) -> Result<Option<OwnedFd>, String> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut byte = [0u8];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    recvmsg(socket, &mut [std::io::IoSliceMut::new(&mut byte)], &mut control, RecvFlags::CMSG_CLOEXEC)
        .map_err(|e| format!("receive pty master: {e}"))?;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            if let Some(fd) = fds.next() {
                return Ok(Some(fd));
            }
        }
    }
    Ok(None)
}

/// Copies the window size of spawner's terminal (stdin) to the container's.
pub fn sync_window_size(master: BorrowedFd<'_>) {
    if let Ok(size) = tcgetwinsize(rustix::stdio::stdin()) {
        let _ = tcsetwinsize(master, size);
    }
}

/// spawner's own terminal in raw mode while the container has it; restored when dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// None when stdin is not a terminal (nothing to change).
    pub fn enter() -> Option<RawMode> {
        let stdin = rustix::stdio::stdin();
        let saved = tcgetattr(stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(stdin, OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Moves what is readable from `from` to `to`; false at EOF or error (that side is done).
pub fn pump(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8192];
    match rustix::io::read(from, &mut buf) {
        Ok(0) => false,
        Ok(n) => write_all(to, &buf[..n]),
        Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => true,
        Err(_) => false,
    }
}

/// Writes all of `bytes` to `to` (waiting while it is a full non-blocking pipe or terminal);
/// false if it cannot take them (closed, EPIPE).
pub fn write_all(to: BorrowedFd<'_>, bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while !rest.is_empty() {
        match rustix::io::write(to, rest) {
            Ok(w) => rest = &rest[w..],
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                let mut fds = [rustix::event::PollFd::new(&to, rustix::event::PollFlags::OUT)];
                let _ = rustix::event::poll(&mut fds, None);
            }
            Err(_) => return false,
        }
    }
    true
}
