//! The resources a spec declares: RDS instances and the EKS cluster with its node groups.

use serde::{Deserialize, Serialize};

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
    /// The DB subnet group the instance lives in (its VPC and subnets); RDS's default VPC when absent.
    #[serde(default)]
    pub db_subnet_group: Option<String>,
    /// The VPC security groups (`sg-...`) of the instance; the VPC's default group when empty.
    #[serde(default)]
    pub vpc_security_group_ids: Vec<String>,
    /// The DB parameter group; the engine's default when absent.
    #[serde(default)]
    pub parameter_group: Option<String>,
    /// The option group; the engine's default when absent.
    #[serde(default)]
    pub option_group: Option<String>,
    /// The KMS key encrypting the storage (ARN, key id or `alias/...`); RDS's AWS-managed key when absent.
    /// Fixed at creation: RDS cannot change an instance's key.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Storage type: `gp2`, `gp3`, `io1`, `io2` or `standard`.
    #[serde(default)]
    pub storage_type: Option<String>,
    /// Provisioned IOPS (`io1`, `io2`, `gp3`).
    #[serde(default)]
    pub iops: Option<u32>,
    /// Storage throughput in MiB/s (`gp3` only).
    #[serde(default)]
    pub storage_throughput: Option<u32>,
    /// The certificate authority of the server certificate, e.g. `rds-ca-rsa2048-g1`.
    #[serde(default)]
    pub ca_certificate_identifier: Option<String>,
    /// The daily automated backup window, UTC, `hh24:mi-hh24:mi` (at least 30 minutes).
    #[serde(default)]
    pub backup_window: Option<String>,
    /// The weekly maintenance window, UTC, `ddd:hh24:mi-ddd:hh24:mi` (at least 30 minutes).
    #[serde(default)]
    pub maintenance_window: Option<String>,
    /// Whether RDS applies minor engine upgrades in the maintenance window.
    #[serde(default)]
    pub auto_minor_version_upgrade: Option<bool>,
    /// IAM database authentication.
    #[serde(default)]
    pub iam_database_authentication: Option<bool>,
    /// Performance Insights.
    #[serde(default)]
    pub performance_insights: Option<bool>,
    /// Enhanced Monitoring's interval in seconds: 0 (off), 1, 5, 10, 15, 30 or 60.
    #[serde(default)]
    pub monitoring_interval: Option<u32>,
    /// The role Enhanced Monitoring publishes with; needed when `monitoring_interval` is above 0.
    #[serde(default)]
    pub monitoring_role_arn: Option<String>,
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
