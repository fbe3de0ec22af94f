//! Hand-off to an editor (issue 26): a film version as an OpenTimelineIO timeline, an FCP 7 XML
//! sequence (Premiere, Resolve), a CMX 3600 EDL, and its dialogue as SRT and WebVTT subtitles.
//!
//! Every format is built from one [`Cut`] list: each clip at its record in and out on the film's
//! 24 fps clock, a crossfade cut at its middle (the clips overlap by it in the film; an editor
//! sees a cut there with a dissolve of the same length in the OTIO and XML). Clips are named by
//! relative paths (`media/scene-003-take-2.mp4`), so the exports and a folder (or zip) of the
//! media open anywhere. The subtitles are written with `subtp` and checked by its reader in the
//! tests; the timelines are checked by OpenTimelineIO's own reader and adapters.

use serde_json::{Value, json};
use slate_activities::local::media::{Placement, layout};
use slate_activities::model::ClipSpec;

use crate::model::{FilmVersion, Scene, SceneDialogue};

/// The film's frame rate.
pub const FPS: u32 = 24;

/// A clip as an editor's timeline places it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cut {
    /// Its name (`scene-003-take-2`).
    pub name: String,
    /// Its file, relative to the export (`media/scene-003-take-2.mp4`).
    pub file: String,
    /// The blob the file is.
    pub blob: String,
    /// Its number in the screenplay.
    pub scene_number: i32,
    /// First frame of the film it is seen on.
    pub record_in: u64,
    /// The frame after its last.
    pub record_out: u64,
    /// Its first frame seen, in its own media.
    pub source_in: u64,
    /// Frames of media it has.
    pub media_frames: u64,
    /// The dissolve into the next clip, in frames (0: a cut).
    pub dissolve_out: u64,
}

/// One line of dialogue on the film's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    /// Seconds of film it starts at.
    pub start: f64,
    /// Seconds of film it ends at.
    pub end: f64,
    /// What is said.
    pub text: String,
}

/// What every format is written from.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    /// The sequence's name.
    pub title: String,
    /// The clips in film order.
    pub cuts: Vec<Cut>,
    /// The film's length, frames.
    pub frames: u64,
    /// The dialogue.
    pub cues: Vec<Cue>,
}

fn frames(seconds: f64) -> u64 {
    (seconds * f64::from(FPS)).round().max(0.0) as u64
}

/// The edit of film `version` of a project titled `title`, with each scene's dialogue from
/// the take the version used.
pub fn edit_of(title: &str, version: &FilmVersion, scenes: &[Scene]) -> Edit {
    let clips: Vec<ClipSpec> = version
        .scenes
        .iter()
        .filter_map(|s| {
            Some(ClipSpec {
                video: slate_activities::BlobRef::new(&s.video).ok()?,
                duration: s.duration,
                transition_in: s.transition_in.clone(),
                transition_out: s.transition_out.clone(),
            })
        })
        .collect();
    let places: Vec<Placement> = layout(&clips);
    let end = frames(version.duration);
    let mut cuts = vec![];
    let mut cues = vec![];
    for (i, (s, p)) in version.scenes.iter().zip(&places).enumerate() {
        let name = match s.take {
            Some(t) => format!("scene-{:03}-take-{t}", s.scene_number),
            None => format!("scene-{:03}", s.scene_number),
        };
        // A crossfade is cut at its middle; the clip before shows until there.
        let half_in = frames(p.overlap_in) / 2;
        let record_in = if i == 0 { 0 } else { frames(p.start) + half_in };
        let record_out = match places.get(i + 1) {
            Some(n) => frames(n.start) + frames(n.overlap_in) / 2,
            None => end,
        };
        cuts.push(Cut {
            file: format!("media/{name}.mp4"),
            name,
            blob: s.video.clone(),
            scene_number: s.scene_number,
            record_in,
            record_out: record_out.max(record_in),
            source_in: if i == 0 { 0 } else { half_in },
            media_frames: frames(s.duration),
            dissolve_out: frames(p.overlap_out),
        });
        let dialogue = dialogue_of(scenes, &s.scene_id, s.take);
        let n = dialogue.len();
        for (j, d) in dialogue.iter().enumerate() {
            let at = d
                .start
                .unwrap_or_else(|| crate::scene::line_start(j, n, s.duration));
            let spoken = d
                .spoken
                .unwrap_or(s.duration / n.max(1) as f64 - 0.3)
                .max(0.1);
            let stop = (at + spoken).min(s.duration);
            if stop > at {
                cues.push(Cue {
                    start: p.start + at,
                    end: p.start + stop,
                    text: d.line.trim().to_string(),
                });
            }
        }
    }
    Edit {
        title: format!("{title} (version {})", version.version),
        cuts,
        frames: end,
        cues,
    }
}

/// The dialogue of take `take` of scene `id` (the scene's own, for a scene made before takes).
fn dialogue_of(scenes: &[Scene], id: &str, take: Option<u32>) -> Vec<SceneDialogue> {
    let Some(scene) = scenes.iter().find(|s| s.id == id) else {
        return vec![];
    };
    take.and_then(|n| scene.takes.iter().find(|t| t.take == n))
        .map(|t| t.dialogue.clone())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| scene.dialogue.clone())
}

fn rational(frames: u64) -> Value {
    json!({"OTIO_SCHEMA": "RationalTime.1", "rate": f64::from(FPS), "value": frames as f64})
}

fn range(start: u64, duration: u64) -> Value {
    json!({"OTIO_SCHEMA": "TimeRange.1", "start_time": rational(start), "duration": rational(duration)})
}

/// The edit as an OpenTimelineIO timeline (`.otio`, JSON).
pub fn otio(e: &Edit) -> String {
    let mut items = vec![];
    for (i, c) in e.cuts.iter().enumerate() {
        items.push(json!({
            "OTIO_SCHEMA": "Clip.2",
            "name": c.name,
            "metadata": {"slate": {"scene_number": c.scene_number, "blob": c.blob}},
            "source_range": range(c.source_in, c.record_out - c.record_in),
            "effects": [],
            "markers": [],
            "enabled": true,
            "media_references": {"DEFAULT_MEDIA": {
                "OTIO_SCHEMA": "ExternalReference.1",
                "name": c.name,
                "metadata": {},
                "target_url": c.file,
                "available_range": range(0, c.media_frames),
            }},
            "active_media_reference_key": "DEFAULT_MEDIA",
        }));
        if c.dissolve_out > 0 && i + 1 < e.cuts.len() {
            let half = c.dissolve_out / 2;
            items.push(json!({
                "OTIO_SCHEMA": "Transition.1",
                "name": "dissolve",
                "metadata": {},
                "transition_type": "SMPTE_Dissolve",
                "in_offset": rational(half),
                "out_offset": rational(c.dissolve_out - half),
            }));
        }
    }
    let doc = json!({
        "OTIO_SCHEMA": "Timeline.1",
        "name": e.title,
        "metadata": {},
        "global_start_time": null,
        "tracks": {
            "OTIO_SCHEMA": "Stack.1",
            "name": "tracks",
            "metadata": {},
            "effects": [],
            "markers": [],
            "enabled": true,
            "source_range": null,
            "children": [{
                "OTIO_SCHEMA": "Track.1",
                "name": "V1",
                "kind": "Video",
                "metadata": {},
                "effects": [],
                "markers": [],
                "enabled": true,
                "source_range": null,
                "children": items,
            }],
        },
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// A SMPTE timecode (non-drop, 24 fps) of frame `f`.
pub fn timecode(f: u64) -> String {
    let fps = u64::from(FPS);
    let (h, m, s, fr) = (f / (3600 * fps), f / (60 * fps) % 60, f / fps % 60, f % fps);
    format!("{h:02}:{m:02}:{s:02}:{fr:02}")
}

/// The edit as a CMX 3600 EDL: one cut event per clip, its file named in a comment.
pub fn edl(e: &Edit) -> String {
    // Titles are one line of printable ASCII in the format.
    let title: String = e
        .title
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut out = format!("TITLE: {title}\nFCM: NON-DROP FRAME\n\n");
    for (i, c) in e.cuts.iter().enumerate() {
        let len = c.record_out - c.record_in;
        out.push_str(&format!(
            "{:03}  AX       V     C        {} {} {} {}\n* FROM CLIP NAME: {}\n* FROM CLIP: {}\n\n",
            i + 1,
            timecode(c.source_in),
            timecode(c.source_in + len),
            timecode(c.record_in),
            timecode(c.record_out),
            c.name,
            c.file,
        ));
    }
    out
}

/// The edit as an FCP 7 XML sequence (`xmeml` version 5), read by Premiere and Resolve.
pub fn fcp_xml(e: &Edit) -> String {
    use quick_xml::Writer;
    use quick_xml::events::{BytesDecl, BytesText, Event};
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = w.write_event(Event::DocType(BytesText::from_escaped("xmeml")));
    let _ = w
        .create_element("xmeml")
        .with_attribute(("version", "5"))
        .write_inner_content(|w| {
            w.create_element("sequence")
                .with_attribute(("id", "sequence-1"))
                .write_inner_content(|w| {
                    xml_text(w, "name", &e.title);
                    xml_text(w, "duration", &e.frames.to_string());
                    xml_rate(w);
                    w.create_element("media").write_inner_content(|w| {
                        w.create_element("video").write_inner_content(|w| {
                            w.create_element("track").write_inner_content(|w| {
                                for (i, c) in e.cuts.iter().enumerate() {
                                    clipitem(w, i, c);
                                }
                                Ok(())
                            })?;
                            Ok(())
                        })?;
                        Ok(())
                    })?;
                    Ok(())
                })?;
            Ok(())
        });
    String::from_utf8(w.into_inner()).unwrap_or_default()
}

type XmlWriter = quick_xml::Writer<Vec<u8>>;

/// `<name>value</name>`.
fn xml_text(w: &mut XmlWriter, name: &str, value: &str) {
    let _ = w
        .create_element(name)
        .write_text_content(quick_xml::events::BytesText::new(value));
}

/// The sequence's (and every clip's) frame rate.
fn xml_rate(w: &mut XmlWriter) {
    let _ = w.create_element("rate").write_inner_content(|w| {
        xml_text(w, "timebase", &FPS.to_string());
        xml_text(w, "ntsc", "FALSE");
        Ok(())
    });
}

fn clipitem(w: &mut XmlWriter, i: usize, c: &Cut) {
    let (text, rate) = (xml_text, xml_rate);
    let len = c.record_out - c.record_in;
    let _ = w
        .create_element("clipitem")
        .with_attribute(("id", format!("clipitem-{}", i + 1).as_str()))
        .write_inner_content(|w| {
            text(w, "name", &c.name);
            text(w, "duration", &c.media_frames.to_string());
            rate(w);
            text(w, "start", &c.record_in.to_string());
            text(w, "end", &c.record_out.to_string());
            text(w, "in", &c.source_in.to_string());
            text(w, "out", &(c.source_in + len).to_string());
            w.create_element("file")
                .with_attribute(("id", format!("file-{}", i + 1).as_str()))
                .write_inner_content(|w| {
                    text(w, "name", &format!("{}.mp4", c.name));
                    text(w, "pathurl", &c.file);
                    rate(w);
                    text(w, "duration", &c.media_frames.to_string());
                    w.create_element("media").write_inner_content(|w| {
                        w.create_element("video").write_empty()?;
                        w.create_element("audio").write_empty()?;
                        Ok(())
                    })?;
                    Ok(())
                })?;
            Ok(())
        });
}

/// The dialogue as SubRip subtitles.
pub fn srt(e: &Edit) -> String {
    use subtp::srt::{SrtSubtitle, SubRip};
    SubRip {
        subtitles: e
            .cues
            .iter()
            .enumerate()
            .map(|(i, c)| SrtSubtitle {
                sequence: i as u32 + 1,
                start: std::time::Duration::from_secs_f64(c.start).into(),
                end: std::time::Duration::from_secs_f64(c.end).into(),
                text: vec![c.text.clone()],
                line_position: None,
            })
            .collect(),
    }
    .render()
}

/// The dialogue as WebVTT subtitles (what the dashboard's player shows as captions).
pub fn vtt(e: &Edit) -> String {
    use subtp::vtt::{VttBlock, VttCue, VttTimings, WebVtt};
    WebVtt {
        blocks: e
            .cues
            .iter()
            .map(|c| {
                VttBlock::from(VttCue {
                    identifier: None,
                    timings: VttTimings {
                        start: std::time::Duration::from_secs_f64(c.start).into(),
                        end: std::time::Duration::from_secs_f64(c.end).into(),
                    },
                    settings: None,
                    payload: vec![c.text.clone()],
                })
            })
            .collect(),
        ..Default::default()
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FilmVersionScene;

    fn version(transitions: &[(&str, &str)]) -> FilmVersion {
        FilmVersion {
            version: 2,
            run_id: "r".into(),
            video: "projects/p/films/r.mp4".into(),
            duration: 0.0,
            scenes: transitions
                .iter()
                .enumerate()
                .map(|(i, (tin, tout))| FilmVersionScene {
                    scene_id: format!("s{i}"),
                    scene_number: i as i32 + 1,
                    take: Some(1),
                    video: format!("projects/p/scenes/s{i}/takes/r/video.mp4"),
                    duration: 5.0,
                    start: 0.0,
                    transition_in: tin.to_string(),
                    transition_out: tout.to_string(),
                })
                .collect(),
            created_at: None,
            sound: None,
        }
    }

    #[test]
    fn clips_butt_at_the_middle_of_each_crossfade_and_cover_the_film() {
        let mut v = version(&[("fade_in", "cut"), ("cut", "dissolve"), ("cut", "fade_out")]);
        v.duration = 14.5;
        let e = edit_of("T", &v, &[]);
        let spans: Vec<(u64, u64, u64)> = e
            .cuts
            .iter()
            .map(|c| (c.record_in, c.record_out, c.source_in))
            .collect();
        // 5 s, 5 s and 5 s with a 0.5 s dissolve between the last two: 348 frames; the cut
        // in the dissolve is 6 frames into it.
        assert_eq!(spans, vec![(0, 120, 0), (120, 234, 0), (234, 348, 6)]);
        assert_eq!(e.cuts[1].dissolve_out, 12);
        assert_eq!(e.frames, 348);
    }

    #[test]
    fn subtitles_read_back_with_their_times() {
        let e = Edit {
            title: "T".into(),
            cuts: vec![],
            frames: 0,
            cues: vec![Cue {
                start: 1.25,
                end: 3.5,
                text: "Hello, keeper.".into(),
            }],
        };
        let s = subtp::srt::SubRip::parse(&srt(&e)).expect("srt parses");
        assert_eq!(s.subtitles[0].start.milliseconds, 250);
        assert_eq!(s.subtitles[0].end.seconds, 3);
        let v = subtp::vtt::WebVtt::parse(&vtt(&e)).expect("vtt parses");
        assert_eq!(v.blocks.len(), 1);
        assert_eq!(timecode(24 * 3661 + 5), "01:01:01:05");
    }
}
