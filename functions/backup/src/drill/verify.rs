//! Verifying the restore: the manifest against the snapshot, the EKS export against the spec (`rebuild`),
//! and the SQL probe against the scratch instance.

use chrono::{DateTime, Utc};
use opsplane_shared::OpsError;
use opsplane_shared::aws::objects::sha256_hex;
use opsplane_shared::domain::backup::{Manifest, ManifestObject};
use opsplane_shared::domain::drill::Check;
use opsplane_shared::domain::readable::yes_no;
use serde::{Deserialize, Serialize};

use super::pick::Pick;
use super::rebuild::check_rebuild;
use super::validate::DrillPlan;
use crate::Deps;
use crate::probe::probe_by_reference;

/// `verify`.
#[derive(Debug, Deserialize)]
pub struct VerifyInput {
    /// The plan.
    pub plan: DrillPlan,
    /// What was restored.
    pub pick: Pick,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Every check, passed.
    pub checks: Vec<Check>,
    /// The canary's newest write, when the probe ran one.
    pub canary_newest: Option<DateTime<Utc>>,
}

/// Reads the manifest `key` and checks it against the catalog's SHA-256 (`manifest` check); the manifest
/// when it could be read and matched.
pub(super) async fn read_manifest(
    deps: &Deps,
    key: Option<&str>,
    expected: Option<&str>,
    checks: &mut Vec<Check>,
) -> Result<Option<Manifest>, OpsError> {
    let Some(key) = key else {
        checks.push(Check::new(
            "manifest",
            false,
            "no catalog record names a manifest for what was restored",
        ));
        return Ok(None);
    };
    let Some(bytes) = deps.objects.get(key).await? else {
        checks.push(Check::new(
            "manifest",
            false,
            format!("{key} does not exist"),
        ));
        return Ok(None);
    };
    let digest = sha256_hex(&bytes);
    if let Some(expected) = expected
        && expected != digest
    {
        checks.push(Check::new(
            "manifest",
            false,
            format!("{key}: SHA-256 {digest}, the catalog recorded {expected}"),
        ));
        return Ok(None);
    }
    match serde_json::from_slice(&bytes) {
        Ok(m) => {
            checks.push(Check::new(
                "manifest",
                true,
                format!("{key} sha256 {digest}"),
            ));
            Ok(Some(m))
        }
        Err(e) => {
            checks.push(Check::new(
                "manifest",
                false,
                format!("{key} is not a manifest: {e}"),
            ));
            Ok(None)
        }
    }
}

/// Checks that the snapshot is listed in the manifest (`name`: which check).
pub(super) fn check_listed(name: &str, snapshot: &str, listed: bool, checks: &mut Vec<Check>) {
    checks.push(Check::new(
        name,
        listed,
        format!(
            "{snapshot} {} in the manifest",
            if listed { "is listed" } else { "is not listed" }
        ),
    ));
}

/// Checks one object the manifest vouches for: present, with its SHA-256 and size.
pub(super) async fn check_object(
    deps: &Deps,
    o: &ManifestObject,
    checks: &mut Vec<Check>,
) -> Result<(), OpsError> {
    let name = format!("object {}", o.key);
    match deps.objects.get(&o.key).await? {
        None => checks.push(Check::new(name, false, "missing")),
        Some(b) => {
            let got = sha256_hex(&b);
            let ok = got == o.sha256 && b.len() as u64 == o.bytes;
            checks.push(Check::new(
                name,
                ok,
                if ok {
                    format!("sha256 {got}")
                } else {
                    format!(
                        "sha256 {got} ({} bytes), manifest says {} ({} bytes)",
                        b.len(),
                        o.sha256,
                        o.bytes
                    )
                },
            ));
        }
    }
    Ok(())
}

/// Checks the manifest and every object it vouches for; the manifest, when it could be read.
async fn verify_manifest(
    deps: &Deps,
    pick: &Pick,
    checks: &mut Vec<Check>,
) -> Result<Option<Manifest>, OpsError> {
    let Some(manifest) = read_manifest(
        deps,
        pick.manifest_key.as_deref(),
        pick.manifest_sha256.as_deref(),
        checks,
    )
    .await?
    else {
        return Ok(None);
    };
    if let Some(snapshot) = &pick.snapshot_id {
        let listed = manifest
            .snapshots
            .iter()
            .any(|s| &s.snapshot_id == snapshot);
        check_listed("snapshot-in-manifest", snapshot, listed, checks);
    }
    for o in manifest.all_objects() {
        check_object(deps, o, checks).await?;
    }
    Ok(Some(manifest))
}

/// Every failed check as `RestoreFailed`, naming each.
pub(super) fn failed(checks: &[Check]) -> Result<(), OpsError> {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(OpsError::RestoreFailed(format!(
            "verification failed: {}",
            failed.join("; ")
        )))
    }
}

/// Verifies the restore: the instance is available with an endpoint and private, the manifest's objects
/// exist with matching SHA-256, and the SQL probe answers. Any failed check is `RestoreFailed`, naming it.
pub async fn verify(deps: &Deps, input: VerifyInput) -> Result<Verification, OpsError> {
    let plan = &input.plan;
    let spec = deps.spec(&plan.environment).await?;
    let mut checks = Vec::new();
    let instance = deps.rds.instance(&plan.scratch_id).await?;
    let endpoint = match &instance {
        Some(i) if i.status == "available" && i.endpoint.is_some() => {
            let (h, p) = i.endpoint.clone().unwrap_or_default();
            checks.push(Check::new(
                "instance-available",
                true,
                format!("{} at {h}:{p}", i.id),
            ));
            Some((h, p))
        }
        Some(i) => {
            checks.push(Check::new(
                "instance-available",
                false,
                format!("{} is {} without endpoint", i.id, i.status),
            ));
            None
        }
        None => {
            checks.push(Check::new(
                "instance-available",
                false,
                format!("{} does not exist", plan.scratch_id),
            ));
            None
        }
    };
    if let Some(i) = &instance {
        let private = i.publicly_accessible != Some(true);
        let deletable = i.deletion_protection != Some(true);
        checks.push(Check::new(
            "scratch-settings",
            private && deletable && i.class == plan.instance_class,
            format!(
                "class {} (want {}), publicly accessible {}, deletion protection {}",
                i.class,
                plan.instance_class,
                yes_no(i.publicly_accessible),
                yes_no(i.deletion_protection)
            ),
        ));
    }
    if let Some(manifest) = verify_manifest(deps, &input.pick, &mut checks).await? {
        check_rebuild(deps, &spec, &manifest, &mut checks).await?;
    }
    let mut canary_newest = None;
    if let Some(probe) = spec.drill.as_ref().and_then(|d| d.probe.as_ref()) {
        let target = deps.probe_settings.endpoint_override.clone().or(endpoint);
        let reach =
            opsplane_shared::probe::check_reach(&deps.probe_settings, &plan.scratch_id).await;
        match (target, reach) {
            (None, _) => checks.push(Check::new("sql-probe", false, "no endpoint to connect to")),
            (Some(_), Err(why)) => checks.push(Check::new("sql-probe", false, why)),
            (Some(endpoint), Ok(())) => {
                // Credentials resolved inside, used for one connection, never in an output.
                match probe_by_reference(
                    &deps.credentials,
                    deps.probe.as_ref(),
                    probe,
                    endpoint,
                    probe.canary_query.clone(),
                )
                .await
                {
                    Ok((answer, detail)) => {
                        checks.push(Check::new("sql-probe", true, detail));
                        if probe.canary_query.is_some() {
                            checks.push(Check::new(
                                "canary",
                                answer.canary_newest.is_some(),
                                match answer.canary_newest {
                                    Some(at) => format!("newest write {}", at.to_rfc3339()),
                                    None => "the canary query returned no timestamp".to_owned(),
                                },
                            ));
                        }
                        canary_newest = answer.canary_newest;
                    }
                    // The driver's message may quote what the server said; it goes into the report and
                    // the execution's output, so it comes back redacted like a log line.
                    Err(why) => checks.push(Check::new("sql-probe", false, why)),
                }
            }
        }
    }
    failed(&checks)?;
    Ok(Verification {
        checks,
        canary_newest,
    })
}
