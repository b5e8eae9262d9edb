//! GitHub Actions OIDC tokens: RS256 signatures over the issuer's JWKS, `iss`, `aud`, `exp`/`nbf`/`iat`.
//!
//! The algorithm is read from the token's header and refused unless it is `RS256` before any key is looked
//! up, so `alg: none` and an HS256 token "signed" with the issuer's public key never reach a verifier. Keys
//! come from the issuer's JWKS (discovered through `{iss}/.well-known/openid-configuration`), cached, and
//! refreshed when a token names an unknown `kid`, at most once per [`JwksCache::min_refresh`] so a flood of
//! made-up kids cannot make us hammer the issuer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Deserializer};
use thiserror::Error;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::hygiene::{self, HygieneError, InsecureUrl};
use crate::subject::{Subject, SubjectError};

/// GitHub's OIDC issuer, the default `iss`.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: u64 = 60;

/// Why a token was not accepted. Every variant is a 401.
#[derive(Debug, Error)]
pub enum AuthError {
    /// No `Authorization: Bearer <token>` header.
    #[error("missing bearer token: send `Authorization: Bearer <GitHub OIDC token>`")]
    MissingToken,
    /// Not three base64url segments, or a header that is not JSON.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header's `alg` is not RS256 (`none`, HS256, ...); shown only when it looks like an algorithm name.
    #[error("token algorithm {0:?} is not allowed: RS256 only")]
    Algorithm(String),
    /// The token or its header breaks a limit (size, `crit`, `kid`, lifetime, audience list, `jti`).
    #[error(transparent)]
    Hygiene(#[from] HygieneError),
    /// The subject is not GitHub's or disagrees with the other claims.
    #[error(transparent)]
    Subject(#[from] SubjectError),
    /// The header names no `kid`.
    #[error("token header has no `kid`")]
    MissingKid,
    /// The issuer's JWKS has no such key, even after a refresh (the `kid` is not repeated: it is the caller's).
    #[error("unknown signing key (the token's `kid` is not in the issuer's JWKS)")]
    UnknownKid,
    /// The signature does not verify with the issuer's key.
    #[error("bad token signature")]
    Signature,
    /// `exp` has passed (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not valid yet (nbf)")]
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    #[error("token issued in the future (iat)")]
    IssuedInFuture,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer: expected {expected}")]
    Issuer {
        /// The configured issuer.
        expected: String,
    },
    /// `aud` does not contain the configured audience.
    #[error("wrong audience: expected {expected}")]
    Audience {
        /// The configured audience.
        expected: String,
    },
    /// A claim is missing or malformed (`sub`, `repository`, `run_id`, ...).
    #[error("bad claims: {0}")]
    Claims(String),
}

/// The issuer's keys could not be had (a 503: our problem or the issuer's, not the caller's).
#[derive(Debug, Error)]
pub enum JwksError {
    /// An HTTP request to the issuer failed.
    #[error("fetching {url}: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The issuer answered with a non-success status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The issuer or the discovery document's `jwks_uri` is not https (or a loopback issuer in the local world).
    #[error(transparent)]
    Insecure(#[from] InsecureUrl),
    /// The discovery document or the JWKS is not what OIDC says it is.
    #[error("{url}: {reason}")]
    Invalid {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// A verification failed: the token, or the keys.
#[derive(Debug, Error)]
pub enum VerifyError {
    /// The token is not acceptable (401).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The issuer's keys are unavailable (503).
    #[error(transparent)]
    Jwks(#[from] JwksError),
}

use opsplane_shared::future::BoxFuture;

/// Where the issuer's keys come from.
pub trait KeySource: Send + Sync {
    /// The issuer's current JWKS.
    fn fetch(&self) -> BoxFuture<'_, Result<JwkSet, JwksError>>;
}

/// The issuer's JWKS over HTTPS, found through OIDC discovery (`{iss}/.well-known/openid-configuration` →
/// `jwks_uri`; GitHub's is `{iss}/.well-known/jwks`).
#[derive(Debug, Clone)]
pub struct HttpKeySource {
    client: reqwest::Client,
    issuer: String,
    allow_loopback: bool,
}

impl HttpKeySource {
    /// A source for `issuer` (no trailing slash), which must be https, with short timeouts: a caller waits on
    /// it.
    pub fn new(issuer: impl Into<String>) -> Result<Self, JwksError> {
        Self::build(issuer.into(), false)
    }

    /// A source for the local world's issuer: https, or plain http on a loopback address (the end-to-end tests
    /// and the local plane serve their discovery document and JWKS on 127.0.0.1).
    pub fn local(issuer: impl Into<String>) -> Result<Self, JwksError> {
        Self::build(issuer.into(), true)
    }

    fn build(issuer: String, allow_loopback: bool) -> Result<Self, JwksError> {
        let issuer = issuer.trim_end_matches('/').to_owned();
        hygiene::check_fetch_url("issuer", &issuer, allow_loopback)?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            // A redirect could lead off https; the issuer's documents are served where discovery says.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| JwksError::Http {
                url: issuer.clone(),
                source,
            })?;
        Ok(Self {
            client,
            issuer,
            allow_loopback,
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, JwksError> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|source| JwksError::Http {
                url: url.to_owned(),
                source,
            })?;
        if !response.status().is_success() {
            return Err(JwksError::Status {
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        let body = response.bytes().await.map_err(|source| JwksError::Http {
            url: url.to_owned(),
            source,
        })?;
        serde_json::from_slice(&body).map_err(|e| JwksError::Invalid {
            url: url.to_owned(),
            reason: e.to_string(),
        })
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl KeySource for HttpKeySource {
    fn fetch(&self) -> BoxFuture<'_, Result<JwkSet, JwksError>> {
        Box::pin(async move {
            let url = format!("{}/.well-known/openid-configuration", self.issuer);
            let discovery: Discovery = self.get_json(&url).await?;
            // OIDC discovery: the document must name the issuer it was fetched from.
            if discovery.issuer.trim_end_matches('/') != self.issuer {
                return Err(JwksError::Invalid {
                    url,
                    reason: format!(
                        "names issuer \"{}\", not \"{}\"",
                        discovery.issuer, self.issuer
                    ),
                });
            }
            hygiene::check_fetch_url("jwks_uri", &discovery.jwks_uri, self.allow_loopback)?;
            let set: JwkSet = self.get_json(&discovery.jwks_uri).await?;
            tracing::info!(
                jwks_uri = discovery.jwks_uri,
                keys = set.keys.len(),
                "JWKS fetched"
            );
            Ok(set)
        })
    }
}

struct CacheState {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    /// Whether the one early refresh of the current interval was spent.
    early_spent: bool,
}

/// The issuer's signing keys by `kid`, refreshed on an unknown `kid` or when older than `max_age`, at most
/// once per `min_refresh`, plus one early refresh per interval for a `kid` the last fetch did not have: an
/// issuer that rotates its key right after our fetch is then followed at once, and a flood of made-up kids
/// still costs at most two fetches per interval.
pub struct JwksCache {
    source: Arc<dyn KeySource>,
    state: Mutex<CacheState>,
    min_refresh: Duration,
    max_age: Duration,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("min_refresh", &self.min_refresh)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

/// The RS256 signing keys of a JWKS by `kid`; keys for other algorithms or for encryption are left out.
pub fn signing_keys(set: &JwkSet) -> HashMap<String, DecodingKey> {
    set.keys
        .iter()
        .filter(|k| matches!(k.algorithm, AlgorithmParameters::RSA(_)))
        .filter(|k| !matches!(&k.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature))
        .filter(|k| {
            k.common
                .key_algorithm
                .is_none_or(|a| a == jsonwebtoken::jwk::KeyAlgorithm::RS256)
        })
        .filter_map(|k| {
            let kid = k.common.key_id.clone()?;
            DecodingKey::from_jwk(k).ok().map(|key| (kid, key))
        })
        .collect()
}

impl JwksCache {
    /// A cache over `source`: at most one fetch per minute, keys kept for an hour.
    pub fn new(source: Arc<dyn KeySource>) -> Self {
        Self::with_intervals(source, Duration::from_secs(60), Duration::from_secs(3600))
    }

    /// A cache with its own refresh limits.
    pub fn with_intervals(
        source: Arc<dyn KeySource>,
        min_refresh: Duration,
        max_age: Duration,
    ) -> Self {
        Self {
            source,
            state: Mutex::new(CacheState {
                keys: HashMap::new(),
                fetched_at: None,
                last_attempt: None,
                early_spent: false,
            }),
            min_refresh,
            max_age,
        }
    }

    /// The shortest time between two fetches.
    pub fn min_refresh(&self) -> Duration {
        self.min_refresh
    }

    /// The key named `kid`.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, VerifyError> {
        let mut state = self.state.lock().await;
        let fresh = state.fetched_at.is_some_and(|t| t.elapsed() < self.max_age);
        if fresh && let Some(key) = state.keys.get(kid) {
            return Ok(key.clone());
        }
        let scheduled = state
            .last_attempt
            .is_none_or(|t| t.elapsed() >= self.min_refresh);
        // Inside the interval, a kid the last successful fetch lacked earns one early refresh: a key rotated
        // seconds after our fetch would otherwise be refused for up to `min_refresh`.
        let early = !scheduled && !state.early_spent && state.fetched_at.is_some();
        if scheduled || early {
            state.early_spent = early;
            state.last_attempt = Some(Instant::now());
            match self.source.fetch().await {
                Ok(set) => {
                    state.keys = signing_keys(&set);
                    state.fetched_at = Some(Instant::now());
                }
                // Keys we already hold stay usable while the issuer is unreachable.
                Err(err) if !state.keys.is_empty() => {
                    tracing::warn!(error = %err, "JWKS refresh failed; keeping the cached keys");
                }
                Err(err) => return Err(err.into()),
            }
        } else {
            tracing::debug!("JWKS refresh skipped: rate-limited");
        }
        state
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| AuthError::UnknownKid.into())
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or a number, not {other}"
        ))),
    }
}

fn opt_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a string or a number, not {}",
            match other {
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Array(_) => "a list",
                _ => "an object",
            }
        ))),
    }
}

/// The claims of a GitHub Actions OIDC token that opsplane reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GithubClaims {
    /// `repo:OWNER/REPO:environment:NAME`, `repo:OWNER/REPO:pull_request`, `repo:OWNER/REPO:ref:...`, or the
    /// immutable form `repo:OWNER@OWNER_ID/REPO@REPO_ID:...` ([`Subject`]).
    pub sub: String,
    /// `OWNER/REPO`.
    pub repository: String,
    /// The repository's immutable numeric id (GitHub sends a string).
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub repository_id: Option<String>,
    /// The owner's immutable numeric id (GitHub sends a string).
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub repository_owner_id: Option<String>,
    /// The token's unique id: one use per token.
    #[serde(default)]
    pub jti: Option<String>,
    /// The GitHub environment of the job, if it has one.
    #[serde(default)]
    pub environment: Option<String>,
    /// The git ref, e.g. `refs/heads/main`.
    #[serde(rename = "ref", default)]
    pub git_ref: Option<String>,
    /// The workflow file and ref: `OWNER/REPO/.github/workflows/deploy.yml@refs/heads/main`.
    #[serde(default)]
    pub workflow_ref: Option<String>,
    /// The reusable workflow running the job, if any (same form as `workflow_ref`).
    #[serde(default)]
    pub job_workflow_ref: Option<String>,
    /// Who started the run.
    #[serde(default)]
    pub actor: Option<String>,
    /// The commit.
    #[serde(default)]
    pub sha: Option<String>,
    /// The workflow run's id (GitHub sends a string).
    #[serde(deserialize_with = "string_or_number")]
    pub run_id: String,
    /// The run's attempt, from 1.
    #[serde(deserialize_with = "string_or_number")]
    pub run_attempt: String,
    /// The triggering event, e.g. `push`, `workflow_dispatch`, `pull_request`.
    #[serde(default)]
    pub event_name: Option<String>,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    #[serde(default)]
    pub exp: i64,
    /// The audience, as sent (a string, or a list).
    #[serde(default)]
    pub aud: serde_json::Value,
}

impl GithubClaims {
    /// The workflow the policy matches: the reusable workflow when there is one, else the run's workflow.
    pub fn workflow(&self) -> Option<&str> {
        self.job_workflow_ref
            .as_deref()
            .or(self.workflow_ref.as_deref())
    }

    /// Whether the job may run code nobody with write access reviewed, so that it may never act on a
    /// protected environment: a pull request (its subject or its event), a `workflow_run` (it runs with the
    /// base repository's rights after a workflow a pull request could have started), or a token that does
    /// not say which event started it.
    pub fn untrusted_event(&self) -> bool {
        self.sub.ends_with(":pull_request")
            || match self.event_name.as_deref() {
                None | Some("") => true,
                Some(e) => e.starts_with("pull_request") || e == "workflow_run",
            }
    }

    /// The token's `jti`, checked to be usable as a key (verified tokens always pass).
    pub fn token_id(&self) -> &str {
        self.jti.as_deref().unwrap_or_default()
    }

    fn check(&self) -> Result<(), AuthError> {
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(&self.run_id) {
            return Err(AuthError::Claims("run_id must be digits".into()));
        }
        if !digits(&self.run_attempt) {
            return Err(AuthError::Claims("run_attempt must be digits".into()));
        }
        if self.repository.split('/').count() != 2 {
            return Err(AuthError::Claims("repository must be OWNER/REPO".into()));
        }
        for (name, id) in [
            ("repository_id", &self.repository_id),
            ("repository_owner_id", &self.repository_owner_id),
        ] {
            if id.as_deref().is_some_and(|i| !digits(i)) {
                return Err(AuthError::Claims(format!("{name} must be digits")));
            }
        }
        hygiene::check_jti(self.jti.as_deref())?;
        Subject::parse(&self.sub)?.check(
            &self.repository,
            self.repository_id.as_deref(),
            self.repository_owner_id.as_deref(),
            self.environment.as_deref(),
        )?;
        Ok(())
    }
}

/// Verifies GitHub OIDC tokens for one issuer and audience.
#[derive(Debug)]
pub struct Verifier {
    issuer: String,
    audience: String,
    keys: JwksCache,
    max_lifetime: i64,
    allow_audience_lists: bool,
}

/// The `alg` of a token's header, read without trusting anything else in it.
pub fn header_alg(token: &str) -> Result<(String, Option<String>), AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed(
            "a JWT has three dot-separated parts".into(),
        ));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed("header is not base64url".into()))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Malformed("header is not JSON".into()))?;
    hygiene::check_header(&value)?;
    let alg = value
        .get("alg")
        .and_then(|a| a.as_str())
        .ok_or_else(|| AuthError::Malformed("header has no `alg`".into()))?
        .to_owned();
    let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
    Ok((alg, kid))
}

impl Verifier {
    /// A verifier accepting tokens from `issuer` for `audience`, with keys from `keys`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, keys: JwksCache) -> Self {
        Self {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            audience: audience.into(),
            keys,
            max_lifetime: hygiene::DEFAULT_MAX_LIFETIME_SECONDS,
            allow_audience_lists: false,
        }
    }

    /// The same verifier refusing tokens whose `exp - iat` is above `seconds`.
    pub fn with_max_lifetime(mut self, seconds: i64) -> Self {
        self.max_lifetime = seconds;
        self
    }

    /// The same verifier accepting an `aud` list that contains the audience (refused by default: GitHub
    /// sends one audience, and a list is how a token meant for another relying party is reused).
    pub fn with_audience_lists(mut self, allow: bool) -> Self {
        self.allow_audience_lists = allow;
        self
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Verifies `token` and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<GithubClaims, VerifyError> {
        hygiene::check_token_size(token).map_err(AuthError::from)?;
        let (alg, kid) = header_alg(token)?;
        // Before any key lookup: RS256 only, whatever else the header says.
        if alg != "RS256" {
            return Err(AuthError::Algorithm(hygiene::shown_alg(&alg)).into());
        }
        let kid = kid.ok_or(AuthError::MissingKid)?;
        let key = self.keys.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<GithubClaims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => AuthError::Signature,
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidIssuer => AuthError::Issuer {
                    expected: self.issuer.clone(),
                },
                ErrorKind::InvalidAudience => AuthError::Audience {
                    expected: self.audience.clone(),
                },
                ErrorKind::InvalidAlgorithm => AuthError::Algorithm(hygiene::shown_alg(&alg)),
                ErrorKind::MissingRequiredClaim(c) => {
                    AuthError::Claims(format!("`{c}` is required"))
                }
                ErrorKind::Json(err) => AuthError::Claims(err.to_string()),
                _ => AuthError::Malformed(e.to_string()),
            }
        })?;
        let claims = data.claims;
        let now = chrono::Utc::now().timestamp();
        if claims.iat > now + LEEWAY_SECONDS as i64 {
            return Err(AuthError::IssuedInFuture.into());
        }
        hygiene::check_lifetime(claims.iat, claims.exp, self.max_lifetime)
            .map_err(AuthError::from)?;
        hygiene::check_audience_shape(&claims.aud, self.allow_audience_lists)
            .map_err(AuthError::from)?;
        claims.check()?;
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn the_header_alg_is_read_before_anything_else() {
        let none = format!(
            "{}.{}.",
            b64(&serde_json::json!({"alg": "none"})),
            b64(&serde_json::json!({}))
        );
        assert_eq!(header_alg(&none).unwrap().0, "none");
        assert!(matches!(header_alg("a.b"), Err(AuthError::Malformed(_))));
        assert!(matches!(header_alg("!!.b.c"), Err(AuthError::Malformed(_))));
    }

    struct Counting {
        calls: AtomicUsize,
        set: JwkSet,
    }

    impl KeySource for Counting {
        fn fetch(&self) -> BoxFuture<'_, Result<JwkSet, JwksError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let set = self.set.clone();
            Box::pin(async move { Ok(set) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_unknown_kids_fetches_once_per_interval() {
        let source = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            set: JwkSet { keys: vec![] },
        });
        let cache = JwksCache::with_intervals(
            source.clone(),
            Duration::from_secs(60),
            Duration::from_secs(3600),
        );
        for i in 0..100 {
            let err = cache.key(&format!("made-up-{i}")).await.unwrap_err();
            assert!(matches!(err, VerifyError::Auth(AuthError::UnknownKid)));
        }
        // The scheduled fetch, and the one early refresh a kid the last fetch lacked earns.
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_secs(61)).await;
        let _ = cache.key("another").await;
        assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn pull_requests_workflow_runs_and_unknown_events_are_untrusted() {
        let mut c = GithubClaims {
            sub: "repo:acme/infra:pull_request".into(),
            repository: "acme/infra".into(),
            repository_id: Some("2".into()),
            repository_owner_id: Some("1".into()),
            jti: Some("j".into()),
            exp: 0,
            aud: serde_json::Value::Null,
            environment: None,
            git_ref: None,
            workflow_ref: None,
            job_workflow_ref: None,
            actor: None,
            sha: None,
            run_id: "1".into(),
            run_attempt: "1".into(),
            event_name: Some("push".into()),
            iat: 0,
        };
        assert!(c.untrusted_event());
        c.sub = "repo:acme/infra:environment:prod".into();
        assert!(!c.untrusted_event());
        c.event_name = Some("pull_request_target".into());
        assert!(c.untrusted_event());
        c.event_name = Some("workflow_run".into());
        assert!(c.untrusted_event());
        c.event_name = None;
        assert!(c.untrusted_event());
        c.run_id = "12a".into();
        assert!(c.check().is_err());
    }
}
