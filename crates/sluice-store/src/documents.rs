//! SSM Automation documents. A row in `documents` names the latest and default versions; every
//! version's content stays in `document_versions` keyed (name, version). The content text and
//! its format are the facade's; the store only keeps and pages them.

use crate::sql::{self, On, Row};

use crate::{events, tags, Result, Store, Tx};

/// A document with its default version's format and version name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRow {
    pub name: String,
    pub document_type: String,
    pub owner: String,
    pub latest_version: i64,
    pub default_version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub default_format: String,
    pub default_version_name: Option<String>,
}

/// One stored version of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentVersionRow {
    pub version: i64,
    pub version_name: Option<String>,
    pub content: String,
    pub format: String,
    pub hash: String,
    pub created_at: i64,
}

/// A document to create.
#[derive(Debug, Clone, Copy)]
pub struct NewDocument<'a> {
    pub name: &'a str,
    pub document_type: &'a str,
    pub owner: &'a str,
    /// The ARN its tags are kept under.
    pub arn: &'a str,
}

/// The content of a version to write.
#[derive(Debug, Clone, Copy)]
pub struct NewDocumentVersion<'a> {
    pub version_name: Option<&'a str>,
    pub content: &'a str,
    pub format: &'a str,
    pub hash: &'a str,
}

/// Which documents a listing shows: every clause must hold; a clause holds when any of its
/// values matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentQuery {
    pub name_prefixes: Vec<Vec<String>>,
    pub types: Vec<Vec<String>>,
    /// Tag filters: the document carries the key with any of the values (any value when empty).
    pub tags: Vec<(String, Vec<String>)>,
    /// A document's tags are kept under this prefix followed by its name.
    pub tag_arn_prefix: String,
}

/// Outcome of adding a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddVersionOutcome {
    Added {
        version: i64,
    },
    /// The document is gone, or its latest version is no longer the one the caller saw.
    Stale,
}

/// Outcome of deleting one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteVersionOutcome {
    Deleted,
    NoSuchVersion,
    IsDefault,
}

const DOCUMENT_SQL: &str = "SELECT d.name, d.document_type, d.owner, d.latest_version, d.default_version,
            d.created_at, d.updated_at, v.format, v.version_name
     FROM documents d JOIN document_versions v ON v.name = d.name AND v.version = d.default_version";

const VERSION_COLUMNS: &str = "version, version_name, content, format, hash, created_at";

impl Store {
    /// Creates version 1 of a document with its tags; `Error::Conflict` if the name is taken.
    pub async fn create_document(
        &self,
        document: &NewDocument<'_>,
        first: &NewDocumentVersion<'_>,
        tag_list: &[(String, String)],
        event: &events::NewEvent<'_>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sql::query(
            "INSERT INTO documents (name, document_type, owner, latest_version, default_version,
                 last_assigned, created_at, updated_at)
             VALUES ($1, $2, $3, 1, 1, 1, $4, $4)",
        )
        .bind(document.name)
        .bind(document.document_type)
        .bind(document.owner)
        .bind(event.at)
        .execute(&mut tx)
        .await?;
        insert_version(&mut tx, document.name, 1, first, event.at).await?;
        tags::put(&mut tx, document.arn, tag_list).await?;
        events::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds the next version of a document whose latest version is still `expected_latest`.
    pub async fn add_document_version(
        &self,
        name: &str,
        expected_latest: i64,
        next: &NewDocumentVersion<'_>,
        event: &events::NewEvent<'_>,
    ) -> Result<AddVersionOutcome> {
        let mut tx = self.begin().await?;
        let row = sql::query(
            "UPDATE documents SET last_assigned = last_assigned + 1, latest_version = last_assigned + 1,
                 updated_at = $3
             WHERE name = $1 AND latest_version = $2 RETURNING latest_version",
        )
        .bind(name)
        .bind(expected_latest)
        .bind(event.at)
        .fetch_optional(&mut tx)
        .await?;
        let Some(row) = row else {
            return Ok(AddVersionOutcome::Stale);
        };
        let version: i64 = row.try_get(0)?;
        insert_version(&mut tx, name, version, next, event.at).await?;
        events::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(AddVersionOutcome::Added { version })
    }

    /// A document, if it exists.
    pub async fn document(&self, name: &str) -> Result<Option<DocumentRow>> {
        document_on(self.reads(), name).await
    }

    /// One version of a document by number.
    pub async fn document_version(&self, name: &str, version: i64) -> Result<Option<DocumentVersionRow>> {
        document_version_on(self.reads(), name, version).await
    }

    /// One version of a document by its version name.
    pub async fn document_version_named(
        &self,
        name: &str,
        version_name: &str,
    ) -> Result<Option<DocumentVersionRow>> {
        let sql =
            format!("SELECT {VERSION_COLUMNS} FROM document_versions WHERE name = $1 AND version_name = $2");
        let row = sql::query(&sql).bind(name).bind(version_name).fetch_optional(self.reads()).await?;
        row.as_ref().map(decode_version).transpose()
    }

    /// Makes `version` the default; false if the document or the version does not exist.
    pub async fn set_default_document_version(
        &self,
        name: &str,
        version: i64,
        event: &events::NewEvent<'_>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sql::query(
            "UPDATE documents SET default_version = $2, updated_at = $3
             WHERE name = $1 AND EXISTS
                 (SELECT 1 FROM document_versions WHERE name = $1 AND version = $2)",
        )
        .bind(name)
        .bind(version)
        .bind(event.at)
        .execute(&mut tx)
        .await?;
        if done == 0 {
            return Ok(false);
        }
        events::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes a document with every version and its tags; false if it did not exist.
    pub async fn delete_document(&self, name: &str, arn: &str, event: &events::NewEvent<'_>) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sql::query("DELETE FROM documents WHERE name = $1").bind(name).execute(&mut tx).await?;
        if done == 0 {
            return Ok(false);
        }
        sql::query("DELETE FROM document_versions WHERE name = $1").bind(name).execute(&mut tx).await?;
        tags::clear(&mut tx, arn).await?;
        events::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes one version that is not the default; the latest version becomes the highest left.
    pub async fn delete_document_version(
        &self,
        name: &str,
        version: i64,
        event: &events::NewEvent<'_>,
    ) -> Result<DeleteVersionOutcome> {
        let mut tx = self.begin().await?;
        let row = sql::query("SELECT default_version FROM documents WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut tx)
            .await?;
        let Some(row) = row else {
            return Ok(DeleteVersionOutcome::NoSuchVersion);
        };
        let default_version: i64 = row.try_get(0)?;
        if default_version == version {
            return Ok(DeleteVersionOutcome::IsDefault);
        }
        let done = sql::query("DELETE FROM document_versions WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .execute(&mut tx)
            .await?;
        if done == 0 {
            return Ok(DeleteVersionOutcome::NoSuchVersion);
        }
        sql::query(
            "UPDATE documents SET updated_at = $2,
                 latest_version = (SELECT MAX(version) FROM document_versions WHERE name = $1)
             WHERE name = $1",
        )
        .bind(name)
        .bind(event.at)
        .execute(&mut tx)
        .await?;
        events::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(DeleteVersionOutcome::Deleted)
    }

    /// Documents matching `query` by name after `after`, at most `limit`.
    pub async fn list_documents(
        &self,
        query: &DocumentQuery,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DocumentRow>> {
        let mut sql = format!("{DOCUMENT_SQL} WHERE d.name > $1");
        let clauses = (query.name_prefixes.iter().map(|any_of| ("d.name", true, any_of)))
            .chain(query.types.iter().map(|any_of| ("d.document_type", false, any_of)));
        let mut values: Vec<&str> = Vec::new();
        for (column, prefix, any_of) in clauses {
            let mut tests = Vec::new();
            for value in any_of {
                values.push(value);
                let n = values.len() + 1;
                tests.push(if prefix {
                    format!("substr({column}, 1, length(${n})) = ${n}")
                } else {
                    format!("{column} = ${n}")
                });
            }
            if tests.is_empty() {
                sql.push_str(" AND 1 = 0");
            } else {
                sql.push_str(&format!(" AND ({})", tests.join(" OR ")));
            }
        }
        if !query.tags.is_empty() {
            values.push(&query.tag_arn_prefix);
        }
        let arn = values.len() + 1;
        for (key, any_of) in &query.tags {
            values.push(key);
            let mut test = format!(
                " AND EXISTS (SELECT 1 FROM tags t WHERE t.resource_arn = ${arn} || d.name AND t.tag_key = ${}",
                values.len() + 1
            );
            let mut tests = Vec::new();
            for value in any_of {
                values.push(value);
                tests.push(format!("t.tag_value = ${}", values.len() + 1));
            }
            if !tests.is_empty() {
                test.push_str(&format!(" AND ({})", tests.join(" OR ")));
            }
            sql.push_str(&test);
            sql.push(')');
        }
        sql.push_str(&format!(" ORDER BY d.name LIMIT ${}", values.len() + 2));
        let mut statement = sql::query(&sql).bind(after.unwrap_or(""));
        for value in values {
            statement = statement.bind(value);
        }
        let rows = statement.bind(limit).fetch_all(self.reads()).await?;
        rows.iter().map(decode_document).collect()
    }
}

async fn insert_version(
    tx: &mut Tx<'_>,
    name: &str,
    version: i64,
    write: &NewDocumentVersion<'_>,
    at: i64,
) -> Result<()> {
    sql::query(
        "INSERT INTO document_versions (name, version, version_name, content, format, hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(name)
    .bind(version)
    .bind(write.version_name)
    .bind(write.content)
    .bind(write.format)
    .bind(write.hash)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn decode_document(row: &Row) -> Result<DocumentRow> {
    Ok(DocumentRow {
        name: row.try_get(0)?,
        document_type: row.try_get(1)?,
        owner: row.try_get(2)?,
        latest_version: row.try_get(3)?,
        default_version: row.try_get(4)?,
        created_at: row.try_get(5)?,
        updated_at: row.try_get(6)?,
        default_format: row.try_get(7)?,
        default_version_name: row.try_get(8)?,
    })
}

fn decode_version(row: &Row) -> Result<DocumentVersionRow> {
    Ok(DocumentVersionRow {
        version: row.try_get(0)?,
        version_name: row.try_get(1)?,
        content: row.try_get(2)?,
        format: row.try_get(3)?,
        hash: row.try_get(4)?,
        created_at: row.try_get(5)?,
    })
}

/// A document, read on `conn` (inside a transition).
pub async fn document_in(tx: &mut Tx<'_>, name: &str) -> Result<Option<DocumentRow>> {
    document_on(tx, name).await
}

async fn document_on<'a, 'c: 'a>(on: impl Into<On<'a, 'c>>, name: &str) -> Result<Option<DocumentRow>> {
    let sql = format!("{DOCUMENT_SQL} WHERE d.name = $1");
    let row = sql::query(&sql).bind(name).fetch_optional(on).await?;
    row.as_ref().map(decode_document).transpose()
}

/// One version of a document by number, read on `conn`.
pub async fn document_version_in(
    tx: &mut Tx<'_>,
    name: &str,
    version: i64,
) -> Result<Option<DocumentVersionRow>> {
    document_version_on(tx, name, version).await
}

async fn document_version_on<'a, 'c: 'a>(
    on: impl Into<On<'a, 'c>>,
    name: &str,
    version: i64,
) -> Result<Option<DocumentVersionRow>> {
    let sql = format!("SELECT {VERSION_COLUMNS} FROM document_versions WHERE name = $1 AND version = $2");
    let row = sql::query(&sql).bind(name).bind(version).fetch_optional(on).await?;
    row.as_ref().map(decode_version).transpose()
}
