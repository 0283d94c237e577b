//! Start-up: the data directory, the master key, the store, the engine and the root key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_aws::AwsJsonService;
use sluice_core::clock::SharedClock;
use sluice_core::AccountContext;
use sluice_engine::keys::{generate_credentials, Credentials};
use sluice_engine::secrets::KEY_LEN;
use sluice_engine::{Engine, SecretBox};
use sluice_store::Store;

use crate::config::Config;
use crate::metrics::Metrics;

/// Everything a request handler needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

#[derive(Debug)]
struct AppInner {
    aws: AwsJsonService,
    cloudforet: sluice_cloudforet::Cloudforet,
    plugin_timeout: std::time::Duration,
    metrics: Metrics,
    body_limit: usize,
}

impl App {
    pub fn engine(&self) -> &Engine {
        self.inner.aws.engine()
    }

    pub fn aws(&self) -> &AwsJsonService {
        &self.inner.aws
    }

    pub fn cloudforet(&self) -> &sluice_cloudforet::Cloudforet {
        &self.inner.cloudforet
    }

    /// How long an account-collector plugin may take to answer a sync.
    pub fn plugin_timeout(&self) -> std::time::Duration {
        self.inner.plugin_timeout
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("storage: {0}")]
    Store(#[from] sluice_store::Error),
    #[error("engine: {0}")]
    Engine(#[from] sluice_engine::Error),
}

/// Root credentials given by the operator (`SLUICE_ROOT_ACCESS_KEY_ID` and
/// `SLUICE_ROOT_SECRET_ACCESS_KEY`).
pub type RootCredentials = Option<Credentials>;

/// Opens storage and prepares keys. With no root key stored and none given, one is generated
/// and written to `<data-dir>/credentials` (mode 0600).
pub async fn bootstrap(
    config: &Config,
    clock: SharedClock,
    master_key_env: Option<String>,
    root: RootCredentials,
) -> Result<App, StartError> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir { path: dir.clone(), source })?;
    let key = master_key(dir, master_key_env)?;
    let store = Store::open(&config.database_url()).await?;
    let account = AccountContext { account_id: config.account_id.clone(), region: config.region.clone() };
    let engine = Engine::new(store, clock, SecretBox::new(&key), account, config.artifacts_dir());
    ensure_root(&engine, dir, &config.region, root).await?;
    Ok(App {
        inner: Arc::new(AppInner {
            cloudforet: sluice_cloudforet::Cloudforet::new(engine.clone()),
            plugin_timeout: std::time::Duration::from_secs(config.cloudforet_plugin_timeout_seconds),
            aws: AwsJsonService::new(engine),
            metrics: Metrics::default(),
            body_limit: config.body_limit,
        }),
    })
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn parse_key(hex_text: &str) -> Result<[u8; KEY_LEN], StartError> {
    let bytes = hex::decode(hex_text.trim())
        .map_err(|_| StartError::MasterKey("the master key must be 64 hexadecimal characters".into()))?;
    bytes.try_into().map_err(|_| {
        StartError::MasterKey("the master key must be 32 bytes (64 hexadecimal characters)".into())
    })
}

/// `SLUICE_MASTER_KEY` if given, else `<data-dir>/master.key`, created on first start.
fn master_key(dir: &Path, from_env: Option<String>) -> Result<[u8; KEY_LEN], StartError> {
    if let Some(text) = from_env {
        return parse_key(&text);
    }
    let path = dir.join("master.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_key(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretBox::generate_key();
            write_private(&path, hex::encode(key).as_bytes())
                .map_err(|e| StartError::MasterKey(format!("cannot write {}: {e}", path.display())))?;
            Ok(key)
        }
        Err(e) => Err(StartError::MasterKey(format!("cannot read {}: {e}", path.display()))),
    }
}

async fn ensure_root(
    engine: &Engine,
    dir: &Path,
    region: &str,
    root: RootCredentials,
) -> Result<(), StartError> {
    if let Some(credentials) = root {
        if engine.ensure_root_key(&credentials).await? {
            tracing::info!(access_key_id = %credentials.access_key_id, "root key from the environment stored");
        }
        return Ok(());
    }
    if engine.has_root_key().await? {
        return Ok(());
    }
    let credentials = generate_credentials();
    engine.ensure_root_key(&credentials).await?;
    let path = dir.join("credentials");
    let text = format!(
        "[sluice]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = {region}\n",
        credentials.access_key_id, credentials.secret_access_key
    );
    write_private(&path, text.as_bytes())
        .map_err(|source| StartError::DataDir { path: path.clone(), source })?;
    tracing::info!(path = %path.display(), access_key_id = %credentials.access_key_id, "root credentials written");
    eprintln!("sluice: root credentials written to {}", path.display());
    Ok(())
}
