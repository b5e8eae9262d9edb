//! The SQL probe of drills and health checks: `SELECT 1` and an optional canary query against a PostgreSQL
//! instance, logged in with credentials resolved by reference ([`crate::secrets`]) just before connecting.
//!
//! TLS goes through rustls (the stack the SDK's HTTPS client already builds) with the RDS CA bundle when
//! [`ENV_CA_BUNDLE`] names it, else the platform's roots. RDS server certificates chain to RDS's own CAs,
//! which no platform store holds, so production sets the bundle (AWS publishes it as
//! `global-bundle.pem`; ship it with the function). Logins by secret prefer TLS and fall back to plain
//! TCP only when the server offers none (the password is sent as a SCRAM proof, not in clear); IAM logins
//! require it. Channel binding is not offered: SCRAM runs without `-PLUS`.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tracing::Instrument as _;

use crate::future::BoxFuture;
use crate::secrets::{DbLogin, TlsMode};

pub mod redis;

/// Environment variable that maps every probed endpoint to `host:port` (local runs, where moto's endpoints
/// do not exist). Production never sets it.
pub const ENV_ENDPOINT_OVERRIDE: &str = "OPSPLANE_PROBE_ENDPOINT_OVERRIDE";
/// Environment variable naming a PEM file of CA certificates to verify the server with (the RDS bundle).
pub const ENV_CA_BUNDLE: &str = "OPSPLANE_PROBE_CA_BUNDLE";

/// The probe's configuration beyond the spec. Holds no credential: those are resolved per probe.
#[derive(Debug, Clone, Default)]
pub struct ProbeSettings {
    /// `host:port` to connect to instead of the probed instance's endpoint.
    pub endpoint_override: Option<(String, u16)>,
    /// `host:port` to connect to instead of a probed replication group's endpoint.
    pub redis_endpoint_override: Option<(String, u16)>,
    /// CA certificates (PEM) to verify the server's certificate with; `None`: the platform's roots.
    pub ca_bundle: Option<PathBuf>,
    /// The probe's network where a world models one (the local world); `None` on AWS, where the VPC itself
    /// decides whether a connection gets through.
    pub network: Option<Arc<dyn Reachability>>,
}

/// Whether the probe's network reaches a DB instance: its subnets' VPC and security groups against the
/// instance's. Only a modelled world needs it; on AWS an unreachable instance is a connection that times out.
pub trait Reachability: Send + Sync + std::fmt::Debug {
    /// `Ok` when a connection from the probe to `instance` would get through; `Err` says why not.
    fn reaches<'a>(&'a self, instance: &'a str) -> BoxFuture<'a, Result<(), String>>;

    /// The same for the replication group `group`: its cache subnet group's VPC and its security groups.
    fn reaches_cache<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

/// `Err` (the probe's failure, worded as the connection that times out on AWS) when `settings` model a
/// network that does not reach `instance`.
pub async fn check_reach(settings: &ProbeSettings, instance: &str) -> Result<(), String> {
    match &settings.network {
        Some(network) => network
            .reaches(instance)
            .await
            .map_err(|why| format!("could not connect to {instance}: timed out ({why})")),
        None => Ok(()),
    }
}

/// Where the Redis probe connects for the replication group `group` whose endpoint is `endpoint`: the
/// override of local runs when set, else the endpoint; `Err` (why not) when the modelled network does not
/// reach the group or it has no endpoint. The drill's probe and the health check's PING both ask here.
pub async fn cache_target(
    settings: &ProbeSettings,
    group: &str,
    endpoint: Option<(String, u16)>,
) -> Result<(String, u16), String> {
    if let Some(network) = &settings.network {
        network
            .reaches_cache(group)
            .await
            .map_err(|why| format!("could not connect to {group}: timed out ({why})"))?;
    }
    settings
        .redis_endpoint_override
        .clone()
        .or(endpoint)
        .ok_or_else(|| format!("{group} has no endpoint to connect to"))
}

impl ProbeSettings {
    /// The settings from the process environment (an empty variable counts as unset): what a function's
    /// `main` reads.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Reads the settings through `lookup` (the process environment in `main`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let endpoint = |name: &str, example: &str| match lookup(name) {
            None => Ok(None),
            Some(v) => parse_host_port(&v).map(Some).ok_or_else(|| {
                format!("{name}=\"{v}\" is not host:port (e.g. 127.0.0.1:{example})")
            }),
        };
        Ok(Self {
            endpoint_override: endpoint(ENV_ENDPOINT_OVERRIDE, "5432")?,
            redis_endpoint_override: endpoint(redis::ENV_REDIS_ENDPOINT_OVERRIDE, "6379")?,
            ca_bundle: lookup(ENV_CA_BUNDLE).map(PathBuf::from),
            network: None,
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
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database.
    pub database: String,
    /// Who logs in, with what (redacted in `Debug`), and whether TLS is required.
    pub login: DbLogin,
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

/// Probes `host:port` as the probe spec says: resolves its credentials from their reference (inside the
/// caller, never returned), logs in, runs `SELECT 1` and the canary query. `Ok` carries the answer and a
/// one-line detail naming what answered; `Err` says why not, redacted, since it goes into reports and
/// execution outputs.
pub async fn probe_by_reference(
    credentials: &crate::secrets::Credentials,
    probe: &dyn SqlProbe,
    spec: &crate::domain::spec::ProbeSpec,
    (host, port): (String, u16),
    canary_query: Option<String>,
) -> Result<(ProbeAnswer, String), String> {
    let login = credentials
        .resolve(&spec.credentials(), &spec.user, &host, port)
        .await
        .map_err(|e| crate::error::redacted_chain(&e))?;
    let target = ProbeTarget {
        host,
        port,
        database: spec.database.clone(),
        login,
        canary_query,
    };
    match probe.probe(&target).await {
        Ok(answer) => {
            let detail = format!(
                "SELECT 1 = {} on {}:{}/{} as {}",
                answer.select_one, target.host, target.port, target.database, target.login.user
            );
            Ok((answer, detail))
        }
        Err(e) => Err(crate::error::redacted_chain(&e)),
    }
}

/// The probe failed.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// No connection could be made (refused, TLS required but not offered, authentication failed).
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
    /// The TLS configuration could not be built (unreadable CA bundle, no usable roots).
    #[error("TLS set-up for the probe failed: {0}")]
    Tls(String),
    /// A query failed.
    #[error("query `{query}` failed")]
    Query {
        /// The query.
        query: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A query answered something else than expected.
    #[error("query `{query}` answered {answer}")]
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

/// [`SqlProbe`] over tokio-postgres, with TLS through rustls.
#[derive(Debug, Clone)]
pub struct PostgresProbe {
    /// Limit on the whole probe (connect and queries).
    pub timeout: Duration,
    /// CA certificates (PEM) to verify servers with; `None`: the platform's roots.
    pub ca_bundle: Option<PathBuf>,
}

impl Default for PostgresProbe {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(20),
            ca_bundle: None,
        }
    }
}

impl PostgresProbe {
    /// The probe verifying servers with the CAs of `settings` (see [`ProbeSettings::ca_bundle`]).
    pub fn with_settings(settings: &ProbeSettings) -> Self {
        Self {
            ca_bundle: settings.ca_bundle.clone(),
            ..Self::default()
        }
    }

    async fn run(&self, target: &ProbeTarget) -> Result<ProbeAnswer, ProbeError> {
        let tls = RustlsConnector::new(self.ca_bundle.as_deref())?;
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&target.host)
            .port(target.port)
            .dbname(&target.database)
            .user(&target.login.user)
            .password(target.login.password.expose())
            .ssl_mode(match target.login.tls {
                TlsMode::Prefer => SslMode::Prefer,
                TlsMode::Require => SslMode::Require,
            })
            .application_name("opsplane-probe")
            .connect_timeout(self.timeout);
        let (client, connection) =
            cfg.connect(tls)
                .await
                .map_err(|source| ProbeError::Connect {
                    host: target.host.clone(),
                    port: target.port,
                    database: target.database.clone(),
                    user: target.login.user.clone(),
                    source,
                })?;
        // The connection task logs inside the caller's span, so its lines go where the caller's go.
        let conn = tokio::spawn(
            async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "probe connection ended with an error");
                }
            }
            .in_current_span(),
        );
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
            tokio::time::timeout(self.timeout, self.run(target))
                .await
                .map_err(|_| ProbeError::Timeout(self.timeout))?
        })
    }
}

/// tokio-postgres' TLS hook over rustls: verifies the server's certificate and name against the CA bundle
/// or the platform's roots.
#[derive(Clone)]
pub struct RustlsConnector {
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for RustlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustlsConnector").finish_non_exhaustive()
    }
}

impl RustlsConnector {
    /// A connector trusting the certificates of `ca_bundle` (PEM), or the platform's roots when `None`.
    pub fn new(ca_bundle: Option<&std::path::Path>) -> Result<Self, ProbeError> {
        let mut roots = rustls::RootCertStore::empty();
        match ca_bundle {
            Some(path) => {
                let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                    .map_err(|e| ProbeError::Tls(format!("reading {}: {e}", path.display())))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| ProbeError::Tls(format!("parsing {}: {e}", path.display())))?;
                let (added, _ignored) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(ProbeError::Tls(format!(
                        "{} holds no usable CA certificate",
                        path.display()
                    )));
                }
            }
            None => {
                // Unreadable entries of the platform store are skipped, as every TLS client does.
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ProbeError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// The rustls configuration, for a connection that is not PostgreSQL's (the Redis probe's).
    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }
}

impl<S> MakeTlsConnect<S> for RustlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, Self::Error> {
        Ok(RustlsConnect {
            name: ServerName::try_from(domain.to_owned())?,
            connector: tokio_rustls::TlsConnector::from(self.config.clone()),
        })
    }
}

/// One TLS handshake towards a named server.
pub struct RustlsConnect {
    name: ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = std::io::Error;
    type Future = BoxFuture<'static, std::io::Result<RustlsStream<S>>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            self.connector
                .connect(self.name, stream)
                .await
                .map(RustlsStream)
        })
    }
}

/// A TLS-wrapped connection to the server.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> tokio_postgres::tls::TlsStream for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    fn login(tls: TlsMode) -> DbLogin {
        DbLogin {
            user: "probe".into(),
            password: Secret::new("probe-unit-pw-1"),
            tls,
        }
    }

    #[test]
    fn settings_parse_the_override_and_the_bundle() {
        let s = ProbeSettings::from_lookup(|k| match k {
            ENV_ENDPOINT_OVERRIDE => Some("127.0.0.1:5433".into()),
            redis::ENV_REDIS_ENDPOINT_OVERRIDE => Some("127.0.0.1:6380".into()),
            ENV_CA_BUNDLE => Some("/opt/rds/global-bundle.pem".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.endpoint_override, Some(("127.0.0.1".into(), 5433)));
        assert_eq!(s.redis_endpoint_override, Some(("127.0.0.1".into(), 6380)));
        assert_eq!(
            s.ca_bundle.as_deref(),
            Some(std::path::Path::new("/opt/rds/global-bundle.pem"))
        );
        let err =
            ProbeSettings::from_lookup(|k| (k == ENV_ENDPOINT_OVERRIDE).then(|| "nope".into()))
                .unwrap_err();
        assert!(err.contains(ENV_ENDPOINT_OVERRIDE));
        let unset = ProbeSettings::from_lookup(|_| None).unwrap();
        assert_eq!(unset.endpoint_override, None);
        assert_eq!(unset.redis_endpoint_override, None);
        assert_eq!(unset.ca_bundle, None);
        assert!(unset.network.is_none(), "production never models a network");
    }

    #[test]
    fn a_target_never_prints_its_password() {
        let t = ProbeTarget {
            host: "h".into(),
            port: 1,
            database: "d".into(),
            login: login(TlsMode::Prefer),
            canary_query: None,
        };
        assert!(!format!("{t:?}").contains("probe-unit-pw-1"));
    }

    #[test]
    fn a_bundle_without_certificates_is_refused() {
        let path = std::env::temp_dir().join(format!("opsplane-empty-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = RustlsConnector::new(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("no usable CA"), "{err}");
        std::fs::remove_file(&path).unwrap();
        assert!(RustlsConnector::new(Some(std::path::Path::new("/nonexistent.pem"))).is_err());
        assert!(RustlsConnector::new(None).is_ok());
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
            login: login(TlsMode::Require),
            canary_query: None,
        };
        let err = PostgresProbe::default().probe(&target).await.unwrap_err();
        assert!(matches!(err, ProbeError::Connect { .. }), "{err}");
        assert!(err.to_string().contains(&port.to_string()));
    }
}
