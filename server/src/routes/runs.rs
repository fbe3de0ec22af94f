//! Runs of any workflow: start, list, inspect, their history, signals.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use slate_engine::store::SignalOutcome;
use slate_engine::{
    EventRecord, RunDetail, RunFilter, RunId, RunRecord, RunStatus, StartOptions, Started,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, RunPath, run_id};
use crate::state::AppState;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_run, list_runs))
        .routes(routes!(inspect_run))
        .routes(routes!(run_events))
        .routes(routes!(signal_run))
}

/// A run to start.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// A registered workflow (`GET /api/workflows`).
    pub workflow: String,
    /// The workflow's input.
    #[serde(default)]
    pub input: Value,
    /// Starting again with the same key returns the first run (200) instead of a new one.
    pub idempotency_key: Option<String>,
    /// Free-form grouping (the film pipeline uses the project slug).
    pub scope: Option<String>,
    /// Stop the run before a step once this many dollars are spent.
    pub budget_usd: Option<f64>,
}

/// One variant per registered workflow, so the document says which input each one takes.
impl utoipa::PartialSchema for StartRun {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let variants: Vec<Value> = slate_workflows::catalog()
            .into_iter()
            .map(|(name, input)| {
                json!({
                    "type": "object",
                    "required": ["workflow", "input"],
                    "additionalProperties": false,
                    "properties": {
                        "workflow": {"type": "string", "enum": [name], "description": "The workflow."},
                        "input": input,
                        "idempotency_key": {"type": ["string", "null"], "minLength": 1, "maxLength": 200,
                            "description": "Starting again with the same key returns the first run (200) instead of a new one."},
                        "scope": {"type": ["string", "null"], "maxLength": 200,
                            "description": "Free-form grouping (the film pipeline uses the project slug)."},
                        "budget_usd": {"type": ["number", "null"], "minimum": 0,
                            "description": "Stop the run before a step once this many dollars are spent."},
                    },
                })
            })
            .collect();
        serde_json::from_value(json!({
            "description": "A run of a registered workflow (GET /api/workflows) with its input.",
            "oneOf": variants,
        }))
        .expect("a valid schema")
    }
}

impl utoipa::ToSchema for StartRun {
    fn schemas(
        out: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        slate_workflows::catalog_components(out);
    }
}

/// Start a run of any registered workflow (idempotent by key).
#[utoipa::path(post, path = "/api/runs", tag = "runs", request_body = StartRun,
    responses(
        (status = 201, description = "Started", body = Started),
        (status = 200, description = "A run with this idempotency key exists: that run", body = Started),
        (status = 404, description = "A project workflow's project does not exist", body = ErrorBody),
        (status = 409, description = "Another run of this workflow holds the same key (one qualification, film or production per project, one generation per scene, at a time), or the project's own route would refuse the start (its status, readiness or budget): the message says why", body = ErrorBody),
        (status = 422, description = "Unknown workflow, input that does not fit it, a project workflow scoped to another project, or `film.scene` (started by its film or POST /api/scenes/{id}/generate)", body = ErrorBody),
    ))]
async fn start_run(
    State(s): State<AppState>,
    JsonBody(b): JsonBody<StartRun>,
) -> ApiResult<Response> {
    bounded("idempotency_key", b.idempotency_key.as_deref(), 1)?;
    bounded("scope", b.scope.as_deref(), 0)?;
    let started = match project_start(&s, &b).await? {
        Some(started) => started,
        None => generic_start(&s, b).await?,
    };
    let status = if started.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(started)).into_response())
}

/// The film pipeline's project workflows start through their use cases, whichever door is
/// used: the same checks as the project's own routes, the same project link. A scene's
/// generation has its own route, named in the refusal.
async fn project_start(s: &AppState, b: &StartRun) -> ApiResult<Option<Started>> {
    use slate_workflows::generation::FilmInput;
    use slate_workflows::names::workflow;
    use slate_workflows::production::ProduceInput;
    use slate_workflows::qualification::QualifyInput;

    let wf = b.workflow.as_str();
    if ![
        workflow::QUALIFY,
        workflow::GENERATE,
        workflow::PRODUCE,
        workflow::SCENE,
    ]
    .contains(&wf)
    {
        return Ok(None);
    }
    let invalid = |e: serde_json::Error| {
        ApiError::unprocessable(format!("the input of `{wf}` does not fit it: {e}"))
    };
    let scoped = |project: &slate_workflows::Slug| -> ApiResult<()> {
        match &b.scope {
            Some(scope) if scope != project.as_str() => Err(ApiError::unprocessable(format!(
                "`{wf}` runs are scoped to their project: scope `{scope}` is not `{project}` (leave scope out)"
            ))),
            _ => Ok(()),
        }
    };
    let req = crate::service::StartRequest {
        budget_usd: b.budget_usd,
        idempotency_key: b.idempotency_key.clone(),
        ..Default::default()
    };
    let started = if wf == workflow::QUALIFY {
        let i: QualifyInput = serde_json::from_value(b.input.clone()).map_err(invalid)?;
        scoped(&i.project)?;
        crate::service::qualify(
            s,
            &i.project,
            crate::service::StartRequest {
                edit_window_secs: i.edit_window_secs,
                ..req
            },
        )
        .await?
    } else if wf == workflow::GENERATE {
        let i: FilmInput = serde_json::from_value(b.input.clone()).map_err(invalid)?;
        scoped(&i.project)?;
        let project = i.project.clone();
        crate::service::generate(s, &project, Some(i), req).await?
    } else if wf == workflow::PRODUCE {
        let i: ProduceInput = serde_json::from_value(b.input.clone()).map_err(invalid)?;
        scoped(&i.project)?;
        crate::service::produce(
            s,
            &i.project,
            crate::service::StartRequest {
                edit_window_secs: i.edit_window_secs,
                ..req
            },
        )
        .await?
    } else {
        return Err(ApiError::unprocessable(format!(
            "`{wf}` runs are started by their film, or for one scene by POST /api/scenes/{{id}}/generate"
        )));
    };
    Ok(Some(started))
}

/// Any other registered workflow, started as asked.
async fn generic_start(s: &AppState, b: StartRun) -> ApiResult<Started> {
    Ok(s.engine
        .start_raw(
            &b.workflow,
            b.input,
            StartOptions {
                idempotency_key: b.idempotency_key,
                scope: b.scope,
                budget_usd: b.budget_usd,
                ..Default::default()
            },
        )
        .await?)
}

/// An optional text field of `min`-200 characters.
fn bounded(field: &str, v: Option<&str>, min: usize) -> ApiResult<()> {
    match v {
        Some(v) if v.chars().count() < min || v.chars().count() > 200 => Err(
            ApiError::unprocessable(format!("{field} has {min} to 200 characters")),
        ),
        _ => Ok(()),
    }
}

/// Which runs to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    /// Only this workflow.
    pub workflow: Option<String>,
    /// Only runs in this state.
    pub status: Option<RunStatus>,
    /// Only runs of this project (scope).
    pub project: Option<String>,
    /// Only children of this run.
    #[param(format = Uuid)]
    pub parent: Option<String>,
    /// Only runs started on this version of their workflow's definition.
    #[param(minimum = 1)]
    pub version: Option<i32>,
    /// Only runs that reached the patch point of this name.
    pub patch: Option<String>,
    /// Page size, 1-500 (50 when omitted).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The previous page's `next_before`.
    #[param(format = Uuid)]
    pub before: Option<String>,
}

/// A page of runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// Newest first.
    pub runs: Vec<RunRecord>,
    /// Pass as `before` for the next page; null on the last.
    pub next_before: Option<RunId>,
}

/// List runs, newest first, a page at a time.
#[utoipa::path(get, path = "/api/runs", tag = "runs", params(RunQuery),
    responses(
        (status = 200, description = "A page", body = RunPage),
        (status = 400, description = "A bad filter", body = ErrorBody),
    ))]
async fn list_runs(
    State(s): State<AppState>,
    q: Result<Query<RunQuery>, QueryRejection>,
) -> ApiResult<Json<RunPage>> {
    let Query(q) = q?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > 500 {
        return Err(ApiError::bad_request("limit is 1 to 500"));
    }
    if q.version.is_some_and(|v| v < 1) {
        return Err(ApiError::bad_request(
            "version is 1 or more: a workflow's definitions are numbered from 1",
        ));
    }
    let filter = RunFilter {
        workflow: q.workflow,
        status: q.status,
        scope: q.project,
        parent_id: q.parent.as_deref().map(run_id).transpose()?,
        workflow_version: q.version.map(|v| v as u32),
        patch: q.patch,
        limit: Some(limit),
        before: q.before.as_deref().map(run_id).transpose()?,
    };
    let runs = s.engine.list(&filter).await?;
    let next_before = (runs.len() == limit as usize)
        .then(|| runs.last().map(|r| r.id))
        .flatten();
    Ok(Json(RunPage { runs, next_before }))
}

/// A run: status, current step, steps with attempts, timings, errors and cost, history, budget.
#[utoipa::path(get, path = "/api/runs/{id}", tag = "runs", params(RunPath),
    responses(
        (status = 200, description = "The run", body = RunDetail),
        (status = 404, description = "No such run", body = ErrorBody),
    ))]
async fn inspect_run(
    State(s): State<AppState>,
    Path(p): Path<RunPath>,
) -> ApiResult<Json<RunDetail>> {
    Ok(Json(s.engine.inspect(p.id()?).await?))
}

/// A run's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunEvents {
    /// Oldest first.
    pub events: Vec<EventRecord>,
}

/// A run's append-only history.
#[utoipa::path(get, path = "/api/runs/{id}/events", tag = "runs", params(RunPath),
    responses(
        (status = 200, description = "Oldest first", body = RunEvents),
        (status = 404, description = "No such run", body = ErrorBody),
    ))]
async fn run_events(
    State(s): State<AppState>,
    Path(p): Path<RunPath>,
) -> ApiResult<Json<RunEvents>> {
    let id = p.id()?;
    s.engine.get(id).await?;
    Ok(Json(RunEvents {
        events: s.engine.store().events(id).await?,
    }))
}

/// A signal's run and name.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SignalPath {
    /// The run's id.
    #[param(format = Uuid)]
    pub id: String,
    /// The signal's name (what the run waits for).
    #[param(min_length = 1, max_length = 300)]
    pub name: String,
}

/// A signal.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalBody {
    /// A second signal with the same key is a duplicate and wakes nothing.
    #[schema(min_length = 1, max_length = 200)]
    pub event_key: Option<String>,
    /// What the waiting run receives.
    #[serde(default)]
    pub payload: Value,
}

/// Send a signal to a run.
#[utoipa::path(post, path = "/api/runs/{id}/signals/{name}", tag = "runs",
    params(SignalPath), request_body = SignalBody,
    responses(
        (status = 200, description = "Stored (or a duplicate)", body = SignalOutcome),
        (status = 404, description = "No such run", body = ErrorBody),
    ))]
async fn signal_run(
    State(s): State<AppState>,
    Path(p): Path<SignalPath>,
    JsonBody(b): JsonBody<SignalBody>,
) -> ApiResult<Json<SignalOutcome>> {
    bounded("event_key", b.event_key.as_deref(), 1)?;
    Ok(Json(
        s.engine
            .signal(Some(run_id(&p.id)?), &p.name, b.event_key, b.payload)
            .await?,
    ))
}
