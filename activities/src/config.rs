//! Which implementation each activity uses, read from the environment.
//!
//! The local studio is the default. A remote client is used when its key is set. Secrets are
//! held in [`Secret`], which never prints.

use std::time::Duration;

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
    /// Our own public base URL, for webhooks and callbacks (`SLATE_PUBLIC_URL`).
    pub public_url: Option<String>,
    /// A base URL where providers can fetch our blobs (`SLATE_MEDIA_URL`); without it, images
    /// are sent inline as data URIs.
    pub media_url: Option<String>,
    /// The webhook secret (`SLATE_WEBHOOK_SECRET`): callback URLs we hand to providers carry a
    /// token derived from it, never the secret itself.
    pub webhook_secret: Option<Secret>,
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

fn trim(u: String) -> String {
    u.trim_end_matches('/').to_string()
}

impl ProviderSettings {
    /// Read from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Read from any lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let secs =
            |k: &str, d: u64| Duration::from_secs(get(k).and_then(|v| v.parse().ok()).unwrap_or(d));
        let svc = |key: &str, url_var: &str, default_url: &str, timeout: u64| {
            get(key).map(|k| ServiceSettings {
                url: trim(get(url_var).unwrap_or_else(|| default_url.to_string())),
                key: Secret::new(k),
                timeout: Duration::from_secs(timeout),
            })
        };
        ProviderSettings {
            fal: get("FAL_KEY").map(|k| FalSettings {
                key: Secret::new(k),
                queue_url: trim(
                    get("SLATE_FAL_QUEUE_URL").unwrap_or_else(|| "https://queue.fal.run".into()),
                ),
                image_model: get("SLATE_FAL_IMAGE_MODEL")
                    .unwrap_or_else(|| "fal-ai/nano-banana".into()),
                edit_model: get("SLATE_FAL_EDIT_MODEL")
                    .unwrap_or_else(|| "fal-ai/nano-banana/edit".into()),
                vision_model: get("SLATE_FAL_VISION_MODEL")
                    .unwrap_or_else(|| "fal-ai/moondream2/visual-query".into()),
                video_model: get("SLATE_FAL_VIDEO_MODEL")
                    .unwrap_or_else(|| "fal-ai/kling-video/v2.1/standard/image-to-video".into()),
                timeout: secs("SLATE_FAL_TIMEOUT_SECS", 60),
            }),
            openrouter: get("OPENROUTER_API_KEY").map(|k| OpenRouterSettings {
                key: Secret::new(k),
                url: trim(
                    get("SLATE_OPENROUTER_URL")
                        .unwrap_or_else(|| "https://openrouter.ai/api/v1/chat/completions".into()),
                ),
                model: get("SLATE_OPENROUTER_MODEL")
                    .unwrap_or_else(|| "anthropic/claude-sonnet-4.5".into()),
                timeout: secs("SLATE_OPENROUTER_TIMEOUT_SECS", 180),
            }),
            brain: svc(
                "BRAIN_SERVICE_API_KEY",
                "SLATE_BRAIN_URL",
                "https://brain.ft.tc",
                30,
            ),
            tasks: svc("TASK_API_KEY", "SLATE_TASKS_URL", "https://tasks.ft.tc", 30),
            last_frame: svc(
                "LAST_FRAME_TOKEN",
                "SLATE_LAST_FRAME_URL",
                "https://last-frame.ft.tc",
                60,
            ),
            public_url: get("SLATE_PUBLIC_URL").map(trim),
            media_url: get("SLATE_MEDIA_URL").map(trim),
            webhook_secret: get("SLATE_WEBHOOK_SECRET").map(Secret::new),
        }
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
    use std::collections::HashMap;

    #[test]
    fn local_by_default_remote_when_a_key_is_set() {
        let s = ProviderSettings::from_lookup(|_| None);
        assert!(s.fal.is_none() && s.openrouter.is_none() && s.brain.is_none());
        let env: HashMap<&str, &str> =
            [("FAL_KEY", "k1"), ("SLATE_FAL_QUEUE_URL", "http://x/")].into();
        let s = ProviderSettings::from_lookup(|k| env.get(k).map(|v| v.to_string()));
        let fal = s.fal.unwrap();
        assert_eq!(fal.queue_url, "http://x");
        assert_eq!(fal.key.expose(), "k1");
        assert!(!format!("{fal:?}").contains("k1"), "a secret never prints");
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
