//! The spec's tests: parsing, the shape errors, and every check.

use super::*;

const DESIGN_EXAMPLE: &str = r#"
environment: staging
tags: { Project: acme, Environment: staging, ManagedBy: opsplane }
rds:
  - identifier: acme-staging-db
    engine: postgres
    engine_version: "16.4"
    instance_class: db.t4g.medium
    allocated_storage_gb: 100
    multi_az: true
    backup_retention_days: 14
    deletion_protection: true
    storage_encrypted: true
    publicly_accessible: false
eks:
  cluster: acme-staging
  version: "1.30"
  nodegroups:
    - { name: general, instance_types: [t3.medium, t3a.medium], min: 2, max: 10, desired: 3 }
health:
  http: [ { url: "https://staging.acme.example/health", expect_status: 200, timeout_ms: 2000 } ]
backup: { retention_days: 14, keep_last: 3, copy_to_region: us-west-2 }
drill: { rto_target_minutes: 30, rpo_target_minutes: 5, instance_class: db.t4g.small }
approval: { required: false }     # prod: true
"#;

#[test]
fn parses_the_design_example() {
    let spec = EnvironmentSpec::parse(DESIGN_EXAMPLE).unwrap();
    assert_eq!(spec.environment, "staging");
    assert_eq!(spec.rds.len(), 1);
    assert_eq!(spec.rds[0].engine_version.as_deref(), Some("16.4"));
    assert_eq!(spec.eks.as_ref().unwrap().nodegroups[0].desired, Some(3));
    assert_eq!(spec.backup.keep_last, 3);
    assert_eq!(spec.backup.copy_to_region.as_deref(), Some("us-west-2"));
    let drill = spec.drill.unwrap();
    assert_eq!(drill.rto_target_minutes, 30);
    assert_eq!(drill.instance_class, "db.t4g.small");
    assert!(drill.probe.is_none());
    assert_eq!(spec.tags["ManagedBy"], "opsplane");
}

#[test]
fn unknown_fields_are_errors_not_silently_ignored() {
    let doc = DESIGN_EXAMPLE.replace("keep_last: 3", "keep_lats: 3");
    let err = EnvironmentSpec::parse(&doc).unwrap_err();
    assert!(matches!(err, SpecError::Problems(_)), "{err:?}");
    assert!(err.to_string().contains("keep_lats"), "{err}");
    assert!(err.field().starts_with("backup"), "{err:?}");
}

fn field_of(doc: &str) -> String {
    EnvironmentSpec::parse(doc).unwrap_err().field().to_owned()
}

#[test]
fn each_rule_names_its_field() {
    assert_eq!(
        field_of(&DESIGN_EXAMPLE.replace("environment: staging", "environment: Staging")),
        "environment"
    );
    assert_eq!(
        field_of(&DESIGN_EXAMPLE.replace("keep_last: 3", "keep_last: 0")),
        "backup.keep_last"
    );
    assert_eq!(
        field_of(&DESIGN_EXAMPLE.replace("retention_days: 14,", "retention_days: 0,")),
        "backup.retention_days"
    );
    assert_eq!(
        field_of(&DESIGN_EXAMPLE.replace("us-west-2", "mars")),
        "backup.copy_to_region"
    );
    assert_eq!(
        field_of(&DESIGN_EXAMPLE.replace(
            "copy_to_region: us-west-2",
            "copy_to_region: us-west-2, redis_export_bucket: Redis_Exports"
        )),
        "backup.redis_export_bucket"
    );
    assert_eq!(
        field_of(&DESIGN_EXAMPLE.replace("identifier: acme-staging-db", "identifier: 9db")),
        "rds[0].identifier"
    );
    assert_eq!(
        field_of(&DESIGN_EXAMPLE.replace("instance_class: db.t4g.small", "instance_class: t4g")),
        "drill.instance_class"
    );
    assert_eq!(
        field_of(&DESIGN_EXAMPLE.replace("rto_target_minutes: 30", "rto_target_minutes: 0")),
        "drill.rto_target_minutes"
    );
    assert_eq!(
        field_of(&DESIGN_EXAMPLE.replace(
            "instance_class: db.t4g.small }",
            "instance_class: db.t4g.small, every_days: 0 }"
        )),
        "drill.every_days"
    );
}

#[test]
fn a_drill_placement_is_parsed_and_its_security_groups_checked() {
    let placed = |groups: &str| {
        DESIGN_EXAMPLE.replace(
            "instance_class: db.t4g.small }",
            &format!(
                "instance_class: db.t4g.small, placement: {{ db_subnet_group: prod-db, \
                 vpc_security_group_ids: [{groups}], parameter_group: prod-pg16 }} }}"
            ),
        )
    };
    let spec = EnvironmentSpec::parse(&placed("sg-0123456789abcdef0")).unwrap();
    let placement = spec.drill.unwrap().placement.unwrap();
    assert_eq!(placement.db_subnet_group.as_deref(), Some("prod-db"));
    assert_eq!(placement.vpc_security_group_ids, ["sg-0123456789abcdef0"]);
    assert_eq!(placement.parameter_group.as_deref(), Some("prod-pg16"));
    assert_eq!(placement.option_group, None);
    assert_eq!(
        field_of(&placed("sg-12345678, default")),
        "drill.placement.vpc_security_group_ids[1]"
    );
}

#[test]
fn a_copy_key_is_a_key_of_the_copy_region() {
    let with_key = |key: &str| {
        DESIGN_EXAMPLE.replace(
            "copy_to_region: us-west-2 }",
            &format!("copy_to_region: us-west-2, copy_kms_key_id: \"{key}\" }}"),
        )
    };
    for good in [
        "alias/acme-backups",
        "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
    ] {
        let spec = EnvironmentSpec::parse(&with_key(good)).unwrap();
        assert_eq!(spec.backup.copy_kms_key_id.as_deref(), Some(good));
    }
    for bad in [
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "acme-backups",
        "alias/",
    ] {
        assert_eq!(field_of(&with_key(bad)), "backup.copy_kms_key_id", "{bad}");
    }
    let no_copies = with_key("alias/acme-backups").replace("copy_to_region: us-west-2, ", "");
    let err = EnvironmentSpec::parse(&no_copies).unwrap_err();
    assert_eq!(err.field(), "backup.copy_kms_key_id");
    assert!(err.to_string().contains("copy_to_region"), "{err}");
}

#[test]
fn duplicate_instances_are_rejected() {
    let doc = r#"
environment: prod
rds:
  - { identifier: a-db, engine: postgres, instance_class: db.t4g.small }
  - { identifier: a-db, engine: postgres, instance_class: db.t4g.small }
"#;
    let err = EnvironmentSpec::parse(doc).unwrap_err();
    assert_eq!(err.field(), "rds[1].identifier");
    assert!(err.to_string().contains("twice"));
}

#[test]
fn probe_is_parsed_and_checked() {
    let doc = r#"
environment: prod
rds: [ { identifier: a-db, engine: postgres, instance_class: db.t4g.small } ]
drill:
  rto_target_minutes: 30
  rpo_target_minutes: 5
  instance_class: db.t4g.small
  probe: { database: app, secret_arn: "arn:aws:secretsmanager:us-east-1:1:secret:rds!db-x", canary_query: "SELECT max(at) FROM canary" }
"#;
    let spec = EnvironmentSpec::parse(doc).unwrap();
    let probe = spec.drill.unwrap().probe.unwrap();
    assert_eq!(probe.database, "app");
    assert_eq!(
        probe.credentials(),
        CredentialRef::Secret {
            arn: "arn:aws:secretsmanager:us-east-1:1:secret:rds!db-x".into()
        }
    );
    assert!(probe.canary_query.unwrap().contains("canary"));
    let bad = doc.replace("SELECT max(at) FROM canary", " ");
    assert_eq!(field_of(&bad), "drill.probe.canary_query");
}

#[test]
fn the_redis_probe_needs_a_group_and_a_sane_canary_key() {
    let doc = |redis: &str, probe: &str| {
        format!(
            "environment: prod\nrds: [ {{ identifier: a-db, engine: postgres, instance_class: db.t4g.small }} ]\n{redis}\
             drill: {{ rto_target_minutes: 30, rpo_target_minutes: 5, instance_class: db.t4g.small, redis_probe: {probe} }}\n\
             health: {{ redis_ping: true }}\n"
        )
    };
    let group = "redis: [ { replication_group_id: a-cache, node_type: cache.t4g.small } ]\n";
    let spec = EnvironmentSpec::parse(&doc(group, "{ canary_key: \"opsplane:canary\" }")).unwrap();
    assert_eq!(
        spec.drill
            .unwrap()
            .redis_probe
            .unwrap()
            .canary_key
            .as_deref(),
        Some("opsplane:canary")
    );
    assert!(spec.health.redis_ping);
    // PING only.
    assert!(EnvironmentSpec::parse(&doc(group, "{}")).is_ok());
    assert_eq!(
        field_of(&doc(group, "{ canary_key: \"\" }")),
        "drill.redis_probe.canary_key"
    );
    assert_eq!(field_of(&doc("", "{}")), "drill.redis_probe");
    assert_eq!(
        field_of(&doc(group, "{ canary: x }")),
        "drill.redis_probe.canary"
    );
}

#[test]
fn probe_credentials_are_references_exactly_one() {
    let doc = |probe: &str| {
        format!(
            "environment: prod\nrds: [ {{ identifier: a-db, engine: postgres, instance_class: db.t4g.small }} ]\n\
                 drill: {{ rto_target_minutes: 30, rpo_target_minutes: 5, instance_class: db.t4g.small, probe: {probe} }}\n"
        )
    };
    let arn = "arn:aws:secretsmanager:us-east-1:1:secret:probe";
    assert_eq!(
        field_of(&doc("{ database: app, user: probe }")),
        "drill.probe.secret_arn"
    );
    assert_eq!(
        field_of(&doc(&format!(
            "{{ database: app, user: probe, iam_auth: true, secret_arn: \"{arn}\" }}"
        ))),
        "drill.probe.secret_arn"
    );
    assert_eq!(
        field_of(&doc("{ database: app, user: probe, secret_arn: hunter2 }")),
        "drill.probe.secret_arn"
    );
    assert_eq!(
        field_of(&doc("{ database: app, iam_auth: true }")),
        "drill.probe.user"
    );
    // A password field does not exist.
    assert!(EnvironmentSpec::parse(&doc("{ database: app, user: probe, password: x }")).is_err());
    let iam =
        EnvironmentSpec::parse(&doc("{ database: app, user: probe, iam_auth: true }")).unwrap();
    assert_eq!(
        iam.drill.unwrap().probe.unwrap().credentials(),
        CredentialRef::IamAuth
    );
}

#[test]
fn environment_names() {
    assert!(validate_environment_name("prod").is_ok());
    assert!(validate_environment_name("eu-prod-2").is_ok());
    assert!(validate_environment_name("").is_err());
    assert!(validate_environment_name("2prod").is_err());
    assert!(validate_environment_name("prod_1").is_err());
    assert!(validate_environment_name(&"a".repeat(33)).is_err());
    assert_eq!(spec_key("prod"), "specs/prod/spec.yaml");
}

const FULL: &str = r#"
environment: prod
tags: { Project: acme, Environment: prod, ManagedBy: opsplane }
rds:
  - { identifier: acme-prod-db, engine: postgres, engine_version: "16.4", instance_class: db.r6g.large,
      allocated_storage_gb: 200, multi_az: true, backup_retention_days: 30, deletion_protection: true,
      storage_encrypted: true, publicly_accessible: false }
eks:
  cluster: acme-prod
  version: "1.30"
  role_arn: arn:aws:iam::123456789012:role/eks
  subnet_ids: [subnet-a, subnet-b]
  nodegroups:
    - { name: general, instance_types: [m6i.large], min: 3, max: 12, desired: 4 }
health:
  http: [ { url: "https://acme.example/health", body_contains: ok } ]
  backup_max_age_minutes: 1500
approval: { required: true }
alarms: { names: [acme-prod-5xx], prefixes: [acme-prod-] }
"#;

#[test]
fn health_approval_and_alarms_are_typed_with_defaults() {
    let spec = EnvironmentSpec::parse(FULL).unwrap();
    let http = &spec.health.http[0];
    assert_eq!(http.expect_status, 200);
    assert_eq!(http.timeout_ms, 2000);
    assert_eq!(http.body_contains.as_deref(), Some("ok"));
    assert_eq!(spec.health.backup_max_age_minutes, Some(1500));
    assert!(spec.approval.required);
    assert_eq!(
        spec.approval.timeout_minutes,
        DEFAULT_APPROVAL_TIMEOUT_MINUTES
    );
    assert!(spec.alarms.matches("acme-prod-5xx"));
    assert!(spec.alarms.matches("acme-prod-latency"));
    assert!(!spec.alarms.matches("acme-staging-5xx"));
    let eks = spec.eks.unwrap();
    assert_eq!(eks.subnet_ids.len(), 2);
    // Without the sections: no checks, no approval, no alarms.
    let bare = EnvironmentSpec::parse("environment: dev\n").unwrap();
    assert_eq!(bare.health, HealthSpec::default());
    assert!(!bare.approval.required);
    assert!(!bare.alarms.matches("anything"));
}

#[test]
fn shape_errors_name_the_dotted_path() {
    let err = EnvironmentSpec::parse(
        &FULL.replace("instance_class: db.r6g.large", "instance_class: [x]"),
    )
    .unwrap_err();
    assert_eq!(err.field(), "rds[0].instance_class", "{err}");
    let err = EnvironmentSpec::parse(&FULL.replace("min: 3", "minimum: 3")).unwrap_err();
    assert!(err.field().starts_with("eks.nodegroups[0]"), "{err}");
    assert!(err.to_string().contains("minimum"), "{err}");
    let err = EnvironmentSpec::parse(&FULL.replace("required: true", "required: yes please"))
        .unwrap_err();
    assert_eq!(err.field(), "approval.required", "{err}");
}

#[test]
fn new_rules_name_their_fields() {
    let cases = [
        ("engine: postgres", "engine: mysql", "rds[0].engine"),
        (
            "allocated_storage_gb: 200",
            "allocated_storage_gb: 5",
            "rds[0].allocated_storage_gb",
        ),
        (
            "backup_retention_days: 30",
            "backup_retention_days: 40",
            "rds[0].backup_retention_days",
        ),
        (
            "engine_version: \"16.4\"",
            "engine_version: latest",
            "rds[0].engine_version",
        ),
        ("desired: 4", "desired: 20", "eks.nodegroups[0].desired"),
        ("min: 3", "min: 13", "eks.nodegroups[0].min"),
        ("version: \"1.30\"", "version: newest", "eks.version"),
        (
            "url: \"https://acme.example/health\"",
            "url: acme.example",
            "health.http[0].url",
        ),
        (
            "body_contains: ok",
            "expect_status: 42",
            "health.http[0].expect_status",
        ),
        (
            "body_contains: ok",
            "timeout_ms: 0",
            "health.http[0].timeout_ms",
        ),
        (
            "backup_max_age_minutes: 1500",
            "backup_max_age_minutes: 0",
            "health.backup_max_age_minutes",
        ),
        (
            "required: true",
            "required: true, timeout_minutes: 0",
            "approval.timeout_minutes",
        ),
        (
            "prefixes: [acme-prod-]",
            "prefixes: [\"\"]",
            "alarms.prefixes[0]",
        ),
    ];
    for (from, to, field) in cases {
        assert!(FULL.contains(from), "{from}");
        assert_eq!(field_of(&FULL.replace(from, to)), field, "{to}");
    }
}

#[test]
fn files_are_named_in_errors() {
    let dir = std::env::temp_dir().join(format!("opsplane-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("prod.yaml");
    std::fs::write(&path, FULL.replace("desired: 4", "desired: 20")).unwrap();
    let err = EnvironmentSpec::parse_file(&path).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("prod.yaml"), "{text}");
    assert!(text.contains("eks.nodegroups[0].desired"), "{text}");
    assert_eq!(err.field(), "eks.nodegroups[0].desired");
    std::fs::write(&path, FULL).unwrap();
    assert_eq!(
        EnvironmentSpec::parse_file(&path).unwrap().environment,
        "prod"
    );
    let missing = EnvironmentSpec::parse_file(&dir.join("nope.yaml")).unwrap_err();
    assert!(missing.to_string().contains("nope.yaml"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}
