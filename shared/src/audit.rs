//! The audit trail no one can rewrite: every audit event is written to the table (queryable) and to S3 under
//! `audit/<yyyy>/<mm>/<dd>/<ts>-<id>.json` with an Object Lock retention (immutable), and [`verify`] checks
//! that the two agree.
//!
//! The table copy is written first, then the S3 copy: an event always reaches the queryable log, and an S3
//! failure leaves a record [`verify`] reports as [`CopyStatus::MissingCopy`]. Whoever can write the table
//! can delete or change a record there, but not the locked S3 version, so a deleted record shows up as
//! [`Discrepancy::NotInTable`] and a changed one as [`CopyStatus::Differs`].
//!
//! The archive itself ([`AuditArchive`], the copies' keys) belongs to the state store, which writes the copy
//! with the record; it is re-exported here under the names callers know.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::rfc3339;
use crate::state::{AuditEvent, StateStore};

pub use crate::state::{AUDIT_PREFIX, AuditArchive, AuditError, audit_key, day_prefix};

/// How a table record's S3 copy compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum CopyStatus {
    /// The copy exists, is locked and says the same.
    Verified,
    /// There is no copy.
    MissingCopy,
    /// The copy says something else (the fields that differ).
    Differs(Vec<String>),
    /// The copy carries no Object Lock retention.
    NotLocked,
    /// The copy is not an audit event.
    Unreadable(String),
}

/// One table record and its copy's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// The event, as the table has it.
    pub event: AuditEvent,
    /// The S3 key its copy has (or should have).
    pub key: String,
    /// How the copy compares.
    pub status: CopyStatus,
}

/// Something in S3 the table does not account for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Discrepancy {
    /// A copy of the environment's whose table record is gone.
    NotInTable {
        /// The copy's key.
        key: String,
        /// The event it holds.
        event: AuditEvent,
    },
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditReport {
    /// The environment.
    pub environment: String,
    /// The start of the range.
    pub since: DateTime<Utc>,
    /// Every table record in the range, oldest first, with its copy's status.
    pub entries: Vec<AuditEntry>,
    /// Copies without a table record.
    pub discrepancies: Vec<Discrepancy>,
}

impl AuditReport {
    /// Whether table and S3 agree on everything.
    pub fn agrees(&self) -> bool {
        self.discrepancies.is_empty()
            && self
                .entries
                .iter()
                .all(|e| e.status == CopyStatus::Verified)
    }
}

/// The longest range [`verify`] lists, in days (one table query and one S3 listing per day).
pub const MAX_DAYS: i64 = 3660;

fn differing_fields(table: &AuditEvent, copy: &AuditEvent) -> Vec<String> {
    let mut fields = Vec::new();
    let mut check = |name: &str, same: bool| {
        if !same {
            fields.push(name.to_owned());
        }
    };
    check("id", table.id == copy.id);
    check("at", table.at == copy.at);
    check("actor", table.actor == copy.actor);
    check("action", table.action == copy.action);
    check("environment", table.environment == copy.environment);
    check("execution", table.execution == copy.execution);
    check("result", table.result == copy.result);
    check("details", table.details == copy.details);
    fields
}

/// Lists `environment`'s audit events from `since` to the store's now, and checks each table record against
/// its S3 copy, and each copy against the table.
pub async fn verify(
    store: &StateStore,
    archive: &AuditArchive,
    environment: &str,
    since: DateTime<Utc>,
) -> Result<AuditReport, AuditError> {
    let now = store.now();
    if since > now {
        return Err(AuditError::Range(format!(
            "--since {} is after now ({})",
            rfc3339(since),
            rfc3339(now)
        )));
    }
    if (now - since).num_days() > MAX_DAYS {
        return Err(AuditError::Range(format!(
            "at most {MAX_DAYS} days at once; choose a later --since"
        )));
    }
    let mut entries = Vec::new();
    let mut discrepancies = Vec::new();
    let mut day = since.date_naive();
    while day <= now.date_naive() {
        let mut in_table = store.audit_day(day, Some(environment)).await?;
        in_table.retain(|e| e.at >= since);
        in_table.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        let keys = archive.keys(day).await?;
        let expected: std::collections::HashSet<String> = in_table.iter().map(audit_key).collect();
        for event in in_table {
            let key = audit_key(&event);
            let status = if !keys.contains(&key) {
                CopyStatus::MissingCopy
            } else {
                match archive.read(&key).await? {
                    None => CopyStatus::MissingCopy,
                    Some((Err(e), _)) => CopyStatus::Unreadable(e),
                    Some((Ok(copy), locked)) => {
                        let differs = differing_fields(&event, &copy);
                        if !differs.is_empty() {
                            CopyStatus::Differs(differs)
                        } else if !locked {
                            CopyStatus::NotLocked
                        } else {
                            CopyStatus::Verified
                        }
                    }
                }
            };
            entries.push(AuditEntry { event, key, status });
        }
        // Copies of this environment with no table record: a record deleted from the table.
        for key in keys.iter().filter(|k| !expected.contains(*k)) {
            if let Some((Ok(copy), _)) = archive.read(key).await?
                && copy.environment.as_deref() == Some(environment)
                && copy.at >= since
            {
                discrepancies.push(Discrepancy::NotInTable {
                    key: key.clone(),
                    event: copy,
                });
            }
        }
        day = day.succ_opt().expect("a day before the end of time");
    }
    tracing::info!(
        environment,
        events = entries.len(),
        discrepancies = discrepancies.len(),
        "audit verified"
    );
    Ok(AuditReport {
        environment: environment.to_owned(),
        since,
        entries,
        discrepancies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> AuditEvent {
        AuditEvent::sample()
    }

    #[test]
    fn differences_are_named_by_field() {
        let mut other = event();
        assert!(differing_fields(&event(), &other).is_empty());
        other.result = "denied".into();
        other.details = json!({});
        assert_eq!(differing_fields(&event(), &other), ["result", "details"]);
    }
}
