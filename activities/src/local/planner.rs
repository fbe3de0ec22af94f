//! The local planner: in place of the language model, deterministic rules over the gather data.
//!
//! Same input, same output. The gather data is read by content ([`crate::local::reader`]), not
//! by field names; from that reading come the characters, a story bible (with the gather data's
//! contradictions and how they were resolved), a style guide, readiness scores in plain words,
//! a screenplay, and a breakdown into 3-7 second scenes with dramatic effect, camera and
//! lighting chosen from what each beat says.
//!
//! (Over 600 lines on purpose: each department's deterministic rules next to the others they
//! must agree with: the same reading of the gather data feeds them all.)

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::error::Result;
use crate::local::reader::{self, Reading, Unit as ReadUnit, has_any, mentions, words};
use crate::local::render::{self, color_for};
use crate::model::*;
use crate::traits::{Paid, Planner, ShotContext};

mod readiness;

/// The deterministic planner.
#[derive(Debug, Clone, Default)]
pub struct LocalPlanner;

/// A slug for ids: lower case, `-` between words.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn weather(v: &str) -> String {
    let v = v.to_ascii_lowercase();
    options::WEATHER
        .iter()
        .find(|t| v.contains(*t))
        .map(|t| t.to_string())
        .unwrap_or_else(|| "clear".into())
}

#[rustfmt::skip]
const ACTION_WORDS: &[&str] = &[
    "run", "runs", "chase", "chases", "strike", "strikes", "jump", "jumps", "fight", "fights",
    "escape", "escapes", "grab", "grabs", "race", "races", "leap", "leaps", "falls", "flee",
    "flees", "climb", "climbs", "rush", "rushes", "crash", "crashes", "storm", "storms",
];
#[rustfmt::skip]
const REVEAL_WORDS: &[&str] = &[
    "reveal", "reveals", "discover", "discovers", "finds", "sees", "notices", "opens", "spots",
    "realises", "realizes", "uncovers",
];
/// Words that ask for a framing, whatever the beat's kind would choose.
#[rustfmt::skip]
const CLOSE_WORDS: &[&str] = &[
    "close", "closeup", "close-up", "closer", "detail", "face", "eyes",
];
#[rustfmt::skip]
const WIDE_WORDS: &[&str] = &[
    "wide", "establishing", "panorama", "vast", "horizon", "landscape", "skyline", "aerial",
];
#[rustfmt::skip]
const HIGH_WORDS: &[&str] = &[
    "above", "overhead", "down at", "looks down", "high angle", "from the top",
];
#[rustfmt::skip]
const LOW_WORDS: &[&str] = &[
    "below", "looks up", "towering", "towers", "low angle", "looms", "from the ground",
];

fn duration_for(text: &str) -> f64 {
    // About three words a second of screen time, kept inside 3-7 s, in half seconds.
    let n = words(text).len() as f64;
    let d = (2.5 + n * 0.28).clamp(MIN_SCENE_SECONDS, MAX_SCENE_SECONDS);
    (d * 2.0).round() / 2.0
}

fn or_default(s: &str, d: &str) -> String {
    if s.trim().is_empty() {
        d.to_string()
    } else {
        s.to_string()
    }
}

fn profiles(r: &Reading) -> Vec<CharacterProfile> {
    r.characters
        .iter()
        .map(|c| CharacterProfile {
            character_id: c.id.clone(),
            name: c.name.clone(),
            role: reader::canonical_role(&c.role)
                .or_else(|| (!c.role.is_empty()).then(|| c.role.clone()))
                .unwrap_or_else(|| "supporting".into()),
            personality: c.personality.clone(),
            appearance: c.appearance.clone(),
            background: c.background.clone(),
            costume: c.costume.clone(),
            palette: vec![c.color.clone().unwrap_or_else(|| color_for(&c.name))],
        })
        .collect()
}

fn place_palette(p: &reader::PlaceSketch) -> Vec<String> {
    if p.palette.is_empty() {
        render::default_palette(&p.name, &p.description)
    } else {
        p.palette.clone()
    }
}

#[async_trait]
impl Planner for LocalPlanner {
    fn name(&self) -> &'static str {
        "local planner"
    }

    async fn readiness(&self, g: &GatherSnapshot) -> Result<Paid<Vec<DepartmentReadiness>>> {
        Ok(Paid::free(readiness::score(&reader::read(g))))
    }

    async fn characters(&self, g: &GatherSnapshot) -> Result<Paid<Vec<CharacterProfile>>> {
        Ok(Paid::free(profiles(&reader::read(g))))
    }

    async fn story_bible(
        &self,
        g: &GatherSnapshot,
        characters: &[CharacterProfile],
    ) -> Result<Paid<StoryBible>> {
        let r = reader::read(g);
        // The world department runs beside the character department: without qualified
        // profiles yet, it reads the raw ones.
        let derived;
        let characters = if characters.is_empty() {
            derived = profiles(&r);
            &derived[..]
        } else {
            characters
        };
        let id_of = |name: &str| {
            characters
                .iter()
                .find(|c| c.name == name || c.character_id == reader::id_for(name))
                .map(|c| c.character_id.clone())
        };
        let mut relationships: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for c in &r.characters {
            for (other, what) in &c.relationships {
                if let (Some(me), Some(o)) = (id_of(&c.name), id_of(other)) {
                    relationships.entry(me).or_default().insert(o, what.clone());
                }
            }
        }
        let n = r.ideas.len().max(1);
        let timeline = r
            .ideas
            .iter()
            .enumerate()
            .map(|(i, idea)| TimelineEvent {
                event: idea
                    .title
                    .clone()
                    .unwrap_or_else(|| format!("Scene idea {}", i + 1)),
                timestamp: format!("act {}", i * 3 / n + 1),
                description: idea.summary.clone(),
            })
            .collect();
        let mut consistency_rules: Vec<ConsistencyRule> = characters
            .iter()
            .filter(|c| !c.appearance.is_empty() || !c.costume.is_empty())
            .map(|c| ConsistencyRule {
                rule: format!(
                    "{} always appears as: {}{}",
                    c.name,
                    or_default(&c.appearance, "as first drawn"),
                    if c.costume.is_empty() {
                        String::new()
                    } else {
                        format!("; costume: {}", c.costume)
                    }
                ),
                priority: "critical".into(),
            })
            .collect();
        consistency_rules.extend(r.rules.iter().map(|(_, rule)| ConsistencyRule {
            rule: rule.clone(),
            priority: "high".into(),
        }));
        let mut resolved = r.contradictions.clone();
        if !resolved.is_empty() {
            resolved.insert(0, format!("Rule: {}.", reader::LATER_WINS));
        }
        Ok(Paid::free(StoryBible {
            title: r.title.clone().unwrap_or_else(|| g.title.clone()),
            logline: r.logline.clone().unwrap_or_default(),
            world_rules: r
                .rules
                .iter()
                .map(|(cat, rule)| WorldRule {
                    rule_category: cat.clone().unwrap_or_else(|| "society".into()),
                    rule_description: rule.clone(),
                })
                .collect(),
            character_relationships: relationships,
            timeline,
            consistency_rules,
            locations: r
                .places
                .iter()
                .map(|p| BibleLocation {
                    location_name: p.name.clone(),
                    location_description: p.description.clone(),
                    location_rules: p.rules.clone(),
                })
                .collect(),
            resolved_contradictions: resolved,
        }))
    }

    async fn style_guide(&self, g: &GatherSnapshot) -> Result<Paid<StyleGuide>> {
        let r = reader::read(g);
        let style_text = r.style.join(" ");
        let mut palette = r.palette.clone();
        if palette.is_empty() {
            palette = r.places.iter().flat_map(place_palette).take(5).collect();
        }
        if palette.is_empty() {
            palette = vec![color_for(&g.title), color_for(&format!("{}-2", g.title))];
        }
        Ok(Paid::free(StyleGuide {
            palette,
            mood: if style_text.is_empty() {
                "grounded, warm, hopeful".into()
            } else {
                reader::clip(&style_text, 400)
            },
            lighting: if has_any(&style_text, &["noir", "shadow", "shadows", "dark", "moody"]) {
                "hard motivated light, deep shadows".into()
            } else {
                "soft motivated practical light".into()
            },
            camera_language: "wide to establish, close on decisions, movement follows intent"
                .into(),
            aspect_ratio: "16:9".into(),
            negative_prompt: "text artifacts, extra limbs, inconsistent costumes, changed faces"
                .into(),
        }))
    }

    async fn screenplay(
        &self,
        g: &GatherSnapshot,
        _bible: &StoryBible,
        characters: &[CharacterProfile],
    ) -> Result<Paid<Screenplay>> {
        let r = reader::read(g);
        let id_known =
            |id: &str| characters.is_empty() || characters.iter().any(|c| c.character_id == id);
        let mut sequences = vec![];
        let mut content = String::new();
        for idea in &r.ideas {
            let location = idea.place.clone().unwrap_or_else(|| "Open Ground".into());
            let description = r
                .places
                .iter()
                .find(|p| p.name == location)
                .map(|p| p.description.clone())
                .unwrap_or_default();
            // The heading's INT./EXT. where the gather data gave one (a screenplay); else what
            // the place is.
            let ext = match idea.interior {
                Some(interior) => !interior,
                None => !render::setting_of(&location, &description).is_interior(),
            };
            let heading = format!(
                "{}. {} - {}",
                if ext { "EXT" } else { "INT" },
                location.to_uppercase(),
                idea.time_of_day.to_uppercase()
            );
            let (mut action, mut dialogue, mut positions) = (vec![], vec![], vec![]);
            for u in &idea.units {
                match u {
                    ReadUnit::Action(a) => action.push(a.clone()),
                    ReadUnit::Line(who, line, how) if id_known(who) => {
                        positions.push(action.len());
                        dialogue.push(DialogueLine {
                            character: who.clone(),
                            line: line.clone(),
                            parenthetical: how.clone(),
                        });
                    }
                    ReadUnit::Line(_, line, _) => action.push(format!("\"{line}\"")),
                }
            }
            content.push_str(&heading);
            content.push_str("\n\n");
            let mut lines = dialogue.iter().zip(&positions).peekable();
            for (i, a) in action.iter().enumerate() {
                while let Some((d, _)) = lines.next_if(|(_, p)| **p <= i) {
                    push_line(&mut content, characters, d);
                }
                content.push_str(a);
                content.push('\n');
            }
            for (d, _) in lines {
                push_line(&mut content, characters, d);
            }
            content.push('\n');
            sequences.push(Sequence {
                heading,
                location,
                time_of_day: idea.time_of_day.clone(),
                action,
                dialogue,
                characters: idea
                    .characters
                    .iter()
                    .filter(|c| id_known(c))
                    .cloned()
                    .collect(),
                props: idea.props.clone(),
                weather: Some(idea.weather.clone()),
                line_positions: positions,
                transition_in: idea.transition_in.clone(),
                transition_out: idea.transition_out.clone(),
            });
        }
        Ok(Paid::free(Screenplay {
            title: r.title.unwrap_or_else(|| g.title.clone()),
            content,
            sequences,
        }))
    }

    async fn breakdown(
        &self,
        screenplay: &Screenplay,
        _bible: &StoryBible,
        characters: &[CharacterProfile],
    ) -> Result<Paid<Vec<SceneBreakdown>>> {
        let mut scenes = vec![];
        let total_sequences = screenplay.sequences.len();
        for (si, seq) in screenplay.sequences.iter().enumerate() {
            let beats = beats_of(seq);
            let n = beats.len();
            for (ui, beat) in beats.into_iter().enumerate() {
                let at = BeatAt {
                    number: scenes.len() as i32 + 1,
                    si,
                    ui,
                    n,
                    first_of_film: si == 0 && ui == 0,
                    last_of_film: si + 1 == total_sequences && ui + 1 == n,
                };
                scenes.push(scene_of(seq, characters, beat, &at));
            }
        }
        Ok(Paid::free(scenes))
    }

    async fn locations(
        &self,
        g: &GatherSnapshot,
        bible: &StoryBible,
    ) -> Result<Paid<Vec<LocationDetail>>> {
        let r = reader::read(g);
        let mut out: Vec<LocationDetail> = r
            .places
            .iter()
            .map(|p| LocationDetail {
                name: p.name.clone(),
                description: p.description.clone(),
                palette: place_palette(p),
                rules: p.rules.clone(),
            })
            .collect();
        for b in &bible.locations {
            if !out
                .iter()
                .any(|l| l.name.eq_ignore_ascii_case(&b.location_name))
            {
                out.push(LocationDetail {
                    name: b.location_name.clone(),
                    description: b.location_description.clone(),
                    palette: render::default_palette(&b.location_name, &b.location_description),
                    rules: b.location_rules.clone(),
                });
            }
        }
        Ok(Paid::free(out))
    }

    async fn props(
        &self,
        g: &GatherSnapshot,
        screenplay: &Screenplay,
    ) -> Result<Paid<Vec<PropItem>>> {
        let r = reader::read(g);
        let mut out: Vec<PropItem> = r
            .props
            .iter()
            .map(|p| PropItem {
                name: p.name.clone(),
                description: or_default(&p.description, &p.name),
                color: p.color.clone().unwrap_or_else(|| color_for(&p.name)),
            })
            .collect();
        for seq in &screenplay.sequences {
            for p in &seq.props {
                if !out.iter().any(|x| x.name.eq_ignore_ascii_case(p)) {
                    out.push(PropItem {
                        name: p.clone(),
                        description: format!("{p}, as the screenplay describes it"),
                        color: color_for(p),
                    });
                }
            }
        }
        Ok(Paid::free(out))
    }

    async fn voices(&self, characters: &[CharacterProfile]) -> Result<Paid<Vec<VoiceCasting>>> {
        const VOICES: &[&str] = &[
            "en-us+m3", "en-us+f3", "en-gb+m2", "en-us+f4", "en-gb+f2", "en-us+m7",
        ];
        Ok(Paid::free(
            characters
                .iter()
                .enumerate()
                .map(|(i, c)| VoiceCasting {
                    character_id: c.character_id.clone(),
                    voice: VOICES[i % VOICES.len()].into(),
                    pitch: if c.role.contains("antagonist") {
                        30
                    } else {
                        50 + (i as u8 * 7) % 30
                    },
                    speed: 160,
                    description: format!("{} — {}", c.name, c.personality),
                })
                .collect(),
        ))
    }

    async fn shot_plan(&self, scene: &SceneBreakdown, ctx: &ShotContext) -> Result<Paid<ShotPlan>> {
        let mut steps = vec![CompositeStep {
            kind: "location".into(),
            description: format!(
                "{} at {}, {} light",
                scene.location, scene.time_of_day, scene.lighting_type
            ),
            subjects: vec![scene.location.clone()],
        }];
        let known: Vec<&String> = scene
            .characters_present
            .iter()
            .filter(|id| ctx.characters.iter().any(|c| &&c.character_id == id))
            .collect();
        // At most three references per request: a layer never carries more than three.
        for chunk in known.chunks(MAX_REFERENCES) {
            let names: Vec<String> = chunk
                .iter()
                .map(|id| {
                    ctx.characters
                        .iter()
                        .find(|c| &&c.character_id == id)
                        .map(|c| c.name.clone())
                        .unwrap_or_default()
                })
                .collect();
            steps.push(CompositeStep {
                kind: "characters".into(),
                description: format!("add {}", names.join(", ")),
                subjects: chunk.iter().map(|s| s.to_string()).collect(),
            });
        }
        for chunk in scene.props.chunks(MAX_REFERENCES) {
            steps.push(CompositeStep {
                kind: "props".into(),
                description: format!("add {}", chunk.join(", ")),
                subjects: chunk.to_vec(),
            });
        }
        Ok(Paid::free(ShotPlan {
            composite_steps: steps,
            camera_angle: scene.camera_angle.clone(),
            camera_shot: scene.camera_shot.clone(),
            camera_movement: scene.camera_movement.clone(),
            duration: scene
                .expected_duration
                .clamp(MIN_SCENE_SECONDS, MAX_SCENE_SECONDS),
            pacing: scene.pacing.clone(),
            notes: format!(
                "{} {} with a {} move for {}",
                scene.camera_shot.replace('_', " "),
                scene.camera_angle.replace('_', " "),
                scene.camera_movement,
                scene.dramatic_effect
            ),
        }))
    }
}

fn push_line(content: &mut String, characters: &[CharacterProfile], d: &DialogueLine) {
    let name = characters
        .iter()
        .find(|c| c.character_id == d.character)
        .map(|c| c.name.to_uppercase())
        .unwrap_or_else(|| d.character.to_uppercase());
    match &d.parenthetical {
        Some(how) => content.push_str(&format!("\n{name}\n({how})\n{}\n\n", d.line)),
        None => content.push_str(&format!("\n{name}\n{}\n\n", d.line)),
    }
}

/// A beat of a sequence: one line of action or one line of dialogue, each a scene.
enum Beat<'a> {
    Action(&'a str),
    Line(&'a DialogueLine),
}

/// Where a beat stands: its scene number, its sequence `si`, its place `ui` of `n` in it.
#[derive(Clone, Copy)]
struct BeatAt {
    number: i32,
    si: usize,
    ui: usize,
    n: usize,
    first_of_film: bool,
    last_of_film: bool,
}

/// A sequence's beats in order: its action lines, with its dialogue where the screenplay put it.
fn beats_of(seq: &Sequence) -> Vec<Beat<'_>> {
    // Lines where the screenplay put them; without positions, after the first beat.
    let positions: Vec<usize> = if seq.line_positions.len() == seq.dialogue.len() {
        seq.line_positions.clone()
    } else {
        vec![seq.action.len().min(1); seq.dialogue.len()]
    };
    let mut units: Vec<Beat<'_>> = vec![];
    let mut lines = seq.dialogue.iter().zip(&positions).peekable();
    for (i, a) in seq.action.iter().enumerate() {
        while let Some((l, _)) = lines.next_if(|(_, p)| **p <= i) {
            units.push(Beat::Line(l));
        }
        units.push(Beat::Action(a));
    }
    for (l, _) in lines {
        units.push(Beat::Line(l));
    }
    units
}

/// A beat's words as its scene says them, and who is in it: a line's speaker; for an action,
/// the sequence's characters it names (all of them in the first beat or when it names none).
fn beat_text(
    seq: &Sequence,
    characters: &[CharacterProfile],
    unit: &Beat<'_>,
    ui: usize,
) -> (String, Vec<String>) {
    match unit {
        Beat::Action(a) => {
            let named: Vec<String> = seq
                .characters
                .iter()
                .filter(|id| {
                    characters
                        .iter()
                        .find(|c| &c.character_id == *id)
                        .is_some_and(|c| mentions(a, &c.name))
                })
                .cloned()
                .collect();
            let who = if ui == 0 || named.is_empty() {
                seq.characters.clone()
            } else {
                named
            };
            (a.to_string(), who)
        }
        Beat::Line(l) => {
            let name = characters
                .iter()
                .find(|c| c.character_id == l.character)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            (format!("{name}: \"{}\"", l.line), vec![l.character.clone()])
        }
    }
}

/// The camera for a beat (shot, movement, angle): by its kind and place, then by what its words
/// ask for.
fn camera_for(
    text: &str,
    si: usize,
    ui: usize,
    action: bool,
    reveal: bool,
    dialogue_unit: bool,
) -> (&'static str, &'static str, &'static str) {
    let (shot, movement, angle) = if ui == 0 {
        (
            "wide",
            if si.is_multiple_of(2) {
                "pan"
            } else {
                "static"
            },
            "eye_level",
        )
    } else if dialogue_unit {
        (
            "close_up",
            if ui.is_multiple_of(2) {
                "dolly"
            } else {
                "static"
            },
            "eye_level",
        )
    } else if action {
        ("medium", "tracking", "low_angle")
    } else if reveal {
        ("medium", "zoom", "high_angle")
    } else {
        (
            "medium",
            if ui.is_multiple_of(2) { "tilt" } else { "pan" },
            "eye_level",
        )
    };
    // What the words ask for wins over what the beat's kind would choose.
    let shot = if has_any(text, CLOSE_WORDS) {
        "close_up"
    } else if has_any(text, WIDE_WORDS) {
        if ui == 0 { "extreme_wide" } else { "wide" }
    } else {
        shot
    };
    let angle = if has_any(text, HIGH_WORDS) {
        "high_angle"
    } else if has_any(text, LOW_WORDS) {
        "low_angle"
    } else {
        angle
    };
    (shot, movement, angle)
}

/// One beat as a scene of the breakdown.
fn scene_of(
    seq: &Sequence,
    characters: &[CharacterProfile],
    unit: Beat<'_>,
    at: &BeatAt,
) -> SceneBreakdown {
    let BeatAt {
        number,
        si,
        ui,
        n,
        first_of_film,
        last_of_film,
    } = *at;
    let (text, who) = beat_text(seq, characters, &unit, ui);
    let action = matches!(unit, Beat::Action(_)) && has_any(&text, ACTION_WORDS);
    let reveal = has_any(&text, REVEAL_WORDS);
    let dialogue_unit = matches!(unit, Beat::Line(_));
    let (shot, movement, angle) = camera_for(&text, si, ui, action, reveal, dialogue_unit);
    let lighting_type = match seq.time_of_day.as_str() {
        "night" => "dramatic",
        "evening" => "backlit",
        "dawn" | "twilight" => "soft",
        _ => {
            if action {
                "hard"
            } else {
                "natural"
            }
        }
    };
    let dramatic_effect = if action {
        "urgency: the audience should lean forward"
    } else if reveal {
        "discovery: a quiet intake of breath"
    } else if dialogue_unit {
        "intimacy: we read the face as much as the words"
    } else if ui == 0 {
        "orientation: where we are and what the air feels like"
    } else {
        "anticipation: something is about to change"
    };
    let props: Vec<String> = seq
        .props
        .iter()
        .filter(|p| ui == 0 || reader::mentions_object(&text, p))
        .cloned()
        .collect();
    SceneBreakdown {
        scene_number: number,
        sequence_number: number,
        screenplay_text: text.clone(),
        expected_duration: duration_for(&text),
        dramatic_effect: dramatic_effect.into(),
        location: seq.location.clone(),
        time_of_day: seq.time_of_day.clone(),
        weather: seq
            .weather
            .as_deref()
            .filter(|w| options::WEATHER.contains(w))
            .map(str::to_string)
            .unwrap_or_else(|| weather(&seq.heading)),
        camera_angle: angle.into(),
        camera_shot: shot.into(),
        camera_movement: movement.into(),
        lighting_type: lighting_type.into(),
        lighting_mood: format!("{} light over {}", seq.time_of_day, seq.location),
        pacing: if action {
            "fast"
        } else if dialogue_unit {
            "medium"
        } else {
            "slow"
        }
        .into(),
        characters_present: who,
        props,
        dialogue: match unit {
            Beat::Line(l) => vec![l.clone()],
            Beat::Action(_) => vec![],
        },
        // A screenplay's transitions where it gives them; else fade in, dissolve
        // between sequences, cut within one, fade out.
        transition_in: match (&seq.transition_in, ui) {
            (Some(t), 0) if options::TRANSITION_IN.contains(&t.as_str()) => t.clone(),
            _ if first_of_film => "fade_in".into(),
            _ if ui == 0 => "dissolve".into(),
            _ => "cut".into(),
        },
        transition_out: match &seq.transition_out {
            Some(t) if ui + 1 == n && options::TRANSITION_OUT.contains(&t.as_str()) => t.clone(),
            _ if last_of_film => "fade_out".into(),
            _ => "cut".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gather() -> GatherSnapshot {
        let mut c = BTreeMap::new();
        c.insert(
            "raw_characters".into(),
            vec![
                json!({"name": "Mira", "role": "protagonist", "personality": "curious", "appearance": "short, red scarf", "voice": "bright"}),
                json!({"name": "Oren", "role": "antagonist", "personality": "patient", "appearance": "tall, grey coat", "voice": "low"}),
            ],
        );
        c.insert(
            "raw_locations".into(),
            vec![json!({"name": "Harbor Market", "description": "stalls", "palette": ["#6b4f3a"]})],
        );
        c.insert(
            "raw_props".into(),
            vec![json!({"name": "Lantern", "description": "brass"})],
        );
        c.insert(
            "raw_scenes".into(),
            vec![json!({
                "title": "The find", "location": "Harbor Market", "time_of_day": "evening",
                "summary": "Mira finds the lantern.",
                "beats": ["The market closes for the night.", "Mira finds the Lantern under a stall.", "Oren grabs her arm and she runs."],
                "dialogue": [{"character": "Mira", "line": "It is warm."}],
                "characters": ["Mira", "Oren"], "props": ["Lantern"]
            })],
        );
        GatherSnapshot {
            project: "p".into(),
            title: "The Lantern".into(),
            collections: c,
        }
    }

    #[tokio::test]
    async fn breakdown_scenes_are_valid_and_deterministic() {
        let p = LocalPlanner;
        let g = gather();
        let chars = p.characters(&g).await.unwrap().value;
        let bible = p.story_bible(&g, &chars).await.unwrap().value;
        let sp = p.screenplay(&g, &bible, &chars).await.unwrap().value;
        let scenes = p.breakdown(&sp, &bible, &chars).await.unwrap().value;
        assert_eq!(scenes.len(), 4, "3 beats and 1 line");
        for s in &scenes {
            s.validate().unwrap();
        }
        assert_eq!(scenes[0].transition_in, "fade_in");
        assert_eq!(scenes.last().unwrap().transition_out, "fade_out");
        assert_eq!(scenes[1].camera_shot, "close_up", "a line is a close-up");
        assert_eq!(scenes[3].camera_movement, "tracking", "running is tracked");
        assert_eq!(scenes[2].camera_movement, "zoom", "a find is a push-in");
        let again = p.breakdown(&sp, &bible, &chars).await.unwrap().value;
        assert_eq!(scenes, again);
    }

    #[tokio::test]
    async fn readiness_names_what_is_missing() {
        let p = LocalPlanner;
        let r = p.readiness(&gather()).await.unwrap().value;
        let world = r.iter().find(|d| d.department == "world").unwrap();
        assert!(!world.ready);
        assert!(
            world
                .missing_items
                .iter()
                .any(|m| m.contains("rule of the world"))
        );
        let ch = r.iter().find(|d| d.department == "character").unwrap();
        assert_eq!(ch.score, 100);
        assert!(ch.ready);
    }

    #[tokio::test]
    async fn shot_plans_never_carry_more_than_three_references_per_layer() {
        let p = LocalPlanner;
        let chars: Vec<CharacterProfile> = (0..5)
            .map(|i| CharacterProfile {
                character_id: format!("c{i}"),
                name: format!("C{i}"),
                role: "x".into(),
                personality: String::new(),
                appearance: String::new(),
                background: String::new(),
                costume: String::new(),
                palette: vec![],
            })
            .collect();
        let g = gather();
        let chars0 = p.characters(&g).await.unwrap().value;
        let bible = p.story_bible(&g, &chars0).await.unwrap().value;
        let sp = p.screenplay(&g, &bible, &chars0).await.unwrap().value;
        let mut scene = p
            .breakdown(&sp, &bible, &chars0)
            .await
            .unwrap()
            .value
            .remove(0);
        scene.characters_present = chars.iter().map(|c| c.character_id.clone()).collect();
        let plan = p
            .shot_plan(
                &scene,
                &ShotContext {
                    characters: chars,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .value;
        assert!(plan.composite_steps.iter().all(|s| s.subjects.len() <= 3));
        assert_eq!(
            plan.composite_steps
                .iter()
                .filter(|s| s.kind == "characters")
                .count(),
            2
        );
    }
}
