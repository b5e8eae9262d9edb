//! RDS: manual snapshots (create, describe, copy, delete) and scratch instances (restore, describe, delete);
//! provisioning's instances in `modify.rs`.
//!
//! The adapter returns plain values ([`Snapshot`], [`Instance`]) so that the decisions made on them
//! (retention, readiness, teardown) are pure and live in `domain`.

mod error;
mod modify;
mod references;
mod types;

use std::collections::BTreeMap;

use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rds::types::DbInstance;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::domain::backup::SNAPSHOTS_PER_CALL;
pub use error::RdsError;
use error::{
    INSTANCE_EXISTS, NO_INSTANCE, NO_SNAPSHOT, SNAPSHOT_EXISTS, answered, classify, code, found,
    has_code, or_missing,
};
pub use modify::InstanceModification;
pub use types::{Instance, Network, RestoreSource, Snapshot, to_chrono};
use types::{to_smithy, to_tags};

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
        let answer = self
            .client
            .create_db_snapshot()
            .db_instance_identifier(instance)
            .db_snapshot_identifier(snapshot_id)
            .set_tags(Some(to_tags(tags)))
            .send()
            .await
            .map(|out| out.db_snapshot().and_then(Snapshot::from_sdk));
        match answer {
            Err(err) if has_code(&err, &NO_INSTANCE) => {
                Err(RdsError::not_found("instance", instance))
            }
            answer => self.made("CreateDBSnapshot", snapshot_id, answer).await,
        }
    }

    /// The snapshot a create or copy made; when a snapshot of that identifier already exists (a retried
    /// call), the one described.
    async fn made<E>(
        &self,
        operation: &'static str,
        snapshot_id: &str,
        answer: Result<Option<Snapshot>, SdkError<E, HttpResponse>>,
    ) -> Result<Snapshot, RdsError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match answer {
            Ok(made) => answered(operation, "DBSnapshot", made),
            Err(err) if has_code(&err, &SNAPSHOT_EXISTS) => {
                found("snapshot", snapshot_id, self.snapshot(snapshot_id).await?)
            }
            Err(err) => Err(classify(operation, err)),
        }
    }

    /// Describes one snapshot; `None` when it does not exist.
    pub async fn snapshot(&self, snapshot_id: &str) -> Result<Option<Snapshot>, RdsError> {
        let answer = self
            .client
            .describe_db_snapshots()
            .db_snapshot_identifier(snapshot_id)
            .send()
            .await;
        Ok(or_missing("DescribeDBSnapshots", &NO_SNAPSHOT, answer)?
            .and_then(|out| out.db_snapshots().iter().find_map(Snapshot::from_sdk)))
    }

    /// Describes many snapshots at once: one paginated `DescribeDBSnapshots` per [`SNAPSHOTS_PER_CALL`]
    /// identifiers (the `db-snapshot-id` filter takes a list), so that a workflow waiting on many snapshots
    /// asks RDS at a rate that does not grow with how many it waits on. Snapshots that do not exist are
    /// absent from the answer.
    pub async fn snapshots(&self, ids: &[String]) -> Result<Vec<Snapshot>, RdsError> {
        self.snapshot_pages(Some(("db-snapshot-id", ids)), None, None)
            .await
    }

    /// The manual snapshots (with tags) of these instances: one paginated `DescribeDBSnapshots` per
    /// [`SNAPSHOTS_PER_CALL`] instances (the `db-instance-id` filter takes a list), so that an
    /// environment's retention reads its own snapshots, not the Region's thousands.
    pub async fn manual_snapshots_of(
        &self,
        instances: &[String],
    ) -> Result<Vec<Snapshot>, RdsError> {
        self.snapshot_pages(Some(("db-instance-id", instances)), None, Some("manual"))
            .await
    }

    /// Every manual snapshot, of one instance or of all, with tags.
    pub async fn manual_snapshots(
        &self,
        instance: Option<&str>,
    ) -> Result<Vec<Snapshot>, RdsError> {
        self.snapshot_pages(None, instance, Some("manual")).await
    }

    /// `DescribeDBSnapshots`, every page: filtered by `filter`'s values ([`SNAPSHOTS_PER_CALL`] a
    /// request), by one instance, and of one type.
    async fn snapshot_pages(
        &self,
        filter: Option<(&str, &[String])>,
        instance: Option<&str>,
        kind: Option<&str>,
    ) -> Result<Vec<Snapshot>, RdsError> {
        let chunks: Vec<Option<aws_sdk_rds::types::Filter>> = match filter {
            None => vec![None],
            Some((name, values)) => values
                .chunks(SNAPSHOTS_PER_CALL)
                .map(|chunk| {
                    Some(
                        aws_sdk_rds::types::Filter::builder()
                            .name(name)
                            .set_values(Some(chunk.to_vec()))
                            .build(),
                    )
                })
                .collect(),
        };
        let mut out = Vec::new();
        for filter in chunks {
            let mut pages = self
                .client
                .describe_db_snapshots()
                .set_snapshot_type(kind.map(str::to_owned))
                .set_db_instance_identifier(instance.map(str::to_owned))
                .set_filters(filter.map(|f| vec![f]))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify("DescribeDBSnapshots", e))?;
                out.extend(
                    page.db_snapshots()
                        .iter()
                        .filter_map(Snapshot::from_sdk)
                        // Some endpoints ignore SnapshotType when an instance is named.
                        .filter(|s| {
                            kind.is_none_or(|k| s.snapshot_type.is_empty() || s.snapshot_type == k)
                        }),
                );
            }
        }
        Ok(out)
    }

    /// Copies a snapshot into this adapter's region from `source_arn` (in another region), keeping its tags,
    /// encrypted with `kms_key_id` (a key of this region) when given.
    pub async fn copy_snapshot_here(
        &self,
        source_arn: &str,
        target_id: &str,
        kms_key_id: Option<&str>,
    ) -> Result<Snapshot, RdsError> {
        let answer = self
            .client
            .copy_db_snapshot()
            .source_db_snapshot_identifier(source_arn)
            .target_db_snapshot_identifier(target_id)
            .set_kms_key_id(kms_key_id.map(str::to_owned))
            .copy_tags(true)
            .send()
            .await
            .map(|out| out.db_snapshot().and_then(Snapshot::from_sdk));
        self.made("CopyDBSnapshot", target_id, answer).await
    }

    /// Deletes a snapshot. `Ok(false)` when it was already gone.
    pub async fn delete_snapshot(&self, snapshot_id: &str) -> Result<bool, RdsError> {
        let answer = self
            .client
            .delete_db_snapshot()
            .db_snapshot_identifier(snapshot_id)
            .send()
            .await;
        Ok(or_missing("DeleteDBSnapshot", &NO_SNAPSHOT, answer)?.is_some())
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
        // The two restores are two builder types of the SDK with the same settings for the scratch
        // instance: its class, where it goes, never public, no deletion protection, tagged.
        macro_rules! scratch {
            ($request:expr) => {
                $request
                    .db_instance_class(class)
                    .set_db_subnet_group_name(network.subnet_group.clone())
                    .set_vpc_security_group_ids(security_groups)
                    .set_db_parameter_group_name(network.parameter_group.clone())
                    .set_option_group_name(network.option_group.clone())
                    .publicly_accessible(false)
                    .deletion_protection(false)
                    .set_tags(Some(to_tags(tags)))
            };
        }
        let result = match source {
            RestoreSource::Snapshot(snapshot) => scratch!(
                self.client
                    .restore_db_instance_from_db_snapshot()
                    .db_instance_identifier(target_id)
                    .db_snapshot_identifier(snapshot)
            )
            .send()
            .await
            .map(|o| o.db_instance().and_then(Instance::from_sdk))
            .map_err(|e| (code(&e), classify("RestoreDBInstanceFromDBSnapshot", e))),
            RestoreSource::PointInTime { instance, at } => scratch!(
                self.client
                    .restore_db_instance_to_point_in_time()
                    .source_db_instance_identifier(instance)
                    .target_db_instance_identifier(target_id)
                    .restore_time(to_smithy(*at))
            )
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
            Ok(None) => answered("RestoreDBInstance", "DBInstance", None),
            Err((Some(c), _)) if INSTANCE_EXISTS.contains(&c.as_str()) => {
                found("instance", target_id, self.instance(target_id).await?)
            }
            Err((Some(c), _))
                if c.starts_with("DBSnapshotNotFound") || c.starts_with("DBInstanceNotFound") =>
            {
                let kind = if c.starts_with("DBSnapshot") {
                    "snapshot"
                } else {
                    "instance"
                };
                Err(RdsError::not_found(
                    kind,
                    match source {
                        RestoreSource::Snapshot(s) => s,
                        RestoreSource::PointInTime { instance, .. } => instance,
                    },
                ))
            }
            Err((_, e)) => Err(e),
        }
    }

    /// Describes one instance; `None` when it does not exist.
    pub async fn instance(&self, id: &str) -> Result<Option<Instance>, RdsError> {
        Ok(self
            .described(id)
            .await?
            .as_ref()
            .and_then(Instance::from_sdk))
    }

    /// RDS's description of one instance; `None` when it does not exist.
    async fn described(&self, id: &str) -> Result<Option<DbInstance>, RdsError> {
        let answer = self
            .client
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await;
        Ok(or_missing("DescribeDBInstances", &NO_INSTANCE, answer)?
            .and_then(|out| out.db_instances().first().cloned()))
    }

    /// Every instance carrying the tag `key` (any value).
    pub async fn instances_tagged(&self, key: &str) -> Result<Vec<Instance>, RdsError> {
        let mut out = Vec::new();
        let mut pages = self.client.describe_db_instances().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeDBInstances", e))?;
            out.extend(
                page.db_instances()
                    .iter()
                    .filter_map(Instance::from_sdk)
                    .filter(|i| i.tags.contains_key(key)),
            );
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
        let answer = self
            .client
            .delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(true)
            .delete_automated_backups(true)
            .send()
            .await;
        Ok(or_missing("DeleteDBInstance", &NO_INSTANCE, answer)?.is_some())
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
