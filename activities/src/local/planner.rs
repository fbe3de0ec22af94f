//! The local planner: in place of the language model, deterministic rules over the gather data.
//!
//! Same input, same output: a screenplay from the raw scenes, a story bible from the notes and
//! characters, a style guide, readiness scores, and a breakdown into 3-7 second scenes with
//! dramatic effect, camera and lighting chosen from what each beat says.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde_json::Value;

use crate::error::Result;
use crate::local::render::color_for;
use crate::model::*;
use crate::traits::{Paid, Planner, ShotContext};

/// The deterministic planner.
#[derive(Debug, Clone, Default)]
pub struct LocalPlanner;

fn s(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(|x| x.as_str())
        .map(|x| x.trim().to_string())
        .unwrap_or_default()
}

fn list(v: &Value, k: &str) -> Vec<String> {
    match v.get(k) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(|s| s.trim().to_string()))
            .filter(|x| !x.is_empty())
            .collect(),
        Some(Value::String(x)) if !x.trim().is_empty() => vec![x.trim().to_string()],
        _ => vec![],
    }
}

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

fn character_id(doc: &Value) -> String {
    let id = s(doc, "id");
    if id.is_empty() {
        slugify(&s(doc, "name"))
    } else {
        id
    }
}

fn user_input(g: &GatherSnapshot, kind: &str) -> Option<Value> {
    g.docs("user_inputs")
        .iter()
        .find(|d| s(d, "kind") == kind)
        .and_then(|d| d.get("value").cloned())
}

fn notes(g: &GatherSnapshot, topic: &str) -> Vec<Value> {
    g.docs("raw_notes")
        .iter()
        .chain(g.docs("ai_expansions"))
        .filter(|d| s(d, "topic") == topic)
        .cloned()
        .collect()
}

fn time_of_day(v: &str) -> String {
    let v = v.to_ascii_lowercase();
    options::TIME_OF_DAY
        .iter()
        .find(|t| v.contains(*t))
        .map(|t| t.to_string())
        .unwrap_or_else(|| "afternoon".into())
}

fn weather(v: &str) -> String {
    let v = v.to_ascii_lowercase();
    options::WEATHER
        .iter()
        .find(|t| v.contains(*t))
        .map(|t| t.to_string())
        .unwrap_or_else(|| "clear".into())
}

const ACTION_WORDS: &[&str] = &[
    "run", "runs", "chase", "chases", "strike", "strikes", "jump", "jumps", "fight", "fights",
    "escape", "escapes", "grab", "grabs", "race", "races", "leap", "leaps", "falls", "flee",
];
const REVEAL_WORDS: &[&str] = &[
    "reveal",
    "reveals",
    "discover",
    "discovers",
    "finds",
    "sees",
    "notices",
    "opens",
];

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect()
}

fn has_any(text: &str, set: &[&str]) -> bool {
    words(text).iter().any(|w| set.contains(&w.as_str()))
}

fn duration_for(text: &str) -> f64 {
    // About three words a second of screen time, kept inside 3-7 s, in half seconds.
    let n = words(text).len() as f64;
    let d = (2.5 + n * 0.28).clamp(MIN_SCENE_SECONDS, MAX_SCENE_SECONDS);
    (d * 2.0).round() / 2.0
}

fn mentions(text: &str, name: &str) -> bool {
    let t = text.to_ascii_lowercase();
    let n = name.to_ascii_lowercase();
    !n.is_empty() && t.contains(&n)
}

impl LocalPlanner {
    fn profiles(g: &GatherSnapshot) -> Vec<CharacterProfile> {
        g.docs("raw_characters")
            .iter()
            .filter(|d| !s(d, "name").is_empty())
            .map(|d| {
                let name = s(d, "name");
                let color = s(d, "color");
                CharacterProfile {
                    character_id: character_id(d),
                    role: Some(s(d, "role"))
                        .filter(|r| !r.is_empty())
                        .unwrap_or_else(|| "supporting".into()),
                    personality: s(d, "personality"),
                    appearance: s(d, "appearance"),
                    background: s(d, "background"),
                    costume: s(d, "costume"),
                    palette: vec![if color.is_empty() {
                        color_for(&name)
                    } else {
                        color
                    }],
                    name,
                }
            })
            .collect()
    }

    /// Resolve a name or id from the gather data to a character id.
    fn resolve(chars: &[CharacterProfile], who: &str) -> Option<String> {
        let w = who.trim().to_ascii_lowercase();
        chars
            .iter()
            .find(|c| c.character_id.to_ascii_lowercase() == w || c.name.to_ascii_lowercase() == w)
            .map(|c| c.character_id.clone())
    }
}

#[async_trait]
impl Planner for LocalPlanner {
    fn name(&self) -> &'static str {
        "local planner"
    }

    async fn readiness(&self, g: &GatherSnapshot) -> Result<Paid<Vec<DepartmentReadiness>>> {
        let score = |parts: &[(bool, u8, String)]| {
            let total: u32 = parts.iter().map(|(_, w, _)| *w as u32).sum();
            let got: u32 = parts
                .iter()
                .filter(|(ok, _, _)| *ok)
                .map(|(_, w, _)| *w as u32)
                .sum();
            let missing = parts
                .iter()
                .filter(|(ok, _, _)| !ok)
                .map(|(_, _, m)| m.clone())
                .collect::<Vec<_>>();
            (((got * 100) / total.max(1)) as u8, missing)
        };
        let chars = g.docs("raw_characters");
        let scenes = g.docs("raw_scenes");
        let locations = g.docs("raw_locations");
        let props = g.docs("raw_props");
        let mut out = vec![];

        let mut parts = vec![(!chars.is_empty(), 4, "at least one character".to_string())];
        for c in chars {
            let n = s(c, "name");
            let label = if n.is_empty() {
                "a character".to_string()
            } else {
                n.clone()
            };
            parts.push((!n.is_empty(), 1, format!("{label}: name")));
            for f in ["role", "personality", "appearance"] {
                parts.push((!s(c, f).is_empty(), 1, format!("{label}: {f}")));
            }
        }
        out.push(("character", score(&parts)));

        let parts = vec![
            (
                !locations.is_empty(),
                40,
                "at least one location".to_string(),
            ),
            (
                !notes(g, "world").is_empty(),
                30,
                "world rules (raw_notes with topic `world`)".to_string(),
            ),
            (
                user_input(g, "logline").is_some() || !scenes.is_empty(),
                30,
                "a logline (user_inputs kind `logline`)".to_string(),
            ),
        ];
        out.push(("world", score(&parts)));

        let has_palette = user_input(g, "palette").is_some()
            || locations.iter().any(|l| !list(l, "palette").is_empty());
        let parts = vec![
            (
                !notes(g, "style").is_empty() || user_input(g, "style").is_some(),
                50,
                "a style note (raw_notes with topic `style`)".to_string(),
            ),
            (has_palette, 50, "a colour palette".to_string()),
        ];
        out.push(("visual", score(&parts)));

        let mut parts = vec![];
        for i in 0..3 {
            parts.push((scenes.len() > i, 20, format!("scene idea {}", i + 1)));
        }
        let complete = scenes
            .iter()
            .filter(|sc| !s(sc, "summary").is_empty() && !s(sc, "location").is_empty())
            .count();
        parts.push((
            !scenes.is_empty() && complete == scenes.len(),
            40,
            "every scene idea with a summary and a location".to_string(),
        ));
        out.push(("story", score(&parts)));

        let known: BTreeSet<String> = locations
            .iter()
            .map(|l| s(l, "name").to_lowercase())
            .collect();
        let unknown: Vec<String> = scenes
            .iter()
            .map(|sc| s(sc, "location"))
            .filter(|l| !l.is_empty() && !known.contains(&l.to_lowercase()))
            .collect();
        let parts = vec![
            (!props.is_empty(), 50, "at least one prop".to_string()),
            (
                unknown.is_empty(),
                50,
                format!("locations described for: {}", unknown.join(", ")),
            ),
        ];
        out.push(("production", score(&parts)));

        let lines = scenes
            .iter()
            .map(|sc| {
                sc.get("dialogue")
                    .and_then(|d| d.as_array())
                    .map_or(0, |a| a.len())
            })
            .sum::<usize>();
        let voiced = chars.iter().filter(|c| !s(c, "voice").is_empty()).count();
        let parts = vec![
            (lines > 0, 50, "at least one line of dialogue".to_string()),
            (
                !chars.is_empty() && voiced == chars.len(),
                50,
                "a voice note for every character".to_string(),
            ),
        ];
        out.push(("audio", score(&parts)));

        Ok(Paid::free(
            out.into_iter()
                .map(|(d, (score, missing_items))| DepartmentReadiness {
                    department: d.to_string(),
                    ready: score >= READY_SCORE,
                    score,
                    missing_items,
                })
                .collect(),
        ))
    }

    async fn characters(&self, g: &GatherSnapshot) -> Result<Paid<Vec<CharacterProfile>>> {
        Ok(Paid::free(Self::profiles(g)))
    }

    async fn story_bible(
        &self,
        g: &GatherSnapshot,
        characters: &[CharacterProfile],
    ) -> Result<Paid<StoryBible>> {
        // The world department runs beside the character department: without qualified
        // profiles yet, it reads the raw ones.
        let derived;
        let characters = if characters.is_empty() {
            derived = Self::profiles(g);
            &derived[..]
        } else {
            characters
        };
        let title = user_input(g, "title")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| g.title.clone());
        let logline = user_input(g, "logline")
            .and_then(|v| v.as_str().map(str::to_string))
            .or_else(|| g.docs("raw_scenes").first().map(|sc| s(sc, "summary")))
            .unwrap_or_default();
        let world_rules = notes(g, "world")
            .iter()
            .map(|n| WorldRule {
                rule_category: Some(s(n, "category"))
                    .filter(|c| {
                        ["physics", "magic", "technology", "society", "history"]
                            .contains(&c.as_str())
                    })
                    .unwrap_or_else(|| "society".into()),
                rule_description: s(n, "text"),
            })
            .collect();
        let mut relationships: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for d in g.docs("raw_characters") {
            let Some(Value::Object(rel)) = d.get("relationships") else {
                continue;
            };
            let me = character_id(d);
            for (other, what) in rel {
                if let (Some(o), Some(w)) = (Self::resolve(characters, other), what.as_str()) {
                    relationships
                        .entry(me.clone())
                        .or_default()
                        .insert(o, w.to_string());
                }
            }
        }
        let timeline = g
            .docs("raw_scenes")
            .iter()
            .enumerate()
            .map(|(i, sc)| TimelineEvent {
                event: Some(s(sc, "title"))
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| format!("Scene idea {}", i + 1)),
                timestamp: format!("act {}", i * 3 / g.docs("raw_scenes").len().max(1) + 1),
                description: s(sc, "summary"),
            })
            .collect();
        let mut consistency_rules: Vec<ConsistencyRule> = characters
            .iter()
            .map(|c| ConsistencyRule {
                rule: format!(
                    "{} always appears as: {}{}",
                    c.name,
                    c.appearance,
                    if c.costume.is_empty() {
                        String::new()
                    } else {
                        format!("; costume: {}", c.costume)
                    }
                ),
                priority: "critical".into(),
            })
            .collect();
        consistency_rules.extend(notes(g, "world").iter().map(|n| ConsistencyRule {
            rule: s(n, "text"),
            priority: "high".into(),
        }));
        let locations = g
            .docs("raw_locations")
            .iter()
            .map(|l| BibleLocation {
                location_name: s(l, "name"),
                location_description: s(l, "description"),
                location_rules: s(l, "rules"),
            })
            .collect();
        Ok(Paid::free(StoryBible {
            title,
            logline,
            world_rules,
            character_relationships: relationships,
            timeline,
            consistency_rules,
            locations,
        }))
    }

    async fn style_guide(&self, g: &GatherSnapshot) -> Result<Paid<StyleGuide>> {
        let style_text = notes(g, "style")
            .iter()
            .map(|n| s(n, "text"))
            .chain(user_input(g, "style").and_then(|v| v.as_str().map(str::to_string)))
            .collect::<Vec<_>>()
            .join(" ");
        let mut palette: Vec<String> = match user_input(g, "palette") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        };
        if palette.is_empty() {
            palette = g
                .docs("raw_locations")
                .iter()
                .flat_map(|l| list(l, "palette"))
                .take(5)
                .collect();
        }
        if palette.is_empty() {
            palette = vec![color_for(&g.title), color_for(&format!("{}-2", g.title))];
        }
        Ok(Paid::free(StyleGuide {
            palette,
            mood: if style_text.is_empty() {
                "grounded, warm, hopeful".into()
            } else {
                style_text.clone()
            },
            lighting: if has_any(&style_text, &["noir", "shadow", "shadows", "dark"]) {
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
        let mut sequences = vec![];
        let mut content = String::new();
        for sc in g.docs("raw_scenes") {
            let location = s(sc, "location");
            let tod = time_of_day(&s(sc, "time_of_day"));
            let mut action = list(sc, "beats");
            if action.is_empty() {
                action = s(sc, "summary")
                    .split(". ")
                    .map(|x| x.trim().trim_end_matches('.').to_string())
                    .filter(|x| !x.is_empty())
                    .map(|x| format!("{x}."))
                    .collect();
            }
            let dialogue: Vec<DialogueLine> = sc
                .get("dialogue")
                .and_then(|d| d.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|l| {
                            Some(DialogueLine {
                                character: Self::resolve(characters, &s(l, "character"))?,
                                line: s(l, "line"),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut present: Vec<String> = list(sc, "characters")
                .iter()
                .filter_map(|c| Self::resolve(characters, c))
                .collect();
            for d in &dialogue {
                if !present.contains(&d.character) {
                    present.push(d.character.clone());
                }
            }
            let heading = format!(
                "{}. {} - {}",
                if has_any(
                    &location,
                    &[
                        "street", "market", "roof", "rooftop", "harbor", "square", "bridge",
                        "field"
                    ]
                ) {
                    "EXT"
                } else {
                    "INT"
                },
                location.to_uppercase(),
                tod.to_uppercase()
            );
            content.push_str(&heading);
            content.push_str("\n\n");
            for a in &action {
                content.push_str(a);
                content.push('\n');
            }
            for d in &dialogue {
                let name = characters
                    .iter()
                    .find(|c| c.character_id == d.character)
                    .map(|c| c.name.to_uppercase())
                    .unwrap_or_default();
                content.push_str(&format!("\n{name}\n{}\n", d.line));
            }
            content.push('\n');
            sequences.push(Sequence {
                heading,
                location,
                time_of_day: tod,
                action,
                dialogue,
                characters: present,
                props: list(sc, "props"),
            });
        }
        Ok(Paid::free(Screenplay {
            title: g.title.clone(),
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
        enum Unit<'a> {
            Action(&'a str),
            Line(&'a DialogueLine),
        }
        let mut scenes = vec![];
        let total_sequences = screenplay.sequences.len();
        for (si, seq) in screenplay.sequences.iter().enumerate() {
            // Action first, then the dialogue interleaved after the first beat.
            let mut units: Vec<Unit<'_>> = vec![];
            let mut lines = seq.dialogue.iter();
            for (i, a) in seq.action.iter().enumerate() {
                units.push(Unit::Action(a));
                if i == 0 {
                    for l in lines.by_ref() {
                        units.push(Unit::Line(l));
                    }
                }
            }
            for l in lines {
                units.push(Unit::Line(l));
            }
            let n = units.len();
            for (ui, unit) in units.into_iter().enumerate() {
                let number = scenes.len() as i32 + 1;
                let first_of_film = si == 0 && ui == 0;
                let last_of_film = si + 1 == total_sequences && ui + 1 == n;
                let (text, who): (String, Vec<String>) = match &unit {
                    Unit::Action(a) => {
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
                    Unit::Line(l) => {
                        let name = characters
                            .iter()
                            .find(|c| c.character_id == l.character)
                            .map(|c| c.name.clone())
                            .unwrap_or_default();
                        (format!("{name}: \"{}\"", l.line), vec![l.character.clone()])
                    }
                };
                let action = matches!(unit, Unit::Action(_)) && has_any(&text, ACTION_WORDS);
                let reveal = has_any(&text, REVEAL_WORDS);
                let dialogue_unit = matches!(unit, Unit::Line(_));
                let (shot, movement, angle) = if ui == 0 {
                    (
                        "wide",
                        if si % 2 == 0 { "pan" } else { "static" },
                        "eye_level",
                    )
                } else if dialogue_unit {
                    (
                        "close_up",
                        if ui % 2 == 0 { "dolly" } else { "static" },
                        "eye_level",
                    )
                } else if action {
                    ("medium", "tracking", "low_angle")
                } else if reveal {
                    ("medium", "zoom", "high_angle")
                } else {
                    (
                        "medium",
                        if ui % 2 == 0 { "tilt" } else { "pan" },
                        "eye_level",
                    )
                };
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
                    .filter(|p| ui == 0 || mentions(&text, p))
                    .cloned()
                    .collect();
                scenes.push(SceneBreakdown {
                    scene_number: number,
                    sequence_number: number,
                    screenplay_text: text.clone(),
                    expected_duration: duration_for(&text),
                    dramatic_effect: dramatic_effect.into(),
                    location: seq.location.clone(),
                    time_of_day: seq.time_of_day.clone(),
                    weather: weather(&seq.heading),
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
                        Unit::Line(l) => vec![l.clone()],
                        Unit::Action(_) => vec![],
                    },
                    transition_in: if first_of_film {
                        "fade_in"
                    } else if ui == 0 {
                        "dissolve"
                    } else {
                        "cut"
                    }
                    .into(),
                    transition_out: if last_of_film { "fade_out" } else { "cut" }.into(),
                });
            }
        }
        Ok(Paid::free(scenes))
    }

    async fn locations(
        &self,
        g: &GatherSnapshot,
        bible: &StoryBible,
    ) -> Result<Paid<Vec<LocationDetail>>> {
        let mut out: Vec<LocationDetail> = g
            .docs("raw_locations")
            .iter()
            .map(|l| {
                let name = s(l, "name");
                let mut palette = list(l, "palette");
                if palette.is_empty() {
                    palette = vec![color_for(&name), color_for(&format!("{name}/far"))];
                }
                LocationDetail {
                    description: s(l, "description"),
                    rules: s(l, "rules"),
                    palette,
                    name,
                }
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
                    palette: vec![color_for(&b.location_name)],
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
        let mut out: Vec<PropItem> = g
            .docs("raw_props")
            .iter()
            .map(|p| {
                let name = s(p, "name");
                let color = s(p, "color");
                PropItem {
                    description: s(p, "description"),
                    color: if color.is_empty() {
                        color_for(&name)
                    } else {
                        color
                    },
                    name,
                }
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
                .any(|m| m.contains("world rules"))
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
