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
                    @for ver in &c.value.versions {
                        h4 { "Version " (ver.version) ", from scene " (ver.from_scene) ": " (ver.appearance) }
                        div.views {
                            @if !ver.master_reference_url.is_empty() {
                                figure { img src=(media(&ver.master_reference_url)) alt=(format!("{}: version {} master", c.value.name, ver.version)) loading="lazy"; figcaption { "master" } }
                            }
                            @for (view_name, r) in &ver.references_360 {
                                figure { img src=(media(&r.url)) alt=(format!("{}: version {} {view_name}", c.value.name, ver.version)) loading="lazy"; figcaption { (view_name.replace('_', " ")) } }
                            }
                        }
                    }
                    (new_version_form(slug.as_str(), &c.value.character_id))
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

/// A new version of a character from a scene on: priced first, then made.
fn new_version_form(slug: &str, id: &str) -> maud::Markup {
    let base = format!("/api/projects/{slug}/characters/{}/versions", segment(id));
    let price_box = format!("price-{}", segment(id));
    html! {
        details.new-version {
            summary { "A new version from a scene on (a costume, an injury)" }
            p.muted { "Scenes made from that scene on draw the character from the new 360° set; scenes already made keep their takes until they are made again." }
            form data-api=(format!("POST {base}/estimate")) data-then=(format!("show:{price_box}")) {
                label { "From scene" input type="number" name="from_scene" min="1" required data-kind="number"; }
                label.wide { "Appearance" textarea name="appearance" rows="2" required maxlength="2000" {} }
                label.wide { "Costume (empty: as before)" input name="costume" data-kind="nullable"; }
                button.secondary type="submit" { "Price it" }
                button type="submit" data-submit-api=(format!("POST {base}")) data-then="reload"
                    data-confirm="Make this version now? Its master and six views are generated and paid for (price it first to see what)." { "Make it" }
            }
            pre.small id=(price_box) {}
        }
    }
}
