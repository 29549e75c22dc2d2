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

/// Receives one upload: `declared` bytes announced up front, `limit` the most allowed, chunks
/// from `next_chunk` until it yields `None`. The bytes must match the announced size.
pub async fn receive<S>(
    data_dir: &Path,
    file_name: &str,
    declared: u64,
    limit: u64,
    uploaded_by: &str,
    mut chunks: S,
) -> Result<Upload>
where
    S: Stream<Item = Result<Vec<u8>>> + Unpin,
{
    if declared == 0 || declared > limit {
        return Err(invalid(
            "metadata.size_bytes",
            format!("must be between 1 and {limit} bytes"),
        ));
    }
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
            10,
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
        let old = receive(data.path(), "old", 3, 10, "me", chunks(vec![bytes.clone()]))
            .await
            .expect("test");
        let new = receive(data.path(), "new", 3, 10, "me", chunks(vec![bytes]))
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
                receive(data.path(), "x", declared, 10, "me", chunks(parts))
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
}
