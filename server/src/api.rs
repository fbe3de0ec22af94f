//! The HTTP API's handlers and their routes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use slate_activities::BlobRef;
use slate_activities::remote::fal::FalWebhook;
use slate_engine::{RunFilter, RunId, RunStatus, StartOptions};
use slate_workflows::docstore::Namespace;
use slate_workflows::generation::{
    FilmGeneration, FilmInput, PreviousScene, ProduceInput, Production, SceneGeneration, SceneInput,
};
use slate_workflows::model::{ProjectStatus, PromptTemplate, SceneStatus};
use slate_workflows::qualification::{EDIT_WINDOW_SIGNAL, Qualification, QualifyInput};
use slate_workflows::repo::CharacterReference;
use slate_workflows::{Slug, qualification};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::app::{Access, AppState, Doc, Routes, openapi, same_secret};
use crate::error::{ApiError, ApiResult};

/// JSON body extractor whose rejections are our JSON errors.
pub struct Body2<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body2<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(v) = Json::<T>::from_request(req, state).await?;
        Ok(Body2(v))
    }
}

/// An optional JSON body: none when the request has no body at all.
impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for Body2<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0")
            || (!req.headers().contains_key(header::CONTENT_TYPE)
                && !req.headers().contains_key(header::TRANSFER_ENCODING)
                && !req.headers().contains_key(header::CONTENT_LENGTH));
        if empty {
            return Ok(None);
        }
        <Body2<T> as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}

fn slug(s: &str) -> ApiResult<Slug> {
    Ok(Slug::parse(s)?)
}

fn run_id(s: &str) -> ApiResult<RunId> {
    s.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "`{}` is not a run id (a UUID)",
            s.chars().take(60).collect::<String>()
        ))
    })
}

fn created(v: impl serde::Serialize) -> Response {
    (StatusCode::CREATED, Json(json!(v))).into_response()
}

/// A short description of a request schema, for the OpenAPI document.
pub fn schema_doc(name: &str) -> &'static str {
    match name {
        "NewProject" => "{slug, title}: slug is 1-48 of a-z 0-9 -",
        "Document" => "any JSON object; an optional `id` names it",
        "Qualify" => "{edit_window_secs?, force?, budget_usd?}: force skips the readiness check",
        "Reopen" => "{reason?}: why the gather is reopened (kept in the project's events)",
        "StartRun" => "{workflow, input, idempotency_key?, scope?, budget_usd?}",
        "Signal" => "{event_key?, payload}",
        "Cancel" => "{reason?}",
        "RetryStep" => "{step?, reason?}: the run's failed step when `step` is omitted",
        "Reset" => "{step, reason?}",
        "Budget" => "{usd: number | null}",
        "Produce" => {
            "{budget_usd?, edit_window_secs?, force?}: force skips the readiness check (production from a gathering project only)"
        }
        "Limit" => "{max: integer | null}",
        "SceneEdit" => "{version, changes}: changes is an object of scene fields",
        "Template" => "a prompt template: {name, description, prompt, category, variables}",
        "TemplateEdit" => "{version, template}",
        "Render" => "{variables: {name: value}}",
        "BibleEdit" => "{version, bible}",
        "CharacterEdit" => "{version, reference}",
        "Webhook" => "the sender's callback body",
        _ => "JSON object",
    }
}

// --- health, metrics, docs ---------------------------------------------------------------------

async fn health(State(s): State<AppState>) -> Response {
    match s.engine.store().next_due().await {
        Ok(_) => Json(json!({"status": "ok", "database": s.engine.store().dialect()})).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "error": {"code": "database", "message": e.to_string()}}))).into_response(),
    }
}

async fn metrics(State(s): State<AppState>) -> ApiResult<Response> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP slate_runs Runs by workflow and status.\n# TYPE slate_runs gauge"
    );
    for (w, st, n) in s.engine.store().count_by_status().await? {
        let _ = writeln!(out, "slate_runs{{workflow=\"{w}\",status=\"{st}\"}} {n}");
    }
    let (micros, units) = s.engine.store().total_cost().await?;
    let _ = writeln!(
        out,
        "# HELP slate_cost_usd_total Money spent by all runs.\n# TYPE slate_cost_usd_total counter\nslate_cost_usd_total {}",
        micros as f64 / 1e6
    );
    let _ = writeln!(
        out,
        "# HELP slate_cost_units_total Provider units spent by all runs.\n# TYPE slate_cost_units_total counter\nslate_cost_units_total {units}"
    );
    s.engine.metrics().render_prometheus(&mut out);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

async fn openapi_doc() -> Json<Value> {
    Json(openapi(&routes().list))
}

async fn workflows(State(s): State<AppState>) -> Json<Value> {
    Json(json!({"workflows": s.engine.workflows()}))
}

// --- projects and their documents -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProject {
    slug: String,
    title: String,
}

async fn create_project(
    State(s): State<AppState>,
    Body2(p): Body2<NewProject>,
) -> ApiResult<Response> {
    let slug = slug(&p.slug)?;
    Ok(created(s.film.repo.create_project(&slug, &p.title).await?))
}

async fn list_projects(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"projects": s.film.repo.projects().await?})))
}

async fn get_project(State(s): State<AppState>, Path(p): Path<String>) -> ApiResult<Json<Value>> {
    let slug = slug(&p)?;
    let project = s.film.repo.project(&slug).await?;
    let scenes = s.film.repo.scenes(&slug).await?;
    let by_status = scenes
        .iter()
        .fold(BTreeMap::<&str, usize>::new(), |mut m, sc| {
            *m.entry(sc.status.as_str()).or_default() += 1;
            m
        });
    let errors: Vec<_> = s
        .film
        .repo
        .errors(false)
        .await?
        .into_iter()
        .filter(|e| e.project.as_deref() == Some(slug.as_str()))
        .collect();
    Ok(Json(
        json!({"project": project, "scenes": by_status, "open_errors": errors.len(), "gather": slug.gather(), "qualified": slug.qualified()}),
    ))
}

async fn add_gather_doc(
    State(s): State<AppState>,
    Path((p, c)): Path<(String, String)>,
    Body2(mut doc): Body2<Value>,
) -> ApiResult<Response> {
    let slug = slug(&p)?;
    let id = match doc.as_object_mut().and_then(|o| o.remove("id")) {
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(ApiError::unprocessable("`id` must be a string")),
        None => None,
    };
    let id = s
        .film
        .docs
        .insert(&Namespace::Gather(slug), &c, id, doc)
        .await?;
    Ok(created(json!({"id": id})))
}

async fn list_gather(
    State(s): State<AppState>,
    Path((p, c)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let slug = slug(&p)?;
    s.film.repo.project(&slug).await?;
    Ok(Json(
        json!({"documents": s.film.docs.list(&Namespace::Gather(slug), &c).await?}),
    ))
}

async fn gather_collections(
    State(s): State<AppState>,
    Path(p): Path<String>,
) -> ApiResult<Json<Value>> {
    let slug = slug(&p)?;
    let project = s.film.repo.project(&slug).await?;
    let ns = Namespace::Gather(slug);
    let mut out = BTreeMap::new();
    for c in s.film.docs.collections(&ns).await? {
        out.insert(c.clone(), s.film.docs.list(&ns, &c).await?.len());
    }
    Ok(Json(
        json!({"namespace": ns.name(), "locked": project.gather_locked_at.is_some(), "collections": out}),
    ))
}

async fn list_qualified(
    State(s): State<AppState>,
    Path((p, c)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let slug = slug(&p)?;
    s.film.repo.project(&slug).await?;
    Ok(Json(
        json!({"documents": s.film.docs.list(&Namespace::Qualified(slug), &c).await?}),
    ))
}

async fn readiness(State(s): State<AppState>, Path(p): Path<String>) -> ApiResult<Json<Value>> {
    let slug = slug(&p)?;
    let r = qualification::readiness(&s.film, &slug).await?;
    Ok(Json(
        json!({"overall_ready": r.iter().all(|d| d.ready), "threshold": slate_activities::model::READY_SCORE, "departments": r}),
    ))
}

// --- qualification and production --------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct QualifyBody {
    edit_window_secs: Option<u64>,
    #[serde(default)]
    force: bool,
    budget_usd: Option<f64>,
}

async fn active_run(
    s: &AppState,
    id: Option<&String>,
) -> ApiResult<Option<slate_engine::RunRecord>> {
    let Some(id) = id else { return Ok(None) };
    let r = s.engine.get(run_id(id)?).await?;
    Ok((!r.status.is_terminal()).then_some(r))
}

async fn start_for_project<W: slate_engine::Workflow>(
    s: &AppState,
    slug: &Slug,
    input: &W::Input,
    budget: Option<f64>,
) -> ApiResult<slate_engine::Started> {
    Ok(s.engine
        .start::<W>(
            input,
            StartOptions {
                scope: Some(slug.to_string()),
                budget_usd: budget,
                ..Default::default()
            },
        )
        .await?)
}

async fn qualify(
    State(s): State<AppState>,
    Path(p): Path<String>,
    body: Option<Body2<QualifyBody>>,
) -> ApiResult<Response> {
    let slug = slug(&p)?;
    let body = body.map(|b| b.0).unwrap_or_default();
    let project = s.film.repo.project(&slug).await?;
    if let Some(r) = active_run(&s, project.qualification_run.as_ref()).await? {
        return Err(ApiError::conflict(format!(
            "qualification of `{slug}` is already under way (run {})",
            r.id
        )));
    }
    if project.status != ProjectStatus::Gathering {
        return Err(ApiError::conflict(format!(
            "`{slug}` is {}: qualification starts from a project that is gathering",
            project.status.as_str()
        )));
    }
    qualification::gate(&s.film, &slug, body.force).await?;
    let window = body
        .edit_window_secs
        .unwrap_or(s.config.edit_window.as_secs());
    let started = start_for_project::<Qualification>(
        &s,
        &slug,
        &QualifyInput {
            project: slug.clone(),
            edit_window_secs: Some(window),
        },
        body.budget_usd,
    )
    .await?;
    s.film
        .repo
        .set_runs(&slug, Some(started.run.id.to_string()), None)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"run_id": started.run.id, "edit_window_secs": window, "continue": format!("/api/projects/{slug}/qualify/continue"), "stop": format!("/api/projects/{slug}/qualify/stop")}))).into_response())
}

async fn edit_window(s: &AppState, p: &str, action: &str) -> ApiResult<Json<Value>> {
    let slug = slug(p)?;
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
    Ok(Json(
        json!({"run_id": run.id, "action": action, "duplicate": out.duplicate}),
    ))
}

async fn qualify_continue(
    State(s): State<AppState>,
    Path(p): Path<String>,
) -> ApiResult<Json<Value>> {
    edit_window(&s, &p, "continue").await
}

async fn qualify_stop(State(s): State<AppState>, Path(p): Path<String>) -> ApiResult<Json<Value>> {
    edit_window(&s, &p, "stop").await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProduceBody {
    budget_usd: Option<f64>,
    edit_window_secs: Option<u64>,
    /// `/produce` only: qualify even though readiness is short (as `/qualify` takes it).
    #[serde(default)]
    force: bool,
}

async fn generate_film(
    State(s): State<AppState>,
    Path(p): Path<String>,
    body: Option<Body2<ProduceBody>>,
) -> ApiResult<Response> {
    let slug = slug(&p)?;
    let body = body.map(|b| b.0).unwrap_or_default();
    let project = s.film.repo.project(&slug).await?;
    if let Some(r) = active_run(&s, project.production_run.as_ref()).await? {
        return Err(ApiError::conflict(format!(
            "`{slug}` is already being generated (run {})",
            r.id
        )));
    }
    if !matches!(
        project.status,
        ProjectStatus::Qualified | ProjectStatus::Failed | ProjectStatus::Completed
    ) || s.film.repo.scenes(&slug).await?.is_empty()
    {
        return Err(ApiError::conflict(format!(
            "`{slug}` has no qualified scenes yet: qualify it first"
        )));
    }
    let started = start_for_project::<FilmGeneration>(
        &s,
        &slug,
        &FilmInput {
            project: slug.clone(),
        },
        body.budget_usd,
    )
    .await?;
    s.film
        .repo
        .set_runs(&slug, None, Some(started.run.id.to_string()))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"run_id": started.run.id})),
    )
        .into_response())
}

async fn produce(
    State(s): State<AppState>,
    Path(p): Path<String>,
    body: Option<Body2<ProduceBody>>,
) -> ApiResult<Response> {
    let slug = slug(&p)?;
    let body = body.map(|b| b.0).unwrap_or_default();
    let project = s.film.repo.project(&slug).await?;
    if project.status != ProjectStatus::Gathering {
        return Err(ApiError::conflict(format!(
            "`{slug}` is {}; production starts from a project that is gathering",
            project.status.as_str()
        )));
    }
    // The same gate as /qualify: production starts with a qualification.
    qualification::gate(&s.film, &slug, body.force).await?;
    let input = ProduceInput {
        project: slug.clone(),
        edit_window_secs: Some(
            body.edit_window_secs
                .unwrap_or(s.config.edit_window.as_secs()),
        ),
    };
    let started = start_for_project::<Production>(&s, &slug, &input, body.budget_usd).await?;
    s.film
        .repo
        .set_runs(&slug, None, Some(started.run.id.to_string()))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"run_id": started.run.id})),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReopenBody {
    reason: Option<String>,
}

async fn reopen_gather(
    State(s): State<AppState>,
    Path(p): Path<String>,
    body: Option<Body2<ReopenBody>>,
) -> ApiResult<Json<Value>> {
    let slug = slug(&p)?;
    let body = body.map(|b| b.0).unwrap_or_default();
    let out =
        qualification::reopen_gather(&s.film, &s.engine, &slug, body.reason.as_deref()).await?;
    Ok(Json(json!(out)))
}

async fn project_events(
    State(s): State<AppState>,
    Path(p): Path<String>,
) -> ApiResult<Json<Value>> {
    let slug = slug(&p)?;
    s.film.repo.project(&slug).await?;
    Ok(Json(
        json!({"events": s.film.repo.project_events(&slug).await?}),
    ))
}

async fn delete_gather_doc(
    State(s): State<AppState>,
    Path((p, c, id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let slug = slug(&p)?;
    s.film
        .docs
        .delete(&Namespace::Gather(slug), &c, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- runs ----------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRun {
    workflow: String,
    #[serde(default)]
    input: Value,
    idempotency_key: Option<String>,
    scope: Option<String>,
    budget_usd: Option<f64>,
}

async fn start_run(State(s): State<AppState>, Body2(b): Body2<StartRun>) -> ApiResult<Response> {
    let started = s
        .engine
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
        .await?;
    let status = if started.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(started))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunQuery {
    workflow: Option<String>,
    status: Option<String>,
    project: Option<String>,
    parent: Option<String>,
    limit: Option<u32>,
    before: Option<String>,
}

async fn list_runs(
    State(s): State<AppState>,
    q: Result<Query<RunQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q?;
    let status = q
        .status
        .map(|st| st.parse::<RunStatus>())
        .transpose()
        .map_err(ApiError::bad_request)?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > 500 {
        return Err(ApiError::bad_request("limit is 1 to 500"));
    }
    let filter = RunFilter {
        workflow: q.workflow,
        status,
        scope: q.project,
        parent_id: q.parent.as_deref().map(run_id).transpose()?,
        limit: Some(limit),
        before: q.before.as_deref().map(run_id).transpose()?,
    };
    let runs = s.engine.list(&filter).await?;
    let next = (runs.len() == limit as usize)
        .then(|| runs.last().map(|r| r.id))
        .flatten();
    Ok(Json(json!({"runs": runs, "next_before": next})))
}

async fn inspect_run(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.engine.inspect(run_id(&id)?).await?)))
}

async fn run_events(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = run_id(&id)?;
    s.engine.get(id).await?;
    Ok(Json(json!({"events": s.engine.store().events(id).await?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalBody {
    event_key: Option<String>,
    #[serde(default)]
    payload: Value,
}

async fn signal_run(
    State(s): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    Body2(b): Body2<SignalBody>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        s.engine
            .signal(Some(run_id(&id)?), &name, b.event_key, b.payload)
            .await?
    )))
}

// --- admin ---------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: Option<String>,
}

async fn cancel_run(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Option<Body2<Reason>>,
) -> ApiResult<Json<Value>> {
    let reason = body
        .and_then(|b| b.0.reason)
        .unwrap_or_else(|| "cancelled by an administrator".into());
    Ok(Json(json!(s.engine.cancel(run_id(&id)?, &reason).await?)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    step: Option<String>,
    reason: Option<String>,
}

async fn retry_run(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Option<Body2<RetryBody>>,
) -> ApiResult<Json<Value>> {
    let id = run_id(&id)?;
    let b = body.map(|b| b.0).unwrap_or_default();
    let reason = b
        .reason
        .unwrap_or_else(|| "retried by an administrator".into());
    match b.step {
        Some(step) => s.engine.retry_step(id, &step, &reason).await?,
        None => s.engine.resume(id, &reason).await?,
    }
    Ok(Json(json!({"run_id": id, "status": "pending"})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    step: String,
    reason: Option<String>,
}

async fn reset_run(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body2(b): Body2<ResetBody>,
) -> ApiResult<Json<Value>> {
    let id = run_id(&id)?;
    s.engine
        .reset_to_step(
            id,
            &b.step,
            b.reason.as_deref().unwrap_or("reset by an administrator"),
        )
        .await?;
    Ok(Json(
        json!({"run_id": id, "status": "pending", "from_step": b.step}),
    ))
}

async fn redrive(State(s): State<AppState>, Path(w): Path<String>) -> ApiResult<Json<Value>> {
    if !s.engine.workflows().contains(&w) {
        return Err(ApiError::not_found(format!("workflow `{w}` not found")));
    }
    let runs = s
        .engine
        .redrive_failed(&w, "re-driven by an administrator")
        .await?;
    Ok(Json(json!({"workflow": w, "redriven": runs})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetBody {
    usd: Option<f64>,
}

async fn set_budget(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body2(b): Body2<BudgetBody>,
) -> ApiResult<Json<Value>> {
    let id = run_id(&id)?;
    s.engine.set_budget(id, b.usd).await?;
    Ok(Json(json!({"run_id": id, "budget_usd": b.usd})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitBody {
    max: Option<u32>,
}

async fn set_limit(
    State(s): State<AppState>,
    Path(key): Path<String>,
    Body2(b): Body2<LimitBody>,
) -> ApiResult<Json<Value>> {
    s.engine.set_concurrency_limit(&key, b.max).await?;
    Ok(Json(
        json!({"key": key, "max": b.max, "usage": s.engine.store().concurrency_usage().await?}),
    ))
}

// --- scenes, templates, bible, characters -------------------------------------------------------

async fn list_scenes(State(s): State<AppState>, Path(p): Path<String>) -> ApiResult<Json<Value>> {
    let slug = slug(&p)?;
    s.film.repo.project(&slug).await?;
    Ok(Json(json!({"scenes": s.film.repo.scenes(&slug).await?})))
}

async fn get_scene(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.film.repo.scene(&id).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SceneEdit {
    version: i64,
    changes: Value,
}

async fn edit_scene(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body2(b): Body2<SceneEdit>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        s.film.repo.edit_scene(&id, b.version, &b.changes).await?
    )))
}

async fn generate_scene(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let scene = s.film.repo.scene(&id).await?;
    let slug = slug(&scene.project)?;
    if matches!(
        scene.status,
        SceneStatus::GeneratingComposite
            | SceneStatus::VerifyingComposite
            | SceneStatus::GeneratingVideo
    ) {
        return Err(ApiError::conflict(format!(
            "scene `{id}` is being generated"
        )));
    }
    let scenes = s.film.repo.scenes(&slug).await?;
    let previous = scenes
        .iter()
        .filter(|p| p.sequence_number < scene.sequence_number && p.status == SceneStatus::Completed)
        .max_by_key(|p| p.sequence_number)
        .and_then(|p| {
            Some(PreviousScene {
                scene_id: p.id.clone(),
                last_frame: p.last_frame_url.clone()?,
                location: p.location.clone(),
                time_of_day: p.time_of_day.clone(),
                characters: p.characters_present.clone(),
                video: p.generated_video_url.clone(),
            })
        });
    let started = start_for_project::<SceneGeneration>(
        &s,
        &slug,
        &SceneInput {
            project: slug.clone(),
            scene_id: id,
            previous,
        },
        None,
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"run_id": started.run.id})),
    )
        .into_response())
}

async fn list_templates(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"templates": s.film.repo.templates().await?})))
}

async fn get_template(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.film.repo.template(&name).await?)))
}

async fn create_template(
    State(s): State<AppState>,
    Body2(t): Body2<PromptTemplate>,
) -> ApiResult<Response> {
    Ok(created(s.film.repo.create_template(&t).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateEdit {
    version: i64,
    template: PromptTemplate,
}

async fn update_template(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Body2(b): Body2<TemplateEdit>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        s.film
            .repo
            .update_template(&name, b.version, &b.template)
            .await?
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenderBody {
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

async fn render_template(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Body2(b): Body2<RenderBody>,
) -> ApiResult<Json<Value>> {
    let t = s.film.repo.template(&name).await?;
    Ok(Json(
        json!({"template": name, "prompt": t.render(&b.variables)?}),
    ))
}

async fn get_bible(State(s): State<AppState>, Path(p): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.film.repo.story_bible(&slug(&p)?).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BibleEdit {
    version: i64,
    bible: slate_activities::model::StoryBible,
}

async fn put_bible(
    State(s): State<AppState>,
    Path(p): Path<String>,
    Body2(b): Body2<BibleEdit>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        s.film
            .repo
            .edit_story_bible(&slug(&p)?, b.version, &b.bible)
            .await?
    )))
}

async fn list_characters(
    State(s): State<AppState>,
    Path(p): Path<String>,
) -> ApiResult<Json<Value>> {
    let slug = slug(&p)?;
    s.film.repo.project(&slug).await?;
    Ok(Json(
        json!({"characters": s.film.repo.character_references(&slug).await?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CharacterEdit {
    version: i64,
    reference: CharacterReference,
}

async fn put_character(
    State(s): State<AppState>,
    Path((p, id)): Path<(String, String)>,
    Body2(b): Body2<CharacterEdit>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        s.film
            .repo
            .edit_character_reference(&slug(&p)?, &id, b.version, &b.reference)
            .await?
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorsQuery {
    all: Option<bool>,
}

async fn list_errors(
    State(s): State<AppState>,
    q: Result<Query<ErrorsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q?;
    Ok(Json(
        json!({"errors": s.film.repo.errors(q.all.unwrap_or(false)).await?}),
    ))
}

async fn dismiss_error(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    s.film.repo.dismiss_error(&id).await?;
    Ok(Json(json!({"id": id, "dismissed": true})))
}

// --- webhooks ------------------------------------------------------------------------------------

/// A webhook carries the shared secret in `X-Webhook-Secret`, or the path's token (see
/// [`slate_activities::config::webhook_token`]) in `?token=`, as our callback URLs do.
fn check_webhook(
    s: &AppState,
    headers: &HeaderMap,
    query: &BTreeMap<String, String>,
    path: &str,
) -> ApiResult<()> {
    let Some(secret) = &s.config.webhook_secret else {
        return Ok(());
    };
    if let Some(given) = headers
        .get("x-webhook-secret")
        .and_then(|v| v.to_str().ok())
    {
        return if same_secret(given, secret.expose()) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the webhook secret does not match",
            ))
        };
    }
    match query.get("token") {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "webhooks carry the shared secret in `X-Webhook-Secret` or the callback URL's `?token=`",
        )),
        Some(t) if same_secret(t, &slate_activities::config::webhook_token(secret, path)) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the webhook token does not match this path",
        )),
    }
}

async fn webhook_body(req: Request) -> ApiResult<Value> {
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "a webhook body is at most 1 MiB",
            )
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the webhook body is not JSON: {e}")))
}

fn field<'a>(v: &'a Value, k: &str) -> ApiResult<&'a str> {
    v.get(k)
        .and_then(|x| x.as_str())
        .filter(|x| !x.is_empty() && x.len() <= 200)
        .ok_or_else(|| ApiError::unprocessable(format!("the webhook body needs `{k}` (a string)")))
}

async fn deliver(
    s: &AppState,
    name: String,
    key: String,
    payload: Value,
) -> ApiResult<Json<Value>> {
    let out = s.engine.signal(None, &name, Some(key), payload).await?;
    Ok(Json(
        json!({"received": true, "signal": name, "duplicate": out.duplicate, "woken": out.woken}),
    ))
}

async fn webhook_task(
    s: AppState,
    prefix: &str,
    headers: HeaderMap,
    query: BTreeMap<String, String>,
    req: Request,
) -> ApiResult<Json<Value>> {
    check_webhook(&s, &headers, &query, req.uri().path())?;
    let body = webhook_body(req).await?;
    let task = field(&body, "task_id")?.to_string();
    let status = body
        .get("status")
        .and_then(|v| v.as_str())
        .unwrap_or("completed")
        .to_string();
    // One signal per task and status: a repeated delivery is dropped; a late one for an earlier
    // status wakes nothing that matters (the workflow polls the task's real state).
    deliver(
        &s,
        format!("{prefix}/{task}"),
        format!("{task}:{status}"),
        body,
    )
    .await
}

/// The route of a task webhook whose signals are named `<prefix>/<task id>`.
fn task_webhook(prefix: &'static str) -> axum::routing::MethodRouter<AppState> {
    post(
        move |State(s): State<AppState>,
              headers: HeaderMap,
              Query(q): Query<BTreeMap<String, String>>,
              req: Request| async move { webhook_task(s, prefix, headers, q, req).await },
    )
}

async fn webhook_fal(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
    req: Request,
) -> ApiResult<Json<Value>> {
    check_webhook(&s, &headers, &q, req.uri().path())?;
    let body = webhook_body(req).await?;
    let w = FalWebhook::parse(body.to_string().as_bytes())
        .map_err(|e| ApiError::unprocessable(e.message))?;
    deliver(&s, w.signal_name(), w.request_id.clone(), body).await
}

// --- media ---------------------------------------------------------------------------------------

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` of a file of `len` bytes.
pub fn parse_range(h: &str, len: u64) -> Option<(u64, u64)> {
    let spec = h.strip_prefix("bytes=")?.trim();
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.saturating_sub(n), len - 1)
        }
        (a, "") => (a.parse().ok()?, len - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(len - 1)),
    };
    (start <= end && start < len).then_some((start, end))
}

async fn media(
    State(s): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let blob = BlobRef::new(&key).map_err(|e| ApiError::bad_request(e.message))?;
    let path = match s.film.studio.blobs.local_path(&blob).await {
        Ok(p) => p,
        Err(e) if e.kind == slate_activities::ErrorKind::NotFound => {
            return Err(ApiError::not_found(format!("media `{key}` not found")));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(ApiError::internal)?;
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    let ctype = blob.content_type();
    if let Some(r) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        let Some((start, end)) = parse_range(r, len) else {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({"error": {"code": "range", "message": format!("the range `{r}` is outside 0-{len}")}}).to_string()))
                .map_err(ApiError::internal);
        };
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(ApiError::internal)?;
        // Streamed, so a range over a whole film does not sit in memory.
        let stream = tokio_util::io::ReaderStream::new(file.take(end - start + 1));
        return Response::builder()
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_TYPE, ctype)
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))
            .header(header::CONTENT_LENGTH, end - start + 1)
            .body(Body::from_stream(stream))
            .map_err(ApiError::internal);
    }
    let stream = tokio_util::io::ReaderStream::new(file);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, ctype)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, len)
        .body(Body::from_stream(stream))
        .map_err(ApiError::internal)
}

// --- the route table -----------------------------------------------------------------------------

fn d(summary: &'static str, tag: &'static str) -> Doc {
    Doc {
        summary,
        tag,
        body: None,
        ok: 200,
        query: &[],
    }
}

fn b(summary: &'static str, tag: &'static str, body: &'static str, ok: u16) -> Doc {
    Doc {
        summary,
        tag,
        body: Some(body),
        ok,
        query: &[],
    }
}

/// Every route.
pub fn routes() -> Routes {
    use Access::*;
    Routes::default()
        .add(Public, Method::GET, "/health", get(health), d("Liveness and database reachability", "system"))
        .add(Api, Method::GET, "/metrics", get(metrics), d("Prometheus metrics: runs by status, step latency, retries, cost", "system"))
        .add(Api, Method::GET, "/openapi.json", get(openapi_doc), d("This document", "system"))
        .add(Api, Method::GET, "/api/workflows", get(workflows), d("Registered workflows", "runs"))
        .add(Api, Method::POST, "/api/projects", post(create_project), b("Create a project", "projects", "NewProject", 201))
        .add(Api, Method::GET, "/api/projects", get(list_projects), d("List projects", "projects"))
        .add(Api, Method::GET, "/api/projects/{slug}", get(get_project), d("A project with its scene counts and open errors", "projects"))
        .add(Api, Method::GET, "/api/projects/{slug}/gather", get(gather_collections), d("The gather namespace's collections", "projects"))
        .add(Api, Method::POST, "/api/projects/{slug}/gather/{collection}", post(add_gather_doc), b("Add a gather document (refused once qualification started)", "projects", "Document", 201))
        .add(Api, Method::GET, "/api/projects/{slug}/gather/{collection}", get(list_gather), d("A gather collection's documents", "projects"))
        .add(Api, Method::DELETE, "/api/projects/{slug}/gather/{collection}/{id}", delete(delete_gather_doc), Doc { ok: 204, ..d("Delete a gather document (while the gather is open)", "projects") })
        .add(Api, Method::POST, "/api/projects/{slug}/reopen", post(reopen_gather), b("Reopen the gather for edits after a failed or stopped qualification (removes what it qualified)", "qualification", "Reopen", 200))
        .add(Api, Method::GET, "/api/projects/{slug}/events", get(project_events), d("What happened to a project outside its runs (gather reopened...)", "projects"))
        .add(Api, Method::GET, "/api/projects/{slug}/qualified/{collection}", get(list_qualified), d("A qualified collection's documents", "projects"))
        .add(Api, Method::GET, "/api/projects/{slug}/readiness", get(readiness), d("Readiness of every department (ready at 75)", "projects"))
        .add(Api, Method::POST, "/api/projects/{slug}/qualify", post(qualify), b("Start qualification (after the edit window)", "qualification", "Qualify", 202))
        .add(Api, Method::POST, "/api/projects/{slug}/qualify/continue", post(qualify_continue), d("End the edit window now", "qualification"))
        .add(Api, Method::POST, "/api/projects/{slug}/qualify/stop", post(qualify_stop), d("Stop qualification to edit", "qualification"))
        .add(Api, Method::POST, "/api/projects/{slug}/generate", post(generate_film), b("Generate every scene and stitch the film", "production", "Produce", 202))
        .add(Api, Method::POST, "/api/projects/{slug}/produce", post(produce), b("Qualify, then generate the film", "production", "Produce", 202))
        .add(Api, Method::GET, "/api/projects/{slug}/scenes", get(list_scenes), d("A project's scenes in film order", "scenes"))
        .add(Api, Method::GET, "/api/scenes/{id}", get(get_scene), d("A scene", "scenes"))
        .add(Api, Method::PATCH, "/api/scenes/{id}", patch(edit_scene), b("Edit a scene (409 if it changed since your version)", "scenes", "SceneEdit", 200))
        .add(Api, Method::POST, "/api/scenes/{id}/generate", post(generate_scene), d("Generate one scene", "scenes"))
        .add(Api, Method::GET, "/api/projects/{slug}/story-bible", get(get_bible), d("The story bible", "story"))
        .add(Api, Method::PUT, "/api/projects/{slug}/story-bible", put(put_bible), b("Edit the story bible", "story", "BibleEdit", 200))
        .add(Api, Method::GET, "/api/projects/{slug}/characters", get(list_characters), d("Character references (360-degree views)", "story"))
        .add(Api, Method::PUT, "/api/projects/{slug}/characters/{id}", put(put_character), b("Edit a character reference", "story", "CharacterEdit", 200))
        .add(Api, Method::GET, "/api/templates", get(list_templates), d("Prompt templates", "templates"))
        .add(Api, Method::POST, "/api/templates", post(create_template), b("Create a prompt template", "templates", "Template", 201))
        .add(Api, Method::GET, "/api/templates/{name}", get(get_template), d("A prompt template", "templates"))
        .add(Api, Method::PUT, "/api/templates/{name}", put(update_template), b("Edit a prompt template", "templates", "TemplateEdit", 200))
        .add(Api, Method::POST, "/api/templates/{name}/render", post(render_template), b("Render a template (422 names missing variables)", "templates", "Render", 200))
        .add(Api, Method::GET, "/api/errors", get(list_errors), Doc { query: &["all"], ..d("Global errors, newest first", "errors") })
        .add(Api, Method::POST, "/api/errors/{id}/dismiss", post(dismiss_error), d("Dismiss a global error", "errors"))
        .add(Api, Method::POST, "/api/runs", post(start_run), b("Start a run of any registered workflow (idempotent by key)", "runs", "StartRun", 201))
        .add(Api, Method::GET, "/api/runs", get(list_runs), Doc { query: &["workflow", "status", "project", "parent", "limit", "before"], ..d("List runs, newest first", "runs") })
        .add(Api, Method::GET, "/api/runs/{id}", get(inspect_run), d("A run: status, current step, steps with attempts, timings, errors and cost, history, budget", "runs"))
        .add(Api, Method::GET, "/api/runs/{id}/events", get(run_events), d("A run's history", "runs"))
        .add(Api, Method::POST, "/api/runs/{id}/signals/{name}", post(signal_run), b("Send a signal to a run", "runs", "Signal", 200))
        .add(Admin, Method::POST, "/api/admin/runs/{id}/cancel", post(cancel_run), b("Cancel a run and its children", "admin", "Cancel", 200))
        .add(Admin, Method::POST, "/api/admin/runs/{id}/retry", post(retry_run), b("Retry a failed step (or re-drive a failed run)", "admin", "RetryStep", 200))
        .add(Admin, Method::POST, "/api/admin/runs/{id}/reset", post(reset_run), b("Reset a run to a step", "admin", "Reset", 200))
        .add(Admin, Method::PUT, "/api/admin/runs/{id}/budget", put(set_budget), b("Set a run's budget", "admin", "Budget", 200))
        .add(Admin, Method::POST, "/api/admin/workflows/{workflow}/redrive", post(redrive), d("Re-drive every failed run of a workflow", "admin"))
        .add(Admin, Method::PUT, "/api/admin/concurrency/{key}", put(set_limit), b("Set a concurrency key's limit", "admin", "Limit", 200))
        .add(Webhook, Method::POST, "/api/webhooks/video-complete", task_webhook("video-complete"), b("Tasks service: a video task finished", "webhooks", "Webhook", 200))
        .add(Webhook, Method::POST, "/api/webhooks/last-frame-complete", task_webhook("last-frame-complete"), b("Last-frame service: an extraction finished", "webhooks", "Webhook", 200))
        .add(Webhook, Method::POST, "/api/webhooks/stitch-complete", task_webhook("stitch-complete"), b("Last-frame service: a stitch finished", "webhooks", "Webhook", 200))
        .add(Webhook, Method::POST, "/api/webhooks/fal", post(webhook_fal), b("fal.ai: a queued request finished", "webhooks", "Webhook", 200))
        .add(Api, Method::GET, "/media/{*key}", get(media), d("A blob (image, clip, film), with range requests", "media"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=0-1000", 100), Some((0, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-2", 100), None);
        assert_eq!(parse_range("bytes=0-1,4-5", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
