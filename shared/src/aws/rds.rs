//! RDS: manual snapshots (create, describe, copy, delete) and scratch instances (restore, describe, delete).
//!
//! The adapter returns plain values ([`Snapshot`], [`Instance`]) so that the decisions made on them
//! (retention, readiness, teardown) are pure and live in `domain`.

use std::collections::BTreeMap;

use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rds::types::{DbInstance, DbSnapshot, Tag};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::backup::SnapshotInfo;
use crate::error::{BoxError, OpsError};

/// An RDS call failed.
#[derive(Debug, Error)]
pub enum RdsError {
    /// The snapshot or instance does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// `snapshot` or `instance`.
        kind: &'static str,
        /// Its identifier.
        id: String,
    },
    /// RDS throttled the call or failed on its side (5xx), after the SDK's retries.
    #[error("RDS throttled {operation}")]
    Throttled {
        /// The operation.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// Any other failure of the call.
    #[error("RDS {operation} failed")]
    Aws {
        /// The operation.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// RDS answered without a field it always sends.
    #[error("RDS {operation} answered without {field}")]
    Incomplete {
        /// The operation.
        operation: &'static str,
        /// The missing field.
        field: &'static str,
    },
}

impl From<RdsError> for OpsError {
    fn from(err: RdsError) -> Self {
        match err {
            RdsError::NotFound { .. } => OpsError::ResourceNotFound(err.to_string()),
            RdsError::Throttled { operation, source } => OpsError::Throttled { operation, source },
            RdsError::Aws { operation, source } => OpsError::Aws { operation, source },
            RdsError::Incomplete { .. } => OpsError::Internal(err.to_string()),
        }
    }
}

/// The error code of an SDK error, if the service sent one.
fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<String> {
    err.as_service_error()
        .and_then(|e| e.code())
        .map(str::to_owned)
}

fn classify<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> RdsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if super::is_transient(&err) {
        RdsError::Throttled {
            operation,
            source: Box::new(err),
        }
    } else {
        RdsError::Aws {
            operation,
            source: Box::new(err),
        }
    }
}

/// An SDK timestamp as chrono.
pub fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn to_smithy(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs_and_nanos(t.timestamp(), t.timestamp_subsec_nanos())
}

fn tags_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// A DB snapshot, as much of it as opsplane uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Identifier.
    pub id: String,
    /// ARN.
    pub arn: String,
    /// Source DB instance.
    pub instance: String,
    /// Status (`creating`, `available`, ...).
    pub status: String,
    /// Creation time, once stamped.
    pub created_at: Option<DateTime<Utc>>,
    /// `manual` or `automated`.
    pub snapshot_type: String,
    /// Engine.
    pub engine: Option<String>,
    /// Engine version.
    pub engine_version: Option<String>,
    /// Allocated storage, GiB.
    pub allocated_storage_gb: Option<i32>,
    /// Whether the storage is encrypted.
    pub encrypted: Option<bool>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

impl Snapshot {
    fn from_sdk(s: &DbSnapshot) -> Option<Self> {
        Some(Self {
            id: s.db_snapshot_identifier()?.to_owned(),
            arn: s.db_snapshot_arn().unwrap_or_default().to_owned(),
            instance: s.db_instance_identifier().unwrap_or_default().to_owned(),
            status: s.status().unwrap_or_default().to_owned(),
            created_at: s.snapshot_create_time().and_then(to_chrono),
            snapshot_type: s.snapshot_type().unwrap_or_default().to_owned(),
            engine: s.engine().map(str::to_owned),
            engine_version: s.engine_version().map(str::to_owned),
            allocated_storage_gb: s.allocated_storage(),
            encrypted: s.encrypted(),
            tags: tags_map(s.tag_list()),
        })
    }

    /// The view retention decides on.
    pub fn info(&self) -> SnapshotInfo {
        SnapshotInfo {
            id: self.id.clone(),
            instance: self.instance.clone(),
            created_at: self.created_at,
            status: self.status.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// A DB instance, as much of it as opsplane uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Identifier.
    pub id: String,
    /// Status (`creating`, `available`, `deleting`, ...).
    pub status: String,
    /// Instance class.
    pub class: String,
    /// Endpoint address and port, once RDS has one.
    pub endpoint: Option<(String, u16)>,
    /// Creation time.
    pub created_at: Option<DateTime<Utc>>,
    /// The latest time a point-in-time restore can reach.
    pub latest_restorable_time: Option<DateTime<Utc>>,
    /// Publicly accessible (`None` when RDS does not say).
    pub publicly_accessible: Option<bool>,
    /// Deletion protection.
    pub deletion_protection: Option<bool>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

impl Instance {
    fn from_sdk(i: &DbInstance) -> Option<Self> {
        Some(Self {
            id: i.db_instance_identifier()?.to_owned(),
            status: i.db_instance_status().unwrap_or_default().to_owned(),
            class: i.db_instance_class().unwrap_or_default().to_owned(),
            endpoint: i
                .endpoint()
                .and_then(|e| Some((e.address()?.to_owned(), u16::try_from(e.port()?).ok()?))),
            created_at: i.instance_create_time().and_then(to_chrono),
            latest_restorable_time: i.latest_restorable_time().and_then(to_chrono),
            publicly_accessible: i.publicly_accessible(),
            deletion_protection: i.deletion_protection(),
            tags: tags_map(i.tag_list()),
        })
    }
}

/// How a scratch instance is restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreSource {
    /// From a snapshot.
    Snapshot(String),
    /// From an instance's transaction logs, to a point in time.
    PointInTime {
        /// The source instance.
        instance: String,
        /// The time to restore to.
        at: DateTime<Utc>,
    },
}

/// The RDS adapter over one regional client.
#[derive(Debug, Clone)]
pub struct Rds {
    client: aws_sdk_rds::Client,
}

impl Rds {
    /// An adapter over `client`.
    pub fn new(client: aws_sdk_rds::Client) -> Self {
        Self { client }
    }

    /// The same adapter talking to another region (for snapshot copies).
    pub fn in_region(&self, region: &str) -> Self {
        let conf = self
            .client
            .config()
            .to_builder()
            .region(aws_sdk_rds::config::Region::new(region.to_owned()))
            .build();
        Self {
            client: aws_sdk_rds::Client::from_conf(conf),
        }
    }

    /// Starts a manual snapshot. Idempotent: when a snapshot of that identifier already exists (a retried
    /// call), it is described and returned instead.
    pub async fn create_snapshot(
        &self,
        instance: &str,
        snapshot_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Snapshot, RdsError> {
        let op = "CreateDBSnapshot";
        match self
            .client
            .create_db_snapshot()
            .db_instance_identifier(instance)
            .db_snapshot_identifier(snapshot_id)
            .set_tags(Some(to_tags(tags)))
            .send()
            .await
        {
            Ok(out) => out
                .db_snapshot()
                .and_then(Snapshot::from_sdk)
                .ok_or(RdsError::Incomplete {
                    operation: op,
                    field: "DBSnapshot",
                }),
            Err(err) => match code(&err).as_deref() {
                Some("DBSnapshotAlreadyExists" | "DBSnapshotAlreadyExistsFault") => self
                    .snapshot(snapshot_id)
                    .await?
                    .ok_or_else(|| RdsError::NotFound {
                        kind: "snapshot",
                        id: snapshot_id.to_owned(),
                    }),
                Some("DBInstanceNotFound" | "DBInstanceNotFoundFault") => Err(RdsError::NotFound {
                    kind: "instance",
                    id: instance.to_owned(),
                }),
                _ => Err(classify(op, err)),
            },
        }
    }

    /// Describes one snapshot; `None` when it does not exist.
    pub async fn snapshot(&self, snapshot_id: &str) -> Result<Option<Snapshot>, RdsError> {
        match self
            .client
            .describe_db_snapshots()
            .db_snapshot_identifier(snapshot_id)
            .send()
            .await
        {
            Ok(out) => Ok(out.db_snapshots().iter().find_map(Snapshot::from_sdk)),
            Err(err)
                if matches!(
                    code(&err).as_deref(),
                    Some("DBSnapshotNotFound" | "DBSnapshotNotFoundFault")
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(classify("DescribeDBSnapshots", err)),
        }
    }

    /// Every manual snapshot, of one instance or of all, with tags.
    pub async fn manual_snapshots(
        &self,
        instance: Option<&str>,
    ) -> Result<Vec<Snapshot>, RdsError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_db_snapshots()
                .snapshot_type("manual")
                .set_db_instance_identifier(instance.map(str::to_owned))
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| classify("DescribeDBSnapshots", e))?;
            out.extend(
                page.db_snapshots()
                    .iter()
                    .filter_map(Snapshot::from_sdk)
                    // Some endpoints ignore SnapshotType when an instance is named.
                    .filter(|s| s.snapshot_type.is_empty() || s.snapshot_type == "manual"),
            );
            match page.marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Copies a snapshot into this adapter's region from `source_arn` (in another region), keeping its tags.
    pub async fn copy_snapshot_here(
        &self,
        source_arn: &str,
        target_id: &str,
    ) -> Result<Snapshot, RdsError> {
        let op = "CopyDBSnapshot";
        match self
            .client
            .copy_db_snapshot()
            .source_db_snapshot_identifier(source_arn)
            .target_db_snapshot_identifier(target_id)
            .copy_tags(true)
            .send()
            .await
        {
            Ok(out) => out
                .db_snapshot()
                .and_then(Snapshot::from_sdk)
                .ok_or(RdsError::Incomplete {
                    operation: op,
                    field: "DBSnapshot",
                }),
            Err(err)
                if matches!(
                    code(&err).as_deref(),
                    Some("DBSnapshotAlreadyExists" | "DBSnapshotAlreadyExistsFault")
                ) =>
            {
                self.snapshot(target_id)
                    .await?
                    .ok_or_else(|| RdsError::NotFound {
                        kind: "snapshot",
                        id: target_id.to_owned(),
                    })
            }
            Err(err) => Err(classify(op, err)),
        }
    }

    /// Deletes a snapshot. `Ok(false)` when it was already gone.
    pub async fn delete_snapshot(&self, snapshot_id: &str) -> Result<bool, RdsError> {
        match self
            .client
            .delete_db_snapshot()
            .db_snapshot_identifier(snapshot_id)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err)
                if matches!(
                    code(&err).as_deref(),
                    Some("DBSnapshotNotFound" | "DBSnapshotNotFoundFault")
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(classify("DeleteDBSnapshot", err)),
        }
    }

    /// Restores a scratch instance: never publicly accessible, no deletion protection, tagged. Idempotent:
    /// when the instance already exists (a retried call), it is described and returned.
    pub async fn restore(
        &self,
        source: &RestoreSource,
        target_id: &str,
        class: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Instance, RdsError> {
        let result = match source {
            RestoreSource::Snapshot(snapshot) => self
                .client
                .restore_db_instance_from_db_snapshot()
                .db_instance_identifier(target_id)
                .db_snapshot_identifier(snapshot)
                .db_instance_class(class)
                .publicly_accessible(false)
                .deletion_protection(false)
                .set_tags(Some(to_tags(tags)))
                .send()
                .await
                .map(|o| o.db_instance().and_then(Instance::from_sdk))
                .map_err(|e| (code(&e), classify("RestoreDBInstanceFromDBSnapshot", e))),
            RestoreSource::PointInTime { instance, at } => self
                .client
                .restore_db_instance_to_point_in_time()
                .source_db_instance_identifier(instance)
                .target_db_instance_identifier(target_id)
                .restore_time(to_smithy(*at))
                .db_instance_class(class)
                .publicly_accessible(false)
                .deletion_protection(false)
                .set_tags(Some(to_tags(tags)))
                .send()
                .await
                .map(|o| o.db_instance().and_then(Instance::from_sdk))
                .map_err(|e| (code(&e), classify("RestoreDBInstanceToPointInTime", e))),
        };
        match result {
            Ok(Some(i)) => Ok(i),
            Ok(None) => Err(RdsError::Incomplete {
                operation: "RestoreDBInstance",
                field: "DBInstance",
            }),
            Err((Some(c), _))
                if c == "DBInstanceAlreadyExists" || c == "DBInstanceAlreadyExistsFault" =>
            {
                self.instance(target_id)
                    .await?
                    .ok_or_else(|| RdsError::NotFound {
                        kind: "instance",
                        id: target_id.to_owned(),
                    })
            }
            Err((Some(c), _))
                if c.starts_with("DBSnapshotNotFound") || c.starts_with("DBInstanceNotFound") =>
            {
                Err(RdsError::NotFound {
                    kind: if c.starts_with("DBSnapshot") {
                        "snapshot"
                    } else {
                        "instance"
                    },
                    id: match source {
                        RestoreSource::Snapshot(s) => s.clone(),
                        RestoreSource::PointInTime { instance, .. } => instance.clone(),
                    },
                })
            }
            Err((_, e)) => Err(e),
        }
    }

    /// Describes one instance; `None` when it does not exist.
    pub async fn instance(&self, id: &str) -> Result<Option<Instance>, RdsError> {
        match self
            .client
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(out) => Ok(out.db_instances().iter().find_map(Instance::from_sdk)),
            Err(err)
                if matches!(
                    code(&err).as_deref(),
                    Some("DBInstanceNotFound" | "DBInstanceNotFoundFault")
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(classify("DescribeDBInstances", err)),
        }
    }

    /// Every instance carrying the tag `key` (any value).
    pub async fn instances_tagged(&self, key: &str) -> Result<Vec<Instance>, RdsError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_db_instances()
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| classify("DescribeDBInstances", e))?;
            out.extend(
                page.db_instances()
                    .iter()
                    .filter_map(Instance::from_sdk)
                    .filter(|i| i.tags.contains_key(key)),
            );
            match page.marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Deletes an instance without a final snapshot (scratch instances only). `Ok(false)` when it was
    /// already gone.
    pub async fn delete_instance(&self, id: &str) -> Result<bool, RdsError> {
        match self
            .client
            .delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(true)
            .delete_automated_backups(true)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err)
                if matches!(
                    code(&err).as_deref(),
                    Some("DBInstanceNotFound" | "DBInstanceNotFoundFault")
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(classify("DeleteDBInstance", err)),
        }
    }
}
