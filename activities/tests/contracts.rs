//! Contract tests of the remote clients against in-process fake servers (axum on 127.0.0.1:0)
//! that follow the providers' documented contracts (`CONTRACTS.md`, the spec's services),
//! failure modes included: queue states, 422 content policy, 429 with Retry-After, 500s, a hung
//! server, malformed JSON, 200-with-error bodies, and a webhook delivered twice.
//!
//! (One suite over 600 lines on purpose: the fakes are shared by every provider's tests.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use slate_activities::config::{FalSettings, OpenRouterSettings, ServiceSettings};
use slate_activities::model::*;
use slate_activities::remote::fal::{CancelStatus, FalWebhook, QueueStatus};
use slate_activities::remote::*;
use slate_activities::{
    ActivityError, Blobs, ErrorKind, ImageGen, Knowledge, Media, Planner, Secret, VideoGen, Vision,
    Voice,
};

// ---------------------------------------------------------------------------------------------
// Plumbing

#[derive(Debug, Clone)]
struct Hit {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Value,
}

#[derive(Default)]
struct Log(Mutex<Vec<Hit>>);

impl Log {
    fn push(&self, h: Hit) {
        self.0.lock().unwrap().push(h);
    }
    fn count(&self, method: &str, path_part: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.method == method && h.path.contains(path_part))
            .count()
    }
    fn last(&self, path_part: &str) -> Hit {
        self.0
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|h| h.path.contains(path_part))
            .cloned()
            .expect("a request to that path")
    }
}

async fn read(req: Request) -> Hit {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers = req.headers().clone();
    let bytes = axum::body::to_bytes(req.into_body(), 10 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Hit {
        method,
        path,
        query,
        headers,
        body,
    }
}

async fn serve(router: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    format!("http://{addr}")
}

fn j(status: u16, v: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(v)).into_response()
}

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 10, 10]));
    let mut out = std::io::Cursor::new(vec![]);
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn blobs() -> Blobs {
    let dir = std::env::temp_dir().join(format!(
        "slate-contract-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    Blobs::local(dir, None).unwrap()
}

fn assert_kind(e: &ActivityError, kind: ErrorKind, retryable: bool) {
    assert_eq!(e.kind, kind, "{e}");
    assert_eq!(e.retryable, retryable, "{e}");
}

// ---------------------------------------------------------------------------------------------
// Fake fal.ai

struct Fal {
    log: Log,
    base: OnceLock<String>,
    next: AtomicU32,
    polls: Mutex<HashMap<String, u32>>,
    /// fal storage: upload id → bytes.
    stored: Mutex<HashMap<String, Vec<u8>>>,
}

fn fal_err(status: u16, headers: &[(&'static str, &str)], body: Value) -> Response {
    let mut r = j(status, body);
    for (k, v) in headers {
        r.headers_mut().insert(*k, v.parse().unwrap());
    }
    r
}

async fn fal_handler(State(st): State<Arc<Fal>>, req: Request) -> Response {
    // fal storage's upload URL takes the raw bytes (a presigned PUT: no key).
    if req.method() == "PUT" && req.uri().path().starts_with("/upload/") {
        let id = req.uri().path().trim_start_matches("/upload/").to_string();
        let bytes = axum::body::to_bytes(req.into_body(), 50 << 20)
            .await
            .unwrap();
        st.stored.lock().unwrap().insert(id, bytes.to_vec());
        return j(200, json!({}));
    }
    let hit = read(req).await;
    st.log.push(hit.clone());
    let base = st.base.get().unwrap().clone();
    if hit.path.starts_with("/files/") {
        return ([("content-type", "image/png")], png()).into_response();
    }
    if let Some(id) = hit.path.strip_prefix("/stored/") {
        return match st.stored.lock().unwrap().get(id) {
            Some(b) => b.clone().into_response(),
            None => j(404, json!({"detail": "no such file"})),
        };
    }
    if hit
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some("Key fal-test-key")
    {
        return j(401, json!({"detail": "Invalid key"}));
    }
    // fal storage (fal-js `storage.ts`): initiate, then PUT the bytes to `upload_url`.
    if hit.path == "/storage/upload/initiate" {
        return fal_initiate(&st, &hit, &base);
    }
    let segments: Vec<&str> = hit.path.trim_matches('/').split('/').collect();
    // Queue URLs: /{owner}/{app}/requests/{id}[/status|/cancel]
    if let Some(pos) = segments.iter().position(|s| *s == "requests") {
        return fal_request(&st, &hit, &segments, pos, &base);
    }
    // Submission: POST /{owner}/{app}[/{path}]
    if hit.method != "POST" {
        return j(405, json!({"detail": "method"}));
    }
    let prompt = hit
        .body
        .get("prompt")
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .to_string();
    if let Some(r) = fal_fault(&prompt).await {
        return r;
    }
    fal_submit(&st, &hit, &segments, &prompt, &base)
}

/// fal storage (fal-js `storage.ts`): initiate, then PUT the bytes to `upload_url`.
fn fal_initiate(st: &Fal, hit: &Hit, base: &str) -> Response {
    assert_eq!(hit.method, "POST");
    assert!(
        hit.query.contains("storage_type=fal-cdn-v3"),
        "{}",
        hit.query
    );
    let (Some(ct), Some(name)) = (
        hit.body["content_type"].as_str(),
        hit.body["file_name"].as_str(),
    ) else {
        return j(
            422,
            json!({"detail": "content_type and file_name are required"}),
        );
    };
    assert!(!ct.is_empty() && !name.is_empty());
    let id = format!("f{}-{name}", st.next.fetch_add(1, Ordering::SeqCst));
    j(
        200,
        json!({"upload_url": format!("{base}/upload/{id}"), "file_url": format!("{base}/stored/{id}")}),
    )
}

/// Queue URLs: /{owner}/{app}/requests/{id}[/status|/cancel]
fn fal_request(st: &Fal, hit: &Hit, segments: &[&str], pos: usize, base: &str) -> Response {
    let id = segments[pos + 1].to_string();
    let tail = segments.get(pos + 2).copied();
    match (hit.method.as_str(), tail) {
        ("GET", Some("status")) => {
            let n = {
                let mut p = st.polls.lock().unwrap();
                let e = p.entry(id.clone()).or_default();
                *e += 1;
                *e
            };
            if id.starts_with("weird") {
                return j(202, json!({"status": "PAUSED_FOR_MAINTENANCE"}));
            }
            match n {
                1 => j(202, json!({"status": "IN_QUEUE", "queue_position": 1})),
                2 => j(202, json!({"status": "IN_PROGRESS"})),
                _ => j(200, json!({"status": "COMPLETED"})),
            }
        }
        ("PUT", Some("cancel")) => j(202, json!({"status": "CANCELLATION_REQUESTED"})),
        ("GET", None) => {
            let app = segments[1];
            let body = if app.contains("moondream") {
                json!({"output": if id.contains("maybe") { "Perhaps, it is hard to say." } else { "YES, Mira stands in the market." }})
            } else if app.contains("video") {
                json!({"video": {"url": format!("{base}/files/{id}.mp4")}})
            } else {
                json!({"images": [{"url": format!("{base}/files/{id}.png"), "width": 8, "height": 8}], "description": "a market"})
            };
            let mut r = j(200, body);
            // Some results come without the header: the cost is then the estimate.
            if !id.starts_with("nounits") {
                r.headers_mut()
                    .insert("x-fal-billable-units", "1.5".parse().unwrap());
            }
            r
        }
        _ => j(404, json!({"detail": "Not found"})),
    }
}

/// The failures a prompt asks for: a hang, a content-policy refusal, a rate limit, server and
/// scheduling errors, retryable and final model errors, a malformed answer.
async fn fal_fault(prompt: &str) -> Option<Response> {
    if prompt.contains("hang") {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    if prompt.contains("content-policy") {
        return Some(fal_err(
            422,
            &[],
            json!({"detail": [{"loc": ["body", "prompt"], "msg": "The prompt was flagged by the safety checker", "type": "content_policy_violation"}]}),
        ));
    }
    if prompt.contains("rate-limit") {
        return Some(fal_err(
            429,
            &[("retry-after", "2")],
            json!({"detail": "Too many requests"}),
        ));
    }
    if prompt.contains("server-error") {
        return Some(fal_err(500, &[], json!({"detail": "Internal error"})));
    }
    if prompt.contains("scheduling") {
        return Some(fal_err(
            503,
            &[("x-fal-error-type", "runner_scheduling_failure")],
            json!({"detail": "No runner", "error_type": "runner_scheduling_failure"}),
        ));
    }
    if prompt.contains("model-retryable") {
        return Some(fal_err(
            400,
            &[("x-fal-retryable", "true")],
            json!({"detail": [{"loc": ["body"], "msg": "Transient model failure", "type": "model_error"}]}),
        ));
    }
    if prompt.contains("model-final") {
        return Some(fal_err(
            400,
            &[],
            json!({"detail": [{"loc": ["body", "image_urls"], "msg": "Field required", "type": "missing"}]}),
        ));
    }
    if prompt.contains("malformed") {
        return Some(
            (
                StatusCode::OK,
                "{\"status\": \"IN_QUEUE\", \"request_id\": ",
            )
                .into_response(),
        );
    }
    None
}

/// An accepted submission: its request id (whose prefix picks the result's kind) and URLs; a
/// webhook, when asked for, delivered twice.
fn fal_submit(st: &Fal, hit: &Hit, segments: &[&str], prompt: &str, base: &str) -> Response {
    let n = st.next.fetch_add(1, Ordering::SeqCst);
    // A model input that is not a URL fal can fetch is refused, as the real models refuse a
    // data URI they do not document.
    for field in ["image_url", "video_url"] {
        if let Some(u) = hit.body.get(field).and_then(|u| u.as_str())
            && !u.starts_with(&format!("{base}/stored/"))
        {
            return fal_err(
                422,
                &[],
                json!({"detail": [{"loc": ["body", field], "msg": "the file could not be downloaded", "type": "file_download_error"}]}),
            );
        }
    }
    let kind = if prompt.contains("weird") {
        "weird"
    } else if prompt.contains("no-units") {
        "nounits"
    } else if prompt.contains("maybe") {
        "maybe"
    } else {
        "req"
    };
    let id = format!("{kind}-{n}");
    // The URLs omit the endpoint path: `fal-ai/nano-banana/edit` is read under `fal-ai/nano-banana`.
    let app = format!("{}/{}", segments[0], segments[1]);
    if let Some(hook) = hit
        .query
        .split('&')
        .find_map(|kv| kv.strip_prefix("fal_webhook="))
    {
        let hook = urlencoding_decode(hook);
        let id = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let body = json!({"request_id": id, "gateway_request_id": id, "status": "OK", "payload": {"images": []}});
            let http = reqwest::Client::new();
            // fal retries deliveries: the same webhook arrives twice.
            for _ in 0..2 {
                let _ = http.post(&hook).json(&body).send().await;
            }
        });
    }
    j(
        200,
        json!({
            "status": "IN_QUEUE", "request_id": id,
            "status_url": format!("{base}/{app}/requests/{id}/status"),
            "response_url": format!("{base}/{app}/requests/{id}"),
            "cancel_url": format!("{base}/{app}/requests/{id}/cancel"),
            "queue_position": 3,
        }),
    )
}

fn urlencoding_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

async fn fake_fal() -> (String, Arc<Fal>) {
    let st = Arc::new(Fal {
        log: Log::default(),
        base: OnceLock::new(),
        next: AtomicU32::new(1),
        polls: Mutex::new(HashMap::new()),
        stored: Mutex::new(HashMap::new()),
    });
    let base = serve(Router::new().fallback(fal_handler).with_state(st.clone())).await;
    st.base.set(base.clone()).unwrap();
    (base, st)
}

fn fal_settings(base: &str) -> FalSettings {
    FalSettings {
        key: Secret::new("fal-test-key"),
        queue_url: base.to_string(),
        image_model: "fal-ai/nano-banana-2".into(),
        edit_model: "fal-ai/nano-banana-2/edit".into(),
        vision_model: "fal-ai/moondream2/visual-query".into(),
        video_model: "fal-ai/kling-video/v2.1/standard/image-to-video".into(),
        video_durations: vec![5.0, 10.0],
        music_model: Some("fal-ai/elevenlabs/music".into()),
        prices: Default::default(),
        timeout: Duration::from_secs(1),
        storage_url: base.to_string(),
        api_url: format!("{base}/v1"),
        jwks_url: format!("{base}/jwks"),
    }
}

fn image_request(
    prompt: &str,
    blobs_refs: Vec<Reference>,
    base: Option<slate_activities::BlobRef>,
) -> ImageRequest {
    ImageRequest {
        prompt: prompt.into(),
        base,
        references: blobs_refs,
        composition: Composition::default(),
        output_key: "out/image.png".into(),
        aspect_ratio: "16:9".into(),
        seed: Some(7),
    }
}

#[tokio::test]
async fn fal_queue_happy_path_and_cost() {
    let (base, st) = fake_fal().await;
    let blobs = blobs();
    let client = FalClient::new(fal_settings(&base));
    let images = FalImages::new(client.clone(), blobs.clone(), None);
    let location = blobs.put("refs/loc.png", png()).await.unwrap();
    let reference = Reference {
        reference_type: ReferenceKind::Location,
        blob: location.clone(),
        reference_description: "the market".into(),
    };
    let base_img = blobs.put("refs/base.png", png()).await.unwrap();
    let req = image_request("a market at dusk", vec![reference], Some(base_img));
    let job = images.submit(&req).await.unwrap();
    // An edit goes to the edit endpoint with `image_urls` (base first, then references),
    // each uploaded to fal storage first and handed over by the URL it gave.
    let sub = st.log.last("/fal-ai/nano-banana-2/edit");
    let urls = sub.body["image_urls"].as_array().unwrap();
    assert_eq!(urls.len(), 2);
    for u in urls {
        let u = u.as_str().unwrap();
        assert!(u.starts_with(&format!("{base}/stored/")), "{u}");
        let fetched = reqwest::get(u).await.unwrap().bytes().await.unwrap();
        assert_eq!(
            fetched.to_vec(),
            png(),
            "the storage URL serves the blob's bytes"
        );
    }
    let initiate = st.log.last("/storage/upload/initiate");
    assert_eq!(initiate.body["content_type"], "image/png");
    assert_eq!(
        initiate.headers.get("authorization").unwrap(),
        "Key fal-test-key"
    );
    assert_eq!(sub.body["output_format"], "png");
    assert!(
        job.status_url
            .as_deref()
            .unwrap()
            .contains("/fal-ai/nano-banana-2/requests/")
    );
    assert!(
        !job.status_url.as_deref().unwrap().contains("/edit/"),
        "use the URLs fal returns"
    );

    // Queued, running, completed.
    assert_eq!(
        images.poll(&job, &req).await.unwrap().value,
        JobState::Queued { position: Some(1) }
    );
    assert_eq!(
        images.poll(&job, &req).await.unwrap().value,
        JobState::Running
    );
    let done = images.poll(&job, &req).await.unwrap();
    let JobState::Completed { output } = done.value else {
        panic!("completed")
    };
    assert_eq!(output.image.key(), "out/image.png");
    assert_eq!(
        blobs.get(&output.image).await.unwrap().to_vec(),
        png(),
        "the result was copied in"
    );
    assert_eq!(done.spend.units, 1.5);
    assert!((done.spend.usd - 1.5 * 0.08).abs() < 1e-9);
    assert!(!done.spend.estimated);

    // A result without `x-fal-billable-units` costs the estimate (one image), marked so.
    let quiet = image_request("no-units please", vec![], None);
    let qj = images.submit(&quiet).await.unwrap();
    let paid = loop {
        let p = images.poll(&qj, &quiet).await.unwrap();
        if matches!(p.value, JobState::Completed { .. }) {
            break p;
        }
    };
    assert!(paid.spend.estimated, "flagged as an estimate");
    assert_eq!(paid.spend.units, 1.0);
    assert!(
        (paid.spend.usd - 0.08).abs() < 1e-9,
        "never $0: {}",
        paid.spend.usd
    );

    // A text-to-image request goes to the base model, and cancel is understood.
    let t2i = image_request("a lantern", vec![], None);
    let job2 = images.submit(&t2i).await.unwrap();
    assert!(
        st.log
            .last("/fal-ai/nano-banana-2")
            .body
            .get("image_urls")
            .is_none()
    );
    assert_eq!(
        client
            .cancel(job2.cancel_url.as_deref().unwrap())
            .await
            .unwrap(),
        CancelStatus::CancellationRequested
    );

    // More than three references is refused before anything is sent.
    let many: Vec<Reference> = (0..4)
        .map(|_| Reference {
            reference_type: ReferenceKind::Prop,
            blob: location.clone(),
            reference_description: String::new(),
        })
        .collect();
    let before = st.log.count("POST", "/fal-ai/");
    let e = images
        .submit(&image_request("too many", many, None))
        .await
        .unwrap_err();
    assert_kind(&e, ErrorKind::BadRequest, false);
    assert_eq!(st.log.count("POST", "/fal-ai/"), before);
}

#[tokio::test]
async fn fal_errors_are_classified() {
    let (base, _st) = fake_fal().await;
    let client = FalClient::new(fal_settings(&base));
    let submit = |p: &str| {
        let c = client.clone();
        let p = p.to_string();
        async move {
            c.submit("fal-ai/nano-banana-2", &json!({"prompt": p}), None)
                .await
                .unwrap_err()
        }
    };
    let e = submit("content-policy test").await;
    assert_kind(&e, ErrorKind::ContentPolicy, false);
    assert_eq!(e.status, Some(422));
    assert!(e.message.contains("safety checker"), "{}", e.message);

    let e = submit("rate-limit").await;
    assert_kind(&e, ErrorKind::RateLimited, true);
    assert_eq!(e.retry_after, Some(Duration::from_secs(2)));

    assert_kind(&submit("server-error").await, ErrorKind::Unavailable, true);
    assert_kind(&submit("scheduling").await, ErrorKind::Unavailable, true);
    assert_kind(
        &submit("model-retryable").await,
        ErrorKind::BadRequest,
        true,
    );
    assert_kind(&submit("model-final").await, ErrorKind::BadRequest, false);
    assert_kind(&submit("malformed").await, ErrorKind::Malformed, true);

    let started = std::time::Instant::now();
    let e = submit("hang").await;
    assert_kind(&e, ErrorKind::Timeout, true);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the client timeout applies"
    );

    let bad_key = FalClient::new(FalSettings {
        key: Secret::new("wrong"),
        ..fal_settings(&base)
    });
    let e = bad_key
        .submit("fal-ai/nano-banana-2", &json!({"prompt": "x"}), None)
        .await
        .unwrap_err();
    assert_kind(&e, ErrorKind::Unauthorized, false);
    assert!(
        !e.to_string().contains("wrong"),
        "the key never appears in errors"
    );

    // An unknown status is "not finished", not a failure.
    let q = client
        .submit("fal-ai/nano-banana-2", &json!({"prompt": "weird"}), None)
        .await
        .unwrap();
    assert_eq!(
        client.status(&q.status_url).await.unwrap(),
        QueueStatus::Unknown("PAUSED_FOR_MAINTENANCE".into())
    );
}

#[tokio::test]
async fn fal_vision_parses_yes_and_no_strictly() {
    let (base, _st) = fake_fal().await;
    let blobs = blobs();
    let vision = FalVision::new(FalClient::new(fal_settings(&base)), blobs.clone());
    let img = blobs.put("frames/a.png", png()).await.unwrap();
    let q = |question: &str| VisionQuery {
        image: img.clone(),
        manifest: None,
        question: question.into(),
        expect: Expectation::default(),
    };
    let a = vision.ask(&q("Is Mira in the market?")).await.unwrap();
    assert!(a.value.passed);
    assert!(a.value.answer.starts_with("YES"));
    // moondream2 is billed per 1,000 characters: 1.5 units at $0.01.
    assert!((a.spend.usd - 0.015).abs() < 1e-9, "{}", a.spend.usd);
    let e = vision.ask(&q("maybe: is it?")).await.unwrap_err();
    assert_kind(&e, ErrorKind::Malformed, true);
}

#[tokio::test]
async fn fal_video_uses_the_models_fixed_durations() {
    let (base, st) = fake_fal().await;
    let blobs = blobs();
    let video = FalVideo::new(FalClient::new(fal_settings(&base)), blobs.clone(), None);
    let start = blobs.put("frames/start.png", png()).await.unwrap();
    let req = VideoRequest {
        project: "p".into(),
        scene_id: "s1".into(),
        prompt: "Mira runs".into(),
        mode: VideoMode::ImageToVideo,
        start_image: Some(start),
        source_video: None,
        duration: 3.5,
        camera_movement: "tracking".into(),
        callback_url: None,
        output_key: "clips/s1-raw.mp4".into(),
        idempotency_key: None,
    };
    let job = video.submit(&req).await.unwrap();
    let sub = st.log.last("image-to-video");
    assert_eq!(
        sub.body["duration"], "5",
        "3.5 s is generated at 5 s and trimmed after"
    );
    assert!(
        sub.body["image_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{base}/stored/")),
        "the start image goes by fal storage"
    );
    let mut state = video.poll(&job, &req).await.unwrap().value;
    while !matches!(state, JobState::Completed { .. }) {
        state = video.poll(&job, &req).await.unwrap().value;
    }
    let JobState::Completed { output } = state else {
        unreachable!()
    };
    assert_eq!(output.duration, 5.0);
    assert!(blobs.exists(&output.video).await.unwrap());

    // A text-to-video scene on an image-to-video model is planned around: made from the
    // scene's still, never sent in a mode the model refuses.
    let t2v = VideoRequest {
        mode: VideoMode::TextToVideo,
        ..req.clone()
    };
    video.submit(&t2v).await.unwrap();
    let sub = st.log.last("image-to-video");
    assert!(sub.body["image_url"].as_str().is_some());
    assert!(sub.body.get("video_url").is_none());

    // Veo takes its lengths as "4s", "6s", "8s" and is asked for no audio (our voices are
    // mixed in, and audio off is the price in the table).
    let veo = FalVideo::new(
        FalClient::new(FalSettings {
            video_model: "fal-ai/veo3/fast/image-to-video".into(),
            video_durations: vec![4.0, 6.0, 8.0],
            ..fal_settings(&base)
        }),
        blobs.clone(),
        None,
    );
    veo.submit(&VideoRequest {
        duration: 4.5,
        ..req.clone()
    })
    .await
    .unwrap();
    let sub = st.log.last("/fal-ai/veo3");
    assert_eq!(sub.body["duration"], "6s");
    assert_eq!(sub.body["generate_audio"], false);
}

#[tokio::test]
async fn a_fal_webhook_delivered_twice_has_one_effect() {
    let (base, _st) = fake_fal().await;
    // Our receiver: parse each delivery and turn it into an engine signal keyed by request id.
    let engine = slate_engine::Engine::connect(
        &format!(
            "sqlite://{}",
            slate_engine::testing::fresh_sqlite_path().display()
        ),
        slate_engine::testing::test_config(),
    )
    .await
    .unwrap();
    let outcomes = Arc::new(Mutex::new(vec![]));
    let (e2, o2) = (engine.clone(), outcomes.clone());
    let receiver = Router::new().route(
        "/api/webhooks/fal",
        axum::routing::post(move |body: axum::body::Bytes| {
            let (engine, outcomes) = (e2.clone(), o2.clone());
            async move {
                let w = FalWebhook::parse(&body).unwrap();
                let out = engine
                    .signal(
                        None,
                        &w.signal_name(),
                        Some(w.request_id.clone()),
                        serde_json::to_value(&w).unwrap(),
                    )
                    .await
                    .unwrap();
                outcomes.lock().unwrap().push(out);
                StatusCode::OK
            }
        }),
    );
    let hook_base = serve(receiver).await;
    let client = FalClient::new(fal_settings(&base));
    let images = FalImages::new(
        client,
        blobs(),
        Some(format!("{hook_base}/api/webhooks/fal")),
    );
    let job = images
        .submit(&image_request("a market", vec![], None))
        .await
        .unwrap();
    for _ in 0..100 {
        if outcomes.lock().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let o = outcomes.lock().unwrap().clone();
    assert_eq!(o.len(), 2, "fal delivered twice");
    assert!(!o[0].duplicate);
    assert!(
        o[1].duplicate,
        "the second delivery of {} changes nothing",
        job.id
    );
}

// ---------------------------------------------------------------------------------------------
// Fake OpenRouter

async fn openrouter_handler(State(log): State<Arc<Log>>, req: Request) -> Response {
    let hit = read(req).await;
    log.push(hit.clone());
    if hit
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some("Bearer or-test-key")
    {
        return j(
            401,
            json!({"error": {"code": 401, "message": "No auth credentials found"}}),
        );
    }
    let rf = &hit.body["response_format"];
    assert_eq!(rf["type"], "json_schema");
    assert_eq!(rf["json_schema"]["strict"], true);
    assert_eq!(hit.body["provider"]["require_parameters"], true);
    assert!(
        hit.body["max_tokens"].as_u64().is_some_and(|m| m > 0),
        "every call bounds its answer"
    );
    let user = hit.body["messages"][1]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let name = rf["json_schema"]["name"].as_str().unwrap_or("");
    if user.contains("rate") {
        let mut r = j(
            429,
            json!({"error": {"code": 429, "message": "Rate limit exceeded"}}),
        );
        r.headers_mut().insert("retry-after", "3".parse().unwrap());
        return r;
    }
    if user.contains("payment") {
        return j(
            402,
            json!({"error": {"code": 402, "message": "Insufficient credits"}}),
        );
    }
    if user.contains("cutoff") {
        // Cut off by max_tokens: half a JSON document, finish_reason `length`.
        return j(
            200,
            json!({"id": "gen-3", "choices": [{"message": {"role": "assistant", "content": "{\"palette\": [\"#11"}, "finish_reason": "length"}],
                   "usage": {"prompt_tokens": 900, "completion_tokens": 16000, "total_tokens": 16900, "cost": 0.2427}}),
        );
    }
    if user.contains("choiceerror") {
        return j(
            200,
            json!({"id": "gen-4", "choices": [{"message": {"role": "assistant", "content": ""}, "finish_reason": "error",
                   "error": {"code": 502, "message": "Upstream provider disconnected"}}]}),
        );
    }
    if user.contains("midstream") {
        return j(
            200,
            json!({"id": "gen-1", "error": {"code": 502, "message": "Provider returned error"}}),
        );
    }
    let content = if user.contains("garbage") {
        "Sure! Here is the style guide: {".to_string()
    } else if user.contains("wrongshape") {
        json!({"palette": "red"}).to_string()
    } else if name == "style_guide" {
        json!({"palette": ["#112233"], "mood": "warm", "lighting": "soft", "camera_language": "steady", "aspect_ratio": "16:9", "negative_prompt": "blur"}).to_string()
    } else if name == "breakdown" {
        json!({"scenes": [{
            "scene_number": 1, "sequence_number": 1, "screenplay_text": "Mira runs.", "expected_duration": if user.contains("toolong") { 12.0 } else { 4.0 },
            "dramatic_effect": "urgency", "location": "Harbor Market", "time_of_day": "evening", "weather": "clear",
            "camera_angle": "low_angle", "camera_shot": "medium", "camera_movement": "tracking", "lighting_type": "hard",
            "lighting_mood": "warm", "pacing": "fast", "characters_present": ["mira"], "props": [], "dialogue": [],
            "transition_in": "cut", "transition_out": "cut"}]}).to_string()
    } else {
        "{}".to_string()
    };
    let usage = if user.contains("nocost") {
        json!({"prompt_tokens": 1000, "completion_tokens": 234, "total_tokens": 1234})
    } else {
        json!({"prompt_tokens": 1000, "completion_tokens": 234, "total_tokens": 1234, "cost": 0.0123})
    };
    j(
        200,
        json!({
            "id": "gen-2", "model": hit.body["model"],
            "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": usage,
        }),
    )
}

async fn fake_openrouter() -> (RemotePlanner, Arc<Log>) {
    let log = Arc::new(Log::default());
    let base = serve(
        Router::new()
            .fallback(openrouter_handler)
            .with_state(log.clone()),
    )
    .await;
    let p = RemotePlanner::new(OpenRouterClient::new(OpenRouterSettings {
        key: Secret::new("or-test-key"),
        url: format!("{base}/api/v1/chat/completions"),
        model: "anthropic/claude-sonnet-4.6".into(),
        timeout: Duration::from_secs(2),
        max_tokens: 16_000,
    }));
    (p, log)
}

fn gather(note: &str) -> GatherSnapshot {
    let mut g = GatherSnapshot {
        project: "p".into(),
        title: note.into(),
        ..Default::default()
    };
    g.collections.insert(
        "raw_notes".into(),
        vec![json!({"topic": "style", "text": note})],
    );
    g
}

#[tokio::test]
async fn openrouter_structured_output_and_errors() {
    let (planner, log) = fake_openrouter().await;
    let style = planner.style_guide(&gather("noir")).await.unwrap();
    assert_eq!(style.value.palette, vec!["#112233"]);
    assert_eq!(style.spend.units, 1234.0);
    assert!((style.spend.usd - 0.0123).abs() < 1e-12);
    assert!(!style.spend.estimated);
    assert_eq!(
        log.last("/chat/completions").body["model"],
        "anthropic/claude-sonnet-4.6"
    );
    assert_eq!(log.last("/chat/completions").body["max_tokens"], 16_000);

    // An answer cut off by max_tokens is reported as such, never parsed, never retried as is.
    let e = planner.style_guide(&gather("cutoff")).await.unwrap_err();
    assert_kind(&e, ErrorKind::Truncated, false);
    assert!(
        e.message.contains("SLATE_OPENROUTER_MAX_TOKENS"),
        "{}",
        e.message
    );
    // An error inside the choice of a 200 is an error.
    let e = planner
        .style_guide(&gather("choiceerror"))
        .await
        .unwrap_err();
    assert_kind(&e, ErrorKind::Unavailable, true);
    assert!(e.message.contains("disconnected"), "{}", e.message);
    // No `usage.cost`: the tokens at the table's prices, marked estimated (never $0).
    let quiet = planner.style_guide(&gather("nocost")).await.unwrap();
    assert!(quiet.spend.estimated);
    assert!((quiet.spend.usd - (1000.0 * 3e-6 + 234.0 * 15e-6)).abs() < 1e-12);

    let e = planner.style_guide(&gather("rate")).await.unwrap_err();
    assert_kind(&e, ErrorKind::RateLimited, true);
    assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
    assert_kind(
        &planner.style_guide(&gather("payment")).await.unwrap_err(),
        ErrorKind::PaymentRequired,
        false,
    );
    // HTTP 200 with an error body: the body is checked, not only the status.
    let e = planner.style_guide(&gather("midstream")).await.unwrap_err();
    assert_kind(&e, ErrorKind::Unavailable, true);
    assert_eq!(e.status, Some(502));
    assert_kind(
        &planner.style_guide(&gather("garbage")).await.unwrap_err(),
        ErrorKind::Malformed,
        true,
    );
    assert_kind(
        &planner
            .style_guide(&gather("wrongshape"))
            .await
            .unwrap_err(),
        ErrorKind::Malformed,
        true,
    );
}

#[tokio::test]
async fn openrouter_answers_are_validated_into_our_rules() {
    let (planner, _log) = fake_openrouter().await;
    let sp = Screenplay {
        title: "t".into(),
        content: "Mira runs.".into(),
        sequences: vec![],
    };
    let bible = StoryBible {
        title: "t".into(),
        logline: String::new(),
        world_rules: vec![],
        character_relationships: Default::default(),
        timeline: vec![],
        consistency_rules: vec![],
        locations: vec![],
        resolved_contradictions: vec![],
    };
    let scenes = planner.breakdown(&sp, &bible, &[]).await.unwrap().value;
    assert_eq!(scenes[0].camera_movement, "tracking");
    let sp2 = Screenplay {
        content: "toolong".into(),
        ..sp
    };
    let e = planner.breakdown(&sp2, &bible, &[]).await.unwrap_err();
    assert_kind(&e, ErrorKind::Malformed, true);
    assert!(e.message.contains("3-7"), "{}", e.message);
}

// ---------------------------------------------------------------------------------------------
// Fake brain, tasks and last-frame services, as the spec gives them: they take media by URL
// and fetch it (a URL they cannot fetch is refused with 422), status bodies carry no `task_id`
// (the spec never shows one) and spell their status as they like, and callbacks carry the
// spec's bodies: `{scene_id, video_url, duration}`, `{video_url, image_url}`,
// `{metadata: {project_id}, video_result_url}`.

struct Services {
    log: Log,
    base: OnceLock<String>,
    polls: Mutex<HashMap<String, u32>>,
    fail_next: Mutex<Option<u16>>,
    /// The tasks list fails (an outage) while set.
    list_fails: Mutex<bool>,
    /// What each media URL the services fetched answered: (url, status, bytes).
    fetched: Mutex<Vec<(String, u16, usize)>>,
    /// Callbacks the services sent: (url, body).
    callbacks: Mutex<Vec<(String, Value)>>,
}

/// Fetch a media URL as a service would; `Err` with the 422 to answer when it cannot.
async fn fetch_media(st: &Services, url: &str) -> Result<Vec<u8>, Response> {
    let r = reqwest::get(url).await;
    let (status, bytes) = match r {
        Ok(r) => {
            let status = r.status().as_u16();
            (
                status,
                r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
            )
        }
        Err(_) => (0, vec![]),
    };
    st.fetched
        .lock()
        .unwrap()
        .push((url.to_string(), status, bytes.len()));
    if status == 200 && !bytes.is_empty() {
        Ok(bytes)
    } else {
        Err(j(
            422,
            json!({"detail": format!("could not fetch {url}: HTTP {status}")}),
        ))
    }
}

fn callback(st: &Arc<Services>, url: Option<&str>, body: Value) {
    let Some(url) = url.map(str::to_string) else {
        return;
    };
    let st = st.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let _ = reqwest::Client::new().post(&url).json(&body).send().await;
        st.callbacks.lock().unwrap().push((url, body));
    });
}

async fn services_handler(State(st): State<Arc<Services>>, req: Request) -> Response {
    let hit = read(req).await;
    st.log.push(hit.clone());
    let base = st.base.get().unwrap().clone();
    if let Some(code) = st.fail_next.lock().unwrap().take() {
        return j(code, json!({"detail": "injected failure"}));
    }
    let p = hit.path.as_str();
    if p.starts_with("/files/") {
        return ([("content-type", "application/octet-stream")], png()).into_response();
    }
    // Brain (X-API-Key).
    if p == "/health" {
        return j(200, json!({"status": "ok"}));
    }
    if p.starts_with("/api/v1/knowledge") || p.starts_with("/api/v1/embeddings") {
        return brain(&st, &hit, p).await;
    }
    // Tasks (X-API-Key).
    if (p.starts_with("/api/v1/tasks")
        || p.starts_with("/api/v1/projects")
        || p == "/api/v1/health")
        && let Some(r) = tasks(&st, &hit, p, &base).await
    {
        return r;
    }
    // Last frame (Bearer).
    if header(&hit, "authorization") != "Bearer lf-token" {
        return j(401, json!({"error": "unauthorized"}));
    }
    last_frame(&st, &hit, p, &base).await
}

fn header(hit: &Hit, h: &str) -> String {
    hit.headers
        .get(h)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// How many times `id`'s status has been asked, this time included.
fn poll(st: &Services, id: &str) -> u32 {
    let mut m = st.polls.lock().unwrap();
    let e = m.entry(id.to_string()).or_default();
    *e += 1;
    *e
}

async fn brain(st: &Services, hit: &Hit, p: &str) -> Response {
    if header(hit, "x-api-key") != "brain-key" {
        return j(401, json!({"detail": "invalid API key"}));
    }
    match p {
        "/api/v1/knowledge/query" => {
            if let Some(u) = hit.body["image_url"].as_str()
                && let Err(r) = fetch_media(st, u).await
            {
                return r;
            }
            j(
                200,
                json!({"answer": "Mira is known; the market is known.", "confidence": 0.92, "sources": ["character/mira"]}),
            )
        }
        "/api/v1/knowledge/store" => j(
            200,
            json!({"stored": hit.body["documents"].as_array().map_or(0, |d| d.len())}),
        ),
        "/api/v1/embeddings/generate" => {
            let n = hit.body["texts"].as_array().map_or(0, |t| t.len());
            j(200, json!({"embeddings": vec![vec![0.1f32; 4]; n]}))
        }
        _ if p.starts_with("/api/v1/knowledge/context/") => j(
            200,
            json!({"documents": [
                {"kind": "character", "key": "mira", "title": "Mira", "content": "Curious.", "metadata": {}}
            ]}),
        ),
        _ => j(404, json!({"detail": "not found"})),
    }
}

/// The tasks service; `None` for a tasks path it does not serve (the last-frame service's
/// answer follows).
async fn tasks(st: &Arc<Services>, hit: &Hit, p: &str, base: &str) -> Option<Response> {
    if header(hit, "x-api-key") != "tasks-key" {
        return Some(j(401, json!({"detail": "invalid API key"})));
    }
    if p == "/api/v1/health" {
        return Some(j(200, json!({"status": "healthy"})));
    }
    if p == "/api/v1/tasks/submit" {
        let ty = hit.body["task_type"].as_str().unwrap_or("");
        let data = &hit.body["task_data"];
        if let Some(u) = data["start_image_url"].as_str()
            && let Err(r) = fetch_media(st, u).await
        {
            return Some(r);
        }
        let id = format!("{ty}-{}", st.log.count("POST", "/api/v1/tasks/submit"));
        if ty == "generate_video" {
            // The spec's callback: the scene, the clip, its length; no task id.
            callback(
                st,
                hit.body["callback_url"].as_str(),
                json!({"scene_id": data["scene_id"], "video_url": format!("{base}/files/{id}.mp4"), "duration": 4.0}),
            );
        }
        return Some(j(200, json!({"task_id": id, "status": "queued"})));
    }
    if let Some(rest) = p.strip_prefix("/api/v1/tasks/") {
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        return Some(match (hit.method.as_str(), action) {
            ("GET", "status") => {
                let n = poll(st, id);
                let status = match n {
                    1 => "QUEUED",
                    2 => "Processing",
                    _ => "Completed",
                };
                let result = if id.starts_with("generate_video") {
                    json!({"video_url": format!("{base}/files/{id}.mp4"), "duration": 4.0})
                } else {
                    json!({"audio_url": format!("{base}/files/{id}.wav")})
                };
                // No task_id, and no cost for voices (the service does not always say).
                let mut body =
                    json!({"status": status, "result": if n >= 3 { result } else { Value::Null }});
                if id.starts_with("generate_video") {
                    body["cost"] = json!(0.25);
                }
                j(200, body)
            }
            ("DELETE", "cancel") => j(200, json!({"task_id": id, "status": "cancelled"})),
            ("POST", "retry") => j(
                200,
                json!({"task_id": format!("{id}-r"), "status": "queued"}),
            ),
            _ => j(404, json!({"detail": "not found"})),
        });
    }
    if p.starts_with("/api/v1/projects/") {
        if *st.list_fails.lock().unwrap() {
            return Some(j(503, json!({"detail": "the task index is rebuilding"})));
        }
        // One entry this client cannot read (no status) beside a good one.
        return Some(j(
            200,
            json!({"tasks": [{"task_id": "generate_video-1", "status": "completed"}, {"id": 7, "state": "?"}]}),
        ));
    }
    None
}

async fn last_frame(st: &Arc<Services>, hit: &Hit, p: &str, base: &str) -> Response {
    match p {
        "/api/v1/process" | "/api/v1/stitch" | "/api/v1/audio-stitch" | "/api/v1/music-track" => {
            let mut urls: Vec<String> = vec![];
            for field in ["video_url", "video_urls"] {
                match &hit.body[field] {
                    Value::String(u) => urls.push(u.clone()),
                    Value::Array(a) => {
                        urls.extend(a.iter().filter_map(|u| u.as_str().map(str::to_string)))
                    }
                    _ => {}
                }
            }
            if p != "/api/v1/music-track" {
                for u in &urls {
                    if let Err(r) = fetch_media(st, u).await {
                        return r;
                    }
                }
            }
            let id = format!(
                "{}-{}",
                p.trim_start_matches("/api/v1/"),
                st.log.count("POST", p)
            );
            let hook = hit.body["webhook_url"].as_str();
            match p {
                "/api/v1/process" => callback(
                    st,
                    hook,
                    json!({"video_url": urls.first(), "image_url": format!("{base}/files/{id}.png")}),
                ),
                "/api/v1/stitch" => callback(
                    st,
                    hook,
                    json!({"metadata": {"project_id": "aladdin-2024"}, "video_result_url": format!("{base}/files/{id}.mp4")}),
                ),
                _ => {}
            }
            j(200, json!({"task_id": id, "status": "pending"}))
        }
        "/api/v1/length" => {
            if let Err(r) = fetch_media(st, hit.body["media_url"].as_str().unwrap_or("")).await {
                return r;
            }
            j(200, json!({"duration": 4.25}))
        }
        _ if p.starts_with("/api/v1/status/") => {
            let id = p.trim_start_matches("/api/v1/status/").to_string();
            let n = poll(st, &id);
            if n < 2 {
                return j(200, json!({"status": "processing"}));
            }
            let done = if id.starts_with("process") {
                json!({"status": "COMPLETED", "image_url": format!("{base}/files/{id}.png")})
            } else if id.starts_with("audio") {
                json!({"status": "completed", "audio_url": format!("{base}/files/{id}.wav")})
            } else {
                json!({"status": "Completed", "video_result_url": format!("{base}/files/{id}.mp4")})
            };
            j(200, done)
        }
        _ => j(404, json!({"detail": "not found"})),
    }
}

async fn fake_services() -> (String, Arc<Services>) {
    let st = Arc::new(Services {
        log: Log::default(),
        base: OnceLock::new(),
        polls: Mutex::new(HashMap::new()),
        fail_next: Mutex::new(None),
        list_fails: Mutex::new(false),
        fetched: Mutex::new(vec![]),
        callbacks: Mutex::new(vec![]),
    });
    let base = serve(
        Router::new()
            .fallback(services_handler)
            .with_state(st.clone()),
    )
    .await;
    st.base.set(base.clone()).unwrap();
    (base, st)
}

fn svc(base: &str, key: &str) -> ServiceSettings {
    ServiceSettings {
        url: base.to_string(),
        key: Secret::new(key),
        timeout: Duration::from_secs(2),
    }
}

/// Blobs on this machine, handed to services as signed `/media` URLs of a local server that
/// serves them the way `slate serve` does: a valid, unexpired signature or 403.
async fn served_blobs() -> (Blobs, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let secret = Secret::new("media-secret");
    let blobs = blobs().with_signed_media(Some(base.clone()), Some(secret.clone()));
    let b2 = blobs.clone();
    let app = Router::new().route(
        "/media/{*key}",
        axum::routing::get(
            move |axum::extract::Path(key): axum::extract::Path<String>,
                  axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| {
                let (blobs, secret) = (b2.clone(), secret.clone());
                async move {
                    let exp: i64 = q.get("expires").and_then(|e| e.parse().ok()).unwrap_or(0);
                    let sig = q.get("sig").cloned().unwrap_or_default();
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs() as i64;
                    if !slate_activities::blob::media_signature_valid(&secret, &key, exp, &sig, now) {
                        return StatusCode::FORBIDDEN.into_response();
                    }
                    let r = slate_activities::BlobRef::new(&key).unwrap();
                    blobs.get(&r).await.unwrap().to_vec().into_response()
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (blobs, base)
}

#[tokio::test]
async fn brain_endpoints() {
    let (base, st) = fake_services().await;
    let (blobs, media) = served_blobs().await;
    let brain = BrainClient::new(svc(&base, "brain-key"), blobs.clone());
    assert!(brain.health().await.unwrap());
    let img = blobs.put("f/a.png", png()).await.unwrap();
    let a = brain
        .query(&KnowledgeQuery {
            project: "aladdin-2024".into(),
            query: "Is Mira in the market?".into(),
            image: Some(img),
            manifest: None,
            expect: Expectation {
                location: Some("Harbor Market".into()),
                characters: vec!["Mira".into()],
                props: vec![],
            },
        })
        .await
        .unwrap();
    assert_eq!(a.value.confidence, 0.92);
    let q = st.log.last("/knowledge/query");
    assert_eq!(q.headers["x-api-key"], "brain-key");
    assert_eq!(q.body["context"]["project_id"], "aladdin-2024");
    // The image goes as a URL the service fetched the right bytes from.
    let url = q.body["image_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{media}/media/f/a.png?expires=")),
        "{url}"
    );
    assert_eq!(
        st.fetched.lock().unwrap().last().cloned(),
        Some((url.to_string(), 200, png().len()))
    );
    let doc = KnowledgeDoc {
        project: "aladdin-2024".into(),
        kind: "character".into(),
        key: "mira".into(),
        title: "Mira".into(),
        text: "Curious.".into(),
        metadata: json!({}),
    };
    assert_eq!(brain.store(&[doc.clone(), doc]).await.unwrap(), 2);
    assert_eq!(brain.context("aladdin-2024").await.unwrap()[0].key, "mira");
    assert_eq!(
        brain
            .embeddings(&["a".into(), "b".into()])
            .await
            .unwrap()
            .len(),
        2
    );
    *st.fail_next.lock().unwrap() = Some(503);
    assert_kind(
        &brain.embeddings(&["a".into()]).await.unwrap_err(),
        ErrorKind::Unavailable,
        true,
    );
    let wrong = BrainClient::new(svc(&base, "nope"), blobs);
    assert_kind(
        &wrong.context("p").await.unwrap_err(),
        ErrorKind::Unauthorized,
        false,
    );
}

#[tokio::test]
async fn signed_media_urls_fetch_the_right_bytes_and_refuse_tampering() {
    let (blobs, media) = served_blobs().await;
    let r = blobs
        .put("clips/x.mp4", b"the clip".to_vec())
        .await
        .unwrap();
    let url = blobs.fetch_url(&r).await.unwrap();
    let got = reqwest::get(&url).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), b"the clip");
    // Another key under the same signature, a changed expiry, no signature: refused.
    let other = blobs.put("clips/y.mp4", b"other".to_vec()).await.unwrap();
    for bad in [
        url.replace("clips/x.mp4", other.key()),
        url.replace("expires=", "expires=1"),
        url.split('?').next().unwrap().to_string(),
    ] {
        assert_eq!(reqwest::get(&bad).await.unwrap().status(), 403, "{bad}");
    }
    // An expired signature, even a genuine one.
    let secret = Secret::new("media-secret");
    let sig = slate_activities::blob::media_signature(&secret, r.key(), 1_000);
    let expired = format!("{media}/media/{}?expires=1000&sig={sig}", r.key());
    assert_eq!(reqwest::get(&expired).await.unwrap().status(), 403);
}

#[tokio::test]
async fn tasks_endpoints_and_video() {
    let (base, st) = fake_services().await;
    let (blobs, _media) = served_blobs().await;
    let tasks = TasksClient::new(svc(&base, "tasks-key"));
    assert!(tasks.health().await.unwrap());
    let video = TasksVideo::new(tasks.clone(), blobs.clone());
    let start = blobs.put("f/s.png", png()).await.unwrap();
    let req = VideoRequest {
        project: "aladdin-2024".into(),
        scene_id: "scene_001".into(),
        prompt: "Aladdin strikes".into(),
        mode: VideoMode::ImageToVideo,
        start_image: Some(start),
        source_video: None,
        duration: 4.0,
        camera_movement: "tracking".into(),
        callback_url: None,
        output_key: "clips/scene_001.mp4".into(),
        idempotency_key: Some("run-1/video/submit".into()),
    };
    // The tasks list answers with an entry it cannot read beside a good one: the submission
    // goes ahead (the unreadable entry is skipped, not fatal).
    let job = video.submit(&req).await.unwrap();
    let sub = st.log.last("/tasks/submit");
    assert_eq!(sub.body["task_type"], "generate_video");
    assert_eq!(sub.body["task_data"]["scene_id"], "scene_001");
    assert_eq!(sub.body["task_data"]["duration"], 4.0);
    assert_eq!(
        sub.body["task_data"]["idempotency_key"],
        "run-1/video/submit"
    );
    // A failing tasks list does not block the video: it is submitted.
    *st.list_fails.lock().unwrap() = true;
    let before = st.log.count("POST", "/tasks/submit");
    video.submit(&req).await.unwrap();
    assert_eq!(st.log.count("POST", "/tasks/submit"), before + 1);
    *st.list_fails.lock().unwrap() = false;
    // Status bodies without task_id, status words in any case.
    assert_eq!(
        video.poll(&job, &req).await.unwrap().value,
        JobState::Queued { position: None }
    );
    assert_eq!(
        video.poll(&job, &req).await.unwrap().value,
        JobState::Running
    );
    let done = video.poll(&job, &req).await.unwrap();
    let JobState::Completed { output } = done.value else {
        panic!()
    };
    assert_eq!(output.duration, 4.0);
    assert_eq!(done.spend.usd, 0.25);
    assert!(!done.spend.estimated);
    assert!(blobs.exists(&output.video).await.unwrap());
    assert_eq!(tasks.list("aladdin-2024").await.unwrap().len(), 1);
    assert_eq!(tasks.retry(&job.id).await.unwrap(), format!("{}-r", job.id));
    video.cancel(&job).await.unwrap();
    assert_eq!(st.log.count("DELETE", "/cancel"), 1);

    let voice = TasksVoice::new(tasks.clone(), blobs.clone())
        .polling(Duration::from_millis(10), Duration::from_secs(5));
    let line = voice
        .synthesize(&VoiceRequest {
            project: "aladdin-2024".into(),
            text: "Hello".into(),
            casting: VoiceCasting {
                character_id: "mira".into(),
                voice: "warm".into(),
                pitch: 50,
                speed: 150,
                description: String::new(),
            },
            output_key: "voices/hello.wav".into(),
        })
        .await
        .unwrap();
    assert!(blobs.exists(&line.value).await.unwrap());
    // The voice's status named no cost: the table's price, marked estimated.
    assert!(line.spend.estimated);
    assert_eq!(line.spend.usd, 0.01);
    assert_eq!(
        st.log.last("/tasks/submit").body["task_type"],
        "generate_character_voice"
    );

    *st.fail_next.lock().unwrap() = Some(429);
    assert_kind(
        &tasks.status("x").await.unwrap_err(),
        ErrorKind::RateLimited,
        true,
    );
    *st.fail_next.lock().unwrap() = Some(400);
    assert_kind(
        &tasks.status("x").await.unwrap_err(),
        ErrorKind::BadRequest,
        false,
    );
}

#[tokio::test]
async fn last_frame_endpoints() {
    let (base, st) = fake_services().await;
    let (blobs, media_base) = served_blobs().await;
    let client = LastFrameClient::new(svc(&base, "lf-token"))
        .polling(Duration::from_millis(10), Duration::from_secs(5));
    let callbacks = slate_activities::ProviderSettings {
        public_url: Some("https://slate.example".into()),
        webhook_secret: Some(Secret::new("hook-secret")),
        ..Default::default()
    };
    let media = RemoteMedia::new(client.clone(), blobs.clone(), Some(callbacks));
    let clip = blobs.put("clips/a.mp4", b"fake".to_vec()).await.unwrap();
    let frame = media.last_frame(&clip, "frames/a-last.png").await.unwrap();
    assert_eq!(blobs.get(&frame).await.unwrap().to_vec(), png());
    let p = st.log.last("/api/v1/process");
    assert_eq!(p.headers["authorization"], "Bearer lf-token");
    assert!(
        p.body["video_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{media_base}/media/clips/a.mp4?")),
        "the clip goes by a signed URL the service can fetch"
    );
    let hook = p.body["webhook_url"].as_str().unwrap();
    assert!(
        hook.starts_with("https://slate.example/api/webhooks/last-frame-complete?ref=process-"),
        "{hook}"
    );
    assert!(hook.contains("&token="), "{hook}");
    assert_eq!(media.length(&clip).await.unwrap(), 4.25);
    let film = media
        .stitch(
            &[ClipSpec {
                video: clip.clone(),
                duration: 4.0,
                transition_in: "cut".into(),
                transition_out: "cut".into(),
            }],
            "films/f.mp4",
        )
        .await
        .unwrap();
    assert!(blobs.exists(&film).await.unwrap());
    // The stitch reports to the stitch webhook, not the last-frame one.
    let hook = st.log.last("/api/v1/stitch").body["webhook_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        hook.starts_with("https://slate.example/api/webhooks/stitch-complete?ref=stitch-"),
        "{hook}"
    );
    let id = client
        .audio_stitch(&["https://x/a.wav".into()], None)
        .await
        .unwrap();
    assert_eq!(
        client.wait(&id, None).await.unwrap().audio_url.unwrap(),
        format!("{base}/files/{id}.wav")
    );
    let id = client
        .music_track("https://x/v.mp4", "https://x/m.mp3", 0.3, None)
        .await
        .unwrap();
    assert!(
        client
            .wait(&id, None)
            .await
            .unwrap()
            .video_result_url
            .is_some()
    );
    let wrong = LastFrameClient::new(svc(&base, "bad"));
    assert_kind(
        &wrong.length("u").await.unwrap_err(),
        ErrorKind::Unauthorized,
        false,
    );
    // A blob no service can reach (no public URL, media URL or bucket) is refused before
    // anything is sent, saying what to set.
    let unreachable = RemoteMedia::new(client.clone(), blobs_alone(), None);
    let before = st.log.count("POST", "/api/v1/process");
    let e = unreachable
        .last_frame(&clip_in(&unreachable_blobs()).await, "x.png")
        .await
        .unwrap_err();
    assert!(e.message.contains("SLATE_PUBLIC_URL"), "{}", e.message);
    assert_eq!(st.log.count("POST", "/api/v1/process"), before);
}

fn blobs_alone() -> Blobs {
    unreachable_blobs()
}

fn unreachable_blobs() -> Blobs {
    static B: OnceLock<Blobs> = OnceLock::new();
    B.get_or_init(blobs).clone()
}

async fn clip_in(b: &Blobs) -> slate_activities::BlobRef {
    b.put("clips/u.mp4", b"fake".to_vec()).await.unwrap()
}

#[tokio::test]
async fn a_webhook_cuts_a_media_wait_short() {
    // The last-frame task is polled every 30 s; the spec-shaped callback, delivered to our
    // webhook (which wakes the wait by the `ref` in its URL), ends the wait at once.
    let (base, st) = fake_services().await;
    let (blobs, _media) = served_blobs().await;
    let hooks = Router::new().route(
        "/api/webhooks/{kind}",
        axum::routing::post(
            |axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| async move {
                slate_activities::wake::wake(q.get("ref").map(String::as_str).unwrap_or(""));
                StatusCode::OK
            },
        ),
    );
    let hook_base = serve(hooks).await;
    let client = LastFrameClient::new(svc(&base, "lf-token"))
        .polling(Duration::from_secs(30), Duration::from_secs(120));
    let media = RemoteMedia::new(
        client,
        blobs.clone(),
        Some(slate_activities::ProviderSettings {
            public_url: Some(hook_base),
            ..Default::default()
        }),
    );
    let clip = blobs.put("clips/w.mp4", b"fake".to_vec()).await.unwrap();
    let t = std::time::Instant::now();
    media.last_frame(&clip, "frames/w.png").await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "woken by the callback, not the 30 s poll: {:?}",
        t.elapsed()
    );
    let cbs = st.callbacks.lock().unwrap().clone();
    assert!(
        cbs.iter()
            .any(|(_, b)| b.get("image_url").is_some() && b.get("task_id").is_none())
    );
}

/// A finished clip of 200 MB that a provider sends slowly, over more than the 60 s request
/// timeout: it is streamed to disk and arrives whole. A download that stalls for the timeout
/// fails as a timeout (retryable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_result_arriving_slowly_is_not_cut_but_a_stalled_one_is() {
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 200;
    fn chunk(i: usize) -> Vec<u8> {
        vec![(i % 251) as u8; CHUNK]
    }
    let app = Router::new()
        .route(
            "/slow.mp4",
            axum::routing::get(|| async {
                let stream = futures::stream::iter(0..CHUNKS).then(|i| async move {
                    // 200 chunks, one every 310 ms: about 62 s in all.
                    tokio::time::sleep(Duration::from_millis(310)).await;
                    Ok::<_, std::io::Error>(axum::body::Bytes::from(chunk(i)))
                });
                axum::body::Body::from_stream(stream)
            }),
        )
        .route(
            "/stalls.mp4",
            axum::routing::get(|| async {
                let stream = futures::stream::iter(0..2).then(|i| async move {
                    if i == 1 {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    Ok::<_, std::io::Error>(axum::body::Bytes::from(chunk(i)))
                });
                axum::body::Body::from_stream(stream)
            }),
        );
    let base = serve(app).await;
    let blobs = blobs();
    // The default timeout of fal's API calls: 60 s.
    let client = FalClient::new(FalSettings {
        timeout: Duration::from_secs(60),
        ..fal_settings("http://127.0.0.1:9")
    });
    let started = std::time::Instant::now();
    let r = blobs
        .copy_from_url(
            client.http(),
            "fal",
            &format!("{base}/slow.mp4"),
            "clips/big.mp4",
        )
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took > Duration::from_secs(60),
        "sent over more than 60 s: {took:?}"
    );
    assert_eq!(blobs.size(&r).await.unwrap(), (CHUNK * CHUNKS) as u64);
    let path = blobs.local_path(&r).await.unwrap();
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; CHUNK];
    for i in 0..CHUNKS {
        std::io::Read::read_exact(&mut f, &mut buf).unwrap();
        assert!(buf == chunk(i), "chunk {i} arrived intact");
    }

    let quick = FalClient::new(FalSettings {
        timeout: Duration::from_secs(2),
        ..fal_settings("http://127.0.0.1:9")
    });
    let e = blobs
        .copy_from_url(
            quick.http(),
            "fal",
            &format!("{base}/stalls.mp4"),
            "clips/stalled.mp4",
        )
        .await
        .unwrap_err();
    assert!(e.retryable, "{e}");
    assert!(
        !blobs
            .exists(&slate_activities::BlobRef::new("clips/stalled.mp4").unwrap())
            .await
            .unwrap()
    );
}
