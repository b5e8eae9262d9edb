//! `opsplane report fleet`: every environment with a spec, its newest backup's age, its last drill's RTO and
//! RPO against their targets and its last health verdict, as one heat map (`reports/fleet/<ts>.html` and
//! `.json` in the state bucket, and the HTML written locally).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use opsplane_shared::OpsError;
use opsplane_shared::aws::objects::ObjectStore;
use opsplane_shared::aws::specs::SpecStore;
use opsplane_shared::domain::backup::key_timestamp;
use opsplane_shared::domain::fleet::{FleetReport, render_fleet_html};
use opsplane_shared::fleet::{gather, store};
use opsplane_shared::state::StateStore;

/// What `report fleet` produced.
#[derive(Debug, Clone)]
pub struct FleetOutput {
    /// The report.
    pub report: FleetReport,
    /// The text to print: the counts, then one line per environment.
    pub text: String,
    /// The HTML file written locally.
    pub html_file: PathBuf,
    /// The report's keys in the state bucket (JSON, HTML).
    pub keys: (String, String),
}

/// Gathers the fleet's report, stores it (`reports/fleet/<ts>.json` and `.html`) and writes its HTML into
/// `out_dir`.
pub async fn fleet(
    specs: &SpecStore,
    state: &StateStore,
    objects: &ObjectStore,
    out_dir: &Path,
    now: DateTime<Utc>,
) -> Result<FleetOutput, OpsError> {
    let report = gather(specs, state, now).await?;
    let keys = store(objects, &report).await?;
    let html_file = out_dir.join(format!("fleet-{}.html", key_timestamp(now)));
    std::fs::write(&html_file, render_fleet_html(&report))
        .map_err(|e| OpsError::Internal(format!("writing {}: {e}", html_file.display())))?;
    let mut text = format!(
        "{} environments: {}\n",
        report.rows.len(),
        report
            .counts()
            .iter()
            .map(|(level, n)| format!("{n} {}", level.label()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for r in &report.rows {
        text.push_str(&format!(
            "{:<9} {:<24} backup {}; RTO {}; RPO {}; drill {}; health {}\n",
            r.worst().label(),
            r.environment,
            r.backup.text,
            r.rto.text,
            r.rpo.text,
            r.drill.text,
            r.health.text
        ));
    }
    text.push_str(&format!(
        "report: s3://{}/{}\nHTML written to {}\n",
        objects.bucket(),
        keys.1,
        html_file.display()
    ));
    Ok(FleetOutput {
        report,
        text,
        html_file,
        keys,
    })
}
