//! What a fleet run asks of the RDS API, and the pace that keeps it within a request budget.
//!
//! RDS throttles its API per account and Region: a burst of 300 requests and 12 a second, shared with the
//! console, Terraform and every other caller
//! (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-api-throttling.html). A fleet run that
//! started every environment's backup at once would spend the account's burst in seconds and throttle
//! everyone. Instead each environment's backup is given a start time: the run spends its budget evenly,
//! environment after environment, each one's share being the requests its backup is expected to make.

use crate::domain::backup::SNAPSHOTS_PER_CALL;
use crate::domain::spec::EnvironmentSpec;

/// Polls one wait is expected to take. The backup polls its snapshots at 30 s, x1.5, capped at 5 min
/// (`backup.asl.json`), so eight polls see a snapshot of about half an hour through; most take minutes.
pub const POLLS_PER_WAIT: u64 = 8;

/// Records in one page of an RDS describe (its `MaxRecords` default).
pub const PAGE: u64 = 100;

/// One environment's backup, as RDS sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupShape {
    /// RDS instances snapshotted.
    pub instances: u64,
    /// Whether each snapshot is copied to a second Region.
    pub copies: bool,
    /// Whether the validation reads each instance to check its encryption (copies without a key).
    pub reads_instances: bool,
}

impl BackupShape {
    /// An environment's backup as its spec makes it: its instances, whether it copies, and whether the
    /// validation reads the instances (copies without a key).
    pub fn of(spec: &EnvironmentSpec) -> Self {
        let copies = spec.backup.copy_to_region.is_some();
        Self {
            instances: spec.rds.len() as u64,
            copies,
            reads_instances: copies && spec.backup.copy_kms_key_id.is_none(),
        }
    }
}

/// The account around the fleet, in the control plane's Region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountShape {
    /// RDS instances in the Region (the retention reads them all for drill scratch instances).
    pub instances: u64,
    /// Manual DB snapshots in the Region (a prune before the run reads them all).
    pub manual_snapshots: u64,
}

/// RDS requests one environment's backup makes, step by step of `backup.asl.json`: the quota checks, a
/// `CreateDBSnapshot` per instance, the batched polls ([`SNAPSHOTS_PER_CALL`] snapshots per describe) and
/// the manifest's describe, the copies and their polls, and the retention's reads (the environment's own
/// snapshots, batched by instance; every instance of the Region once something expires, for the drills'
/// sources) and deletions (one expired snapshot per instance and Region in the steady state).
pub fn backup_requests(env: BackupShape, account: AccountShape) -> u64 {
    let k = env.instances;
    let batches = k.div_ceil(SNAPSHOTS_PER_CALL as u64);
    let regions = 1 + u64::from(env.copies);
    let validate = if k == 0 {
        0
    } else {
        regions + if env.reads_instances { k } else { 0 }
    };
    let snapshots = k + POLLS_PER_WAIT * batches + batches;
    let copies = if env.copies {
        k + POLLS_PER_WAIT * batches
    } else {
        0
    };
    let retention = account.instances.div_ceil(PAGE) + regions * (batches.max(1) + k);
    validate + snapshots + copies + retention
}

/// RDS requests one drill makes: the snapshot pick's listing, the restore, its polls (a restore takes
/// longer: twice the polls), the verification's describe, the teardown and its polls.
pub fn drill_requests() -> u64 {
    1 + 1 + 2 * POLLS_PER_WAIT + 1 + 1 + POLLS_PER_WAIT
}

/// Seconds after the run's start at which each item may begin so that the run spends at most
/// `budget_per_second` on average: item `i` waits for the requests of the items before it.
pub fn start_offsets(requests: &[u64], budget_per_second: f64) -> Vec<f64> {
    let mut spent = 0u64;
    requests
        .iter()
        .map(|r| {
            let at = spent as f64 / budget_per_second;
            spent += r;
            at
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_costs_its_instances_its_polls_and_its_retention() {
        let account = AccountShape {
            instances: 1000,
            manual_snapshots: 3000,
        };
        let five = BackupShape {
            instances: 5,
            copies: false,
            reads_instances: false,
        };
        // 1 quota check, 5 snapshots, 8 polls and the manifest, 10 pages of instances, the environment's
        // snapshots in one read and 5 deletions.
        assert_eq!(backup_requests(five, account), 1 + 5 + 8 + 1 + 10 + 1 + 5);
        let copied = BackupShape {
            copies: true,
            reads_instances: true,
            ..five
        };
        // The copy region adds its quota check, 5 reads, 5 copies and 8 polls, 1 read, 5 deletions.
        assert_eq!(
            backup_requests(copied, account) - backup_requests(five, account),
            1 + 5 + 5 + 8 + 1 + 5
        );
        // Polls are batched: 60 instances poll in two describes, not sixty.
        let sixty = BackupShape {
            instances: 60,
            ..five
        };
        assert_eq!(
            backup_requests(sixty, AccountShape::default()),
            1 + 60 + 16 + 2 + 2 + 60
        );
    }

    #[test]
    fn starts_are_spread_so_the_budget_is_spent_evenly() {
        assert_eq!(start_offsets(&[40, 20, 40], 4.0), vec![0.0, 10.0, 15.0]);
        assert!(start_offsets(&[], 4.0).is_empty());
    }
}
