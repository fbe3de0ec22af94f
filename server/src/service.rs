//! Use cases: starting a project's qualification, film or production, with their checks written
//! once. The HTTP routes (the project's own and the generic `POST /api/runs`), the dashboard and
//! the CLI call these, so every door refuses what the others refuse and every run they start is
//! scoped to its project and recorded on it.

use slate_engine::{RunFilter, RunRecord, RunStatus, StartOptions, Started, Workflow};
use slate_workflows::Slug;
use slate_workflows::generation::{FilmGeneration, FilmInput, ProduceInput, Production};
use slate_workflows::model::{Project, ProjectStatus, SceneStatus};
use slate_workflows::qualification::{self, Qualification, QualifyInput};

use crate::error::{ApiError, ApiResult};
use crate::extract::run_id;
use crate::state::AppState;

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

/// The run recorded as `id`, if it has not finished. A blocked run has not: it goes on once a
/// person retries it on code that fits (or it is cancelled, or forked).
pub async fn active_run(s: &AppState, id: Option<&String>) -> ApiResult<Option<RunRecord>> {
    let Some(id) = id else { return Ok(None) };
    let r = s.engine.get(run_id(id)?).await?;
    Ok(holds_project(r.status).then_some(r))
}

/// A run in this state still works for its project.
fn holds_project(st: RunStatus) -> bool {
    !st.is_terminal() || st == RunStatus::Blocked
}

/// A fork of a project's run becomes the project's run of its kind.
pub async fn adopt(s: &AppState, slug: &Slug, run: &RunRecord) -> ApiResult<()> {
    let id = Some(run.id.to_string());
    match run.workflow.as_str() {
        Qualification::NAME => s.film.repo.set_runs(slug, id, None).await?,
        FilmGeneration::NAME | Production::NAME => s.film.repo.set_runs(slug, None, id).await?,
        _ => {}
    }
    Ok(())
}

/// Cancel or retry (`retry`) every run `filter` selects, page by page. Returns the runs done and
/// the ones left, with why.
pub async fn bulk(
    s: &AppState,
    filter: &RunFilter,
    retry: bool,
    reason: &str,
) -> ApiResult<(Vec<slate_engine::RunId>, Vec<(slate_engine::RunId, String)>)> {
    let mut selected = vec![];
    let mut before = None;
    loop {
        let page = s
            .engine
            .list(&RunFilter {
                before,
                limit: Some(500),
                ..filter.clone()
            })
            .await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        selected.extend(page);
    }
    let (mut done, mut skipped) = (vec![], vec![]);
    for r in selected {
        let out = if retry {
            s.engine.resume(r.id, reason).await.map(|_| ())
        } else {
            s.engine.cancel(r.id, reason).await.map(|_| ())
        };
        match out {
            Ok(()) => done.push(r.id),
            Err(e) => skipped.push((r.id, e.to_string())),
        }
    }
    Ok((done, skipped))
}

/// A scene between its start and its clip.
fn in_flight(s: SceneStatus) -> bool {
    matches!(
        s,
        SceneStatus::WaitingForPrevious
            | SceneStatus::GeneratingComposite
            | SceneStatus::VerifyingComposite
            | SceneStatus::GeneratingVideo
    )
}

/// True when a run of the project has not finished (its scope is the project).
pub(crate) async fn any_live_run(s: &AppState, slug: &Slug) -> ApiResult<bool> {
    for status in [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Waiting,
        RunStatus::Sleeping,
        RunStatus::Blocked,
    ] {
        let live = s
            .engine
            .list(&RunFilter {
                scope: Some(slug.to_string()),
                status: Some(status),
                limit: Some(1),
                ..Default::default()
            })
            .await?;
        if !live.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The project, its state settled. Runs that ended without saying so (cancelled, or stopped
/// before their last step) can leave it `qualifying` or `generating`, and scenes in flight,
/// with no run behind them; every way on would then answer 409 for good. With no live run of
/// the project, its state is taken from what is there: a qualification that stopped is a
/// failure to reopen the gather from; a film that stopped leaves the project qualified (or
/// completed, when it has its film) and its unfinished scenes ready to generate again. Called
/// before every start's checks, after a cancel and when a project is shown.
pub async fn settle(s: &AppState, slug: &Slug) -> ApiResult<Project> {
    let project = s.film.repo.project(slug).await?;
    let scenes = s.film.repo.scenes(slug).await?;
    let busy: Vec<String> = scenes
        .iter()
        .filter(|sc| in_flight(sc.status))
        .map(|sc| sc.id.clone())
        .collect();
    let project_busy = matches!(
        project.status,
        ProjectStatus::Qualifying | ProjectStatus::Generating
    );
    if (!project_busy && busy.is_empty()) || any_live_run(s, slug).await? {
        return Ok(project);
    }
    for id in &busy {
        s.film
            .repo
            .modify_scene(id, |sc| {
                if in_flight(sc.status) {
                    sc.status = SceneStatus::ReadyForGeneration;
                }
            })
            .await?;
    }
    let status = match project.status {
        ProjectStatus::Qualifying => ProjectStatus::Failed,
        ProjectStatus::Generating if project.final_video.is_some() => ProjectStatus::Completed,
        ProjectStatus::Generating => ProjectStatus::Qualified,
        other => other,
    };
    if status != project.status {
        tracing::info!(project = %slug, from = project.status.as_str(), to = status.as_str(), scenes = busy.len(), "settled a project no run was working on");
        s.film.repo.set_project_status(slug, status).await?;
    }
    Ok(s.film.repo.project(slug).await?)
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
    let budget_usd = effective_budget(s, slug, budget_usd).await?;
    within_budget(s, slug, budget_usd, stages).await?;
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
    let project = settle(s, slug).await?;
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
    let project = settle(s, slug).await?;
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
    let project = settle(s, slug).await?;
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

/// What every run of the project has spent, dollars.
pub async fn project_spent(s: &AppState, slug: &slate_workflows::slug::Slug) -> ApiResult<f64> {
    let mut micros = 0i64;
    let mut before = None;
    loop {
        let page = s
            .engine
            .list(&slate_engine::RunFilter {
                scope: Some(slug.to_string()),
                limit: Some(500),
                before,
                ..Default::default()
            })
            .await?;
        micros += page.iter().map(|r| r.cost_micros).sum::<i64>();
        match page.last() {
            Some(last) if page.len() == 500 => before = Some(last.id),
            _ => break,
        }
    }
    Ok(micros as f64 / 1e6)
}

/// The budget a new run of the project gets: the lesser of the one asked for and what the
/// project's budget has left. Refused (409 `over_budget`) when nothing is left.
pub async fn effective_budget(
    s: &AppState,
    slug: &slate_workflows::slug::Slug,
    asked: Option<f64>,
) -> ApiResult<Option<f64>> {
    let Some(project_budget) = s.film.repo.project(slug).await?.budget_usd else {
        return Ok(asked);
    };
    let spent = project_spent(s, slug).await?;
    let left = project_budget - spent;
    if left <= 0.0 {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "over_budget",
            format!(
                "`{slug}` has spent ${spent:.2} of its ${project_budget:.2} budget; raise it with PUT /api/projects/{slug}/budget"
            ),
        ));
    }
    Ok(Some(asked.map_or(left, |a| a.min(left))))
}

/// Refuse a run whose budget is below what the stages it runs cost at the least: it would
/// stop part-way having spent the budget on a film it cannot finish.
pub async fn within_budget(
    s: &AppState,
    slug: &slate_workflows::slug::Slug,
    budget: Option<f64>,
    stages: &[&str],
) -> ApiResult<()> {
    let Some(budget) = budget else {
        return Ok(());
    };
    let e = slate_workflows::estimate::estimate(&s.film, slug).await?;
    let (low, high) = e
        .stages
        .iter()
        .filter(|st| stages.contains(&st.stage.as_str()))
        .fold((0.0, 0.0), |(l, h), st| (l + st.low_usd, h + st.high_usd));
    if low > budget {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "over_budget",
            format!(
                "the budget ${budget:.2} is below the least this would cost: ${low:.2} (at most ${high:.2}) for {} scenes ({}); raise the budget, or see POST /api/projects/{slug}/estimate",
                e.scenes,
                stages.join(", ")
            ),
        ));
    }
    Ok(())
}
