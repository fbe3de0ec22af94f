//! What an operator does to runs: cancel, retry a step, reset to a step, re-drive, budgets and
//! concurrency limits. Behind the admin key.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use slate_engine::{CancelOutcome, RunId};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, RunPath};
use crate::state::AppState;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(cancel_run))
        .routes(routes!(retry_run))
        .routes(routes!(reset_run))
        .routes(routes!(fork_run))
        .routes(routes!(bulk))
        .routes(routes!(set_budget))
        .routes(routes!(redrive))
        .routes(routes!(set_limit))
        .routes(routes!(doctor))
}

/// Which checks.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DoctorQuery {
    /// Only the checks that need no network (what the start checks).
    pub offline: Option<bool>,
}

/// Will the configured providers work: each key, each model served and its price against the
/// table, media the providers can fetch, the public URL and webhook path. Each finding names
/// the variable to set; `ok` is false when something would fail.
#[utoipa::path(get, path = "/api/system/doctor", tag = "admin",
    params(DoctorQuery),
    responses(
        (status = 200, description = "The findings", body = slate_activities::doctor::Report),
    ))]
async fn doctor(
    State(s): State<AppState>,
    q: Result<axum::extract::Query<DoctorQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<slate_activities::doctor::Report>> {
    let offline = q?.0.offline.unwrap_or(false);
    let (settings, blobs) = (&s.film.studio.settings, &s.film.studio.blobs);
    Ok(Json(if offline {
        slate_activities::doctor::Report::of(slate_activities::doctor::offline(
            settings,
            blobs,
            &slate_activities::doctor::today(),
        ))
    } else {
        slate_activities::doctor::run(settings, blobs).await
    }))
}

/// Why.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Kept in the run's history.
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
}

/// A person's reason, or `default`; refused (422) over 2,000 characters, as documented.
fn reason_or(reason: Option<String>, default: &str) -> ApiResult<String> {
    match reason {
        Some(r) if r.chars().count() > 2000 => Err(crate::error::ApiError::unprocessable(
            "`reason` has at most 2000 characters",
        )),
        Some(r) => Ok(r),
        None => Ok(default.to_string()),
    }
}

/// Cancel a run and its children: waiting ones at once, executing ones at their next step.
#[utoipa::path(post, path = "/api/admin/runs/{id}/cancel", tag = "admin",
    params(RunPath), request_body(content = Option<Reason>),
    responses(
        (status = 200, description = "Cancelled or asked to stop", body = CancelOutcome),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 409, description = "The run has finished", body = ErrorBody),
    ))]
async fn cancel_run(
    State(s): State<AppState>,
    Path(p): Path<RunPath>,
    body: Option<JsonBody<Reason>>,
) -> ApiResult<Json<CancelOutcome>> {
    let reason = reason_or(
        body.and_then(|b| b.0.reason),
        "cancelled by an administrator",
    )?;
    let id = p.id()?;
    let out = s.engine.cancel(id, &reason).await?;
    // The project the run worked for goes back to where its documented actions go on (runs
    // still stopping are settled the next time the project is used).
    if let Some(slug) = s
        .engine
        .get(id)
        .await?
        .scope
        .and_then(|sc| slate_workflows::Slug::parse(&sc).ok())
    {
        crate::service::settle(&s, &slug).await?;
    }
    Ok(Json(out))
}

/// Which step to retry.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryBody {
    /// The failed step; when omitted, the failed run is re-driven from where it failed.
    pub step: Option<String>,
    /// Kept in the run's history.
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
}

/// The run goes on.
#[derive(Debug, Serialize, ToSchema)]
pub struct Requeued {
    /// The run.
    pub run_id: RunId,
    /// `pending`: a worker picks it up.
    pub status: String,
    /// The step it runs again from, for a reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_step: Option<String>,
}

/// Retry a failed step with a fresh attempt budget (or re-drive a failed run).
#[utoipa::path(post, path = "/api/admin/runs/{id}/retry", tag = "admin",
    params(RunPath), request_body(content = Option<RetryBody>),
    responses(
        (status = 200, description = "Queued again", body = Requeued),
        (status = 404, description = "No such run or step", body = ErrorBody),
        (status = 409, description = "Nothing to retry: the run or step has not failed", body = ErrorBody),
    ))]
async fn retry_run(
    State(s): State<AppState>,
    Path(p): Path<RunPath>,
    body: Option<JsonBody<RetryBody>>,
) -> ApiResult<Json<Requeued>> {
    let id = p.id()?;
    let b = body.map(|b| b.0).unwrap_or_default();
    let reason = reason_or(b.reason, "retried by an administrator")?;
    match b.step {
        Some(step) => s.engine.retry_step(id, &step, &reason).await?,
        None => s.engine.resume(id, &reason).await?,
    }
    Ok(Json(Requeued {
        run_id: id,
        status: "pending".into(),
        from_step: None,
    }))
}

/// The step to reset to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    /// That step and everything journaled after it runs again.
    pub step: String,
    /// Kept in the run's history.
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
}

/// Reset a run to a step: that step and everything after it runs again.
#[utoipa::path(post, path = "/api/admin/runs/{id}/reset", tag = "admin",
    params(RunPath), request_body = ResetBody,
    responses(
        (status = 200, description = "Queued again", body = Requeued),
        (status = 404, description = "No such run or step", body = ErrorBody),
        (status = 409, description = "The run cannot be reset now", body = ErrorBody),
    ))]
async fn reset_run(
    State(s): State<AppState>,
    Path(p): Path<RunPath>,
    JsonBody(b): JsonBody<ResetBody>,
) -> ApiResult<Json<Requeued>> {
    let id = p.id()?;
    let reason = reason_or(b.reason, "reset by an administrator")?;
    s.engine.reset_to_step(id, &b.step, &reason).await?;
    Ok(Json(Requeued {
        run_id: id,
        status: "pending".into(),
        from_step: Some(b.step),
    }))
}

/// Where to fork from.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForkBody {
    /// The step the new run runs anew from (it keeps what was journaled before it).
    #[schema(min_length = 1, max_length = 500)]
    pub from_step: String,
    /// Kept in the new run's history.
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
}

/// A fork: a new run on the current code.
#[derive(Debug, Serialize, ToSchema)]
pub struct Forked {
    /// The run forked.
    pub from: RunId,
    /// The new run's id.
    pub run_id: RunId,
    /// The new run.
    pub run: slate_engine::RunRecord,
}

/// Fork a stopped top-level run (blocked, failed, cancelled or completed) from a step: a new
/// run of the same workflow and input on the code deployed now, keeping what the old run
/// journaled before that step (not run or paid for again). The way on for a run blocked by a
/// change to its workflow: fork it from the step before the change.
#[utoipa::path(post, path = "/api/admin/runs/{id}/fork", tag = "admin",
    params(RunPath), request_body = ForkBody,
    responses(
        (status = 201, description = "The new run, due now", body = Forked),
        (status = 404, description = "No such run, or no such step in its journal", body = ErrorBody),
        (status = 409, description = "The run is a child run, has not stopped, or another run holds its key", body = ErrorBody),
    ))]
async fn fork_run(
    State(s): State<AppState>,
    Path(p): Path<RunPath>,
    JsonBody(b): JsonBody<ForkBody>,
) -> ApiResult<(axum::http::StatusCode, Json<Forked>)> {
    let id = p.id()?;
    if b.from_step.is_empty() || b.from_step.chars().count() > 500 {
        return Err(ApiError::unprocessable(
            "`from_step` names a step: 1 to 500 characters",
        ));
    }
    if b.reason.as_ref().is_some_and(|r| r.chars().count() > 2000) {
        return Err(ApiError::unprocessable(
            "`reason` has at most 2000 characters",
        ));
    }
    let reason = b.reason.as_deref().unwrap_or("forked by an administrator");
    let run = s.engine.fork(id, &b.from_step, reason).await?;
    if let Some(slug) = run
        .scope
        .as_deref()
        .and_then(|sc| slate_workflows::Slug::parse(sc).ok())
    {
        crate::service::adopt(&s, &slug, &run).await?;
    }
    Ok((
        axum::http::StatusCode::CREATED,
        Json(Forked {
            from: id,
            run_id: run.id,
            run,
        }),
    ))
}

/// What to do to which runs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    /// `cancel` (runs not finished, and blocked ones) or `retry` (failed and blocked runs).
    pub action: BulkAction,
    /// Only this workflow.
    pub workflow: Option<String>,
    /// Only runs started on this version of their workflow.
    #[schema(minimum = 1, maximum = 2147483647)]
    pub version: Option<u32>,
    /// Only runs in this state.
    pub status: Option<slate_engine::RunStatus>,
    /// Kept in each run's history.
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
}

/// A bulk action.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    /// Cancel each run (and its children).
    Cancel,
    /// Retry each run (re-drive it from where it stopped).
    Retry,
}

/// What a bulk action did.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkOutcome {
    /// The runs it was done to.
    pub done: Vec<RunId>,
    /// The runs it could not be done to, and why (one finished meanwhile, say).
    pub skipped: Vec<BulkSkip>,
}

/// A run a bulk action left.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkSkip {
    /// The run.
    pub run_id: RunId,
    /// Why.
    pub reason: String,
}

/// Cancel or retry every run a filter selects (by workflow, version, status; at least one):
/// drain the runs of an old version, or retry every run a deploy blocked once the fix is out.
#[utoipa::path(post, path = "/api/admin/runs/bulk", tag = "admin",
    request_body = BulkBody,
    responses(
        (status = 200, description = "Done", body = BulkOutcome),
        (status = 409, description = "No selection: a bulk action must select by workflow, version or status", body = ErrorBody),
        (status = 422, description = "A malformed selection (version 0, an unknown state)", body = ErrorBody),
    ))]
async fn bulk(
    State(s): State<AppState>,
    JsonBody(b): JsonBody<BulkBody>,
) -> ApiResult<Json<BulkOutcome>> {
    if b.reason.as_ref().is_some_and(|r| r.chars().count() > 2000) {
        return Err(ApiError::unprocessable(
            "`reason` has at most 2000 characters",
        ));
    }
    if b.version.is_some_and(|v| v == 0 || v > i32::MAX as u32) {
        return Err(ApiError::unprocessable(
            "`version` is numbered from 1 to 2147483647 (a workflow's first version is 1)",
        ));
    }
    if b.workflow.is_none() && b.version.is_none() && b.status.is_none() {
        // Every run at once is never what a bulk action means: refused until one is selected.
        return Err(ApiError::conflict(
            "a bulk action must select runs by workflow, version or status (or several); it never applies to every run",
        ));
    }
    let filter = slate_engine::RunFilter {
        workflow: b.workflow,
        workflow_version: b.version,
        status: b.status,
        ..Default::default()
    };
    let reason = b.reason.unwrap_or_else(|| match b.action {
        BulkAction::Cancel => "cancelled in bulk by an administrator".into(),
        BulkAction::Retry => "retried in bulk by an administrator".into(),
    });
    let (done, skipped) =
        crate::service::bulk(&s, &filter, b.action == BulkAction::Retry, &reason).await?;
    Ok(Json(BulkOutcome {
        done,
        skipped: skipped
            .into_iter()
            .map(|(run_id, reason)| BulkSkip { run_id, reason })
            .collect(),
    }))
}

/// A budget.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetBody {
    /// Dollars; null removes the budget.
    #[schema(minimum = 0)]
    pub usd: Option<f64>,
}

/// A run's budget.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetSet {
    /// The run.
    pub run_id: RunId,
    /// Its budget, dollars.
    pub budget_usd: Option<f64>,
}

/// Set a run's budget (on its root: it covers the whole tree).
#[utoipa::path(put, path = "/api/admin/runs/{id}/budget", tag = "admin",
    params(RunPath), request_body = BudgetBody,
    responses(
        (status = 200, description = "Set", body = BudgetSet),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 409, description = "A child run: budgets are set on its top-level run (the message names it)", body = ErrorBody),
    ))]
async fn set_budget(
    State(s): State<AppState>,
    Path(p): Path<RunPath>,
    JsonBody(b): JsonBody<BudgetBody>,
) -> ApiResult<Json<BudgetSet>> {
    let id = p.id()?;
    s.engine.set_budget(id, b.usd).await?;
    Ok(Json(BudgetSet {
        run_id: id,
        budget_usd: b.usd,
    }))
}

/// A workflow.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WorkflowPath {
    /// Its name.
    pub workflow: String,
}

/// What a re-drive did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Redriven {
    /// The workflow.
    pub workflow: String,
    /// The runs queued again.
    pub redriven: Vec<RunId>,
}

/// Re-drive every failed run of a workflow.
#[utoipa::path(post, path = "/api/admin/workflows/{workflow}/redrive", tag = "admin",
    params(WorkflowPath),
    responses(
        (status = 200, description = "Queued again", body = Redriven),
        (status = 404, description = "No such workflow", body = ErrorBody),
    ))]
async fn redrive(
    State(s): State<AppState>,
    Path(p): Path<WorkflowPath>,
) -> ApiResult<Json<Redriven>> {
    if !s.engine.workflows().contains(&p.workflow) {
        return Err(ApiError::not_found(format!(
            "workflow `{}` not found",
            p.workflow
        )));
    }
    let redriven = s
        .engine
        .redrive_failed(&p.workflow, "re-driven by an administrator")
        .await?;
    Ok(Json(Redriven {
        workflow: p.workflow,
        redriven,
    }))
}

/// A concurrency key.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPath {
    /// `fal`, `video`, `openrouter`... (see the README).
    #[param(min_length = 1, max_length = 100)]
    pub key: String,
}

/// A limit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitBody {
    /// Steps holding this key at once, 1-10000; null removes the limit.
    #[schema(minimum = 1, maximum = 10000)]
    pub max: Option<u32>,
}

/// Concurrency keys after the change.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitSet {
    /// The key.
    pub key: String,
    /// Its limit.
    pub max: Option<u32>,
    /// Every key's slots in use now.
    pub usage: Vec<KeyUsage>,
}

/// A concurrency key's use.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyUsage {
    /// The key.
    pub key: String,
    /// Slots held now.
    pub held: i64,
    /// Its limit, if it has one.
    pub max: Option<i64>,
}

/// Set a concurrency key's limit.
#[utoipa::path(put, path = "/api/admin/concurrency/{key}", tag = "admin",
    params(KeyPath), request_body = LimitBody,
    responses((status = 200, description = "Set", body = LimitSet)))]
async fn set_limit(
    State(s): State<AppState>,
    Path(p): Path<KeyPath>,
    JsonBody(b): JsonBody<LimitBody>,
) -> ApiResult<Json<LimitSet>> {
    s.engine.set_concurrency_limit(&p.key, b.max).await?;
    let usage = s.engine.store().concurrency_usage().await?;
    Ok(Json(LimitSet {
        key: p.key,
        max: b.max,
        usage: usage
            .into_iter()
            .map(|(key, held, max)| KeyUsage { key, held, max })
            .collect(),
    }))
}
