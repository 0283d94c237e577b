//! Durable state for Sluice. One implementation serves both backends: SQLite (default, WAL,
//! `synchronous=FULL`) and PostgreSQL. Every statement is written once with `$N` placeholders
//! and runs through `sql`: on PostgreSQL with sqlx's `Any` driver, on SQLite with rusqlite on
//! the calling thread (transactions on one writer connection with group commit, see
//! `sqlite_writer`; other reads on `sqlite_reader`). Each backend has its own migrations folder,
//! embedded in the binary.
//!
//! Modules by concern: [`keys`] (access keys), [`action_types`], [`pipelines`] (declarations and
//! versions), [`tags`], [`events`] (the append-only history), [`documents`] (SSM Automation documents
//! and their versions), [`query`] (the Cloudforet query language over described tables).

mod acks;
pub mod action_types;
pub mod automation;
mod batch;
mod claims;
pub mod cloudforet;
pub mod documents;
pub mod events;
pub mod executions;
pub mod jobs;
pub mod keys;
pub mod objects;
pub mod pipelines;
pub mod query;
pub(crate) mod sql;
pub mod sqlite_reader;
mod sqlite_writer;
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
    #[error("database error: {0}")]
    Sqlite(#[source] rusqlite::Error),
    /// A Cloudforet query the store cannot run; it carries Cloudforet's error code.
    #[error("{0}")]
    Query(#[from] sluice_core::query::QueryError),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The guard of a guarded transaction found no row ([`Store::begin_guarded`]); nothing of
    /// the transaction was written.
    #[error("the guarded transaction's guard no longer holds")]
    GuardFailed,
    /// A database error met by a statement that carried several requests' writes
    /// ([`acks`], [`claims`]); each request gets its text.
    #[error("database error: {0}")]
    Shared(String),
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict,
            _ => Error::Database(err),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
        match &err {
            rusqlite::Error::SqliteFailure(e, _)
                if matches!(e.extended_code, SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY) =>
            {
                Error::Conflict
            }
            _ => Error::Sqlite(err),
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
    /// SQLite's one writer connection with group commit (see [`sqlite_writer`]); None on
    /// PostgreSQL, where transactions run on pooled connections.
    writer: Option<std::sync::Arc<sqlite_writer::Writer>>,
    /// PostgreSQL's task that merges concurrent acknowledgements into one statement ([`acks`]).
    acks: Option<std::sync::Arc<acks::Acks>>,
    /// PostgreSQL's task that merges concurrent claims of a queue into one statement ([`claims`]).
    claims: Option<std::sync::Arc<claims::Claims>>,
    /// The database url (PostgreSQL's job notifications need a connection of their own).
    url: std::sync::Arc<str>,
}

/// A transaction on the store: on SQLite the writer connection's turn and a savepoint in its
/// group transaction, on PostgreSQL a pooled connection's transaction (for a guarded one, not
/// begun until it needs to be, [`Store::begin_guarded`]). Statements run on it
/// through [`sql`]; dropping it uncommitted rolls back its own writes.
pub struct Tx<'a> {
    inner: TxInner<'a>,
    /// Statements held for the next round trip (PostgreSQL only; see [`sql::Query::defer`]).
    held: Vec<sql::Query<'static>>,
    /// The rows the held statements write, where their callers named them
    /// ([`sql::Query::defer_keyed`]).
    held_keys: std::collections::HashSet<String>,
}

enum TxInner<'a> {
    Sqlx(sqlx::Transaction<'a, sqlx::Any>),
    Lite(sqlite_writer::LiteTx),
    /// A guarded PostgreSQL transaction nothing has been sent for yet ([`Store::begin_guarded`]).
    Unbegun {
        pool: AnyPool,
        guard: sql::Query<'static>,
    },
}

impl Tx<'_> {
    /// A transaction on a pooled connection (PostgreSQL, or a caller outside the writer).
    async fn on_pool(pool: &AnyPool) -> Result<Tx<'static>> {
        Ok(Tx { inner: TxInner::Sqlx(pool.begin().await?), held: Vec::new(), held_keys: Default::default() })
    }

    /// Commits. On SQLite this returns once the group holding this transaction has committed.
    /// A guarded transaction whose guard no longer holds commits nothing:
    /// [`Error::GuardFailed`].
    pub async fn commit(mut self) -> Result<()> {
        if let TxInner::Unbegun { pool, guard } = &self.inner {
            if let Some(statement) = sql::guarded(guard, &self.held) {
                let held = statement.fetch_optional(pool).await?;
                return held.map(|_| ()).ok_or(Error::GuardFailed);
            }
        }
        self.send_held().await?;
        match self.inner {
            TxInner::Sqlx(tx) => Ok(tx.commit().await?),
            TxInner::Lite(tx) => tx.commit().await,
            TxInner::Unbegun { .. } => Err(Error::Corrupt("a guarded transaction did not begin".into())),
        }
    }

    /// Begins an unbegun guarded transaction: BEGIN, then its guard, which must return a row.
    async fn begin_now(&mut self) -> Result<()> {
        let TxInner::Unbegun { pool, guard } = &self.inner else {
            return Ok(());
        };
        let mut tx = pool.begin().await?;
        guard.fetch_optional_sqlx(&mut tx).await?.ok_or(Error::GuardFailed)?;
        self.inner = TxInner::Sqlx(tx);
        Ok(())
    }

    /// Runs `run` on the SQLite writer connection; None on PostgreSQL. (The connection is not
    /// `Sync`, so it is lent to a closure rather than held across an await.)
    pub(crate) fn with_lite<T>(&mut self, run: impl FnOnce(&rusqlite::Connection) -> T) -> Option<T> {
        match &self.inner {
            TxInner::Lite(tx) => Some(run(tx.conn())),
            TxInner::Sqlx(_) | TxInner::Unbegun { .. } => None,
        }
    }

    /// Holds a statement until the transaction's next one (see [`sql::Query::defer`]).
    pub(crate) fn hold(&mut self, statement: sql::Query<'static>) {
        self.held.push(statement);
    }

    /// Records that a held statement writes the row `key`; false if one already does.
    pub(crate) fn hold_key(&mut self, key: String) -> bool {
        self.held_keys.insert(key)
    }

    /// Whether this is a SQLite transaction (on the writer connection).
    pub(crate) fn is_sqlite(&self) -> bool {
        matches!(self.inner, TxInner::Lite(_))
    }

    /// Sends the held statements, combined (see [`sql::combine`]).
    pub(crate) async fn send_held(&mut self) -> Result<()> {
        self.begin_now().await?;
        self.held_keys.clear();
        for statement in sql::combine(std::mem::take(&mut self.held)) {
            statement.execute_sqlx(self).await?;
        }
        Ok(())
    }

    /// The PostgreSQL transaction's connection; None on SQLite.
    pub(crate) fn sqlx_conn(&mut self) -> Option<&mut sqlx::AnyConnection> {
        match &mut self.inner {
            TxInner::Sqlx(tx) => Some(tx),
            TxInner::Lite(_) | TxInner::Unbegun { .. } => None,
        }
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
        let mut writer = None;
        let pool = match backend {
            Backend::Sqlite => {
                let file =
                    sqlx::sqlite::SqliteConnectOptions::try_from(&options)?.get_filename().to_path_buf();
                reader = Some(std::sync::Arc::new(sqlite_reader::SqliteReader::new(&file)));
                let pool = sqlite_pool(options).await?;
                // Migrations create the file and its tables before the writer opens it.
                sqlite_migrate(&pool).await?;
                writer = Some(std::sync::Arc::new(sqlite_writer::Writer::open(&file)?));
                pool
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
        let acks =
            (backend == Backend::Postgres).then(|| std::sync::Arc::new(acks::Acks::start(pool.clone())));
        let mut store = Store { pool, backend, reader, writer, acks, claims: None, url: url.into() };
        if backend == Backend::Postgres {
            let claims = claims::Claims::start(store.pool.clone(), store.claim_sql());
            store.claims = Some(std::sync::Arc::new(claims));
        }
        store.migrate().await?;
        Ok(store)
    }

    /// The SQLite url for a database file, created if missing.
    pub fn sqlite_url(path: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    async fn migrate(&self) -> Result<()> {
        if self.backend == Backend::Postgres {
            POSTGRES_MIGRATIONS.run(&self.pool).await?;
        }
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
    /// first waits for the writer connection's turn.
    pub async fn begin(&self) -> Result<Tx<'static>> {
        match &self.writer {
            Some(writer) => {
                let inner = TxInner::Lite(writer.begin().await?);
                Ok(Tx { inner, held: Vec::new(), held_keys: Default::default() })
            }
            None => Tx::on_pool(&self.pool).await,
        }
    }

    /// Starts a transaction that holds only while `guard` (a query) finds a row; the guard
    /// should lock what it finds. On SQLite the guard runs at once. On PostgreSQL nothing is
    /// sent until the transaction's first statement, which BEGIN and the guard precede; a
    /// transaction that only holds inserts and notifications until its commit commits as one
    /// statement that writes them only if the guard finds its row ([`sql::guarded`]), saving
    /// BEGIN, the guard's and COMMIT's round trips. Either way, a guard that finds no row is
    /// [`Error::GuardFailed`] and nothing is written.
    pub(crate) async fn begin_guarded(&self, guard: sql::Query<'static>) -> Result<Tx<'static>> {
        if self.backend() == Backend::Postgres {
            return Ok(Tx {
                inner: TxInner::Unbegun { pool: self.pool.clone(), guard },
                held: Vec::new(),
                held_keys: Default::default(),
            });
        }
        let mut tx = self.begin().await?;
        guard.fetch_optional(&mut tx).await?.ok_or(Error::GuardFailed)?;
        Ok(tx)
    }

    /// Where reads outside a transaction run: SQLite's same-thread readers, or the pool.
    pub(crate) fn reads(&self) -> sql::On<'_, 'static> {
        match &self.reader {
            Some(reader) => sql::On::Reader(reader),
            None => sql::On::Pool(&self.pool),
        }
    }

    /// Runs one write as its own transaction (on SQLite it joins the writer's group commit);
    /// how many rows it changed.
    pub(crate) async fn write(&self, query: sql::Query<'_>) -> Result<u64> {
        if self.writer.is_none() {
            return query.execute(self.pool()).await;
        }
        let mut tx = self.begin().await?;
        let changed = query.execute(&mut tx).await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// [`Store::write`] for a statement with `RETURNING`: the rows it returned.
    pub(crate) async fn write_returning(&self, query: sql::Query<'_>) -> Result<Vec<sql::Row>> {
        if self.writer.is_none() {
            return query.fetch_all(self.pool()).await;
        }
        let mut tx = self.begin().await?;
        let rows = query.fetch_all(&mut tx).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Receives what other processes on this PostgreSQL database announce: on
    /// [`jobs::ANNOUNCE_CHANNEL`] the queue keys of jobs they queued ([`jobs::announce_in`]), on
    /// [`action_types::DELETED_CHANNEL`] the ids of action types they deleted. None on SQLite,
    /// where one process owns the database.
    pub async fn announcements(&self) -> Result<Option<sqlx::postgres::PgListener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen_all([jobs::ANNOUNCE_CHANNEL, action_types::DELETED_CHANNEL]).await?;
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

/// Four connections per core. A read is one round trip that holds its connection, and more
/// connections than cores add backend processes competing for the same cores (signed
/// GetPipeline at 32 clients: 16 connections gave 8.3k/s, 4 gave 11.3k); but a transition holds
/// its connection through a dozen round trips and its commit's fsync, and B1 (job lifecycles)
/// ran 525-529 jobs/s with 8 connections against 368-378 with 4, while GetPipeline did not
/// measurably change (docs/BENCHMARKS.md, 2026-11-28 second series).
fn postgres_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) as u32;
    (cores * 4).max(8)
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

async fn sqlite_migrate(pool: &AnyPool) -> Result<()> {
    SQLITE_MIGRATIONS.run(pool).await?;
    Ok(())
}

/// Converts a stored integer count to `u32`, treating anything out of range as corruption.
pub(crate) fn to_u32(value: i64, what: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::Corrupt(format!("{what} out of range: {value}")))
}
