//! EKS: the cluster and node group descriptions a backup exports, as JSON; the typed view the planner and
//! the health check read; and the calls a provision makes (create, scale, upgrade). The endpoint, logging
//! and node group settings are in `settings`, add-ons, access entries and pod identity in `extensions`.
//!
//! Only configuration is exported (what it takes to recreate the cluster), not credentials: the
//! certificate authority data and the OIDC issuer's thumbprints are left out.

mod extensions;
mod settings;

pub use settings::NetworkPart;

use std::collections::BTreeMap;

use aws_sdk_eks::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eks::types::NodegroupScalingConfig;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use serde_json::{Value, json};
use thiserror::Error;

use crate::domain::plan::{ActualCluster, ActualNodegroup};
use crate::domain::spec::{EksSpec, LaunchTemplateSpec, NodegroupSpec};
use crate::error::{BoxError, OpsError};

/// A cluster's or node group's health issues as `CODE: message` lines (the two kinds of health have issue
/// types of their own with the same accessors).
macro_rules! health_issues {
    ($health:expr) => {
        $health
            .map(|h| {
                h.issues()
                    .iter()
                    .map(|i| {
                        format!(
                            "{}: {}",
                            i.code().map(|c| c.as_str()).unwrap_or("Unknown"),
                            i.message().unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
}

/// An EKS call failed.
#[derive(Debug, Error)]
pub enum EksError {
    /// The cluster or node group does not exist.
    #[error("EKS {0} not found")]
    NotFound(String),
    /// EKS throttled the call or failed on its side (5xx), after the SDK's retries.
    #[error("EKS throttled {operation}")]
    Throttled {
        /// The operation.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// EKS refused an update while the cluster or node group is not `ACTIVE` (`ResourceInUseException`:
    /// another update, a creation or a deletion in progress): worth asking again once it is.
    #[error("EKS refused {operation} for now: {message}")]
    Busy {
        /// The operation.
        operation: &'static str,
        /// EKS's message.
        message: String,
    },
    /// Any other failure.
    #[error("EKS {operation} failed")]
    Aws {
        /// The operation.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
}

impl From<EksError> for OpsError {
    fn from(err: EksError) -> Self {
        match err {
            EksError::NotFound(_) => OpsError::ResourceNotFound(err.to_string()),
            EksError::Throttled { operation, source } => OpsError::Throttled { operation, source },
            EksError::Busy { .. } => OpsError::NotReady(err.to_string()),
            EksError::Aws { operation, source } => OpsError::Aws { operation, source },
        }
    }
}

/// A create's answer: done, also when the name is already taken (`ResourceInUseException`), which for
/// opsplane's idempotent creates means a retried call made it already.
fn created<O, E>(
    operation: &'static str,
    what: &str,
    answer: Result<O, SdkError<E, HttpResponse>>,
) -> Result<(), EksError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match answer {
        Ok(_) => Ok(()),
        Err(err)
            if err.as_service_error().and_then(|e| e.code()) == Some("ResourceInUseException") =>
        {
            Ok(())
        }
        Err(err) => Err(classify(operation, what, err)),
    }
}

fn classify<E>(operation: &'static str, what: &str, err: SdkError<E, HttpResponse>) -> EksError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err.as_service_error().and_then(|e| e.code()) {
        Some("ResourceNotFoundException") => EksError::NotFound(what.to_owned()),
        // On an update the resource exists, so "in use" means busy (EKS API reference, UpdateClusterVersion,
        // UpdateNodegroupConfig, UpdateNodegroupVersion: ResourceInUseException); on a create it means the name
        // is taken, which stays an error.
        Some("ResourceInUseException") if operation.starts_with("Update") => EksError::Busy {
            operation,
            message: super::service_message(&err),
        },
        _ if super::is_transient(&err) => EksError::Throttled {
            operation,
            source: Box::new(err),
        },
        _ => EksError::Aws {
            operation,
            source: Box::new(err),
        },
    }
}

fn time(t: Option<&aws_smithy_types::DateTime>) -> Value {
    t.and_then(super::rds::to_chrono)
        .map(|t| Value::String(t.to_rfc3339()))
        .unwrap_or(Value::Null)
}

/// The EKS adapter.
#[derive(Debug, Clone)]
pub struct Eks {
    client: aws_sdk_eks::Client,
}

impl Eks {
    /// An adapter over `client`.
    pub fn new(client: aws_sdk_eks::Client) -> Self {
        Self { client }
    }

    /// The cluster's configuration and every node group's, as one JSON document.
    pub async fn export(&self, cluster: &str) -> Result<Value, EksError> {
        let out = self
            .client
            .describe_cluster()
            .name(cluster)
            .send()
            .await
            .map_err(|e| classify("DescribeCluster", &format!("cluster {cluster}"), e))?;
        let c = out
            .cluster()
            .ok_or_else(|| EksError::NotFound(format!("cluster {cluster}")))?;
        let vpc = c.resources_vpc_config().map(|v| {
            json!({
                "subnetIds": v.subnet_ids(),
                "securityGroupIds": v.security_group_ids(),
                "endpointPublicAccess": v.endpoint_public_access(),
                "endpointPrivateAccess": v.endpoint_private_access(),
                "publicAccessCidrs": v.public_access_cidrs(),
            })
        });
        let cluster_json = json!({
            "name": c.name(),
            "arn": c.arn(),
            "version": c.version(),
            "platformVersion": c.platform_version(),
            "status": c.status().map(|s| s.as_str()),
            "roleArn": c.role_arn(),
            "endpoint": c.endpoint(),
            "createdAt": time(c.created_at()),
            "resourcesVpcConfig": vpc,
            "tags": c.tags(),
        });
        let described = self.describe_nodegroups(cluster).await?;
        let mut nodegroups = Vec::new();
        for n in &described {
            let scaling = n.scaling_config().map(|s| {
                json!({ "minSize": s.min_size(), "maxSize": s.max_size(), "desiredSize": s.desired_size() })
            });
            nodegroups.push(json!({
                "nodegroupName": n.nodegroup_name(),
                "nodegroupArn": n.nodegroup_arn(),
                "status": n.status().map(|s| s.as_str()),
                "version": n.version(),
                "releaseVersion": n.release_version(),
                "instanceTypes": n.instance_types(),
                "amiType": n.ami_type().map(|a| a.as_str()),
                "capacityType": n.capacity_type().map(|a| a.as_str()),
                "diskSize": n.disk_size(),
                "scalingConfig": scaling,
                "subnets": n.subnets(),
                "nodeRole": n.node_role(),
                "labels": n.labels(),
                "taints": n.taints().iter().map(|t| json!({
                    "key": t.key(), "value": t.value(), "effect": t.effect().map(|e| e.as_str()),
                })).collect::<Vec<_>>(),
                "launchTemplate": n.launch_template().map(|t| json!({
                    "name": t.name(), "id": t.id(), "version": t.version(),
                })),
                "tags": n.tags(),
                "createdAt": time(n.created_at()),
            }));
        }
        let addons = self.addons(cluster).await?;
        let access_entries = self.access_entries(cluster).await?;
        let pod_identity = self.pod_identity_associations(cluster).await?;
        // The cluster as the planner sees it, so that a drill can plan the spec against what a rebuild
        // would start from: read off the descriptions above, not asked for again.
        let mut planned = planner_view(cluster, c, &described);
        planned.addons = addons.clone();
        planned.access_entries = access_entries.clone();
        Ok(json!({
            "cluster": cluster_json,
            "nodegroups": nodegroups,
            "addons": addons,
            "accessEntries": access_entries,
            "podIdentityAssociations": pod_identity,
            "planned": planned,
        }))
    }
}

/// A cluster and its node groups, as described, the way the planner and the health check see them.
fn planner_view(
    cluster: &str,
    c: &aws_sdk_eks::types::Cluster,
    described: &[aws_sdk_eks::types::Nodegroup],
) -> ActualCluster {
    let mut nodegroups = Vec::new();
    for n in described {
        let scaling = n.scaling_config();
        let mut actual = ActualNodegroup {
            name: n.nodegroup_name().unwrap_or_default().to_owned(),
            status: n
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            version: n.version().map(str::to_owned),
            instance_types: n.instance_types().to_vec(),
            min: size(scaling.and_then(|s| s.min_size())),
            max: size(scaling.and_then(|s| s.max_size())),
            desired: size(scaling.and_then(|s| s.desired_size())),
            health_issues: health_issues!(n.health()),
            tags: tags_of(n.tags()),
            ..ActualNodegroup::default()
        };
        settings::read_nodegroup(n, &mut actual);
        nodegroups.push(actual);
    }
    let mut actual = ActualCluster {
        name: cluster.to_owned(),
        status: c
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        version: c.version().map(str::to_owned),
        health_issues: health_issues!(c.health()),
        tags: tags_of(c.tags()),
        nodegroups,
        ..ActualCluster::default()
    };
    settings::read_cluster(c, &mut actual);
    actual
}

fn tags_of(tags: Option<&std::collections::HashMap<String, String>>) -> BTreeMap<String, String> {
    tags.map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn size(v: Option<i32>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

fn nodegroup_sizes(ng: &NodegroupSpec) -> NodegroupScalingConfig {
    NodegroupScalingConfig::builder()
        .set_min_size(ng.min.and_then(|v| i32::try_from(v).ok()))
        .set_max_size(ng.max.and_then(|v| i32::try_from(v).ok()))
        .set_desired_size(ng.desired.and_then(|v| i32::try_from(v).ok()))
        .build()
}

impl Eks {
    /// Every node group of `cluster`, described, in name order (both the export and the planning read them).
    async fn describe_nodegroups(
        &self,
        cluster: &str,
    ) -> Result<Vec<aws_sdk_eks::types::Nodegroup>, EksError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_nodegroups()
                .cluster_name(cluster)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| classify("ListNodegroups", &format!("cluster {cluster}"), e))?;
            names.extend(page.nodegroups().iter().cloned());
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        names.sort();
        let mut nodegroups = Vec::with_capacity(names.len());
        for name in &names {
            let out = self
                .client
                .describe_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .send()
                .await
                .map_err(|e| {
                    classify(
                        "DescribeNodegroup",
                        &format!("node group {cluster}/{name}"),
                        e,
                    )
                })?;
            nodegroups.extend(out.nodegroup);
        }
        Ok(nodegroups)
    }

    /// The cluster and its node groups for planning and health; `None` when the cluster does not exist.
    pub async fn actual(&self, cluster: &str) -> Result<Option<ActualCluster>, EksError> {
        let out = match self.client.describe_cluster().name(cluster).send().await {
            Ok(out) => out,
            Err(err) => {
                return match classify("DescribeCluster", &format!("cluster {cluster}"), err) {
                    EksError::NotFound(_) => Ok(None),
                    other => Err(other),
                };
            }
        };
        let Some(c) = out.cluster() else {
            return Ok(None);
        };
        let nodegroups = self.describe_nodegroups(cluster).await?;
        Ok(Some(planner_view(cluster, c, &nodegroups)))
    }

    /// Creates the cluster the spec describes. Idempotent: a cluster of that name that already exists (a
    /// retried call) is left as it is.
    pub async fn create_cluster(
        &self,
        eks: &EksSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), EksError> {
        let role = eks.role_arn.clone().ok_or_else(|| EksError::Aws {
            operation: "CreateCluster",
            source: "eks.role_arn is required to create a cluster".into(),
        })?;
        let answer = self
            .client
            .create_cluster()
            .name(&eks.cluster)
            .set_version(eks.version.clone())
            .role_arn(role)
            .resources_vpc_config(settings::vpc_request(eks))
            .set_logging(eks.logging.as_deref().map(settings::logging))
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await;
        created("CreateCluster", &format!("cluster {}", eks.cluster), answer)
    }

    /// Creates a managed node group at the cluster's version. Idempotent like [`Eks::create_cluster`].
    pub async fn create_nodegroup(
        &self,
        eks: &EksSpec,
        ng: &NodegroupSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), EksError> {
        let role = eks.node_role_arn.clone().ok_or_else(|| EksError::Aws {
            operation: "CreateNodegroup",
            source: "eks.node_role_arn is required to create a node group".into(),
        })?;
        let what = format!("node group {}/{}", eks.cluster, ng.name);
        let more = settings::nodegroup_creation(ng);
        let answer = self
            .client
            .create_nodegroup()
            .cluster_name(&eks.cluster)
            .nodegroup_name(&ng.name)
            .set_version(eks.version.clone())
            .node_role(role)
            .set_subnets(Some(eks.subnet_ids.clone()))
            .set_instance_types((!ng.instance_types.is_empty()).then(|| ng.instance_types.clone()))
            .scaling_config(nodegroup_sizes(ng))
            .set_ami_type(more.ami_type)
            .set_capacity_type(more.capacity_type)
            .set_disk_size(more.disk_size)
            .set_labels(more.labels)
            .set_taints(more.taints)
            .set_launch_template(more.launch_template)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await;
        created("CreateNodegroup", &what, answer)
    }

    /// Sets a node group's min, max and desired sizes (`UpdateNodegroupConfig`).
    pub async fn update_scaling(&self, cluster: &str, ng: &NodegroupSpec) -> Result<(), EksError> {
        self.client
            .update_nodegroup_config()
            .cluster_name(cluster)
            .nodegroup_name(&ng.name)
            .scaling_config(nodegroup_sizes(ng))
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

    /// Upgrades the cluster's Kubernetes version (`UpdateClusterVersion`; one minor version at a time,
    /// as EKS requires).
    pub async fn update_cluster_version(
        &self,
        cluster: &str,
        version: &str,
    ) -> Result<(), EksError> {
        self.client
            .update_cluster_version()
            .name(cluster)
            .version(version)
            .send()
            .await
            .map_err(|e| classify("UpdateClusterVersion", &format!("cluster {cluster}"), e))?;
        Ok(())
    }

    /// Rolls a node group's nodes (`UpdateNodegroupVersion`) to a Kubernetes `version`, or to the version of
    /// its own launch template that `template` names (EKS never changes the template itself).
    pub async fn update_nodegroup_version(
        &self,
        cluster: &str,
        nodegroup: &str,
        version: Option<&str>,
        template: Option<&LaunchTemplateSpec>,
    ) -> Result<(), EksError> {
        self.client
            .update_nodegroup_version()
            .cluster_name(cluster)
            .nodegroup_name(nodegroup)
            .set_version(version.map(str::to_owned))
            .set_launch_template(template.map(settings::launch_template))
            .send()
            .await
            .map_err(|e| {
                classify(
                    "UpdateNodegroupVersion",
                    &format!("node group {cluster}/{nodegroup}"),
                    e,
                )
            })?;
        Ok(())
    }
}
