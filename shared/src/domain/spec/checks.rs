//! The health checks a spec adds to the RDS and EKS checks every environment gets: a SQL probe and HTTP checks.

use serde::{Deserialize, Serialize};

use super::probe::ProbeSpec;

/// The health checks of an environment (RDS and EKS are always checked; these add to them).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    /// HTTP endpoints that must answer as expected.
    #[serde(default)]
    pub http: Vec<HttpCheck>,
    /// The newest completed backup may be at most this old (default: the drill's RPO target, if any).
    #[serde(default)]
    pub backup_max_age_minutes: Option<u32>,
    /// A SQL probe of one of the environment's live instances (credentials by reference only).
    #[serde(default)]
    pub sql: Option<SqlHealthCheck>,
    /// `PING` each Redis replication group (with its AUTH token, over TLS when it has in-transit
    /// encryption): on when the health check runs where the groups' security groups admit it.
    #[serde(default)]
    pub redis_ping: bool,
}

/// The health check's SQL probe: `SELECT 1` on one of the environment's RDS instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlHealthCheck {
    /// The RDS instance (one of the spec's `rds[].identifier`).
    pub instance: String,
    /// Database, user and the credentials' reference (a Secrets Manager secret or IAM authentication).
    pub probe: ProbeSpec,
}

/// One HTTP health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// The URL (`http://` or `https://`).
    pub url: String,
    /// The status the endpoint must answer with.
    #[serde(default = "default_expect_status")]
    pub expect_status: u16,
    /// The latency budget: a slower answer (or none) fails the check.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// A string the body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
}

fn default_expect_status() -> u16 {
    200
}

fn default_timeout_ms() -> u64 {
    2000
}
