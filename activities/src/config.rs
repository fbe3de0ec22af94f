//! Which implementation each activity uses.
//!
//! The local studio is the default. A remote client is used when its key is set. The values
//! arrive as [`ProviderVars`], read by the server's one configuration loader (defaults, then a
//! TOML file, then the environment); [`PROVIDER_VARIABLES`] names each one. Secrets are held
//! in [`Secret`], which never prints.
//!
//! (Over 600 lines on purpose: one loader for every provider setting (decision in README: one
//! place reads the environment), with its validation and messages side by side.)

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// A secret value: readable by the code that needs it, never by `Debug` or logs, and wiped
/// from memory when dropped (`secrecy`).
#[derive(Clone)]
pub struct Secret(secrecy::SecretString);

impl Secret {
    /// Wrap a value.
    pub fn new(v: impl Into<String>) -> Self {
        Secret(secrecy::SecretString::from(v.into()))
    }
    /// The value, for the one header that needs it.
    pub fn expose(&self) -> &str {
        use secrecy::ExposeSecret;
        self.0.expose_secret()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A service reached with an API key.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Base URL, without a trailing slash.
    pub url: String,
    /// Credential.
    pub key: Secret,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// fal.ai settings.
#[derive(Debug, Clone)]
pub struct FalSettings {
    /// `FAL_KEY`.
    pub key: Secret,
    /// Queue API base (`https://queue.fal.run`).
    pub queue_url: String,
    /// Text-to-image model.
    pub image_model: String,
    /// Image edit model (takes `image_urls`).
    pub edit_model: String,
    /// Vision model.
    pub vision_model: String,
    /// Image-to-video model.
    pub video_model: String,
    /// The video model's allowed clip lengths, seconds (a scene is made at the nearest allowed
    /// length at or above its own, then trimmed): the model's own
    /// ([`crate::video_models::VideoModel`]) unless `SLATE_FAL_VIDEO_DURATIONS` says otherwise.
    pub video_durations: Vec<f64>,
    /// The film's music model (`SLATE_FAL_MUSIC_MODEL`; `off`: none, the music is synthesized
    /// offline).
    pub music_model: Option<String>,
    /// Dollars per billable unit (`x-fal-billable-units`), by model, over the price table.
    pub prices: BTreeMap<String, f64>,
    /// Per-request timeout of API calls; a download may stall this long between two reads.
    pub timeout: Duration,
    /// fal's storage API (`https://rest.alpha.fal.ai`): our images and clips are uploaded here
    /// and handed to models by the URL it gives, as fal's official clients do.
    pub storage_url: String,
    /// fal's platform API (`https://api.fal.ai/v1`): model metadata and prices, for `slate doctor`.
    pub api_url: String,
    /// The keys fal signs its webhooks with (a JWKS).
    pub jwks_url: String,
}

/// OpenRouter settings.
#[derive(Debug, Clone)]
pub struct OpenRouterSettings {
    /// `OPENROUTER_API_KEY`.
    pub key: Secret,
    /// Chat completions endpoint.
    pub url: String,
    /// Model slug.
    pub model: String,
    /// Per-request timeout: long enough for an answer of `max_tokens` (decision 0021).
    pub timeout: Duration,
    /// The longest answer asked for, tokens (`max_tokens`).
    pub max_tokens: u32,
}

impl OpenRouterSettings {
    /// The models list (`GET …/models`), next to the chat completions endpoint.
    pub fn models_url(&self) -> String {
        match self.url.strip_suffix("/chat/completions") {
            Some(base) => format!("{base}/models"),
            None => format!("{}/models", self.url.trim_end_matches('/')),
        }
    }
}

/// Every provider setting. `None` means "use the local studio".
#[derive(Debug, Clone, Default)]
pub struct ProviderSettings {
    /// fal.ai: images, vision, video.
    pub fal: Option<FalSettings>,
    /// OpenRouter: the language model.
    pub openrouter: Option<OpenRouterSettings>,
    /// The brain (knowledge) service.
    pub brain: Option<ServiceSettings>,
    /// The tasks service (video, voice).
    pub tasks: Option<ServiceSettings>,
    /// The last-frame service (media operations).
    pub last_frame: Option<ServiceSettings>,
    /// Who makes the videos (`SLATE_VIDEO_PROVIDER`).
    pub video: VideoProvider,
    /// Price overrides, dollars per unit by model or service key (`SLATE_PRICES`).
    pub prices: BTreeMap<String, f64>,
    /// Our own public base URL, for webhooks and callbacks (`SLATE_PUBLIC_URL`).
    pub public_url: Option<String>,
    /// A base URL where providers can fetch our blobs (`SLATE_MEDIA_URL`); without it, images
    /// are sent inline as data URIs.
    pub media_url: Option<String>,
    /// The webhook secret (`SLATE_WEBHOOK_SECRET`): callback URLs we hand to providers carry a
    /// token derived from it, never the secret itself.
    pub webhook_secret: Option<Secret>,
    /// The key that signs the expiring `/media` URLs handed to the spec's services
    /// (`SLATE_MEDIA_SECRET`, else derived from the webhook secret).
    pub media_secret: Option<Secret>,
    /// Webhooks without a valid secret, token or signature are taken anyway: only when the
    /// operator says so (`SLATE_WEBHOOK_AUTH=off`); refused by default.
    pub webhook_auth_off: bool,
    /// How often a job awaited inside one call (a voice, a last-frame task, a vision question)
    /// is polled; `None`: every 2 s (vision: 500 ms). Benchmarks on providers scaled down in
    /// time shorten it.
    pub poll_every: Option<Duration>,
}

/// Who makes the videos. `Auto` (the default) picks fal.ai when `FAL_KEY` is set, else the
/// tasks service when `TASK_API_KEY` is, else the local studio; naming one lets fal.ai make
/// the images while the tasks service's GPUs make the clips.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VideoProvider {
    /// fal.ai, then the tasks service, then local.
    #[default]
    Auto,
    /// fal.ai's image-to-video model.
    Fal,
    /// The tasks service.
    Tasks,
    /// The local studio.
    Local,
}

/// The token that authenticates callbacks to `path`: HMAC-SHA256 of the path under the webhook
/// secret, hex. Scoped to one path, so a leaked callback URL opens no other webhook, and the
/// secret never leaves the server.
pub fn webhook_token(secret: &Secret, path: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.expose().as_bytes());
    ring::hmac::sign(&key, path.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where fal publishes the keys it signs webhooks with.
pub const DEFAULT_FAL_JWKS_URL: &str = "https://rest.alpha.fal.ai/.well-known/jwks.json";

/// The default image model: Nano Banana 2 (Gemini 3.1 Flash Image) on fal.
pub const DEFAULT_FAL_IMAGE_MODEL: &str = "fal-ai/nano-banana-2";
/// The default image edit model (takes `image_urls`).
pub const DEFAULT_FAL_EDIT_MODEL: &str = "fal-ai/nano-banana-2/edit";
/// The default vision model.
pub const DEFAULT_FAL_VISION_MODEL: &str = "fal-ai/moondream2/visual-query";
/// The default image-to-video model.
pub const DEFAULT_FAL_VIDEO_MODEL: &str = "fal-ai/kling-video/v2.1/standard/image-to-video";
/// The film's music on fal: ElevenLabs Music (decision 0030: cleared for commercial film use,
/// an instrumental switch, priced per minute made).
pub const DEFAULT_FAL_MUSIC_MODEL: &str = "fal-ai/elevenlabs/music";
/// The default language model on OpenRouter (Claude Sonnet 4.5's named replacement).
pub const DEFAULT_OPENROUTER_MODEL: &str = "anthropic/claude-sonnet-4.6";
/// The longest answer asked of the language model, tokens: a screenplay breakdown of a
/// feature's scenes fits.
pub const DEFAULT_MAX_TOKENS: u32 = 16_000;

/// A language-model call's timeout: long enough for `max_tokens` at a slow 20 tokens a second,
/// plus a minute of queueing, so a timeout means a provider that stopped, not a long answer
/// (decision 0021).
pub fn llm_timeout_secs(max_tokens: u32) -> u64 {
    60 + u64::from(max_tokens) / 20
}

/// The key that signs `/media` URLs when only the webhook secret is set: derived from it, so
/// neither can be told from the other.
pub fn media_secret_from(webhook_secret: &Secret) -> Secret {
    Secret::new(webhook_token(webhook_secret, "slate-media-urls"))
}

/// Whether two secrets are equal, in time that depends only on their lengths.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= (a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

fn parse_durations(d: &str) -> Result<Vec<f64>, String> {
    let v: Vec<f64> = d
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .ok_or_else(|| format!("SLATE_FAL_VIDEO_DURATIONS: `{x}` is not a length in seconds (for example 5,10)"))
        })
        .collect::<Result<_, _>>()?;
    if v.is_empty() {
        return Err("SLATE_FAL_VIDEO_DURATIONS lists no length (for example 5,10)".into());
    }
    Ok(v)
}

/// Every provider variable, as the environment spells it, and whether it is a secret (secrets
/// are taken from the environment only, never from a file). The key in [`ProviderVars`] and in
/// the TOML file is the name without `SLATE_`, in lower case.
pub const PROVIDER_VARIABLES: &[(&str, bool)] = &[
    ("FAL_KEY", true),
    ("SLATE_FAL_QUEUE_URL", false),
    ("SLATE_FAL_IMAGE_MODEL", false),
    ("SLATE_FAL_EDIT_MODEL", false),
    ("SLATE_FAL_VISION_MODEL", false),
    ("SLATE_FAL_VIDEO_MODEL", false),
    ("SLATE_FAL_VIDEO_DURATIONS", false),
    ("SLATE_FAL_MUSIC_MODEL", false),
    ("SLATE_FAL_PRICES", false),
    ("SLATE_FAL_TIMEOUT_SECS", false),
    ("SLATE_FAL_STORAGE_URL", false),
    ("SLATE_FAL_API_URL", false),
    ("SLATE_FAL_JWKS_URL", false),
    ("OPENROUTER_API_KEY", true),
    ("SLATE_OPENROUTER_URL", false),
    ("SLATE_OPENROUTER_MODEL", false),
    ("SLATE_OPENROUTER_TIMEOUT_SECS", false),
    ("SLATE_OPENROUTER_MAX_TOKENS", false),
    ("BRAIN_SERVICE_API_KEY", true),
    ("SLATE_BRAIN_URL", false),
    ("TASK_API_KEY", true),
    ("SLATE_TASKS_URL", false),
    ("LAST_FRAME_TOKEN", true),
    ("SLATE_LAST_FRAME_URL", false),
    ("SLATE_VIDEO_PROVIDER", false),
    ("SLATE_PRICES", false),
    ("SLATE_PUBLIC_URL", false),
    ("SLATE_MEDIA_URL", false),
    ("SLATE_WEBHOOK_SECRET", true),
    ("SLATE_MEDIA_SECRET", true),
    ("SLATE_WEBHOOK_AUTH", false),
];

/// The provider settings as read, before they are checked: what the configuration loader
/// deserializes. Every field is optional; [`ProviderSettings::from_vars`] fills the defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // each field is the variable of the same name, see PROVIDER_VARIABLES
pub struct ProviderVars {
    pub fal_key: Option<String>,
    pub fal_queue_url: Option<String>,
    pub fal_image_model: Option<String>,
    pub fal_edit_model: Option<String>,
    pub fal_vision_model: Option<String>,
    pub fal_video_model: Option<String>,
    /// Comma-separated seconds, `5,10`.
    pub fal_video_durations: Option<String>,
    pub fal_music_model: Option<String>,
    /// A JSON map of model to dollars per billable unit.
    pub fal_prices: Option<String>,
    pub fal_timeout_secs: Option<u64>,
    pub fal_storage_url: Option<String>,
    pub fal_api_url: Option<String>,
    pub fal_jwks_url: Option<String>,
    pub openrouter_api_key: Option<String>,
    pub openrouter_url: Option<String>,
    pub openrouter_model: Option<String>,
    pub openrouter_timeout_secs: Option<u64>,
    pub openrouter_max_tokens: Option<u32>,
    pub brain_service_api_key: Option<String>,
    pub brain_url: Option<String>,
    pub task_api_key: Option<String>,
    pub tasks_url: Option<String>,
    pub last_frame_token: Option<String>,
    pub last_frame_url: Option<String>,
    pub video_provider: Option<String>,
    /// A JSON map of model or service key to dollars per unit.
    pub prices: Option<String>,
    pub public_url: Option<String>,
    pub media_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub media_secret: Option<String>,
    /// `required` (the default) or `off`.
    pub webhook_auth: Option<String>,
}

fn http_url(var: &str, u: String) -> Result<String, String> {
    let u = u.trim().trim_end_matches('/').to_string();
    if u.starts_with("http://") || u.starts_with("https://") {
        Ok(u)
    } else {
        Err(format!("{var} `{u}` is not an http:// or https:// URL"))
    }
}

fn url(var: &str, set: Option<String>, default: &str) -> Result<String, String> {
    http_url(var, set.unwrap_or_else(|| default.to_string()))
}

/// A service of the seed (brain, tasks, last frame): on when its key is set.
fn service(
    key: Option<String>,
    var: &str,
    set: Option<String>,
    default: &str,
    timeout: u64,
) -> Result<Option<ServiceSettings>, String> {
    key.map(|k| {
        Ok(ServiceSettings {
            url: url(var, set, default)?,
            key: Secret::new(k),
            timeout: Duration::from_secs(timeout),
        })
    })
    .transpose()
}

/// `SLATE_PRICES`: a JSON map of model or service to dollars per unit.
fn prices_from(json: Option<&str>) -> Result<BTreeMap<String, f64>, String> {
    let prices: BTreeMap<String, f64> = match json {
        None => BTreeMap::new(),
        Some(j) => serde_json::from_str(j).map_err(|e| {
            format!(
                "SLATE_PRICES is not a JSON map of model or service to dollars per unit ({e}); for example {{\"tasks:generate_video\": 0.4}}"
            )
        })?,
    };
    if let Some((k, p)) = prices.iter().find(|(_, p)| !p.is_finite() || **p < 0.0) {
        return Err(format!(
            "SLATE_PRICES: the price of `{k}` ({p}) is not a sum of dollars"
        ));
    }
    Ok(prices)
}

/// fal.ai, on when `FAL_KEY` is set; its prices are `SLATE_FAL_PRICES` over `SLATE_PRICES`.
fn fal_from(
    v: &mut ProviderVars,
    prices: &BTreeMap<String, f64>,
) -> Result<Option<FalSettings>, String> {
    let video_model = v
        .fal_video_model
        .clone()
        .unwrap_or_else(|| DEFAULT_FAL_VIDEO_MODEL.into());
    Ok(match v.fal_key.take() {
        None => None,
        Some(k) => Some(FalSettings {
            key: Secret::new(k),
            queue_url: url("SLATE_FAL_QUEUE_URL", v.fal_queue_url.take(), "https://queue.fal.run")?,
            image_model: v.fal_image_model.take()
                .unwrap_or_else(|| DEFAULT_FAL_IMAGE_MODEL.into()),
            edit_model: v.fal_edit_model.take()
                .unwrap_or_else(|| DEFAULT_FAL_EDIT_MODEL.into()),
            vision_model: v.fal_vision_model.take()
                .unwrap_or_else(|| DEFAULT_FAL_VISION_MODEL.into()),
            video_durations: match (v.fal_video_durations.take(), crate::video_models::VideoModel::of(&video_model)) {
                (Some(d), _) => parse_durations(&d)?,
                (None, Some(m)) => m.durations.to_vec(),
                (None, None) => {
                    return Err(format!(
                        "SLATE_FAL_VIDEO_MODEL `{video_model}` is not a model Slate knows the clip lengths of: set SLATE_FAL_VIDEO_DURATIONS to the lengths it takes (for example 5,10), and its price per second in SLATE_PRICES"
                    ));
                }
            },
            video_model,
            music_model: match v.fal_music_model.take() {
                None => Some(DEFAULT_FAL_MUSIC_MODEL.into()),
                Some(m) if m.trim().eq_ignore_ascii_case("off") => None,
                Some(m) => Some(m.trim().to_string()),
            },
            prices: match v.fal_prices.take() {
                None => prices.clone(),
                Some(j) => serde_json::from_str::<BTreeMap<String, f64>>(&j).map(|mut m| {
                    for (k, p) in prices {
                        m.entry(k.clone()).or_insert(*p);
                    }
                    m
                }).map_err(|e| {
                    format!(
                        "SLATE_FAL_PRICES is not a JSON map of model to dollars per unit ({e}); for example {{\"fal-ai/nano-banana\": 0.039}}"
                    )
                })?,
            },
            timeout: Duration::from_secs(v.fal_timeout_secs.unwrap_or(60)),
            storage_url: url("SLATE_FAL_STORAGE_URL", v.fal_storage_url.take(), "https://rest.alpha.fal.ai")?,
            api_url: url("SLATE_FAL_API_URL", v.fal_api_url.take(), "https://api.fal.ai/v1")?,
            jwks_url: url(
                "SLATE_FAL_JWKS_URL",
                v.fal_jwks_url.clone(),
                DEFAULT_FAL_JWKS_URL,
            )?,
        }),
    })
}

/// OpenRouter, on when `OPENROUTER_API_KEY` is set.
fn openrouter_from(v: &mut ProviderVars) -> Result<Option<OpenRouterSettings>, String> {
    Ok(match v.openrouter_api_key.take() {
        None => None,
        Some(k) => Some(OpenRouterSettings {
            key: Secret::new(k),
            url: url(
                "SLATE_OPENROUTER_URL",
                v.openrouter_url.take(),
                "https://openrouter.ai/api/v1/chat/completions",
            )?,
            model: v
                .openrouter_model
                .take()
                .unwrap_or_else(|| DEFAULT_OPENROUTER_MODEL.into()),
            max_tokens: match v.openrouter_max_tokens {
                Some(0) => return Err("SLATE_OPENROUTER_MAX_TOKENS must be at least 1".into()),
                Some(n) => n,
                None => DEFAULT_MAX_TOKENS,
            },
            timeout: Duration::from_secs(v.openrouter_timeout_secs.unwrap_or_else(|| {
                llm_timeout_secs(v.openrouter_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS))
            })),
        }),
    })
}

/// `SLATE_VIDEO_PROVIDER`, checked against the keys that are set.
fn video_provider_from(v: &ProviderVars, fal_set: bool) -> Result<VideoProvider, String> {
    Ok(match v.video_provider.as_deref().map(str::trim) {
        None | Some("auto") => VideoProvider::Auto,
        Some("fal") if fal_set => VideoProvider::Fal,
        Some("tasks") if v.task_api_key.is_some() => VideoProvider::Tasks,
        Some("local") => VideoProvider::Local,
        Some("fal") => {
            return Err("SLATE_VIDEO_PROVIDER is fal, but FAL_KEY is not set".into());
        }
        Some("tasks") => {
            return Err("SLATE_VIDEO_PROVIDER is tasks, but TASK_API_KEY is not set".into());
        }
        Some(other) => {
            return Err(format!(
                "SLATE_VIDEO_PROVIDER `{other}` is not one of auto, fal, tasks, local"
            ));
        }
    })
}

/// `SLATE_WEBHOOK_AUTH`: true when it is `off`.
fn webhook_auth_off(auth: Option<&str>) -> Result<bool, String> {
    Ok(match auth.map(str::trim) {
        None | Some("required") | Some("on") => false,
        Some("off") => true,
        Some(other) => {
            return Err(format!(
                "SLATE_WEBHOOK_AUTH `{other}` is not `required` or `off`"
            ));
        }
    })
}

impl ProviderSettings {
    /// Check the values read and fill the defaults. An error names the variable to fix.
    pub fn from_vars(mut v: ProviderVars) -> Result<Self, String> {
        let prices = prices_from(v.prices.as_deref())?;
        let fal = fal_from(&mut v, &prices)?;
        let openrouter = openrouter_from(&mut v)?;
        let video = video_provider_from(&v, fal.is_some())?;
        Ok(ProviderSettings {
            fal,
            video,
            prices,
            openrouter,
            brain: service(
                v.brain_service_api_key,
                "SLATE_BRAIN_URL",
                v.brain_url,
                "https://brain.ft.tc",
                30,
            )?,
            tasks: service(
                v.task_api_key,
                "SLATE_TASKS_URL",
                v.tasks_url,
                "https://tasks.ft.tc",
                30,
            )?,
            last_frame: service(
                v.last_frame_token,
                "SLATE_LAST_FRAME_URL",
                v.last_frame_url,
                "https://last-frame.ft.tc",
                60,
            )?,
            public_url: v
                .public_url
                .map(|u| http_url("SLATE_PUBLIC_URL", u))
                .transpose()?,
            media_url: v
                .media_url
                .map(|u| http_url("SLATE_MEDIA_URL", u))
                .transpose()?,
            media_secret: v.media_secret.map(Secret::new).or_else(|| {
                v.webhook_secret
                    .as_ref()
                    .map(|w| media_secret_from(&Secret::new(w.clone())))
            }),
            webhook_secret: v.webhook_secret.map(Secret::new),
            webhook_auth_off: webhook_auth_off(v.webhook_auth.as_deref())?,
            poll_every: None,
        })
    }

    /// Our callback URL for the webhook at `path` (for example `/api/webhooks/fal`), with its
    /// token when a webhook secret is set; none without a public URL (the workflows then poll).
    pub fn webhook_url(&self, path: &str) -> Option<String> {
        self.webhook_url_with(path, &[])
    }

    /// [`ProviderSettings::webhook_url`] carrying `query` (our run id, our reference for the
    /// job), so that a sender whose body names neither (the spec's callbacks) still reaches
    /// the run it is about. The token covers the path and the query: a callback URL cannot be
    /// pointed at another run.
    pub fn webhook_url_with(&self, path: &str, query: &[(&str, &str)]) -> Option<String> {
        let base = self.public_url.as_ref()?;
        let q = query
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::remote::services::urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let signed = if q.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{q}")
        };
        Some(match &self.webhook_secret {
            Some(s) => {
                let sep = if q.is_empty() { '?' } else { '&' };
                format!("{base}{signed}{sep}token={}", webhook_token(s, &signed))
            }
            None => format!("{base}{signed}"),
        })
    }

    /// Whether any activity uses a paid remote service.
    pub fn any_remote(&self) -> bool {
        self.fal.is_some()
            || self.openrouter.is_some()
            || self.brain.is_some()
            || self.tasks.is_some()
            || self.last_frame.is_some()
    }

    /// One line per activity: which implementation is in use, with its model (for the start
    /// banner, logs and `slate demo`).
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let local = |what: &str| what.to_string();
        let video = match (self.video, &self.fal, &self.tasks) {
            (VideoProvider::Fal | VideoProvider::Auto, Some(f), _) => {
                format!("fal.ai {}", f.video_model)
            }
            (VideoProvider::Tasks | VideoProvider::Auto, _, Some(t)) => {
                format!("tasks service generate_video at {}", t.url)
            }
            _ => local("local ffmpeg (still to clip with a camera move)"),
        };
        vec![
            (
                "language model",
                match &self.openrouter {
                    Some(o) => format!("OpenRouter {} (max {} tokens)", o.model, o.max_tokens),
                    None => local("local planner"),
                },
            ),
            (
                "images",
                match &self.fal {
                    Some(f) => format!("fal.ai {} (edits: {})", f.image_model, f.edit_model),
                    None => local("local storyboard renderer"),
                },
            ),
            (
                "vision",
                match &self.fal {
                    Some(f) => format!("fal.ai {}", f.vision_model),
                    None => local("local manifest check"),
                },
            ),
            (
                "knowledge",
                match &self.brain {
                    Some(b) => format!("brain service at {}", b.url),
                    None => local("local full-text search"),
                },
            ),
            ("video", video),
            (
                "music",
                match self.fal.as_ref().and_then(|f| f.music_model.as_ref()) {
                    Some(m) => format!("fal.ai {m} (instrumental)"),
                    None => local("local synthesis (fundsp)"),
                },
            ),
            (
                "voice",
                match &self.tasks {
                    Some(t) => format!("tasks service generate_character_voice at {}", t.url),
                    None => local("local espeak-ng"),
                },
            ),
            (
                "media ops",
                match &self.last_frame {
                    Some(l) => format!(
                        "last-frame service at {} (music-track mixes the film's sound; trim and voices local)",
                        l.url
                    ),
                    None => local("local ffmpeg"),
                },
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_by_default_remote_when_a_key_is_set() {
        let s = ProviderSettings::from_vars(ProviderVars::default()).unwrap();
        assert!(s.fal.is_none() && s.openrouter.is_none() && s.brain.is_none());
        let s = ProviderSettings::from_vars(ProviderVars {
            fal_key: Some("k1".into()),
            fal_queue_url: Some("http://x/".into()),
            fal_video_durations: Some("6, 8".into()),
            fal_prices: Some(r#"{"m": 0.5}"#.into()),
            ..Default::default()
        })
        .unwrap();
        let fal = s.fal.unwrap();
        assert_eq!(fal.queue_url, "http://x");
        assert_eq!(fal.key.expose(), "k1");
        assert_eq!(fal.video_durations, vec![6.0, 8.0]);
        assert_eq!(fal.prices.get("m"), Some(&0.5));
        assert!(!format!("{fal:?}").contains("k1"), "a secret never prints");
    }

    #[test]
    fn bad_values_name_the_variable_and_never_the_secret() {
        let with = |f: fn(&mut ProviderVars)| {
            let mut v = ProviderVars {
                fal_key: Some("sekrit".into()),
                ..Default::default()
            };
            f(&mut v);
            ProviderSettings::from_vars(v).unwrap_err()
        };
        for (e, var) in [
            (
                with(|v| v.fal_queue_url = Some("queue.fal.run".into())),
                "SLATE_FAL_QUEUE_URL",
            ),
            (
                with(|v| v.fal_video_durations = Some("5,x".into())),
                "SLATE_FAL_VIDEO_DURATIONS",
            ),
            (
                with(|v| v.fal_video_durations = Some("0".into())),
                "SLATE_FAL_VIDEO_DURATIONS",
            ),
            (
                with(|v| v.fal_prices = Some("[1]".into())),
                "SLATE_FAL_PRICES",
            ),
            (
                with(|v| v.public_url = Some("ftp://x".into())),
                "SLATE_PUBLIC_URL",
            ),
        ] {
            assert!(e.contains(var), "{e}");
            assert!(!e.contains("sekrit"), "{e}");
        }
    }

    #[test]
    fn every_field_has_its_variable() {
        // The loader maps each variable to the field of the same name; a field without a
        // variable could never be set.
        let keys: Vec<String> = PROVIDER_VARIABLES
            .iter()
            .map(|(v, _)| v.strip_prefix("SLATE_").unwrap_or(v).to_lowercase())
            .collect();
        let debug = format!("{:?}", ProviderVars::default());
        let fields = debug.matches(": None").count();
        assert_eq!(fields, keys.len(), "{debug}");
        for k in &keys {
            assert!(debug.contains(&format!("{k}: None")), "{k} is not a field");
        }
    }
}

#[cfg(test)]
mod webhook_tests {
    use super::*;

    #[test]
    fn tokens_are_hmac_sha256_and_scoped_to_a_path() {
        // The published HMAC-SHA256 example (key "key").
        assert_eq!(
            webhook_token(
                &Secret::new("key"),
                "The quick brown fox jumps over the lazy dog"
            ),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        let s = ProviderSettings {
            public_url: Some("https://slate.example".into()),
            webhook_secret: Some(Secret::new("s3cret")),
            ..Default::default()
        };
        let url = s.webhook_url("/api/webhooks/fal").unwrap();
        assert!(url.starts_with("https://slate.example/api/webhooks/fal?token="));
        assert!(!url.contains("s3cret"));
        assert_ne!(
            url.split_once("token=").unwrap().1,
            webhook_token(&Secret::new("s3cret"), "/api/webhooks/video-complete")
        );
        assert_eq!(ProviderSettings::default().webhook_url("/x"), None);
    }
}
