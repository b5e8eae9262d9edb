use opsplane_shared::bootstrap::{Outcome, bootstrap};

use crate::harness::World;

async fn run(world: &World) -> opsplane_shared::bootstrap::BootstrapReport {
    let cfg = &world.config;
    bootstrap(
        &world.clients.dynamodb,
        &world.clients.s3,
        &cfg.table_name,
        &cfg.bucket_name,
        &cfg.region,
    )
    .await
    .expect("bootstrap succeeds against moto")
}

#[tokio::test]
async fn first_run_creates_everything_with_the_required_settings() {
    let world = World::new().await;
    let report = run(&world).await;
    assert!(report.changed());
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.setting == "table" && s.outcome == Outcome::Created)
    );
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.setting == "bucket" && s.outcome == Outcome::Created)
    );

    let ddb = &world.clients.dynamodb;
    let table = ddb
        .describe_table()
        .table_name(&world.config.table_name)
        .send()
        .await
        .unwrap();
    let table = table.table().unwrap();
    let keys: Vec<_> = table
        .key_schema()
        .iter()
        .map(|k| k.attribute_name().to_owned())
        .collect();
    assert_eq!(keys, ["pk", "sk"]);
    assert_eq!(
        table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str()),
        Some("PAY_PER_REQUEST")
    );
    let ttl = ddb
        .describe_time_to_live()
        .table_name(&world.config.table_name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|d| d.attribute_name()),
        Some("expires_at")
    );
    let pitr = ddb
        .describe_continuous_backups()
        .table_name(&world.config.table_name)
        .send()
        .await
        .unwrap();
    let status = pitr
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        .map(|s| s.as_str().to_owned());
    assert_eq!(status.as_deref(), Some("ENABLED"));

    let s3 = &world.clients.s3;
    let bucket = &world.config.bucket_name;
    let versioning = s3
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    let enc = s3
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert!(
        !enc.server_side_encryption_configuration()
            .unwrap()
            .rules()
            .is_empty()
    );
    let pab = s3
        .get_public_access_block()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let pab = pab.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            pab.block_public_acls(),
            pab.ignore_public_acls(),
            pab.block_public_policy(),
            pab.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let policy = s3.get_bucket_policy().bucket(bucket).send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert_eq!(
        policy["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"],
        "false"
    );
}

#[tokio::test]
async fn second_run_changes_nothing() {
    let world = World::new().await;
    let first = run(&world).await;
    let policy_before = world
        .clients
        .s3
        .get_bucket_policy()
        .bucket(&world.config.bucket_name)
        .send()
        .await
        .unwrap()
        .policy;
    let second = run(&world).await;
    assert!(!second.changed(), "second run changed something:\n{second}");
    assert_eq!(first.steps.len(), second.steps.len());
    assert!(
        second
            .steps
            .iter()
            .all(|s| s.outcome == Outcome::AlreadyExisted)
    );
    let policy_after = world
        .clients
        .s3
        .get_bucket_policy()
        .bucket(&world.config.bucket_name)
        .send()
        .await
        .unwrap()
        .policy;
    assert_eq!(policy_before, policy_after);
}

#[tokio::test]
async fn deleted_bucket_policy_is_restored() {
    let world = World::new().await;
    run(&world).await;
    let s3 = &world.clients.s3;
    let bucket = &world.config.bucket_name;
    s3.delete_bucket_policy()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert!(s3.get_bucket_policy().bucket(bucket).send().await.is_err());

    let report = run(&world).await;
    let changed: Vec<_> = report
        .steps
        .iter()
        .filter(|s| s.outcome != Outcome::AlreadyExisted)
        .collect();
    assert_eq!(changed.len(), 1, "only the policy should change: {report}");
    assert_eq!(changed[0].setting, "tls-only policy");
    let policy = s3.get_bucket_policy().bucket(bucket).send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert_eq!(
        policy["Statement"][0]["Sid"],
        "OpsplaneDenyInsecureTransport"
    );
}

#[tokio::test]
async fn half_created_state_converges() {
    let world = World::new().await;
    // A table created by hand without TTL or point-in-time recovery, and a bare bucket.
    let ddb = &world.clients.dynamodb;
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    ddb.create_table()
        .table_name(&world.config.table_name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    world
        .clients
        .s3
        .create_bucket()
        .bucket(&world.config.bucket_name)
        .send()
        .await
        .unwrap();

    let report = run(&world).await;
    let outcome = |setting: &str| {
        report
            .steps
            .iter()
            .find(|s| s.setting == setting)
            .map(|s| s.outcome)
    };
    assert_eq!(outcome("table"), Some(Outcome::AlreadyExisted));
    assert_eq!(outcome("bucket"), Some(Outcome::AlreadyExisted));
    assert_eq!(outcome("ttl on expires_at"), Some(Outcome::Updated));
    assert_eq!(outcome("point-in-time recovery"), Some(Outcome::Updated));
    assert_eq!(outcome("versioning"), Some(Outcome::Updated));
    assert!(!run(&world).await.changed());
}
