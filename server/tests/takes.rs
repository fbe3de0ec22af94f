//! Film-making is iteration (issue 26): a scene made again is a new take and the first is kept;
//! the film says it is out of date and which scene changed; a re-stitch is a new film version
//! that keeps every other scene's frames and leaves version 1 downloadable; the scene after the
//! remade one in its chain is flagged "continuity changed"; choosing take 1 again gives version
//! 1's frames back; the automatic re-stitch follows a choice on its own; the exports are read by
//! OpenTimelineIO's own readers and the subtitles line up with the voices heard in the film. A
//! character version is priced before it is made and drawn from its scene on.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slate_activities::ProviderSettings;

/// Wait until the film satisfies `ok`; the film.
async fn film_until(api: &Api, slug: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let v = api.get(&format!("/api/projects/{slug}/film")).await;
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "never {what}: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A blob's bytes (404 → None).
async fn media(api: &Api, key: &str) -> Option<Vec<u8>> {
    let res = api
        .http
        .get(api.url(&format!("/media/{key}")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    (res.status() == StatusCode::OK).then_some(res.bytes().await.unwrap().to_vec())
}

/// The md5 of every decoded picture of a film, in order.
fn frame_hashes(film: &Path) -> Vec<String> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(film)
        .args(["-map", "0:v", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

/// Version `v`'s film, written to `dir`.
async fn film_file(api: &Api, version: &Value, dir: &Path) -> std::path::PathBuf {
    let key = version["video"].as_str().unwrap();
    let bytes = media(api, key).await.expect("the version downloads");
    let path = dir.join(format!("v{}.mp4", version["version"]));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Version `v`'s voices alone (its dialogue stem; the film itself for a version whose sound
/// was not mixed), written to `dir`.
async fn dialogue_file(api: &Api, version: &Value, dir: &Path) -> std::path::PathBuf {
    let Some(key) = version["sound"]["stems"]["dialogue"].as_str() else {
        return film_file(api, version, dir).await;
    };
    let bytes = media(api, key).await.expect("the dialogue stem downloads");
    let path = dir.join(format!("v{}-dialogue.flac", version["version"]));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Pieces of film kept for re-stitching under `dir`.
fn pieces_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// The frames of version `v` that show scene `id` alone (no crossfade), as film frame numbers.
fn solo_frames(v: &Value, id: &str) -> std::ops::Range<usize> {
    let scenes = v["scenes"].as_array().unwrap();
    let i = scenes.iter().position(|s| s["scene_id"] == id).unwrap();
    let f = |t: f64| (t * 24.0).round() as usize;
    let s = &scenes[i];
    let start = s["start"].as_f64().unwrap();
    let end = start + s["duration"].as_f64().unwrap();
    // A neighbour's crossfade (at most 0.5 s) is left out on each side.
    let from = if i == 0 { f(start) } else { f(start + 0.5) };
    let to = match scenes.get(i + 1) {
        Some(n) => f(n["start"].as_f64().unwrap()).min(f(end)),
        None => f(end),
    };
    from..to.max(from)
}

fn version(film: &Value, n: i64) -> Value {
    film["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == n)
        .unwrap_or_else(|| panic!("no version {n}: {film}"))
        .clone()
}

fn take_of(v: &Value, id: &str) -> Value {
    v["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scene_id"] == id)
        .unwrap()["take"]
        .clone()
}

/// Qualify a short film, put the scene after scene 3 in scene 3's chain (same place), make
/// the film with automatic re-stitch off. The scenes.
async fn first_film(s: &Api, slug: &str) -> Vec<Value> {
    let scenes = qualified(s, slug).await;
    assert!(
        scenes.len() >= 4,
        "a film of at least four scenes: {}",
        scenes.len()
    );
    let (s3, s4) = (&scenes[2], &scenes[3]);
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("/api/scenes/{}", s4["id"].as_str().unwrap()),
            Some(json!({"version": s4["version"], "changes": {
                "location": s3["location"], "video_mode": "image_to_video"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
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
        .wait_run(g["run_id"].as_str().unwrap(), Duration::from_secs(600))
        .await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    s.get(&format!("/api/projects/{slug}/scenes")).await["scenes"]
        .as_array()
        .unwrap()
        .clone()
}

/// Remake scene 3 with an edit (closer, a new line); its run completed.
async fn remake(s: &Api, scene: &Value) {
    let id = scene["id"].as_str().unwrap();
    let shot = if scene["camera_shot"] == "close_up" {
        "wide"
    } else {
        "close_up"
    };
    let mut dialogue = scene["dialogue"].as_array().cloned().unwrap_or_default();
    let who = scene["characters_present"][0].clone();
    dialogue.push(json!({"character": who, "line": "Keep the light burning until morning."}));
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("/api/scenes/{id}"),
            Some(json!({"version": scene["version"], "changes": {
                "camera_shot": shot, "dialogue": dialogue}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // An edit the pipeline owns, or outside the 3-7 s rule, is refused with why.
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("/api/scenes/{id}"),
            Some(json!({"version": v["version"], "changes": {"expected_duration": 9.0}})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(is_error(&v) && v.to_string().contains("3 and 7"), "{v}");
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("/api/scenes/{id}"),
            Some(json!({"version": scene["version"].as_i64().unwrap() + 1, "changes": {"takes": []}})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (st, g) = s
        .post(&format!("/api/scenes/{id}/generate"), json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{g}");
    let run = s
        .wait_run(g["run_id"].as_str().unwrap(), Duration::from_secs(600))
        .await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
}

/// Takes, versions, continuity, the choice of a take, the automatic re-stitch.
async fn iterate(db: Db) {
    let s = TestServer::start(db, ProviderSettings::default(), &[]).await;
    let slug = "takes";
    let scenes = first_film(&s, slug).await;
    let (s3, s4) = (scenes[2].clone(), scenes[3].clone());
    let (id3, id4) = (s3["id"].as_str().unwrap(), s4["id"].as_str().unwrap());
    let film = s.get(&format!("/api/projects/{slug}/film")).await;
    assert_eq!(film["version"], 1, "{film}");
    assert_eq!(film["out_of_date"], false, "{film}");
    assert!(film["continuity_changed"].as_array().unwrap().is_empty());
    let v1 = version(&film, 1);
    let take1 = s.get(&format!("/api/scenes/{id3}/takes")).await;
    let clip1 = take1["takes"][0]["video"].as_str().unwrap().to_string();
    let bytes1 = media(&s, &clip1).await.expect("take 1's clip");

    remake(&s, &s3).await;
    a_second_take_keeps_the_first_and_the_film_is_stale(&s, slug, (id3, id4), &clip1, &bytes1)
        .await;
    let dir = temp_dir("takes-films");
    let pieces = s.data.join(format!("blobs/projects/{slug}/films/pieces"));
    let first = pieces_in(&pieces);
    let h1 = a_restitch_keeps_every_other_scenes_frames(&s, slug, &v1, id3, &dir).await;
    // Only the pieces scene 3 is in were cut again: its own, the crossfades on either side,
    // and the last (the film's fade-out) when the film's length moved.
    let made = pieces_in(&pieces) - first;
    println!("pieces: {first} cut for version 1, {made} for version 2");
    assert!(
        made <= 4 && (first == 0 || made < first),
        "{made} of {first}"
    );
    take_one_again_gives_version_one_back(&s, slug, id3, &h1, &dir).await;

    // Automatic: on, a choice of take is followed by a new version on its own.
    // Automatic: on, a choice of take is followed by a new version on its own.
    let (st, _) = s
        .call(
            Method::PUT,
            &format!("/api/projects/{slug}/film/settings"),
            Some(json!({"auto_restitch": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, t) = s
        .call(
            Method::PUT,
            &format!("/api/scenes/{id3}/take"),
            Some(json!({"take": 2})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let film = film_until(&s, slug, "an automatic version 4", |f| {
        f["version"] == 4 && f["out_of_date"] == false
    })
    .await;
    assert_eq!(take_of(&version(&film, 4), id3), 2);
    exports_are_read_by_their_reference_readers(&s, slug, &version(&film, 4), &dir).await;
    the_chain_is_made_again_from_the_new_frame(&s, slug, id3, id4).await;
    let _ = std::fs::remove_dir_all(&dir);
    s.stop().await;
}

/// Two takes, the first intact (its clip and last frame where they were, unchanged); the film
/// out of date naming scene 3; the scene after it in its chain follows a frame that is no longer
/// scene 3's; nothing was remade on its own.
async fn a_second_take_keeps_the_first_and_the_film_is_stale(
    s: &Api,
    slug: &str,
    (id3, id4): (&str, &str),
    clip1: &str,
    bytes1: &[u8],
) {
    let takes = s.get(&format!("/api/scenes/{id3}/takes")).await;
    let list = takes["takes"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{takes}");
    assert_eq!(takes["current_take"], 2);
    assert_eq!(list[0]["video"], clip1);
    assert_eq!(
        media(s, clip1).await.as_deref(),
        Some(bytes1),
        "take 1 untouched"
    );
    assert!(
        media(s, list[0]["last_frame"].as_str().unwrap())
            .await
            .is_some()
    );
    assert_ne!(list[1]["video"], list[0]["video"]);
    assert!(list[1]["changed"]["camera_shot"].is_string(), "{takes}");
    assert!(list[1]["changed"]["dialogue"].is_array(), "{takes}");
    // Out of date, naming scene 3; the scene after it in its chain follows a frame that is
    // no longer scene 3's. Nothing was remade on its own.
    let film = s.get(&format!("/api/projects/{slug}/film")).await;
    assert_eq!(film["out_of_date"], true, "{film}");
    let changed: Vec<&Value> = film["changed"].as_array().unwrap().iter().collect();
    assert_eq!(changed.len(), 1, "{film}");
    assert_eq!(changed[0]["scene_id"], id3);
    assert_eq!(
        (
            changed[0]["film_take"].clone(),
            changed[0]["current_take"].clone()
        ),
        (json!(1), json!(2))
    );
    let flags = film["continuity_changed"].as_array().unwrap();
    assert_eq!(flags.len(), 1, "{film}");
    assert_eq!(flags[0]["scene_id"], id4);
    assert_eq!(
        s.get(&format!("/api/scenes/{id4}/takes")).await["takes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// Re-stitch: version 2 has the new take of scene 3 and every other scene's frames; version 1
/// still downloads. Version 1's frame hashes.
async fn a_restitch_keeps_every_other_scenes_frames(
    s: &Api,
    slug: &str,
    v1: &Value,
    id3: &str,
    dir: &Path,
) -> Vec<String> {
    // Re-stitch: version 2 has the new take of scene 3 and every other scene's frames.
    let (st, r) = s
        .post(&format!("/api/projects/{slug}/film"), json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{r}");
    let run = s
        .wait_run(r["run_id"].as_str().unwrap(), Duration::from_secs(300))
        .await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    version_two_has_the_new_take_and_every_other_frame(s, slug, v1, id3, dir).await
}

/// Version 2 has scene 3's new take and every other scene's frames of version 1, which still
/// downloads. Version 1's frame hashes.
async fn version_two_has_the_new_take_and_every_other_frame(
    s: &Api,
    slug: &str,
    v1: &Value,
    id3: &str,
    dir: &Path,
) -> Vec<String> {
    let film = s.get(&format!("/api/projects/{slug}/film")).await;
    assert_eq!(
        (film["version"].clone(), film["out_of_date"].clone()),
        (json!(2), json!(false)),
        "{film}"
    );
    let v2 = version(&film, 2);
    assert_eq!(take_of(&v2, id3), 2);
    assert_eq!(take_of(v1, id3), 1);
    let (f1, f2) = (film_file(s, v1, dir).await, film_file(s, &v2, dir).await);
    let (h1, h2) = (frame_hashes(&f1), frame_hashes(&f2));
    for sc in v1["scenes"].as_array().unwrap() {
        let id = sc["scene_id"].as_str().unwrap();
        let (a, b) = (solo_frames(v1, id), solo_frames(&v2, id));
        if id == id3 {
            assert_ne!(h1[a], h2[b], "scene 3's segment is the new clip");
        } else {
            assert_eq!(take_of(v1, id), take_of(&v2, id));
            assert_eq!(
                h1[a.clone()],
                h2[b],
                "scene {} kept its frames",
                sc["scene_number"]
            );
        }
    }
    assert!(
        media(s, v1["video"].as_str().unwrap()).await.is_some(),
        "version 1 still downloads"
    );

    h1
}

/// Take 1 again: the continuity flag goes, and a re-stitch gives version 1's frames; takes that
/// cannot be chosen are refused with why.
async fn take_one_again_gives_version_one_back(
    s: &Api,
    slug: &str,
    id3: &str,
    h1: &[String],
    dir: &Path,
) {
    // Take 1 again: the flag goes, and a re-stitch gives version 1's frames.
    let (st, t) = s
        .call(
            Method::PUT,
            &format!("/api/scenes/{id3}/take"),
            Some(json!({"take": 1})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    assert_eq!(t["current_take"], 1);
    for bad in [
        json!({"take": 9}),
        json!({"take": 0}),
        json!({"take": "one"}),
    ] {
        let (st, v) = s
            .call(
                Method::PUT,
                &format!("/api/scenes/{id3}/take"),
                Some(bad.clone()),
            )
            .await;
        assert!(st.is_client_error() && is_error(&v), "{bad}: {st} {v}");
    }
    let film = s.get(&format!("/api/projects/{slug}/film")).await;
    assert_eq!(film["out_of_date"], true);
    assert!(
        film["continuity_changed"].as_array().unwrap().is_empty(),
        "{film}"
    );
    let (st, r) = s
        .post(&format!("/api/projects/{slug}/film"), json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{r}");
    s.wait_run(r["run_id"].as_str().unwrap(), Duration::from_secs(300))
        .await;
    let film = film_until(s, slug, "version 3", |f| f["version"] == 3).await;
    let v3 = version(&film, 3);
    assert_eq!(
        frame_hashes(&film_file(s, &v3, dir).await),
        h1,
        "version 1's frames"
    );
}

/// The scene flagged "continuity changed" and the rest of its chain made again in one go:
/// each a new take from the new last frame of the one before; the flag goes, and the film
/// follows on its own.
async fn the_chain_is_made_again_from_the_new_frame(s: &Api, slug: &str, id3: &str, id4: &str) {
    let film = s.get(&format!("/api/projects/{slug}/film")).await;
    assert_eq!(film["continuity_changed"][0]["scene_id"], id4, "{film}");
    let (st, v) = s
        .post(
            &format!("/api/scenes/{id4}/generate?chain=maybe"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(is_error(&v), "{v}");
    let (st, g) = s
        .post(&format!("/api/scenes/{id4}/generate?chain=true"), json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{g}");
    let run = s
        .wait_run(g["run_id"].as_str().unwrap(), Duration::from_secs(600))
        .await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    assert_eq!(run["run"]["workflow"], "film.chain");
    let frame3 = s.get(&format!("/api/scenes/{id3}")).await["last_frame_url"].clone();
    let takes = s.get(&format!("/api/scenes/{id4}/takes")).await;
    assert_eq!(takes["current_take"], 2, "{takes}");
    assert_eq!(takes["takes"][1]["started_from"], frame3, "{takes}");
    let film = film_until(s, slug, "the chain's version", |f| {
        f["out_of_date"] == false && f["stitching"].is_null() && f["version"] == 5
    })
    .await;
    assert!(
        film["continuity_changed"].as_array().unwrap().is_empty(),
        "{film}"
    );
    assert_eq!(take_of(&version(&film, 5), id4), 2);
}

/// Speech in the film's sound: (start, end) of each stretch louder than silence, seconds.
fn speech(film: &Path) -> Vec<(f64, f64)> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "info", "-i"])
        .arg(film)
        .args([
            "-map",
            "0:a",
            "-af",
            "silencedetect=noise=-45dB:d=0.35",
            "-f",
            "null",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    let text = String::from_utf8_lossy(&out.stderr);
    let num = |l: &str, key: &str| -> Option<f64> {
        l.split(key).nth(1)?.split_whitespace().next()?.parse().ok()
    };
    let mut spans = vec![];
    let mut start = 0.0;
    for l in text.lines() {
        if let Some(t) = num(l, "silence_start: ") {
            if t > start {
                spans.push((start, t));
            }
        } else if let Some(t) = num(l, "silence_end: ") {
            start = t;
        }
    }
    spans
}

/// Subtitles: every cue on a voice heard in the film, within 100 ms at both ends; SRT and
/// WebVTT agree.
async fn subtitles_follow_the_voices(
    s: &Api,
    v: &Value,
    dir: &Path,
    (srt_file, vtt_file): (&Path, &Path),
) {
    let scenes = v["scenes"].as_array().unwrap();
    // Subtitles: every cue on a voice heard in the film, within 100 ms at both ends (heard in
    // the film's dialogue stem: the music and ambience under the voices fill the silences).
    let heard = speech(&dialogue_file(s, v, dir).await);
    let srt = subtp::srt::SubRip::parse(&std::fs::read_to_string(srt_file).unwrap()).unwrap();
    let vtt = subtp::vtt::WebVtt::parse(&std::fs::read_to_string(vtt_file).unwrap()).unwrap();
    let lines: usize = scenes.len();
    assert!(!srt.subtitles.is_empty() && lines > 0);
    let secs = |d: std::time::Duration| d.as_secs_f64();
    let cues: Vec<(f64, f64)> = srt
        .subtitles
        .iter()
        .map(|c| (secs(c.start.into()), secs(c.end.into())))
        .collect();
    let vcues: Vec<(f64, f64)> = vtt
        .blocks
        .iter()
        .filter_map(|b| match b {
            subtp::vtt::VttBlock::Que(c) => {
                Some((secs(c.timings.start.into()), secs(c.timings.end.into())))
            }
            _ => None,
        })
        .collect();
    assert_eq!(cues.len(), vcues.len());
    for ((a, b), (c, d)) in cues.iter().zip(&vcues) {
        assert!(
            (a - c).abs() < 0.002 && (b - d).abs() < 0.002,
            "SRT and VTT agree"
        );
    }
    // A line is heard from the cue's start to its end (pauses between its words aside): a
    // stretch of speech begins within 100 ms of the start, one ends within 100 ms of the end,
    // and none runs over either edge by more.
    for (a, b) in &cues {
        let what = format!("cue {a:.3}-{b:.3} against the voices heard {heard:?}");
        assert!(
            heard.iter().any(|(x, _)| (a - x).abs() <= 0.1),
            "start: {what}"
        );
        assert!(
            heard.iter().any(|(_, y)| (b - y).abs() <= 0.1),
            "end: {what}"
        );
        assert!(
            !heard.iter().any(|(x, y)| *x < a - 0.1 && *y > a + 0.1),
            "speech before the start: {what}"
        );
        assert!(
            !heard.iter().any(|(x, y)| *x < b - 0.1 && *y > b + 0.1),
            "speech after the end: {what}"
        );
    }
}

/// Every export of `v` read back by its format's reference reader.
async fn exports_are_read_by_their_reference_readers(s: &Api, slug: &str, v: &Value, dir: &Path) {
    let n = v["version"].as_i64().unwrap();
    let mut files = vec![];
    for (format, ext) in [
        ("otio", "otio"),
        ("edl", "edl"),
        ("fcpxml", "xml"),
        ("otioz", "otioz"),
        ("srt", "srt"),
        ("vtt", "vtt"),
    ] {
        let res = s
            .http
            .get(s.url(&format!(
                "/api/projects/{slug}/export?format={format}&version={n}"
            )))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{format}");
        let disposition = res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            disposition.contains(&format!("{slug}-v{n}.{ext}")),
            "{disposition}"
        );
        let path = dir.join(format!("film.{ext}"));
        std::fs::write(&path, res.bytes().await.unwrap()).unwrap();
        files.push(path);
    }
    let (st, e) = s
        .call(
            Method::GET,
            &format!("/api/projects/{slug}/export?format=mov"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    assert!(is_error(&e), "a JSON error that says what is wrong: {e}");
    let python = std::env::var("SLATE_OTIO_PYTHON")
        .expect("SLATE_OTIO_PYTHON: a Python with OpenTimelineIO (./scripts/test installs it)");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/read-exports");
    let out = std::process::Command::new(python)
        .arg(script)
        .args(&files[..4])
        .output()
        .expect("run the reference readers");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Every clip at its record in and out: the cut in a crossfade at its middle.
    let scenes = v["scenes"].as_array().unwrap();
    let f = |t: f64| (t * 24.0).round() as i64;
    let total = f(v["duration"].as_f64().unwrap());
    let expected: Vec<(i64, i64)> = (0..scenes.len())
        .map(|i| {
            let cut = |j: usize| {
                let st = scenes[j]["start"].as_f64().unwrap();
                let prev = &scenes[j - 1];
                let overlap =
                    prev["start"].as_f64().unwrap() + prev["duration"].as_f64().unwrap() - st;
                f(st) + f(overlap.max(0.0)) / 2
            };
            let rin = if i == 0 { 0 } else { cut(i) };
            let rout = if i + 1 == scenes.len() {
                total
            } else {
                cut(i + 1)
            };
            (rin, rout)
        })
        .collect();
    for format in ["otio", "edl", "fcpxml", "otioz"] {
        let clips = read[format]
            .as_array()
            .unwrap_or_else(|| panic!("{format}: {read}"));
        let got: Vec<(i64, i64)> = clips
            .iter()
            .map(|c| {
                (
                    c["record_in"].as_i64().unwrap(),
                    c["record_out"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, expected, "{format}: {read}");
        for (c, sc) in clips.iter().zip(scenes) {
            let media = c["media"].as_str().unwrap_or("");
            let name = format!(
                "scene-{:03}-take-{}",
                sc["scene_number"].as_i64().unwrap(),
                sc["take"]
            );
            assert!(
                media.ends_with(&format!("media/{name}.mp4")),
                "{format}: {c}"
            );
        }
    }
    assert_eq!(
        read["otioz_media"].as_u64(),
        Some(scenes.len() as u64),
        "{read}"
    );
    subtitles_follow_the_voices(s, v, dir, (&files[4], &files[5])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takes_versions_and_exports_on_sqlite() {
    iterate(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takes_versions_and_exports_on_postgres() {
    iterate(Db::Postgres).await;
}

/// `slug` created from the example's first raw scenes and qualified; its scenes.
async fn qualified(s: &Api, slug: &str) -> Vec<Value> {
    create_project(s, slug, &mini_gather(2)).await;
    let (st, q) = s
        .post(
            &format!("/api/projects/{slug}/qualify"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{q}");
    let run = s
        .wait_run(q["run_id"].as_str().unwrap(), Duration::from_secs(300))
        .await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    s.get(&format!("/api/projects/{slug}/scenes")).await["scenes"]
        .as_array()
        .unwrap()
        .clone()
}

/// The `(earlier, later)` scenes of a character that appears in two scenes: its id and both.
fn a_character_in_two_scenes(scenes: &[Value]) -> (String, Value, Value) {
    for (i, a) in scenes.iter().enumerate() {
        for c in a["characters_present"].as_array().unwrap() {
            if let Some(b) = scenes[i + 1..]
                .iter()
                .find(|b| b["characters_present"].as_array().unwrap().contains(c))
            {
                return (c.as_str().unwrap().to_string(), a.clone(), b.clone());
            }
        }
    }
    panic!("no character appears in two scenes");
}

/// The character references a scene's newest take used.
async fn character_refs(s: &Api, scene: &Value) -> Vec<String> {
    let takes = s
        .get(&format!(
            "/api/scenes/{}/takes",
            scene["id"].as_str().unwrap()
        ))
        .await;
    let last = takes["takes"].as_array().unwrap().last().unwrap().clone();
    last["composite_iterations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|it| it["references_used"].as_array().unwrap().clone())
        .filter(|r| r["reference_type"] == "character")
        .map(|r| r["reference_url"].as_str().unwrap().to_string())
        .collect()
}

/// The images of a character version cost what they were priced at; the descriptions are
/// priced by the characters a vision model answers, so they are estimated at a typical answer.
fn it_cost_what_it_was_priced_at(run: &Value, e: &Value) {
    let spent = |suffix: &str| -> f64 {
        run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["name"].as_str().unwrap().ends_with(suffix))
            .map(|x| x["cost"]["usd_micros"].as_f64().unwrap_or(0.0) / 1e6)
            .sum()
    };
    let line = |kind: &str| -> f64 {
        e["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["kind"] == kind)
            .map(|l| l["expected_usd"].as_f64().unwrap())
            .sum()
    };
    let images = spent("/await");
    assert!(
        (images - line("image") - line("image_edit")).abs() < 1e-6,
        "images: spent {images} against {e}"
    );
    let (vision, priced) = (spent("/describe"), line("vision"));
    assert!(
        vision > 0.0 && vision <= 3.0 * priced && priced <= 3.0 * vision,
        "vision: spent {vision} against {priced}"
    );
}

/// A character changes from a scene on: the new version is priced before it is made (and
/// costs what it was priced at), its 360-degree set is made, and scenes made from then on use
/// it from that scene on; the scene before keeps the qualified sheet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_character_version_is_priced_then_drawn_from_its_scene_on() {
    let fal = slate_tests::fake_fal::FakeFal::start("fal-key", 0, 5.0).await;
    let vars: std::collections::HashMap<String, String> = fal.env("fal-key").into_iter().collect();
    let settings = ProviderSettings::from_vars(slate_activities::config::ProviderVars {
        fal_key: vars.get("FAL_KEY").cloned(),
        fal_queue_url: vars.get("SLATE_FAL_QUEUE_URL").cloned(),
        fal_storage_url: vars.get("SLATE_FAL_STORAGE_URL").cloned(),
        ..Default::default()
    })
    .unwrap();
    let s = TestServer::start(Db::Sqlite, settings, &[]).await;
    let slug = "a-changed-keeper";
    let scenes = qualified(&s, slug).await;
    let (who, before, from) = a_character_in_two_scenes(&scenes);
    let n = from["scene_number"].as_i64().unwrap();
    let path = format!("/api/projects/{slug}/characters/{who}/versions");
    let body = json!({"from_scene": n, "appearance": "a bandaged left arm and a coat torn at the shoulder"});
    // Refused with why: no such scene, no appearance, no such character.
    for (p, b, status) in [
        (
            path.clone(),
            json!({"from_scene": 999, "appearance": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            path.clone(),
            json!({"from_scene": n, "appearance": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("/api/projects/{slug}/characters/nobody/versions"),
            body.clone(),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (st, v) = s.post(&p, b).await;
        assert_eq!(st, status, "{v}");
        assert!(is_error(&v), "{v}");
    }
    // Priced before anything is made: a master and six views, the six described.
    let submitted = fal.submissions().len();
    let (st, e) = s.post(&format!("{path}/estimate"), body.clone()).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(
        fal.submissions().len(),
        submitted,
        "pricing pays for nothing"
    );
    let units: Vec<(String, f64)> = e["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap().to_string(),
                l["units_low"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        units,
        vec![
            ("image".into(), 1.0),
            ("image_edit".into(), 6.0),
            ("vision".into(), 6.0)
        ],
        "{e}"
    );
    let usd = e["usd"].as_f64().unwrap();
    assert!(usd > 0.0, "{e}");
    let (st, v) = s.post(&path, body.clone()).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert!((v["estimate_usd"].as_f64().unwrap() - usd).abs() < 1e-9);
    let run = s
        .wait_run(v["run_id"].as_str().unwrap(), Duration::from_secs(300))
        .await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    it_cost_what_it_was_priced_at(&run, &e);
    let chars = s.get(&format!("/api/projects/{slug}/characters")).await;
    let sheet = chars["characters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["character_id"] == who.as_str())
        .unwrap()
        .clone();
    let version = &sheet["versions"][0];
    assert_eq!(version["from_scene"], n);
    assert_eq!(
        version["references_360"].as_object().unwrap().len(),
        6,
        "{sheet}"
    );
    let new_set: Vec<String> = version["references_360"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["url"].as_str().unwrap().to_string())
        .chain([version["master_reference_url"]
            .as_str()
            .unwrap()
            .to_string()])
        .collect();
    assert!(
        new_set
            .iter()
            .all(|u| u.contains(&format!("characters/{who}/v2/"))),
        "{new_set:?}"
    );
    // Scenes made from then on: the one before uses the qualified sheet, the one from the
    // version's scene on its new set.
    for sc in [&before, &from] {
        let (st, g) = s
            .post(
                &format!("/api/scenes/{}/generate", sc["id"].as_str().unwrap()),
                json!({}),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{g}");
        let run = s
            .wait_run(g["run_id"].as_str().unwrap(), Duration::from_secs(600))
            .await;
        assert_eq!(run["run"]["status"], "completed", "{run}");
    }
    let (old, new) = (
        character_refs(&s, &before).await,
        character_refs(&s, &from).await,
    );
    let mine = |refs: &[String]| -> Vec<String> {
        refs.iter()
            .filter(|u| u.contains(&format!("characters/{who}/")))
            .cloned()
            .collect()
    };
    assert!(
        !mine(&old).is_empty() && !mine(&new).is_empty(),
        "{old:?} {new:?}"
    );
    assert!(mine(&old).iter().all(|u| !u.contains("/v2/")), "{old:?}");
    assert!(mine(&new).iter().all(|u| new_set.contains(u)), "{new:?}");
    s.stop().await;
}

/// A re-stitch SIGKILLed in the middle of its stitch finishes on the next process from the
/// pieces it kept, and gives the same version 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restitch_killed_mid_stitch_finishes_from_its_pieces() {
    let data = temp_dir("restitch-kill");
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
    let slug = "killed-stitch";
    let scenes = first_film(&api, slug).await;
    let v1 = version(&api.get(&format!("/api/projects/{slug}/film")).await, 1);
    remake(&api, &scenes[2]).await;
    let (st, r) = api
        .post(&format!("/api/projects/{slug}/film"), json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{r}");
    let id = r["run_id"].as_str().unwrap().to_string();
    // Killed as soon as the stitch step is under way.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let d = api.get(&format!("/api/runs/{id}")).await;
        if d["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "stitch")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the stitch never started: {d}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill();
    let _second = common::serve::Serve::spawn(&env, &log);
    common::serve::healthy(&api, &log).await;
    let run = api.wait_run(&id, Duration::from_secs(300)).await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    let stitch = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "stitch")
        .unwrap()
        .clone();
    assert!(
        stitch["attempts"].as_u64().unwrap() >= 2,
        "cut short and resumed: {stitch}"
    );
    let dir = temp_dir("restitch-kill-films");
    version_two_has_the_new_take_and_every_other_frame(
        &api,
        slug,
        &v1,
        scenes[2]["id"].as_str().unwrap(),
        &dir,
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&data);
}
