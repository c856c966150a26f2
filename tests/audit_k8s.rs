//! `rsafe audit` on Kubernetes manifests, through the real binary.
//!
//! Every directory under `tests/fixtures/k8s/` is a case: manifests in the shapes real ones
//! have (the Kubernetes docs' pods, `helm template` output, kube-prometheus' node-exporter, a
//! `kubectl get -o yaml` List) and an `expected.toml` with the exact findings (rule, severity,
//! file, line) — no more, no fewer — checked by hand against the Pod Security Standards tables.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Expected {
    #[allow(dead_code)]
    description: String,
    #[serde(default)]
    finding: Vec<Row>,
}

#[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct Row {
    rule: String,
    severity: String,
    file: String,
    line: u32,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/k8s")
}

fn rsafe(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rsafe"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run rsafe");
    let mut pipe = child.stdin.take().expect("stdin");
    if let Some(data) = stdin {
        pipe.write_all(data).expect("write stdin");
    }
    drop(pipe);
    child.wait_with_output().expect("wait rsafe")
}

/// The findings of a JSON report as rows.
fn rows(out: &Output) -> Vec<Row> {
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut rows: Vec<Row> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| Row {
            rule: f["rule"].as_str().unwrap_or_default().to_string(),
            severity: f["severity"].as_str().unwrap_or_default().to_string(),
            file: Path::new(f["location"]["path"].as_str().unwrap_or_default())
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            line: f["location"]["line"].as_u64().unwrap_or_default() as u32,
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn every_fixture_gives_exactly_its_expected_findings() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.toml").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 6, "fixtures missing: {cases:?}");
    for dir in cases {
        let expected: Expected =
            toml::from_str(&std::fs::read_to_string(dir.join("expected.toml")).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut want = expected.finding.clone();
        want.sort();
        let out = rsafe(&["audit", "-f", "json", dir.to_str().unwrap()], None);
        assert_eq!(out.status.code(), Some(0), "{}", dir.display());
        let got = rows(&out);
        let missing: Vec<&Row> = want.iter().filter(|r| !got.contains(r)).collect();
        let extra: Vec<&Row> = got.iter().filter(|r| !want.contains(r)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: missing {missing:#?}\nunexpected {extra:#?}",
            dir.display()
        );
    }
}

#[test]
fn pss_restricted_turns_restricted_violations_into_failures() {
    let file = fixtures().join("node-exporter/daemonset.yaml");
    let file = file.to_str().unwrap();
    let baseline = rows(&rsafe(&["audit", "-f", "json", file], None));
    let restricted = rows(&rsafe(
        &["audit", "-f", "json", "--pss", "restricted", file],
        None,
    ));
    assert_eq!(baseline.len(), restricted.len());
    for (b, r) in baseline.iter().zip(&restricted) {
        if b.rule.starts_with("k8s.pss.restricted.") {
            assert_eq!((b.severity.as_str(), r.severity.as_str()), ("low", "high"));
        } else {
            assert_eq!(b, r);
        }
    }
    // The restricted pod passes either way; the minimal pods fail the gate only under
    // restricted.
    let clean = fixtures().join("pss-restricted-pass");
    let out = rsafe(
        &[
            "audit",
            "--pss",
            "restricted",
            "--fail-on",
            "low",
            clean.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let pod = b"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  automountServiceAccountToken: false\n  containers: [{name: c, image: 'r/a:1@sha256:00', resources: {limits: {cpu: 1, memory: 1Gi}}}]\n";
    let gate = |level: &str| {
        rsafe(
            &["audit", "--pss", level, "--fail-on", "high", "-"],
            Some(pod),
        )
        .status
        .code()
    };
    assert_eq!(gate("baseline"), Some(0));
    assert_eq!(gate("restricted"), Some(1));
}

#[test]
fn a_helm_stream_on_stdin_is_audited_like_the_file_and_secrets_stay_redacted() {
    let file = fixtures().join("helm-stream/rendered.yaml");
    let text = std::fs::read(&file).unwrap();
    let from_file = rows(&rsafe(
        &["audit", "-f", "json", file.to_str().unwrap()],
        None,
    ));
    let from_stdin: Vec<Row> = rows(&rsafe(&["audit", "-f", "json", "-"], Some(&text)))
        .into_iter()
        .map(|r| Row {
            file: "rendered.yaml".into(),
            ..r
        })
        .collect();
    assert_eq!(from_file, from_stdin);
    let planted = ["Tr0ub4dor-and-3", "s3cr3t-Adm1n-pw-2024"];
    for format in ["table", "json", "sarif"] {
        let out = rsafe(&["audit", "-f", format, "-"], Some(&text));
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(shown.contains("secret.") || format == "table" && shown.contains("password"));
        for p in planted {
            for w in p.as_bytes().windows(8) {
                let w = std::str::from_utf8(w).unwrap();
                assert!(
                    !shown.contains(w),
                    "{format} output shows a piece of a planted secret"
                );
            }
        }
    }
}

#[test]
fn sarif_carries_the_line_of_each_finding() {
    let file = fixtures().join("cronjob-list/list.yaml");
    let out = rsafe(&["audit", "-f", "sarif", file.to_str().unwrap()], None);
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let socket = results
        .iter()
        .find(|r| r["ruleId"] == "k8s.runtime-socket-mount")
        .expect("socket finding");
    let line = &socket["locations"][0]["physicalLocation"]["region"]["startLine"];
    assert_eq!(line.as_u64(), Some(31));
}

#[test]
fn documents_that_cannot_be_audited_are_noted_and_a_stream_without_objects_fails() {
    let file = fixtures().join("bad-input/mixed.yaml");
    let out = rsafe(&["audit", file.to_str().unwrap()], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mixed.yaml:6:1: invalid YAML"), "{err}");
    assert!(
        err.contains("mixed.yaml:7: not a Kubernetes object"),
        "{err}"
    );
    assert!(
        err.contains("ServiceMonitor/app is not a kind rsafe audits"),
        "{err}"
    );
    let out = rsafe(&["audit", "-"], Some(b"just: text\n"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("standard input: no Kubernetes object found"),
        "{err}"
    );
}

#[test]
fn a_file_of_rbac_objects_alone_is_a_manifest_and_rules_lists_the_rbac_checks() {
    let file = fixtures().join("rbac-risks/cluster.yaml");
    let out = rsafe(
        &["audit", "--fail-on", "critical", file.to_str().unwrap()],
        None,
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("k8s.rbac.anonymous-binding"), "{shown}");
    let out = rsafe(&["rules", "-f", "json"], None);
    let rules: serde_json::Value = serde_json::from_slice(&out.stdout).expect("rules JSON");
    let ids: Vec<&str> = rules
        .as_array()
        .expect("a list of rules")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .filter(|id| id.starts_with("k8s.rbac."))
        .collect();
    for id in [
        "k8s.rbac.wildcard",
        "k8s.rbac.escalate",
        "k8s.rbac.bind",
        "k8s.rbac.impersonate",
        "k8s.rbac.secrets-read",
        "k8s.rbac.nodes-proxy",
        "k8s.rbac.cluster-admin-binding",
        "k8s.rbac.anonymous-binding",
        "k8s.rbac.aggregated-role",
    ] {
        assert!(ids.contains(&id), "{id} missing from rsafe rules: {ids:?}");
    }
}

/// One case of the admission controller's test suite: its first and last line in the file,
/// its source, and what admission decides (`None` for pass, the rule for fail).
struct AdmissionCase {
    lines: (u32, u32),
    source: String,
    fail: Option<String>,
}

fn admission_cases(text: &str) -> Vec<AdmissionCase> {
    let mut cases = Vec::new();
    let mut start = 1u32;
    let lines: Vec<&str> = text.lines().collect();
    let mut marks: Vec<u32> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == "---")
        .map(|(i, _)| i as u32 + 1)
        .collect();
    marks.push(lines.len() as u32 + 1);
    for end in marks {
        let doc = &lines[start as usize - 1..end as usize - 1];
        let expect = doc.iter().find_map(|l| l.strip_prefix("# expect: "));
        if let Some(expect) = expect {
            let source = doc
                .iter()
                .filter_map(|l| l.strip_prefix("# source: "))
                .collect::<Vec<_>>()
                .join(" ");
            let fail = expect.strip_prefix("fail ").map(str::to_string);
            assert!(
                fail.is_some() || expect == "pass",
                "bad expect line {expect}"
            );
            cases.push(AdmissionCase {
                lines: (start, end - 1),
                source,
                fail,
            });
        }
        start = end;
    }
    cases
}

#[test]
fn the_admission_controllers_own_cases_are_decided_as_it_decides_them() {
    for (file, level, prefix, min_cases) in [
        ("baseline.yaml", "baseline", "k8s.pss.baseline.", 20),
        ("restricted.yaml", "restricted", "k8s.pss.", 20),
    ] {
        let path = fixtures().join("admission").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let cases = admission_cases(&text);
        assert!(cases.len() >= min_cases, "{file}: {} cases", cases.len());
        let out = rsafe(
            &[
                "audit",
                "-f",
                "json",
                "--pss",
                level,
                path.to_str().unwrap(),
            ],
            None,
        );
        let found: Vec<Row> = rows(&out)
            .into_iter()
            .filter(|r| r.rule.starts_with(prefix))
            .collect();
        let mut wrong = Vec::new();
        for case in &cases {
            let (from, to) = case.lines;
            let rules: Vec<&str> = found
                .iter()
                .filter(|r| (from..=to).contains(&r.line))
                .map(|r| r.rule.as_str())
                .collect();
            let decided_right = match &case.fail {
                None => rules.is_empty(),
                Some(rule) => rules.contains(&rule.as_str()),
            };
            if !decided_right {
                wrong.push(format!(
                    "{file}:{from} {} — expected {}, rsafe found {rules:?}",
                    case.source,
                    case.fail.as_deref().unwrap_or("pass")
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}

#[test]
fn a_stream_past_the_size_limit_on_stdin_is_refused_in_one_line() {
    // 65 MiB of comment lines: more than the 64 MiB a manifest stream may have.
    let line = b"# filler line of a stream past the limit\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_rsafe"))
        .args(["audit", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rsafe");
    let mut pipe = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let chunk = line.repeat(1 << 14);
        let mut written = 0usize;
        // rsafe stops reading at the limit: a broken pipe after that is expected.
        while written < 65 << 20 && pipe.write_all(&chunk).is_ok() {
            written += chunk.len();
        }
    });
    let out = child.wait_with_output().expect("wait rsafe");
    writer.join().expect("writer");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("standard input: more than the 67108864 bytes"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_manifest_file_past_the_size_limit_is_refused_in_one_line_naming_it() {
    // Recognised as manifests by its beginning, refused by the manifest reader.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: filler\ndata:\n  k: v\n---\n";
    let reps = (65 << 20) / doc.len() + 1;
    std::fs::write(&path, doc.repeat(reps)).unwrap();
    let out = rsafe(&["audit", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("huge.yaml") && err.contains("more than the 67108864 bytes"),
        "{err}"
    );
}
