//! An instance's placement, storage, key and maintenance settings through provision: created as the spec
//! says, changed in place, a storage change waiting for approval, another key blocked, names that do not
//! exist refused before anything changes, and a change made behind opsplane's back reported as drift; a
//! cluster's endpoint, logging and node groups (their labels, capacity and launch templates) likewise.

use opsplane_statemachines::Status;
use serde_json::json;

use opsplane_statemachines::Description;

use crate::provision::{Stage, assert_succeeded, healthy_endpoint};

const REGION: &str = "us-east-1";

/// The fields of the changes a succeeded provision applied, in its plan's order.
pub fn applied_fields(run: &Description) -> Vec<String> {
    run.output.as_ref().unwrap()["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap().to_owned())
        .collect()
}

/// `run` failed with `error`, its cause naming `what`.
pub fn assert_fails_naming(run: &Description, error: &str, what: &str) {
    assert_eq!(run.status, Status::Failed, "{:?}", run.cause);
    assert_eq!(run.error.as_deref(), Some(error), "{:?}", run.cause);
    let cause = run.cause.as_deref().unwrap_or_default();
    assert!(cause.contains(what), "{what}: {cause}");
}

/// The dev example (in the environment's network) with a parameter group, the account's key and its
/// windows; `extra` replaces nothing and is added to the instance's settings.
async fn placed(stage: &Stage, url: &str, extra: &str) -> String {
    let network = stage
        .local
        .world
        .network(REGION, &stage.env)
        .await
        .expect("the environment's network");
    stage
        .local
        .world
        .account_key(REGION, &format!("{}-rds", stage.env))
        .await
        .expect("the account's key");
    for name in ["pg16", "pg16-tuned"] {
        let group = format!("{}-{name}", stage.env);
        let made = stage
            .world
            .clients
            .rds
            .create_db_parameter_group()
            .db_parameter_group_name(&group)
            .db_parameter_group_family("postgres16")
            .description("opsplane test")
            .send()
            .await;
        if let Err(err) = made {
            let text = aws_smithy_types::error::display::DisplayErrorContext(&err).to_string();
            assert!(text.contains("AlreadyExists"), "{text}");
        }
    }
    // The example already names the environment's subnet group and security group.
    let example = stage.example("dev", url);
    assert!(example.contains(&format!(
        "db_subnet_group: {}",
        network.subnet_group.expect("a subnet group")
    )));
    assert!(example.contains(&network.security_group_ids[0]));
    let settings = format!(
        "    parameter_group: {env}-pg16\n    kms_key_id: alias/{env}-rds\n    storage_type: gp3\n    \
         backup_window: \"03:00-03:30\"\n    maintenance_window: \"sun:04:00-sun:04:30\"\n{extra}",
        env = stage.env,
    );
    example.replacen(
        "    publicly_accessible: false\n",
        &format!("    publicly_accessible: false\n{settings}"),
        1,
    )
}

#[tokio::test]
async fn settings_are_created_changed_in_place_and_a_storage_change_waits_for_approval() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let db = format!("{}-db", stage.env);
    let v1 = placed(&stage, &url, "").await;
    stage.upload(&v1).await;
    assert_succeeded(&stage.provision().await);
    let made = stage.instance(&db).await.expect("created").settings;
    assert_eq!(
        made.db_subnet_group.as_deref(),
        Some(format!("{}-db", stage.env).as_str())
    );
    assert_eq!(made.vpc_security_group_ids.len(), 1);
    assert_eq!(
        made.parameter_group.as_deref(),
        Some(format!("{}-pg16", stage.env).as_str())
    );
    assert_eq!(made.storage_type.as_deref(), Some("gp3"));
    // Named by alias, reported by ARN, as RDS does; the plan takes the two for the same key.
    let key = stage
        .local
        .world
        .account_key(REGION, &format!("{}-rds", stage.env))
        .await
        .unwrap();
    assert_eq!(made.kms_key_id.as_deref(), Some(key.as_str()));
    assert_eq!(made.backup_window.as_deref(), Some("03:00-03:30"));
    assert_eq!(
        made.maintenance_window.as_deref(),
        Some("sun:04:00-sun:04:30")
    );

    // In place and reversible: applied without approval, nothing else touched.
    let v2 = v1
        .replace("-pg16\n", "-pg16-tuned\n")
        .replace("sun:04:00-sun:04:30", "sat:05:00-sat:05:30");
    stage.upload(&v2).await;
    let run = stage.provision().await;
    assert_succeeded(&run);
    let fields = applied_fields(&run);
    assert_eq!(fields, ["parameter_group", "maintenance_window"]);
    let changed = stage.instance(&db).await.unwrap().settings;
    assert_eq!(
        changed.parameter_group.as_deref(),
        Some(format!("{}-pg16-tuned", stage.env).as_str())
    );
    assert_eq!(
        changed.maintenance_window.as_deref(),
        Some("sat:05:00-sat:05:30")
    );
    assert_eq!(changed.db_subnet_group, made.db_subnet_group);

    // A storage change cannot be changed back for hours: even dev waits for a person.
    stage
        .upload(&v2.replace("storage_type: gp3", "storage_type: io1\n    iops: 3000"))
        .await;
    let storage = stage
        .local
        .start_workflow("provision", json!({ "environment": stage.env }))
        .unwrap();
    let pending = stage.pending_approval(&storage).await;
    let changes = pending.plan["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes.iter().all(|c| c["reversible"] == false));
    assert!(changes[0]["reason"].as_str().unwrap().contains("six hours"));
    stage
        .local
        .reject(&storage, "sam", Some("not this week"))
        .await
        .expect("reject");
    let rejected = stage.local.engine.wait_for(&storage).await.unwrap();
    assert_eq!(rejected.status, Status::Failed);
    assert_eq!(
        stage
            .instance(&db)
            .await
            .unwrap()
            .settings
            .storage_type
            .as_deref(),
        Some("gp3")
    );
    assert!(stage.lock_is_free().await);
}

#[tokio::test]
async fn groups_and_keys_that_do_not_exist_are_refused_before_anything_changes() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let db = format!("{}-db", stage.env);
    let good = placed(&stage, &url, "").await;
    for (wrong, field) in [
        (
            good.replace(
                &format!("db_subnet_group: {}-db", stage.env),
                "db_subnet_group: nowhere",
            ),
            "rds[0].db_subnet_group",
        ),
        (good.replace("-pg16\n", "-pg15\n"), "rds[0].parameter_group"),
        (good.replace("-rds\n", "-gone\n"), "rds[0].kms_key_id"),
        (
            good.replace(&stage.security_groups[0], "sg-0ffffffffffffffff"),
            "rds[0].vpc_security_group_ids[0]",
        ),
        (
            good.replace(&stage.subnets[1], "subnet-0fffffffffffffff0"),
            "eks.subnet_ids[1]",
        ),
    ] {
        stage.upload(&wrong).await;
        let run = stage.provision().await;
        assert_fails_naming(&run, "InvalidInput", field);
        assert!(
            stage.instance(&db).await.is_none(),
            "{field}: nothing created"
        );
        assert!(stage.cluster(&stage.env).await.is_none(), "{field}");
        assert!(stage.lock_is_free().await);
    }
}

#[tokio::test]
async fn another_key_blocks_and_a_group_changed_behind_our_back_is_drift() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let db = format!("{}-db", stage.env);
    let v1 = placed(&stage, &url, "").await;
    stage.upload(&v1).await;
    assert_succeeded(&stage.provision().await);

    // Someone sets the other parameter group by hand.
    stage
        .world
        .clients
        .rds
        .modify_db_instance()
        .db_instance_identifier(&db)
        .db_parameter_group_name(format!("{}-pg16-tuned", stage.env))
        .apply_immediately(true)
        .send()
        .await
        .expect("modify by hand");
    let drift = stage.drift().await;
    assert!(drift.drifted, "{}", drift.render());
    let change = &drift.plan.changes[0];
    assert_eq!(change.field, "parameter_group");
    assert_eq!(change.to, format!("{}-pg16", stage.env));

    // Another key for the same instance: RDS cannot re-key it, so the plan is blocked and nothing changes.
    let other = stage
        .local
        .world
        .account_key(REGION, &format!("{}-other", stage.env))
        .await
        .expect("another key");
    stage
        .upload(&v1.replace(&format!("alias/{}-rds", stage.env), &other))
        .await;
    let run = stage.provision().await;
    assert_fails_naming(&run, "PolicyViolation", "storage-key");
    assert!(stage.lock_is_free().await);
}

#[tokio::test]
async fn a_clusters_endpoint_logging_and_a_node_groups_labels_change_in_place_and_spot_stays_spot()
{
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let v1 = stage.example("dev", &url);
    stage.upload(&v1).await;
    assert_succeeded(&stage.provision().await);
    let made = stage.cluster(&stage.env).await.expect("created");
    assert_eq!(
        made.endpoint_public_access,
        Some(false),
        "private unless the spec opens it"
    );
    assert_eq!(made.nodegroups[0].capacity_type.as_deref(), Some("SPOT"));

    let v2 = v1
        .replace(
            "  nodegroups:\n",
            "  endpoint_public_access: true\n  public_access_cidrs: [\"203.0.113.0/24\"]\n  logging: [api, audit]\n  nodegroups:\n",
        )
        .replace(
            "desired: 1, capacity_type: SPOT }",
            "desired: 1, capacity_type: SPOT, labels: { tier: general } }",
        );
    stage.upload(&v2).await;
    let run = stage.provision().await;
    assert_succeeded(&run);
    let fields = applied_fields(&run);
    assert_eq!(fields, ["endpoint", "logging", "labels"]);
    // Each update took the control plane UPDATING, one after the other.
    assert!(
        crate::harness::not_ready_by_state(&stage.local.engine, &run.execution_arn)
            .contains_key("WaitStable")
    );
    let changed = stage.cluster(&stage.env).await.unwrap();
    assert_eq!(changed.endpoint_public_access, Some(true));
    assert_eq!(changed.public_access_cidrs, ["203.0.113.0/24"]);
    assert_eq!(changed.logging, ["api", "audit"]);
    assert_eq!(
        changed.nodegroups[0].labels.get("tier").map(String::as_str),
        Some("general")
    );
    assert_eq!(changed.status, "ACTIVE");

    // On-demand instead of spot is not something a node group changes: blocked, nothing touched.
    stage
        .upload(&v2.replace("capacity_type: SPOT", "capacity_type: ON_DEMAND"))
        .await;
    let run = stage.provision().await;
    assert_fails_naming(&run, "PolicyViolation", "nodegroup-replacement");
    let after = stage.cluster(&stage.env).await.unwrap();
    assert_eq!(after.nodegroups[0].capacity_type.as_deref(), Some("SPOT"));
    assert!(stage.lock_is_free().await);
}

#[tokio::test]
async fn a_protected_environments_endpoint_open_to_everyone_is_refused_before_anything_is_made() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let prod = stage.example("prod", &url);
    assert!(prod.contains("protected: true"));
    stage
        .upload(&prod.replace(
            "endpoint_public_access: false",
            "endpoint_public_access: true",
        ))
        .await;
    let run = stage.provision().await;
    assert_fails_naming(&run, "PolicyViolation", "public-endpoint");
    assert!(stage.cluster(&stage.env).await.is_none());
    assert!(stage.lock_is_free().await);
}

#[tokio::test]
async fn without_a_default_vpc_an_example_provisions_into_its_subnets_and_security_groups() {
    let stage = Stage::new().await;
    stage
        .local
        .world
        .configure(&json!({ "default_vpc": false }))
        .await
        .expect("no default VPC");
    let url = healthy_endpoint().await;
    let example = stage.example("staging", &url);

    // Without its placement RDS has nowhere to put the instance in this account.
    let unplaced: String = example
        .lines()
        .filter(|l| !l.contains("db_subnet_group:") && !l.contains("vpc_security_group_ids:"))
        .map(|l| format!("{l}\n"))
        .collect();
    stage.upload(&unplaced).await;
    let run = stage.provision().await;
    assert_eq!(run.status, Status::Failed);
    assert!(
        run.cause
            .as_deref()
            .unwrap_or_default()
            .contains("DBSubnetGroupName"),
        "{:?}",
        run.cause
    );
    assert!(stage.lock_is_free().await);

    stage.upload(&example).await;
    assert_succeeded(&stage.provision().await);
    let db = stage
        .instance(&format!("{}-db", stage.env))
        .await
        .expect("created")
        .settings;
    assert_eq!(db.db_subnet_group, Some(format!("{}-db", stage.env)));
    assert_eq!(db.vpc_security_group_ids, stage.security_groups);
}

#[tokio::test]
async fn in_the_instant_world_a_launch_template_version_rolls_the_nodes_is_exported_and_drift_sees_it()
 {
    let stage = Stage::new().await;
    // Instant: the hand-made update below is done at once, as the drift check wants.
    stage.local.world.instant().await.expect("instant world");
    let url = healthy_endpoint().await;
    let template = format!("{}-nodes", stage.env);
    let world = &stage.local.world;
    let (id, first) = world
        .launch_template(REGION, &template, false)
        .await
        .expect("the platform team's template");
    assert_eq!(first, "1");
    let spot = "desired: 1, capacity_type: SPOT }";
    let v1 = stage.example("dev", &url).replace(
        spot,
        &format!(
            "desired: 1, capacity_type: SPOT, launch_template: {{ name: {template}, version: \"1\" }} }}"
        ),
    );

    // A template that does not exist: refused naming the field, nothing made.
    stage
        .upload(&v1.replace(&format!("name: {template},"), "name: nowhere,"))
        .await;
    let run = stage.provision().await;
    assert_fails_naming(&run, "InvalidInput", "eks.nodegroups[0].launch_template");
    assert!(stage.cluster(&stage.env).await.is_none());

    stage.upload(&v1).await;
    assert_succeeded(&stage.provision().await);
    let made = stage.cluster(&stage.env).await.expect("created");
    let used = made.nodegroups[0]
        .launch_template
        .clone()
        .expect("a template");
    assert_eq!(
        (used.id.as_deref(), used.version.as_deref()),
        (Some(id.as_str()), Some("1"))
    );

    // The team publishes version 2 and the spec moves to it: the nodes roll, in place.
    let (_, second) = world
        .launch_template(REGION, &template, true)
        .await
        .unwrap();
    assert_eq!(second, "2");
    let v2 = v1.replace("version: \"1\" }", "version: \"2\" }");
    stage.upload(&v2).await;
    let run = stage.provision().await;
    assert_succeeded(&run);
    assert_eq!(applied_fields(&run), ["launch_template_version"]);
    let rolled = stage.cluster(&stage.env).await.unwrap();
    let version = |c: &opsplane_shared::domain::plan::ActualCluster| {
        c.nodegroups[0]
            .launch_template
            .as_ref()
            .and_then(|t| t.version.clone())
    };
    assert_eq!(version(&rolled).as_deref(), Some("2"));

    // The backup's export holds the template's version.
    let backup = stage
        .run("backup", json!({ "environment": stage.env }))
        .await;
    assert_eq!(backup.status, Status::Succeeded, "{:?}", backup.cause);
    let export = crate::eks_export::exported_cluster(&stage.world, &backup).await;
    assert_eq!(
        export["nodegroups"][0]["launchTemplate"]["version"], "2",
        "{export}"
    );
    assert_eq!(export["nodegroups"][0]["launchTemplate"]["id"], id.as_str());

    // Someone rolls the nodes back to version 1 by hand: drift names the version and what the spec wants.
    let by_hand = aws_sdk_eks::types::LaunchTemplateSpecification::builder()
        .id(&id)
        .version("1")
        .build();
    stage
        .local
        .clients
        .eks
        .update_nodegroup_version()
        .cluster_name(&stage.env)
        .nodegroup_name("general")
        .launch_template(by_hand)
        .send()
        .await
        .expect("the hand-made roll back");
    let drift = stage.drift().await;
    assert!(drift.drifted, "{}", drift.render());
    let change = &drift.plan.changes[0];
    assert_eq!(
        (change.field.as_str(), change.to.as_str()),
        ("launch_template_version", "2")
    );
    assert_eq!(change.from.as_deref(), Some("1"));
    assert!(stage.lock_is_free().await);
}
