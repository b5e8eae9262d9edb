//! Tracing set-up shared by every binary.
//!
//! In Lambda with `AWS_LAMBDA_LOG_FORMAT=JSON`, CloudWatch expects one JSON object per line, so logs (and the
//! Embedded Metric Format records written beside them) are emitted as JSON; everywhere else they are text.

use tracing_subscriber::EnvFilter;

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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _already_set = match format {
        // Lambda adds its own timestamp and request id; the JSON layer keeps fields flat for Logs Insights.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .without_time()
            .with_ansi(false)
            .try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
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
    fn init_twice_does_not_panic() {
        init();
        init();
    }
}
