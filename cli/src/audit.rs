//! `opsplane audit --env E [--since T]`: an environment's audit events, each checked against its immutable S3
//! copy (see `opsplane_shared::audit`). The command fails (exit 1) when the table and S3 disagree.

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use opsplane_shared::audit::{AuditReport, CopyStatus, Discrepancy, verify};
use opsplane_shared::clock::rfc3339;
use opsplane_shared::state::StateStore;

/// How far back `opsplane audit` looks without `--since`.
pub const DEFAULT_DAYS: i64 = 7;

/// Parses `--since`: an RFC 3339 time, a UTC date (`2026-03-01`), or an age (`36h`, `30d`) before `now`.
pub fn parse_since(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    let age = |digits: &str, unit: fn(i64) -> Duration| {
        digits
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=36_600 * 24).contains(n))
            .map(|n| now - unit(n))
    };
    let parsed = match value.char_indices().last() {
        Some((i, 'd')) => age(&value[..i], Duration::days),
        Some((i, 'h')) => age(&value[..i], Duration::hours),
        _ => None,
    };
    parsed.ok_or_else(|| {
        format!(
            "--since \"{value}\": give an RFC 3339 time (2026-03-01T12:00:00Z), a date (2026-03-01) or an age (36h, 30d)"
        )
    })
}

/// Verifies `environment`'s audit events since `since` (default: the last [`DEFAULT_DAYS`] days) with the
/// store's archive. The store must have one ([`StateStore::from_config`] does).
pub async fn audit(
    store: &StateStore,
    environment: &str,
    since: Option<DateTime<Utc>>,
) -> Result<AuditReport> {
    opsplane_shared::domain::spec::validate_environment_name(environment)
        .map_err(|reason| anyhow::anyhow!("--env: {reason}"))?;
    let archive = store
        .audit_archive()
        .context("this state store writes no S3 copies to check against")?;
    let since = since.unwrap_or_else(|| store.now() - Duration::days(DEFAULT_DAYS));
    Ok(verify(store, archive, environment, since).await?)
}

/// The report as the command prints it: one line per event, then what disagrees.
pub fn render(report: &AuditReport) -> String {
    let mut out = format!(
        "audit of {} since {}: {} event(s)\n",
        report.environment,
        rfc3339(report.since),
        report.entries.len()
    );
    for e in &report.entries {
        let status = match &e.status {
            CopyStatus::Verified => "verified".to_owned(),
            CopyStatus::MissingCopy => format!("MISSING S3 COPY {}", e.key),
            CopyStatus::Differs(fields) => {
                format!("S3 COPY DIFFERS in {} ({})", fields.join(", "), e.key)
            }
            CopyStatus::NotLocked => format!("S3 COPY NOT LOCKED {}", e.key),
            CopyStatus::Unreadable(why) => format!("S3 COPY UNREADABLE {}: {why}", e.key),
        };
        out.push_str(&format!(
            "{}  {:<20} {:<10} {:<40} {}\n",
            rfc3339(e.event.at),
            e.event.action,
            e.event.result,
            e.event.actor,
            status
        ));
    }
    for d in &report.discrepancies {
        match d {
            Discrepancy::NotInTable { key, event } => out.push_str(&format!(
                "{}  {:<20} NOT IN THE TABLE, kept in S3 at {key}\n",
                rfc3339(event.at),
                event.action
            )),
        }
    }
    out.push_str(if report.agrees() {
        "table and S3 agree\n"
    } else {
        "table and S3 DISAGREE\n"
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn since_takes_times_dates_and_ages() {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        assert_eq!(
            parse_since("2026-03-01T06:00:00Z", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 1, 6, 0, 0).unwrap()
        );
        assert_eq!(
            parse_since("2026-03-01", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            parse_since("36h", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 9, 0, 0, 0).unwrap()
        );
        assert_eq!(
            parse_since("3d", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 7, 12, 0, 0).unwrap()
        );
        for bad in ["yesterday", "d", "-3d", "3w", ""] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }
}
