//! Artifact object records: which objects exist, where their bytes are, and their metadata.
//! Keys are compared bytewise (`COLLATE "C"` order on PostgreSQL matches SQLite's default), so
//! listings come back in S3's order.

use crate::sql::{self, On, Row};

use crate::{Backend, Result, Store, Tx};

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRow {
    pub bucket: String,
    pub key: String,
    /// File name inside the artifact directory.
    pub file: String,
    pub size: i64,
    pub etag: String,
    pub content_type: String,
    pub last_modified: i64,
}

const COLUMNS: &str = "bucket, object_key, file, size, etag, content_type, last_modified";

fn decode(row: &Row) -> Result<ObjectRow> {
    Ok(ObjectRow {
        bucket: row.try_get(0)?,
        key: row.try_get(1)?,
        file: row.try_get(2)?,
        size: row.try_get(3)?,
        etag: row.try_get(4)?,
        content_type: row.try_get(5)?,
        last_modified: row.try_get(6)?,
    })
}

/// Records an object inside `tx`, replacing any previous one; returns the previous file.
pub async fn put_in(tx: &mut Tx<'_>, object: &ObjectRow) -> Result<Option<String>> {
    let previous = sql::query("SELECT file FROM objects WHERE bucket = $1 AND object_key = $2")
        .bind(&object.bucket)
        .bind(&object.key)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| row.try_get::<String>(0))
        .transpose()?;
    sql::query(
        "INSERT INTO objects (bucket, object_key, file, size, etag, content_type, last_modified)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (bucket, object_key) DO UPDATE SET file = excluded.file, size = excluded.size,
             etag = excluded.etag, content_type = excluded.content_type,
             last_modified = excluded.last_modified",
    )
    .bind(&object.bucket)
    .bind(&object.key)
    .bind(&object.file)
    .bind(object.size)
    .bind(&object.etag)
    .bind(&object.content_type)
    .bind(object.last_modified)
    .execute(&mut *tx)
    .await?;
    Ok(previous)
}

impl Store {
    fn key_order(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "object_key",
            Backend::Postgres => "object_key COLLATE \"C\"",
        }
    }

    /// Records an object, replacing any previous one with the same key; returns the file the
    /// previous version used, which the caller deletes.
    pub async fn put_object(&self, object: &ObjectRow) -> Result<Option<String>> {
        let mut tx = self.begin().await?;
        let previous = put_in(&mut tx, object).await?;
        tx.commit().await?;
        Ok(previous)
    }

    pub async fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRow>> {
        object_on(self.reads(), bucket, key).await
    }

    /// Removes an object's record; returns it if there was one.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRow>> {
        let sql = format!("DELETE FROM objects WHERE bucket = $1 AND object_key = $2 RETURNING {COLUMNS}");
        let rows = self.write_returning(sql::query(&sql).bind(bucket).bind(key)).await?;
        rows.first().map(decode).transpose()
    }

    /// Objects of a bucket whose key starts with `prefix` and sorts after `after`, in key order.
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<ObjectRow>> {
        let order = self.key_order();
        let sql = format!(
            "SELECT {COLUMNS} FROM objects
             WHERE bucket = $1 AND {order} > $2 AND substr(object_key, 1, CAST($3 AS INTEGER)) = $4
             ORDER BY {order} LIMIT $5"
        );
        let rows = sql::query(&sql)
            .bind(bucket)
            .bind(after)
            .bind(prefix.chars().count() as i64)
            .bind(prefix)
            .bind(limit)
            .fetch_all(self.reads())
            .await?;
        rows.iter().map(decode).collect()
    }
}

/// An object's record, read on `connection` (a transition passes its transaction).
pub async fn object_in(tx: &mut Tx<'_>, bucket: &str, key: &str) -> Result<Option<ObjectRow>> {
    object_on(tx, bucket, key).await
}

async fn object_on<'a, 'c: 'a>(
    on: impl Into<On<'a, 'c>>,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectRow>> {
    let sql = format!("SELECT {COLUMNS} FROM objects WHERE bucket = $1 AND object_key = $2");
    let row = sql::query(&sql).bind(bucket).bind(key).fetch_optional(on).await?;
    row.as_ref().map(decode).transpose()
}
