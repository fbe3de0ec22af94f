//! Runs: a list with filters and paging, and a run's page: its waterfall (each attempt its own
//! bar, waiting drawn apart from running), steps with outputs, errors and cost, children, the
//! history a page at a time, and the admin actions for the admin.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use slate_engine::{EventData, EventRecord, RunDetail, RunFilter, RunId, RunRecord, RunStatus};

use crate::extract::run_id;
use crate::state::AppState;
use crate::ui::UiResult;
use crate::ui::session::Viewer;
use crate::ui::view::{self, Nav, badge, duration_ms, json_attr, usd, when};

/// Filters of the runs list.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct ListQuery {
    workflow: Option<String>,
    status: Option<String>,
    project: Option<String>,
    before: Option<String>,
}

fn blank(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `GET /runs`.
pub(crate) async fn list(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    let status = match blank(&q.status) {
        Some(st) => Some(st.parse::<RunStatus>().map_err(|_| {
            crate::error::ApiError::bad_request(format!("`{st}` is not a run state"))
        })?),
        None => None,
    };
    let filter = RunFilter {
        workflow: blank(&q.workflow),
        status,
        scope: blank(&q.project),
        parent_id: None,
        workflow_version: None,
        patch: None,
        limit: Some(50),
        before: blank(&q.before).as_deref().map(run_id).transpose()?,
    };
    let runs = s.engine.list(&filter).await?;
    let blocked = s
        .engine
        .list(&RunFilter {
            status: Some(RunStatus::Blocked),
            limit: Some(100),
            ..Default::default()
        })
        .await?
        .len();
    let next = (runs.len() == 50)
        .then(|| runs.last().map(|r| r.id))
        .flatten();
    let workflows: Vec<String> = s
        .engine
        .workflows()
        .into_iter()
        .map(|w| w.to_string())
        .collect();
    let keep = |before: Option<String>| {
        let mut parts = vec![];
        for (k, v) in [
            ("workflow", blank(&q.workflow)),
            ("status", blank(&q.status)),
            ("project", blank(&q.project)),
            ("before", before),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={}", crate::ui::urlencode(&v)));
            }
        }
        format!("/runs?{}", parts.join("&"))
    };
    let body = html! {
        h1 { "Runs" }
        @if blocked > 0 {
            div.banner.blocked #blocked-runs {
                strong { (if blocked >= 100 { "100+".to_string() } else { blocked.to_string() }) " blocked" }
                ": their journal no longer fits the code deployed. "
                a href="/runs?status=blocked" { "See them" }
                ", then retry each on code that fits, fork it from the step before the change, or cancel it (docs/upgrading.md)."
            }
        }
        form.filters method="get" action="/runs" {
            label { "Workflow"
                select name="workflow" {
                    option value="" { "any" }
                    @for w in &workflows { option value=(w) selected[q.workflow.as_deref() == Some(w)] { (w) } }
                }
            }
            label { "State"
                select name="status" {
                    option value="" { "any" }
                    @for st in RunStatus::ALL.iter().map(|s| s.as_str()) {
                        option value=(st) selected[q.status.as_deref() == Some(st)] { (st) }
                    }
                }
            }
            label { "Project" input name="project" value=(q.project.clone().unwrap_or_default()) placeholder="slug"; }
            button type="submit" { "Filter" }
            " " a href="/runs?status=failed" { "Failed only" }
            " " a href="/runs?status=blocked" { "Blocked only" }
        }
        section #runs data-live {
            @if runs.is_empty() { p.empty { "No run matches." } }
            @else {
                table.list {
                    thead { tr { th { "Run" } th { "Workflow" } th { "Project" } th { "State" } th { "Started" } th { "Cost" } } }
                    tbody {
                        @for r in &runs {
                            tr {
                                td { a href=(format!("/runs/{}", r.id)) { code { (r.id.to_string()[..8]) "…" } } }
                                td { (r.workflow) }
                                td { @if let Some(p) = &r.scope { a href=(format!("/projects/{p}")) { (p) } } }
                                td { (badge(r.status.as_str())) }
                                td { (when(r.created_at)) }
                                td { (usd(r.cost_micros as f64 / 1e6)) }
                            }
                        }
                    }
                }
            }
            @if let Some(n) = next { p { a.button.secondary href=(keep(Some(n.to_string()))) { "Older runs" } } }
        }
    };
    view::page(&s, &v, "Runs", Nav::Runs, "*", body).await
}

/// Paging of a run's history.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct RunQuery {
    /// Show events after this sequence number.
    after: Option<i64>,
    /// Show waterfall rows from this step index.
    from: Option<usize>,
}

/// Events shown per page.
const EVENTS_PER_PAGE: u32 = 100;
/// Waterfall rows per page.
const ROWS_PER_PAGE: usize = 200;

/// `GET /runs/{id}`.
pub(crate) async fn show(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(raw): Path<String>,
    Query(q): Query<RunQuery>,
) -> UiResult {
    let id = run_id(&raw)?;
    let d = s.engine.inspect(id).await?;
    let after = q.after.unwrap_or(0).max(0);
    let page = s
        .engine
        .store()
        .events_page(id, after, EVENTS_PER_PAGE)
        .await?;
    let children = s
        .engine
        .list(&RunFilter {
            parent_id: Some(id),
            limit: Some(200),
            ..Default::default()
        })
        .await?;
    let r = &d.run;
    let terminal = r.status.is_terminal();
    let before = waiting_for_previous(&s, r, &children).await;
    let body = html! {
        div #head data-live {
        h1 { (r.workflow) " " (badge(r.status.as_str())) }
        p.muted {
            code { (r.id) }
            " · version " (r.workflow_version)
            @if let Some(b) = &r.build { " of " (b) }
            @if let Some(p) = &r.scope { " · project " a href=(format!("/projects/{p}")) { (p) } }
            @if let Some(p) = r.parent_id { " · parent " a href=(format!("/runs/{p}")) { code { (p.to_string()[..8]) "…" } } }
            " · started " (when(r.created_at))
            @if let Some(f) = r.finished_at { " · finished " (when(f)) }
        }
        }
        (summary(&d, &children, &before, &v))
        @if r.status == RunStatus::Blocked { (blocked_card(&d, v.is_admin())) }
        section #waterfall.card data-live {
            h2 { "Waterfall" }
            (waterfall(&d, &children, q.from.unwrap_or(0)))
        }
        section #steps.card data-live {
            h2 { "Steps" }
            (steps(&d, v.is_admin() && !matches!(r.status, RunStatus::Running), q.from.unwrap_or(0)))
        }
        @if !children.is_empty() { (children_table(&children)) }
        section.card {
            h2 { "Input" }
            (view::json_block(&r.input))
            @if let Some(o) = &r.output { h2 { "Output" } (view::json_block(o)) }
        }
        (history(&d, &page, after, id))
        @if !terminal { p.muted { "This page follows the run as it moves." } }
    };
    view::page(
        &s,
        &v,
        &format!("{} run", r.workflow),
        Nav::Runs,
        &format!("run:{id}"),
        body,
    )
    .await
}

/// A film's scenes started early wait for the scene before them: not in flight yet.
async fn waiting_for_previous(
    s: &AppState,
    r: &RunRecord,
    children: &[RunRecord],
) -> std::collections::HashSet<String> {
    if children
        .iter()
        .any(|c| c.workflow == slate_workflows::names::workflow::SCENE)
        && let Some(Ok(slug)) = r.scope.as_deref().map(slate_workflows::Slug::parse)
    {
        return s
            .film
            .repo
            .scenes(&slug)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|sc| sc.status == slate_workflows::model::SceneStatus::WaitingForPrevious)
            .map(|sc| sc.id)
            .collect();
    }
    Default::default()
}

/// The run's cost, budget, current step, scenes in flight, who holds it, what blocks it, its
/// error and the admin's actions.
fn summary(
    d: &RunDetail,
    children: &[RunRecord],
    before: &std::collections::HashSet<String>,
    v: &Viewer,
) -> Markup {
    let r = &d.run;
    let waits_for_previous = |c: &RunRecord| {
        c.input["scene_id"]
            .as_str()
            .is_some_and(|id| before.contains(id))
    };
    html! {
    section #summary data-live {
        dl.facts {
            dt { "Cost" } dd { (usd(d.tree_cost_usd)) " with its children" }
            dt { "Budget" } dd { @match d.budget_usd { Some(b) => { (usd(b)) " (" (((d.tree_cost_usd / b.max(1e-9)) * 100.0).round()) " % spent)" }, None => { "none" } } }
            @if let Some(c) = &d.current_step { dt { "Now" } dd { code { (c) } } }
            @let scene_runs: Vec<&RunRecord> = children.iter().filter(|c| c.workflow == slate_workflows::names::workflow::SCENE).collect();
            @if !scene_runs.is_empty() {
                @let flying: Vec<&&RunRecord> = scene_runs.iter().filter(|c| !c.status.is_terminal() && !waits_for_previous(c)).collect();
                @let queued = scene_runs.iter().filter(|c| !c.status.is_terminal() && waits_for_previous(c)).count();
                dt { "Scenes" }
                dd #scenes-in-flight {
                    (scene_runs.iter().filter(|c| c.status == RunStatus::Completed).count()) " done"
                    @if !flying.is_empty() {
                        " · " strong { (flying.len()) " in flight" } ": "
                        @for (i, c) in flying.iter().enumerate() {
                            @if i > 0 { ", " }
                            a href=(format!("/runs/{}", c.id)) { (c.parent_step.clone().unwrap_or_else(|| "scene".into()).replace('/', " ")) }
                            " (" (c.status.as_str()) ")"
                        }
                    }
                    @if queued > 0 {
                        " · " (queued) " planned, waiting for the scene before"
                    }
                }
            }
            @if let Some(a) = &d.alive {
                dt { "Alive" }
                dd {
                    (a.worker)
                    @if let (Some(s), Some(ms)) = (&a.step, a.running_ms) {
                        " runs " code { (s) } " (attempt " (a.attempt.unwrap_or(1)) ") for " (duration_ms(ms))
                    }
                    @if a.lease_holds { "; lease until " (when(a.lease_until)) }
                    @else { span.alert { "; its lease lapsed at " (when(a.lease_until)) ": the worker is gone, another takes the run over" } }
                }
            }
            @if let Some(b) = &d.blocked_on {
                dt { "Blocked" } dd.alert { "waits on " a href=(format!("/runs/{}", b.run_id)) { (b.workflow) } ", which failed: retry the failed step there, or cancel this run." }
            }
        }
        @if let Some(e) = &r.error { p.alert role="alert" { strong { (e.kind) } ": " (e.message) } }
        @if v.is_admin() { (admin_actions(d)) }
    }
    }
}

fn children_table(children: &[RunRecord]) -> Markup {
    html! {
        section #children.card data-live {
            h2 { "Children" }
            table.list {
                tbody {
                    @for c in children {
                        tr {
                            td { a href=(format!("/runs/{}", c.id)) { (c.workflow) } }
                            td { code { (c.parent_step.clone().unwrap_or_default()) } }
                            td { (badge(c.status.as_str())) }
                            td { (usd(c.cost_micros as f64 / 1e6)) }
                        }
                    }
                }
            }
        }
    }
}

/// A page of the run's history, `after` an event number.
fn history(d: &RunDetail, page: &[EventRecord], after: i64, id: RunId) -> Markup {
    html! {
    section #events.card data-live=[(after == 0).then_some("")] {
        h2 { "History" }
        p.muted { (d.events.len()) " events; showing " (page.len()) " after #" (after) "." }
        table.list.events {
            thead { tr { th { "#" } th { "At" } th { "Step" } th { "Event" } th { "Details" } } }
            tbody {
                @for e in page {
                    tr class=(format!("k-{}", e.data.kind())) {
                        td { (e.seq) }
                        td { (e.at.format("%H:%M:%S%.3f")) }
                        td { code { (e.step.clone().unwrap_or_default()) } }
                        td { (e.data.kind()) }
                        td { (event_details(e)) }
                    }
                }
            }
        }
        div.pager {
            @if after > 0 { a.button.secondary href=(format!("/runs/{id}?after={}", (after - EVENTS_PER_PAGE as i64).max(0))) { "Earlier" } }
            @if page.len() == EVENTS_PER_PAGE as usize {
                " " a.button.secondary href=(format!("/runs/{id}?after={}", page.last().map(|e| e.seq).unwrap_or(after))) { "Later" }
            }
        }
    }
    }
}

fn event_details(e: &EventRecord) -> Markup {
    let short = match &e.data {
        EventData::StepFailed { attempt, error, .. } => {
            format!("attempt {attempt}: {}", error.message)
        }
        EventData::StepSucceeded {
            attempt,
            duration_ms: ms,
            ..
        } => format!("attempt {attempt}, {}", duration_ms(*ms)),
        EventData::StepStarted { attempt, .. } => format!("attempt {attempt}"),
        EventData::RunSuspended { reasons, .. } => reasons.join("; "),
        EventData::RunFailed { error } => error.message.clone(),
        EventData::WaitStarted { signal, .. } => format!("for `{signal}`"),
        EventData::RunClaimed {
            worker, recovered, ..
        } => format!("{worker}{}", if *recovered { " (recovered)" } else { "" }),
        _ => String::new(),
    };
    let full = serde_json::to_string(&e.data).unwrap_or_default();
    html! {
        @if !short.is_empty() { span { (short) } }
        @if full.len() > 2 {
            details { summary { "data" } pre.json { (truncate(&full, 4000)) } }
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}… ({} more bytes)", &s[..i], s.len() - i),
        None => s.to_string(),
    }
}

/// What stopped a blocked run, and its ways on.
fn blocked_card(d: &RunDetail, admin: bool) -> Markup {
    let id = d.run.id;
    let e = d.run.error.as_ref();
    let m: Option<slate_engine::Mismatch> =
        e.and_then(|e| serde_json::from_value(e.details.clone()).ok());
    html! {
        section #blocked.card.blocked {
            h2 { "Blocked: the journal no longer fits the code" }
            @if let Some(m) = &m {
                dl.facts {
                    dt { "At" } dd { "sequence number " (m.seq) }
                    dt { "The journal has" } dd { code { (m.expected.name) } " (" (m.expected.kind) ")" }
                    dt { "The code asks for" } dd { code { (m.found.name) } " (" (m.found.kind) ")" }
                    dt { "Written by" } dd { (m.build.as_deref().unwrap_or("an unrecorded build")) }
                    @if let Some(b) = &m.replayed_by { dt { "Replayed by" } dd { (b) } }
                }
            } @else if let Some(e) = e {
                p.error { (e.message) }
            }
            p.muted { "Nothing of the changed code ran. Deploy code that fits (a patch, docs/upgrading.md) and retry, fork the run from the step before the change on the code deployed now (what came before is kept, not paid again), or cancel it." }
            @if admin {
                div.actions.admin {
                    button data-api=(format!("POST /api/admin/runs/{id}/retry"))
                        data-body=(json_attr(&json!({"reason": "retried on the deployed code from the dashboard"})))
                        data-confirm="Retry this run on the code deployed now? If the journal still does not fit, it blocks again."
                        data-then="reload" { "Retry on this build" }
                    @if let (Some(m), None) = (&m, d.run.parent_id) {
                        button.secondary #fork-blocked data-api=(format!("POST /api/admin/runs/{id}/fork"))
                            data-body=(json_attr(&json!({"from_step": m.expected.name, "reason": "forked from the dashboard"})))
                            data-confirm=(format!("Fork a new run from `{}`? It keeps what this run journaled before that step and runs the rest on the code deployed now.", m.expected.name))
                            data-then="go:/runs/{run_id}" { "Fork from " code { (m.expected.name) } }
                    }
                }
            }
        }
    }
}

fn admin_actions(d: &RunDetail) -> Markup {
    let id = d.run.id;
    let st = d.run.status;
    html! {
        div.actions.admin {
            @if !st.is_terminal() || st == RunStatus::Blocked {
                button.danger data-api=(format!("POST /api/admin/runs/{id}/cancel"))
                    data-body=(json_attr(&json!({"reason": "cancelled from the dashboard"})))
                    data-confirm="Cancel this run and every run under it? Steps in flight are stopped; what is done stays journaled, nothing is undone."
                    data-then="reload" { "Cancel run" }
            }
            @if st == RunStatus::Failed {
                button data-api=(format!("POST /api/admin/runs/{id}/retry"))
                    data-body=(json_attr(&json!({"reason": "re-driven from the dashboard"})))
                    data-confirm="Re-drive this run? The step that failed runs again with a fresh attempt budget; steps already done are not repeated."
                    data-then="reload" { "Re-drive" }
            }
        }
    }
}

fn steps(d: &RunDetail, admin: bool, from: usize) -> Markup {
    // The last output of each step, from the history.
    let mut outputs: HashMap<&str, &serde_json::Value> = HashMap::new();
    for e in &d.events {
        if let (Some(step), EventData::StepSucceeded { output, .. }) = (&e.step, &e.data) {
            outputs.insert(step.as_str(), output);
        }
    }
    let id = d.run.id;
    let failed_run = d.run.status == RunStatus::Failed;
    let top_stopped = d.run.parent_id.is_none() && d.run.status.is_terminal();
    html! {
        @if d.steps.is_empty() { p.muted { "No step yet." } }
        @else {
            @if d.steps.len() > ROWS_PER_PAGE {
                p.muted { "Steps " (from + 1) "–" ((from + ROWS_PER_PAGE).min(d.steps.len())) " of " (d.steps.len()) "; the waterfall's pager moves both." }
            }
            table.list.steps {
                thead { tr { th { "Step" } th { "Kind" } th { "State" } th { "Attempts" } th { "Time" } th { "Cost" } @if admin { th {} } } }
                tbody {
                    @for st in d.steps.iter().skip(from).take(ROWS_PER_PAGE) {
                        tr class=(format!("s-{}", st.status)) {
                            td {
                                code { (st.name) }
                                @if let Some(c) = st.child_id { " " a href=(format!("/runs/{c}")) { "open" } }
                                @if let Some(e) = &st.error { div.error { (e.message) } }
                                @if let Some(at) = st.retry_at { div.muted { "next attempt " (when(at)) } }
                                @if let Some(o) = outputs.get(st.name.as_str()) {
                                    details { summary { "output" } pre.json { (truncate(&serde_json::to_string_pretty(o).unwrap_or_default(), 4000)) } }
                                }
                            }
                            td { (st.kind) }
                            td { (badge(st.status)) }
                            td { (st.attempts) }
                            td { (duration_ms(st.duration_ms)) }
                            td {
                                (usd(st.cost.usd()))
                                @if st.cost.is_estimated() {
                                    " " span.muted title="the provider stated no cost; this is what the call was expected to cost" { "(estimated)" }
                                }
                            }
                            @if admin {
                                td.row-actions {
                                    @if failed_run && matches!(st.status, "failed" | "limit_exceeded") {
                                        button.small data-api=(format!("POST /api/admin/runs/{id}/retry"))
                                            data-body=(json_attr(&json!({"step": st.name, "reason": "retried from the dashboard"})))
                                            data-confirm=(format!("Retry `{}` with a fresh attempt budget? The run goes on from there.", st.name))
                                            data-then="reload" { "Retry" }
                                    }
                                    @if st.kind == "step" && top_stopped {
                                        button.small.secondary data-api=(format!("POST /api/admin/runs/{id}/fork"))
                                            data-body=(json_attr(&json!({"from_step": st.name, "reason": "forked from the dashboard"})))
                                            data-confirm=(format!("Fork a new run from `{}`? It keeps what was journaled before that step (not paid again) and runs the rest on the code deployed now.", st.name))
                                            data-then="go:/runs/{run_id}" { "Fork here" }
                                    }
                                    @if st.kind == "step" {
                                        button.small.secondary data-api=(format!("POST /api/admin/runs/{id}/reset"))
                                            data-body=(json_attr(&json!({"step": st.name, "reason": "reset from the dashboard"})))
                                            data-confirm=(format!("Reset the run to `{}`? That step and everything journaled after it run again, and may be paid for again.", st.name))
                                            data-then="reload" { "Reset here" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A bar of the waterfall.
struct Bar {
    row: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    class: &'static str,
    label: String,
}

/// Bars from the history: each attempt its own bar (succeeded, failed, or interrupted when the
/// worker died inside it), retry back-offs, timers, signal waits and children as waiting.
fn bars(d: &RunDetail, children: &HashMap<RunId, DateTime<Utc>>) -> (Vec<String>, Vec<Bar>) {
    let end = d.run.finished_at.unwrap_or_else(Utc::now);
    let mut rows: Vec<String> = vec![];
    let mut row_of: HashMap<String, usize> = HashMap::new();
    let mut open: HashMap<usize, (DateTime<Utc>, u32)> = HashMap::new();
    let mut waiting: HashMap<usize, (DateTime<Utc>, &'static str, String)> = HashMap::new();
    let mut out = vec![];
    for e in &d.events {
        let Some(step) = &e.step else { continue };
        let row = *row_of.entry(step.clone()).or_insert_with(|| {
            rows.push(step.clone());
            rows.len() - 1
        });
        // Any event of a step ends what it waited for.
        if let Some((from, class, label)) = waiting.remove(&row) {
            out.push(Bar {
                row,
                from,
                to: e.at,
                class,
                label,
            });
        }
        match &e.data {
            EventData::StepStarted { attempt, .. } => {
                if let Some((from, a)) = open.insert(row, (e.at, *attempt)) {
                    out.push(Bar {
                        row,
                        from,
                        to: e.at,
                        class: "interrupted",
                        label: format!("attempt {a}: interrupted"),
                    });
                }
            }
            EventData::StepSucceeded {
                attempt,
                duration_ms: ms,
                ..
            }
            | EventData::StepFailed {
                attempt,
                duration_ms: ms,
                ..
            } => {
                let ok = matches!(e.data, EventData::StepSucceeded { .. });
                let from = open
                    .remove(&row)
                    .map(|(f, _)| f)
                    .unwrap_or_else(|| e.at - chrono::Duration::milliseconds(*ms as i64));
                out.push(Bar {
                    row,
                    from,
                    to: e.at,
                    class: if ok { "ok" } else { "failed" },
                    label: format!(
                        "attempt {attempt}: {} in {}",
                        if ok { "succeeded" } else { "failed" },
                        duration_ms(*ms)
                    ),
                });
                if let EventData::StepFailed {
                    retry_at: Some(_), ..
                } = &e.data
                {
                    waiting.insert(row, (e.at, "backoff", "waiting to retry".into()));
                }
            }
            EventData::TimerStarted { until } => {
                waiting.insert(row, (e.at, "waiting", format!("timer until {until}")));
            }
            EventData::WaitStarted { signal, .. } => {
                waiting.insert(row, (e.at, "waiting", format!("waiting for `{signal}`")));
            }
            EventData::ChildStarted {
                workflow, child_id, ..
            } => {
                // A child is drawn until it finished, not until its parent's next event.
                match children.get(child_id) {
                    Some(done) => out.push(Bar {
                        row,
                        from: e.at,
                        to: *done,
                        class: "child",
                        label: format!("child {workflow}"),
                    }),
                    None => {
                        waiting.insert(row, (e.at, "child", format!("child {workflow}")));
                    }
                }
            }
            _ => {}
        }
    }
    for (row, (from, a)) in open {
        out.push(Bar {
            row,
            from,
            to: end,
            class: if d.run.status.is_terminal() {
                "interrupted"
            } else {
                "running"
            },
            label: format!("attempt {a}"),
        });
    }
    for (row, (from, class, label)) in waiting {
        out.push(Bar {
            row,
            from,
            to: end,
            class,
            label,
        });
    }
    (rows, out)
}

fn waterfall(d: &RunDetail, children: &[RunRecord], from: usize) -> Markup {
    let finished: HashMap<RunId, DateTime<Utc>> = children
        .iter()
        .filter_map(|c| Some((c.id, c.finished_at?)))
        .collect();
    let (rows, bars) = bars(d, &finished);
    if rows.is_empty() {
        return html! { p.muted { "No step yet." } };
    }
    let start = d.run.created_at;
    let end = d.run.finished_at.unwrap_or_else(Utc::now).max(start);
    let span = (end - start).num_milliseconds().max(1) as f64;
    let pct =
        |t: DateTime<Utc>| ((t - start).num_milliseconds() as f64 / span * 100.0).clamp(0.0, 100.0);
    let shown = from..(from + ROWS_PER_PAGE).min(rows.len());
    html! {
        p.muted { (rows.len()) " steps over " (duration_ms(span as u64)) ". Green ran and succeeded, red failed, grey was cut short by a worker's death, striped waited." }
        div.waterfall {
            @for i in shown.clone() {
                div.wf-row {
                    span.wf-name title=(rows[i]) { (rows[i]) }
                    span.wf-track {
                        @for b in bars.iter().filter(|b| b.row == i) {
                            @let left = pct(b.from);
                            @let width = (pct(b.to) - left).max(0.3);
                            span class=(format!("wf-bar {}", b.class)) style=(format!("left:{left:.3}%;width:{width:.3}%")) title=(b.label) {}
                        }
                    }
                }
            }
        }
        div.pager {
            @if from > 0 { a.button.secondary href=(format!("?from={}", from.saturating_sub(ROWS_PER_PAGE))) { "Earlier steps" } }
            @if shown.end < rows.len() { " " a.button.secondary href=(format!("?from={}", shown.end)) { "Later steps" } }
        }
    }
}
