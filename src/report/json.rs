//! The report for programs: one JSON document with a versioned, stable schema.
//!
//! ```json
//! { "schema_version": 1,
//!   "tool": {"name": "rsafe", "version": "0.1.0"},
//!   "target": {"kind": "image", "name": "app:1.0", "digest": "sha256:…", "platform": "linux/amd64"},
//!   "summary": {"total": 2, "critical": 0, "high": 1, "medium": 1, "low": 0, "info": 0,
//!               "ignored": 0, "below_threshold": 0},
//!   "stats": {"layers": 3, "entries": 812, "bytes": 2400000, "files_read": 40, "bytes_read": 9000},
//!   "findings": [ {"rule": "…", "severity": "high", "title": "…",
//!                  "location": {"kind": "image_file", "path": "/root/.aws/credentials",
//!                               "layer": {"index": 1, "digest": "sha256:…",
//!                                         "created_by": "…", "removed_in": 2}},
//!                  "evidence": {"excerpt": "AKI…[redacted 20 chars]", "fingerprint": "…"},
//!                  "remediation": "…"} ] }
//! ```
//!
//! Layer indexes are 0-based here (people see them 1-based in the table). Fields are only ever
//! added; a change in meaning bumps `schema_version`. Wall time is left out so the same image
//! always gives the same document.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::{Counts, Report, Target};
use crate::audit::{Finding, ScanStats};

/// The schema version written in every document.
pub const SCHEMA_VERSION: u32 = 1;

/// The producer of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// The JSON document (also what a consumer deserialises).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonReport {
    pub schema_version: u32,
    pub tool: Tool,
    pub target: Target,
    pub summary: Counts,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stats: Option<ScanStats>,
    pub findings: Vec<Finding>,
}

impl From<&Report> for JsonReport {
    fn from(r: &Report) -> Self {
        JsonReport {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "rsafe".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            target: r.target.clone(),
            summary: r.counts(),
            stats: r.stats,
            findings: r.findings.clone(),
        }
    }
}

/// Writes the report as pretty-printed JSON, newline-terminated.
pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &JsonReport::from(report))?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn round_trips_and_keeps_its_shape() {
        let mut out = Vec::new();
        write(&sample(), &mut out).unwrap();
        let doc: JsonReport = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc, JsonReport::from(&sample()));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["summary"]["critical"], 2);
        let f = &v["findings"][1];
        assert_eq!(f["location"]["kind"], "image_file");
        assert_eq!(f["location"]["layer"]["removed_in"], 2);
        assert_eq!(f["evidence"]["excerpt"], "AKI…[redacted 20 chars]");
        assert!(v.get("stats").is_none());
    }
}
