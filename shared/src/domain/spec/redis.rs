//! An ElastiCache (Redis OSS) replication group of the spec and ElastiCache's rules for it: identifiers,
//! node types, shards and replicas, and the encryption its AUTH token and key depend on. Rules from the
//! CreateReplicationGroup API reference.

use serde::{Deserialize, Serialize};

use super::error::SpecError;
use super::rds_settings::{is_key_reference, is_security_group_id};

/// One Redis replication group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSpec {
    /// The replication group's id.
    pub replication_group_id: String,
    /// Redis OSS engine version, e.g. `"7.1"`.
    #[serde(default)]
    pub engine_version: Option<String>,
    /// Node type, e.g. `cache.t4g.small`.
    pub node_type: String,
    /// Shards (node groups); more than one means cluster mode, which is fixed when the group is made.
    #[serde(default = "one")]
    pub num_node_groups: u32,
    /// Replicas in each shard (0 to 5); with one or more, failover is automatic and Multi-AZ.
    #[serde(default)]
    pub replicas_per_node_group: u32,
    /// The cache subnet group it lives in: its VPC and subnets.
    #[serde(default)]
    pub cache_subnet_group: Option<String>,
    /// VPC security groups (`sg-...`).
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// The cache parameter group, e.g. `default.redis7`.
    #[serde(default)]
    pub parameter_group: Option<String>,
    /// Encryption at rest (fixed when the group is made).
    #[serde(default)]
    pub at_rest_encryption: Option<bool>,
    /// Encryption in transit (TLS).
    #[serde(default)]
    pub transit_encryption: Option<bool>,
    /// The KMS key encrypting it at rest (an ARN, key id or `alias/...`); the AWS-owned key when absent.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// A Secrets Manager secret holding the AUTH token (a string, or JSON with `password`), under
    /// `opsplane/` (the secrets the functions may read): read when the group is made, never in the spec.
    #[serde(default)]
    pub auth_token_secret: Option<String>,
}

fn one() -> u32 {
    1
}

impl RedisSpec {
    /// Whether clients reach it in cluster mode (more than one shard).
    pub fn cluster_mode(&self) -> bool {
        self.num_node_groups > 1
    }
}

/// "A name must contain from 1 to 40 alphanumeric characters or hyphens; the first character must be a
/// letter; a name cannot end with a hyphen or contain two consecutive hyphens" (ReplicationGroupId).
fn check_id(id: &str) -> Result<(), String> {
    let ok = (1..=40).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !id.ends_with('-')
        && !id.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{id}\" is not a replication group id: 1 to 40 letters, digits or hyphens, starting with a letter, \
             without a trailing or doubled hyphen"
        ))
    }
}

fn is_version(v: &str) -> bool {
    !v.is_empty()
        && v.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_secret_reference(arn: &str) -> bool {
    arn.starts_with("arn:aws")
        && arn.split(':').nth(2) == Some("secretsmanager")
        && arn.split(':').count() >= 7
}

/// The problems of one group, each as (field, reason).
fn check(r: &RedisSpec) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Err(reason) = check_id(&r.replication_group_id) {
        out.push(("replication_group_id", reason));
    }
    if r.engine_version.as_deref().is_some_and(|v| !is_version(v)) {
        out.push((
            "engine_version",
            "not a version: digits and dots, e.g. \"7.1\"".to_owned(),
        ));
    }
    if !r.node_type.starts_with("cache.") {
        out.push((
            "node_type",
            format!(
                "\"{}\" is not an ElastiCache node type (e.g. cache.t4g.small)",
                r.node_type
            ),
        ));
    }
    if !(1..=500).contains(&r.num_node_groups) {
        out.push((
            "num_node_groups",
            format!("{} is out of range: 1 to 500 shards", r.num_node_groups),
        ));
    }
    if r.replicas_per_node_group > 5 {
        out.push((
            "replicas_per_node_group",
            format!(
                "{} is out of range: 0 to 5 replicas per shard",
                r.replicas_per_node_group
            ),
        ));
    }
    // Cluster mode needs automatic failover, which needs a replica in each shard.
    if r.cluster_mode() && r.replicas_per_node_group == 0 {
        out.push((
            "replicas_per_node_group",
            "more than one shard (cluster mode) needs automatic failover: at least 1 replica per shard".to_owned(),
        ));
    }
    for group in &r.security_group_ids {
        if !is_security_group_id(group) {
            out.push((
                "security_group_ids",
                format!("\"{group}\" is not a security group id (sg- and 8 or 17 hex digits)"),
            ));
        }
    }
    if let Some(key) = &r.kms_key_id {
        if !is_key_reference(key) {
            out.push((
                "kms_key_id",
                format!("\"{key}\" is not a KMS key ARN, key id or alias/ name"),
            ));
        } else if r.at_rest_encryption != Some(true) {
            out.push((
                "kms_key_id",
                "a key encrypts at rest: set at_rest_encryption: true, or remove kms_key_id"
                    .to_owned(),
            ));
        }
    }
    if let Some(secret) = &r.auth_token_secret {
        if !is_secret_reference(secret) {
            out.push((
                "auth_token_secret",
                "give the Secrets Manager secret's ARN that holds the token; a token is never written in a spec"
                    .to_owned(),
            ));
        } else if r.transit_encryption != Some(true) {
            // "AuthToken ... can be specified only when TransitEncryptionEnabled is true".
            out.push((
                "auth_token_secret",
                "an AUTH token travels only over TLS: set transit_encryption: true".to_owned(),
            ));
        }
    }
    out
}

/// Every problem with the spec's Redis groups, each naming `redis[i].<field>`; ids appear once.
pub(super) fn problems(groups: &[RedisSpec], out: &mut Vec<SpecError>) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, r) in groups.iter().enumerate() {
        for (field, reason) in check(r) {
            out.push(SpecError::invalid(format!("redis[{i}].{field}"), reason));
        }
        if !seen.insert(r.replication_group_id.to_ascii_lowercase()) {
            out.push(SpecError::invalid(
                format!("redis[{i}].replication_group_id"),
                format!(
                    "\"{}\" appears twice; ids are unique",
                    r.replication_group_id
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(yaml: &str) -> Vec<String> {
        let base = "replication_group_id: acme-cache\nnode_type: cache.t4g.small\n";
        let r: RedisSpec = serde_yaml_ng::from_str(&format!("{base}{yaml}")).unwrap();
        let mut out = Vec::new();
        problems(&[r], &mut out);
        out.iter().map(|e| e.field().to_owned()).collect()
    }

    #[test]
    fn an_encrypted_group_with_a_token_by_reference_passes() {
        let yaml = "engine_version: \"7.1\"\nreplicas_per_node_group: 1\ncache_subnet_group: acme-cache\n\
            security_group_ids: [sg-0123456789abcdef0]\nat_rest_encryption: true\ntransit_encryption: true\n\
            kms_key_id: alias/acme-redis\n\
            auth_token_secret: arn:aws:secretsmanager:us-east-1:123456789012:secret:acme/redis-AbCdEf\n";
        assert_eq!(fields(yaml), Vec::<String>::new());
    }

    #[test]
    fn each_refused_setting_names_its_field() {
        for (yaml, field) in [
            ("engine_version: seven\n", "redis[0].engine_version"),
            ("num_node_groups: 0\n", "redis[0].num_node_groups"),
            (
                "replicas_per_node_group: 6\n",
                "redis[0].replicas_per_node_group",
            ),
            ("num_node_groups: 3\n", "redis[0].replicas_per_node_group"),
            (
                "security_group_ids: [cache]\n",
                "redis[0].security_group_ids",
            ),
            ("kms_key_id: alias/acme\n", "redis[0].kms_key_id"),
            (
                "auth_token_secret: arn:aws:secretsmanager:us-east-1:1:secret:t\n",
                "redis[0].auth_token_secret",
            ),
            (
                "transit_encryption: true\nauth_token_secret: hunter2\n",
                "redis[0].auth_token_secret",
            ),
        ] {
            assert_eq!(fields(yaml), vec![field.to_owned()], "{yaml}");
        }
        let r: RedisSpec =
            serde_yaml_ng::from_str("replication_group_id: 9cache-\nnode_type: t4g.small\n")
                .unwrap();
        let mut out = Vec::new();
        problems(&[r.clone(), r], &mut out);
        let fields: Vec<_> = out.iter().map(|e| e.field().to_owned()).collect();
        assert_eq!(
            fields,
            [
                "redis[0].replication_group_id",
                "redis[0].node_type",
                "redis[1].replication_group_id",
                "redis[1].node_type",
                "redis[1].replication_group_id"
            ]
        );
    }
}
