//! The film: a timeline of the scenes to scale with their transitions (a click plays that
//! scene's clip), and the final film's player.

use axum::Extension;
use axum::extract::{Path, State};
use maud::html;

use super::project_tabs;
use crate::extract::slug;
use crate::state::AppState;
use crate::ui::UiResult;
use crate::ui::session::Viewer;
use crate::ui::view::{self, Nav, badge, media};

/// `GET /projects/{slug}/film`.
pub(crate) async fn show(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(raw): Path<String>,
) -> UiResult {
    let slug = slug(&raw)?;
    let project = s.film.repo.project(&slug).await?;
    let scenes = s.film.repo.scenes(&slug).await?;
    let total: f64 = scenes
        .iter()
        .map(|sc| sc.actual_duration.unwrap_or(sc.expected_duration).max(0.1))
        .sum::<f64>()
        .max(0.1);
    let film = project.final_video.as_deref().map(media);
    let body = html! {
        h1 { (project.title) ": the film" }
        (project_tabs(slug.as_str(), "Film"))
        section #film.card data-live {
            @match &film {
                Some(src) => {
                    video #player controls preload="metadata" src=(src) data-film=(src) {}
                    p { a href=(src) download=(format!("{}.mp4", slug)) { "Download the film" } " · "
                        button.link type="button" data-play=(src) { "Play the whole film" } }
                }
                None => {
                    video #player controls preload="none" {}
                    p.muted { "The film is stitched once every scene has its clip. Click a scene to play its clip." }
                }
            }
        }
        section #timeline.card data-live {
            h2 { "Timeline" }
            p.muted { (scenes.len()) " scenes, " (format!("{total:.1}")) " s, to scale." }
            div.timeline role="list" {
                @for sc in &scenes {
                    @let d = sc.actual_duration.unwrap_or(sc.expected_duration).max(0.1);
                    @let clip = sc.generated_video_url.as_deref().map(media);
                    button.segment type="button" role="listitem"
                        style=(format!("flex-grow:{d:.3}"))
                        data-play=[clip.clone()]
                        disabled[clip.is_none()]
                        title=(format!("Scene {}: {:.1} s{}{}", sc.scene_number, d,
                            sc.transition_in.as_deref().map(|t| format!(", in: {t}")).unwrap_or_default(),
                            sc.transition_out.as_deref().map(|t| format!(", out: {t}")).unwrap_or_default())) {
                        span.n { (sc.scene_number) }
                        span.d { (format!("{d:.1}s")) }
                        @if let Some(t) = &sc.transition_out { span.tr { (t) } }
                    }
                }
            }
            table.list {
                thead { tr { th { "Scene" } th { "Length" } th { "In" } th { "Out" } th { "State" } } }
                tbody {
                    @for sc in &scenes {
                        tr {
                            td { a href=(format!("/scenes/{}", sc.id)) { "Scene " (sc.scene_number) } }
                            td { (format!("{:.1} s", sc.actual_duration.unwrap_or(sc.expected_duration))) }
                            td { (sc.transition_in.clone().unwrap_or_default()) }
                            td { (sc.transition_out.clone().unwrap_or_default()) }
                            td { (badge(sc.status.as_str())) }
                        }
                    }
                }
            }
        }
    };
    view::page(
        &s,
        &v,
        &format!("{}: film", project.title),
        Nav::Projects,
        &format!("project:{slug}"),
        body,
    )
    .await
}
