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
