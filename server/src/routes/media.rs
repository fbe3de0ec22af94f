//! Blobs (images, clips, films) served from the blob store: ranges, `HEAD`, `Last-Modified`
//! and conditional requests, streamed so a film never sits in memory. Files are served by
//! tower-http; a remote store (S3) is streamed from the store itself, a range at a time.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use slate_activities::BlobRef;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(media))
}

/// A blob.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MediaPath {
    /// The blob's key, as scenes and projects give it (`projects/<slug>/scenes/<id>/clip.mp4`):
    /// a relative path of letters, digits, `-`, `_` and `.`.
    #[param(
        pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$",
        max_length = 512
    )]
    pub key: String,
}

/// A blob (image, clip, film), with range requests.
#[utoipa::path(get, path = "/media/{*key}", tag = "media", params(MediaPath),
    responses(
        (status = 200, description = "The whole blob", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "The range asked for", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "Not modified since `If-Modified-Since`"),
        (status = 404, description = "No such blob", body = ErrorBody),
        (status = 416, description = "The range is outside the blob", body = ErrorBody),
    ))]
async fn media(
    State(s): State<AppState>,
    Path(p): Path<MediaPath>,
    req: Request,
) -> ApiResult<Response> {
    let blob = BlobRef::new(&p.key).map_err(|e| ApiError::bad_request(e.message))?;
    if !s.film.studio.blobs.is_local() {
        return remote(&s, &blob, req.method().clone(), req.headers().clone()).await;
    }
    let path = match s.film.studio.blobs.local_path(&blob).await {
        Ok(path) => path,
        Err(e) if e.kind == slate_activities::ErrorKind::NotFound => {
            return Err(ApiError::not_found(format!("media `{}` not found", p.key)));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let mime = HeaderValue::from_static(blob.content_type());
    let res = ServeFile::new(path)
        .oneshot(req)
        .await
        .map_err(ApiError::internal)?;
    let (mut parts, body) = res.into_parts();
    match parts.status {
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let len = parts
                .headers
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit('/').next())
                .unwrap_or("?")
                .to_string();
            let mut res = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range",
                format!("the range asked for is outside the blob's {len} bytes"),
            )
            .into_response();
            if let Some(cr) = parts.headers.get(header::CONTENT_RANGE) {
                res.headers_mut().insert(header::CONTENT_RANGE, cr.clone());
            }
            Ok(res)
        }
        StatusCode::NOT_FOUND => Err(ApiError::not_found(format!("media `{}` not found", p.key))),
        _ => {
            // Our content type, from the key, not a guess from the file system.
            if parts.headers.contains_key(header::CONTENT_TYPE) {
                parts.headers.insert(header::CONTENT_TYPE, mime);
            }
            Ok(Response::from_parts(parts, Body::new(body)))
        }
    }
}

/// The byte range a `Range` header asks for in a blob of `size` bytes: `None` for the whole
/// blob (no header, or one we do not serve partially, such as several ranges), `Err` when it
/// lies outside the blob.
fn range_of(header: Option<&str>, size: u64) -> Result<Option<std::ops::Range<u64>>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let r = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) if a <= b => a..(b + 1).min(size),
        (Ok(a), Err(_)) if b.is_empty() => a..size,
        (Err(_), Ok(n)) if a.is_empty() => size.saturating_sub(n)..size,
        _ => return Ok(None),
    };
    if r.start >= size || r.is_empty() {
        return Err(());
    }
    Ok(Some(r))
}

/// A blob of a remote store, streamed from it.
async fn remote(
    s: &AppState,
    blob: &BlobRef,
    method: axum::http::Method,
    h: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let blobs = &s.film.studio.blobs;
    let meta = match blobs.head(blob).await {
        Ok(m) => m,
        Err(e) if e.kind == slate_activities::ErrorKind::NotFound => {
            return Err(ApiError::not_found(format!("media `{blob}` not found")));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let modified = httpdate(meta.last_modified);
    let fresh = match (h.get(header::IF_NONE_MATCH), &meta.e_tag) {
        (Some(inm), Some(tag)) => inm
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim() == tag)),
        _ => h
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
            .is_some_and(|since| meta.last_modified.timestamp() <= since.timestamp()),
    };
    let mut res = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::LAST_MODIFIED, &modified)
        .header(header::CONTENT_TYPE, blob.content_type());
    if let Some(tag) = &meta.e_tag {
        res = res.header(header::ETAG, tag);
    }
    if fresh {
        return res
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(ApiError::internal);
    }
    let range = h.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = match range_of(range, meta.size) {
        Ok(r) => r,
        Err(()) => {
            let mut e = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range",
                format!(
                    "the range asked for is outside the blob's {} bytes",
                    meta.size
                ),
            )
            .into_response();
            e.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{}", meta.size))
                    .map_err(ApiError::internal)?,
            );
            return Ok(e);
        }
    };
    let (status, len) = match &range {
        Some(r) => {
            res = res.header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size),
            );
            (StatusCode::PARTIAL_CONTENT, r.end - r.start)
        }
        None => (StatusCode::OK, meta.size),
    };
    res = res.status(status).header(header::CONTENT_LENGTH, len);
    if method == axum::http::Method::HEAD {
        return res.body(Body::empty()).map_err(ApiError::internal);
    }
    let body = blobs
        .stream(blob, range)
        .await
        .map_err(ApiError::internal)?;
    res.body(Body::from_stream(body))
        .map_err(ApiError::internal)
}

/// An HTTP date (`Tue, 01 Dec 2026 10:00:00 GMT`).
fn httpdate(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use super::range_of;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(range_of(None, 10), Ok(None));
        assert_eq!(range_of(Some("bytes=0-3"), 10), Ok(Some(0..4)));
        assert_eq!(range_of(Some("bytes=5-"), 10), Ok(Some(5..10)));
        assert_eq!(range_of(Some("bytes=-3"), 10), Ok(Some(7..10)));
        assert_eq!(range_of(Some("bytes=8-100"), 10), Ok(Some(8..10)));
        assert_eq!(range_of(Some("bytes=-30"), 10), Ok(Some(0..10)));
        assert_eq!(range_of(Some("bytes=10-"), 10), Err(()));
        assert_eq!(range_of(Some("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(range_of(Some("bytes=5-2"), 10), Ok(None));
        assert_eq!(range_of(Some("items=0-1"), 10), Ok(None));
    }
}
