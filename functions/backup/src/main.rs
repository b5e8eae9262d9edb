//! The `backup` Lambda's entry point: configuration and clients once, then the runtime loop.

use opsplane_fn_backup::probe::ProbeSettings;
use opsplane_fn_backup::Deps;
use opsplane_shared::Config;
use opsplane_shared::aws::Clients;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    opsplane_shared::telemetry::init();
    let config = Config::from_env()?;
    let clients = Clients::load(&config).await;
    // The probe's endpoint override and CA bundle; credentials are resolved per probe, never configured.
    let probe = ProbeSettings::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))?;
    let deps = Deps::new(config, &clients).with_probe_settings(probe);
    opsplane_shared::boundary::serve(deps).await
}
