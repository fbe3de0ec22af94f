//! Blobs (images, clips, films) served from the blob store by tower-http: ranges, `HEAD`,
//! `Last-Modified` and conditional requests, streamed so a film never sits in memory.

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

use crate::app::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};

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
