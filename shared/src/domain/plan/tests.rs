//! The planner's tests: every kind of change, reversibility, approvals and the policy findings.

use super::*;
use crate::domain::spec::EnvironmentSpec;

fn spec(extra: &str) -> EnvironmentSpec {
    EnvironmentSpec::parse(&spec_text(extra)).unwrap()
}

fn spec_text(extra: &str) -> String {
    format!(
        r#"
environment: staging
tags: {{ Project: acme, Environment: staging, ManagedBy: opsplane }}
rds:
  - {{ identifier: acme-db, engine: postgres, engine_version: "16.4", instance_class: db.t4g.medium,
      allocated_storage_gb: 100, multi_az: true, backup_retention_days: 14, deletion_protection: true,
      storage_encrypted: true, publicly_accessible: false, vpc_security_group_ids: [sg-0aaaaaaaaaaaaaaaa] }}
eks:
  cluster: acme
  version: "1.30"
  role_arn: arn:aws:iam::1:role/eks
  node_role_arn: arn:aws:iam::1:role/node
  subnet_ids: [subnet-a, subnet-b]
  nodegroups:
    - {{ name: general, instance_types: [t3.medium], min: 2, max: 10, desired: 3 }}
{extra}"#
    )
}

fn matching(spec: &EnvironmentSpec) -> ActualState {
    let db = &spec.rds[0];
    let eks = spec.eks.as_ref().unwrap();
    let ng = &eks.nodegroups[0];
    ActualState {
        instances: vec![ActualInstance {
            identifier: db.identifier.clone(),
            status: "available".into(),
            instance_class: db.instance_class.clone(),
            engine: "postgres".into(),
            engine_version: db.engine_version.clone(),
            allocated_storage_gb: db.allocated_storage_gb,
            multi_az: db.multi_az,
            backup_retention_days: db.backup_retention_days,
            deletion_protection: db.deletion_protection,
            storage_encrypted: Some(true),
            publicly_accessible: Some(false),
            pending: vec![],
            tags: spec.tags.clone(),
            settings: InstanceSettings {
                vpc_security_group_ids: db.vpc_security_group_ids.clone(),
                ..InstanceSettings::default()
            },
        }],
        cluster: Some(ActualCluster {
            name: eks.cluster.clone(),
            status: "ACTIVE".into(),
            version: eks.version.clone(),
            health_issues: vec![],
            tags: spec.tags.clone(),
            nodegroups: vec![ActualNodegroup {
                name: ng.name.clone(),
                status: "ACTIVE".into(),
                version: eks.version.clone(),
                instance_types: ng.instance_types.clone(),
                min: ng.min,
                max: ng.max,
                desired: ng.desired,
                health_issues: vec![],
                tags: spec.tags.clone(),
                ..ActualNodegroup::default()
            }],
            ..ActualCluster::default()
        }),
        replication_groups: Vec::new(),
    }
}

fn only_change(p: &Plan) -> &Change {
    assert_eq!(p.changes.len(), 1, "{:#?}", p.changes);
    &p.changes[0]
}

#[test]
fn a_matching_world_plans_nothing() {
    let s = spec("");
    let p = plan(&s, &matching(&s));
    assert!(p.empty && !p.blocked && !p.needs_approval, "{p:#?}");
    assert!(p.findings.is_empty());
    assert!(p.render_table().contains("nothing to do"));
    assert!(existing_findings(&matching(&s)).is_empty());
}

#[test]
fn nothing_exists_creates_everything_in_order() {
    let s = spec("");
    let p = plan(&s, &ActualState::default());
    let kinds: Vec<_> = p
        .changes
        .iter()
        .map(|c| (c.kind, c.resource.to_string()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (ChangeKind::Create, "rds:acme-db".to_owned()),
            (ChangeKind::Create, "eks:acme".to_owned()),
            (ChangeKind::Create, "nodegroup:acme/general".to_owned()),
        ]
    );
    assert!(p.changes.iter().all(|c| c.reversible));
    assert!(!p.needs_approval && !p.blocked);
    // Nothing existing changes, so nothing needs a pre-change snapshot.
    assert!(p.instances_changed().is_empty());
}

#[test]
fn instance_class_is_a_reversible_modify() {
    let s = spec("");
    let mut a = matching(&s);
    a.instances[0].instance_class = "db.t4g.small".into();
    let p = plan(&s, &a);
    let c = only_change(&p);
    assert_eq!(
        (c.kind, c.field.as_str()),
        (ChangeKind::Modify, "instance_class")
    );
    assert_eq!(c.from.as_deref(), Some("db.t4g.small"));
    assert_eq!(c.to, "db.t4g.medium");
    assert!(c.reversible);
    assert!(!p.needs_approval);
    assert_eq!(p.instances_changed(), vec!["acme-db".to_owned()]);
}

#[test]
fn every_modifiable_setting_is_planned() {
    let s = spec("");
    let mut a = matching(&s);
    let i = &mut a.instances[0];
    i.multi_az = Some(false);
    i.backup_retention_days = Some(7);
    i.deletion_protection = Some(false);
    i.publicly_accessible = Some(true);
    let p = plan(&s, &a);
    let fields: Vec<_> = p.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "multi_az",
            "backup_retention_days",
            "deletion_protection",
            "publicly_accessible"
        ]
    );
    assert!(
        p.changes
            .iter()
            .all(|c| c.reversible && c.kind == ChangeKind::Modify)
    );
}

#[test]
fn storage_grows_irreversibly_and_never_shrinks() {
    let s = spec("");
    let mut a = matching(&s);
    a.instances[0].allocated_storage_gb = Some(50);
    let p = plan(&s, &a);
    let c = only_change(&p);
    assert!(!c.reversible);
    assert!(c.reason.contains("cannot shrink"));
    assert!(
        p.needs_approval,
        "an irreversible change waits for approval"
    );

    a.instances[0].allocated_storage_gb = Some(200);
    let p = plan(&s, &a);
    assert!(p.changes.is_empty());
    assert!(p.blocked);
    assert_eq!(p.blocking().next().unwrap().rule, "storage-shrink");
}

#[test]
fn engine_upgrades_are_irreversible_and_downgrades_block() {
    let s = spec("");
    let mut a = matching(&s);
    a.instances[0].engine_version = Some("15.7".into());
    let p = plan(&s, &a);
    let c = only_change(&p);
    assert_eq!(c.kind, ChangeKind::Upgrade);
    assert!(!c.reversible && c.reason.contains("major"));
    assert!(p.needs_approval);

    a.instances[0].engine_version = Some("16.2".into());
    let c = only_change(&plan(&s, &a)).clone();
    assert!(!c.reversible && c.reason.contains("minor"));

    a.instances[0].engine_version = Some("16.10".into());
    let p = plan(&s, &a);
    assert!(p.blocked && p.changes.is_empty());
    assert_eq!(p.blocking().next().unwrap().rule, "downgrade");
}

#[test]
fn unencrypted_or_public_specs_block() {
    let s = EnvironmentSpec::parse(
            "environment: dev\nrds:\n  - { identifier: d-db, engine: postgres, instance_class: db.t4g.micro }\n",
        )
        .unwrap();
    let p = plan(&s, &ActualState::default());
    assert!(p.blocked);
    let rules: Vec<_> = p.blocking().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, ["encryption"]);
    // The tags and the security groups are missing too: four warnings, which alone would not block.
    assert_eq!(
        p.findings
            .iter()
            .filter(|f| f.severity == Severity::Warn)
            .count(),
        4
    );

    let public = EnvironmentSpec::parse(
            "environment: dev\nrds:\n  - { identifier: d-db, engine: postgres, instance_class: db.t4g.micro, storage_encrypted: true, publicly_accessible: true }\n",
        )
        .unwrap();
    let p = plan(&public, &ActualState::default());
    let rules: Vec<_> = p.blocking().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, ["public-access"]);
    assert!(p.render_table().contains("BLOCKED"));
}

#[test]
fn an_existing_unencrypted_instance_cannot_be_fixed_in_place() {
    let s = spec("");
    let mut a = matching(&s);
    a.instances[0].storage_encrypted = Some(false);
    let p = plan(&s, &a);
    assert!(p.blocked);
    assert!(existing_findings(&a).iter().any(|f| f.rule == "encryption"));
}

#[test]
fn missing_tags_warn_but_do_not_block() {
    let s = EnvironmentSpec::parse(
            "environment: dev\ntags: { Project: acme }\nrds:\n  - { identifier: d-db, engine: postgres, instance_class: db.t4g.micro, storage_encrypted: true, vpc_security_group_ids: [sg-0aaaaaaaaaaaaaaaa] }\n",
        )
        .unwrap();
    let p = plan(&s, &ActualState::default());
    assert!(!p.blocked);
    let missing: Vec<_> = p
        .findings
        .iter()
        .map(|f| {
            (
                f.severity,
                f.message.contains("Environment") || f.message.contains("ManagedBy"),
            )
        })
        .collect();
    assert_eq!(missing, [(Severity::Warn, true), (Severity::Warn, true)]);
}

#[test]
fn approval_required_by_the_spec_only_when_something_changes() {
    let s = spec("approval: { required: true }\n");
    assert!(!plan(&s, &matching(&s)).needs_approval);
    let mut a = matching(&s);
    a.instances[0].instance_class = "db.t4g.large".into();
    assert!(plan(&s, &a).needs_approval);
}

#[test]
fn nodegroups_scale_reversibly_and_upgrade_irreversibly() {
    let s = spec("");
    let mut a = matching(&s);
    a.cluster.as_mut().unwrap().nodegroups[0].desired = Some(5);
    let p = plan(&s, &a);
    let c = only_change(&p);
    assert_eq!(c.kind, ChangeKind::Scale);
    assert_eq!(c.from.as_deref(), Some("min 2 max 10 desired 5"));
    assert_eq!(c.to, "min 2 max 10 desired 3");
    assert!(c.reversible);

    let mut a = matching(&s);
    let cluster = a.cluster.as_mut().unwrap();
    cluster.version = Some("1.29".into());
    cluster.nodegroups[0].version = Some("1.29".into());
    let p = plan(&s, &a);
    let kinds: Vec<_> = p
        .changes
        .iter()
        .map(|c| (c.kind, c.resource.to_string(), c.reversible))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (ChangeKind::Upgrade, "eks:acme".to_owned(), false),
            (
                ChangeKind::Upgrade,
                "nodegroup:acme/general".to_owned(),
                false
            ),
        ]
    );
    assert!(p.needs_approval);

    let mut a = matching(&s);
    a.cluster.as_mut().unwrap().version = Some("1.31".into());
    assert_eq!(plan(&s, &a).blocking().next().unwrap().rule, "downgrade");
}

#[test]
fn creating_eks_without_roles_or_subnets_blocks() {
    let s = EnvironmentSpec::parse(
            "environment: dev\neks: { cluster: c, nodegroups: [ { name: g, min: 1, max: 2, desired: 1 } ] }\n",
        )
        .unwrap();
    let p = plan(&s, &ActualState::default());
    let blocked: Vec<_> = p.blocking().map(|f| f.resource.to_string()).collect();
    assert_eq!(blocked, ["eks:c", "nodegroup:c/g"]);
}

#[test]
fn changed_instance_types_warn() {
    let s = spec("");
    let mut a = matching(&s);
    a.cluster.as_mut().unwrap().nodegroups[0].instance_types = vec!["m5.large".into()];
    let p = plan(&s, &a);
    assert!(p.changes.is_empty() && !p.blocked);
    assert_eq!(p.findings[0].rule, "instance-types");
}

#[test]
fn a_revert_applies_only_reversible_changes() {
    let s = spec("");
    let mut a = matching(&s);
    a.instances[0].instance_class = "db.t4g.large".into();
    a.instances[0].allocated_storage_gb = Some(50);
    let (revert, skipped) = plan(&s, &a).revertible();
    assert_eq!(revert.changes.len(), 1);
    assert_eq!(revert.changes[0].field, "instance_class");
    assert!(!revert.needs_approval && !revert.blocked);
    assert_eq!(skipped[0].field, "allocated_storage_gb");
}

#[test]
fn plans_round_trip_through_json_and_render_a_table() {
    let s = spec("");
    let mut a = matching(&s);
    a.instances[0].instance_class = "db.t4g.small".into();
    let p = plan(&s, &a);
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["changes"][0]["resource"]["type"], "instance");
    assert_eq!(json["changes"][0]["kind"], "modify");
    let back: Plan = serde_json::from_value(json).unwrap();
    assert_eq!(back, p);
    let table = p.render_table();
    assert!(table.contains("KIND"), "{table}");
    assert!(table.contains("rds:acme-db"), "{table}");
    assert!(table.contains("db.t4g.small -> db.t4g.medium"), "{table}");
}

#[test]
fn existing_public_instances_and_untagged_resources_are_found() {
    let s = spec("");
    let mut a = matching(&s);
    a.instances[0].publicly_accessible = Some(true);
    a.cluster.as_mut().unwrap().tags.clear();
    let f = existing_findings(&a);
    let rules: Vec<_> = f.iter().map(|f| (f.severity, f.rule.as_str())).collect();
    assert_eq!(
        rules,
        [
            (Severity::Block, "public-access"),
            (Severity::Warn, "required-tag")
        ]
    );
}

/// The spec's instance with its placement, storage, key and maintenance settings, and an instance that has
/// them all.
fn placed() -> (EnvironmentSpec, ActualState) {
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let mut s = spec("");
    let db = &mut s.rds[0];
    db.db_subnet_group = Some("acme-db".into());
    db.vpc_security_group_ids = vec!["sg-0bbbbbbbbbbbbbbbb".into(), "sg-0aaaaaaaaaaaaaaaa".into()];
    db.parameter_group = Some("acme-pg16".into());
    db.kms_key_id = Some(key.into());
    db.storage_type = Some("gp3".into());
    db.backup_window = Some("03:00-03:30".into());
    db.maintenance_window = Some("Sun:04:00-Sun:04:30".into());
    db.performance_insights = Some(true);
    let mut a = matching(&s);
    a.instances[0].settings = InstanceSettings {
        db_subnet_group: Some("acme-db".into()),
        vpc_security_group_ids: vec!["sg-0aaaaaaaaaaaaaaaa".into(), "sg-0bbbbbbbbbbbbbbbb".into()],
        parameter_group: Some("acme-pg16".into()),
        kms_key_id: Some(key.into()),
        storage_type: Some("gp3".into()),
        backup_window: Some("03:00-03:30".into()),
        maintenance_window: Some("sun:04:00-sun:04:30".into()),
        performance_insights: Some(true),
        ..InstanceSettings::default()
    };
    (s, a)
}

#[test]
fn settings_as_rds_spells_them_plan_nothing() {
    let (s, a) = placed();
    let p = plan(&s, &a);
    assert!(p.changes.is_empty() && !p.blocked, "{p:#?}");
}

#[test]
fn placement_and_maintenance_settings_change_in_place_and_back() {
    let (mut s, a) = placed();
    let db = &mut s.rds[0];
    db.db_subnet_group = Some("acme-db-v2".into());
    db.vpc_security_group_ids = vec!["sg-0cccccccccccccccc".into()];
    db.parameter_group = Some("acme-pg16-tuned".into());
    db.maintenance_window = Some("sat:05:00-sat:05:30".into());
    db.iam_database_authentication = Some(true);
    let p = plan(&s, &a);
    let fields: Vec<_> = p.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "db_subnet_group",
            "vpc_security_group_ids",
            "parameter_group",
            "maintenance_window",
            "iam_database_authentication"
        ]
    );
    assert!(
        p.changes
            .iter()
            .all(|c| c.reversible && c.kind == ChangeKind::Modify)
    );
    assert!(!p.needs_approval && !p.blocked);
    let groups = &p.changes[1];
    assert_eq!(
        (groups.from.as_deref(), groups.to.as_str()),
        (
            Some("sg-0aaaaaaaaaaaaaaaa,sg-0bbbbbbbbbbbbbbbb"),
            "sg-0cccccccccccccccc"
        )
    );
}

#[test]
fn a_storage_change_waits_for_approval_for_its_cool_down() {
    let (mut s, a) = placed();
    s.rds[0].storage_type = Some("io2".into());
    s.rds[0].iops = Some(3000);
    let p = plan(&s, &a);
    let fields: Vec<_> = p.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["storage_type", "iops"]);
    assert!(
        p.changes
            .iter()
            .all(|c| !c.reversible && c.reason.contains("six hours"))
    );
    assert!(p.needs_approval && !p.blocked);
}

#[test]
fn another_storage_key_blocks_naming_the_way_out() {
    let (mut s, a) = placed();
    s.rds[0].kms_key_id = Some("ffffffff-12ab-34cd-56ef-1234567890ab".into());
    let p = plan(&s, &a);
    assert!(p.blocked && p.changes.is_empty(), "{p:#?}");
    let f = &p.findings.iter().find(|f| f.rule == "storage-key").unwrap();
    assert!(
        f.message
            .contains("restore a snapshot copied with the new key"),
        "{}",
        f.message
    );
    // The same key by its id is no change.
    s.rds[0].kms_key_id = Some("1234abcd-12ab-34cd-56ef-1234567890ab".into());
    assert!(!plan(&s, &a).blocked);
}

#[test]
fn an_instance_without_security_groups_warns() {
    let s = EnvironmentSpec::parse(
        "environment: dev\ntags: { Project: acme, Environment: dev, ManagedBy: opsplane }\nrds:\n  - { identifier: d-db, engine: postgres, instance_class: db.t4g.micro, storage_encrypted: true }\n",
    )
    .unwrap();
    let p = plan(&s, &ActualState::default());
    assert!(!p.blocked);
    let rules: Vec<_> = p
        .findings
        .iter()
        .map(|f| (f.severity, f.rule.as_str()))
        .collect();
    assert_eq!(rules, [(Severity::Warn, "security-groups")]);
}

#[test]
fn a_protected_environment_blocks_an_endpoint_open_to_everyone() {
    for (extra, blocked) in [
        ("  endpoint_public_access: true\n", true),
        (
            "  endpoint_public_access: true\n  public_access_cidrs: [\"0.0.0.0/0\"]\n",
            true,
        ),
        (
            "  endpoint_public_access: true\n  public_access_cidrs: [\"203.0.113.0/24\"]\n",
            false,
        ),
        ("  endpoint_public_access: false\n", false),
    ] {
        let text = spec_text("").replace("eks:\n", &format!("eks:\n{extra}"));
        let open = EnvironmentSpec::parse(&format!("protected: true\n{text}")).unwrap();
        let p = plan(&open, &matching(&open));
        assert_eq!(p.blocked, blocked, "{extra}");
        if blocked {
            assert_eq!(p.blocking().next().unwrap().rule, "public-endpoint");
        }
        // Unprotected, the same endpoint is only a change.
        let dev = EnvironmentSpec::parse(&text).unwrap();
        assert!(!plan(&dev, &matching(&dev)).blocked, "{extra}");
    }
}

#[test]
fn cluster_endpoint_logging_network_labels_and_taints_change_in_place_and_fixed_settings_block() {
    let mut s = spec("");
    let mut a = matching(&s);
    let c = a.cluster.as_mut().unwrap();
    c.endpoint_public_access = Some(false);
    c.endpoint_private_access = Some(true);
    c.logging = vec!["api".into()];
    c.nodegroups[0].capacity_type = Some("ON_DEMAND".into());
    let eks = s.eks.as_mut().unwrap();
    eks.endpoint_public_access = Some(true);
    eks.public_access_cidrs = vec!["203.0.113.0/24".into()];
    eks.logging = Some(vec!["audit".into(), "api".into()]);
    let ng = &mut eks.nodegroups[0];
    ng.labels.insert("tier".into(), "general".into());
    ng.taints.push(crate::domain::spec::TaintSpec {
        key: "spot".into(),
        value: None,
        effect: "PREFER_NO_SCHEDULE".into(),
    });
    let p = plan(&s, &a);
    let fields: Vec<_> = p
        .changes
        .iter()
        .map(|c| (c.field.as_str(), c.reversible))
        .collect();
    assert_eq!(
        fields,
        [
            ("endpoint", true),
            ("logging", true),
            ("labels", true),
            ("taints", true)
        ]
    );
    assert_eq!(
        p.changes[0].to,
        "public=true private=true cidrs=203.0.113.0/24"
    );
    assert!(!p.blocked && !p.needs_approval);

    // Other subnets and security groups: in place, since EKS moves the control plane's interfaces. Subnets
    // not read (an export from before they were kept) are not a change.
    let mut moved = s.clone();
    let eks = moved.eks.as_mut().unwrap();
    eks.subnet_ids = vec!["subnet-b".into(), "subnet-c".into()];
    eks.security_group_ids = vec!["sg-2".into()];
    let mut seen = a.clone();
    seen.cluster.as_mut().unwrap().subnet_ids = vec!["subnet-a".into(), "subnet-b".into()];
    let p = plan(&moved, &seen);
    let network: Vec<_> = p
        .changes
        .iter()
        .filter(|c| c.field.ends_with("_ids"))
        .map(|c| (c.field.as_str(), c.to.as_str(), c.reversible))
        .collect();
    assert_eq!(
        network,
        [
            ("subnet_ids", "subnet-b,subnet-c", true),
            ("security_group_ids", "sg-2", true)
        ]
    );
    let p = plan(&moved, &a);
    assert!(p.changes.iter().all(|c| c.field != "subnet_ids"));

    // Spot instead of on-demand: not something a node group changes.
    s.eks.as_mut().unwrap().nodegroups[0].capacity_type = Some("SPOT".into());
    let p = plan(&s, &a);
    let block = p.blocking().next().unwrap();
    assert_eq!(block.rule, "nodegroup-replacement");
    assert!(block.message.contains("capacity_type"), "{}", block.message);
}
