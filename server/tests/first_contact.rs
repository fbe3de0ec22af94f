//! First contact with the real services (issue 22), against fakes rebuilt from the providers'
//! documentation and the spec: the spec's callback bodies wake their runs, the services fetch
//! our media through signed `/media` URLs of a running server, fal's signed webhooks are
//! verified, `slate doctor` reports what would fail and names the variable, a model without a
//! price is refused at start, costs a provider leaves out are recorded as estimates, and
//! `slate serve` says at start which provider serves each activity.

mod common;

use std::time::{Duration, Instant};

use common::serve::{Serve, free_port, healthy, scrub};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use slate_activities::{ProviderSettings, ProviderVars};
use slate_engine::{Ctx, WfError, Workflow};
use slate_tests::fake_fal::FakeFal;
use slate_tests::fake_last_frame::FakeLastFrame;
use slate_tests::fake_tasks::FakeTasks;

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A production on the tasks and last-frame services with no `SLATE_MEDIA_URL`: the services
/// fetch every clip and frame through signed `/media` URLs of this server, and every callback
/// carries the spec's body. Media tasks are polled every 20 s, so a production that ends
/// sooner was woken by the last-frame and stitch callbacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_callbacks_wake_their_runs_and_services_fetch_signed_media() {
    let tasks = FakeTasks::start("tasks-key", 5.0).await;
    let lf = FakeLastFrame::start("lf-token", std::path::Path::new("/nonexistent")).await;
    let mut settings = ProviderSettings::from_vars(ProviderVars {
        task_api_key: Some("tasks-key".into()),
        tasks_url: Some(tasks.url().into()),
        last_frame_token: Some("lf-token".into()),
        last_frame_url: Some(lf.url().into()),
        ..Default::default()
    })
    .unwrap();
    settings.poll_every = Some(Duration::from_secs(20));
    let s = TestServer::start(Db::Sqlite, settings, &[]).await;
    let slug = "spec-hooks";
    create_project(&s, slug, &mini_gather(1)).await;
    let started = Instant::now();
    let (st, p) = s
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{p}");
    let run = s
        .wait_run(p["run_id"].as_str().unwrap(), Duration::from_secs(240))
        .await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    let took = started.elapsed();

    // The services were handed signed URLs of this server, and fetched the right bytes.
    let subs = lf.submissions();
    let frames = subs.iter().filter(|x| x.kind == "process").count();
    let stitches = subs.iter().filter(|x| x.kind == "stitch").count();
    assert!(frames >= 1 && stitches >= 1, "{subs:?}");
    for sub in &subs {
        let urls: Vec<&str> = match sub.kind.as_str() {
            "process" => vec![sub.body["video_url"].as_str().unwrap()],
            // The film's sound mixed by the service: the cut and the stems' bed.
            "music-track" => vec![
                sub.body["video_url"].as_str().unwrap(),
                sub.body["music_url"].as_str().unwrap(),
            ],
            _ => sub.body["video_urls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap())
                .collect(),
        };
        for u in urls {
            assert!(
                u.starts_with(&format!("{}/media/projects/{slug}/", s.base)) && u.contains("&sig="),
                "{u}"
            );
            let key = u
                .split('?')
                .next()
                .unwrap()
                .trim_start_matches(&format!("{}/media/", s.base));
            let fetched = s.http.get(u).send().await.unwrap();
            assert_eq!(fetched.status(), StatusCode::OK, "no API key needed: {u}");
            let want = std::fs::read(s.data.join("blobs").join(key)).unwrap();
            assert_eq!(fetched.bytes().await.unwrap().to_vec(), want, "{u}");
        }
        // Callback URLs name our reference; a stitch and a music-track (both answer with a
        // film) report to stitch-complete.
        let hook = sub.body["webhook_url"].as_str().unwrap();
        let route = if sub.kind == "stitch" || sub.kind == "music-track" {
            "stitch-complete"
        } else {
            "last-frame-complete"
        };
        assert!(
            hook.starts_with(&format!("{}/api/webhooks/{route}?ref=", s.base)),
            "{hook}"
        );
    }
    let start_images: Vec<String> = tasks
        .video_submissions()
        .iter()
        .map(|x| {
            x.body["task_data"]["start_image_url"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(!start_images.is_empty());
    for u in &start_images {
        assert!(u.starts_with(&format!("{}/media/", s.base)), "{u}");
    }
    // A tampered or expired URL is refused.
    let u = &start_images[0];
    let tampered = u.replace("&sig=", "&sig=0");
    assert_eq!(
        s.http.get(&tampered).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let key = u
        .split('?')
        .next()
        .unwrap()
        .trim_start_matches(&format!("{}/media/", s.base));
    let media_secret =
        slate_activities::config::media_secret_from(&slate_activities::Secret::new(WEBHOOK_SECRET));
    let old = 1_000_000;
    let sig = slate_activities::blob::media_signature(&media_secret, key, old);
    let expired = format!("{}/media/{key}?expires={old}&sig={sig}", s.base);
    let res = s.http.get(&expired).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("expired"));

    // Every callback had the spec's shape, without a task id of ours.
    for (url, body) in tasks.callbacks() {
        assert!(url.contains("/api/webhooks/video-complete?run="), "{url}");
        assert!(
            body.get("task_id").is_none() && body["video_url"].is_string(),
            "{body}"
        );
    }
    // Each media task waited less than its 20 s poll: the callbacks woke them.
    let media_tasks = (frames + stitches) as u32;
    assert!(
        took < Duration::from_secs(20) * media_tasks,
        "{media_tasks} media tasks polled every 20 s took {took:?}: the callbacks did not wake them"
    );
    s.stop().await;
}

/// A test workflow that waits for a fal request's webhook.
struct AwaitFal;

impl Workflow for AwaitFal {
    const NAME: &'static str = "test.await-fal";
    type Input = String;
    type Output = bool;
    async fn run(&self, ctx: Ctx, request_id: String) -> Result<bool, WfError> {
        let got: Option<Value> = ctx
            .wait_signal(
                "fal",
                slate_activities::remote::fal::signal_name(&request_id),
                Some(Duration::from_secs(3600)),
            )
            .await?;
        Ok(got.is_some())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fal_webhooks_are_verified_by_their_signature() {
    let fal = FakeFal::start("fal-key", 0, 5.0).await;
    let vars: Vec<(String, String)> = fal.env("fal-key");
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let settings = slate_server::config::Config::load(None, |k| {
        vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .unwrap()
    .providers;
    let s = TestServer::start_with(Db::Sqlite, settings, &env, |st| {
        st.engine.register(AwaitFal);
    })
    .await;
    let (st, v) = s
        .post(
            "/api/runs",
            json!({"workflow": "test.await-fal", "input": "req-signed"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["run"]["id"].as_str().unwrap().to_string();
    wait_until("the run to wait", Duration::from_secs(30), || async {
        s.get(&format!("/api/runs/{id}")).await["run"]["status"] == "waiting"
    })
    .await;
    let body = json!({"request_id": "req-signed", "gateway_request_id": "req-signed", "status": "OK", "payload": {}})
        .to_string()
        .into_bytes();
    let send = |headers: Vec<(String, String)>, body: Vec<u8>| {
        let (http, url) = (s.http.clone(), s.url("/api/webhooks/fal"));
        async move {
            let mut rb = http.post(url).header("content-type", "application/json");
            for (k, v) in headers {
                rb = rb.header(k, v);
            }
            let res = rb.body(body).send().await.unwrap();
            let st = res.status();
            (st, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let now = chrono::Utc::now().timestamp();
    // No signature, a forged one, an old timestamp, a body changed after signing: 401.
    let cases = [
        ("no signature", vec![], body.clone()),
        (
            "forged",
            fal.signed_headers("req-signed", &body, now, true),
            body.clone(),
        ),
        (
            "old",
            fal.signed_headers("req-signed", &body, now - 301, false),
            body.clone(),
        ),
        (
            "tampered body",
            fal.signed_headers("req-signed", &body, now, false),
            body.iter()
                .copied()
                .map(|b| if b == b'K' { b'X' } else { b })
                .collect(),
        ),
    ];
    for (what, headers, b) in cases {
        let (st, v) = send(headers, b).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{what}: {v}");
        assert!(v["error"]["message"].is_string(), "{what}: {v}");
    }
    assert_eq!(
        s.get(&format!("/api/runs/{id}")).await["run"]["status"],
        "waiting",
        "nothing woke it"
    );
    // Signed by fal's key, on time: it wakes the run.
    let (st, v) = send(
        fal.signed_headers("req-signed", &body, now, false),
        body.clone(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["woken"], 1, "{v}");
    let run = s.wait_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["run"]["output"], true, "{run}");
    s.stop().await;
}

/// `slate doctor` as a person runs it: exit code and what it prints.
fn doctor(data: &std::path::Path, env: &[(String, String)]) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_slate"));
    cmd.arg("doctor");
    scrub(&mut cmd);
    cmd.env("SLATE_DATA_DIR", data)
        .env_remove("SLATE_DATABASE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn with(base: &[(String, String)], over: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = base
        .iter()
        .filter(|(k, _)| !over.iter().any(|(o, _)| o == k))
        .cloned()
        .collect();
    v.extend(over.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slate_doctor_names_what_would_fail_and_passes_a_healthy_setup() {
    let fal = FakeFal::start("fal-key", 0, 5.0).await;
    let tasks = FakeTasks::start("tasks-key", 5.0).await;
    let data = temp_dir("doctor");
    let blobs = data.join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let lf = FakeLastFrame::start("lf-token", &blobs).await;
    // A running Slate for the public URL and webhook path checks.
    let s = TestServer::start(Db::Sqlite, ProviderSettings::default(), &[]).await;
    let healthy_env: Vec<(String, String)> = fal
        .env("fal-key")
        .into_iter()
        .chain(
            [
                ("TASK_API_KEY", "tasks-key".to_string()),
                ("SLATE_TASKS_URL", tasks.url().to_string()),
                ("SLATE_VIDEO_PROVIDER", "tasks".into()),
                ("LAST_FRAME_TOKEN", "lf-token".into()),
                ("SLATE_LAST_FRAME_URL", lf.url().to_string()),
                ("SLATE_MEDIA_URL", lf.media_url()),
                ("SLATE_PUBLIC_URL", s.base.clone()),
                ("SLATE_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
        )
        .collect();
    let (ok, text) = doctor(&data, &healthy_env);
    assert!(ok, "a healthy setup passes:\n{text}");
    for seen in [
        "fal.ai key",
        "fal storage",
        "media URL",
        "public URL",
        "webhook path",
    ] {
        assert!(text.contains(seen), "{seen} checked:\n{text}");
    }

    // Each fault is reported, names its variable, and fails the run.
    // What is wrong, the settings that make it so, the variable a failure must name.
    type Fault<'a> = (&'a str, Vec<(&'a str, String)>, &'a str);
    let faults: [Fault<'_>; 5] = [
        (
            "a retired model",
            vec![("SLATE_FAL_IMAGE_MODEL", "fal-ai/nano-banana".into())],
            "SLATE_FAL_IMAGE_MODEL",
        ),
        (
            "a model without a price",
            vec![
                (
                    "SLATE_FAL_VIDEO_MODEL",
                    "someone/new-model/image-to-video".into(),
                ),
                ("SLATE_FAL_VIDEO_DURATIONS", "5".into()),
                ("SLATE_VIDEO_PROVIDER", "fal".into()),
            ],
            "SLATE_PRICES",
        ),
        (
            "an unreachable media URL",
            vec![("SLATE_MEDIA_URL", "http://127.0.0.1:9/nothing".into())],
            "SLATE_MEDIA_URL",
        ),
        (
            "a wrong fal key",
            vec![("FAL_KEY", "not-the-key".into())],
            "FAL_KEY",
        ),
        (
            "a wrong tasks key",
            vec![("TASK_API_KEY", "not-the-key".into())],
            "TASK_API_KEY",
        ),
    ];
    for (what, over, var) in faults {
        let over: Vec<(&str, &str)> = over.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (ok, text) = doctor(&data, &with(&healthy_env, &over));
        assert!(!ok, "{what} fails the doctor:\n{text}");
        let line = text
            .lines()
            .find(|l| l.starts_with("FAIL") && l.contains(&format!("[{var}]")))
            .unwrap_or_else(|| panic!("{what}: no failure naming {var}:\n{text}"));
        assert!(!line.contains("not-the-key"), "no secret printed: {line}");
    }
    // A model fal no longer serves.
    fal.serve_only(&["fal-ai/nano-banana-2", "fal-ai/moondream2/visual-query"]);
    let (ok, text) = doctor(&data, &healthy_env);
    assert!(!ok && text.contains("SLATE_FAL_EDIT_MODEL"), "{text}");
    s.stop().await;
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_says_what_runs_and_refuses_what_cannot_work() {
    // With default settings: the address and one line per activity with its provider.
    let data = temp_dir("banner");
    let port = free_port();
    let log = data.join("serve.log");
    let env: Vec<(String, String)> = vec![
        ("SLATE_DATA_DIR".into(), data.display().to_string()),
        ("SLATE_LISTEN".into(), format!("127.0.0.1:{port}")),
    ];
    let serve = Serve::spawn(
        &env.iter()
            .cloned()
            .chain([("SLATE_LOG".to_string(), String::new())])
            .collect::<Vec<_>>(),
        &log,
    );
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        http: client(),
    };
    healthy(&api, &log).await;
    serve.kill();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("address        http://127.0.0.1:{port}/")),
        "{text}"
    );
    for (activity, provider) in [
        ("language model", "local planner"),
        ("images", "local storyboard renderer"),
        ("vision", "local manifest check"),
        ("knowledge", "local full-text search"),
        ("video", "local ffmpeg"),
        ("music", "local synthesis"),
        ("voice", "local espeak-ng"),
        ("media ops", "local ffmpeg"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(activity) && l.contains(provider)),
            "{activity}: {provider}\n{text}"
        );
    }

    // A video model without a price: refused at start, naming what to set.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_slate"));
    cmd.arg("serve");
    scrub(&mut cmd);
    for (k, v) in &env {
        cmd.env(k, v);
    }
    cmd.env("FAL_KEY", "k")
        .env("SLATE_FAL_QUEUE_URL", "http://127.0.0.1:9")
        .env("SLATE_FAL_VIDEO_MODEL", "someone/new-model/image-to-video")
        .env("SLATE_FAL_VIDEO_DURATIONS", "5,10");
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("someone/new-model/image-to-video") && err.contains("SLATE_PRICES"),
        "{err}"
    );
    // The tasks service with no URL it could fetch our media from: refused, naming it.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_slate"));
    cmd.arg("worker");
    scrub(&mut cmd);
    for (k, v) in &env {
        cmd.env(k, v);
    }
    cmd.env("TASK_API_KEY", "k");
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("SLATE_PUBLIC_URL"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(data);
}

/// fal leaves out `x-fal-billable-units`: the ledger records each image at its estimate,
/// marked estimated, never $0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cost_the_provider_leaves_out_is_the_estimate_marked_estimated() {
    let fal = FakeFal::start("fal-key", 0, 5.0).await;
    fal.omit_billable_units(true);
    let vars: Vec<(String, String)> = fal.env("fal-key");
    let settings = slate_server::config::Config::load(None, |k| {
        vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .unwrap()
    .providers;
    let s = TestServer::start(Db::Postgres, settings, &[]).await;
    let slug = "unstated";
    create_project(&s, slug, &mini_gather(1)).await;
    let (st, v) = s
        .post(
            &format!("/api/projects/{slug}/qualify"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let run = s
        .wait_run(v["run_id"].as_str().unwrap(), Duration::from_secs(240))
        .await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    // Image steps cost the estimate of one image ($0.08), all of it marked estimated.
    let runs = s.get(&format!("/api/runs?project={slug}&limit=100")).await;
    let mut paid = vec![];
    for r in runs["runs"].as_array().unwrap() {
        let d = s
            .get(&format!("/api/runs/{}", r["id"].as_str().unwrap()))
            .await;
        for x in d["steps"].as_array().unwrap() {
            if x["cost"]["usd_micros"].as_i64().unwrap_or(0) != 0 {
                paid.push(x.clone());
            }
        }
    }
    assert!(!paid.is_empty(), "{runs}");
    for x in &paid {
        assert_eq!(
            x["cost"]["usd_micros"], x["cost"]["estimated_usd_micros"],
            "{x}"
        );
    }
    assert!(
        paid.iter().any(|x| x["cost"]["usd_micros"] == 80_000),
        "an image at $0.08: {paid:?}"
    );
    let costs = s.get(&format!("/api/projects/{slug}/costs")).await;
    assert!(costs["actual_usd"].as_f64().unwrap() > 0.0, "{costs}");
    let (actual, estimated) = (
        costs["actual_usd"].as_f64().unwrap(),
        costs["estimated_usd"].as_f64().unwrap(),
    );
    assert!(
        (actual - estimated).abs() < 1e-6,
        "all of it estimated: {costs}"
    );
    s.stop().await;
}
