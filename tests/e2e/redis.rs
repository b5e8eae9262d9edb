//! Redis replication groups through provision: made in the environment's cache subnet group behind its
//! security group with the AUTH token its secret holds, their node type and replicas changed in place, an
//! engine upgrade waiting for a person, and what ElastiCache refuses (a downgrade, encryption changed after
//! creation, a subnet group that does not exist, an unencrypted cache in a protected environment) refused
//! before anything changes; a change made by hand is drift.

use opsplane_shared::aws::elasticache::Caches;
use opsplane_shared::domain::plan::ActualReplicationGroup;
use opsplane_statemachines::Status;
use serde_json::json;
use std::sync::Arc;

use crate::provision::{Stage, assert_succeeded, healthy_endpoint};
use crate::settings::{applied_fields, assert_fails_naming};

/// The dev example with one Redis group `<env>-cache` (`extra` added to it), its cache subnet group made
/// over the world's subnets and its AUTH token kept in Secrets Manager under opsplane/.
async fn with_redis(stage: &Stage, url: &str, extra: &str) -> String {
    let env = &stage.env;
    let clients = &stage.world.clients;
    let made = clients
        .elasticache
        .create_cache_subnet_group()
        .cache_subnet_group_name(format!("{env}-cache"))
        .cache_subnet_group_description("opsplane test")
        .set_subnet_ids(Some(stage.subnets.clone()))
        .send()
        .await;
    if let Err(err) = made {
        let text = aws_smithy_types::error::display::DisplayErrorContext(&err).to_string();
        assert!(text.contains("AlreadyExists"), "{text}");
    }
    let secret = clients
        .secrets_manager
        .create_secret()
        .name(format!("opsplane/{env}/redis-auth"))
        .secret_string("a-token-of-thirty-two-characters")
        .send()
        .await;
    let arn = match secret {
        Ok(out) => out.arn.expect("the secret's ARN"),
        Err(_) => clients
            .secrets_manager
            .describe_secret()
            .secret_id(format!("opsplane/{env}/redis-auth"))
            .send()
            .await
            .expect("the secret")
            .arn
            .expect("the secret's ARN"),
    };
    let group = &stage.security_groups[0];
    let redis = format!(
        "redis:\n  - replication_group_id: {env}-cache\n    engine_version: \"7.0\"\n    \
         node_type: cache.t4g.small\n    replicas_per_node_group: 1\n    cache_subnet_group: {env}-cache\n    \
         security_group_ids: [{group}]\n    at_rest_encryption: true\n    transit_encryption: true\n    \
         auth_token_secret: {arn}\n{extra}"
    );
    stage
        .example("dev", url)
        .replace("health:\n", &format!("{redis}health:\n"))
}

async fn group(stage: &Stage) -> Option<ActualReplicationGroup> {
    Caches::new(stage.world.clients.elasticache.clone())
        .actual(&format!("{}-cache", stage.env))
        .await
        .expect("describe the group")
}

#[tokio::test]
async fn a_redis_group_is_made_changed_in_place_upgraded_with_approval_and_refused_as_elasticache_refuses()
 {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let v1 = with_redis(&stage, &url, "").await;
    let env = stage.env.clone();

    // A cache subnet group that does not exist: refused naming the field, nothing made.
    stage
        .upload(&v1.replace(
            &format!("cache_subnet_group: {env}-cache"),
            "cache_subnet_group: nowhere",
        ))
        .await;
    let run = stage.provision().await;
    assert_fails_naming(&run, "InvalidInput", "redis[0].cache_subnet_group");
    assert!(group(&stage).await.is_none());

    stage.upload(&v1).await;
    let run = stage.provision().await;
    assert_succeeded(&run);
    let made = group(&stage).await.expect("made");
    assert_eq!(made.status, "available");
    assert_eq!(made.node_type.as_deref(), Some("cache.t4g.small"));
    assert_eq!(made.replicas_per_node_group, 1);
    assert_eq!(made.engine_version.as_deref(), Some("7.0"));
    assert_eq!(made.security_group_ids, stage.security_groups);
    assert_eq!(
        made.cache_subnet_group.as_deref(),
        Some(format!("{env}-cache").as_str())
    );
    assert!(made.at_rest_encryption && made.transit_encryption);
    assert_eq!(
        made.tags.get("ManagedBy").map(String::as_str),
        Some("opsplane")
    );
    // Made with the AUTH token its secret holds.
    let described = stage
        .world
        .clients
        .elasticache
        .describe_replication_groups()
        .replication_group_id(format!("{env}-cache"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.replication_groups()[0].auth_token_enabled(),
        Some(true)
    );
    // Creating took ElastiCache's modelled minutes, waited for by the definition.
    let polls = crate::harness::not_ready_by_state(&stage.local.engine, &run.execution_arn);
    assert!(polls.contains_key("WaitStable"), "{polls:?}");

    // A larger node type and one more replica: in place, one change of the group at a time.
    let v2 = v1
        .replace("node_type: cache.t4g.small", "node_type: cache.t4g.medium")
        .replace("replicas_per_node_group: 1", "replicas_per_node_group: 2");
    stage.upload(&v2).await;
    let run = stage.provision().await;
    assert_succeeded(&run);
    assert_eq!(
        applied_fields(&run),
        ["node_type", "replicas_per_node_group"]
    );
    let changed = group(&stage).await.unwrap();
    assert_eq!(changed.node_type.as_deref(), Some("cache.t4g.medium"));
    assert_eq!(changed.replicas_per_node_group, 2);
    let counters = stage.local.world.counters().await.unwrap();
    assert!(
        counters["refused.cache_not_available"]
            .as_u64()
            .is_none_or(|n| n == 0),
        "the second change waited for the first: {counters}"
    );

    // A newer engine cannot be taken back: even dev waits for a person.
    let v3 = v2.replace("engine_version: \"7.0\"", "engine_version: \"7.1\"");
    stage.upload(&v3).await;
    let approved = stage.provision_approved().await;
    assert_eq!(approved["changes"][0]["field"], "engine_version");
    assert_eq!(approved["changes"][0]["reversible"], false);
    assert_eq!(
        group(&stage).await.unwrap().engine_version.as_deref(),
        Some("7.1")
    );

    // What ElastiCache refuses is refused before anything changes.
    for (spec, rule) in [
        (
            v3.replace("engine_version: \"7.1\"", "engine_version: \"6.2\""),
            "downgrade",
        ),
        (
            v3.replace("transit_encryption: true", "transit_encryption: false")
                .replace("    auth_token_secret: ", "    # auth_token_secret: "),
            "redis-replacement",
        ),
    ] {
        stage.upload(&spec).await;
        let run = stage.provision().await;
        assert_fails_naming(&run, "PolicyViolation", rule);
        assert_eq!(
            group(&stage).await.unwrap().engine_version.as_deref(),
            Some("7.1")
        );
    }

    // Someone scales the nodes back by hand: drift names it.
    stage.upload(&v3).await;
    stage
        .local
        .world
        .configure(&json!({ "durations": { "elasticache_modify": 0 } }))
        .await
        .unwrap();
    stage
        .local
        .clients
        .elasticache
        .modify_replication_group()
        .replication_group_id(format!("{env}-cache"))
        .cache_node_type("cache.t4g.small")
        .apply_immediately(true)
        .send()
        .await
        .expect("the hand-made change");
    let drift = stage.drift().await;
    assert!(drift.drifted, "{}", drift.render());
    let change = &drift.plan.changes[0];
    assert_eq!(
        (change.field.as_str(), change.to.as_str()),
        ("node_type", "cache.t4g.medium")
    );
    assert!(stage.lock_is_free().await);
}

#[tokio::test]
async fn a_protected_environments_cache_not_encrypted_in_transit_is_refused_before_it_is_made() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let spec = with_redis(&stage, &url, "")
        .await
        .replace("transit_encryption: true", "transit_encryption: false")
        .replace("    auth_token_secret: ", "    # auth_token_secret: ");
    stage.upload(&format!("protected: true\n{spec}")).await;
    let run = stage.provision().await;
    assert_eq!(run.status, Status::Failed);
    assert_fails_naming(&run, "PolicyViolation", "redis-encryption");
    assert!(group(&stage).await.is_none());
    assert!(stage.instance(&format!("{}-db", stage.env)).await.is_none());
}

#[tokio::test]
async fn a_backup_snapshots_the_instance_and_the_redis_group_exports_it_and_prunes_only_our_expired_ones()
 {
    use crate::backup::{Plane, deps};
    use opsplane_fn_backup::probe::ProbeSettings;
    use opsplane_shared::clock::{Clock, ManualClock};
    use opsplane_shared::domain::backup::Manifest;

    let plane = Plane::new("redis-backup.yaml", ProbeSettings::default()).await;
    let group = format!("{}-cache", plane.env);
    let bucket = format!("{}-redis-exports", plane.env);
    let clients = &plane.world.clients;
    clients
        .s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("the export bucket");

    let mut names = Vec::new();
    for _ in 0..2 {
        let run = plane.run_backup().await;
        assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
        let key = run.output.as_ref().unwrap()["manifest"]["manifest_key"]
            .as_str()
            .expect("the manifest's key")
            .to_owned();
        let manifest: Manifest = serde_json::from_slice(&plane.object(&key).await).unwrap();
        // Both engines in one manifest, each with its description's digest.
        assert_eq!(manifest.snapshots.len(), 1);
        assert_eq!(manifest.caches.len(), 1);
        let cache = &manifest.caches[0];
        assert_eq!(cache.instance, group);
        let description = plane.object(&cache.description.key).await;
        assert_eq!(
            opsplane_shared::aws::objects::sha256_hex(&description),
            cache.description.sha256
        );
        // Exported to the bucket as ElastiCache writes it: <name>-0001.rdb.
        assert_eq!(
            cache.copy.as_deref(),
            Some(format!("s3://{bucket}/{}", cache.snapshot_id).as_str())
        );
        clients
            .s3
            .head_object()
            .bucket(&bucket)
            .key(format!("{}-0001.rdb", cache.snapshot_id))
            .send()
            .await
            .expect("the exported .rdb");
        names.push(cache.snapshot_id.clone());
        // Distinct creation times, so "newest" is well defined.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // A snapshot someone made by hand, without our tags.
    let foreign = crate::harness::unique("by-hand");
    clients
        .elasticache
        .create_snapshot()
        .replication_group_id(&group)
        .snapshot_name(&foreign)
        .send()
        .await
        .expect("the hand-made snapshot");

    // A year later everything is expired: the third backup keeps its own (keep_last 1) and the foreign one.
    let later: Arc<dyn Clock> = Arc::new(ManualClock::at(
        chrono::Utc::now() + chrono::Duration::days(365),
    ));
    plane.reregister(deps(&plane.local, ProbeSettings::default()).with_clock(later));
    let run = plane.run_backup().await;
    assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
    let pruned = &run.output.as_ref().unwrap()["retention"]["caches"];
    let mut deleted: Vec<String> = serde_json::from_value(pruned["deleted"].clone()).unwrap();
    deleted.sort();
    names.sort();
    assert_eq!(deleted, names, "{pruned}");
    let left: Vec<String> = Caches::new(clients.elasticache.clone())
        .manual_snapshots()
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.group == group)
        .map(|s| s.name)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&foreign), "{left:?}");
    assert!(plane.lock_is_free().await);
}

/// A client of `$sdk` whose every call gets `answer` once, with the SDK's own retries off: moto never
/// throttles, so the fault is injected on this client only.
macro_rules! throttled_client {
    ($sdk:ident, $rule:expr) => {{
        use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, create_mock_http_client};
        let conf = $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new("us-east-1"))
            .credentials_provider($sdk::config::Credentials::new(
                "testing", "testing", None, None, "mock",
            ))
            .http_client(create_mock_http_client())
            .interceptor(
                MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(&$rule),
            )
            .retry_config($sdk::config::retry::RetryConfig::disabled())
            .build();
        $sdk::Client::from_conf(conf)
    }};
}

#[tokio::test]
async fn elasticache_and_cloud_control_throttling_surface_as_throttled_for_the_definitions_to_retry()
 {
    use aws_smithy_mocks::mock;
    const QUERY: &str = r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>"#;
    let rule = mock!(aws_sdk_elasticache::Client::describe_snapshots)
        .sequence()
        .http_status(400, Some(QUERY.to_owned()))
        .build();
    let caches = Caches::new(throttled_client!(aws_sdk_elasticache, rule));
    let err = opsplane_shared::OpsError::from(caches.snapshot("s").await.unwrap_err());
    assert_eq!(err.name().as_str(), "Throttled", "{}", err.full_message());

    const JSON: &str = r#"{"__type":"ThrottlingException","Message":"Rate exceeded"}"#;
    let rule = mock!(aws_sdk_cloudcontrol::Client::get_resource)
        .sequence()
        .http_status(400, Some(JSON.to_owned()))
        .build();
    let ec2 = opsplane_shared::aws::ec2_resources::Ec2Resources::new(throttled_client!(
        aws_sdk_cloudcontrol,
        rule
    ));
    let kind = opsplane_shared::aws::ec2_resources::Ec2Kind::SecurityGroup;
    let err = opsplane_shared::OpsError::from(ec2.exists(kind, "sg-1").await.unwrap_err());
    assert_eq!(err.name().as_str(), "Throttled", "{}", err.full_message());
}
