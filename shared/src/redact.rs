//! The one redaction layer: every log line (see [`crate::telemetry`]) and every error message that leaves a
//! process (see [`crate::error::OpsError::full_message`]) passes through [`redact`].
//!
//! Two kinds of rules:
//! - patterns that are secret whatever their value: JWTs, `password=...` (and `password: ...`,
//!   `"password":"..."`), URLs with `user:pass@`, and the `X-Amz-Signature` / `X-Amz-Security-Token` query
//!   values of presigned URLs (an RDS IAM auth token is one);
//! - values registered at run time by the code that fetched them ([`register`]): a Secrets Manager secret, an
//!   IAM auth token. A fetched password has no recognisable shape, so it is matched by value.
//!
//! Redaction replaces the secret part with [`REDACTED`] and keeps the rest, so a message still says what
//! failed (`postgres://probe:[REDACTED]@db:5432/app`).

use std::borrow::Cow;
use std::sync::{LazyLock, RwLock};

use regex_lite::{Captures, Regex};

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Registered values shorter than this are not matched by value: a two-letter "secret" would shred every
/// log line, and no password, token or key that short is worth hiding.
pub const MIN_REGISTERED_LEN: usize = 6;

static KNOWN: LazyLock<RwLock<Vec<String>>> = LazyLock::new(|| RwLock::new(Vec::new()));

struct Rule {
    regex: Regex,
    replace: fn(&Captures<'_>) -> String,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        // A JWT: base64url header and payload (both JSON objects, so both start `eyJ`), then a signature.
        Rule {
            regex: Regex::new(r"eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*").unwrap(),
            replace: |_| REDACTED.to_owned(),
        },
        // Presigned URLs: the signature and the session token are the credential; the rest says what it was for.
        Rule {
            regex: Regex::new(r"(?i)(X-Amz-(?:Signature|Security-Token)=)[^&\s\x22'<>]+").unwrap(),
            replace: |c| format!("{}{REDACTED}", &c[1]),
        },
        // `scheme://user:password@host`.
        Rule {
            regex: Regex::new(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s\x22']+:)[^@\s\x22']+@").unwrap(),
            replace: |c| format!("{}{REDACTED}@", &c[1]),
        },
        // `"password": "value"` (JSON, a secret's own text).
        Rule {
            regex: Regex::new(
                r#"(?i)("(?:password|passwd|secret|secret_?string|token|api_?key)"\s*:\s*")(?:[^"\\]|\\.)*""#,
            )
            .unwrap(),
            replace: |c| format!("{}{REDACTED}\"", &c[1]),
        },
        // `password=value`, `password: value`, `password="value"` (connection strings, logfmt, Debug output).
        Rule {
            regex: Regex::new(
                r#"(?i)\b((?:password|passwd|pwd)\s*[=:]\s*)(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|Some\("(?:[^"\\]|\\.)*"\)|[^\s&;,"')]+)"#,
            )
            .unwrap(),
            replace: |c| format!("{}{REDACTED}", &c[1]),
        },
        // `Authorization: Bearer <token>` whatever the token's shape.
        Rule {
            regex: Regex::new(r"(?i)(\bBearer\s+)[A-Za-z0-9._~+/=-]+").unwrap(),
            replace: |c| format!("{}{REDACTED}", &c[1]),
        },
    ]
});

/// Registers a secret value fetched at run time, so that [`redact`] hides it wherever it appears: as is,
/// and as JSON or `Debug` would escape it. Values shorter than [`MIN_REGISTERED_LEN`] are ignored.
pub fn register(secret: &str) {
    if secret.chars().count() < MIN_REGISTERED_LEN {
        return;
    }
    let mut forms = vec![secret.to_owned()];
    let escaped = serde_json::to_string(secret).expect("a string serialises");
    let escaped = &escaped[1..escaped.len() - 1];
    if escaped != secret {
        forms.push(escaped.to_owned());
    }
    let mut known = KNOWN.write().unwrap_or_else(|p| p.into_inner());
    for form in forms {
        if !known.contains(&form) {
            known.push(form);
        }
    }
    // Longest first, so that a secret containing another is replaced whole.
    known.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every secret replaced by [`REDACTED`]. Borrows when there is nothing to hide.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    {
        let known = KNOWN.read().unwrap_or_else(|p| p.into_inner());
        for secret in known.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
    }
    for rule in RULES.iter() {
        if rule.regex.is_match(&out) {
            let replaced = rule.regex.replace_all(&out, rule.replace).into_owned();
            out = Cow::Owned(replaced);
        }
    }
    out
}

/// Whether `text` holds nothing [`redact`] would hide.
pub fn is_clean(text: &str) -> bool {
    matches!(redact(text), Cow::Borrowed(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwts_are_hidden_whole() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUifQ.c2lnbmF0dXJlLXBhcnQ_-x";
        let line = format!("dispatch rejected token {jwt} from 10.0.0.1");
        assert_eq!(
            redact(&line),
            "dispatch rejected token [REDACTED] from 10.0.0.1"
        );
        assert_eq!(
            redact("Authorization: Bearer abc.def-ghi"),
            "Authorization: Bearer [REDACTED]"
        );
    }

    #[test]
    fn passwords_in_key_value_forms_are_hidden() {
        assert_eq!(
            redact("host=db port=5432 user=probe password=s3cr3t! dbname=app"),
            "host=db port=5432 user=probe password=[REDACTED] dbname=app"
        );
        assert_eq!(
            redact(r#"Config { user: "probe", password: Some("hunter22") }"#),
            r#"Config { user: "probe", password: [REDACTED] }"#
        );
        assert_eq!(
            redact(r#"{"username":"app","password":"p\"w\\d"}"#),
            r#"{"username":"app","password":"[REDACTED]"}"#
        );
        assert_eq!(redact("PASSWORD = 'x y'"), "PASSWORD = [REDACTED]");
    }

    #[test]
    fn url_credentials_are_hidden_but_the_rest_stays() {
        assert_eq!(
            redact("connecting to postgres://probe:pa55word@db.internal:5432/app failed"),
            "connecting to postgres://probe:[REDACTED]@db.internal:5432/app failed"
        );
        assert_eq!(
            redact("see https://example.com/a:b"),
            "see https://example.com/a:b"
        );
    }

    #[test]
    fn presigned_signatures_and_session_tokens_are_hidden() {
        let token = "db.abc.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=probe\
                     &X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Frds-db%2Faws4_request\
                     &X-Amz-Date=20260101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host\
                     &X-Amz-Security-Token=IQoJb3JpZ2luX2VjEJr%2F&X-Amz-Signature=0123456789abcdef";
        let out = redact(token);
        assert!(!out.contains("0123456789abcdef"), "{out}");
        assert!(!out.contains("IQoJb3JpZ2luX2VjEJr"), "{out}");
        assert!(out.contains("X-Amz-Signature=[REDACTED]"), "{out}");
        assert!(
            out.contains("DBUser=probe"),
            "what the token was for stays: {out}"
        );
    }

    #[test]
    fn registered_values_are_hidden_in_every_escaping() {
        let secret = "Zq9\"v8-registered\\x";
        register(secret);
        assert_eq!(redact(&format!("got {secret} back")), "got [REDACTED] back");
        let json = serde_json::json!({ "value": secret }).to_string();
        assert!(!redact(&json).contains("registered"), "{json}");
        let debug = format!("{:?}", secret);
        assert!(!redact(&debug).contains("registered"), "{debug}");
        // Too short to match by value.
        register("abc");
        assert_eq!(redact("abc abc"), "abc abc");
    }

    #[test]
    fn clean_text_is_borrowed_unchanged() {
        let text = "backup of prod: 3 snapshots, manifest sha256 ab12";
        assert!(matches!(redact(text), Cow::Borrowed(_)));
        assert!(is_clean(text));
        assert!(!is_clean("password=x1"));
    }
}
