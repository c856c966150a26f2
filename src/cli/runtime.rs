//! `rsafe-runtime`: runc's command line, for podman (`--runtime`), containerd (the runc shim's
//! `BinaryName`) and so Kubernetes. The same binary as `rsafe`: it answers to this command line
//! when called by the name `rsafe-runtime` (a link), or as `rsafe runtime ARGS…`. Kept apart
//! from rsafe's docker-like commands because the two disagree (runc's `start ID` starts a
//! created container; docker's `start NAME` runs a stopped one again).
//!
//! Errors are one line on stderr and, with `--log FILE`, a line in the log in `--log-format`
//! (`json`: `{"level":"error","msg":…,"time":…}`, what the containerd shim reads back).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::runtime::oci::OciError;
use crate::runtime::oci::bundle::{Resources, check_resources};
use crate::runtime::oci::create::{CreateOptions, create};
use crate::runtime::oci::events;
use crate::runtime::oci::exec::{ExecOptions, exec};
use crate::runtime::oci::lifecycle;
use crate::runtime::oci::reporter::LogTarget;
use crate::runtime::oci::state::{RuntimeRoot, Status, rfc3339_now};

/// The name this command line answers to when the binary is called by it.
pub const NAME: &str = "rsafe-runtime";

/// rsafe's OCI runtime (runc's command line).
#[derive(Debug, Parser)]
#[command(
    name = "rsafe-runtime",
    version,
    about = "rsafe as an OCI runtime: runc's command line, for podman, containerd and \
             Kubernetes; every container gets rsafe's floor (a user namespace, no_new_privs, \
             seccomp, landlock)",
    long_about = None
)]
struct RuntimeCli {
    /// Where container state lives (runc's --root). Default: /run/rsafe-runtime for root,
    /// $XDG_RUNTIME_DIR/rsafe-runtime otherwise.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Also write errors and warnings to this file.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Where a bundle's `rsafe.policy=NAME` annotation finds NAME.toml (default
    /// /etc/rsafe/policies). Set by the host's administrator, never by the bundle.
    #[arg(long, value_name = "DIR")]
    policy_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Use systemd for cgroups: refused (rsafe writes cgroupfs itself).
    #[arg(long)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility; rsafe decides rootless mode from its own ids.
    #[arg(long, value_name = "true|false|auto")]
    rootless: Option<String>,
    /// More detail in the log.
    #[arg(long)]
    debug: bool,
    #[command(subcommand)]
    command: RuntimeCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum RuntimeCommand {
    /// Create a container from a bundle; its process waits for `start`.
    Create(CreateArgs),
    /// Create and start a container; without -d, wait for it and delete it.
    Run(RunArgs),
    /// Let a created container's process run.
    Start { id: String },
    /// Print a container's state (runtime-spec JSON).
    State { id: String },
    /// Send a signal (default SIGTERM) to a container's first process, or with --all to all.
    Kill {
        #[arg(long, short)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Remove a created or stopped container (--force: a running one too, killed first).
    Delete {
        #[arg(long, short)]
        force: bool,
        id: String,
    },
    /// List containers.
    List {
        #[arg(long, short, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        #[arg(long, short)]
        quiet: bool,
    },
    /// Freeze every process of a container (its cgroup's freezer).
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List a container's processes (host pids).
    Ps {
        #[arg(long, short, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        id: String,
    },
    /// Run a process in a running container (its namespaces, cgroup and confinement).
    Exec(ExecArgs),
    /// Print the features this runtime supports (runtime-spec features JSON).
    Features,
    /// Write a starting config.json in the bundle directory.
    Spec {
        #[arg(long, short, default_value = ".")]
        bundle: PathBuf,
        /// A config for a container started without root.
        #[arg(long)]
        rootless: bool,
    },
    /// Change a container's cgroup limits (runc's flags, or a resources JSON).
    Update(UpdateArgs),
    /// A stream of the container's events as runc's (JSON lines: its cgroup stats every
    /// interval, OOM kills as they happen) until it stops; with --stats one reading.
    Events {
        /// Print the stats once and exit.
        #[arg(long)]
        stats: bool,
        /// How often the stream prints stats (Go's duration syntax: 500ms, 5s, 1m).
        #[arg(long, value_name = "DURATION", default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Not supported by rsafe-runtime: checkpoint, restore
    /// (named, so that the error says so rather than "unknown command").
    #[command(external_subcommand)]
    Other(Vec<OsString>),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// The bundle directory (config.json and the root filesystem).
    #[arg(long, short, default_value = ".")]
    bundle: PathBuf,
    /// Write the container's pid here before returning.
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// A unix socket that receives the terminal's master (process.terminal).
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Pass descriptors 3..3+N on to the container's process.
    #[arg(long, default_value_t = 0, value_name = "N")]
    preserve_fds: u32,
    /// Refused: rsafe always pivots to the new root.
    #[arg(long)]
    no_pivot: bool,
    /// Accepted: rsafe makes no session keyring (the keyring calls are refused by seccomp).
    #[arg(long)]
    no_new_keyring: bool,
    id: String,
}

#[derive(Debug, clap::Args)]
struct ExecArgs {
    /// The process (a runtime-spec `process` object); or give the command after the id.
    #[arg(long, short, value_name = "FILE")]
    process: Option<PathBuf>,
    /// Return once the process runs (its caller reaps it).
    #[arg(long, short)]
    detach: bool,
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    #[arg(long, short)]
    tty: bool,
    #[arg(long, value_name = "DIR")]
    cwd: Option<String>,
    #[arg(long, short, value_name = "K=V")]
    env: Vec<String>,
    /// UID[:GID].
    #[arg(long, short)]
    user: Option<String>,
    #[arg(long, default_value_t = 0, value_name = "N")]
    preserve_fds: u32,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct UpdateArgs {
    /// A runtime-spec `linux.resources` JSON file, or `-` for stdin (then no other flag).
    #[arg(long, short, value_name = "FILE|-")]
    resources: Option<PathBuf>,
    /// Memory limit: bytes, or with a k/m/g suffix; -1 is unlimited.
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory + swap limit (as --memory).
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Maximum number of tasks; -1 is unlimited.
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// CPU time per period in microseconds; -1 is unlimited.
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    #[arg(long)]
    cpu_period: Option<u64>,
    /// CPU shares (runc's --cpu-share; --cpu-shares too).
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    cpu_share: Option<u64>,
    #[arg(long)]
    cpuset_cpus: Option<String>,
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// runc's flags for limits rsafe does not write: refused by name.
    #[arg(long, hide = true)]
    blkio_weight: Option<String>,
    #[arg(long, hide = true)]
    memory_reservation: Option<String>,
    #[arg(long, hide = true)]
    kernel_memory: Option<String>,
    #[arg(long, hide = true)]
    kernel_memory_tcp: Option<String>,
    #[arg(long, hide = true)]
    cpu_rt_period: Option<String>,
    #[arg(long, hide = true)]
    cpu_rt_runtime: Option<String>,
    #[arg(long, hide = true)]
    l3_cache_schema: Option<String>,
    #[arg(long, hide = true)]
    mem_bw_schema: Option<String>,
    id: String,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,
    /// Return once the container runs.
    #[arg(long, short)]
    detach: bool,
}

/// Runs the runtime command line in `args` (argv[0] included); returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match RuntimeCli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.exit_code() == 0 { 0 } else { 2 };
        }
    };
    let mut log = Log::open(cli.log.as_deref(), cli.log_format, cli.debug);
    let result = dispatch(&cli, &mut log);
    match result {
        Ok(code) => code,
        Err(err) => {
            let line = super::one_line(&err);
            eprintln!("{NAME}: {line}");
            log.write("error", &line);
            1
        }
    }
}

/// The `--log` file, if any.
struct Log {
    file: Option<std::fs::File>,
    format: LogFormat,
    /// `--debug`: warnings go to stderr too when there is no log file.
    debug: bool,
}

impl Log {
    fn open(path: Option<&Path>, format: LogFormat, debug: bool) -> Log {
        let file = path.and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        Log {
            file,
            format,
            debug,
        }
    }

    /// One line at `level` to the log file; without one, warnings go to stderr with
    /// `--debug` only (`state` shows rsafe's floor in any case: callers show a runtime's
    /// stderr to their users, and runc says nothing there on success).
    fn write(&mut self, level: &str, msg: &str) {
        let Some(file) = &mut self.file else {
            if level != "error" && self.debug {
                eprintln!("{NAME}: {level}: {msg}");
            }
            return;
        };
        let line = match self.format {
            LogFormat::Json => {
                serde_json::json!({"level": level, "msg": msg, "time": rfc3339_now()}).to_string()
            }
            LogFormat::Text => format!("{} {level}: {msg}", rfc3339_now()),
        };
        let _ = writeln!(file, "{line}");
    }
}

/// Runs one command; its exit code. Each command is a call of the library (`lifecycle`,
/// `create`, `exec`, `events`) and the printing of what it returns.
fn dispatch(cli: &RuntimeCli, log: &mut Log) -> anyhow::Result<i32> {
    if cli.systemd_cgroup {
        anyhow::bail!(
            "--systemd-cgroup is not supported: rsafe manages cgroupfs itself (use the cgroupfs cgroup manager)"
        );
    }
    let root = RuntimeRoot::new(cli.root.as_deref());
    let mut warn = |w: &str| log.write("warning", w);
    match &cli.command {
        RuntimeCommand::Create(args) => done(create_cmd(&root, args, cli, &mut warn)),
        RuntimeCommand::Run(args) => run_cmd(&root, args, cli, &mut warn),
        RuntimeCommand::Start { id } => done(lifecycle::start(&root, id, &mut warn)),
        RuntimeCommand::State { id } => {
            let state = lifecycle::state(&root, id)?;
            println!("{}", serde_json::to_string_pretty(&state)?);
            Ok(0)
        }
        RuntimeCommand::Kill { all, id, signal } => done(lifecycle::kill(
            &root,
            id,
            lifecycle::parse_signal(signal)?,
            *all,
        )),
        RuntimeCommand::Delete { force, id } => {
            done(lifecycle::delete(&root, id, *force, &mut warn))
        }
        RuntimeCommand::List { format, quiet } => list_cmd(&root, format, *quiet),
        RuntimeCommand::Pause { id } => done(lifecycle::pause(&root, id)),
        RuntimeCommand::Resume { id } => done(lifecycle::resume(&root, id)),
        RuntimeCommand::Update(args) => {
            done(lifecycle::update(&root, &args.id, &update_resources(args)?))
        }
        RuntimeCommand::Ps { format, id } => ps_cmd(&root, format, id),
        RuntimeCommand::Exec(args) => exec_cmd(&root, args, log),
        RuntimeCommand::Events {
            stats,
            interval,
            id,
        } => events_cmd(&root, *stats, interval, id),
        RuntimeCommand::Features => {
            let features = crate::runtime::oci::features();
            println!("{}", serde_json::to_string_pretty(&features)?);
            Ok(0)
        }
        RuntimeCommand::Spec { bundle, rootless } => done(spec_cmd(bundle, *rootless)),
        RuntimeCommand::Other(words) => Err(other_cmd(words)),
    }
}

/// Exit code 0 for a command that prints nothing.
fn done<E: Into<anyhow::Error>>(result: Result<(), E>) -> anyhow::Result<i32> {
    result.map_err(Into::into)?;
    Ok(0)
}

/// `list`: runc's table (or `-q` ids, or `--format json` states).
fn list_cmd(root: &RuntimeRoot, format: &str, quiet: bool) -> anyhow::Result<i32> {
    let states = lifecycle::list(root)?;
    if format == "json" {
        println!("{}", serde_json::to_string(&states)?);
        return Ok(0);
    }
    if quiet {
        states.iter().for_each(|s| println!("{}", s.id));
        return Ok(0);
    }
    println!(
        "{:<24} {:<8} {:<10} {:<40} {:<32} OWNER",
        "ID", "PID", "STATUS", "BUNDLE", "CREATED"
    );
    for s in states {
        println!(
            "{:<24} {:<8} {:<10} {:<40} {:<32} {}",
            s.id,
            s.pid.unwrap_or(0),
            s.status.as_str(),
            s.bundle.display(),
            s.created,
            s.owner
        );
    }
    Ok(0)
}

/// `ps`: the container's host pids, a `PID` table or a JSON array.
fn ps_cmd(root: &RuntimeRoot, format: &str, id: &str) -> anyhow::Result<i32> {
    let pids = lifecycle::pids(root, id)?;
    if format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
    } else {
        println!("PID");
        pids.iter().for_each(|p| println!("{p}"));
    }
    Ok(0)
}

/// `exec`: the process's own exit code, also when it could not start (126 cannot execute,
/// 127 not found, as runc; the message on stderr and in the log).
fn exec_cmd(root: &RuntimeRoot, a: &ExecArgs, log: &mut Log) -> anyhow::Result<i32> {
    let opts = ExecOptions {
        process: a.process.clone(),
        args: a.command.clone(),
        env: a.env.clone(),
        cwd: a.cwd.clone(),
        user: a.user.clone(),
        tty: a.tty,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
    };
    match exec(root, &a.id, &opts) {
        Ok(code) => Ok(code),
        Err(OciError::Exec { code, message }) => {
            eprintln!("{NAME}: {message}");
            log.write("error", &message);
            Ok(code)
        }
        Err(e) => Err(e.into()),
    }
}

/// `events`: one stats reading with `--stats`, else the stream until the container stops.
fn events_cmd(root: &RuntimeRoot, stats: bool, interval: &str, id: &str) -> anyhow::Result<i32> {
    let interval = events::parse_interval(interval)?;
    if stats {
        println!("{}", serde_json::to_string(&events::stats(root, id)?)?);
    } else {
        events::stream(root, id, interval, &mut std::io::stdout().lock())?;
    }
    Ok(0)
}

/// A command rsafe-runtime does not have: runc's `checkpoint` and `restore` said by name, with
/// why (CRIU, up to the newest, has no image of a landlock domain: a restore would drop it).
fn other_cmd(words: &[OsString]) -> anyhow::Error {
    let name = words
        .first()
        .map(|w| w.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.as_str() {
        "checkpoint" | "restore" => anyhow::anyhow!(
            "{name}: not supported by rsafe-runtime: CRIU saves a container's seccomp filters but not its landlock domain (no kernel call reads one back), so a restored container would run without its landlock rules, below rsafe's floor"
        ),
        _ => anyhow::anyhow!("unknown command {name:?}"),
    }
}

/// `update`'s limits: the `--resources` document, or runc's flags.
fn update_resources(args: &UpdateArgs) -> anyhow::Result<Resources> {
    let refused = [
        ("blkio-weight", &args.blkio_weight),
        ("memory-reservation", &args.memory_reservation),
        ("kernel-memory", &args.kernel_memory),
        ("kernel-memory-tcp", &args.kernel_memory_tcp),
        ("cpu-rt-period", &args.cpu_rt_period),
        ("cpu-rt-runtime", &args.cpu_rt_runtime),
        ("l3-cache-schema", &args.l3_cache_schema),
        ("mem-bw-schema", &args.mem_bw_schema),
    ];
    if let Some((flag, _)) = refused.iter().find(|(_, v)| v.is_some()) {
        anyhow::bail!(
            "update --{flag}: not supported by rsafe-runtime (its cgroup code does not write it)"
        );
    }
    let by_flags = Resources {
        memory: args
            .memory
            .as_deref()
            .map(|m| lifecycle::parse_bytes("memory", m))
            .transpose()?,
        memory_swap: args
            .memory_swap
            .as_deref()
            .map(|m| lifecycle::parse_bytes("memory-swap", m))
            .transpose()?,
        pids: args.pids_limit,
        cpu_shares: args.cpu_share,
        cpu_quota: args.cpu_quota,
        cpu_period: args.cpu_period,
        cpuset_cpus: args.cpuset_cpus.clone(),
        cpuset_mems: args.cpuset_mems.clone(),
        devices: Vec::new(),
    };
    let Some(file) = &args.resources else {
        return Ok(by_flags);
    };
    if by_flags != Resources::default() {
        anyhow::bail!("update: give --resources or limit flags, not both");
    }
    let (bytes, name) = if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).context("read stdin")?;
        (bytes, PathBuf::from("<stdin>"))
    } else {
        let bytes = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
        (bytes, file.clone())
    };
    let parsed: oci_spec::runtime::LinuxResources =
        serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a runtime-spec resources object: {e}",
                name.display()
            )
        })?;
    Ok(check_resources(&parsed, &name, Path::new("/"))?)
}

fn create_cmd(
    root: &RuntimeRoot,
    args: &CreateArgs,
    cli: &RuntimeCli,
    warn: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    if args.no_pivot {
        anyhow::bail!(
            "--no-pivot is not supported: rsafe always pivot_roots into the container's root (a chroot can be escaped)"
        );
    }
    let opts = CreateOptions {
        bundle: args.bundle.clone(),
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        preserve_fds: args.preserve_fds,
        policy_dir: cli.policy_dir.clone(),
        // A denial reporter writes its lines there too, as warnings in the log's format.
        log: cli.log.as_ref().map(|path| LogTarget {
            path: path.clone(),
            json: matches!(cli.log_format, LogFormat::Json),
        }),
    };
    create(root, &args.id, &opts, warn).with_context(|| format!("create {}", args.id))
}

/// `run`: create and start; in the foreground, wait for the container (this process made it,
/// so it is its parent and reaps it), delete it and exit with its code.
fn run_cmd(
    root: &RuntimeRoot,
    args: &RunArgs,
    cli: &RuntimeCli,
    warn: &mut dyn FnMut(&str),
) -> anyhow::Result<i32> {
    create_cmd(root, &args.create, cli, warn)?;
    let id = &args.create.id;
    if let Err(e) = lifecycle::start(root, id, warn) {
        let _ = lifecycle::delete(root, id, true, warn);
        return Err(e.into());
    }
    if args.detach {
        return Ok(0);
    }
    let state = lifecycle::state(root, id)?;
    let code = match state.pid {
        Some(pid) => wait_child(pid),
        None => 0,
    };
    debug_assert!(state.status != Status::Creating);
    lifecycle::delete(root, id, true, warn)?;
    Ok(code)
}

fn wait_child(pid: i32) -> i32 {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

/// `spec`: runc's starting config, with rsafe's floor already visible (a user namespace for
/// `--rootless`, no_new_privs).
fn spec_cmd(bundle: &Path, rootless: bool) -> anyhow::Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        anyhow::bail!("{}: already exists", path.display());
    }
    let mut spec = oci_spec::runtime::Spec::default();
    if rootless {
        spec.set_linux(Some(oci_spec::runtime::Linux::rootless(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )));
    }
    spec.set_hostname(Some("rsafe".to_string()));
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))
}
