//! Cost before spending (issue 15): the estimate of a production, a budget below it refused
//! before anything runs, and the estimate against what a production on fake remote providers
//! (which report cost as fal, OpenRouter and the tasks service do) actually cost.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use slate_activities::{ProviderSettings, ProviderVars};
use slate_tests::fake_fal::FakeFal;
use slate_tests::fake_last_frame::FakeLastFrame;
use slate_tests::fake_openrouter::FakeOpenRouter;
use slate_tests::fake_tasks::FakeTasks;

fn line<'a>(e: &'a Value, stage: &str, kind: &str) -> Option<&'a Value> {
    e["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["stage"] == stage && l["kind"] == kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_studio_costs_nothing() {
    let s = TestServer::start(Db::Sqlite, ProviderSettings::default(), &[]).await;
    create_project(&s.api, "free", &mini_gather(3)).await;
    let (st, e) = s.api.post("/api/projects/free/estimate", json!(null)).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(e["basis"], "gather");
    assert!(e["scenes"].as_u64().unwrap() > 0, "{e}");
    assert_eq!(e["low_usd"], 0.0);
    assert_eq!(e["high_usd"], 0.0);
    assert!(
        e["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["provider"] == "local"),
        "{e}"
    );
    let (st, e) = s.api.post("/api/projects/nope/estimate", json!(null)).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{e}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_below_the_estimate_is_refused_and_the_estimate_holds_against_the_actual() {
    let fal = FakeFal::start("fal-key", 10, 5.0).await;
    let tasks = FakeTasks::start("tasks-key", 5.0).await;
    let lf = FakeLastFrame::start("lf-token", std::path::Path::new("/nonexistent")).await;
    let llm = FakeOpenRouter::start("or-key").await;
    let settings = ProviderSettings::from_vars(ProviderVars {
        openrouter_api_key: Some("or-key".into()),
        openrouter_url: Some(llm.url().into()),
        fal_key: Some("fal-key".into()),
        fal_queue_url: Some(fal.url().into()),
        fal_storage_url: Some(fal.url().into()),
        task_api_key: Some("tasks-key".into()),
        tasks_url: Some(tasks.url().into()),
        video_provider: Some("tasks".into()),
        last_frame_token: Some("lf-token".into()),
        last_frame_url: Some(lf.url().into()),
        media_url: Some(lf.media_url()),
        ..Default::default()
    })
    .unwrap();
    let s = TestServer::start(Db::Sqlite, settings, &[]).await;
    lf.serve_blobs_from(&s.data.join("blobs"));
    let slug = "priced";
    create_project(&s.api, slug, &mini_gather(3)).await;

    let (low, high, expected) = the_estimate_is_calls_times_prices(&s, slug).await;
    the_production_costs_what_was_estimated(&s, slug, &llm, (&fal, &tasks), (low, high, expected))
        .await;
    a_budget_stops_the_step_that_would_cross_it(&s).await;
    s.stop().await;
}

/// The estimate: every line is calls × unit price, the limits make the high, one clip per scene. Returns its low, high and expected dollars.
async fn the_estimate_is_calls_times_prices(s: &TestServer, slug: &str) -> (f64, f64, f64) {
    let (st, e) = s
        .api
        .post(&format!("/api/projects/{slug}/estimate"), json!(null))
        .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let (low, high, expected) = (
        e["low_usd"].as_f64().unwrap(),
        e["high_usd"].as_f64().unwrap(),
        e["expected_usd"].as_f64().unwrap(),
    );
    assert!(low > 0.0 && low <= expected && expected <= high, "{e}");
    // Every line is calls × unit price, and the limits make the high.
    for l in e["lines"].as_array().unwrap() {
        let unit = l["unit_usd"].as_f64().unwrap();
        assert!(
            (l["low_usd"].as_f64().unwrap() - l["units_low"].as_f64().unwrap() * unit).abs() < 1e-9
        );
        assert!(
            (l["high_usd"].as_f64().unwrap() - l["units_high"].as_f64().unwrap() * unit).abs()
                < 1e-9
        );
    }
    let images = line(&e, "scenes", "image_edit").expect("composite images");
    assert_eq!(images["provider"], "fal.ai");
    assert_eq!(
        images["units_high"].as_f64().unwrap(),
        images["units_low"].as_f64().unwrap() * 5.0,
        "5 attempts per layer at most"
    );
    let videos = line(&e, "scenes", "video").expect("videos");
    assert_eq!(videos["model"], "tasks:generate_video");
    assert_eq!(
        videos["units_low"].as_f64().unwrap(),
        e["scenes"].as_f64().unwrap(),
        "one clip per scene"
    );

    (low, high, expected)
}

/// A budget below the least the production can cost is refused; with enough it runs, and what it cost is within 25 % of the estimate, per kind of call too.
async fn the_production_costs_what_was_estimated(
    s: &TestServer,
    slug: &str,
    llm: &FakeOpenRouter,
    (fal, tasks): (&FakeFal, &FakeTasks),
    (low, high, expected): (f64, f64, f64),
) {
    // A budget below the least the production can cost is refused, with the figures, and
    // nothing starts.
    let (st, body) = s
        .api
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 0, "force": true, "budget_usd": low / 2.0}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "over_budget");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&format!("${:.2}", low)), "{msg}");
    assert!(msg.contains("estimate"), "{msg}");
    let runs = s.api.get(&format!("/api/runs?project={slug}")).await;
    assert!(runs["runs"].as_array().unwrap().is_empty(), "{runs}");
    assert!(tasks.submissions().is_empty() && fal.submissions().is_empty());

    // With enough budget it runs; what it cost, from the providers' own figures, is within
    // 25 % of the estimate.
    let (st, p) = s
        .api
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 0, "force": true, "budget_usd": high * 2.0}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{p}");
    let id = p["run_id"].as_str().unwrap();
    let run = s.api.wait_run(id, Duration::from_secs(400)).await;
    assert_eq!(run["run"]["status"], "completed", "{}", run["run"]["error"]);
    let actual = run["tree_cost_usd"].as_f64().expect("tree_cost_usd");
    println!("estimate low ${low:.4} expected ${expected:.4} high ${high:.4}; actual ${actual:.4}");
    assert!(
        actual >= low * 0.75 && actual <= high,
        "actual ${actual} outside [${low}, ${high}]"
    );
    assert!(
        (actual - expected).abs() <= 0.25 * actual,
        "expected ${expected:.4} is not within 25 % of the actual ${actual:.4}"
    );
    // Estimate against actual per kind of call: every dollar spent is found in a row, and
    // the clips cost what was estimated for them.
    let c = s.api.get(&format!("/api/projects/{slug}/costs")).await;
    let rows = c["comparison"].as_array().unwrap();
    let spent: f64 = rows.iter().map(|r| r["actual_usd"].as_f64().unwrap()).sum();
    assert!((spent - actual).abs() < 1e-6, "{spent} vs {actual}: {c}");
    assert!((c["actual_usd"].as_f64().unwrap() - actual).abs() < 1e-6);
    let video = rows
        .iter()
        .find(|r| r["stage"] == "scenes" && r["kind"] == "video")
        .unwrap();
    assert!(
        (video["actual_usd"].as_f64().unwrap() - video["estimate_expected_usd"].as_f64().unwrap())
            .abs()
            < 1e-6,
        "{video}"
    );
    // The language model's calls, priced by OpenRouter's `usage.cost` (tokens × the model's
    // price), against the per-call estimate.
    let llm_spent = llm.spent();
    let llm_rows: Vec<&Value> = rows.iter().filter(|r| r["kind"] == "llm").collect();
    let llm_actual: f64 = llm_rows
        .iter()
        .map(|r| r["actual_usd"].as_f64().unwrap())
        .sum();
    let llm_expected: f64 = llm_rows
        .iter()
        .map(|r| r["estimate_expected_usd"].as_f64().unwrap())
        .sum();
    println!(
        "language model: {} calls, ${llm_spent:.4} at the provider, ${llm_actual:.4} recorded, ${llm_expected:.4} estimated",
        llm.calls().len()
    );
    assert!(llm_spent > 0.0);
    assert!(
        (llm_actual - llm_spent).abs() < 1e-6,
        "every call's usage.cost is recorded: {llm_actual} vs {llm_spent}"
    );
    assert!(
        (llm_expected - llm_actual).abs() <= 0.25 * llm_actual,
        "the language model's estimate ${llm_expected:.4} is not within 25 % of ${llm_actual:.4}"
    );
    let images = rows
        .iter()
        .find(|r| r["stage"] == "scenes" && r["kind"] == "image")
        .unwrap();
    let a = images["actual_usd"].as_f64().unwrap();
    assert!(
        a >= images["estimate_low_usd"].as_f64().unwrap() - 1e-9
            && a <= images["estimate_high_usd"].as_f64().unwrap() + 1e-9,
        "{images}"
    );
}

/// A budget that runs out mid-film stops the step that would cross it, with `budget_exceeded`, and never more is spent than the budget.
async fn a_budget_stops_the_step_that_would_cross_it(s: &TestServer) {
    // A budget that runs out mid-film: the production is given exactly the estimate's low
    // bound, and the vision model's rejections (every 10th question) make it need more. The
    // step that would cross the budget does not start: it ends with `budget_exceeded` and
    // never more spent than the budget.
    let capped = "capped";
    create_project(&s.api, capped, &mini_gather(3)).await;
    let (_, e2) = s
        .api
        .post(&format!("/api/projects/{capped}/estimate"), json!(null))
        .await;
    let budget = e2["low_usd"].as_f64().unwrap();
    let (st, p) = s
        .api
        .post(
            &format!("/api/projects/{capped}/produce"),
            json!({"edit_window_secs": 0, "force": true, "budget_usd": budget}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{p}");
    let id = p["run_id"].as_str().unwrap();
    // The scene whose step would cross fails, and the production waits on it (blocked) for a
    // person to raise the budget and retry, or to cancel; a film-stage step that would cross
    // (the music) fails the film, and with it the production, which a person retries.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let (run, stop) = loop {
        let run = s.api.get(&format!("/api/runs/{id}")).await;
        if run["blocked_on"]["error"]["kind"] == "budget_exceeded" {
            let stop = run["blocked_on"]["error"].clone();
            break (run, stop);
        }
        let failed = &run["run"]["error"]["details"]["error"];
        if run["run"]["status"] == "failed" && failed["kind"] == "budget_exceeded" {
            let stop = failed.clone();
            break (run, stop);
        }
        assert!(
            run["run"]["status"] != "completed"
                && run["run"]["status"] != "failed"
                && std::time::Instant::now() < deadline,
            "the production was not stopped by its budget: {}",
            run["run"]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let spent = run["tree_cost_usd"].as_f64().unwrap();
    let stop = &stop;
    println!(
        "budget ${budget:.4}: spent ${spent:.4}; {}",
        stop["message"]
    );
    assert!(stop["step"].is_string(), "{stop}");
    assert!(
        stop["details"]["next_step_estimate_usd"].as_f64().unwrap() > 0.0,
        "{stop}"
    );
    assert!(
        spent <= budget + 1e-6,
        "spent ${spent} of a ${budget} budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_budget_bounds_every_run_of_the_project() {
    // Priced like fal.ai and the tasks service; nothing is called before the run starts.
    let settings = ProviderSettings::from_vars(ProviderVars {
        fal_key: Some("fal-key".into()),
        fal_queue_url: Some("http://127.0.0.1:9".into()),
        task_api_key: Some("tasks-key".into()),
        tasks_url: Some("http://127.0.0.1:9".into()),
        video_provider: Some("tasks".into()),
        ..Default::default()
    })
    .unwrap();
    let s = TestServer::start(Db::Postgres, settings, &[]).await;
    let slug = "bounded";
    create_project(&s.api, slug, &mini_gather(2)).await;
    let (_, e) = s
        .api
        .post(&format!("/api/projects/{slug}/estimate"), json!(null))
        .await;
    let low = e["low_usd"].as_f64().unwrap();

    let put = |usd: Value| {
        let api = &s.api;
        async move {
            api.call(
                reqwest::Method::PUT,
                &format!("/api/projects/{slug}/budget"),
                Some(json!({"usd": usd})),
            )
            .await
        }
    };
    let (st, b) = put(json!(-1)).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (st, b) = put(json!(low / 2.0)).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["spent_usd"], 0.0);
    let project = s.api.get(&format!("/api/projects/{slug}")).await;
    // Kept to the micro-dollar, as every sum of money.
    let kept = project["project"]["budget_usd"].as_f64().unwrap();
    assert!((kept - low / 2.0).abs() < 1e-6, "{project}");

    // The project's budget is below what the production costs at the least: refused, even
    // when the run itself asks for more.
    let (st, body) = s
        .api
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 0, "force": true, "budget_usd": low * 10.0}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "over_budget");

    // Enough: the run gets the lesser of what it asks and what the project has left.
    let (st, _) = put(json!(low * 3.0)).await;
    assert_eq!(st, StatusCode::OK);
    let (st, p) = s
        .api
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 600, "force": true, "budget_usd": low * 10.0}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{p}");
    let run = s
        .api
        .get(&format!("/api/runs/{}", p["run_id"].as_str().unwrap()))
        .await;
    assert!(
        (run["budget_usd"].as_f64().unwrap() - low * 3.0).abs() < 1e-6,
        "{}",
        run["budget_usd"]
    );
    let (st, _) = s
        .api
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/runs/{}/cancel", p["run_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    s.stop().await;
}
