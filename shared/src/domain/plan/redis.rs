//! A Redis replication group against the spec: created when missing; its node type, engine version,
//! parameter group, security groups and replicas changed in place as ElastiCache allows; what it fixes at
//! creation (shards, subnet group, encryption, key) blocked; and, in a protected environment, a group not
//! encrypted at rest and in transit blocked. Rules from the ModifyReplicationGroup, IncreaseReplicaCount and
//! DecreaseReplicaCount API references and "Upgrading engine versions" (ElastiCache User Guide: no
//! downgrade).

use super::actual::ActualReplicationGroup;
use super::change::{Change, ChangeKind, Finding, Resource, Severity, change};
use crate::domain::spec::RedisSpec;

fn version_parts(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

fn block(r: &Resource, rule: &str, message: String) -> Finding {
    Finding {
        severity: Severity::Block,
        resource: r.clone(),
        rule: rule.to_owned(),
        message,
    }
}

/// What the spec asks of a group when it is created, in one line.
fn created_text(g: &RedisSpec) -> String {
    format!(
        "{} shards={} replicas={} engine={} at_rest={} in_transit={}",
        g.node_type,
        g.num_node_groups,
        g.replicas_per_node_group,
        g.engine_version.as_deref().unwrap_or("default"),
        g.at_rest_encryption.unwrap_or(false),
        g.transit_encryption.unwrap_or(false),
    )
}

/// The policy of a protected environment: its data encrypted at rest and in transit.
fn protected(r: &Resource, g: &RedisSpec) -> Option<Finding> {
    let missing: Vec<&str> = [
        (g.at_rest_encryption != Some(true)).then_some("at rest"),
        (g.transit_encryption != Some(true)).then_some("in transit"),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!missing.is_empty()).then(|| {
        block(
            r,
            "redis-encryption",
            format!(
                "a protected environment's cache is encrypted at rest and in transit; this one is not encrypted {}: set at_rest_encryption and transit_encryption to true",
                missing.join(" nor ")
            ),
        )
    })
}

/// The changes and findings that bring `have` (absent: to be created) to `want`.
pub(super) fn plan(
    want: &RedisSpec,
    have: Option<&ActualReplicationGroup>,
    protected_env: bool,
) -> (Vec<Change>, Vec<Finding>) {
    let r = Resource::ReplicationGroup {
        id: want.replication_group_id.clone(),
    };
    let mut findings: Vec<Finding> = protected_env
        .then(|| protected(&r, want))
        .flatten()
        .into_iter()
        .collect();
    let Some(have) = have else {
        let create = change(
            &r,
            ChangeKind::Create,
            "resource",
            None,
            created_text(want),
            true,
            "a new replication group: nothing that exists changes",
        );
        return (vec![create], findings);
    };
    let mut changes = Vec::new();
    let mut modify = |field: &str, from: Option<String>, to: &str, reason: &str| {
        changes.push(change(
            &r,
            ChangeKind::Modify,
            field,
            from,
            to.to_owned(),
            true,
            reason,
        ));
    };
    if have.node_type.as_deref() != Some(want.node_type.as_str()) {
        modify(
            "node_type",
            have.node_type.clone(),
            &want.node_type,
            "ElastiCache scales the nodes online and can scale them back",
        );
    }
    if let Some(group) = &want.parameter_group
        && have.parameter_group.as_ref() != Some(group)
    {
        modify(
            "parameter_group",
            have.parameter_group.clone(),
            group,
            "a parameter group is swapped in place and can be set back",
        );
    }
    let mut groups = want.security_group_ids.clone();
    groups.sort();
    if !groups.is_empty() && groups != have.security_group_ids {
        modify(
            "security_group_ids",
            Some(have.security_group_ids.join(",")),
            &groups.join(","),
            "security groups change at once and can be changed back",
        );
    }
    if want.replicas_per_node_group != have.replicas_per_node_group {
        modify(
            "replicas_per_node_group",
            Some(have.replicas_per_node_group.to_string()),
            &want.replicas_per_node_group.to_string(),
            "replicas are added or removed online (IncreaseReplicaCount, DecreaseReplicaCount) and can be again",
        );
    }
    if let (Some(to), Some(from)) = (&want.engine_version, &have.engine_version) {
        match version_parts(to).cmp(&version_parts(from)) {
            std::cmp::Ordering::Greater => changes.push(change(
                &r,
                ChangeKind::Upgrade,
                "engine_version",
                Some(from.clone()),
                to.clone(),
                false,
                "ElastiCache upgrades the engine online but never downgrades it",
            )),
            std::cmp::Ordering::Less => findings.push(block(
                &r,
                "downgrade",
                format!("engine version {from} cannot be downgraded to {to}"),
            )),
            std::cmp::Ordering::Equal => {}
        }
    }
    let fixed = [
        (
            "num_node_groups",
            Some(have.num_node_groups.to_string()),
            Some(want.num_node_groups.to_string()),
        ),
        (
            "cache_subnet_group",
            have.cache_subnet_group.clone(),
            want.cache_subnet_group.clone(),
        ),
        (
            "at_rest_encryption",
            Some(have.at_rest_encryption.to_string()),
            want.at_rest_encryption.map(|b| b.to_string()),
        ),
        (
            "transit_encryption",
            Some(have.transit_encryption.to_string()),
            want.transit_encryption.map(|b| b.to_string()),
        ),
    ];
    for (field, now, asked) in fixed {
        if let (Some(now), Some(asked)) = (now, asked)
            && now != asked
        {
            findings.push(block(
                &r,
                "redis-replacement",
                format!(
                    "a replication group's {field} is fixed when it is made ({now}, the spec asks {asked}): restore a snapshot into a new group with it, move the clients, then remove this one"
                ),
            ));
        }
    }
    if let (Some(asked), Some(now)) = (&want.kms_key_id, &have.kms_key_id)
        && !now.ends_with(asked.trim_start_matches("alias/"))
        && !asked.starts_with("alias/")
    {
        findings.push(block(
            &r,
            "storage-key",
            format!("the cache is encrypted with {now} and the spec asks {asked}: ElastiCache cannot change a group's key"),
        ));
    }
    (changes, findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> RedisSpec {
        serde_yaml_ng::from_str(&format!(
            "replication_group_id: acme-cache\nnode_type: cache.t4g.small\nengine_version: \"7.1\"\n\
             replicas_per_node_group: 1\nat_rest_encryption: true\ntransit_encryption: true\n{extra}"
        ))
        .unwrap()
    }

    fn matching(s: &RedisSpec) -> ActualReplicationGroup {
        ActualReplicationGroup {
            id: s.replication_group_id.clone(),
            status: "available".into(),
            node_type: Some(s.node_type.clone()),
            engine_version: s.engine_version.clone(),
            num_node_groups: s.num_node_groups,
            replicas_per_node_group: s.replicas_per_node_group,
            at_rest_encryption: true,
            transit_encryption: true,
            ..ActualReplicationGroup::default()
        }
    }

    #[test]
    fn a_missing_group_is_created_and_a_matching_one_plans_nothing() {
        let s = spec("");
        let (changes, findings) = plan(&s, None, true);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Create);
        assert!(findings.is_empty());
        let (changes, findings) = plan(&s, Some(&matching(&s)), true);
        assert!(changes.is_empty() && findings.is_empty());
    }

    #[test]
    fn node_type_replicas_and_groups_change_in_place_an_upgrade_waits_and_fixed_settings_block() {
        let s = spec("security_group_ids: [sg-0123456789abcdef0]\n");
        let mut have = matching(&s);
        have.node_type = Some("cache.t4g.micro".into());
        have.replicas_per_node_group = 2;
        have.engine_version = Some("7.0".into());
        let (changes, findings) = plan(&s, Some(&have), false);
        let fields: Vec<_> = changes
            .iter()
            .map(|c| (c.field.as_str(), c.reversible))
            .collect();
        assert_eq!(
            fields,
            [
                ("node_type", true),
                ("security_group_ids", true),
                ("replicas_per_node_group", true),
                ("engine_version", false)
            ]
        );
        assert!(findings.is_empty());

        have.engine_version = Some("7.2".into());
        have.transit_encryption = false;
        have.num_node_groups = 2;
        let (_, findings) = plan(&s, Some(&have), false);
        let rules: Vec<_> = findings.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(
            rules,
            ["downgrade", "redis-replacement", "redis-replacement"]
        );
    }

    #[test]
    fn a_protected_environment_blocks_a_cache_not_encrypted_in_transit() {
        let s: RedisSpec = serde_yaml_ng::from_str(
            "replication_group_id: acme-cache\nnode_type: cache.t4g.small\nat_rest_encryption: true\n",
        )
        .unwrap();
        let (_, findings) = plan(&s, None, true);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule, "redis-encryption");
        assert!(
            findings[0].message.contains("in transit"),
            "{}",
            findings[0].message
        );
        assert!(plan(&s, None, false).1.is_empty());
    }
}
