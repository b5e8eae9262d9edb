//! Lock benchmark against moto: requests per acquire and per release (counted by an SDK interceptor on
//! every attempt, retries included), then acquire/release throughput and p99 latency with 1 and 32
//! contenders, for each backend.
//!
//! Run: `cargo bench -p opsplane-e2e --bench locks`. Figures go to docs/BENCHMARKS.md (## Locks).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use opsplane_local::MotoServer;
use opsplane_shared::Config;
use opsplane_shared::aws::sfn::SfnExecutions;
use opsplane_shared::aws::{Clients, load_sdk_config};
use opsplane_shared::bootstrap::{BootstrapOptions, bootstrap_with};
use opsplane_shared::lock::{AcquireRequest, DynamoDbLock, Lock, LockError, S3Lock};
use opsplane_shared::state::StateStore;

/// Counts HTTP attempts of the client it is attached to.
#[derive(Debug, Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl Counter {
    fn take(&self) -> u64 {
        self.0.swap(0, Ordering::SeqCst)
    }
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

struct Counters {
    dynamodb: Counter,
    s3: Counter,
    sfn: Counter,
}

impl Counters {
    fn take(&self) -> (u64, u64, u64) {
        (self.dynamodb.take(), self.s3.take(), self.sfn.take())
    }
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    DynamoDb,
    S3,
}

fn ghost(name: &str) -> String {
    format!("arn:aws:states:us-east-1:123456789012:execution:bench:{name}")
}

fn request(env: &str, holder: &str) -> AcquireRequest {
    AcquireRequest {
        environment: env.into(),
        holder: holder.into(),
        operation: "bench".into(),
        lease: Duration::from_secs(300),
    }
}

fn p99(samples: &mut [Duration]) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    let idx = ((samples.len() as f64) * 0.99).ceil() as usize;
    samples[idx.saturating_sub(1).min(samples.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

struct Row {
    backend: Backend,
    contenders: usize,
    grants_per_s: f64,
    attempts_per_s: f64,
    acquire_p99: Duration,
    release_p99: Duration,
    held: u64,
}

/// `contenders` tasks loop for `dur` on one environment: acquire, and on success release at once.
async fn contend(
    lock: Arc<dyn Lock>,
    env: &str,
    contenders: usize,
    dur: Duration,
) -> (u64, u64, u64, Vec<Duration>, Vec<Duration>) {
    let deadline = Instant::now() + dur;
    let tasks = (0..contenders).map(|i| {
        let lock = lock.clone();
        let env = env.to_owned();
        tokio::spawn(async move {
            let holder = ghost(&format!("{env}-c{i}"));
            let (mut grants, mut attempts, mut held) = (0u64, 0u64, 0u64);
            let (mut acq, mut rel) = (Vec::new(), Vec::new());
            while Instant::now() < deadline {
                let t = Instant::now();
                let result = lock.acquire(&request(&env, &holder)).await;
                acq.push(t.elapsed());
                attempts += 1;
                match result {
                    Ok(grant) => {
                        grants += 1;
                        let t = Instant::now();
                        let out = lock
                            .release(&env, &holder, grant.token)
                            .await
                            .expect("release");
                        rel.push(t.elapsed());
                        assert!(out.released);
                    }
                    Err(LockError::Held { .. }) => held += 1,
                    Err(other) => panic!("{other}"),
                }
            }
            (grants, attempts, held, acq, rel)
        })
    });
    let (mut g, mut a, mut h, mut acq, mut rel) = (0, 0, 0, Vec::new(), Vec::new());
    for r in futures::future::join_all(tasks).await {
        let (grants, attempts, held, ac, re) = r.expect("task");
        g += grants;
        a += attempts;
        h += held;
        acq.extend(ac);
        rel.extend(re);
    }
    (g, a, h, acq, rel)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let moto = MotoServer::start(&root).unwrap_or_else(|e| panic!("{e}"));
    let config = Config::local(moto.endpoint(), "bench-locks", "bench-locks-state");
    let sdk = load_sdk_config(&config).await;
    let counters = Counters {
        dynamodb: Counter::default(),
        s3: Counter::default(),
        sfn: Counter::default(),
    };
    let mut clients = Clients::new(&sdk, &config);
    clients.dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(counters.dynamodb.clone())
            .build(),
    );
    clients.s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .interceptor(counters.s3.clone())
            .build(),
    );
    clients.sfn = aws_sdk_sfn::Client::from_conf(
        aws_sdk_sfn::config::Builder::from(&sdk)
            .interceptor(counters.sfn.clone())
            .build(),
    );
    // The local world's bootstrap: moto speaks plain HTTP and enforces the TLS-only policy.
    bootstrap_with(
        &clients.dynamodb,
        &clients.s3,
        &config.table_name,
        &config.bucket_name,
        &config.region,
        BootstrapOptions::local_world(),
    )
    .await
    .expect("bootstrap");

    let store = StateStore::from_config(&config, &clients);
    let executions = Arc::new(SfnExecutions::new(clients.sfn.clone()));
    let dur = Duration::from_secs(
        std::env::var("OPSPLANE_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    );

    println!("## requests per operation (DynamoDB + S3 + Step Functions)\n");
    println!(
        "| backend | first acquire | acquire (free) | re-acquire by holder | acquire refused (held) | renew | release |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for backend in [Backend::DynamoDb, Backend::S3] {
        let lock: Arc<dyn Lock> = match backend {
            Backend::DynamoDb => Arc::new(DynamoDbLock::new(store.clone(), executions.clone())),
            Backend::S3 => Arc::new(S3Lock::new(
                clients.s3.clone(),
                &config.bucket_name,
                store.clone(),
                executions.clone(),
            )),
        };
        let env = format!("count-{backend:?}").to_lowercase();
        let (a, b) = (ghost("a"), ghost("b"));
        let fmt = |(d, s, f): (u64, u64, u64)| format!("{} ({}+{}+{})", d + s + f, d, s, f);
        counters.take();
        let g = lock.acquire(&request(&env, &a)).await.unwrap();
        let first = fmt(counters.take());
        lock.release(&env, &a, g.token).await.unwrap();
        counters.take();
        let g = lock.acquire(&request(&env, &a)).await.unwrap();
        let free = fmt(counters.take());
        lock.acquire(&request(&env, &a)).await.unwrap();
        let again = fmt(counters.take());
        assert!(lock.acquire(&request(&env, &b)).await.is_err());
        let refused = fmt(counters.take());
        lock.renew(&env, &a, g.token, Duration::from_secs(300))
            .await
            .unwrap();
        let renew = fmt(counters.take());
        lock.release(&env, &a, g.token).await.unwrap();
        let release = fmt(counters.take());
        println!("| {backend:?} | {first} | {free} | {again} | {refused} | {renew} | {release} |");

        for contenders in [1usize, 32] {
            let env = format!("tp-{backend:?}-{contenders}").to_lowercase();
            let (grants, attempts, held, mut acq, mut rel) =
                contend(lock.clone(), &env, contenders, dur).await;
            let secs = dur.as_secs_f64();
            rows.push(Row {
                backend,
                contenders,
                grants_per_s: grants as f64 / secs,
                attempts_per_s: attempts as f64 / secs,
                acquire_p99: p99(&mut acq),
                release_p99: p99(&mut rel),
                held,
            });
        }
    }
    println!(
        "\n## throughput and latency ({}s per run, each grant released at once)\n",
        dur.as_secs()
    );
    println!(
        "| backend | contenders | grants/s (acquire+release) | acquire attempts/s | refused (LockHeld) | acquire p99 ms | release p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {:?} | {} | {:.0} | {:.0} | {} | {} | {} |",
            r.backend,
            r.contenders,
            r.grants_per_s,
            r.attempts_per_s,
            r.held,
            ms(r.acquire_p99),
            ms(r.release_p99)
        );
    }
    drop(moto);
}
