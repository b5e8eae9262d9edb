//! `bake`: after its health check a deployment watches the environment's alarms for the spec's
//! `rollback.bake_minutes` before it becomes the last known good.
//!
//! During the bake the deployment keeps the environment's lock: no other provision, backup or drill record
//! lands on a change that has not proved itself (they wait, `LockHeld`), and a rollback stops the baking
//! deployment like any in-flight one. Each call renews the lock, reads the spec's alarms (`DescribeAlarms`)
//! and answers `NotReady` until the bake ends, so the definition asks again once a minute; an alarm in `ALARM`
//! ends the bake with `AlarmDuringBake` and the definition reverts to the last known good.

use chrono::{DateTime, Utc};
use opsplane_shared::OpsError;
use opsplane_shared::clock::rfc3339;
use opsplane_shared::lock::{HeldLock, renew_held};
use serde::{Deserialize, Serialize};

use crate::Deps;

/// `bake`: the deployment baking.
#[derive(Debug, Deserialize)]
pub struct BakeInput {
    /// The environment.
    pub environment: String,
    /// The spec version applied (its `alarms` are watched).
    pub spec_version: String,
    /// When the bake ends (`record` with outcome `baking` set it).
    pub until: DateTime<Utc>,
    /// The lock, renewed at the start of every call ([`HeldLock`]).
    #[serde(default)]
    pub lock: Option<HeldLock>,
}

/// A bake that ended quietly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baked {
    /// When it ended.
    pub until: String,
}

/// One look at the environment's alarms: `AlarmDuringBake` when one fires, `NotReady` until `until`.
pub async fn bake(deps: &Deps, input: BakeInput) -> Result<Baked, OpsError> {
    renew_held(deps.lock.as_ref(), input.lock.as_ref()).await?;
    let stored = deps
        .spec(&input.environment, Some(&input.spec_version))
        .await?;
    let firing = deps.alarms.firing(&stored.spec.alarms).await?;
    if let Some(first) = firing.first() {
        let names: Vec<&str> = firing.iter().map(|a| a.name.as_str()).collect();
        tracing::warn!(
            environment = input.environment,
            alarms = names.join(", "),
            "alarm during the bake"
        );
        return Err(OpsError::AlarmDuringBake(format!(
            "{} of `{}` is in ALARM{}; spec version {} is reverted and does not become the last known good",
            names.join(", "),
            input.environment,
            first
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            input.spec_version,
        )));
    }
    let now = deps.clock.now();
    if now < input.until {
        return Err(OpsError::NotReady(format!(
            "`{}` bakes until {}; no alarm of it is firing",
            input.environment,
            rfc3339(input.until)
        )));
    }
    Ok(Baked {
        until: rfc3339(input.until),
    })
}
