//! The dispatch policy: which GitHub repository and environment (optionally ref and workflow) may start which
//! workflow for which opsplane environment.
//!
//! ```yaml
//! # Environments an untrusted event (a pull request, a workflow_run, no event_name) can never start
//! # anything in (default: [prod]).
//! protected_environments: [prod]
//! rules:
//!   - repository_id: "456789"           # the repository's immutable id (the token's repository_id)
//!     repository_owner_id: "123456"     # its owner's immutable id (the token's repository_owner_id)
//!     repository: acme/infra            # optional, for readers: OWNER/REPO, not compared
//!     github_environment: staging       # the job's GitHub environment, exactly (required)
//!     ref: refs/heads/main              # optional: the token's `ref`, exactly
//!     workflow: acme/infra/.github/workflows/deploy.yml@refs/heads/main   # optional: job_workflow_ref or workflow_ref
//!     workflows: [provision]            # opsplane workflows it may start
//!     environments: [staging]           # opsplane environments it may start them for
//! ```
//!
//! Nothing is a pattern: every value is compared exactly, so no rule can trust "every repository". A
//! request is allowed when one rule matches all of its fields; nothing else is.
//!
//! A repository is named by its ids, which GitHub never reuses: a name can be renamed away, deleted and
//! registered again by anyone, so a rule keyed on a name would trust whoever holds it next. The ids come
//! from the token's `repository_id` and `repository_owner_id` claims, and the subject's ids, when it has
//! the immutable form, must be the same ([`crate::subject`]).

use serde::Deserialize;
use thiserror::Error;

use crate::jwt::GithubClaims;

/// The S3 key of the policy in the state bucket.
pub const POLICY_KEY: &str = "config/dispatch-policy.yaml";

fn id_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_yaml_ng::Value::deserialize(d)? {
        serde_yaml_ng::Value::String(s) => Ok(s),
        serde_yaml_ng::Value::Number(n) => Ok(n.to_string()),
        _ => Err(serde::de::Error::custom(
            "expected the numeric id, e.g. \"456789\"",
        )),
    }
}

/// One permission.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The repository's immutable id.
    #[serde(deserialize_with = "id_string")]
    pub repository_id: String,
    /// The repository owner's immutable id.
    #[serde(deserialize_with = "id_string")]
    pub repository_owner_id: String,
    /// `OWNER/REPO`, for people reading the policy; not compared (a name can change hands).
    #[serde(default)]
    pub repository: Option<String>,
    /// The GitHub environment the job must run in.
    pub github_environment: String,
    /// The git ref the token must carry, if set.
    #[serde(rename = "ref", default)]
    pub git_ref: Option<String>,
    /// The workflow (`job_workflow_ref`, else `workflow_ref`) the token must carry, if set.
    #[serde(default)]
    pub workflow: Option<String>,
    /// The opsplane workflows it may start.
    pub workflows: Vec<String>,
    /// The opsplane environments it may start them for.
    pub environments: Vec<String>,
}

fn default_protected() -> Vec<String> {
    vec!["prod".to_owned()]
}

/// The whole policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Environments no pull request may start anything in.
    #[serde(default = "default_protected")]
    pub protected_environments: Vec<String>,
    /// The permissions; none means nothing is allowed.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// The policy file does not parse or is not safe.
#[derive(Debug, Error)]
pub enum PolicyError {
    /// Not YAML of the documented shape.
    #[error("dispatch policy does not parse: {0}")]
    Parse(#[from] serde_yaml_ng::Error),
    /// A rule is unusable; the message names the rule and field.
    #[error("dispatch policy: rules[{index}].{field}: {reason}")]
    Rule {
        /// The rule's index.
        index: usize,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Why a verified caller may not do what it asked (403).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct Denied(pub String);

fn exact(value: &str) -> bool {
    !value.is_empty() && !value.contains('*') && value.trim() == value
}

impl Policy {
    /// Parses and checks a policy.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let policy: Policy = serde_yaml_ng::from_str(text)?;
        for (index, rule) in policy.rules.iter().enumerate() {
            let bad = |field, reason: &str| PolicyError::Rule {
                index,
                field,
                reason: reason.to_owned(),
            };
            let id =
                |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
            if !id(&rule.repository_id) {
                return Err(bad(
                    "repository_id",
                    "must be the repository's numeric id (gh api repos/OWNER/REPO --jq .id)",
                ));
            }
            if !id(&rule.repository_owner_id) {
                return Err(bad(
                    "repository_owner_id",
                    "must be the owner's numeric id (gh api repos/OWNER/REPO --jq .owner.id)",
                ));
            }
            if let Some(name) = &rule.repository {
                let parts: Vec<&str> = name.split('/').collect();
                if parts.len() != 2 || !parts.iter().all(|p| exact(p)) {
                    return Err(bad("repository", "must be OWNER/REPO, without wildcards"));
                }
            }
            if !exact(&rule.github_environment) {
                return Err(bad(
                    "github_environment",
                    "must be one environment name, without wildcards",
                ));
            }
            if rule.git_ref.as_deref().is_some_and(|r| !exact(r)) {
                return Err(bad(
                    "ref",
                    "must be one ref, e.g. refs/heads/main, without wildcards",
                ));
            }
            if rule.workflow.as_deref().is_some_and(|w| !exact(w)) {
                return Err(bad(
                    "workflow",
                    "must be one workflow ref, without wildcards",
                ));
            }
            if rule.workflows.is_empty() || !rule.workflows.iter().all(|w| exact(w)) {
                return Err(bad(
                    "workflows",
                    "must list at least one workflow, without wildcards",
                ));
            }
            if rule.environments.is_empty() || !rule.environments.iter().all(|e| exact(e)) {
                return Err(bad(
                    "environments",
                    "must list at least one environment, without wildcards",
                ));
            }
        }
        Ok(policy)
    }

    /// Whether `claims` may start `workflow` for `environment`: the rule that allows it, or why not.
    pub fn authorize(
        &self,
        claims: &GithubClaims,
        workflow: &str,
        environment: &str,
    ) -> Result<&Rule, Denied> {
        // The subject's agreement with the repository and its ids was checked with the token
        // (`GithubClaims::check`); a token without the ids cannot be matched to any rule.
        let (Some(repository_id), Some(owner_id)) = (
            claims.repository_id.as_deref(),
            claims.repository_owner_id.as_deref(),
        ) else {
            return Err(Denied(
                "the token carries no repository_id or repository_owner_id claim".to_owned(),
            ));
        };
        if claims.untrusted_event() && self.protected_environments.iter().any(|p| p == environment)
        {
            return Err(Denied(format!(
                "a job started by {} (a pull request, a workflow_run or an unnamed event) can never start a workflow in {environment}",
                claims.event_name.as_deref().unwrap_or("an unnamed event")
            )));
        }
        self.rules
            .iter()
            .find(|r| {
                r.repository_id == repository_id
                    && r.repository_owner_id == owner_id
                    && claims.environment.as_deref() == Some(r.github_environment.as_str())
                    && r.git_ref
                        .as_deref()
                        .is_none_or(|want| claims.git_ref.as_deref() == Some(want))
                    && r.workflow
                        .as_deref()
                        .is_none_or(|want| claims.workflow() == Some(want))
                    && r.workflows.iter().any(|w| w == workflow)
                    && r.environments.iter().any(|e| e == environment)
            })
            .ok_or_else(|| {
                Denied(format!(
                    "no rule allows repository {} (id {repository_id}, owner id {owner_id}; GitHub environment {}, ref {}, \
                     workflow {}) to start {workflow} for {environment}",
                    claims.repository,
                    claims.environment.as_deref().unwrap_or("none"),
                    claims.git_ref.as_deref().unwrap_or("none"),
                    claims.workflow().unwrap_or("none"),
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
rules:
  - repository_id: "2"
    repository_owner_id: 1
    repository: acme/infra
    github_environment: production
    ref: refs/heads/main
    workflow: acme/infra/.github/workflows/deploy.yml@refs/heads/main
    workflows: [provision]
    environments: [prod]
  - repository_id: "2"
    repository_owner_id: "1"
    github_environment: staging
    workflows: [provision, backup]
    environments: [staging]
"#;

    fn claims(environment: &str) -> GithubClaims {
        GithubClaims {
            sub: format!("repo:acme/infra:environment:{environment}"),
            repository: "acme/infra".into(),
            repository_id: Some("2".into()),
            repository_owner_id: Some("1".into()),
            jti: Some("j".into()),
            environment: Some(environment.into()),
            git_ref: Some("refs/heads/main".into()),
            workflow_ref: Some("acme/infra/.github/workflows/deploy.yml@refs/heads/main".into()),
            job_workflow_ref: None,
            actor: Some("jane".into()),
            sha: Some("abc".into()),
            run_id: "42".into(),
            run_attempt: "1".into(),
            event_name: Some("push".into()),
            iat: 0,
            exp: 0,
            aud: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_matching_rule_allows_and_every_field_counts() {
        let p = Policy::parse(POLICY).unwrap();
        assert_eq!(p.protected_environments, ["prod"]);
        assert_eq!(p.rules[0].repository_owner_id, "1");
        assert!(
            p.authorize(&claims("production"), "provision", "prod")
                .is_ok()
        );
        assert!(p.authorize(&claims("staging"), "backup", "staging").is_ok());
        // Another workflow, another environment, another GitHub environment.
        assert!(
            p.authorize(&claims("production"), "backup", "prod")
                .is_err()
        );
        assert!(
            p.authorize(&claims("staging"), "provision", "prod")
                .is_err()
        );
        assert!(
            p.authorize(&claims("staging"), "dr-drill", "staging")
                .is_err()
        );
        // Another ref or workflow file for the prod rule.
        let mut c = claims("production");
        c.git_ref = Some("refs/heads/feature".into());
        assert!(p.authorize(&c, "provision", "prod").is_err());
        let mut c = claims("production");
        c.workflow_ref = Some("acme/infra/.github/workflows/other.yml@refs/heads/main".into());
        assert!(p.authorize(&c, "provision", "prod").is_err());
    }

    #[test]
    fn repositories_are_matched_by_id_never_by_name() {
        let p = Policy::parse(POLICY).unwrap();
        // The same name with other ids (a recycled or transferred name) is refused.
        let mut c = claims("staging");
        c.repository_id = Some("3".into());
        assert!(p.authorize(&c, "backup", "staging").is_err());
        let mut c = claims("staging");
        c.repository_owner_id = Some("9".into());
        assert!(p.authorize(&c, "backup", "staging").is_err());
        // The same ids under a new name (a renamed repository) are still allowed.
        let mut c = claims("staging");
        c.repository = "acme/platform".into();
        assert!(p.authorize(&c, "backup", "staging").is_ok());
        // No ids at all: nothing matches.
        let mut c = claims("staging");
        c.repository_id = None;
        let denied = p.authorize(&c, "backup", "staging").unwrap_err();
        assert!(denied.0.contains("repository_id"), "{denied}");
    }

    #[test]
    fn untrusted_events_never_start_prod_whatever_the_rules() {
        let p = Policy::parse(
            "rules: [{repository_id: 2, repository_owner_id: 1, github_environment: production, workflows: [provision], environments: [prod]}]",
        )
        .unwrap();
        for event in [Some("pull_request"), Some("workflow_run"), None] {
            let mut c = claims("production");
            c.event_name = event.map(str::to_owned);
            let denied = p.authorize(&c, "provision", "prod").unwrap_err();
            assert!(denied.0.contains("can never start"), "{event:?}: {denied}");
        }
        let mut c = claims("production");
        c.sub = "repo:acme/infra:pull_request".into();
        assert!(p.authorize(&c, "provision", "prod").is_err());
        assert!(
            p.authorize(&claims("production"), "provision", "prod")
                .is_ok()
        );
    }

    #[test]
    fn wildcards_missing_ids_and_unknown_fields_are_refused() {
        let err = Policy::parse(
            "rules: [{repository_id: 2, repository_owner_id: 1, repository: 'acme/*', github_environment: prod, workflows: [provision], environments: [prod]}]",
        )
        .unwrap_err();
        assert!(err.to_string().contains("rules[0].repository"), "{err}");
        let err = Policy::parse(
            "rules: [{repository_id: 2, repository_owner_id: 1, github_environment: prod, workflows: [], environments: [prod]}]",
        )
        .unwrap_err();
        assert!(err.to_string().contains("workflows"), "{err}");
        let err = Policy::parse(
            "rules: [{repository_id: 'x', repository_owner_id: 1, github_environment: prod, workflows: [backup], environments: [prod]}]",
        )
        .unwrap_err();
        assert!(err.to_string().contains("rules[0].repository_id"), "{err}");
        // A rule by name only (the old format) does not parse: it would trust whoever holds the name next.
        assert!(
            Policy::parse(
                "rules: [{repository: acme/infra, github_environment: prod, workflows: [backup], environments: [prod]}]"
            )
            .is_err()
        );
        assert!(Policy::parse("rules: [{repo: acme/infra}]").is_err());
        assert!(Policy::parse("{}").unwrap().rules.is_empty());
    }
}
