//! Capacity before action: whether a fleet run's snapshots fit the Region's manual snapshot quota, and the
//! fleet's steady-state need that `opsplane plan-capacity` prints.
//!
//! RDS allows 100 manual DB snapshots per Region by default ("Manual DB instance snapshots", Quotas for
//! Amazon RDS: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Limits.html), and reports the
//! quota and its use in `DescribeAccountAttributes` (`ManualSnapshots`). A fleet backup refused by the quota
//! halfway would leave some environments backed up and others not, so a run checks first.

use serde::{Deserialize, Serialize};

/// Cross-Region snapshot copies RDS runs at once into one destination Region ("Copying a DB snapshot":
/// https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_CopySnapshot.html); more wait for a slot.
pub const COPIES_IN_FLIGHT: u64 = 20;

/// One Region's manual snapshots against its quota, for one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionCapacity {
    /// The Region.
    pub region: String,
    /// Manual DB snapshots in it now.
    pub used: u64,
    /// The quota (`ManualSnapshots` max).
    pub max: u64,
    /// Snapshots the run creates in it.
    pub need: u64,
    /// Snapshots the retention rules allow deleting now (expired, not among any instance's newest
    /// `keep_last`, not held, not a drill's source, ours).
    pub prunable: u64,
}

/// What a run does about a Region's quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The new snapshots fit as things are.
    Fits,
    /// They fit once the retention rules have pruned what they allow: prune first.
    PruneFirst,
    /// They do not fit even then.
    Exceeded,
}

impl RegionCapacity {
    /// Whether the run fits, fits after pruning, or cannot.
    pub fn verdict(&self) -> Verdict {
        if self.used + self.need <= self.max {
            Verdict::Fits
        } else if self.used.saturating_sub(self.prunable) + self.need <= self.max {
            Verdict::PruneFirst
        } else {
            Verdict::Exceeded
        }
    }

    /// The quota the run needs: what stays after pruning plus what it creates.
    pub fn required(&self) -> u64 {
        self.used.saturating_sub(self.prunable) + self.need
    }

    /// The refusal of a run that does not fit: the quota, the need and the fix.
    pub fn refusal(&self, run: &str) -> String {
        format!(
            "{run} needs {need} manual DB snapshots in {region}, which has {used} of the {max} RDS allows \
             per Region (quota ManualSnapshots, \"Manual DB instance snapshots\"), and the retention rules \
             allow deleting {prunable}: ask AWS to raise the quota to at least {required} (Service Quotas, \
             Amazon RDS), or keep fewer snapshots (backup.keep_last, backup.retention_days); nothing was created",
            need = self.need,
            region = self.region,
            used = self.used,
            max = self.max,
            prunable = self.prunable,
            required = self.required(),
        )
    }
}

/// One environment's backup settings, for the steady state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupHabit {
    /// RDS instances backed up.
    pub instances: u64,
    /// `backup.keep_last`.
    pub keep_last: u64,
    /// `backup.retention_days`.
    pub retention_days: u64,
    /// Whether snapshots are copied to a second Region.
    pub copies: bool,
}

/// Manual snapshots one instance keeps in the steady state of one backup a night: those within
/// `retention_days` (the retention deletes older ones), never fewer than `keep_last`, and the night's new
/// one before the retention of its run has deleted the oldest.
pub fn kept_per_instance(habit: &BackupHabit) -> u64 {
    habit.keep_last.max(habit.retention_days) + 1
}

/// The fleet's steady state in the control plane's Region and in the copy Regions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SteadyState {
    /// Manual snapshots kept in the home Region.
    pub home_snapshots: u64,
    /// Manual snapshots kept in each copy Region, by Region.
    pub copy_snapshots: std::collections::BTreeMap<String, u64>,
    /// Cross-Region copies made each night, by destination Region.
    pub copies_per_night: std::collections::BTreeMap<String, u64>,
}

/// Adds one environment to the steady state.
pub fn add(state: &mut SteadyState, habit: &BackupHabit, copy_region: Option<&str>) {
    let kept = habit.instances * kept_per_instance(habit);
    state.home_snapshots += kept;
    if let (true, Some(region)) = (habit.copies, copy_region) {
        *state.copy_snapshots.entry(region.to_owned()).or_default() += kept;
        *state.copies_per_night.entry(region.to_owned()).or_default() += habit.instances;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(used: u64, max: u64, need: u64, prunable: u64) -> RegionCapacity {
        RegionCapacity {
            region: "us-east-1".into(),
            used,
            max,
            need,
            prunable,
        }
    }

    #[test]
    fn a_run_fits_prunes_first_or_is_refused_naming_the_quota_and_the_need() {
        assert_eq!(region(0, 100, 100, 0).verdict(), Verdict::Fits);
        assert_eq!(region(50, 100, 60, 10).verdict(), Verdict::PruneFirst);
        let refused = region(0, 100, 1000, 0);
        assert_eq!(refused.verdict(), Verdict::Exceeded);
        let text = refused.refusal("the fleet backup");
        assert!(text.contains("needs 1000 manual DB snapshots"), "{text}");
        assert!(text.contains("ManualSnapshots"), "{text}");
        assert!(text.contains("at least 1000"), "{text}");
    }

    #[test]
    fn the_steady_state_counts_what_retention_keeps_and_the_nights_copies() {
        let habit = BackupHabit {
            instances: 5,
            keep_last: 3,
            retention_days: 7,
            copies: true,
        };
        let mut state = SteadyState::default();
        add(&mut state, &habit, Some("us-west-2"));
        add(
            &mut state,
            &BackupHabit {
                copies: false,
                ..habit
            },
            None,
        );
        assert_eq!(state.home_snapshots, 2 * 5 * 8);
        assert_eq!(state.copy_snapshots["us-west-2"], 5 * 8);
        assert_eq!(state.copies_per_night["us-west-2"], 5);
    }
}
