//! The error names that cross into Step Functions.
//!
//! A Lambda's error reaches a state machine as `{"Error": errorType, "Cause": ...}` and the definitions
//! `Retry` and `Catch` on `errorType`. Those names are an API: they are spelled here once, in PascalCase, and
//! never derived from a Rust type name (which would change with a refactor and silently break a `Catch`).

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A boxed error kept as the source of another.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The stable name of a failure, as Step Functions sees it in `Error` and `errorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorName {
    /// The input is malformed; the message names the field and what is allowed. Never retried.
    InvalidInput,
    /// Another operation holds the environment's lock.
    LockHeld,
    /// The caller's lock (or fencing token) is no longer current; its write changed nothing.
    LockLost,
    /// A plan breaks a policy (encryption off, public access) and must not be applied.
    PolicyViolation,
    /// A person rejected the change at the approval step.
    ApprovalRejected,
    /// The resource is not ready yet; the definition polls again.
    NotReady,
    /// AWS throttled the call; the definition retries with back-off.
    Throttled,
    /// A resource the operation needs does not exist.
    ResourceNotFound,
    /// A health check did not pass.
    HealthCheckFailed,
    /// A restore did not produce a usable instance.
    RestoreFailed,
    /// A drill or check ran but missed its RTO/RPO target.
    TargetMissed,
    /// The same action is already running under the same idempotency key.
    AlreadyInProgress,
    /// An idempotency key was reused with a different payload.
    IdempotencyKeyReused,
    /// An AWS quota (100 manual DB snapshots per Region, ...) would be exceeded; the message names it and
    /// its figures. Never retried: it needs a person (delete old snapshots, or ask AWS for more).
    QuotaExceeded,
    /// One of the environment's alarms fired while a deployment baked: the deployment is reverted to the
    /// last known good and never becomes one.
    AlarmDuringBake,
    /// The plan computed just before applying differs from the one that was approved: nothing is applied.
    PlanChanged,
    /// Anything else: a bug or an AWS failure that is not worth retrying.
    Internal,
}

impl ErrorName {
    /// Every name, for documentation and exhaustive tests.
    pub const ALL: [ErrorName; 17] = [
        ErrorName::InvalidInput,
        ErrorName::LockHeld,
        ErrorName::LockLost,
        ErrorName::PolicyViolation,
        ErrorName::ApprovalRejected,
        ErrorName::NotReady,
        ErrorName::Throttled,
        ErrorName::ResourceNotFound,
        ErrorName::HealthCheckFailed,
        ErrorName::RestoreFailed,
        ErrorName::TargetMissed,
        ErrorName::AlreadyInProgress,
        ErrorName::IdempotencyKeyReused,
        ErrorName::QuotaExceeded,
        ErrorName::AlarmDuringBake,
        ErrorName::PlanChanged,
        ErrorName::Internal,
    ];

    /// The name as it appears in `errorType` and in the definitions' `ErrorEquals`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorName::InvalidInput => "InvalidInput",
            ErrorName::LockHeld => "LockHeld",
            ErrorName::LockLost => "LockLost",
            ErrorName::PolicyViolation => "PolicyViolation",
            ErrorName::ApprovalRejected => "ApprovalRejected",
            ErrorName::NotReady => "NotReady",
            ErrorName::Throttled => "Throttled",
            ErrorName::ResourceNotFound => "ResourceNotFound",
            ErrorName::HealthCheckFailed => "HealthCheckFailed",
            ErrorName::RestoreFailed => "RestoreFailed",
            ErrorName::TargetMissed => "TargetMissed",
            ErrorName::AlreadyInProgress => "AlreadyInProgress",
            ErrorName::IdempotencyKeyReused => "IdempotencyKeyReused",
            ErrorName::QuotaExceeded => "QuotaExceeded",
            ErrorName::AlarmDuringBake => "AlarmDuringBake",
            ErrorName::PlanChanged => "PlanChanged",
            ErrorName::Internal => "Internal",
        }
    }

    /// Whether a definition should retry this error rather than catch it.
    pub const fn is_retryable(self) -> bool {
        matches!(self, ErrorName::NotReady | ErrorName::Throttled)
    }
}

impl fmt::Display for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error a handler returns to Step Functions. Each variant maps to exactly one [`ErrorName`].
#[derive(Debug, Error)]
pub enum OpsError {
    /// A field of the input is missing or malformed.
    #[error("invalid input: field `{field}`: {reason}")]
    InvalidInput {
        /// The JSON path of the offending field, e.g. `environment`.
        field: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// The environment's lock is held by another operation.
    #[error("environment `{environment}` is locked by {holder} for {operation} since {since}")]
    LockHeld {
        /// The environment.
        environment: String,
        /// The holder (an execution ARN).
        holder: String,
        /// The operation the holder runs.
        operation: String,
        /// When the holder acquired it (RFC 3339).
        since: String,
    },
    /// The caller no longer holds the lock, or its fencing token is older than the environment's fence.
    #[error("lock on environment `{environment}` lost: {reason}")]
    LockLost {
        /// The environment.
        environment: String,
        /// What was found instead of the caller's lock.
        reason: String,
    },
    /// The requested change breaks a policy.
    #[error("policy violation: {0}")]
    PolicyViolation(String),
    /// A person rejected the change.
    #[error("approval rejected: {0}")]
    ApprovalRejected(String),
    /// The resource is not ready yet; poll again.
    #[error("not ready: {0}")]
    NotReady(String),
    /// An AWS call was throttled.
    #[error("throttled by AWS in {operation}")]
    Throttled {
        /// The AWS operation, e.g. `CreateDBSnapshot`.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// A resource does not exist.
    #[error("not found: {0}")]
    ResourceNotFound(String),
    /// A health check failed.
    #[error("health check failed: {0}")]
    HealthCheckFailed(String),
    /// A restore failed.
    #[error("restore failed: {0}")]
    RestoreFailed(String),
    /// A target (RTO, RPO) was missed.
    #[error("target missed: {0}")]
    TargetMissed(String),
    /// The same idempotent action is already running.
    #[error("action already in progress under idempotency key {0}")]
    AlreadyInProgress(String),
    /// An idempotency key was reused with another payload.
    #[error("idempotency key {0} was already used with a different payload")]
    IdempotencyKeyReused(String),
    /// An AWS quota would be exceeded (the message names it, with what is used and allowed).
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// An alarm of the environment fired during a deployment's bake (the message names it).
    #[error("alarm during the bake: {0}")]
    AlarmDuringBake(String),
    /// The plan changed between its approval and its apply (the message says how).
    #[error("the plan changed since it was approved: {0}")]
    PlanChanged(String),
    /// An AWS call failed in a way that retrying will not fix.
    #[error("AWS call {operation} failed")]
    Aws {
        /// The AWS operation.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// Anything else.
    #[error("internal error: {0}")]
    Internal(String),
}

impl OpsError {
    /// The stable name Step Functions sees.
    pub fn name(&self) -> ErrorName {
        match self {
            OpsError::InvalidInput { .. } => ErrorName::InvalidInput,
            OpsError::LockHeld { .. } => ErrorName::LockHeld,
            OpsError::LockLost { .. } => ErrorName::LockLost,
            OpsError::PolicyViolation(_) => ErrorName::PolicyViolation,
            OpsError::ApprovalRejected(_) => ErrorName::ApprovalRejected,
            OpsError::NotReady(_) => ErrorName::NotReady,
            OpsError::Throttled { .. } => ErrorName::Throttled,
            OpsError::ResourceNotFound(_) => ErrorName::ResourceNotFound,
            OpsError::HealthCheckFailed(_) => ErrorName::HealthCheckFailed,
            OpsError::RestoreFailed(_) => ErrorName::RestoreFailed,
            OpsError::TargetMissed(_) => ErrorName::TargetMissed,
            OpsError::AlreadyInProgress(_) => ErrorName::AlreadyInProgress,
            OpsError::IdempotencyKeyReused(_) => ErrorName::IdempotencyKeyReused,
            OpsError::QuotaExceeded(_) => ErrorName::QuotaExceeded,
            OpsError::AlarmDuringBake(_) => ErrorName::AlarmDuringBake,
            OpsError::PlanChanged(_) => ErrorName::PlanChanged,
            OpsError::Aws { .. } | OpsError::Internal(_) => ErrorName::Internal,
        }
    }

    /// Shorthand for [`OpsError::InvalidInput`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        OpsError::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The message with every source in the chain, so the `Cause` a person reads in the console says why,
    /// redacted ([`crate::redact`]): it lands in the execution history, readable for 90 days by anyone allowed
    /// `GetExecutionHistory`, so a connection string or token inside a source must not.
    pub fn full_message(&self) -> String {
        redacted_chain(self)
    }

    /// The error as Lambda serialises a function error: `{"errorType", "errorMessage"}`. The local engine
    /// receives exactly this, so that local and deployed runs see the same payload.
    pub fn to_lambda_payload(&self) -> serde_json::Value {
        serde_json::json!({ "errorType": self.name().as_str(), "errorMessage": self.full_message() })
    }
}

/// `err` and every source in its chain, joined by `: `, redacted ([`crate::redact`]). For any error whose
/// text leaves the process (a `Cause`, a check's detail in a report, the CLI's last line).
pub fn redacted_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        message.push_str(": ");
        match e.downcast_ref::<aws_smithy_types::error::ErrorMetadata>() {
            // An AWS error the SDK has no type for shows its metadata as a struct; its code and message
            // are what a person reads.
            Some(meta) => message.push_str(&format!(
                "{}: {}",
                meta.code().unwrap_or("error"),
                meta.message().unwrap_or("no message")
            )),
            None => message.push_str(&e.to_string()),
        }
        source = e.source();
    }
    crate::redact::redact(&message).into_owned()
}

impl From<OpsError> for lambda_runtime::Diagnostic {
    fn from(err: OpsError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.name().as_str().to_owned(),
            error_message: err.full_message(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aws_error_without_a_type_reads_as_its_code_and_message() {
        #[derive(Debug, thiserror::Error)]
        #[error("unhandled error (AccessDeniedException)")]
        struct Unhandled(#[source] aws_smithy_types::error::ErrorMetadata);
        let meta = aws_smithy_types::error::ErrorMetadata::builder()
            .code("AccessDeniedException")
            .message("not authorized to perform: eks:ListNodegroups")
            .build();
        let chain = redacted_chain(&Unhandled(meta));
        assert_eq!(
            chain,
            "unhandled error (AccessDeniedException): AccessDeniedException: not authorized to perform: eks:ListNodegroups"
        );
        assert_eq!(crate::domain::readable::rust_text(&chain), None);
    }

    #[test]
    fn names_are_pascal_case_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for name in ErrorName::ALL {
            let s = name.as_str();
            assert!(s.chars().next().unwrap().is_ascii_uppercase(), "{s}");
            assert!(s.chars().all(|c| c.is_ascii_alphanumeric()), "{s}");
            assert!(seen.insert(s), "duplicate {s}");
            assert_eq!(name.to_string(), s);
            assert_eq!(serde_json::to_value(name).unwrap(), serde_json::json!(s));
        }
    }

    #[test]
    fn diagnostic_carries_the_stable_name_not_the_rust_type() {
        let diag: lambda_runtime::Diagnostic =
            OpsError::invalid("environment", "must be one of dev, staging, prod").into();
        assert_eq!(diag.error_type, "InvalidInput");
        assert!(diag.error_message.contains("`environment`"));
        assert!(diag.error_message.contains("dev, staging, prod"));
        assert!(!diag.error_type.contains("OpsError"));
    }

    #[test]
    fn aws_errors_keep_their_source_in_the_message() {
        let source: BoxError = "ThrottlingException: Rate exceeded".into();
        let err = OpsError::Throttled {
            operation: "CreateDBSnapshot",
            source,
        };
        assert_eq!(err.name(), ErrorName::Throttled);
        assert!(err.name().is_retryable());
        assert!(std::error::Error::source(&err).is_some());
        let diag: lambda_runtime::Diagnostic = err.into();
        assert_eq!(diag.error_type, "Throttled");
        assert!(
            diag.error_message.contains("Rate exceeded"),
            "{}",
            diag.error_message
        );
    }

    #[test]
    fn causes_never_carry_a_secret_from_the_chain() {
        let source: BoxError =
            "error connecting to postgres://probe:chain-pw-123@db:5432/app with password=chain-pw-456"
                .into();
        let err = OpsError::Aws {
            operation: "Connect",
            source,
        };
        let diag: lambda_runtime::Diagnostic = err.into();
        assert!(
            !diag.error_message.contains("chain-pw"),
            "{}",
            diag.error_message
        );
        assert!(
            diag.error_message.contains("probe:[REDACTED]@db:5432"),
            "{}",
            diag.error_message
        );
        let err = OpsError::RestoreFailed(
            "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig rejected".into(),
        );
        assert_eq!(
            err.to_lambda_payload()["errorMessage"],
            "restore failed: token [REDACTED] rejected"
        );
    }

    #[test]
    fn lock_held_names_the_holder() {
        let err = OpsError::LockHeld {
            environment: "prod".into(),
            holder: "arn:aws:states:us-east-1:1:execution:deploy:run-1".into(),
            operation: "deploy".into(),
            since: "2026-01-01T00:00:00Z".into(),
        };
        let payload = err.to_lambda_payload();
        assert_eq!(payload["errorType"], "LockHeld");
        assert!(
            payload["errorMessage"]
                .as_str()
                .unwrap()
                .contains("execution:deploy:run-1")
        );
        assert!(!ErrorName::LockHeld.is_retryable());
    }
}

/// Deserialises a workflow's or a task's input, or says which field is wrong: the field's path (`prefix`
/// first, e.g. `detail.`) for a value of the wrong type, the field serde names for a missing or unknown one,
/// `input` for an input that is not an object at all.
pub fn parse_input<T: serde::de::DeserializeOwned>(
    input: serde_json::Value,
    prefix: &str,
) -> Result<T, OpsError> {
    let whole = || match prefix.trim_end_matches('.') {
        "" => "input".to_owned(),
        named => named.to_owned(),
    };
    if !input.is_object() {
        return Err(OpsError::invalid(whole(), "must be a JSON object"));
    }
    serde_path_to_error::deserialize(input).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        let field = if path != "." {
            format!("{prefix}{path}")
        } else {
            match msg.split('`').nth(1).filter(|_| msg.contains("field")) {
                Some(named) => format!("{prefix}{named}"),
                None => whole(),
            }
        };
        OpsError::invalid(field, msg)
    })
}

#[cfg(test)]
mod parse_input_tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        environment: String,
        #[serde(default)]
        spec_version: Option<String>,
    }

    fn field(v: serde_json::Value, prefix: &str) -> String {
        match parse_input::<Req>(v, prefix).unwrap_err() {
            OpsError::InvalidInput { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_the_wrong_missing_or_unknown_field() {
        use serde_json::json;
        assert_eq!(
            field(json!({"environment": "dev", "spec_version": true}), ""),
            "spec_version"
        );
        assert_eq!(field(json!({"environment": 5}), ""), "environment");
        assert_eq!(field(json!({}), ""), "environment");
        assert_eq!(field(json!({"environment": "dev", "x": 1}), ""), "x");
        assert_eq!(field(json!([1]), ""), "input");
        assert_eq!(
            field(json!({"environment": 5}), "detail."),
            "detail.environment"
        );
        assert_eq!(field(json!("x"), "detail."), "detail");
    }
}
