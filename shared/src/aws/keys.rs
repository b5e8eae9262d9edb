//! KMS: whether a key a spec names exists, asked before a plan so that a wrong key is refused naming its
//! field before anything changes (RDS would refuse it only at CreateDBInstance, `KMSKeyNotAccessibleFault`).

use aws_smithy_types::error::display::DisplayErrorContext;
use thiserror::Error;

use crate::aws::{is_transient, or_missing};

/// A KMS call failed for a reason other than the key's absence.
#[derive(Debug, Error)]
#[error("KMS DescribeKey failed: {}", DisplayErrorContext(.source.as_ref()))]
pub struct KeysError {
    /// Whether KMS throttled it or failed on its side (worth asking again later).
    pub throttled: bool,
    /// The SDK error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// The KMS adapter over one regional client.
#[derive(Debug, Clone)]
pub struct Keys {
    client: aws_sdk_kms::Client,
}

impl Keys {
    /// The adapter over `client`.
    pub fn new(client: aws_sdk_kms::Client) -> Self {
        Self { client }
    }

    /// The ARN of the key `reference` names (an ARN, a key id or `alias/<name>`), `None` when there is no
    /// such key in this Region.
    pub async fn arn(&self, reference: &str) -> Result<Option<String>, KeysError> {
        let described = self.client.describe_key().key_id(reference).send().await;
        // DescribeKey answers NotFoundException for a key or alias that does not exist.
        let found = or_missing(described, &["NotFoundException"], |e| KeysError {
            throttled: is_transient(&e),
            source: Box::new(e),
        })?;
        Ok(found.and_then(|out| out.key_metadata().and_then(|k| k.arn()).map(str::to_owned)))
    }
}

impl From<KeysError> for crate::OpsError {
    fn from(err: KeysError) -> Self {
        let (operation, source) = ("DescribeKey", err.source);
        if err.throttled {
            crate::OpsError::Throttled { operation, source }
        } else {
            crate::OpsError::Aws { operation, source }
        }
    }
}
