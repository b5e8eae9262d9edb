//! A real Redis server for the drill's and the health check's Redis probe, started once per test binary from
//! the machine's packages (`redis-server`; `.ci/run` installs Debian's when missing).
//!
//! It listens as an ElastiCache group with in-transit encryption and an AUTH token does: TLS (a certificate
//! for `localhost` from a CA made for this run with `openssl`, which the probe is given as its CA bundle)
//! and `requirepass` with a token random per run, which the probe reads from a Secrets Manager secret as in
//! production. A plain port beside it answers the tests that set keys up.
//!
//! As with PostgreSQL, a small shell wrapper keeps reading its standard input and stops the server (and
//! removes its directory) when that input closes, however the test binary exits.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The running server.
pub struct Redis {
    // Held for the binary's life: closing it is the wrapper's signal to stop the server.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
    plain_port: u16,
    tls_port: u16,
    token: String,
    ca: PathBuf,
}

impl Redis {
    /// The TLS port (the one the probe uses).
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// The AUTH token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CA certificate (PEM) the server's certificate chains to.
    pub fn ca(&self) -> &Path {
        &self.ca
    }
}

static SERVER: OnceLock<Redis> = OnceLock::new();

/// The server of this test binary, started on first use. Panics (never skips) when Redis is missing.
pub fn redis() -> &'static Redis {
    SERVER.get_or_init(|| start().unwrap_or_else(|e| panic!("Redis for the probe: {e}")))
}

/// A token no earlier run has used, of the length ElastiCache takes (16 to 128 printable characters).
fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let word = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish()
    };
    format!("redis-{:016x}{:016x}", word(), word())
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("reading the free port: {e}"))
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running openssl (install it, as .ci/run does): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A CA and a server certificate for `localhost` (and 127.0.0.1), valid two days.
fn certificates(dir: &Path) -> Result<(), String> {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=opsplane test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    )?;
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    )?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| format!("writing server.ext: {e}"))?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    )
}

fn start() -> Result<Redis, String> {
    let dir = std::env::temp_dir().join(format!("opsplane-redis-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    certificates(&dir)?;
    let token = random_token();
    let (plain_port, tls_port) = (free_port()?, free_port()?);
    // The token goes through a config file, not the command line (which `ps` shows).
    std::fs::write(
        dir.join("redis.conf"),
        format!(
            "bind 127.0.0.1\nport {plain_port}\ntls-port {tls_port}\ntls-cert-file server.pem\n\
             tls-key-file server.key\ntls-ca-cert-file ca.pem\ntls-auth-clients no\nrequirepass {token}\n\
             save \"\"\nappendonly no\ndir {dir}\nlogfile {dir}/server.log\n",
            dir = dir.display()
        ),
    )
    .map_err(|e| format!("writing redis.conf: {e}"))?;
    let script = format!(
        "redis-server '{dir}/redis.conf' & pid=$!; cat >/dev/null; kill $pid; wait $pid; rm -rf '{dir}'",
        dir = dir.display()
    );
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting redis-server: {e}"))?;
    let stdin = child.stdin.take().ok_or("the redis wrapper has no stdin")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", tls_port)).is_err()
        || TcpStream::connect(("127.0.0.1", plain_port)).is_err()
    {
        let log = || std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!(
                "redis-server did not listen within 30 s (is it installed? apt-get install redis-server): {}",
                log()
            ));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "redis-server exited ({status}); install it with apt-get install redis-server: {}",
                log()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stdin = stdin;
    let _ = stdin.flush();
    Ok(Redis {
        _stdin: Mutex::new(stdin),
        _child: Mutex::new(child),
        plain_port,
        tls_port,
        token,
        ca: dir.join("ca.pem"),
    })
}

/// A Secrets Manager secret in the world's moto holding the server's AUTH token, under `opsplane/` as a
/// spec's `auth_token_secret` must be. Returns its ARN.
pub async fn auth_secret(world: &crate::harness::World, env: &str) -> String {
    world
        .clients
        .secrets_manager
        .create_secret()
        .name(format!("opsplane/{env}/redis-auth"))
        .secret_string(redis().token())
        .send()
        .await
        .expect("CreateSecret in moto")
        .arn
        .expect("CreateSecret returns the ARN")
}

/// Probe settings that map every restored replication group to the test's Redis over TLS (as `localhost`,
/// the name its certificate carries), trusting the run's CA, the probe's network modelled by `local`'s world.
pub fn to_redis(local: &opsplane_local::LocalPlane) -> opsplane_fn_backup::probe::ProbeSettings {
    opsplane_fn_backup::probe::ProbeSettings {
        redis_endpoint_override: Some(("localhost".to_owned(), redis().tls_port())),
        ca_bundle: Some(redis().ca().to_path_buf()),
        network: Some(std::sync::Arc::new(opsplane_local::WorldNetwork::new(
            local.world.clone(),
            &local.config.region,
        ))),
        ..Default::default()
    }
}

/// Runs one command on the plain port after AUTH (set-up of canary keys); the raw answer.
pub async fn command(args: &[&str]) -> String {
    let r = redis();
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", r.plain_port))
        .await
        .expect("connect to the test Redis");
    let mut send = Vec::new();
    for cmd in [vec!["AUTH", r.token()], args.to_vec()] {
        send.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
        for a in cmd {
            send.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    conn.write_all(&send).await.expect("send to Redis");
    let mut answer = vec![0; 512];
    let mut got = 0;
    // Two answers: AUTH's +OK and the command's.
    while String::from_utf8_lossy(&answer[..got])
        .matches("\r\n")
        .count()
        < 2
    {
        let n = conn
            .read(&mut answer[got..])
            .await
            .expect("read from Redis");
        assert!(n > 0, "Redis closed the connection");
        got += n;
    }
    let text = String::from_utf8_lossy(&answer[..got]).into_owned();
    assert!(text.starts_with("+OK\r\n"), "AUTH: {text}");
    text["+OK\r\n".len()..].to_owned()
}

#[tokio::test]
async fn the_server_keeps_a_key_and_refuses_commands_without_the_token() {
    assert_eq!(command(&["SET", "harness-check", "1"]).await, "+OK\r\n");
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", redis().plain_port))
        .await
        .unwrap();
    conn.write_all(b"*1\r\n$4\r\nPING\r\n").await.unwrap();
    let mut answer = vec![0; 128];
    let n = conn.read(&mut answer).await.unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("-NOAUTH"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
}
