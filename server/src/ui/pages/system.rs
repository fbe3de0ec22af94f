//! The providers' health: `slate doctor` as a page. The checks that need no network are shown
//! at once; the online ones (keys, models served, prices, media round trips) when asked, since
//! they call the providers.

use axum::Extension;
use axum::extract::{Query, State};
use maud::html;
use serde::Deserialize;
use slate_activities::doctor::{self, Status};

use crate::state::AppState;
use crate::ui::UiResult;
use crate::ui::session::Viewer;
use crate::ui::view::{self, Nav};

#[derive(Deserialize)]
pub(crate) struct SystemQuery {
    online: Option<bool>,
}

/// `GET /system`.
pub(crate) async fn show(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Query(q): Query<SystemQuery>,
) -> UiResult {
    let (settings, blobs) = (&s.film.studio.settings, &s.film.studio.blobs);
    let online = q.online.unwrap_or(false) && v.is_admin();
    let report = if online {
        doctor::run(settings, blobs).await
    } else {
        doctor::Report::of(doctor::offline(settings, blobs, &doctor::today()))
    };
    let body = html! {
        h1 { "Providers" }
        p.muted { "Which provider serves each activity, and whether the configuration can work: the checks " code { "slate doctor" } " makes. Each finding names the variable to set." }
        table.providers {
            thead { tr { th { "activity" } th { "served by" } } }
            tbody {
                @for (what, who) in settings.describe() {
                    tr { td { (what) } td { (who) } }
                }
            }
        }
        h2 { @if online { "All checks" } @else { "Checks without network" } }
        p class=(if report.ok { "ok" } else { "banner error" }) #doctor-verdict {
            @if report.ok { "The configured providers should work." }
            @else { "Something below would fail: set what each failure names." }
        }
        table.doctor {
            thead { tr { th { "" } th { "check" } th { "finding" } th { "variable" } } }
            tbody {
                @for f in &report.findings {
                    tr class=(match f.status { Status::Ok => "ok", Status::Warn => "warn", Status::Fail => "fail" }) {
                        td { (match f.status { Status::Ok => "ok", Status::Warn => "warn", Status::Fail => "FAIL" }) }
                        td { (f.check) }
                        td { (f.message) }
                        td { @if let Some(var) = &f.variable { code { (var) } } }
                    }
                }
            }
        }
        @if v.is_admin() && !online {
            p { a.button href="/system?online=true" { "Run the online checks" } " " span.muted { "(asks each provider: keys, models, prices, media round trips)" } }
        }
    };
    view::page(&s, &v, "Providers", Nav::System, "", body).await
}
