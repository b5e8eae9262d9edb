//! The backup Lambda: manual RDS snapshots under the environment's lock, manifests, safe retention, and every
//! step of the DR drill (restore, verify, measure, teardown, report).
//!
//! One function serves both workflows (`backup.asl.json`, `dr-drill.asl.json`): the input's `action` field
//! names the step. Every action is a plain async function over a typed input; [`handle`] is the JSON
//! boundary Lambda (and the local engine) calls.
//!
//! Configuration beyond [`opsplane_shared::Config`] (read in `main`, see [`probe::ProbeSettings`]):
//! - `OPSPLANE_PROBE_CA_BUNDLE`: PEM file of the CAs the SQL probe verifies servers with (the RDS bundle).
//! - `OPSPLANE_PROBE_ENDPOINT_OVERRIDE=host:port`: local runs only; maps every restored instance's endpoint
//!   (which moto invents) to a real PostgreSQL. Production never sets it.
//!
//! No credential is configured here: the probe's password or IAM token is resolved from the spec's
//! reference inside `verify` (see [`opsplane_shared::secrets`]); a password in a Lambda environment variable
//! would be readable by anyone allowed `GetFunctionConfiguration`.

#![warn(missing_docs)]

pub mod backup;
pub mod drill;
pub mod history;

/// The SQL probe lives in `opsplane_shared` (health checks use it too); re-exported under its old path.
pub use opsplane_shared::probe;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use opsplane_shared::aws::Clients;
use opsplane_shared::aws::eks::Eks;
use opsplane_shared::aws::objects::ObjectStore;
use opsplane_shared::aws::rds::Rds;
use opsplane_shared::clock::{Clock, SystemClock};
use opsplane_shared::domain::spec::{EnvironmentSpec, spec_key, validate_environment_name};
use opsplane_shared::secrets::Credentials;
use opsplane_shared::state::StateStore;
use opsplane_shared::{Config, OpsError};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::history::{ExecutionEvents, SfnEvents};
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
    /// The state bucket.
    pub objects: ObjectStore,
    /// The catalog (backup and drill records).
    pub state: StateStore,
    /// Time. Tests move it forward to age snapshots without sleeping.
    pub clock: Arc<dyn Clock>,
    /// The execution history RTO is measured from.
    pub history: Arc<dyn ExecutionEvents>,
    /// The drill's SQL probe.
    pub probe: Arc<dyn SqlProbe>,
    /// The probe's endpoint override and CA bundle.
    pub probe_settings: ProbeSettings,
    /// Resolves the probe's credential reference (Secrets Manager, RDS IAM auth) when it connects.
    pub credentials: Credentials,
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
            objects: ObjectStore::new(clients.s3.clone(), config.bucket_name.clone()),
            state: StateStore::from_config(&config, clients),
            clock: Arc::new(SystemClock),
            history: Arc::new(SfnEvents::new(clients.sfn.clone())),
            probe: Arc::new(PostgresProbe::default()),
            probe_settings: ProbeSettings::default(),
            credentials: Credentials::from_clients(clients),
            config,
        }
    }

    /// The same deps reading time from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same deps reading execution history from `history` (the local engine's).
    pub fn with_history(mut self, history: Arc<dyn ExecutionEvents>) -> Self {
        self.history = history;
        self
    }

    /// The same deps with these probe settings, the PostgreSQL probe verifying servers with their CAs.
    pub fn with_probe_settings(mut self, settings: ProbeSettings) -> Self {
        self.probe = Arc::new(PostgresProbe::with_settings(&settings));
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

/// A short id derived from an execution ARN: the same execution (a retried task) gets the same id, so
/// snapshot and scratch-instance names are idempotent.
pub fn short_id(execution: &str) -> String {
    hex::encode(&Sha256::digest(execution.as_bytes())[..5])
}

fn parse<T: DeserializeOwned>(input: Value) -> Result<T, OpsError> {
    serde_json::from_value(input).map_err(|e| {
        // serde names the field in its message ("missing field `environment`").
        let msg = e.to_string();
        let field = msg
            .split('`')
            .nth(1)
            .filter(|_| msg.contains("field"))
            .unwrap_or("input")
            .to_owned();
        OpsError::invalid(field, msg)
    })
}

fn to_value<T: serde::Serialize>(out: T) -> Result<Value, OpsError> {
    serde_json::to_value(out)
        .map_err(|e| OpsError::Internal(format!("serialising the output: {e}")))
}

#[derive(Deserialize)]
struct Envelope {
    action: String,
}

/// Every action, for documentation and the error message on an unknown one.
pub const ACTIONS: [&str; 19] = [
    "validate-backup",
    "snapshot",
    "check-snapshot",
    "copy-snapshot",
    "export-eks",
    "write-manifest",
    "record-backup",
    "retention",
    "validate-drill",
    "sweep-orphans",
    "pick-snapshot",
    "restore",
    "check-restore",
    "verify",
    "measure",
    "teardown",
    "check-teardown",
    "report",
    "record-drill",
];

/// The JSON boundary: dispatches on `action` and returns the action's output as JSON.
pub async fn handle(deps: &Deps, input: Value) -> Result<Value, OpsError> {
    let Envelope { action } = serde_json::from_value(input.clone()).map_err(|_| {
        OpsError::invalid(
            "action",
            format!("missing or not a string; one of {}", ACTIONS.join(", ")),
        )
    })?;
    tracing::info!(action, "backup function invoked");
    match action.as_str() {
        "validate-backup" => to_value(backup::validate(deps, parse(input)?).await?),
        "snapshot" => to_value(backup::snapshot(deps, parse(input)?).await?),
        "check-snapshot" => to_value(backup::check_snapshot(deps, parse(input)?).await?),
        "copy-snapshot" => to_value(backup::copy_snapshot(deps, parse(input)?).await?),
        "export-eks" => to_value(backup::export_eks(deps, parse(input)?).await?),
        "write-manifest" => to_value(backup::write_manifest(deps, parse(input)?).await?),
        "record-backup" => to_value(backup::record(deps, parse(input)?).await?),
        "retention" => to_value(backup::retention(deps, parse(input)?).await?),
        "validate-drill" => to_value(drill::validate(deps, parse(input)?).await?),
        "sweep-orphans" => to_value(drill::sweep_orphans(deps, parse(input)?).await?),
        "pick-snapshot" => to_value(drill::pick_snapshot(deps, parse(input)?).await?),
        "restore" => to_value(drill::restore(deps, parse(input)?).await?),
        "check-restore" => to_value(drill::check_restore(deps, parse(input)?).await?),
        "verify" => to_value(drill::verify(deps, parse(input)?).await?),
        "measure" => to_value(drill::measure(deps, parse(input)?).await?),
        "teardown" => to_value(drill::teardown(deps, parse(input)?).await?),
        "check-teardown" => to_value(drill::check_teardown(deps, parse(input)?).await?),
        "report" => to_value(drill::report(deps, parse(input)?).await?),
        "record-drill" => to_value(drill::record(deps, parse(input)?).await?),
        other => Err(OpsError::invalid(
            "action",
            format!("unknown action {other:?}; one of {}", ACTIONS.join(", ")),
        )),
    }
}

/// Registers the function on a local engine under [`FUNCTION_NAME`], with the engine itself as the source of
/// execution history (RTO is measured from the engine's virtual-clock events).
#[cfg(feature = "local")]
pub fn register(engine: &opsplane_statemachines::Engine, deps: Deps) {
    let deps = Arc::new(deps.with_history(Arc::new(history::EngineEvents::new(engine.clone()))));
    engine.register_handler(FUNCTION_NAME, move |input, _ctx| {
        let deps = deps.clone();
        async move {
            handle(&deps, input).await.map_err(|e| {
                opsplane_statemachines::FunctionError::new(e.name().as_str(), e.full_message())
            })
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_stable_and_short() {
        let a = short_id("arn:aws:states:us-east-1:1:execution:backup:run-1");
        assert_eq!(
            a,
            short_id("arn:aws:states:us-east-1:1:execution:backup:run-1")
        );
        assert_ne!(
            a,
            short_id("arn:aws:states:us-east-1:1:execution:backup:run-2")
        );
        assert_eq!(a.len(), 10);
    }

    #[test]
    fn parse_errors_name_the_field() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct In {
            environment: String,
        }
        let err = parse::<In>(serde_json::json!({"action": "x"})).unwrap_err();
        assert_eq!(err.name().as_str(), "InvalidInput");
        assert!(err.to_string().contains("`environment`"), "{err}");
    }
}
