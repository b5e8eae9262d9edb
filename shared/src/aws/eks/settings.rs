//! The cluster's endpoint, logging and security groups and the node groups' AMI, capacity, disk, labels,
//! taints and launch template: read for planning, sent at creation, and changed in place where EKS allows
//! (`UpdateClusterConfig`, `UpdateNodegroupConfig`).

use aws_sdk_eks::types::{
    AmiTypes, CapacityTypes, Cluster, LaunchTemplateSpecification, LogSetup, LogType, Logging,
    Nodegroup, Taint, TaintEffect, UpdateLabelsPayload, UpdateTaintsPayload, VpcConfigRequest,
};

use super::{Eks, EksError, classify};
use crate::domain::plan::{ActualCluster, ActualNodegroup};
use crate::domain::spec::{EksSpec, LOG_TYPES, LaunchTemplateSpec, NodegroupSpec, TaintSpec};

/// Which part of a cluster's network an update moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkPart {
    /// The subnets of the control plane's network interfaces.
    Subnets,
    /// The security groups on them.
    SecurityGroups,
}

/// The cluster's endpoint, logging, subnets and security groups, as the planner compares them.
pub(super) fn read_cluster(c: &Cluster, into: &mut ActualCluster) {
    if let Some(vpc) = c.resources_vpc_config() {
        into.endpoint_public_access = Some(vpc.endpoint_public_access());
        into.endpoint_private_access = Some(vpc.endpoint_private_access());
        into.public_access_cidrs = sorted(vpc.public_access_cidrs().to_vec());
        into.security_group_ids = sorted(vpc.security_group_ids().to_vec());
        into.subnet_ids = sorted(vpc.subnet_ids().to_vec());
    }
    into.logging = sorted(
        c.logging()
            .map(|l| l.cluster_logging())
            .unwrap_or_default()
            .iter()
            .filter(|setup| setup.enabled() == Some(true))
            .flat_map(|setup| setup.types().iter().map(|t| t.as_str().to_owned()))
            .collect(),
    );
}

/// A node group's AMI, capacity, disk, labels, taints and launch template.
pub(super) fn read_nodegroup(n: &Nodegroup, into: &mut ActualNodegroup) {
    into.ami_type = n.ami_type().map(|a| a.as_str().to_owned());
    into.capacity_type = n.capacity_type().map(|c| c.as_str().to_owned());
    into.disk_size = n.disk_size().and_then(|d| u32::try_from(d).ok());
    into.labels = n
        .labels()
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let mut taints: Vec<TaintSpec> = n
        .taints()
        .iter()
        .map(|t| TaintSpec {
            key: t.key().unwrap_or_default().to_owned(),
            value: t.value().map(str::to_owned),
            effect: t
                .effect()
                .map(|e| e.as_str().to_owned())
                .unwrap_or_default(),
        })
        .collect();
    taints.sort();
    into.taints = taints;
    into.launch_template = n.launch_template().map(|t| LaunchTemplateSpec {
        name: t.name().map(str::to_owned),
        id: t.id().map(str::to_owned),
        version: t.version().map(str::to_owned),
    });
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The VPC configuration a cluster is created with: private unless the spec opens it.
pub(super) fn vpc_request(eks: &EksSpec) -> VpcConfigRequest {
    VpcConfigRequest::builder()
        .set_subnet_ids(Some(eks.subnet_ids.clone()))
        .set_security_group_ids(
            (!eks.security_group_ids.is_empty()).then(|| eks.security_group_ids.clone()),
        )
        .endpoint_public_access(eks.endpoint_public_access.unwrap_or(false))
        .endpoint_private_access(eks.endpoint_private_access.unwrap_or(true))
        .set_public_access_cidrs(
            (!eks.public_access_cidrs.is_empty()).then(|| eks.public_access_cidrs.clone()),
        )
        .build()
}

/// The control plane logging the spec asks for: its types on, every other type off.
pub(super) fn logging(types: &[String]) -> Logging {
    let on: Vec<LogType> = types.iter().map(|t| LogType::from(t.as_str())).collect();
    let off: Vec<LogType> = LOG_TYPES
        .iter()
        .filter(|t| !types.iter().any(|on| on == *t))
        .map(|t| LogType::from(*t))
        .collect();
    let mut setups = vec![
        LogSetup::builder()
            .set_types(Some(on))
            .enabled(true)
            .build(),
    ];
    if !off.is_empty() {
        setups.push(
            LogSetup::builder()
                .set_types(Some(off))
                .enabled(false)
                .build(),
        );
    }
    Logging::builder().set_cluster_logging(Some(setups)).build()
}

fn taint(t: &TaintSpec) -> Taint {
    Taint::builder()
        .key(&t.key)
        .set_value(t.value.clone())
        .effect(TaintEffect::from(t.effect.as_str()))
        .build()
}

/// A node group's creation settings beyond its size and types.
pub(super) struct NodegroupCreation {
    pub(super) ami_type: Option<AmiTypes>,
    pub(super) capacity_type: Option<CapacityTypes>,
    pub(super) disk_size: Option<i32>,
    pub(super) labels: Option<std::collections::HashMap<String, String>>,
    pub(super) taints: Option<Vec<Taint>>,
    pub(super) launch_template: Option<LaunchTemplateSpecification>,
}

/// A launch template by name or id, at a version.
pub(super) fn launch_template(t: &LaunchTemplateSpec) -> LaunchTemplateSpecification {
    LaunchTemplateSpecification::builder()
        .set_name(t.name.clone())
        .set_id(t.id.clone())
        .set_version(t.version.clone())
        .build()
}

pub(super) fn nodegroup_creation(ng: &NodegroupSpec) -> NodegroupCreation {
    NodegroupCreation {
        ami_type: ng.ami_type.as_deref().map(AmiTypes::from),
        capacity_type: ng.capacity_type.as_deref().map(CapacityTypes::from),
        disk_size: ng.disk_size.and_then(|d| i32::try_from(d).ok()),
        labels: (!ng.labels.is_empty()).then(|| ng.labels.clone().into_iter().collect()),
        taints: (!ng.taints.is_empty()).then(|| ng.taints.iter().map(taint).collect()),
        launch_template: ng.launch_template.as_ref().map(launch_template),
    }
}

impl Eks {
    /// Sets the cluster's endpoint access (public, private, the CIDRs a public endpoint admits) as the spec
    /// says (`UpdateClusterConfig`; EKS takes one kind of update at a time).
    pub async fn update_endpoint(&self, eks: &EksSpec) -> Result<(), EksError> {
        let vpc = VpcConfigRequest::builder()
            .set_endpoint_public_access(eks.endpoint_public_access)
            .set_endpoint_private_access(eks.endpoint_private_access)
            .set_public_access_cidrs(
                (!eks.public_access_cidrs.is_empty()).then(|| eks.public_access_cidrs.clone()),
            )
            .build();
        self.update_vpc_config(&eks.cluster, vpc).await
    }

    /// One `UpdateClusterConfig` of the cluster's VPC configuration: what `vpc` names changes, the rest
    /// stays.
    async fn update_vpc_config(
        &self,
        cluster: &str,
        vpc: VpcConfigRequest,
    ) -> Result<(), EksError> {
        self.client
            .update_cluster_config()
            .name(cluster)
            .resources_vpc_config(vpc)
            .send()
            .await
            .map_err(|e| classify("UpdateClusterConfig", &format!("cluster {cluster}"), e))?;
        Ok(())
    }

    /// Moves the control plane's network interfaces to the spec's `subnets` or `security groups` (one of the
    /// two per update; `UpdateClusterConfig`, which keeps them in the cluster's VPC).
    pub async fn update_network(&self, eks: &EksSpec, part: NetworkPart) -> Result<(), EksError> {
        let vpc = match part {
            NetworkPart::Subnets => {
                VpcConfigRequest::builder().set_subnet_ids(Some(eks.subnet_ids.clone()))
            }
            NetworkPart::SecurityGroups => VpcConfigRequest::builder()
                .set_security_group_ids(Some(eks.security_group_ids.clone())),
        };
        self.update_vpc_config(&eks.cluster, vpc.build()).await
    }

    /// Sets the control plane log types the spec names on and every other off (`UpdateClusterConfig`).
    pub async fn update_logging(&self, cluster: &str, types: &[String]) -> Result<(), EksError> {
        self.client
            .update_cluster_config()
            .name(cluster)
            .logging(logging(types))
            .send()
            .await
            .map_err(|e| classify("UpdateClusterConfig", &format!("cluster {cluster}"), e))?;
        Ok(())
    }

    /// Brings a node group's labels and taints to the spec's: adds or updates what it names and removes
    /// what it does not (`UpdateNodegroupConfig`).
    pub async fn update_labels_and_taints(
        &self,
        cluster: &str,
        ng: &NodegroupSpec,
        have: &ActualNodegroup,
    ) -> Result<(), EksError> {
        let removed: Vec<String> = have
            .labels
            .keys()
            .filter(|k| !ng.labels.contains_key(*k))
            .cloned()
            .collect();
        let labels = UpdateLabelsPayload::builder()
            .set_add_or_update_labels(
                (!ng.labels.is_empty()).then(|| ng.labels.clone().into_iter().collect()),
            )
            .set_remove_labels((!removed.is_empty()).then_some(removed))
            .build();
        let gone: Vec<Taint> = have
            .taints
            .iter()
            .filter(|t| {
                !ng.taints
                    .iter()
                    .any(|w| w.key == t.key && w.effect == t.effect)
            })
            .map(taint)
            .collect();
        let taints = UpdateTaintsPayload::builder()
            .set_add_or_update_taints(
                (!ng.taints.is_empty()).then(|| ng.taints.iter().map(taint).collect()),
            )
            .set_remove_taints((!gone.is_empty()).then_some(gone))
            .build();
        self.client
            .update_nodegroup_config()
            .cluster_name(cluster)
            .nodegroup_name(&ng.name)
            .labels(labels)
            .taints(taints)
            .send()
            .await
            .map_err(|e| {
                classify(
                    "UpdateNodegroupConfig",
                    &format!("node group {cluster}/{}", ng.name),
                    e,
                )
            })?;
        Ok(())
    }
}
