//! AWS adapters: the one `SdkConfig` and the clients built from it.

pub mod eks;
pub mod objects;
pub mod rds;

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::Config;

/// Loads the SDK configuration once, honouring the endpoint override and local credentials of `cfg`.
pub async fn load_sdk_config(cfg: &Config) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(cfg.region.clone()));
    if let Some(endpoint) = &cfg.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if cfg.local_credentials {
        // moto accepts any credentials; fixed ones keep local runs from reaching for a real profile.
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "opsplane-local",
        ));
    }
    loader.load().await
}

/// Every client the control plane uses, built from one [`SdkConfig`].
#[derive(Debug, Clone)]
pub struct Clients {
    /// DynamoDB: locks, state, idempotency, audit.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// S3: specs, manifests, reports, the S3 lock backend.
    pub s3: aws_sdk_s3::Client,
    /// Step Functions: execution status of lock holders, starting workflows.
    pub sfn: aws_sdk_sfn::Client,
    /// RDS: instances, snapshots, restores.
    pub rds: aws_sdk_rds::Client,
    /// EKS: clusters and node groups.
    pub eks: aws_sdk_eks::Client,
    /// Secrets Manager: probe credentials, read by reference where they are used.
    pub secrets_manager: aws_sdk_secretsmanager::Client,
    /// The configuration the clients were built from (credentials and region for RDS IAM auth tokens).
    pub sdk: SdkConfig,
}

impl Clients {
    /// Builds the clients; S3 is path-style when an endpoint override is in force.
    pub fn new(sdk: &SdkConfig, cfg: &Config) -> Self {
        let s3_conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(cfg.s3_path_style())
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            sfn: aws_sdk_sfn::Client::new(sdk),
            rds: aws_sdk_rds::Client::new(sdk),
            eks: aws_sdk_eks::Client::new(sdk),
            secrets_manager: aws_sdk_secretsmanager::Client::new(sdk),
            sdk: sdk.clone(),
        }
    }

    /// Loads the SDK configuration for `cfg` and builds the clients.
    pub async fn load(cfg: &Config) -> Self {
        Self::new(&load_sdk_config(cfg).await, cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_config_points_every_client_at_the_endpoint() {
        let cfg = Config::local("http://127.0.0.1:1", "t-1", "b-1");
        let sdk = load_sdk_config(&cfg).await;
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:1"));
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("us-east-1"));
        let clients = Clients::new(&sdk, &cfg);
        // Path-style addressing itself is exercised end to end: moto on a loopback port has no bucket DNS.
        assert_eq!(
            clients.dynamodb.config().region().map(|r| r.as_ref()),
            Some("us-east-1")
        );
    }
}
