//! The local world's model of AWS met by the workflows: the quotas, refusals and throttles of
//! docs/LOCAL-WORLD.md, each with the plane's observable answer (a clear error naming the limit, a pre-check
//! that avoids it, or a wait that outlasts it), the lock released and nothing half-done left.

use opsplane_fn_backup::probe::ProbeSettings;
use opsplane_statemachines::Status;
use serde_json::{Value, json};

use crate::backup::Plane;
use crate::harness::not_ready_by_state;

/// Overrides `plane`'s world settings.
async fn configure(plane: &Plane, settings: Value) {
    plane
        .local
        .world
        .configure(&settings)
        .await
        .expect("world settings");
}

/// What the model refused, throttled and injected in `plane`'s world so far.
async fn counters(plane: &Plane) -> Value {
    plane.local.world.counters().await.expect("world counters")
}

#[tokio::test]
async fn a_backup_past_the_manual_snapshot_quota_is_refused_before_it_creates_anything() {
    let plane = Plane::new("three-instances.yaml", ProbeSettings::default()).await;
    // Two snapshots left under the quota; the backup needs three.
    configure(&plane, json!({ "quotas": { "manual_snapshots": 2 } })).await;
    let run = plane.run_backup().await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some("QuotaExceeded"),
        "{:?}",
        run.cause
    );
    let cause = run.cause.unwrap_or_default();
    assert!(
        cause.contains("needs 3 manual DB snapshots")
            && cause.contains("the 2 RDS allows per Region")
            && cause.contains("ManualSnapshots"),
        "{cause}"
    );
    // The pre-check avoided the refusal: RDS was never asked, nothing was created, no lock was taken.
    assert_eq!(counters(&plane).await.get("refused.snapshot_quota"), None);
    for db in ["orders", "billing", "users"] {
        let instance = format!("{}-{db}", plane.env);
        assert!(plane.snapshots(None, &instance).await.is_empty());
    }
    assert!(plane.lock_is_free().await);
}

#[tokio::test]
async fn cross_region_copies_past_the_in_flight_limit_wait_for_a_free_slot() {
    let plane = Plane::new("three-instances.yaml", ProbeSettings::default()).await;
    configure(&plane, json!({ "quotas": { "copies_in_flight": 1 } })).await;
    let run = plane.run_backup().await;
    assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
    // RDS refused the copies that found the one slot taken; each was asked again until it got one.
    let refused = counters(&plane).await["refused.copies_in_flight"]
        .as_u64()
        .unwrap_or_default();
    assert!(refused >= 1, "{refused}");
    let polls = not_ready_by_state(&plane.engine, &run.execution_arn);
    assert_eq!(
        polls.get("CopySnapshot").copied(),
        Some(refused as usize),
        "{polls:?}"
    );
    for db in ["orders", "billing", "users"] {
        let instance = format!("{}-{db}", plane.env);
        assert_eq!(plane.snapshots(Some("us-west-2"), &instance).await.len(), 1);
    }
    assert!(plane.lock_is_free().await);
}

#[tokio::test]
async fn a_snapshot_of_an_instance_being_modified_waits_until_it_is_available() {
    let plane = Plane::new("three-instances.yaml", ProbeSettings::default()).await;
    let instance = format!("{}-orders", plane.env);
    // A resize applied now keeps the instance `modifying` for the model's five minutes.
    plane
        .local
        .clients
        .rds
        .modify_db_instance()
        .db_instance_identifier(&instance)
        .db_instance_class("db.t4g.large")
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    let run = plane.run_backup().await;
    assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
    // RDS refused the snapshot (InvalidDBInstanceState) until the resize was applied.
    assert!(
        counters(&plane).await["refused.snapshot_not_available"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    );
    let polls = not_ready_by_state(&plane.engine, &run.execution_arn);
    assert!(polls.contains_key("Snapshot"), "{polls:?}");
    assert_eq!(plane.snapshots(None, &instance).await.len(), 1);
    assert!(plane.lock_is_free().await);
}

#[tokio::test]
async fn rds_and_eks_throttling_is_absorbed_by_the_definitions_retries() {
    let plane = Plane::new("three-instances.yaml", ProbeSettings::default()).await;
    // Buckets admitting 2 RDS and 2 EKS requests per virtual second (burst 1, one a second): the three
    // snapshots the Map starts at one virtual instant need three, so one meets ThrottlingException, and so
    // does the export's third EKS call at the instant of its first two. The SDK's back-off (its retried
    // attempt a virtual second later) and the definitions' Throttled retrier (which waits in virtual time)
    // get them through.
    configure(
        &plane,
        json!({ "throttle": {
            "rds": { "burst": 1, "rate": 1.0 },
            "eks": { "burst": 1, "rate": 1.0 },
        } }),
    )
    .await;
    let run = plane.run_backup().await;
    assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
    let throttled = counters(&plane).await["throttled.rds"]
        .as_u64()
        .unwrap_or_default();
    assert!(throttled >= 1, "RDS throttled some calls: {throttled}");
    let throttled = counters(&plane).await["throttled.eks"]
        .as_u64()
        .unwrap_or_default();
    assert!(throttled >= 1, "EKS throttled some calls: {throttled}");
    assert!(plane.lock_is_free().await);
}

#[tokio::test]
async fn a_restore_outside_the_sources_network_is_out_of_the_probes_reach() {
    use opsplane_local::WorldNetwork;
    use opsplane_shared::aws::rds::{Network, Rds, RestoreSource};
    use opsplane_shared::probe::Reachability;

    let plane = Plane::new("drill.yaml", ProbeSettings::default()).await;
    let run = plane.run_backup().await;
    assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
    let source = format!("{}-db", plane.env);
    let rds = Rds::new(plane.local.clients.rds.clone());
    let snapshot = rds.manual_snapshots(Some(&source)).await.unwrap()[0]
        .id
        .clone();
    let network = rds.instance(&source).await.unwrap().unwrap().network;
    assert!(
        network.subnet_group.is_some(),
        "seeded into its environment's network"
    );
    let probe = WorldNetwork::new(plane.local.world.clone(), &plane.local.config.region);
    let restore = |id: String, network: Network| {
        let rds = rds.clone();
        let snapshot = snapshot.clone();
        async move {
            rds.restore(
                &RestoreSource::Snapshot(snapshot),
                &id,
                "db.t4g.small",
                &network,
                &Default::default(),
            )
            .await
        }
    };

    // Beside its source, the probe reaches it; named nowhere, RDS puts it in the default VPC, out of reach.
    let beside = format!("{}-beside", plane.env);
    restore(beside.clone(), network.clone()).await.unwrap();
    assert_eq!(probe.reaches(&beside).await, Ok(()));
    let stray = format!("{}-stray", plane.env);
    restore(stray.clone(), Network::default()).await.unwrap();
    let why = probe.reaches(&stray).await.unwrap_err();
    assert!(why.contains("DB subnet group default"), "{why}");
    // With the right subnets but the VPC's default security group, the probe is still refused.
    let no_groups = format!("{}-nogroups", plane.env);
    let subnets_only = Network {
        security_group_ids: Vec::new(),
        ..network.clone()
    };
    restore(no_groups.clone(), subnets_only).await.unwrap();
    let why = probe.reaches(&no_groups).await.unwrap_err();
    assert!(why.contains("admits the probe"), "{why}");

    // An account without a default VPC refuses a restore that names no DB subnet group, as AWS does.
    configure(&plane, json!({ "default_vpc": false })).await;
    let refused = restore(format!("{}-nowhere", plane.env), Network::default())
        .await
        .unwrap_err();
    let text = opsplane_shared::error::redacted_chain(&refused);
    assert!(text.contains("InvalidVPCNetworkStateFault"), "{text}");
    restore(format!("{}-home", plane.env), network)
        .await
        .unwrap();
}

/// Fifty workflow runs (backups and drills) over three environments at once, with 1% of the RDS, EKS,
/// DynamoDB and S3 requests answered 5xx and 1% throttled before they reach moto.
#[tokio::test]
async fn soak_fifty_runs_with_injected_faults_leave_no_lock_no_scratch_instance_and_one_event_each()
{
    use std::sync::Arc;

    use opsplane_local::LocalPlane;
    use opsplane_shared::domain::backup::{TAG_DRILL, TAG_ENVIRONMENT};

    use crate::harness::{World, root, unique};
    use crate::notify::Subscription;

    let world = World::new().await;
    let (local, _) = LocalPlane::connect(world.config.clone())
        .await
        .expect("local plane");
    let local = Arc::new(local);
    let fixture = std::fs::read_to_string(root().join("tests/fixtures/specs/soak.yaml")).unwrap();
    let envs: Vec<String> = (0..3).map(|_| unique("s")).collect();
    for env in &envs {
        local
            .seed_environment(&fixture.replace("{env}", env))
            .await
            .expect("seed");
    }
    let names: Vec<&str> = envs.iter().map(String::as_str).collect();
    let subscription = Subscription::for_environments(&world, &names).await;
    local
        .world
        .configure(
            &json!({ "faults": { "server_error_rate": 0.01, "throttle_rate": 0.01, "seed": 7 } }),
        )
        .await
        .unwrap();

    // Each environment runs its share in sequence (one lock each); the three run at once.
    let runs: Vec<tokio::task::JoinHandle<Vec<(String, opsplane_statemachines::Description)>>> =
        envs.iter()
            .enumerate()
            .map(|(i, env)| {
                let (local, env) = (local.clone(), env.clone());
                tokio::spawn(async move {
                    let mut done = Vec::new();
                    for k in 0..(if i < 2 { 17 } else { 16 }) {
                        let workflow = if k % 3 == 2 { "dr-drill" } else { "backup" };
                        let run = local
                            .run(workflow, json!({ "environment": env }))
                            .await
                            .expect("execution");
                        done.push((workflow.to_owned(), run));
                    }
                    done
                })
            })
            .collect();
    let mut done = Vec::new();
    for r in runs {
        done.extend(r.await.unwrap());
    }
    assert_eq!(done.len(), 50);
    for (workflow, run) in &done {
        assert_eq!(
            run.status,
            Status::Succeeded,
            "{workflow} {}: {:?} {:?}",
            run.execution_arn,
            run.error,
            run.cause
        );
    }
    let counters = local.world.counters().await.unwrap();
    let injected: u64 = counters
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("injected."))
        .filter_map(|(_, v)| v.as_u64())
        .sum();
    assert!(injected >= 10, "faults were injected: {counters}");

    let lock = local.lock();
    for env in &envs {
        assert!(
            lock.status(env).await.unwrap().is_none(),
            "{env}'s lock is free"
        );
    }
    let instances = local
        .clients
        .rds
        .describe_db_instances()
        .send()
        .await
        .unwrap();
    let scratch: Vec<&str> = instances
        .db_instances()
        .iter()
        .filter(|i| {
            let tags = i.tag_list();
            tags.iter().any(|t| t.key() == Some(TAG_DRILL))
                && tags.iter().any(|t| {
                    t.key() == Some(TAG_ENVIRONMENT) && envs.iter().any(|e| t.value() == Some(e))
                })
        })
        .filter_map(|i| i.db_instance_identifier())
        .collect();
    assert!(scratch.is_empty(), "scratch instances left: {scratch:?}");
    let events = subscription.received().await;
    for (_, run) in &done {
        assert_eq!(
            events.get(&run.execution_arn).map(Vec::len),
            Some(1),
            "one outcome event for {}",
            run.execution_arn
        );
    }
    assert_eq!(events.len(), 50);
}

#[tokio::test]
async fn every_function_acts_with_its_template_role_and_an_action_taken_away_is_denied() {
    use crate::harness::{root, unique};

    // The backups above ran with every function on its template role; here one action goes missing.
    let plane = Plane::new("three-instances.yaml", ProbeSettings::default()).await;
    let template = std::fs::read_to_string(root().join("bootstrap/template.yaml")).unwrap();
    // The backup function's resource runs from its key to the next one at the same indentation.
    let start = template
        .find("\n  BackupFunction:\n")
        .expect("the backup function");
    let end = start
        + 1
        + template[start + 1..]
            .find("\n  ProvisionFunction:\n")
            .unwrap();
    let eks = "[eks:DescribeCluster, eks:ListNodegroups, eks:DescribeNodegroup,";
    assert_eq!(
        template[start..end].matches(eks).count(),
        1,
        "its EKS grant"
    );
    let trimmed = template[start..end].replace(eks, "[eks:DescribeCluster, eks:DescribeNodegroup,");
    let copy = std::env::temp_dir().join(format!("{}-template.yaml", unique("iam")));
    std::fs::write(
        &copy,
        format!("{}{trimmed}{}", &template[..start], &template[end..]),
    )
    .unwrap();
    configure(
        &plane,
        json!({ "iam": { "template": copy.to_str().unwrap() } }),
    )
    .await;
    let run = plane.run_backup().await;
    std::fs::remove_file(&copy).unwrap();

    // The export of the cluster's node groups is refused as AWS refuses it, and the backup fails cleanly.
    assert_eq!(run.status, Status::Failed);
    let cause = run.cause.unwrap_or_default();
    assert!(
        cause.contains("AccessDeniedException")
            && cause.contains("is not authorized to perform: eks:ListNodegroups"),
        "{cause}"
    );
    assert_eq!(
        counters(&plane).await["denied.function:backup.eks:ListNodegroups"].as_u64(),
        Some(1)
    );
    assert!(plane.lock_is_free().await);
}

#[tokio::test]
async fn an_eks_upgrade_waits_for_the_control_plane_before_its_node_groups() {
    use crate::provision::{Stage, assert_succeeded, healthy_endpoint};

    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let v1 = stage.example("dev", &url);
    stage.upload(&v1).await;
    assert_succeeded(&stage.provision().await);
    assert!(
        v1.contains("version: \"1.30\""),
        "the example's cluster version"
    );
    stage
        .upload(&v1.replace("version: \"1.30\"", "version: \"1.31\""))
        .await;
    // A version upgrade cannot be undone, so it waits for a person's approval.
    let execution = stage
        .local
        .start_workflow("provision", json!({ "environment": stage.env }))
        .unwrap();
    stage.pending_approval(&execution).await;
    stage
        .local
        .approve(&execution, "jane", Some("Kubernetes 1.31"))
        .await
        .expect("approve");
    let run = stage.local.engine.wait_for(&execution).await.unwrap();
    assert_succeeded(&run);
    // The control plane was UPDATING for the model's 25 minutes, then each node group rolled its nodes.
    let polls = not_ready_by_state(&stage.local.engine, &run.execution_arn);
    assert!(
        polls.get("WaitStable").is_some_and(|n| *n >= 2),
        "{polls:?}"
    );
    let cluster = stage.cluster(&stage.env).await.expect("the cluster");
    assert_eq!(cluster.status, "ACTIVE");
    assert_eq!(cluster.version.as_deref(), Some("1.31"));
    for ng in &cluster.nodegroups {
        assert_eq!(ng.version.as_deref(), Some("1.31"), "{}", ng.name);
    }
    assert!(stage.lock_is_free().await);
}

#[tokio::test]
async fn a_drill_that_gives_up_on_a_restore_still_creating_tears_it_down_once_rds_allows() {
    use crate::drill::{drill_instances, run_drill};

    let plane = Plane::new("drill-tight-rto.yaml", ProbeSettings::default()).await;
    assert_eq!(plane.run_backup().await.status, Status::Succeeded);
    // A restore of five hours outlasts the drill's polling (about two and a half hours).
    configure(&plane, json!({ "durations": { "rds_restore": 18000 } })).await;
    let run = run_drill(&plane, json!({ "environment": plane.env })).await;
    assert_eq!(run.status, Status::Failed, "{:?}", run.cause);
    // RDS refused to delete an instance still `creating`; the teardown asked again until it could.
    let polls = not_ready_by_state(&plane.engine, &run.execution_arn);
    assert!(polls.contains_key("Teardown"), "{polls:?}");
    assert!(
        counters(&plane).await["refused.delete_creating"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    );
    assert!(
        drill_instances(&plane).await.is_empty(),
        "nothing left running"
    );
    assert!(plane.lock_is_free().await);
}

#[tokio::test]
async fn a_node_group_change_waits_while_the_control_plane_is_being_updated() {
    use crate::provision::{Stage, assert_succeeded, healthy_endpoint};

    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let v1 = stage.example("dev", &url);
    stage.upload(&v1).await;
    assert_succeeded(&stage.provision().await);
    // Someone starts a control plane upgrade by hand: the cluster is UPDATING for the model's 25 minutes.
    let cluster = stage.env.clone();
    stage
        .local
        .clients
        .eks
        .update_cluster_version()
        .name(&cluster)
        .version("1.31")
        .send()
        .await
        .expect("the hand-made upgrade");
    // Meanwhile the node group is to grow.
    let grow = "min: 1, max: 3, desired: 1, capacity_type: SPOT }";
    assert!(v1.contains(grow), "the example's node group");
    stage
        .upload(&v1.replace(grow, "min: 1, max: 3, desired: 2, capacity_type: SPOT }"))
        .await;
    let run = stage.provision().await;
    assert_succeeded(&run);
    // EKS refused the scaling while the control plane was updating (ResourceInUseException); the apply
    // asked again until it could.
    let polls = not_ready_by_state(&stage.local.engine, &run.execution_arn);
    assert!(polls.contains_key("Apply"), "{polls:?}");
    let counters = stage.local.world.counters().await.unwrap();
    assert!(
        counters["refused.eks_not_active"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    );
    let ng = &stage.cluster(&cluster).await.unwrap().nodegroups[0];
    assert_eq!(ng.desired, Some(2));
    assert!(stage.lock_is_free().await);
}

#[tokio::test]
async fn a_listing_goes_on_when_the_record_its_marker_names_is_deleted_between_pages() {
    // A Region of its own, so that no other test's instances move the page boundaries; the operator's
    // default world makes and deletes at once.
    let world = crate::harness::World::new().await;
    let conf = world
        .clients
        .rds
        .config()
        .to_builder()
        .region(aws_sdk_rds::config::Region::new("ap-northeast-3"))
        .build();
    let rds = aws_sdk_rds::Client::from_conf(conf);
    let names: Vec<String> = (0..41).map(|i| world.name(&format!("db{i:02}"))).collect();
    for name in &names {
        rds.create_db_instance()
            .db_instance_identifier(name)
            .db_instance_class("db.t4g.micro")
            .engine("postgres")
            .master_username("opsplane")
            .master_user_password("local-only-secret")
            .allocated_storage(20)
            .send()
            .await
            .expect("create");
    }
    let ids = |out: &aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput| {
        out.db_instances()
            .iter()
            .filter_map(|i| i.db_instance_identifier().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let first = rds
        .describe_db_instances()
        .max_records(20)
        .send()
        .await
        .expect("first page");
    assert_eq!(ids(&first), names[..20]);
    // Another caller deletes the record the next page would start with.
    rds.delete_db_instance()
        .db_instance_identifier(&names[20])
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("delete");
    let second = rds
        .describe_db_instances()
        .max_records(20)
        .marker(first.marker().expect("more than one page"))
        .send()
        .await
        .expect("the records beyond the marker");
    assert_eq!(ids(&second), names[21..]);
    assert_eq!(second.marker(), None);
}
