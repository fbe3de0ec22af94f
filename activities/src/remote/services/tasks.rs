//! The tasks service: video and voice generated on GPUs, with callbacks when a task ends.

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
use crate::traits::{Paid, Spend, VideoGen, Voice};

const TASKS: &str = "tasks";

/// A task as the tasks service reports it. The spec never shows a status body, so only
/// `status` is required: `task_id` is read where it is sent, and status words are matched
/// without regard to case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskStatus {
    /// Id (the spec's bodies may leave it out; the caller knows which task it asked about).
    #[serde(default)]
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
    /// What was submitted (in task lists).
    #[serde(default)]
    pub task_data: Value,
}

/// The tasks service client (`X-API-Key`).
#[derive(Debug, Clone)]
pub struct TasksClient {
    http: reqwest::Client,
    s: ServiceSettings,
    prices: crate::pricing::Prices,
}

impl TasksClient {
    /// A client.
    pub fn new(s: ServiceSettings) -> Self {
        TasksClient {
            http: http::client(s.timeout),
            s,
            prices: crate::pricing::Prices::default(),
        }
    }

    /// Price a task whose status carries no `cost` with `prices` (recorded as estimated).
    pub fn with_prices(mut self, prices: crate::pricing::Prices) -> Self {
        self.prices = prices;
        self
    }

    /// What a task of `task_type` that reports `cost` (or none) is recorded as costing.
    fn spend(&self, task_type: &str, cost: Option<f64>) -> Spend {
        Spend::billed_or(
            1.0,
            cost,
            self.prices
                .get(&format!("tasks:{task_type}"))
                .unwrap_or(0.0),
        )
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
        let mut t: TaskStatus = http::decode(TASKS, "the task status", &a.body)?;
        if t.task_id.is_empty() {
            t.task_id = task_id.to_string();
        }
        t.status = t.status.trim().to_ascii_lowercase();
        Ok(t)
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
        // Entries that do not fit are skipped, not fatal: the list only finds an earlier
        // submission again, and one unreadable task must not block every video.
        let items = a.body.get("tasks").unwrap_or(&a.body);
        let Some(items) = items.as_array() else {
            return Err(ActivityError::new(
                TASKS,
                ErrorKind::Malformed,
                "the task list is not a list (nor {tasks: [...]})",
            ));
        };
        Ok(items
            .iter()
            .filter_map(|t| serde_json::from_value::<TaskStatus>(t.clone()).ok())
            .map(|mut t| {
                t.status = t.status.trim().to_ascii_lowercase();
                t
            })
            .collect())
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
        "completed" | "complete" | "succeeded" | "success" => {
            Ok(JobState::Completed { output: done(t)? })
        }
        "failed" | "error" => {
            let msg = t.error.clone().unwrap_or_else(|| "the task failed".into());
            let kind = if msg.contains("content_policy") {
                ErrorKind::ContentPolicy
            } else {
                ErrorKind::Unavailable
            };
            Err(ActivityError::new(TASKS, kind, msg).retryable(kind != ErrorKind::ContentPolicy))
        }
        "cancelled" | "canceled" => Err(ActivityError::new(
            TASKS,
            ErrorKind::Cancelled,
            format!("task {} was cancelled", t.task_id),
        )
        .retryable(false)),
        "queued" | "pending" => Ok(JobState::Queued { position: None }),
        _ => Ok(JobState::Running),
    }
}

pub use crate::signals::VIDEO_COMPLETE;

/// Our webhook path for a kind of callback.
pub fn webhook_path(kind: &str) -> String {
    format!("/api/webhooks/{kind}")
}

pub use crate::signals::task as task_signal;

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
        // A submission whose answer never reached us (the process died while waiting for it)
        // is found again by its idempotency key, which travels in `task_data`: paid once.
        if let Some(key) = &req.idempotency_key {
            match self.client.list(&req.project).await {
                Ok(tasks) => {
                    if let Some(t) = tasks.iter().find(|t| {
                        t.task_data.get("idempotency_key").and_then(|k| k.as_str())
                            == Some(key.as_str())
                            && !matches!(t.status.as_str(), "failed" | "cancelled")
                    }) {
                        tracing::info!(task = %t.task_id, key = %key, "the video was already submitted; using that task");
                        return Ok(Job {
                            provider: TASKS.into(),
                            id: t.task_id.clone(),
                            model: "generate_video".into(),
                            status_url: None,
                            response_url: None,
                            cancel_url: None,
                        });
                    }
                }
                // A list that fails (a service without task lists, an outage, an answer we
                // cannot read) does not block the video: it is submitted, and the idempotency
                // key in `task_data` still lets the service recognise a repeat.
                Err(e) => {
                    tracing::warn!(error = %e, project = %req.project, "the tasks list failed; submitting the video");
                }
            }
        }
        let start = match &req.start_image {
            Some(i) => Some(self.blobs.fetch_url(i).await?),
            None => None,
        };
        let source = match &req.source_video {
            Some(v) => Some(self.blobs.fetch_url(v).await?),
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
                    "idempotency_key": req.idempotency_key,
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
        let spend = self.client.spend("generate_video", t.cost);
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
        let data = json!({"text": req.text, "voice": req.casting});
        // Kept in the step's checkpoint right after submitting: an attempt after a crash waits
        // for that task instead of paying for another (decision 0015).
        let key = format!("tasks:voice:{}", crate::checkpoint::digest(&data));
        let id = match crate::checkpoint::recall::<String>(&key) {
            Some(id) => id,
            None => {
                let id = self
                    .client
                    .submit(&req.project, "generate_character_voice", data, None, 2)
                    .await?;
                crate::checkpoint::keep(TASKS, &key, &id).await?;
                id
            }
        };
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
                    spend: self.client.spend("generate_character_voice", t.cost),
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
