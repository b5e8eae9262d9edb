//! Probe credentials by reference: a drill whose probe logs in with a Secrets Manager secret leaves the value
//! nowhere, and an IAM-auth probe's token is a presigned `connect` request that is never logged.

use std::sync::{Arc, Mutex};

use opsplane_fn_backup::probe::ProbeSettings;
use opsplane_shared::domain::drill::DrillReport;
use opsplane_shared::future::BoxFuture;
use opsplane_shared::secrets::{AuthTokenSource, Credentials, RdsAuthTokens, Secret, SecretError};
use opsplane_shared::telemetry::{LogFormat, capture};
use opsplane_statemachines::Status;
use serde_json::json;

use crate::backup::{Plane, deps};
use crate::harness::assert_secret_absent;
use crate::postgres::{execute, postgres};

fn to_postgres() -> ProbeSettings {
    ProbeSettings {
        endpoint_override: Some(("127.0.0.1".to_owned(), postgres().port())),
        ..ProbeSettings::default()
    }
}

/// Everything at debug level, as production's JSON lines would be written.
const DIRECTIVE: &str = "debug,aws_smithy_runtime=info,aws_config=info,hyper_util=info";

#[tokio::test]
async fn a_drill_whose_probe_uses_a_secret_leaves_the_value_nowhere() {
    let (guard, logs) = capture(LogFormat::Json, DIRECTIVE);
    let plane = Plane::new("drill.yaml", to_postgres()).await;
    let table = format!("canary-{}", plane.env);
    execute(&format!(
        "CREATE TABLE \"{table}\" (written_at timestamptz NOT NULL); INSERT INTO \"{table}\" VALUES (now());"
    ))
    .await;
    let backup = plane.run_backup().await;
    assert_eq!(backup.status, Status::Succeeded, "{:?}", backup.cause);
    let run = plane
        .engine
        .run(&plane.drill, json!({ "environment": plane.env }))
        .await
        .unwrap();
    assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
    // The probe really logged in with the secret's user and password.
    let checks = run.output.as_ref().unwrap()["verify"]["checks"]
        .as_array()
        .unwrap()
        .clone();
    let probe = checks.iter().find(|c| c["name"] == "sql-probe").unwrap();
    assert_eq!(probe["passed"], true, "{probe}");
    assert!(
        probe["detail"].as_str().unwrap().ends_with("as postgres"),
        "{probe}"
    );
    // The spec names the secret: its ARN travels, its value does not.
    assert!(
        plane
            .spec
            .drill
            .as_ref()
            .unwrap()
            .probe
            .as_ref()
            .unwrap()
            .secret_arn
            .is_some()
    );
    // The health check's SQL probe logs in with the same secret, recording its verdict; with the secret's
    // password changed behind it, the same check fails on the SQL probe: it really ran.
    assert!(
        plane.health_reasons("sql").await.is_empty(),
        "the SQL probe passed with the secret's password"
    );
    let arn = plane
        .spec
        .health
        .sql
        .as_ref()
        .unwrap()
        .probe
        .secret_arn
        .clone()
        .unwrap();
    let wrong = json!({ "username": "postgres", "password": "not-the-password" }).to_string();
    let secrets = &plane.world.clients.secrets_manager;
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(&wrong)
        .send()
        .await
        .unwrap();
    let failed = plane.health_reasons("sql").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    drop(guard);
    let logs = logs.text();
    assert!(
        logs.contains("backup function invoked") && logs.contains("health-check function invoked"),
        "the capture saw the handlers"
    );
    assert_secret_absent(&plane.world, &plane.engine, postgres().password(), &logs).await;
    assert_secret_absent(&plane.world, &plane.engine, "not-the-password", &logs).await;
}

/// The real token signer, remembering what it issued so the test can look for it afterwards.
#[derive(Clone)]
struct Recording {
    inner: RdsAuthTokens,
    issued: Arc<Mutex<Vec<String>>>,
}

impl AuthTokenSource for Recording {
    fn token<'a>(
        &'a self,
        host: &'a str,
        port: u16,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Secret, SecretError>> {
        Box::pin(async move {
            let token = self.inner.token(host, port, user).await?;
            self.issued.lock().unwrap().push(token.expose().to_owned());
            Ok(token)
        })
    }
}

/// `host:port/?query` split into its endpoint and decoded query pairs.
fn parse_token(token: &str) -> (String, Vec<(String, String)>) {
    let (endpoint, query) = token.split_once("/?").expect("host:port/?query");
    let decode = |s: &str| s.replace("%2F", "/").replace("%3A", ":");
    let pairs = query
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').expect("name=value");
            (k.to_owned(), decode(v))
        })
        .collect();
    (endpoint.to_owned(), pairs)
}

#[tokio::test]
async fn iam_auth_tokens_are_presigned_connect_requests_and_never_logged() {
    let (guard, logs) = capture(LogFormat::Text, DIRECTIVE);
    let plane = Plane::new("drill-iam.yaml", to_postgres()).await;
    let issued = Arc::new(Mutex::new(Vec::new()));
    let credentials = Credentials {
        tokens: Arc::new(Recording {
            inner: RdsAuthTokens::new(plane.world.clients.sdk.clone()),
            issued: issued.clone(),
        }),
        ..Credentials::from_clients(&plane.world.clients)
    };
    plane.reregister(deps(&plane.local, to_postgres()).with_credentials(credentials));
    assert_eq!(plane.run_backup().await.status, Status::Succeeded);
    let run = plane
        .engine
        .run(&plane.drill, json!({ "environment": plane.env }))
        .await
        .unwrap();
    // The test's PostgreSQL offers no TLS, and an IAM login never goes without it.
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some("RestoreFailed"),
        "{:?}",
        run.cause
    );
    // The report says why: the probe's check failed for want of TLS.
    let keys = plane
        .world
        .clients
        .s3
        .list_objects_v2()
        .bucket(&plane.world.config.bucket_name)
        .prefix(format!("reports/drills/{}/", plane.env))
        .send()
        .await
        .unwrap();
    let json_key = keys
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .find(|k| k.ends_with(".json"))
        .expect("the drill's JSON report")
        .to_owned();
    let report: DrillReport = serde_json::from_slice(&plane.object(&json_key).await).unwrap();
    // A failed verification is recorded as the drill's error, naming each failed check.
    let failure = report
        .checks
        .iter()
        .find(|c| c.name == "drill" && !c.passed)
        .expect("the failure is in the report");
    assert!(
        failure.detail.contains("sql-probe") && failure.detail.contains("TLS"),
        "{}",
        failure.detail
    );
    assert!(
        failure.detail.contains("as probe_iam"),
        "{}",
        failure.detail
    );
    drop(guard);

    let tokens = issued.lock().unwrap().clone();
    assert_eq!(tokens.len(), 1, "one token for the one probe");
    let (endpoint, query) = parse_token(&tokens[0]);
    assert_eq!(endpoint, format!("127.0.0.1:{}", postgres().port()));
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{name} in {query:?}"))
    };
    assert_eq!(get("Action"), "connect");
    assert_eq!(get("DBUser"), "probe_iam");
    assert_eq!(get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
    // <access key>/<date>/<region>/<service>/aws4_request
    let credential: Vec<&str> = get("X-Amz-Credential").split('/').collect();
    assert_eq!(credential.len(), 5, "{credential:?}");
    assert_eq!(
        credential[0], "testing",
        "signed with the plane's credentials"
    );
    assert_eq!(credential[2], plane.world.config.region);
    assert_eq!((credential[3], credential[4]), ("rds-db", "aws4_request"));
    assert_eq!(get("X-Amz-Expires"), "900");
    let signature = get("X-Amz-Signature");
    assert!(signature.len() == 64 && signature.chars().all(|c| c.is_ascii_hexdigit()));

    let logs = logs.text();
    assert!(
        logs.contains("IAM auth token issued"),
        "the capture saw the probe: {logs}"
    );
    assert_secret_absent(&plane.world, &plane.engine, &tokens[0], &logs).await;
    assert_secret_absent(&plane.world, &plane.engine, signature, &logs).await;
}
