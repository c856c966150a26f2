//! `rsafe stats`: what rsafe's running containers use, CPU, memory and processes, in docker's
//! columns, from their cgroups (see [`crate::runtime::stats`]).
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};

use anyhow::Result;
use serde_json::json;

use super::Global;
use super::format::table;
use super::images::OutputFormat;
use crate::runtime::state::{self, ContainerDir, Phase, State};
use crate::runtime::stats::{self, Sample, Source, cpu_percent, host_memory};

/// Show what running containers use: CPU %, memory, processes
///
/// Columns as docker's: CONTAINER ID, NAME, CPU %, MEM USAGE / LIMIT, MEM %, PIDS. CPU % is a
/// rate between two samples, in percent of one CPU. Memory is the memory cgroup's usage less
/// the inactive page cache, as docker counts it; a container without a memory cgroup (no
/// --memory, or rootless on cgroup v1) says so in its row, and then CPU and PIDS come from its
/// processes. Refreshes every second until interrupted, unless --no-stream.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Print one sample and exit.
    #[arg(long)]
    pub no_stream: bool,
    /// Stopped containers too (their rows are empty).
    #[arg(short, long)]
    pub all: bool,
    /// Output format (json: one object per container per sample, a line each).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Containers by name or id (default: every running one).
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub fn run(args: StatsArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let chosen: Vec<(ContainerDir, State)> = if args.containers.is_empty() {
        state::list(store.root())?
            .into_iter()
            .filter(|(d, s)| args.all || d.phase(s) == Phase::Up)
            .collect()
    } else {
        let mut found = Vec::new();
        for name in &args.containers {
            found.push(state::find(store.root(), name)?);
        }
        found
    };
    let host = host_memory();
    let clear = !args.no_stream && std::io::stdout().is_terminal();
    let mut before: Vec<Option<Sample>> = chosen.iter().map(|(_, s)| stats::sample(s)).collect();
    loop {
        let interval = match args.no_stream {
            true => stats::SAMPLE_INTERVAL,
            false => std::time::Duration::from_secs(1),
        };
        std::thread::sleep(interval);
        let after: Vec<Option<Sample>> = chosen.iter().map(|(_, s)| stats::sample(s)).collect();
        let rows: Vec<Row> = chosen
            .iter()
            .zip(before.iter().zip(&after))
            .map(|((_, st), (b, a))| Row::of(st, b.as_ref(), a.as_ref(), host))
            .collect();
        let text = match args.format {
            OutputFormat::Table => render_table(&rows),
            OutputFormat::Json => rows.iter().map(|r| r.json() + "\n").collect(),
        };
        let mut out = std::io::stdout().lock();
        let prefix = if clear { "\x1b[2J\x1b[H" } else { "" };
        // A closed pipe (`rsafe stats | head`) ends the command quietly.
        if write!(out, "{prefix}{text}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return Ok(0);
        }
        if args.no_stream {
            return Ok(0);
        }
        before = after;
    }
}

/// One container's numbers between two samples.
#[derive(Debug)]
struct Row {
    id: String,
    name: String,
    /// `None`: not running (at either sample).
    cpu: Option<f64>,
    memory: Option<stats::Memory>,
    /// The limit shown: the cgroup's, else the host's memory (as docker).
    limit: Option<u64>,
    pids: Option<u64>,
    /// Why a number is missing.
    note: Option<&'static str>,
}

impl Row {
    fn of(st: &State, before: Option<&Sample>, after: Option<&Sample>, host: Option<u64>) -> Row {
        let mut row = Row {
            id: st.short_id().to_string(),
            name: st.name.clone().unwrap_or_default(),
            cpu: None,
            memory: None,
            limit: None,
            pids: None,
            note: Some("not running"),
        };
        let (Some(b), Some(a)) = (before, after) else {
            return row;
        };
        row.cpu = Some(cpu_percent(b, a));
        row.pids = Some(a.pids);
        row.memory = a.memory;
        row.limit = a.memory.and_then(|m| m.limit).or(host);
        row.note = match (a.memory, a.source) {
            (Some(_), _) => None,
            (None, Source::Processes) => Some("no cgroup: rootless on cgroup v1"),
            (None, Source::Cgroup) => Some("no memory cgroup: run without --memory"),
        };
        row
    }

    fn mem_percent(&self) -> Option<f64> {
        let usage = self.memory?.usage;
        let limit = self.limit.filter(|l| *l > 0)?;
        Some(usage as f64 / limit as f64 * 100.0)
    }

    fn cells(&self) -> Vec<String> {
        let dash = || "--".to_string();
        let mem = match (self.memory, self.note) {
            (Some(m), _) => format!(
                "{} / {}",
                binary_size(m.usage),
                self.limit.map_or_else(dash, binary_size)
            ),
            (None, Some(note)) => format!("-- ({note})"),
            (None, None) => dash(),
        };
        vec![
            self.id.clone(),
            self.name.clone(),
            self.cpu.map_or_else(dash, |c| format!("{c:.2}%")),
            mem,
            self.mem_percent().map_or_else(dash, |p| format!("{p:.2}%")),
            self.pids.map_or_else(dash, |p| p.to_string()),
        ]
    }

    fn json(&self) -> String {
        json!({
            "ID": self.id,
            "Name": self.name,
            "CPUPerc": self.cpu,
            "MemUsage": self.memory.map(|m| m.usage),
            "MemLimit": self.limit,
            "MemPerc": self.mem_percent(),
            "PIDs": self.pids,
            "Note": self.note,
        })
        .to_string()
    }
}

fn render_table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(Row::cells).collect();
    table(
        &[
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "PIDS",
        ],
        &cells,
    )
}

/// `3.48MiB`, `7.67GiB`, `512B`: docker's binary sizes in `stats`.
fn binary_size(bytes: u64) -> String {
    match super::format::binary_units(bytes) {
        (_, "B") => format!("{bytes}B"),
        (value, unit) => format!("{value:.2}{unit}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_stats() {
        assert_eq!(binary_size(512), "512B");
        assert_eq!(binary_size(64 << 20), "64.00MiB");
        assert_eq!(binary_size(3_650_000), "3.48MiB");
    }

    #[test]
    fn rows_say_why_a_number_is_missing() {
        let row = Row {
            id: "abc".into(),
            name: "web".into(),
            cpu: Some(1.5),
            memory: None,
            limit: Some(1 << 30),
            pids: Some(3),
            note: Some("no cgroup: rootless on cgroup v1"),
        };
        assert_eq!(
            row.cells(),
            [
                "abc",
                "web",
                "1.50%",
                "-- (no cgroup: rootless on cgroup v1)",
                "--",
                "3"
            ]
        );
        let row = Row {
            memory: Some(stats::Memory {
                usage: 16 << 20,
                limit: Some(64 << 20),
            }),
            limit: Some(64 << 20),
            note: None,
            ..row
        };
        assert_eq!(row.cells()[3..], ["16.00MiB / 64.00MiB", "25.00%", "3"]);
        assert!(row.json().contains("\"MemPerc\":25.0"), "{}", row.json());
    }
}
