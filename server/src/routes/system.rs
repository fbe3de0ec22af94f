//! Health, metrics, the registered workflows, and the API's own description: the OpenAPI
//! document and its reference page, both public.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody, ErrorDetail};
use crate::state::AppState;

/// Public routes: health, the document and the reference page.
pub fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(openapi_json))
        .routes(routes!(reference))
}

/// Routes behind the API key.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(metrics))
        .routes(routes!(workflows))
}

/// The server and its database are up.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// `postgres` or `sqlite`.
    pub database: String,
}

/// The database does not answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthDown {
    /// `unavailable`.
    pub status: String,
    /// Why.
    pub error: ErrorDetail,
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/health", tag = "system",
    responses(
        (status = 200, description = "The server and its database answer", body = Health),
        (status = 503, description = "The database does not answer", body = HealthDown),
    ))]
async fn health(State(s): State<AppState>) -> Response {
    // A database that is down makes a connection attempt wait for its pool's timeout; a health
    // check answers within seconds.
    let probe = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        s.engine.store().next_due(),
    )
    .await
    .unwrap_or_else(|_| {
        Err(slate_engine::EngineError::Invalid(
            "the database did not answer within 3 s".into(),
        ))
    });
    match probe {
        Ok(_) => Json(Health {
            status: "ok".into(),
            database: s.engine.store().dialect().to_string(),
        })
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(HealthDown {
                status: "unavailable".into(),
                error: ErrorDetail {
                    code: "database".into(),
                    message: e.to_string(),
                },
            }),
        )
            .into_response(),
    }
}

/// Prometheus metrics: runs by workflow and status, step latency, retries, cost.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses(
        (status = 200, description = "Prometheus text exposition format",
            content_type = "text/plain; version=0.0.4", body = String),
        (status = 500, description = "Something went wrong on our side", body = ErrorBody),
    ))]
async fn metrics(State(s): State<AppState>) -> ApiResult<Response> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP slate_runs Runs by workflow and status.\n# TYPE slate_runs gauge"
    );
    for (w, st, n) in s.engine.store().count_by_status().await? {
        let _ = writeln!(out, "slate_runs{{workflow=\"{w}\",status=\"{st}\"}} {n}");
    }
    version_gauges(&s, &mut out).await?;
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

/// Runs by workflow and version: blocked ones (their journal no longer fits the code), and
/// stranded ones (not finished, on a workflow this build does not register or on a newer
/// version of it than this build has: a rollback left them). Every version seen gets a line,
/// zeros included, so an alert can watch for any rise.
async fn version_gauges(s: &AppState, out: &mut String) -> ApiResult<()> {
    let mut per: std::collections::BTreeMap<(String, u32), (i64, i64, i64)> = Default::default();
    for (w, v, st, n) in s.engine.store().count_by_version().await? {
        let e = per.entry((w.clone(), v)).or_default();
        let here = s.engine.registered_version(&w);
        if st == slate_engine::RunStatus::Blocked {
            e.1 += n;
        } else {
            e.0 += n;
            if here.is_none_or(|h| v > h) {
                e.2 += n;
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP slate_runs_open Runs not finished, by workflow and version of its definition.\n# TYPE slate_runs_open gauge"
    );
    for ((w, v), (open, _, _)) in &per {
        let _ = writeln!(
            out,
            "slate_runs_open{{workflow=\"{w}\",version=\"{v}\"}} {open}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP slate_runs_blocked Runs blocked: their journal no longer fits the code (slate runs ls --blocked).\n# TYPE slate_runs_blocked gauge"
    );
    for ((w, v), (_, blocked, _)) in &per {
        let _ = writeln!(
            out,
            "slate_runs_blocked{{workflow=\"{w}\",version=\"{v}\"}} {blocked}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP slate_runs_stranded Runs not finished whose workflow or version this build does not have.\n# TYPE slate_runs_stranded gauge"
    );
    for ((w, v), (_, _, stranded)) in &per {
        let _ = writeln!(
            out,
            "slate_runs_stranded{{workflow=\"{w}\",version=\"{v}\"}} {stranded}"
        );
    }
    Ok(())
}

/// The OpenAPI 3.1 document of this API (public, so tools can read it without a key).
#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::app::openapi_text(),
    )
        .into_response()
}

/// The API reference: every route, its parameters, bodies and answers, and a form to try it.
#[utoipa::path(get, path = "/docs", tag = "system",
    responses((status = 200, description = "An HTML page", content_type = "text/html", body = String)))]
async fn reference() -> Html<&'static str> {
    Html(include_str!("reference.html"))
}

/// The workflows this server runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct Workflows {
    /// Their names (`film.qualify`, `film.scene`...).
    pub workflows: Vec<String>,
}

/// Registered workflows.
#[utoipa::path(get, path = "/api/workflows", tag = "runs",
    responses((status = 200, description = "Registered workflows", body = Workflows)))]
async fn workflows(State(s): State<AppState>) -> Json<Workflows> {
    Json(Workflows {
        workflows: s.engine.workflows(),
    })
}
