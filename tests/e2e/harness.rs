//! The test harness: one moto server per test binary, unique resource names per test.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use opsplane_shared::Config;
use opsplane_shared::aws::Clients;
use opsplane_shared::local::MotoServer;

static MOTO: OnceLock<MotoServer> = OnceLock::new();
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The project root (the workspace holding this crate).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The moto server of this test binary, started on first use. Panics, saying to run `make setup`, when the
/// project's `.venv` is missing: a test that needs AWS never skips.
pub fn moto() -> &'static MotoServer {
    MOTO.get_or_init(|| match MotoServer::start(&root()) {
        Ok(server) => server,
        Err(err) => panic!("the local AWS world could not start: {err}"),
    })
}

/// One test's view of the local world.
pub struct World {
    /// The configuration pointing at moto, with this test's own table and bucket names.
    pub config: Config,
    /// Clients built from it.
    pub clients: Clients,
    /// A prefix unique to this test, for any further names.
    prefix: String,
}

impl World {
    /// A fresh world: shared moto, unique names.
    pub async fn new() -> Self {
        let prefix = unique("t");
        let table = format!("{prefix}-table");
        let bucket = format!("{prefix}-bucket");
        let config = Config::local(moto().endpoint(), table, bucket);
        let clients = Clients::load(&config).await;
        Self {
            config,
            clients,
            prefix,
        }
    }

    /// A world over an existing configuration (a second view of the same table and bucket).
    pub async fn from_config(config: Config) -> Self {
        let clients = Clients::load(&config).await;
        Self {
            prefix: unique("t"),
            config,
            clients,
        }
    }

    /// A name unique to this test, from `what`.
    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }
}

/// A name no other test in any run of this binary uses: lowercase, digits and '-', valid for S3 and DynamoDB.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}-{n}-{nanos:x}", std::process::id())
}
