//! Uploading a local archive for `env deploy --archive` (UploadArchive: metadata, then 1 MiB
//! chunks, streamed from the file).

use std::path::Path;

use pressluft_client::Clients;
use pressluft_proto::v1::upload_archive_request::Part;
use pressluft_proto::v1::{UploadArchiveMetadata, UploadArchiveRequest};
use tokio::io::AsyncReadExt as _;

use crate::error::CliError;

const CHUNK: usize = 1 << 20;

/// Uploads the archive at `path`; returns its upload id.
pub async fn upload(clients: &mut Clients, path: &Path) -> Result<String, CliError> {
    let cannot =
        |err: std::io::Error| CliError::usage(format!("cannot read {}: {err}", path.display()));
    let mut file = tokio::fs::File::open(path).await.map_err(cannot)?;
    let size = file.metadata().await.map_err(cannot)?.len();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let reader = tokio::spawn(async move {
        let metadata = UploadArchiveRequest {
            part: Some(Part::Metadata(UploadArchiveMetadata {
                file_name,
                size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
            })),
        };
        if tx.send(metadata).await.is_err() {
            return Ok(());
        }
        loop {
            let mut chunk = vec![0; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                let n = file.read(&mut chunk[filled..]).await?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                return Ok(());
            }
            chunk.truncate(filled);
            let part = UploadArchiveRequest {
                part: Some(Part::Chunk(chunk)),
            };
            if tx.send(part).await.is_err() {
                return Ok(());
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let response = clients.site.upload_archive(stream).await;
    let read: std::io::Result<()> = reader
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("the upload reader stopped")));
    read.map_err(cannot)?;
    Ok(response?.into_inner().upload_id)
}
