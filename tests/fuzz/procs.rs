//! Targets for `/proc` files, as `rsafe ps` and the running-container audit read them: a fake
//! procfs with one file mutated.

use std::fs;
use std::path::Path;

use rsafe::audit::procs::Process;
use rsafe::audit::procs::host::read_limit;
use rsafe::audit::procs::mountinfo;
use rsafe::audit::procs::process::{container_uid, parse_cgroup};

use crate::engine::{Outcome, Target, one_line_naming, signature};

const PROC_DICT: &[&[u8]] = &[
    b"Uid:\t",
    b"Gid:\t",
    b"CapEff:\t",
    b"CapBnd:\t",
    b"NoNewPrivs:\t",
    b"Seccomp:\t",
    b"NSpid:\t",
    b"0000003fffffffff",
    b"ffffffffffffffff",
    b"(",
    b")",
    b") ",
    b" - ",
    b" shared:",
    b" master:",
    b" propagate_from:",
    b"\\040",
    b"\\134",
    b"0::/",
    b":name=systemd:",
    b"/docker/",
    b"/kubepods/",
    b".scope",
    b"unlimited",
    b"Max open files",
    b"\t",
    b" ",
    b"\n",
];

fn target(name: &'static str, corpus: &'static [&'static str]) -> Target {
    Target {
        name,
        corpus,
        extra: &[],
        dict: PROC_DICT,
        iters: 700,
        max_len: 8 << 10,
        fixup: None,
        known: &[],
    }
}

/// The procfs file each target mutates.
pub fn targets() -> [(Target, &'static str); 6] {
    [
        (target("proc-status", &["proc-status"]), "status"),
        (target("proc-stat", &["proc-stat"]), "stat"),
        (target("proc-cgroup", &["proc-cgroup"]), "cgroup"),
        (target("proc-mountinfo", &["proc-mountinfo"]), "mountinfo"),
        (target("proc-uid_map", &["proc-uid_map"]), "uid_map"),
        (target("proc-limits", &["proc-limits"]), "limits"),
    ]
}

fn seed(name: &str) -> Vec<u8> {
    let dir = crate::engine::repo()
        .join("tests/fuzz-corpus")
        .join(format!("proc-{name}"));
    let first = fs::read_dir(&dir)
        .ok()
        .and_then(|d| d.flatten().map(|e| e.path()).min())
        .unwrap_or_default();
    fs::read(first).unwrap_or_default()
}

/// Writes `/proc/4242/` with every file from the corpus and `file` replaced by `input`.
fn fake_proc(root: &Path, file: &str, input: &[u8]) -> std::io::Result<()> {
    let dir = root.join("4242");
    fs::create_dir_all(dir.join("ns"))?;
    for name in ["status", "stat", "cgroup", "mountinfo", "uid_map", "limits"] {
        let bytes = if name == file {
            input.to_vec()
        } else {
            seed(name)
        };
        fs::write(dir.join(name), bytes)?;
    }
    fs::write(dir.join("cmdline"), b"/bin/sh\0-c\0sleep 1\0")?;
    for (kind, inode) in [("pid", 7), ("mnt", 8), ("user", 9), ("net", 10)] {
        std::os::unix::fs::symlink(format!("{kind}:[{inode}]"), dir.join("ns").join(kind))?;
    }
    Ok(())
}

/// One procfs file mutated, then everything that reads it: `Process::read` (stat, status,
/// cgroup), `mountinfo::parse`, the uid map and the limits parser.
pub fn proc_file(file: &str, input: &[u8]) -> Outcome {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    fake_proc(dir.path(), file, input).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(input);
    let lines = text.lines().count();
    let mut sig = String::new();
    match Process::read(dir.path(), 4242) {
        Ok(p) => {
            if p.cgroups.len() > lines.max(seed("cgroup").len()) {
                return Err(format!("{} cgroup entries", p.cgroups.len()));
            }
            let _ = (p.program(), p.command());
            sig.push_str("read ok");
        }
        Err(e) => {
            let msg = e.to_string();
            one_line_naming(&msg, "4242")?;
            sig.push_str(&signature(
                "read error: ",
                &msg.replace(&dir.path().display().to_string(), ""),
            ));
        }
    }
    match file {
        "mountinfo" => {
            let mounts = mountinfo::parse(&text);
            if mounts.len() > lines {
                return Err(format!("{} mounts from {lines} lines", mounts.len()));
            }
            sig.push_str(&format!(" mounts {}", mounts.len().min(4)));
        }
        "cgroup" => {
            let entries = parse_cgroup(&text);
            if entries.len() > lines {
                return Err(format!(
                    "{} cgroup entries from {lines} lines",
                    entries.len()
                ));
            }
            sig.push_str(&format!(" cgroups {}", entries.len().min(4)));
        }
        "uid_map" => {
            let uid = container_uid(dir.path(), 4242, 0);
            sig.push_str(&format!(" uid {:?}", uid.map(|u| u.min(2))));
        }
        "limits" => {
            for name in ["Max processes", "Max open files", "Max address space"] {
                let v = read_limit(&text, name);
                sig.push_str(&format!(" {}", v.map_or(0, |v| v.map_or(1, |_| 2))));
            }
        }
        _ => {}
    }
    Ok(sig)
}
