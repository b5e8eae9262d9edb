//! The drill rotation: which instances a night drills so that every instance of the environments in the
//! rotation (`drill.every_days`) is drilled at least once in its period, and the fleet's compliance.
//!
//! A night drills the instances whose last drill is oldest (never drilled first), as many as the fleet's
//! steady share (the sum over instances of one drill per period, rounded up) or as many as would otherwise
//! fall out of their period before the next night, whichever is more, within the nightly bound. Drilling
//! everything at once would cost a scratch instance per instance and spend the account's RDS budget in one
//! night; spread this way a fleet of any size is covered in one period.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// One instance in the rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its environment.
    pub environment: String,
    /// The instance.
    pub instance: String,
    /// The environment's `drill.every_days`.
    pub every_days: u32,
    /// Its last drill, if any: when it started and whether it met its targets.
    pub last: Option<(DateTime<Utc>, bool)>,
}

impl Candidate {
    /// When its period runs out (`None`: never drilled, already out).
    fn deadline(&self) -> Option<DateTime<Utc>> {
        self.last
            .map(|(at, _)| at + Duration::days(i64::from(self.every_days)))
    }
}

/// A night's choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Night {
    /// The instances to drill, as `(environment, instance)`, most overdue first.
    pub chosen: Vec<(String, String)>,
    /// Instances whose period runs out before the next night (or never drilled) left for a later night by
    /// the nightly bound: they will be out of compliance.
    pub deferred: usize,
}

/// Tonight's drills among `candidates` at `now`, at most `bound`.
pub fn tonight(candidates: &[Candidate], now: DateTime<Utc>, bound: usize) -> Night {
    let mut order: Vec<&Candidate> = candidates.iter().collect();
    // Never drilled first, then the oldest deadline; names break ties so a night is reproducible.
    order.sort_by(|a, b| {
        a.deadline()
            .cmp(&b.deadline())
            .then_with(|| a.environment.cmp(&b.environment))
            .then_with(|| a.instance.cmp(&b.instance))
    });
    let share: f64 = candidates
        .iter()
        .map(|c| 1.0 / f64::from(c.every_days.max(1)))
        .sum();
    let next_night = now + Duration::days(1);
    let urgent = candidates
        .iter()
        .filter(|c| c.deadline().is_none_or(|d| d <= next_night))
        .count();
    let urgent_drilled_before = candidates
        .iter()
        .filter(|c| c.deadline().is_some_and(|d| d <= next_night))
        .count();
    let wanted = (share.ceil() as usize).max(urgent_drilled_before);
    let count = wanted.min(bound).min(candidates.len());
    Night {
        chosen: order[..count]
            .iter()
            .map(|c| (c.environment.clone(), c.instance.clone()))
            .collect(),
        deferred: urgent.saturating_sub(count),
    }
}

/// The fleet's drill compliance at a moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compliance {
    /// Instances in the rotation.
    pub instances: usize,
    /// Of them, drilled within their period.
    pub drilled_within_period: usize,
    /// Of those, whose last drill met its RTO and RPO targets.
    pub targets_met: usize,
    /// Instances not drilled within their period, as `environment/instance`.
    pub overdue: Vec<String>,
    /// Instances whose last drill within the period missed a target or failed.
    pub missed: Vec<String>,
}

impl Compliance {
    /// Whether every instance was drilled within its period and met its targets.
    pub fn complete(&self) -> bool {
        self.overdue.is_empty() && self.missed.is_empty()
    }
}

/// The compliance of `candidates` (their last drills as recorded) at `now`.
pub fn compliance(candidates: &[Candidate], now: DateTime<Utc>) -> Compliance {
    let mut out = Compliance {
        instances: candidates.len(),
        ..Compliance::default()
    };
    for c in candidates {
        let name = format!("{}/{}", c.environment, c.instance);
        match c.last {
            Some((at, met)) if now - at <= Duration::days(i64::from(c.every_days)) => {
                out.drilled_within_period += 1;
                if met {
                    out.targets_met += 1;
                } else {
                    out.missed.push(name);
                }
            }
            _ => out.overdue.push(name),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn fleet(n: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                environment: format!("env-{:03}", i / 5),
                instance: format!("db-{i:04}"),
                every_days: 30,
                last: None,
            })
            .collect()
    }

    #[test]
    fn a_month_of_nights_drills_every_instance_once_and_no_night_more_than_its_share() {
        let start = Utc.with_ymd_and_hms(2026, 11, 1, 3, 0, 0).unwrap();
        let mut fleet = fleet(1000);
        for night in 0..30 {
            let now = start + Duration::days(night);
            let pick = tonight(&fleet, now, 50);
            // 1,000 instances over 30 days: 34 a night.
            assert_eq!(pick.chosen.len(), 34, "night {night}");
            for (env, instance) in pick.chosen {
                let c = fleet
                    .iter_mut()
                    .find(|c| c.environment == env && c.instance == instance)
                    .unwrap();
                c.last = Some((now, true));
            }
        }
        let month = compliance(&fleet, start + Duration::days(29));
        assert_eq!(month.drilled_within_period, 1000);
        assert!(month.complete(), "{month:?}");
        // The last night had room beyond the never drilled: it took the first twenty of night 0 again. The
        // next night goes on with the rest of night 0's, before their period runs out.
        let next = tonight(&fleet, start + Duration::days(30), 50);
        assert_eq!(next.chosen[0], ("env-004".to_owned(), "db-0020".to_owned()));
        assert_eq!(next.deferred, 0);
    }

    #[test]
    fn instances_about_to_fall_out_are_all_taken_within_the_bound_and_the_rest_deferred() {
        let now = Utc.with_ymd_and_hms(2026, 11, 1, 3, 0, 0).unwrap();
        let mut fleet = fleet(100);
        for c in &mut fleet {
            c.last = Some((now - Duration::days(29) - Duration::hours(1), true));
        }
        let pick = tonight(&fleet, now, 60);
        assert_eq!(pick.chosen.len(), 60);
        assert_eq!(pick.deferred, 40);
        let state = compliance(&fleet, now);
        assert_eq!(state.drilled_within_period, 100);
        fleet[0].last = Some((now - Duration::days(31), true));
        fleet[1].last = Some((now - Duration::days(1), false));
        let state = compliance(&fleet, now);
        assert_eq!(state.overdue, ["env-000/db-0000"]);
        assert_eq!(state.missed, ["env-000/db-0001"]);
        assert_eq!(state.targets_met, 98);
    }
}
