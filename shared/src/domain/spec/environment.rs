//! One environment's desired state as a whole: the document's top level, how it is parsed, and its key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::checks::HealthSpec;
use super::error::SpecError;
use super::policy::{AlarmMapping, ApprovalPolicy, BackupPolicy, DrillPolicy, RollbackPolicy};
use super::redis::RedisSpec;
use super::resources::{EksSpec, RdsSpec};

/// The S3 key of an environment's spec in the state bucket.
pub fn spec_key(environment: &str) -> String {
    format!("specs/{environment}/spec.yaml")
}

/// One environment's desired state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// The environment's name (`dev`, `staging`, `prod`, ...).
    pub environment: String,
    /// Tags every resource of the environment carries.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The RDS instances.
    #[serde(default)]
    pub rds: Vec<RdsSpec>,
    /// The EKS cluster, if any.
    #[serde(default)]
    pub eks: Option<EksSpec>,
    /// The ElastiCache Redis replication groups.
    #[serde(default)]
    pub redis: Vec<RedisSpec>,
    /// Health checks run after every change and by the sweep.
    #[serde(default)]
    pub health: HealthSpec,
    /// Backup policy.
    #[serde(default)]
    pub backup: BackupPolicy,
    /// DR drill policy; without it the environment cannot be drilled.
    #[serde(default)]
    pub drill: Option<DrillPolicy>,
    /// An environment held to the stricter policy (production): an EKS API endpoint open to the whole
    /// internet blocks its plans.
    #[serde(default)]
    pub protected: bool,
    /// Whether a change waits for a person's approval, and for how long.
    #[serde(default)]
    pub approval: ApprovalPolicy,
    /// The CloudWatch alarms that belong to this environment: one going to ALARM rolls it back.
    #[serde(default)]
    pub alarms: AlarmMapping,
    /// The bake after a change, the window an alarm reaches back over, the known-good history kept.
    #[serde(default)]
    pub rollback: RollbackPolicy,
}

impl EnvironmentSpec {
    /// Parses and validates a spec document.
    pub fn parse(yaml: &str) -> Result<Self, SpecError> {
        let spec = super::shape::read(yaml)?;
        let broken = spec.problems();
        if !broken.is_empty() {
            return Err(super::shape::with_lines(yaml, broken));
        }
        Ok(spec)
    }

    /// Reads, parses and validates a spec file; every error names the file (and the field).
    pub fn parse_file(path: &std::path::Path) -> Result<Self, SpecError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SpecError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        Self::parse(&text).map_err(|e| SpecError::InFile {
            path: shown,
            problem: Box::new(e),
        })
    }

    /// The spec of one RDS instance.
    pub fn instance(&self, identifier: &str) -> Option<&RdsSpec> {
        self.rds.iter().find(|d| d.identifier == identifier)
    }

    /// The spec of one Redis replication group.
    pub fn cache(&self, replication_group_id: &str) -> Option<&RedisSpec> {
        self.redis
            .iter()
            .find(|r| r.replication_group_id == replication_group_id)
    }

    /// How old the newest completed backup may be, in minutes: `health.backup_max_age_minutes`, else the
    /// drill's RPO target; `None` when neither is set.
    pub fn backup_max_age_minutes(&self) -> Option<u32> {
        self.health
            .backup_max_age_minutes
            .or(self.drill.as_ref().map(|d| d.rpo_target_minutes))
    }
}
