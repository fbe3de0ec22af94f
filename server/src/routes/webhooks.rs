//! Webhooks: providers tell us a job finished, and the run waiting for it wakes. Each is
//! authenticated by the shared secret (`X-Webhook-Secret`) or the callback URL's path-scoped
//! token, and deduplicated by the engine on its event key.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use slate_activities::remote::fal::FalWebhook;
use slate_activities::remote::services::task_signal;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{AppState, same_secret};
use crate::error::{ApiError, ApiResult, ErrorBody};

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(video_complete))
        .routes(routes!(last_frame_complete))
        .routes(routes!(stitch_complete))
        .routes(routes!(fal))
}

/// A webhook's token.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookQuery {
    /// The callback URL's token (or send `X-Webhook-Secret`).
    pub token: Option<String>,
}

/// A task service's callback.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TaskWebhook {
    /// The task.
    #[schema(min_length = 1, max_length = 200)]
    pub task_id: String,
    /// `completed` when omitted; `failed`, `processing`...
    pub status: Option<String>,
    /// The task's result or error, and anything else the service sends.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rest: BTreeMap<String, Value>,
}

/// What a webhook did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivered {
    /// True.
    pub received: bool,
    /// The signal it became.
    pub signal: String,
    /// True when this delivery had been received already (nothing happened).
    pub duplicate: bool,
    /// Runs it woke.
    pub woken: u64,
}

/// A webhook carries the shared secret in `X-Webhook-Secret`, or the path's token (see
/// [`slate_activities::config::webhook_token`]) in `?token=`, as our callback URLs do.
fn check(s: &AppState, headers: &HeaderMap, token: Option<&str>, path: &str) -> ApiResult<()> {
    let Some(secret) = &s.config.webhook_secret else {
        return Ok(());
    };
    let refuse = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
    if let Some(given) = headers
        .get("x-webhook-secret")
        .and_then(|v| v.to_str().ok())
    {
        return if same_secret(given, secret.expose()) {
            Ok(())
        } else {
            Err(refuse("the webhook secret does not match"))
        };
    }
    match token {
        None => Err(refuse(
            "webhooks carry the shared secret in `X-Webhook-Secret` or the callback URL's `?token=`",
        )),
        Some(t) if same_secret(t, &slate_activities::config::webhook_token(secret, path)) => Ok(()),
        Some(_) => Err(refuse("the webhook token does not match this path")),
    }
}

/// The body, read after the sender is authenticated (a stranger's body is never parsed).
async fn body<T: serde::de::DeserializeOwned>(req: Request) -> ApiResult<(Value, T)> {
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "a webhook body is at most 1 MiB",
            )
        })?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the webhook body is not JSON: {e}")))?;
    let t = serde_json::from_value(v.clone())
        .map_err(|e| ApiError::unprocessable(format!("the webhook body does not fit: {e}")))?;
    Ok((v, t))
}

async fn deliver(
    s: &AppState,
    name: String,
    key: String,
    payload: Value,
) -> ApiResult<Json<Delivered>> {
    let out = s.engine.signal(None, &name, Some(key), payload).await?;
    Ok(Json(Delivered {
        received: true,
        signal: name,
        duplicate: out.duplicate,
        woken: out.woken,
    }))
}

async fn task(
    s: AppState,
    kind: &str,
    headers: HeaderMap,
    q: WebhookQuery,
    req: Request,
) -> ApiResult<Json<Delivered>> {
    check(&s, &headers, q.token.as_deref(), req.uri().path())?;
    let (raw, w): (Value, TaskWebhook) = body(req).await?;
    if w.task_id.is_empty() || w.task_id.chars().count() > 200 {
        return Err(ApiError::unprocessable(
            "the webhook body needs `task_id` (1-200 characters)",
        ));
    }
    let status = w.status.clone().unwrap_or_else(|| "completed".into());
    // One signal per task and status: a repeated delivery is dropped; a late one for an earlier
    // status wakes nothing that matters (the workflow polls the task's real state).
    deliver(
        &s,
        task_signal(kind, &w.task_id),
        format!("{}:{status}", w.task_id),
        raw,
    )
    .await
}

/// Tasks service: a video task finished.
#[utoipa::path(post, path = "/api/webhooks/video-complete", tag = "webhooks",
    params(WebhookQuery), request_body = TaskWebhook,
    responses(
        (status = 200, description = "Received", body = Delivered),
        (status = 401, description = "Neither the secret nor this path's token", body = ErrorBody),
    ))]
async fn video_complete(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<WebhookQuery>, QueryRejection>,
    req: Request,
) -> ApiResult<Json<Delivered>> {
    task(
        s,
        slate_activities::remote::services::VIDEO_COMPLETE,
        headers,
        q?.0,
        req,
    )
    .await
}

/// Last-frame service: an extraction finished.
#[utoipa::path(post, path = "/api/webhooks/last-frame-complete", tag = "webhooks",
    params(WebhookQuery), request_body = TaskWebhook,
    responses(
        (status = 200, description = "Received", body = Delivered),
        (status = 401, description = "Neither the secret nor this path's token", body = ErrorBody),
    ))]
async fn last_frame_complete(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<WebhookQuery>, QueryRejection>,
    req: Request,
) -> ApiResult<Json<Delivered>> {
    task(s, "last-frame-complete", headers, q?.0, req).await
}

/// Last-frame service: a stitch finished.
#[utoipa::path(post, path = "/api/webhooks/stitch-complete", tag = "webhooks",
    params(WebhookQuery), request_body = TaskWebhook,
    responses(
        (status = 200, description = "Received", body = Delivered),
        (status = 401, description = "Neither the secret nor this path's token", body = ErrorBody),
    ))]
async fn stitch_complete(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<WebhookQuery>, QueryRejection>,
    req: Request,
) -> ApiResult<Json<Delivered>> {
    task(s, "stitch-complete", headers, q?.0, req).await
}

/// fal.ai: a queued request finished.
#[utoipa::path(post, path = "/api/webhooks/fal", tag = "webhooks",
    params(WebhookQuery), request_body = FalWebhook,
    responses(
        (status = 200, description = "Received", body = Delivered),
        (status = 401, description = "Neither the secret nor this path's token", body = ErrorBody),
    ))]
async fn fal(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<WebhookQuery>, QueryRejection>,
    req: Request,
) -> ApiResult<Json<Delivered>> {
    let q = q?.0;
    check(&s, &headers, q.token.as_deref(), req.uri().path())?;
    let (raw, w): (Value, FalWebhook) = body(req).await?;
    if !slate_activities::model::has_text(&w.request_id) || w.request_id.chars().count() > 200 {
        return Err(ApiError::unprocessable("a fal webhook needs a request_id"));
    }
    deliver(&s, w.signal_name(), w.request_id.clone(), raw).await
}
