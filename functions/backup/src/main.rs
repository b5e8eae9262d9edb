//! The `backup` Lambda's entry point: configuration and clients once, then the runtime loop.

use opsplane_fn_backup::Deps;
use opsplane_shared::probe::ProbeSettings;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    opsplane_shared::boundary::run(|config, clients| {
        // The SQL probe's endpoint override and CA bundle; credentials are resolved per probe, never
        // configured.
        let probe =
            ProbeSettings::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))?;
        Ok(Deps::new(config, clients).with_probe_settings(probe))
    })
    .await
}
