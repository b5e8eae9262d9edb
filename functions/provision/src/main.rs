//! The `provision` Lambda's entry point: configuration and clients once, then the runtime loop.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use opsplane_fn_provision::{Deps, handle};
use opsplane_shared::Config;
use opsplane_shared::aws::Clients;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    opsplane_shared::telemetry::init();
    let config = Config::from_env()?;
    let clients = Clients::load(&config).await;
    let deps = Deps::new(config, &clients);
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(deps, event.payload).await
    }))
    .await
}
