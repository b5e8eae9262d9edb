//! The EKS cluster's endpoint, logging and security groups and its node groups' labels, taints, AMI,
//! capacity, disk and launch template against the spec: what EKS changes in place (`UpdateClusterConfig`,
//! `UpdateNodegroupConfig`, `UpdateNodegroupVersion`) and what is fixed when a node group is created.

use std::collections::BTreeMap;

use super::actual::{ActualCluster, ActualNodegroup};
use super::change::{Change, ChangeKind, Finding, Resource, Severity, change};
use crate::domain::spec::{EVERYONE, EksSpec, NodegroupSpec, TaintSpec};

fn modify(r: &Resource, field: &str, from: String, to: String, reason: &str) -> Change {
    let from = (!from.is_empty()).then_some(from);
    change(r, ChangeKind::Modify, field, from, to, true, reason)
}

/// `public=<bool> private=<bool> cidrs=<list>`: the endpoint as one value, so that one update sets it.
fn endpoint_text(public: Option<bool>, private: Option<bool>, cidrs: &[String]) -> String {
    let b = |v: Option<bool>| v.map_or("-".to_owned(), |v| v.to_string());
    let cidrs = if cidrs.is_empty() {
        "-".to_owned()
    } else {
        cidrs.join(",")
    };
    format!("public={} private={} cidrs={cidrs}", b(public), b(private))
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// The cluster's endpoint, logging, subnet and security group changes, all made in place.
pub(super) fn cluster(r: &Resource, eks: &EksSpec, a: &ActualCluster) -> Vec<Change> {
    let mut changes = Vec::new();
    let have = (
        a.endpoint_public_access,
        a.endpoint_private_access,
        a.public_access_cidrs.clone(),
    );
    let want = (
        eks.endpoint_public_access.or(have.0),
        eks.endpoint_private_access.or(have.1),
        if eks.public_access_cidrs.is_empty() {
            have.2.clone()
        } else {
            sorted(&eks.public_access_cidrs)
        },
    );
    if want != have {
        changes.push(modify(
            r,
            "endpoint",
            endpoint_text(have.0, have.1, &have.2),
            endpoint_text(want.0, want.1, &want.2),
            "endpoint access changes in place (the control plane UPDATING for minutes) and can be changed back",
        ));
    }
    if let Some(types) = &eks.logging {
        let want = sorted(types);
        if want != a.logging {
            changes.push(modify(
                r,
                "logging",
                a.logging.join(","),
                if want.is_empty() {
                    "off".to_owned()
                } else {
                    want.join(",")
                },
                "control plane logging changes in place and can be changed back",
            ));
        }
    }
    // Since October 2023 EKS moves a running control plane's network interfaces to other subnets (of the
    // same VPC) or security groups in place (UpdateClusterConfig, "choose different subnets and security
    // groups for the cluster").
    let network = [
        (
            "subnet_ids",
            &eks.subnet_ids,
            &a.subnet_ids,
            "EKS moves the control plane's network interfaces to these subnets in place (they must be in the cluster's VPC, two Availability Zones at least) and can move them back",
        ),
        (
            "security_group_ids",
            &eks.security_group_ids,
            &a.security_group_ids,
            "EKS puts these security groups on the control plane's network interfaces in place and can put the old ones back",
        ),
    ];
    for (field, want, have, reason) in network {
        let want = sorted(want);
        // A cluster always has subnets: none seen means none read (an export from before they were kept).
        let unread = field == "subnet_ids" && have.is_empty();
        if !want.is_empty() && !unread && &want != have {
            changes.push(modify(r, field, have.join(","), want.join(","), reason));
        }
    }
    changes
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn taints_text(taints: &[TaintSpec]) -> String {
    taints
        .iter()
        .map(|t| {
            format!(
                "{}={}:{}",
                t.key,
                t.value.as_deref().unwrap_or(""),
                t.effect
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A node group's label, taint and launch template version changes, and a blocking finding for each
/// setting fixed at creation that differs.
pub(super) fn nodegroup(
    r: &Resource,
    ng: &NodegroupSpec,
    a: &ActualNodegroup,
) -> (Vec<Change>, Vec<Finding>) {
    let mut changes = Vec::new();
    let mut findings = Vec::new();
    if ng.labels != a.labels {
        changes.push(modify(
            r,
            "labels",
            labels_text(&a.labels),
            labels_text(&ng.labels),
            "labels change in place on the running nodes and can be changed back",
        ));
    }
    let mut taints = ng.taints.clone();
    taints.sort();
    if taints != a.taints {
        changes.push(modify(
            r,
            "taints",
            taints_text(&a.taints),
            taints_text(&taints),
            "taints change in place on the running nodes and can be changed back",
        ));
    }
    let fixed = [
        ("ami_type", ng.ami_type.clone(), a.ami_type.clone()),
        (
            "capacity_type",
            ng.capacity_type.clone(),
            a.capacity_type.clone(),
        ),
        (
            "disk_size",
            ng.disk_size.map(|d| d.to_string()),
            a.disk_size.map(|d| d.to_string()),
        ),
        (
            "launch_template",
            ng.launch_template
                .as_ref()
                .and_then(|t| t.name.clone().or(t.id.clone())),
            a.launch_template.as_ref().and_then(|t| {
                // EKS reports both; the spec names one.
                let wanted_by_id = ng.launch_template.as_ref().is_some_and(|w| w.id.is_some());
                if wanted_by_id {
                    t.id.clone()
                } else {
                    t.name.clone()
                }
            }),
        ),
    ];
    for (field, want, have) in fixed {
        if let (Some(want), Some(have)) = (want, have)
            && want != have
        {
            findings.push(Finding {
                severity: Severity::Block,
                resource: r.clone(),
                rule: "nodegroup-replacement".to_owned(),
                message: format!(
                    "a managed node group's {field} is fixed when it is created ({have}, the spec asks {want}): add a node group with it, move the workloads, then remove this one"
                ),
            });
        }
    }
    if let (Some(want), Some(have)) = (
        ng.launch_template.as_ref().and_then(|t| t.version.clone()),
        a.launch_template.as_ref().and_then(|t| t.version.clone()),
    ) && want != have
    {
        changes.push(change(
            r,
            ChangeKind::Upgrade,
            "launch_template_version",
            Some(have),
            want,
            true,
            "the nodes are replaced, rolling, from the template's version; an earlier version can be rolled back to",
        ));
    }
    (changes, findings)
}

/// The policy of a protected environment: an API endpoint open to the whole internet blocks.
pub(super) fn protected_endpoint(r: &Resource, eks: &EksSpec) -> Option<Finding> {
    let open = eks.endpoint_public_access == Some(true)
        && (eks.public_access_cidrs.is_empty()
            || eks.public_access_cidrs.iter().any(|c| c == EVERYONE));
    open.then(|| Finding {
        severity: Severity::Block,
        resource: r.clone(),
        rule: "public-endpoint".to_owned(),
        message: format!(
            "the cluster's API endpoint would be public to {EVERYONE} in a protected environment: set endpoint_public_access: false, or public_access_cidrs to your networks"
        ),
    })
}
