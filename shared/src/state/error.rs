//! What the state store's failures are called, and how each becomes an [`OpsError`] name.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use thiserror::Error;

use crate::error::{BoxError, OpsError};

/// The state store failed.
#[derive(Debug, Error)]
pub enum StateError {
    /// The caller's fencing token is older than the environment's fence or than a token the lock has issued
    /// since: the caller lost the lock, and nothing was written.
    #[error(
        "write to environment `{environment}` with fencing token {token} rejected: {reason}; nothing was written"
    )]
    Fenced {
        /// The environment.
        environment: String,
        /// The caller's token.
        token: u64,
        /// What was found instead.
        reason: String,
    },
    /// An AWS call failed.
    #[error("DynamoDB {operation} failed")]
    Aws {
        /// The AWS operation.
        operation: &'static str,
        /// Whether AWS throttled the call or failed on its side (5xx): worth retrying with back-off.
        throttled: bool,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// An item could not be read back as its record type.
    #[error("item pk={pk} sk={sk} is malformed: {reason}")]
    Corrupt {
        /// Its partition key.
        pk: String,
        /// Its sort key.
        sk: String,
        /// What is wrong.
        reason: String,
    },
    /// A pagination cursor was not one this store handed out.
    #[error("invalid cursor {0:?}: pass back the `next` cursor of a previous page unchanged")]
    InvalidCursor(String),
    /// An audit event reached the table but its immutable S3 copy was not written (`opsplane audit` reports
    /// the record as missing its copy).
    #[error("audit event {id} is in the table, but its S3 copy was not written")]
    AuditCopy {
        /// The event's id.
        id: String,
        /// Why the copy failed.
        #[source]
        source: BoxError,
    },
}

impl StateError {
    pub(crate) fn aws<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let throttled = crate::aws::is_transient(&err);
        StateError::Aws {
            operation,
            throttled,
            source: Box::new(err),
        }
    }
}

impl From<StateError> for OpsError {
    fn from(err: StateError) -> Self {
        match err {
            StateError::Fenced {
                ref environment, ..
            } => OpsError::LockLost {
                environment: environment.clone(),
                reason: err.to_string(),
            },
            StateError::Aws {
                operation,
                throttled: true,
                source,
            } => OpsError::Throttled { operation, source },
            StateError::Aws {
                operation, source, ..
            } => OpsError::Aws { operation, source },
            StateError::InvalidCursor(_) => OpsError::invalid("cursor", err.to_string()),
            StateError::AuditCopy { source, .. } => OpsError::Aws {
                operation: "PutObject",
                source,
            },
            StateError::Corrupt { .. } => OpsError::Internal(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_becomes_lock_lost_and_throttling_is_recognised() {
        let err: OpsError = StateError::Fenced {
            environment: "prod".into(),
            token: 3,
            reason: "the environment's fence is 4".into(),
        }
        .into();
        assert_eq!(err.name(), crate::ErrorName::LockLost);
        assert!(err.to_string().contains("fence is 4"), "{err}");
        assert!(crate::aws::is_throttling_code(Some("ThrottlingException")));
        assert!(crate::aws::is_throttling_code(Some(
            "ProvisionedThroughputExceededException"
        )));
        assert!(!crate::aws::is_throttling_code(Some(
            "ConditionalCheckFailedException"
        )));
        assert!(!crate::aws::is_throttling_code(None));
    }
}
