//! Pipeline declarations. The current row in `pipelines` names the latest version; every
//! version's declaration stays in `pipeline_versions` so GetPipeline can read a past one.
//! The declaration text is the facade's; secret values live encrypted in `secrets`.

use crate::sql::{self, On, Row};

use crate::{events, tags, Result, Store, Tx};

/// Summary fields of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineMeta {
    pub name: String,
    pub version: i64,
    pub pipeline_type: String,
    pub execution_mode: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One version of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineVersion {
    pub meta: PipelineMeta,
    pub version: i64,
    pub declaration: String,
    pub secrets: Option<Vec<u8>>,
}

/// What a create or update writes.
#[derive(Debug, Clone)]
pub struct PipelineWrite<'a> {
    pub name: &'a str,
    pub pipeline_type: &'a str,
    pub execution_mode: &'a str,
    pub declaration: &'a str,
    pub secrets: Option<&'a [u8]>,
}

/// Outcome of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    Updated { version: i64 },
    NotFound,
}

/// One version of a pipeline with the pipeline's current summary.
pub(crate) const PIPELINE_VERSION_SQL: &str =
    "SELECT p.name, p.version, p.pipeline_type, p.execution_mode, p.created_at, p.updated_at,
            v.version, v.declaration, v.secrets
     FROM pipelines p JOIN pipeline_versions v ON v.name = p.name
     WHERE p.name = $1 AND v.version = COALESCE($2, p.version)";

const META_COLUMNS: &str = "name, version, pipeline_type, execution_mode, created_at, updated_at";

impl Store {
    /// Creates version 1 of a pipeline with its tags; `Error::Conflict` if the name is taken.
    pub async fn create_pipeline(
        &self,
        write: &PipelineWrite<'_>,
        arn: &str,
        tag_list: &[(String, String)],
        event: &events::NewEvent<'_>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sql::query(
            "INSERT INTO pipelines (name, version, pipeline_type, execution_mode, created_at, updated_at,
                                    incarnation)
             VALUES ($1, 1, $2, $3, $4, $4, $5)",
        )
        .bind(write.name)
        .bind(write.pipeline_type)
        .bind(write.execution_mode)
        .bind(event.at)
        .bind(uuid::Uuid::new_v4().simple().to_string())
        .execute(&mut tx)
        .await?;
        insert_version(&mut tx, write, 1, event.at).await?;
        tags::put(&mut tx, arn, tag_list).await?;
        events::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores the next version of an existing pipeline.
    pub async fn update_pipeline(
        &self,
        write: &PipelineWrite<'_>,
        event: &events::NewEvent<'_>,
    ) -> Result<UpdateOutcome> {
        let mut tx = self.begin().await?;
        let row = sql::query(
            "UPDATE pipelines SET version = version + 1, pipeline_type = $2, execution_mode = $3,
                 updated_at = $4
             WHERE name = $1 RETURNING version",
        )
        .bind(write.name)
        .bind(write.pipeline_type)
        .bind(write.execution_mode)
        .bind(event.at)
        .fetch_optional(&mut tx)
        .await?;
        let Some(row) = row else {
            return Ok(UpdateOutcome::NotFound);
        };
        let version: i64 = row.try_get(0)?;
        insert_version(&mut tx, write, version, event.at).await?;
        events::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(UpdateOutcome::Updated { version })
    }

    /// The named version (latest when `None`) of a pipeline.
    pub async fn pipeline(&self, name: &str, version: Option<i64>) -> Result<Option<PipelineVersion>> {
        if let Some(reader) = self.sqlite_reader() {
            return reader.pipeline(name, version);
        }
        pipeline_on(self.reads(), name, version).await
    }

    /// Summary of a pipeline, if it exists.
    pub async fn pipeline_meta(&self, name: &str) -> Result<Option<PipelineMeta>> {
        let sql = format!("SELECT {META_COLUMNS} FROM pipelines WHERE name = $1");
        let row = sql::query(&sql).bind(name).fetch_optional(self.reads()).await?;
        row.as_ref().map(decode_meta).transpose()
    }

    /// Pipelines by name after `after`, at most `limit`.
    pub async fn list_pipelines(&self, after: Option<&str>, limit: i64) -> Result<Vec<PipelineMeta>> {
        let sql = format!(
            "SELECT {META_COLUMNS} FROM pipelines WHERE name > COALESCE($1, '') ORDER BY name LIMIT $2"
        );
        let rows = sql::query(&sql).bind(after).bind(limit).fetch_all(self.reads()).await?;
        rows.iter().map(decode_meta).collect()
    }

    /// Deletes a pipeline: its versions, tags, stage transitions and executions (see
    /// [`crate::executions::delete_pipeline_executions`]); false if there was none.
    pub async fn delete_pipeline(&self, name: &str, arn: &str, event: &events::NewEvent<'_>) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sql::query("DELETE FROM pipelines WHERE name = $1").bind(name).execute(&mut tx).await?;
        if done == 0 {
            return Ok(false);
        }
        sql::query("DELETE FROM pipeline_versions WHERE name = $1").bind(name).execute(&mut tx).await?;
        crate::executions::delete_pipeline_executions(&mut tx, name, event.at).await?;
        tags::clear(&mut tx, arn).await?;
        events::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }
}

async fn insert_version(
    tx: &mut crate::Tx<'_>,
    write: &PipelineWrite<'_>,
    version: i64,
    at: i64,
) -> Result<()> {
    sql::query(
        "INSERT INTO pipeline_versions (name, version, declaration, secrets, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(write.name)
    .bind(version)
    .bind(write.declaration)
    .bind(write.secrets)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn decode_meta(row: &Row) -> Result<PipelineMeta> {
    Ok(PipelineMeta {
        name: row.try_get(0)?,
        version: row.try_get(1)?,
        pipeline_type: row.try_get(2)?,
        execution_mode: row.try_get(3)?,
        created_at: row.try_get(4)?,
        updated_at: row.try_get(5)?,
    })
}

fn decode_version(row: &Row) -> Result<PipelineVersion> {
    Ok(PipelineVersion {
        meta: decode_meta(row)?,
        version: row.try_get(6)?,
        declaration: row.try_get(7)?,
        secrets: row.try_get(8)?,
    })
}

/// The named version (latest when `None`) of a pipeline, read on `connection` (a
/// transition passes its transaction: it must not wait for a second pooled connection).
pub async fn pipeline_in(
    tx: &mut Tx<'_>,
    name: &str,
    version: Option<i64>,
) -> Result<Option<PipelineVersion>> {
    pipeline_on(tx, name, version).await
}

async fn pipeline_on<'a, 'c: 'a>(
    on: impl Into<On<'a, 'c>>,
    name: &str,
    version: Option<i64>,
) -> Result<Option<PipelineVersion>> {
    let row = sql::query(PIPELINE_VERSION_SQL).bind(name).bind(version).fetch_optional(on).await?;
    row.as_ref().map(decode_version).transpose()
}
