//! The KMS key ARNs opsplane reads: the control plane's customer key (bootstrap) and a spec's copy key.

/// Checks a KMS key ARN: `arn:<partition>:kms:<region>:<account>:key/<key-id>`. A key ARN, not an alias or
/// a bare id: DynamoDB and S3 report the key they use by ARN, and bootstrap compares against it.
pub fn validate_kms_key_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "kms"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5]
            .strip_prefix("key/")
            .is_some_and(|id| !id.is_empty());
    if ok {
        Ok(())
    } else {
        Err("a KMS key ARN, arn:aws:kms:<region>:<account>:key/<key-id> (not an alias or a bare key id)".to_owned())
    }
}

/// The region of a KMS key ARN (its fourth field), `None` when `arn` is not one.
pub fn kms_key_region(arn: &str) -> Option<&str> {
    validate_kms_key_arn(arn).ok()?;
    arn.split(':').nth(3)
}
