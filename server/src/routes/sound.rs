//! The film's sound (issue 27): the project's sound settings (which stems play, their levels,
//! the loudness target) and a re-mix that makes a new version of the film with its sound mixed
//! again, and no picture made again.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use slate_engine::Workflow;
use slate_workflows::film_sound::{FilmRemix, RemixInput};
use slate_workflows::model::SoundSettings;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, RunStarted, SlugPath, accepted};
use crate::state::AppState;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sound, set_sound))
        .routes(routes!(remix))
}

/// How the project's film sounds: which stems play under the voices, their levels, the
/// loudness the mix is brought to. A scene's own switches are its `music_off` and
/// `effects_off` fields.
#[utoipa::path(get, path = "/api/projects/{slug}/film/sound", tag = "film", params(SlugPath),
    responses(
        (status = 200, description = "The settings", body = SoundSettings),
        (status = 404, description = "No such project", body = ErrorBody),
    ))]
async fn sound(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
) -> ApiResult<Json<SoundSettings>> {
    let slug = p.slug()?;
    Ok(Json(s.film.repo.project(&slug).await?.sound))
}

/// Set how the film sounds from its next mix on (a field left out takes its default); re-mix
/// to hear it in the film.
#[utoipa::path(put, path = "/api/projects/{slug}/film/sound", tag = "film", params(SlugPath),
    request_body = SoundSettings,
    responses(
        (status = 200, description = "Set", body = SoundSettings),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 422, description = "A level out of range, or not a settings object", body = ErrorBody),
    ))]
async fn set_sound(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
    JsonBody(b): JsonBody<SoundSettings>,
) -> ApiResult<Json<SoundSettings>> {
    let slug = p.slug()?;
    s.film.repo.project(&slug).await?;
    s.film.repo.set_sound(&slug, &b).await?;
    Ok(Json(b))
}

/// Mix the film's sound again from its newest version's cut, with the sound settings and the
/// scenes' switches as they are now: a new version with the same picture and voices (no image
/// or video made again).
#[utoipa::path(post, path = "/api/projects/{slug}/film/remix", tag = "film", params(SlugPath),
    responses(
        (status = 202, description = "Started", body = RunStarted),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 409, description = "No film yet, or something works for the project", body = ErrorBody),
    ))]
async fn remix(State(s): State<AppState>, Path(p): Path<SlugPath>) -> ApiResult<Response> {
    let slug = p.slug()?;
    crate::service::settle(&s, &slug).await?;
    if s.film.repo.film_versions(&slug).await?.is_empty() {
        return Err(ApiError::conflict(format!(
            "`{slug}` has no film yet: stitch it first"
        )));
    }
    if crate::service::any_live_run(&s, &slug).await? {
        return Err(ApiError::conflict(format!(
            "something works for `{slug}`: re-mix when it is done"
        )));
    }
    let input = RemixInput {
        project: slug.clone(),
    };
    let started =
        crate::service::start_for_project::<FilmRemix>(&s, &slug, &input, None, &[]).await?;
    tracing::info!(project = %slug, run = %started.run.id, workflow = FilmRemix::NAME, "re-mixing the film");
    Ok(accepted(RunStarted {
        run_id: started.run.id,
    }))
}
