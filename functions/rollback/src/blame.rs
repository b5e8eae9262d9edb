//! Which deployment an alarm blames, and what the environment goes back to.
//!
//! An alarm during a deployment (running, or baking after its health check) blames that deployment; so does
//! an alarm within the spec's `rollback.window_minutes` after the latest deployment finished. The
//! environment goes back to the newest known-good deployment before the blamed one. An alarm with no
//! deployment inside the window blames nothing: no rollback starts, and a person decides
//! (`AlarmWithoutRecentChange`).

use chrono::{DateTime, Utc};
use opsplane_shared::clock::rfc3339;
use opsplane_shared::state::{DeploymentRecord, DeploymentStatus, LastKnownGood};
use serde::{Deserialize, Serialize};

/// The deployment an alarm blames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blamed {
    /// Its id (for a deployment still running, its execution).
    pub deployment_id: String,
    /// The spec version it applied; `None` for one still running (it is stopped before it records one).
    pub spec_version: Option<String>,
    /// Where it stood when the alarm fired (`IN_PROGRESS`, `BAKING`, `SUCCEEDED`).
    pub status: DeploymentStatus,
}

/// What an alarm leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Roll `blamed` back to spec version `to`.
    RollBack {
        /// The deployment blamed.
        blamed: Blamed,
        /// The known-good spec version before it.
        to: String,
    },
    /// The deployment the alarm would blame was rolled back already (its own health check or bake caught
    /// it): nothing more to do.
    AlreadyRolledBack {
        /// What was found.
        why: String,
    },
    /// Nothing recent to blame: a person decides; `why` says what was found.
    AskAPerson {
        /// The latest deployments, and why none is blamed.
        why: String,
    },
}

/// Judges an alarm that fired at `alarm_at` against the deployment running now (`running`: the execution
/// holding the environment's lock for a provision, if any), the environment's `latest` recorded deployments
/// (newest first) and its `known_good` history (newest first).
pub fn judge(
    alarm_at: DateTime<Utc>,
    window_minutes: u32,
    running: Option<&str>,
    latest: &[DeploymentRecord],
    known_good: &[LastKnownGood],
) -> Verdict {
    // A deployment still applying (or waiting for approval) has recorded nothing yet: it is blamed, and the
    // environment goes back to its last known good.
    if let Some(execution) = running
        && latest
            .first()
            .is_none_or(|d| d.status != DeploymentStatus::Baking)
    {
        return match known_good.first() {
            Some(k) => Verdict::RollBack {
                blamed: Blamed {
                    deployment_id: execution.to_owned(),
                    spec_version: None,
                    status: DeploymentStatus::InProgress,
                },
                to: k.spec_version.clone(),
            },
            None => Verdict::AskAPerson {
                why: format!(
                    "deployment {execution} is running, but no known-good deployment came before it"
                ),
            },
        };
    }
    let window = chrono::Duration::minutes(i64::from(window_minutes));
    let inside = |d: &DeploymentRecord| {
        d.finished_at
            .is_some_and(|f| alarm_at >= f - chrono::Duration::hours(1) && alarm_at - f <= window)
    };
    if let Some(d) = latest
        .first()
        .filter(|d| d.status == DeploymentStatus::RolledBack && inside(d))
    {
        return Verdict::AlreadyRolledBack {
            why: format!(
                "deployment {} (spec version {}) was already rolled back at {}{}",
                d.id,
                d.spec_version,
                rfc3339(d.finished_at.unwrap_or(d.started_at)),
                d.error
                    .as_deref()
                    .map(|e| format!(" ({})", e.split(':').next().unwrap_or(e)))
                    .unwrap_or_default()
            ),
        };
    }
    let recent = latest.first().filter(|d| match d.status {
        DeploymentStatus::InProgress | DeploymentStatus::Baking => true,
        DeploymentStatus::Succeeded => d.finished_at.is_some_and(|f| {
            alarm_at >= f - chrono::Duration::minutes(1) && alarm_at - f <= window
        }),
        DeploymentStatus::Failed | DeploymentStatus::RolledBack => false,
    });
    let Some(d) = recent else {
        return Verdict::AskAPerson {
            why: format!(
                "no deployment within {window_minutes} minutes before the alarm at {}; latest: {}",
                rfc3339(alarm_at),
                summary(latest)
            ),
        };
    };
    // The newest known-good version other than the blamed one (a baking or running deployment is not
    // in the history yet; a promoted one is its first entry).
    match known_good.iter().find(|k| k.spec_version != d.spec_version) {
        Some(k) => Verdict::RollBack {
            blamed: Blamed {
                deployment_id: d.id.clone(),
                spec_version: Some(d.spec_version.clone()),
                status: d.status,
            },
            to: k.spec_version.clone(),
        },
        None => Verdict::AskAPerson {
            why: format!(
                "deployment {} (spec version {}) is blamed, but no known-good deployment came before it; latest: {}",
                d.id,
                d.spec_version,
                summary(latest)
            ),
        },
    }
}

/// The latest deployments, one phrase each.
pub fn summary(latest: &[DeploymentRecord]) -> String {
    if latest.is_empty() {
        return "none".into();
    }
    latest
        .iter()
        .take(3)
        .map(|d| {
            format!(
                "{} spec version {} {} {}",
                d.id,
                d.spec_version,
                status_word(d.status),
                rfc3339(d.finished_at.unwrap_or(d.started_at))
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn status_word(s: DeploymentStatus) -> &'static str {
    match s {
        DeploymentStatus::InProgress => "in progress since",
        DeploymentStatus::Baking => "baking since",
        DeploymentStatus::Succeeded => "succeeded",
        DeploymentStatus::Failed => "failed",
        DeploymentStatus::RolledBack => "rolled back",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn at(min: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + min * 60, 0).unwrap()
    }

    fn deployment(
        id: &str,
        version: &str,
        status: DeploymentStatus,
        finished: Option<i64>,
    ) -> DeploymentRecord {
        DeploymentRecord {
            environment: "prod".into(),
            id: id.into(),
            started_at: at(-30),
            finished_at: finished.map(at),
            status,
            spec_version: version.into(),
            plan: Value::Null,
            execution: format!("arn:x:{id}"),
            actor: "jane".into(),
            error: None,
        }
    }

    fn good(version: &str) -> LastKnownGood {
        LastKnownGood {
            deployment_id: format!("d-{version}"),
            spec_version: version.into(),
            recorded_at: at(-100),
            spec_sha256: None,
        }
    }

    #[test]
    fn an_alarm_during_a_bake_blames_the_baking_deployment() {
        let latest = [deployment("d2", "v2", DeploymentStatus::Baking, None)];
        let v = judge(at(10), 60, None, &latest, &[good("v1")]);
        assert!(
            matches!(v, Verdict::RollBack { ref blamed, ref to } if blamed.spec_version.as_deref() == Some("v2") && to == "v1"),
            "{v:?}"
        );
    }

    #[test]
    fn an_alarm_inside_the_window_goes_back_past_the_promoted_deployment() {
        let latest = [deployment("d2", "v2", DeploymentStatus::Succeeded, Some(0))];
        let v = judge(at(45), 60, None, &latest, &[good("v2"), good("v1")]);
        assert!(
            matches!(v, Verdict::RollBack { ref to, .. } if to == "v1"),
            "{v:?}"
        );
    }

    #[test]
    fn an_alarm_after_the_window_or_after_a_failed_change_asks_a_person() {
        let latest = [deployment("d2", "v2", DeploymentStatus::Succeeded, Some(0))];
        let v = judge(
            at(2 * 24 * 60),
            60,
            None,
            &latest,
            &[good("v2"), good("v1")],
        );
        assert!(
            matches!(v, Verdict::AskAPerson { ref why } if why.contains("d2 spec version v2 succeeded")),
            "{v:?}"
        );
        let rolled_back = [deployment(
            "d3",
            "v3",
            DeploymentStatus::RolledBack,
            Some(0),
        )];
        assert!(matches!(
            judge(at(5), 60, None, &rolled_back, &[good("v2")]),
            Verdict::AlreadyRolledBack { .. }
        ));
        assert!(matches!(
            judge(at(500), 60, None, &rolled_back, &[good("v2")]),
            Verdict::AskAPerson { .. }
        ));
        assert!(matches!(
            judge(at(5), 60, None, &[], &[]),
            Verdict::AskAPerson { .. }
        ));
    }

    #[test]
    fn a_blamed_first_deployment_has_nothing_to_go_back_to() {
        let latest = [deployment("d1", "v1", DeploymentStatus::Succeeded, Some(0))];
        let v = judge(at(5), 60, None, &latest, &[good("v1")]);
        assert!(
            matches!(v, Verdict::AskAPerson { ref why } if why.contains("no known-good")),
            "{v:?}"
        );
    }

    #[test]
    fn an_alarm_during_a_running_deployment_blames_it_whenever_the_alarm_fired() {
        let latest = [deployment(
            "d1",
            "v1",
            DeploymentStatus::Succeeded,
            Some(-3000),
        )];
        let v = judge(at(-5000), 60, Some("arn:exec:d2"), &latest, &[good("v1")]);
        assert!(
            matches!(v, Verdict::RollBack { ref blamed, ref to } if blamed.spec_version.is_none() && to == "v1"),
            "{v:?}"
        );
    }
}
