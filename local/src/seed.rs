//! Seeding an environment into the local world as a platform team runs it: its spec stored, its RDS
//! instances, EKS cluster and node groups created in moto.

use opsplane_shared::domain::spec::EnvironmentSpec;
use thiserror::Error;

use crate::plane::{ACCOUNT, LocalPlane};

/// Seeding an environment into the local world failed.
#[derive(Debug, Error)]
pub enum SeedError {
    /// The spec does not parse or validate.
    #[error("the environment spec is invalid: {0}")]
    Spec(String),
    /// An AWS call against moto failed.
    #[error("{operation} failed while seeding the local world: {}", aws_smithy_types::error::display::DisplayErrorContext(source.as_ref()))]
    Aws {
        /// The AWS operation.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: opsplane_shared::error::BoxError,
    },
}

fn seed_err<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
) -> impl FnOnce(E) -> SeedError {
    move |source| SeedError::Aws {
        operation,
        source: Box::new(source),
    }
}

impl LocalPlane {
    /// Makes an environment exist in the local world as a platform team runs it: its spec stored at
    /// `specs/<env>/spec.yaml`, its RDS instances and EKS cluster and node groups created in moto.
    pub async fn seed_environment(&self, spec_yaml: &str) -> Result<EnvironmentSpec, SeedError> {
        let spec = EnvironmentSpec::parse(spec_yaml).map_err(|e| SeedError::Spec(e.to_string()))?;
        self.clients
            .s3
            .put_object()
            .bucket(&self.config.bucket_name)
            .key(format!("specs/{}/spec.yaml", spec.environment))
            .body(spec_yaml.as_bytes().to_vec().into())
            .send()
            .await
            .map_err(seed_err("PutObject"))?;
        for db in &spec.rds {
            self.clients
                .rds
                .create_db_instance()
                .db_instance_identifier(&db.identifier)
                .db_instance_class(&db.instance_class)
                .engine(&db.engine)
                .set_engine_version(db.engine_version.clone())
                .allocated_storage(db.allocated_storage_gb.map_or(20, |gb| gb as i32))
                .master_username("app")
                .master_user_password("local-only-password")
                .send()
                .await
                .map_err(seed_err("CreateDBInstance"))?;
        }
        if let Some(eks) = &spec.eks {
            self.clients
                .eks
                .create_cluster()
                .name(&eks.cluster)
                .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/eks-cluster"))
                .resources_vpc_config(
                    aws_sdk_eks::types::VpcConfigRequest::builder()
                        .subnet_ids("subnet-local-a")
                        .build(),
                )
                .set_version(eks.version.clone())
                .send()
                .await
                .map_err(seed_err("CreateCluster"))?;
            for ng in &eks.nodegroups {
                self.clients
                    .eks
                    .create_nodegroup()
                    .cluster_name(&eks.cluster)
                    .nodegroup_name(&ng.name)
                    .node_role(format!("arn:aws:iam::{ACCOUNT}:role/eks-node"))
                    .subnets("subnet-local-a")
                    .set_instance_types(Some(ng.instance_types.clone()))
                    .send()
                    .await
                    .map_err(seed_err("CreateNodegroup"))?;
            }
        }
        Ok(spec)
    }
}
