use std::time::Duration;

use serde_json::json;

use super::io::exceeds;
use super::retry::{matches_error, retry_delay};
use crate::error::names;
use crate::model::Retrier;

#[test]
fn retry_delays_back_off_cap_and_jitter() {
    let r = Retrier {
        error_equals: vec![],
        interval_seconds: 1.0,
        max_attempts: 5,
        backoff_rate: 2.0,
        max_delay_seconds: Some(5.0),
        jitter_full: false,
    };
    let secs: Vec<u64> = (0..4).map(|n| retry_delay(&r, n).as_secs()).collect();
    assert_eq!(secs, vec![1, 2, 4, 5]);
    let j = Retrier {
        jitter_full: true,
        ..r
    };
    assert!((0..50).all(|n| retry_delay(&j, n % 3) <= Duration::from_secs(4)));
}

#[test]
fn payload_size_limit() {
    assert!(!exceeds(&json!({"a": "x".repeat(100)}), 200));
    assert!(exceeds(&json!({"a": "x".repeat(300)}), 200));
    let v = json!({"k": [1, "two", null, true]});
    assert!(!exceeds(&v, v.to_string().len()));
    assert!(exceeds(&v, v.to_string().len() - 1));
}

#[test]
fn error_matching_rules() {
    let all = vec![names::ALL.to_string()];
    let failed = vec![names::TASK_FAILED.to_string()];
    assert!(matches_error(&all, "Anything"));
    assert!(!matches_error(&all, names::RUNTIME));
    assert!(matches_error(&failed, "Lambda.Unknown"));
    assert!(!matches_error(&failed, names::TIMEOUT));
    assert!(matches_error(&["X".to_string()], "X"));
}
