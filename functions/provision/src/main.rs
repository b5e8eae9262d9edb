//! The `provision` Lambda's entry point: configuration and clients once, then the runtime loop.

use opsplane_fn_provision::Deps;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    opsplane_shared::boundary::run(|config, clients| Ok(Deps::new(config, clients))).await
}
