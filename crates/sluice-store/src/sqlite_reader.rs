//! Hot-path reads on SQLite, run on the calling thread. sqlx's SQLite driver hands every
//! statement to a worker thread and back, and on this two-core target that handoff costs more
//! than the read itself; a small pool of read-only connections (same libsqlite3, WAL, so a read
//! never waits for a writer and always sees every committed transaction) removes it. Writes and
//! everything else still go through sqlx.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::pipelines::{PipelineMeta, PipelineVersion};
use crate::{Error, Result};

/// Read-only connections to one SQLite file.
#[derive(Debug)]
pub struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

const MAX_IDLE: usize = 8;

/// SQLite's `pattern REGEXP text` calls `regexp(pattern, text)`; the query language's regex and
/// contain operators use it (Rust's `regex` syntax, compiled once per statement). NULL text is NULL.
fn regexp(ctx: &Context<'_>) -> rusqlite::Result<Option<bool>> {
    type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
    let pattern = ctx.get_or_create_aux(0, |value| -> Result<regex::Regex, BoxError> {
        Ok(regex::Regex::new(value.as_str()?)?)
    })?;
    Ok(match ctx.get_raw(1) {
        rusqlite::types::ValueRef::Text(text) => Some(pattern.is_match(&String::from_utf8_lossy(text))),
        rusqlite::types::ValueRef::Null => None,
        _ => Some(false),
    })
}

fn corrupt(err: rusqlite::Error) -> Error {
    Error::Corrupt(format!("sqlite read: {err}"))
}

impl SqliteReader {
    pub fn new(path: &Path) -> SqliteReader {
        SqliteReader { path: path.to_path_buf(), idle: Mutex::new(Vec::new()) }
    }

    fn open(&self) -> Result<Connection> {
        let flags =
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(corrupt)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(corrupt)?;
        let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
        conn.create_scalar_function("regexp", 2, flags, regexp).map_err(corrupt)?;
        Ok(conn)
    }

    /// Runs `read` on an idle connection (opening one if none is idle) and puts it back.
    pub(crate) fn with<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.with_rows(|conn| read(conn).map_err(corrupt))
    }

    /// Runs `read` (statements through [`crate::sql`]) on an idle connection.
    pub(crate) fn with_rows<T>(&self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self.idle.lock().expect("reader pool lock").pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = read(&conn);
        let mut idle = self.idle.lock().expect("reader pool lock");
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        result
    }

    /// The same read as `Store::pipeline`.
    pub fn pipeline(&self, name: &str, version: Option<i64>) -> Result<Option<PipelineVersion>> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(crate::pipelines::PIPELINE_VERSION_SQL)?;
            statement
                .query_row(rusqlite::params![name, version], |row| {
                    Ok(PipelineVersion {
                        meta: PipelineMeta {
                            name: row.get(0)?,
                            version: row.get(1)?,
                            pipeline_type: row.get(2)?,
                            execution_mode: row.get(3)?,
                            created_at: row.get(4)?,
                            updated_at: row.get(5)?,
                        },
                        version: row.get(6)?,
                        declaration: row.get(7)?,
                        secrets: row.get(8)?,
                    })
                })
                .optional()
        })
    }
}
