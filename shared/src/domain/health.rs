//! The health verdict: what RDS, EKS, the HTTP checks and the backup catalog say, judged against the spec.
//!
//! [`assess`] is pure: the health-check function gathers the observations (descriptions, HTTP results, the
//! newest completed backup) and this module decides. Every problem found is a [`HealthReason`]; the verdict
//! is the worst of them: `unhealthy` fails a deployment (and triggers its revert), `degraded` is recorded and
//! reported but does not.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::plan::{ActualState, Resource};
use super::spec::EnvironmentSpec;

/// The replication group statuses in which it does not serve (ElastiCache's "Viewing a cluster's
/// status": `create-failed`, `incompatible-network`, `restore-failed`).
pub const FAILED_REDIS_STATUSES: [&str; 3] =
    ["create-failed", "incompatible-network", "restore-failed"];

/// RDS statuses from which an instance does not recover on its own.
pub const FAILED_RDS_STATUSES: [&str; 8] = [
    "failed",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "storage-full",
];

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check passed.
    Healthy,
    /// Something is off but serving (an instance modifying, a stale backup).
    Degraded,
    /// Something is down or failing.
    Unhealthy,
}

impl Verdict {
    /// `healthy`, `degraded` or `unhealthy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::Unhealthy => "unhealthy",
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReason {
    /// How bad it is (`degraded` or `unhealthy`).
    pub verdict: Verdict,
    /// The check: `rds`, `eks`, `http`, `backup`.
    pub check: String,
    /// What it is about (`rds:<id>`, `eks:<cluster>`, a URL, `env:<name>`).
    pub subject: String,
    /// What was found.
    pub message: String,
}

/// What one HTTP check observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpObservation {
    /// The URL.
    pub url: String,
    /// The status answered, when there was an answer within the budget.
    pub status: Option<u16>,
    /// How long the answer took, milliseconds.
    pub latency_ms: u64,
    /// Whether the body contained the expected string (`None` when not asked, or no answer).
    pub body_matched: Option<bool>,
    /// Why there was no answer (timeout, connection refused, ...).
    pub error: Option<String>,
}

/// The assessment of one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// The environment.
    pub environment: String,
    /// The worst of the reasons, `healthy` when there are none.
    pub verdict: Verdict,
    /// Every problem found.
    pub reasons: Vec<HealthReason>,
    /// How many checks ran (instances, cluster, node groups, HTTP endpoints, backup).
    pub checks: u32,
    /// When it was assessed.
    pub checked_at: DateTime<Utc>,
}

impl HealthReport {
    /// One line per reason, for an error's cause or a terminal.
    pub fn summary(&self) -> String {
        if self.reasons.is_empty() {
            return format!("{} is healthy ({} checks)", self.environment, self.checks);
        }
        let reasons: Vec<String> = self
            .reasons
            .iter()
            .map(|r| {
                format!(
                    "[{}] {} {}: {}",
                    r.verdict.as_str(),
                    r.check,
                    r.subject,
                    r.message
                )
            })
            .collect();
        format!(
            "{} is {}: {}",
            self.environment,
            self.verdict.as_str(),
            reasons.join("; ")
        )
    }
}

/// Everything observed about an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observations<'a> {
    /// What RDS and EKS describe.
    pub actual: &'a ActualState,
    /// The HTTP checks' results, in the spec's order.
    pub http: &'a [HttpObservation],
    /// When the newest completed backup was taken, if any.
    pub newest_backup: Option<DateTime<Utc>>,
    /// The SQL probe's result when the spec asks for one: `Err` says why it failed (already redacted).
    pub sql: Option<Result<String, String>>,
    /// Each replication group's `PING` when the spec asks for them (`health.redis_ping`), by group id:
    /// `Err` says why it failed (already redacted).
    pub redis_ping: &'a [(String, Result<String, String>)],
    /// Now.
    pub now: DateTime<Utc>,
}

struct Reasons(Vec<HealthReason>);

impl Reasons {
    fn add(&mut self, verdict: Verdict, check: &str, subject: impl ToString, message: String) {
        self.0.push(HealthReason {
            verdict,
            check: check.to_owned(),
            subject: subject.to_string(),
            message,
        });
    }
}

/// Judges the observations against the spec.
pub fn assess(spec: &EnvironmentSpec, obs: &Observations<'_>) -> HealthReport {
    let mut r = Reasons(Vec::new());
    let mut checks = 0;
    for db in &spec.rds {
        checks += 1;
        let subject = Resource::Instance {
            identifier: db.identifier.clone(),
        };
        let Some(a) = obs.actual.instance(&db.identifier) else {
            r.add(
                Verdict::Unhealthy,
                "rds",
                &subject,
                "the instance does not exist".into(),
            );
            continue;
        };
        if FAILED_RDS_STATUSES.contains(&a.status.as_str()) {
            r.add(
                Verdict::Unhealthy,
                "rds",
                &subject,
                format!("status is {}", a.status),
            );
        } else if a.status != "available" {
            r.add(
                Verdict::Degraded,
                "rds",
                &subject,
                format!("status is {}, not available", a.status),
            );
        }
        if let Some(want) = db.multi_az
            && a.multi_az != Some(want)
        {
            r.add(
                Verdict::Degraded,
                "rds",
                &subject,
                format!(
                    "Multi-AZ is {}, the spec asks {}",
                    super::readable::yes_no(a.multi_az),
                    super::readable::yes_no(Some(want))
                ),
            );
        }
    }
    for group in &spec.redis {
        checks += 1;
        let subject = Resource::ReplicationGroup {
            id: group.replication_group_id.clone(),
        };
        match obs.actual.replication_group(&group.replication_group_id) {
            None => r.add(
                Verdict::Unhealthy,
                "redis",
                &subject,
                "the replication group does not exist".into(),
            ),
            Some(a) if FAILED_REDIS_STATUSES.contains(&a.status.as_str()) => r.add(
                Verdict::Unhealthy,
                "redis",
                &subject,
                format!("status is {}", a.status),
            ),
            Some(a) if a.status != "available" => r.add(
                Verdict::Degraded,
                "redis",
                &subject,
                format!("status is {}, not available", a.status),
            ),
            Some(_) => {}
        }
        let ping = obs
            .redis_ping
            .iter()
            .find(|(id, _)| id == &group.replication_group_id);
        if let Some((_, Err(why))) = ping {
            r.add(
                Verdict::Unhealthy,
                "redis-ping",
                &subject,
                format!("PING failed: {why}"),
            );
        }
    }
    if let (Some(sql), Some(result)) = (&spec.health.sql, &obs.sql) {
        checks += 1;
        if let Err(why) = result {
            let subject = Resource::Instance {
                identifier: sql.instance.clone(),
            };
            r.add(
                Verdict::Unhealthy,
                "sql",
                &subject,
                format!("the SQL probe failed: {why}"),
            );
        }
    }
    if let Some(eks) = &spec.eks {
        checks += 1;
        let subject = Resource::Cluster {
            name: eks.cluster.clone(),
        };
        match obs
            .actual
            .cluster
            .as_ref()
            .filter(|c| c.name == eks.cluster)
        {
            None => r.add(
                Verdict::Unhealthy,
                "eks",
                &subject,
                "the cluster does not exist".into(),
            ),
            Some(c) => {
                match c.status.as_str() {
                    "ACTIVE" => {}
                    "FAILED" | "DELETING" => r.add(
                        Verdict::Unhealthy,
                        "eks",
                        &subject,
                        format!("status is {}", c.status),
                    ),
                    other => r.add(
                        Verdict::Degraded,
                        "eks",
                        &subject,
                        format!("status is {other}, not ACTIVE"),
                    ),
                }
                for issue in &c.health_issues {
                    r.add(
                        Verdict::Degraded,
                        "eks",
                        &subject,
                        format!("health issue: {issue}"),
                    );
                }
                for ng in &eks.nodegroups {
                    checks += 1;
                    let subject = Resource::Nodegroup {
                        cluster: eks.cluster.clone(),
                        name: ng.name.clone(),
                    };
                    let Some(a) = c.nodegroups.iter().find(|n| n.name == ng.name) else {
                        r.add(
                            Verdict::Unhealthy,
                            "eks",
                            &subject,
                            "the node group does not exist".into(),
                        );
                        continue;
                    };
                    match a.status.as_str() {
                        "ACTIVE" => {}
                        "DEGRADED" | "CREATE_FAILED" | "DELETE_FAILED" | "DELETING" => r.add(
                            Verdict::Unhealthy,
                            "eks",
                            &subject,
                            format!("status is {}", a.status),
                        ),
                        other => r.add(
                            Verdict::Degraded,
                            "eks",
                            &subject,
                            format!("status is {other}, not ACTIVE"),
                        ),
                    }
                    for issue in &a.health_issues {
                        r.add(
                            Verdict::Unhealthy,
                            "eks",
                            &subject,
                            format!("health issue: {issue}"),
                        );
                    }
                    if let (Some(min), Some(max), Some(desired)) = (a.min, a.max, a.desired)
                        && !(min..=max).contains(&desired)
                    {
                        r.add(
                            Verdict::Degraded,
                            "eks",
                            &subject,
                            format!("desired size {desired} is outside {min}..{max}"),
                        );
                    }
                }
            }
        }
    }
    for (check, seen) in spec.health.http.iter().zip(obs.http) {
        checks += 1;
        let problem = match (seen.status, &seen.error) {
            (_, Some(err)) => Some(format!("no answer within {} ms: {err}", check.timeout_ms)),
            (None, None) => Some("no answer".to_owned()),
            (Some(status), None) if status != check.expect_status => Some(format!(
                "answered {status}, expected {}",
                check.expect_status
            )),
            _ if seen.latency_ms > check.timeout_ms => Some(format!(
                "answered in {} ms, over the {} ms budget",
                seen.latency_ms, check.timeout_ms
            )),
            _ if seen.body_matched == Some(false) => Some(format!(
                "the body does not contain \"{}\"",
                check.body_contains.as_deref().unwrap_or_default()
            )),
            _ => None,
        };
        if let Some(message) = problem {
            r.add(Verdict::Unhealthy, "http", &check.url, message);
        }
    }
    let max_age = spec.backup_max_age_minutes();
    if let Some(max_age) = max_age
        && !spec.rds.is_empty()
    {
        checks += 1;
        let subject = Resource::Environment {
            name: spec.environment.clone(),
        };
        match obs.newest_backup {
            None => r.add(
                Verdict::Degraded,
                "backup",
                &subject,
                "no completed backup".into(),
            ),
            Some(at) => {
                let age = (obs.now - at).num_minutes();
                if age > i64::from(max_age) {
                    r.add(
                        Verdict::Degraded,
                        "backup",
                        &subject,
                        format!("the newest backup is {age} minutes old, over the {max_age}-minute target"),
                    );
                }
            }
        }
    }
    let verdict =
        r.0.iter()
            .map(|x| x.verdict)
            .max()
            .unwrap_or(Verdict::Healthy);
    HealthReport {
        environment: spec.environment.clone(),
        verdict,
        reasons: r.0,
        checks,
        checked_at: obs.now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plan::{ActualCluster, ActualInstance, ActualNodegroup};
    use chrono::Duration;

    const SPEC: &str = r#"
environment: staging
rds:
  - { identifier: s-db, engine: postgres, instance_class: db.t4g.medium, multi_az: true, storage_encrypted: true }
eks:
  cluster: s
  nodegroups: [ { name: general, min: 1, max: 3, desired: 2 } ]
health:
  http: [ { url: "http://127.0.0.1:1/health", timeout_ms: 500, body_contains: ok } ]
drill: { rto_target_minutes: 30, rpo_target_minutes: 60, instance_class: db.t4g.small }
"#;

    fn spec() -> EnvironmentSpec {
        EnvironmentSpec::parse(SPEC).unwrap()
    }

    fn good() -> ActualState {
        ActualState {
            instances: vec![ActualInstance {
                identifier: "s-db".into(),
                status: "available".into(),
                multi_az: Some(true),
                ..Default::default()
            }],
            cluster: Some(ActualCluster {
                name: "s".into(),
                status: "ACTIVE".into(),
                nodegroups: vec![ActualNodegroup {
                    name: "general".into(),
                    status: "ACTIVE".into(),
                    min: Some(1),
                    max: Some(3),
                    desired: Some(2),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            replication_groups: Vec::new(),
        }
    }

    fn ok_http() -> Vec<HttpObservation> {
        vec![HttpObservation {
            url: "http://127.0.0.1:1/health".into(),
            status: Some(200),
            latency_ms: 12,
            body_matched: Some(true),
            error: None,
        }]
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-05-01T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn run(
        actual: &ActualState,
        http: &[HttpObservation],
        backup: Option<DateTime<Utc>>,
    ) -> HealthReport {
        assess(
            &spec(),
            &Observations {
                actual,
                http,
                newest_backup: backup,
                sql: None,
                redis_ping: &[],
                now: now(),
            },
        )
    }

    #[test]
    fn all_good_is_healthy() {
        let r = run(&good(), &ok_http(), Some(now() - Duration::minutes(10)));
        assert_eq!(r.verdict, Verdict::Healthy, "{}", r.summary());
        assert_eq!(r.checks, 5);
        assert!(r.summary().contains("healthy"));
    }

    #[test]
    fn rds_failures_and_modifications() {
        let mut a = good();
        a.instances[0].status = "storage-full".into();
        assert_eq!(run(&a, &ok_http(), Some(now())).verdict, Verdict::Unhealthy);
        a.instances[0].status = "modifying".into();
        assert_eq!(run(&a, &ok_http(), Some(now())).verdict, Verdict::Degraded);
        a.instances[0].status = "available".into();
        a.instances[0].multi_az = Some(false);
        let r = run(&a, &ok_http(), Some(now()));
        assert_eq!(r.verdict, Verdict::Degraded);
        assert!(r.reasons[0].message.contains("Multi-AZ"));
        a.instances.clear();
        let r = run(&a, &ok_http(), Some(now()));
        assert_eq!(r.verdict, Verdict::Unhealthy);
        assert_eq!(r.reasons[0].subject, "rds:s-db");
    }

    #[test]
    fn a_redis_group_missing_failed_or_busy() {
        let with_redis = EnvironmentSpec::parse(&format!(
            "{SPEC}redis: [ {{ replication_group_id: s-cache, node_type: cache.t4g.small }} ]\n"
        ))
        .unwrap();
        let assess_with = |a: &ActualState| {
            assess(
                &with_redis,
                &Observations {
                    actual: a,
                    http: &ok_http(),
                    newest_backup: Some(now()),
                    sql: None,
                    redis_ping: &[],
                    now: now(),
                },
            )
        };
        let mut a = good();
        let r = assess_with(&a);
        assert_eq!(r.verdict, Verdict::Unhealthy);
        assert_eq!(r.reasons[0].subject, "redis:s-cache");
        a.replication_groups
            .push(crate::domain::plan::ActualReplicationGroup {
                id: "s-cache".into(),
                status: "modifying".into(),
                ..Default::default()
            });
        assert_eq!(assess_with(&a).verdict, Verdict::Degraded);
        a.replication_groups[0].status = "create-failed".into();
        assert_eq!(assess_with(&a).verdict, Verdict::Unhealthy);
        a.replication_groups[0].status = "available".into();
        assert_eq!(assess_with(&a).verdict, Verdict::Healthy);
        // An available group that does not answer PING is unhealthy, naming why.
        let failed = [(
            "s-cache".to_owned(),
            Err("could not connect to s-cache: timed out".to_owned()),
        )];
        let r = assess(
            &with_redis,
            &Observations {
                actual: &a,
                http: &ok_http(),
                newest_backup: Some(now()),
                sql: None,
                redis_ping: &failed,
                now: now(),
            },
        );
        assert_eq!(r.verdict, Verdict::Unhealthy);
        assert_eq!(r.reasons[0].check, "redis-ping");
        assert!(
            r.reasons[0].message.contains("timed out"),
            "{}",
            r.summary()
        );
    }

    #[test]
    fn eks_status_issues_and_bounds() {
        let mut a = good();
        a.cluster.as_mut().unwrap().status = "UPDATING".into();
        assert_eq!(run(&a, &ok_http(), Some(now())).verdict, Verdict::Degraded);
        let mut a = good();
        a.cluster.as_mut().unwrap().nodegroups[0].health_issues =
            vec!["Ec2LaunchTemplateNotFound: gone".into()];
        assert_eq!(run(&a, &ok_http(), Some(now())).verdict, Verdict::Unhealthy);
        let mut a = good();
        a.cluster.as_mut().unwrap().nodegroups[0].desired = Some(7);
        let r = run(&a, &ok_http(), Some(now()));
        assert_eq!(r.verdict, Verdict::Degraded);
        assert!(r.reasons[0].message.contains("outside 1..3"));
        let mut a = good();
        a.cluster = None;
        assert_eq!(run(&a, &ok_http(), Some(now())).verdict, Verdict::Unhealthy);
    }

    #[test]
    fn http_status_latency_and_body() {
        let mut h = ok_http();
        h[0].status = Some(500);
        let r = run(&good(), &h, Some(now()));
        assert_eq!(r.verdict, Verdict::Unhealthy);
        assert!(
            r.reasons[0].message.contains("answered 500, expected 200"),
            "{}",
            r.summary()
        );
        let mut h = ok_http();
        h[0].latency_ms = 900;
        assert!(
            run(&good(), &h, Some(now())).reasons[0]
                .message
                .contains("budget")
        );
        let mut h = ok_http();
        h[0].body_matched = Some(false);
        assert!(
            run(&good(), &h, Some(now())).reasons[0]
                .message
                .contains("\"ok\"")
        );
        let mut h = ok_http();
        h[0].status = None;
        h[0].error = Some("connection refused".into());
        assert!(
            run(&good(), &h, Some(now())).reasons[0]
                .message
                .contains("connection refused")
        );
    }

    #[test]
    fn backup_freshness_against_the_rpo_target() {
        let r = run(&good(), &ok_http(), Some(now() - Duration::minutes(90)));
        assert_eq!(r.verdict, Verdict::Degraded);
        assert!(r.reasons[0].message.contains("90 minutes old"));
        let r = run(&good(), &ok_http(), None);
        assert_eq!(r.reasons[0].message, "no completed backup");
        // Every reason is kept, and the worst decides.
        let mut h = ok_http();
        h[0].status = Some(503);
        let r = run(&good(), &h, None);
        assert_eq!(r.verdict, Verdict::Unhealthy);
        assert_eq!(r.reasons.len(), 2);
    }
}
