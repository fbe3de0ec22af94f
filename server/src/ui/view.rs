//! The frame every page shares (navigation, the global error banner, the live stream hook) and
//! the small pieces pages are made of.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use slate_workflows::model::GlobalError;

use super::UiResult;
use super::session::Viewer;
use crate::state::AppState;

/// Which section of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Projects,
    Runs,
    Templates,
    System,
}

/// A page in the frame. `watch` says what the live stream should refresh it for:
/// `project:<slug>`, `run:<id>`, or `*` for anything.
pub(crate) async fn page(
    s: &AppState,
    viewer: &Viewer,
    title: &str,
    nav: Nav,
    watch: &str,
    body: Markup,
) -> UiResult {
    let errors = s.film.repo.errors(false).await?;
    Ok(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Slate" }
                link rel="stylesheet" href="/ui/assets/app.css";
                @if let Some(t) = &viewer.csrf { meta name="csrf-token" content=(t); }
                script src="/ui/assets/app.js" defer {}
            }
            body data-watch=(watch) data-gen=(s.live.generation()) {
                header.top {
                    a.brand href="/" { "Slate" }
                    nav {
                        a href="/" class=[(nav == Nav::Projects).then_some("active")] { "Projects" }
                        a href="/runs" class=[(nav == Nav::Runs).then_some("active")] { "Runs" }
                        a href="/templates" class=[(nav == Nav::Templates).then_some("active")] { "Templates" }
                        a href="/system" class=[(nav == Nav::System).then_some("active")] { "Providers" }
                    }
                    span.who title="What this session may do" {
                        @if viewer.is_admin() { "admin" } @else { "viewer" }
                    }
                    @if viewer.signed_in {
                        form.inline method="post" action="/logout" { button.link type="submit" { "Sign out" } }
                    }
                }
                (error_banner(&errors))
                div #toast role="status" aria-live="polite" {}
                main #main { (body) }
            }
        }
    })
}

/// The global errors, newest first, each dismissable, on every page (the spec: "at the top of
/// all pages" until a person dismisses it).
fn error_banner(errors: &[GlobalError]) -> Markup {
    let mut newest: Vec<&GlobalError> = errors.iter().collect();
    newest.sort_by_key(|e| std::cmp::Reverse(e.created_at));
    let more = newest.len().saturating_sub(20);
    html! {
        section #errors data-live aria-label="Errors" {
            @for e in newest.iter().take(20) {
                div.banner role="alert" data-error=(e.id) {
                    div {
                        strong { (e.phase) }
                        @if let Some(p) = &e.project { " · " a href=(format!("/projects/{p}")) { (p) } }
                        " · " (when(e.created_at))
                        p { (e.message) }
                        @if let Some(run) = e.details.get("run_id").and_then(|v| v.as_str()) {
                            a href=(format!("/runs/{run}")) { "Open the run" }
                        }
                    }
                    button.secondary data-api=(format!("POST /api/errors/{}/dismiss", e.id)) data-then="reload" { "Dismiss" }
                }
            }
            @if more > 0 { p.muted { (more) " older errors are not shown; dismiss these to see them." } }
        }
    }
}

/// A page outside the frame (sign-in, errors).
pub(crate) fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Slate" }
                link rel="stylesheet" href="/ui/assets/app.css";
            }
            body { (body) }
        }
    }
}

/// A time, readable, in UTC (the title carries the exact instant).
pub(crate) fn when(t: DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) title=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M:%S")) } }
}

/// A duration in milliseconds, as a person says it.
pub(crate) fn duration_ms(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m {:02}s", ms / 60_000, (ms / 1000) % 60),
        _ => format!("{}h {:02}m", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

/// A state as a coloured badge.
pub(crate) fn badge(status: &str) -> Markup {
    html! { span class=(format!("badge s-{}", status.replace([' ', '_'], "-"))) { (status.replace('_', " ")) } }
}

/// Dollars.
pub(crate) fn usd(v: f64) -> String {
    if v == 0.0 {
        "$0".into()
    } else if v < 0.01 {
        format!("${v:.4}")
    } else {
        format!("${v:.2}")
    }
}

/// Where the browser fetches a blob (the media route; the session cookie authorizes it).
pub(crate) fn media(key: &str) -> String {
    format!("/media/{key}")
}

/// JSON for a `data-body` attribute.
pub(crate) fn json_attr(v: &serde_json::Value) -> String {
    v.to_string()
}

/// A pretty JSON block.
pub(crate) fn json_block(v: &serde_json::Value) -> Markup {
    html! { pre.json { (serde_json::to_string_pretty(v).unwrap_or_default()) } }
}

/// `1 document`, `3 documents`.
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
