//! Answers AWS gives late, twice or not at all, which moto cannot produce, injected with aws-smithy-mocks on
//! the DynamoDB client: a write that was committed but whose response was lost, so the SDK (or a retried
//! task) sends it again and the retry meets the first attempt's own write: a rollback claim, a fenced write,
//! a lock takeover.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::{
    ConditionalCheckFailedException, TransactionCanceledException,
};
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};
use aws_smithy_mocks::{
    MockResponse, MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::body::SdkBody;
use chrono::Utc;
use opsplane_fn_rollback::{ClaimInput, Deps, Resolved, claim};
use opsplane_shared::idempotency::Idempotency;
use opsplane_shared::lock::{AcquireRequest, DynamoDbLock, Lock, TakeoverReason};
use opsplane_shared::state::{BackupRecord, BackupStatus, StateStore};

use crate::harness::FixedExecutions;
use crate::locks::bootstrapped;

const DDB_INTERNAL: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#;

/// A DynamoDB client answered by `rules` only, retrying as the SDK's standard mode does (3 attempts).
pub fn mocked_dynamodb(rules: &[&Rule]) -> aws_sdk_dynamodb::Client {
    mocked_dynamodb_with(rules, 3)
}

/// A DynamoDB client answered by `rules` only, making at most `attempts` attempts per call.
fn mocked_dynamodb_with(rules: &[&Rule], attempts: u32) -> aws_sdk_dynamodb::Client {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "mock"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

type Item = HashMap<String, AttributeValue>;

#[tokio::test]
async fn a_rollback_claim_whose_put_response_was_lost_stays_the_owners() {
    let world = bootstrapped().await;
    // What DynamoDB stored when the first PutItem was committed (its response never arrived).
    let stored: Arc<Mutex<Option<Item>>> = Arc::default();
    let capture = stored.clone();
    let readback = stored.clone();
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(move |input| {
            let mut stored = capture.lock().unwrap();
            if stored.is_none() {
                *stored = input.item().cloned();
            }
            true
        })
        .sequence()
        .http_status(500, Some(DDB_INTERNAL.to_owned()))
        .error(move || {
            // The retry is refused by the first attempt's own record, returned as ALL_OLD.
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder()
                    .message("The conditional request failed")
                    .set_item(readback.lock().unwrap().clone())
                    .build(),
            )
        })
        .build();
    let completed_with: Arc<Mutex<Option<String>>> = Arc::default();
    let seen = completed_with.clone();
    let complete = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(move |input| {
            *seen.lock().unwrap() = input
                .expression_attribute_values()
                .and_then(|v| v.get(":claim"))
                .and_then(|v| v.as_s().ok())
                .cloned();
            true
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let mut deps = Deps::new(world.config.clone(), &world.clients);
    deps.idempotency = Idempotency::new(&StateStore::new(
        mocked_dynamodb(&[&put, &complete]),
        &world.config.table_name,
    ));
    let me = "arn:aws:states:us-east-1:123456789012:execution:opsplane-rollback:alarm-1";
    let rollback = Resolved {
        environment: "staging".into(),
        spec_version: "v1".into(),
        deployment_id: "0a1b2c3d4e".into(),
        started_at: Utc::now(),
        actor: "alarm:staging-api-5xx".into(),
        approval_timeout_seconds: 0,
        incident: Some("staging-api-5xx@2026-11-30T14:00:00.989Z".into()),
        reason: "alarm".into(),
        decision: opsplane_fn_rollback::Decision::RollBack,
        blamed: None,
        finding: None,
    };

    let owned = claim(
        &deps,
        ClaimInput {
            rollback,
            execution: me.into(),
        },
    )
    .await
    .expect("the claim is ours");

    assert!(!owned.duplicate, "the owner is not a duplicate of itself");
    assert_eq!(owned.owner, me);
    assert_eq!(
        put.num_calls(),
        2,
        "the SDK sent the PutItem twice (500, then refused)"
    );
    let first = stored
        .lock()
        .unwrap()
        .clone()
        .expect("the PutItem was sent");
    assert_eq!(first["claimant"], AttributeValue::S(me.into()));
    assert_eq!(
        completed_with.lock().unwrap().clone(),
        first["claim"].as_s().ok().cloned(),
        "completed under the claim the first attempt wrote"
    );
}

fn internal_error() -> HttpResponse {
    HttpResponse::new(
        500.try_into().expect("a status code"),
        SdkBody::from(DDB_INTERNAL),
    )
}

#[tokio::test]
async fn a_fenced_write_committed_with_its_response_lost_is_not_lock_lost_when_sent_again() {
    // DynamoDB as it behaves: the first call commits but its response is lost (the caller sees a 500 and
    // gives up: one attempt per call here, the retried task sends it again); by then a takeover has raised
    // the fence, so only the same ClientRequestToken, which DynamoDB answers from its idempotency window,
    // succeeds.
    let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = tokens.clone();
    let transact =
        mock!(aws_sdk_dynamodb::Client::transact_write_items).then_compute_response(move |input| {
            let mut tokens = seen.lock().unwrap();
            let token = input.client_request_token().unwrap_or_default().to_owned();
            tokens.push(token.clone());
            if tokens.len() == 1 {
                MockResponse::Http(internal_error())
            } else if !token.is_empty() && token == tokens[0] {
                MockResponse::Output(TransactWriteItemsOutput::builder().build())
            } else {
                let fence = HashMap::from([("fence".to_owned(), AttributeValue::N("8".into()))]);
                MockResponse::Error(TransactWriteItemsError::TransactionCanceledException(
                    TransactionCanceledException::builder()
                        .message("Transaction cancelled")
                        .cancellation_reasons(
                            CancellationReason::builder()
                                .code("ConditionalCheckFailed")
                                .set_item(Some(fence))
                                .build(),
                        )
                        .cancellation_reasons(CancellationReason::builder().code("None").build())
                        .cancellation_reasons(CancellationReason::builder().code("None").build())
                        .build(),
                ))
            }
        });
    let state = StateStore::new(mocked_dynamodb_with(&[&transact], 1), "opsplane-state");
    let record = BackupRecord {
        environment: "prod".into(),
        id: "b-1".into(),
        created_at: Utc::now(),
        snapshot_ids: vec!["snap-b-1".into()],
        manifest_key: None,
        manifest_sha256: None,
        status: BackupStatus::Completed,
        execution: None,
    };

    let first = state.put(&record, 7).await.unwrap_err();
    assert!(
        !matches!(first, opsplane_shared::state::StateError::Fenced { .. }),
        "the lost responses are an AWS error, not a lost lock: {first}"
    );
    state
        .put(&record, 7)
        .await
        .expect("the committed write is answered as done");
    let sent = tokens.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert!(sent[0].len() <= 36 && !sent[0].is_empty());
    assert!(
        sent.iter().all(|t| *t == sent[0]),
        "every send of one write carries one token"
    );
    // Another write carries another token.
    let other = BackupRecord {
        id: "b-2".into(),
        ..record
    };
    assert!(matches!(
        state.put(&other, 7).await,
        Err(opsplane_shared::state::StateError::Fenced { .. })
    ));
}

fn lock_item(holder: &str, operation: &str, token: u64, at: i64) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S("ENV#prod".into())),
        ("sk".to_owned(), AttributeValue::S("LOCK".into())),
        ("holder".to_owned(), AttributeValue::S(holder.into())),
        ("operation".to_owned(), AttributeValue::S(operation.into())),
        ("token".to_owned(), AttributeValue::N(token.to_string())),
        ("acquired_at".to_owned(), AttributeValue::N(at.to_string())),
        (
            "lease_expires_at".to_owned(),
            AttributeValue::N((at + 3_600_000).to_string()),
        ),
    ])
}

fn refused(item: Item) -> UpdateItemError {
    UpdateItemError::ConditionalCheckFailedException(
        ConditionalCheckFailedException::builder()
            .message("The conditional request failed")
            .set_item(Some(item))
            .build(),
    )
}

#[tokio::test]
async fn a_takeover_whose_response_was_lost_is_still_audited() {
    let now = Utc::now().timestamp_millis();
    let stale = "arn:aws:states:us-east-1:123456789012:execution:opsplane-deploy:crashed";
    let me = "arn:aws:states:us-east-1:123456789012:execution:opsplane-backup:run-2";
    let fence =
        mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| GetItemOutput::builder().build());
    let (held, mine) = (
        lock_item(stale, "deploy", 4, now - 60_000),
        lock_item(me, "backup", 5, now),
    );
    let update = mock!(aws_sdk_dynamodb::Client::update_item)
        .sequence()
        // The plain grant: held by an execution that has ended.
        .error(move || refused(held.clone()))
        // The takeover is written; its response is lost...
        .http_response(internal_error)
        // ...and the SDK's retry is refused by it.
        .error(move || refused(mine.clone()))
        // The lease extension of the lock that is ours.
        .output(|| UpdateItemOutput::builder().build())
        .build();
    let audited: Arc<Mutex<Vec<Item>>> = Arc::default();
    let capture = audited.clone();
    let audit = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(move |input| {
            capture.lock().unwrap().extend(input.item().cloned());
            true
        })
        .then_output(|| PutItemOutput::builder().build());
    let store = StateStore::new(
        mocked_dynamodb(&[&fence, &update, &audit]),
        "opsplane-state",
    );
    let lock = DynamoDbLock::new(store, Arc::new(FixedExecutions::ENDED));

    let grant = lock
        .acquire(&AcquireRequest {
            environment: "prod".into(),
            holder: me.into(),
            operation: "backup".into(),
            lease: Duration::from_secs(600),
        })
        .await
        .expect("the lock is ours");

    assert_eq!(grant.token, 5);
    assert_eq!(update.num_calls(), 4);
    let previous = grant.took_over_from.expect("a takeover");
    assert_eq!(previous.holder, stale);
    assert_eq!(previous.token, 4);
    assert!(matches!(
        previous.reason,
        TakeoverReason::HolderNotRunning { .. }
    ));
    let audited = audited.lock().unwrap();
    assert_eq!(audited.len(), 1, "one audit event");
    assert_eq!(
        audited[0]["action"],
        AttributeValue::S("lock.takeover".into())
    );
}
