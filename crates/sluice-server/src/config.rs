//! One typed configuration: defaults < TOML file < `SLUICE_*` environment < command-line flags.
//! The CLI merges environment and flags (clap) and hands them in as [`Overrides`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Settings the server runs with, validated once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; None means SQLite in the data dir.
    pub database_url: Option<String>,
    pub account_id: String,
    pub region: String,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Where artifact bytes live; replicas on one database must share it. Default
    /// `<data-dir>/artifacts`.
    pub artifacts_dir: Option<PathBuf>,
    /// How long an account-collector plugin may take to answer a sync, in seconds.
    pub cloudforet_plugin_timeout_seconds: u64,
}

/// Values from the environment or flags; each wins over the file when set.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub body_limit: Option<usize>,
    pub artifacts_dir: Option<PathBuf>,
    pub cloudforet_plugin_timeout_seconds: Option<u64>,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8750";
pub const DEFAULT_DATA_DIR: &str = "./sluice-data";
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";
pub const DEFAULT_REGION: &str = "us-east-1";
pub const DEFAULT_BODY_LIMIT: usize = 6 * 1024 * 1024;
pub const DEFAULT_PLUGIN_TIMEOUT_SECONDS: u64 = 600;

impl Config {
    /// Merges defaults, the optional TOML file and the overrides, then validates.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Config, ConfigError> {
        let from_file = match file {
            Some(path) => read_file(path)?,
            None => Overrides::default(),
        };
        let pick = |over: Option<String>, file: Option<String>, default: &str| {
            over.or(file).unwrap_or_else(|| default.to_string())
        };
        let listen = pick(overrides.listen, from_file.listen, DEFAULT_LISTEN);
        let config = Config {
            listen: listen
                .parse()
                .map_err(|_| ConfigError::Invalid(format!("listen address {listen:?} is not host:port")))?,
            data_dir: overrides.data_dir.or(from_file.data_dir).unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            database_url: overrides.database_url.or(from_file.database_url),
            account_id: pick(overrides.account_id, from_file.account_id, DEFAULT_ACCOUNT_ID),
            region: pick(overrides.region, from_file.region, DEFAULT_REGION),
            body_limit: overrides.body_limit.or(from_file.body_limit).unwrap_or(DEFAULT_BODY_LIMIT),
            artifacts_dir: overrides.artifacts_dir.or(from_file.artifacts_dir),
            cloudforet_plugin_timeout_seconds: overrides
                .cloudforet_plugin_timeout_seconds
                .or(from_file.cloudforet_plugin_timeout_seconds)
                .unwrap_or(DEFAULT_PLUGIN_TIMEOUT_SECONDS),
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.account_id.len() != 12 || !self.account_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(ConfigError::Invalid(format!("account id {:?} must be 12 digits", self.account_id)));
        }
        let region_ok = !self.region.is_empty()
            && self.region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !region_ok {
            return Err(ConfigError::Invalid(format!("region {:?} is not a region name", self.region)));
        }
        if let Some(url) = &self.database_url {
            let known = ["sqlite:", "postgres:", "postgresql:"].iter().any(|p| url.starts_with(p));
            if !known {
                return Err(ConfigError::Invalid("database url must start with sqlite: or postgres:".into()));
            }
        }
        if self.cloudforet_plugin_timeout_seconds == 0 {
            return Err(ConfigError::Invalid("cloudforet_plugin_timeout_seconds must be at least 1".into()));
        }
        if self.body_limit < 1024 {
            return Err(ConfigError::Invalid("body_limit must be at least 1024 bytes".into()));
        }
        Ok(())
    }

    /// Where artifact bytes live.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.artifacts_dir.clone().unwrap_or_else(|| self.data_dir.join("artifacts"))
    }

    /// The database to open.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| sluice_store::Store::sqlite_url(&self.data_dir.join("sluice.db")))
    }
}

fn read_file(path: &Path) -> Result<Overrides, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config = Config::load(None, Overrides::default()).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(config.database_url().starts_with("sqlite://./sluice-data/sluice.db"));
        assert_eq!((config.account_id.as_str(), config.region.as_str()), ("123456789012", "us-east-1"));
    }

    #[test]
    fn file_then_overrides_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\nregion = \"eu-west-1\"\n").unwrap();
        let config = Config::load(Some(&path), Overrides::default()).unwrap();
        assert_eq!((config.listen.port(), config.region.as_str()), (9000, "eu-west-1"));

        let overrides = Overrides { listen: Some("127.0.0.1:9100".into()), ..Default::default() };
        let config = Config::load(Some(&path), overrides).unwrap();
        assert_eq!((config.listen.port(), config.region.as_str()), (9100, "eu-west-1"));
    }

    #[test]
    fn bad_settings_are_refused() {
        let bad = [
            Overrides { listen: Some("nowhere".into()), ..Default::default() },
            Overrides { account_id: Some("12".into()), ..Default::default() },
            Overrides { region: Some("US EAST".into()), ..Default::default() },
            Overrides { database_url: Some("mysql://x".into()), ..Default::default() },
        ];
        for overrides in bad {
            assert!(Config::load(None, overrides.clone()).is_err(), "{overrides:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "colour = \"red\"\n").unwrap();
        assert!(matches!(Config::load(Some(&path), Overrides::default()), Err(ConfigError::Parse { .. })));
    }
}
