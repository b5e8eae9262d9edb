//! The Redis probe of drills and health checks: `PING`, and `GET` of an optional canary key, over the Redis
//! protocol (RESP2), with the AUTH token resolved from its Secrets Manager reference just before connecting.
//!
//! A group with in-transit encryption only listens with TLS, and its AUTH token is sent only over TLS
//! (ElastiCache refuses an AUTH token without it): the probe speaks TLS exactly when the group has
//! in-transit encryption, verifying the server's name and certificate with the platform's roots (ElastiCache
//! certificates chain to Amazon's public CAs) or the bundle of [`super::ENV_CA_BUNDLE`].
//! <https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/in-transit-encryption.html>
//!
//! A few commands need no client library: each is an array of bulk strings, each answer one line (or a bulk
//! string for `GET`). <https://redis.io/docs/latest/develop/reference/protocol-spec/>

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rustls::pki_types::ServerName;
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{ProbeSettings, RustlsConnector};
use crate::future::BoxFuture;
use crate::secrets::{Secret, SecretSource, parse_secret};

/// Environment variable that maps every probed Redis endpoint to `host:port` (local runs, where moto's
/// endpoints do not exist). Production never sets it.
pub const ENV_REDIS_ENDPOINT_OVERRIDE: &str = "OPSPLANE_PROBE_REDIS_ENDPOINT_OVERRIDE";

/// The longest bulk answer read (a canary holds a timestamp; anything larger is not one).
const MAX_BULK: usize = 4096;

/// Where and how to probe a replication group.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    /// Host (the primary or configuration endpoint).
    pub host: String,
    /// Port.
    pub port: u16,
    /// The AUTH token (redacted in `Debug`).
    pub auth: Option<Secret>,
    /// Speak TLS (the group has in-transit encryption).
    pub tls: bool,
    /// A key holding the newest write's time (RFC 3339, or seconds or milliseconds since the epoch).
    pub canary_key: Option<String>,
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisAnswer {
    /// The canary's time, when a canary key was read and held one.
    pub canary_newest: Option<DateTime<Utc>>,
}

/// The Redis probe failed.
#[derive(Debug, Error)]
pub enum RedisProbeError {
    /// No connection could be made.
    #[error("connecting to {host}:{port} failed")]
    Connect {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The socket's error.
        #[source]
        source: std::io::Error,
    },
    /// TLS could not be set up or the handshake failed (a server without TLS, a certificate not trusted).
    #[error("TLS with {host}:{port} failed: {reason}")]
    Tls {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Why.
        reason: String,
    },
    /// The connection broke during a command.
    #[error("`{command}` failed")]
    Io {
        /// The command (never its arguments: AUTH's is the token).
        command: &'static str,
        /// The socket's error.
        #[source]
        source: std::io::Error,
    },
    /// The server refused a command or answered something else than expected.
    #[error("`{command}` answered {answer}")]
    Refused {
        /// The command.
        command: &'static str,
        /// What the server said.
        answer: String,
    },
    /// The canary key holds no time.
    #[error(
        "the canary key `{key}` holds {value:?}, not a time (RFC 3339, or seconds or milliseconds since the epoch)"
    )]
    Canary {
        /// The key.
        key: String,
        /// What it holds.
        value: String,
    },
    /// The probe did not finish in time.
    #[error("the probe did not finish within {0:?}")]
    Timeout(Duration),
}

/// Runs the Redis probe.
pub trait CacheProbe: Send + Sync {
    /// Connects to `target`, authenticates, sends `PING` and reads the canary key.
    fn probe<'a>(
        &'a self,
        target: &'a RedisTarget,
    ) -> BoxFuture<'a, Result<RedisAnswer, RedisProbeError>>;
}

/// [`CacheProbe`] over a TCP (or TLS) connection speaking RESP2.
#[derive(Debug, Clone)]
pub struct RespProbe {
    /// Limit on the whole probe (connect and commands).
    pub timeout: Duration,
    /// CA certificates (PEM) to verify servers with; `None`: the platform's roots.
    pub ca_bundle: Option<PathBuf>,
}

impl Default for RespProbe {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(20),
            ca_bundle: None,
        }
    }
}

impl RespProbe {
    /// The probe verifying servers with the CAs of `settings`.
    pub fn with_settings(settings: &ProbeSettings) -> Self {
        Self {
            ca_bundle: settings.ca_bundle.clone(),
            ..Self::default()
        }
    }

    async fn run(&self, target: &RedisTarget) -> Result<RedisAnswer, RedisProbeError> {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|source| RedisProbeError::Connect {
                host: target.host.clone(),
                port: target.port,
                source,
            })?;
        if !target.tls {
            return session(tcp, target).await;
        }
        let tls_error = |reason: String| RedisProbeError::Tls {
            host: target.host.clone(),
            port: target.port,
            reason,
        };
        let connector = RustlsConnector::new(self.ca_bundle.as_deref())
            .map_err(|e| tls_error(e.to_string()))?;
        let name = ServerName::try_from(target.host.clone())
            .map_err(|e| tls_error(format!("{} is not a server name: {e}", target.host)))?;
        let stream = tokio_rustls::TlsConnector::from(connector.config())
            .connect(name, tcp)
            .await
            .map_err(|e| tls_error(e.to_string()))?;
        session(stream, target).await
    }
}

impl CacheProbe for RespProbe {
    fn probe<'a>(
        &'a self,
        target: &'a RedisTarget,
    ) -> BoxFuture<'a, Result<RedisAnswer, RedisProbeError>> {
        Box::pin(async move {
            tokio::time::timeout(self.timeout, self.run(target))
                .await
                .unwrap_or(Err(RedisProbeError::Timeout(self.timeout)))
        })
    }
}

/// One answer of the server.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// `+OK`, `+PONG`.
    Simple(String),
    /// `-ERR ...`, `-NOAUTH ...`, `-WRONGPASS ...`.
    Error(String),
    /// `:1`.
    Integer(i64),
    /// `$n` then n bytes; `$-1` is no value.
    Bulk(Option<Vec<u8>>),
    /// Anything else (arrays, which these commands never answer).
    Other(String),
}

impl Reply {
    fn text(&self) -> String {
        match self {
            Reply::Simple(s) | Reply::Other(s) => s.clone(),
            Reply::Error(e) => format!("the error {e}"),
            Reply::Integer(i) => i.to_string(),
            Reply::Bulk(None) => "no value".to_owned(),
            Reply::Bulk(Some(b)) => format!("{:?}", String::from_utf8_lossy(b)),
        }
    }
}

/// The command as RESP: an array of bulk strings.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn read_reply<S: AsyncRead + Unpin>(
    reader: &mut BufReader<S>,
    command: &'static str,
) -> Result<Reply, RedisProbeError> {
    let io = |source| RedisProbeError::Io { command, source };
    let mut line = Vec::new();
    let n = reader.read_until(b'\n', &mut line).await.map_err(io)?;
    if n == 0 {
        return Err(io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
    let (kind, rest) = text.split_at(text.len().min(1));
    Ok(match kind {
        "+" => Reply::Simple(rest.to_owned()),
        "-" => Reply::Error(rest.to_owned()),
        ":" => Reply::Integer(rest.parse().unwrap_or_default()),
        "$" => match rest.parse::<i64>() {
            Ok(len) if len < 0 => Reply::Bulk(None),
            Ok(len) if (len as usize) <= MAX_BULK => {
                let mut body = vec![0; len as usize + 2];
                reader.read_exact(&mut body).await.map_err(io)?;
                body.truncate(len as usize);
                Reply::Bulk(Some(body))
            }
            _ => Reply::Other(format!("a value of {rest} bytes")),
        },
        _ => Reply::Other(text),
    })
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
    name: &'static str,
    args: &[&str],
) -> Result<Reply, RedisProbeError> {
    conn.get_mut()
        .write_all(&encode(args))
        .await
        .map_err(|source| RedisProbeError::Io {
            command: name,
            source,
        })?;
    conn.get_mut()
        .flush()
        .await
        .map_err(|source| RedisProbeError::Io {
            command: name,
            source,
        })?;
    read_reply(conn, name).await
}

/// AUTH (when there is a token), PING, and GET of the canary key, on one connection.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    target: &RedisTarget,
) -> Result<RedisAnswer, RedisProbeError> {
    let mut conn = BufReader::new(stream);
    if let Some(token) = &target.auth {
        match command(&mut conn, "AUTH", &["AUTH", token.expose()]).await? {
            Reply::Simple(ok) if ok == "OK" => {}
            other => {
                return Err(RedisProbeError::Refused {
                    command: "AUTH",
                    answer: other.text(),
                });
            }
        }
    }
    match command(&mut conn, "PING", &["PING"]).await? {
        Reply::Simple(pong) if pong == "PONG" => {}
        other => {
            return Err(RedisProbeError::Refused {
                command: "PING",
                answer: other.text(),
            });
        }
    }
    let canary_newest = match &target.canary_key {
        None => None,
        Some(key) => match command(&mut conn, "GET", &["GET", key]).await? {
            Reply::Bulk(None) => None,
            Reply::Bulk(Some(value)) => {
                let value = String::from_utf8_lossy(&value).trim().to_owned();
                Some(parse_time(&value).ok_or_else(|| RedisProbeError::Canary {
                    key: key.clone(),
                    value,
                })?)
            }
            other => {
                return Err(RedisProbeError::Refused {
                    command: "GET",
                    answer: other.text(),
                });
            }
        },
    };
    // A polite goodbye; the answer does not matter.
    let _ = command(&mut conn, "QUIT", &["QUIT"]).await;
    Ok(RedisAnswer { canary_newest })
}

/// A canary's time: RFC 3339, or seconds (up to 11 digits) or milliseconds since the epoch.
pub fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Some(at.with_timezone(&Utc));
    }
    let n: i64 = value.parse().ok()?;
    if n.unsigned_abs() < 100_000_000_000 {
        DateTime::from_timestamp(n, 0)
    } else {
        DateTime::from_timestamp_millis(n)
    }
}

/// Probes a replication group at `host:port`: resolves its AUTH token from the secret `auth_secret` (a
/// string, or JSON with `password`) inside this call, then `PING` and the canary key. `Ok` carries the
/// answer and a one-line detail naming what answered; `Err` says why not, redacted, since it goes into
/// reports and execution outputs.
pub async fn probe_by_reference(
    secrets: &dyn SecretSource,
    probe: &dyn CacheProbe,
    auth_secret: Option<&str>,
    (host, port): (String, u16),
    tls: bool,
    canary_key: Option<String>,
) -> Result<(RedisAnswer, String), String> {
    let auth = match auth_secret {
        None => None,
        Some(arn) => {
            let secret = secrets
                .secret_string(arn)
                .await
                .map_err(|e| crate::error::redacted_chain(&e))?;
            let (_, token) =
                parse_secret(arn, &secret).map_err(|e| crate::error::redacted_chain(&e))?;
            Some(token)
        }
    };
    let target = RedisTarget {
        host,
        port,
        auth,
        tls,
        canary_key,
    };
    match probe.probe(&target).await {
        Ok(answer) => Ok((
            answer,
            format!(
                "PING = PONG on {}:{}{}{}",
                target.host,
                target.port,
                if target.tls { " over TLS" } else { "" },
                if target.auth.is_some() {
                    " with the AUTH token"
                } else {
                    ""
                }
            ),
        )),
        Err(e) => Err(crate::error::redacted_chain(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(encode(&["PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            encode(&["GET", "opsplane:canary"]),
            b"*2\r\n$3\r\nGET\r\n$15\r\nopsplane:canary\r\n"
        );
    }

    #[tokio::test]
    async fn replies_are_read_by_their_first_byte() {
        let input: &[u8] =
            b"+PONG\r\n-NOAUTH Authentication required.\r\n:3\r\n$-1\r\n$4\r\nab\r\n\r\n*2\r\n";
        let mut r = BufReader::new(input);
        assert_eq!(
            read_reply(&mut r, "PING").await.unwrap(),
            Reply::Simple("PONG".into())
        );
        assert_eq!(
            read_reply(&mut r, "PING").await.unwrap(),
            Reply::Error("NOAUTH Authentication required.".into())
        );
        assert_eq!(read_reply(&mut r, "X").await.unwrap(), Reply::Integer(3));
        assert_eq!(read_reply(&mut r, "GET").await.unwrap(), Reply::Bulk(None));
        // A bulk string may hold CR LF itself: its length decides.
        assert_eq!(
            read_reply(&mut r, "GET").await.unwrap(),
            Reply::Bulk(Some(b"ab\r\n".to_vec()))
        );
        assert!(matches!(
            read_reply(&mut r, "GET").await.unwrap(),
            Reply::Other(_)
        ));
        assert!(matches!(
            read_reply(&mut r, "GET").await,
            Err(RedisProbeError::Io { .. })
        ));
    }

    #[test]
    fn canary_times_take_three_forms() {
        let at: DateTime<Utc> = "2026-01-01T12:00:00Z".parse().unwrap();
        assert_eq!(parse_time("2026-01-01T12:00:00Z"), Some(at));
        assert_eq!(parse_time("2026-01-01T13:00:00+01:00"), Some(at));
        assert_eq!(parse_time(&at.timestamp().to_string()), Some(at));
        assert_eq!(parse_time(&at.timestamp_millis().to_string()), Some(at));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let target = RedisTarget {
            host: "127.0.0.1".into(),
            port,
            auth: Some(Secret::new("a-token-never-printed-0123456789")),
            tls: false,
            canary_key: None,
        };
        let err = RespProbe::default().probe(&target).await.unwrap_err();
        assert!(matches!(err, RedisProbeError::Connect { .. }), "{err}");
        assert!(!format!("{target:?}").contains("never-printed"));
    }
}
