//! Making the film: qualify-then-generate in one run, or generate the film of a qualified
//! project.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use slate_workflows::estimate::Estimate;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, RunStarted, SlugPath, accepted};
use crate::service::project_spent;
use crate::state::AppState;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(generate_film))
        .routes(routes!(produce))
        .routes(routes!(estimate))
        .routes(routes!(costs))
        .routes(routes!(set_project_budget))
}

/// A project's budget.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectBudgetBody {
    /// Dollars that all of the project's runs together may spend; null removes the limit.
    #[schema(minimum = 0, maximum = 1000000000)]
    pub usd: Option<f64>,
}

/// A project's budget and what it has spent.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ProjectBudget {
    /// The budget, dollars (null: none).
    pub budget_usd: Option<f64>,
    /// Spent by all of the project's runs.
    pub spent_usd: f64,
    /// What is left (null without a budget).
    pub remaining_usd: Option<f64>,
}

/// Set what all of a project's runs together may spend. New runs get at most what is left;
/// runs already under way keep their own budgets.
#[utoipa::path(put, path = "/api/projects/{slug}/budget", tag = "production",
    params(SlugPath), request_body = ProjectBudgetBody,
    responses(
        (status = 200, description = "Set", body = ProjectBudget),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 422, description = "Not a sum of dollars", body = ErrorBody),
    ))]
async fn set_project_budget(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
    JsonBody(b): JsonBody<ProjectBudgetBody>,
) -> ApiResult<Json<ProjectBudget>> {
    let slug = p.slug()?;
    if let Some(u) = b.usd
        && (!u.is_finite() || !(0.0..=1e9).contains(&u))
    {
        return Err(ApiError::unprocessable(
            "usd must be a number of dollars from 0 to 1,000,000,000, or null for no budget",
        ));
    }
    s.film.repo.project(&slug).await?;
    s.film.repo.set_budget(&slug, b.usd).await?;
    let spent = project_spent(&s, &slug).await?;
    Ok(Json(ProjectBudget {
        budget_usd: b.usd,
        spent_usd: spent,
        remaining_usd: b.usd.map(|u| u - spent),
    }))
}

/// The estimate beside what the project's runs spent.
#[derive(Debug, serde::Serialize, serde::Deserialize, ToSchema)]
pub struct Costs {
    /// What producing the project costs now (the counts from its scenes once qualified).
    pub estimate: Estimate,
    /// Per stage and kind of call: estimated (low, most likely, high) and spent.
    pub comparison: Vec<slate_workflows::estimate::CostComparison>,
    /// Spent by every run of the project, dollars.
    pub actual_usd: f64,
    /// The part of `actual_usd` that is an estimate: calls whose provider stated no cost are
    /// recorded at what they were expected to cost, never as nothing.
    pub estimated_usd: f64,
}

/// What the project's runs spent, per kind of call, against the estimate.
#[utoipa::path(get, path = "/api/projects/{slug}/costs", tag = "production",
    params(SlugPath),
    responses(
        (status = 200, description = "Estimated against spent per stage and kind of call", body = Costs),
        (status = 404, description = "No such project", body = ErrorBody),
    ))]
async fn costs(State(s): State<AppState>, Path(p): Path<SlugPath>) -> ApiResult<Json<Costs>> {
    let slug = p.slug()?;
    Ok(Json(project_costs(&s, &slug).await?))
}

/// The estimate of `slug` beside what its runs spent (the API's and the CLI's).
pub async fn project_costs(s: &AppState, slug: &slate_workflows::slug::Slug) -> ApiResult<Costs> {
    s.film.repo.project(slug).await?;
    let estimate = slate_workflows::estimate::estimate(&s.film, slug).await?;
    let mut spent = vec![];
    let mut estimated_micros = 0i64;
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
        for r in &page {
            let d = s.engine.inspect(r.id).await?;
            for st in d.steps {
                estimated_micros += st.cost.estimated_usd_micros;
                if st.cost.usd_micros != 0 {
                    spent.push((
                        r.workflow.clone(),
                        st.name.clone(),
                        st.cost.usd_micros as f64 / 1e6,
                    ));
                }
            }
        }
        match page.last() {
            Some(last) if page.len() == 500 => before = Some(last.id),
            _ => break,
        }
    }
    // (0.0 + : an empty sum of floats is -0.0.)
    let actual_usd = 0.0 + spent.iter().map(|(_, _, u)| u).sum::<f64>();
    Ok(Costs {
        comparison: slate_workflows::estimate::compare(&estimate, &spent),
        estimate,
        actual_usd,
        estimated_usd: estimated_micros as f64 / 1e6,
    })
}

/// What producing the project would cost with the configured providers, before anything runs.
#[utoipa::path(post, path = "/api/projects/{slug}/estimate", tag = "production",
    params(SlugPath),
    responses(
        (status = 200, description = "Calls × unit price per kind of call and stage, low and high", body = Estimate),
        (status = 404, description = "No such project", body = ErrorBody),
    ))]
async fn estimate(State(s): State<AppState>, Path(p): Path<SlugPath>) -> ApiResult<Json<Estimate>> {
    let slug = p.slug()?;
    s.film.repo.project(&slug).await?;
    Ok(Json(
        slate_workflows::estimate::estimate(&s.film, &slug).await?,
    ))
}

/// How to produce.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceBody {
    /// Stop the run before a step once this many dollars are spent.
    #[schema(minimum = 0)]
    pub budget_usd: Option<f64>,
    /// `/produce` only: seconds of the qualification's edit window.
    #[serde(
        default,
        deserialize_with = "slate_workflows::qualification::edit_window"
    )]
    #[schema(maximum = 604800)]
    pub edit_window_secs: Option<u64>,
    /// `/produce` only: qualify even though a department is short of the readiness threshold.
    #[serde(default)]
    pub force: bool,
}

/// Generate every scene and stitch the film (from a qualified project).
#[utoipa::path(post, path = "/api/projects/{slug}/generate", tag = "production",
    params(SlugPath), request_body(content = Option<ProduceBody>),
    responses(
        (status = 202, description = "Started", body = RunStarted),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 409, description = "Already being generated, nothing qualified yet, or the budget is below the estimate's low bound (`over_budget`, with the figures)", body = ErrorBody),
    ))]
async fn generate_film(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
    body: Option<JsonBody<ProduceBody>>,
) -> ApiResult<Response> {
    let slug = p.slug()?;
    let body = body.map(|b| b.0).unwrap_or_default();
    let started = crate::service::generate(
        &s,
        &slug,
        None,
        crate::service::StartRequest {
            budget_usd: body.budget_usd,
            ..Default::default()
        },
    )
    .await?;
    Ok(accepted(RunStarted {
        run_id: started.run.id,
    }))
}

/// Qualify (behind the same readiness gate and `force` as `/qualify`), then generate the film.
#[utoipa::path(post, path = "/api/projects/{slug}/produce", tag = "production",
    params(SlugPath), request_body(content = Option<ProduceBody>),
    responses(
        (status = 202, description = "Started", body = RunStarted),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 409, description = "The project is not gathering, or it is not ready: the message names what is missing (or send force); or the budget is below the estimate's low bound (`over_budget`, with the figures)", body = ErrorBody),
    ))]
async fn produce(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
    body: Option<JsonBody<ProduceBody>>,
) -> ApiResult<Response> {
    let slug = p.slug()?;
    let body = body.map(|b| b.0).unwrap_or_default();
    let started = crate::service::produce(
        &s,
        &slug,
        crate::service::StartRequest {
            force: body.force,
            edit_window_secs: body.edit_window_secs,
            budget_usd: body.budget_usd,
            idempotency_key: None,
        },
    )
    .await?;
    Ok(accepted(RunStarted {
        run_id: started.run.id,
    }))
}
