//! No dead ends: one readiness gate for `/qualify` and `/produce`; a production blocked on a
//! failed qualification says so; the gather reopens, is fixed, and the second qualification
//! replaces what the first wrote; the film is made.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slate_activities::ProviderSettings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_qualification_reopens_is_fixed_and_the_film_is_made() {
    let s = TestServer::start(Db::Sqlite, ProviderSettings::default(), &[]).await;
    let slug = "drift";
    // Bad gather data: people and notes, but not one scene idea.
    let gather = json!({
        "project": {"title": "Drift"},
        "collections": {
            "cast": [
                {"name": "Vera", "look": "grey coat, silver hair"},
                {"name": "Nils", "look": "orange life vest"}
            ],
            "raw_notes": [{"note": "World rule: the ferry never waits."}]
        }
    });
    create_project(&s, slug, &gather).await;

    let (prod, qual) = one_gate_then_a_forced_qualification_fails(&s, slug).await;
    reopening_is_explicit_and_recorded(&s, slug, &prod, &qual).await;
    // Fix it: Vera goes, Ivo comes, and three scene ideas.
    let cast = s.get(&format!("/api/projects/{slug}/gather/cast")).await;
    let vera = cast["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["body"]["name"] == "Vera")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, v) = s
        .call(
            Method::DELETE,
            &format!("/api/projects/{slug}/gather/cast/{vera}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    for d in [json!({"name": "Ivo", "look": "red beanie, huge boots"})] {
        let (st, v) = s
            .post(&format!("/api/projects/{slug}/gather/cast"), d)
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    for idea in [
        "Nils runs for the ferry across the wet dock at dawn.",
        "The ferry pulls away; Ivo waves from the deck.",
        "Ivo: \"Jump!\" Nils jumps.",
    ] {
        let (st, v) = s
            .post(
                &format!("/api/projects/{slug}/gather/raw_scenes"),
                json!({"text": idea}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }

    // The second attempt qualifies, and the film is made.
    let (st, v) = s
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"force": true, "edit_window_secs": 0}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let run = s
        .wait_run(v["run_id"].as_str().unwrap(), Duration::from_secs(400))
        .await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    let project = s.get(&format!("/api/projects/{slug}")).await;
    assert_eq!(project["project"]["status"], "completed", "{project}");
    let names: Vec<Value> = s
        .get(&format!(
            "/api/projects/{slug}/qualified/character_profiles"
        ))
        .await["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["body"]["name"].clone())
        .collect();
    assert!(
        names.contains(&json!("Ivo")) && names.contains(&json!("Nils")),
        "{names:?}"
    );
    assert!(
        !names.contains(&json!("Vera")),
        "replaced, not mixed in: {names:?}"
    );
    let scenes = s.get(&format!("/api/projects/{slug}/scenes")).await;
    assert!(scenes["scenes"].as_array().unwrap().len() >= 3, "{scenes}");
    s.stop().await;
}

/// One gate: /produce answers exactly what /qualify answers; forced, the production's qualification fails for want of scene ideas, and the production waits on it and says so. Returns the production's and the qualification's run ids.
async fn one_gate_then_a_forced_qualification_fails(
    s: &TestServer,
    slug: &str,
) -> (String, String) {
    // One gate: /produce answers exactly what /qualify answers.
    let (st, q) = s
        .post(&format!("/api/projects/{slug}/qualify"), json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{q}");
    let (st, p) = s
        .post(&format!("/api/projects/{slug}/produce"), json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{p}");
    assert_eq!(q, p, "the same refusal");
    let msg = q["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("scene ideas"),
        "says what is missing in plain words: {msg}"
    );
    assert!(msg.contains("force"), "says how to go on anyway: {msg}");

    // Forced, the production's qualification fails: no scene ideas.
    let (st, v) = s
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"force": true, "edit_window_secs": 0}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let prod = v["run_id"].as_str().unwrap().to_string();
    // The production run waits on its failed child and says so.
    let deadline = Instant::now() + Duration::from_secs(120);
    let blocked = loop {
        let r = s.get(&format!("/api/runs/{prod}")).await;
        if r["blocked_on"].is_object() {
            break r["blocked_on"].clone();
        }
        assert_ne!(r["run"]["status"], "completed", "{r}");
        assert!(Instant::now() < deadline, "never blocked: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(blocked["workflow"], "film.qualify", "{blocked}");
    assert_eq!(blocked["status"], "failed");
    let m = blocked["message"].as_str().unwrap();
    assert!(m.contains("no scenes") || m.contains("scene ideas"), "{m}");
    assert!(
        m.contains("retry") && m.contains("cancel"),
        "what to do: {m}"
    );
    let qual = blocked["run_id"].as_str().unwrap().to_string();

    (prod, qual)
}

/// Locked gather; reopening is an explicit, recorded action.
async fn reopening_is_explicit_and_recorded(s: &TestServer, slug: &str, prod: &str, qual: &str) {
    // Locked gather; reopening is an explicit, recorded action.
    let (st, v) = s
        .post(
            &format!("/api/projects/{slug}/gather/raw_scenes"),
            json!({"text": "late"}),
        )
        .await;
    assert_eq!(st, StatusCode::LOCKED, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("reopen"),
        "{v}"
    );
    let before = s
        .get(&format!(
            "/api/projects/{slug}/qualified/character_profiles"
        ))
        .await;
    assert_eq!(
        before["documents"].as_array().unwrap().len(),
        2,
        "the failed attempt wrote profiles"
    );
    let (st, r) = s
        .post(
            &format!("/api/projects/{slug}/reopen"),
            json!({"reason": "add the scene ideas"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["qualification_run"], qual);
    assert_eq!(
        r["cancelled_production_run"], prod,
        "the blocked production goes"
    );
    let (st, v) = s
        .post(&format!("/api/projects/{slug}/reopen"), json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "already open: {v}");
    let events = s.get(&format!("/api/projects/{slug}/events")).await;
    let ev = &events["events"][0];
    assert_eq!(ev["kind"], "gather_reopened", "{events}");
    assert_eq!(ev["details"]["reason"], "add the scene ideas");
    let p = s.get(&format!("/api/runs/{prod}")).await;
    assert_eq!(p["run"]["status"], "cancelled");
    let after = s
        .get(&format!(
            "/api/projects/{slug}/qualified/character_profiles"
        ))
        .await;
    assert!(after["documents"].as_array().unwrap().is_empty(), "{after}");
}

/// A film cancelled midway leaves nothing stranded (issue 25): the project and its scenes come
/// back to where the documented actions go on, with no run behind them nothing says
/// `generating`, and generating again through the documented route makes the film.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_film_is_generated_again() {
    let fake = slate_tests::fake_tasks::FakeTasks::start("tasks-key", 5.0).await;
    fake.hold_videos(true);
    let settings = ProviderSettings {
        tasks: Some(slate_activities::config::ServiceSettings {
            url: fake.url().to_string(),
            key: slate_activities::Secret::new("tasks-key"),
            timeout: Duration::from_secs(10),
        }),
        ..Default::default()
    };
    let s = TestServer::start(Db::Sqlite, settings, &[]).await;
    let slug = "halted";
    create_project(&s.api, slug, &mini_gather(3)).await;
    let (st, v) = s
        .post(
            &format!("/api/projects/{slug}/qualify"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let q = s
        .wait_run(v["run_id"].as_str().unwrap(), Duration::from_secs(300))
        .await;
    assert_eq!(q["run"]["status"], "completed", "{q}");
    let (st, v) = s
        .post(&format!("/api/projects/{slug}/generate"), json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let film = v["run_id"].as_str().unwrap().to_string();
    // Midway: a scene waits for its video.
    let deadline = Instant::now() + Duration::from_secs(120);
    while fake.video_submissions().is_empty() {
        assert!(Instant::now() < deadline, "no video was asked for");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = s.get(&format!("/api/projects/{slug}")).await;
    assert_eq!(p["project"]["status"], "generating", "{p}");

    let (st, v) = s
        .admin(
            Method::POST,
            &format!("/api/admin/runs/{film}/cancel"),
            Some(json!({"reason": "changed my mind"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Runs still stopping end cancelled; the project is then no longer generating, and no scene
    // is left in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = s.get(&format!("/api/runs?project={slug}&limit=100")).await;
        let live = runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                !["completed", "failed", "cancelled"].contains(&r["status"].as_str().unwrap())
            })
            .count();
        if live == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "runs still live: {runs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = s.get(&format!("/api/projects/{slug}")).await;
    assert_eq!(p["project"]["status"], "qualified", "{p}");
    let scenes = s.get(&format!("/api/projects/{slug}/scenes")).await;
    for sc in scenes["scenes"].as_array().unwrap() {
        assert!(
            ["ready_for_generation", "completed"].contains(&sc["status"].as_str().unwrap()),
            "{} left {}",
            sc["id"],
            sc["status"]
        );
    }

    // The documented way on: generate again, and the film is made.
    fake.hold_videos(false);
    let (st, v) = s
        .post(&format!("/api/projects/{slug}/generate"), json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let run = s
        .wait_run(v["run_id"].as_str().unwrap(), Duration::from_secs(300))
        .await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    let p = s.get(&format!("/api/projects/{slug}")).await;
    assert_eq!(p["project"]["status"], "completed", "{p}");
    assert!(p["project"]["final_video"].is_string(), "{p}");
    s.stop().await;
}

/// A parent follows its child (issue 25, decision 0025): the film of a production fails (its
/// stitch refused as invalid), the production fails with it; the person retries the film's
/// failed step, and the production and the project both end completed, with nothing before the
/// stitch paid again.
async fn a_retried_film_takes_its_production_along(db: Db) {
    let lf = slate_tests::fake_last_frame::FakeLastFrame::start(
        "lf-token",
        std::path::Path::new("/nonexistent"),
    )
    .await;
    lf.refuse_stitch(true);
    let settings = ProviderSettings::from_vars(slate_activities::config::ProviderVars {
        last_frame_token: Some("lf-token".into()),
        last_frame_url: Some(lf.url().into()),
        media_url: Some(lf.media_url()),
        ..Default::default()
    })
    .unwrap();
    let s = TestServer::start(db, settings, &[]).await;
    lf.serve_blobs_from(&s.data.join("blobs"));
    let slug = "follows";
    create_project(&s.api, slug, &mini_gather(2)).await;
    let (st, v) = s
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let prod = v["run_id"].as_str().unwrap().to_string();
    let failed = s.wait_run(&prod, Duration::from_secs(300)).await;
    assert_eq!(failed["run"]["status"], "failed", "{failed}");
    assert_eq!(failed["run"]["error"]["kind"], "child_failed", "{failed}");
    let film = failed["run"]["error"]["details"]["child"]
        .as_str()
        .unwrap()
        .to_string();
    let f = s.get(&format!("/api/runs/{film}")).await;
    assert_eq!(f["run"]["error"]["step"], "stitch", "{f}");
    let paid = |kind: &str| lf.submissions().iter().filter(|x| x.kind == kind).count();
    let frames = paid("process");
    assert!(frames > 0, "the scenes' last frames were taken");
    assert_eq!(paid("stitch"), 0, "the refused stitch queued nothing");

    // The person fixes the cause and retries the child, not the production.
    lf.refuse_stitch(false);
    let (st, v) = s
        .admin(
            Method::POST,
            &format!("/api/admin/runs/{film}/retry"),
            Some(json!({"step": "stitch", "reason": "clips fixed"})),
        )
        .await;
    assert!(st.is_success(), "{st} {v}");
    let done = s.wait_run(&prod, Duration::from_secs(300)).await;
    assert_eq!(done["run"]["status"], "completed", "{done}");
    assert_eq!(
        s.get(&format!("/api/runs/{film}")).await["run"]["status"],
        "completed"
    );
    let p = s.get(&format!("/api/projects/{slug}")).await;
    assert_eq!(p["project"]["status"], "completed", "{p}");
    assert!(p["project"]["final_video"].is_string(), "{p}");
    assert_eq!(paid("process"), frames, "no last frame taken twice");
    assert_eq!(paid("stitch"), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_film_takes_its_production_along_on_sqlite() {
    a_retried_film_takes_its_production_along(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_film_takes_its_production_along_on_postgres() {
    a_retried_film_takes_its_production_along(Db::Postgres).await;
}
