//! The local world's model of AWS, seen from Rust: which plane asks, at what virtual time, and the model's
//! settings.
//!
//! The model itself runs in front of moto (`local/world/opsplane_world`, installed by the launcher; see
//! `docs/LOCAL-WORLD.md`): it times operations on the caller's virtual clock, walks resources through AWS's
//! statuses, refuses what AWS refuses, counts quotas and throttles. Every SDK client of a plane carries
//! [`WorldClock`], which names the plane's world and the virtual time of each request: the execution's clock
//! inside a handler ([`acting`], which also names the template role the handler acts with), the engine's
//! latest time outside one ([`Engine::now`]).

use std::future::Future;
use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use chrono::{DateTime, Utc};
use opsplane_shared::aws::rds::Network;
use opsplane_shared::future::BoxFuture;
use opsplane_shared::probe::Reachability;
use opsplane_statemachines::Engine;
use serde_json::{Value, json};
use thiserror::Error;

/// The header naming the world (the plane) a request comes from.
pub const WORLD_HEADER: &str = "x-opsplane-world";
/// The header carrying the request's virtual time, in milliseconds since the Unix epoch.
pub const TIME_HEADER: &str = "x-opsplane-time";
/// The header naming the template role a request acts with (`function:<name>`, `workflow:<name>`).
pub const ROLE_HEADER: &str = "x-opsplane-role";

/// Who makes the AWS calls of the current task, and when.
#[derive(Debug, Clone)]
struct Caller {
    now: DateTime<Utc>,
    role: Option<Arc<str>>,
}

tokio::task_local! {
    static CALLER: Caller;
}

/// The virtual time of the task's caller: a handler's (inside [`acting`] or [`at`]), else `engine`'s latest.
pub(crate) fn virtual_now(engine: &Engine) -> DateTime<Utc> {
    CALLER.try_with(|c| c.now).unwrap_or_else(|_| engine.now())
}

/// Runs `f` with every AWS call it makes timed at `now`, as the operator (no template role: seeding).
pub async fn at<F: Future>(now: DateTime<Utc>, f: F) -> F::Output {
    CALLER.scope(Caller { now, role: None }, f).await
}

/// Runs `f` with every AWS call it makes timed at `now` and acting with `role`'s template policies
/// (`function:backup`, `workflow:dr-drill`): what a function or a state machine does on AWS.
pub async fn acting<F: Future>(now: DateTime<Utc>, role: String, f: F) -> F::Output {
    let caller = Caller {
        now,
        role: Some(role.into()),
    };
    CALLER.scope(caller, f).await
}

/// The interceptor every client of a plane carries: names the world and the virtual time of each request.
#[derive(Debug, Clone)]
pub struct WorldClock {
    world: Arc<str>,
    engine: Engine,
}

impl WorldClock {
    /// The clock of world `world`, outside handlers at `engine`'s latest time.
    pub fn new(world: &str, engine: Engine) -> Self {
        Self {
            world: world.into(),
            engine,
        }
    }
}

/// Which attempt of an operation is being sent (0: the first).
#[derive(Debug, Clone, Copy)]
struct Attempt(u32);

impl Storable for Attempt {
    type Storer = StoreReplace<Self>;
}

impl Intercept for WorldClock {
    fn name(&self) -> &'static str {
        "OpsplaneWorldClock"
    }

    // Before transmit, so every attempt of a retried call carries it and SigV4 (which signs named
    // headers only) is unaffected.
    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // A retried attempt (the SDK backs off after a throttle or a 5xx) is timed one virtual second
        // after the attempt before it, the order of the SDK's standard back-off (up to 1 s, then 2 s): a
        // call cannot pass a throttle at the very instant it was refused, in the world as on AWS. Counted
        // in the operation's config bag, so the world's timing stays deterministic.
        let attempt = cfg.load::<Attempt>().map_or(0, |a| a.0 + 1);
        cfg.interceptor_state().store_put(Attempt(attempt));
        let now = virtual_now(&self.engine) + chrono::Duration::seconds(i64::from(attempt));
        let role = CALLER.try_with(|c| c.role.clone()).ok().flatten();
        let headers = context.request_mut().headers_mut();
        headers.insert(WORLD_HEADER, self.world.to_string());
        headers.insert(TIME_HEADER, now.timestamp_millis().to_string());
        if let Some(role) = role {
            headers.insert(ROLE_HEADER, role.to_string());
        }
        Ok(())
    }
}

/// The [`Clock`](opsplane_shared::clock::Clock) a function reads in the local world: the virtual time of
/// the task it runs in (outside a task, the engine's latest), the same time its AWS calls carry and its
/// execution's history shows.
#[derive(Debug, Clone)]
pub struct VirtualClock(Engine);

impl VirtualClock {
    /// The virtual clock of `engine`'s tasks.
    pub fn new(engine: Engine) -> Self {
        Self(engine)
    }
}

impl opsplane_shared::clock::Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        virtual_now(&self.0)
    }
}

/// The world's settings could not be read or changed.
#[derive(Debug, Error)]
pub enum WorldError {
    /// The model did not answer.
    #[error("the local world's model at {endpoint} did not answer")]
    Unreachable {
        /// moto's endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The model refused the settings.
    #[error("the local world's model refused the settings: {0}")]
    Refused(String),
}

/// One plane's world in the model: its id and its settings (durations, quotas, throttles, injected faults,
/// the default VPC), which tests override.
#[derive(Debug, Clone)]
pub struct World {
    id: String,
    endpoint: String,
    http: reqwest::Client,
}

impl World {
    /// A new world on the model at `endpoint` (moto's), with AWS's defaults.
    pub fn new(endpoint: &str) -> Self {
        Self {
            id: format!("plane-{}", uuid::Uuid::new_v4()),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// The world's id, sent as [`WORLD_HEADER`].
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Lays `settings` over the world's (key by key; see `settings.py` for the table) and returns them all.
    pub async fn configure(&self, settings: &Value) -> Result<Value, WorldError> {
        self.request("", Some(settings)).await
    }

    /// Every operation takes no time: the instant world, for tests that say so in their name.
    pub async fn instant(&self) -> Result<Value, WorldError> {
        self.configure(&json!({ "instant": true })).await
    }

    /// What the model has refused, throttled and injected in this world so far, by name
    /// (`refused.snapshot_quota`, `throttled.rds`, `injected.5xx.dynamodb`, ...).
    pub async fn counters(&self) -> Result<Value, WorldError> {
        Ok(self.request("", None).await?["counters"].take())
    }

    /// Per service, the requests this world served since its meters were last reset, on the virtual
    /// clock: `{"rds": {"requests", "peak_second", "peak_minute_rate", "first_second", "last_second"}}`.
    pub async fn rates(&self) -> Result<Value, WorldError> {
        Ok(self.request("", None).await?["rates"].take())
    }

    /// Starts the request meters afresh (after seeding, before the run being measured).
    pub async fn reset_rates(&self) -> Result<(), WorldError> {
        self.configure(&serde_json::json!({"reset_meters": true}))
            .await
            .map(|_| ())
    }

    /// The world's settings in force.
    pub async fn settings(&self) -> Result<Value, WorldError> {
        Ok(self.request("", None).await?["settings"].take())
    }

    /// `environment`'s network in `region`: a DB subnet group and a security group admitting the plane's
    /// probe, in the world's operator VPC (made on first use). What its instances are created with.
    pub async fn network(&self, region: &str, environment: &str) -> Result<Network, WorldError> {
        let answer = self
            .request(&format!("network/{region}/{environment}"), Some(&json!({})))
            .await?;
        Ok(Network {
            subnet_group: answer["db_subnet_group"].as_str().map(str::to_owned),
            security_group_ids: strings(&answer["security_group_ids"]),
            ..Network::default()
        })
    }

    /// The cache subnet group and security groups of `environment`'s network in `region`: where its Redis
    /// replication groups go, admitting the plane's probe on Redis's port.
    pub async fn cache_network(
        &self,
        region: &str,
        environment: &str,
    ) -> Result<(Option<String>, Vec<String>), WorldError> {
        let answer = self
            .request(&format!("network/{region}/{environment}"), Some(&json!({})))
            .await?;
        Ok((
            answer["cache_subnet_group"].as_str().map(str::to_owned),
            strings(&answer["security_group_ids"]),
        ))
    }

    /// The subnets of `environment`'s network in `region` (the world's operator VPC's): where its EKS cluster
    /// and node groups go.
    pub async fn subnets(
        &self,
        region: &str,
        environment: &str,
    ) -> Result<Vec<String>, WorldError> {
        let answer = self
            .request(&format!("network/{region}/{environment}"), Some(&json!({})))
            .await?;
        Ok(strings(&answer["subnet_ids"]))
    }

    /// The account's EC2 launch template `name` in `region` for node groups, made with one version when
    /// absent; `new_version` adds one. Its id and latest version number.
    pub async fn launch_template(
        &self,
        region: &str,
        name: &str,
        new_version: bool,
    ) -> Result<(String, String), WorldError> {
        let path = format!("launch-template/{region}/{name}");
        let answer = if new_version {
            self.request(&path, Some(&json!({}))).await?
        } else {
            self.request(&path, None).await?
        };
        let text = |k: &str| answer[k].as_str().unwrap_or_default().to_owned();
        Ok((text("id"), text("latest_version")))
    }

    /// The account's KMS key `alias/<alias>` in `region`, made when the account has none of that alias: a key
    /// the platform team keeps, as a real account already holds it. Its ARN.
    pub async fn account_key(&self, region: &str, alias: &str) -> Result<String, WorldError> {
        let answer = self
            .request(&format!("kms-key/{region}/{alias}"), Some(&json!({})))
            .await?;
        Ok(answer["arn"].as_str().unwrap_or_default().to_owned())
    }

    /// A security group named after `name` in the world's operator VPC in `region` that admits nothing (the
    /// probe included): what an instance placed in the wrong group sits behind. Its id.
    pub async fn closed_security_group(
        &self,
        region: &str,
        name: &str,
    ) -> Result<String, WorldError> {
        let answer = self
            .request(&format!("closed-group/{region}/{name}"), Some(&json!({})))
            .await?;
        Ok(answer["security_group_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Whether the probe's network reaches `instance` in `region`; `Err` says why not.
    pub async fn reaches(
        &self,
        region: &str,
        instance: &str,
    ) -> Result<Result<(), String>, WorldError> {
        self.reach(&format!("reaches/{region}/{instance}")).await
    }

    /// Whether the probe's network reaches the replication group `group` in `region`; `Err` says why not.
    pub async fn reaches_cache(
        &self,
        region: &str,
        group: &str,
    ) -> Result<Result<(), String>, WorldError> {
        self.reach(&format!("reaches-cache/{region}/{group}")).await
    }

    async fn reach(&self, path: &str) -> Result<Result<(), String>, WorldError> {
        let answer = self.request(path, None).await?;
        let why = answer["why"].as_str().unwrap_or_default().to_owned();
        Ok(if answer["reachable"] == true {
            Ok(())
        } else {
            Err(why)
        })
    }

    /// One control request to the model: `path` under the world, POSTed with `body` or a GET without.
    async fn request(&self, path: &str, body: Option<&Value>) -> Result<Value, WorldError> {
        let url = format!("{}/_opsplane/world/{}/{path}", self.endpoint, self.id);
        let request = match body {
            Some(body) => self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(body.to_string()),
            None => self.http.get(&url),
        };
        let unreachable = |source| WorldError::Unreachable {
            endpoint: self.endpoint.clone(),
            source,
        };
        let answer = request.send().await.map_err(unreachable)?;
        let status = answer.status();
        let bytes = answer.bytes().await.map_err(unreachable)?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(WorldError::Refused(
                body["message"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        Ok(body)
    }
}

/// The plane's SQL probe in its world's network ([`Reachability`]): reaches an instance when the model says
/// its subnet group and security groups admit the probe.
#[derive(Debug, Clone)]
pub struct WorldNetwork {
    world: World,
    region: String,
}

impl WorldNetwork {
    /// The probe of `world` in `region`.
    pub fn new(world: World, region: &str) -> Self {
        Self {
            world,
            region: region.to_owned(),
        }
    }
}

impl Reachability for WorldNetwork {
    fn reaches<'a>(&'a self, instance: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.world
                .reaches(&self.region, instance)
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
        })
    }

    fn reaches_cache<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.world
                .reaches_cache(&self.region, group)
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
        })
    }
}

/// The strings of a JSON array (none when it is not one).
fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_str().map(str::to_owned))
        .collect()
}
