//! An in-process stand-in for the tasks service (video and voice generation), following the
//! contract in `CONTRACTS.md`: `X-API-Key` auth, `POST /api/v1/tasks/submit`,
//! `GET /api/v1/tasks/{id}/status`, `GET /api/v1/projects/{id}/tasks` (a project's tasks with
//! their `task_data`), `DELETE /api/v1/tasks/{id}/cancel`, results as URLs the client
//! downloads. Its clips are real MP4s (made by ffmpeg, with no audio track, as providers
//! often return) and its voices real WAVs, so the rest of the pipeline works on them.
//!
//! Video tasks can be *held* (they stay `processing` until the test completes them), which is
//! how a test catches a run waiting for a video. Every submission is counted: the count "at the
//! provider" that crash tests compare with one.
//!
//! Its bodies are the spec's: it fetches the `start_image_url` it is given (a URL it cannot
//! fetch is refused with 422), its status answers carry no `task_id`, and a finished video is
//! reported to the `callback_url` with the spec's body, `{scene_id, video_url, duration}`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use crate::latency::{JobStats, Jobs, Latency, typical};
use std::time::Instant;

/// One submission, as the service received it.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The id the service gave it.
    pub task_id: String,
    /// `generate_video`, `generate_character_voice`, ...
    pub task_type: String,
    /// The whole request body.
    pub body: Value,
}

#[derive(Debug, Clone)]
struct Task {
    task_type: String,
    status: String,
    project: String,
    task_data: Value,
    /// With latencies on, when a `processing` task is done.
    done_at: Option<Instant>,
    /// Where to report a finished video.
    callback_url: Option<String>,
}

impl Task {
    /// Its status now.
    fn status(&self) -> &str {
        match self.done_at {
            Some(t) if self.status == "processing" && Instant::now() >= t => "completed",
            _ => &self.status,
        }
    }
}

struct Inner {
    key: String,
    base: String,
    video: Vec<u8>,
    video_seconds: f64,
    audio: Vec<u8>,
    hold: AtomicBool,
    reject: AtomicBool,
    /// Video submissions are recorded at once but answered this many ms later: the window in
    /// which a test kills the caller.
    slow_submit_ms: std::sync::atomic::AtomicU64,
    list_calls: std::sync::atomic::AtomicUsize,
    tasks: Mutex<BTreeMap<String, Task>>,
    submissions: Mutex<Vec<Submission>>,
    status_calls: Mutex<usize>,
    latency: Mutex<Option<Latency>>,
    jobs: Jobs,
    callbacks: Mutex<Vec<(String, Value)>>,
}

/// The fake service; dropped with the test.
#[derive(Clone)]
pub struct FakeTasks {
    inner: Arc<Inner>,
}

pub(crate) fn ffmpeg(args: &[&str], out: &std::path::Path) -> Vec<u8> {
    let status = std::process::Command::new("ffmpeg")
        .args(["-y", "-v", "error"])
        .args(args)
        .arg(out)
        .status()
        .expect("run ffmpeg (./scripts/test installs it)");
    assert!(
        status.success(),
        "ffmpeg failed making a fake provider file"
    );
    std::fs::read(out).expect("read the fake provider file")
}

impl FakeTasks {
    /// Start the service on a free port. Its clips last `video_seconds`.
    pub async fn start(key: &str, video_seconds: f64) -> FakeTasks {
        FakeTasks::start_sized(key, video_seconds, "640x360").await
    }

    /// [`FakeTasks::start`] with clips of `size` (`WxH`).
    pub async fn start_sized(key: &str, video_seconds: f64, size: &str) -> FakeTasks {
        let dir = std::env::temp_dir().join(format!(
            "slate-fake-tasks-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let video = ffmpeg(
            &[
                "-f",
                "lavfi",
                "-i",
                &format!("testsrc2=size={size}:rate=24:duration={video_seconds}"),
                "-pix_fmt",
                "yuv420p",
                "-an",
            ],
            &dir.join("clip.mp4"),
        );
        let audio = ffmpeg(
            &["-f", "lavfi", "-i", "sine=frequency=330:duration=1.2"],
            &dir.join("line.wav"),
        );
        let _ = std::fs::remove_dir_all(&dir);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let inner = Arc::new(Inner {
            key: key.to_string(),
            base: base.clone(),
            video,
            video_seconds,
            audio,
            hold: AtomicBool::new(false),
            reject: AtomicBool::new(false),
            slow_submit_ms: std::sync::atomic::AtomicU64::new(0),
            list_calls: std::sync::atomic::AtomicUsize::new(0),
            tasks: Mutex::new(BTreeMap::new()),
            submissions: Mutex::new(vec![]),
            status_calls: Mutex::new(0),
            latency: Mutex::new(None),
            jobs: Jobs::default(),
            callbacks: Mutex::new(vec![]),
        });
        let app = Router::new()
            .route("/api/v1/tasks/submit", post(submit))
            .route("/api/v1/tasks/{id}/status", get(status))
            .route("/api/v1/projects/{project}/tasks", get(list))
            .route("/api/v1/tasks/{id}/cancel", delete(cancel))
            .route("/files/{name}", get(file))
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeTasks { inner }
    }

    /// Its base URL (`SLATE_TASKS_URL`).
    pub fn url(&self) -> &str {
        &self.inner.base
    }

    /// From now on each task takes its typical time on `latency`'s scale (videos 2-8 min,
    /// voices 10-30 s) instead of being done at once; the jobs are kept for [`FakeTasks::jobs`].
    pub fn set_latency(&self, latency: Latency) {
        *self.inner.latency.lock().unwrap() = Some(latency);
    }

    /// The jobs run with latencies on, per kind (`video`, `voice`): how many, their time, and
    /// the most running at once.
    pub fn jobs(&self) -> BTreeMap<String, JobStats> {
        self.inner.jobs.stats()
    }

    /// While held, video tasks stay `processing` until [`FakeTasks::complete`].
    pub fn hold_videos(&self, hold: bool) {
        self.inner.hold.store(hold, Ordering::SeqCst);
    }

    /// While set, video submissions are refused with 422 as a content-policy violation (a
    /// final error: nothing is queued, nothing is charged).
    pub fn reject_videos(&self, reject: bool) {
        self.inner.reject.store(reject, Ordering::SeqCst);
    }

    /// Answer video submissions `ms` after recording them (0: at once).
    pub fn slow_submits(&self, ms: u64) {
        self.inner.slow_submit_ms.store(ms, Ordering::SeqCst);
    }

    /// How many times a project's tasks were listed.
    pub fn list_calls(&self) -> usize {
        self.inner.list_calls.load(Ordering::SeqCst)
    }

    /// Finish a task (and call back, as the service does).
    pub fn complete(&self, task_id: &str) {
        let t = match self.inner.tasks.lock().unwrap().get_mut(task_id) {
            Some(t) => {
                t.status = "completed".into();
                t.clone()
            }
            None => return,
        };
        call_back(&self.inner, task_id, &t, std::time::Duration::ZERO);
    }

    /// Callbacks sent so far: (URL, body).
    pub fn callbacks(&self) -> Vec<(String, Value)> {
        self.inner.callbacks.lock().unwrap().clone()
    }

    /// Every submission so far.
    pub fn submissions(&self) -> Vec<Submission> {
        self.inner.submissions.lock().unwrap().clone()
    }

    /// Video submissions so far.
    pub fn video_submissions(&self) -> Vec<Submission> {
        self.submissions()
            .into_iter()
            .filter(|s| s.task_type == "generate_video")
            .collect()
    }

    /// Status requests so far.
    pub fn status_calls(&self) -> usize {
        *self.inner.status_calls.lock().unwrap()
    }
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Report a finished video to its callback URL `after` a while, with the spec's body.
fn call_back(s: &Inner, task_id: &str, t: &Task, after: std::time::Duration) {
    let (Some(url), true) = (t.callback_url.clone(), t.task_type == "generate_video") else {
        return;
    };
    let body = json!({
        "scene_id": t.task_data["scene_id"],
        "video_url": format!("{}/files/{task_id}.mp4", s.base),
        "duration": s.video_seconds,
    });
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    s.callbacks
        .lock()
        .unwrap()
        .push((url.clone(), body.clone()));
    rt.spawn(async move {
        tokio::time::sleep(after).await;
        let _ = http().post(&url).json(&body).send().await;
    });
}

fn err(code: StatusCode, detail: &str) -> Response {
    (code, axum::Json(json!({"detail": detail}))).into_response()
}

fn authorized(s: &Inner, h: &HeaderMap) -> bool {
    h.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(s.key.as_str())
}

async fn submit(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if !authorized(&s, &headers) {
        return err(StatusCode::UNAUTHORIZED, "invalid API key");
    }
    let Some(task_type) = body["task_type"].as_str().map(str::to_string) else {
        return err(StatusCode::UNPROCESSABLE_ENTITY, "task_type is required");
    };
    let video = task_type == "generate_video";
    // The service fetches the start image it is given.
    if let Some(u) = body["task_data"]["start_image_url"].as_str() {
        let ok = match http().get(u).send().await {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok_and(|b| !b.is_empty()),
            _ => false,
        };
        if !ok {
            return err(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("could not fetch start_image_url {u}"),
            );
        }
    }
    // Recorded under the lock, answered after it (a slow answer must not hold it).
    let Some(task_id) = record(&s, task_type, body) else {
        return err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "content_policy_violation: the video model refused this scene's prompt",
        );
    };
    let slow = s.slow_submit_ms.load(Ordering::SeqCst);
    if video && slow > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(slow)).await;
    }
    axum::Json(json!({"task_id": task_id, "status": "queued"})).into_response()
}

/// Take a submission: its task id, or `None` when it is refused (rejecting videos).
fn record(s: &Inner, task_type: String, body: Value) -> Option<String> {
    let mut subs = s.submissions.lock().unwrap();
    let task_id = format!("{task_type}-{}", subs.len() + 1);
    let video = task_type == "generate_video";
    if video && s.reject.load(Ordering::SeqCst) {
        return None;
    }
    let held = video && s.hold.load(Ordering::SeqCst);
    let done_at = s.latency.lock().unwrap().filter(|_| !held).map(|l| {
        let (kind, range) = if video {
            ("video", typical::VIDEO)
        } else {
            ("voice", typical::VOICE)
        };
        let took = l.draw(kind, &body, range);
        let now = Instant::now();
        s.jobs.record(kind, now, took);
        now + took
    });
    s.tasks.lock().unwrap().insert(
        task_id.clone(),
        Task {
            task_type: task_type.clone(),
            status: if held || done_at.is_some() {
                "processing"
            } else {
                "completed"
            }
            .into(),
            project: body["project_id"].as_str().unwrap_or("").to_string(),
            task_data: body["task_data"].clone(),
            done_at,
            callback_url: body["callback_url"].as_str().map(str::to_string),
        },
    );
    if video && !held {
        let t = s.tasks.lock().unwrap().get(&task_id).cloned();
        if let Some(t) = t {
            let wait = done_at
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(std::time::Duration::from_millis(20));
            call_back(s, &task_id, &t, wait);
        }
    }
    subs.push(Submission {
        task_id: task_id.clone(),
        task_type,
        body,
    });
    Some(task_id)
}

async fn list(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> Response {
    if !authorized(&s, &headers) {
        return err(StatusCode::UNAUTHORIZED, "invalid API key");
    }
    s.list_calls.fetch_add(1, Ordering::SeqCst);
    let tasks: Vec<Value> = s
        .tasks
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, t)| t.project == project)
        .map(|(id, t)| {
            json!({"task_id": id, "task_type": t.task_type, "status": t.status(), "task_data": t.task_data})
        })
        .collect();
    axum::Json(json!({"tasks": tasks})).into_response()
}

async fn status(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&s, &headers) {
        return err(StatusCode::UNAUTHORIZED, "invalid API key");
    }
    *s.status_calls.lock().unwrap() += 1;
    let Some(t) = s.tasks.lock().unwrap().get(&id).cloned() else {
        return err(StatusCode::NOT_FOUND, "task not found");
    };
    let result = match (t.status(), t.task_type.as_str()) {
        ("completed", "generate_video") => json!({
            "video_url": format!("{}/files/{id}.mp4", s.base),
            "duration": s.video_seconds,
        }),
        ("completed", _) => json!({"audio_url": format!("{}/files/{id}.wav", s.base)}),
        _ => Value::Null,
    };
    let cost = if t.task_type == "generate_video" {
        0.35
    } else {
        0.01
    };
    // The spec shows no status body: no task_id here, the fields Slate reads.
    axum::Json(json!({"status": t.status(), "result": result, "cost": cost})).into_response()
}

async fn cancel(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&s, &headers) {
        return err(StatusCode::UNAUTHORIZED, "invalid API key");
    }
    match s.tasks.lock().unwrap().get_mut(&id) {
        Some(t) => {
            t.status = "cancelled".into();
            axum::Json(json!({"task_id": id, "status": "cancelled"})).into_response()
        }
        None => err(StatusCode::NOT_FOUND, "task not found"),
    }
}

async fn file(State(s): State<Arc<Inner>>, Path(name): Path<String>) -> Response {
    if name.ends_with(".mp4") {
        ([("content-type", "video/mp4")], s.video.clone()).into_response()
    } else if name.ends_with(".wav") {
        ([("content-type", "audio/wav")], s.audio.clone()).into_response()
    } else {
        err(StatusCode::NOT_FOUND, "no such file")
    }
}
