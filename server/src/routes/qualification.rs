//! Qualification: start it (behind the readiness gate), end or stop its edit window, reopen the
//! gather after a failed attempt.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;
use slate_engine::RunId;
use slate_workflows::qualification::{self, EDIT_WINDOW_SIGNAL, Reopened};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, SlugPath, accepted};
use crate::state::AppState;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(qualify))
        .routes(routes!(qualify_continue))
        .routes(routes!(qualify_stop))
        .routes(routes!(reopen_gather))
}

/// How to qualify.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QualifyBody {
    /// Seconds a person has to stop and edit before the departments start (the server's
    /// default when omitted).
    #[serde(
        default,
        deserialize_with = "slate_workflows::qualification::edit_window"
    )]
    #[schema(maximum = 604800)]
    pub edit_window_secs: Option<u64>,
    /// Qualify even though a department is short of the readiness threshold.
    #[serde(default)]
    pub force: bool,
    /// Stop the run before a step once this many dollars are spent.
    #[schema(minimum = 0)]
    pub budget_usd: Option<f64>,
}

/// A qualification started.
#[derive(Debug, Serialize, ToSchema)]
pub struct QualifyStarted {
    /// The qualification run.
    pub run_id: RunId,
    /// Its edit window.
    pub edit_window_secs: u64,
    /// POST here to end the window now.
    #[serde(rename = "continue")]
    pub continue_url: String,
    /// POST here to stop and go back to editing.
    pub stop: String,
}

pub(crate) use crate::service::active_run;

/// Start qualification: the edit window, then the departments (phases A-D). Refused with 409
/// while a department is short of the readiness threshold, unless `force`.
#[utoipa::path(post, path = "/api/projects/{slug}/qualify", tag = "qualification",
    params(SlugPath), request_body(content = Option<QualifyBody>),
    responses(
        (status = 202, description = "Started", body = QualifyStarted),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 409, description = "Already under way, the project is not gathering, or it is not ready: the message names what is missing (or send force)", body = ErrorBody),
    ))]
async fn qualify(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
    body: Option<JsonBody<QualifyBody>>,
) -> ApiResult<Response> {
    let slug = p.slug()?;
    let body = body.map(|b| b.0).unwrap_or_default();
    let window = body
        .edit_window_secs
        .unwrap_or(s.config.edit_window.as_secs());
    let started = crate::service::qualify(
        &s,
        &slug,
        crate::service::StartRequest {
            force: body.force,
            edit_window_secs: Some(window),
            budget_usd: body.budget_usd,
            idempotency_key: None,
        },
    )
    .await?;
    Ok(accepted(QualifyStarted {
        run_id: started.run.id,
        edit_window_secs: window,
        continue_url: format!("/api/projects/{slug}/qualify/continue"),
        stop: format!("/api/projects/{slug}/qualify/stop"),
    }))
}

/// What an edit-window action did.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowAction {
    /// The qualification run.
    pub run_id: RunId,
    /// `continue` or `stop`.
    pub action: String,
    /// True when this action had been sent already.
    pub duplicate: bool,
}

async fn edit_window(s: &AppState, p: &SlugPath, action: &str) -> ApiResult<Json<WindowAction>> {
    let slug = p.slug()?;
    let project = s.film.repo.project(&slug).await?;
    let Some(run) = active_run(s, project.qualification_run.as_ref()).await? else {
        return Err(ApiError::conflict(format!(
            "`{slug}` has no qualification waiting in its edit window"
        )));
    };
    let out = s
        .engine
        .signal(
            Some(run.id),
            EDIT_WINDOW_SIGNAL,
            Some(action.to_string()),
            json!({"action": action}),
        )
        .await?;
    Ok(Json(WindowAction {
        run_id: run.id,
        action: action.to_string(),
        duplicate: out.duplicate,
    }))
}

/// End the edit window now: the departments start.
#[utoipa::path(post, path = "/api/projects/{slug}/qualify/continue", tag = "qualification",
    params(SlugPath),
    responses(
        (status = 200, description = "Sent", body = WindowAction),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 409, description = "No qualification is under way", body = ErrorBody),
    ))]
async fn qualify_continue(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
) -> ApiResult<Json<WindowAction>> {
    edit_window(&s, &p, "continue").await
}

/// Stop qualification in its edit window, to edit the gather.
#[utoipa::path(post, path = "/api/projects/{slug}/qualify/stop", tag = "qualification",
    params(SlugPath),
    responses(
        (status = 200, description = "Sent", body = WindowAction),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 409, description = "No qualification is under way", body = ErrorBody),
    ))]
async fn qualify_stop(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
) -> ApiResult<Json<WindowAction>> {
    edit_window(&s, &p, "stop").await
}

/// Why the gather is reopened.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenBody {
    /// Kept in the project's events.
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
}

/// Reopen the gather for edits after a failed or stopped qualification (what it qualified is
/// removed). Refused while a qualification is active or after one completed.
#[utoipa::path(post, path = "/api/projects/{slug}/reopen", tag = "qualification",
    params(SlugPath), request_body(content = Option<ReopenBody>),
    responses(
        (status = 200, description = "Reopened", body = Reopened),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 409, description = "A qualification is active or completed, or the gather is open", body = ErrorBody),
    ))]
async fn reopen_gather(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
    body: Option<JsonBody<ReopenBody>>,
) -> ApiResult<Json<Reopened>> {
    let slug = p.slug()?;
    let body = body.map(|b| b.0).unwrap_or_default();
    crate::service::settle(&s, &slug).await?;
    let out =
        qualification::reopen_gather(&s.film, &s.engine, &slug, body.reason.as_deref()).await?;
    Ok(Json(out))
}
