//! The `dispatch` Lambda's entry point: configuration, policy, keys and clients once, then the runtime loop.

use std::sync::Arc;

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use opsplane_fn_dispatch::jwt::{HttpKeySource, JwksCache, Verifier};
use opsplane_fn_dispatch::policy::{POLICY_KEY, Policy};
use opsplane_fn_dispatch::start::Starter;
use opsplane_fn_dispatch::{Deps, DispatchConfig, handle};
use opsplane_shared::Config;
use opsplane_shared::aws::Clients;
use opsplane_shared::aws::objects::ObjectStore;
use opsplane_shared::aws::sfn::SfnExecutions;
use opsplane_shared::state::StateStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    opsplane_shared::telemetry::init();
    let lookup = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let config = Config::from_env()?;
    let dispatch = DispatchConfig::from_lookup(lookup)?;
    let clients = Clients::load(&config).await;
    let policy_text = match &dispatch.policy_path {
        Some(path) => std::fs::read_to_string(path)?,
        None => {
            let objects = ObjectStore::new(clients.s3.clone(), config.bucket_name.clone());
            let bytes = objects.get(POLICY_KEY).await?.ok_or_else(|| {
                format!(
                    "no dispatch policy at s3://{}/{POLICY_KEY}",
                    config.bucket_name
                )
            })?;
            String::from_utf8(bytes)?
        }
    };
    let policy = Policy::parse(&policy_text)?;
    let keys = JwksCache::new(Arc::new(HttpKeySource::new(&dispatch.issuer)?));
    let verifier = Verifier::new(&dispatch.issuer, &dispatch.audience, keys)
        .with_max_lifetime(dispatch.max_lifetime_seconds)
        .with_audience_lists(dispatch.audience_lists);
    let deps = Deps::new(
        verifier,
        policy,
        Starter::new(
            Arc::new(SfnExecutions::new(clients.sfn.clone())),
            &dispatch.state_machine_prefix,
        ),
        StateStore::from_config(&config, &clients),
    );
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<LambdaFunctionUrlRequest>| async move {
            Ok::<_, Error>(handle(deps, event.payload).await)
        },
    ))
    .await
}
