//! `exec`: a new process in a running container (`podman exec`, `ctr task exec`, `kubectl
//! exec`), in all of its namespaces and its cgroup, with the container's confinement: its
//! seccomp filter and landlock rules, and at most its capabilities.
//!
//! The way in is [`crate::runtime::join`]'s, the same as `rsafe exec`'s; what is this
//! command's own is here: the record and `process.json` (or the argv form), which namespaces
//! in which order, the console socket, the pid file and `--detach`.
//!
//! ```text
//! rsafe-runtime exec
//! ──────────────────
//! record, process.json, seccomp filter (cache), /proc/<pid>/ns/*, root
//! [fg] subreaper
//! [notify] connect the agent
//! join::start ──────────▶ joiner ──▶ process (see join.rs): console pty, rlimits, umask,
//!                                    user, notify filter, caps, no_new_privs, landlock,
//!                                    seccomp, execve
//! [notify] its listener ◀──────────── (notify.rs), on to the agent with the state
//! read the channel to its end: Failed (runc's words) or started; pid file;
//! --detach: exit 0; else reap the process (subreaper), its code
//! ```
//!
//! Namespaces: host root joins the container's (and a pod's, owned by another user namespace)
//! first and its user namespace last; an unprivileged caller has rights only through the
//! container's user namespace, so joins it first. With `--detach` the process's parent becomes
//! the caller's subreaper (conmon, the shim), which reaps it, as for runc.

use crate::bounded;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::wait::{WaitStatus, waitpid};

use super::OciError;
use super::state::{ContainerDir, Record, RuntimeRoot, Status};
use crate::runtime::join::{
    self, Adoption, Entry, Identity, Join, JoinError, NewProcess, Outcome, Stdio, Target,
};
use crate::runtime::seccomp::CompiledFilter;
use crate::runtime::spec::{Confinement, ProcessSpec};

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
    let (dir, record) = running(root, id)?;
    let process = read_process(opts, &record)?;
    if process.terminal && opts.console_socket.is_none() {
        return Err(OciError::Usage(
            "a terminal needs --console-socket".to_string(),
        ));
    }
    // Under a policy that reports its denials, the container's reporter (None once killed).
    let reporter = match record.reporter {
        Some(r) if r.process().is_alive() => super::reporter::connect(&dir).ok(),
        _ => None,
    };
    let (confinement, filter, calls) = confine(&dir, &record, &process, reporter.is_some())?;
    let target = open_target(record.pid)?;
    if !record.is_alive() {
        return Err(OciError::State(format!("container {id} exited")));
    }
    let console = connect_console(opts, &process)?;
    if !opts.detach {
        become_subreaper()?;
    }
    let relay = connect_agent(&record)?;
    let install = || match &relay {
        Some(relay) => relay.install(),
        None => Ok(()),
    };
    let new = new_process(&process, &confinement, &record, console, opts, &install);
    let started = start(id, target, &record, &new, filter)?;
    drop(new);
    if let (Some(relay), Some(pid)) = (relay, started.pid) {
        forward_listener(relay, &record, pid)?;
    }
    let reporting = reporter.as_ref().zip(calls.as_deref());
    let pid = started_pid(&started, &process, reporting)?;
    if let Some(path) = &opts.pid_file {
        super::create::write_pid_file(path, pid.as_raw())?;
    }
    match opts.detach {
        true => Ok(0),
        false => wait_exit(pid),
    }
}

/// Container `id`'s directory and record, when it runs (a container still being created has
/// no record yet).
fn running(root: &RuntimeRoot, id: &str) -> Result<(ContainerDir, Record), OciError> {
    let dir = root.container(id)?;
    let record = dir
        .load()?
        .ok_or_else(|| OciError::State(format!("container {id} is still being created")))?;
    if dir.status(Some(&record)) != Status::Running {
        return Err(OciError::State(format!(
            "cannot exec in container {id}: it is not running"
        )));
    }
    Ok((dir, record))
}

/// The container's confinement, its capabilities cut to the process's, and the seccomp filter
/// compiled for it (through the state root's cache): with `reporting`, the container's
/// notifying one and the calls it notifies.
fn confine(
    dir: &ContainerDir,
    record: &Record,
    process: &Process,
    reporting: bool,
) -> Result<(Confinement, CompiledFilter, Option<Vec<i64>>), OciError> {
    let mut confinement = record.confinement.clone();
    if let Some(caps) = &process.capabilities {
        // At most the container's.
        confinement.capabilities.retain(|c| caps.contains(c));
    }
    let state_root = dir.path.parent().unwrap_or(Path::new("/"));
    let floor: Vec<_> = record
        .floor_seccomp
        .iter()
        .chain(&record.policy_seccomp)
        .collect();
    // Under a policy that reports its denials the process's go to the container's reporter
    // too; without one to take them (killed), its filter does not notify: EPERM, never ENOSYS.
    let (filter, calls) = match reporting {
        true => super::reporter::exec_filter(state_root, record, &confinement)?,
        false => (
            super::compile_filter(state_root, &confinement, &floor)?,
            None,
        ),
    };
    Ok((confinement, filter, calls))
}

/// `--console-socket`, connected when the process has a terminal.
fn connect_console(opts: &ExecOptions, process: &Process) -> Result<Option<UnixStream>, OciError> {
    match (&opts.console_socket, process.terminal) {
        (Some(path), true) => UnixStream::connect(path)
            .map(Some)
            .map_err(|source| OciError::Io {
                what: format!("console socket {}", path.display()),
                source,
            }),
        _ => Ok(None),
    }
}

/// Without `--detach`: the process is re-parented here when the joiner exits, and reaped here.
fn become_subreaper() -> Result<(), OciError> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).map_err(|e| {
        OciError::Io {
            what: "become a subreaper".into(),
            source: e.into(),
        }
    })
}

/// With `linux.seccomp.listenerPath`: the agent, connected before anything runs.
fn connect_agent(record: &Record) -> Result<Option<super::notify::Relay>, OciError> {
    let Some(n) = &record.seccomp_notify else {
        return Ok(None);
    };
    super::notify::Relay::connect(n)
        .map(Some)
        .map_err(|source| OciError::Io {
            what: format!("linux.seccomp.listenerPath {}", n.listener_path.display()),
            source,
        })
}

/// Into the container through [`join`]: the process forked there, given its go-ahead.
fn start(
    id: &str,
    target: Target,
    record: &Record,
    new: &NewProcess<'_>,
    filter: CompiledFilter,
) -> Result<join::Started, OciError> {
    let entry = Entry {
        name: id,
        target,
        cgroup: record.cgroup.as_ref(),
        idmap: &record.idmap,
        adoption: Adoption::Caller,
    };
    join::start(entry, new, filter).map_err(|e| match e {
        JoinError::Io { what, source } => OciError::Io { what, source },
        JoinError::Channel(e) => e.into(),
    })
}

/// The process's pid once it runs its command (end-of-file on the channel), its denial
/// listener handed to the container's `reporter` on the way; its failure (before or at
/// `execve`) in runc's words, the process reaped.
fn started_pid(
    started: &join::Started,
    process: &Process,
    reporter: Option<(&UnixStream, &[i64])>,
) -> Result<nix::unistd::Pid, OciError> {
    let outcome = match reporter {
        Some((conn, calls)) => reported_outcome(started, conn, calls)?,
        None => join::outcome(&started.chan, &mut |_, _| {})?,
    };
    if let Outcome::Failed { code, message } = outcome {
        if let Some(pid) = started.pid {
            let _ = waitpid(pid, None);
        }
        return Err(OciError::Exec {
            code,
            message: runc_message(code, &message, &process.args),
        });
    }
    started
        .pid
        .ok_or_else(|| OciError::Container("the process did not start".to_string()))
}

/// The exec'd process's seccomp listener to the bundle's agent, with the container's state
/// and the process's host pid (runc's `ContainerProcessState`). Without an agent to take it,
/// the process is killed: its notified calls would wait forever.
fn forward_listener(
    relay: super::notify::Relay,
    record: &Record,
    pid: nix::unistd::Pid,
) -> Result<(), OciError> {
    let Some(notify) = &record.seccomp_notify else {
        return Ok(());
    };
    let state = super::hooks::state_document(
        &record.id,
        record.pid,
        &record.bundle,
        &record.annotations,
        Status::Running,
    );
    match relay.forward(notify, &state, pid.as_raw()) {
        Ok(_) => Ok(()),
        Err(source) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            Err(OciError::Io {
                what: format!(
                    "linux.seccomp.listenerPath {}: send the exec'd process's listener",
                    notify.listener_path.display()
                ),
                source,
            })
        }
    }
}

/// The channel read to its end, the process's denial listener handed on the way to the
/// container's reporter ([`super::reporter`]), which then answers it as the first process's;
/// the process waits in its `execve` until then. It is killed if the reporter cannot take it.
fn reported_outcome(
    started: &join::Started,
    conn: &std::os::unix::net::UnixStream,
    calls: &[i64],
) -> Result<Outcome, OciError> {
    let (listener, stderr) = match join::next_step(&started.chan, &mut |_, _| {})? {
        join::Step::Done(outcome) => return Ok(outcome),
        join::Step::Learning {
            listener, stderr, ..
        } => (listener, stderr),
    };
    if let Err(source) = super::reporter::hand_over(conn, &listener, stderr.as_ref(), calls) {
        if let Some(pid) = started.pid {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        return Err(OciError::Io {
            what: "hand the exec'd process's listener to the denial reporter".into(),
            source,
        });
    }
    drop(listener);
    Ok(join::outcome(&started.chan, &mut |_, _| {})?)
}

/// The process's exit code, 128+N for signal N.
fn wait_exit(pid: nix::unistd::Pid) -> Result<i32, OciError> {
    loop {
        match waitpid(pid, None) {
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

/// The process as the way in takes it: the container's record with what `process.json` or
/// the flags say.
fn new_process<'a>(
    process: &Process,
    confinement: &'a crate::runtime::spec::Confinement,
    record: &Record,
    console: Option<std::os::unix::net::UnixStream>,
    opts: &ExecOptions,
    notify_filter: &'a dyn Fn() -> std::io::Result<()>,
) -> NewProcess<'a> {
    NewProcess {
        process: ProcessSpec {
            args: process.args.clone(),
            env: process.env.clone(),
            cwd: process.cwd.clone(),
            user: None,
            terminal: false,
            stdin: true,
        },
        identity: Identity::Ids {
            uid: process.uid,
            gid: process.gid,
            groups: process.groups.clone(),
        },
        stdio: match console {
            Some(socket) => Stdio::Console(OwnedFd::from(socket)),
            None => Stdio::Inherit,
        },
        rlimits: process.rlimits.clone(),
        umask: process.umask,
        fallback: None,
        hostname: String::new(),
        window: None,
        confinement,
        landlock_fs: record.landlock_fs.clone(),
        preserve_fds: opts.preserve_fds,
        // The container's notified syscalls, their listener sent back for the agent.
        extra_filter: Some(notify_filter),
        learning: false,
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

/// The container's namespaces (those that are not this process's own) in the order they are
/// joined, and its root, opened from the host before anything changes. Host root joins the
/// user namespace last (a pod's namespaces belong to another user namespace than the
/// container's); an unprivileged caller, which has rights only through the container's user
/// namespace, first.
fn open_target(pid: i32) -> Result<Target, OciError> {
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
        .transpose()?
        .map(|fd| Join {
            name: "user",
            fd,
            flag: CloneFlags::CLONE_NEWUSER,
        });
    let mut namespaces = Vec::new();
    for (name, flag) in [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        let exists = Path::new(&format!("/proc/{pid}/ns/{name}")).exists();
        if exists && !same(name) {
            let fd = open(format!("/proc/{pid}/ns/{name}"))?;
            namespaces.push(Join { name, fd, flag });
        }
    }
    match user {
        Some(u) if !nix::unistd::geteuid().is_root() => namespaces.insert(0, u),
        Some(u) => namespaces.push(u),
        None => {}
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
    Ok(Target { namespaces, root })
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
