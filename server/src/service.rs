//! Use cases: starting a project's qualification, film or production, with their checks written
//! once. The HTTP routes (the project's own and the generic `POST /api/runs`), the dashboard and
//! the CLI call these, so every door refuses what the others refuse and every run they start is
//! scoped to its project and recorded on it.

use slate_engine::{RunRecord, StartOptions, Started, Workflow};
use slate_workflows::Slug;
use slate_workflows::generation::{FilmGeneration, FilmInput, ProduceInput, Production};
use slate_workflows::model::ProjectStatus;
use slate_workflows::qualification::{self, Qualification, QualifyInput};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::run_id;

/// How a start was asked for, beyond the project.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    /// Qualify even though a department is short of the readiness threshold.
    pub force: bool,
    /// Seconds of the edit window (the server's default when `None`).
    pub edit_window_secs: Option<u64>,
    /// The run's budget (bounded by what the project has left).
    pub budget_usd: Option<f64>,
    /// Starting again with the same key returns the run it started.
    pub idempotency_key: Option<String>,
}

/// The run recorded as `id`, if it has not finished.
pub async fn active_run(s: &AppState, id: Option<&String>) -> ApiResult<Option<RunRecord>> {
    let Some(id) = id else { return Ok(None) };
    let r = s.engine.get(run_id(id)?).await?;
    Ok((!r.status.is_terminal()).then_some(r))
}

/// Start a workflow for a project, scoped to it, within its budget.
pub async fn start_for_project<W: Workflow>(
    s: &AppState,
    slug: &Slug,
    input: &W::Input,
    budget_usd: Option<f64>,
    stages: &[&str],
) -> ApiResult<Started> {
    start_keyed::<W>(s, slug, input, budget_usd, stages, None).await
}

async fn start_keyed<W: Workflow>(
    s: &AppState,
    slug: &Slug,
    input: &W::Input,
    budget_usd: Option<f64>,
    stages: &[&str],
    idempotency_key: Option<String>,
) -> ApiResult<Started> {
    // The run's budget is the lesser of the one asked for and what the project has left, and
    // a run that could not finish within it is refused before it starts.
    let budget_usd = crate::routes::production::effective_budget(s, slug, budget_usd).await?;
    crate::routes::production::within_budget(s, slug, budget_usd, stages).await?;
    Ok(s.engine
        .start::<W>(
            input,
            StartOptions {
                scope: Some(slug.to_string()),
                budget_usd,
                idempotency_key,
                ..Default::default()
            },
        )
        .await?)
}

/// A run already under way with this idempotency key, as a repeated start returns it.
fn same_key(r: &RunRecord, key: Option<&String>) -> bool {
    key.is_some() && r.idempotency_key.as_ref() == key
}

fn already(r: RunRecord) -> Started {
    Started {
        run: r,
        created: false,
    }
}

/// Start qualification: the project must be gathering, not qualifying already, and ready
/// (unless `force`). Recorded as the project's qualification run.
pub async fn qualify(s: &AppState, slug: &Slug, req: StartRequest) -> ApiResult<Started> {
    let project = s.film.repo.project(slug).await?;
    if let Some(r) = active_run(s, project.qualification_run.as_ref()).await? {
        if same_key(&r, req.idempotency_key.as_ref()) {
            return Ok(already(r));
        }
        return Err(ApiError::conflict(format!(
            "qualification of `{slug}` is already under way (run {})",
            r.id
        )));
    }
    if project.status != ProjectStatus::Gathering {
        return Err(ApiError::conflict(format!(
            "`{slug}` is {}: qualification starts from a project that is gathering (POST /api/projects/{slug}/gather/reopen after a failure)",
            project.status.as_str()
        )));
    }
    qualification::gate(&s.film, slug, req.force).await?;
    let window = req
        .edit_window_secs
        .unwrap_or(s.config.edit_window.as_secs());
    let started = start_keyed::<Qualification>(
        s,
        slug,
        &QualifyInput {
            project: slug.clone(),
            edit_window_secs: Some(window),
        },
        req.budget_usd,
        &["qualification"],
        req.idempotency_key,
    )
    .await?;
    s.film
        .repo
        .set_runs(slug, Some(started.run.id.to_string()), None)
        .await?;
    Ok(started)
}

/// Generate the film of a qualified project: not while it is being generated, and only with
/// qualified scenes. Recorded as the project's production run.
pub async fn generate(
    s: &AppState,
    slug: &Slug,
    input: Option<FilmInput>,
    req: StartRequest,
) -> ApiResult<Started> {
    let project = s.film.repo.project(slug).await?;
    if let Some(r) = active_run(s, project.production_run.as_ref()).await? {
        if same_key(&r, req.idempotency_key.as_ref()) {
            return Ok(already(r));
        }
        return Err(ApiError::conflict(format!(
            "`{slug}` is already being generated (run {})",
            r.id
        )));
    }
    if !matches!(
        project.status,
        ProjectStatus::Qualified | ProjectStatus::Failed | ProjectStatus::Completed
    ) || s.film.repo.scenes(slug).await?.is_empty()
    {
        return Err(ApiError::conflict(format!(
            "`{slug}` has no qualified scenes yet: qualify it first"
        )));
    }
    let input = input.unwrap_or(FilmInput {
        project: slug.clone(),
        parallel: s.film.config.parallel_scenes,
        early: s.film.config.parallel_scenes,
    });
    let started = start_keyed::<FilmGeneration>(
        s,
        slug,
        &input,
        req.budget_usd,
        &["scenes", "film"],
        req.idempotency_key,
    )
    .await?;
    s.film
        .repo
        .set_runs(slug, None, Some(started.run.id.to_string()))
        .await?;
    Ok(started)
}

/// Qualify (behind the same readiness gate and `force`) and then generate the film: the project
/// must be gathering. Recorded as the project's production run.
pub async fn produce(s: &AppState, slug: &Slug, req: StartRequest) -> ApiResult<Started> {
    let project = s.film.repo.project(slug).await?;
    if let Some(r) = active_run(s, project.production_run.as_ref()).await?
        && same_key(&r, req.idempotency_key.as_ref())
    {
        return Ok(already(r));
    }
    if project.status != ProjectStatus::Gathering {
        return Err(ApiError::conflict(format!(
            "`{slug}` is {}; production starts from a project that is gathering",
            project.status.as_str()
        )));
    }
    qualification::gate(&s.film, slug, req.force).await?;
    let input = ProduceInput {
        project: slug.clone(),
        edit_window_secs: Some(
            req.edit_window_secs
                .unwrap_or(s.config.edit_window.as_secs()),
        ),
    };
    let started = start_keyed::<Production>(
        s,
        slug,
        &input,
        req.budget_usd,
        &["qualification", "scenes", "film"],
        req.idempotency_key,
    )
    .await?;
    s.film
        .repo
        .set_runs(slug, None, Some(started.run.id.to_string()))
        .await?;
    Ok(started)
}
