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
        "anthropic/claude-sonnet-4.5:input",
        3.0 / 1e6,
        "per input token ($3 per million)",
    ),
    (
        "anthropic/claude-sonnet-4.5:output",
        15.0 / 1e6,
        "per output token ($15 per million)",
    ),
    ("tasks:generate_video", 0.35, "per clip"),
    ("tasks:generate_character_voice", 0.01, "per line"),
    ("last-frame", 0.0, "per task"),
    ("brain", 0.0, "per query"),
];

/// Tokens (in, out) a language-model call is taken to use where its prompt is not known yet
/// (the reservation a budget check makes before the call).
pub const TYPICAL_CALL_TOKENS: (f64, f64) = (3000.0, 1500.0);

/// Characters per token, the usual rule of thumb for English text and JSON.
pub const CHARS_PER_TOKEN: f64 = 4.0;

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

    /// Dollars per input token and per output token of a language model (`<model>:input`,
    /// `<model>:output`; Claude Sonnet's $3 and $15 per million for models not listed).
    pub fn tokens(&self, model: &str) -> (f64, f64) {
        let get = |suffix: &str, default: f64| {
            self.table
                .get(&format!("{model}:{suffix}"))
                .copied()
                .unwrap_or(default)
        };
        (get("input", 3.0 / 1e6), get("output", 15.0 / 1e6))
    }

    /// What one language-model call of `tokens_in` and `tokens_out` costs. A price per call
    /// set for the model itself (`SLATE_PRICES={"<model>": 0.02}`) wins over its token prices.
    pub fn llm_call(&self, model: &str, tokens_in: f64, tokens_out: f64) -> f64 {
        if let Some(per_call) = self.table.get(model) {
            return *per_call;
        }
        let (i, o) = self.tokens(model);
        tokens_in * i + tokens_out * o
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
                Some(o) => Price {
                    provider: "openrouter".into(),
                    model: o.model.clone(),
                    unit_usd: self.llm_call(&o.model, TYPICAL_CALL_TOKENS.0, TYPICAL_CALL_TOKENS.1),
                },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_language_model_call_is_priced_by_its_tokens_unless_priced_per_call() {
        let m = "anthropic/claude-sonnet-4.5";
        let p = Prices::new(&BTreeMap::new());
        // 2,000 tokens in at $3/M and 500 out at $15/M.
        assert!((p.llm_call(m, 2000.0, 500.0) - 0.0135).abs() < 1e-12);
        // A model the table does not list is priced like the default model.
        assert!((p.llm_call("other/model", 2000.0, 500.0) - 0.0135).abs() < 1e-12);
        let mut o = BTreeMap::new();
        o.insert(format!("{m}:output"), 30.0 / 1e6);
        assert!((Prices::new(&o).llm_call(m, 2000.0, 500.0) - 0.021).abs() < 1e-12);
        o.insert(m.to_string(), 0.05);
        assert_eq!(Prices::new(&o).llm_call(m, 2000.0, 500.0), 0.05);
    }
}
