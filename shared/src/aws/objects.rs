//! S3 objects in the state bucket: put with a SHA-256, get, head, list.
//!
//! The SHA-256 is computed here from the bytes sent and stored as object metadata, so a manifest can vouch
//! for exactly what was written and a drill can check it by reading the bytes back.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::domain::backup::ManifestObject;
use crate::error::{BoxError, OpsError};

/// Metadata key holding the hex SHA-256 of an object's bytes.
pub const SHA256_METADATA: &str = "sha256";

/// An object as read from the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Whether it carries an Object Lock retention (mode and retain-until date).
    pub retained: bool,
}

/// An S3 call failed.
#[derive(Debug, Error)]
pub enum ObjectError {
    /// S3 throttled the call (`SlowDown`) or failed on its side (5xx), after the SDK's retries.
    #[error("S3 throttled {operation} on {key}")]
    Throttled {
        /// The operation.
        operation: &'static str,
        /// The key.
        key: String,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// Any other failure.
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
    /// The body could not be read.
    #[error("reading the body of {key} failed")]
    Body {
        /// The key.
        key: String,
        /// The stream error.
        #[source]
        source: BoxError,
    },
}

impl From<ObjectError> for OpsError {
    fn from(err: ObjectError) -> Self {
        match err {
            ObjectError::Throttled {
                operation, source, ..
            } => OpsError::Throttled { operation, source },
            ObjectError::Aws {
                operation, source, ..
            } => OpsError::Aws { operation, source },
            ObjectError::Body { .. } => OpsError::Internal(err.to_string()),
        }
    }
}

fn classify<E>(operation: &'static str, key: &str, err: SdkError<E, HttpResponse>) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if super::is_transient(&err) {
        ObjectError::Throttled {
            operation,
            key: key.to_owned(),
            source: Box::new(err),
        }
    } else {
        ObjectError::Aws {
            operation,
            key: key.to_owned(),
            source: Box::new(err),
        }
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What `head` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// Size in bytes.
    pub bytes: u64,
    /// The SHA-256 recorded at write time, if the object was written by [`ObjectStore::put`].
    pub sha256: Option<String>,
}

/// The state bucket.
#[derive(Debug, Clone)]
pub struct ObjectStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl ObjectStore {
    /// The store over `bucket`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Writes `bytes` at `key` with their SHA-256 as metadata; returns key, digest and size.
    pub async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<ManifestObject, ObjectError> {
        let sha256 = sha256_hex(&bytes);
        let len = bytes.len() as u64;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .metadata(SHA256_METADATA, &sha256)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| classify("PutObject", key, e))?;
        Ok(ManifestObject {
            key: key.to_owned(),
            sha256,
            bytes: len,
        })
    }

    /// Reads an object; `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ObjectError> {
        Ok(self.read(key).await?.map(|o| o.bytes))
    }

    /// Reads an object with whether it carries an Object Lock retention; `None` when it does not exist.
    pub async fn read(&self, key: &str) -> Result<Option<StoredObject>, ObjectError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(err) => return Err(classify("GetObject", key, err)),
        };
        let retained =
            out.object_lock_mode().is_some() && out.object_lock_retain_until_date().is_some();
        let body = out.body.collect().await.map_err(|e| ObjectError::Body {
            key: key.to_owned(),
            source: Box::new(e),
        })?;
        Ok(Some(StoredObject {
            bytes: body.into_bytes().to_vec(),
            retained,
        }))
    }

    /// Size and recorded digest of an object; `None` when it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectHead>, ObjectError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectHead {
                bytes: out.content_length().unwrap_or_default().max(0) as u64,
                sha256: out.metadata().and_then(|m| m.get(SHA256_METADATA)).cloned(),
            })),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => Err(classify("HeadObject", key, err)),
        }
    }

    /// Every key under `prefix`, in S3's (lexicographic) order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListObjectsV2", prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
