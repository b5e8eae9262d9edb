//! Transitions per second of the local engine: a 10,000-item inline Map of Pass states, and a
//! 100-state Choice/Pass chain. Run with `cargo bench -p opsplane-statemachines --bench engine`.

use std::collections::HashMap;
use std::time::Instant;

use opsplane_statemachines::{Engine, Status};
use serde_json::{Value, json};

fn map_definition() -> Value {
    json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "P1", "States": {
            "P1": {"Type": "Pass", "Parameters": {"v.$": "$"}, "Next": "P2"},
            "P2": {"Type": "Pass", "End": true}}}}}})
}

fn chain_definition(n: usize) -> Value {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let name = format!("S{i}");
        let next = format!("S{}", i + 1);
        let last = i + 1 == n;
        let state = if i % 2 == 0 {
            let target = if last { "Done".to_string() } else { next };
            json!({"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 0, "Next": target}], "Default": "Done"})
        } else if last {
            json!({"Type": "Pass", "End": true})
        } else {
            json!({"Type": "Pass", "Next": next})
        };
        states.insert(name, state);
    }
    states.insert("Done".into(), json!({"Type": "Succeed"}));
    json!({"StartAt": "S0", "States": states})
}

async fn measure(
    label: &str,
    engine: &Engine,
    def: &Value,
    input: Value,
    runs: usize,
    transitions_per_run: usize,
) {
    let arn = engine
        .register_state_machine("bench", &def.to_string(), &HashMap::new())
        .expect("valid definition");
    // One warm-up run.
    let d = engine.run(&arn, input.clone()).await.expect("run");
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    let start = Instant::now();
    for _ in 0..runs {
        let d = engine.run(&arn, input.clone()).await.expect("run");
        assert_eq!(d.status, Status::Succeeded);
    }
    let secs = start.elapsed().as_secs_f64();
    let transitions = (runs * transitions_per_run) as f64;
    println!(
        "{label:<55} {:>10.0} transitions/s ({transitions} transitions in {secs:.3} s)",
        transitions / secs
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let items: Vec<Value> = (0..10_000).map(|i| json!({"i": i})).collect();
        let map = map_definition();
        let chain = chain_definition(100);
        // A 10,000-item inline Map writes more history than AWS's 25,000-event quota allows; the
        // bench measures transitions, so the quota is lifted.
        let recording = Engine::new();
        recording.set_history_quota(None);
        for (history, engine) in [
            ("with history", recording),
            ("without history", Engine::without_history()),
        ] {
            // Map: one Map state plus two Pass states per item.
            measure(
                &format!("inline Map, 10,000 items x 2 Pass ({history})"),
                &engine,
                &map,
                Value::Array(items.clone()),
                5,
                1 + 20_000,
            )
            .await;
            measure(
                &format!("Choice/Pass chain, 100 states ({history})"),
                &engine,
                &chain,
                json!({"n": 1}),
                2_000,
                100,
            )
            .await;
        }
    });
}
