//! EKS: the cluster and node group descriptions a backup exports, as JSON.
//!
//! Only configuration is exported (what it takes to recreate the cluster), not credentials: the
//! certificate authority data and the OIDC issuer's thumbprints are left out.

use aws_sdk_eks::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use serde_json::{Value, json};
use thiserror::Error;

use crate::error::{BoxError, OpsError};

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
            EksError::Aws { operation, source } => OpsError::Aws { operation, source },
        }
    }
}

fn classify<E>(operation: &'static str, what: &str, err: SdkError<E, HttpResponse>) -> EksError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err.as_service_error().and_then(|e| e.code()) {
        Some("ResourceNotFoundException") => EksError::NotFound(what.to_owned()),
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
            let Some(n) = out.nodegroup() else { continue };
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
                "tags": n.tags(),
                "createdAt": time(n.created_at()),
            }));
        }
        Ok(json!({ "cluster": cluster_json, "nodegroups": nodegroups }))
    }
}
