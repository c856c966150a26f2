//! `rsafe pull IMAGE`: fetch an image from a registry into the store.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context as _;
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Global;
use crate::image::registry::{self, PullEvent, PullOptions};
use crate::image::{Digest, Platform, Reference};

/// Pull an image from a registry (OCI distribution / Docker Registry API v2) into the store.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The image: [HOST[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST] (Docker Hub when no host).
    #[arg(value_name = "IMAGE")]
    pub image: Reference,
    /// The platform to pick from a multi-platform image [default: this machine's].
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<Platform>,
    /// Keep every platform's image and name the index rather than one manifest.
    #[arg(long, conflicts_with = "platform")]
    pub all_platforms: bool,
    /// Allow plain HTTP to a registry that is not on this machine (loopback always may).
    #[arg(long)]
    pub insecure: bool,
    /// The only credentials file to read (docker config.json / containers auth.json format)
    /// [default: $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json,
    /// ~/.config/containers/auth.json, ~/.docker/config.json].
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// A directory of CA certificates (`*.crt`) to trust for this registry [default:
    /// /etc/containers/certs.d/HOST[:PORT]/, /etc/docker/certs.d/HOST[:PORT]/].
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}

/// Runs `rsafe pull`: progress on stderr (a terminal only), a summary line on stdout (with
/// `--quiet`, only the digest the name points at, for scripts).
pub fn run(args: PullArgs, global: &Global) -> anyhow::Result<i32> {
    let store = global.store()?;
    let opts = PullOptions {
        platform: args.platform.unwrap_or_else(Platform::host),
        insecure: args.insecure,
        all_platforms: args.all_platforms,
        auth_file: args.authfile,
        cert_dir: args.cert_dir,
    };
    let view = Progress::new(global.quiet, global.verbose);
    let pulled = registry::pull(&store, &args.image, &opts, &|e| view.event(e))
        .with_context(|| format!("cannot pull {}", args.image))?;
    if global.quiet {
        println!("{}", pulled.manifest);
    } else {
        println!(
            "Pulled {} ({}): {} blob{} fetched ({}), {} already present",
            pulled.name,
            pulled.manifest,
            pulled.fetched_blobs,
            if pulled.fetched_blobs == 1 { "" } else { "s" },
            HumanBytes(pulled.bytes),
            pulled.reused_blobs
        );
    }
    Ok(0)
}

/// Turns pull events into one progress bar per blob (when stderr is a terminal) and, with
/// `--verbose`, lines saying where rsafe connected and how it authenticated.
struct Progress {
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
    style: ProgressStyle,
    verbose: bool,
}

impl Progress {
    fn new(quiet: bool, verbose: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let style = ProgressStyle::with_template(
            "{msg:19} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        Progress {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
            style,
            verbose: verbose && !quiet,
        }
    }

    fn say(&self, line: String) {
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }

    fn line(&self, line: String) {
        if !self.multi.is_hidden() {
            let _ = self.multi.println(line);
        }
    }

    fn event(&self, event: PullEvent<'_>) {
        match event {
            PullEvent::Connected { base } if self.verbose => {
                self.say(format!("rsafe: registry answered at {base}"));
            }
            PullEvent::TrustingCa { files } if self.verbose => {
                let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                self.say(format!(
                    "rsafe: trusting CA certificates in {}",
                    files.join(", ")
                ));
            }
            PullEvent::Authenticating {
                scheme,
                realm,
                credentials,
            } if self.verbose => {
                let realm = realm
                    .map(|r| format!(" (token from {r})"))
                    .unwrap_or_default();
                let who = credentials.map_or("anonymously".to_string(), |f| {
                    format!("with credentials from {}", f.display())
                });
                self.say(format!("rsafe: authenticating {scheme}{realm} {who}"));
            }
            PullEvent::Resolved { manifest, platform } if self.verbose => {
                let platform = platform.map(|p| format!(" for {p}")).unwrap_or_default();
                self.say(format!("rsafe: manifest {manifest}{platform}"));
            }
            PullEvent::BlobReused { digest, size } => {
                self.line(format!(
                    "{:19} already present ({})",
                    digest.short(),
                    HumanBytes(size)
                ));
            }
            PullEvent::BlobStarted { digest, size } => {
                if self.multi.is_hidden() {
                    return;
                }
                let bar = self.multi.add(
                    ProgressBar::new(size)
                        .with_style(self.style.clone())
                        .with_message(digest.short().to_string()),
                );
                if let Ok(mut bars) = self.bars.lock() {
                    bars.insert(digest.clone(), bar);
                }
            }
            PullEvent::BlobProgress { digest, done } => {
                if let Ok(bars) = self.bars.lock()
                    && let Some(bar) = bars.get(digest)
                {
                    bar.set_position(done);
                }
            }
            PullEvent::BlobFetched { digest, size } => {
                if let Ok(mut bars) = self.bars.lock()
                    && let Some(bar) = bars.remove(digest)
                {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                self.line(format!(
                    "{:19} fetched ({})",
                    digest.short(),
                    HumanBytes(size)
                ));
            }
            _ => {}
        }
    }
}
