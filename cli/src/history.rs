//! `opsplane history --env E`: the environment's deployments, backups and drills from the state table,
//! newest first, each with its execution's console link.

use anyhow::Result;
use chrono::{DateTime, Utc};
use opsplane_shared::notify::console_url;
use opsplane_shared::state::{
    BackupRecord, DeploymentRecord, DeploymentStatus, DrillRecord, StateStore,
};

/// One line of history (and, with `--json`, one object).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entry {
    /// When it started.
    pub at: DateTime<Utc>,
    /// `deploy`, `backup` or `drill`.
    pub kind: &'static str,
    /// The record's id.
    pub id: String,
    /// Its status or verdict, as stored (`SUCCEEDED`, `COMPLETED`, `MET`, ...).
    pub status: String,
    /// What else is worth a glance (spec version, snapshots, RTO/RPO).
    pub detail: String,
    /// The execution that made it.
    pub execution: Option<String>,
}

impl Entry {
    /// The line printed: time, kind, status, id, detail, then the console link on its own line.
    pub fn render(&self) -> String {
        let mut line = format!(
            "{}  {:<6}  {:<11}  {}  {}",
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.kind,
            self.status,
            self.id,
            self.detail
        );
        if let Some(arn) = &self.execution {
            line.push_str(&format!("\n    {}", console_url(arn)));
        }
        line
    }
}

fn status<T: serde::Serialize>(s: &T) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The newest `limit` deployments, backups and drills of `environment`, merged newest first.
pub async fn history(store: &StateStore, environment: &str, limit: u32) -> Result<Vec<Entry>> {
    let mut all = Vec::new();
    let meta = store.meta(environment).await?;
    let lkg = meta
        .last_known_good
        .as_ref()
        .map(|l| l.deployment_id.as_str());
    for d in store.latest::<DeploymentRecord>(environment, limit).await? {
        // The last known good, the deployment baking, and the known-good ones a rollback can go back to.
        let mark = if lkg == Some(d.id.as_str()) {
            " [last known good]"
        } else if d.status == DeploymentStatus::Baking {
            " [baking]"
        } else if meta.known_good.iter().any(|k| k.deployment_id == d.id) {
            " [known good]"
        } else {
            ""
        };
        all.push(Entry {
            at: d.started_at,
            kind: "deploy",
            status: status(&d.status),
            detail: format!("spec {} by {}{mark}", d.spec_version, d.actor),
            execution: Some(d.execution).filter(|e| !e.is_empty()),
            id: d.id,
        });
    }
    for b in store.latest::<BackupRecord>(environment, limit).await? {
        all.push(Entry {
            at: b.created_at,
            kind: "backup",
            status: status(&b.status),
            detail: format!("{} snapshot(s)", b.snapshot_ids.len()),
            execution: b.execution,
            id: b.id,
        });
    }
    for d in store.latest::<DrillRecord>(environment, limit).await? {
        let secs = |s: Option<u64>| s.map_or("-".to_owned(), |s| format!("{s} s"));
        all.push(Entry {
            at: d.started_at,
            kind: "drill",
            status: status(&d.verdict),
            detail: format!(
                "RTO {} (target {} s), RPO {} (target {} s)",
                secs(d.rto_seconds),
                d.rto_target_seconds,
                secs(d.rpo_seconds),
                d.rpo_target_seconds
            ),
            execution: None,
            id: d.id,
        });
    }
    all.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
    all.truncate(limit as usize);
    Ok(all)
}
