//! Every setting of an instance and a cluster end to end through provision, one field at a time: a change
//! AWS makes in place is applied; one that cannot be undone waits for a person (rejected here, so nothing
//! changes); one AWS refuses is blocked with its rule, before anything is touched. After each change made
//! in place someone sets the field back by hand: drift names it, and the next provision puts it back.
//!
//! Runs in the instant world: the hand-made changes are done at once, as a drift check wants to see them.
//! The statuses changes pass through (UPDATING, modifying) are the timed tests' business.

use opsplane_statemachines::Status;
use serde_json::json;

use crate::provision::{Stage, assert_succeeded, healthy_endpoint};
use crate::settings::{applied_fields, assert_fails_naming};

const REGION: &str = "us-east-1";
const ADMIN: &str = "arn:aws:iam::123456789012:role/platform-admins";
const ADMIN_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";
const VIEW_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";

/// What provision does with one field's change.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// Applied in place, without approval.
    InPlace,
    /// Cannot be undone: the plan waits for a person's approval.
    Approval,
    /// Refused by the plan, naming its rule.
    Blocked(&'static str),
}

/// One field's change: the spec's text `from` becomes `to`.
struct Step {
    field: &'static str,
    from: String,
    to: String,
    outcome: Outcome,
}

fn step(field: &'static str, from: &str, to: &str, outcome: Outcome) -> Step {
    Step {
        field,
        from: from.to_owned(),
        to: to.to_owned(),
        outcome,
    }
}

/// Which resource's fields a walk changes by hand.
#[derive(Clone, Copy)]
enum Kind {
    Instance,
    Cluster,
}

/// Provisions `base`, then takes each step from the spec in force; see the module's comment.
async fn walk(stage: &Stage, kind: Kind, base: String, steps: Vec<Step>) {
    stage.upload(&base).await;
    assert_succeeded(&stage.provision().await);
    let mut spec = base;
    let mut drifted: Option<&str> = None;
    for Step {
        field,
        from,
        to,
        outcome,
    } in steps
    {
        assert!(spec.contains(&from), "{field}: the spec has no {from:?}");
        let next = spec.replacen(&from, &to, 1);
        stage.upload(&next).await;
        match outcome {
            Outcome::InPlace => {
                let run = stage.provision().await;
                assert_succeeded(&run);
                let fields = applied_fields(&run);
                assert!(fields.iter().any(|f| f == field), "{field}: {fields:?}");
                if let Some(back) = drifted.take() {
                    assert!(
                        fields.iter().any(|f| f == back),
                        "{back} put back: {fields:?}"
                    );
                }
                spec = next;
                by_hand(stage, kind, field).await;
                let drift = stage.drift().await;
                assert!(drift.drifted, "{field}: {}", drift.render());
                assert!(
                    drift.plan.changes.iter().any(|c| c.field == field),
                    "{field}: {}",
                    drift.render()
                );
                drifted = Some(field);
            }
            Outcome::Approval => {
                let run = stage
                    .local
                    .start_workflow("provision", json!({ "environment": stage.env }))
                    .unwrap();
                let pending = stage.pending_approval(&run).await;
                let changes = pending.plan["changes"].as_array().unwrap();
                let change = changes
                    .iter()
                    .find(|c| c["field"] == field)
                    .unwrap_or_else(|| panic!("{field}: {changes:?}"));
                assert_eq!(change["reversible"], false, "{field}: {change}");
                assert!(!change["reason"].as_str().unwrap_or_default().is_empty());
                stage
                    .local
                    .reject(&run, "sam", Some("not now"))
                    .await
                    .expect("reject");
                let rejected = stage.local.engine.wait_for(&run).await.unwrap();
                assert_eq!(rejected.status, Status::Failed, "{field}");
                stage.upload(&spec).await;
            }
            Outcome::Blocked(rule) => {
                let run = stage.provision().await;
                assert_fails_naming(&run, "PolicyViolation", rule);
                stage.upload(&spec).await;
            }
        }
        assert!(stage.lock_is_free().await, "{field}");
    }
}

/// Someone sets `field` back to the walk's first value, with the AWS API, behind opsplane's back.
async fn by_hand(stage: &Stage, kind: Kind, field: &str) {
    match kind {
        Kind::Instance => instance_by_hand(stage, field).await,
        Kind::Cluster => cluster_by_hand(stage, field).await,
    }
}

async fn instance_by_hand(stage: &Stage, field: &str) {
    let env = &stage.env;
    let modify = stage
        .local
        .clients
        .rds
        .modify_db_instance()
        .db_instance_identifier(format!("{env}-db"))
        .apply_immediately(true);
    let modify = match field {
        "instance_class" => modify.db_instance_class("db.t4g.micro"),
        "multi_az" => modify.multi_az(false),
        "backup_retention_days" => modify.backup_retention_period(1),
        "deletion_protection" => modify.deletion_protection(false),
        "vpc_security_group_ids" => modify.vpc_security_group_ids(&stage.security_groups[0]),
        "parameter_group" => modify.db_parameter_group_name(format!("{env}-pg16")),
        "option_group" => modify.option_group_name(format!("{env}-options-a")),
        "ca_certificate_identifier" => modify.ca_certificate_identifier("rds-ca-rsa2048-g1"),
        "backup_window" => modify.preferred_backup_window("03:00-03:30"),
        "maintenance_window" => modify.preferred_maintenance_window("sun:04:00-sun:04:30"),
        "auto_minor_version_upgrade" => modify.auto_minor_version_upgrade(true),
        "iam_database_authentication" => modify.enable_iam_database_authentication(false),
        "performance_insights" => modify.enable_performance_insights(false),
        "monitoring_interval" => modify.monitoring_interval(0),
        other => panic!("no hand-made change for {other}"),
    };
    modify.send().await.expect("the hand-made change");
}

/// An SDK error as a person reads it.
fn readable<E: std::error::Error>(err: E) -> String {
    aws_smithy_types::error::display::DisplayErrorContext(err).to_string()
}

/// One `UpdateClusterConfig` by hand, of the VPC configuration or the logging.
async fn cluster_config(
    stage: &Stage,
    vpc: Option<aws_sdk_eks::types::VpcConfigRequest>,
    logging: Option<aws_sdk_eks::types::Logging>,
) -> Result<(), String> {
    let update = stage.local.clients.eks.update_cluster_config();
    let update = update.name(&stage.env).set_resources_vpc_config(vpc);
    let sent = update.set_logging(logging).send().await;
    sent.map(drop).map_err(readable)
}

async fn cluster_by_hand(stage: &Stage, field: &str) {
    let eks = &stage.local.clients.eks;
    let cluster = &stage.env;
    match field {
        "endpoint" => {
            let vpc = aws_sdk_eks::types::VpcConfigRequest::builder()
                .endpoint_public_access(false)
                .endpoint_private_access(true);
            cluster_config(stage, Some(vpc.build()), None).await
        }
        "logging" => {
            let off = aws_sdk_eks::types::LogSetup::builder()
                .enabled(false)
                .set_types(Some(vec![aws_sdk_eks::types::LogType::Api]))
                .build();
            let logging = aws_sdk_eks::types::Logging::builder().cluster_logging(off);
            cluster_config(stage, None, Some(logging.build())).await
        }
        "security_group_ids" | "subnet_ids" => {
            let vpc = if field == "subnet_ids" {
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .set_subnet_ids(Some(stage.subnets.clone()))
                    .build()
            } else {
                let other = stage
                    .local
                    .world
                    .closed_security_group(REGION, &format!("{cluster}-extra"))
                    .await
                    .expect("another group");
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .security_group_ids(other)
                    .build()
            };
            cluster_config(stage, Some(vpc), None).await
        }
        "kubernetes_groups" => {
            let update = eks.update_access_entry().cluster_name(cluster);
            let update = update.principal_arn(ADMIN).kubernetes_groups("platform");
            update.send().await.map(drop).map_err(readable)
        }
        "policies" => {
            let cluster_wide = aws_sdk_eks::types::AccessScope::builder()
                .r#type(aws_sdk_eks::types::AccessScopeType::Cluster)
                .build();
            let associate = eks.associate_access_policy().cluster_name(cluster);
            let associate = associate.principal_arn(ADMIN).policy_arn(ADMIN_POLICY);
            associate
                .access_scope(cluster_wide)
                .send()
                .await
                .map(drop)
                .map_err(readable)
        }
        "configuration" => {
            let update = eks
                .update_addon()
                .cluster_name(cluster)
                .addon_name("vpc-cni");
            update
                .configuration_values("{}")
                .send()
                .await
                .map(drop)
                .map_err(readable)
        }
        "scaling" | "labels" | "taints" => {
            let update = eks
                .update_nodegroup_config()
                .cluster_name(cluster)
                .nodegroup_name("general");
            let update = match field {
                "scaling" => update.scaling_config(
                    aws_sdk_eks::types::NodegroupScalingConfig::builder()
                        .min_size(1)
                        .max_size(3)
                        .desired_size(1)
                        .build(),
                ),
                "labels" => update.labels(
                    aws_sdk_eks::types::UpdateLabelsPayload::builder()
                        .remove_labels("tier")
                        .build(),
                ),
                _ => update.taints(
                    aws_sdk_eks::types::UpdateTaintsPayload::builder()
                        .remove_taints(
                            aws_sdk_eks::types::Taint::builder()
                                .key("dedicated")
                                .effect(aws_sdk_eks::types::TaintEffect::NoSchedule)
                                .build(),
                        )
                        .build(),
                ),
            };
            update.send().await.map(drop).map_err(readable)
        }
        other => panic!("no hand-made change for {other}"),
    }
    .expect("the hand-made change");
}

/// The dev example (in the environment's network) with every instance setting at its first value, on
/// 500 GiB of gp3, where provisioned IOPS and throughput are allowed; the groups and key it names made.
async fn instance_base(stage: &Stage, url: &str) -> String {
    let env = &stage.env;
    let rds = &stage.world.clients.rds;
    for name in ["pg16", "pg16-tuned"] {
        let made = rds
            .create_db_parameter_group()
            .db_parameter_group_name(format!("{env}-{name}"))
            .db_parameter_group_family("postgres16")
            .description("opsplane test")
            .send()
            .await;
        made.expect("a parameter group");
    }
    for name in ["options-a", "options-b"] {
        let made = rds
            .create_option_group()
            .option_group_name(format!("{env}-{name}"))
            .engine_name("postgres")
            .major_engine_version("16")
            .option_group_description("opsplane test")
            .send()
            .await;
        made.expect("an option group");
    }
    let world = &stage.local.world;
    world
        .account_key(REGION, &format!("{env}-rds"))
        .await
        .expect("the account's key");
    let settings = format!(
        "    parameter_group: {env}-pg16\n    option_group: {env}-options-a\n    kms_key_id: alias/{env}-rds\n    \
         storage_type: gp3\n    iops: 12000\n    storage_throughput: 500\n    \
         ca_certificate_identifier: rds-ca-rsa2048-g1\n    backup_window: \"03:00-03:30\"\n    \
         maintenance_window: \"sun:04:00-sun:04:30\"\n    auto_minor_version_upgrade: true\n    \
         iam_database_authentication: false\n    performance_insights: false\n    monitoring_interval: 0\n",
    );
    stage
        .example("dev", url)
        .replace("allocated_storage_gb: 20\n", "allocated_storage_gb: 500\n")
        .replacen(
            "    publicly_accessible: false\n",
            &format!("    publicly_accessible: false\n{settings}"),
            1,
        )
}

#[tokio::test]
async fn each_instance_setting_is_planned_applied_and_its_drift_seen_in_the_instant_world() {
    use Outcome::{Approval, Blocked, InPlace};
    let stage = Stage::new().await;
    stage.local.world.instant().await.expect("instant world");
    let url = healthy_endpoint().await;
    let env = stage.env.clone();
    let base = instance_base(&stage, &url).await;
    let group = &stage.security_groups[0];
    let closed = stage
        .local
        .world
        .closed_security_group(REGION, &format!("{env}-extra"))
        .await
        .expect("another group");
    let mut pair = [group.clone(), closed];
    pair.sort();
    let other_key = stage
        .local
        .world
        .account_key(REGION, &format!("{env}-other"))
        .await
        .expect("another key");
    let steps = vec![
        step("instance_class", "db.t4g.micro", "db.t4g.small", InPlace),
        step("multi_az", "multi_az: false", "multi_az: true", InPlace),
        step(
            "backup_retention_days",
            "backup_retention_days: 1",
            "backup_retention_days: 3",
            InPlace,
        ),
        step(
            "deletion_protection",
            "deletion_protection: false",
            "deletion_protection: true",
            InPlace,
        ),
        step(
            "vpc_security_group_ids",
            &format!("vpc_security_group_ids: [{group}]"),
            &format!("vpc_security_group_ids: [{}]", pair.join(", ")),
            InPlace,
        ),
        step("parameter_group", "-pg16\n", "-pg16-tuned\n", InPlace),
        step("option_group", "-options-a\n", "-options-b\n", InPlace),
        step(
            "ca_certificate_identifier",
            "rds-ca-rsa2048-g1",
            "rds-ca-ecc384-g1",
            InPlace,
        ),
        step("backup_window", "03:00-03:30", "01:00-01:30", InPlace),
        step(
            "maintenance_window",
            "sun:04:00-sun:04:30",
            "sat:05:00-sat:05:30",
            InPlace,
        ),
        step(
            "auto_minor_version_upgrade",
            "auto_minor_version_upgrade: true",
            "auto_minor_version_upgrade: false",
            InPlace,
        ),
        step(
            "iam_database_authentication",
            "iam_database_authentication: false",
            "iam_database_authentication: true",
            InPlace,
        ),
        step(
            "performance_insights",
            "performance_insights: false",
            "performance_insights: true",
            InPlace,
        ),
        step(
            "monitoring_interval",
            "monitoring_interval: 0\n",
            "monitoring_interval: 60\n    monitoring_role_arn: arn:aws:iam::123456789012:role/rds-monitoring\n",
            InPlace,
        ),
        step(
            "allocated_storage_gb",
            "allocated_storage_gb: 500",
            "allocated_storage_gb: 600",
            Approval,
        ),
        step(
            "storage_type",
            "storage_type: gp3\n    iops: 12000\n    storage_throughput: 500\n",
            "storage_type: io1\n    iops: 12000\n",
            Approval,
        ),
        step("iops", "iops: 12000", "iops: 15000", Approval),
        step(
            "storage_throughput",
            "storage_throughput: 500",
            "storage_throughput: 600",
            Approval,
        ),
        step(
            "engine_version",
            "engine_version: \"16.4\"",
            "engine_version: \"16.6\"",
            Approval,
        ),
        step(
            "engine_version",
            "engine_version: \"16.4\"",
            "engine_version: \"16.3\"",
            Blocked("downgrade"),
        ),
        step(
            "allocated_storage_gb",
            "allocated_storage_gb: 500",
            "allocated_storage_gb: 400",
            Blocked("storage-shrink"),
        ),
        step(
            "kms_key_id",
            &format!("alias/{env}-rds"),
            &other_key,
            Blocked("storage-key"),
        ),
    ];
    walk(&stage, Kind::Instance, base, steps).await;
}

#[tokio::test]
async fn each_cluster_setting_is_planned_applied_and_its_drift_seen_in_the_instant_world() {
    use Outcome::{Approval, Blocked, InPlace};
    let stage = Stage::new().await;
    stage.local.world.instant().await.expect("instant world");
    let url = healthy_endpoint().await;
    let base = stage.example("dev", &url).replace(
        "  nodegroups:\n",
        &format!(
            "  endpoint_public_access: false\n  endpoint_private_access: true\n  \
             addons:\n    vpc-cni: {{ version: v1.18.3-eksbuild.1 }}\n  \
             access_entries:\n    - {{ principal_arn: \"{ADMIN}\", kubernetes_groups: [platform], \
             policies: [ {{ policy_arn: \"{ADMIN_POLICY}\" }} ] }}\n  nodegroups:\n"
        ),
    );
    let spot = "min: 1, max: 3, desired: 1, capacity_type: SPOT }";
    assert!(base.contains(spot), "the example's node group");
    let group = &stage.security_groups[0];
    assert_eq!(stage.subnets.len(), 3, "the world's subnets");
    let steps = vec![
        step(
            "endpoint",
            "endpoint_public_access: false",
            "endpoint_public_access: true\n  public_access_cidrs: [\"203.0.113.0/24\"]",
            InPlace,
        ),
        step(
            "logging",
            "  nodegroups:\n",
            "  logging: [api, audit]\n  nodegroups:\n",
            InPlace,
        ),
        step(
            "security_group_ids",
            "  nodegroups:\n",
            &format!("  security_group_ids: [{group}]\n  nodegroups:\n"),
            InPlace,
        ),
        step(
            "subnet_ids",
            &format!("subnet_ids: [{}]", stage.subnets.join(", ")),
            &format!("subnet_ids: [{}]", stage.subnets[..2].join(", ")),
            InPlace,
        ),
        step(
            "scaling",
            spot,
            "min: 2, max: 4, desired: 2, capacity_type: SPOT }",
            InPlace,
        ),
        step(
            "labels",
            "capacity_type: SPOT }",
            "capacity_type: SPOT, labels: { tier: general } }",
            InPlace,
        ),
        step(
            "taints",
            "capacity_type: SPOT,",
            "capacity_type: SPOT, taints: [{ key: dedicated, value: batch, effect: NO_SCHEDULE }],",
            InPlace,
        ),
        step(
            "kubernetes_groups",
            "kubernetes_groups: [platform]",
            "kubernetes_groups: [platform, oncall]",
            InPlace,
        ),
        step("policies", ADMIN_POLICY, VIEW_POLICY, InPlace),
        step(
            "configuration",
            "v1.18.3-eksbuild.1 }",
            "v1.18.3-eksbuild.1, configuration: { env: { WARM_IP_TARGET: \"2\" } } }",
            InPlace,
        ),
        step(
            "version",
            "version: v1.18.3-eksbuild.1",
            "version: v1.19.0-eksbuild.1",
            Approval,
        ),
        step(
            "version",
            "version: v1.18.3-eksbuild.1",
            "version: v1.17.0-eksbuild.1",
            Blocked("downgrade"),
        ),
        step(
            "version",
            "version: \"1.30\"",
            "version: \"1.31\"",
            Approval,
        ),
        step(
            "version",
            "version: \"1.30\"",
            "version: \"1.29\"",
            Blocked("downgrade"),
        ),
        step(
            "capacity_type",
            "capacity_type: SPOT",
            "capacity_type: ON_DEMAND",
            Blocked("nodegroup-replacement"),
        ),
        step(
            "ami_type",
            "capacity_type: SPOT,",
            "capacity_type: SPOT, ami_type: BOTTLEROCKET_x86_64,",
            Blocked("nodegroup-replacement"),
        ),
        step(
            "disk_size",
            "capacity_type: SPOT,",
            "capacity_type: SPOT, disk_size: 80,",
            Blocked("nodegroup-replacement"),
        ),
    ];
    walk(&stage, Kind::Cluster, base, steps).await;
}
