//! The few system calls that neither `nix` nor `rustix` wrap safely, behind safe functions.
//!
//! Every `unsafe` block of the runner that is not a one-line libc call sits here, each with the
//! reason it is sound. Also [`openat2`]: rustix's, with the retry the kernel asks for.

use std::ffi::c_void;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::unistd::Pid;

/// The child's stack for [`clone_process`]: the code that runs on it sets up a whole container
/// (mounts, path resolution, error formatting), so it gets what a main thread gets. `mmap` only
/// reserves the address space; pages are allocated as they are touched.
const CHILD_STACK: usize = 8 << 20;
/// The lowest page of the stack is left unmapped, so an overflow faults instead of writing
/// over whatever lies below.
const GUARD_PAGE: usize = 4096;

type ChildMain = Box<dyn FnOnce() -> i32>;

/// Creates a child process in new namespaces (`flags`: `CLONE_NEW*`), like `fork` but with the
/// namespaces applied to the child itself, so that with `CLONE_NEWPID` it is pid 1 of its own
/// pid namespace. The child runs `main` and exits with its return value; it must only ever
/// call async-signal-safe-in-spirit code, which holds because the caller is single-threaded.
pub fn clone_process(flags: libc::c_int, main: ChildMain) -> io::Result<Pid> {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing aliases no
    // Rust object; the result is checked before use.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            CHILD_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let unmap = || {
        // SAFETY: `stack` is the mapping made above, unused by this process once the child has
        // its own copy (or was never created).
        unsafe { libc::munmap(stack, CHILD_STACK) };
    };
    // SAFETY: the lowest page of the fresh mapping becomes a guard page; nothing refers to it.
    if unsafe { libc::mprotect(stack, GUARD_PAGE, libc::PROT_NONE) } < 0 {
        let err = io::Error::last_os_error();
        unmap();
        return Err(err);
    }
    // SAFETY: `stack + CHILD_STACK` is one past the end of the mapping, the initial stack
    // pointer of a downward-growing stack.
    let top = unsafe { stack.cast::<u8>().add(CHILD_STACK) }.cast::<c_void>();

    extern "C" fn trampoline(arg: *mut c_void) -> libc::c_int {
        // SAFETY: `arg` is the `Box<ChildMain>` leaked by `clone_process` below; the child has
        // its own copy of the address space and takes it back exactly once.
        let main = unsafe { Box::from_raw(arg.cast::<ChildMain>()) };
        main()
    }

    let arg = Box::into_raw(Box::new(main));
    // SAFETY: without CLONE_VM the child gets a copy-on-write copy of this single-threaded
    // process, running `trampoline` on its own stack (`top`). The parent keeps the box and
    // frees it below (dropping what the closure captured: those now belong to the child);
    // the child's copy is taken by `trampoline`.
    let ret = unsafe { libc::clone(trampoline, top, flags | libc::SIGCHLD, arg.cast::<c_void>()) };
    let err = io::Error::last_os_error();
    // SAFETY: `arg` came from `Box::into_raw` above and the parent never used it otherwise.
    drop(unsafe { Box::from_raw(arg) });
    unmap();
    if ret < 0 {
        return Err(err);
    }
    Ok(Pid::from_raw(ret))
}

/// Sets attributes (`MOUNT_ATTR_*`) on the mount `tree` (the root of a mount), and with
/// `recursive` on every mount below it. With `userns`, `MOUNT_ATTR_IDMAP` makes it an id-mapped
/// mount: a file owned by id N on disk appears as the host id that N is in `userns` (allowed
/// only on a detached mount from `open_tree(OPEN_TREE_CLONE)`).
pub fn set_mount_attrs(
    tree: BorrowedFd<'_>,
    attrs: u64,
    userns: Option<BorrowedFd<'_>>,
    recursive: bool,
) -> io::Result<()> {
    let flags = if recursive {
        libc::AT_EMPTY_PATH | libc::AT_RECURSIVE
    } else {
        libc::AT_EMPTY_PATH
    };
    let attr = libc::mount_attr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.map_or(0, |fd| fd.as_raw_fd() as u64),
    };
    // SAFETY: `attr` is a valid, initialised `struct mount_attr` that outlives the call, and its
    // size is passed; the path is an empty C string used with AT_EMPTY_PATH on a live fd.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Marks every descriptor from `first` up close-on-exec, so that nothing rsafe (or whoever
/// started it) had open crosses into the workload.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors; it closes
    // nothing that Rust objects own.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Brings the loopback interface of the current network namespace up (a new network namespace
/// starts with `lo` down).
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: a plain socket(2) call; the result is checked and owned right away.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the `ifreq` passed by valid pointer.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Replaces the process image, or returns why it could not.
pub fn execve(
    path: &std::ffi::CStr,
    args: &[std::ffi::CString],
    env: &[std::ffi::CString],
) -> io::Error {
    match nix::unistd::execve(path, args, env) {
        Ok(never) => match never {},
        Err(e) => io::Error::from(e),
    }
}

/// Restores the default disposition of the signals Rust's runtime changes (SIGPIPE is ignored by
/// every Rust program) so the workload starts as any exec'd program would.
pub fn reset_signal_dispositions() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    for sig in [Signal::SIGPIPE, Signal::SIGXFSZ] {
        // SAFETY: installing SIG_DFL runs no Rust code in a signal handler.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
}

/// Closes every descriptor from `first` up. Only for a process about to hold nothing but
/// stdio (the container's init), where no Rust object owns any of them any more.
pub fn close_from(first: u32) -> io::Result<()> {
    // SAFETY: the caller guarantees no live Rust object owns a descriptor >= `first`, so no
    // owner will use or close one of them again.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Points stdin and stdout, and stderr too with `stderr`, at `/dev/null` (of this process's
/// mount namespace: the container's inside it): a process that must not hold its caller's
/// pipes open (conmon and the shim wait for their end-of-file) nor read from them.
pub fn null_stdio(stderr: bool) -> io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    if stderr {
        nix::unistd::dup2_stderr(&null)?;
    }
    Ok(())
}

/// Overwrites what `/proc/<pid>/cmdline` and `/proc/<pid>/environ` show of this process:
/// the command line becomes `title`, the environment empty. rsafe's own command line names host
/// paths, and its environment may hold anything of the host's (tokens included); the
/// container's init is a copy of rsafe, and a hostile image could point a file init reads
/// (`/etc/passwd`) at `/proc/self/environ`. The kernel shows the argument and environment
/// areas at the top of the stack (`arg_start`..`arg_end`, `env_start`..`env_end` in
/// `/proc/self/stat`); they are the process's own memory.
pub fn scrub_process_memory(title: &str) -> io::Result<()> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 2..])
        .ok_or_else(|| io::Error::other("malformed /proc/self/stat"))?;
    // Fields 48-51 of stat; `after` starts at field 3.
    let field = |n: usize| -> io::Result<usize> {
        after
            .split(' ')
            .nth(n - 3)
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| io::Error::other("malformed /proc/self/stat"))
    };
    let (arg_start, arg_end) = (field(48)?, field(49)?);
    let (env_start, env_end) = (field(50)?, field(51)?);
    let bytes = title.as_bytes();
    for (start, end, text) in [(arg_start, arg_end, bytes), (env_start, env_end, &b""[..])] {
        if end <= start {
            continue;
        }
        let len = end - start;
        let n = text.len().min(len - 1);
        // SAFETY: [start, end) is this process's argument or environment area, part of its own
        // writable stack mapping, as the kernel reports it. No Rust reference points into it
        // (the standard library keeps raw argv pointers and copies on use; libc's `environ`
        // points at these strings, which become empty, never dangling). The last byte stays
        // NUL so the kernel reads exactly this area.
        unsafe {
            let area = start as *mut u8;
            std::ptr::write_bytes(area, 0, len);
            std::ptr::copy_nonoverlapping(text.as_ptr(), area, n);
        }
    }
    Ok(())
}

/// The number of threads of this process (`/proc/self/stat` field 20).
pub fn thread_count() -> io::Result<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    stat.rfind(')')
        .and_then(|i| stat[i + 2..].split(' ').nth(17))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| io::Error::other("malformed /proc/self/stat"))
}

/// `openat2(2)`, tried again while the kernel answers EAGAIN. With RESOLVE_IN_ROOT or
/// RESOLVE_BENEATH it does so when a rename or mount anywhere on the host raced the lookup of
/// a `..` ("the caller may choose to retry", openat2(2)): a host where other containers are
/// being set up meets it (`rsafe cp` saw it in CI). A lookup that keeps racing fails after
/// the retries, with EAGAIN.
pub fn openat2<Fd: std::os::fd::AsFd>(
    dir: Fd,
    path: &str,
    flags: rustix::fs::OFlags,
    mode: rustix::fs::Mode,
    resolve: rustix::fs::ResolveFlags,
) -> rustix::io::Result<std::os::fd::OwnedFd> {
    const TRIES: u32 = 64;
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(dir.as_fd(), path, flags, mode, resolve) {
            Err(rustix::io::Errno::AGAIN) if tries < TRIES => tries += 1,
            other => return other,
        }
    }
}
