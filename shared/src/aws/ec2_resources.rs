//! The account's network as a spec names it: whether a security group, a subnet or a launch template exists,
//! asked before a plan so that a wrong id is refused naming its field before anything changes (RDS and EKS
//! would refuse it only half-way through an apply).
//!
//! Asked through Cloud Control's `GetResource` and `ListResources`, which read any resource type with the
//! caller's credentials (`cloudformation:GetResource` plus the type's `ec2:Describe*`): one small client
//! where EC2's own SDK crate would cost minutes of every cold build for three reads.
//! https://docs.aws.amazon.com/cloudcontrolapi/latest/APIReference/API_GetResource.html

use aws_sdk_cloudcontrol::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use thiserror::Error;

use crate::aws::{is_transient, or_missing};

/// A Cloud Control call failed for a reason other than the resource's absence.
#[derive(Debug, Error)]
#[error("Cloud Control {operation} failed: {}", DisplayErrorContext(.source.as_ref()))]
pub struct Ec2ResourcesError {
    /// The Cloud Control operation.
    pub operation: &'static str,
    /// Whether AWS throttled it or failed on its side (worth asking again later).
    pub throttled: bool,
    /// The SDK error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl Ec2ResourcesError {
    fn new<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        Self {
            operation,
            throttled: is_transient(&err),
            source: Box::new(err),
        }
    }
}

/// An EC2 resource a spec may name, as Cloud Control types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ec2Kind {
    /// A VPC security group, by id (`sg-...`).
    SecurityGroup,
    /// A subnet, by id (`subnet-...`).
    Subnet,
    /// A launch template, by id (`lt-...`).
    LaunchTemplate,
}

impl Ec2Kind {
    /// The CloudFormation type name Cloud Control reads it by.
    pub fn type_name(self) -> &'static str {
        match self {
            Ec2Kind::SecurityGroup => "AWS::EC2::SecurityGroup",
            Ec2Kind::Subnet => "AWS::EC2::Subnet",
            Ec2Kind::LaunchTemplate => "AWS::EC2::LaunchTemplate",
        }
    }

    /// How a person calls it.
    pub fn noun(self) -> &'static str {
        match self {
            Ec2Kind::SecurityGroup => "security group",
            Ec2Kind::Subnet => "subnet",
            Ec2Kind::LaunchTemplate => "launch template",
        }
    }
}

/// The Cloud Control adapter over one regional client.
#[derive(Debug, Clone)]
pub struct Ec2Resources {
    client: aws_sdk_cloudcontrol::Client,
}

impl Ec2Resources {
    /// The adapter over `client`.
    pub fn new(client: aws_sdk_cloudcontrol::Client) -> Self {
        Self { client }
    }

    /// Whether the `kind` with primary identifier `id` exists in this Region.
    pub async fn exists(&self, kind: Ec2Kind, id: &str) -> Result<bool, Ec2ResourcesError> {
        let asked = self
            .client
            .get_resource()
            .type_name(kind.type_name())
            .identifier(id)
            .send()
            .await;
        // GetResource answers ResourceNotFoundException for an identifier with no resource.
        let found = or_missing(asked, &["ResourceNotFoundException"], |e| {
            Ec2ResourcesError::new("GetResource", e)
        })?;
        Ok(found.is_some())
    }

    /// Whether a launch template named `name` exists in this Region: a template's identifier is its id, so
    /// its name is found by listing them (the SDK's paginator).
    pub async fn launch_template_named(&self, name: &str) -> Result<bool, Ec2ResourcesError> {
        let mut pages = self
            .client
            .list_resources()
            .type_name(Ec2Kind::LaunchTemplate.type_name())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Ec2ResourcesError::new("ListResources", e))?;
            let named = page.resource_descriptions().iter().any(|d| {
                d.properties()
                    .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
                    .is_some_and(|p| p["LaunchTemplateName"] == name)
            });
            if named {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl From<Ec2ResourcesError> for crate::OpsError {
    fn from(err: Ec2ResourcesError) -> Self {
        let (operation, source) = (err.operation, err.source);
        if err.throttled {
            crate::OpsError::Throttled { operation, source }
        } else {
            crate::OpsError::Aws { operation, source }
        }
    }
}
