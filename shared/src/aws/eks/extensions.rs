//! A cluster's add-ons, access entries (with their access policies) and pod identity associations: read
//! for planning and for the backup's export, and created or updated as a provision applies the spec.

use std::collections::BTreeMap;

use aws_sdk_eks::types::{AccessScope, AccessScopeType};
use serde_json::{Value, json};

use super::{Eks, EksError, classify, time};
use crate::domain::plan::{ActualAccessEntry, ActualAddon};
use crate::domain::spec::{AccessEntrySpec, AccessPolicySpec, AddonSpec};

/// EKS keeps an add-on's configuration as a string of JSON (or YAML, which the model does not write).
fn configuration(text: Option<&str>) -> Option<Value> {
    text.filter(|t| !t.trim().is_empty())
        .map(|t| serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_owned())))
}

fn scope(policy: &AccessPolicySpec) -> AccessScope {
    if policy.namespaces.is_empty() {
        AccessScope::builder()
            .r#type(AccessScopeType::Cluster)
            .build()
    } else {
        AccessScope::builder()
            .r#type(AccessScopeType::Namespace)
            .set_namespaces(Some(policy.namespaces.clone()))
            .build()
    }
}

impl Eks {
    /// Every add-on of `cluster`, by name.
    pub async fn addons(&self, cluster: &str) -> Result<BTreeMap<String, ActualAddon>, EksError> {
        let what = format!("cluster {cluster}");
        let mut names = Vec::new();
        let mut pages = self
            .client
            .list_addons()
            .cluster_name(cluster)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            names.extend(
                page.map_err(|e| classify("ListAddons", &what, e))?
                    .addons()
                    .iter()
                    .cloned(),
            );
        }
        let mut out = BTreeMap::new();
        for name in names {
            let described = self
                .client
                .describe_addon()
                .cluster_name(cluster)
                .addon_name(&name)
                .send()
                .await
                .map_err(|e| classify("DescribeAddon", &format!("add-on {cluster}/{name}"), e))?;
            if let Some(a) = described.addon() {
                out.insert(
                    name,
                    ActualAddon {
                        status: a
                            .status()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                        version: a.addon_version().map(str::to_owned),
                        configuration: configuration(a.configuration_values()),
                        service_account_role_arn: a.service_account_role_arn().map(str::to_owned),
                    },
                );
            }
        }
        Ok(out)
    }

    /// Every access entry of `cluster` with its associated policies, by principal ARN.
    pub async fn access_entries(
        &self,
        cluster: &str,
    ) -> Result<BTreeMap<String, ActualAccessEntry>, EksError> {
        let what = format!("cluster {cluster}");
        let mut principals = Vec::new();
        let mut pages = self
            .client
            .list_access_entries()
            .cluster_name(cluster)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            principals.extend(
                page.map_err(|e| classify("ListAccessEntries", &what, e))?
                    .access_entries()
                    .iter()
                    .cloned(),
            );
        }
        let mut out = BTreeMap::new();
        for principal in principals {
            let entry = self
                .client
                .describe_access_entry()
                .cluster_name(cluster)
                .principal_arn(&principal)
                .send()
                .await
                .map_err(|e| classify("DescribeAccessEntry", &what, e))?;
            let mut groups = entry
                .access_entry()
                .map(|e| e.kubernetes_groups().to_vec())
                .unwrap_or_default();
            groups.sort();
            let mut policies = Vec::new();
            let mut pages = self
                .client
                .list_associated_access_policies()
                .cluster_name(cluster)
                .principal_arn(&principal)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify("ListAssociatedAccessPolicies", &what, e))?;
                policies.extend(page.associated_access_policies().iter().map(|p| {
                    let mut namespaces = p
                        .access_scope()
                        .map(|s| s.namespaces().to_vec())
                        .unwrap_or_default();
                    namespaces.sort();
                    AccessPolicySpec {
                        policy_arn: p.policy_arn().unwrap_or_default().to_owned(),
                        namespaces,
                    }
                }));
            }
            policies.sort();
            out.insert(
                principal,
                ActualAccessEntry {
                    kubernetes_groups: groups,
                    policies,
                },
            );
        }
        Ok(out)
    }

    /// Every pod identity association of `cluster`, described, for the export.
    pub async fn pod_identity_associations(&self, cluster: &str) -> Result<Vec<Value>, EksError> {
        let what = format!("cluster {cluster}");
        let mut ids = Vec::new();
        let mut pages = self
            .client
            .list_pod_identity_associations()
            .cluster_name(cluster)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListPodIdentityAssociations", &what, e))?;
            ids.extend(
                page.associations()
                    .iter()
                    .filter_map(|a| a.association_id().map(str::to_owned)),
            );
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let described = self
                .client
                .describe_pod_identity_association()
                .cluster_name(cluster)
                .association_id(&id)
                .send()
                .await
                .map_err(|e| classify("DescribePodIdentityAssociation", &what, e))?;
            if let Some(a) = described.association() {
                out.push(json!({
                    "associationId": a.association_id(),
                    "namespace": a.namespace(),
                    "serviceAccount": a.service_account(),
                    "roleArn": a.role_arn(),
                    "createdAt": time(a.created_at()),
                }));
            }
        }
        Ok(out)
    }

    /// Installs an add-on at the spec's version and configuration, tagged (`CreateAddon`).
    pub async fn create_addon(
        &self,
        cluster: &str,
        name: &str,
        addon: &AddonSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), EksError> {
        self.client
            .create_addon()
            .cluster_name(cluster)
            .addon_name(name)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .set_addon_version(addon.version.clone())
            .set_configuration_values(addon.configuration.as_ref().map(Value::to_string))
            .set_service_account_role_arn(addon.service_account_role_arn.clone())
            .send()
            .await
            .map_err(|e| classify("CreateAddon", &format!("add-on {cluster}/{name}"), e))?;
        Ok(())
    }

    /// Brings an add-on to the spec's version and configuration (`UpdateAddon`).
    pub async fn update_addon(
        &self,
        cluster: &str,
        name: &str,
        addon: &AddonSpec,
    ) -> Result<(), EksError> {
        self.client
            .update_addon()
            .cluster_name(cluster)
            .addon_name(name)
            .set_addon_version(addon.version.clone())
            .set_configuration_values(addon.configuration.as_ref().map(Value::to_string))
            .set_service_account_role_arn(addon.service_account_role_arn.clone())
            .send()
            .await
            .map_err(|e| classify("UpdateAddon", &format!("add-on {cluster}/{name}"), e))?;
        Ok(())
    }

    /// Admits a principal as `entry` says: `CreateAccessEntry` when it is not yet admitted, else its
    /// Kubernetes groups replaced (`UpdateAccessEntry`) when they differ; each of its policies associated
    /// (`AssociateAccessPolicy`, which replaces an association's scope) and every other disassociated.
    pub async fn admit(
        &self,
        cluster: &str,
        entry: &AccessEntrySpec,
        have: Option<&ActualAccessEntry>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), EksError> {
        let what = format!("access entry {cluster}/{}", entry.principal_arn);
        if let Some(have) = have {
            let mut groups = entry.kubernetes_groups.clone();
            groups.sort();
            if groups != have.kubernetes_groups {
                self.client
                    .update_access_entry()
                    .cluster_name(cluster)
                    .principal_arn(&entry.principal_arn)
                    .set_kubernetes_groups(Some(groups))
                    .send()
                    .await
                    .map_err(|e| classify("UpdateAccessEntry", &what, e))?;
            }
            let wanted = |arn: &str| entry.policies.iter().any(|p| p.policy_arn == arn);
            for gone in have.policies.iter().filter(|p| !wanted(&p.policy_arn)) {
                self.client
                    .disassociate_access_policy()
                    .cluster_name(cluster)
                    .principal_arn(&entry.principal_arn)
                    .policy_arn(&gone.policy_arn)
                    .send()
                    .await
                    .map_err(|e| classify("DisassociateAccessPolicy", &what, e))?;
            }
        } else {
            self.client
                .create_access_entry()
                .cluster_name(cluster)
                .principal_arn(&entry.principal_arn)
                .set_tags(Some(tags.clone().into_iter().collect()))
                .set_kubernetes_groups(
                    (!entry.kubernetes_groups.is_empty()).then(|| entry.kubernetes_groups.clone()),
                )
                .send()
                .await
                .map_err(|e| classify("CreateAccessEntry", &what, e))?;
        }
        for policy in &entry.policies {
            self.client
                .associate_access_policy()
                .cluster_name(cluster)
                .principal_arn(&entry.principal_arn)
                .policy_arn(&policy.policy_arn)
                .access_scope(scope(policy))
                .send()
                .await
                .map_err(|e| classify("AssociateAccessPolicy", &what, e))?;
        }
        Ok(())
    }
}
