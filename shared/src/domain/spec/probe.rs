//! A SQL probe's description: which database and user, and where its credential is (by reference only).

use serde::{Deserialize, Serialize};

use super::error::SpecError;

/// A SQL probe: `SELECT 1`, then optionally a canary query whose single timestamp is the newest write.
///
/// Credentials are given by reference only, exactly one of `secret_arn` and `iam_auth: true`: the handler
/// that connects resolves them itself (see `opsplane_shared::secrets`), so no password is ever in a spec, a
/// workflow's input or output, or a function's environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// Database name.
    pub database: String,
    /// User name. May be left out with `secret_arn` when the secret's JSON has `username` (as the secret RDS
    /// manages with `ManageMasterUserPassword` has); when both are set they must agree.
    #[serde(default)]
    pub user: String,
    /// A Secrets Manager secret holding the password: a string, or JSON with `password` (and `username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_arn: Option<String>,
    /// Log in with an RDS IAM auth token for `user`, over TLS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub iam_auth: bool,
    /// A query returning one `timestamptz`: the newest write in the restored data.
    #[serde(default)]
    pub canary_query: Option<String>,
}

impl ProbeSpec {
    /// The credential reference, once [`ProbeSpec::check`] has passed.
    pub fn credentials(&self) -> CredentialRef {
        match &self.secret_arn {
            Some(arn) if !self.iam_auth => CredentialRef::Secret { arn: arn.clone() },
            _ => CredentialRef::IamAuth,
        }
    }

    /// Checks the probe; `prefix` is where it sits in the spec (`drill.probe`). Errors name the field.
    pub fn check(&self, prefix: &str) -> Result<(), SpecError> {
        let field = |name: &str| format!("{prefix}.{name}");
        if self.database.is_empty() {
            return Err(SpecError::invalid(field("database"), "must not be empty"));
        }
        match (&self.secret_arn, self.iam_auth) {
            (Some(_), true) | (None, false) => {
                return Err(SpecError::invalid(
                    field("secret_arn"),
                    "give exactly one of `secret_arn` (a Secrets Manager secret) and `iam_auth: true`; \
                     a password is never written in a spec",
                ));
            }
            (Some(arn), false) => {
                // Full ARN or name, as GetSecretValue takes; a password pasted here would fail this check.
                let ok = arn.starts_with("arn:aws")
                    && arn.split(':').nth(2) == Some("secretsmanager")
                    && arn.split(':').count() >= 7;
                if !ok {
                    return Err(SpecError::invalid(
                        field("secret_arn"),
                        "must be a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)",
                    ));
                }
            }
            (None, true) => {
                if self.user.is_empty() {
                    return Err(SpecError::invalid(
                        field("user"),
                        "must not be empty with `iam_auth: true` (the token is issued for a user)",
                    ));
                }
            }
        }
        if self
            .canary_query
            .as_deref()
            .is_some_and(|q| q.trim().is_empty())
        {
            return Err(SpecError::invalid(
                field("canary_query"),
                "must not be empty; leave it out to skip the canary",
            ));
        }
        Ok(())
    }
}

/// How the probe authenticates, as the spec says (see [`ProbeSpec`]): a pure description of where the
/// credential is, resolved by `crate::secrets` at the moment of connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialRef {
    /// The password (or `username` and `password`) in a Secrets Manager secret.
    Secret {
        /// The secret's ARN.
        arn: String,
    },
    /// An RDS IAM auth token for the user, over TLS.
    IamAuth,
}
