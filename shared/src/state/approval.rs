//! Changes waiting for a person: the approval record (`pk=APPROVAL#<execution ARN>`, `sk=APPROVAL`) and the
//! decision taken once.

use aws_sdk_dynamodb::types::AttributeValue;

use super::attr::from_item;
use super::error::StateError;
use super::keys::approval_pk;
use super::records::{ApprovalRecord, ApprovalStatus};
use super::store::{StateStore, keyed_item};
use crate::clock::rfc3339;

impl StateStore {
    /// Stores a pending approval (replacing one of the same execution: a retried request).
    pub async fn put_approval(&self, record: &ApprovalRecord) -> Result<(), StateError> {
        let item = keyed_item(record, approval_pk(&record.execution), "APPROVAL".into())?;
        self.put_item(item).await
    }

    /// The approval of an execution, if it asked for one.
    pub async fn approval(&self, execution: &str) -> Result<Option<ApprovalRecord>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(approval_pk(execution)))
            .key("sk", AttributeValue::S("APPROVAL".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StateError::aws("GetItem", e))?;
        out.item.as_ref().map(from_item).transpose()
    }

    /// Moves a pending approval to `status`, recording who and why. `Ok(false)` when it was not pending
    /// (already decided or closed): a decision is taken once.
    pub async fn decide_approval(
        &self,
        execution: &str,
        status: ApprovalStatus,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<bool, StateError> {
        let status_value = serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(approval_pk(execution)))
            .key("sk", AttributeValue::S("APPROVAL".into()))
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", AttributeValue::S("PENDING".into()))
            .expression_attribute_values(":s", AttributeValue::S(status_value))
            .expression_attribute_values(":by", AttributeValue::S(actor.to_owned()))
            .expression_attribute_values(":at", AttributeValue::S(rfc3339(self.clock.now())));
        let mut expr = "SET #status = :s, decided_by = :by, decided_at = :at".to_owned();
        if let Some(reason) = reason {
            expr.push_str(", reason = :r");
            update = update.expression_attribute_values(":r", AttributeValue::S(reason.to_owned()));
        }
        match update.update_expression(expr).send().await {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(StateError::aws("UpdateItem", err)),
        }
    }
}
