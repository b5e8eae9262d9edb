//! The policy on what exists now: unencrypted or public instances block, missing tags warn.

use std::collections::BTreeMap;

use super::actual::ActualState;
use super::change::{Finding, Resource, Severity};

/// Tags every resource must carry; a missing one is a `warn` finding.
pub const REQUIRED_TAGS: [&str; 3] = ["Project", "Environment", "ManagedBy"];

/// The policy applied to what exists now: unencrypted or public instances block, missing tags warn.
pub fn existing_findings(actual: &ActualState) -> Vec<Finding> {
    let mut out = Vec::new();
    let missing = |tags: &BTreeMap<String, String>| -> Vec<&str> {
        REQUIRED_TAGS
            .into_iter()
            .filter(|t| !tags.contains_key(*t))
            .collect()
    };
    for a in &actual.instances {
        let r = Resource::Instance {
            identifier: a.identifier.clone(),
        };
        if a.storage_encrypted == Some(false) {
            out.push(Finding {
                severity: Severity::Block,
                resource: r.clone(),
                rule: "encryption".into(),
                message: "the instance's storage is not encrypted".into(),
            });
        }
        if a.publicly_accessible == Some(true) {
            out.push(Finding {
                severity: Severity::Block,
                resource: r.clone(),
                rule: "public-access".into(),
                message: "the instance is publicly accessible".into(),
            });
        }
        let lacking = missing(&a.tags);
        if !lacking.is_empty() {
            out.push(Finding {
                severity: Severity::Warn,
                resource: r,
                rule: "required-tag".into(),
                message: format!("missing tags: {}", lacking.join(", ")),
            });
        }
    }
    if let Some(c) = &actual.cluster {
        let lacking = missing(&c.tags);
        if !lacking.is_empty() {
            out.push(Finding {
                severity: Severity::Warn,
                resource: Resource::Cluster {
                    name: c.name.clone(),
                },
                rule: "required-tag".into(),
                message: format!("missing tags: {}", lacking.join(", ")),
            });
        }
    }
    out
}
