//! `rsafe policy list` and `rsafe policy show` on the real binary.
mod support;

use predicates::prelude::*;

#[test]
fn list_names_every_builtin_policy() {
    let root = support::temp_root();
    support::rsafe(root.path())
        .args(["policy", "list"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("default")
                .and(predicate::str::contains("strict"))
                .and(predicate::str::contains("permissive")),
        );
}

#[test]
fn show_prints_the_effective_default_policy() {
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .args(["policy", "show"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for expected in [
        "policy default (builtin policy default)",
        "capabilities: 8 kept",
        "CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID NET_BIND_SERVICE",
        "default:      errno EPERM",
        "clone3:       errno ENOSYS",
        "ENOSYS above nr",
        "any other ABI kills the process",
        "landlock",
        "/proc/kcore",
        "read-only:      /proc/bus /proc/fs /proc/irq /proc/sys",
        "limits:         memory unlimited, pids 4096, cpus unlimited",
        "network:        none",
        "audit gate:     off",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(text.contains("allowed:"), "{text}");
    assert!(!text.contains("warning:"), "{text}");
    // What this kernel enforces: with landlock (ABI 7 here) the line names the ABI.
    match rsafe::runtime::landlock::kernel_abi() {
        Some(abi) => assert!(text.contains(&format!("landlock ABI {abi}")), "{text}"),
        None => assert!(text.contains("landlock unavailable"), "{text}"),
    }
}

#[test]
fn show_applies_the_override_flags_and_warns() {
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .args([
            "policy",
            "show",
            "strict",
            "--cap-add",
            "CAP_NET_BIND_SERVICE",
            "--cap-add",
            "sys_admin",
        ])
        .args(["--seccomp", "unconfined"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("capabilities: 2 kept"), "{text}");
    assert!(text.contains("NET_BIND_SERVICE SYS_ADMIN"), "{text}");
    assert!(text.contains("UNCONFINED"), "{text}");
    assert!(text.contains("warning: seccomp is unconfined"), "{text}");
    assert!(
        text.contains("warning: the container keeps SYS_ADMIN"),
        "{text}"
    );
    assert!(text.contains("TCP bind:     none"), "{text}");
}

#[test]
fn show_reads_a_policy_file_with_its_own_seccomp_profile() {
    let root = support::temp_root();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("web.json"),
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
            "syscalls":[{"names":["read","write","exit_group"],"action":"SCMP_ACT_ALLOW"},
                        {"names":["bpf"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]}"#,
    )
    .unwrap();
    let policy = dir.path().join("web.toml");
    std::fs::write(
        &policy,
        "description = \"a web server\"\ngate = \"high\"\n[seccomp]\nprofile = \"web.json\"\n[landlock]\ntcp_bind = [8080, \"9000-9002\"]\n",
    )
    .unwrap();
    let out = support::rsafe(root.path())
        .arg("policy")
        .arg("show")
        .arg(&policy)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("policy web ("), "{text}");
    assert!(text.contains("a web server"), "{text}");
    assert!(text.contains("web.json"), "{text}");
    assert!(text.contains("allowed:      3 x86_64 syscalls"), "{text}");
    assert!(
        text.contains("conditions:   0 of 1 conditional rules apply here; left out: 1 rule(s)"),
        "{text}"
    );
    assert!(
        text.contains("    no   with CAP_SYS_ADMIN: bpf → allow"),
        "{text}"
    );
    assert!(
        text.contains("TCP bind:     only 8080, 9000-9002"),
        "{text}"
    );
    assert!(
        text.contains("audit gate:     high: images with a finding at or above it are refused"),
        "{text}"
    );
    // Unset fields come from the default policy.
    assert!(text.contains("capabilities: 8 kept"), "{text}");
}

#[test]
fn errors_are_one_line_and_name_the_file_and_field() {
    let root = support::temp_root();
    support::rsafe(root.path())
        .args(["policy", "show", "nope"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "rsafe: no policy named \"nope\"",
        ));

    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("bad.toml");
    std::fs::write(
        &policy,
        "[capabilities]\nkeep = [\"CHOWN\", \"NET_BIND\"]\n",
    )
    .unwrap();
    let out = support::rsafe(root.path())
        .arg("policy")
        .arg("show")
        .arg(&policy)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&policy.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("capabilities.keep[1]") && stderr.contains("NET_BIND"),
        "{stderr}"
    );

    support::rsafe(root.path())
        .args(["policy", "show", "--cap-drop", "NOT_A_CAP"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "--cap-drop \"NOT_A_CAP\": unknown capability",
        ));

    let profile = dir.path().join("broken.json");
    std::fs::write(&profile, r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALOW"}]}"#).unwrap();
    let out = support::rsafe(root.path())
        .args(["policy", "show", "--seccomp"])
        .arg(&profile)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("broken.json") && stderr.contains("syscalls[0].action"),
        "{stderr}"
    );
}

#[test]
fn an_unprivileged_user_can_show_policies() {
    let root = support::temp_root();
    let Some(mut cmd) = support::rsafe_as_test_user(root.path()) else {
        support::have("root and the rsafe-test user", false);
        return;
    };
    cmd.args(["policy", "show", "strict"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("capabilities: 0 kept")
                .and(predicate::str::contains("TCP connect:  none")),
        );
}

/// podman's default profile as Debian installs it (`golang-github-containers-common`).
const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

fn show_seccomp(args: &[&str]) -> String {
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .args(["policy", "show"])
        .args(args)
        .assert()
        .success();
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

#[test]
fn show_counts_podmans_profile_and_the_conditions_the_capabilities_meet() {
    if !support::have(
        PODMAN_PROFILE,
        std::path::Path::new(PODMAN_PROFILE).exists(),
    ) {
        return;
    }
    let text = show_seccomp(&["--seccomp", PODMAN_PROFILE]);
    for expected in [
        "default:      errno ENOSYS",
        "allowed:      309 x86_64 syscalls, 2 more only for some arguments",
        "userfaultfd:  errno EPERM",
        "carve-out:    socket(arg0 == 0x10, arg2 == 0x9) → errno EINVAL",
        "setns:        allow (a later rule's errno EPERM is ignored",
        "conditions:   15 of 28 conditional rules apply here",
        "    yes  on amd64|x32: arch_prctl → allow",
        "    no   with CAP_SYS_CHROOT: chroot → allow",
        "    yes  without CAP_SYS_CHROOT: chroot → errno EPERM",
        "    yes  without CAP_AUDIT_WRITE: socket → allow",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // podman's own capability set adds SYS_CHROOT (and AUDIT_WRITE for --cap-add below).
    let text = show_seccomp(&[
        "--seccomp",
        PODMAN_PROFILE,
        "--cap-add",
        "SYS_CHROOT",
        "--cap-add",
        "AUDIT_WRITE",
        "--syscalls",
    ]);
    for expected in [
        "allowed:      311 x86_64 syscalls, 1 more only for some arguments",
        "    yes  with CAP_SYS_CHROOT: chroot → allow",
        "    no   without CAP_AUDIT_WRITE: socket → allow",
        "\nallow chroot\n",
        "\nallow socket\n",
        "\nargs personality\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("carve-out:"), "{text}");
}

#[test]
fn show_lists_what_the_default_profile_allows_per_capability() {
    let plain = show_seccomp(&["--syscalls"]);
    let admin = show_seccomp(&["--syscalls", "--cap-add", "SYS_ADMIN"]);
    let raw = show_seccomp(&["--syscalls", "--cap-add", "NET_RAW"]);
    assert!(
        plain.contains("\nargs clone\n") && !plain.contains("allow mount"),
        "{plain}"
    );
    assert!(
        plain.contains("    no   with CAP_SYS_ADMIN: bpf, clone, clone3"),
        "{plain}"
    );
    assert!(
        admin.contains("\nallow clone\n") && admin.contains("\nallow mount\n"),
        "{admin}"
    );
    assert!(
        admin.contains("\nallow clone3\n") && !admin.contains("clone3:"),
        "{admin}"
    );
    assert!(
        admin.contains("    yes  with CAP_SYS_ADMIN: bpf, clone, clone3"),
        "{admin}"
    );
    assert!(
        raw.contains("    yes  with CAP_NET_RAW: socket → allow"),
        "{raw}"
    );
    assert!(
        plain.contains("    no   with CAP_NET_RAW: socket → allow"),
        "{plain}"
    );
}

#[test]
fn a_profile_rsafe_cannot_honour_is_refused_with_the_field_and_why() {
    let root = support::temp_root();
    let dir = tempfile::tempdir().unwrap();
    for (json, field, why) in [
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","listenerPath":"/run/agent.sock","listenerMetadata":"x"}"#,
            "listenerPath",
            "no agent",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errno":"ENOPE"}]}"#,
            "syscalls[0].errno",
            "not an errno name",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrno":"ENOSYS","sycalls":[]}"#,
            "sycalls",
            "unknown field",
        ),
    ] {
        let profile = dir.path().join("p.json");
        std::fs::write(&profile, json).unwrap();
        let out = support::rsafe(root.path())
            .args(["policy", "show", "--seccomp"])
            .arg(&profile)
            .assert()
            .code(1);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("p.json") && stderr.contains(field) && stderr.contains(why),
            "{stderr}"
        );
    }
}

#[test]
fn a_hand_written_seccomp_args_table_narrows_the_default_profile() {
    let root = support::temp_root();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("unix.toml");
    std::fs::write(
        &policy,
        "[seccomp.args]\nsocket = [\"AF_UNIX\"]\nioctl = [\"TCGETS\", \"0x5413\"]\n",
    )
    .unwrap();
    let show = |p: &std::path::Path| {
        let out = support::rsafe(root.path())
            .args(["policy", "show", "--syscalls"])
            .arg(p)
            .assert()
            .success();
        String::from_utf8_lossy(&out.get_output().stdout).into_owned()
    };
    let text = show(&policy);
    assert!(
        text.contains(
            "arguments:    only socket AF_UNIX; ioctl TCGETS, TIOCGWINSZ ([seccomp.args])"
        ),
        "{text}"
    );
    // ioctl is now allowed for some arguments only; without the table, for all.
    assert!(text.contains("\nargs ioctl\n"), "{text}");
    let plain = show(std::path::Path::new("default"));
    assert!(plain.contains("\nallow ioctl\n"), "{plain}");
    assert!(!plain.contains("arguments:"), "{plain}");

    // diff names the classes a policy restricts.
    let out = support::rsafe(root.path())
        .args(["policy", "diff", "default"])
        .arg(&policy)
        .assert()
        .code(1);
    let diff = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        diff.contains(
            "seccomp args: B restricts socket to AF_UNIX; A to nothing but its profile's rules"
        ),
        "{diff}"
    );

    // A family that does not exist: one line naming the file, the entry and the problem.
    std::fs::write(
        &policy,
        "[seccomp.args]\nsocket = [\"AF_UNIX\", \"AF_INETT\"]\n",
    )
    .unwrap();
    let out = support::rsafe(root.path())
        .args(["policy", "show"])
        .arg(&policy)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&policy.display().to_string())
            && stderr.contains("seccomp.args.socket[1]")
            && stderr.contains("not an address family"),
        "{stderr}"
    );
}
