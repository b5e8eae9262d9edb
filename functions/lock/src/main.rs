//! The `lock` Lambda's entry point: configuration and clients once, then one event at a time.

use opsplane_fn_lock::LockDeps;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    opsplane_shared::boundary::run(|config, clients| Ok(LockDeps::from_config(&config, clients)))
        .await
}
