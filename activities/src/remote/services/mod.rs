//! The production services of the spec: the brain (knowledge), the tasks service (video and
//! voice on GPUs, with callbacks) and the last-frame service (media operations). Every endpoint
//! the spec lists has a method here; the activity traits are implemented on top.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::blob::{BlobRef, Blobs};
use crate::config::ServiceSettings;
use crate::error::{ActivityError, ErrorKind, Result};
use crate::http::{self, Answer};
use crate::model::*;
use crate::traits::{Knowledge, Media, Paid, Spend, VideoGen, Voice};

async fn call(provider: &str, rb: reqwest::RequestBuilder) -> Result<Answer> {
    let a = http::send(provider, rb).await?;
    if !a.status.is_success() {
        let msg = a
            .body
            .get("detail")
            .or_else(|| a.body.get("error"))
            .or_else(|| a.body.get("message"))
            .map(|m| match m {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| http::truncate(&a.raw, 300));
        return Err(http::status_error(
            provider,
            &a,
            format!("HTTP {}: {msg}", a.status.as_u16()),
        ));
    }
    Ok(a)
}

// ---------------------------------------------------------------------------------------------
// Brain

const BRAIN: &str = "brain";

/// The brain service client (`X-API-Key`).
#[derive(Debug, Clone)]
pub struct BrainClient {
    http: reqwest::Client,
    s: ServiceSettings,
    blobs: Blobs,
}

impl BrainClient {
    /// A client; images are sent by URL from `blobs`.
    pub fn new(s: ServiceSettings, blobs: Blobs) -> Self {
        BrainClient {
            http: http::client(s.timeout),
            s,
            blobs,
        }
    }

    fn req(&self, m: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(m, format!("{}{path}", self.s.url))
            .header("X-API-Key", self.s.key.expose())
    }
}

#[derive(Deserialize)]
struct BrainAnswer {
    answer: String,
    confidence: f64,
    #[serde(default)]
    sources: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct BrainDoc {
    kind: String,
    key: String,
    title: String,
    content: String,
    #[serde(default)]
    metadata: Value,
}

#[async_trait]
impl Knowledge for BrainClient {
    fn name(&self) -> &'static str {
        "brain service"
    }

    async fn store(&self, docs: &[KnowledgeDoc]) -> Result<usize> {
        let mut n = 0;
        // One request per project: the service files documents under a project.
        let mut by_project: std::collections::BTreeMap<&str, Vec<BrainDoc>> = Default::default();
        for d in docs {
            by_project.entry(&d.project).or_default().push(BrainDoc {
                kind: d.kind.clone(),
                key: d.key.clone(),
                title: d.title.clone(),
                content: d.text.clone(),
                metadata: d.metadata.clone(),
            });
        }
        for (project, docs) in by_project {
            let a = call(
                BRAIN,
                self.req(reqwest::Method::POST, "/api/v1/knowledge/store")
                    .json(&json!({"project_id": project, "documents": docs})),
            )
            .await?;
            n += a
                .body
                .get("stored")
                .and_then(|s| s.as_u64())
                .unwrap_or(docs.len() as u64) as usize;
        }
        Ok(n)
    }

    async fn query(&self, q: &KnowledgeQuery) -> Result<Paid<KnowledgeAnswer>> {
        let image_url = match &q.image {
            Some(i) => Some(self.blobs.public_url(i).await?),
            None => None,
        };
        let a = call(
            BRAIN,
            self.req(reqwest::Method::POST, "/api/v1/knowledge/query")
                .json(&json!({
                    "query": q.query,
                    "image_url": image_url,
                    "context": {
                        "project_id": q.project,
                        "location": q.expect.location,
                        "characters": q.expect.characters,
                        "props": q.expect.props,
                    },
                })),
        )
        .await?;
        let b: BrainAnswer = http::decode(BRAIN, "the knowledge answer", &a.body)?;
        if !(0.0..=1.0).contains(&b.confidence) {
            return Err(ActivityError::new(
                BRAIN,
                ErrorKind::Malformed,
                format!("confidence {} is outside 0-1", b.confidence),
            ));
        }
        Ok(Paid::free(KnowledgeAnswer {
            answer: b.answer,
            confidence: b.confidence,
            sources: b.sources,
        }))
    }

    async fn context(&self, project: &str) -> Result<Vec<KnowledgeDoc>> {
        let a = call(
            BRAIN,
            self.req(
                reqwest::Method::GET,
                &format!("/api/v1/knowledge/context/{}", urlencode(project)),
            ),
        )
        .await?;
        let docs: Vec<BrainDoc> = http::decode(
            BRAIN,
            "the context",
            a.body.get("documents").unwrap_or(&Value::Null),
        )?;
        Ok(docs
            .into_iter()
            .map(|d| KnowledgeDoc {
                project: project.to_string(),
                kind: d.kind,
                key: d.key,
                title: d.title,
                text: d.content,
                metadata: d.metadata,
            })
            .collect())
    }

    async fn embeddings(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let a = call(
            BRAIN,
            self.req(reqwest::Method::POST, "/api/v1/embeddings/generate")
                .json(&json!({"texts": texts})),
        )
        .await?;
        let e: Vec<Vec<f32>> = http::decode(
            BRAIN,
            "the embeddings",
            a.body.get("embeddings").unwrap_or(&Value::Null),
        )?;
        if e.len() != texts.len() {
            return Err(ActivityError::new(
                BRAIN,
                ErrorKind::Malformed,
                format!("{} embeddings for {} texts", e.len(), texts.len()),
            ));
        }
        Ok(e)
    }

    async fn health(&self) -> Result<bool> {
        let a = http::send(BRAIN, self.req(reqwest::Method::GET, "/health")).await?;
        Ok(a.status.is_success())
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tasks

const TASKS: &str = "tasks";

/// A task as the tasks service reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskStatus {
    /// Id.
    pub task_id: String,
    /// `queued`, `processing`, `completed`, `failed`, `cancelled` (others: not finished).
    pub status: String,
    /// The result when completed (`video_url`, `duration`, `audio_url`...).
    #[serde(default)]
    pub result: Value,
    /// The error when failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Cost reported by the service, dollars.
    #[serde(default)]
    pub cost: Option<f64>,
}

/// The tasks service client (`X-API-Key`).
#[derive(Debug, Clone)]
pub struct TasksClient {
    http: reqwest::Client,
    s: ServiceSettings,
}

impl TasksClient {
    /// A client.
    pub fn new(s: ServiceSettings) -> Self {
        TasksClient {
            http: http::client(s.timeout),
            s,
        }
    }

    fn req(&self, m: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(m, format!("{}{path}", self.s.url))
            .header("X-API-Key", self.s.key.expose())
    }

    /// `POST /api/v1/tasks/submit`: returns the task id.
    pub async fn submit(
        &self,
        project: &str,
        task_type: &str,
        data: Value,
        callback_url: Option<&str>,
        priority: u8,
    ) -> Result<String> {
        let a = call(
            TASKS,
            self.req(reqwest::Method::POST, "/api/v1/tasks/submit")
                .json(&json!({
                    "project_id": project, "task_type": task_type, "task_data": data,
                    "callback_url": callback_url, "priority": priority,
                })),
        )
        .await?;
        a.body
            .get("task_id")
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| {
                ActivityError::new(
                    TASKS,
                    ErrorKind::Malformed,
                    "the submit answer has no task_id",
                )
            })
    }

    /// `GET /api/v1/tasks/{id}/status`.
    pub async fn status(&self, task_id: &str) -> Result<TaskStatus> {
        let a = call(
            TASKS,
            self.req(
                reqwest::Method::GET,
                &format!("/api/v1/tasks/{}/status", urlencode(task_id)),
            ),
        )
        .await?;
        http::decode(TASKS, "the task status", &a.body)
    }

    /// `GET /api/v1/projects/{project}/tasks`.
    pub async fn list(&self, project: &str) -> Result<Vec<TaskStatus>> {
        let a = call(
            TASKS,
            self.req(
                reqwest::Method::GET,
                &format!("/api/v1/projects/{}/tasks", urlencode(project)),
            ),
        )
        .await?;
        http::decode(
            TASKS,
            "the task list",
            a.body.get("tasks").unwrap_or(&a.body),
        )
    }

    /// `DELETE /api/v1/tasks/{id}/cancel`.
    pub async fn cancel(&self, task_id: &str) -> Result<()> {
        call(
            TASKS,
            self.req(
                reqwest::Method::DELETE,
                &format!("/api/v1/tasks/{}/cancel", urlencode(task_id)),
            ),
        )
        .await?;
        Ok(())
    }

    /// `POST /api/v1/tasks/{id}/retry`: returns the (possibly new) task id.
    pub async fn retry(&self, task_id: &str) -> Result<String> {
        let a = call(
            TASKS,
            self.req(
                reqwest::Method::POST,
                &format!("/api/v1/tasks/{}/retry", urlencode(task_id)),
            ),
        )
        .await?;
        Ok(a.body
            .get("task_id")
            .and_then(|t| t.as_str())
            .unwrap_or(task_id)
            .to_string())
    }

    /// `GET /api/v1/health`.
    pub async fn health(&self) -> Result<bool> {
        let a = http::send(TASKS, self.req(reqwest::Method::GET, "/api/v1/health")).await?;
        Ok(a.status.is_success())
    }
}

/// A finished or failed task, as a job state.
fn task_state<T>(
    t: &TaskStatus,
    done: impl FnOnce(&TaskStatus) -> Result<T>,
) -> Result<JobState<T>> {
    match t.status.as_str() {
        "completed" => Ok(JobState::Completed { output: done(t)? }),
        "failed" => {
            let msg = t.error.clone().unwrap_or_else(|| "the task failed".into());
            let kind = if msg.contains("content_policy") {
                ErrorKind::ContentPolicy
            } else {
                ErrorKind::Unavailable
            };
            Err(ActivityError::new(TASKS, kind, msg).retryable(kind != ErrorKind::ContentPolicy))
        }
        "cancelled" => Err(ActivityError::new(
            TASKS,
            ErrorKind::Cancelled,
            format!("task {} was cancelled", t.task_id),
        )
        .retryable(false)),
        "queued" | "pending" => Ok(JobState::Queued { position: None }),
        _ => Ok(JobState::Running),
    }
}

/// The tasks service's webhook for a finished video task (`/api/webhooks/video-complete`).
pub const VIDEO_COMPLETE: &str = "video-complete";

/// Our webhook path for a kind of callback.
pub fn webhook_path(kind: &str) -> String {
    format!("/api/webhooks/{kind}")
}

/// The signal a task webhook of `kind` about `task_id` is delivered as.
pub fn task_signal(kind: &str, task_id: &str) -> String {
    format!("{kind}/{task_id}")
}

/// Video through the tasks service (`generate_video`, with a callback to our webhook).
#[derive(Debug, Clone)]
pub struct TasksVideo {
    client: TasksClient,
    blobs: Blobs,
}

impl TasksVideo {
    /// Video through `client`, results copied into `blobs`.
    pub fn new(client: TasksClient, blobs: Blobs) -> Self {
        TasksVideo { client, blobs }
    }
}

#[async_trait]
impl VideoGen for TasksVideo {
    fn name(&self) -> &'static str {
        "tasks service"
    }

    fn durations(&self) -> Vec<f64> {
        vec![]
    }

    async fn submit(&self, req: &VideoRequest) -> Result<Job> {
        let start = match &req.start_image {
            Some(i) => Some(self.blobs.public_url(i).await?),
            None => None,
        };
        let source = match &req.source_video {
            Some(v) => Some(self.blobs.public_url(v).await?),
            None => None,
        };
        let id = self
            .client
            .submit(
                &req.project,
                "generate_video",
                json!({
                    "scene_id": req.scene_id, "prompt": req.prompt, "start_image_url": start,
                    "source_video_url": source, "duration": req.duration, "mode": req.mode,
                }),
                req.callback_url.as_deref(),
                1,
            )
            .await?;
        Ok(Job {
            provider: TASKS.into(),
            id,
            model: "generate_video".into(),
            status_url: None,
            response_url: None,
            cancel_url: None,
        })
    }

    async fn poll(&self, job: &Job, req: &VideoRequest) -> Result<Paid<JobState<VideoOutput>>> {
        let t = self.client.status(&job.id).await?;
        let spend = Spend {
            units: 1.0,
            usd: t.cost.unwrap_or(0.0),
        };
        let state = task_state(&t, |t| Ok(t.result.clone()))?;
        Ok(match state {
            JobState::Completed { output } => {
                let url = output
                    .get("video_url")
                    .and_then(|u| u.as_str())
                    .ok_or_else(|| {
                        ActivityError::new(
                            TASKS,
                            ErrorKind::Malformed,
                            "a completed video task has no video_url",
                        )
                    })?;
                let video = self
                    .blobs
                    .copy_from_url(&self.client.http, TASKS, url, &req.output_key)
                    .await?;
                let duration = output
                    .get("duration")
                    .and_then(|d| d.as_f64())
                    .unwrap_or(req.duration);
                Paid {
                    value: JobState::Completed {
                        output: VideoOutput { video, duration },
                    },
                    spend,
                }
            }
            JobState::Queued { position } => Paid::free(JobState::Queued { position }),
            JobState::Running => Paid::free(JobState::Running),
        })
    }

    async fn cancel(&self, job: &Job) -> Result<()> {
        self.client.cancel(&job.id).await
    }
}

/// Voices through the tasks service (`generate_character_voice`): submitted and awaited in one
/// call, since a line takes seconds.
#[derive(Debug, Clone)]
pub struct TasksVoice {
    client: TasksClient,
    blobs: Blobs,
    poll_every: Duration,
    max_wait: Duration,
}

impl TasksVoice {
    /// Voices through `client`.
    pub fn new(client: TasksClient, blobs: Blobs) -> Self {
        TasksVoice {
            client,
            blobs,
            poll_every: Duration::from_secs(2),
            max_wait: Duration::from_secs(120),
        }
    }

    /// Poll faster (tests).
    pub fn polling(mut self, every: Duration, max_wait: Duration) -> Self {
        self.poll_every = every;
        self.max_wait = max_wait;
        self
    }
}

#[async_trait]
impl Voice for TasksVoice {
    fn name(&self) -> &'static str {
        "tasks service"
    }

    async fn synthesize(&self, req: &VoiceRequest) -> Result<Paid<BlobRef>> {
        let id = self
            .client
            .submit(
                &req.project,
                "generate_character_voice",
                json!({"text": req.text, "voice": req.casting}),
                None,
                2,
            )
            .await?;
        let deadline = tokio::time::Instant::now() + self.max_wait;
        loop {
            let t = self.client.status(&id).await?;
            if let JobState::Completed { output } = task_state(&t, |t| Ok(t.result.clone()))? {
                let url = output
                    .get("audio_url")
                    .and_then(|u| u.as_str())
                    .ok_or_else(|| {
                        ActivityError::new(
                            TASKS,
                            ErrorKind::Malformed,
                            "a completed voice task has no audio_url",
                        )
                    })?;
                let audio = self
                    .blobs
                    .copy_from_url(&self.client.http, TASKS, url, &req.output_key)
                    .await?;
                return Ok(Paid {
                    value: audio,
                    spend: Spend {
                        units: 1.0,
                        usd: t.cost.unwrap_or(0.0),
                    },
                });
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = self.client.cancel(&id).await;
                return Err(ActivityError::new(
                    TASKS,
                    ErrorKind::Timeout,
                    format!("voice task {id} did not finish in {:?}", self.max_wait),
                ));
            }
            tokio::time::sleep(self.poll_every).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Last frame

const LF: &str = "last-frame";

/// A last-frame service task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastFrameStatus {
    /// Id.
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
        http::decode(LF, "the task status", &a.body)
    }

    /// Poll a task until it completes (or fails, or `max_wait` passes).
    pub async fn wait(&self, task_id: &str) -> Result<LastFrameStatus> {
        let deadline = tokio::time::Instant::now() + self.max_wait;
        loop {
            let s = self.status(task_id).await?;
            match s.status.as_str() {
                "completed" => return Ok(s),
                "failed" => {
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
            tokio::time::sleep(self.poll_every).await;
        }
    }
}

/// Media operations through the last-frame service. It has no trim or voice-mix endpoint, so
/// those run locally with ffmpeg on downloaded copies; it stitches by URL only, so transitions
/// are cuts.
#[derive(Debug, Clone)]
pub struct RemoteMedia {
    client: LastFrameClient,
    blobs: Blobs,
    local: crate::local::LocalMedia,
    webhook: Option<String>,
}

impl RemoteMedia {
    /// Media through `client`, results copied into `blobs`.
    pub fn new(client: LastFrameClient, blobs: Blobs, webhook: Option<String>) -> Self {
        RemoteMedia {
            local: crate::local::LocalMedia::new(blobs.clone()),
            client,
            blobs,
            webhook,
        }
    }
}

#[async_trait]
impl Media for RemoteMedia {
    fn name(&self) -> &'static str {
        "last-frame service"
    }

    async fn last_frame(&self, video: &BlobRef, output_key: &str) -> Result<BlobRef> {
        let url = self.blobs.public_url(video).await?;
        let id = self.client.process(&url, self.webhook.as_deref()).await?;
        let s = self.client.wait(&id).await?;
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
            .length(&self.blobs.public_url(media).await?)
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

    async fn stitch(&self, clips: &[ClipSpec], output_key: &str) -> Result<BlobRef> {
        let mut urls = vec![];
        for c in clips {
            urls.push(self.blobs.public_url(&c.video).await?);
        }
        let id = self.client.stitch(&urls, self.webhook.as_deref()).await?;
        let s = self.client.wait(&id).await?;
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
}
