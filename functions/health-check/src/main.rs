//! The `health-check` Lambda's entry point: configuration and clients once, then the runtime loop.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use opsplane_fn_health_check::{Deps, handle};
use opsplane_shared::Config;
use opsplane_shared::aws::Clients;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    opsplane_shared::telemetry::init();
    let config = Config::from_env()?;
    let clients = Clients::load(&config).await;
    // The SQL probe's endpoint override and CA bundle; credentials are resolved per probe, never configured.
    let probe = opsplane_shared::probe::ProbeSettings::from_lookup(|k| {
        std::env::var(k).ok().filter(|v| !v.is_empty())
    })?;
    let deps = Deps::new(config, &clients).with_probe_settings(probe);
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(deps, event.payload).await
    }))
    .await
}
