//! The Map state: items (or an `ItemReader`), selectors, batching and concurrency; an inline Map's
//! iterations run here, a DISTRIBUTED Map's as the child executions of a Map Run (`map_run`).

use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::error::{Failure, names};
use crate::history::EventType;
use crate::model::{Dynamic, MapSpec, PathField, QueryLanguage, State, Template};
use crate::probe::Mock;
use crate::runtime::env::Env;
use crate::runtime::io::{as_number, display_plain, dyn_path, json_type};
use crate::runtime::runner::{Branch, Runner};
use crate::runtime::scope::Scope;

use super::map_run::{Limits, Plan};

impl Runner {
    pub(in crate::runtime) async fn map(
        &self,
        env: &Env<'_>,
        st: &State,
        spec: &MapSpec,
        input: &Value,
        br: &mut Branch,
    ) -> Result<Value, Failure> {
        let jsonata = st.query_language == QueryLanguage::Jsonata;
        let name = &*st.name;
        let prefix = env.prefix();
        let rt = |m: String| Failure::runtime(format!("{prefix} {m}"));
        let items: Vec<Value> = if let Some(reader) = &spec.item_reader {
            let params = match &reader.parameters {
                Some(p) if jsonata => env.ja_template(p, input, None, "Arguments")?,
                Some(p) => env.template(p, input, "ItemReader.Parameters")?,
                None => Value::Object(Map::new()),
            };
            let port = self.inner.item_reader.read().expect("reader lock").clone();
            let Some(port) = port else {
                return Err(Failure::new(
                    names::ITEM_READER_FAILED,
                    "No ItemReader port is configured in the engine",
                ));
            };
            crate::item_reader::read_items(
                port.as_ref(),
                &reader.resource,
                &params,
                &reader.reader_config,
            )
            .await
            .map_err(|e| Failure::new(names::ITEM_READER_FAILED, e))?
        } else {
            let v = if jsonata {
                match &spec.items {
                    Some(t) => env.ja_template(t, input, None, "Items")?,
                    None => input.clone(),
                }
            } else {
                match &spec.items_path {
                    PathField::Path(p) => env.select(p, input)?.ok_or_else(|| {
                        rt(format!(
                            "Invalid path '{p}' : No results for path: ItemsPath"
                        ))
                    })?,
                    _ => input.clone(),
                }
            };
            match v {
                Value::Array(a) => a,
                other => {
                    let msg = match (&spec.items, jsonata) {
                        (Some(Template::Jsonata(e)), true) => format!(
                            "The JSONata expression '{e}' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was '{}' for value: {other}",
                            json_type(&other)
                        ),
                        _ => format!("Map state input must be an array, got {other}"),
                    };
                    return Err(if jsonata {
                        Failure::query(rt(msg).cause)
                    } else {
                        rt(msg)
                    });
                }
            }
        };
        let int_field = |d: &Option<Dynamic>, field: &str| -> Result<Option<Value>, Failure> {
            d.as_ref().map(|d| env.dynamic(d, input, field)).transpose()
        };
        let max_conc = match int_field(&spec.max_concurrency, "MaxConcurrencyPath")? {
            None => 0,
            Some(v) => match as_number(&v)
                .and_then(|x| (x >= 0.0 && x.fract() == 0.0).then_some(x as u64))
            {
                Some(n) => n as usize,
                None => {
                    return Err(rt(format!(
                        "The MaxConcurrencyPath field refers to value \"{}\" which is not a valid integer: {}",
                        display_plain(&v),
                        dyn_path(&spec.max_concurrency)
                    )));
                }
            },
        };
        let tolerated_count = match int_field(
            &spec.tolerated_failure_count,
            "ToleratedFailureCountPath",
        )? {
            None => None,
            Some(v) => match as_number(&v).filter(|x| x.fract() == 0.0) {
                Some(n) if n < 0.0 => {
                    return Err(rt("ToleratedFailureCount cannot be negative.".into()));
                }
                Some(n) => Some(n as usize),
                None => {
                    return Err(rt(format!(
                        "The ToleratedFailureCountPath field refers to value \"{}\" which is not a valid integer: {}",
                        display_plain(&v),
                        dyn_path(&spec.tolerated_failure_count)
                    )));
                }
            },
        };
        let tolerated_pct = match int_field(
            &spec.tolerated_failure_percentage,
            "ToleratedFailurePercentagePath",
        )? {
            None => None,
            Some(v) => match as_number(&v) {
                Some(p) if !(0.0..=100.0).contains(&p) => {
                    return Err(rt(
                        "ToleratedFailurePercentage must be between 0 and 100.".into()
                    ));
                }
                Some(p) => Some(p),
                None => {
                    return Err(rt(format!(
                        "The ToleratedFailurePercentagePath field refers to value \"{}\" which is not a valid float: {}",
                        display_plain(&v),
                        dyn_path(&spec.tolerated_failure_percentage)
                    )));
                }
            },
        };
        if let Some(p) = self.probe() {
            if !jsonata {
                p.record("afterItemsPath", &Value::Array(items.clone()));
            }
            p.record_raw("maxConcurrency", json!(max_conc));
            if let Some(c) = tolerated_count {
                p.record_raw("toleratedFailureCount", json!(c));
            }
            if let Some(pct) = tolerated_pct {
                p.record_raw("toleratedFailurePercentage", json!(pct));
            }
            // TestState's mock stands for the whole Map state's result; `mapIterationFailureCount`
            // simulates failed iterations against the state's tolerated-failure thresholds.
            match &p.mock {
                Some(Mock::Error(f)) => return Err(f.clone()),
                Some(Mock::Result(v)) => {
                    if let Some(failed) = p.map_iteration_failure_count {
                        let over_count = tolerated_count.is_some_and(|c| failed as usize > c);
                        let over_pct = tolerated_pct.is_some_and(|pct| {
                            !items.is_empty() && failed as f64 * 100.0 / items.len() as f64 > pct
                        });
                        if over_count || over_pct {
                            return Err(Failure::new(
                                names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                                "The specified tolerated failure threshold was exceeded",
                            ));
                        }
                    }
                    return Ok(v.clone());
                }
                None => {}
            }
        }
        // Batching groups items as `{"Items": [...]}` per child execution.
        let items = match &spec.item_batcher {
            Some(b) => {
                let size = b
                    .get("MaxItemsPerBatch")
                    .and_then(Value::as_u64)
                    .unwrap_or(items.len().max(1) as u64)
                    .max(1) as usize;
                let base = b.get("BatchInput").cloned();
                items
                    .chunks(size)
                    .map(|c| {
                        let mut m = Map::new();
                        if let Some(Value::Object(bi)) = &base {
                            m.insert("BatchInput".into(), Value::Object(bi.clone()));
                        }
                        m.insert("Items".into(), Value::Array(c.to_vec()));
                        Value::Object(m)
                    })
                    .collect()
            }
            None => items,
        };
        let n = items.len();
        if self.recording(br) && env.retry_count == 0 {
            self.event(br, EventType::MapStateStarted, json!({"length": n}));
        }
        if spec.distributed {
            let plan = Plan {
                items,
                limits: Limits {
                    max_concurrency: max_conc,
                    tolerated_count,
                    tolerated_pct,
                },
            };
            return self.map_run(env, st, spec, input, plan, br).await;
        }
        let start = br.now;
        let processor = spec.processor.clone();
        let parent_scope = br.scope.clone();
        let limit = if max_conc == 0 { n.max(1) } else { max_conc };
        let (prev, record) = (br.prev_event, self.recording(br));
        let iterations = futures::stream::iter(items.into_iter().enumerate())
            .map(|(i, item)| {
                let processor = processor.clone();
                let parent_scope = parent_scope.clone();
                async move {
                    let item_input = match &spec.item_selector {
                        None => item,
                        Some(t) => {
                            let ienv = Env {
                                map_item: Some((i, &item)),
                                token: None,
                                ..*env
                            };
                            if jsonata {
                                ienv.ja_template(t, input, None, "ItemSelector")?
                            } else {
                                ienv.template(t, input, "ItemSelector")?
                            }
                        }
                    };
                    let mut sub = Branch {
                        now: start,
                        scope: Scope::new(Some(parent_scope)),
                        prev_event: prev,
                        record,
                    };
                    if record {
                        self.event(
                            &mut sub,
                            EventType::MapIterationStarted,
                            json!({"name": name, "index": i}),
                        );
                    }
                    let r = self.run_states(&processor, item_input, &mut sub).await;
                    if record {
                        let ty = if r.is_ok() {
                            EventType::MapIterationSucceeded
                        } else {
                            EventType::MapIterationFailed
                        };
                        self.event(&mut sub, ty, json!({"name": name, "index": i}));
                    }
                    Ok::<_, Failure>((r, sub.now))
                }
            })
            .buffered(limit);
        futures::pin_mut!(iterations);
        let mut out = Vec::with_capacity(n);
        while let Some(r) = iterations.next().await {
            let (r, t) = r?;
            br.now = br.now.max(t);
            match r {
                Ok(v) => out.push(v),
                // An inline Map fails with its first failed iteration.
                Err(f) => {
                    self.event(
                        br,
                        EventType::MapStateFailed,
                        json!({"error": f.error, "cause": f.cause}),
                    );
                    return Err(f);
                }
            }
        }
        if self.recording(br) {
            self.event(br, EventType::MapStateSucceeded, Value::Null);
        }
        Ok(Value::Array(out))
    }
}
