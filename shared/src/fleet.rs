//! The fleet report's facts and its storage: what the catalog knows of every environment with a spec
//! (newest completed backup, last drill, last health verdict), judged by `domain::fleet`, stored as
//! `reports/fleet/<ts>.json` and `.html`. The health sweep writes it after every sweep; `opsplane report
//! fleet` on demand.

use chrono::{DateTime, Utc};

use crate::OpsError;
use crate::aws::objects::ObjectStore;
use crate::aws::specs::SpecStore;
use crate::domain::backup::key_timestamp;
use crate::domain::drill::Verdict;
use crate::domain::fleet::{EnvironmentFacts, FleetReport, LastDrill, render_fleet_html, report};
use crate::state::{
    BackupRecord, BackupStatus, DrillRecord, DrillVerdict, HealthRecord, StateStore,
};

/// How many backup records are read to find an environment's newest completed one.
const BACKUPS_SCANNED: u32 = 20;

/// What the catalog knows of `environment`.
async fn facts(
    specs: &SpecStore,
    state: &StateStore,
    environment: &str,
) -> Result<EnvironmentFacts, OpsError> {
    // A spec that no longer parses still has a row: its backup bound is unknown, its records are not.
    let backup_max_age_minutes = specs
        .get(environment, None)
        .await
        .ok()
        .and_then(|s| s.spec.backup_max_age_minutes());
    let backups: Vec<BackupRecord> = state.latest(environment, BACKUPS_SCANNED).await?;
    let drills: Vec<DrillRecord> = state.latest(environment, 1).await?;
    let checks: Vec<HealthRecord> = state.latest(environment, 1).await?;
    Ok(EnvironmentFacts {
        environment: environment.to_owned(),
        backup_max_age_minutes,
        newest_backup: backups
            .iter()
            .filter(|b| b.status == BackupStatus::Completed)
            .map(|b| b.created_at)
            .max(),
        last_drill: drills.into_iter().next().map(|d| LastDrill {
            at: d.started_at,
            rto_seconds: d.rto_seconds,
            rpo_seconds: d.rpo_seconds,
            rto_target_seconds: d.rto_target_seconds,
            rpo_target_seconds: d.rpo_target_seconds,
            verdict: match d.verdict {
                DrillVerdict::Met => Verdict::Passed,
                DrillVerdict::Missed => Verdict::TargetMissed,
                _ => Verdict::RestoreFailed,
            },
        }),
        health: checks.into_iter().next().map(|h| (h.verdict, h.checked_at)),
    })
}

/// The fleet's report at `now`: one row per environment with a spec.
pub async fn gather(
    specs: &SpecStore,
    state: &StateStore,
    now: DateTime<Utc>,
) -> Result<FleetReport, OpsError> {
    let mut fleet = Vec::new();
    for environment in specs.environments().await? {
        fleet.push(facts(specs, state, &environment).await?);
    }
    Ok(report(&fleet, now))
}

/// Stores `report` as `reports/fleet/<ts>.json` and `.html`: their keys (JSON, HTML).
pub async fn store(
    objects: &ObjectStore,
    report: &FleetReport,
) -> Result<(String, String), OpsError> {
    let ts = key_timestamp(report.generated_at);
    let keys = (
        format!("reports/fleet/{ts}.json"),
        format!("reports/fleet/{ts}.html"),
    );
    let json = serde_json::to_vec_pretty(report)
        .map_err(|e| OpsError::Internal(format!("serialising the fleet report: {e}")))?;
    objects.put(&keys.0, json, "application/json").await?;
    objects
        .put(
            &keys.1,
            render_fleet_html(report).into_bytes(),
            "text/html; charset=utf-8",
        )
        .await?;
    Ok(keys)
}
