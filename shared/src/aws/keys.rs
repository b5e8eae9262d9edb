//! KMS: whether a key a spec names exists, asked before a plan so that a wrong key is refused naming its
//! field before anything changes (RDS would refuse it only at CreateDBInstance, `KMSKeyNotAccessibleFault`).

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;
use thiserror::Error;

/// A KMS call failed for a reason other than the key's absence.
#[derive(Debug, Error)]
#[error("KMS DescribeKey failed: {}", DisplayErrorContext(.0.as_ref()))]
pub struct KeysError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

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
        match self.client.describe_key().key_id(reference).send().await {
            Ok(out) => Ok(out.key_metadata().and_then(|k| k.arn()).map(str::to_owned)),
            // DescribeKey answers NotFoundException for a key or alias that does not exist.
            Err(SdkError::ServiceError(e)) if e.err().code() == Some("NotFoundException") => {
                Ok(None)
            }
            Err(e) => Err(KeysError(Box::new(e))),
        }
    }
}

impl From<KeysError> for crate::OpsError {
    fn from(err: KeysError) -> Self {
        crate::OpsError::Aws {
            operation: "DescribeKey",
            source: err.0,
        }
    }
}
