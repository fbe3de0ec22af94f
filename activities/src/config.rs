//! Which implementation each activity uses.
//!
//! The local studio is the default. A remote client is used when its key is set. The values
//! arrive as [`ProviderVars`], read by the server's one configuration loader (defaults, then a
//! TOML file, then the environment); [`PROVIDER_VARIABLES`] names each one. Secrets are held
//! in [`Secret`], which never prints.

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
    /// length at or above its own, then trimmed).
    pub video_durations: Vec<f64>,
    /// Dollars per billable unit (`x-fal-billable-units`), by model; models not listed use
    /// built-in estimates.
    pub prices: BTreeMap<String, f64>,
    /// Per-request timeout.
    pub timeout: Duration,
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
    /// Per-request timeout.
    pub timeout: Duration,
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
    ("SLATE_FAL_PRICES", false),
    ("SLATE_FAL_TIMEOUT_SECS", false),
    ("OPENROUTER_API_KEY", true),
    ("SLATE_OPENROUTER_URL", false),
    ("SLATE_OPENROUTER_MODEL", false),
    ("SLATE_OPENROUTER_TIMEOUT_SECS", false),
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
    /// A JSON map of model to dollars per billable unit.
    pub fal_prices: Option<String>,
    pub fal_timeout_secs: Option<u64>,
    pub openrouter_api_key: Option<String>,
    pub openrouter_url: Option<String>,
    pub openrouter_model: Option<String>,
    pub openrouter_timeout_secs: Option<u64>,
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
}

fn http_url(var: &str, u: String) -> Result<String, String> {
    let u = u.trim().trim_end_matches('/').to_string();
    if u.starts_with("http://") || u.starts_with("https://") {
        Ok(u)
    } else {
        Err(format!("{var} `{u}` is not an http:// or https:// URL"))
    }
}

impl ProviderSettings {
    /// Check the values read and fill the defaults. An error names the variable to fix.
    pub fn from_vars(v: ProviderVars) -> Result<Self, String> {
        let url = |var: &str, set: Option<String>, default: &str| {
            http_url(var, set.unwrap_or_else(|| default.to_string()))
        };
        let svc = |key: Option<String>,
                   var: &str,
                   set: Option<String>,
                   default: &str,
                   timeout: u64|
         -> Result<Option<ServiceSettings>, String> {
            key.map(|k| {
                Ok(ServiceSettings {
                    url: url(var, set, default)?,
                    key: Secret::new(k),
                    timeout: Duration::from_secs(timeout),
                })
            })
            .transpose()
        };
        let prices: BTreeMap<String, f64> = match &v.prices {
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
        let fal = match v.fal_key {
            None => None,
            Some(k) => Some(FalSettings {
                key: Secret::new(k),
                queue_url: url("SLATE_FAL_QUEUE_URL", v.fal_queue_url, "https://queue.fal.run")?,
                image_model: v
                    .fal_image_model
                    .unwrap_or_else(|| "fal-ai/nano-banana".into()),
                edit_model: v
                    .fal_edit_model
                    .unwrap_or_else(|| "fal-ai/nano-banana/edit".into()),
                vision_model: v
                    .fal_vision_model
                    .unwrap_or_else(|| "fal-ai/moondream2/visual-query".into()),
                video_model: v
                    .fal_video_model
                    .unwrap_or_else(|| "fal-ai/kling-video/v2.1/standard/image-to-video".into()),
                video_durations: match v.fal_video_durations {
                    None => vec![5.0, 10.0],
                    Some(d) => parse_durations(&d)?,
                },
                prices: match v.fal_prices {
                    None => prices.clone(),
                    Some(j) => serde_json::from_str::<BTreeMap<String, f64>>(&j).map(|mut m| {
                        for (k, p) in &prices {
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
            }),
        };
        let openrouter = match v.openrouter_api_key {
            None => None,
            Some(k) => Some(OpenRouterSettings {
                key: Secret::new(k),
                url: url(
                    "SLATE_OPENROUTER_URL",
                    v.openrouter_url,
                    "https://openrouter.ai/api/v1/chat/completions",
                )?,
                model: v
                    .openrouter_model
                    .unwrap_or_else(|| "anthropic/claude-sonnet-4.5".into()),
                timeout: Duration::from_secs(v.openrouter_timeout_secs.unwrap_or(180)),
            }),
        };
        let video = match v.video_provider.as_deref().map(str::trim) {
            None | Some("auto") => VideoProvider::Auto,
            Some("fal") if fal.is_some() => VideoProvider::Fal,
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
        };
        Ok(ProviderSettings {
            fal,
            video,
            prices,
            openrouter,
            brain: svc(
                v.brain_service_api_key,
                "SLATE_BRAIN_URL",
                v.brain_url,
                "https://brain.ft.tc",
                30,
            )?,
            tasks: svc(
                v.task_api_key,
                "SLATE_TASKS_URL",
                v.tasks_url,
                "https://tasks.ft.tc",
                30,
            )?,
            last_frame: svc(
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
            webhook_secret: v.webhook_secret.map(Secret::new),
            poll_every: None,
        })
    }

    /// Our callback URL for the webhook at `path` (for example `/api/webhooks/fal`), with its
    /// token when a webhook secret is set; none without a public URL (the workflows then poll).
    pub fn webhook_url(&self, path: &str) -> Option<String> {
        let base = self.public_url.as_ref()?;
        Some(match &self.webhook_secret {
            Some(s) => format!("{base}{path}?token={}", webhook_token(s, path)),
            None => format!("{base}{path}"),
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

    /// One line per activity: which implementation is in use (for logs and `slate demo`).
    pub fn describe(&self) -> Vec<(&'static str, &'static str)> {
        let pick = |remote: bool, r: &'static str, l: &'static str| if remote { r } else { l };
        vec![
            (
                "language model",
                pick(self.openrouter.is_some(), "OpenRouter", "local planner"),
            ),
            (
                "images",
                pick(self.fal.is_some(), "fal.ai", "local storyboard renderer"),
            ),
            (
                "vision",
                pick(
                    self.fal.is_some(),
                    "fal.ai moondream2",
                    "local manifest check",
                ),
            ),
            (
                "knowledge",
                pick(
                    self.brain.is_some(),
                    "brain service",
                    "local full-text search",
                ),
            ),
            (
                "video",
                if self.fal.is_some() {
                    "fal.ai queue"
                } else if self.tasks.is_some() {
                    "tasks service"
                } else {
                    "local ffmpeg"
                },
            ),
            (
                "voice",
                pick(self.tasks.is_some(), "tasks service", "local espeak-ng"),
            ),
            (
                "media ops",
                pick(
                    self.last_frame.is_some(),
                    "last-frame service",
                    "local ffmpeg",
                ),
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
