//! The `lock` Lambda's entry point: configuration and clients once, then one event at a time.

use opsplane_fn_lock::LockDeps;
use opsplane_shared::Config;
use opsplane_shared::aws::Clients;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    opsplane_shared::telemetry::init();
    let cfg = Config::from_env()?;
    let clients = Clients::load(&cfg).await;
    opsplane_shared::boundary::serve(LockDeps::from_config(&cfg, &clients)).await
}
