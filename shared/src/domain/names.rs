//! Names opsplane derives: short ids from execution ARNs, and Step Functions execution names.

use sha2::{Digest, Sha256};

/// A short id derived from an execution ARN: the same execution (a retried task) gets the same id, so
/// snapshot, scratch-instance and deployment names are idempotent.
pub fn short_id(execution: &str) -> String {
    hex::encode(&Sha256::digest(execution.as_bytes())[..5])
}

/// The longest execution name Step Functions accepts (`StartExecution`'s `name`).
pub const MAX_EXECUTION_NAME: usize = 80;

/// `part` with every character Step Functions refuses in an execution name (anything but `[A-Za-z0-9_-]`:
/// AWS also refuses whitespace, brackets, wildcards, punctuation and control characters) replaced by `-`.
pub fn execution_name_part(part: &str) -> String {
    part.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_stable_and_short() {
        let a = short_id("arn:aws:states:us-east-1:1:execution:backup:run-1");
        assert_eq!(
            a,
            short_id("arn:aws:states:us-east-1:1:execution:backup:run-1")
        );
        assert_ne!(
            a,
            short_id("arn:aws:states:us-east-1:1:execution:backup:run-2")
        );
        assert_eq!(a.len(), 10);
    }

    #[test]
    fn execution_name_parts_keep_only_what_aws_accepts() {
        assert_eq!(execution_name_part("acme/infra run#1"), "acme-infra-run-1");
        assert_eq!(execution_name_part("prod_1-a"), "prod_1-a");
    }
}
