//! Where files from the build context end up: which `COPY`/`ADD` put each one into which
//! stage, at which path, and whether a later `COPY --from=stage` carries it into the final image.
//!
//! Multi-stage builds are the usual answer to "don't ship the key you built with", and they are
//! only right when the final stage does not copy it back: `COPY --from=build /app /app` takes
//! `/app/.npmrc` along. This module follows files through stages so the rules can tell
//! "in the shipped image" from "only in a build stage's layer".
//!
//! The context can be seen two ways: as the real directory (every file that `.dockerignore` lets
//! through, see [`crate::audit::context`]) or, when auditing a Dockerfile alone, as the source
//! paths written in it ([`Textual`]).

use super::parse::{CopyArgs, Dockerfile, Instruction, Kind};
use super::stages::{Analysis, Base, Step, join_path, stage_instructions};
use super::words::expand;
use crate::audit::context::dockerignore::{Matcher, clean};
use crate::audit::context::gomatch::{go_match, has_wildcards};

/// What a `COPY`/`ADD` source names in the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// A regular file (context-relative path).
    File(String),
    /// A directory and the files under it that reach the builder (paths relative to it).
    Dir(String, Vec<String>),
    /// A path known only by name: a file, or a directory whose contents all come along.
    Unknown(String),
}

/// The build context as `COPY`/`ADD` see it.
pub trait ContextView {
    /// What a source path (variables expanded, relative to the context root) matches.
    fn resolve(&self, source: &str) -> Vec<Root>;

    /// Whether the context file at `source` is known to hold no credential, so that a
    /// credential-like name does not make it one: a symlink (`COPY` copies the link, not what
    /// it points to: `/etc/ssl/certs/*.pem`), or a file of public key material only (`ca.pem`,
    /// `repo.gpg.key`). False where nothing is known.
    fn holds_no_credential(&self, _source: &str) -> bool {
        false
    }
}

/// The context known only through the Dockerfile's own words: every source is [`Root::Unknown`].
pub struct Textual;

impl ContextView for Textual {
    fn resolve(&self, source: &str) -> Vec<Root> {
        vec![Root::Unknown(clean(source.trim_start_matches('/')))]
    }
}

/// A context file (or name) placed in a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Absolute path in the stage's filesystem.
    pub image_path: String,
    /// Whether everything under `image_path` came along (a name not resolved to a file).
    pub tree: bool,
    /// Context-relative path it came from.
    pub source: String,
    /// Line of the `COPY`/`ADD` that took it from the context.
    pub copy_line: u32,
    /// Stage that `COPY`/`ADD` is in.
    pub copy_stage: usize,
    /// Lines of the `COPY --from=` instructions that carried it on, in order.
    pub carried_by: Vec<u32>,
}

/// Per stage, every context file placed in it (inherited from a base stage, copied from the
/// context, or carried over with `COPY --from`).
pub fn trace(df: &Dockerfile, a: &Analysis, view: &dyn ContextView) -> Vec<Vec<Placed>> {
    let mut placed: Vec<Vec<Placed>> = Vec::with_capacity(a.stages.len());
    for stage in &a.stages {
        let mut here: Vec<Placed> = match stage.base {
            Base::Stage(b) => placed[b].clone(),
            _ => Vec::new(),
        };
        for (idx, ins) in stage_instructions(df, stage) {
            let (Kind::Copy(spec) | Kind::Add(spec)) = &ins.kind else {
                continue;
            };
            let step = &a.steps[idx];
            let copy = CopyStep::new(df, ins, spec, step, stage.index);
            match ins.flag("from") {
                Some(from) => {
                    let from = expand(from, &step.vars, df.escape).text;
                    // None: an external image, nothing from the context.
                    if let Some(src_stage) = a.stage_named(&from, stage.index) {
                        copy.carry_from(&placed[src_stage], &mut here);
                    }
                }
                None => copy.place_from_context(df, step, view, &mut here),
            }
        }
        placed.push(here);
    }
    placed
}

/// One `COPY`/`ADD`, its words expanded at its step: where it puts what.
struct CopyStep<'a> {
    ins: &'a Instruction,
    stage: usize,
    /// Absolute, against the step's `WORKDIR`.
    dest: String,
    /// Heredoc sources left out: they are not context files.
    sources: Vec<String>,
    multiple: bool,
}

impl<'a> CopyStep<'a> {
    fn new(
        df: &Dockerfile,
        ins: &'a Instruction,
        spec: &CopyArgs,
        step: &Step,
        stage: usize,
    ) -> Self {
        let dest_raw = expand(&spec.dest, &step.vars, df.escape).text;
        CopyStep {
            ins,
            stage,
            dest: join_path(&step.workdir, &dest_raw),
            sources: spec
                .sources
                .iter()
                .filter(|s| !s.starts_with("<<"))
                .map(|s| expand(s, &step.vars, df.escape).text)
                .collect(),
            multiple: spec.sources.len() > 1,
        }
    }

    /// The builder's rule: the destination is a directory when it ends in `/`, when there are
    /// several sources, or when a source has wildcards.
    fn dest_is_dir(&self, wild: bool) -> bool {
        self.dest.ends_with('/') || self.multiple || wild
    }

    /// `COPY --from=stage`: the files placed in that stage that its sources take.
    fn carry_from(&self, from: &[Placed], here: &mut Vec<Placed>) {
        for src in &self.sources {
            let src_abs = clean(&format!("/{src}"));
            let wild = has_wildcards(&src_abs);
            for p in from {
                if let Some((image_path, partial)) =
                    carry(p, &src_abs, &self.dest, self.dest_is_dir(wild))
                {
                    let mut moved = p.clone();
                    moved.image_path = image_path;
                    moved.tree = p.tree || partial;
                    moved.carried_by.push(self.ins.line);
                    here.push(moved);
                }
            }
        }
    }

    /// `COPY`/`ADD` from the context: each source resolved against the context's files.
    fn place_from_context(
        &self,
        df: &Dockerfile,
        step: &Step,
        view: &dyn ContextView,
        here: &mut Vec<Placed>,
    ) {
        // `COPY --exclude=pattern` (dockerfile 1.7+): .dockerignore syntax, relative to the
        // source. A pattern the builder would reject excludes nothing here.
        let exclude = Matcher::new(
            self.ins
                .flags_named("exclude")
                .map(|p| (self.ins.line, expand(p, &step.vars, df.escape).text))
                .collect(),
        )
        .unwrap_or_default();
        for src in &self.sources {
            if is_remote(src) {
                continue;
            }
            for root in view.resolve(src) {
                self.place_root(src, root, &exclude, here);
            }
        }
    }

    /// Where one resolved source goes: a file, a directory's files, or a name the view cannot
    /// resolve (placed as a whole tree).
    fn place_root(&self, src: &str, root: Root, exclude: &Matcher, here: &mut Vec<Placed>) {
        let into_dir = self.dest_is_dir(has_wildcards(src));
        let dest = self.dest.trim_end_matches('/');
        let mut put = |image_path: String, tree: bool, source: String| {
            here.push(Placed {
                image_path,
                tree,
                source,
                copy_line: self.ins.line,
                copy_stage: self.stage,
                carried_by: Vec::new(),
            });
        };
        match root {
            Root::File(path) => {
                if exclude.excludes(basename(&path)) {
                    return;
                }
                let target = if into_dir {
                    format!("{dest}/{}", basename(&path))
                } else {
                    dest.to_string()
                };
                put(target, false, path);
            }
            Root::Dir(dir, files) => {
                for f in files {
                    if exclude.excludes(&f) {
                        continue;
                    }
                    let target = format!("{dest}/{f}");
                    let source = if dir == "." || dir.is_empty() {
                        f
                    } else {
                        format!("{dir}/{f}")
                    };
                    put(target, false, source);
                }
            }
            Root::Unknown(name) => {
                let contents_only = src.ends_with('/') || name == ".";
                let target = if contents_only || !into_dir {
                    dest.to_string()
                } else {
                    format!("{dest}/{}", basename(&name))
                };
                let target = if target.is_empty() {
                    "/".into()
                } else {
                    target
                };
                put(target, true, name);
            }
        }
    }
}

/// Where `COPY --from` source `src` (absolute) puts placed file `p`, if it takes it:
/// (new path, whether only part of a tree was taken).
fn carry(p: &Placed, src: &str, dest: &str, dest_is_dir: bool) -> Option<(String, bool)> {
    let dest_dir = dest.trim_end_matches('/');
    let path = p.image_path.as_str();
    let to_file = |name: &str| {
        if dest_is_dir {
            format!("{dest_dir}/{name}")
        } else {
            dest_dir.to_string()
        }
    };
    match cover(src, path, p.tree)? {
        // The source names the placed path itself.
        Cover::Exact => Some((to_file(basename(path)), false)),
        // A directory above the placed path: the path keeps its place below dest.
        Cover::Parent(rest) => Some((format!("{dest_dir}/{rest}"), false)),
        // The source is inside a placed tree: part of it comes along.
        Cover::Inside => Some((to_file(basename(src)), true)),
    }
}

/// How a `COPY --from` source relates to a placed path.
#[derive(Debug, PartialEq, Eq)]
enum Cover {
    /// It names the path.
    Exact,
    /// It names a parent directory; the path's remainder below it.
    Parent(String),
    /// It names something inside a placed tree.
    Inside,
}

/// Whether `src` takes `path` along. Wildcards are matched one component at a time, as the
/// builder does.
fn cover(src: &str, path: &str, tree: bool) -> Option<Cover> {
    let src_parts: Vec<&str> = src.split('/').filter(|c| !c.is_empty()).collect();
    let path_parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let common = src_parts.len().min(path_parts.len());
    for i in 0..common {
        if go_match(src_parts[i], path_parts[i]) != Ok(true) {
            return None;
        }
    }
    if src_parts.len() == path_parts.len() {
        return Some(Cover::Exact);
    }
    if src_parts.len() < path_parts.len() {
        return Some(Cover::Parent(path_parts[src_parts.len()..].join("/")));
    }
    // `src` is below `path`: only a placed tree (a name not resolved to files) contains it.
    tree.then_some(Cover::Inside)
}

fn basename(path: &str) -> &str {
    let p = path.trim_end_matches('/');
    p.rsplit('/').next().unwrap_or(p)
}

/// Whether an `ADD` source is fetched from the network rather than the context.
pub fn is_remote(src: &str) -> bool {
    let lower = src.to_ascii_lowercase();
    lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("git@")
        || lower.starts_with("git://")
        || lower.starts_with("ssh://")
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::super::stages::analyse;
    use super::*;

    fn paths(df: &str) -> Vec<Vec<(String, String, bool)>> {
        let df = parse(df).unwrap();
        let a = analyse(&df);
        trace(&df, &a, &Textual)
            .into_iter()
            .map(|s| {
                s.into_iter()
                    .map(|p| (p.image_path, p.source, p.carried_by.is_empty()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn textual_copy_destinations() {
        let got = paths(
            "FROM a\nWORKDIR /app\nCOPY id_rsa /root/.ssh/\nCOPY .env ./\nCOPY secrets/ ./secrets/\nCOPY cfg.json conf/cfg.json\nCOPY a b dir\nADD https://x/y.tgz /opt/\n",
        );
        assert_eq!(
            got[0],
            vec![
                ("/root/.ssh/id_rsa".into(), "id_rsa".into(), true),
                ("/app/.env".into(), ".env".into(), true),
                ("/app/secrets".into(), "secrets".into(), true),
                ("/app/conf/cfg.json".into(), "cfg.json".into(), true),
                ("/app/dir/a".into(), "a".into(), true),
                ("/app/dir/b".into(), "b".into(), true),
            ]
        );
    }

    #[test]
    fn copy_from_carries_only_what_it_names() {
        let got = paths(
            "FROM node AS build\nWORKDIR /app\nCOPY .npmrc ./\nCOPY . .\nRUN npm ci && npm run build\n\
             FROM nginx\nCOPY --from=build /app/dist /usr/share/nginx/html\n\
             FROM nginx AS leaky\nCOPY --from=build /app /srv/app\n",
        );
        // Stage 1 copies /app/dist: part of the `.` tree, not the .npmrc file.
        assert_eq!(
            got[1],
            vec![("/usr/share/nginx/html".into(), ".".into(), false)]
        );
        // Stage 2 copies all of /app: the .npmrc comes along.
        assert!(got[2].contains(&("/srv/app/.npmrc".into(), ".npmrc".into(), false)));
    }

    #[test]
    fn from_stage_inherits_and_wildcards_match_per_component() {
        let got = paths(
            "FROM a AS base\nCOPY keys/server.key /etc/ssl/private/\n\
             FROM base AS app\n\
             FROM b\nCOPY --from=app /etc/ssl/*/server.key /k/\n",
        );
        assert_eq!(got[1][0].0, "/etc/ssl/private/server.key");
        assert_eq!(
            got[2],
            vec![("/k/server.key".into(), "keys/server.key".into(), false)]
        );
        assert_eq!(cover("/etc/*/x", "/etc/ssl/y", true), None);
        assert_eq!(cover("/*/b", "/aaaaé", true), Some(Cover::Inside));
        assert_eq!(cover("/*/b", "/aaaaé", false), None);
        assert_eq!(
            cover("/", "/app/x", false),
            Some(Cover::Parent("app/x".into()))
        );
        assert_eq!(cover("/app", "/", true), Some(Cover::Inside));
    }
}
