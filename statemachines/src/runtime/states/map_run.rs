//! A DISTRIBUTED Map's Map Run: every item (or batch) runs as a child execution of its own, with its own
//! history, history quota and payload limit, visible through the engine's API ("Distributed map state"
//! and "Examining Map Runs", https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html,
//! https://docs.aws.amazon.com/step-functions/latest/dg/concepts-examine-map-run.html). The parent's
//! history keeps only the Map Run's own events.
//!
//! `MaxConcurrency` bounds how many children run at once, in virtual time as on AWS: the first
//! `MaxConcurrency` items start when the Map starts, and each later item starts when a slot frees up,
//! at the virtual stop time of the child whose slot it takes, the earliest free one first. The Map ends
//! at the latest child's stop. Children run concurrently in real time and end in any order; a slot that
//! frees at virtual time T is taken only once no child that started before T still runs (it could free
//! an earlier one), so the schedule is the one virtual time gives, whatever the real order.
//! Once more children failed than `ToleratedFailureCount`/`ToleratedFailurePercentage` allow, the Map
//! Run fails: no more items start (they stay PENDING) and the running children are stopped.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};

use crate::engine::Engine;
use crate::error::{Failure, names};
use crate::execution::{Description, Execution, Machine, Started, Status};
use crate::history::EventType;
use crate::model::{Kind, MapSpec, QueryLanguage, State, Transformation};
use crate::runtime::env::Env;
use crate::runtime::runner::{Branch, Runner};

/// What a Map Run is to do: its items (or batches) and its limits, as the Map state's fields evaluated.
pub(super) struct Plan {
    /// The items, each a child execution's input before the `ItemSelector`.
    pub(super) items: Vec<Value>,
    /// The limits.
    pub(super) limits: Limits,
}

/// A Map Run's limits.
pub(super) struct Limits {
    /// `MaxConcurrency`: 0 for no limit.
    pub(super) max_concurrency: usize,
    /// `ToleratedFailureCount`.
    pub(super) tolerated_count: Option<usize>,
    /// `ToleratedFailurePercentage`.
    pub(super) tolerated_pct: Option<f64>,
}

impl Limits {
    /// Whether `failures` of `n` children are within the tolerated thresholds (none without either).
    fn tolerates(&self, failures: usize, n: usize) -> bool {
        failures == 0
            || self.tolerated_count.is_some_and(|c| failures <= c)
            || self
                .tolerated_pct
                .is_some_and(|p| failures as f64 * 100.0 / n.max(1) as f64 <= p)
    }
}

/// A Map Run: its ARN and the id its results are written under.
pub(super) struct MapRun {
    pub(super) arn: String,
    pub(super) id: String,
}

/// What the children did: every started child's description, in item order, and the inputs of the
/// items never started.
pub(super) struct Outcome {
    pub(super) children: Vec<Description>,
    pub(super) pending: Vec<Value>,
}

/// Stops the children still running when the Map Run is dropped: its parent was stopped, another
/// branch failed it, or the Map Run failed.
struct Children(Vec<Arc<Execution>>);

impl Children {
    fn stop_running(&self) {
        for c in &self.0 {
            if c.describe().status == Status::Running {
                c.stop("", "");
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop_running();
    }
}

impl Runner {
    /// Runs `items` as the Map Run of the DISTRIBUTED Map `st`, and returns the Map's result: the
    /// children's results, or where its `ResultWriter` wrote them.
    pub(super) async fn map_run(
        &self,
        env: &Env<'_>,
        st: &State,
        spec: &MapSpec,
        input: &Value,
        plan: Plan,
        br: &mut Branch,
    ) -> Result<Value, Failure> {
        let (region, account) = (&self.inner.region, &self.inner.account);
        // Child executions run the ItemProcessor as a state machine named after the parent and the
        // Map's label: `<machine>/<label>` (AWS's ARNs for a Map Run and its children).
        let label = spec.label.as_deref().unwrap_or(&st.name);
        let machine_name = format!("{}/{label}", self.exec.machine.name);
        let machine = Arc::new(Machine {
            arn: format!("arn:aws:states:{region}:{account}:stateMachine:{machine_name}"),
            name: machine_name.clone(),
            model: spec.processor.clone(),
            machine_type: spec.execution_type,
        });
        let id = uuid::Uuid::new_v4().to_string();
        let run = MapRun {
            arn: format!("arn:aws:states:{region}:{account}:mapRun:{machine_name}:{id}"),
            id,
        };
        if self.recording(br) && env.retry_count == 0 {
            self.event(br, EventType::MapRunStarted, json!({"mapRunArn": run.arn}));
        }
        let (outcome, exceeded) = self.run_children(env, st, input, plan, br, machine).await?;
        let written = match &spec.result_writer {
            Some(rw) if rw.resource.is_some() => {
                Some(self.write_results(env, st, rw, input, &run, &outcome).await)
            }
            _ => None,
        };
        let failure = if exceeded {
            Some(Failure::new(
                names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                "The specified tolerated failure threshold was exceeded",
            ))
        } else {
            written.as_ref().and_then(|w| w.as_ref().err().cloned())
        };
        if let Some(f) = failure {
            let details = json!({"error": f.error, "cause": f.cause});
            self.event(br, EventType::MapRunFailed, details.clone());
            self.event(br, EventType::MapStateFailed, details);
            return Err(f);
        }
        if self.recording(br) {
            self.event(br, EventType::MapRunSucceeded, Value::Null);
            self.event(br, EventType::MapStateSucceeded, Value::Null);
        }
        match written {
            Some(w) => w,
            None => {
                let t = spec
                    .result_writer
                    .as_ref()
                    .map_or(Transformation::Compact, |rw| rw.transformation);
                Ok(Value::Array(super::result_writer::shaped(
                    &outcome.children,
                    t,
                )))
            }
        }
    }

    /// Starts the children as their concurrency slots free up and waits for them all; answers what
    /// they did and whether they failed past the tolerated thresholds.
    async fn run_children(
        &self,
        env: &Env<'_>,
        st: &State,
        input: &Value,
        plan: Plan,
        br: &mut Branch,
        machine: Arc<Machine>,
    ) -> Result<(Outcome, bool), Failure> {
        let Plan { items, limits } = plan;
        let engine = Engine {
            inner: self.inner.clone(),
        };
        let n = items.len();
        let start = br.now;
        let slots = if limits.max_concurrency == 0 {
            n
        } else {
            limits.max_concurrency.min(n)
        };
        // When each concurrency slot is free next, earliest first.
        let mut free: BinaryHeap<Reverse<DateTime<Utc>>> =
            std::iter::repeat_n(Reverse(start), slots).collect();
        // The start times of the children still running (how many started at each).
        let mut running: BTreeMap<DateTime<Utc>, usize> = BTreeMap::new();
        let mut started = Children(Vec::with_capacity(n));
        let mut waiting = FuturesUnordered::new();
        let (mut failures, mut exceeded) = (0usize, false);
        loop {
            // A slot free at `at` is the next one only when no running child could still free an
            // earlier one: children end in real time in any order, but take their slots in virtual time.
            while !exceeded
                && started.0.len() < n
                && let Some(&Reverse(at)) = free.peek()
                && running.keys().next().is_none_or(|earliest| *earliest >= at)
            {
                free.pop();
                let i = started.0.len();
                let item_input = item_input(env, st, input, i, &items[i])?;
                let child = match engine.start_at(machine.clone(), None, item_input, at, None) {
                    Ok(Started::New(c) | Started::Existing(c)) => c,
                    Err(e) => return Err(Failure::runtime(e.to_string())),
                };
                *running.entry(at).or_default() += 1;
                started.0.push(child.clone());
                waiting.push(async move {
                    child.ended().await;
                    i
                });
            }
            let Some(first) = waiting.next().await else {
                break;
            };
            let mut ended = vec![first];
            while let Some(Some(i)) = waiting.next().now_or_never() {
                ended.push(i);
            }
            for i in ended {
                let child = &started.0[i];
                if let Some(count) = running.get_mut(&child.start) {
                    *count -= 1;
                    if *count == 0 {
                        running.remove(&child.start);
                    }
                }
                let d = child.describe();
                let stop = d.stop_date.unwrap_or(start).max(start);
                br.now = br.now.max(stop);
                free.push(Reverse(stop));
                if d.status != Status::Succeeded {
                    failures += 1;
                    if !exceeded && !limits.tolerates(failures, n) {
                        exceeded = true;
                        started.stop_running();
                    }
                }
            }
        }
        let children = started.0.iter().map(|c| c.describe()).collect();
        let pending = (started.0.len()..n)
            .map(|i| item_input(env, st, input, i, &items[i]).unwrap_or_else(|_| items[i].clone()))
            .collect();
        Ok((Outcome { children, pending }, exceeded))
    }
}

/// An item's input: the Map's `ItemSelector` applied (`$$.Map.Item.Index`/`Value` set), else the item.
fn item_input(
    env: &Env<'_>,
    st: &State,
    input: &Value,
    index: usize,
    item: &Value,
) -> Result<Value, Failure> {
    let Kind::Map(spec) = &st.kind else {
        return Ok(item.clone());
    };
    let Some(t) = &spec.item_selector else {
        return Ok(item.clone());
    };
    let ienv = Env {
        map_item: Some((index, item)),
        token: None,
        ..*env
    };
    if st.query_language == QueryLanguage::Jsonata {
        ienv.ja_template(t, input, None, "ItemSelector")
    } else {
        ienv.template(t, input, "ItemSelector")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerated_thresholds() {
        let none = Limits {
            max_concurrency: 0,
            tolerated_count: None,
            tolerated_pct: None,
        };
        assert!(none.tolerates(0, 3));
        assert!(!none.tolerates(1, 3));
        let count = Limits {
            tolerated_count: Some(1),
            ..none
        };
        assert!(count.tolerates(1, 3) && !count.tolerates(2, 3));
        let pct = Limits {
            tolerated_pct: Some(50.0),
            max_concurrency: 0,
            tolerated_count: None,
        };
        assert!(pct.tolerates(2, 4) && !pct.tolerates(3, 4));
    }
}
