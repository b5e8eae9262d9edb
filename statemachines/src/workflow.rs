//! opsplane's seven workflows: their names, their definitions under `statemachines/definitions/`, and the
//! `DefinitionSubstitutions` keys each definition needs (`${LockFunctionArn}`, ...), as the deployed
//! stack (`bootstrap/template.yaml`) fills them in.

use std::fmt;
use std::str::FromStr;

/// One of opsplane's workflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workflow {
    /// Backs up a target under the lock.
    Backup,
    /// Restores a backup into a scratch environment and verifies it.
    DrDrill,
    /// Provisions an environment under the lock and checks its health.
    Provision,
    /// Rolls a failed change back and checks health again.
    Rollback,
    /// Checks the health of every target.
    HealthSweep,
    /// Compares deployed resources with their specification.
    Drift,
    /// Runs every environment's backup, or a night of the drill rotation, as child executions within the
    /// RDS request budget.
    Fleet,
}

/// A name that is not one of the workflows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown workflow \"{given}\": one of backup, dr-drill, provision, rollback, health-sweep, drift, fleet"
)]
pub struct UnknownWorkflow {
    /// The name given.
    pub given: String,
}

impl Workflow {
    /// Every workflow, in the order the stack declares them.
    pub fn all() -> [Workflow; 7] {
        [
            Workflow::Backup,
            Workflow::DrDrill,
            Workflow::Provision,
            Workflow::Rollback,
            Workflow::HealthSweep,
            Workflow::Drift,
            Workflow::Fleet,
        ]
    }

    /// The name the workflow goes by (`dr-drill`), also its definition's file stem.
    pub fn name(self) -> &'static str {
        match self {
            Workflow::Backup => "backup",
            Workflow::DrDrill => "dr-drill",
            Workflow::Provision => "provision",
            Workflow::Rollback => "rollback",
            Workflow::HealthSweep => "health-sweep",
            Workflow::Drift => "drift",
            Workflow::Fleet => "fleet",
        }
    }

    /// Its definition file, relative to the `statemachines/` crate.
    pub fn definition_file(self) -> &'static str {
        match self {
            Workflow::Backup => "definitions/backup.asl.json",
            Workflow::DrDrill => "definitions/dr-drill.asl.json",
            Workflow::Provision => "definitions/provision.asl.json",
            Workflow::Rollback => "definitions/rollback.asl.json",
            Workflow::HealthSweep => "definitions/health-sweep.asl.json",
            Workflow::Drift => "definitions/drift.asl.json",
            Workflow::Fleet => "definitions/fleet.asl.json",
        }
    }

    /// Its definition (with `${...}` placeholders), compiled in.
    pub fn definition(self) -> &'static str {
        match self {
            Workflow::Backup => include_str!("../definitions/backup.asl.json"),
            Workflow::DrDrill => include_str!("../definitions/dr-drill.asl.json"),
            Workflow::Provision => include_str!("../definitions/provision.asl.json"),
            Workflow::Rollback => include_str!("../definitions/rollback.asl.json"),
            Workflow::HealthSweep => include_str!("../definitions/health-sweep.asl.json"),
            Workflow::Drift => include_str!("../definitions/drift.asl.json"),
            Workflow::Fleet => include_str!("../definitions/fleet.asl.json"),
        }
    }

    /// The `DefinitionSubstitutions` keys its definition uses, sorted.
    pub fn substitution_keys(self) -> &'static [&'static str] {
        match self {
            Workflow::Backup | Workflow::DrDrill => {
                &["BackupFunctionArn", "EventBusName", "LockFunctionArn"]
            }
            Workflow::Provision => &[
                "EventBusName",
                "HealthCheckFunctionArn",
                "LockFunctionArn",
                "ProvisionFunctionArn",
            ],
            Workflow::Rollback => &[
                "EventBusName",
                "HealthCheckFunctionArn",
                "LockFunctionArn",
                "ProvisionFunctionArn",
                "RollbackFunctionArn",
            ],
            Workflow::HealthSweep => &["EventBusName", "HealthCheckFunctionArn"],
            Workflow::Drift => &["EventBusName", "ProvisionFunctionArn"],
            Workflow::Fleet => &[
                "BackupFunctionArn",
                "BackupStateMachineArn",
                "DrDrillStateMachineArn",
                "EventBusName",
            ],
        }
    }
}

impl fmt::Display for Workflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workflow {
    type Err = UnknownWorkflow;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Workflow::all()
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| UnknownWorkflow {
                given: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::*;

    /// The `${Name}` placeholders a definition uses.
    fn placeholders(text: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut rest = text;
        while let Some(p) = rest.find("${") {
            let after = &rest[p + 2..];
            let end = after.find('}').expect("closed placeholder");
            out.insert(after[..end].to_string());
            rest = &after[end + 1..];
        }
        out
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_valid_ones() {
        for w in Workflow::all() {
            assert_eq!(w.to_string().parse::<Workflow>(), Ok(w));
            assert!(
                w.definition_file()
                    .ends_with(&format!("{}.asl.json", w.name()))
            );
        }
        let err = "backups".parse::<Workflow>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown workflow \"backups\": one of backup, dr-drill, provision, rollback, health-sweep, drift, fleet"
        );
    }

    #[test]
    fn substitution_keys_are_exactly_the_definitions_placeholders() {
        for w in Workflow::all() {
            let declared: BTreeSet<String> = w
                .substitution_keys()
                .iter()
                .map(|k| k.to_string())
                .collect();
            assert_eq!(declared, placeholders(w.definition()), "{w}");
        }
    }

    #[test]
    fn every_definition_is_valid_once_substituted() {
        for w in Workflow::all() {
            let subs: HashMap<String, String> = w
                .substitution_keys()
                .iter()
                .map(|k| {
                    (
                        k.to_string(),
                        format!("arn:aws:lambda:us-east-1:123456789012:function:{k}"),
                    )
                })
                .collect();
            let text = crate::engine::substitute(w.definition(), &subs).expect("all keys given");
            crate::model::parse(&text).unwrap_or_else(|e| panic!("{w}: {e}"));
        }
    }
}
