//! Structured film records (the spec's PayloadCMS collections): projects, scenes with every
//! field of the Scenes collection, prompt templates, story bibles, character references and
//! global errors.
//!
//! Media fields (`*_url`) hold blob keys; the server serves a key at `/media/{key}`.
//!
//! (Over 600 lines on purpose: data types and their validation only, one record per section.)

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use slate_activities::local::mixdown::Loudness;
use slate_activities::local::music::MusicCue;
use slate_activities::model::{MAX_SCENE_SECONDS, MIN_SCENE_SECONDS, options};

use crate::error::{FilmError, Result};

/// A project's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProjectStatus {
    /// Collecting raw material.
    Gathering,
    /// Qualification is under way (the gather namespace is read-only).
    Qualifying,
    /// Qualified: scenes are ready for generation.
    Qualified,
    /// Scenes are being generated.
    Generating,
    /// The film exists.
    Completed,
    /// Something stopped it; see the global errors.
    Failed,
}

impl ProjectStatus {
    /// Stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectStatus::Gathering => "gathering",
            ProjectStatus::Qualifying => "qualifying",
            ProjectStatus::Qualified => "qualified",
            ProjectStatus::Generating => "generating",
            ProjectStatus::Completed => "completed",
            ProjectStatus::Failed => "failed",
        }
    }
    /// Parse stored text.
    pub fn parse(s: &str) -> Result<Self> {
        serde_json::from_value(Value::String(s.into()))
            .map_err(|_| FilmError::Internal(format!("unknown project status `{s}`")))
    }
}

/// A project.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Project {
    /// Slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// State.
    pub status: ProjectStatus,
    /// When the gather namespace was locked (qualification began).
    pub gather_locked_at: Option<DateTime<Utc>>,
    /// The film (blob key) once stitched.
    pub final_video: Option<String>,
    /// The qualification run.
    pub qualification_run: Option<String>,
    /// The production run.
    pub production_run: Option<String>,
    /// What all of the project's runs together may spend, dollars (`None`: no limit).
    pub budget_usd: Option<f64>,
    /// Whether each scene's verified composite waits for a person's approval before its video
    /// is paid for.
    pub approval_required: bool,
    /// Whether the film is stitched again on its own when a scene's take changes (default
    /// on); off, the film page says it is out of date and a person re-stitches it.
    pub auto_restitch: bool,
    /// How the film sounds: what plays under the voices, at what level, how loud the mix is.
    pub sound: SoundSettings,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A scene's generation state (the spec's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SceneStatus {
    /// Planned, nothing generated yet.
    #[default]
    ReadyForGeneration,
    /// Planned (shot plan, references) and waiting for the previous scene's last frame, which
    /// its composite starts from (a scene of a film started early: decision 0018).
    WaitingForPrevious,
    /// Building the composite image.
    GeneratingComposite,
    /// Verifying the composite.
    VerifyingComposite,
    /// Making the clip.
    GeneratingVideo,
    /// Clip and last frame exist.
    Completed,
    /// Stopped; see `error_message`.
    Failed,
}

impl SceneStatus {
    /// Stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            SceneStatus::ReadyForGeneration => "ready_for_generation",
            SceneStatus::WaitingForPrevious => "waiting_for_previous",
            SceneStatus::GeneratingComposite => "generating_composite",
            SceneStatus::VerifyingComposite => "verifying_composite",
            SceneStatus::GeneratingVideo => "generating_video",
            SceneStatus::Completed => "completed",
            SceneStatus::Failed => "failed",
        }
    }
}

/// A prop in a scene.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct SceneProp {
    /// Name.
    pub prop_name: String,
    /// Description.
    pub prop_description: Option<String>,
    /// Reference image (blob key).
    pub prop_reference_url: Option<String>,
}

/// A line of dialogue in a scene.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct SceneDialogue {
    /// Character id.
    pub character: String,
    /// The line.
    pub line: String,
    /// Synthesized audio (blob key).
    pub audio_url: Option<String>,
    /// How it is said, as the screenplay's parenthetical gives it ("whispering").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parenthetical: Option<String>,
    /// Where the line is first heard in the scene's clip, seconds (set when it is voiced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    /// How long it is heard, from its first sound to its last, seconds (set when it is voiced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spoken: Option<f64>,
}

/// A sound effect cue.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct SoundEffect {
    /// Name.
    pub effect_name: String,
    /// Seconds from the scene's start.
    pub timestamp: f64,
}

/// A reference used by a composite iteration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct ReferenceUsed {
    /// location, character or prop.
    pub reference_type: String,
    /// Blob key.
    pub reference_url: String,
    /// Description.
    pub reference_description: String,
}

/// One iteration of the composite image.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct CompositeIteration {
    /// 1-based.
    pub iteration_number: u32,
    /// The layer it added (`location`, `characters`, `props`).
    pub layer: String,
    /// At most three references.
    pub references_used: Vec<ReferenceUsed>,
    /// The image (blob key).
    pub generated_url: String,
    /// Whether its verification passed.
    pub verification_passed: bool,
    /// Every attempt's verification.
    pub verification_details: Value,
    /// Attempts it took.
    pub attempts: u32,
    /// When it was accepted.
    pub timestamp: Option<DateTime<Utc>>,
}

/// A continuity check against the previous scene.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct ContinuityCheck {
    /// What was checked.
    pub check_type: String,
    /// Result.
    pub passed: bool,
    /// Details.
    pub notes: String,
    /// When.
    pub timestamp: Option<DateTime<Utc>>,
}

/// A verification result.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct VerificationResult {
    /// `brain_query` or `vision_model`.
    pub verification_type: String,
    /// The question.
    pub query: String,
    /// The answer.
    pub result: String,
    /// Whether it passed.
    pub passed: bool,
    /// 0-1.
    pub confidence: f64,
    /// When.
    pub timestamp: Option<DateTime<Utc>>,
}

/// A URL item of `props_reference_urls`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct UrlItem {
    /// Blob key.
    pub url: String,
}

/// A scene: every field of the spec's Scenes collection.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct Scene {
    /// Id.
    pub id: String,
    /// Project slug.
    pub project: String,
    /// Number in the screenplay.
    pub scene_number: i32,
    /// Order in the film.
    pub sequence_number: i32,
    /// Screenplay text.
    pub screenplay_text: Option<String>,
    /// Intended emotion or impact.
    pub dramatic_effect: Option<String>,
    /// 3-7 seconds.
    pub expected_duration: f64,
    /// The clip's length.
    pub actual_duration: Option<f64>,
    /// Location.
    pub location: Option<String>,
    /// Time of day.
    pub time_of_day: Option<String>,
    /// Weather.
    pub weather: Option<String>,
    /// Camera angle.
    pub camera_angle: Option<String>,
    /// Camera shot.
    pub camera_shot: Option<String>,
    /// Camera movement.
    pub camera_movement: Option<String>,
    /// Framing notes.
    pub framing: Option<String>,
    /// Lighting type.
    pub lighting_type: Option<String>,
    /// Lighting mood.
    pub lighting_mood: Option<String>,
    /// Colours.
    pub color_palette: Vec<String>,
    /// Character ids.
    pub characters_present: Vec<String>,
    /// Blocking.
    pub character_positions: Option<Value>,
    /// Emotions.
    pub character_emotions: Option<Value>,
    /// Costumes.
    pub costumes: Option<Value>,
    /// Props.
    pub props: Vec<SceneProp>,
    /// Set dressing.
    pub set_dressing: Option<String>,
    /// Dialogue.
    pub dialogue: Vec<SceneDialogue>,
    /// Music.
    pub music_track: Option<String>,
    /// Sound effects.
    pub sound_effects: Vec<SoundEffect>,
    /// Ambient sound.
    pub ambient_sound: Option<String>,
    /// No music under this scene (the film's music fades out before it and back in after).
    pub music_off: bool,
    /// No sound effects in this scene.
    pub effects_off: bool,
    /// Transition in.
    pub transition_in: Option<String>,
    /// Transition out.
    pub transition_out: Option<String>,
    /// Base prompt.
    pub base_prompt: Option<String>,
    /// Full prompt used.
    pub text_prompt: Option<String>,
    /// Things to avoid.
    pub negative_prompt: Option<String>,
    /// Prompt template name.
    pub prompt_template: Option<String>,
    /// Composite history.
    pub composite_iterations: Vec<CompositeIteration>,
    /// Final composite (blob key).
    pub composite_final_url: Option<String>,
    /// Start image of the video (blob key).
    pub generated_image_url: Option<String>,
    /// The clip (blob key).
    pub generated_video_url: Option<String>,
    /// Its last frame (blob key).
    pub last_frame_url: Option<String>,
    /// Which character views were used.
    pub character_references_used: Option<Value>,
    /// Location reference (blob key).
    pub location_reference_url: Option<String>,
    /// Prop references.
    pub props_reference_urls: Vec<UrlItem>,
    /// The shot agent's decisions.
    pub shot_agent_decisions: Option<Value>,
    /// Continuity checks.
    pub continuity_checks: Vec<ContinuityCheck>,
    /// Verification results.
    pub verification_results: Vec<VerificationResult>,
    /// Who generated the scene.
    pub generated_by_agent: Option<String>,
    /// State.
    pub status: SceneStatus,
    /// Why it failed.
    pub error_message: Option<String>,
    /// Rejected attempts and failed generations.
    pub retry_count: i32,
    /// Seconds from the start of generation to the clip.
    pub processing_time: Option<f64>,
    /// fast, medium or slow.
    pub pacing: Option<String>,
    /// `image_to_video` (default), `text_to_video` or `video_to_video`.
    pub video_mode: Option<String>,
    /// The approval gate: where the scene's composite stands with the person who approves it
    /// (absent when the project does not ask for approval).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// Every generation of the scene, oldest first (scenes made before takes were kept have
    /// none: their one clip counts as take 1, see [`Scene::all_takes`]).
    pub takes: Vec<SceneTake>,
    /// The take the film uses (its clip, last frame and length are the scene's
    /// `generated_video_url`, `last_frame_url` and `actual_duration`).
    pub current_take: Option<u32>,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// Created.
    pub created_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Where a take stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TakeStatus {
    /// Being made.
    #[default]
    Generating,
    /// Its clip and last frame are made: it can be the scene's current take.
    Completed,
    /// Its run failed (what it made so far is kept).
    Failed,
}

/// One generation of a scene, kept whole: its blobs live under a key of its own
/// (`scenes/{id}/takes/{run}/`), so a later take never overwrites it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct SceneTake {
    /// 1, 2, ... in the order they were started.
    pub take: u32,
    /// The scene run that made it (empty for a scene made before takes were kept).
    pub run_id: String,
    /// Where it stands.
    pub status: TakeStatus,
    /// When it was started.
    pub started_at: Option<DateTime<Utc>>,
    /// When its clip was done.
    pub completed_at: Option<DateTime<Utc>>,
    /// The scene's fields a person edits, as they were when the take started (what changed
    /// between two takes is the difference of these).
    pub fields: BTreeMap<String, Value>,
    /// The previous scene's last frame it started from (blob key), when it had one.
    pub started_from: Option<String>,
    /// Its composite iterations.
    pub composite_iterations: Vec<CompositeIteration>,
    /// Its final composite (blob key).
    pub composite_final_url: Option<String>,
    /// Its verification results.
    pub verification_results: Vec<VerificationResult>,
    /// Its continuity checks.
    pub continuity_checks: Vec<ContinuityCheck>,
    /// The clip (blob key).
    pub video: Option<String>,
    /// Its last frame (blob key).
    pub last_frame: Option<String>,
    /// The clip's length, seconds.
    pub duration: Option<f64>,
    /// Why it failed.
    pub error_message: Option<String>,
    /// Its dialogue as voiced: each line's audio, where it starts in the clip and how long.
    pub dialogue: Vec<SceneDialogue>,
}

/// Whether a scene starts from the last frame (or clip) of the scene before it: it continues
/// the previous clip (`video_to_video`), or stays in the same place, where its composite is
/// seeded with that frame (an unknown place counts as the same). What makes a chain of
/// dependent scenes (decision 0018) and what a remade predecessor changes under it.
pub fn continues_previous(
    prev_location: Option<&str>,
    location: Option<&str>,
    video_mode: Option<&str>,
) -> bool {
    let place = |l: Option<&str>| l.map(|x| x.trim().to_lowercase());
    video_mode == Some("video_to_video") || place(prev_location) == place(location)
}

/// The fields of a scene a person edits before a remake, which a take records.
pub const TAKE_FIELDS: &[&str] = &[
    "screenplay_text",
    "dramatic_effect",
    "expected_duration",
    "dialogue",
    "camera_angle",
    "camera_shot",
    "camera_movement",
    "framing",
    "lighting_type",
    "lighting_mood",
    "characters_present",
    "costumes",
    "location",
    "time_of_day",
    "weather",
    "base_prompt",
    "negative_prompt",
    "video_mode",
];

impl Scene {
    /// The scene's editable fields as they stand (see [`TAKE_FIELDS`]).
    pub fn take_fields(&self) -> BTreeMap<String, Value> {
        let doc = serde_json::to_value(self).unwrap_or_default();
        TAKE_FIELDS
            .iter()
            .map(|k| (k.to_string(), doc.get(*k).cloned().unwrap_or(Value::Null)))
            .collect()
    }

    /// Every take, a scene made before takes were kept counting its one clip as take 1.
    pub fn all_takes(&self) -> Vec<SceneTake> {
        if !self.takes.is_empty() {
            return self.takes.clone();
        }
        match (&self.generated_video_url, self.status) {
            (Some(video), _) => vec![SceneTake {
                take: 1,
                status: TakeStatus::Completed,
                composite_iterations: self.composite_iterations.clone(),
                composite_final_url: self.composite_final_url.clone(),
                verification_results: self.verification_results.clone(),
                continuity_checks: self.continuity_checks.clone(),
                video: Some(video.clone()),
                last_frame: self.last_frame_url.clone(),
                duration: self.actual_duration,
                dialogue: self.dialogue.clone(),
                ..Default::default()
            }],
            _ => vec![],
        }
    }

    /// The take the film uses.
    pub fn take(&self) -> Option<SceneTake> {
        let all = self.all_takes();
        match self.current_take {
            Some(n) => all.into_iter().find(|t| t.take == n),
            None => all
                .into_iter()
                .rev()
                .find(|t| t.status == TakeStatus::Completed),
        }
    }

    /// Make take `n` the one the film uses: the scene's clip, last frame and length become
    /// its. Refused when the scene has no such take or it has no clip.
    pub fn choose_take(&mut self, n: u32) -> Result<()> {
        let all = self.all_takes();
        let Some(t) = all.iter().find(|t| t.take == n) else {
            let have: Vec<String> = all.iter().map(|t| t.take.to_string()).collect();
            return Err(FilmError::NotFound(format!(
                "take {n} of scene {} (it has {})",
                self.scene_number,
                if have.is_empty() {
                    "none yet".to_string()
                } else {
                    format!("takes {}", have.join(", "))
                }
            )));
        };
        let (Some(video), TakeStatus::Completed) = (&t.video, t.status) else {
            return Err(FilmError::Conflict(format!(
                "take {n} of scene {} has no finished clip ({}); choose a completed take",
                self.scene_number,
                match t.status {
                    TakeStatus::Generating => "it is being made",
                    _ => "it failed",
                }
            )));
        };
        if self.takes.is_empty() {
            // The scene's one clip becomes a recorded take before another is chosen.
            self.takes = all.clone();
        }
        self.generated_video_url = Some(video.clone());
        self.last_frame_url = t.last_frame.clone();
        self.actual_duration = t.duration;
        self.composite_final_url = t.composite_final_url.clone();
        self.current_take = Some(n);
        Ok(())
    }
}

/// Where a scene's verified composite stands at the approval gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// The composite waits for a person; no video has been paid for.
    #[default]
    Awaiting,
    /// Approved: the video is made from it.
    Approved,
    /// Rejected with a note: a new composite iteration is being made.
    Rejected,
}

/// A scene at the approval gate.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct Approval {
    /// Where it stands.
    pub state: ApprovalState,
    /// The composite (blob key) the decision is about.
    pub composite: String,
    /// Which request of this scene's run it is (1, then 2 after a rejection, ...).
    pub round: u32,
    /// The scene run that waits (a decision is delivered to it).
    pub run_id: String,
    /// When the composite was put up for approval.
    pub requested_at: Option<DateTime<Utc>>,
    /// Earlier decisions on this scene, oldest first.
    pub history: Vec<ApprovalDecision>,
}

/// A person's decision on a composite.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct ApprovalDecision {
    /// `approved` or `rejected`.
    pub state: ApprovalState,
    /// The composite decided on (blob key).
    pub composite: String,
    /// The round.
    pub round: u32,
    /// What the person asked to change (a rejection's note).
    pub note: Option<String>,
    /// When.
    pub decided_at: Option<DateTime<Utc>>,
}

fn check_opt(field: &str, v: &Option<String>, allowed: &[&str]) -> Result<()> {
    if let Some(v) = v {
        options::check(field, v, allowed).map_err(FilmError::Invalid)?;
    }
    Ok(())
}

impl Scene {
    /// Fields the pipeline sets and a person may not edit.
    pub const READ_ONLY_FIELDS: &'static [&'static str] = &[
        "id",
        "project",
        "version",
        "created_at",
        "updated_at",
        "composite_iterations",
        "verification_results",
        "continuity_checks",
        "status",
        "retry_count",
        "processing_time",
        "approval",
        "takes",
        "current_take",
        "generated_video_url",
        "last_frame_url",
        "actual_duration",
    ];

    /// The spec's rules: 3-7 seconds, the option lists.
    pub fn validate(&self) -> Result<()> {
        use options::*;
        if !(MIN_SCENE_SECONDS..=MAX_SCENE_SECONDS).contains(&self.expected_duration) {
            return Err(FilmError::Invalid(format!(
                "expected_duration must be between 3 and 7 seconds, not {}",
                self.expected_duration
            )));
        }
        if self.scene_number < 1 || self.sequence_number < 1 {
            return Err(FilmError::Invalid(
                "scene_number and sequence_number start at 1".into(),
            ));
        }
        check_opt("time_of_day", &self.time_of_day, TIME_OF_DAY)?;
        check_opt("weather", &self.weather, WEATHER)?;
        check_opt("camera_angle", &self.camera_angle, CAMERA_ANGLE)?;
        check_opt("camera_shot", &self.camera_shot, CAMERA_SHOT)?;
        check_opt("camera_movement", &self.camera_movement, CAMERA_MOVEMENT)?;
        check_opt("lighting_type", &self.lighting_type, LIGHTING_TYPE)?;
        check_opt("transition_in", &self.transition_in, TRANSITION_IN)?;
        check_opt("transition_out", &self.transition_out, TRANSITION_OUT)?;
        check_opt("pacing", &self.pacing, PACING)?;
        check_opt(
            "video_mode",
            &self.video_mode,
            &["image_to_video", "text_to_video", "video_to_video"],
        )?;
        if self
            .dialogue
            .iter()
            .any(|d| d.line.trim().is_empty() || d.character.trim().is_empty())
        {
            return Err(FilmError::Invalid(
                "every dialogue line needs a character and a line".into(),
            ));
        }
        for e in &self.sound_effects {
            if !(0.0..=MAX_SCENE_SECONDS).contains(&e.timestamp) {
                return Err(FilmError::Invalid(format!(
                    "sound effect `{}` at {} s is outside the scene",
                    e.effect_name, e.timestamp
                )));
            }
        }
        Ok(())
    }

    /// Apply a partial edit (a JSON object of fields); fields the pipeline owns cannot be
    /// edited this way.
    pub fn apply_edit(&self, patch: &Value) -> Result<Scene> {
        let Value::Object(p) = patch else {
            return Err(FilmError::Invalid(
                "an edit is a JSON object of fields to change".into(),
            ));
        };
        if let Some(k) = p
            .keys()
            .find(|k| Self::READ_ONLY_FIELDS.contains(&k.as_str()))
        {
            return Err(FilmError::Invalid(format!(
                "`{k}` is set by the pipeline and cannot be edited"
            )));
        }
        let mut doc = serde_json::to_value(self).map_err(|e| FilmError::Internal(e.to_string()))?;
        let known: Vec<String> = doc
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        for (k, v) in p {
            if !known.contains(k) {
                return Err(FilmError::Invalid(format!("scenes have no field `{k}`")));
            }
            doc[k] = v.clone();
        }
        let scene: Scene = serde_json::from_value(doc).map_err(|e| {
            FilmError::Invalid(format!("the edit does not fit the scene's fields: {e}"))
        })?;
        scene.validate()?;
        Ok(scene)
    }
}

/// A prompt template variable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TemplateVariable {
    /// Name (used as `[name]` in the prompt).
    pub variable_name: String,
    /// What it is.
    #[serde(default)]
    pub variable_description: String,
    /// Whether rendering refuses to go on without it (default true).
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

/// A prompt template (the spec's Prompts collection).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PromptTemplate {
    /// Name (unique).
    #[schema(min_length = 1, max_length = 120, pattern = r"[^\s\u0085]")]
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The template, with `[variable]` placeholders.
    #[schema(min_length = 1, pattern = r"[^\s\u0085]")]
    pub prompt: String,
    /// character, scene, location, props or video.
    #[serde(default)]
    pub category: Option<String>,
    /// Declared variables.
    #[serde(default)]
    pub variables: Vec<TemplateVariable>,
    /// Version.
    #[serde(default)]
    pub version: i64,
}

/// Template categories.
pub const TEMPLATE_CATEGORIES: &[&str] = &["character", "scene", "location", "props", "video"];

impl PromptTemplate {
    /// The `[name]` placeholders of the prompt, in order, without repeats.
    pub fn placeholders(&self) -> Vec<String> {
        let mut out = vec![];
        let mut rest = self.prompt.as_str();
        while let Some(i) = rest.find('[') {
            let after = &rest[i + 1..];
            match after.find(']') {
                Some(j) => {
                    let name = &after[..j];
                    if !name.is_empty()
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        && !out.iter().any(|n| n == name)
                    {
                        out.push(name.to_string());
                    }
                    rest = &after[j + 1..];
                }
                None => break,
            }
        }
        out
    }

    /// Check the template itself.
    pub fn validate(&self) -> Result<()> {
        if !slate_activities::model::has_text(&self.name) || self.name.chars().count() > 120 {
            return Err(FilmError::Invalid(
                "a template needs a name of 1 to 120 characters".into(),
            ));
        }
        if !slate_activities::model::has_text(&self.prompt) {
            return Err(FilmError::Invalid("a template needs a prompt".into()));
        }
        if let Some(c) = &self.category {
            options::check("category", c, TEMPLATE_CATEGORIES).map_err(FilmError::Invalid)?;
        }
        let used = self.placeholders();
        if let Some(v) = self
            .variables
            .iter()
            .find(|v| !used.contains(&v.variable_name))
        {
            return Err(FilmError::Invalid(format!(
                "variable `{}` is declared but the prompt has no [{}]",
                v.variable_name, v.variable_name
            )));
        }
        Ok(())
    }

    /// Render with `vars`. A placeholder that is required (declared required, or not declared
    /// at all) and missing or empty is refused, naming every missing variable; an optional one
    /// renders as nothing.
    pub fn render(&self, vars: &BTreeMap<String, String>) -> Result<String> {
        let mut missing = vec![];
        for name in self.placeholders() {
            let required = self
                .variables
                .iter()
                .find(|v| v.variable_name == name)
                .is_none_or(|v| v.required);
            if required && vars.get(&name).is_none_or(|v| v.trim().is_empty()) {
                missing.push(name);
            }
        }
        if !missing.is_empty() {
            return Err(FilmError::Invalid(format!(
                "template `{}` needs {}",
                self.name,
                missing
                    .iter()
                    .map(|m| format!("[{m}]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut out = self.prompt.clone();
        for name in self.placeholders() {
            out = out.replace(
                &format!("[{name}]"),
                vars.get(&name).map(String::as_str).unwrap_or(""),
            );
        }
        Ok(out)
    }
}

/// The default templates (the spec's open question 1, answer C: defaults plus user templates).
pub fn default_templates() -> Vec<PromptTemplate> {
    let v = |n: &str, d: &str| TemplateVariable {
        variable_name: n.into(),
        variable_description: d.into(),
        required: true,
    };
    let opt = |n: &str, d: &str| TemplateVariable {
        variable_name: n.into(),
        variable_description: d.into(),
        required: false,
    };
    vec![
        PromptTemplate {
            name: "Character Scene Prompt".into(),
            description: "A character in a location (the spec's example)".into(),
            prompt: "Generate an image of [character_name] in [location] during [time_of_day].\nCamera angle: [camera_angle]\nLighting: [lighting_type]\nMood: [dramatic_effect]\n\nThe character should be [character_action] with [character_emotion] expression.".into(),
            category: Some("character".into()),
            variables: vec![
                v("character_name", "who"),
                v("location", "where"),
                v("time_of_day", "when"),
                v("camera_angle", "camera angle"),
                v("lighting_type", "lighting"),
                v("dramatic_effect", "intended effect"),
                opt("character_action", "what they do"),
                opt("character_emotion", "how they feel"),
            ],
            version: 1,
        },
        PromptTemplate {
            name: "Composite Layer".into(),
            description: "One layer of a scene's composite image".into(),
            prompt: "[layer_description]. Scene: [location], [time_of_day], [lighting_type] light. Keep everything already in the image. [style]".into(),
            category: Some("scene".into()),
            variables: vec![
                v("layer_description", "what the layer adds"),
                v("location", "where"),
                v("time_of_day", "when"),
                v("lighting_type", "lighting"),
                opt("style", "the style guide's mood"),
            ],
            version: 1,
        },
        PromptTemplate {
            name: "Scene Video".into(),
            description: "The video prompt of a scene (the spec's buildVideoPrompt)".into(),
            prompt: "[text_prompt]\n\nCamera: [camera_angle], [camera_shot], [camera_movement]\nLighting: [lighting_type], [lighting_mood]\nDuration: [duration] seconds\nPacing: [pacing]\n\n[dramatic_effect]".into(),
            category: Some("video".into()),
            variables: vec![
                v("text_prompt", "what happens"),
                v("camera_angle", "angle"),
                v("camera_shot", "shot"),
                v("camera_movement", "movement"),
                v("lighting_type", "lighting"),
                opt("lighting_mood", "mood"),
                v("duration", "seconds"),
                v("pacing", "pacing"),
                opt("dramatic_effect", "effect"),
            ],
            version: 1,
        },
        PromptTemplate {
            name: "Character Master Reference".into(),
            description: "A character's master reference sheet".into(),
            prompt: "Full-body character reference of [character_name], [appearance]. Costume: [costume]. Neutral background, even light, facing the camera.".into(),
            category: Some("character".into()),
            variables: vec![v("character_name", "name"), v("appearance", "look"), opt("costume", "costume")],
            version: 1,
        },
        PromptTemplate {
            name: "Location Plate".into(),
            description: "A location reference plate".into(),
            prompt: "Establishing plate of [location]: [description]. [time_of_day], no people.".into(),
            category: Some("location".into()),
            variables: vec![v("location", "name"), v("description", "what it looks like"), v("time_of_day", "when")],
            version: 1,
        },
        PromptTemplate {
            name: "Prop Reference".into(),
            description: "A prop reference image".into(),
            prompt: "Product shot of [prop_name]: [description]. Neutral background.".into(),
            category: Some("props".into()),
            variables: vec![v("prop_name", "name"), v("description", "what it looks like")],
            version: 1,
        },
    ]
}

/// A global error, shown at the top of every page until dismissed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct GlobalError {
    /// Id.
    pub id: String,
    /// Project, if it concerns one.
    pub project: Option<String>,
    /// Where: `qualification/phase-a/character`, `scene 3`...
    pub phase: String,
    /// What happened.
    pub message: String,
    /// The run, step and error behind it.
    pub details: Value,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When a person dismissed it.
    pub dismissed_at: Option<DateTime<Utc>>,
}

/// Something that happened to a project outside its runs (the gather reopened, and why).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ProjectEvent {
    /// Id.
    pub id: String,
    /// `gather_reopened`.
    pub kind: String,
    /// What happened, for a person.
    pub message: String,
    /// Who asked, why, and what was removed.
    pub details: Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene() -> Scene {
        Scene {
            id: "s1".into(),
            project: "p".into(),
            scene_number: 1,
            sequence_number: 1,
            expected_duration: 4.0,
            camera_angle: Some("low_angle".into()),
            ..Default::default()
        }
    }

    #[test]
    fn scenes_are_validated() {
        assert!(scene().validate().is_ok());
        let mut s = scene();
        s.expected_duration = 8.0;
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("between 3 and 7")
        );
        let mut s = scene();
        s.camera_angle = Some("sideways".into());
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("camera_angle `sideways`")
        );
    }

    #[test]
    fn edits_keep_the_rules() {
        let s = scene();
        let e = s
            .apply_edit(&serde_json::json!({"expected_duration": 6.5, "weather": "foggy"}))
            .unwrap();
        assert_eq!(e.expected_duration, 6.5);
        assert!(
            s.apply_edit(&serde_json::json!({"expected_duration": 2}))
                .is_err()
        );
        assert!(
            s.apply_edit(&serde_json::json!({"status": "completed"}))
                .unwrap_err()
                .to_string()
                .contains("set by the pipeline")
        );
        assert!(
            s.apply_edit(&serde_json::json!({"colour": "red"}))
                .unwrap_err()
                .to_string()
                .contains("no field `colour`")
        );
        assert!(s.apply_edit(&serde_json::json!([1])).is_err());
    }

    #[test]
    fn templates_render_and_refuse_missing_variables() {
        let t = &default_templates()[0];
        t.validate().unwrap();
        let mut vars: BTreeMap<String, String> = [
            ("character_name", "Mira"),
            ("location", "Harbor Market"),
            ("time_of_day", "evening"),
            ("camera_angle", "low angle"),
            ("lighting_type", "dramatic"),
            ("dramatic_effect", "urgency"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let out = t.render(&vars).unwrap();
        assert!(out.starts_with("Generate an image of Mira in Harbor Market during evening."));
        assert!(
            !out.contains('['),
            "optional variables render as nothing: {out}"
        );
        vars.remove("location");
        vars.insert("time_of_day".into(), "  ".into());
        let e = t.render(&vars).unwrap_err().to_string();
        assert!(
            e.contains("[location]") && e.contains("[time_of_day]"),
            "{e}"
        );
        let undeclared = PromptTemplate {
            name: "x".into(),
            description: String::new(),
            prompt: "Hello [who]".into(),
            category: None,
            variables: vec![],
            version: 0,
        };
        assert!(
            undeclared.render(&BTreeMap::new()).is_err(),
            "undeclared placeholders are required"
        );
        for t in default_templates() {
            t.validate().unwrap();
        }
    }
}

/// How a project's film sounds (issue 27): which stems play under the voices, each one's level,
/// and the loudness the mix is brought to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SoundSettings {
    /// Music under the film (default on).
    pub music: bool,
    /// Ambience under every scene (default on).
    pub ambience: bool,
    /// Sound effects on their actions (default on).
    pub effects: bool,
    /// The music's level in the mix, dB (before the mix is brought to its loudness).
    #[schema(minimum = -60, maximum = 12)]
    pub music_db: f64,
    /// The ambience's level, dB.
    #[schema(minimum = -60, maximum = 12)]
    pub ambience_db: f64,
    /// The effects' level, dB.
    #[schema(minimum = -60, maximum = 12)]
    pub effects_db: f64,
    /// Where the mix lands (default -14 LUFS integrated, -1 dBTP true peak).
    pub loudness: LoudnessTarget,
}

/// The loudness a mix is brought to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoudnessTarget {
    /// Integrated loudness, LUFS (streaming -14, EBU R128 broadcast -23).
    #[schema(minimum = -36, maximum = -5)]
    pub integrated_lufs: f64,
    /// Highest true peak, dBTP.
    #[schema(minimum = -9, maximum = 0)]
    pub true_peak_dbtp: f64,
}

impl Default for LoudnessTarget {
    fn default() -> Self {
        let l = Loudness::default();
        LoudnessTarget {
            integrated_lufs: l.integrated_lufs,
            true_peak_dbtp: l.true_peak_dbtp,
        }
    }
}

impl From<LoudnessTarget> for Loudness {
    fn from(t: LoudnessTarget) -> Loudness {
        Loudness {
            integrated_lufs: t.integrated_lufs,
            true_peak_dbtp: t.true_peak_dbtp,
        }
    }
}

impl Default for SoundSettings {
    fn default() -> Self {
        SoundSettings {
            music: true,
            ambience: true,
            effects: true,
            music_db: -6.0,
            ambience_db: -10.0,
            effects_db: -6.0,
            loudness: LoudnessTarget::default(),
        }
    }
}

impl SoundSettings {
    /// Levels a mix can take: -60 to +12 dB a stem; -36 to -5 LUFS (what `loudnorm` reaches)
    /// and -9 to 0 dBTP.
    pub fn validate(&self) -> Result<()> {
        for (name, db) in [
            ("music_db", self.music_db),
            ("ambience_db", self.ambience_db),
            ("effects_db", self.effects_db),
        ] {
            if !(-60.0..=12.0).contains(&db) {
                return Err(FilmError::Invalid(format!(
                    "{name} must be between -60 and 12 dB, not {db}"
                )));
            }
        }
        let l = self.loudness;
        if !(-36.0..=-5.0).contains(&l.integrated_lufs) {
            return Err(FilmError::Invalid(format!(
                "loudness.integrated_lufs must be between -36 and -5 LUFS, not {}",
                l.integrated_lufs
            )));
        }
        if !(-9.0..=0.0).contains(&l.true_peak_dbtp) {
            return Err(FilmError::Invalid(format!(
                "loudness.true_peak_dbtp must be between -9 and 0 dBTP, not {}",
                l.true_peak_dbtp
            )));
        }
        Ok(())
    }
}

/// A film version's sound: the stems it was mixed from and how.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct FilmSound {
    /// The picture and the voices as stitched, before the mix (what a re-mix starts from).
    pub cut: String,
    /// The stems, by name (`dialogue`, `music`, `ambience`, `effects`): FLAC blob keys; a stem
    /// with nothing in it is left out.
    pub stems: BTreeMap<String, String>,
    /// The music cues, in film order.
    pub cues: Vec<MusicCue>,
    /// The effects, where they sound in the film.
    pub effects: Vec<PlacedEffect>,
    /// The settings it was mixed with.
    pub settings: Option<SoundSettings>,
    /// The mixed film's loudness, as ffmpeg's `ebur128` measures it.
    pub loudness: Option<Loudness>,
    /// The model that made the music (none: synthesized offline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub music_model: Option<String>,
}

/// A sound effect as the film has it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct PlacedEffect {
    /// The scene it is in.
    pub scene_number: i32,
    /// What it is.
    pub name: String,
    /// Where it starts, seconds of film.
    pub at: f64,
    /// Where its scene ends (it is silent from there), seconds of film.
    pub scene_end: f64,
}

/// One stitch of a project's film, kept: the film as it was cut from its scenes' takes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct FilmVersion {
    /// 1, 2, ... in the order they were stitched.
    pub version: i64,
    /// The run that stitched it.
    pub run_id: String,
    /// The film (blob key).
    pub video: String,
    /// Its length, seconds.
    pub duration: f64,
    /// The scenes it was cut from, in film order.
    pub scenes: Vec<FilmVersionScene>,
    /// When it was stitched.
    pub created_at: Option<DateTime<Utc>>,
    /// Its sound (none for a film stitched before the sound was mixed: its sound is the
    /// voices alone).
    pub sound: Option<FilmSound>,
}

/// A scene as a film version has it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct FilmVersionScene {
    /// Scene id.
    pub scene_id: String,
    /// Its number.
    pub scene_number: i32,
    /// The take it used (none for a scene made before takes were kept).
    pub take: Option<u32>,
    /// The take's clip (blob key).
    pub video: String,
    /// The clip's length, seconds.
    pub duration: f64,
    /// Where the clip starts in the film, seconds (it overlaps the one before by a crossfade).
    pub start: f64,
    /// Transition in.
    pub transition_in: String,
    /// Transition out.
    pub transition_out: String,
}
