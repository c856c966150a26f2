//! The Dockerfile rules: what each one looks for, and the static catalogue `rsafe rules` lists.
//!
//! Rules read the parsed file through [`super::stages`] (stage, scope, shipped or not) and
//! [`super::flow`] (which context files land where), and `RUN` commands through
//! [`super::shell`], so they judge what the build will do rather than how the text looks.

use crate::audit::context::dockerignore::Matcher;
use crate::audit::dockerfile::finding;
use crate::audit::{Evidence, Finding, Location, Rule, Severity};

use super::base::BaseImages;
use super::flow::{ContextView, Placed, is_remote};
use super::names::{is_literal_secret_value, is_secret_file_name, is_secret_name, is_secret_path};
use super::parse::{Command, Dockerfile, Instruction, KeyValue, Kind};
use super::shell::{self, Script, effective};
use super::stages::{Analysis, Base, Step, is_root_user};
use super::words::expand;

pub const USER_ROOT: Rule = Rule {
    id: "dockerfile.user-root",
    severity: Severity::High,
    title: "Final stage runs as root",
    description: "The image's last stage sets no USER (or sets root/0), so its processes run as uid 0. A compromise of the application is then root in the container: it can rewrite the application, read every file, and use any capability the runtime grants to escape.",
    remediation: "Create an unprivileged user and switch to it at the end of the final stage: `RUN useradd -r -u 10001 app` then `USER 10001` (or use a base image that runs as non-root, such as a distroless `:nonroot` tag).",
};

pub const SECRET_IN_ENV: Rule = Rule {
    id: "dockerfile.secret-in-env",
    severity: Severity::High,
    title: "Secret in ENV",
    description: "An ENV whose name says it is a secret (password, token, key) is given a literal value or a build argument. ENV values are stored in the image config: anyone who can pull the image reads them with `docker inspect`, and every container gets them in its environment.",
    remediation: "Do not bake secrets into the image. Pass them at run time (`docker run --env-file`, orchestrator secrets, a `*_FILE` variable pointing at a mounted secret), or for build-time needs use `RUN --mount=type=secret`.",
};

pub const SECRET_ARG_DEFAULT: Rule = Rule {
    id: "dockerfile.secret-arg-default",
    severity: Severity::High,
    title: "Secret as a build argument default",
    description: "A build argument whose name says it is a secret has a literal default in the Dockerfile. The value is in the source tree, and every RUN in its stage records it in the image history (`docker history` shows `|1 TOKEN=…`).",
    remediation: "Remove the default and pass the secret with `docker build --secret id=…` and `RUN --mount=type=secret,id=…`, which never stores it in a layer or in the history.",
};

pub const SECRET_BUILD_ARG: Rule = Rule {
    id: "dockerfile.secret-build-arg",
    severity: Severity::Medium,
    title: "Secret passed as a build argument",
    description: "A build argument whose name says it is a secret is in scope of a RUN. Build arguments used by RUN are recorded in the image history (`|1 NPM_TOKEN=… /bin/sh -c npm ci`) and in the build cache, so whoever gets the image or the cache gets the secret.",
    remediation: "Use a build secret instead: `RUN --mount=type=secret,id=npm_token,env=NPM_TOKEN npm ci` (or `target=/root/.npmrc`) with `docker build --secret id=npm_token,env=NPM_TOKEN`.",
};

pub const ADD_REMOTE_URL: Rule = Rule {
    id: "dockerfile.add-remote-url",
    severity: Severity::Medium,
    title: "ADD downloads from a URL",
    description: "ADD fetches a remote URL at build time without verifying what it got: a compromised or changed server puts arbitrary content into the image, and the download cannot be checked before it is used.",
    remediation: "Pin the content: `ADD --checksum=sha256:<digest> <url> <dest>`, or download with curl in a RUN step and verify a checksum or signature before using the file.",
};

pub const CURL_PIPE_SHELL: Rule = Rule {
    id: "dockerfile.curl-pipe-shell",
    severity: Severity::High,
    title: "Downloaded script piped into a shell",
    description: "A RUN step downloads a script and executes it in one go (`curl … | sh`, `bash <(wget …)`, `sh -c \"$(curl …)\"`). Whatever the server returns at build time runs as root in the build, with no integrity check and no record of what ran. In CMD or ENTRYPOINT it happens at every container start.",
    remediation: "Download to a file, verify it against a pinned checksum or signature (`echo \"<sha256>  install.sh\" | sha256sum -c -`), then run it; better, install a pinned package or copy a vetted artifact.",
};

pub const COPY_CONTEXT_NO_DOCKERIGNORE: Rule = Rule {
    id: "dockerfile.copy-context-no-dockerignore",
    severity: Severity::Medium,
    title: "Whole build context copied with no .dockerignore",
    description: "`COPY . .` (or `ADD .`) copies everything in the build context into the image, and there is no .dockerignore to keep out the `.git` history, `.env` files, private keys and local credentials that sit in most working trees.",
    remediation: "Add a .dockerignore that excludes at least `.git`, `.env*`, `*.pem`, `*.key`, `id_*`, credentials and build outputs — or better, list what to include (`*` then `!src`, `!package.json`) — or copy only the paths the image needs.",
};

pub const DOCKERIGNORE_INCOMPLETE: Rule = Rule {
    id: "dockerfile.dockerignore-incomplete",
    severity: Severity::Medium,
    title: ".dockerignore lets secrets into a whole-context COPY",
    description: "The Dockerfile copies the whole build context and the .dockerignore does not exclude the usual secret carriers (`.git`, `.env`, private keys), so they are copied into the image whenever they are present in the working tree.",
    remediation: "Exclude them in .dockerignore (`.git`, `**/.env*`, `**/*.pem`, `**/*.key`, `**/id_*`), or switch to an allowlist (`*` followed by `!` exceptions for what the build needs).",
};

pub const CHMOD_WORLD_WRITABLE: Rule = Rule {
    id: "dockerfile.chmod-world-writable",
    severity: Severity::Medium,
    title: "World-writable permissions",
    description: "A chmod (or COPY/ADD --chmod) makes files or directories writable by every user (`777`, `o+w`, `a+w`). Any process in the container, whatever its uid, can then replace code or configuration that others execute.",
    remediation: "Give ownership to the user that needs to write (`COPY --chown=app:app`, `chown`) and use `755`/`644` (or `750`/`640`). For shared scratch directories set the sticky bit (`1777`).",
};

pub const CHMOD_SETUID: Rule = Rule {
    id: "dockerfile.chmod-setuid",
    severity: Severity::Medium,
    title: "setuid/setgid bit set",
    description: "A chmod (or --chmod) sets the setuid or setgid bit (`+s`, `4755`, `2755`). A setuid-root binary is a privilege escalation path for any process in the container that can run it.",
    remediation: "Do not add setuid/setgid binaries; grant a specific capability to the program instead, or run the container with `no-new-privileges` so the bit is ignored.",
};

pub const SUDO: Rule = Rule {
    id: "dockerfile.sudo",
    severity: Severity::Medium,
    title: "sudo in the image",
    description: "The build runs or installs sudo. Build steps already run as the stage's USER; sudo in an image gives any process that can reach it a path back to root and hides which steps need privileges.",
    remediation: "Run the privileged steps before switching USER (or switch `USER root` for those steps only) and do not install sudo in the image.",
};

pub const EXPOSE_SSH: Rule = Rule {
    id: "dockerfile.expose-ssh",
    severity: Severity::Medium,
    title: "SSH port exposed",
    description: "The image exposes port 22, which means an SSH daemon in the container: another credential store, another network-facing daemon running as root, and a way around the runtime's exec/audit controls.",
    remediation: "Remove the SSH server; use `docker exec` / `kubectl exec` for debugging access.",
};

pub const FROM_UNPINNED: Rule = Rule {
    id: "dockerfile.from-unpinned",
    severity: Severity::Medium,
    title: "Base image not pinned",
    description: "A stage is built FROM an image with no tag or the `latest` tag and no digest. Each build may pull a different image: builds are not reproducible and a compromised or broken upstream push flows straight into the image.",
    remediation: "Pin a specific version tag, and for supply-chain integrity a digest: `FROM node:20.11-bookworm@sha256:<digest>`.",
};

pub const SECRET_FILE_IN_IMAGE: Rule = Rule {
    id: "dockerfile.secret-file-in-image",
    severity: Severity::Critical,
    title: "Secret file copied into the image",
    description: "A file whose name marks it as a credential (private key, `.env`, `.npmrc`, cloud credentials, a `secrets/` directory) is copied into the final image, directly or through `COPY --from` of a build stage. Anyone who can pull the image can extract it from its layer, even if a later step deletes it.",
    remediation: "Keep credentials out of the image: exclude them in .dockerignore, use `RUN --mount=type=secret` for build-time use, and mount them at run time. Rotate any credential that was already pushed in an image.",
};

pub const SECRET_FILE_IN_BUILD_STAGE: Rule = Rule {
    id: "dockerfile.secret-file-in-build-stage",
    severity: Severity::Medium,
    title: "Secret file copied into a build stage",
    description: "A credential file is copied into a build stage that is not shipped. It is not in the final image, but it is in that stage's layer: in the build cache, in any `--cache-to` export, and in the image when someone builds with `--target` that stage.",
    remediation: "Use `RUN --mount=type=secret,id=…,target=<path>` for the step that needs it; it is then never written to a layer.",
};

pub const SECRET_MOUNT_PERSISTED: Rule = Rule {
    id: "dockerfile.secret-mount-persisted",
    severity: Severity::High,
    title: "Build secret copied into a layer",
    description: "A RUN step mounts a build secret (`--mount=type=secret`) — the right way — but then copies it into the filesystem, which writes it into the layer and undoes the protection.",
    remediation: "Use the secret where it is mounted (point the tool at the mount `target=` or use `env=`), and do not copy it elsewhere.",
};

pub const VERIFICATION_DISABLED: Rule = Rule {
    id: "dockerfile.verification-disabled",
    severity: Severity::Medium,
    title: "Download verification disabled",
    description: "A build step turns off TLS certificate or package signature checks (`curl -k`, `wget --no-check-certificate`, `pip --trusted-host`, `npm strict-ssl false`, `git http.sslVerify=false`, `apk --allow-untrusted`, `apt --allow-unauthenticated`, `--nogpgcheck`, `NODE_TLS_REJECT_UNAUTHORIZED=0`…). Anyone on the network path (or a compromised mirror) can then substitute what the build installs.",
    remediation: "Keep verification on. Install the CA certificate the build needs (`COPY corp-ca.crt /usr/local/share/ca-certificates/` and `update-ca-certificates`) or import the repository's signing key, instead of disabling checks.",
};

pub const PASSWORD_SET: Rule = Rule {
    id: "dockerfile.password-set",
    severity: Severity::High,
    title: "Password set in the image",
    description: "A build step sets a login password (`chpasswd`, `echo … | passwd`, `usermod -p`/`useradd -p` with a hash) or deletes one (`passwd -d`). The password, or a hash that can be cracked offline, is written into the Dockerfile, the build history and `/etc/shadow` of every container made from the image, the same for all of them; an empty password lets `su` and any login service in without one.",
    remediation: "Do not give image accounts passwords: create them locked (`useradd -r`, `adduser -D`), switch with `USER`, and inject credentials for services at run time (secrets, `*_FILE` variables).",
};

pub const COPY_WHOLE_STAGE: Rule = Rule {
    id: "dockerfile.copy-whole-stage",
    severity: Severity::Medium,
    title: "Whole filesystem of another stage copied",
    description: "`COPY --from=<stage> / /` copies everything in the build stage into the shipped image: compilers and package caches, and whatever credentials, `.npmrc` files, SSH keys or tokens the build stage fetched or wrote. It undoes what the multi-stage build was for.",
    remediation: "Copy only the artifacts the image runs: `COPY --from=build /app/dist /app`, or install into a dedicated prefix (`/out`) in the build stage and copy that.",
};

pub const ADD_LOCAL_ARCHIVE: Rule = Rule {
    id: "dockerfile.add-local-archive",
    severity: Severity::Low,
    title: "ADD extracts a local archive",
    description: "ADD of a local tar archive (`.tar`, `.tar.gz`, `.tgz`, `.tar.xz`, `.tar.bz2`, `.tar.zst`) unpacks it into the image. What lands there — setuid files, ownership, files over existing ones — is decided by the archive, which a review of the Dockerfile does not see.",
    remediation: "Check the archive into review (or build it in a stage from source), or `COPY` it and extract it in a `RUN` with `tar --no-same-owner --no-same-permissions`, listing what it may write.",
};

/// Every Dockerfile rule, for `rsafe rules`.
pub const RULES: &[Rule] = &[
    USER_ROOT,
    SECRET_IN_ENV,
    SECRET_ARG_DEFAULT,
    SECRET_BUILD_ARG,
    ADD_REMOTE_URL,
    CURL_PIPE_SHELL,
    COPY_CONTEXT_NO_DOCKERIGNORE,
    DOCKERIGNORE_INCOMPLETE,
    CHMOD_WORLD_WRITABLE,
    CHMOD_SETUID,
    SUDO,
    EXPOSE_SSH,
    FROM_UNPINNED,
    SECRET_FILE_IN_IMAGE,
    SECRET_FILE_IN_BUILD_STAGE,
    SECRET_MOUNT_PERSISTED,
    VERIFICATION_DISABLED,
    PASSWORD_SET,
    COPY_WHOLE_STAGE,
    ADD_LOCAL_ARCHIVE,
];

/// The `.dockerignore` that applies to the Dockerfile's build context.
#[derive(Debug, Clone)]
pub enum IgnoreFile {
    /// No `.dockerignore` (nor `<Dockerfile>.dockerignore`) in the context.
    Missing,
    /// No context known: a Dockerfile read from standard input (`docker build -` has none).
    NoContext,
    /// The file's display path and its compiled patterns.
    Present { path: String, matcher: Matcher },
}

/// What the rules know besides the Dockerfile.
pub struct RuleContext<'a> {
    /// The Dockerfile's path as findings show it.
    pub path: &'a str,
    /// The Dockerfile's lines, to point at the exact line of a key in a continued instruction.
    pub lines: Vec<&'a str>,
    pub ignore: &'a IgnoreFile,
    /// Base images' users, where known.
    pub base: &'a dyn BaseImages,
    /// The tool the entrypoint uses to drop root at start (`gosu`, `su-exec`…), if any.
    pub drops_root: Option<&'static str>,
    /// The build context, to tell a certificate named `server.pem` from a private key.
    pub context: &'a dyn ContextView,
}

impl RuleContext<'_> {
    fn at(&self, ins: &Instruction) -> Location {
        self.at_line(ins.line, Some(ins.column))
    }

    /// Where `key` (an `ENV`/`ARG` name) is written in the instruction: the physical line and
    /// column of `key=` or `key ` (continued instructions span several lines).
    fn at_key(&self, ins: &Instruction, key: &str) -> Location {
        let first = ins.line.saturating_sub(1) as usize;
        let last = (ins.end_line as usize).min(self.lines.len());
        for (i, line) in self.lines.iter().enumerate().take(last).skip(first) {
            let mut from = 0;
            while let Some(pos) = line[from..].find(key) {
                let start = from + pos;
                let end = start + key.len();
                let before_ok = line[..start]
                    .chars()
                    .next_back()
                    .is_none_or(|c| c.is_whitespace() || c == '"' || c == '\'');
                let after_ok = line[end..]
                    .chars()
                    .next()
                    .is_none_or(|c| c == '=' || c.is_whitespace() || c == '"' || c == '\'');
                if before_ok && after_ok {
                    let column = line[..start].chars().count() as u32 + 1;
                    return self.at_line(i as u32 + 1, Some(column));
                }
                from = end;
            }
        }
        self.at(ins)
    }

    fn at_line(&self, line: u32, column: Option<u32>) -> Location {
        Location::File {
            path: self.path.to_string(),
            line: Some(line),
            column,
        }
    }
}

/// Runs every Dockerfile rule.
pub fn check(
    df: &Dockerfile,
    a: &Analysis,
    placed: &[Vec<Placed>],
    ctx: &RuleContext,
) -> Vec<Finding> {
    let mut out = Vec::new();
    user_root(df, a, ctx, &mut out);
    from_unpinned(df, a, ctx, &mut out);
    for (idx, ins) in df.instructions.iter().enumerate() {
        let step = &a.steps[idx];
        let shipped = step.stage.is_some_and(|s| a.shipped[s]);
        let here = Here {
            df,
            ins,
            step,
            shipped,
            prefix: "",
            ctx,
        };
        instruction_rules(&here, &mut out);
        if let Kind::Onbuild(inner) = &ins.kind {
            let trigger = Here {
                ins: inner,
                prefix: "ONBUILD trigger: ",
                ..here
            };
            instruction_rules(&trigger, &mut out);
        }
        arg_rules(df, a, idx, ins, ctx, &mut out);
    }
    secret_files(df, a, placed, ctx, &mut out);
    out
}

fn user_root(df: &Dockerfile, a: &Analysis, ctx: &RuleContext, out: &mut Vec<Finding>) {
    let last = a.final_stage();
    if let Some(user) = &last.user {
        let v = &user.value;
        if is_root_user(&v.text) {
            let title = if v.unresolved {
                format!(
                    "Final stage runs as root unless a build argument overrides USER ({})",
                    v.text
                )
            } else {
                format!("Final stage runs as root (USER {})", v.text)
            };
            out.push(finding(
                &USER_ROOT,
                title,
                ctx.at_line(user.line, None),
                Some(Evidence::plain(format!("USER {}", v.text))),
            ));
        }
        return;
    }
    // No USER anywhere in the final stage's chain: the base image decides.
    let mut root = last;
    while let Base::Stage(b) = root.base {
        root = &a.stages[b];
    }
    let from = &df.instructions[root.from];
    let (title, severity) = match &root.base {
        Base::Scratch => (
            "Final stage runs as root: FROM scratch with no USER".to_string(),
            Severity::High,
        ),
        Base::Image(image) => match base_image_user(image, &root.image, ctx) {
            Some(found) => found,
            None => return,
        },
        Base::Stage(_) => return,
    };
    let inherited = match &root.base {
        Base::Image(image) if !sets_own_entrypoint(df, a) => {
            super::base::official_entrypoint_drops_root(image)
        }
        _ => None,
    };
    let (title, severity) = match (ctx.drops_root, inherited) {
        (Some(tool), _) if severity == Severity::High => (
            format!("{title}; the entrypoint drops to an unprivileged user with {tool}"),
            Severity::Low,
        ),
        (None, Some(tool)) if severity == Severity::High => (
            format!("{title}; the base image's entrypoint drops to the service's user with {tool}"),
            Severity::Low,
        ),
        _ => (title, severity),
    };
    let mut f = finding(&USER_ROOT, title, ctx.at(from), None);
    f.severity = severity;
    out.push(f);
}

/// Whether the final stage (or a stage it is built on) replaces the base image's entrypoint
/// with one of its own (not the official `docker-entrypoint.sh`).
fn sets_own_entrypoint(df: &Dockerfile, a: &Analysis) -> bool {
    let mut stage = a.final_stage();
    loop {
        let own = df.instructions[stage.from..stage.end].iter().any(|ins| {
            matches!(&ins.kind, Kind::Entrypoint(c) if !match c {
                Command::Exec(argv) => argv.iter().any(|w| w.contains("docker-entrypoint")),
                Command::Shell(s) => s.contains("docker-entrypoint"),
            })
        });
        if own {
            return true;
        }
        match stage.base {
            Base::Stage(b) => stage = &a.stages[b],
            _ => return false,
        }
    }
}

/// What the base image says about the final stage's user, when it sets none itself: root
/// (high), unknown (low), or `None` for an image that runs as an unprivileged user.
fn base_image_user(
    image: &str,
    expanded: &super::words::Expanded,
    ctx: &RuleContext,
) -> Option<(String, Severity)> {
    if expanded.unresolved || image.is_empty() {
        let args = expanded
            .used
            .iter()
            .map(|u| format!("${{{u}}}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Some((
            format!(
                "Final stage sets no USER and its base image comes from build argument {args} (no default): who it runs as is unknown"
            ),
            Severity::Low,
        ));
    }
    let lower = image.to_ascii_lowercase();
    if lower.contains("nonroot") || lower.contains("rootless") {
        return None;
    }
    match ctx.base.user(image) {
        Some(user) if user.is_empty() || is_root_user(&user) => Some((
            format!(
                "Final stage runs as root: base image {image} sets no non-root USER (read from the local image store)"
            ),
            Severity::High,
        )),
        Some(_) => None,
        None if super::base::official_runs_as_root(image) => Some((
            format!(
                "Final stage runs as root: it sets no USER and base image {image} (an official image) runs as root"
            ),
            Severity::High,
        )),
        None => Some((
            format!(
                "Final stage sets no USER: it runs as whatever user {image} sets (not in the local image store: unknown)"
            ),
            Severity::Low,
        )),
    }
}

fn from_unpinned(df: &Dockerfile, a: &Analysis, ctx: &RuleContext, out: &mut Vec<Finding>) {
    for stage in &a.stages {
        let Base::Image(image) = &stage.base else {
            continue;
        };
        // A build argument without a default decides the reference: pinned at build time.
        if stage.image.unresolved || image.is_empty() || image.contains('@') {
            continue;
        }
        let last_component = image.rsplit('/').next().unwrap_or(image);
        let tag = last_component.split_once(':').map(|(_, t)| t);
        let problem = match tag {
            None => "no tag (means latest)",
            Some("latest") => "the latest tag",
            Some(_) => continue,
        };
        let ins = &df.instructions[stage.from];
        out.push(finding(
            &FROM_UNPINNED,
            format!("Base image {image} is not pinned: {problem} and no digest"),
            ctx.at(ins),
            Some(Evidence::plain(format!("FROM {image}"))),
        ));
    }
}

/// One instruction under review: the build's state at that step, whether its stage is
/// shipped, and the title prefix (an `ONBUILD` trigger says so).
#[derive(Clone, Copy)]
struct Here<'a> {
    df: &'a Dockerfile,
    ins: &'a Instruction,
    step: &'a Step,
    shipped: bool,
    prefix: &'a str,
    ctx: &'a RuleContext<'a>,
}

/// Rules that look at one instruction (also applied to `ONBUILD` triggers).
fn instruction_rules(here: &Here, out: &mut Vec<Finding>) {
    let Here {
        df,
        ins,
        step,
        prefix,
        ctx,
        ..
    } = *here;
    match &ins.kind {
        Kind::Env(pairs) => {
            for kv in pairs {
                env_rules(here, kv, out);
            }
        }
        Kind::Add(spec) => {
            for src in &spec.sources {
                let s = expand(src, &step.vars, df.escape).text;
                add_source_rules(ins, &s, &spec.dest, prefix, ctx, out);
            }
            copy_rules(here, out);
        }
        Kind::Copy(_) => copy_rules(here, out),
        Kind::Run(command) => {
            for script in run_scripts(ins, command) {
                script_rules(&script, ins, prefix, ctx, out);
            }
            secret_mount_persisted(ins, command, prefix, ctx, out);
        }
        // What the container runs at start: `CMD curl … | sh` fetches code on every start.
        Kind::Cmd(command) | Kind::Entrypoint(command) => {
            for script in run_scripts(ins, command) {
                script_rules(&script, ins, prefix, ctx, out);
            }
        }
        Kind::Expose(ports) => {
            for p in ports {
                let port = expand(p, &step.vars, df.escape).text;
                if matches!(port.to_ascii_lowercase().as_str(), "22" | "22/tcp") {
                    out.push(finding(
                        &EXPOSE_SSH,
                        format!("{prefix}EXPOSE {port}: SSH port exposed"),
                        ctx.at(ins),
                        Some(Evidence::plain(format!("EXPOSE {port}"))),
                    ));
                }
            }
        }
        _ => {}
    }
}

/// One `ENV KEY=VALUE`: a switch that turns verification off, a literal secret, or a build
/// argument copied into the image config (where `docker history` and `inspect` show it).
fn env_rules(here: &Here, kv: &KeyValue, out: &mut Vec<Finding>) {
    let Here {
        df,
        ins,
        step,
        shipped,
        prefix,
        ctx,
    } = *here;
    let e = expand(&kv.value, &step.vars, df.escape);
    let value = &e.text;
    if let Some(what) = env_disables_verification(&kv.key, value) {
        out.push(finding(
            &VERIFICATION_DISABLED,
            format!("{prefix}ENV {}={value} {what}", kv.key),
            ctx.at_key(ins, &kv.key),
            Some(Evidence::plain(format!("{}={value}", kv.key))),
        ));
    }
    if !is_secret_name(&kv.key) {
        return;
    }
    let from_arg = e
        .used
        .iter()
        .find(|u| step.args.iter().any(|a| &a.name == *u));
    let title = match from_arg {
        Some(arg) => format!(
            "{prefix}ENV {} copies build argument {arg} into the image config",
            kv.key
        ),
        None if e.used.is_empty() && is_literal_secret_value(value) => {
            format!("{prefix}Secret in ENV {}", kv.key)
        }
        None => return,
    };
    let title = if shipped {
        title
    } else {
        format!(
            "{title} (build stage: not in the final image, but in this stage's config and cache)"
        )
    };
    let evidence = (!value.is_empty()).then(|| Evidence::secret(value));
    out.push(finding(
        &SECRET_IN_ENV,
        title,
        ctx.at_key(ins, &kv.key),
        evidence,
    ));
}

/// One `ADD` source (expanded): a local archive it unpacks, or a download with no checksum.
fn add_source_rules(
    ins: &Instruction,
    src: &str,
    dest: &str,
    prefix: &str,
    ctx: &RuleContext,
    out: &mut Vec<Finding>,
) {
    if !is_remote(src) && is_tar_archive(src) && ins.flag("from").is_none() {
        out.push(finding(
            &ADD_LOCAL_ARCHIVE,
            format!("{prefix}ADD extracts local archive {src} into {dest}"),
            ctx.at(ins),
            Some(Evidence::plain(format!("ADD {src}"))),
        ));
    }
    if is_remote(src) && ins.flag("checksum").is_none() {
        out.push(finding(
            &ADD_REMOTE_URL,
            format!("{prefix}ADD downloads {src} without --checksum"),
            ctx.at(ins),
            Some(Evidence::plain(redact_url(src))),
        ));
    }
}

/// Whether ADD would unpack a local file: a tar archive, plain or compressed the ways the builder
/// detects (gzip, bzip2, xz, zstd).
fn is_tar_archive(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [
        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar.zst",
        ".tzst",
    ]
    .iter()
    .any(|ext| lower.ends_with(ext))
}

/// A URL with any userinfo replaced, for evidence.
fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && !userinfo.contains('/')
    {
        return format!("{scheme}://…@{host}");
    }
    url.to_string()
}

/// `COPY`/`ADD`: its `--chmod`, a whole stage copied with `--from`, or the whole context
/// copied past an incomplete `.dockerignore`.
fn copy_rules(here: &Here, out: &mut Vec<Finding>) {
    let Here {
        df,
        ins,
        step,
        shipped,
        prefix,
        ctx,
    } = *here;
    let (Kind::Copy(spec) | Kind::Add(spec)) = &ins.kind else {
        return;
    };
    if let Some(mode) = ins.flag("chmod") {
        chmod_rules(ins, mode, prefix, ctx, out);
    }
    if let Some(from) = ins.flag("from") {
        let whole = spec.sources.iter().any(|src| {
            let e = expand(src, &step.vars, df.escape).text;
            crate::audit::context::dockerignore::clean(&format!("/{e}")) == "/"
        });
        if whole && shipped {
            let from = expand(from, &step.vars, df.escape).text;
            out.push(finding(
                &COPY_WHOLE_STAGE,
                format!(
                    "{prefix}COPY --from={from} / copies the whole filesystem of {from} into the final image"
                ),
                ctx.at(ins),
                Some(Evidence::plain(format!("COPY --from={from} / {}", spec.dest))),
            ));
        }
        return;
    }
    let whole_context = spec.sources.iter().any(|s| {
        let e = expand(s, &step.vars, df.escape).text;
        matches!(e.trim_end_matches('/'), "." | "" | "*" | "./*" | "./.")
    });
    if whole_context {
        whole_context_rules(ins, prefix, ctx, out);
    }
}

/// `--chmod` that makes files world-writable or setuid/setgid.
fn chmod_rules(
    ins: &Instruction,
    mode: &str,
    prefix: &str,
    ctx: &RuleContext,
    out: &mut Vec<Finding>,
) {
    let m = chmod_mode(mode);
    if m.world_writable {
        out.push(finding(
            &CHMOD_WORLD_WRITABLE,
            format!(
                "{prefix}{} --chmod={mode} makes files world-writable",
                ins.kind.keyword()
            ),
            ctx.at(ins),
            Some(Evidence::plain(format!("--chmod={mode}"))),
        ));
    }
    if m.setuid {
        out.push(finding(
            &CHMOD_SETUID,
            format!(
                "{prefix}{} --chmod={mode} sets setuid/setgid",
                ins.kind.keyword()
            ),
            ctx.at(ins),
            Some(Evidence::plain(format!("--chmod={mode}"))),
        ));
    }
}

/// The whole context copied: without a `.dockerignore`, or past one that does not exclude the
/// usual credential files.
fn whole_context_rules(ins: &Instruction, prefix: &str, ctx: &RuleContext, out: &mut Vec<Finding>) {
    match ctx.ignore {
        IgnoreFile::NoContext => {}
        IgnoreFile::Missing => out.push(finding(
            &COPY_CONTEXT_NO_DOCKERIGNORE,
            format!(
                "{prefix}{} copies the whole build context and there is no .dockerignore",
                ins.kind.keyword()
            ),
            ctx.at(ins),
            None,
        )),
        IgnoreFile::Present { path, matcher } => {
            let name = std::path::Path::new(path)
                .file_name()
                .map_or_else(|| path.clone(), |n| n.to_string_lossy().into_owned());
            let probes: &[(&str, &str)] = &[
                (".git/config", ".git"),
                (".env", ".env"),
                ("id_rsa", "id_rsa"),
                ("server.key", "*.key"),
                ("server.pem", "*.pem"),
            ];
            let missing: Vec<&str> = probes
                .iter()
                .filter(|(probe, _)| !matcher.excludes(probe))
                .map(|(_, label)| *label)
                .collect();
            if !missing.is_empty() {
                out.push(finding(
                    &DOCKERIGNORE_INCOMPLETE,
                    format!(
                        "{prefix}{} copies the whole build context and {name} does not exclude {}",
                        ins.kind.keyword(),
                        missing.join(", ")
                    ),
                    ctx.at(ins),
                    Some(Evidence::plain(format!(
                        "not excluded: {}",
                        missing.join(", ")
                    ))),
                ));
            }
        }
    }
}

/// The shell scripts a RUN (or CMD/ENTRYPOINT) executes: its shell form, the script inside
/// `sh -c` in exec form, and heredoc bodies that a shell runs (`RUN <<EOF`, `RUN bash <<EOF`).
fn run_scripts(ins: &Instruction, command: &Command) -> Vec<Script> {
    const SHELLS: &[&str] = &["sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"];
    let mut scripts = Vec::new();
    match command {
        Command::Shell(s) => {
            scripts.push(shell::parse(s));
            let first = s.split_whitespace().next().unwrap_or("");
            let runs_heredoc = first.starts_with("<<")
                || first
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .starts_with("<<")
                || SHELLS.contains(&shell::basename(first));
            if runs_heredoc {
                for h in &ins.heredocs {
                    scripts.push(shell::parse(&h.content));
                }
            }
        }
        Command::Exec(argv) => {
            // `["sh", "-c", "…"]` runs a script; any other argv is one command.
            let cmd = shell::SimpleCommand::from_argv(argv);
            scripts.push(match shell::shell_code(&cmd) {
                Some(code) => shell::parse(&code.text),
                None => Script {
                    pipelines: vec![vec![cmd]],
                    ..Script::default()
                },
            });
        }
    }
    scripts
}

const DOWNLOADERS: &[&str] = &["curl", "wget", "fetch", "aria2c", "http", "https"];
const INTERPRETERS: &[&str] = &[
    "sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "fish", "python", "python2", "python3",
    "perl", "ruby", "node", "php", "pwsh",
];

fn is_downloader(cmd: &shell::SimpleCommand) -> bool {
    effective(cmd).is_some_and(|e| {
        DOWNLOADERS.contains(&e.program.as_str())
            || (e.program == "busybox" && e.args.first().is_some_and(|a| a == "wget"))
    })
}

/// An interpreter that runs the script it reads on stdin (not `python -c '…'` reading data,
/// not `bash install.sh` running a file).
fn runs_stdin_script(cmd: &shell::SimpleCommand) -> Option<String> {
    let e = effective(cmd)?;
    let name = e.program.as_str();
    let versioned = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if !INTERPRETERS.contains(&name) && !INTERPRETERS.contains(&versioned) {
        return None;
    }
    let inline_flags: &[char] = match versioned {
        "perl" | "ruby" | "node" | "php" => &['e', 'E', 'r', 'c'],
        "python" => &['c', 'm'],
        _ => &['c'],
    };
    for a in e.args {
        if a == "-s" || a == "-" || a == "/dev/stdin" {
            return Some(e.program.clone());
        }
        if a == "--eval" || a == "--command" {
            return None;
        }
        if let Some(cluster) = a.strip_prefix('-') {
            if !cluster.starts_with('-') && cluster.contains(inline_flags) {
                return None;
            }
            continue;
        }
        // The first operand is a script file: stdin is data for it.
        return None;
    }
    Some(e.program.clone())
}

/// The program that executes code a download produced, if any command does: `sh -c "$(curl …)"`,
/// `sudo bash <(wget …)`, `source <(curl …)`, `eval "$(curl …)"`, `x=$(curl …); eval "$x"`, or
/// `$(curl …)` as the command itself. Looked for in the script and every script inside it.
fn runs_downloaded_code(script: &Script) -> Option<String> {
    script
        .all_scripts()
        .into_iter()
        .find_map(runs_downloaded_here)
}

fn runs_downloaded_here(script: &Script) -> Option<String> {
    let downloads = |i: &usize| {
        script
            .substitutions
            .get(*i)
            .is_some_and(|s| s.all_commands().into_iter().any(is_downloader))
    };
    // Variables that hold downloaded text.
    let mut tainted: Vec<String> = Vec::new();
    for cmd in script.pipelines.iter().flatten() {
        let carries = |k: usize, tainted: &[String]| {
            cmd.subs_of(k).iter().any(downloads)
                || tainted.iter().any(|v| references(&cmd.words[k], v))
        };
        if let Some((runner, words)) = code_words(cmd)
            && words.into_iter().any(|k| carries(k, &tainted))
        {
            return Some(runner);
        }
        let declares = cmd.words.first().is_some_and(|w| {
            matches!(
                w.as_str(),
                "export" | "local" | "declare" | "typeset" | "readonly"
            )
        });
        for (k, w) in cmd.words.iter().enumerate() {
            let leading = cmd.words[..k]
                .iter()
                .all(|p| shell::assignment(p).is_some());
            if let Some((name, _)) = shell::assignment(w)
                && (leading || declares)
                && carries(k, &tainted)
            {
                tainted.push(name.to_string());
            }
        }
    }
    None
}

/// The words of a command that are executed as code, and what executes them: everything after
/// `eval`, an interpreter's script (`bash FILE`, `sh -c CODE`, `python3 -c CODE`), the file
/// `source`/`.` reads, `su -c CODE`, or the command name itself (`$(curl …)`).
fn code_words(cmd: &shell::SimpleCommand) -> Option<(String, Vec<usize>)> {
    let e = effective(cmd)?;
    if let Some(at) = e.eval_at {
        return Some(("eval".into(), (at + 1..cmd.words.len()).collect()));
    }
    if let Some(code) = shell::shell_code(cmd) {
        return Some((e.program.clone(), vec![code.word]));
    }
    let program = e.program.as_str();
    let versioned = program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let first_arg = e.start + 1;
    if matches!(program, "source" | ".") {
        return Some((program.into(), vec![first_arg]));
    }
    if INTERPRETERS.contains(&program) || INTERPRETERS.contains(&versioned) {
        let inline: &[char] = match versioned {
            "perl" | "ruby" | "node" | "php" => &['e', 'E', 'r'],
            _ => &['c'],
        };
        let mut k = 0;
        while k < e.args.len() {
            let a = e.args[k].as_str();
            match a.strip_prefix('-') {
                Some(cluster) if !cluster.is_empty() && !cluster.starts_with('-') => {
                    if cluster.contains(inline) {
                        return Some((program.into(), vec![first_arg + k + 1]));
                    }
                }
                Some(_) => {}
                None => return Some((program.into(), vec![first_arg + k])),
            }
            k += 1;
        }
        return None;
    }
    Some((program.into(), vec![e.start]))
}

/// Whether a word expands variable `name` (`$name`, `${name}`, `${name:-…}`).
fn references(word: &str, name: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut rest = word;
    while let Some(pos) = rest.find('$') {
        rest = &rest[pos + 1..];
        let body = rest.strip_prefix('{').unwrap_or(rest);
        if let Some(after) = body.strip_prefix(name)
            && !after.starts_with(ident)
        {
            return true;
        }
    }
    false
}

fn script_rules(
    script: &Script,
    ins: &Instruction,
    prefix: &str,
    ctx: &RuleContext,
    out: &mut Vec<Finding>,
) {
    let kw = ins.kind.keyword();
    // curl … | sh
    let mut piped = false;
    for pipeline in script.all_pipelines() {
        if let Some(d) = pipeline.iter().position(is_downloader)
            && let Some(interp) = pipeline[d + 1..].iter().find_map(runs_stdin_script)
        {
            let tool = effective(&pipeline[d])
                .map(|e| e.program)
                .unwrap_or_default();
            out.push(finding(
                &CURL_PIPE_SHELL,
                format!("{prefix}{kw} pipes a download ({tool}) into {interp}"),
                ctx.at(ins),
                Some(Evidence::plain(format!("{tool} … | {interp}"))),
            ));
            piped = true;
            break;
        }
    }
    // sh -c "$(curl …)", bash <(wget …), source <(curl …), eval "$(curl …)", x=$(curl …); eval $x
    if !piped && let Some(runner) = runs_downloaded_code(script) {
        out.push(finding(
            &CURL_PIPE_SHELL,
            format!("{prefix}{kw} executes a downloaded script with {runner}"),
            ctx.at(ins),
            Some(Evidence::plain(format!("{runner} …$(download)"))),
        ));
    }
    let removed = removed_paths(script);
    let mut sets_password = false;
    for pipeline in script.all_pipelines() {
        for (j, cmd) in pipeline.iter().enumerate() {
            let Some(e) = effective(cmd) else { continue };
            let say = |rule: &Rule, what: String, evidence: String| {
                finding(
                    rule,
                    format!("{prefix}{kw} {what}"),
                    ctx.at(ins),
                    Some(Evidence::plain(evidence)),
                )
            };
            for (name, value) in shell::env_assignments(cmd) {
                if let Some(what) = env_disables_verification(name, value) {
                    let what = format!("sets {name}={value}: {what}");
                    out.push(say(&VERIFICATION_DISABLED, what, format!("{name}={value}")));
                }
            }
            if let Some(what) = disables_verification(&e.program, e.args) {
                let evidence = format!("{} {}", e.program, e.args.join(" "));
                out.push(say(&VERIFICATION_DISABLED, what.into(), evidence));
            }
            if e.wrappers.iter().any(|w| w == "sudo") {
                let evidence = format!("sudo {}", e.program);
                out.push(say(&SUDO, "uses sudo".into(), evidence));
            } else if is_package_install(&e.program, e.args) && e.args.iter().any(|a| a == "sudo") {
                let evidence = format!("{} … sudo", e.program);
                out.push(say(&SUDO, "installs sudo into the image".into(), evidence));
            }
            if e.program == "chmod" {
                chmod_rule(e.args, &removed, &say, out);
            }
            if !sets_password && let Some((what, evidence)) = sets_a_password(&e, j > 0) {
                sets_password = true;
                out.push(say(&PASSWORD_SET, what, evidence));
            }
        }
    }
}

/// Options of chmod that are not the mode.
fn chmod_option(a: &str) -> bool {
    matches!(
        a,
        "-R" | "-v"
            | "-f"
            | "-c"
            | "--recursive"
            | "--verbose"
            | "--silent"
            | "--quiet"
            | "--changes"
            | "--preserve-root"
            | "--no-preserve-root"
            | "-Rf"
            | "-fR"
            | "-Rv"
            | "-vR"
    ) || a.starts_with("--reference")
}

/// `chmod 777 …` / `chmod u+s …`, unless every target is deleted by the same RUN (a scratch
/// directory made writable for one build step is gone from the layer).
fn chmod_rule(
    args: &[String],
    removed: &[String],
    say: &dyn Fn(&Rule, String, String) -> Finding,
    out: &mut Vec<Finding>,
) {
    let mut args = args.iter().filter(|a| !chmod_option(a));
    let Some(mode) = args.next() else { return };
    let targets: Vec<&str> = args.map(String::as_str).collect();
    if !targets.is_empty() && targets.iter().all(|t| is_removed(t, removed)) {
        return;
    }
    let m = chmod_mode(mode);
    let list = targets.join(" ");
    let evidence = format!("chmod {mode} {list}");
    if m.world_writable {
        let what = format!("chmod {mode} makes {list} world-writable");
        out.push(say(&CHMOD_WORLD_WRITABLE, what, evidence.clone()));
    }
    if m.setuid {
        let what = format!("chmod {mode} sets setuid/setgid on {list}");
        out.push(say(&CHMOD_SETUID, what, evidence));
    }
}

/// Paths the script deletes with `rm -r`/`rm -rf` (or `rm` of a file).
fn removed_paths(script: &Script) -> Vec<String> {
    let mut out = Vec::new();
    for cmd in script.all_commands() {
        let Some(e) = effective(cmd) else { continue };
        if e.program == "rm" || e.program == "rmdir" {
            out.extend(
                e.args
                    .iter()
                    .filter(|a| !a.starts_with('-'))
                    .map(|a| a.trim_end_matches('/').to_string()),
            );
        }
    }
    out
}

/// Whether `path` is deleted: named by an `rm`, or under a directory an `rm` deletes.
fn is_removed(path: &str, removed: &[String]) -> bool {
    let p = path.trim_end_matches('/');
    !p.is_empty()
        && removed
            .iter()
            .any(|r| !r.is_empty() && (p == r || p.starts_with(&format!("{r}/"))))
}

/// Whether a command sets a login password in the image (`chpasswd`, `echo … | passwd`,
/// `passwd -d`, `usermod -p`/`useradd -p` with a usable hash): the title and the evidence
/// (never the password). `fed` says the command reads a pipe.
fn sets_a_password(e: &shell::Effective, fed: bool) -> Option<(String, String)> {
    let has = |flags: &[&str]| e.args.iter().any(|a| flags.contains(&a.as_str()));
    match e.program.as_str() {
        "chpasswd" | "chgpasswd" => Some((
            format!("sets a password with {}", e.program),
            e.program.clone(),
        )),
        "passwd" if has(&["-d", "--delete"]) => Some((
            "deletes a password with passwd -d: the account logs in with none".into(),
            "passwd -d".into(),
        )),
        "passwd" if fed || has(&["--stdin"]) => Some((
            "sets a password by piping it into passwd".into(),
            "… | passwd".into(),
        )),
        "usermod" | "useradd" => {
            let value = e
                .args
                .iter()
                .enumerate()
                .find_map(|(k, a)| match a.as_str() {
                    "-p" | "--password" => e.args.get(k + 1).map(String::as_str),
                    _ => a.strip_prefix("--password="),
                })?;
            // `*`, `!…` and `x` lock the account: no password can log in.
            let locked = value.is_empty() || value == "*" || value == "x" || value.starts_with('!');
            (!locked).then(|| {
                (
                    format!("sets a password hash with {} -p", e.program),
                    format!("{} -p …", e.program),
                )
            })
        }
        _ => None,
    }
}

/// Values that turn a boolean setting off (`sslverify=0`, `strict-ssl false`).
fn is_off(value: &str) -> bool {
    matches!(
        value
            .trim_matches(|c| c == '"' || c == '\'')
            .to_ascii_lowercase()
            .as_str(),
        "0" | "false" | "no" | "off"
    )
}

/// Whether some argument sets `key` (case-insensitive, after any prefix such as `--setopt=*.`,
/// `repo_` or `Acquire::https::`) to an "off" value: `key=0`, `s/key=1/key=0/`, or `key` then
/// `false` as the next argument.
fn sets_off(args: &[String], key: &str) -> bool {
    args.iter().enumerate().any(|(k, a)| {
        let lower = a.to_ascii_lowercase();
        let mut from = 0;
        while let Some(pos) = lower[from..].find(key) {
            let start = from + pos;
            let end = start + key.len();
            from = end;
            if lower[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            {
                continue;
            }
            let rest = &lower[end..];
            let set_off = match rest.strip_prefix('=') {
                Some(v) => {
                    let value: String = v
                        .trim_start_matches(['"', '\'', ' '])
                        .chars()
                        .take_while(char::is_ascii_alphanumeric)
                        .collect();
                    is_off(&value)
                }
                None => rest.is_empty() && args.get(k + 1).is_some_and(|v| is_off(v)),
            };
            if set_off {
                return true;
            }
        }
        false
    })
}

/// What a command does to download verification, if it turns some off.
fn disables_verification(program: &str, args: &[String]) -> Option<&'static str> {
    let has = |flag: &str| {
        args.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    let lower: Vec<String> = args.iter().map(|a| a.to_ascii_lowercase()).collect();
    let mentions = |needle: &str| lower.iter().any(|a| a.contains(needle));
    // Repository definitions written by any command (`echo "deb [trusted=yes] …" > …`, a
    // deb822 `Trusted: yes`, a yum/dnf `.repo` with `gpgcheck=0`).
    // A `file:` repository built by the same step has no network path to tamper with.
    let remote_trusted = lower
        .iter()
        .any(|a| (a.contains("trusted=yes") || a.contains("trusted: yes")) && !a.contains("file:"));
    if remote_trusted {
        return Some("adds an apt repository marked trusted=yes (no signature check)");
    }
    if sets_off(args, "gpgcheck") {
        return Some("writes a package repository with gpgcheck off");
    }
    match program {
        "curl" => {
            let short_k = args
                .iter()
                .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('k'));
            (short_k || has("--insecure"))
                .then_some("runs curl without certificate checks (-k/--insecure)")
        }
        "wget" => has("--no-check-certificate").then_some("runs wget with --no-check-certificate"),
        "pip" | "pip3" | "pipx" | "uv" => has("--trusted-host")
            .then_some("trusts a package index without TLS verification (--trusted-host)"),
        "npm" | "yarn" | "pnpm" => npm_strict_ssl_off(args)
            .then_some("turns off npm's TLS verification (strict-ssl false)"),
        "git" => sets_off(args, "sslverify")
            .then_some("turns off git's TLS verification (http.sslVerify false)"),
        "apk" => {
            has("--allow-untrusted").then_some("installs unsigned packages (apk --allow-untrusted)")
        }
        "apt-get" | "apt" | "aptitude" => {
            if has("--allow-unauthenticated")
                || has("--allow-insecure-repositories")
                || has("--force-yes")
            {
                Some("installs unauthenticated packages")
            } else if sets_off(args, "verify-peer")
                || sets_off(args, "verify-host")
                || mentions("allowinsecurerepositories=true")
                || mentions("allowunauthenticated=true")
            {
                Some("turns off apt's verification (Acquire options)")
            } else {
                None
            }
        }
        "yum" | "dnf" | "dnf-3" | "microdnf" | "tdnf" | "yum-config-manager"
        | "dnf-config-manager" => (has("--nogpgcheck") || sets_off(args, "sslverify"))
            .then_some("installs packages without signature or TLS checks"),
        "zypper" => (has("--no-gpg-checks") || has("--no-gpgcheck"))
            .then_some("installs packages without signature checks"),
        "rpm" => (has("--nosignature")
            || has("--nodigest")
            || has("--noverify")
            || has("--nofiledigest"))
        .then_some("installs an rpm without checking its signature or digests"),
        _ => None,
    }
}

/// `npm config set strict-ssl false`, `npm set strict-ssl=false`, `--strict-ssl=false`,
/// `--no-strict-ssl`, `yarn config set strict-ssl false` / `enableStrictSsl false` — but not
/// `npm install strict-ssl false` (two package names).
fn npm_strict_ssl_off(args: &[String]) -> bool {
    let key = |a: &str| {
        let a = a.to_ascii_lowercase();
        a == "strict-ssl" || a == "enablestrictssl"
    };
    let flag = args.iter().enumerate().any(|(k, a)| {
        a == "--no-strict-ssl"
            || a.strip_prefix("--strict-ssl=").is_some_and(is_off)
            || (a == "--strict-ssl" && args.get(k + 1).is_some_and(|v| is_off(v)))
    });
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let setting = match words.as_slice() {
        ["config" | "c", "set", rest @ ..] | ["set", rest @ ..] => rest,
        _ => &[],
    };
    let set = match setting {
        [k, v, ..] if key(k) => is_off(v),
        [kv, ..] => kv.split_once('=').is_some_and(|(k, v)| key(k) && is_off(v)),
        _ => false,
    };
    flag || set
}

/// Environment variables that turn verification off for every later step and the running app.
fn env_disables_verification(key: &str, value: &str) -> Option<&'static str> {
    let v = value.trim().to_ascii_lowercase();
    let off = is_off(&v);
    let on = matches!(v.as_str(), "1" | "true" | "yes" | "on");
    match key.to_ascii_uppercase().as_str() {
        "NODE_TLS_REJECT_UNAUTHORIZED" if off => Some("turns off Node.js certificate checks"),
        "PYTHONHTTPSVERIFY" if off => Some("turns off Python's certificate checks"),
        // git turns verification off whenever the variable is set, whatever its value.
        "GIT_SSL_NO_VERIFY" => Some("turns off git's certificate checks (set to any value)"),
        "NPM_CONFIG_STRICT_SSL" | "YARN_STRICT_SSL" | "YARN_ENABLE_STRICT_SSL" if off => {
            Some("turns off npm's certificate checks")
        }
        "PIP_TRUSTED_HOST" | "UV_INSECURE_HOST" if !v.is_empty() => {
            Some("makes pip trust an index without TLS verification")
        }
        "CURL_INSECURE" | "WGET_NO_CHECK_CERTIFICATE" if on => Some("turns off certificate checks"),
        "GOINSECURE" if !v.is_empty() => Some("lets Go fetch modules without TLS verification"),
        "GOFLAGS" if v.contains("-insecure") => Some("turns off Go's TLS verification"),
        "GOSUMDB" if v == "off" => Some("turns off Go's module checksum database"),
        _ => None,
    }
}

fn is_package_install(program: &str, args: &[String]) -> bool {
    matches!(
        program,
        "apt-get" | "apt" | "yum" | "dnf" | "microdnf" | "tdnf" | "zypper" | "apk" | "pacman"
    ) && args
        .iter()
        .any(|a| matches!(a.as_str(), "install" | "add" | "in" | "-S"))
}

/// What a chmod mode grants.
#[derive(Debug, Default, PartialEq, Eq)]
struct ModeEffect {
    world_writable: bool,
    setuid: bool,
}

/// Reads a chmod mode, octal (`0777`, `4755`) or symbolic (`a+w`, `u+s,o-rwx`).
fn chmod_mode(mode: &str) -> ModeEffect {
    let mut m = ModeEffect::default();
    if !mode.is_empty() && mode.chars().all(|c| c.is_digit(8)) {
        let Ok(bits) = u32::from_str_radix(mode, 8) else {
            return m;
        };
        let sticky = bits & 0o1000 != 0;
        m.world_writable = bits & 0o002 != 0 && !sticky;
        // With the sticky bit the target is a directory, where setgid only makes new files
        // inherit its group (postgres's `chmod 3777 /var/run/postgresql`).
        m.setuid = bits & 0o4000 != 0 || (bits & 0o2000 != 0 && !sticky);
        return m;
    }
    for clause in mode.split(',') {
        let op_pos = clause.find(['+', '=', '-']);
        let Some(op_pos) = op_pos else { continue };
        let who = &clause[..op_pos];
        // Each clause may chain several operations: `u+x-w`.
        let mut rest = &clause[op_pos..];
        while let Some(op) = rest.chars().next() {
            let end = rest[1..]
                .find(['+', '=', '-'])
                .map_or(rest.len(), |p| p + 1);
            let perms = &rest[1..end];
            rest = &rest[end..];
            if op == '-' {
                continue;
            }
            let others = who.contains('o') || who.contains('a');
            if perms.contains('w') && others && !perms.contains('t') {
                m.world_writable = true;
            }
            if perms.contains('s')
                && (who.is_empty() || who.contains('u') || who.contains('g') || who.contains('a'))
            {
                m.setuid = true;
            }
        }
    }
    m
}

/// `RUN --mount=type=secret,…` followed by copying the mounted secret somewhere.
fn secret_mount_persisted(
    ins: &Instruction,
    command: &Command,
    prefix: &str,
    ctx: &RuleContext,
    out: &mut Vec<Finding>,
) {
    let Command::Shell(text) = command else {
        return;
    };
    for mount in ins.flags_named("mount") {
        let opts: Vec<(&str, &str)> = mount
            .split(',')
            .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
            .collect();
        let get = |k: &[&str]| {
            opts.iter()
                .find(|(key, _)| k.contains(key))
                .map(|(_, v)| *v)
        };
        if get(&["type"]) != Some("secret") {
            continue;
        }
        let target = match (get(&["target", "dst", "destination"]), get(&["id"])) {
            (Some(t), _) if !t.is_empty() => t.to_string(),
            (_, Some(id)) => format!("/run/secrets/{id}"),
            _ => continue,
        };
        let mut scripts = vec![shell::parse(text)];
        for h in &ins.heredocs {
            scripts.push(shell::parse(&h.content));
        }
        let copies = scripts.iter().any(|s| {
            s.all_commands().into_iter().any(|c| {
                effective(c).is_some_and(|e| {
                    matches!(
                        e.program.as_str(),
                        "cp" | "mv" | "install" | "rsync" | "tee" | "ln"
                    ) && e.args.iter().any(|a| a == &target)
                        && e.program != "ln"
                })
            })
        }) || redirects_from(text, &target);
        if copies {
            out.push(finding(
                &SECRET_MOUNT_PERSISTED,
                format!("{prefix}RUN copies the build secret mounted at {target} into the layer"),
                ctx.at(ins),
                Some(Evidence::plain(format!("--mount={mount}"))),
            ));
        }
    }
}

/// `cat /run/secrets/x > /somewhere` in the raw text.
fn redirects_from(text: &str, target: &str) -> bool {
    text.split(['&', ';', '|', '\n']).any(|part| {
        let p = part.trim();
        p.contains(target)
            && p.contains('>')
            && p.split_whitespace().next().is_some_and(|w| w == "cat")
    })
}

/// Secret-named build arguments: literal defaults, and values that reach RUN history.
fn arg_rules(
    df: &Dockerfile,
    a: &Analysis,
    idx: usize,
    ins: &Instruction,
    ctx: &RuleContext,
    out: &mut Vec<Finding>,
) {
    let Kind::Arg(decls) = &ins.kind else { return };
    let step = &a.steps[idx];
    for d in decls {
        arg_disables_verification(df, a, idx, ins, d, ctx, out);
        if !is_secret_name(&d.name) {
            continue;
        }
        if let Some(raw) = &d.default {
            let value = expand(raw, &step.vars, df.escape).text;
            if is_literal_secret_value(&value) {
                out.push(finding(
                    &SECRET_ARG_DEFAULT,
                    format!("Build argument {} has a secret default value", d.name),
                    ctx.at_key(ins, &d.name),
                    Some(Evidence::secret(&value)),
                ));
                continue;
            }
        }
        let Some(stage) = step.stage else {
            continue; // a global ARG reaches RUN only when a stage re-declares it
        };
        let s = &a.stages[stage];
        let run = df.instructions[idx + 1..s.end]
            .iter()
            .find(|i| matches!(i.kind, Kind::Run(_)));
        if let Some(run) = run {
            let where_ = if a.shipped[stage] {
                "the final image's history"
            } else {
                "the build stage's history and cache"
            };
            let title = format!(
                "Build argument {} is in scope of RUN at line {}: its value is recorded in {where_}",
                d.name, run.line
            );
            out.push(finding(
                &SECRET_BUILD_ARG,
                title,
                ctx.at_key(ins, &d.name),
                None,
            ));
        }
    }
}

/// `ARG NODE_TLS_REJECT_UNAUTHORIZED=0` in a stage: every later RUN of the stage gets it in its
/// environment (a global `ARG` counts where a stage brings it in with `ARG NAME`).
fn arg_disables_verification(
    df: &Dockerfile,
    a: &Analysis,
    idx: usize,
    ins: &Instruction,
    d: &super::parse::ArgDecl,
    ctx: &RuleContext,
    out: &mut Vec<Finding>,
) {
    if a.steps[idx].stage.is_none() {
        return;
    }
    let value = match &d.default {
        Some(raw) => expand(raw, &a.steps[idx].vars, df.escape).text,
        None => match a.global.get(&d.name) {
            Some(super::words::Value::Known(v)) => v.clone(),
            _ => return,
        },
    };
    if let Some(what) = env_disables_verification(&d.name, &value) {
        out.push(finding(
            &VERIFICATION_DISABLED,
            format!(
                "ARG {}={value} {what} in every later RUN of the stage",
                d.name
            ),
            ctx.at_key(ins, &d.name),
            Some(Evidence::plain(format!("{}={value}", d.name))),
        ));
    }
}

/// Credential files copied into the final image or a build stage (by name; the context audit
/// also looks inside files).
fn secret_files(
    df: &Dockerfile,
    a: &Analysis,
    placed: &[Vec<Placed>],
    ctx: &RuleContext,
    out: &mut Vec<Finding>,
) {
    let final_idx = a.stages.len() - 1;
    let mut reported: Vec<(u32, String)> = Vec::new();
    let is_secret = |p: &Placed| {
        (is_secret_path(&p.source) || (!p.tree && is_secret_path(&p.image_path)))
            && !ctx.context.holds_no_credential(&p.source)
    };
    for p in placed[final_idx].iter().filter(|p| is_secret(p)) {
        let key = (p.copy_line, p.source.clone());
        if reported.contains(&key) {
            continue;
        }
        reported.push(key);
        let how = if p.carried_by.is_empty() {
            String::new()
        } else {
            format!(
                " (copied into build stage at line {}, carried into the final image by COPY --from at line {})",
                p.copy_line,
                p.carried_by
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let line = p.carried_by.last().copied().unwrap_or(p.copy_line);
        out.push(finding(
            &SECRET_FILE_IN_IMAGE,
            format!(
                "{} is copied into the final image at {}{how}",
                p.source, p.image_path
            ),
            ctx.at_line(line, None),
            Some(Evidence::plain(p.source.clone())),
        ));
    }
    for (s, stage_placed) in placed.iter().enumerate() {
        if a.shipped[s] {
            continue;
        }
        for p in stage_placed
            .iter()
            .filter(|p| p.copy_stage == s && is_secret(p))
        {
            let key = (p.copy_line, p.source.clone());
            if reported.contains(&key) {
                continue;
            }
            reported.push(key);
            let name = a.stages[s].name.clone().unwrap_or_else(|| s.to_string());
            out.push(finding(
                &SECRET_FILE_IN_BUILD_STAGE,
                format!(
                    "{} is copied into build stage {name} at {} (not carried into the final image)",
                    p.source, p.image_path
                ),
                ctx.at_line(p.copy_line, None),
                Some(Evidence::plain(p.source.clone())),
            ));
        }
    }
    // `COPY <<EOF /root/.npmrc`: a credential file written inline.
    for (idx, ins) in df.instructions.iter().enumerate() {
        let (Kind::Copy(spec) | Kind::Add(spec)) = &ins.kind else {
            continue;
        };
        if !spec.sources.iter().any(|s| s.starts_with("<<")) || !is_secret_file_name(&spec.dest) {
            continue;
        }
        let Some(stage) = a.steps[idx].stage else {
            continue;
        };
        let rule = if a.shipped[stage] {
            &SECRET_FILE_IN_IMAGE
        } else {
            &SECRET_FILE_IN_BUILD_STAGE
        };
        out.push(finding(
            rule,
            format!(
                "A heredoc writes credential file {} into the image",
                spec.dest
            ),
            ctx.at(ins),
            Some(Evidence::plain(spec.dest.clone())),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_modes() {
        let w = |m: &str| chmod_mode(m).world_writable;
        let s = |m: &str| chmod_mode(m).setuid;
        assert!(
            w("777")
                && w("0777")
                && w("666")
                && w("a+w")
                && w("o+rw")
                && w("u+x,o+w")
                && w("a=rwx")
        );
        assert!(!w("1777") && !w("755") && !w("+w") && !w("o-w") && !w("u+w") && !w("a-w"));
        assert!(s("4755") && s("2755") && s("6755") && s("u+s") && s("+s") && s("g+s") && s("a+s"));
        assert!(!s("755") && !s("1777") && !s("u-s") && !s("o+s") && !s("3777"));
        assert!(s("6777") && s("4755"));
    }

    #[test]
    fn urls_lose_their_userinfo() {
        assert_eq!(redact_url("https://user:pw@host/x"), "https://…@host/x");
        assert_eq!(redact_url("https://host/a@b"), "https://host/a@b");
    }
    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn settings_turned_off() {
        assert!(sets_off(
            &argv("--setopt=*.sslverify=0 --save"),
            "sslverify"
        ));
        assert!(sets_off(
            &argv("config --global http.sslVerify false"),
            "sslverify"
        ));
        assert!(sets_off(
            &argv("-i s/gpgcheck=1/gpgcheck=0/ f.repo"),
            "gpgcheck"
        ));
        assert!(sets_off(&argv("repo_gpgcheck=no"), "gpgcheck"));
        assert!(!sets_off(&argv("gpgcheck=1 sslverify=true"), "gpgcheck"));
        assert!(!sets_off(
            &argv("--setopt=install_weak_deps=0"),
            "sslverify"
        ));
        assert!(!sets_off(&argv("nosslverify=0"), "sslverify"));
    }

    #[test]
    fn package_managers() {
        let off = |p: &str, a: &str| disables_verification(p, &argv(a)).is_some();
        assert!(off(
            "dnf-config-manager",
            "--save --setopt=something.sslverify=no"
        ));
        assert!(off(
            "yum-config-manager",
            "--setopt=\"epel.sslverify=0\" --save"
        ));
        assert!(off("rpm", "-ivh --nosignature x.rpm") && off("rpm", "-i --noverify x.rpm"));
        assert!(!off("yum-config-manager", "--save --setopt=sslverify=yes"));
        assert!(!off("yum-config-manager", "--disable sslverify"));
        assert!(!off("dnf", "install -y --setopt=install_weak_deps=False x"));
    }

    #[test]
    fn npm_strict_ssl() {
        assert!(npm_strict_ssl_off(&argv("config set strict-ssl false")));
        assert!(npm_strict_ssl_off(&argv("set strict-ssl=false -g")));
        assert!(npm_strict_ssl_off(&argv("ci --strict-ssl=false")));
        assert!(npm_strict_ssl_off(&argv("install --no-strict-ssl")));
        assert!(npm_strict_ssl_off(&argv(
            "config set enableStrictSsl false"
        )));
        assert!(!npm_strict_ssl_off(&argv("install strict-ssl false")));
        assert!(!npm_strict_ssl_off(&argv("config set strict-ssl true")));
        assert!(!npm_strict_ssl_off(&argv("config get strict-ssl")));
    }

    #[test]
    fn variable_references() {
        assert!(references("$x", "x") && references("\"${x}\"", "x"));
        assert!(references("${x:-a}", "x") && references("a$x/b", "x"));
        assert!(!references("$xy", "x") && !references("x", "x") && !references("$y", "x"));
    }
}
