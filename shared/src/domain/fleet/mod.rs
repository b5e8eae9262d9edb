//! The fleet at a glance: for every environment, how fresh its newest backup is, how its last drill did
//! against its RTO and RPO targets, and its last health verdict, each judged good, warning or bad. The page
//! people look at is drawn in `render`.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::drill::Verdict as DrillVerdict;

pub mod budget;
pub mod capacity;
mod render;
pub mod rotation;

pub use render::render_fleet_html;

/// How a cell of the fleet's heat map reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Within its target.
    Good,
    /// Worth a look (a degraded environment, a missed target).
    Warn,
    /// Out of bounds (a stale or missing backup, a failed drill, an unhealthy environment).
    Bad,
    /// Nothing to judge by (never drilled, never checked).
    Unknown,
}

impl Level {
    /// The word the page shows.
    pub fn label(self) -> &'static str {
        match self {
            Level::Good => "good",
            Level::Warn => "warning",
            Level::Bad => "bad",
            Level::Unknown => "unknown",
        }
    }
}

/// One environment's last drill, as the catalog recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastDrill {
    /// When it started.
    pub at: DateTime<Utc>,
    /// RTO, seconds, when measured.
    pub rto_seconds: Option<u64>,
    /// RPO, seconds, when measured.
    pub rpo_seconds: Option<u64>,
    /// Its RTO target, seconds.
    pub rto_target_seconds: u64,
    /// Its RPO target, seconds.
    pub rpo_target_seconds: u64,
    /// Its verdict.
    pub verdict: DrillVerdict,
}

/// What is known of one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentFacts {
    /// The environment.
    pub environment: String,
    /// How old its newest backup may be (minutes), from its spec; `None` when the spec sets no bound
    /// (or could not be read).
    pub backup_max_age_minutes: Option<u32>,
    /// When its newest completed backup was taken.
    pub newest_backup: Option<DateTime<Utc>>,
    /// Its last drill.
    pub last_drill: Option<LastDrill>,
    /// Its last health verdict (`healthy`, `degraded`, `unhealthy`) and when it was checked.
    pub health: Option<(String, DateTime<Utc>)>,
}

/// One cell: its level and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// How it reads.
    pub level: Level,
    /// What it says (`3h 02m ago`, `18m 07s of 30m 00s`, `healthy`).
    pub text: String,
}

impl Cell {
    fn new(level: Level, text: impl Into<String>) -> Self {
        Self {
            level,
            text: text.into(),
        }
    }
}

/// One environment's row of the heat map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetRow {
    /// The environment.
    pub environment: String,
    /// Backup freshness against `backup_max_age_minutes`.
    pub backup: Cell,
    /// The last drill's RTO against its target.
    pub rto: Cell,
    /// The last drill's RPO against its target.
    pub rpo: Cell,
    /// The last drill's verdict and age.
    pub drill: Cell,
    /// The last health verdict.
    pub health: Cell,
}

impl FleetRow {
    /// The worst of its cells (unknown counts as a warning: something was never checked).
    pub fn worst(&self) -> Level {
        [
            &self.backup,
            &self.rto,
            &self.rpo,
            &self.drill,
            &self.health,
        ]
        .iter()
        .map(|c| match c.level {
            Level::Unknown => Level::Warn,
            l => l,
        })
        .max()
        .unwrap_or(Level::Good)
    }
}

/// The fleet report: every environment's row, worst first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetReport {
    /// When it was made.
    pub generated_at: DateTime<Utc>,
    /// One row per environment.
    pub rows: Vec<FleetRow>,
}

impl FleetReport {
    /// How many environments are at each level (their worst cell).
    pub fn counts(&self) -> [(Level, usize); 3] {
        let count = |l| self.rows.iter().filter(|r| r.worst() == l).count();
        [
            (Level::Good, count(Level::Good)),
            (Level::Warn, count(Level::Warn)),
            (Level::Bad, count(Level::Bad)),
        ]
    }
}

/// `seconds` as the page shows a duration.
fn human(seconds: i64) -> String {
    super::drill::human_duration(seconds.max(0))
}

/// How long ago, `seconds` back: in days from two days on, else as [`human`].
fn ago(seconds: i64) -> String {
    let days = seconds / 86_400;
    if days >= 2 {
        format!("{days} days ago")
    } else {
        format!("{} ago", human(seconds))
    }
}

fn backup_cell(facts: &EnvironmentFacts, now: DateTime<Utc>) -> Cell {
    match (facts.newest_backup, facts.backup_max_age_minutes) {
        (None, _) => Cell::new(Level::Bad, "no completed backup"),
        (Some(at), max) => {
            let text = ago((now - at).num_seconds());
            match max {
                Some(m) if now - at > Duration::minutes(i64::from(m)) => Cell::new(
                    Level::Bad,
                    format!("{text} (at most {})", human(i64::from(m) * 60)),
                ),
                _ => Cell::new(Level::Good, text),
            }
        }
    }
}

fn figure_cell(measured: Option<u64>, target: u64) -> Cell {
    match measured {
        None => Cell::new(Level::Unknown, "not measured"),
        Some(v) => Cell::new(
            if v <= target { Level::Good } else { Level::Bad },
            format!("{} of {}", human(v as i64), human(target as i64)),
        ),
    }
}

/// Judges one environment.
pub fn row(facts: &EnvironmentFacts, now: DateTime<Utc>) -> FleetRow {
    let (rto, rpo, drill) = match &facts.last_drill {
        None => (
            Cell::new(Level::Unknown, "-"),
            Cell::new(Level::Unknown, "-"),
            Cell::new(Level::Unknown, "never drilled"),
        ),
        Some(d) => (
            figure_cell(d.rto_seconds, d.rto_target_seconds),
            figure_cell(d.rpo_seconds, d.rpo_target_seconds),
            Cell::new(
                match d.verdict {
                    DrillVerdict::Passed => Level::Good,
                    DrillVerdict::TargetMissed => Level::Warn,
                    DrillVerdict::RestoreFailed => Level::Bad,
                },
                format!("{}, {}", d.verdict.label(), ago((now - d.at).num_seconds())),
            ),
        ),
    };
    let health = match &facts.health {
        None => Cell::new(Level::Unknown, "never checked"),
        Some((verdict, at)) => Cell::new(
            match verdict.as_str() {
                "healthy" => Level::Good,
                "degraded" => Level::Warn,
                _ => Level::Bad,
            },
            format!("{verdict}, {}", ago((now - *at).num_seconds())),
        ),
    };
    FleetRow {
        environment: facts.environment.clone(),
        backup: backup_cell(facts, now),
        rto,
        rpo,
        drill,
        health,
    }
}

/// The report of `fleet` at `now`: worst environments first, then by name.
pub fn report(fleet: &[EnvironmentFacts], now: DateTime<Utc>) -> FleetReport {
    let mut rows: Vec<FleetRow> = fleet.iter().map(|f| row(f, now)).collect();
    rows.sort_by(|a, b| {
        b.worst()
            .cmp(&a.worst())
            .then_with(|| a.environment.cmp(&b.environment))
    });
    FleetReport {
        generated_at: now,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn facts(env: &str) -> EnvironmentFacts {
        EnvironmentFacts {
            environment: env.into(),
            backup_max_age_minutes: Some(1500),
            newest_backup: Some(now() - Duration::hours(3)),
            last_drill: Some(LastDrill {
                at: now() - Duration::days(2),
                rto_seconds: Some(1087),
                rpo_seconds: Some(60),
                rto_target_seconds: 1800,
                rpo_target_seconds: 300,
                verdict: DrillVerdict::Passed,
            }),
            health: Some(("healthy".into(), now() - Duration::minutes(5))),
        }
    }

    #[test]
    fn a_well_kept_environment_is_good_throughout() {
        let r = row(&facts("prod"), now());
        assert_eq!(r.worst(), Level::Good);
        assert_eq!(r.backup.text, "3h 00m 00s ago");
        assert_eq!(r.rto.text, "18m 07s of 30m 00s");
        assert_eq!(r.drill.text, "passed, 2 days ago");
    }

    #[test]
    fn stale_backups_missed_targets_and_unknowns_are_marked() {
        let mut f = facts("staging");
        f.newest_backup = Some(now() - Duration::hours(30));
        let r = row(&f, now());
        assert_eq!(r.backup.level, Level::Bad);
        assert!(
            r.backup.text.contains("at most 25h 00m 00s"),
            "{}",
            r.backup.text
        );
        f.newest_backup = None;
        assert_eq!(row(&f, now()).backup.level, Level::Bad);

        let mut f = facts("dev");
        if let Some(d) = f.last_drill.as_mut() {
            d.rpo_seconds = Some(600);
            d.verdict = DrillVerdict::TargetMissed;
        }
        let r = row(&f, now());
        assert_eq!((r.rpo.level, r.drill.level), (Level::Bad, Level::Warn));

        let mut f = facts("new");
        f.last_drill = None;
        f.health = None;
        let r = row(&f, now());
        assert_eq!(r.drill.level, Level::Unknown);
        assert_eq!(r.worst(), Level::Warn, "never drilled is worth a look");
    }

    #[test]
    fn the_report_puts_the_worst_first_and_counts_levels() {
        let mut bad = facts("a-bad");
        bad.health = Some(("unhealthy".into(), now()));
        let report = report(&[facts("z-good"), bad, facts("b-good")], now());
        let names: Vec<&str> = report.rows.iter().map(|r| r.environment.as_str()).collect();
        assert_eq!(names, ["a-bad", "b-good", "z-good"]);
        assert_eq!(
            report.counts(),
            [(Level::Good, 2), (Level::Warn, 0), (Level::Bad, 1)]
        );
    }
}
