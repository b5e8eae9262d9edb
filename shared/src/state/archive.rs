//! The audit log's immutable half: every audit event's copy in S3 under
//! `audit/<yyyy>/<mm>/<dd>/<ts>-<id>.json`, with an Object Lock retention, written by the store after the
//! table record and read back by [`crate::audit::verify`].

use aws_sdk_s3::primitives::{ByteStream, DateTime as S3DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockMode};
use chrono::{Duration, NaiveDate, Utc};
use thiserror::Error;

use super::error::StateError;
use super::records::AuditEvent;
use crate::aws::objects::ObjectStore;
use crate::clock::rfc3339;
use crate::config::{AuditLockMode, AuditSettings};
use crate::error::BoxError;

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
    pub(crate) async fn keys(&self, day: NaiveDate) -> Result<Vec<String>, AuditError> {
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
    pub(crate) async fn read(
        &self,
        key: &str,
    ) -> Result<Option<(Result<AuditEvent, String>, bool)>, AuditError> {
        let found = ObjectStore::new(self.s3.clone(), self.bucket.clone())
            .read(key)
            .await
            .map_err(|e| AuditError::S3 {
                operation: "GetObject",
                bucket: self.bucket.clone(),
                key: key.to_owned(),
                source: Box::new(e),
            })?;
        Ok(found.map(|o| {
            let event = serde_json::from_slice::<AuditEvent>(&o.bytes).map_err(|e| e.to_string());
            (event, o.retained)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AuditEvent {
        AuditEvent::sample()
    }

    #[test]
    fn keys_sort_by_day_and_time() {
        assert_eq!(
            audit_key(&event()),
            "audit/2026/03/09/2026-03-09T07:05:01.000Z-abc123.json"
        );
        assert_eq!(day_prefix(event().at.date_naive()), "audit/2026/03/09/");
    }
}
