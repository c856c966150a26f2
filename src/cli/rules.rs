//! `rsafe rules`: every rule the auditor applies — rsafe's own checks (`image.*`, `layer.*`,
//! `fs.*`, `elf.*`) and the secret engine's (`secret.*`) — with its usual severity, what it finds
//! and how to fix a finding. The ids are what `.rsafeignore` and SARIF refer to.

use std::io::{self, Write};

use anyhow::Context;

use super::audit::{all_rules, quiet_on_broken_pipe, secret_detector};
use crate::audit::RuleInfo;

/// How `rsafe rules` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RulesFormat {
    Table,
    Json,
}

/// Arguments of `rsafe rules`.
#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = RulesFormat::Table)]
    pub format: RulesFormat,
}

/// Prints the rules.
pub fn run(args: RulesArgs) -> anyhow::Result<i32> {
    let rules = all_rules(&secret_detector()?);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let written = match args.format {
        RulesFormat::Json => serde_json::to_writer_pretty(&mut out, &rules)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out)),
        RulesFormat::Table => write_table(&rules, &mut out),
    }
    .and_then(|()| out.flush());
    quiet_on_broken_pipe(written).context("cannot write the rules")?;
    Ok(0)
}

/// One block per rule: `id  severity  title`, then the description and the fix, wrapped.
pub fn write_table(rules: &[RuleInfo], out: &mut dyn Write) -> io::Result<()> {
    let width = rules.iter().map(|r| r.id.len()).max().unwrap_or(0);
    for r in rules {
        writeln!(
            out,
            "{:<width$}  {:<8}  {}",
            r.id,
            r.severity.as_str(),
            r.title
        )?;
        for line in wrap(&r.description, 96) {
            writeln!(out, "    {line}")?;
        }
        for line in wrap(&format!("Fix: {}", r.remediation), 96) {
            writeln!(out, "    {line}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "{} rules", rules.len())
}

/// Greedy word wrap at `width` columns.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_block() {
        let rules = all_rules(&secret_detector().unwrap());
        assert!(rules.iter().any(|r| r.id.starts_with("secret.")));
        assert!(rules.iter().any(|r| r.id == "layer.path-traversal"));
        let mut out = Vec::new();
        write_table(&rules, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with(&format!("{} rules\n", rules.len())));
        assert!(
            text.lines()
                .all(|l| l.chars().count() <= 100 || !l.starts_with("    "))
        );
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert!(wrap("", 5).is_empty());
    }
}
