//! Webhooks: providers tell us a job finished, and the run waiting for it wakes.
//!
//! The spec's services call back with the bodies the spec shows, which name no task of ours
//! (`{scene_id, video_url, duration}`, `{video_url, image_url}`, `{metadata, video_result_url}`):
//! the callback URLs Slate hands out carry our run (video) or our reference for the task
//! (last frame, stitch) in their query, and a body's `task_id` is used where one is sent.
//! Every webhook is authenticated: by the shared secret (`X-Webhook-Secret`) or the callback
//! URL's token, which covers its path and query; fal's by its ED25519 signature. Unless the
//! operator turns it off (`SLATE_WEBHOOK_AUTH=off`), one that is neither is refused with 401 and
//! wakes nothing. Deliveries are deduplicated by the engine on their event key, and only wake
//! runs, which then ask the provider (decision 0008).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use slate_activities::remote::fal::FalWebhook;
use slate_activities::remote::fal_signature::SignedHeaders;
use slate_activities::remote::services::{
    LAST_FRAME_COMPLETE, STITCH_COMPLETE, VIDEO_COMPLETE, task_signal,
};
use slate_engine::RunId;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use slate_activities::config::same_secret;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(video_complete))
        .routes(routes!(last_frame_complete))
        .routes(routes!(stitch_complete))
        .routes(routes!(fal))
}

/// A webhook's query: what our callback URLs carry.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookQuery {
    /// The callback URL's token (or send `X-Webhook-Secret`).
    pub token: Option<String>,
    /// The run the callback is about (video callbacks).
    #[param(value_type = Option<String>, format = Uuid)]
    pub run: Option<String>,
    /// Our reference for the task (last-frame and stitch callbacks).
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// The task, for senders that put it in the URL.
    pub task: Option<String>,
}

/// A service's callback: the spec's bodies, with or without our task's id. Every field is
/// optional; the callback URL's query says what the body does not.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TaskWebhook {
    /// The task, where the service sends it.
    #[schema(min_length = 1, max_length = 200)]
    pub task_id: Option<String>,
    /// `completed` when omitted; `failed`, `processing`... (any case).
    pub status: Option<String>,
    /// The spec's video callback: the scene, the clip and its length.
    pub scene_id: Option<String>,
    /// The clip (video, last frame) or the stitched film (`video_result_url`).
    pub video_url: Option<String>,
    /// The extracted frame.
    pub image_url: Option<String>,
    /// The stitched film.
    pub video_result_url: Option<String>,
    /// The clip's length, seconds.
    pub duration: Option<f64>,
    /// The stitch callback's metadata (`project_id`).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, Value>>,
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

fn refuse(m: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m)
}

/// The signed part of a callback URL: its path, and its query without the token.
fn signed_part(path: &str, query: Option<&str>) -> String {
    let rest: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("token="))
        .collect();
    if rest.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", rest.join("&"))
    }
}

/// A webhook carries the shared secret in `X-Webhook-Secret`, or in `?token=` the token of its
/// path and query (see [`slate_activities::config::webhook_token`]), as our callback URLs do.
/// Without a secret configured, webhooks are refused unless `SLATE_WEBHOOK_AUTH=off`.
fn check(s: &AppState, headers: &HeaderMap, uri: &axum::http::Uri) -> ApiResult<()> {
    if s.config.providers.webhook_auth_off {
        return Ok(());
    }
    let Some(secret) = &s.config.webhook_secret else {
        return Err(refuse(
            "webhooks are refused until the server has SLATE_WEBHOOK_SECRET (or SLATE_WEBHOOK_AUTH=off)",
        ));
    };
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
    let token = uri.query().and_then(|q| {
        q.split('&')
            .find_map(|p| p.strip_prefix("token="))
            .map(str::to_string)
    });
    let Some(t) = token else {
        return Err(refuse(
            "webhooks carry the shared secret in `X-Webhook-Secret` or the callback URL's `?token=`",
        ));
    };
    let signed = signed_part(uri.path(), uri.query());
    let token = |part: &str| slate_activities::config::webhook_token(secret, part);
    // The path alone: callback URLs handed out before tokens covered the query.
    if same_secret(&t, &token(&signed)) || same_secret(&t, &token(uri.path())) {
        Ok(())
    } else {
        Err(refuse("the webhook token does not match this URL"))
    }
}

async fn read_body(req: Request) -> ApiResult<axum::body::Bytes> {
    axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "a webhook body is at most 1 MiB",
            )
        })
}

/// The body, read after the sender is authenticated (a stranger's body is never parsed).
fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<(Value, T)> {
    let v: Value = serde_json::from_slice(bytes)
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

fn id_ok(v: &str) -> bool {
    slate_activities::model::has_text(v) && v.chars().count() <= 200
}

/// The job a run submitted for its clip: the output of its `video/submit` step.
async fn video_job_of(s: &AppState, run: &str) -> ApiResult<String> {
    let id: RunId = run.parse().map_err(|_| {
        ApiError::unprocessable(format!("`{run}` in the callback URL is not a run id"))
    })?;
    let detail = s.engine.inspect(id).await?;
    detail
        .events
        .iter()
        .rev()
        .find_map(|e| match &e.data {
            slate_engine::EventData::StepSucceeded { output, .. }
                if e.step.as_deref() == Some(slate_workflows::generation::VIDEO_SUBMIT) =>
            {
                output
                    .get("id")
                    .and_then(|i| i.as_str())
                    .map(str::to_string)
            }
            _ => None,
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_video_job",
                format!("run {run} has submitted no video yet; nothing to wake"),
            )
        })
}

async fn task(
    s: AppState,
    kind: &str,
    headers: HeaderMap,
    q: WebhookQuery,
    req: Request,
) -> ApiResult<Json<Delivered>> {
    check(&s, &headers, req.uri())?;
    // A `run` in the URL, even an empty one, must be a run id (the query extractor reads an
    // empty value as absent).
    let run_given = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|p| p.strip_prefix("run="))
        .map(str::to_string);
    if let Some(r) = run_given
        && r.parse::<RunId>().is_err()
    {
        return Err(ApiError::unprocessable(format!(
            "`{}` in the callback URL is not a run id",
            r.chars().take(60).collect::<String>()
        )));
    }
    let bytes = read_body(req).await?;
    let (raw, w): (Value, TaskWebhook) = parse(&bytes)?;
    let status = w
        .status
        .as_deref()
        .unwrap_or("completed")
        .trim()
        .to_ascii_lowercase();
    let task = w
        .task_id
        .clone()
        .or(q.task.clone())
        .filter(|t| !t.is_empty());
    if let Some(t) = &task
        && !id_ok(t)
    {
        return Err(ApiError::unprocessable(
            "`task_id` must have 1-200 characters",
        ));
    }
    if kind == VIDEO_COMPLETE {
        let job = match (task, &q.run) {
            (Some(t), _) => t,
            (None, Some(run)) => video_job_of(&s, run).await?,
            (None, None) => {
                return Err(ApiError::not_found(
                    "no job to wake: a video callback names its task (`task_id` in the body) or its run (the callback URLs Slate sends carry `?run=`)",
                ));
            }
        };
        // One signal per task and status: a repeated delivery is dropped; a late one for an
        // earlier status wakes nothing that matters (the workflow polls the task's real state).
        return deliver(&s, task_signal(kind, &job), format!("{job}:{status}"), raw).await;
    }
    // A last-frame or stitch task is awaited inside its step: the reference in our callback
    // URL wakes that wait in this process (another host's wait polls on its own).
    let Some(id) = q.reference.clone().filter(|r| id_ok(r)).or(task) else {
        return Err(ApiError::unprocessable(
            "a last-frame or stitch callback needs `task_id` in its body, or the `ref` Slate's callback URLs carry",
        ));
    };
    if let Some(r) = &q.reference {
        slate_activities::wake::wake(r);
    }
    deliver(&s, task_signal(kind, &id), format!("{id}:{status}"), raw).await
}

/// Tasks service: a video task finished.
#[utoipa::path(post, path = "/api/webhooks/video-complete", tag = "webhooks",
    params(WebhookQuery), request_body = TaskWebhook,
    responses(
        (status = 200, description = "Received", body = Delivered),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "Neither the secret nor this URL's token", body = ErrorBody),
        (status = 404, description = "No job to wake: the body names no task and the URL no run or reference, or the run does not exist", body = ErrorBody),
        (status = 409, description = "The run in the URL has no video job to wake", body = ErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
        (status = 422, description = "The body or query does not fit (a run that is not an id)", body = ErrorBody),
    ))]
async fn video_complete(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<WebhookQuery>, QueryRejection>,
    req: Request,
) -> ApiResult<Json<Delivered>> {
    task(s, VIDEO_COMPLETE, headers, q?.0, req).await
}

/// Last-frame service: an extraction finished.
#[utoipa::path(post, path = "/api/webhooks/last-frame-complete", tag = "webhooks",
    params(WebhookQuery), request_body = TaskWebhook,
    responses(
        (status = 200, description = "Received", body = Delivered),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "Neither the secret nor this URL's token", body = ErrorBody),
        (status = 404, description = "No job to wake: the body names no task and the URL no run or reference, or the run does not exist", body = ErrorBody),
        (status = 409, description = "The run in the URL has no video job to wake", body = ErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
        (status = 422, description = "The body or query does not fit (a run that is not an id)", body = ErrorBody),
    ))]
async fn last_frame_complete(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<WebhookQuery>, QueryRejection>,
    req: Request,
) -> ApiResult<Json<Delivered>> {
    task(s, LAST_FRAME_COMPLETE, headers, q?.0, req).await
}

/// Last-frame service: a stitch finished.
#[utoipa::path(post, path = "/api/webhooks/stitch-complete", tag = "webhooks",
    params(WebhookQuery), request_body = TaskWebhook,
    responses(
        (status = 200, description = "Received", body = Delivered),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "Neither the secret nor this URL's token", body = ErrorBody),
        (status = 404, description = "No job to wake: the body names no task and the URL no run or reference, or the run does not exist", body = ErrorBody),
        (status = 409, description = "The run in the URL has no video job to wake", body = ErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
        (status = 422, description = "The body or query does not fit (a run that is not an id)", body = ErrorBody),
    ))]
async fn stitch_complete(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<WebhookQuery>, QueryRejection>,
    req: Request,
) -> ApiResult<Json<Delivered>> {
    task(s, STITCH_COMPLETE, headers, q?.0, req).await
}

/// fal.ai: a queued request finished. Signed by fal (ED25519, keys from its JWKS, timestamp
/// within 300 s); a delivery without a valid signature is refused with 401 and wakes nothing.
#[utoipa::path(post, path = "/api/webhooks/fal", tag = "webhooks",
    params(WebhookQuery), request_body = FalWebhook,
    responses(
        (status = 200, description = "Received", body = Delivered),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No valid fal signature", body = ErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
        (status = 422, description = "Not a fal webhook body", body = ErrorBody),
    ))]
async fn fal(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<WebhookQuery>, QueryRejection>,
    req: Request,
) -> ApiResult<Json<Delivered>> {
    q?;
    let bytes = read_body(req).await?;
    if !s.config.providers.webhook_auth_off {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let signed = SignedHeaders {
            request_id: h("x-fal-webhook-request-id"),
            user_id: h("x-fal-webhook-user-id"),
            timestamp: h("x-fal-webhook-timestamp"),
            signature: h("x-fal-webhook-signature"),
        };
        let now = chrono::Utc::now().timestamp();
        s.fal_keys
            .verify(&signed, &bytes, now)
            .await
            .map_err(refuse)?;
    }
    let (raw, w): (Value, FalWebhook) = parse(&bytes)?;
    if !id_ok(&w.request_id) {
        return Err(ApiError::unprocessable("a fal webhook needs a request_id"));
    }
    deliver(&s, w.signal_name(), w.request_id.clone(), raw).await
}
