//! Auditing: images, Dockerfiles, compose files and running containers all produce [`Finding`]s
//! in one model, so one report writer and one `--fail-on` gate serve them all.
#![forbid(unsafe_code)]

pub mod compose;
pub mod context;
pub mod dockerfile;
pub mod finding;
pub mod secrets;

use serde::{Deserialize, Serialize};

pub use finding::{Evidence, Finding, LayerProvenance, Location, Severity};

/// A check rsafe itself makes (secret rules come from the secret engine): its stable id, how bad
/// a hit usually is, and what to tell the user. Checks build their findings from these, so ids,
/// titles and fixes never drift from what `rsafe rules` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub id: &'static str,
    /// The usual severity; a check may raise or lower it for a given hit (said in `description`).
    pub severity: Severity,
    pub title: &'static str,
    pub description: &'static str,
    pub remediation: &'static str,
}

impl Rule {
    /// A finding of this rule at its usual severity.
    pub fn finding(&self, location: Location, evidence: Option<Evidence>) -> Finding {
        self.finding_at(self.severity, location, evidence)
    }

    /// A finding of this rule at a severity the check decided for this hit.
    pub fn finding_at(
        &self,
        severity: Severity,
        location: Location,
        evidence: Option<Evidence>,
    ) -> Finding {
        Finding {
            rule: self.id.to_string(),
            severity,
            title: self.title.to_string(),
            location,
            evidence,
            remediation: self.remediation.to_string(),
        }
    }
}

/// A rule as reports and `rsafe rules` show it, whoever defines it (rsafe's checks or the secret
/// engine's data-driven rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    pub id: String,
    pub severity: Severity,
    pub title: String,
    pub description: String,
    pub remediation: String,
}

impl From<&Rule> for RuleInfo {
    fn from(r: &Rule) -> Self {
        RuleInfo {
            id: r.id.to_string(),
            severity: r.severity,
            title: r.title.to_string(),
            description: r.description.to_string(),
            remediation: r.remediation.to_string(),
        }
    }
}
