//! Archives uploaded through `UploadArchive` for deploys: stored under `<data_dir>/uploads`
//! as `<id>.tar.gz` (0600) with a `<id>.json` record of their size and SHA-256. A file is
//! written under a temporary name and renamed once complete and checked, so a deploy never
//! sees half an upload. A deploy job copies the file to the node from here.

use std::path::{Path, PathBuf};

use futures::{Stream, StreamExt as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::validate::Invalid;

/// Largest chunk accepted in one message.
pub const MAX_CHUNK: usize = 1 << 20;

/// What is known about a stored upload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Upload {
    pub id: String,
    pub file_name: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub uploaded_by: String,
    pub created_at: i64,
}

/// The uploads directory of a data directory.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("uploads")
}

/// The archive of upload `id`.
pub fn archive_path(data_dir: &Path, id: Uuid) -> PathBuf {
    dir(data_dir).join(format!("{id}.tar.gz"))
}

fn invalid(field: &'static str, message: impl Into<String>) -> Error {
    Error::Invalid(Invalid {
        field,
        message: message.into(),
    })
}

/// Bytes each user holds in uploads still being received; with the stored ones they count
/// against the user's quota, so parallel uploads cannot pass it together.
#[derive(Debug, Default)]
pub struct Quota {
    receiving: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

/// Bytes reserved for one upload in progress; given back when dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    quota: &'a Quota,
    user: String,
    bytes: u64,
}

impl Quota {
    fn receiving(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, u64>> {
        self.receiving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves `bytes` for `user`, or errors with UPLOAD_QUOTA_EXCEEDED when their stored
    /// uploads, the ones in progress and this one would pass `limit`.
    pub fn reserve(
        &self,
        data_dir: &Path,
        user: &str,
        bytes: u64,
        limit: u64,
    ) -> Result<Reservation<'_>> {
        let stored = stored_bytes_of(data_dir, user)?;
        let mut receiving = self.receiving();
        let in_progress = receiving.get(user).copied().unwrap_or(0);
        let total = stored.saturating_add(in_progress).saturating_add(bytes);
        if total > limit {
            return Err(Error::QuotaExceeded(format!(
                "this upload ({bytes} bytes) would pass your upload quota of {limit} bytes \
                 ({} bytes stored or arriving); deploy or wait for old uploads to be removed",
                stored.saturating_add(in_progress)
            )));
        }
        *receiving.entry(user.to_owned()).or_default() += bytes;
        Ok(Reservation {
            quota: self,
            user: user.to_owned(),
            bytes,
        })
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut receiving = self.quota.receiving();
        if let Some(held) = receiving.get_mut(&self.user) {
            *held = held.saturating_sub(self.bytes);
            if *held == 0 {
                receiving.remove(&self.user);
            }
        }
    }
}

/// Bytes of the complete uploads `user` stored.
fn stored_bytes_of(data_dir: &Path, user: &str) -> Result<u64> {
    let entries = match std::fs::read_dir(dir(data_dir)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::internal(e)),
    };
    let mut total = 0u64;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if let Ok(upload) = serde_json::from_slice::<Upload>(&bytes)
            && upload.uploaded_by == user
            && path.with_extension("tar.gz").exists()
        {
            total = total.saturating_add(upload.size_bytes);
        }
    }
    Ok(total)
}

/// Limits of one upload: the largest single archive and the user's total.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub quota_bytes: u64,
}

/// Receives one upload: `declared` bytes announced up front, within `limits` (and `quota`'s
/// account of what the user holds), chunks from `chunks` until it yields `None`. The bytes
/// must match the announced size.
pub async fn receive<S>(
    data_dir: &Path,
    file_name: &str,
    declared: u64,
    limits: Limits,
    quota: &Quota,
    uploaded_by: &str,
    mut chunks: S,
) -> Result<Upload>
where
    S: Stream<Item = Result<Vec<u8>>> + Unpin,
{
    let limit = limits.max_bytes;
    if declared == 0 || declared > limit {
        return Err(invalid(
            "metadata.size_bytes",
            format!("must be between 1 and {limit} bytes"),
        ));
    }
    let _reserved = quota.reserve(data_dir, uploaded_by, declared, limits.quota_bytes)?;
    let dir = dir(data_dir);
    create_private_dir(&dir).await?;
    let id = Uuid::now_v7();
    let partial = dir.join(format!("{id}.partial"));
    let result = write_checked(&partial, declared, &mut chunks).await;
    let sha256 = match result {
        Ok(sha) => sha,
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
    };
    let upload = Upload {
        id: id.to_string(),
        file_name: file_name.to_owned(),
        size_bytes: declared,
        sha256,
        uploaded_by: uploaded_by.to_owned(),
        created_at: crate::store::now(),
    };
    let record = serde_json::to_vec(&upload).map_err(Error::internal)?;
    tokio::fs::write(dir.join(format!("{id}.json")), record)
        .await
        .map_err(Error::internal)?;
    tokio::fs::rename(&partial, archive_path(data_dir, id))
        .await
        .map_err(Error::internal)?;
    Ok(upload)
}

async fn write_checked<S>(path: &Path, declared: u64, chunks: &mut S) -> Result<String>
where
    S: Stream<Item = Result<Vec<u8>>> + Unpin,
{
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(Error::internal)?;
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    let mut first: Vec<u8> = Vec::new();
    while let Some(chunk) = chunks.next().await.transpose()? {
        if chunk.len() > MAX_CHUNK {
            return Err(invalid(
                "chunk",
                format!("must be at most {MAX_CHUNK} bytes"),
            ));
        }
        received += chunk.len() as u64;
        if received > declared {
            return Err(invalid(
                "chunk",
                format!("more bytes than the announced {declared}"),
            ));
        }
        if first.len() < 2 {
            first.extend(chunk.iter().take(2 - first.len()));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(Error::internal)?;
    }
    if received != declared {
        return Err(invalid(
            "chunk",
            format!("received {received} bytes of the announced {declared}"),
        ));
    }
    if first != [0x1f, 0x8b] {
        return Err(invalid(
            "chunk",
            "the upload is not a gzip archive (.tar.gz)",
        ));
    }
    file.sync_all().await.map_err(Error::internal)?;
    Ok(hex::encode(hasher.finalize()))
}

/// A stored upload by id.
pub async fn find(data_dir: &Path, id: Uuid) -> Result<Upload> {
    let record = match tokio::fs::read(dir(data_dir).join(format!("{id}.json"))).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::not_found("upload", &id));
        }
        Err(e) => return Err(Error::internal(e)),
    };
    if !archive_path(data_dir, id).exists() {
        return Err(Error::not_found("upload", &id));
    }
    serde_json::from_slice(&record).map_err(Error::internal)
}

/// Removes uploads (and half-written ones) last written more than `age` ago; returns how many.
/// Deploys copy an upload to the node when they run, so only old, unused archives go.
pub fn remove_older_than(data_dir: &Path, age: std::time::Duration) -> Result<usize> {
    let dir = dir(data_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::internal(e)),
    };
    let cutoff = std::time::SystemTime::now()
        .checked_sub(age)
        .unwrap_or(std::time::UNIX_EPOCH);
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = [".tar.gz", ".json", ".partial"]
            .iter()
            .any(|ext| name.ends_with(ext));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < cutoff);
        if ours && old && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

async fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(Error::internal)?;
    tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .await
        .map_err(Error::internal)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_bytes: 10,
        quota_bytes: 100,
    };

    fn chunks(parts: Vec<Vec<u8>>) -> impl Stream<Item = Result<Vec<u8>>> + Unpin {
        futures::stream::iter(parts.into_iter().map(Ok))
    }

    #[tokio::test]
    async fn an_upload_is_stored_checked_and_found() {
        let data = tempfile::tempdir().expect("test");
        let bytes = vec![0x1f, 0x8b, 1, 2, 3];
        let up = receive(
            data.path(),
            "a.tar.gz",
            5,
            LIMITS,
            &Quota::default(),
            "me",
            chunks(vec![bytes[..2].to_vec(), bytes[2..].to_vec()]),
        )
        .await
        .expect("test");
        assert_eq!(up.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(
            std::fs::read(archive_path(data.path(), up.id.parse().expect("uuid"))).expect("test"),
            bytes
        );
        assert_eq!(
            find(data.path(), up.id.parse().expect("uuid"))
                .await
                .expect("test"),
            up
        );
        assert!(find(data.path(), Uuid::now_v7()).await.is_err());
    }

    #[tokio::test]
    async fn old_uploads_are_removed_new_ones_kept() {
        let data = tempfile::tempdir().expect("test");
        let bytes = vec![0x1f, 0x8b, 1];
        let old = receive(
            data.path(),
            "old",
            3,
            LIMITS,
            &Quota::default(),
            "me",
            chunks(vec![bytes.clone()]),
        )
        .await
        .expect("test");
        let new = receive(
            data.path(),
            "new",
            3,
            LIMITS,
            &Quota::default(),
            "me",
            chunks(vec![bytes]),
        )
        .await
        .expect("test");
        let week_ago = std::time::SystemTime::now() - std::time::Duration::from_hours(8 * 24);
        for ext in ["tar.gz", "json"] {
            std::fs::File::options()
                .write(true)
                .open(dir(data.path()).join(format!("{}.{ext}", old.id)))
                .expect("test")
                .set_modified(week_ago)
                .expect("test");
        }
        let removed =
            remove_older_than(data.path(), std::time::Duration::from_hours(7 * 24)).expect("test");
        assert_eq!(removed, 2);
        assert!(
            find(data.path(), old.id.parse().expect("uuid"))
                .await
                .is_err()
        );
        assert!(
            find(data.path(), new.id.parse().expect("uuid"))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn bad_uploads_are_refused_and_leave_nothing() {
        let data = tempfile::tempdir().expect("test");
        let gz = |n: usize| {
            let mut v = vec![0x1f, 0x8b];
            v.resize(n, 0);
            v
        };
        for (declared, parts) in [
            (0, vec![]),                  // nothing announced
            (11, vec![gz(11)]),           // over the limit
            (5, vec![gz(4)]),             // short
            (5, vec![gz(6)]),             // long
            (5, vec![b"hello".to_vec()]), // not gzip
        ] {
            assert!(
                receive(
                    data.path(),
                    "x",
                    declared,
                    LIMITS,
                    &Quota::default(),
                    "me",
                    chunks(parts)
                )
                .await
                .is_err(),
                "{declared}"
            );
        }
        let left: Vec<_> = std::fs::read_dir(dir(data.path()))
            .map(Iterator::collect)
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test]
    async fn a_users_uploads_stop_at_the_quota_counting_those_in_progress() {
        let data = tempfile::tempdir().expect("test");
        let quota = Quota::default();
        let limits = Limits {
            max_bytes: 10,
            quota_bytes: 12,
        };
        let archive = |n: usize| {
            let mut bytes = vec![0x1f, 0x8b];
            bytes.resize(n, 7);
            chunks(vec![bytes])
        };
        receive(data.path(), "one", 8, limits, &quota, "me", archive(8))
            .await
            .expect("within the quota");
        // 8 stored + 5 would pass 12: refused, and nothing is written.
        let over = receive(data.path(), "two", 5, limits, &quota, "me", archive(5))
            .await
            .expect_err("over the quota");
        assert!(matches!(over, Error::QuotaExceeded(_)), "{over:?}");
        assert_eq!(std::fs::read_dir(dir(data.path())).expect("dir").count(), 2);
        // Another user has their own quota.
        receive(data.path(), "three", 5, limits, &quota, "you", archive(5))
            .await
            .expect("another user");
        // An upload in progress holds its bytes until it ends.
        let held = quota.reserve(data.path(), "new", 10, 12).expect("reserve");
        assert!(matches!(
            quota.reserve(data.path(), "new", 3, 12),
            Err(Error::QuotaExceeded(_))
        ));
        drop(held);
        quota
            .reserve(data.path(), "new", 3, 12)
            .expect("given back");
    }
}
