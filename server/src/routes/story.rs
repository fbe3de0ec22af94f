//! The story bible and the characters' reference sheets, each edited with optimistic versions.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use slate_activities::model::StoryBible;
use slate_workflows::repo::{CharacterReference, Versioned};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, SlugPath, slug};
use crate::state::AppState;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_bible, put_bible))
        .routes(routes!(list_characters))
        .routes(routes!(put_character))
        .routes(routes!(get_screenplay))
}

/// Which form of the screenplay.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScreenplayQuery {
    /// `fountain` (plain text, the default) or `pdf` (the standard layout).
    #[param(inline)]
    pub format: Option<ScreenplayFormat>,
}

/// A screenplay's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScreenplayFormat {
    /// Fountain, plain text.
    Fountain,
    /// A PDF in the standard layout.
    Pdf,
}

/// The qualified screenplay, as Fountain or as a PDF in the standard layout (Courier 12 pt,
/// scene headings, character cues and dialogue indented).
#[utoipa::path(get, path = "/api/projects/{slug}/screenplay", tag = "story",
    params(SlugPath, ScreenplayQuery),
    responses(
        (status = 200, description = "The screenplay: Fountain text, or a PDF", content(
            (String = "text/plain"),
            (Vec<u8> = "application/pdf"),
        )),
        (status = 404, description = "No such project, or no screenplay yet (qualify it first)", body = ErrorBody),
        (status = 422, description = "An unknown format", body = ErrorBody),
    ))]
async fn get_screenplay(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
    q: Result<axum::extract::Query<ScreenplayQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let format = q?.0.format.unwrap_or(ScreenplayFormat::Fountain);
    let slug = p.slug()?;
    s.film.repo.project(&slug).await?;
    let Some(text) = s.film.screenplay_fountain(&slug).await? else {
        return Err(crate::error::ApiError::not_found(format!(
            "{slug} has no screenplay yet: qualify it first (POST /api/projects/{slug}/qualify)"
        )));
    };
    let disposition = |ext: &str| format!("attachment; filename=\"{slug}.{ext}\"");
    if format == ScreenplayFormat::Pdf {
        let pdf = tokio::task::spawn_blocking(move || slate_activities::screenplay::pdf(&text))
            .await
            .map_err(crate::error::ApiError::internal)?
            .map_err(crate::error::ApiError::internal)?;
        return Ok((
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/pdf".to_string(),
                ),
                (axum::http::header::CONTENT_DISPOSITION, disposition("pdf")),
            ],
            pdf,
        )
            .into_response());
    }
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                disposition("fountain"),
            ),
        ],
        text,
    )
        .into_response())
}

/// The story bible with its version.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionedBible {
    /// The bible.
    #[serde(flatten)]
    pub bible: StoryBible,
    /// Send it back with an edit.
    pub version: i64,
}

impl From<Versioned<StoryBible>> for VersionedBible {
    fn from(v: Versioned<StoryBible>) -> Self {
        VersionedBible {
            bible: v.value,
            version: v.version,
        }
    }
}

/// The story bible.
#[utoipa::path(get, path = "/api/projects/{slug}/story-bible", tag = "story", params(SlugPath),
    responses(
        (status = 200, description = "The bible", body = VersionedBible),
        (status = 404, description = "No such project, or not qualified yet", body = ErrorBody),
    ))]
async fn get_bible(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
) -> ApiResult<Json<VersionedBible>> {
    Ok(Json(s.film.repo.story_bible(&p.slug()?).await?.into()))
}

/// An edit of the story bible.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BibleEdit {
    /// The version you read.
    pub version: i64,
    /// The whole bible as it should be.
    pub bible: StoryBible,
}

/// Edit the story bible (409 if it changed since your version).
#[utoipa::path(put, path = "/api/projects/{slug}/story-bible", tag = "story",
    params(SlugPath), request_body = BibleEdit,
    responses(
        (status = 200, description = "As saved", body = VersionedBible),
        (status = 404, description = "No such project, or not qualified yet", body = ErrorBody),
        (status = 409, description = "It changed since your version", body = ErrorBody),
    ))]
async fn put_bible(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
    JsonBody(b): JsonBody<BibleEdit>,
) -> ApiResult<Json<VersionedBible>> {
    let saved = s
        .film
        .repo
        .edit_story_bible(&p.slug()?, b.version, &b.bible)
        .await?;
    Ok(Json(saved.into()))
}

/// A character's reference sheet with its version.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionedCharacter {
    /// The sheet.
    #[serde(flatten)]
    pub reference: CharacterReference,
    /// Send it back with an edit.
    pub version: i64,
}

impl From<Versioned<CharacterReference>> for VersionedCharacter {
    fn from(v: Versioned<CharacterReference>) -> Self {
        VersionedCharacter {
            reference: v.value,
            version: v.version,
        }
    }
}

/// A project's characters.
#[derive(Debug, Serialize, ToSchema)]
pub struct Characters {
    /// Their reference sheets.
    pub characters: Vec<VersionedCharacter>,
}

/// Character references (360-degree views).
#[utoipa::path(get, path = "/api/projects/{slug}/characters", tag = "story", params(SlugPath),
    responses(
        (status = 200, description = "The sheets", body = Characters),
        (status = 404, description = "No such project", body = ErrorBody),
    ))]
async fn list_characters(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
) -> ApiResult<Json<Characters>> {
    let slug = p.slug()?;
    s.film.repo.project(&slug).await?;
    let characters = s.film.repo.character_references(&slug).await?;
    Ok(Json(Characters {
        characters: characters.into_iter().map(Into::into).collect(),
    }))
}

/// A character of a project.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CharacterPath {
    /// The project's slug.
    #[param(pattern = "^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$")]
    pub slug: String,
    /// The character's id.
    pub id: String,
}

/// An edit of a character's sheet.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CharacterEdit {
    /// The version you read.
    pub version: i64,
    /// The sheet as it should be.
    pub reference: CharacterReference,
}

/// Edit a character reference (409 if it changed since your version).
#[utoipa::path(put, path = "/api/projects/{slug}/characters/{id}", tag = "story",
    params(CharacterPath), request_body = CharacterEdit,
    responses(
        (status = 200, description = "As saved", body = VersionedCharacter),
        (status = 404, description = "No such project or character", body = ErrorBody),
        (status = 409, description = "It changed since your version", body = ErrorBody),
    ))]
async fn put_character(
    State(s): State<AppState>,
    Path(p): Path<CharacterPath>,
    JsonBody(b): JsonBody<CharacterEdit>,
) -> ApiResult<Json<VersionedCharacter>> {
    let saved = s
        .film
        .repo
        .edit_character_reference(&slug(&p.slug)?, &p.id, b.version, &b.reference)
        .await?;
    Ok(Json(saved.into()))
}
