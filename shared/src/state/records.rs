//! The schemas of what the table holds: the records kept under an environment's partition (`pk=ENV#<env>`),
//! one sort-key prefix each, with the [`EnvRecord`] trait that says where each is kept; the parts of the
//! `META` item (last known good, spec in force) a deployment's outcome writes; approvals; audit events.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::rfc3339;

/// How a deployment ended, or that it has not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    /// Applying.
    InProgress,
    /// Applied and healthy, baking: the environment runs it, but it is not the last known good until its
    /// bake ends with no alarm.
    Baking,
    /// Applied and healthy (and baked): the last known good.
    Succeeded,
    /// Failed without a rollback.
    Failed,
    /// Failed and reverted to the last known good.
    RolledBack,
}

/// One deployment of an environment (`sk=DEPLOY#<started_at>#<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// The environment.
    pub environment: String,
    /// Unique id (e.g. the execution name).
    pub id: String,
    /// When it started; part of the sort key, so it never changes for one deployment.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Where it stands.
    pub status: DeploymentStatus,
    /// The spec version applied.
    pub spec_version: String,
    /// The plan applied (its changes), as produced by the planner; null when it failed before planning.
    #[serde(default)]
    pub plan: Value,
    /// The execution ARN that ran it.
    pub execution: String,
    /// Who started it (GitHub subject, IAM principal, operator).
    pub actor: String,
    /// Why it failed or was rolled back (`Error: cause`), when it did.
    #[serde(default)]
    pub error: Option<String>,
}

/// Where a backup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BackupStatus {
    /// Snapshots requested, not all available yet.
    InProgress,
    /// Every snapshot is available and the manifest is written.
    Completed,
    /// It failed; the record says which snapshots exist.
    Failed,
    /// Pruned by retention; the snapshots are deleted.
    Pruned,
}

/// One backup of an environment (`sk=BACKUP#<created_at>#<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupRecord {
    /// The environment.
    pub environment: String,
    /// Unique id.
    pub id: String,
    /// When it started; part of the sort key.
    pub created_at: DateTime<Utc>,
    /// The snapshot identifiers it made (RDS snapshot ids, ...).
    pub snapshot_ids: Vec<String>,
    /// The S3 key of its manifest, once written.
    pub manifest_key: Option<String>,
    /// SHA-256 (hex) of the manifest's bytes.
    pub manifest_sha256: Option<String>,
    /// Where it stands.
    pub status: BackupStatus,
    /// The execution ARN that made it.
    pub execution: Option<String>,
}

/// The outcome of a DR drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DrillVerdict {
    /// Still running.
    InProgress,
    /// Restored and verified within both targets.
    Met,
    /// Restored and verified, but RTO or RPO missed its target.
    Missed,
    /// The restore or the verification failed.
    Failed,
}

/// One DR drill of an environment (`sk=DRILL#<started_at>#<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillRecord {
    /// The environment.
    pub environment: String,
    /// Unique id.
    pub id: String,
    /// When it started; part of the sort key.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// The RDS instance drilled (absent in records older than the drill rotation).
    #[serde(default)]
    pub instance: Option<String>,
    /// The snapshot restored.
    pub snapshot_id: Option<String>,
    /// Measured recovery time, seconds.
    pub rto_seconds: Option<u64>,
    /// Measured recovery point (age of the data restored), seconds.
    pub rpo_seconds: Option<u64>,
    /// RTO target, seconds.
    pub rto_target_seconds: u64,
    /// RPO target, seconds.
    pub rpo_target_seconds: u64,
    /// The outcome.
    pub verdict: DrillVerdict,
    /// The S3 key of the report.
    pub report_key: Option<String>,
}

/// The last deployment known to be good (kept in the environment's `META` item).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastKnownGood {
    /// The deployment's id.
    pub deployment_id: String,
    /// Its spec version.
    pub spec_version: String,
    /// When it was recorded as good.
    pub recorded_at: DateTime<Utc>,
    /// SHA-256 (hex) of the spec document applied.
    #[serde(default)]
    pub spec_sha256: Option<String>,
}

/// The spec version the environment was last brought to (kept in the environment's `META` item): what
/// drift detection compares the world with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InForce {
    /// The spec version applied.
    pub spec_version: String,
    /// The deployment (or rollback) that applied it.
    pub deployment_id: String,
    /// When it was applied.
    pub applied_at: DateTime<Utc>,
}

/// A health assessment of an environment (`sk=HEALTH#<checked_at>#<id>`), written by the sweep and by
/// deployments' checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthRecord {
    /// The environment.
    pub environment: String,
    /// Unique id.
    pub id: String,
    /// When it was checked; part of the sort key.
    pub checked_at: DateTime<Utc>,
    /// `healthy`, `degraded` or `unhealthy`.
    pub verdict: String,
    /// Every reason, as JSON (see `domain::health::HealthReason`).
    pub reasons: Value,
    /// The execution that checked.
    pub execution: Option<String>,
}

/// A drift check of an environment (`sk=DRIFT#<checked_at>#<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftRecord {
    /// The environment.
    pub environment: String,
    /// Unique id.
    pub id: String,
    /// When it was checked; part of the sort key.
    pub checked_at: DateTime<Utc>,
    /// The spec version compared with.
    pub spec_version: String,
    /// Whether anything differs from the spec.
    pub drifted: bool,
    /// What differs: the changes it would take to return to the spec.
    pub changes: Value,
    /// Policy findings of the plan and of what exists now.
    pub findings: Value,
    /// The report object's key.
    pub report_key: Option<String>,
}

/// A record kept under an environment's partition, sorted by time.
pub trait EnvRecord: Serialize + DeserializeOwned {
    /// The sort-key prefix, e.g. `BACKUP`.
    const PREFIX: &'static str;
    /// The environment it belongs to.
    fn environment(&self) -> &str;
    /// The time that orders it (part of the sort key).
    fn at(&self) -> DateTime<Utc>;
    /// Its id (the rest of the sort key).
    fn id(&self) -> &str;
}

/// `EnvRecord` for records with `environment` and `id` fields, ordered by the named time field.
macro_rules! env_records {
    ($($record:ty => $prefix:literal by $at:ident),* $(,)?) => {$(
        impl EnvRecord for $record {
            const PREFIX: &'static str = $prefix;
            fn environment(&self) -> &str {
                &self.environment
            }
            fn at(&self) -> DateTime<Utc> {
                self.$at
            }
            fn id(&self) -> &str {
                &self.id
            }
        }
    )*};
}

env_records! {
    DeploymentRecord => "DEPLOY" by started_at,
    HealthRecord => "HEALTH" by checked_at,
    DriftRecord => "DRIFT" by checked_at,
    BackupRecord => "BACKUP" by created_at,
    DrillRecord => "DRILL" by started_at,
}

/// The sort key of `record`.
pub fn record_sk<R: EnvRecord>(record: &R) -> String {
    format!("{}#{}#{}", R::PREFIX, rfc3339(record.at()), record.id())
}

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApprovalStatus {
    /// Waiting for a person.
    Pending,
    /// Approved: the change went ahead.
    Approved,
    /// Rejected: nothing changed.
    Rejected,
    /// The workflow ended before anyone answered (timeout, stopped).
    Closed,
}

impl ApprovalStatus {
    /// The status as a person reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Closed => "closed",
        }
    }
}

/// A change waiting for approval (`pk=APPROVAL#<execution ARN>`, `sk=APPROVAL`): found by the execution
/// ARN alone, which is all `opsplane approve EXECUTION` is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// The execution waiting.
    pub execution: String,
    /// The environment.
    pub environment: String,
    /// The Step Functions task token that resumes it.
    pub task_token: String,
    /// The plan waiting, as JSON.
    pub plan: Value,
    /// SHA-256 of the plan's changes: what an approval approves, checked again just before applying.
    #[serde(default)]
    pub plan_sha256: Option<String>,
    /// When it was asked for.
    pub requested_at: DateTime<Utc>,
    /// When the workflow stops waiting (a rejection).
    pub expires_at: DateTime<Utc>,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// Who decided.
    #[serde(default)]
    pub decided_by: Option<String>,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
    /// When.
    #[serde(default)]
    pub decided_at: Option<DateTime<Utc>>,
}

/// One audit event (`pk=AUDIT#<day>`, `sk=<at>#<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique id.
    pub id: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who acted: an execution ARN, a GitHub subject, an IAM principal or `user@host`.
    pub actor: String,
    /// What was done, e.g. `lock.takeover`, `lock.force_release`.
    pub action: String,
    /// The environment concerned, if any.
    pub environment: Option<String>,
    /// The Step Functions execution concerned (ARN), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// How it ended, e.g. `ok`.
    pub result: String,
    /// Anything else worth keeping (previous holder, reason, ...).
    pub details: Value,
}

impl AuditEvent {
    /// One event for tests: an operator's forced release of prod's lock.
    #[cfg(test)]
    pub(crate) fn sample() -> Self {
        use chrono::TimeZone;
        AuditEvent {
            id: "abc123".into(),
            at: Utc.with_ymd_and_hms(2026, 3, 9, 7, 5, 1).unwrap(),
            actor: "alice".into(),
            action: "lock.force_release".into(),
            environment: Some("prod".into()),
            execution: None,
            result: "ok".into(),
            details: serde_json::json!({"reason": "INC-1"}),
        }
    }
}

impl AuditEvent {
    /// A new event with a fresh id.
    pub fn new(
        at: DateTime<Utc>,
        actor: impl Into<String>,
        action: impl Into<String>,
        environment: Option<String>,
        result: impl Into<String>,
        details: Value,
    ) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            at,
            actor: actor.into(),
            action: action.into(),
            environment,
            execution: None,
            result: result.into(),
            details,
        }
    }

    /// The same event naming the execution concerned.
    pub fn with_execution(mut self, execution_arn: impl Into<String>) -> Self {
        self.execution = Some(execution_arn.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::attr::{from_item, to_item};
    use aws_sdk_dynamodb::types::AttributeValue;
    use chrono::TimeZone;

    fn backup() -> BackupRecord {
        BackupRecord {
            environment: "prod".into(),
            id: "b1".into(),
            created_at: Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap(),
            snapshot_ids: vec!["rds:acme-prod-1".into()],
            manifest_key: Some("backups/prod/x/manifest.json".into()),
            manifest_sha256: None,
            status: BackupStatus::Completed,
            execution: None,
        }
    }

    #[test]
    fn records_round_trip_through_items() {
        let rec = backup();
        let mut item = to_item(&rec).unwrap();
        assert!(
            !item.contains_key("manifest_sha256"),
            "nulls are not stored"
        );
        assert_eq!(item["status"], AttributeValue::S("COMPLETED".into()));
        item.insert("pk".into(), AttributeValue::S("ENV#prod".into()));
        item.insert("sk".into(), AttributeValue::S(record_sk(&rec)));
        let back: BackupRecord = from_item(&item).unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn sort_keys_carry_prefix_time_and_id() {
        assert_eq!(record_sk(&backup()), "BACKUP#2026-03-04T05:06:07.000Z#b1");
    }
}
