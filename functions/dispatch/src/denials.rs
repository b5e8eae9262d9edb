//! Audit records of refusals, without amplification.
//!
//! Any repository on GitHub can mint validly signed tokens, and an audience is no secret, so a refusal of a
//! verified caller must not cost us a table row and an Object-Locked S3 object each time. A refusal is
//! recorded at most once per (repository id, token `jti`), and at most [`DEFAULT_PER_MINUTE`] times per
//! repository per minute; the rest are only logged. Every string the caller chose (its claims, the reason
//! quoting them) is cut to [`MAX_AUDIT_CHARS`] before it is recorded.

use opsplane_shared::first_use::{Claimed, FirstUse};
use opsplane_shared::quota::Quota;
use opsplane_shared::state::{StateError, StateStore};
use serde_json::Value;

use crate::jwt::GithubClaims;
use crate::replay::record_expiry;

/// Refusal records per repository per minute.
pub const DEFAULT_PER_MINUTE: u32 = 10;
/// The longest caller-chosen string kept in an audit record, characters.
pub const MAX_AUDIT_CHARS: usize = 200;

/// `s`, cut to [`MAX_AUDIT_CHARS`] characters (marked with `…` when cut) and without control characters.
pub fn clip(s: &str) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_AUDIT_CHARS)
        .collect();
    if s.chars().count() > MAX_AUDIT_CHARS {
        out.push('…');
    }
    out
}

/// Every string inside `value` clipped ([`clip`]).
pub fn clip_all(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(clip(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(clip_all).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (clip(&k), clip_all(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Which refusals get an audit record.
#[derive(Debug, Clone)]
pub struct DenialBudget {
    once: FirstUse,
    quota: Quota,
}

impl DenialBudget {
    /// Counts in `store`'s table, at most `per_minute` records per repository per minute.
    pub fn new(store: &StateStore, per_minute: u32) -> Self {
        Self {
            once: FirstUse::new(store),
            quota: Quota::new(store, per_minute, 60),
        }
    }

    /// Whether the refusal of `claims`' token is to be recorded: its first refusal, within its repository's
    /// budget for this minute.
    pub async fn admit(&self, claims: &GithubClaims) -> Result<bool, StateError> {
        let repository = claims
            .repository_id
            .as_deref()
            .unwrap_or(claims.repository.as_str());
        let key = format!("dispatch-denied#{repository}#{}", claims.token_id());
        if self
            .once
            .claim(&key, "denied", "", record_expiry(claims))
            .await?
            != Claimed::New
        {
            return Ok(false);
        }
        self.quota
            .take(&format!("dispatch-denied#{repository}"))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn caller_strings_are_cut() {
        assert_eq!(clip("staging"), "staging");
        let long = clip(&"x".repeat(10_000));
        assert_eq!(long.chars().count(), MAX_AUDIT_CHARS + 1);
        assert_eq!(clip("a\u{0}b\nc"), "abc");
        let v = clip_all(json!({"reason": "y".repeat(5000), "n": 1, "l": ["z".repeat(300)]}));
        assert_eq!(
            v["reason"].as_str().unwrap().chars().count(),
            MAX_AUDIT_CHARS + 1
        );
        assert_eq!(v["n"], 1);
        assert_eq!(
            v["l"][0].as_str().unwrap().chars().count(),
            MAX_AUDIT_CHARS + 1
        );
    }
}
