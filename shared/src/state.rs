//! The state store: one DynamoDB table holding every environment's records, the fence, and the audit log.
//!
//! Keys (see DESIGN.md, State): `pk=ENV#<env>` with `sk=META` (fence, last known good), `DEPLOY#<ts>#<id>`,
//! `BACKUP#<ts>#<id>`, `DRILL#<ts>#<id>`; `pk=AUDIT#<yyyy-mm-dd>`, `sk=<ts>#<id>` for audit events. `<ts>` is
//! fixed-width RFC 3339 in UTC with milliseconds, so sort keys sort by time and a time range is one `BETWEEN`.
//!
//! Every write that changes an environment's records is fenced: one `TransactWriteItems` raises `META.fence`
//! to the caller's lock token on condition that the fence is not newer, checks that the lock item has issued
//! no newer token, and writes the record. A stale holder's write fails with [`StateError::Fenced`] and
//! changes nothing. Records are stored as plain attributes (readable in the console), not as JSON blobs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest as _;
use thiserror::Error;

use crate::audit::AuditArchive;
use crate::aws::Clients;
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::config::Config;
use crate::error::{BoxError, OpsError};

/// The sort key of an environment's metadata item (fence, last known good).
pub const META_SK: &str = "META";
/// The sort key of an environment's lock item (DynamoDB lock backend).
pub const LOCK_SK: &str = "LOCK";
/// How many times a fenced write is retried when DynamoDB cancels it for a conflicting transaction.
const CONFLICT_RETRIES: u32 = 5;

/// The partition key of an environment's items.
pub fn env_pk(environment: &str) -> String {
    format!("ENV#{environment}")
}

/// The state store failed.
#[derive(Debug, Error)]
pub enum StateError {
    /// The caller's fencing token is older than the environment's fence or than a token the lock has issued
    /// since: the caller lost the lock, and nothing was written.
    #[error(
        "write to environment `{environment}` with fencing token {token} rejected: {reason}; nothing was written"
    )]
    Fenced {
        /// The environment.
        environment: String,
        /// The caller's token.
        token: u64,
        /// What was found instead.
        reason: String,
    },
    /// An AWS call failed.
    #[error("DynamoDB {operation} failed")]
    Aws {
        /// The AWS operation.
        operation: &'static str,
        /// Whether AWS throttled the call or failed on its side (5xx): worth retrying with back-off.
        throttled: bool,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// An item could not be read back as its record type.
    #[error("item pk={pk} sk={sk} is malformed: {reason}")]
    Corrupt {
        /// Its partition key.
        pk: String,
        /// Its sort key.
        sk: String,
        /// What is wrong.
        reason: String,
    },
    /// A pagination cursor was not one this store handed out.
    #[error("invalid cursor {0:?}: pass back the `next` cursor of a previous page unchanged")]
    InvalidCursor(String),
    /// An audit event reached the table but its immutable S3 copy was not written (`opsplane audit` reports
    /// the record as missing its copy).
    #[error("audit event {id} is in the table, but its S3 copy was not written")]
    AuditCopy {
        /// The event's id.
        id: String,
        /// Why the copy failed.
        #[source]
        source: BoxError,
    },
}

impl StateError {
    pub(crate) fn aws<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let throttled = crate::aws::is_transient(&err);
        StateError::Aws {
            operation,
            throttled,
            source: Box::new(err),
        }
    }
}

impl From<StateError> for OpsError {
    fn from(err: StateError) -> Self {
        match err {
            StateError::Fenced {
                ref environment, ..
            } => OpsError::LockLost {
                environment: environment.clone(),
                reason: err.to_string(),
            },
            StateError::Aws {
                operation,
                throttled: true,
                source,
            } => OpsError::Throttled { operation, source },
            StateError::Aws {
                operation, source, ..
            } => OpsError::Aws { operation, source },
            StateError::InvalidCursor(_) => OpsError::invalid("cursor", err.to_string()),
            StateError::AuditCopy { source, .. } => OpsError::Aws {
                operation: "PutObject",
                source,
            },
            StateError::Corrupt { .. } => OpsError::Internal(err.to_string()),
        }
    }
}

/// How a deployment ended, or that it has not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    /// Applying.
    InProgress,
    /// Applied and healthy.
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

/// An environment's `META` item.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnvMeta {
    /// The highest fencing token that mutated the environment (0 when none has).
    pub fence: u64,
    /// The last known good deployment.
    pub last_known_good: Option<LastKnownGood>,
    /// The spec version in force.
    pub in_force: Option<InForce>,
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

/// The partition key of an execution's approval.
pub fn approval_pk(execution: &str) -> String {
    format!("APPROVAL#{execution}")
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

impl EnvRecord for DeploymentRecord {
    const PREFIX: &'static str = "DEPLOY";
    fn environment(&self) -> &str {
        &self.environment
    }
    fn at(&self) -> DateTime<Utc> {
        self.started_at
    }
    fn id(&self) -> &str {
        &self.id
    }
}

impl EnvRecord for HealthRecord {
    const PREFIX: &'static str = "HEALTH";
    fn environment(&self) -> &str {
        &self.environment
    }
    fn at(&self) -> DateTime<Utc> {
        self.checked_at
    }
    fn id(&self) -> &str {
        &self.id
    }
}

impl EnvRecord for DriftRecord {
    const PREFIX: &'static str = "DRIFT";
    fn environment(&self) -> &str {
        &self.environment
    }
    fn at(&self) -> DateTime<Utc> {
        self.checked_at
    }
    fn id(&self) -> &str {
        &self.id
    }
}

impl EnvRecord for BackupRecord {
    const PREFIX: &'static str = "BACKUP";
    fn environment(&self) -> &str {
        &self.environment
    }
    fn at(&self) -> DateTime<Utc> {
        self.created_at
    }
    fn id(&self) -> &str {
        &self.id
    }
}

impl EnvRecord for DrillRecord {
    const PREFIX: &'static str = "DRILL";
    fn environment(&self) -> &str {
        &self.environment
    }
    fn at(&self) -> DateTime<Utc> {
        self.started_at
    }
    fn id(&self) -> &str {
        &self.id
    }
}

/// The sort key of `record`.
pub fn record_sk<R: EnvRecord>(record: &R) -> String {
    format!("{}#{}#{}", R::PREFIX, rfc3339(record.at()), record.id())
}

/// An opaque position in a query, handed back to fetch the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    fn from_key(key: &HashMap<String, AttributeValue>) -> Self {
        let json: serde_json::Map<String, Value> = key
            .iter()
            .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), Value::String(s.clone()))))
            .collect();
        Cursor(hex::encode(Value::Object(json).to_string()))
    }

    fn to_key(&self) -> Result<HashMap<String, AttributeValue>, StateError> {
        let bad = || StateError::InvalidCursor(self.0.clone());
        let bytes = hex::decode(&self.0).map_err(|_| bad())?;
        let json: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if !json.contains_key("pk") || !json.contains_key("sk") || json.len() != 2 {
            return Err(bad());
        }
        Ok(json
            .into_iter()
            .map(|(k, v)| (k, AttributeValue::S(v)))
            .collect())
    }

    /// The cursor as a string, to pass through JSON.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A cursor from a string handed out earlier; checked when used.
    pub fn from_string(s: impl Into<String>) -> Self {
        Cursor(s.into())
    }
}

/// Which page to fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many items (DynamoDB may return fewer and a cursor).
    pub limit: Option<u32>,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    /// The first page of at most `limit` items.
    pub fn first(limit: u32) -> Self {
        Self {
            limit: Some(limit),
            cursor: None,
        }
    }
}

/// One page of a query, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The cursor for the next page; `None` on the last page.
    pub next: Option<Cursor>,
}

/// A time range, both ends inclusive; an open end is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Earliest time included.
    pub from: Option<DateTime<Utc>>,
    /// Latest time included.
    pub to: Option<DateTime<Utc>>,
}

impl TimeRange {
    /// Every time.
    pub fn all() -> Self {
        Self::default()
    }
}

/// The state store over one DynamoDB table, with the S3 archive audit events are also written to.
#[derive(Debug, Clone)]
pub struct StateStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    clock: Arc<dyn Clock>,
    audit_archive: Option<AuditArchive>,
}

impl StateStore {
    /// A store over `table`, on the real clock.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            clock: Arc::new(SystemClock),
            audit_archive: None,
        }
    }

    /// The store of `cfg`'s table, copying audit events to `cfg`'s bucket with `cfg`'s audit settings.
    pub fn from_config(cfg: &Config, clients: &Clients) -> Self {
        Self::new(clients.dynamodb.clone(), cfg.table_name.clone()).with_audit_archive(
            AuditArchive::new(clients.s3.clone(), cfg.bucket_name.clone(), cfg.audit),
        )
    }

    /// The same store also writing every audit event to `archive` (S3, Object Lock).
    pub fn with_audit_archive(mut self, archive: AuditArchive) -> Self {
        self.audit_archive = Some(archive);
        self
    }

    /// The archive audit events are copied to, if any.
    pub fn audit_archive(&self) -> Option<&AuditArchive> {
        self.audit_archive.as_ref()
    }

    /// Now, by this store's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The same store reading time from `clock` (audit timestamps, day partitions).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Writes (creates or replaces) `record`, fenced by `token`: fails with [`StateError::Fenced`], writing
    /// nothing, when a newer token has mutated the environment or has been issued by its lock.
    pub async fn put<R: EnvRecord>(&self, record: &R, token: u64) -> Result<(), StateError> {
        let environment = record.environment().to_owned();
        let mut item = to_item(record).map_err(|reason| StateError::Corrupt {
            pk: env_pk(&environment),
            sk: record_sk(record),
            reason,
        })?;
        item.insert("pk".into(), AttributeValue::S(env_pk(&environment)));
        item.insert("sk".into(), AttributeValue::S(record_sk(record)));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .expect("table and item are set");
        self.fenced_write(
            &environment,
            token,
            vec![TransactWriteItem::builder().put(put).build()],
            Vec::new(),
        )
        .await?;
        tracing::info!(
            environment,
            kind = R::PREFIX,
            id = record.id(),
            token,
            "record written"
        );
        Ok(())
    }

    /// Records the last known good deployment in the environment's `META` item, fenced by `token`.
    pub async fn set_last_known_good(
        &self,
        environment: &str,
        lkg: &LastKnownGood,
        token: u64,
    ) -> Result<(), StateError> {
        let value = serde_json::to_value(lkg).map_err(|e| StateError::Corrupt {
            pk: env_pk(environment),
            sk: META_SK.into(),
            reason: e.to_string(),
        })?;
        self.fenced_write(
            environment,
            token,
            Vec::new(),
            vec![("last_known_good", to_attr(&value))],
        )
        .await
    }

    /// Records a deployment's outcome in one fenced transaction: the record, the spec version now in force
    /// and, when it was healthy, the new last known good. Either all of it is written or, for a stale
    /// token, none.
    pub async fn record_deployment(
        &self,
        record: &DeploymentRecord,
        in_force: Option<&InForce>,
        last_known_good: Option<&LastKnownGood>,
        token: u64,
    ) -> Result<(), StateError> {
        let environment = record.environment.clone();
        let corrupt = |reason: String| StateError::Corrupt {
            pk: env_pk(&environment),
            sk: record_sk(record),
            reason,
        };
        let mut item = to_item(record).map_err(corrupt)?;
        item.insert("pk".into(), AttributeValue::S(env_pk(&environment)));
        item.insert("sk".into(), AttributeValue::S(record_sk(record)));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .expect("table and item are set");
        let mut fields = Vec::new();
        if let Some(f) = in_force {
            let v = serde_json::to_value(f).map_err(|e| corrupt(e.to_string()))?;
            fields.push(("spec_in_force", to_attr(&v)));
        }
        if let Some(l) = last_known_good {
            let v = serde_json::to_value(l).map_err(|e| corrupt(e.to_string()))?;
            fields.push(("last_known_good", to_attr(&v)));
        }
        self.fenced_write(
            &environment,
            token,
            vec![TransactWriteItem::builder().put(put).build()],
            fields,
        )
        .await?;
        tracing::info!(
            environment,
            id = record.id,
            status = ?record.status,
            in_force = in_force.map(|f| f.spec_version.as_str()),
            last_known_good = last_known_good.map(|l| l.spec_version.as_str()),
            token,
            "deployment recorded"
        );
        Ok(())
    }

    /// Writes an observation (health, drift) without a fence: it records what was seen, changes nothing,
    /// and runs without the environment's lock.
    pub async fn put_observation<R: EnvRecord>(&self, record: &R) -> Result<(), StateError> {
        let environment = record.environment().to_owned();
        let mut item = to_item(record).map_err(|reason| StateError::Corrupt {
            pk: env_pk(&environment),
            sk: record_sk(record),
            reason,
        })?;
        item.insert("pk".into(), AttributeValue::S(env_pk(&environment)));
        item.insert("sk".into(), AttributeValue::S(record_sk(record)));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StateError::aws("PutItem", e))?;
        tracing::info!(
            environment,
            kind = R::PREFIX,
            id = record.id(),
            "observation written"
        );
        Ok(())
    }

    /// Stores a pending approval (replacing one of the same execution: a retried request).
    pub async fn put_approval(&self, record: &ApprovalRecord) -> Result<(), StateError> {
        let pk = approval_pk(&record.execution);
        let mut item = to_item(record).map_err(|reason| StateError::Corrupt {
            pk: pk.clone(),
            sk: "APPROVAL".into(),
            reason,
        })?;
        item.insert("pk".into(), AttributeValue::S(pk));
        item.insert("sk".into(), AttributeValue::S("APPROVAL".into()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StateError::aws("PutItem", e))?;
        Ok(())
    }

    /// The approval of an execution, if it asked for one.
    pub async fn approval(&self, execution: &str) -> Result<Option<ApprovalRecord>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(approval_pk(execution)))
            .key("sk", AttributeValue::S("APPROVAL".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StateError::aws("GetItem", e))?;
        out.item.as_ref().map(from_item).transpose()
    }

    /// Moves a pending approval to `status`, recording who and why. `Ok(false)` when it was not pending
    /// (already decided or closed): a decision is taken once.
    pub async fn decide_approval(
        &self,
        execution: &str,
        status: ApprovalStatus,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<bool, StateError> {
        let status_value = serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(approval_pk(execution)))
            .key("sk", AttributeValue::S("APPROVAL".into()))
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", AttributeValue::S("PENDING".into()))
            .expression_attribute_values(":s", AttributeValue::S(status_value))
            .expression_attribute_values(":by", AttributeValue::S(actor.to_owned()))
            .expression_attribute_values(":at", AttributeValue::S(rfc3339(self.clock.now())));
        let mut expr = "SET #status = :s, decided_by = :by, decided_at = :at".to_owned();
        if let Some(reason) = reason {
            expr.push_str(", reason = :r");
            update = update.expression_attribute_values(":r", AttributeValue::S(reason.to_owned()));
        }
        match update.update_expression(expr).send().await {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(StateError::aws("UpdateItem", err)),
        }
    }

    /// Raises the environment's fence to `token` without writing a record: an S3-backed lock calls this
    /// when it grants a token, so that writes with older tokens fail from then on.
    pub async fn raise_fence(&self, environment: &str, token: u64) -> Result<(), StateError> {
        self.fenced_write(environment, token, Vec::new(), Vec::new())
            .await
    }

    async fn fenced_write(
        &self,
        environment: &str,
        token: u64,
        extra: Vec<TransactWriteItem>,
        meta_fields: Vec<(&str, AttributeValue)>,
    ) -> Result<(), StateError> {
        let pk = env_pk(environment);
        let key = |sk: &str| {
            HashMap::from([
                ("pk".to_owned(), AttributeValue::S(pk.clone())),
                ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
            ])
        };
        let mut update_expr = "SET #fence = :t".to_owned();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(META_SK)))
            .condition_expression("attribute_not_exists(#fence) OR #fence <= :t")
            .expression_attribute_names("#fence", "fence")
            .expression_attribute_values(":t", AttributeValue::N(token.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (i, (name, value)) in meta_fields.into_iter().enumerate() {
            update_expr.push_str(&format!(", #f{i} = :v{i}"));
            update = update
                .expression_attribute_names(format!("#f{i}"), name)
                .expression_attribute_values(format!(":v{i}"), value);
        }
        let update = update
            .update_expression(update_expr)
            .build()
            .expect("table, key and expression are set");
        // The lock item may have issued a newer token that has not written yet: checking it too closes the
        // window between a takeover and the new holder's first write.
        let lock_check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(LOCK_SK)))
            .condition_expression("attribute_not_exists(#tok) OR #tok <= :t")
            .expression_attribute_names("#tok", "token")
            .expression_attribute_values(":t", AttributeValue::N(token.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("table, key and condition are set");
        let mut items = vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder()
                .condition_check(lock_check)
                .build(),
        ];
        items.extend(extra);

        // The same write always carries the same ClientRequestToken, so sending it again (the SDK's retry
        // of an attempt whose response was lost, our retry below, a retried task) within DynamoDB's 10-minute
        // idempotency window returns success for a write that already committed instead of re-evaluating
        // its conditions, which a takeover since then would fail. A token reused with other parameters is
        // refused (IdempotentParameterMismatch), and the token is derived from all of them.
        // https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
        let request_token = client_request_token(&items);
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(&request_token)
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            // The same token is still being applied (an earlier attempt whose response was lost): asking
            // again once it finishes gives its outcome.
            if matches!(
                err.as_service_error(),
                Some(TransactWriteItemsError::TransactionInProgressException(_))
            ) && attempt < CONFLICT_RETRIES
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                continue;
            }
            let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
                err.as_service_error()
            else {
                return Err(StateError::aws("TransactWriteItems", err));
            };
            let reasons = cancel.cancellation_reasons();
            let failed = |i: usize| {
                reasons
                    .get(i)
                    .filter(|r| r.code() == Some("ConditionalCheckFailed"))
            };
            if let Some(meta) = failed(0) {
                let fence = meta
                    .item()
                    .and_then(|i| i.get("fence"))
                    .and_then(|v| v.as_n().ok())
                    .cloned()
                    .unwrap_or_default();
                return Err(StateError::Fenced {
                    environment: environment.to_owned(),
                    token,
                    reason: format!("the environment's fence is {fence}"),
                });
            }
            if let Some(lock) = failed(1) {
                let newer = lock
                    .item()
                    .and_then(|i| i.get("token"))
                    .and_then(|v| v.as_n().ok())
                    .cloned()
                    .unwrap_or_default();
                return Err(StateError::Fenced {
                    environment: environment.to_owned(),
                    token,
                    reason: format!("the lock has since issued token {newer}"),
                });
            }
            let conflict = reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"));
            if conflict && attempt < CONFLICT_RETRIES {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                continue;
            }
            return Err(StateError::aws("TransactWriteItems", err));
        }
    }

    /// The environment's `META` item (fence 0 and no last known good when it has none).
    pub async fn meta(&self, environment: &str) -> Result<EnvMeta, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(env_pk(environment)))
            .key("sk", AttributeValue::S(META_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StateError::aws("GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(EnvMeta::default());
        };
        let corrupt = |reason: String| StateError::Corrupt {
            pk: env_pk(environment),
            sk: META_SK.into(),
            reason,
        };
        let fence = match item.get("fence") {
            None => 0,
            Some(v) => v
                .as_n()
                .ok()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| corrupt("fence is not a number".into()))?,
        };
        let last_known_good = match item.get("last_known_good") {
            None => None,
            Some(v) => {
                Some(serde_json::from_value(from_attr(v)).map_err(|e| corrupt(e.to_string()))?)
            }
        };
        let in_force = match item.get("spec_in_force") {
            None => None,
            Some(v) => {
                Some(serde_json::from_value(from_attr(v)).map_err(|e| corrupt(e.to_string()))?)
            }
        };
        Ok(EnvMeta {
            fence,
            last_known_good,
            in_force,
        })
    }

    /// The last known good deployment of the environment.
    pub async fn last_known_good(
        &self,
        environment: &str,
    ) -> Result<Option<LastKnownGood>, StateError> {
        Ok(self.meta(environment).await?.last_known_good)
    }

    /// Records of one kind for an environment within `range`, newest first, one page at a time.
    pub async fn list<R: EnvRecord>(
        &self,
        environment: &str,
        range: TimeRange,
        page: PageRequest,
    ) -> Result<Page<R>, StateError> {
        let pk = env_pk(environment);
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .scan_index_forward(false)
            .consistent_read(true)
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .set_limit(page.limit.map(|l| l.min(i32::MAX as u32) as i32));
        let prefix = format!("{}#", R::PREFIX);
        query = match (range.from, range.to) {
            (None, None) => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix)),
            (from, to) => {
                let low = format!("{prefix}{}", from.map(rfc3339).unwrap_or_default());
                // U+10FFFF sorts after any id character, so `to` includes every record at that instant.
                let high = match to {
                    Some(t) => format!("{prefix}{}#{}", rfc3339(t), char::MAX),
                    None => format!("{prefix}{}", char::MAX),
                };
                query
                    .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
                    .expression_attribute_values(":low", AttributeValue::S(low))
                    .expression_attribute_values(":high", AttributeValue::S(high))
            }
        };
        if let Some(cursor) = &page.cursor {
            query = query.set_exclusive_start_key(Some(cursor.to_key()?));
        }
        let out = query
            .send()
            .await
            .map_err(|e| StateError::aws("Query", e))?;
        let items = out
            .items()
            .iter()
            .map(from_item::<R>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            next: out.last_evaluated_key().map(Cursor::from_key),
        })
    }

    /// The newest `n` records of one kind for an environment (follows cursors until it has `n` or none left).
    pub async fn latest<R: EnvRecord>(
        &self,
        environment: &str,
        n: u32,
    ) -> Result<Vec<R>, StateError> {
        let mut all = Vec::new();
        let mut page = PageRequest::first(n);
        loop {
            let got: Page<R> = self
                .list(environment, TimeRange::all(), page.clone())
                .await?;
            all.extend(got.items);
            match got.next {
                Some(next) if (all.len() as u32) < n => {
                    page = PageRequest {
                        limit: Some(n - all.len() as u32),
                        cursor: Some(next),
                    }
                }
                _ => break,
            }
        }
        all.truncate(n as usize);
        Ok(all)
    }

    /// Appends an audit event. Not fenced: the audit log records what happened, including refusals.
    ///
    /// The event goes to the table, then (with an archive) to S3 with an Object Lock retention; a failed copy
    /// is [`StateError::AuditCopy`], and the record stays in the table for `opsplane audit` to report.
    pub async fn append_audit(&self, event: &AuditEvent) -> Result<(), StateError> {
        let mut item = to_item(event).map_err(|reason| StateError::Corrupt {
            pk: audit_pk(event.at.date_naive()),
            sk: event.id.clone(),
            reason,
        })?;
        item.insert(
            "pk".into(),
            AttributeValue::S(audit_pk(event.at.date_naive())),
        );
        item.insert(
            "sk".into(),
            AttributeValue::S(format!("{}#{}", rfc3339(event.at), event.id)),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StateError::aws("PutItem", e))?;
        let copy = match &self.audit_archive {
            None => None,
            Some(archive) => {
                Some(
                    archive
                        .write(event)
                        .await
                        .map_err(|e| StateError::AuditCopy {
                            id: event.id.clone(),
                            source: Box::new(e),
                        })?,
                )
            }
        };
        tracing::info!(
            actor = event.actor,
            action = event.action,
            environment = event.environment.as_deref(),
            result = event.result,
            copy = copy.as_deref(),
            "audit event"
        );
        Ok(())
    }

    /// The audit events of one UTC day, newest first, optionally only those of one environment.
    pub async fn audit_events(
        &self,
        day: NaiveDate,
        environment: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<AuditEvent>, StateError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .scan_index_forward(false)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(audit_pk(day)))
            .set_limit(page.limit.map(|l| l.min(i32::MAX as u32) as i32));
        if let Some(env) = environment {
            query = query
                .filter_expression("environment = :env")
                .expression_attribute_values(":env", AttributeValue::S(env.to_owned()));
        }
        if let Some(cursor) = &page.cursor {
            query = query.set_exclusive_start_key(Some(cursor.to_key()?));
        }
        let out = query
            .send()
            .await
            .map_err(|e| StateError::aws("Query", e))?;
        let items = out
            .items()
            .iter()
            .map(from_item::<AuditEvent>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            next: out.last_evaluated_key().map(Cursor::from_key),
        })
    }

    /// Today's audit events (by this store's clock).
    pub async fn audit_today(
        &self,
        environment: Option<&str>,
    ) -> Result<Vec<AuditEvent>, StateError> {
        self.audit_day(self.clock.now().date_naive(), environment)
            .await
    }

    /// Every audit event of one UTC day, newest first, optionally only those of one environment.
    pub async fn audit_day(
        &self,
        day: NaiveDate,
        environment: Option<&str>,
    ) -> Result<Vec<AuditEvent>, StateError> {
        let mut all = Vec::new();
        let mut page = PageRequest::default();
        loop {
            let got = self.audit_events(day, environment, page).await?;
            all.extend(got.items);
            match got.next {
                Some(next) => {
                    page = PageRequest {
                        limit: None,
                        cursor: Some(next),
                    }
                }
                None => return Ok(all),
            }
        }
    }
}

fn audit_pk(day: NaiveDate) -> String {
    format!("AUDIT#{}", day.format("%Y-%m-%d"))
}

/// A JSON value as a DynamoDB attribute.
pub(crate) fn to_attr(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attr).collect()),
        Value::Object(map) => {
            AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect())
        }
    }
}

/// A DynamoDB attribute as a JSON value (sets become arrays, binaries hex strings).
pub(crate) fn from_attr(attr: &AttributeValue) -> Value {
    match attr {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| n.parse::<u64>().map(Value::from))
            .or_else(|_| n.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(n.clone())),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::L(items) => Value::Array(items.iter().map(from_attr).collect()),
        AttributeValue::M(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), from_attr(v))).collect())
        }
        AttributeValue::Ss(items) => Value::from(items.clone()),
        AttributeValue::Ns(items) => Value::from(items.clone()),
        AttributeValue::B(b) => Value::String(hex::encode(b.as_ref())),
        _ => Value::Null,
    }
}

/// The `ClientRequestToken` of a transaction (at most 36 characters): a digest of everything it writes and
/// checks, so the same write always carries the same token and any other write another.
fn client_request_token(items: &[TransactWriteItem]) -> String {
    let attrs = |m: Option<&HashMap<String, AttributeValue>>| {
        Value::Object(
            m.into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), from_attr(v)))
                .collect(),
        )
    };
    let names = |m: Option<&HashMap<String, String>>| {
        Value::Object(
            m.into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    };
    let parts: Vec<Value> = items
        .iter()
        .map(|item| {
            if let Some(p) = item.put() {
                serde_json::json!({"put": p.table_name(), "item": attrs(Some(p.item())),
                    "if": p.condition_expression(), "names": names(p.expression_attribute_names()),
                    "values": attrs(p.expression_attribute_values())})
            } else if let Some(u) = item.update() {
                serde_json::json!({"update": u.table_name(), "key": attrs(Some(u.key())),
                    "set": u.update_expression(), "if": u.condition_expression(),
                    "names": names(u.expression_attribute_names()),
                    "values": attrs(u.expression_attribute_values())})
            } else if let Some(c) = item.condition_check() {
                serde_json::json!({"check": c.table_name(), "key": attrs(Some(c.key())),
                    "if": c.condition_expression(), "names": names(c.expression_attribute_names()),
                    "values": attrs(c.expression_attribute_values())})
            } else if let Some(d) = item.delete() {
                serde_json::json!({"delete": d.table_name(), "key": attrs(Some(d.key())),
                    "if": d.condition_expression(), "names": names(d.expression_attribute_names()),
                    "values": attrs(d.expression_attribute_values())})
            } else {
                Value::Null
            }
        })
        .collect();
    let digest = sha2::Sha256::digest(crate::idempotency::canonical_json(&Value::Array(parts)));
    hex::encode(digest)[..36].to_owned()
}

/// A record as item attributes (its top-level fields become attributes).
pub(crate) fn to_item<T: Serialize>(record: &T) -> Result<HashMap<String, AttributeValue>, String> {
    match serde_json::to_value(record).map_err(|e| e.to_string())? {
        Value::Object(map) => Ok(map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), to_attr(v)))
            .collect()),
        other => Err(format!("a record must be a JSON object, not {other}")),
    }
}

/// An item read back as a record (keys dropped).
pub(crate) fn from_item<T: DeserializeOwned>(
    item: &HashMap<String, AttributeValue>,
) -> Result<T, StateError> {
    let key = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let map: serde_json::Map<String, Value> = item
        .iter()
        .filter(|(k, _)| k.as_str() != "pk" && k.as_str() != "sk")
        .map(|(k, v)| (k.clone(), from_attr(v)))
        .collect();
    serde_json::from_value(Value::Object(map)).map_err(|e| StateError::Corrupt {
        pk: key("pk"),
        sk: key("sk"),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

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

    #[test]
    fn json_and_attributes_convert_both_ways() {
        let v = json!({"a": [1, -2, 2.5, "x", true, null], "b": {"c": 18446744073709551615u64}});
        assert_eq!(from_attr(&to_attr(&v)), v);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let key = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("ENV#a".into())),
            ("sk".to_owned(), AttributeValue::S("BACKUP#x".into())),
        ]);
        let cursor = Cursor::from_key(&key);
        assert_eq!(Cursor::from_string(cursor.as_str()).to_key().unwrap(), key);
        assert!(matches!(
            Cursor::from_string("zz").to_key(),
            Err(StateError::InvalidCursor(_))
        ));
        assert!(
            Cursor::from_string(hex::encode("{\"pk\":\"a\"}"))
                .to_key()
                .is_err()
        );
    }

    #[test]
    fn fenced_becomes_lock_lost_and_throttling_is_recognised() {
        let err: OpsError = StateError::Fenced {
            environment: "prod".into(),
            token: 3,
            reason: "the environment's fence is 4".into(),
        }
        .into();
        assert_eq!(err.name(), crate::ErrorName::LockLost);
        assert!(err.to_string().contains("fence is 4"), "{err}");
        assert!(crate::aws::is_throttling_code(Some("ThrottlingException")));
        assert!(crate::aws::is_throttling_code(Some(
            "ProvisionedThroughputExceededException"
        )));
        assert!(!crate::aws::is_throttling_code(Some(
            "ConditionalCheckFailedException"
        )));
        assert!(!crate::aws::is_throttling_code(None));
    }
}
