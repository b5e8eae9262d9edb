//! Tracing set-up shared by every binary.
//!
//! In Lambda with `AWS_LAMBDA_LOG_FORMAT=JSON`, CloudWatch expects one JSON object per line, so logs (and the
//! Embedded Metric Format records written beside them) are emitted as JSON; everywhere else they are text.
//!
//! Every line goes through [`crate::redact`] on its way out: the writer, not a formatting layer, redacts,
//! because the writer sees the finished line whatever produced it (our fields, a message built with
//! `format!`, the SDK's or tokio-postgres' own events) and in both formats, where a layer would have to
//! re-implement both formatters and could still miss a secret inside a `Debug` value. Colours are off for
//! the same reason: an escape code between `password` and `=` would hide the pair from the patterns.

mod capture;
mod format;
mod metrics;
mod redacting;

pub use capture::{CaptureGuard, CapturedLogs, CapturedWriter, capture};
pub use format::{LogFormat, subscriber};
pub use metrics::{METRICS_TARGET, emit as emit_metrics};
pub use redacting::{Redacting, RedactingWriter};

use format::filter_from;

/// Installs the global subscriber. Safe to call more than once: later calls keep the first subscriber.
pub fn init() {
    init_with_default("info");
}

/// Like [`init`], with `default` as the filter when neither `RUST_LOG` nor `AWS_LAMBDA_LOG_LEVEL` is set:
/// the CLI passes `warn`, so that the handlers it runs in-process log (and emit metrics) only when asked.
pub fn init_with_default(default: &str) {
    let format = LogFormat::from_setting(std::env::var("AWS_LAMBDA_LOG_FORMAT").ok().as_deref());
    let filter = filter_from(
        std::env::var("RUST_LOG").ok(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok(),
        default,
    );
    let _already_set =
        tracing::subscriber::set_global_default(subscriber(format, filter, std::io::stderr));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_twice_does_not_panic() {
        init();
        init();
    }
}
