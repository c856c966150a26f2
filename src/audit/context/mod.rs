//! `rsafe audit DIR` for a build context: the Dockerfile(s) and compose files in it, the
//! `.dockerignore`, and the files the build would send to the builder and copy into the image.
//!
//! The context is walked exactly as the builder would send it — every file, `.git` and `.env`
//! included, minus what `.dockerignore` excludes ([`dockerignore`], with Docker's own pattern
//! semantics) — and each `COPY`/`ADD` is resolved against those real files ([`ContextFiles`]),
//! so `COPY . .` is known to take `deploy/id_rsa` along and `COPY --from=build /app/dist …` to
//! leave `/app/.npmrc` behind.
#![forbid(unsafe_code)]

pub mod dockerignore;
pub mod gomatch;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use walkdir::WalkDir;

use crate::audit::compose::{self, ComposeError};
use crate::audit::dockerfile::base::{BaseImages, StoreBaseImages};
use crate::audit::dockerfile::finding;
use crate::audit::dockerfile::flow::{ContextView, Placed, Root};
use crate::audit::dockerfile::names::is_secret_path;
use crate::audit::dockerfile::rules::IgnoreFile;
use crate::audit::dockerfile::{self, DockerfileError, dedupe, merge_secret_hits};
use crate::audit::secrets::SecretScanner;
use crate::audit::{Evidence, Finding, Location, Rule, Severity};

use dockerignore::clean;
use gomatch::{go_match, has_wildcards};

/// Why a build context could not be audited.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{} has no Dockerfile, Containerfile or compose file to audit", path.display())]
    NothingToAudit { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Dockerfile(#[from] DockerfileError),
    #[error(transparent)]
    Compose(#[from] ComposeError),
}

pub const GIT_IN_IMAGE: Rule = Rule {
    id: "context.git-in-image",
    severity: Severity::High,
    title: "Git repository copied into the image",
    description: "The `.git` directory of the build context is copied into the final image. It holds the full history — including secrets that were committed and later removed — and often remote URLs with access tokens.",
    remediation: "Add `.git` to .dockerignore (and copy only the paths the image needs).",
};

pub const SECRET_FILE_SENT: Rule = Rule {
    id: "context.secret-file-sent",
    severity: Severity::Low,
    title: "Credential file sent to the builder",
    description: "A file whose name marks it as a credential is in the build context and not excluded by .dockerignore. No COPY takes it into the image today, but it is uploaded to the builder (possibly remote) on every build, and the next `COPY . .` ships it.",
    remediation: "Exclude it in .dockerignore, or move it out of the build context.",
};

/// Every build-context rule, for `rsafe rules`.
pub const RULES: &[Rule] = &[GIT_IN_IMAGE, SECRET_FILE_SENT];

/// The files of a build context that reach the builder.
#[derive(Debug, Clone, Default)]
pub struct ContextFiles {
    /// Context-relative paths of regular files and symlinks that are sent.
    pub files: BTreeSet<String>,
    /// Context-relative directories that are sent (they or something under them).
    pub dirs: BTreeSet<String>,
    /// Sizes of the regular files among `files` (symlinks are sent as links, not read).
    pub sizes: HashMap<String, u64>,
    /// The context directory the paths are relative to.
    pub root: PathBuf,
}

impl ContextFiles {
    /// Walks `dir` as the builder would send it: everything, hidden files and `.git` included,
    /// minus what `matcher` excludes. Excluded directories are not entered unless an exception
    /// (`!pattern`) could re-include something inside them. Symlinks are not followed.
    pub fn walk(dir: &Path, matcher: Option<&dockerignore::Matcher>) -> Result<Self, ContextError> {
        let mut out = ContextFiles {
            root: dir.to_path_buf(),
            ..ContextFiles::default()
        };
        let has_exceptions = matcher.is_some_and(dockerignore::Matcher::has_exceptions);
        let mut walker = WalkDir::new(dir)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter();
        while let Some(entry) = walker.next() {
            let entry = entry.map_err(|e| ContextError::Read {
                path: e.path().unwrap_or(dir).to_path_buf(),
                source: e.into(),
            })?;
            let Ok(rel) = entry.path().strip_prefix(dir) else {
                continue;
            };
            let rel = rel.to_string_lossy().replace('\\', "/");
            if rel.is_empty() {
                continue;
            }
            let is_dir = entry.file_type().is_dir();
            if matcher.is_some_and(|m| m.excludes(&rel)) {
                if is_dir && !has_exceptions {
                    walker.skip_current_dir();
                }
                continue;
            }
            if is_dir {
                out.dirs.insert(rel.clone());
            } else {
                if entry.file_type().is_file() {
                    let size = entry.metadata().map_or(0, |m| m.len());
                    out.sizes.insert(rel.clone(), size);
                }
                out.files.insert(rel.clone());
            }
            // Parents of a sent path are sent too (they may be excluded themselves with an
            // exception re-including this child).
            let mut parent = rel.as_str();
            while let Some(pos) = parent.rfind('/') {
                parent = &parent[..pos];
                out.dirs.insert(parent.to_string());
            }
        }
        Ok(out)
    }

    fn files_under(&self, dir: &str) -> Vec<String> {
        if dir == "." {
            return self.files.iter().cloned().collect();
        }
        let prefix = format!("{dir}/");
        self.files
            .range(prefix.clone()..)
            .take_while(|f| f.starts_with(&prefix))
            .map(|f| f[prefix.len()..].to_string())
            .collect()
    }
}

impl ContextView for ContextFiles {
    fn holds_no_credential(&self, source: &str) -> bool {
        // Certificate bundles run to a few hundred KiB (certifi's is 290 KiB).
        const MOST: u64 = 4 << 20;
        let Some(&size) = self.sizes.get(source) else {
            // Sent, but not a regular file: a symlink, sent and copied as a link.
            return self.files.contains(source);
        };
        if size > MOST {
            return false;
        }
        crate::bounded::read_file(&self.root.join(source), MOST)
            .is_ok_and(|bytes| holds_only_public_material(&bytes))
    }

    fn resolve(&self, source: &str) -> Vec<Root> {
        let cleaned = clean(source.trim_start_matches('/'));
        if cleaned == "." {
            return vec![Root::Dir(".".into(), self.files_under("."))];
        }
        let root_for = |path: &str| -> Option<Root> {
            if self.files.contains(path) {
                Some(Root::File(path.to_string()))
            } else if self.dirs.contains(path) {
                Some(Root::Dir(path.to_string(), self.files_under(path)))
            } else {
                None
            }
        };
        if !has_wildcards(&cleaned) {
            return root_for(&cleaned).into_iter().collect();
        }
        // Wildcards match one path component at a time (Go's filepath.Match per component).
        let pattern: Vec<&str> = cleaned.split('/').collect();
        self.files
            .iter()
            .chain(self.dirs.iter())
            .filter(|p| {
                let parts: Vec<&str> = p.split('/').collect();
                parts.len() == pattern.len()
                    && parts
                        .iter()
                        .zip(&pattern)
                        .all(|(n, pat)| go_match(pat, n) == Ok(true))
            })
            .filter_map(|p| root_for(p))
            .collect()
    }
}

/// Armored blocks that hold nothing secret: certificates, public keys, revocation lists,
/// requests, signatures, parameters.
const PUBLIC_BLOCKS: &[&str] = &[
    "CERTIFICATE",
    "TRUSTED CERTIFICATE",
    "X509 CERTIFICATE",
    "X509 CRL",
    "CERTIFICATE REQUEST",
    "NEW CERTIFICATE REQUEST",
    "PUBLIC KEY",
    "RSA PUBLIC KEY",
    "PGP PUBLIC KEY BLOCK",
    "PGP SIGNATURE",
    "DH PARAMETERS",
    "EC PARAMETERS",
];

/// Whether `bytes` is PEM or OpenPGP armor whose every block is public ([`PUBLIC_BLOCKS`]):
/// a CA bundle named `cacert.pem`, a test server's certificate, an apt repository's
/// `*.gpg.key`. Anything else (a private key, a binary keystore, text around no block) is not.
pub fn holds_only_public_material(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut blocks = 0;
    for line in text.lines() {
        let Some(label) = line
            .trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        if !PUBLIC_BLOCKS.contains(&label) {
            return false;
        }
        blocks += 1;
    }
    blocks > 0 && !text.contains("PRIVATE KEY")
}

/// A Dockerfile and the context it builds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Build {
    dockerfile: PathBuf,
    context: PathBuf,
}

/// Whether a file name is a Dockerfile by the usual conventions.
pub fn is_dockerfile_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".dockerignore") {
        return false;
    }
    lower == "dockerfile"
        || lower == "containerfile"
        || lower.starts_with("dockerfile.")
        || lower.starts_with("containerfile.")
        || lower.ends_with(".dockerfile")
        || lower.ends_with(".containerfile")
}

/// Whether a file name is a compose file by Compose's conventions.
pub fn is_compose_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let stem = lower
        .strip_suffix(".yaml")
        .or_else(|| lower.strip_suffix(".yml"));
    stem.is_some_and(|s| {
        s == "compose"
            || s == "docker-compose"
            || s.starts_with("compose.")
            || s.starts_with("docker-compose.")
    })
}

/// Audits a build context directory: its Dockerfiles and compose files (and the contexts of
/// services they build), its `.dockerignore`, and the secrets in the files the builds send and
/// copy into images.
pub fn audit_context(dir: &Path, scanner: &SecretScanner) -> Result<Vec<Finding>, ContextError> {
    // `ctx/.` → `ctx`, so findings name `ctx/Dockerfile`.
    let dir: PathBuf = dir.components().collect();
    let dir = dir.as_path();
    if !dir.is_dir() {
        return Err(ContextError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|source| ContextError::Read {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut builds: Vec<Build> = names
        .iter()
        .filter(|n| is_dockerfile_name(n))
        .map(|n| Build {
            dockerfile: dir.join(n),
            context: dir.to_path_buf(),
        })
        .collect();
    let compose_names: Vec<&String> = names.iter().filter(|n| is_compose_name(n)).collect();
    if builds.is_empty() && compose_names.is_empty() {
        return Err(ContextError::NothingToAudit {
            path: dir.to_path_buf(),
        });
    }
    // Files another audit already scans as a whole (the compose files).
    let mut audited: HashSet<PathBuf> = HashSet::new();
    let mut compose_findings = Vec::new();
    for n in compose_names {
        let path = dir.join(n);
        let file = compose::load(&path)?;
        compose_findings.extend(compose::audit_loaded(&file, scanner));
        audited.insert(canonical(&path));
        for b in file.builds() {
            if b.dockerfile.is_file() {
                builds.push(Build {
                    dockerfile: b.dockerfile,
                    context: b.context,
                });
            }
        }
    }
    let mut seen = HashSet::new();
    builds.retain(|b| seen.insert((canonical(&b.dockerfile), canonical(&b.context))));
    let mut findings = compose_findings;
    let base = StoreBaseImages::from_env();
    for b in &builds {
        findings.extend(audit_build(b, &audited, &base, scanner)?);
    }
    // An env file is read by both the compose audit and the context scan.
    merge_secret_hits(&mut findings);
    dedupe(&mut findings);
    Ok(findings)
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// One Dockerfile against its real context.
fn audit_build(
    b: &Build,
    audited: &HashSet<PathBuf>,
    base: &dyn BaseImages,
    scanner: &SecretScanner,
) -> Result<Vec<Finding>, ContextError> {
    let loaded = dockerfile::load(&b.dockerfile)?;
    let ignore = dockerfile::ignore_file_for(&b.dockerfile, &b.context)?;
    let matcher = match &ignore {
        IgnoreFile::Present { matcher, .. } => Some(matcher),
        IgnoreFile::Missing | IgnoreFile::NoContext => None,
    };
    let files = ContextFiles::walk(&b.context, matcher)?;
    let build = dockerfile::Build {
        context: Some(&b.context),
        base,
    };
    let (mut findings, placed) =
        dockerfile::audit_loaded(&loaded, &ignore, &files, &build, scanner);
    // Files scanned whole elsewhere (this Dockerfile, the compose files), as context paths.
    let context = canonical(&b.context);
    let skip: HashSet<String> = audited
        .iter()
        .cloned()
        .chain([canonical(&b.dockerfile)])
        .filter_map(|p| {
            p.strip_prefix(&context)
                .ok()
                .map(|r| r.to_string_lossy().into_owned())
        })
        .collect();
    let secrets = scan_files(b, &files, &placed, &loaded.analysis.shipped, &skip, scanner)?;
    // A credential file whose content the secret rules recognised is reported by them.
    let recognised: HashSet<String> = secrets
        .iter()
        .filter_map(|f| match &f.location {
            Location::File { path, .. } => Some(path.clone()),
            _ => None,
        })
        .collect();
    findings.extend(context_rules(b, &files, &placed).into_iter().filter(|f| {
        f.rule != SECRET_FILE_SENT.id
            || !matches!(&f.location, Location::File { path, .. } if recognised.contains(path))
    }));
    findings.extend(secrets);
    Ok(findings)
}

/// Where the build puts a context file.
enum Fate<'a> {
    /// Copied into the final image (the first placement found).
    Image(&'a Placed),
    /// Copied only into stages that are not shipped.
    BuildStage(&'a Placed),
    /// Sent to the builder, copied nowhere.
    Sent,
}

/// Where each context file goes, indexed once (a `COPY . .` places every file).
struct Fates<'a> {
    image: HashMap<&'a str, &'a Placed>,
    build_stage: HashMap<&'a str, &'a Placed>,
}

impl<'a> Fates<'a> {
    fn new(placed: &'a [Vec<Placed>], shipped: &[bool]) -> Self {
        let mut image = HashMap::new();
        if let Some(last) = placed.last() {
            for p in last {
                image.entry(p.source.as_str()).or_insert(p);
            }
        }
        let mut build_stage = HashMap::new();
        for (s, ps) in placed.iter().enumerate() {
            if shipped.get(s).copied().unwrap_or(false) {
                continue;
            }
            for p in ps {
                build_stage.entry(p.source.as_str()).or_insert(p);
            }
        }
        Fates { image, build_stage }
    }

    fn of(&self, rel: &str) -> Fate<'a> {
        if let Some(p) = self.image.get(rel) {
            return Fate::Image(p);
        }
        self.build_stage
            .get(rel)
            .map_or(Fate::Sent, |p| Fate::BuildStage(p))
    }
}

/// The secret rules over every file the build sends. A secret copied into the final image keeps
/// the engine's severity; one only in a build stage's layer is at most medium; one that is only
/// uploaded to the builder is low. Titles say which.
fn scan_files(
    b: &Build,
    files: &ContextFiles,
    placed: &[Vec<Placed>],
    shipped: &[bool],
    skip: &HashSet<String>,
    scanner: &SecretScanner,
) -> Result<Vec<Finding>, ContextError> {
    use std::io::Read;
    // `Dockerfile:3` reads better than the full path when the Dockerfile is in the context.
    let dockerfile_name = b
        .dockerfile
        .strip_prefix(&b.context)
        .unwrap_or(&b.dockerfile)
        .display()
        .to_string();
    let fates = Fates::new(placed, shipped);
    let per_file: Vec<Result<Vec<Finding>, ContextError>> = files
        .files
        .par_iter()
        .map(|rel| {
            let path = b.context.join(rel);
            let Some(&size) = files.sizes.get(rel) else {
                return Ok(Vec::new());
            };
            if skip.contains(rel.as_str()) {
                return Ok(Vec::new());
            }
            let fate = fates.of(rel);
            // The engine is given the project path, not the image path: a context file is the
            // project's own, and under an image path like /usr/src/app the engine would take it
            // for a distribution's file and skip rules.
            let scan_path = rel.as_str();
            if !scanner.wants_path(scan_path, size) {
                return Ok(Vec::new());
            }
            let mut content = Vec::new();
            std::fs::File::open(&path)
                .and_then(|f| f.take(scanner.max_scan_bytes()).read_to_end(&mut content))
                .map_err(|source| ContextError::Read {
                    path: path.clone(),
                    source,
                })?;
            let location = Location::File {
                path: path.display().to_string(),
                line: None,
                column: None,
            };
            Ok(scanner
                .scan_file(scan_path, &content)
                .into_iter()
                .map(|hit| {
                    let mut f = hit.into_finding(location.clone());
                    match &fate {
                        Fate::Image(p) => {
                            let line = p.carried_by.last().copied().unwrap_or(p.copy_line);
                            f.title = format!(
                                "{} — copied into the final image at {} ({dockerfile_name}:{line})",
                                f.title, p.image_path
                            );
                        }
                        Fate::BuildStage(p) => {
                            f.severity = f.severity.min(Severity::Medium);
                            f.title = format!(
                                "{} — copied into a build stage at {} ({dockerfile_name}:{}), not into the final image",
                                f.title, p.image_path, p.copy_line
                            );
                        }
                        Fate::Sent => {
                            f.severity = Severity::Low;
                            f.title = format!(
                                "{} — sent to the builder with the build context, not copied into the image",
                                f.title
                            );
                        }
                    }
                    f
                })
                .collect())
        })
        .collect();
    let mut out = Vec::new();
    for r in per_file {
        out.extend(r?);
    }
    Ok(out)
}

fn context_rules(b: &Build, files: &ContextFiles, placed: &[Vec<Placed>]) -> Vec<Finding> {
    let mut out = Vec::new();
    let final_placed = placed.last().map(Vec::as_slice).unwrap_or(&[]);
    let at = |rel: &str| Location::File {
        path: b.context.join(rel).display().to_string(),
        line: None,
        column: None,
    };
    // .git in the final image: one finding per COPY that takes it.
    let mut git_lines: Vec<u32> = final_placed
        .iter()
        .filter(|p| p.source == ".git" || p.source.starts_with(".git/"))
        .map(|p| p.carried_by.last().copied().unwrap_or(p.copy_line))
        .collect();
    git_lines.sort_unstable();
    git_lines.dedup();
    for line in git_lines {
        out.push(finding(
            &GIT_IN_IMAGE,
            "The .git directory (history, remotes, hooks) is copied into the final image",
            Location::File {
                path: b.dockerfile.display().to_string(),
                line: Some(line),
                column: None,
            },
            Some(Evidence::plain(".git/")),
        ));
    }
    // Credential files that are sent but copied nowhere.
    let copied: HashSet<&str> = placed.iter().flatten().map(|p| p.source.as_str()).collect();
    for f in &files.files {
        if f.starts_with(".git/")
            || copied.contains(f.as_str())
            || !is_secret_path(f)
            || files.holds_no_credential(f)
        {
            continue;
        }
        let dockerfile_name = b
            .dockerfile
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        if dockerfile_name.as_deref() == Some(f.as_str()) {
            continue;
        }
        out.push(finding(
            &SECRET_FILE_SENT,
            format!(
                "{f} is sent to the builder with the build context (not excluded by .dockerignore)"
            ),
            at(f),
            Some(Evidence::plain(f.clone())),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_material_is_armor_with_public_blocks_only() {
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nMC4C\n-----END PRIVATE KEY-----\n";
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n";
        let pgp =
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQIN\n-----END PGP PUBLIC KEY BLOCK-----\n";
        let pgp_secret =
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQc\n-----END PGP PRIVATE KEY BLOCK-----\n";
        assert!(holds_only_public_material(cert.as_bytes()));
        assert!(holds_only_public_material(
            format!("# a bundle\n{cert}{cert}").as_bytes()
        ));
        assert!(holds_only_public_material(pgp.as_bytes()));
        for secret in [
            key,
            rsa,
            pgp_secret,
            &format!("{cert}{key}"),
            &format!("{key}{cert}"),
        ] {
            assert!(!holds_only_public_material(secret.as_bytes()), "{secret}");
        }
        // No armor at all, or not text: nothing is known, the name decides.
        assert!(!holds_only_public_material(b"hunter2\n"));
        assert!(!holds_only_public_material(b""));
        assert!(!holds_only_public_material(&[0x30, 0x82, 0xff, 0xfe]));
        // An encrypted key says so in its label.
        let enc =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(!holds_only_public_material(enc.as_bytes()));
    }
}
