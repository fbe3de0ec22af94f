//! The dashboard, end to end, in a real headless Chromium driven over WebDriver: sign in,
//! create a project, gather ideas, readiness, Generate with its countdown, qualification
//! followed live, scenes, a stale edit's 409, the film generated and played, a forced failure's
//! global error dismissed, and the failed step retried from the run page with the admin key;
//! the approval gate; a scene made again with its takes side by side, the film out of date,
//! re-stitched, a take picked again, an export downloaded and the dialogue as captions.
//!
//! Screenshots of every page are saved (not committed) under `$SLATE_SCREENSHOTS`, or a
//! temporary folder the test prints.
//!
//! (Over 600 lines on purpose: one browser session per test is the expensive part, so each test
//! walks a person's whole path through the pages; the helpers it shares with other tests live in
//! `common/`.)

mod common;

use std::time::Duration;

use common::webdriver::Browser;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slate_activities::ProviderSettings;
use slate_tests::fake_tasks::FakeTasks;

fn tasks_settings(fake: &FakeTasks) -> ProviderSettings {
    ProviderSettings {
        tasks: Some(slate_activities::config::ServiceSettings {
            url: fake.url().to_string(),
            key: slate_activities::Secret::new("tasks-key"),
            timeout: Duration::from_secs(10),
        }),
        ..Default::default()
    }
}

const SLUG: &str = "kite-over-harbor";
const LONG: Duration = Duration::from_secs(180);

async fn sign_in(b: &Browser, base: &str, key: &str, then: &str) {
    b.goto(&format!("{base}{then}")).await;
    let url = b.url().await;
    assert!(url.contains("/login?next="), "{url}");
    let field = b.find("input[name=key]").await;
    b.fill(&field, key).await;
    b.click(&b.find("form button[type=submit]").await).await;
    b.wait_js(
        "the page after signing in",
        &format!(
            "return location.pathname + location.search === {};",
            json!(then)
        ),
        Duration::from_secs(10),
    )
    .await;
}

async fn sign_out(b: &Browser) {
    b.click(&b.find("header form button").await).await;
    b.find("input[name=key]").await;
}

/// Marks the page; [`still_marked`] is true only if it was never reloaded since.
async fn mark(b: &Browser) {
    b.js("window.__slate_marker = 42; return true;", json!([]))
        .await;
}

/// Wait until the page was loaded again (an action's `reload`), after [`mark`].
async fn reloaded(b: &Browser) {
    b.wait_js(
        "the page to load again",
        "return window.__slate_marker !== 42 && document.readyState === 'complete';",
        Duration::from_secs(15),
    )
    .await;
}

async fn still_marked(b: &Browser) -> bool {
    b.js("return window.__slate_marker === 42;", json!([]))
        .await
        == json!(true)
}

async fn toast(b: &Browser) -> String {
    b.wait_js(
        "a message",
        "return document.getElementById('toast').className.includes('show');",
        Duration::from_secs(10),
    )
    .await;
    // Its text as set, whether or not its fade-in has finished.
    b.js(
        "return document.getElementById('toast').textContent;",
        json!([]),
    )
    .await
    .as_str()
    .unwrap_or("")
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_makes_a_film_in_the_dashboard() {
    let _turn = ONE_BROWSER.lock().await;
    if let Ok(f) = std::env::var("SLATE_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(f))
            .try_init();
    }
    let fake = FakeTasks::start("tasks-key", 5.0).await;
    let s = TestServer::start(
        Db::Sqlite,
        tasks_settings(&fake),
        &[("SLATE_EDIT_WINDOW_SECS", "60")],
    )
    .await;
    let base = s.base.clone();
    let shots = std::env::var("SLATE_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| temp_dir("dashboard-shots"));
    println!("screenshots: {}", shots.display());
    let b = Browser::start(shots.clone()).await;

    no_session_no_pages_then_a_viewer_signs_in(&s, &b, &base).await;
    a_project_is_created_and_its_ideas_gathered(&s, &b, &base).await;
    a_file_is_imported_and_every_department_is_ready(&s, &b, &shots).await;
    qualification_counts_down_and_is_followed_live(&b, &base).await;
    let (scenes, id) = scenes_are_listed_and_a_stale_edit_meets_its_conflict(&s, &b, &base).await;
    the_film_is_generated_followed_and_played(&s, &b, &base, &scenes).await;
    let run =
        a_failure_is_shown_dismissed_and_retried_by_the_admin(&s, &b, &base, &fake, &id).await;
    every_page_shows_and_the_screenplay_downloads(&s, &b, &base, &id).await;
    providers_templates_and_not_found_pages(&b, &base).await;
    pages_fit_a_phone(&b, &base, &run).await;
    drop(b);
    s.stop().await;
}

/// Nothing without a session; a viewer signs in with the API key; a change from the browser's session needs its CSRF token.
async fn no_session_no_pages_then_a_viewer_signs_in(s: &TestServer, b: &Browser, base: &str) {
    // --- Nothing without a session.
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for page in ["/", "/runs", "/projects/x", "/templates"] {
        let r = raw.get(format!("{base}{page}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{page}");
        let to = r.headers()["location"].to_str().unwrap();
        assert!(to.starts_with("/login?next="), "{page} → {to}");
    }
    let r = raw.get(format!("{base}/ui/live")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = raw
        .get(format!("{base}/api/projects"))
        .header("cookie", "slate_session=v1.admin.99999999999.x.00")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a forged cookie");

    b.goto(&format!("{base}/login")).await;
    b.fill(&b.find("input[name=key]").await, "not-the-key")
        .await;
    b.click(&b.find("form button[type=submit]").await).await;
    let t = b.text(&b.find(".alert").await).await;
    assert!(t.contains("not valid"), "{t}");
    b.shot("login").await;

    // --- Sign in with the API key: a viewer, without admin actions.
    sign_in(b, base, API_KEY, "/").await;
    assert_eq!(b.text(&b.find("header .who").await).await, "viewer");

    // The session works for the API from this browser, and a change needs its CSRF token.
    let cookie = b.cookie("slate_session").await.expect("a session cookie");
    let r = raw
        .post(format!("{base}/api/projects"))
        .header("cookie", &cookie)
        .json(&json!({"slug": "csrf-probe", "title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "csrf");
    let (st, _) = s.call(Method::GET, "/api/projects/csrf-probe", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "refused means nothing was made");
}

/// A project created in the browser; ideas gathered through the API and typed, edited and deleted on its page.
async fn a_project_is_created_and_its_ideas_gathered(s: &TestServer, b: &Browser, base: &str) {
    // --- Create a project.
    b.shot("projects-empty").await;
    b.fill(&b.find("input[name=title]").await, "A Kite Over the Harbor")
        .await;
    b.fill(&b.find("input[name=slug]").await, SLUG).await;
    b.click(&b.find("form[data-api='POST /api/projects'] button").await)
        .await;
    b.wait_js(
        "the project's page",
        &format!("return location.pathname === '/projects/{SLUG}';"),
        Duration::from_secs(10),
    )
    .await;

    // --- Gather ideas: the bundled example's through the API, one character typed here.
    let example: Value = serde_json::from_str(slate_workflows::examples::LANTERN_KEEPER).unwrap();
    let mut typed = None;
    for (coll, docs) in example["collections"].as_object().unwrap() {
        for d in docs.as_array().unwrap() {
            if coll == "raw_characters" && typed.is_none() {
                typed = Some(d.clone());
                continue;
            }
            let (st, v) = s
                .post(&format!("/api/projects/{SLUG}/gather/{coll}"), d.clone())
                .await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
        }
    }
    let (st, _) = s
        .post(
            &format!("/api/projects/{SLUG}/gather/raw_notes"),
            json!({"id": "scratch", "text": "to be deleted"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    b.goto(&format!("{base}/projects/{SLUG}")).await;
    let typed = typed.unwrap();
    let add = b
        .find(&format!(
            "form[data-api='POST /api/projects/{SLUG}/gather/raw_characters'] textarea"
        ))
        .await;
    b.set_value(&add, &typed.to_string()).await;
    mark(b).await;
    b.click(
        &b.find(&format!(
            "form[data-api='POST /api/projects/{SLUG}/gather/raw_characters'] button"
        ))
        .await,
    )
    .await;
    let name = typed["name"].as_str().unwrap();
    reloaded(b).await;
    b.wait_js(
        "the typed character",
        &format!(
            "return document.getElementById('gather').innerHTML.includes({});",
            json!(name)
        ),
        Duration::from_secs(10),
    )
    .await;
    let docs = s
        .get(&format!("/api/projects/{SLUG}/gather/raw_characters"))
        .await;
    assert!(
        docs["documents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["body"]["name"] == typed["name"]),
        "the typed document was stored"
    );
    // Edit one and delete another.
    let scratch = format!("PUT /api/projects/{SLUG}/gather/raw_notes/scratch");
    let area = b
        .find(&format!("form[data-api='{scratch}'] textarea"))
        .await;
    b.set_value(&area, r#"{"text": "edited in the dashboard"}"#)
        .await;
    mark(b).await;
    b.click(
        &b.find(&format!("form[data-api='{scratch}'] button[type=submit]"))
            .await,
    )
    .await;
    let scratch_text = || async {
        let notes = s
            .get(&format!("/api/projects/{SLUG}/gather/raw_notes"))
            .await;
        notes["documents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == "scratch")
            .map(|d| d["body"]["text"].clone())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while scratch_text().await != Some(json!("edited in the dashboard")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the edit was not saved"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Saving reloads the page: wait for the fresh one before the next click.
    reloaded(b).await;
    b.wait_js(
        "the page with the edit",
        "return document.getElementById('gather').innerHTML.includes('edited in the dashboard');",
        Duration::from_secs(10),
    )
    .await;
    b.click(
        &b.find(&format!(
            "button[data-api='DELETE /api/projects/{SLUG}/gather/raw_notes/scratch']"
        ))
        .await,
    )
    .await;
    let asked = b.accept_dialog().await;
    assert!(asked.contains("Delete"), "{asked}");
    b.wait_js(
        "the deletion",
        "return !document.getElementById('gather').innerHTML.includes('edited in the dashboard');",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(scratch_text().await, None, "deleted");
}

/// A file imported from the project page (then taken out again, for the film); readiness.
async fn a_file_is_imported_and_every_department_is_ready(
    s: &TestServer,
    b: &Browser,
    shots: &std::path::Path,
) {
    // --- A file imported from the project page (then taken out again, for the film below).
    let notes = shots.join("tone-notes.md");
    std::fs::write(&notes, "Tone: imported from a file, quiet and warm.").unwrap();
    let input = b.find("form.upload input[type=file]").await;
    b.fill(&input, &notes.display().to_string()).await;
    b.click(&b.find("form.upload button[type=submit]").await)
        .await;
    b.wait_js(
        "the imported file in the gather",
        "return document.getElementById('gather').innerHTML.includes('imported from a file');",
        Duration::from_secs(10),
    )
    .await;
    let imported = s
        .get(&format!("/api/projects/{SLUG}/gather/tone_notes"))
        .await;
    let id = imported["documents"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(imported["documents"][0]["body"]["file"], "tone-notes.md");
    let (st, v) = s
        .call(
            Method::DELETE,
            &format!("/api/projects/{SLUG}/gather/tone_notes/{id}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let _ = std::fs::remove_file(&notes);

    // --- Readiness.
    let ready = b
        .js(
            "return [...document.querySelectorAll('#readiness .department')].map(d => d.dataset.ready);",
            json!([]),
        )
        .await;
    let ready = ready.as_array().unwrap();
    assert!(ready.len() >= 5, "{ready:?}");
    assert!(ready.iter().all(|r| r == "true"), "{ready:?}");
    b.shot("project").await;
}

/// Generate Qualified Data: the popup counts down; Continue starts now; qualification followed live.
async fn qualification_counts_down_and_is_followed_live(b: &Browser, base: &str) {
    // --- Generate Qualified Data: the popup counts down; Continue starts now.
    b.click(&b.find("#generate").await).await;
    b.find(".modal .countdown").await;
    let seconds = |t: String| t.trim_end_matches(" s").parse::<i64>().unwrap_or(-1);
    b.wait_js(
        "the countdown",
        "return /\\d+ s/.test(document.querySelector('.modal .countdown').textContent);",
        Duration::from_secs(5),
    )
    .await;
    let first = seconds(b.text_of(".modal .countdown").await);
    assert!((50..=60).contains(&first), "{first}");
    b.shot("edit-window").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let later = seconds(b.text_of(".modal .countdown").await);
    assert!(later < first && later > 0, "{first} then {later}");
    // Durable: the same window in a fresh load of the page.
    b.goto(&format!("{base}/projects/{SLUG}")).await;
    b.find(".modal .countdown").await;
    b.click(&b.find(".modal button:not(.secondary)").await)
        .await;
    b.wait_js(
        "the qualification page",
        &format!("return location.pathname === '/projects/{SLUG}/qualification';"),
        Duration::from_secs(10),
    )
    .await;

    // --- Qualification, followed live without reloading.
    mark(b).await;
    b.wait_js(
        "every phase done",
        "return document.querySelectorAll('ol.phases li.done').length === 4;",
        LONG,
    )
    .await;
    b.wait_js(
        "the characters' sheets",
        "return document.querySelectorAll('#characters img.master').length === 3 \
         && document.querySelectorAll('#characters .views img').length === 18;",
        Duration::from_secs(20),
    )
    .await;
    assert!(still_marked(b).await, "the page was reloaded");
    b.shot("qualification").await;
}

/// The scenes; a value that does not fit, then a stale edit meets the 409 and sees theirs. Returns the scenes and the first one's id.
async fn scenes_are_listed_and_a_stale_edit_meets_its_conflict(
    s: &TestServer,
    b: &Browser,
    base: &str,
) -> (Vec<Value>, String) {
    // --- Scenes.
    b.click(&b.find(&format!("a[href='/projects/{SLUG}/scenes']")).await)
        .await;
    let scenes = s.get(&format!("/api/projects/{SLUG}/scenes")).await["scenes"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!scenes.is_empty());
    b.wait_js(
        "the shot cards",
        &format!(
            "return document.querySelectorAll('a.shot').length === {};",
            scenes.len()
        ),
        Duration::from_secs(10),
    )
    .await;
    b.shot("scenes-planned").await;

    // --- A scene: a value that does not fit, then a stale edit meets the 409 and sees theirs.
    let sc = &scenes[0];
    let id = sc["id"].as_str().unwrap();
    b.goto(&format!("{base}/scenes/{id}")).await;
    let duration = b.find("#scene-form input[name=expected_duration]").await;
    b.fill(&duration, "9").await;
    b.click(&b.find("#scene-form button[type=submit]").await)
        .await;
    let msg = toast(b).await;
    assert!(msg.contains("duration"), "{msg}");
    b.goto(&format!("{base}/scenes/{id}")).await;
    let effect = b
        .find("#scene-form input[name=dramatic_effect], #scene-form textarea[name=dramatic_effect]")
        .await;
    b.fill(&effect, "a held breath (ours)").await;
    let current = s.get(&format!("/api/scenes/{id}")).await;
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("/api/scenes/{id}"),
            Some(json!({"version": current["version"], "changes": {"dramatic_effect": "a sudden gust (theirs)"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    b.click(&b.find("#scene-form button[type=submit]").await)
        .await;
    let msg = toast(b).await;
    assert!(msg.contains("version"), "{msg}");
    b.wait_js(
        "their values",
        "const c = document.querySelector('#scene-form .conflict'); return !c.hidden && c.textContent.includes('a sudden gust (theirs)');",
        Duration::from_secs(10),
    )
    .await;
    b.shot("scene-conflict").await;
    b.click(&b.find("#scene-form button[type=submit]").await)
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.get(&format!("/api/scenes/{id}")).await["dramatic_effect"] != "a held breath (ours)" {
        assert!(
            std::time::Instant::now() < deadline,
            "saving again did not keep ours"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.wait_js(
        "the page with the saved edit",
        "const c = document.querySelector('#scene-form .conflict'); return c && c.hidden;",
        Duration::from_secs(10),
    )
    .await;

    let id = id.to_string();
    (scenes, id)
}

/// Generate the film, follow the scenes live, play it and seek.
async fn the_film_is_generated_followed_and_played(
    s: &TestServer,
    b: &Browser,
    base: &str,
    scenes: &[Value],
) {
    // --- Generate the film, follow the scenes live, play it.
    b.goto(&format!("{base}/projects/{SLUG}")).await;
    b.click(
        &b.find(&format!(
            "button[data-api='POST /api/projects/{SLUG}/generate']"
        ))
        .await,
    )
    .await;
    let asked = b.accept_dialog().await;
    assert!(asked.contains("paid"), "{asked}");
    b.wait_js(
        "the scenes page",
        &format!("return location.pathname === '/projects/{SLUG}/scenes';"),
        Duration::from_secs(10),
    )
    .await;
    mark(b).await;
    b.wait_js(
        "every scene completed",
        &format!(
            "return document.querySelectorAll('a.shot[data-status=completed]').length === {};",
            scenes.len()
        ),
        LONG,
    )
    .await;
    assert!(still_marked(b).await, "the page was reloaded");
    b.shot("scenes").await;
    let deadline = std::time::Instant::now() + LONG;
    while s.get(&format!("/api/projects/{SLUG}")).await["project"]["final_video"].is_null() {
        assert!(std::time::Instant::now() < deadline, "no film");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.click(&b.find(&format!("a[href='/projects/{SLUG}/film']")).await)
        .await;
    b.find("#player[data-film]").await;
    let segments = b.all("#timeline .timeline .segment").await;
    assert_eq!(segments.len(), scenes.len());
    let played = b
        .js_async(
            "const done = arguments[arguments.length - 1];
             const v = document.getElementById('player');
             v.muted = true;
             v.addEventListener('playing', () => done(true), {once: true});
             v.play().catch(e => done('play() failed: ' + e.message));
             setTimeout(() => done('no playing event: readyState ' + v.readyState + ', error ' + (v.error && v.error.code)), 20000);",
        )
        .await;
    assert_eq!(played, json!(true), "the film plays");
    let seek = b
        .js_async(
            "const done = arguments[arguments.length - 1];
             const v = document.getElementById('player');
             const to = v.duration / 2;
             v.addEventListener('seeked', () => done(Math.abs(v.currentTime - to) < 1.0 ? true : 'at ' + v.currentTime + ' not ' + to), {once: true});
             v.currentTime = to;
             setTimeout(() => done('no seeked event'), 15000);",
        )
        .await;
    assert_eq!(seek, json!(true), "seeking works");
    b.shot("film").await;
}

/// A forced failure: the video model refuses; a global error appears, live, and is dismissed; a viewer sees no admin action; the admin retries the step. Returns the run.
async fn a_failure_is_shown_dismissed_and_retried_by_the_admin(
    s: &TestServer,
    b: &Browser,
    base: &str,
    fake: &FakeTasks,
    id: &str,
) -> String {
    // --- A forced failure: the video model refuses; a global error appears, live.
    fake.reject_videos(true);
    b.goto(&format!("{base}/scenes/{id}")).await;
    mark(b).await;
    b.click(
        &b.find(&format!(
            "button[data-api='POST /api/scenes/{id}/generate']"
        ))
        .await,
    )
    .await;
    b.accept_dialog().await;
    b.wait_js(
        "the global error",
        "return document.querySelectorAll('#errors .banner').length > 0;",
        LONG,
    )
    .await;
    let banner = b.text_of("#errors .banner").await;
    assert!(banner.contains("content_policy"), "{banner}");
    b.shot("error").await;
    b.click(&b.find("#errors .banner button").await).await;
    b.wait_js(
        "the dismissed error gone",
        "return document.querySelectorAll('#errors .banner').length === 0;",
        Duration::from_secs(10),
    )
    .await;
    let open_errors = s.get("/api/errors").await;
    assert_eq!(
        open_errors["errors"].as_array().map(|a| a.len()),
        Some(0),
        "{open_errors}"
    );

    // --- The failed run: a viewer sees no admin action; the admin retries the step.
    let failed = s
        .get(&format!("/api/runs?status=failed&project={SLUG}"))
        .await;
    let run = failed["runs"][0]["id"].as_str().unwrap().to_string();
    b.goto(&format!("{base}/runs/{run}")).await;
    assert!(b.all(".actions.admin").await.is_empty());
    assert!(b.all("td.row-actions button").await.is_empty());
    sign_out(b).await;
    sign_in(b, base, ADMIN_KEY, &format!("/runs/{run}")).await;
    assert_eq!(b.text(&b.find("header .who").await).await, "admin");
    fake.reject_videos(false);
    mark(b).await;
    let retry = b.find("td.row-actions button[data-api$='/retry']").await;
    b.click(&retry).await;
    let asked = b.accept_dialog().await;
    assert!(asked.contains("fresh attempt budget"), "{asked}");
    b.wait_js(
        "the run completed",
        "return document.querySelector('h1 .badge').textContent.trim() === 'completed';",
        LONG,
    )
    .await;
    b.shot("run").await;
    let done = s.get(&format!("/api/runs/{run}")).await;
    assert_eq!(done["run"]["status"], "completed");

    run
}

/// Every other page at laptop width; the qualified screenplay downloads from the story page.
async fn every_page_shows_and_the_screenplay_downloads(
    s: &TestServer,
    b: &Browser,
    base: &str,
    id: &str,
) {
    // --- Every other page, at laptop and phone widths, and readable failures.
    for (name, path) in [
        ("projects", "/".to_string()),
        ("story", format!("/projects/{SLUG}/story")),
        ("runs", "/runs".to_string()),
        ("runs-failed", "/runs?status=failed".to_string()),
        ("templates", "/templates".to_string()),
        ("scene", format!("/scenes/{id}")),
    ] {
        b.goto(&format!("{base}{path}")).await;
        b.find("main").await;
        b.shot(name).await;
    }
    // The qualified screenplay downloads from the story page, as Fountain and as a PDF.
    b.goto(&format!("{base}/projects/{SLUG}/story")).await;
    for format in ["fountain", "pdf"] {
        let css = format!("p.screenplay-downloads a[href$='format={format}']");
        b.find(&css).await;
        let href = b
            .js(
                "return document.querySelector(arguments[0]).getAttribute('href');",
                json!([css]),
            )
            .await;
        let href = href.as_str().unwrap().to_string();
        let res = s
            .http
            .get(format!("{base}{href}"))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{href}");
        let body = res.bytes().await.unwrap();
        assert!(
            if format == "pdf" {
                body.starts_with(b"%PDF")
            } else {
                body.starts_with(b"Title: ")
            },
            "{href}"
        );
    }
}

/// The providers' page with the doctor's checks, a template preview, and readable not-found pages.
async fn providers_templates_and_not_found_pages(b: &Browser, base: &str) {
    // The providers' page: who serves each activity, and the doctor's checks on request.
    b.goto(&format!("{base}/system")).await;
    let t = b.page_text().await;
    assert!(
        t.contains("tasks service") && t.contains("local storyboard renderer"),
        "{t}"
    );
    assert!(t.contains("should work"), "{t}");
    b.click(&b.find("a.button[href='/system?online=true']").await)
        .await;
    b.wait_js(
        "the online checks",
        "return document.querySelector('h2').textContent.includes('All checks');",
        Duration::from_secs(30),
    )
    .await;
    let t = b.page_text().await;
    assert!(t.contains("the tasks service accepted TASK_API_KEY"), "{t}");
    assert!(t.contains("came back whole"), "the media round trip: {t}");
    b.shot("providers").await;
    b.goto(&format!("{base}/templates")).await;
    b.click(&b.find("details.template summary").await).await;
    for input in b.all("details.template[open] form.preview input").await {
        b.fill(&input, "the harbor at dusk").await;
    }
    b.click(&b.find("details.template form.preview button").await)
        .await;
    b.wait_js(
        "a rendered preview",
        "return document.querySelector('details.template pre.preview').textContent.includes('the harbor at dusk');",
        Duration::from_secs(10),
    )
    .await;
    b.goto(&format!("{base}/projects/no-such-film")).await;
    let t = b.page_text().await;
    assert!(t.contains("Not found") && t.contains("no-such-film"), "{t}");
    b.goto(&format!("{base}/runs/not-a-run")).await;
    let t = b.page_text().await;
    assert!(t.contains("not a run id"), "{t}");
    b.shot("not-found").await;
}

/// The pages at a phone's width.
async fn pages_fit_a_phone(b: &Browser, base: &str, run: &str) {
    b.resize(390, 844).await;
    for (name, path) in [
        ("phone-scenes", format!("/projects/{SLUG}/scenes")),
        ("phone-project", format!("/projects/{SLUG}")),
        ("phone-run", format!("/runs/{run}")),
    ] {
        b.goto(&format!("{base}{path}")).await;
        b.find("main").await;
        let fits = b
            .js(
                "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
                json!([]),
            )
            .await;
        assert_eq!(fits, json!(true), "{path} is wider than a phone");
        b.shot(name).await;
    }
}

/// The two browser tests take turns: each drives its own Chromium, and the first one's
/// countdown is timed.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The approval gate from the scenes page: a composite waits with its picture; a rejection
/// with a note brings a new round; Approve lets it go; the switch and approve-all let the rest
/// through, and the film completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_approves_and_rejects_composites_in_the_dashboard() {
    let _turn = ONE_BROWSER.lock().await;
    let s = TestServer::start(Db::Sqlite, ProviderSettings::default(), &[]).await;
    let base = s.base.clone();
    let slug = "gated-harbor";
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
    let production = p["run_id"].as_str().unwrap().to_string();

    let shots = std::env::var("SLATE_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| temp_dir("dashboard-shots"));
    let b = Browser::start(shots).await;
    sign_in(&b, &base, API_KEY, &format!("/projects/{slug}/scenes")).await;
    b.wait_js(
        "a composite awaiting approval",
        "return !!document.querySelector('#approvals article.approval[data-round=\"1\"] img');",
        LONG,
    )
    .await;
    let scene = b
        .js(
            "return document.querySelector('#approvals article.approval').dataset.scene;",
            json!([]),
        )
        .await
        .as_str()
        .unwrap()
        .to_string();
    assert!(b.text_of("#approvals").await.contains("Scene 1"));
    b.shot("approval").await;

    // The film's run page names the scene in flight (waiting at the gate) with a link to it.
    let films = s.api.get("/api/runs?workflow=film.generate").await;
    let film = films["runs"][0]["id"].as_str().unwrap().to_string();
    b.goto(&format!("{base}/runs/{film}")).await;
    let flying = b.text_of("#scenes-in-flight").await;
    assert!(
        flying.contains(" in flight: ") && flying.contains("scene 1 (waiting)"),
        "{flying}"
    );
    b.shot("film-run-in-flight").await;
    b.goto(&format!("{base}/projects/{slug}/scenes")).await;
    b.wait_js(
        "the composite again",
        "return !!document.querySelector('#approvals article.approval[data-round=\"1\"] img');",
        LONG,
    )
    .await;

    // Reject with a note: the card comes back at round 2 with the note under it.
    let note = "the kite should be red, not blue";
    let area = b.find("#approvals form.reject textarea[name=note]").await;
    b.fill(&area, note).await;
    b.click(&b.find("#approvals form.reject button[type=submit]").await)
        .await;
    b.wait_js(
        "round 2",
        &format!(
            "return !!document.querySelector('#approvals article.approval[data-scene={}][data-round=\"2\"]');",
            json!(scene)
        ),
        LONG,
    )
    .await;
    assert!(b.text_of("#approvals .rejections").await.contains(note));
    b.shot("approval-round-2").await;

    // Approve it; the next scene comes to the gate.
    b.click(&b.find("#approvals button.approve").await).await;
    b.wait_js(
        "the next scene at the gate",
        &format!(
            "const a = document.querySelector('#approvals article.approval'); return !!a && a.dataset.scene !== {};",
            json!(scene)
        ),
        LONG,
    )
    .await;
    // Stop asking for the scenes after it, then approve what waits.
    mark(&b).await;
    b.click(&b.find("#approval-switch").await).await;
    reloaded(&b).await;
    assert!(b.text_of("#approvals").await.contains("Off"));
    mark(&b).await;
    b.click(&b.find("#approve-all").await).await;
    let asked = b.accept_dialog().await;
    assert!(asked.contains("Approve 1 composite"), "{asked}");
    reloaded(&b).await;

    let run = s.api.wait_run(&production, LONG).await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    let sc = s.api.get(&format!("/api/scenes/{scene}")).await;
    let history = sc["approval"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{sc}");
    assert_eq!(history[0]["state"], "rejected");
    assert_eq!(history[0]["note"], note);
    assert_eq!(history[1]["state"], "approved");
    b.wait_js(
        "nothing awaiting",
        "return !document.querySelector('#approvals article.approval');",
        Duration::from_secs(10),
    )
    .await;
    s.stop().await;
}

/// Qualify `slug` from the example's first raw scenes and make its film over the API, with the
/// automatic re-stitch off (the test re-stitches by hand). Its scenes.
async fn a_film_over_the_api(s: &TestServer, slug: &str) -> Vec<Value> {
    create_project(&s.api, slug, &mini_gather(2)).await;
    let (st, q) = s
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{q}");
    let (st, v) = s
        .call(
            Method::PUT,
            &format!("/api/projects/{slug}/film/settings"),
            Some(json!({"auto_restitch": false})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let run = s
        .wait_run(q["run_id"].as_str().unwrap(), Duration::from_secs(600))
        .await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    s.get(&format!("/api/projects/{slug}/scenes")).await["scenes"]
        .as_array()
        .unwrap()
        .clone()
}

/// Issue 26 in the browser: a scene made again shows its takes side by side; the film page
/// says the film is out of date and names the scene; Re-stitch makes version 2, listed with
/// version 1; picking take 1 again is followed by the banner; an export downloads; the player
/// shows the dialogue as captions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_remakes_a_scene_and_restitches_the_film_in_the_dashboard() {
    let _turn = ONE_BROWSER.lock().await;
    let s = TestServer::start(Db::Sqlite, ProviderSettings::default(), &[]).await;
    let base = s.base.clone();
    let slug = "iterated-harbor";
    let scenes = a_film_over_the_api(&s, slug).await;
    let id = scenes[2]["id"].as_str().unwrap().to_string();
    let shots = std::env::var("SLATE_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| temp_dir("dashboard-shots"));
    let b = Browser::start(shots).await;
    sign_in(&b, &base, API_KEY, &format!("/scenes/{id}")).await;
    // One take; generate the scene again from its page.
    assert_eq!(b.all("#takes .take").await.len(), 1);
    b.click(
        &b.find(&format!(
            "button[data-api='POST /api/scenes/{id}/generate']"
        ))
        .await,
    )
    .await;
    let asked = b.accept_dialog().await;
    assert!(asked.contains("paid"), "{asked}");
    b.wait_js(
        "two takes side by side, the new one in the film",
        "return document.querySelectorAll('#takes .take').length === 2 &&
                document.querySelector('#takes .take[data-take=\"2\"]').dataset.current === 'true' &&
                !!document.querySelector('#takes .take[data-take=\"1\"] video');",
        LONG,
    )
    .await;
    b.shot("takes").await;
    // The film is out of date, naming scene 3; Re-stitch makes version 2.
    b.goto(&format!("{base}/projects/{slug}/film")).await;
    let banner = b.text_of("#film-state .banner.stale").await;
    assert!(
        banner.contains("out of date") && banner.contains("scene 3"),
        "{banner}"
    );
    assert_eq!(b.all("#versions tr.version").await.len(), 1);
    b.shot("film-out-of-date").await;
    b.click(&b.find("#restitch").await).await;
    b.wait_js(
        "version 2 listed, the banner gone",
        "return document.querySelectorAll('#versions tr.version').length === 2 &&
                !document.querySelector('#film-state .banner.stale');",
        LONG,
    )
    .await;
    let newest = b.text_of("#versions tr.version").await;
    assert!(
        newest.contains("Version 2") && newest.contains("3:2"),
        "{newest}"
    );
    b.shot("film-versions").await;
    // Take 1 again, from the scene page: the film page says so.
    b.goto(&format!("{base}/scenes/{id}")).await;
    b.click(&b.find("#takes .take[data-take='1'] button[data-api]").await)
        .await;
    b.wait_js(
        "take 1 in the film",
        "return document.querySelector('#takes .take[data-take=\"1\"]')?.dataset.current === 'true';",
        Duration::from_secs(15),
    )
    .await;
    b.goto(&format!("{base}/projects/{slug}/film")).await;
    let banner = b.text_of("#film-state .banner.stale").await;
    assert!(
        banner.contains("take 2 in the film, take 1 now"),
        "{banner}"
    );
    // An export downloads with the session; the player has the dialogue as captions.
    let got = b
        .js_async(
            "const done = arguments[arguments.length - 1];
             const a = document.querySelector('a.export[data-format=otio]');
             fetch(a.href, {credentials: 'same-origin'}).then(r => r.text().then(t => {
               try { const j = JSON.parse(t); done(r.status + ' ' + j.OTIO_SCHEMA + ' ' + (r.headers.get('content-disposition') || '')); }
               catch (e) { done(r.status + ' not JSON: ' + t.slice(0, 200)); }
             })).catch(e => done('fetch failed: ' + e.message));",
        )
        .await;
    let got = got.as_str().unwrap_or("").to_string();
    assert!(got.starts_with("200 Timeline.1 attachment"), "{got}");
    let cues = b
        .js_async(
            "const done = arguments[arguments.length - 1];
             const t = document.querySelector('#player track');
             if (!t) { done('no captions track'); return; }
             t.track.mode = 'showing';
             const check = () => t.readyState === 2 ? done(t.track.cues.length) :
               t.readyState === 3 ? done('the captions did not load') : setTimeout(check, 100);
             check();",
        )
        .await;
    assert!(cues.as_u64().is_some_and(|n| n > 0), "captions: {cues}");
    b.shot("film-captions").await;
    the_sound_plays_solo_and_is_remixed(&b, &base, slug).await;
    a_character_version_is_priced_then_made(
        &b,
        &base,
        slug,
        scenes[2]["scene_number"].as_i64().unwrap(),
    )
    .await;
    drop(b);
    s.stop().await;
}

/// The film's sound on its page: the cues on a timeline, each stem loads in its own player
/// (solo), and the music turned off then re-mixed gives a version with no music.
async fn the_sound_plays_solo_and_is_remixed(b: &Browser, base: &str, slug: &str) {
    b.goto(&format!("{base}/projects/{slug}/film")).await;
    assert!(!b.all("#sound .timeline.cues .segment").await.is_empty());
    let stems = b.all("#sound tr.stem").await.len();
    assert!(stems >= 3, "dialogue, music, ambience at least: {stems}");
    let music = b
        .js_async(
            "const done = arguments[arguments.length - 1];
             const a = document.querySelector('#sound tr.stem[data-stem=music] audio');
             if (!a) { done('no music player'); return; }
             a.preload = 'auto'; a.load();
             const check = () => a.readyState >= 1 ? done(a.duration) :
               a.error ? done('the music stem did not load: ' + a.error.code) : setTimeout(check, 100);
             check();",
        )
        .await;
    assert!(
        music.as_f64().is_some_and(|d| d > 5.0),
        "the music stem plays: {music}"
    );
    b.js(
        "document.getElementById('sound').scrollIntoView();",
        json!([]),
    )
    .await;
    b.shot("film-sound").await;
    let versions = b.all("#versions tr.version").await.len();
    b.click(&b.find("#sound-settings input[name=music]").await)
        .await;
    // The loudness target in its own fields (not JSON): broadcast-like -20 LUFS.
    b.set_value(
        &b.find("#sound-settings input[name=integrated_lufs]").await,
        "-20",
    )
    .await;
    b.click(&b.find("#sound-settings button[type=submit]").await)
        .await;
    b.wait_js(
        "the music off and the target, saved",
        "return document.querySelector('#sound-settings input[name=music]')?.checked === false &&
                document.querySelector('#sound-settings input[name=integrated_lufs]')?.value === '-20' &&
                document.querySelector('#sound-settings input[name=true_peak_dbtp]')?.value === '-1';",
        Duration::from_secs(15),
    )
    .await;
    b.click(&b.find("#remix").await).await;
    b.wait_js(
        "a re-mixed version with no music",
        &format!(
            "return document.querySelectorAll('#versions tr.version').length === {} &&
                    document.querySelector('#sound')?.textContent.includes('No music in this version');",
            versions + 1
        ),
        LONG,
    )
    .await;
    assert!(b.all("#sound tr.stem[data-stem=music]").await.is_empty());
    // Mixed to the new target (within 1 LU, as measured).
    let said = b.text_of("#sound p.muted").await;
    let lufs: f64 = said
        .split("mixed to ")
        .nth(1)
        .and_then(|t| t.split(" LUFS").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no loudness said: {said}"));
    assert!((lufs + 20.0).abs() <= 1.0, "{said}");
}

/// A character's new version from a scene on, priced, then made, from the story page.
async fn a_character_version_is_priced_then_made(b: &Browser, base: &str, slug: &str, from: i64) {
    b.goto(&format!("{base}/projects/{slug}/story")).await;
    b.click(&b.find("#characters details.new-version summary").await)
        .await;
    let form = "#characters details.new-version form";
    b.fill(
        &b.find(&format!("{form} input[name=from_scene]")).await,
        &from.to_string(),
    )
    .await;
    b.fill(
        &b.find(&format!("{form} textarea[name=appearance]")).await,
        "a bandaged arm and a torn coat",
    )
    .await;
    b.click(&b.find(&format!("{form} button.secondary")).await)
        .await;
    b.wait_js(
        "the price",
        "return (document.querySelector('#characters details.new-version pre')?.textContent || '').startsWith('$');",
        Duration::from_secs(10),
    )
    .await;
    mark(b).await;
    b.click(&b.find(&format!("{form} button[data-submit-api]")).await)
        .await;
    let asked = b.accept_dialog().await;
    assert!(asked.contains("paid"), "{asked}");
    reloaded(b).await;
    b.wait_js(
        "the new version's sheet",
        &format!("return [...document.querySelectorAll('#characters h4')].some(h => h.textContent.includes('from scene {from}'));"),
        LONG,
    )
    .await;
    b.shot("character-version").await;
}
