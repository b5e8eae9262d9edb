//! What exists: RDS instances, the EKS cluster and its node groups as the adapters describe them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::spec::{AccessPolicySpec, LaunchTemplateSpec, TaintSpec};

/// An RDS instance as described.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActualInstance {
    /// Identifier.
    pub identifier: String,
    /// Status (`available`, `modifying`, `failed`, ...).
    pub status: String,
    /// Instance class.
    pub instance_class: String,
    /// Engine.
    pub engine: String,
    /// Engine version.
    pub engine_version: Option<String>,
    /// Allocated storage, GiB.
    pub allocated_storage_gb: Option<u32>,
    /// Multi-AZ.
    pub multi_az: Option<bool>,
    /// Automated backup retention, days.
    pub backup_retention_days: Option<u32>,
    /// Deletion protection.
    pub deletion_protection: Option<bool>,
    /// Storage encryption.
    pub storage_encrypted: Option<bool>,
    /// Public accessibility.
    pub publicly_accessible: Option<bool>,
    /// Changes RDS has accepted but not applied yet (field names as RDS spells them).
    #[serde(default)]
    pub pending: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Placement, storage, key and maintenance settings.
    #[serde(default)]
    pub settings: InstanceSettings,
}

/// An instance's placement, storage, key and maintenance settings as RDS describes them (each `None` or
/// empty when RDS does not say).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InstanceSettings {
    /// DB subnet group.
    pub db_subnet_group: Option<String>,
    /// VPC security group ids, sorted.
    #[serde(default)]
    pub vpc_security_group_ids: Vec<String>,
    /// DB parameter group.
    pub parameter_group: Option<String>,
    /// Option group.
    pub option_group: Option<String>,
    /// The storage's KMS key, as RDS reports it (an ARN).
    pub kms_key_id: Option<String>,
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
    /// Enhanced Monitoring interval, seconds.
    pub monitoring_interval: Option<u32>,
}

/// An EKS managed node group as described.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActualNodegroup {
    /// Name.
    pub name: String,
    /// Status (`ACTIVE`, `UPDATING`, `DEGRADED`, ...).
    pub status: String,
    /// Kubernetes version.
    pub version: Option<String>,
    /// Instance types.
    #[serde(default)]
    pub instance_types: Vec<String>,
    /// Minimum size.
    pub min: Option<u32>,
    /// Maximum size.
    pub max: Option<u32>,
    /// Desired size.
    pub desired: Option<u32>,
    /// Health issues EKS reports (`code: message`).
    #[serde(default)]
    pub health_issues: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// AMI type.
    #[serde(default)]
    pub ami_type: Option<String>,
    /// `ON_DEMAND` or `SPOT`.
    #[serde(default)]
    pub capacity_type: Option<String>,
    /// Root volume, GiB.
    #[serde(default)]
    pub disk_size: Option<u32>,
    /// Kubernetes labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Kubernetes taints, sorted.
    #[serde(default)]
    pub taints: Vec<TaintSpec>,
    /// The launch template, by the name or id and version EKS reports.
    #[serde(default)]
    pub launch_template: Option<LaunchTemplateSpec>,
}

/// An EKS cluster as described, with its node groups.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActualCluster {
    /// Name.
    pub name: String,
    /// Status (`ACTIVE`, `UPDATING`, `FAILED`, ...).
    pub status: String,
    /// Kubernetes version.
    pub version: Option<String>,
    /// Health issues EKS reports.
    #[serde(default)]
    pub health_issues: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Node groups.
    #[serde(default)]
    pub nodegroups: Vec<ActualNodegroup>,
    /// Whether the API endpoint is public.
    #[serde(default)]
    pub endpoint_public_access: Option<bool>,
    /// Whether the API endpoint is reachable inside the VPC.
    #[serde(default)]
    pub endpoint_private_access: Option<bool>,
    /// The CIDR blocks the public endpoint admits, sorted.
    #[serde(default)]
    pub public_access_cidrs: Vec<String>,
    /// The control plane log types enabled, sorted.
    #[serde(default)]
    pub logging: Vec<String>,
    /// The cluster's additional security groups, sorted.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// The subnets of the control plane's network interfaces, sorted.
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    /// Add-ons by name (read when the spec names any, and by the backup's export).
    #[serde(default)]
    pub addons: BTreeMap<String, ActualAddon>,
    /// Access entries by principal ARN (read when the spec names any, and by the backup's export).
    #[serde(default)]
    pub access_entries: BTreeMap<String, ActualAccessEntry>,
}

/// An EKS add-on as described.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActualAddon {
    /// `CREATING`, `ACTIVE`, `UPDATING`, `DEGRADED`, ...
    pub status: String,
    /// Its version.
    pub version: Option<String>,
    /// Its configuration values, parsed (EKS keeps them as a JSON or YAML string).
    pub configuration: Option<serde_json::Value>,
    /// Its service account's IAM role.
    pub service_account_role_arn: Option<String>,
}

/// An access entry as described, with its associated policies.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActualAccessEntry {
    /// Kubernetes groups, sorted.
    pub kubernetes_groups: Vec<String>,
    /// Associated access policies, sorted.
    pub policies: Vec<AccessPolicySpec>,
}

/// An ElastiCache replication group as described (the group and its primary's cache cluster).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActualReplicationGroup {
    /// Its id.
    pub id: String,
    /// `creating`, `available`, `modifying`, `deleting`, `snapshotting`, ...
    pub status: String,
    /// Node type.
    pub node_type: Option<String>,
    /// Engine version (a member cache cluster's).
    pub engine_version: Option<String>,
    /// Shards.
    pub num_node_groups: u32,
    /// Replicas in the first shard.
    pub replicas_per_node_group: u32,
    /// Cache subnet group.
    pub cache_subnet_group: Option<String>,
    /// VPC security groups, sorted.
    pub security_group_ids: Vec<String>,
    /// Cache parameter group.
    pub parameter_group: Option<String>,
    /// Encryption at rest.
    pub at_rest_encryption: bool,
    /// Encryption in transit.
    pub transit_encryption: bool,
    /// The KMS key at rest, when a customer key.
    pub kms_key_id: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Where clients connect (`host`, `port`): the primary endpoint, or the configuration endpoint in
    /// cluster mode; `None` until the group is available.
    #[serde(default)]
    pub endpoint: Option<(String, u16)>,
    /// When it was made.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

/// What exists of an environment: the instances, cluster and caches its spec names (absent ones are
/// missing).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActualState {
    /// The RDS instances that exist.
    #[serde(default)]
    pub instances: Vec<ActualInstance>,
    /// The EKS cluster, when it exists.
    #[serde(default)]
    pub cluster: Option<ActualCluster>,
    /// The Redis replication groups that exist.
    #[serde(default)]
    pub replication_groups: Vec<ActualReplicationGroup>,
}

impl ActualState {
    /// The instance of that identifier.
    pub fn instance(&self, identifier: &str) -> Option<&ActualInstance> {
        self.instances.iter().find(|i| i.identifier == identifier)
    }

    /// The replication group of that id.
    pub fn replication_group(&self, id: &str) -> Option<&ActualReplicationGroup> {
        self.replication_groups
            .iter()
            .find(|g| g.id.eq_ignore_ascii_case(id))
    }
}
