//! The Cloudforet query language compiled to SQL over a described table ([`QueryTable`]):
//! filters become a bound WHERE clause, `query_rows` pages rows with Cloudforet's
//! `total_count`, and `stat` ([`stat`]) groups in SQL. Every value is a `$N` placeholder; keys
//! are looked up in the table's field list. docs/QUERY.md has the rules and the decisions.

mod exec;
mod stat;

use serde_json::{Map, Value};
use sluice_core::clock::Millis;
use sluice_core::query::{
    format_datetime, parse_datetime, Condition, Operand, Operator, Query, QueryError, SortKey,
};

use crate::{Backend, Result, Store};

pub use exec::Bind;

/// How a column is stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Int,
    /// Epoch milliseconds (BIGINT), shown as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    Timestamp,
    /// JSON text, shown as the JSON value.
    Json,
}

/// One queryable field: Cloudforet's key and the column that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryField {
    pub key: &'static str,
    pub column: &'static str,
    pub kind: FieldKind,
    /// Whether the column can be NULL; only then does ORDER BY spell out where nulls go,
    /// which keeps a NOT NULL column's index usable for descending sorts on PostgreSQL.
    pub nullable: bool,
}

impl QueryField {
    /// A NOT NULL field.
    pub const fn new(key: &'static str, column: &'static str, kind: FieldKind) -> QueryField {
        QueryField { key, column, kind, nullable: false }
    }

    /// The same field, nullable.
    pub const fn nullable(self) -> QueryField {
        QueryField { nullable: true, ..self }
    }
}

/// A table the query language can read.
#[derive(Debug)]
pub struct QueryTable {
    pub table: &'static str,
    pub fields: &'static [QueryField],
    /// The order without a `sort` (Cloudforet's `ordering`), as (key, desc).
    pub default_sort: &'static [(&'static str, bool)],
    /// The insertion order that `first`, `last` and `push` follow without a preceding sort.
    pub natural_order: &'static [(&'static str, bool)],
    /// Keys a `keyword` is searched in (`contain_in` over its words, ORed).
    pub keyword_fields: &'static [&'static str],
    /// Keys a `minimal` query returns.
    pub minimal_fields: &'static [&'static str],
    /// The unique key that breaks sort ties.
    pub id_field: &'static str,
}

const fn text(key: &'static str) -> QueryField {
    QueryField::new(key, key, FieldKind::Text)
}

const fn time(key: &'static str) -> QueryField {
    QueryField::new(key, key, FieldKind::Timestamp)
}

/// Cloudforet identity v2 collector jobs (`cf_jobs`). Keyword and minimal fields follow
/// Cloudforet's Job model and JobService.list.
pub static CF_JOBS: QueryTable = QueryTable {
    table: "cf_jobs",
    fields: &[
        text("job_id"),
        text("status"),
        QueryField::new("options", "options", FieldKind::Json),
        text("resource_group"),
        text("error_code").nullable(),
        text("error_message").nullable(),
        text("domain_id"),
        text("workspace_id"),
        text("trusted_account_id"),
        text("plugin_id"),
        time("created_at"),
        time("updated_at"),
        time("finished_at").nullable(),
    ],
    default_sort: &[("created_at", true)],
    natural_order: &[("created_at", false)],
    keyword_fields: &["job_id", "status"],
    minimal_fields: &[
        "job_id",
        "trusted_account_id",
        "status",
        "resource_group",
        "created_at",
        "finished_at",
    ],
    id_field: "job_id",
};

/// One page of rows and the number of rows matching before paging.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage {
    pub rows: Vec<Map<String, Value>>,
    pub total_count: i64,
}

impl QueryTable {
    /// The field for `key`; an unknown key is `ERROR_DB_QUERY`, as mongoengine's
    /// "Cannot resolve field" is in Cloudforet.
    pub fn field(&self, key: &str) -> Result<&QueryField, QueryError> {
        self.fields
            .iter()
            .find(|f| f.key == key)
            .ok_or_else(|| QueryError::db(format!("Cannot resolve field \"{key}\"")))
    }
}

/// Builds SQL text for one backend while collecting the bound values.
pub(crate) struct Compiler<'a> {
    pub table: &'a QueryTable,
    pub backend: Backend,
    pub now: Millis,
    pub binds: Vec<Bind>,
}

impl<'a> Compiler<'a> {
    pub fn new(table: &'a QueryTable, backend: Backend, now: Millis) -> Compiler<'a> {
        Compiler { table, backend, now, binds: Vec::new() }
    }

    /// Adds a bound value and returns its placeholder.
    pub fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    /// A column as it sorts and compares: bytewise on both backends.
    pub fn ordered(&self, field: &QueryField) -> String {
        match (self.backend, field.kind) {
            (Backend::Postgres, FieldKind::Text | FieldKind::Json) => {
                format!("{} COLLATE \"C\"", field.column)
            }
            _ => field.column.to_string(),
        }
    }

    fn regex_match(&mut self, column: &str, pattern: String) -> String {
        let p = self.bind(Bind::Text(format!("(?i){pattern}")));
        match self.backend {
            Backend::Sqlite => format!("{column} REGEXP {p}"),
            Backend::Postgres => format!("{column} ~ {p}"),
        }
    }

    /// Case-insensitive substring for an ASCII needle: SQLite's LIKE ignores ASCII case, and
    /// PostgreSQL's ILIKE does the same for ASCII; wildcards in the needle are escaped. Much
    /// cheaper than a regex per row, and the same answer as Cloudforet's for an ASCII needle.
    fn like(&mut self, column: &str, needle: &str) -> String {
        let escaped = needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let p = self.bind(Bind::Text(format!("%{escaped}%")));
        match self.backend {
            Backend::Sqlite => format!("{column} LIKE {p} ESCAPE '\\'"),
            Backend::Postgres => format!("{column} ILIKE {p} ESCAPE '\\'"),
        }
    }

    /// The WHERE clause of scope AND filter AND (filter_or OR keyword words).
    pub fn where_clause(
        &mut self,
        scope: &[Condition],
        filter: &[Condition],
        filter_or: &[Condition],
        keyword: Option<&str>,
    ) -> Result<String, QueryError> {
        let mut all = Vec::new();
        for condition in scope.iter().chain(filter) {
            all.push(self.condition(condition)?);
        }
        let mut any = Vec::new();
        for condition in filter_or.iter().chain(&keyword_conditions(self.table, keyword)) {
            any.push(self.condition(condition)?);
        }
        if !any.is_empty() {
            all.push(format!("({})", any.join(" OR ")));
        }
        Ok(if all.is_empty() { "1 = 1".into() } else { all.join(" AND ") })
    }

    /// One condition as SQL.
    pub fn condition(&mut self, condition: &Condition) -> Result<String, QueryError> {
        let field = *self.table.field(&condition.key)?;
        let column = field.column;
        match (&condition.value, condition.operator) {
            (Operand::Flag(true), _) => Ok(format!("{column} IS NOT NULL")),
            (Operand::Flag(false), _) => Ok(format!("{column} IS NULL")),
            // `match` is `$elemMatch`: no field here is an array, and Mongo matches no document then.
            (Operand::Object(_), _) => Ok("1 = 0".into()),
            (Operand::Instant(at), op) => self.time_compare(&field, op, *at, condition),
            (Operand::TimeDiff(diff), op) => self.time_compare(&field, op, diff.resolve(self.now), condition),
            (Operand::Patterns(patterns), _) => {
                let text = self.text_field(&field, condition)?;
                let any: Vec<String> = patterns.iter().map(|p| self.regex_match(text, p.clone())).collect();
                Ok(format!("({})", any.join(" OR ")))
            }
            (Operand::Many(values), op) => self.many(&field, op, values, condition),
            (Operand::One(value), op) => self.one(&field, op, value, condition),
        }
    }

    fn text_field(&self, field: &QueryField, condition: &Condition) -> Result<&'static str, QueryError> {
        match field.kind {
            FieldKind::Text => Ok(field.column),
            _ => Err(unsupported_on(condition)),
        }
    }

    fn time_compare(
        &mut self,
        field: &QueryField,
        operator: Operator,
        at: Millis,
        condition: &Condition,
    ) -> Result<String, QueryError> {
        let comparison = operator.comparison().filter(|_| field.kind == FieldKind::Timestamp);
        let comparison = comparison.ok_or_else(|| unsupported_on(condition))?;
        let p = self.bind(Bind::Int(at));
        Ok(format!("{} {} {p}", field.column, comparison.sql()))
    }

    fn one(
        &mut self,
        field: &QueryField,
        operator: Operator,
        value: &Value,
        condition: &Condition,
    ) -> Result<String, QueryError> {
        let column = field.column;
        if value.is_null() {
            return Ok(match operator {
                Operator::Eq => format!("{column} IS NULL"),
                Operator::Not => format!("{column} IS NOT NULL"),
                _ => "1 = 0".into(),
            });
        }
        if matches!(operator, Operator::Contain | Operator::NotContain) {
            let column = self.text_field(field, condition)?;
            let text = value.as_str().ok_or_else(|| wrong_value(condition, "a string"))?;
            let found = match text.is_ascii() {
                true => self.like(column, text),
                false => self.regex_match(column, regex::escape(text)),
            };
            return Ok(match operator {
                Operator::Contain => found,
                _ => format!("({column} IS NULL OR NOT ({found}))"),
            });
        }
        let bound = typed(field, value, condition)?;
        let p = self.bind(bound);
        Ok(match (operator, operator.comparison()) {
            (Operator::Eq, _) => format!("{column} = {p}"),
            (Operator::Not, _) => format!("({column} IS NULL OR {column} <> {p})"),
            (_, Some(comparison)) => format!("{} {} {p}", self.ordered(field), comparison.sql()),
            _ => return Err(unsupported_on(condition)),
        })
    }

    fn many(
        &mut self,
        field: &QueryField,
        operator: Operator,
        values: &[Value],
        condition: &Condition,
    ) -> Result<String, QueryError> {
        let column = field.column;
        match operator {
            Operator::ContainIn | Operator::NotContainIn => {
                if values.is_empty() {
                    return Err(QueryError::db(format!(
                        "The value of {} operator is empty.",
                        operator.name()
                    )));
                }
                let single =
                    if operator == Operator::ContainIn { Operator::Contain } else { Operator::NotContain };
                // Cloudforet ORs the per-value conditions for both operators.
                let any = values
                    .iter()
                    .map(|v| self.one(field, single, v, condition))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(format!("({})", any.join(" OR ")))
            }
            _ => {
                let has_null = values.iter().any(Value::is_null);
                let mut places = Vec::new();
                for value in values.iter().filter(|v| !v.is_null()) {
                    let bound = typed(field, value, condition)?;
                    places.push(self.bind(bound));
                }
                let listed = if places.is_empty() {
                    "1 = 0".into()
                } else {
                    format!("{column} IN ({})", places.join(", "))
                };
                Ok(match (operator, has_null) {
                    (Operator::In, true) => format!("({listed} OR {column} IS NULL)"),
                    (Operator::In, false) => listed,
                    (_, true) => format!("({column} IS NOT NULL AND NOT ({listed}))"),
                    (_, false) => format!("({column} IS NULL OR NOT ({listed}))"),
                })
            }
        }
    }

    /// ORDER BY for sort keys, Cloudforet's way: nulls sort lowest, ties are broken by the id
    /// (descending when `ties_desc`, which lets the table's default order follow an index).
    pub fn order_by(&self, sort: &[(String, bool)], ties_desc: bool) -> Result<String, QueryError> {
        let mut parts = Vec::new();
        for (key, desc) in sort {
            let field = self.table.field(key)?;
            let direction = match (*desc, field.nullable) {
                (true, true) => "DESC NULLS LAST",
                (false, true) => "ASC NULLS FIRST",
                (true, false) => "DESC",
                (false, false) => "ASC",
            };
            parts.push(format!("{} {direction}", self.ordered(field)));
        }
        if !sort.iter().any(|(k, _)| k == self.table.id_field) {
            let id = self.table.field(self.table.id_field)?;
            parts.push(format!("{} {}", self.ordered(id), if ties_desc { "DESC" } else { "ASC" }));
        }
        Ok(parts.join(", "))
    }
}

fn unsupported_on(condition: &Condition) -> QueryError {
    QueryError::db(format!(
        "The {} operator is not supported on key '{}'.",
        condition.operator.name(),
        condition.key
    ))
}

fn wrong_value(condition: &Condition, wanted: &str) -> QueryError {
    QueryError::db(format!("The value of key '{}' must be {wanted}.", condition.key))
}

/// A scalar filter value bound for the field's column.
fn typed(field: &QueryField, value: &Value, condition: &Condition) -> Result<Bind, QueryError> {
    match field.kind {
        FieldKind::Text => {
            value.as_str().map(|s| Bind::Text(s.into())).ok_or_else(|| wrong_value(condition, "a string"))
        }
        FieldKind::Int => value.as_i64().map(Bind::Int).ok_or_else(|| wrong_value(condition, "an integer")),
        FieldKind::Timestamp => value
            .as_str()
            .and_then(parse_datetime)
            .map(Bind::Int)
            .ok_or_else(|| wrong_value(condition, "an ISO 8601 datetime")),
        FieldKind::Json => Err(unsupported_on(condition)),
    }
}

/// Cloudforet's keyword search: each keyword field `contain_in` the words, ORed into filter_or.
fn keyword_conditions(table: &QueryTable, keyword: Option<&str>) -> Vec<Condition> {
    let words: Vec<Value> =
        keyword.unwrap_or("").split(' ').filter(|w| !w.is_empty()).map(Value::from).collect();
    if words.is_empty() {
        return Vec::new();
    }
    table
        .keyword_fields
        .iter()
        .map(|key| Condition {
            key: key.to_string(),
            operator: Operator::ContainIn,
            value: Operand::Many(words.clone()),
        })
        .collect()
}

/// A sort as (key, desc) pairs.
fn pairs(sort: &[SortKey]) -> Vec<(String, bool)> {
    sort.iter().map(|s| (s.key.clone(), s.desc)).collect()
}

fn static_pairs(sort: &[(&str, bool)]) -> Vec<(String, bool)> {
    sort.iter().map(|(k, d)| (k.to_string(), *d)).collect()
}

/// The fields a query returns: `minimal` wins over `only`, which wins over all.
fn selected<'t>(table: &'t QueryTable, query: &Query) -> Result<Vec<&'t QueryField>, QueryError> {
    if query.minimal && !table.minimal_fields.is_empty() {
        return table.minimal_fields.iter().map(|k| table.field(k)).collect();
    }
    if !query.only.is_empty() {
        let mut fields: Vec<&QueryField> = Vec::new();
        for key in &query.only {
            let field = table.field(key)?;
            if !fields.iter().any(|f| f.key == field.key) {
                fields.push(field);
            }
        }
        return Ok(fields);
    }
    Ok(table.fields.iter().collect())
}

/// A stored value as Cloudforet shows it.
pub(crate) fn shown(kind: FieldKind, raw: Value) -> Value {
    match (kind, raw) {
        (FieldKind::Timestamp, Value::Number(n)) => {
            n.as_i64().map_or(Value::Null, |ms| Value::String(format_datetime(ms)))
        }
        (FieldKind::Json, Value::String(text)) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        (_, other) => other,
    }
}

impl Store {
    /// Runs a Cloudforet `Query` over `table`, ANDed with `scope`; timediff values are resolved
    /// against `now` (the caller's clock).
    pub async fn query_rows(
        &self,
        table: &QueryTable,
        scope: &[Condition],
        query: &Query,
        now: Millis,
    ) -> Result<QueryPage> {
        let mut c = Compiler::new(table, self.backend, now);
        let filter = c.where_clause(scope, &query.filter, &query.filter_or, query.keyword.as_deref())?;
        let count_sql = format!("SELECT COUNT(*) FROM {} WHERE {filter}", table.table);
        let total = self.fetch(&count_sql, c.binds.clone(), vec![exec::Column::Int]).await?;
        let total_count = total.first().and_then(|r| r.first()).and_then(Value::as_i64).unwrap_or(0);
        if query.count_only {
            return Ok(QueryPage { rows: Vec::new(), total_count });
        }
        let fields = selected(table, query)?;
        // Without a sort Cloudforet uses the model's ordering alone; ties then follow its direction.
        let (sort, ties_desc) = match query.sort.is_empty() {
            true => (static_pairs(table.default_sort), table.default_sort.last().is_some_and(|(_, d)| *d)),
            false => (pairs(&query.sort), false),
        };
        let order = c.order_by(&sort, ties_desc)?;
        let columns: Vec<&str> = fields.iter().map(|f| f.column).collect();
        let mut sql =
            format!("SELECT {} FROM {} WHERE {filter} ORDER BY {order}", columns.join(", "), table.table);
        if let Some((skip, limit)) = query.page.and_then(|p| p.window()) {
            let l = c.bind(Bind::Int(limit as i64));
            let o = c.bind(Bind::Int(skip as i64));
            sql.push_str(&format!(" LIMIT {l} OFFSET {o}"));
        }
        let kinds = fields.iter().map(|f| exec::Column::Field(f.kind)).collect();
        let rows = self.fetch(&sql, c.binds, kinds).await?;
        let rows =
            rows.into_iter().map(|row| fields.iter().map(|f| f.key.to_string()).zip(row).collect()).collect();
        Ok(QueryPage { rows, total_count })
    }
}
