//! What handlers share: a JSON body extractor whose rejections are our JSON errors, path
//! parameters validated once, and the small answers several routes give.

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use slate_engine::RunId;
use slate_workflows::Slug;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};

/// The pattern of a project slug (see [`Slug::parse`], which is what enforces it).
pub const SLUG_PATTERN: &str = "^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$";
/// The pattern of a collection name (see [`slate_workflows::slug::collection`]).
pub const COLLECTION_PATTERN: &str = "^[a-z][a-z0-9_]{0,63}$";

/// A JSON body. A body that is not JSON is a 400, one of the wrong shape a 422, one without
/// `Content-Type: application/json` a 415 and one over the limit a 413, each with our JSON error.
///
/// JSON has one number type: `5.0` is the integer 5 to JSON Schema (and so to our OpenAPI
/// document), so integral floats are read as integers before the body meets its Rust type.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(v) = Json::<Value>::from_request(req, state).await?;
        typed(v).map(JsonBody)
    }
}

fn typed<T: DeserializeOwned>(mut v: Value) -> ApiResult<T> {
    // Every body of this API is an object; serde would also read a struct from an array.
    if !v.is_object() {
        return Err(ApiError::unprocessable(
            "the body must be a JSON object (GET /openapi.json describes each one)",
        ));
    }
    integral_floats_as_integers(&mut v);
    serde_json::from_value(v)
        .map_err(|e| ApiError::unprocessable(format!("the body does not fit: {e}")))
}

fn integral_floats_as_integers(v: &mut Value) {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(o) => o.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// An optional JSON body: none when the request has no body at all, or the body is `null`.
impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let h = req.headers();
        let empty = h
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0")
            || (!h.contains_key(header::CONTENT_TYPE)
                && !h.contains_key(header::TRANSFER_ENCODING)
                && !h.contains_key(header::CONTENT_LENGTH));
        if empty {
            return Ok(None);
        }
        let Json(v) = <Json<Value> as FromRequest<S>>::from_request(req, state).await?;
        if v.is_null() {
            return Ok(None);
        }
        typed(v).map(|t| Some(JsonBody(t)))
    }
}

/// A project slug in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SlugPath {
    /// The project's slug.
    #[param(
        pattern = "^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$",
        example = "lantern-keeper"
    )]
    pub slug: String,
}

impl SlugPath {
    /// The validated slug.
    pub fn slug(&self) -> ApiResult<Slug> {
        slug(&self.slug)
    }
}

/// A run id in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RunPath {
    /// The run's id.
    #[param(format = Uuid)]
    pub id: String,
}

impl RunPath {
    /// The parsed id.
    pub fn id(&self) -> ApiResult<RunId> {
        run_id(&self.id)
    }
}

/// Validate a slug.
pub fn slug(s: &str) -> ApiResult<Slug> {
    Ok(Slug::parse(s)?)
}

/// Parse a run id.
pub fn run_id(s: &str) -> ApiResult<RunId> {
    s.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "`{}` is not a run id (a UUID)",
            s.chars().take(60).collect::<String>()
        ))
    })
}

/// 201 with a JSON body.
pub fn created(v: impl Serialize) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

/// 202 with a JSON body.
pub fn accepted(v: impl Serialize) -> Response {
    (StatusCode::ACCEPTED, Json(v)).into_response()
}

/// A run was started.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunStarted {
    /// Follow it at `/api/runs/{run_id}`.
    pub run_id: RunId,
}
