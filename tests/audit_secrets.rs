//! `rsafe audit` of a real OCI image (built with umoci on the busybox fixture) whose layer 2
//! adds a Kubernetes Secret manifest, a `.env` with provider tokens and a pod spec whose env
//! entries hold a token on the line after its name, and whose layer 3 deletes them all. The real
//! binary must report each one in layer 2, say that layer 3 deleted it, and never print any
//! 8-character piece of a planted value in the table, JSON or SARIF output.
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use rsafe::audit::{Finding, LayerProvenance, Location, Severity};
use rsafe::report::json::JsonReport;

/// Synthetic, well-formed values (random characters, belonging to nobody).
const GITHUB_TOKEN: &str = "ghp_Vb7QmX2kR9sLt4Nw8ZpC1yDf6Hj3Ka5Ue0Gi";
const GITLAB_TOKEN: &str = "glpat-Rt8sKq2VmZx4Lp7NwB3c";
const DATADOG_KEY: &str = "4c9e1b7a2f6d08e35b1a9c7d2e4f6a81";
/// The Secret's `DB_PASSWORD`, before base64.
const DB_PASSWORD: &str = "Yq4kR8sWq2zNt7Lm";
const SECRET_PATH: &str = "/srv/app/k8s/db-secret.yaml";
const ENV_PATH: &str = "/srv/app/.env";
const POD_PATH: &str = "/srv/app/k8s/deployment.yaml";

fn db_password_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(DB_PASSWORD)
}

/// Every planted value, in every form it is written in.
fn planted() -> Vec<String> {
    vec![
        GITHUB_TOKEN.into(),
        GITLAB_TOKEN.into(),
        DATADOG_KEY.into(),
        DB_PASSWORD.into(),
        db_password_b64(),
    ]
}

fn umoci(layout: &Path, tag: &str, args: &[&str]) -> Command {
    let mut c = Command::new("umoci");
    c.args(args)
        .arg("--image")
        .arg(format!("{}:{tag}", layout.display()));
    c
}

/// Unpacks `layout:latest`, lets `edit` change the root filesystem and commits one new layer.
fn layer(layout: &Path, created_by: &str, edit: impl FnOnce(&Path)) {
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    let mut unpack = umoci(layout, "latest", &["unpack"]);
    if !support::is_root() {
        unpack.arg("--rootless");
    }
    support::sh(unpack.arg(&bundle));
    edit(&bundle.join("rootfs"));
    support::sh(
        umoci(layout, "latest", &["repack"])
            .args(["--history.created", support::CREATED])
            .args(["--history.created_by", created_by])
            .arg(&bundle),
    );
}

fn write(root: &Path, path: &str, text: &str) {
    let file = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(file, text).unwrap();
}

/// busybox · 2 the app's deployment files with the secrets · 3 `rm` of them.
fn layout() -> PathBuf {
    static ONCE: OnceLock<PathBuf> = OnceLock::new();
    ONCE.get_or_init(|| {
        let base = support::busybox_layout();
        support::fixture("oci-audit-secrets-v1", |l| {
            support::sh(Command::new("cp").arg("-a").arg(&base).arg(l));
            layer(l, "COPY . /srv/app", |r| {
                let b64 = db_password_b64();
                write(
                    r,
                    SECRET_PATH,
                    &format!(
                        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n  DB_USER: YXBw\n  DB_PASSWORD: {b64}\n"
                    ),
                );
                write(
                    r,
                    ENV_PATH,
                    &format!("NODE_ENV=production\nGITHUB_TOKEN={GITHUB_TOKEN}\nGITLAB_TOKEN={GITLAB_TOKEN}\n"),
                );
                write(
                    r,
                    POD_PATH,
                    &format!(
                        "spec:\n  containers:\n    - name: app\n      env:\n        - name: LOG_LEVEL\n          value: info\n        - name: DD_API_KEY\n          value: \"{DATADOG_KEY}\"\n"
                    ),
                );
            });
            layer(l, "RUN rm -rf /srv/app/.env /srv/app/k8s", |r| {
                fs::remove_file(r.join(ENV_PATH.trim_start_matches('/'))).unwrap();
                fs::remove_dir_all(r.join("srv/app/k8s")).unwrap();
            });
            support::sh(Command::new("umoci").args(["gc", "--layout"]).arg(l));
        })
    })
    .clone()
}

fn have_umoci() -> bool {
    support::have("umoci", support::tool("umoci"))
}

/// `rsafe audit IMAGE --format FORMAT`: (exit code, stdout, stderr).
fn audit(format: &str) -> (i32, String, String) {
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .arg("audit")
        .arg(format!("{}:latest", layout().display()))
        .args(["--format", format, "-q"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The secret findings at `path`, with their layer.
fn at<'a>(r: &'a JsonReport, path: &str) -> Vec<(&'a Finding, &'a LayerProvenance, Option<u32>)> {
    r.findings
        .iter()
        .filter_map(|f| match &f.location {
            Location::ImageFile {
                path: p,
                line,
                layer: Some(l),
            } if p == path && f.rule.starts_with("secret.") => Some((f, l, *line)),
            _ => None,
        })
        .collect()
}

#[test]
fn secrets_of_a_deleted_layer_are_reported_with_their_layer_and_never_printed() {
    if !have_umoci() {
        return;
    }
    let (code, json, stderr) = audit("json");
    assert_eq!(code, 0, "{stderr}");
    let report: JsonReport = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    let expected = [
        (SECRET_PATH, "secret.kubernetes-secret", 8, "DB_PASSWORD: "),
        (ENV_PATH, "secret.github-token", 2, ""),
        (ENV_PATH, "secret.gitlab-token", 3, ""),
        (POD_PATH, "secret.datadog-key", 8, "DD_API_KEY: "),
    ];
    for (path, rule, line, key) in expected {
        let found = at(&report, path);
        let Some((f, layer, at_line)) = found.iter().find(|(f, ..)| f.rule == rule) else {
            let rules: Vec<_> = found.iter().map(|(f, ..)| f.rule.as_str()).collect();
            panic!("{rule} not reported at {path}; there: {rules:?}");
        };
        assert_eq!(*at_line, Some(line), "{rule} at {path}");
        assert_eq!(layer.index, 1, "{rule}: added by layer 2");
        assert_eq!(layer.removed_in, Some(2), "{rule}: deleted by layer 3");
        assert_eq!(layer.created_by.as_deref(), Some("COPY . /srv/app"));
        assert!(f.severity >= Severity::High, "{rule}: {:?}", f.severity);
        let excerpt = &f.evidence.as_ref().expect("evidence").excerpt;
        assert!(excerpt.starts_with(key), "{rule}: excerpt {excerpt:?}");
    }
    // The Secret's DB_USER is too short to be a credential (`app`); nothing else is reported.
    let secrets = report
        .findings
        .iter()
        .filter(|f| f.rule.starts_with("secret."))
        .count();
    assert_eq!(secrets, expected.len(), "{:#?}", report.findings);

    let (_, table, table_err) = audit("table");
    assert!(
        table.contains(&format!(
            "layer 2 {ENV_PATH}:2 (deleted in layer 3, still present in layer 2)"
        )),
        "table does not place the GitHub token"
    );
    let (_, sarif, sarif_err) = audit("sarif");
    assert!(
        sarif.contains("secret.kubernetes-secret"),
        "sarif lacks the Secret finding"
    );
    for (name, output) in [
        ("json", &json),
        ("json stderr", &stderr),
        ("table", &table),
        ("table stderr", &table_err),
        ("sarif", &sarif),
        ("sarif stderr", &sarif_err),
    ] {
        assert_no_piece_of_a_secret(name, output);
    }
}

/// Fails, naming the value by its index only, when any 8 consecutive characters of a planted
/// value appear in `output`.
fn assert_no_piece_of_a_secret(name: &str, output: &str) {
    for (i, secret) in planted().iter().enumerate() {
        let bytes = secret.as_bytes();
        for start in 0..=bytes.len().saturating_sub(8) {
            let window = &secret[start..start + 8];
            assert!(
                !output.contains(window),
                "{name} output holds characters {start}..{} of planted value #{i}",
                start + 8
            );
        }
    }
}

/// Synthetic values in the shapes other scanners' authors use in their fixtures
/// (`bench/secrets-foreign.sh` measures on the real ones): an AWS key id with digits outside
/// base32 inside an HTTP response body, a short fine-grained GitHub token, a compact JWE, a
/// Square OAuth secret and a base64 access token, and a 42 Intra secret with no name before it.
const FOREIGN_SHAPES: [(&str, &str); 6] = [
    ("aws_access_key", "AKIAQ80ZT91MRX8JC4W9"),
    ("github", "github_pat_Vb7QmX2kR9sLt4Nw8ZpC1yDf6Hj3Ka5Ue0Gi"),
    (
        "jwe",
        "eyJhbGciOiAiUlNBLU9BRVAiLCAiZW5jIjogIkEyNTZHQ00ifQ.Qm8xRz3kT7vYp2LwN5sHcJ9dF4gA1uE6oKiX0tBnMrWqZ.c4Tj8PmV2xLr.Hw7Kq3Zs9Nb1Vd5Fg0Jy4Rt8Lm2Px6Ce.Bn3Vx7Zq1Kw5Ts9Mf2Hd",
    ),
    (
        "square_secret",
        "sq0csp-Tb4Wq9Lm2Zx7Kc1Rv8Ns3Hd6Fg0Jy5Pa4Ue9Io2Km7Q",
    ),
    (
        "square_token",
        "EAAA9kTq2Lm7Zx4Wc1Rv8Ns3Hd+Fg0Jy5Pa4Ue9Io2Km7Qb6Vt3Xn8Gh1Js=Df5L",
    ),
    (
        "intra",
        "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",
    ),
];

#[test]
fn other_scanners_fixture_shapes_are_found_per_line_and_never_printed() {
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY . /srv/app/\n",
    )
    .unwrap();
    // one value a line, bare (ripsecrets' one_per_line convention), then the AWS id in a JSON
    // body after HTTP headers (its aws_json fixture)
    let mut lines: Vec<String> = FOREIGN_SHAPES[1..]
        .iter()
        .map(|(_, v)| v.to_string())
        .collect();
    lines.push(String::new());
    fs::write(ctx.path().join("one_per_line"), lines.join("\n")).unwrap();
    let body = format!(
        "HTTP/1.1 200 OK\nContent-Type: application/json\n\n{{\n  \"data\": {{\n    \"{}\": \"{}\",\n    \"region\": \"us-west-2\"\n  }}\n}}\n",
        FOREIGN_SHAPES[0].0, FOREIGN_SHAPES[0].1
    );
    fs::write(ctx.path().join("aws_json"), body).unwrap();
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .arg("audit")
        .arg(ctx.path())
        .args(["--format", "json", "-q"])
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: JsonReport = serde_json::from_str(&json).unwrap_or_else(|e| {
        panic!("rsafe audit did not print a JSON report ({e}); stderr: {stderr}")
    });
    let lines_of = |file: &str| -> Vec<u32> {
        report
            .findings
            .iter()
            .filter(|f| f.rule.starts_with("secret."))
            .filter_map(|f| match &f.location {
                Location::File { path, line, .. } if path.ends_with(file) => *line,
                _ => None,
            })
            .collect()
    };
    let found = lines_of("/one_per_line");
    for (i, (name, _)) in FOREIGN_SHAPES[1..].iter().enumerate() {
        let line = i as u32 + 1;
        assert!(
            found.contains(&line),
            "{name} on line {line} was not reported: {found:?}"
        );
    }
    assert_eq!(
        lines_of("/aws_json"),
        vec![6],
        "the AWS key id in the JSON body"
    );
    for (i, (_, value)) in FOREIGN_SHAPES.iter().enumerate() {
        for start in 0..=value.len().saturating_sub(8) {
            let window = &value[start..start + 8];
            assert!(
                !json.contains(window) && !stderr.contains(window),
                "the output holds characters {start}..{} of value #{i}",
                start + 8
            );
        }
    }
}

/// Synthetic values in the shapes of gitleaks' rule samples (`bench/secrets-foreign.sh` scores
/// the real ones), one a line: a Telegram bot token with a 6-digit id in a constructor and in a
/// Bot API URL, a Flutterwave test-mode secret key, and random lower-case letters, digits and
/// underscores under an `_api_token` name. The last two lines are gitleaks' own false positives
/// for Telegram (bot ids of 4 and 17 digits) and must not be reported.
const GITLEAKS_SHAPES: [&str; 6] = [
    "const bot = new Telegraf(\"604718:AKq2-Vb9Tx4Lm7Wc1Rz8Ns3Hd6Fg0Jy5Pa4\")",
    "hook: https://api.telegram.org/bot604718:AKq2-Vb9Tx4Lm7Wc1Rz8Ns3Hd6Fg0Jy5Pa4/sendMessage",
    "FLW_SECRET_KEY=FLWSECK_TEST-9d4c1e7a2b5f8036c1e9a4d7b2f5c8e0-X",
    "relay_api_token = \"q8m2zx7k4v_1tb6pw3j9c_r0n5yh8e\"",
    "telegram_api_token = \"6047:AKq2-Vb9Tx4Lm7Wc1Rz8Ns3Hd6Fg0Jy5Pa4\"",
    "telegram_api_token = \"60471839205718264:AKq2-Vb9Tx4Lm7Wc1Rz8Ns3Hd6Fg0Jy5Pa4\"",
];

#[test]
fn gitleaks_rule_sample_shapes_are_found_and_its_false_positives_are_not() {
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY . /srv/app/\n",
    )
    .unwrap();
    fs::write(
        ctx.path().join("samples"),
        GITLEAKS_SHAPES.join("\n") + "\n",
    )
    .unwrap();
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .arg("audit")
        .arg(ctx.path())
        .args(["--format", "json", "-q"])
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: JsonReport = serde_json::from_str(&json).unwrap_or_else(|e| {
        panic!("rsafe audit did not print a JSON report ({e}); stderr: {stderr}")
    });
    let mut found: Vec<u32> = report
        .findings
        .iter()
        .filter(|f| f.rule.starts_with("secret.") && f.severity != Severity::Info)
        .filter_map(|f| match &f.location {
            Location::File { path, line, .. } if path.ends_with("/samples") => *line,
            _ => None,
        })
        .collect();
    found.sort_unstable();
    found.dedup();
    assert_eq!(
        found,
        vec![1, 2, 3, 4],
        "lines reported (5 and 6 are gitleaks' fps)"
    );
    let values = [
        "604718:AKq2-Vb9Tx4Lm7Wc1Rz8Ns3Hd6Fg0Jy5Pa4",
        "FLWSECK_TEST-9d4c1e7a2b5f8036c1e9a4d7b2f5c8e0-X",
        "q8m2zx7k4v_1tb6pw3j9c_r0n5yh8e",
    ];
    for (i, value) in values.iter().enumerate() {
        for start in 0..=value.len().saturating_sub(8) {
            let window = &value[start..start + 8];
            assert!(
                !json.contains(window) && !stderr.contains(window),
                "the output holds characters {start}..{} of value #{i}",
                start + 8
            );
        }
    }
}
