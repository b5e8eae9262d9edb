//! What an RDS call that failed is, for the adapter's callers: not found, throttled, refused in the
//! resource's status or at a quota, or anything else.

use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use thiserror::Error;

use crate::error::{BoxError, OpsError};

/// An RDS call failed.
#[derive(Debug, Error)]
pub enum RdsError {
    /// The snapshot or instance does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// `snapshot` or `instance`.
        kind: &'static str,
        /// Its identifier.
        id: String,
    },
    /// RDS throttled the call or failed on its side (5xx), after the SDK's retries.
    #[error("RDS throttled {operation}")]
    Throttled {
        /// The operation.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// Any other failure of the call.
    #[error("RDS {operation} failed")]
    Aws {
        /// The operation.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// RDS refused the call in the resource's current status (`InvalidDBInstanceState`: an instance still
    /// `creating`, `backing-up` or `modifying`; `InvalidDBSnapshotState`): worth asking again once it is
    /// `available`.
    #[error("RDS refused {operation} for now: {message}")]
    Busy {
        /// The operation.
        operation: &'static str,
        /// RDS's message, which names the resource and its status.
        message: String,
    },
    /// RDS refused the call because an account quota would be exceeded (`SnapshotQuotaExceeded`).
    #[error("RDS refused {operation}: {message}")]
    Quota {
        /// The operation.
        operation: &'static str,
        /// RDS's message.
        message: String,
    },
    /// RDS answered without a field it always sends.
    #[error("RDS {operation} answered without {field}")]
    Incomplete {
        /// The operation.
        operation: &'static str,
        /// The missing field.
        field: &'static str,
    },
}

impl From<RdsError> for OpsError {
    fn from(err: RdsError) -> Self {
        match err {
            RdsError::NotFound { .. } => OpsError::ResourceNotFound(err.to_string()),
            RdsError::Throttled { operation, source } => OpsError::Throttled { operation, source },
            RdsError::Aws { operation, source } => OpsError::Aws { operation, source },
            RdsError::Busy { .. } => OpsError::NotReady(err.to_string()),
            RdsError::Quota { .. } => OpsError::QuotaExceeded(err.to_string()),
            RdsError::Incomplete { .. } => OpsError::Internal(err.to_string()),
        }
    }
}

/// The error code of an SDK error, if the service sent one.
pub(super) fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<String> {
    err.as_service_error()
        .and_then(|e| e.code())
        .map(str::to_owned)
}

pub(super) use crate::aws::has_code;

impl RdsError {
    /// The `kind` (`"instance"`, `"snapshot"`) named `id` does not exist.
    pub(super) fn not_found(kind: &'static str, id: &str) -> Self {
        Self::NotFound {
            kind,
            id: id.to_owned(),
        }
    }
}

/// The resource a create or restore answered with; `Incomplete` when the answer left out `field`.
pub(super) fn answered<T>(
    operation: &'static str,
    field: &'static str,
    value: Option<T>,
) -> Result<T, RdsError> {
    value.ok_or(RdsError::Incomplete { operation, field })
}

/// The resource a retried create found already there, as described again; `NotFound` when it went
/// away in between.
pub(super) fn found<T>(kind: &'static str, id: &str, described: Option<T>) -> Result<T, RdsError> {
    described.ok_or_else(|| RdsError::not_found(kind, id))
}

/// A describe's answer: `None` when RDS says the resource does not exist (one of `missing`, its error
/// codes), the error classified otherwise.
pub(super) fn or_missing<T, E>(
    operation: &'static str,
    missing: &[&str],
    answer: Result<T, SdkError<E, HttpResponse>>,
) -> Result<Option<T>, RdsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    crate::aws::or_missing(answer, missing, |err| classify(operation, err))
}

/// The codes RDS answers for an instance that does not exist.
pub(super) const NO_INSTANCE: [&str; 2] = ["DBInstanceNotFound", "DBInstanceNotFoundFault"];
/// The codes RDS answers for a snapshot that does not exist.
pub(super) const NO_SNAPSHOT: [&str; 2] = ["DBSnapshotNotFound", "DBSnapshotNotFoundFault"];
/// The codes RDS answers when an instance of that identifier already exists (a retried create).
pub(super) const INSTANCE_EXISTS: [&str; 2] =
    ["DBInstanceAlreadyExists", "DBInstanceAlreadyExistsFault"];
/// The codes RDS answers when a snapshot of that identifier already exists (a retried create).
pub(super) const SNAPSHOT_EXISTS: [&str; 2] =
    ["DBSnapshotAlreadyExists", "DBSnapshotAlreadyExistsFault"];

pub(super) fn classify<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> RdsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = || crate::aws::service_message(&err);
    // The refusals RDS makes in a status or at a quota (RDS API reference, Common Errors and each
    // operation's Errors section).
    match code(&err).as_deref() {
        Some(
            "InvalidDBInstanceState"
            | "InvalidDBInstanceStateFault"
            | "InvalidDBSnapshotState"
            | "InvalidDBSnapshotStateFault",
        ) => {
            return RdsError::Busy {
                operation,
                message: message(),
            };
        }
        // The same code also refuses a copy while too many cross-Region copies are in progress to the
        // destination ("Cannot copy more than 5 snapshots across regions"): a slot frees up as copies finish.
        Some("SnapshotQuotaExceeded" | "SnapshotQuotaExceededFault")
            if message().contains("across regions") =>
        {
            return RdsError::Busy {
                operation,
                message: message(),
            };
        }
        Some("SnapshotQuotaExceeded" | "SnapshotQuotaExceededFault") => {
            return RdsError::Quota {
                operation,
                message: message(),
            };
        }
        _ => {}
    }
    if crate::aws::is_transient(&err) {
        RdsError::Throttled {
            operation,
            source: Box::new(err),
        }
    } else {
        RdsError::Aws {
            operation,
            source: Box::new(err),
        }
    }
}
