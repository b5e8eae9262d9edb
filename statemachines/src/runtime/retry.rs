//! `Retry` and `Catch`: which rule matches an error, how long to wait before retrying, and what a
//! catcher hands to its next state.

use std::time::Duration;

use serde_json::{Value, json};

use super::env::Env;
use super::runner::{Branch, Entered, Runner, StepResult};
use crate::error::{Failure, names};
use crate::model::{Catcher, PathField, QueryLanguage, Retrier, State};
use crate::probe::{Ending, Probe};

pub(super) fn matches_error(names_list: &[String], error: &str) -> bool {
    names_list.iter().any(|n| {
        n == error
            || (n == names::ALL && error != names::RUNTIME)
            || (n == names::TASK_FAILED
                && error != names::TIMEOUT
                && error != names::RUNTIME
                && error != names::HEARTBEAT_TIMEOUT)
    })
}

/// The delay before retry number `attempt` (0-based) of a retrier, jitter applied.
pub(crate) fn retry_delay(r: &Retrier, attempt: u32) -> Duration {
    let mut secs = r.interval_seconds * r.backoff_rate.powi(attempt as i32);
    if let Some(max) = r.max_delay_seconds {
        secs = secs.min(max);
    }
    if r.jitter_full {
        secs *= fastrand::f64();
    }
    Duration::from_secs_f64(secs.max(0.0))
}

impl Runner {
    /// Runs a Task, Parallel or Map with its `Retry` and `Catch` rules.
    pub(in crate::runtime) async fn run_with_retry(
        &self,
        st: &State,
        raw: Value,
        br: &mut Branch,
        entered: Entered,
    ) -> StepResult {
        let mut attempts = vec![0u32; st.retry.len()];
        let mut retry_count = 0u32;
        loop {
            let result = self.attempt(st, &raw, br, entered, retry_count).await;
            let failure = match result {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            if let Some(p) = self.probe() {
                return self.probe_failure(p, st, raw, failure, br, entered);
            }
            if let Some((i, r)) = st
                .retry
                .iter()
                .enumerate()
                .find(|(_, r)| matches_error(&r.error_equals, &failure.error))
                && attempts[i] < r.max_attempts
            {
                let delay = retry_delay(r, attempts[i]);
                attempts[i] += 1;
                retry_count += 1;
                br.now += chrono::Duration::from_std(delay).unwrap_or_default();
                tokio::task::yield_now().await;
                continue;
            }
            if let Some(c) = st
                .catch
                .iter()
                .find(|c| matches_error(&c.error_equals, &failure.error))
            {
                return self.caught(st, c, raw, &failure, br, entered);
            }
            return Err(failure);
        }
    }

    /// A TestState run attempts the state once: a retrier with attempts left (after the simulated
    /// `retrierRetryCount`) makes it RETRIABLE, else a catcher makes it CAUGHT_ERROR, else it fails.
    fn probe_failure(
        &self,
        p: &Probe,
        st: &State,
        raw: Value,
        failure: Failure,
        br: &mut Branch,
        entered: Entered,
    ) -> StepResult {
        let retrier = st
            .retry
            .iter()
            .enumerate()
            .find(|(_, r)| matches_error(&r.error_equals, &failure.error));
        if let Some((i, r)) = retrier {
            let done = p.retrier_retry_count;
            if done < r.max_attempts {
                let mut delay = r.interval_seconds * r.backoff_rate.powi(done as i32);
                if let Some(max) = r.max_delay_seconds {
                    delay = delay.min(max);
                }
                p.record_raw(
                    "errorDetails",
                    json!({"retryBackoffIntervalSeconds": delay.round() as u64, "retryIndex": i}),
                );
                p.end(Ending::Retriable);
                return Err(failure);
            }
            p.record_raw("errorDetails", json!({"retryIndex": i}));
        }
        if let Some((i, c)) = st
            .catch
            .iter()
            .enumerate()
            .find(|(_, c)| matches_error(&c.error_equals, &failure.error))
        {
            p.record_raw("errorDetails", json!({"catchIndex": i}));
            p.catch(failure.clone());
            return self.caught(st, c, raw, &failure, br, entered);
        }
        Err(failure)
    }

    pub(in crate::runtime) fn caught(
        &self,
        st: &State,
        c: &Catcher,
        raw: Value,
        failure: &Failure,
        br: &mut Branch,
        entered: Entered,
    ) -> StepResult {
        let scope = br.scope.clone();
        let env = Env::new(self, st, &scope, entered, 0);
        let err_out = failure.to_output();
        if st.query_language == QueryLanguage::Jsonata {
            let extra = Some(("errorOutput", &err_out));
            let assign = c
                .assign
                .as_ref()
                .map(|a| env.assign(a, &raw, extra))
                .transpose()?;
            let out = match &c.output {
                Some(o) => env.ja_template(o, &raw, extra, "Output")?,
                None => err_out.clone(),
            };
            if let Some(a) = assign {
                scope.set_all(a);
            }
            return Ok((out, Some(c.next)));
        }
        if let Some(a) = &c.assign {
            let vals = env.assign(a, &err_out, None)?;
            scope.set_all(vals);
        }
        let out = match &c.result_path {
            PathField::Default => err_out,
            PathField::Null => raw,
            PathField::Path(p) => p
                .assign(raw, err_out)
                .map_err(|e| Failure::new(names::RESULT_PATH_MATCH_FAILURE, e))?,
        };
        Ok((out, Some(c.next)))
    }
}
