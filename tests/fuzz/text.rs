//! Targets for the text formats: Dockerfiles, compose YAML, `.dockerignore`, `.rsafeignore`,
//! env files, seccomp JSON, policy and secret-rule TOML, image references, and what registries
//! send back (`WWW-Authenticate`, token and error bodies, manifests) and auth files.

use std::fs;
use std::path::Path;
use std::str::FromStr;

use rsafe::audit::compose::audit_compose;
use rsafe::audit::compose::env::{interpolate, parse_env_file};
use rsafe::audit::context::dockerignore::Matcher;
use rsafe::audit::dockerfile::audit_dockerfile;
use rsafe::audit::ignore::IgnoreList;
use rsafe::audit::secrets::SecretScanner;
use rsafe::audit::{Finding, Location, Severity};
use rsafe::image::digest::Digest;
use rsafe::image::reference::Reference;
use rsafe::image::registry::auth::{TokenRequest, TokenResponse, parse_challenges, preferred};
use rsafe::image::registry::client::parse_error_body;
use rsafe::image::registry::credentials;
use rsafe::image::registry::pull::identify;
use rsafe::runtime::policy::Policy;
use rsafe::runtime::seccomp::{SeccompProfile, compile};

use crate::engine::{Outcome, Target, one_line_naming, signature};
use crate::image::scanner;

/// Checks findings: secret evidence is redacted, no fake token from the corpus appears in
/// full, and there are not more findings than the input could justify.
fn check_findings(findings: &[Finding], input_len: usize) -> Result<(), String> {
    if findings.len() > 64 + input_len {
        return Err(format!(
            "{} findings from {input_len} bytes",
            findings.len()
        ));
    }
    for f in findings {
        if let Some(ev) = &f.evidence
            && ev.fingerprint.is_some()
            && !ev.excerpt.contains("[redacted")
        {
            return Err(format!("secret evidence of {} is not redacted", f.rule));
        }
    }
    let json = serde_json::to_string(findings).map_err(|e| e.to_string())?;
    crate::no_fake_secret(&json)
}

const DOCKERFILE_DICT: &[&[u8]] = &[
    b"FROM ",
    b" AS ",
    b"RUN ",
    b"CMD ",
    b"LABEL ",
    b"EXPOSE ",
    b"ENV ",
    b"ADD ",
    b"COPY ",
    b"ENTRYPOINT ",
    b"VOLUME ",
    b"USER ",
    b"WORKDIR ",
    b"ARG ",
    b"ONBUILD ",
    b"STOPSIGNAL ",
    b"HEALTHCHECK ",
    b"SHELL ",
    b"MAINTAINER ",
    b"--from=",
    b"--chown=",
    b"--chmod=",
    b"--link",
    b"--mount=type=secret,id=",
    b"--mount=type=cache,target=",
    b"--checksum=",
    b"--platform=$BUILDPLATFORM ",
    b"<<EOF\n",
    b"<<-EOT\n",
    b"\nEOF\n",
    b"\\\n",
    b"`\n",
    b"# escape=`\n",
    b"# syntax=docker/dockerfile:1\n",
    b"${",
    b"${VAR:-default}",
    b"${VAR:+x}",
    b"$VAR",
    b"[\"",
    b"\", \"",
    b"\"]",
    b"&&",
    b"||",
    b"|",
    b";",
    b" | sh",
    b"curl -fsSL https://x/i.sh | bash",
    b"chmod 4755 ",
    b"chmod -R 777 ",
    b"sudo ",
    b"apt-get install -y ",
    b"USER 0:0",
    b"scratch",
    b":latest",
    b"@sha256:",
    b"AWS_SECRET_ACCESS_KEY=",
    b"ghp_dBQQRQVHChrfDqNcM0hFHTs1X8cC03OFcXb5",
    b"0:0",
];

pub const DOCKERFILE: Target = Target {
    name: "dockerfile",
    corpus: &["dockerfile"],
    extra: &["tests/fixtures/dockerfile/*/Dockerfile"],
    dict: DOCKERFILE_DICT,
    iters: 2500,
    max_len: 16 << 10,
    fixup: None,
    known: &["unknown instruction:", " bytes long"],
};

/// A Dockerfile (with a `.dockerignore` beside it, as the fixtures have) through the whole
/// Dockerfile audit: parse, stage analysis, file flow, rules and the secret scan.
pub fn dockerfile(input: &[u8]) -> Outcome {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("Dockerfile");
    fs::write(&path, input).map_err(|e| e.to_string())?;
    fs::write(dir.path().join(".dockerignore"), b"**/.git\n.env\n").map_err(|e| e.to_string())?;
    match audit_dockerfile(&path, scanner()) {
        Ok(findings) => {
            check_findings(&findings, input.len())?;
            Ok(format!("ok {}", findings.len().min(16)))
        }
        Err(e) => {
            let msg = e.to_string();
            one_line_naming(&msg, &path.display().to_string())?;
            Ok(signature(
                "error: ",
                &msg.replace(&path.display().to_string(), ""),
            ))
        }
    }
}

const COMPOSE_DICT: &[&[u8]] = &[
    b"services:\n",
    b"  app:\n",
    b"    image: ",
    b"    privileged: true\n",
    b"    pid: host\n",
    b"    network_mode: host\n",
    b"    volumes:\n",
    b"      - /:/host\n",
    b"      - /var/run/docker.sock:/var/run/docker.sock\n",
    b"    cap_add: [SYS_ADMIN]\n",
    b"    env_file: .env\n",
    b"    environment:\n",
    b"    build:\n",
    b"      context: ",
    b"include:\n  - ",
    b"<<: *",
    b"&anchor ",
    b"*anchor",
    b"!!str ",
    b"!!binary ",
    b"? ",
    b": ",
    b"- ",
    b"|\n",
    b">-\n",
    b"{",
    b"}",
    b"[",
    b"]",
    b"'",
    b"\"",
    b"\n---\n",
    b"\n...\n",
    b"%YAML 1.2\n",
    b"${",
    b":?err}",
    b"${HOME}",
    b"~",
    b"null",
    b"0o777",
    b".inf",
    b"&a [*a]",
    b"\t",
    b"    ",
    b"#",
];

pub const COMPOSE: Target = Target {
    name: "compose",
    corpus: &["compose"],
    extra: &[
        "tests/fixtures/dockerfile/*/compose.yaml",
        "tests/fixtures/dockerfile/*/docker-compose.yml",
    ],
    dict: COMPOSE_DICT,
    iters: 2000,
    max_len: 16 << 10,
    fixup: None,
    known: &[],
};

/// A compose file (with an `.env` it may name) through the compose audit.
pub fn compose(input: &[u8]) -> Outcome {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("compose.yaml");
    fs::write(&path, input).map_err(|e| e.to_string())?;
    fs::write(dir.path().join(".env"), b"DB_PASSWORD=fake-password-1234\n")
        .map_err(|e| e.to_string())?;
    match audit_compose(&path, scanner()) {
        Ok(findings) => {
            check_findings(&findings, input.len())?;
            Ok(format!("ok {}", findings.len().min(16)))
        }
        Err(e) => {
            let msg = e.to_string();
            // An include may name another file; the error then names that one.
            one_line_naming(&msg, &dir.path().display().to_string())
                .or_else(|_| one_line_naming(&msg, ""))?;
            Ok(signature(
                "error: ",
                &msg.replace(&path.display().to_string(), ""),
            ))
        }
    }
}

pub const DOCKERIGNORE: Target = Target {
    name: "dockerignore",
    corpus: &["dockerignore"],
    extra: &["tests/fixtures/dockerfile/*/.dockerignore"],
    dict: &[
        b"**", b"*", b"?", b"[", b"]", b"[^", b"[!", b"\\", b"!", b"#", b"/", b"./", b"../",
        b"{a,b}", b"[a-", b"-z]", b"\r\n", b" ",
    ],
    iters: 4000,
    max_len: 4 << 10,
    fixup: None,
    known: &[],
};

/// Paths asked of every compiled `.dockerignore`.
const CONTEXT_PATHS: &[&str] = &[
    "Dockerfile",
    ".env",
    ".git/config",
    "src/main.rs",
    "node_modules/x/index.js",
    "README.md",
    "a/b/c/d.pem",
    "secrets/key",
    "[a]b.log",
    "dir with space/f",
    "!literal-bang",
    "\u{e9}t\u{e9}",
];

/// `.dockerignore` compiled as BuildKit would; a compiled one is asked about a set of paths.
pub fn dockerignore(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    match Matcher::from_dockerignore(&text) {
        Ok(m) => {
            let mut sig = String::from("ok ");
            for p in CONTEXT_PATHS {
                let excluded = m.excludes(p);
                let deciding = m.deciding_pattern(p);
                if excluded != deciding.is_some_and(|(ex, _)| ex) {
                    return Err(format!(
                        "excludes({p:?}) = {excluded} but the deciding pattern says {deciding:?}"
                    ));
                }
                sig.push(if excluded { 'x' } else { '.' });
            }
            Ok(sig)
        }
        Err(e) => {
            one_line_naming(e.message, "")?;
            if e.line as usize > text.lines().count() + 1 {
                return Err(format!(
                    "error on line {} of a {}-line file",
                    e.line,
                    text.lines().count()
                ));
            }
            Ok(format!("error: {}", e.message))
        }
    }
}

pub const RSAFEIGNORE: Target = Target {
    name: "rsafeignore",
    corpus: &["rsafeignore"],
    extra: &[],
    dict: &[
        b"secret.*",
        b"fs.*",
        b"rule:",
        b"path:",
        b"fingerprint:",
        b" # ",
        b"[[ignore]]\n",
        b"rule = \"",
        b"path = \"",
        b"reason = \"",
        b"\"\n",
        b"**",
        b"{a,b}",
        b"[!x]",
        b"\\",
        b"'''",
    ],
    iters: 3000,
    max_len: 4 << 10,
    fixup: None,
    known: &[],
};

/// `.rsafeignore` (both spellings), then applied to a few findings.
pub fn rsafeignore(input: &[u8]) -> Outcome {
    let path = Path::new("/fuzz/.rsafeignore");
    let text = String::from_utf8_lossy(input);
    match IgnoreList::parse(&text, path) {
        Ok(list) => {
            let findings = sample_findings();
            let n = findings.len();
            let (kept, dropped) = list.apply(findings);
            if kept.len() + dropped != n {
                return Err(format!(
                    "apply: {} kept + {dropped} dropped of {n}",
                    kept.len()
                ));
            }
            Ok(format!("ok {dropped}"))
        }
        Err(e) => {
            let msg = e.to_string();
            one_line_naming(&msg, "/fuzz/.rsafeignore")?;
            Ok(signature("error: ", &msg))
        }
    }
}

fn sample_findings() -> Vec<Finding> {
    let rules = rsafe::audit::builtin_rules();
    rules
        .iter()
        .take(6)
        .enumerate()
        .map(|(i, r)| {
            let mut f = r.finding(
                Location::ImageFile {
                    path: format!("/usr/share/doc/f{i}"),
                    line: None,
                    layer: None,
                },
                Some(rsafe::audit::Evidence::secret("fake-value-0123456789")),
            );
            f.severity = Severity::High;
            f
        })
        .collect()
}

pub const ENV_FILE: Target = Target {
    name: "env-file",
    corpus: &["env-file"],
    extra: &[
        "tests/fixtures/dockerfile/*/.env",
        "tests/fixtures/dockerfile/*/agent.env",
    ],
    dict: &[
        b"export ", b"=", b"\"", b"'", b"\\n", b"\\", b" #", b"${", b"}", b":-", b":?", b"$$",
        b"$", b"\r\n",
    ],
    iters: 5000,
    max_len: 4 << 10,
    fixup: None,
    known: &[],
};

/// Env files as Compose reads them, and `${…}` interpolation of every value.
pub fn env_file(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    let entries = parse_env_file(&text);
    let lines = text.lines().count() as u32;
    for e in &entries {
        if e.line == 0 || e.line > lines {
            return Err(format!("entry on line {} of {lines}", e.line));
        }
        if e.key.is_empty() || e.key.contains(char::is_whitespace) {
            return Err(format!("bad key {:?}", e.key));
        }
        if e.value.len() > text.len() {
            return Err("a value longer than the file".into());
        }
        let i = interpolate(&e.value);
        if i.text.len() > 4 * e.value.len() + 64 {
            return Err(format!(
                "interpolation grew {} bytes to {}",
                e.value.len(),
                i.text.len()
            ));
        }
    }
    Ok(format!("ok {}", entries.len().min(8)))
}

pub const SECCOMP: Target = Target {
    name: "seccomp",
    corpus: &["seccomp"],
    extra: &[],
    dict: &[
        b"\"defaultAction\"",
        b"\"SCMP_ACT_ALLOW\"",
        b"\"SCMP_ACT_ERRNO\"",
        b"\"SCMP_ACT_KILL\"",
        b"\"SCMP_ACT_TRACE\"",
        b"\"SCMP_ACT_NOTIFY\"",
        b"\"SCMP_ACT_LOG\"",
        b"\"syscalls\"",
        b"\"names\"",
        b"\"args\"",
        b"\"index\"",
        b"\"value\"",
        b"\"valueTwo\"",
        b"\"op\"",
        b"\"SCMP_CMP_MASKED_EQ\"",
        b"\"SCMP_CMP_GT\"",
        b"\"errnoRet\"",
        b"\"includes\"",
        b"\"excludes\"",
        b"\"caps\"",
        b"\"minKernel\"",
        b"\"arch\"",
        b"\"archMap\"",
        b"\"architectures\"",
        b"\"SCMP_ARCH_X86_64\"",
        b"\"flags\"",
        b"\"listenerPath\"",
        b"\"CAP_SYS_ADMIN\"",
        b"\"6.18\"",
        b"\"clone3\"",
        b"\"nosuchcall\"",
        b"null",
        b"[]",
    ],
    iters: 2000,
    max_len: 16 << 10,
    fixup: None,
    known: &["unknown field"],
};

/// A Docker-format seccomp profile parsed, then compiled to BPF as `rsafe run` would.
pub fn seccomp(input: &[u8]) -> Outcome {
    let origin = Path::new("/fuzz/profile.json");
    match SeccompProfile::from_json(input, origin) {
        Ok(profile) => match compile(&profile, &[]) {
            Ok(_) => Ok("compiled".into()),
            Err(e) => {
                let msg = e.to_string();
                one_line_naming(&msg, "")?;
                Ok(signature("compile error: ", &msg))
            }
        },
        Err(e) => {
            let msg = e.to_string();
            one_line_naming(&msg, "/fuzz/profile.json")?;
            Ok(signature("error: ", &msg))
        }
    }
}

pub const POLICY: Target = Target {
    name: "policy-toml",
    corpus: &["policy-toml"],
    extra: &[],
    dict: &[
        b"[capabilities]\n",
        b"[seccomp]\n",
        b"[landlock]\n",
        b"[resources]\n",
        b"[network]\n",
        b"= true\n",
        b"= false\n",
        b"= \"",
        b"\"\n",
        b"= [",
        b"]\n",
        b"CAP_SYS_ADMIN",
        b"ALL",
        b"\"64m\"",
        b"\"1g\"",
        b"\"0\"",
        b"\"-1\"",
        b"= 1e400\n",
        b"'''",
        b"\"\"\"",
        b"inf",
        b"[[",
        b"]]",
        b"{ }",
        b"\\u0000",
    ],
    iters: 2500,
    max_len: 8 << 10,
    fixup: None,
    known: &[],
};

/// A runner policy file (`--policy FILE`).
pub fn policy(input: &[u8]) -> Outcome {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("fuzz.toml");
    fs::write(&path, input).map_err(|e| e.to_string())?;
    match Policy::from_file(&path) {
        Ok(p) => {
            let warnings = p.warnings();
            for w in &warnings {
                one_line_naming(w, "")?;
            }
            Ok(format!("ok {}", warnings.len()))
        }
        Err(e) => {
            let msg = e.to_string();
            // toml's own messages quote the offending line below a caret; rsafe must not.
            one_line_naming(&msg, &path.display().to_string())?;
            Ok(signature(
                "error: ",
                &msg.replace(&path.display().to_string(), ""),
            ))
        }
    }
}

pub const SECRETS_TOML: Target = Target {
    name: "secrets-toml",
    corpus: &["secrets-toml"],
    extra: &[],
    dict: &[
        b"[[rule]]\n",
        b"[[file]]\n",
        b"id = \"",
        b"regex = '",
        b"keywords = [\"",
        b"\"]\n",
        b"entropy = ",
        b"precedence = ",
        b"multiline = true\n",
        b"leaks = [",
        b"safe = [",
        b"(?i)",
        b"(a+)+",
        b"{1000}",
        b"{0,1000000}",
        b"\\b",
        b"[^",
        b"(?P<key>",
        b"'''",
    ],
    iters: 300,
    max_len: 12 << 10,
    fixup: None,
    known: &[],
};

/// Secret rules TOML (`--secrets FILE`), then the scanner run over a sample text.
pub fn secrets_toml(input: &[u8]) -> Outcome {
    let origin = Path::new("/fuzz/secrets.toml");
    let text = String::from_utf8_lossy(input);
    match SecretScanner::from_toml(&text, origin) {
        Ok(s) => {
            let hits = s.scan_text("AWS_KEY=AIza2Jkf08MMF1ulMMCw3XVy27dFanUrOSE62ch\npassword=x\n");
            Ok(format!("ok {}", hits.len().min(4)))
        }
        Err(e) => {
            let msg = e.to_string();
            one_line_naming(&msg, "/fuzz/secrets.toml")?;
            Ok(signature("error: ", &msg))
        }
    }
}

pub const IMAGE_REF: Target = Target {
    name: "image-ref",
    corpus: &["image-ref"],
    extra: &[],
    dict: &[
        b":",
        b"/",
        b"@",
        b"@sha256:",
        b"sha256:",
        b"docker.io/",
        b"library/",
        b"localhost",
        b":5000",
        b"[::1]",
        b"..",
        b"__",
        b"-",
        b".",
        b"A",
        b"\xc3\xa9",
        b":latest",
    ],
    iters: 8000,
    max_len: 512,
    fixup: None,
    known: &[],
};

/// Image references and digests: whatever parses prints back to something that parses to the
/// same value.
pub fn image_ref(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    let mut sig = String::new();
    match Reference::from_str(&text) {
        Ok(r) => {
            // Display gives the familiar form (`busybox:latest`); it must name the same image.
            let shown = r.to_string();
            let again = Reference::from_str(&shown)
                .map_err(|e| format!("{text:?} printed as {shown:?}, which does not parse: {e}"))?;
            let same = |x: &Reference| {
                (
                    x.registry_host().to_string(),
                    x.remote_repository(),
                    x.manifest_reference(),
                )
            };
            if same(&again) != same(&r) {
                return Err(format!(
                    "{text:?} → {shown:?} names another image: {again:?}, not {r:?}"
                ));
            }
            let _ = (
                r.registry_host(),
                r.remote_repository(),
                r.manifest_reference(),
            );
            let _ = (r.familiar_repository(), r.store_name(), r.is_loopback());
            sig.push_str("ref ok");
        }
        Err(e) => {
            one_line_naming(&e.to_string(), "")?;
            sig.push_str(&signature("ref error: ", &e.to_string()));
        }
    }
    if let Ok(d) = Digest::from_str(&text) {
        let back: Digest = d
            .to_string()
            .parse()
            .map_err(|e| format!("digest round trip: {e}"))?;
        if back != d {
            return Err(format!("digest {text:?} round trip changed it"));
        }
        sig.push_str(" digest");
    }
    Ok(sig)
}

pub const WWW_AUTHENTICATE: Target = Target {
    name: "www-authenticate",
    corpus: &["www-authenticate"],
    extra: &[],
    dict: &[
        b"Bearer ",
        b"Basic ",
        b"realm=",
        b"service=",
        b"scope=",
        b"error=",
        b"\"",
        b"\\\"",
        b"\\",
        b",",
        b", ",
        b"=",
        b"\t",
        b"https://",
        b"\xc3\xa9",
        b"\xff",
    ],
    iters: 8000,
    max_len: 2 << 10,
    fixup: None,
    known: &[],
};

/// A `WWW-Authenticate` header value: challenges parsed, the preferred one picked and its token
/// URL built.
pub fn www_authenticate(input: &[u8]) -> Outcome {
    let header = String::from_utf8_lossy(input);
    let challenges = parse_challenges(&header);
    if challenges.len() > header.len() {
        return Err(format!(
            "{} challenges from {} bytes",
            challenges.len(),
            header.len()
        ));
    }
    let mut sig = format!("{} challenges", challenges.len().min(4));
    if let Some(c) = preferred(&challenges) {
        if !challenges.contains(c) {
            return Err("preferred() returned a challenge not in the list".into());
        }
        if let rsafe::image::registry::auth::Challenge::Bearer {
            realm,
            service,
            scope,
        } = c
        {
            if realm.is_empty() {
                return Err("a Bearer challenge with an empty realm".into());
            }
            let url = TokenRequest {
                realm: realm.clone(),
                service: service.clone(),
                scope: scope.clone().unwrap_or_default(),
            }
            .url();
            if url.contains(' ') && !realm.contains(' ') {
                return Err(format!("unencoded space in the token URL {url:?}"));
            }
        }
        sig.push(' ');
        sig.push_str(c.scheme());
    }
    Ok(sig)
}

pub const REGISTRY_RESPONSE: Target = Target {
    name: "registry-response",
    corpus: &["registry-response"],
    extra: &[],
    dict: &[
        b"\"errors\"",
        b"\"code\"",
        b"\"message\"",
        b"\"details\"",
        b"\"token\"",
        b"\"access_token\"",
        b"\"expires_in\"",
        b"\"schemaVersion\"",
        b"\"mediaType\"",
        b"\"manifests\"",
        b"\"config\"",
        b"null",
        b"[]",
        b"{}",
        b"\\u001b[2J",
        b"\\n",
        b"18446744073709551615",
        b"-1",
    ],
    iters: 6000,
    max_len: 8 << 10,
    fixup: None,
    known: &[],
};

/// What a registry or token service answers: error bodies (shown to the user: one short
/// printable line), token responses and manifest bodies.
pub fn registry_response(input: &[u8]) -> Outcome {
    let (code, message) = parse_error_body(input);
    for s in code.iter().chain(message.iter()) {
        if s.chars().any(char::is_control) || s.chars().count() > 200 {
            return Err(format!(
                "error body field not one short printable line: {s:?}"
            ));
        }
    }
    let token = serde_json::from_slice::<TokenResponse>(input)
        .ok()
        .and_then(TokenResponse::into_token);
    if let Some((_, ttl)) = &token
        && ttl.as_secs() < 60
    {
        return Err(format!("token lifetime {ttl:?} under the 60 s floor"));
    }
    let kind = match identify(input, Some("application/vnd.oci.image.index.v1+json")) {
        Ok((_, kind)) => format!("{kind:?}"),
        Err(e) => {
            one_line_naming(&e, "")?;
            signature("", &e).chars().take(40).collect()
        }
    };
    Ok(format!(
        "{} {} {} {kind}",
        code.is_some(),
        message.is_some(),
        token.is_some()
    ))
}

pub const AUTH_FILE: Target = Target {
    name: "auth-file",
    corpus: &["auth-file"],
    extra: &[],
    dict: &[
        b"\"auths\"",
        b"\"auth\"",
        b"\"username\"",
        b"\"password\"",
        b"\"identitytoken\"",
        b"\"credsStore\"",
        b"\"credHelpers\"",
        b"\"https://index.docker.io/v1/\"",
        b"\"docker.io\"",
        b"\"ghcr.io\"",
        b"\"localhost:5000\"",
        b"\"ZmFrZTo=\"",
        b"\"Og==\"",
        b"\"=\"",
    ],
    iters: 3000,
    max_len: 8 << 10,
    fixup: None,
    known: &[],
};

/// Fake credentials the auth-file corpus holds; no error may show them.
const FAKE_CREDENTIALS: &[&str] = &[
    "fakepassword123",
    "ZmFrZXVzZXI6ZmFrZXBhc3N3b3JkMTIz",
    "fake-password",
    "ZmFrZTpnaHBfZmFrZQ==",
    "ZmFrZTpmYWtlOndpdGg6Y29sb25z",
];

/// A docker/podman auth file, looked up for a few registries. Errors name the file and never
/// show a credential; a found password is never empty with a user name that has a colon.
pub fn auth_file(input: &[u8]) -> Outcome {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("auth.json");
    fs::write(&path, input).map_err(|e| e.to_string())?;
    let mut sig = String::new();
    for r in [
        "busybox",
        "ghcr.io/o/a",
        "localhost:5000/a",
        "registry.example.com/x",
        "quay.io/a/b",
    ] {
        let reference = Reference::from_str(r).map_err(|e| e.to_string())?;
        match credentials::lookup(&reference, Some(&path)) {
            Ok(found) => {
                if let Some(c) = &found {
                    let shown = format!("{c:?}");
                    for secret in FAKE_CREDENTIALS {
                        if shown.contains(secret) {
                            return Err("Debug of credentials shows the password".into());
                        }
                    }
                }
                sig.push(if found.is_some() { 'c' } else { '.' });
            }
            Err(e) => {
                let msg = e.to_string();
                one_line_naming(&msg, &path.display().to_string())?;
                for secret in FAKE_CREDENTIALS {
                    if msg.contains(secret) {
                        return Err("an auth-file error shows a credential".into());
                    }
                }
                return Ok(signature(
                    "error: ",
                    &msg.replace(&path.display().to_string(), ""),
                ));
            }
        }
    }
    Ok(sig)
}
