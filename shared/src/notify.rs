//! The outcome events every workflow publishes to EventBridge (schema in `docs/EVENTS.md`).
//!
//! The definitions build these events themselves in their `Notify*` states (the `events:putEvents`
//! integration), so this module is the schema's one typed reading: for consumers in Rust, the tests, and the
//! CLI's console links.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The `source` of every opsplane event.
pub const SOURCE: &str = "opsplane";
/// The `detail-type` of a workflow's outcome.
pub const DETAIL_TYPE_OUTCOME: &str = "opsplane workflow outcome";
/// The `detail-type` of a workflow waiting for a person's approval.
pub const DETAIL_TYPE_APPROVAL: &str = "opsplane approval waiting";
/// The schema version the definitions write in `detail.version`.
pub const SCHEMA_VERSION: &str = "1";

/// How a workflow ended (or that it waits for approval).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeResult {
    /// The workflow did what it was asked (a drill: restored, verified and within its targets).
    Succeeded,
    /// The workflow failed; `error` and `cause` say why. What it took was released first.
    Failed,
    /// A change failed and the environment was reverted to its last known good.
    RolledBack,
    /// A drill restored and verified, but missed its RTO or RPO target.
    TargetMissed,
    /// A change waits for a person's approval (`opsplane approve` / `reject`).
    ApprovalWaiting,
    /// An alarm fired with no deployment to blame within the rollback window: nothing was rolled back, a
    /// person decides (the summary lists the latest deployments).
    AlarmWithoutRecentChange,
}

impl OutcomeResult {
    /// The spelling in `detail.result`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeResult::Succeeded => "succeeded",
            OutcomeResult::Failed => "failed",
            OutcomeResult::RolledBack => "rolled_back",
            OutcomeResult::TargetMissed => "target_missed",
            OutcomeResult::ApprovalWaiting => "approval_waiting",
            OutcomeResult::AlarmWithoutRecentChange => "alarm_without_recent_change",
        }
    }
}

/// The `detail` of an opsplane event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The schema version, [`SCHEMA_VERSION`].
    pub version: String,
    /// The workflow, e.g. `backup`, `dr-drill`, `provision`.
    pub workflow: String,
    /// The environment the execution was started for; `null` when its input named none.
    pub environment: Option<String>,
    /// The execution's ARN.
    pub execution_arn: String,
    /// The execution's page in the AWS console.
    pub console_url: String,
    /// How it ended.
    pub result: OutcomeResult,
    /// The error name (`shared/src/error.rs`, or a `States.*` name) when it did not succeed.
    pub error: Option<String>,
    /// The cause, for a person to read.
    pub cause: Option<String>,
    /// One line saying what was done.
    pub summary: String,
    /// When the execution started (RFC 3339).
    pub started_at: DateTime<Utc>,
    /// When the outcome was decided (RFC 3339): the `Notify*` state's entry.
    pub finished_at: DateTime<Utc>,
}

/// The AWS console's page of a Step Functions execution; the region is read from the ARN.
pub fn console_url(execution_arn: &str) -> String {
    let region = execution_arn.split(':').nth(3).unwrap_or("us-east-1");
    format!(
        "https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_spelled_as_documented() {
        for r in [
            OutcomeResult::Succeeded,
            OutcomeResult::Failed,
            OutcomeResult::RolledBack,
            OutcomeResult::TargetMissed,
            OutcomeResult::ApprovalWaiting,
            OutcomeResult::AlarmWithoutRecentChange,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }

    #[test]
    fn console_links_use_the_execution_region() {
        let arn = "arn:aws:states:eu-west-1:123456789012:execution:opsplane-backup:nightly";
        assert_eq!(
            console_url(arn),
            "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn:aws:states:eu-west-1:123456789012:execution:opsplane-backup:nightly"
        );
    }
}
