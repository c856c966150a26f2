//! Checks on the image config: who the container runs as, what it exposes, and secrets left in
//! `Env`, labels and the build history.
//!
//! The history matters because builders write it from the Dockerfile: every `RUN` after an
//! `ARG TOKEN` is recorded as `RUN |1 TOKEN=<value> /bin/sh -c …`, BuildKit records `ARG
//! NAME=default` itself, and an `ENV PASSWORD=…` later overwritten or unset stays in the history
//! of the step that set it. `docker history --no-trunc` prints all of it.

use std::collections::BTreeMap;

use super::finding::redact;
use super::{Evidence, Finding, Location, Rule, SecretDetector, Severity};
use crate::image::config::Image;

/// The container's default user is root.
pub const USER_ROOT: Rule = Rule {
    id: "image.user-root",
    severity: Severity::Medium,
    title: "Image runs as root by default",
    description: "The config's User is empty, root or uid 0 (also a name that /etc/passwd of \
        the image maps to uid 0). A process escaping its sandbox, or a runtime without a user \
        namespace, is then root on the host's kernel with every file the image owns writable.",
    remediation: "Add a user and `USER app` (or `USER 10001:10001`) at the end of the \
        Dockerfile; rsafe maps container root to an unprivileged host id, other runtimes may not.",
};

/// SSH exposed.
pub const SSH_EXPOSED: Rule = Rule {
    id: "image.ssh-exposed",
    severity: Severity::Medium,
    title: "Image exposes SSH (22/tcp)",
    description: "ExposedPorts lists 22/tcp. An SSH daemon in a container is a second way in \
        with its own keys and passwords to leak, and is rarely what a container should run.",
    remediation: "Remove sshd and `EXPOSE 22`; use `rsafe run`/`docker exec` to get a shell.",
};

/// A secret-looking variable with a literal value in the config Env.
pub const SECRET_ENV: Rule = Rule {
    id: "image.secret-env",
    severity: Severity::High,
    title: "Secret-looking environment variable baked into the image",
    description: "Env sets a variable whose name says it holds a secret (PASSWORD, TOKEN, \
        SECRET, API_KEY, PRIVATE_KEY…) to a literal value. Env is part of the image config: \
        anyone who can pull the image reads it (`docker inspect`).",
    remediation: "Pass the value at run time (`--env-file`, a secrets mount) instead of `ENV`; \
        rotate the value that was published.",
};

/// A secret-looking build argument recorded in the history.
pub const SECRET_BUILD_ARG: Rule = Rule {
    id: "image.secret-build-arg",
    severity: Severity::High,
    title: "Secret build argument recorded in the image history",
    description: "A build ARG (or an ENV set during the build) whose name says it holds a \
        secret has its value in the history: builders record `ARG NAME=value` and prefix every \
        later RUN with `|N NAME=value`. `docker history --no-trunc` prints it, even when the \
        final Env does not have it.",
    remediation: "Use BuildKit secret mounts (`RUN --mount=type=secret,id=token …`) instead of \
        ARG/ENV for credentials; rotate the value that was published.",
};

/// The rules of the config checks.
pub static RULES: &[Rule] = &[USER_ROOT, SSH_EXPOSED, SECRET_ENV, SECRET_BUILD_ARG];

/// Every config finding for `img`; `passwd` is the image's visible `/etc/passwd`, used to tell
/// whether a user name is uid 0.
pub fn check_config(
    img: &Image,
    detector: &dyn SecretDetector,
    passwd: Option<&[u8]>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let cfg = img.config.config().as_ref();
    let user = cfg.and_then(|c| c.user().as_deref()).unwrap_or("");
    if let Some(why) = runs_as_root(user, passwd) {
        out.push(USER_ROOT.finding(
            Location::ImageConfig {
                field: "User".into(),
            },
            Some(Evidence::plain(why)),
        ));
    }
    for port in cfg
        .and_then(|c| c.exposed_ports().as_ref())
        .into_iter()
        .flatten()
    {
        if port == "22" || port == "22/tcp" {
            out.push(SSH_EXPOSED.finding(
                Location::ImageConfig {
                    field: "ExposedPorts".into(),
                },
                Some(Evidence::plain(port.clone())),
            ));
        }
    }

    // Env: the secret engine first; the name heuristic for what it does not recognise.
    let mut env_fingerprints = Vec::new();
    for var in cfg.and_then(|c| c.env().as_ref()).into_iter().flatten() {
        let (name, value) = var.split_once('=').unwrap_or((var, ""));
        let location = Location::ImageConfig {
            field: format!("Env.{name}"),
        };
        let hits = detector.scan_text(var, &location);
        if hits.is_empty()
            && let Some(f) = name_based(&SECRET_ENV, name, value, &location)
        {
            out.push(f);
        } else {
            out.extend(hits);
        }
        if !value.is_empty() {
            env_fingerprints.push(super::finding::fingerprint(value));
        }
    }
    let mut labels: Vec<(&String, &String)> = cfg
        .and_then(|c| c.labels().as_ref())
        .into_iter()
        .flatten()
        .collect();
    labels.sort();
    for (key, value) in labels {
        let location = Location::ImageConfig {
            field: format!("Labels.{key}"),
        };
        out.extend(detector.scan_text(&format!("{key}={value}"), &location));
    }
    out.extend(history_findings(img, detector, &env_fingerprints));
    out
}

/// Why `user` means root, or None. `passwd` resolves names to uids.
pub fn runs_as_root(user: &str, passwd: Option<&[u8]>) -> Option<String> {
    let name = user.split(':').next().unwrap_or("").trim();
    if name.is_empty() {
        return Some("User is not set: the container runs as root".into());
    }
    if let Ok(uid) = name.parse::<u32>() {
        return (uid == 0).then(|| format!("User {user:?} is uid 0"));
    }
    let uid = passwd.and_then(|p| {
        String::from_utf8_lossy(p).lines().find_map(|line| {
            let mut f = line.split(':');
            (f.next() == Some(name))
                .then(|| f.nth(1).and_then(|u| u.parse::<u32>().ok()))
                .flatten()
        })
    });
    match uid {
        Some(0) if name == "root" => Some(format!("User {user:?} is root")),
        Some(0) => Some(format!("User {user:?} is uid 0 in the image's /etc/passwd")),
        Some(_) => None,
        None if name == "root" => Some(format!("User {user:?} is root")),
        None => None,
    }
}

/// Whether a variable or argument name says it holds a secret.
pub fn secret_like_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    const NOT_THE_VALUE: &[&str] = &[
        "file", "path", "dir", "url", "uri", "host", "port", "user", "username", "name", "version",
        "id", "type", "length", "len", "ttl", "timeout", "expiry", "enabled", "mode", "header",
        "policy", "env", "location", "endpoint",
    ];
    if words.last().is_some_and(|w| NOT_THE_VALUE.contains(w)) {
        return false;
    }
    const SECRET_WORDS: &[&str] = &[
        "password",
        "passwd",
        "pass",
        "secret",
        "token",
        "apikey",
        "credential",
        "credentials",
        "privatekey",
        "passphrase",
    ];
    const KEY_PREFIXES: &[&str] = &[
        "api",
        "access",
        "private",
        "secret",
        "auth",
        "signing",
        "encryption",
        "master",
        "license",
    ];
    words.iter().any(|w| SECRET_WORDS.contains(w))
        || words
            .windows(2)
            .any(|p| KEY_PREFIXES.contains(&p[0]) && p[1] == "key")
}

/// Whether a value is a reference or placeholder rather than a secret.
fn placeholder(value: &str) -> bool {
    let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
    v.is_empty()
        || v.starts_with('$')
        || v.starts_with('<') && v.ends_with('>')
        || v.starts_with("{{")
        || v.chars().all(|c| c == v.chars().next().unwrap_or(' '))
        || matches!(
            v.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "none" | "null" | "nil" | "0" | "1"
        )
}

/// A finding of `rule` when `name` looks secret and `value` is a literal.
fn name_based(rule: &Rule, name: &str, value: &str, location: &Location) -> Option<Finding> {
    if !secret_like_name(name) || placeholder(value) {
        return None;
    }
    let mut evidence = Evidence::secret(value);
    evidence.excerpt = format!("{name}={}", redact(value));
    Some(rule.finding(location.clone(), Some(evidence)))
}

/// `NAME=value` assignments a history `created_by` records: build args (`|N A=1 B=2 cmd` and
/// `ARG A=1`) and `ENV A=1`.
pub fn recorded_assignments(created_by: &str) -> Vec<(&str, &str)> {
    let s = created_by.trim();
    let s = s
        .strip_prefix("/bin/sh -c #(nop)")
        .unwrap_or(s)
        .trim_start();
    let s = s.strip_prefix("RUN ").unwrap_or(s).trim_start();
    fn pairs(rest: &str, n: usize) -> Vec<(&str, &str)> {
        rest.split_whitespace()
            .take(n)
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| !k.is_empty())
            .collect()
    }
    if let Some(rest) = s.strip_prefix('|') {
        let (count, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        return match count.parse::<usize>() {
            Ok(n) => pairs(rest, n),
            Err(_) => Vec::new(),
        };
    }
    if let Some(rest) = s.strip_prefix("ARG ").or_else(|| s.strip_prefix("ENV ")) {
        return pairs(rest, usize::MAX);
    }
    Vec::new()
}

/// Secrets in history `created_by` entries, each value reported once (at its first entry).
fn history_findings(
    img: &Image,
    detector: &dyn SecretDetector,
    env_fingerprints: &[String],
) -> Vec<Finding> {
    let history = img.config.history().as_deref().unwrap_or_default();
    // (rule, fingerprint) -> (first finding, later entries with the same value)
    let mut seen: BTreeMap<(String, String), (usize, u32)> = BTreeMap::new();
    let mut out: Vec<Finding> = Vec::new();
    let mut layer = 0usize;
    for (i, h) in history.iter().enumerate() {
        let made_layer = !h.empty_layer().unwrap_or(false);
        let Some(created_by) = h.created_by().as_deref() else {
            layer += usize::from(made_layer);
            continue;
        };
        let location = Location::ImageConfig {
            field: format!("history[{i}].created_by"),
        };
        let mut found = detector.scan_text(created_by, &location);
        for (name, value) in recorded_assignments(created_by) {
            let fp = super::finding::fingerprint(value.trim_matches(|c| c == '"' || c == '\''));
            let known = found
                .iter()
                .any(|f| f.evidence.as_ref().and_then(|e| e.fingerprint.as_ref()) == Some(&fp));
            if !known && let Some(f) = name_based(&SECRET_BUILD_ARG, name, value, &location) {
                found.push(f);
            }
        }
        for mut f in found {
            let fp = f
                .evidence
                .as_ref()
                .and_then(|e| e.fingerprint.clone())
                .unwrap_or_default();
            if !fp.is_empty() && env_fingerprints.contains(&fp) && f.rule == SECRET_BUILD_ARG.id {
                continue; // the same ENV value is already reported in Env
            }
            if !fp.is_empty() {
                if let Some((_, later)) = seen.get_mut(&(f.rule.clone(), fp.clone())) {
                    *later += 1;
                    continue;
                }
                seen.insert((f.rule.clone(), fp), (out.len(), 0));
            }
            if made_layer && let Some(ev) = &mut f.evidence {
                ev.excerpt = format!("{} (step of layer {})", ev.excerpt, layer + 1);
            }
            out.push(f);
        }
        layer += usize::from(made_layer);
    }
    for (idx, later) in seen.into_values() {
        if later > 0
            && let Some(ev) = &mut out[idx].evidence
        {
            let s = if later == 1 { "y" } else { "ies" };
            ev.excerpt = format!(
                "{}; same value in {later} later history entr{s}",
                ev.excerpt
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_users() {
        let passwd =
            b"root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n";
        for u in ["", "root", "0", "0:0", "root:root", "toor"] {
            assert!(runs_as_root(u, Some(passwd)).is_some(), "{u:?}");
        }
        for u in ["app", "1000", "1000:0", "nobody"] {
            assert!(runs_as_root(u, Some(passwd)).is_none(), "{u:?}");
        }
        assert!(runs_as_root("root", None).is_some());
    }

    #[test]
    fn secret_names() {
        for n in [
            "DB_PASSWORD",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "api-key",
            "NPM_AUTH_TOKEN",
            "PRIVATE_KEY",
            "STRIPE_SECRET",
        ] {
            assert!(secret_like_name(n), "{n}");
        }
        for n in [
            "PASSWORD_FILE",
            "TOKEN_URL",
            "AWS_ACCESS_KEY_ID",
            "PATH",
            "PWD",
            "KEYRING",
            "SECRETS_DIR",
            "PASSENGER_VERSION",
        ] {
            assert!(!secret_like_name(n), "{n}");
        }
    }

    #[test]
    fn history_assignments() {
        assert_eq!(
            recorded_assignments("|2 GITHUB_TOKEN=ghp_abc VERSION=1 /bin/sh -c make"),
            [("GITHUB_TOKEN", "ghp_abc"), ("VERSION", "1")]
        );
        assert_eq!(
            recorded_assignments("RUN |1 TOKEN=x /bin/sh -c echo A=B"),
            [("TOKEN", "x")]
        );
        assert_eq!(
            recorded_assignments("ARG NPM_TOKEN=abc123"),
            [("NPM_TOKEN", "abc123")]
        );
        assert_eq!(
            recorded_assignments("/bin/sh -c #(nop)  ENV DB_PASSWORD=hunter22"),
            [("DB_PASSWORD", "hunter22")]
        );
        assert!(recorded_assignments("/bin/sh -c apt-get install -y curl A=B").is_empty());
    }

    #[test]
    fn placeholders_are_not_secrets() {
        for v in [
            "",
            "$TOKEN",
            "${TOKEN}",
            "<your-token>",
            "{{ .token }}",
            "xxxx",
            "true",
        ] {
            assert!(placeholder(v), "{v:?}");
        }
        assert!(!placeholder("hunter22"));
    }
}
