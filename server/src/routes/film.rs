//! The film as it follows its scenes (issue 26): a scene's takes side by side and the choice of
//! one; the film's versions, whether it is out of date and why, a re-stitch; and the follower
//! that re-stitches on its own when a project asks for it.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use slate_engine::{RunFilter, Workflow};
use slate_workflows::film_versions::{
    FilmState, FilmStitch, StitchInput, busy, cuts_of, film_state, takes_signature,
};
use slate_workflows::model::{FilmVersion, Scene, SceneTake};
use slate_workflows::slug::Slug;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::scenes::ScenePath;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, RunStarted, SlugPath, accepted};
use crate::state::AppState;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(takes))
        .routes(routes!(choose_take))
        .routes(routes!(film, restitch))
        .routes(routes!(film_settings))
        .routes(routes!(export))
}

/// A take as the scene page compares it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TakeView {
    /// The take.
    #[serde(flatten)]
    pub take: SceneTake,
    /// The scene's current take.
    pub current: bool,
    /// The edited fields that differ from the take before it, with their values in this take.
    pub changed: BTreeMap<String, Value>,
    /// What its run spent, dollars.
    pub cost_usd: f64,
}

/// A scene's takes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Takes {
    /// Scene id.
    pub scene_id: String,
    /// Its number.
    pub scene_number: i32,
    /// The take the film uses.
    pub current_take: Option<u32>,
    /// Every take, oldest first.
    pub takes: Vec<TakeView>,
}

/// A scene's takes side by side: stills, clips, what changed between them, what each cost.
#[utoipa::path(get, path = "/api/scenes/{id}/takes", tag = "film", params(ScenePath),
    responses(
        (status = 200, description = "Oldest first", body = Takes),
        (status = 404, description = "No such scene", body = ErrorBody),
    ))]
async fn takes(State(s): State<AppState>, Path(p): Path<ScenePath>) -> ApiResult<Json<Takes>> {
    let scene = s.film.repo.scene(&p.id).await?;
    Ok(Json(takes_of(&s, &scene).await))
}

/// The takes of `scene` with what changed and what they cost.
pub async fn takes_of(s: &AppState, scene: &Scene) -> Takes {
    let all = scene.all_takes();
    let current = scene.take().map(|t| t.take);
    let mut views = Vec::with_capacity(all.len());
    for (i, t) in all.iter().enumerate() {
        let changed = match i.checked_sub(1).map(|j| &all[j]) {
            Some(before) if !t.fields.is_empty() && !before.fields.is_empty() => t
                .fields
                .iter()
                .filter(|(k, v)| before.fields.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            _ => BTreeMap::new(),
        };
        let cost_usd = match t.run_id.parse() {
            Ok(id) => s
                .engine
                .get(id)
                .await
                .map_or(0.0, |r| r.cost_micros as f64 / 1e6),
            Err(_) => 0.0,
        };
        views.push(TakeView {
            current: Some(t.take) == current,
            take: t.clone(),
            changed,
            cost_usd,
        });
    }
    Takes {
        scene_id: scene.id.clone(),
        scene_number: scene.scene_number,
        current_take: current,
        takes: views,
    }
}

/// The take to use.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TakeChoice {
    /// Its number (1, 2, ...).
    #[schema(minimum = 1)]
    pub take: u32,
}

/// Choose the take of a scene the film uses. The film is then out of date; with the project's
/// automatic re-stitch (the default) a new version is stitched at once.
#[utoipa::path(put, path = "/api/scenes/{id}/take", tag = "film",
    params(ScenePath), request_body = TakeChoice,
    responses(
        (status = 200, description = "The scene's takes, the chosen one current", body = Takes),
        (status = 404, description = "No such scene or take", body = ErrorBody),
        (status = 409, description = "The take has no finished clip", body = ErrorBody),
        (status = 422, description = "Not a take number", body = ErrorBody),
    ))]
async fn choose_take(
    State(s): State<AppState>,
    Path(p): Path<ScenePath>,
    JsonBody(b): JsonBody<TakeChoice>,
) -> ApiResult<Json<Takes>> {
    // Checked first, so that a take that cannot be chosen is refused with why.
    s.film.repo.scene(&p.id).await?.choose_take(b.take)?;
    let scene = s
        .film
        .repo
        .modify_scene(&p.id, |sc| {
            let _ = sc.choose_take(b.take);
        })
        .await?;
    let slug = crate::extract::slug(&scene.project)?;
    follow(&s, &slug).await?;
    Ok(Json(takes_of(&s, &scene).await))
}

/// The film: its versions, and where it stands against its scenes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FilmView {
    /// Where it stands.
    #[serde(flatten)]
    pub state: FilmState,
    /// Whether it is stitched again on its own when a scene's take changes.
    pub auto_restitch: bool,
    /// A stitch under way (its run).
    pub stitching: Option<String>,
    /// Every version, newest first; each downloads at `/media/{video}`.
    pub versions: Vec<FilmVersion>,
}

/// The film's versions, whether it is out of date (which scenes changed), and the scenes whose
/// starting frame changed under them.
#[utoipa::path(get, path = "/api/projects/{slug}/film", tag = "film", params(SlugPath),
    responses(
        (status = 200, description = "The film", body = FilmView),
        (status = 404, description = "No such project", body = ErrorBody),
    ))]
async fn film(State(s): State<AppState>, Path(p): Path<SlugPath>) -> ApiResult<Json<FilmView>> {
    let slug = p.slug()?;
    Ok(Json(film_view(&s, &slug).await?))
}

/// The film of `slug` as [`film`] shows it.
pub async fn film_view(s: &AppState, slug: &Slug) -> ApiResult<FilmView> {
    let project = s.film.repo.project(slug).await?;
    let scenes = s.film.repo.scenes(slug).await?;
    let mut versions = s.film.repo.film_versions(slug).await?;
    let state = film_state(&scenes, versions.last());
    versions.reverse();
    Ok(FilmView {
        state,
        auto_restitch: project.auto_restitch,
        stitching: stitching(s, slug).await?.map(|r| r.id.to_string()),
        versions,
    })
}

/// The stitch of `slug` under way, if any.
async fn stitching(s: &AppState, slug: &Slug) -> ApiResult<Option<slate_engine::RunRecord>> {
    let last = s
        .engine
        .list(&RunFilter {
            workflow: Some(FilmStitch::NAME.to_string()),
            scope: Some(slug.to_string()),
            limit: Some(1),
            ..Default::default()
        })
        .await?;
    Ok(last.into_iter().find(|r| !r.status.is_terminal()))
}

/// Stitch a new version of the film from the scenes' current takes (nothing is generated;
/// only the pieces of the film a changed clip is in are made again). A stitch already under
/// way is returned rather than started twice.
#[utoipa::path(post, path = "/api/projects/{slug}/film", tag = "film", params(SlugPath),
    responses(
        (status = 202, description = "Started (or the stitch under way)", body = RunStarted),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 409, description = "A scene has no finished take, or the film is being generated", body = ErrorBody),
    ))]
async fn restitch(State(s): State<AppState>, Path(p): Path<SlugPath>) -> ApiResult<Response> {
    let slug = p.slug()?;
    let project = crate::service::settle(&s, &slug).await?;
    if let Some(r) = crate::service::active_run(&s, project.production_run.as_ref()).await?
        && r.workflow != FilmStitch::NAME
    {
        return Err(ApiError::conflict(format!(
            "`{slug}` is being generated (run {}); its film is stitched when it is done",
            r.id
        )));
    }
    let scenes = s.film.repo.scenes(&slug).await?;
    if scenes.is_empty() {
        return Err(ApiError::conflict(format!(
            "`{slug}` has no scenes yet: qualify it first"
        )));
    }
    cuts_of(&scenes).map_err(ApiError::conflict)?;
    let input = StitchInput {
        project: slug.clone(),
        automatic: false,
        takes: takes_signature(&scenes),
    };
    let started =
        crate::service::start_for_project::<FilmStitch>(&s, &slug, &input, None, &[]).await?;
    Ok(accepted(RunStarted {
        run_id: started.run.id,
    }))
}

/// A project's film settings.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilmSettings {
    /// True (the default): the film is stitched again on its own when a scene's take changes.
    pub auto_restitch: bool,
}

/// Turn the automatic re-stitch on or off.
#[utoipa::path(put, path = "/api/projects/{slug}/film/settings", tag = "film",
    params(SlugPath), request_body = FilmSettings,
    responses(
        (status = 200, description = "Set", body = FilmSettings),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 422, description = "Not a boolean", body = ErrorBody),
    ))]
async fn film_settings(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
    JsonBody(b): JsonBody<FilmSettings>,
) -> ApiResult<Json<FilmSettings>> {
    let slug = p.slug()?;
    s.film.repo.project(&slug).await?;
    s.film
        .repo
        .set_auto_restitch(&slug, b.auto_restitch)
        .await?;
    follow(&s, &slug).await?;
    Ok(Json(b))
}

/// Start an automatic stitch of `slug` when it is due: the project asks for it, has a film,
/// the film is out of date, every scene has a finished take and none is being made, nothing
/// else works for the project, and the last automatic stitch did not fail for these very takes
/// (a failure is shown, not retried in a loop). Level-triggered: whatever was missed (a crash
/// between a scene's completion and here) is found on the next look.
pub async fn follow(s: &AppState, slug: &Slug) -> ApiResult<Option<String>> {
    let project = s.film.repo.project(slug).await?;
    if !project.auto_restitch {
        return Ok(None);
    }
    let versions = s.film.repo.film_versions(slug).await?;
    let Some(newest) = versions.last() else {
        return Ok(None);
    };
    let scenes = s.film.repo.scenes(slug).await?;
    let state = film_state(&scenes, Some(newest));
    if !state.out_of_date || !state.missing.is_empty() || scenes.iter().any(|sc| busy(sc.status)) {
        return Ok(None);
    }
    if crate::service::any_live_run(s, slug).await? {
        return Ok(None);
    }
    let takes = takes_signature(&scenes);
    let last = s
        .engine
        .list(&RunFilter {
            workflow: Some(FilmStitch::NAME.to_string()),
            scope: Some(slug.to_string()),
            limit: Some(1),
            ..Default::default()
        })
        .await?;
    if last.first().is_some_and(|r| {
        r.status == slate_engine::RunStatus::Failed
            && r.input.get("takes").and_then(Value::as_str) == Some(takes.as_str())
    }) {
        return Ok(None);
    }
    let input = StitchInput {
        project: slug.clone(),
        automatic: true,
        takes,
    };
    let started =
        crate::service::start_for_project::<FilmStitch>(s, slug, &input, None, &[]).await?;
    tracing::info!(project = %slug, run = %started.run.id, changed = state.changed.len(), "the film is out of date: stitching it again");
    Ok(Some(started.run.id.to_string()))
}

/// Look at every project that follows its scenes every `every`, until `stop`.
pub async fn follow_loop(s: AppState, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let Ok(projects) = s.film.repo.projects().await else {
            continue;
        };
        for p in projects {
            if !p.auto_restitch || p.final_video.is_none() {
                continue;
            }
            let Ok(slug) = Slug::parse(&p.slug) else {
                continue;
            };
            if let Err(e) = follow(&s, &slug).await {
                tracing::warn!(project = %slug, error = %e.message, "could not check whether the film follows its scenes");
            }
        }
    }
}

/// The formats a film exports to.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// OpenTimelineIO JSON (`.otio`).
    Otio,
    /// FCP 7 XML (`.xml`), for Premiere and Resolve.
    Fcpxml,
    /// CMX 3600 EDL (`.edl`).
    Edl,
    /// SubRip subtitles (`.srt`).
    Srt,
    /// WebVTT subtitles (`.vtt`).
    Vtt,
    /// An OpenTimelineIO bundle (`.otioz`, a zip): the timeline as `content.otio`, every clip
    /// under `media/`, and the XML, EDL and subtitles beside them.
    Otioz,
}

impl ExportFormat {
    fn file(self) -> (&'static str, &'static str) {
        match self {
            ExportFormat::Otio => ("otio", "application/json"),
            ExportFormat::Fcpxml => ("xml", "application/xml"),
            ExportFormat::Edl => ("edl", "text/plain; charset=utf-8"),
            ExportFormat::Srt => ("srt", "application/x-subrip"),
            ExportFormat::Vtt => ("vtt", "text/vtt; charset=utf-8"),
            ExportFormat::Otioz => ("otioz", "application/zip"),
        }
    }
}

/// What to export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `otio`, `fcpxml`, `edl`, `srt`, `vtt` or `otioz` (everything, with the media).
    #[param(inline)]
    pub format: ExportFormat,
    /// The film version (default: the newest).
    #[param(minimum = 1)]
    pub version: Option<i64>,
}

/// The film (a version of it) for an editing program: a timeline whose clips are relative
/// paths (`media/scene-003-take-2.mp4`), or its dialogue as subtitles, or all of it with the
/// media in one zip.
#[utoipa::path(get, path = "/api/projects/{slug}/export", tag = "film",
    params(SlugPath, ExportQuery),
    responses(
        (status = 200, description = "The export, as a download", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "Not a format", body = ErrorBody),
        (status = 404, description = "No such project, or no such version (or no film yet)", body = ErrorBody),
    ))]
async fn export(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
    q: Result<axum::extract::Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let axum::extract::Query(q) = q?;
    let slug = p.slug()?;
    let project = s.film.repo.project(&slug).await?;
    let versions = s.film.repo.film_versions(&slug).await?;
    let version = match q.version {
        Some(n) => versions.iter().find(|v| v.version == n).ok_or_else(|| {
            ApiError::not_found(format!(
                "version {n} of the film of `{slug}` not found (it has {})",
                versions.len()
            ))
        })?,
        None => versions.last().ok_or_else(|| {
            ApiError::not_found(format!(
                "`{slug}` has no film yet: generate it (POST /api/projects/{slug}/generate)"
            ))
        })?,
    };
    let scenes = s.film.repo.scenes(&slug).await?;
    let edit = slate_workflows::export::edit_of(&project.title, version, &scenes);
    let (ext, mime) = q.format.file();
    let name = format!("{slug}-v{}.{ext}", version.version);
    let body = match q.format {
        ExportFormat::Otio => slate_workflows::export::otio(&edit).into_bytes(),
        ExportFormat::Fcpxml => slate_workflows::export::fcp_xml(&edit).into_bytes(),
        ExportFormat::Edl => slate_workflows::export::edl(&edit).into_bytes(),
        ExportFormat::Srt => slate_workflows::export::srt(&edit).into_bytes(),
        ExportFormat::Vtt => slate_workflows::export::vtt(&edit).into_bytes(),
        ExportFormat::Otioz => return bundle(&s, &edit, &name).await,
    };
    Ok(download(Body::from(body), mime, &name))
}

fn download(body: Body, mime: &str, name: &str) -> Response {
    let mut res = Response::new(body);
    let h = res.headers_mut();
    if let Ok(v) = header::HeaderValue::from_str(mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

/// Everything in one OpenTimelineIO bundle, written to a scratch file (media are large) and
/// streamed from it.
async fn bundle(
    s: &AppState,
    edit: &slate_workflows::export::Edit,
    name: &str,
) -> ApiResult<Response> {
    use slate_workflows::export as x;
    let blobs = &s.film.studio.blobs;
    let mut media = vec![];
    for c in &edit.cuts {
        let r =
            slate_activities::BlobRef::new(&c.blob).map_err(|e| ApiError::internal(e.message))?;
        media.push((
            c.file.clone(),
            blobs.local_path(&r).await.map_err(ApiError::internal)?,
        ));
    }
    let texts = vec![
        ("content.otio".to_string(), x::otio(edit)),
        ("version.txt".to_string(), "1.0.0".to_string()),
        ("film.xml".to_string(), x::fcp_xml(edit)),
        ("film.edl".to_string(), x::edl(edit)),
        ("film.srt".to_string(), x::srt(edit)),
        ("film.vtt".to_string(), x::vtt(edit)),
    ];
    let scratch = blobs.scratch().await.map_err(ApiError::internal)?;
    let path = scratch.join("export.otioz");
    let p2 = path.clone();
    tokio::task::spawn_blocking(move || write_zip(&p2, &texts, &media))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(ApiError::internal)?;
    // The scratch directory goes once the file is open (its blocks stay until it is closed).
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    let stream = tokio_util::io::ReaderStream::new(file);
    Ok(download(Body::from_stream(stream), "application/zip", name))
}

/// A zip of `texts` and the files of `media`, stored (clips do not compress).
fn write_zip(
    path: &std::path::Path,
    texts: &[(String, String)],
    media: &[(String, std::path::PathBuf)],
) -> std::io::Result<()> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path)?);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    for (name, text) in texts {
        zip.start_file(name.as_str(), opts)
            .map_err(std::io::Error::other)?;
        zip.write_all(text.as_bytes())?;
    }
    let mut done = std::collections::HashSet::new();
    for (name, file) in media {
        if !done.insert(name.clone()) {
            continue;
        }
        zip.start_file(name.as_str(), opts)
            .map_err(std::io::Error::other)?;
        std::io::copy(&mut std::fs::File::open(file)?, &mut zip)?;
    }
    zip.finish().map_err(std::io::Error::other)?;
    Ok(())
}
