use std::path::Path;
use std::sync::OnceLock;

use super::*;

fn builtin() -> &'static SecretScanner {
    static SCANNER: OnceLock<SecretScanner> = OnceLock::new();
    SCANNER.get_or_init(|| SecretScanner::builtin().expect("builtin rules compile"))
}

fn ids(hits: &[SecretHit]) -> Vec<&str> {
    hits.iter().map(|h| h.rule_id.as_str()).collect()
}

/// Synthetic values in the shape of real ones (not credentials).
const GITHUB: &str = "ghp_GWBOWWcuaA5zbWVb2FaCo7du45pKcP753ivd";
const AWS_SECRET: &str = "HVJWDBt2hWdQZUm14QhoxhLPAbQcEFUV2fsjGHb6";

#[test]
fn every_builtin_rule_reports_its_leaks_and_nothing_reports_its_safe_samples() {
    let failures = builtin().check_samples();
    let list: Vec<String> = failures.iter().map(ToString::to_string).collect();
    assert!(
        list.is_empty(),
        "{} sample failures:\n{}",
        list.len(),
        list.join("\n")
    );
}

#[test]
fn every_builtin_regex_compiles() {
    // The builtin rules are compiled lazily at scan time; this is where a bad one would show.
    let scanner = SecretScanner::builtin().expect("builtin rules load");
    assert_eq!(scanner.compile_all(), Ok(()));
}

#[test]
fn a_rules_file_with_a_regex_too_large_to_compile_fails_to_load_naming_the_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.toml");
    // Parses fine, but its automaton is far past the 16 MiB size limit.
    let text = r#"
        [[rule]]
        id = "secret.huge"
        title = "t"
        description = "d"
        remediation = "r"
        severity = "low"
        keywords = ["huge"]
        regex = 'huge(\w{1000}){1000}'
        leaks = ["x"]
        safe = ["y"]
    "#;
    std::fs::write(&path, text).expect("write");
    let e = SecretScanner::from_file(&path)
        .expect_err("too large")
        .to_string();
    assert!(e.contains("rule secret.huge: bad regex"), "{e}");
    assert!(!e.contains('\n'), "{e}");
    let e = SecretScanner::from_toml(text, Path::new("huge.toml"))
        .expect_err("too large")
        .to_string();
    assert!(
        e.starts_with("huge.toml: rule secret.huge: bad regex"),
        "{e}"
    );
    // Loaded lazily (as the builtin rules are), the load succeeds, the rule never matches, and
    // `compile_all` names it.
    let lazy = SecretScanner::load(text, Path::new("huge.toml"), Load::Lazy).expect("lazy");
    assert!(lazy.scan_text("huge").is_empty());
    let (rule, problem) = lazy.compile_all().expect_err("too large");
    assert_eq!(rule, "secret.huge");
    assert!(problem.starts_with("bad regex: "), "{problem}");
}

#[test]
fn the_scanner_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SecretScanner>();
}

#[test]
fn rules_lists_content_and_file_rules_with_prefixed_unique_ids() {
    let rules = builtin().rules();
    assert!(rules.len() >= 40, "{}", rules.len());
    let mut seen = std::collections::HashSet::new();
    for r in &rules {
        assert!(r.id.starts_with("secret."), "{}", r.id);
        assert!(seen.insert(r.id.clone()), "duplicate {}", r.id);
        assert!(!r.title.is_empty() && !r.description.is_empty() && !r.remediation.is_empty());
    }
    for id in [
        "secret.aws-access-key-id",
        "secret.private-key",
        "secret.file.ssh-private-key",
    ] {
        assert!(seen.contains(id), "{id}");
    }
}

#[test]
fn no_output_of_a_hit_contains_the_secret() {
    let text = format!("export GITHUB_TOKEN={GITHUB}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n");
    let hits = builtin().scan_text(&text);
    assert_eq!(
        ids(&hits),
        ["secret.github-token", "secret.aws-secret-access-key"]
    );
    for hit in &hits {
        let debug = format!("{hit:?}");
        let finding = hit.clone().into_finding(Location::ImageConfig {
            field: "Env[0]".into(),
        });
        let json = serde_json::to_string(&finding).expect("serializes");
        for shown in [
            &debug,
            &json,
            &finding
                .evidence
                .clone()
                .unwrap_or(Evidence::plain(""))
                .excerpt,
        ] {
            assert!(!shown.contains(&GITHUB[4..]), "{shown}");
            assert!(!shown.contains(&AWS_SECRET[4..]), "{shown}");
        }
    }
    assert!(format!("{:?}", builtin()).starts_with("SecretScanner"));
}

#[test]
fn hits_carry_line_column_and_the_assignment_name() {
    let text = "a=1\n\u{e9}\u{e9} token: x\n  DB_PASSWORD=Hk29sLq8Vw\n";
    let hits = builtin().scan_text(text);
    assert_eq!(ids(&hits), ["secret.generic-password"]);
    assert_eq!((hits[0].line, hits[0].column), (Some(3), Some(15)));
    assert!(
        hits[0].evidence.excerpt.starts_with("DB_PASSWORD: "),
        "{:?}",
        hits[0].evidence
    );
    let finding = hits[0].clone().into_finding(Location::File {
        path: "compose.yaml".into(),
        line: None,
        column: None,
    });
    assert_eq!(finding.location.to_string(), "compose.yaml:3:15");
}

#[test]
fn a_value_on_the_line_after_its_name_is_found_with_the_name_as_key() {
    // A pod spec: the generic rule and a provider rule that needs the variable's name (a
    // Datadog key is 32 hex digits, nothing without its name) both see `name:` + `value:`.
    let pod = "spec:\n  containers:\n    - name: app\n      env:\n        - name: LOG_LEVEL\n          value: info\n        - name: DB_PASSWORD\n          value: \"Hk29sLq8Vw\"\n        - name: DD_API_KEY\n          value: 2477018fd5df6992136eea0cc09b1de6\n        - name: API_TOKEN\n          valueFrom:\n            secretKeyRef: {name: app, key: token}\n";
    let hits = builtin().scan_file("/srv/app/deploy.yaml", pod.as_bytes());
    assert_eq!(
        ids(&hits),
        ["secret.generic-password", "secret.datadog-key"]
    );
    assert_eq!((hits[0].line, hits[0].column), (Some(8), Some(19)));
    assert!(
        hits[0].evidence.excerpt.starts_with("DB_PASSWORD: "),
        "{:?}",
        hits[0]
    );
    assert_eq!((hits[1].line, hits[1].column), (Some(10), Some(18)));
    assert!(
        hits[1].evidence.excerpt.starts_with("DD_API_KEY: "),
        "{:?}",
        hits[1]
    );
    // An ECS task definition, and the same entries as a config string.
    let ecs = "{\"environment\": [\n  {\n    \"name\": \"DB_PASSWORD\",\n    \"value\": \"Hk29sLq8Vw\"\n  }\n]}";
    assert_eq!(
        ids(&builtin().scan_file("/srv/app/task.json", ecs.as_bytes())),
        ["secret.generic-password"]
    );
    assert_eq!(ids(&builtin().scan_text(ecs)), ["secret.generic-password"]);
    // Placeholders, references and unrelated names stay quiet; so do vendored files.
    for quiet in [
        "- name: DB_PASSWORD\n  value: changeme\n",
        "- name: DB_PASSWORD\n  value: \"${DB_PASSWORD}\"\n",
        "- name: LOG_LEVEL\n  value: \"Hk29sLq8Vw\"\n",
        "# - name: DB_PASSWORD\n#   value: Hk29sLq8Vw\n",
    ] {
        assert!(
            builtin()
                .scan_file("/srv/app/deploy.yaml", quiet.as_bytes())
                .is_empty(),
            "{quiet}"
        );
    }
    let in_docs = "- name: DD_API_KEY\n  value: 2477018fd5df6992136eea0cc09b1de6\n";
    assert!(
        builtin()
            .scan_file("/usr/share/doc/app/deploy.yaml", in_docs.as_bytes())
            .is_empty()
    );
}

#[test]
fn pass_keys_in_objects_are_passwords_but_words_ending_in_pass_are_not() {
    let js = "const opts = {\n  auth: { user: 'app', pass: 'ORthho439?0qHy' },\n};\n";
    let hits = builtin().scan_file("/srv/app/mail.js", js.as_bytes());
    assert_eq!(ids(&hits), ["secret.generic-password"]);
    assert_eq!(hits[0].line, Some(2));
    let py = "for x in xs:\n    pass\nbypass = 'Yp4kR8sWq2zN'\n";
    assert!(
        builtin()
            .scan_file("/srv/app/a.py", py.as_bytes())
            .is_empty()
    );
}

#[test]
fn a_specific_rule_wins_over_a_generic_one_on_the_same_bytes() {
    let hits = builtin().scan_text(&format!("api_token = \"{GITHUB}\""));
    assert_eq!(ids(&hits), ["secret.github-token"]);
}

#[test]
fn a_claiming_file_rule_is_the_one_finding_for_its_file() {
    let content = format!(
        "[default]\naws_access_key_id = AKIAVQJXXVBOTHD2WTFL\naws_secret_access_key = {AWS_SECRET}\n"
    );
    let hits = builtin().scan_file("/root/.aws/credentials", content.as_bytes());
    assert_eq!(ids(&hits), ["secret.file.aws-credentials"]);
    assert_eq!(hits[0].line, Some(3));
    // The same content elsewhere is two content findings.
    let hits = builtin().scan_file("/srv/creds.ini", content.as_bytes());
    assert_eq!(
        ids(&hits),
        ["secret.aws-access-key-id", "secret.aws-secret-access-key"]
    );
}

#[test]
fn whole_file_rules_have_no_line_and_see_binary_content() {
    let db = b"SQLite format 3\0\x10\0\x01\x01";
    let hits = builtin().scan_file("home/u/.config/gcloud/credentials.db", db);
    assert_eq!(ids(&hits), ["secret.file.cloud-token-cache"]);
    assert_eq!((hits[0].line, hits[0].column), (None, None));
}

#[test]
fn binary_files_skip_content_rules() {
    let mut content = format!("GITHUB_TOKEN={GITHUB}\n").into_bytes();
    assert_eq!(builtin().scan_file("/opt/app/bin", &content).len(), 1);
    content.insert(0, 0);
    assert!(builtin().scan_file("/opt/app/bin", &content).is_empty());
    // NUL beyond the probe window does not make a file binary.
    let mut late = vec![b'x'; DEFAULT_BINARY_PROBE_BYTES + 1];
    late.push(0);
    late.extend_from_slice(format!("\nGITHUB_TOKEN={GITHUB}\n").as_bytes());
    assert_eq!(builtin().scan_file("/opt/app/bin", &late).len(), 1);
}

#[test]
fn content_beyond_the_cap_is_not_scanned() {
    let scanner = SecretScanner::builtin()
        .expect("builtin")
        .with_max_scan_bytes(64);
    assert_eq!(scanner.max_scan_bytes(), 64);
    let mut content = format!("GITHUB_TOKEN={GITHUB}\n");
    assert_eq!(scanner.scan_file("/app/a", content.as_bytes()).len(), 1);
    content.insert_str(0, &"#".repeat(64));
    assert!(scanner.scan_file("/app/a", content.as_bytes()).is_empty());
}

#[test]
fn vendored_paths_report_only_specific_formats() {
    let content = format!("password = \"Hk29sLq8Vw\"\ntoken = \"{GITHUB}\"\n");
    let app = builtin().scan_file("/srv/app/settings.py", content.as_bytes());
    assert_eq!(
        ids(&app),
        ["secret.generic-password", "secret.github-token"]
    );
    let vendored = builtin().scan_file(
        "/usr/lib/python3/dist-packages/lib/settings.py",
        content.as_bytes(),
    );
    assert_eq!(ids(&vendored), ["secret.github-token"]);
}

/// A synthetic unencrypted RSA key body (not a real key).
const RSA_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowkdgK7FI0b4iiLl3Ezomr0odA/v4+ffDNH0qdN7VExMzj83pcgPIrWZHt7O
SGqx7KXM1InwJNRHaFa87XwMt1fDRDJnRdzQQWk8Hd/KFbfUwm5TQuZxLQZ35Bqe
-----END RSA PRIVATE KEY-----
";

#[test]
fn app_directories_under_usr_and_elsewhere_are_not_vendored() {
    let content = format!("{RSA_KEY}password = \"Hk29sLq8Vw\"\n");
    for path in [
        "/usr/src/app/deploy/id_rsa",
        "/usr/src/myapi/config.py",
        "/usr/local/app/settings.py",
        "/usr/local/etc/app.conf",
        "/usr/local/bin/deploy.sh",
        "/usr/local/share/app/config.ini",
        "/usr/local/lib/app/config.js",
        "/opt/app/config.yaml",
        "/srv/www/config.php",
        "/app/deploy/key",
        "/home/dev/deploy.sh",
        "/root/deploy.sh",
        "/etc/app/config.ini",
        "deploy/id_rsa",
    ] {
        let hits = builtin().scan_file(path, content.as_bytes());
        assert_eq!(
            ids(&hits),
            ["secret.private-key", "secret.generic-password"],
            "{path}"
        );
    }
}

#[test]
fn distribution_toolchain_and_vendored_trees_keep_only_specific_formats() {
    let content = format!("{RSA_KEY}password = \"Hk29sLq8Vw\"\ntoken = \"{GITHUB}\"\n");
    for path in [
        "/usr/share/doc/openssl/demo/key.pem",
        "/usr/lib/python3.11/test/keycert.pem",
        "/usr/lib/node_modules/npm/lib/auth.js",
        "/lib/firmware/x.pem",
        "/usr/src/linux-headers-6.1.0-18-common/certs/signing.pem",
        "/usr/src/kernels/5.14.0/certs/x.pem",
        "/usr/local/go/src/crypto/tls/handshake_server_test.go",
        "/usr/local/lib/python3.12/ssl.py",
        "/usr/local/lib/python3.12/site-packages/botocore/data.py",
        "/usr/local/cargo/registry/src/index/x-1.0/src/lib.rs",
        "/usr/local/share/doc/node/guide.txt",
        "/opt/java/openjdk/lib/security/x.pem",
        "/app/node_modules/ssh2/test/fixtures/id_rsa",
        "/usr/src/app/node_modules/pkg/index.js",
        "/usr/src/app/tests/fixtures/key.pem",
        "/usr/local/app/docs/setup.sh",
        "/srv/app/vendor/lib/config.php",
    ] {
        let hits = builtin().scan_file(path, content.as_bytes());
        assert_eq!(ids(&hits), ["secret.github-token"], "{path}");
    }
}

#[test]
fn lock_files_are_not_read_and_checksums_are_not_secrets() {
    let scanner = builtin();
    assert!(!scanner.wants_path("/app/package-lock.json", 1000));
    assert!(!scanner.wants_path("app/Cargo.lock", 1000));
    assert!(!scanner.wants_path("/usr/share/locale/de/LC_MESSAGES/x.mo", 1000));
    assert!(!scanner.wants_path("/etc/hosts", 0));
    assert!(scanner.wants_path("/etc/hosts", 10));
    assert!(scanner.wants_path("/root/.ssh/id_rsa", 10));
    let lock =
        r#""integrity": "sha512-J2v4Kyqi9eF8lEuefsB3jFYG5me3v0aIiMdYN2fFq6oCoS1UFyVlYONg==""#;
    assert!(
        scanner
            .scan_file("/app/package-lock.json", lock.as_bytes())
            .is_empty()
    );
    let sums = [
        "checksum = \"cf3c4b2fdd3a1ed8cf0ccf5ee33eb6dfd6770d43e0a2fa91787effb2121c506b\"",
        "golang.org/x/oauth2 v0.15.0 h1:s8pnnxNVzjWyrvYdFUQq5llS1PX2zhPXmccZv99h7uQ=",
        "cf3c4b2fdd3a1ed8cf0ccf5ee33eb6dfd6770d43e0a2fa91787effb2121c506b  app.tar.gz",
        "sha1 = \"6f2facd5ab3b46f9dda914c001dab5526f2facd5\"",
        "\"resolved\": \"https://registry.npmjs.org/x/-/x-1.0.0.tgz#6f2facd5ab3b46f9dda914c001dab552\"",
    ];
    for line in sums {
        assert!(
            scanner
                .scan_file("/app/deps.txt", line.as_bytes())
                .is_empty(),
            "{line}"
        );
    }
}

#[test]
fn placeholders_are_not_secrets() {
    for text in [
        "API_KEY=changeme",
        "API_KEY=<token>",
        "API_KEY=${API_KEY}",
        "API_KEY=$API_KEY",
        "API_KEY=xxxxxxxxxxxxxxxxxxxxxxxx",
        "API_KEY=your_api_key",
        "API_KEY=example-key-1234567890",
        "API_KEY=dummy1234567890abcdef",
        "API_KEY=test1234567890abcdefg",
        "API_KEY=****************",
        "DB_PASSWORD=\"{{ db_password }}\"",
    ] {
        assert!(builtin().scan_text(text).is_empty(), "{text}");
    }
}

#[test]
fn multiple_secrets_in_one_file_are_all_reported_in_order() {
    let text = format!(
        "a: 1\ntoken: {GITHUB}\nb: 2\nstripe: sk_live_t7dC9HVfrRz3eKFIfNhqrWO9BzG9db057ANuHlwF5SEvPMZU\n"
    );
    let hits = builtin().scan_file("/srv/app/config.yaml", text.as_bytes());
    assert_eq!(ids(&hits), ["secret.github-token", "secret.stripe-key"]);
    assert_eq!(
        hits.iter().map(|h| h.line).collect::<Vec<_>>(),
        [Some(2), Some(4)]
    );
}

#[test]
fn requires_is_checked_against_the_whole_content() {
    let key = "-----BEGIN PRIVATE KEY-----\\nMIIEowkdgK7FI0b4iiLl3Ezomr0odA/v4+ffDNH0qdN7VExMzj83pcgPIrWZHt7OSGqx7KXM1InwJNRHaFa87XwMt1fDRDJnRdzQQWk8Hd\\n-----END PRIVATE KEY-----\\n";
    let sa = format!("{{\"private_key\": \"{key}\",\n\"type\": \"service_account\"}}");
    assert_eq!(
        ids(&builtin().scan_text(&sa)),
        ["secret.gcp-service-account"]
    );
    let other = format!("{{\"private_key\": \"{key}\"}}");
    assert_eq!(ids(&builtin().scan_text(&other)), ["secret.private-key"]);
}

#[test]
fn custom_rules_files_load_and_report_their_errors() {
    let text = r#"
        [[rule]]
        id = "secret.acme-token"
        title = "ACME token"
        description = "d"
        severity = "critical"
        remediation = "r"
        keywords = ["acme_"]
        regex = '\b(acme_[a-z0-9]{16})\b'
    "#;
    let scanner = SecretScanner::from_toml(text, Path::new("acme.toml")).expect("compiles");
    let hits = scanner.scan_text("ACME=acme_0123456789abcdef");
    assert_eq!(ids(&hits), ["secret.acme-token"]);
    assert!(scanner.scan_text("acme_0123456789abcdef0").is_empty());
    let e = SecretScanner::from_file(Path::new("/nonexistent/rules.toml")).expect_err("missing");
    assert!(
        e.to_string()
            .starts_with("/nonexistent/rules.toml: cannot read: "),
        "{e}"
    );
}

#[test]
fn case_sensitive_keywords_only_trigger_on_their_exact_case() {
    // "AKIA" in lowercase text must not wake the AWS rule, but the exact form does.
    let scanner = builtin();
    assert!(scanner.scan_text("akiavqjxxvbothd2wtfl").is_empty());
    assert_eq!(
        ids(&scanner.scan_text("AKIAVQJXXVBOTHD2WTFL")),
        ["secret.aws-access-key-id"]
    );
}

#[test]
fn overlap_resolution_keeps_disjoint_hits_and_the_best_of_overlapping_ones() {
    let f = |rule: RuleRef, precedence: i32, span: std::ops::Range<usize>| Found {
        origin: Origin {
            rule,
            precedence,
            claims_file: false,
        },
        whole_file: false,
        secret: span,
        key: None,
    };
    let kept = resolve_overlaps(vec![
        f(RuleRef::Content(3), 10, 0..40),
        f(RuleRef::Content(1), 50, 5..20),
        f(RuleRef::Content(2), 50, 50..60),
        f(RuleRef::Content(0), 10, 55..58),
        f(RuleRef::Content(0), 10, 60..70),
    ]);
    let spans: Vec<_> = kept
        .iter()
        .map(|k| (k.origin.rule, k.secret.clone()))
        .collect();
    assert_eq!(
        spans,
        [
            (RuleRef::Content(1), 5..20),
            (RuleRef::Content(2), 50..60),
            (RuleRef::Content(0), 60..70),
        ]
    );
}

#[test]
fn the_prefilter_scopes_rules_to_the_lines_holding_their_keywords() {
    let text = r#"
        [[rule]]
        id = "secret.line"
        title = "t"
        description = "d"
        severity = "low"
        remediation = "r"
        keywords = ["tok"]
        regex = 'tok=(\w+)'
        vendored = false

        [[rule]]
        id = "secret.block"
        title = "t"
        description = "d"
        severity = "low"
        remediation = "r"
        keywords = ["BEGIN"]
        keywords_case_sensitive = true
        multiline = true
        regex = '(?s)BEGIN(.+?)END'
    "#;
    let scanner = SecretScanner::from_toml(text, Path::new("t.toml")).expect("compiles");
    let content = b"a\nTOK tok=one tok=two\nb\ntok=three\nbegin\nBEGIN x\ny END\n";
    let scopes = scanner.prefilter.scopes(content, false);
    assert_eq!(scopes[0], Scope::Lines(vec![2..21, 24..33]));
    assert_eq!(scopes[1], Scope::Content);
    assert_eq!(
        scanner.prefilter.scopes(b"nothing here", false)[0],
        Scope::Untouched
    );
    // In a vendored file only `vendored = true` rules are looked for.
    assert_eq!(
        scanner.prefilter.scopes(content, true),
        [Scope::Untouched, Scope::Content]
    );
    let hits = scanner.scan_text(std::str::from_utf8(content).expect("utf-8"));
    let found: Vec<_> = hits
        .iter()
        .map(|h| (h.rule_id.as_str(), h.line, h.column))
        .collect();
    assert_eq!(
        found,
        [
            ("secret.line", Some(2), Some(9)),
            ("secret.line", Some(2), Some(17)),
            ("secret.line", Some(4), Some(5)),
            ("secret.block", Some(6), Some(7)),
        ]
    );
}

#[test]
fn evidence_is_one_printable_line() {
    let key = "-----BEGIN PRIVATE KEY-----\n\nMIIEowkdgK7FI0b4iiLl3Ezomr0odA/v4+ffDNH0qdN7VExMzj83pcgPIrWZHt7O\nSGqx7KXM1InwJNRHaFa87XwMt1fDRDJnRdzQQWk8Hd/KFbfUwm5TQuZxLQZ35Bqe\n-----END PRIVATE KEY-----\n";
    let hits = builtin().scan_file("/srv/tls/server.key", key.as_bytes());
    assert_eq!(ids(&hits), ["secret.private-key"]);
    assert!(
        hits[0].evidence.excerpt.starts_with("MIIE…"),
        "{:?}",
        hits[0].evidence
    );
    assert_eq!(hits[0].line, Some(3));
    assert_eq!(printable("a\u{1b}[31mb"), "a\\u{1b}[31mb");
}

#[test]
fn blanks_and_escaped_newlines_around_a_value_are_trimmed() {
    let text = b" \t\\n\r\nMIIE\\nbody \\r\\n\n";
    assert_eq!(&text[trim_blanks(text, 0..text.len())], b"MIIE\\nbody");
    assert!(trim_blanks(b" \\n ", 0..4).is_empty());
    assert_eq!(trim_blanks(b"\\x", 0..2), 0..2, "other escapes are kept");
}

#[test]
fn evidence_starts_at_the_value_for_every_kind_of_rule() {
    // A PEM key inlined in an env file: the capture starts with an escaped newline.
    let inline = format!(
        "TLS_KEY=\"-----BEGIN PRIVATE KEY-----\\n{}\\n-----END PRIVATE KEY-----\"\n",
        RSA_KEY
            .lines()
            .skip(1)
            .take(2)
            .collect::<Vec<_>>()
            .join("\\n")
    );
    let hits = builtin().scan_file("/srv/app/app.env", inline.as_bytes());
    let key = hits
        .iter()
        .find(|h| h.rule_id == "secret.private-key")
        .unwrap_or_else(|| panic!("{hits:?}"));
    assert!(
        key.evidence.excerpt.starts_with("MIIE…"),
        "{:?}",
        key.evidence
    );
    assert_eq!((key.line, key.column), (Some(1), Some(39)));
    // A whole-file rule: the file's surrounding blank lines are not part of the value.
    let body = RSA_KEY.replace("RSA PRIVATE", "OPENSSH PRIVATE");
    let padded = format!("\n\n{body}\n");
    let hits = builtin().scan_file("/etc/ssh/ssh_host_rsa_key", padded.as_bytes());
    assert_eq!(ids(&hits), ["secret.file.ssh-host-key"]);
    assert!(
        hits[0].evidence.excerpt.starts_with("----…"),
        "{:?}",
        hits[0].evidence
    );
    assert_eq!(
        hits[0].evidence.fingerprint.as_deref(),
        Some(crate::audit::finding::fingerprint(body.trim()).as_str())
    );
    // No hit of any rule starts or ends its excerpt with a blank.
    let mixed = format!("{RSA_KEY}\n  password = \"  Hk29sLq8Vw\"\ntoken=\"{GITHUB}\"\n");
    for hit in builtin().scan_file("/srv/app/mixed.conf", mixed.as_bytes()) {
        let e = &hit.evidence.excerpt;
        assert!(!e.starts_with(char::is_whitespace), "{hit:?}");
        assert!(!e.starts_with("\\"), "{hit:?}");
    }
}

#[test]
fn config_strings_from_images_and_compose_files() {
    let cases = [
        (
            format!("|1 GITHUB_TOKEN={GITHUB} /bin/sh -c git clone https://x"),
            "secret.github-token",
        ),
        (
            format!("RUN git clone https://ci:{GITHUB}@github.com/acme/app.git"),
            "secret.github-token",
        ),
        (
            "/bin/sh -c #(nop)  ENV MYSQL_ROOT_PASSWORD=Hk29sLq8Vw".into(),
            "secret.generic-password",
        ),
        (
            "      - POSTGRES_PASSWORD=Hk29sLq8Vw".into(),
            "secret.generic-password",
        ),
        (
            "      POSTGRES_PASSWORD: \"Hk29sLq8Vw\"".into(),
            "secret.generic-password",
        ),
        (
            "RUN curl -u deploy:Hk29sLq8Vw https://repo".into(),
            "secret.curl-basic-auth",
        ),
    ];
    for (text, rule) in &cases {
        assert_eq!(ids(&builtin().scan_text(text)), [*rule], "{text}");
    }
    let environ = format!("PATH=/usr/bin\0HOME=/root\0DB_PASSWORD=Hk29sLq8Vw\0GH={GITHUB}\0");
    let hits = builtin().scan_text(&environ);
    assert_eq!(
        ids(&hits),
        ["secret.generic-password", "secret.github-token"]
    );
    for clean in [
        "PATH=/usr/local/sbin:/usr/local/bin",
        "GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D",
        "PYTHON_SHA256=cf3c4b2fdd3a1ed8cf0ccf5ee33eb6dfd6770d43e0a2fa91787effb2121c506b",
        "/bin/sh -c #(nop)  CMD [\"nginx\" \"-g\" \"daemon off;\"]",
    ] {
        assert!(builtin().scan_text(clean).is_empty(), "{clean}");
    }
}

#[test]
fn dependencies_shipping_a_dotenv_are_not_the_images_secret() {
    let env = b"SESSION_SECRET=Hk29sLq8Vw\n";
    assert_eq!(
        ids(&builtin().scan_file("/app/.env", env)),
        ["secret.file.dotenv"]
    );
    assert!(
        builtin()
            .scan_file("/app/node_modules/pkg/.env", env)
            .is_empty()
    );
}

/// Runs a key-generation tool; false (skip) when it is missing, unless the run requires every
/// tool (`RSAFE_TEST_REQUIRE=1`, as in CI).
fn generate(dir: &Path, program: &str, args: &[&str]) -> bool {
    match std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) if out.status.success() => true,
        Ok(out) => panic!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if std::env::var("RSAFE_TEST_REQUIRE").is_ok_and(|v| v == "1") => {
            panic!("{program} is required (RSAFE_TEST_REQUIRE=1): {e}")
        }
        Err(_) => {
            eprintln!("skipping: {program} is missing");
            false
        }
    }
}

#[test]
fn real_keys_and_hashes_made_by_real_tools_are_found_and_classified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let keys: &[(&str, &[&str], &str)] = &[
        (
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-f", "ed"],
            "secret.private-key",
        ),
        (
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "passphrase", "-f", "ed-enc"],
            "secret.private-key-encrypted",
        ),
        (
            "ssh-keygen",
            &[
                "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f", "rsa",
            ],
            "secret.private-key",
        ),
        (
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ecdsa",
                "-m",
                "PEM",
                "-N",
                "passphrase",
                "-f",
                "ec-enc",
            ],
            "secret.private-key-encrypted",
        ),
        (
            "openssl",
            &["genpkey", "-algorithm", "ed25519", "-out", "p8"],
            "secret.private-key",
        ),
        (
            "openssl",
            &[
                "genpkey",
                "-algorithm",
                "ed25519",
                "-aes256",
                "-pass",
                "pass:pw",
                "-out",
                "p8-enc",
            ],
            "secret.private-key-encrypted",
        ),
        (
            "openssl",
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "ec",
            ],
            "secret.private-key",
        ),
    ];
    for (program, args, rule) in keys {
        if !generate(d, program, args) {
            continue;
        }
        let out = args[args.len() - 1];
        let key = std::fs::read(d.join(out)).expect("key written");
        let hits = builtin().scan_file(&format!("/srv/keys/{out}"), &key);
        assert_eq!(ids(&hits), [*rule], "{program} {args:?}");
        // The same key as a quoted multi-line value in a .env file: one finding, the key's,
        // not a second one for the `-----BEGIN` the assignment starts with.
        let mut env = b"APP_NAME=demo\nJWT_PRIVATE_KEY=\"".to_vec();
        env.extend_from_slice(&key);
        env.extend_from_slice(b"\"\nPORT=8080\n");
        let hits = builtin().scan_file("/app/.env", &env);
        assert_eq!(ids(&hits), [*rule], "{program} {args:?} in .env");
        if let Ok(public) = std::fs::read(d.join(format!("{out}.pub"))) {
            assert!(
                builtin()
                    .scan_file(&format!("/root/.ssh/{out}.pub"), &public)
                    .is_empty()
            );
        }
        if *program == "ssh-keygen" {
            let in_ssh_dir = builtin().scan_file("/root/.ssh/id_ed25519", &key);
            let expected = if rule.ends_with("encrypted") {
                *rule
            } else {
                "secret.file.ssh-private-key"
            };
            assert_eq!(ids(&in_ssh_dir), [expected], "{args:?} in .ssh");
        }
    }
    let hash = std::process::Command::new("openssl")
        .args(["passwd", "-6", "-salt", "GtFhIkLcwSc4Bbb9", "pw"])
        .output();
    if let Some(out) = hash.ok().filter(|o| o.status.success()) {
        let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let shadow = format!("root:*:19000:0:99999:7:::\nadmin:{hash}:19000:0:99999:7:::\n");
        let hits = builtin().scan_file("/etc/shadow", shadow.as_bytes());
        assert_eq!(ids(&hits), ["secret.file.password-hash"]);
        assert_eq!(hits[0].line, Some(2));
        assert!(
            hits[0].evidence.excerpt.starts_with("admin: "),
            "{:?}",
            hits[0].evidence
        );
        assert!(!format!("{:?}", hits[0]).contains(&hash[4..]));
    }
}

/// A Python docstring is documentation: OAuth libraries document their flows with RFC 6749's
/// example tokens and doctest output. The generic rules do not run there (as on a README), the
/// specific formats do, and the same assignment as code, or in an assigned triple-quoted
/// string, is still a finding.
#[test]
fn generic_rules_skip_python_docstrings_specific_ones_do_not() {
    let doc = format!(
        "def fetch_token(self):\n    \"\"\"Fetch a token.\n\n    >>> s.fetch_token(url)\n    {{'oauth_token_secret': '2kjshdfp92i34asdasd'}}\n    A GitHub token also works: {GITHUB}\n    \"\"\"\n"
    );
    let hits = builtin().scan_file("/srv/app/session.py", doc.as_bytes());
    assert_eq!(ids(&hits), ["secret.github-token"], "{hits:?}");
    // The same text as code, or in a string that is assigned: values, scanned as such.
    let code = "oauth_token_secret = '2kjshdfp92i34asdasd'\nCONFIG = \"\"\"\noauth_token_secret = '2kjshdfp92i34asdasd'\n\"\"\"\n";
    let hits = builtin().scan_file("/srv/app/settings.py", code.as_bytes());
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(hits.iter().all(|h| h.rule_id != "secret.github-token"));
    // Only Python files have docstrings: in a shell script the quotes mean something else.
    let sh = "\"\"\"\noauth_token_secret='2kjshdfp92i34asdasd'\n\"\"\"\n";
    assert_eq!(
        builtin().scan_file("/srv/app/run.sh", sh.as_bytes()).len(),
        1
    );
}
