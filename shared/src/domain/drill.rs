//! DR drills: RTO and RPO from events, the verdict against targets, and the report (JSON and one
//! self-contained HTML page with an inline SVG chart of the last drills).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::readable;
use super::spec::DrillPolicy;

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

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Seconds as `1h 02m 03s` / `4m 05s` / `6s`.
pub fn human_duration(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// The chart of the last drills: two polylines (RTO, RPO) in minutes over the drills, with dashed target
/// lines. Pure SVG inside the page: no script, no external resource.
pub fn render_chart(points: &[DrillPoint], targets: Option<Targets>) -> String {
    const W: f64 = 640.0;
    const H: f64 = 240.0;
    const PAD: f64 = 40.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" id="drill-chart" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="RTO and RPO of the last drills">"#
    );
    let _ = write!(
        svg,
        r##"<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff" stroke="#cccccc"/>"##
    );
    if points.is_empty() {
        svg.push_str(r#"<text x="20" y="120">no drills yet</text></svg>"#);
        return svg;
    }
    let max = points
        .iter()
        .flat_map(|p| [p.rto_seconds, p.rpo_seconds])
        .chain(targets.iter().flat_map(|t| [t.rto_seconds, t.rpo_seconds]))
        .max()
        .unwrap_or(0)
        .max(60) as f64;
    let n = points.len();
    let x = |i: usize| {
        if n == 1 {
            W / 2.0
        } else {
            PAD + (W - 2.0 * PAD) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: i64| H - PAD - (H - 2.0 * PAD) * v as f64 / max;
    let _ = write!(
        svg,
        r##"<line x1="{PAD}" y1="{b}" x2="{r}" y2="{b}" stroke="#888888"/><line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{b}" stroke="#888888"/>"##,
        b = H - PAD,
        r = W - PAD
    );
    let _ = write!(
        svg,
        r#"<text x="4" y="{t}" font-size="10">{m}</text><text x="4" y="{b}" font-size="10">0</text>"#,
        t = PAD,
        m = escape(&human_duration(max as i64)),
        b = H - PAD
    );
    if let Some(t) = targets {
        for (v, color, name) in [
            (t.rto_seconds, "#1f77b4", "rto-target"),
            (t.rpo_seconds, "#ff7f0e", "rpo-target"),
        ] {
            let _ = write!(
                svg,
                r#"<line class="{name}" x1="{PAD}" y1="{yv:.1}" x2="{r}" y2="{yv:.1}" stroke="{color}" stroke-dasharray="4 4"/>"#,
                yv = y(v),
                r = W - PAD
            );
        }
        // The targets named on the chart itself, so a single drill's dots read against them.
        for (v, color, label) in [
            (t.rto_seconds, "#1f77b4", "RTO target"),
            (t.rpo_seconds, "#ff7f0e", "RPO target"),
        ] {
            let _ = write!(
                svg,
                r#"<text x="{PAD}" y="{yv:.1}" dx="4" dy="-3" font-size="10" fill="{color}">{label} {}</text>"#,
                escape(&human_duration(v)),
                yv = y(v),
            );
        }
    }
    // When: the first and the last drill under the axis (one label when they are the same drill).
    let first = readable::key_timestamp(&points[0].ts);
    let last = readable::key_timestamp(&points[n - 1].ts);
    if n == 1 {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
            x(0),
            H - PAD + 14.0,
            escape(&first)
        );
    } else {
        let _ = write!(
            svg,
            r#"<text x="{PAD}" y="{b:.1}" font-size="10">{}</text><text x="{r}" y="{b:.1}" font-size="10" text-anchor="end">{}</text>"#,
            escape(&first),
            escape(&last),
            b = H - PAD + 14.0,
            r = W - PAD
        );
    }
    for (series, color, get) in [
        (
            "rto",
            "#1f77b4",
            (|p: &DrillPoint| p.rto_seconds) as fn(&DrillPoint) -> i64,
        ),
        ("rpo", "#ff7f0e", |p: &DrillPoint| p.rpo_seconds),
    ] {
        let pts: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(get(p))))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="{series}" fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        let label = series.to_uppercase();
        for (i, p) in points.iter().enumerate() {
            let _ = write!(
                svg,
                r#"<circle class="{series}-point" cx="{:.1}" cy="{:.1}" r="4" fill="{color}"><title>{}: {label} {}</title></circle>"#,
                x(i),
                y(get(p)),
                escape(&readable::key_timestamp(&p.ts)),
                escape(&human_duration(get(p)))
            );
        }
        // The newest drill's figure beside its dot: the one a reader looks for first.
        let newest = &points[n - 1];
        let _ = write!(
            svg,
            r#"<text class="{series}-latest" x="{:.1}" y="{:.1}" dx="{}" dy="4" font-size="10" fill="{color}" text-anchor="{}">{label} {}</text>"#,
            x(n - 1),
            y(get(newest)),
            if n == 1 { 8 } else { -8 },
            if n == 1 { "start" } else { "end" },
            escape(&human_duration(get(newest)))
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{lx}" y="20" font-size="11" fill="#1f77b4">RTO</text><text x="{px}" y="20" font-size="11" fill="#ff7f0e">RPO</text><text x="{PAD}" y="20" font-size="11">{n} drill{s}, oldest left</text>"##,
        lx = W - PAD - 70.0,
        px = W - PAD - 30.0,
        s = if n == 1 { "" } else { "s" },
    );
    svg.push_str("</svg>");
    svg
}

/// The report as one self-contained page (no script, no external resource). The markup is well-formed
/// XML, so tools (and the tests) can read the figures by element id.
pub fn render_html(report: &DrillReport, history: &[DrillPoint]) -> String {
    let mut h = String::new();
    let title = format!(
        "DR drill {} — {} — {}",
        report.environment,
        readable::timestamp(report.started_at),
        report.verdict.label()
    );
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>");
    let _ = write!(h, "<title>{}</title>", escape(&title));
    h.push_str(
        "<style>body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.passed{color:#2a7d2a}\
         .failed{color:#b00020}</style></head><body>",
    );
    let _ = write!(h, "<h1>{}</h1>", escape(&title));
    let verdict_class = if report.verdict == Verdict::Passed {
        "passed"
    } else {
        "failed"
    };
    let _ = write!(
        h,
        "<p>Verdict: <strong id=\"verdict\" class=\"{verdict_class}\">{}</strong></p>",
        report.verdict.label()
    );
    h.push_str("<table id=\"drill\"><tbody>");
    let row = |h: &mut String, id: &str, label: &str, value: &str| {
        let _ = write!(
            h,
            "<tr><th>{}</th><td id=\"{id}\">{}</td></tr>",
            escape(label),
            escape(value)
        );
    };
    row(&mut h, "environment", "Environment", &report.environment);
    row(&mut h, "drill-id", "Drill", &report.drill_id);
    row(&mut h, "execution", "Execution", &report.execution);
    row(
        &mut h,
        "started-at",
        "Started",
        &readable::timestamp(report.started_at),
    );
    row(
        &mut h,
        "mode",
        "Restore from",
        match report.mode {
            RestoreMode::Snapshot => "snapshot",
            RestoreMode::PointInTime => "point in time",
        },
    );
    row(&mut h, "instance", "Source instance", &report.instance);
    row(
        &mut h,
        "snapshot",
        "Snapshot",
        report.snapshot_id.as_deref().unwrap_or("-"),
    );
    row(
        &mut h,
        "scratch-instance",
        "Scratch instance",
        report.scratch_instance.as_deref().unwrap_or("-"),
    );
    row(
        &mut h,
        "torn-down",
        "Torn down",
        if report.torn_down { "yes" } else { "no" },
    );
    h.push_str("</tbody></table>");
    if let Some(m) = &report.measurement {
        h.push_str("<h2>Timings against targets</h2><table id=\"timings\"><thead><tr><th>Figure</th><th>Measured (s)</th><th>Target (s)</th><th>Measured</th><th>Met</th></tr></thead><tbody>");
        for (id, label, v, t, met) in [
            (
                "rto",
                "RTO",
                m.rto_seconds,
                m.targets.rto_seconds,
                m.rto_met,
            ),
            (
                "rpo",
                "RPO",
                m.rpo_seconds,
                m.targets.rpo_seconds,
                m.rpo_met,
            ),
        ] {
            let _ = write!(
                h,
                "<tr><th>{label}</th><td id=\"{id}-seconds\">{v}</td><td id=\"{id}-target-seconds\">{t}</td><td>{}</td><td id=\"{id}-met\" class=\"{}\">{}</td></tr>",
                human_duration(v),
                if met { "passed" } else { "failed" },
                if met { "yes" } else { "no" }
            );
        }
        let _ = write!(
            h,
            "</tbody></table><p>Recovery point: <span id=\"recovery-point\">{}</span> (from the {}).</p>",
            readable::timestamp(m.recovery_point),
            match m.rpo_source {
                RpoSource::Snapshot => "snapshot's creation time",
                RpoSource::RestorePoint => "point-in-time restore's recovery point",
                RpoSource::Canary => "newest write found by the canary query",
            }
        );
    }
    if !report.checks.is_empty() {
        h.push_str("<h2>Verification</h2><table id=\"checks\"><thead><tr><th>Check</th><th>Result</th><th>Detail</th></tr></thead><tbody>");
        for c in &report.checks {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                escape(&c.name),
                if c.passed { "passed" } else { "failed" },
                if c.passed { "passed" } else { "failed" },
                escape(&c.detail)
            );
        }
        h.push_str("</tbody></table>");
    }
    if let Some(e) = &report.error {
        let _ = write!(h, "<h2>Error</h2><pre id=\"error\">{}</pre>", escape(e));
    }
    h.push_str("<h2>Last drills</h2>");
    h.push_str(&render_chart(
        history,
        report.measurement.as_ref().map(|m| m.targets),
    ));
    if !history.is_empty() {
        h.push_str("<table id=\"last-drills\"><thead><tr><th>Drill</th><th>RTO</th><th>RPO</th><th>Verdict</th></tr></thead><tbody>");
        for p in history.iter().rev() {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&readable::key_timestamp(&p.ts)),
                human_duration(p.rto_seconds),
                human_duration(p.rpo_seconds),
                p.verdict.label()
            );
        }
        h.push_str("</tbody></table>");
    }
    let _ = write!(h, "<p id=\"note\">{}</p>", escape(&report.note));
    h.push_str("</body></html>\n");
    h
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

    fn report() -> DrillReport {
        let start = t("2026-01-01T12:00:00Z");
        DrillReport {
            environment: "prod".into(),
            drill_id: "d1".into(),
            execution: "arn:x".into(),
            started_at: start,
            ts: "20260101T120000Z".into(),
            mode: RestoreMode::Snapshot,
            instance: "db-1".into(),
            snapshot_id: Some("snap-<1>".into()),
            scratch_instance: Some("drill-d1-db-1".into()),
            verdict: Verdict::Passed,
            measurement: Some(measure(
                start,
                start + Duration::seconds(1500),
                start,
                (start - Duration::seconds(120), RpoSource::Snapshot),
                None,
                TARGETS,
            )),
            checks: vec![Check {
                name: "endpoint".into(),
                passed: true,
                detail: "a&b".into(),
            }],
            error: None,
            torn_down: true,
            note: "local".into(),
        }
    }

    #[test]
    fn html_is_self_contained_and_holds_the_figures() {
        let points = vec![
            DrillPoint {
                ts: "a".into(),
                rto_seconds: 1000,
                rpo_seconds: 100,
                verdict: Verdict::Passed,
            },
            DrillPoint {
                ts: "b".into(),
                rto_seconds: 1500,
                rpo_seconds: 120,
                verdict: Verdict::Passed,
            },
        ];
        let html = render_html(&report(), &points);
        assert!(html.contains("<td id=\"rto-seconds\">1500</td>"));
        assert!(html.contains("<td id=\"rpo-seconds\">120</td>"));
        assert!(html.contains("<td id=\"rto-target-seconds\">1800</td>"));
        assert!(html.contains("<svg"));
        assert!(html.contains("class=\"rto\""));
        assert!(html.contains("snap-&lt;1&gt;"));
        assert!(html.contains("a&amp;b"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("src="));
        assert!(!html.contains("href="));
    }

    #[test]
    fn chart_plots_every_point_and_handles_none() {
        let svg = render_chart(&[], None);
        assert!(svg.contains("no drills yet"));
        let points: Vec<_> = (0..5)
            .map(|i| DrillPoint {
                ts: format!("t{i}"),
                rto_seconds: 100 * i,
                rpo_seconds: 10 * i,
                verdict: Verdict::Passed,
            })
            .collect();
        let svg = render_chart(&points, Some(TARGETS));
        assert_eq!(svg.matches("class=\"rto-point\"").count(), 5);
        assert_eq!(svg.matches("class=\"rpo-point\"").count(), 5);
        assert!(svg.contains("rto-target"));
    }

    #[test]
    fn the_chart_reads_the_same_with_one_drill_as_with_thirty() {
        let point = |i: i64| DrillPoint {
            ts: format!("202611{:02}T120000000Z-d{i}", i + 1),
            rto_seconds: 300 + i,
            rpo_seconds: 60,
            verdict: Verdict::Passed,
        };
        let one = render_chart(&[point(0)], Some(TARGETS));
        for label in [
            "RTO target 30m 00s",
            "RPO target 5m 00s",
            "RTO 5m 00s",
            "RPO 1m 00s",
            "2026-11-01 12:00:00 UTC",
            "1 drill,",
        ] {
            assert!(one.contains(label), "{label}: {one}");
        }
        let thirty: Vec<_> = (0..30).map(point).collect();
        let svg = render_chart(&thirty, Some(TARGETS));
        assert_eq!(svg.matches("class=\"rto-point\"").count(), 30);
        assert!(svg.contains("30 drills,"), "{svg}");
        assert!(svg.contains("2026-11-01 12:00:00 UTC") && svg.contains("2026-11-30 12:00:00 UTC"));
        assert!(
            svg.contains("RTO 5m 29s"),
            "the newest drill's figure: {svg}"
        );
    }

    #[test]
    fn names_and_durations() {
        assert_eq!(scratch_identifier("db-1", "abc"), "drill-abc-db-1");
        assert!(scratch_identifier(&"x".repeat(80), "abc").len() <= 63);
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(65), "1m 05s");
        assert_eq!(human_duration(3725), "1h 02m 05s");
        assert_eq!(
            report_keys("prod", "T"),
            (
                "reports/drills/prod/T.json".to_string(),
                "reports/drills/prod/T.html".to_string()
            )
        );
    }
}
