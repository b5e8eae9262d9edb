//! Function benchmark: for every crate under `functions/`, the release binary's size, its cold start (process
//! start to its first `GET /2018-06-01/runtime/invocation/next`) against a local Lambda Runtime API emulator,
//! its handler latency for a cheap action against moto (one invocation through the emulator), and the
//! process's peak RSS (`VmHWM`).
//!
//! Run: `bash scripts/bench.sh` (builds every function natively in release first; `make bench` runs it).
//! `OPSPLANE_BENCH_STARTS` sets the cold starts per function (default 20), `OPSPLANE_BENCH_INVOCATIONS` the
//! timed invocations (default 200). Figures go to docs/BENCHMARKS.md (## Functions).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opsplane_local::LocalPlane;
use opsplane_local::MotoServer;
use opsplane_shared::Config;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};

/// A function crate: its package and the binary Lambda runs.
#[derive(Debug, Clone)]
struct Function {
    package: String,
    binary: String,
}

/// Every crate under `functions/`, read from its manifest: the package name and its `[[bin]]` name.
fn discover(root: &Path) -> Vec<Function> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("functions"))
        .expect("functions/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("manifest");
        let mut package = None;
        let mut binary = None;
        let mut section = String::new();
        for line in manifest.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_owned();
                continue;
            }
            let Some(value) = line
                .strip_prefix("name")
                .map(str::trim_start)
                .and_then(|l| l.strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_owned())
            else {
                continue;
            };
            match section.as_str() {
                "[package]" if package.is_none() => package = Some(value),
                "[[bin]]" if binary.is_none() => binary = Some(value),
                _ => {}
            }
        }
        let package = package.expect("a [package] name");
        out.push(Function {
            binary: binary.unwrap_or_else(|| package.clone()),
            package,
        });
    }
    out
}

/// What the emulator saw.
enum Seen {
    /// A `GET .../invocation/next`, when it arrived.
    Next(Instant),
    /// A response or error for an invocation, when it arrived.
    Done { at: Instant, ok: bool, body: Value },
    /// `POST /runtime/init/error`.
    InitError(String),
}

/// The Lambda Runtime API, as much of it as a function uses: the long-polled `next`, `response`, `error`
/// and `init/error`. Events are handed out in the order they are queued.
struct Emulator {
    address: String,
    events: mpsc::UnboundedSender<Value>,
    seen: mpsc::UnboundedReceiver<Seen>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Emulator {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().unwrap().to_string();
        let (events, events_rx) = mpsc::unbounded_channel::<Value>();
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let events_rx = Arc::new(Mutex::new(events_rx));
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, events_rx.clone(), seen_tx.clone()));
            }
        });
        Self {
            address,
            events,
            seen,
            accept,
        }
    }

    /// Waits for the next `next` request.
    async fn next_request(&mut self) -> Instant {
        match self.seen.recv().await.expect("emulator running") {
            Seen::Next(at) => at,
            Seen::InitError(body) => panic!("the function failed to start: {body}"),
            Seen::Done { .. } => panic!("a response without an invocation"),
        }
    }

    /// Hands out `event`, waits for its answer; returns the latency, whether it succeeded, and the body.
    async fn invoke(&mut self, event: Value) -> (Duration, bool, Value) {
        let sent = Instant::now();
        self.events.send(event).expect("emulator running");
        loop {
            match self.seen.recv().await.expect("emulator running") {
                Seen::Next(_) => continue,
                Seen::Done { at, ok, body } => return (at - sent, ok, body),
                Seen::InitError(body) => panic!("init error: {body}"),
            }
        }
    }
}

async fn serve(
    stream: TcpStream,
    events: Arc<Mutex<mpsc::UnboundedReceiver<Value>>>,
    seen: mpsc::UnboundedSender<Seen>,
) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut serial = 0u64;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut length = 0usize;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let body = if chunked {
            read_chunked(&mut reader).await
        } else {
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).await.is_err() {
                return;
            }
            body
        };
        let response = if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let _ = seen.send(Seen::Next(Instant::now()));
            let Some(event) = events.lock().await.recv().await else {
                return;
            };
            serial += 1;
            let payload = event.to_string();
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 60_000;
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: bench-{serial}-{}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\
                 Content-Length: {}\r\n\r\n{payload}",
                fastrand::u64(..),
                payload.len()
            )
        } else {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let at = Instant::now();
            if path.ends_with("/response") {
                let _ = seen.send(Seen::Done { at, ok: true, body });
            } else if path.ends_with("/init/error") {
                let _ = seen.send(Seen::InitError(body.to_string()));
            } else if path.ends_with("/error") {
                let _ = seen.send(Seen::Done {
                    at,
                    ok: false,
                    body,
                });
            }
            "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}"
                .to_owned()
        };
        if write.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn read_chunked<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        if reader.read_line(&mut size).await.unwrap_or(0) == 0 {
            return body;
        }
        let n =
            usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        let mut chunk = vec![0; n + 2];
        if reader.read_exact(&mut chunk).await.is_err() {
            return body;
        }
        if n == 0 {
            return body;
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

/// The next event of a timed sequence, from the previous answer.
type NextEvent = Box<dyn FnMut(Option<&Value>) -> Value>;

/// The cheap action each function is timed with, as a sequence of events (each may depend on the previous
/// answer). A function without an entry here is timed on input it refuses (no AWS call).
fn cheap_events(binary: &str, env: &str) -> (&'static str, NextEvent) {
    match binary {
        "lock" => {
            let env = env.to_owned();
            let mut n = 0u64;
            (
                "acquire, then release (1 DynamoDB UpdateItem each)",
                Box::new(
                    move |last: Option<&Value>| match last.and_then(|l| l.get("token")) {
                        Some(token) => json!({"action": "release", "environment": env,
                        "holder": format!("arn:aws:states:us-east-1:123456789012:execution:bench:run-{n}"),
                        "token": token}),
                        None => {
                            n += 1;
                            json!({"action": "acquire", "environment": env,
                            "holder": format!("arn:aws:states:us-east-1:123456789012:execution:bench:run-{n}"),
                            "operation": "bench", "lease_seconds": 60})
                        }
                    },
                ),
            )
        }
        "backup" => {
            let env = env.to_owned();
            (
                "validate-backup (1 S3 GetObject of the spec)",
                Box::new(move |_| {
                    json!({"action": "validate-backup", "input": {"environment": env},
                        "execution": "arn:aws:states:us-east-1:123456789012:execution:backup:bench"})
                }),
            )
        }
        _ => (
            "refused input (no AWS call)",
            Box::new(|_| json!({"action": "bench-no-such-action"})),
        ),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn spawn(binary: &Path, emulator: &Emulator, config: &Config) -> tokio::process::Child {
    tokio::process::Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &emulator.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", &config.region)
        .env("OPSPLANE_TABLE", &config.table_name)
        .env("OPSPLANE_BUCKET", &config.bucket_name)
        .env(
            "AWS_ENDPOINT_URL",
            config.endpoint_url.as_deref().unwrap_or_default(),
        )
        // The dispatch function's required settings (the template sets them); the others ignore them.
        .env(
            "OPSPLANE_OIDC_AUDIENCE",
            "opsplane:123456789012:us-east-1:bench",
        )
        .env(
            "OPSPLANE_STATE_MACHINE_PREFIX",
            "arn:aws:states:us-east-1:123456789012:stateMachine:opsplane-",
        )
        .env(
            "OPSPLANE_DISPATCH_POLICY",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/oidc/bench-policy.yaml"
            ),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()))
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let starts = env_usize("OPSPLANE_BENCH_STARTS", 20).max(1);
    let invocations = env_usize("OPSPLANE_BENCH_INVOCATIONS", 200).max(1);
    let functions = discover(&root);

    let moto = MotoServer::start(&root).unwrap_or_else(|e| panic!("{e}"));
    let config = Config::local(moto.endpoint(), "bench-table", "bench-bucket");
    let (plane, _) = LocalPlane::connect(config.clone())
        .await
        .expect("local plane over moto");
    let env = "bench";
    let spec = std::fs::read_to_string(root.join("tests/fixtures/specs/retention.yaml"))
        .expect("fixture")
        .replace("{env}", env);
    plane.seed_environment(&spec).await.expect("seed");

    println!(
        "| function | arm64 binary (MiB, stripped) | x86_64 binary (MiB) | cold start ms: median / p90 / max ({starts} starts) | first invocation ms | timed action | handler latency ms: median / p99 ({invocations} invocations) | peak RSS MiB |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|");
    for f in &functions {
        let native = target.join("release").join(&f.binary);
        let native_size = std::fs::metadata(&native)
            .unwrap_or_else(|_| {
                panic!(
                    "{} is missing: `bash scripts/bench.sh` builds every function first",
                    native.display()
                )
            })
            .len();
        let arm64 = std::fs::metadata(target.join("lambda").join(&f.binary).join("bootstrap"))
            .map(|m| mib(m.len()))
            .unwrap_or_else(|_| "not built (`make build-lambdas`)".to_owned());

        // Cold starts: process start to its first request for an event.
        let mut cold = Vec::with_capacity(starts);
        for _ in 0..starts {
            let mut emulator = Emulator::start().await;
            let started = Instant::now();
            let mut child = spawn(&native, &emulator, &config);
            let first_next = emulator.next_request().await;
            cold.push(first_next - started);
            let _ = child.kill().await;
        }
        cold.sort();

        // Handler latency: one process, events one after another, as a warm Lambda sees them.
        let (action, mut next_event) = cheap_events(&f.binary, env);
        let mut emulator = Emulator::start().await;
        let mut child = spawn(&native, &emulator, &config);
        emulator.next_request().await;
        let mut last: Option<Value> = None;
        let mut latencies = Vec::with_capacity(invocations);
        let mut first = None;
        let refused = action.starts_with("refused");
        for i in 0..invocations + 10 {
            let event = next_event(last.as_ref());
            let (took, ok, body) = emulator.invoke(event).await;
            assert!(ok != refused, "{}: unexpected answer {body}", f.package);
            if i == 0 {
                first = Some(took);
            }
            // The first ten warm up connections and caches.
            if i >= 10 {
                latencies.push(took);
            }
            last = Some(body);
        }
        latencies.sort();
        let rss = child.id().and_then(peak_rss_kib);
        let _ = child.kill().await;
        println!(
            "| {} | {arm64} | {} | {:.1} / {:.1} / {:.1} | {:.1} | {action} | {:.2} / {:.2} | {} |",
            f.package,
            mib(native_size),
            percentile(&cold, 0.5),
            percentile(&cold, 0.9),
            percentile(&cold, 1.0),
            first.unwrap().as_secs_f64() * 1000.0,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            rss.map(|k| format!("{:.1}", k as f64 / 1024.0))
                .unwrap_or_else(|| "n/a".to_owned()),
        );
    }
}
