//! DR drills: RTO and RPO from events, the verdict against targets, and the report's model; its HTML page
//! and chart are drawn in `render`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::spec::DrillPolicy;

mod render;

pub use render::{human_duration, render_chart, render_html};

/// The S3 prefix of an environment's drill reports.
pub fn report_prefix(environment: &str) -> String {
    format!("reports/drills/{environment}/")
}

/// The S3 keys (JSON, HTML) of one drill's report.
pub fn report_keys(environment: &str, ts: &str) -> (String, String) {
    let prefix = report_prefix(environment);
    (format!("{prefix}{ts}.json"), format!("{prefix}{ts}.html"))
}

/// The drill's name for a scratch instance: recognisable, unique per drill, a valid DB identifier.
pub fn scratch_identifier(instance: &str, drill_id: &str) -> String {
    let mut id = format!("drill-{drill_id}-{instance}");
    id.truncate(63);
    id.trim_end_matches('-').to_owned()
}

/// The drill's name for a scratch replication group: as [`scratch_identifier`], within ElastiCache's 40
/// characters (ReplicationGroupId: no trailing or doubled hyphen).
pub fn scratch_cache_identifier(group: &str, drill_id: &str) -> String {
    let mut id = format!("drill-{drill_id}-{group}");
    id.truncate(40);
    id.trim_end_matches('-').to_owned()
}

/// How the drill chooses what to restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreMode {
    /// The newest available snapshot taken by opsplane's backup.
    #[default]
    Snapshot,
    /// The instance's latest restorable time (point-in-time restore).
    PointInTime,
}

/// RTO and RPO targets in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// Recovery time objective.
    pub rto_seconds: i64,
    /// Recovery point objective.
    pub rpo_seconds: i64,
}

impl From<&DrillPolicy> for Targets {
    fn from(p: &DrillPolicy) -> Self {
        Targets {
            rto_seconds: i64::from(p.rto_target_minutes) * 60,
            rpo_seconds: i64::from(p.rpo_target_minutes) * 60,
        }
    }
}

/// What the RPO was measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RpoSource {
    /// The snapshot's creation time.
    Snapshot,
    /// The point-in-time restore's recovery point.
    RestorePoint,
    /// The newest write found by the canary query in the restored data (the real RPO).
    Canary,
}

/// One state entering or leaving, as read from an execution's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEvent {
    /// The event's time.
    pub at: DateTime<Utc>,
    /// The state's name.
    pub state: String,
    /// `true` for `...StateEntered`, `false` for `...StateExited`.
    pub entered: bool,
}

/// The measurement could not be made.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MeasureError {
    /// The history lacks the event that starts or ends the restore window.
    #[error("the execution history has no {0} event; the restore window cannot be measured")]
    MissingEvent(String),
    /// The window ends before it starts.
    #[error("the restore became available ({available}) before it was requested ({requested})")]
    Negative {
        /// Start of the window.
        requested: DateTime<Utc>,
        /// End of the window.
        available: DateTime<Utc>,
    },
}

/// The restore window from history: the first entry into `restore_state` to the last exit from
/// `wait_state` (the poll that saw the instance available).
pub fn restore_window(
    events: &[StateEvent],
    restore_state: &str,
    wait_state: &str,
) -> Result<(DateTime<Utc>, DateTime<Utc>), MeasureError> {
    let requested = events
        .iter()
        .filter(|e| e.entered && e.state == restore_state)
        .map(|e| e.at)
        .min()
        .ok_or_else(|| MeasureError::MissingEvent(format!("{restore_state} entered")))?;
    let available = events
        .iter()
        .filter(|e| !e.entered && e.state == wait_state)
        .map(|e| e.at)
        .max()
        .ok_or_else(|| MeasureError::MissingEvent(format!("{wait_state} exited")))?;
    if available < requested {
        return Err(MeasureError::Negative {
            requested,
            available,
        });
    }
    Ok((requested, available))
}

/// One phase of a drill's recovery, as the timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// `restore`, `verify`, `measure`, `teardown`.
    pub name: String,
    /// When it began: its first state's first entry.
    pub started_at: DateTime<Utc>,
    /// How long it took: to its last state's last exit.
    pub seconds: i64,
}

/// The phases of the instance's part of a drill: each named by its first and last state.
pub const DATABASE_PHASES: [(&str, &str, &str); 4] = [
    ("restore", "Restore", "WaitRestore"),
    ("verify", "Verify", "Verify"),
    ("measure", "Measure", "Measure"),
    ("teardown", "Teardown", "WaitTeardown"),
];

/// The same for the Redis replication group's part.
pub const CACHE_PHASES: [(&str, &str, &str); 4] = [
    ("restore", "RestoreCache", "WaitCacheRestore"),
    ("verify", "VerifyCache", "VerifyCache"),
    ("measure", "MeasureCache", "MeasureCache"),
    ("teardown", "TeardownCache", "WaitCacheTeardown"),
];

/// The phases `events` show, in order: each from its first state's first entry to its last state's last
/// exit; a phase that did not both start and end (the drill stopped before it) is left out.
pub fn phases(events: &[StateEvent], named: &[(&str, &str, &str)]) -> Vec<Phase> {
    named
        .iter()
        .filter_map(|(name, first, last)| {
            let (start, end) = restore_window(events, first, last).ok()?;
            Some(Phase {
                name: (*name).to_owned(),
                started_at: start,
                seconds: (end - start).num_seconds(),
            })
        })
        .collect()
}

/// A drill's figures against its targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measurement {
    /// Restore requested to restore available, seconds.
    pub rto_seconds: i64,
    /// Drill start minus the recovery point, seconds.
    pub rpo_seconds: i64,
    /// What the RPO was measured against.
    pub rpo_source: RpoSource,
    /// The recovery point used.
    pub recovery_point: DateTime<Utc>,
    /// The targets.
    pub targets: Targets,
    /// `rto_seconds <= targets.rto_seconds`.
    pub rto_met: bool,
    /// `rpo_seconds <= targets.rpo_seconds`.
    pub rpo_met: bool,
}

impl Measurement {
    /// Both targets met.
    pub fn passed(&self) -> bool {
        self.rto_met && self.rpo_met
    }
}

/// Measures RTO and RPO. The recovery point is the newest of what is known: the canary's newest write
/// when the probe found one (it is what was really recovered), else the restore point or snapshot time.
pub fn measure(
    restore_requested: DateTime<Utc>,
    restore_available: DateTime<Utc>,
    drill_started: DateTime<Utc>,
    base_point: (DateTime<Utc>, RpoSource),
    canary_newest: Option<DateTime<Utc>>,
    targets: Targets,
) -> Measurement {
    let rto_seconds = (restore_available - restore_requested).num_seconds().max(0);
    let (recovery_point, rpo_source) = match canary_newest {
        Some(at) => (at, RpoSource::Canary),
        None => base_point,
    };
    // A recovery point after the drill's start (clock skew between hosts) is no data loss.
    let rpo_seconds = (drill_started - recovery_point).num_seconds().max(0);
    Measurement {
        rto_seconds,
        rpo_seconds,
        rpo_source,
        recovery_point,
        targets,
        rto_met: rto_seconds <= targets.rto_seconds,
        rpo_met: rpo_seconds <= targets.rpo_seconds,
    }
}

/// The drill's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Restored, verified, both targets met.
    Passed,
    /// Restored and verified, but a target was missed.
    TargetMissed,
    /// The restore or its verification failed.
    RestoreFailed,
}

impl Verdict {
    /// The verdict for a measured drill.
    pub fn of(m: &Measurement) -> Self {
        if m.passed() {
            Verdict::Passed
        } else {
            Verdict::TargetMissed
        }
    }

    /// Human label.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::TargetMissed => "target missed",
            Verdict::RestoreFailed => "restore failed",
        }
    }
}

/// One verification check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Details (the endpoint, the object key, the probe's answer, the mismatch).
    pub detail: String,
}

impl Check {
    /// One line of the drill's checks: what was checked, whether it passed, and what was seen (the report
    /// shows each).
    pub fn new(name: impl Into<String>, passed: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            passed,
            detail: detail.into(),
        }
    }
}

/// The drill report, written as `reports/drills/<env>/<ts>.json` and rendered to HTML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillReport {
    /// The environment.
    pub environment: String,
    /// The drill's id.
    pub drill_id: String,
    /// The execution that ran it.
    pub execution: String,
    /// When the drill started.
    pub started_at: DateTime<Utc>,
    /// The key timestamp of the report.
    pub ts: String,
    /// Snapshot or point-in-time.
    pub mode: RestoreMode,
    /// The source DB instance.
    pub instance: String,
    /// The snapshot restored (snapshot mode).
    pub snapshot_id: Option<String>,
    /// The scratch instance.
    pub scratch_instance: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// The figures, when the drill got that far.
    pub measurement: Option<Measurement>,
    /// Verification checks.
    pub checks: Vec<Check>,
    /// The error that ended the drill, if any.
    pub error: Option<String>,
    /// Whether the scratch instance was deleted.
    pub torn_down: bool,
    /// How to read the figures (e.g. that a local run's come from the model of AWS).
    pub note: String,
    /// The Redis replication group's drill, when the environment has one.
    #[serde(default)]
    pub cache: Option<CacheReport>,
    /// The instance's recovery by phase (restore, verify, measure, teardown), from the execution's events.
    #[serde(default)]
    pub phases: Vec<Phase>,
}

/// The Redis part of a drill: its own restore, checks and figures beside the RDS ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheReport {
    /// The source replication group.
    pub replication_group: String,
    /// The snapshot restored.
    pub snapshot_id: Option<String>,
    /// The scratch replication group.
    pub scratch_group: String,
    /// Its verdict alone.
    pub verdict: Verdict,
    /// The figures, when the drill got that far.
    pub measurement: Option<Measurement>,
    /// Verification checks.
    pub checks: Vec<Check>,
    /// The error that ended it, if any.
    pub error: Option<String>,
    /// Whether the scratch group was deleted.
    pub torn_down: bool,
    /// Its recovery by phase, from the execution's events.
    #[serde(default)]
    pub phases: Vec<Phase>,
}

impl Verdict {
    /// The verdict of a drill of several parts: the worst of them.
    pub fn worst(self, other: Verdict) -> Verdict {
        let rank = |v: Verdict| match v {
            Verdict::Passed => 0,
            Verdict::TargetMissed => 1,
            Verdict::RestoreFailed => 2,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// A past drill, for the chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillPoint {
    /// The drill's key timestamp.
    pub ts: String,
    /// RTO, seconds.
    pub rto_seconds: i64,
    /// RPO, seconds.
    pub rpo_seconds: i64,
    /// The verdict.
    pub verdict: Verdict,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn ev(at: &str, state: &str, entered: bool) -> StateEvent {
        StateEvent {
            at: t(at),
            state: state.into(),
            entered,
        }
    }

    const TARGETS: Targets = Targets {
        rto_seconds: 1800,
        rpo_seconds: 300,
    };

    #[test]
    fn window_runs_from_restore_entered_to_the_last_wait_exit() {
        let events = vec![
            ev("2026-01-01T00:00:00Z", "PickSnapshot", true),
            ev("2026-01-01T00:00:01Z", "Restore", true),
            ev("2026-01-01T00:00:02Z", "Restore", false),
            ev("2026-01-01T00:00:02Z", "WaitRestore", true),
            ev("2026-01-01T00:26:00Z", "WaitRestore", false),
        ];
        let (a, b) = restore_window(&events, "Restore", "WaitRestore").unwrap();
        assert_eq!((b - a).num_seconds(), 25 * 60 + 59);
        let err = restore_window(&events[..3], "Restore", "WaitRestore").unwrap_err();
        assert!(err.to_string().contains("WaitRestore exited"));
        let backwards = vec![
            ev("2026-01-01T01:00:00Z", "Restore", true),
            ev("2026-01-01T00:00:00Z", "WaitRestore", false),
        ];
        assert!(matches!(
            restore_window(&backwards, "Restore", "WaitRestore"),
            Err(MeasureError::Negative { .. })
        ));
    }

    #[test]
    fn scratch_groups_fit_elasticache_ids() {
        let id = scratch_cache_identifier("acme-prod-cache-with-a-long-name", "0123456789");
        assert!(
            id.len() <= 40 && id.starts_with("drill-0123456789-acme"),
            "{id}"
        );
        assert!(!id.ends_with('-') && !id.contains("--"), "{id}");
        assert_eq!(
            scratch_cache_identifier("a-b-c-d-e-f-g-h-i-j-k-l", "0123456789"),
            "drill-0123456789-a-b-c-d-e-f-g-h-i-j-k-l"
        );
        assert!(!scratch_cache_identifier("abcdefghijklmnopqrstuv-x", "0123456789").ends_with('-'));
    }

    #[test]
    fn the_worst_part_decides_the_verdict() {
        assert_eq!(Verdict::Passed.worst(Verdict::Passed), Verdict::Passed);
        assert_eq!(
            Verdict::Passed.worst(Verdict::TargetMissed),
            Verdict::TargetMissed
        );
        assert_eq!(
            Verdict::RestoreFailed.worst(Verdict::TargetMissed),
            Verdict::RestoreFailed
        );
    }

    #[test]
    fn phases_run_from_their_first_state_in_to_their_last_state_out() {
        let events = vec![
            ev("2026-01-01T00:00:00Z", "Restore", true),
            ev("2026-01-01T00:00:01Z", "Restore", false),
            ev("2026-01-01T00:00:01Z", "WaitRestore", true),
            ev("2026-01-01T00:18:07Z", "WaitRestore", false),
            ev("2026-01-01T00:18:07Z", "Verify", true),
            ev("2026-01-01T00:18:09Z", "Verify", false),
            ev("2026-01-01T00:18:09Z", "Teardown", true),
        ];
        let got = phases(&events, &DATABASE_PHASES);
        let named: Vec<(&str, i64)> = got.iter().map(|p| (p.name.as_str(), p.seconds)).collect();
        // Measure never ran and teardown never ended: both left out.
        assert_eq!(named, [("restore", 1087), ("verify", 2)]);
        assert_eq!(got[1].started_at, t("2026-01-01T00:18:07Z"));
    }

    #[test]
    fn measure_compares_with_targets() {
        let start = t("2026-01-01T12:00:00Z");
        let m = measure(
            start,
            start + Duration::minutes(25),
            start,
            (start - Duration::minutes(4), RpoSource::Snapshot),
            None,
            TARGETS,
        );
        assert_eq!((m.rto_seconds, m.rpo_seconds), (1500, 240));
        assert!(m.rto_met && m.rpo_met && m.passed());
        assert_eq!(Verdict::of(&m), Verdict::Passed);
        let slow = measure(
            start,
            start + Duration::minutes(31),
            start,
            (start - Duration::minutes(4), RpoSource::Snapshot),
            None,
            TARGETS,
        );
        assert!(!slow.rto_met && slow.rpo_met);
        assert_eq!(Verdict::of(&slow), Verdict::TargetMissed);
    }

    #[test]
    fn canary_gives_the_real_rpo() {
        let start = t("2026-01-01T12:00:00Z");
        let m = measure(
            start,
            start,
            start,
            (start - Duration::minutes(1), RpoSource::Snapshot),
            Some(start - Duration::minutes(10)),
            TARGETS,
        );
        assert_eq!(m.rpo_source, RpoSource::Canary);
        assert_eq!(m.rpo_seconds, 600);
        assert!(!m.rpo_met);
        // A recovery point in the future (clock skew) is no data loss, not a negative RPO.
        let skew = measure(
            start,
            start,
            start,
            (start + Duration::seconds(5), RpoSource::RestorePoint),
            None,
            TARGETS,
        );
        assert_eq!(skew.rpo_seconds, 0);
    }
}
