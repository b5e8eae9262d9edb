//! Typed configuration read from the process environment.
//!
//! Lambda hands configuration to a function only through environment variables, so every handler and the CLI
//! read them here, once, into [`Config`]; nothing else in the code base calls `std::env::var`.

use std::time::Duration;

use thiserror::Error;

use crate::domain::arn::validate_kms_key_arn;

/// Environment variable naming the DynamoDB state table.
pub const ENV_TABLE: &str = "OPSPLANE_TABLE";
/// Environment variable naming the S3 state bucket.
pub const ENV_BUCKET: &str = "OPSPLANE_BUCKET";
/// The SDK's standard endpoint override, used to point every client at moto in local runs.
pub const ENV_ENDPOINT: &str = "AWS_ENDPOINT_URL";
/// Table name used when [`ENV_TABLE`] is not set.
pub const DEFAULT_TABLE: &str = "opsplane";
/// Environment variable choosing the lock backend: `dynamodb` (default) or `s3`.
pub const ENV_LOCK_BACKEND: &str = "OPSPLANE_LOCK_BACKEND";
/// Environment variable naming the customer-managed KMS key (key ARN) of the table and the bucket.
pub const ENV_KMS_KEY_ID: &str = "OPSPLANE_KMS_KEY_ID";
/// Environment variable choosing the Object Lock mode of audit copies: `governance` (default) or `compliance`.
pub const ENV_AUDIT_LOCK_MODE: &str = "OPSPLANE_AUDIT_LOCK_MODE";
/// Environment variable setting how many days each audit copy is retained under Object Lock.
pub const ENV_AUDIT_RETENTION_DAYS: &str = "OPSPLANE_AUDIT_RETENTION_DAYS";
/// Audit copies are retained this many days unless [`ENV_AUDIT_RETENTION_DAYS`] says otherwise.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 365;
/// The longest retention accepted (100 years, S3's own limit).
pub const MAX_AUDIT_RETENTION_DAYS: u32 = 36_500;

/// The Object Lock mode of audit copies in S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditLockMode {
    /// Nobody deletes or overwrites a locked version before it expires, except a principal allowed
    /// `s3:BypassGovernanceRetention` who asks for the bypass (which is itself logged by CloudTrail).
    #[default]
    Governance,
    /// Nobody, the root user included, deletes a locked version or shortens its retention before it expires.
    Compliance,
}

impl AuditLockMode {
    /// Parses the value of [`ENV_AUDIT_LOCK_MODE`] (case-insensitive).
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.to_ascii_lowercase().as_str() {
            "governance" => Ok(AuditLockMode::Governance),
            "compliance" => Ok(AuditLockMode::Compliance),
            _ => {
                Err("the audit lock mode is `governance` (the default) or `compliance`".to_owned())
            }
        }
    }

    /// The mode as S3 spells it.
    pub const fn as_s3(self) -> &'static str {
        match self {
            AuditLockMode::Governance => "GOVERNANCE",
            AuditLockMode::Compliance => "COMPLIANCE",
        }
    }
}

/// How audit events are kept in S3 besides the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditSettings {
    /// The Object Lock mode of each copy.
    pub lock_mode: AuditLockMode,
    /// Days each copy is retained.
    pub retention_days: u32,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            lock_mode: AuditLockMode::default(),
            retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
        }
    }
}

/// The RDS request budget of fleet runs, in requests per second ([`FleetSettings::rds_request_budget`]).
pub const ENV_RDS_REQUEST_BUDGET: &str = "OPSPLANE_RDS_REQUEST_BUDGET";
/// The most drills a night's drill rotation starts ([`FleetSettings::drills_per_night`]).
pub const ENV_DRILLS_PER_NIGHT: &str = "OPSPLANE_DRILLS_PER_NIGHT";

/// How fleet runs (every environment at once) share AWS's limits with everything else in the account.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FleetSettings {
    /// RDS API requests per second a fleet run may spend. RDS allows a burst of 300 and a sustained 12 per
    /// second per account and Region, shared with the console, Terraform and every other tool
    /// (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-api-throttling.html): a third by
    /// default, so the others keep theirs.
    pub rds_request_budget: f64,
    /// The most drills one night of the rotation starts: a bound on scratch instances and their cost.
    pub drills_per_night: u32,
}

impl Default for FleetSettings {
    fn default() -> Self {
        Self {
            rds_request_budget: 4.0,
            drills_per_night: 50,
        }
    }
}

/// Where environment locks live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockBackend {
    /// The `LOCK` item in the state table (one request per acquire and per release).
    #[default]
    DynamoDb,
    /// `locks/<env>.lock` objects in the state bucket, written with conditional PUTs.
    S3,
}

impl LockBackend {
    /// Parses the value of [`ENV_LOCK_BACKEND`] (case-insensitive).
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.to_ascii_lowercase().as_str() {
            "dynamodb" => Ok(LockBackend::DynamoDb),
            "s3" => Ok(LockBackend::S3),
            _ => Err("the lock backend is `dynamodb` (the default) or `s3`".to_owned()),
        }
    }
}

/// Where the control plane keeps its state and how it reaches AWS.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// DynamoDB table holding locks, state, idempotency records and audit events.
    pub table_name: String,
    /// S3 bucket holding specs, manifests, reports and the S3 lock backend's objects.
    pub bucket_name: String,
    /// AWS region of the control plane.
    pub region: String,
    /// Endpoint override (moto in local runs). When set, S3 is addressed path-style.
    pub endpoint_url: Option<String>,
    /// Use fixed dummy credentials instead of the default chain (local runs against moto only).
    pub local_credentials: bool,
    /// Where environment locks live ([`ENV_LOCK_BACKEND`]).
    pub lock_backend: LockBackend,
    /// How SDK calls are retried and bounded in time.
    pub sdk: SdkSettings,
    /// The customer-managed KMS key (ARN) the table and bucket are encrypted with ([`ENV_KMS_KEY_ID`]);
    /// `None`: AWS-managed encryption.
    pub kms_key_id: Option<String>,
    /// How audit copies are locked in S3 ([`ENV_AUDIT_LOCK_MODE`], [`ENV_AUDIT_RETENTION_DAYS`]).
    pub audit: AuditSettings,
    /// How fleet runs pace themselves ([`ENV_RDS_REQUEST_BUDGET`], [`ENV_DRILLS_PER_NIGHT`]).
    pub fleet: FleetSettings,
}

/// How every SDK call is retried and bounded in time. Throttling and 5xx answers are retried by the SDK with
/// exponential back-off and jitter; once the attempts are spent the adapters name the failure `Throttled`, so
/// the definitions retry again on a longer scale. The timeouts keep a function from spending its whole Lambda
/// timeout on an endpoint that accepts connections but never answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdkSettings {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Back-off before the first retry; doubled (with full jitter) for each further one.
    pub initial_backoff: Duration,
    /// The longest back-off between two attempts.
    pub max_backoff: Duration,
    /// Time to open a connection.
    pub connect_timeout: Duration,
    /// Time for one attempt, from sending the request to the end of the answer.
    pub attempt_timeout: Duration,
    /// Time for the whole call, every attempt and back-off included.
    pub operation_timeout: Duration,
}

impl Default for SdkSettings {
    /// Three attempts (the SDK's standard mode), 1 s first back-off capped at 20 s, and timeouts that fit
    /// well inside a function's 60-second Lambda timeout.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
            connect_timeout: Duration::from_millis(3100),
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
        }
    }
}

/// A configuration value is missing or malformed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("environment variable {var} is not set: {fix}")]
    Missing {
        /// The variable's name.
        var: &'static str,
        /// What to set it to.
        fix: &'static str,
    },
    /// A variable is set to a value that cannot be used.
    #[error("environment variable {var}=\"{value}\" is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// The value found.
        value: String,
        /// Why it cannot be used and what is allowed.
        reason: String,
    },
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads the configuration through `lookup`, so that tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table_name = lookup(ENV_TABLE).unwrap_or_else(|| DEFAULT_TABLE.to_owned());
        validate_table_name(&table_name).map_err(|reason| ConfigError::Invalid {
            var: ENV_TABLE,
            value: table_name.clone(),
            reason,
        })?;
        let bucket_name = lookup(ENV_BUCKET).ok_or(ConfigError::Missing {
            var: ENV_BUCKET,
            fix: "set it to the state bucket created by `opsplane bootstrap`",
        })?;
        validate_bucket_name(&bucket_name).map_err(|reason| ConfigError::Invalid {
            var: ENV_BUCKET,
            value: bucket_name.clone(),
            reason,
        })?;
        let region = lookup("AWS_REGION")
            .or_else(|| lookup("AWS_DEFAULT_REGION"))
            .ok_or(ConfigError::Missing {
                var: "AWS_REGION",
                fix: "set AWS_REGION (Lambda sets it; locally use e.g. us-east-1)",
            })?;
        let endpoint_url = lookup(ENV_ENDPOINT);
        if let Some(url) = &endpoint_url {
            validate_endpoint(url).map_err(|reason| ConfigError::Invalid {
                var: ENV_ENDPOINT,
                value: url.clone(),
                reason,
            })?;
        }
        // An endpoint override without credentials is a local run against moto, which accepts any keys.
        let local_credentials = endpoint_url.is_some() && lookup("AWS_ACCESS_KEY_ID").is_none();
        let lock_backend = match lookup(ENV_LOCK_BACKEND) {
            None => LockBackend::default(),
            Some(value) => LockBackend::parse(&value).map_err(|reason| ConfigError::Invalid {
                var: ENV_LOCK_BACKEND,
                value,
                reason,
            })?,
        };
        let kms_key_id = lookup(ENV_KMS_KEY_ID);
        if let Some(key) = &kms_key_id {
            validate_kms_key_arn(key).map_err(|reason| ConfigError::Invalid {
                var: ENV_KMS_KEY_ID,
                value: key.clone(),
                reason,
            })?;
        }
        let lock_mode = match lookup(ENV_AUDIT_LOCK_MODE) {
            None => AuditLockMode::default(),
            Some(value) => AuditLockMode::parse(&value).map_err(|reason| ConfigError::Invalid {
                var: ENV_AUDIT_LOCK_MODE,
                value,
                reason,
            })?,
        };
        let retention_days = match lookup(ENV_AUDIT_RETENTION_DAYS) {
            None => DEFAULT_AUDIT_RETENTION_DAYS,
            Some(value) => match value.parse::<u32>() {
                Ok(days) if (1..=MAX_AUDIT_RETENTION_DAYS).contains(&days) => days,
                _ => {
                    return Err(ConfigError::Invalid {
                        var: ENV_AUDIT_RETENTION_DAYS,
                        value,
                        reason: format!(
                            "a whole number of days from 1 to {MAX_AUDIT_RETENTION_DAYS}"
                        ),
                    });
                }
            },
        };
        let defaults = FleetSettings::default();
        let rds_request_budget = match lookup(ENV_RDS_REQUEST_BUDGET) {
            None => defaults.rds_request_budget,
            Some(value) => match value.parse::<f64>() {
                // More than AWS's 12 a second could only be spent by throttling everyone else.
                Ok(rate) if rate > 0.0 && rate <= 12.0 => rate,
                _ => {
                    return Err(ConfigError::Invalid {
                        var: ENV_RDS_REQUEST_BUDGET,
                        value,
                        reason: "requests per second, more than 0 and at most RDS's 12".to_owned(),
                    });
                }
            },
        };
        let drills_per_night = match lookup(ENV_DRILLS_PER_NIGHT) {
            None => defaults.drills_per_night,
            Some(value) => match value.parse::<u32>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        var: ENV_DRILLS_PER_NIGHT,
                        value,
                        reason: "a whole number of drills from 1 to 1000".to_owned(),
                    });
                }
            },
        };
        Ok(Self {
            fleet: FleetSettings {
                rds_request_budget,
                drills_per_night,
            },
            table_name,
            bucket_name,
            region,
            endpoint_url,
            local_credentials,
            lock_backend,
            sdk: SdkSettings::default(),
            kms_key_id,
            audit: AuditSettings {
                lock_mode,
                retention_days,
            },
        })
    }

    /// A configuration for the local world: everything pointed at `endpoint` with dummy credentials.
    pub fn local(
        endpoint: impl Into<String>,
        table_name: impl Into<String>,
        bucket_name: impl Into<String>,
    ) -> Self {
        Self {
            table_name: table_name.into(),
            bucket_name: bucket_name.into(),
            region: "us-east-1".to_owned(),
            endpoint_url: Some(endpoint.into()),
            local_credentials: true,
            lock_backend: LockBackend::default(),
            sdk: SdkSettings::default(),
            kms_key_id: None,
            audit: AuditSettings::default(),
            fleet: FleetSettings::default(),
        }
    }

    /// The same configuration with these SDK retry and timeout settings.
    pub fn with_sdk(mut self, sdk: SdkSettings) -> Self {
        self.sdk = sdk;
        self
    }

    /// S3 must be addressed path-style whenever an endpoint override is in force: moto on a loopback port
    /// has no wildcard DNS for virtual-hosted bucket names.
    pub fn s3_path_style(&self) -> bool {
        self.endpoint_url.is_some()
    }
}

/// Checks a DynamoDB table name: 3 to 255 characters of `a-z A-Z 0-9 _ - .`.
pub fn validate_table_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !(3..=255).contains(&name.len()) || !ok_chars {
        return Err(
            "a table name has 3 to 255 characters of letters, digits, '_', '-' and '.'".to_owned(),
        );
    }
    Ok(())
}

/// Checks an S3 bucket name: 3 to 63 characters of lowercase letters, digits, '-' and '.', starting and ending
/// with a letter or digit.
pub fn validate_bucket_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'));
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !(3..=63).contains(&name.len())
        || !ok_chars
        || !ends_ok(name.chars().next())
        || !ends_ok(name.chars().last())
    {
        return Err(
            "a bucket name has 3 to 63 characters of lowercase letters, digits, '-' and '.', \
             and starts and ends with a letter or digit"
                .to_owned(),
        );
    }
    Ok(())
}

fn validate_endpoint(url: &str) -> Result<(), String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(
            "an endpoint is a URL starting with http:// or https://, e.g. http://127.0.0.1:5000"
                .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_every_field_and_defaults_the_table() {
        let cfg = Config::from_lookup(lookup(&[
            ("OPSPLANE_BUCKET", "acme-ops"),
            ("AWS_REGION", "eu-west-1"),
        ]))
        .unwrap();
        assert_eq!(cfg.table_name, "opsplane");
        assert_eq!(cfg.bucket_name, "acme-ops");
        assert_eq!(cfg.region, "eu-west-1");
        assert_eq!(cfg.endpoint_url, None);
        assert!(!cfg.s3_path_style());
        assert!(!cfg.local_credentials);
    }

    #[test]
    fn endpoint_override_turns_on_path_style_and_local_credentials() {
        let cfg = Config::from_lookup(lookup(&[
            ("OPSPLANE_BUCKET", "b-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ]))
        .unwrap();
        assert_eq!(cfg.region, "us-east-1");
        assert!(cfg.s3_path_style());
        assert!(cfg.local_credentials);
        let with_keys = Config::from_lookup(lookup(&[
            ("OPSPLANE_BUCKET", "b-1"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ACCESS_KEY_ID", "AKIA"),
        ]))
        .unwrap();
        assert!(!with_keys.local_credentials);
    }

    #[test]
    fn missing_bucket_names_the_variable_and_the_fix() {
        let err = Config::from_lookup(lookup(&[("AWS_REGION", "us-east-1")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Missing {
                var: "OPSPLANE_BUCKET",
                ..
            }
        ));
        assert!(err.to_string().contains("opsplane bootstrap"));
    }

    #[test]
    fn missing_region_is_an_error() {
        let err = Config::from_lookup(lookup(&[("OPSPLANE_BUCKET", "b-1")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Missing {
                var: "AWS_REGION",
                ..
            }
        ));
    }

    #[test]
    fn malformed_values_are_rejected_with_the_rule() {
        let err = Config::from_lookup(lookup(&[
            ("OPSPLANE_BUCKET", "Bad_Bucket"),
            ("AWS_REGION", "us-east-1"),
        ]))
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "OPSPLANE_BUCKET",
                ..
            }
        ));
        let err = Config::from_lookup(lookup(&[
            ("OPSPLANE_BUCKET", "ok-bucket"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "localhost:5000"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("http://"));
        let err = Config::from_lookup(lookup(&[
            ("OPSPLANE_TABLE", "a b"),
            ("OPSPLANE_BUCKET", "ok-bucket"),
            ("AWS_REGION", "us-east-1"),
        ]))
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "OPSPLANE_TABLE",
                ..
            }
        ));
    }

    #[test]
    fn lock_backend_defaults_to_dynamodb_and_accepts_s3() {
        let base = [("OPSPLANE_BUCKET", "b-1"), ("AWS_REGION", "us-east-1")];
        let cfg = Config::from_lookup(lookup(&base)).unwrap();
        assert_eq!(cfg.lock_backend, LockBackend::DynamoDb);
        let mut with = base.to_vec();
        with.push(("OPSPLANE_LOCK_BACKEND", "S3"));
        assert_eq!(
            Config::from_lookup(lookup(&with)).unwrap().lock_backend,
            LockBackend::S3
        );
        with.pop();
        with.push(("OPSPLANE_LOCK_BACKEND", "dynamodb"));
        assert_eq!(
            Config::from_lookup(lookup(&with)).unwrap().lock_backend,
            LockBackend::DynamoDb
        );
        with.pop();
        with.push(("OPSPLANE_LOCK_BACKEND", "redis"));
        let err = Config::from_lookup(lookup(&with)).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "OPSPLANE_LOCK_BACKEND",
                ..
            }
        ));
        assert!(err.to_string().contains("`dynamodb`"), "{err}");
    }

    #[test]
    fn kms_key_and_audit_settings_are_read_and_checked() {
        let key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let base = [("OPSPLANE_BUCKET", "b-1"), ("AWS_REGION", "eu-west-1")];
        let cfg = Config::from_lookup(lookup(&base)).unwrap();
        assert_eq!(cfg.kms_key_id, None);
        assert_eq!(cfg.audit, AuditSettings::default());
        assert_eq!(cfg.audit.lock_mode.as_s3(), "GOVERNANCE");
        let mut with = base.to_vec();
        with.extend([
            ("OPSPLANE_KMS_KEY_ID", key),
            ("OPSPLANE_AUDIT_LOCK_MODE", "Compliance"),
            ("OPSPLANE_AUDIT_RETENTION_DAYS", "2190"),
        ]);
        let cfg = Config::from_lookup(lookup(&with)).unwrap();
        assert_eq!(cfg.kms_key_id.as_deref(), Some(key));
        assert_eq!(cfg.audit.lock_mode, AuditLockMode::Compliance);
        assert_eq!(cfg.audit.retention_days, 2190);
        for (var, bad) in [
            ("OPSPLANE_KMS_KEY_ID", "alias/opsplane"),
            ("OPSPLANE_KMS_KEY_ID", "1234abcd-12ab"),
            ("OPSPLANE_AUDIT_LOCK_MODE", "legal-hold"),
            ("OPSPLANE_AUDIT_RETENTION_DAYS", "0"),
            ("OPSPLANE_AUDIT_RETENTION_DAYS", "forever"),
        ] {
            let mut with = base.to_vec();
            with.push((var, bad));
            let err = Config::from_lookup(lookup(&with)).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { var: v, .. } if v == var),
                "{err}"
            );
        }
    }

    #[test]
    fn bucket_name_rules() {
        assert!(validate_bucket_name("abc").is_ok());
        assert!(validate_bucket_name("my.bucket-1").is_ok());
        assert!(validate_bucket_name("ab").is_err());
        assert!(validate_bucket_name("-abc").is_err());
        assert!(validate_bucket_name("abc-").is_err());
        assert!(validate_bucket_name(&"a".repeat(64)).is_err());
    }
}
