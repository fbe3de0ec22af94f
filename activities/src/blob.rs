//! Blobs: the images, clips and films the pipeline makes, in an object store.
//!
//! The journal keeps only a [`BlobRef`] (a key); the bytes live here. The store is chosen by
//! URL ([`Blobs::open`], `SLATE_BLOB_URL`): the local filesystem under the data directory (the
//! default), or an S3 bucket (any S3-compatible service), which lets workers on several hosts
//! share their images and clips. Media tools need files, so [`Blobs::local_path`] gives a path:
//! the file itself on a local store, a cached copy otherwise (checked against the object's
//! ETag, so a blob made again elsewhere is fetched again). Remote results are copied in at
//! once, because providers keep them only briefly.
//!
//! A blob is written whole or not at all: the local store writes a temporary file and renames
//! it, S3 makes an object visible when its upload completes (large files go up in parts). A
//! reader never sees half a blob.
//!
//! (Over 600 lines on purpose: one store interface with its two backends (local files and S3) and
//! the URLs providers fetch them by; the signing and the presigning must agree with the reads
//! beside them.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::config::Secret;
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
        "flac" => "audio/flac",
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
    /// A base URL where providers can fetch blobs without a key (a public bucket or CDN).
    media_url: Option<String>,
    /// The bucket, to presign URLs of its objects (S3 stores), and the key prefix in it.
    signer: Option<(Arc<object_store::aws::AmazonS3>, String)>,
    /// Our public URL and the key that signs expiring `/media` URLs under it.
    signed_media: Option<(String, Secret)>,
}

/// How long a URL handed to a provider stays good: long enough for a clip that waits hours in
/// a provider's queue before its start image is fetched.
pub const FETCH_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The signature of an expiring `/media/{key}` URL: HMAC-SHA256 of the key and the expiry
/// (Unix seconds) under the media secret, hex.
pub fn media_signature(secret: &Secret, key: &str, expires: i64) -> String {
    crate::config::webhook_token(secret, &format!("media\n{key}\n{expires}"))
}

/// Whether `sig` signs `key` until `expires`, and `expires` is still ahead of `now`.
pub fn media_signature_valid(
    secret: &Secret,
    key: &str,
    expires: i64,
    sig: &str,
    now: i64,
) -> bool {
    let want = media_signature(secret, key, expires);
    expires >= now && crate::config::same_secret(&want, sig)
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

/// What the store says of a blob.
#[derive(Debug, Clone)]
pub struct BlobMeta {
    /// Bytes.
    pub size: u64,
    /// Last written.
    pub last_modified: chrono::DateTime<chrono::Utc>,
    /// The store's version tag, when it gives one.
    pub e_tag: Option<String>,
}

/// A blob's bytes as a stream (a range of them, or all).
pub type BlobStream =
    futures::stream::BoxStream<'static, std::result::Result<Bytes, std::io::Error>>;

/// Files of more than this go up to a remote store in parts of this size.
const PART_BYTES: usize = 8 << 20;

fn is_bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !b.starts_with(['-', '.'])
        && !b.ends_with(['-', '.'])
}

impl Blobs {
    /// The store `url` names (`SLATE_BLOB_URL`): none or `file://` for files (by default under
    /// `data_dir/blobs`), or `s3://bucket[/prefix]` for an S3 bucket, configured by the usual
    /// AWS variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, and
    /// `AWS_ENDPOINT_URL` for an S3-compatible service). Local copies for media tools go under
    /// `data_dir/cache`.
    pub fn open(url: Option<&str>, data_dir: &Path, media_url: Option<String>) -> Result<Self> {
        let bad = |why: String| ActivityError::bad_request("blobs", why);
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Self::local(data_dir.join("blobs"), media_url);
        };
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(bad(format!(
                    "SLATE_BLOB_URL `{url}` must name an absolute directory: file:///srv/slate/blobs"
                )));
            }
            return Self::local(path, media_url);
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(bad(format!(
                "SLATE_BLOB_URL `{}` is neither file:///path nor s3://bucket[/prefix]",
                url.chars().take(80).collect::<String>()
            )));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if !is_bucket_name(bucket) {
            return Err(bad(format!(
                "SLATE_BLOB_URL: `{bucket}` is not a bucket name (3 to 63 of a-z, 0-9, '-', '.')"
            )));
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() && BlobRef::new(prefix).is_err() {
            return Err(bad(format!(
                "SLATE_BLOB_URL: the prefix `{prefix}` is not a path of letters, digits, -, _, ., /"
            )));
        }
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        // A local S3-compatible service (MinIO, moto, ...) speaks plain HTTP.
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .unwrap_or_default();
        if endpoint.starts_with("http://") {
            b = b.with_allow_http(true);
        }
        let s3 = b.build().map_err(|e| {
            bad(format!(
                "SLATE_BLOB_URL: the S3 store cannot be set up: {e}"
            ))
        })?;
        Ok(Self::s3(s3, prefix, data_dir.join("cache"), media_url))
    }

    /// Blobs in an S3 bucket under `prefix`, which also presigns URLs of its objects for
    /// providers; local copies for media tools under `cache_dir`.
    pub fn s3(s3: AmazonS3, prefix: &str, cache_dir: PathBuf, media_url: Option<String>) -> Self {
        let s3 = Arc::new(s3);
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            s3.clone()
        } else {
            Arc::new(PrefixStore::new(s3.clone(), prefix))
        };
        let mut b = Self::remote(store, cache_dir, media_url);
        b.signer = Some((s3, prefix.to_string()));
        b
    }

    /// Hand providers expiring `/media` URLs under `public_url`, signed with `secret` (for
    /// blobs that are files on this machine, when no `SLATE_MEDIA_URL` is set).
    pub fn with_signed_media(mut self, public_url: Option<String>, secret: Option<Secret>) -> Self {
        self.signed_media = public_url.zip(secret);
        self
    }

    /// How providers will fetch our blobs, in words (for the start banner and `slate doctor`),
    /// or `None` when they cannot.
    pub fn fetch_route(&self) -> Option<&'static str> {
        if self.media_url.is_some() {
            Some("SLATE_MEDIA_URL")
        } else if self.signer.is_some() {
            Some("presigned S3 URLs")
        } else if self.signed_media.is_some() {
            Some("signed /media URLs under SLATE_PUBLIC_URL")
        } else {
            None
        }
    }

    /// Whether blobs are files on this machine (else: a remote store, with local copies).
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

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
            signer: None,
            signed_media: None,
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
            signer: None,
            signed_media: None,
        }
    }

    fn path(r: &BlobRef) -> Result<ObjectPath> {
        ObjectPath::parse(r.key()).map_err(|e| ActivityError::bad_request("blobs", e.to_string()))
    }

    /// Store bytes under `key`.
    pub async fn put(&self, key: &str, bytes: impl Into<Bytes>) -> Result<BlobRef> {
        let r = BlobRef::new(key)?;
        let bytes = bytes.into();
        let put = self
            .store
            .put(&Self::path(&r)?, bytes.clone().into())
            .await
            .map_err(store_error)?;
        if !self.is_local() {
            // This worker will likely read it back (a media tool): keep the copy it already has.
            self.keep_copy(&r, put.e_tag.as_deref(), |p| async move {
                tokio::fs::write(p, &bytes).await
            })
            .await;
        }
        Ok(r)
    }

    /// Store a local file under `key` (the file is left where it is). On a remote store a
    /// large file goes up in parts, never whole in memory.
    pub async fn put_file(&self, key: &str, file: &Path) -> Result<BlobRef> {
        let r = BlobRef::new(key)?;
        if let Some(root) = &self.local_root {
            // Copied beside its place and renamed into it: whole or not at all, and never
            // whole in memory (a film is hundreds of megabytes).
            let dest = root.join(r.key());
            if let Some(dir) = dest.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            let tmp = dest.with_extension(format!(
                "{}.{}.part",
                r.extension(),
                uuid::Uuid::new_v4().simple()
            ));
            if let Err(e) = tokio::fs::copy(file, &tmp).await {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(ActivityError::io(format!(
                    "cannot copy {} into the blob store: {e}",
                    file.display()
                )));
            }
            tokio::fs::rename(&tmp, &dest).await?;
            return Ok(r);
        }
        let mut src = tokio::fs::File::open(file)
            .await
            .map_err(|e| ActivityError::io(format!("cannot read {}: {e}", file.display())))?;
        let mut w = object_store::buffered::BufWriter::with_capacity(
            self.store.clone(),
            Self::path(&r)?,
            PART_BYTES,
        );
        let copied = async {
            tokio::io::copy(&mut src, &mut w).await?;
            w.shutdown().await
        }
        .await;
        if let Err(e) = copied {
            let _ = w.abort().await;
            return Err(ActivityError::new(
                "blobs",
                ErrorKind::Io,
                format!("uploading {} as `{r}` failed: {e}", file.display()),
            )
            .retryable(true));
        }
        let e_tag = self.head(&r).await.ok().and_then(|m| m.e_tag);
        let from = file.to_path_buf();
        self.keep_copy(&r, e_tag.as_deref(), |p| async move {
            tokio::fs::copy(&from, p).await.map(|_| ())
        })
        .await;
        Ok(r)
    }

    /// Where the local copy of a remote blob lives, and the file that records its ETag.
    fn cached(&self, r: &BlobRef) -> (PathBuf, PathBuf) {
        let p = self.cache_dir.join(r.key());
        let tag = self.cache_dir.join(format!("{}.etag", r.key()));
        (p, tag)
    }

    /// Keep a local copy of a remote blob just written (best effort: a failure only costs a
    /// download later).
    async fn keep_copy<F, Fut>(&self, r: &BlobRef, e_tag: Option<&str>, write: F)
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: std::future::Future<Output = std::io::Result<()>>,
    {
        let Some(e_tag) = e_tag else { return };
        let (p, tag) = self.cached(r);
        let tmp = p.with_extension(format!("{}.part", r.extension()));
        let ok = async {
            if let Some(dir) = p.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            write(tmp.clone()).await?;
            tokio::fs::rename(&tmp, &p).await?;
            tokio::fs::write(&tag, e_tag).await
        }
        .await;
        if ok.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
            let _ = tokio::fs::remove_file(&tag).await;
        }
    }

    /// What the store says of a blob.
    pub async fn head(&self, r: &BlobRef) -> Result<BlobMeta> {
        let m = self
            .store
            .head(&Self::path(r)?)
            .await
            .map_err(store_error)?;
        Ok(BlobMeta {
            size: m.size,
            last_modified: m.last_modified,
            e_tag: m.e_tag,
        })
    }

    /// A blob's bytes (those in `range`, or all), streamed from the store.
    pub async fn stream(
        &self,
        r: &BlobRef,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<BlobStream> {
        let got = self
            .store
            .get_opts(
                &Self::path(r)?,
                GetOptions {
                    range: range.map(GetRange::Bounded),
                    ..Default::default()
                },
            )
            .await
            .map_err(store_error)?;
        Ok(got
            .into_stream()
            .map(|c| c.map_err(std::io::Error::other))
            .boxed())
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

    /// Remove a blob (and this worker's copy of it). A blob already gone is no error.
    pub async fn delete(&self, r: &BlobRef) -> Result<()> {
        match self.store.delete(&Self::path(r)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(store_error(e)),
        }
        if !self.is_local() {
            let (p, tag) = self.cached(r);
            let _ = tokio::fs::remove_file(p).await;
            let _ = tokio::fs::remove_file(tag).await;
        }
        Ok(())
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
        // The copy is good while the object is the one it was copied from: a blob made again
        // (a scene generated anew, on any worker) is fetched again.
        let (p, tag) = self.cached(r);
        let now = self.head(r).await?.e_tag;
        let kept = tokio::fs::read_to_string(&tag).await.ok();
        if now.is_some()
            && kept.as_deref() == now.as_deref()
            && tokio::fs::try_exists(&p).await.unwrap_or(false)
        {
            return Ok(p);
        }
        let tmp = p.with_extension(format!("{}.part", r.extension()));
        if let Some(dir) = p.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let mut out = tokio::fs::File::create(&tmp).await?;
        let mut body = self.stream(r, None).await?;
        while let Some(chunk) = body.next().await {
            out.write_all(&chunk?).await?;
        }
        out.flush().await?;
        drop(out);
        tokio::fs::rename(&tmp, &p).await?;
        match now {
            Some(t) => tokio::fs::write(&tag, t).await?,
            None => {
                let _ = tokio::fs::remove_file(&tag).await;
            }
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

    /// A URL a provider can fetch the blob from without our key: under `SLATE_MEDIA_URL`, a
    /// presigned URL of the bucket's object, or a signed, expiring `/media` URL under
    /// `SLATE_PUBLIC_URL`. Never the bytes inline: the spec's services take https URLs. With
    /// none of these configured the start refuses remote services (`slate doctor` says why);
    /// should a call get here anyway, it fails with what to set.
    pub async fn fetch_url(&self, r: &BlobRef) -> Result<String> {
        if let Some(base) = &self.media_url {
            return Ok(format!("{base}/{}", r.key()));
        }
        if let Some((s3, prefix)) = &self.signer {
            use object_store::signer::Signer;
            let key = if prefix.is_empty() {
                r.key().to_string()
            } else {
                format!("{prefix}/{}", r.key())
            };
            let path = ObjectPath::parse(&key)
                .map_err(|e| ActivityError::bad_request("blobs", e.to_string()))?;
            let url = s3
                .signed_url(object_store::signer::Method::GET, &path, FETCH_URL_LIFETIME)
                .await
                .map_err(store_error)?;
            return Ok(url.to_string());
        }
        if let Some((base, secret)) = &self.signed_media {
            let expires = chrono::Utc::now().timestamp() + FETCH_URL_LIFETIME.as_secs() as i64;
            return Ok(format!(
                "{base}/media/{}?expires={expires}&sig={}",
                r.key(),
                media_signature(secret, r.key(), expires)
            ));
        }
        Err(ActivityError::new(
            "blobs",
            ErrorKind::BadRequest,
            "no URL a provider can fetch our images and clips from: set SLATE_PUBLIC_URL (with \
             SLATE_MEDIA_SECRET or SLATE_WEBHOOK_SECRET), SLATE_MEDIA_URL, or keep blobs in S3 \
             (SLATE_BLOB_URL=s3://...); `slate doctor` checks it",
        )
        .retryable(false))
    }

    /// Download `url` (a provider's short-lived result) and keep it under `key`. The body is
    /// streamed to disk: a large clip or film is never whole in memory, and it may take as long
    /// as it takes while bytes keep coming (the client's read timeout ends a stalled one).
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
            // Overrides the client's total timeout: a download is bounded by its progress.
            .timeout(std::time::Duration::from_secs(6 * 3600))
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
        let dir = self.scratch().await?;
        let file = dir.join("download");
        let written = async {
            let mut out = tokio::fs::File::create(&file).await?;
            let mut body = resp.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| crate::http::transport_error(provider, e))?;
                out.write_all(&chunk).await?;
            }
            out.flush().await?;
            Ok::<_, ActivityError>(())
        }
        .await;
        let stored = match written {
            Ok(()) => self.put_file(key, &file).await,
            Err(e) => Err(e),
        };
        let _ = tokio::fs::remove_dir_all(&dir).await;
        stored
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

    #[test]
    fn the_store_is_chosen_by_url_and_a_bad_url_says_why() {
        let dir = std::env::temp_dir().join(format!("slate-open-{}", uuid::Uuid::new_v4()));
        assert!(Blobs::open(None, &dir, None).unwrap().is_local());
        let file = format!("file://{}", dir.join("elsewhere").display());
        assert!(Blobs::open(Some(&file), &dir, None).unwrap().is_local());
        assert!(dir.join("elsewhere").is_dir());
        let s3 = Blobs::open(Some("s3://films-bucket/studio/a"), &dir, None).unwrap();
        assert!(!s3.is_local());
        for (bad, says) in [
            ("ftp://x/y", "neither file:///path nor s3://"),
            ("file://relative/dir", "absolute"),
            ("s3://No_Such", "not a bucket name"),
            ("s3://ok-bucket/../up", "prefix"),
        ] {
            let e = Blobs::open(Some(bad), &dir, None).unwrap_err();
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
        std::fs::remove_dir_all(dir).unwrap();
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
        // No way for a provider to reach a local blob: an error that says what to set.
        let e = blobs.fetch_url(&r).await.unwrap_err();
        assert!(e.message.contains("SLATE_PUBLIC_URL"), "{}", e.message);
        let signed = blobs
            .clone()
            .with_signed_media(Some("https://slate.example".into()), Some(Secret::new("k")));
        let url = signed.fetch_url(&r).await.unwrap();
        let q = url
            .strip_prefix("https://slate.example/media/a/b.txt?expires=")
            .unwrap();
        let (exp, sig) = q.split_once("&sig=").unwrap();
        let exp: i64 = exp.parse().unwrap();
        let now = chrono::Utc::now().timestamp();
        assert!(media_signature_valid(
            &Secret::new("k"),
            "a/b.txt",
            exp,
            sig,
            now
        ));
        assert!(
            !media_signature_valid(&Secret::new("k"), "a/c.txt", exp, sig, now),
            "another key"
        );
        assert!(
            !media_signature_valid(&Secret::new("x"), "a/b.txt", exp, sig, now),
            "another secret"
        );
        assert!(
            !media_signature_valid(&Secret::new("k"), "a/b.txt", exp, sig, exp + 1),
            "expired"
        );
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
