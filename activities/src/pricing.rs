//! What a call costs before it is made: the price table the estimate and the budget checks use.
//!
//! Actual costs come from the providers' own figures (fal's `x-fal-billable-units` × the unit
//! price, OpenRouter's `usage.cost`, the tasks service's `cost`); these prices are what Slate
//! expects them to be. Defaults are the providers' published prices (listed with their date
//! in `docs/providers.md`); `SLATE_PRICES` (a JSON map of model or service key to dollars)
//! overrides any of them. The local studio costs nothing.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{ProviderSettings, VideoProvider};

/// The published prices the defaults come from, and when they were read.
pub const PRICES_AS_OF: &str = "2026-11";

/// Default dollars per unit by model or service key.
pub const DEFAULT_PRICES: &[(&str, f64, &str)] = &[
    ("fal-ai/nano-banana", 0.039, "per image"),
    ("fal-ai/nano-banana/edit", 0.039, "per image"),
    ("fal-ai/moondream2/visual-query", 0.0005, "per question"),
    (
        "fal-ai/kling-video/v2.1/standard/image-to-video",
        0.056,
        "per second of video",
    ),
    (
        "anthropic/claude-sonnet-4.5",
        0.03,
        "per call (about 3k tokens in, 1.5k out)",
    ),
    ("tasks:generate_video", 0.35, "per clip"),
    ("tasks:generate_character_voice", 0.01, "per line"),
    ("last-frame", 0.0, "per task"),
    ("brain", 0.0, "per query"),
];

/// Fallbacks by kind of model, for models the table does not list.
fn fallback(key: &str) -> f64 {
    if key.contains("video") {
        0.056
    } else if key.contains("moondream") || key.contains("vision") {
        0.0005
    } else if key.starts_with("tasks:") {
        0.35
    } else if key.contains('/') && !key.starts_with("fal-ai/") {
        // An OpenRouter model slug.
        0.03
    } else {
        0.039
    }
}

/// The kinds of paid call the pipeline makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    /// A language-model call.
    Llm,
    /// A text-to-image generation.
    Image,
    /// An image edit (with references).
    ImageEdit,
    /// A vision question or description.
    Vision,
    /// A knowledge query.
    Knowledge,
    /// A video clip.
    Video,
    /// A voice line.
    Voice,
    /// A last-frame service task (frame, stitch).
    Media,
}

/// One kind of call, priced with the configured provider.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Price {
    /// Which provider: `fal.ai`, `openrouter`, `tasks`, `last-frame`, `brain` or `local`.
    pub provider: String,
    /// The model or service key priced.
    pub model: String,
    /// Dollars per unit.
    pub unit_usd: f64,
}

impl Price {
    fn free(what: &str) -> Price {
        Price {
            provider: "local".into(),
            model: what.into(),
            unit_usd: 0.0,
        }
    }
}

/// The price table.
#[derive(Debug, Clone, Default)]
pub struct Prices {
    table: BTreeMap<String, f64>,
}

impl Prices {
    /// The defaults, then `overrides` (`SLATE_PRICES`, and fal's `SLATE_FAL_PRICES`).
    pub fn new(overrides: &BTreeMap<String, f64>) -> Prices {
        let mut table: BTreeMap<String, f64> = DEFAULT_PRICES
            .iter()
            .map(|(k, v, _)| (k.to_string(), *v))
            .collect();
        table.extend(overrides.iter().map(|(k, v)| (k.clone(), *v)));
        Prices { table }
    }

    /// Dollars per unit of `key`.
    pub fn unit(&self, key: &str) -> f64 {
        self.table
            .get(key)
            .copied()
            .unwrap_or_else(|| fallback(key))
    }

    /// The price of one `kind` of call with the providers `s` configures.
    pub fn of(&self, s: &ProviderSettings, kind: CallKind) -> Price {
        let p = |provider: &str, model: &str| Price {
            provider: provider.into(),
            model: model.into(),
            unit_usd: self.unit(model),
        };
        match kind {
            CallKind::Llm => match &s.openrouter {
                Some(o) => p("openrouter", &o.model),
                None => Price::free("planner"),
            },
            CallKind::Image => match &s.fal {
                Some(f) => p("fal.ai", &f.image_model),
                None => Price::free("storyboard"),
            },
            CallKind::ImageEdit => match &s.fal {
                Some(f) => p("fal.ai", &f.edit_model),
                None => Price::free("storyboard"),
            },
            CallKind::Vision => match &s.fal {
                Some(f) => p("fal.ai", &f.vision_model),
                None => Price::free("vision"),
            },
            CallKind::Knowledge => match &s.brain {
                Some(_) => p("brain", "brain"),
                None => Price::free("knowledge"),
            },
            CallKind::Video => match (s.video, &s.fal, &s.tasks) {
                (VideoProvider::Fal | VideoProvider::Auto, Some(f), _) => {
                    p("fal.ai", &f.video_model)
                }
                (VideoProvider::Tasks | VideoProvider::Auto, _, Some(_)) => {
                    p("tasks", "tasks:generate_video")
                }
                _ => Price::free("video"),
            },
            CallKind::Voice => match &s.tasks {
                Some(_) => p("tasks", "tasks:generate_character_voice"),
                None => Price::free("voice"),
            },
            CallKind::Media => match &s.last_frame {
                Some(_) => p("last-frame", "last-frame"),
                None => Price::free("ffmpeg"),
            },
        }
    }

    /// Units one video clip of `seconds` is billed as: seconds for a fal model priced per
    /// second (at the nearest length the model allows), one clip elsewhere.
    pub fn video_units(&self, s: &ProviderSettings, seconds: f64) -> f64 {
        match (s.video, &s.fal, &s.tasks) {
            (VideoProvider::Fal | VideoProvider::Auto, Some(f), _) => {
                crate::remote::fal::pick_duration(&f.video_durations, seconds)
            }
            _ => 1.0,
        }
    }
}
