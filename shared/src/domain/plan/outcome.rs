//! The plan as a whole: its changes and findings, whether it is blocked or waits for a person, the changes
//! that can be reverted, and its table for people.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::change::{Change, ChangeKind, Finding, Resource, Severity};

/// The plan of one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The environment.
    pub environment: String,
    /// The changes, in the order they are applied (clusters before their node groups).
    pub changes: Vec<Change>,
    /// The policy findings.
    pub findings: Vec<Finding>,
    /// Whether a `block` finding forbids applying it.
    pub blocked: bool,
    /// Whether it waits for a person (the spec asks, or a change is irreversible).
    pub needs_approval: bool,
    /// Whether there is nothing to change.
    pub empty: bool,
}

impl Plan {
    pub(super) fn new(
        environment: &str,
        changes: Vec<Change>,
        findings: Vec<Finding>,
        approval: bool,
    ) -> Self {
        let blocked = findings.iter().any(|f| f.severity == Severity::Block);
        let empty = changes.is_empty();
        let needs_approval = !empty && (approval || changes.iter().any(|c| !c.reversible));
        Self {
            environment: environment.to_owned(),
            changes,
            findings,
            blocked,
            needs_approval,
            empty,
        }
    }

    /// SHA-256 (hex) of the plan's changes: what an approval is bound to ([`changes_sha256`]).
    pub fn sha256(&self) -> String {
        changes_sha256(&serde_json::to_value(&self.changes).unwrap_or_default())
    }

    /// The blocking findings.
    pub fn blocking(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Block)
    }

    /// The identifiers of the existing RDS instances the plan changes (they get a pre-change snapshot).
    pub fn instances_changed(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .changes
            .iter()
            .filter(|c| c.kind != ChangeKind::Create)
            .filter_map(|c| match &c.resource {
                Resource::Instance { identifier } => Some(identifier.clone()),
                _ => None,
            })
            .collect();
        ids.dedup();
        ids
    }

    /// The part of this plan a revert may apply: the reversible changes. Irreversible ones (an upgrade, a
    /// storage grow) stay, and are listed in the second value; findings about them do not block a revert,
    /// which only ever goes back to a spec that was applied and healthy.
    pub fn revertible(self) -> (Plan, Vec<Change>) {
        let (keep, skipped): (Vec<Change>, Vec<Change>) =
            self.changes.into_iter().partition(|c| c.reversible);
        let findings = self
            .findings
            .into_iter()
            .filter(|f| f.severity == Severity::Warn)
            .collect();
        (Plan::new(&self.environment, keep, findings, false), skipped)
    }

    /// A short table for people.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let warnings = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Warn)
            .count();
        let _ = writeln!(
            out,
            "plan for {}: {} change(s), {} blocking finding(s), {} warning(s){}",
            self.environment,
            self.changes.len(),
            self.blocking().count(),
            warnings,
            if self.blocked {
                " - BLOCKED, will not be applied"
            } else if self.empty {
                " - nothing to do"
            } else if self.needs_approval {
                " - needs approval"
            } else {
                ""
            }
        );
        if !self.changes.is_empty() {
            let rows: Vec<[String; 5]> = self
                .changes
                .iter()
                .map(|c| {
                    [
                        c.kind.as_str().to_owned(),
                        c.resource.to_string(),
                        c.field.clone(),
                        format!("{} -> {}", c.from.as_deref().unwrap_or("-"), c.to),
                        if c.reversible { "yes" } else { "NO" }.to_owned(),
                    ]
                })
                .collect();
            let header = ["KIND", "RESOURCE", "FIELD", "CHANGE", "REVERSIBLE"];
            let mut widths = header.map(str::len);
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.len());
                }
            }
            let mut line = |cells: [&str; 5]| {
                let mut l = String::from(" ");
                for (cell, w) in cells.iter().zip(widths) {
                    let _ = write!(l, " {cell:<w$}");
                }
                let _ = writeln!(out, "{}", l.trim_end());
            };
            line(header);
            for row in &rows {
                line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
            }
        }
        for f in &self.findings {
            let sev = match f.severity {
                Severity::Block => "BLOCK",
                Severity::Warn => "warn ",
            };
            let _ = writeln!(out, "  {sev} {} [{}] {}", f.resource, f.rule, f.message);
        }
        out
    }
}

/// SHA-256 (hex) of a plan's `changes` as canonical JSON (keys sorted, no whitespace): the same changes give
/// the same hash however they were serialised.
pub fn changes_sha256(changes: &serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(
        crate::idempotency::canonical_json(changes).as_bytes(),
    ))
}
