//! The workload's last steps before `execve`, in the order that keeps each one possible:
//!
//! 1. a session of its own, and stdio: the container's terminal (`-t`), or `/dev/null` as
//!    stdin without `-i`;
//! 2. the rlimit fallback for limits no cgroup could enforce;
//! 3. the user: supplementary groups, gid, uid, with `PR_SET_KEEPCAPS` so the permitted
//!    capabilities survive the switch. The user comes *before* the capability drop because a
//!    policy may keep neither CAP_SETUID nor CAP_SETGID (`strict`), and then no switch would
//!    be possible afterwards;
//! 4. capabilities: exactly the policy's list (bounding set first, ambient and inheritable
//!    emptied), then `no_new_privs`, so nothing executed can gain any back;
//! 5. the working directory (as the user, so its permissions apply), and the program looked
//!    up in the container's `PATH`;
//! 6. landlock (it would forbid mounts, so only now), then every descriptor but 0-2 marked
//!    close-on-exec — including ones inherited from whoever started rsafe — so no host file
//!    crosses into the container;
//! 7. seccomp, the very last step: the filter would refuse the calls above;
//! 8. `execve`.
//!
//! Signals blocked by rsafe are unblocked and dispositions Rust changed (SIGPIPE) restored.

use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::unistd::{Gid, Uid};

use super::caps::{self, CapsError};
use super::cgroups::Fallback;
use super::channel::{Channel, Message};
use super::landlock::{self, FsAccess, LandlockError, LandlockStatus, Level};
use super::seccomp::{CompiledFilter, SeccompError};
use super::spec::Confinement;
use super::spec::ProcessSpec;
use super::spec::Ulimit;

use super::sys;
use super::tty::{self, WinSize};
use super::user::ExecUser;

/// Why the workload could not be started; carries the exit code rsafe reports.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{what}: {source}")]
    Setup {
        what: &'static str,
        source: io::Error,
    },
    #[error("{what} {id} is not mapped in the container{hint}")]
    Unmapped {
        what: &'static str,
        id: u32,
        hint: &'static str,
    },
    #[error("working directory {path}: {source}")]
    Workdir { path: String, source: io::Error },
    #[error("exec {cmd}: not found in PATH ({path})")]
    NotFound { cmd: String, path: String },
    #[error("exec {cmd}: {source}")]
    CannotExecute { cmd: String, source: io::Error },
    #[error(transparent)]
    Capabilities(CapsError),
    #[error(transparent)]
    Landlock(LandlockError),
    #[error(transparent)]
    Seccomp(SeccompError),
}

impl ExecError {
    /// 127 for a missing program, 126 for one that cannot be executed, 125 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecError::NotFound { .. } => 127,
            ExecError::CannotExecute { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                127
            }
            ExecError::CannotExecute { .. } => 126,
            _ => 125,
        }
    }
}

fn setup<E: Into<io::Error>>(what: &'static str) -> impl FnOnce(E) -> ExecError {
    move |e| ExecError::Setup {
        what,
        source: e.into(),
    }
}

/// What the workload needs besides its [`ProcessSpec`].
pub struct Workload<'a> {
    pub process: &'a ProcessSpec,
    pub user: &'a ExecUser,
    /// Whether `setgroups(2)` is allowed in this user namespace.
    pub setgroups: bool,
    /// Whether only container root is mapped (rootless without a subordinate range).
    pub single_id: bool,
    pub fallback: Option<Fallback>,
    pub hostname: &'a str,
    pub window: Option<WinSize>,
    pub confinement: &'a Confinement,
    /// Compiled by rsafe before the container was created (libseccomp allocates).
    pub seccomp: Option<CompiledFilter>,
    /// What landlock grants besides the policy's paths (the image, the writable places).
    pub landlock_fs: FsAccess,
    /// Descriptors 3..3+N stay open across `execve` (the OCI runtime's `--preserve-fds`).
    pub preserve_fds: u32,
    /// `--ulimit`: set after the rlimit fallback (checked against rsafe's own hard limits).
    pub ulimits: &'a [Ulimit],
}

/// Runs the steps of the module documentation. Returns only on failure.
pub fn exec(w: Workload<'_>, chan: &Channel) -> ExecError {
    match exec_inner(w, chan, false) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// [`exec`] with the learning filter stacked after the policy's seccomp filter, its listener
/// sent to rsafe (`rsafe run --learn`, see [`super::learn`]).
pub fn exec_learning(w: Workload<'_>, chan: &Channel) -> ExecError {
    match exec_inner(w, chan, true) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn exec_inner(
    mut w: Workload<'_>,
    chan: &Channel,
    learn: bool,
) -> Result<std::convert::Infallible, ExecError> {
    sys::reset_signal_dispositions();
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(setup("unblock signals"))?;

    // A session of its own (unless it already leads one, as pid 1 with --init=false): needed
    // to take a controlling terminal, and it keeps job-control signals within the container.
    if nix::unistd::getsid(None).ok() != Some(nix::unistd::getpid()) {
        nix::unistd::setsid().map_err(setup("setsid"))?;
    }
    if w.process.terminal {
        let (master, slave) = tty::open_pty(w.window).map_err(|source| ExecError::Setup {
            what: "open the container's terminal",
            source,
        })?;
        chan.send(&Message::Terminal, &[master.as_fd()])
            .map_err(|e| ExecError::Setup {
                what: "send the terminal",
                source: io::Error::other(e.to_string()),
            })?;
        drop(master);
        // The user will own its terminal, as after a login.
        nix::unistd::fchown(&slave, Some(Uid::from_raw(w.user.uid)), None)
            .map_err(setup("hand the terminal to the user"))?;
        tty::attach_stdio(&slave).map_err(|source| ExecError::Setup {
            what: "attach the terminal",
            source,
        })?;
    } else if !w.process.stdin {
        let null = std::fs::File::open("/dev/null").map_err(|source| ExecError::Setup {
            what: "open /dev/null",
            source,
        })?;
        nix::unistd::dup2_stdin(&null).map_err(setup("redirect stdin"))?;
    }

    if let Some(fallback) = &w.fallback {
        fallback.apply().map_err(|source| ExecError::Setup {
            what: "set rlimits",
            source,
        })?;
    }
    for u in w.ulimits {
        nix::sys::resource::setrlimit(u.name.resource(), u.soft, u.hard).map_err(|e| {
            ExecError::Setup {
                what: "set an rlimit of --ulimit",
                source: e.into(),
            }
        })?;
    }

    switch_user(&w)?;
    let conf = w.confinement;
    caps::apply(&conf.capabilities).map_err(ExecError::Capabilities)?;
    caps::set_no_new_privs().map_err(ExecError::Capabilities)?;
    // Changing credentials cleared the parent-death signal; the workload must die with init.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(setup("set the parent-death signal"))?;

    let env = environment(&w);
    std::env::set_current_dir(&w.process.cwd).map_err(|source| ExecError::Workdir {
        path: w.process.cwd.clone(),
        source,
    })?;
    let (program, args, env) = resolve_program(&w.process.args, &env)?;

    let status = landlock::apply(&w.landlock_fs, &conf.landlock, conf.require_landlock)
        .map_err(ExecError::Landlock)?;
    let filter = w.seccomp.take();
    report(chan, &w, &status, filter.as_ref());
    sys::cloexec_from(3 + w.preserve_fds).map_err(|source| ExecError::Setup {
        what: "close inherited descriptors",
        source,
    })?;
    let cwd = Path::new(&w.process.cwd);
    let program_path = cwd.join(std::ffi::OsStr::from_bytes(program.as_bytes()));
    match filter {
        Some(filter) if filter.reports_denials() => {
            send_denial_listener(chan, filter, program_path.clone())?;
        }
        Some(filter) => filter.load().map_err(ExecError::Seccomp)?,
        None => {}
    }
    if learn {
        send_learning_listener(chan, &program_path)?;
    }
    let err = sys::execve(&program, &args, &env);
    Err(ExecError::CannotExecute {
        cmd: w.process.args[0].clone(),
        source: err,
    })
}

/// Loads a learned policy's filter that notifies its denials
/// ([`CompiledFilter::notifying_denials`]) and sends the listener to rsafe, whose supervisor
/// answers them. Between the two only `sendmsg` runs, which such a filter allows (a notified
/// call before rsafe has the listener would wait forever); the message is made before the
/// load, and the programs are freed after the hand-over. This process's copy of the listener
/// is not closed (a call the policy may not allow): it is close-on-exec, gone at `execve`.
///
/// The workload's stderr goes with the listener, so that the OCI runtime's reporter writes its
/// lines where the workload writes its own: with `process.terminal` that is the container's
/// terminal (conmon's log and `podman logs`), which `create`'s stderr is not. `rsafe run`'s
/// supervisor writes to rsafe's stderr and leaves it.
fn send_denial_listener(
    chan: &Channel,
    filter: CompiledFilter,
    program: PathBuf,
) -> Result<(), ExecError> {
    use std::os::fd::IntoRawFd;
    let message = Message::Learning { program };
    let listener = filter.load_reporting().map_err(ExecError::Seccomp)?;
    chan.send(&message, &[listener.as_fd(), io::stderr().as_fd()])
        .map_err(|e| ExecError::Setup {
            what: "send the denial listener",
            source: io::Error::other(e.to_string()),
        })?;
    let _close_on_exec = listener.into_raw_fd();
    drop((filter, message));
    Ok(())
}

/// Loads the learning filter (last: it notifies every later call) and sends its listener to
/// rsafe. Closing this process's copy is already a notified call, answered by rsafe.
fn send_learning_listener(chan: &Channel, program: &Path) -> Result<(), ExecError> {
    use std::os::fd::AsRawFd;
    let listener =
        super::learn::filter::load(chan.as_fd().as_raw_fd()).map_err(ExecError::Seccomp)?;
    let program = program.to_path_buf();
    chan.send(&Message::Learning { program }, &[listener.as_fd()])
        .map_err(|e| ExecError::Setup {
            what: "send the learning listener",
            source: io::Error::other(e.to_string()),
        })
}

/// Tells rsafe what confinement is in force (shown with `--verbose`) and what fell short of
/// the policy (always shown). Best effort: the workload starts even if rsafe cannot listen.
fn report(
    chan: &Channel,
    w: &Workload<'_>,
    landlock: &LandlockStatus,
    filter: Option<&CompiledFilter>,
) {
    let conf = w.confinement;
    let caps: Vec<String> = conf
        .capabilities
        .iter()
        .map(|c| caps::short_name(*c))
        .collect();
    let seccomp = match filter {
        Some(f) if !f.is_unconfined() => {
            let s = f.summary();
            format!(
                "seccomp: profile {}, {} syscalls allowed ({} more by argument), default {}",
                s.origin,
                s.allowed,
                s.allowed_with_args,
                s.default_action
                    .as_ref()
                    .map_or_else(|| "allow".to_string(), |a| a.to_string())
            )
        }
        _ => "seccomp: unconfined".to_string(),
    };
    let lines = vec![
        format!("policy: {}", conf.policy),
        format!(
            "capabilities: {} (bounding = permitted = effective; inheritable and ambient empty); no_new_privs",
            if caps.is_empty() {
                "none".to_string()
            } else {
                caps.join(", ")
            }
        ),
        seccomp,
        landlock.to_string(),
    ];
    let mut warnings = Vec::new();
    if landlock.level != Level::Full {
        warnings.push(landlock.to_string());
    }
    let _ = chan.send(&Message::Confined { lines, warnings }, &[]);
}

/// Sets supplementary groups, gid and uid, keeping the permitted capabilities across the uid
/// change for whoever configures capabilities next.
fn switch_user(w: &Workload<'_>) -> Result<(), ExecError> {
    let hint = if w.single_id {
        " (rootless without a subordinate id range in /etc/subuid and /etc/subgid, only root exists)"
    } else {
        ""
    };
    rustix::thread::set_keep_capabilities(true).map_err(setup("keep capabilities"))?;
    if w.setgroups {
        let groups: Vec<Gid> = w.user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&groups).map_err(|e| match e {
            nix::errno::Errno::EINVAL => ExecError::Unmapped {
                what: "a supplementary group",
                id: w.user.groups.first().copied().unwrap_or(0),
                hint,
            },
            e => setup("set supplementary groups")(e),
        })?;
    }
    let gid = Gid::from_raw(w.user.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| match e {
        nix::errno::Errno::EINVAL => ExecError::Unmapped {
            what: "group",
            id: w.user.gid,
            hint,
        },
        e => setup("set group")(e),
    })?;
    let uid = Uid::from_raw(w.user.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| match e {
        nix::errno::Errno::EINVAL => ExecError::Unmapped {
            what: "user",
            id: w.user.uid,
            hint,
        },
        e => setup("set user")(e),
    })?;
    Ok(())
}

/// The process environment plus `HOME` (from the user) and `HOSTNAME` when not set.
fn environment(w: &Workload<'_>) -> Vec<String> {
    let mut env = w.process.env.clone();
    let has = |env: &[String], key: &str| env.iter().any(|kv| kv.split('=').next() == Some(key));
    if !has(&env, "HOME") {
        env.push(format!("HOME={}", w.user.home));
    }
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={}", w.hostname));
    }
    env
}

type Program = (CString, Vec<CString>, Vec<CString>);

/// Finds `args[0]` (in the container's `PATH` unless it has a slash) and converts everything
/// for `execve`.
fn resolve_program(args: &[String], env: &[String]) -> Result<Program, ExecError> {
    let cmd = &args[0];
    let cstr = |s: &[u8]| {
        CString::new(s).map_err(|_| ExecError::CannotExecute {
            cmd: cmd.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "argument contains a NUL byte"),
        })
    };
    let path_var = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(super::spec::DEFAULT_PATH);
    let program = find_in_path(cmd, path_var)?;
    let program = cstr(program.as_os_str().as_bytes())?;
    let args = args
        .iter()
        .map(|a| cstr(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let env = env
        .iter()
        .map(|e| cstr(e.as_bytes()))
        .collect::<Result<_, _>>()?;
    Ok((program, args, env))
}

/// `execvp`'s search: the first executable regular file named `cmd` in `path_var`; a name with
/// a slash is used as it is. When only non-executable candidates exist, the error says so.
fn find_in_path(cmd: &str, path_var: &str) -> Result<PathBuf, ExecError> {
    if cmd.contains('/') {
        return Ok(PathBuf::from(cmd));
    }
    let mut denied = None;
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(cmd);
        let Ok(meta) = std::fs::metadata(&candidate) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        match nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK) {
            Ok(()) => return Ok(candidate),
            Err(e) => denied = denied.or(Some(io::Error::from(e))),
        }
    }
    match denied {
        Some(source) => Err(ExecError::CannotExecute {
            cmd: cmd.to_string(),
            source,
        }),
        None => Err(ExecError::NotFound {
            cmd: cmd.to_string(),
            path: path_var.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn path_search() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("adir")).unwrap();
        let path = format!("/nonexistent:{}", dir.path().display());
        assert_eq!(find_in_path("tool", &path).unwrap(), exe);
        assert_eq!(find_in_path("/x/y", &path).unwrap(), PathBuf::from("/x/y"));
        let e = find_in_path("missing", &path).unwrap_err();
        assert_eq!(e.exit_code(), 127);
        assert!(e.to_string().contains("not found in PATH"));
        let e = find_in_path("adir", &path).unwrap_err();
        assert_eq!(e.exit_code(), 127);
    }

    #[test]
    fn exit_codes() {
        let denied = ExecError::CannotExecute {
            cmd: "x".into(),
            source: io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(denied.exit_code(), 126);
        let missing = ExecError::CannotExecute {
            cmd: "/x".into(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(missing.exit_code(), 127);
        let setup = ExecError::Workdir {
            path: "/x".into(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(setup.exit_code(), 125);
    }
}
