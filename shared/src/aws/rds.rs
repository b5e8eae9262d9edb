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
use crate::domain::plan::{ActualInstance, DEFAULT_STORAGE_GB};
use crate::domain::spec::RdsSpec;
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
    /// RDS refused the call in the resource's current status (`InvalidDBInstanceState`: an instance still
    /// `creating`, `backing-up` or `modifying`; `InvalidDBSnapshotState`): worth asking again once it is
    /// `available`.
    #[error("RDS refused {operation} for now: {message}")]
    Busy {
        /// The operation.
        operation: &'static str,
        /// RDS's message, which names the resource and its status.
        message: String,
    },
    /// RDS refused the call because an account quota would be exceeded (`SnapshotQuotaExceeded`).
    #[error("RDS refused {operation}: {message}")]
    Quota {
        /// The operation.
        operation: &'static str,
        /// RDS's message.
        message: String,
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
            RdsError::Busy { .. } => OpsError::NotReady(err.to_string()),
            RdsError::Quota { .. } => OpsError::QuotaExceeded(err.to_string()),
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
    let message = || {
        err.as_service_error()
            .and_then(|e| e.message())
            .unwrap_or_default()
            .to_owned()
    };
    // The refusals RDS makes in a status or at a quota (RDS API reference, Common Errors and each
    // operation's Errors section).
    match code(&err).as_deref() {
        Some(
            "InvalidDBInstanceState"
            | "InvalidDBInstanceStateFault"
            | "InvalidDBSnapshotState"
            | "InvalidDBSnapshotStateFault",
        ) => {
            return RdsError::Busy {
                operation,
                message: message(),
            };
        }
        // The same code also refuses a copy while too many cross-Region copies are in progress to the
        // destination ("Cannot copy more than 5 snapshots across regions"): a slot frees up as copies finish.
        Some("SnapshotQuotaExceeded" | "SnapshotQuotaExceededFault")
            if message().contains("across regions") =>
        {
            return RdsError::Busy {
                operation,
                message: message(),
            };
        }
        Some("SnapshotQuotaExceeded" | "SnapshotQuotaExceededFault") => {
            return RdsError::Quota {
                operation,
                message: message(),
            };
        }
        _ => {}
    }
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
    /// `OriginalSnapshotCreateTime`: for a copy, its source's creation time.
    pub original_created_at: Option<DateTime<Utc>>,
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
            original_created_at: s.original_snapshot_create_time().and_then(to_chrono),
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
            original_created_at: self.original_created_at,
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
    /// Where it sits: its DB subnet group and VPC security groups.
    #[serde(default)]
    pub network: Network,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// The network of a DB instance: what a restore must name to land beside its source. A restore that names
/// no DB subnet group lands in the default VPC (or fails where the account has none), one that names no
/// security groups gets its VPC's default group (RestoreDBInstanceFromDBSnapshot API reference).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// The DB subnet group's name (`None`: RDS reported none).
    pub subnet_group: Option<String>,
    /// The VPC security group ids.
    pub security_group_ids: Vec<String>,
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
            network: Network {
                subnet_group: i
                    .db_subnet_group()
                    .and_then(|g| g.db_subnet_group_name())
                    .map(str::to_owned),
                security_group_ids: i
                    .vpc_security_groups()
                    .iter()
                    .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                    .collect(),
            },
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

    /// The account's manual DB snapshot quota in this adapter's Region, `(used, max)`, as
    /// `DescribeAccountAttributes` reports it (`ManualSnapshots`); `None` when RDS does not report it.
    pub async fn manual_snapshot_quota(&self) -> Result<Option<(i64, i64)>, RdsError> {
        let answer = self
            .client
            .describe_account_attributes()
            .send()
            .await
            .map_err(|e| classify("DescribeAccountAttributes", e))?;
        Ok(answer
            .account_quotas()
            .iter()
            .find(|q| q.account_quota_name() == Some("ManualSnapshots"))
            .map(|q| (q.used().unwrap_or_default(), q.max().unwrap_or_default())))
    }

    /// Restores a scratch instance: never publicly accessible, no deletion protection, tagged. Idempotent:
    /// when the instance already exists (a retried call), it is described and returned.
    pub async fn restore(
        &self,
        source: &RestoreSource,
        target_id: &str,
        class: &str,
        network: &Network,
        tags: &BTreeMap<String, String>,
    ) -> Result<Instance, RdsError> {
        let security_groups =
            (!network.security_group_ids.is_empty()).then(|| network.security_group_ids.clone());
        let result = match source {
            RestoreSource::Snapshot(snapshot) => self
                .client
                .restore_db_instance_from_db_snapshot()
                .db_instance_identifier(target_id)
                .db_snapshot_identifier(snapshot)
                .db_instance_class(class)
                .set_db_subnet_group_name(network.subnet_group.clone())
                .set_vpc_security_group_ids(security_groups.clone())
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
                .set_db_subnet_group_name(network.subnet_group.clone())
                .set_vpc_security_group_ids(security_groups)
                .publicly_accessible(false)
                .deletion_protection(false)
                .set_tags(Some(to_tags(tags)))
                .send()
                .await
                .map(|o| o.db_instance().and_then(Instance::from_sdk))
                .map_err(|e| (code(&e), classify("RestoreDBInstanceToPointInTime", e))),
        };
        match result {
            // The request asked for no deletion protection; an implementation that copied it from the
            // snapshot anyway would leave a scratch instance nobody can delete.
            Ok(Some(i)) if i.deletion_protection == Some(true) => {
                self.unprotect(target_id).await?;
                Ok(Instance {
                    deletion_protection: Some(false),
                    ..i
                })
            }
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
    /// already gone. A scratch instance that came up with deletion protection (restored from a snapshot
    /// of a protected instance by an implementation that copies the setting) has it turned off first:
    /// a drill always cleans up.
    pub async fn delete_instance(&self, id: &str) -> Result<bool, RdsError> {
        match self.delete_unprotected(id).await {
            Err(err) if is_protected(&err) => {
                self.unprotect(id).await?;
                self.delete_unprotected(id).await
            }
            other => other,
        }
    }

    async fn unprotect(&self, id: &str) -> Result<(), RdsError> {
        self.client
            .modify_db_instance()
            .db_instance_identifier(id)
            .deletion_protection(false)
            .apply_immediately(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ModifyDBInstance", e))
    }

    async fn delete_unprotected(&self, id: &str) -> Result<bool, RdsError> {
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

/// The settings a `ModifyDBInstance` call changes; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceModification {
    /// Instance class.
    pub instance_class: Option<String>,
    /// Multi-AZ.
    pub multi_az: Option<bool>,
    /// Automated backup retention, days.
    pub backup_retention_days: Option<u32>,
    /// Deletion protection.
    pub deletion_protection: Option<bool>,
    /// Public accessibility.
    pub publicly_accessible: Option<bool>,
    /// Allocated storage, GiB (grow only).
    pub allocated_storage_gb: Option<u32>,
    /// Engine version (upgrade only).
    pub engine_version: Option<String>,
}

impl InstanceModification {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

fn pending_fields(p: &aws_sdk_rds::types::PendingModifiedValues) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |set: bool, name: &str| {
        if set {
            out.push(name.to_owned());
        }
    };
    push(p.db_instance_class().is_some(), "DBInstanceClass");
    push(p.allocated_storage().is_some(), "AllocatedStorage");
    push(p.multi_az().is_some(), "MultiAZ");
    push(p.engine_version().is_some(), "EngineVersion");
    push(
        p.backup_retention_period().is_some(),
        "BackupRetentionPeriod",
    );
    push(p.storage_type().is_some(), "StorageType");
    push(p.iops().is_some(), "Iops");
    out
}

/// An instance as the planner sees it.
fn actual_from_sdk(i: &DbInstance) -> Option<ActualInstance> {
    Some(ActualInstance {
        identifier: i.db_instance_identifier()?.to_owned(),
        status: i.db_instance_status().unwrap_or_default().to_owned(),
        instance_class: i.db_instance_class().unwrap_or_default().to_owned(),
        engine: i.engine().unwrap_or_default().to_owned(),
        engine_version: i.engine_version().map(str::to_owned),
        allocated_storage_gb: i.allocated_storage().and_then(|g| u32::try_from(g).ok()),
        multi_az: i.multi_az(),
        backup_retention_days: i
            .backup_retention_period()
            .and_then(|d| u32::try_from(d).ok()),
        deletion_protection: i.deletion_protection(),
        storage_encrypted: i.storage_encrypted(),
        publicly_accessible: i.publicly_accessible(),
        pending: i
            .pending_modified_values()
            .map(pending_fields)
            .unwrap_or_default(),
        tags: tags_map(i.tag_list()),
    })
}

impl Rds {
    /// Describes one instance for planning and health; `None` when it does not exist.
    pub async fn actual(&self, id: &str) -> Result<Option<ActualInstance>, RdsError> {
        match self
            .client
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(out) => Ok(out.db_instances().iter().find_map(actual_from_sdk)),
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

    /// Creates an instance as the spec describes it, encrypted and private unless the spec says otherwise
    /// (the plan refuses otherwise before this is called), the master password kept by RDS in Secrets
    /// Manager. Idempotent: an instance of that identifier that already exists (a retried call) is
    /// described instead.
    pub async fn create_instance(
        &self,
        db: &RdsSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<ActualInstance, RdsError> {
        let op = "CreateDBInstance";
        let result = self
            .client
            .create_db_instance()
            .db_instance_identifier(&db.identifier)
            .db_instance_class(&db.instance_class)
            .engine(&db.engine)
            .set_engine_version(db.engine_version.clone())
            .allocated_storage(
                i32::try_from(db.allocated_storage_gb.unwrap_or(DEFAULT_STORAGE_GB)).unwrap_or(20),
            )
            .master_username(db.master_username.as_deref().unwrap_or("opsplane"))
            .manage_master_user_password(true)
            .set_multi_az(db.multi_az)
            .set_backup_retention_period(
                db.backup_retention_days.and_then(|d| i32::try_from(d).ok()),
            )
            .set_deletion_protection(db.deletion_protection)
            .storage_encrypted(db.storage_encrypted.unwrap_or(true))
            .publicly_accessible(db.publicly_accessible.unwrap_or(false))
            .set_tags(Some(to_tags(tags)))
            .send()
            .await;
        match result {
            Ok(out) => out
                .db_instance()
                .and_then(actual_from_sdk)
                .ok_or(RdsError::Incomplete {
                    operation: op,
                    field: "DBInstance",
                }),
            Err(err)
                if matches!(
                    code(&err).as_deref(),
                    Some("DBInstanceAlreadyExists" | "DBInstanceAlreadyExistsFault")
                ) =>
            {
                self.actual(&db.identifier)
                    .await?
                    .ok_or_else(|| RdsError::NotFound {
                        kind: "instance",
                        id: db.identifier.clone(),
                    })
            }
            Err(err) => Err(classify(op, err)),
        }
    }

    /// Modifies an instance at once (`ApplyImmediately`): the change lands now, not in the next
    /// maintenance window, so the health check that follows judges it.
    pub async fn modify_instance(
        &self,
        id: &str,
        m: &InstanceModification,
    ) -> Result<(), RdsError> {
        let major = m.engine_version.is_some();
        match self
            .client
            .modify_db_instance()
            .db_instance_identifier(id)
            .apply_immediately(true)
            .set_db_instance_class(m.instance_class.clone())
            .set_multi_az(m.multi_az)
            .set_backup_retention_period(
                m.backup_retention_days.and_then(|d| i32::try_from(d).ok()),
            )
            .set_deletion_protection(m.deletion_protection)
            .set_publicly_accessible(m.publicly_accessible)
            .set_allocated_storage(m.allocated_storage_gb.and_then(|g| i32::try_from(g).ok()))
            .set_engine_version(m.engine_version.clone())
            // RDS refuses a major upgrade unless it is allowed explicitly; the plan marked it irreversible
            // and it was approved before it got here.
            .set_allow_major_version_upgrade(major.then_some(true))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    code(&err).as_deref(),
                    Some("DBInstanceNotFound" | "DBInstanceNotFoundFault")
                ) =>
            {
                Err(RdsError::NotFound {
                    kind: "instance",
                    id: id.to_owned(),
                })
            }
            Err(err) => Err(classify("ModifyDBInstance", err)),
        }
    }
}

/// Whether a delete was refused because the instance has deletion protection on.
fn is_protected(err: &RdsError) -> bool {
    let text = match err {
        RdsError::Aws { source, .. } | RdsError::Throttled { source, .. } => {
            aws_smithy_types::error::display::DisplayErrorContext(source.as_ref()).to_string()
        }
        _ => return false,
    };
    text.contains("protected") || text.contains("deletion protection")
}
