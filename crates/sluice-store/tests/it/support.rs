//! Throwaway databases for the storage suite.

use sluice_store::{Backend, Store};
use sqlx::AnyConnection;
use sqlx::{Connection, Executor};

pub struct TestDb {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

fn admin_url() -> String {
    std::env::var("SLUICE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("postgres url has a database path");
    format!("{base}/{database}")
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = Store::sqlite_url(&dir.path().join("sluice.db"));
        let store = Store::open(&url).await.expect("open sqlite");
        assert_eq!(store.backend(), Backend::Sqlite);
        TestDb { store, _dir: Some(dir), postgres: None }
    }

    pub async fn postgres() -> TestDb {
        sqlx::any::install_default_drivers();
        let admin = admin_url();
        let name = format!("sluice_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AnyConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} must be reachable: {e}"));
        conn.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
        conn.close().await.unwrap();
        let store = Store::open(&with_database(&admin, &name)).await.expect("open postgres");
        assert_eq!(store.backend(), Backend::Postgres);
        TestDb { store, _dir: None, postgres: Some((admin, name)) }
    }

    /// Reopens the same database (a second process, or a restart).
    pub async fn reopen(&self) -> Store {
        match &self.postgres {
            Some((admin, name)) => Store::open(&with_database(admin, name)).await.unwrap(),
            None => {
                let dir = self._dir.as_ref().unwrap();
                Store::open(&Store::sqlite_url(&dir.path().join("sluice.db"))).await.unwrap()
            }
        }
    }

    pub async fn finish(self) {
        self.store.close().await;
        if let Some((admin, name)) = self.postgres {
            let mut conn = AnyConnection::connect(&admin).await.unwrap();
            conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await.unwrap();
        }
    }
}
