//! Database credentials by reference: a spec names a Secrets Manager secret or asks for RDS IAM
//! authentication, and the handler that connects resolves the reference itself, just before connecting.
//!
//! The value never travels: it is not part of any input or output, record, object or log line. Every value
//! fetched here is wrapped in a [`Secret`], whose `Debug` and `Display` print [`crate::redact::REDACTED`] and
//! whose construction registers the value with [`crate::redact`], so that even a driver's error message
//! quoting it comes out redacted.

use std::fmt;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_rds::auth_token::{AuthTokenGenerator, Config as AuthTokenConfig};
use serde_json::Value;
use thiserror::Error;

use crate::error::{BoxError, OpsError};
use crate::future::BoxFuture;
use crate::redact;

/// Where a probe's credential is: a pure description, kept in the domain with the spec that names it.
pub use crate::domain::spec::CredentialRef;

/// A secret value: a password or an IAM auth token. Never printed, never serialised.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`, registering it with [`crate::redact`] so that it is hidden wherever it shows up.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        redact::register(&value);
        Self(value)
    }

    /// The value, for the one call that needs it (the driver's password field).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(redact::REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(redact::REDACTED)
    }
}

/// Resolving a credential reference failed. No variant carries the value.
#[derive(Debug, Error)]
pub enum SecretError {
    /// Secrets Manager did not return the secret (missing, access denied, KMS key disabled, ...).
    #[error("GetSecretValue on {arn} failed")]
    Fetch {
        /// The secret's ARN (or name).
        arn: String,
        /// Whether AWS throttled the call.
        throttled: bool,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// The secret holds binary data, not a string.
    #[error(
        "secret {arn} has no SecretString: store the password as a string or as JSON with `password`"
    )]
    NotString {
        /// The secret's ARN.
        arn: String,
    },
    /// The secret is a JSON object without a `password` string.
    #[error(
        "secret {arn} is a JSON object without a `password` string (RDS-managed secrets have `username` and `password`)"
    )]
    NoPassword {
        /// The secret's ARN.
        arn: String,
    },
    /// The secret names another database user than the spec.
    #[error(
        "secret {arn} is for user `{secret_user}`, but the probe is configured for user `{user}`"
    )]
    UserMismatch {
        /// The secret's ARN.
        arn: String,
        /// The `username` in the secret.
        secret_user: String,
        /// The user in the spec.
        user: String,
    },
    /// Neither the spec nor the secret names a user.
    #[error("no database user: set `user` in the spec or `username` in secret {arn}")]
    NoUser {
        /// The secret's ARN.
        arn: String,
    },
    /// The SDK could not sign an IAM auth token (no credentials).
    #[error("an RDS IAM auth token for {user} at {host}:{port} could not be generated")]
    Token {
        /// The database host.
        host: String,
        /// The port.
        port: u16,
        /// The database user.
        user: String,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },
}

impl From<SecretError> for OpsError {
    fn from(err: SecretError) -> Self {
        match err {
            SecretError::Fetch {
                throttled: true,
                source,
                ..
            } => OpsError::Throttled {
                operation: "GetSecretValue",
                source,
            },
            SecretError::Fetch { ref source, .. }
                if source
                    .downcast_ref::<aws_sdk_secretsmanager::error::SdkError<
                        aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError,
                    >>()
                    .and_then(|e| e.as_service_error())
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                OpsError::ResourceNotFound(crate::error::redacted_chain(&err))
            }
            other => OpsError::Internal(crate::error::redacted_chain(&other)),
        }
    }
}

/// Reads a secret's string value.
pub trait SecretSource: Send + Sync {
    /// The `SecretString` of the secret `arn` (current version).
    fn secret_string<'a>(&'a self, arn: &'a str) -> BoxFuture<'a, Result<Secret, SecretError>>;
}

/// [`SecretSource`] over Secrets Manager.
#[derive(Debug, Clone)]
pub struct SecretsManager {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManager {
    /// The adapter over `client`.
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { client }
    }
}

impl SecretSource for SecretsManager {
    fn secret_string<'a>(&'a self, arn: &'a str) -> BoxFuture<'a, Result<Secret, SecretError>> {
        Box::pin(async move {
            let out = self
                .client
                .get_secret_value()
                .secret_id(arn)
                .send()
                .await
                .map_err(|e| SecretError::Fetch {
                    arn: arn.to_owned(),
                    throttled: crate::aws::is_transient(&e),
                    source: Box::new(e),
                })?;
            let value = out.secret_string.ok_or_else(|| SecretError::NotString {
                arn: arn.to_owned(),
            })?;
            tracing::debug!(secret = arn, "secret fetched");
            Ok(Secret::new(value))
        })
    }
}

/// Issues RDS IAM authentication tokens.
pub trait AuthTokenSource: Send + Sync {
    /// A token for `user` at `host:port`: a presigned `connect` request, valid 15 minutes.
    fn token<'a>(
        &'a self,
        host: &'a str,
        port: u16,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Secret, SecretError>>;
}

/// [`AuthTokenSource`] over the SDK's RDS auth-token signer, with the credentials and region of `sdk`.
#[derive(Debug, Clone)]
pub struct RdsAuthTokens {
    sdk: SdkConfig,
}

impl RdsAuthTokens {
    /// Signs with the credentials and in the region of `sdk` (the database's region: drills restore in the
    /// control plane's own region).
    pub fn new(sdk: SdkConfig) -> Self {
        Self { sdk }
    }
}

impl AuthTokenSource for RdsAuthTokens {
    fn token<'a>(
        &'a self,
        host: &'a str,
        port: u16,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Secret, SecretError>> {
        Box::pin(async move {
            let err = |source: BoxError| SecretError::Token {
                host: host.to_owned(),
                port,
                user: user.to_owned(),
                source,
            };
            let config = AuthTokenConfig::builder()
                .hostname(host)
                .port(u64::from(port))
                .username(user)
                .build()
                .map_err(err)?;
            let token = AuthTokenGenerator::new(config)
                .auth_token(&self.sdk)
                .await
                .map_err(err)?;
            // `AuthToken`'s Debug prints the token: it goes straight into a `Secret`.
            Ok(Secret::new(token.as_str()))
        })
    }
}

/// Whether the connection must be encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS when the server offers it, plain otherwise. A password is sent as a SCRAM proof, never in clear.
    Prefer,
    /// TLS or no connection: an IAM token is a bearer credential for 15 minutes, and RDS accepts it only over
    /// TLS anyway.
    Require,
}

/// A resolved login: who, with what, and how.
#[derive(Clone)]
pub struct DbLogin {
    /// The database user.
    pub user: String,
    /// The password or token.
    pub password: Secret,
    /// Whether TLS is required.
    pub tls: TlsMode,
}

impl fmt::Debug for DbLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbLogin")
            .field("user", &self.user)
            .field("password", &self.password)
            .field("tls", &self.tls)
            .finish()
    }
}

/// A secret's text as `(username, password)`: JSON with `password` (and optionally `username`, as RDS-managed
/// master user secrets have), or the bare password.
pub fn parse_secret(arn: &str, secret: &Secret) -> Result<(Option<String>, Secret), SecretError> {
    match serde_json::from_str::<Value>(secret.expose()) {
        Ok(Value::Object(map)) => {
            let password = map.get("password").and_then(Value::as_str).ok_or_else(|| {
                SecretError::NoPassword {
                    arn: arn.to_owned(),
                }
            })?;
            let username = map
                .get("username")
                .and_then(Value::as_str)
                .map(str::to_owned);
            Ok((username, Secret::new(password)))
        }
        _ => Ok((None, secret.clone())),
    }
}

/// Resolves credential references: the secrets and the token signer a handler was built with.
#[derive(Clone)]
pub struct Credentials {
    /// Where secrets are read.
    pub secrets: Arc<dyn SecretSource>,
    /// Where IAM auth tokens come from.
    pub tokens: Arc<dyn AuthTokenSource>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

impl Credentials {
    /// Secrets Manager and the SDK's token signer, over the control plane's clients.
    pub fn from_clients(clients: &crate::aws::Clients) -> Self {
        Self {
            secrets: Arc::new(SecretsManager::new(clients.secrets_manager.clone())),
            tokens: Arc::new(RdsAuthTokens::new(clients.sdk.clone())),
        }
    }

    /// The login for `user` (empty: the secret's `username`) at `host:port`, as `reference` says.
    pub async fn resolve(
        &self,
        reference: &CredentialRef,
        user: &str,
        host: &str,
        port: u16,
    ) -> Result<DbLogin, SecretError> {
        match reference {
            CredentialRef::Secret { arn } => {
                let secret = self.secrets.secret_string(arn).await?;
                let (secret_user, password) = parse_secret(arn, &secret)?;
                let user = match (user, secret_user) {
                    ("", Some(su)) => su,
                    ("", None) => return Err(SecretError::NoUser { arn: arn.clone() }),
                    (u, Some(su)) if su != u => {
                        return Err(SecretError::UserMismatch {
                            arn: arn.clone(),
                            secret_user: su,
                            user: u.to_owned(),
                        });
                    }
                    (u, _) => u.to_owned(),
                };
                Ok(DbLogin {
                    user,
                    password,
                    tls: TlsMode::Prefer,
                })
            }
            CredentialRef::IamAuth => {
                let token = self.tokens.token(host, port, user).await?;
                tracing::debug!(host, port, user, "IAM auth token issued");
                Ok(DbLogin {
                    user: user.to_owned(),
                    password: token,
                    tls: TlsMode::Require,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("never-printed-1");
        assert_eq!(format!("{s} {s:?}"), "[REDACTED] [REDACTED]");
        assert_eq!(s.expose(), "never-printed-1");
        // Registered: even a driver's message quoting it comes out redacted.
        assert_eq!(
            redact::redact("auth failed for never-printed-1"),
            "auth failed for [REDACTED]"
        );
    }

    #[test]
    fn rds_managed_json_plain_strings_and_bad_json() {
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:rds!db-1";
        let (user, pw) = parse_secret(
            arn,
            &Secret::new(r#"{"username":"postgres","password":"json-pw-123"}"#),
        )
        .unwrap();
        assert_eq!(user.as_deref(), Some("postgres"));
        assert_eq!(pw.expose(), "json-pw-123");
        let (user, pw) = parse_secret(arn, &Secret::new("plain-pw-123")).unwrap();
        assert_eq!((user, pw.expose()), (None, "plain-pw-123"));
        let err =
            parse_secret(arn, &Secret::new(r#"{"username":"u1","pass":"nope-123"}"#)).unwrap_err();
        assert!(matches!(err, SecretError::NoPassword { .. }));
        assert!(!err.to_string().contains("nope-123"));
    }

    struct Fixed(&'static str);

    impl SecretSource for Fixed {
        fn secret_string<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Secret, SecretError>> {
            Box::pin(async move { Ok(Secret::new(self.0)) })
        }
    }

    struct NoTokens;

    impl AuthTokenSource for NoTokens {
        fn token<'a>(
            &'a self,
            host: &'a str,
            port: u16,
            user: &'a str,
        ) -> BoxFuture<'a, Result<Secret, SecretError>> {
            Box::pin(async move {
                Err(SecretError::Token {
                    host: host.into(),
                    port,
                    user: user.into(),
                    source: "no credentials".into(),
                })
            })
        }
    }

    #[tokio::test]
    async fn the_user_comes_from_the_spec_or_the_secret_and_never_both_different() {
        let creds = |text| Credentials {
            secrets: Arc::new(Fixed(text)),
            tokens: Arc::new(NoTokens),
        };
        let arn = CredentialRef::Secret { arn: "a1".into() };
        let json = r#"{"username":"app","password":"resolve-pw-1"}"#;
        let login = creds(json).resolve(&arn, "", "h", 5432).await.unwrap();
        assert_eq!((login.user.as_str(), login.tls), ("app", TlsMode::Prefer));
        assert!(!format!("{login:?}").contains("resolve-pw-1"));
        let err = creds(json)
            .resolve(&arn, "probe", "h", 5432)
            .await
            .unwrap_err();
        assert!(matches!(err, SecretError::UserMismatch { .. }), "{err}");
        let err = creds("bare-pw-123")
            .resolve(&arn, "", "h", 5432)
            .await
            .unwrap_err();
        assert!(matches!(err, SecretError::NoUser { .. }), "{err}");
        let login = creds("bare-pw-123")
            .resolve(&arn, "probe", "h", 1)
            .await
            .unwrap();
        assert_eq!(login.password.expose(), "bare-pw-123");
        let err = creds(json)
            .resolve(&CredentialRef::IamAuth, "probe", "h", 5432)
            .await
            .unwrap_err();
        assert_eq!(OpsError::from(err).name().as_str(), "Internal");
    }
}
