//! `opsplane bootstrap --kms-key-id`: the table and the bucket encrypted with a customer-managed key (created
//! in moto), checked through DescribeTable and GetBucketEncryption; the bucket has Object Lock.

use opsplane_shared::bootstrap::{BootstrapOptions, BootstrapReport, Outcome, bootstrap_with};

use crate::harness::World;

async fn create_key(world: &World) -> String {
    let kms = aws_sdk_kms::Client::new(&world.clients.sdk);
    kms.create_key()
        .description(world.name("opsplane-state"))
        .send()
        .await
        .expect("CreateKey in moto")
        .key_metadata
        .expect("key metadata")
        .arn
        .expect("key ARN")
}

async fn run(world: &World, key: &str) -> BootstrapReport {
    let cfg = &world.config;
    bootstrap_with(
        &world.clients.dynamodb,
        &world.clients.s3,
        &cfg.table_name,
        &cfg.bucket_name,
        &cfg.region,
        BootstrapOptions::local_world().with_kms_key(Some(key.to_owned())),
    )
    .await
    .expect("bootstrap with a KMS key")
}

#[tokio::test]
async fn bootstrap_encrypts_the_table_and_the_bucket_with_the_customer_key() {
    let world = World::new().await;
    let key = create_key(&world).await;
    opsplane_shared::domain::arn::validate_kms_key_arn(&key).expect("moto's key ARN is a key ARN");
    let report = run(&world, &key).await;
    let outcome = |resource: &str, setting: &str| {
        report
            .steps
            .iter()
            .find(|s| s.resource.starts_with(resource) && s.setting == setting)
            .map(|s| s.outcome)
    };
    assert_eq!(outcome("table", "kms encryption"), Some(Outcome::Created));
    assert_eq!(outcome("bucket", "kms encryption"), Some(Outcome::Created));

    let table = world
        .clients
        .dynamodb
        .describe_table()
        .table_name(&world.config.table_name)
        .send()
        .await
        .unwrap();
    let sse = table
        .table()
        .unwrap()
        .sse_description()
        .expect("SSEDescription");
    assert_eq!(sse.sse_type().map(|t| t.as_str()), Some("KMS"));
    assert_eq!(sse.status().map(|s| s.as_str()), Some("ENABLED"));
    assert_eq!(sse.kms_master_key_arn(), Some(key.as_str()));

    let enc = world
        .clients
        .s3
        .get_bucket_encryption()
        .bucket(&world.config.bucket_name)
        .send()
        .await
        .unwrap();
    let rules = enc.server_side_encryption_configuration().unwrap().rules();
    assert_eq!(rules.len(), 1);
    let by_default = rules[0].apply_server_side_encryption_by_default().unwrap();
    assert_eq!(by_default.sse_algorithm().as_str(), "aws:kms");
    assert_eq!(by_default.kms_master_key_id(), Some(key.as_str()));
    assert_eq!(rules[0].bucket_key_enabled(), Some(true));

    let lock = world
        .clients
        .s3
        .get_object_lock_configuration()
        .bucket(&world.config.bucket_name)
        .send()
        .await
        .unwrap();
    let lock = lock.object_lock_configuration().unwrap();
    assert_eq!(
        lock.object_lock_enabled().map(|e| e.as_str()),
        Some("Enabled")
    );
    assert!(
        lock.rule().is_none(),
        "no default retention: only audit copies are locked"
    );

    // Converged: a second run reads everything back as it is and changes nothing.
    let second = run(&world, &key).await;
    assert!(!second.changed(), "{second}");
}

#[tokio::test]
async fn a_bucket_on_aws_managed_encryption_moves_to_the_customer_key() {
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
    .unwrap();
    let key = create_key(&world).await;
    let report = run(&world, &key).await;
    let bucket_kms = report
        .steps
        .iter()
        .find(|s| s.resource.starts_with("bucket") && s.setting == "kms encryption")
        .unwrap();
    assert_eq!(bucket_kms.outcome, Outcome::Updated, "{report}");
    let enc = world
        .clients
        .s3
        .get_bucket_encryption()
        .bucket(&cfg.bucket_name)
        .send()
        .await
        .unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .kms_master_key_id(),
        Some(key.as_str())
    );
}
