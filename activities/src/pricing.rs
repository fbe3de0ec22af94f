//! What a call costs before it is made: the price table the estimate and the budget checks use.
//!
//! Actual costs come from the providers' own figures (fal's `x-fal-billable-units` × the unit
//! price, OpenRouter's `usage.cost`, the tasks service's `cost`); these prices are what Slate
//! expects them to be, and what is recorded (marked estimated) when a provider leaves its
//! figure out. Each default carries the date it was read and where from (`docs/providers.md`
//! lists them); `SLATE_PRICES` (a JSON map of model or service key to dollars) overrides any
//! of them. A model the table does not list and `SLATE_PRICES` does not price is refused at
//! start ([`Prices::missing`]): it is never priced as another model. The local studio costs
//! nothing.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{ProviderSettings, VideoProvider};

/// The date the default prices were last read from the providers' pages.
pub const PRICES_AS_OF: &str = "2026-12-06";

/// What a price is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// One image made.
    Image,
    /// A thousand characters (fal bills moondream2 by the characters of the exchange).
    KiloChars,
    /// A second of video made.
    Second,
    /// A language-model token.
    Token,
    /// One clip, whatever its length.
    Clip,
    /// One voice line.
    Line,
    /// One media task.
    Task,
    /// One knowledge query.
    Query,
    /// A minute of music made.
    Minute,
}

impl Unit {
    /// "per image", "per 1,000 characters"...
    pub fn per(self) -> &'static str {
        match self {
            Unit::Image => "per image",
            Unit::KiloChars => "per 1,000 characters",
            Unit::Second => "per second of video",
            Unit::Token => "per token",
            Unit::Clip => "per clip",
            Unit::Line => "per line",
            Unit::Task => "per task",
            Unit::Query => "per query",
            Unit::Minute => "per minute of music",
        }
    }
}

/// One default price: key, dollars per unit, the unit, and where it was read.
#[derive(Debug, Clone, Copy)]
pub struct DefaultPrice {
    /// Model or service key (`fal-ai/nano-banana-2`, `anthropic/claude-sonnet-4.6:input`).
    pub key: &'static str,
    /// Dollars per unit.
    pub usd: f64,
    /// The unit.
    pub unit: Unit,
    /// Where the figure comes from.
    pub source: &'static str,
}

const fn price(key: &'static str, usd: f64, unit: Unit, source: &'static str) -> DefaultPrice {
    DefaultPrice {
        key,
        usd,
        unit,
        source,
    }
}

/// The default prices, as published by the providers on [`PRICES_AS_OF`].
pub const DEFAULT_PRICES: &[DefaultPrice] = &[
    price(
        "fal-ai/nano-banana-2",
        0.08,
        Unit::Image,
        "fal.ai model page (1K output; 2K 1.5x, 4K 2x)",
    ),
    price(
        "fal-ai/nano-banana-2/edit",
        0.08,
        Unit::Image,
        "fal.ai model page (1K output)",
    ),
    price(
        "fal-ai/moondream2/visual-query",
        0.01,
        Unit::KiloChars,
        "fal.ai model page",
    ),
    price(
        "fal-ai/kling-video/v2.1/standard/image-to-video",
        0.056,
        Unit::Second,
        "fal.ai model page ($0.28 per 5 s clip)",
    ),
    price(
        "fal-ai/veo3/fast/image-to-video",
        0.10,
        Unit::Second,
        "fal.ai model page (audio off; $0.15 with audio)",
    ),
    price(
        "fal-ai/minimax/hailuo-02/standard/image-to-video",
        0.045,
        Unit::Second,
        "fal.ai model page (768p)",
    ),
    price(
        "fal-ai/elevenlabs/music",
        0.80,
        Unit::Minute,
        "fal.ai model page (per minute of output)",
    ),
    price(
        "anthropic/claude-sonnet-4.6:input",
        3.0 / 1e6,
        Unit::Token,
        "OpenRouter model page ($3 per million input tokens)",
    ),
    price(
        "anthropic/claude-sonnet-4.6:output",
        15.0 / 1e6,
        Unit::Token,
        "OpenRouter model page ($15 per million output tokens)",
    ),
    price(
        "tasks:generate_video",
        0.35,
        Unit::Clip,
        "the tasks service's operator (spec: GPU minutes per 7 s clip)",
    ),
    price(
        "tasks:generate_character_voice",
        0.01,
        Unit::Line,
        "the tasks service's operator",
    ),
    price(
        "last-frame",
        0.0,
        Unit::Task,
        "the last-frame service's operator",
    ),
    price("brain", 0.0, Unit::Query, "the brain service's operator"),
];

/// A model that its maker has retired or scheduled to retire, and what replaces it.
#[derive(Debug, Clone, Copy)]
pub struct Retired {
    /// The model key.
    pub key: &'static str,
    /// The day it stops (or stopped) being served.
    pub on: &'static str,
    /// What to use instead.
    pub replacement: &'static str,
    /// Who says so.
    pub source: &'static str,
}

/// Models known to be retired: the start refuses them, naming the replacement.
pub const RETIRED: &[Retired] = &[
    Retired {
        key: "anthropic/claude-sonnet-4.5",
        on: "2026-11-30",
        replacement: "anthropic/claude-sonnet-4.6",
        source: "Anthropic's model deprecations page",
    },
    Retired {
        key: "fal-ai/nano-banana",
        on: "2026-10-02",
        replacement: "fal-ai/nano-banana-2",
        source: "Google's Gemini 2.5 Flash Image shutdown notice",
    },
    Retired {
        key: "fal-ai/nano-banana/edit",
        on: "2026-10-02",
        replacement: "fal-ai/nano-banana-2/edit",
        source: "Google's Gemini 2.5 Flash Image shutdown notice",
    },
];

/// The retirement of `model`, if it has passed by `today` (`YYYY-MM-DD`).
pub fn retired(model: &str, today: &str) -> Option<&'static Retired> {
    RETIRED.iter().find(|r| r.key == model && r.on <= today)
}

/// Tokens (in, out) a language-model call is taken to use where its prompt is not known yet
/// (the reservation a budget check makes before the call).
pub const TYPICAL_CALL_TOKENS: (f64, f64) = (3000.0, 1500.0);

/// Characters per token, the usual rule of thumb for English text and JSON.
pub const CHARS_PER_TOKEN: f64 = 4.0;

/// Characters a vision question and its answer take (a prompt of a few sentences, a yes or no
/// and one sentence): what a model billed by the character is expected to charge a question.
pub const VISION_CHARS_PER_QUESTION: f64 = 500.0;

/// The kinds of paid call the pipeline makes.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
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
    /// A last-frame service task (frame, stitch, music-track).
    Media,
    /// A minute of the film's music.
    Music,
}

/// One kind of call, priced with the configured provider.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Price {
    /// Which provider: `fal.ai`, `openrouter`, `tasks`, `last-frame`, `brain` or `local`.
    pub provider: String,
    /// The model or service key priced.
    pub model: String,
    /// Dollars per call (per second of video for a model priced by the second).
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

/// The price table: the defaults, then the operator's overrides.
#[derive(Debug, Clone)]
pub struct Prices {
    table: BTreeMap<String, f64>,
}

impl Default for Prices {
    /// The default prices, without overrides.
    fn default() -> Self {
        Prices::new(&BTreeMap::new())
    }
}

impl Prices {
    /// The defaults, then `overrides` (`SLATE_PRICES`, and fal's `SLATE_FAL_PRICES`).
    pub fn new(overrides: &BTreeMap<String, f64>) -> Prices {
        let mut table: BTreeMap<String, f64> = DEFAULT_PRICES
            .iter()
            .map(|p| (p.key.to_string(), p.usd))
            .collect();
        table.extend(overrides.iter().map(|(k, v)| (k.clone(), *v)));
        Prices { table }
    }

    /// Dollars per unit of `key`, if it is priced.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.table.get(key).copied()
    }

    /// Dollars per unit of `key`. A key without a price is refused at start
    /// ([`Prices::missing`]); should one reach here anyway, it is logged and counted as zero.
    pub fn unit(&self, key: &str) -> f64 {
        self.get(key).unwrap_or_else(|| {
            tracing::error!(key, "no price for this model: set it in SLATE_PRICES");
            0.0
        })
    }

    /// What a default counts in, for a key the table knows.
    pub fn unit_of(key: &str) -> Option<Unit> {
        DEFAULT_PRICES.iter().find(|p| p.key == key).map(|p| p.unit)
    }

    /// Dollars per input token and per output token of a language model (`<model>:input`,
    /// `<model>:output`), if both are priced.
    pub fn tokens(&self, model: &str) -> Option<(f64, f64)> {
        Some((
            self.get(&format!("{model}:input"))?,
            self.get(&format!("{model}:output"))?,
        ))
    }

    /// What one language-model call of `tokens_in` and `tokens_out` costs. A price per call
    /// set for the model itself (`SLATE_PRICES={"<model>": 0.02}`) wins over its token prices.
    pub fn llm_call(&self, model: &str, tokens_in: f64, tokens_out: f64) -> f64 {
        if let Some(per_call) = self.get(model) {
            return per_call;
        }
        match self.tokens(model) {
            Some((i, o)) => tokens_in * i + tokens_out * o,
            None => self.unit(model),
        }
    }

    /// What one vision question costs with `model`: per question, or by its characters for a
    /// model billed per 1,000 characters.
    pub fn vision_question(&self, model: &str) -> f64 {
        let per = self.unit(model);
        match Self::unit_of(model) {
            Some(Unit::KiloChars) => per * VISION_CHARS_PER_QUESTION / 1000.0,
            _ => per,
        }
    }

    /// The models `s` would call that have no price, each with the variable that sets it.
    /// The start refuses such a configuration: an unpriced model is never priced as another.
    pub fn missing(&self, s: &ProviderSettings) -> Vec<(String, &'static str)> {
        let mut out = vec![];
        if let Some(f) = &s.fal {
            let mut models = vec![
                (&f.image_model, "SLATE_FAL_IMAGE_MODEL"),
                (&f.edit_model, "SLATE_FAL_EDIT_MODEL"),
                (&f.vision_model, "SLATE_FAL_VISION_MODEL"),
            ];
            if matches!(s.video, VideoProvider::Fal | VideoProvider::Auto) {
                models.push((&f.video_model, "SLATE_FAL_VIDEO_MODEL"));
            }
            if let Some(m) = &f.music_model {
                models.push((m, "SLATE_FAL_MUSIC_MODEL"));
            }
            for (m, var) in models {
                if self.get(m).is_none() {
                    out.push((m.clone(), var));
                }
            }
        }
        if let Some(o) = &s.openrouter
            && self.get(&o.model).is_none()
            && self.tokens(&o.model).is_none()
        {
            out.push((o.model.clone(), "SLATE_OPENROUTER_MODEL"));
        }
        out
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
                Some(f) => Price {
                    provider: "fal.ai".into(),
                    model: f.vision_model.clone(),
                    unit_usd: self.vision_question(&f.vision_model),
                },
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
            CallKind::Music => match s.fal.as_ref().and_then(|f| f.music_model.as_ref()) {
                Some(m) => p("fal.ai", m),
                None => Price::free("music"),
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
                crate::video_models::pick_duration(&f.video_durations, seconds)
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
        let m = "anthropic/claude-sonnet-4.6";
        let p = Prices::new(&BTreeMap::new());
        // 2,000 tokens in at $3/M and 500 out at $15/M.
        assert!((p.llm_call(m, 2000.0, 500.0) - 0.0135).abs() < 1e-12);
        // A model the table does not list has no token prices: it is not priced as another.
        assert_eq!(p.tokens("other/model"), None);
        let mut o = BTreeMap::new();
        o.insert(format!("{m}:output"), 30.0 / 1e6);
        assert!((Prices::new(&o).llm_call(m, 2000.0, 500.0) - 0.021).abs() < 1e-12);
        o.insert(m.to_string(), 0.05);
        assert_eq!(Prices::new(&o).llm_call(m, 2000.0, 500.0), 0.05);
    }

    #[test]
    fn moondream_is_priced_by_characters_and_every_default_is_sourced() {
        let p = Prices::new(&BTreeMap::new());
        let q = p.vision_question("fal-ai/moondream2/visual-query");
        assert!((q - 0.005).abs() < 1e-12, "{q}");
        for d in DEFAULT_PRICES {
            assert!(!d.source.is_empty() && d.usd >= 0.0, "{}", d.key);
        }
        // No default is a retired model.
        for r in RETIRED {
            assert!(Prices::unit_of(r.key).is_none(), "{} is retired", r.key);
        }
        assert!(retired("anthropic/claude-sonnet-4.5", "2026-12-06").is_some());
        assert!(retired("anthropic/claude-sonnet-4.5", "2026-11-01").is_none());
    }
}
