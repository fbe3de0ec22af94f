//! The activity traits: one per kind of side effect. Each has a remote implementation (the
//! production service) and a local one (the studio), chosen by configuration.
//!
//! Paid, slow work is split into `submit` and `poll` so that a workflow can journal the job
//! between the two and re-attach to it after a crash instead of paying again.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::blob::BlobRef;
use crate::error::Result;
use crate::model::*;

/// Money and units an activity spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    /// Provider units (billable units, tokens, seconds).
    pub units: f64,
    /// Dollars.
    pub usd: f64,
    /// True when the provider gave no figure and `usd` is what the call was expected to cost.
    #[serde(default)]
    pub estimated: bool,
}

impl Spend {
    /// Nothing spent.
    pub const ZERO: Spend = Spend {
        units: 0.0,
        usd: 0.0,
        estimated: false,
    };

    /// A provider's own figure.
    pub fn billed(units: f64, usd: f64) -> Spend {
        Spend {
            units,
            usd,
            estimated: false,
        }
    }

    /// The provider's figure when it gave one, else `expected` (dollars), marked estimated:
    /// a missing cost is never recorded as $0.
    pub fn billed_or(units: f64, usd: Option<f64>, expected: f64) -> Spend {
        match usd {
            Some(u) if u.is_finite() && u >= 0.0 => Spend::billed(units, u),
            _ => Spend {
                units,
                usd: expected,
                estimated: true,
            },
        }
    }
}

/// A value and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paid<T> {
    /// The value.
    pub value: T,
    /// Its cost.
    pub spend: Spend,
}

impl<T> Paid<T> {
    /// A free value.
    pub fn free(value: T) -> Self {
        Paid {
            value,
            spend: Spend::ZERO,
        }
    }
}

/// What the shot agent knows about the production when planning a scene.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ShotContext {
    /// Characters of the project.
    pub characters: Vec<CharacterProfile>,
    /// Props of the project.
    pub props: Vec<PropItem>,
    /// The style guide.
    pub style: Option<StyleGuide>,
}

/// The language model: qualification, screenplay, breakdown, shot decisions.
#[async_trait]
pub trait Planner: Send + Sync {
    /// Which implementation.
    fn name(&self) -> &'static str;
    /// Score every department's gather data (0-100, ready at 75).
    async fn readiness(&self, gather: &GatherSnapshot) -> Result<Paid<Vec<DepartmentReadiness>>>;
    /// Qualified character profiles from the raw characters.
    async fn characters(&self, gather: &GatherSnapshot) -> Result<Paid<Vec<CharacterProfile>>>;
    /// The story bible.
    async fn story_bible(
        &self,
        gather: &GatherSnapshot,
        characters: &[CharacterProfile],
    ) -> Result<Paid<StoryBible>>;
    /// The style guide.
    async fn style_guide(&self, gather: &GatherSnapshot) -> Result<Paid<StyleGuide>>;
    /// The screenplay.
    async fn screenplay(
        &self,
        gather: &GatherSnapshot,
        bible: &StoryBible,
        characters: &[CharacterProfile],
    ) -> Result<Paid<Screenplay>>;
    /// The screenplay broken into 3-7 second scenes.
    async fn breakdown(
        &self,
        screenplay: &Screenplay,
        bible: &StoryBible,
        characters: &[CharacterProfile],
    ) -> Result<Paid<Vec<SceneBreakdown>>>;
    /// Location details.
    async fn locations(
        &self,
        gather: &GatherSnapshot,
        bible: &StoryBible,
    ) -> Result<Paid<Vec<LocationDetail>>>;
    /// The prop catalog.
    async fn props(
        &self,
        gather: &GatherSnapshot,
        screenplay: &Screenplay,
    ) -> Result<Paid<Vec<PropItem>>>;
    /// Voice casting.
    async fn voices(&self, characters: &[CharacterProfile]) -> Result<Paid<Vec<VoiceCasting>>>;
    /// The shot agent's decisions for a scene.
    async fn shot_plan(&self, scene: &SceneBreakdown, ctx: &ShotContext) -> Result<Paid<ShotPlan>>;
}

/// Image generation and editing.
#[async_trait]
pub trait ImageGen: Send + Sync {
    /// Which implementation.
    fn name(&self) -> &'static str;
    /// Queue a request; journal the job before waiting for it.
    async fn submit(&self, req: &ImageRequest) -> Result<Job>;
    /// Ask how a job is doing; a completed job's image is copied into the blob store.
    async fn poll(&self, job: &Job, req: &ImageRequest) -> Result<Paid<JobState<ImageOutput>>>;
    /// Cancel a job (best effort).
    async fn cancel(&self, job: &Job) -> Result<()>;
}

/// Visual questions about an image.
#[async_trait]
pub trait Vision: Send + Sync {
    /// Which implementation.
    fn name(&self) -> &'static str;
    /// A yes/no verification question.
    async fn ask(&self, q: &VisionQuery) -> Result<Paid<VisionAnswer>>;
    /// A free description (the 360-degree views' descriptions).
    async fn describe(
        &self,
        image: &BlobRef,
        manifest: Option<&BlobRef>,
        prompt: &str,
    ) -> Result<Paid<String>>;
}

/// The knowledge store ("brain").
#[async_trait]
pub trait Knowledge: Send + Sync {
    /// Which implementation.
    fn name(&self) -> &'static str;
    /// Store (or replace, by project/kind/key) documents.
    async fn store(&self, docs: &[KnowledgeDoc]) -> Result<usize>;
    /// Ask a question, optionally about an image.
    async fn query(&self, q: &KnowledgeQuery) -> Result<Paid<KnowledgeAnswer>>;
    /// Everything known about a project.
    async fn context(&self, project: &str) -> Result<Vec<KnowledgeDoc>>;
    /// Embeddings of texts.
    async fn embeddings(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
    /// Whether the service answers.
    async fn health(&self) -> Result<bool>;
}

/// Video generation.
#[async_trait]
pub trait VideoGen: Send + Sync {
    /// Which implementation.
    fn name(&self) -> &'static str;
    /// The clip lengths the model can make, seconds (empty: any length).
    fn durations(&self) -> Vec<f64>;
    /// Queue a video; journal the job before waiting for it.
    async fn submit(&self, req: &VideoRequest) -> Result<Job>;
    /// Ask how a job is doing; a completed clip is copied into the blob store.
    async fn poll(&self, job: &Job, req: &VideoRequest) -> Result<Paid<JobState<VideoOutput>>>;
    /// Cancel a job (best effort).
    async fn cancel(&self, job: &Job) -> Result<()>;
}

/// Music generation (the film's score); the local studio has none: its music is synthesized
/// in the film's sound steps.
#[async_trait]
pub trait MusicGen: Send + Sync {
    /// Which implementation.
    fn name(&self) -> &'static str;
    /// The model, as priced.
    fn model(&self) -> &str;
    /// The longest cue one request can make, seconds.
    fn longest(&self) -> f64;
    /// Queue a cue; journal the job before waiting for it.
    async fn submit(&self, req: &MusicRequest) -> Result<Job>;
    /// Ask how a job is doing; a completed cue is copied into the blob store.
    async fn poll(&self, job: &Job, req: &MusicRequest) -> Result<Paid<JobState<MusicOutput>>>;
}

/// Voice synthesis.
#[async_trait]
pub trait Voice: Send + Sync {
    /// Which implementation.
    fn name(&self) -> &'static str;
    /// Speak a line; the audio is stored under the request's key.
    async fn synthesize(&self, req: &VoiceRequest) -> Result<Paid<BlobRef>>;
}

/// Media operations on clips.
#[async_trait]
pub trait Media: Send + Sync {
    /// Which implementation.
    fn name(&self) -> &'static str;
    /// The exact last frame of a clip, as a PNG.
    async fn last_frame(&self, video: &BlobRef, output_key: &str) -> Result<BlobRef>;
    /// A clip's length, seconds.
    async fn length(&self, media: &BlobRef) -> Result<f64>;
    /// Cut a clip to `seconds` (re-encoded: frame-exact, not keyframe-bound).
    async fn trim(&self, video: &BlobRef, seconds: f64, output_key: &str) -> Result<BlobRef>;
    /// Mix voice lines into a clip, each starting at its offset (seconds).
    async fn mix_voices(
        &self,
        video: &BlobRef,
        lines: &[(BlobRef, f64)],
        output_key: &str,
    ) -> Result<BlobRef>;
    /// Cut a clip to `seconds` (when given) and mix voice lines into it, in one pass where the
    /// implementation can (the default makes the two passes).
    async fn cut(
        &self,
        video: &BlobRef,
        seconds: Option<f64>,
        lines: &[(BlobRef, f64)],
        output_key: &str,
    ) -> Result<BlobRef> {
        let video = match seconds {
            Some(s) if lines.is_empty() => return self.trim(video, s, output_key).await,
            Some(s) => {
                self.trim(video, s, &format!("{output_key}.trimmed.mp4"))
                    .await?
            }
            None => video.clone(),
        };
        self.mix_voices(&video, lines, output_key).await
    }
    /// Stitch clips in order with their transitions.
    async fn stitch(&self, clips: &[ClipSpec], output_key: &str) -> Result<BlobRef>;
    /// Mix a music track (the film's sound bed) under a film's sound at `volume` (1.0: as it
    /// is), the picture kept.
    async fn music_track(
        &self,
        video: &BlobRef,
        music: &BlobRef,
        volume: f64,
        output_key: &str,
    ) -> Result<BlobRef>;
    /// Whether [`Media::music_track`] is a remote service's (the film's sound is then mixed
    /// there and only measured and normalized here).
    fn mixes_remotely(&self) -> bool {
        false
    }
}
