//! The story bible and the characters' 360° sheets, each editable (versioned: a stale edit is
//! refused with 409 and its message).

use axum::Extension;
use axum::extract::{Path, State};
use maud::html;

use super::project_tabs;
use crate::extract::slug;
use crate::state::AppState;
use crate::ui::session::Viewer;
use crate::ui::view::{self, Nav, media};
use crate::ui::{UiResult, segment};

/// `GET /projects/{slug}/story`.
pub(crate) async fn show(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(raw): Path<String>,
) -> UiResult {
    let slug = slug(&raw)?;
    let project = s.film.repo.project(&slug).await?;
    let bible = s.film.repo.story_bible(&slug).await.ok();
    let characters = s.film.repo.character_references(&slug).await?;
    let has_screenplay = !s
        .film
        .qualified(&slug, slate_workflows::names::collection::SCREENPLAY)
        .await?
        .is_empty();
    let body = html! {
        h1 { (project.title) ": story and characters" }
        (project_tabs(slug.as_str(), "Story & characters"))
        @if has_screenplay {
            p.screenplay-downloads {
                "The screenplay: "
                a href=(format!("/api/projects/{slug}/screenplay?format=fountain")) download=(format!("{slug}.fountain")) { "Fountain" }
                " · "
                a href=(format!("/api/projects/{slug}/screenplay?format=pdf")) download=(format!("{slug}.pdf")) { "PDF" }
            }
        }
        section.card {
            h2 { "Story bible" }
            @match &bible {
                None => { p.muted { "Qualification writes it in phase B." } }
                Some(b) => {
                    p { strong { (b.value.title) } ": " (b.value.logline) }
                    form data-api=(format!("PUT /api/projects/{slug}/story-bible")) data-then="reload" {
                        input type="hidden" name="version" value=(b.version) data-kind="number";
                        label.wide { "The bible (JSON)"
                            textarea name="bible" rows="18" spellcheck="false" data-kind="json" {
                                (serde_json::to_string_pretty(&b.value).unwrap_or_default())
                            }
                        }
                        button type="submit" { "Save the bible" }
                    }
                }
            }
        }
        section #characters.card data-live {
            h2 { "Characters" }
            @if characters.is_empty() { p.muted { "Qualification draws them in phase A." } }
            @for c in &characters {
                article.character.wide {
                    h3 { (c.value.name) }
                    div.views {
                        @if !c.value.master_reference_url.is_empty() {
                            figure { img src=(media(&c.value.master_reference_url)) alt=(format!("{}: master", c.value.name)) loading="lazy"; figcaption { "master" } }
                        }
                        @for (view_name, r) in &c.value.references_360 {
                            figure { img src=(media(&r.url)) alt=(format!("{}: {view_name}", c.value.name)) loading="lazy"; figcaption { (view_name.replace('_', " ")) } p.small.muted { (r.description) } }
                        }
                    }
                    details {
                        summary { "Edit the sheet" }
                        form data-api=(format!("PUT /api/projects/{slug}/characters/{}", segment(&c.value.character_id))) data-then="reload" {
                            input type="hidden" name="version" value=(c.version) data-kind="number";
                            label.wide { "Reference (JSON)"
                                textarea name="reference" rows="10" spellcheck="false" data-kind="json" {
                                    (serde_json::to_string_pretty(&c.value).unwrap_or_default())
                                }
                            }
                            button type="submit" { "Save" }
                        }
                    }
                }
            }
        }
    };
    view::page(
        &s,
        &v,
        &format!("{}: story", project.title),
        Nav::Projects,
        &format!("project:{slug}"),
        body,
    )
    .await
}
