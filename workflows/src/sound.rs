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
use slate_activities::local::music::{self, MusicCue, RATE, Sound, mood_class, parse_key};

use crate::export::edit_of;
use crate::model::{FilmVersion, Scene, SoundSettings};

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
    /// The words its ambience is picked by (none: no ambience).
    pub ambience: Option<String>,
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
    /// Where the music is off (a scene a person turned it off for), seconds of film.
    #[serde(default)]
    pub quiet: Vec<(f64, f64)>,
}

/// A rendered stem.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Stem {
    /// The music cues.
    Music,
    /// The scenes' ambience beds.
    Ambience,
    /// The scenes' effects.
    Effects,
}

impl Stem {
    /// The stems synthesized from a plan (the dialogue is the film's own sound).
    pub const RENDERED: [Stem; 3] = [Stem::Music, Stem::Ambience, Stem::Effects];

    /// Its name, as blob keys and the API say it.
    pub fn name(self) -> &'static str {
        match self {
            Stem::Music => "music",
            Stem::Ambience => "ambience",
            Stem::Effects => "effects",
        }
    }
}

impl SoundPlan {
    /// The stems that have anything in them.
    pub fn stems(&self) -> Vec<Stem> {
        Stem::RENDERED
            .into_iter()
            .filter(|s| match s {
                Stem::Music => !self.cues.is_empty(),
                Stem::Ambience => self.scenes.iter().any(|x| x.ambience.is_some()),
                Stem::Effects => self.scenes.iter().any(|x| !x.effects.is_empty()),
            })
            .collect()
    }
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

/// The tempo `words` name ("... 96 bpm ..."), if any.
fn tempo_in(words: &str) -> Option<f64> {
    let w: Vec<&str> = words.split_whitespace().collect();
    w.windows(2)
        .find(|p| {
            p[1].trim_matches(|c: char| !c.is_alphabetic())
                .eq_ignore_ascii_case("bpm")
        })
        .and_then(|p| p[0].parse::<f64>().ok())
        .filter(|t| (40.0..=200.0).contains(t))
}

/// The instruments `words` name, as the synthesizer knows them (none: the mood's arrangement).
fn instruments_in(words: &str) -> Vec<String> {
    let w = words.to_lowercase();
    [
        "string", "pad", "bass", "pluck", "arpeggio", "melody", "piano",
    ]
    .into_iter()
    .filter(|i| w.contains(i))
    .map(str::to_string)
    .collect()
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

/// Effects named in an action text, with where in a scene of `duration` seconds they fall:
/// at most three, one of a kind, in the order the text names them.
fn effects_in(text: &str, duration: f64) -> Vec<(String, f64)> {
    let t = text.to_lowercase();
    // A word of the action and the effect it makes (the synthesizer picks its sound from the
    // effect's name: a door or knock, steps, thunder, a horn, a bell; a whoosh otherwise).
    let named = [
        ("door", "a door"),
        ("slam", "a door slams"),
        ("knock", "a knock"),
        ("footstep", "footsteps"),
        ("stair", "footsteps on the stair"),
        ("climb", "footsteps on the stair"),
        ("runs", "running footsteps"),
        ("run ", "running footsteps"),
        ("walk", "footsteps"),
        ("thunder", "thunder"),
        ("horn", "a horn"),
        ("ferry", "a ferry horn"),
        ("siren", "a siren"),
        ("bell", "a bell"),
        ("chime", "a chime"),
        ("gust", "a gust of wind"),
        ("splash", "a splash"),
        ("shatter", "glass shatters"),
    ];
    let kind = |name: &str| {
        let n = name.to_lowercase();
        [
            "door", "knock", "foot", "thunder", "horn", "siren", "bell", "chime",
        ]
        .into_iter()
        .find(|k| n.contains(k))
        .unwrap_or(name)
        .to_string()
    };
    let mut found: Vec<(usize, &str)> = named
        .iter()
        .filter_map(|(word, name)| Some((t.find(word)?, *name)))
        .collect();
    found.sort();
    let mut out: Vec<(String, f64)> = vec![];
    for (at, name) in found {
        if out.len() == 3 || out.iter().any(|(n, _)| kind(n) == kind(name)) {
            continue;
        }
        let at = at as f64 / t.len().max(1) as f64;
        out.push((
            name.to_string(),
            (at * duration).clamp(0.0, (duration - 0.5).max(0.0)),
        ));
    }
    out
}

/// The ambience a place and time sound like, in words (what the audio department writes in
/// a scene's `ambient_sound`).
fn ambience_words(s: &Scene) -> String {
    let place = format!(
        "{} {} {}",
        s.location.as_deref().unwrap_or_default(),
        s.weather.as_deref().unwrap_or_default(),
        s.screenplay_text.as_deref().unwrap_or_default()
    )
    .to_lowercase();
    let time = s.time_of_day.as_deref().unwrap_or_default();
    let has = |k: &[&str]| k.iter().any(|x| place.contains(x));
    let what = if has(&["rain", "storm", "drizzle"]) {
        "rain"
    } else if has(&["harbor", "harbour", "sea", "shore", "beach", "dock", "pier"]) {
        "the sea against the harbor, in slow swells"
    } else if has(&["market", "crowd", "square", "cafe", "station"]) {
        "a crowd murmuring"
    } else if has(&["cliff", "moor", "hill", "roof", "wind"]) {
        "wind"
    } else if has(&["street", "city", "road", "traffic"]) {
        "distant traffic"
    } else if has(&["forest", "field", "garden", "woods"]) && time == "night" {
        "night insects"
    } else {
        "room tone"
    };
    if time.is_empty() {
        what.to_string()
    } else {
        format!("{what}, {}", time.replace('_', " "))
    }
}

/// What the audio department writes in each scene's sound fields that are empty (a person's or
/// the planner's words stay): the music (its mood, key, tempo and instruments, in words the
/// sound plan reads back), the ambience, and the effects its action names.
pub fn score(scenes: &[Scene], film_mood: &str) -> Vec<Scene> {
    let film_key = scenes
        .iter()
        .find_map(|s| key_in(&mood_words(s, film_mood)))
        .unwrap_or_else(|| {
            if matches!(mood_class(film_mood), "tense" | "sad") {
                "D minor".into()
            } else {
                "D major".into()
            }
        });
    let tonic = film_key
        .split_whitespace()
        .next()
        .unwrap_or("D")
        .to_string();
    scenes
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if s.music_track.as_deref().is_none_or(|m| m.trim().is_empty()) {
                let words = mood_words(&s, film_mood);
                let class = mood_class(&words);
                let key = key_in(&words).unwrap_or_else(|| {
                    let mode = if matches!(class, "tense" | "sad") {
                        "minor"
                    } else {
                        "major"
                    };
                    format!("{tonic} {mode}")
                });
                let band = match class {
                    "tense" => "strings, bass and plucks",
                    "sad" => "strings, bass and a slow melody",
                    "joyful" => "strings, bass, plucks and melody",
                    _ => "strings, bass and a sparse melody",
                };
                s.music_track = Some(format!(
                    "{words}: {class}, in {key}, {:.0} bpm, {band}",
                    tempo(s.pacing.as_deref())
                ));
            }
            if s.ambient_sound
                .as_deref()
                .is_none_or(|a| a.trim().is_empty())
            {
                s.ambient_sound = Some(ambience_words(&s));
            }
            if s.sound_effects.is_empty() {
                s.sound_effects = effects_in(
                    s.screenplay_text.as_deref().unwrap_or_default(),
                    s.expected_duration,
                )
                .into_iter()
                .map(|(effect_name, timestamp)| crate::model::SoundEffect {
                    effect_name,
                    timestamp,
                })
                .collect();
            }
            s
        })
        .collect()
}

/// The sound plan of film `version`, cut from `scenes`, for a film whose style guide's mood is
/// `film_mood`, as `settings` and each scene's switches let it play.
pub fn plan(
    title: &str,
    version: &FilmVersion,
    scenes: &[Scene],
    film_mood: &str,
    settings: &SoundSettings,
) -> SoundPlan {
    let film_key = scenes
        .iter()
        .find_map(|s| key_in(&mood_words(s, film_mood)))
        .unwrap_or_else(|| "D minor".into());
    let mut cues: Vec<MusicCue> = vec![];
    let mut out = vec![];
    let mut quiet = vec![];
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
                tempo_bpm: tempo_in(&words).unwrap_or_else(|| tempo(s.pacing.as_deref())),
                instruments: instruments_in(&words),
                mood: words,
            }),
        }
        if s.music_off {
            quiet.push((start, end));
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
        let ambience = settings.ambience.then_some(ambience);
        let effects = if !settings.effects || s.effects_off {
            vec![]
        } else if s.sound_effects.is_empty() {
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
    // A scene with the music off inside a cue leaves the cue whole (it plays on after the
    // scene, not from its start again); the stem is silent over the scene.
    if !settings.music {
        cues.clear();
    }
    SoundPlan {
        cues,
        scenes: out,
        lines,
        quiet,
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
    let total = (length * RATE).round().max(1.0) as usize;
    Stems {
        music: window(plan, Stem::Music, length, 0, total, &synthesized),
        ambience: window(plan, Stem::Ambience, length, 0, total, &synthesized),
        effects: window(plan, Stem::Effects, length, 0, total, &synthesized),
    }
}

/// Every cue synthesized (none made by a provider).
pub fn synthesized(_cue: usize, _from: usize, _to: usize) -> Option<Sound> {
    None
}

/// Samples `from..to` of one stem of a film of `length` seconds, rendered on their own (what
/// a checkpointed step of the film's sound renders): equal to that stretch of the whole
/// stem, to within the music's reverb traces. `made(i, a, b)` gives samples `a..b` of cue
/// `i` as a provider made it, or none where the cue is synthesized.
pub fn window(
    plan: &SoundPlan,
    stem: Stem,
    length: f64,
    from: usize,
    to: usize,
    made: &dyn Fn(usize, usize, usize) -> Option<Sound>,
) -> Sound {
    let total = (length * RATE).round().max(1.0) as usize;
    let to = to.min(total);
    let at = from as f64 / RATE;
    match stem {
        Stem::Music => {
            let mut w = music::window_made(&plan.cues, length, from, to, made);
            duck(&mut w, at, &plan.lines, DUCK_DB, 0.3);
            duck(&mut w, at, &plan.quiet, 120.0, 0.5);
            w
        }
        Stem::Ambience | Stem::Effects => {
            let mut w = Sound::new(2, RATE);
            w.resize(to.saturating_sub(from));
            let end = to as f64 / RATE;
            let xfade = 0.25;
            for s in &plan.scenes {
                if stem == Stem::Ambience {
                    let Some(words) = &s.ambience else { continue };
                    let start = (s.start - xfade).max(0.0);
                    let stop = (s.start + s.duration + xfade).min(length);
                    if stop <= at || start >= end || stop <= start {
                        continue;
                    }
                    let bed = ambience(bed_of(words), stop - start);
                    add(&mut w, from, &bed, start, (xfade * RATE) as usize);
                } else {
                    if s.effects.is_empty() || s.start + s.duration <= at || s.start >= end {
                        continue;
                    }
                    add(&mut w, from, &effects(&s.effects, s.duration), s.start, 0);
                }
            }
            w
        }
    }
}

/// Add `part`, which starts at `at` seconds of film, into the window `into` that starts at
/// sample `from`, faded in and out over `fade` samples.
fn add(into: &mut Sound, from: usize, part: &Sound, at: f64, fade: usize) {
    let offset = (at * RATE).round() as usize;
    let n = part.len();
    for i in 0..n {
        let Some(j) = (offset + i).checked_sub(from) else {
            continue;
        };
        if j >= into.len() {
            break;
        }
        let edge = if fade == 0 {
            1.0
        } else {
            (i.min(n - 1 - i) as f32 / fade as f32).min(1.0)
        };
        for ch in 0..2 {
            let v = into.at(ch, j) + part.at(ch, i) * edge;
            into.set(ch, j, v);
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
        let p = plan(
            "T",
            &version(&scenes),
            &scenes,
            "warm",
            &SoundSettings::default(),
        );
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
        assert_eq!(
            fx,
            vec!["thunder", "a door"],
            "in the order the action names them"
        );
        assert!(p.scenes.iter().all(|s| {
            s.effects
                .iter()
                .all(|(_, at)| *at >= 0.0 && *at <= s.duration)
        }));
        assert_eq!(p.scenes[0].ambience.as_deref(), Some("Harbor Market dusk"));
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
        let mut p = plan(
            "T",
            &version(&scenes),
            &scenes,
            "calm",
            &SoundSettings::default(),
        );
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
        let p = plan(
            "T",
            &version(std::slice::from_ref(&s)),
            &[s],
            "calm",
            &SoundSettings::default(),
        );
        assert_eq!(p.cues[0].mood, "playful");
        assert_eq!(p.scenes[0].ambience.as_deref(), Some("rain on tin"));
        assert_eq!(
            p.scenes[0].effects,
            vec![("a bell".to_string(), 5.0)],
            "kept within the scene"
        );
    }

    #[test]
    fn a_scene_with_its_music_off_is_silent_and_windows_join_into_the_whole() {
        let mut scenes = vec![
            scene(1, "calm", "Dawn. A door."),
            scene(2, "calm", "Quiet."),
            scene(3, "calm", "Footsteps."),
        ];
        scenes[1].music_off = true;
        scenes[2].effects_off = true;
        let p = plan(
            "T",
            &version(&scenes),
            &scenes,
            "calm",
            &SoundSettings::default(),
        );
        assert_eq!(p.cues.len(), 1, "the cue is not split by the quiet scene");
        assert!(p.scenes[2].effects.is_empty());
        let st = stems(&p, 15.0);
        assert!(rms(&st.music, 5.0, 10.0) < 1e-6, "silent under scene 2");
        assert!(rms(&st.music, 11.0, 14.0) > 0.005, "and back after it");
        // Rendered in windows of 4.1 s, each stem is the same as rendered whole.
        let total = st.music.len();
        let step = (4.1 * RATE) as usize;
        for (stem, whole) in [
            (Stem::Music, &st.music),
            (Stem::Ambience, &st.ambience),
            (Stem::Effects, &st.effects),
        ] {
            let mut worst = 0.0f32;
            let mut at = 0;
            while at < total {
                let w = window(&p, stem, 15.0, at, at + step, &synthesized);
                for j in 0..w.len() {
                    worst = worst.max((w.at(0, j) - whole.at(0, at + j)).abs());
                }
                at += step;
            }
            assert!(worst < 3e-4, "{stem:?}: worst difference {worst}");
        }
        let none = plan(
            "T",
            &version(&scenes),
            &scenes,
            "calm",
            &SoundSettings {
                music: false,
                effects: false,
                ..Default::default()
            },
        );
        assert_eq!(none.stems(), vec![Stem::Ambience]);
    }
}
