//! Reading gather data as people write it: content first, field names only as hints.
//!
//! The gather namespace is "raw, exploratory, flexible, created as needed": any collection, any
//! field names, duplicates, contradictions, gaps. Offline, the local studio has to do with it what
//! a language model would, deterministically. The reader turns a [`GatherSnapshot`] into a
//! [`Reading`]: characters, places, props, scene ideas, world rules, style notes, a palette.
//!
//! How it decides, in order:
//! - **Collections** are classified by the words of their names (`raw_characters`, `cast`,
//!   `Places`, `shot_ideas`, ...). Anything else is read as notes.
//! - **Every string is text**, also inside arrays and objects. Field names help where they are
//!   recognisable (`name`, `location`, `time_of_day`, ...), but each string is also judged by
//!   what it says: a known character's name, a known place, a time of day, a sentence.
//! - **Notes** are read by their labels ("World rule: ...", "Tone: ...", "Scene 3: ...", a
//!   `{"kind": "title", "value": ...}` pair) and otherwise by their words (must/never/always make
//!   a rule; tone/mood/style/colours make a style note).
//! - **Duplicates merge** by name compared case- and space-insensitively. **Contradictions**
//!   follow one stated rule, [`LATER_WINS`], and each is noted so the story bible can show it.
//! - **Scene ideas** become units of action (sentences; long ones cut at clauses) and lines of
//!   dialogue (quotations with their speakers, or `{who, line}` pairs). A sentence that only
//!   repeats the others (a summary beside its beats) is dropped, by a rule that does not depend
//!   on field names or their order.
//!
//! (Over 600 lines on purpose: the reading of a snapshot in order (collections, treatments,
//! premises, ideas, then the passes that carry times, spellings and looks) is one procedure; its
//! vocabularies, entities, ideas, screenplays and looks are already rooms of their own, and issue
//! 24 plans the studio's own crate.)

mod doc;
mod entities;
mod ideas;
#[rustfmt::skip]
mod lexicon;
mod looks;
mod screenplay;
mod text;

pub use looks::{look_phrases, looks_of};
pub use screenplay::{heading as screenplay_heading, looks_like_screenplay};

pub use text::*;

use doc::*;
pub use entities::id_for;
use entities::*;
use ideas::*;
use lexicon::*;

use std::collections::BTreeSet;

use serde_json::Value;

use crate::model::GatherSnapshot;

/// The rule for contradictions, as the story bible states it.
pub const LATER_WINS: &str = "where gather documents disagree, the one read later wins (collections in alphabetical order, documents oldest first)";

/// What the reader made of a project's gather data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// The film's title, when the gather data names one.
    pub title: Option<String>,
    /// Credits a screenplay's title page gives ("Written by: …").
    pub credits: Vec<String>,
    /// A one-sentence premise, when the gather data gives one.
    pub logline: Option<String>,
    /// Where the premise says the film happens: the place of scene ideas that name none.
    pub premise_place: Option<String>,
    /// Characters, merged.
    pub characters: Vec<CharacterSketch>,
    /// Places, merged; places only scene ideas name are made (`made`).
    pub places: Vec<PlaceSketch>,
    /// Props, merged.
    pub props: Vec<PropSketch>,
    /// Scene ideas, in order.
    pub ideas: Vec<Idea>,
    /// World rules, with a category when one is given or evident.
    pub rules: Vec<(Option<String>, String)>,
    /// Tone, mood and style notes.
    pub style: Vec<String>,
    /// Colours given for the film as a whole (`#rrggbb`).
    pub palette: Vec<String>,
    /// Other story notes.
    pub notes: Vec<String>,
    /// Contradictions found, and how [`LATER_WINS`] resolved each.
    pub contradictions: Vec<String>,
}

/// A character as the gather data describes them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CharacterSketch {
    /// Stable id derived from the name.
    pub id: String,
    /// Name as first written.
    pub name: String,
    /// Role (protagonist, antagonist...).
    pub role: String,
    /// Personality.
    pub personality: String,
    /// How they look.
    pub appearance: String,
    /// Background.
    pub background: String,
    /// What they wear.
    pub costume: String,
    /// How they sound.
    pub voice: String,
    /// Their colour (`#rrggbb`), if given.
    pub color: Option<String>,
    /// Other character's name -> relation.
    pub relationships: Vec<(String, String)>,
    /// Only known from scene text (a speaker with no document).
    pub from_scenes: bool,
}

/// A place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlaceSketch {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Rules that hold there.
    pub rules: String,
    /// Colours (`#rrggbb`).
    pub palette: Vec<String>,
    /// Made for a scene idea that named a place no document describes.
    pub made: bool,
}

/// A prop.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PropSketch {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Colour (`#rrggbb`), if given.
    pub color: Option<String>,
}

/// A unit of a scene idea, in the order written.
#[derive(Debug, Clone, PartialEq)]
pub enum Unit {
    /// A piece of action (at most [`MAX_UNIT_WORDS`] words).
    Action(String),
    /// A line: speaker's character id, the words, and how it is said (a screenplay's
    /// parenthetical: "whispering", "to Tom").
    Line(String, String, Option<String>),
}

/// A scene idea.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Idea {
    /// Its title, if it has one.
    pub title: Option<String>,
    /// One sentence of what happens (the longest prose it has).
    pub summary: String,
    /// Where (a place name of [`Reading::places`]), if known.
    pub place: Option<String>,
    /// Whether the place was written in the idea (rather than carried over from the previous).
    pub place_given: bool,
    /// Time of day (the spec's values).
    pub time_of_day: String,
    /// Whether the idea itself says when (a heading's time, a time word in its text); else
    /// the time comes from the scene before at the same place, or the film's premise and
    /// setting notes.
    pub time_given: bool,
    /// Weather (the spec's values).
    pub weather: String,
    /// Action and dialogue, in order.
    pub units: Vec<Unit>,
    /// Character ids present.
    pub characters: Vec<String>,
    /// Prop names present.
    pub props: Vec<String>,
    /// Interior (`Some(true)`) or exterior, when a scene heading says (`INT.`, `EXT.`).
    pub interior: Option<bool>,
    /// How it begins, when a screenplay's transition says (the spec's values: `dissolve`...).
    pub transition_in: Option<String>,
    /// How it ends, when a screenplay's transition says.
    pub transition_out: Option<String>,
}

// --- what a collection holds -------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Character,
    Place,
    Prop,
    Scene,
    Note,
}

fn name_words(name: &str) -> Vec<String> {
    // raw_characters, RawCharacters, "scene ideas" -> words.
    let mut spaced = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_uppercase() && prev_lower {
            spaced.push(' ');
        }
        prev_lower = c.is_lowercase();
        spaced.push(if c.is_alphanumeric() { c } else { ' ' });
    }
    words(&spaced)
}

fn collection_kind(name: &str) -> Kind {
    let ws = name_words(name);
    let starts = |set: &[&str]| ws.iter().any(|w| set.iter().any(|s| w.starts_with(s)));
    if starts(&[
        "char", "cast", "people", "person", "persona", "actor", "hero", "villain", "creature",
        "who",
    ]) {
        Kind::Character
    } else if starts(&[
        "locat",
        "place",
        "setting",
        "venue",
        "site",
        "scenery",
        "environment",
        "backdrop",
        "where",
    ]) {
        Kind::Place
    } else if starts(&[
        "prop", "object", "item", "artifact", "artefact", "thing", "tool", "gear",
    ]) {
        Kind::Prop
    } else if starts(&[
        "scene", "idea", "beat", "shot", "moment", "sequence", "happen", "timeline",
    ]) {
        Kind::Scene
    } else if starts(&[
        "note",
        "input",
        "expansion",
        "thought",
        "memo",
        "misc",
        "rule",
        "style",
    ]) {
        Kind::Note
    } else if starts(&[
        "story",
        "plot",
        "outline",
        "chapter",
        "act",
        "episode",
        "event",
        "treatment",
    ]) {
        Kind::Scene
    } else {
        Kind::Note
    }
}

// --- labels in notes ----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Scene,
    Character,
    Place,
    Prop,
    Title,
    Logline,
    Rule,
    Style,
}

fn label_of_words(s: &str) -> Option<Label> {
    let ws = words(s);
    if ws.is_empty() || ws.len() > 4 {
        return None;
    }
    let any = |set: &[&str]| ws.iter().any(|w| set.contains(&w.as_str()));
    if any(&[
        "rule",
        "rules",
        "law",
        "laws",
        "world",
        "worldbuilding",
        "lore",
    ]) {
        Some(Label::Rule)
    } else if any(&[
        "tone",
        "mood",
        "style",
        "look",
        "palette",
        "colours",
        "colors",
        "colour",
        "color",
        "visual",
        "visuals",
        "aesthetic",
        "vibe",
    ]) {
        Some(Label::Style)
    } else if any(&["logline", "pitch", "premise", "synopsis", "summary", "log"]) {
        Some(Label::Logline)
    } else if any(&["title"]) {
        Some(Label::Title)
    } else if any(&[
        "scene", "idea", "shot", "beat", "opening", "ending", "finale", "moment", "climax",
        "prologue", "epilogue",
    ]) {
        Some(Label::Scene)
    } else if any(&["character", "cast", "who"]) {
        Some(Label::Character)
    } else if any(&["location", "place", "setting"]) {
        Some(Label::Place)
    } else if any(&["prop", "object", "item"]) {
        Some(Label::Prop)
    } else {
        None
    }
}

/// "World rule: the lamp ..." -> (Rule, "the lamp ...").
fn labelled(text: &str) -> Option<(Label, String)> {
    let (head, rest) = text.split_once(':')?;
    if rest.trim().is_empty() || head.contains(['"', '\u{201c}']) {
        return None;
    }
    // "Scene 3:" and "1. Opening:" carry numbers; label words decide.
    let l = label_of_words(head)?;
    Some((l, rest.trim().to_string()))
}

fn rule_category(text: &str) -> String {
    let ws = words(text);
    let has = |set: &[&str]| ws.iter().any(|w| set.contains(&w.as_str()));
    if let Some(c) = RULE_CATEGORIES.iter().find(|c| ws.contains(&c.to_string())) {
        return c.to_string();
    }
    if has(&[
        "magic",
        "spell",
        "spells",
        "curse",
        "cursed",
        "enchanted",
        "witch",
        "wizard",
        "ghost",
        "ghosts",
        "spirit",
        "spirits",
        "lantern's",
        "charm",
    ]) {
        "magic".into()
    } else if has(&[
        "machine", "machines", "engine", "robot", "robots", "device", "radio", "computer",
        "ship's", "power",
    ]) {
        "technology".into()
    } else if has(&[
        "gravity", "water", "fire", "tide", "tides", "sun", "cold", "heat",
    ]) {
        "physics".into()
    } else if has(&[
        "ago", "founded", "war", "ancient", "once", "years", "century",
    ]) {
        "history".into()
    } else {
        "society".into()
    }
}

// --- keys people use ----------------------------------------------------------------------------

/// The role a text names, as protagonist, antagonist, mentor or supporting.
pub fn canonical_role(text: &str) -> Option<String> {
    let r = first_of(text, ROLE_WORDS)?;
    Some(
        match r {
            "hero" | "heroine" | "lead" => "protagonist",
            "villain" | "rival" => "antagonist",
            "sidekick" | "ally" | "comic relief" | "minor" | "narrator" | "deuteragonist" => {
                "supporting"
            }
            other => other,
        }
        .to_string(),
    )
}

// --- the reader ---------------------------------------------------------------------------------

/// Take every screenplay out of `v` (a string of any document, at any depth, that reads as
/// one), leaving the rest to be read as usual.
fn take_screenplays(v: &mut Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if looks_like_screenplay(s) => {
            out.push(std::mem::take(s));
            *v = Value::Null;
        }
        Value::Array(a) => a.iter_mut().for_each(|x| take_screenplays(x, out)),
        Value::Object(m) => m.values_mut().for_each(|x| take_screenplays(x, out)),
        _ => {}
    }
}

/// What a section of a treatment holds, by its heading ("## Characters", "Scenes:").
fn section_kind(heading: &str) -> Option<Kind> {
    let h = heading
        .trim()
        .trim_start_matches('#')
        .trim()
        .trim_end_matches(':');
    match label_of_words(h) {
        Some(Label::Character) => Some(Kind::Character),
        Some(Label::Place) => Some(Kind::Place),
        Some(Label::Prop) => Some(Kind::Prop),
        Some(Label::Scene) => Some(Kind::Scene),
        Some(Label::Logline) => Some(Kind::Note),
        Some(Label::Rule) | Some(Label::Style) | Some(Label::Title) => Some(Kind::Note),
        None => {
            let ws = words(h);
            let any = |set: &[&str]| ws.iter().any(|w| set.contains(&w.as_str()));
            if any(&["scenes", "story", "plot", "outline", "beats", "sequence"]) {
                Some(Kind::Scene)
            } else if any(&["characters", "people", "cast"]) {
                Some(Kind::Character)
            } else if any(&[
                "setting",
                "world",
                "tone",
                "notes",
                "look",
                "places",
                "locations",
            ]) {
                Some(Kind::Note)
            } else {
                None
            }
        }
    }
}

/// A treatment: one text of paragraphs (a premise, characters, scenes, notes), as a person
/// writes a page about a film. Each paragraph is read as what its section holds: one
/// paragraph a character, a scene idea, a note. Returns `None` for a text that is not one.
fn treatment(text: &str) -> Option<Vec<(Kind, String)>> {
    let paragraphs: Vec<&str> = text
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if paragraphs.len() < 3 {
        return None;
    }
    let mut out = vec![];
    let mut kind: Option<Kind> = None;
    for p in paragraphs {
        let first = p.lines().next().unwrap_or("");
        let is_heading = first.starts_with('#')
            || (p.lines().count() == 1 && first.ends_with(':') && words(first).len() <= 4);
        if is_heading {
            kind = section_kind(first).or(kind);
            // A title heading ("# The Lost Dog") names the film.
            if first.starts_with("# ") && section_kind(first).is_none() {
                out.push((
                    Kind::Note,
                    format!("Title: {}", first.trim_start_matches('#').trim()),
                ));
            }
            let rest: Vec<&str> = p.lines().skip(1).collect();
            if !rest.is_empty() {
                out.push((kind.unwrap_or(Kind::Scene), rest.join(" ")));
            }
            continue;
        }
        out.push((kind.unwrap_or(Kind::Scene), p.replace('\n', " ")));
    }
    Some(out)
}

/// Read a project's gather data.
pub fn read(g: &GatherSnapshot) -> Reading {
    let (g, screenplays, treatments) = take_imports(g);
    let mut r = Reading::default();
    let mut docs = Sorted::default();
    for (kind, text) in &treatments {
        docs.file(&mut r, *kind, flatten(&Value::String(text.clone())));
    }
    for (coll, values) in &g.collections {
        let kind = collection_kind(coll);
        for v in values {
            let parts = match kind {
                Kind::Character => entities(v, NAME_KEYS),
                Kind::Place | Kind::Prop => entities(v, PLACE_NAME_KEYS),
                Kind::Scene => scene_entities(v),
                Kind::Note => vec![v.clone()],
            };
            for d in parts.iter().map(flatten).filter(|d| !d.leaves.is_empty()) {
                docs.file(&mut r, kind, d);
            }
        }
    }
    let Sorted {
        mut scene_docs,
        labelled_ideas,
        char_docs,
        place_docs,
        prop_docs,
    } = docs;
    for d in &char_docs {
        let c = character_from(d);
        merge_character(&mut r, c);
    }
    // A premise among the scene ideas or the notes is about the whole film: the logline and
    // the looks of the people it names, never a scene.
    let mut premises: Vec<String> = vec![];
    scene_docs.retain(|d| {
        let text: Vec<&str> = d.leaves.iter().map(|l| l.text.as_str()).collect();
        let text = text.join(" ");
        if is_premise(&text) {
            premises.push(text);
            false
        } else {
            true
        }
    });
    premises.extend(r.notes.iter().filter(|n| is_premise(n)).cloned());
    for d in &place_docs {
        merge_place(&mut r, place_from(d), false);
    }
    for d in &prop_docs {
        merge_prop(&mut r, prop_from(d));
    }
    let scene_text: Vec<String> = scene_docs
        .iter()
        .flat_map(|d| d.leaves.iter().map(|l| l.text.clone()))
        .chain(labelled_ideas.iter().cloned())
        .collect();
    for p in &premises {
        read_premise(&mut r, p, &scene_text.join("\n"));
    }
    relationships(&mut r, &char_docs);
    read_ideas(&mut r, scene_docs, labelled_ideas, &screenplays);
    carry_times(&mut r);
    spellings(&mut r, &g, &screenplays);
    // Notes, and rules ("Abel always wears his cap") describe people too.
    premises.extend(r.notes.iter().filter(|n| !is_premise(n)).cloned());
    premises.extend(r.rules.iter().map(|(_, t)| t.clone()));
    prose_looks(&mut r, &premises);
    dress(&mut r);
    if r.logline.is_none() {
        r.logline = r.ideas.first().map(|i| i.summary.clone());
    }
    // Colours of the style notes are the film's palette.
    for s in r.style.clone() {
        for c in colors_in(&s) {
            if !r.palette.contains(&c) {
                r.palette.push(c);
            }
        }
    }
    r
}

/// Imported screenplays and treatments, taken out of the gather data: the data without them
/// (the rest of such a document is its file name and format), the screenplays' texts, and the
/// treatments' paragraphs (a text of paragraphs under section headings) with their kinds.
fn take_imports(g: &GatherSnapshot) -> (GatherSnapshot, Vec<String>, Vec<(Kind, String)>) {
    let mut screenplays = vec![];
    let mut treatments: Vec<(Kind, String)> = vec![];
    let mut rest = g.clone();
    for docs in rest.collections.values_mut() {
        for d in docs.iter_mut() {
            let before = screenplays.len();
            take_screenplays(d, &mut screenplays);
            if screenplays.len() > before {
                *d = Value::Null;
                continue;
            }
            let mut texts = vec![];
            strings_of(d, &mut texts);
            let mut found = false;
            for t in texts {
                if let Some(parts) = treatment(&t) {
                    treatments.extend(parts);
                    found = true;
                }
            }
            if found {
                *d = Value::Null;
            }
        }
    }
    (rest, screenplays, treatments)
}

/// The gather data's documents sorted by what they describe.
#[derive(Default)]
struct Sorted {
    scene_docs: Vec<Doc>,
    labelled_ideas: Vec<String>,
    char_docs: Vec<Doc>,
    place_docs: Vec<Doc>,
    prop_docs: Vec<Doc>,
}

impl Sorted {
    fn file(&mut self, r: &mut Reading, kind: Kind, d: Doc) {
        match kind {
            Kind::Character => self.char_docs.push(d),
            Kind::Place => self.place_docs.push(d),
            Kind::Prop => self.prop_docs.push(d),
            Kind::Scene => self.scene_docs.push(d),
            Kind::Note => read_note(
                &d,
                r,
                &mut self.labelled_ideas,
                &mut self.char_docs,
                &mut self.place_docs,
            ),
        }
    }
}

/// Ideas: the screenplays' scenes, then scene collections in order (numbered ones by their
/// numbers), then labelled notes.
fn read_ideas(
    r: &mut Reading,
    mut scene_docs: Vec<Doc>,
    labelled_ideas: Vec<String>,
    screenplays: &[String],
) {
    if !scene_docs.is_empty() && scene_docs.iter().all(|d| d.order.is_some()) {
        scene_docs.sort_by(|a, b| {
            a.order
                .partial_cmp(&b.order)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    }
    for t in labelled_ideas {
        scene_docs.push(flatten(&Value::String(t)));
    }
    let mut prev: Option<Idea> = None;
    for text in screenplays {
        for idea in screenplay::read_screenplay(r, text, prev.as_ref()) {
            prev = Some(idea.clone());
            r.ideas.push(idea);
        }
    }
    // An idea that is only a fragment ("Dusk.") is no scene: it sets the time of the next.
    let mut carry: Option<Idea> = None;
    for d in &scene_docs {
        let mut idea = idea_from(r, d, carry.as_ref().or(prev.as_ref()));
        if carry.is_some() && !idea.units.is_empty() {
            // Its time came from the fragment before it ("Dusk."): said, not carried.
            idea.time_given = true;
        }
        if idea.units.is_empty() {
            if idea.time_of_day
                != prev
                    .as_ref()
                    .map(|p| p.time_of_day.clone())
                    .unwrap_or_default()
            {
                carry = Some(Idea {
                    place: prev.as_ref().and_then(|p| p.place.clone()),
                    ..idea
                });
            }
            continue;
        }
        carry = None;
        prev = Some(idea.clone());
        r.ideas.push(idea);
    }
}

/// How people begin a note about a whole film: a premise, a logline, a synopsis.
const PREMISE_OPENINGS: &[&str] = &[
    "this is the story of",
    "this is a story about",
    "this is a film about",
    "the story of",
    "a story about",
    "a story of",
    "a film about",
    "a short film about",
    "a tale of",
    "the film follows",
    "this film follows",
    "our film follows",
    "it is the story of",
    "it's the story of",
    "it's about",
    "it is about",
    "our story is about",
    "the story follows",
    "in this film",
    "logline:",
    "premise:",
    "synopsis:",
];

/// Whether a text is about the whole film rather than a moment of it.
fn is_premise(text: &str) -> bool {
    let t = text.trim().to_lowercase();
    PREMISE_OPENINGS.iter().any(|p| t.starts_with(p))
        || (t.contains(" is the story of ") && words(&t).len() >= 8)
}

/// Names written with a description in brackets: "Ada (9, green wellies)" -> ("Ada", "9, green
/// wellies"). One to three capitalised words right before the bracket.
pub(crate) fn named_with_looks(text: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut rest = text;
    while let Some(open) = rest.find('(') {
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        let inside = rest[open + 1..open + close].trim().to_string();
        let name: Vec<&str> = rest[..open]
            .split_whitespace()
            .rev()
            .take_while(|w| {
                w.chars().next().is_some_and(char::is_uppercase)
                    && w.chars()
                        .all(|c| c.is_alphabetic() || c == '\'' || c == '-')
            })
            .take(3)
            .collect();
        if !name.is_empty() && !inside.is_empty() {
            let name: Vec<&str> = name.into_iter().rev().collect();
            out.push((name.join(" "), inside));
        }
        rest = &rest[open + close + 1..];
    }
    out
}

/// Words before a capitalised word that make it a place or a thing, not a person ("on a
/// Yorkshire moor", "in Whitby", "the Ark").
const NOT_BEFORE_A_PERSON: &[&str] = &[
    "the", "a", "an", "in", "on", "at", "to", "from", "near", "into", "across", "through",
    "towards", "toward", "under", "over", "inside", "outside", "beyond", "past", "around", "via",
];

/// The capitalised names of a text that follow no article or preposition ("Ada Lovelace" as
/// one); with `openers`, also those that open a sentence (where every word is capitalised).
fn capitalised_names(text: &str, openers: bool) -> Vec<String> {
    let mut out = vec![];
    for sentence in sentences(text) {
        let ws = word_spans(&sentence);
        let mut i = usize::from(!openers);
        while i < ws.len() {
            let cap = |j: usize| {
                let w = &sentence[ws[j].0..ws[j].1];
                w.chars().next().is_some_and(char::is_uppercase)
                    && w.chars().skip(1).any(char::is_lowercase)
                    && !STOP.contains(&ws[j].2.as_str())
            };
            if cap(i) && (i == 0 || !NOT_BEFORE_A_PERSON.contains(&ws[i - 1].2.as_str())) {
                let mut j = i + 1;
                while j < ws.len()
                    && j - i < 3
                    && cap(j)
                    && sentence[ws[j - 1].1..ws[j].0].trim().is_empty()
                {
                    j += 1;
                }
                out.push(
                    sentence[ws[i].0..ws[j - 1].1]
                        .trim_end_matches("'s")
                        .to_string(),
                );
                i = j;
            } else {
                i += 1;
            }
        }
    }
    out
}

/// People a premise names in its prose ("the story of Wren ... and her grandfather Abel"): its
/// capitalised names ([`capitalised_names`]) that the scene ideas name the same way, and that
/// are no known place, time or vocabulary word.
fn premise_people(r: &Reading, text: &str, scenes: &str) -> Vec<String> {
    let in_scenes = capitalised_names(scenes, true);
    let mut out: Vec<String> = vec![];
    for name in capitalised_names(text, false) {
        let lower = name.to_lowercase();
        let vocabulary = TIMES.iter().any(|(t, _)| *t == lower)
            || PLACE_NOUNS.contains(&lower.as_str())
            || r.places.iter().any(|p| mentions(&p.name, &name))
            || r.props.iter().any(|p| mentions(&p.name, &name));
        if !vocabulary
            && in_scenes
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&name) || n.starts_with(&format!("{name} ")))
            && !out.contains(&name)
        {
            out.push(name);
        }
    }
    out
}

/// A premise: the film's logline, and the people it names with their looks.
fn read_premise(r: &mut Reading, text: &str, scenes: &str) {
    if r.logline.is_none() {
        r.logline = Some(clip(text.trim(), 300));
    }
    // Where it happens: a place the gather data describes, or the place the premise names.
    if r.premise_place.is_none() {
        r.premise_place = find_place(r, text).or_else(|| premise_place_of(r, text));
    }
    // A premise is the story of the people it names: the first is its lead, the others its
    // supporting cast, unless their own documents say otherwise.
    for (k, name) in premise_people(r, text, scenes).into_iter().enumerate() {
        merge_character(
            r,
            CharacterSketch {
                id: id_for(&name),
                name: name.clone(),
                ..Default::default()
            },
        );
        if let Some(c) = r.characters.iter_mut().find(|c| c.name == name)
            && c.role.is_empty()
        {
            c.role = if k == 0 { "protagonist" } else { "supporting" }.into();
        }
    }
    for (name, looks) in named_with_looks(text) {
        // "The story (2019)" is no one: a name has no digits and is not a stop word.
        if words(&name).iter().any(|w| STOP.contains(&w.as_str())) {
            continue;
        }
        merge_character(
            r,
            CharacterSketch {
                id: id_for(&name),
                name: name.clone(),
                appearance: looks,
                ..Default::default()
            },
        );
    }
}

/// Words of a text with their byte ranges (the same words as [`words`], possessives dropped).
fn word_spans(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = vec![];
    let mut start = None;
    let push = |s: usize, e: usize, out: &mut Vec<(usize, usize, String)>| {
        let w = text[s..e].trim_matches('\'').to_lowercase();
        let w = w.strip_suffix("'s").map(str::to_string).unwrap_or(w);
        if !w.is_empty() {
            out.push((s, e, w));
        }
    };
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() || c == '\'' {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            push(s, i, &mut out);
        }
    }
    if let Some(s) = start {
        push(s, text.len(), &mut out);
    }
    out
}

/// Facts about people written in a premise or a note ("Tom, twelve and freckled, in a yellow
/// raincoat"): each sentence is cut where a character is named, and what follows a name up to
/// the next name is read for looks ([`look_phrases`]), which join that character's appearance.
fn prose_looks(r: &mut Reading, texts: &[String]) {
    // A character is found by their whole name, or by their first name when no one else has it.
    let names: Vec<(usize, Vec<String>)> = r
        .characters
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            let full = words(&c.name);
            let first = full.first().cloned();
            let shared = r
                .characters
                .iter()
                .filter(|o| words(&o.name).first() == first.as_ref());
            let mut v = vec![(i, full.clone())];
            if full.len() > 1 && shared.count() == 1 {
                v.push((i, first.into_iter().collect()));
            }
            v
        })
        .filter(|(_, w)| !w.is_empty())
        .collect();
    for text in texts {
        for sentence in sentences(text) {
            let ws = word_spans(&sentence);
            let mut hits: Vec<(usize, usize, usize)> = vec![];
            let mut k = 0;
            while k < ws.len() {
                let found = names
                    .iter()
                    .filter(|(_, n)| {
                        ws.len() - k >= n.len() && n.iter().zip(&ws[k..]).all(|(a, b)| *a == b.2)
                    })
                    .max_by_key(|(_, n)| n.len());
                if let Some((who, n)) = found {
                    hits.push((ws[k].0, ws[k + n.len() - 1].1, *who));
                    k += n.len();
                } else {
                    k += 1;
                }
            }
            for (j, (_, end, who)) in hits.iter().enumerate() {
                let until = hits.get(j + 1).map(|h| h.0).unwrap_or(sentence.len());
                for phrase in look_phrases(&sentence[*end..until]) {
                    append(&mut r.characters[*who].appearance, &phrase);
                }
            }
        }
    }
}

/// A character's colour, when none was given, is the colour of what they wear on top (then any
/// colour their costume names).
fn dress(r: &mut Reading) {
    for c in r.characters.iter_mut() {
        if c.color.is_none() {
            let l = looks_of(&format!("{}; {}", c.appearance, c.costume));
            c.color = l.top.or_else(|| colors_in(&c.costume).first().cloned());
        }
    }
}

fn strings_of(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings_of(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings_of(x, out)),
        _ => {}
    }
}

/// Each character under the spelling of their name most used in the gather data ("ada" once,
/// "Ada" everywhere else: Ada); a tie goes to the capitalised one.
fn spellings(r: &mut Reading, g: &GatherSnapshot, screenplays: &[String]) {
    let mut texts: Vec<String> = screenplays.to_vec();
    for docs in g.collections.values() {
        for d in docs {
            strings_of(d, &mut texts);
        }
    }
    for c in r.characters.iter_mut() {
        let target = c.name.to_lowercase();
        let n = target.split_whitespace().count();
        if n == 0 {
            continue;
        }
        let mut counts: Vec<(String, usize)> = vec![];
        for t in &texts {
            let toks: Vec<&str> = t
                .split(|ch: char| !(ch.is_alphanumeric() || ch == '\'' || ch == '.'))
                .filter(|w| !w.is_empty())
                .map(|w| w.trim_end_matches('.'))
                .collect();
            for win in toks.windows(n) {
                let written = win.join(" ");
                if written.to_lowercase() == target {
                    match counts.iter_mut().find(|(w, _)| *w == written) {
                        Some((_, k)) => *k += 1,
                        None => counts.push((written, 1)),
                    }
                }
            }
        }
        // A screenplay's cues are capitals by convention, not a spelling: they count as the
        // name as people write it.
        counts.retain(|(w, _)| w.chars().any(char::is_lowercase) || w.len() <= 1);
        if let Some((best, _)) = counts.iter().max_by(|a, b| {
            a.1.cmp(&b.1).then_with(|| {
                let cap = |w: &str| w.chars().next().is_some_and(char::is_uppercase);
                cap(&a.0).cmp(&cap(&b.0))
            })
        }) {
            c.name = best.clone();
        }
    }
}

/// Words of a premise or setting note that put a whole film at night.
const NIGHT_WORDS: &[&str] = &[
    "midnight",
    "moon",
    "moonlight",
    "moonlit",
    "dark",
    "darkness",
    "lamplight",
    "starlight",
    "candlelight",
    "night",
    "nights",
    "nocturnal",
];

/// The time of day the premise and the setting notes give the whole film, if any.
fn film_time(r: &Reading) -> Option<&'static str> {
    let text: Vec<&str> = r
        .logline
        .iter()
        .map(String::as_str)
        .chain(r.notes.iter().map(String::as_str))
        .chain(r.style.iter().map(String::as_str))
        .chain(r.rules.iter().map(|(_, s)| s.as_str()))
        .collect();
    let all = text.join(" ");
    if words(&all)
        .iter()
        .any(|w| NIGHT_WORDS.contains(&w.as_str()))
    {
        return Some("night");
    }
    time_in(&all)
}

/// A scene that says no time of day takes it from the scene before at the same place, else
/// from the premise and setting notes, else from the scene before it.
fn carry_times(r: &mut Reading) {
    let film = film_time(r);
    for i in 0..r.ideas.len() {
        if r.ideas[i].time_given {
            continue;
        }
        let same_place = r.ideas[..i]
            .iter()
            .rev()
            .find(|p| p.place.is_some() && p.place == r.ideas[i].place)
            .map(|p| p.time_of_day.clone());
        let time = same_place
            .or_else(|| film.map(str::to_string))
            .or_else(|| i.checked_sub(1).map(|j| r.ideas[j].time_of_day.clone()));
        if let Some(t) = time {
            r.ideas[i].time_of_day = t;
        }
    }
}

/// A document may hold one entity or a list of them (`{"cast": [{...}, {...}]}`).
fn entities(v: &Value, name_keys: &[&str]) -> Vec<Value> {
    let Value::Object(m) = v else {
        return vec![v.clone()];
    };
    let top_named = m
        .iter()
        .any(|(k, x)| x.is_string() && key_in(&norm(k), name_keys));
    let elements: Vec<&Value> = m
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter(|x| x.is_object())
        .collect();
    if top_named || elements.len() < 2 {
        return vec![v.clone()];
    }
    elements.into_iter().cloned().collect()
}

/// A scene document may be one idea, or hold a list of them under `scenes`/`ideas`.
fn scene_entities(v: &Value) -> Vec<Value> {
    let Value::Object(m) = v else {
        return vec![v.clone()];
    };
    let lists: Vec<&Vec<Value>> = m
        .iter()
        .filter(|(k, _)| key_in(&norm(k), SCENE_LIST_KEYS))
        .filter_map(|(_, x)| x.as_array())
        .collect();
    let others = m
        .iter()
        .filter(|(k, _)| !SKIP_KEYS.contains(&norm(k).as_str()))
        .filter(|(k, _)| !key_in(&norm(k), SCENE_LIST_KEYS))
        .count();
    let items: Vec<Value> = lists.into_iter().flatten().cloned().collect();
    if items.len() >= 2 && others == 0 {
        return items;
    }
    vec![v.clone()]
}

fn read_note(
    d: &Doc,
    r: &mut Reading,
    ideas: &mut Vec<String>,
    char_docs: &mut Vec<Doc>,
    place_docs: &mut Vec<Doc>,
) {
    // A character or a place filed among the notes: a name and what describes one.
    let named = d
        .leaves
        .iter()
        .any(|l| l.keys.len() == 1 && l.key_is(&["name"]));
    let character_keys = d.leaves.iter().any(|l| {
        l.key_is(APPEARANCE_KEYS) && !l.key_is(&["description", "desc"])
            || l.key_is(PERSONALITY_KEYS)
            || l.key_is(COSTUME_KEYS)
            || l.key_is(&["role"])
    });
    if named && character_keys {
        char_docs.push(d.clone());
        return;
    }
    // A document-wide label: {"topic": "world", "text": ...}, {"kind": "title", "value": ...},
    // or a field named for what it holds ({"logline": ...}).
    let mut doc_label: Option<Label> = None;
    let mut category: Option<String> = None;
    let mut label_leaves = BTreeSet::new();
    for (i, l) in d.leaves.iter().enumerate() {
        let w = words(&l.text);
        if w.len() <= 3 && !is_prose(&l.text) {
            if RULE_CATEGORIES.contains(&l.text.to_lowercase().as_str()) {
                category = Some(l.text.to_lowercase());
                label_leaves.insert(i);
                continue;
            }
            if d.leaves.len() > 1
                && let Some(lb) = label_of_words(&l.text)
                && l.key_is(&[
                    "topic", "kind", "type", "category", "about", "label", "tag", "section", "key",
                    "field",
                ])
            {
                doc_label.get_or_insert(lb);
                label_leaves.insert(i);
            }
        }
    }
    for (i, l) in d.leaves.iter().enumerate() {
        if label_leaves.contains(&i) {
            continue;
        }
        let key_label = label_of_words(l.key()).filter(|_| !l.key_is(&["note", "notes", "text"]));
        let (label, body) = match labelled(&l.text) {
            Some((lb, rest)) => (Some(lb), rest),
            None => (doc_label.or(key_label), l.text.clone()),
        };
        match label {
            Some(Label::Title) => {
                r.title.get_or_insert(body);
            }
            Some(Label::Logline) => {
                r.logline.get_or_insert(body);
            }
            Some(Label::Rule) => {
                for s in sentences(&body) {
                    let cat = category.clone().filter(|_| true);
                    r.rules.push((cat.or_else(|| Some(rule_category(&s))), s));
                }
            }
            Some(Label::Style) => {
                r.style.push(body.clone());
                for c in colors_in(&body) {
                    if !r.palette.contains(&c) {
                        r.palette.push(c);
                    }
                }
            }
            Some(Label::Scene) => ideas.push(body),
            Some(Label::Character) => char_docs.push(flatten(&Value::String(body))),
            Some(Label::Place) => place_docs.push(flatten(&Value::String(body))),
            Some(Label::Prop) => {
                let d = flatten(&Value::String(body));
                let p = prop_from(&d);
                merge_prop(r, p);
            }
            None => {
                // Unlabelled free text: judged sentence by sentence.
                for s in sentences(&l.text) {
                    let colours = !hex_codes(&s).is_empty();
                    if has_any(&s, RULE_WORDS) && !has_any(&s, &["tone", "mood", "style"]) {
                        r.rules.push((Some(rule_category(&s)), s));
                    } else if colours || has_any(&s, STYLE_WORDS) {
                        r.style.push(s);
                    } else if is_prose(&s) {
                        r.notes.push(s);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
