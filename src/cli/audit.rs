//! `rsafe audit TARGET`: find what an image leaks and what makes it risky, then report it as a
//! table, JSON or SARIF and turn it into an exit code for CI (0 clean, 1 findings at
//! `--fail-on`, 2 rsafe could not finish).
//!
//! Targets are recognised in [`Target::detect`], one rule per kind, so new kinds (Dockerfile,
//! compose file, build context, running container) slot in as one more variant with its own
//! function returning findings; everything after that — ignore file, severity filter,
//! rendering, exit code — is shared ([`report_findings`]). Images are never written into the
//! user's store by an audit ([`open_image`]).

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Global;
use crate::audit::ignore::IgnoreList;
use crate::audit::secrets::SecretScanner;
use crate::audit::{
    self, AuditOptions, Finding, ImageAudit, Progress, RuleInfo, ScanStats, SecretDetector,
    Severity,
};
use crate::audit::{compose, context, dockerfile, k8s, procs};
use crate::image::config::Image;
use crate::image::layer::DEFAULT_MAX_EXPANDED;
use crate::image::lookup::{self, LookupError};
use crate::image::resolve::{self, ResolveOptions};
use crate::image::store::{self, Store};
use crate::image::{Platform, load};
use crate::report::table::human_bytes;
use crate::report::{self, Format, Report, Style};

/// The ignore file read from the current directory when `--ignore-file` is not given.
pub const DEFAULT_IGNORE_FILE: &str = ".rsafeignore";

/// Images whose layers are smaller than this (compressed) get no progress bar.
const PROGRESS_THRESHOLD: u64 = 32 << 20;

/// Arguments of `rsafe audit`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 no finding at or above --fail-on (or no --fail-on), \
1 findings at or above it, 2 the audit could not be completed."
)]
pub struct AuditArgs {
    /// What to audit: an image in the store (`app:1.0`, a digest), an OCI layout directory
    /// (`./layout`, `./layout:tag`, read in place), a `docker save` tarball or OCI archive
    /// (`./app.tar`, `-` for stdin), or a registry reference (`registry.example/app:1.0`).
    /// Archives and pulled images go to a temporary store, never into yours.
    /// Also: a Dockerfile, a compose file, Kubernetes manifests (a YAML file or a directory of
    /// them, recognised by content; `-` reads a manifest stream such as `helm template` output
    /// from stdin), a build-context directory, or a running container (`pid:N` for the
    /// container process N belongs to, `container:NAME` by name or id).
    #[arg(value_name = "TARGET", required_unless_present = "running")]
    pub target: Option<String>,
    /// Audit every container running on this host (found from /proc, no daemon needed).
    #[arg(long, conflicts_with = "target")]
    pub running: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Exit with 1 when a finding is at or above this severity (counted whatever
    /// --min-severity shows; findings accepted in the ignore file do not count).
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    /// Leave out findings below this severity (they are counted in the summary).
    #[arg(long, value_enum, value_name = "SEVERITY", default_value_t = Severity::Info)]
    pub min_severity: Severity,
    /// Accepted findings (rule / path glob / fingerprint, each with a reason); repeatable.
    /// Default: ./.rsafeignore when it exists.
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Vec<PathBuf>,
    /// Platform to audit when the image is multi-platform.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<Platform>,
    /// Privileged (setuid, setgid, capability) binaries larger than this many bytes are not
    /// inspected for ELF hardening.
    #[arg(long, value_name = "BYTES", default_value_t = AuditOptions::default().max_file_size)]
    pub max_binary_size: u64,
    /// Allow plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    pub insecure: bool,
    /// Refuse a layer that expands past this many bytes (decompression bombs).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_EXPANDED)]
    pub max_layer_size: u64,
    /// Kubernetes manifests: the Pod Security Standards level whose violations are failures
    /// (restricted-only violations are reported low under baseline).
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = k8s::PssLevel::Baseline)]
    pub pss: k8s::PssLevel,
}

/// What `rsafe audit` was pointed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An OCI image layout directory, read in place (nothing is copied), and the ref to audit
    /// (None: its only one).
    Layout {
        dir: PathBuf,
        reference: Option<String>,
    },
    /// Anything else that names an image: a store name or digest, an archive file, `-` for an
    /// archive on stdin, or a registry reference (see [`open_image`]).
    Image(String),
    /// A Dockerfile / Containerfile (by name), reviewed before any build.
    Dockerfile(PathBuf),
    /// A compose file (`compose.yaml`, `docker-compose.yml`, …).
    Compose(PathBuf),
    /// A build context: a directory that is not an OCI layout.
    Context(PathBuf),
    /// Kubernetes manifests: a YAML file holding a workload, or a directory of manifests with
    /// no Dockerfile or compose file at its top.
    K8s(PathBuf),
    /// A Kubernetes manifest stream on standard input (`helm template … | rsafe audit -`).
    K8sStdin,
}

impl Target {
    /// Recognises what `spec` names: `DIR` or `DIR:REF` where DIR holds an `oci-layout` file
    /// (split like `rsafe load` splits, at the first `:` whose left side exists) is a layout;
    /// everything else goes to the image resolver.
    pub fn detect(spec: &str) -> Target {
        let path = Path::new(spec);
        if path.is_dir() && !path.join("oci-layout").is_file() {
            if is_manifest_dir(path) {
                return Target::K8s(path.to_path_buf());
            }
            return Target::Context(path.to_path_buf());
        }
        if path.is_file() {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if context::is_dockerfile_name(name) {
                return Target::Dockerfile(path.to_path_buf());
            }
            if context::is_compose_name(name) {
                return Target::Compose(path.to_path_buf());
            }
            if k8s::is_manifest_name(name)
                && k8s::read_limited(path).is_ok_and(|t| k8s::looks_like_manifest(&t))
            {
                return Target::K8s(path.to_path_buf());
            }
        }
        if let Some((path, reference)) = load::split_spec(spec)
            && path.join("oci-layout").is_file()
        {
            return Target::Layout {
                dir: path,
                reference,
            };
        }
        Target::Image(spec.to_string())
    }
}

/// A directory of Kubernetes manifests: no Dockerfile or compose file at its top (that is a
/// build context), and a workload manifest somewhere below.
fn is_manifest_dir(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut yaml = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if context::is_dockerfile_name(&name) || context::is_compose_name(&name) {
            return false;
        }
        if k8s::is_manifest_name(&name) {
            yaml.push(e.path());
        }
    }
    yaml.iter()
        .any(|p| k8s::read_limited(p).is_ok_and(|t| k8s::looks_like_manifest(&t)))
        || ["k8s", "kubernetes", "manifests", "deploy"]
            .iter()
            .any(|sub| dir.join(sub).is_dir() && is_manifest_dir(&dir.join(sub)))
}

/// Whether standard input starts with text rather than an image archive (tar, gzip, zstd hold
/// NUL bytes or magic numbers in their first bytes): what `rsafe audit -` uses to tell a
/// manifest stream from `docker save` output. Only peeks: the bytes stay in stdin's buffer
/// for whichever reader comes next.
fn stdin_holds_text() -> bool {
    use std::io::BufRead;
    let mut lock = io::stdin().lock();
    match lock.fill_buf() {
        Ok(buf) if !buf.is_empty() => looks_like_text(buf),
        _ => false,
    }
}

/// UTF-8 without NUL bytes or a compression magic (a character cut at the end is fine).
fn looks_like_text(buf: &[u8]) -> bool {
    const GZIP: &[u8] = &[0x1f, 0x8b];
    const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
    if buf.starts_with(GZIP) || buf.starts_with(ZSTD) || buf.contains(&0) {
        return false;
    }
    match std::str::from_utf8(buf) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

/// Reads a manifest stream from standard input, refusing one past the manifest size limit.
fn read_stdin_manifests() -> anyhow::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    io::stdin()
        .lock()
        .take(k8s::MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .context("cannot read standard input")?;
    if bytes.len() as u64 > k8s::MAX_MANIFEST_BYTES {
        bail!(
            "standard input: more than the {} bytes a manifest stream may have",
            k8s::MAX_MANIFEST_BYTES
        );
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Audits Kubernetes manifests (a file, a directory, or stdin); the notes (documents skipped:
/// invalid YAML, not an object, kinds rsafe does not audit) go to stderr.
fn audit_k8s(
    target: &Target,
    scanner: &SecretScanner,
    pss: k8s::PssLevel,
) -> anyhow::Result<Vec<Finding>> {
    let options = k8s::K8sOptions { pss };
    let audit = match target {
        Target::K8sStdin => k8s::audit_text(&read_stdin_manifests()?, "-", scanner, &options),
        Target::K8s(path) => k8s::audit_path(path, scanner, &options)?,
        _ => bail!("not a Kubernetes manifest target"),
    };
    for note in &audit.notes {
        eprintln!("rsafe: note: {note}");
    }
    if audit.objects == 0 {
        bail!(
            "{}: no Kubernetes object found",
            match target {
                Target::K8s(p) => p.display().to_string(),
                _ => "standard input".to_string(),
            }
        );
    }
    Ok(audit.findings)
}

/// Runs `rsafe audit` and returns the exit code.
pub fn run(args: AuditArgs, global: &Global) -> anyhow::Result<i32> {
    // A broken ignore file is an error before any work: silently reporting everything (or
    // nothing) would both be wrong in CI.
    let ignores = load_ignores(&args.ignore_file)?;
    let detector = secret_detector()?;
    let spec = args.target.clone().unwrap_or_default();
    let running = match procs::Target::parse(&spec) {
        Some(t) => Some(t),
        None if args.running => Some(procs::Target::All),
        None => None,
    };
    if let Some(which) = running {
        return audit_running_containers(&which, &args, global, &ignores, &detector);
    }
    let target = if spec == load::STDIN && stdin_holds_text() {
        Target::K8sStdin
    } else {
        Target::detect(&spec)
    };
    let platform = args.platform.clone().unwrap_or_else(Platform::host);
    let started = Instant::now();
    // A Dockerfile's base images are looked up in the store these options name.
    let store_root = global.root.clone().unwrap_or_else(Store::default_root);
    if let Some((kind, result)) = audit_source(&target, &detector, &store_root, args.pss) {
        let context = ReportContext {
            target: report::Target {
                kind: kind.to_string(),
                name: spec.clone(),
                digest: None,
                platform: None,
            },
            stats: None,
            elapsed: Some(started.elapsed()),
        };
        return report_findings(result?, context, &ignores, &args, all_rules(&detector));
    }
    let opened = open_image(&target, &platform, args.insecure, global)?;
    let (description, ImageAudit { findings, stats }) =
        audit_opened(&opened, &args, global, &detector)?;
    drop(opened);
    let context = ReportContext {
        target: description,
        stats: Some(stats),
        elapsed: Some(started.elapsed()),
    };
    report_findings(findings, context, &ignores, &args, all_rules(&detector))
}

/// `rsafe audit --running | pid:N | container:NAME`: containers found from /proc alone.
fn audit_running_containers(
    which: &procs::Target,
    args: &AuditArgs,
    global: &Global,
    ignores: &IgnoreList,
    scanner: &SecretScanner,
) -> anyhow::Result<i32> {
    let started = Instant::now();
    let mut opts = procs::DiscoverOptions::new(Path::new("/proc"));
    if let Some(root) = &global.root
        && !opts.rsafe_stores.contains(root)
    {
        opts.rsafe_stores.push(root.clone());
    }
    let audit = procs::audit_running(&opts, which, scanner)
        .context("cannot audit the running containers")?;
    let name = match which {
        procs::Target::All => format!("{} running containers", audit.containers.len()),
        _ => audit
            .containers
            .iter()
            .map(|c| c.name.clone().unwrap_or_else(|| c.id.clone()))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let context = ReportContext {
        target: report::Target {
            kind: "container".to_string(),
            name,
            digest: None,
            platform: None,
        },
        stats: None,
        elapsed: Some(started.elapsed()),
    };
    report_findings(audit.findings, context, ignores, args, all_rules(scanner))
}

/// Audits a target that is source rather than an image (Dockerfile, compose file, build
/// context); `None` for image targets.
fn audit_source(
    target: &Target,
    scanner: &SecretScanner,
    store_root: &Path,
    pss: k8s::PssLevel,
) -> Option<(&'static str, anyhow::Result<Vec<Finding>>)> {
    Some(match target {
        Target::Dockerfile(path) => {
            let base = dockerfile::base::StoreBaseImages::open(store_root);
            (
                "dockerfile",
                dockerfile::audit_dockerfile_with(path, scanner, &base)
                    .map_err(anyhow::Error::from),
            )
        }
        Target::Compose(path) => (
            "compose",
            compose::audit_compose(path, scanner).map_err(anyhow::Error::from),
        ),
        Target::Context(path) => (
            "directory",
            context::audit_context(path, scanner).map_err(anyhow::Error::from),
        ),
        Target::K8s(_) | Target::K8sStdin => ("kubernetes", audit_k8s(target, scanner, pss)),
        Target::Layout { .. } | Target::Image(_) => return None,
    })
}

/// What a report says besides its findings.
pub struct ReportContext {
    pub target: report::Target,
    pub stats: Option<ScanStats>,
    pub elapsed: Option<Duration>,
}

/// The secret engine with rsafe's builtin rules (`policies/secrets.toml`, compiled in).
pub fn secret_detector() -> anyhow::Result<SecretScanner> {
    SecretScanner::builtin().context("cannot load the builtin secret rules")
}

/// Every rule a report may refer to: rsafe's own checks, then the secret engine's.
pub fn all_rules(scanner: &SecretScanner) -> Vec<RuleInfo> {
    audit::builtin_rules()
        .into_iter()
        .map(RuleInfo::from)
        .chain(dockerfile::rules())
        .chain(k8s::rules().map(RuleInfo::from))
        .chain(scanner.rules())
        .collect()
}

/// The shared tail of every audit: apply the ignore file and `--min-severity`, sort, render to
/// stdout, and decide the exit code from `--fail-on` (on every finding not ignored, shown or
/// not).
pub fn report_findings(
    findings: Vec<Finding>,
    context: ReportContext,
    ignores: &IgnoreList,
    args: &AuditArgs,
    rules: Vec<RuleInfo>,
) -> anyhow::Result<i32> {
    let (kept, ignored) = ignores.apply(findings);
    // The gate sees every finding the ignore file did not accept, whatever `--min-severity`
    // leaves out of the display: a CI job that shows only high findings still fails on a
    // medium one when it gates on medium.
    let fails = args
        .fail_on
        .is_some_and(|gate| kept.iter().any(|f| f.severity >= gate));
    let before = kept.len();
    let mut findings: Vec<Finding> = kept
        .into_iter()
        .filter(|f| f.severity >= args.min_severity)
        .collect();
    let below_threshold = before - findings.len();
    audit::sort_findings(&mut findings);
    let report = Report {
        target: context.target,
        findings,
        ignored,
        below_threshold,
        rules,
        stats: context.stats,
        elapsed: context.elapsed,
    };
    let stdout = io::stdout();
    let color = args.format == Format::Table
        && stdout.is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut out = io::BufWriter::new(stdout.lock());
    let written = report::render_styled(args.format, &report, &mut out, Style { color })
        .and_then(|()| out.flush());
    quiet_on_broken_pipe(written).context("cannot write the report")?;
    Ok(if fails { 1 } else { 0 })
}

/// A reader that went away (`rsafe audit … | head`) is not an error: stop writing, keep the
/// exit code.
pub fn quiet_on_broken_pipe(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// The ignore files to apply: those given, or `./.rsafeignore` when it exists.
fn load_ignores(files: &[PathBuf]) -> anyhow::Result<IgnoreList> {
    let default = PathBuf::from(DEFAULT_IGNORE_FILE);
    let files: Vec<PathBuf> = if files.is_empty() {
        default.is_file().then_some(default).into_iter().collect()
    } else {
        files.to_vec()
    };
    let mut list = IgnoreList::default();
    for f in files {
        list.entries.extend(
            IgnoreList::load(&f)
                .context("cannot use the ignore file")?
                .entries,
        );
    }
    Ok(list)
}

/// An image opened for auditing, with the store it lives in. A temporary store (an archive
/// loaded, an image pulled) is removed when this is dropped.
pub struct Opened {
    pub store: Store,
    pub image: Image,
    /// The name to show for it.
    pub name: String,
    _scratch: Option<tempfile::TempDir>,
}

/// Opens the image `target` names without writing to the user's store:
/// - a layout directory is read in place;
/// - a store name or digest is read from the store (`--root`), when the store has it;
/// - a path (archive or layout, `PATH:REF`), `-` (an archive on stdin), or a registry reference
///   is loaded or pulled into a temporary store under the store's `tmp/` (same file system as
///   the blobs) or `$TMPDIR`, removed afterwards.
pub fn open_image(
    target: &Target,
    platform: &Platform,
    insecure: bool,
    global: &Global,
) -> anyhow::Result<Opened> {
    match target {
        Target::Dockerfile(path)
        | Target::Compose(path)
        | Target::Context(path)
        | Target::K8s(path) => {
            bail!("{} is not an image", path.display())
        }
        Target::K8sStdin => bail!("standard input holds manifests, not an image"),
        Target::Layout { dir, reference } => {
            let store = Store::open_read_only(dir)
                .with_context(|| format!("cannot open the OCI layout {}", dir.display()))?;
            let name = match reference {
                Some(r) => r.clone(),
                None => only_ref(&store, dir)?,
            };
            let shown = format!("{}:{name}", dir.display());
            let image = Image::open(&store, &name, platform)
                .with_context(|| format!("cannot open image {shown}"))?;
            Ok(Opened {
                store,
                image,
                name: shown,
                _scratch: None,
            })
        }
        Target::Image(spec) => {
            let root = global.root.clone().unwrap_or_else(Store::default_root);
            let on_disk = spec == load::STDIN || load::split_spec(spec).is_some();
            if !on_disk && let Ok(store) = Store::open_read_only(&root) {
                match lookup::find(&store, spec) {
                    Ok(found) => {
                        let image = Image::from_descriptor(&store, &found.descriptor, platform)
                            .with_context(|| format!("cannot open image {spec}"))?;
                        return Ok(Opened {
                            store,
                            image,
                            name: found.display_name(),
                            _scratch: None,
                        });
                    }
                    Err(LookupError::NotFound(_)) => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot look up {spec}"));
                    }
                }
            }
            let scratch = scratch_dir(&root)?;
            let store = Store::open(scratch.path()).with_context(|| {
                format!(
                    "cannot create a scratch store in {}",
                    scratch.path().display()
                )
            })?;
            let (name, image) = if spec == load::STDIN {
                let loaded = load::load_path(&store, spec, platform)
                    .context("cannot load the archive on standard input")?;
                let [one] = loaded.as_slice() else {
                    bail!(
                        "standard input holds {} images; audit one at a time",
                        loaded.len()
                    );
                };
                let image = Image::from_descriptor(&store, &one.descriptor, platform)
                    .context("cannot open the image on standard input")?;
                (one.name.clone(), image)
            } else {
                let opts = ResolveOptions {
                    platform: platform.clone(),
                    pull: true,
                    insecure,
                };
                let r = resolve::resolve(&store, spec, &opts)
                    .with_context(|| format!("cannot get image {spec}"))?;
                (r.name, r.image)
            };
            Ok(Opened {
                store,
                image,
                name: if on_disk { spec.clone() } else { name },
                _scratch: Some(scratch),
            })
        }
    }
}

/// A directory for a temporary store: under the user's store `tmp/` when it is writable (big
/// images stay on the store's file system), else under `$TMPDIR`.
fn scratch_dir(root: &Path) -> anyhow::Result<tempfile::TempDir> {
    let builder = || {
        let mut b = tempfile::Builder::new();
        b.prefix("audit-");
        b
    };
    if let Ok(dir) = builder().tempdir_in(root.join("tmp")) {
        return Ok(dir);
    }
    builder()
        .tempdir()
        .context("cannot create a temporary directory for the image")
}

/// Audits an opened image.
fn audit_opened(
    opened: &Opened,
    args: &AuditArgs,
    global: &Global,
    detector: &dyn SecretDetector,
) -> anyhow::Result<(report::Target, ImageAudit)> {
    let img = &opened.image;
    let options = AuditOptions {
        max_file_size: args.max_binary_size,
        max_layer_expanded: args.max_layer_size,
        ..AuditOptions::default()
    };
    let bar = Bar::new(img, global.quiet);
    let result = audit::audit_image(&opened.store, img, detector, &options, &bar);
    bar.finish();
    let audit = result.with_context(|| format!("cannot audit {}", opened.name))?;
    let description = report::Target {
        kind: "image".into(),
        name: opened.name.clone(),
        digest: Some(img.manifest_digest.to_string()),
        platform: Some(format!("{}/{}", img.config.os(), img.config.architecture())),
    };
    Ok((description, audit))
}

/// The one ref of a layout, or an error listing them.
fn only_ref(store: &Store, dir: &Path) -> anyhow::Result<String> {
    let refs = store
        .refs()
        .with_context(|| format!("cannot read {}", dir.display()))?;
    match refs.as_slice() {
        [(name, _)] => Ok(name.clone()),
        [] => bail!(
            "{}: the layout names no image ({} annotations)",
            dir.display(),
            store::REF_NAME
        ),
        many => bail!(
            "{}: the layout has several images, pick one with {}:REF (refs: {})",
            dir.display(),
            dir.display(),
            many.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The progress bar on stderr: layers done, bytes streamed. Hidden with `--quiet`, when stderr
/// is not a terminal (indicatif's own check), and for small images.
struct Bar {
    bar: ProgressBar,
    bytes: AtomicU64,
}

impl Bar {
    fn new(img: &Image, quiet: bool) -> Bar {
        let layers = img.layers().len() as u64;
        let target = if quiet || img.size() < PROGRESS_THRESHOLD {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(layers), target);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} auditing [{bar:30}] {pos}/{len} layers, {msg} ({elapsed})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message("0 B read");
        bar.enable_steady_tick(Duration::from_millis(120));
        Bar {
            bar,
            bytes: AtomicU64::new(0),
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn bytes(&self, n: u64) {
        let total = self.bytes.fetch_add(n, Ordering::Relaxed) + n;
        self.bar.set_message(format!("{} read", human_bytes(total)));
    }

    fn layer_done(&self, _index: usize) {
        self.bar.inc(1);
    }
}
