//! The checks a parsed spec must pass: names, identifiers, regions, versions and the EKS part, each error
//! naming the field and what is allowed.

use std::ops::RangeInclusive;

use super::eks_settings;
use super::environment::EnvironmentSpec;
use super::error::SpecError;
use super::rds_settings::{self, is_key_reference, is_security_group_id};
use super::resources::EksSpec;
use crate::domain::arn::kms_key_region;

/// An RDS instance's storage, GiB (RDS for PostgreSQL, General Purpose SSD).
pub(super) const STORAGE_GB: RangeInclusive<u32> = 20..=65_536;
/// RDS's automated backup retention, days.
pub(super) const BACKUP_RETENTION_DAYS: RangeInclusive<u32> = 0..=35;
/// An HTTP check's expected status.
pub(super) const HTTP_STATUS: RangeInclusive<u16> = 100..=599;
/// An HTTP check's timeout, milliseconds.
pub(super) const TIMEOUT_MS: RangeInclusive<u64> = 1..=60_000;

/// Checks an environment name: 1 to 32 characters of lowercase letters, digits and '-', starting with a letter.
pub fn validate_environment_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{name}\" is not an environment name: use 1 to 32 lowercase letters, digits and '-', \
             starting with a letter (e.g. prod)"
        ))
    }
}

fn validate_db_identifier(id: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.ends_with('-')
        && !id.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{id}\" is not a DB instance identifier: 1 to 63 letters, digits and single '-', \
             starting with a letter and not ending with '-'"
        ))
    }
}

fn validate_region(region: &str) -> Result<(), String> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{region}\" is not an AWS region name (e.g. us-west-2)"
        ))
    }
}

/// Whether `v` is a version of digits separated by dots (`16.4`, `1.30`).
fn is_version(v: &str) -> bool {
    !v.is_empty()
        && v.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn validate_eks(eks: &EksSpec, out: &mut Vec<SpecError>) {
    if eks.cluster.is_empty() {
        out.push(SpecError::invalid("eks.cluster", "must not be empty"));
    }
    if let Some(v) = &eks.version
        && !is_version(v)
    {
        out.push(SpecError::invalid(
            "eks.version",
            format!("\"{v}\" is not a Kubernetes version, e.g. \"1.30\""),
        ));
    }
    eks_settings::problems(eks, out);
    let mut names = std::collections::BTreeSet::new();
    for (i, ng) in eks.nodegroups.iter().enumerate() {
        let field = |f: &str| format!("eks.nodegroups[{i}].{f}");
        if ng.name.is_empty() {
            out.push(SpecError::invalid(field("name"), "must not be empty"));
        }
        if !names.insert(ng.name.as_str()) {
            out.push(SpecError::invalid(
                field("name"),
                format!("\"{}\" appears twice; node group names are unique", ng.name),
            ));
        }
        if ng.max == Some(0) {
            out.push(SpecError::invalid(field("max"), "must be at least 1"));
        }
        if let (Some(min), Some(max)) = (ng.min, ng.max)
            && min > max
        {
            out.push(SpecError::invalid(
                field("min"),
                format!("{min} is above max {max}: min <= desired <= max"),
            ));
        }
        if let Some(desired) = ng.desired
            && (ng.min.is_some_and(|m| desired < m) || ng.max.is_some_and(|m| desired > m))
        {
            out.push(SpecError::invalid(
                field("desired"),
                format!("{desired} is outside min..max: min <= desired <= max"),
            ));
        }
    }
}

impl EnvironmentSpec {
    /// Checks every rule a parsed spec must follow: the first problem, if any.
    pub fn validate(&self) -> Result<(), SpecError> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Every rule a parsed spec breaks, in the document's order, so that a person fixes them in one pass.
    pub fn problems(&self) -> Vec<SpecError> {
        let mut out = Vec::new();
        if let Err(r) = validate_environment_name(&self.environment) {
            out.push(SpecError::invalid("environment", r));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, db) in self.rds.iter().enumerate() {
            if let Err(r) = validate_db_identifier(&db.identifier) {
                out.push(SpecError::invalid(format!("rds[{i}].identifier"), r));
            }
            if !seen.insert(db.identifier.as_str()) {
                out.push(SpecError::invalid(
                    format!("rds[{i}].identifier"),
                    format!(
                        "\"{}\" appears twice; identifiers are unique",
                        db.identifier
                    ),
                ));
            }
            if db.engine != "postgres" {
                out.push(SpecError::invalid(
                    format!("rds[{i}].engine"),
                    format!("\"{}\" is not supported; allowed: postgres", db.engine),
                ));
            }
            if let Some(gb) = db.allocated_storage_gb
                && !STORAGE_GB.contains(&gb)
            {
                out.push(SpecError::invalid(
                    format!("rds[{i}].allocated_storage_gb"),
                    format!(
                        "{gb} is out of range: {} to {} GiB",
                        STORAGE_GB.start(),
                        STORAGE_GB.end()
                    ),
                ));
            }
            if let Some(days) = db.backup_retention_days
                && !BACKUP_RETENTION_DAYS.contains(&days)
            {
                out.push(SpecError::invalid(
                    format!("rds[{i}].backup_retention_days"),
                    format!(
                        "{days} is out of range: {} to {} days",
                        BACKUP_RETENTION_DAYS.start(),
                        BACKUP_RETENTION_DAYS.end()
                    ),
                ));
            }
            if db.engine_version.as_deref().is_some_and(|v| !is_version(v)) {
                out.push(SpecError::invalid(
                    format!("rds[{i}].engine_version"),
                    format!(
                        "\"{}\" is not a version: digits and dots, e.g. \"16.4\"",
                        db.engine_version.as_deref().unwrap_or_default()
                    ),
                ));
            }
            rds_settings::problems(i, db, &mut out);
            if !db.instance_class.starts_with("db.") {
                out.push(SpecError::invalid(
                    format!("rds[{i}].instance_class"),
                    format!(
                        "\"{}\" is not an RDS instance class (e.g. db.t4g.medium)",
                        db.instance_class
                    ),
                ));
            }
        }
        super::redis::problems(&self.redis, &mut out);
        if self.backup.keep_last == 0 {
            out.push(SpecError::invalid(
                "backup.keep_last",
                "must be at least 1: the newest backup is never deleted",
            ));
        }
        if self.backup.retention_days == 0 {
            out.push(SpecError::invalid(
                "backup.retention_days",
                "must be at least 1 day",
            ));
        }
        if let Some(region) = &self.backup.copy_to_region
            && let Err(r) = validate_region(region)
        {
            out.push(SpecError::invalid("backup.copy_to_region", r));
        }
        if let Some(bucket) = &self.backup.redis_export_bucket
            && let Err(r) = crate::config::validate_bucket_name(bucket)
        {
            out.push(SpecError::invalid("backup.redis_export_bucket", r));
        }
        if let Some(key) = &self.backup.copy_kms_key_id
            && let Err(r) = check_copy_key(key, self.backup.copy_to_region.as_deref())
        {
            out.push(SpecError::invalid("backup.copy_kms_key_id", r));
        }
        if let Some(drill) = &self.drill {
            if drill.rto_target_minutes == 0 {
                out.push(SpecError::invalid(
                    "drill.rto_target_minutes",
                    "must be at least 1 minute",
                ));
            }
            if drill.rpo_target_minutes == 0 {
                out.push(SpecError::invalid(
                    "drill.rpo_target_minutes",
                    "must be at least 1 minute",
                ));
            }
            if let Some(days) = drill.every_days
                && !(1..=365).contains(&days)
            {
                out.push(SpecError::invalid(
                    "drill.every_days",
                    format!("{days} is not a period of 1 to 365 days"),
                ));
            }
            if !drill.instance_class.starts_with("db.") {
                out.push(SpecError::invalid(
                    "drill.instance_class",
                    format!(
                        "\"{}\" is not an RDS instance class (e.g. db.t4g.small)",
                        drill.instance_class
                    ),
                ));
            }
            if let Some(probe) = &drill.probe
                && let Err(e) = probe.check("drill.probe")
            {
                out.push(e);
            }
            if let Some(key) = drill
                .redis_probe
                .as_ref()
                .and_then(|p| p.canary_key.as_deref())
                && (key.is_empty() || key.len() > 512)
            {
                out.push(SpecError::invalid(
                    "drill.redis_probe.canary_key",
                    "must be a key name of 1 to 512 bytes; leave it out to PING only",
                ));
            }
            if drill.redis_probe.is_some() && self.redis.is_empty() {
                out.push(SpecError::invalid(
                    "drill.redis_probe",
                    "the environment has no `redis` replication group to probe: add one or remove the probe",
                ));
            }
            let groups = drill
                .placement
                .iter()
                .flat_map(|p| &p.vpc_security_group_ids);
            for (i, group) in groups.enumerate() {
                if !is_security_group_id(group) {
                    out.push(SpecError::invalid(
                        format!("drill.placement.vpc_security_group_ids[{i}]"),
                        format!("\"{group}\" is not a VPC security group id (sg- and 8 or 17 hex digits)"),
                    ));
                }
            }
        }
        if let Some(eks) = &self.eks {
            validate_eks(eks, &mut out);
        }
        if let Some(sql) = &self.health.sql {
            if self.instance(&sql.instance).is_none() {
                let known: Vec<&str> = self.rds.iter().map(|db| db.identifier.as_str()).collect();
                out.push(SpecError::invalid(
                    "health.sql.instance",
                    format!(
                        "\"{}\" is not one of this environment's RDS instances ({})",
                        sql.instance,
                        known.join(", ")
                    ),
                ));
            }
            if let Err(e) = sql.probe.check("health.sql.probe") {
                out.push(e);
            }
        }
        for (i, check) in self.health.http.iter().enumerate() {
            let field = |f: &str| format!("health.http[{i}].{f}");
            if !(check.url.starts_with("http://") || check.url.starts_with("https://"))
                || check.url.len() < "http://x".len()
            {
                out.push(SpecError::invalid(
                    field("url"),
                    format!("\"{}\" is not an http:// or https:// URL", check.url),
                ));
            }
            if !HTTP_STATUS.contains(&check.expect_status) {
                out.push(SpecError::invalid(
                    field("expect_status"),
                    format!(
                        "{} is not an HTTP status ({} to {})",
                        check.expect_status,
                        HTTP_STATUS.start(),
                        HTTP_STATUS.end()
                    ),
                ));
            }
            if !TIMEOUT_MS.contains(&check.timeout_ms) {
                out.push(SpecError::invalid(
                    field("timeout_ms"),
                    format!(
                        "{} is out of range: {} to {} milliseconds",
                        check.timeout_ms,
                        TIMEOUT_MS.start(),
                        TIMEOUT_MS.end()
                    ),
                ));
            }
        }
        if self.health.backup_max_age_minutes == Some(0) {
            out.push(SpecError::invalid(
                "health.backup_max_age_minutes",
                "must be at least 1 minute; leave it out to use the drill's RPO target",
            ));
        }
        // Step Functions ends an execution after a year: a longer wait could never be answered.
        if !(1..=525_600).contains(&self.approval.timeout_minutes) {
            out.push(SpecError::invalid(
                "approval.timeout_minutes",
                format!(
                    "{} is out of range: 1 to 525600 minutes (one year, the longest a workflow runs)",
                    self.approval.timeout_minutes
                ),
            ));
        }
        // A bake holds the environment's lock: longer than half a day would keep backups out for days.
        if self.rollback.bake_minutes > 720 {
            out.push(SpecError::invalid(
                "rollback.bake_minutes",
                format!(
                    "{} is out of range: 0 to 720 minutes (12 hours)",
                    self.rollback.bake_minutes
                ),
            ));
        }
        if !(1..=10_080).contains(&self.rollback.window_minutes) {
            out.push(SpecError::invalid(
                "rollback.window_minutes",
                format!(
                    "{} is out of range: 1 to 10080 minutes (a week)",
                    self.rollback.window_minutes
                ),
            ));
        }
        if !(1..=50).contains(&self.rollback.keep_known_good) {
            out.push(SpecError::invalid(
                "rollback.keep_known_good",
                format!(
                    "{} is out of range: 1 to 50 deployments",
                    self.rollback.keep_known_good
                ),
            ));
        }
        for (i, name) in self.alarms.names.iter().enumerate() {
            if name.trim().is_empty() {
                out.push(SpecError::invalid(
                    format!("alarms.names[{i}]"),
                    "must not be empty",
                ));
            }
        }
        for (i, prefix) in self.alarms.prefixes.iter().enumerate() {
            if prefix.trim().is_empty() {
                out.push(SpecError::invalid(
                    format!("alarms.prefixes[{i}]"),
                    "must not be empty: an empty prefix would claim every alarm",
                ));
            }
        }
        out
    }
}

/// A copy key names a key of the copy region: an ARN of that region, a key id or an alias (resolved in the
/// copy region by RDS), and only beside `copy_to_region`.
fn check_copy_key(key: &str, copy_to_region: Option<&str>) -> Result<(), String> {
    let Some(region) = copy_to_region else {
        return Err("copies are encrypted with it, and there are none: set backup.copy_to_region too, or remove it".into());
    };
    if let Some(key_region) = kms_key_region(key) {
        if key_region != region {
            return Err(format!(
                "\"{key}\" is a key of {key_region}: a KMS key encrypts only in its own region, so the copies in {region} need a key of {region}"
            ));
        }
        return Ok(());
    }
    if is_key_reference(key) {
        Ok(())
    } else {
        Err(format!(
            "\"{key}\" is not a KMS key: use its ARN, its key id or alias/<name> (a key of {region})"
        ))
    }
}
