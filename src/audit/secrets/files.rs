//! Paths: in-image path normalisation and the glob sets that name known secret-bearing files
//! (`.ssh/id_*`, `/etc/shadow`, `.docker/config.json`, …), files never worth reading (lock files,
//! images, archives) and vendored files (distribution and vendored code, where only
//! unmistakable token formats are reported).

use std::borrow::Cow;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::rules::FileRule;

/// The in-image path as every glob sees it: absolute, without `./` prefixes or doubled slashes
/// (`etc/shadow`, `./etc/shadow` and `/etc//shadow` are all `/etc/shadow`).
pub(crate) fn normalize(path: &str) -> Cow<'_, str> {
    let mut rest = path;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix('/') {
            rest = r;
        } else {
            break;
        }
    }
    if rest.len() + 1 == path.len() && path.starts_with('/') && !rest.contains("//") {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(rest.len() + 1);
    for part in rest.split('/').filter(|p| !p.is_empty() && *p != ".") {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

/// A compiled list of globs over normalized paths. `*` stops at `/`; `**/` spans directories.
#[derive(Debug, Clone)]
pub(crate) struct PathSet {
    set: GlobSet,
    patterns: Vec<String>,
}

impl PathSet {
    /// Compiles `patterns`; each must start with `/` (absolute) or `**` (anywhere), since paths
    /// are always absolute and any other glob would silently never match.
    pub fn compile(patterns: &[String]) -> Result<PathSet, String> {
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            builder.add(glob(p)?);
        }
        let set = builder.build().map_err(|e| e.to_string())?;
        Ok(PathSet {
            set,
            patterns: patterns.to_vec(),
        })
    }

    /// Whether any glob matches the (normalized) path.
    pub fn is_match(&self, path: &str) -> bool {
        !self.patterns.is_empty() && self.set.is_match(path)
    }
}

/// Parses and checks each glob without building a set (building is the costly part, and a
/// file rule's globs are only ever matched as part of the [`FileIndex`]).
pub(crate) fn globs(patterns: &[String]) -> Result<Vec<globset::Glob>, String> {
    patterns.iter().map(|p| glob(p)).collect()
}

fn glob(pattern: &str) -> Result<globset::Glob, String> {
    if !(pattern.starts_with('/') || pattern.starts_with("**")) {
        return Err(format!(
            "glob {pattern:?} must start with `/` (absolute) or `**/` (anywhere)"
        ));
    }
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("bad glob {pattern:?}: {e}"))
}

/// Every file rule's globs in one set, so a path is tested once for all rules (the layer walker
/// asks for every entry of every layer).
#[derive(Debug)]
pub(crate) struct FileIndex {
    set: GlobSet,
    /// Glob index in `set` → index of its file rule.
    owner: Vec<usize>,
}

impl FileIndex {
    /// Indexes the rules' `paths`.
    pub fn build(rules: &[FileRule]) -> Result<FileIndex, String> {
        let mut builder = GlobSetBuilder::new();
        let mut owner = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            for g in &rule.paths {
                builder.add(g.clone());
                owner.push(i);
            }
        }
        let set = builder.build().map_err(|e| e.to_string())?;
        Ok(FileIndex { set, owner })
    }

    /// Whether some file rule names this path (before exclusions: a cheap upper bound).
    pub fn may_match(&self, path: &str) -> bool {
        !self.owner.is_empty() && self.set.is_match(path)
    }

    /// Indices of the file rules that apply to `path`, in rule order.
    pub fn rules_for(&self, path: &str, rules: &[FileRule]) -> Vec<usize> {
        if !self.may_match(path) {
            return Vec::new();
        }
        let mut found: Vec<usize> = self
            .set
            .matches(path)
            .into_iter()
            .map(|g| self.owner[g])
            .filter(|&r| !rules[r].exclude.as_ref().is_some_and(|x| x.is_match(path)))
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_to_absolute_form() {
        assert_eq!(normalize("/etc/shadow"), "/etc/shadow");
        assert!(matches!(normalize("/etc/shadow"), Cow::Borrowed(_)));
        assert_eq!(normalize("etc/shadow"), "/etc/shadow");
        assert_eq!(normalize("./etc/shadow"), "/etc/shadow");
        assert_eq!(normalize(".//etc//./shadow"), "/etc/shadow");
        assert_eq!(normalize(""), "/");
    }

    #[test]
    fn globs_anchor_at_root_or_match_anywhere() {
        let set = PathSet::compile(&["**/.ssh/id_*".into(), "/etc/shadow".into()]).expect("ok");
        assert!(set.is_match("/root/.ssh/id_rsa"));
        assert!(set.is_match("/home/a/b/.ssh/id_ed25519"));
        assert!(set.is_match("/.ssh/id_rsa"));
        assert!(set.is_match("/etc/shadow"));
        assert!(!set.is_match("/backup/etc/shadow"));
        assert!(
            !set.is_match("/root/.ssh/sub/x/id_rsa"),
            "* must not cross /"
        );
        let e = PathSet::compile(&["etc/shadow".into()]).expect_err("relative glob");
        assert!(e.contains("must start with `/`"), "{e}");
    }
}
