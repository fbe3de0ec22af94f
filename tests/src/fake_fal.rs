//! An in-process stand-in for fal.ai's queue API, following the contract in `CONTRACTS.md`:
//! `Authorization: Key …`, `POST {queue}/{model}` answers a `request_id` with status,
//! response and cancel URLs (without the model's sub-path), `GET …/status` answers 202 until
//! the request is done and then 200 `COMPLETED`, `GET …/requests/{id}` answers the result with
//! `x-fal-billable-units`. Image models return real PNGs, the vision model a strict YES or NO
//! (every `no_every`-th question is answered NO, to exercise re-composition), the video model
//! a real MP4, a music model (`…/music`, ElevenLabs Music's schema: `prompt`,
//! `music_length_ms` 10,000-300,000, `force_instrumental`) a real MP3 of the length asked
//! for, billed in minutes made; an input outside that schema is refused with 422.
//!
//! fal's queue has no lookup by a caller's key, so a submission repeated after a crash cannot
//! be found again: every submission is recorded, and [`FakeFal::repeats`] counts the bodies
//! that arrived more than once: what a crash test reports as paid twice.
//!
//! Media comes in as fal's official clients send it: uploaded to fal storage
//! (`POST /storage/upload/initiate`, then a `PUT` of the bytes to the `upload_url` it answers)
//! and handed to the model by the `file_url`; a model input that is not such a URL is refused
//! with 422, as a model refuses what it cannot download. The platform API answers model
//! metadata (`GET /v1/models?endpoint_id=`) and prices (`GET /v1/models/pricing`), and the
//! fake signs webhooks with an ED25519 key it publishes as a JWKS (`GET /jwks`).

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
    /// fal storage: upload id → bytes.
    stored: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Models the platform API lists as served (`None`: every model asked about).
    served: Mutex<Option<Vec<String>>>,
    /// Prices the platform API states, by model (defaults: Slate's table).
    prices: Mutex<BTreeMap<String, f64>>,
    /// Results leave out `x-fal-billable-units` while set.
    omit_units: std::sync::atomic::AtomicBool,
    /// The webhook signing key (PKCS#8).
    signing: Vec<u8>,
    key: String,
    base: String,
    png: Vec<u8>,
    video: Vec<u8>,
    no_every: usize,
    questions: AtomicUsize,
    submissions: Mutex<Vec<FalSubmission>>,
    /// Music made, by request id: the MP3 and the minutes it is billed as.
    music: Mutex<BTreeMap<String, (Vec<u8>, f64)>>,
    /// Music requests stay in progress while set.
    hold_music: std::sync::atomic::AtomicBool,
    /// A music submission is taken only after this long (a slow upstream); a caller that
    /// hangs up first has submitted nothing.
    music_delay: Mutex<Option<std::time::Duration>>,
    /// Music submissions that arrived (taken or not).
    music_arrivals: AtomicUsize,
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
        let signing =
            ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                .unwrap()
                .as_ref()
                .to_vec();
        let inner = Arc::new(Inner {
            stored: Mutex::new(BTreeMap::new()),
            served: Mutex::new(None),
            prices: Mutex::new(
                slate_activities::pricing::DEFAULT_PRICES
                    .iter()
                    .map(|p| (p.key.to_string(), p.usd))
                    .collect(),
            ),
            omit_units: std::sync::atomic::AtomicBool::new(false),
            signing,
            key: key.to_string(),
            base,
            png,
            video,
            no_every,
            questions: AtomicUsize::new(0),
            submissions: Mutex::new(vec![]),
            music: Mutex::new(BTreeMap::new()),
            hold_music: std::sync::atomic::AtomicBool::new(false),
            music_delay: Mutex::new(None),
            music_arrivals: AtomicUsize::new(0),
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

    /// Submissions whose model and input had arrived before: paid twice. Inputs are compared
    /// with each fal storage URL replaced by what was stored there: an upload made again after
    /// a crash has a new URL but is the same input.
    pub fn repeats(&self) -> usize {
        let subs = self.submissions();
        let stored = self.inner.stored.lock().unwrap().clone();
        let prefix = format!("{}/stored/", self.inner.base);
        let canonical = |v: &Value| -> String {
            let mut text = v.to_string();
            for (id, bytes) in &stored {
                let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
                let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
                text = text.replace(&format!("{prefix}{id}"), &format!("sha256:{hex}"));
            }
            text
        };
        let distinct: std::collections::BTreeSet<String> = subs
            .iter()
            .map(|s| format!("{} {}", s.model, canonical(&s.body)))
            .collect();
        subs.len() - distinct.len()
    }

    /// While `hold`, music requests stay in progress (a long generation).
    pub fn hold_music(&self, hold: bool) {
        self.inner.hold_music.store(hold, Ordering::SeqCst);
    }

    /// From now on a music submission is taken only `delay` after it arrives (none: at once);
    /// one whose caller hangs up before is not taken, as a queue takes no half-sent request.
    pub fn delay_music_submit(&self, delay: Option<std::time::Duration>) {
        *self.inner.music_delay.lock().unwrap() = delay;
    }

    /// Music submissions that arrived so far, taken or not.
    pub fn music_arrivals(&self) -> usize {
        self.inner.music_arrivals.load(Ordering::SeqCst)
    }

    /// The submissions to music models so far.
    pub fn music_submissions(&self) -> Vec<FalSubmission> {
        self.submissions()
            .into_iter()
            .filter(|s| is_music(&s.model))
            .collect()
    }

    /// The platform API lists only `models` as served (the rest: not found).
    pub fn serve_only(&self, models: &[&str]) {
        *self.inner.served.lock().unwrap() = Some(models.iter().map(|m| m.to_string()).collect());
    }

    /// The platform API states `usd` per unit for `model`.
    pub fn set_price(&self, model: &str, usd: f64) {
        self.inner.prices.lock().unwrap().insert(model.into(), usd);
    }

    /// Results leave out `x-fal-billable-units` while `omit` (the cost is then not stated).
    pub fn omit_billable_units(&self, omit: bool) {
        self.inner.omit_units.store(omit, Ordering::SeqCst);
    }

    /// Files uploaded to fal storage so far.
    pub fn uploads(&self) -> usize {
        self.inner.stored.lock().unwrap().len()
    }

    /// The settings that point Slate at this fake with `key`: `FAL_KEY` and every fal URL
    /// (queue, storage, platform API, JWKS), as environment variables.
    pub fn env(&self, key: &str) -> Vec<(String, String)> {
        vec![
            ("FAL_KEY".into(), key.into()),
            ("SLATE_FAL_QUEUE_URL".into(), self.url().into()),
            ("SLATE_FAL_STORAGE_URL".into(), self.url().into()),
            ("SLATE_FAL_API_URL".into(), self.api_url()),
            ("SLATE_FAL_JWKS_URL".into(), self.jwks_url()),
        ]
    }

    /// Its JWKS URL (`SLATE_FAL_JWKS_URL`).
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.inner.base)
    }

    /// Its platform API (`SLATE_FAL_API_URL`).
    pub fn api_url(&self) -> String {
        format!("{}/v1", self.inner.base)
    }

    /// The headers fal signs a webhook delivery of `body` with, at Unix time `timestamp`;
    /// `key` signs with another key (a forgery).
    pub fn signed_headers(
        &self,
        request_id: &str,
        body: &[u8],
        timestamp: i64,
        forged: bool,
    ) -> Vec<(String, String)> {
        let pkcs8 = if forged {
            ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                .unwrap()
                .as_ref()
                .to_vec()
        } else {
            self.inner.signing.clone()
        };
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
        let ts = timestamp.to_string();
        let msg = slate_activities::remote::fal_signature::message(request_id, "user-1", &ts, body);
        let sig: String = pair
            .sign(&msg)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        vec![
            ("x-fal-webhook-request-id".into(), request_id.into()),
            ("x-fal-webhook-user-id".into(), "user-1".into()),
            ("x-fal-webhook-timestamp".into(), ts),
            ("x-fal-webhook-signature".into(), sig),
        ]
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
    if let Some(r) = keyless(&s, &method, &path, &body) {
        return r;
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(format!("Key {}", s.key).as_str())
    {
        return answer(StatusCode::UNAUTHORIZED, json!({"detail": "Invalid key"}));
    }
    if path == "storage/upload/initiate" {
        return initiate_upload(&s, &body);
    }
    if path == "v1/models" || path == "v1/models/pricing" {
        return platform(&s, &uri, &path);
    }
    let segments: Vec<&str> = path.split('/').collect();
    if let Some(pos) = segments.iter().position(|x| *x == "requests") {
        return request(&s, &method, &segments, pos);
    }
    if is_music(&path) && method == Method::POST {
        s.music_arrivals.fetch_add(1, Ordering::SeqCst);
        let delay = *s.music_delay.lock().unwrap();
        if let Some(d) = delay {
            // Dropped here (not taken) if the caller hangs up.
            tokio::time::sleep(d).await;
        }
    }
    submit(&s, &method, &path, &segments, &body)
}

/// What fal serves without a key: its JWKS, presigned uploads, stored files and results.
fn keyless(s: &Inner, method: &Method, path: &str, body: &Bytes) -> Option<Response> {
    if path == "jwks" {
        use base64::Engine as _;
        use ring::signature::KeyPair as _;
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(&s.signing).unwrap();
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        return Some(answer(
            StatusCode::OK,
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "fake-1", "use": "sig"}]}),
        ));
    }
    // fal storage's upload URL takes the bytes without a key (a presigned PUT).
    if let Some(id) = path.strip_prefix("upload/") {
        if *method != Method::PUT {
            return Some(answer(
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"detail": "PUT the bytes"}),
            ));
        }
        s.stored
            .lock()
            .unwrap()
            .insert(id.to_string(), body.to_vec());
        return Some(answer(StatusCode::OK, json!({})));
    }
    if let Some(id) = path.strip_prefix("stored/") {
        return Some(match s.stored.lock().unwrap().get(id) {
            Some(b) => b.clone().into_response(),
            None => answer(StatusCode::NOT_FOUND, json!({"detail": "no such file"})),
        });
    }
    if let Some(name) = path.strip_prefix("files/") {
        if let Some(id) = name.strip_suffix(".mp3") {
            return Some(match s.music.lock().unwrap().get(id) {
                Some((mp3, _)) => ([("content-type", "audio/mpeg")], mp3.clone()).into_response(),
                None => answer(StatusCode::NOT_FOUND, json!({"detail": "no such file"})),
            });
        }
        return Some(if name.ends_with(".mp4") {
            ([("content-type", "video/mp4")], s.video.clone()).into_response()
        } else {
            ([("content-type", "image/png")], s.png.clone()).into_response()
        });
    }
    None
}

/// fal storage: a presigned upload URL and the URL the file will be read from.
fn initiate_upload(s: &Inner, body: &Bytes) -> Response {
    let Ok(b) = serde_json::from_slice::<Value>(body) else {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": "JSON body"}),
        );
    };
    let (Some(_), Some(name)) = (b["content_type"].as_str(), b["file_name"].as_str()) else {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": "content_type and file_name are required"}),
        );
    };
    let id = format!("{}-{name}", uuid::Uuid::new_v4().simple());
    answer(
        StatusCode::OK,
        json!({"upload_url": format!("{}/upload/{id}", s.base), "file_url": format!("{}/stored/{id}", s.base)}),
    )
}

/// The platform API: the models asked for that are served, or their prices.
fn platform(s: &Inner, uri: &Uri, path: &str) -> Response {
    let asked: Vec<String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.strip_prefix("endpoint_id="))
        .map(|m| m.replace("%2F", "/"))
        .collect();
    let served = s.served.lock().unwrap().clone();
    let listed: Vec<&String> = asked
        .iter()
        .filter(|m| served.as_ref().is_none_or(|v| v.contains(m)))
        .collect();
    if path == "v1/models" {
        let models: Vec<Value> = listed
            .iter()
            .map(|m| json!({"endpoint_id": m, "metadata": {"display_name": m, "status": "active"}}))
            .collect();
        return answer(StatusCode::OK, json!({"models": models, "has_more": false}));
    }
    let prices = s.prices.lock().unwrap().clone();
    let rows: Vec<Value> = listed
        .iter()
        .filter_map(|m| {
            prices.get(*m).map(
                |p| json!({"endpoint_id": m, "unit_price": p, "unit": "unit", "currency": "USD"}),
            )
        })
        .collect();
    answer(StatusCode::OK, json!({"prices": rows, "has_more": false}))
}

/// A queued request: its status, result or cancel.
fn request(s: &Inner, method: &Method, segments: &[&str], pos: usize) -> Response {
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
    let done = done && !(is_music(&model) && s.hold_music.load(Ordering::SeqCst));
    match (method.as_str(), segments.get(pos + 2).copied()) {
        ("GET", Some("status")) if !done => {
            answer(StatusCode::ACCEPTED, json!({"status": "IN_PROGRESS"}))
        }
        ("GET", Some("status")) => answer(StatusCode::OK, json!({"status": "COMPLETED"})),
        ("PUT", Some("cancel")) => answer(
            StatusCode::BAD_REQUEST,
            json!({"status": "ALREADY_COMPLETED"}),
        ),
        ("GET", None) => {
            let minutes = s.music.lock().unwrap().get(&id).map(|(_, m)| *m);
            let result = if let Some(minutes) = minutes {
                let mut r = answer(
                    StatusCode::OK,
                    json!({"audio": {"url": format!("{}/files/{id}.mp3", s.base), "content_type": "audio/mpeg", "file_name": format!("{id}.mp3")}}),
                );
                if !s.omit_units.load(Ordering::SeqCst) {
                    r.headers_mut().insert(
                        "x-fal-billable-units",
                        format!("{minutes}").parse().unwrap(),
                    );
                }
                return r;
            } else if model.contains("moondream") || model.contains("vision") {
                let n = s.questions.fetch_add(1, Ordering::SeqCst) + 1;
                let no = match drawn {
                    Some(yes) => !yes,
                    None => s.no_every > 0 && n.is_multiple_of(s.no_every),
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
            if !s.omit_units.load(Ordering::SeqCst) {
                r.headers_mut()
                    .insert("x-fal-billable-units", "1".parse().unwrap());
            }
            r
        }
        _ => answer(StatusCode::NOT_FOUND, json!({"detail": "Not found"})),
    }
}

/// A submission to a model's queue.
fn submit(s: &Inner, method: &Method, path: &str, segments: &[&str], body: &Bytes) -> Response {
    if *method != Method::POST || segments.len() < 2 {
        return answer(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"detail": "Method not allowed"}),
        );
    }
    let Ok(input) = serde_json::from_slice::<Value>(body) else {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"loc": ["body"], "msg": "Input should be a JSON object", "type": "json_invalid"}]}),
        );
    };
    // Media a model takes must be a URL it can download: fal storage's.
    let stored = format!("{}/stored/", s.base);
    let mut urls: Vec<&str> = ["image_url", "video_url"]
        .iter()
        .filter_map(|f| input.get(*f).and_then(|u| u.as_str()))
        .collect();
    urls.extend(
        input
            .get("image_urls")
            .and_then(|u| u.as_array())
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str()),
    );
    for u in urls {
        let known = u
            .strip_prefix(&stored)
            .is_some_and(|id| s.stored.lock().unwrap().contains_key(id));
        if !known {
            return answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"detail": [{"loc": ["body"], "msg": format!("could not download {}", u.chars().take(60).collect::<String>()), "type": "file_download_error"}]}),
            );
        }
    }
    let model = path.to_string();
    let music = if is_music(&model) {
        match make_music(&input) {
            Ok(m) => Some(m),
            Err(r) => return r,
        }
    } else {
        None
    };
    let latency = *s.latency.lock().unwrap();
    // With latencies on, one question in `no_every` is answered NO by its content.
    let yes = latency.map(|l| {
        s.no_every == 0
            || l.draw("verdict", &input, (0.0, 60.0 * s.no_every as f64)) >= l.scaled(60.0)
    });
    let done_at = latency.map(|l| {
        let (kind, range) = if is_music(&model) {
            ("music", typical::IMAGE)
        } else if model.contains("moondream") || model.contains("vision") {
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
        if let Some(m) = music {
            s.music.lock().unwrap().insert(id.clone(), m);
        }
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

fn is_music(model: &str) -> bool {
    model.ends_with("/music") || model.contains("/music/")
}

/// ElevenLabs Music's input checked as the model checks it, and the music made: an MP3 of a
/// minor chord as long as asked, and the minutes billed.
#[allow(clippy::result_large_err)]
fn make_music(input: &Value) -> Result<(Vec<u8>, f64), Response> {
    let refuse = |loc: &str, msg: &str| {
        Err(answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"loc": ["body", loc], "msg": msg, "type": "value_error"}]}),
        ))
    };
    if input["prompt"].as_str().is_none_or(|p| p.trim().is_empty()) {
        return refuse("prompt", "Field required");
    }
    let Some(ms) = input["music_length_ms"].as_u64() else {
        return refuse("music_length_ms", "Input should be a valid integer");
    };
    if !(10_000..=300_000).contains(&ms) {
        return refuse(
            "music_length_ms",
            "Input should be between 10000 and 300000",
        );
    }
    if !input["force_instrumental"].is_null() && !input["force_instrumental"].is_boolean() {
        return refuse("force_instrumental", "Input should be a valid boolean");
    }
    let dir = std::env::temp_dir().join(format!("slate-fake-music-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let secs = ms as f64 / 1000.0;
    // A D minor chord with a slow swell: music-shaped, not a test tone at one frequency.
    let expr = "0.2*sin(2*PI*146.83*t)+0.15*sin(2*PI*174.61*t)+0.15*sin(2*PI*220*t)";
    let mp3 = ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            &format!("aevalsrc={expr}|{expr}:s=44100:d={secs}"),
            "-af",
            "tremolo=f=0.5:d=0.3",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "128k",
        ],
        &dir.join("music.mp3"),
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok((mp3, ms as f64 / 60_000.0))
}
