//! Values as a person reads them in reports, tables and messages: never Rust's `Debug` form.

use chrono::{DateTime, NaiveDateTime, Utc};

/// `yes`, `no`, or `absent` when the value was not reported at all.
pub fn yes_no(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => "absent",
    }
}

/// A time to the second with its zone: `2026-11-30 15:02:07 UTC`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A key timestamp (`20261130T150207123Z`, see [`super::backup::key_timestamp`], possibly followed by
/// `-<id>` as a drill's is) as [`timestamp`] shows it; any other text as it is.
pub fn key_timestamp(ts: &str) -> String {
    let time = ts.split('-').next().unwrap_or(ts);
    NaiveDateTime::parse_from_str(time, "%Y%m%dT%H%M%S%3fZ")
        .map(|naive| timestamp(naive.and_utc()))
        .unwrap_or_else(|_| ts.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_words_and_times_to_the_second() {
        assert_eq!(yes_no(Some(true)), "yes");
        assert_eq!(yes_no(Some(false)), "no");
        assert_eq!(yes_no(None), "absent");
        let at: DateTime<Utc> = "2026-11-30T15:02:07.123456789Z".parse().unwrap();
        assert_eq!(timestamp(at), "2026-11-30 15:02:07 UTC");
        assert_eq!(
            key_timestamp("20261130T150207123Z"),
            "2026-11-30 15:02:07 UTC"
        );
        assert_eq!(
            key_timestamp("20261130T150207123Z-5ff7c9f80a"),
            "2026-11-30 15:02:07 UTC"
        );
        assert_eq!(key_timestamp("not a time"), "not a time");
    }
}
