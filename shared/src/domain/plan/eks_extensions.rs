//! The cluster's add-ons and access entries against the spec: an add-on installed, upgraded (EKS never
//! takes one back: "You can't downgrade an add-on", UpdateAddon) or reconfigured in place; a principal
//! admitted and its access policies associated.

use std::cmp::Ordering;

use super::actual::ActualCluster;
use super::change::{Change, ChangeKind, Finding, Resource, Severity, change};
use crate::domain::spec::{AccessEntrySpec, EksSpec};

/// `v1.18.3-eksbuild.1` as numbers: `[1, 18, 3, 1]`.
fn version_numbers(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The add-on changes and findings that bring `a`'s add-ons to the spec's.
pub(super) fn addons(eks: &EksSpec, a: &ActualCluster) -> (Vec<Change>, Vec<Finding>) {
    let mut changes = Vec::new();
    let mut findings = Vec::new();
    for (name, want) in &eks.addons {
        let r = Resource::Addon {
            cluster: eks.cluster.clone(),
            name: name.clone(),
        };
        let Some(have) = a.addons.get(name) else {
            changes.push(change(
                &r,
                ChangeKind::Create,
                "resource",
                None,
                want.version
                    .clone()
                    .unwrap_or_else(|| "default version".to_owned()),
                true,
                "a new add-on: nothing that exists changes",
            ));
            continue;
        };
        if let (Some(w), Some(h)) = (&want.version, &have.version) {
            match version_numbers(w).cmp(&version_numbers(h)) {
                Ordering::Greater => changes.push(change(
                    &r,
                    ChangeKind::Upgrade,
                    "version",
                    Some(h.clone()),
                    w.clone(),
                    false,
                    "EKS cannot take an add-on back to an older version",
                )),
                Ordering::Less => findings.push(Finding {
                    severity: Severity::Block,
                    resource: r.clone(),
                    rule: "downgrade".to_owned(),
                    message: format!(
                        "add-on {name} {h} cannot be downgraded to {w}: EKS refuses it"
                    ),
                }),
                Ordering::Equal => {}
            }
        }
        if let Some(w) = &want.configuration
            && have.configuration.as_ref() != Some(w)
        {
            changes.push(change(
                &r,
                ChangeKind::Modify,
                "configuration",
                have.configuration.as_ref().map(ToString::to_string),
                w.to_string(),
                true,
                "configuration values change in place and can be set back",
            ));
        }
        if let Some(w) = &want.service_account_role_arn
            && have.service_account_role_arn.as_ref() != Some(w)
        {
            changes.push(change(
                &r,
                ChangeKind::Modify,
                "service_account_role_arn",
                have.service_account_role_arn.clone(),
                w.clone(),
                true,
                "the service account's role changes in place and can be set back",
            ));
        }
    }
    (changes, findings)
}

fn entry_text(entry: &AccessEntrySpec) -> String {
    let policies: Vec<String> = entry
        .policies
        .iter()
        .map(|p| {
            let name = p.policy_arn.rsplit('/').next().unwrap_or(&p.policy_arn);
            if p.namespaces.is_empty() {
                name.to_owned()
            } else {
                format!("{name}@{}", p.namespaces.join("+"))
            }
        })
        .collect();
    format!(
        "groups={} policies={}",
        entry.kubernetes_groups.join(","),
        policies.join(",")
    )
}

/// The access entries to create and the policies to associate.
pub(super) fn access_entries(eks: &EksSpec, a: &ActualCluster) -> Vec<Change> {
    let mut changes = Vec::new();
    for entry in &eks.access_entries {
        let r = Resource::AccessEntry {
            cluster: eks.cluster.clone(),
            principal: entry.principal_arn.clone(),
        };
        let Some(have) = a.access_entries.get(&entry.principal_arn) else {
            changes.push(change(
                &r,
                ChangeKind::Create,
                "resource",
                None,
                entry_text(entry),
                true,
                "a new access entry: nothing that exists changes",
            ));
            continue;
        };
        let mut groups = entry.kubernetes_groups.clone();
        groups.sort();
        if groups != have.kubernetes_groups {
            changes.push(change(
                &r,
                ChangeKind::Modify,
                "kubernetes_groups",
                Some(have.kubernetes_groups.join(",")),
                groups.join(","),
                true,
                "an access entry's Kubernetes groups are replaced in place (UpdateAccessEntry) and can be set back",
            ));
        }
        let mut want = entry.policies.clone();
        for p in &mut want {
            p.namespaces.sort();
        }
        want.sort();
        if want != have.policies {
            let mut now = entry.clone();
            now.policies = have.policies.clone();
            changes.push(change(
                &r,
                ChangeKind::Modify,
                "policies",
                Some(entry_text(&now)),
                entry_text(entry),
                true,
                "access policies are associated and disassociated in place and can be changed back",
            ));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_on_versions_compare_by_their_numbers() {
        assert_eq!(version_numbers("v1.18.3-eksbuild.1"), [1, 18, 3, 1]);
        assert!(version_numbers("v1.18.10-eksbuild.1") > version_numbers("v1.18.3-eksbuild.2"));
    }
}
