//! Throwaway PostgreSQL databases for test suites (the storage suite and end-to-end tests).
//! The admin URL comes from `SLUICE_TEST_POSTGRES_URL` (default: the local server as `postgres`);
//! an unreachable server is a panic, so a suite fails rather than skips.

use sqlx::{AnyConnection, Connection, Executor};

/// The PostgreSQL URL tests create databases through.
pub fn postgres_admin_url() -> String {
    std::env::var("SLUICE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("postgres url has a database path");
    format!("{base}/{database}")
}

/// Creates an empty database named `<prefix>_<random>` and returns its name.
pub async fn create_postgres_database(prefix: &str) -> String {
    sqlx::any::install_default_drivers();
    let admin = postgres_admin_url();
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let mut conn = AnyConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} must be reachable: {e}"));
    conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create test database");
    conn.close().await.expect("close admin connection");
    name
}

/// Drops a database made by [`create_postgres_database`], closing its connections.
pub async fn drop_postgres_database(name: &str) {
    let mut conn = AnyConnection::connect(&postgres_admin_url()).await.expect("connect as admin");
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .expect("drop test database");
}
