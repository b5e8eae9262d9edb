//! Provisioning's side of RDS: instances as the planner sees them, created and modified from the spec.

use std::collections::BTreeMap;

use aws_sdk_rds::types::DbInstance;

use super::Rds;
use super::error::{
    INSTANCE_EXISTS, NO_INSTANCE, RdsError, answered, classify, found, has_code, or_missing,
};
use super::types::{tags_map, to_tags};
use crate::domain::plan::{ActualInstance, DEFAULT_STORAGE_GB, InstanceSettings};
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
    /// DB subnet group (RDS moves the instance).
    pub db_subnet_group: Option<String>,
    /// VPC security groups (empty: unchanged).
    pub vpc_security_group_ids: Vec<String>,
    /// DB parameter group.
    pub parameter_group: Option<String>,
    /// Option group.
    pub option_group: Option<String>,
    /// Storage type.
    pub storage_type: Option<String>,
    /// Provisioned IOPS.
    pub iops: Option<u32>,
    /// Storage throughput, MiB/s.
    pub storage_throughput: Option<u32>,
    /// Server certificate authority.
    pub ca_certificate_identifier: Option<String>,
    /// Backup window.
    pub backup_window: Option<String>,
    /// Maintenance window.
    pub maintenance_window: Option<String>,
    /// Automatic minor version upgrades.
    pub auto_minor_version_upgrade: Option<bool>,
    /// IAM database authentication.
    pub iam_database_authentication: Option<bool>,
    /// Performance Insights.
    pub performance_insights: Option<bool>,
    /// Enhanced Monitoring interval, seconds, and its role (needed above 0).
    pub monitoring: Option<(u32, Option<String>)>,
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
        settings: settings_from_sdk(i),
    })
}

fn count(v: Option<i32>) -> Option<u32> {
    v.and_then(|n| u32::try_from(n).ok())
}

/// An instance's placement, storage, key and maintenance settings as the planner compares them.
fn settings_from_sdk(i: &DbInstance) -> InstanceSettings {
    let mut groups: Vec<String> = i
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
        .collect();
    groups.sort();
    InstanceSettings {
        db_subnet_group: i
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(str::to_owned),
        vpc_security_group_ids: groups,
        parameter_group: i
            .db_parameter_groups()
            .first()
            .and_then(|g| g.db_parameter_group_name())
            .map(str::to_owned),
        option_group: i
            .option_group_memberships()
            .first()
            .and_then(|g| g.option_group_name())
            .map(str::to_owned),
        kms_key_id: i.kms_key_id().map(str::to_owned),
        storage_type: i.storage_type().map(str::to_owned),
        iops: count(i.iops()),
        storage_throughput: count(i.storage_throughput()),
        ca_certificate_identifier: i.ca_certificate_identifier().map(str::to_owned),
        backup_window: i.preferred_backup_window().map(str::to_owned),
        maintenance_window: i.preferred_maintenance_window().map(str::to_owned),
        auto_minor_version_upgrade: i.auto_minor_version_upgrade(),
        iam_database_authentication: i.iam_database_authentication_enabled(),
        performance_insights: i.performance_insights_enabled(),
        monitoring_interval: count(i.monitoring_interval()),
    }
}

fn number(v: Option<u32>) -> Option<i32> {
    v.and_then(|n| i32::try_from(n).ok())
}

/// The security groups to send: `None` (RDS's default) for none.
fn groups(ids: &[String]) -> Option<Vec<String>> {
    (!ids.is_empty()).then(|| ids.to_vec())
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
            .set_db_subnet_group_name(db.db_subnet_group.clone())
            .set_vpc_security_group_ids(groups(&db.vpc_security_group_ids))
            .set_db_parameter_group_name(db.parameter_group.clone())
            .set_option_group_name(db.option_group.clone())
            .set_kms_key_id(db.kms_key_id.clone())
            .set_storage_type(db.storage_type.clone())
            .set_iops(number(db.iops))
            .set_storage_throughput(number(db.storage_throughput))
            .set_ca_certificate_identifier(db.ca_certificate_identifier.clone())
            .set_preferred_backup_window(db.backup_window.clone())
            .set_preferred_maintenance_window(db.maintenance_window.clone())
            .set_auto_minor_version_upgrade(db.auto_minor_version_upgrade)
            .set_enable_iam_database_authentication(db.iam_database_authentication)
            .set_enable_performance_insights(db.performance_insights)
            .set_monitoring_interval(number(db.monitoring_interval))
            .set_monitoring_role_arn(db.monitoring_role_arn.clone())
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
            .set_db_subnet_group_name(m.db_subnet_group.clone())
            .set_vpc_security_group_ids(groups(&m.vpc_security_group_ids))
            .set_db_parameter_group_name(m.parameter_group.clone())
            .set_option_group_name(m.option_group.clone())
            .set_storage_type(m.storage_type.clone())
            .set_iops(number(m.iops))
            .set_storage_throughput(number(m.storage_throughput))
            .set_ca_certificate_identifier(m.ca_certificate_identifier.clone())
            .set_preferred_backup_window(m.backup_window.clone())
            .set_preferred_maintenance_window(m.maintenance_window.clone())
            .set_auto_minor_version_upgrade(m.auto_minor_version_upgrade)
            .set_enable_iam_database_authentication(m.iam_database_authentication)
            .set_enable_performance_insights(m.performance_insights)
            .set_monitoring_interval(number(m.monitoring.as_ref().map(|(interval, _)| *interval)))
            .set_monitoring_role_arn(m.monitoring.as_ref().and_then(|(_, role)| role.clone()))
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
