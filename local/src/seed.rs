//! Seeding an environment into the local world as a platform team runs it: its spec stored, its RDS
//! instances, EKS cluster and node groups created in moto.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use opsplane_shared::domain::backup::{MANAGED_BY_VALUE, TAG_ENVIRONMENT, TAG_MANAGED_BY};
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

/// A create's outcome: done, or refused as already there. Seeding makes an environment exist, so a
/// resource that exists is what was asked for; it is also what the SDK's retry of a create whose answer
/// was lost (an attempt timeout under load) finds.
fn created<T, E>(
    operation: &'static str,
    result: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, HttpResponse>>,
) -> Result<(), SeedError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(err)
            if matches!(
                err.code(),
                Some("DBInstanceAlreadyExists" | "ResourceInUseException")
            ) =>
        {
            Ok(())
        }
        Err(err) => Err(SeedError::Aws {
            operation,
            source: Box::new(err),
        }),
    }
}

impl LocalPlane {
    /// Makes an environment exist in the local world as a platform team runs it: its spec stored at
    /// `specs/<env>/spec.yaml`, its RDS instances, EKS cluster and node groups and Redis replication groups
    /// created in moto.
    ///
    /// The environment stands for one created before: in the world's model its instances and cluster were
    /// asked for two days ago and its node groups (which need an ACTIVE cluster) one day ago, so each has gone
    /// through its statuses and is available now.
    pub async fn seed_environment(&self, spec_yaml: &str) -> Result<EnvironmentSpec, SeedError> {
        let spec = self.seed_unsettled(spec_yaml).await?;
        self.settle_seeded().await?;
        Ok(spec)
    }

    /// Seeds many environments, then looks at them once: a fleet's hundreds of environments are made
    /// without a list call of the Region's instances after each.
    pub async fn seed_environments(
        &self,
        specs_yaml: &[String],
    ) -> Result<Vec<EnvironmentSpec>, SeedError> {
        let mut out = Vec::with_capacity(specs_yaml.len());
        for yaml in specs_yaml {
            out.push(self.seed_unsettled(yaml).await?);
        }
        self.settle_seeded().await?;
        Ok(out)
    }

    /// An environment's resources made as of two days ago, not yet looked at.
    async fn seed_unsettled(&self, spec_yaml: &str) -> Result<EnvironmentSpec, SeedError> {
        let spec = EnvironmentSpec::parse(spec_yaml).map_err(|e| SeedError::Spec(e.to_string()))?;
        self.provide_account_keys(&spec).await?;
        let now = self.engine.now();
        crate::world::at(
            now - chrono::Duration::days(2),
            self.seed_resources(&spec, spec_yaml),
        )
        .await?;
        if let Some(eks) = &spec.eks {
            crate::world::at(now - chrono::Duration::days(1), self.seed_nodegroups(eks)).await?;
        }
        Ok(spec)
    }

    /// A look at the seeded environments now moves every resource to its status of today (a list call
    /// moves them all), so any plane of the world finds them available, not only this one.
    async fn settle_seeded(&self) -> Result<(), SeedError> {
        let look = self.clients.rds.describe_db_instances().send().await;
        created("DescribeDBInstances", look)?;
        Ok(())
    }

    /// The KMS keys `spec` names by alias that the account keeps outside opsplane (the copy region's key
    /// of `backup.copy_kms_key_id`), made in the world when absent, as a real account already holds them.
    pub async fn provide_account_keys(&self, spec: &EnvironmentSpec) -> Result<(), SeedError> {
        let backup = &spec.backup;
        if let (Some(region), Some(alias)) = (
            &backup.copy_to_region,
            backup
                .copy_kms_key_id
                .as_deref()
                .and_then(|k| k.strip_prefix("alias/")),
        ) {
            self.world
                .account_key(region, alias)
                .await
                .map_err(|e| SeedError::Aws {
                    operation: "the world's KMS key",
                    source: Box::new(e),
                })?;
        }
        Ok(())
    }

    async fn seed_resources(
        &self,
        spec: &EnvironmentSpec,
        spec_yaml: &str,
    ) -> Result<(), SeedError> {
        let put = self
            .clients
            .s3
            .put_object()
            .bucket(&self.config.bucket_name)
            .key(format!("specs/{}/spec.yaml", spec.environment))
            .body(spec_yaml.as_bytes().to_vec().into())
            .send()
            .await;
        created("PutObject", put)?;
        // The environment's network in the world: its instances sit where the plane's probe reaches them.
        let network = self
            .world
            .network(&self.config.region, &spec.environment)
            .await
            .map_err(|e| SeedError::Aws {
                operation: "the world's network",
                source: Box::new(e),
            })?;
        for db in &spec.rds {
            let create = self
                .clients
                .rds
                .create_db_instance()
                .db_instance_identifier(&db.identifier)
                .db_instance_class(&db.instance_class)
                .engine(&db.engine)
                .set_engine_version(db.engine_version.clone())
                .allocated_storage(db.allocated_storage_gb.map_or(20, |gb| gb as i32))
                .master_username("app")
                .master_user_password("local-only-password")
                .set_storage_encrypted(db.storage_encrypted)
                .set_db_subnet_group_name(network.subnet_group.clone())
                .set_vpc_security_group_ids(Some(network.security_group_ids.clone()))
                .send()
                .await;
            created("CreateDBInstance", create)?;
        }
        if let Some(eks) = &spec.eks {
            let create = self
                .clients
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
                .await;
            created("CreateCluster", create)?;
        }
        // Redis groups as provision makes them (no AUTH token: a seeded group's clients are not ours), in the
        // environment's cache network where the spec leaves the network out.
        let caches =
            opsplane_shared::aws::elasticache::Caches::new(self.clients.elasticache.clone());
        let tags = std::collections::BTreeMap::from([
            (TAG_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
            (TAG_ENVIRONMENT.to_owned(), spec.environment.clone()),
        ]);
        let (cache_subnet_group, cache_groups) = if spec.redis.is_empty() {
            (None, Vec::new())
        } else {
            self.world
                .cache_network(&self.config.region, &spec.environment)
                .await
                .map_err(|e| SeedError::Aws {
                    operation: "the world's cache network",
                    source: Box::new(e),
                })?
        };
        for group in &spec.redis {
            let mut group = group.clone();
            if group.cache_subnet_group.is_none() {
                group.cache_subnet_group = cache_subnet_group.clone();
            }
            if group.security_group_ids.is_empty() {
                group.security_group_ids = cache_groups.clone();
            }
            caches
                .create(&group, &tags, None)
                .await
                .map_err(|e| SeedError::Aws {
                    operation: "CreateReplicationGroup",
                    source: Box::new(e),
                })?;
        }
        Ok(())
    }

    async fn seed_nodegroups(
        &self,
        eks: &opsplane_shared::domain::spec::EksSpec,
    ) -> Result<(), SeedError> {
        for ng in &eks.nodegroups {
            let create = self
                .clients
                .eks
                .create_nodegroup()
                .cluster_name(&eks.cluster)
                .nodegroup_name(&ng.name)
                .node_role(format!("arn:aws:iam::{ACCOUNT}:role/eks-node"))
                .subnets("subnet-local-a")
                .set_instance_types(Some(ng.instance_types.clone()))
                .send()
                .await;
            created("CreateNodegroup", create)?;
        }
        Ok(())
    }
}
