//! `slate demo`, the binary itself: the bundled film from gathered ideas to a playable MP4, with
//! progress and a summary, on the embedded default (SQLite, local studio, no keys).

use std::process::Command;

fn probe_duration(path: &str) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            path,
        ])
        .output()
        .expect("ffprobe (./scripts/test installs ffmpeg)");
    assert!(out.status.success(), "ffprobe reads the film");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn the_demo_makes_the_film_and_prints_a_summary() {
    let dir = std::env::temp_dir().join(format!("slate-demo-{}", uuid::Uuid::new_v4().simple()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slate"));
    cmd.args(["demo", "--edit-window", "1", "--data-dir"])
        .arg(&dir);
    for k in [
        "FAL_KEY",
        "OPENROUTER_API_KEY",
        "BRAIN_SERVICE_API_KEY",
        "TASK_API_KEY",
        "LAST_FRAME_TOKEN",
        "SLATE_DATABASE_URL",
    ] {
        cmd.env_remove(k);
    }
    let out = cmd.output().expect("run slate demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "slate demo failed:\n{stdout}\n{stderr}"
    );

    // Progress, per phase and per scene (plain lines when not on a terminal).
    assert!(stderr.contains("qualification: phase A"), "{stderr}");
    assert!(stderr.contains("scene 9: completed"), "{stderr}");

    // The summary.
    let field = |name: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("`{name}` in the summary:\n{stdout}"))
            .trim()
            .to_string()
    };
    assert_eq!(field("scenes "), "10");
    assert!(field("steps ").contains("journaled"));
    assert!(field("retries ").contains("verification"));
    assert!(field("time ").ends_with('s'));
    assert!(field("cost ").starts_with('$'));
    let sound = field("sound ");
    assert!(
        sound.contains("music cue")
            && sound.contains("stems ambience, dialogue")
            && sound.contains("LUFS"),
        "the sound's line: {sound}"
    );
    let rows = stdout
        .lines()
        .filter(|l| l.contains("completed") && l.contains("scenes/"))
        .count();
    assert_eq!(rows, 10, "one table row per scene:\n{stdout}");

    // The film is where it says, playable, as long as the summary says.
    let film = field("The film:");
    assert!(
        film.contains("/films/") && film.ends_with(".mp4") && std::path::Path::new(&film).exists(),
        "{film}"
    );
    let said: f64 = field("film ").trim_end_matches(" s").parse().unwrap();
    assert!(
        (probe_duration(&film) - said).abs() < 0.1,
        "{film} lasts {said} s"
    );

    // `slate runs` on the demo's database: ls, show, retry (refused), reset, cancel.
    let slate = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_slate"))
            .args(args)
            .env("SLATE_DATA_DIR", &dir)
            .env_remove("SLATE_DATABASE_URL")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, ls, err) = slate(&["runs", "ls", "--workflow", "film.produce"]);
    assert!(ok, "{err}");
    let row = ls.lines().nth(1).expect("one production run");
    assert!(
        row.contains("completed") && row.contains("lantern-keeper"),
        "{ls}"
    );
    let id = row.split_whitespace().next().unwrap().to_string();
    let (ok, show, _) = slate(&["runs", "show", &id]);
    assert!(
        ok && show.contains("status    completed") && show.contains("child run"),
        "{show}"
    );
    let (ok, _, err) = slate(&["runs", "retry", &id]);
    assert!(
        !ok && err.starts_with("error: ") && err.contains("only failed"),
        "{err}"
    );
    assert!(!err.contains("backtrace"), "a one-line error: {err}");
    let (_, scenes, _) = slate(&["runs", "ls", "--workflow", "film.scene", "--limit", "1"]);
    let scene_run = scenes
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (ok, out, err) = slate(&["runs", "reset", &scene_run, "--step", "last-frame"]);
    assert!(
        ok && out.contains("will run again from `last-frame`"),
        "{out}{err}"
    );
    let (_, show, _) = slate(&["runs", "show", &scene_run]);
    assert!(show.contains("status    pending"), "{show}");
    let (ok, out, err) = slate(&["runs", "cancel", &scene_run]);
    assert!(ok && out.contains("cancelled: 1 run(s)"), "{out}{err}");
    let (_, show, _) = slate(&["runs", "show", &scene_run]);
    assert!(show.contains("status    cancelled"), "{show}");

    // A second demo into the same folder says what to do instead of failing obscurely.
    let again = Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(["demo", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a demo film"));
    let _ = std::fs::remove_dir_all(&dir);
}
