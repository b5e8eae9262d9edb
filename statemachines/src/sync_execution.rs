//! `StartSyncExecution`: runs an EXPRESS state machine to its end and answers with the execution's
//! outcome and billing details in one response, as AWS does
//! (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartSyncExecution.html). AWS
//! refuses it for STANDARD machines (`StateMachineTypeNotSupported`).

use serde_json::{Value, json};

use crate::engine::Engine;
use crate::error::EngineError;
use crate::execution::{Description, outcome_to_api};
use crate::model::MachineType;

/// Express executions are billed in 64 MB memory units ("Step Functions pricing": Express Workflows).
const BILLED_MEMORY_MB: u64 = 64;
/// Express durations are billed rounded up to the next 100 ms.
const BILLING_STEP_MS: i64 = 100;

/// The answer of `StartSyncExecution`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncExecution {
    /// The execution as `DescribeExecution` tells it, SUCCEEDED, FAILED or TIMED_OUT, its stop date set.
    pub execution: Description,
    /// Billed duration: the execution's (virtual) duration rounded up to the next 100 ms.
    pub billed_duration_ms: u64,
    /// Billed memory.
    pub billed_memory_mb: u64,
}

impl SyncExecution {
    /// The response in the API's JSON shape (`input` and `output` as JSON text).
    pub fn to_api(&self) -> Value {
        let d = &self.execution;
        let mut v = json!({
            "executionArn": d.execution_arn,
            "stateMachineArn": d.state_machine_arn,
            "name": d.name,
            "status": d.status.as_str(),
            "input": d.input.to_string(),
            "startDate": d.start_date.to_rfc3339(),
            "stopDate": d.stop_date.unwrap_or(d.start_date).to_rfc3339(),
            "billingDetails": {
                "billedMemoryUsedInMB": self.billed_memory_mb,
                "billedDurationInMilliseconds": self.billed_duration_ms,
            },
        });
        outcome_to_api(
            &mut v,
            d.output.as_ref(),
            d.error.as_deref(),
            d.cause.as_deref(),
        );
        v
    }
}

impl Engine {
    /// `StartSyncExecution`: runs an EXPRESS machine's execution to its end and returns its outcome.
    pub async fn start_sync_execution(
        &self,
        state_machine_arn: &str,
        name: Option<String>,
        input: Value,
    ) -> Result<SyncExecution, EngineError> {
        let machine_type = self
            .inner
            .machines
            .read()
            .expect("machines lock")
            .get(state_machine_arn)
            .map(|m| m.machine_type)
            .ok_or_else(|| EngineError::StateMachineDoesNotExist(state_machine_arn.to_string()))?;
        if machine_type != MachineType::Express {
            return Err(EngineError::StateMachineTypeNotSupported(
                state_machine_arn.to_string(),
            ));
        }
        let arn = self.start_execution(state_machine_arn, name, input)?;
        let mut d = self.wait_for(&arn).await?;
        let stop = *d.stop_date.get_or_insert(d.start_date);
        let ms = (stop - d.start_date).num_milliseconds().max(1);
        let billed = (ms + BILLING_STEP_MS - 1) / BILLING_STEP_MS * BILLING_STEP_MS;
        Ok(SyncExecution {
            execution: d,
            billed_duration_ms: billed as u64,
            billed_memory_mb: BILLED_MEMORY_MB,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::engine::Status;
    use crate::handler::TaskContext;

    #[tokio::test]
    async fn an_express_machine_answers_synchronously_with_billing() {
        let engine = Engine::new();
        engine.register_handler("slow", |v, ctx: TaskContext| async move {
            ctx.advance(Duration::from_millis(250));
            Ok(v)
        });
        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "End": true,
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:slow"}}});
        let arn = engine
            .register_state_machine_as("x", &def.to_string(), &HashMap::new(), MachineType::Express)
            .unwrap();
        let r = engine
            .start_sync_execution(&arn, None, json!({"a": 1}))
            .await
            .unwrap();
        assert_eq!(r.execution.status, Status::Succeeded);
        assert_eq!(r.execution.output, Some(json!({"a": 1})));
        assert_eq!(r.billed_duration_ms, 300);
        let api = r.to_api();
        assert_eq!(api["output"], json!("{\"a\":1}"));
        assert_eq!(api["billingDetails"]["billedMemoryUsedInMB"], json!(64));
    }

    #[tokio::test]
    async fn a_standard_machine_is_refused() {
        let engine = Engine::new();
        let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
        let arn = engine
            .register_state_machine("s", &def.to_string(), &HashMap::new())
            .unwrap();
        let e = engine.start_sync_execution(&arn, None, json!({})).await;
        assert_eq!(e, Err(EngineError::StateMachineTypeNotSupported(arn)));
    }
}
