//! Projects and their raw material: the gather namespace a person fills, the qualified namespace
//! qualification writes, readiness, and what happened to a project outside its runs.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use slate_activities::model::DepartmentReadiness;
use slate_workflows::docstore::{Doc, Namespace};
use slate_workflows::model::{Project, ProjectEvent};
use slate_workflows::qualification;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, SlugPath, created};
use crate::state::AppState;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_project, list_projects))
        .routes(routes!(get_project))
        .routes(routes!(gather_collections))
        .routes(routes!(import_gather))
        .routes(routes!(add_gather_doc, list_gather))
        .routes(routes!(replace_gather_doc, delete_gather_doc))
        .routes(routes!(list_qualified))
        .routes(routes!(readiness))
        .routes(routes!(project_events))
}

/// A new project.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    /// 1-48 lower-case letters, digits and hyphens, starting and ending with a letter or digit.
    #[schema(
        pattern = "^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$",
        example = "lantern-keeper"
    )]
    pub slug: String,
    /// The film's title, 1-200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\s\u0085]",
        example = "The Lantern Keeper"
    )]
    pub title: String,
}

/// Create a project: its gather namespace opens for raw documents.
#[utoipa::path(post, path = "/api/projects", tag = "projects",
    request_body = NewProject,
    responses(
        (status = 201, description = "Created", body = Project),
        (status = 409, description = "A project with this slug exists", body = ErrorBody),
    ))]
async fn create_project(
    State(s): State<AppState>,
    JsonBody(p): JsonBody<NewProject>,
) -> ApiResult<Response> {
    let slug = crate::extract::slug(&p.slug)?;
    Ok(created(s.film.repo.create_project(&slug, &p.title).await?))
}

/// Every project.
#[derive(Debug, Serialize, ToSchema)]
pub struct Projects {
    /// Newest first.
    pub projects: Vec<Project>,
}

/// List projects.
#[utoipa::path(get, path = "/api/projects", tag = "projects",
    responses((status = 200, description = "Every project", body = Projects)))]
async fn list_projects(State(s): State<AppState>) -> ApiResult<Json<Projects>> {
    Ok(Json(Projects {
        projects: s.film.repo.projects().await?,
    }))
}

/// A project with what a person wants to know first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectView {
    /// The project.
    pub project: Project,
    /// How many of its scenes are in each status.
    pub scenes: BTreeMap<String, usize>,
    /// Global errors about it not yet dismissed.
    pub open_errors: usize,
    /// Its gather namespace's name.
    pub gather: String,
    /// Its qualified namespace's name.
    pub qualified: String,
}

/// A project with its scene counts and open errors.
#[utoipa::path(get, path = "/api/projects/{slug}", tag = "projects", params(SlugPath),
    responses(
        (status = 200, description = "The project", body = ProjectView),
        (status = 404, description = "No such project", body = ErrorBody),
    ))]
async fn get_project(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
) -> ApiResult<Json<ProjectView>> {
    let slug = p.slug()?;
    let project = crate::service::settle(&s, &slug).await?;
    let mut scenes = BTreeMap::<String, usize>::new();
    for sc in s.film.repo.scenes(&slug).await? {
        *scenes.entry(sc.status.as_str().to_string()).or_default() += 1;
    }
    let open_errors = s
        .film
        .repo
        .errors(false)
        .await?
        .into_iter()
        .filter(|e| e.project.as_deref() == Some(slug.as_str()))
        .count();
    Ok(Json(ProjectView {
        project,
        scenes,
        open_errors,
        gather: slug.gather(),
        qualified: slug.qualified(),
    }))
}

/// A collection in a project's namespace.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CollectionPath {
    /// The project's slug.
    #[param(pattern = "^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$")]
    pub slug: String,
    /// 1-64 lower-case letters, digits and underscores, starting with a letter.
    #[param(pattern = "^[a-z][a-z0-9_]{0,63}$", example = "raw_characters")]
    pub collection: String,
}

/// A document in a gather collection.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DocumentPath {
    /// The project's slug.
    #[param(pattern = "^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$")]
    pub slug: String,
    /// The collection.
    #[param(pattern = "^[a-z][a-z0-9_]{0,63}$")]
    pub collection: String,
    /// The document's id: 1-128 characters, none of them a control character.
    #[param(pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,128}$")]
    pub id: String,
}

/// The gather namespace's collections.
#[derive(Debug, Serialize, ToSchema)]
pub struct GatherView {
    /// `gather_<slug>`.
    pub namespace: String,
    /// True once qualification has started: documents can no longer be added.
    pub locked: bool,
    /// How many documents each collection holds.
    pub collections: BTreeMap<String, usize>,
}

/// The gather namespace's collections.
#[utoipa::path(get, path = "/api/projects/{slug}/gather", tag = "projects", params(SlugPath),
    responses(
        (status = 200, description = "Collections and document counts", body = GatherView),
        (status = 404, description = "No such project", body = ErrorBody),
    ))]
async fn gather_collections(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
) -> ApiResult<Json<GatherView>> {
    let slug = p.slug()?;
    let project = s.film.repo.project(&slug).await?;
    let ns = Namespace::Gather(slug);
    let mut collections = BTreeMap::new();
    for c in s.film.docs.collections(&ns).await? {
        let n = s.film.docs.list(&ns, &c).await?.len();
        collections.insert(c, n);
    }
    Ok(Json(GatherView {
        namespace: ns.name(),
        locked: project.gather_locked_at.is_some(),
        collections,
    }))
}

/// A raw document: any JSON object. An `id` (a string) names it; without one, one is made.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Maren", "role": "the lantern keeper", "appearance": "grey coat, red scarf"}))]
pub struct RawDocument {
    /// The document's id, if you want to choose it.
    #[serde(default)]
    #[schema(pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,128}$")]
    pub id: Option<String>,
    /// Anything else: the gather is raw and exploratory.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, Value>,
}

/// Where a document was stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentId {
    /// Its id.
    pub id: String,
}

/// Add a gather document (refused with 423 once qualification started).
#[utoipa::path(post, path = "/api/projects/{slug}/gather/{collection}", tag = "projects",
    params(CollectionPath), request_body = RawDocument,
    responses(
        (status = 201, description = "Stored", body = DocumentId),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 409, description = "A document with this id exists", body = ErrorBody),
        (status = 423, description = "The gather is locked: qualification started", body = ErrorBody),
    ))]
async fn add_gather_doc(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    JsonBody(doc): JsonBody<RawDocument>,
) -> ApiResult<Response> {
    let slug = crate::extract::slug(&p.slug)?;
    let id = s
        .film
        .docs
        .insert(
            &Namespace::Gather(slug),
            &p.collection,
            doc.id,
            Value::Object(doc.fields),
        )
        .await?;
    Ok(created(DocumentId { id }))
}

/// A collection's documents.
#[derive(Debug, Serialize, ToSchema)]
pub struct Documents {
    /// In the order they were added.
    pub documents: Vec<Doc>,
}

/// A gather collection's documents.
#[utoipa::path(get, path = "/api/projects/{slug}/gather/{collection}", tag = "projects",
    params(CollectionPath),
    responses(
        (status = 200, description = "The documents (none for a collection never written)", body = Documents),
        (status = 404, description = "No such project", body = ErrorBody),
    ))]
async fn list_gather(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
) -> ApiResult<Json<Documents>> {
    let slug = crate::extract::slug(&p.slug)?;
    s.film.repo.project(&slug).await?;
    let documents = s
        .film
        .docs
        .list(&Namespace::Gather(slug), &p.collection)
        .await?;
    Ok(Json(Documents { documents }))
}

/// Replace a gather document's body (while the gather is open).
#[utoipa::path(put, path = "/api/projects/{slug}/gather/{collection}/{id}", tag = "projects",
    params(DocumentPath), request_body = RawDocument,
    responses(
        (status = 200, description = "Replaced", body = DocumentId),
        (status = 404, description = "No such project or document", body = ErrorBody),
        (status = 423, description = "The gather is locked: qualification started", body = ErrorBody),
    ))]
async fn replace_gather_doc(
    State(s): State<AppState>,
    Path(p): Path<DocumentPath>,
    JsonBody(doc): JsonBody<RawDocument>,
) -> ApiResult<Json<DocumentId>> {
    let slug = crate::extract::slug(&p.slug)?;
    if doc.id.as_deref().is_some_and(|id| id != p.id) {
        return Err(ApiError::unprocessable(format!(
            "the body's id `{}` is not the path's `{}`; a document keeps its id (delete it and add a new one to rename it)",
            doc.id.unwrap_or_default(),
            p.id
        )));
    }
    s.film
        .docs
        .replace(
            &Namespace::Gather(slug),
            &p.collection,
            &p.id,
            Value::Object(doc.fields),
        )
        .await?;
    Ok(Json(DocumentId { id: p.id }))
}

/// Delete a gather document (while the gather is open).
#[utoipa::path(delete, path = "/api/projects/{slug}/gather/{collection}/{id}", tag = "projects",
    params(DocumentPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such project or document", body = ErrorBody),
        (status = 423, description = "The gather is locked: qualification started", body = ErrorBody),
    ))]
async fn delete_gather_doc(
    State(s): State<AppState>,
    Path(p): Path<DocumentPath>,
) -> ApiResult<StatusCode> {
    let slug = crate::extract::slug(&p.slug)?;
    s.film
        .docs
        .delete(&Namespace::Gather(slug), &p.collection, &p.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A qualified collection's documents.
#[utoipa::path(get, path = "/api/projects/{slug}/qualified/{collection}", tag = "projects",
    params(CollectionPath),
    responses(
        (status = 200, description = "The documents", body = Documents),
        (status = 404, description = "No such project", body = ErrorBody),
    ))]
async fn list_qualified(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
) -> ApiResult<Json<Documents>> {
    let slug = crate::extract::slug(&p.slug)?;
    s.film.repo.project(&slug).await?;
    let documents = s
        .film
        .docs
        .list(&Namespace::Qualified(slug), &p.collection)
        .await?;
    Ok(Json(Documents { documents }))
}

/// Readiness of every department.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// True when every department reaches the threshold.
    pub overall_ready: bool,
    /// The score a department needs (75).
    pub threshold: u32,
    /// Each department's score and what it misses, in plain words.
    pub departments: Vec<DepartmentReadiness>,
}

/// Readiness of every department (ready at 75).
#[utoipa::path(get, path = "/api/projects/{slug}/readiness", tag = "projects", params(SlugPath),
    responses(
        (status = 200, description = "Scores and missing items", body = Readiness),
        (status = 404, description = "No such project", body = ErrorBody),
    ))]
async fn readiness(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
) -> ApiResult<Json<Readiness>> {
    let slug = p.slug()?;
    let departments = qualification::readiness(&s.film, &slug).await?;
    Ok(Json(Readiness {
        overall_ready: departments.iter().all(|d| d.ready),
        threshold: slate_activities::model::READY_SCORE as u32,
        departments,
    }))
}

/// A project's events.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectEvents {
    /// Oldest first.
    pub events: Vec<ProjectEvent>,
}

/// What happened to a project outside its runs (gather reopened...).
#[utoipa::path(get, path = "/api/projects/{slug}/events", tag = "projects", params(SlugPath),
    responses(
        (status = 200, description = "Oldest first", body = ProjectEvents),
        (status = 404, description = "No such project", body = ErrorBody),
    ))]
async fn project_events(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
) -> ApiResult<Json<ProjectEvents>> {
    let slug = p.slug()?;
    s.film.repo.project(&slug).await?;
    Ok(Json(ProjectEvents {
        events: s.film.repo.project_events(&slug).await?,
    }))
}

/// Which file is imported.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The file's name: its extension says how it is read (`.fountain`, `.txt`, `.md`, `.json`).
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"\.(fountain|txt|md|json|FOUNTAIN|TXT|MD|JSON)$"
    )]
    pub filename: String,
}

/// What an import added.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedDocs {
    /// The documents added: collection and id, in order.
    pub documents: Vec<ImportedDoc>,
}

/// One document an import added.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedDoc {
    /// Its collection (`screenplay` for a screenplay).
    pub collection: String,
    /// Its id.
    pub id: String,
}

/// Import a file into the gather data: a screenplay (`.fountain`, or `.txt` in the ordinary
/// layout), a treatment or notes (`.txt`, `.md`), or gather documents (`.json`: an export with
/// `collections`, a list of documents, or one). The body is the file's bytes (UTF-8 text, up to
/// `SLATE_BODY_LIMIT_BYTES`); nothing is added when any of it cannot be read.
#[utoipa::path(post, path = "/api/projects/{slug}/gather/import", tag = "projects",
    params(SlugPath, ImportQuery),
    request_body(content = String, content_type = "text/plain", description = "The file's bytes"),
    responses(
        (status = 201, description = "Added", body = ImportedDocs),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 409, description = "A document with one of the file's ids exists", body = ErrorBody),
        (status = 413, description = "The file is larger than SLATE_BODY_LIMIT_BYTES", body = ErrorBody),
        (status = 422, description = "Not a file Slate can read (binary, not UTF-8, bad JSON, another extension)", body = ErrorBody),
        (status = 423, description = "The gather is locked: qualification started", body = ErrorBody),
    ))]
async fn import_gather(
    State(s): State<AppState>,
    Path(p): Path<SlugPath>,
    q: Result<axum::extract::Query<ImportQuery>, axum::extract::rejection::QueryRejection>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let q = q?.0;
    let slug = p.slug()?;
    s.film.repo.project(&slug).await?;
    let bytes = axum::body::to_bytes(req.into_body(), s.config.body_limit)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "the file is larger than {} bytes (SLATE_BODY_LIMIT_BYTES)",
                    s.config.body_limit
                ),
            )
        })?;
    let docs = slate_workflows::import::documents_of(&q.filename, &bytes)?;
    let documents = import_documents(&s, &slug, docs).await?;
    Ok(created(ImportedDocs { documents }))
}

/// Add imported documents to a project's gather (the API's and the CLI's).
pub async fn import_documents(
    s: &AppState,
    slug: &slate_workflows::slug::Slug,
    docs: Vec<slate_workflows::import::Imported>,
) -> ApiResult<Vec<ImportedDoc>> {
    let mut out = vec![];
    for d in docs {
        let id = s
            .film
            .docs
            .insert(
                &Namespace::Gather(slug.clone()),
                &d.collection,
                d.id,
                d.body,
            )
            .await?;
        out.push(ImportedDoc {
            collection: d.collection,
            id,
        });
    }
    Ok(out)
}
