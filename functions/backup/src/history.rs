//! The execution history RTO is measured from: a port, its Step Functions adapter, and (for local runs) the
//! local engine's.

use std::future::Future;
use std::pin::Pin;

use opsplane_shared::OpsError;
use opsplane_shared::aws::rds::to_chrono;
use opsplane_shared::domain::drill::StateEvent;

/// A boxed, sendable future, so the port can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Reads the state entered/exited events of an execution.
pub trait ExecutionEvents: Send + Sync {
    /// Every `...StateEntered` and `...StateExited` event of `execution_arn`, oldest first.
    fn state_events<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<Vec<StateEvent>, OpsError>>;
}

/// [`ExecutionEvents`] over Step Functions' `GetExecutionHistory`.
#[derive(Debug, Clone)]
pub struct SfnEvents {
    client: aws_sdk_sfn::Client,
}

impl SfnEvents {
    /// An adapter over `client`.
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        Self { client }
    }
}

impl ExecutionEvents for SfnEvents {
    fn state_events<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<Vec<StateEvent>, OpsError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .get_execution_history()
                    .execution_arn(execution_arn)
                    .include_execution_data(false)
                    .max_results(1000)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| OpsError::Aws {
                        operation: "GetExecutionHistory",
                        source: Box::new(e),
                    })?;
                for e in page.events() {
                    let Some(at) = to_chrono(e.timestamp()) else {
                        continue;
                    };
                    if let Some(d) = e.state_entered_event_details() {
                        out.push(StateEvent {
                            at,
                            state: d.name().to_owned(),
                            entered: true,
                        });
                    } else if let Some(d) = e.state_exited_event_details() {
                        out.push(StateEvent {
                            at,
                            state: d.name().to_owned(),
                            entered: false,
                        });
                    }
                }
                match page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                    _ => break,
                }
            }
            Ok(out)
        })
    }
}

/// [`ExecutionEvents`] over the local engine, whose events carry its virtual clock.
#[cfg(feature = "local")]
#[derive(Debug, Clone)]
pub struct EngineEvents {
    engine: opsplane_statemachines::Engine,
}

#[cfg(feature = "local")]
impl EngineEvents {
    /// An adapter over `engine`.
    pub fn new(engine: opsplane_statemachines::Engine) -> Self {
        Self { engine }
    }
}

#[cfg(feature = "local")]
impl ExecutionEvents for EngineEvents {
    fn state_events<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<Vec<StateEvent>, OpsError>> {
        Box::pin(async move {
            let events = self
                .engine
                .get_execution_history(execution_arn)
                .map_err(|e| OpsError::ResourceNotFound(format!("execution history: {e}")))?;
            Ok(events
                .iter()
                .filter_map(|e| {
                    let entered = e.event_type.ends_with("StateEntered");
                    if !entered && !e.event_type.ends_with("StateExited") {
                        return None;
                    }
                    let state = e.details.get("name")?.as_str()?.to_owned();
                    Some(StateEvent {
                        at: e.timestamp,
                        state,
                        entered,
                    })
                })
                .collect())
        })
    }
}
