//! The Task state: handlers, the Lambda invoke wrapper, service integrations and task tokens.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use crate::error::{Failure, MAX_PAYLOAD_BYTES, names};
use crate::execution::{TokenReply, TokenSlot};
use crate::handler::{FunctionError, Handler, TaskContext, function_name};
use crate::history::EventType;
use crate::model::{Dynamic, QueryLanguage, State};
use crate::probe::Mock;
use crate::runtime::env::Env;
use crate::runtime::io::{exceeds, handler_failure, wrap_invoke_result};
use crate::runtime::runner::TokenGuard;
use crate::runtime::runner::{Branch, Runner};

use super::start_execution;

/// What a Task calls.
enum Callee {
    /// A registered handler.
    Handler(Handler),
    /// The built-in `states:startExecution` integration.
    StartExecution(start_execution::Pattern),
}

impl Runner {
    pub(in crate::runtime) async fn task(
        &self,
        env: &Env<'_>,
        st: &State,
        spec: &crate::model::TaskSpec,
        input: &Value,
        br: &mut Branch,
    ) -> Result<Value, Failure> {
        let jsonata = st.query_language == QueryLanguage::Jsonata;
        let resource = spec.resource.as_str();
        let (base, wait_token) = match resource.strip_suffix(".waitForTaskToken") {
            Some(b) => (b, true),
            None => (resource, false),
        };
        let token = wait_token.then(|| uuid::Uuid::new_v4().to_string());
        let env = Env {
            token: token.as_deref(),
            ..*env
        };
        let args = match &st.parameters {
            Some(p) if jsonata => env.ja_template(p, input, None, "Arguments")?,
            Some(p) => env.template(p, input, "Parameters")?,
            None => input.clone(),
        };
        if let Some(p) = self.probe() {
            p.record(
                if jsonata {
                    "afterArguments"
                } else {
                    "afterParameters"
                },
                &args,
            );
            // TestState's mock replaces the integration's response (or its error) as a whole.
            match &p.mock {
                Some(Mock::Result(v)) => return Ok(v.clone()),
                Some(Mock::Error(f)) => return Err(f.clone()),
                None => {}
            }
        }
        let secs = |d: &Option<Dynamic>, field: &str| -> Result<Option<u64>, Failure> {
            match d {
                None => Ok(None),
                Some(d) => {
                    let v = env.dynamic(d, input, field)?;
                    v.as_u64().filter(|x| *x > 0).map(Some).ok_or_else(|| {
                        Failure::runtime(format!("The {field} field refers to value {v} which is not a valid positive integer"))
                    })
                }
            }
        };
        let timeout = secs(&spec.timeout, "TimeoutSecondsPath")?;
        let heartbeat = secs(&spec.heartbeat, "HeartbeatSecondsPath")?;

        let lambda_invoke = base == "arn:aws:states:::lambda:invoke";
        let plain_lambda = base.contains(":lambda:") && base.contains(":function:");
        let (handler_key, payload) = if lambda_invoke {
            let f = args
                .get("FunctionName")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    Failure::runtime(format!(
                        "The task '{}' of resource lambda:invoke needs the parameter FunctionName",
                        st.name
                    ))
                })?;
            // An absent or null Payload reaches the function as an empty event.
            let payload = args
                .get("Payload")
                .filter(|p| !p.is_null())
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()));
            (function_name(f).to_string(), payload)
        } else if plain_lambda {
            (function_name(base).to_string(), args.clone())
        } else {
            (base.to_string(), args.clone())
        };
        let (scheduled, started, succeeded, failed, timed_out) = if plain_lambda {
            (
                EventType::LambdaFunctionScheduled,
                EventType::LambdaFunctionStarted,
                EventType::LambdaFunctionSucceeded,
                EventType::LambdaFunctionFailed,
                EventType::LambdaFunctionTimedOut,
            )
        } else {
            (
                EventType::TaskScheduled,
                EventType::TaskStarted,
                EventType::TaskSucceeded,
                EventType::TaskFailed,
                EventType::TaskTimedOut,
            )
        };
        if self.recording(br) {
            self.event(br, scheduled, json!({"resource": resource, "parameters": args, "timeoutInSeconds": timeout, "heartbeatInSeconds": heartbeat}));
            self.event(br, started, json!({"resource": resource}));
        }
        let handler = self
            .inner
            .handlers
            .read()
            .expect("handlers lock")
            .get(&handler_key)
            .cloned();
        // Step Functions' own integration runs inside the engine; a handler registered for its resource
        // still takes its place (a test standing in for it).
        let callee = match (handler, start_execution::pattern(base)) {
            (Some(h), _) => Callee::Handler(h),
            (None, Some(p)) => Callee::StartExecution(p),
            (None, None) => {
                let f = if lambda_invoke || plain_lambda {
                    Failure::new(
                        "Lambda.ResourceNotFoundException",
                        format!(
                            "Function not found: arn:aws:lambda:{}:{}:function:{handler_key} (no handler registered)",
                            self.inner.region, self.inner.account
                        ),
                    )
                } else {
                    Failure::new(
                        names::RUNTIME,
                        format!("No handler is registered for the resource {resource}"),
                    )
                };
                self.event(br, failed, json!({"error": f.error, "cause": f.cause}));
                return Err(f);
            }
        };
        self.inner
            .latest_ms
            .fetch_max(br.now.timestamp_millis(), Ordering::Relaxed);
        let ctx = TaskContext {
            elapsed_ms: Arc::new(AtomicU64::new(0)),
            task_token: token.clone(),
            execution_arn: self.exec.arn.clone(),
            now: br.now,
        };
        let limit = timeout.map(Duration::from_secs);
        // Lambda ends an invocation that outlives its execution at the latest by the Task's timeout.
        self.inner
            .invocations
            .end_overdue(br.now.timestamp_millis());
        let call: BoxFuture<'static, Result<Value, FunctionError>> = match callee {
            Callee::Handler(handler) => {
                // A bounded engine starts the call once a slot is free; the Task's timeout runs from then.
                let slots = self
                    .inner
                    .invocation_slots
                    .read()
                    .expect("slots lock")
                    .clone();
                let slot = match slots {
                    Some(s) => Some(
                        s.acquire_owned()
                            .await
                            .expect("the engine's slots stay open"),
                    ),
                    None => None,
                };
                // A handler that panics is a crashed function: AWS reports it as Lambda.Unknown.
                let call = std::panic::AssertUnwindSafe(handler(payload, ctx.clone())).catch_unwind().map(move |r| {
                    drop(slot);
                    r.unwrap_or_else(|_| {
                        Err(FunctionError::new(
                            "Lambda.Unknown",
                            "The cause could not be determined because Lambda did not return an error type.",
                        ))
                    })
                });
                self.detached(
                    call,
                    timeout.map(|t| br.now + chrono::Duration::seconds(t as i64)),
                )
                .boxed()
            }
            Callee::StartExecution(pattern) => {
                match self.start_execution(pattern, &st.name, &args, &ctx) {
                    Ok((call, submitted)) => {
                        // A `.sync` task has made its call and now waits for the job to end.
                        if let Some(out) = submitted
                            && self.recording(br)
                        {
                            self.event(
                                br,
                                EventType::TaskSubmitted,
                                json!({"resource": resource, "output": out}),
                            );
                        }
                        call
                    }
                    Err(f) => {
                        self.event(
                            br,
                            failed,
                            json!({"resource": resource, "error": f.error, "cause": f.cause}),
                        );
                        return Err(f);
                    }
                }
            }
        };
        // When a `.waitForTaskToken` task was answered, in the answerer's virtual time.
        let mut answered_at = None;
        let outcome: Result<Value, Failure> = if let Some(tok) = &token {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let (hb_tx, mut hb_rx) = tokio::sync::watch::channel(0u64);
            let _slot = TokenGuard {
                inner: &self.inner,
                token: tok,
            };
            self.inner.tokens.lock().expect("tokens lock").insert(
                tok.clone(),
                TokenSlot {
                    reply: Some(tx),
                    heartbeat: hb_tx,
                },
            );
            match call.await {
                Err(e) => Err(handler_failure(&e, lambda_invoke || plain_lambda)),
                Ok(_) => {
                    // The call returned: the task waits for its token (and no call is running any more).
                    if self.recording(br) {
                        self.event(br, EventType::TaskSubmitted, json!({"resource": resource}));
                    }
                    let answered_at = &mut answered_at;
                    let wait = async {
                        match rx.await {
                            Ok(TokenReply::Success(v, at)) => {
                                *answered_at = at;
                                Ok(v)
                            }
                            Ok(TokenReply::Failure(f, at)) => {
                                *answered_at = at;
                                Err(f)
                            }
                            Err(_) => Err(Failure::new(
                                names::TASK_FAILED,
                                "the task token was dropped",
                            )),
                        }
                    };
                    let heartbeat_guard = async {
                        match heartbeat {
                            None => futures::future::pending::<Failure>().await,
                            Some(h) => loop {
                                match tokio::time::timeout(Duration::from_secs(h), hb_rx.changed())
                                    .await
                                {
                                    Ok(Ok(())) => continue,
                                    Ok(Err(_)) => {
                                        break futures::future::pending::<Failure>().await;
                                    }
                                    Err(_) => break Failure::new(names::HEARTBEAT_TIMEOUT, ""),
                                }
                            },
                        }
                    };
                    let overall = async {
                        match limit {
                            Some(l) => {
                                tokio::time::sleep(l).await;
                                Failure::new(names::TIMEOUT, "")
                            }
                            None => futures::future::pending().await,
                        }
                    };
                    tokio::select! {
                        r = wait => r,
                        f = heartbeat_guard => Err(f),
                        f = overall => Err(f),
                    }
                }
            }
        } else {
            let r = match limit {
                Some(l) => tokio::time::timeout(l, call).await.ok(),
                None => Some(call.await),
            };
            match r {
                None => Err(Failure::new(names::TIMEOUT, "")),
                Some(Err(e)) => Err(handler_failure(&e, lambda_invoke || plain_lambda)),
                Some(Ok(v)) => {
                    if limit.is_some_and(|l| ctx.elapsed() > l) {
                        Err(Failure::new(names::TIMEOUT, ""))
                    } else {
                        Ok(v)
                    }
                }
            }
        };
        let spent = match limit {
            Some(l) => ctx.elapsed().min(l),
            None => ctx.elapsed(),
        };
        // An answer given later in virtual time ends the wait then; past the task's timeout, the task had
        // already timed out.
        let started = br.now;
        let deadline = limit.map(|l| started + chrono::Duration::from_std(l).unwrap_or_default());
        let outcome = match (answered_at, deadline) {
            (Some(at), Some(end)) if at > end => {
                br.now = end;
                Err(Failure::new(names::TIMEOUT, ""))
            }
            (Some(at), _) => {
                br.now = br.now.max(at);
                outcome
            }
            (None, _) => outcome,
        };
        br.now += chrono::Duration::from_std(spent).unwrap_or_default();
        let outcome = outcome.and_then(|v| {
            if exceeds(&v, MAX_PAYLOAD_BYTES) {
                Err(Failure::new(
                    names::DATA_LIMIT_EXCEEDED,
                    format!("The state/task '{resource}' returned a result with a size exceeding the maximum number of bytes service limit."),
                ))
            } else {
                Ok(v)
            }
        });
        match outcome {
            Ok(v) => {
                let result = if lambda_invoke && !wait_token {
                    let tail = args.get("LogType").and_then(Value::as_str) == Some("Tail");
                    wrap_invoke_result(v, tail)
                } else {
                    v
                };
                if self.recording(br) {
                    self.event(
                        br,
                        succeeded,
                        json!({"resource": resource, "output": result}),
                    );
                }
                Ok(result)
            }
            Err(f) => {
                if self.recording(br) {
                    let ty = if f.error == names::TIMEOUT || f.error == names::HEARTBEAT_TIMEOUT {
                        timed_out
                    } else {
                        failed
                    };
                    self.event(
                        br,
                        ty,
                        json!({"resource": resource, "error": f.error, "cause": f.cause}),
                    );
                }
                Err(f)
            }
        }
    }

    /// Runs a handler call as its own task ([`crate::runtime::invocation`]): a stopped execution drops the
    /// returned future, not the call, which runs on until it returns or its `deadline` passes.
    fn detached(
        &self,
        call: impl std::future::Future<Output = Result<Value, FunctionError>> + Send + 'static,
        deadline: Option<chrono::DateTime<chrono::Utc>>,
    ) -> impl std::future::Future<Output = Result<Value, FunctionError>> + Send + 'static {
        let inner = self.inner.clone();
        let (go, ready) = tokio::sync::oneshot::channel::<u64>();
        let task = tokio::spawn(async move {
            let out = call.await;
            if let Ok(id) = ready.await {
                inner.invocations.finished(id);
            }
            out
        });
        let id = self.inner.invocations.started(
            deadline,
            self.exec.done.subscribe(),
            task.abort_handle(),
        );
        let _ = go.send(id);
        task.map(|r| {
            r.unwrap_or_else(|_| {
                Err(FunctionError::new(
                    "Lambda.Unknown",
                    "The function was ended at its timeout.",
                ))
            })
        })
    }
}
