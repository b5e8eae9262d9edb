//! `opsplane plan-capacity`: the fleet's steady-state need against AWS's quotas, before a fleet run meets
//! them: manual snapshots kept per Region against the `ManualSnapshots` quota, cross-Region copies a night
//! against the copies RDS runs at once, RDS requests of one fleet backup and how long the request budget
//! makes it take, and the drill rotation's drills a night.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use opsplane_shared::OpsError;
use opsplane_shared::aws::rds::Rds;
use opsplane_shared::aws::specs::SpecStore;
use opsplane_shared::domain::fleet::budget::{AccountShape, BackupShape, backup_requests};
use opsplane_shared::domain::fleet::capacity::{BackupHabit, COPIES_IN_FLIGHT, SteadyState, add};
use opsplane_shared::domain::spec::EnvironmentSpec;
use serde::Serialize;

/// One Region's snapshots: kept in the steady state, against its quota.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionNeed {
    /// The Region.
    pub region: String,
    /// Manual snapshots the fleet keeps there.
    pub snapshots: u64,
    /// Manual snapshots there now (all of the account's, not only the fleet's).
    pub used: Option<u64>,
    /// The quota, when RDS reports it.
    pub quota: Option<u64>,
    /// Whether the need fits the quota.
    pub fits: Option<bool>,
}

/// The fleet's need.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityPlan {
    /// Environments with a spec.
    pub environments: usize,
    /// RDS instances backed up.
    pub instances: u64,
    /// Snapshots per Region.
    pub regions: Vec<RegionNeed>,
    /// Cross-Region copies a night, by destination.
    pub copies_per_night: BTreeMap<String, u64>,
    /// Copies RDS runs at once into one Region.
    pub copies_in_flight_limit: u64,
    /// RDS requests of one fleet backup.
    pub requests_per_backup_run: u64,
    /// The fleet runs' RDS request budget, per second.
    pub budget: f64,
    /// Minutes the budget spreads one fleet backup over.
    pub backup_run_minutes: u64,
    /// Drills a night of the rotation (environments with `drill.every_days`).
    pub drills_per_night: u64,
    /// Environments whose spec does not load, with why.
    pub skipped: Vec<String>,
}

/// The fleet's steady-state need: every spec, the quotas as RDS reports them.
pub async fn plan(
    specs: &SpecStore,
    rds: &Rds,
    home: &str,
    budget: f64,
) -> Result<CapacityPlan, OpsError> {
    let mut loaded: Vec<EnvironmentSpec> = Vec::new();
    let mut skipped = Vec::new();
    for env in specs.environments().await? {
        match specs.get(&env, None).await {
            Ok(stored) => loaded.push(stored.spec),
            Err(e) => skipped.push(format!("{env}: {e}")),
        }
    }
    let mut steady = SteadyState::default();
    let mut rotation_share = 0.0;
    for spec in &loaded {
        let habit = habit(spec);
        add(&mut steady, &habit, spec.backup.copy_to_region.as_deref());
        if let Some(days) = spec.drill.as_ref().and_then(|d| d.every_days) {
            rotation_share += spec.rds.len() as f64 / f64::from(days.max(1));
        }
    }
    let instances: u64 = loaded.iter().map(|s| s.rds.len() as u64).sum();
    let account = AccountShape {
        instances,
        manual_snapshots: steady.home_snapshots,
    };
    let requests: u64 = loaded
        .iter()
        .map(|s| backup_requests(BackupShape::of(s), account))
        .sum();
    let mut wanted: BTreeMap<String, u64> = BTreeMap::new();
    wanted.insert(home.to_owned(), steady.home_snapshots);
    for (region, n) in &steady.copy_snapshots {
        *wanted.entry(region.clone()).or_default() += n;
    }
    let mut regions = Vec::new();
    for (region, snapshots) in wanted {
        let quota = if region == home {
            rds.manual_snapshot_quota().await?
        } else {
            rds.in_region(&region).manual_snapshot_quota().await?
        };
        let (used, max) = match quota {
            Some((used, max)) => (Some(used.max(0) as u64), Some(max.max(0) as u64)),
            None => (None, None),
        };
        regions.push(RegionNeed {
            region,
            snapshots,
            used,
            quota: max,
            fits: max.map(|m| snapshots <= m),
        });
    }
    Ok(CapacityPlan {
        environments: loaded.len(),
        instances,
        regions,
        copies_per_night: steady.copies_per_night,
        copies_in_flight_limit: COPIES_IN_FLIGHT,
        requests_per_backup_run: requests,
        budget,
        backup_run_minutes: (requests as f64 / budget / 60.0).ceil() as u64,
        drills_per_night: rotation_share.ceil() as u64,
        skipped,
    })
}

/// `opsplane plan-capacity`: the plan of the fleet whose state `cfg` names, printed as lines or JSON;
/// `budget` overrides the configured request budget.
pub async fn command(
    cfg: &opsplane_shared::Config,
    budget: Option<f64>,
    json: bool,
) -> anyhow::Result<()> {
    let budget = budget.unwrap_or(cfg.fleet.rds_request_budget);
    if !(budget > 0.0 && budget <= 12.0) {
        anyhow::bail!(
            "--budget must be more than 0 and at most RDS's 12 requests a second, not {budget}"
        );
    }
    let clients = opsplane_shared::aws::Clients::load(cfg).await;
    let specs = SpecStore::new(clients.s3.clone(), cfg.bucket_name.clone());
    let rds = Rds::new(clients.rds.clone());
    let plan = plan(&specs, &rds, &cfg.region, budget).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", render(&plan));
    }
    Ok(())
}

/// One environment's backup habit.
fn habit(spec: &EnvironmentSpec) -> BackupHabit {
    BackupHabit {
        instances: spec.rds.len() as u64,
        keep_last: u64::from(spec.backup.keep_last),
        retention_days: u64::from(spec.backup.retention_days),
        copies: spec.backup.copy_to_region.is_some(),
    }
}

/// The plan as lines a person reads.
pub fn render(plan: &CapacityPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} environments, {} RDS instances backed up nightly (per instance: the snapshots within \
         backup.retention_days, at least backup.keep_last, and the night's new one)",
        plan.environments, plan.instances
    );
    for r in &plan.regions {
        let against = match (r.quota, r.used, r.fits) {
            (Some(q), Some(u), Some(true)) => format!("within the quota of {q} ({u} in use now)"),
            (Some(q), Some(u), _) => format!(
                "OVER the quota of {q} ({u} in use now): ask AWS to raise \"Manual DB instance snapshots\" \
                 to at least {} (Service Quotas, Amazon RDS), or keep fewer",
                r.snapshots
            ),
            _ => "quota not reported".to_owned(),
        };
        let _ = writeln!(
            out,
            "  manual snapshots in {}: {} kept, {against}",
            r.region, r.snapshots
        );
    }
    for (region, n) in &plan.copies_per_night {
        let _ = writeln!(
            out,
            "  cross-Region copies a night into {region}: {n} ({} at a time at most; the rest wait for a slot)",
            plan.copies_in_flight_limit
        );
    }
    let _ = writeln!(
        out,
        "  RDS requests of one fleet backup: {} ({:.1} a second budgeted: about {} minutes)",
        plan.requests_per_backup_run, plan.budget, plan.backup_run_minutes
    );
    let _ = writeln!(
        out,
        "  drills a night of the rotation: {}",
        plan.drills_per_night
    );
    for s in &plan.skipped {
        let _ = writeln!(out, "  left out (spec does not load): {s}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_over_its_quota_says_what_to_raise_it_to() {
        let plan = CapacityPlan {
            environments: 200,
            instances: 1000,
            regions: vec![RegionNeed {
                region: "us-east-1".into(),
                snapshots: 3000,
                used: Some(0),
                quota: Some(100),
                fits: Some(false),
            }],
            copies_per_night: BTreeMap::new(),
            copies_in_flight_limit: COPIES_IN_FLIGHT,
            requests_per_backup_run: 12_000,
            budget: 4.0,
            backup_run_minutes: 50,
            drills_per_night: 34,
            skipped: Vec::new(),
        };
        let text = render(&plan);
        assert!(text.contains("OVER the quota of 100"), "{text}");
        assert!(text.contains("at least 3000"), "{text}");
        assert!(text.contains("about 50 minutes"), "{text}");
    }
}
