//! `rsafe ps`: the containers running on this host, whatever started them, found from /proc;
//! with `-a`, rsafe's own containers from its store, stopped ones included (like `docker ps -a`).

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Global;
use super::format::{seconds_ago, table, truncate};
use super::images::OutputFormat;
use crate::audit::procs::{Container, DiscoverOptions, Discovery, discover_with};
use crate::audit::secrets::SecretScanner;
use crate::runtime::state::{self, ContainerDir, Phase, State};

/// List the containers running on this host
///
/// Containers of any runtime (rsafe, docker, containerd, CRI-O, podman, runc, crun, LXC,
/// Kubernetes, bubblewrap, unshare) are found from /proc alone, without asking a daemon:
/// processes are grouped by cgroup and namespaces, and named from the runtimes' state files.
/// Columns: RUNTIME ID NAME PID PROCS USER IMAGE COMMAND. USER is the workload's user inside the
/// container, with its host uid when that differs. Processes rsafe may not inspect (other
/// users', when not run as root) are counted on stderr.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// The procfs to read: the host's /proc mounted elsewhere when rsafe runs in a container.
    #[arg(long, value_name = "DIR", default_value = "/proc")]
    pub proc: PathBuf,
    /// rsafe's own containers from the store (--root), stopped and dead ones included:
    /// CONTAINER ID, NAME, IMAGE, COMMAND, CREATED, STATUS, PORTS (a running container's
    /// published ports, as docker's: 127.0.0.1:8080->80/tcp) (with -q, only the ids).
    #[arg(short, long)]
    pub all: bool,
}

/// One container, as the listing shows it (also its JSON form).
#[derive(Debug, Serialize)]
struct Row<'a> {
    runtime: &'a str,
    id: &'a str,
    name: Option<&'a str>,
    pid: u32,
    pids: &'a [u32],
    user: Option<&'a str>,
    uid: Option<u32>,
    host_uid: u32,
    image: Option<&'a str>,
    rootfs: Option<String>,
    pod: Option<&'a str>,
    command: String,
}

impl<'a> Row<'a> {
    fn of(c: &'a Container, scanner: &SecretScanner) -> Row<'a> {
        Row {
            runtime: c.runtime.as_str(),
            id: &c.id,
            name: c.name.as_deref().filter(|n| *n != c.id),
            pid: c.init_pid,
            pids: &c.pids,
            user: c.user.as_deref(),
            uid: c.uid,
            host_uid: c.host_uid,
            image: c.image.as_deref(),
            rootfs: c.rootfs.as_ref().map(|p| p.display().to_string()),
            pod: c.pod.as_deref(),
            command: c
                .workload()
                .map(|p| redact_command(&p.command(), scanner))
                .unwrap_or_default(),
        }
    }
}

#[derive(Serialize)]
struct Listing<'a> {
    containers: Vec<Row<'a>>,
    inaccessible: Vec<Inaccessible<'a>>,
    /// Set when the procfs hides other users' processes altogether.
    hidden: Option<&'a str>,
    /// Which process stood for the host's namespaces.
    host_reference: String,
}

#[derive(Serialize)]
struct Inaccessible<'a> {
    pid: u32,
    reason: &'a str,
}

/// Prints the listing.
pub fn run(args: PsArgs, global: &Global) -> Result<i32> {
    if args.all {
        return list_store_containers(global);
    }
    let mut opts = DiscoverOptions::new(&args.proc);
    if let Some(root) = &global.root
        && !opts.rsafe_stores.contains(root)
    {
        opts.rsafe_stores.push(root.clone());
    }
    let discovery = discover_with(&opts)
        .with_context(|| format!("cannot list containers in {}", args.proc.display()))?;
    let scanner = SecretScanner::builtin().context("cannot load the builtin secret rules")?;
    match args.format {
        OutputFormat::Json => {
            let listing = Listing {
                containers: discovery
                    .containers
                    .iter()
                    .map(|c| Row::of(c, &scanner))
                    .collect(),
                inaccessible: discovery
                    .inaccessible
                    .iter()
                    .map(|(pid, reason)| Inaccessible { pid: *pid, reason })
                    .collect(),
                hidden: discovery.hidden.as_deref(),
                host_reference: discovery.host.to_string(),
            };
            emit(&format!("{}\n", serde_json::to_string_pretty(&listing)?))?;
        }
        OutputFormat::Table => {
            emit(&render_table(&discovery, &scanner))?;
            if !global.quiet {
                if let Some(hidden) = &discovery.hidden {
                    eprintln!("rsafe: {hidden}");
                }
                if let Some(note) = inaccessible_note(&discovery) {
                    eprintln!("{note}");
                }
            }
        }
    }
    Ok(0)
}

/// Writes to stdout; a reader that went away (`rsafe ps | head`) is not an error.
fn emit(text: &str) -> Result<()> {
    match io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("cannot write to stdout"),
        _ => Ok(()),
    }
}

fn render_table(d: &Discovery, scanner: &SecretScanner) -> String {
    let rows: Vec<Vec<String>> = d
        .containers
        .iter()
        .map(|c| {
            let r = Row::of(c, scanner);
            let user = match (r.user, r.uid) {
                (Some(u), Some(uid)) if uid != r.host_uid => format!("{u} (host {})", r.host_uid),
                (Some(u), _) => u.to_owned(),
                (None, _) => format!("host {}", r.host_uid),
            };
            vec![
                r.runtime.to_owned(),
                truncate(c.short_id(), 24),
                truncate(r.name.unwrap_or("-"), 24),
                r.pid.to_string(),
                r.pids.len().to_string(),
                truncate(&user, 24),
                truncate(r.image.unwrap_or("-"), 40),
                truncate(&r.command, 40),
            ]
        })
        .collect();
    table(
        &[
            "RUNTIME", "ID", "NAME", "PID", "PROCS", "USER", "IMAGE", "COMMAND",
        ],
        &rows,
    )
}

/// A command line with every argument that holds a secret replaced by `[redacted]`: a command
/// line is readable by every user of the host, but rsafe does not repeat the secret.
fn redact_command(command: &str, scanner: &SecretScanner) -> String {
    let hits = scanner.scan_text(command);
    if hits.is_empty() {
        return command.to_owned();
    }
    if hits
        .iter()
        .any(|h| h.line.is_some_and(|l| l > 1) || h.column.is_none())
    {
        return "[command redacted: it holds a secret]".to_owned();
    }
    let columns: Vec<usize> = hits
        .iter()
        .filter_map(|h| h.column.map(|c| c as usize))
        .collect();
    // Columns are 1-based character positions; an argument covers [start, start + len).
    let mut start = 1;
    let mut out = Vec::new();
    for arg in command.split(' ') {
        let len = arg.chars().count();
        let secret = columns.iter().any(|c| (start..start + len).contains(c));
        out.push(if secret { "[redacted]" } else { arg });
        start += len + 1;
    }
    out.join(" ")
}

/// One line about processes that could not be inspected, if any.
fn inaccessible_note(d: &Discovery) -> Option<String> {
    let (first, reason) = d.inaccessible.first()?;
    let n = d.inaccessible.len();
    let hint = if rustix::process::geteuid().is_root() {
        ""
    } else {
        "; run as root to see every container"
    };
    Some(format!(
        "rsafe: {n} process{} could not be inspected (pid {first}: {}){hint}",
        if n == 1 { "" } else { "es" },
        truncate(reason, 80)
    ))
}

/// What `ps -a` calls a container's state. A container whose rsafe was killed before it could
/// record the exit shows as `Dead` (`rsafe rm` cleans it up), and so does a directory rsafe
/// was killed while making.
fn status_text(dir: &ContainerDir, state: &State) -> String {
    match dir.phase(state) {
        Phase::Exited(code) if state.oom_killed => format!("Exited ({code}, out of memory)"),
        Phase::Exited(code) => format!("Exited ({code})"),
        // As docker's `Up … (Paused)`.
        Phase::Up if crate::runtime::pause::is_paused(state) => "Up (Paused)".to_string(),
        Phase::Up => "Up".to_string(),
        Phase::Created => "Created".to_string(),
        Phase::Dead => "Dead".to_string(),
    }
}

/// `ps -a`: every container in the store, newest first.
fn list_store_containers(global: &Global) -> Result<i32> {
    let store = global.store()?;
    let now = SystemTime::now();
    // Containers run with --rm whose rsafe was killed are removed, as it would have done, and
    // the network addresses of any killed one are freed.
    state::sweep(store.root())?;
    crate::runtime::netstore::NetStore::new(store.root()).reclaim_all()?;
    let rows: Vec<Vec<String>> = state::list(store.root())?
        .into_iter()
        .rev()
        .map(|(dir, s)| {
            vec![
                s.short_id().to_string(),
                s.name.clone().unwrap_or_default(),
                truncate(&s.image, 30),
                truncate(&format!("\"{}\"", s.command.join(" ")), 30),
                seconds_ago(s.created as i64, now),
                status_text(&dir, &s),
                // As docker's: the ports a running container holds (a stopped one holds none).
                s.ports
                    .iter()
                    .filter(|_| s.is_alive())
                    .map(|p| p.short())
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    if global.quiet {
        let ids: String = rows.iter().map(|r| format!("{}\n", r[0])).collect();
        emit(&ids)?;
    } else {
        let headers = [
            "CONTAINER ID",
            "NAME",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
        ];
        emit(&table(&headers, &rows))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_commands_are_redacted() {
        let scanner = SecretScanner::builtin().unwrap();
        let key = "HVJWDBt2hWdQZUm14QhoxhLPAbQcEFUV2fsjGHb6";
        let cmd = format!("deploy --region eu aws_secret_access_key={key} --verbose");
        let shown = redact_command(&cmd, &scanner);
        assert!(!shown.contains(key), "{shown}");
        assert_eq!(shown, "deploy --region eu [redacted] --verbose");
        assert_eq!(redact_command("sleep 1000", &scanner), "sleep 1000");
    }
}
