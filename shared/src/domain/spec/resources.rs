//! The resources a spec declares: RDS instances and the EKS cluster with its node groups.

use std::collections::BTreeMap;

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
    /// Security groups (`sg-...`) EKS adds to the cluster's network interfaces; set when it is created.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// Whether the API server endpoint is reachable from the internet (opsplane creates it private).
    #[serde(default)]
    pub endpoint_public_access: Option<bool>,
    /// Whether the API server endpoint is reachable from inside the VPC.
    #[serde(default)]
    pub endpoint_private_access: Option<bool>,
    /// The CIDR blocks a public endpoint admits; EKS's default is `0.0.0.0/0`, everyone.
    #[serde(default)]
    pub public_access_cidrs: Vec<String>,
    /// The control plane log types sent to CloudWatch Logs: `api`, `audit`, `authenticator`,
    /// `controllerManager`, `scheduler`.
    #[serde(default)]
    pub logging: Option<Vec<String>>,
    /// EKS add-ons by name (`vpc-cni`, `coredns`, `kube-proxy`, `aws-ebs-csi-driver`, ...).
    #[serde(default)]
    pub addons: BTreeMap<String, AddonSpec>,
    /// Who may use the cluster: IAM principals with their Kubernetes groups and access policies.
    #[serde(default)]
    pub access_entries: Vec<AccessEntrySpec>,
    /// Managed node groups.
    #[serde(default)]
    pub nodegroups: Vec<NodegroupSpec>,
}

/// One EKS add-on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddonSpec {
    /// Its version, e.g. `v1.18.3-eksbuild.1`; EKS's default for the cluster's version when absent.
    #[serde(default)]
    pub version: Option<String>,
    /// Its configuration values (the add-on's schema), sent to EKS as JSON.
    #[serde(default)]
    pub configuration: Option<serde_json::Value>,
    /// The IAM role of the add-on's service account.
    #[serde(default)]
    pub service_account_role_arn: Option<String>,
}

/// One access entry: an IAM principal admitted to the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessEntrySpec {
    /// The IAM role or user (`arn:aws:iam::<account>:role/<name>`).
    pub principal_arn: String,
    /// The Kubernetes groups it belongs to.
    #[serde(default)]
    pub kubernetes_groups: Vec<String>,
    /// The EKS access policies associated with it.
    #[serde(default)]
    pub policies: Vec<AccessPolicySpec>,
}

/// An EKS access policy associated with an access entry, over the cluster or some namespaces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessPolicySpec {
    /// The policy, e.g. `arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy`.
    pub policy_arn: String,
    /// The namespaces it applies in; the whole cluster when empty.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// A Kubernetes taint on a node group's nodes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaintSpec {
    /// The taint's key.
    pub key: String,
    /// Its value.
    #[serde(default)]
    pub value: Option<String>,
    /// `NO_SCHEDULE`, `NO_EXECUTE` or `PREFER_NO_SCHEDULE`.
    pub effect: String,
}

/// The EC2 launch template a node group's nodes start from, by name or id, at a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchTemplateSpec {
    /// The template's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The template's id (`lt-...`).
    #[serde(default)]
    pub id: Option<String>,
    /// Its version, e.g. `"3"`; the template's default version when absent.
    #[serde(default)]
    pub version: Option<String>,
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
    /// The nodes' AMI type, e.g. `AL2023_x86_64_STANDARD`, `BOTTLEROCKET_ARM_64`; set when it is created.
    #[serde(default)]
    pub ami_type: Option<String>,
    /// `ON_DEMAND` or `SPOT`; set when it is created.
    #[serde(default)]
    pub capacity_type: Option<String>,
    /// The nodes' root volume, GiB; set when it is created (not beside a launch template).
    #[serde(default)]
    pub disk_size: Option<u32>,
    /// Kubernetes labels on the nodes.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Kubernetes taints on the nodes.
    #[serde(default)]
    pub taints: Vec<TaintSpec>,
    /// The launch template the nodes start from.
    #[serde(default)]
    pub launch_template: Option<LaunchTemplateSpec>,
}
