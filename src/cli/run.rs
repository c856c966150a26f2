//! `rsafe run`: run a command in a container made from a rootfs directory.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::Global;
use super::policy::{OverrideArgs, effective_policy};
use crate::runtime::process::{self, Note, RunRequest};
use crate::runtime::spec::{
    self, Confinement, ImageDefaults, Limits, NetworkMode, ProcessOverrides, RootfsSpec, Spec,
};

/// Run a command in a new, isolated container
///
/// Its own user, mount, pid, ipc, uts, network, cgroup and time namespaces, an overlay root, a
/// confinement policy (capabilities, seccomp, landlock), and rsafe's init as pid 1. The exit
/// code is the command's (128+N when signal N ended it); 125 when rsafe failed, 126 when the
/// command cannot be executed, 127 when it is not found.
#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Say what was set up and enforced: namespaces, id maps, limits, capabilities, seccomp,
    /// landlock. (The global -v/--verbose, which `-v` = `--volume` displaces here.)
    #[arg(long)]
    pub verbose: bool,
    /// Keep stdin attached (otherwise the container's stdin is /dev/null).
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the container a terminal (from its own devpts).
    #[arg(short, long)]
    pub tty: bool,
    /// Remove the container and its writable layer when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Name the container (for `rsafe ps` and `rsafe rm`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass rsafe's own value).
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines, # comments).
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory in the container (created when missing).
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User (and group) to run as: name or uid, optionally :group or :gid.
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// The container's hostname (default: the first 12 characters of its id).
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Replace the image's entrypoint (and drop its Cmd).
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Bind-mount a host path: HOST-PATH:CONTAINER-PATH[:ro].
    #[arg(short, long = "volume", value_name = "SRC:DST[:ro]")]
    pub volume: Vec<String>,
    /// Mount a tmpfs: PATH[:size=64m,mode=1777].
    #[arg(long, value_name = "PATH[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Make the root filesystem read-only (no writable layer at all).
    #[arg(long)]
    pub read_only: bool,
    /// Memory limit (e.g. 256m, 1g).
    #[arg(short, long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,
    /// Maximum number of processes and threads.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub pids_limit: Option<u64>,
    /// CPU limit in CPUs (e.g. 1.5).
    #[arg(long, value_name = "N", value_parser = parse_cpus)]
    pub cpus: Option<f64>,
    /// Network: none (own namespace, loopback only) or host (default: the policy's).
    #[arg(long, value_name = "MODE", value_parser = parse_network)]
    pub network: Option<NetworkMode>,
    /// The confinement policy: a builtin name (default, strict, permissive) or a policy file.
    #[arg(long, value_name = "NAME|FILE", default_value = "default")]
    pub policy: String,
    #[command(flatten)]
    pub overrides: OverrideArgs,
    /// Fail instead of running when landlock cannot be fully enforced on this kernel.
    #[arg(long)]
    pub require_landlock: bool,
    /// Run rsafe's init as pid 1 (reaps zombies, forwards signals); false makes the command
    /// pid 1.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub init: bool,
    /// A rootfs directory (a path: absolute, or starting with ./).
    pub target: String,
    /// The command and its arguments.
    #[arg(allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    spec::parse_size(s).map_err(|e| e.to_string())
}

fn parse_cpus(s: &str) -> Result<f64, String> {
    spec::parse_cpus(s).map_err(|e| e.to_string())
}

fn parse_network(s: &str) -> Result<NetworkMode, String> {
    match s {
        "none" => Ok(NetworkMode::None),
        "host" => Ok(NetworkMode::Host),
        _ => Err("expected none or host".into()),
    }
}

/// Runs the container and returns the workload's exit code.
pub fn run(args: RunArgs, global: &Global) -> anyhow::Result<i32> {
    let store = global.store()?;
    let target = PathBuf::from(&args.target);
    if !target.is_dir() {
        bail!("{}: not a rootfs directory", args.target);
    }
    let rootfs = target.canonicalize().with_context(|| args.target.clone())?;
    let cwd = std::env::current_dir().context("current directory")?;

    let flags = ProcessOverrides {
        entrypoint: args.entrypoint.clone(),
        args: args.command.clone(),
        env: args.env.clone(),
        env_files: args.env_file.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        terminal: args.tty,
        stdin: args.interactive,
    };
    let process = spec::merge_process(&ImageDefaults::default(), &flags, &|k| {
        std::env::var(k).ok()
    })?;
    if let Some(h) = &args.hostname {
        spec::check_hostname(h)?;
    }
    let mut mounts = Vec::new();
    for v in &args.volume {
        mounts.push(spec::parse_volume(v, &cwd)?);
    }
    for t in &args.tmpfs {
        mounts.push(spec::parse_tmpfs(t)?);
    }
    let policy = effective_policy(&args.policy, &args.overrides)?;
    let network = args.network.unwrap_or(policy.network);
    let mut warnings = policy.warnings();
    if network == NetworkMode::Host && policy.network != NetworkMode::Host {
        warnings.push("the container shares the host's network (--network host)".to_string());
    }
    let limits = Limits {
        memory: args.memory.or(policy.limits.memory),
        pids: args.pids_limit.or(policy.limits.pids),
        cpus: args.cpus.or(policy.limits.cpus),
    };
    let spec = Spec {
        rootfs: RootfsSpec {
            lowers: vec![rootfs],
            read_only: args.read_only,
        },
        process,
        hostname: args.hostname.clone(),
        mounts,
        network,
        limits,
        init: args.init,
        masked_paths: policy.masked_paths.clone(),
        readonly_paths: policy.readonly_paths.clone(),
        confinement: Confinement::from_policy(&policy, args.require_landlock),
    };
    let request = RunRequest {
        spec,
        store_root: store.root().to_path_buf(),
        image: args.target.clone(),
        name: args.name.clone(),
        remove: args.rm,
    };
    let verbose = args.verbose || global.verbose;
    // Never panic on a closed stderr (`rsafe run … 2>&1 | head`): the container must still be
    // waited for and cleaned up.
    let say = |line: String| {
        let _ = writeln!(std::io::stderr(), "{line}");
    };
    let mut notify = |note: Note| match note {
        Note::Warning(w) => say(format!("rsafe: warning: {w}")),
        Note::Info(i) if verbose => say(format!("rsafe: {i}")),
        Note::Info(_) => {}
    };
    for w in warnings {
        notify(Note::Warning(w));
    }
    match process::run(request, &mut notify) {
        Ok(code) => Ok(code),
        Err(e) => {
            // The container's own failure codes (126, 127) are the result, not rsafe's 125.
            let code = e.exit_code();
            say(format!("rsafe: {e}"));
            Ok(code)
        }
    }
}
