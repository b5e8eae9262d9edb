//! The limits a token and a request must keep before anything is parsed further or looked up: sizes, the
//! JOSE header's `crit` and `kid`, the token's lifetime and audience shape, and https for the issuer.
//!
//! Nothing an attacker sent is echoed by these checks: a refused `kid`, `alg` or body is described, never
//! repeated, so neither the 401 body nor the logs carry attacker-chosen bytes of unbounded size.

use serde_json::Value;
use thiserror::Error;

/// The largest token accepted, bytes. GitHub's tokens are about 1–2 KiB; 8 KiB leaves room for every claim
/// GitHub documents while keeping a base64 and JSON decode of an attacker's megabytes off the request path.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The largest `kid` accepted, characters.
pub const MAX_KID_CHARS: usize = 128;
/// The largest request body accepted, bytes. The workflow input dispatch builds is far smaller; Step
/// Functions refuses an execution input above 256 KiB (its quota on input and output sizes), so a body
/// anywhere near that size can only be a mistake or an attack.
pub const MAX_BODY_BYTES: usize = 32 * 1024;
/// The longest lifetime (`exp - iat`) accepted by default, seconds. GitHub's tokens live minutes; a token
/// valid for longer is not one of theirs or is a replay risk for that long.
pub const DEFAULT_MAX_LIFETIME_SECONDS: i64 = 15 * 60;
/// The longest `jti` accepted, characters (GitHub's is a UUID).
pub const MAX_JTI_CHARS: usize = 128;

/// A header or shape rule was broken.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HygieneError {
    /// The token is larger than [`MAX_TOKEN_BYTES`].
    #[error("token larger than {MAX_TOKEN_BYTES} bytes")]
    TokenTooLarge,
    /// The header has `crit`: RFC 7515 §4.1.11 says a recipient that does not understand every listed
    /// extension must reject the token, and dispatch understands none.
    #[error("token header has `crit`: no JOSE extension is supported (RFC 7515 section 4.1.11)")]
    Critical,
    /// The `kid` is too long or has characters no key id has.
    #[error("token header's `kid` is not a key id (at most {MAX_KID_CHARS} of A-Z a-z 0-9 . _ -)")]
    Kid,
    /// `exp - iat` is above the configured maximum.
    #[error("token lifetime above {max} seconds (exp - iat)")]
    Lifetime {
        /// The maximum, seconds.
        max: i64,
    },
    /// `aud` is a list, which this function does not accept unless configured to.
    #[error("token `aud` is a list: a single audience is required")]
    AudienceList,
    /// `jti` is missing, empty, too long or not printable.
    #[error(
        "token `jti` is missing or not an identifier (at most {MAX_JTI_CHARS} printable characters)"
    )]
    Jti,
}

/// The token is not larger than [`MAX_TOKEN_BYTES`].
pub fn check_token_size(token: &str) -> Result<(), HygieneError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(HygieneError::TokenTooLarge);
    }
    Ok(())
}

fn key_id_like(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The decoded JOSE header has no `crit` and, if it has a `kid`, a bounded key id.
pub fn check_header(header: &Value) -> Result<(), HygieneError> {
    if header.get("crit").is_some() {
        return Err(HygieneError::Critical);
    }
    match header.get("kid") {
        None => Ok(()),
        Some(Value::String(kid)) if key_id_like(kid, MAX_KID_CHARS) => Ok(()),
        Some(_) => Err(HygieneError::Kid),
    }
}

/// How an `alg` may be shown in an error: itself when short and alphanumeric (`none`, `HS256`), else a
/// placeholder.
pub fn shown_alg(alg: &str) -> String {
    if key_id_like(alg, 16) {
        alg.to_owned()
    } else {
        "(not an algorithm name)".to_owned()
    }
}

/// `exp - iat` is at most `max` seconds.
pub fn check_lifetime(iat: i64, exp: i64, max: i64) -> Result<(), HygieneError> {
    if exp.saturating_sub(iat) > max {
        return Err(HygieneError::Lifetime { max });
    }
    Ok(())
}

/// `aud` is one string, or a list when lists are allowed.
pub fn check_audience_shape(aud: &Value, allow_lists: bool) -> Result<(), HygieneError> {
    match aud {
        Value::Array(_) if !allow_lists => Err(HygieneError::AudienceList),
        _ => Ok(()),
    }
}

/// `jti` is present and a bounded printable identifier (it becomes part of a table key).
pub fn check_jti(jti: Option<&str>) -> Result<&str, HygieneError> {
    match jti {
        Some(j)
            if !j.is_empty()
                && j.len() <= MAX_JTI_CHARS
                && j.bytes().all(|b| b.is_ascii_graphic() && b != b'#') =>
        {
            Ok(j)
        }
        _ => Err(HygieneError::Jti),
    }
}

/// Why a URL may not be used to fetch keys.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "{what} \"{url}\" is not https (plain http is accepted only for a loopback issuer in the local world)"
)]
pub struct InsecureUrl {
    /// `issuer` or `jwks_uri`.
    pub what: &'static str,
    /// The URL.
    pub url: String,
}

/// Whether `url` may be fetched: https always; http only with `allow_loopback` and a loopback host
/// (`127.0.0.1`, `localhost`, `[::1]`), which is how the local world serves its issuer.
pub fn check_fetch_url(
    what: &'static str,
    url: &str,
    allow_loopback: bool,
) -> Result<(), InsecureUrl> {
    let insecure = || InsecureUrl {
        what,
        url: url.chars().take(200).collect(),
    };
    if let Some(rest) = url.strip_prefix("https://") {
        return if rest.is_empty() {
            Err(insecure())
        } else {
            Ok(())
        };
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(insecure());
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = if authority.starts_with('[') {
        authority.split(']').next().map(|h| format!("{h}]"))
    } else {
        authority.split(':').next().map(str::to_owned)
    };
    let loopback = matches!(host.as_deref(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if allow_loopback && loopback {
        Ok(())
    } else {
        Err(insecure())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crit_and_unbounded_kids_are_refused() {
        assert_eq!(
            check_header(&json!({"alg": "RS256", "kid": "a", "crit": ["exp"]})),
            Err(HygieneError::Critical)
        );
        assert_eq!(
            check_header(&json!({"alg": "RS256", "kid": "k".repeat(129)})),
            Err(HygieneError::Kid)
        );
        assert_eq!(
            check_header(&json!({"alg": "RS256", "kid": "a b"})),
            Err(HygieneError::Kid)
        );
        assert_eq!(
            check_header(&json!({"alg": "RS256", "kid": 7})),
            Err(HygieneError::Kid)
        );
        assert!(check_header(&json!({"alg": "RS256", "kid": "opsplane-test-1"})).is_ok());
        assert!(!HygieneError::Kid.to_string().contains("a b"));
    }

    #[test]
    fn sizes_lifetimes_and_audiences_are_bounded() {
        assert!(check_token_size(&"a".repeat(MAX_TOKEN_BYTES)).is_ok());
        assert_eq!(
            check_token_size(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            Err(HygieneError::TokenTooLarge)
        );
        assert!(check_lifetime(0, 900, 900).is_ok());
        assert!(check_lifetime(0, 901, 900).is_err());
        assert!(check_audience_shape(&json!(["a", "b"]), false).is_err());
        assert!(check_audience_shape(&json!(["a", "b"]), true).is_ok());
        assert!(check_audience_shape(&json!("a"), false).is_ok());
        assert!(check_jti(None).is_err());
        assert!(check_jti(Some("a#b")).is_err());
        assert_eq!(check_jti(Some("6f1a")), Ok("6f1a"));
        assert_eq!(shown_alg("HS256"), "HS256");
        assert_eq!(shown_alg(&"x".repeat(100)), "(not an algorithm name)");
    }

    #[test]
    fn only_https_or_a_loopback_issuer_in_the_local_world() {
        let url = "https://token.actions.githubusercontent.com";
        assert!(check_fetch_url("issuer", url, false).is_ok());
        assert!(
            check_fetch_url("issuer", "http://token.actions.githubusercontent.com", true).is_err()
        );
        assert!(check_fetch_url("issuer", "http://127.0.0.1:8080", false).is_err());
        assert!(check_fetch_url("issuer", "http://127.0.0.1:8080", true).is_ok());
        assert!(check_fetch_url("issuer", "http://[::1]:80/x", true).is_ok());
        assert!(check_fetch_url("jwks_uri", "http://127.0.0.1.evil.com/jwks", true).is_err());
        assert!(check_fetch_url("jwks_uri", "ftp://127.0.0.1/jwks", true).is_err());
    }
}
