//! GitHub's `sub` claim in both of its default formats, and its agreement with the token's other claims.
//!
//! - Name only (repositories created before 2026-07-15 that have not opted in):
//!   `repo:OWNER/REPO:environment:NAME`, `repo:OWNER/REPO:ref:refs/heads/main`, `repo:OWNER/REPO:pull_request`.
//! - Immutable (repositories created, renamed or transferred on or after 2026-07-15, or opted in):
//!   `repo:OWNER@OWNER_ID/REPO@REPO_ID:environment:NAME`. GitHub appends the owner's and the repository's
//!   numeric ids, which are never reused, so the subject keeps naming the same repository after a rename or
//!   after someone registers a deleted name ("Immutable subject claims", GitHub's OpenID Connect docs).
//!
//! In the subject's values a `:` is sent as `%3A` (an environment named `a:b` is `environment:a%3Ab`), so the
//! fields split on `:` and each value is decoded afterwards. An organisation's customised subject template
//! may append more `key:value` pairs after the context (`...:environment:prod:job_workflow_ref:...`); they
//! are not read here (the policy reads those claims themselves).

use thiserror::Error;

/// A parsed `sub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The owner's login.
    pub owner: String,
    /// The owner's immutable id, in the immutable format.
    pub owner_id: Option<String>,
    /// The repository's name (without the owner).
    pub repo: String,
    /// The repository's immutable id, in the immutable format.
    pub repo_id: Option<String>,
    /// What follows the repository: `environment`, `ref`, `pull_request`, ...
    pub context: String,
    /// The context's value, decoded (`%3A` → `:`), e.g. the environment's name; `None` for `pull_request`.
    pub value: Option<String>,
}

/// The subject is not one of GitHub's formats, or disagrees with the token's other claims (a 401: GitHub
/// never signs such a token).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SubjectError {
    /// Not `repo:OWNER[@ID]/REPO[@ID]:...`.
    #[error(
        "`sub` is not a GitHub Actions subject (repo:OWNER/REPO:... or repo:OWNER@ID/REPO@ID:...)"
    )]
    Format,
    /// The subject names another repository than `repository`.
    #[error("`sub` names another repository than the `repository` claim")]
    Repository,
    /// The subject's ids are not the `repository_id` / `repository_owner_id` claims.
    #[error("`sub` carries other ids than the `repository_id` and `repository_owner_id` claims")]
    Ids,
    /// The subject's environment is not the `environment` claim.
    #[error("`sub` names another environment than the `environment` claim")]
    Environment,
}

/// `%3A` (either case) back to `:`; nothing else is encoded by GitHub.
fn decode(value: &str) -> String {
    value.replace("%3A", ":").replace("%3a", ":")
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `NAME` or `NAME@ID`.
fn name_and_id(part: &str) -> Result<(String, Option<String>), SubjectError> {
    match part.split_once('@') {
        None if !part.is_empty() => Ok((part.to_owned(), None)),
        Some((name, id)) if !name.is_empty() && digits(id) => {
            Ok((name.to_owned(), Some(id.to_owned())))
        }
        _ => Err(SubjectError::Format),
    }
}

impl Subject {
    /// Parses `sub` in either format.
    pub fn parse(sub: &str) -> Result<Self, SubjectError> {
        let rest = sub.strip_prefix("repo:").ok_or(SubjectError::Format)?;
        let mut fields = rest.split(':');
        let repository = fields.next().ok_or(SubjectError::Format)?;
        let context = fields.next().ok_or(SubjectError::Format)?;
        let value = fields.next().map(decode);
        let (owner, repo) = repository.split_once('/').ok_or(SubjectError::Format)?;
        if context.is_empty() || repo.contains('/') {
            return Err(SubjectError::Format);
        }
        let (owner, owner_id) = name_and_id(owner)?;
        let (repo, repo_id) = name_and_id(repo)?;
        if owner_id.is_some() != repo_id.is_some() {
            return Err(SubjectError::Format);
        }
        Ok(Self {
            owner,
            owner_id,
            repo,
            repo_id,
            context: decode(context),
            value,
        })
    }

    /// Whether the subject is the immutable format (carries both ids).
    pub fn is_immutable(&self) -> bool {
        self.repo_id.is_some()
    }

    /// Whether this is a pull request's subject.
    pub fn is_pull_request(&self) -> bool {
        self.context == "pull_request"
    }

    /// Checks the subject against the token's `repository`, `repository_id`, `repository_owner_id` and
    /// `environment` claims: a subject and claims that disagree did not come from one GitHub job.
    pub fn check(
        &self,
        repository: &str,
        repository_id: Option<&str>,
        repository_owner_id: Option<&str>,
        environment: Option<&str>,
    ) -> Result<(), SubjectError> {
        if format!("{}/{}", self.owner, self.repo) != repository {
            return Err(SubjectError::Repository);
        }
        if let (Some(id), Some(owner_id)) = (&self.repo_id, &self.owner_id)
            && (repository_id != Some(id.as_str())
                || repository_owner_id != Some(owner_id.as_str()))
        {
            return Err(SubjectError::Ids);
        }
        if self.context == "environment" && self.value.as_deref() != environment {
            return Err(SubjectError::Environment);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_parse_and_values_are_decoded() {
        let old = Subject::parse("repo:acme/infra:environment:staging").unwrap();
        assert_eq!(
            (
                old.owner.as_str(),
                old.repo.as_str(),
                old.repo_id.as_deref()
            ),
            ("acme", "infra", None)
        );
        assert!(!old.is_immutable());
        assert_eq!(old.value.as_deref(), Some("staging"));

        let new = Subject::parse("repo:acme@123456/infra@456789:environment:prod%3Aeu").unwrap();
        assert_eq!(new.owner_id.as_deref(), Some("123456"));
        assert_eq!(new.repo_id.as_deref(), Some("456789"));
        assert_eq!(new.context, "environment");
        assert_eq!(new.value.as_deref(), Some("prod:eu"));
        assert!(new.is_immutable());

        let r = Subject::parse("repo:acme@1/infra@2:ref:refs/heads/main").unwrap();
        assert_eq!(r.value.as_deref(), Some("refs/heads/main"));
        // A customised template's further pairs do not become part of the environment.
        let custom = Subject::parse(
            "repo:acme/infra:environment:prod:job_workflow_ref:acme/ci/.github/workflows/d.yml@v1",
        )
        .unwrap();
        assert_eq!(custom.value.as_deref(), Some("prod"));
        assert!(
            Subject::parse("repo:acme/infra:pull_request")
                .unwrap()
                .is_pull_request()
        );
    }

    #[test]
    fn malformed_subjects_are_refused() {
        for bad in [
            "acme/infra:environment:x",
            "repo:acme:environment:x",
            "repo:acme/infra",
            "repo:acme@/infra@2:environment:x",
            "repo:acme@1/infra:environment:x",
            "repo:acme@x/infra@2:environment:x",
            "repo:acme/infra/extra:environment:x",
        ] {
            assert_eq!(Subject::parse(bad), Err(SubjectError::Format), "{bad}");
        }
    }

    #[test]
    fn the_subject_must_agree_with_the_claims() {
        let s = Subject::parse("repo:acme@1/infra@2:environment:prod").unwrap();
        assert!(
            s.check("acme/infra", Some("2"), Some("1"), Some("prod"))
                .is_ok()
        );
        assert_eq!(
            s.check("acme/infra", Some("3"), Some("1"), Some("prod")),
            Err(SubjectError::Ids)
        );
        assert_eq!(
            s.check("evil/infra", Some("2"), Some("1"), Some("prod")),
            Err(SubjectError::Repository)
        );
        assert_eq!(
            s.check("acme/infra", Some("2"), Some("1"), Some("staging")),
            Err(SubjectError::Environment)
        );
    }
}
