//! The `backup` Lambda's entry point: configuration and clients once, then the runtime loop.

use opsplane_fn_backup::Deps;
use opsplane_shared::probe::ProbeSettings;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // The SQL probe's endpoint override and CA bundle; credentials are resolved per probe, never configured.
    opsplane_shared::boundary::run(|config, clients| {
        Ok(Deps::new(config, clients).with_probe_settings(ProbeSettings::from_env()?))
    })
    .await
}
