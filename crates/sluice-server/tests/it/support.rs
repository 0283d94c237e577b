//! A running server for a test, and clients pointed at it.

use std::sync::Arc;

use aws_sdk_codepipeline::config::{BehaviorVersion, Credentials, Region};
use sluice_core::clock::{SharedClock, SystemClock};
use sluice_engine::keys::Credentials as RootCredentials;
use sluice_server::config::{Config, Overrides};
use sluice_store::testing::{
    create_postgres_database, drop_postgres_database, postgres_admin_url, with_database,
};
use tokio::sync::oneshot;

pub const ROOT_ID: &str = "AKIATESTROOT00000001";
pub const ROOT_SECRET: &str = "testrootsecretkey0000000000000000000000000";

/// Which database a test server uses.
#[derive(Debug, Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub endpoint: String,
    /// The server's engine, for driving what has no wire operation yet.
    pub engine: sluice_engine::Engine,
    pub data_dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The throwaway database's name and URL.
    postgres: Option<(String, String)>,
}

impl TestServer {
    pub async fn start(db: Db) -> TestServer {
        Self::start_with_clock(db, Arc::new(SystemClock)).await
    }

    pub async fn start_with_clock(db: Db, clock: SharedClock) -> TestServer {
        let data_dir = tempfile::tempdir().unwrap();
        let postgres = match db {
            Db::Sqlite => None,
            Db::Postgres => {
                let name = create_postgres_database("sluice_e2e").await;
                let url = with_database(&postgres_admin_url(), &name);
                Some((name, url))
            }
        };
        let overrides = Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(data_dir.path().to_path_buf()),
            database_url: postgres.as_ref().map(|(_, url)| url.clone()),
            ..Default::default()
        };
        let config = Config::load(None, overrides).unwrap();
        let root = RootCredentials { access_key_id: ROOT_ID.into(), secret_access_key: ROOT_SECRET.into() };
        let app = sluice_server::bootstrap(&config, clock, None, Some(root)).await.unwrap();
        let engine = app.engine().clone();
        let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sluice_server::run(listener, app, async move {
            let _ = stopped.await;
        }));
        TestServer { endpoint, engine, data_dir, stop: Some(stop), task: Some(task), postgres }
    }

    /// A CodePipeline client signing with the given keys.
    pub fn codepipeline_as(&self, id: &str, secret: &str) -> aws_sdk_codepipeline::Client {
        let config = aws_sdk_codepipeline::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(id, secret, None, None, "sluice-test"))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        aws_sdk_codepipeline::Client::from_conf(config)
    }

    pub fn codepipeline(&self) -> aws_sdk_codepipeline::Client {
        self.codepipeline_as(ROOT_ID, ROOT_SECRET)
    }

    /// An SSM client signing with the root keys.
    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        let config = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_ssm::config::Credentials::new(
                ROOT_ID,
                ROOT_SECRET,
                None,
                None,
                "sluice-test",
            ))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        aws_sdk_ssm::Client::from_conf(config)
    }

    /// Stops the server, waits for it to drain, and drops a PostgreSQL database it used.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        if let Some((name, _)) = self.postgres.take() {
            drop_postgres_database(&name).await;
        }
    }
}

/// The AWS error code of an SDK error (any AWS SDK: they share the Smithy error types).
pub fn error_code<E, R>(err: &aws_sdk_codepipeline::error::SdkError<E, R>) -> String
where
    E: aws_sdk_codepipeline::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .map(str::to_string)
        .unwrap_or_else(|| format!("not a service error: {err:?}"))
}
