//! The deploy template (`bootstrap/template.yaml`): transformed by aws-sam-translator as a deploy would, created
//! as a stack in moto's CloudFormation, its alarm rule run against real alarm events, its GitHub trust checked.
//!
//! moto's CloudFormation creates neither `AWS::Scheduler::Schedule`, `AWS::CloudWatch::Alarm`,
//! `AWS::Lambda::Url`, `AWS::IAM::OIDCProvider`, `AWS::S3::BucketPolicy` nor `AWS::SNS::TopicPolicy`, and lists
//! an `AWS::SQS::QueuePolicy` without its logical ID: those are taken out of the stack (with the outputs naming them) and checked in the transformed template instead.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
use serde_json::{Value, json};

use crate::harness::{World, root, unique};

/// Resource types moto's CloudFormation skips; they are checked in the template, not in the stack.
const NOT_IN_MOTO: [&str; 7] = [
    "AWS::Scheduler::Schedule",
    "AWS::CloudWatch::Alarm",
    "AWS::Lambda::Url",
    "AWS::IAM::OIDCProvider",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
];

/// Workflow name → the state machine's logical ID in the template.
const WORKFLOWS: [(&str, &str); 7] = [
    ("backup", "BackupStateMachine"),
    ("dr-drill", "DrDrillStateMachine"),
    ("provision", "ProvisionStateMachine"),
    ("rollback", "RollbackStateMachine"),
    ("health-sweep", "HealthSweepStateMachine"),
    ("drift", "DriftStateMachine"),
    ("fleet", "FleetStateMachine"),
];

/// Function name (crate dir and binary) → logical ID.
const FUNCTIONS: [(&str, &str); 6] = [
    ("lock", "LockFunction"),
    ("backup", "BackupFunction"),
    ("provision", "ProvisionFunction"),
    ("health-check", "HealthCheckFunction"),
    ("rollback", "RollbackFunction"),
    ("dispatch", "DispatchFunction"),
];

const ENVIRONMENTS: [&str; 3] = ["dev", "staging", "prod"];

/// The template after the SAM transform, with local files replaced as `sam deploy` would
/// (`scripts/sam-transform.py`).
fn transformed(code_bucket: &str, code_key: &str) -> Value {
    let root = root();
    let out = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("scripts/sam-transform.py"))
        .arg(root.join("bootstrap/template.yaml"))
        .args(["--code-bucket", code_bucket, "--code-key", code_key])
        .output()
        .expect("the project's .venv runs (make setup)");
    assert!(
        out.status.success(),
        "the SAM transform failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the transform writes JSON")
}

fn resources(template: &Value) -> &serde_json::Map<String, Value> {
    template["Resources"]
        .as_object()
        .expect("the template has Resources")
}

fn resource<'a>(template: &'a Value, logical_id: &str) -> &'a Value {
    resources(template)
        .get(logical_id)
        .unwrap_or_else(|| panic!("the template has no resource {logical_id}"))
}

fn default_of(template: &Value, parameter: &str) -> String {
    template["Parameters"][parameter]["Default"]
        .as_str()
        .unwrap_or_else(|| panic!("parameter {parameter} has a string default"))
        .to_owned()
}

/// The template as moto can create it: the resource types it lacks and the outputs naming them removed.
fn for_moto(template: &Value) -> Value {
    let mut t = template.clone();
    let gone: BTreeSet<String> = resources(&t)
        .iter()
        .filter(|(_, r)| NOT_IN_MOTO.contains(&r["Type"].as_str().unwrap_or_default()))
        .map(|(id, _)| id.clone())
        .collect();
    let res = t["Resources"].as_object_mut().unwrap();
    res.retain(|id, _| !gone.contains(id));
    if let Some(outputs) = t["Outputs"].as_object_mut() {
        outputs.retain(|_, o| {
            let text = o.to_string();
            !gone.iter().any(|id| text.contains(&format!("\"{id}\"")))
        });
    }
    t
}

/// The functions whose code path appends audit events (`StateStore::append_audit`): the lock function on a
/// takeover, dispatch on every start and refusal. Each writes a table record and a locked copy under `audit/`.
const AUDIT_WRITERS: [&str; 3] = ["lock", "dispatch", "rollback"];

/// The functions that run the SQL probe, resolving its credentials by reference.
const PROBERS: [&str; 2] = ["backup", "health-check"];

/// The environment variables each function's `main.rs` reads and uses in production (`Config::from_env`, and
/// the function's own settings), by function name. `OPSPLANE_KMS_KEY_ID` is not among them: only
/// `opsplane bootstrap` uses it.
fn env_read_by(function: &str) -> BTreeSet<&'static str> {
    let mut names = BTreeSet::from([
        opsplane_shared::config::ENV_TABLE,
        opsplane_shared::config::ENV_BUCKET,
        opsplane_shared::config::ENV_AUDIT_LOCK_MODE,
        opsplane_shared::config::ENV_AUDIT_RETENTION_DAYS,
    ]);
    match function {
        "backup" => {
            names.extend([
                opsplane_shared::probe::ENV_CA_BUNDLE,
                // Fleet runs: their pace and the rotation's nightly bound (Config::fleet).
                opsplane_shared::config::ENV_RDS_REQUEST_BUDGET,
                opsplane_shared::config::ENV_DRILLS_PER_NIGHT,
            ]);
        }
        "health-check" => {
            names.insert(opsplane_shared::probe::ENV_CA_BUNDLE);
        }
        "dispatch" => {
            names.extend(["OPSPLANE_OIDC_AUDIENCE", "OPSPLANE_STATE_MACHINE_PREFIX"]);
        }
        _ => {}
    }
    names
}

/// The functions (logical IDs) the role of state machine `logical` may invoke, and whether it may put events.
fn workflow_role_grants(template: &Value, logical: &str) -> (BTreeSet<String>, bool) {
    let role_id = resource(template, logical)["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{logical}: RoleArn is a role of the template"));
    let mut invokes = BTreeSet::new();
    let mut publishes = false;
    for policy in resource(template, role_id)["Properties"]["Policies"]
        .as_array()
        .unwrap()
    {
        for st in policy["PolicyDocument"]["Statement"].as_array().unwrap() {
            let actions = match &st["Action"] {
                Value::Array(a) => a.clone(),
                one => vec![one.clone()],
            };
            let resources = match &st["Resource"] {
                Value::Array(a) => a.clone(),
                one => vec![one.clone()],
            };
            if actions.contains(&json!("lambda:InvokeFunction")) {
                for r in resources {
                    invokes.insert(
                        r["Fn::GetAtt"][0]
                            .as_str()
                            .unwrap_or_else(|| {
                                panic!("{role_id}: invokes only the stack's functions, not {r}")
                            })
                            .to_owned(),
                    );
                }
            }
            publishes |= actions.contains(&json!("events:PutEvents"));
        }
    }
    (invokes, publishes)
}

/// The statements of the role SAM made from function `logical`'s `Policies`; a conditional statement
/// (`Fn::If`) counts as its true branch.
fn function_statements(template: &Value, logical: &str) -> Vec<Value> {
    let role = resource(template, logical)["Properties"]["Role"]["Fn::GetAtt"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{logical}: its role is the one SAM made"))
        .to_owned();
    let mut out = Vec::new();
    for policy in resource(template, &role)["Properties"]["Policies"]
        .as_array()
        .unwrap()
    {
        for st in policy["PolicyDocument"]["Statement"].as_array().unwrap() {
            out.push(match st.get("Fn::If") {
                Some(branches) => branches[1].clone(),
                None => st.clone(),
            });
        }
    }
    out
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        one => vec![one.clone()],
    }
}

/// The resources `statements` allow `action` on, and the conditions they do it under.
fn grants(statements: &[Value], action: &str) -> Vec<(Value, Value)> {
    statements
        .iter()
        .filter(|st| as_list(&st["Action"]).contains(&json!(action)))
        .flat_map(|st| {
            as_list(&st["Resource"])
                .into_iter()
                .map(|r| (r, st.get("Condition").cloned().unwrap_or(Value::Null)))
        })
        .collect()
}

/// An empty zip archive (just the end-of-central-directory record): Lambda's code object for a stack whose
/// functions are never invoked.
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

#[tokio::test]
async fn stack_creates_in_moto() {
    let world = World::new().await;
    let sdk = opsplane_shared::aws::load_sdk_config(&world.config).await;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let s3 = &world.clients.s3;

    let raw_template = std::fs::read_to_string(root().join("bootstrap/template.yaml")).unwrap();
    let code_bucket = world.name("code");
    s3.create_bucket()
        .bucket(&code_bucket)
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket(&code_bucket)
        .key("functions.zip")
        .body(EMPTY_ZIP.to_vec().into())
        .send()
        .await
        .unwrap();

    let template = transformed(&code_bucket, "functions.zip");
    let stack_template = for_moto(&template);
    let kms_key = "arn:aws:kms:us-east-1:123456789012:key/0f7e2c1a-5b3d-4c8e-9a6f-1d2e3f4a5b6c";
    let table = world.config.table_name.clone();
    let bucket = world.config.bucket_name.clone();
    let params = [
        ("TableName", table.as_str()),
        ("StateBucketName", bucket.as_str()),
        ("GitHubOwner", "acme"),
        ("GitHubOwnerId", "123456"),
        ("GitHubRepo", "infra"),
        ("GitHubRepoId", "456789"),
        // One provider per account: the stack trusts the existing one (the deployed default creates it).
        ("CreateGitHubOidcProvider", "false"),
        ("KmsKeyArn", kms_key),
        // Not the defaults, so that the functions' audit settings are seen to come from the parameters.
        ("AuditLockMode", "COMPLIANCE"),
        ("AuditRetentionDays", "2190"),
    ];
    let stack = unique("opsplane-stack");
    cfn.create_stack()
        .stack_name(&stack)
        .template_body(stack_template.to_string())
        .set_parameters(Some(
            params
                .iter()
                .map(|(k, v)| {
                    Parameter::builder()
                        .parameter_key(*k)
                        .parameter_value(*v)
                        .build()
                })
                .collect(),
        ))
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam)
        .capabilities(Capability::CapabilityAutoExpand)
        .send()
        .await
        .expect("moto accepts the stack");

    // moto creates a stack synchronously; the loop is bounded in polls, not in time.
    let mut status = None;
    for _ in 0..60 {
        let described = cfn
            .describe_stacks()
            .stack_name(&stack)
            .send()
            .await
            .unwrap();
        let s = described.stacks()[0].stack_status().cloned();
        if !s
            .as_ref()
            .is_some_and(|s| s.as_str().ends_with("IN_PROGRESS"))
        {
            status = s;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(status, Some(StackStatus::CreateComplete));

    // Every resource moto can create is in the stack: moto skips unknown types silently, this does not.
    let summaries = cfn
        .list_stack_resources()
        .stack_name(&stack)
        .send()
        .await
        .unwrap();
    let in_stack: BTreeMap<String, String> = summaries
        .stack_resource_summaries()
        .iter()
        .map(|r| {
            (
                r.logical_resource_id().unwrap_or_default().to_owned(),
                r.physical_resource_id().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let wanted: BTreeSet<&String> = resources(&stack_template).keys().collect();
    let got: BTreeSet<&String> = in_stack.keys().collect();
    assert_eq!(
        got, wanted,
        "every resource of the template is in the stack"
    );

    // The table, with the key schema and billing of `opsplane bootstrap`.
    let desc = world
        .clients
        .dynamodb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("the stack created the table");
    let desc = desc.table().unwrap();
    let keys: Vec<(&str, &str)> = desc
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().as_str()))
        .collect();
    assert_eq!(keys, [("pk", "HASH"), ("sk", "RANGE")]);
    assert_eq!(
        desc.billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str()),
        Some("PAY_PER_REQUEST")
    );

    // The bucket, encrypted with the key given (moto's CloudFormation applies encryption and tags only; the
    // other settings of `opsplane bootstrap` are checked in the template below).
    s3.head_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("the stack created the bucket");
    let enc = s3
        .get_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let by_default = enc.server_side_encryption_configuration().unwrap().rules()[0]
        .apply_server_side_encryption_by_default()
        .unwrap();
    assert_eq!(by_default.sse_algorithm().as_str(), "aws:kms");
    assert_eq!(by_default.kms_master_key_id(), Some(kms_key));
    let bucket_props = &resource(&template, "StateBucket")["Properties"];
    assert_eq!(bucket_props["VersioningConfiguration"]["Status"], "Enabled");
    assert_eq!(
        bucket_props["PublicAccessBlockConfiguration"],
        json!({"BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true,
               "RestrictPublicBuckets": true})
    );
    assert_eq!(
        bucket_props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["BucketKeyEnabled"],
        true
    );
    // Object Lock for the audit copies, with no default retention (locks/ and specs/ stay deletable).
    assert_eq!(bucket_props["ObjectLockEnabled"], true);
    assert!(
        bucket_props["ObjectLockConfiguration"]
            .get("Rule")
            .is_none()
    );
    // The TLS-only statement is the one `opsplane bootstrap` writes, so a later bootstrap leaves it alone.
    let policy = &resource(&template, "StateBucketPolicy")["Properties"]["PolicyDocument"];
    assert_eq!(
        policy["Statement"][0]["Sid"],
        opsplane_shared::bootstrap::TLS_ONLY_SID
    );
    assert_eq!(
        policy["Statement"][0]["Condition"],
        json!({"Bool": {"aws:SecureTransport": "false"}})
    );
    let table_props = &resource(&template, "StateTable")["Properties"];
    assert_eq!(
        table_props["TimeToLiveSpecification"],
        json!({"AttributeName": opsplane_shared::bootstrap::TTL_ATTRIBUTE, "Enabled": true})
    );
    assert_eq!(
        table_props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );

    // Every function, wired to the stack's table and bucket.
    let mut dispatch_prefix = None;
    for (name, logical) in FUNCTIONS {
        let f = lambda
            .get_function()
            .function_name(format!("opsplane-{name}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("function opsplane-{name} exists: {e:?}"));
        let conf = f.configuration().unwrap();
        assert_eq!(conf.runtime().map(|r| r.as_str()), Some("provided.al2023"));
        assert_eq!(conf.handler(), Some("bootstrap"));
        assert_eq!(conf.memory_size(), Some(128));
        let vars = conf.environment().and_then(|e| e.variables()).unwrap();
        assert_eq!(vars.get("OPSPLANE_TABLE"), Some(&table), "{name}");
        assert_eq!(vars.get("OPSPLANE_BUCKET"), Some(&bucket), "{name}");
        // Exactly the variables the function's main.rs reads, and enough for its configuration to load there.
        let names: BTreeSet<&str> = vars.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            env_read_by(name),
            "{name}: the variables its main.rs reads"
        );
        let lookup = |k: &str| {
            if k == "AWS_REGION" {
                return Some("us-east-1".to_owned());
            }
            vars.get(k).filter(|v| !v.is_empty()).cloned()
        };
        let cfg = opsplane_shared::Config::from_lookup(lookup)
            .unwrap_or_else(|e| panic!("{name}: the stack's environment loads: {e}"));
        assert_eq!(
            cfg.audit,
            opsplane_shared::config::AuditSettings {
                lock_mode: opsplane_shared::config::AuditLockMode::Compliance,
                retention_days: 2190,
            },
            "{name}: audit copies locked as the parameters say"
        );
        assert_eq!(cfg.kms_key_id, None, "{name}");
        if PROBERS.contains(&name) {
            // No layer given: the probe falls back to the platform's roots.
            let probe = opsplane_shared::probe::ProbeSettings::from_lookup(lookup)
                .expect("the probe's settings load");
            assert_eq!(probe.endpoint_override, None, "{name}");
            assert_eq!(probe.ca_bundle, None, "{name}");
            assert!(probe.network.is_none(), "{name}");
        }
        if name == "dispatch" {
            let dispatch = opsplane_fn_dispatch::DispatchConfig::from_lookup(lookup)
                .expect("the dispatch function's configuration is complete");
            // No DispatchAudience given: the stack's own audience, never the shared constant.
            assert_eq!(default_of(&template, "DispatchAudience"), "");
            assert_eq!(
                dispatch.audience,
                format!("opsplane:123456789012:us-east-1:{stack}")
            );
            dispatch_prefix = Some(dispatch.state_machine_prefix);
        }

        // What moto does not keep: checked where `sam build` and CloudFormation read it.
        let r = resource(&template, logical);
        assert_eq!(r["Properties"]["Architectures"], json!(["arm64"]), "{name}");
        assert_eq!(
            r["Properties"]["LoggingConfig"]["LogFormat"], "JSON",
            "{name}"
        );
        // Deployed from `make build-lambdas`' one cargo build of every function: no per-function SAM build.
        assert!(r["Metadata"].get("BuildMethod").is_none(), "{name}");
        assert!(
            raw_template.contains(&format!("CodeUri: ../dist/lambda/{name}\n")),
            "{name}: its code is the prebuilt dist/lambda/{name}/bootstrap"
        );
        assert_eq!(
            r["Properties"]["Code"],
            json!({"S3Bucket": code_bucket, "S3Key": "functions.zip"}),
            "{name}: the local CodeUri became the uploaded code"
        );
    }

    // Every state machine, its definition's placeholders filled with the stack's ARNs.
    let sfn = &world.clients.sfn;
    let lock_arn = lambda
        .get_function()
        .function_name("opsplane-lock")
        .send()
        .await
        .unwrap()
        .configuration()
        .unwrap()
        .function_arn()
        .unwrap()
        .to_owned();
    for (workflow, logical) in WORKFLOWS {
        let arn = &in_stack[logical];
        let sm = sfn
            .describe_state_machine()
            .state_machine_arn(arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("state machine opsplane-{workflow} exists: {e:?}"));
        assert_eq!(sm.name(), format!("opsplane-{workflow}"));
        let definition = sm.definition();
        assert!(
            !definition.contains("${"),
            "{workflow}: every placeholder is substituted"
        );
        serde_json::from_str::<Value>(definition).expect("the deployed definition is JSON");
        let source = std::fs::read_to_string(
            root().join(format!("statemachines/definitions/{workflow}.asl.json")),
        )
        .unwrap();
        if source.contains("${LockFunctionArn}") {
            assert!(
                definition.contains(&lock_arn),
                "{workflow} calls the lock function"
            );
        }
        // Encryption follows KmsKeyArn (moto keeps no encryption configuration, the template says it).
        let props = &resource(&template, logical)["Properties"];
        assert_eq!(props["EncryptionConfiguration"]["Fn::If"][0], "HasKmsKey");
        assert_eq!(
            props["EncryptionConfiguration"]["Fn::If"][1]["Type"],
            "CUSTOMER_MANAGED_KMS_KEY"
        );
        assert_eq!(props["LoggingConfiguration"]["Level"], "ALL");

        // The dispatch function starts opsplane-<workflow> by its prefix, which names this state machine.
        assert_eq!(
            &format!("{}{workflow}", dispatch_prefix.as_deref().unwrap()),
            arn,
            "{workflow}: OPSPLANE_STATE_MACHINE_PREFIX of dispatch"
        );
        // Its role invokes exactly the functions its definition names, and publishes only if it does.
        let (invokes, publishes) = workflow_role_grants(&template, logical);
        let named: BTreeSet<String> = FUNCTIONS
            .iter()
            .filter(|(_, l)| source.contains(&format!("${{{}Arn}}", l)))
            .map(|(_, l)| (*l).to_owned())
            .collect();
        assert_eq!(
            invokes, named,
            "{workflow}: lambda:InvokeFunction of its role"
        );
        assert_eq!(
            publishes,
            source.contains("events:putEvents"),
            "{workflow}: events:PutEvents of its role"
        );
    }

    // `opsplane run` on AWS: the stack's StateMachinePrefix output names the state machine without listing,
    // and the execution starts there.
    let outputs = cfn
        .describe_stacks()
        .stack_name(&stack)
        .send()
        .await
        .unwrap();
    let prefix = outputs.stacks()[0]
        .outputs()
        .iter()
        .find(|o| o.output_key() == Some("StateMachinePrefix"))
        .and_then(|o| o.output_value())
        .expect("the stack outputs StateMachinePrefix")
        .to_owned();
    let machine = opsplane_cli::run::resolve_state_machine(sfn, "provision", None, Some(&prefix))
        .await
        .unwrap();
    assert_eq!(machine, in_stack["ProvisionStateMachine"]);
    let input = opsplane_cli::run::workflow_input("dev", None).unwrap();
    let execution = opsplane_cli::run::start_aws(sfn, &machine, "dev", &input, "ci")
        .await
        .unwrap();
    let described = opsplane_cli::run::describe_aws(sfn, &execution)
        .await
        .unwrap();
    assert_eq!(described.execution_arn, execution);
    assert!(execution.contains(":execution:opsplane-provision:cli-dev-ci-"));

    // The alarm rule, targeting the rollback workflow with the raw event (no Input, InputPath or transformer).
    let rule = events
        .describe_rule()
        .name("opsplane-alarm-rollback")
        .send()
        .await
        .expect("the stack created the alarm rule");
    let pattern: Value = serde_json::from_str(rule.event_pattern().unwrap()).unwrap();
    assert_eq!(
        pattern,
        resource(&template, "AlarmRollbackRule")["Properties"]["EventPattern"]
    );
    let targets = events
        .list_targets_by_rule()
        .rule("opsplane-alarm-rollback")
        .send()
        .await
        .unwrap();
    let target = &targets.targets()[0];
    assert_eq!(target.arn(), in_stack["RollbackStateMachine"]);
    assert!(target.input().is_none() && target.input_path().is_none());
    assert!(target.input_transformer().is_none());
    // An alarm whose rollback could not be started lands in a dead-letter queue.
    let dead_letters = target
        .dead_letter_config()
        .and_then(|d| d.arn())
        .expect("the alarm rule's target has a dead-letter queue");
    assert!(
        dead_letters.ends_with(":opsplane-alarm-rollback-dlq"),
        "{dead_letters}"
    );
    // Only the alarm rule may send to it (checked in the template: moto does not create queue policies).
    let statement = &resource(&template, "AlarmRollbackDeadLettersPolicy")["Properties"]["PolicyDocument"]
        ["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "events.amazonaws.com");
    assert_eq!(statement["Action"], "sqs:SendMessage");
    assert_eq!(
        statement["Condition"]["ArnEquals"]["aws:SourceArn"],
        json!({"Fn::GetAtt": ["AlarmRollbackRule", "Arn"]})
    );

    // Schedules (not created by moto): one per environment for backup, one for dr-drill per environment whose
    // spec has a `drill` section (a drill of one without would fail validation every week), one health sweep.
    let schedules: BTreeMap<String, &Value> = resources(&template)
        .values()
        .filter(|r| r["Type"] == "AWS::Scheduler::Schedule")
        .map(|r| (r["Properties"]["Name"].as_str().unwrap().to_owned(), r))
        .collect();
    let mut expected = BTreeMap::new();
    for env in ENVIRONMENTS {
        expected.insert(
            format!("opsplane-backup-{env}"),
            (
                "BackupStateMachine",
                "BackupSchedule",
                json!({"environment": env}),
            ),
        );
        let spec = std::fs::read_to_string(root().join(format!("examples/{env}.yaml"))).unwrap();
        if spec.lines().any(|l| l.starts_with("drill:")) {
            expected.insert(
                format!("opsplane-dr-drill-{env}"),
                (
                    "DrDrillStateMachine",
                    "DrillSchedule",
                    json!({"environment": env}),
                ),
            );
        }
    }
    expected.insert(
        "opsplane-health-sweep".to_owned(),
        ("HealthSweepStateMachine", "HealthSweepSchedule", json!({})),
    );
    expected.insert(
        "opsplane-drill-rotation".to_owned(),
        (
            "FleetStateMachine",
            "DrillRotationSchedule",
            json!({"operation": "drill-rotation"}),
        ),
    );
    // The fleet backup replaces the per-environment ones once a fleet outgrows them: no schedule unless
    // its parameter names one (empty by default).
    let fleet_backup = schedules
        .get("opsplane-fleet-backup")
        .expect("the fleet backup's schedule");
    assert_eq!(fleet_backup["Condition"], "HasFleetBackupSchedule");
    assert_eq!(default_of(&template, "FleetBackupSchedule"), "");
    assert_eq!(
        fleet_backup["Properties"]["Target"]["Input"],
        r#"{"operation": "backup"}"#
    );
    let schedules: BTreeMap<String, &Value> = schedules
        .into_iter()
        .filter(|(name, _)| name != "opsplane-fleet-backup")
        .collect();
    assert_eq!(
        schedules.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (name, (state_machine, cron_param, input)) in &expected {
        let p = &schedules[name]["Properties"];
        assert_eq!(
            p["ScheduleExpression"],
            json!({"Ref": cron_param}),
            "{name}"
        );
        assert!(default_of(&template, cron_param).starts_with("cron("));
        assert_eq!(
            p["ScheduleExpressionTimezone"],
            json!({"Ref": "ScheduleTimezone"})
        );
        assert_eq!(p["Target"]["Arn"], json!({"Ref": state_machine}), "{name}");
        let given: Value = serde_json::from_str(p["Target"]["Input"].as_str().unwrap()).unwrap();
        assert_eq!(&given, input, "{name}");
        assert_eq!(
            p["Target"]["RoleArn"],
            json!({"Fn::GetAtt": ["SchedulerRole", "Arn"]})
        );
    }
    assert_eq!(default_of(&template, "ScheduleTimezone"), "UTC");

    // Failed executions alarm (not created by moto): one per workflow, to the failure topic.
    let alarmed: BTreeSet<String> = resources(&template)
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .map(|r| {
            let p = &r["Properties"];
            assert_eq!(p["MetricName"], "ExecutionsFailed");
            assert_eq!(p["Namespace"], "AWS/States");
            assert_eq!(p["AlarmActions"], json!([{"Ref": "FailureTopic"}]));
            p["Dimensions"][0]["Value"]["Ref"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let every: BTreeSet<String> = WORKFLOWS.iter().map(|(_, l)| (*l).to_owned()).collect();
    assert_eq!(alarmed, every);
}

/// Puts `event` (a file under tests/fixtures/events/) on `bus` as AWS would emit it.
async fn put_fixture_event(events: &aws_sdk_eventbridge::Client, bus: &str, file: &str) {
    let path = root().join("tests/fixtures/events").join(file);
    let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(event["source"].as_str().unwrap())
        .detail_type(event["detail-type"].as_str().unwrap())
        .detail(event["detail"].to_string())
        .set_resources(Some(
            event["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_owned())
                .collect(),
        ))
        .build();
    let out = events.put_events().entries(entry).send().await.unwrap();
    assert_eq!(out.failed_entry_count(), 0, "{file} was accepted");
}

/// moto does not implement EventBridge's TestEventPattern, so the pattern is run by moto's event bus itself:
/// the template's rule on a bus of this test, an SQS queue as its target, and the events put on the bus.
#[tokio::test]
async fn alarm_rule_matches_only_alarm() {
    let world = World::new().await;
    let sdk = opsplane_shared::aws::load_sdk_config(&world.config).await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);

    let template = transformed("unused", "unused");
    let pattern = &resource(&template, "AlarmRollbackRule")["Properties"]["EventPattern"];
    assert_eq!(pattern["detail"]["state"]["value"], json!(["ALARM"]));

    let bus = world.name("bus");
    events.create_event_bus().name(&bus).send().await.unwrap();
    let queue = sqs
        .create_queue()
        .queue_name(world.name("matched"))
        .send()
        .await
        .unwrap();
    let queue_url = queue.queue_url().unwrap().to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let rule = world.name("alarm-rule");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("matched")
                .arn(&queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    for file in [
        "alarm-state-change-to-ok.json",
        "alarm-state-change-to-alarm.json",
        "alarm-state-change-to-insufficient-data.json",
        "alarm-state-change-opsplane-own-alarm.json",
        "alarm-state-change-composite-suppressed.json",
        "alarm-configuration-change.json",
    ] {
        put_fixture_event(&events, &bus, file).await;
    }

    // Delivery to SQS happens inside PutEvents in moto; drain the queue (bounded) and look at what matched.
    let mut matched = Vec::new();
    for _ in 0..5 {
        let got = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            let event: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            matched.push((
                event["detail"]["alarmName"].as_str().unwrap().to_owned(),
                event["detail"]["state"]["value"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ));
            sqs.delete_message()
                .queue_url(&queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    assert_eq!(
        matched,
        [("acme-staging-db-cpu-high".to_owned(), "ALARM".to_owned())],
        "only the change to ALARM of a foreign alarm starts a rollback (OK, INSUFFICIENT_DATA, opsplane's own \
         failure alarms, a composite alarm whose actions are suppressed and a configuration change do not)"
    );
}

/// What is wrong with a role trust policy that trusts GitHub's OIDC provider, for a role of `environment`.
/// Empty when the trust is pinned: `aud` is `sts.amazonaws.com`, `sub` is exact subjects (`StringEquals`, no
/// wildcard) of a job running in that GitHub environment, and the repository and its owner are pinned by
/// their immutable ids (`repository_id`, `repository_owner_id` with `StringEquals`), so that a renamed or
/// re-registered name gains nothing.
fn trust_findings(trust: &Value, environment: &str) -> Vec<String> {
    const AUD: &str = "token.actions.githubusercontent.com:aud";
    const SUB: &str = "token.actions.githubusercontent.com:sub";
    const IDS: [(&str, &str); 2] = [
        (
            "token.actions.githubusercontent.com:repository_id",
            "GitHubRepoId",
        ),
        (
            "token.actions.githubusercontent.com:repository_owner_id",
            "GitHubOwnerId",
        ),
    ];
    let statements = match &trust["Statement"] {
        Value::Array(list) => list.clone(),
        single => vec![single.clone()],
    };
    let mut findings = Vec::new();
    for st in statements.iter().filter(|s| trusts_github(s)) {
        if st["Effect"] != "Allow" {
            continue;
        }
        let conditions = st["Condition"].as_object().cloned().unwrap_or_default();
        let aud_ok = conditions
            .get("StringEquals")
            .and_then(|c| c.get(AUD))
            .is_some_and(|v| {
                *v == json!("sts.amazonaws.com") || *v == json!(["sts.amazonaws.com"])
            });
        if !aud_ok {
            findings.push("no StringEquals check that aud is sts.amazonaws.com".to_owned());
        }
        for (key, parameter) in IDS {
            let pinned = conditions
                .get("StringEquals")
                .and_then(|c| c.get(key))
                .is_some_and(|v| *v == json!({"Ref": parameter}));
            if !pinned {
                findings.push(format!(
                    "no StringEquals check of {key} against {parameter}: a recycled name would be trusted"
                ));
            }
        }
        let subs: Vec<(&String, &Value)> = conditions
            .iter()
            .filter_map(|(op, c)| c.get(SUB).map(|v| (op, v)))
            .collect();
        if subs.is_empty() {
            findings.push(
                "no sub condition: any repository on GitHub could assume the role".to_owned(),
            );
        }
        for (op, value) in subs {
            if op != "StringEquals" {
                findings.push(format!("sub is compared with {op}, not StringEquals"));
            }
            let texts: Vec<String> = match value {
                Value::Array(list) => list.iter().map(sub_text).collect(),
                v => vec![sub_text(v)],
            };
            for text in texts {
                if text.contains('*') || text.contains('?') {
                    findings.push(format!("sub {text} has a wildcard"));
                }
                if !text.starts_with("repo:")
                    || !text.ends_with(&format!(":environment:{environment}"))
                {
                    findings.push(format!(
                        "sub {text} is not a job of the GitHub environment {environment}"
                    ));
                }
            }
        }
    }
    findings
}

/// Whether a statement lets GitHub's OIDC provider in (as an ARN string, a `Ref` to the template's provider,
/// or either inside `Fn::If`/`Fn::Sub`).
fn trusts_github(statement: &Value) -> bool {
    let principal = statement["Principal"]["Federated"].to_string();
    principal.contains("token.actions.githubusercontent.com")
        || principal.contains("GitHubOidcProvider")
}

/// The text of a `sub` value: a string, or the template string of an `Fn::Sub`.
fn sub_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => match &other["Fn::Sub"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts[0].as_str().unwrap_or_default().to_owned(),
            _ => other.to_string(),
        },
    }
}

#[test]
fn github_trust_is_pinned() {
    let template = transformed("unused", "unused");
    let mut checked = BTreeMap::new();
    for (id, r) in resources(&template) {
        if r["Type"] != "AWS::IAM::Role" {
            continue;
        }
        let trust = &r["Properties"]["AssumeRolePolicyDocument"];
        let statements = trust["Statement"].as_array().unwrap();
        if !statements.iter().any(trusts_github) {
            continue;
        }
        let name = r["Properties"]["RoleName"].as_str().unwrap_or(id);
        let environment = name.strip_prefix("opsplane-github-").unwrap_or_else(|| {
            panic!("{id} trusts GitHub but is not an opsplane-github-<env> role")
        });
        let findings = trust_findings(trust, environment);
        assert!(findings.is_empty(), "{id}: {findings:?}");
        let subs: Vec<String> = as_list(
            &statements[0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"],
        )
        .iter()
        .map(sub_text)
        .collect();
        checked.insert(environment.to_owned(), subs);
    }
    // One role per environment, each pinned to its own environment of the configured repository.
    let envs: Vec<&str> = checked.keys().map(String::as_str).collect();
    assert_eq!(envs, ["dev", "prod", "staging"]);
    // Both of GitHub's subject formats: by name, and the immutable one with the ids.
    assert_eq!(
        checked["prod"],
        [
            "repo:${GitHubOwner}/${GitHubRepo}:environment:prod",
            "repo:${GitHubOwner}@${GitHubOwnerId}/${GitHubRepo}@${GitHubRepoId}:environment:prod"
        ]
    );
    for id in ["GitHubOwnerId", "GitHubRepoId"] {
        assert_eq!(
            template["Parameters"][id]["AllowedPattern"], "[0-9]{1,20}",
            "{id} is a required numeric id"
        );
        assert!(template["Parameters"][id].get("Default").is_none(), "{id}");
    }

    // The checker rejects each way a trust goes wrong.
    let fixtures = root().join("tests/fixtures/template");
    let bad = |file: &str| -> Vec<String> {
        let text = std::fs::read_to_string(Path::new(&fixtures).join(file)).unwrap();
        trust_findings(&serde_json::from_str(&text).unwrap(), "prod")
    };
    let has = |findings: &[String], what: &str| findings.iter().any(|f| f.contains(what));
    let f = bad("trust-aud-only.json");
    assert!(has(&f, "no sub condition"), "{f:?}");
    let f = bad("trust-sub-stringlike.json");
    assert!(has(&f, "StringLike") && has(&f, "wildcard"), "{f:?}");
    let f = bad("trust-sub-wildcard.json");
    assert!(has(&f, "wildcard") && !has(&f, "StringLike"), "{f:?}");
    let f = bad("trust-no-aud.json");
    assert!(has(&f, "aud") && !has(&f, "no sub"), "{f:?}");
    let f = bad("trust-other-environment.json");
    assert!(
        has(
            &f,
            "sub repo:acme/infra:environment:staging is not a job of the GitHub environment prod"
        ),
        "{f:?}"
    );
    // A trust by names alone, however exact, is refused: the names can change hands.
    let f = bad("trust-names-only.json");
    assert_eq!(
        f,
        [
            "no StringEquals check of token.actions.githubusercontent.com:repository_id against GitHubRepoId: a recycled name would be trusted",
            "no StringEquals check of token.actions.githubusercontent.com:repository_owner_id against GitHubOwnerId: a recycled name would be trusted",
        ]
    );
    let f = bad("trust-pull-request.json");
    assert!(has(&f, "not a job of the GitHub environment prod"), "{f:?}");
}

#[test]
fn function_grants_follow_the_code() {
    let template = transformed("code-bucket", "functions.zip");
    let audit_copies = json!({"Fn::Sub": "${StateBucket.Arn}/audit/*"});
    let table = json!({"Fn::GetAtt": ["StateTable", "Arn"]});
    let key = json!({"Ref": "KmsKeyArn"});
    for (name, logical) in FUNCTIONS {
        let statements = function_statements(&template, logical);

        // Audit: the table record and the S3 copy with its retention (PutObject with Object Lock headers is
        // also authorised as PutObjectRetention), for exactly the functions that append audit events.
        let writes_audit = AUDIT_WRITERS.contains(&name);
        for action in ["s3:PutObject", "s3:PutObjectRetention"] {
            let on_audit = grants(&statements, action)
                .iter()
                .any(|(r, _)| *r == audit_copies);
            assert_eq!(on_audit, writes_audit, "{name}: {action} on audit/*");
        }
        assert_eq!(
            grants(&statements, "s3:PutObjectRetention"),
            if writes_audit {
                vec![(audit_copies.clone(), Value::Null)]
            } else {
                vec![]
            },
            "{name}: retention is set on audit copies only"
        );
        if writes_audit {
            assert!(
                grants(&statements, "dynamodb:PutItem").contains(&(table.clone(), Value::Null)),
                "{name}: the audit record in the table"
            );
        }

        // Probe credentials: read by reference, by the probing functions only; provision reads the AUTH
        // tokens of the Redis groups it makes, under opsplane/ only.
        let probes = PROBERS.contains(&name);
        let secrets: BTreeSet<String> = grants(&statements, "secretsmanager:GetSecretValue")
            .into_iter()
            .map(|(r, cond)| {
                assert_eq!(cond, Value::Null);
                r["Fn::Sub"].as_str().unwrap().to_owned()
            })
            .collect();
        let readable: &[&str] = match (probes, name) {
            (true, _) => &["rds!*", "opsplane/*"],
            (false, "provision") => &["opsplane/*"],
            _ => &[],
        };
        let expected: BTreeSet<String> = readable
            .iter()
            .map(|n| {
                format!(
                    "arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:{n}"
                )
            })
            .collect();
        assert_eq!(secrets, expected, "{name}: secretsmanager:GetSecretValue");
        let connect = grants(&statements, "rds-db:connect");
        assert_eq!(
            connect,
            if probes {
                vec![(
                    json!({"Fn::Sub": "arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}:dbuser:*/${ProbeDbUser}"}),
                    Value::Null,
                )]
            } else {
                vec![]
            },
            "{name}: rds-db:connect as the probe user only"
        );

        // kms:Decrypt: the stack's key (when given), and other keys only through Secrets Manager, for the
        // functions that read secrets.
        for (resource, cond) in grants(&statements, "kms:Decrypt") {
            if resource == key {
                assert_eq!(cond, Value::Null, "{name}");
                continue;
            }
            assert!(
                !readable.is_empty(),
                "{name}: decrypts only with the stack's key"
            );
            assert_eq!(
                cond,
                json!({"StringEquals": {"kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}}}),
                "{name}: other keys only via Secrets Manager"
            );
        }
        assert!(
            grants(&statements, "kms:GenerateDataKey").contains(&(key.clone(), Value::Null)),
            "{name}: encrypts with the stack's key when one is given"
        );

        // The probing functions get the CA bundle's layer and its path only when a layer is given.
        let props = &resource(&template, logical)["Properties"];
        let vars = &props["Environment"]["Variables"];
        if probes {
            assert_eq!(
                vars[opsplane_shared::probe::ENV_CA_BUNDLE],
                json!({"Fn::If": ["HasProbeCaBundle", "/opt/rds/global-bundle.pem", ""]}),
                "{name}"
            );
            assert_eq!(
                props["Layers"],
                json!({"Fn::If": ["HasProbeCaBundle", [{"Ref": "ProbeCaBundleLayerArn"}],
                                  {"Ref": "AWS::NoValue"}]}),
                "{name}"
            );
        }
        assert!(
            !vars.to_string().contains("PASSWORD"),
            "{name}: no credential in the environment"
        );
    }

    // The parameters behind those grants and variables.
    let params = &template["Parameters"];
    assert!(params.get("ProbePassword").is_none());
    assert_eq!(default_of(&template, "ProbeDbUser"), "opsplane_probe");
    assert_eq!(default_of(&template, "AuditLockMode"), "GOVERNANCE");
    assert_eq!(
        params["AuditLockMode"]["AllowedValues"],
        json!(["GOVERNANCE", "COMPLIANCE"])
    );
    for allowed in params["AuditLockMode"]["AllowedValues"].as_array().unwrap() {
        opsplane_shared::config::AuditLockMode::parse(allowed.as_str().unwrap())
            .expect("every allowed mode is one the functions read");
    }
    assert_eq!(params["AuditRetentionDays"]["Default"], json!(365));
    assert_eq!(params["AuditRetentionDays"]["MinValue"], json!(1));
    assert_eq!(
        params["AuditRetentionDays"]["MaxValue"],
        json!(opsplane_shared::config::MAX_AUDIT_RETENTION_DAYS)
    );
}
