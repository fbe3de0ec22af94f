//! A project: readiness per department, the gather collections (editable while the gather is
//! open), and "Generate Qualified Data" with its edit window.
//!
//! The edit window's popup is drawn from the qualification run's state (waiting in its
//! `edit-window` step, due at the window's end), not from the click: a closed tab, another
//! browser or a restarted server shows the same countdown.

use axum::Extension;
use axum::extract::{Path, State};
use maud::{Markup, html};
use serde_json::json;
use slate_engine::{RunRecord, RunStatus};
use slate_workflows::docstore::{GATHER_COLLECTIONS, Namespace};
use slate_workflows::model::{Project, ProjectStatus};
use slate_workflows::qualification;

use super::project_tabs;
use crate::extract::{run_id, slug};
use crate::state::AppState;
use crate::ui::session::Viewer;
use crate::ui::view::{self, Nav, badge, json_attr, usd, when};
use crate::ui::{UiResult, segment};

/// The qualification run, if it waits in its edit window now.
async fn in_edit_window(s: &AppState, p: &Project) -> Option<RunRecord> {
    let id = run_id(p.qualification_run.as_deref()?).ok()?;
    let d = s.engine.inspect(id).await.ok()?;
    (d.run.status == RunStatus::Waiting && d.current_step.as_deref() == Some("edit-window"))
        .then_some(d.run)
}

/// `GET /projects/{slug}`.
pub(crate) async fn show(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(raw): Path<String>,
) -> UiResult {
    let slug = slug(&raw)?;
    let project = crate::service::settle(&s, &slug).await?;
    let departments = qualification::readiness(&s.film, &slug).await?;
    let ready = departments.iter().all(|d| d.ready);
    let window = in_edit_window(&s, &project).await;
    let open = project.gather_locked_at.is_none();
    let ns = Namespace::Gather(slug.clone());
    let mut names: Vec<String> = s.film.docs.collections(&ns).await?;
    for c in GATHER_COLLECTIONS {
        if !names.iter().any(|n| n == c) {
            names.push(c.to_string());
        }
    }
    let mut collections = vec![];
    for c in &names {
        collections.push((c.clone(), s.film.docs.list(&ns, c).await?));
    }
    // The estimate needs the gather or the scenes to count from; a project with neither yet
    // shows none rather than an error.
    let estimate = slate_workflows::estimate::estimate(&s.film, &slug)
        .await
        .ok();
    let spent = crate::service::project_spent(&s, &slug).await?;
    let p = &project;
    let body = html! {
        div #head data-live { h1 { (p.title) " " (badge(p.status.as_str())) } }
        (project_tabs(slug.as_str(), "Overview"))
        section #qualify data-live {
            (actions(p, ready, window.as_ref()))
        }
        (readiness(&departments))
        section #cost.card data-live {
            (cost(p, estimate.as_ref(), spent))
        }
        (gather(p, &slug, open, &collections))
    };
    view::page(
        &s,
        &v,
        &project.title,
        Nav::Projects,
        &format!("project:{slug}"),
        body,
    )
    .await
}

fn readiness(departments: &[slate_activities::model::DepartmentReadiness]) -> Markup {
    html! {
    section #readiness.card data-live {
        h2 { "Readiness" }
        p.muted { "Each department needs a score of " (slate_activities::model::READY_SCORE) " to qualify." }
        div.departments {
            @for d in departments {
                div.department data-ready=(d.ready) {
                    div.row { strong { (d.department.replace('_', " ")) } span { (d.score) } }
                    meter min="0" max="100" low="74" optimum="100" value=(d.score) {}
                    @if !d.missing_items.is_empty() {
                        ul.missing { @for m in &d.missing_items { li { (m) } } }
                    }
                }
            }
        }
    }
    }
}

/// The gathered ideas, editable until qualification locks them.
fn gather(
    p: &Project,
    slug: &slate_workflows::Slug,
    open: bool,
    collections: &[(String, Vec<slate_workflows::docstore::Doc>)],
) -> Markup {
    html! {
    section #gather.card {
        h2 { "Gathered ideas" }
        @if open {
            p.muted { "Raw and exploratory: any JSON object. Qualification reads them by their content, whatever their field names." }
        } @else {
            p.muted { "Read-only: qualification locked the gather " (when(p.gather_locked_at.unwrap_or(p.updated_at))) "." }
        }
        @for (name, docs) in collections {
            @if open || !docs.is_empty() {
                details.collection open[open && !docs.is_empty()] {
                    summary { strong { (name) } " " span.muted { (view::plural(docs.len(), "document")) } }
                    @for d in docs {
                        div.doc {
                            @if open {
                                form data-api=(format!("PUT /api/projects/{}/gather/{}/{}", slug, name, segment(&d.id))) data-then="reload" data-whole="body" {
                                    label { code { (d.id) }
                                        textarea name="body" rows="4" data-json spellcheck="false" { (serde_json::to_string_pretty(&d.body).unwrap_or_default()) }
                                    }
                                    div.buttons {
                                        button type="submit" { "Save" }
                                        button.danger type="button"
                                            data-api=(format!("DELETE /api/projects/{}/gather/{}/{}", slug, name, segment(&d.id)))
                                            data-confirm=(format!("Delete `{}` from {}?", d.id, name))
                                            data-then="reload" { "Delete" }
                                    }
                                }
                            } @else {
                                code { (d.id) }
                                (view::json_block(&d.body))
                            }
                        }
                    }
                    @if open {
                        form.add data-api=(format!("POST /api/projects/{}/gather/{}", slug, name)) data-then="reload" data-whole="body" {
                            label { "New document in " (name)
                                textarea name="body" rows="3" data-json spellcheck="false" placeholder=r#"{"name": "Maren", "role": "the lantern keeper"}"# {}
                            }
                            button type="submit" { "Add" }
                        }
                    }
                }
            }
        }
        @if open {
            form.add.inline-form data-api=(format!("POST /api/projects/{}/gather/{{collection}}", slug)) data-then="reload" data-whole="body" {
                label { "Another collection" input name="collection" data-path required pattern="[a-z][a-z0-9_]{0,63}" placeholder="raw_notes"; }
                label { "First document" textarea name="body" rows="2" data-json spellcheck="false" placeholder=r#"{"text": "..."}"# {} }
                button type="submit" { "Add" }
            }
            form.upload.inline-form data-upload=(format!("/api/projects/{slug}/gather/import")) data-then="reload" {
                label { "Import a file (a screenplay in .fountain or .txt, a treatment or notes in .md or .txt, gather documents in .json)"
                    input type="file" name="file" accept=".fountain,.txt,.md,.json" required;
                }
                button type="submit" { "Import" }
            }
        }
    }
    }
}

/// What a person can do next, by the project's state.
fn actions(p: &Project, ready: bool, window: Option<&RunRecord>) -> Markup {
    let slug = &p.slug;
    html! {
        @if let Some(run) = window {
            // The popup, drawn as long as the run waits in its window.
            div.modal role="dialog" aria-modal="true" aria-labelledby="window-title" {
                div.dialog {
                    h2 #window-title { "Qualification starts in " span.countdown data-deadline=(run.ready_at.map(|t| t.to_rfc3339()).unwrap_or_default()) { "…" } }
                    p { "Last chance to change the gathered ideas. Edit stops qualification and reopens the gather; Continue starts the departments now." }
                    div.buttons {
                        button.secondary data-api=(format!("POST /api/projects/{slug}/qualify/stop")) data-then="reload" { "Edit" }
                        button data-api=(format!("POST /api/projects/{slug}/qualify/continue")) data-then=(format!("go:/projects/{slug}/qualification")) { "Continue" }
                    }
                }
            }
        }
        div.actions {
            @match p.status {
                ProjectStatus::Gathering => {
                    @if p.gather_locked_at.is_none() || window.is_some() {
                        button #generate data-api=(format!("POST /api/projects/{slug}/qualify")) data-body=(json_attr(&json!({}))) data-then="reload"
                            disabled[window.is_some()] { "Generate Qualified Data" }
                        @if !ready {
                            span.muted { " Not every department is ready. " }
                            button.secondary data-api=(format!("POST /api/projects/{slug}/qualify")) data-body=(json_attr(&json!({"force": true})))
                                data-confirm="Qualify although some departments are below the readiness threshold? Missing material will be invented or left thin."
                                data-then="reload" { "Qualify anyway" }
                        }
                    }
                }
                ProjectStatus::Qualifying => {
                    a.button href=(format!("/projects/{slug}/qualification")) { "Follow qualification" }
                }
                ProjectStatus::Qualified | ProjectStatus::Failed => {
                    button data-api=(format!("POST /api/projects/{slug}/generate")) data-body=(json_attr(&json!({})))
                        data-confirm="Generate every scene and stitch the film? This is where images and videos are paid for."
                        data-then=(format!("go:/projects/{slug}/scenes")) { "Generate the film" }
                    " "
                    a.button.secondary href=(format!("/projects/{slug}/scenes")) { "Scenes" }
                    @if p.status == ProjectStatus::Failed && p.gather_locked_at.is_some() {
                        " "
                        button.secondary data-api=(format!("POST /api/projects/{slug}/reopen")) data-body=(json_attr(&json!({"reason": "edited from the dashboard"})))
                            data-confirm="Reopen the gather? The qualified data and scenes are removed, to be made again from the edited ideas."
                            data-then="reload" { "Reopen the gather" }
                    }
                }
                ProjectStatus::Generating => {
                    a.button href=(format!("/projects/{slug}/scenes")) { "Follow the scenes" }
                }
                ProjectStatus::Completed => {
                    a.button href=(format!("/projects/{slug}/film")) { "Watch the film" }
                }
            }
        }
    }
}

/// What producing the project would cost with the configured providers, what it has spent,
/// and its budget (editable).
fn cost(p: &Project, e: Option<&slate_workflows::estimate::Estimate>, spent: f64) -> Markup {
    let slug = &p.slug;
    html! {
        h2 { "Cost" }
        @if let Some(e) = e {
            p {
                @if e.high_usd == 0.0 {
                    "Producing it costs nothing with the configured providers (the local studio)."
                } @else {
                    "Producing it: " strong { (usd(e.low_usd)) " to " (usd(e.high_usd)) }
                    ", most likely " strong { (usd(e.expected_usd)) }
                }
                span.muted { " · " (e.scenes) " scenes, counted from the "
                    (if e.basis == "scenes" { "qualified scenes" } else { "gathered ideas" })
                    " · prices as of " (e.prices_as_of) }
            }
            table.list.estimate {
                thead { tr { th { "stage" } th.num { "low" } th.num { "most likely" } th.num { "high" } } }
                tbody {
                    @for st in &e.stages {
                        tr { td { (st.stage) } td.num { (usd(st.low_usd)) } td.num { (usd(st.expected_usd)) } td.num { (usd(st.high_usd)) } }
                    }
                }
            }
        } @else {
            p.muted { "No estimate yet: add gathered ideas first." }
        }
        p {
            "Spent so far: " strong { (usd(spent)) }
            @match p.budget_usd {
                Some(b) => { " of a " (usd(b)) " budget (" (usd((b - spent).max(0.0))) " left)." }
                None => { " · no budget set." }
            }
            @if p.approval_required { " Composites wait for approval before video." }
        }
        form.inline-form #budget-form data-api=(format!("PUT /api/projects/{slug}/budget")) data-then="reload" {
            label { "Budget, dollars (empty: none)"
                input type="number" name="usd" min="0" step="0.01" data-kind="number" value=[p.budget_usd.map(|b| format!("{b:.2}"))];
            }
            button.secondary type="submit" { "Set budget" }
        }
    }
}
