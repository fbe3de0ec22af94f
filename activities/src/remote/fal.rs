//! fal.ai: the queue API (submit, status, result, cancel, webhook) and the image, vision and
//! video activities built on it.
//!
//! Submission is separate from waiting: a workflow journals the [`Job`] (the `request_id` and
//! the URLs fal returned) right after submitting, and after a crash polls that request instead
//! of submitting (and paying) again. Results are copied into our blob store at once, because
//! fal keeps them only briefly.
//!
//! (Over 600 lines on purpose: fal's queue protocol and the three activities on it share the
//! submission, status and error classification they are tested against.)

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::blob::{BlobRef, Blobs};
use crate::config::FalSettings;
use crate::error::{ActivityError, ErrorKind, Result};
use crate::http::{self, Answer};
use crate::model::*;
use crate::traits::{ImageGen, Paid, Spend, VideoGen, Vision};
pub use crate::video_models::{DurationFormat, VideoModel, pick_duration};

const P: &str = "fal";

/// What a submission returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct QueueSubmit {
    /// The request's id: journal it.
    pub request_id: String,
    /// Poll here.
    pub status_url: String,
    /// Fetch the result here.
    pub response_url: String,
    /// Cancel here.
    pub cancel_url: String,
    /// Place in the queue.
    #[serde(default)]
    pub queue_position: Option<u32>,
}

/// A request's state.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueStatus {
    /// Waiting (HTTP 202).
    InQueue {
        /// Place in the queue.
        position: Option<u32>,
    },
    /// Running (HTTP 202).
    InProgress,
    /// Done (HTTP 200).
    Completed,
    /// A status this client does not know: treated as not finished.
    Unknown(String),
}

/// Answer to a cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelStatus {
    /// Cancelled.
    Ok,
    /// Will be cancelled.
    CancellationRequested,
    /// Too late: it finished.
    AlreadyCompleted,
    /// No such request.
    NotFound,
}

/// A webhook delivery. fal retries deliveries (up to about ten times over two hours), so a
/// handler must be idempotent on `request_id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct FalWebhook {
    /// The request it is about.
    #[schema(min_length = 1, max_length = 200, pattern = r"[^\s\u0085]")]
    pub request_id: String,
    /// fal's gateway id.
    #[serde(default)]
    pub gateway_request_id: Option<String>,
    /// `OK` or `ERROR`.
    pub status: String,
    /// The model's output when OK.
    #[serde(default)]
    pub payload: Value,
    /// The error when ERROR.
    #[serde(default)]
    pub error: Option<Value>,
}

impl FalWebhook {
    /// Parse a webhook body.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let w: FalWebhook = serde_json::from_slice(body)
            .map_err(|e| ActivityError::bad_request(P, format!("not a fal webhook body: {e}")))?;
        if w.request_id.trim().is_empty() {
            return Err(ActivityError::bad_request(
                P,
                "a fal webhook needs a request_id",
            ));
        }
        Ok(w)
    }

    /// The signal name a workflow waiting for this request listens on.
    pub fn signal_name(&self) -> String {
        signal_name(&self.request_id)
    }
}

pub use crate::signals::fal as signal_name;

/// Classify a fal error answer.
pub(crate) fn classify(a: &Answer) -> ActivityError {
    let code = a.status.as_u16();
    let header = |n: &str| {
        a.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_ascii_lowercase())
    };
    let error_type = header("x-fal-error-type").or_else(|| {
        a.body
            .get("error_type")
            .and_then(|v| v.as_str())
            .map(str::to_string)
    });
    let detail_types: Vec<String> = a
        .body
        .get("detail")
        .and_then(|d| d.as_array())
        .map(|d| {
            d.iter()
                .filter_map(|x| x.get("type").and_then(|t| t.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let message = match a.body.get("detail") {
        Some(Value::String(s)) => s.clone(),
        // A model's validation errors name the field in `loc` (`["body", "music_length_ms"]`):
        // kept, so the message says which input was refused.
        Some(Value::Array(d)) => d
            .iter()
            .filter_map(|x| {
                let msg = x.get("msg").and_then(|m| m.as_str())?;
                let field = x
                    .get("loc")
                    .and_then(|l| l.as_array())
                    .and_then(|l| l.last())
                    .and_then(|f| f.as_str())
                    .filter(|f| *f != "body");
                Some(match field {
                    Some(f) => format!("{f}: {msg}"),
                    None => msg.to_string(),
                })
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => http::truncate(&a.raw, 300),
    };
    let hint = header("x-fal-retryable").or_else(|| header("x-fal-needs-retry"));
    let content_policy = error_type.as_deref() == Some("content_policy_violation")
        || detail_types.iter().any(|t| t == "content_policy_violation");
    let (kind, retryable) = if content_policy {
        (ErrorKind::ContentPolicy, false)
    } else if let Some(t) = error_type.as_deref()
        && [
            "request_timeout",
            "startup_timeout",
            "runner_scheduling_failure",
        ]
        .contains(&t)
    {
        (
            if t == "runner_scheduling_failure" {
                ErrorKind::Unavailable
            } else {
                ErrorKind::Timeout
            },
            true,
        )
    } else if code == 429 {
        (ErrorKind::RateLimited, true)
    } else if code >= 500 {
        (ErrorKind::Unavailable, true)
    } else {
        let kind = match code {
            401 | 403 => ErrorKind::Unauthorized,
            402 => ErrorKind::PaymentRequired,
            404 => ErrorKind::NotFound,
            _ => ErrorKind::BadRequest,
        };
        // A model error may say it is worth retrying.
        (kind, matches!(hint.as_deref(), Some("true" | "1")))
    };
    let mut e = ActivityError::new(P, kind, format!("HTTP {code}: {message}"))
        .with_status(code)
        .with_details(a.body.clone())
        .retryable(retryable);
    e.retry_after = http::retry_after(&a.headers);
    e
}

/// The fal queue client.
#[derive(Debug, Clone)]
pub struct FalClient {
    http: reqwest::Client,
    settings: FalSettings,
    /// Blobs already in fal storage: the blob's key and version (size, time written, ETag) →
    /// the URL fal gave. A blob written again is uploaded again; a repeated upload only costs
    /// time.
    uploaded: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
}

/// fal storage's answer to an upload's start.
#[derive(Debug, Deserialize)]
struct UploadStart {
    upload_url: String,
    file_url: String,
}

impl FalClient {
    /// A client.
    pub fn new(settings: FalSettings) -> Self {
        FalClient {
            http: http::client(settings.timeout),
            settings,
            uploaded: Default::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &FalSettings {
        &self.settings
    }

    /// Put a blob in fal storage, as fal's official clients do with local files (`storage.ts`:
    /// `POST {storage}/storage/upload/initiate` with the content type and file name, then a
    /// `PUT` of the bytes to the `upload_url` it answers), and give the `file_url` models fetch.
    pub async fn upload(&self, blobs: &Blobs, r: &BlobRef) -> Result<String> {
        let meta = blobs.head(r).await?;
        let size = meta.size;
        let cache_key = format!(
            "{} {size} {} {}",
            r.key(),
            meta.last_modified.timestamp_nanos_opt().unwrap_or_default(),
            meta.e_tag.unwrap_or_default()
        );
        if let Some(u) = self
            .uploaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cache_key)
        {
            return Ok(u.clone());
        }
        let name = r.key().rsplit('/').next().unwrap_or("file");
        let start = self.auth(self.http.post(format!(
            "{}/storage/upload/initiate?storage_type=fal-cdn-v3",
            self.settings.storage_url
        )));
        let a = http::send(
            P,
            start.json(&json!({"content_type": r.content_type(), "file_name": name})),
        )
        .await?;
        if !a.status.is_success() {
            return Err(classify(&a));
        }
        let up: UploadStart = http::decode(P, "the storage upload answer", &a.body)?;
        let file = tokio::fs::File::open(blobs.local_path(r).await?).await?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let put = self
            .http
            .put(&up.upload_url)
            .header("Content-Type", r.content_type())
            .header("Content-Length", size)
            .timeout(Duration::from_secs(6 * 3600))
            .body(body);
        let a = http::send(P, put).await?;
        if !a.status.is_success() {
            return Err(classify(&a));
        }
        self.uploaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cache_key, up.file_url.clone());
        Ok(up.file_url)
    }

    /// The underlying HTTP client (for downloads).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        rb.header(
            "Authorization",
            format!("Key {}", self.settings.key.expose()),
        )
    }

    /// Queue `input` for `model` (`fal-ai/nano-banana/edit`...), with an optional webhook.
    pub async fn submit(
        &self,
        model: &str,
        input: &Value,
        webhook: Option<&str>,
    ) -> Result<QueueSubmit> {
        let url = format!("{}/{}", self.settings.queue_url, model.trim_matches('/'));
        let mut rb = self.auth(self.http.post(&url)).json(input);
        if let Some(w) = webhook {
            rb = rb.query(&[("fal_webhook", w)]);
        }
        let a = http::send(P, rb).await?;
        if !a.status.is_success() {
            return Err(classify(&a));
        }
        http::decode(P, "the submit answer", &a.body)
    }

    /// How a request is doing (use the `status_url` the submit answer gave).
    pub async fn status(&self, status_url: &str) -> Result<QueueStatus> {
        let a = http::send(P, self.auth(self.http.get(status_url))).await?;
        if !(a.status.as_u16() == 200 || a.status.as_u16() == 202) {
            return Err(classify(&a));
        }
        let st = a.body.get("status").and_then(|s| s.as_str()).unwrap_or("");
        Ok(match st {
            "IN_QUEUE" => QueueStatus::InQueue {
                position: a
                    .body
                    .get("queue_position")
                    .and_then(|p| p.as_u64())
                    .map(|p| p as u32),
            },
            "IN_PROGRESS" => QueueStatus::InProgress,
            "COMPLETED" => QueueStatus::Completed,
            other => {
                tracing::warn!(
                    status = other,
                    "fal answered an unknown status; treating it as not finished"
                );
                QueueStatus::Unknown(other.to_string())
            }
        })
    }

    /// A finished request's output and what it cost: `x-fal-billable-units` × the unit price,
    /// or, where fal leaves the header out, the `expected_units` the estimate counts, marked
    /// estimated (never $0).
    pub async fn result(
        &self,
        response_url: &str,
        model: &str,
        expected_units: f64,
    ) -> Result<Paid<Value>> {
        let a = http::send(P, self.auth(self.http.get(response_url))).await?;
        if !a.status.is_success() {
            return Err(classify(&a));
        }
        let billed = a
            .headers
            .get("x-fal-billable-units")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|u| u.is_finite() && *u >= 0.0);
        let (units, estimated) = match billed {
            Some(u) => (u, false),
            None => {
                tracing::warn!(
                    model,
                    expected_units,
                    "fal sent no x-fal-billable-units; recording the estimate, marked estimated"
                );
                (expected_units, true)
            }
        };
        Ok(Paid {
            value: a.body,
            spend: Spend {
                units,
                usd: units * unit_price(&self.settings, model),
                estimated,
            },
        })
    }

    /// Cancel a request.
    pub async fn cancel(&self, cancel_url: &str) -> Result<CancelStatus> {
        let a = http::send(P, self.auth(self.http.put(cancel_url))).await?;
        if a.status.as_u16() == 404 {
            return Ok(CancelStatus::NotFound);
        }
        if !a.status.is_success() && a.status.as_u16() != 400 {
            return Err(classify(&a));
        }
        Ok(
            match a.body.get("status").and_then(|s| s.as_str()).unwrap_or("") {
                "CANCELLATION_REQUESTED" => CancelStatus::CancellationRequested,
                "ALREADY_COMPLETED" => CancelStatus::AlreadyCompleted,
                "NOT_FOUND" => CancelStatus::NotFound,
                _ => CancelStatus::Ok,
            },
        )
    }

    /// Submit and wait (for quick models such as the vision model), polling every `every`;
    /// `expected_units` is what the call is recorded as costing if fal does not say.
    pub async fn run(
        &self,
        model: &str,
        input: &Value,
        identity: &Value,
        every: Duration,
        max_wait: Duration,
        expected_units: f64,
    ) -> Result<Paid<Value>> {
        // With a checkpoint in scope, the request id is kept durably right after submitting,
        // and an attempt after a crash polls that request instead of paying for another. The
        // key is the request's `identity` (blob keys, not the storage URLs an upload gives,
        // which differ after a crash).
        let key = format!("fal:{model}:{}", crate::checkpoint::digest(identity));
        let (q, resumed) = match crate::checkpoint::recall::<QueueSubmit>(&key) {
            Some(q) => (q, true),
            None => {
                let q = self.submit(model, input, None).await?;
                crate::checkpoint::keep(P, &key, &q).await?;
                (q, false)
            }
        };
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            let status = match self.status(&q.status_url).await {
                Ok(s) => s,
                // The kept request is gone (fal keeps requests for a while only): submit anew.
                Err(e) if resumed && e.kind == ErrorKind::NotFound => {
                    tracing::warn!(model, error = %e, "the request kept before a crash is gone; submitting again");
                    crate::checkpoint::forget(&key);
                    return Box::pin(self.run(
                        model,
                        input,
                        identity,
                        every,
                        max_wait,
                        expected_units,
                    ))
                    .await;
                }
                Err(e) => return Err(e),
            };
            if status == QueueStatus::Completed {
                return self.result(&q.response_url, model, expected_units).await;
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = self.cancel(&q.cancel_url).await;
                return Err(ActivityError::new(
                    P,
                    ErrorKind::Timeout,
                    format!("{model} did not finish in {max_wait:?}"),
                ));
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// Dollars per billable unit: the configured price (`SLATE_FAL_PRICES`), else an estimate from
/// fal's published prices.
fn unit_price(settings: &FalSettings, model: &str) -> f64 {
    crate::pricing::Prices::new(&settings.prices).unit(model)
}

pub(crate) fn job(q: QueueSubmit, model: &str) -> Job {
    Job {
        provider: P.into(),
        id: q.request_id,
        model: model.into(),
        status_url: Some(q.status_url),
        response_url: Some(q.response_url),
        cancel_url: Some(q.cancel_url),
    }
}

pub(crate) fn urls(j: &Job) -> Result<(&str, &str)> {
    match (&j.status_url, &j.response_url) {
        (Some(s), Some(r)) => Ok((s, r)),
        _ => Err(ActivityError::bad_request(
            P,
            format!("job {} has no fal URLs", j.id),
        )),
    }
}

/// Images with fal (`nano-banana`, and `nano-banana/edit` when there is something to edit).
#[derive(Debug, Clone)]
pub struct FalImages {
    client: FalClient,
    blobs: Blobs,
    webhook: Option<String>,
}

impl FalImages {
    /// Images through `client`, results copied into `blobs`; `webhook` is our fal webhook URL.
    pub fn new(client: FalClient, blobs: Blobs, webhook: Option<String>) -> Self {
        FalImages {
            client,
            blobs,
            webhook,
        }
    }
}

#[async_trait]
impl ImageGen for FalImages {
    fn name(&self) -> &'static str {
        "fal.ai"
    }

    async fn submit(&self, req: &ImageRequest) -> Result<Job> {
        req.validate()
            .map_err(|m| ActivityError::bad_request(P, m))?;
        let mut image_urls = vec![];
        if let Some(b) = &req.base {
            image_urls.push(self.client.upload(&self.blobs, b).await?);
        }
        for r in &req.references {
            image_urls.push(self.client.upload(&self.blobs, &r.blob).await?);
        }
        let (model, input) = if image_urls.is_empty() {
            let mut i = json!({"prompt": req.prompt, "num_images": 1, "aspect_ratio": req.aspect_ratio, "output_format": "png"});
            if let Some(s) = req.seed {
                i["seed"] = json!(s);
            }
            (&self.client.settings.image_model, i)
        } else {
            let mut i = json!({"prompt": req.prompt, "image_urls": image_urls, "num_images": 1, "aspect_ratio": req.aspect_ratio, "output_format": "png"});
            if let Some(s) = req.seed {
                i["seed"] = json!(s);
            }
            (&self.client.settings.edit_model, i)
        };
        let q = self
            .client
            .submit(model, &input, self.webhook.as_deref())
            .await?;
        Ok(job(q, model))
    }

    async fn poll(&self, j: &Job, req: &ImageRequest) -> Result<Paid<JobState<ImageOutput>>> {
        let (status_url, response_url) = urls(j)?;
        match self.client.status(status_url).await? {
            QueueStatus::InQueue { position } => Ok(Paid::free(JobState::Queued { position })),
            QueueStatus::InProgress | QueueStatus::Unknown(_) => Ok(Paid::free(JobState::Running)),
            QueueStatus::Completed => {
                let Paid { value, spend } = self.client.result(response_url, &j.model, 1.0).await?;
                let url = value
                    .pointer("/images/0/url")
                    .and_then(|u| u.as_str())
                    .ok_or_else(|| {
                        ActivityError::new(
                            P,
                            ErrorKind::Malformed,
                            "the result has no images[0].url",
                        )
                    })?;
                let image = self
                    .blobs
                    .copy_from_url(&self.client.http, P, url, &req.output_key)
                    .await?;
                Ok(Paid {
                    value: JobState::Completed {
                        output: ImageOutput {
                            image,
                            manifest: None,
                            description: value
                                .get("description")
                                .and_then(|d| d.as_str())
                                .unwrap_or_default()
                                .to_string(),
                        },
                    },
                    spend,
                })
            }
        }
    }

    async fn cancel(&self, j: &Job) -> Result<()> {
        if let Some(c) = &j.cancel_url {
            self.client.cancel(c).await?;
        }
        Ok(())
    }
}

/// Strict reading of a yes/no answer.
pub fn parse_yes_no(answer: &str) -> Option<bool> {
    let a = answer
        .trim()
        .trim_start_matches(['"', '\'', '*'])
        .to_ascii_lowercase();
    if a.starts_with("yes") {
        Some(true)
    } else if a.starts_with("no") {
        Some(false)
    } else {
        None
    }
}

/// Vision with fal's moondream2 (`{image_url, prompt}` -> `{output}`).
#[derive(Debug, Clone)]
pub struct FalVision {
    client: FalClient,
    blobs: Blobs,
    poll_every: Duration,
}

impl FalVision {
    /// Vision through `client`, images from `blobs`.
    pub fn new(client: FalClient, blobs: Blobs) -> Self {
        FalVision {
            client,
            blobs,
            poll_every: Duration::from_millis(500),
        }
    }

    /// Poll the question's status every `every` (500 ms by default; a question takes seconds).
    pub fn polling(mut self, every: Duration) -> Self {
        self.poll_every = every;
        self
    }

    async fn query(&self, image: &BlobRef, prompt: &str) -> Result<Paid<String>> {
        let model = self.client.settings.vision_model.clone();
        let input =
            json!({"image_url": self.client.upload(&self.blobs, image).await?, "prompt": prompt});
        // Billed by the characters of the exchange where the model is priced that way: the
        // question's and, as a stand-in until the answer is in, a typical answer's.
        let expected = match crate::pricing::Prices::unit_of(&model) {
            Some(crate::pricing::Unit::KiloChars) => {
                (prompt.chars().count() as f64 + 200.0) / 1000.0
            }
            _ => 1.0,
        };
        let identity = json!({"image": image.key(), "prompt": prompt});
        let Paid { value, spend } = self
            .client
            .run(
                &model,
                &input,
                &identity,
                self.poll_every,
                Duration::from_secs(120),
                expected,
            )
            .await?;
        let out = value
            .get("output")
            .and_then(|o| o.as_str())
            .ok_or_else(|| {
                ActivityError::new(P, ErrorKind::Malformed, "the vision answer has no output")
            })?;
        Ok(Paid {
            value: out.to_string(),
            spend,
        })
    }
}

#[async_trait]
impl Vision for FalVision {
    fn name(&self) -> &'static str {
        "fal.ai moondream2"
    }

    async fn ask(&self, q: &VisionQuery) -> Result<Paid<VisionAnswer>> {
        let prompt = format!(
            "{} Answer with YES or NO first, then one sentence.",
            q.question.trim()
        );
        let Paid { value, spend } = self.query(&q.image, &prompt).await?;
        let passed = parse_yes_no(&value).ok_or_else(|| {
            ActivityError::new(
                P,
                ErrorKind::Malformed,
                format!(
                    "the vision model did not answer yes or no: {}",
                    http::truncate(&value, 200)
                ),
            )
        })?;
        Ok(Paid {
            value: VisionAnswer {
                answer: value,
                passed,
                // moondream2 gives no confidence; a strict yes/no is taken at face value.
                confidence: 0.9,
            },
            spend,
        })
    }

    async fn describe(
        &self,
        image: &BlobRef,
        _manifest: Option<&BlobRef>,
        prompt: &str,
    ) -> Result<Paid<String>> {
        self.query(image, prompt).await
    }
}

/// Video with a fal video model (fixed durations).
#[derive(Debug, Clone)]
pub struct FalVideo {
    client: FalClient,
    blobs: Blobs,
    webhook: Option<String>,
    model: VideoModel,
}

impl FalVideo {
    /// Video through `client`, at the lengths its settings allow (Kling: 5 and 10 s). A model
    /// Slate has no template for is sent Kling's shape (image-to-video, `"5"`), at the lengths
    /// `SLATE_FAL_VIDEO_DURATIONS` gives, which the start requires for such a model.
    pub fn new(client: FalClient, blobs: Blobs, webhook: Option<String>) -> Self {
        let model = VideoModel::of(&client.settings.video_model).unwrap_or(VideoModel {
            durations: &[],
            format: DurationFormat::Seconds,
            modes: crate::video_models::I2V,
            image_field: "image_url",
            fixed: &[],
        });
        FalVideo {
            client,
            blobs,
            webhook,
            model,
        }
    }

    fn allowed(&self) -> &[f64] {
        &self.client.settings.video_durations
    }

    /// The mode a request is sent in: its own when the model takes it; else image-to-video from
    /// the scene's composite (a mode the model cannot do is planned around, never sent to fail
    /// with a 422).
    fn mode_for(&self, req: &VideoRequest) -> Result<VideoMode> {
        if self.model.modes.contains(&req.mode) {
            return Ok(req.mode);
        }
        if self.model.modes.contains(&VideoMode::ImageToVideo) && req.start_image.is_some() {
            tracing::info!(
                model = %self.client.settings.video_model,
                asked = ?req.mode,
                "the video model does not take this mode; making the clip from the scene's still"
            );
            return Ok(VideoMode::ImageToVideo);
        }
        Err(ActivityError::bad_request(
            P,
            format!(
                "the video model {} cannot make a {:?} clip and the request has no start image; \
                 set SLATE_FAL_VIDEO_MODEL to a model that can",
                self.client.settings.video_model, req.mode
            ),
        ))
    }
}

#[async_trait]
impl VideoGen for FalVideo {
    fn name(&self) -> &'static str {
        "fal.ai queue"
    }

    fn durations(&self) -> Vec<f64> {
        self.allowed().to_vec()
    }

    async fn submit(&self, req: &VideoRequest) -> Result<Job> {
        let model = self.client.settings.video_model.clone();
        let d = pick_duration(self.allowed(), req.duration);
        let mut input = json!({"prompt": req.prompt, "duration": self.model.duration(d)});
        for (k, v) in self.model.fixed {
            input[*k] = serde_json::from_str(v).unwrap_or_else(|_| json!(v));
        }
        match (self.mode_for(req)?, &req.start_image, &req.source_video) {
            (VideoMode::ImageToVideo, Some(img), _) => {
                input[self.model.image_field] = json!(self.client.upload(&self.blobs, img).await?)
            }
            (VideoMode::VideoToVideo, _, Some(v)) => {
                input["video_url"] = json!(self.client.upload(&self.blobs, v).await?)
            }
            (VideoMode::TextToVideo, _, _) => {}
            _ => {
                return Err(ActivityError::bad_request(
                    P,
                    "the video request lacks its start image or source video",
                ));
            }
        }
        let q = self
            .client
            .submit(&model, &input, self.webhook.as_deref())
            .await?;
        Ok(job(q, &model))
    }

    async fn poll(&self, j: &Job, req: &VideoRequest) -> Result<Paid<JobState<VideoOutput>>> {
        let (status_url, response_url) = urls(j)?;
        match self.client.status(status_url).await? {
            QueueStatus::InQueue { position } => Ok(Paid::free(JobState::Queued { position })),
            QueueStatus::InProgress | QueueStatus::Unknown(_) => Ok(Paid::free(JobState::Running)),
            QueueStatus::Completed => {
                let made = pick_duration(self.allowed(), req.duration);
                let Paid { value, spend } =
                    self.client.result(response_url, &j.model, made).await?;
                let url = value
                    .pointer("/video/url")
                    .and_then(|u| u.as_str())
                    .ok_or_else(|| {
                        ActivityError::new(P, ErrorKind::Malformed, "the result has no video.url")
                    })?;
                let video = self
                    .blobs
                    .copy_from_url(&self.client.http, P, url, &req.output_key)
                    .await?;
                Ok(Paid {
                    value: JobState::Completed {
                        output: VideoOutput {
                            video,
                            duration: made,
                        },
                    },
                    spend,
                })
            }
        }
    }

    async fn cancel(&self, j: &Job) -> Result<()> {
        if let Some(c) = &j.cancel_url {
            self.client.cancel(c).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video_models::{I2V, T2V};

    #[test]
    fn durations_round_up_to_what_the_model_allows() {
        assert_eq!(pick_duration(&[5.0, 10.0], 3.5), 5.0);
        assert_eq!(pick_duration(&[5.0, 10.0], 5.0), 5.0);
        assert_eq!(pick_duration(&[5.0, 10.0], 6.5), 10.0);
        assert_eq!(pick_duration(&[4.0, 6.0, 8.0], 7.0), 8.0);
        assert_eq!(pick_duration(&[], 4.5), 4.5);
    }

    #[test]
    fn video_requests_follow_each_models_template() {
        let kling = VideoModel::of("fal-ai/kling-video/v2.1/standard/image-to-video").unwrap();
        assert_eq!(kling.duration(5.0), "5");
        assert_eq!(kling.modes, I2V);
        let veo = VideoModel::of("fal-ai/veo3/fast/image-to-video").unwrap();
        assert_eq!(veo.duration(6.0), "6s");
        assert_eq!(veo.durations, &[4.0, 6.0, 8.0]);
        assert!(veo.fixed.contains(&("generate_audio", "false")));
        assert_eq!(
            VideoModel::of("fal-ai/kling-video/v2.1/standard/text-to-video")
                .unwrap()
                .modes,
            T2V
        );
        assert_eq!(VideoModel::of("someone/unknown-model"), None);
    }

    #[test]
    fn yes_no_is_strict() {
        assert_eq!(parse_yes_no("Yes, the image shows"), Some(true));
        assert_eq!(parse_yes_no(" NO. Missing"), Some(false));
        assert_eq!(parse_yes_no("The image might"), None);
    }

    #[test]
    fn webhooks_need_a_request_id() {
        assert!(
            FalWebhook::parse(br#"{"request_id": "r1", "status": "OK", "payload": {}}"#).is_ok()
        );
        assert!(FalWebhook::parse(br#"{"request_id": "", "status": "OK"}"#).is_err());
        assert!(FalWebhook::parse(b"nonsense").is_err());
    }
}
