//! `rsafe top`: which host processes are a running container's, for `ps` to show (as `docker
//! top` asks `ps` about the pids of a container's cgroup).
//!
//! The container's cgroup says it when it has one. A rootless container on a host that
//! delegates no cgroup has none: then its processes are those in its pid namespace (whose
//! `/proc/PID/ns/pid` is its first process's: what `exec` starts in it too) and the first
//! process's descendants (found by their parent pid, which needs no permission to read, for
//! processes whose namespace link the caller may not read).

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt;

use super::state::State;

/// Why the processes cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    /// docker's wording.
    #[error("container {0} is not running")]
    NotRunning(String),
}

/// The host pids of container `name`'s processes, sorted, its first process among them.
pub fn container_pids(state: &State, name: &str) -> Result<Vec<i32>, TopError> {
    let first = match state.first_process() {
        Some(p) if p.is_alive() => p.pid,
        _ => return Err(TopError::NotRunning(name.to_string())),
    };
    if let Some(cgroup) = &state.cgroup {
        let pids = cgroup.pids();
        if !pids.is_empty() {
            return Ok(pids);
        }
    }
    Ok(in_namespace_or_below(first).into_iter().collect())
}

/// `first` and every process in its pid namespace (unless that is this process's own: a
/// container sharing the host's) or descended from it.
fn in_namespace_or_below(first: i32) -> BTreeSet<i32> {
    let ns = |pid: &str| {
        std::fs::metadata(format!("/proc/{pid}/ns/pid"))
            .ok()
            .map(|m| (m.dev(), m.ino()))
    };
    let theirs = ns(&first.to_string()).filter(|n| Some(*n) != ns("self"));
    let mut parents: HashMap<i32, i32> = HashMap::new();
    let mut out = BTreeSet::from([first]);
    for pid in all_pids() {
        if let Some(ppid) = parent_of(pid) {
            parents.insert(pid, ppid);
        }
        if theirs.is_some() && ns(&pid.to_string()) == theirs {
            out.insert(pid);
        }
    }
    for &pid in parents.keys() {
        if descends_from(pid, first, &parents) {
            out.insert(pid);
        }
    }
    out
}

/// Whether `pid`'s chain of parents reaches `ancestor`.
fn descends_from(mut pid: i32, ancestor: i32, parents: &HashMap<i32, i32>) -> bool {
    // A chain longer than the pid space is a loop (pids reused while reading).
    for _ in 0..parents.len() {
        match parents.get(&pid) {
            Some(&p) if p == ancestor => return true,
            Some(&p) if p > 0 => pid = p,
            _ => return false,
        }
    }
    false
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Field 4 of `/proc/PID/stat`.
fn parent_of(pid: i32) -> Option<i32> {
    parse_ppid(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_ppid(stat: &str) -> Option<i32> {
    // The command name may hold spaces and parentheses: count from its end.
    let after = stat.get(stat.rfind(')')? + 2..)?;
    after.split(' ').nth(1)?.parse().ok()
}

/// The lines of `ps` output for the processes in `pids`: the header, then each line whose PID
/// column is one of them (a thread line, PID `-`, goes with its process's), as docker filters
/// them. `None` when the header has no PID column.
pub fn filter_ps(output: &str, pids: &[i32]) -> Option<Vec<String>> {
    let mut lines = output.lines();
    let header = lines.next()?;
    let column = header.split_whitespace().position(|t| t == "PID")?;
    let mut out = vec![header.to_string()];
    let mut previous_kept = false;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let field = line.split_whitespace().nth(column).unwrap_or("");
        if field == "-" {
            if previous_kept {
                out.push(line.to_string());
            }
            continue;
        }
        previous_kept = field.parse().is_ok_and(|p: i32| pids.contains(&p));
        if previous_kept {
            out.push(line.to_string());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_lines_are_kept_by_their_pid_column() {
        let ps = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                  root           1       0  0 10:00 ?        00:00:01 /sbin/init\n\
                  100000      4242    4241  0 10:01 ?        00:00:00 sleep 1000\n\
                  100000      4250    4242  0 10:01 ?        00:00:00 sh -c a b\n";
        let kept = filter_ps(ps, &[4242, 4250]).unwrap();
        assert_eq!(kept.len(), 3);
        assert!(kept[1].contains("sleep 1000") && kept[2].contains("sh -c"));
        // `ps -eLf`-like thread lines (`-` for the pid) follow their process.
        let threads = "PID TID CMD\n7 - a\n- 8 t\n9 - b\n- 10 u\n";
        assert_eq!(
            filter_ps(threads, &[9]).unwrap(),
            ["PID TID CMD", "9 - b", "- 10 u"]
        );
        assert_eq!(filter_ps("COMMAND\nsh\n", &[1]), None);
    }

    #[test]
    fn children_are_found_by_their_parents() {
        let me = std::process::id() as i32;
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert_eq!(parent_of(pid), Some(me));
        let found = in_namespace_or_below(me);
        // This process shares the host's pid namespace: only its descendants count.
        assert!(found.contains(&pid) && found.contains(&me), "{found:?}");
        assert!(!found.contains(&1));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(parse_ppid("12 (a) b) c) S 7 12 12"), Some(7));
    }
}
