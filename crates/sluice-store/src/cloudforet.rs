//! Cloudforet identity rows: collector jobs (`cf_jobs`), identity resources (`cf_resources`:
//! providers, trusted accounts, workspaces, project groups, projects, service accounts) and the
//! plugin registry (`cf_plugins`). Listing with the query language goes through [`crate::query`];
//! this module holds the keyed reads and the writes.

use crate::sql::{self, Row};

use crate::{Result, Store, Tx};

/// A collector job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfJobRow {
    pub job_id: String,
    pub domain_id: String,
    pub workspace_id: String,
    pub resource_group: String,
    pub trusted_account_id: String,
    pub plugin_id: String,
    pub status: String,
    /// JSON text.
    pub options: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

const JOB_COLUMNS: &str = "job_id, domain_id, workspace_id, resource_group, trusted_account_id, \
    plugin_id, status, options, error_code, error_message, created_at, updated_at, finished_at";

fn decode_job(row: &Row) -> Result<CfJobRow> {
    Ok(CfJobRow {
        job_id: row.try_get(0)?,
        domain_id: row.try_get(1)?,
        workspace_id: row.try_get(2)?,
        resource_group: row.try_get(3)?,
        trusted_account_id: row.try_get(4)?,
        plugin_id: row.try_get(5)?,
        status: row.try_get(6)?,
        options: row.try_get(7)?,
        error_code: row.try_get(8)?,
        error_message: row.try_get(9)?,
        created_at: row.try_get(10)?,
        updated_at: row.try_get(11)?,
        finished_at: row.try_get(12)?,
    })
}

pub async fn insert_job(tx: &mut Tx<'_>, job: &CfJobRow) -> Result<()> {
    sql::query(
        "INSERT INTO cf_jobs (job_id, domain_id, workspace_id, resource_group, trusted_account_id,
             plugin_id, status, options, error_code, error_message, created_at, updated_at,
             finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&job.job_id)
    .bind(&job.domain_id)
    .bind(&job.workspace_id)
    .bind(&job.resource_group)
    .bind(&job.trusted_account_id)
    .bind(&job.plugin_id)
    .bind(&job.status)
    .bind(&job.options)
    .bind(&job.error_code)
    .bind(&job.error_message)
    .bind(job.created_at)
    .bind(job.updated_at)
    .bind(job.finished_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Saves a job's status, error and times.
pub async fn update_job(tx: &mut Tx<'_>, job: &CfJobRow) -> Result<()> {
    sql::query(
        "UPDATE cf_jobs SET status = $2, error_code = $3, error_message = $4, updated_at = $5,
             finished_at = $6
         WHERE job_id = $1",
    )
    .bind(&job.job_id)
    .bind(&job.status)
    .bind(&job.error_code)
    .bind(&job.error_message)
    .bind(job.updated_at)
    .bind(job.finished_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A job by id within a domain, locked inside `tx` until it ends: a sync's start, its end and
/// the sweeper's timeout each read the status and then write it, so they must not interleave.
/// The lock is a no-op update (the same on both backends, as `executions::lock_execution`).
pub async fn job_in(tx: &mut Tx<'_>, domain_id: &str, job_id: &str) -> Result<Option<CfJobRow>> {
    sql::query("UPDATE cf_jobs SET updated_at = updated_at WHERE job_id = $1 AND domain_id = $2")
        .bind(job_id)
        .bind(domain_id)
        .execute(&mut *tx)
        .await?;
    let sql = format!("SELECT {JOB_COLUMNS} FROM cf_jobs WHERE job_id = $1 AND domain_id = $2");
    let row = sql::query(&sql).bind(job_id).bind(domain_id).fetch_optional(&mut *tx).await?;
    row.as_ref().map(decode_job).transpose()
}

/// The other in-progress jobs of a trusted account in the same workspace (Cloudforet's
/// duplicate-job rule looks at these).
pub async fn in_progress_jobs_in(
    tx: &mut Tx<'_>,
    domain_id: &str,
    workspace_id: &str,
    trusted_account_id: &str,
    except: &str,
) -> Result<Vec<CfJobRow>> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM cf_jobs
         WHERE domain_id = $1 AND workspace_id = $2 AND trusted_account_id = $3
           AND status = 'IN_PROGRESS' AND job_id <> $4"
    );
    let rows = sql::query(&sql)
        .bind(domain_id)
        .bind(workspace_id)
        .bind(trusted_account_id)
        .bind(except)
        .fetch_all(&mut *tx)
        .await?;
    rows.iter().map(decode_job).collect()
}

pub async fn delete_job(tx: &mut Tx<'_>, domain_id: &str, job_id: &str) -> Result<bool> {
    let done = sql::query("DELETE FROM cf_jobs WHERE job_id = $1 AND domain_id = $2")
        .bind(job_id)
        .bind(domain_id)
        .execute(&mut *tx)
        .await?;
    Ok(done == 1)
}

impl Store {
    pub async fn cf_job(&self, domain_id: &str, job_id: &str) -> Result<Option<CfJobRow>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM cf_jobs WHERE job_id = $1 AND domain_id = $2");
        let row = sql::query(&sql).bind(job_id).bind(domain_id).fetch_optional(self.reads()).await?;
        row.as_ref().map(decode_job).transpose()
    }
}

/// An identity resource as stored: the filterable columns and the rest as JSON `info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRow {
    pub kind: String,
    pub domain_id: String,
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub reference_id: Option<String>,
    pub parent_id: Option<String>,
    pub trusted_account_id: Option<String>,
    pub provider: Option<String>,
    /// JSON text: the resource's other fields.
    pub info: String,
    /// Sealed secret data (trusted accounts).
    pub secret_enc: Option<Vec<u8>>,
    /// `,h1,h2,` of an enabled schedule (trusted accounts), for the scheduler's lookup.
    pub schedule_hours: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const RESOURCE_COLUMNS: &str = "kind, domain_id, id, workspace_id, name, reference_id, parent_id, \
    trusted_account_id, provider, info, secret_enc, schedule_hours, created_at, updated_at";

fn decode_resource(row: &Row) -> Result<ResourceRow> {
    Ok(ResourceRow {
        kind: row.try_get(0)?,
        domain_id: row.try_get(1)?,
        id: row.try_get(2)?,
        workspace_id: row.try_get(3)?,
        name: row.try_get(4)?,
        reference_id: row.try_get(5)?,
        parent_id: row.try_get(6)?,
        trusted_account_id: row.try_get(7)?,
        provider: row.try_get(8)?,
        info: row.try_get(9)?,
        secret_enc: row.try_get(10)?,
        schedule_hours: row.try_get(11)?,
        created_at: row.try_get(12)?,
        updated_at: row.try_get(13)?,
    })
}

/// Inserts a resource; `Error::Conflict` when (kind, domain, id) exists.
pub async fn insert_resource(tx: &mut Tx<'_>, row: &ResourceRow) -> Result<()> {
    sql::query(
        "INSERT INTO cf_resources (kind, domain_id, id, workspace_id, name, reference_id,
             parent_id, trusted_account_id, provider, info, secret_enc, schedule_hours,
             created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&row.kind)
    .bind(&row.domain_id)
    .bind(&row.id)
    .bind(&row.workspace_id)
    .bind(&row.name)
    .bind(&row.reference_id)
    .bind(&row.parent_id)
    .bind(&row.trusted_account_id)
    .bind(&row.provider)
    .bind(&row.info)
    .bind(&row.secret_enc)
    .bind(&row.schedule_hours)
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Saves every mutable column of a resource.
pub async fn update_resource(tx: &mut Tx<'_>, row: &ResourceRow) -> Result<()> {
    sql::query(
        "UPDATE cf_resources SET workspace_id = $4, name = $5, reference_id = $6, parent_id = $7,
             trusted_account_id = $8, provider = $9, info = $10, secret_enc = $11,
             schedule_hours = $12, updated_at = $13
         WHERE kind = $1 AND domain_id = $2 AND id = $3",
    )
    .bind(&row.kind)
    .bind(&row.domain_id)
    .bind(&row.id)
    .bind(&row.workspace_id)
    .bind(&row.name)
    .bind(&row.reference_id)
    .bind(&row.parent_id)
    .bind(&row.trusted_account_id)
    .bind(&row.provider)
    .bind(&row.info)
    .bind(&row.secret_enc)
    .bind(&row.schedule_hours)
    .bind(row.updated_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn delete_resource(tx: &mut Tx<'_>, kind: &str, domain_id: &str, id: &str) -> Result<bool> {
    let done = sql::query("DELETE FROM cf_resources WHERE kind = $1 AND domain_id = $2 AND id = $3")
        .bind(kind)
        .bind(domain_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(done == 1)
}

pub async fn resource_in(
    tx: &mut Tx<'_>,
    kind: &str,
    domain_id: &str,
    id: &str,
) -> Result<Option<ResourceRow>> {
    let sql =
        format!("SELECT {RESOURCE_COLUMNS} FROM cf_resources WHERE kind = $1 AND domain_id = $2 AND id = $3");
    let row = sql::query(&sql).bind(kind).bind(domain_id).bind(id).fetch_optional(&mut *tx).await?;
    row.as_ref().map(decode_resource).transpose()
}

/// The first resource of a kind in a workspace matched by one column (`name` or
/// `reference_id`), oldest first: how syncs find what they made before.
pub async fn resource_by_in(
    tx: &mut Tx<'_>,
    kind: &str,
    domain_id: &str,
    workspace_id: Option<&str>,
    column: ResourceKey,
    value: &str,
) -> Result<Option<ResourceRow>> {
    let column = match column {
        ResourceKey::Name => "name",
        ResourceKey::ReferenceId => "reference_id",
    };
    let sql = format!(
        "SELECT {RESOURCE_COLUMNS} FROM cf_resources
         WHERE kind = $1 AND domain_id = $2 AND ($3 = '' OR workspace_id = $3) AND {column} = $4
         ORDER BY created_at, id LIMIT 1"
    );
    let row = sql::query(&sql)
        .bind(kind)
        .bind(domain_id)
        .bind(workspace_id.unwrap_or(""))
        .bind(value)
        .fetch_optional(&mut *tx)
        .await?;
    row.as_ref().map(decode_resource).transpose()
}

/// Which column [`resource_by_in`] matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKey {
    Name,
    ReferenceId,
}

impl Store {
    pub async fn cf_resource(&self, kind: &str, domain_id: &str, id: &str) -> Result<Option<ResourceRow>> {
        let sql = format!(
            "SELECT {RESOURCE_COLUMNS} FROM cf_resources WHERE kind = $1 AND domain_id = $2 AND id = $3"
        );
        let row = sql::query(&sql).bind(kind).bind(domain_id).bind(id).fetch_optional(self.reads()).await?;
        row.as_ref().map(decode_resource).transpose()
    }

    /// Trusted accounts whose enabled schedule lists `hour` and that were not yet synced for
    /// this hour: marks them (`last_scheduled = epoch_hour`) and returns them. The mark is one
    /// conditional update per account, so of several replicas exactly one fires each sync.
    pub async fn claim_scheduled_accounts(&self, hour: u32, epoch_hour: i64) -> Result<Vec<ResourceRow>> {
        let sql = format!(
            "SELECT {RESOURCE_COLUMNS} FROM cf_resources
             WHERE kind = 'trusted_account' AND schedule_hours LIKE $1
               AND (last_scheduled IS NULL OR last_scheduled < $2)"
        );
        let pattern = format!("%,{hour},%");
        let rows = sql::query(&sql).bind(&pattern).bind(epoch_hour).fetch_all(self.reads()).await?;
        let mut claimed = Vec::new();
        for row in rows.iter().map(decode_resource) {
            let row = row?;
            let done = self
                .write(
                    sql::query(
                        "UPDATE cf_resources SET last_scheduled = $4
                 WHERE kind = 'trusted_account' AND domain_id = $1 AND id = $2
                   AND (last_scheduled IS NULL OR last_scheduled < $3)",
                    )
                    .bind(&row.domain_id)
                    .bind(&row.id)
                    .bind(epoch_hour)
                    .bind(epoch_hour),
                )
                .await?;
            if done == 1 {
                claimed.push(row);
            }
        }
        Ok(claimed)
    }

    /// Registers (or re-points) an account-collector plugin.
    pub async fn put_cf_plugin(&self, plugin_id: &str, endpoint: &str, at: i64) -> Result<()> {
        self.write(
            sql::query(
                "INSERT INTO cf_plugins (plugin_id, endpoint, created_at, updated_at)
             VALUES ($1, $2, $3, $3)
             ON CONFLICT (plugin_id) DO UPDATE SET endpoint = $2, updated_at = $3",
            )
            .bind(plugin_id)
            .bind(endpoint)
            .bind(at),
        )
        .await?;
        Ok(())
    }

    pub async fn cf_plugin_endpoint(&self, plugin_id: &str) -> Result<Option<String>> {
        let row = sql::query("SELECT endpoint FROM cf_plugins WHERE plugin_id = $1")
            .bind(plugin_id)
            .fetch_optional(self.reads())
            .await?;
        row.map(|r| r.try_get(0)).transpose()
    }
}

use crate::query::{FieldKind, QueryField, QueryTable};

const fn column(key: &'static str, column: &'static str, kind: FieldKind) -> QueryField {
    QueryField::new(key, column, kind).nullable()
}

macro_rules! resource_table {
    ($name:ident, $id_key:literal, [$($extra:expr),* $(,)?], keyword: [$($keyword:literal),*], minimal: [$($minimal:literal),*]) => {
        pub static $name: QueryTable = QueryTable {
            table: "cf_resources",
            fields: &[
                column("resource_type", "kind", FieldKind::Text),
                column($id_key, "id", FieldKind::Text),
                column("name", "name", FieldKind::Text),
                column("domain_id", "domain_id", FieldKind::Text),
                column("workspace_id", "workspace_id", FieldKind::Text),
                column("trusted_account_id", "trusted_account_id", FieldKind::Text),
                column("created_at", "created_at", FieldKind::Timestamp),
                column("updated_at", "updated_at", FieldKind::Timestamp),
                column("info", "info", FieldKind::Json),
                $($extra),*
            ],
            default_sort: &[("created_at", false)],
            natural_order: &[("created_at", false)],
            keyword_fields: &[$($keyword),*],
            minimal_fields: &[$($minimal),*],
            id_field: $id_key,
        };
    };
}

resource_table!(PROVIDERS, "provider", [], keyword: ["provider", "name"], minimal: ["provider", "name", "created_at"]);
resource_table!(
    TRUSTED_ACCOUNTS,
    "trusted_account_id",
    [column("provider", "provider", FieldKind::Text)],
    keyword: ["trusted_account_id", "name"],
    minimal: ["trusted_account_id", "name", "provider", "workspace_id", "created_at"]
);
resource_table!(
    WORKSPACES,
    "workspace_id",
    [column("reference_id", "reference_id", FieldKind::Text)],
    keyword: ["workspace_id", "name"],
    minimal: ["workspace_id", "name", "created_at"]
);
resource_table!(
    PROJECT_GROUPS,
    "project_group_id",
    [
        column("reference_id", "reference_id", FieldKind::Text),
        column("parent_group_id", "parent_id", FieldKind::Text),
    ],
    keyword: ["project_group_id", "name"],
    minimal: ["project_group_id", "name", "parent_group_id", "workspace_id"]
);
resource_table!(
    PROJECTS,
    "project_id",
    [
        column("reference_id", "reference_id", FieldKind::Text),
        column("project_group_id", "parent_id", FieldKind::Text),
    ],
    keyword: ["project_id", "name"],
    minimal: ["project_id", "name", "project_group_id", "workspace_id"]
);
resource_table!(
    SERVICE_ACCOUNTS,
    "service_account_id",
    [
        column("reference_id", "reference_id", FieldKind::Text),
        column("project_id", "parent_id", FieldKind::Text),
        column("provider", "provider", FieldKind::Text),
    ],
    keyword: ["service_account_id", "name"],
    minimal: ["service_account_id", "name", "provider", "project_id", "workspace_id"]
);
