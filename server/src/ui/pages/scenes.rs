//! Scenes: a grid of shot cards with filters, and a scene's page with every field editable
//! under the API's validation (a stale edit shows the 409 and the newer values), the composite
//! iterations with their references and verifications, continuity, the clip, the last frame,
//! and "generate this scene again".

use axum::Extension;
use axum::extract::{Path, Query, State};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};
use slate_workflows::model::{Scene, SceneStatus};

use super::project_tabs;
use crate::extract::slug;
use crate::routes::approval::{Awaiting, AwaitingList, awaiting_in, awaiting_of};
use crate::state::AppState;
use crate::ui::UiResult;
use crate::ui::session::Viewer;
use crate::ui::view::{self, Nav, badge, json_attr, media};

/// Filters of the grid.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct GridQuery {
    status: Option<String>,
}

/// The picture that stands for a scene: its final composite, else its latest iteration.
fn thumbnail(sc: &Scene) -> Option<&str> {
    sc.composite_final_url
        .as_deref()
        .or(sc.generated_image_url.as_deref())
        .or_else(|| {
            sc.composite_iterations
                .iter()
                .rev()
                .map(|i| i.generated_url.as_str())
                .find(|u| !u.is_empty())
        })
}

const STATES: [&str; 7] = [
    "ready_for_generation",
    "waiting_for_previous",
    "generating_composite",
    "verifying_composite",
    "generating_video",
    "completed",
    "failed",
];

/// `GET /projects/{slug}/scenes`.
pub(crate) async fn grid(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(raw): Path<String>,
    Query(q): Query<GridQuery>,
) -> UiResult {
    let slug = slug(&raw)?;
    let project = s.film.repo.project(&slug).await?;
    let all = s.film.repo.scenes(&slug).await?;
    let want = q.status.as_deref().filter(|s| !s.is_empty());
    let scenes: Vec<&Scene> = all
        .iter()
        .filter(|sc| want.is_none_or(|w| sc.status.as_str() == w))
        .collect();
    let done = all
        .iter()
        .filter(|sc| sc.status == SceneStatus::Completed)
        .count();
    let seconds: f64 = all
        .iter()
        .map(|sc| sc.actual_duration.unwrap_or(sc.expected_duration))
        .sum();
    let gate = awaiting_in(&s, &slug).await?;
    let body = html! {
        h1 { (project.title) ": scenes" }
        (project_tabs(slug.as_str(), "Scenes"))
        section #approvals.card data-live {
            (approvals(slug.as_str(), &gate))
        }
        nav.filters aria-label="Filter scenes" {
            a href="?" class=[want.is_none().then_some("active")] { "All " (all.len()) }
            @for st in STATES {
                @let n = all.iter().filter(|sc| sc.status.as_str() == st).count();
                @if n > 0 {
                    a href=(format!("?status={st}")) class=[(want == Some(st)).then_some("active")] { (st.replace('_', " ")) " " (n) }
                }
            }
        }
        section #scenes data-live {
            @let pr = crate::routes::scenes::progress_of(&all);
            p.muted #progress {
                (done) " of " (all.len()) " scenes done · " (format!("{seconds:.1}")) " s of film"
                @if !pr.in_flight.is_empty() {
                    " · " strong { (pr.in_flight.len()) " in flight" } ": "
                    (pr.in_flight.iter().map(|f| format!("scene {}", f.scene_number)).collect::<Vec<_>>().join(", "))
                }
                @if !pr.failed.is_empty() {
                    " · " (pr.failed.len()) " failed"
                }
            }
            @if all.is_empty() { p.empty { "No scenes yet: qualification writes them (phase B)." } }
            div.grid {
                @for sc in &scenes {
                    a.shot href=(format!("/scenes/{}", sc.id)) data-status=(sc.status.as_str()) {
                        @match thumbnail(sc) {
                            Some(u) => { img src=(media(u)) alt=(format!("Scene {}", sc.scene_number)) loading="lazy"; }
                            None => { div.placeholder { "no image yet" } }
                        }
                        div.meta {
                            strong { "Scene " (sc.scene_number) }
                            span { (format!("{:.1}", sc.actual_duration.unwrap_or(sc.expected_duration))) " s" }
                            (badge(sc.status.as_str()))
                            @if gate.awaiting.iter().any(|a| a.scene_id == sc.id) { (badge("awaiting approval")) }
                            @if sc.generated_video_url.is_some() { span.clip title="clip ready" { "▶" } }
                        }
                        @if let Some(l) = &sc.location { div.muted.small { (l) } }
                    }
                }
            }
        }
    };
    view::page(
        &s,
        &v,
        &format!("{}: scenes", project.title),
        Nav::Projects,
        &format!("project:{slug}"),
        body,
    )
    .await
}

/// The approval gate: its switch, and each composite that waits for a person with the
/// decisions on it (approve; reject with a note; approve all).
fn approvals(slug: &str, gate: &AwaitingList) -> Markup {
    let switch = json!({"required": !gate.required});
    html! {
        div.row {
            h2 { "Approval before video" }
            span.muted {
                @if gate.required { "On: each scene's verified composite waits here before its video is paid for." }
                @else { "Off: scenes go from their verified composite straight to video." }
            }
            button.secondary #approval-switch data-api=(format!("PUT /api/projects/{slug}/approval")) data-body=(json_attr(&switch)) data-then="reload" {
                @if gate.required { "Stop asking" } @else { "Ask before video" }
            }
        }
        @if !gate.awaiting.is_empty() {
            div.buttons {
                button #approve-all data-api=(format!("POST /api/projects/{slug}/approvals/approve-all"))
                    data-confirm=(format!("Approve {}? Their videos are paid for next.", view::plural(gate.awaiting.len(), "composite")))
                    data-then="reload" { "Approve all " (gate.awaiting.len()) }
            }
            div.awaiting {
                @for a in &gate.awaiting { (awaiting_card(a)) }
            }
        }
    }
}

/// One composite awaiting approval.
fn awaiting_card(a: &Awaiting) -> Markup {
    html! {
        article.approval data-scene=(a.scene_id) data-round=(a.round) {
            a href=(format!("/scenes/{}", a.scene_id)) {
                img src=(media(&a.composite)) alt=(format!("Scene {} composite, round {}", a.scene_number, a.round));
            }
            div {
                strong { "Scene " (a.scene_number) }
                 " · round " (a.round) " · " (a.iterations) " of " (a.iteration_limit) " iterations"
                @if let Some(t) = a.requested_at { " · waiting since " (view::when(t)) }
                @if !a.rejections.is_empty() {
                    ul.rejections { @for n in &a.rejections { li { "Rejected: " (n) } } }
                }
                div.buttons {
                    button.approve data-api=(format!("POST /api/scenes/{}/approval", a.scene_id))
                        data-body=(json_attr(&json!({"decision": "approve", "round": a.round}))) data-then="reload" { "Approve" }
                }
                form.reject data-api=(format!("POST /api/scenes/{}/approval", a.scene_id)) data-then="reload" {
                    input type="hidden" name="decision" value="reject";
                    input type="hidden" name="round" value=(a.round) data-kind="number";
                    label { "What should change?"
                        textarea name="note" rows="2" required maxlength="2000" placeholder="the lantern should stand on the left of the window" {}
                    }
                    button.secondary type="submit" { "Reject and redo" }
                }
            }
        }
    }
}

/// `GET /scenes/{id}`.
pub(crate) async fn show(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
) -> UiResult {
    let sc = s.film.repo.scene(&id).await?;
    let project = s.film.repo.project(&slug(&sc.project)?).await?;
    let doc = serde_json::to_value(&sc).unwrap_or(Value::Null);
    let takes = crate::routes::film::takes_of(&s, &sc).await;
    let busy = matches!(
        sc.status,
        SceneStatus::WaitingForPrevious
            | SceneStatus::GeneratingComposite
            | SceneStatus::VerifyingComposite
            | SceneStatus::GeneratingVideo
    );
    let body = html! {
        div #head data-live { h1 { "Scene " (sc.scene_number) " " (badge(sc.status.as_str())) } }
        (project_tabs(&sc.project, "Scenes"))
        p.muted { a href=(format!("/projects/{}/scenes", sc.project)) { "← " (project.title) } " · id " code { (sc.id) } }
        section #media.card data-live {
            div.media {
                @if let Some(u) = &sc.generated_video_url {
                    figure { video controls preload="metadata" src=(media(u)) poster=[sc.composite_final_url.as_deref().map(media)] {} figcaption { "The clip" } }
                }
                @if let Some(u) = &sc.composite_final_url { figure { img src=(media(u)) alt="final composite"; figcaption { "Final composite" } } }
                @if let Some(u) = &sc.last_frame_url { figure { img src=(media(u)) alt="last frame"; figcaption { "Last frame (seeds the next scene)" } } }
            }
            @if let Some(e) = &sc.error_message { p.alert role="alert" { (e) } }
            @if let Some(a) = awaiting_of(&sc, s.film.config.max_iterations) {
                div #approval { h2 { "Awaiting your approval" } (awaiting_card(&a)) }
            }
            div.actions {
                button data-api=(format!("POST /api/scenes/{}/generate", sc.id)) disabled[busy]
                    data-confirm="Generate this scene again? A new composite and clip are made and paid for; the rest of the film is untouched."
                    data-then="reload" { "Generate this scene again" }
            }
        }
        (takes_card(&sc, &takes))
        section #iterations.card data-live {
            h2 { "Composite iterations" }
            @if sc.composite_iterations.is_empty() { p.muted { "None yet." } }
            div.iterations {
                @for it in &sc.composite_iterations {
                    article.iteration data-passed=(it.verification_passed) {
                        @if !it.generated_url.is_empty() { img src=(media(&it.generated_url)) alt=(format!("iteration {}", it.iteration_number)) loading="lazy"; }
                        div {
                            strong { "#" (it.iteration_number) " " (it.layer) }
                            " " (badge(if it.verification_passed { "passed" } else { "rejected" }))
                            " · " (view::plural(it.attempts as usize, "attempt"))
                            ul.refs { @for r in &it.references_used { li { (r.reference_type) ": " (r.reference_description) } } }
                            @if !it.verification_details.is_null() {
                                details { summary { "verification" } (view::json_block(&it.verification_details)) }
                            }
                        }
                    }
                }
            }
            h2 { "Verification" }
            table.list {
                tbody {
                    @for r in &sc.verification_results {
                        tr { td { (r.verification_type.replace('_', " ")) } td { (badge(if r.passed { "passed" } else { "failed" })) } td { (format!("{:.0} %", r.confidence * 100.0)) } td { (r.result) } }
                    }
                }
            }
            h2 { "Continuity" }
            table.list {
                tbody {
                    @for c in &sc.continuity_checks {
                        tr { td { (c.check_type) } td { (badge(if c.passed { "passed" } else { "failed" })) } td { (c.notes) } }
                    }
                }
            }
        }
        section.card {
            h2 { "Fields" }
            p.muted { "Saved through the API: a value that does not fit is refused with the reason; a change made meanwhile by someone else is shown before anything is overwritten." }
            form #scene-form data-api=(format!("PATCH /api/scenes/{}", sc.id)) data-edit data-version=(sc.version) data-reload=(format!("/api/scenes/{}", sc.id)) data-then="reload" {
                @let editable: Vec<(&String, &Value)> = match &doc {
                    Value::Object(f) => f.iter().filter(|(k, _)| !Scene::READ_ONLY_FIELDS.contains(&k.as_str())).collect(),
                    _ => vec![],
                };
                div.fields {
                    @for name in SCREENPLAY {
                        @if let Some((k, val)) = editable.iter().find(|(k, _)| k.as_str() == *name) { (field(k, val)) }
                    }
                }
                details {
                    summary { "Every other field" }
                    div.fields {
                        @for (k, val) in editable.iter().filter(|(k, _)| !SCREENPLAY.contains(&k.as_str())) { (field(k, val)) }
                    }
                }
                div.conflict hidden {}
                button type="submit" { "Save changes" }
            }
        }
    };
    view::page(
        &s,
        &v,
        &format!("Scene {}", sc.scene_number),
        Nav::Projects,
        &format!("project:{}", sc.project),
        body,
    )
    .await
}

/// The fields a person edits most, in the order the screenplay reads; the rest follow.
const SCREENPLAY: &[&str] = &[
    "screenplay_text",
    "dramatic_effect",
    "expected_duration",
    "location",
    "time_of_day",
    "weather",
    "camera_shot",
    "camera_angle",
    "camera_movement",
    "framing",
    "lighting_type",
    "lighting_mood",
    "characters_present",
    "dialogue",
    "transition_in",
    "transition_out",
    "pacing",
    "text_prompt",
    "negative_prompt",
];

/// One editable field: text for strings, a number for numbers, JSON for the rest.
fn field(name: &str, v: &Value) -> Markup {
    let label = name.replace('_', " ");
    let original = v.to_string();
    html! {
        @match v {
            Value::Number(n) => {
                label { (label) input type="number" step="any" name=(name) value=(n.to_string()) data-kind="number" data-original=(original); }
            }
            Value::String(s) if s.len() < 120 && !s.contains('\n') => {
                label { (label) input name=(name) value=(s) data-kind="text" data-original=(original); }
            }
            Value::String(s) => {
                label.wide { (label) textarea name=(name) rows="4" data-kind="text" data-original=(original) { (s) } }
            }
            Value::Bool(b) => {
                label.check { input type="checkbox" name=(name) checked[*b] data-kind="bool" data-original=(original); " " (label) }
            }
            Value::Null => {
                label { (label) input name=(name) value="" placeholder="(empty)" data-kind="nullable" data-original=(original); }
            }
            _ => {
                label.wide { (label) textarea name=(name) rows="3" spellcheck="false" data-kind="json" data-original=(original) { (serde_json::to_string_pretty(v).unwrap_or_default()) } }
            }
        }
    }
}

/// The scene's takes side by side: each one's still and clip, what was edited since the take
/// before, what it cost, and the choice of the one the film uses.
fn takes_card(sc: &Scene, takes: &crate::routes::film::Takes) -> Markup {
    html! {
        section #takes.card data-live {
            h2 { "Takes" }
            @if takes.takes.is_empty() { p.muted { "None yet: each generation of the scene is kept as a take." } }
            div.takes-grid {
                @for t in takes.takes.iter().rev() {
                    article.take data-take=(t.take.take) data-current=(t.current) {
                        h3 { "Take " (t.take.take) " " (badge(match t.take.status {
                            slate_workflows::model::TakeStatus::Completed => "completed",
                            slate_workflows::model::TakeStatus::Generating => "running",
                            slate_workflows::model::TakeStatus::Failed => "failed",
                        })) @if t.current { " " span.badge { "in the film" } } }
                        @if let Some(u) = &t.take.video {
                            video controls preload="none" src=(media(u)) poster=[t.take.composite_final_url.as_deref().or(t.take.last_frame.as_deref()).map(media)] {}
                        } @else if let Some(u) = &t.take.composite_final_url {
                            img src=(media(u)) alt=(format!("take {} composite", t.take.take)) loading="lazy";
                        }
                        dl {
                            @if let Some(d) = t.take.duration { dt { "Length" } dd { (format!("{d:.2} s")) } }
                            dt { "Cost" } dd { (view::usd(t.cost_usd)) }
                            dt { "Iterations" } dd { (t.take.composite_iterations.len()) }
                            @if !t.changed.is_empty() {
                                dt { "Changed" }
                                dd.changed { (t.changed.keys().map(|k| k.replace('_', " ")).collect::<Vec<_>>().join(", ")) }
                            }
                            @if let Some(e) = &t.take.error_message { dt { "Failed" } dd { (e) } }
                        }
                        @if !t.current && t.take.video.is_some() {
                            button.secondary data-api=(format!("PUT /api/scenes/{}/take", sc.id))
                                data-body=(format!("{{\"take\":{}}}", t.take.take)) data-then="reload" { "Use take " (t.take.take) }
                        }
                    }
                }
            }
        }
    }
}
