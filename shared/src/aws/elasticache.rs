//! ElastiCache (Redis OSS): the replication groups a spec names, read for planning and made or changed as
//! the plan says. A group's engine version, parameter group, subnet group and security groups are reported
//! on its member cache clusters, not on the group (DescribeReplicationGroups), so the primary's is read too.

use std::collections::BTreeMap;

use aws_sdk_elasticache::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_elasticache::types::{ClusterMode, ReplicationGroup, Snapshot, Tag};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::aws::{has_code, is_transient, or_missing, service_message};
use crate::domain::backup::SnapshotInfo;
use crate::domain::plan::ActualReplicationGroup;
use crate::domain::spec::RedisSpec;

/// An ElastiCache call failed.
#[derive(Debug, Error)]
pub enum CachesError {
    /// The group or snapshot is busy (`InvalidReplicationGroupState`, `InvalidSnapshotState`): another
    /// change, snapshot or export runs; try later.
    #[error("{what} is busy: {message}")]
    Busy {
        /// The group or snapshot.
        what: String,
        /// ElastiCache's message.
        message: String,
    },
    /// What the call names does not exist (a restore's snapshot).
    #[error("{what} does not exist: {message}")]
    Missing {
        /// The snapshot.
        what: String,
        /// ElastiCache's message.
        message: String,
    },
    /// ElastiCache throttled the call or failed on its side after the SDK's retries.
    #[error("ElastiCache {operation} was throttled: {}", DisplayErrorContext(.source.as_ref()))]
    Throttled {
        /// The ElastiCache operation.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Any other failure.
    #[error("ElastiCache {operation} failed: {}", DisplayErrorContext(.source.as_ref()))]
    Call {
        /// The ElastiCache operation.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn classify<E>(operation: &'static str, what: &str, err: SdkError<E, HttpResponse>) -> CachesError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if has_code(
        &err,
        &["InvalidReplicationGroupState", "InvalidSnapshotState"],
    ) {
        return CachesError::Busy {
            what: what.to_owned(),
            message: service_message(&err),
        };
    }
    if is_transient(&err) {
        return CachesError::Throttled {
            operation,
            source: Box::new(err),
        };
    }
    CachesError::Call {
        operation,
        source: Box::new(err),
    }
}

/// Tags as ElastiCache takes them.
fn tag_list(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

impl From<CachesError> for crate::OpsError {
    fn from(err: CachesError) -> Self {
        match err {
            CachesError::Busy { .. } => crate::OpsError::NotReady(err.to_string()),
            CachesError::Missing { .. } => crate::OpsError::ResourceNotFound(err.to_string()),
            CachesError::Throttled { operation, source } => {
                crate::OpsError::Throttled { operation, source }
            }
            CachesError::Call { operation, source } => crate::OpsError::Aws { operation, source },
        }
    }
}

/// A manual snapshot of a replication group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSnapshot {
    /// Its name.
    pub name: String,
    /// The replication group it was taken of.
    pub group: String,
    /// Its ARN.
    pub arn: String,
    /// `creating`, `available`, `exporting`, `deleting`, ...
    pub status: String,
    /// When it was taken: its first node snapshot's `SnapshotCreateTime` (the snapshot itself has none).
    pub created_at: Option<DateTime<Utc>>,
    /// Its tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl CacheSnapshot {
    /// The snapshot as retention sees it, the group standing for the instance.
    pub fn info(&self) -> SnapshotInfo {
        SnapshotInfo {
            id: self.name.clone(),
            instance: self.group.clone(),
            created_at: self.created_at,
            original_created_at: None,
            status: self.status.clone(),
            tags: self.tags.clone(),
        }
    }
}

fn read_snapshot(s: &Snapshot) -> CacheSnapshot {
    CacheSnapshot {
        name: s.snapshot_name().unwrap_or_default().to_owned(),
        group: s.replication_group_id().unwrap_or_default().to_owned(),
        arn: s.arn().unwrap_or_default().to_owned(),
        status: s.snapshot_status().unwrap_or_default().to_owned(),
        created_at: s
            .node_snapshots()
            .iter()
            .filter_map(|n| n.snapshot_create_time())
            .filter_map(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
            .min(),
        tags: BTreeMap::new(),
    }
}

/// The ElastiCache adapter over one regional client.
#[derive(Debug, Clone)]
pub struct Caches {
    client: aws_sdk_elasticache::Client,
}

fn read_group(g: &ReplicationGroup) -> ActualReplicationGroup {
    let shards = g.node_groups();
    let members = shards.first().map_or(0, |ng| ng.node_group_members().len());
    ActualReplicationGroup {
        id: g.replication_group_id().unwrap_or_default().to_owned(),
        status: g.status().unwrap_or_default().to_owned(),
        node_type: g.cache_node_type().map(str::to_owned),
        num_node_groups: u32::try_from(shards.len().max(1)).unwrap_or(1),
        replicas_per_node_group: u32::try_from(members.saturating_sub(1)).unwrap_or(0),
        at_rest_encryption: g.at_rest_encryption_enabled().unwrap_or(false),
        transit_encryption: g.transit_encryption_enabled().unwrap_or(false),
        kms_key_id: g.kms_key_id().map(str::to_owned),
        endpoint: endpoint_of(g),
        created_at: g
            .replication_group_create_time()
            .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
        ..ActualReplicationGroup::default()
    }
}

/// Where clients connect: the configuration endpoint in cluster mode, the primary endpoint otherwise.
fn endpoint_of(g: &ReplicationGroup) -> Option<(String, u16)> {
    let e = g
        .configuration_endpoint()
        .or_else(|| g.node_groups().first().and_then(|ng| ng.primary_endpoint()))?;
    Some((
        e.address()?.to_owned(),
        u16::try_from(e.port().unwrap_or(6379)).unwrap_or(6379),
    ))
}

impl Caches {
    /// The adapter over `client`.
    pub fn new(client: aws_sdk_elasticache::Client) -> Self {
        Self { client }
    }

    /// The group `id` as the planner sees it, `None` when there is none.
    pub async fn actual(&self, id: &str) -> Result<Option<ActualReplicationGroup>, CachesError> {
        let Some(group) = self.describe(id).await? else {
            return Ok(None);
        };
        let group = &group;
        let mut actual = read_group(group);
        if let Some(member) = group.member_clusters().first() {
            let clusters = self
                .client
                .describe_cache_clusters()
                .cache_cluster_id(member)
                .send()
                .await
                .map_err(|e| classify("DescribeCacheClusters", id, e))?;
            if let Some(c) = clusters.cache_clusters().first() {
                actual.engine_version = c.engine_version().map(str::to_owned);
                actual.cache_subnet_group = c.cache_subnet_group_name().map(str::to_owned);
                actual.parameter_group = c
                    .cache_parameter_group()
                    .and_then(|p| p.cache_parameter_group_name())
                    .map(str::to_owned);
                let mut groups: Vec<String> = c
                    .security_groups()
                    .iter()
                    .filter_map(|g| g.security_group_id().map(str::to_owned))
                    .collect();
                groups.sort();
                actual.security_group_ids = groups;
            }
        }
        if let Some(arn) = group.arn() {
            actual.tags = self.tags(arn, id).await?;
        }
        Ok(Some(actual))
    }

    /// The group `id` as `DescribeReplicationGroups` answers, `None` when there is none.
    async fn describe(&self, id: &str) -> Result<Option<ReplicationGroup>, CachesError> {
        let described = self
            .client
            .describe_replication_groups()
            .replication_group_id(id)
            .send()
            .await;
        let out = or_missing(described, &["ReplicationGroupNotFoundFault"], |e| {
            classify("DescribeReplicationGroups", id, e)
        })?;
        Ok(out.and_then(|o| o.replication_groups().first().cloned()))
    }

    /// Whether the cache subnet group `name` exists in this Region.
    pub async fn subnet_group_exists(&self, name: &str) -> Result<bool, CachesError> {
        let asked = self
            .client
            .describe_cache_subnet_groups()
            .cache_subnet_group_name(name)
            .send()
            .await;
        let found = or_missing(asked, &["CacheSubnetGroupNotFoundFault"], |e| {
            classify("DescribeCacheSubnetGroups", name, e)
        })?;
        Ok(found.is_some())
    }

    /// Makes the group `want` describes, tagged `tags`, with the AUTH token `auth_token` (read from its
    /// secret by the caller) when it has one.
    pub async fn create(
        &self,
        want: &RedisSpec,
        tags: &BTreeMap<String, String>,
        auth_token: Option<String>,
    ) -> Result<(), CachesError> {
        self.make(want, None, tags, auth_token).await
    }

    /// Makes the group `want` describes from the snapshot `snapshot` (its data loaded into the new group),
    /// tagged `tags`. A snapshot that does not exist is [`CachesError::Call`] naming
    /// `SnapshotNotFoundFault`.
    pub async fn restore(
        &self,
        want: &RedisSpec,
        snapshot: &str,
        tags: &BTreeMap<String, String>,
        auth_token: Option<String>,
    ) -> Result<(), CachesError> {
        self.make(want, Some(snapshot), tags, auth_token).await
    }

    async fn make(
        &self,
        want: &RedisSpec,
        snapshot: Option<&str>,
        tags: &BTreeMap<String, String>,
        auth_token: Option<String>,
    ) -> Result<(), CachesError> {
        let id = &want.replication_group_id;
        let failover = want.replicas_per_node_group > 0;
        let request = self
            .client
            .create_replication_group()
            .replication_group_id(id)
            .replication_group_description(format!("opsplane: {id}"))
            .engine("redis")
            .set_engine_version(want.engine_version.clone())
            .cache_node_type(&want.node_type)
            .set_cache_subnet_group_name(want.cache_subnet_group.clone())
            .set_security_group_ids(
                (!want.security_group_ids.is_empty()).then(|| want.security_group_ids.clone()),
            )
            .set_cache_parameter_group_name(want.parameter_group.clone())
            .set_at_rest_encryption_enabled(want.at_rest_encryption)
            .set_transit_encryption_enabled(want.transit_encryption)
            .set_kms_key_id(want.kms_key_id.clone())
            .set_auth_token(auth_token)
            .automatic_failover_enabled(failover)
            .multi_az_enabled(failover)
            .set_snapshot_name(snapshot.map(str::to_owned))
            .set_tags(Some(tag_list(tags)));
        // Cluster mode disabled counts nodes (NumCacheClusters); enabled counts shards and their replicas.
        let request = if want.cluster_mode() {
            request
                .cluster_mode(ClusterMode::Enabled)
                .num_node_groups(i32::try_from(want.num_node_groups).unwrap_or(1))
                .replicas_per_node_group(i32::try_from(want.replicas_per_node_group).unwrap_or(0))
        } else {
            request.num_cache_clusters(i32::try_from(want.replicas_per_node_group + 1).unwrap_or(1))
        };
        match request.send().await {
            Ok(_) => Ok(()),
            // A retried restore finds the group its first call made.
            Err(e)
                if snapshot.is_some()
                    && has_code(
                        &e,
                        &[
                            "ReplicationGroupAlreadyExistsFault",
                            "ReplicationGroupAlreadyExists",
                        ],
                    ) =>
            {
                Ok(())
            }
            Err(e) if has_code(&e, &["SnapshotNotFoundFault"]) => Err(CachesError::Missing {
                what: format!("snapshot {}", snapshot.unwrap_or_default()),
                message: service_message(&e),
            }),
            Err(e) => Err(classify("CreateReplicationGroup", id, e)),
        }
    }

    /// Brings one setting of group `want` to the spec: `field` is the plan's (`node_type`,
    /// `engine_version`, `parameter_group`, `security_group_ids`, `replicas_per_node_group`); `have` is the
    /// group as last described (replicas are added or removed from its count). ElastiCache takes one change
    /// of a group at a time.
    pub async fn modify(
        &self,
        want: &RedisSpec,
        have: &ActualReplicationGroup,
        field: &str,
    ) -> Result<(), CachesError> {
        let id = &want.replication_group_id;
        if field == "replicas_per_node_group" {
            let count = i32::try_from(want.replicas_per_node_group).unwrap_or(0);
            if want.replicas_per_node_group > have.replicas_per_node_group {
                self.client
                    .increase_replica_count()
                    .replication_group_id(id)
                    .new_replica_count(count)
                    .apply_immediately(true)
                    .send()
                    .await
                    .map_err(|e| classify("IncreaseReplicaCount", id, e))?;
            } else {
                self.client
                    .decrease_replica_count()
                    .replication_group_id(id)
                    .new_replica_count(count)
                    .apply_immediately(true)
                    .send()
                    .await
                    .map_err(|e| classify("DecreaseReplicaCount", id, e))?;
            }
            return Ok(());
        }
        let request = self
            .client
            .modify_replication_group()
            .replication_group_id(id)
            .apply_immediately(true);
        let request = match field {
            "node_type" => request.cache_node_type(&want.node_type),
            "engine_version" => request.set_engine_version(want.engine_version.clone()),
            "parameter_group" => {
                request.set_cache_parameter_group_name(want.parameter_group.clone())
            }
            _ => request.set_security_group_ids(Some(want.security_group_ids.clone())),
        };
        request
            .send()
            .await
            .map_err(|e| classify("ModifyReplicationGroup", id, e))?;
        Ok(())
    }

    /// Deletes the group `id` without a final snapshot: `Ok(true)` when its deletion was requested or it
    /// is already being deleted, `Ok(false)` when there is none. ElastiCache refuses while the group is
    /// creating or modifying ([`CachesError::Busy`]).
    pub async fn delete(&self, id: &str) -> Result<bool, CachesError> {
        // Only the status matters here: the group's members and tags are not read.
        match self.describe(id).await? {
            None => return Ok(false),
            Some(g) if g.status() == Some("deleting") => return Ok(true),
            Some(_) => {}
        }
        let deleted = self
            .client
            .delete_replication_group()
            .replication_group_id(id)
            .retain_primary_cluster(false)
            .send()
            .await;
        let gone = or_missing(deleted, &["ReplicationGroupNotFoundFault"], |e| {
            classify("DeleteReplicationGroup", id, e)
        })?;
        Ok(gone.is_some())
    }

    /// Every replication group of the Region whose id starts with `prefix`, with its tags (one
    /// `ListTagsForResource` each: DescribeReplicationGroups reports none).
    pub async fn groups_named(
        &self,
        prefix: &str,
    ) -> Result<Vec<ActualReplicationGroup>, CachesError> {
        let mut pages = self
            .client
            .describe_replication_groups()
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeReplicationGroups", "the Region", e))?;
            for g in page.replication_groups() {
                let mut group = read_group(g);
                if !group.id.starts_with(prefix) {
                    continue;
                }
                if let Some(arn) = g.arn() {
                    group.tags = self.tags(arn, &group.id).await?;
                }
                out.push(group);
            }
        }
        Ok(out)
    }

    async fn tags(&self, arn: &str, what: &str) -> Result<BTreeMap<String, String>, CachesError> {
        let out = self
            .client
            .list_tags_for_resource()
            .resource_name(arn)
            .send()
            .await
            .map_err(|e| classify("ListTagsForResource", what, e))?;
        Ok(out
            .tag_list()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect())
    }

    /// The snapshot `name`, with its tags; `None` when there is none.
    pub async fn snapshot(&self, name: &str) -> Result<Option<CacheSnapshot>, CachesError> {
        let described = self
            .client
            .describe_snapshots()
            .snapshot_name(name)
            .send()
            .await;
        let Some(out) = or_missing(described, &["SnapshotNotFoundFault"], |e| {
            classify("DescribeSnapshots", name, e)
        })?
        else {
            return Ok(None);
        };
        let Some(found) = out.snapshots().first() else {
            return Ok(None);
        };
        let mut snapshot = read_snapshot(found);
        snapshot.tags = self.tags(&snapshot.arn, name).await?;
        Ok(Some(snapshot))
    }

    /// Takes a manual snapshot `name` of `group`, tagged `tags`; a retry finds the one it already took.
    pub async fn create_snapshot(
        &self,
        group: &str,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<CacheSnapshot, CachesError> {
        let made = self
            .client
            .create_snapshot()
            .replication_group_id(group)
            .snapshot_name(name)
            .set_tags(Some(tag_list(tags)))
            .send()
            .await;
        match made {
            // A retry finds the snapshot the first call made.
            Err(e) if !has_code(&e, &["SnapshotAlreadyExistsFault"]) => {
                return Err(classify("CreateSnapshot", group, e));
            }
            _ => {}
        }
        self.snapshot(name).await?.ok_or_else(|| CachesError::Call {
            operation: "DescribeSnapshots",
            source: format!("snapshot {name} was made but cannot be found").into(),
        })
    }

    /// Every manual snapshot of the Region with its tags (automatic ones are ElastiCache's to keep).
    pub async fn manual_snapshots(&self) -> Result<Vec<CacheSnapshot>, CachesError> {
        let mut pages = self
            .client
            .describe_snapshots()
            .snapshot_source("user")
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeSnapshots", "the Region", e))?;
            for s in page.snapshots() {
                if s.snapshot_source() == Some("automated") {
                    continue;
                }
                let mut snapshot = read_snapshot(s);
                snapshot.tags = self.tags(&snapshot.arn, &snapshot.name).await?;
                out.push(snapshot);
            }
        }
        Ok(out)
    }

    /// Deletes the snapshot `name`; `false` when it was already gone.
    pub async fn delete_snapshot(&self, name: &str) -> Result<bool, CachesError> {
        let deleted = self
            .client
            .delete_snapshot()
            .snapshot_name(name)
            .send()
            .await;
        let gone = or_missing(deleted, &["SnapshotNotFoundFault"], |e| {
            classify("DeleteSnapshot", name, e)
        })?;
        Ok(gone.is_some())
    }

    /// Exports the snapshot `name` to the S3 bucket `bucket` as `<target>-<n>.rdb` files (`CopySnapshot`
    /// with `TargetBucket`; the bucket must grant ElastiCache access, "Exporting a backup").
    pub async fn export_snapshot(
        &self,
        name: &str,
        target: &str,
        bucket: &str,
    ) -> Result<(), CachesError> {
        let copied = self
            .client
            .copy_snapshot()
            .source_snapshot_name(name)
            .target_snapshot_name(target)
            .target_bucket(bucket)
            .send()
            .await;
        match copied {
            // A retry of an export already made.
            Err(e) if !has_code(&e, &["SnapshotAlreadyExistsFault"]) => {
                Err(classify("CopySnapshot", name, e))
            }
            _ => Ok(()),
        }
    }
}
