//! An in-process stand-in for fal.ai's queue API, following the contract in `CONTRACTS.md`:
//! `Authorization: Key …`, `POST {queue}/{model}` answers a `request_id` with status,
//! response and cancel URLs (without the model's sub-path), `GET …/status` answers 202 until
//! the request is done and then 200 `COMPLETED`, `GET …/requests/{id}` answers the result with
//! `x-fal-billable-units`. Image models return real PNGs, the vision model a strict YES or NO
//! (every `no_every`-th question is answered NO, to exercise re-composition), the video model
//! a real MP4.
//!
//! fal's queue has no lookup by a caller's key, so a submission repeated after a crash cannot
//! be found again: every submission is recorded, and [`FakeFal::repeats`] counts the bodies
//! that arrived more than once: what a crash test reports as paid twice.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::fake_tasks::ffmpeg;
use crate::latency::{JobStats, Jobs, Latency, typical};
use std::time::Instant;

/// One submission, as fal received it.
#[derive(Debug, Clone)]
pub struct FalSubmission {
    /// The request id it was given.
    pub request_id: String,
    /// The model path it was posted to (`fal-ai/nano-banana/edit`).
    pub model: String,
    /// The input.
    pub body: Value,
}

/// A request: its model, status polls so far, when it is done (latencies on) and its drawn
/// vision answer.
type Request = (String, u32, Option<Instant>, Option<bool>);

struct Inner {
    key: String,
    base: String,
    png: Vec<u8>,
    video: Vec<u8>,
    no_every: usize,
    questions: AtomicUsize,
    submissions: Mutex<Vec<FalSubmission>>,
    /// request id → (model, status polls so far, when it is done when latencies are on, and
    /// then also the vision answer, drawn from the question so that any run answers alike)
    requests: Mutex<BTreeMap<String, Request>>,
    latency: Mutex<Option<Latency>>,
    jobs: Jobs,
}

/// The fake; dropped with the test.
#[derive(Clone)]
pub struct FakeFal {
    inner: Arc<Inner>,
}

impl FakeFal {
    /// Start on a free port. `key` is the expected `FAL_KEY`; every `no_every`-th vision
    /// question is answered NO (0: never).
    pub async fn start(key: &str, no_every: usize, video_seconds: f64) -> FakeFal {
        let dir = std::env::temp_dir().join(format!(
            "slate-fake-fal-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let png = ffmpeg(
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=640x360:rate=1:duration=1",
                "-frames:v",
                "1",
            ],
            &dir.join("image.png"),
        );
        let video = ffmpeg(
            &[
                "-f",
                "lavfi",
                "-i",
                &format!("testsrc2=size=640x360:rate=24:duration={video_seconds}"),
                "-pix_fmt",
                "yuv420p",
                "-an",
            ],
            &dir.join("clip.mp4"),
        );
        let _ = std::fs::remove_dir_all(&dir);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let inner = Arc::new(Inner {
            key: key.to_string(),
            base,
            png,
            video,
            no_every,
            questions: AtomicUsize::new(0),
            submissions: Mutex::new(vec![]),
            requests: Mutex::new(BTreeMap::new()),
            latency: Mutex::new(None),
            jobs: Jobs::default(),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeFal { inner }
    }

    /// The queue's base URL (`SLATE_FAL_QUEUE_URL`).
    pub fn url(&self) -> &str {
        &self.inner.base
    }

    /// From now on each request takes its provider's typical time on `latency`'s scale (images
    /// 30-90 s, videos 2-8 min, vision a few seconds), instead of being done at the second
    /// status poll; and the jobs are kept for [`FakeFal::jobs`].
    pub fn set_latency(&self, latency: Latency) {
        *self.inner.latency.lock().unwrap() = Some(latency);
    }

    /// The jobs run with latencies on, per kind (`image`, `vision`, `video`): how many, their
    /// time, and the most running at once.
    pub fn jobs(&self) -> BTreeMap<String, JobStats> {
        self.inner.jobs.stats()
    }

    /// Every submission so far.
    pub fn submissions(&self) -> Vec<FalSubmission> {
        self.inner.submissions.lock().unwrap().clone()
    }

    /// Submissions whose model and input had arrived before: paid twice.
    pub fn repeats(&self) -> usize {
        let subs = self.submissions();
        let distinct: std::collections::BTreeSet<String> = subs
            .iter()
            .map(|s| format!("{} {}", s.model, s.body))
            .collect();
        subs.len() - distinct.len()
    }
}

fn answer(code: StatusCode, body: Value) -> Response {
    (code, axum::Json(body)).into_response()
}

async fn handle(
    State(s): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_matches('/').to_string();
    if let Some(name) = path.strip_prefix("files/") {
        return if name.ends_with(".mp4") {
            ([("content-type", "video/mp4")], s.video.clone()).into_response()
        } else {
            ([("content-type", "image/png")], s.png.clone()).into_response()
        };
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(format!("Key {}", s.key).as_str())
    {
        return answer(StatusCode::UNAUTHORIZED, json!({"detail": "Invalid key"}));
    }
    let segments: Vec<&str> = path.split('/').collect();
    if let Some(pos) = segments.iter().position(|x| *x == "requests") {
        let Some(id) = segments.get(pos + 1).map(|x| x.to_string()) else {
            return answer(StatusCode::NOT_FOUND, json!({"detail": "Not found"}));
        };
        let Some(model) = ({
            let mut r = s.requests.lock().unwrap();
            r.get_mut(&id).map(|(m, polls, done_at, yes)| {
                *polls += 1;
                // With latencies, done when its time has come; without, at the second poll.
                let done = match done_at {
                    Some(t) => Instant::now() >= *t,
                    None => *polls >= 2,
                };
                (m.clone(), done, *yes)
            })
        }) else {
            return answer(
                StatusCode::NOT_FOUND,
                json!({"detail": "Request not found"}),
            );
        };
        let (model, done, drawn) = model;
        return match (method.as_str(), segments.get(pos + 2).copied()) {
            ("GET", Some("status")) if !done => {
                answer(StatusCode::ACCEPTED, json!({"status": "IN_PROGRESS"}))
            }
            ("GET", Some("status")) => answer(StatusCode::OK, json!({"status": "COMPLETED"})),
            ("PUT", Some("cancel")) => answer(
                StatusCode::BAD_REQUEST,
                json!({"status": "ALREADY_COMPLETED"}),
            ),
            ("GET", None) => {
                let result = if model.contains("moondream") || model.contains("vision") {
                    let n = s.questions.fetch_add(1, Ordering::SeqCst) + 1;
                    let no = match drawn {
                        Some(yes) => !yes,
                        None => s.no_every > 0 && n % s.no_every == 0,
                    };
                    if no {
                        json!({"output": "NO, the frame does not match what was asked."})
                    } else {
                        json!({"output": "YES, the frame shows what was asked."})
                    }
                } else if model.contains("video") {
                    json!({"video": {"url": format!("{}/files/{id}.mp4", s.base)}})
                } else {
                    json!({"images": [{"url": format!("{}/files/{id}.png", s.base), "width": 640, "height": 360}], "description": "a frame"})
                };
                let mut r = answer(StatusCode::OK, result);
                r.headers_mut()
                    .insert("x-fal-billable-units", "1".parse().unwrap());
                r
            }
            _ => answer(StatusCode::NOT_FOUND, json!({"detail": "Not found"})),
        };
    }
    if method != Method::POST || segments.len() < 2 {
        return answer(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"detail": "Method not allowed"}),
        );
    }
    let Ok(input) = serde_json::from_slice::<Value>(&body) else {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"loc": ["body"], "msg": "Input should be a JSON object", "type": "json_invalid"}]}),
        );
    };
    let model = path.clone();
    let latency = *s.latency.lock().unwrap();
    // With latencies on, one question in `no_every` is answered NO by its content.
    let yes = latency.map(|l| {
        s.no_every == 0
            || l.draw("verdict", &input, (0.0, 60.0 * s.no_every as f64)) >= l.scaled(60.0)
    });
    let done_at = latency.map(|l| {
        let (kind, range) = if model.contains("moondream") || model.contains("vision") {
            ("vision", typical::VISION)
        } else if model.contains("video") {
            ("video", typical::VIDEO)
        } else {
            ("image", typical::IMAGE)
        };
        let took = l.draw(kind, &input, range);
        let now = Instant::now();
        s.jobs.record(kind, now, took);
        now + took
    });
    let id = {
        let mut subs = s.submissions.lock().unwrap();
        let id = format!("req-{}", subs.len() + 1);
        subs.push(FalSubmission {
            request_id: id.clone(),
            model: model.clone(),
            body: input,
        });
        s.requests
            .lock()
            .unwrap()
            .insert(id.clone(), (model.clone(), 0, done_at, yes));
        id
    };
    // The URLs omit the endpoint's sub-path: `fal-ai/nano-banana/edit` is read under
    // `fal-ai/nano-banana`.
    let app = format!("{}/{}", segments[0], segments[1]);
    answer(
        StatusCode::OK,
        json!({
            "status": "IN_QUEUE", "request_id": id,
            "status_url": format!("{}/{app}/requests/{id}/status", s.base),
            "response_url": format!("{}/{app}/requests/{id}", s.base),
            "cancel_url": format!("{}/{app}/requests/{id}/cancel", s.base),
            "queue_position": 0,
        }),
    )
}
