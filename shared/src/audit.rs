//! The audit trail no one can rewrite: every audit event is written to the table (queryable) and to S3 under
//! `audit/<yyyy>/<mm>/<dd>/<ts>-<id>.json` with an Object Lock retention (immutable), and [`verify`] checks
//! that the two agree.
//!
//! The table copy is written first, then the S3 copy: an event always reaches the queryable log, and an S3
//! failure leaves a record [`verify`] reports as [`CopyStatus::MissingCopy`]. Whoever can write the table
//! can delete or change a record there, but not the locked S3 version, so a deleted record shows up as
//! [`Discrepancy::NotInTable`] and a changed one as [`CopyStatus::Differs`].

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::{ByteStream, DateTime as S3DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockMode};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use thiserror::Error;

use crate::clock::rfc3339;
use crate::config::{AuditLockMode, AuditSettings};
use crate::error::BoxError;
use crate::state::{AuditEvent, StateError, StateStore};

/// The key prefix of audit copies.
pub const AUDIT_PREFIX: &str = "audit/";

/// The prefix of one UTC day's audit copies.
pub fn day_prefix(day: NaiveDate) -> String {
    format!("{AUDIT_PREFIX}{}/", day.format("%Y/%m/%d"))
}

/// The key of an event's S3 copy: `audit/<yyyy>/<mm>/<dd>/<ts>-<id>.json`, sorted by time within a day.
pub fn audit_key(event: &AuditEvent) -> String {
    format!(
        "{}{}-{}.json",
        day_prefix(event.at.date_naive()),
        rfc3339(event.at),
        event.id
    )
}

/// Writing or reading an audit copy failed.
#[derive(Debug, Error)]
pub enum AuditError {
    /// An S3 call failed.
    #[error("S3 {operation} on s3://{bucket}/{key} failed")]
    S3 {
        /// The operation.
        operation: &'static str,
        /// The bucket.
        bucket: String,
        /// The key or prefix.
        key: String,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// The table could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// `--since` is after now or the range is too long to list.
    #[error("invalid range: {0}")]
    Range(String),
}

/// Writes audit copies to S3 with Object Lock retention.
#[derive(Debug, Clone)]
pub struct AuditArchive {
    s3: aws_sdk_s3::Client,
    bucket: String,
    settings: AuditSettings,
}

impl AuditArchive {
    /// The archive in `bucket` (bootstrapped: versioned, Object Lock enabled).
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>, settings: AuditSettings) -> Self {
        Self {
            s3,
            bucket: bucket.into(),
            settings,
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Writes `event`'s copy, locked until `retention_days` after now, and returns its key.
    pub async fn write(&self, event: &AuditEvent) -> Result<String, AuditError> {
        let key = audit_key(event);
        let body = serde_json::to_vec(event).expect("an audit event serialises");
        // S3 checks the retain-until date against its own clock, so it counts from the wall clock, not from
        // the event's time (which a test clock may have put in the past).
        let until = Utc::now() + Duration::days(i64::from(self.settings.retention_days));
        let mode = match self.settings.lock_mode {
            AuditLockMode::Governance => ObjectLockMode::Governance,
            AuditLockMode::Compliance => ObjectLockMode::Compliance,
        };
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            // S3 takes a locked upload only with an integrity checksum.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .object_lock_mode(mode)
            .object_lock_retain_until_date(S3DateTime::from_secs(until.timestamp()))
            .send()
            .await
            .map_err(|e| AuditError::S3 {
                operation: "PutObject",
                bucket: self.bucket.clone(),
                key: key.clone(),
                source: Box::new(e),
            })?;
        Ok(key)
    }

    /// The keys of one day's copies.
    async fn keys(&self, day: NaiveDate) -> Result<Vec<String>, AuditError> {
        let prefix = day_prefix(day);
        let mut keys = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AuditError::S3 {
                operation: "ListObjectsV2",
                bucket: self.bucket.clone(),
                key: prefix.clone(),
                source: Box::new(e),
            })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        Ok(keys)
    }

    /// A copy's event and whether it carries a retention, `None` when there is no such object.
    async fn read(
        &self,
        key: &str,
    ) -> Result<Option<(Result<AuditEvent, String>, bool)>, AuditError> {
        let out = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.code() == Some("NoSuchKey") => return Ok(None),
            Err(e) => {
                return Err(AuditError::S3 {
                    operation: "GetObject",
                    bucket: self.bucket.clone(),
                    key: key.to_owned(),
                    source: Box::new(e),
                });
            }
        };
        let locked =
            out.object_lock_mode().is_some() && out.object_lock_retain_until_date().is_some();
        let bytes = out.body.collect().await.map_err(|e| AuditError::S3 {
            operation: "GetObject",
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            source: Box::new(e),
        })?;
        let event =
            serde_json::from_slice::<AuditEvent>(&bytes.into_bytes()).map_err(|e| e.to_string());
        Ok(Some((event, locked)))
    }
}

/// How a table record's S3 copy compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum CopyStatus {
    /// The copy exists, is locked and says the same.
    Verified,
    /// There is no copy.
    MissingCopy,
    /// The copy says something else (the fields that differ).
    Differs(Vec<String>),
    /// The copy carries no Object Lock retention.
    NotLocked,
    /// The copy is not an audit event.
    Unreadable(String),
}

/// One table record and its copy's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// The event, as the table has it.
    pub event: AuditEvent,
    /// The S3 key its copy has (or should have).
    pub key: String,
    /// How the copy compares.
    pub status: CopyStatus,
}

/// Something in S3 the table does not account for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Discrepancy {
    /// A copy of the environment's whose table record is gone.
    NotInTable {
        /// The copy's key.
        key: String,
        /// The event it holds.
        event: AuditEvent,
    },
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditReport {
    /// The environment.
    pub environment: String,
    /// The start of the range.
    pub since: DateTime<Utc>,
    /// Every table record in the range, oldest first, with its copy's status.
    pub entries: Vec<AuditEntry>,
    /// Copies without a table record.
    pub discrepancies: Vec<Discrepancy>,
}

impl AuditReport {
    /// Whether table and S3 agree on everything.
    pub fn agrees(&self) -> bool {
        self.discrepancies.is_empty()
            && self
                .entries
                .iter()
                .all(|e| e.status == CopyStatus::Verified)
    }
}

/// The longest range [`verify`] lists, in days (one table query and one S3 listing per day).
pub const MAX_DAYS: i64 = 3660;

fn differing_fields(table: &AuditEvent, copy: &AuditEvent) -> Vec<String> {
    let mut fields = Vec::new();
    let mut check = |name: &str, same: bool| {
        if !same {
            fields.push(name.to_owned());
        }
    };
    check("id", table.id == copy.id);
    check("at", table.at == copy.at);
    check("actor", table.actor == copy.actor);
    check("action", table.action == copy.action);
    check("environment", table.environment == copy.environment);
    check("execution", table.execution == copy.execution);
    check("result", table.result == copy.result);
    check("details", table.details == copy.details);
    fields
}

/// Lists `environment`'s audit events from `since` to the store's now, and checks each table record against
/// its S3 copy, and each copy against the table.
pub async fn verify(
    store: &StateStore,
    archive: &AuditArchive,
    environment: &str,
    since: DateTime<Utc>,
) -> Result<AuditReport, AuditError> {
    let now = store.now();
    if since > now {
        return Err(AuditError::Range(format!(
            "--since {} is after now ({})",
            rfc3339(since),
            rfc3339(now)
        )));
    }
    if (now - since).num_days() > MAX_DAYS {
        return Err(AuditError::Range(format!(
            "at most {MAX_DAYS} days at once; choose a later --since"
        )));
    }
    let mut entries = Vec::new();
    let mut discrepancies = Vec::new();
    let mut day = since.date_naive();
    while day <= now.date_naive() {
        let mut in_table = store.audit_day(day, Some(environment)).await?;
        in_table.retain(|e| e.at >= since);
        in_table.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        let keys = archive.keys(day).await?;
        let expected: std::collections::HashSet<String> = in_table.iter().map(audit_key).collect();
        for event in in_table {
            let key = audit_key(&event);
            let status = if !keys.contains(&key) {
                CopyStatus::MissingCopy
            } else {
                match archive.read(&key).await? {
                    None => CopyStatus::MissingCopy,
                    Some((Err(e), _)) => CopyStatus::Unreadable(e),
                    Some((Ok(copy), locked)) => {
                        let differs = differing_fields(&event, &copy);
                        if !differs.is_empty() {
                            CopyStatus::Differs(differs)
                        } else if !locked {
                            CopyStatus::NotLocked
                        } else {
                            CopyStatus::Verified
                        }
                    }
                }
            };
            entries.push(AuditEntry { event, key, status });
        }
        // Copies of this environment with no table record: a record deleted from the table.
        for key in keys.iter().filter(|k| !expected.contains(*k)) {
            if let Some((Ok(copy), _)) = archive.read(key).await?
                && copy.environment.as_deref() == Some(environment)
                && copy.at >= since
            {
                discrepancies.push(Discrepancy::NotInTable {
                    key: key.clone(),
                    event: copy,
                });
            }
        }
        day = day.succ_opt().expect("a day before the end of time");
    }
    tracing::info!(
        environment,
        events = entries.len(),
        discrepancies = discrepancies.len(),
        "audit verified"
    );
    Ok(AuditReport {
        environment: environment.to_owned(),
        since,
        entries,
        discrepancies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn event() -> AuditEvent {
        AuditEvent {
            id: "abc123".into(),
            at: Utc.with_ymd_and_hms(2026, 3, 9, 7, 5, 1).unwrap(),
            actor: "alice".into(),
            action: "lock.force_release".into(),
            environment: Some("prod".into()),
            execution: None,
            result: "ok".into(),
            details: json!({"reason": "INC-1"}),
        }
    }

    #[test]
    fn keys_sort_by_day_and_time() {
        assert_eq!(
            audit_key(&event()),
            "audit/2026/03/09/2026-03-09T07:05:01.000Z-abc123.json"
        );
        assert_eq!(day_prefix(event().at.date_naive()), "audit/2026/03/09/");
    }

    #[test]
    fn differences_are_named_by_field() {
        let mut other = event();
        assert!(differing_fields(&event(), &other).is_empty());
        other.result = "denied".into();
        other.details = json!({});
        assert_eq!(differing_fields(&event(), &other), ["result", "details"]);
    }
}
