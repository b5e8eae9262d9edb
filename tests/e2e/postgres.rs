//! A real PostgreSQL server for the drill's SQL probe, started once per test binary from the machine's
//! packages (`/usr/lib/postgresql/<version>/bin`; `.ci/run` installs Debian's `postgresql` when missing).
//!
//! TCP logins need a password (SCRAM), random per run, as on RDS. The probe gets it the way production
//! does: from a Secrets Manager secret (created in moto by [`probe_secret`]) named in the spec.
//!
//! PostgreSQL refuses to run as root, and the tests run as root in CI, so the server runs as the `postgres`
//! user (through `runuser`) in a temporary directory it owns. It is started by a small shell wrapper that
//! keeps reading its standard input and stops the server (and removes the directory) when that input
//! closes, which happens when the test binary exits however it exits: the same trick as moto's launcher.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The running server.
pub struct Postgres {
    // Held for the binary's life: closing it is the wrapper's signal to stop the server.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
    port: u16,
    password: String,
}

impl Postgres {
    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password (TCP logins need it).
    pub fn password(&self) -> &str {
        &self.password
    }
}

/// A password no earlier run has used: the standard library's per-process random hash keys.
fn random_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    let word = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish()
    };
    format!("pg-{:016x}{:016x}", word(), word())
}

/// A Secrets Manager secret in the world's moto holding the server's login as RDS keeps the secret of an
/// instance created with `ManageMasterUserPassword` (`{"username", "password"}`). Returns its ARN.
pub async fn probe_secret(world: &crate::harness::World) -> String {
    let pg = postgres();
    let value = serde_json::json!({ "username": "postgres", "password": pg.password() });
    world
        .clients
        .secrets_manager
        .create_secret()
        .name(format!("rds!{}", world.name("probe")))
        .secret_string(value.to_string())
        .send()
        .await
        .expect("CreateSecret in moto")
        .arn
        .expect("CreateSecret returns the ARN")
}

static SERVER: OnceLock<Postgres> = OnceLock::new();

/// The server of this test binary, started on first use. Panics (never skips) when PostgreSQL is missing.
pub fn postgres() -> &'static Postgres {
    SERVER.get_or_init(|| start().unwrap_or_else(|e| panic!("PostgreSQL for the drill probe: {e}")))
}

fn bin_dir() -> Result<PathBuf, String> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| {
            format!("/usr/lib/postgresql: {e}; install PostgreSQL (apt-get install postgresql, as .ci/run does)")
        })?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no /usr/lib/postgresql/<version>/bin/initdb: install postgresql".to_owned())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the `postgres` user when we are root, as ourselves otherwise.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("reading the free port: {e}"))
}

fn start() -> Result<Postgres, String> {
    let bin = bin_dir()?;
    let dir = std::env::temp_dir().join(format!("opsplane-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !status.success() {
            return Err(format!("chown postgres {} failed", dir.display()));
        }
    }
    let data = dir.join("data");
    let password = random_password();
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, &password).map_err(|e| format!("writing the password file: {e}"))?;
    if is_root() {
        let _ = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&pwfile)
            .status();
    }
    let out = as_server_user(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .args(["-E", "UTF8", "--no-sync"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = free_port()?;
    // The wrapper: start the server, wait for our stdin to close, then stop it fast and clean up.
    let script = format!(
        "'{pg}' -D '{data}' -p {port} -h 127.0.0.1 -k '{dir}' -c fsync=off >'{dir}/server.log' 2>&1 & pid=$!; \
         cat >/dev/null; kill -INT $pid; wait $pid; rm -rf '{dir}'",
        pg = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
    );
    let mut child = as_server_user(Path::new("/bin/sh"))
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting postgres: {e}"))?;
    let stdin = child.stdin.take().ok_or("postgres wrapper has no stdin")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            let _ = child.kill();
            return Err(format!(
                "postgres did not listen on {port} within 30 s: {log}"
            ));
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            return Err(format!("postgres exited ({status}): {log}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Listening is not accepting: until recovery ends, the server refuses logins with "the database system
    // is starting up" (57P03). pg_isready exits 0 only once it accepts them.
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
            .status()
            .map_err(|e| format!("running pg_isready: {e}"))?;
        if ready.success() {
            break;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            let _ = child.kill();
            return Err(format!(
                "postgres did not accept connections on {port} within 30 s: {log}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stdin = stdin;
    // Nothing is ever written; flushing only checks that the pipe is open.
    let _ = stdin.flush();
    let _ = std::fs::remove_file(&pwfile);
    Ok(Postgres {
        _stdin: Mutex::new(stdin),
        _child: Mutex::new(child),
        port,
        password,
    })
}

/// Runs SQL on the server as the superuser (set-up of the canary tables).
pub async fn execute(sql: &str) {
    let pg = postgres();
    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(pg.port())
        .user("postgres")
        .password(pg.password())
        .dbname("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await.expect("set-up SQL");
    drop(client);
    let _ = task.await;
}

#[tokio::test]
async fn the_server_answers_a_query_and_refuses_a_login_without_password() {
    execute("CREATE TABLE IF NOT EXISTS harness_check (x int); DROP TABLE harness_check;").await;
    let refused = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(postgres().port())
        .user("postgres")
        .dbname("postgres")
        .connect(tokio_postgres::NoTls)
        .await;
    assert!(refused.is_err(), "TCP logins need the password");
}
