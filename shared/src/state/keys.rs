//! The table's keys: which partition and sort key each kind of item lives under.

use chrono::NaiveDate;

/// The sort key of an environment's metadata item (fence, last known good).
pub const META_SK: &str = "META";
/// The sort key of an environment's lock item (DynamoDB lock backend).
pub const LOCK_SK: &str = "LOCK";

/// The partition key of an environment's items.
pub fn env_pk(environment: &str) -> String {
    format!("ENV#{environment}")
}

/// The partition key of an execution's approval.
pub fn approval_pk(execution: &str) -> String {
    format!("APPROVAL#{execution}")
}

/// The partition key of one UTC day's audit events.
pub(super) fn audit_pk(day: NaiveDate) -> String {
    format!("AUDIT#{}", day.format("%Y-%m-%d"))
}
