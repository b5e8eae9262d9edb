//! The environment spec: the YAML document at `specs/<env>/spec.yaml`, parsed and validated.
//!
//! Parsing never guesses: an unknown field is an error (a typo in `retention_days` must not silently turn
//! retention off), and every validation error names the field by its path and says what is allowed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The S3 key of an environment's spec in the state bucket.
pub fn spec_key(environment: &str) -> String {
    format!("specs/{environment}/spec.yaml")
}

/// A spec could not be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpecError {
    /// The document is not YAML of the spec's shape (unknown field, wrong type, missing field).
    #[error("spec is not valid YAML of the expected shape: {0}")]
    Syntax(String),
    /// A field does not have the spec's shape (unknown field, wrong type, missing field).
    #[error("spec field `{field}`: {reason}")]
    Shape {
        /// The field's path, e.g. `rds[0].instance_class`.
        field: String,
        /// What serde found wrong, with what is allowed.
        reason: String,
    },
    /// A spec file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// A spec file is invalid; names the file.
    #[error("{path}: {source}")]
    InFile {
        /// The file.
        path: String,
        /// What is wrong.
        #[source]
        source: Box<SpecError>,
    },
    /// A field has a value that is not allowed.
    #[error("spec field `{field}`: {reason}")]
    Invalid {
        /// The field's path, e.g. `rds[1].identifier`.
        field: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

impl SpecError {
    /// The path of the offending field (`spec` when the whole document is malformed).
    pub fn field(&self) -> &str {
        match self {
            SpecError::Syntax(_) | SpecError::Read { .. } => "spec",
            SpecError::Invalid { field, .. } | SpecError::Shape { field, .. } => field,
            SpecError::InFile { source, .. } => source.field(),
        }
    }

    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// One environment's desired state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// The environment's name (`dev`, `staging`, `prod`, ...).
    pub environment: String,
    /// Tags every resource of the environment carries.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The RDS instances.
    #[serde(default)]
    pub rds: Vec<RdsSpec>,
    /// The EKS cluster, if any.
    #[serde(default)]
    pub eks: Option<EksSpec>,
    /// Health checks run after every change and by the sweep.
    #[serde(default)]
    pub health: HealthSpec,
    /// Backup policy.
    #[serde(default)]
    pub backup: BackupPolicy,
    /// DR drill policy; without it the environment cannot be drilled.
    #[serde(default)]
    pub drill: Option<DrillPolicy>,
    /// Whether a change waits for a person's approval, and for how long.
    #[serde(default)]
    pub approval: ApprovalPolicy,
    /// The CloudWatch alarms that belong to this environment: one going to ALARM rolls it back.
    #[serde(default)]
    pub alarms: AlarmMapping,
}

/// The health checks of an environment (RDS and EKS are always checked; these add to them).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    /// HTTP endpoints that must answer as expected.
    #[serde(default)]
    pub http: Vec<HttpCheck>,
    /// The newest completed backup may be at most this old (default: the drill's RPO target, if any).
    #[serde(default)]
    pub backup_max_age_minutes: Option<u32>,
    /// A SQL probe of one of the environment's live instances (credentials by reference only).
    #[serde(default)]
    pub sql: Option<SqlHealthCheck>,
}

/// The health check's SQL probe: `SELECT 1` on one of the environment's RDS instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlHealthCheck {
    /// The RDS instance (one of the spec's `rds[].identifier`).
    pub instance: String,
    /// Database, user and the credentials' reference (a Secrets Manager secret or IAM authentication).
    pub probe: ProbeSpec,
}

/// One HTTP health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// The URL (`http://` or `https://`).
    pub url: String,
    /// The status the endpoint must answer with.
    #[serde(default = "default_expect_status")]
    pub expect_status: u16,
    /// The latency budget: a slower answer (or none) fails the check.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// A string the body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
}

fn default_expect_status() -> u16 {
    200
}

fn default_timeout_ms() -> u64 {
    2000
}

/// Whether changes wait for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPolicy {
    /// Every change waits for approval (irreversible changes always do).
    #[serde(default)]
    pub required: bool,
    /// How long a change waits; no answer in time is a rejection.
    #[serde(default = "default_approval_timeout")]
    pub timeout_minutes: u32,
}

/// One day: a change requested at the end of a working day can still be approved the next morning.
pub const DEFAULT_APPROVAL_TIMEOUT_MINUTES: u32 = 1440;

fn default_approval_timeout() -> u32 {
    DEFAULT_APPROVAL_TIMEOUT_MINUTES
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self {
            required: false,
            timeout_minutes: DEFAULT_APPROVAL_TIMEOUT_MINUTES,
        }
    }
}

/// Which CloudWatch alarms belong to the environment: exact names, or name prefixes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmMapping {
    /// Alarm names.
    #[serde(default)]
    pub names: Vec<String>,
    /// Alarm name prefixes.
    #[serde(default)]
    pub prefixes: Vec<String>,
}

impl AlarmMapping {
    /// Whether the alarm named `alarm` belongs here.
    pub fn matches(&self, alarm: &str) -> bool {
        self.names.iter().any(|n| n == alarm)
            || self.prefixes.iter().any(|p| alarm.starts_with(p.as_str()))
    }
}

/// One RDS instance of the spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdsSpec {
    /// The DB instance identifier.
    pub identifier: String,
    /// Engine, e.g. `postgres`.
    pub engine: String,
    /// Engine version, e.g. `"16.4"`.
    #[serde(default)]
    pub engine_version: Option<String>,
    /// Instance class, e.g. `db.t4g.medium`.
    pub instance_class: String,
    /// Allocated storage in GiB.
    #[serde(default)]
    pub allocated_storage_gb: Option<u32>,
    /// Multi-AZ deployment.
    #[serde(default)]
    pub multi_az: Option<bool>,
    /// Automated backup retention in days (RDS's own, not opsplane's).
    #[serde(default)]
    pub backup_retention_days: Option<u32>,
    /// Deletion protection.
    #[serde(default)]
    pub deletion_protection: Option<bool>,
    /// Storage encryption.
    #[serde(default)]
    pub storage_encrypted: Option<bool>,
    /// Public accessibility.
    #[serde(default)]
    pub publicly_accessible: Option<bool>,
    /// The master user, used only when the instance is created (its password is kept by RDS in Secrets
    /// Manager, never in the spec).
    #[serde(default)]
    pub master_username: Option<String>,
}

/// The EKS part of the spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EksSpec {
    /// Cluster name.
    pub cluster: String,
    /// Kubernetes version.
    #[serde(default)]
    pub version: Option<String>,
    /// The cluster's IAM role; needed only to create the cluster.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The subnets of the cluster and its node groups; needed only to create them.
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    /// The node groups' IAM role; needed only to create a node group.
    #[serde(default)]
    pub node_role_arn: Option<String>,
    /// Managed node groups.
    #[serde(default)]
    pub nodegroups: Vec<NodegroupSpec>,
}

/// One managed node group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodegroupSpec {
    /// Node group name.
    pub name: String,
    /// Instance types.
    #[serde(default)]
    pub instance_types: Vec<String>,
    /// Minimum size.
    #[serde(default)]
    pub min: Option<u32>,
    /// Maximum size.
    #[serde(default)]
    pub max: Option<u32>,
    /// Desired size.
    #[serde(default)]
    pub desired: Option<u32>,
}

/// How opsplane keeps backups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupPolicy {
    /// Snapshots older than this many days may be deleted.
    pub retention_days: u32,
    /// The newest this many available snapshots of each instance are never deleted, whatever their age.
    pub keep_last: u32,
    /// A second region every snapshot is copied to.
    #[serde(default)]
    pub copy_to_region: Option<String>,
}

impl Default for BackupPolicy {
    fn default() -> Self {
        Self {
            retention_days: 14,
            keep_last: 3,
            copy_to_region: None,
        }
    }
}

/// How the environment is drilled and what it must achieve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillPolicy {
    /// Recovery time objective in minutes.
    pub rto_target_minutes: u32,
    /// Recovery point objective in minutes.
    pub rpo_target_minutes: u32,
    /// Instance class of the scratch instance.
    pub instance_class: String,
    /// The SQL probe run against the restored instance.
    #[serde(default)]
    pub probe: Option<ProbeSpec>,
}

/// A SQL probe: `SELECT 1`, then optionally a canary query whose single timestamp is the newest write.
///
/// Credentials are given by reference only, exactly one of `secret_arn` and `iam_auth: true`: the handler
/// that connects resolves them itself (see `opsplane_shared::secrets`), so no password is ever in a spec, a
/// workflow's input or output, or a function's environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// Database name.
    pub database: String,
    /// User name. May be left out with `secret_arn` when the secret's JSON has `username` (as the secret RDS
    /// manages with `ManageMasterUserPassword` has); when both are set they must agree.
    #[serde(default)]
    pub user: String,
    /// A Secrets Manager secret holding the password: a string, or JSON with `password` (and `username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_arn: Option<String>,
    /// Log in with an RDS IAM auth token for `user`, over TLS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub iam_auth: bool,
    /// A query returning one `timestamptz`: the newest write in the restored data.
    #[serde(default)]
    pub canary_query: Option<String>,
}

impl ProbeSpec {
    /// The credential reference, once [`ProbeSpec::check`] has passed.
    pub fn credentials(&self) -> crate::secrets::CredentialRef {
        match &self.secret_arn {
            Some(arn) if !self.iam_auth => {
                crate::secrets::CredentialRef::Secret { arn: arn.clone() }
            }
            _ => crate::secrets::CredentialRef::IamAuth,
        }
    }

    /// Checks the probe; `prefix` is where it sits in the spec (`drill.probe`). Errors name the field.
    pub fn check(&self, prefix: &str) -> Result<(), SpecError> {
        let field = |name: &str| format!("{prefix}.{name}");
        if self.database.is_empty() {
            return Err(SpecError::invalid(field("database"), "must not be empty"));
        }
        match (&self.secret_arn, self.iam_auth) {
            (Some(_), true) | (None, false) => {
                return Err(SpecError::invalid(
                    field("secret_arn"),
                    "give exactly one of `secret_arn` (a Secrets Manager secret) and `iam_auth: true`; \
                     a password is never written in a spec",
                ));
            }
            (Some(arn), false) => {
                // Full ARN or name, as GetSecretValue takes; a password pasted here would fail this check.
                let ok = arn.starts_with("arn:aws")
                    && arn.split(':').nth(2) == Some("secretsmanager")
                    && arn.split(':').count() >= 7;
                if !ok {
                    return Err(SpecError::invalid(
                        field("secret_arn"),
                        "must be a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)",
                    ));
                }
            }
            (None, true) => {
                if self.user.is_empty() {
                    return Err(SpecError::invalid(
                        field("user"),
                        "must not be empty with `iam_auth: true` (the token is issued for a user)",
                    ));
                }
            }
        }
        if self
            .canary_query
            .as_deref()
            .is_some_and(|q| q.trim().is_empty())
        {
            return Err(SpecError::invalid(
                field("canary_query"),
                "must not be empty; leave it out to skip the canary",
            ));
        }
        Ok(())
    }
}

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
            "{name:?} is not an environment name: use 1 to 32 lowercase letters, digits and '-', \
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
            "{id:?} is not a DB instance identifier: 1 to 63 letters, digits and single '-', \
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
            "{region:?} is not an AWS region name (e.g. us-west-2)"
        ))
    }
}

/// Whether `v` is a version of digits separated by dots (`16.4`, `1.30`).
fn is_version(v: &str) -> bool {
    !v.is_empty()
        && v.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn validate_eks(eks: &EksSpec) -> Result<(), SpecError> {
    if eks.cluster.is_empty() {
        return Err(SpecError::invalid("eks.cluster", "must not be empty"));
    }
    if let Some(v) = &eks.version
        && !is_version(v)
    {
        return Err(SpecError::invalid(
            "eks.version",
            format!("{v:?} is not a Kubernetes version, e.g. \"1.30\""),
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, ng) in eks.nodegroups.iter().enumerate() {
        let field = |f: &str| format!("eks.nodegroups[{i}].{f}");
        if ng.name.is_empty() {
            return Err(SpecError::invalid(field("name"), "must not be empty"));
        }
        if !names.insert(ng.name.as_str()) {
            return Err(SpecError::invalid(
                field("name"),
                format!("{:?} appears twice; node group names are unique", ng.name),
            ));
        }
        if ng.max == Some(0) {
            return Err(SpecError::invalid(field("max"), "must be at least 1"));
        }
        if let (Some(min), Some(max)) = (ng.min, ng.max)
            && min > max
        {
            return Err(SpecError::invalid(
                field("min"),
                format!("{min} is above max {max}: min <= desired <= max"),
            ));
        }
        if let Some(desired) = ng.desired
            && (ng.min.is_some_and(|m| desired < m) || ng.max.is_some_and(|m| desired > m))
        {
            return Err(SpecError::invalid(
                field("desired"),
                format!("{desired} is outside min..max: min <= desired <= max"),
            ));
        }
    }
    Ok(())
}

impl EnvironmentSpec {
    /// Parses and validates a spec document.
    pub fn parse(yaml: &str) -> Result<Self, SpecError> {
        let de = serde_yaml_ng::Deserializer::from_str(yaml);
        let spec: EnvironmentSpec = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let reason = e.into_inner().to_string();
            if field.is_empty() || field == "." {
                SpecError::Syntax(reason)
            } else {
                SpecError::Shape { field, reason }
            }
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Reads, parses and validates a spec file; every error names the file (and the field).
    pub fn parse_file(path: &std::path::Path) -> Result<Self, SpecError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SpecError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        Self::parse(&text).map_err(|e| SpecError::InFile {
            path: shown,
            source: Box::new(e),
        })
    }

    /// Checks every rule a parsed spec must follow.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_environment_name(&self.environment)
            .map_err(|r| SpecError::invalid("environment", r))?;
        let mut seen = std::collections::BTreeSet::new();
        for (i, db) in self.rds.iter().enumerate() {
            validate_db_identifier(&db.identifier)
                .map_err(|r| SpecError::invalid(format!("rds[{i}].identifier"), r))?;
            if !seen.insert(db.identifier.as_str()) {
                return Err(SpecError::invalid(
                    format!("rds[{i}].identifier"),
                    format!("{:?} appears twice; identifiers are unique", db.identifier),
                ));
            }
            if db.engine != "postgres" {
                return Err(SpecError::invalid(
                    format!("rds[{i}].engine"),
                    format!("{:?} is not supported; allowed: postgres", db.engine),
                ));
            }
            if let Some(gb) = db.allocated_storage_gb
                && !(20..=65_536).contains(&gb)
            {
                return Err(SpecError::invalid(
                    format!("rds[{i}].allocated_storage_gb"),
                    format!("{gb} is out of range: 20 to 65536 GiB"),
                ));
            }
            if let Some(days) = db.backup_retention_days
                && days > 35
            {
                return Err(SpecError::invalid(
                    format!("rds[{i}].backup_retention_days"),
                    format!("{days} is out of range: 0 to 35 days"),
                ));
            }
            if db.engine_version.as_deref().is_some_and(|v| !is_version(v)) {
                return Err(SpecError::invalid(
                    format!("rds[{i}].engine_version"),
                    format!(
                        "{:?} is not a version: digits and dots, e.g. \"16.4\"",
                        db.engine_version.as_deref().unwrap_or_default()
                    ),
                ));
            }
            if !db.instance_class.starts_with("db.") {
                return Err(SpecError::invalid(
                    format!("rds[{i}].instance_class"),
                    format!(
                        "{:?} is not an RDS instance class (e.g. db.t4g.medium)",
                        db.instance_class
                    ),
                ));
            }
        }
        if self.backup.keep_last == 0 {
            return Err(SpecError::invalid(
                "backup.keep_last",
                "must be at least 1: the newest backup is never deleted",
            ));
        }
        if self.backup.retention_days == 0 {
            return Err(SpecError::invalid(
                "backup.retention_days",
                "must be at least 1 day",
            ));
        }
        if let Some(region) = &self.backup.copy_to_region {
            validate_region(region).map_err(|r| SpecError::invalid("backup.copy_to_region", r))?;
        }
        if let Some(drill) = &self.drill {
            if drill.rto_target_minutes == 0 {
                return Err(SpecError::invalid(
                    "drill.rto_target_minutes",
                    "must be at least 1 minute",
                ));
            }
            if drill.rpo_target_minutes == 0 {
                return Err(SpecError::invalid(
                    "drill.rpo_target_minutes",
                    "must be at least 1 minute",
                ));
            }
            if !drill.instance_class.starts_with("db.") {
                return Err(SpecError::invalid(
                    "drill.instance_class",
                    format!(
                        "{:?} is not an RDS instance class (e.g. db.t4g.small)",
                        drill.instance_class
                    ),
                ));
            }
            if let Some(probe) = &drill.probe {
                probe.check("drill.probe")?;
            }
        }
        if let Some(eks) = &self.eks {
            validate_eks(eks)?;
        }
        if let Some(sql) = &self.health.sql {
            if self.instance(&sql.instance).is_none() {
                let known: Vec<&str> = self.rds.iter().map(|db| db.identifier.as_str()).collect();
                return Err(SpecError::invalid(
                    "health.sql.instance",
                    format!(
                        "{:?} is not one of this environment's RDS instances ({})",
                        sql.instance,
                        known.join(", ")
                    ),
                ));
            }
            sql.probe.check("health.sql.probe")?;
        }
        for (i, check) in self.health.http.iter().enumerate() {
            let field = |f: &str| format!("health.http[{i}].{f}");
            if !(check.url.starts_with("http://") || check.url.starts_with("https://"))
                || check.url.len() < "http://x".len()
            {
                return Err(SpecError::invalid(
                    field("url"),
                    format!("{:?} is not an http:// or https:// URL", check.url),
                ));
            }
            if !(100..=599).contains(&check.expect_status) {
                return Err(SpecError::invalid(
                    field("expect_status"),
                    format!("{} is not an HTTP status (100 to 599)", check.expect_status),
                ));
            }
            if !(1..=60_000).contains(&check.timeout_ms) {
                return Err(SpecError::invalid(
                    field("timeout_ms"),
                    format!(
                        "{} is out of range: 1 to 60000 milliseconds",
                        check.timeout_ms
                    ),
                ));
            }
        }
        if self.health.backup_max_age_minutes == Some(0) {
            return Err(SpecError::invalid(
                "health.backup_max_age_minutes",
                "must be at least 1 minute; leave it out to use the drill's RPO target",
            ));
        }
        // Step Functions ends an execution after a year: a longer wait could never be answered.
        if !(1..=525_600).contains(&self.approval.timeout_minutes) {
            return Err(SpecError::invalid(
                "approval.timeout_minutes",
                format!(
                    "{} is out of range: 1 to 525600 minutes (one year, the longest a workflow runs)",
                    self.approval.timeout_minutes
                ),
            ));
        }
        for (i, name) in self.alarms.names.iter().enumerate() {
            if name.trim().is_empty() {
                return Err(SpecError::invalid(
                    format!("alarms.names[{i}]"),
                    "must not be empty",
                ));
            }
        }
        for (i, prefix) in self.alarms.prefixes.iter().enumerate() {
            if prefix.trim().is_empty() {
                return Err(SpecError::invalid(
                    format!("alarms.prefixes[{i}]"),
                    "must not be empty: an empty prefix would claim every alarm",
                ));
            }
        }
        Ok(())
    }

    /// The spec of one RDS instance.
    pub fn instance(&self, identifier: &str) -> Option<&RdsSpec> {
        self.rds.iter().find(|d| d.identifier == identifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESIGN_EXAMPLE: &str = r#"
environment: staging
tags: { Project: acme, Environment: staging, ManagedBy: opsplane }
rds:
  - identifier: acme-staging-db
    engine: postgres
    engine_version: "16.4"
    instance_class: db.t4g.medium
    allocated_storage_gb: 100
    multi_az: true
    backup_retention_days: 14
    deletion_protection: true
    storage_encrypted: true
    publicly_accessible: false
eks:
  cluster: acme-staging
  version: "1.30"
  nodegroups:
    - { name: general, instance_types: [t3.medium, t3a.medium], min: 2, max: 10, desired: 3 }
health:
  http: [ { url: "https://staging.acme.example/health", expect_status: 200, timeout_ms: 2000 } ]
backup: { retention_days: 14, keep_last: 3, copy_to_region: us-west-2 }
drill: { rto_target_minutes: 30, rpo_target_minutes: 5, instance_class: db.t4g.small }
approval: { required: false }     # prod: true
"#;

    #[test]
    fn parses_the_design_example() {
        let spec = EnvironmentSpec::parse(DESIGN_EXAMPLE).unwrap();
        assert_eq!(spec.environment, "staging");
        assert_eq!(spec.rds.len(), 1);
        assert_eq!(spec.rds[0].engine_version.as_deref(), Some("16.4"));
        assert_eq!(spec.eks.as_ref().unwrap().nodegroups[0].desired, Some(3));
        assert_eq!(spec.backup.keep_last, 3);
        assert_eq!(spec.backup.copy_to_region.as_deref(), Some("us-west-2"));
        let drill = spec.drill.unwrap();
        assert_eq!(drill.rto_target_minutes, 30);
        assert_eq!(drill.instance_class, "db.t4g.small");
        assert!(drill.probe.is_none());
        assert_eq!(spec.tags["ManagedBy"], "opsplane");
    }

    #[test]
    fn unknown_fields_are_errors_not_silently_ignored() {
        let doc = DESIGN_EXAMPLE.replace("keep_last: 3", "keep_lats: 3");
        let err = EnvironmentSpec::parse(&doc).unwrap_err();
        assert!(matches!(err, SpecError::Shape { .. }), "{err:?}");
        assert!(err.to_string().contains("keep_lats"), "{err}");
        assert!(err.field().starts_with("backup"), "{err:?}");
    }

    fn field_of(doc: &str) -> String {
        EnvironmentSpec::parse(doc).unwrap_err().field().to_owned()
    }

    #[test]
    fn each_rule_names_its_field() {
        assert_eq!(
            field_of(&DESIGN_EXAMPLE.replace("environment: staging", "environment: Staging")),
            "environment"
        );
        assert_eq!(
            field_of(&DESIGN_EXAMPLE.replace("keep_last: 3", "keep_last: 0")),
            "backup.keep_last"
        );
        assert_eq!(
            field_of(&DESIGN_EXAMPLE.replace("retention_days: 14,", "retention_days: 0,")),
            "backup.retention_days"
        );
        assert_eq!(
            field_of(&DESIGN_EXAMPLE.replace("us-west-2", "mars")),
            "backup.copy_to_region"
        );
        assert_eq!(
            field_of(&DESIGN_EXAMPLE.replace("identifier: acme-staging-db", "identifier: 9db")),
            "rds[0].identifier"
        );
        assert_eq!(
            field_of(
                &DESIGN_EXAMPLE.replace("instance_class: db.t4g.small", "instance_class: t4g")
            ),
            "drill.instance_class"
        );
        assert_eq!(
            field_of(&DESIGN_EXAMPLE.replace("rto_target_minutes: 30", "rto_target_minutes: 0")),
            "drill.rto_target_minutes"
        );
    }

    #[test]
    fn duplicate_instances_are_rejected() {
        let doc = r#"
environment: prod
rds:
  - { identifier: a-db, engine: postgres, instance_class: db.t4g.small }
  - { identifier: a-db, engine: postgres, instance_class: db.t4g.small }
"#;
        let err = EnvironmentSpec::parse(doc).unwrap_err();
        assert_eq!(err.field(), "rds[1].identifier");
        assert!(err.to_string().contains("twice"));
    }

    #[test]
    fn probe_is_parsed_and_checked() {
        let doc = r#"
environment: prod
rds: [ { identifier: a-db, engine: postgres, instance_class: db.t4g.small } ]
drill:
  rto_target_minutes: 30
  rpo_target_minutes: 5
  instance_class: db.t4g.small
  probe: { database: app, secret_arn: "arn:aws:secretsmanager:us-east-1:1:secret:rds!db-x", canary_query: "SELECT max(at) FROM canary" }
"#;
        let spec = EnvironmentSpec::parse(doc).unwrap();
        let probe = spec.drill.unwrap().probe.unwrap();
        assert_eq!(probe.database, "app");
        assert_eq!(
            probe.credentials(),
            crate::secrets::CredentialRef::Secret {
                arn: "arn:aws:secretsmanager:us-east-1:1:secret:rds!db-x".into()
            }
        );
        assert!(probe.canary_query.unwrap().contains("canary"));
        let bad = doc.replace("SELECT max(at) FROM canary", " ");
        assert_eq!(field_of(&bad), "drill.probe.canary_query");
    }

    #[test]
    fn probe_credentials_are_references_exactly_one() {
        let doc = |probe: &str| {
            format!(
                "environment: prod\nrds: [ {{ identifier: a-db, engine: postgres, instance_class: db.t4g.small }} ]\n\
                 drill: {{ rto_target_minutes: 30, rpo_target_minutes: 5, instance_class: db.t4g.small, probe: {probe} }}\n"
            )
        };
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:probe";
        assert_eq!(
            field_of(&doc("{ database: app, user: probe }")),
            "drill.probe.secret_arn"
        );
        assert_eq!(
            field_of(&doc(&format!(
                "{{ database: app, user: probe, iam_auth: true, secret_arn: \"{arn}\" }}"
            ))),
            "drill.probe.secret_arn"
        );
        assert_eq!(
            field_of(&doc("{ database: app, user: probe, secret_arn: hunter2 }")),
            "drill.probe.secret_arn"
        );
        assert_eq!(
            field_of(&doc("{ database: app, iam_auth: true }")),
            "drill.probe.user"
        );
        // A password field does not exist.
        assert!(
            EnvironmentSpec::parse(&doc("{ database: app, user: probe, password: x }")).is_err()
        );
        let iam =
            EnvironmentSpec::parse(&doc("{ database: app, user: probe, iam_auth: true }")).unwrap();
        assert_eq!(
            iam.drill.unwrap().probe.unwrap().credentials(),
            crate::secrets::CredentialRef::IamAuth
        );
    }

    #[test]
    fn environment_names() {
        assert!(validate_environment_name("prod").is_ok());
        assert!(validate_environment_name("eu-prod-2").is_ok());
        assert!(validate_environment_name("").is_err());
        assert!(validate_environment_name("2prod").is_err());
        assert!(validate_environment_name("prod_1").is_err());
        assert!(validate_environment_name(&"a".repeat(33)).is_err());
        assert_eq!(spec_key("prod"), "specs/prod/spec.yaml");
    }

    const FULL: &str = r#"
environment: prod
tags: { Project: acme, Environment: prod, ManagedBy: opsplane }
rds:
  - { identifier: acme-prod-db, engine: postgres, engine_version: "16.4", instance_class: db.r6g.large,
      allocated_storage_gb: 200, multi_az: true, backup_retention_days: 30, deletion_protection: true,
      storage_encrypted: true, publicly_accessible: false }
eks:
  cluster: acme-prod
  version: "1.30"
  role_arn: arn:aws:iam::123456789012:role/eks
  subnet_ids: [subnet-a, subnet-b]
  nodegroups:
    - { name: general, instance_types: [m6i.large], min: 3, max: 12, desired: 4 }
health:
  http: [ { url: "https://acme.example/health", body_contains: ok } ]
  backup_max_age_minutes: 1500
approval: { required: true }
alarms: { names: [acme-prod-5xx], prefixes: [acme-prod-] }
"#;

    #[test]
    fn health_approval_and_alarms_are_typed_with_defaults() {
        let spec = EnvironmentSpec::parse(FULL).unwrap();
        let http = &spec.health.http[0];
        assert_eq!(http.expect_status, 200);
        assert_eq!(http.timeout_ms, 2000);
        assert_eq!(http.body_contains.as_deref(), Some("ok"));
        assert_eq!(spec.health.backup_max_age_minutes, Some(1500));
        assert!(spec.approval.required);
        assert_eq!(
            spec.approval.timeout_minutes,
            DEFAULT_APPROVAL_TIMEOUT_MINUTES
        );
        assert!(spec.alarms.matches("acme-prod-5xx"));
        assert!(spec.alarms.matches("acme-prod-latency"));
        assert!(!spec.alarms.matches("acme-staging-5xx"));
        let eks = spec.eks.unwrap();
        assert_eq!(eks.subnet_ids.len(), 2);
        // Without the sections: no checks, no approval, no alarms.
        let bare = EnvironmentSpec::parse("environment: dev\n").unwrap();
        assert_eq!(bare.health, HealthSpec::default());
        assert!(!bare.approval.required);
        assert!(!bare.alarms.matches("anything"));
    }

    #[test]
    fn shape_errors_name_the_dotted_path() {
        let err = EnvironmentSpec::parse(
            &FULL.replace("instance_class: db.r6g.large", "instance_class: [x]"),
        )
        .unwrap_err();
        assert_eq!(err.field(), "rds[0].instance_class", "{err}");
        let err = EnvironmentSpec::parse(&FULL.replace("min: 3", "minimum: 3")).unwrap_err();
        assert!(err.field().starts_with("eks.nodegroups[0]"), "{err}");
        assert!(err.to_string().contains("minimum"), "{err}");
        let err = EnvironmentSpec::parse(&FULL.replace("required: true", "required: yes please"))
            .unwrap_err();
        assert_eq!(err.field(), "approval.required", "{err}");
    }

    #[test]
    fn new_rules_name_their_fields() {
        let cases = [
            ("engine: postgres", "engine: mysql", "rds[0].engine"),
            (
                "allocated_storage_gb: 200",
                "allocated_storage_gb: 5",
                "rds[0].allocated_storage_gb",
            ),
            (
                "backup_retention_days: 30",
                "backup_retention_days: 40",
                "rds[0].backup_retention_days",
            ),
            (
                "engine_version: \"16.4\"",
                "engine_version: latest",
                "rds[0].engine_version",
            ),
            ("desired: 4", "desired: 20", "eks.nodegroups[0].desired"),
            ("min: 3", "min: 13", "eks.nodegroups[0].min"),
            ("version: \"1.30\"", "version: newest", "eks.version"),
            (
                "url: \"https://acme.example/health\"",
                "url: acme.example",
                "health.http[0].url",
            ),
            (
                "body_contains: ok",
                "expect_status: 42",
                "health.http[0].expect_status",
            ),
            (
                "body_contains: ok",
                "timeout_ms: 0",
                "health.http[0].timeout_ms",
            ),
            (
                "backup_max_age_minutes: 1500",
                "backup_max_age_minutes: 0",
                "health.backup_max_age_minutes",
            ),
            (
                "required: true",
                "required: true, timeout_minutes: 0",
                "approval.timeout_minutes",
            ),
            (
                "prefixes: [acme-prod-]",
                "prefixes: [\"\"]",
                "alarms.prefixes[0]",
            ),
        ];
        for (from, to, field) in cases {
            assert!(FULL.contains(from), "{from}");
            assert_eq!(field_of(&FULL.replace(from, to)), field, "{to}");
        }
    }

    #[test]
    fn files_are_named_in_errors() {
        let dir = std::env::temp_dir().join(format!("opsplane-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("prod.yaml");
        std::fs::write(&path, FULL.replace("desired: 4", "desired: 20")).unwrap();
        let err = EnvironmentSpec::parse_file(&path).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("prod.yaml"), "{text}");
        assert!(text.contains("eks.nodegroups[0].desired"), "{text}");
        assert_eq!(err.field(), "eks.nodegroups[0].desired");
        std::fs::write(&path, FULL).unwrap();
        assert_eq!(
            EnvironmentSpec::parse_file(&path).unwrap().environment,
            "prod"
        );
        let missing = EnvironmentSpec::parse_file(&dir.join("nope.yaml")).unwrap_err();
        assert!(missing.to_string().contains("nope.yaml"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
