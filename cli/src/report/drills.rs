//! `opsplane report drill --env E [--latest]`: the drill reports stored under `reports/drills/<env>/`.
//!
//! Without `--latest`, one summary line per drill, oldest first. With `--latest`, the newest drill's summary
//! and its self-contained HTML page written to a local file.

use std::path::{Path, PathBuf};

use opsplane_fn_backup::drill::{read_report, report_keys_of, summary_line};
use opsplane_shared::OpsError;
use opsplane_shared::aws::objects::ObjectStore;
use opsplane_shared::domain::drill::DrillReport;

/// What `report drill` produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillReportOutput {
    /// The text to print.
    pub text: String,
    /// The HTML file written (with `--latest`).
    pub html_file: Option<PathBuf>,
    /// The reports the text summarises, oldest first (with `--latest`, the newest only): `--json` prints them.
    pub reports: Vec<DrillReport>,
}

/// Lists the environment's drill reports, or (with `latest`) prints the newest and writes its HTML into
/// `out_dir`.
pub async fn drill(
    objects: &ObjectStore,
    environment: &str,
    latest: bool,
    out_dir: &Path,
) -> Result<DrillReportOutput, OpsError> {
    let keys = report_keys_of(objects, environment).await?;
    if keys.is_empty() {
        return Err(OpsError::ResourceNotFound(format!(
            "no drill report for environment `{environment}` in s3://{}/reports/drills/{environment}/: \
             run `opsplane run dr-drill --env {environment}` first",
            objects.bucket()
        )));
    }
    if !latest {
        let mut text = String::new();
        let mut reports = Vec::with_capacity(keys.len());
        for (json_key, _) in &keys {
            let report = read_report(objects, json_key).await?;
            text.push_str(&summary_line(&report));
            text.push('\n');
            reports.push(report);
        }
        return Ok(DrillReportOutput {
            text,
            html_file: None,
            reports,
        });
    }
    let (json_key, html_key) = keys.last().expect("keys is not empty");
    let report = read_report(objects, json_key).await?;
    let html = objects
        .get(html_key)
        .await?
        .ok_or_else(|| OpsError::ResourceNotFound(format!("report {html_key}")))?;
    let file = out_dir.join(format!("drill-{environment}-{}.html", report.ts));
    std::fs::write(&file, html)
        .map_err(|e| OpsError::Internal(format!("writing {}: {e}", file.display())))?;
    Ok(DrillReportOutput {
        text: format!(
            "{}\nreport: s3://{}/{json_key}\nHTML written to {}\n",
            summary_line(&report),
            objects.bucket(),
            file.display()
        ),
        html_file: Some(file),
        reports: vec![report],
    })
}
