//! Throwaway databases for the storage suite.

use sluice_store::testing::{
    create_postgres_database, drop_postgres_database, postgres_admin_url, with_database,
};
use sluice_store::{Backend, Store};

pub struct TestDb {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
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
        let admin = postgres_admin_url();
        let name = create_postgres_database("sluice_test").await;
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
        if let Some((_, name)) = self.postgres {
            drop_postgres_database(&name).await;
        }
    }
}
