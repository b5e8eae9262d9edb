//! The subscriber every binary installs: the log format Lambda asks for, the level filter, and every line
//! redacted on its way out.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use super::redacting::Redacting;

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
pub(super) fn filter_from(
    rust_log: Option<String>,
    lambda_level: Option<String>,
    default: &str,
) -> EnvFilter {
    let directive = rust_log
        .or_else(|| lambda_level.map(|l| l.to_ascii_lowercase()))
        .unwrap_or_else(|| default.to_owned());
    EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new(default))
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
            filter_from(Some("debug".into()), Some("ERROR".into()), "info").to_string(),
            "debug"
        );
        assert_eq!(
            filter_from(None, Some("WARN".into()), "info").to_string(),
            "warn"
        );
        assert_eq!(filter_from(None, None, "info").to_string(), "info");
        assert_eq!(filter_from(None, None, "warn").to_string(), "warn");
        assert_eq!(
            filter_from(Some("[[bad".into()), None, "info").to_string(),
            "info"
        );
    }
}
