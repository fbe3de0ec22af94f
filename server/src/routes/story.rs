//! The story bible and the characters' reference sheets, each edited with optimistic versions.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use slate_activities::model::StoryBible;
use slate_workflows::repo::{CharacterReference, Versioned};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, SlugPath, slug};
use crate::state::AppState;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_bible, put_bible))
        .routes(routes!(list_characters))
        .routes(routes!(put_character))
        .routes(routes!(version_estimate))
        .routes(routes!(new_version))
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

/// A new version of a character from a scene on.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCharacterVersion {
    /// The first scene (by number) that shows it; scenes made from then on with that number
    /// or a later one use it.
    #[schema(minimum = 1)]
    pub from_scene: i32,
    /// How they look from then on.
    #[schema(min_length = 1, max_length = 2000, pattern = "[^\\s\\u0085]")]
    pub appearance: String,
    /// What they wear from then on (default: as before).
    #[serde(default)]
    pub costume: Option<String>,
}

/// What a character version costs with the configured providers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionEstimate {
    /// Per kind of call (a master and six views; the six described).
    pub lines: Vec<slate_workflows::estimate::EstimateLine>,
    /// Dollars.
    pub usd: f64,
    /// In a sentence, for a person.
    pub summary: String,
}

/// A version about to be started: what it costs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionStarted {
    /// The run that makes it.
    pub run_id: String,
    /// What it was priced at before it started, dollars.
    pub estimate_usd: f64,
}

/// Check a new version against the project before anything is priced or made.
async fn checked(
    s: &AppState,
    p: &CharacterPath,
    b: &NewCharacterVersion,
) -> ApiResult<slate_workflows::Slug> {
    let slug = slug(&p.slug)?;
    s.film.repo.project(&slug).await?;
    if !s
        .film
        .repo
        .character_references(&slug)
        .await?
        .iter()
        .any(|c| c.value.character_id == p.id)
    {
        return Err(ApiError::not_found(format!(
            "character `{}` of `{slug}` not found (qualify the project first)",
            p.id
        )));
    }
    if !slate_activities::model::has_text(&b.appearance) || b.appearance.chars().count() > 2000 {
        return Err(ApiError::unprocessable(
            "a new version needs an appearance of 1 to 2,000 characters",
        ));
    }
    let numbers: Vec<i32> = s
        .film
        .repo
        .scenes(&slug)
        .await?
        .iter()
        .map(|sc| sc.scene_number)
        .collect();
    if !numbers.contains(&b.from_scene) {
        return Err(ApiError::unprocessable(format!(
            "from_scene {} is not a scene of `{slug}` (its scenes are {})",
            b.from_scene,
            numbers
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(slug)
}

fn priced(s: &AppState) -> VersionEstimate {
    let lines = slate_workflows::character_version::estimate(&s.film);
    let usd: f64 = lines.iter().map(|l| l.expected_usd).sum();
    let calls: Vec<String> = lines
        .iter()
        .map(|l| {
            let kind = serde_json::to_value(l.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            format!(
                "{} {} ({})",
                l.units_low,
                kind.replace('_', " "),
                l.price.provider
            )
        })
        .collect();
    VersionEstimate {
        summary: format!("${usd:.2}: {}", calls.join(", ")),
        usd,
        lines,
    }
}

/// What a new version of a character would cost (a master and six views, each described),
/// before anything is made.
#[utoipa::path(post, path = "/api/projects/{slug}/characters/{id}/versions/estimate", tag = "story",
    params(CharacterPath), request_body = NewCharacterVersion,
    responses(
        (status = 200, description = "Priced", body = VersionEstimate),
        (status = 404, description = "No such project or character", body = ErrorBody),
        (status = 422, description = "No such scene, or no appearance", body = ErrorBody),
    ))]
async fn version_estimate(
    State(s): State<AppState>,
    Path(p): Path<CharacterPath>,
    JsonBody(b): JsonBody<NewCharacterVersion>,
) -> ApiResult<Json<VersionEstimate>> {
    checked(&s, &p, &b).await?;
    Ok(Json(priced(&s)))
}

/// Make a new version of a character from a scene on: a new appearance with its own
/// 360-degree set, priced first (the project's budget applies). Scenes made from then on use
/// it; scenes already made keep their takes until they are made again.
#[utoipa::path(post, path = "/api/projects/{slug}/characters/{id}/versions", tag = "story",
    params(CharacterPath), request_body = NewCharacterVersion,
    responses(
        (status = 202, description = "Started, with its price", body = VersionStarted),
        (status = 404, description = "No such project or character", body = ErrorBody),
        (status = 409, description = "Over the project's budget, or a version of this character is being made", body = ErrorBody),
        (status = 422, description = "No such scene, or no appearance", body = ErrorBody),
    ))]
async fn new_version(
    State(s): State<AppState>,
    Path(p): Path<CharacterPath>,
    JsonBody(b): JsonBody<NewCharacterVersion>,
) -> ApiResult<axum::response::Response> {
    let slug = checked(&s, &p, &b).await?;
    let estimate = priced(&s);
    let input = slate_workflows::character_version::CharacterVersionInput {
        project: slug.clone(),
        character_id: p.id.clone(),
        from_scene: b.from_scene,
        appearance: b.appearance.trim().to_string(),
        costume: b.costume.clone(),
    };
    let started = crate::service::start_for_project::<
        slate_workflows::character_version::CharacterVersioning,
    >(&s, &slug, &input, None, &[])
    .await?;
    Ok(crate::extract::accepted(VersionStarted {
        run_id: started.run.id.to_string(),
        estimate_usd: estimate.usd,
    }))
}
