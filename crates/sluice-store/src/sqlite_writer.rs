//! SQLite's one writer connection and group commit. Every SQLite transaction runs on this
//! connection (rusqlite, on the calling thread), one at a time, in arrival order. A transaction
//! is a savepoint inside a group transaction: when it commits, its savepoint is released, and
//! if other transactions are already waiting their turn (it yields once to the runtime before
//! deciding there are none), it hands the connection on and waits until the group commits; the
//! last of a burst (or the 32nd) commits the group with one fsync (on a blocking thread when the
//! group has several members) and so answers for all of them. Nobody is answered before the
//! group's COMMIT has returned, so every acknowledged change is durable; a transaction that
//! fails rolls back to its own savepoint and leaves the others' writes alone. See
//! docs/ENGINE.md, "Group commit".

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{watch, Mutex, OwnedMutexGuard};

use crate::{Error, Result};

/// The most transactions one group commit answers for.
const MAX_GROUP: usize = 32;
/// How long a transaction that handed the connection on waits before it checks whether its group
/// still needs committing (its successor may have been cancelled while waiting for its turn).
const RECHECK: Duration = Duration::from_millis(2);
/// How long a transaction waits for another connection's write lock.
const BUSY_WAIT: Duration = Duration::from_secs(10);
/// Failed groups remembered, so late waiters still learn of their failure.
const FAILURES_KEPT: usize = 64;

/// The connection and where its group transaction stands.
pub(crate) struct State {
    pub(crate) conn: Connection,
    /// A group transaction is open.
    open: bool,
    /// The number of the open (or next) group.
    group: u64,
    /// Transactions released into the open group.
    members: usize,
}

/// What has been committed: groups below `done` are finished; `failed` names those that failed.
#[derive(Debug, Clone, Default)]
struct Committed {
    done: u64,
    failed: VecDeque<(u64, String)>,
}

/// The writer: one connection behind a fair mutex, and the group-commit bookkeeping.
pub(crate) struct Writer {
    state: Arc<Mutex<State>>,
    /// Transactions waiting for their turn; a committing transaction defers to them.
    waiting: AtomicUsize,
    committed: watch::Sender<Committed>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("waiting", &self.waiting.load(Ordering::Relaxed)).finish()
    }
}

/// Counts a transaction as waiting until it has its turn (or is cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Writer {
    /// Opens the writer connection to a database file that migrations have already created.
    pub(crate) fn open(path: &Path) -> Result<Writer> {
        let flags =
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags)?;
        // No busy handler: it would sleep on the async runtime's thread. Only BEGIN IMMEDIATE
        // can meet another connection's write lock, and it retries with async sleeps instead.
        conn.busy_timeout(Duration::ZERO)?;
        // temp_store = MEMORY keeps the savepoints' sub-journal in memory: by default it spills
        // to a temporary file past 64 KiB, which a group's savepoints pass, and then every page
        // first written in a savepoint costs a write(2) while the writer is held (perf put 9% of
        // the server's samples in B1 there; B1's throughput did not change measurably).
        // wal_autocheckpoint = 8000: a checkpoint (copying pages into the database file and
        // syncing it, inside some writer's commit) every ~32 MiB of WAL rather than every 4 MiB
        // (ARCHITECTURE.md, "SQLite bypasses sqlx's worker thread").
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
             PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 8000;",
        )?;
        conn.set_prepared_statement_cache_capacity(256);
        let state = State { conn, open: false, group: 0, members: 0 };
        Ok(Writer {
            state: Arc::new(Mutex::new(state)),
            waiting: AtomicUsize::new(0),
            committed: watch::channel(Committed::default()).0,
        })
    }

    /// Waits for the connection, then starts a transaction (a savepoint in the group).
    pub(crate) async fn begin(self: &Arc<Self>) -> Result<LiteTx> {
        let mut state = {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let _waiting = Waiting(&self.waiting);
            self.state.clone().lock_owned().await
        };
        if !state.open {
            begin_immediate(&mut state.conn).await?;
            state.open = true;
        }
        if let Err(err) = run(&state.conn, "SAVEPOINT op") {
            self.finish_turn(&mut state);
            return Err(err.into());
        }
        Ok(LiteTx { writer: self.clone(), state: Some(state) })
    }

    /// Whether the transaction ending its turn should commit the group now: nobody is waiting
    /// to join it, or it is full.
    fn should_commit(&self, state: &State) -> bool {
        self.waiting.load(Ordering::SeqCst) == 0 || state.members >= MAX_GROUP
    }

    /// Commits the open group and tells its members.
    fn commit_group(&self, state: &mut State) -> Result<()> {
        let group = state.group;
        let result = run(&state.conn, "COMMIT");
        if result.is_err() {
            let _ = run(&state.conn, "ROLLBACK");
        }
        state.open = false;
        state.members = 0;
        state.group += 1;
        self.committed.send_modify(|c| {
            c.done = group + 1;
            if let Err(err) = &result {
                c.failed.push_back((group, err.to_string()));
                if c.failed.len() > FAILURES_KEPT {
                    c.failed.pop_front();
                }
            }
        });
        result.map_err(Error::from)
    }

    /// Ends a turn that released nothing into the group: commits the group if others are in it
    /// and nobody follows, or rolls back an empty group so no write lock is held while idle.
    fn finish_turn(&self, state: &mut State) {
        if !state.open {
            return;
        }
        if state.members == 0 {
            let _ = run(&state.conn, "ROLLBACK");
            state.open = false;
        } else if self.should_commit(state) {
            let _ = self.commit_group(state);
        }
    }

    /// Commits the open group. A group of several is committed on a blocking thread: its fsync
    /// then does not stall a runtime worker, which meanwhile serves the requests that make up the
    /// next group. A group of one is committed here, as nobody else is being served and handing
    /// over to another thread would add two thread wake-ups to its latency. Dropped while it
    /// waits, the commit still completes and the group's members are still told.
    async fn commit_group_async(self: &Arc<Self>, mut state: OwnedMutexGuard<State>) -> Result<()> {
        if state.members <= 1 {
            return self.commit_group(&mut state);
        }
        let writer = self.clone();
        tokio::task::spawn_blocking(move || writer.commit_group(&mut state))
            .await
            .unwrap_or_else(|err| Err(Error::Corrupt(format!("group commit did not finish: {err}"))))
    }

    /// Waits until group `group` has committed; commits it if it is still open and nobody else
    /// holds the turn to do so.
    async fn wait_for(self: &Arc<Self>, group: u64) -> Result<()> {
        let mut committed = self.committed.subscribe();
        loop {
            // The outcome is copied out: the channel's read guard must not be held across an await.
            let outcome = match tokio::time::timeout(RECHECK, committed.wait_for(|c| c.done > group)).await {
                Ok(Ok(c)) => Some(c.failed.iter().find(|(g, _)| *g == group).map(|(_, err)| err.clone())),
                _ => None,
            };
            match outcome {
                Some(Some(err)) => return Err(Error::Corrupt(format!("group commit failed: {err}"))),
                Some(None) => return Ok(()),
                None => {}
            }
            if let Ok(state) = self.state.clone().try_lock_owned() {
                if state.open && state.group == group {
                    return self.commit_group_async(state).await;
                }
            }
        }
    }
}

/// Runs a statement that returns no rows through the connection's statement cache. The
/// savepoint and group statements run for every transaction, and `execute_batch` would parse
/// them again each time.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Takes SQLite's write lock, waiting (asynchronously) up to [`BUSY_WAIT`] while another
/// connection, such as a second process on the same file, holds it.
async fn begin_immediate(conn: &mut Connection) -> Result<()> {
    let deadline = tokio::time::Instant::now() + BUSY_WAIT;
    loop {
        match run(conn, "BEGIN IMMEDIATE") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            result => return Ok(result?),
        }
    }
}

/// A SQLite transaction: the writer's turn and a savepoint.
pub(crate) struct LiteTx {
    writer: Arc<Writer>,
    state: Option<OwnedMutexGuard<State>>,
}

impl LiteTx {
    pub(crate) fn conn(&self) -> &Connection {
        &self.state.as_ref().expect("a live transaction holds the writer").conn
    }

    /// Releases the savepoint into the group, then commits the group or waits for it.
    pub(crate) async fn commit(mut self) -> Result<()> {
        let alone = self.state.as_ref().is_some_and(|state| state.members + 1 < MAX_GROUP)
            && self.writer.waiting.load(Ordering::SeqCst) == 0;
        if alone {
            // Before committing alone, let the runtime run tasks that are ready: one about to
            // ask for the turn then joins this group instead of waiting out its fsync. Dropped
            // here, the transaction rolls back as if it had never asked to commit.
            tokio::task::yield_now().await;
        }
        let mut state = self.state.take().expect("a live transaction holds the writer");
        if let Err(err) = run(&state.conn, "RELEASE op") {
            let _ = state.conn.execute_batch("ROLLBACK TO op; RELEASE op");
            self.writer.finish_turn(&mut state);
            return Err(err.into());
        }
        state.members += 1;
        if self.writer.should_commit(&state) {
            return self.writer.commit_group_async(state).await;
        }
        let group = state.group;
        drop(state);
        self.writer.wait_for(group).await
    }
}

impl Drop for LiteTx {
    /// A transaction dropped without committing undoes its own writes only.
    fn drop(&mut self) {
        if let Some(mut state) = self.state.take() {
            let _ = state.conn.execute_batch("ROLLBACK TO op; RELEASE op");
            self.writer.finish_turn(&mut state);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;

    fn values(path: &Path) -> Vec<i64> {
        let conn = Connection::open(path).unwrap();
        let mut statement = conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        let rows = statement.query_map([], |row| row.get(0)).unwrap();
        rows.map(|v| v.unwrap()).collect()
    }

    /// A writer on a fresh database with one table, `t (v)`.
    fn writer_on_table_t() -> (tempfile::TempDir, std::path::PathBuf, Arc<Writer>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let writer = Arc::new(Writer::open(&path).unwrap());
        (dir, path, writer)
    }

    /// A transaction alone yields once before it commits; dropped there (its request went away),
    /// it rolls back, and the writer goes on.
    #[tokio::test]
    async fn a_commit_dropped_while_it_yields_leaves_nothing_behind() {
        let (_dir, path, writer) = writer_on_table_t();

        let tx = writer.begin().await.unwrap();
        tx.conn().execute("INSERT INTO t VALUES (1)", []).unwrap();
        let mut commit = Box::pin(tx.commit());
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(commit.as_mut().poll(cx))).await;
        assert!(first.is_pending(), "a transaction alone yields before it commits");
        drop(commit);

        let tx = writer.begin().await.unwrap();
        tx.conn().execute("INSERT INTO t VALUES (2)", []).unwrap();
        tx.commit().await.unwrap();
        assert_eq!(values(&path), vec![2]);
    }

    /// The last member of a group of two commits it on a blocking thread; dropped while that
    /// runs, its request is gone but the group still commits, the connection is usable again,
    /// and the first member is answered. (Were the commit lost with the drop, the first member's
    /// 2 ms re-check would commit the group instead; the test then still holds, so it guards
    /// the outcome and the writer's state, not which of the two committed.)
    #[tokio::test]
    async fn a_group_commit_dropped_while_it_runs_still_commits_the_group() {
        let (_dir, path, writer) = writer_on_table_t();

        let first = writer.begin().await.unwrap();
        first.conn().execute("INSERT INTO t VALUES (1)", []).unwrap();
        let second = tokio::spawn({
            let writer = writer.clone();
            async move { writer.begin().await.unwrap() }
        });
        while writer.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // Someone waits for the turn, so the first member hands it on instead of committing.
        let first_commit = tokio::spawn(first.commit());
        let second = second.await.unwrap();
        second.conn().execute("INSERT INTO t VALUES (2)", []).unwrap();
        let mut commit = Box::pin(second.commit());
        // The first poll yields (nobody is waiting); the second releases the savepoint into the
        // group and hands the group's COMMIT to a blocking thread.
        for _ in 0..2 {
            let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(commit.as_mut().poll(cx))).await;
            if polled.is_ready() {
                break;
            }
        }
        drop(commit);

        first_commit.await.unwrap().expect("the group committed");
        assert_eq!(values(&path), vec![1, 2]);
        let tx = writer.begin().await.expect("the turn is free again");
        tx.conn().execute("INSERT INTO t VALUES (3)", []).unwrap();
        tx.commit().await.unwrap();
        assert_eq!(values(&path), vec![1, 2, 3]);
    }
}
