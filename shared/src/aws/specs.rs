//! Environment specs in the versioned state bucket: `specs/<env>/spec.yaml`, each upload a new S3 version.
//!
//! A deployment names the version it applies, so what was approved is what is applied, and the last known
//! good is a version id that a rollback reads back byte for byte whatever was uploaded since.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use thiserror::Error;

use crate::domain::spec::{EnvironmentSpec, SpecError, spec_key, validate_environment_name};
use crate::error::{BoxError, OpsError};

/// A spec could not be stored or read.
#[derive(Debug, Error)]
pub enum SpecStoreError {
    /// No spec (or no such version of it) for the environment.
    #[error("no spec for environment `{environment}`{} at s3://{bucket}/{key}: upload one first (opsplane plan|run provision --spec FILE)", version.as_deref().map(|v| format!(" (version {v})")).unwrap_or_default())]
    Missing {
        /// The environment.
        environment: String,
        /// The version asked for.
        version: Option<String>,
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// The stored spec does not parse or validate, or describes another environment.
    #[error("{key} (version {version}) is not a valid spec: {source}")]
    Invalid {
        /// The key.
        key: String,
        /// The version read.
        version: String,
        /// What is wrong.
        #[source]
        source: SpecError,
    },
    /// The bucket does not keep versions: a spec version could not be pinned.
    #[error(
        "s3://{0} returned no version id: the state bucket must be versioned (opsplane bootstrap)"
    )]
    Unversioned(String),
    /// An S3 call failed.
    #[error("S3 {operation} on {key} failed")]
    Aws {
        /// The operation.
        operation: &'static str,
        /// The key.
        key: String,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
}

impl From<SpecStoreError> for OpsError {
    fn from(err: SpecStoreError) -> Self {
        match &err {
            SpecStoreError::Missing { .. } => OpsError::invalid("environment", err.to_string()),
            SpecStoreError::Invalid { source, .. } => {
                OpsError::invalid(format!("spec.{}", source.field()), err.to_string())
            }
            SpecStoreError::Unversioned(_) => OpsError::Internal(err.to_string()),
            SpecStoreError::Aws { .. } => {
                let SpecStoreError::Aws {
                    operation, source, ..
                } = err
                else {
                    unreachable!("matched above")
                };
                OpsError::Aws { operation, source }
            }
        }
    }
}

fn aws<E, R>(operation: &'static str, key: &str, err: SdkError<E, R>) -> SpecStoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    SpecStoreError::Aws {
        operation,
        key: key.to_owned(),
        source: Box::new(err),
    }
}

/// A spec as read: the parsed document, its text and the S3 version it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSpec {
    /// The parsed, validated spec.
    pub spec: EnvironmentSpec,
    /// The YAML as stored.
    pub text: String,
    /// The S3 version id.
    pub version: String,
}

/// The specs in the state bucket.
#[derive(Debug, Clone)]
pub struct SpecStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl SpecStore {
    /// The store over `bucket` (versioned).
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// Validates `text` and uploads it as the environment's spec; returns the new version id.
    pub async fn put(&self, text: &str) -> Result<StoredSpec, SpecStoreError> {
        let key_for_errors = "spec".to_owned();
        let spec = EnvironmentSpec::parse(text).map_err(|source| SpecStoreError::Invalid {
            key: key_for_errors,
            version: "new".into(),
            source,
        })?;
        let key = spec_key(&spec.environment);
        let out = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/yaml")
            .body(ByteStream::from(text.as_bytes().to_vec()))
            .send()
            .await
            .map_err(|e| aws("PutObject", &key, e))?;
        let version = out
            .version_id()
            .map(str::to_owned)
            .ok_or_else(|| SpecStoreError::Unversioned(self.bucket.clone()))?;
        tracing::info!(environment = spec.environment, version, "spec uploaded");
        Ok(StoredSpec {
            spec,
            text: text.to_owned(),
            version,
        })
    }

    /// Reads the environment's spec at `version` (the latest when `None`), checks it and that it describes
    /// `environment`.
    pub async fn get(
        &self,
        environment: &str,
        version: Option<&str>,
    ) -> Result<StoredSpec, SpecStoreError> {
        let key = spec_key(environment);
        let missing = || SpecStoreError::Missing {
            environment: environment.to_owned(),
            version: version.map(str::to_owned),
            bucket: self.bucket.clone(),
            key: key.clone(),
        };
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
        {
            Ok(out) => out,
            Err(err)
                if err.as_service_error().is_some_and(|e| e.is_no_such_key())
                    || matches!(
                        err.as_service_error().and_then(|e| e.code()),
                        Some("NoSuchVersion" | "InvalidArgument")
                    ) =>
            {
                return Err(missing());
            }
            Err(err) => return Err(aws("GetObject", &key, err)),
        };
        let version = out
            .version_id()
            .map(str::to_owned)
            .or_else(|| version.map(str::to_owned))
            .ok_or_else(|| SpecStoreError::Unversioned(self.bucket.clone()))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| SpecStoreError::Aws {
                operation: "GetObject",
                key: key.clone(),
                source: Box::new(e),
            })?
            .into_bytes();
        let invalid = |source: SpecError| SpecStoreError::Invalid {
            key: key.clone(),
            version: version.clone(),
            source,
        };
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| invalid(SpecError::Syntax("the spec is not UTF-8".into())))?;
        let spec = EnvironmentSpec::parse(&text).map_err(invalid)?;
        if spec.environment != environment {
            return Err(invalid(SpecError::Invalid {
                field: "environment".into(),
                reason: format!(
                    "the spec describes environment `{}`, not `{environment}`",
                    spec.environment
                ),
            }));
        }
        Ok(StoredSpec {
            spec,
            text,
            version,
        })
    }

    /// Every environment that has a spec (`specs/<env>/spec.yaml`), sorted.
    pub async fn environments(&self) -> Result<Vec<String>, SpecStoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix("specs/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws("ListObjectsV2", "specs/", e))?;
            out.extend(page.contents().iter().filter_map(|o| {
                let env = o
                    .key()?
                    .strip_prefix("specs/")?
                    .strip_suffix("/spec.yaml")?;
                validate_environment_name(env).ok()?;
                Some(env.to_owned())
            }));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}
