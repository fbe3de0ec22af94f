//! Screenplays out (issue 23): the qualified screenplay of a project downloads as Fountain that
//! reads back to the same scene headings and dialogue, and as a PDF whose text (pdftotext) lists
//! the headings in order; over the API and the CLI.

mod common;

use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slate_activities::ProviderSettings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qualified_screenplay_downloads_as_fountain_and_pdf() {
    let s = TestServer::start(Db::Sqlite, ProviderSettings::default(), &[]).await;
    let gather: Value = serde_json::from_str(slate_workflows::examples::NIGHT_BUS).unwrap();
    let slug = "night-bus";
    create_project(&s, slug, &gather).await;
    let path = format!("/api/projects/{slug}/screenplay");
    let (st, v) = s.call(Method::GET, &path, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("qualify it first"),
        "{v}"
    );
    let (st, v) = s
        .post(
            &format!("/api/projects/{slug}/qualify"),
            json!({"edit_window_secs": 0}),
        )
        .await;
    // A bare screenplay has what the character and story departments need; the others (tone,
    // rules, props, voices) it does not say, and the gate names them.
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let ready = s.get(&format!("/api/projects/{slug}/readiness")).await;
    let depts = ready["departments"].as_array().expect("departments");
    for d in depts {
        if ["character", "story"].contains(&d["department"].as_str().unwrap()) {
            assert_eq!(d["ready"], true, "{d}");
        }
    }
    let (st, v) = s
        .post(
            &format!("/api/projects/{slug}/qualify"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let run = s
        .wait_run(v["run_id"].as_str().unwrap(), Duration::from_secs(300))
        .await;
    assert_eq!(run["run"]["status"], "completed", "{run}");

    // Fountain: reads back to the qualified screenplay's headings and lines.
    let qualified = s
        .get(&format!("/api/projects/{slug}/qualified/screenplay"))
        .await;
    let sp = &qualified["documents"][0]["body"];
    let want_headings: Vec<String> = sp["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["heading"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(want_headings.len(), 6, "{sp}");
    let res = s
        .http
        .get(s.url(&format!("{path}?format=fountain")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let fountain = res.text().await.unwrap();
    let (headings, lines) = slate_activities::screenplay::read_back(&fountain);
    assert_eq!(headings, want_headings, "{fountain}");
    let want_lines: Vec<(String, String)> = sp["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|q| q["dialogue"].as_array().unwrap().clone())
        .map(|d| {
            let who = match d["character"].as_str().unwrap() {
                "ada" => "ADA",
                "tom" => "TOM",
                "mrs-okafor" => "MRS. OKAFOR",
                "radio" => "RADIO",
                other => panic!("unexpected speaker {other}"),
            };
            (who.to_string(), d["line"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(lines, want_lines, "{fountain}");
    assert!(
        fountain.contains("ADA\n(whispering)\n"),
        "parentheticals kept: {fountain}"
    );
    assert!(fountain.starts_with("Title: The Night Bus\n"), "{fountain}");

    the_pdf_lists_the_headings_in_order(&s, &path, &want_headings).await;
    the_cli_writes_the_same_fountain_and_a_pdf(&s, slug, &want_headings, &fountain).await;
    s.stop().await;
}

/// PDF: the standard layout; its text lists the headings in order; an unknown format is refused.
async fn the_pdf_lists_the_headings_in_order(s: &TestServer, path: &str, want_headings: &[String]) {
    // PDF: the standard layout; its text lists the headings in order.
    let res = s
        .http
        .get(s.url(&format!("{path}?format=pdf")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let pdf = res.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF"), "a PDF");
    let file = s.data.join("night-bus.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let text = pdftotext(&file);
    let mut at = 0;
    for h in want_headings {
        let found = text[at..]
            .find(h.as_str())
            .unwrap_or_else(|| panic!("{h} after offset {at} in:\n{text}"));
        at += found + h.len();
    }
    assert!(text.contains("Told you it was real."), "{text}");
    let (st, v) = s
        .call(Method::GET, &format!("{path}?format=docx"), None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("fountain") && m.contains("pdf"), "{m}");
}

/// The CLI writes the same Fountain, and the PDF.
async fn the_cli_writes_the_same_fountain_and_a_pdf(
    s: &TestServer,
    slug: &str,
    want_headings: &[String],
    fountain: &str,
) {
    // The CLI writes the same Fountain, and the PDF.
    let cli_pdf = s.data.join("cli.pdf");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(["screenplay", slug, "--pdf"])
        .arg(&cli_pdf)
        .env("SLATE_URL", &s.api.base)
        .env("SLATE_API_KEY", API_KEY)
        .env("SLATE_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pdftotext(&cli_pdf).contains(&want_headings[0]));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(["screenplay", slug])
        .env("SLATE_URL", &s.api.base)
        .env("SLATE_API_KEY", API_KEY)
        .env("SLATE_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), fountain);
}

fn pdftotext(file: &std::path::Path) -> String {
    let out = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils; ./scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A screenplay file imported over the API, and by the CLI; a binary, oversized, unreadable or
/// unknown file gets a clear 4xx and adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_import_into_the_gather_and_bad_ones_are_refused() {
    let s = TestServer::start(
        Db::Sqlite,
        ProviderSettings::default(),
        &[("SLATE_BODY_LIMIT_BYTES", "20000")],
    )
    .await;
    let (st, v) = s
        .post(
            "/api/projects",
            json!({"slug": "imported", "title": "Imported"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let import = |name: &str, body: Vec<u8>| {
        let (http, url) = (
            s.http.clone(),
            s.url(&format!(
                "/api/projects/imported/gather/import?filename={name}"
            )),
        );
        async move {
            let res = http
                .post(url)
                .bearer_auth(API_KEY)
                .header("content-type", "text/plain")
                .body(body)
                .send()
                .await
                .unwrap();
            let st = res.status();
            (st, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let fountain = slate_workflows::examples::NIGHT_BUS_FOUNTAIN;
    let (st, v) = import("night%20bus.fountain", fountain.as_bytes().to_vec()).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["documents"][0]["collection"], "screenplay", "{v}");
    let docs = s.get("/api/projects/imported/gather/screenplay").await;
    assert_eq!(docs["documents"][0]["body"]["text"], fountain);
    assert_eq!(docs["documents"][0]["body"]["file"], "night bus.fountain");
    // The project reads the screenplay: six scene ideas, ready for the story department.
    let ready = s.get("/api/projects/imported/readiness").await;
    let story = ready["departments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["department"] == "story")
        .unwrap()
        .clone();
    assert_eq!(story["ready"], true, "{ready}");

    let before = s.get("/api/projects/imported/gather").await;
    for (name, body, status, says) in [
        (
            "still.png",
            vec![0x89, b'P', b'N', b'G'],
            StatusCode::UNPROCESSABLE_ENTITY,
            "not a file Slate imports",
        ),
        (
            "notes.txt",
            vec![b'a', 0, 1, 2],
            StatusCode::UNPROCESSABLE_ENTITY,
            "binary",
        ),
        (
            "notes.md",
            vec![0xff, 0xfe, b'a'],
            StatusCode::UNPROCESSABLE_ENTITY,
            "UTF-8",
        ),
        (
            "cast.json",
            b"{\"name\": ".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not valid JSON",
        ),
        (
            "long.txt",
            vec![b'a'; 30_000],
            StatusCode::PAYLOAD_TOO_LARGE,
            "SLATE_BODY_LIMIT_BYTES",
        ),
    ] {
        let (st, v) = import(name, body).await;
        assert_eq!(st, status, "{name}: {v}");
        assert!(is_error(&v), "{name}: {v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains(says), "{name}: {m}");
    }
    assert_eq!(
        s.get("/api/projects/imported/gather").await,
        before,
        "nothing added"
    );

    // The CLI: a treatment in Markdown.
    let file = s.data.join("My Treatment.md");
    std::fs::write(&file, "This is the story of two cousins, Ada and Tom.").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(["gather", "import", "imported"])
        .arg(&file)
        .env("SLATE_URL", &s.api.base)
        .env("SLATE_API_KEY", API_KEY)
        .env("SLATE_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("added my_treatment/"));
    let docs = s.get("/api/projects/imported/gather/my_treatment").await;
    assert_eq!(
        docs["documents"][0]["body"]["text"],
        "This is the story of two cousins, Ada and Tom."
    );
    let bin = s.data.join("x.json");
    std::fs::write(&bin, [0u8, 1, 2]).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(["gather", "import", "imported"])
        .arg(&bin)
        .env("SLATE_URL", &s.api.base)
        .env("SLATE_API_KEY", API_KEY)
        .env("SLATE_LOG", "error")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("binary"));
    s.stop().await;
}
