//! Documents (licence scans, reports), content-addressed by SHA-256. Bytes are staged in a
//! local file while they arrive and stored only when complete, so a failed or interrupted
//! upload leaves nothing behind.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Where documents live, behind one interface: a local directory (`file:///…` or a plain
/// path) or an S3-compatible bucket (`s3://bucket/prefix`, configured by the standard `AWS_*`
/// variables). Objects are keyed `ab/abcdef…` by their SHA-256.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    staging_dir: PathBuf,
    location: String,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blobs({})", self.location)
    }
}

/// An upload in progress, staged in a local file; dropped, its bytes are removed.
pub struct Staging {
    file: Option<tokio::fs::File>,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
}

/// How many leading bytes are kept for recognising the media type.
const HEAD: usize = 4096;

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Blobs {
    /// Opens the store at `location`; uploads are staged under `staging_dir`.
    pub fn open(location: &str, staging_dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let staging_dir = staging_dir.into();
        std::fs::create_dir_all(&staging_dir)?;
        let store: Arc<dyn ObjectStore> = if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let s3 = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(other)?;
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(PrefixStore::new(s3, prefix.to_owned()))
            }
        } else {
            let dir = location.strip_prefix("file://").unwrap_or(location);
            std::fs::create_dir_all(dir)?;
            Arc::new(LocalFileSystem::new_with_prefix(dir).map_err(other)?)
        };
        Ok(Self {
            store,
            staging_dir,
            location: location.to_owned(),
        })
    }

    fn key(sha256: &str) -> ObjectPath {
        ObjectPath::from(format!("{}/{sha256}", &sha256[..2]))
    }

    pub async fn begin(&self) -> std::io::Result<Staging> {
        let path = self
            .staging_dir
            .join(uuid::Uuid::new_v4().simple().to_string());
        let file = tokio::fs::File::create(&path).await?;
        Ok(Staging {
            file: Some(file),
            path,
            hasher: Sha256::new(),
            size: 0,
            head: Vec::new(),
        })
    }

    /// Stores a finished upload under its hash; identical bytes are stored once.
    pub async fn commit(&self, mut staging: Staging) -> std::io::Result<String> {
        let sha256 = hex::encode(staging.hasher.clone().finalize());
        if let Some(mut f) = staging.file.take() {
            f.flush().await?;
        }
        if self.exists(&sha256).await? {
            return Ok(sha256);
        }
        let bytes = tokio::fs::read(&staging.path).await?;
        self.store
            .put(&Self::key(&sha256), PutPayload::from(bytes))
            .await
            .map_err(other)?;
        Ok(sha256)
    }

    pub async fn exists(&self, sha256: &str) -> std::io::Result<bool> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        match self.store.head(&Self::key(sha256)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(other(e)),
        }
    }

    /// The bytes stored under `sha256`, as they come from the store.
    pub async fn stream(
        &self,
        sha256: &str,
    ) -> std::io::Result<futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>> {
        use futures::StreamExt;
        let got = self.store.get(&Self::key(sha256)).await.map_err(other)?;
        Ok(got.into_stream().map(|c| c.map_err(other)).boxed())
    }

    pub async fn read(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        let got = self.store.get(&Self::key(sha256)).await.map_err(other)?;
        Ok(got.bytes().await.map_err(other)?.to_vec())
    }
}

impl Staging {
    pub async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        if self.head.len() < HEAD {
            let take = (HEAD - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        match &mut self.file {
            Some(f) => f.write_all(chunk).await,
            None => Err(std::io::Error::other("upload already finished")),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The first bytes, for recognising the media type.
    pub fn head(&self) -> &[u8] {
        &self.head
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The media type of a document from its first bytes: PDF, OFD, JPEG or PNG.
pub fn sniff_media_type(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"PK\x03\x04") && head.windows(7).any(|w| w == b"OFD.xml") {
        // An OFD document is a ZIP package whose entry point is OFD.xml (GB/T 33190).
        Some("application/ofd")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_allowed_types_by_their_bytes() {
        assert_eq!(sniff_media_type(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(
            sniff_media_type(b"\x89PNG\r\n\x1a\n...."),
            Some("image/png")
        );
        assert_eq!(
            sniff_media_type(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some("image/jpeg")
        );
        assert_eq!(
            sniff_media_type(b"PK\x03\x04\x14\x00\x00\x00\x08\x00........OFD.xml"),
            Some("application/ofd")
        );
        assert_eq!(sniff_media_type(b"PK\x03\x04 a plain zip"), None);
        assert_eq!(sniff_media_type(b"MZ\x90\x00 an executable"), None);
    }

    #[tokio::test]
    async fn dropped_uploads_leave_nothing_and_identical_bytes_are_stored_once() {
        let dir = std::env::temp_dir().join(format!("cm-blobs-{}", uuid::Uuid::new_v4().simple()));
        let blobs = Blobs::open(dir.join("store").to_str().unwrap(), dir.join("staging")).unwrap();
        let mut s = blobs.begin().await.unwrap();
        s.write(b"%PDF-1.7 half").await.unwrap();
        drop(s);
        assert_eq!(std::fs::read_dir(dir.join("staging")).unwrap().count(), 0);

        let mut a = blobs.begin().await.unwrap();
        a.write(b"%PDF-1.7 same").await.unwrap();
        let sha = blobs.commit(a).await.unwrap();
        let mut b = blobs.begin().await.unwrap();
        b.write(b"%PDF-1.7 same").await.unwrap();
        assert_eq!(blobs.commit(b).await.unwrap(), sha);
        assert!(blobs.exists(&sha).await.unwrap());
        assert_eq!(blobs.read(&sha).await.unwrap(), b"%PDF-1.7 same");
        assert_eq!(std::fs::read_dir(dir.join("staging")).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }
}
