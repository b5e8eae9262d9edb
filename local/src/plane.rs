//! The local plane: opsplane's workflows on the local engine, every handler called in-process through the
//! JSON boundary Lambda uses, AWS emulated by moto. `opsplane demo`, `opsplane run --local` and the
//! end-to-end tests all run through this one wiring, so what they exercise is what is deployed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use opsplane_shared::approval::{ApproveError, Decision, decide};
use opsplane_shared::aws::Clients;
use opsplane_shared::bootstrap::{
    BootstrapError, BootstrapOptions, BootstrapReport, bootstrap_with,
};
use opsplane_shared::config::Config;
use opsplane_shared::ports::Executions;
use opsplane_shared::state::{ApprovalRecord, StateStore};
use opsplane_statemachines::s3::S3ItemReader;
use opsplane_statemachines::{
    Description, Engine, EngineError, FunctionError, UnknownWorkflow, Workflow,
};
use serde_json::Value;
use thiserror::Error;

use crate::executions::EngineExecutions;
use crate::moto::{LocalError, MotoServer};
use crate::register::register;
use crate::world::{VirtualClock, World, WorldClock, WorldNetwork};

/// The region and account the local engine writes into ARNs.
pub(crate) const REGION: &str = "us-east-1";
pub(crate) const ACCOUNT: &str = "123456789012";
/// Handler calls the local plane runs at once ([`Engine::set_invocation_limit`]).
pub const INVOCATIONS_AT_ONCE: usize = 16;
/// The event bus the local plane's definitions publish their outcome events to (`${EventBusName}`).
pub const EVENT_BUS: &str = "default";
/// Step Functions' optimized EventBridge integration, served on the local plane by EventBridge on moto.
pub const PUT_EVENTS: &str = "arn:aws:states:::events:putEvents";

/// The `${...}` placeholders of the definitions and the function each names, as CloudFormation's
/// `DefinitionSubstitutions` fill them in the deployed stack.
pub const FUNCTIONS: [(&str, &str); 5] = [
    ("LockFunctionArn", opsplane_fn_lock::FUNCTION_NAME),
    ("BackupFunctionArn", opsplane_fn_backup::FUNCTION_NAME),
    ("ProvisionFunctionArn", opsplane_fn_provision::FUNCTION_NAME),
    (
        "HealthCheckFunctionArn",
        opsplane_fn_health_check::FUNCTION_NAME,
    ),
    ("RollbackFunctionArn", opsplane_fn_rollback::FUNCTION_NAME),
];

/// What the local plane fills the definitions' `${...}` placeholders with: every function's ARN and the
/// event bus, as `DefinitionSubstitutions` does in the deployed stack.
pub fn substitutions() -> HashMap<String, String> {
    let mut substitutions: HashMap<String, String> = FUNCTIONS
        .iter()
        .map(|(placeholder, function)| {
            (
                (*placeholder).to_owned(),
                format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"),
            )
        })
        .collect();
    substitutions.insert("EventBusName".to_owned(), EVENT_BUS.to_owned());
    // The fleet run starts the backup and the drill as child executions of the plane's own machines.
    for (placeholder, workflow) in [
        ("BackupStateMachineArn", Workflow::Backup),
        ("DrDrillStateMachineArn", Workflow::DrDrill),
    ] {
        substitutions.insert(
            placeholder.to_owned(),
            format!(
                "arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{}",
                workflow.name()
            ),
        );
    }
    substitutions
}

/// The local plane could not be set up or run.
#[derive(Debug, Error)]
pub enum PlaneError {
    /// moto could not be started.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The state table or bucket could not be created.
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// The engine refused a definition or an execution.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The workflow name is not one of [`Workflow::all`].
    #[error(transparent)]
    UnknownWorkflow(#[from] UnknownWorkflow),
}

/// The engine with every function and workflow registered, over one configuration.
pub struct LocalPlane {
    /// Where state lives (moto's endpoint, table, bucket).
    pub config: Config,
    /// Clients pointed at moto.
    pub clients: Clients,
    /// The local engine.
    pub engine: Engine,
    /// This plane's world in the model of AWS (its settings: durations, quotas, throttles, faults).
    pub world: World,
    machines: HashMap<Workflow, String>,
    // Kept for the plane's life when the plane started moto itself.
    _moto: Option<MotoServer>,
}

impl LocalPlane {
    /// Starts moto from `<root>/.venv`, bootstraps the state table and bucket, and wires the plane.
    pub async fn start(
        root: &Path,
        table: &str,
        bucket: &str,
    ) -> Result<(Self, BootstrapReport), PlaneError> {
        let moto = MotoServer::start(root)?;
        let config = Config::local(moto.endpoint(), table, bucket);
        let (mut plane, report) = Self::connect(config).await?;
        plane._moto = Some(moto);
        Ok((plane, report))
    }

    /// Wires the plane over an already running endpoint, bootstrapping the state table and bucket.
    pub async fn connect(config: Config) -> Result<(Self, BootstrapReport), PlaneError> {
        let engine = Engine::with_account(REGION, ACCOUNT);
        let world = World::new(config.endpoint_url.as_deref().unwrap_or_default());
        let clients = Clients::load(&config)
            .await
            .with_interceptor(WorldClock::new(world.id(), engine.clone()));
        let report = bootstrap_with(
            &clients.dynamodb,
            &clients.s3,
            &config.table_name,
            &config.bucket_name,
            &config.region,
            // moto speaks plain HTTP and enforces bucket policies: the TLS-only policy would deny every object.
            BootstrapOptions::local_world(),
        )
        .await?;
        // The world is one endpoint serving one request at a time (AWS's conditional writes are atomic),
        // while a fleet run's child executions, their Waits passing in virtual time at once, would call it
        // all together and queue past the SDK's 10-second attempt timeout: handlers take turns, which
        // costs real time only (a call's AWS requests are timed at its task's virtual time whenever it runs).
        engine.set_invocation_limit(Some(INVOCATIONS_AT_ONCE));
        // A Distributed Map reads its items and writes its results in the state bucket.
        engine.set_item_reader(Arc::new(S3ItemReader::new(clients.s3.clone())));
        let mut plane = Self {
            config,
            clients,
            engine,
            world,
            machines: HashMap::new(),
            _moto: None,
        };
        plane.register_functions(opsplane_fn_backup::Deps::new(
            plane.config.clone(),
            &plane.clients,
        ));
        plane.register_workflows()?;
        Ok((plane, report))
    }

    /// The engine as the execution service (the [`Executions`] port).
    pub fn executions(&self) -> Arc<dyn Executions> {
        Arc::new(EngineExecutions(self.engine.clone()))
    }

    /// The prefix of every state machine ARN of this plane: workflow `w` runs on `<prefix><w>`, as the
    /// deployed stack's `StateMachinePrefix`.
    pub fn state_machine_prefix(&self) -> String {
        format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:")
    }

    /// The environment lock as the `lock` function sees it (backend from the configuration). Its leases
    /// run on the virtual clock, the time of the task that acquires or renews, like the work they cover.
    pub fn lock(&self) -> Arc<dyn opsplane_shared::lock::Lock> {
        let store = StateStore::from_config(&self.config, &self.clients)
            .with_clock(Arc::new(VirtualClock::new(self.engine.clone())));
        opsplane_shared::lock::with_store(&self.config, &self.clients, store, self.executions())
    }

    /// (Re-)registers every function; `backup` takes the given deps so tests can move its clock or point
    /// its probe at a local PostgreSQL. RTO is measured from the engine's virtual-clock history.
    pub fn register_functions(&self, mut backup: opsplane_fn_backup::Deps) {
        register(&self.engine, opsplane_fn_lock::LockDeps::new(self.lock()));
        // The probes run in the world's network: an instance outside the probe's VPC and security groups
        // is a connection that times out, as on AWS.
        backup.probe_settings.network.get_or_insert_with(|| {
            Arc::new(WorldNetwork::new(self.world.clone(), &self.config.region))
        });
        let probe_settings = backup.probe_settings.clone();
        register(
            &self.engine,
            backup
                .with_history(self.executions())
                .with_lock(self.lock()),
        );
        let events = self.clients.events.clone();
        self.engine
            .register_handler(PUT_EVENTS, move |parameters: Value, ctx| {
                let events = events.clone();
                // The integration acts with the state machine's role (arn:...:execution:<machine>:<name>).
                let machine = ctx.execution_arn.split(':').nth(6).unwrap_or_default();
                let role = format!("workflow:{machine}");
                crate::world::acting(ctx.virtual_now(), role, async move {
                    opsplane_shared::aws::events::put_events_integration(
                        &events,
                        &parameters,
                        &ctx.execution_arn,
                    )
                    .await
                    .map_err(|e| FunctionError::new(e.error_name(), e.to_string()))
                })
            });
        register(&self.engine, self.provision_deps(&self.clients));
        register(
            &self.engine,
            // Every SQL probe of the plane reaches the same endpoint override (a local PostgreSQL).
            opsplane_fn_health_check::Deps::new(self.config.clone(), &self.clients)
                .with_probe_settings(probe_settings),
        );
        register(&self.engine, self.rollback_deps(&self.clients));
    }

    /// The rollback function's wiring over `clients` (a test's may carry an interceptor): this plane's
    /// executions, and the virtual clock, since it compares times with its executions' histories.
    pub fn rollback_deps(&self, clients: &Clients) -> opsplane_fn_rollback::Deps {
        let mut rollback = opsplane_fn_rollback::Deps::with_executions(
            self.config.clone(),
            clients,
            self.executions(),
        );
        rollback.clock = Arc::new(VirtualClock::new(self.engine.clone()));
        rollback
    }

    /// The provision function's wiring over `clients` (a test's may carry an interceptor): this plane's lock,
    /// and the virtual clock, on which a bake lasts its minutes as the world's resources change on it.
    pub fn provision_deps(&self, clients: &Clients) -> opsplane_fn_provision::Deps {
        let mut provision = opsplane_fn_provision::Deps::new(self.config.clone(), clients);
        provision.lock = self.lock();
        provision.clock = Arc::new(VirtualClock::new(self.engine.clone()));
        provision
    }

    /// Approves or rejects the change `execution` waits for, in-process (a separate CLI process cannot
    /// reach this process's local engine): approved, it goes on; rejected, it ends `ApprovalRejected` with
    /// nothing changed.
    pub async fn decide(
        &self,
        execution: &str,
        decision: Decision,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<ApprovalRecord, ApproveError> {
        let executions = EngineExecutions(self.engine.clone());
        decide(
            &self.state(),
            &executions,
            execution,
            decision,
            actor,
            reason,
            None,
        )
        .await
    }

    /// Approves the change `execution` waits for ([`LocalPlane::decide`]).
    pub async fn approve(
        &self,
        execution: &str,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<ApprovalRecord, ApproveError> {
        self.decide(execution, Decision::Approve, actor, reason)
            .await
    }

    /// Rejects the change `execution` waits for ([`LocalPlane::decide`]).
    pub async fn reject(
        &self,
        execution: &str,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<ApprovalRecord, ApproveError> {
        self.decide(execution, Decision::Reject, actor, reason)
            .await
    }

    /// The state store of this plane.
    pub fn state(&self) -> StateStore {
        StateStore::from_config(&self.config, &self.clients)
    }

    /// Uploads a spec to `specs/<env>/spec.yaml` (a new version) without creating anything: what a
    /// provision then applies.
    pub async fn upload_spec(
        &self,
        spec_yaml: &str,
    ) -> Result<opsplane_shared::aws::specs::StoredSpec, opsplane_shared::aws::specs::SpecStoreError>
    {
        opsplane_shared::aws::specs::SpecStore::new(
            self.clients.s3.clone(),
            self.config.bucket_name.clone(),
        )
        .put(spec_yaml)
        .await
    }

    /// Starts a workflow without waiting for it.
    pub fn start_workflow(&self, workflow: &str, input: Value) -> Result<String, PlaneError> {
        let arn = self.state_machine(workflow)?;
        Ok(self.engine.start_execution(arn, None, input)?)
    }

    fn register_workflows(&mut self) -> Result<(), PlaneError> {
        let substitutions = substitutions();
        for workflow in Workflow::all() {
            let arn = self.engine.register_state_machine(
                workflow.name(),
                workflow.definition(),
                &substitutions,
            )?;
            self.machines.insert(workflow, arn);
        }
        Ok(())
    }

    /// Registers (or replaces) a function on the plane's engine.
    pub fn register<F: opsplane_shared::boundary::Function>(&self, function: F) {
        register(&self.engine, function);
    }

    /// The state machine ARN of a workflow.
    pub fn state_machine(&self, workflow: &str) -> Result<&str, PlaneError> {
        let workflow: Workflow = workflow.parse()?;
        Ok(self.machines[&workflow].as_str())
    }

    /// Starts a workflow and waits for it to end.
    pub async fn run(&self, workflow: &str, input: Value) -> Result<Description, PlaneError> {
        let arn = self.state_machine(workflow)?;
        let execution = self.engine.start_execution(arn, None, input)?;
        Ok(self.engine.wait_for(&execution).await?)
    }
}
