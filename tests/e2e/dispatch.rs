//! The dispatch function end to end: GitHub-style OIDC tokens signed with a test key, the issuer's discovery
//! document and JWKS served on loopback by the test, the policy, executions started on the local engine,
//! audit records in moto's table.

use std::sync::Arc;
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

/// An OIDC issuer on loopback: discovery document and JWKS, counting the JWKS fetches.
struct Issuer {
    url: String,
    jwks_fetches: Arc<AtomicUsize>,
}

impl Issuer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let discovery =
            json!({ "issuer": url, "jwks_uri": format!("{url}/.well-known/jwks") }).to_string();
        let jwks = fixture("jwks.json");
        let fetches = jwks_fetches.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (discovery, jwks, fetches) = (discovery.clone(), jwks.clone(), fetches.clone());
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
        Self { url, jwks_fetches }
    }

    fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }
}

/// A dispatch test: the plane with a seeded environment, the issuer, the function's deps.
struct Setup {
    plane: Plane,
    issuer: Issuer,
    repo: String,
    deps: Deps,
}

impl Setup {
    async fn new() -> Self {
        Self::with_refresh(Duration::ZERO).await
    }

    async fn with_refresh(min_refresh: Duration) -> Self {
        let plane = Plane::new("retention.yaml", ProbeSettings::default()).await;
        let issuer = Issuer::start().await;
        let repo = format!("acme/{}", unique("infra"));
        let policy = Policy::parse(
            &fixture("policy.yaml")
                .replace("{repo}", &repo)
                .replace("{env}", &plane.env),
        )
        .expect("policy fixture");
        let keys = JwksCache::with_intervals(
            Arc::new(HttpKeySource::new(&issuer.url).unwrap()),
            min_refresh,
            Duration::from_secs(3600),
        );
        let deps = Deps {
            verifier: Verifier::new(&issuer.url, AUDIENCE, keys),
            policy,
            executions: Starter::new(plane.local.executions(), plane.local.state_machine_prefix()),
            state: StateStore::from_config(&plane.world.config, &plane.world.clients),
        };
        Self {
            plane,
            issuer,
            repo,
            deps,
        }
    }

    /// The claims of a job of this repository in GitHub environment `staging`, run `run_id`, attempt 1.
    fn claims(&self, run_id: u64) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": self.issuer.url,
            "aud": AUDIENCE,
            "sub": format!("repo:{}:environment:staging", self.repo),
            "repository": self.repo,
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
        let machine = if workflow == "backup" {
            &self.plane.backup
        } else {
            &self.plane.drill
        };
        let name = execution_name(
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
    assert_eq!(body["name"], format!("gh-backup-{}-1001-1", s.plane.env));
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

    // The same run again (a re-sent request, another job of the run): the same execution, nothing new.
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
    let audit = s.audit().await;
    let denied = audit
        .iter()
        .filter(|e| e.action == "dispatch.denied")
        .count();
    assert_eq!(denied, 4, "{audit:#?}");
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
    assert_eq!(s.issuer.fetches(), 1, "refreshes are rate-limited");
}
