//! Which environment an alarm belongs to, and what makes two alarm events one incident.
//!
//! Pure: the rollback function reads the raw EventBridge event and every environment's spec; this module
//! decides. An exact alarm name beats a prefix; two environments claiming the same alarm at the same
//! strength is an error, never a guess, since a rollback of the wrong environment is worse than none.

use chrono::{DateTime, Utc};
use thiserror::Error;

use super::spec::EnvironmentSpec;

/// An alarm could not be resolved to exactly one environment.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResolveError {
    /// No environment's `alarms` mapping names the alarm or a prefix of it.
    #[error(
        "alarm \"{alarm}\" belongs to no environment: no spec lists it under alarms.names or a prefix of it under alarms.prefixes (environments checked: {checked})"
    )]
    NoEnvironment {
        /// The alarm.
        alarm: String,
        /// The environments whose specs were read.
        checked: String,
    },
    /// More than one environment claims the alarm.
    #[error(
        "alarm \"{alarm}\" is claimed by several environments ({environments}); make their alarms mappings disjoint"
    )]
    Ambiguous {
        /// The alarm.
        alarm: String,
        /// The claimants.
        environments: String,
    },
}

/// The environment whose spec claims `alarm`: by exact name first, then by prefix (the longest wins).
pub fn resolve_environment(alarm: &str, specs: &[EnvironmentSpec]) -> Result<String, ResolveError> {
    let exact: Vec<&str> = specs
        .iter()
        .filter(|s| s.alarms.names.iter().any(|n| n == alarm))
        .map(|s| s.environment.as_str())
        .collect();
    let chosen = match exact.as_slice() {
        [one] => return Ok((*one).to_owned()),
        [] => {
            // The longest matching prefix is the most specific claim.
            let best = specs
                .iter()
                .filter_map(|s| {
                    s.alarms
                        .prefixes
                        .iter()
                        .filter(|p| alarm.starts_with(p.as_str()))
                        .map(String::len)
                        .max()
                        .map(|len| (len, s.environment.as_str()))
                })
                .collect::<Vec<_>>();
            let longest = best.iter().map(|(len, _)| *len).max();
            best.into_iter()
                .filter(|(len, _)| Some(*len) == longest)
                .map(|(_, env)| env)
                .collect::<Vec<_>>()
        }
        many => many.to_vec(),
    };
    match chosen.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(ResolveError::NoEnvironment {
            alarm: alarm.to_owned(),
            checked: if specs.is_empty() {
                "none".to_owned()
            } else {
                specs
                    .iter()
                    .map(|s| s.environment.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        }),
        many => Err(ResolveError::Ambiguous {
            alarm: alarm.to_owned(),
            environments: many.join(", "),
        }),
    }
}

/// The identity of one incident: the alarm and the time its state changed. Every copy of one state-change
/// event (EventBridge delivers at least once; several rules may match) has the same identity; the alarm's
/// next transition to ALARM has another.
pub fn incident_id(alarm: &str, state_changed_at: DateTime<Utc>) -> String {
    format!("alarm:{alarm}@{}", crate::clock::rfc3339(state_changed_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(env: &str, alarms: &str) -> EnvironmentSpec {
        EnvironmentSpec::parse(&format!("environment: {env}\nalarms: {alarms}\n")).unwrap()
    }

    fn specs() -> Vec<EnvironmentSpec> {
        vec![
            spec(
                "staging",
                "{ names: [acme-staging-5xx], prefixes: [acme-staging-] }",
            ),
            spec(
                "prod",
                "{ names: [acme-5xx], prefixes: [acme-prod-, acme-] }",
            ),
            spec("dev", "{}"),
        ]
    }

    #[test]
    fn names_then_longest_prefix() {
        assert_eq!(
            resolve_environment("acme-staging-5xx", &specs()).unwrap(),
            "staging"
        );
        assert_eq!(
            resolve_environment("acme-staging-latency", &specs()).unwrap(),
            "staging"
        );
        assert_eq!(
            resolve_environment("acme-prod-latency", &specs()).unwrap(),
            "prod"
        );
        assert_eq!(resolve_environment("acme-5xx", &specs()).unwrap(), "prod");
        // `acme-` (prod) and `acme-staging-` (staging) both match: the longer, more specific one wins.
        assert_eq!(
            resolve_environment("acme-staging-cpu", &specs()).unwrap(),
            "staging"
        );
    }

    #[test]
    fn unknown_alarms_name_the_alarm_and_the_environments() {
        let err = resolve_environment("billing-5xx", &specs()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\"billing-5xx\""), "{text}");
        assert!(text.contains("staging, prod, dev"), "{text}");
        assert!(
            resolve_environment("x", &[])
                .unwrap_err()
                .to_string()
                .contains("none")
        );
    }

    #[test]
    fn two_claims_are_an_error_not_a_guess() {
        let both = vec![
            spec("a", "{ names: [shared] }"),
            spec("b", "{ names: [shared] }"),
        ];
        assert!(matches!(
            resolve_environment("shared", &both),
            Err(ResolveError::Ambiguous { .. })
        ));
        let prefixes = vec![
            spec("a", "{ prefixes: [p-] }"),
            spec("b", "{ prefixes: [p-] }"),
        ];
        assert!(matches!(
            resolve_environment("p-1", &prefixes),
            Err(ResolveError::Ambiguous { .. })
        ));
    }

    #[test]
    fn incident_ids_depend_on_alarm_and_time() {
        let t = DateTime::parse_from_rfc3339("2026-05-01T12:00:00.123Z")
            .unwrap()
            .to_utc();
        assert_eq!(incident_id("a", t), incident_id("a", t));
        assert_ne!(incident_id("a", t), incident_id("b", t));
        assert_ne!(
            incident_id("a", t),
            incident_id("a", t + chrono::Duration::seconds(1))
        );
    }
}
