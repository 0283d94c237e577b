//! Resource tags, keyed by resource ARN.

use crate::sql;

use crate::{Result, Store, Tx};

/// Adds or overwrites tags inside `tx`.
pub async fn put(tx: &mut Tx<'_>, arn: &str, tags: &[(String, String)]) -> Result<()> {
    for (key, value) in tags {
        sql::query(
            "INSERT INTO tags (resource_arn, tag_key, tag_value) VALUES ($1, $2, $3)
             ON CONFLICT (resource_arn, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
        )
        .bind(arn)
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Removes every tag of a resource inside `tx`.
pub async fn clear(tx: &mut Tx<'_>, arn: &str) -> Result<()> {
    sql::query("DELETE FROM tags WHERE resource_arn = $1").bind(arn).execute(&mut *tx).await?;
    Ok(())
}

/// Counts the tags a resource would have after adding `new_keys`.
async fn count_after_put(tx: &mut Tx<'_>, arn: &str, new_keys: &[&str]) -> Result<usize> {
    let rows =
        sql::query("SELECT tag_key FROM tags WHERE resource_arn = $1").bind(arn).fetch_all(&mut *tx).await?;
    let mut keys: std::collections::HashSet<String> =
        rows.iter().map(|r| r.try_get::<String>(0)).collect::<Result<_, _>>()?;
    keys.extend(new_keys.iter().map(|k| k.to_string()));
    Ok(keys.len())
}

impl Store {
    /// Adds tags unless the resource would then carry more than `max`; returns false if it would.
    pub async fn tag_resource(&self, arn: &str, tags: &[(String, String)], max: usize) -> Result<bool> {
        let mut tx = self.begin().await?;
        let keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
        if count_after_put(&mut tx, arn, &keys).await? > max {
            return Ok(false);
        }
        put(&mut tx, arn, tags).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes the named tag keys (missing keys are ignored).
    pub async fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<()> {
        let mut tx = self.begin().await?;
        for key in keys {
            sql::query("DELETE FROM tags WHERE resource_arn = $1 AND tag_key = $2")
                .bind(arn)
                .bind(key)
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Tags of a resource by key after `after`, at most `limit`.
    pub async fn list_tags(
        &self,
        arn: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(String, String)>> {
        let rows = sql::query(
            "SELECT tag_key, tag_value FROM tags
             WHERE resource_arn = $1 AND tag_key > COALESCE($2, '') ORDER BY tag_key LIMIT $3",
        )
        .bind(arn)
        .bind(after)
        .bind(limit)
        .fetch_all(self.reads())
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }
}
