//! The last-frame service: frames, stitching, audio and music, each an asynchronous task.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{call, urlencode};
use crate::blob::{BlobRef, Blobs};
use crate::config::ServiceSettings;
use crate::error::{ActivityError, ErrorKind, Result};
use crate::http;
use crate::model::*;
use crate::traits::Media;

const LF: &str = "last-frame";

/// A last-frame service task. The spec's status body (`{status, image_url |
/// video_result_url | audio_url, error_message}`) carries no `task_id`; status words are
/// matched without regard to case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastFrameStatus {
    /// Id (filled in from the request when the body leaves it out).
    #[serde(default)]
    pub task_id: String,
    /// `pending`, `processing`, `completed` or `failed`.
    pub status: String,
    /// The extracted frame.
    #[serde(default)]
    pub image_url: Option<String>,
    /// The stitched film or mixed clip.
    #[serde(default)]
    pub video_result_url: Option<String>,
    /// Stitched audio.
    #[serde(default)]
    pub audio_url: Option<String>,
    /// Why it failed.
    #[serde(default)]
    pub error_message: Option<String>,
}

/// The last-frame service client (`Authorization: Bearer $LAST_FRAME_TOKEN`).
#[derive(Debug, Clone)]
pub struct LastFrameClient {
    http: reqwest::Client,
    s: ServiceSettings,
    poll_every: Duration,
    max_wait: Duration,
}

impl LastFrameClient {
    /// A client.
    pub fn new(s: ServiceSettings) -> Self {
        LastFrameClient {
            http: http::client(s.timeout),
            s,
            poll_every: Duration::from_secs(2),
            max_wait: Duration::from_secs(600),
        }
    }

    /// Poll faster (tests).
    pub fn polling(mut self, every: Duration, max_wait: Duration) -> Self {
        self.poll_every = every;
        self.max_wait = max_wait;
        self
    }

    fn post(&self, path: &str, body: Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.s.url))
            .bearer_auth(self.s.key.expose())
            .json(&body)
    }

    async fn task(&self, path: &str, body: Value) -> Result<String> {
        let a = call(LF, self.post(path, body)).await?;
        a.body
            .get("task_id")
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| {
                ActivityError::new(
                    LF,
                    ErrorKind::Malformed,
                    format!("{path} answered without a task_id"),
                )
            })
    }

    /// `POST /api/v1/process`: extract a clip's last frame.
    pub async fn process(&self, video_url: &str, webhook_url: Option<&str>) -> Result<String> {
        self.task(
            "/api/v1/process",
            json!({"video_url": video_url, "webhook_url": webhook_url}),
        )
        .await
    }

    /// `POST /api/v1/stitch`.
    pub async fn stitch(&self, video_urls: &[String], webhook_url: Option<&str>) -> Result<String> {
        self.task(
            "/api/v1/stitch",
            json!({"video_urls": video_urls, "webhook_url": webhook_url}),
        )
        .await
    }

    /// `POST /api/v1/audio-stitch`.
    pub async fn audio_stitch(
        &self,
        audio_urls: &[String],
        webhook_url: Option<&str>,
    ) -> Result<String> {
        self.task(
            "/api/v1/audio-stitch",
            json!({"audio_urls": audio_urls, "webhook_url": webhook_url}),
        )
        .await
    }

    /// `POST /api/v1/music-track`: mix a music track under a video.
    pub async fn music_track(
        &self,
        video_url: &str,
        music_url: &str,
        volume: f64,
        webhook_url: Option<&str>,
    ) -> Result<String> {
        self.task("/api/v1/music-track", json!({"video_url": video_url, "music_url": music_url, "volume": volume, "webhook_url": webhook_url})).await
    }

    /// `POST /api/v1/length`: a media file's length, seconds.
    pub async fn length(&self, media_url: &str) -> Result<f64> {
        let a = call(
            LF,
            self.post("/api/v1/length", json!({"media_url": media_url})),
        )
        .await?;
        a.body
            .get("duration")
            .and_then(|d| d.as_f64())
            .ok_or_else(|| {
                ActivityError::new(
                    LF,
                    ErrorKind::Malformed,
                    "the length answer has no duration",
                )
            })
    }

    /// `GET /api/v1/status/{task_id}`.
    pub async fn status(&self, task_id: &str) -> Result<LastFrameStatus> {
        let a = call(
            LF,
            self.http
                .get(format!(
                    "{}/api/v1/status/{}",
                    self.s.url,
                    urlencode(task_id)
                ))
                .bearer_auth(self.s.key.expose()),
        )
        .await?;
        let mut s: LastFrameStatus = http::decode(LF, "the task status", &a.body)?;
        if s.task_id.is_empty() {
            s.task_id = task_id.to_string();
        }
        s.status = s.status.trim().to_ascii_lowercase();
        Ok(s)
    }

    /// Poll a task until it completes (or fails, or `max_wait` passes). A webhook received by
    /// this process under `wake` (see [`crate::wake`]) ends a poll interval early.
    pub async fn wait(&self, task_id: &str, wake: Option<&str>) -> Result<LastFrameStatus> {
        let waiter = wake.map(crate::wake::Waiter::new);
        let deadline = tokio::time::Instant::now() + self.max_wait;
        loop {
            let s = self.status(task_id).await?;
            match s.status.as_str() {
                "completed" | "complete" | "succeeded" | "success" => return Ok(s),
                "failed" | "error" => {
                    return Err(ActivityError::new(
                        LF,
                        ErrorKind::Unavailable,
                        s.error_message.unwrap_or_else(|| "the task failed".into()),
                    ));
                }
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ActivityError::new(
                    LF,
                    ErrorKind::Timeout,
                    format!("task {task_id} did not finish in {:?}", self.max_wait),
                ));
            }
            match &waiter {
                Some(w) => w.wait(self.poll_every).await,
                None => tokio::time::sleep(self.poll_every).await,
            }
        }
    }
}

/// Our webhook for finished extractions.
pub const LAST_FRAME_COMPLETE: &str = "last-frame-complete";
/// Our webhook for finished stitches.
pub const STITCH_COMPLETE: &str = "stitch-complete";

/// Media operations through the last-frame service. It has no trim or voice-mix endpoint, so
/// those run locally with ffmpeg on downloaded copies; it stitches by URL only, so transitions
/// are cuts.
#[derive(Debug, Clone)]
pub struct RemoteMedia {
    client: LastFrameClient,
    blobs: Blobs,
    local: crate::local::LocalMedia,
    /// Builds our callback URLs (none without `SLATE_PUBLIC_URL`: the task is polled).
    callbacks: Option<crate::config::ProviderSettings>,
}

impl RemoteMedia {
    /// Media through `client`, results copied into `blobs`; callbacks to the webhooks under
    /// `callbacks`' public URL when it has one.
    pub fn new(
        client: LastFrameClient,
        blobs: Blobs,
        callbacks: Option<crate::config::ProviderSettings>,
    ) -> Self {
        RemoteMedia {
            local: crate::local::LocalMedia::new(blobs.clone()),
            client,
            blobs,
            callbacks: callbacks.filter(|c| c.public_url.is_some()),
        }
    }

    /// The callback URL for a task of `kind` we refer to as `reference`: the spec's callback
    /// bodies name no task of ours, so the reference travels in the URL's query.
    fn callback(&self, kind: &str, reference: &str) -> Option<String> {
        self.callbacks
            .as_ref()?
            .webhook_url_with(&super::tasks::webhook_path(kind), &[("ref", reference)])
    }
}

impl RemoteMedia {
    /// Submit a task and wait for it. The task id is kept in the step's checkpoint right after
    /// submitting, so that an attempt after a crash waits for that task instead of submitting
    /// (and paying for) another; a kept task the service no longer knows is submitted anew.
    async fn once<F, Fut>(
        &self,
        kind: &str,
        input: &impl Serialize,
        submit: F,
    ) -> Result<LastFrameStatus>
    where
        F: Fn(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<String>>,
    {
        let digest = crate::checkpoint::digest(input);
        let key = format!("last-frame:{kind}:{digest}");
        // Our reference for the task: what a callback names in its URL to wake this wait.
        let reference = format!("{kind}-{digest}");
        let hook = if kind == "stitch" || kind == "music-track" {
            STITCH_COMPLETE
        } else {
            LAST_FRAME_COMPLETE
        };
        if let Some(id) = crate::checkpoint::recall::<String>(&key) {
            match self.client.wait(&id, Some(&reference)).await {
                Err(e) if e.kind == ErrorKind::NotFound => {
                    tracing::warn!(task = %id, "the task kept before a crash is gone; submitting again");
                    crate::checkpoint::forget(&key);
                }
                r => return r,
            }
        }
        // Registered before the submission, so a callback that beats our first poll counts.
        let _early = crate::wake::Waiter::new(reference.clone());
        let id = submit(self.callback(hook, &reference)).await?;
        crate::checkpoint::keep(LF, &key, &id).await?;
        self.client.wait(&id, Some(&reference)).await
    }
}

#[async_trait]
impl Media for RemoteMedia {
    fn name(&self) -> &'static str {
        "last-frame service"
    }

    async fn last_frame(&self, video: &BlobRef, output_key: &str) -> Result<BlobRef> {
        let url = self.blobs.fetch_url(video).await?;
        // Keyed by the blob, not its URL: a presigned or signed URL changes with every call.
        let s = self
            .once("process", &video.key(), |hook| {
                let url = url.clone();
                async move { self.client.process(&url, hook.as_deref()).await }
            })
            .await?;
        let img = s.image_url.ok_or_else(|| {
            ActivityError::new(
                LF,
                ErrorKind::Malformed,
                "a completed extraction has no image_url",
            )
        })?;
        self.blobs
            .copy_from_url(&self.client.http, LF, &img, output_key)
            .await
    }

    async fn length(&self, media: &BlobRef) -> Result<f64> {
        self.client
            .length(&self.blobs.fetch_url(media).await?)
            .await
    }

    async fn trim(&self, video: &BlobRef, seconds: f64, output_key: &str) -> Result<BlobRef> {
        self.local.trim(video, seconds, output_key).await
    }

    async fn mix_voices(
        &self,
        video: &BlobRef,
        lines: &[(BlobRef, f64)],
        output_key: &str,
    ) -> Result<BlobRef> {
        self.local.mix_voices(video, lines, output_key).await
    }

    async fn cut(
        &self,
        video: &BlobRef,
        seconds: Option<f64>,
        lines: &[(BlobRef, f64)],
        output_key: &str,
    ) -> Result<BlobRef> {
        self.local.cut(video, seconds, lines, output_key).await
    }

    async fn stitch(&self, clips: &[ClipSpec], output_key: &str) -> Result<BlobRef> {
        let mut urls = vec![];
        for c in clips {
            urls.push(self.blobs.fetch_url(&c.video).await?);
        }
        let keys: Vec<&str> = clips.iter().map(|c| c.video.key()).collect();
        let s = self
            .once("stitch", &keys, |hook| {
                let urls = urls.clone();
                async move { self.client.stitch(&urls, hook.as_deref()).await }
            })
            .await?;
        let v = s.video_result_url.ok_or_else(|| {
            ActivityError::new(
                LF,
                ErrorKind::Malformed,
                "a completed stitch has no video_result_url",
            )
        })?;
        self.blobs
            .copy_from_url(&self.client.http, LF, &v, output_key)
            .await
    }

    async fn music_track(
        &self,
        video: &BlobRef,
        music: &BlobRef,
        volume: f64,
        output_key: &str,
    ) -> Result<BlobRef> {
        let (v, m) = (
            self.blobs.fetch_url(video).await?,
            self.blobs.fetch_url(music).await?,
        );
        let s = self
            .once("music-track", &(video.key(), music.key(), volume), |hook| {
                let (v, m) = (v.clone(), m.clone());
                async move {
                    self.client
                        .music_track(&v, &m, volume, hook.as_deref())
                        .await
                }
            })
            .await?;
        let out = s.video_result_url.ok_or_else(|| {
            ActivityError::new(
                LF,
                ErrorKind::Malformed,
                "a completed music-track has no video_result_url",
            )
        })?;
        self.blobs
            .copy_from_url(&self.client.http, LF, &out, output_key)
            .await
    }

    fn mixes_remotely(&self) -> bool {
        true
    }
}
