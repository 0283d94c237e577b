//! Runs compiled query SQL: on PostgreSQL through sqlx, on SQLite through the same-thread
//! reader (rusqlite) on a blocking thread, because only there can Sluice register the
//! `REGEXP` function the regex and contain operators compile to. Cells come back as JSON.

use serde_json::Value;
use sluice_core::query::format_datetime_seconds;
use sqlx::Row;

use super::{shown, FieldKind};
use crate::{Backend, Error, Result, Store};

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
}

/// What a result column holds and how it is shown.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Column {
    /// A field's column, shown as the field is.
    Field(FieldKind),
    Int,
    Float,
    Text,
    /// A JSON array (text) of one field's values.
    Pushed(FieldKind),
    /// A JSON array (text) of arrays, one value per named sub-field.
    PushedObjects(Vec<(String, FieldKind)>),
}

impl Column {
    pub(crate) fn is_text(&self) -> bool {
        matches!(self, Column::Text | Column::Pushed(_) | Column::PushedObjects(_))
            || matches!(self, Column::Field(FieldKind::Text | FieldKind::Json))
    }

    fn show(&self, raw: Value) -> Value {
        match self {
            Column::Field(kind) => shown(*kind, raw),
            Column::Int | Column::Float | Column::Text => raw,
            Column::Pushed(kind) => match parse_array(raw) {
                Some(items) => Value::Array(items.into_iter().map(|v| shown(*kind, v)).collect()),
                None => Value::Array(Vec::new()),
            },
            Column::PushedObjects(names) => match parse_array(raw) {
                Some(items) => {
                    Value::Array(items.into_iter().map(|item| pushed_object(names, item)).collect())
                }
                None => Value::Array(Vec::new()),
            },
        }
    }
}

fn parse_array(raw: Value) -> Option<Vec<Value>> {
    match raw {
        Value::String(text) => match serde_json::from_str(&text) {
            Ok(Value::Array(items)) => Some(items),
            _ => None,
        },
        _ => None,
    }
}

/// A pushed row: datetimes in push's seconds form, as Cloudforet's `$dateToString` gives them.
fn pushed_object(names: &[(String, FieldKind)], item: Value) -> Value {
    let values = match item {
        Value::Array(values) => values,
        _ => Vec::new(),
    };
    let object = names
        .iter()
        .zip(values)
        .map(|((name, kind), value)| {
            let value = match (kind, value) {
                (FieldKind::Timestamp, Value::Number(n)) => {
                    n.as_i64().map_or(Value::Null, |ms| Value::String(format_datetime_seconds(ms)))
                }
                (kind, value) => shown(*kind, value),
            };
            (name.clone(), value)
        })
        .collect();
    Value::Object(object)
}

fn float(value: f64) -> Value {
    serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
}

impl Store {
    /// Runs `sql` with `binds`, decoding each row's columns as `columns` say.
    pub(crate) async fn fetch(
        &self,
        sql: &str,
        binds: Vec<Bind>,
        columns: Vec<Column>,
    ) -> Result<Vec<Vec<Value>>> {
        let raw = match self.backend {
            Backend::Postgres => self.fetch_postgres(sql, binds, &columns).await?,
            Backend::Sqlite => self.fetch_sqlite(sql.to_string(), binds, columns.len()).await?,
        };
        Ok(raw.into_iter().map(|row| columns.iter().zip(row).map(|(c, v)| c.show(v)).collect()).collect())
    }

    async fn fetch_postgres(
        &self,
        sql: &str,
        binds: Vec<Bind>,
        columns: &[Column],
    ) -> Result<Vec<Vec<Value>>> {
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Int(int) => query.bind(int),
            };
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| columns.iter().enumerate().map(|(i, column)| any_cell(row, i, column)).collect())
            .collect()
    }

    async fn fetch_sqlite(&self, sql: String, binds: Vec<Bind>, width: usize) -> Result<Vec<Vec<Value>>> {
        let reader = self.reader.clone().ok_or_else(|| Error::Corrupt("sqlite reader missing".into()))?;
        let task =
            tokio::task::spawn_blocking(move || reader.with(|conn| sqlite_rows(conn, &sql, &binds, width)));
        task.await.map_err(|e| Error::Corrupt(format!("query task: {e}")))?
    }
}

fn any_cell(row: &sqlx::any::AnyRow, i: usize, column: &Column) -> Result<Value> {
    Ok(if column.is_text() {
        row.try_get::<Option<String>, _>(i)?.map_or(Value::Null, Value::String)
    } else if *column == Column::Float {
        row.try_get::<Option<f64>, _>(i)?.map_or(Value::Null, float)
    } else {
        row.try_get::<Option<i64>, _>(i)?.map_or(Value::Null, Value::from)
    })
}

fn sqlite_rows(
    conn: &rusqlite::Connection,
    sql: &str,
    binds: &[Bind],
    width: usize,
) -> rusqlite::Result<Vec<Vec<Value>>> {
    let mut statement = conn.prepare_cached(sql)?;
    for (i, bind) in binds.iter().enumerate() {
        // `$N` is a named parameter to SQLite; find its index by name.
        let Some(index) = statement.parameter_index(&format!("${}", i + 1))? else { continue };
        match bind {
            Bind::Text(text) => statement.raw_bind_parameter(index, text)?,
            Bind::Int(int) => statement.raw_bind_parameter(index, int)?,
        }
    }
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut cells = Vec::with_capacity(width);
        for i in 0..width {
            cells.push(match row.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(n) => Value::from(n),
                rusqlite::types::ValueRef::Real(f) => float(f),
                rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                    Value::String(String::from_utf8_lossy(t).into_owned())
                }
            });
        }
        out.push(cells);
    }
    Ok(out)
}
