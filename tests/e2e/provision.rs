//! The provision workflow on the local engine against moto: create from the dev example, a second run that
//! plans nothing, approval (reject changes nothing, approve applies), policy violations, bad input, lint.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use opsplane_fn_lock::LockDeps;
use opsplane_local::LocalPlane;
use opsplane_shared::aws::eks::Eks;
use opsplane_shared::aws::rds::Rds;
use opsplane_shared::domain::plan::{ActualCluster, ActualInstance};
use opsplane_shared::state::{
    ApprovalRecord, ApprovalStatus, DeploymentRecord, DeploymentStatus, StateStore,
};
use opsplane_statemachines::{Description, Status};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backup::assert_fails_naming;
use crate::harness::{World, root, unique};

/// What a test's `/health` endpoint answers, decided per request.
pub type Answer = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = u16> + Send>> + Send + Sync>;

/// Serves `GET /health` on a loopback port, answering the status `answer` gives for each request (body
/// `ok` for 200, `failing` otherwise). Returns the URL.
pub async fn serve_health(answer: Answer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = sock.read(&mut buf).await;
                let status = answer().await;
                let body = if status == 200 { "ok" } else { "failing" };
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/health")
}

/// A `/health` that always answers 200.
pub async fn healthy_endpoint() -> String {
    serve_health(Arc::new(|| Box::pin(async { 200 }))).await
}

/// One test's environment on the local plane.
pub struct Stage {
    /// The world (moto, own table and bucket).
    pub world: World,
    /// The plane as deployed.
    pub local: LocalPlane,
    /// The environment's unique name.
    pub env: String,
    /// The world's security group for the environment's databases, which the examples' stand for.
    pub security_groups: Vec<String>,
    /// The world's subnets for the environment's cluster, which the examples' stand for.
    pub subnets: Vec<String>,
    /// The secret holding the environment's Redis AUTH token (`opsplane/<env>/redis-auth`), which the
    /// examples' stands for.
    pub redis_secret: String,
}

/// The environment's network in the world (its DB subnet group `<env>-db`, the name the examples' groups
/// take once renamed, a security group admitting the probe, and the VPC's subnets): its security groups
/// and subnets.
async fn placed(local: &LocalPlane, env: &str) -> (Vec<String>, Vec<String>) {
    let region = &local.config.region;
    let network = local.world.network(region, env).await;
    let subnets = local.world.subnets(region, env).await;
    (
        network
            .expect("the environment's network")
            .security_group_ids,
        subnets.expect("the environment's subnets"),
    )
}

/// The environment's Redis AUTH token in a secret under `opsplane/`, as the operator keeps it: its ARN.
async fn redis_secret(world: &World, env: &str) -> String {
    world
        .clients
        .secrets_manager
        .create_secret()
        .name(format!("opsplane/{env}/redis-auth"))
        .secret_string("a-token-of-thirty-two-characters")
        .send()
        .await
        .expect("the Redis AUTH token's secret")
        .arn
        .expect("the secret's ARN")
}

impl Stage {
    /// A fresh plane and a unique environment name.
    pub async fn new() -> Self {
        let world = World::new().await;
        let (local, _) = LocalPlane::connect(world.config.clone())
            .await
            .expect("local plane over moto");
        let env = unique("e");
        let (security_groups, subnets) = placed(&local, &env).await;
        let redis_secret = redis_secret(&world, &env).await;
        Self {
            world,
            local,
            env,
            security_groups,
            subnets,
            redis_secret,
        }
    }

    /// Another environment on the same plane (same world, table and bucket).
    pub async fn new_sharing(other: &Stage) -> Self {
        let (local, _) = LocalPlane::connect(other.world.config.clone())
            .await
            .expect("local plane over moto");
        let env = unique("e");
        let (security_groups, subnets) = placed(&local, &env).await;
        let world = World::from_config(other.world.config.clone()).await;
        let redis_secret = redis_secret(&world, &env).await;
        Self {
            world,
            local,
            env,
            security_groups,
            subnets,
            redis_secret,
        }
    }

    /// `examples/<name>.yaml` for this test: every `acme-<name>` resource and the environment renamed to
    /// The staging example resized from db.t4g.medium to db.t4g.large, with the resize waiting for approval.
    pub fn staging_resize_needing_approval(spec: &str) -> String {
        spec.replace(
            "approval: { required: false }",
            "approval: { required: true }",
        )
        .replace(
            "instance_class: db.t4g.medium",
            "instance_class: db.t4g.large",
        )
    }

    /// the test's unique name, and the HTTP health check pointed at `health_url`.
    pub fn example(&self, name: &str, health_url: &str) -> String {
        let text = std::fs::read_to_string(root().join("examples").join(format!("{name}.yaml")))
            .expect("example spec");
        let public_url = text
            .lines()
            .find_map(|l| l.split("url: \"").nth(1))
            .and_then(|rest| rest.split('"').next())
            .expect("the example has an HTTP check")
            .to_owned();
        // The examples' security group and subnet ids and their Redis AUTH token's secret stand for the
        // environment's, which the world made.
        let groups = self.security_groups.join(", ");
        let subnets = self.subnets.join(", ");
        let text: String = text
            .lines()
            .map(|line| {
                if let Some((head, _)) = line.split_once("vpc_security_group_ids: [") {
                    format!("{head}vpc_security_group_ids: [{groups}]\n")
                } else if let Some((head, _)) = line.split_once("security_group_ids: [") {
                    format!("{head}security_group_ids: [{groups}]\n")
                } else if let Some((head, _)) = line.split_once("auth_token_secret: ") {
                    format!("{head}auth_token_secret: {}\n", self.redis_secret)
                } else if line.trim_start().starts_with("redis_ping:") {
                    // These planes' health checks have no Redis server to PING (redis_drill has one).
                    String::new()
                } else if let Some((head, _)) = line.split_once("subnet_ids: [") {
                    format!("{head}subnet_ids: [{subnets}]\n")
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        text.replace(&public_url, health_url)
            .replace(&format!("acme-{name}"), &self.env)
            .replace(
                &format!("environment: {name}"),
                &format!("environment: {}", self.env),
            )
            .replace(
                &format!("Environment: {name}"),
                &format!("Environment: {}", self.env),
            )
    }

    /// A provision whose plan waits for a person: approved by jane, run to success. The plan approved.
    pub async fn provision_approved(&self) -> Value {
        let run = self
            .local
            .start_workflow("provision", json!({ "environment": self.env }))
            .unwrap();
        let pending = self.pending_approval(&run).await;
        self.local
            .approve(&run, "jane", None)
            .await
            .expect("approve");
        assert_succeeded(&self.local.engine.wait_for(&run).await.unwrap());
        pending.plan
    }

    /// The drift report of the environment now: its spec in force against what AWS holds.
    pub async fn drift(&self) -> opsplane_fn_provision::drift::DriftReport {
        let deps = self.local.provision_deps(&self.local.clients);
        opsplane_fn_provision::drift::report(&deps, &self.env)
            .await
            .expect("drift report")
    }

    /// A fixture under tests/fixtures/specs with `{env}` replaced.
    pub fn fixture(&self, name: &str) -> String {
        std::fs::read_to_string(root().join("tests/fixtures/specs").join(name))
            .expect("fixture")
            .replace("{env}", &self.env)
    }

    /// Uploads a spec; returns its version id.
    pub async fn upload(&self, yaml: &str) -> String {
        self.local
            .upload_spec(yaml)
            .await
            .expect("upload spec")
            .version
    }

    /// Runs a workflow to its end.
    pub async fn run(&self, workflow: &str, input: Value) -> Description {
        self.local.run(workflow, input).await.expect("execution")
    }

    /// Runs `provision` for the environment to its end.
    pub async fn provision(&self) -> Description {
        self.run("provision", json!({ "environment": self.env }))
            .await
    }

    /// The state store.
    pub fn store(&self) -> StateStore {
        self.local.state()
    }

    /// An RDS instance as described.
    pub async fn instance(&self, id: &str) -> Option<ActualInstance> {
        Rds::new(self.world.clients.rds.clone())
            .actual(id)
            .await
            .expect("describe instance")
    }

    /// An instance's class as RDS describes it, and the class a pending modification would give it.
    pub async fn class_and_pending(&self, id: &str) -> (Option<String>, Option<String>) {
        let described = self
            .local
            .clients
            .rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .expect("describe instance");
        let i = &described.db_instances()[0];
        (
            i.db_instance_class().map(str::to_owned),
            i.pending_modified_values()
                .and_then(|p| p.db_instance_class())
                .map(str::to_owned),
        )
    }

    /// The EKS cluster as described.
    pub async fn cluster(&self, name: &str) -> Option<ActualCluster> {
        Eks::new(self.world.clients.eks.clone())
            .actual(name)
            .await
            .expect("describe cluster")
    }

    /// Changes an instance's class directly in moto, behind opsplane's back.
    pub async fn set_class_behind_our_back(&self, id: &str, class: &str) {
        self.world
            .clients
            .rds
            .modify_db_instance()
            .db_instance_identifier(id)
            .db_instance_class(class)
            .apply_immediately(true)
            .send()
            .await
            .expect("modify in moto");
    }

    /// The environment's deployments, newest first.
    pub async fn deployments(&self) -> Vec<DeploymentRecord> {
        self.store()
            .latest(&self.env, 50)
            .await
            .expect("deployments")
    }

    /// Waits until `execution` has recorded a pending approval (it is then paused at the approval step).
    pub async fn pending_approval(&self, execution: &str) -> ApprovalRecord {
        for _ in 0..1000 {
            if let Some(r) = self.store().approval(execution).await.expect("approval") {
                return r;
            }
            let d = self.local.engine.describe_execution(execution).unwrap();
            assert_eq!(d.status, Status::Running, "{:?} {:?}", d.error, d.cause);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{execution} never asked for approval");
    }

    /// Whether another holder can take the environment's lock now.
    pub async fn lock_is_free(&self) -> bool {
        let lock = LockDeps::from_config(&self.world.config, &self.world.clients);
        let holder = format!(
            "arn:aws:states:us-east-1:123456789012:execution:probe:{}",
            unique("h")
        );
        match opsplane_fn_lock::handle(
            &lock,
            json!({"action": "acquire", "environment": self.env, "holder": holder, "operation": "test", "lease_seconds": 60}),
        )
        .await
        {
            Ok(grant) => {
                opsplane_fn_lock::handle(
                    &lock,
                    json!({"action": "release", "environment": self.env, "holder": holder, "token": grant["token"]}),
                )
                .await
                .expect("release the probe");
                true
            }
            Err(e) if e.name().as_str() == "LockHeld" => false,
            Err(e) => panic!("lock check: {e}"),
        }
    }
}

/// The run succeeded (or the test fails with its error and cause).
pub fn assert_succeeded(run: &Description) {
    assert_eq!(
        run.status,
        Status::Succeeded,
        "{:?}: {:?}",
        run.error,
        run.cause
    );
}

#[tokio::test]
async fn the_dev_example_is_created_and_a_second_run_changes_nothing() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let version = stage.upload(&stage.example("dev", &url)).await;
    let db = format!("{}-db", stage.env);
    assert!(stage.instance(&db).await.is_none());

    let run = stage.provision().await;
    assert_succeeded(&run);
    // The instance was `creating`, then `backing-up`, and the cluster `CREATING`, before it was stable.
    assert!(
        crate::harness::not_ready_by_state(&stage.local.engine, &run.execution_arn)
            .contains_key("WaitStable")
    );

    let i = stage.instance(&db).await.expect("the instance was created");
    assert_eq!(i.instance_class, "db.t4g.micro");
    assert_eq!(i.engine_version.as_deref(), Some("16.4"));
    assert_eq!(i.storage_encrypted, Some(true));
    assert_eq!(i.publicly_accessible, Some(false));
    assert_eq!(
        i.tags.get("ManagedBy").map(String::as_str),
        Some("opsplane")
    );
    assert_eq!(i.tags.get("Project").map(String::as_str), Some("acme"));
    let cluster = stage
        .cluster(&stage.env)
        .await
        .expect("the cluster was created");
    assert_eq!(cluster.status, "ACTIVE");
    assert_eq!(cluster.version.as_deref(), Some("1.30"));
    assert_eq!(
        cluster.tags.get("ManagedBy").map(String::as_str),
        Some("opsplane")
    );
    let ng = &cluster.nodegroups[0];
    assert_eq!(ng.name, "general");
    assert_eq!((ng.min, ng.max, ng.desired), (Some(1), Some(3), Some(1)));
    assert_eq!(ng.version.as_deref(), Some("1.30"));

    let deployments = stage.deployments().await;
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0].status, DeploymentStatus::Succeeded);
    assert_eq!(deployments[0].spec_version, version);
    assert_eq!(deployments[0].execution, run.execution_arn);
    let meta = stage.store().meta(&stage.env).await.unwrap();
    assert_eq!(meta.last_known_good.unwrap().spec_version, version);
    assert_eq!(meta.in_force.unwrap().spec_version, version);
    assert!(stage.lock_is_free().await);

    // The same spec again: nothing to plan, nothing changed, nothing recorded.
    let again = stage.provision().await;
    assert_succeeded(&again);
    let out = again.output.as_ref().unwrap();
    assert_eq!(out["plan"]["empty"], true, "{out}");
    assert_eq!(out["plan"]["changes"], json!([]));
    assert_eq!(stage.deployments().await.len(), 1);
    assert_eq!(stage.instance(&db).await.unwrap(), i);
    assert!(stage.lock_is_free().await);
}

#[tokio::test]
async fn prod_waits_for_approval_reject_changes_nothing_and_approve_applies() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let v1 = stage.example("prod", &url);
    stage.upload(&v1).await;
    let db = format!("{}-db", stage.env);

    // Prod asks for approval of everything, its creation included.
    let first = stage
        .local
        .start_workflow("provision", json!({ "environment": stage.env }))
        .unwrap();
    stage.pending_approval(&first).await;
    assert!(
        stage.instance(&db).await.is_none(),
        "nothing before approval"
    );
    stage
        .local
        .approve(&first, "jane", Some("initial build"))
        .await
        .expect("approve");
    assert_succeeded(&stage.local.engine.wait_for(&first).await.unwrap());
    assert_eq!(
        stage.instance(&db).await.unwrap().instance_class,
        "db.r6g.large"
    );

    // A bigger instance class: the execution waits, RUNNING, its approval recorded.
    stage
        .upload(&v1.replacen(
            "instance_class: db.r6g.large",
            "instance_class: db.r6g.xlarge",
            1,
        ))
        .await;
    let change = stage
        .local
        .start_workflow("provision", json!({ "environment": stage.env }))
        .unwrap();
    let pending = stage.pending_approval(&change).await;
    assert_eq!(pending.status, ApprovalStatus::Pending);
    assert_eq!(pending.environment, stage.env);
    assert_eq!(pending.plan["changes"][0]["field"], "instance_class");
    assert_eq!(
        stage
            .local
            .engine
            .describe_execution(&change)
            .unwrap()
            .status,
        Status::Running
    );
    assert!(
        !stage.lock_is_free().await,
        "the waiting deployment holds the lock"
    );

    // Rejected: failed with ApprovalRejected, nothing changed, the lock released, who and why recorded.
    let decided = stage
        .local
        .reject(&change, "sam", Some("not during the sale"))
        .await
        .expect("reject");
    assert_eq!(decided.status, ApprovalStatus::Rejected);
    let rejected = stage.local.engine.wait_for(&change).await.unwrap();
    assert_eq!(rejected.status, Status::Failed);
    assert_eq!(rejected.error.as_deref(), Some("ApprovalRejected"));
    assert!(rejected.cause.unwrap().contains("not during the sale"));
    assert_eq!(
        stage.instance(&db).await.unwrap().instance_class,
        "db.r6g.large"
    );
    assert!(stage.lock_is_free().await);
    let record = stage.store().approval(&change).await.unwrap().unwrap();
    assert_eq!(record.decided_by.as_deref(), Some("sam"));
    assert_eq!(record.reason.as_deref(), Some("not during the sale"));
    let latest = &stage.deployments().await[0];
    assert_eq!(latest.status, DeploymentStatus::Failed);
    assert!(
        latest
            .error
            .as_deref()
            .unwrap()
            .starts_with("ApprovalRejected")
    );
    // A decision is taken once.
    assert!(stage.local.approve(&change, "jane", None).await.is_err());

    // Asked again and approved: applied, with a pre-change snapshot of the instance.
    let retry = stage
        .local
        .start_workflow("provision", json!({ "environment": stage.env }))
        .unwrap();
    stage.pending_approval(&retry).await;
    stage
        .local
        .approve(&retry, "jane", Some("after the sale"))
        .await
        .expect("approve");
    let applied = stage.local.engine.wait_for(&retry).await.unwrap();
    assert_succeeded(&applied);
    assert_eq!(
        stage.instance(&db).await.unwrap().instance_class,
        "db.r6g.xlarge"
    );
    let snapshots = applied.output.as_ref().unwrap()["snapshots"]["snapshots"].clone();
    assert_eq!(snapshots.as_array().unwrap().len(), 1, "{snapshots}");
    let snap = Rds::new(stage.world.clients.rds.clone())
        .snapshot(snapshots[0].as_str().unwrap())
        .await
        .unwrap()
        .expect("the pre-change snapshot exists");
    assert_eq!(snap.instance, db);
    assert_eq!(snap.status, "available");
    assert!(stage.lock_is_free().await);
}

#[tokio::test]
async fn unencrypted_or_public_instances_are_policy_violations_and_nothing_is_created() {
    for (fixture, rule) in [
        ("unencrypted.yaml", "encryption"),
        ("public.yaml", "public-access"),
    ] {
        let stage = Stage::new().await;
        stage.upload(&stage.fixture(fixture)).await;
        let run = stage.provision().await;
        assert_eq!(run.status, Status::Failed, "{fixture}");
        assert_eq!(run.error.as_deref(), Some("PolicyViolation"), "{fixture}");
        let cause = run.cause.unwrap_or_default();
        assert!(
            cause.contains(rule) && cause.contains("nothing was changed"),
            "{cause}"
        );
        for suffix in ["plain", "ok", "open"] {
            assert!(
                stage
                    .instance(&format!("{}-{suffix}", stage.env))
                    .await
                    .is_none(),
                "{fixture}: nothing is created"
            );
        }
        assert!(stage.lock_is_free().await, "{fixture}");
        let records = stage.deployments().await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].status, DeploymentStatus::Failed);
    }
}

#[tokio::test]
async fn every_workflow_refuses_bad_input_naming_the_field_and_touches_nothing() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    stage.upload(&stage.example("dev", &url)).await;
    let alarm = std::fs::read_to_string(root().join("tests/fixtures/events/alarm-staging.json"))
        .unwrap()
        .replace("{env}", "nobody-owns");
    let cases = [
        ("provision", json!({}), "environment"),
        (
            "provision",
            json!({"environment": stage.env, "extra": 1}),
            "extra",
        ),
        ("provision", json!({"environment": "Prod!"}), "environment"),
        (
            "provision",
            json!({"environment": "nosuchenv"}),
            "environment",
        ),
        (
            "provision",
            json!({"environment": stage.env, "spec_version": "no-such-version"}),
            "spec_version",
        ),
        ("rollback", json!({}), "environment"),
        (
            "rollback",
            json!({"environment": stage.env, "reason": "r", "why": 1}),
            "why",
        ),
        (
            "rollback",
            serde_json::from_str::<Value>(&alarm).unwrap(),
            "detail.alarmName",
        ),
        // An alarm event sent through dispatch (it carries the GitHub context EventBridge never adds) does not
        // choose the environment: refused before any alarm is resolved.
        (
            "rollback",
            {
                let mut forged: Value =
                    serde_json::from_str(&alarm.replace("nobody-owns", &stage.env)).unwrap();
                forged["github"] = json!({"repository": "acme/infra", "environment": "staging"});
                forged
            },
            "github",
        ),
        // An alarm of this environment in an input that names another: it acts on neither.
        (
            "rollback",
            {
                let mut other: Value =
                    serde_json::from_str(&alarm.replace("nobody-owns", &stage.env)).unwrap();
                other["environment"] = json!("someone-else");
                other
            },
            "environment",
        ),
        ("health-sweep", json!({"bogus": 1}), "bogus"),
        (
            "health-sweep",
            json!({"environments": ["nosuchenv"]}),
            "environments[0]",
        ),
        ("drift", json!({"bogus": 1}), "bogus"),
        (
            "drift",
            json!({"environments": ["nosuchenv"]}),
            "environments[0]",
        ),
        ("fleet", json!({}), "operation"),
        (
            "fleet",
            json!({"operation": "restore-everything"}),
            "operation",
        ),
        ("fleet", json!({"operation": "backup", "bogus": 1}), "bogus"),
        (
            "fleet",
            json!({"operation": "drill-rotation", "environments": ["nosuchenv"]}),
            "environments[0]",
        ),
    ];
    for (workflow, input, field) in cases {
        let run = stage.run(workflow, input.clone()).await;
        assert_fails_naming(&run, field, &input);
    }
    let alarm_run = stage
        .run("rollback", serde_json::from_str::<Value>(&alarm).unwrap())
        .await;
    let cause = alarm_run.cause.unwrap();
    assert!(cause.contains("nobody-owns-api-5xx"), "{cause}");
    // Nothing was created, locked or recorded.
    assert!(stage.instance(&format!("{}-db", stage.env)).await.is_none());
    assert!(stage.deployments().await.is_empty());
    assert!(stage.lock_is_free().await);
}

#[test]
fn every_definition_is_lint_clean() {
    let dir = root().join("statemachines/definitions");
    let mut linted = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".asl.json") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(opsplane_statemachines::lint::lint(&text), vec![], "{name}");
            linted.push(name);
        }
    }
    linted.sort();
    for wanted in ["drift", "fleet", "health-sweep", "provision", "rollback"] {
        assert!(linted.contains(&format!("{wanted}.asl.json")), "{linted:?}");
    }
    // Take the Catch off any state between the lock and the release and the lint names the leak.
    let text = std::fs::read_to_string(dir.join("provision.asl.json")).unwrap();
    for state in ["Plan", "Apply", "WaitStable", "HealthCheck", "Revert"] {
        let mut def: Value = serde_json::from_str(&text).unwrap();
        def["States"][state]
            .as_object_mut()
            .unwrap()
            .remove("Catch");
        let findings = opsplane_statemachines::lint::lint(&def.to_string());
        assert!(
            findings
                .iter()
                .any(|f| f.rule == "resource-release" && f.state == state),
            "{state}: {findings:?}"
        );
    }
}

/// Raises an environment's fence far above every token as soon as the operation `after` has been answered:
/// what a rollback's takeover does while a stopped deployment's Lambda invocation is still applying.
#[derive(Debug, Clone)]
struct TakeoverAfter {
    after: &'static str,
    config: opsplane_shared::Config,
    environment: String,
    done: Arc<std::sync::atomic::AtomicBool>,
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for TakeoverAfter {
    fn name(&self) -> &'static str {
        "TakeoverAfter"
    }

    fn read_after_deserialization(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name().to_owned());
        if operation.as_deref() != Some(self.after)
            || self.done.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        // Interceptors are synchronous: the takeover's write acts apart, before the apply goes on.
        let (config, environment) = (self.config.clone(), self.environment.clone());
        crate::harness::acting_apart(&self.config, move |clients| async move {
            StateStore::from_config(&config, &clients)
                .raise_fence(&environment, 1_000_000)
                .await
                .expect("the takeover's fence");
        });
        Ok(())
    }
}

#[tokio::test]
async fn a_deployment_that_loses_its_lock_between_two_calls_makes_no_further_call() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let v1 = stage.example("dev", &url);
    stage.upload(&v1).await;
    assert_succeeded(&stage.provision().await);
    let db = format!("{}-db", stage.env);
    // Two changes: the node group grows (EKS, called first), the instance is resized (RDS, called after).
    let grow = "min: 1, max: 3, desired: 1, capacity_type: SPOT }";
    assert!(v1.contains(grow) && v1.contains("instance_class: db.t4g.micro"));
    stage
        .upload(
            &v1.replace(grow, "min: 1, max: 3, desired: 2, capacity_type: SPOT }")
                .replace(
                    "instance_class: db.t4g.micro",
                    "instance_class: db.t4g.small",
                ),
        )
        .await;
    let takeover = TakeoverAfter {
        after: "UpdateNodegroupConfig",
        config: stage.local.config.clone(),
        environment: stage.env.clone(),
        done: Arc::default(),
    };
    let clients = stage
        .local
        .clients
        .clone()
        .with_interceptor(takeover.clone());
    stage.local.register(stage.local.provision_deps(&clients));
    let run = stage.provision().await;
    assert!(takeover.done.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(run.status, Status::Failed, "{:?}", run.cause);
    // The call made before the takeover stands; the one after it was never made.
    let ng = &stage.cluster(&stage.env).await.unwrap().nodegroups[0];
    assert_eq!(ng.desired, Some(2));
    let (class, pending) = stage.class_and_pending(&db).await;
    assert_eq!(class.as_deref(), Some("db.t4g.micro"));
    assert_eq!(pending, None, "no resize was asked for");
}

#[tokio::test]
async fn an_environment_changed_while_its_approval_waits_ends_plan_changed_with_nothing_applied() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let db = format!("{}-db", stage.env);
    let v1 = stage.example("staging", &url);
    stage.upload(&v1).await;
    assert_succeeded(&stage.provision().await);
    stage
        .upload(&Stage::staging_resize_needing_approval(&v1))
        .await;
    let run = stage
        .local
        .start_workflow("provision", json!({ "environment": stage.env }))
        .unwrap();
    let waiting = stage.pending_approval(&run).await;
    let approved_hash = waiting.plan_sha256.clone().expect("the plan's hash");
    assert_eq!(approved_hash.len(), 64);

    // A decision naming another plan is refused and decides nothing.
    let executions = opsplane_local::EngineExecutions(stage.local.engine.clone());
    let refused = opsplane_shared::approval::decide(
        &stage.store(),
        &executions,
        &run,
        opsplane_shared::approval::Decision::Approve,
        "jane",
        None,
        Some(&"0".repeat(64)),
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().contains(&approved_hash), "{refused}");
    assert_eq!(
        stage.store().approval(&run).await.unwrap().unwrap().status,
        ApprovalStatus::Pending
    );

    // While it waits, someone resizes the instance by hand; the plan approved (medium -> large) is not
    // what would now be applied (xlarge -> large).
    stage.set_class_behind_our_back(&db, "db.t4g.xlarge").await;
    opsplane_shared::approval::decide(
        &stage.store(),
        &executions,
        &run,
        opsplane_shared::approval::Decision::Approve,
        "jane",
        Some("looked fine"),
        Some(&approved_hash),
    )
    .await
    .expect("approve");
    let done = stage.local.engine.wait_for(&run).await.unwrap();
    assert_eq!(done.status, Status::Failed);
    assert_eq!(
        done.error.as_deref(),
        Some("PlanChanged"),
        "{:?}",
        done.cause
    );
    assert!(
        done.cause
            .as_deref()
            .is_some_and(|c| c.contains(&approved_hash))
    );
    // Nothing applied: the hand-made class stands, no pre-change snapshot was taken, the lock is free.
    let (class, pending) = stage.class_and_pending(&db).await;
    assert_eq!(class.as_deref(), Some("db.t4g.xlarge"));
    assert_eq!(pending, None);
    assert!(stage.lock_is_free().await);
    let latest = &stage.deployments().await[0];
    assert_eq!(latest.status, DeploymentStatus::Failed);
    assert!(
        latest
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("PlanChanged"))
    );
}
