//! `rsafe audit` for Dockerfiles, compose files and build contexts, at the library level.
//!
//! Every directory under `tests/fixtures/dockerfile/` is a case: the files to audit plus an
//! `expected.toml` naming the audits to run and the exact findings (rule id, file, line) they
//! must produce — no more, no fewer. Clean counterparts list no findings. Cases that need
//! things git cannot hold (a `.git` directory) are built in code below.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rsafe::audit::compose::{ComposeError, audit_compose};
use rsafe::audit::context::{ContextError, ContextFiles, audit_context, dockerignore::Matcher};
use rsafe::audit::dockerfile::{DockerfileError, audit_dockerfile, rules};
use rsafe::audit::secrets::SecretScanner;
use rsafe::audit::{Finding, Location, Severity};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Expected {
    description: String,
    audit: Vec<Audit>,
    #[serde(default)]
    finding: Vec<ExpectedFinding>,
}

#[derive(Debug, Deserialize)]
struct Audit {
    kind: String,
    path: String,
}

#[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct ExpectedFinding {
    rule: String,
    file: String,
    line: Option<u32>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dockerfile")
}

fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn scanner() -> &'static SecretScanner {
    static SCANNER: std::sync::OnceLock<SecretScanner> = std::sync::OnceLock::new();
    SCANNER.get_or_init(|| SecretScanner::builtin().unwrap())
}

fn run(dir: &Path, audit: &Audit) -> Vec<Finding> {
    let target = dir.join(&audit.path);
    let s = scanner();
    match audit.kind.as_str() {
        "dockerfile" => audit_dockerfile(&target, s).unwrap_or_else(|e| panic!("{e}")),
        "compose" => audit_compose(&target, s).unwrap_or_else(|e| panic!("{e}")),
        "context" => audit_context(&target, s).unwrap_or_else(|e| panic!("{e}")),
        other => panic!("unknown audit kind {other} in {}", dir.display()),
    }
}

/// A finding as (rule, file relative to the case directory, line).
fn key(dir: &Path, f: &Finding) -> ExpectedFinding {
    let Location::File { path, line, .. } = &f.location else {
        panic!("not a file location: {f:?}");
    };
    let rel = Path::new(path)
        .strip_prefix(dir)
        .unwrap_or_else(|_| panic!("{path} is outside {}", dir.display()));
    let file = rel.to_string_lossy().trim_start_matches("./").to_string();
    ExpectedFinding {
        rule: f.rule.clone(),
        file,
        line: *line,
    }
}

fn all_findings() -> BTreeMap<PathBuf, (Expected, Vec<Finding>)> {
    let mut out = BTreeMap::new();
    for dir in cases() {
        let expected: Expected =
            toml::from_str(&fs::read_to_string(dir.join("expected.toml")).unwrap()).unwrap();
        let findings = expected.audit.iter().flat_map(|a| run(&dir, a)).collect();
        out.insert(dir, (expected, findings));
    }
    out
}

#[test]
fn every_fixture_gives_exactly_its_expected_findings() {
    let mut failures = Vec::new();
    let all = all_findings();
    assert!(all.len() >= 12, "only {} fixtures", all.len());
    for (dir, (expected, findings)) in &all {
        if std::env::var_os("RSAFE_SHOW_FINDINGS").is_some() {
            for f in findings {
                eprintln!("{} [{}] {} — {}", f.rule, f.severity, f.location, f.title);
            }
        }
        let mut got: Vec<ExpectedFinding> = findings.iter().map(|f| key(dir, f)).collect();
        let mut want = expected.finding.clone();
        got.sort();
        want.sort();
        if got != want {
            let detail: Vec<String> = findings
                .iter()
                .map(|f| format!("    {} {} — {}", f.rule, f.location, f.title))
                .collect();
            failures.push(format!(
                "{} ({})\n  want {want:#?}\n  got  {got:#?}\n  findings:\n{}",
                dir.display(),
                expected.description,
                detail.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_rule_is_exercised_and_documented() {
    let catalogue = rules();
    let mut ids: Vec<&str> = catalogue.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate rule ids");
    for r in &catalogue {
        assert!(
            ["dockerfile.", "compose.", "context."]
                .iter()
                .any(|p| r.id.starts_with(p)),
            "{}",
            r.id
        );
        assert!(
            !r.title.is_empty() && r.description.len() > 40 && r.remediation.len() > 20,
            "{} is not documented",
            r.id
        );
    }
    let mut exercised: Vec<String> = all_findings()
        .values()
        .flat_map(|(e, _)| e.finding.iter().map(|f| f.rule.clone()))
        .collect();
    // Built in code below (git cannot hold a .git directory as a fixture).
    exercised.push("context.git-in-image".into());
    for r in &catalogue {
        assert!(exercised.contains(&r.id), "no fixture exercises {}", r.id);
    }
}

#[test]
fn findings_never_carry_the_secret() {
    const SECRETS: &[&str] = &[
        "npm_ytr53RR7Cw32ZI5qt2gkvjNiGC5OeQaZGx2n",
        "Sup3r-S3cret-Pa55",
        "ghp_dBQQRQVHChrfDqNcM0hFHTs1X8cC03OFcXb5",
        "Syn-th3tic-registry-pw",
        "tok_Synthetic0nly_1234567890",
        "dev-key-not-for-prod",
        "somewordpress",
        "Synth-root-Pw-4242",
        "Synth-dev-Pw-4242",
        "Synth-test-Pw-4242",
        "Synth-db-Pw-4242",
    ];
    for (dir, (_, findings)) in all_findings() {
        let json = serde_json::to_string(&findings).unwrap();
        for s in SECRETS {
            assert!(!json.contains(s), "{} leaks {s} in {json}", dir.display());
        }
    }
}

#[test]
fn findings_read_well() {
    let all = all_findings();
    let (_, findings) = &all[&fixtures().join("multistage-secret-leak")];
    let leak = findings
        .iter()
        .find(|f| f.rule == "dockerfile.secret-file-in-image")
        .unwrap();
    assert_eq!(leak.severity, Severity::Critical);
    assert!(
        leak.title.contains(".npmrc") && leak.title.contains("COPY --from at line 16"),
        "{}",
        leak.title
    );
    // A base user rsafe cannot know is "unknown" at low severity, naming the image or the
    // build argument; an entrypoint that drops root lowers "runs as root" to low.
    let (_, findings) = &all[&fixtures().join("user-from-base")];
    let titles: Vec<(&str, Severity)> = findings
        .iter()
        .map(|f| (f.title.as_str(), f.severity))
        .collect();
    assert_eq!(
        titles,
        vec![
            (
                "Final stage sets no USER: it runs as whatever user quay.io/jupyter/scipy-notebook:2024-05-27 sets (not in the local image store: unknown)",
                Severity::Low
            ),
            (
                "Final stage sets no USER and its base image comes from build argument ${BASE_IMAGE} (no default): who it runs as is unknown",
                Severity::Low
            ),
        ]
    );
    let (_, findings) = &all[&fixtures().join("entrypoint-drops-root")];
    let severities: Vec<Severity> = findings.iter().map(|f| f.severity).collect();
    assert_eq!(
        severities,
        vec![Severity::Low, Severity::Low, Severity::High]
    );
    assert!(
        findings[1].title.ends_with(
            "the base image's entrypoint drops to the service's user with gosu (su-exec on alpine)"
        ),
        "{}",
        findings[1].title
    );
    assert!(
        findings[0]
            .title
            .ends_with("drops to an unprivileged user with su-exec"),
        "{}",
        findings[0].title
    );
    let (_, findings) = &all[&fixtures().join("root-default")];
    assert!(
        findings
            .iter()
            .any(|f| f.rule == "dockerfile.user-root" && f.severity == Severity::High)
    );
    let (_, findings) = &all[&fixtures().join("compose-false-positives")];
    let shared = findings
        .iter()
        .find(|f| f.rule == "compose.secret-in-env-file")
        .unwrap();
    assert_eq!(
        shared.title,
        "env_file of services dovecot-mailcow, postfix-mailcow sets DBPASS to a literal secret"
    );
    let (_, findings) = &all[&fixtures().join("compose-dangerous")];
    let sock = findings
        .iter()
        .find(|f| f.rule == "compose.docker-socket-mount")
        .unwrap();
    assert_eq!(
        sock.title,
        "Service agent mounts the container runtime socket /var/run/docker.sock (read-only)"
    );
    assert!(
        sock.location.to_string().ends_with("compose.yaml:26:9"),
        "{}",
        sock.location
    );
}

#[derive(Debug, Deserialize)]
struct Stacks {
    file: Vec<Stack>,
}

#[derive(Debug, Deserialize)]
struct Stack {
    path: String,
    services: usize,
    #[serde(default)]
    high: Vec<String>,
}

/// Large compose files in the shapes of sentry self-hosted, mailcow, immich and supabase parse
/// as Compose reads them, with all their services, and give exactly the high and critical
/// findings listed for them (each judged true).
#[test]
fn large_compose_stacks_parse_and_only_true_high_findings() {
    let dir = fixtures().join("compose-stacks");
    let stacks: Stacks =
        toml::from_str(&fs::read_to_string(dir.join("expected-high.toml")).unwrap()).unwrap();
    assert_eq!(stacks.file.len(), 4);
    for stack in &stacks.file {
        let path = dir.join(&stack.path);
        let file = rsafe::audit::compose::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(file.services().count(), stack.services, "{}", stack.path);
        let findings = audit_compose(&path, scanner()).unwrap();
        let mut high: Vec<String> = findings
            .iter()
            .filter(|f| f.severity >= Severity::High)
            .map(|f| {
                let Location::File { line, .. } = &f.location else {
                    panic!("{f:?}")
                };
                format!("{}@{}", f.rule, line.unwrap_or(0))
            })
            .collect();
        let mut want = stack.high.clone();
        high.sort();
        want.sort();
        assert_eq!(high, want, "{}", stack.path);
    }
}

/// A build context made in a temporary directory.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    dir
}

#[test]
fn git_directory_copied_into_the_image() {
    let ctx = tree(&[
        (
            "Dockerfile",
            "FROM alpine:3.20\nWORKDIR /src\nCOPY . .\nUSER 1000\n",
        ),
        (".git/HEAD", "ref: refs/heads/main\n"),
        (
            ".git/config",
            "[remote \"origin\"]\n\turl = https://x-access-token:synthetic@example.com/org/repo.git\n",
        ),
        ("main.c", "int main(void) { return 0; }\n"),
    ]);
    let findings = audit_context(ctx.path(), scanner()).unwrap();
    let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(
        rules,
        vec![
            "dockerfile.copy-context-no-dockerignore",
            "context.git-in-image",
            "secret.file.git-config-credentials"
        ],
        "{findings:#?}"
    );
    let token = &findings[2];
    assert!(
        token.location.to_string().ends_with(".git/config:2:31"),
        "{}",
        token.location
    );
    assert!(
        token
            .title
            .ends_with("copied into the final image at /src/.git/config (Dockerfile:3)"),
        "{}",
        token.title
    );
    // With .git excluded, nothing is left but the missing .env/keys exclusions.
    fs::write(
        ctx.path().join(".dockerignore"),
        ".git\n.env\n*.pem\n*.key\nid_*\n",
    )
    .unwrap();
    assert!(audit_context(ctx.path(), scanner()).unwrap().is_empty());
}

/// A PHP project whose source folder is named `Secret/` (its classes encrypt things): file
/// rules look at well-known names and at content, not at any path segment.
#[test]
fn a_source_folder_named_secret_is_code() {
    let ctx = tree(&[
        (
            "Dockerfile",
            "FROM php:8.3-fpm-alpine\nWORKDIR /var/www/html\nCOPY . .\nUSER www-data\n",
        ),
        (".dockerignore", ".git\n.env\n*.pem\n*.key\nid_*\n"),
        (
            "src/Secret/Encrypter.php",
            "<?php\nnamespace App\\Secret;\nfinal class Encrypter { public function __construct(private string $key) {} }\n",
        ),
        (
            "src/Secret/KeyRing.php",
            "<?php\nnamespace App\\Secret;\ninterface KeyRing {}\n",
        ),
        ("secrets/db_password.txt", "Synth-db-Pw-4242\n"),
    ]);
    let findings = audit_context(ctx.path(), scanner()).unwrap();
    let flagged: Vec<(&str, &str)> = findings
        .iter()
        .map(|f| (f.rule.as_str(), f.title.as_str()))
        .collect();
    assert!(
        flagged.iter().all(|(_, t)| !t.contains("Secret/")),
        "{flagged:#?}"
    );
    // Docker's `secrets/` convention still counts.
    assert!(
        flagged
            .iter()
            .any(|(r, t)| *r == "dockerfile.secret-file-in-image"
                && t.starts_with("secrets/db_password.txt")),
        "{flagged:#?}"
    );
}

#[test]
fn dockerignore_exceptions_reinclude_files_inside_excluded_directories() {
    let ctx = tree(&[
        ("secrets/prod.key", "x"),
        ("secrets/README.md", "how to get the keys"),
        ("docs/a.md", "a"),
        ("docs/internal/b.md", "b"),
        ("src/lib.rs", ""),
        ("src/.env", "A=1"),
    ]);
    let m =
        Matcher::from_dockerignore("secrets\n!secrets/README.md\n**/*.md\n!docs/a.md\n**/.env\n")
            .unwrap();
    let files = ContextFiles::walk(ctx.path(), Some(&m)).unwrap();
    let got: Vec<&str> = files.files.iter().map(String::as_str).collect();
    assert_eq!(got, vec!["docs/a.md", "src/lib.rs"]);
    // Without exceptions an excluded directory is not even entered.
    let m = Matcher::from_dockerignore("secrets\n").unwrap();
    let files = ContextFiles::walk(ctx.path(), Some(&m)).unwrap();
    assert!(files.files.iter().all(|f| !f.starts_with("secrets")));
    assert!(files.files.contains("src/.env"), "hidden files are sent");
}

#[test]
fn errors_name_the_file_and_line() {
    let ctx = tree(&[
        ("bad/Dockerfile", "FROM alpine\nRUN echo hi\nCOPY onlyone\n"),
        (
            "heredoc/Dockerfile",
            "FROM alpine\nRUN <<EOF\necho never closed\n",
        ),
        ("ignore/Dockerfile", "FROM alpine\nCOPY . .\n"),
        ("ignore/.dockerignore", "node_modules\n!\n"),
        (
            "compose/compose.yaml",
            "services:\n  web:\n    image: [unclosed\n",
        ),
        ("notcompose/compose.yaml", "services:\n  - web\n"),
    ]);
    let d = ctx.path();
    let e = audit_dockerfile(&d.join("bad/Dockerfile"), scanner()).unwrap_err();
    assert!(matches!(e, DockerfileError::Parse { line: 3, .. }));
    assert!(e.to_string().ends_with("bad/Dockerfile:3: COPY requires at least two arguments: one or more sources, then the destination"), "{e}");
    let e = audit_dockerfile(&d.join("heredoc/Dockerfile"), scanner()).unwrap_err();
    assert!(
        e.to_string()
            .contains("heredoc/Dockerfile:2: unterminated heredoc"),
        "{e}"
    );
    let e = audit_dockerfile(&d.join("ignore/Dockerfile"), scanner()).unwrap_err();
    assert!(
        e.to_string()
            .contains(".dockerignore:2: pattern \"!\": illegal exclusion pattern"),
        "{e}"
    );
    let e = audit_dockerfile(&d.join("missing/Dockerfile"), scanner()).unwrap_err();
    assert!(matches!(e, DockerfileError::Read { .. }));
    let e = audit_compose(&d.join("compose/compose.yaml"), scanner()).unwrap_err();
    assert!(matches!(e, ComposeError::Yaml { .. }), "{e}");
    assert!(e.to_string().contains("compose/compose.yaml:"), "{e}");
    let e = audit_compose(&d.join("notcompose/compose.yaml"), scanner()).unwrap_err();
    assert!(matches!(e, ComposeError::NotCompose { line: 2, .. }), "{e}");
    let e = audit_context(&d.join("bad/Dockerfile"), scanner()).unwrap_err();
    assert!(matches!(e, ContextError::NotADirectory { .. }));
    let empty = tree(&[("README.md", "nothing to build")]);
    assert!(matches!(
        audit_context(empty.path(), scanner()).unwrap_err(),
        ContextError::NothingToAudit { .. }
    ));
    // Every error is one line.
    for e in [
        audit_dockerfile(&d.join("bad/Dockerfile"), scanner())
            .unwrap_err()
            .to_string(),
        audit_compose(&d.join("compose/compose.yaml"), scanner())
            .unwrap_err()
            .to_string(),
    ] {
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn copy_exclude_keeps_files_out_of_the_image() {
    let ctx = tree(&[
        (
            "Dockerfile",
            "# syntax=docker/dockerfile:1.7-labs\nFROM alpine:3.20\nCOPY --exclude=*.pem --exclude=**/.env . /app\nUSER 1000\n",
        ),
        (
            ".env",
            "GITHUB_TOKEN=ghp_dBQQRQVHChrfDqNcM0hFHTs1X8cC03OFcXb5\n",
        ),
        (
            "conf/.env",
            "GITHUB_TOKEN=ghp_dBQQRQVHChrfDqNcM0hFHTs1X8cC03OFcXb5\n",
        ),
        ("tls.pem", "not a key\n"),
        ("id_rsa", "not a key either\n"),
    ]);
    let findings = audit_context(ctx.path(), scanner()).unwrap();
    let summary: Vec<(String, String)> = findings
        .iter()
        .map(|f| (f.rule.clone(), f.title.clone()))
        .collect();
    // id_rsa is not excluded: it is copied. The .env files are excluded: sent, not copied.
    assert!(
        summary
            .iter()
            .any(|(r, t)| r == "dockerfile.secret-file-in-image" && t.starts_with("id_rsa ")),
        "{summary:#?}"
    );
    assert!(
        !summary
            .iter()
            .any(|(r, t)| r == "dockerfile.secret-file-in-image"
                && (t.contains(".env") || t.contains("tls.pem"))),
        "{summary:#?}"
    );
    let tokens: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule == "secret.github-token")
        .collect();
    assert_eq!(tokens.len(), 2, "{summary:#?}");
    for t in tokens {
        assert_eq!(t.severity, Severity::Low, "{}", t.title);
        assert!(t.title.contains("not copied into the image"), "{}", t.title);
    }
}

/// Certificates and public keys are not credentials whatever they are called: with the context
/// at hand, a CA bundle `cacert.pem`, a server certificate `server.pem` and an apt repository's
/// `repo.gpg.key` (an armored public key) copied into the image are not reported by name; the
/// private key beside them, a `.pem` holding a certificate *and* its key, and a `secrets/` file
/// are. A symlink named `x.pem` is copied as a link, not as a key. Python modules in a package named `secrets` (the Google Cloud SDK has one) are code.
/// Key and certificate are made by the `openssl` CLI, as a project would make them.
#[test]
fn certificates_and_public_keys_are_not_credential_files() {
    let dir = tempfile::tempdir().unwrap();
    let ssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("openssl (bash .ci/setup-debian.sh installs it)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    ssl(&["genpkey", "-algorithm", "ed25519", "-out", "server.key"]);
    ssl(&[
        "req",
        "-x509",
        "-key",
        "server.key",
        "-subj",
        "/CN=test",
        "-days",
        "1",
        "-out",
        "server.pem",
    ]);
    ssl(&[
        "pkey",
        "-in",
        "server.key",
        "-pubout",
        "-out",
        "server.pub.key",
    ]);
    let read = |n: &str| fs::read_to_string(dir.path().join(n)).unwrap();
    let (cert, key, public) = (
        read("server.pem"),
        read("server.key"),
        read("server.pub.key"),
    );
    let pgp = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBFmUaEEBEADHHLcoMl2ffsBWcJ0Vxa0AGg\n=mtA8\n-----END PGP PUBLIC KEY BLOCK-----\n";
    let ctx = tree(&[
        ("Dockerfile", "FROM alpine:3.20\nCOPY . /app\nUSER 1000\n"),
        (
            "certifi/cacert.pem",
            &format!("# Issuer: CN=test\n{cert}\n{cert}"),
        ),
        ("tls/server.pem", &cert),
        ("tls/server.pub.key", &public),
        ("apt/repo.gpg.key", pgp),
        ("tls/server.key", &key),
        ("tls/bundle.pem", &format!("{cert}{key}")),
        ("secrets/db_password.txt", "hunter2-but-longer\n"),
        ("lib/secrets/__init__.py", "\n"),
        ("lib/secrets/__pycache__/args.cpython-312.pyc", "\0\0"),
    ]);
    // A symlink is copied as a link (Debian's /etc/ssl/certs/*.pem point into /usr/share).
    std::os::unix::fs::symlink(
        "/usr/share/ca-certificates/x.crt",
        ctx.path().join("tls/x.pem"),
    )
    .unwrap();
    let findings = audit_context(ctx.path(), scanner()).unwrap();
    let by_name: Vec<&str> = findings
        .iter()
        .filter(|f| f.rule == "dockerfile.secret-file-in-image")
        .filter_map(|f| f.evidence.as_ref().map(|e| e.excerpt.as_str()))
        .collect();
    let mut sorted = by_name.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "secrets/db_password.txt",
            "tls/bundle.pem",
            "tls/server.key"
        ],
        "{by_name:?}"
    );
}

/// The same fixtures through the real binary: `rsafe audit PATH --format json` routes each kind
/// of source (Dockerfile, compose file, build context) to its audit and reports exactly the
/// expected findings; `--fail-on` turns them into the exit code.
#[test]
fn the_binary_routes_sources_and_reports_the_same_findings() {
    let root = support::temp_root();
    let mut failures = Vec::new();
    for dir in cases() {
        let expected: Expected =
            toml::from_str(&fs::read_to_string(dir.join("expected.toml")).unwrap()).unwrap();
        let mut got = Vec::new();
        for audit in &expected.audit {
            let target = dir.join(&audit.path);
            let out = support::rsafe(root.path())
                .args(["audit", "--format", "json"])
                .arg(&target)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{}: {out:?}", target.display());
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let want_kind = if audit.kind == "context" {
                "directory"
            } else {
                &audit.kind
            };
            assert_eq!(json["target"]["kind"], *want_kind, "{}", target.display());
            for f in json["findings"].as_array().unwrap() {
                let path = f["location"]["path"].as_str().unwrap();
                let rel = Path::new(path).strip_prefix(&dir).unwrap();
                got.push(ExpectedFinding {
                    rule: f["rule"].as_str().unwrap().to_string(),
                    file: rel.to_string_lossy().trim_start_matches("./").to_string(),
                    line: f["location"]["line"].as_u64().map(|l| l as u32),
                });
            }
        }
        let mut want = expected.finding.clone();
        got.sort();
        want.sort();
        if got != want {
            failures.push(format!(
                "{}\n  want {want:#?}\n  got  {got:#?}",
                dir.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    let leaky = fixtures().join("path-traversal-app");
    support::rsafe(root.path())
        .args(["audit", "--fail-on", "high"])
        .arg(&leaky)
        .assert()
        .code(1);
    let clean = fixtures().join("nonroot");
    support::rsafe(root.path())
        .args(["audit", "--fail-on", "low"])
        .arg(&clean)
        .assert()
        .code(0);
}

/// `rsafe --root STORE audit Dockerfile` reads the base image's user from that store: a base
/// that sets a non-root user (the busybox layout's `latest`, user app) gives no root finding,
/// while the same Dockerfile audited against an empty store cannot know (low, "unknown").
#[test]
fn the_cli_reads_base_images_from_the_store_it_is_given() {
    if !support::have("umoci", support::tool("umoci")) {
        return;
    }
    let store = support::temp_root();
    let layout = support::busybox_layout();
    support::rsafe(store.path())
        .args(["load", &format!("{}:latest", layout.display())])
        .assert()
        .success();
    let dir = tempfile::tempdir().unwrap();
    let dockerfile = dir.path().join("Dockerfile");
    fs::write(&dockerfile, "FROM oci-busybox:latest\nRUN echo hi\n").unwrap();
    let rules_of = |root: &Path| -> Vec<String> {
        let out = support::rsafe(root)
            .args(["audit", "--format", "json"])
            .arg(&dockerfile)
            .output()
            .unwrap();
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    f["rule"].as_str().unwrap(),
                    f["severity"].as_str().unwrap()
                )
            })
            .collect()
    };
    let with_base = rules_of(store.path());
    assert!(
        !with_base
            .iter()
            .any(|r| r.starts_with("dockerfile.user-root")),
        "{with_base:?}"
    );
    let empty = tempfile::tempdir().unwrap();
    let without = rules_of(empty.path());
    assert!(
        without
            .iter()
            .any(|r| r.starts_with("dockerfile.user-") && r.ends_with(" low")),
        "{without:?}"
    );
}

/// `--fail-on` gates on every finding the ignore file did not accept, whatever
/// `--min-severity` leaves out of the report: showing only high findings must not let a medium
/// one through a medium gate.
#[test]
fn the_gate_sees_findings_the_display_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let dockerfile = dir.path().join("Dockerfile");
    // One medium finding (an unpinned base), nothing high.
    fs::write(&dockerfile, "FROM debian:latest\nUSER 1000\n").unwrap();
    let store = tempfile::tempdir().unwrap();
    let code = |args: &[&str]| {
        let out = support::rsafe(store.path())
            .args(["audit", "--format", "json"])
            .args(args)
            .arg(&dockerfile)
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            out.status.code(),
            report["summary"]["total"].as_u64(),
            report["summary"]["below_threshold"].as_u64(),
        )
    };
    assert_eq!(code(&["--fail-on", "medium"]), (Some(1), Some(1), Some(0)));
    assert_eq!(
        code(&["--min-severity", "high", "--fail-on", "medium"]),
        (Some(1), Some(0), Some(1))
    );
    assert_eq!(
        code(&["--min-severity", "high", "--fail-on", "high"]),
        (Some(0), Some(0), Some(1))
    );
}

/// `rsafe audit - < Dockerfile` (as `hadolint -`): every Dockerfile fixture read from standard
/// input gives the findings the file gives, at the path `-`, except the two rules that need the
/// build context's `.dockerignore` (a Dockerfile on stdin has no context, as `docker build -`).
#[test]
fn a_dockerfile_on_stdin_gets_the_same_rules_without_a_context() {
    const NEED_CONTEXT: &[&str] = &[
        "dockerfile.copy-context-no-dockerignore",
        "dockerfile.dockerignore-incomplete",
    ];
    let root = support::temp_root();
    let findings = |args: &[&str], stdin: Option<&Path>| -> Vec<(String, u64, String)> {
        let mut cmd = support::rsafe(root.path());
        cmd.args(["audit", "--format", "json"]).args(args);
        if let Some(file) = stdin {
            cmd.pipe_stdin(file).unwrap();
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?} {stdin:?}: {out:?}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["rule"].as_str().unwrap().to_string(),
                    f["location"]["line"].as_u64().unwrap_or(0),
                    f["location"]["path"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let mut compared = 0;
    for dir in cases() {
        let expected: Expected =
            toml::from_str(&fs::read_to_string(dir.join("expected.toml")).unwrap()).unwrap();
        for audit in expected.audit.iter().filter(|a| a.kind == "dockerfile") {
            let file = dir.join(&audit.path);
            let from_file: Vec<_> = findings(&[file.to_str().unwrap()], None)
                .into_iter()
                .filter(|(rule, _, path)| {
                    !NEED_CONTEXT.contains(&rule.as_str()) && Path::new(path) == file
                })
                .map(|(rule, line, _)| (rule, line))
                .collect();
            let from_stdin = findings(&["-"], Some(&file));
            assert!(
                from_stdin.iter().all(|(_, _, path)| path == "-"),
                "{from_stdin:?}"
            );
            let from_stdin: Vec<_> = from_stdin.into_iter().map(|(r, l, _)| (r, l)).collect();
            assert_eq!(from_stdin, from_file, "{}", file.display());
            compared += 1;
        }
    }
    assert!(compared >= 10, "only {compared} Dockerfile fixtures");
    // Forced, and a Dockerfile on stdin is not an image to pull or load.
    let file = fixtures().join("nonroot").join("Dockerfile");
    let forced = findings(&["--type", "dockerfile", "-"], Some(&file));
    assert_eq!(forced, findings(&["-"], Some(&file)));
}

/// A FIFO (or a device) named as the target is refused in one line at once: reading one with no
/// writer would hang a CI job forever.
#[test]
fn a_fifo_target_is_refused_not_waited_on() {
    let root = support::temp_root();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("Dockerfile");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let out = support::rsafe(root.path())
        .args(["audit"])
        .arg(&fifo)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        format!(
            "rsafe: {}: not a regular file or a directory (a pipe or a device); to audit a \
             stream, pipe it to `rsafe audit -`",
            fifo.display()
        )
    );
}
