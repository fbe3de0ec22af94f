//! Global errors: what went wrong anywhere, newest first, until a person dismisses it.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use slate_workflows::model::GlobalError;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_errors))
        .routes(routes!(dismiss_error))
}

/// Which errors.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ErrorsQuery {
    /// Dismissed ones too.
    pub all: Option<bool>,
}

/// Global errors.
#[derive(Debug, Serialize, ToSchema)]
pub struct Errors {
    /// Newest first.
    pub errors: Vec<GlobalError>,
}

/// Global errors, newest first (open ones unless `all`).
#[utoipa::path(get, path = "/api/errors", tag = "errors", params(ErrorsQuery),
    responses(
        (status = 200, description = "Newest first", body = Errors),
        (status = 400, description = "A bad query string", body = ErrorBody),
    ))]
async fn list_errors(
    State(s): State<AppState>,
    q: Result<Query<ErrorsQuery>, QueryRejection>,
) -> ApiResult<Json<Errors>> {
    let Query(q) = q?;
    Ok(Json(Errors {
        errors: s.film.repo.errors(q.all.unwrap_or(false)).await?,
    }))
}

/// A global error.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ErrorPath {
    /// Its id.
    pub id: String,
}

/// A dismissed error.
#[derive(Debug, Serialize, ToSchema)]
pub struct Dismissed {
    /// Its id.
    pub id: String,
    /// True.
    pub dismissed: bool,
}

/// Dismiss a global error.
#[utoipa::path(post, path = "/api/errors/{id}/dismiss", tag = "errors", params(ErrorPath),
    responses(
        (status = 200, description = "Dismissed", body = Dismissed),
        (status = 404, description = "No such error", body = ErrorBody),
    ))]
async fn dismiss_error(
    State(s): State<AppState>,
    Path(p): Path<ErrorPath>,
) -> ApiResult<Json<Dismissed>> {
    s.film.repo.dismiss_error(&p.id).await?;
    Ok(Json(Dismissed {
        id: p.id,
        dismissed: true,
    }))
}
