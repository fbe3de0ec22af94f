//! The `slate` command line is a door to a running server: it drives a whole production of a
//! bundled example over HTTP, from creating the project to the film, without opening a
//! database; it says how to reach a server when none answers.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::serve::{Serve, free_port, healthy, scrub};
use common::*;

/// `slate ARGS` as a person runs it against `url`, in a directory and with a data dir of its
/// own that must stay untouched (the server's database is elsewhere).
fn slate(url: &str, cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slate"));
    cmd.args(args)
        .current_dir(cwd)
        .env("SLATE_URL", url)
        .env("SLATE_API_KEY", API_KEY)
        .env("SLATE_DATA_DIR", cwd.join("no-data-here"))
        .env_remove("SLATE_DATABASE_URL");
    scrub(&mut cmd);
    cmd.output().expect("run slate")
}

fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_makes_a_film_through_a_running_server_without_a_database_of_its_own() {
    let data = temp_dir("cli-server");
    let cwd = temp_dir("cli-user");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env: Vec<(String, String)> = [
        ("SLATE_DATA_DIR", data.display().to_string()),
        ("SLATE_LISTEN", format!("127.0.0.1:{port}")),
        ("SLATE_PUBLIC_URL", base.clone()),
        ("SLATE_API_KEY", API_KEY.into()),
        ("SLATE_ADMIN_KEY", ADMIN_KEY.into()),
        ("SLATE_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    // No server yet: a clear error naming the URL and what to do, and nothing created here.
    let out = slate(&base, &cwd, &["projects", "ls"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&base) && err.contains("slate serve"), "{err}");

    let log = data.join("serve.log");
    let _server = Serve::spawn(&env, &log);
    let api = Api {
        base: base.clone(),
        http: client(),
    };
    healthy(&api, &log).await;

    let created = ok(
        &slate(
            &base,
            &cwd,
            &["projects", "create", "lk", "--example", "lantern-keeper"],
        ),
        "projects create",
    );
    assert!(
        created.contains("created lk") && created.contains("added "),
        "{created}"
    );
    let listed = ok(&slate(&base, &cwd, &["projects", "ls"]), "projects ls");
    assert!(
        listed.contains("lk") && listed.contains("gathering"),
        "{listed}"
    );
    let gather = ok(&slate(&base, &cwd, &["gather", "ls", "lk"]), "gather ls");
    assert!(gather.contains("raw_characters"), "{gather}");
    let ready = ok(&slate(&base, &cwd, &["readiness", "lk"]), "readiness");
    assert!(
        ready.contains("character") && ready.contains("ready"),
        "{ready}"
    );
    let estimate = ok(&slate(&base, &cwd, &["estimate", "lk"]), "estimate");
    assert!(estimate.contains("total"), "{estimate}");
    let templates = ok(&slate(&base, &cwd, &["templates", "ls"]), "templates ls");
    assert!(
        templates.contains("Character Master Reference"),
        "{templates}"
    );

    // The production, waited for with progress, ends with the film.
    let out = slate(
        &base,
        &cwd,
        &["produce", "lk", "--edit-window", "0", "--wait"],
    );
    let produced = ok(&out, "produce --wait");
    assert!(produced.contains("film: "), "{produced}");
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains("scenes done"),
        "progress shown: {progress}"
    );
    let shown = ok(
        &slate(&base, &cwd, &["projects", "show", "lk"]),
        "projects show",
    );
    assert!(
        shown.contains("completed") && shown.contains("film "),
        "{shown}"
    );
    let p = api.get("/api/projects/lk").await;
    assert_eq!(p["project"]["status"], "completed");
    let screenplay = ok(&slate(&base, &cwd, &["screenplay", "lk"]), "screenplay");
    assert!(
        screenplay.contains("EXT.") || screenplay.contains("INT."),
        "{screenplay}"
    );
    let progress = ok(&slate(&base, &cwd, &["progress", "lk"]), "progress");
    assert!(progress.contains("scenes done"), "{progress}");

    film_commands(&base, &cwd, &api).await;

    // Starting it again is refused by the same checks as the API's, said plainly.
    let out = slate(&base, &cwd, &["produce", "lk"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("409"));

    // The command line never opened or created a database of its own.
    assert!(!cwd.join("no-data-here").exists());
    assert!(!cwd.join(".slate").exists());
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "nothing written where the command line ran"
    );
}

/// The film's versions, a scene's takes, an export for an editor, a re-stitch, a re-mix.
async fn film_commands(base: &str, cwd: &Path, api: &Api) {
    // The film's versions, a scene's takes, an export for an editor, a re-stitch.
    let film = ok(&slate(base, cwd, &["film", "lk"]), "film");
    assert!(
        film.contains("version 1") && film.contains("mixed -1"),
        "the version and its mix: {film}"
    );
    let scene = api.get("/api/projects/lk/scenes").await["scenes"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let takes = ok(&slate(base, cwd, &["take", &scene]), "take");
    assert!(
        takes.contains("take 1") && takes.contains("completed"),
        "{takes}"
    );
    let into = temp_dir("cli-export").join("lk.edl");
    let to = into.display().to_string();
    let exported = ok(
        &slate(base, cwd, &["export", "lk", "--format", "edl", "-o", &to]),
        "export",
    );
    assert!(exported.contains("lk.edl"), "{exported}");
    let edl = std::fs::read_to_string(&into).unwrap();
    assert!(
        edl.starts_with("TITLE:") && edl.contains("FROM CLIP NAME"),
        "{edl}"
    );
    let out = slate(base, cwd, &["export", "lk", "--format", "mov"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("otio, fcpxml"));
    let stitched = ok(
        &slate(base, cwd, &["film", "lk", "--stitch"]),
        "film --stitch",
    );
    assert!(stitched.contains("stitching"), "{stitched}");
    let run = stitched
        .split("(run ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap()
        .to_string();
    api.wait_run(&run, std::time::Duration::from_secs(300))
        .await;
    let remixed = ok(
        &slate(base, cwd, &["film", "lk", "--remix"]),
        "film --remix",
    );
    assert!(remixed.contains("mixing"), "{remixed}");
}
