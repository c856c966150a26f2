//! `-t`: the container's terminal.
//!
//! The pseudo-terminal is made *inside* the container, from its own `devpts` instance, so the
//! workload's `/proc/self/fd/0` is `/dev/pts/0` of the container and nothing of the host's
//! `devpts` is visible. The workload makes the slave its controlling terminal and sends the
//! master to rsafe over the sync channel; rsafe puts the host terminal in raw mode and copies
//! bytes both ways, and passes window size changes on. The host terminal's settings are
//! restored when rsafe is done, whatever the exit path (a guard's `Drop`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sys::termios::{self, SetArg, Termios};

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WinSize {
    pub rows: u16,
    pub cols: u16,
}

/// The size of the terminal `fd`, if it is one.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<WinSize> {
    // SAFETY: `winsize` is plain old data; all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a `struct winsize` through the valid pointer.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (ret == 0 && ws.ws_row > 0).then_some(WinSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// Sets the size of the terminal `fd` (the kernel signals SIGWINCH to its foreground group).
pub fn set_window_size(fd: BorrowedFd<'_>, size: WinSize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `struct winsize` through the valid pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A new pseudo-terminal from the container's `/dev/ptmx`: `(master, slave)`.
pub fn open_pty(size: Option<WinSize>) -> io::Result<(OwnedFd, OwnedFd)> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let name = nix::pty::ptsname_r(&master)?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    if let Some(size) = size {
        set_window_size(slave.as_fd(), size)?;
    }
    Ok((OwnedFd::from(master), slave))
}

/// Makes `slave` the controlling terminal of this (session leader) process and its stdio.
pub fn attach_stdio(slave: &OwnedFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal from another session).
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns by convention;
        // no Rust object owns 0-2 as an `OwnedFd`.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The host terminal (rsafe's stdin) in raw mode, restored on drop.
pub struct RawMode {
    fd: BorrowedFd<'static>,
    saved: Termios,
}

impl RawMode {
    /// Puts stdin in raw mode if it is a terminal; `None` if it is not.
    pub fn enter() -> io::Result<Option<RawMode>> {
        // SAFETY: descriptor 0 stays open for the whole life of the process.
        let fd = unsafe { BorrowedFd::borrow_raw(0) };
        let saved = match termios::tcgetattr(fd) {
            Ok(t) => t,
            Err(nix::errno::Errno::ENOTTY) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw)?;
        Ok(Some(RawMode { fd, saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
    }
}
