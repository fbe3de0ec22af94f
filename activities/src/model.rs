//! The film vocabulary exchanged with providers: what a planner, a renderer, a vision check or a
//! video model is asked and answers. The option lists are the spec's (Scenes collection).
//!
//! (Over 600 lines on purpose: data types only, the vocabulary of every activity trait.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::blob::BlobRef;

/// Values a scene field may take, from the spec's Scenes collection.
pub mod options {
    /// `time_of_day`.
    pub const TIME_OF_DAY: &[&str] = &[
        "dawn",
        "morning",
        "afternoon",
        "evening",
        "night",
        "twilight",
    ];
    /// `weather`.
    pub const WEATHER: &[&str] = &["clear", "cloudy", "rainy", "stormy", "snowy", "foggy"];
    /// `camera_angle`.
    pub const CAMERA_ANGLE: &[&str] = &[
        "eye_level",
        "high_angle",
        "low_angle",
        "dutch_angle",
        "birds_eye",
        "worms_eye",
    ];
    /// `camera_shot`.
    pub const CAMERA_SHOT: &[&str] = &[
        "extreme_wide",
        "wide",
        "medium",
        "close_up",
        "extreme_close_up",
        "over_shoulder",
    ];
    /// `camera_movement`.
    pub const CAMERA_MOVEMENT: &[&str] = &["static", "pan", "tilt", "zoom", "dolly", "tracking"];
    /// `lighting_type`.
    pub const LIGHTING_TYPE: &[&str] = &[
        "natural",
        "dramatic",
        "soft",
        "hard",
        "backlit",
        "silhouette",
    ];
    /// `transition_in`.
    pub const TRANSITION_IN: &[&str] = &["cut", "fade_in", "dissolve", "wipe"];
    /// `transition_out`.
    pub const TRANSITION_OUT: &[&str] = &["cut", "fade_out", "dissolve", "wipe"];
    /// Pacing of a shot.
    pub const PACING: &[&str] = &["fast", "medium", "slow"];
    /// The six views of a 360-degree character sheet.
    pub const ANGLES: &[&str] = &[
        "front",
        "back",
        "left_side",
        "right_side",
        "three_quarter_left",
        "three_quarter_right",
    ];
    /// Departments whose readiness is scored.
    pub const DEPARTMENTS: &[&str] = &[
        "character",
        "world",
        "visual",
        "story",
        "production",
        "audio",
    ];

    /// `Ok` if `v` is one of `allowed`, else a message that lists them.
    pub fn check(field: &str, v: &str, allowed: &[&str]) -> Result<(), String> {
        if allowed.contains(&v) {
            Ok(())
        } else {
            Err(format!(
                "{field} `{v}` is not one of: {}",
                allowed.join(", ")
            ))
        }
    }
}

/// Scene length bounds, seconds.
pub const MIN_SCENE_SECONDS: f64 = 3.0;
/// Scene length bounds, seconds.
pub const MAX_SCENE_SECONDS: f64 = 7.0;
/// References allowed in one image request (our rule, not the provider's).
pub const MAX_REFERENCES: usize = 3;

/// The raw gather data of a project, by collection (`raw_characters`, `raw_scenes`, ...).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct GatherSnapshot {
    /// Project slug.
    pub project: String,
    /// Project title.
    pub title: String,
    /// Documents per collection.
    pub collections: BTreeMap<String, Vec<Value>>,
}

impl GatherSnapshot {
    /// Documents of a collection (empty if absent).
    pub fn docs(&self, collection: &str) -> &[Value] {
        self.collections
            .get(collection)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// A department's readiness score.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct DepartmentReadiness {
    /// Department slug.
    pub department: String,
    /// 0-100.
    pub score: u8,
    /// `score >= 75`.
    pub ready: bool,
    /// What is missing to be ready.
    pub missing_items: Vec<String>,
}

/// The threshold at which a department is ready.
pub const READY_SCORE: u8 = 75;

/// A qualified character.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CharacterProfile {
    /// Stable id (from the gather document, or derived from the name).
    pub character_id: String,
    /// Name.
    pub name: String,
    /// Role (protagonist, antagonist...).
    pub role: String,
    /// Personality.
    pub personality: String,
    /// Appearance.
    pub appearance: String,
    /// Background.
    pub background: String,
    /// Costume.
    pub costume: String,
    /// Signature colours (`#rrggbb`).
    pub palette: Vec<String>,
}

/// A world rule of the story bible.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct WorldRule {
    /// physics, magic, technology, society or history.
    #[schema(pattern = "^(physics|magic|technology|society|history)$")]
    pub rule_category: String,
    /// The rule.
    pub rule_description: String,
}

/// An event of the story's timeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TimelineEvent {
    /// What.
    pub event: String,
    /// When (free text).
    pub timestamp: String,
    /// Details.
    pub description: String,
}

/// A consistency rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ConsistencyRule {
    /// The rule.
    pub rule: String,
    /// critical, high, medium or low.
    #[schema(pattern = "^(critical|high|medium|low)$")]
    pub priority: String,
}

/// A location as the story bible knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct BibleLocation {
    /// Name.
    pub location_name: String,
    /// Description.
    pub location_description: String,
    /// Rules that hold there.
    pub location_rules: String,
}

/// The story bible (world department).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct StoryBible {
    /// Title.
    #[schema(min_length = 1, pattern = r"[^\s\u0085]")]
    pub title: String,
    /// One-sentence summary.
    pub logline: String,
    /// World rules.
    pub world_rules: Vec<WorldRule>,
    /// Relationship matrix: character id -> other id -> relation.
    pub character_relationships: BTreeMap<String, BTreeMap<String, String>>,
    /// Timeline.
    pub timeline: Vec<TimelineEvent>,
    /// Consistency rules.
    pub consistency_rules: Vec<ConsistencyRule>,
    /// Locations.
    pub locations: Vec<BibleLocation>,
    /// Contradictions in the gather data and how each was resolved (absent in bibles written
    /// before this field existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_contradictions: Vec<String>,
}

/// The visual department's style guide (`visual_guidelines`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct StyleGuide {
    /// Colours (`#rrggbb`).
    pub palette: Vec<String>,
    /// Mood.
    pub mood: String,
    /// Lighting approach.
    pub lighting: String,
    /// Camera language.
    pub camera_language: String,
    /// Frame shape.
    pub aspect_ratio: String,
    /// Things to avoid.
    pub negative_prompt: String,
}

/// A line of dialogue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct DialogueLine {
    /// Character id.
    pub character: String,
    /// The line.
    pub line: String,
    /// How it is said, as a screenplay's parenthetical gives it ("whispering").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parenthetical: Option<String>,
}

/// The screenplay (story department).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Screenplay {
    /// Title.
    pub title: String,
    /// The screenplay text.
    pub content: String,
    /// Its sequences, in order (each becomes one or more 3-7 s scenes).
    pub sequences: Vec<Sequence>,
}

/// A sequence of the screenplay.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Sequence {
    /// Heading (INT. WAREHOUSE - NIGHT).
    pub heading: String,
    /// Location name.
    pub location: String,
    /// Time of day (one of the spec's values).
    pub time_of_day: String,
    /// Action lines.
    pub action: Vec<String>,
    /// Dialogue.
    pub dialogue: Vec<DialogueLine>,
    /// Character ids present.
    pub characters: Vec<String>,
    /// Props present.
    pub props: Vec<String>,
    /// Weather (one of the spec's values); absent in screenplays written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weather: Option<String>,
    /// For each line of `dialogue`, how many action lines come before it, so lines found inside
    /// the action keep their place. Empty: every line follows the first action line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub line_positions: Vec<usize>,
    /// How the sequence begins, when the screenplay's transition says (`dissolve`, `fade_in`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_in: Option<String>,
    /// How it ends, when the screenplay says (`fade_out`, `dissolve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_out: Option<String>,
}

/// A scene of the breakdown: 3-7 seconds, with what the shot needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SceneBreakdown {
    /// Scene number in the screenplay.
    pub scene_number: i32,
    /// Order in the film.
    pub sequence_number: i32,
    /// Screenplay text of this scene.
    pub screenplay_text: String,
    /// 3-7 seconds.
    pub expected_duration: f64,
    /// Intended emotion or impact.
    pub dramatic_effect: String,
    /// Location name.
    pub location: String,
    /// Time of day.
    pub time_of_day: String,
    /// Weather.
    pub weather: String,
    /// Camera angle.
    pub camera_angle: String,
    /// Camera shot.
    pub camera_shot: String,
    /// Camera movement.
    pub camera_movement: String,
    /// Lighting type.
    pub lighting_type: String,
    /// Lighting mood.
    pub lighting_mood: String,
    /// fast, medium or slow.
    pub pacing: String,
    /// Character ids present.
    pub characters_present: Vec<String>,
    /// Props present.
    pub props: Vec<String>,
    /// Dialogue.
    pub dialogue: Vec<DialogueLine>,
    /// Transition in.
    pub transition_in: String,
    /// Transition out.
    pub transition_out: String,
}

impl SceneBreakdown {
    /// Check the spec's rules: 3-7 s, option lists.
    pub fn validate(&self) -> Result<(), String> {
        use options::*;
        if !(MIN_SCENE_SECONDS..=MAX_SCENE_SECONDS).contains(&self.expected_duration) {
            return Err(format!(
                "scene {}: expected_duration {} is outside 3-7 seconds",
                self.scene_number, self.expected_duration
            ));
        }
        let s = self.scene_number;
        let f = |e: String| format!("scene {s}: {e}");
        check("time_of_day", &self.time_of_day, TIME_OF_DAY).map_err(f)?;
        check("weather", &self.weather, WEATHER).map_err(f)?;
        check("camera_angle", &self.camera_angle, CAMERA_ANGLE).map_err(f)?;
        check("camera_shot", &self.camera_shot, CAMERA_SHOT).map_err(f)?;
        check("camera_movement", &self.camera_movement, CAMERA_MOVEMENT).map_err(f)?;
        check("lighting_type", &self.lighting_type, LIGHTING_TYPE).map_err(f)?;
        check("pacing", &self.pacing, PACING).map_err(f)?;
        check("transition_in", &self.transition_in, TRANSITION_IN).map_err(f)?;
        check("transition_out", &self.transition_out, TRANSITION_OUT).map_err(f)?;
        Ok(())
    }
}

/// A validated location (location department).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct LocationDetail {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Colours (`#rrggbb`).
    pub palette: Vec<String>,
    /// Rules.
    pub rules: String,
}

/// An approved prop (props department).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PropItem {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Colour (`#rrggbb`).
    pub color: String,
}

/// A character's voice (audio department).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct VoiceCasting {
    /// Character id.
    pub character_id: String,
    /// Voice id (an espeak-ng voice locally, a provider voice remotely).
    pub voice: String,
    /// Pitch 0-99.
    pub pitch: u8,
    /// Words per minute.
    pub speed: u16,
    /// Description.
    pub description: String,
}

/// What the shot agent decides for a scene.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ShotPlan {
    /// Layers of the composite, in order.
    pub composite_steps: Vec<CompositeStep>,
    /// Camera angle.
    pub camera_angle: String,
    /// Camera shot.
    pub camera_shot: String,
    /// Camera movement.
    pub camera_movement: String,
    /// Seconds (3-7).
    pub duration: f64,
    /// fast, medium or slow.
    pub pacing: String,
    /// Reasoning, for a person.
    pub notes: String,
}

/// One layer of a composite image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CompositeStep {
    /// `location`, `characters` or `props`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What the layer adds.
    pub description: String,
    /// Character ids or prop names this layer adds.
    pub subjects: Vec<String>,
}

/// Kinds of reference image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceKind {
    /// A location plate.
    Location,
    /// A character view.
    Character,
    /// A prop.
    Prop,
}

/// A reference image sent with a request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Reference {
    /// `reference_type`.
    pub reference_type: ReferenceKind,
    /// The image.
    pub blob: BlobRef,
    /// `reference_description`.
    pub reference_description: String,
}

/// A character as drawn in a frame.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct FigureSpec {
    /// Character id.
    pub id: String,
    /// Name (the label).
    pub name: String,
    /// Horizontal position, 0 (left) to 1 (right).
    pub x: f32,
    /// Which of the six views (the camera angle decides).
    pub view: String,
    /// Body colour.
    pub color: String,
    /// What the character looks like, as far as a storyboard can draw it (absent in manifests
    /// written before looks were read: such a figure is drawn plain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub looks: Option<Looks>,
}

/// The drawable part of a character's appearance and costume: colours of what they wear, their
/// hair, glasses, and how tall they stand. Read from the text by the local studio
/// (`local::reader::looks_of`); every field is optional, an unknown stays undrawn.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Looks {
    /// Colour of the coat, jumper, dress... (`#rrggbb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top: Option<String>,
    /// Colour of the trousers, skirt...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legs: Option<String>,
    /// Colour of the boots, shoes...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feet: Option<String>,
    /// Colour of a hat or cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hat: Option<String>,
    /// Hair colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hair: Option<String>,
    /// Wears glasses.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub glasses: bool,
    /// Age in years, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<u32>,
    /// Height against an adult of ordinary height (1.0): a tall person 1.12, a nine-year-old
    /// about 0.72.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<f32>,
}

impl Looks {
    /// Whether nothing drawable is known.
    pub fn is_empty(&self) -> bool {
        *self == Looks::default()
    }
}

/// A prop as drawn in a frame.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PropSpec {
    /// Name.
    pub name: String,
    /// Horizontal position, 0 to 1.
    pub x: f32,
    /// Colour.
    pub color: String,
}

/// The structured content of a frame: what the storyboard renderer draws, what the manifest
/// records and what the local vision check compares against.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Composition {
    /// Location name, if the location layer is present.
    pub location: Option<String>,
    /// Time of day (sets the sky).
    pub time_of_day: Option<String>,
    /// Lighting type.
    pub lighting: Option<String>,
    /// Background palette.
    pub palette: Vec<String>,
    /// Characters.
    pub characters: Vec<FigureSpec>,
    /// Props.
    pub props: Vec<PropSpec>,
    /// Caption under the frame.
    pub caption: String,
    /// Layers drawn so far, in order.
    pub layers: Vec<String>,
    /// What the location is like (its description): decides the kind of place drawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setting: Option<String>,
    /// Weather (one of the spec's values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weather: Option<String>,
    /// Camera shot (framing: wide to close-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_shot: Option<String>,
    /// Camera angle (where the horizon sits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_angle: Option<String>,
}

/// True when `s` holds some text: a character that is neither white space (Unicode's, with
/// U+0085) nor a byte-order mark. The API documents the same rule as the pattern
/// `[^\s\u0085]`, whose `\s` already counts U+FEFF as space.
pub fn has_text(s: &str) -> bool {
    s.chars().any(|c| !c.is_whitespace() && c != '\u{feff}')
}

impl Composition {
    /// Place a character entering the frame as the `slot`-th (from 1) of `expected` characters:
    /// they share the width between 15 % and 85 %, in the order they enter.
    pub fn place_character(
        &mut self,
        id: &str,
        name: &str,
        view: &str,
        color: &str,
        slot: usize,
        expected: usize,
    ) {
        let x = 0.15 + 0.7 * ((slot as f32 - 0.5) / (expected.max(1) as f32)).min(1.0);
        self.characters.push(FigureSpec {
            id: id.to_string(),
            name: name.to_string(),
            x,
            view: view.to_string(),
            color: color.to_string(),
            looks: None,
        });
    }

    /// Place a prop: props stand in a row along the front of the frame, never on each other
    /// (the vision check looks for each one where it stands).
    pub fn place_prop(&mut self, name: &str, color: &str) {
        let slot = self.props.len();
        self.props.push(PropSpec {
            name: name.to_string(),
            x: 0.08 + 0.14 * (slot % 7) as f32,
            color: color.to_string(),
        });
    }
}

/// An image request (text-to-image, or an edit of `base` with references).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ImageRequest {
    /// The prompt.
    pub prompt: String,
    /// The image to edit (the previous composite iteration), if any.
    pub base: Option<BlobRef>,
    /// At most [`MAX_REFERENCES`] references.
    pub references: Vec<Reference>,
    /// The frame's intended content after this request.
    pub composition: Composition,
    /// Where to store the result.
    pub output_key: String,
    /// `16:9` and so on.
    pub aspect_ratio: String,
    /// Reproducibility.
    pub seed: Option<u64>,
}

impl ImageRequest {
    /// Refuse requests that break our rules before anything is paid for.
    pub fn validate(&self) -> Result<(), String> {
        if self.references.len() > MAX_REFERENCES {
            return Err(format!(
                "{} references in one request; at most {MAX_REFERENCES} are allowed",
                self.references.len()
            ));
        }
        if self.prompt.trim().is_empty() {
            return Err("an image request needs a prompt".into());
        }
        Ok(())
    }
}

/// What an image provider returned, copied into our blob store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ImageOutput {
    /// The image.
    pub image: BlobRef,
    /// Its composition manifest (local renderer), when known.
    pub manifest: Option<BlobRef>,
    /// The provider's description, if any.
    pub description: String,
}

/// A queued job at a provider: what must be journaled to re-attach after a crash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Job {
    /// `fal`, `tasks`, `local`.
    pub provider: String,
    /// The provider's id (`request_id`, `task_id`).
    pub id: String,
    /// Model or task type.
    pub model: String,
    /// Where to ask for status (fal gives URLs).
    pub status_url: Option<String>,
    /// Where to fetch the result.
    pub response_url: Option<String>,
    /// Where to cancel.
    pub cancel_url: Option<String>,
}

impl Job {
    /// The signal a provider's webhook about this job is delivered as, when the provider calls
    /// back (the workflow waits on it, with polling as the fallback).
    pub fn completion_signal(&self) -> Option<String> {
        match self.provider.as_str() {
            "fal" => Some(crate::signals::fal(&self.id)),
            "tasks" => Some(crate::signals::task(
                crate::signals::VIDEO_COMPLETE,
                &self.id,
            )),
            _ => None,
        }
    }
}

/// The state of a job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState<T> {
    /// Waiting to start.
    Queued {
        /// Position in the queue, when known.
        position: Option<u32>,
    },
    /// Running.
    Running,
    /// Done.
    Completed {
        /// The result.
        output: T,
    },
}

/// A verification question about an image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct VisionQuery {
    /// The image.
    pub image: BlobRef,
    /// Its manifest, when it came from the local renderer.
    pub manifest: Option<BlobRef>,
    /// The question (ask narrow yes/no questions).
    pub question: String,
    /// What must be visible: location name, character names, prop names.
    pub expect: Expectation,
}

/// What a frame should show.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Expectation {
    /// Location name.
    pub location: Option<String>,
    /// Character names.
    pub characters: Vec<String>,
    /// Prop names.
    pub props: Vec<String>,
}

/// A verification answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct VisionAnswer {
    /// The model's answer text.
    pub answer: String,
    /// Whether it passed.
    pub passed: bool,
    /// 0-1.
    pub confidence: f64,
}

/// A knowledge document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct KnowledgeDoc {
    /// Project slug.
    pub project: String,
    /// character, location, story_bible, scene, style...
    pub kind: String,
    /// Stable key within the project and kind.
    pub key: String,
    /// Title.
    pub title: String,
    /// Text (what is searched).
    pub text: String,
    /// Anything else.
    pub metadata: Value,
}

/// A knowledge query (the brain's `knowledge/query`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct KnowledgeQuery {
    /// Project slug.
    pub project: String,
    /// The question.
    pub query: String,
    /// An image the question is about.
    pub image: Option<BlobRef>,
    /// Its manifest, when known.
    pub manifest: Option<BlobRef>,
    /// Names the answer should confirm.
    pub expect: Expectation,
}

/// A knowledge answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct KnowledgeAnswer {
    /// The answer.
    pub answer: String,
    /// 0-1; verification passes above 0.8.
    pub confidence: f64,
    /// Keys of the documents it relied on.
    pub sources: Vec<String>,
}

/// How a video is made from what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VideoMode {
    /// From the composite image.
    ImageToVideo,
    /// From the prompt alone.
    TextToVideo,
    /// From a source clip.
    VideoToVideo,
}

/// A video request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct VideoRequest {
    /// Project slug (the tasks service wants it).
    pub project: String,
    /// Scene id.
    pub scene_id: String,
    /// Prompt.
    pub prompt: String,
    /// Mode.
    pub mode: VideoMode,
    /// Start image (image-to-video).
    pub start_image: Option<BlobRef>,
    /// Source clip (video-to-video).
    pub source_video: Option<BlobRef>,
    /// The scene's length, seconds.
    pub duration: f64,
    /// Camera movement (the local studio animates it).
    pub camera_movement: String,
    /// Where our webhook is, if we have a public URL.
    pub callback_url: Option<String>,
    /// Where to store the result.
    pub output_key: String,
    /// The submitting step's idempotency key: a provider that can list what it received finds
    /// an earlier submission by it instead of taking (and charging) a second one.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// A finished video, copied into our blob store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct VideoOutput {
    /// The clip.
    pub video: BlobRef,
    /// Its length, seconds.
    pub duration: f64,
}

/// A music cue to make (the film's score, one request a cue).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct MusicRequest {
    /// Project slug.
    pub project: String,
    /// What to play, in words (mood, key, tempo, instruments).
    pub prompt: String,
    /// Its length, seconds (the provider's bounds are the implementation's to keep).
    pub seconds: f64,
    /// Where to store the result.
    pub output_key: String,
}

/// A finished music cue, copied into our blob store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct MusicOutput {
    /// The audio, as the provider made it (MP3, WAV...).
    pub audio: BlobRef,
    /// The length asked for, seconds.
    pub seconds: f64,
}

/// A clip in a film, with its transitions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ClipSpec {
    /// The clip.
    pub video: BlobRef,
    /// Its length, seconds.
    pub duration: f64,
    /// Transition in.
    pub transition_in: String,
    /// Transition out.
    pub transition_out: String,
}

/// A voice line to synthesize.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct VoiceRequest {
    /// Project slug.
    pub project: String,
    /// Text.
    pub text: String,
    /// The character's casting.
    pub casting: VoiceCasting,
    /// Where to store the audio.
    pub output_key: String,
}
