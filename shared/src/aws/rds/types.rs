//! The plain values the adapter returns ([`Snapshot`], [`Instance`], its [`Network`]) and the SDK's
//! conversions to and from them.

use std::collections::BTreeMap;

use aws_sdk_rds::types::{DbInstance, DbSnapshot, Tag};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::backup::SnapshotInfo;

/// An SDK timestamp as chrono.
pub fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

pub(super) fn to_smithy(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs_and_nanos(t.timestamp(), t.timestamp_subsec_nanos())
}

pub(super) fn tags_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

pub(super) fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
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
    pub(super) fn from_sdk(s: &DbSnapshot) -> Option<Self> {
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
    /// Storage encryption (`None` when RDS does not say).
    #[serde(default)]
    pub storage_encrypted: Option<bool>,
    /// Where it sits and with which groups: its DB subnet group, VPC security groups, parameter and option
    /// groups.
    #[serde(default)]
    pub network: Network,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// The network and groups of a DB instance: what a restore must name to land beside its source. A restore
/// that names no DB subnet group lands in the default VPC (or fails where the account has none), one that
/// names no security groups gets its VPC's default group (RestoreDBInstanceFromDBSnapshot API reference).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// The DB subnet group's name (`None`: RDS reported none).
    pub subnet_group: Option<String>,
    /// The VPC security group ids.
    pub security_group_ids: Vec<String>,
    /// The DB parameter group (`None`: RDS reported none, or the engine's default is wanted).
    #[serde(default)]
    pub parameter_group: Option<String>,
    /// The option group.
    #[serde(default)]
    pub option_group: Option<String>,
}

impl Instance {
    pub(super) fn from_sdk(i: &DbInstance) -> Option<Self> {
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
            storage_encrypted: i.storage_encrypted(),
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
                // A default group (`default.postgres16`, `default:postgres-16`) is what a restore that
                // names none gets, so it is not named: only a group of the team's own travels.
                parameter_group: i
                    .db_parameter_groups()
                    .iter()
                    .find_map(|g| g.db_parameter_group_name())
                    .filter(|name| !name.starts_with("default."))
                    .map(str::to_owned),
                option_group: i
                    .option_group_memberships()
                    .iter()
                    .find_map(|g| g.option_group_name())
                    .filter(|name| !name.starts_with("default:"))
                    .map(str::to_owned),
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
