//! One statement API over both backends. A [`Query`] is SQL text with `$N` placeholders and its
//! bound values; it runs on a transaction ([`Tx`]) or on the pool. On PostgreSQL (and on the
//! SQLite pool, which only reads) it goes through sqlx; inside a SQLite transaction it runs on
//! the store's writer connection with rusqlite, on the calling thread, so a transition's twenty
//! statements cost microseconds each instead of two thread hand-offs each (docs/ENGINE.md,
//! "Group commit"). Rows come back as [`Row`], which decodes the same way for both.

use rusqlite::types::Value as LiteValue;
use sqlx::any::AnyRow;
use sqlx::AnyPool;

use crate::{Error, Result, Tx};

/// A bound value.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

macro_rules! arg_from {
    ($variant:ident: $($t:ty => $convert:expr),* $(,)?) => {
        $(impl From<$t> for Arg {
            fn from(value: $t) -> Arg {
                let convert: fn($t) -> _ = $convert;
                Arg::$variant(convert(value))
            }
        })*
    };
}

arg_from!(Int:
    i64 => Some,
    Option<i64> => |v| v,
);
arg_from!(Text:
    &str => |v| Some(v.to_string()),
    String => Some,
    &String => |v| Some(v.clone()),
    Option<&str> => |v| v.map(str::to_string),
    Option<String> => |v| v,
    &Option<String> => |v| v.clone(),
);
arg_from!(Blob:
    Vec<u8> => Some,
    &Vec<u8> => |v| Some(v.clone()),
    Option<Vec<u8>> => |v| v,
    &Option<Vec<u8>> => |v| v.clone(),
    Option<&[u8]> => |v| v.map(<[u8]>::to_vec),
);

/// SQL text and its values, in placeholder order (`$1` is the first).
#[derive(Debug, Clone)]
pub(crate) struct Query<'q> {
    sql: std::borrow::Cow<'q, str>,
    args: Vec<Arg>,
}

/// Starts a statement.
pub(crate) fn query(sql: &str) -> Query<'_> {
    Query { sql: sql.into(), args: Vec::new() }
}

/// Starts a statement whose text was built at run time (a multi-row insert).
pub(crate) fn query_owned(sql: String) -> Query<'static> {
    Query { sql: sql.into(), args: Vec::new() }
}

/// Where a statement runs.
pub(crate) enum On<'a, 'c: 'a> {
    Tx(&'a mut Tx<'c>),
    Pool(&'a AnyPool),
    /// SQLite's same-thread read-only connections.
    Reader(&'a crate::sqlite_reader::SqliteReader),
}

impl<'a, 'c> From<&'a mut Tx<'c>> for On<'a, 'c> {
    fn from(tx: &'a mut Tx<'c>) -> Self {
        On::Tx(tx)
    }
}

impl<'a> From<&'a AnyPool> for On<'a, 'static> {
    fn from(pool: &'a AnyPool) -> Self {
        On::Pool(pool)
    }
}

impl<'q> Query<'q> {
    pub(crate) fn bind(mut self, value: impl Into<Arg>) -> Self {
        self.args.push(value.into());
        self
    }

    fn sqlx(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut query = sqlx::query(&self.sql);
        for arg in &self.args {
            query = match arg.clone() {
                Arg::Int(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::Blob(v) => query.bind(v),
            };
        }
        query
    }

    /// Runs an insert of new rows (or a `SELECT pg_notify`) as part of `tx`, perhaps later. On
    /// PostgreSQL it is held, and the held statements go in one statement (one round trip) just
    /// before the transaction's next statement or its commit, where their errors surface; on
    /// SQLite, where a statement costs no round trip, it runs now. Only for statements whose
    /// outcome the caller does not read, and that no other held insert depends on: held inserts
    /// run as the data-modifying parts of one statement, which all see the same snapshot. (The
    /// tables they write have no foreign keys or triggers.)
    pub(crate) async fn defer(self, tx: &mut Tx<'_>) -> Result<()> {
        if tx.is_sqlite() {
            self.execute(tx).await?;
        } else {
            tx.hold(Query { sql: self.sql.into_owned().into(), args: self.args });
        }
        Ok(())
    }

    /// [`Query::defer`] for a statement that writes the one row named by `key` (`table:id`),
    /// an `UPDATE` of a row that existed before this statement's batch, or an insert: the parts
    /// of one statement cannot see each other's rows, and a row written twice in one statement
    /// keeps only one of the writes, so if a held statement already writes that row, the held
    /// statements are sent first.
    pub(crate) async fn defer_keyed(self, tx: &mut Tx<'_>, key: String) -> Result<()> {
        if !tx.is_sqlite() && !tx.hold_key(key) {
            tx.send_held().await?;
        }
        self.defer(tx).await
    }

    /// Runs the statement; how many rows it changed.
    pub(crate) async fn execute<'a, 'c: 'a>(self, on: impl Into<On<'a, 'c>>) -> Result<u64> {
        match on.into() {
            On::Pool(pool) => Ok(self.sqlx().execute(pool).await?.rows_affected()),
            On::Reader(reader) => {
                reader.with_rows(|conn| lite_run(conn, &self.sql, &self.args, &mut |_| Ok(())))
            }
            On::Tx(tx) => {
                if let Some(changed) =
                    tx.with_lite(|conn| lite_run(conn, &self.sql, &self.args, &mut |_| Ok(())))
                {
                    return changed;
                }
                tx.send_held().await?;
                self.execute_sqlx(tx).await
            }
        }
    }

    /// Every row the statement returns.
    pub(crate) async fn fetch_all<'a, 'c: 'a>(self, on: impl Into<On<'a, 'c>>) -> Result<Vec<Row>> {
        match on.into() {
            On::Pool(pool) => Ok(self.sqlx().fetch_all(pool).await?.into_iter().map(Row::Any).collect()),
            On::Reader(reader) => {
                let mut rows = Vec::new();
                reader.with_rows(|conn| {
                    lite_run(conn, &self.sql, &self.args, &mut |row| {
                        rows.push(row);
                        Ok(())
                    })
                })?;
                Ok(rows)
            }
            On::Tx(tx) => {
                let mut rows = Vec::new();
                let mut keep = |row| {
                    rows.push(row);
                    Ok(())
                };
                if let Some(done) = tx.with_lite(|conn| lite_run(conn, &self.sql, &self.args, &mut keep)) {
                    done?;
                    return Ok(rows);
                }
                tx.send_held().await?;
                Ok(self.sqlx().fetch_all(sqlx_conn(tx)?).await?.into_iter().map(Row::Any).collect())
            }
        }
    }

    /// The first row, if any.
    pub(crate) async fn fetch_optional<'a, 'c: 'a>(self, on: impl Into<On<'a, 'c>>) -> Result<Option<Row>> {
        Ok(self.fetch_all(on).await?.into_iter().next())
    }

    /// The first row; an error if there is none.
    pub(crate) async fn fetch_one<'a, 'c: 'a>(self, on: impl Into<On<'a, 'c>>) -> Result<Row> {
        self.fetch_optional(on).await?.ok_or_else(|| Error::Corrupt("a statement returned no row".into()))
    }
}

impl Query<'_> {
    /// The first row the statement returns on a PostgreSQL connection.
    pub(crate) async fn fetch_optional_sqlx(&self, conn: &mut sqlx::AnyConnection) -> Result<Option<Row>> {
        Ok(self.sqlx().fetch_optional(conn).await?.map(Row::Any))
    }

    /// Runs the statement on a PostgreSQL transaction's connection, held inserts or not.
    pub(crate) async fn execute_sqlx(&self, tx: &mut Tx<'_>) -> Result<u64> {
        Ok(self.sqlx().execute(sqlx_conn(tx)?).await?.rows_affected())
    }
}

/// Held statements (see [`Query::defer`]) as few statements as can carry them, in order: inserts
/// and updates become data-modifying `WITH` parts of the next statement, their placeholders
/// renumbered after the values of the parts before them. Any other statement (a `SELECT
/// pg_notify`, which a `WITH` part would never run) ends its batch as the main statement.
pub(crate) fn combine(held: Vec<Query<'static>>) -> Vec<Query<'static>> {
    let mut batches = Vec::new();
    let mut parts: Vec<Query<'static>> = Vec::new();
    for statement in held {
        let sql = statement.sql.trim_start();
        let writes = sql.starts_with("INSERT") || sql.starts_with("UPDATE");
        parts.push(statement);
        if !writes {
            batches.extend(one_statement(std::mem::take(&mut parts)));
        }
    }
    batches.extend(one_statement(parts));
    batches
}

/// `parts` as one statement: all but the last as `WITH` parts of the last.
fn one_statement(mut parts: Vec<Query<'static>>) -> Option<Query<'static>> {
    let last = parts.pop()?;
    if parts.is_empty() {
        return Some(last);
    }
    let mut sql = String::from("WITH ");
    let mut args = Vec::new();
    for (index, part) in parts.into_iter().enumerate() {
        sql.push_str(&format!("held{index} AS ({}), ", renumber(&part.sql, args.len())));
        args.extend(part.args);
    }
    sql.truncate(sql.len() - 2);
    sql.push(' ');
    sql.push_str(&renumber(&last.sql, args.len()));
    args.extend(last.args);
    Some(Query { sql: sql.into(), args })
}

/// A guarded transaction's held statements (see [`Tx`]'s unbegun state) and its guard as one
/// statement that commits on its own: the guard is the `WITH` part `guard`, every held insert
/// inserts its row once per guard row (`INSERT … SELECT <values> FROM guard`), and the main
/// statement runs the held `pg_notify` calls once per guard row and returns one row if the guard
/// held. So nothing is written, and nobody notified, unless the guard found its row. None if a
/// held statement is neither a plain `INSERT … VALUES (…)` nor a `SELECT pg_notify(…)`.
pub(crate) fn guarded(guard: &Query<'static>, held: &[Query<'static>]) -> Option<Query<'static>> {
    let mut sql = format!("WITH guard AS ({})", guard.sql);
    let mut args = guard.args.clone();
    let mut notifies = Vec::new();
    for (index, part) in held.iter().enumerate() {
        let text = renumber(&part.sql, args.len());
        if let Some(call) = text.trim_start().strip_prefix("SELECT pg_notify(") {
            notifies.push(format!("pg_notify({call}"));
        } else {
            let (into, values) = text.split_once(" VALUES (")?;
            let values = values.trim_end().strip_suffix(')')?;
            if !into.trim_start().starts_with("INSERT INTO") {
                return None;
            }
            sql.push_str(&format!(", held{index} AS ({into} SELECT {values} FROM guard)"));
        }
        args.extend(part.args.iter().cloned());
    }
    notifies.insert(0, "1".into());
    sql.push_str(&format!(" SELECT {} FROM guard", notifies.join(", ")));
    Some(Query { sql: sql.into(), args })
}

/// `sql` with every placeholder `$N` written as `$(N + offset)`. (Held statements carry no `$`
/// in literals.)
fn renumber(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(number) => out.push_str(&(number + offset).to_string()),
            Err(_) => out.push_str(&digits),
        }
    }
    out
}

fn sqlx_conn<'t>(tx: &'t mut Tx<'_>) -> Result<&'t mut sqlx::AnyConnection> {
    tx.sqlx_conn().ok_or_else(|| Error::Corrupt("a SQLite transaction has no sqlx connection".into()))
}

/// Runs `sql` on the writer connection, handing each row to `each`; returns the changed rows.
/// `$N` placeholders are SQLite named parameters, bound by their number.
fn lite_run(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Arg],
    each: &mut dyn FnMut(Row) -> Result<()>,
) -> Result<u64> {
    let mut statement = conn.prepare_cached(sql)?;
    for index in 1..=statement.parameter_count() {
        let name = statement.parameter_name(index).unwrap_or_default();
        let number: usize = name.trim_start_matches(['$', '?']).parse().unwrap_or(index);
        let arg =
            args.get(number - 1).ok_or_else(|| Error::Corrupt(format!("no value for {name} in: {sql}")))?;
        match arg {
            Arg::Int(v) => statement.raw_bind_parameter(index, v)?,
            Arg::Text(v) => statement.raw_bind_parameter(index, v)?,
            Arg::Blob(v) => statement.raw_bind_parameter(index, v)?,
        }
    }
    let columns = statement.column_count();
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next()? {
        let values =
            (0..columns).map(|i| row.get::<_, LiteValue>(i)).collect::<rusqlite::Result<Vec<_>>>()?;
        each(Row::Lite(values))?;
    }
    Ok(conn.changes())
}

/// A result row from either backend.
pub(crate) enum Row {
    Any(AnyRow),
    Lite(Vec<LiteValue>),
}

impl Row {
    /// Column `index` as `T`.
    pub(crate) fn try_get<T: Column>(&self, index: usize) -> Result<T> {
        match self {
            Row::Any(row) => T::from_any(row, index),
            Row::Lite(values) => {
                let value = values.get(index).ok_or_else(|| Error::Corrupt(format!("no column {index}")))?;
                T::from_lite(value)
                    .ok_or_else(|| Error::Corrupt(format!("column {index} has an unexpected type")))
            }
        }
    }
}

/// Columns by index: a whole [`Row`], or a [`Part`] of a joined one. Row decoders take this, so
/// one decoder reads its table's columns from a row of their own or from a join.
pub(crate) trait Columns {
    fn try_get<T: Column>(&self, index: usize) -> Result<T>;
}

impl Columns for Row {
    fn try_get<T: Column>(&self, index: usize) -> Result<T> {
        Row::try_get(self, index)
    }
}

/// The columns of a joined row from `from` on: column 0 of the part is column `from` of the row.
pub(crate) struct Part<'r> {
    pub(crate) row: &'r Row,
    pub(crate) from: usize,
}

impl Columns for Part<'_> {
    fn try_get<T: Column>(&self, index: usize) -> Result<T> {
        self.row.try_get(self.from + index)
    }
}

/// A type a column decodes into.
pub(crate) trait Column: Sized {
    fn from_any(row: &AnyRow, index: usize) -> Result<Self>;
    fn from_lite(value: &LiteValue) -> Option<Self>;
}

macro_rules! column {
    ($t:ty, $lite:pat => $value:expr) => {
        impl Column for $t {
            fn from_any(row: &AnyRow, index: usize) -> Result<Self> {
                Ok(sqlx::Row::try_get(row, index)?)
            }
            fn from_lite(value: &LiteValue) -> Option<Self> {
                match value {
                    $lite => Some($value),
                    _ => None,
                }
            }
        }
        impl Column for Option<$t> {
            fn from_any(row: &AnyRow, index: usize) -> Result<Self> {
                Ok(sqlx::Row::try_get(row, index)?)
            }
            fn from_lite(value: &LiteValue) -> Option<Self> {
                match value {
                    LiteValue::Null => Some(None),
                    $lite => Some(Some($value)),
                    _ => None,
                }
            }
        }
    };
}

column!(i64, LiteValue::Integer(v) => *v);
column!(String, LiteValue::Text(v) => v.clone());
column!(Vec<u8>, LiteValue::Blob(v) => v.clone());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_commit_writes_and_notifies_once_per_guard_row() {
        let guard = held(vec![query("SELECT 1 FROM p WHERE name = $1 FOR SHARE").bind("n")]).remove(0);
        let insert = query("INSERT INTO a (x, y)\n  VALUES ($1, $2)").bind(1i64).bind("y");
        let notify = query("SELECT pg_notify($1, $2)").bind("channel").bind("queue");
        let statement = guarded(&guard, &held(vec![insert, notify])).expect("combinable");
        assert_eq!(
            statement.sql,
            "WITH guard AS (SELECT 1 FROM p WHERE name = $1 FOR SHARE), \
             held0 AS (INSERT INTO a (x, y)\n  SELECT $2, $3 FROM guard) SELECT 1, pg_notify($4, $5) FROM guard"
        );
        assert_eq!(statement.args.len(), 5);
        let nothing_held = guarded(&guard, &[]).expect("combinable");
        assert_eq!(
            nothing_held.sql,
            "WITH guard AS (SELECT 1 FROM p WHERE name = $1 FOR SHARE) SELECT 1 FROM guard"
        );
        let update = query("UPDATE a SET x = $1").bind(1i64);
        assert!(guarded(&guard, &held(vec![update])).is_none(), "only inserts and notifies are guarded");
    }

    fn held(statements: Vec<Query<'_>>) -> Vec<Query<'static>> {
        statements.into_iter().map(|q| Query { sql: q.sql.into_owned().into(), args: q.args }).collect()
    }

    #[test]
    fn held_inserts_combine_into_one_statement_with_renumbered_placeholders() {
        let first = query("INSERT INTO a (x, y) VALUES ($1, $2)").bind(1i64).bind("one");
        let second = query("INSERT INTO b (x, y, z) VALUES ($1, $2, $1)").bind(2i64).bind("two");
        let third = query("INSERT INTO c (x) VALUES ($1)").bind(3i64);
        let combined = combine(held(vec![first, second, third]));
        assert_eq!(combined.len(), 1);
        assert_eq!(
            combined[0].sql,
            "WITH held0 AS (INSERT INTO a (x, y) VALUES ($1, $2)), \
             held1 AS (INSERT INTO b (x, y, z) VALUES ($3, $4, $3)) INSERT INTO c (x) VALUES ($5)"
        );
        let ints: Vec<Option<i64>> = combined[0]
            .args
            .iter()
            .filter_map(|a| match a {
                Arg::Int(v) => Some(*v),
                _ => None,
            })
            .collect();
        assert_eq!(ints, vec![Some(1), Some(2), Some(3)]);
        assert_eq!(combined[0].args.len(), 5);
    }

    #[test]
    fn a_held_select_ends_its_batch_as_the_main_statement() {
        let insert = query("INSERT INTO a (x) VALUES ($1)").bind(1i64);
        let notify = query("SELECT pg_notify($1, $2)").bind("channel").bind("queue");
        let later = query("INSERT INTO b (x) VALUES ($1)").bind(2i64);
        let combined = combine(held(vec![insert, notify, later]));
        let texts: Vec<&str> = combined.iter().map(|q| q.sql.as_ref()).collect();
        assert_eq!(
            texts,
            vec![
                "WITH held0 AS (INSERT INTO a (x) VALUES ($1)) SELECT pg_notify($2, $3)",
                "INSERT INTO b (x) VALUES ($1)"
            ]
        );
        assert!(combine(Vec::new()).is_empty());
    }

    #[test]
    fn held_updates_are_parts_like_inserts() {
        let update = query("UPDATE a SET x = $1 WHERE id = $2").bind(1i64).bind("a1");
        let insert = query("INSERT INTO b (x) VALUES ($1)").bind(2i64);
        let last = query("UPDATE c SET x = $1 WHERE id = $2").bind(3i64).bind("c1");
        let combined = combine(held(vec![update, insert, last]));
        let texts: Vec<&str> = combined.iter().map(|q| q.sql.as_ref()).collect();
        assert_eq!(
            texts,
            vec![
                "WITH held0 AS (UPDATE a SET x = $1 WHERE id = $2), held1 AS (INSERT INTO b (x) VALUES ($3)) \
                 UPDATE c SET x = $4 WHERE id = $5"
            ]
        );
        assert!(guarded(&query("SELECT 1").bind(1i64), &held(vec![query("UPDATE a SET x = 1")])).is_none());
    }

    #[test]
    fn renumbering_leaves_a_lone_dollar_and_large_numbers_right() {
        assert_eq!(renumber("SELECT $1, $10, $ , $2", 7), "SELECT $8, $17, $ , $9");
    }
}
