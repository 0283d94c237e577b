//! Listing SSM Automation executions: DescribeAutomationExecutions' filters compiled to bound
//! SQL, newest first by `(created_at, id)` with keyset paging, so a page costs the same however
//! many executions are stored (see docs/AUTOMATION.md).

use crate::executions::{decode_execution, ExecutionRow, EXECUTION_COLUMNS};
use crate::sql;
use crate::{Result, Store};

/// What DescribeAutomationExecutions may filter on. Within a field any value matches; fields
/// combine with AND. Empty lists do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutomationFilter {
    pub document_name_prefixes: Vec<String>,
    pub statuses: Vec<String>,
    pub execution_ids: Vec<String>,
    pub parent_ids: Vec<String>,
    pub current_actions: Vec<String>,
    /// Started strictly before / at or after, epoch milliseconds.
    pub started_before: Option<i64>,
    pub started_after: Option<i64>,
}

/// A bound value of a built query.
enum Bound {
    Text(String),
    Int(i64),
}

/// A WHERE clause under construction: every value is a `$N` placeholder.
struct Conditions {
    sql: Vec<String>,
    values: Vec<Bound>,
}

impl Conditions {
    fn placeholder(&mut self, value: Bound) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }

    fn any_of(&mut self, column: &str, values: &[String]) {
        if values.is_empty() {
            return;
        }
        let list: Vec<String> = values.iter().map(|v| self.placeholder(Bound::Text(v.clone()))).collect();
        self.sql.push(format!("{column} IN ({})", list.join(", ")));
    }

    fn prefixes(&mut self, column: &str, prefixes: &[String]) {
        if prefixes.is_empty() {
            return;
        }
        let mut alternatives = Vec::new();
        for prefix in prefixes {
            // substr, not LIKE: SQLite's LIKE ignores case, and `_` is a wildcard in both.
            let length = self.placeholder(Bound::Int(prefix.chars().count() as i64));
            let text = self.placeholder(Bound::Text(prefix.clone()));
            alternatives.push(format!("substr({column}, 1, CAST({length} AS INTEGER)) = {text}"));
        }
        self.sql.push(format!("({})", alternatives.join(" OR ")));
    }

    fn compare(&mut self, column: &str, operator: &str, value: Option<i64>) {
        if let Some(value) = value {
            let p = self.placeholder(Bound::Int(value));
            self.sql.push(format!("{column} {operator} {p}"));
        }
    }
}

impl Store {
    /// Automation executions of a tenant matching `filter`, newest first, strictly before the
    /// `(created_at, id)` cursor.
    pub async fn list_automation_executions(
        &self,
        tenant: &str,
        filter: &AutomationFilter,
        before: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<ExecutionRow>> {
        let mut c = Conditions { sql: vec!["kind = 'automation'".into()], values: Vec::new() };
        let tenant = c.placeholder(Bound::Text(tenant.to_string()));
        c.sql.push(format!("tenant = {tenant}"));
        c.prefixes("definition_name", &filter.document_name_prefixes);
        c.any_of("status", &filter.statuses);
        c.any_of("id", &filter.execution_ids);
        c.any_of("parent_id", &filter.parent_ids);
        c.any_of("current_action", &filter.current_actions);
        c.compare("created_at", "<", filter.started_before);
        c.compare("created_at", ">=", filter.started_after);
        if let Some((at, id)) = before {
            let at = c.placeholder(Bound::Int(at));
            let id = c.placeholder(Bound::Text(id.to_string()));
            c.sql.push(format!("(created_at < {at} OR (created_at = {at} AND id < {id}))"));
        }
        let limit = c.placeholder(Bound::Int(limit));
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE {} ORDER BY created_at DESC, id DESC LIMIT {limit}",
            c.sql.join(" AND ")
        );
        let mut query = sql::query(&sql);
        for value in c.values {
            query = match value {
                Bound::Text(text) => query.bind(text),
                Bound::Int(int) => query.bind(int),
            };
        }
        let rows = query.fetch_all(self.reads()).await?;
        rows.iter().map(decode_execution).collect()
    }
}
