//! Prompt templates: edit one (versioned) and render a preview with values for its variables.

use axum::Extension;
use axum::extract::State;
use maud::html;

use crate::state::AppState;
use crate::ui::session::Viewer;
use crate::ui::view::{self, Nav};
use crate::ui::{UiResult, segment};

/// `GET /templates`.
pub(crate) async fn list(State(s): State<AppState>, Extension(v): Extension<Viewer>) -> UiResult {
    let templates = s.film.repo.templates().await?;
    let body = html! {
        h1 { "Prompt templates" }
        p.muted { "The prompts the pipeline sends, with their variables. A preview renders a template with the values you give, without calling any model." }
        @for t in &templates {
            @let vars = serde_json::to_value(&t.variables).unwrap_or_default();
            details.card.template {
                summary { strong { (t.name) } " " span.muted { (t.category.clone().unwrap_or_default()) " · version " (t.version) } }
                form data-api=(format!("PUT /api/templates/{}", segment(&t.name))) data-then="reload" {
                    input type="hidden" name="version" value=(t.version) data-kind="number";
                    label.wide { "Template (JSON)"
                        textarea name="template" rows="12" spellcheck="false" data-kind="json" {
                            (serde_json::to_string_pretty(t).unwrap_or_default())
                        }
                    }
                    button type="submit" { "Save" }
                }
                form.preview data-api=(format!("POST /api/templates/{}/render", segment(&t.name))) data-then=(format!("show:preview-{}", t.name)) data-group="variables" {
                    @if let serde_json::Value::Array(vs) = &vars {
                        @for var in vs {
                            @let name = var.get("variable_name").and_then(|n| n.as_str()).unwrap_or("");
                            label { (name) input name=(name) placeholder=(var.get("variable_description").and_then(|d| d.as_str()).unwrap_or("")); }
                        }
                    }
                    button.secondary type="submit" { "Render a preview" }
                    pre.preview #(format!("preview-{}", t.name)) {}
                }
            }
        }
    };
    view::page(&s, &v, "Templates", Nav::Templates, "", body).await
}
