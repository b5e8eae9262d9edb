//! The local AWS world: moto's server on a loopback port, run from the project's `.venv`.
//!
//! The server is started through a small Python launcher that binds a free port itself (no race between
//! choosing a port and binding it), prints it, and exits when its standard input closes. The parent keeps
//! that pipe open for its whole life, so moto stops when the test binary or the CLI ends, however it ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

// moto checks a condition and then writes without a lock, so two concurrent conditional writes (DynamoDB
// `ConditionExpression`, S3 `If-None-Match`) can both succeed, which AWS never allows. Serialising requests
// restores AWS's per-request atomicity; moto holds the GIL for nearly all of a request anyway.
// Once ready, the launcher's stderr goes to /dev/null: nobody drains the pipe after start-up, and werkzeug
// logs every request there, so after about a thousand requests a full pipe would block moto for good.
// Before that, the launcher installs opsplane's model of AWS (`local/world/opsplane_world`, its path the
// launcher's first argument) in front of moto: statuses over virtual time, refusals, quotas, throttling.
const LAUNCHER: &str = r#"
import os
import sys
import threading
from moto.moto_server import werkzeug_app
sys.path.insert(0, sys.argv[1])
import opsplane_world
opsplane_world.install(werkzeug_app.DomainDispatcherApplication)
_serial = threading.Lock()
_dispatch = werkzeug_app.DomainDispatcherApplication.__call__
def _serialised(self, environ, start_response):
    with _serial:
        return _dispatch(self, environ, start_response)
werkzeug_app.DomainDispatcherApplication.__call__ = _serialised
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
print("READY %d" % port, flush=True)
sys.stderr.flush()
os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
sys.stdin.read()
server.stop()
"#;

/// How long moto may take to start answering. A cold start imports every moto backend on first use.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The local world could not be started.
#[derive(Debug, Error)]
pub enum LocalError {
    /// The project's virtualenv with moto is missing.
    #[error("moto is not installed: {python} does not exist. Run `make setup` in {root} first")]
    VenvMissing {
        /// The interpreter looked for.
        python: PathBuf,
        /// The project root.
        root: PathBuf,
    },
    /// The launcher could not be spawned or talked to.
    #[error("could not start moto_server with {python}")]
    Spawn {
        /// The interpreter used.
        python: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// moto exited or printed something unexpected before it was ready.
    #[error("moto_server did not start: {0}")]
    NotStarted(String),
    /// moto did not answer HTTP within the start timeout.
    #[error("moto_server on port {port} did not answer within {} s", .timeout.as_secs())]
    NotAnswering {
        /// The port it was started on.
        port: u16,
        /// How long we waited.
        timeout: Duration,
    },
    /// A signal could not be sent to the server.
    #[error("could not send {signal} to moto_server")]
    Signal {
        /// The signal, e.g. `SIGSTOP`.
        signal: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A running moto server. Dropping it stops the server.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    // Held open for the server's life: closing it is the launcher's signal to stop.
    stdin: Option<ChildStdin>,
    port: u16,
}

impl MotoServer {
    /// Starts moto from `<root>/.venv` on a free loopback port and waits until it answers HTTP.
    pub fn start(root: &Path) -> Result<Self, LocalError> {
        let python = root.join(".venv").join("bin").join("python");
        if !python.exists() {
            return Err(LocalError::VenvMissing {
                python,
                root: root.to_path_buf(),
            });
        }
        let mut child = Command::new(&python)
            .arg("-c")
            .arg(LAUNCHER)
            .arg(root.join("local").join("world"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| LocalError::Spawn {
                python: python.clone(),
                source,
            })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let port = match read {
            Ok(n) if n > 0 => line
                .trim()
                .strip_prefix("READY ")
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(|| {
                    LocalError::NotStarted(format!("unexpected launcher output: {line}"))
                })?,
            _ => {
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                let _ = child.kill();
                let _ = child.wait();
                return Err(LocalError::NotStarted(format!(
                    "the launcher exited before it was ready (is moto[server] installed in .venv? run `make setup`): {}",
                    err.trim()
                )));
            }
        };
        let stdin = child.stdin.take();
        let server = Self { child, stdin, port };
        server.wait_until_answering()?;
        Ok(server)
    }

    fn wait_until_answering(&self) -> Result<(), LocalError> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if self.answers() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(LocalError::NotAnswering {
            port: self.port,
            timeout: START_TIMEOUT,
        })
    }

    /// Whether moto answers an HTTP request on its port.
    pub fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
    }

    /// Suspends the server (SIGSTOP): connections are still accepted by the kernel but never answered, as
    /// with an endpoint that hangs, and everything moto holds survives until [`MotoServer::resume`].
    pub fn suspend(&self) -> Result<(), LocalError> {
        self.signal("STOP")
    }

    /// Resumes a suspended server (SIGCONT); it answers again with its state intact.
    pub fn resume(&self) -> Result<(), LocalError> {
        self.signal("CONT")
    }

    fn signal(&self, name: &str) -> Result<(), LocalError> {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .map_err(|source| LocalError::Signal {
                signal: format!("SIG{name}"),
                source,
            })?;
        if status.success() {
            Ok(())
        } else {
            Err(LocalError::Signal {
                signal: format!("SIG{name}"),
                source: std::io::Error::other(format!("kill exited with {status}")),
            })
        }
    }

    /// The loopback port moto listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The endpoint URL to hand the SDK.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // A suspended launcher cannot read the EOF below; resuming a running one is harmless.
        let _ = self.resume();
        drop(self.stdin.take());
        // The launcher exits on EOF; wait briefly, then make sure.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The project root: the nearest ancestor of `start` holding both `Cargo.toml` and `Makefile`.
pub fn project_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("Makefile").is_file())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_venv_says_to_run_make_setup() {
        let dir = std::env::temp_dir().join(format!("opsplane-novenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = MotoServer::start(&dir).unwrap_err();
        assert!(matches!(err, LocalError::VenvMissing { .. }));
        assert!(err.to_string().contains("make setup"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn project_root_is_found_from_a_crate_dir() {
        let root = project_root(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(root.join("shared").is_dir());
    }
}
