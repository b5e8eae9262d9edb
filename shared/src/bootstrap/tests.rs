//! Bootstrap's pure parts: policies, encryption checks, partitions.

use super::*;

#[test]
fn policy_is_written_when_missing_and_left_alone_when_present() {
    let first = converge_policy(None, "b-1", "us-east-1").unwrap().unwrap();
    let parsed: Value = serde_json::from_str(&first).unwrap();
    let st = &parsed["Statement"][0];
    assert_eq!(st["Effect"], "Deny");
    assert_eq!(st["Condition"]["Bool"]["aws:SecureTransport"], "false");
    assert_eq!(st["Resource"][1], "arn:aws:s3:::b-1/*");
    assert_eq!(
        converge_policy(Some(&first), "b-1", "us-east-1").unwrap(),
        None
    );
}

#[test]
fn foreign_statements_are_kept_and_a_changed_statement_is_replaced() {
    let foreign = json!({"Sid": "AllowAudit", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"},
                         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b-1/*"});
    let mut tampered = tls_only_statement("b-1", "us-east-1");
    tampered["Condition"]["Bool"]["aws:SecureTransport"] = json!("true");
    let current =
        json!({"Version": "2012-10-17", "Statement": [foreign.clone(), tampered]}).to_string();
    let merged: Value = serde_json::from_str(
        &converge_policy(Some(&current), "b-1", "us-east-1")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let statements = merged["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2);
    assert_eq!(statements[0], foreign);
    assert_eq!(statements[1], tls_only_statement("b-1", "us-east-1"));
}

#[test]
fn a_single_statement_object_is_accepted() {
    let current =
        json!({"Version": "2012-10-17", "Statement": {"Sid": "X", "Effect": "Allow"}}).to_string();
    let merged: Value = serde_json::from_str(
        &converge_policy(Some(&current), "b", "us-east-1")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(merged["Statement"].as_array().unwrap().len(), 2);
    assert!(converge_policy(Some("not json"), "b", "us-east-1").is_err());
}

#[test]
fn partitions_follow_the_region() {
    assert_eq!(partition("us-east-1"), "aws");
    assert_eq!(partition("cn-north-1"), "aws-cn");
    assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
    assert!(
        tls_only_statement("b", "cn-north-1")["Resource"][0]
            .as_str()
            .unwrap()
            .starts_with("arn:aws-cn:")
    );
}

#[test]
fn report_says_whether_anything_changed() {
    let step = |outcome| Step {
        resource: "table t".into(),
        setting: "table",
        outcome,
    };
    let mut report = BootstrapReport {
        table: "t".into(),
        bucket: "b".into(),
        steps: vec![step(Outcome::AlreadyExisted)],
    };
    assert!(!report.changed());
    report.steps.push(step(Outcome::Updated));
    assert!(report.changed());
    assert!(report.to_string().contains("updated"));
    report.steps = vec![step(Outcome::Skipped)];
    assert!(!report.changed(), "a skipped setting is not a change");
}
