//! The film: its player (with the dialogue as captions), whether it is out of date and why
//! (with a re-stitch and the automatic re-stitch's switch), the scenes whose starting frame
//! changed, every version with its takes and downloads, the exports for an editor, and a
//! timeline of the scenes to scale (a click plays that scene's clip); the film's sound (its
//! music cues on a timeline, each stem to play solo or download, the settings and a re-mix).

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
    let fv = crate::routes::film::film_view(&s, &slug).await?;
    let captions = format!("/api/projects/{slug}/export?format=vtt");
    let body = html! {
        h1 { (project.title) ": the film" }
        (project_tabs(slug.as_str(), "Film"))
        (state_card(slug.as_str(), &fv))
        section #film.card data-live {
            @match &film {
                Some(src) => {
                    video #player controls preload="metadata" src=(src) data-film=(src) {
                        track kind="captions" srclang="en" label="Dialogue" default src=(captions);
                    }
                    p { a href=(src) download=(format!("{}.mp4", slug)) { "Download the film" } " · "
                        button.link type="button" data-play=(src) { "Play the whole film" } }
                }
                None => {
                    video #player controls preload="none" {}
                    p.muted { "The film is stitched once every scene has its clip. Click a scene to play its clip." }
                }
            }
        }
        (versions_card(slug.as_str(), &fv, project.final_video.is_some()))
        (sound_card(slug.as_str(), &project.sound, fv.versions.first()))
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

/// Out of date (which scenes changed, a re-stitch), the automatic re-stitch's switch, and the
/// scenes whose starting frame changed under them (offered to be made again).
fn state_card(slug: &str, fv: &crate::routes::film::FilmView) -> maud::Markup {
    let st = &fv.state;
    html! {
        section #film-state.card data-live {
            @if fv.stitching.is_some() {
                p.banner.info role="status" { "A new version of the film is being stitched from the scenes' current takes." }
            } @else if st.out_of_date {
                div.banner.stale role="alert" {
                    strong { "The film is out of date: " }
                    (st.changed.iter().map(|c| format!("scene {} (take {} in the film, take {} now)", c.scene_number,
                        c.film_take.map_or("-".into(), |t| t.to_string()),
                        c.current_take.map_or("-".into(), |t| t.to_string()))).collect::<Vec<_>>().join(", "))
                    " changed."
                    @if !st.missing.is_empty() {
                        " Scenes " (st.missing.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")) " have no finished take yet."
                    }
                }
            }
            div.actions {
                button #restitch data-api=(format!("POST /api/projects/{slug}/film")) data-then="reload"
                    disabled[fv.stitching.is_some() || fv.versions.is_empty() && !st.missing.is_empty()]
                    title="A new version from the scenes' current takes: nothing is generated, only the changed pieces are cut again" {
                    "Re-stitch the film" }
                label.inline {
                    @let on = fv.auto_restitch;
                    button.link #auto-restitch type="button" data-api=(format!("PUT /api/projects/{slug}/film/settings"))
                        data-body=(format!("{{\"auto_restitch\":{}}}", !on)) data-then="reload" {
                        (if on { "Automatic re-stitch: on (turn off)" } else { "Automatic re-stitch: off (turn on)" })
                    }
                }
            }
            @for c in &st.continuity_changed {
                p.banner.continuity data-scene=(c.scene_id) {
                    "Continuity changed: scene " (c.scene_number) " started from scene " (c.previous_scene_number)
                    "'s earlier last frame. "
                    button.secondary data-api=(format!("POST /api/scenes/{}/generate", c.scene_id))
                        data-confirm=(format!("Generate scene {} again from scene {}'s new last frame? A new take is made and paid for.", c.scene_number, c.previous_scene_number))
                        data-then="reload" { "Generate scene " (c.scene_number) " again" }
                    " "
                    button.secondary data-api=(format!("POST /api/scenes/{}/generate?chain=true", c.scene_id))
                        data-confirm=(format!("Generate scene {} and the scenes after it that follow from it again, in order? Each is a new take, made and paid for.", c.scene_number))
                        data-then="reload" { "…and the rest of its chain" }
                }
            }
        }
    }
}

/// Every version, newest first: its length, the take of each scene, its download; and the
/// exports for an editor.
fn versions_card(slug: &str, fv: &crate::routes::film::FilmView, legacy: bool) -> maud::Markup {
    html! {
        section #versions.card data-live {
            h2 { "Versions" }
            @if fv.versions.is_empty() {
                @if legacy {
                    p.muted { "This film was stitched before versions were kept: Re-stitch makes it version 1, and from then on the film follows its scenes." }
                } @else {
                    p.muted { "None yet: the first is made when every scene has its clip." }
                }
            }
            table.list {
                tbody {
                    @for v in &fv.versions {
                        @let src = media(&v.video);
                        tr.version data-version=(v.version) {
                            td { "Version " (v.version) }
                            td { (format!("{:.1} s", v.duration)) }
                            td.takes { (v.scenes.iter().map(|s| format!("{}:{}", s.scene_number, s.take.map_or("-".into(), |t| t.to_string()))).collect::<Vec<_>>().join(" ")) }
                            td { button.link type="button" data-play=(src) { "Play" } " · "
                                 a href=(src) download=(format!("{slug}-v{}.mp4", v.version)) { "Download" } }
                        }
                    }
                }
            }
            @if let Some(v) = fv.versions.first() {
                h2 { "For an editor" }
                p.muted { "Version " (v.version) ": a timeline whose clips are relative paths (media/…), or all of it with the media in one OpenTimelineIO bundle." }
                p.exports {
                    @for (f, label) in [("otio", "OpenTimelineIO"), ("fcpxml", "FCP 7 XML (Premiere, Resolve)"), ("edl", "EDL (CMX 3600)"), ("otioz", "Bundle with media (.otioz)"), ("srt", "Subtitles (SRT)"), ("vtt", "Subtitles (WebVTT)")] {
                        a.export data-format=(f) href=(format!("/api/projects/{slug}/export?format={f}&version={}", v.version)) download { (label) } " "
                    }
                }
            }
        }
    }
}

/// The newest version's sound: its music cues on a timeline, its loudness, each stem to play
/// solo and download; the project's sound settings and a re-mix.
fn sound_card(
    slug: &str,
    settings: &slate_workflows::model::SoundSettings,
    newest: Option<&slate_workflows::model::FilmVersion>,
) -> maud::Markup {
    let sound = newest.and_then(|v| v.sound.as_ref());
    let length = newest.map_or(1.0, |v| v.duration.max(0.1));
    html! {
        section #sound.card data-live {
            h2 { "Sound" }
            @match sound {
                Some(snd) => {
                    p.muted {
                        "Version " (newest.map_or(0, |v| v.version)) ": voices on top, ambience under them, music under both (dipping under every line), effects on their actions"
                        @if let Some(l) = snd.loudness {
                            "; mixed to " (format!("{:.1} LUFS integrated, true peak {:.1} dBTP", l.integrated_lufs, l.true_peak_dbtp))
                        }
                        "."
                    }
                    @if snd.cues.is_empty() {
                        p.muted { "No music in this version." }
                    } @else {
                        h3 { "Music cues" }
                        p.muted.music-by {
                            @match &snd.music_model {
                                Some(m) => { "Made by " code { (m) } " (instrumental), placed and ducked as offline music." }
                                None => { "Synthesized offline." }
                            }
                        }
                        div.timeline.cues role="list" {
                            @for c in &snd.cues {
                                @let d = (c.end.min(length) - c.start).max(0.1);
                                span.segment.cue role="listitem" style=(format!("flex-grow:{d:.3}"))
                                    title=(format!("{:.1}-{:.1} s: {}, {}, {:.0} bpm", c.start, c.end, c.mood, c.key, c.tempo_bpm)) {
                                    span.n { (c.key) }
                                    span.d { (format!("{:.0} bpm", c.tempo_bpm)) }
                                    span.tr { (c.mood) }
                                }
                            }
                        }
                    }
                    h3 { "Stems" }
                    table.list.stems {
                        tbody {
                            @for (name, key) in &snd.stems {
                                @let src = media(key);
                                tr.stem data-stem=(name) {
                                    td { (name) }
                                    td { audio controls preload="none" src=(src) {} }
                                    td { a href=(src) download=(format!("{slug}-v{}-{name}.flac", newest.map_or(0, |v| v.version))) { "Download" } }
                                }
                            }
                        }
                    }
                }
                None => @if newest.is_some() {
                    p.muted { "This version's sound is its voices alone (it was stitched before the sound was mixed): Re-mix to put music, ambience and effects under them." }
                } @else {
                    p.muted { "The sound is mixed when the film is stitched." }
                }
            }
            form #sound-settings data-api=(format!("PUT /api/projects/{slug}/film/sound")) data-then="reload" {
                fieldset {
                    legend { "Settings (for the next mix)" }
                    label.check { input type="checkbox" name="music" checked[settings.music]; " Music" }
                    label { "Music level, dB " input type="number" step="0.5" min="-60" max="12" name="music_db" value=(settings.music_db); }
                    label.check { input type="checkbox" name="ambience" checked[settings.ambience]; " Ambience" }
                    label { "Ambience level, dB " input type="number" step="0.5" min="-60" max="12" name="ambience_db" value=(settings.ambience_db); }
                    label.check { input type="checkbox" name="effects" checked[settings.effects]; " Effects" }
                    label { "Effects level, dB " input type="number" step="0.5" min="-60" max="12" name="effects_db" value=(settings.effects_db); }
                    label { "Loudness target, LUFS integrated " input type="number" step="0.5" min="-36" max="-5" name="integrated_lufs" data-in="loudness" value=(settings.loudness.integrated_lufs); }
                    label { "True peak ceiling, dBTP " input type="number" step="0.5" min="-9" max="0" name="true_peak_dbtp" data-in="loudness" value=(settings.loudness.true_peak_dbtp); }
                    p.muted { "Streaming platforms play at about -14 LUFS with peaks under -1 dBTP; broadcast (EBU R128) at -23 LUFS." }
                    p.muted { "A scene's own switches are its music off and effects off fields, on the scene's page." }
                    button type="submit" { "Save" }
                }
            }
            div.actions {
                button #remix data-api=(format!("POST /api/projects/{slug}/film/remix")) data-then="reload"
                    disabled[newest.is_none()]
                    title="A new version with the sound mixed again: the same picture and voices, nothing generated" {
                    "Re-mix the sound" }
            }
        }
    }
}
