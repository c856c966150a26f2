//! Test support for the confinement layer: a small C probe that makes the syscalls busybox
//! cannot, built once with `cc`, and a parser for its `NAME=RESULT` lines.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use super::{fixture, have, sh, source_key, tool};

const PROBE_SOURCE: &str = include_str!("confine_probe.c");

/// The compiled probe, or None (after `have` said so) when no C compiler is installed.
pub fn probe() -> Option<PathBuf> {
    if !have("a C compiler (cc) for the confinement probe", tool("cc")) {
        return None;
    }
    let key = source_key(PROBE_SOURCE.as_bytes());
    let dir = fixture(&format!("confine-probe-{key}"), |dir| {
        fs::create_dir_all(dir).unwrap();
        let src = dir.join("probe.c");
        fs::write(&src, PROBE_SOURCE).unwrap();
        sh(Command::new("cc")
            .args(["-O1", "-Wall", "-Werror", "-o"])
            .arg(dir.join("probe"))
            .arg(&src));
    });
    Some(dir.join("probe"))
}

/// A setuid-root copy of the probe (for the no_new_privs test), in a directory every user can
/// reach. Needs root.
pub fn setuid_probe() -> Option<PathBuf> {
    let probe = probe()?;
    let dir = probe.parent()?.join("setuid");
    fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("probe-suid");
    if !copy.exists() {
        let tmp = dir.join(format!(".probe-suid.{}", std::process::id()));
        fs::copy(&probe, &tmp).unwrap();
        sh(Command::new("chown").arg("0:0").arg(&tmp));
        sh(Command::new("chmod").arg("4755").arg(&tmp));
        fs::rename(&tmp, &copy).unwrap();
    }
    sh(Command::new("chmod").arg("755").arg(&dir));
    Some(copy)
}

/// The probe's `NAME=RESULT` lines as a map.
pub fn results(stdout: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
