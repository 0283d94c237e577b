//! The append-only history: one row per state change (who, what, when), written in the same
//! transaction as the change it records.

use crate::sql;

use crate::{Result, Store, Tx};

/// An event to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent<'a> {
    pub execution_id: Option<&'a str>,
    pub job_id: Option<&'a str>,
    pub actor: &'a str,
    pub kind: &'a str,
    pub subject: &'a str,
    pub detail: &'a str,
    pub at: i64,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub seq: i64,
    pub execution_id: Option<String>,
    pub job_id: Option<String>,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    pub detail: String,
    pub at: i64,
}

/// Appends an event inside `tx`.
pub async fn append(tx: &mut Tx<'_>, event: &NewEvent<'_>) -> Result<()> {
    sql::query(
        "INSERT INTO events (execution_id, job_id, actor, kind, subject, detail, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(event.execution_id)
    .bind(event.job_id)
    .bind(event.actor)
    .bind(event.kind)
    .bind(event.subject)
    .bind(event.detail)
    .bind(event.at)
    .defer(tx)
    .await
}

impl Store {
    /// Events about `subject`, oldest first.
    pub async fn events_for_subject(&self, subject: &str) -> Result<Vec<EventRow>> {
        let rows = sql::query(
            "SELECT seq, execution_id, job_id, actor, kind, subject, detail, at
             FROM events WHERE subject = $1 ORDER BY seq",
        )
        .bind(subject)
        .fetch_all(self.reads())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(EventRow {
                    seq: row.try_get(0)?,
                    execution_id: row.try_get(1)?,
                    job_id: row.try_get(2)?,
                    actor: row.try_get(3)?,
                    kind: row.try_get(4)?,
                    subject: row.try_get(5)?,
                    detail: row.try_get(6)?,
                    at: row.try_get(7)?,
                })
            })
            .collect()
    }
}
