//! Durable state for Sluice. One implementation over sqlx's `Any` driver serves both backends:
//! SQLite (default, WAL, `synchronous=FULL`) and PostgreSQL. SQL text uses `$N` placeholders,
//! which both drivers accept; each backend has its own migrations folder, embedded in the binary.
//!
//! Modules by concern: [`keys`] (access keys), [`action_types`], [`pipelines`] (declarations and
//! versions), [`tags`], [`events`] (the append-only history), [`documents`] (SSM Automation documents
//! and their versions), [`query`] (the Cloudforet query language over described tables).

pub mod action_types;
pub mod automation;
pub mod cloudforet;
pub mod documents;
pub mod events;
pub mod executions;
pub mod jobs;
pub mod keys;
pub mod objects;
pub mod pipelines;
pub mod query;
pub mod sqlite_reader;
pub mod tags;
pub mod testing;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// Storage errors. `Conflict` is a unique-key violation; the rest are the database's own.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("a row with that key already exists")]
    Conflict,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported database url (use sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A Cloudforet query the store cannot run; it carries Cloudforet's error code.
    #[error("{0}")]
    Query(#[from] sluice_core::query::QueryError),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict,
            _ => Error::Database(err),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    reader: Option<std::sync::Arc<sqlite_reader::SqliteReader>>,
    /// SQLite has one writer at a time; writers queue here, in order, instead of holding pooled
    /// connections while SQLite's busy handler sleeps and retries. None on PostgreSQL.
    writer: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
    /// The database url (PostgreSQL's job notifications need a connection of their own).
    url: std::sync::Arc<str>,
}

/// A transaction on the store. On SQLite it also holds the store's write turn until it commits
/// or is dropped. It dereferences to the connection, so queries run on `&mut **tx`.
pub struct Tx<'a> {
    inner: sqlx::Transaction<'a, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Tx<'_> {
    /// Commits; the write turn ends after the commit.
    pub async fn commit(self) -> Result<()> {
        self.inner.commit().await?;
        Ok(())
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Opens (creating if needed) the database at `url` and applies pending migrations.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(Error::UnsupportedUrl);
        };
        let options = AnyConnectOptions::from_str(url)?;
        let mut reader = None;
        let pool = match backend {
            Backend::Sqlite => {
                let file =
                    sqlx::sqlite::SqliteConnectOptions::try_from(&options)?.get_filename().to_path_buf();
                reader = Some(std::sync::Arc::new(sqlite_reader::SqliteReader::new(&file)));
                sqlite_pool(options).await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(postgres_pool_size())
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?
            }
        };
        let writer = (backend == Backend::Sqlite).then(|| std::sync::Arc::new(tokio::sync::Mutex::new(())));
        let store = Store { pool, backend, reader, writer, url: url.into() };
        store.migrate().await?;
        Ok(store)
    }

    /// The SQLite url for a database file, created if missing.
    pub fn sqlite_url(path: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The same-thread read path, on SQLite only.
    pub(crate) fn sqlite_reader(&self) -> Option<&sqlite_reader::SqliteReader> {
        self.reader.as_deref()
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a transaction; everything written through it commits together. On SQLite it
    /// first waits for the write turn.
    pub async fn begin(&self) -> Result<Tx<'static>> {
        let turn = match &self.writer {
            Some(writer) => Some(writer.clone().lock_owned().await),
            None => None,
        };
        Ok(Tx { inner: self.pool.begin().await?, _turn: turn })
    }

    /// The write turn for a single-statement write outside a transaction (SQLite only).
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.writer {
            Some(writer) => Some(writer.lock().await),
            None => None,
        }
    }

    /// Receives the queue keys of jobs other processes on this PostgreSQL database queued
    /// (see [`jobs::announce_in`]); None on SQLite, where one process owns the database.
    pub async fn job_announcements(&self) -> Result<Option<sqlx::postgres::PgListener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen(jobs::ANNOUNCE_CHANNEL).await?;
        Ok(Some(listener))
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        self.pool.execute("SELECT 1").await?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Two connections per core: on PostgreSQL each query is a round trip that holds its
/// connection, and more connections than that only add backend processes competing for the
/// same cores (measured in docs/BENCHMARKS.md: 16 connections gave 8.3k GetPipeline/s, 4 gave 11.3k).
fn postgres_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) as u32;
    (cores * 2).max(4)
}

async fn sqlite_pool(options: AnyConnectOptions) -> Result<AnyPool> {
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Converts a stored integer count to `u32`, treating anything out of range as corruption.
pub(crate) fn to_u32(value: i64, what: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::Corrupt(format!("{what} out of range: {value}")))
}
