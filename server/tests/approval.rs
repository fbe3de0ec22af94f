//! The approval gate (issue 15): every scene stops after its verified composite, before any
//! video is paid for; a rejection with a note makes a new composite iteration (counted in the
//! 20-iteration limit) from the note, and nothing is spent on video for the rejected composite;
//! approval continues; the gate survives a SIGKILL of the server; the CLI and approve-all act
//! on it.

mod common;

use std::time::{Duration, Instant};

use common::serve::{Serve, free_port, healthy, scrub};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slate_activities::ProviderSettings;
use slate_tests::fake_fal::FakeFal;
use slate_tests::fake_last_frame::FakeLastFrame;
use slate_tests::fake_tasks::FakeTasks;

/// Wait until the project's approval list satisfies `ok`; the list.
async fn approvals_until(api: &Api, slug: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let v = api.get(&format!("/api/projects/{slug}/approvals")).await;
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "never {what}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn awaiting(v: &Value) -> Vec<Value> {
    v["awaiting"].as_array().unwrap().clone()
}

/// `slate approval …` against the server's database.
fn cli(env: &[(String, String)], args: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_slate"));
    cmd.arg("approval").args(args);
    scrub(&mut cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run slate approval");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The note a person rejects the first composite with.
const NOTE: &str = "move the lantern to the left of the window";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_stops_every_scene_before_video_and_survives_a_kill() {
    let data = temp_dir("approval");
    // Vision never says NO here: every iteration is the gate's doing.
    let fal = FakeFal::start("fal-key", 0, 5.0).await;
    let tasks = FakeTasks::start("tasks-key", 5.0).await;
    let lf = FakeLastFrame::start("lf-token", &data.join("blobs")).await;
    let (url, _) = database_url(Db::Sqlite, &data).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env: Vec<(String, String)> = [
        ("SLATE_DATA_DIR", data.display().to_string()),
        ("SLATE_DATABASE_URL", url),
        ("SLATE_LISTEN", format!("127.0.0.1:{port}")),
        ("SLATE_PUBLIC_URL", base.clone()),
        ("SLATE_API_KEY", API_KEY.into()),
        ("SLATE_ADMIN_KEY", ADMIN_KEY.into()),
        ("SLATE_LEASE_SECS", "3".into()),
        ("SLATE_LOG", "info".into()),
        ("SLATE_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("FAL_KEY", "fal-key".into()),
        ("SLATE_FAL_QUEUE_URL", fal.url().into()),
        ("SLATE_FAL_STORAGE_URL", fal.url().into()),
        ("TASK_API_KEY", "tasks-key".into()),
        ("SLATE_TASKS_URL", tasks.url().into()),
        ("SLATE_VIDEO_PROVIDER", "tasks".into()),
        ("LAST_FRAME_TOKEN", "lf-token".into()),
        ("SLATE_LAST_FRAME_URL", lf.url().into()),
        ("SLATE_MEDIA_URL", lf.media_url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let log = data.join("serve.log");
    let api = Api {
        base,
        http: client(),
    };
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();

    let first = Serve::spawn(&env, &log);
    healthy(&api, &log).await;
    let slug = "gated";
    create_project(&api, slug, &mini_gather(2)).await;

    let production = the_gate_is_turned_on_and_production_starts(&api, slug).await;
    let (scene, first_composite, layers) = scene_one_waits_at_the_gate(&api, slug, &tasks).await;
    let second_composite = a_rejection_with_a_note_makes_a_new_round(
        &api,
        slug,
        &fal,
        &tasks,
        &scene,
        &first_composite,
        layers,
    )
    .await;
    // SIGKILL while it waits; a new server shows the same composite awaiting.
    first.kill();
    let second = Serve::spawn(&env, &log);
    healthy(&api, &log).await;
    let list = api.get(&format!("/api/projects/{slug}/approvals")).await;
    let a = awaiting(&list);
    assert_eq!(a.len(), 1, "{list}");
    assert_eq!(a[0]["composite"], second_composite.as_str());
    assert_eq!(a[0]["round"], 2);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(tasks.video_submissions().is_empty(), "{}", logs());

    // Approve from the command line.
    let (ok, out) = cli(&env, &["list", slug]);
    assert!(ok, "{out}");
    assert!(out.contains(&scene) && out.contains(NOTE), "{out}");
    let (ok, out) = cli(&env, &["approve", &scene]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&env, &["approve", &scene]);
    // Refused, whether the run has taken the approval in yet or not.
    assert!(
        !ok && (out.contains("already been decided") || out.contains("not waiting for approval")),
        "{out}"
    );

    scene_two_goes_through_with_approve_all(&api, slug, &tasks, &scene).await;
    let run = api.wait_run(&production, Duration::from_secs(300)).await;
    assert_eq!(run["run"]["status"], "completed", "{run}\n{}", logs());
    every_scene_took_its_approved_composite(&api, slug, &tasks, &scene, &first_composite).await;
    drop(second);
}

/// Turning the gate on; bad bodies are refused with what is wrong; the production starts. Returns its run id.
async fn the_gate_is_turned_on_and_production_starts(api: &Api, slug: &str) -> String {
    // Turning the gate on; bad bodies are refused with what is wrong.
    let (st, v) = api
        .call(
            Method::PUT,
            &format!("/api/projects/{slug}/approval"),
            Some(json!({"required": "yes"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(is_error(&v));
    let (st, v) = api
        .call(
            Method::PUT,
            &format!("/api/projects/{slug}/approval"),
            Some(json!({"required": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = api
        .call(
            Method::PUT,
            "/api/projects/no-such/approval",
            Some(json!({"required": true})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");

    let (st, p) = api
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{p}");

    p["run_id"].as_str().unwrap().to_string()
}

/// Scene 1 stops at the gate with nothing paid for video, shows in progress, and its composite can be looked at. Returns the scene, its composite and its layer count.
async fn scene_one_waits_at_the_gate(
    api: &Api,
    slug: &str,
    tasks: &FakeTasks,
) -> (String, String, u64) {
    // Scene 1 stops at the gate; nothing has been paid for video.
    let list = approvals_until(api, slug, "a scene awaited approval", |v| {
        !awaiting(v).is_empty()
    })
    .await;
    assert_eq!(list["required"], true);
    let a = awaiting(&list);
    assert_eq!(a.len(), 1, "{list}");
    let scene = a[0]["scene_id"].as_str().unwrap().to_string();
    assert_eq!(a[0]["round"], 1);
    let first_composite = a[0]["composite"].as_str().unwrap().to_string();
    let layers = a[0]["iterations"].as_u64().unwrap();
    assert!(layers >= 1, "{list}");
    // Progress says the scene is in flight, at its composite.
    let pr = api.get(&format!("/api/projects/{slug}/progress")).await;
    let in_flight = pr["in_flight"].as_array().unwrap();
    assert_eq!(in_flight.len(), 1, "{pr}");
    assert_eq!(in_flight[0]["scene_id"], scene.as_str());
    assert_eq!(in_flight[0]["status"], "verifying_composite");
    assert_eq!(pr["completed"], 0);
    // It stays stopped: a moment later still no video, and the run waits.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(tasks.video_submissions().is_empty());
    let run = api
        .get(&format!("/api/runs/{}", a[0]["run_id"].as_str().unwrap()))
        .await;
    assert_eq!(run["run"]["status"], "waiting", "{run}");
    // The composite is there to look at.
    let res = api
        .http
        .get(api.url(&format!("/media/{first_composite}")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    (scene, first_composite, layers)
}

/// Bad decisions are refused and change nothing; a rejection with a note makes a new iteration from the note, put up for approval again. Returns the new composite.
async fn a_rejection_with_a_note_makes_a_new_round(
    api: &Api,
    slug: &str,
    fal: &FakeFal,
    tasks: &FakeTasks,
    scene: &str,
    first_composite: &str,
    layers: u64,
) -> String {
    // Bad decisions are refused and change nothing.
    let decide = |body: Value| {
        let api = api.clone();
        let path = format!("/api/scenes/{scene}/approval");
        async move { api.post(&path, body).await }
    };
    let (st, v) = decide(json!({"decision": "reject"})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("note"),
        "{v}"
    );
    let (st, v) = decide(json!({"decision": "maybe"})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (st, v) = decide(json!({"decision": "approve", "round": 7})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let (st, v) = api
        .post(
            "/api/scenes/no-such-scene/approval",
            json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");

    // Reject with a note: a new iteration from the note, put up for approval again.
    let note = NOTE;
    let (st, v) = decide(json!({"decision": "reject", "note": note, "round": 1})).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    // The same round decided twice: refused, not applied again.
    let (st, v) = decide(json!({"decision": "approve", "round": 1})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let list = approvals_until(api, slug, "round 2", |v| {
        awaiting(v).first().is_some_and(|a| a["round"] == 2)
    })
    .await;
    let a = &awaiting(&list)[0];
    assert_eq!(a["scene_id"], scene);
    assert_eq!(a["iterations"].as_u64().unwrap(), layers + 1, "{list}");
    assert_eq!(a["rejections"], json!([note]));
    let second_composite = a["composite"].as_str().unwrap().to_string();
    assert_ne!(second_composite, first_composite);
    let with_note = fal
        .submissions()
        .into_iter()
        .filter(|s| s.body["prompt"].as_str().is_some_and(|p| p.contains(note)))
        .count();
    assert!(with_note >= 1, "the note reached the image model");
    assert!(tasks.video_submissions().is_empty());
    let s = api.get(&format!("/api/scenes/{scene}")).await;
    let numbers: Vec<u64> = s["composite_iterations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["iteration_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=layers + 1).collect::<Vec<_>>(), "{s}");

    second_composite
}

/// Scene 2 stops at the gate in its turn, after scene 1's video; the gate goes off for the scenes after it, and approve-all lets scene 2 go.
async fn scene_two_goes_through_with_approve_all(
    api: &Api,
    slug: &str,
    tasks: &FakeTasks,
    scene: &str,
) {
    // Scene 2 stops at the gate in its turn, after scene 1's video. The gate goes off for the
    // scenes after it, and approve-all lets scene 2 go.
    let list = approvals_until(api, slug, "scene 2 at the gate", |v| {
        awaiting(v).first().is_some_and(|a| a["scene_id"] != scene)
    })
    .await;
    assert_eq!(tasks.video_submissions().len(), 1);
    let (st, v) = api
        .call(
            Method::PUT,
            &format!("/api/projects/{slug}/approval"),
            Some(json!({"required": false})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let still = api.get(&format!("/api/projects/{slug}/approvals")).await;
    assert_eq!(still["required"], false);
    assert_eq!(
        awaiting(&still).len(),
        1,
        "a scene already waiting keeps waiting"
    );
    let (st, all) = api
        .post(
            &format!("/api/projects/{slug}/approvals/approve-all"),
            json!(null),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{all}");
    assert_eq!(all["approved"].as_array().unwrap().len(), 1, "{all} {list}");
}

/// One video per scene, each from its final composite: the approved one where the gate stood, none from the rejected one; the scene's history keeps the rejection and its note.
async fn every_scene_took_its_approved_composite(
    api: &Api,
    slug: &str,
    tasks: &FakeTasks,
    scene: &str,
    first_composite: &str,
) {
    let note = NOTE;
    let scenes = api.get(&format!("/api/projects/{slug}/scenes")).await["scenes"]
        .as_array()
        .unwrap()
        .clone();
    // One video per scene, each from its final composite: the approved one where the gate
    // stood; none from the rejected one.
    let videos = tasks.video_submissions();
    assert_eq!(videos.len(), scenes.len());
    let mut gated = 0;
    for sc in &scenes {
        assert_eq!(sc["status"], "completed");
        let key = sc["composite_final_url"].as_str().unwrap();
        if let Some(history) = sc["approval"]["history"].as_array() {
            gated += 1;
            let approved = history.last().unwrap();
            assert_eq!(approved["state"], "approved", "{sc}");
            assert_eq!(approved["composite"], key);
        }
        let starts: Vec<&Value> = videos
            .iter()
            .filter(|v| v.body["task_data"]["scene_id"] == sc["id"])
            .map(|v| &v.body["task_data"]["start_image_url"])
            .collect();
        assert_eq!(starts.len(), 1, "{sc}");
        assert!(
            starts[0].as_str().unwrap().ends_with(key),
            "{starts:?} {key}"
        );
    }
    assert!(
        videos
            .iter()
            .all(|v| !v.body["task_data"]["start_image_url"]
                .as_str()
                .unwrap()
                .ends_with(&first_composite)),
        "no video from the rejected composite"
    );
    assert_eq!(gated, 2, "the scenes that reached the gate while it was on");
    let pr = api.get(&format!("/api/projects/{slug}/progress")).await;
    assert_eq!(
        pr["completed"].as_u64().unwrap() as usize,
        scenes.len(),
        "{pr}"
    );
    assert!(pr["in_flight"].as_array().unwrap().is_empty(), "{pr}");
    let one = scenes.iter().find(|s| s["id"] == scene).unwrap();
    let history = one["approval"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{one}");
    assert_eq!(history[0]["state"], "rejected");
    assert_eq!(history[0]["note"], note);
    assert_eq!(history[0]["composite"], first_composite);
}

/// Rejections count in the 20-iteration limit: a scene rejected until the limit fails with the
/// limit named, and no video is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_count_in_the_iteration_limit() {
    let s = TestServer::start(Db::Sqlite, ProviderSettings::default(), &[]).await;
    let slug = "picky";
    create_project(&s.api, slug, &mini_gather(1)).await;
    let (st, v) = s
        .api
        .call(
            Method::PUT,
            &format!("/api/projects/{slug}/approval"),
            Some(json!({"required": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, p) = s
        .api
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{p}");
    let mut round = 0;
    let scene = loop {
        let list = approvals_until(&s.api, slug, "the next round", |v| {
            awaiting(v).first().is_some_and(|a| a["round"] == round + 1)
        })
        .await;
        let a = awaiting(&list)[0].clone();
        round += 1;
        let iterations = a["iterations"].as_u64().unwrap();
        let scene = a["scene_id"].as_str().unwrap().to_string();
        let (st, v) = s
            .api
            .post(
                &format!("/api/scenes/{scene}/approval"),
                json!({"decision": "reject", "note": format!("not yet ({round})"), "round": round}),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        if iterations == 20 {
            break scene;
        }
        assert!(iterations < 20, "{a}");
    };
    // The 21st iteration is refused: the scene fails with the limit named, without a video.
    let deadline = Instant::now() + Duration::from_secs(60);
    let sc = loop {
        let sc = s.api.get(&format!("/api/scenes/{scene}")).await;
        if sc["status"] == "failed" {
            break sc;
        }
        assert!(Instant::now() < deadline, "{sc}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let msg = sc["error_message"].as_str().unwrap();
    assert!(msg.contains("composite") && msg.contains("20"), "{msg}");
    assert_eq!(sc["composite_iterations"].as_array().unwrap().len(), 20);
    assert!(sc["generated_video_url"].is_null(), "{sc}");
    let list = s.api.get(&format!("/api/projects/{slug}/approvals")).await;
    assert!(awaiting(&list).is_empty(), "{list}");
    s.stop().await;
}
