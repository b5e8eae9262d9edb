//! The `lock` Lambda's entry point: configuration and clients once, then one event at a time.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use opsplane_fn_lock::{LockDeps, handle};
use opsplane_shared::Config;
use opsplane_shared::aws::Clients;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    opsplane_shared::telemetry::init();
    let cfg = Config::from_env()?;
    let clients = Clients::load(&cfg).await;
    let deps = LockDeps::from_config(&cfg, &clients);
    run(service_fn(|event: LambdaEvent<Value>| {
        let deps = &deps;
        async move { handle(deps, event.payload).await }
    }))
    .await
}
