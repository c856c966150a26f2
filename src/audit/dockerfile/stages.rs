//! What a parsed Dockerfile means as a build: its stages, which of them end up in the final
//! image, and the scope each instruction sees (variables, working directory, user).
//!
//! Scope rules follow the builder: `ARG`s before the first `FROM` are global and visible only to
//! `FROM` lines, until a stage re-declares them (`ARG NAME` without a value brings the global
//! default in); an `ARG` is visible from its line to the end of its stage; `ENV` overrides an
//! `ARG` of the same name; a stage built `FROM` another stage inherits its `ENV`, `WORKDIR` and
//! `USER` but not its `ARG`s.

use super::parse::{ArgDecl, Dockerfile, Instruction, KeyValue, Kind};
use super::words::{Expanded, Value, Vars, expand};

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`: an empty filesystem, running as uid 0 unless told otherwise.
    Scratch,
    /// `FROM <earlier stage>`.
    Stage(usize),
    /// An image reference (after variable expansion).
    Image(String),
}

/// A `USER` setting and where it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSetting {
    pub value: Expanded,
    pub line: u32,
}

/// One build stage.
#[derive(Debug, Clone)]
pub struct Stage {
    pub index: usize,
    /// `AS name`, lowercased.
    pub name: Option<String>,
    /// Index of its `FROM` in [`Dockerfile::instructions`].
    pub from: usize,
    /// One past its last instruction.
    pub end: usize,
    pub base: Base,
    /// The `FROM` image after expansion with the global `ARG`s.
    pub image: Expanded,
    /// The `USER` in effect at the end of the stage, inherited from a base stage if not set.
    pub user: Option<UserSetting>,
}

/// A build argument declared in the stage, as a `RUN` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgInScope {
    pub name: String,
    pub line: u32,
    /// Whether the Dockerfile gives it a value (its own default or the global one).
    pub has_default: bool,
}

/// The scope one instruction sees (before it takes effect).
#[derive(Debug, Clone, Default)]
pub struct Step {
    /// The stage it belongs to; `None` for global `ARG`s before the first `FROM`.
    pub stage: Option<usize>,
    pub vars: Vars,
    /// Absolute working directory.
    pub workdir: String,
    /// Build arguments declared in the stage so far.
    pub args: Vec<ArgInScope>,
}

/// The meaning of a Dockerfile as a build.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The global `ARG`s (before the first `FROM`).
    pub global: Vars,
    pub stages: Vec<Stage>,
    /// One per instruction, index-aligned with [`Dockerfile::instructions`].
    pub steps: Vec<Step>,
    /// Per stage: whether its filesystem becomes (part of) the final image — the last stage and
    /// the stages it is built `FROM`. (`docker build --target` picks another; rsafe audits the
    /// default build.)
    pub shipped: Vec<bool>,
}

impl Analysis {
    /// The stage `docker build` produces by default: the last one.
    pub fn final_stage(&self) -> &Stage {
        // `parse` guarantees a FROM, so there is at least one stage.
        &self.stages[self.stages.len() - 1]
    }

    /// The stage a `--from=` / `FROM` name refers to: an alias (case-insensitive) or an index.
    pub fn stage_named(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        if let Ok(n) = lower.parse::<usize>() {
            return (n < before).then_some(n);
        }
        self.stages[..before.min(self.stages.len())]
            .iter()
            .rev()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .map(|s| s.index)
    }
}

/// Joins a path onto a working directory the way the builder does (`WORKDIR`, relative `COPY`
/// destinations), keeping a trailing `/`.
pub fn join_path(workdir: &str, path: &str) -> String {
    let trailing = path.ends_with('/') || path.ends_with("/.") || path == ".";
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), path)
    };
    let mut cleaned = crate::audit::context::dockerignore::clean(&joined);
    if trailing && cleaned != "/" {
        cleaned.push('/');
    }
    cleaned
}

/// Analyses a parsed Dockerfile.
pub fn analyse(df: &Dockerfile) -> Analysis {
    let mut walk = Walk {
        escape: df.escape,
        global: Vars::default(),
        stages: Vec::new(),
        steps: Vec::with_capacity(df.instructions.len()),
        closed: Vec::new(),
        vars: Vars::default(),
        env: Vec::new(),
        workdir: "/".to_string(),
        args: Vec::new(),
        user: None,
    };
    for (idx, ins) in df.instructions.iter().enumerate() {
        walk.record_step();
        match &ins.kind {
            Kind::From { image, alias } => walk.from(idx, image, alias, df.instructions.len()),
            Kind::Arg(decls) => walk.arg(decls, ins.line),
            Kind::Env(pairs) => walk.env(pairs),
            Kind::Workdir(path) => walk.workdir(path),
            Kind::User(u) => {
                walk.user = Some(UserSetting {
                    value: expand(u, &walk.vars, walk.escape),
                    line: ins.line,
                });
            }
            _ => {}
        }
    }
    walk.close_stage(df.instructions.len());
    let shipped = shipped_stages(&walk.stages);
    Analysis {
        global: walk.global,
        stages: walk.stages,
        steps: walk.steps,
        shipped,
    }
}

/// Which stages end up in the image: the last one and the stages it is built `FROM`.
fn shipped_stages(stages: &[Stage]) -> Vec<bool> {
    let mut shipped = vec![false; stages.len()];
    let mut cur = stages.len().checked_sub(1);
    while let Some(i) = cur {
        shipped[i] = true;
        cur = match stages[i].base {
            Base::Stage(b) => Some(b),
            _ => None,
        };
    }
    shipped
}

/// What a stage left for the stages built `FROM` it.
struct ClosedStage {
    env: Vec<(String, String)>,
    workdir: String,
}

/// The state of the walk over the instructions: the global ARGs, the stages so far, and the
/// variables, ENV, WORKDIR, ARGs and USER of the current stage.
struct Walk {
    escape: char,
    global: Vars,
    stages: Vec<Stage>,
    steps: Vec<Step>,
    /// One per stage already closed, by index.
    closed: Vec<ClosedStage>,
    vars: Vars,
    env: Vec<(String, String)>,
    workdir: String,
    args: Vec<ArgInScope>,
    user: Option<UserSetting>,
}

impl Walk {
    fn in_stage(&self) -> bool {
        !self.stages.is_empty()
    }

    /// The context an instruction runs in, recorded before it changes anything.
    fn record_step(&mut self) {
        let in_stage = self.in_stage();
        self.steps.push(Step {
            stage: in_stage.then(|| self.stages.len() - 1),
            vars: if in_stage {
                self.vars.clone()
            } else {
                self.global.clone()
            },
            workdir: self.workdir.clone(),
            args: self.args.clone(),
        });
    }

    /// Ends the current stage (if any) at instruction `end`.
    fn close_stage(&mut self, end: usize) {
        if let Some(s) = self.stages.last_mut() {
            s.end = end;
            s.user = self.user.clone();
            self.closed.push(ClosedStage {
                env: self.env.clone(),
                workdir: self.workdir.clone(),
            });
        }
    }

    /// `FROM image [AS alias]` at instruction `idx`: a new stage, which inherits ENV, WORKDIR
    /// and USER when its base is an earlier stage.
    fn from(&mut self, idx: usize, image: &str, alias: &Option<String>, total: usize) {
        self.close_stage(idx);
        let expanded = expand(image, &self.global, self.escape);
        let lower = expanded.text.to_ascii_lowercase();
        let base = if lower == "scratch" {
            Base::Scratch
        } else if let Some(prev) = self
            .stages
            .iter()
            .rev()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            Base::Stage(prev.index)
        } else {
            Base::Image(expanded.text.clone())
        };
        self.vars = Vars::default();
        self.env.clear();
        self.workdir = "/".to_string();
        self.user = None;
        if let Base::Stage(b) = base {
            self.env = self.closed[b].env.clone();
            self.workdir = self.closed[b].workdir.clone();
            self.user = self.stages[b].user.clone();
            for (k, v) in &self.env {
                self.vars.set(k, Value::Known(v.clone()));
            }
        }
        self.args.clear();
        self.stages.push(Stage {
            index: self.stages.len(),
            name: alias.clone(),
            from: idx,
            end: total,
            base,
            image: expanded,
            user: None,
        });
    }

    /// `ARG name[=default]`: before the first FROM a global; in a stage, a variable (ENV of
    /// the same name wins) and an ARG in scope.
    fn arg(&mut self, decls: &[ArgDecl], line: u32) {
        for d in decls {
            if !self.in_stage() {
                let value = match &d.default {
                    Some(raw) => Value::Known(expand(raw, &self.global, self.escape).text),
                    None => Value::BuildTime,
                };
                self.global.set(&d.name, value);
                continue;
            }
            let value = match &d.default {
                Some(raw) => Value::Known(expand(raw, &self.vars, self.escape).text),
                None => self
                    .global
                    .get(&d.name)
                    .cloned()
                    .unwrap_or(Value::BuildTime),
            };
            let has_default = matches!(value, Value::Known(_));
            if !self.env.iter().any(|(k, _)| k == &d.name) {
                self.vars.set(&d.name, value);
            }
            self.args.retain(|a| a.name != d.name);
            self.args.push(ArgInScope {
                name: d.name.clone(),
                line,
                has_default,
            });
        }
    }

    /// `ENV k=v …`: all pairs of one ENV see the variables as they were before it.
    fn env(&mut self, pairs: &[KeyValue]) {
        let before = self.vars.clone();
        for kv in pairs {
            let v = expand(&kv.value, &before, self.escape).text;
            self.vars.set(&kv.key, Value::Known(v.clone()));
            self.env.retain(|(k, _)| k != &kv.key);
            self.env.push((kv.key.clone(), v));
        }
    }

    /// `WORKDIR path`, relative to the current one.
    fn workdir(&mut self, path: &str) {
        let p = expand(path, &self.vars, self.escape).text;
        self.workdir = join_path(&self.workdir, &p);
        if self.workdir.len() > 1 {
            self.workdir = self.workdir.trim_end_matches('/').to_string();
        }
    }
}

/// Whether a `USER` value (`root`, `0`, `0:0`, `root:wheel`) means uid 0.
pub fn is_root_user(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or(user).trim();
    name == "root" || name.parse::<u32>() == Ok(0)
}

/// The instructions of a stage, with their indices.
pub fn stage_instructions<'a>(
    df: &'a Dockerfile,
    stage: &Stage,
) -> impl Iterator<Item = (usize, &'a Instruction)> + 'a {
    let (from, end) = (stage.from, stage.end);
    df.instructions
        .iter()
        .enumerate()
        .skip(from + 1)
        .take(end.saturating_sub(from + 1))
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    #[test]
    fn stages_scope_and_shipping() {
        let df = parse(
            "ARG GO=1.22\nARG BASE\n\
             FROM golang:${GO} AS build\n\
             ARG GO\nARG TOKEN\n\
             WORKDIR /src\nENV CGO_ENABLED=0\n\
             RUN go build\n\
             FROM build AS test\nWORKDIR sub\n\
             FROM gcr.io/distroless/static\n\
             USER 65532\n\
             COPY --from=build /src/app /app\n",
        )
        .unwrap();
        let a = analyse(&df);
        assert_eq!(a.stages.len(), 3);
        assert_eq!(a.stages[0].image.text, "golang:1.22");
        assert_eq!(a.stages[1].base, Base::Stage(0));
        assert_eq!(a.shipped, vec![false, false, true]);
        let run = &a.steps[7];
        assert_eq!(run.workdir, "/src");
        assert_eq!(run.vars.get("GO"), Some(&Value::Known("1.22".into())));
        assert_eq!(run.vars.get("TOKEN"), Some(&Value::BuildTime));
        assert_eq!(
            run.args.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            vec!["GO", "TOKEN"]
        );
        // The test stage inherits WORKDIR and ENV but not ARGs.
        let after_workdir = &a.steps[10];
        assert_eq!(after_workdir.workdir, "/src/sub");
        assert!(after_workdir.vars.contains("CGO_ENABLED"));
        assert!(!after_workdir.vars.contains("TOKEN"));
        assert_eq!(a.final_stage().user.as_ref().unwrap().value.text, "65532");
        assert_eq!(a.stage_named("BUILD", 2), Some(0));
        assert_eq!(a.stage_named("1", 2), Some(1));
        assert_eq!(a.stage_named("2", 2), None);
    }

    #[test]
    fn env_overrides_arg_and_user_is_inherited() {
        let df =
            parse("FROM a AS base\nENV V=env\nARG V=arg\nUSER root\nFROM base\nRUN x\n").unwrap();
        let a = analyse(&df);
        assert_eq!(a.steps[3].vars.get("V"), Some(&Value::Known("env".into())));
        assert_eq!(a.final_stage().user.as_ref().unwrap().line, 4);
        assert_eq!(a.shipped, vec![true, true]);
    }

    #[test]
    fn root_users() {
        for u in ["root", "0", "0:0", "root:root", " root "] {
            assert!(is_root_user(u), "{u}");
        }
        for u in ["app", "1000", "1000:0", "nobody", "rooty"] {
            assert!(!is_root_user(u), "{u}");
        }
    }

    #[test]
    fn paths_join_like_the_builder() {
        assert_eq!(join_path("/", "app"), "/app");
        assert_eq!(join_path("/src", "./out/"), "/src/out/");
        assert_eq!(join_path("/src", "/abs"), "/abs");
        assert_eq!(join_path("/src", "."), "/src/");
        assert_eq!(join_path("/src", "../x"), "/x");
    }
}
