//! `slate serve` killed with SIGKILL while a scene waits for its video; a restarted server
//! finishes the film, and the video job was submitted once (counted at the provider).

mod common;

use std::time::{Duration, Instant};

use common::serve::{Serve, free_port, healthy};
use common::*;
use reqwest::StatusCode;
use serde_json::json;
use slate_tests::fake_last_frame::FakeLastFrame;
use slate_tests::fake_tasks::FakeTasks;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_resumes_a_film_waiting_for_its_video_without_resubmitting() {
    let fake = FakeTasks::start("tasks-key", 5.0).await;
    fake.hold_videos(true);
    let data = temp_dir("serve-crash");
    let (url, pg) = database_url(Db::Postgres, &data).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let env: Vec<(String, String)> = [
        ("SLATE_DATA_DIR", data.display().to_string()),
        ("SLATE_DATABASE_URL", url),
        ("SLATE_LISTEN", format!("127.0.0.1:{port}")),
        ("SLATE_PUBLIC_URL", base.clone()),
        ("SLATE_API_KEY", API_KEY.into()),
        ("SLATE_ADMIN_KEY", ADMIN_KEY.into()),
        ("SLATE_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("SLATE_LEASE_SECS", "3".into()),
        ("SLATE_LOG", "info".into()),
        ("TASK_API_KEY", "tasks-key".into()),
        ("SLATE_TASKS_URL", fake.url().into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let log = data.join("serve.log");
    let api = Api {
        base,
        http: client(),
    };

    let first = Serve::spawn(&env, &log);
    healthy(&api, &log).await;
    let slug = "crash-film";
    create_project(&api, slug, &mini_gather(1)).await;
    let (st, p) = api
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{p}");
    let pid = p["run_id"].as_str().unwrap().to_string();

    // Kill it while the first scene waits for its video.
    let deadline = Instant::now() + Duration::from_secs(180);
    let scene_run = loop {
        let runs = api
            .get(&format!(
                "/api/runs?workflow=film.scene&project={slug}&status=waiting"
            ))
            .await;
        // The chain's first scene; the ones after it wait for its last frame.
        if let Some(r) = runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["input"]["previous_by_signal"] != true)
            && !fake.video_submissions().is_empty()
        {
            let id = r["id"].as_str().unwrap().to_string();
            if api.get(&format!("/api/runs/{id}")).await["current_step"] == "video/wait/0" {
                break id;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no scene waited for a video:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let killed = first.0.id();
    drop(first); // SIGKILL
    let sub = fake.video_submissions()[0].clone();
    assert_eq!(fake.video_submissions().len(), 1);

    // The provider finishes while no server runs; a new server comes up and the callback
    // arrives.
    fake.complete(&sub.task_id);
    let second = Serve::spawn(&env, &log);
    assert_ne!(second.0.id(), killed);
    healthy(&api, &log).await;
    let callback = sub.body["callback_url"].as_str().unwrap().to_string();
    let res = api
        .http
        .post(&callback)
        .json(&json!({"task_id": sub.task_id, "status": "completed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    fake.hold_videos(false);

    let run = api.wait_run(&pid, Duration::from_secs(300)).await;
    assert_eq!(
        run["run"]["status"],
        "completed",
        "{run}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let detail = api.get(&format!("/api/runs/{scene_run}")).await;
    assert_eq!(detail["run"]["status"], "completed");
    let scenes = api.get(&format!("/api/projects/{slug}/scenes")).await["scenes"]
        .as_array()
        .unwrap()
        .clone();
    let subs = fake.video_submissions();
    let first_scene = sub.body["task_data"]["scene_id"].as_str().unwrap();
    assert_eq!(
        subs.iter()
            .filter(|x| x.body["task_data"]["scene_id"] == first_scene)
            .count(),
        1,
        "the video of the scene that waited was submitted once"
    );
    assert_eq!(subs.len(), scenes.len(), "one video job per scene");
    assert!(scenes.iter().all(|s| s["status"] == "completed"));
    let project = api.get(&format!("/api/projects/{slug}")).await;
    assert_eq!(project["project"]["status"], "completed");
    let film = project["project"]["final_video"].as_str().unwrap();
    let res = api
        .http
        .get(api.url(&format!("/media/{film}")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "video/mp4");

    drop(second);
    if let Some(url) = pg {
        let _ = slate_engine::testing::drop_postgres_database(
            &slate_engine::testing::postgres_admin_url(),
            &url,
        )
        .await;
    }
    let _ = std::fs::remove_dir_all(&data);
}

/// `slate serve` killed while the tasks service holds the answer to a video submission it has
/// already taken: the restarted server finds that task by its idempotency key in the service's
/// task list instead of submitting (and paying for) the scene's video again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_whose_answer_was_lost_is_found_not_repeated() {
    let fake = FakeTasks::start("tasks-key", 5.0).await;
    fake.slow_submits(30_000);
    let data = temp_dir("serve-lost-answer");
    let (url, _) = database_url(Db::Sqlite, &data).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let env: Vec<(String, String)> = [
        ("SLATE_DATA_DIR", data.display().to_string()),
        ("SLATE_DATABASE_URL", url),
        ("SLATE_LISTEN", format!("127.0.0.1:{port}")),
        // The tasks service fetches start images by signed /media URLs of this server.
        ("SLATE_PUBLIC_URL", base.clone()),
        ("SLATE_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("SLATE_API_KEY", API_KEY.into()),
        ("SLATE_ADMIN_KEY", ADMIN_KEY.into()),
        ("SLATE_LEASE_SECS", "3".into()),
        ("SLATE_LOG", "info".into()),
        ("TASK_API_KEY", "tasks-key".into()),
        ("SLATE_TASKS_URL", fake.url().into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let log = data.join("serve.log");
    let api = Api {
        base,
        http: client(),
    };
    let first = Serve::spawn(&env, &log);
    healthy(&api, &log).await;
    let slug = "lost-answer";
    create_project(&api, slug, &mini_gather(1)).await;
    let (st, p) = api
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{p}");
    let pid = p["run_id"].as_str().unwrap().to_string();

    // The service has taken the first video and not yet answered: kill the server then.
    let deadline = Instant::now() + Duration::from_secs(180);
    while fake.video_submissions().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no video was submitted:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(first); // SIGKILL, the answer never read
    let taken = fake.video_submissions();
    assert_eq!(taken.len(), 1);
    let key = taken[0].body["task_data"]["idempotency_key"]
        .as_str()
        .expect("the submission carries our idempotency key")
        .to_string();
    fake.slow_submits(0);
    let second = Serve::spawn(&env, &log);
    healthy(&api, &log).await;
    let run = api.wait_run(&pid, Duration::from_secs(300)).await;
    assert_eq!(
        run["run"]["status"],
        "completed",
        "{run}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let subs = fake.video_submissions();
    assert_eq!(
        subs.iter()
            .filter(|s| s.body["task_data"]["idempotency_key"] == key.as_str())
            .count(),
        1,
        "the lost answer's video was submitted once"
    );
    let scenes = api.get(&format!("/api/projects/{slug}/scenes")).await["scenes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(subs.len(), scenes.len(), "one paid video per scene");
    assert!(fake.list_calls() >= 1, "the task list was read");
    drop(second);
    let _ = std::fs::remove_dir_all(&data);
}

/// `slate serve` killed while a scene waits for the last-frame service to extract its clip's
/// last frame. That service cannot be asked for earlier tasks, so the step kept the task id in
/// its checkpoint right after submitting (decision 0015): the restarted server waits for that
/// task instead of submitting (and paying for) another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_waits_for_the_task_its_step_kept_instead_of_submitting_again() {
    let data = temp_dir("serve-crash-lf");
    let tasks = FakeTasks::start("tasks-key", 5.0).await;
    let lf = FakeLastFrame::start("lf-token", &data.join("blobs")).await;
    lf.hold(true);
    let (url, pg) = database_url(Db::Sqlite, &data).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env: Vec<(String, String)> = [
        ("SLATE_DATA_DIR", data.display().to_string()),
        ("SLATE_DATABASE_URL", url),
        ("SLATE_LISTEN", format!("127.0.0.1:{port}")),
        ("SLATE_API_KEY", API_KEY.into()),
        ("SLATE_ADMIN_KEY", ADMIN_KEY.into()),
        ("SLATE_LEASE_SECS", "3".into()),
        ("SLATE_LOG", "info".into()),
        ("TASK_API_KEY", "tasks-key".into()),
        ("SLATE_TASKS_URL", tasks.url().into()),
        ("LAST_FRAME_TOKEN", "lf-token".into()),
        ("SLATE_LAST_FRAME_URL", lf.url().into()),
        ("SLATE_MEDIA_URL", lf.media_url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let log = data.join("serve.log");
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        http: client(),
    };
    let first = Serve::spawn(&env, &log);
    healthy(&api, &log).await;
    let slug = "kept-film";
    create_project(&api, slug, &mini_gather(1)).await;
    let (st, p) = api
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{p}");
    let pid = p["run_id"].as_str().unwrap().to_string();

    // Kill it once a scene's last-frame step has kept its task.
    let deadline = Instant::now() + Duration::from_secs(180);
    'wait: loop {
        let runs = api
            .get(&format!("/api/runs?workflow=film.scene&project={slug}"))
            .await;
        for r in runs["runs"].as_array().unwrap() {
            let ev = api
                .get(&format!("/api/runs/{}/events", r["id"].as_str().unwrap()))
                .await;
            if ev["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["data"]["type"] == "step_checkpoint" && e["step"] == "last-frame")
            {
                break 'wait;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no last-frame step kept its task:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(first); // SIGKILL
    let before = lf.submissions();
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].kind, "process");

    let second = Serve::spawn(&env, &log);
    healthy(&api, &log).await;
    // The restarted step polls the kept task; give it time to poll (and not submit).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(lf.submissions().len(), 1, "the step submitted again");
    lf.hold(false);
    let run = api.wait_run(&pid, Duration::from_secs(300)).await;
    assert_eq!(
        run["run"]["status"],
        "completed",
        "{run}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let scenes = api.get(&format!("/api/projects/{slug}/scenes")).await["scenes"]
        .as_array()
        .unwrap()
        .len();
    let all = lf.submissions();
    let process: Vec<_> = all.iter().filter(|s| s.kind == "process").collect();
    assert_eq!(process.len(), scenes, "one last frame per scene: {all:?}");
    assert_eq!(all.iter().filter(|s| s.kind == "stitch").count(), 1);
    drop(second);
    if let Some(url) = pg {
        let _ = slate_engine::testing::drop_postgres_database(
            &slate_engine::testing::postgres_admin_url(),
            &url,
        )
        .await;
    }
    let _ = std::fs::remove_dir_all(&data);
}

/// SIGTERM stops `slate serve` even when its stderr is a closed pipe (`slate serve 2>&1 |
/// head`, once `head` has gone): the log lines it writes on the way out fail, and must not keep
/// it from stopping. A host-by-host upgrade relies on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_whose_stderr_is_closed() {
    let data = temp_dir("sigterm");
    let port = free_port();
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        http: client(),
    };
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_slate"));
    cmd.arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    common::serve::scrub(&mut cmd);
    for (k, v) in [
        ("SLATE_DATA_DIR", data.display().to_string()),
        (
            "SLATE_DATABASE_URL",
            format!("sqlite://{}", data.join("slate.db").display()),
        ),
        ("SLATE_LISTEN", format!("127.0.0.1:{port}")),
        ("SLATE_API_KEY", API_KEY.into()),
        ("SLATE_ADMIN_KEY", ADMIN_KEY.into()),
        // Every request is logged: writes keep failing once the pipe is closed.
        ("SLATE_LOG", "debug".into()),
    ] {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start slate");
    let mut stderr = child.stderr.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.http.get(api.url("/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "slate serve did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Read what it said so far, then close the pipe, as `head` does when it has its lines.
    let mut first = [0u8; 256];
    let n = std::io::Read::read(&mut stderr, &mut first).unwrap();
    assert!(n > 0, "the banner");
    drop(stderr);
    // A few requests whose log lines now meet the closed pipe.
    for _ in 0..5 {
        let (st, _) = api
            .call_as(None, reqwest::Method::GET, "/health", None)
            .await;
        assert_eq!(st, StatusCode::OK);
    }
    let asked = Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    // The engine's default grace is 10 s; with nothing running it should be far quicker.
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if asked.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("slate serve was still running 15 s after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("stopped in {:?} ({status})", asked.elapsed());
    let _ = std::fs::remove_dir_all(&data);
}
