//! Qualification progress: phases A-D, each department's state, the characters' master and
//! 360° views as they are made, the story bible and the style guide once ready. Every part is
//! read from the qualification run's journal and the qualified data, and is live.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Path, State};
use maud::{Markup, html};
use slate_engine::{RunDetail, RunStatus};
use slate_workflows::docstore::Namespace;
use slate_workflows::qualification::{PHASES, department_of, phase_of};

use super::project_tabs;
use crate::extract::{run_id, slug};
use crate::state::AppState;
use crate::ui::UiResult;
use crate::ui::session::Viewer;
use crate::ui::view::{self, Nav, badge, duration_ms, media};

/// A department's state from its steps: failed if one failed, running if one is under way,
/// done when all succeeded.
fn department_state(statuses: &[&str]) -> &'static str {
    if statuses
        .iter()
        .any(|s| *s == "failed" || *s == "limit_exceeded")
    {
        "failed"
    } else if statuses.iter().any(|s| {
        matches!(
            *s,
            "running" | "retrying" | "waiting" | "sleeping" | "pending"
        )
    }) {
        "running"
    } else {
        "done"
    }
}

/// `GET /projects/{slug}/qualification`.
pub(crate) async fn show(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(raw): Path<String>,
) -> UiResult {
    let slug = slug(&raw)?;
    let project = s.film.repo.project(&slug).await?;
    let detail: Option<RunDetail> = match project.qualification_run.as_deref() {
        Some(id) => Some(s.engine.inspect(run_id(id)?).await?),
        None => None,
    };
    let characters = s.film.repo.character_references(&slug).await?;
    let bible = s.film.repo.story_bible(&slug).await.ok();
    let style = s
        .film
        .docs
        .list(
            &Namespace::Qualified(slug.clone()),
            slate_workflows::names::collection::VISUAL_GUIDELINES,
        )
        .await?
        .into_iter()
        .find(|d| d.id == slate_workflows::names::collection::STYLE_GUIDE_DOC);
    let body = html! {
        h1 { (project.title) ": qualification" }
        (project_tabs(slug.as_str(), "Qualification"))
        section #progress data-live {
            @match &detail {
                None => {
                    p.empty { "Qualification has not started. " a href=(format!("/projects/{slug}")) { "Generate Qualified Data" } " on the project's page starts it." }
                }
                Some(d) => { (progress(d)) }
            }
        }
        section #characters.card data-live {
            h2 { "Characters" }
            @if characters.is_empty() {
                p.muted { "The character department has not drawn anyone yet." }
            }
            div.characters {
                @for c in &characters {
                    article.character {
                        h3 { (c.value.name) }
                        @if c.value.master_reference_url.is_empty() {
                            div.placeholder { "master reference…" }
                        } @else {
                            img.master src=(media(&c.value.master_reference_url)) alt=(format!("{}: master reference", c.value.name)) loading="lazy";
                        }
                        div.views {
                            @for (view_name, r) in &c.value.references_360 {
                                figure {
                                    img src=(media(&r.url)) alt=(format!("{}: {view_name}", c.value.name)) title=(r.description) loading="lazy";
                                    figcaption { (view_name.replace('_', " ")) }
                                }
                            }
                        }
                        p.muted { (c.value.references_360.len()) " of 6 views" }
                    }
                }
            }
        }
        section #bible.card data-live {
            h2 { "Story bible" }
            @match &bible {
                Some(b) => {
                    p { strong { (b.value.title) } ": " (b.value.logline) }
                    p.muted { (b.value.world_rules.len()) " world rules, " (b.value.locations.len()) " locations, " (b.value.timeline.len()) " timeline events. " a href=(format!("/projects/{slug}/story")) { "Read and edit it" } }
                }
                None => { p.muted { "Not written yet (phase B)." } }
            }
            h2 { "Style guide" }
            @match &style {
                Some(d) => { (style_guide(&d.body)) }
                None => { p.muted { "Not written yet (phase A)." } }
            }
        }
    };
    view::page(
        &s,
        &v,
        &format!("{}: qualification", project.title),
        Nav::Projects,
        &format!("project:{slug}"),
        body,
    )
    .await
}

fn progress(d: &RunDetail) -> Markup {
    let reached = if d.run.status == RunStatus::Completed {
        5
    } else {
        d.steps.iter().map(|s| phase_of(&s.name)).max().unwrap_or(0)
    };
    let mut departments: BTreeMap<(usize, String), Vec<&slate_engine::StepView>> = BTreeMap::new();
    for st in &d.steps {
        if let Some(dep) = department_of(&st.name) {
            let phase = phase_of(&st.name);
            if (1..=4).contains(&phase)
                && dep != slate_workflows::names::qualify::LOCK_GATHER
                && dep != slate_workflows::names::qualify::FINISH
            {
                departments
                    .entry((phase, dep.to_string()))
                    .or_default()
                    .push(st);
            }
        }
    }
    html! {
        p { "Run " a href=(format!("/runs/{}", d.run.id)) { code { (d.run.id) } } " " (badge(d.run.status.as_str())) " · cost " (view::usd(d.tree_cost_usd)) }
        ol.phases {
            @for (i, name) in PHASES.iter().enumerate().skip(1).take(4) {
                @let state = if reached > i || d.run.status == RunStatus::Completed { "done" }
                    else if reached == i { if d.run.status == RunStatus::Failed { "failed" } else { "running" } }
                    else { "pending" };
                li class=(format!("phase {state}")) { span.name { (name) } " " (badge(state)) }
            }
        }
        @if let Some(e) = &d.run.error {
            p.alert role="alert" { (e.message) " " a href=(format!("/runs/{}", d.run.id)) { "Open the run to retry the step" } }
        }
        table.list.dept-table {
            thead { tr { th { "Phase" } th { "Department" } th { "Steps" } th { "Time" } th { "State" } } }
            tbody {
                @for ((phase, dep), steps) in &departments {
                    @let statuses: Vec<&str> = steps.iter().map(|s| s.status).collect();
                    @let done = statuses.iter().filter(|s| matches!(**s, "succeeded" | "done" | "received")).count();
                    tr {
                        td { (["", "A", "B", "C", "D"][*phase]) }
                        td { (dep) }
                        td { (done) " / " (steps.len()) }
                        td { (duration_ms(steps.iter().map(|s| s.duration_ms).sum())) }
                        td { (badge(department_state(&statuses))) }
                    }
                }
            }
        }
    }
}

fn style_guide(v: &serde_json::Value) -> Markup {
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let palette: Vec<String> = v
        .get("palette")
        .and_then(|p| p.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    html! {
        div.palette { @for c in &palette { span.swatch style=(format!("background:{}", css_colour(c))) title=(c) {} } }
        dl.facts {
            dt { "Mood" } dd { (text("mood")) }
            dt { "Lighting" } dd { (text("lighting")) }
            dt { "Camera" } dd { (text("camera_language")) }
            dt { "Frame" } dd { (text("aspect_ratio")) }
            dt { "Avoid" } dd { (text("negative_prompt")) }
        }
    }
}

/// A colour from the style guide, only if it is `#rrggbb` (it goes into a style attribute).
fn css_colour(c: &str) -> String {
    let ok = c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|x| x.is_ascii_hexdigit());
    if ok { c.to_string() } else { "#888".into() }
}
