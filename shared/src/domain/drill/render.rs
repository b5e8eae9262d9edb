//! The drill report as people see it: one self-contained HTML page with the figures, the checks and an
//! inline SVG chart of the last drills against their targets.

use std::fmt::Write as _;

use super::{
    CacheReport, Check, DrillPoint, DrillReport, Measurement, Phase, RestoreMode, RpoSource,
    Targets, Verdict,
};
use crate::domain::readable::{self, html_escape as escape};

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
         .failed{color:#b00020}.axis{width:30em}.bar{background:#4a7ebb;height:0.9em}</style></head><body>",
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
        h.push_str("<h2>Timings against targets</h2>");
        timings(&mut h, m, "");
    }
    timeline(&mut h, &report.phases, "");
    checks_table(&mut h, &report.checks, "checks");
    if let Some(e) = &report.error {
        let _ = write!(h, "<h2>Error</h2><pre id=\"error\">{}</pre>", escape(e));
    }
    if let Some(c) = &report.cache {
        cache_section(&mut h, c);
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

/// The RTO and RPO table and the recovery point; element ids start with `prefix`.
fn timings(h: &mut String, m: &Measurement, prefix: &str) {
    let _ = write!(
        h,
        "<table id=\"{prefix}timings\"><thead><tr><th>Figure</th><th>Measured (s)</th><th>Target (s)</th><th>Measured</th><th>Met</th></tr></thead><tbody>"
    );
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
            "<tr><th>{label}</th><td id=\"{prefix}{id}-seconds\">{v}</td><td id=\"{prefix}{id}-target-seconds\">{t}</td><td>{}</td><td id=\"{prefix}{id}-met\" class=\"{}\">{}</td></tr>",
            human_duration(v),
            if met { "passed" } else { "failed" },
            if met { "yes" } else { "no" }
        );
    }
    let _ = write!(
        h,
        "</tbody></table><p>Recovery point: <span id=\"{prefix}recovery-point\">{}</span> (from the {}).</p>",
        readable::timestamp(m.recovery_point),
        match m.rpo_source {
            RpoSource::Snapshot => "snapshot's creation time",
            RpoSource::RestorePoint => "point-in-time restore's recovery point",
            RpoSource::Canary => "newest write found by the canary",
        }
    );
}

/// The recovery by phase: one bar per phase on one time axis (from the first phase's start to the last's
/// end), with its duration; nothing when no phase was seen.
fn timeline(h: &mut String, phases: &[Phase], prefix: &str) {
    let (Some(start), Some(end)) = (
        phases.iter().map(|p| p.started_at).min(),
        phases
            .iter()
            .map(|p| p.started_at + chrono::Duration::seconds(p.seconds))
            .max(),
    ) else {
        return;
    };
    let span = (end - start).num_seconds().max(1) as f64;
    let _ = write!(
        h,
        "<h3>Recovery by phase</h3><table id=\"{prefix}timeline\" class=\"timeline\"><tbody>"
    );
    for p in phases {
        let offset = (p.started_at - start).num_seconds() as f64 / span * 100.0;
        let width = (p.seconds as f64 / span * 100.0).max(0.5);
        let _ = write!(
            h,
            "<tr><th>{}</th><td id=\"{prefix}phase-{}\">{}</td><td class=\"axis\"><div class=\"bar\" \
             style=\"margin-left:{offset:.1}%;width:{width:.1}%\"></div></td></tr>",
            escape(&p.name),
            escape(&p.name),
            human_duration(p.seconds)
        );
    }
    h.push_str("</tbody></table>");
}

/// The verification table `id`, when there are checks.
fn checks_table(h: &mut String, checks: &[Check], id: &str) {
    if checks.is_empty() {
        return;
    }
    let _ = write!(
        h,
        "<h2>Verification</h2><table id=\"{id}\"><thead><tr><th>Check</th><th>Result</th><th>Detail</th></tr></thead><tbody>"
    );
    for c in checks {
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

/// The Redis replication group's part: what was restored, its figures, checks and error.
fn cache_section(h: &mut String, c: &CacheReport) {
    let _ = write!(
        h,
        "<h2>Redis replication group</h2><table id=\"redis\"><tbody>\
         <tr><th>Source group</th><td id=\"redis-group\">{}</td></tr>\
         <tr><th>Snapshot</th><td id=\"redis-snapshot\">{}</td></tr>\
         <tr><th>Scratch group</th><td id=\"redis-scratch\">{}</td></tr>\
         <tr><th>Verdict</th><td id=\"redis-verdict\" class=\"{}\">{}</td></tr>\
         <tr><th>Torn down</th><td id=\"redis-torn-down\">{}</td></tr></tbody></table>",
        escape(&c.replication_group),
        escape(c.snapshot_id.as_deref().unwrap_or("-")),
        escape(&c.scratch_group),
        if c.verdict == Verdict::Passed {
            "passed"
        } else {
            "failed"
        },
        c.verdict.label(),
        if c.torn_down { "yes" } else { "no" },
    );
    if let Some(m) = &c.measurement {
        timings(h, m, "redis-");
    }
    timeline(h, &c.phases, "redis-");
    checks_table(h, &c.checks, "redis-checks");
    if let Some(e) = &c.error {
        let _ = write!(h, "<pre id=\"redis-error\">{}</pre>", escape(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::drill::*;
    use chrono::{DateTime, Duration, Utc};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    const TARGETS: Targets = Targets {
        rto_seconds: 1800,
        rpo_seconds: 300,
    };

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
            cache: None,
            phases: Vec::new(),
        }
    }

    #[test]
    fn the_timeline_draws_each_phase_on_one_axis() {
        let mut r = report();
        assert!(!render_html(&r, &[]).contains("id=\"timeline\""));
        let start = r.started_at;
        r.phases = vec![
            Phase {
                name: "restore".into(),
                started_at: start,
                seconds: 900,
            },
            Phase {
                name: "teardown".into(),
                started_at: start + Duration::seconds(900),
                seconds: 100,
            },
        ];
        let html = render_html(&r, &[]);
        assert!(html.contains("id=\"timeline\""));
        assert!(html.contains("id=\"phase-restore\">15m 00s<"), "{html}");
        assert!(html.contains("margin-left:90.0%;width:10.0%"), "{html}");
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
