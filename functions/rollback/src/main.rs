//! The `rollback` Lambda's entry point: configuration and clients once, then the runtime loop.

use opsplane_fn_rollback::Deps;
use opsplane_shared::Config;
use opsplane_shared::aws::Clients;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    opsplane_shared::telemetry::init();
    let config = Config::from_env()?;
    let clients = Clients::load(&config).await;
    let deps = Deps::new(config, &clients);
    opsplane_shared::boundary::serve(deps).await
}
