//! The health-check Lambda: is an environment healthy, as its spec defines it?
//!
//! `check` gathers what RDS, EKS and ElastiCache describe, what each HTTP check answers (status, latency
//! against its budget, an optional body match), the SQL probe and each Redis group's `PING` when the spec
//! asks for them, and when the newest completed backup was taken, and judges them with
//! `domain::health::assess`: `healthy`, `degraded` or `unhealthy`, with every reason. A deployment's check
//! (`fail_on_unhealthy`) fails with `HealthCheckFailed` on `unhealthy`, which sends the deployment into its
//! revert; the sweep's check records the verdict (`HEALTH#<ts>#<id>`) and never fails because an
//! environment is unhealthy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opsplane_shared::aws::Clients;
use opsplane_shared::aws::eks::Eks;
use opsplane_shared::aws::elasticache::Caches;
use opsplane_shared::aws::objects::ObjectStore;
use opsplane_shared::aws::observe::observe;
use opsplane_shared::aws::rds::Rds;
use opsplane_shared::aws::specs::{SpecStore, SpecStoreError};
use opsplane_shared::boundary::{parse_action, to_value};
use opsplane_shared::clock::{Clock, SystemClock};
use opsplane_shared::domain::health::{
    HealthReport, HttpObservation, Observations, Verdict, assess,
};
use opsplane_shared::domain::spec::{
    HttpCheck, RedisSpec, SqlHealthCheck, validate_environment_name,
};
use opsplane_shared::error::redacted_chain;
use opsplane_shared::ports::{BoxFuture, HttpProber};
use opsplane_shared::probe::redis::{CacheProbe, RespProbe};
use opsplane_shared::probe::{PostgresProbe, ProbeSettings, SqlProbe, probe_by_reference};
use opsplane_shared::secrets::Credentials;
use opsplane_shared::state::{BackupRecord, BackupStatus, HealthRecord, StateStore};
use opsplane_shared::sweep::{SweepInput, sweep_environments};
use opsplane_shared::{Config, OpsError};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The function's name, as registered on the local engine and deployed.
pub const FUNCTION_NAME: &str = "health-check";
/// How many backup records are read to find the newest completed one.
const BACKUPS_SCANNED: u32 = 20;

/// [`HttpProber`] over reqwest (rustls), redirects not followed: a health endpoint answers itself.
#[derive(Debug, Clone)]
pub struct ReqwestProber {
    client: reqwest::Client,
}

impl Default for ReqwestProber {
    fn default() -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("opsplane-health-check")
                .build()
                .unwrap_or_default(),
        }
    }
}

impl HttpProber for ReqwestProber {
    fn probe<'a>(&'a self, check: &'a HttpCheck) -> BoxFuture<'a, HttpObservation> {
        Box::pin(async move {
            let budget = Duration::from_millis(check.timeout_ms);
            let started = Instant::now();
            let result = tokio::time::timeout(budget, async {
                let resp = self.client.get(&check.url).send().await?;
                let status = resp.status().as_u16();
                let body = match &check.body_contains {
                    Some(_) => Some(resp.text().await?),
                    None => None,
                };
                Ok::<_, reqwest::Error>((status, body))
            })
            .await;
            let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let (status, body_matched, error) = match result {
                Err(_) => (
                    None,
                    None,
                    Some(format!("timed out after {} ms", check.timeout_ms)),
                ),
                Ok(Err(e)) => (None, None, Some(e.to_string())),
                Ok(Ok((status, body))) => {
                    let matched = match (&check.body_contains, body) {
                        (Some(want), Some(body)) => Some(body.contains(want.as_str())),
                        _ => None,
                    };
                    (Some(status), matched, None)
                }
            };
            tracing::info!(url = check.url, ?status, latency_ms, ?error, "http check");
            HttpObservation {
                url: check.url.clone(),
                status,
                latency_ms,
                body_matched,
                error,
            }
        })
    }
}

/// What the handler needs.
#[derive(Clone)]
pub struct Deps {
    /// RDS.
    pub rds: Rds,
    /// EKS.
    pub eks: Eks,
    /// ElastiCache: the Redis replication groups.
    pub caches: Caches,
    /// The specs.
    pub specs: SpecStore,
    /// The state bucket, where the fleet report goes.
    pub objects: ObjectStore,
    /// Backup records and health records.
    pub state: StateStore,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The HTTP checks.
    pub http: Arc<dyn HttpProber>,
    /// Resolves the SQL probe's credentials from their reference, inside this function only.
    pub credentials: Credentials,
    /// The SQL probe.
    pub probe: Arc<dyn SqlProbe>,
    /// The Redis probe (`health.redis_ping`).
    pub cache_probe: Arc<dyn CacheProbe>,
    /// The SQL probe's endpoint override (local runs) and CA bundle.
    pub probe_settings: ProbeSettings,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

impl Deps {
    /// The production wiring over `clients`: the wall clock, reqwest.
    pub fn new(config: Config, clients: &Clients) -> Self {
        Self {
            rds: Rds::new(clients.rds.clone()),
            eks: Eks::new(clients.eks.clone()),
            caches: Caches::new(clients.elasticache.clone()),
            specs: SpecStore::new(clients.s3.clone(), config.bucket_name.clone()),
            objects: ObjectStore::new(clients.s3.clone(), config.bucket_name.clone()),
            state: StateStore::from_config(&config, clients),
            clock: Arc::new(SystemClock),
            http: Arc::new(ReqwestProber::default()),
            credentials: Credentials::from_clients(clients),
            probe: Arc::new(PostgresProbe::with_settings(&ProbeSettings::default())),
            cache_probe: Arc::new(RespProbe::default()),
            probe_settings: ProbeSettings::default(),
        }
    }

    /// The same deps with these probe settings (endpoint overrides, CA bundle).
    pub fn with_probe_settings(mut self, settings: ProbeSettings) -> Self {
        self.probe = Arc::new(PostgresProbe::with_settings(&settings));
        self.cache_probe = Arc::new(RespProbe::with_settings(&settings));
        self.probe_settings = settings;
        self
    }
}

/// Runs the spec's SQL probe: `Ok` with what answered, `Err` with why not (redacted). The credentials are
/// resolved here and dropped with this scope: never in an output, a record or a log.
async fn sql_probe(deps: &Deps, sql: &SqlHealthCheck) -> Result<String, String> {
    opsplane_shared::probe::check_reach(&deps.probe_settings, &sql.instance).await?;
    let endpoint = match &deps.probe_settings.endpoint_override {
        Some(target) => target.clone(),
        None => deps
            .rds
            .instance(&sql.instance)
            .await
            .map_err(|e| redacted_chain(&e))?
            .and_then(|i| i.endpoint)
            .ok_or_else(|| format!("{} has no endpoint", sql.instance))?,
    };
    probe_by_reference(
        &deps.credentials,
        deps.probe.as_ref(),
        &sql.probe,
        endpoint,
        None,
    )
    .await
    .map(|(_, detail)| detail)
}

/// `PING`s one replication group at `endpoint` (or the override of local runs) with its AUTH token, over
/// TLS when it has in-transit encryption: `Ok` with what answered, `Err` with why not (redacted).
async fn ping(
    deps: &Deps,
    group: &RedisSpec,
    endpoint: Option<(String, u16)>,
) -> Result<String, String> {
    let endpoint = opsplane_shared::probe::cache_target(
        &deps.probe_settings,
        &group.replication_group_id,
        endpoint,
    )
    .await?;
    opsplane_shared::probe::redis::probe_by_reference(
        deps.credentials.secrets.as_ref(),
        deps.cache_probe.as_ref(),
        group.auth_token_secret.as_deref(),
        endpoint,
        group.transit_encryption == Some(true),
        None,
    )
    .await
    .map(|(_, detail)| detail)
}

/// `check`: which environment, at which spec version, and what to do with the verdict.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckInput {
    /// The environment.
    pub environment: String,
    /// The spec version to judge against (the latest when absent).
    #[serde(default)]
    pub spec_version: Option<String>,
    /// Fail with `HealthCheckFailed` when the verdict is `unhealthy` (a deployment's check).
    #[serde(default)]
    pub fail_on_unhealthy: bool,
    /// Record the verdict (`HEALTH#<ts>#<id>`).
    #[serde(default)]
    pub record: bool,
    /// `$$.Execution.Id`, for the record.
    #[serde(default)]
    pub execution: Option<String>,
}

/// Assesses one environment.
pub async fn check(deps: &Deps, input: CheckInput) -> Result<HealthReport, OpsError> {
    validate_environment_name(&input.environment)
        .map_err(|r| OpsError::invalid("environment", r))?;
    let stored = match deps
        .specs
        .get(&input.environment, input.spec_version.as_deref())
        .await
    {
        Ok(s) => s,
        Err(err @ SpecStoreError::Missing { .. }) if input.spec_version.is_some() => {
            return Err(OpsError::invalid("spec_version", err.to_string()));
        }
        Err(err) => return Err(err.into()),
    };
    let spec = &stored.spec;
    let actual = observe((&deps.rds, &deps.eks, &deps.caches), spec).await?;
    let mut http = Vec::with_capacity(spec.health.http.len());
    for c in &spec.health.http {
        http.push(deps.http.probe(c).await);
    }
    let backups: Vec<BackupRecord> = deps
        .state
        .latest(&input.environment, BACKUPS_SCANNED)
        .await?;
    let newest_backup = backups
        .iter()
        .filter(|b| b.status == BackupStatus::Completed)
        .map(|b| b.created_at)
        .max();
    let sql = match &spec.health.sql {
        Some(sql) => Some(sql_probe(deps, sql).await),
        None => None,
    };
    let mut redis_ping = Vec::new();
    if spec.health.redis_ping {
        for group in &spec.redis {
            let found = actual.replication_group(&group.replication_group_id);
            let answer = ping(deps, group, found.and_then(|g| g.endpoint.clone())).await;
            redis_ping.push((group.replication_group_id.clone(), answer));
        }
    }
    let report = assess(
        spec,
        &Observations {
            actual: &actual,
            http: &http,
            newest_backup,
            sql,
            redis_ping: &redis_ping,
            now: deps.clock.now(),
        },
    );
    tracing::info!(
        environment = input.environment,
        verdict = report.verdict.as_str(),
        reasons = report.reasons.len(),
        "health assessed"
    );
    if input.record {
        let execution = input.execution.clone().unwrap_or_default();
        let id = hex::encode(
            &Sha256::digest(format!("{execution}#{}", input.environment).as_bytes())[..5],
        );
        deps.state
            .put_observation(&HealthRecord {
                environment: input.environment.clone(),
                id,
                checked_at: report.checked_at,
                verdict: report.verdict.as_str().to_owned(),
                reasons: serde_json::to_value(&report.reasons).unwrap_or_default(),
                execution: input.execution.clone(),
            })
            .await?;
    }
    if input.fail_on_unhealthy && report.verdict == Verdict::Unhealthy {
        return Err(OpsError::HealthCheckFailed(report.summary()));
    }
    Ok(report)
}

opsplane_shared::actions! {
    /// The health-check function's input.
    pub enum Action {
        /// Checks one environment.
        "check" => Check(CheckInput),
        /// The environments a sweep covers.
        "list-environments" => ListEnvironments(SweepInput),
        /// The fleet report, after a sweep.
        "fleet-report" => FleetReport(FleetReportInput),
    }
}

/// `fleet-report`: takes nothing; the report covers every environment with a spec.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetReportInput {}

/// Writes the fleet report (every environment's backup freshness, last drill against its targets, and
/// health, as the catalog has them now): its keys and how many environments are at each level.
pub async fn fleet_report(deps: &Deps) -> Result<Value, OpsError> {
    let report = opsplane_shared::fleet::gather(&deps.specs, &deps.state, deps.clock.now()).await?;
    let (json_key, html_key) = opsplane_shared::fleet::store(&deps.objects, &report).await?;
    let counts: serde_json::Map<String, Value> = report
        .counts()
        .iter()
        .map(|(level, n)| (level.label().to_owned(), json!(n)))
        .collect();
    tracing::info!(environments = report.rows.len(), %html_key, "fleet report written");
    Ok(json!({
        "json_key": json_key,
        "html_key": html_key,
        "environments": report.rows.len(),
        "counts": counts,
    }))
}

/// The JSON boundary: parses the action and returns its output as JSON.
pub async fn handle(deps: &Deps, input: Value) -> Result<Value, OpsError> {
    let action: Action = parse_action(input)?;
    tracing::info!(action = action.name(), "health-check function invoked");
    match action {
        Action::Check(input) => to_value(check(deps, input).await?),
        Action::ListEnvironments(i) => {
            let environments = sweep_environments(&deps.specs, &i.input).await?;
            Ok(json!({ "environments": environments }))
        }
        Action::FleetReport(FleetReportInput {}) => fleet_report(deps).await,
    }
}

opsplane_shared::function!(Deps, FUNCTION_NAME, handle);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn serve(answer: &'static str, delay: Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = sock.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let _ = sock.write_all(answer.as_bytes()).await;
            }
        });
        format!("http://{addr}/health")
    }

    fn check(url: String, body: Option<&str>, timeout_ms: u64) -> HttpCheck {
        HttpCheck {
            url,
            expect_status: 200,
            timeout_ms,
            body_contains: body.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn the_prober_reports_status_body_and_timeouts() {
        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nall ok\n";
        let url = serve(ok, Duration::ZERO).await;
        let seen = ReqwestProber::default()
            .probe(&check(url.clone(), Some("ok"), 2000))
            .await;
        assert_eq!(seen.status, Some(200));
        assert_eq!(seen.body_matched, Some(true));
        assert!(seen.error.is_none());
        let seen = ReqwestProber::default()
            .probe(&check(url, Some("nope"), 2000))
            .await;
        assert_eq!(seen.body_matched, Some(false));

        let err =
            "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        let url = serve(err, Duration::ZERO).await;
        assert_eq!(
            ReqwestProber::default()
                .probe(&check(url, None, 2000))
                .await
                .status,
            Some(500)
        );

        let slow = serve(ok, Duration::from_secs(5)).await;
        let seen = ReqwestProber::default().probe(&check(slow, None, 50)).await;
        assert_eq!(seen.status, None);
        assert!(seen.error.unwrap().contains("timed out"));
    }
}
