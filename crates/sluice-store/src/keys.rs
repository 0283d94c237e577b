//! Access keys: the secret is stored encrypted (the engine seals it); the store never sees it
//! in the clear.

use crate::sql;

use crate::{Result, Store};

/// What kind of principal a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Root,
    User,
    /// Temporary artifact credentials of one job.
    Job,
}

impl KeyKind {
    fn as_str(self) -> &'static str {
        match self {
            KeyKind::Root => "root",
            KeyKind::User => "user",
            KeyKind::Job => "job",
        }
    }

    fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "root" => Ok(KeyKind::Root),
            "user" => Ok(KeyKind::User),
            "job" => Ok(KeyKind::Job),
            other => Err(crate::Error::Corrupt(format!("key kind {other:?}"))),
        }
    }
}

/// One stored access key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRow {
    pub access_key_id: String,
    pub secret_enc: Vec<u8>,
    pub principal_arn: String,
    pub name: String,
    pub kind: KeyKind,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    /// SHA-256 (hex) of the session token temporary credentials must present.
    pub session_token_hash: Option<String>,
    pub job_id: Option<String>,
    /// What a job key may touch, as the engine wrote it.
    pub scope: Option<String>,
}

impl Store {
    /// Inserts a key; `Error::Conflict` if the id exists.
    pub async fn insert_access_key(&self, key: &AccessKeyRow) -> Result<()> {
        self.write(insert_key_query(key)).await?;
        Ok(())
    }

    pub async fn access_key(&self, access_key_id: &str) -> Result<Option<AccessKeyRow>> {
        let row = sql::query(
            "SELECT access_key_id, secret_enc, principal_arn, name, kind, expires_at, created_at,
                    session_token_hash, job_id, scope
             FROM access_keys WHERE access_key_id = $1",
        )
        .bind(access_key_id)
        .fetch_optional(self.reads())
        .await?;
        row.map(|row| {
            Ok(AccessKeyRow {
                access_key_id: row.try_get(0)?,
                secret_enc: row.try_get(1)?,
                principal_arn: row.try_get(2)?,
                name: row.try_get(3)?,
                kind: KeyKind::parse(&row.try_get::<String>(4)?)?,
                expires_at: row.try_get(5)?,
                created_at: row.try_get(6)?,
                session_token_hash: row.try_get(7)?,
                job_id: row.try_get(8)?,
                scope: row.try_get(9)?,
            })
        })
        .transpose()
    }

    /// Whether a user key with this name exists.
    pub async fn user_key_name_taken(&self, name: &str) -> Result<bool> {
        let row = sql::query("SELECT COUNT(*) FROM access_keys WHERE kind = 'user' AND name = $1")
            .bind(name)
            .fetch_one(self.reads())
            .await?;
        Ok(row.try_get::<i64>(0)? > 0)
    }

    /// Whether any root key is stored.
    pub async fn has_key_of_kind_root(&self) -> Result<bool> {
        let row = sql::query("SELECT COUNT(*) FROM access_keys WHERE kind = 'root'")
            .fetch_one(self.reads())
            .await?;
        Ok(row.try_get::<i64>(0)? > 0)
    }
}

/// The INSERT of one key.
fn insert_key_query(key: &AccessKeyRow) -> sql::Query<'static> {
    let query = sql::query(
        "INSERT INTO access_keys (access_key_id, secret_enc, principal_arn, name, kind,
                                  expires_at, created_at, session_token_hash, job_id, scope)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    );
    query
        .bind(&key.access_key_id)
        .bind(&key.secret_enc)
        .bind(&key.principal_arn)
        .bind(&key.name)
        .bind(key.kind.as_str())
        .bind(key.expires_at)
        .bind(key.created_at)
        .bind(&key.session_token_hash)
        .bind(&key.job_id)
        .bind(&key.scope)
}
