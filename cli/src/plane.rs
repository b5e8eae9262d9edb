//! The local plane: opsplane's workflows on the local engine, every handler called in-process through the
//! JSON boundary Lambda uses, AWS emulated by moto. `opsplane demo`, `opsplane run --local` and the
//! end-to-end tests all run through this one wiring, so what they exercise is what is deployed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use opsplane_shared::OpsError;
use opsplane_shared::aws::Clients;
use opsplane_shared::bootstrap::{
    BootstrapError, BootstrapOptions, BootstrapReport, bootstrap_with,
};
use opsplane_shared::config::Config;
use opsplane_shared::execution::{
    BoxFuture, ControlError, ExecutionControl, ExecutionState, ExecutionStatus,
};
use opsplane_shared::local::{LocalError, MotoServer};
use opsplane_statemachines::{Description, Engine, EngineError, FunctionError, Status};
use serde_json::Value;
use thiserror::Error;

/// The region and account the local engine writes into ARNs.
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
/// The lock function's name, as registered on the local engine and deployed.
pub const LOCK_FUNCTION: &str = "lock";
/// The event bus the local plane's definitions publish their outcome events to (`${EventBusName}`).
pub const EVENT_BUS: &str = "default";
/// Step Functions' optimized EventBridge integration, served on the local plane by EventBridge on moto.
pub const PUT_EVENTS: &str = "arn:aws:states:::events:putEvents";

/// The workflows and their definitions, as deployed (the files in `statemachines/definitions/`).
pub const WORKFLOWS: [(&str, &str); 6] = [
    (
        "backup",
        include_str!("../../statemachines/definitions/backup.asl.json"),
    ),
    (
        "dr-drill",
        include_str!("../../statemachines/definitions/dr-drill.asl.json"),
    ),
    (
        "provision",
        include_str!("../../statemachines/definitions/provision.asl.json"),
    ),
    (
        "rollback",
        include_str!("../../statemachines/definitions/rollback.asl.json"),
    ),
    (
        "health-sweep",
        include_str!("../../statemachines/definitions/health-sweep.asl.json"),
    ),
    (
        "drift",
        include_str!("../../statemachines/definitions/drift.asl.json"),
    ),
];

/// The `${...}` placeholders of the definitions and the function each names, as CloudFormation's
/// `DefinitionSubstitutions` fill them in the deployed stack.
pub const FUNCTIONS: [(&str, &str); 5] = [
    ("LockFunctionArn", LOCK_FUNCTION),
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
    /// The workflow name is not one of [`WORKFLOWS`].
    #[error(
        "unknown workflow {0:?}; one of backup, dr-drill, provision, rollback, health-sweep, drift"
    )]
    UnknownWorkflow(String),
}

/// [`ExecutionControl`] over the local engine: what a rollback stops and what approve/reject answer.
#[derive(Clone)]
pub struct EngineControl(pub Engine);

fn engine_control_error(err: EngineError) -> ControlError {
    match err {
        EngineError::TaskDoesNotExist(token) => ControlError::TaskGone(token),
        EngineError::ExecutionDoesNotExist(arn) => ControlError::NoExecution(arn),
        other => ControlError::Service {
            operation: "local engine",
            source: Box::new(other),
        },
    }
}

impl ExecutionControl for EngineControl {
    fn stop<'a>(
        &'a self,
        execution_arn: &'a str,
        error: &'a str,
        cause: &'a str,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            self.0
                .stop_execution(
                    execution_arn,
                    Some(error.to_owned()),
                    Some(cause.to_owned()),
                )
                .map_err(engine_control_error)
        })
    }

    fn send_task_success<'a>(
        &'a self,
        task_token: &'a str,
        output: Value,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            self.0
                .send_task_success(task_token, output)
                .map_err(engine_control_error)
        })
    }

    fn send_task_failure<'a>(
        &'a self,
        task_token: &'a str,
        error: &'a str,
        cause: &'a str,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            self.0
                .send_task_failure(task_token, error, cause)
                .map_err(engine_control_error)
        })
    }
}

/// [`ExecutionStatus`] over the local engine: a lock whose holder execution has ended is stale.
#[derive(Clone)]
pub struct EngineExecutions(pub Engine);

impl ExecutionStatus for EngineExecutions {
    fn state<'a>(&'a self, execution_arn: &'a str) -> BoxFuture<'a, ExecutionState> {
        Box::pin(async move {
            match self.0.describe_execution(execution_arn) {
                Ok(d) if d.status == Status::Running => ExecutionState::Running,
                Ok(d) => ExecutionState::NotRunning {
                    status: d.status.as_str().to_owned(),
                },
                Err(err) => ExecutionState::Unknown {
                    reason: err.to_string(),
                },
            }
        })
    }
}

/// The error a handler returns, as the engine hands it to `Retry`/`Catch`.
pub fn function_error(err: OpsError) -> FunctionError {
    FunctionError::new(err.name().as_str(), err.full_message())
}

/// The engine with every function and workflow registered, over one configuration.
pub struct LocalPlane {
    /// Where state lives (moto's endpoint, table, bucket).
    pub config: Config,
    /// Clients pointed at moto.
    pub clients: Clients,
    /// The local engine.
    pub engine: Engine,
    machines: HashMap<&'static str, String>,
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
        let clients = Clients::load(&config).await;
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
        let engine = Engine::with_account(REGION, ACCOUNT);
        let mut plane = Self {
            config,
            clients,
            engine,
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

    /// The environment lock as the `lock` function sees it (backend from the configuration).
    pub fn lock(&self) -> Arc<dyn opsplane_shared::lock::Lock> {
        let executions: Arc<dyn ExecutionStatus> = Arc::new(EngineExecutions(self.engine.clone()));
        opsplane_shared::lock::from_config(&self.config, &self.clients, executions)
    }

    /// (Re-)registers every function; `backup` takes the given deps so tests can move its clock or point
    /// its probe at a local PostgreSQL.
    pub fn register_functions(&self, backup: opsplane_fn_backup::Deps) {
        let lock = opsplane_fn_lock::LockDeps::new(self.lock());
        self.engine
            .register_handler(LOCK_FUNCTION, move |input: Value, _ctx| {
                let lock = lock.clone();
                async move {
                    opsplane_fn_lock::handle(&lock, input)
                        .await
                        .map_err(function_error)
                }
            });
        let probe_settings = backup.probe_settings.clone();
        opsplane_fn_backup::register(&self.engine, backup);
        let events = self.clients.events.clone();
        self.engine
            .register_handler(PUT_EVENTS, move |parameters: Value, ctx| {
                let events = events.clone();
                async move {
                    opsplane_shared::aws::events::put_events_integration(
                        &events,
                        &parameters,
                        &ctx.execution_arn,
                    )
                    .await
                    .map_err(|e| FunctionError::new(e.error_name(), e.to_string()))
                }
            });
        opsplane_fn_provision::register(
            &self.engine,
            opsplane_fn_provision::Deps::new(self.config.clone(), &self.clients),
        );
        opsplane_fn_health_check::register(
            &self.engine,
            // Every SQL probe of the plane reaches the same endpoint override (a local PostgreSQL).
            opsplane_fn_health_check::Deps::new(self.config.clone(), &self.clients)
                .with_probe_settings(probe_settings),
        );
        opsplane_fn_rollback::register(
            &self.engine,
            opsplane_fn_rollback::Deps::with_executions(
                self.config.clone(),
                &self.clients,
                Arc::new(EngineExecutions(self.engine.clone())),
                Arc::new(EngineControl(self.engine.clone())),
            ),
        );
    }

    /// Approves the change `execution` waits for, in-process (a separate CLI process cannot reach this
    /// process's local engine).
    pub async fn approve(
        &self,
        execution: &str,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<opsplane_shared::state::ApprovalRecord, crate::approve::ApproveError> {
        crate::approve::decide(
            &self.state(),
            &EngineControl(self.engine.clone()),
            execution,
            crate::approve::Decision::Approve,
            actor,
            reason,
        )
        .await
    }

    /// Rejects the change `execution` waits for, in-process: it ends `ApprovalRejected`, nothing changed.
    pub async fn reject(
        &self,
        execution: &str,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<opsplane_shared::state::ApprovalRecord, crate::approve::ApproveError> {
        crate::approve::decide(
            &self.state(),
            &EngineControl(self.engine.clone()),
            execution,
            crate::approve::Decision::Reject,
            actor,
            reason,
        )
        .await
    }

    /// The state store of this plane.
    pub fn state(&self) -> opsplane_shared::state::StateStore {
        opsplane_shared::state::StateStore::from_config(&self.config, &self.clients)
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
        for (name, definition) in WORKFLOWS {
            let arn = self
                .engine
                .register_state_machine(name, definition, &substitutions)?;
            self.machines.insert(name, arn);
        }
        Ok(())
    }

    /// The state machine ARN of a workflow.
    pub fn state_machine(&self, workflow: &str) -> Result<&str, PlaneError> {
        self.machines
            .get(workflow)
            .map(String::as_str)
            .ok_or_else(|| PlaneError::UnknownWorkflow(workflow.to_owned()))
    }

    /// Starts a workflow and waits for it to end.
    pub async fn run(&self, workflow: &str, input: Value) -> Result<Description, PlaneError> {
        let arn = self.state_machine(workflow)?;
        let execution = self.engine.start_execution(arn, None, input)?;
        Ok(self.engine.wait_for(&execution).await?)
    }
}

/// Seeding an environment into the local world failed.
#[derive(Debug, Error)]
pub enum SeedError {
    /// The spec does not parse or validate.
    #[error("the environment spec is invalid: {0}")]
    Spec(String),
    /// An AWS call against moto failed.
    #[error("{operation} failed while seeding the local world: {}", aws_smithy_types::error::display::DisplayErrorContext(source.as_ref()))]
    Aws {
        /// The AWS operation.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: opsplane_shared::error::BoxError,
    },
}

fn seed_err<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
) -> impl FnOnce(E) -> SeedError {
    move |source| SeedError::Aws {
        operation,
        source: Box::new(source),
    }
}

impl LocalPlane {
    /// Makes an environment exist in the local world as a platform team runs it: its spec stored at
    /// `specs/<env>/spec.yaml`, its RDS instances and EKS cluster and node groups created in moto.
    pub async fn seed_environment(
        &self,
        spec_yaml: &str,
    ) -> Result<opsplane_shared::domain::spec::EnvironmentSpec, SeedError> {
        let spec = opsplane_shared::domain::spec::EnvironmentSpec::parse(spec_yaml)
            .map_err(|e| SeedError::Spec(e.to_string()))?;
        self.clients
            .s3
            .put_object()
            .bucket(&self.config.bucket_name)
            .key(format!("specs/{}/spec.yaml", spec.environment))
            .body(spec_yaml.as_bytes().to_vec().into())
            .send()
            .await
            .map_err(seed_err("PutObject"))?;
        for db in &spec.rds {
            self.clients
                .rds
                .create_db_instance()
                .db_instance_identifier(&db.identifier)
                .db_instance_class(&db.instance_class)
                .engine(&db.engine)
                .set_engine_version(db.engine_version.clone())
                .allocated_storage(db.allocated_storage_gb.map_or(20, |gb| gb as i32))
                .master_username("app")
                .master_user_password("local-only-password")
                .send()
                .await
                .map_err(seed_err("CreateDBInstance"))?;
        }
        if let Some(eks) = &spec.eks {
            self.clients
                .eks
                .create_cluster()
                .name(&eks.cluster)
                .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/eks-cluster"))
                .resources_vpc_config(
                    aws_sdk_eks::types::VpcConfigRequest::builder()
                        .subnet_ids("subnet-local-a")
                        .build(),
                )
                .set_version(eks.version.clone())
                .send()
                .await
                .map_err(seed_err("CreateCluster"))?;
            for ng in &eks.nodegroups {
                self.clients
                    .eks
                    .create_nodegroup()
                    .cluster_name(&eks.cluster)
                    .nodegroup_name(&ng.name)
                    .node_role(format!("arn:aws:iam::{ACCOUNT}:role/eks-node"))
                    .subnets("subnet-local-a")
                    .set_instance_types(Some(ng.instance_types.clone()))
                    .send()
                    .await
                    .map_err(seed_err("CreateNodegroup"))?;
            }
        }
        Ok(spec)
    }
}
