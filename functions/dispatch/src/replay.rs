//! One use per token: a token's `jti` is recorded, with the token's expiry, for the one request it was first
//! presented with and the execution that request names.
//!
//! - The same token with the same request again (a client retrying after a lost answer) gets the same
//!   execution back.
//! - The same token with any other request is refused (409): a leaked token starts at most the one thing
//!   its job asked for, not everything its rule allows until it expires.
//!
//! The record is written with one conditional write in the state table before anything starts
//! ([`opsplane_shared::first_use`]), so two concurrent uses of one token cannot both be first; it is kept
//! until the token could no longer be accepted (`exp` plus the leeway) and the table's TTL removes it.

use chrono::{DateTime, TimeZone, Utc};
use opsplane_shared::first_use::{Claimed, FirstUse};
use opsplane_shared::idempotency::payload_hash;
use opsplane_shared::state::{StateError, StateStore};
use serde_json::{Value, json};
use thiserror::Error;

use crate::jwt::{GithubClaims, LEEWAY_SECONDS};

/// What the token's record says about this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenUse {
    /// The token's first use: this request is now its one request.
    First,
    /// The token was already used for this very request (a retry).
    Retry,
}

/// The token cannot be used for this request (409), or its record could not be written (500).
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The token was already used for another request.
    #[error(
        "this token was already used for another request (execution {execution}); a token starts one workflow for one environment: request a new token for another"
    )]
    Reused {
        /// The execution the first use named.
        execution: String,
    },
    /// The state table failed.
    #[error("recording the token's use failed: {0}")]
    Store(#[from] StateError),
}

/// The tokens' uses, in the state table.
#[derive(Debug, Clone)]
pub struct TokenUses {
    records: FirstUse,
}

/// What identifies a request for a token: the workflow, the environment and the caller's input.
pub fn request_fingerprint(workflow: &str, environment: &str, input: &Value) -> String {
    payload_hash(&json!({
        "workflow": workflow,
        "environment": environment,
        "input": input,
    }))
}

/// When a token's record may go: once the token itself could no longer be accepted.
pub fn record_expiry(claims: &GithubClaims) -> DateTime<Utc> {
    let at = claims.exp.saturating_add(LEEWAY_SECONDS as i64);
    Utc.timestamp_opt(at, 0).single().unwrap_or_else(Utc::now)
}

impl TokenUses {
    /// Records in `store`'s table.
    pub fn new(store: &StateStore) -> Self {
        Self {
            records: FirstUse::new(store),
        }
    }

    /// Records `claims`' token as used for the request `fingerprint`, which names `execution`; or tells
    /// whether it already was.
    pub async fn claim(
        &self,
        claims: &GithubClaims,
        fingerprint: &str,
        execution: &str,
    ) -> Result<TokenUse, ReplayError> {
        let key = format!("dispatch-jti#{}", claims.token_id());
        match self
            .records
            .claim(&key, fingerprint, execution, record_expiry(claims))
            .await?
        {
            Claimed::New => Ok(TokenUse::First),
            Claimed::Same { .. } => Ok(TokenUse::Retry),
            Claimed::Other { value } => Err(ReplayError::Reused { execution: value }),
        }
    }
}
