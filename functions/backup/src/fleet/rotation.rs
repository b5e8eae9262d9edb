//! The drill rotation's facts: every instance of the environments in the rotation (`drill.every_days`)
//! with its last drill as the catalog records it.

use chrono::{DateTime, Utc};
use opsplane_shared::OpsError;
use opsplane_shared::domain::fleet::rotation::{self, Candidate, Night};
use opsplane_shared::domain::spec::EnvironmentSpec;
use opsplane_shared::state::{DrillRecord, DrillVerdict};

use crate::Deps;

/// Drill records read per environment to find each instance's last drill: a period's drills of an
/// environment of a few instances, with room.
const DRILLS_SCANNED: u32 = 100;

/// Every instance in the rotation, with its last drill (when it started, whether it met its targets).
pub(super) async fn candidates(
    deps: &Deps,
    specs: &[EnvironmentSpec],
) -> Result<Vec<Candidate>, OpsError> {
    let mut out = Vec::new();
    for spec in specs {
        let Some(every_days) = spec.drill.as_ref().and_then(|d| d.every_days) else {
            continue;
        };
        if spec.rds.is_empty() {
            continue;
        }
        let drills: Vec<DrillRecord> = deps.state.latest(&spec.environment, DRILLS_SCANNED).await?;
        for db in &spec.rds {
            let last = drills
                .iter()
                .filter(|d| d.instance.as_deref() == Some(db.identifier.as_str()))
                .max_by_key(|d| d.started_at)
                .map(|d| (d.started_at, d.verdict == DrillVerdict::Met));
            out.push(Candidate {
                environment: spec.environment.clone(),
                instance: db.identifier.clone(),
                every_days,
                last,
            });
        }
    }
    Ok(out)
}

/// Tonight's drills, within the nightly bound.
pub(super) async fn tonight(
    deps: &Deps,
    specs: &[EnvironmentSpec],
    now: DateTime<Utc>,
) -> Result<Night, OpsError> {
    let candidates = candidates(deps, specs).await?;
    let bound = deps.config.fleet.drills_per_night as usize;
    Ok(rotation::tonight(&candidates, now, bound))
}
