//! Prompt templates: list, read, create, edit (with optimistic versions), render a preview.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use slate_workflows::model::PromptTemplate;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, created};
use crate::state::AppState;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, update_template))
        .routes(routes!(render_template))
}

/// A template.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TemplatePath {
    /// Its name.
    pub name: String,
}

/// Every template.
#[derive(Debug, Serialize, ToSchema)]
pub struct Templates {
    /// By name.
    pub templates: Vec<PromptTemplate>,
}

/// Prompt templates.
#[utoipa::path(get, path = "/api/templates", tag = "templates",
    responses((status = 200, description = "By name", body = Templates)))]
async fn list_templates(State(s): State<AppState>) -> ApiResult<Json<Templates>> {
    Ok(Json(Templates {
        templates: s.film.repo.templates().await?,
    }))
}

/// A prompt template.
#[utoipa::path(get, path = "/api/templates/{name}", tag = "templates", params(TemplatePath),
    responses(
        (status = 200, description = "The template", body = PromptTemplate),
        (status = 404, description = "No such template", body = ErrorBody),
    ))]
async fn get_template(
    State(s): State<AppState>,
    Path(p): Path<TemplatePath>,
) -> ApiResult<Json<PromptTemplate>> {
    Ok(Json(s.film.repo.template(&p.name).await?))
}

/// Create a prompt template.
#[utoipa::path(post, path = "/api/templates", tag = "templates", request_body = PromptTemplate,
    responses(
        (status = 201, description = "Created", body = PromptTemplate),
        (status = 409, description = "A template with this name exists", body = ErrorBody),
        (status = 422, description = "The template does not fit (its placeholders and variables disagree...)", body = ErrorBody),
    ))]
async fn create_template(
    State(s): State<AppState>,
    JsonBody(t): JsonBody<PromptTemplate>,
) -> ApiResult<Response> {
    Ok(created(s.film.repo.create_template(&t).await?))
}

/// An edit of a template.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateEdit {
    /// The version you read.
    pub version: i64,
    /// The template as it should be.
    pub template: PromptTemplate,
}

/// Edit a prompt template (409 if it changed since your version).
#[utoipa::path(put, path = "/api/templates/{name}", tag = "templates",
    params(TemplatePath), request_body = TemplateEdit,
    responses(
        (status = 200, description = "As saved", body = PromptTemplate),
        (status = 404, description = "No such template", body = ErrorBody),
        (status = 409, description = "It changed since your version", body = ErrorBody),
        (status = 422, description = "The template does not fit", body = ErrorBody),
    ))]
async fn update_template(
    State(s): State<AppState>,
    Path(p): Path<TemplatePath>,
    JsonBody(b): JsonBody<TemplateEdit>,
) -> ApiResult<Json<PromptTemplate>> {
    Ok(Json(
        s.film
            .repo
            .update_template(&p.name, b.version, &b.template)
            .await?,
    ))
}

/// Values for a template's variables.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderBody {
    /// Variable name to value.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// A rendered prompt.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rendered {
    /// The template's name.
    pub template: String,
    /// The prompt.
    pub prompt: String,
}

/// Render a template (422 names the missing variables).
#[utoipa::path(post, path = "/api/templates/{name}/render", tag = "templates",
    params(TemplatePath), request_body = RenderBody,
    responses(
        (status = 200, description = "The prompt", body = Rendered),
        (status = 404, description = "No such template", body = ErrorBody),
        (status = 422, description = "Required variables are missing: the message names them", body = ErrorBody),
    ))]
async fn render_template(
    State(s): State<AppState>,
    Path(p): Path<TemplatePath>,
    JsonBody(b): JsonBody<RenderBody>,
) -> ApiResult<Json<Rendered>> {
    let t = s.film.repo.template(&p.name).await?;
    Ok(Json(Rendered {
        prompt: t.render(&b.variables)?,
        template: p.name,
    }))
}
