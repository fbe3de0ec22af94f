//! The projects: a list, and a form that creates one (the slug validated by the API).

use axum::Extension;
use axum::extract::State;
use maud::html;

use crate::state::AppState;
use crate::ui::UiResult;
use crate::ui::session::Viewer;
use crate::ui::view::{self, Nav, badge, when};

/// `GET /`.
pub(crate) async fn list(State(s): State<AppState>, Extension(v): Extension<Viewer>) -> UiResult {
    let projects = s.film.repo.projects().await?;
    let body = html! {
        h1 { "Projects" }
        section #projects data-live {
            @if projects.is_empty() {
                p.empty { "No project yet. Create one below, then gather its ideas." }
            } @else {
                table.list {
                    thead { tr { th { "Project" } th { "State" } th { "Updated" } } }
                    tbody {
                        @for p in &projects {
                            tr {
                                td { a href=(format!("/projects/{}", p.slug)) { strong { (p.title) } } br; span.muted { (p.slug) } }
                                td { (badge(p.status.as_str())) }
                                td { (when(p.updated_at)) }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "New project" }
            form data-api="POST /api/projects" data-then="go:/projects/{slug}" {
                label { "Title" input name="title" required maxlength="200" placeholder="The Lantern Keeper"; }
                label { "Slug"
                    input name="slug" required pattern="[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?" maxlength="48" placeholder="lantern-keeper";
                    small.muted { "Lower-case letters, digits and dashes; it names the project's databases." }
                }
                button type="submit" { "Create" }
            }
        }
    };
    view::page(&s, &v, "Projects", Nav::Projects, "*", body).await
}
