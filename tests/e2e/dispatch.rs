//! The dispatch function end to end: GitHub-style OIDC tokens signed with a test key, the issuer's discovery
//! document and JWKS served on loopback by the test, the policy, executions started on the local engine,
//! token uses and audit records in moto's table.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use opsplane_fn_backup::probe::ProbeSettings;
use opsplane_fn_dispatch::jwt::{HttpKeySource, JwksCache, Verifier};
use opsplane_fn_dispatch::policy::Policy;
use opsplane_fn_dispatch::schema::SCHEMAS;
use opsplane_fn_dispatch::start::Starter;
use opsplane_fn_dispatch::{Deps, execution_name, handle};
use opsplane_shared::ports::executions::execution_arn;
use opsplane_shared::state::StateStore;
use opsplane_statemachines::Status;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backup::Plane;
use crate::harness::{root, unique};

const AUDIENCE: &str = "https://github.com/acme";
const KID: &str = "opsplane-test-1";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(root().join("tests/fixtures/oidc").join(name)).expect("oidc fixture")
}

/// An OIDC issuer on loopback: discovery document and JWKS (which a test may rotate), counting the JWKS
/// fetches.
struct Issuer {
    url: String,
    jwks_fetches: Arc<AtomicUsize>,
    jwks: Arc<Mutex<String>>,
}

impl Issuer {
    async fn start() -> Self {
        Self::with_jwks_uri(None).await
    }

    /// An issuer whose discovery document names `jwks_uri` instead of its own JWKS.
    async fn with_jwks_uri(jwks_uri: Option<String>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let discovery = json!({
            "issuer": url,
            "jwks_uri": jwks_uri.unwrap_or_else(|| format!("{url}/.well-known/jwks")),
        })
        .to_string();
        let jwks_doc = Arc::new(Mutex::new(fixture("jwks.json")));
        let jwks = jwks_doc.clone();
        let fetches = jwks_fetches.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (discovery, jwks, fetches) = (
                    discovery.clone(),
                    jwks.lock().unwrap().clone(),
                    fetches.clone(),
                );
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..n]);
                    let path = request.split_whitespace().nth(1).unwrap_or("");
                    let (status, body) = match path {
                        "/.well-known/openid-configuration" => ("200 OK", discovery),
                        "/.well-known/jwks" => {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            ("200 OK", jwks)
                        }
                        _ => ("404 Not Found", "{}".to_owned()),
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Self {
            url,
            jwks_fetches,
            jwks: jwks_doc,
        }
    }

    fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Rotates the signing key: the issuer's key is published under `kid` only.
    fn rotate_to(&self, kid: &str) {
        let mut doc: Value = serde_json::from_str(&fixture("jwks.json")).unwrap();
        doc["keys"][0]["kid"] = json!(kid);
        *self.jwks.lock().unwrap() = doc.to_string();
    }
}

/// A numeric id no other test uses, as GitHub's ids are.
fn unique_id() -> String {
    fastrand::u64(1_000_000_000..9_000_000_000_000).to_string()
}

/// A dispatch test: the plane with a seeded environment, the issuer, the function's deps.
struct Setup {
    plane: Plane,
    issuer: Issuer,
    repo: String,
    repo_id: String,
    owner_id: String,
    deps: Deps,
}

impl Setup {
    async fn new() -> Self {
        Self::build(Duration::ZERO, Issuer::start().await, None).await
    }

    async fn with_refresh(min_refresh: Duration) -> Self {
        Self::build(min_refresh, Issuer::start().await, None).await
    }

    /// A setup whose policy is `policy` (with the fixture's placeholders) instead of the fixture.
    async fn with_policy(policy: &str) -> Self {
        Self::build(Duration::ZERO, Issuer::start().await, Some(policy)).await
    }

    async fn build(min_refresh: Duration, issuer: Issuer, policy: Option<&str>) -> Self {
        let plane = Plane::new("retention.yaml", ProbeSettings::default()).await;
        let repo = format!("acme/{}", unique("infra"));
        let (repo_id, owner_id) = (unique_id(), unique_id());
        let policy = Policy::parse(
            &policy
                .map(str::to_owned)
                .unwrap_or_else(|| fixture("policy.yaml"))
                .replace("{repo}", &repo)
                .replace("{repo_id}", &repo_id)
                .replace("{owner_id}", &owner_id)
                .replace("{env}", &plane.env),
        )
        .expect("policy fixture");
        let keys = JwksCache::with_intervals(
            Arc::new(HttpKeySource::local(&issuer.url).unwrap()),
            min_refresh,
            Duration::from_secs(3600),
        );
        let deps = Deps::new(
            Verifier::new(&issuer.url, AUDIENCE, keys),
            policy,
            Starter::new(plane.local.executions(), plane.local.state_machine_prefix()),
            StateStore::from_config(&plane.world.config, &plane.world.clients),
        );
        Self {
            plane,
            issuer,
            repo,
            repo_id,
            owner_id,
            deps,
        }
    }

    /// The claims of a job of this repository in GitHub environment `staging`, run `run_id`, attempt 1, with
    /// a fresh `jti`.
    fn claims(&self, run_id: u64) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": self.issuer.url,
            "aud": AUDIENCE,
            "jti": unique("jti"),
            "sub": format!("repo:{}:environment:staging", self.repo),
            "repository": self.repo,
            "repository_id": self.repo_id,
            "repository_owner_id": self.owner_id,
            "environment": "staging",
            "ref": "refs/heads/main",
            "workflow_ref": format!("{}/.github/workflows/ops.yml@refs/heads/main", self.repo),
            "actor": "jane",
            "sha": "0f661a4a011d77cb21fa4dc7013d9b6f928666ed",
            "run_id": run_id.to_string(),
            "run_attempt": "1",
            "event_name": "workflow_dispatch",
            "iat": now - 10,
            "nbf": now - 10,
            "exp": now + 300,
        })
    }

    async fn call(&self, token: &str, body: Value) -> (u16, Value) {
        let event = json!({
            "version": "2.0",
            "rawPath": "/",
            "rawQueryString": "",
            "headers": { "authorization": format!("Bearer {token}"), "content-type": "application/json" },
            "queryStringParameters": {},
            "requestContext": {
                "accountId": "anonymous",
                "apiId": "dispatch",
                "domainName": "dispatch.lambda-url.us-east-1.on.aws",
                "domainPrefix": "dispatch",
                "requestId": unique("req"),
                "time": "21/Nov/2026:21:05:07 +0000",
                "timeEpoch": 1795295107000i64,
                "http": { "method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test" }
            },
            "body": body.to_string(),
            "isBase64Encoded": false
        });
        let request: LambdaFunctionUrlRequest =
            serde_json::from_value(event).expect("a function URL event");
        let response: LambdaFunctionUrlResponse = handle(&self.deps, request).await;
        let body = serde_json::from_str(response.body.as_deref().unwrap_or("null")).unwrap();
        (response.status_code as u16, body)
    }

    fn backup_body(&self) -> Value {
        json!({ "workflow": "backup", "environment": self.plane.env })
    }

    /// Whether the execution a run would get exists on the engine.
    fn started(&self, workflow: &str, environment: &str, claims: &Value) -> bool {
        let machine = self.plane.local.state_machine(workflow).unwrap();
        let name = execution_name(
            claims["repository_id"].as_str().unwrap_or_default(),
            workflow,
            environment,
            claims["run_id"].as_str().unwrap(),
            claims["run_attempt"].as_str().unwrap(),
        );
        self.plane
            .engine
            .describe_execution(&execution_arn(machine, &name))
            .is_ok()
    }

    async fn audit(&self) -> Vec<opsplane_shared::state::AuditEvent> {
        let mut events = self.deps.state.audit_today(None).await.unwrap();
        events.retain(|e| e.details["repository"] == self.repo.as_str());
        events
    }
}

fn sign(claims: &Value, kid: &str, key_file: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_rsa_pem(fixture(key_file).as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn a_valid_token_starts_one_execution_and_the_same_run_starts_none() {
    let s = Setup::new().await;
    let claims = s.claims(1001);
    let token = sign(&claims, KID, "issuer.key.pem");

    let (status, body) = s.call(&token, s.backup_body()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["started"], true);
    let arn = body["executionArn"].as_str().unwrap().to_owned();
    assert_eq!(
        body["name"],
        format!("gh-{}-backup-{}-1001-1", s.repo_id, s.plane.env)
    );
    assert!(body["consoleUrl"].as_str().unwrap().ends_with(&arn));

    // The execution runs on the engine with the GitHub context in its input, and backs up for real.
    let done = s.plane.engine.wait_for(&arn).await.unwrap();
    assert_eq!(done.status, Status::Succeeded, "{:?}", done.cause);
    assert_eq!(done.input["environment"], s.plane.env.as_str());
    let github = &done.input["github"];
    assert_eq!(github["actor"], "jane");
    assert_eq!(github["repository"], s.repo.as_str());
    assert_eq!(github["sha"], "0f661a4a011d77cb21fa4dc7013d9b6f928666ed");
    assert_eq!(
        (github["run_id"].as_str(), github["run_attempt"].as_str()),
        (Some("1001"), Some("1"))
    );
    assert_eq!(github["ref"], "refs/heads/main");

    // The same token again for the same request (a client retrying after a lost answer): the same
    // execution, nothing new.
    let (status, again) = s.call(&token, s.backup_body()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["executionArn"].as_str(), again["started"].as_bool()),
        (Some(arn.as_str()), Some(false))
    );
    // A new attempt of the run is a new execution.
    let mut retry = claims.clone();
    retry["run_attempt"] = json!("2");
    let (status, second) = s
        .call(&sign(&retry, KID, "issuer.key.pem"), s.backup_body())
        .await;
    assert_eq!(status, 201, "{second}");
    assert_ne!(second["executionArn"], json!(arn));
    s.plane
        .engine
        .wait_for(second["executionArn"].as_str().unwrap())
        .await
        .unwrap();

    let audit = s.audit().await;
    let results: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.result.as_str()))
        .collect();
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == ("dispatch.start", "started"))
            .count(),
        2,
        "{results:?}"
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == ("dispatch.start", "already_started"))
            .count(),
        1,
        "{results:?}"
    );
    let first = audit
        .iter()
        .find(|e| e.details["execution"] == json!(arn))
        .unwrap();
    assert_eq!(first.actor, format!("repo:{}:environment:staging", s.repo));
    assert_eq!(first.environment.as_deref(), Some(s.plane.env.as_str()));
    assert_eq!(first.details["actor"], "jane");
}

#[tokio::test]
async fn bad_tokens_get_401_and_start_nothing() {
    let s = Setup::new().await;
    let now = chrono::Utc::now().timestamp();
    let mut cases: Vec<(&str, String, Value)> = Vec::new();
    let mut run = 2000;
    let mut next = |f: &dyn Fn(&mut Value)| {
        run += 1;
        let mut c = s.claims(run);
        f(&mut c);
        c
    };

    let c = next(&|c| {
        c["exp"] = json!(now - 120);
        c["iat"] = json!(now - 600);
        c["nbf"] = json!(now - 600);
    });
    cases.push(("token expired", sign(&c, KID, "issuer.key.pem"), c));
    let c = next(&|c| c["aud"] = json!("sts.amazonaws.com"));
    cases.push(("wrong audience", sign(&c, KID, "issuer.key.pem"), c));
    let c = next(&|c| c["iss"] = json!("https://token.actions.githubusercontent.com"));
    cases.push(("wrong issuer", sign(&c, KID, "issuer.key.pem"), c));
    let c = next(&|c| c["nbf"] = json!(now + 600));
    cases.push(("not valid yet", sign(&c, KID, "issuer.key.pem"), c));

    // alg none: a header and claims, no signature.
    let c = next(&|_| {});
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": KID})),
        b64(&c)
    );
    cases.push(("\"none\" is not allowed", none, c));

    // HS256 "signed" with the issuer's public key as the shared secret.
    let c = next(&|_| {});
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(KID.to_owned());
    let hs = jsonwebtoken::encode(
        &header,
        &c,
        &EncodingKey::from_secret(fixture("issuer.pub.pem").as_bytes()),
    )
    .unwrap();
    cases.push(("\"HS256\" is not allowed", hs, c));

    // Signed by a key the issuer never published, named with an unknown kid...
    let c = next(&|_| {});
    cases.push((
        "unknown signing key",
        sign(&c, "not-published", "other.key.pem"),
        c,
    ));
    // ...or with the issuer's kid.
    let c = next(&|_| {});
    cases.push(("bad token signature", sign(&c, KID, "other.key.pem"), c));

    for (reason, token, claims) in &cases {
        let fetches_before = s.issuer.fetches();
        let (status, body) = s.call(token, s.backup_body()).await;
        assert_eq!(status, 401, "{reason}: {body}");
        assert_eq!(body["error"], "Unauthorized", "{reason}");
        assert!(
            body["reason"].as_str().unwrap().contains(reason),
            "{reason}: {body}"
        );
        assert!(
            !s.started("backup", &s.plane.env, claims),
            "{reason}: started"
        );
        if *reason == "unknown signing key" {
            assert_eq!(
                s.issuer.fetches(),
                fetches_before + 1,
                "an unknown kid refreshes the JWKS once"
            );
        }
        if reason.contains("not allowed") {
            assert_eq!(
                s.issuer.fetches(),
                fetches_before,
                "{reason}: refused before any key lookup"
            );
        }
    }
    let (status, body) = s.call("", s.backup_body()).await;
    assert_eq!(status, 401, "{body}");
    // Unauthenticated calls leave no audit record.
    assert!(s.audit().await.is_empty());
}

#[tokio::test]
async fn the_policy_refuses_with_403_other_repositories_environments_and_pull_requests_for_prod() {
    let s = Setup::new().await;
    let prod = format!("{}-prod", s.plane.env);
    let mut cases: Vec<(&str, Value, Value)> = Vec::new();

    let mut c = s.claims(3001);
    let other = format!("acme/{}", unique("other"));
    c["repository"] = json!(other);
    c["repository_id"] = json!(unique_id());
    c["sub"] = json!(format!("repo:{other}:environment:staging"));
    cases.push(("another repository", c, s.backup_body()));

    let c = s.claims(3002);
    cases.push((
        "another environment",
        c,
        json!({ "workflow": "backup", "environment": prod }),
    ));

    let mut c = s.claims(3003);
    c["environment"] = json!("production");
    c["sub"] = json!(format!("repo:{}:environment:production", s.repo));
    c["event_name"] = json!("pull_request");
    cases.push((
        "pull request for prod",
        c,
        json!({ "workflow": "backup", "environment": prod }),
    ));

    let mut c = s.claims(3004);
    c["sub"] = json!(format!("repo:{}:pull_request", s.repo));
    c["environment"] = json!("production");
    cases.push((
        "pull_request subject for prod",
        c,
        json!({ "workflow": "backup", "environment": prod }),
    ));

    let c = s.claims(3005);
    cases.push((
        "another workflow",
        c,
        json!({ "workflow": "dr-drill", "environment": s.plane.env }),
    ));

    for (what, claims, body) in &cases {
        let (status, answer) = s
            .call(&sign(claims, KID, "issuer.key.pem"), body.clone())
            .await;
        assert_eq!(status, 403, "{what}: {answer}");
        assert_eq!(answer["error"], "Forbidden", "{what}");
        let environment = body["environment"].as_str().unwrap();
        let workflow = body["workflow"].as_str().unwrap();
        assert!(!s.started(workflow, environment, claims), "{what}: started");
    }
    // The same production job, not from a pull request, is allowed past the policy (it gets to the engine,
    // which has no spec for that environment: the workflow itself then fails validation).
    let mut c = s.claims(3006);
    c["environment"] = json!("production");
    c["sub"] = json!(format!("repo:{}:environment:production", s.repo));
    let (status, answer) = s
        .call(
            &sign(&c, KID, "issuer.key.pem"),
            json!({ "workflow": "backup", "environment": prod }),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let done = s
        .plane
        .engine
        .wait_for(answer["executionArn"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(done.error.as_deref(), Some("InvalidInput"));

    // Denials of verified callers are audited with the reason (the other repository's under its own name).
    let mut audit = s.audit().await;
    audit.extend(
        s.deps
            .state
            .audit_today(None)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.details["repository"] == json!(other)),
    );
    let denied = audit
        .iter()
        .filter(|e| e.action == "dispatch.denied")
        .count();
    assert_eq!(denied, 5, "{audit:#?}");
    assert!(
        audit
            .iter()
            .all(|e| e.action != "dispatch.denied" || e.details["reason"].is_string())
    );
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_the_jwks_once_per_interval() {
    let s = Setup::with_refresh(Duration::from_secs(60)).await;
    let (status, _) = s
        .call(&sign(&s.claims(4001), KID, "issuer.key.pem"), json!({}))
        .await;
    // A body that is not a dispatch request: refused after the token, which was verified (one fetch).
    assert_eq!(status, 400);
    assert_eq!(s.issuer.fetches(), 1);
    for i in 0..20 {
        let token = sign(&s.claims(4100 + i), &format!("kid-{i}"), "other.key.pem");
        let (status, _) = s.call(&token, s.backup_body()).await;
        assert_eq!(status, 401);
    }
    // The interval's scheduled fetch, and the one early refresh the first unknown kid earns.
    assert_eq!(s.issuer.fetches(), 2, "refreshes are rate-limited");
}

/// The input an execution was started with.
fn input_of(s: &Setup, arn: &str) -> Value {
    s.plane.engine.describe_execution(arn).unwrap().input
}

/// A policy whose only rule grants every workflow, for staging only.
const STAGING_ONLY: &str = r#"
protected_environments: ["{env}-prod"]
rules:
  - repository_id: "{repo_id}"
    repository_owner_id: "{owner_id}"
    github_environment: staging
    workflows: [provision, rollback, backup, dr-drill, drift, health-sweep]
    environments: ["{env}"]
"#;

#[tokio::test]
async fn a_staging_rule_cannot_make_any_workflow_act_on_prod_through_any_input() {
    let s = Setup::with_policy(STAGING_ONLY).await;
    let prod = format!("{}-prod", s.plane.env);
    let alarm: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/events/alarm-staging.json"))
            .unwrap()
            .replace("{env}", &prod),
    )
    .unwrap();
    // Every field any workflow takes or any workflow's input decides by, and the alarm event's own fields.
    let mut fields: Vec<String> = SCHEMAS
        .iter()
        .flat_map(|w| w.fields.iter().map(|f| f.name.to_owned()))
        .collect();
    fields.extend(
        [
            "environment",
            "environments",
            "actor",
            "github",
            "spec_version",
            "detail-type",
            "detail",
            "source",
            "resources",
        ]
        .map(str::to_owned),
    );
    fields.extend(alarm.as_object().unwrap().keys().cloned());
    fields.sort();
    fields.dedup();
    let values = [
        json!(prod),
        json!([prod]),
        json!({ "environment": prod }),
        alarm["detail"].clone(),
        alarm["detail-type"].clone(),
    ];
    let mut run = 60_000;
    let (mut refused, mut started) = (0, 0);
    for workflow in SCHEMAS.iter().map(|w| w.workflow) {
        for field in &fields {
            for value in &values {
                run += 1;
                let mut input = serde_json::Map::new();
                if workflow == "rollback" {
                    input.insert("reason".into(), json!("routine"));
                }
                input.insert(field.clone(), value.clone());
                let body =
                    json!({ "workflow": workflow, "environment": s.plane.env, "input": input });
                let token = sign(&s.claims(run), KID, "issuer.key.pem");
                let (status, answer) = s.call(&token, body).await;
                match status {
                    400 => {
                        refused += 1;
                        assert_eq!(answer["error"], "InvalidInput", "{answer}");
                        assert!(
                            answer["reason"].as_str().unwrap().contains("input."),
                            "{workflow} {field}: the field is named: {answer}"
                        );
                    }
                    201 => {
                        // A field the workflow takes (a rollback's reason, a drill's instance) may say
                        // anything: what decides the environment is dispatch's own.
                        started += 1;
                        let input = input_of(&s, answer["executionArn"].as_str().unwrap());
                        let text = input.to_string();
                        assert!(input.get("detail-type").is_none(), "{text}");
                        assert!(input.get("detail").is_none(), "{text}");
                        if let Some(list) = input.get("environments") {
                            assert_eq!(list, &json!([s.plane.env]), "{text}");
                        }
                        let named = input
                            .get("environment")
                            .cloned()
                            .or_else(|| input["environments"].get(0).cloned());
                        assert_eq!(named, Some(json!(s.plane.env)), "{workflow}: {text}");
                    }
                    other => panic!("{workflow} {field}={value}: {other} {answer}"),
                }
            }
        }
    }
    assert!(
        refused > 0 && started > 0,
        "{refused} refused, {started} started"
    );

    // Only dispatch sets who acts and which spec is applied.
    for (field, value) in [("actor", json!("ceo")), ("spec_version", json!("v1"))] {
        run += 1;
        let (status, answer) = s
            .call(
                &sign(&s.claims(run), KID, "issuer.key.pem"),
                json!({ "workflow": "provision", "environment": s.plane.env, "input": { field: value } }),
            )
            .await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("input.{field}")),
            "{answer}"
        );
    }
    // What a caller may set is forwarded, with dispatch's own fields.
    run += 1;
    let claims = s.claims(run);
    let (status, answer) = s
        .call(
            &sign(&claims, KID, "issuer.key.pem"),
            json!({ "workflow": "rollback", "environment": s.plane.env, "input": { "reason": "error budget" } }),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let input = input_of(&s, answer["executionArn"].as_str().unwrap());
    assert_eq!(input["environment"], json!(s.plane.env));
    assert_eq!(input["reason"], "error budget");
    assert_eq!(input["actor"], claims["sub"]);
    assert_eq!(input["github"]["repository_id"], json!(s.repo_id));
}

#[tokio::test]
async fn immutable_subjects_are_matched_by_repository_and_owner_id() {
    let s = Setup::new().await;
    let immutable = |c: &mut Value, owner_id: &str, repo_id: &str| {
        let (owner, repo) = s.repo.split_once('/').unwrap();
        c["sub"] = json!(format!(
            "repo:{owner}@{owner_id}/{repo}@{repo_id}:environment:staging"
        ));
        c["repository_id"] = json!(repo_id);
        c["repository_owner_id"] = json!(owner_id);
    };
    let mut c = s.claims(7001);
    immutable(&mut c, &s.owner_id, &s.repo_id);
    let (status, answer) = s
        .call(&sign(&c, KID, "issuer.key.pem"), s.backup_body())
        .await;
    assert_eq!(status, 201, "{answer}");
    s.plane
        .engine
        .wait_for(answer["executionArn"].as_str().unwrap())
        .await
        .unwrap();

    // The same names with other ids: a recycled repository name, or a transferred one.
    for (owner_id, repo_id) in [
        (s.owner_id.clone(), unique_id()),
        (unique_id(), s.repo_id.clone()),
    ] {
        let mut c = s.claims(7002);
        immutable(&mut c, &owner_id, &repo_id);
        let (status, answer) = s
            .call(&sign(&c, KID, "issuer.key.pem"), s.backup_body())
            .await;
        assert_eq!(status, 403, "{answer}");
        assert!(!s.started("backup", &s.plane.env, &c));
    }

    // A subject whose ids disagree with the id claims is no token of GitHub's.
    let mut c = s.claims(7003);
    immutable(&mut c, &s.owner_id, &s.repo_id);
    c["repository_id"] = json!(unique_id());
    let (status, answer) = s
        .call(&sign(&c, KID, "issuer.key.pem"), s.backup_body())
        .await;
    assert_eq!(status, 401, "{answer}");

    // `%3A` in an environment's name is decoded before it is compared with the claim.
    let mut c = s.claims(7004);
    immutable(&mut c, &s.owner_id, &s.repo_id);
    c["sub"] = json!(
        c["sub"]
            .as_str()
            .unwrap()
            .replace(":staging", ":stag%3Aing")
    );
    let (status, answer) = s
        .call(&sign(&c, KID, "issuer.key.pem"), s.backup_body())
        .await;
    assert_eq!(status, 401, "decoded `stag:ing` is not `staging`: {answer}");
}

#[tokio::test]
async fn a_token_starts_one_request_and_a_run_starts_a_workflow_once() {
    let s = Setup::with_policy(STAGING_ONLY).await;
    let claims = s.claims(8001);
    let token = sign(&claims, KID, "issuer.key.pem");
    let (status, first) = s.call(&token, s.backup_body()).await;
    assert_eq!(status, 201, "{first}");

    // The same token, the same request: its own execution back.
    let (status, again) = s.call(&token, s.backup_body()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["executionArn"], first["executionArn"]);

    // The same token for anything else: refused, nothing started.
    for body in [
        json!({ "workflow": "dr-drill", "environment": s.plane.env }),
        json!({ "workflow": "rollback", "environment": s.plane.env, "input": { "reason": "r" } }),
        json!({ "workflow": "dr-drill", "environment": s.plane.env, "input": { "mode": "point-in-time" } }),
    ] {
        let (status, answer) = s.call(&token, body.clone()).await;
        assert_eq!(status, 409, "{body}: {answer}");
        assert_eq!(answer["error"], "TokenReused", "{answer}");
    }
    assert!(!s.started("dr-drill", &s.plane.env, &claims));
    assert!(!s.started("rollback", &s.plane.env, &claims));

    // Another job of the same run (its own token) asking for the same workflow and environment is refused,
    // not handed the first job's execution...
    let second_job = s.claims(8001);
    let (status, answer) = s
        .call(&sign(&second_job, KID, "issuer.key.pem"), s.backup_body())
        .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"], "RunAlreadyStarted", "{answer}");
    assert!(answer.get("executionArn").is_none(), "{answer}");
    // ...while it may start another workflow of its own.
    let (status, answer) = s
        .call(
            &sign(&s.claims(8001), KID, "issuer.key.pem"),
            json!({ "workflow": "dr-drill", "environment": s.plane.env }),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    s.plane
        .engine
        .wait_for(first["executionArn"].as_str().unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_thousand_refusals_from_a_foreign_repository_write_a_bounded_audit() {
    let s = Setup::new().await;
    let foreign = format!("evil/{}", unique("repo"));
    let foreign_id = unique_id();
    let forge = |run: u64| {
        let mut c = s.claims(run);
        c["repository"] = json!(foreign);
        c["repository_id"] = json!(foreign_id);
        c["sub"] = json!(format!("repo:{foreign}:environment:staging"));
        c["environment"] = json!("staging");
        c["ref"] = json!(format!("refs/heads/{}", "x".repeat(2000)));
        c
    };
    // Half of them one token sent again and again, half of them each a new token.
    let replayed = sign(&forge(9000), KID, "issuer.key.pem");
    for i in 0..1000u64 {
        let token = if i % 2 == 0 {
            replayed.clone()
        } else {
            sign(&forge(9001 + i), KID, "issuer.key.pem")
        };
        let (status, _) = s.call(&token, s.backup_body()).await;
        assert_eq!(status, 403);
    }
    let records: Vec<_> = s
        .deps
        .state
        .audit_today(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.details["repository_id"] == json!(foreign_id))
        .collect();
    let limit = opsplane_fn_dispatch::denials::DEFAULT_PER_MINUTE as usize;
    // One minute's budget, or two when the run straddles a minute.
    assert!(
        !records.is_empty() && records.len() <= 2 * limit,
        "{} records",
        records.len()
    );
    for r in &records {
        assert!(r.details["ref"].as_str().unwrap().chars().count() <= 201);
        assert!(r.details["reason"].as_str().unwrap().chars().count() <= 201);
    }
}

#[tokio::test]
async fn token_hygiene_refuses_what_github_never_sends() {
    let s = Setup::new().await;
    let mut run = 10_000;
    let mut next = || {
        run += 1;
        s.claims(run)
    };
    let key = EncodingKey::from_rsa_pem(fixture("issuer.key.pem").as_bytes()).unwrap();

    // `crit` (RFC 7515 §4.1.11: an extension the recipient does not understand must be rejected).
    let c = next();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.to_owned());
    header.crit = Some(vec!["exp".to_owned()]);
    let crit = jsonwebtoken::encode(&header, &c, &key).unwrap();
    let (status, answer) = s.call(&crit, s.backup_body()).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("crit"),
        "{answer}"
    );

    // An audience list, even one containing ours.
    let mut c = next();
    c["aud"] = json!([AUDIENCE, "https://other.example"]);
    let (status, answer) = s
        .call(&sign(&c, KID, "issuer.key.pem"), s.backup_body())
        .await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("aud"),
        "{answer}"
    );

    // A lifetime above the maximum.
    let mut c = next();
    c["exp"] = json!(c["iat"].as_i64().unwrap() + 24 * 3600);
    let (status, answer) = s
        .call(&sign(&c, KID, "issuer.key.pem"), s.backup_body())
        .await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("lifetime"),
        "{answer}"
    );

    // No `jti`: a token that cannot be bound to one use.
    let mut c = next();
    c.as_object_mut().unwrap().remove("jti");
    let (status, answer) = s
        .call(&sign(&c, KID, "issuer.key.pem"), s.backup_body())
        .await;
    assert_eq!(status, 401, "{answer}");

    // An oversized token and an oversized kid: refused, and not repeated back.
    let mut c = next();
    c["padding"] = json!("p".repeat(20_000));
    let (status, answer) = s
        .call(&sign(&c, KID, "issuer.key.pem"), s.backup_body())
        .await;
    assert_eq!(status, 401, "{answer}");
    assert!(answer.to_string().len() < 500, "{answer}");
    let kid = format!("k{}", "q".repeat(4000));
    let fetches = s.issuer.fetches();
    let (status, answer) = s
        .call(&sign(&next(), &kid, "issuer.key.pem"), s.backup_body())
        .await;
    assert_eq!(status, 401, "{answer}");
    assert!(!answer.to_string().contains("qqqq"), "{answer}");
    assert_eq!(
        s.issuer.fetches(),
        fetches,
        "no key lookup for a refused kid"
    );
    // An unknown kid of a usual size is not repeated either.
    let (status, answer) = s
        .call(
            &sign(&next(), "made-up-kid-123", "other.key.pem"),
            s.backup_body(),
        )
        .await;
    assert_eq!(status, 401, "{answer}");
    assert!(!answer.to_string().contains("made-up-kid-123"), "{answer}");

    // An oversized body: 413, before the token is even looked at.
    let (status, answer) = s
        .call(
            &sign(&next(), KID, "issuer.key.pem"),
            json!({ "workflow": "backup", "environment": s.plane.env, "input": { "x": "y".repeat(5 * 1024 * 1024) } }),
        )
        .await;
    assert_eq!(status, 413, "{}", answer["error"]);
    assert!(answer.to_string().len() < 500);

    // workflow_run and a missing event_name are untrusted for a protected environment.
    let prod = format!("{}-prod", s.plane.env);
    for event in [json!("workflow_run"), Value::Null] {
        let mut c = next();
        c["environment"] = json!("production");
        c["sub"] = json!(format!("repo:{}:environment:production", s.repo));
        if event.is_null() {
            c.as_object_mut().unwrap().remove("event_name");
        } else {
            c["event_name"] = event.clone();
        }
        let (status, answer) = s
            .call(
                &sign(&c, KID, "issuer.key.pem"),
                json!({ "workflow": "backup", "environment": prod }),
            )
            .await;
        assert_eq!(status, 403, "{event}: {answer}");
        assert!(!s.started("backup", &prod, &c));
    }
}

#[tokio::test]
async fn issuers_and_jwks_uris_must_be_https_outside_the_local_world() {
    let issuer = Issuer::start().await;
    // A loopback http issuer is the local world's; the deployed function's source refuses it.
    assert!(HttpKeySource::new(&issuer.url).is_err());
    assert!(HttpKeySource::new("http://token.actions.githubusercontent.com").is_err());
    assert!(HttpKeySource::local("http://token.actions.githubusercontent.com").is_err());
    assert!(HttpKeySource::new("https://token.actions.githubusercontent.com").is_ok());

    // A discovery document pointing the keys at plain http elsewhere: keys unavailable, nothing fetched.
    let s = Setup::build(
        Duration::ZERO,
        Issuer::with_jwks_uri(Some("http://keys.example.com/jwks".to_owned())).await,
        None,
    )
    .await;
    let (status, answer) = s
        .call(
            &sign(&s.claims(11_001), KID, "issuer.key.pem"),
            s.backup_body(),
        )
        .await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("not https"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_key_rotated_right_after_a_refresh_is_followed_at_once() {
    let s = Setup::with_refresh(Duration::from_secs(60)).await;
    let (status, answer) = s
        .call(
            &sign(&s.claims(12_001), KID, "issuer.key.pem"),
            s.backup_body(),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(s.issuer.fetches(), 1);
    // The issuer rotates seconds later; a job's token names the new kid.
    s.issuer.rotate_to("opsplane-test-2");
    let (status, answer) = s
        .call(
            &sign(&s.claims(12_002), "opsplane-test-2", "issuer.key.pem"),
            s.backup_body(),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(s.issuer.fetches(), 2, "one early refresh");
    // The early refresh is spent: another unknown kid waits for the interval.
    let (status, _) = s
        .call(
            &sign(&s.claims(12_003), "opsplane-test-3", "issuer.key.pem"),
            s.backup_body(),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(s.issuer.fetches(), 2);
}
