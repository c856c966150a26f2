//! `exec`: a new process in a running container (`podman exec`, `ctr task exec`, `kubectl
//! exec`), in all of its namespaces and its cgroup, with the container's confinement: its
//! seccomp filter and landlock rules, and at most its capabilities.
//!
//! ```text
//! rsafe-runtime exec            joiner (fork)                       process (fork)
//! ──────────────────            ─────────────                       ──────────────
//! record, process.json,
//! seccomp filter (cache),
//! /proc/<pid>/ns/*, root
//! fork ───────────────────────▶ cgroup; setns: as root the pod's
//!                               and the container's namespaces,
//!                               then its user namespace (rootless:
//!                               user first); chroot; root of the
//!                               user namespace
//!                               fork ─────────────────────────────▶ console pty, rlimits, umask
//!   ◀──── its pid ───────────── exit                                user, caps, no_new_privs,
//! pid file; --detach: wait for                                      landlock, seccomp, execve
//! execve (EOF) and exit;  else: ◀───────── Failed{…} or EOF ──────
//! reap it (subreaper), its code
//! ```
//!
//! With `--detach` the process's parent becomes the caller's subreaper (conmon, the shim),
//! which reaps it, as for runc.

use crate::bounded;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

use super::OciError;
use super::child::{attach_console, set_rlimit};
use super::state::{Record, RuntimeRoot, Status};
use crate::runtime::channel::{self, Channel, Message};
use crate::runtime::exec::{self as workload_exec, Workload};
use crate::runtime::seccomp::CompiledFilter;
use crate::runtime::spec::ProcessSpec;
use crate::runtime::user;

/// What `exec` runs.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// `--process FILE`: a runtime-spec `process` object; otherwise `args` with the flags.
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    /// `--user UID[:GID]`.
    pub user: Option<String>,
    pub tty: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
}

/// The process to run, from process.json or the flags.
struct Process {
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    umask: Option<u32>,
    terminal: bool,
    capabilities: Option<Vec<::caps::Capability>>,
    rlimits: Vec<super::bundle::Rlimit>,
}

/// Runs a process in container `id`; returns its exit code (0 at once with `--detach`).
pub fn exec(root: &RuntimeRoot, id: &str, opts: &ExecOptions) -> Result<i32, OciError> {
    let dir = root.container(id)?;
    let record = dir
        .load()?
        .ok_or_else(|| OciError::State(format!("container {id} is still being created")))?;
    if dir.status(Some(&record)) != Status::Running {
        return Err(OciError::State(format!(
            "cannot exec in container {id}: it is not running"
        )));
    }
    let process = read_process(opts, &record)?;
    if process.terminal && opts.console_socket.is_none() {
        return Err(OciError::Usage(
            "a terminal needs --console-socket".to_string(),
        ));
    }
    let mut confinement = record.confinement.clone();
    if let Some(caps) = &process.capabilities {
        // At most the container's.
        confinement.capabilities.retain(|c| caps.contains(c));
    }
    let state_root = dir.path.parent().unwrap_or(Path::new("/"));
    let filter = super::compile_filter(state_root, &confinement, record.floor_seccomp.as_ref())?;
    let target = Target::open(record.pid)?;
    if !record.is_alive() {
        return Err(OciError::State(format!("container {id} exited")));
    }
    let console = match (&opts.console_socket, process.terminal) {
        (Some(path), true) => Some(std::os::unix::net::UnixStream::connect(path).map_err(
            |source| OciError::Io {
                what: format!("console socket {}", path.display()),
                source,
            },
        )?),
        _ => None,
    };
    if !opts.detach {
        // The process is re-parented here when the joiner exits, and reaped here.
        rustix::process::set_child_subreaper(Some(rustix::process::getpid())).map_err(|e| {
            OciError::Io {
                what: "become a subreaper".into(),
                source: e.into(),
            }
        })?;
    }
    let (parent_end, child_end) = channel::pair()?;
    let pipe = || {
        nix::unistd::pipe().map_err(|e| OciError::Io {
            what: "pipe".into(),
            source: e.into(),
        })
    };
    let (pid_read, pid_write) = pipe()?;
    let (go_read, go_write) = pipe()?;
    let ctx = Context {
        record: &record,
        process: &process,
        confinement,
        console: console.map(OwnedFd::from),
        preserve_fds: opts.preserve_fds,
    };
    // SAFETY: rsafe-runtime is single-threaded here (it started no thread), so the child may
    // run arbitrary code.
    let joiner = match unsafe { nix::unistd::fork() }.map_err(|e| OciError::Io {
        what: "fork".into(),
        source: e.into(),
    })? {
        ForkResult::Child => {
            drop(parent_end);
            drop(pid_read);
            drop(go_write);
            let code = joiner(&ctx, target, filter, &child_end, pid_write, go_read);
            // SAFETY: _exit ends the fork without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };
    drop(child_end);
    drop(pid_write);
    drop(go_read);
    drop(ctx);
    let mut pid_text = String::new();
    let _ = std::fs::File::from(pid_read).read_to_string(&mut pid_text);
    let _ = waitpid(joiner, None);
    // The joiner is reaped: the process may arm its parent-death signal.
    let _ = std::fs::File::from(go_write).write_all(b"1");
    let pid: Option<i32> = pid_text.trim().parse().ok();
    // Failed (before or at execve), or end-of-file: the process runs its command.
    if let Some((Message::Failed { code, message }, _)) = parent_end.recv()? {
        if let Some(pid) = pid {
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        return Err(OciError::Exec {
            code,
            message: runc_message(code, &message, &process.args),
        });
    }
    let pid = pid.ok_or_else(|| OciError::Container("the process did not start".to_string()))?;
    if let Some(path) = &opts.pid_file {
        super::create::write_pid_file(path, pid)?;
    }
    if opts.detach {
        return Ok(0);
    }
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(OciError::Io {
                    what: "wait for the process".into(),
                    source: e.into(),
                });
            }
        }
    }
}

/// Callers (podman, the containerd shim) tell "not found" and "cannot execute" apart by
/// runc's words; the message says so in them.
fn runc_message(code: i32, message: &str, args: &[String]) -> String {
    let cmd = args.first().map(String::as_str).unwrap_or_default();
    match code {
        127 => format!("exec: \"{cmd}\": executable file not found in $PATH ({message})"),
        126 => format!("exec: \"{cmd}\": permission denied ({message})"),
        _ => message.to_string(),
    }
}

fn read_process(opts: &ExecOptions, record: &Record) -> Result<Process, OciError> {
    let invalid = |m: String| OciError::Invalid(m);
    let Some(path) = &opts.process else {
        if opts.args.is_empty() {
            return Err(OciError::Usage(
                "exec needs --process FILE or a command".to_string(),
            ));
        }
        let (uid, gid) = match &opts.user {
            Some(u) => {
                let (a, b) = u.split_once(':').unwrap_or((u, "0"));
                (
                    a.parse()
                        .map_err(|_| invalid(format!("--user {u}: not UID[:GID]")))?,
                    b.parse()
                        .map_err(|_| invalid(format!("--user {u}: not UID[:GID]")))?,
                )
            }
            None => (0, 0),
        };
        let mut env = vec![format!("PATH={}", crate::runtime::spec::DEFAULT_PATH)];
        env.extend(opts.env.iter().cloned());
        return Ok(Process {
            args: opts.args.clone(),
            env,
            cwd: opts.cwd.clone().unwrap_or_else(|| "/".to_string()),
            uid,
            gid,
            groups: Vec::new(),
            umask: None,
            terminal: opts.tty,
            capabilities: None,
            rlimits: Vec::new(),
        });
    };
    let bytes = bounded::read_file(path, bounded::CONFIG).map_err(|e| OciError::Io {
        what: format!("{}", path.display()),
        source: e.into(),
    })?;
    let p: oci_spec::runtime::Process = serde_json::from_slice(&bytes).map_err(|e| {
        invalid(format!(
            "{}: not a runtime-spec process: {e}",
            path.display()
        ))
    })?;
    // The bundle checker reads these the same way for the container's own process.
    let checked = super::bundle::check_process(&p, path, &record.bundle)?;
    Ok(Process {
        args: checked.args,
        env: checked.env,
        cwd: checked.cwd,
        uid: p.user().uid(),
        gid: p.user().gid(),
        groups: p.user().additional_gids().clone().unwrap_or_default(),
        umask: p.user().umask(),
        terminal: p.terminal().unwrap_or(false),
        capabilities: Some(checked.capabilities),
        rlimits: checked.rlimits,
    })
}

/// The container's namespaces and root, opened from the host before anything changes.
struct Target {
    user: Option<OwnedFd>,
    /// The others, in the order they are joined.
    others: Vec<(OwnedFd, CloneFlags, &'static str)>,
    root: OwnedFd,
}

impl Target {
    fn open(pid: i32) -> Result<Target, OciError> {
        let open = |path: String| -> Result<OwnedFd, OciError> {
            std::fs::File::open(&path)
                .map(OwnedFd::from)
                .map_err(|source| OciError::Io { what: path, source })
        };
        let same = |kind: &str| {
            let a = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok();
            a.is_some() && a == std::fs::read_link(format!("/proc/self/ns/{kind}")).ok()
        };
        let user = (!same("user"))
            .then(|| open(format!("/proc/{pid}/ns/user")))
            .transpose()?;
        let mut others = Vec::new();
        for (kind, flag) in [
            ("ipc", CloneFlags::CLONE_NEWIPC),
            ("uts", CloneFlags::CLONE_NEWUTS),
            ("net", CloneFlags::CLONE_NEWNET),
            ("pid", CloneFlags::CLONE_NEWPID),
            ("cgroup", CloneFlags::CLONE_NEWCGROUP),
            ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
            ("mnt", CloneFlags::CLONE_NEWNS),
        ] {
            let exists = Path::new(&format!("/proc/{pid}/ns/{kind}")).exists();
            if exists && !same(kind) {
                others.push((open(format!("/proc/{pid}/ns/{kind}"))?, flag, kind));
            }
        }
        let root = rustix::fs::open(
            format!("/proc/{pid}/root"),
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| OciError::Io {
            what: format!("/proc/{pid}/root"),
            source: e.into(),
        })?;
        Ok(Target { user, others, root })
    }
}

struct Context<'a> {
    record: &'a Record,
    process: &'a Process,
    confinement: crate::runtime::spec::Confinement,
    console: Option<OwnedFd>,
    preserve_fds: u32,
}

fn failed(chan: &Channel, code: i32, message: String) -> i32 {
    let _ = chan.send(&Message::Failed { code, message }, &[]);
    code
}

/// The joiner: into the container, then forks the process (which lands in its pid
/// namespace), sends its pid and exits.
fn joiner(
    ctx: &Context<'_>,
    target: Target,
    filter: CompiledFilter,
    chan: &Channel,
    pid_write: OwnedFd,
    go_read: OwnedFd,
) -> i32 {
    if let Err(e) = enter(ctx, target) {
        return failed(chan, 125, e);
    }
    // SAFETY: the joiner is a fork of single-threaded rsafe-runtime.
    match unsafe { nix::unistd::fork() } {
        Err(e) => failed(chan, 125, format!("fork the process: {e}")),
        Ok(ForkResult::Child) => {
            drop(pid_write);
            let code = process_main(ctx, filter, chan, go_read);
            // SAFETY: as above.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(go_read);
            let _ = std::fs::File::from(pid_write).write_all(child.as_raw().to_string().as_bytes());
            0
        }
    }
}

/// The container's cgroup, its namespaces, its root, and root of its user namespace.
fn enter(ctx: &Context<'_>, target: Target) -> Result<(), String> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| format!("make the process non-dumpable: {e}"))?;
    if let Some(cg) = &ctx.record.cgroup {
        for (dir, _) in &cg.dirs {
            let procs = dir.join("cgroup.procs");
            std::fs::write(&procs, "0")
                .map_err(|e| format!("join the cgroup {}: {e}", procs.display()))?;
        }
    }
    let join = |fd: &OwnedFd, flag: CloneFlags, kind: &str| {
        nix::sched::setns(fd.as_fd(), flag)
            .map_err(|e| format!("join the container's {kind} namespace: {e}"))
    };
    // Host root enters the namespaces first (a pod's network namespace belongs to another
    // user namespace than the container's), the user namespace last; an unprivileged caller
    // has rights only through the container's user namespace, so enters it first.
    let root_caller = nix::unistd::geteuid().is_root();
    if !root_caller && let Some(user) = &target.user {
        join(user, CloneFlags::CLONE_NEWUSER, "user")?;
    }
    for (fd, flag, kind) in &target.others {
        join(fd, *flag, kind)?;
    }
    if root_caller && let Some(user) = &target.user {
        join(user, CloneFlags::CLONE_NEWUSER, "user")?;
    }
    nix::unistd::fchdir(&target.root)
        .and_then(|()| nix::unistd::chroot("."))
        .and_then(|()| nix::unistd::chdir("/"))
        .map_err(|e| format!("enter the container's root: {e}"))?;
    if target.user.is_some() {
        crate::runtime::container::become_root(&ctx.record.idmap).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The process: terminal, rlimits, umask, then the workload's own last steps.
fn process_main(
    ctx: &Context<'_>,
    filter: CompiledFilter,
    chan: &Channel,
    go_read: OwnedFd,
) -> i32 {
    let p = ctx.process;
    // The workload's last steps arm the parent-death signal: the joiner, which exits now,
    // must be gone (reaped: the process is then its caller's or its subreaper's) first. The
    // caller says so; end-of-file means it is gone.
    let mut go = [0u8; 1];
    if std::fs::File::from(go_read).read_exact(&mut go).is_err() {
        return 125;
    }
    if let Some(console) = &ctx.console
        && let Err(e) = nix::unistd::setsid()
            .map_err(|e| e.to_string())
            .and_then(|_| attach_console(console).map_err(|e| e.to_string()))
    {
        return failed(chan, 125, e);
    }
    for (resource, soft, hard) in &p.rlimits {
        if let Err(e) = set_rlimit(*resource, *soft, *hard) {
            return failed(chan, 125, e.to_string());
        }
    }
    if let Some(mask) = p.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    let mut user = match user::resolve(Some(&format!("{}:{}", p.uid, p.gid)), Path::new("/etc")) {
        Ok(u) => u,
        Err(e) => return failed(chan, 125, e.to_string()),
    };
    user.groups = p.groups.clone();
    // The container's notified syscalls, without a listener: they fail with ENOSYS here.
    if let Some(notify) = &ctx.record.seccomp_notify
        && let Err(e) = super::notify::install(&notify.syscalls, None)
    {
        return failed(chan, 125, format!("seccomp notify filter: {e}"));
    }
    let spec = ProcessSpec {
        args: p.args.clone(),
        env: p.env.clone(),
        cwd: p.cwd.clone(),
        user: None,
        terminal: false,
        stdin: true,
    };
    let w = Workload {
        process: &spec,
        user: &user,
        setgroups: ctx.record.idmap.setgroups,
        single_id: ctx.record.idmap.is_single(),
        fallback: None,
        hostname: "",
        window: None,
        confinement: &ctx.confinement,
        seccomp: Some(filter),
        landlock_fs: ctx.record.landlock_fs.clone(),
        preserve_fds: ctx.preserve_fds,
    };
    let err = workload_exec::exec(w, chan);
    failed(chan, err.exit_code(), err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_commands_are_said_in_runcs_words() {
        let args = vec!["nope".to_string()];
        assert!(runc_message(127, "x", &args).contains("executable file not found in $PATH"));
        assert!(runc_message(126, "x", &args).contains("permission denied"));
        assert_eq!(runc_message(125, "broken", &args), "broken");
    }
}
