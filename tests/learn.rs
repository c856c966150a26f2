//! `rsafe run --learn`: a policy learned from a run, then enforced on the same workload, as
//! root and as an unprivileged user (with and without subordinate id ranges). Also the merge
//! of two runs, `rsafe policy diff`, a workload that lies about its paths (TOCTOU), and a bad
//! output file.
#[allow(dead_code)]
#[path = "support/run.rs"]
mod run_support;
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use run_support::{Caller, Output, for_each_caller, rsafe_cmd, run};

const READS: &str = "cat /etc/passwd; ls /usr";

/// A directory the caller can write its learned policy to.
fn out_dir() -> tempfile::TempDir {
    let dir = support::temp_root();
    support::sh(Command::new("chmod").arg("777").arg(dir.path()));
    dir
}

/// `rsafe run [flags] ROOTFS sh -c script` as `caller`.
fn sh_in(caller: Caller, store: &Path, flags: &[&str], script: &str) -> Output {
    let rootfs = caller.rootfs();
    let mut args: Vec<&str> = flags.to_vec();
    args.extend([rootfs.to_str().unwrap(), "/bin/sh", "-c", script]);
    run(caller, store, &args)
}

/// The syscalls `rsafe policy show POLICY --syscalls` lists as allowed (whatever the arguments
/// or for some).
fn allowed_syscalls(caller: Caller, store: &Path, policy: &str) -> BTreeSet<String> {
    let out = rsafe_cmd(caller, store, &["policy", "show", policy, "--syscalls"]);
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("allow ").or_else(|| l.strip_prefix("args ")))
        .map(str::to_string)
        .collect()
}

/// The value list of `key` in the learned TOML (entries one a line, as the writer puts them).
fn toml_list(text: &str, key: &str) -> Vec<String> {
    let table: toml::Table = text.parse().unwrap();
    table["landlock"][key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
        .collect()
}

fn learn(caller: Caller, store: &Path, out: &Path, script: &str) -> Output {
    let out = sh_in(
        caller,
        store,
        &["--rm", "--learn", out.to_str().unwrap()],
        script,
    );
    assert_eq!(out.code, 0, "{caller:?}: {out:?}");
    out
}

#[test]
fn a_learned_policy_runs_the_workload_it_was_learned_from_and_nothing_more() {
    for_each_caller(|caller, store| {
        let dir = out_dir();
        let policy = dir.path().join("learned.toml");
        let learned = learn(caller, store, &policy, READS);
        assert!(
            learned.stdout.contains("root:x:0:0"),
            "{caller:?}: {learned:?}"
        );
        assert!(
            learned.stderr.contains("rsafe: learned "),
            "{caller:?}: {learned:?}"
        );
        let text = std::fs::read_to_string(&policy).unwrap();
        // The summary counts the argument classes the file allows.
        let classes = text
            .split("[seccomp.args]")
            .nth(1)
            .and_then(|args| args.split("\n[").next())
            .map_or(0, |args| {
                args.lines()
                    .filter(|l| l.trim_start().starts_with('"'))
                    .count()
            });
        assert!(
            learned
                .stderr
                .contains(&format!(" syscalls, {classes} argument classes, ")),
            "{caller:?}: {classes} classes in {text}\n{learned:?}"
        );
        assert!(
            dir.path().join("learned.seccomp.json").exists(),
            "{caller:?}: the profile is written beside the policy"
        );

        // Smaller than the default: the calls of cat and ls, not 280.
        let p = policy.to_str().unwrap();
        let syscalls = allowed_syscalls(caller, store, p);
        let default = allowed_syscalls(caller, store, "default");
        for needed in ["openat", "execve", "getdents64", "write"] {
            assert!(
                syscalls.contains(needed),
                "{caller:?}: {needed} in {syscalls:?}"
            );
        }
        assert!(
            syscalls.is_subset(&default),
            "{caller:?}: never more than the default"
        );
        assert!(
            syscalls.len() * 4 < default.len(),
            "{caller:?}: {} learned of {} default",
            syscalls.len(),
            default.len()
        );
        // Paths reduced to top-level directories (in /etc the file read), /usr only listed,
        // nothing written.
        let read = toml_list(&text, "read_exec");
        for dir in ["/etc/passwd", "/bin"] {
            assert!(
                read.contains(&dir.to_string()),
                "{caller:?}: {dir} in {read:?}"
            );
        }
        assert!(read.len() <= 6, "{caller:?}: {read:?}");
        assert_eq!(toml_list(&text, "list"), ["/usr"], "{caller:?}: {text}");
        assert!(
            toml_list(&text, "read_write").is_empty(),
            "{caller:?}: {text}"
        );
        assert!(text.contains("grant_root = false"), "{caller:?}: {text}");
        assert!(text.contains("# run 1: "), "{caller:?}: {text}");

        // The same command under it: the same output.
        let again = sh_in(caller, store, &["--rm", "--policy", p], READS);
        assert_eq!(again.code, 0, "{caller:?}: {again:?}");
        assert_eq!(again.stdout, learned.stdout, "{caller:?}");

        // What it did not do is refused: a directory made (mkdir was never called), a
        // directory never read (landlock), a program never run.
        let mkdir = sh_in(caller, store, &["--rm", "--policy", p], "mkdir /tmp/x");
        assert_ne!(mkdir.code, 0, "{caller:?}: {mkdir:?}");
        let home = sh_in(caller, store, &["--rm", "--policy", p], "ls /home");
        assert_ne!(home.code, 0, "{caller:?}: {home:?}");
        assert!(
            home.stderr.contains("Permission denied"),
            "{caller:?}: {home:?}"
        );
        // And under the default policy both work: the learned policy made the difference.
        let free = sh_in(caller, store, &["--rm"], "mkdir /tmp/x && ls /home");
        assert_eq!(free.code, 0, "{caller:?}: {free:?}");
    });
}

/// The lines rsafe printed about denials.
fn denial_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("rsafe: denied: "))
        .collect()
}

#[test]
fn a_denial_under_a_learned_policy_is_reported_by_name_once() {
    for_each_caller(|caller, store| {
        let dir = out_dir();
        let policy = dir.path().join("learned.toml");
        let learned = learn(caller, store, &policy, READS);
        assert!(
            denial_lines(&learned.stderr).is_empty(),
            "{caller:?}: a learning run reports nothing: {learned:?}"
        );
        let text = std::fs::read_to_string(&policy).unwrap();
        assert!(text.contains("report_denials = true"), "{caller:?}: {text}");
        let p = policy.to_str().unwrap();
        let show = rsafe_cmd(caller, store, &["policy", "show", p]);
        assert!(
            show.stdout.contains("denials:      reported by name"),
            "{caller:?}: {show:?}"
        );

        // mkdir was never made while learning: refused with EPERM (the policy's default,
        // answered by rsafe), reported once by name and path although made twice; what was
        // learned still runs.
        let script = "cat /etc/passwd; mkdir /tmp/x; mkdir /tmp/y";
        let out = sh_in(caller, store, &["--rm", "--policy", p], script);
        assert!(out.stdout.contains("root:x:0:0"), "{caller:?}: {out:?}");
        assert_eq!(out.code, 1, "{caller:?}: mkdir's failure: {out:?}");
        assert_eq!(
            out.stderr
                .matches("can't create directory '/tmp/")
                .zip(out.stderr.matches("Operation not permitted"))
                .count(),
            2,
            "{caller:?}: both mkdirs refused with EPERM: {out:?}"
        );
        // busybox (static, x86_64) calls mkdir(2), not mkdirat(2).
        assert_eq!(
            denial_lines(&out.stderr),
            ["rsafe: denied: mkdir /tmp/x (not in policy)"],
            "{caller:?}: {out:?}"
        );

        // What the policy allows is not reported.
        let again = sh_in(caller, store, &["--rm", "--policy", p], READS);
        assert_eq!(again.code, 0, "{caller:?}: {again:?}");
        assert!(
            denial_lines(&again.stderr).is_empty(),
            "{caller:?}: {again:?}"
        );

        // A policy without the key (the default): the same denial is the workload's EPERM only.
        let plain = sh_in(caller, store, &["--rm"], "unshare -U true");
        assert_ne!(plain.code, 0, "{caller:?}: {plain:?}");
        assert!(
            plain.stderr.contains("Operation not permitted"),
            "{caller:?}: {plain:?}"
        );
        assert!(
            denial_lines(&plain.stderr).is_empty(),
            "{caller:?}: {plain:?}"
        );
    });
}

/// A copy of `caller`'s rootfs with what a file-denial test reads: `/etc/shadow` and
/// `/root/shadow` (fake entries), a symlink `/tmp/shadow-link` → `/root/shadow`, and
/// `/root/bad⏎␛[31mred`, a name with a newline and an escape sequence. Owned as the base's
/// `/etc` and `/root` are.
fn rootfs_with_secrets(caller: Caller) -> PathBuf {
    let base = caller.rootfs();
    let name = format!("{}-denyfiles", base.file_name().unwrap().to_string_lossy());
    support::fixture(&name, |dest| {
        support::sh(Command::new("cp").arg("-a").arg(&base).arg(dest));
        let shadow = dest.join("root/shadow");
        let odd = dest.join("root/bad\n\x1b[31mred");
        std::fs::write(&shadow, "root:*:19700:0:99999:7:::\n").unwrap();
        let etc_shadow = dest.join("etc/shadow");
        std::fs::write(&etc_shadow, "root:*:19701:0:99999:7:::\n").unwrap();
        let etc = format!("--reference={}", dest.join("etc").display());
        support::sh(Command::new("chown").arg(&etc).arg(&etc_shadow));
        std::fs::write(&odd, "odd\n").unwrap();
        let link = dest.join("tmp/shadow-link");
        std::os::unix::fs::symlink("/root/shadow", &link).unwrap();
        let reference = format!("--reference={}", dest.join("root").display());
        support::sh(
            Command::new("chown")
                .args(["-h", &reference])
                .arg(&shadow)
                .arg(&odd)
                .arg(&link),
        );
    })
}

#[test]
fn a_file_landlock_refuses_under_a_learned_policy_is_reported_by_name() {
    for_each_caller(|caller, store| {
        let rootfs = rootfs_with_secrets(caller);
        let rootfs = rootfs.to_str().unwrap();
        let dir = out_dir();
        let policy = dir.path().join("learned.toml");
        let p = policy.to_str().unwrap();
        let sh = |flags: &[&str], script: &str| {
            let mut args = flags.to_vec();
            args.extend([rootfs, "/bin/sh", "-c", script]);
            run(caller, store, &args)
        };
        // The shell's ways below (a listing, a command substitution) on what it may read.
        let workload = "cat /etc/passwd; ls /bin >/dev/null; cat \"$(printf /etc/%s passwd)\"";
        let learned = sh(&["--rm", "--learn", p], workload);
        assert_eq!(learned.code, 0, "{caller:?}: {learned:?}");

        // openat is in the learned profile: landlock, not seccomp, refuses /root/shadow,
        // with EACCES inside; rsafe names it once although it is opened twice. /etc/shadow
        // too: reading /etc/passwd learned that file, not all of /etc.
        let script =
            "cat /etc/passwd; cat /etc/shadow; cat /root/shadow; cat /root/shadow; ls /root";
        let out = sh(&["--rm", "--policy", p], script);
        assert!(out.stdout.contains("root:x:0:0"), "{caller:?}: {out:?}");
        assert!(!out.stdout.contains("19700"), "{caller:?}: {out:?}");
        assert!(!out.stdout.contains("19701"), "{caller:?}: {out:?}");
        assert!(
            out.stderr
                .contains("can't open '/etc/shadow': Permission denied"),
            "{caller:?}: {out:?}"
        );
        assert_ne!(out.code, 0, "{caller:?}: {out:?}");
        assert_eq!(
            out.stderr
                .matches("can't open '/root/shadow': Permission denied")
                .count(),
            2,
            "{caller:?}: {out:?}"
        );
        let denied = denial_lines(&out.stderr);
        let shadow = "rsafe: denied: openat /root/shadow (not in policy)";
        assert_eq!(
            denied.iter().filter(|l| **l == shadow).count(),
            1,
            "{caller:?}: {out:?}"
        );
        assert!(
            denied.contains(&"rsafe: denied: openat /root (not in policy)"),
            "{caller:?}: {out:?}"
        );
        assert!(
            denied.contains(&"rsafe: denied: openat /etc/shadow (not in policy)"),
            "{caller:?}: {out:?}"
        );
        // What the policy allows is not named.
        assert!(
            !denied.iter().any(|l| l.contains("/etc/passwd")),
            "{caller:?}: {out:?}"
        );
        // The line comes before the workload's own message about it.
        let said = out.stderr.find(shadow).unwrap();
        let refused = out.stderr.find("can't open '/root/shadow'").unwrap();
        assert!(said < refused, "{caller:?}: {out:?}");

        // A symlink is named by its target (resolved in the container, not the host); a
        // name with control characters is escaped.
        let script = "cat /tmp/shadow-link; cat \"$(printf '/root/bad\\n\\033[31mred')\"";
        let out = sh(&["--rm", "--policy", p], script);
        assert_ne!(out.code, 0, "{caller:?}: {out:?}");
        assert_eq!(
            out.stderr.matches("Permission denied").count(),
            2,
            "{caller:?}: {out:?}"
        );
        assert_eq!(
            denial_lines(&out.stderr),
            [
                "rsafe: denied: openat /root/shadow (not in policy)",
                "rsafe: denied: openat /root/bad\\n\\u{1b}[31mred (not in policy)",
            ],
            "{caller:?}: {out:?}"
        );

        // The workload it was learned from: no line.
        let again = sh(&["--rm", "--policy", p], workload);
        assert_eq!(again.code, 0, "{caller:?}: {again:?}");
        assert!(
            denial_lines(&again.stderr).is_empty(),
            "{caller:?}: {again:?}"
        );
    });
}

#[test]
fn exec_into_a_container_under_a_learned_policy_reports_its_denials() {
    for_each_caller(|caller, store| {
        let dir = out_dir();
        let policy = dir.path().join("learned.toml");
        learn(caller, store, &policy, "cat /etc/passwd; sleep 0");
        let p = policy.to_str().unwrap();
        let rootfs = caller.rootfs();
        let start = rsafe_cmd(
            caller,
            store,
            &[
                "run",
                "-d",
                "--name",
                "held",
                "--policy",
                p,
                rootfs.to_str().unwrap(),
                "sleep",
                "60",
            ],
        );
        assert_eq!(start.code, 0, "{caller:?}: {start:?}");

        let script = "cat /etc/passwd; mkdir /tmp/x; unshare -U true";
        let out = rsafe_cmd(caller, store, &["exec", "held", "sh", "-c", script]);
        let _ = rsafe_cmd(caller, store, &["rm", "-f", "held"]);
        assert!(out.stdout.contains("root:x:0:0"), "{caller:?}: {out:?}");
        assert_ne!(out.code, 0, "{caller:?}: {out:?}");
        let denied = denial_lines(&out.stderr);
        for line in [
            "rsafe: denied: mkdir /tmp/x (not in policy)",
            "rsafe: denied: unshare CLONE_NEWUSER (not in policy)",
        ] {
            assert!(denied.contains(&line), "{caller:?}: {line} in {out:?}");
        }
    });
}

/// `rsafe logs NAME` once it holds `line` (the monitor of a `-d` container writes after the
/// container ended, so the caller may get there first). Waits at most a minute.
fn log_with(caller: Caller, store: &Path, name: &str, line: &str) -> String {
    let mut last = None;
    for _ in 0..600 {
        let out = rsafe_cmd(caller, store, &["logs", name]);
        if out.stdout.contains(line) || out.stderr.contains(line) {
            return out.stdout + &out.stderr;
        }
        last = Some(out);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{caller:?}: no {line:?} in the log of {name}: {last:?}");
}

#[test]
fn a_detached_run_learns_until_its_container_ends() {
    for_each_caller(|caller, store| {
        let dir = out_dir();
        let policy = dir.path().join("detached.toml");
        let p = policy.to_str().unwrap();
        let rootfs = caller.rootfs();
        let r = rootfs.to_str().unwrap();
        let detached = |name: &str, flags: &[&str], script: &str| {
            let mut args = vec!["run", "-d", "--name", name];
            args.extend_from_slice(flags);
            args.extend([r, "sh", "-c", script]);
            let out = rsafe_cmd(caller, store, &args);
            assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        };

        // Ended by `rsafe stop`: the policy is written then, not before.
        detached("stopped", &["--learn", p], "cat /etc/passwd; sleep 60");
        log_with(caller, store, "stopped", "root:x:0:0");
        assert!(!policy.exists(), "{caller:?}: written before the end");
        let stop = rsafe_cmd(caller, store, &["stop", "stopped"]);
        assert_eq!(stop.code, 0, "{caller:?}: {stop:?}");
        log_with(caller, store, "stopped", "rsafe: learned ");
        let syscalls = allowed_syscalls(caller, store, p);
        assert!(
            syscalls.contains("nanosleep") || syscalls.contains("clock_nanosleep"),
            "{caller:?}: sleep's call recorded: {syscalls:?}"
        );
        let again = sh_in(caller, store, &["--rm", "--policy", p], "cat /etc/passwd");
        assert_eq!(again.code, 0, "{caller:?}: {again:?}");
        assert!(again.stdout.contains("root:x:0:0"), "{caller:?}: {again:?}");

        // Ended by its command: a second run extends the same file.
        detached("exited", &["--learn", p], "ls /usr");
        log_with(caller, store, "exited", "over 2 run(s)");
        let text = std::fs::read_to_string(&policy).unwrap();
        assert!(text.contains("# run 2: "), "{caller:?}: {text}");
        assert!(toml_list(&text, "list").contains(&"/usr".to_string()));

        // Detached under the learned policy, its denials are in its log.
        detached("enforced", &["--policy", p], "mkdir /tmp/x");
        log_with(
            caller,
            store,
            "enforced",
            "rsafe: denied: mkdir /tmp/x (not in policy)",
        );
        for name in ["stopped", "exited", "enforced"] {
            let _ = rsafe_cmd(caller, store, &["rm", "-f", name]);
        }
    });
}

#[test]
fn two_runs_merge_into_one_policy() {
    for_each_caller(|caller, store| {
        let dir = out_dir();
        let policy = dir.path().join("merged.toml");
        let p = policy.to_str().unwrap();
        learn(caller, store, &policy, READS);
        let first = allowed_syscalls(caller, store, p);
        let first_text = std::fs::read_to_string(&policy).unwrap();
        // Run 1's policy and profile, kept for `policy diff`.
        let one = dir.path().join("one");
        std::fs::create_dir(&one).unwrap();
        for f in ["merged.toml", "merged.seccomp.json"] {
            std::fs::copy(dir.path().join(f), one.join(f)).unwrap();
        }
        learn(caller, store, &policy, "mkdir /tmp/made && echo made");
        let both = allowed_syscalls(caller, store, p);
        assert!(first.is_subset(&both), "{caller:?}: run 1's calls stay");
        assert!(
            both.contains("mkdir") && !first.contains("mkdir"),
            "{caller:?}"
        );
        let text = std::fs::read_to_string(&policy).unwrap();
        assert!(
            text.contains("# run 1: ") && text.contains("# run 2: "),
            "{text}"
        );
        assert!(text.contains("\"/tmp\", # run 2"), "{caller:?}: {text}");
        for dir in toml_list(&first_text, "read_exec") {
            assert!(
                toml_list(&text, "read_exec").contains(&dir)
                    || toml_list(&text, "read_write").contains(&dir),
                "{caller:?}: {dir} of run 1 is kept"
            );
        }
        // Both workloads run under the merged policy.
        let reads = sh_in(caller, store, &["--rm", "--policy", p], READS);
        assert_eq!(reads.code, 0, "{caller:?}: {reads:?}");
        let writes = sh_in(caller, store, &["--rm", "--policy", p], "mkdir /tmp/made");
        assert_eq!(writes.code, 0, "{caller:?}: {writes:?}");

        // policy diff explains the second run's additions, and nothing for a policy and itself.
        let missing = dir.path().join("missing.toml");
        let diff = rsafe_cmd(
            caller,
            store,
            &["policy", "diff", missing.to_str().unwrap(), p],
        );
        assert_eq!(diff.code, 2, "{caller:?}: a missing file: {diff:?}");
        assert!(diff.stderr.contains("missing.toml"), "{caller:?}: {diff:?}");
        let one = one.join("merged.toml");
        let diff = rsafe_cmd(caller, store, &["policy", "diff", one.to_str().unwrap(), p]);
        assert_eq!(diff.code, 1, "{caller:?}: {diff:?}");
        assert!(
            diff.stdout.contains("syscalls: B allows") && diff.stdout.contains("mkdir"),
            "{diff:?}"
        );
        assert!(
            diff.stdout
                .contains("landlock read+write: B grants 1 that A does not: /tmp"),
            "{diff:?}"
        );
        let same = rsafe_cmd(caller, store, &["policy", "diff", p, p]);
        assert_eq!(same.code, 0, "{same:?}");
        assert!(same.stdout.contains("enforce the same"), "{same:?}");
    });
}

/// `[seccomp.args] KEY` of a learned TOML.
fn arg_list(text: &str, key: &str) -> Vec<String> {
    let table: toml::Table = text.parse().unwrap();
    table["seccomp"]["args"][key]
        .as_array()
        .unwrap_or_else(|| panic!("no [seccomp.args] {key} in {text}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// busybox logger talks to /dev/log over an AF_UNIX datagram socket (there is none: it says
/// nothing and succeeds); nc 127.0.0.1 needs an AF_INET stream socket.
const LOGS: &str = "logger hello; echo logged";
const CONNECTS: &str = "logger hello; nc 127.0.0.1 1; echo connected $?";

#[test]
fn a_policy_learned_from_unix_sockets_refuses_inet_ones_by_name() {
    for_each_caller(|caller, store| {
        let dir = out_dir();
        let policy = dir.path().join("unix.toml");
        let learned = learn(caller, store, &policy, LOGS);
        assert_eq!(learned.stdout, "logged\n", "{caller:?}: {learned:?}");
        let text = std::fs::read_to_string(&policy).unwrap();
        assert_eq!(
            arg_list(&text, "socket"),
            ["AF_UNIX/SOCK_DGRAM"],
            "{caller:?}"
        );
        assert!(text.contains("\"AF_UNIX/SOCK_DGRAM\", # run 1"), "{text}");
        assert_eq!(arg_list(&text, "clone_namespaces"), [] as [&str; 0]);
        // The exported profile allows socket for that class only, in Docker's shape.
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("unix.seccomp.json")).unwrap(),
        )
        .unwrap();
        let socket_rules: Vec<&serde_json::Value> = json["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW")
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == "socket"))
            .collect();
        assert!(!socket_rules.is_empty(), "{caller:?}: {json}");
        for r in &socket_rules {
            assert_eq!(r["args"][0]["op"], "SCMP_CMP_MASKED_EQ", "{r}");
            assert_eq!(r["args"][0]["valueTwo"], libc::AF_UNIX, "{r}");
        }

        // The workload again: the same, nothing refused.
        let p = policy.to_str().unwrap();
        let again = sh_in(caller, store, &["--rm", "--policy", p], LOGS);
        assert_eq!(again.code, 0, "{caller:?}: {again:?}");
        assert_eq!(again.stdout, learned.stdout, "{caller:?}");
        assert!(
            denial_lines(&again.stderr).is_empty(),
            "{caller:?}: {again:?}"
        );

        // An AF_INET socket is refused, and said so by family and type, once.
        let inet = sh_in(caller, store, &["--rm", "--policy", p], CONNECTS);
        assert!(
            inet.stderr.contains("nc: socket: Operation not permitted"),
            "{caller:?}: {inet:?}"
        );
        let denied = denial_lines(&inet.stderr);
        assert!(
            denied.contains(&"rsafe: denied: socket AF_INET/SOCK_STREAM (not in policy)"),
            "{caller:?}: {inet:?}"
        );
        assert!(
            !denied.iter().any(|l| l.contains("AF_UNIX")),
            "{caller:?}: the learned class is allowed: {inet:?}"
        );
        // Under the default policy the socket is made (nothing listens on port 1).
        let free = sh_in(caller, store, &["--rm"], CONNECTS);
        assert!(free.stdout.contains("connected 1"), "{caller:?}: {free:?}");
        assert!(!free.stderr.contains("socket:"), "{caller:?}: {free:?}");

        // Learned from the run that connects, the policy allows AF_INET streams too, and
        // policy diff says so in words.
        let both = dir.path().join("inet.toml");
        learn(caller, store, &both, CONNECTS);
        let diff = rsafe_cmd(
            caller,
            store,
            &["policy", "diff", p, both.to_str().unwrap()],
        );
        assert_eq!(diff.code, 1, "{caller:?}: {diff:?}");
        assert!(
            diff.stdout
                .contains("seccomp args: B also allows socket AF_INET/SOCK_STREAM"),
            "{caller:?}: {diff:?}"
        );
        let show = rsafe_cmd(caller, store, &["policy", "show", p]);
        assert!(
            show.stdout
                .contains("arguments:    only socket AF_UNIX/SOCK_DGRAM;"),
            "{caller:?}: {show:?}"
        );
    });
}

#[test]
fn namespace_flags_are_learned_where_the_policy_would_allow_any() {
    // With CAP_SYS_ADMIN kept, the default profile allows unshare and clone with any
    // namespace flags (Docker's rule for the capability); the learned policy keeps the
    // capability (unverified) but only the flags the run used.
    for_each_caller(|caller, store| {
        let dir = out_dir();
        let plain = dir.path().join("plain.toml");
        let admin = ["--rm", "--cap-add", "SYS_ADMIN"];
        let flags = |policy: &Path| {
            let mut f = admin.to_vec();
            f.extend(["--learn", policy.to_str().unwrap()]);
            f.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        };
        let learn_with = |policy: &Path, script: &str| {
            let f = flags(policy);
            let f: Vec<&str> = f.iter().map(String::as_str).collect();
            let out = sh_in(caller, store, &f, script);
            assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        };
        let free = sh_in(caller, store, &admin, "unshare -U true && echo userns");
        assert_eq!(free.stdout, "userns\n", "{caller:?}: {free:?}");

        learn_with(&plain, "unshare true && echo plain");
        let text = std::fs::read_to_string(&plain).unwrap();
        assert_eq!(arg_list(&text, "clone_namespaces"), [] as [&str; 0]);
        let p = plain.to_str().unwrap();
        let out = sh_in(
            caller,
            store,
            &["--rm", "--policy", p],
            "unshare true && echo plain; unshare -U true",
        );
        assert_eq!(out.stdout, "plain\n", "{caller:?}: {out:?}");
        assert_ne!(out.code, 0, "{caller:?}: {out:?}");
        assert!(
            denial_lines(&out.stderr)
                .contains(&"rsafe: denied: unshare CLONE_NEWUSER (not in policy)"),
            "{caller:?}: {out:?}"
        );

        // Learned from a run that makes a user namespace: that flag, and no other.
        let userns = dir.path().join("userns.toml");
        learn_with(&userns, "unshare -U true && echo userns");
        let text = std::fs::read_to_string(&userns).unwrap();
        assert_eq!(arg_list(&text, "clone_namespaces"), ["CLONE_NEWUSER"]);
        let u = userns.to_str().unwrap();
        let again = sh_in(
            caller,
            store,
            &["--rm", "--policy", u],
            "unshare -U true && echo userns",
        );
        assert_eq!(again.stdout, "userns\n", "{caller:?}: {again:?}");
        let net = sh_in(
            caller,
            store,
            &["--rm", "--policy", u],
            "unshare -U -n true",
        );
        assert_ne!(net.code, 0, "{caller:?}: {net:?}");
        assert!(
            denial_lines(&net.stderr)
                .contains(&"rsafe: denied: unshare CLONE_NEWUSER|CLONE_NEWNET (not in policy)"),
            "{caller:?}: {net:?}"
        );
    });
}

/// The TOCTOU probe (`tests/support/toctou_probe.c`), static, in a directory of its own.
fn toctou_probe() -> Option<PathBuf> {
    if !support::have(
        "a C compiler with static libc (cc -static)",
        support::tool("cc"),
    ) {
        return None;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/toctou_probe.c");
    let key = support::source_key(&std::fs::read(&src).unwrap());
    Some(support::fixture(&format!("probe-toctou-{key}"), |dir| {
        std::fs::create_dir_all(dir).unwrap();
        support::sh(
            Command::new("cc")
                .args(["-static", "-O1", "-pthread", "-o"])
                .arg(dir.join("toctou"))
                .arg(&src),
        );
    }))
}

#[test]
fn a_workload_rewriting_its_paths_is_still_confined_while_learning_and_after() {
    let Some(probe) = toctou_probe() else { return };
    for_each_caller(|caller, store| {
        let dir = out_dir();
        let policy = dir.path().join("hostile.toml");
        let volume = format!("{}:/probe:ro", probe.display());
        let rootfs = caller.rootfs();
        let args = |extra: &[&str]| {
            let mut a: Vec<String> = vec!["--rm".into(), "-v".into(), volume.clone()];
            a.extend(extra.iter().map(|s| s.to_string()));
            a.extend([rootfs.display().to_string(), "/probe/toctou".into()]);
            a
        };
        let learn_args = args(&["--learn", policy.to_str().unwrap()]);
        let refs: Vec<&str> = learn_args.iter().map(String::as_str).collect();
        let learned = run(caller, store, &refs);
        // The learning run is under the default policy: no user namespace for the workload.
        assert_eq!(learned.code, 0, "{caller:?}: {learned:?}");
        assert!(
            learned.stdout.contains("unshare: Operation not permitted"),
            "{caller:?}: {learned:?}"
        );
        let text = std::fs::read_to_string(&policy).unwrap();
        // Whatever the probe made rsafe read, the rules are top-level directories of what it
        // passed (in /etc and /root the files), or the probe's own, never the whole root.
        let read = toml_list(&text, "read_exec");
        assert!(!read.contains(&"/".to_string()), "{caller:?}: {read:?}");
        for rule in &read {
            assert!(
                ["/etc", "/root", "/probe", "/proc"]
                    .iter()
                    .any(|top| Path::new(rule).starts_with(top)),
                "{caller:?}: unexpected rule {rule}: {text}"
            );
        }
        // Under the learned policy the probe still runs and is still refused its namespace.
        let enforce_args = args(&["--policy", policy.to_str().unwrap()]);
        let refs: Vec<&str> = enforce_args.iter().map(String::as_str).collect();
        let enforced = run(caller, store, &refs);
        assert_eq!(enforced.code, 0, "{caller:?}: {enforced:?}");
        assert!(
            enforced.stdout.contains("unshare: Operation not permitted"),
            "{caller:?}: {enforced:?}"
        );
    });
}

#[test]
fn a_learn_file_that_is_not_a_policy_is_refused_before_anything_runs() {
    for_each_caller(|caller, store| {
        let dir = out_dir();
        let bad = dir.path().join("notes.toml");
        std::fs::write(&bad, "these are my notes = = =\n").unwrap();
        support::sh(Command::new("chmod").arg("666").arg(&bad));
        let out = sh_in(
            caller,
            store,
            &["--rm", "--learn", bad.to_str().unwrap()],
            "echo RAN",
        );
        assert_eq!(out.code, 125, "{caller:?}: {out:?}");
        assert!(!out.stdout.contains("RAN"), "{caller:?}: {out:?}");
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.contains("warning"))
            .collect();
        assert_eq!(lines.len(), 1, "{caller:?}: one line: {out:?}");
        assert!(
            lines[0].contains("notes.toml") && lines[0].contains("not a learned policy"),
            "{caller:?}: {out:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&bad).unwrap(),
            "these are my notes = = =\n",
            "{caller:?}: left as it was"
        );
        assert!(!dir.path().join("notes.seccomp.json").exists());
    });
}

#[test]
fn a_directory_only_listed_is_not_readable_under_the_learned_policy() {
    // `ls /` lists the root; `cat /bin/sh` reads one file. Before list-only rules, the listing
    // granted `/` read+exec: every file of the image.
    let script = "ls /; cat /bin/sh | wc -c";
    for_each_caller(|caller, store| {
        let dir = out_dir();
        let policy = dir.path().join("listed.toml");
        let learned = learn(caller, store, &policy, script);
        assert!(learned.stdout.contains("etc\n"), "{caller:?}: {learned:?}");
        let text = std::fs::read_to_string(&policy).unwrap();
        assert_eq!(toml_list(&text, "list"), ["/"], "{caller:?}: {text}");
        let read = toml_list(&text, "read_exec");
        assert!(read.contains(&"/bin".to_string()), "{caller:?}: {text}");
        for never in ["/", "/etc"] {
            assert!(!read.contains(&never.to_string()), "{caller:?}: {text}");
        }
        let p = policy.to_str().unwrap();
        let show = rsafe_cmd(caller, store, &["policy", "show", p]);
        assert!(
            show.stdout.contains("list only:    /\n"),
            "{caller:?}: {show:?}"
        );

        // The workload runs under it as it did; reading a file it only saw listed is refused
        // (landlock: EACCES), and only there.
        let again = sh_in(caller, store, &["--rm", "--policy", p], script);
        assert_eq!(again.code, 0, "{caller:?}: {again:?}");
        assert_eq!(again.stdout, learned.stdout, "{caller:?}");
        let read = "cat /etc/passwd | wc -c";
        let refused = sh_in(caller, store, &["--rm", "--policy", p], read);
        assert!(
            refused
                .stderr
                .contains("can't open '/etc/passwd': Permission denied"),
            "{caller:?}: {refused:?}"
        );
        assert_eq!(refused.stdout.trim(), "0", "{caller:?}: {refused:?}");
        let listed = sh_in(caller, store, &["--rm", "--policy", p], "ls /etc");
        assert_eq!(
            listed.code, 0,
            "{caller:?}: listing below / is granted: {listed:?}"
        );
        assert!(listed.stdout.contains("passwd"), "{caller:?}: {listed:?}");
        let free = sh_in(caller, store, &["--rm"], read);
        assert_ne!(free.stdout.trim(), "0", "{caller:?}: {free:?}");
    });
}

/// The allow rule's comment for `name` in a learned seccomp profile.
fn profile_comment(profile: &Path, name: &str) -> Option<String> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(profile).unwrap()).unwrap();
    json["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["action"] == "SCMP_ACT_ALLOW"
                && r["names"].as_array().unwrap().iter().any(|n| n == name)
        })
        .and_then(|r| r["comment"].as_str())
        .map(str::to_string)
}

#[test]
fn exec_into_a_container_being_learned_is_learned_as_a_run_of_its_own() {
    for_each_caller(|caller, store| {
        let dir = out_dir();
        let policy = dir.path().join("with-exec.toml");
        let p = policy.to_str().unwrap();
        let rootfs = caller.rootfs();
        let started = rsafe_cmd(
            caller,
            store,
            &[
                "run",
                "-d",
                "--name",
                "learned",
                "--learn",
                p,
                rootfs.to_str().unwrap(),
                "sh",
                "-c",
                "cat /etc/passwd; sleep 60",
            ],
        );
        assert_eq!(started.code, 0, "{caller:?}: {started:?}");
        let id = started.stdout.trim().to_string();
        log_with(caller, store, "learned", "root:x:0:0");

        // The workload never makes a directory or removes one; the execs do, one in the
        // foreground and one with -d.
        let fg = rsafe_cmd(caller, store, &["exec", "learned", "mkdir", "/tmp/made"]);
        assert_eq!(fg.code, 0, "{caller:?}: {fg:?}");
        let bg = rsafe_cmd(
            caller,
            store,
            &["exec", "-d", "learned", "rmdir", "/tmp/made"],
        );
        assert_eq!(bg.code, 0, "{caller:?}: {bg:?}");
        let made = store.join("containers").join(&id).join("upper/tmp/made");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while made.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{caller:?}: exec -d never removed {}",
                made.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(!policy.exists(), "{caller:?}: written before the end");
        let stop = rsafe_cmd(caller, store, &["stop", "learned"]);
        assert_eq!(stop.code, 0, "{caller:?}: {stop:?}");
        let log = log_with(caller, store, "learned", "rsafe: learned ");
        assert!(log.contains("over 3 run(s)"), "{caller:?}: {log}");
        let _ = rsafe_cmd(caller, store, &["rm", "-f", "learned"]);

        // Each exec is a run of its own, named as one, and what only it used says so.
        let text = std::fs::read_to_string(&policy).unwrap();
        let runs: Vec<&str> = text.lines().filter(|l| l.starts_with("# run ")).collect();
        assert_eq!(runs.len(), 3, "{caller:?}: {text}");
        assert!(runs[0].contains(" sh -c "), "{text}");
        assert!(
            runs[1].starts_with("# run 2: ") && runs[1].ends_with(" exec learned: mkdir /tmp/made"),
            "{caller:?}: {text}"
        );
        assert!(
            runs[2].ends_with(" exec learned: rmdir /tmp/made"),
            "{caller:?}: {text}"
        );
        assert!(text.contains("\"/tmp\", # run 2"), "{caller:?}: {text}");
        let profile = dir.path().join("with-exec.seccomp.json");
        let mkdir = profile_comment(&profile, "mkdir").unwrap_or_default();
        assert!(
            mkdir.starts_with("run 2: ") && mkdir.contains("exec learned: mkdir"),
            "{caller:?}: {mkdir}"
        );
        let rmdir = profile_comment(&profile, "rmdir").unwrap_or_default();
        assert!(
            rmdir.starts_with("run 3: ") && rmdir.contains("exec learned: rmdir"),
            "{caller:?}: {rmdir}"
        );
        let sleep = profile_comment(&profile, "nanosleep")
            .or_else(|| profile_comment(&profile, "clock_nanosleep"))
            .unwrap_or_default();
        assert!(sleep.starts_with("run 1: "), "{caller:?}: {sleep}");

        // Under the learned policy the execs' commands run as they did, with no denial.
        let again = sh_in(
            caller,
            store,
            &["--rm", "--policy", p],
            "mkdir /tmp/made && rmdir /tmp/made",
        );
        assert_eq!(again.code, 0, "{caller:?}: {again:?}");
        assert!(
            denial_lines(&again.stderr).is_empty(),
            "{caller:?}: {again:?}"
        );
    });
}
