//! The audit log's table half: audit events under `pk=AUDIT#<day>`, `sk=<at>#<id>`, appended (and copied to
//! the archive) and read back by day.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;

use super::error::StateError;
use super::keys::audit_pk;
use super::paging::{Page, PageRequest};
use super::records::AuditEvent;
use super::store::{StateStore, keyed_item};
use crate::clock::rfc3339;

impl StateStore {
    /// Appends an audit event. Not fenced: the audit log records what happened, including refusals.
    ///
    /// The event goes to the table, then (with an archive) to S3 with an Object Lock retention; a failed copy
    /// is [`StateError::AuditCopy`], and the record stays in the table for `opsplane audit` to report.
    pub async fn append_audit(&self, event: &AuditEvent) -> Result<(), StateError> {
        let item = keyed_item(
            event,
            audit_pk(event.at.date_naive()),
            format!("{}#{}", rfc3339(event.at), event.id),
        )?;
        self.put_item(item).await?;
        let copy = match &self.audit_archive {
            None => None,
            Some(archive) => {
                Some(
                    archive
                        .write(event)
                        .await
                        .map_err(|e| StateError::AuditCopy {
                            id: event.id.clone(),
                            source: Box::new(e),
                        })?,
                )
            }
        };
        tracing::info!(
            actor = event.actor,
            action = event.action,
            environment = event.environment.as_deref(),
            result = event.result,
            copy = copy.as_deref(),
            "audit event"
        );
        Ok(())
    }

    /// The audit events of one UTC day, newest first, optionally only those of one environment.
    pub async fn audit_events(
        &self,
        day: NaiveDate,
        environment: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<AuditEvent>, StateError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .scan_index_forward(false)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(audit_pk(day)));
        if let Some(env) = environment {
            query = query
                .filter_expression("environment = :env")
                .expression_attribute_values(":env", AttributeValue::S(env.to_owned()));
        }
        self.page(query, page).await
    }

    /// Today's audit events (by this store's clock).
    pub async fn audit_today(
        &self,
        environment: Option<&str>,
    ) -> Result<Vec<AuditEvent>, StateError> {
        self.audit_day(self.clock.now().date_naive(), environment)
            .await
    }

    /// Every audit event of one UTC day, newest first, optionally only those of one environment.
    pub async fn audit_day(
        &self,
        day: NaiveDate,
        environment: Option<&str>,
    ) -> Result<Vec<AuditEvent>, StateError> {
        let mut all = Vec::new();
        let mut page = PageRequest::default();
        loop {
            let got = self.audit_events(day, environment, page).await?;
            all.extend(got.items);
            match got.next {
                Some(next) => {
                    page = PageRequest {
                        limit: None,
                        cursor: Some(next),
                    }
                }
                None => return Ok(all),
            }
        }
    }
}
