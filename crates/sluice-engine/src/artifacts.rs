//! The artifact store behind the S3-compatible endpoint: object bytes in files under the
//! artifact directory, object records in the database. An upload streams into a temporary file
//! (hashing as it goes), is synced and renamed into place, and only then recorded, so an
//! acknowledged PutObject survives a crash and a crash mid-upload leaves no object behind.

use std::path::{Path, PathBuf};

use md5::{Digest as _, Md5};
use sha2::Sha256;
use sluice_store::objects::ObjectRow;
use tokio::io::AsyncWriteExt;

use crate::{Engine, Error, Result};

/// The largest object one PutObject may store (S3's single-PUT limit).
pub const MAX_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// The longest object key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// S3's bucket naming rules (path-style): 3–63 of `a-z 0-9 . -`, starting and ending alphanumeric.
pub fn check_bucket_name(bucket: &str) -> Result<()> {
    let valid_chars =
        bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let bytes = bucket.as_bytes();
    if (3..=63).contains(&bytes.len())
        && valid_chars
        && ends_ok(bytes.first().copied())
        && ends_ok(bytes.last().copied())
    {
        Ok(())
    } else {
        Err(Error::InvalidBucketName(format!("The specified bucket is not valid: {bucket:?}")))
    }
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::Validation(format!("Object keys must be 1 to {MAX_KEY_BYTES} bytes")));
    }
    Ok(())
}

/// An upload in progress; call [`ObjectUpload::finish`] or drop it (the temporary file is removed).
pub struct ObjectUpload {
    file: Option<tokio::fs::File>,
    temp: PathBuf,
    md5: Md5,
    sha256: Sha256,
    size: u64,
    bucket: String,
    key: String,
    content_type: String,
}

impl Drop for ObjectUpload {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

fn io_error(context: &str, err: std::io::Error) -> Error {
    Error::Internal(format!("artifact store: {context}: {err}"))
}

impl ObjectUpload {
    /// Appends a chunk of the body.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.size += chunk.len() as u64;
        if self.size > MAX_OBJECT_BYTES {
            return Err(Error::EntityTooLarge(format!("Objects may be at most {MAX_OBJECT_BYTES} bytes")));
        }
        self.md5.update(chunk);
        self.sha256.update(chunk);
        let file = self.file.as_mut().expect("an unfinished upload has its file");
        file.write_all(chunk).await.map_err(|e| io_error("write", e))
    }

    /// Lowercase hex SHA-256 of everything written so far.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256.clone().finalize())
    }

    /// Syncs the bytes, moves them into place and records the object.
    pub async fn finish(mut self, engine: &Engine) -> Result<ObjectRow> {
        let mut file = self.file.take().expect("an unfinished upload has its file");
        file.flush().await.map_err(|e| io_error("flush", e))?;
        file.sync_all().await.map_err(|e| io_error("sync", e))?;
        drop(file);
        let name = uuid::Uuid::new_v4().simple().to_string();
        let dir = engine.artifacts_dir();
        tokio::fs::rename(&self.temp, dir.join(&name)).await.map_err(|e| io_error("rename", e))?;
        sync_dir(dir).await?;
        let row = ObjectRow {
            bucket: std::mem::take(&mut self.bucket),
            key: std::mem::take(&mut self.key),
            file: name,
            size: self.size as i64,
            etag: format!("\"{}\"", hex::encode(self.md5.clone().finalize())),
            content_type: std::mem::take(&mut self.content_type),
            last_modified: engine.now_millis(),
        };
        if let Some(previous) = engine.store().put_object(&row).await? {
            let _ = tokio::fs::remove_file(dir.join(previous)).await;
        }
        Ok(row)
    }
}

async fn sync_dir(dir: &Path) -> Result<()> {
    let dir = tokio::fs::File::open(dir).await.map_err(|e| io_error("open directory", e))?;
    dir.sync_all().await.map_err(|e| io_error("sync directory", e))
}

impl Engine {
    /// Starts storing `bucket/key`.
    pub async fn begin_upload(&self, bucket: &str, key: &str, content_type: &str) -> Result<ObjectUpload> {
        check_bucket_name(bucket)?;
        check_key(key)?;
        let dir = self.artifacts_dir();
        tokio::fs::create_dir_all(dir).await.map_err(|e| io_error("create directory", e))?;
        let temp = dir.join(format!("upload-{}", uuid::Uuid::new_v4().simple()));
        let file = tokio::fs::File::create(&temp).await.map_err(|e| io_error("create", e))?;
        Ok(ObjectUpload {
            file: Some(file),
            temp,
            md5: Md5::new(),
            sha256: Sha256::new(),
            size: 0,
            bucket: bucket.to_string(),
            key: key.to_string(),
            content_type: content_type.to_string(),
        })
    }

    /// An object's record, if it exists.
    pub async fn object(&self, bucket: &str, key: &str) -> Result<ObjectRow> {
        check_bucket_name(bucket)?;
        self.store().object(bucket, key).await?.ok_or_else(|| no_such_key(key))
    }

    /// An object's record and its open file.
    pub async fn open_object(&self, bucket: &str, key: &str) -> Result<(ObjectRow, tokio::fs::File)> {
        let row = self.object(bucket, key).await?;
        match tokio::fs::File::open(self.artifacts_dir().join(&row.file)).await {
            Ok(file) => Ok((row, file)),
            // Replaced or deleted between the lookup and the open.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(no_such_key(key)),
            Err(e) => Err(io_error("open", e)),
        }
    }

    /// Copies an object's current bytes to another key (a hard link: stored files never change,
    /// so the copy is immutable even if the source is overwritten later).
    /// The copy's record is written inside `tx`; the previous file under the target key, if
    /// any, is left for the caller to remove after the commit (returned second).
    pub async fn copy_object_in(
        &self,
        tx: &mut sluice_store::Tx<'_>,
        bucket: &str,
        key: &str,
        to_bucket: &str,
        to_key: &str,
    ) -> Result<(ObjectRow, Option<String>)> {
        check_bucket_name(to_bucket)?;
        check_key(to_key)?;
        check_bucket_name(bucket)?;
        let source =
            sluice_store::objects::object_in(tx, bucket, key).await?.ok_or_else(|| no_such_key(key))?;
        let dir = self.artifacts_dir();
        let name = uuid::Uuid::new_v4().simple().to_string();
        match tokio::fs::hard_link(dir.join(&source.file), dir.join(&name)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_such_key(key)),
            Err(e) => return Err(io_error("link", e)),
        }
        sync_dir(dir).await?;
        let row = ObjectRow {
            bucket: to_bucket.to_string(),
            key: to_key.to_string(),
            file: name,
            size: source.size,
            etag: source.etag,
            content_type: source.content_type,
            last_modified: self.now_millis(),
        };
        let previous = sluice_store::objects::put_in(tx, &row).await?;
        Ok((row, previous))
    }

    /// Deletes an object; deleting an absent one succeeds, as in S3.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        check_bucket_name(bucket)?;
        if let Some(row) = self.store().delete_object(bucket, key).await? {
            let _ = tokio::fs::remove_file(self.artifacts_dir().join(row.file)).await;
        }
        Ok(())
    }

    /// Up to `limit` objects under `prefix` after `after`, in key order.
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<ObjectRow>> {
        check_bucket_name(bucket)?;
        Ok(self.store().list_objects(bucket, prefix, after, limit).await?)
    }
}

fn no_such_key(key: &str) -> Error {
    Error::NoSuchKey(format!("The specified key does not exist: {key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for good in ["abc", "my-bucket.v2", "a1b"] {
            assert!(check_bucket_name(good).is_ok(), "{good}");
        }
        for bad in ["ab", "Upper", "-start", "end-", "has_underscore", "../x", &"a".repeat(64)] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }
}
