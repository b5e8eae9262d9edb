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
            SpecError::Syntax(_) => "spec",
            SpecError::Invalid { field, .. } => field,
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
    /// Health checks (read by the health-check function; kept opaque here).
    #[serde(default)]
    pub health: Option<serde_json::Value>,
    /// Backup policy.
    #[serde(default)]
    pub backup: BackupPolicy,
    /// DR drill policy; without it the environment cannot be drilled.
    #[serde(default)]
    pub drill: Option<DrillPolicy>,
    /// Approval policy (read by the provision workflow; kept opaque here).
    #[serde(default)]
    pub approval: Option<serde_json::Value>,
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

impl EnvironmentSpec {
    /// Parses and validates a spec document.
    pub fn parse(yaml: &str) -> Result<Self, SpecError> {
        let spec: EnvironmentSpec =
            serde_yaml_ng::from_str(yaml).map_err(|e| SpecError::Syntax(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
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
        if let Some(eks) = &self.eks
            && eks.cluster.is_empty()
        {
            return Err(SpecError::invalid("eks.cluster", "must not be empty"));
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
        assert!(matches!(err, SpecError::Syntax(_)));
        assert!(err.to_string().contains("keep_lats"), "{err}");
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
}
