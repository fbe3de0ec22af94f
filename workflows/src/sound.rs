//! The film's sound plan (issue 27): what the music, ambience and effects of a film version
//! are, from its scenes, before anything is rendered.
//!
//! - **Music cues** span the film, not the scenes: consecutive scenes whose mood plays the same
//!   way (the scene's `music_track` when a person or the audio department set it, else its
//!   dramatic effect, else the style guide's mood) share one cue from the first one's start to
//!   the last one's end, so the music runs through their cuts. A cue's key is the one its
//!   words name ("in D minor"), else the film's; its tempo follows the scenes' pacing.
//! - **Ambience** per scene: its `ambient_sound`, else its place and time of day.
//! - **Effects** per scene: its `sound_effects` (name and second), else the ones its action
//!   text names (a door, footsteps, thunder, a horn...), placed in the scene, never past it.
//! - **Lines**: where each voice is heard in the film (the subtitles' cues), what the music
//!   ducks under.

use serde::{Deserialize, Serialize};
use slate_activities::local::foley::{ambience, bed_of, effects};
use slate_activities::local::mixdown::duck;
use slate_activities::local::music::{MusicCue, RATE, Sound, mood_class, parse_key, render};

use crate::export::edit_of;
use crate::model::{FilmVersion, Scene};

/// The sound of one scene of a film version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SceneSound {
    /// Scene id.
    pub scene_id: String,
    /// Its number.
    pub scene_number: i32,
    /// Seconds of film it starts at.
    pub start: f64,
    /// Its length, seconds.
    pub duration: f64,
    /// The words its ambience is picked by.
    pub ambience: String,
    /// Its effects: name and seconds from the scene's start (within it).
    pub effects: Vec<(String, f64)>,
}

/// A film version's sound, planned.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SoundPlan {
    /// The music, in film order.
    pub cues: Vec<MusicCue>,
    /// Each scene's ambience and effects, in film order.
    pub scenes: Vec<SceneSound>,
    /// Where a voice is heard, seconds of film (the music ducks under them).
    pub lines: Vec<(f64, f64)>,
}

/// What a scene's music plays like, in words.
fn mood_words(s: &Scene, film_mood: &str) -> String {
    [s.music_track.as_deref(), s.dramatic_effect.as_deref()]
        .into_iter()
        .flatten()
        .find(|w| !w.trim().is_empty())
        .unwrap_or(film_mood)
        .to_string()
}

/// Beats per minute for a scene's pacing.
fn tempo(pacing: Option<&str>) -> f64 {
    match pacing {
        Some("slow") => 72.0,
        Some("fast") => 118.0,
        _ => 92.0,
    }
}

/// The key `words` name ("... in F# minor ..."), if any.
fn key_in(words: &str) -> Option<String> {
    let w: Vec<&str> = words.split_whitespace().collect();
    w.windows(2)
        .map(|p| {
            format!(
                "{} {}",
                p[0],
                p[1].trim_matches(|c: char| !c.is_alphabetic())
            )
        })
        .find(|k| parse_key(k).is_some() && k.contains(' ') && k.len() <= 8)
}

/// Effects named in an action text, with where in a scene of `duration` seconds they fall.
fn effects_in(text: &str, duration: f64) -> Vec<(String, f64)> {
    let t = text.to_lowercase();
    let named = [
        ("door", "a door"),
        ("knock", "a knock"),
        ("footstep", "footsteps"),
        ("thunder", "thunder"),
        ("horn", "a horn"),
        ("bell", "a bell"),
    ];
    named
        .iter()
        .filter_map(|(word, name)| {
            let at = t.find(word)? as f64 / t.len().max(1) as f64;
            Some((
                name.to_string(),
                (at * duration).clamp(0.0, (duration - 0.5).max(0.0)),
            ))
        })
        .collect()
}

/// The sound plan of film `version`, cut from `scenes`, for a film whose style guide's mood is
/// `film_mood`.
pub fn plan(title: &str, version: &FilmVersion, scenes: &[Scene], film_mood: &str) -> SoundPlan {
    let film_key = scenes
        .iter()
        .find_map(|s| key_in(&mood_words(s, film_mood)))
        .unwrap_or_else(|| "D minor".into());
    let mut cues: Vec<MusicCue> = vec![];
    let mut out = vec![];
    for v in &version.scenes {
        let Some(s) = scenes.iter().find(|s| s.id == v.scene_id) else {
            continue;
        };
        let words = mood_words(s, film_mood);
        let (start, end) = (v.start, v.start + v.duration);
        match cues.last_mut() {
            Some(c) if mood_class(&c.mood) == mood_class(&words) => c.end = end,
            _ => cues.push(MusicCue {
                start,
                end,
                key: key_in(&words).unwrap_or_else(|| film_key.clone()),
                mood: words,
                tempo_bpm: tempo(s.pacing.as_deref()),
                instruments: vec![],
            }),
        }
        let ambience = s
            .ambient_sound
            .clone()
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| {
                format!(
                    "{} {}",
                    s.location.clone().unwrap_or_default(),
                    s.time_of_day.clone().unwrap_or_default()
                )
            });
        let effects = if s.sound_effects.is_empty() {
            effects_in(s.screenplay_text.as_deref().unwrap_or(""), v.duration)
        } else {
            s.sound_effects
                .iter()
                .map(|e| (e.effect_name.clone(), e.timestamp.clamp(0.0, v.duration)))
                .collect()
        };
        out.push(SceneSound {
            scene_id: s.id.clone(),
            scene_number: s.scene_number,
            start,
            duration: v.duration,
            ambience,
            effects,
        });
    }
    let lines = edit_of(title, version, scenes)
        .cues
        .iter()
        .map(|c| (c.start, c.end))
        .collect();
    SoundPlan {
        cues,
        scenes: out,
        lines,
    }
}

/// The stems of a film of `length` seconds: its music (ducked under the lines), its ambience
/// (each scene's bed, crossfading over 0.25 s at the cuts) and its effects (each scene's,
/// ending with the scene).
pub struct Stems {
    /// Music.
    pub music: Sound,
    /// Ambience.
    pub ambience: Sound,
    /// Effects.
    pub effects: Sound,
}

/// How far the music dips under a line, dB.
pub const DUCK_DB: f64 = 12.0;

/// Render the stems `plan` describes for a film of `length` seconds.
pub fn stems(plan: &SoundPlan, length: f64) -> Stems {
    let mut music = render(&plan.cues, length);
    duck(&mut music, &plan.lines, DUCK_DB, 0.3);
    let total = music.len();
    let silent = || {
        let mut w = Sound::new(2, RATE);
        w.resize(total);
        w
    };
    let (mut amb, mut fx) = (silent(), silent());
    let xfade = 0.25;
    for s in &plan.scenes {
        let from = (s.start - xfade).max(0.0);
        let len = (s.start + s.duration + xfade).min(length) - from;
        if len > 0.0 {
            add(
                &mut amb,
                &ambience(bed_of(&s.ambience), len),
                from,
                (xfade * RATE) as usize,
            );
        }
        if !s.effects.is_empty() {
            add(&mut fx, &effects(&s.effects, s.duration), s.start, 0);
        }
    }
    Stems {
        music,
        ambience: amb,
        effects: fx,
    }
}

/// Add `part` into `into` at `at` seconds, faded in and out over `fade` samples.
fn add(into: &mut Sound, part: &Sound, at: f64, fade: usize) {
    let offset = (at * RATE).round() as usize;
    let n = part.len();
    for i in 0..n.min(into.len().saturating_sub(offset)) {
        let edge = if fade == 0 {
            1.0
        } else {
            (i.min(n - 1 - i) as f32 / fade as f32).min(1.0)
        };
        for ch in 0..2 {
            let v = into.at(ch, offset + i) + part.at(ch, i) * edge;
            into.set(ch, offset + i, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FilmVersionScene, SoundEffect};

    fn scene(n: i32, effect: &str, text: &str) -> Scene {
        Scene {
            id: format!("s{n}"),
            scene_number: n,
            sequence_number: n,
            expected_duration: 5.0,
            dramatic_effect: Some(effect.into()),
            screenplay_text: Some(text.into()),
            location: Some("Harbor Market".into()),
            time_of_day: Some("dusk".into()),
            ..Default::default()
        }
    }

    fn version(scenes: &[Scene]) -> FilmVersion {
        FilmVersion {
            version: 1,
            duration: 5.0 * scenes.len() as f64,
            scenes: scenes
                .iter()
                .enumerate()
                .map(|(i, s)| FilmVersionScene {
                    scene_id: s.id.clone(),
                    scene_number: s.scene_number,
                    video: format!("v{i}.mp4"),
                    duration: 5.0,
                    start: 5.0 * i as f64,
                    transition_in: "cut".into(),
                    transition_out: "cut".into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn scenes_of_one_mood_share_a_cue_across_their_cuts() {
        let scenes = vec![
            scene(1, "quiet wonder", "Mira walks the market."),
            scene(2, "calm curiosity", "She looks at the lanterns."),
            scene(3, "sudden dread", "Thunder. A door slams."),
            scene(4, "hope returns, in E major", "The lantern glows."),
        ];
        let p = plan("T", &version(&scenes), &scenes, "warm");
        let spans: Vec<(f64, f64)> = p.cues.iter().map(|c| (c.start, c.end)).collect();
        assert_eq!(
            spans,
            vec![(0.0, 10.0), (10.0, 15.0), (15.0, 20.0)],
            "{:?}",
            p.cues
        );
        assert_eq!(p.cues[2].key, "E major");
        assert_eq!(
            p.cues[0].key, "E major",
            "the film's key where a cue names none"
        );
        let fx: Vec<&str> = p.scenes[2]
            .effects
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(fx, vec!["a door", "thunder"]);
        assert!(p.scenes.iter().all(|s| {
            s.effects
                .iter()
                .all(|(_, at)| *at >= 0.0 && *at <= s.duration)
        }));
        assert_eq!(p.scenes[0].ambience, "Harbor Market dusk");
    }

    fn rms(w: &Sound, a: f64, b: f64) -> f64 {
        let (a, b) = ((a * RATE) as usize, ((b * RATE) as usize).min(w.len()));
        ((a..b).map(|i| f64::from(w.at(0, i)).powi(2)).sum::<f64>() / (b - a).max(1) as f64).sqrt()
    }

    #[test]
    fn an_effect_ends_with_its_scene_and_the_music_dips_under_a_line() {
        let mut one = scene(1, "calm", "Dawn.");
        one.sound_effects = vec![SoundEffect {
            effect_name: "the ferry horn".into(),
            timestamp: 4.2,
        }];
        let two = scene(2, "calm", "Quiet.");
        let scenes = vec![one, two];
        let mut p = plan("T", &version(&scenes), &scenes, "calm");
        p.lines = vec![(6.0, 8.0)];
        let st = stems(&p, 10.0);
        assert!(rms(&st.effects, 4.3, 4.9) > 0.01, "the horn sounds");
        assert!(
            rms(&st.effects, 5.0, 10.0) < 1e-5,
            "and stops with its scene"
        );
        let (under, clear) = (rms(&st.music, 6.2, 7.8), rms(&st.music, 2.0, 4.0));
        assert!(20.0 * (clear / under).log10() >= 8.0, "{clear} / {under}");
        assert!(
            rms(&st.ambience, 4.8, 5.2) > 0.0005,
            "no hole in the ambience at the cut"
        );
    }

    #[test]
    fn set_fields_win_over_what_is_derived() {
        let mut s = scene(1, "dread", "A door.");
        s.music_track = Some("playful".into());
        s.ambient_sound = Some("rain on tin".into());
        s.sound_effects = vec![SoundEffect {
            effect_name: "a bell".into(),
            timestamp: 9.0,
        }];
        let p = plan("T", &version(std::slice::from_ref(&s)), &[s], "calm");
        assert_eq!(p.cues[0].mood, "playful");
        assert_eq!(p.scenes[0].ambience, "rain on tin");
        assert_eq!(
            p.scenes[0].effects,
            vec![("a bell".to_string(), 5.0)],
            "kept within the scene"
        );
    }
}
