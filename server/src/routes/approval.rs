//! The approval gate: turn it on for a project, see what awaits approval, approve or reject a
//! scene's composite (with a note), approve everything that waits.
//!
//! A decision is a signal to the scene's waiting run, keyed by the run and the round: a
//! second decision on the same composite (a double click, two people at once) is refused with
//! 409, never applied twice.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slate_workflows::generation::approval::{Decision, decision_key, signal_name};
use slate_workflows::model::{ApprovalState, Scene, SceneStatus};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::scenes::ScenePath;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, SlugPath, accepted, run_id};
use crate::state::AppState;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(set_approval))
        .routes(routes!(awaiting))
        .routes(routes!(approve_all))
        .routes(routes!(decide))
}

/// Whether a project's scenes wait for approval.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSetting {
    /// True: each scene's verified composite waits for a person before its video is paid for.
    pub required: bool,
}

/// Turn the approval gate on or off for a project. It applies to every scene that reaches its
/// verified composite from now on, in runs already under way too; scenes already waiting keep
/// waiting for a decision.
#[utoipa::path(put, path = "/api/projects/{slug}/approval", tag = "approval",
    params(SlugPath), request_body = ApprovalSetting,
    responses(
        (status = 200, description = "Set", body = ApprovalSetting),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 422, description = "Not a boolean", body = ErrorBody),
    ))]
async fn set_approval(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
    JsonBody(b): JsonBody<ApprovalSetting>,
) -> ApiResult<Json<ApprovalSetting>> {
    let slug = p.slug()?;
    s.film.repo.project(&slug).await?;
    s.film.repo.set_approval_required(&slug, b.required).await?;
    Ok(Json(b))
}

/// A scene whose composite awaits approval.
#[derive(Debug, Serialize, ToSchema)]
pub struct Awaiting {
    /// Scene id.
    pub scene_id: String,
    /// Its number in the screenplay.
    pub scene_number: i32,
    /// Its place in the film.
    pub sequence_number: i32,
    /// The composite to decide on (blob key; the image is at `/media/{key}`).
    pub composite: String,
    /// Which request this is for the scene (2 after one rejection, ...).
    pub round: u32,
    /// The run that waits.
    pub run_id: String,
    /// Since when.
    pub requested_at: Option<DateTime<Utc>>,
    /// Composite iterations used.
    pub iterations: usize,
    /// The composite's iteration limit (a rejection past it fails the scene).
    pub iteration_limit: u32,
    /// Rejections so far, with their notes.
    pub rejections: Vec<String>,
}

/// What awaits approval in a project.
#[derive(Debug, Serialize, ToSchema)]
pub struct AwaitingList {
    /// Whether the project's scenes wait for approval.
    pub required: bool,
    /// Scenes waiting now, in film order.
    pub awaiting: Vec<Awaiting>,
}

/// The scene's composite awaiting approval, if it does.
pub fn awaiting_of(scene: &Scene, iteration_limit: u32) -> Option<Awaiting> {
    let a = scene.approval.as_ref()?;
    (a.state == ApprovalState::Awaiting && scene.status == SceneStatus::VerifyingComposite).then(
        || Awaiting {
            scene_id: scene.id.clone(),
            scene_number: scene.scene_number,
            sequence_number: scene.sequence_number,
            composite: a.composite.clone(),
            round: a.round,
            run_id: a.run_id.clone(),
            requested_at: a.requested_at,
            iterations: scene.composite_iterations.len(),
            iteration_limit,
            rejections: a
                .history
                .iter()
                .filter(|d| d.state == ApprovalState::Rejected)
                .filter_map(|d| d.note.clone())
                .collect(),
        },
    )
}

/// The project's scenes waiting for approval.
pub async fn awaiting_in(
    s: &AppState,
    slug: &slate_workflows::slug::Slug,
) -> ApiResult<AwaitingList> {
    let project = s.film.repo.project(slug).await?;
    let scenes = s.film.repo.scenes(slug).await?;
    let mut awaiting = vec![];
    let limit = s.film.config.max_iterations;
    for a in scenes.iter().filter_map(|sc| awaiting_of(sc, limit)) {
        // A run cancelled or failed while it waited leaves its record behind: not waiting.
        if let Ok(id) = a.run_id.parse()
            && let Ok(run) = s.engine.get(id).await
            && !run.status.is_terminal()
        {
            awaiting.push(a);
        }
    }
    Ok(AwaitingList {
        required: project.approval_required,
        awaiting,
    })
}

/// The scenes whose verified composites await approval (nothing has been paid for their videos).
#[utoipa::path(get, path = "/api/projects/{slug}/approvals", tag = "approval",
    params(SlugPath),
    responses(
        (status = 200, description = "In film order", body = AwaitingList),
        (status = 404, description = "No such project", body = ErrorBody),
    ))]
async fn awaiting(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
) -> ApiResult<Json<AwaitingList>> {
    let slug = p.slug()?;
    Ok(Json(awaiting_in(&s, &slug).await?))
}

/// A decision on a scene's composite: approve it, or reject it with a note.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum DecisionBody {
    /// Make the video from it.
    Approve {
        /// The round you saw (from the awaiting list); when given, a decision on an older
        /// round is refused with 409 instead of applying to a composite you have not seen.
        #[serde(default)]
        round: Option<u32>,
    },
    /// Make a new composite iteration from the note, and ask again.
    Reject {
        /// What to change (it goes into the new composite's prompt).
        #[schema(
            min_length = 1,
            max_length = 2000,
            pattern = r"[^\s\u0085]",
            example = "the lamp should be on the left of the desk"
        )]
        note: String,
        /// The round you saw (see `approve`).
        #[serde(default)]
        round: Option<u32>,
    },
}

/// A decision delivered.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionSent {
    /// Scene id.
    pub scene_id: String,
    /// `approve` or `reject`.
    pub decision: String,
    /// The round decided on.
    pub round: u32,
    /// The run that goes on.
    pub run_id: String,
}

async fn send_decision(
    s: &AppState,
    scene: &Scene,
    approve: bool,
    note: Option<String>,
    round: Option<u32>,
) -> ApiResult<DecisionSent> {
    let id = &scene.id;
    let Some(a) = awaiting_of(scene, s.film.config.max_iterations) else {
        return Err(ApiError::conflict(format!(
            "scene `{id}` is not waiting for approval (it is {}); GET /api/projects/{}/approvals lists what is",
            scene.status.as_str(),
            scene.project
        )));
    };
    if let Some(r) = round
        && r != a.round
    {
        return Err(ApiError::conflict(format!(
            "scene `{id}` now waits on round {} (you decided on round {r}): look at its new composite first",
            a.round
        )));
    }
    let run = run_id(&a.run_id)?;
    let record = s.engine.get(run).await?;
    if record.status.is_terminal() {
        return Err(ApiError::conflict(format!(
            "the run {run} that waited for this approval is {}; generate the scene again with POST /api/scenes/{id}/generate",
            record.status.as_str()
        )));
    }
    let payload = serde_json::to_value(Decision {
        approve,
        note,
        round: a.round,
    })
    .map_err(ApiError::internal)?;
    let out = s
        .engine
        .signal(
            Some(run),
            &signal_name(id),
            Some(decision_key(&a.run_id, a.round)),
            payload,
        )
        .await?;
    if out.duplicate {
        return Err(ApiError::conflict(format!(
            "round {} of scene `{id}` has already been decided",
            a.round
        )));
    }
    Ok(DecisionSent {
        scene_id: id.clone(),
        decision: if approve { "approve" } else { "reject" }.into(),
        round: a.round,
        run_id: a.run_id,
    })
}

/// Approve a scene's composite (its video is made from it) or reject it with a note (a new
/// composite iteration is made from the note, within the 20-iteration limit, and put up for
/// approval again).
#[utoipa::path(post, path = "/api/scenes/{id}/approval", tag = "approval",
    params(ScenePath), request_body = DecisionBody,
    responses(
        (status = 202, description = "Delivered to the waiting run", body = DecisionSent),
        (status = 404, description = "No such scene", body = ErrorBody),
        (status = 409, description = "Not waiting for approval, or that round is already decided", body = ErrorBody),
        (status = 422, description = "Not `approve` or `reject`, or a rejection without a note", body = ErrorBody),
    ))]
async fn decide(
    State(s): State<AppState>,
    Path(p): Path<ScenePath>,
    JsonBody(b): JsonBody<DecisionBody>,
) -> ApiResult<Response> {
    let (decision, note, round) = match b {
        DecisionBody::Approve { round } => ("approve", None, round),
        DecisionBody::Reject { note, round } => ("reject", Some(note), round),
    };
    Ok(accepted(
        decide_scene(&s, &p.id, decision, note, round).await?,
    ))
}

/// Decide on a scene's composite (the API's and the CLI's rules).
pub async fn decide_scene(
    s: &AppState,
    scene_id: &str,
    decision: &str,
    note: Option<String>,
    round: Option<u32>,
) -> ApiResult<DecisionSent> {
    let approve = match decision {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(ApiError::unprocessable(format!(
                "decision must be `approve` or `reject`, not `{}`",
                other.chars().take(40).collect::<String>()
            )));
        }
    };
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if !approve && note.is_none() {
        return Err(ApiError::unprocessable(
            "a rejection needs a note that says what to change (it goes into the new composite's prompt)",
        ));
    }
    if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(ApiError::unprocessable(
            "the note is longer than 2,000 characters",
        ));
    }
    let scene = s.film.repo.scene(scene_id).await?;
    send_decision(s, &scene, approve, note, round).await
}

/// What approve-all did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovedAll {
    /// The scenes approved, in film order.
    pub approved: Vec<DecisionSent>,
}

/// Approve every composite of the project that awaits approval now. Scenes that reach the
/// gate later wait as before (turn the gate off with PUT /api/projects/{slug}/approval to let
/// them through).
#[utoipa::path(post, path = "/api/projects/{slug}/approvals/approve-all", tag = "approval",
    params(SlugPath),
    responses(
        (status = 200, description = "Approved (an empty list when nothing waited)", body = ApprovedAll),
        (status = 404, description = "No such project", body = ErrorBody),
    ))]
async fn approve_all(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
) -> ApiResult<Json<ApprovedAll>> {
    let slug = p.slug()?;
    Ok(Json(approve_all_in(&s, &slug).await?))
}

/// Approve every composite of the project that awaits approval now.
pub async fn approve_all_in(
    s: &AppState,
    slug: &slate_workflows::slug::Slug,
) -> ApiResult<ApprovedAll> {
    let list = awaiting_in(s, slug).await?;
    let mut approved = vec![];
    for a in list.awaiting {
        let scene = s.film.repo.scene(&a.scene_id).await?;
        match send_decision(s, &scene, true, None, Some(a.round)).await {
            Ok(d) => approved.push(d),
            // Decided by someone else meanwhile: not ours to report.
            Err(e) if e.status == axum::http::StatusCode::CONFLICT => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ApprovedAll { approved })
}
