//! The test harness: one moto server per test binary, unique resource names per test.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use opsplane_local::MotoServer;
use opsplane_shared::Config;
use opsplane_shared::aws::Clients;

static MOTO: OnceLock<MotoServer> = OnceLock::new();
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The project root (the workspace holding this crate).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The moto server of this test binary, started on first use. Panics, saying to run `make setup`, when the
/// project's `.venv` is missing: a test that needs AWS never skips.
pub fn moto() -> &'static MotoServer {
    // Every function error any test produces must read as words: one that shows Rust ends the run.
    opsplane_local::register::strict_readable();
    MOTO.get_or_init(|| match MotoServer::start(&root()) {
        Ok(server) => server,
        Err(err) => panic!("the local AWS world could not start: {err}"),
    })
}

/// One test's view of the local world.
pub struct World {
    /// The configuration pointing at moto, with this test's own table and bucket names.
    pub config: Config,
    /// Clients built from it.
    pub clients: Clients,
    /// A prefix unique to this test, for any further names.
    prefix: String,
}

impl World {
    /// A fresh world: shared moto, unique names.
    pub async fn new() -> Self {
        let prefix = unique("t");
        let table = format!("{prefix}-table");
        let bucket = format!("{prefix}-bucket");
        let config = Config::local(moto().endpoint(), table, bucket);
        let clients = Clients::load(&config).await;
        Self {
            config,
            clients,
            prefix,
        }
    }

    /// A world over an existing configuration (a second view of the same table and bucket).
    pub async fn from_config(config: Config) -> Self {
        let clients = Clients::load(&config).await;
        Self {
            prefix: unique("t"),
            config,
            clients,
        }
    }

    /// An object of the state bucket, which the test expects to exist.
    pub async fn object(&self, key: &str) -> Vec<u8> {
        self.clients
            .s3
            .get_object()
            .bucket(&self.config.bucket_name)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {key}: {e}"))
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
            .to_vec()
    }

    /// A name unique to this test, from `what`.
    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }
}

/// A name no other test in any run of this binary uses: lowercase, digits and '-', valid for S3 and DynamoDB.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}-{n}-{nanos:x}", std::process::id())
}

/// Asserts that `secret` appears nowhere the control plane keeps or shows anything: no item of the world's
/// table, no version of any object in its bucket, no execution of `engine` (input, output, cause, every
/// history event), and not in `logs` (what [`opsplane_shared::telemetry::capture`] collected). Also looks for
/// the forms JSON would escape it to. Panics naming where it was found.
pub async fn assert_secret_absent(
    world: &World,
    engine: &opsplane_statemachines::Engine,
    secret: &str,
    logs: &str,
) {
    assert!(
        secret.len() >= 6,
        "a secret this short would match by chance"
    );
    let escaped = serde_json::to_string(secret).expect("a string serialises");
    let forms = [secret.to_owned(), escaped[1..escaped.len() - 1].to_owned()];
    let found = |text: &str| forms.iter().any(|f| text.contains(f.as_str()));

    let mut start = None;
    let mut items = 0;
    loop {
        let page = world
            .clients
            .dynamodb
            .scan()
            .table_name(&world.config.table_name)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan the table");
        for item in page.items() {
            items += 1;
            assert!(
                !found(&format!("{item:?}")),
                "the secret is in a table item: pk={:?}",
                item.get("pk")
            );
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }

    let s3 = &world.clients.s3;
    let bucket = &world.config.bucket_name;
    let versions = s3
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .expect("list object versions");
    assert!(
        !versions.is_truncated().unwrap_or(false),
        "more versions than one page"
    );
    let mut objects = 0;
    for v in versions.versions() {
        let (key, id) = (v.key().expect("key"), v.version_id().expect("version id"));
        objects += 1;
        assert!(!found(key), "the secret is in an object key: {key}");
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .version_id(id)
            .send()
            .await
            .expect("get an object version")
            .body
            .collect()
            .await
            .expect("read an object version")
            .into_bytes();
        let text = String::from_utf8_lossy(&body);
        assert!(
            !found(&text),
            "the secret is in s3://{bucket}/{key} version {id}"
        );
    }

    let executions = engine.list_executions();
    for arn in &executions {
        let d = engine
            .describe_execution(arn)
            .expect("describe an execution");
        let described = serde_json::to_string(&d).expect("a description serialises");
        assert!(
            !found(&described),
            "the secret is in the input, output or cause of {arn}"
        );
        for event in engine.history(arn).expect("history") {
            let text = serde_json::to_string(&event).expect("an event serialises");
            assert!(
                !found(&text),
                "the secret is in history event {} of {arn}",
                event.id
            );
        }
    }

    assert!(!found(logs), "the secret is in the captured logs");
    // The scan saw something: a scan of nothing proves nothing.
    assert!(items > 0 && objects > 0 && !executions.is_empty() && !logs.is_empty());
}

/// An execution service that answers every `DescribeExecution` with one status and refuses the rest: the
/// holder a lock test needs (always running, or long ended) without running an execution.
pub struct FixedExecutions(pub &'static str);

impl FixedExecutions {
    /// Every holder runs: only the lease ends a lock.
    pub const RUNNING: FixedExecutions = FixedExecutions("RUNNING");
    /// Every holder has ended: a lock is stale as soon as it is asked for.
    pub const ENDED: FixedExecutions = FixedExecutions("FAILED");
}

impl opsplane_shared::ports::Executions for FixedExecutions {
    fn describe<'a>(
        &'a self,
        _execution_arn: &'a str,
    ) -> opsplane_shared::future::BoxFuture<
        'a,
        Result<
            opsplane_shared::ports::executions::ExecutionDescription,
            opsplane_shared::ports::executions::ExecutionError,
        >,
    > {
        Box::pin(async move {
            Ok(opsplane_shared::ports::executions::ExecutionDescription {
                status: self.0.to_owned(),
                output: None,
                error: None,
                cause: None,
            })
        })
    }

    fn start<'a>(
        &'a self,
        state_machine_arn: &'a str,
        _name: &'a str,
        _input: &'a serde_json::Value,
    ) -> opsplane_shared::future::BoxFuture<
        'a,
        Result<
            opsplane_shared::ports::executions::Started,
            opsplane_shared::ports::executions::ExecutionError,
        >,
    > {
        let refused = opsplane_shared::ports::executions::ExecutionError::NoStateMachine(
            state_machine_arn.to_owned(),
        );
        Box::pin(async move { Err(refused) })
    }

    fn stop<'a>(
        &'a self,
        execution_arn: &'a str,
        _error: &'a str,
        _cause: &'a str,
    ) -> opsplane_shared::future::BoxFuture<
        'a,
        Result<(), opsplane_shared::ports::executions::ExecutionError>,
    > {
        let refused = opsplane_shared::ports::executions::ExecutionError::NoExecution(
            execution_arn.to_owned(),
        );
        Box::pin(async move { Err(refused) })
    }

    fn history<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> opsplane_shared::future::BoxFuture<
        'a,
        Result<
            Vec<opsplane_shared::ports::executions::HistoryEvent>,
            opsplane_shared::ports::executions::ExecutionError,
        >,
    > {
        let refused = opsplane_shared::ports::executions::ExecutionError::NoExecution(
            execution_arn.to_owned(),
        );
        Box::pin(async move { Err(refused) })
    }

    fn send_task_success<'a>(
        &'a self,
        task_token: &'a str,
        _output: serde_json::Value,
    ) -> opsplane_shared::future::BoxFuture<
        'a,
        Result<(), opsplane_shared::ports::executions::ExecutionError>,
    > {
        let refused =
            opsplane_shared::ports::executions::ExecutionError::TaskGone(task_token.to_owned());
        Box::pin(async move { Err(refused) })
    }

    fn send_task_failure<'a>(
        &'a self,
        task_token: &'a str,
        _error: &'a str,
        _cause: &'a str,
    ) -> opsplane_shared::future::BoxFuture<
        'a,
        Result<(), opsplane_shared::ports::executions::ExecutionError>,
    > {
        let refused =
            opsplane_shared::ports::executions::ExecutionError::TaskGone(task_token.to_owned());
        Box::pin(async move { Err(refused) })
    }
}

/// Every `NotReady` answer of `execution`'s polls, in order: the state that met it and when. Each failure is
/// traced to its state through `previous_event_id`, so a Map's or Parallel's interleaved branches are told
/// apart.
pub fn not_ready(
    engine: &opsplane_statemachines::Engine,
    execution: &str,
) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
    use opsplane_statemachines::HistoryEvent;
    fn state_of<'a>(
        by_id: &std::collections::HashMap<u64, &'a HistoryEvent>,
        mut event: &'a HistoryEvent,
    ) -> String {
        while !event.event_type.ends_with("StateEntered") {
            match by_id.get(&event.previous_event_id) {
                Some(previous) => event = previous,
                None => return String::new(),
            }
        }
        event.details["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
    let history = engine.history(execution).expect("the execution's history");
    let by_id: std::collections::HashMap<u64, &HistoryEvent> =
        history.iter().map(|e| (e.id, e)).collect();
    history
        .iter()
        .filter(|e| e.event_type == "TaskFailed" && e.details["error"] == "NotReady")
        .map(|e| (state_of(&by_id, e), e.timestamp))
        .collect()
}

/// How many `NotReady` answers each state of `execution` met, by state name: the polls that found a
/// resource still on its way (the world's model takes time).
pub fn not_ready_by_state(
    engine: &opsplane_statemachines::Engine,
    execution: &str,
) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for (state, _) in not_ready(engine, execution) {
        *out.entry(state).or_default() += 1;
    }
    out
}

/// Runs `work` to its end with clients of its own for `config`, on a runtime of its own in a thread of its
/// own: what an SDK interceptor (synchronous) does when it stands for another actor acting between two calls.
pub fn acting_apart<T, F>(
    config: &Config,
    work: impl FnOnce(opsplane_shared::aws::Clients) -> F + Send + 'static,
) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    let config = config.clone();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime of its own")
            .block_on(async move { work(opsplane_shared::aws::Clients::load(&config).await).await })
    })
    .join()
    .expect("the other actor's thread")
}

/// A moment in a run's virtual time, `after` past the first request it is shown: for an interceptor that
/// acts once, partway into a run (an alarm that fires ten minutes into a bake, a taker twelve hours in).
#[derive(Debug, Default)]
pub struct Later {
    first: std::sync::Mutex<Option<i64>>,
    reached: std::sync::Mutex<Option<i64>>,
}

impl Later {
    /// The request's virtual time (epoch ms), the first time it is at least `after` past the first request
    /// shown; `None` before, and after that once.
    pub fn due(
        &self,
        request: &aws_smithy_runtime_api::client::orchestrator::HttpRequest,
        after: chrono::Duration,
    ) -> Option<i64> {
        let at = request
            .headers()
            .get(opsplane_local::world::TIME_HEADER)?
            .parse::<i64>()
            .ok()?;
        let first = *self.first.lock().unwrap().get_or_insert(at);
        let mut reached = self.reached.lock().unwrap();
        if at < first + after.num_milliseconds() || reached.is_some() {
            return None;
        }
        *reached = Some(at);
        Some(at)
    }

    /// When it was reached, if it was.
    pub fn reached(&self) -> Option<i64> {
        *self.reached.lock().unwrap()
    }
}

/// Sets alarm `name` to `state`, once, as soon as a CloudWatch `operation` (`DescribeAlarms`,
/// `ListAlarmMuteRules`) of the clients carrying it is `after` past its first one in virtual time: an alarm
/// that fires partway into a bake, or recovers partway into its mute window.
#[derive(Debug, Clone)]
pub struct SetsAlarmAfter {
    /// The plane's configuration (the setter acts with clients of its own).
    pub config: Config,
    /// The alarm.
    pub name: String,
    /// The CloudWatch operation whose requests are watched.
    pub operation: &'static str,
    /// The state it is set to.
    pub state: aws_sdk_cloudwatch::types::StateValue,
    /// How far past the first watched request in virtual time.
    pub after: chrono::Duration,
    /// When it was set.
    pub when: std::sync::Arc<Later>,
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for SetsAlarmAfter {
    fn name(&self) -> &'static str {
        "SetsAlarmAfter"
    }

    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let request = context.request();
        if !request
            .uri()
            .ends_with(&format!("/operation/{}", self.operation))
        {
            return Ok(());
        }
        if self.when.due(request, self.after).is_none() {
            return Ok(());
        }
        let (name, state) = (self.name.clone(), self.state.clone());
        acting_apart(&self.config, move |clients| async move {
            clients
                .cloudwatch
                .set_alarm_state()
                .alarm_name(&name)
                .state_reason(format!("Threshold Crossed: set to {state} by the test"))
                .state_value(state)
                .send()
                .await
                .expect("set the alarm's state");
        });
        Ok(())
    }
}

/// An execution's state transitions and Lambda invocations, counted from its history as Step Functions
/// and Lambda bill them: every state entered plus every retried attempt of a task (each attempt is an
/// invocation, a `TaskScheduled` event).
pub fn billed(engine: &opsplane_statemachines::Engine, execution: &str) -> (usize, usize) {
    let h = engine.history(execution).unwrap();
    let entered = h
        .iter()
        .filter(|e| e.event_type.ends_with("StateEntered"))
        .count();
    let scheduled = h.iter().filter(|e| e.event_type == "TaskScheduled").count();
    let task_entries = h
        .iter()
        .filter(|e| e.event_type == "TaskStateEntered")
        .count();
    (entered + scheduled - task_entries, scheduled)
}

/// The cost of `transitions` and `invocations` per one of `units` (`what`), at the list prices for
/// us-east-1: Step Functions Standard $0.025 per 1,000 transitions; Lambda arm64 $0.20 per 1M requests and
/// $0.0000133334 per GB-s, here 128 MB billed 100 ms per invocation.
pub fn cost_per(transitions: usize, invocations: usize, units: usize, what: &str) -> String {
    let sfn = transitions as f64 * 0.000_025;
    let lambda = invocations as f64 * (0.20 / 1e6 + 0.125 * 0.1 * 0.000_013_333_4);
    format!(
        "${:.6} per {what} (${sfn:.4} transitions + ${lambda:.4} Lambda in all)",
        (sfn + lambda) / units as f64
    )
}
