//! S3 lock faults moto cannot produce, injected with aws-smithy-mocks on the S3 client only: a PUT whose
//! response was lost and whose retry is refused by our own write, a foreign writer's 412, and a 409
//! `ConditionalRequestConflict`. DynamoDB (fence, audit) is moto.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::error::NoSuchKey;
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use opsplane_shared::aws::sfn::SfnExecutions;
use opsplane_shared::clock::SystemClock;
use opsplane_shared::lock::{AcquireRequest, Lock, LockError, S3Lock};
use opsplane_shared::state::StateStore;
use serde_json::json;

use crate::harness::World;
use crate::locks::bootstrapped;

const PRECONDITION_FAILED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>"#;
const CONDITIONAL_CONFLICT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>ConditionalRequestConflict</Code><Message>A conflicting conditional operation is currently in progress against this resource. Try again.</Message></Error>"#;

fn mocked_s3(rules: &[&Rule]) -> aws_sdk_s3::Client {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "mock"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn s3_lock(world: &World, s3: aws_sdk_s3::Client) -> S3Lock {
    let store = StateStore::new(world.clients.dynamodb.clone(), &world.config.table_name)
        .with_clock(Arc::new(SystemClock));
    S3Lock::new(
        s3,
        &world.config.bucket_name,
        store,
        Arc::new(SfnExecutions::new(world.clients.sfn.clone())),
    )
}

fn request(holder: &str) -> AcquireRequest {
    AcquireRequest {
        environment: "prod".into(),
        holder: holder.into(),
        operation: "deploy".into(),
        lease: Duration::from_secs(600),
    }
}

fn no_such_key() -> GetObjectError {
    GetObjectError::NoSuchKey(NoSuchKey::builder().build())
}

#[tokio::test]
async fn a_retried_put_refused_by_our_own_first_attempt_counts_as_acquired() {
    let world = bootstrapped().await;
    // What S3 stored when the first attempt succeeded (its response never arrived).
    let stored: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
    let capture = stored.clone();
    let put = mock!(aws_sdk_s3::Client::put_object)
        .match_requests(move |input| {
            if input.if_none_match() == Some("*")
                && let Some(bytes) = input.body().bytes()
            {
                *capture.lock().unwrap() = Some(bytes.to_vec());
            }
            true
        })
        .sequence()
        .http_status(503, None)
        .http_status(412, Some(PRECONDITION_FAILED.to_owned()))
        .build();
    let readback = stored.clone();
    let get = mock!(aws_sdk_s3::Client::get_object)
        .sequence()
        .error(no_such_key)
        .output(move || {
            let body = readback.lock().unwrap().clone().expect("the PUT was sent");
            GetObjectOutput::builder()
                .body(ByteStream::from(body))
                .e_tag("\"v1\"")
                .build()
        })
        .build();
    let lock = s3_lock(&world, mocked_s3(&[&get, &put]));
    let holder = "arn:aws:states:us-east-1:123456789012:execution:deploy:run-1";

    let grant = lock
        .acquire(&request(holder))
        .await
        .expect("our own write counts");
    assert_eq!(grant.token, 1);
    assert_eq!(grant.holder, holder);
    assert_eq!(
        put.num_calls(),
        2,
        "the SDK retried the PUT once (503, then 412)"
    );
    assert_eq!(
        get.num_calls(),
        2,
        "one read before, one read-back after the 412"
    );
    let body: serde_json::Value =
        serde_json::from_slice(stored.lock().unwrap().as_ref().unwrap()).unwrap();
    assert_eq!(body["holder"], json!(holder));
    // The grant raised the fence in DynamoDB (moto).
    let store = StateStore::new(world.clients.dynamodb.clone(), &world.config.table_name);
    assert_eq!(store.meta("prod").await.unwrap().fence, 1);
}

#[tokio::test]
async fn a_foreign_writers_412_is_not_ours() {
    let world = bootstrapped().await;
    let now = chrono::Utc::now().timestamp_millis();
    let foreign = json!({
        "owner": "someone-else", "holder": "arn:aws:states:us-east-1:123456789012:execution:deploy:other",
        "operation": "deploy", "token": 4, "acquired_at_ms": now, "lease_expires_at_ms": now + 3_600_000
    })
    .to_string();
    let put = mock!(aws_sdk_s3::Client::put_object)
        .sequence()
        .http_status(412, Some(PRECONDITION_FAILED.to_owned()))
        .repeatedly()
        .build();
    let get = mock!(aws_sdk_s3::Client::get_object)
        .sequence()
        .error(no_such_key)
        .output(move || {
            GetObjectOutput::builder()
                .body(ByteStream::from(foreign.clone().into_bytes()))
                .e_tag("\"v9\"")
                .build()
        })
        .repeatedly()
        .build();
    let lock = s3_lock(&world, mocked_s3(&[&get, &put]));
    let err = lock
        .acquire(&request(
            "arn:aws:states:us-east-1:123456789012:execution:deploy:mine",
        ))
        .await
        .unwrap_err();
    match err {
        LockError::Held { holder, .. } => assert!(holder.ends_with(":other")),
        other => panic!("{other:?}"),
    }
    assert_eq!(put.num_calls(), 1, "one create attempt, refused");
    let store = StateStore::new(world.clients.dynamodb.clone(), &world.config.table_name);
    assert_eq!(
        store.meta("prod").await.unwrap().fence,
        0,
        "no fence raised"
    );
}

#[tokio::test]
async fn a_409_conditional_request_conflict_is_retried() {
    let world = bootstrapped().await;
    let put = mock!(aws_sdk_s3::Client::put_object)
        .sequence()
        .http_status(409, Some(CONDITIONAL_CONFLICT.to_owned()))
        .output(|| PutObjectOutput::builder().e_tag("\"v1\"").build())
        .build();
    let get = mock!(aws_sdk_s3::Client::get_object)
        .sequence()
        .error(no_such_key)
        .build();
    let lock = s3_lock(&world, mocked_s3(&[&get, &put]));
    let grant = lock
        .acquire(&request(
            "arn:aws:states:us-east-1:123456789012:execution:deploy:run-9",
        ))
        .await
        .expect("acquired after the conflict cleared");
    assert_eq!(grant.token, 1);
    assert_eq!(put.num_calls(), 2);
}
