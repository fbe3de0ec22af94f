//! Scenes: list, read, edit (with optimistic versions), generate one again.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use slate_workflows::generation::{PreviousScene, SceneGeneration, SceneInput};
use slate_workflows::model::{Scene, SceneStatus};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, RunStarted, SlugPath, accepted, slug};
use crate::service::start_for_project;
use crate::state::AppState;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_scenes))
        .routes(routes!(progress))
        .routes(routes!(get_scene, edit_scene))
        .routes(routes!(generate_scene))
}

/// A scene.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ScenePath {
    /// The scene's id.
    pub id: String,
}

/// A project's scenes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Scenes {
    /// In film order.
    pub scenes: Vec<Scene>,
}

/// A project's scenes in film order.
#[utoipa::path(get, path = "/api/projects/{slug}/scenes", tag = "scenes", params(SlugPath),
    responses(
        (status = 200, description = "In film order", body = Scenes),
        (status = 404, description = "No such project", body = ErrorBody),
    ))]
async fn list_scenes(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
) -> ApiResult<Json<Scenes>> {
    let slug = p.slug()?;
    s.film.repo.project(&slug).await?;
    Ok(Json(Scenes {
        scenes: s.film.repo.scenes(&slug).await?,
    }))
}

/// Where a project's scenes stand.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct Progress {
    /// Scenes in the film.
    pub scenes: usize,
    /// Finished (clip and last frame).
    pub completed: usize,
    /// Being made now, in film order (several at once where they are in different places).
    pub in_flight: Vec<InFlight>,
    /// Stopped, waiting for a person to retry them.
    pub failed: Vec<i32>,
    /// Not started yet, or planned and waiting for the previous scene's last frame.
    pub waiting: usize,
    /// Seconds of film finished, of the seconds planned.
    pub seconds_done: f64,
    /// Seconds planned.
    pub seconds_planned: f64,
}

/// A scene being made.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct InFlight {
    /// Its number.
    pub scene_number: i32,
    /// Scene id.
    pub scene_id: String,
    /// Its state (`generating_composite`, `verifying_composite`, `generating_video`).
    pub status: SceneStatus,
}

/// The progress of a project's scenes.
pub fn progress_of(scenes: &[Scene]) -> Progress {
    let busy = |s: &Scene| {
        matches!(
            s.status,
            SceneStatus::GeneratingComposite
                | SceneStatus::VerifyingComposite
                | SceneStatus::GeneratingVideo
        )
    };
    Progress {
        scenes: scenes.len(),
        completed: scenes
            .iter()
            .filter(|s| s.status == SceneStatus::Completed)
            .count(),
        in_flight: scenes
            .iter()
            .filter(|s| busy(s))
            .map(|s| InFlight {
                scene_number: s.scene_number,
                scene_id: s.id.clone(),
                status: s.status,
            })
            .collect(),
        failed: scenes
            .iter()
            .filter(|s| s.status == SceneStatus::Failed)
            .map(|s| s.scene_number)
            .collect(),
        waiting: scenes
            .iter()
            .filter(|s| {
                matches!(
                    s.status,
                    SceneStatus::ReadyForGeneration | SceneStatus::WaitingForPrevious
                )
            })
            .count(),
        seconds_done: scenes
            .iter()
            .filter(|s| s.status == SceneStatus::Completed)
            .map(|s| s.actual_duration.unwrap_or(s.expected_duration))
            .sum(),
        seconds_planned: scenes.iter().map(|s| s.expected_duration).sum(),
    }
}

/// How far the film has come: scenes done, in flight (several at once), failed, waiting.
#[utoipa::path(get, path = "/api/projects/{slug}/progress", tag = "scenes", params(SlugPath),
    responses(
        (status = 200, description = "Where the scenes stand", body = Progress),
        (status = 404, description = "No such project", body = ErrorBody),
    ))]
async fn progress(State(s): State<AppState>, Path(p): Path<SlugPath>) -> ApiResult<Json<Progress>> {
    let slug = p.slug()?;
    s.film.repo.project(&slug).await?;
    Ok(Json(progress_of(&s.film.repo.scenes(&slug).await?)))
}

/// A scene with its iterations, verifications, continuity checks, clip and last frame.
#[utoipa::path(get, path = "/api/scenes/{id}", tag = "scenes", params(ScenePath),
    responses(
        (status = 200, description = "The scene", body = Scene),
        (status = 404, description = "No such scene", body = ErrorBody),
    ))]
async fn get_scene(State(s): State<AppState>, Path(p): Path<ScenePath>) -> ApiResult<Json<Scene>> {
    Ok(Json(s.film.repo.scene(&p.id).await?))
}

/// An edit of a scene.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SceneEdit {
    /// The version you read; a newer one refuses the edit with 409.
    pub version: i64,
    /// Scene fields and their new values (validated as the scene is).
    #[schema(value_type = Object, example = json!({"camera_shot": "close-up", "expected_duration": 5.0}))]
    pub changes: Value,
}

/// Edit a scene (409 if it changed since your version).
#[utoipa::path(patch, path = "/api/scenes/{id}", tag = "scenes",
    params(ScenePath), request_body = SceneEdit,
    responses(
        (status = 200, description = "The scene as saved", body = Scene),
        (status = 404, description = "No such scene", body = ErrorBody),
        (status = 409, description = "The scene changed since your version: the message has the newer one", body = ErrorBody),
        (status = 422, description = "A field does not fit", body = ErrorBody),
    ))]
async fn edit_scene(
    State(s): State<AppState>,
    Path(p): Path<ScenePath>,
    JsonBody(b): JsonBody<SceneEdit>,
) -> ApiResult<Json<Scene>> {
    Ok(Json(
        s.film.repo.edit_scene(&p.id, b.version, &b.changes).await?,
    ))
}

/// What to make again.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GenerateQuery {
    /// Also the scenes after it that start from the one before (its chain), in order, each
    /// from the new last frame of the one before.
    #[serde(default)]
    pub chain: bool,
}

/// Generate one scene again, a new take (its predecessor's last frame seeds it when it has
/// one); with `chain=true`, it and the rest of its chain, in order.
#[utoipa::path(post, path = "/api/scenes/{id}/generate", tag = "scenes", params(ScenePath, GenerateQuery),
    responses(
        (status = 202, description = "Started", body = RunStarted),
        (status = 400, description = "A bad query", body = ErrorBody),
        (status = 404, description = "No such scene", body = ErrorBody),
        (status = 409, description = "The scene (or one of its chain) is being generated", body = ErrorBody),
    ))]
async fn generate_scene(
    State(s): State<AppState>,
    Path(p): Path<ScenePath>,
    q: Result<axum::extract::Query<GenerateQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let axum::extract::Query(q) = q?;
    let id = p.id;
    let slug = slug(&s.film.repo.scene(&id).await?.project)?;
    crate::service::settle(&s, &slug).await?;
    let scene = s.film.repo.scene(&id).await?;
    if matches!(
        scene.status,
        SceneStatus::WaitingForPrevious
            | SceneStatus::GeneratingComposite
            | SceneStatus::VerifyingComposite
            | SceneStatus::GeneratingVideo
    ) {
        return Err(ApiError::conflict(format!(
            "scene `{id}` is being generated"
        )));
    }
    let scenes = s.film.repo.scenes(&slug).await?;
    if q.chain {
        return remake_chain(&s, &slug, &scenes, &id).await;
    }
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
    let input = SceneInput {
        project: slug.clone(),
        scene_id: id,
        previous,
        // A person waits for this one: ahead of any film's scenes for the providers' slots.
        priority: slate_workflows::scene::PERSON_PRIORITY,
        previous_by_signal: false,
    };
    let started = start_for_project::<SceneGeneration>(&s, &slug, &input, None, &[]).await?;
    Ok(accepted(RunStarted {
        run_id: started.run.id,
    }))
}

/// Start the remake of scene `id` and the rest of its chain.
async fn remake_chain(
    s: &AppState,
    slug: &slate_workflows::Slug,
    scenes: &[Scene],
    id: &str,
) -> ApiResult<Response> {
    let chain = slate_workflows::chain::chain_from(scenes, id);
    if let Some(busy) = scenes
        .iter()
        .find(|sc| chain.contains(&sc.id) && slate_workflows::film_versions::busy(sc.status))
    {
        return Err(ApiError::conflict(format!(
            "scene {} of the chain is being generated; wait for it",
            busy.scene_number
        )));
    }
    let input = slate_workflows::chain::ChainInput {
        project: slug.clone(),
        scenes: chain,
    };
    let started =
        start_for_project::<slate_workflows::chain::ChainRemake>(s, slug, &input, None, &[])
            .await?;
    Ok(accepted(RunStarted {
        run_id: started.run.id,
    }))
}
