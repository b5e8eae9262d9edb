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

/// `s` as HTML text: `&`, `<`, `>` and both quotes escaped, safe in an element and in an attribute.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
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

/// What in `text` is Rust's rather than a person's: an `Option`'s or a struct's `Debug` form, or a Rust
/// type's name (`u32`, `String`, `Option<..>`); `None` when the text reads as words. (An escaped quote is
/// not judged here: a message may quote what a person typed, backslashes and all.)
pub fn rust_text(text: &str) -> Option<String> {
    for marker in ["Some(", "Option<", "Vec<", "HashMap<", "BTreeMap<"] {
        if text.contains(marker) {
            return Some(marker.to_owned());
        }
    }
    let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
    for word in words {
        if matches!(
            word,
            "u8" | "u16" | "u32" | "u64" | "usize" | "i32" | "i64" | "f32" | "f64" | "String"
        ) {
            return Some(word.to_owned());
        }
    }
    if debug_none(text) {
        return Some("None".to_owned());
    }
    struct_dump(text)
}

/// `None` as `{:?}` prints it: a value (after `(`, `:`, `=` or `[`, or before `)`, `,`, `}`, `]` or the
/// end), not the word that starts "None of them".
fn debug_none(text: &str) -> bool {
    text.match_indices("None").any(|(i, _)| {
        let before = text[..i].trim_end().chars().last();
        let after = text[i + 4..].chars().next();
        let word_edge = !text[..i].ends_with(|c: char| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        word_edge
            && (matches!(before, Some('(' | ':' | '=' | '['))
                || matches!(after, None | Some(')' | ',' | '}' | ']')))
    })
}

/// `Name { field: ...`, as `{:?}` prints a struct.
fn struct_dump(text: &str) -> Option<String> {
    text.match_indices(" { ").find_map(|(i, _)| {
        let name = text[..i]
            .rsplit(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or_default();
        let after = &text[i + 3..];
        let field_len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(after.len());
        (name.starts_with(|c: char| c.is_ascii_uppercase())
            && field_len > 0
            && after[field_len..].starts_with(": "))
        .then(|| format!("{name} {{ .. }}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_text_is_found_and_words_pass() {
        assert_eq!(
            rust_text("publicly accessible Some(false)").as_deref(),
            Some("Some(")
        );
        assert_eq!(
            rust_text("invalid type: integer `-5`, expected u32").as_deref(),
            Some("u32")
        );
        assert_eq!(
            rust_text("Report { environment: prod }").as_deref(),
            Some("Report { .. }")
        );
        assert_eq!(rust_text("the key is None").as_deref(), Some("None"));
        assert_eq!(rust_text("error: None").as_deref(), Some("None"));
        for fine in [
            "-5 is not allowed: expected a whole number of GiB from 20 to 65536",
            "None of the snapshots is ours",
            "spec { environment }",
            "class db.t4g.large, publicly accessible no",
        ] {
            assert_eq!(rust_text(fine), None, "{fine}");
        }
    }

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
