//! Blob storage for uploads (campaign artwork, KYC documents): the `object_store` crate over a
//! local directory by default, or any S3-compatible bucket when `OBJECT_STORE_URL` is set
//! (`s3://bucket/prefix`; credentials, region and endpoint from the usual `AWS_*` variables).
//!
//! Keys are chosen by the platform (never by the uploader), so a client cannot address another
//! brand's objects; access goes through the routes that check permissions first.

use std::sync::Arc;

use bytes::Bytes;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, aws::AmazonS3Builder, local::LocalFileSystem, path::Path};

use crate::config::StorageConfig;

/// Where uploads live.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    description: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("at", &self.description).finish()
    }
}

impl Storage {
    /// The configured store; a local directory is created if missing.
    pub fn new(config: &StorageConfig) -> anyhow::Result<Self> {
        use anyhow::Context;
        match &config.object_store_url {
            Some(url) => {
                let (bucket, prefix) = match url.scheme() {
                    "s3" => (url.host_str().unwrap_or_default().to_owned(), url.path().trim_matches('/').to_owned()),
                    other => anyhow::bail!("OBJECT_STORE_URL: unsupported scheme `{other}` (use s3://bucket/prefix)"),
                };
                let store =
                    AmazonS3Builder::from_env().with_bucket_name(&bucket).build().context("OBJECT_STORE_URL")?;
                Ok(Self { store: Arc::new(store), prefix: Path::from(prefix), description: url.to_string() })
            }
            None => {
                std::fs::create_dir_all(&config.dir)
                    .with_context(|| format!("STORAGE_DIR {}", config.dir.display()))?;
                let store = LocalFileSystem::new_with_prefix(&config.dir).context("STORAGE_DIR")?;
                Ok(Self {
                    store: Arc::new(store),
                    prefix: Path::default(),
                    description: config.dir.display().to_string(),
                })
            }
        }
    }

    fn path(&self, key: &str) -> Path {
        key.split('/').fold(self.prefix.clone(), |path, part| path.join(part))
    }

    /// Stores `bytes` under `key` (replacing what was there).
    pub async fn put(&self, key: &str, bytes: Bytes) -> object_store::Result<()> {
        self.store.put(&self.path(key), PutPayload::from_bytes(bytes)).await.map(drop)
    }

    /// The object under `key`, or `None` if there is none.
    pub async fn get(&self, key: &str) -> object_store::Result<Option<Bytes>> {
        match self.store.get(&self.path(key)).await {
            Ok(object) => object.bytes().await.map(Some),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes the object under `key`; absent is fine.
    pub async fn delete(&self, key: &str) -> object_store::Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_directory_round_trip() {
        let dir = std::env::temp_dir().join(format!("brandmint-storage-{}", uuid::Uuid::new_v4()));
        let storage = Storage::new(&StorageConfig { dir: dir.clone(), object_store_url: None }).unwrap();
        assert_eq!(storage.get("brands/1/art.png").await.unwrap(), None);
        storage.put("brands/1/art.png", Bytes::from_static(b"png")).await.unwrap();
        assert_eq!(storage.get("brands/1/art.png").await.unwrap().as_deref(), Some(&b"png"[..]));
        assert!(dir.join("brands/1/art.png").exists());
        storage.delete("brands/1/art.png").await.unwrap();
        storage.delete("brands/1/art.png").await.unwrap();
        assert_eq!(storage.get("brands/1/art.png").await.unwrap(), None);
        drop(std::fs::remove_dir_all(dir));
    }
}
