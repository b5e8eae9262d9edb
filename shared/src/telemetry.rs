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

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (Lambda's JSON log format).
    Json,
    /// Human-readable text.
    Text,
}

impl LogFormat {
    /// The format selected by the value of `AWS_LAMBDA_LOG_FORMAT`.
    pub fn from_setting(value: Option<&str>) -> Self {
        match value {
            Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }
}

/// The filter from `RUST_LOG`, else Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `info`.
fn filter_from(rust_log: Option<String>, lambda_level: Option<String>) -> EnvFilter {
    let directive = rust_log
        .or_else(|| lambda_level.map(|l| l.to_ascii_lowercase()))
        .unwrap_or_else(|| "info".to_owned());
    EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the global subscriber. Safe to call more than once: later calls keep the first subscriber.
pub fn init() {
    let format = LogFormat::from_setting(std::env::var("AWS_LAMBDA_LOG_FORMAT").ok().as_deref());
    let filter = filter_from(
        std::env::var("RUST_LOG").ok(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok(),
    );
    let _already_set =
        tracing::subscriber::set_global_default(subscriber(format, filter, std::io::stderr));
}

/// The subscriber every binary installs: `format`, `filter`, each line redacted and written to `writer`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Redacting(writer));
    match format {
        // Lambda adds its own timestamp and request id; the JSON layer keeps fields flat for Logs Insights.
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .without_time()
                .finish(),
        ),
        LogFormat::Text => Box::new(builder.compact().finish()),
    }
}

/// A [`MakeWriter`] whose writers pass each line through [`crate::redact::redact`] before the inner writer
/// sees it.
#[derive(Debug, Clone)]
pub struct Redacting<M>(pub M);

impl<'w, M: MakeWriter<'w>> MakeWriter<'w> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'w self) -> Self::Writer {
        RedactingWriter {
            inner: self.0.make_writer(),
            buffer: Vec::new(),
        }
    }
}

/// Buffers one event's output and writes it redacted when flushed or dropped (the formatter writes an event
/// in pieces, and a secret may straddle two of them).
#[derive(Debug)]
pub struct RedactingWriter<W: Write> {
    inner: W,
    buffer: Vec<u8>,
}

impl<W: Write> RedactingWriter<W> {
    fn emit(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buffer);
        let clean = crate::redact::redact(&text);
        self.inner.write_all(clean.as_bytes())?;
        self.buffer.clear();
        self.inner.flush()
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.emit()
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        // A log line that cannot be written is dropped; there is nowhere left to report it.
        let _ = self.emit();
    }
}

/// Log lines kept in memory: what [`capture`] collected, exactly as production would have written them.
#[derive(Debug, Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// Appends to a [`CapturedLogs`].
#[derive(Debug)]
pub struct CapturedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for CapturedLogs {
    type Writer = CapturedWriter;

    fn make_writer(&'w self) -> Self::Writer {
        CapturedWriter(self.0.clone())
    }
}

/// Captures this thread's log lines in memory, through the same subscriber (format, redaction) that
/// [`init`] installs, until the guard is dropped. For tests that check what the logs say, or do not.
pub fn capture(
    format: LogFormat,
    directive: &str,
) -> (tracing::subscriber::DefaultGuard, CapturedLogs) {
    let logs = CapturedLogs::default();
    let filter = EnvFilter::try_new(directive).unwrap_or_else(|_| EnvFilter::new("info"));
    let guard = tracing::subscriber::set_default(subscriber(format, filter, logs.clone()));
    (guard, logs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_only_when_lambda_asks_for_it() {
        assert_eq!(LogFormat::from_setting(Some("JSON")), LogFormat::Json);
        assert_eq!(LogFormat::from_setting(Some("json")), LogFormat::Json);
        assert_eq!(LogFormat::from_setting(Some("Text")), LogFormat::Text);
        assert_eq!(LogFormat::from_setting(None), LogFormat::Text);
    }

    #[test]
    fn filter_prefers_rust_log_then_lambda_level() {
        assert_eq!(
            filter_from(Some("debug".into()), Some("ERROR".into())).to_string(),
            "debug"
        );
        assert_eq!(filter_from(None, Some("WARN".into())).to_string(), "warn");
        assert_eq!(filter_from(None, None).to_string(), "info");
        assert_eq!(filter_from(Some("[[bad".into()), None).to_string(), "info");
    }

    #[test]
    fn every_line_is_redacted_in_both_formats() {
        for format in [LogFormat::Json, LogFormat::Text] {
            let (guard, logs) = capture(format, "info");
            let url = "postgres://probe:line-secret-1@db:5432/app";
            tracing::info!(target_url = url, "connecting with password=line-secret-2");
            tracing::warn!(?url, "debug-formatted");
            drop(guard);
            let text = logs.text();
            assert!(
                text.contains("connecting with password=[REDACTED]"),
                "{text}"
            );
            assert!(text.contains("probe:[REDACTED]@db"), "{text}");
            assert!(!text.contains("line-secret"), "{text}");
            assert_eq!(text.lines().count(), 2, "{text}");
            assert!(!text.contains('\u{1b}'), "no colour codes: {text}");
        }
    }

    #[test]
    fn init_twice_does_not_panic() {
        init();
        init();
    }
}
