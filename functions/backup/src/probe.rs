//! The drill's SQL probe: `SELECT 1` and an optional canary query against the restored instance.
//!
//! The connection is plain TCP (`NoTls`). RDS for PostgreSQL accepts that unless the parameter group sets
//! `rds.force_ssl=1` (the default from PostgreSQL 15 on): production drills against such instances need a TLS
//! connector (tokio-postgres-rustls with the RDS CA bundle), which this probe does not have yet.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use thiserror::Error;

use crate::history::BoxFuture;

/// Environment variable that maps every restored instance's endpoint to `host:port` (local runs, where
/// moto's endpoints do not exist). Production never sets it.
pub const ENV_ENDPOINT_OVERRIDE: &str = "OPSPLANE_PROBE_ENDPOINT_OVERRIDE";
/// Environment variable holding the probe user's password (from Secrets Manager in production).
pub const ENV_PASSWORD: &str = "OPSPLANE_PROBE_PASSWORD";

/// The probe's configuration beyond the spec.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProbeSettings {
    /// `host:port` to connect to instead of the restored instance's endpoint.
    pub endpoint_override: Option<(String, u16)>,
    /// The probe user's password.
    pub password: Option<String>,
}

impl std::fmt::Debug for ProbeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeSettings")
            .field("endpoint_override", &self.endpoint_override)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ProbeSettings {
    /// Reads the settings through `lookup` (the process environment in `main`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let endpoint_override = match lookup(ENV_ENDPOINT_OVERRIDE) {
            None => None,
            Some(v) => Some(parse_host_port(&v).ok_or_else(|| {
                format!("{ENV_ENDPOINT_OVERRIDE}={v:?} is not host:port (e.g. 127.0.0.1:5432)")
            })?),
        };
        Ok(Self {
            endpoint_override,
            password: lookup(ENV_PASSWORD),
        })
    }
}

/// Parses `host:port`.
pub fn parse_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    if host.is_empty() {
        return None;
    }
    Some((host.to_owned(), port.parse().ok()?))
}

/// Where and how to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database.
    pub database: String,
    /// User.
    pub user: String,
    /// Password, if any.
    pub password: Option<String>,
    /// The canary query (one row, one timestamp column).
    pub canary_query: Option<String>,
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    /// The answer to `SELECT 1`.
    pub select_one: i32,
    /// The canary's newest timestamp, when a canary query ran and returned one.
    pub canary_newest: Option<DateTime<Utc>>,
}

/// The probe failed.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// No connection could be made.
    #[error("connecting to {host}:{port}/{database} as {user} failed")]
    Connect {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Database.
        database: String,
        /// User.
        user: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A query failed.
    #[error("query {query:?} failed")]
    Query {
        /// The query.
        query: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A query answered something else than expected.
    #[error("query {query:?} answered {answer}")]
    Unexpected {
        /// The query.
        query: String,
        /// What it answered.
        answer: String,
    },
    /// The probe did not finish in time.
    #[error("the probe did not finish within {0:?}")]
    Timeout(Duration),
}

/// Runs the SQL probe.
pub trait SqlProbe: Send + Sync {
    /// Connects to `target`, runs `SELECT 1` and the canary query.
    fn probe<'a>(
        &'a self,
        target: &'a ProbeTarget,
    ) -> BoxFuture<'a, Result<ProbeAnswer, ProbeError>>;
}

/// [`SqlProbe`] over tokio-postgres.
#[derive(Debug, Clone)]
pub struct PostgresProbe {
    /// Limit on the whole probe (connect and queries).
    pub timeout: Duration,
}

impl Default for PostgresProbe {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(20),
        }
    }
}

impl PostgresProbe {
    async fn run(target: &ProbeTarget, timeout: Duration) -> Result<ProbeAnswer, ProbeError> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&target.host)
            .port(target.port)
            .dbname(&target.database)
            .user(&target.user)
            .application_name("opsplane-drill-probe")
            .connect_timeout(timeout);
        if let Some(pw) = &target.password {
            cfg.password(pw);
        }
        let (client, connection) =
            cfg.connect(tokio_postgres::NoTls)
                .await
                .map_err(|source| ProbeError::Connect {
                    host: target.host.clone(),
                    port: target.port,
                    database: target.database.clone(),
                    user: target.user.clone(),
                    source,
                })?;
        let conn = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "probe connection ended with an error");
            }
        });
        let result = async {
            let q = "SELECT 1";
            let row = client
                .query_one(q, &[])
                .await
                .map_err(|source| ProbeError::Query {
                    query: q.into(),
                    source,
                })?;
            let select_one: i32 = row.try_get(0).map_err(|source| ProbeError::Query {
                query: q.into(),
                source,
            })?;
            if select_one != 1 {
                return Err(ProbeError::Unexpected {
                    query: q.into(),
                    answer: select_one.to_string(),
                });
            }
            let canary_newest = match &target.canary_query {
                None => None,
                Some(q) => {
                    let row = client.query_one(q.as_str(), &[]).await.map_err(|source| {
                        ProbeError::Query {
                            query: q.clone(),
                            source,
                        }
                    })?;
                    // timestamptz or timestamp (read as UTC); NULL means an empty canary table.
                    match row.try_get::<_, Option<DateTime<Utc>>>(0) {
                        Ok(v) => v,
                        Err(_) => row
                            .try_get::<_, Option<NaiveDateTime>>(0)
                            .map_err(|source| ProbeError::Query {
                                query: q.clone(),
                                source,
                            })?
                            .map(|n| n.and_utc()),
                    }
                }
            };
            Ok(ProbeAnswer {
                select_one,
                canary_newest,
            })
        }
        .await;
        drop(client);
        conn.abort();
        result
    }
}

impl SqlProbe for PostgresProbe {
    fn probe<'a>(
        &'a self,
        target: &'a ProbeTarget,
    ) -> BoxFuture<'a, Result<ProbeAnswer, ProbeError>> {
        Box::pin(async move {
            tokio::time::timeout(self.timeout, Self::run(target, self.timeout))
                .await
                .map_err(|_| ProbeError::Timeout(self.timeout))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_the_override_and_redact_the_password() {
        let s = ProbeSettings::from_lookup(|k| match k {
            ENV_ENDPOINT_OVERRIDE => Some("127.0.0.1:5433".into()),
            ENV_PASSWORD => Some("hunter2".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.endpoint_override, Some(("127.0.0.1".into(), 5433)));
        assert!(!format!("{s:?}").contains("hunter2"));
        let err =
            ProbeSettings::from_lookup(|k| (k == ENV_ENDPOINT_OVERRIDE).then(|| "nope".into()))
                .unwrap_err();
        assert!(err.contains(ENV_ENDPOINT_OVERRIDE));
        assert_eq!(
            ProbeSettings::from_lookup(|_| None).unwrap(),
            ProbeSettings::default()
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let target = ProbeTarget {
            host: "127.0.0.1".into(),
            port,
            database: "app".into(),
            user: "probe".into(),
            password: None,
            canary_query: None,
        };
        let err = PostgresProbe::default().probe(&target).await.unwrap_err();
        assert!(matches!(err, ProbeError::Connect { .. }), "{err}");
        assert!(err.to_string().contains(&port.to_string()));
    }
}
