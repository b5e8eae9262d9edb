//! The engine's API: state machines, handlers, executions, history, task tokens.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::watch;

use crate::error::{EngineError, Failure, MAX_HISTORY_EVENTS, ValidationError};
pub use crate::execution::{Description, Status};
use crate::execution::{ExecState, Execution, Inner, Machine, Started, TokenReply};
pub use crate::handler::{FunctionError, Handler, HandlerFuture, TaskContext, function_name};
pub use crate::history::{EventType, HistoryEvent};
use crate::item_reader::ItemReader;
use crate::model::{self, MachineType};
use crate::probe::Probe;

/// The local Step Functions engine. Cheap to clone; every clone shares the same state.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("region", &self.inner.region)
            .field("account", &self.inner.account)
            .finish()
    }
}

/// Applies CloudFormation `DefinitionSubstitutions`: every `${Name}` becomes its value.
pub fn substitute(
    definition: &str,
    substitutions: &HashMap<String, String>,
) -> Result<String, EngineError> {
    let mut out = String::with_capacity(definition.len());
    let mut rest = definition;
    while let Some(pos) = rest.find("${") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        match after.find('}') {
            Some(end)
                if after[..end]
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
                    && end > 0 =>
            {
                let name = &after[..end];
                let value = substitutions
                    .get(name)
                    .ok_or_else(|| EngineError::MissingSubstitution(name.to_string()))?;
                out.push_str(value);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

impl Engine {
    /// An engine with region `us-east-1` and account `123456789012`.
    pub fn new() -> Self {
        Self::with_account("us-east-1", "123456789012")
    }

    /// An engine whose ARNs use this region and account.
    pub fn with_account(region: &str, account: &str) -> Self {
        Self::build(region, account, true)
    }

    /// An engine that keeps no history events (for benchmarks and bulk runs).
    pub fn without_history() -> Self {
        Self::build("us-east-1", "123456789012", false)
    }

    fn build(region: &str, account: &str, record_history: bool) -> Self {
        Engine {
            inner: Arc::new(Inner {
                region: region.to_string(),
                account: account.to_string(),
                handlers: RwLock::default(),
                machines: RwLock::default(),
                executions: RwLock::default(),
                tokens: Mutex::default(),
                item_reader: RwLock::default(),
                record_history,
                history_quota: AtomicUsize::new(MAX_HISTORY_EVENTS),
                latest_ms: AtomicI64::new(0),
                invocations: Default::default(),
                invocation_slots: RwLock::default(),
            }),
        }
    }

    /// Sets the history quota of STANDARD executions started from now on: AWS's 25,000 events by
    /// default; `None` lifts it (for measuring the engine on workloads larger than AWS would run).
    pub fn set_history_quota(&self, events: Option<usize>) {
        self.inner
            .history_quota
            .store(events.unwrap_or(usize::MAX), Ordering::Relaxed);
    }

    /// Bounds how many handler calls run at once, in real time (`None`: unbounded). A call waits for a slot
    /// before it starts, and its Task's timeout counts from then: the bound only orders work in real time
    /// (a local world that serves one request at a time), never a task's virtual time.
    pub fn set_invocation_limit(&self, calls: Option<usize>) {
        *self.inner.invocation_slots.write().expect("slots lock") =
            calls.map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1))));
    }

    /// The engine's "now" outside any execution: the latest virtual time a task of any execution was called
    /// at, or the real time when that is later. Executions each run on their own virtual clock from their
    /// start; what happens between them (a test's own reads, the CLI) is timed by this one.
    pub fn now(&self) -> DateTime<Utc> {
        let latest = self.inner.latest_ms.load(Ordering::Relaxed);
        let real = Utc::now();
        DateTime::from_timestamp_millis(latest)
            .filter(|t| *t > real)
            .unwrap_or(real)
    }

    /// Moves the engine's "now" forward to `t` (never back): days passing between executions, as a
    /// simulated month of nightly runs needs. Executions started afterwards start at `t` or later.
    pub fn advance_to(&self, t: DateTime<Utc>) {
        self.inner
            .latest_ms
            .fetch_max(t.timestamp_millis(), Ordering::Relaxed);
    }

    /// Registers (or replaces) the handler of a function. `name` is the function name; definitions may
    /// refer to it by full ARN, partial ARN or bare name, with or without a qualifier. A name that
    /// starts with `arn:aws:states:::` registers a handler for that service integration instead.
    pub fn register_handler<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(Value, TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, FunctionError>> + Send + 'static,
    {
        let key = if name.starts_with("arn:aws:states:::") {
            name.to_string()
        } else {
            function_name(name).to_string()
        };
        let h: Handler = Arc::new(move |v, ctx| Box::pin(f(v, ctx)));
        self.inner
            .handlers
            .write()
            .expect("handlers lock")
            .insert(key, h);
    }

    /// Sets the S3 port DISTRIBUTED Maps read their `ItemReader` through.
    pub fn set_item_reader(&self, reader: Arc<dyn ItemReader>) {
        *self.inner.item_reader.write().expect("reader lock") = Some(reader);
    }

    /// Validates a definition after applying `substitutions` and registers it under `name`. Returns
    /// the state machine's ARN. Registering the same name again replaces the definition.
    pub fn register_state_machine(
        &self,
        name: &str,
        definition: &str,
        substitutions: &HashMap<String, String>,
    ) -> Result<String, EngineError> {
        self.register_state_machine_as(name, definition, substitutions, MachineType::Standard)
    }

    /// As [`Engine::register_state_machine`], for a machine of the given type: an EXPRESS machine is
    /// validated as AWS validates one (no `.waitForTaskToken` or `.sync` integrations), and its
    /// executions keep no history the API can read.
    pub fn register_state_machine_as(
        &self,
        name: &str,
        definition: &str,
        substitutions: &HashMap<String, String>,
        machine_type: MachineType,
    ) -> Result<String, EngineError> {
        let text = substitute(definition, substitutions)?;
        let value: Value =
            serde_json::from_str(&text).map_err(|e| ValidationError::NotJson(e.to_string()))?;
        let model = model::parse_value_as(&value, machine_type)?;
        let arn = format!(
            "arn:aws:states:{}:{}:stateMachine:{}",
            self.inner.region, self.inner.account, name
        );
        let m = Arc::new(Machine {
            arn: arn.clone(),
            name: name.to_string(),
            model: Arc::new(model),
            machine_type,
        });
        self.inner
            .machines
            .write()
            .expect("machines lock")
            .insert(arn.clone(), m);
        Ok(arn)
    }

    /// Validates a definition without registering it.
    pub fn validate(definition: &str) -> Result<(), ValidationError> {
        model::parse(definition).map(|_| ())
    }

    /// Starts an execution and returns its ARN. A name that already exists returns the existing
    /// execution when the input is the same (idempotent, as AWS), and `ExecutionAlreadyExists` otherwise.
    pub fn start_execution(
        &self,
        state_machine_arn: &str,
        name: Option<String>,
        input: Value,
    ) -> Result<String, EngineError> {
        self.start_with(state_machine_arn, name, input, None)
    }

    /// Starts an execution, with a probe for a TestState run.
    pub(crate) fn start_with(
        &self,
        state_machine_arn: &str,
        name: Option<String>,
        input: Value,
        probe: Option<Arc<Probe>>,
    ) -> Result<String, EngineError> {
        let machine = self.machine(state_machine_arn)?;
        // One clock for every execution of the engine: an execution started from outside starts no
        // earlier than the latest virtual time any task has run at, so what it sees happened before it.
        match self.start_at(machine, name, input, self.now(), probe)? {
            Started::New(exec) | Started::Existing(exec) => Ok(exec.arn.clone()),
        }
    }

    /// A registered state machine.
    pub(crate) fn machine(&self, state_machine_arn: &str) -> Result<Arc<Machine>, EngineError> {
        self.inner
            .machines
            .read()
            .expect("machines lock")
            .get(state_machine_arn)
            .cloned()
            .ok_or_else(|| EngineError::StateMachineDoesNotExist(state_machine_arn.to_string()))
    }

    /// Starts an execution of `machine` whose virtual clock starts at `start`: an execution started by
    /// another one (a `states:startExecution` task, a DISTRIBUTED Map's child) starts at its parent's
    /// virtual time, not at the engine's latest. A name already used with the same input answers the
    /// existing execution, which the caller judges (the API's idempotency depends on its status).
    pub(crate) fn start_at(
        &self,
        machine: Arc<Machine>,
        name: Option<String>,
        input: Value,
        start: DateTime<Utc>,
        probe: Option<Arc<Probe>>,
    ) -> Result<Started, EngineError> {
        let name = name.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let arn = format!(
            "arn:aws:states:{}:{}:execution:{}:{}",
            self.inner.region, self.inner.account, machine.name, name
        );
        let exec = {
            let mut execs = self.inner.executions.write().expect("executions lock");
            if let Some(existing) = execs.get(&arn) {
                if existing.input == input {
                    return Ok(Started::Existing(existing.clone()));
                }
                return Err(EngineError::ExecutionAlreadyExists(arn));
            }
            let (done, _) = watch::channel(false);
            let (abort, _) = watch::channel(None);
            let exec = Arc::new(Execution {
                arn: arn.clone(),
                name,
                machine,
                input,
                start,
                state: Mutex::new(ExecState {
                    status: Status::Running,
                    output: None,
                    error: None,
                    cause: None,
                    stop_date: None,
                }),
                history: Mutex::new(Vec::new()),
                done,
                abort,
                history_full: AtomicBool::new(false),
                probe,
            });
            execs.insert(arn, exec.clone());
            exec
        };
        let inner = self.inner.clone();
        let running = exec.clone();
        tokio::spawn(async move {
            // An engine bug must not leave the execution RUNNING forever: record it as a failure.
            let run =
                std::panic::AssertUnwindSafe(crate::runtime::run_execution(inner, running.clone()));
            if futures::FutureExt::catch_unwind(run).await.is_err() {
                crate::runtime::record_crash(&running);
            }
        });
        Ok(Started::New(exec))
    }

    /// The execution with this ARN.
    pub(crate) fn execution(&self, arn: &str) -> Result<Arc<Execution>, EngineError> {
        self.inner
            .executions
            .read()
            .expect("executions lock")
            .get(arn)
            .cloned()
            .ok_or_else(|| EngineError::ExecutionDoesNotExist(arn.to_string()))
    }

    /// Waits until the execution is no longer RUNNING and describes it.
    pub async fn wait_for(&self, execution_arn: &str) -> Result<Description, EngineError> {
        self.execution(execution_arn)?.ended().await;
        self.describe_execution(execution_arn)
    }

    /// Starts an execution of a registered machine (named by a fresh UUID) and waits for it.
    pub async fn run(
        &self,
        state_machine_arn: &str,
        input: Value,
    ) -> Result<Description, EngineError> {
        let arn = self.start_execution(state_machine_arn, None, input)?;
        self.wait_for(&arn).await
    }

    /// `DescribeExecution`.
    pub fn describe_execution(&self, execution_arn: &str) -> Result<Description, EngineError> {
        Ok(self.execution(execution_arn)?.describe())
    }

    /// `ListExecutions` over every state machine: the ARN of every execution started, sorted.
    pub fn list_executions(&self) -> Vec<String> {
        let mut arns: Vec<String> = self
            .inner
            .executions
            .read()
            .expect("executions lock")
            .keys()
            .cloned()
            .collect();
        arns.sort();
        arns
    }

    /// True while the execution is RUNNING (what a lock asks of its holder).
    pub fn is_running(&self, execution_arn: &str) -> bool {
        self.describe_execution(execution_arn)
            .map(|d| d.status == Status::Running)
            .unwrap_or(false)
    }

    /// `GetExecutionHistory`: every event so far, oldest first.
    pub fn history(&self, execution_arn: &str) -> Result<Vec<HistoryEvent>, EngineError> {
        let exec = self.execution(execution_arn)?;
        // GetExecutionHistory does not serve EXPRESS executions: their history goes to CloudWatch Logs.
        if exec.machine.machine_type == MachineType::Express {
            return Err(EngineError::ExpressHistory(execution_arn.to_string()));
        }
        Ok(exec.history.lock().expect("history lock").clone())
    }

    /// `StopExecution`: the execution ends ABORTED with this error and cause.
    pub fn stop_execution(
        &self,
        execution_arn: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<(), EngineError> {
        self.execution(execution_arn)?
            .stop(error.unwrap_or_default(), cause.unwrap_or_default());
        Ok(())
    }

    /// `SendTaskSuccess`.
    pub fn send_task_success(&self, task_token: &str, output: Value) -> Result<(), EngineError> {
        self.send_task_success_at(task_token, output, None)
    }

    /// `SendTaskSuccess` made at virtual time `at`: the waiting task ends then, not at the virtual time it
    /// started waiting (a person who answers after ten hours answers ten hours later), or times out if `at`
    /// is past its `TimeoutSeconds`.
    pub fn send_task_success_at(
        &self,
        task_token: &str,
        output: Value,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), EngineError> {
        if output.to_string().len() > crate::error::MAX_PAYLOAD_BYTES {
            return Err(EngineError::PayloadTooLarge);
        }
        self.reply(task_token, TokenReply::Success(output, at))
    }

    /// `SendTaskFailure`.
    pub fn send_task_failure(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), EngineError> {
        self.send_task_failure_at(task_token, error, cause, None)
    }

    /// `SendTaskFailure` made at virtual time `at` (see [`Engine::send_task_success_at`]).
    pub fn send_task_failure_at(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), EngineError> {
        self.reply(
            task_token,
            TokenReply::Failure(Failure::new(error, cause), at),
        )
    }

    /// `SendTaskHeartbeat`: restarts the task's `HeartbeatSeconds` countdown.
    pub fn send_task_heartbeat(&self, task_token: &str) -> Result<(), EngineError> {
        let tokens = self.inner.tokens.lock().expect("tokens lock");
        let slot = tokens
            .get(task_token)
            .ok_or_else(|| EngineError::TaskDoesNotExist(task_token.to_string()))?;
        slot.heartbeat.send_modify(|n| *n += 1);
        Ok(())
    }

    fn reply(&self, task_token: &str, reply: TokenReply) -> Result<(), EngineError> {
        let sender = self
            .inner
            .tokens
            .lock()
            .expect("tokens lock")
            .get_mut(task_token)
            .and_then(|s| s.reply.take())
            .ok_or_else(|| EngineError::TaskDoesNotExist(task_token.to_string()))?;
        sender
            .send(reply)
            .map_err(|_| EngineError::TaskDoesNotExist(task_token.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_from_arns() {
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123:function:lock"),
            "lock"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123:function:lock:prod"),
            "lock"
        );
        assert_eq!(function_name("123:function:lock:$LATEST"), "lock");
        assert_eq!(function_name("lock:$LATEST"), "lock");
        assert_eq!(function_name("lock"), "lock");
    }

    #[test]
    fn substitutions() {
        let subs: HashMap<String, String> =
            [("LockFunctionArn".to_string(), "arn:x".to_string())].into();
        assert_eq!(
            substitute("{\"R\": \"${LockFunctionArn}\"}", &subs).unwrap(),
            "{\"R\": \"arn:x\"}"
        );
        assert_eq!(
            substitute("${Missing}", &subs),
            Err(EngineError::MissingSubstitution("Missing".into()))
        );
        assert_eq!(substitute("cost: $5 {x}", &subs).unwrap(), "cost: $5 {x}");
    }
}
