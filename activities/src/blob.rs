//! Blobs: the images, clips and films the pipeline makes, in an object store.
//!
//! The journal keeps only a [`BlobRef`] (a key); the bytes live here. The default store is the
//! local filesystem under the data directory; any `object_store` implementation (S3, GCS...) can
//! be plugged in. Media tools need files, so [`Blobs::local_path`] gives a path (the file itself
//! on a local store, a cached copy otherwise). Remote results are copied in at once, because
//! providers keep them only briefly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::error::{ActivityError, ErrorKind, Result};

/// A reference to a stored blob: its key (`projects/<slug>/scenes/3/composite-1.png`).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = String, example = "projects/lantern-keeper/scenes/s-001/clip.mp4")]
pub struct BlobRef(String);

impl BlobRef {
    /// A reference to `key` (validated: relative, no `..`, portable characters only).
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        let ok = !key.is_empty()
            && key.len() <= 512
            && !key.starts_with('/')
            && !key
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
        if !ok {
            return Err(ActivityError::bad_request(
                "blobs",
                format!(
                    "`{key}` is not a valid blob key (relative path of letters, digits, -, _, ., /)"
                ),
            ));
        }
        Ok(BlobRef(key))
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.0
    }

    /// The file extension, lower case.
    pub fn extension(&self) -> &str {
        self.0.rsplit_once('.').map(|(_, e)| e).unwrap_or("")
    }

    /// The MIME type implied by the extension.
    pub fn content_type(&self) -> &'static str {
        content_type(self.extension())
    }
}

impl std::fmt::Display for BlobRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// MIME type of an extension.
pub fn content_type(ext: &str) -> &'static str {
    match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The blob store.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// Where files are (local store) or cached (other stores).
    local_root: Option<PathBuf>,
    cache_dir: PathBuf,
    /// A base URL where providers can fetch blobs; without it, [`Blobs::public_url`] inlines
    /// them as data URIs.
    media_url: Option<String>,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blobs")
            .field("store", &self.store.to_string())
            .field("local_root", &self.local_root)
            .finish()
    }
}

fn store_error(e: object_store::Error) -> ActivityError {
    let kind = match e {
        object_store::Error::NotFound { .. } => ErrorKind::NotFound,
        _ => ErrorKind::Io,
    };
    let text = e.to_string();
    // A full disk says so in its own words somewhere down the error chain; a person needs to
    // know it is space, not a bug. It is retried: space may be freed meanwhile.
    let full = text.contains("No space left on device")
        || text.contains("os error 28")
        || text.contains("Disk quota exceeded");
    if full {
        return ActivityError::new(
            "blobs",
            ErrorKind::Io,
            format!(
                "the blob store is full: no space left on the device holding SLATE_DATA_DIR's blobs. \
                 Free space (or move the data directory); the step is retried. ({text})"
            ),
        )
        .retryable(true);
    }
    ActivityError::new("blobs", kind, text)
}

impl Blobs {
    /// Files under `root` (created if missing).
    pub fn local(root: impl AsRef<Path>, media_url: Option<String>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(&root).map_err(|e| {
            ActivityError::io(format!(
                "cannot create the blob directory {}: {e}",
                root.display()
            ))
        })?;
        let root = root.canonicalize()?;
        let store = LocalFileSystem::new_with_prefix(&root).map_err(store_error)?;
        Ok(Blobs {
            store: Arc::new(store),
            cache_dir: root.join(".cache"),
            local_root: Some(root),
            media_url,
        })
    }

    /// Any object store; `cache_dir` holds local copies for media tools.
    pub fn remote(
        store: Arc<dyn ObjectStore>,
        cache_dir: PathBuf,
        media_url: Option<String>,
    ) -> Self {
        Blobs {
            store,
            local_root: None,
            cache_dir,
            media_url,
        }
    }

    fn path(r: &BlobRef) -> Result<ObjectPath> {
        ObjectPath::parse(r.key()).map_err(|e| ActivityError::bad_request("blobs", e.to_string()))
    }

    /// Store bytes under `key`.
    pub async fn put(&self, key: &str, bytes: impl Into<Bytes>) -> Result<BlobRef> {
        let r = BlobRef::new(key)?;
        self.store
            .put(&Self::path(&r)?, bytes.into().into())
            .await
            .map_err(store_error)?;
        Ok(r)
    }

    /// Store a local file under `key` (the file is left where it is).
    pub async fn put_file(&self, key: &str, file: &Path) -> Result<BlobRef> {
        let bytes = tokio::fs::read(file)
            .await
            .map_err(|e| ActivityError::io(format!("cannot read {}: {e}", file.display())))?;
        self.put(key, bytes).await
    }

    /// The bytes of a blob.
    pub async fn get(&self, r: &BlobRef) -> Result<Bytes> {
        self.store
            .get(&Self::path(r)?)
            .await
            .map_err(store_error)?
            .bytes()
            .await
            .map_err(store_error)
    }

    /// Whether a blob exists.
    pub async fn exists(&self, r: &BlobRef) -> Result<bool> {
        match self.store.head(&Self::path(r)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Size in bytes.
    pub async fn size(&self, r: &BlobRef) -> Result<u64> {
        Ok(self
            .store
            .head(&Self::path(r)?)
            .await
            .map_err(store_error)?
            .size)
    }

    /// A local file with the blob's bytes (the blob itself on a local store).
    pub async fn local_path(&self, r: &BlobRef) -> Result<PathBuf> {
        if let Some(root) = &self.local_root {
            let p = root.join(r.key());
            if tokio::fs::try_exists(&p).await.unwrap_or(false) {
                return Ok(p);
            }
            return Err(ActivityError::new(
                "blobs",
                ErrorKind::NotFound,
                format!("blob `{r}` does not exist"),
            ));
        }
        let p = self.cache_dir.join(r.key());
        if !tokio::fs::try_exists(&p).await.unwrap_or(false) {
            let bytes = self.get(r).await?;
            if let Some(dir) = p.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            let tmp = p.with_extension(format!("{}.part", r.extension()));
            tokio::fs::write(&tmp, &bytes).await?;
            tokio::fs::rename(&tmp, &p).await?;
        }
        Ok(p)
    }

    /// A scratch directory for tools (inside the data directory, so it is on the same disk).
    pub async fn scratch(&self) -> Result<PathBuf> {
        let dir = self
            .local_root
            .as_ref()
            .unwrap_or(&self.cache_dir)
            .join(".scratch")
            .join(uuid::Uuid::new_v4().simple().to_string());
        tokio::fs::create_dir_all(&dir).await?;
        Ok(dir)
    }

    /// A URL a provider can fetch the blob from: under the configured media URL, or the bytes
    /// inline as a data URI.
    pub async fn public_url(&self, r: &BlobRef) -> Result<String> {
        if let Some(base) = &self.media_url {
            return Ok(format!("{base}/{}", r.key()));
        }
        let bytes = self.get(r).await?;
        Ok(format!(
            "data:{};base64,{}",
            r.content_type(),
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        ))
    }

    /// Download `url` (a provider's short-lived result) and keep it under `key`.
    pub async fn copy_from_url(
        &self,
        http: &reqwest::Client,
        provider: &str,
        url: &str,
        key: &str,
    ) -> Result<BlobRef> {
        if let Some(data) = url.strip_prefix("data:") {
            let (_, b64) = data.split_once(";base64,").ok_or_else(|| {
                ActivityError::new(provider, ErrorKind::Malformed, "unsupported data URI")
            })?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| ActivityError::new(provider, ErrorKind::Malformed, e.to_string()))?;
            return self.put(key, bytes).await;
        }
        let resp = http
            .get(url)
            .send()
            .await
            .map_err(|e| crate::http::transport_error(provider, e))?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            return Err(ActivityError::new(
                provider,
                if status == 404 { ErrorKind::NotFound } else { ErrorKind::Unavailable },
                format!("downloading the result failed with HTTP {status} (results are kept only briefly)"),
            )
            .with_status(status)
            .retryable(status >= 500));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| crate::http::transport_error(provider, e))?;
        self.put(key, bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        assert!(BlobRef::new("projects/a/b.png").is_ok());
        for bad in [
            "",
            "/abs",
            "a/../b",
            "a//b",
            "a/./b",
            "spaces here",
            "ünï",
            "a\\b",
        ] {
            assert!(BlobRef::new(bad).is_err(), "{bad}");
        }
        assert_eq!(BlobRef::new("x/y.MP4").unwrap().content_type(), "video/mp4");
    }

    #[tokio::test]
    async fn put_get_and_data_urls() {
        let dir = std::env::temp_dir().join(format!("slate-blobs-{}", uuid::Uuid::new_v4()));
        let blobs = Blobs::local(&dir, None).unwrap();
        let r = blobs.put("a/b.txt", b"hello".to_vec()).await.unwrap();
        assert_eq!(&blobs.get(&r).await.unwrap()[..], b"hello");
        assert!(blobs.exists(&r).await.unwrap());
        assert_eq!(blobs.size(&r).await.unwrap(), 5);
        assert!(blobs.local_path(&r).await.unwrap().ends_with("a/b.txt"));
        let url = blobs.public_url(&r).await.unwrap();
        assert_eq!(url, "data:text/plain; charset=utf-8;base64,aGVsbG8=");
        let copy = blobs
            .copy_from_url(
                &crate::http::client(std::time::Duration::from_secs(1)),
                "t",
                "data:text/plain;base64,aGVsbG8=",
                "c.txt",
            )
            .await
            .unwrap();
        assert_eq!(&blobs.get(&copy).await.unwrap()[..], b"hello");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
