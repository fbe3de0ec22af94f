//! An in-process stand-in for the last-frame service, following the contract in
//! `CONTRACTS.md`: `Authorization: Bearer …`; `POST /api/v1/process` (a clip's last frame),
//! `POST /api/v1/stitch` (clips by URL, joined with cuts), `POST /api/v1/music-track` (a music
//! track mixed under a video's sound at `volume`), `POST /api/v1/length`; each task
//! answered `pending` at once and worked on in the background, then
//! `GET /api/v1/status/{id}` says `completed` with the result's URL. The work is real (ffmpeg
//! on the clips it downloads), so a film stitched here plays and lasts what its clips last.
//!
//! It also plays the part of the public bucket or CDN in front of Slate's blob directory
//! (`SLATE_MEDIA_URL` = [`FakeLastFrame::media_url`]): `GET /media/{key}` reads the file from
//! the directory it was given, with no key, as such a CDN would. Any other URL it is handed
//! (a signed `/media` URL of Slate's, a presigned bucket URL) it downloads, as the real
//! service does; one it cannot download fails the task.
//!
//! Its bodies are the spec's: status answers carry no `task_id`, and when a task is done it
//! calls the `webhook_url` it was given with `{video_url, image_url}` (a frame) or
//! `{metadata: {project_id}, video_result_url}` (a stitch).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One submission, as the service received it.
#[derive(Debug, Clone)]
pub struct LfSubmission {
    /// The task id it was given.
    pub task_id: String,
    /// `process`, `stitch`, ...
    pub kind: String,
    /// The request body.
    pub body: Value,
}

struct Inner {
    token: String,
    base: String,
    blobs: Mutex<PathBuf>,
    scratch: PathBuf,
    submissions: Mutex<Vec<LfSubmission>>,
    hold: std::sync::atomic::AtomicBool,
    /// Stitch submissions are refused (422) while set.
    refuse_stitch: std::sync::atomic::AtomicBool,
    /// task id → status JSON
    tasks: Mutex<BTreeMap<String, Value>>,
}

/// The fake; dropped with the test.
#[derive(Clone)]
pub struct FakeLastFrame {
    inner: Arc<Inner>,
}

impl FakeLastFrame {
    /// Start on a free port; `blobs` is Slate's blob directory, served under `/media`.
    pub async fn start(token: &str, blobs: &Path) -> FakeLastFrame {
        let scratch = std::env::temp_dir().join(format!(
            "slate-fake-lf-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&scratch).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let inner = Arc::new(Inner {
            token: token.to_string(),
            base,
            blobs: Mutex::new(blobs.to_path_buf()),
            scratch,
            submissions: Mutex::new(vec![]),
            hold: std::sync::atomic::AtomicBool::new(false),
            refuse_stitch: std::sync::atomic::AtomicBool::new(false),
            tasks: Mutex::new(BTreeMap::new()),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeLastFrame { inner }
    }

    /// Its base URL (`SLATE_LAST_FRAME_URL`).
    pub fn url(&self) -> &str {
        &self.inner.base
    }

    /// Serve the blobs of this directory from now on (a server whose directory is known only
    /// after it started).
    pub fn serve_blobs_from(&self, blobs: &Path) {
        *self.inner.blobs.lock().unwrap() = blobs.to_path_buf();
    }

    /// The CDN in front of the blob directory (`SLATE_MEDIA_URL`).
    pub fn media_url(&self) -> String {
        format!("{}/media", self.inner.base)
    }

    /// While held, every task answers `processing`: how a test catches a step waiting.
    pub fn hold(&self, hold: bool) {
        self.inner
            .hold
            .store(hold, std::sync::atomic::Ordering::SeqCst);
    }

    /// While set, a stitch is refused as invalid (422): a final error, nothing queued.
    pub fn refuse_stitch(&self, refuse: bool) {
        self.inner
            .refuse_stitch
            .store(refuse, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every submission so far.
    pub fn submissions(&self) -> Vec<LfSubmission> {
        self.inner.submissions.lock().unwrap().clone()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

fn answer(code: StatusCode, body: Value) -> Response {
    (code, axum::Json(body)).into_response()
}

/// A URL under our own `/media` or `/files` as a local path; anything else is not reachable
/// from here.
fn local(s: &Inner, url: &str) -> Result<PathBuf, String> {
    if let Some(p) = url.strip_prefix("file://") {
        return Ok(PathBuf::from(p));
    }
    let rest = url
        .strip_prefix(&s.base)
        .ok_or_else(|| format!("cannot download {url}"))?;
    let path = if let Some(key) = rest.strip_prefix("/media/") {
        s.blobs.lock().unwrap().join(key)
    } else if let Some(name) = rest.strip_prefix("/files/") {
        s.scratch.join(name)
    } else {
        return Err(format!("cannot download {url}"));
    };
    if path
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Err("bad path".into());
    }
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{url} does not exist"))
    }
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A URL this service is handed, as a local file: ours directly; any other downloaded (the
/// real service fetches what it is given), or why it cannot be.
async fn fetch_foreign(s: &Inner, url: &str) -> Result<String, String> {
    if url.starts_with(&s.base) {
        return local(s, url).map(|p| format!("file://{}", p.display()));
    }
    let r = http()
        .get(url)
        .send()
        .await
        .map_err(|e| format!("cannot download {url}: {e}"))?;
    if !r.status().is_success() {
        return Err(format!(
            "cannot download {url}: HTTP {}",
            r.status().as_u16()
        ));
    }
    let bytes = r.bytes().await.map_err(|e| e.to_string())?;
    let f = s
        .scratch
        .join(format!("in-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&f, &bytes).map_err(|e| e.to_string())?;
    Ok(format!("file://{}", f.display()))
}

fn run(cmd: &str, args: &[String]) -> Result<String, String> {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

fn work(s: &Inner, id: &str, kind: &str, body: &Value) -> Result<Value, String> {
    let out = |ext: &str| s.scratch.join(format!("{id}.{ext}"));
    let file_url = |ext: &str| format!("{}/files/{id}.{ext}", s.base);
    let p = |p: &Path| p.display().to_string();
    match kind {
        "process" => {
            let src = local(s, body["video_url_local"].as_str().unwrap_or(""))?;
            let dst = out("png");
            run(
                "ffmpeg",
                &[
                    "-y".into(),
                    "-v".into(),
                    "error".into(),
                    "-sseof".into(),
                    "-0.25".into(),
                    "-i".into(),
                    p(&src),
                    "-update".into(),
                    "1".into(),
                    "-frames:v".into(),
                    "1".into(),
                    p(&dst),
                ],
            )?;
            Ok(json!({"image_url": file_url("png")}))
        }
        "stitch" => {
            let mut list = String::new();
            for u in body["video_urls_local"].as_array().into_iter().flatten() {
                let f = local(s, u.as_str().unwrap_or(""))?;
                list.push_str(&format!("file '{}'\n", p(&f)));
            }
            if list.is_empty() {
                return Err("video_urls is empty".into());
            }
            let txt = out("txt");
            std::fs::write(&txt, list).map_err(|e| e.to_string())?;
            run(
                "ffmpeg",
                &[
                    "-y".into(),
                    "-v".into(),
                    "error".into(),
                    "-f".into(),
                    "concat".into(),
                    "-safe".into(),
                    "0".into(),
                    "-i".into(),
                    p(&txt),
                    "-map".into(),
                    "0:v".into(),
                    "-c:v".into(),
                    "libx264".into(),
                    "-preset".into(),
                    "ultrafast".into(),
                    "-pix_fmt".into(),
                    "yuv420p".into(),
                    p(&out("mp4")),
                ],
            )?;
            Ok(json!({"video_result_url": file_url("mp4")}))
        }
        "music-track" => {
            let video = local(s, body["video_url_local"].as_str().unwrap_or(""))?;
            let music = local(s, body["music_url_local"].as_str().unwrap_or(""))?;
            let volume = body["volume"].as_f64().unwrap_or(1.0);
            if !(0.0..=4.0).contains(&volume) {
                return Err(format!("volume {volume} is out of range"));
            }
            // The music under the video's own sound (if it has any), as long as the video.
            let has_audio = !run(
                "ffprobe",
                &[
                    "-v".into(),
                    "error".into(),
                    "-select_streams".into(),
                    "a".into(),
                    "-show_entries".into(),
                    "stream=index".into(),
                    "-of".into(),
                    "csv=p=0".into(),
                    p(&video),
                ],
            )?
            .trim()
            .is_empty();
            let m = format!("[1:a]aresample=48000,volume={volume}[m]");
            let graph = if has_audio {
                format!(
                    "{m};[0:a]aresample=48000[d];[d][m]amix=inputs=2:duration=first:normalize=0[a]"
                )
            } else {
                m.replace("[m]", "[a]")
            };
            let mut args: Vec<String> = ["-y", "-v", "error", "-i"]
                .iter()
                .map(|x| x.to_string())
                .collect();
            args.extend([
                p(&video),
                "-i".into(),
                p(&music),
                "-filter_complex".into(),
                graph,
                "-map".into(),
                "0:v".into(),
                "-map".into(),
                "[a]".into(),
                "-c:v".into(),
                "copy".into(),
                "-c:a".into(),
                "aac".into(),
                "-shortest".into(),
                p(&out("mp4")),
            ]);
            run("ffmpeg", &args)?;
            Ok(json!({"video_result_url": file_url("mp4")}))
        }
        other => Err(format!("{other} is not supported by this stand-in")),
    }
}

async fn handle(
    State(s): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if let Some(rest) = path
        .strip_prefix("/media/")
        .or(path.strip_prefix("/files/"))
    {
        return serve_file(&s, &path, rest).await;
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(format!("Bearer {}", s.token).as_str())
    {
        return answer(StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}));
    }
    if let Some(id) = path.strip_prefix("/api/v1/status/") {
        if s.hold.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = id;
            return answer(StatusCode::OK, json!({"status": "processing"}));
        }
        return match s.tasks.lock().unwrap().get(id) {
            Some(t) => answer(StatusCode::OK, t.clone()),
            None => answer(StatusCode::NOT_FOUND, json!({"error": "task not found"})),
        };
    }
    if method != Method::POST {
        return answer(StatusCode::NOT_FOUND, json!({"error": "not found"}));
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return answer(StatusCode::BAD_REQUEST, json!({"error": "invalid JSON"}));
    };
    let kind = path.trim_start_matches("/api/v1/").to_string();
    if kind == "length" {
        return length(&s, &body).await;
    }
    if !["process", "stitch", "music-track"].contains(&kind.as_str()) {
        return answer(StatusCode::NOT_FOUND, json!({"error": "not found"}));
    }
    if kind == "stitch" && s.refuse_stitch.load(std::sync::atomic::Ordering::SeqCst) {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": "video_urls: a clip has no video stream"}),
        );
    }
    let mut body = body;
    if let Err(r) = fetch_inputs(&s, &mut body).await {
        return r;
    }
    start_task(&s, kind, body)
}

/// A file the service made or fetched.
async fn serve_file(s: &Inner, path: &str, rest: &str) -> Response {
    let url = format!("{}{}", s.base, path);
    match local(s, &url) {
        Ok(f) => {
            let ct = if rest.ends_with(".png") {
                "image/png"
            } else if rest.ends_with(".mp4") {
                "video/mp4"
            } else {
                "application/octet-stream"
            };
            match tokio::fs::read(&f).await {
                Ok(bytes) => ([("content-type", ct)], bytes).into_response(),
                Err(e) => answer(StatusCode::NOT_FOUND, json!({"error": e.to_string()})),
            }
        }
        Err(e) => answer(StatusCode::NOT_FOUND, json!({"error": e})),
    }
}

/// `length`: the duration of the media at `media_url`.
async fn length(s: &Inner, body: &Value) -> Response {
    let src = match fetch_foreign(s, body["media_url"].as_str().unwrap_or("")).await {
        Ok(f) => PathBuf::from(f.trim_start_matches("file://")),
        Err(e) => return answer(StatusCode::UNPROCESSABLE_ENTITY, json!({"error": e})),
    };
    // Off the async threads: a blocking ffprobe there would stall every request (and,
    // in one process with Slate, its workers). An MP4 is read without starting ffprobe:
    // this service runs elsewhere in truth, so its process starts are not Slate's work,
    // and they would weigh on the film benchmark's machine.
    let probe = tokio::task::spawn_blocking(move || {
        if let Some(info) = slate_activities::local::mp4::read(&src) {
            return Ok(info.duration.to_string());
        }
        run(
            "ffprobe",
            &[
                "-v".into(),
                "error".into(),
                "-show_entries".into(),
                "format=duration".into(),
                "-of".into(),
                "csv=p=0".into(),
                src.display().to_string(),
            ],
        )
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match probe.ok().and_then(|d| d.trim().parse::<f64>().ok()) {
        Some(d) => answer(StatusCode::OK, json!({"duration": d})),
        None => answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "not a media file"}),
        ),
    }
}

/// Fetches the videos a task names (`video_url`, `video_urls`) to local files, noted beside
/// them as `*_local`.
async fn fetch_inputs(s: &Inner, body: &mut Value) -> Result<(), Response> {
    for field in ["video_url", "video_urls", "music_url"] {
        let urls: Vec<String> = match &body[field] {
            Value::String(u) => vec![u.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|u| u.as_str().map(str::to_string))
                .collect(),
            _ => continue,
        };
        let mut fetched = vec![];
        for u in urls {
            match fetch_foreign(s, &u).await {
                Ok(f) => fetched.push(Value::String(f)),
                Err(e) => {
                    return Err(answer(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        json!({"error": e}),
                    ));
                }
            }
        }
        body[format!("{field}_local")] = if field != "video_urls" {
            fetched.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(fetched)
        };
    }
    Ok(())
}

/// Records a task and does its work in the background; the spec's callback follows its result.
fn start_task(s: &Arc<Inner>, kind: String, body: Value) -> Response {
    let id = {
        let mut subs = s.submissions.lock().unwrap();
        let id = format!("{kind}-{}", subs.len() + 1);
        subs.push(LfSubmission {
            task_id: id.clone(),
            kind: kind.clone(),
            body: body.clone(),
        });
        s.tasks
            .lock()
            .unwrap()
            .insert(id.clone(), json!({"status": "processing"}));
        id
    };
    let (s2, id2) = (s.clone(), id.clone());
    tokio::spawn(async move {
        let (s3, id3, body3) = (s2.clone(), id2.clone(), body.clone());
        let done = tokio::task::spawn_blocking(move || match work(&s3, &id3, &kind, &body3) {
            Ok(mut v) => {
                v["status"] = json!("completed");
                (v, kind)
            }
            Err(e) => (json!({"status": "failed", "error_message": e}), kind),
        })
        .await;
        let Ok((done, kind)) = done else { return };
        s2.tasks.lock().unwrap().insert(id2, done.clone());
        // The spec's callbacks, once the result is there to fetch.
        if let Some(hook) = body["webhook_url"].as_str()
            && done["status"] == "completed"
            && !s2.hold.load(std::sync::atomic::Ordering::SeqCst)
        {
            let cb = if kind == "process" {
                json!({"video_url": body["video_url"], "image_url": done["image_url"]})
            } else {
                json!({"metadata": {"project_id": "slate"}, "video_result_url": done["video_result_url"]})
            };
            let _ = http().post(hook).json(&cb).send().await;
        }
    });
    answer(StatusCode::OK, json!({"task_id": id, "status": "pending"}))
}
