//! The film's sound (issue 27), measured on the example film made offline: music under the
//! dialogue-free scenes, at least 8 dB lower under every line than between lines, continuous
//! across the cuts inside a cue; ambience under every scene; no effect sounding past its
//! scene's end; the mix at -14 ± 1 LUFS integrated with a true peak at most -1 dBTP. Then a
//! person turns the music off for one scene and re-mixes: no image or video step runs, the
//! picture is the same frame for frame, and that scene's music stem is silent.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slate_activities::ProviderSettings;
use slate_activities::local::mixdown::measured;

const RATE: f64 = 48_000.0;

/// A blob written to `dir` under `name`.
async fn download(api: &Api, key: &str, dir: &Path, name: &str) -> PathBuf {
    let res = api
        .http
        .get(api.url(&format!("/media/{key}")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{key} downloads");
    let path = dir.join(name);
    std::fs::write(&path, res.bytes().await.unwrap()).unwrap();
    path
}

/// A sound file's first channel at 48 kHz.
fn samples(file: &Path) -> Vec<f32> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args([
            "-map",
            "0:a",
            "-af",
            "pan=mono|c0=c0",
            "-ar",
            "48000",
            "-f",
            "f32le",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Mean power of `x` over the seconds `a..b`.
fn power(x: &[f32], a: f64, b: f64) -> f64 {
    let (i, j) = (
        ((a * RATE) as usize).min(x.len()),
        ((b * RATE) as usize).min(x.len()),
    );
    if j <= i {
        return 0.0;
    }
    x[i..j].iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / (j - i) as f64
}

fn db(p: f64) -> f64 {
    10.0 * p.max(1e-20).log10()
}

/// The md5 of every decoded picture of a film.
fn frame_hashes(film: &Path) -> Vec<String> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(film)
        .args(["-map", "0:v", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

/// Where a voice is heard: the version's WebVTT cues, seconds.
async fn lines_of(api: &Api, slug: &str, version: i64) -> Vec<(f64, f64)> {
    let res = api
        .http
        .get(api.url(&format!(
            "/api/projects/{slug}/export?format=vtt&version={version}"
        )))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    let vtt = subtp::vtt::WebVtt::parse(&res.text().await.unwrap()).unwrap();
    vtt.blocks
        .iter()
        .filter_map(|b| match b {
            subtp::vtt::VttBlock::Que(c) => {
                let (a, b): (Duration, Duration) = (c.timings.start.into(), c.timings.end.into());
                Some((a.as_secs_f64(), b.as_secs_f64()))
            }
            _ => None,
        })
        .collect()
}

fn newest(film: &Value) -> Value {
    film["versions"][0].clone()
}

/// The stems of a version, downloaded: name → samples.
async fn stems(api: &Api, v: &Value, dir: &Path) -> std::collections::BTreeMap<String, Vec<f32>> {
    let mut out = std::collections::BTreeMap::new();
    for (name, key) in v["sound"]["stems"].as_object().expect("stems") {
        let file = download(
            api,
            key.as_str().unwrap(),
            dir,
            &format!("v{}-{name}.flac", v["version"]),
        )
        .await;
        out.insert(name.clone(), samples(&file));
    }
    out
}

async fn make_film(s: &Api, slug: &str, gather: &Value) {
    create_project(s, slug, gather).await;
    let (st, q) = s
        .post(
            &format!("/api/projects/{slug}/qualify"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{q}");
    let run = s
        .wait_run(q["run_id"].as_str().unwrap(), Duration::from_secs(600))
        .await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    let (st, v) = s
        .call(
            Method::PUT,
            &format!("/api/projects/{slug}/film/settings"),
            Some(json!({"auto_restitch": false})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, g) = s
        .post(&format!("/api/projects/{slug}/generate"), json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{g}");
    let run = s
        .wait_run(g["run_id"].as_str().unwrap(), Duration::from_secs(1200))
        .await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_film_is_mixed_and_remixed_without_its_picture() {
    let s = TestServer::start(Db::Sqlite, ProviderSettings::default(), &[]).await;
    let dir = temp_dir("sound");
    let slug = "lantern-sound";
    let gather: Value = serde_json::from_str(slate_workflows::examples::LANTERN_KEEPER).unwrap();
    make_film(&s, slug, &gather).await;
    let film = s.get(&format!("/api/projects/{slug}/film")).await;
    let v1 = newest(&film);
    let sound = &v1["sound"];
    for stem in ["dialogue", "music", "ambience", "effects"] {
        assert!(sound["stems"][stem].is_string(), "{stem} stem: {sound}");
    }
    let film_file_and_quiet = levels(&s, slug, &v1, &dir).await;
    remix(
        &s,
        slug,
        &v1,
        &film_file_and_quiet.0,
        &film_file_and_quiet.1,
        &dir,
    )
    .await;
    s.stop().await;
}

/// A real `slate serve` SIGKILLed as soon as a re-mix's `sound/mix` step starts: the next
/// process finishes it, the windows already rendered are not rendered again, and the sound is
/// the same as the first mix's (same settings, same stems, byte for byte).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remix_killed_mid_mix_finishes_with_the_same_sound() {
    let data = temp_dir("remix-kill");
    let (url, _) = database_url(Db::Sqlite, &data).await;
    let port = common::serve::free_port();
    let env: Vec<(String, String)> = [
        ("SLATE_DATA_DIR", data.display().to_string()),
        ("SLATE_DATABASE_URL", url),
        ("SLATE_LISTEN", format!("127.0.0.1:{port}")),
        ("SLATE_API_KEY", API_KEY.into()),
        ("SLATE_ADMIN_KEY", ADMIN_KEY.into()),
        ("SLATE_LEASE_SECS", "3".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let log = data.join("serve.log");
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        http: client(),
    };
    let first = common::serve::Serve::spawn(&env, &log);
    common::serve::healthy(&api, &log).await;
    let slug = "killed-mix";
    make_film(&api, slug, &mini_gather(2)).await;
    let v1 = newest(&api.get(&format!("/api/projects/{slug}/film")).await);
    let (st, r) = api
        .post(&format!("/api/projects/{slug}/film/remix"), json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{r}");
    let id = r["run_id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let d = api.get(&format!("/api/runs/{id}")).await;
        if d["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "sound/mix")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the mix never started: {d}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill();
    let _second = common::serve::Serve::spawn(&env, &log);
    common::serve::healthy(&api, &log).await;
    let run = api.wait_run(&id, Duration::from_secs(300)).await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    let attempts = |name: &str| {
        run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .unwrap_or_else(|| panic!("no step {name}: {run}"))["attempts"]
            .as_u64()
            .unwrap()
    };
    assert!(attempts("sound/mix") >= 2, "cut short and resumed");
    assert_eq!(attempts("sound/render/0"), 1, "a rendered window is kept");
    let v2 = newest(&api.get(&format!("/api/projects/{slug}/film")).await);
    assert_eq!(v2["version"], 2);
    let dir = temp_dir("remix-kill-files");
    for stem in ["music", "ambience", "dialogue"] {
        let a = download(
            &api,
            v1["sound"]["stems"][stem].as_str().unwrap(),
            &dir,
            &format!("1-{stem}.flac"),
        )
        .await;
        let b = download(
            &api,
            v2["sound"]["stems"][stem].as_str().unwrap(),
            &dir,
            &format!("2-{stem}.flac"),
        )
        .await;
        assert_eq!(
            samples(&a),
            samples(&b),
            "the {stem} stem is the same sound"
        );
    }
    let film = download(&api, v2["video"].as_str().unwrap(), &dir, "v2.mp4").await;
    let l = measured(&film).await.unwrap();
    assert!(
        (l.integrated_lufs + 14.0).abs() <= 1.0 && l.true_peak_dbtp <= -1.0,
        "{l:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&data);
}

/// Version 1's sound measured against the figures; the film downloaded and the
/// scenes without a line (start, end, scene).
async fn levels(s: &Api, slug: &str, v1: &Value, dir: &Path) -> (PathBuf, Vec<(f64, f64, Value)>) {
    let sound = &v1["sound"];
    let scenes = s.get(&format!("/api/projects/{slug}/scenes")).await["scenes"]
        .as_array()
        .unwrap()
        .clone();
    let film_file = download(s, v1["video"].as_str().unwrap(), dir, "v1.mp4").await;
    let st = stems(s, v1, dir).await;
    let (music, effects, ambience) = (&st["music"], &st["effects"], &st["ambience"]);
    let lines = lines_of(s, slug, v1["version"].as_i64().unwrap()).await;
    assert!(!lines.is_empty(), "the example has dialogue");
    let places: Vec<(f64, f64, &Value)> = v1["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let a = x["start"].as_f64().unwrap();
            let sc = scenes.iter().find(|s| s["id"] == x["scene_id"]).unwrap();
            (a, a + x["duration"].as_f64().unwrap(), sc)
        })
        .collect();

    // Music under the scenes with no line, above a floor of -40 dBFS (its RMS, 0.5 s in from
    // each cut); ambience under every scene above -60 dBFS.
    let quiet: Vec<&(f64, f64, &Value)> = places
        .iter()
        .filter(|(a, b, _)| lines.iter().all(|(x, y)| y <= a || x >= b))
        .collect();
    assert!(!quiet.is_empty(), "the example has scenes without a line");
    for (a, b, sc) in &quiet {
        let level = db(power(music, a + 0.5, b - 0.5));
        println!(
            "scene {} (no line): music {level:.1} dBFS",
            sc["scene_number"]
        );
        assert!(
            level > -40.0,
            "music under scene {}: {level:.1} dBFS",
            sc["scene_number"]
        );
    }
    for (a, b, sc) in &places {
        let level = db(power(ambience, a + 0.3, b - 0.3));
        assert!(
            level > -60.0,
            "ambience under scene {}: {level:.1} dBFS",
            sc["scene_number"]
        );
    }

    // The music under the lines against between them (0.3 s ramps left out), power averages.
    let ramp = 0.3;
    let length = v1["duration"].as_f64().unwrap();
    let (mut under, mut clear) = ((0.0, 0.0), (0.0, 0.0));
    let step = 0.05;
    let mut t = 0.0;
    while t + step < length - 1.0 {
        let inside = lines.iter().any(|(x, y)| t >= *x && t + step <= *y);
        let near = lines
            .iter()
            .any(|(x, y)| t + step > x - ramp - 0.05 && t < y + ramp + 0.05);
        let p = power(music, t, t + step);
        if inside {
            under = (under.0 + p, under.1 + 1.0);
        } else if !near {
            clear = (clear.0 + p, clear.1 + 1.0);
        }
        t += step;
    }
    let dip = db(clear.0 / clear.1) - db(under.0 / under.1);
    println!("music: {dip:.1} dB lower under the lines than between them");
    assert!(dip >= 8.0, "the music dips {dip:.1} dB under the lines");

    // No effect sounds past its scene's end (from 10 ms after the cut to the next effect).
    let placed = sound["effects"].as_array().unwrap();
    assert!(!placed.is_empty(), "the example has effects: {sound}");
    let starts: Vec<f64> = placed.iter().map(|e| e["at"].as_f64().unwrap()).collect();
    for e in placed {
        let end = e["scene_end"].as_f64().unwrap();
        let next = starts
            .iter()
            .copied()
            .filter(|t| *t >= end)
            .fold(length, f64::min);
        if next - end > 0.05 {
            let after = db(power(effects, end + 0.01, next));
            assert!(after < -80.0, "{e} sounds past its scene: {after:.1} dBFS");
        }
    }

    // A cue that spans cuts plays through them: at every cut inside a cue, away from a line,
    // the music's level 0.2 s before and after the cut is within 3 dB (a cue begun again at
    // the cut would fade in from silence).
    let mut inside_cuts = 0;
    for c in sound["cues"].as_array().unwrap() {
        let (a, b) = (c["start"].as_f64().unwrap(), c["end"].as_f64().unwrap());
        for (cut, _, _) in places
            .iter()
            .filter(|(x, _, _)| *x > a + 0.5 && *x < b - 0.5)
        {
            if lines.iter().any(|(x, y)| cut + 0.6 > *x && cut - 0.6 < *y) {
                continue;
            }
            let (before, after) = (
                db(power(music, cut - 0.2, *cut)),
                db(power(music, *cut, cut + 0.2)),
            );
            println!("cut at {cut:.2} s inside a cue: {before:.1} dB before, {after:.1} after");
            assert!(
                (before - after).abs() < 3.0,
                "the music at {cut}: {before} / {after}"
            );
            inside_cuts += 1;
        }
    }
    assert!(
        inside_cuts > 0,
        "a cue of the example spans a cut: {}",
        sound["cues"]
    );

    // The mix: -14 ± 1 LUFS integrated, true peak at most -1 dBTP.
    let l = measured(&film_file).await.unwrap();
    println!(
        "the mix: {:.1} LUFS integrated, {:.1} dBTP true peak",
        l.integrated_lufs, l.true_peak_dbtp
    );
    assert!((l.integrated_lufs + 14.0).abs() <= 1.0, "{l:?}");
    assert!(l.true_peak_dbtp <= -1.0, "{l:?}");

    let quiet = quiet
        .into_iter()
        .map(|(a, b, sc)| (*a, *b, (*sc).clone()))
        .collect();
    (film_file, quiet)
}

/// Settings refused and set; music off for a scene without a line; a re-mix: only sound
/// steps, the same picture, the scene silent in the music stem, the new loudness target.
async fn remix(
    s: &Api,
    slug: &str,
    v1: &Value,
    film_file: &Path,
    quiet: &[(f64, f64, Value)],
    dir: &Path,
) {
    // Settings out of range are refused with why, and change nothing.
    let (code, v) = s
        .call(
            Method::PUT,
            &format!("/api/projects/{slug}/film/sound"),
            Some(json!({"music_db": 40})),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(is_error(&v) && v.to_string().contains("music_db"), "{v}");
    let (code, v) = s
        .call(
            Method::PUT,
            &format!("/api/projects/{slug}/film/sound"),
            Some(json!({"loudness": {"integrated_lufs": -16.0, "true_peak_dbtp": -1.5}})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");

    // Music off for a scene with no line, then a re-mix.
    let (qa, qb, qs) = &quiet[0];
    let (code, v) = s
        .call(
            Method::PATCH,
            &format!("/api/scenes/{}", qs["id"].as_str().unwrap()),
            Some(json!({"version": qs["version"], "changes": {"music_off": true}})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let (code, r) = s
        .post(&format!("/api/projects/{slug}/film/remix"), json!({}))
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{r}");
    let run = s
        .wait_run(r["run_id"].as_str().unwrap(), Duration::from_secs(600))
        .await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    let names: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| ["load", "finish"].contains(n) || n.starts_with("sound/")),
        "a re-mix runs only the sound's steps: {names:?}"
    );
    let film = s.get(&format!("/api/projects/{slug}/film")).await;
    let v2 = newest(&film);
    assert_eq!(v2["version"], 2, "{film}");
    assert_eq!(film["out_of_date"], false, "{film}");
    assert_eq!(v2["scenes"], v1["scenes"], "the same takes");
    let film2 = download(s, v2["video"].as_str().unwrap(), dir, "v2.mp4").await;
    assert_eq!(
        frame_hashes(&film2),
        frame_hashes(film_file),
        "the picture is the same, frame for frame"
    );
    let st2 = stems(s, &v2, dir).await;
    let off = db(power(&st2["music"], *qa, *qb));
    println!(
        "music under scene {} turned off: {off:.1} dBFS",
        qs["scene_number"]
    );
    assert!(off < -90.0, "the scene's music is silent: {off:.1} dBFS");
    for (a, b, _) in quiet.iter().skip(1) {
        assert!(
            db(power(&st2["music"], a + 0.7, b - 0.7)) > -40.0,
            "music elsewhere plays on"
        );
    }
    let l2 = measured(&film2).await.unwrap();
    assert!(
        (l2.integrated_lufs + 16.0).abs() <= 1.0,
        "the new target: {l2:?}"
    );
    assert!(l2.true_peak_dbtp <= -1.5, "{l2:?}");
    // Every take is still the one it was: nothing was generated.
    for sc in s.get(&format!("/api/projects/{slug}/scenes")).await["scenes"]
        .as_array()
        .unwrap()
    {
        assert_eq!(
            sc["takes"].as_array().map_or(0, Vec::len),
            1,
            "{}",
            sc["id"]
        );
    }
}
