//! The backup Lambda: manual RDS snapshots under the environment's lock, manifests, safe retention, every
//! step of the DR drill (restore, verify, measure, teardown, report), and the plan and summary of fleet runs.
//!
//! One function serves both workflows (`backup.asl.json`, `dr-drill.asl.json`): the input's `action` field
//! names the step. Every action is a plain async function over a typed input; [`handle`] is the JSON
//! boundary Lambda (and the local engine) calls.
//!
//! Configuration beyond [`opsplane_shared::Config`] (read in `main`, see [`probe::ProbeSettings`]):
//! - `OPSPLANE_PROBE_CA_BUNDLE`: PEM file of the CAs the SQL probe verifies servers with (the RDS bundle).
//! - `OPSPLANE_PROBE_ENDPOINT_OVERRIDE=host:port`: local runs only; maps every restored instance's endpoint
//!   (which moto invents) to a real PostgreSQL. Production never sets it.
//! - `OPSPLANE_PROBE_REDIS_ENDPOINT_OVERRIDE=host:port`: the same for restored replication groups and a
//!   real Redis server.
//!
//! No credential is configured here: the probe's password or IAM token is resolved from the spec's
//! reference inside `verify` (see [`opsplane_shared::secrets`]); a password in a Lambda environment variable
//! would be readable by anyone allowed `GetFunctionConfiguration`.

pub mod backup;
pub mod caches;
pub mod drill;
pub mod fleet;
pub mod history;

/// The SQL probe lives in `opsplane_shared` (health checks use it too); re-exported under its old path.
pub use opsplane_shared::probe;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use opsplane_shared::aws::Clients;
use opsplane_shared::aws::eks::Eks;
use opsplane_shared::aws::elasticache::Caches;
use opsplane_shared::aws::objects::ObjectStore;
use opsplane_shared::aws::rds::Rds;
use opsplane_shared::aws::sfn::SfnExecutions;
use opsplane_shared::aws::specs::SpecStore;
use opsplane_shared::boundary::{parse_action, to_value};
use opsplane_shared::clock::{Clock, SystemClock};
pub use opsplane_shared::domain::names::short_id;
use opsplane_shared::domain::spec::{EnvironmentSpec, spec_key, validate_environment_name};
use opsplane_shared::lock::Lock;
use opsplane_shared::ports::Executions;
use opsplane_shared::secrets::Credentials;
use opsplane_shared::state::StateStore;
use opsplane_shared::{Config, OpsError};
use serde_json::Value;

use crate::probe::redis::{CacheProbe, RespProbe};
use crate::probe::{PostgresProbe, ProbeSettings, SqlProbe};

/// The function's name, as registered on the local engine and deployed.
pub const FUNCTION_NAME: &str = "backup";

/// What the handler needs: adapters over the AWS clients, the clock, the execution history and the probe.
#[derive(Clone)]
pub struct Deps {
    /// Where state lives.
    pub config: Config,
    /// RDS in the control plane's region.
    pub rds: Rds,
    /// EKS.
    pub eks: Eks,
    /// ElastiCache: the Redis replication groups and their snapshots.
    pub caches: Caches,
    /// The state bucket.
    pub objects: ObjectStore,
    /// The environments' specs (a fleet run lists them).
    pub specs: SpecStore,
    /// The catalog (backup and drill records).
    pub state: StateStore,
    /// Time. Tests move it forward to age snapshots without sleeping.
    pub clock: Arc<dyn Clock>,
    /// The execution history RTO is measured from.
    pub history: Arc<dyn Executions>,
    /// The drill's SQL probe.
    pub probe: Arc<dyn SqlProbe>,
    /// The drill's Redis probe.
    pub cache_probe: Arc<dyn CacheProbe>,
    /// The probe's endpoint override and CA bundle.
    pub probe_settings: ProbeSettings,
    /// Resolves the probe's credential reference (Secrets Manager, RDS IAM auth) when it connects.
    pub credentials: Credentials,
    /// The environment lock, renewed by every polling and mutating step of a backup.
    pub lock: Arc<dyn Lock>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("config", &self.config)
            .field("probe_settings", &self.probe_settings)
            .finish_non_exhaustive()
    }
}

impl Deps {
    /// The production wiring: every adapter over `clients`, the wall clock, Step Functions' history, a
    /// PostgreSQL probe with the platform's roots, credentials from Secrets Manager and RDS IAM auth.
    pub fn new(config: Config, clients: &Clients) -> Self {
        Self {
            rds: Rds::new(clients.rds.clone()),
            eks: Eks::new(clients.eks.clone()),
            caches: Caches::new(clients.elasticache.clone()),
            objects: ObjectStore::new(clients.s3.clone(), config.bucket_name.clone()),
            specs: SpecStore::new(clients.s3.clone(), config.bucket_name.clone()),
            state: StateStore::from_config(&config, clients),
            clock: Arc::new(SystemClock),
            history: Arc::new(SfnExecutions::new(clients.sfn.clone())),
            probe: Arc::new(PostgresProbe::default()),
            cache_probe: Arc::new(RespProbe::default()),
            probe_settings: ProbeSettings::default(),
            credentials: Credentials::from_clients(clients),
            lock: opsplane_shared::lock::from_config(
                &config,
                clients,
                Arc::new(SfnExecutions::new(clients.sfn.clone())),
            ),
            config,
        }
    }

    /// The same deps reading time from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same deps renewing leases through `lock`.
    pub fn with_lock(mut self, lock: Arc<dyn Lock>) -> Self {
        self.lock = lock;
        self
    }

    /// The same deps reading execution history from `history` (the local engine's).
    pub fn with_history(mut self, history: Arc<dyn Executions>) -> Self {
        self.history = history;
        self
    }

    /// The same deps with these probe settings, the PostgreSQL and Redis probes verifying servers with
    /// their CAs.
    pub fn with_probe_settings(mut self, settings: ProbeSettings) -> Self {
        self.probe = Arc::new(PostgresProbe::with_settings(&settings));
        self.cache_probe = Arc::new(RespProbe::with_settings(&settings));
        self.probe_settings = settings;
        self
    }

    /// The same deps resolving probe credentials through `credentials`.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Loads and validates an environment's spec from the state bucket. A missing spec or a bad one is
    /// `InvalidInput`: the caller named an environment opsplane cannot act on.
    pub async fn spec(&self, environment: &str) -> Result<EnvironmentSpec, OpsError> {
        validate_environment_name(environment).map_err(|r| OpsError::invalid("environment", r))?;
        let key = spec_key(environment);
        let bytes = self.objects.get(&key).await?.ok_or_else(|| {
            OpsError::invalid(
                "environment",
                format!(
                    "no spec for environment `{environment}` at s3://{}/{key}: upload one first",
                    self.objects.bucket()
                ),
            )
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| OpsError::invalid("spec", format!("{key} is not UTF-8")))?;
        let spec = EnvironmentSpec::parse(&text)
            .map_err(|e| OpsError::invalid(format!("spec.{}", e.field()), format!("{key}: {e}")))?;
        if spec.environment != environment {
            return Err(OpsError::invalid(
                "spec.environment",
                format!(
                    "{key} describes environment `{}`, not `{environment}`",
                    spec.environment
                ),
            ));
        }
        Ok(spec)
    }
}

opsplane_shared::actions! {
    /// The backup function's input: one variant per step of `backup.asl.json` and `dr-drill.asl.json`.
    pub enum Action {
        /// Checks a backup's input and loads the spec.
        "validate-backup" => ValidateBackup(backup::ValidateInput),
        /// Starts one instance's snapshot.
        "snapshot" => Snapshot(backup::SnapshotInput),
        /// Polls every snapshot (or copy) of a backup in one batched describe.
        "check-snapshots" => CheckSnapshots(backup::CheckSnapshotsInput),
        /// Copies a snapshot to another region.
        "copy-snapshot" => CopySnapshot(backup::CopyInput),
        /// Exports the EKS cluster and node groups to S3.
        "export-eks" => ExportEks(backup::ExportInput),
        /// Writes the manifest.
        "write-manifest" => WriteManifest(backup::ManifestInput),
        /// Records the backup in the catalog.
        "record-backup" => RecordBackup(backup::RecordInput),
        /// Prunes snapshots under the retention rules.
        "retention" => Retention(backup::RetentionInput),
        /// A tagged manual snapshot of one Redis replication group.
        "snapshot-cache" => SnapshotCache(caches::CacheSnapshotInput),
        /// `NotReady` until a Redis snapshot is available.
        "check-cache-snapshot" => CheckCacheSnapshot(caches::CheckCacheSnapshotInput),
        /// A Redis snapshot exported to S3.
        "export-cache-snapshot" => ExportCacheSnapshot(caches::ExportCacheInput),
        /// Checks a drill's input and loads the spec.
        "validate-drill" => ValidateDrill(drill::ValidateInput),
        /// Deletes drill instances an earlier run left.
        "sweep-orphans" => SweepOrphans(drill::SweepInput),
        /// Picks the snapshot (or time) to restore.
        "pick-snapshot" => PickSnapshot(drill::PickInput),
        /// Restores to a scratch instance.
        "restore" => Restore(drill::RestoreInput),
        /// Polls the restore.
        "check-restore" => CheckRestore(drill::CheckRestoreInput),
        /// Verifies the restored instance.
        "verify" => Verify(drill::VerifyInput),
        /// Measures RTO and RPO.
        "measure" => Measure(drill::MeasureInput),
        /// Deletes the scratch instance.
        "teardown" => Teardown(drill::TeardownInput),
        /// Polls the teardown.
        "check-teardown" => CheckTeardown(drill::TeardownInput),
        /// Writes the drill's report.
        "report" => Report(drill::ReportInput),
        /// Records the drill in the catalog.
        "record-drill" => RecordDrill(drill::RecordInput),
        /// Picks the Redis snapshot a drill restores.
        "pick-cache-snapshot" => PickCacheSnapshot(drill::CacheInput),
        /// Restores it to a scratch replication group.
        "restore-cache" => RestoreCache(drill::RestoreCacheInput),
        /// Polls the Redis restore.
        "check-cache-restore" => CheckCacheRestore(drill::CacheInput),
        /// Verifies the scratch replication group.
        "verify-cache" => VerifyCache(drill::VerifyCacheInput),
        /// Plans a fleet run: its environments (or tonight's drills), their pace within the RDS request
        /// budget, and the snapshot quota checked (pruning first when that makes room).
        "plan-fleet" => PlanFleet(fleet::PlanInput),
        /// Summarises a fleet run from its Map Run's results, and records the drill compliance.
        "record-fleet-run" => RecordFleetRun(fleet::RecordInput),
        /// Measures the Redis restore's RTO and RPO.
        "measure-cache" => MeasureCache(drill::MeasureCacheInput),
        /// Deletes the scratch replication group.
        "teardown-cache" => TeardownCache(drill::CacheInput),
        /// Polls its deletion.
        "check-cache-teardown" => CheckCacheTeardown(drill::CacheInput),
    }
}

/// The JSON boundary: parses the action and returns its output as JSON.
pub async fn handle(deps: &Deps, input: Value) -> Result<Value, OpsError> {
    let action: Action = parse_action(input)?;
    tracing::info!(action = action.name(), "backup function invoked");
    match action {
        Action::ValidateBackup(i) => to_value(backup::validate(deps, i).await?),
        Action::Snapshot(i) => to_value(backup::snapshot(deps, i).await?),
        Action::CheckSnapshots(i) => to_value(backup::check_snapshots(deps, i).await?),
        Action::CopySnapshot(i) => to_value(backup::copy_snapshot(deps, i).await?),
        Action::ExportEks(i) => to_value(backup::export_eks(deps, i).await?),
        Action::WriteManifest(i) => to_value(backup::write_manifest(deps, i).await?),
        Action::RecordBackup(i) => to_value(backup::record(deps, i).await?),
        Action::Retention(i) => to_value(backup::retention(deps, i).await?),
        Action::SnapshotCache(i) => to_value(caches::snapshot_cache(deps, i).await?),
        Action::CheckCacheSnapshot(i) => to_value(caches::check_cache_snapshot(deps, i).await?),
        Action::ExportCacheSnapshot(i) => to_value(caches::export_cache_snapshot(deps, i).await?),
        Action::ValidateDrill(i) => to_value(drill::validate(deps, i).await?),
        Action::SweepOrphans(i) => to_value(drill::sweep_orphans(deps, i).await?),
        Action::PickSnapshot(i) => to_value(drill::pick_snapshot(deps, i).await?),
        Action::Restore(i) => to_value(drill::restore(deps, i).await?),
        Action::CheckRestore(i) => to_value(drill::check_restore(deps, i).await?),
        Action::Verify(i) => to_value(drill::verify(deps, i).await?),
        Action::Measure(i) => to_value(drill::measure(deps, i).await?),
        Action::Teardown(i) => to_value(drill::teardown(deps, i).await?),
        Action::CheckTeardown(i) => to_value(drill::check_teardown(deps, i).await?),
        Action::Report(i) => to_value(drill::report(deps, i).await?),
        Action::RecordDrill(i) => to_value(drill::record(deps, i).await?),
        Action::PickCacheSnapshot(i) => to_value(drill::pick_cache_snapshot(deps, i).await?),
        Action::RestoreCache(i) => to_value(drill::restore_cache(deps, i).await?),
        Action::CheckCacheRestore(i) => to_value(drill::check_cache_restore(deps, i).await?),
        Action::VerifyCache(i) => to_value(drill::verify_cache(deps, i).await?),
        Action::PlanFleet(i) => to_value(fleet::plan(deps, i).await?),
        Action::RecordFleetRun(i) => to_value(fleet::record(deps, i).await?),
        Action::MeasureCache(i) => to_value(drill::measure_cache(deps, i).await?),
        Action::TeardownCache(i) => to_value(drill::teardown_cache(deps, i).await?),
        Action::CheckCacheTeardown(i) => to_value(drill::check_cache_teardown(deps, i).await?),
    }
}

opsplane_shared::function!(Deps, FUNCTION_NAME, handle);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_field() {
        let err =
            parse_action::<Action>(serde_json::json!({"action": "retention", "environment": 5}))
                .unwrap_err();
        assert_eq!(err.name().as_str(), "InvalidInput");
        assert!(err.to_string().contains("environment"), "{err}");
    }
}
