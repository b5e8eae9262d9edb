//! The fleet report as people see it: one self-contained HTML page, a heat map with one row per environment
//! (worst first) and one column per figure, each cell coloured by how it reads. No script, no external
//! resource: it opens from S3, a mail attachment or a laptop alike.

use std::fmt::Write as _;

use super::{Cell, FleetReport, Level};
use crate::domain::readable::{self, html_escape as escape};

fn class(level: Level) -> &'static str {
    match level {
        Level::Good => "good",
        Level::Warn => "warn",
        Level::Bad => "bad",
        Level::Unknown => "unknown",
    }
}

fn cell(h: &mut String, c: &Cell) {
    let _ = write!(
        h,
        "<td class=\"{}\" title=\"{}\">{}</td>",
        class(c.level),
        c.level.label(),
        escape(&c.text)
    );
}

/// The page: counts by level, then the heat map.
pub fn render_fleet_html(report: &FleetReport) -> String {
    let mut h = String::new();
    let title = format!(
        "opsplane fleet — {} environments — {}",
        report.rows.len(),
        readable::timestamp(report.generated_at)
    );
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>");
    let _ = write!(h, "<title>{}</title>", escape(&title));
    h.push_str(
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:90%}\
         .good{background:#d9f2d9}.warn{background:#fff0c2}.bad{background:#f8d0d4}\
         .unknown{background:#eee;color:#555}</style></head><body>",
    );
    let _ = write!(h, "<h1>{}</h1>", escape(&title));
    h.push_str("<p id=\"counts\">");
    for (level, n) in report.counts() {
        let _ = write!(
            h,
            "<span class=\"{}\" id=\"count-{}\">{n} {}</span> ",
            class(level),
            class(level),
            level.label()
        );
    }
    h.push_str("</p>");
    h.push_str(
        "<table id=\"fleet\"><thead><tr><th>Environment</th><th>Newest backup</th><th>Drill RTO</th>\
         <th>Drill RPO</th><th>Last drill</th><th>Health</th></tr></thead><tbody>",
    );
    for r in &report.rows {
        let _ = write!(
            h,
            "<tr id=\"env-{}\"><th>{}</th>",
            escape(&r.environment),
            escape(&r.environment)
        );
        for c in [&r.backup, &r.rto, &r.rpo, &r.drill, &r.health] {
            cell(&mut h, c);
        }
        h.push_str("</tr>");
    }
    h.push_str(
        "</tbody></table><p id=\"legend\">Rows worst first. Backup: the newest completed backup's age \
         against the spec's <code>health.backup_max_age_minutes</code> (else the drill's RPO target). RTO and \
         RPO: the last drill's against its targets. Health: the last recorded verdict.</p>",
    );
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::super::{EnvironmentFacts, report};
    use super::*;

    #[test]
    fn every_environment_is_a_row_with_its_cells_classed_and_escaped() {
        let now = "2026-12-01T12:00:00Z".parse().unwrap();
        let fleet: Vec<EnvironmentFacts> = ["prod", "a<b"]
            .iter()
            .map(|e| EnvironmentFacts {
                environment: (*e).into(),
                backup_max_age_minutes: None,
                newest_backup: None,
                last_drill: None,
                health: None,
            })
            .collect();
        let html = render_fleet_html(&report(&fleet, now));
        assert_eq!(html.matches("<tr id=\"env-").count(), 2);
        assert!(html.contains("<th>a&lt;b</th>") && !html.contains("<th>a<b"));
        assert!(html.contains("class=\"bad\" title=\"bad\">no completed backup"));
        assert!(html.contains("id=\"count-bad\">2 bad"));
        assert!(!html.contains("<script"));
    }
}
