//! Locks against moto: mutual exclusion under contention, lease expiry, stale-holder takeover through Step
//! Functions' DescribeExecution, fencing, re-acquire, release, forced release, and the lock function.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use opsplane_fn_lock::{LockDeps, handle};
use opsplane_shared::ErrorName;
use opsplane_shared::aws::sfn::SfnExecutions;
use opsplane_shared::bootstrap::{BootstrapOptions, bootstrap_with};
use opsplane_shared::clock::{Clock, ManualClock, SystemClock};
use opsplane_shared::lock::{
    AcquireRequest, DynamoDbLock, Lock, LockError, LockGrant, S3Lock, TakeoverReason,
};
use opsplane_shared::ports::Executions;
use opsplane_shared::ports::executions::ExecutionState;
use opsplane_shared::state::{BackupRecord, BackupStatus, StateError, StateStore, TimeRange};
use serde_json::json;

use crate::harness::World;

/// The two lock backends.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    DynamoDb,
    S3,
}

/// Bootstraps the world's table and bucket as the local world does (no TLS-only policy: moto speaks plain
/// HTTP and enforces bucket policies).
pub async fn bootstrapped() -> World {
    let world = World::new().await;
    let cfg = &world.config;
    bootstrap_with(
        &world.clients.dynamodb,
        &world.clients.s3,
        &cfg.table_name,
        &cfg.bucket_name,
        &cfg.region,
        BootstrapOptions::local_world(),
    )
    .await
    .expect("bootstrap against moto");
    world
}

fn store(world: &World, clock: Arc<dyn Clock>) -> StateStore {
    StateStore::new(world.clients.dynamodb.clone(), &world.config.table_name).with_clock(clock)
}

fn lock(world: &World, backend: Backend, clock: Arc<dyn Clock>) -> Arc<dyn Lock> {
    let executions = Arc::new(SfnExecutions::new(world.clients.sfn.clone()));
    let store = store(world, clock);
    match backend {
        Backend::DynamoDb => Arc::new(DynamoDbLock::new(store, executions)),
        Backend::S3 => Arc::new(S3Lock::new(
            world.clients.s3.clone(),
            &world.config.bucket_name,
            store,
            executions,
        )),
    }
}

/// An execution ARN no execution has: the service cannot say it stopped, so only the lease ends its lock.
fn ghost(name: &str) -> String {
    format!("arn:aws:states:us-east-1:123456789012:execution:opsplane-ghost:{name}")
}

fn req(env: &str, holder: &str, lease_secs: u64) -> AcquireRequest {
    AcquireRequest {
        environment: env.to_owned(),
        holder: holder.to_owned(),
        operation: "backup".to_owned(),
        lease: Duration::from_secs(lease_secs),
    }
}

/// A state machine in moto whose executions wait long enough to be stopped by the test.
async fn waiting_machine(world: &World) -> String {
    let definition = json!({"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": true}}});
    world
        .clients
        .sfn
        .create_state_machine()
        .name(world.name("sm"))
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/opsplane-test")
        .send()
        .await
        .expect("create state machine")
        .state_machine_arn
}

async fn start(world: &World, machine: &str, name: &str) -> String {
    world
        .clients
        .sfn
        .start_execution()
        .state_machine_arn(machine)
        .name(name)
        .send()
        .await
        .expect("start execution")
        .execution_arn
}

async fn stop(world: &World, execution: &str) {
    world
        .clients
        .sfn
        .stop_execution()
        .execution_arn(execution)
        .send()
        .await
        .expect("stop execution");
}

async fn contention(backend: Backend) {
    let world = bootstrapped().await;
    let lock = lock(&world, backend, Arc::new(SystemClock));
    for round in 0..20 {
        let env = format!("race{round}");
        let attempts = (0..32).map(|i| {
            let lock = lock.clone();
            let env = env.clone();
            tokio::spawn(async move {
                lock.acquire(&req(&env, &ghost(&format!("r{round}-h{i}")), 300))
                    .await
            })
        });
        let results = futures::future::join_all(attempts).await;
        let mut winners: Vec<LockGrant> = Vec::new();
        for r in results {
            match r.expect("task ran") {
                Ok(grant) => winners.push(grant),
                Err(LockError::Held { holder, .. }) => assert!(!holder.is_empty()),
                Err(other) => panic!("{backend:?} round {round}: unexpected {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "{backend:?} round {round}: {winners:#?}");
        let status = lock.status(&env).await.unwrap().expect("held");
        assert_eq!(status.holder, winners[0].holder);
        assert_eq!(status.token, winners[0].token);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_32_acquirers_never_two_holders() {
    contention(Backend::DynamoDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_32_acquirers_never_two_holders() {
    contention(Backend::S3).await;
}

async fn lease_expiry(backend: Backend) {
    let world = bootstrapped().await;
    let clock = Arc::new(ManualClock::starting_now());
    let lock = lock(&world, backend, clock.clone());
    let (a, b) = (ghost(&world.name("a")), ghost(&world.name("b")));
    let first = lock.acquire(&req("prod", &a, 60)).await.unwrap();
    assert!(first.took_over_from.is_none());
    let held = lock.acquire(&req("prod", &b, 60)).await.unwrap_err();
    assert!(
        matches!(held, LockError::Held { ref holder, .. } if *holder == a),
        "{held:?}"
    );

    clock.advance(Duration::from_secs(59));
    assert!(matches!(
        lock.acquire(&req("prod", &b, 60)).await,
        Err(LockError::Held { .. })
    ));
    clock.advance(Duration::from_secs(2));
    let second = lock.acquire(&req("prod", &b, 60)).await.unwrap();
    assert_eq!(second.token, first.token + 1);
    let prev = second.took_over_from.expect("took over");
    assert_eq!(
        (prev.holder.as_str(), prev.token),
        (a.as_str(), first.token)
    );
    assert_eq!(prev.reason, TakeoverReason::LeaseExpired);

    // The old holder has lost it: renew fails, release changes nothing.
    let lost = lock
        .renew("prod", &a, first.token, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(matches!(lost, LockError::Lost { .. }), "{lost:?}");
    let rel = lock.release("prod", &a, first.token).await.unwrap();
    assert!(!rel.released && rel.reason.unwrap().contains(&b));
    assert_eq!(lock.status("prod").await.unwrap().unwrap().holder, b);
}

#[tokio::test]
async fn dynamodb_lease_expiry_lets_a_second_holder_in() {
    lease_expiry(Backend::DynamoDb).await;
}

#[tokio::test]
async fn s3_lease_expiry_lets_a_second_holder_in() {
    lease_expiry(Backend::S3).await;
}

async fn stopped_holder(backend: Backend) {
    let world = bootstrapped().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let lock = lock(&world, backend, clock.clone());
    let machine = waiting_machine(&world).await;
    let first = start(&world, &machine, "first").await;
    let second = start(&world, &machine, "second").await;

    let grant = lock.acquire(&req("prod", &first, 3600)).await.unwrap();
    // A live holder is never taken over, however often it is asked.
    for _ in 0..3 {
        let err = lock.acquire(&req("prod", &second, 3600)).await.unwrap_err();
        assert!(
            matches!(err, LockError::Held { ref holder, .. } if *holder == first),
            "{err:?}"
        );
    }
    stop(&world, &first).await;
    let taken = lock.acquire(&req("prod", &second, 3600)).await.unwrap();
    assert!(
        taken.lease_expires_at > Utc::now() && grant.lease_expires_at > Utc::now(),
        "before the lease ends"
    );
    assert_eq!(taken.token, grant.token + 1);
    let prev = taken.took_over_from.expect("took over");
    assert_eq!(prev.holder, first);
    assert_eq!(
        prev.reason,
        TakeoverReason::HolderNotRunning {
            status: "ABORTED".into()
        }
    );

    let audit = store(&world, clock)
        .audit_today(Some("prod"))
        .await
        .unwrap();
    let takeover = audit
        .iter()
        .find(|e| e.action == "lock.takeover")
        .expect("takeover audited");
    assert_eq!(takeover.actor, second);
    assert_eq!(takeover.details["previous"]["holder"], json!(first));
    assert_eq!(takeover.details["previous"]["status"], json!("ABORTED"));
}

#[tokio::test]
async fn dynamodb_stopped_holder_is_taken_over_before_its_lease_ends() {
    stopped_holder(Backend::DynamoDb).await;
}

#[tokio::test]
async fn s3_stopped_holder_is_taken_over_before_its_lease_ends() {
    stopped_holder(Backend::S3).await;
}

#[tokio::test]
async fn sfn_adapter_reports_running_stopped_and_unknown() {
    let world = World::new().await;
    let machine = waiting_machine(&world).await;
    let exec = start(&world, &machine, "probe").await;
    let status = SfnExecutions::new(world.clients.sfn.clone());
    assert_eq!(status.state(&exec).await, ExecutionState::Running);
    stop(&world, &exec).await;
    assert_eq!(
        status.state(&exec).await,
        ExecutionState::NotRunning {
            status: "ABORTED".into()
        }
    );
    assert!(matches!(
        status.state(&ghost("nobody")).await,
        ExecutionState::Unknown { .. }
    ));
}

fn backup(env: &str, id: &str) -> BackupRecord {
    BackupRecord {
        environment: env.into(),
        id: id.into(),
        created_at: Utc::now(),
        snapshot_ids: vec![format!("snap-{id}")],
        manifest_key: None,
        manifest_sha256: None,
        status: BackupStatus::Completed,
        execution: None,
    }
}

async fn fencing(backend: Backend) {
    let world = bootstrapped().await;
    let clock = Arc::new(ManualClock::starting_now());
    let lock = lock(&world, backend, clock.clone());
    let state = store(&world, clock.clone());
    let (a, b) = (ghost(&world.name("a")), ghost(&world.name("b")));
    let old = lock.acquire(&req("prod", &a, 60)).await.unwrap();
    state.put(&backup("prod", "by-a"), old.token).await.unwrap();

    clock.advance(Duration::from_secs(61));
    let new = lock.acquire(&req("prod", &b, 60)).await.unwrap();
    assert!(new.token > old.token);
    // Before the new holder writes anything, the old token is already refused...
    let err = state
        .put(&backup("prod", "late-a"), old.token)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StateError::Fenced { token, .. } if token == old.token),
        "{err:?}"
    );
    state.put(&backup("prod", "by-b"), new.token).await.unwrap();
    // ...and after it has.
    let err = state
        .put(&backup("prod", "later-a"), old.token)
        .await
        .unwrap_err();
    let ops: opsplane_shared::OpsError = err.into();
    assert_eq!(ops.name(), ErrorName::LockLost);

    let page = state
        .list::<BackupRecord>("prod", TimeRange::all(), Default::default())
        .await
        .unwrap();
    let ids: Vec<_> = page.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&"by-a") && ids.contains(&"by-b"));
    assert_eq!(state.meta("prod").await.unwrap().fence, new.token);
}

#[tokio::test]
async fn dynamodb_older_fencing_token_is_rejected_and_changes_nothing() {
    fencing(Backend::DynamoDb).await;
}

#[tokio::test]
async fn s3_older_fencing_token_is_rejected_and_changes_nothing() {
    fencing(Backend::S3).await;
}

async fn reacquire_release_and_tokens(backend: Backend) {
    let world = bootstrapped().await;
    let clock = Arc::new(ManualClock::starting_now());
    let lock = lock(&world, backend, clock.clone());
    let a = ghost(&world.name("a"));
    let first = lock.acquire(&req("dev", &a, 60)).await.unwrap();
    clock.advance(Duration::from_secs(30));
    // A retried acquire by the same holder keeps the token and extends the lease.
    let again = lock.acquire(&req("dev", &a, 60)).await.unwrap();
    assert_eq!(again.token, first.token);
    assert_eq!(again.acquired_at, first.acquired_at);
    assert!(again.lease_expires_at > first.lease_expires_at);
    let renewed = lock
        .renew("dev", &a, first.token, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(renewed.token, first.token);
    assert!(renewed.lease_expires_at > again.lease_expires_at);
    // Renew with a wrong token is LockLost.
    assert!(matches!(
        lock.renew("dev", &a, first.token + 7, Duration::from_secs(60))
            .await,
        Err(LockError::Lost { .. })
    ));

    let rel = lock.release("dev", &a, first.token).await.unwrap();
    assert!(rel.released);
    // A retried release is not an error.
    let again = lock.release("dev", &a, first.token).await.unwrap();
    assert!(!again.released);
    assert!(again.reason.unwrap().contains("released"));
    assert_eq!(lock.status("dev").await.unwrap(), None);
    // Tokens continue after a release: they never go back.
    let next = lock
        .acquire(&req("dev", &ghost(&world.name("b")), 60))
        .await
        .unwrap();
    assert_eq!(next.token, first.token + 1);
    assert!(next.took_over_from.is_none());
}

#[tokio::test]
async fn dynamodb_reacquire_renew_release_keep_tokens_monotonic() {
    reacquire_release_and_tokens(Backend::DynamoDb).await;
}

#[tokio::test]
async fn s3_reacquire_renew_release_keep_tokens_monotonic() {
    reacquire_release_and_tokens(Backend::S3).await;
}

async fn forced_release(backend: Backend) {
    let world = bootstrapped().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let lock = lock(&world, backend, clock.clone());
    let a = ghost(&world.name("a"));
    lock.acquire(&req("qa", &a, 3600)).await.unwrap();
    lock.acquire(&req("uat", &ghost(&world.name("u")), 3600))
        .await
        .unwrap();
    let listed: Vec<_> = lock
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.environment)
        .collect();
    assert_eq!(listed, ["qa", "uat"]);

    let released = lock
        .force_release("qa", "alice@ops", "stuck after a region outage")
        .await
        .unwrap();
    assert_eq!(released.unwrap().holder, a);
    assert_eq!(lock.status("qa").await.unwrap(), None);
    assert_eq!(
        lock.force_release("qa", "alice@ops", "again")
            .await
            .unwrap(),
        None
    );
    let audit = store(&world, clock).audit_today(Some("qa")).await.unwrap();
    let forced: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "lock.force_release")
        .collect();
    assert_eq!(forced.len(), 2);
    let ok = forced
        .iter()
        .find(|e| e.result == "ok")
        .expect("the real release");
    assert_eq!(ok.actor, "alice@ops");
    assert_eq!(ok.details["reason"], json!("stuck after a region outage"));
    assert_eq!(ok.details["released"]["holder"], json!(a));
}

#[tokio::test]
async fn dynamodb_forced_release_is_audited() {
    forced_release(Backend::DynamoDb).await;
}

#[tokio::test]
async fn s3_forced_release_is_audited() {
    forced_release(Backend::S3).await;
}

#[tokio::test]
async fn lock_function_speaks_the_json_boundary() {
    let world = bootstrapped().await;
    let deps = LockDeps::from_config(&world.config, &world.clients);
    let (a, b) = (ghost(&world.name("a")), ghost(&world.name("b")));
    let out = handle(
        &deps,
        json!({"action": "acquire", "environment": "prod", "holder": a, "operation": "deploy", "lease_seconds": 900}),
    )
    .await
    .unwrap();
    assert_eq!(out["token"], json!(1));
    assert_eq!(out["took_over_from"], json!(null));
    assert!(out["lease_expires_at"].as_str().unwrap().ends_with('Z'));

    let err = handle(
        &deps,
        json!({"action": "acquire", "environment": "prod", "holder": b, "operation": "backup"}),
    )
    .await
    .unwrap_err();
    let payload = err.to_lambda_payload();
    assert_eq!(payload["errorType"], "LockHeld");
    match err {
        opsplane_shared::OpsError::LockHeld {
            holder,
            operation,
            since,
            ..
        } => {
            assert_eq!(
                (holder.as_str(), operation.as_str()),
                (a.as_str(), "deploy")
            );
            assert_eq!(since, out["acquired_at"].as_str().unwrap());
        }
        other => panic!("{other:?}"),
    }

    // Bad input changes nothing: an invalid lease on another environment leaves it unlocked.
    let err = handle(
        &deps,
        json!({"action": "acquire", "environment": "staging", "holder": b, "operation": "x", "lease_seconds": 5}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), ErrorName::InvalidInput);
    assert_eq!(deps.lock.status("staging").await.unwrap(), None);

    let renewed = handle(
        &deps,
        json!({"action": "renew", "environment": "prod", "holder": a, "token": 1, "lease_seconds": 1200}),
    )
    .await
    .unwrap();
    assert_eq!(renewed["token"], json!(1));
    let lost = handle(
        &deps,
        json!({"action": "renew", "environment": "prod", "holder": b, "token": 1}),
    )
    .await
    .unwrap_err();
    assert_eq!(lost.name(), ErrorName::LockLost);
    let rel = handle(
        &deps,
        json!({"action": "release", "environment": "prod", "holder": a, "token": 1}),
    )
    .await
    .unwrap();
    assert_eq!(rel, json!({"released": true, "reason": null}));
    let rel = handle(
        &deps,
        json!({"action": "release", "environment": "prod", "holder": a, "token": 1}),
    )
    .await
    .unwrap();
    assert_eq!(rel["released"], json!(false));
}

#[tokio::test]
async fn the_configured_backend_is_used_by_the_function() {
    let mut world = bootstrapped().await;
    world.config.lock_backend = opsplane_shared::config::LockBackend::S3;
    let deps = LockDeps::from_config(&world.config, &world.clients);
    let holder = ghost(&world.name("a"));
    handle(
        &deps,
        json!({"action": "acquire", "environment": "prod", "holder": holder, "operation": "deploy"}),
    )
    .await
    .unwrap();
    let object = world
        .clients
        .s3
        .get_object()
        .bucket(&world.config.bucket_name)
        .key(S3Lock::key("prod"))
        .send()
        .await
        .expect("the lock is an S3 object");
    let body: serde_json::Value =
        serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(body["holder"], json!(holder));
    let item = world
        .clients
        .dynamodb
        .get_item()
        .table_name(&world.config.table_name)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("ENV#prod".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("LOCK".into()),
        )
        .send()
        .await
        .unwrap();
    assert!(
        item.item.is_none(),
        "no DynamoDB lock item with the S3 backend"
    );
}

/// Whether `token` may still write the environment's records (a fenced write with it succeeds).
async fn can_write(state: &StateStore, env: &str, token: u64, id: &str) -> bool {
    match state.put(&backup(env, id), token).await {
        Ok(()) => true,
        Err(StateError::Fenced { .. }) => false,
        Err(other) => panic!("fenced write with token {token}: {other}"),
    }
}

/// Tokens granted by `from`, the backend then switched to `to`: the next grant is above every token the
/// old backend issued and above the fence, it writes, and the old holder no longer does.
async fn switch(from: Backend, to: Backend) {
    let world = bootstrapped().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = store(&world, clock.clone());
    let old = lock(&world, from, clock.clone());
    let new = lock(&world, to, clock.clone());
    // The new backend saw the environment once, long ago: its counter is low.
    let early = ghost(&world.name("early"));
    let first = new.acquire(&req("prod", &early, 60)).await.unwrap();
    assert!(can_write(&state, "prod", first.token, "early").await);
    new.release("prod", &early, first.token).await.unwrap();
    // The old backend then counted on, its last holder still holding (it has written, then a grant that
    // has not written yet).
    let mut last = None;
    for i in 0..3 {
        let holder = ghost(&world.name(&format!("old-{i}")));
        let grant = old.acquire(&req("prod", &holder, 600)).await.unwrap();
        if i < 2 {
            assert!(can_write(&state, "prod", grant.token, &format!("old-{i}")).await);
            old.release("prod", &holder, grant.token).await.unwrap();
        }
        last = Some(grant);
    }
    let last = last.unwrap();

    let next = new
        .acquire(&req("prod", &ghost(&world.name("new")), 600))
        .await
        .expect("the new backend grants");
    assert!(
        next.token > last.token,
        "token {} granted after {} was issued",
        next.token,
        last.token
    );
    assert!(can_write(&state, "prod", next.token, "new").await);
    assert!(
        !can_write(&state, "prod", last.token, "stale").await,
        "the old backend's holder lost write access"
    );
    assert_eq!(state.meta("prod").await.unwrap().fence, next.token);
}

#[tokio::test]
async fn switching_from_dynamodb_to_s3_grants_above_the_fence() {
    switch(Backend::DynamoDb, Backend::S3).await;
}

#[tokio::test]
async fn switching_from_s3_to_dynamodb_grants_above_the_fence() {
    switch(Backend::S3, Backend::DynamoDb).await;
}

/// The lock deleted by hand while a holder with a high token holds it: the next grant is above it, and a
/// forced release after that leaves a lock the next acquire takes, again above.
async fn deleted_by_hand(backend: Backend) {
    let world = bootstrapped().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = store(&world, clock.clone());
    let lock = lock(&world, backend, clock.clone());
    let mut held = None;
    for i in 0..3 {
        let holder = ghost(&world.name(&format!("h-{i}")));
        let grant = lock.acquire(&req("qa", &holder, 600)).await.unwrap();
        assert!(can_write(&state, "qa", grant.token, &format!("h-{i}")).await);
        if i < 2 {
            lock.release("qa", &holder, grant.token).await.unwrap();
        }
        held = Some(grant);
    }
    let held = held.unwrap();
    match backend {
        Backend::DynamoDb => {
            world
                .clients
                .dynamodb
                .delete_item()
                .table_name(&world.config.table_name)
                .key("pk", AttributeValue::S("ENV#qa".into()))
                .key("sk", AttributeValue::S("LOCK".into()))
                .send()
                .await
                .unwrap();
        }
        Backend::S3 => {
            world
                .clients
                .s3
                .delete_object()
                .bucket(&world.config.bucket_name)
                .key(S3Lock::key("qa"))
                .send()
                .await
                .unwrap();
        }
    }

    let b = ghost(&world.name("b"));
    let next = lock.acquire(&req("qa", &b, 600)).await.unwrap();
    assert!(
        next.token > held.token,
        "{} after {}",
        next.token,
        held.token
    );
    assert!(can_write(&state, "qa", next.token, "b").await);
    assert!(!can_write(&state, "qa", held.token, "stale").await);

    let released = lock
        .force_release("qa", "alice@ops", "stuck")
        .await
        .unwrap();
    assert_eq!(released.unwrap().holder, b);
    let after = lock
        .acquire(&req("qa", &ghost(&world.name("c")), 600))
        .await
        .unwrap();
    assert!(after.token > next.token);
    assert!(can_write(&state, "qa", after.token, "c").await);
}

#[tokio::test]
async fn dynamodb_lock_item_deleted_by_hand_grants_above_the_fence() {
    deleted_by_hand(Backend::DynamoDb).await;
}

#[tokio::test]
async fn s3_lock_object_deleted_by_hand_grants_above_the_fence() {
    deleted_by_hand(Backend::S3).await;
}

/// A provision waiting for approval longer than its 4-hour lease keeps its lock on both backends: another
/// workflow would otherwise take it and the provision, once approved, would fail `LockLost` mid-change.
#[tokio::test]
async fn a_holder_still_running_keeps_its_lock_past_its_lease() {
    use crate::provision::{Stage, assert_succeeded, healthy_endpoint};

    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    stage.upload(&stage.example("prod", &url)).await;
    let provision = stage
        .local
        .start_workflow("provision", json!({ "environment": stage.env }))
        .unwrap();
    stage.pending_approval(&provision).await;

    // Thirteen hours on, the approval is still open and the provision's execution still RUNNING.
    let later: Arc<dyn Clock> = Arc::new(ManualClock::at(Utc::now() + chrono::Duration::hours(13)));
    let store = stage.local.state().with_clock(later.clone());
    let backup = ghost(&stage.world.name("backup"));
    let dynamodb = DynamoDbLock::new(store.clone(), stage.local.executions());
    let refused = dynamodb
        .acquire(&req(&stage.env, &backup, 60))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, LockError::Held { ref holder, .. } if *holder == provision),
        "{refused:?}"
    );
    // The S3 backend answers the same for a running holder whose lease has ended.
    let now_store = stage.local.state();
    let s3 = |store: StateStore| {
        S3Lock::new(
            stage.world.clients.s3.clone(),
            &stage.world.config.bucket_name,
            store,
            stage.local.executions(),
        )
    };
    let other = format!("{}-s3", stage.env);
    s3(now_store)
        .acquire(&req(&other, &provision, 12 * 3600))
        .await
        .unwrap();
    let refused = s3(store)
        .acquire(&req(&other, &backup, 60))
        .await
        .unwrap_err();
    assert!(matches!(refused, LockError::Held { .. }), "{refused:?}");

    // Approved at last, the provision applies its change with the lock it never lost.
    stage
        .local
        .approve(&provision, "jane", Some("after a long weekend"))
        .await
        .expect("approve");
    assert_succeeded(&stage.local.engine.wait_for(&provision).await.unwrap());
}

/// Tries, once, to take an environment's lock as a backup that cannot see the lock's holder run (its
/// DescribeExecution finds no such execution: another account, or a history aged out), as soon as the
/// deployment's RDS calls are `after` past its first one in virtual time.
#[derive(Debug, Clone)]
struct LateTaker {
    config: opsplane_shared::Config,
    environment: String,
    after: chrono::Duration,
    when: Arc<crate::harness::Later>,
    outcome: Arc<std::sync::Mutex<Option<Result<u64, String>>>>,
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for LateTaker {
    fn name(&self) -> &'static str {
        "LateTaker"
    }

    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let Some(at) = self.when.due(context.request(), self.after) else {
            return Ok(());
        };
        // Interceptors are synchronous: the taker acts apart, at the virtual time of the request it
        // interrupts.
        let environment = self.environment.clone();
        let config = self.config.clone();
        let outcome = crate::harness::acting_apart(&self.config, move |clients| async move {
            let now = chrono::DateTime::from_timestamp_millis(at).unwrap();
            let store = StateStore::from_config(&config, &clients)
                .with_clock(Arc::new(ManualClock::at(now)));
            let blind: Arc<dyn Executions> = Arc::new(SfnExecutions::new(clients.sfn.clone()));
            let lock = opsplane_shared::lock::with_store(&config, &clients, store, blind);
            lock.acquire(&req(&environment, &ghost("late-backup"), 3600))
                .await
                .map(|g| g.token)
                .map_err(|e| e.to_string())
        });
        *self.outcome.lock().unwrap() = Some(outcome);
        Ok(())
    }
}

/// The deployment's approval waits ten hours and its resize four more: fourteen hours under a lease of
/// four. Every step after the approval renews the lock, so a backup that cannot see the deployment running
/// finds the lock held twelve and a half hours in, when the old twelve-hour lease taken at the start
/// would have let it in.
#[tokio::test]
async fn a_deployment_that_waits_and_polls_past_its_lease_keeps_its_lock_from_a_blind_taker() {
    use crate::provision::{Stage, assert_succeeded, healthy_endpoint};

    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let db = format!("{}-db", stage.env);
    let v1 = stage.example("staging", &url);
    stage.upload(&v1).await;
    assert_succeeded(&stage.provision().await);
    stage
        .local
        .world
        .configure(&json!({ "durations": { "rds_modify": 4 * 3600 } }))
        .await
        .unwrap();
    stage
        .upload(&Stage::staging_resize_needing_approval(&v1))
        .await;

    let taker = LateTaker {
        config: stage.local.config.clone(),
        environment: stage.env.clone(),
        after: chrono::Duration::minutes(12 * 60 + 30),
        when: Arc::default(),
        outcome: Arc::default(),
    };
    let clients = stage.local.clients.clone().with_interceptor(taker.clone());
    stage.local.register(stage.local.provision_deps(&clients));
    let run = stage
        .local
        .start_workflow("provision", json!({ "environment": stage.env }))
        .unwrap();
    let approval = stage.pending_approval(&run).await;
    opsplane_local::world::at(
        approval.requested_at + chrono::Duration::hours(10),
        stage.local.approve(&run, "jane", Some("after the weekend")),
    )
    .await
    .expect("approve");
    let done = stage.local.engine.wait_for(&run).await.unwrap();

    let outcome = taker.outcome.lock().unwrap().clone();
    assert!(
        matches!(outcome, Some(Err(ref e)) if e.contains("is locked by")),
        "the blind taker got the lock: {outcome:?}"
    );
    assert_succeeded(&done);
    assert_eq!(
        stage.instance(&db).await.unwrap().instance_class,
        "db.t4g.large"
    );
    assert!(stage.lock_is_free().await);
}
