//! The film's music from the remote providers (issue 27), against fakes that follow their
//! contracts: fal's ElevenLabs Music makes each cue (instrumental, its length in milliseconds,
//! billed per minute made) and the last-frame service's `music-track` mixes the sound under
//! the film. A real `slate serve` is SIGKILLed while a cue's submission is on its way (fal has
//! not taken it: the next server submits it) and again while the cue is being made (the next
//! server waits for the request it journaled instead of paying for another); the music's cost
//! is in the estimate and in the ledger, and the film's music is the provider's.

mod common;

use std::time::{Duration, Instant};

use common::serve::{Serve, free_port, healthy};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use slate_tests::fake_fal::FakeFal;
use slate_tests::fake_last_frame::FakeLastFrame;

/// The step a run is at, and whether a step named `name` has finished.
async fn step_done(api: &Api, run: &str, name: &str) -> bool {
    let d = api.get(&format!("/api/runs/{run}")).await;
    d["steps"].as_array().is_some_and(|s| {
        s.iter()
            .any(|x| x["name"] == name && x["status"] == "succeeded")
    })
}

/// The film run of a project that reached the music (`film.generate`).
async fn film_run(api: &Api, slug: &str) -> Option<String> {
    let runs = api
        .get(&format!("/api/runs?workflow=film.generate&project={slug}"))
        .await;
    runs["runs"].as_array()?.first()?["id"]
        .as_str()
        .map(str::to_string)
}

/// A `slate serve` on SQLite with fal and the last-frame service at their fakes, and its URL.
async fn serve_env(
    data: &std::path::Path,
    fal: &FakeFal,
    lf: &FakeLastFrame,
) -> (Vec<(String, String)>, String) {
    let (url, _) = database_url(Db::Sqlite, data).await;
    let port = free_port();
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
        ("LAST_FRAME_TOKEN", "lf-token".into()),
        ("SLATE_LAST_FRAME_URL", lf.url().into()),
        ("SLATE_MEDIA_URL", lf.media_url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(fal.env("fal-key"))
    .collect();
    (env, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_music_is_paid_once_across_a_kill_priced_and_mixed_by_the_service() {
    let data = temp_dir("remote-music");
    let blobs = data.join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let fal = FakeFal::start("fal-key", 0, 5.0).await;
    let lf = FakeLastFrame::start("lf-token", &blobs).await;
    fal.hold_music(true);
    let (env, base) = serve_env(&data, &fal, &lf).await;
    let log = data.join("serve.log");
    let api = Api {
        base,
        http: client(),
    };
    let first = Serve::spawn(&env, &log);
    healthy(&api, &log).await;
    let slug = "scored";
    create_project(&api, slug, &mini_gather(1)).await;

    // The estimate prices the music by the minute.
    let (st, e) = api
        .post(&format!("/api/projects/{slug}/estimate"), json!(null))
        .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let music = e["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "music")
        .unwrap_or_else(|| panic!("no music line: {e}"))
        .clone();
    assert_eq!(music["model"], "fal-ai/elevenlabs/music", "{music}");
    assert!((music["unit_usd"].as_f64().unwrap() - 0.80).abs() < 1e-9);
    let (m_low, m_high) = (
        music["units_low"].as_f64().unwrap(),
        music["units_high"].as_f64().unwrap(),
    );
    assert!(m_low > 0.0 && m_low <= m_high, "{music}");

    let (st, p) = api
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{p}");
    let pid = p["run_id"].as_str().unwrap().to_string();

    // Killed while the first cue's submission is on its way (fal has not taken it): nothing
    // is paid, and the next server submits it.
    fal.delay_music_submit(Some(Duration::from_secs(60)));
    let deadline = Instant::now() + Duration::from_secs(400);
    while fal.music_arrivals() == 0 {
        assert!(
            Instant::now() < deadline,
            "no cue was sent:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(first); // SIGKILL
    assert!(fal.music_submissions().is_empty());
    fal.delay_music_submit(None);
    let second = Serve::spawn(&env, &log);
    healthy(&api, &log).await;

    // Killed again while the cue is being made: its request is journaled, fal still works.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Some(run) = film_run(&api, slug).await
            && !fal.music_submissions().is_empty()
            && step_done(&api, &run, "sound/music/0/submit").await
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no cue was submitted:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(second); // SIGKILL
    assert!(
        fal.music_arrivals() >= 2,
        "the cue was sent again after the first kill"
    );
    let submitted = fal.music_submissions();
    fal.hold_music(false);
    let _third = Serve::spawn(&env, &log);
    healthy(&api, &log).await;
    let run = api.wait_run(&pid, Duration::from_secs(400)).await;
    assert_eq!(
        run["run"]["status"],
        "completed",
        "{run}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // Paid once: every cue submitted once, the kills' included.
    let all = fal.music_submissions();
    let film = api.get(&format!("/api/projects/{slug}/film")).await;
    let cues = film["versions"][0]["sound"]["cues"]
        .as_array()
        .unwrap()
        .len();
    let bodies: std::collections::BTreeSet<String> =
        all.iter().map(|s| s.body.to_string()).collect();
    assert!(
        cues >= 1 && all.len() == cues && bodies.len() == cues,
        "{cues} cues: {all:?}"
    );
    assert_eq!(
        film["versions"][0]["sound"]["music_model"], "fal-ai/elevenlabs/music",
        "{film}"
    );
    assert_eq!(all[0].request_id, submitted[0].request_id);
    for s in &all {
        assert_eq!(s.model, "fal-ai/elevenlabs/music");
        assert_eq!(s.body["force_instrumental"], true, "{:?}", s.body);
        let ms = s.body["music_length_ms"].as_u64().unwrap();
        assert!((10_000..=300_000).contains(&ms), "{ms}");
        let prompt = s.body["prompt"].as_str().unwrap();
        assert!(
            prompt.contains("Instrumental") && prompt.contains("bpm"),
            "{prompt}"
        );
    }

    ledger_has_the_music(&api, slug, &all, (m_low, m_high)).await;

    the_service_mixed_the_providers_music(&api, &lf, &film).await;

    a_remix_pays_nothing_again(&api, slug, &fal, all.len()).await;
}

/// The ledger has the music at fal's billed minutes x the price, within the estimate's
/// minutes (`estimated`: low and high).
async fn ledger_has_the_music(
    api: &Api,
    slug: &str,
    all: &[slate_tests::fake_fal::FalSubmission],
    (m_low, m_high): (f64, f64),
) {
    let minutes: f64 = all
        .iter()
        .map(|s| s.body["music_length_ms"].as_f64().unwrap() / 60_000.0)
        .sum();
    let c = api.get(&format!("/api/projects/{slug}/costs")).await;
    let row: Value = c["comparison"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["stage"] == "film" && r["kind"] == "music")
        .unwrap_or_else(|| panic!("no music row in the ledger: {c}"))
        .clone();
    let spent = row["actual_usd"].as_f64().unwrap();
    assert!(
        (spent - minutes * 0.80).abs() < 1e-6,
        "{spent} for {minutes} min: {row}"
    );
    assert!(
        // The scenes' lengths as made differ from those planned, as for every estimate.
        spent >= 0.75 * m_low * 0.80 && spent <= m_high * 0.80 + 1e-9,
        "spent ${spent} outside the estimate's [{m_low}, {m_high}] minutes at $0.80"
    );
}

/// The last-frame service mixed the film's sound, at the target loudness, and the music stem
/// is the provider's cue.
async fn the_service_mixed_the_providers_music(api: &Api, lf: &FakeLastFrame, film: &Value) {
    let mixes: Vec<_> = lf
        .submissions()
        .into_iter()
        .filter(|s| s.kind == "music-track")
        .collect();
    assert_eq!(mixes.len(), 1, "{mixes:?}");
    let v = &film["versions"][0];
    let loud = &v["sound"]["loudness"];
    assert!(
        (loud["integrated_lufs"].as_f64().unwrap() + 14.0).abs() <= 1.0
            && loud["true_peak_dbtp"].as_f64().unwrap() <= -1.0,
        "{loud}"
    );
    let dir = temp_dir("remote-music-files");
    let key = v["sound"]["stems"]["music"].as_str().unwrap();
    let res = api
        .http
        .get(api.url(&format!("/media/{key}")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let stem = dir.join("music.flac");
    std::fs::write(&stem, res.bytes().await.unwrap()).unwrap();
    // The fake's cue is a D minor chord: D (146.8 Hz) stands far above a note it lacks.
    let at = |hz: f64| tone(&stem, hz);
    assert!(
        at(146.83) > 10.0 * at(164.81),
        "D {} vs E {}",
        at(146.83),
        at(164.81)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A re-mix finds its cues made: nothing is paid for again.
async fn a_remix_pays_nothing_again(api: &Api, slug: &str, fal: &FakeFal, paid: usize) {
    let (st, r) = api
        .post(&format!("/api/projects/{slug}/film/remix"), json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{r}");
    let remix = api
        .wait_run(r["run_id"].as_str().unwrap(), Duration::from_secs(300))
        .await;
    assert_eq!(remix["run"]["status"], "completed", "{remix}");
    let names: Vec<&str> = remix["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["name"].as_str())
        .collect();
    assert!(names.contains(&"sound/music/0/kept"), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with("/submit")), "{names:?}");
    assert_eq!(fal.music_submissions().len(), paid);
    let film = api.get(&format!("/api/projects/{slug}/film")).await;
    assert_eq!(film["versions"][0]["version"], 2);
    assert_eq!(
        film["versions"][0]["sound"]["music_model"],
        "fal-ai/elevenlabs/music"
    );
}

/// The energy of `hz` in a sound file's first 4 s (Goertzel over its first channel).
fn tone(file: &std::path::Path, hz: f64) -> f64 {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args([
            "-t",
            "4",
            "-af",
            "pan=mono|c0=c0",
            "-ar",
            "48000",
            "-f",
            "f64le",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    let x: Vec<f64> = out
        .stdout
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let w = 2.0 * std::f64::consts::PI * hz / 48_000.0;
    let (mut s1, mut s2) = (0.0, 0.0);
    for v in &x {
        let s0 = v + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2
}

/// fal's music model through [`FalMusic`], against the fake: the request as ElevenLabs Music
/// takes it, the cue copied into our blobs at its length, its cost fal's billed minutes x the
/// price, and a cue it cannot make refused before anything is paid.
#[tokio::test]
async fn fal_music_follows_the_models_contract() {
    use slate_activities::MusicGen;
    use slate_activities::model::{JobState, MusicRequest};
    use slate_activities::remote::{FalClient, FalMusic};

    let fal = FakeFal::start("fal-key", 0, 5.0).await;
    let vars = fal.env("fal-key");
    let settings = slate_server::config::Config::load(None, |k| {
        vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .unwrap()
    .providers;
    let f = settings.fal.clone().unwrap();
    assert_eq!(f.music_model.as_deref(), Some("fal-ai/elevenlabs/music"));
    let dir = temp_dir("fal-music");
    let blobs = slate_activities::Blobs::local(dir.clone(), None).unwrap();
    let music = FalMusic::new(
        FalClient::new(f),
        blobs.clone(),
        None,
        "fal-ai/elevenlabs/music".into(),
    );
    let req = MusicRequest {
        project: "p".into(),
        prompt: "Instrumental film score cue, tense mood, in D minor, 92 bpm.".into(),
        seconds: 23.4,
        output_key: "p/music/cue.audio".into(),
    };
    let job = music.submit(&req).await.unwrap();
    let sub = &fal.music_submissions()[0];
    assert_eq!(sub.body["music_length_ms"], 24_000);
    assert_eq!(sub.body["force_instrumental"], true);
    let done = loop {
        let p = music.poll(&job, &req).await.unwrap();
        if let JobState::Completed { output } = p.value {
            break (output, p.spend);
        }
    };
    let (out, spend) = done;
    assert!(!spend.estimated);
    assert!((spend.units - 0.4).abs() < 1e-9, "{spend:?}");
    assert!((spend.usd - 0.4 * 0.80).abs() < 1e-9, "{spend:?}");
    let path = blobs.local_path(&out.audio).await.unwrap();
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let length: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(
        (length - 24.0).abs() < 0.2,
        "the cue is 24 s of audio: {length}"
    );

    // Longer than the model makes, or without words: refused here, nothing submitted.
    for bad in [
        MusicRequest {
            seconds: 301.0,
            ..req.clone()
        },
        MusicRequest {
            prompt: " ".into(),
            ..req.clone()
        },
    ] {
        let e = music.submit(&bad).await.unwrap_err();
        assert!(!e.retryable, "{e}");
    }
    assert_eq!(fal.music_submissions().len(), 1);
    // What the model refuses (a cue shorter than 10 s asked for as such) is a final 422.
    let client = FalClient::new(settings.fal.clone().unwrap());
    let e = client
        .submit(
            "fal-ai/elevenlabs/music",
            &json!({"prompt": "x", "music_length_ms": 5000}),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        !e.retryable && e.to_string().contains("music_length_ms"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
