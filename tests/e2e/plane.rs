//! The local plane's own wiring: the lock asks the local engine whether a holder still runs.

use std::time::Duration;

use opsplane_local::LocalPlane;
use opsplane_shared::lock::{AcquireRequest, LockError, TakeoverReason};
use opsplane_statemachines::Status;
use serde_json::json;

use crate::harness::{World, unique};

/// A workflow that stays RUNNING until its task token is answered, as a long deploy or drill would.
const HOLD: &str = r#"{
  "StartAt": "Hold",
  "States": {
    "Hold": {
      "Type": "Task",
      "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
      "Parameters": { "FunctionName": "hold", "Payload": { "token.$": "$$.Task.Token" } },
      "End": true
    }
  }
}"#;

fn request(environment: &str, holder: &str) -> AcquireRequest {
    AcquireRequest {
        environment: environment.to_owned(),
        holder: holder.to_owned(),
        operation: "deploy".to_owned(),
        lease: Duration::from_secs(3600),
    }
}

#[tokio::test]
async fn a_stopped_local_execution_loses_its_lock_at_once_and_a_running_one_never_does() {
    let world = World::new().await;
    let (plane, _) = LocalPlane::connect(world.config.clone())
        .await
        .expect("local plane");
    plane
        .engine
        .register_handler("hold", |_input, _ctx| async { Ok(json!({})) });
    let machine = plane
        .engine
        .register_state_machine("hold", HOLD, &Default::default())
        .expect("definition");
    let holder = plane
        .engine
        .start_execution(&machine, None, json!({}))
        .expect("start");
    let environment = world.name("env");
    let lock = plane.lock();
    let first = lock
        .acquire(&request(&environment, &holder))
        .await
        .expect("first holder");

    // Running, with an hour of lease left: refused.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        plane.engine.describe_execution(&holder).unwrap().status,
        Status::Running
    );
    let contender = format!(
        "arn:aws:states:us-east-1:123456789012:execution:hold:{}",
        unique("c")
    );
    match lock.acquire(&request(&environment, &contender)).await {
        Err(LockError::Held {
            holder: held_by, ..
        }) => assert_eq!(held_by, holder),
        other => panic!("a running holder must keep its lock, got {other:?}"),
    }

    // Stopped: taken over at once, long before the lease ends, with a newer token.
    plane
        .engine
        .stop_execution(&holder, Some("Cancelled".into()), None)
        .expect("stop");
    let grant = lock
        .acquire(&request(&environment, &contender))
        .await
        .expect("a stopped holder's lock is taken over");
    assert!(grant.token > first.token);
    let previous = grant.took_over_from.expect("the takeover is reported");
    assert_eq!(previous.holder, holder);
    assert_eq!(
        previous.reason,
        TakeoverReason::HolderNotRunning {
            status: "ABORTED".to_owned()
        }
    );
}
