//! `rsafe audit` and `rsafe rules` on real images: the busybox fixture and the audit fixtures
//! built with umoci (tests/support/audit_images.rs), through the real binary.
mod support;

use std::collections::BTreeSet;

use rsafe::report::json::JsonReport;
use serde_json::Value;
use support::audit_images::{self, AWS_KEY_ID, AWS_SECRET, GITHUB_TOKEN, NPM_TOKEN, target};

fn have_tools() -> bool {
    support::have(
        "umoci and skopeo",
        support::tool("umoci") && support::tool("skopeo"),
    )
}

/// Runs `rsafe audit TARGET ARGS…` and returns (exit code, stdout, stderr).
fn audit(target: &str, args: &[&str]) -> (i32, String, String) {
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .arg("audit")
        .arg(target)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The JSON report of `target` (checked against the schema), and the exit code.
fn audit_json(target: &str, args: &[&str]) -> (JsonReport, i32) {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = audit(target, &all);
    assert!(code == 0 || code == 1, "exit {code}: {stderr}");
    let value: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    check_schema(&value);
    (serde_json::from_value(value).unwrap(), code)
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn subset(v: &Value, allowed: &[&str], required: &[&str]) {
    let k = keys(v);
    for r in required {
        assert!(k.contains(r), "missing {r:?} in {v}");
    }
    for key in &k {
        assert!(allowed.contains(key), "unexpected key {key:?} in {v}");
    }
}

/// The stable JSON schema (version 1), checked key by key.
fn check_schema(v: &Value) {
    let top = [
        "schema_version",
        "tool",
        "target",
        "summary",
        "stats",
        "findings",
    ];
    subset(
        v,
        &top,
        &["schema_version", "tool", "target", "summary", "findings"],
    );
    assert_eq!(v["schema_version"], 1);
    subset(&v["tool"], &["name", "version"], &["name", "version"]);
    subset(
        &v["target"],
        &["kind", "name", "digest", "platform", "resolved"],
        &["kind", "name"],
    );
    let counts = [
        "total",
        "critical",
        "high",
        "medium",
        "low",
        "info",
        "ignored",
        "below_threshold",
    ];
    subset(&v["summary"], &counts, &counts);
    for f in v["findings"].as_array().unwrap() {
        subset(
            f,
            &[
                "rule",
                "severity",
                "title",
                "location",
                "evidence",
                "remediation",
            ],
            &["rule", "severity", "title", "location", "remediation"],
        );
        assert!(
            ["critical", "high", "medium", "low", "info"]
                .contains(&f["severity"].as_str().unwrap())
        );
        let loc = &f["location"];
        match loc["kind"].as_str().unwrap() {
            "image_file" => {
                subset(loc, &["kind", "path", "line", "layer"], &["kind", "path"]);
                if let Some(l) = loc.get("layer") {
                    subset(
                        l,
                        &["index", "digest", "created_by", "removed_in"],
                        &["index", "digest"],
                    );
                }
            }
            "image_config" => subset(loc, &["kind", "field"], &["kind", "field"]),
            other => panic!("unexpected location kind {other}"),
        }
        if let Some(e) = f.get("evidence") {
            subset(e, &["excerpt", "fingerprint"], &["excerpt"]);
        }
    }
}

fn file_findings<'a>(
    r: &'a JsonReport,
    path: &str,
) -> Vec<(&'a rsafe::audit::Finding, &'a rsafe::audit::LayerProvenance)> {
    r.findings
        .iter()
        .filter_map(|f| match &f.location {
            rsafe::audit::Location::ImageFile {
                path: p,
                layer: Some(l),
                ..
            } if p == path => Some((f, l)),
            _ => None,
        })
        .collect()
}

fn config_findings<'a>(r: &'a JsonReport, field_prefix: &str) -> Vec<&'a rsafe::audit::Finding> {
    r.findings
        .iter()
        .filter(|f| {
            matches!(&f.location, rsafe::audit::Location::ImageConfig { field }
                if field.starts_with(field_prefix))
        })
        .collect()
}

fn rules(r: &JsonReport) -> BTreeSet<&str> {
    r.findings.iter().map(|f| f.rule.as_str()).collect()
}

#[test]
fn secrets_deleted_in_layer_3_are_still_reported_in_layer_2() {
    if !have_tools() {
        return;
    }
    let (r, _) = audit_json(&target("leaky"), &[]);
    // The secret's line: the key in credentials, the first line of the key body in id_rsa.
    for (path, line) in [("/root/.aws/credentials", 3), ("/root/.ssh/id_rsa", 2)] {
        let found = file_findings(&r, path);
        let (f, layer) = found
            .iter()
            .find(|(f, _)| f.rule.starts_with("secret."))
            .unwrap_or_else(|| panic!("no secret at {path}: {:#?}", r.findings));
        assert_eq!(layer.index, 1, "added by layer 2");
        assert_eq!(layer.removed_in, Some(2), "deleted by layer 3");
        assert_eq!(
            layer.created_by.as_deref(),
            Some("COPY credentials id_rsa /root/")
        );
        assert_eq!(
            f.location.to_string(),
            format!("layer 2 {path}:{line} (deleted in layer 3, still present in layer 2)")
        );
        assert!(f.severity >= rsafe::audit::Severity::High);
    }
    // The same image as a person reads it.
    let (code, table, _) = audit(&target("leaky"), &[]);
    assert_eq!(code, 0, "no --fail-on: exit 0");
    assert!(
        table.contains(
            "layer 2 /root/.aws/credentials:3 (deleted in layer 3, still present in layer 2) \
             [COPY credentials id_rsa /root/]"
        ),
        "{table}"
    );
}

#[test]
fn app_secrets_under_usr_are_reported_and_vendored_look_alikes_are_not() {
    if !have_tools() {
        return;
    }
    let layout = audit_images::app_dirs_layout();
    let (r, _) = audit_json(&format!("{}:latest", layout.display()), &[]);
    let env = file_findings(&r, "/usr/src/app/.env");
    let env_rules: BTreeSet<&str> = env.iter().map(|(f, _)| f.rule.as_str()).collect();
    assert!(
        env_rules.contains("secret.aws-access-key-id")
            && env_rules.contains("secret.aws-secret-access-key"),
        "{:#?}",
        r.findings
    );
    // Each is reported on its own line of the file.
    for (f, _) in &env {
        let expected = if f.rule == "secret.aws-access-key-id" {
            2
        } else {
            3
        };
        assert!(
            matches!(f.location, rsafe::audit::Location::ImageFile { line: Some(n), .. } if n == expected),
            "{f:#?}"
        );
        assert!(
            f.location
                .to_string()
                .starts_with(&format!("layer 2 /usr/src/app/.env:{expected}")),
            "{}",
            f.location
        );
    }
    // Only rules that never run on vendored files report these two.
    let key = file_findings(&r, "/usr/src/app/deploy/id_rsa");
    assert!(
        key.iter().any(|(f, _)| f.rule == "secret.private-key"),
        "{:#?}",
        r.findings
    );
    let config = file_findings(&r, "/usr/src/app/config.py");
    assert!(
        config
            .iter()
            .any(|(f, _)| f.rule == "secret.generic-password"),
        "{:#?}",
        r.findings
    );
    let deploy = file_findings(&r, "/usr/local/bin/deploy.sh");
    assert!(
        deploy
            .iter()
            .any(|(f, _)| f.rule == "secret.generic-password"),
        "{:#?}",
        r.findings
    );
    assert!(
        file_findings(&r, "/usr/lib/python3/dist-packages/pkg/settings.py").is_empty(),
        "{:#?}",
        r.findings
    );
    let json = serde_json::to_string(&r).unwrap();
    for secret in [AWS_SECRET, audit_images::DEPLOY_PASSWORD] {
        assert!(!json.contains(&secret[4..]), "the report shows a secret");
    }
}

#[test]
fn secrets_in_env_and_history_are_reported() {
    if !have_tools() {
        return;
    }
    let (r, _) = audit_json(&target("leaky"), &[]);
    let env = config_findings(&r, "Env.GITHUB_TOKEN");
    assert!(
        env.iter().any(|f| f.rule == "secret.github-token"),
        "{:#?}",
        r.findings
    );
    let history = config_findings(&r, "history[");
    let npm = history
        .iter()
        .find(|f| f.rule == "secret.npm-token" || f.rule == "image.secret-build-arg")
        .unwrap_or_else(|| panic!("no history finding: {:#?}", r.findings));
    assert!(npm.severity >= rsafe::audit::Severity::High);
}

#[test]
fn the_clean_counterpart_has_no_secret_findings_and_passes_the_gate() {
    if !have_tools() {
        return;
    }
    let (r, code) = audit_json(&target("clean"), &["--fail-on", "high"]);
    assert_eq!(code, 0, "{:#?}", r.findings);
    assert!(
        r.findings
            .iter()
            .all(|f| !f.rule.starts_with("secret.") && !f.rule.starts_with("image.secret")),
        "{:#?}",
        r.findings
    );
    let (_, code) = audit_json(&target("leaky"), &["--fail-on", "high"]);
    assert_eq!(code, 1);
    let (code, _, _) = audit(&target("leaky"), &["--fail-on", "high", "-q"]);
    assert_eq!(code, 1, "the table gates the same way");
}

#[test]
fn no_output_format_prints_a_planted_secret() {
    if !have_tools() {
        return;
    }
    for format in ["table", "json", "sarif"] {
        for tag in ["leaky", "crafted"] {
            let (code, stdout, stderr) = audit(&target(tag), &["--format", format]);
            assert!(code == 0, "{stderr}");
            for secret in audit_images::planted_secrets() {
                // Any 8 consecutive characters past the shown prefix would be a leak.
                for window in secret.as_bytes()[4..].windows(8) {
                    let w = std::str::from_utf8(window).unwrap();
                    assert!(
                        !stdout.contains(w) && !stderr.contains(w),
                        "{format} output of {tag} shows part of a planted secret ({w})"
                    );
                }
            }
        }
    }
    // The excerpt still helps a person: a short prefix and the length.
    let (_, table, _) = audit(&target("leaky"), &[]);
    assert!(table.contains("[redacted 40 chars]"), "{table}");
    assert!(!table.contains(GITHUB_TOKEN) && !table.contains(NPM_TOKEN));
    assert!(!table.contains(AWS_KEY_ID));
}

#[test]
fn root_user_is_reported_and_a_non_root_user_is_not() {
    if !have_tools() {
        return;
    }
    let layout = support::busybox_layout();
    let (root, _) = audit_json(&format!("{}:root", layout.display()), &[]);
    let user = config_findings(&root, "User");
    assert_eq!(user.len(), 1, "{:#?}", root.findings);
    assert_eq!(user[0].rule, "image.user-root");
    let (app, _) = audit_json(&format!("{}:latest", layout.display()), &[]);
    assert!(config_findings(&app, "User").is_empty());
}

#[test]
fn the_busybox_fixture_has_no_high_findings() {
    if !have_tools() {
        return;
    }
    let layout = support::busybox_layout();
    let (r, code) = audit_json(
        &format!("{}:latest", layout.display()),
        &["--fail-on", "high"],
    );
    assert_eq!(code, 0);
    assert_eq!(r.summary.high + r.summary.critical, 0, "{:#?}", r.findings);
    let stats = r.stats.expect("image audits report what they read");
    assert_eq!(stats.layers, 1);
    assert!(stats.entries > 200, "busybox has hundreds of applet links");
    assert_eq!(r.target.kind, "image");
    assert!(r.target.digest.as_deref().unwrap().starts_with("sha256:"));
}

#[test]
fn setuid_binary_world_writable_dir_and_symlinked_volume() {
    if !have_tools() {
        return;
    }
    let (r, code) = audit_json(&target("risky"), &["--fail-on", "high"]);
    assert_eq!(code, 1);
    let helper = file_findings(&r, "/usr/local/bin/helper");
    let setuid = helper
        .iter()
        .find(|(f, _)| f.rule == "fs.setuid")
        .unwrap_or_else(|| panic!("{:#?}", r.findings))
        .0;
    assert_eq!(setuid.severity, rsafe::audit::Severity::High);
    let ev = &setuid.evidence.as_ref().unwrap().excerpt;
    assert!(ev.contains("setuid") && ev.contains("owner 0:0"), "{ev}");
    assert!(
        ev.contains("ELF 64-bit") && ev.contains("static") && ev.contains("no PIE"),
        "{ev}"
    );
    assert!(
        helper.iter().any(|(f, _)| f.rule == "elf.weak-hardening"),
        "{helper:#?}"
    );
    let drop = file_findings(&r, "/srv/drop");
    assert_eq!(drop.len(), 1, "{:#?}", r.findings);
    assert_eq!(drop[0].0.rule, "fs.world-writable");
    let data = file_findings(&r, "/data");
    assert_eq!(data.len(), 1, "{:#?}", r.findings);
    assert_eq!(data[0].0.rule, "fs.symlink-at-mount-point");
    assert_eq!(data[0].0.severity, rsafe::audit::Severity::High);
    let ev = &data[0].0.evidence.as_ref().unwrap().excerpt;
    assert!(
        ev.contains("VOLUME /data") && ev.contains("../../../../etc") && ev.contains("climbs out"),
        "{ev}"
    );
    // /tmp and /var/tmp are world-writable with the sticky bit: fine.
    assert!(file_findings(&r, "/tmp").is_empty() && file_findings(&r, "/var/tmp").is_empty());
    assert!(rules(&r).contains("image.user-root"));
}

#[test]
fn a_crafted_layer_is_critical_and_never_extracted() {
    if !have_tools() {
        return;
    }
    let (r, code) = audit_json(&target("crafted"), &["--fail-on", "critical"]);
    assert_eq!(code, 1);
    let evil = file_findings(&r, "../evil");
    assert_eq!(evil.len(), 1, "{:#?}", r.findings);
    assert_eq!(evil[0].0.rule, "layer.path-traversal");
    assert_eq!(evil[0].0.severity, rsafe::audit::Severity::Critical);
    assert_eq!(evil[0].1.index, 1);
    assert_eq!(evil[0].1.created_by.as_deref(), Some("ADD crafted.tar /"));
    let mem = file_findings(&r, "/dev/mem");
    assert_eq!(mem[0].0.rule, "fs.device-node");
    assert_eq!(mem[0].0.severity, rsafe::audit::Severity::High);
    let cap = file_findings(&r, "/usr/bin/netadmin");
    let caps = cap
        .iter()
        .find(|(f, _)| f.rule == "fs.file-capabilities")
        .unwrap_or_else(|| panic!("{:#?}", r.findings))
        .0;
    assert_eq!(caps.severity, rsafe::audit::Severity::High);
    assert!(
        caps.evidence
            .as_ref()
            .unwrap()
            .excerpt
            .contains("cap_sys_admin")
    );
    let hard = file_findings(&r, "/usr/bin/sh-hard");
    assert_eq!(hard[0].0.rule, "layer.hardlink-across-layers");
    assert!(
        !std::path::Path::new("/evil").exists(),
        "nothing was extracted"
    );
}

#[test]
fn sarif_is_structurally_valid_2_1_0() {
    if !have_tools() {
        return;
    }
    let (code, stdout, stderr) = audit(&target("leaky"), &["--format", "sarif"]);
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    assert!(v["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "rsafe");
    let rule_ids: Vec<&str> = driver["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r["shortDescription"]["text"].is_string());
            assert!(r["help"]["text"].is_string());
            r["id"].as_str().unwrap()
        })
        .collect();
    let results = runs[0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    let mut used = BTreeSet::new();
    for res in results {
        let id = res["ruleId"].as_str().unwrap();
        let idx = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rule_ids[idx], id, "ruleIndex points at the rule");
        used.insert(id);
        assert!(["error", "warning", "note"].contains(&res["level"].as_str().unwrap()));
        assert!(
            res["message"]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        let loc = &res["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        assert!(!uri.starts_with('/') && !uri.contains(".."), "{uri}");
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(
            res["partialFingerprints"]
                .as_object()
                .is_some_and(|o| !o.is_empty())
        );
    }
    assert_eq!(
        used,
        rule_ids.iter().copied().collect(),
        "every described rule is used"
    );
    assert!(results.iter().any(|r| {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "root/.aws/credentials"
            && r["properties"]["layer"]["removed_in"] == 2
    }));
}

#[test]
fn ignore_file_and_min_severity_filter_and_count() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (all, _) = audit_json(&target("leaky"), &[]);
    let fp = file_findings(&all, "/root/.ssh/id_rsa")[0]
        .0
        .evidence
        .as_ref()
        .unwrap()
        .fingerprint
        .clone()
        .unwrap();
    let ignore = dir.path().join("ignore");
    std::fs::write(
        &ignore,
        format!(
            "# reviewed\nsecret.* /root/.aws/*   # rotated, INC-1\nfingerprint:{fp}   # test key\n"
        ),
    )
    .unwrap();
    let (some, _) = audit_json(
        &target("leaky"),
        &["--ignore-file", ignore.to_str().unwrap()],
    );
    assert!(file_findings(&some, "/root/.aws/credentials").is_empty());
    assert!(file_findings(&some, "/root/.ssh/id_rsa").is_empty());
    assert_eq!(
        some.summary.ignored,
        all.findings.len() - some.findings.len()
    );
    assert!(some.summary.ignored >= 2);

    let (high, _) = audit_json(&target("leaky"), &["--min-severity", "high"]);
    assert!(
        high.findings
            .iter()
            .all(|f| f.severity >= rsafe::audit::Severity::High)
    );
    assert_eq!(
        high.findings.len() + high.summary.below_threshold,
        all.findings.len()
    );

    // An entry without a reason is an error (exit 2), reported on one line.
    std::fs::write(&ignore, "secret.aws-access-key-id\n").unwrap();
    let (code, stdout, stderr) = audit(
        &target("leaky"),
        &["--ignore-file", ignore.to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("rsafe: cannot use the ignore file: ") && stderr.contains("reason"),
        "{stderr}"
    );
}

/// Every file under `dir`, relative.
fn tree(dir: &std::path::Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

#[test]
fn archives_stdin_and_store_names_are_audited_without_touching_the_store() {
    if !have_tools() {
        return;
    }
    let archive = audit_images::leaky_docker_archive();
    let root = support::temp_root();
    let before = tree(root.path());
    let deleted = |r: &JsonReport| {
        file_findings(r, "/root/.aws/credentials")
            .iter()
            .any(|(f, l)| f.rule.starts_with("secret.") && l.index == 1 && l.removed_in == Some(2))
    };

    // A docker save tarball, through a scratch store.
    let out = support::rsafe(root.path())
        .arg("audit")
        .arg(&archive)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: JsonReport = serde_json::from_slice(&out.stdout).unwrap();
    assert!(deleted(&r), "{:#?}", r.findings);
    assert_eq!(r.target.name, archive.display().to_string());
    assert_eq!(tree(root.path()), before, "the audit wrote into the store");

    // The same tarball on standard input.
    let out = support::rsafe(root.path())
        .args(["audit", "-", "--format", "json"])
        .pipe_stdin(&archive)
        .unwrap()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: JsonReport = serde_json::from_slice(&out.stdout).unwrap();
    assert!(deleted(&r));
    assert_eq!(tree(root.path()), before);

    // Loaded into the store first, then audited by name (read only).
    support::rsafe(root.path())
        .arg("load")
        .arg(&archive)
        .assert()
        .success();
    let loaded = tree(root.path());
    let out = support::rsafe(root.path())
        .args(["audit", "rsafe/leaky:1.0", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: JsonReport = serde_json::from_slice(&out.stdout).unwrap();
    assert!(deleted(&r));
    assert_eq!(r.target.name, "rsafe/leaky:1.0");
    assert_eq!(
        tree(root.path()),
        loaded,
        "auditing by name wrote into the store"
    );
}

#[test]
fn a_registry_image_is_pulled_into_a_scratch_store_and_audited() {
    if !have_tools() {
        return;
    }
    let Some(registry) = support::registry::Registry::start(support::registry::Auth::None) else {
        return;
    };
    registry.push(
        &format!("oci:{}:leaky", audit_images::audit_layout().display()),
        "rsafe/leaky:1.0",
        &[],
    );
    let root = support::temp_root();
    let before = tree(root.path());
    let reference = format!("{}/rsafe/leaky:1.0", registry.host());
    let (code, stdout, stderr) = {
        let out = support::rsafe(root.path())
            .args([
                "audit",
                &reference,
                "--format",
                "json",
                "--fail-on",
                "critical",
            ])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(1), "{stderr}");
    let r: JsonReport = serde_json::from_str(&stdout).unwrap();
    assert!(
        file_findings(&r, "/root/.aws/credentials")
            .iter()
            .any(|(_, l)| l.removed_in == Some(2)),
        "{:#?}",
        r.findings
    );
    assert_eq!(
        tree(root.path()),
        before,
        "a pull for an audit stays out of the store"
    );
}

#[test]
fn errors_exit_2_with_one_line() {
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .args(["audit", "no-such-image:1.0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("rsafe: "), "{stderr}");
    assert!(stderr.contains("no-such-image:1.0"), "{stderr}");

    if !have_tools() {
        return;
    }
    // A layout with several images needs a ref, and says which.
    let out = support::rsafe(root.path())
        .arg("audit")
        .arg(audit_images::audit_layout())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("leaky") && stderr.contains(":REF"),
        "{stderr}"
    );
}

#[test]
fn audit_works_unprivileged() {
    if !have_tools() {
        return;
    }
    let layout = audit_images::audit_layout();
    let root = support::temp_root();
    let Some(mut cmd) = support::rsafe_as_test_user(root.path()) else {
        support::have("root, to run as the test user", false);
        return;
    };
    let out = cmd
        .arg("audit")
        .arg(format!("{}:leaky", layout.display()))
        .args(["--format", "json", "--fail-on", "critical"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: JsonReport = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!file_findings(&r, "/root/.aws/credentials").is_empty());
}

#[test]
fn rules_lists_every_rule_a_finding_can_have() {
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .args(["rules", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: BTreeSet<String> = listed
        .iter()
        .map(|r| {
            subset(
                r,
                &["id", "severity", "title", "description", "remediation"],
                &["id", "severity", "title", "description", "remediation"],
            );
            r["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), listed.len(), "ids are unique");
    for prefix in ["secret.", "image.", "layer.", "fs.", "elf."] {
        assert!(
            ids.iter().any(|i| i.starts_with(prefix)),
            "no {prefix} rule"
        );
    }
    let table = support::rsafe(root.path()).arg("rules").output().unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("layer.path-traversal") && text.contains("Fix: "));

    if !have_tools() {
        return;
    }
    for tag in ["leaky", "risky", "crafted"] {
        let (r, _) = audit_json(&target(tag), &[]);
        for f in &r.findings {
            assert!(
                ids.contains(&f.rule),
                "{} is not listed by rsafe rules",
                f.rule
            );
        }
    }
}

/// The clean Debian minbase image: nothing high or critical, and exactly the lower findings
/// a stock Debian base is known to have, each justified here. A new rule id or a new path is
/// a new false positive (or a real change of the base) and fails the test.
#[test]
fn the_clean_debian_minbase_image_has_no_high_finding_and_only_known_low_ones() {
    let Some(image) = support::debian::debian_minbase_image() else {
        return;
    };
    let (r, code) = audit_json(&image, &["--fail-on", "high"]);
    assert_eq!(code, 0, "{:#?}", r.findings);
    assert_eq!(r.summary.critical + r.summary.high, 0, "{:#?}", r.findings);
    let expected_rules = BTreeSet::from([
        // medium: the image has no USER, as every distribution base image: whoever builds on
        // it should set one. True for this image, and what the rule is for.
        "image.user-root",
        // low: the setuid/setgid tools Debian ships in minbase (shadow's passwd family,
        // util-linux's mount/umount and su, PAM's unix_chkpwd). Expected in a distribution
        // image, inert under no_new_privs, reported at low so that a scan shows them.
        "fs.setuid-standard",
    ]);
    assert_eq!(rules(&r), expected_rules, "{:#?}", r.findings);
    let user = config_findings(&r, "User");
    assert_eq!(user.len(), 1);
    assert_eq!(user[0].severity, rsafe::audit::Severity::Medium);
    let mut setuid: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.rule == "fs.setuid-standard")
        .map(|f| {
            assert_eq!(f.severity, rsafe::audit::Severity::Low, "{f:#?}");
            match &f.location {
                rsafe::audit::Location::ImageFile { path, .. } => path.as_str(),
                other => panic!("{other:?}"),
            }
        })
        .collect();
    setuid.sort_unstable();
    assert_eq!(
        setuid,
        [
            "/usr/bin/chage",        // shadow: setgid shadow, reads password ageing
            "/usr/bin/chfn",         // shadow (passwd package)
            "/usr/bin/chsh",         // shadow (passwd package)
            "/usr/bin/expiry",       // shadow: setgid shadow
            "/usr/bin/gpasswd",      // shadow (passwd package)
            "/usr/bin/mount",        // util-linux (mount package)
            "/usr/bin/newgrp",       // shadow (login package)
            "/usr/bin/passwd",       // shadow (passwd package)
            "/usr/bin/su",           // util-linux
            "/usr/bin/umount",       // util-linux (mount package)
            "/usr/sbin/unix_chkpwd", // libpam-modules-bin: setgid shadow
        ]
    );
    let stats = r.stats.expect("image audits report what they read");
    assert_eq!(stats.layers, 1);
    assert!(stats.entries > 5000, "a distribution: {stats:?}");
}

/// The Debian base with AWS credentials added in layer 2 and deleted by a whiteout in layer 3:
/// reported in layer 2 as deleted later but still present, and never printed in full.
#[test]
fn a_secret_deleted_on_top_of_debian_is_reported_in_its_layer_and_redacted() {
    use support::debian::{
        LEAK_CREATED_BY, LEAKED_KEY_ID, LEAKED_PATH, LEAKED_SECRET, debian_leaky_layout,
    };
    let Some(layout) = debian_leaky_layout() else {
        return;
    };
    let image = format!("{}:leaky", layout.display());
    let (code, json, json_stderr) = audit(&image, &["--format", "json", "--fail-on", "high"]);
    let value: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    check_schema(&value);
    let r: JsonReport = serde_json::from_value(value).unwrap();
    assert_eq!(code, 1, "a leaked key fails the gate: {:#?}", r.findings);
    let found = file_findings(&r, LEAKED_PATH);
    // The whole file is one finding (secret.file.aws-credentials, critical), its line that
    // of the secret key.
    assert!(
        found.iter().any(|(f, _)| f.rule.starts_with("secret.")
            && f.severity == rsafe::audit::Severity::Critical),
        "{:#?}",
        r.findings
    );
    for (f, layer) in &found {
        assert_eq!(layer.index, 1, "added by layer 2: {f:#?}");
        assert_eq!(layer.removed_in, Some(2), "deleted by layer 3: {f:#?}");
        assert_eq!(layer.created_by.as_deref(), Some(LEAK_CREATED_BY));
        assert!(
            f.location
                .to_string()
                .contains("(deleted in layer 3, still present in layer 2)"),
            "{}",
            f.location
        );
        assert!(f.rule.starts_with("secret."), "{f:#?}");
        let excerpt = &f.evidence.as_ref().expect("evidence").excerpt;
        assert!(excerpt.contains("[redacted"), "{excerpt}");
    }
    // Only the credentials are new: the base's findings stay what they were.
    let others: BTreeSet<&str> = r
        .findings
        .iter()
        .filter(|f| !matches!(&f.location, rsafe::audit::Location::ImageFile { path, .. } if path == LEAKED_PATH))
        .map(|f| f.rule.as_str())
        .collect();
    assert_eq!(
        others,
        BTreeSet::from(["fs.setuid-standard", "image.user-root"]),
        "{:#?}",
        r.findings
    );
    // Not in JSON, not in the table, not on stderr: no 8 characters of either value past the
    // shown prefix.
    let (code, table, table_stderr) = audit(&image, &[]);
    assert_eq!(code, 0, "{table_stderr}");
    for (format, stdout, stderr) in [
        ("json", &json, &json_stderr),
        ("table", &table, &table_stderr),
    ] {
        for secret in [LEAKED_KEY_ID, LEAKED_SECRET] {
            for window in secret.as_bytes()[4..].windows(8) {
                let w = std::str::from_utf8(window).unwrap();
                assert!(
                    !stdout.contains(w) && !stderr.contains(w),
                    "{format} output shows part of the planted secret ({w})"
                );
            }
        }
    }
    assert!(
        table.contains(&format!(
            "layer 2 {LEAKED_PATH}:3 (deleted in layer 3, still present in layer 2)"
        )),
        "{table}"
    );
}
