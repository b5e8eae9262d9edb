//! Embedded Metric Format records: one JSON object per line in the handler's log, where CloudWatch Logs
//! turns them into metrics.

use std::io::Write;

/// The tracing target whose level decides whether metric records are written: `info` in Lambda (the default
/// level there), hidden from the CLI unless `RUST_LOG` asks for it (`RUST_LOG=opsplane::metrics=info`).
pub const METRICS_TARGET: &str = "opsplane::metrics";

/// Writes `record` as one line to stderr, the handler's log, when [`METRICS_TARGET`] is enabled at `info`.
///
/// The record is written raw rather than as a tracing event: CloudWatch extracts metrics only from a log
/// line that is the EMF object itself, and the JSON formatter would nest it inside its own object.
pub fn emit(record: &serde_json::Value) {
    if tracing::enabled!(target: METRICS_TARGET, tracing::Level::INFO) {
        let mut err = std::io::stderr().lock();
        // A metric lost to a closed stderr is not worth failing the handler for.
        let _ = writeln!(err, "{record}");
    }
}
