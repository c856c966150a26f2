//! `rsafe audit` for Dockerfiles: the security review before the build.
//!
//! The file is parsed the way BuildKit parses it ([`parse`]), given meaning as a build —
//! stages, scopes, which stages ship ([`stages`]) — and files from the build context are
//! followed through `COPY`, `ADD` and `COPY --from` ([`flow`]). The rules ([`rules`]) then judge
//! what the build will do: who the final image runs as, what secrets end up in its config,
//! history or layers, what it downloads and executes.
//!
//! Auditing a Dockerfile alone takes its directory as the build context for the `.dockerignore`
//! checks and follows `COPY` sources by name; [`crate::audit::context`] audits the context's
//! real files.
#![forbid(unsafe_code)]

pub mod base;
pub mod flow;
pub mod names;
pub mod parse;
pub mod rules;
pub mod shell;
pub mod stages;
pub mod words;

use crate::bounded;
use std::path::{Path, PathBuf};

use crate::audit::context::dockerignore::Matcher;
use crate::audit::secrets::SecretScanner;
use crate::audit::{Evidence, Finding, Location, Rule, RuleInfo};

use base::{BaseImages, StoreBaseImages};
use flow::{ContextView, Placed, Textual, trace};
use parse::Dockerfile;
use rules::{IgnoreFile, RuleContext};
use stages::Analysis;

/// Why a Dockerfile could not be audited.
#[derive(Debug, thiserror::Error)]
pub enum DockerfileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: u32,
        message: String,
    },
    /// The build would fail on this `.dockerignore` too.
    #[error("{}:{line}: {message}", path.display())]
    Dockerignore {
        path: PathBuf,
        line: u32,
        message: String,
    },
}

/// A Dockerfile read, parsed and analysed.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    /// The file's text (for the secret rules).
    pub text: String,
    pub dockerfile: Dockerfile,
    pub analysis: Analysis,
}

/// Reads, parses and analyses a Dockerfile.
pub fn load(path: &Path) -> Result<Loaded, DockerfileError> {
    let bytes = bounded::read_file(path, bounded::SOURCE).map_err(|e| DockerfileError::Read {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    load_text(String::from_utf8_lossy(&bytes).into_owned(), path)
}

/// Parses and analyses a Dockerfile's text; `path` is how findings name it.
pub fn load_text(text: String, path: &Path) -> Result<Loaded, DockerfileError> {
    let dockerfile = parse::parse(&text).map_err(|e| DockerfileError::Parse {
        path: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })?;
    let analysis = stages::analyse(&dockerfile);
    Ok(Loaded {
        path: path.to_path_buf(),
        text,
        dockerfile,
        analysis,
    })
}

/// The `.dockerignore` BuildKit uses for this Dockerfile and context: `<Dockerfile>.dockerignore`
/// next to the Dockerfile if present, else `<context>/.dockerignore`.
pub fn ignore_file_for(dockerfile: &Path, context: &Path) -> Result<IgnoreFile, DockerfileError> {
    let mut specific = dockerfile.as_os_str().to_owned();
    specific.push(".dockerignore");
    for candidate in [PathBuf::from(specific), context.join(".dockerignore")] {
        match std::fs::read(&candidate) {
            Ok(bytes) => {
                let matcher = Matcher::from_dockerignore(&String::from_utf8_lossy(&bytes))
                    .map_err(|e| DockerfileError::Dockerignore {
                        path: candidate.clone(),
                        line: e.line,
                        message: format!("pattern {:?}: {}", e.pattern, e.message),
                    })?;
                return Ok(IgnoreFile::Present {
                    path: candidate.display().to_string(),
                    matcher,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(DockerfileError::Read {
                    path: candidate,
                    source,
                });
            }
        }
    }
    Ok(IgnoreFile::Missing)
}

/// Runs the Dockerfile rules and the secret rules with the context seen through `view`; returns
/// the findings and the files each stage received (for the context audit to look inside).
pub fn audit_loaded(
    loaded: &Loaded,
    ignore: &IgnoreFile,
    view: &dyn ContextView,
    build: &Build,
    scanner: &SecretScanner,
) -> (Vec<Finding>, Vec<Vec<Placed>>) {
    let placed = trace(&loaded.dockerfile, &loaded.analysis, view);
    let path = loaded.path.display().to_string();
    let entrypoints = build
        .context
        .map(|context| entrypoint_files(loaded, &placed, context))
        .unwrap_or_default();
    let ctx = RuleContext {
        path: &path,
        lines: loaded.text.lines().collect(),
        ignore,
        base: build.base,
        drops_root: base::drops_root(&loaded.text, &entrypoints),
        context: view,
    };
    let mut findings = rules::check(&loaded.dockerfile, &loaded.analysis, &placed, &ctx);
    findings.extend(scan_text_at(scanner, &loaded.text, &path));
    merge_secret_hits(&mut findings);
    dedupe(&mut findings);
    (findings, placed)
}

/// Where a Dockerfile is built: its context directory, and what is known of base images.
pub struct Build<'a> {
    /// The build context directory (entrypoint scripts are read from it); `None` for a
    /// Dockerfile read from standard input.
    pub context: Option<&'a Path>,
    /// Where base images' users are looked up.
    pub base: &'a dyn BaseImages,
}

/// Audits one Dockerfile, taking its directory as the build context: the Dockerfile rules and
/// the secret rules over its text (every `ENV`, `ARG`, `RUN`, heredoc and comment). Base
/// images are looked up in the local image store (`$RSAFE_ROOT` or the default).
pub fn audit_dockerfile(
    path: &Path,
    scanner: &SecretScanner,
) -> Result<Vec<Finding>, DockerfileError> {
    audit_dockerfile_with(path, scanner, &StoreBaseImages::from_env())
}

/// [`audit_dockerfile`] with base images looked up in `base`.
pub fn audit_dockerfile_with(
    path: &Path,
    scanner: &SecretScanner,
    base: &dyn BaseImages,
) -> Result<Vec<Finding>, DockerfileError> {
    let loaded = load(path)?;
    let context = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let ignore = ignore_file_for(path, context)?;
    let build = Build {
        context: Some(context),
        base,
    };
    Ok(audit_loaded(&loaded, &ignore, &Textual, &build, scanner).0)
}

/// Audits a Dockerfile read from standard input (`rsafe audit - < Dockerfile`, as
/// `hadolint -`): the same rules, with no build context (no `.dockerignore`, no entrypoint
/// script to read), findings at the path `-`.
pub fn audit_dockerfile_text(
    text: String,
    scanner: &SecretScanner,
    base: &dyn BaseImages,
) -> Result<Vec<Finding>, DockerfileError> {
    let loaded = load_text(text, Path::new("-"))?;
    let build = Build {
        context: None,
        base,
    };
    Ok(audit_loaded(&loaded, &IgnoreFile::NoContext, &Textual, &build, scanner).0)
}

/// The context files that may be the final stage's entrypoint script: the files copied to the
/// path (or name) its `ENTRYPOINT` — else `CMD` — starts, and that name at the context root.
fn entrypoint_files(loaded: &Loaded, placed: &[Vec<Placed>], context: &Path) -> Vec<PathBuf> {
    let last = loaded.analysis.final_stage();
    let mut program = None;
    for ins in &loaded.dockerfile.instructions[last.from..last.end] {
        let (parse::Kind::Entrypoint(c) | parse::Kind::Cmd(c)) = &ins.kind else {
            continue;
        };
        let first = match c {
            parse::Command::Exec(argv) => argv.first().cloned(),
            parse::Command::Shell(s) => s.split_whitespace().next().map(str::to_string),
        };
        // ENTRYPOINT decides when present; CMD only when there is none.
        if matches!(ins.kind, parse::Kind::Entrypoint(_)) || program.is_none() {
            program = first;
        }
    }
    let Some(program) = program else {
        return Vec::new();
    };
    let name = shell::basename(&program).to_string();
    let mut out: Vec<PathBuf> = placed
        .last()
        .into_iter()
        .flatten()
        .filter(|p| !p.tree && (p.image_path == program || shell::basename(&p.image_path) == name))
        .map(|p| context.join(&p.source))
        .collect();
    out.push(context.join(&name));
    out
}

/// The secret engine's findings in a text file (a Dockerfile, a compose file), at their lines.
pub fn scan_text_at(scanner: &SecretScanner, text: &str, path: &str) -> Vec<Finding> {
    scanner
        .scan_text(text)
        .into_iter()
        .map(|hit| {
            hit.into_finding(Location::File {
                path: path.to_string(),
                line: None,
                column: None,
            })
        })
        .collect()
}

/// Rules that recognise a secret by the name it is stored under (`ENV DB_PASSWORD=…`).
const NAME_RULES: &[&str] = &[
    "dockerfile.secret-in-env",
    "dockerfile.secret-arg-default",
    "compose.secret-in-environment",
    "compose.secret-in-env-file",
    "compose.secret-build-arg",
];

/// When the secret engine and a name rule report the same secret (same file, line and
/// fingerprint), keeps one finding: the name rule's, which says where the secret persists and
/// how to pass it instead, with the engine's title (what kind of secret it is) added and the
/// higher severity of the two.
pub fn merge_secret_hits(findings: &mut Vec<Finding>) {
    let fingerprint = |f: &Finding| f.evidence.as_ref().and_then(|e| e.fingerprint.clone());
    let line_of = |f: &Finding| match &f.location {
        Location::File { path, line, .. } => Some((path.clone(), *line)),
        _ => None,
    };
    let mut drop = vec![false; findings.len()];
    for i in 0..findings.len() {
        if !findings[i].rule.starts_with("secret.") {
            continue;
        }
        let (Some(fp), Some(at)) = (fingerprint(&findings[i]), line_of(&findings[i])) else {
            continue;
        };
        let named = (0..findings.len()).find(|&j| {
            !drop[j]
                && NAME_RULES.contains(&findings[j].rule.as_str())
                && fingerprint(&findings[j]).as_ref() == Some(&fp)
                && line_of(&findings[j]) == Some(at.clone())
        });
        if let Some(j) = named {
            let (kind, severity) = (findings[i].title.clone(), findings[i].severity);
            let target = &mut findings[j];
            let note = format!(" ({kind})");
            if !target.title.ends_with(&note) {
                target.title.push_str(&note);
            }
            target.severity = target.severity.max(severity);
            drop[i] = true;
        }
    }
    let mut keep = drop.iter().map(|d| !d);
    findings.retain(|_| keep.next().unwrap_or(true));
}

/// Drops findings that say the same thing at the same place twice (same rule and location, and
/// the same secret or the same title), keeping the first.
pub fn dedupe(findings: &mut Vec<Finding>) {
    let mut seen = std::collections::HashSet::new();
    findings.retain(|f| {
        let what = f
            .evidence
            .as_ref()
            .and_then(|e| e.fingerprint.clone())
            .unwrap_or_else(|| f.title.clone());
        seen.insert((f.rule.clone(), f.location.to_string(), what))
    });
}

/// Every rule of the pre-build review (Dockerfile, compose and build context), for `rsafe rules`.
pub fn rules() -> Vec<RuleInfo> {
    rules::RULES
        .iter()
        .chain(crate::audit::compose::RULES)
        .chain(crate::audit::context::RULES)
        .map(RuleInfo::from)
        .collect()
}

/// A finding of `rule` titled for this hit (the catalogue title is generic: "Secret in ENV";
/// the finding says which variable).
pub fn finding(
    rule: &Rule,
    title: impl Into<String>,
    location: Location,
    evidence: Option<Evidence>,
) -> Finding {
    let mut f = rule.finding(location, evidence);
    f.title = title.into();
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so the test needs no extra crate and fails
    /// the same way every time.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    /// Random Dockerfile-shaped text (keywords, flags, quotes, escapes, heredocs, variables,
    /// multibyte characters) never panics the parser, the analysis or the rules.
    #[test]
    fn arbitrary_input_never_panics() {
        const TOKENS: &[&str] = &[
            "FROM ",
            "RUN ",
            "COPY ",
            "ADD ",
            "ENV ",
            "ARG ",
            "USER ",
            "WORKDIR ",
            "ONBUILD ",
            "EXPOSE ",
            "HEALTHCHECK ",
            "CMD ",
            "SHELL ",
            "--from=",
            "--mount=type=secret,id=a ",
            "--chmod=4777 ",
            "a",
            "b AS c",
            "0",
            "root",
            "\\\n",
            "`\n",
            "\n",
            "\n",
            " ",
            "\t",
            "\"",
            "'",
            "[\"sh\", \"-c\", \"x\"]",
            "${A:-x}",
            "$B",
            "${",
            "}",
            "<<EOF\n",
            "EOF\n",
            "<<-'E'\n",
            "\tE\n",
            "# escape=`\n",
            "# c\n",
            "|",
            "&&",
            ";",
            "$(",
            ")",
            "curl x | sh",
            "chmod 777 /",
            "sudo ",
            ".",
            "*",
            "/",
            "é",
            "日本",
            "\u{feff}",
            "=",
            "id_rsa ",
            "/app/",
            "scratch",
            "secrets/",
            ".npmrc ",
            "--checksum=x ",
            "https://h/x ",
            "22",
        ];
        let scanner = SecretScanner::builtin().unwrap();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let n = (rng.next() % 40) as usize;
            let text: String = (0..n).map(|_| rng.pick(TOKENS)).collect();
            if let Ok(df) = parse::parse(&text) {
                let analysis = stages::analyse(&df);
                let loaded = Loaded {
                    path: PathBuf::from("Dockerfile"),
                    text: text.clone(),
                    dockerfile: df,
                    analysis,
                };
                let build = Build {
                    context: Some(Path::new("/nonexistent")),
                    base: &base::NoBaseImages,
                };
                let _ = audit_loaded(&loaded, &IgnoreFile::Missing, &Textual, &build, &scanner);
            }
        }
    }
}
