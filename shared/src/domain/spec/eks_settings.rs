//! The checks on the EKS cluster's endpoint, logging and security groups and on its node groups' AMI,
//! capacity, disk, labels, taints and launch template: the values and combinations EKS refuses
//! (CreateCluster's, CreateNodegroup's and UpdateClusterConfig's constraints), each naming the field.

use super::error::SpecError;
use super::rds_settings::is_security_group_id;
use super::resources::{EksSpec, NodegroupSpec};

/// The control plane's log types.
pub const LOG_TYPES: [&str; 5] = [
    "api",
    "audit",
    "authenticator",
    "controllerManager",
    "scheduler",
];
/// The capacity a managed node group buys.
const CAPACITY_TYPES: [&str; 3] = ["ON_DEMAND", "SPOT", "CAPACITY_BLOCK"];
/// The AMI types of managed node groups (Nodegroup's `amiType` in the EKS API reference).
const AMI_TYPES: [&str; 18] = [
    "AL2_x86_64",
    "AL2_x86_64_GPU",
    "AL2_ARM_64",
    "CUSTOM",
    "BOTTLEROCKET_ARM_64",
    "BOTTLEROCKET_x86_64",
    "BOTTLEROCKET_ARM_64_FIPS",
    "BOTTLEROCKET_x86_64_FIPS",
    "BOTTLEROCKET_ARM_64_NVIDIA",
    "BOTTLEROCKET_x86_64_NVIDIA",
    "WINDOWS_CORE_2019_x86_64",
    "WINDOWS_FULL_2019_x86_64",
    "WINDOWS_CORE_2022_x86_64",
    "WINDOWS_FULL_2022_x86_64",
    "AL2023_x86_64_STANDARD",
    "AL2023_ARM_64_STANDARD",
    "AL2023_x86_64_NEURON",
    "AL2023_x86_64_NVIDIA",
];
const TAINT_EFFECTS: [&str; 3] = ["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"];
/// Everyone: the CIDR a public endpoint admits unless told otherwise.
pub const EVERYONE: &str = "0.0.0.0/0";

/// Whether `cidr` is an IPv4 CIDR block, `a.b.c.d/n`.
fn is_ipv4_cidr(cidr: &str) -> bool {
    let Some((address, bits)) = cidr.split_once('/') else {
        return false;
    };
    let octets: Vec<&str> = address.split('.').collect();
    octets.len() == 4
        && octets.iter().all(|o| o.parse::<u8>().is_ok())
        && bits.parse::<u8>().is_ok_and(|b| b <= 32)
}

fn check_cluster(eks: &EksSpec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if eks.endpoint_public_access == Some(false) && eks.endpoint_private_access == Some(false) {
        out.push((
            "eks.endpoint_private_access".to_owned(),
            "with both endpoints off nothing reaches the API server: enable one".to_owned(),
        ));
    }
    for cidr in &eks.public_access_cidrs {
        if !is_ipv4_cidr(cidr) {
            out.push((
                "eks.public_access_cidrs".to_owned(),
                format!("\"{cidr}\" is not an IPv4 CIDR block, e.g. \"203.0.113.0/24\""),
            ));
        }
    }
    if !eks.public_access_cidrs.is_empty() && eks.endpoint_public_access == Some(false) {
        out.push((
            "eks.public_access_cidrs".to_owned(),
            "the public endpoint is off: remove them, or set endpoint_public_access: true"
                .to_owned(),
        ));
    }
    // "You must specify at least two subnets that are in different Availability Zones" (CreateCluster,
    // UpdateClusterConfig).
    if eks.subnet_ids.len() == 1 {
        out.push((
            "eks.subnet_ids".to_owned(),
            "EKS needs at least two subnets, in different Availability Zones: name another"
                .to_owned(),
        ));
    }
    for kind in eks.logging.iter().flatten() {
        if !LOG_TYPES.contains(&kind.as_str()) {
            out.push((
                "eks.logging".to_owned(),
                format!("\"{kind}\" is not a log type: {}", LOG_TYPES.join(", ")),
            ));
        }
    }
    for (name, addon) in &eks.addons {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            out.push((
                "eks.addons".to_owned(),
                format!("\"{name}\" is not an add-on name (lowercase letters, digits and '-', e.g. vpc-cni)"),
            ));
        }
        if let Some(v) = &addon.version
            && !(v.starts_with('v')
                && v[1..]
                    .split(['.', '-'])
                    .next()
                    .is_some_and(|n| n.parse::<u32>().is_ok()))
        {
            out.push((
                format!("eks.addons.{name}.version"),
                format!("\"{v}\" is not an add-on version, e.g. \"v1.18.3-eksbuild.1\""),
            ));
        }
        if addon.configuration.as_ref().is_some_and(|c| !c.is_object()) {
            out.push((
                format!("eks.addons.{name}.configuration"),
                "must be a mapping of the add-on's configuration values".to_owned(),
            ));
        }
    }
    let mut principals = std::collections::BTreeSet::new();
    for (i, entry) in eks.access_entries.iter().enumerate() {
        let arn = &entry.principal_arn;
        if !(arn.starts_with("arn:aws")
            && arn.contains(":iam::")
            && (arn.contains(":role/") || arn.contains(":user/")))
        {
            out.push((
                format!("eks.access_entries[{i}].principal_arn"),
                format!(
                    "\"{arn}\" is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>)"
                ),
            ));
        } else if !principals.insert(arn) {
            out.push((
                format!("eks.access_entries[{i}].principal_arn"),
                format!("\"{arn}\" appears twice"),
            ));
        }
        for policy in &entry.policies {
            if !policy.policy_arn.contains(":cluster-access-policy/") {
                out.push((
                    format!("eks.access_entries[{i}].policies"),
                    format!(
                        "\"{}\" is not an EKS access policy (arn:aws:eks::aws:cluster-access-policy/<name>)",
                        policy.policy_arn
                    ),
                ));
            }
        }
    }
    for group in &eks.security_group_ids {
        if !is_security_group_id(group) {
            out.push((
                "eks.security_group_ids".to_owned(),
                format!("\"{group}\" is not a security group id (sg- and 8 or 17 hex digits)"),
            ));
        }
    }
    out
}

fn check_nodegroup(ng: &NodegroupSpec) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(kind) = &ng.capacity_type
        && !CAPACITY_TYPES.contains(&kind.as_str())
    {
        out.push((
            "capacity_type",
            format!(
                "\"{kind}\" is not a capacity type: {}",
                CAPACITY_TYPES.join(", ")
            ),
        ));
    }
    if let Some(ami) = &ng.ami_type
        && !AMI_TYPES.contains(&ami.as_str())
    {
        out.push((
            "ami_type",
            format!(
                "\"{ami}\" is not an AMI type of managed node groups, e.g. AL2023_x86_64_STANDARD"
            ),
        ));
    }
    if let Some(gb) = ng.disk_size {
        if ng.launch_template.is_some() {
            out.push((
                "disk_size",
                "beside a launch template the disk is the template's: set it there, or remove disk_size".to_owned(),
            ));
        } else if !(1..=16_384).contains(&gb) {
            out.push(("disk_size", format!("{gb} is out of range: 1 to 16384 GiB")));
        }
    }
    for taint in &ng.taints {
        if !TAINT_EFFECTS.contains(&taint.effect.as_str()) {
            out.push((
                "taints",
                format!(
                    "\"{}\" is not a taint effect: {}",
                    taint.effect,
                    TAINT_EFFECTS.join(", ")
                ),
            ));
        }
        if taint.key.is_empty() {
            out.push(("taints", "a taint needs a key".to_owned()));
        }
    }
    if let Some(template) = &ng.launch_template
        && template.name.is_some() == template.id.is_some()
    {
        out.push((
            "launch_template",
            "name the template by name or by id (one of the two)".to_owned(),
        ));
    }
    out
}

/// Every problem with the EKS part's settings.
pub(super) fn problems(eks: &EksSpec, out: &mut Vec<SpecError>) {
    for (field, reason) in check_cluster(eks) {
        out.push(SpecError::invalid(field, reason));
    }
    for (i, ng) in eks.nodegroups.iter().enumerate() {
        for (field, reason) in check_nodegroup(ng) {
            out.push(SpecError::invalid(
                format!("eks.nodegroups[{i}].{field}"),
                reason,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(yaml: &str) -> Vec<String> {
        let base = "cluster: acme\nnodegroups:\n  - name: general\n";
        let eks: EksSpec = serde_yaml_ng::from_str(&format!("{base}{yaml}")).unwrap();
        let mut out = Vec::new();
        problems(&eks, &mut out);
        out.iter().map(|e| e.field().to_owned()).collect()
    }

    #[test]
    fn a_private_cluster_with_spot_nodes_passes() {
        let yaml = "    capacity_type: SPOT\n    ami_type: AL2023_x86_64_STANDARD\n    disk_size: 50\n    \
            labels: { tier: general }\n    taints: [ { key: spot, value: \"true\", effect: PREFER_NO_SCHEDULE } ]\n\
            endpoint_public_access: false\nendpoint_private_access: true\nlogging: [api, audit]\n";
        assert_eq!(fields(yaml), Vec::<String>::new());
    }

    #[test]
    fn each_refused_setting_names_its_field() {
        for (yaml, field) in [
            (
                "    capacity_type: RESERVED\n",
                "eks.nodegroups[0].capacity_type",
            ),
            ("    ami_type: UBUNTU\n", "eks.nodegroups[0].ami_type"),
            (
                "    disk_size: 50\n    launch_template: { name: nodes }\n",
                "eks.nodegroups[0].disk_size",
            ),
            (
                "    taints: [ { key: a, effect: NEVER } ]\n",
                "eks.nodegroups[0].taints",
            ),
            (
                "    launch_template: { name: nodes, id: lt-1 }\n",
                "eks.nodegroups[0].launch_template",
            ),
            (
                "endpoint_public_access: false\nendpoint_private_access: false\n",
                "eks.endpoint_private_access",
            ),
            (
                "public_access_cidrs: [\"10.0.0.0/33\"]\n",
                "eks.public_access_cidrs",
            ),
            ("logging: [kubelet]\n", "eks.logging"),
            ("security_group_ids: [web]\n", "eks.security_group_ids"),
            ("subnet_ids: [subnet-0a1]\n", "eks.subnet_ids"),
        ] {
            assert_eq!(fields(yaml), vec![field.to_owned()], "{yaml}");
        }
    }
}
