//! Provisioning's side of RDS: instances as the planner sees them, created and modified from the spec.

use std::collections::BTreeMap;

use aws_sdk_rds::types::DbInstance;

use super::Rds;
use super::error::{
    INSTANCE_EXISTS, NO_INSTANCE, RdsError, answered, classify, found, has_code, or_missing,
};
use super::types::{tags_map, to_tags};
use crate::domain::plan::{ActualInstance, DEFAULT_STORAGE_GB};
use crate::domain::spec::RdsSpec;

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
        Ok(self.described(id).await?.as_ref().and_then(actual_from_sdk))
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
            Ok(out) => answered(
                op,
                "DBInstance",
                out.db_instance().and_then(actual_from_sdk),
            ),
            Err(err) if has_code(&err, &INSTANCE_EXISTS) => found(
                "instance",
                &db.identifier,
                self.actual(&db.identifier).await?,
            ),
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
        let answer = self
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
            .await;
        found(
            "instance",
            id,
            or_missing("ModifyDBInstance", &NO_INSTANCE, answer)?.map(|_| ()),
        )
    }
}
