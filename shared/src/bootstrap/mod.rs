//! Bootstrap of the control plane's own state: the DynamoDB table and the S3 bucket.
//!
//! Every step reads the current setting first and writes only what differs, so a second run changes nothing
//! and a half-created state (a table without TTL, a bucket whose policy was deleted) converges.
//!
//! With a customer-managed KMS key ([`BootstrapOptions::kms_key_id`]) the table is encrypted with it
//! (`SSESpecification`) and the bucket's default encryption is SSE-KMS with it and an S3 Bucket Key (one KMS
//! call per object batch instead of per object). The bucket always gets Object Lock enabled, with no default
//! retention: only audit copies carry a retention (see [`crate::audit`]); specs, reports and lock objects
//! stay deletable.

use std::fmt;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    PointInTimeRecoveryStatus, ScalarAttributeType, SseSpecification, SseStatus, SseType,
    TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    ObjectLockConfiguration, ObjectLockEnabled, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, VersioningConfiguration,
};
use serde_json::{Value, json};
use thiserror::Error;

use crate::error::BoxError;

/// The attribute DynamoDB's TTL reads (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// The `Sid` of the bucket policy statement that denies plain-HTTP access.
pub const TLS_ONLY_SID: &str = "OpsplaneDenyInsecureTransport";

/// How long to wait for a new table to become ACTIVE (AWS takes seconds; moto is immediate).
const TABLE_ACTIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Bootstrap failed.
#[derive(Debug, Error)]
pub enum BootstrapError {
    /// An AWS call failed.
    #[error("{operation} on {resource} failed")]
    Aws {
        /// The AWS operation.
        operation: &'static str,
        /// The table or bucket.
        resource: String,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// The resource exists but cannot be converged (e.g. another key schema, another owner).
    #[error("{resource} exists but cannot be used: {reason}")]
    Incompatible {
        /// The table or bucket.
        resource: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The table did not become ACTIVE in time.
    #[error("table {0} did not become ACTIVE within {TABLE_ACTIVE_TIMEOUT:?}")]
    TableNotActive(String),
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The resource did not exist and was created.
    Created,
    /// The setting differed and was changed.
    Updated,
    /// The resource or setting was already as wanted.
    AlreadyExisted,
    /// The setting was not applied, by request (see [`BootstrapOptions`]).
    Skipped,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::AlreadyExisted => "already existed",
            Outcome::Skipped => "skipped",
        })
    }
}

/// One checked setting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// `table <name>` or `bucket <name>`.
    pub resource: String,
    /// The setting: `table`, `ttl`, `point-in-time recovery`, `versioning`, ...
    pub setting: &'static str,
    /// What was done.
    pub outcome: Outcome,
}

/// Everything bootstrap checked and did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BootstrapReport {
    /// The table's name.
    pub table: String,
    /// The bucket's name.
    pub bucket: String,
    /// Every step in order.
    pub steps: Vec<Step>,
}

impl BootstrapReport {
    /// Whether any step created or changed something.
    pub fn changed(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.outcome, Outcome::Created | Outcome::Updated))
    }
}

impl fmt::Display for BootstrapReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            writeln!(
                f,
                "{:<16} {:<24} {}",
                step.outcome.to_string(),
                step.setting,
                step.resource
            )?;
        }
        write!(f, "table:  {}\nbucket: {}", self.table, self.bucket)
    }
}

/// What bootstrap applies beyond the fixed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapOptions {
    /// Write the bucket policy that denies plain-HTTP requests. Always on AWS; off only for the local world,
    /// whose endpoint (moto on loopback) speaks plain HTTP and enforces bucket policies, so the policy would
    /// deny every object request there.
    pub tls_only_policy: bool,
    /// Encrypt the table and the bucket with this customer-managed KMS key (ARN). `None` leaves AWS-managed
    /// encryption (and never downgrades a table or bucket already on a customer key).
    pub kms_key_id: Option<String>,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        Self {
            tls_only_policy: true,
            kms_key_id: None,
        }
    }
}

impl BootstrapOptions {
    /// The options for the local world (moto over plain HTTP): everything but the TLS-only policy.
    pub const fn local_world() -> Self {
        Self {
            tls_only_policy: false,
            kms_key_id: None,
        }
    }

    /// The same options encrypting with `key` (a KMS key ARN).
    pub fn with_kms_key(mut self, key: Option<String>) -> Self {
        self.kms_key_id = key;
        self
    }
}

/// Creates or converges the state table and bucket with every setting, the TLS-only policy included.
pub async fn bootstrap(
    dynamodb: &aws_sdk_dynamodb::Client,
    s3: &aws_sdk_s3::Client,
    table: &str,
    bucket: &str,
    region: &str,
) -> Result<BootstrapReport, BootstrapError> {
    bootstrap_with(
        dynamodb,
        s3,
        table,
        bucket,
        region,
        BootstrapOptions::default(),
    )
    .await
}

/// Creates or converges the state table and bucket with `options`.
pub async fn bootstrap_with(
    dynamodb: &aws_sdk_dynamodb::Client,
    s3: &aws_sdk_s3::Client,
    table: &str,
    bucket: &str,
    region: &str,
    options: BootstrapOptions,
) -> Result<BootstrapReport, BootstrapError> {
    let mut steps = Vec::new();
    ensure_table(dynamodb, table, options.kms_key_id.as_deref(), &mut steps).await?;
    ensure_bucket(s3, bucket, region, &options, &mut steps).await?;
    let report = BootstrapReport {
        table: table.to_owned(),
        bucket: bucket.to_owned(),
        steps,
    };
    tracing::info!(table, bucket, changed = report.changed(), "bootstrap done");
    Ok(report)
}

fn aws_err<E>(operation: &'static str, resource: &str) -> impl FnOnce(E) -> BootstrapError
where
    E: std::error::Error + Send + Sync + 'static,
{
    let resource = resource.to_owned();
    move |source| BootstrapError::Aws {
        operation,
        resource,
        source: Box::new(source),
    }
}

fn built<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> T {
    // Builders only fail when a required field is unset; every call below sets them.
    r.expect("all required fields are set")
}

fn table_sse(key: &str) -> SseSpecification {
    SseSpecification::builder()
        .enabled(true)
        .sse_type(SseType::Kms)
        .kms_master_key_id(key)
        .build()
}

async fn ensure_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    kms_key: Option<&str>,
    steps: &mut Vec<Step>,
) -> Result<(), BootstrapError> {
    let resource = format!("table {table}");
    let mut push = |setting, outcome| {
        steps.push(Step {
            resource: resource.clone(),
            setting,
            outcome,
        })
    };

    let existing = match client.describe_table().table_name(table).send().await {
        Ok(out) => out.table,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(err) => return Err(aws_err("DescribeTable", table)(err)),
    };
    match existing {
        None => {
            let key = |name: &str, kind| {
                built(
                    KeySchemaElement::builder()
                        .attribute_name(name)
                        .key_type(kind)
                        .build(),
                )
            };
            let attr = |name: &str| {
                built(
                    AttributeDefinition::builder()
                        .attribute_name(name)
                        .attribute_type(ScalarAttributeType::S)
                        .build(),
                )
            };
            match client
                .create_table()
                .table_name(table)
                .attribute_definitions(attr("pk"))
                .attribute_definitions(attr("sk"))
                .key_schema(key("pk", KeyType::Hash))
                .key_schema(key("sk", KeyType::Range))
                .billing_mode(BillingMode::PayPerRequest)
                .set_sse_specification(kms_key.map(table_sse))
                .send()
                .await
            {
                Ok(_) => {}
                // The SDK retries a CreateTable whose answer was lost (an attempt timeout, a dropped
                // connection); the retry then finds the table the first attempt created. It was just
                // described as absent, so it is this call's own.
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_in_use_exception()) => {}
                Err(err) => return Err(aws_err("CreateTable", table)(err)),
            }
            push("table", Outcome::Created);
            push("on-demand billing", Outcome::Created);
            if kms_key.is_some() {
                push("kms encryption", Outcome::Created);
            }
        }
        Some(desc) => {
            let keys: Vec<(String, KeyType)> = desc
                .key_schema()
                .iter()
                .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
                .collect();
            let want = vec![
                ("pk".to_owned(), KeyType::Hash),
                ("sk".to_owned(), KeyType::Range),
            ];
            if keys != want {
                return Err(BootstrapError::Incompatible {
                    resource: resource.clone(),
                    reason: format!(
                        "its key schema is {}, opsplane needs pk (HASH) and sk (RANGE), both strings; \
                         choose another table name with OPSPLANE_TABLE",
                        keys.iter()
                            .map(|(name, kind)| format!("{name} ({})", kind.as_str()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            push("table", Outcome::AlreadyExisted);
            let on_demand = desc
                .billing_mode_summary()
                .and_then(|b| b.billing_mode())
                .is_some_and(|m| *m == BillingMode::PayPerRequest);
            if on_demand {
                push("on-demand billing", Outcome::AlreadyExisted);
            } else {
                wait_table_active(client, table).await?;
                client
                    .update_table()
                    .table_name(table)
                    .billing_mode(BillingMode::PayPerRequest)
                    .send()
                    .await
                    .map_err(aws_err("UpdateTable", table))?;
                push("on-demand billing", Outcome::Updated);
            }
            if let Some(key) = kms_key {
                let sse = desc.sse_description();
                let on_key = sse.is_some_and(|d| {
                    matches!(d.status(), Some(SseStatus::Enabled | SseStatus::Enabling))
                        && d.sse_type() == Some(&SseType::Kms)
                        && d.kms_master_key_arn() == Some(key)
                });
                if on_key {
                    push("kms encryption", Outcome::AlreadyExisted);
                } else {
                    wait_table_active(client, table).await?;
                    client
                        .update_table()
                        .table_name(table)
                        .sse_specification(table_sse(key))
                        .send()
                        .await
                        .map_err(aws_err("UpdateTable", table))?;
                    push("kms encryption", Outcome::Updated);
                }
            }
        }
    }
    wait_table_active(client, table).await?;

    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(aws_err("DescribeTimeToLive", table))?;
    let ttl_on = ttl.time_to_live_description().is_some_and(|d| {
        matches!(
            d.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) && d.attribute_name() == Some(TTL_ATTRIBUTE)
    });
    if ttl_on {
        push("ttl on expires_at", Outcome::AlreadyExisted);
    } else {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(built(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build(),
            ))
            .send()
            .await
            .map_err(aws_err("UpdateTimeToLive", table))?;
        push("ttl on expires_at", Outcome::Updated);
    }

    let backups = client
        .describe_continuous_backups()
        .table_name(table)
        .send()
        .await
        .map_err(aws_err("DescribeContinuousBackups", table))?;
    let pitr_on = backups
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        .is_some_and(|s| *s == PointInTimeRecoveryStatus::Enabled);
    if pitr_on {
        push("point-in-time recovery", Outcome::AlreadyExisted);
    } else {
        client
            .update_continuous_backups()
            .table_name(table)
            .point_in_time_recovery_specification(built(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build(),
            ))
            .send()
            .await
            .map_err(aws_err("UpdateContinuousBackups", table))?;
        push("point-in-time recovery", Outcome::Updated);
    }
    Ok(())
}

async fn wait_table_active(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), BootstrapError> {
    let deadline = std::time::Instant::now() + TABLE_ACTIVE_TIMEOUT;
    loop {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(aws_err("DescribeTable", table))?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(BootstrapError::TableNotActive(table.to_owned()));
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// The AWS partition of a region, for ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The bucket policy statement that denies any request not made over TLS.
pub fn tls_only_statement(bucket: &str, region: &str) -> Value {
    let p = partition(region);
    json!({
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [format!("arn:{p}:s3:::{bucket}"), format!("arn:{p}:s3:::{bucket}/*")],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } }
    })
}

/// The policy to write given the current one: ours merged in by `Sid`, foreign statements kept.
/// `None` when the current policy already holds our statement unchanged.
pub fn converge_policy(
    current: Option<&str>,
    bucket: &str,
    region: &str,
) -> Result<Option<String>, String> {
    let ours = tls_only_statement(bucket, region);
    let mut policy = match current {
        None => json!({ "Version": "2012-10-17", "Statement": [] }),
        Some(text) => serde_json::from_str::<Value>(text)
            .map_err(|e| format!("the bucket policy is not JSON: {e}"))?,
    };
    let statements = match policy.get_mut("Statement") {
        Some(Value::Array(list)) => list,
        Some(single @ Value::Object(_)) => {
            let one = single.take();
            *single = Value::Array(vec![one]);
            single.as_array_mut().expect("just made an array")
        }
        _ => return Err("the bucket policy has no Statement list".to_owned()),
    };
    let existing = statements
        .iter()
        .position(|s| s.get("Sid").and_then(Value::as_str) == Some(TLS_ONLY_SID));
    match existing {
        Some(i) if statements[i] == ours => return Ok(None),
        Some(i) => statements[i] = ours,
        None => statements.push(ours),
    }
    Ok(Some(policy.to_string()))
}

/// Whether the bucket's default encryption is what we want: any default without a key asked for; SSE-KMS
/// with exactly that key and a Bucket Key with one.
pub fn encryption_matches(
    config: Option<&ServerSideEncryptionConfiguration>,
    kms_key: Option<&str>,
) -> bool {
    let rules = config.map(|c| c.rules()).unwrap_or_default();
    match kms_key {
        None => rules
            .iter()
            .any(|r| r.apply_server_side_encryption_by_default().is_some()),
        Some(key) => rules.iter().any(|r| {
            r.bucket_key_enabled() == Some(true)
                && r.apply_server_side_encryption_by_default()
                    .is_some_and(|d| {
                        *d.sse_algorithm() == ServerSideEncryption::AwsKms
                            && d.kms_master_key_id() == Some(key)
                    })
        }),
    }
}

async fn ensure_bucket(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    region: &str,
    options: &BootstrapOptions,
    steps: &mut Vec<Step>,
) -> Result<(), BootstrapError> {
    let kms_key = options.kms_key_id.as_deref();
    let resource = format!("bucket {bucket}");
    let mut push = |setting, outcome| {
        steps.push(Step {
            resource: resource.clone(),
            setting,
            outcome,
        })
    };

    match client.head_bucket().bucket(bucket).send().await {
        Ok(_) => push("bucket", Outcome::AlreadyExisted),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => {
            let mut req = client.create_bucket().bucket(bucket);
            // us-east-1 is the one region that rejects an explicit LocationConstraint.
            if region != "us-east-1" {
                req = req.create_bucket_configuration(
                    CreateBucketConfiguration::builder()
                        .location_constraint(BucketLocationConstraint::from(region))
                        .build(),
                );
            }
            req.send().await.map_err(aws_err("CreateBucket", bucket))?;
            push("bucket", Outcome::Created);
        }
        Err(err) => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            if status == Some(403) {
                return Err(BootstrapError::Incompatible {
                    resource: resource.clone(),
                    reason: "it belongs to another account or denies us access; choose another name with \
                             OPSPLANE_BUCKET"
                        .to_owned(),
                });
            }
            return Err(aws_err("HeadBucket", bucket)(err));
        }
    }

    let versioning = client
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .map_err(aws_err("GetBucketVersioning", bucket))?;
    if versioning.status() == Some(&BucketVersioningStatus::Enabled) {
        push("versioning", Outcome::AlreadyExisted);
    } else {
        client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(aws_err("PutBucketVersioning", bucket))?;
        push("versioning", Outcome::Updated);
    }

    let (encrypted, had_default) = match client.get_bucket_encryption().bucket(bucket).send().await
    {
        Ok(out) => {
            let config = out.server_side_encryption_configuration();
            (
                encryption_matches(config, kms_key),
                encryption_matches(config, None),
            )
        }
        Err(err) if err.code() == Some("ServerSideEncryptionConfigurationNotFoundError") => {
            (false, false)
        }
        Err(err) => return Err(aws_err("GetBucketEncryption", bucket)(err)),
    };
    let setting = if kms_key.is_some() {
        "kms encryption"
    } else {
        "default encryption"
    };
    if encrypted {
        push(setting, Outcome::AlreadyExisted);
    } else {
        let by_default = match kms_key {
            Some(key) => ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::AwsKms)
                .kms_master_key_id(key),
            None => {
                ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256)
            }
        }
        .build()
        .expect("algorithm is set");
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(by_default)
            .bucket_key_enabled(true)
            .build();
        client
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build()
                    .expect("rules are set"),
            )
            .send()
            .await
            .map_err(aws_err("PutBucketEncryption", bucket))?;
        push(
            setting,
            if had_default {
                Outcome::Updated
            } else {
                Outcome::Created
            },
        );
    }

    // After versioning: S3 enables Object Lock only on a versioned bucket.
    let locked = match client
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => out
            .object_lock_configuration()
            .and_then(|c| c.object_lock_enabled())
            .is_some_and(|e| *e == ObjectLockEnabled::Enabled),
        Err(err) if err.code() == Some("ObjectLockConfigurationNotFoundError") => false,
        Err(err) => return Err(aws_err("GetObjectLockConfiguration", bucket)(err)),
    };
    if locked {
        push("object lock", Outcome::AlreadyExisted);
    } else {
        // No default retention: only audit copies are locked, each with its own retain-until date.
        client
            .put_object_lock_configuration()
            .bucket(bucket)
            .object_lock_configuration(
                ObjectLockConfiguration::builder()
                    .object_lock_enabled(ObjectLockEnabled::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(aws_err("PutObjectLockConfiguration", bucket))?;
        push("object lock", Outcome::Updated);
    }

    let blocked = match client.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => out.public_access_block_configuration().is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }),
        Err(err) if err.code() == Some("NoSuchPublicAccessBlockConfiguration") => false,
        Err(err) => return Err(aws_err("GetPublicAccessBlock", bucket)(err)),
    };
    if blocked {
        push("public access block", Outcome::AlreadyExisted);
    } else {
        client
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map_err(aws_err("PutPublicAccessBlock", bucket))?;
        push("public access block", Outcome::Updated);
    }

    if !options.tls_only_policy {
        push("tls-only policy", Outcome::Skipped);
        return Ok(());
    }
    let current = match client.get_bucket_policy().bucket(bucket).send().await {
        Ok(out) => out.policy,
        Err(err) if err.code() == Some("NoSuchBucketPolicy") => None,
        Err(err) => return Err(aws_err("GetBucketPolicy", bucket)(err)),
    };
    let had_policy = current.is_some();
    match converge_policy(current.as_deref(), bucket, region).map_err(|reason| {
        BootstrapError::Incompatible {
            resource: resource.clone(),
            reason,
        }
    })? {
        None => push("tls-only policy", Outcome::AlreadyExisted),
        Some(policy) => {
            client
                .put_bucket_policy()
                .bucket(bucket)
                .policy(policy)
                .send()
                .await
                .map_err(aws_err("PutBucketPolicy", bucket))?;
            push(
                "tls-only policy",
                if had_policy {
                    Outcome::Updated
                } else {
                    Outcome::Created
                },
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
