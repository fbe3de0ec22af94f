//! A patch used for real (issue 25): the scene's trim and voice mix became one ffmpeg pass
//! behind `ctx.patched("one-pass-cut")`. Films are started on the old build (two passes, as
//! builds before the patch: `SLATE_SCENE_ONE_PASS=0`), the server is SIGKILLed mid-film, and
//! the new build finishes them: scenes that had passed the patch point keep their two passes,
//! the rest take the one pass, none both, and the film lasts exactly as long as an undisturbed
//! one made on the new build alone. On SQLite and on Postgres.

mod common;

use std::time::{Duration, Instant};

use common::serve::{Serve, healthy};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use slate_activities::ProviderSettings;

fn film_seconds(path: &std::path::Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

async fn produce(api: &Api, slug: &str) -> String {
    create_project(api, slug, &mini_gather(4)).await;
    let (st, p) = api
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{p}");
    p["run_id"].as_str().unwrap().to_string()
}

async fn scene_runs(api: &Api, slug: &str) -> Vec<Value> {
    api.get(&format!(
        "/api/runs?project={slug}&workflow=film.scene&limit=500"
    ))
    .await["runs"]
        .as_array()
        .unwrap()
        .clone()
}

/// The film of the project, as a file.
async fn film_of(api: &Api, slug: &str, data: &std::path::Path) -> std::path::PathBuf {
    let p = api.get(&format!("/api/projects/{slug}")).await;
    let key = p["project"]["final_video"]
        .as_str()
        .expect("a film")
        .to_string();
    data.join("blobs").join(key)
}

/// How a scene run cut its clip: whether it took the one pass (its patch marker says so), and
/// which cutting steps it journaled (two passes, one pass).
async fn passes(api: &Api, run: &str) -> (bool, bool, bool) {
    let d = api.get(&format!("/api/runs/{run}")).await;
    let steps: Vec<String> = d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    let applied = d["events"].as_array().unwrap().iter().any(|e| {
        e["data"]["type"] == "patch"
            && e["data"]["name"] == "one-pass-cut"
            && e["data"]["applied"] == true
    });
    let two = steps
        .iter()
        .any(|s| s == "video/voices" || s == "video/trim");
    let one = steps.iter().any(|s| s == "video/cut");
    (applied, two, one)
}

async fn old_films_finish_on_the_new_build(db: Db) {
    // The reference: the same film made on the new build alone.
    let reference = TestServer::start(db, ProviderSettings::default(), &[]).await;
    let id = produce(&reference, "reference").await;
    let run = reference.wait_run(&id, Duration::from_secs(600)).await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    let want = film_seconds(&film_of(&reference, "reference", &reference.data).await);
    for r in scene_runs(&reference, "reference").await {
        let (applied, two, _) = passes(&reference, r["id"].as_str().unwrap()).await;
        assert!(applied && !two, "a new run takes the one pass");
    }
    reference.stop().await;

    let data = temp_dir("one-pass");
    let (url, pg) = database_url(db, &data).await;
    let port = serve::free_port();
    let env = |old: bool| -> Vec<(String, String)> {
        [
            ("SLATE_DATA_DIR", data.display().to_string()),
            ("SLATE_DATABASE_URL", url.clone()),
            ("SLATE_LISTEN", format!("127.0.0.1:{port}")),
            ("SLATE_API_KEY", API_KEY.into()),
            ("SLATE_ADMIN_KEY", ADMIN_KEY.into()),
            ("SLATE_LEASE_SECS", "3".into()),
            (
                "SLATE_SCENE_ONE_PASS",
                if old { "false" } else { "true" }.into(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    };
    let log = data.join("serve.log");
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        http: client(),
    };
    let old = Serve::spawn(&env(true), &log);
    healthy(&api, &log).await;
    let id = produce(&api, "upgrade").await;
    // Mid-film: some scenes done on the old build, some not.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let runs = scene_runs(&api, "upgrade").await;
        let done = runs.iter().filter(|r| r["status"] == "completed").count();
        if done >= 1 && done < runs.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no moment with some scenes done and some not"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    old.kill();
    let _new = Serve::spawn(&env(false), &log);
    healthy(&api, &log).await;
    let run = api.wait_run(&id, Duration::from_secs(600)).await;
    assert_eq!(
        run["run"]["status"],
        "completed",
        "{}\n{}",
        run["run"]["error"],
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let (mut two_pass, mut one_pass) = (0, 0);
    for r in scene_runs(&api, "upgrade").await {
        assert_eq!(r["status"], "completed", "{r}");
        let (applied, two, one) = passes(&api, r["id"].as_str().unwrap()).await;
        assert!(
            if applied { !two } else { !one },
            "scene run {} took the {} path but journaled two passes {two}, one pass {one}",
            r["id"],
            if applied { "new" } else { "old" }
        );
        if applied {
            one_pass += 1
        } else {
            two_pass += 1
        }
    }
    assert!(
        two_pass >= 1,
        "scenes past the patch point kept the old steps"
    );
    assert!(
        one_pass >= 1,
        "the scenes that had not reached it took the new step"
    );
    let got = film_seconds(&film_of(&api, "upgrade", &data).await);
    assert!(
        (got - want).abs() < 0.05,
        "the film lasts {got:.3} s, undisturbed {want:.3} s"
    );
    println!(
        "{db:?}: {two_pass} scenes on two passes, {one_pass} on one; film {got:.3} s (undisturbed {want:.3} s)"
    );
    if let Some(url) = pg {
        let _ = slate_engine::testing::drop_postgres_database(
            &slate_engine::testing::postgres_admin_url(),
            &url,
        )
        .await;
    }
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_films_finish_on_the_new_build_on_sqlite() {
    old_films_finish_on_the_new_build(Db::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_films_finish_on_the_new_build_on_postgres() {
    old_films_finish_on_the_new_build(Db::Postgres).await
}
