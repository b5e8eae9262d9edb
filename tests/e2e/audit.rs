//! The immutable audit trail: every audit event is also an Object Lock copy in S3, which cannot be deleted
//! without the governance bypass, and `opsplane audit` reports where the table and S3 disagree.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use opsplane_shared::audit::{AUDIT_PREFIX, CopyStatus, Discrepancy, audit_key};
use opsplane_shared::clock::rfc3339;
use opsplane_shared::config::AuditLockMode;
use opsplane_shared::lock::{AcquireRequest, from_config};
use opsplane_shared::state::{AuditEvent, StateStore};
use serde_json::json;

use crate::harness::{FixedExecutions, World};
use crate::locks::bootstrapped;

/// Every version under `audit/`: (key, version id).
async fn copies(world: &World) -> Vec<(String, String)> {
    world
        .clients
        .s3
        .list_object_versions()
        .bucket(&world.config.bucket_name)
        .prefix(AUDIT_PREFIX)
        .send()
        .await
        .unwrap()
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap().to_owned(),
                v.version_id().unwrap().to_owned(),
            )
        })
        .collect()
}

fn event(env: &str, action: &str) -> AuditEvent {
    AuditEvent::new(
        Utc::now(),
        "alice@ops",
        action,
        Some(env.to_owned()),
        "ok",
        json!({ "n": action }),
    )
}

#[tokio::test]
async fn audit_copies_are_locked_and_cannot_be_deleted_without_the_bypass() {
    let world = bootstrapped().await;
    // A real audit event: an operator's forced release, through the lock as the CLI does it.
    let lock = from_config(
        &world.config,
        &world.clients,
        Arc::new(FixedExecutions::RUNNING),
    );
    lock.acquire(&AcquireRequest {
        environment: "prod".into(),
        holder: "arn:aws:states:us-east-1:123456789012:execution:deploy:run-1".into(),
        operation: "deploy".into(),
        lease: Duration::from_secs(600),
    })
    .await
    .unwrap();
    lock.force_release("prod", "alice@ops", "INC-7 stuck deploy")
        .await
        .unwrap();

    let found = copies(&world).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let (key, version) = &found[0];
    let store = StateStore::from_config(&world.config, &world.clients);
    let events = store.audit_today(Some("prod")).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(*key, audit_key(&events[0]));
    assert!(key.starts_with(&format!("audit/{}/", Utc::now().format("%Y/%m/%d"))));

    let s3 = &world.clients.s3;
    let bucket = &world.config.bucket_name;
    // moto 5.1.22 answers GetObjectRetention with the object itself; HeadObject carries the same two fields
    // (x-amz-object-lock-mode, x-amz-object-lock-retain-until-date) on AWS and on moto.
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.object_lock_mode().map(|m| m.as_str()),
        Some("GOVERNANCE")
    );
    let until = head
        .object_lock_retain_until_date()
        .expect("a retain-until date")
        .secs();
    let days = (until - Utc::now().timestamp()) / 86_400;
    assert!((364..=365).contains(&days), "retained {days} days");

    // The copy says what the table says.
    let body = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let copy: AuditEvent = serde_json::from_slice(&body).unwrap();
    assert_eq!(copy, events[0]);
    assert_eq!(copy.action, "lock.force_release");

    // Deleting the locked version fails; only an explicit governance bypass may.
    let denied = s3
        .delete_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await;
    assert!(denied.is_err(), "a locked version was deleted");
    assert_eq!(copies(&world).await.len(), 1);
    s3.delete_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .bypass_governance_retention(true)
        .send()
        .await
        .expect("governance mode yields to an explicit bypass");
    assert!(copies(&world).await.is_empty());
}

#[tokio::test]
async fn compliance_mode_copies_resist_the_bypass_too() {
    let world = bootstrapped().await;
    let mut config = world.config.clone();
    config.audit.lock_mode = AuditLockMode::Compliance;
    config.audit.retention_days = 30;
    let store = StateStore::from_config(&config, &world.clients);
    store.append_audit(&event("qa", "drill.run")).await.unwrap();
    let found = copies(&world).await;
    assert_eq!(found.len(), 1);
    let (key, version) = &found[0];
    let s3 = &world.clients.s3;
    let head = s3
        .head_object()
        .bucket(&config.bucket_name)
        .key(key)
        .version_id(version)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.object_lock_mode().map(|m| m.as_str()),
        Some("COMPLIANCE")
    );
    let until = head.object_lock_retain_until_date().unwrap().secs();
    let days = (until - Utc::now().timestamp()) / 86_400;
    assert!((29..=30).contains(&days), "retained {days} days, not 30");
    let bypass = s3
        .delete_object()
        .bucket(&config.bucket_name)
        .key(key)
        .version_id(version)
        .bypass_governance_retention(true)
        .send()
        .await;
    assert!(bypass.is_err(), "compliance mode has no bypass");
}

#[tokio::test]
async fn opsplane_audit_reports_missing_changed_and_deleted_records() {
    let world = bootstrapped().await;
    let store = StateStore::from_config(&world.config, &world.clients);
    let env = "staging";
    let (kept, lost, changed, deleted) = (
        event(env, "backup.run"),
        event(env, "lock.takeover"),
        event(env, "drill.run")
            .with_execution("arn:aws:states:us-east-1:123456789012:execution:dr-drill:nightly-1"),
        event(env, "lock.force_release"),
    );
    for e in [&kept, &lost, &changed, &deleted] {
        store.append_audit(e).await.unwrap();
    }
    // Another environment's events are not this audit's business.
    store
        .append_audit(&event("prod", "backup.run"))
        .await
        .unwrap();

    let clean = opsplane_cli::audit::audit(&store, env, None).await.unwrap();
    assert!(clean.agrees(), "{}", opsplane_cli::audit::render(&clean));
    assert_eq!(clean.entries.len(), 4);

    // A table record whose copy is gone (written before Object Lock, or removed with the bypass).
    let s3 = &world.clients.s3;
    let bucket = &world.config.bucket_name;
    let lost_key = audit_key(&lost);
    let version = copies(&world)
        .await
        .into_iter()
        .find(|(k, _)| *k == lost_key)
        .unwrap()
        .1;
    s3.delete_object()
        .bucket(bucket)
        .key(&lost_key)
        .version_id(version)
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap();
    // A table record rewritten after the fact, and one deleted.
    let ddb = &world.clients.dynamodb;
    let pk = AttributeValue::S(format!("AUDIT#{}", changed.at.format("%Y-%m-%d")));
    ddb.update_item()
        .table_name(&world.config.table_name)
        .key("pk", pk.clone())
        .key(
            "sk",
            AttributeValue::S(format!("{}#{}", rfc3339(changed.at), changed.id)),
        )
        .update_expression("SET #r = :r")
        .expression_attribute_names("#r", "result")
        .expression_attribute_values(":r", AttributeValue::S("ok-after-all".into()))
        .send()
        .await
        .unwrap();
    ddb.delete_item()
        .table_name(&world.config.table_name)
        .key("pk", pk)
        .key(
            "sk",
            AttributeValue::S(format!("{}#{}", rfc3339(deleted.at), deleted.id)),
        )
        .send()
        .await
        .unwrap();

    let report = opsplane_cli::audit::audit(&store, env, None).await.unwrap();
    assert!(!report.agrees());
    let status = |id: &str| {
        report
            .entries
            .iter()
            .find(|e| e.event.id == id)
            .map(|e| e.status.clone())
    };
    assert_eq!(status(&kept.id), Some(CopyStatus::Verified));
    assert_eq!(status(&lost.id), Some(CopyStatus::MissingCopy));
    assert_eq!(
        status(&changed.id),
        Some(CopyStatus::Differs(vec!["result".to_owned()]))
    );
    assert_eq!(status(&deleted.id), None);
    assert_eq!(report.entries.len(), 3);
    assert_eq!(
        report.discrepancies,
        [Discrepancy::NotInTable {
            key: audit_key(&deleted),
            event: deleted.clone(),
        }]
    );
    let text = opsplane_cli::audit::render(&report);
    assert!(
        text.contains(&format!("MISSING S3 COPY {lost_key}")),
        "{text}"
    );
    assert!(text.contains("NOT IN THE TABLE"), "{text}");
    assert!(text.ends_with("table and S3 DISAGREE\n"), "{text}");

    // A range in the future is refused, naming the flag.
    let err = opsplane_cli::audit::audit(&store, env, Some(Utc::now() + chrono::Duration::days(1)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--since"), "{err}");
}
