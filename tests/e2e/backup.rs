//! The backup workflow on the local engine against moto: snapshots, manifest, catalog, lock, retention.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_rds::types::Tag;
use chrono::Utc;
use opsplane_fn_backup::Deps;
use opsplane_fn_backup::probe::ProbeSettings;
use opsplane_fn_lock::LockDeps;
use opsplane_local::LocalPlane;
use opsplane_shared::aws::objects::sha256_hex;
use opsplane_shared::clock::{Clock, ManualClock};
use opsplane_shared::domain::backup::{
    MANAGED_BY_VALUE, Manifest, TAG_BACKUP_ID, TAG_ENVIRONMENT, TAG_MANAGED_BY,
};
use opsplane_shared::state::{BackupRecord, BackupStatus, StateStore};
use opsplane_statemachines::{Description, Engine, Status};
use serde_json::{Value, json};

use crate::harness::{World, root, unique};

/// The local plane of one test: moto, a bootstrapped table and bucket, an environment with its spec and
/// resources, and an engine running the real definitions with the lock and backup functions in-process.
pub struct Plane {
    /// The world.
    pub world: World,
    /// The environment's name.
    pub env: String,
    /// The spec, as uploaded.
    pub spec: opsplane_shared::domain::spec::EnvironmentSpec,
    /// The plane: engine, functions and workflows as deployed.
    pub local: LocalPlane,
    /// The engine.
    pub engine: Engine,
    /// The backup state machine.
    pub backup: String,
    /// The drill state machine.
    pub drill: String,
}

/// A workflow's definition as deployed.
fn workflow(name: &str) -> &'static str {
    name.parse::<opsplane_statemachines::Workflow>()
        .expect("a known workflow")
        .definition()
}

/// The backup function's deps over `local`'s clients (so its calls meet the plane's world in the model of
/// AWS), with the probe pointed at `probe`.
pub fn deps(local: &LocalPlane, probe: ProbeSettings) -> Deps {
    Deps::new(local.config.clone(), &local.clients).with_probe_settings(probe)
}

impl Plane {
    /// A plane whose environment follows `fixture` (under tests/fixtures/specs), with its RDS instances and
    /// EKS cluster created in moto, wired as `opsplane run --local` and the demo wire it.
    pub async fn new(fixture: &str, probe: ProbeSettings) -> Self {
        let world = World::new().await;
        let (local, _report) = LocalPlane::connect(world.config.clone())
            .await
            .expect("local plane over moto");
        local.register_functions(deps(&local, probe));
        let env = unique("e");
        let mut text = std::fs::read_to_string(root().join("tests/fixtures/specs").join(fixture))
            .expect("fixture")
            .replace("{env}", &env);
        if text.contains("{probe_secret}") {
            let arn = crate::postgres::probe_secret(&world).await;
            text = text.replace("{probe_secret}", &arn);
        }
        if text.contains("{redis_secret}") {
            let arn = crate::redis_server::auth_secret(&world, &env).await;
            text = text.replace("{redis_secret}", &arn);
        }
        let spec = local
            .seed_environment(&text)
            .await
            .expect("seed the environment");
        let backup = local.state_machine("backup").expect("backup").to_owned();
        let drill = local
            .state_machine("dr-drill")
            .expect("dr-drill")
            .to_owned();
        Self {
            engine: local.engine.clone(),
            local,
            world,
            env,
            spec,
            backup,
            drill,
        }
    }

    /// Replaces the backup function's deps (e.g. with a clock moved forward).
    pub fn reregister(&self, deps: Deps) {
        self.local.register_functions(deps);
    }

    /// An environment backed up once and drilled once, the drill missing its RTO target
    /// (`drill-tight-rto.yaml`: no restore meets one minute), so that its report and history carry a verdict
    /// beside the figures.
    pub async fn backed_up_and_drilled_past_its_target() -> Self {
        let plane = Self::new("drill-tight-rto.yaml", ProbeSettings::default()).await;
        let backup = plane.run_backup().await;
        assert_eq!(backup.status, Status::Succeeded, "{:?}", backup.cause);
        let drill = plane
            .engine
            .run(&plane.drill, json!({ "environment": plane.env }))
            .await
            .unwrap();
        assert_eq!(drill.error.as_deref(), Some("TargetMissed"));
        plane
    }

    /// Runs the health sweep over the environment; the reasons its recorded verdict gives for `check`
    /// (`sql`, `redis-ping`, ...).
    pub async fn health_reasons(&self, check: &str) -> Vec<Value> {
        let run = self
            .local
            .run("health-sweep", json!({ "environments": [self.env] }))
            .await
            .unwrap();
        assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
        let records: Vec<opsplane_shared::state::HealthRecord> =
            self.store().latest(&self.env, 1).await.unwrap();
        let record = records.first().expect("the sweep recorded a verdict");
        record
            .reasons
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["check"] == check)
            .cloned()
            .collect()
    }

    /// Runs the backup workflow for the environment.
    pub async fn run_backup(&self) -> Description {
        self.engine
            .run(&self.backup, json!({ "environment": self.env }))
            .await
            .expect("backup execution")
    }

    /// The catalog.
    pub fn store(&self) -> StateStore {
        StateStore::from_config(&self.world.config, &self.world.clients)
    }

    /// An RDS client of the world in `region` (the plane's own when `None`).
    pub fn rds_in(&self, region: Option<&str>) -> aws_sdk_rds::Client {
        match region {
            None => self.world.clients.rds.clone(),
            Some(r) => {
                let conf = self
                    .world
                    .clients
                    .rds
                    .config()
                    .to_builder()
                    .region(aws_sdk_rds::config::Region::new(r.to_owned()))
                    .build();
                aws_sdk_rds::Client::from_conf(conf)
            }
        }
    }

    /// Manual snapshots of `instance`, by id, with their tags.
    pub async fn snapshots(
        &self,
        region: Option<&str>,
        instance: &str,
    ) -> BTreeMap<String, BTreeMap<String, String>> {
        self.rds_in(region)
            .describe_db_snapshots()
            .db_instance_identifier(instance)
            .snapshot_type("manual")
            .send()
            .await
            .expect("describe snapshots")
            .db_snapshots()
            .iter()
            .filter(|s| s.snapshot_type() == Some("manual"))
            .map(|s| {
                (
                    s.db_snapshot_identifier().unwrap_or_default().to_owned(),
                    s.tag_list()
                        .iter()
                        .map(|t| {
                            (
                                t.key().unwrap_or_default().to_owned(),
                                t.value().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect(),
                )
            })
            .collect()
    }

    /// An object of the state bucket.
    pub async fn object(&self, key: &str) -> Vec<u8> {
        self.world.object(key).await
    }

    /// Whether another holder can take the environment's lock now (it was released).
    pub async fn lock_is_free(&self) -> bool {
        let lock = LockDeps::from_config(&self.world.config, &self.world.clients);
        let holder = format!(
            "arn:aws:states:us-east-1:123456789012:execution:probe:{}",
            unique("h")
        );
        let got = opsplane_fn_lock::handle(
            &lock,
            json!({"action": "acquire", "environment": self.env, "holder": holder, "operation": "test", "lease_seconds": 60}),
        )
        .await;
        match got {
            Ok(grant) => {
                let _ = opsplane_fn_lock::handle(
                    &lock,
                    json!({"action": "release", "environment": self.env, "holder": holder, "token": grant["token"]}),
                )
                .await;
                true
            }
            Err(e) if e.name().as_str() == "LockHeld" => false,
            Err(e) => panic!("lock check: {e}"),
        }
    }
}

/// `run` failed with `InvalidInput` and its cause names `field`.
pub fn assert_fails_naming(run: &Description, field: &str, input: &Value) {
    assert_eq!(run.status, Status::Failed, "{input}");
    assert_eq!(run.error.as_deref(), Some("InvalidInput"), "{input}");
    assert!(
        run.cause
            .as_deref()
            .unwrap_or_default()
            .contains(&format!("`{field}`")),
        "{input}: {:?}",
        run.cause
    );
}

fn output(d: &Description) -> &Value {
    d.output.as_ref().expect("output of a succeeded execution")
}

#[tokio::test]
async fn backup_of_three_instances_snapshots_manifests_records_and_unlocks() {
    let plane = Plane::new("three-instances.yaml", ProbeSettings::default()).await;
    let run = plane.run_backup().await;
    assert_eq!(
        run.status,
        Status::Succeeded,
        "{:?} {:?}",
        run.error,
        run.cause
    );
    let out = output(&run);
    let backup_id = out["plan"]["backup_id"].as_str().unwrap().to_owned();

    // One tagged snapshot per instance, and its tagged copy in the second region.
    for db in &plane.spec.rds {
        for region in [None, Some("us-west-2")] {
            let snaps = plane.snapshots(region, &db.identifier).await;
            let snaps: Vec<_> = snaps
                .into_iter()
                .filter(|(_, t)| t.get(TAG_ENVIRONMENT) == Some(&plane.env))
                .collect();
            assert_eq!(snaps.len(), 1, "{} in {region:?}: {snaps:?}", db.identifier);
            let tags = &snaps[0].1;
            assert_eq!(tags.get(TAG_BACKUP_ID), Some(&backup_id));
            assert_eq!(
                tags.get(TAG_MANAGED_BY).map(String::as_str),
                Some(MANAGED_BY_VALUE)
            );
        }
    }

    // The manifest lists every snapshot and object, and every hash matches the stored bytes.
    let manifest_key = out["manifest"]["manifest_key"].as_str().unwrap();
    assert!(manifest_key.starts_with(&format!("backups/{}/", plane.env)));
    assert!(manifest_key.ends_with("/manifest.json"));
    let manifest_bytes = plane.object(manifest_key).await;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest.snapshots.len(), 3);
    assert!(manifest.snapshots.iter().all(|s| {
        s.copy
            .as_deref()
            .is_some_and(|c| c.starts_with("us-west-2:"))
    }));
    let objects: Vec<_> = manifest.all_objects().cloned().collect();
    assert_eq!(
        objects.len(),
        4,
        "three snapshot descriptions and the EKS export"
    );
    assert!(objects.iter().any(|o| o.key.ends_with("/eks.json")));
    for o in &objects {
        let bytes = plane.object(&o.key).await;
        assert_eq!(sha256_hex(&bytes), o.sha256, "{}", o.key);
        assert_eq!(bytes.len() as u64, o.bytes);
    }
    let eks: Value = serde_json::from_slice(
        &plane
            .object(
                &objects
                    .iter()
                    .find(|o| o.key.ends_with("/eks.json"))
                    .unwrap()
                    .key,
            )
            .await,
    )
    .unwrap();
    assert_eq!(eks["cluster"]["name"], format!("{}-eks", plane.env));
    assert_eq!(eks["nodegroups"][0]["nodegroupName"], "general");

    // The catalog record vouches for the manifest.
    let records: Vec<BackupRecord> = plane.store().latest(&plane.env, 10).await.unwrap();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.status, BackupStatus::Completed);
    assert_eq!(r.id, backup_id);
    assert_eq!(r.manifest_key.as_deref(), Some(manifest_key));
    assert_eq!(
        r.manifest_sha256.as_deref(),
        Some(sha256_hex(&manifest_bytes).as_str())
    );
    assert_eq!(r.snapshot_ids.len(), 3);
    assert_eq!(r.execution.as_deref(), Some(run.execution_arn.as_str()));

    assert!(plane.lock_is_free().await, "the lock was released");
    // Every poll met not-ready snapshots and copies at least once (the world's model takes time), and
    // beyond those retries nothing ran twice: 11 top-level states (the Redis Map among them, with no group
    // to snapshot here) and 7 of the instance branch, and 2 per instance (docs/BENCHMARKS.md). The polls
    // are batched: one for the three snapshots, one for the three copies (it names the region), each
    // asked again until all are available.
    let history = plane.engine.history(&run.execution_arn).unwrap();
    let mut polls: BTreeMap<bool, usize> = BTreeMap::new();
    for e in history.iter().filter(|e| e.event_type == "TaskScheduled") {
        let payload = &e.details["parameters"]["Payload"];
        if payload["action"] == "check-snapshots" {
            assert_eq!(
                payload["taken"].as_array().map(Vec::len),
                Some(3),
                "{payload}"
            );
            *polls.entry(payload["region"].is_string()).or_default() += 1;
        }
    }
    assert_eq!(
        polls.len(),
        2,
        "one poll of the snapshots, one of the copies: {polls:?}"
    );
    assert!(
        polls.values().all(|n| *n >= 2),
        "each met not-ready at least once: {polls:?}"
    );
    let retries: usize = polls.values().map(|n| n - 1).sum();
    let not_ready = history
        .iter()
        .filter(|e| e.event_type == "TaskFailed" && e.details["error"] == "NotReady")
        .count();
    assert_eq!(retries, not_ready, "every retry was a not-ready answer");
    assert_eq!(
        crate::drill::transitions(&plane, &run.execution_arn),
        11 + 7 + 3 * 2 + retries
    );
}

#[tokio::test]
async fn bad_input_fails_first_naming_the_field_and_touches_nothing() {
    let plane = Plane::new("retention.yaml", ProbeSettings::default()).await;
    for (input, field) in [
        (json!({}), "environment"),
        (json!({"environment": "Prod!"}), "environment"),
        (json!({"environment": plane.env, "extra": 1}), "extra"),
        (json!({"environment": "nosuchenv"}), "environment"),
    ] {
        let run = plane
            .engine
            .run(&plane.backup, input.clone())
            .await
            .unwrap();
        assert_fails_naming(&run, field, &input);
        let history = plane.engine.history(&run.execution_arn).unwrap();
        let tasks: Vec<_> = history
            .iter()
            .filter(|e| e.event_type == "TaskStateEntered")
            .map(|e| e.details["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        // Validation, then the outcome event: nothing else ran.
        assert_eq!(
            tasks,
            ["ValidateInput", "NotifyValidationFailed"],
            "{input}"
        );
    }
    assert!(
        plane
            .snapshots(None, &format!("{}-db", plane.env))
            .await
            .is_empty()
    );
    assert!(plane.lock_is_free().await);
}

#[tokio::test]
async fn retention_keeps_the_newest_the_foreign_and_the_drilled() {
    let plane = Plane::new("retention.yaml", ProbeSettings::default()).await;
    let instance = format!("{}-db", plane.env);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let run = plane.run_backup().await;
        assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
        let id = output(&run)["manifest"]["snapshot_ids"][0]
            .as_str()
            .unwrap()
            .to_owned();
        ids.push(id);
        // Distinct creation times, so "newest" is well defined.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        plane.snapshots(None, &instance).await.len(),
        3,
        "nothing expired yet"
    );

    // A foreign snapshot without our tags, and one of our snapshots in use by a running drill's instance.
    let foreign = unique("foreign");
    plane
        .world
        .clients
        .rds
        .create_db_snapshot()
        .db_instance_identifier(&instance)
        .db_snapshot_identifier(&foreign)
        .send()
        .await
        .unwrap();
    let drilled = ids[0].clone();
    let scratch = unique("drill");
    plane
        .world
        .clients
        .rds
        .restore_db_instance_from_db_snapshot()
        .db_instance_identifier(&scratch)
        .db_snapshot_identifier(&drilled)
        .db_instance_class("db.t4g.small")
        .tags(
            Tag::builder()
                .key("opsplane:drill")
                .value("running")
                .build(),
        )
        .tags(
            Tag::builder()
                .key("opsplane:drill-snapshot")
                .value(&drilled)
                .build(),
        )
        .tags(
            Tag::builder()
                .key(TAG_ENVIRONMENT)
                .value(&plane.env)
                .build(),
        )
        .send()
        .await
        .unwrap();

    // A year later every snapshot is expired (the handler's clock moves; nothing sleeps).
    let later: Arc<dyn Clock> = Arc::new(ManualClock::at(Utc::now() + chrono::Duration::days(365)));
    plane.reregister(deps(&plane.local, ProbeSettings::default()).with_clock(later));
    let run = plane.run_backup().await;
    assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
    let newest = output(&run)["manifest"]["snapshot_ids"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted: Vec<String> = output(&run)["retention"]["regions"][0]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deleted, [ids[1].clone()]);

    let left: Vec<String> = plane.snapshots(None, &instance).await.into_keys().collect();
    let mut want = vec![newest, ids[2].clone(), drilled, foreign];
    want.sort();
    let mut left_sorted = left.clone();
    left_sorted.sort();
    assert_eq!(
        left_sorted, want,
        "keep_last=2 newest, the drilled one, the foreign one"
    );

    plane
        .world
        .clients
        .rds
        .delete_db_instance()
        .db_instance_identifier(&scratch)
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn rds_adapter_retries_are_idempotent_against_moto() {
    use opsplane_shared::aws::rds::{Network, Rds, RestoreSource};
    let world = World::new().await;
    let rds = Rds::new(world.clients.rds.clone());
    let instance = unique("idem");
    world
        .clients
        .rds
        .create_db_instance()
        .db_instance_identifier(&instance)
        .db_instance_class("db.t4g.small")
        .engine("postgres")
        .allocated_storage(20)
        .master_username("app")
        .master_user_password("not-a-secret-1")
        .send()
        .await
        .unwrap();
    let tags = BTreeMap::from([(TAG_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned())]);
    let snap = format!("{instance}-s");
    let first = rds.create_snapshot(&instance, &snap, &tags).await.unwrap();
    let again = rds.create_snapshot(&instance, &snap, &tags).await.unwrap();
    assert_eq!(
        first.arn, again.arn,
        "a retried CreateDBSnapshot finds the same snapshot"
    );
    assert_eq!(
        first.tags.get(TAG_MANAGED_BY).map(String::as_str),
        Some(MANAGED_BY_VALUE)
    );
    assert_eq!(
        rds.manual_snapshots(Some(&instance)).await.unwrap().len(),
        1
    );

    let scratch = format!("{instance}-r");
    let src = RestoreSource::Snapshot(snap.clone());
    let r1 = rds
        .restore(&src, &scratch, "db.t4g.small", &Network::default(), &tags)
        .await
        .unwrap();
    let r2 = rds
        .restore(&src, &scratch, "db.t4g.small", &Network::default(), &tags)
        .await
        .unwrap();
    assert_eq!(r1.id, r2.id);
    // moto does not echo PubliclyAccessible; it must at least never say true.
    assert_ne!(r2.publicly_accessible, Some(true));
    assert!(rds.delete_instance(&scratch).await.unwrap());
    assert!(
        !rds.delete_instance(&scratch).await.unwrap(),
        "already gone"
    );
    assert!(rds.instance(&scratch).await.unwrap().is_none());

    let missing = rds
        .restore(
            &RestoreSource::Snapshot("no-such-snap".into()),
            &format!("{instance}-x"),
            "db.t4g.small",
            &Network::default(),
            &tags,
        )
        .await
        .unwrap_err();
    assert_eq!(
        opsplane_shared::OpsError::from(missing).name().as_str(),
        "ResourceNotFound"
    );
    assert!(rds.delete_snapshot(&snap).await.unwrap());
    assert!(!rds.delete_snapshot(&snap).await.unwrap());
}

#[tokio::test]
async fn rds_throttling_surfaces_as_throttled_for_the_definitions_to_retry() {
    use aws_sdk_rds::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, create_mock_http_client, mock};
    // moto never throttles: the fault is injected on the RDS client only.
    const THROTTLED: &str = r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>"#;
    let rule = mock!(aws_sdk_rds::Client::create_db_snapshot)
        .sequence()
        .http_status(400, Some(THROTTLED.to_owned()))
        .build();
    let conf = aws_sdk_rds::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "mock"))
        .http_client(create_mock_http_client())
        .interceptor(
            MockResponseInterceptor::new()
                .rule_mode(RuleMode::MatchAny)
                .with_rule(&rule),
        )
        .retry_config(aws_sdk_rds::config::retry::RetryConfig::disabled())
        .build();
    let rds = opsplane_shared::aws::rds::Rds::new(aws_sdk_rds::Client::from_conf(conf));
    let err = rds
        .create_snapshot("db", "snap", &BTreeMap::new())
        .await
        .unwrap_err();
    let err = opsplane_shared::OpsError::from(err);
    assert_eq!(err.name().as_str(), "Throttled");
    assert!(
        err.full_message().contains("Rate exceeded"),
        "{}",
        err.full_message()
    );
    let retried: Value = serde_json::from_str(workflow("backup")).unwrap();
    let at = opsplane_statemachines::validate::state_pointer(&retried, "Snapshot").unwrap();
    let snapshot_retry = &retried.pointer(&at).unwrap()["Retry"];
    assert!(
        snapshot_retry
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["ErrorEquals"] == json!(["Throttled"]))
    );
}

#[tokio::test]
async fn a_failed_backup_is_recorded_and_releases_the_lock() {
    let plane = Plane::new("retention.yaml", ProbeSettings::default()).await;
    // The spec names an instance that no longer exists: its snapshot fails inside the Map.
    plane
        .world
        .clients
        .rds
        .delete_db_instance()
        .db_instance_identifier(format!("{}-db", plane.env))
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    let run = plane.run_backup().await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some("ResourceNotFound"),
        "{:?}",
        run.cause
    );
    let records: Vec<BackupRecord> = plane.store().latest(&plane.env, 5).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, BackupStatus::Failed);
    assert_eq!(records[0].manifest_key, None);
    assert!(
        plane.lock_is_free().await,
        "the failure path released the lock"
    );
}
