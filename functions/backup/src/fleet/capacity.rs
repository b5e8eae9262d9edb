//! Capacity before action: the fleet backup's snapshots against each Region's manual snapshot quota,
//! pruning first under the retention rules when that makes room, refusing with `QuotaExceeded` otherwise.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use opsplane_shared::OpsError;
use opsplane_shared::domain::backup::select_for_deletion;
use opsplane_shared::domain::fleet::capacity::{RegionCapacity, Verdict};
use opsplane_shared::domain::spec::EnvironmentSpec;
use opsplane_shared::lock::AcquireRequest;

use crate::Deps;
use crate::backup::{rds_in, referenced_snapshots};

/// How long the prune holds an environment's lock: a few deletions.
const PRUNE_LEASE: std::time::Duration = std::time::Duration::from_secs(600);

/// Checks every Region the run creates snapshots in; prunes first where that makes room. Returns each
/// Region's capacity (as found) and the snapshots pruned. A Region that cannot make room fails the run
/// with `QuotaExceeded` before anything is created or deleted.
pub(super) async fn check(
    deps: &Deps,
    specs: &[EnvironmentSpec],
    execution: &str,
    now: DateTime<Utc>,
) -> Result<(Vec<RegionCapacity>, Vec<String>), OpsError> {
    let mut need: BTreeMap<String, u64> = BTreeMap::new();
    need.insert(deps.config.region.clone(), 0);
    for spec in specs {
        let k = spec.rds.len() as u64;
        *need.entry(deps.config.region.clone()).or_default() += k;
        if let Some(region) = &spec.backup.copy_to_region {
            *need.entry(region.clone()).or_default() += k;
        }
    }
    // The home Region first: its figures also feed the request model.
    let mut regions: Vec<(String, u64)> = need.into_iter().collect();
    regions.sort_by_key(|(r, _)| r != &deps.config.region);
    // Read only when a Region does not fit as it is: it lists every instance of the Region.
    let mut referenced = None;
    let mut capacity = Vec::new();
    let mut to_prune: Vec<(String, BTreeMap<String, Vec<String>>)> = Vec::new();
    for (region, need) in regions {
        let rds = rds_in(deps, Some(&region));
        let Some((used, max)) = rds.manual_snapshot_quota().await? else {
            continue;
        };
        let mut c = RegionCapacity {
            region: region.clone(),
            used: used.max(0) as u64,
            max: max.max(0) as u64,
            need,
            prunable: 0,
        };
        if c.verdict() != Verdict::Fits {
            if referenced.is_none() {
                referenced = Some(referenced_snapshots(&deps.rds).await?);
            }
            let referenced = referenced.as_ref().expect("read above");
            let infos: Vec<_> = rds
                .manual_snapshots(None)
                .await?
                .iter()
                .map(|s| s.info())
                .collect();
            let mut by_env = BTreeMap::new();
            for spec in specs {
                let decision =
                    select_for_deletion(&spec.environment, &infos, &spec.backup, referenced, now);
                if !decision.delete.is_empty() {
                    c.prunable += decision.delete.len() as u64;
                    by_env.insert(spec.environment.clone(), decision.delete);
                }
            }
            if c.verdict() == Verdict::Exceeded {
                return Err(OpsError::QuotaExceeded(c.refusal("the fleet backup")));
            }
            to_prune.push((region.clone(), by_env));
        }
        capacity.push(c);
    }
    let mut pruned = Vec::new();
    for (region, by_env) in to_prune {
        let rds = rds_in(deps, Some(&region));
        for (environment, ids) in by_env {
            // Each environment's snapshots are deleted under its lock, as its own backup's retention does:
            // a backup or provision running there now keeps it, and what it would have freed.
            let grant = match deps
                .lock
                .acquire(&AcquireRequest {
                    environment: environment.clone(),
                    holder: execution.to_owned(),
                    operation: "prune".to_owned(),
                    lease: PRUNE_LEASE,
                })
                .await
            {
                Ok(grant) => grant,
                Err(e) => {
                    tracing::warn!(%environment, error = %e, "prune skipped: the environment is busy");
                    continue;
                }
            };
            let mut result = Ok(());
            for id in ids {
                match rds.delete_snapshot(&id).await {
                    Ok(true) => pruned.push(format!("{region}:{id}")),
                    Ok(false) => {}
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            deps.lock
                .release(&environment, execution, grant.token)
                .await?;
            result?;
        }
    }
    // What the prune could not free (a busy environment) still has to fit.
    for c in &capacity {
        if c.verdict() == Verdict::PruneFirst {
            let rds = rds_in(deps, Some(&c.region));
            if let Some((used, _)) = rds.manual_snapshot_quota().await?
                && used.max(0) as u64 + c.need > c.max
            {
                let now_c = RegionCapacity {
                    used: used.max(0) as u64,
                    prunable: 0,
                    ..c.clone()
                };
                return Err(OpsError::QuotaExceeded(now_c.refusal("the fleet backup")));
            }
        }
    }
    tracing::info!(pruned = pruned.len(), "fleet backup capacity checked");
    Ok((capacity, pruned))
}
