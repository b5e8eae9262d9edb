//! AWS adapters: the one `SdkConfig` and the clients built from it.

pub mod alarms;
pub mod ec2_resources;
pub mod eks;
pub mod elasticache;
pub mod events;
pub mod keys;
pub mod objects;
pub mod observe;
pub mod rds;
pub mod sfn;
pub mod specs;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::config::{Config, SdkSettings};

/// Loads the SDK configuration once, honouring the endpoint override, local credentials and retry and
/// timeout settings of `cfg`.
pub async fn load_sdk_config(cfg: &Config) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(cfg.region.clone()))
        .retry_config(retry_config(&cfg.sdk))
        .timeout_config(timeout_config(&cfg.sdk));
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

/// The SDK's standard retry mode (throttling, 5xx and I/O errors retried with exponential back-off and full
/// jitter) bounded by `sdk`.
pub fn retry_config(sdk: &SdkSettings) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(sdk.max_attempts.max(1))
        .with_initial_backoff(sdk.initial_backoff)
        .with_max_backoff(sdk.max_backoff)
}

/// Connect, attempt and whole-call timeouts from `sdk`.
pub fn timeout_config(sdk: &SdkSettings) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(sdk.connect_timeout)
        .operation_attempt_timeout(sdk.attempt_timeout)
        .operation_timeout(sdk.operation_timeout)
        .build()
}

/// Whether an error code means "slow down" (DynamoDB, S3, RDS, EKS, Step Functions spell it differently).
pub fn is_throttling_code(code: Option<&str>) -> bool {
    code.is_some_and(|c| {
        c.contains("Throttl")
            || matches!(
                c,
                "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "TooManyRequestsException"
                    | "SlowDown"
            )
    })
}

/// Whether the service answered one of `codes`.
pub fn has_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>, codes: &[&str]) -> bool {
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| codes.contains(&c))
}

/// A call's answer: `None` when the service said the thing asked about is absent (one of `missing`), the
/// error as `classify` makes it otherwise.
pub fn or_missing<T, E, R, X>(
    answer: Result<T, SdkError<E, R>>,
    missing: &[&str],
    classify: impl FnOnce(SdkError<E, R>) -> X,
) -> Result<Option<T>, X>
where
    E: ProvideErrorMetadata,
{
    match answer {
        Ok(out) => Ok(Some(out)),
        Err(err) if has_code(&err, missing) => Ok(None),
        Err(err) => Err(classify(err)),
    }
}

/// The message the service sent with its error, or empty: what a refusal says (the resource, its status).
pub fn service_message<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> String {
    err.as_service_error()
        .and_then(|e| e.message())
        .unwrap_or_default()
        .to_owned()
}

/// Whether a call that failed after the SDK's own retries is still worth retrying later: AWS throttled it,
/// or answered with a server error (5xx). The adapters name such failures `Throttled`, which the definitions
/// retry with back-off; anything else is not retried.
pub fn is_transient<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::ServiceError(ctx) => {
            is_throttling_code(ctx.err().code()) || ctx.raw().status().is_server_error()
        }
        _ => false,
    }
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
    /// ElastiCache: Redis replication groups and their snapshots.
    pub elasticache: aws_sdk_elasticache::Client,
    /// EventBridge: workflow outcome events (the local plane's `events:putEvents`).
    pub events: aws_sdk_eventbridge::Client,
    /// Secrets Manager: probe credentials, read by reference where they are used.
    pub secrets_manager: aws_sdk_secretsmanager::Client,
    /// CloudWatch: the environment's alarms, read during a deployment's bake and before a rollback.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// KMS: whether the keys a spec names exist.
    pub kms: aws_sdk_kms::Client,
    /// Cloud Control: whether the security groups, subnets and launch templates a spec names exist.
    pub cloudcontrol: aws_sdk_cloudcontrol::Client,
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
            elasticache: aws_sdk_elasticache::Client::new(sdk),
            events: aws_sdk_eventbridge::Client::new(sdk),
            secrets_manager: aws_sdk_secretsmanager::Client::new(sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
            cloudcontrol: aws_sdk_cloudcontrol::Client::new(sdk),
            sdk: sdk.clone(),
        }
    }

    /// The same clients with `interceptor` on each. The local world uses it to tell its model of AWS which
    /// plane asks and at what virtual time; production clients have none.
    pub fn with_interceptor<I>(self, interceptor: I) -> Self
    where
        I: aws_smithy_runtime_api::client::interceptors::Intercept + Clone + 'static,
    {
        // Each service's configuration is rebuilt with the interceptor added to what it already has.
        macro_rules! with {
            ($client:expr, $sdk:ident) => {
                $sdk::Client::from_conf(
                    $client
                        .config()
                        .to_builder()
                        .interceptor(interceptor.clone())
                        .build(),
                )
            };
        }
        Self {
            dynamodb: with!(self.dynamodb, aws_sdk_dynamodb),
            s3: with!(self.s3, aws_sdk_s3),
            sfn: with!(self.sfn, aws_sdk_sfn),
            rds: with!(self.rds, aws_sdk_rds),
            eks: with!(self.eks, aws_sdk_eks),
            elasticache: with!(self.elasticache, aws_sdk_elasticache),
            events: with!(self.events, aws_sdk_eventbridge),
            secrets_manager: with!(self.secrets_manager, aws_sdk_secretsmanager),
            cloudwatch: with!(self.cloudwatch, aws_sdk_cloudwatch),
            kms: with!(self.kms, aws_sdk_kms),
            cloudcontrol: with!(self.cloudcontrol, aws_sdk_cloudcontrol),
            sdk: self.sdk,
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
