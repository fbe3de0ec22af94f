//! The `slate` commands that work on projects, carried out against a running server over HTTP
//! ([`crate::client`]): projects, gather, readiness, qualify, produce, generate, templates,
//! estimate, costs, progress, screenplay. The same use cases as the dashboard's, through the
//! same API; `--direct` (in `main.rs`) opens the database instead.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::client::{Client, seg};

/// `slate projects ls`.
pub async fn projects_ls(c: &Client, as_json: bool) -> anyhow::Result<()> {
    let v: Value = c.get("/api/projects").await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let list = v["projects"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no projects yet: slate projects create SLUG --title \"...\"");
    }
    for p in list {
        println!(
            "{:<32} {:<12} {}",
            p["slug"].as_str().unwrap_or(""),
            p["status"].as_str().unwrap_or(""),
            p["title"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// `slate projects create SLUG [--title T] [--example NAME]`.
pub async fn projects_create(
    c: &Client,
    slug: &str,
    title: Option<&str>,
    example: Option<&str>,
) -> anyhow::Result<()> {
    let example_text = match example {
        Some(name) => Some(slate_workflows::examples::named(name).ok_or_else(|| {
            anyhow::anyhow!(
                "no example `{name}`; the examples are {}",
                slate_workflows::examples::ALL
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?),
        None => None,
    };
    let title = match (title, &example_text) {
        (Some(t), _) => t.to_string(),
        (None, Some(text)) => serde_json::from_str::<Value>(text)?["project"]["title"]
            .as_str()
            .unwrap_or(slug)
            .to_string(),
        (None, None) => slug.to_string(),
    };
    c.post(
        "/api/projects",
        Some(&json!({"slug": slug, "title": title})),
    )
    .await?;
    println!("created {slug} ({title})");
    if let Some(text) = example_text {
        import_bytes(c, slug, "example.json", text.as_bytes().to_vec()).await?;
    }
    Ok(())
}

/// `slate projects show SLUG`.
pub async fn projects_show(c: &Client, slug: &str, as_json: bool) -> anyhow::Result<()> {
    let v: Value = c.get(&format!("/api/projects/{}", seg(slug))).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let p = &v["project"];
    println!(
        "{}  {}",
        p["slug"].as_str().unwrap_or(""),
        p["title"].as_str().unwrap_or("")
    );
    println!("status         {}", p["status"].as_str().unwrap_or(""));
    for (k, label) in [
        ("qualification_run", "qualification  "),
        ("production_run", "production     "),
        ("final_video", "film           "),
    ] {
        if let Some(x) = p[k].as_str() {
            println!("{label}{x}");
        }
    }
    if let Some(scenes) = v["scenes"].as_object().filter(|m| !m.is_empty()) {
        let counts: Vec<String> = scenes.iter().map(|(k, n)| format!("{n} {k}")).collect();
        println!("scenes         {}", counts.join(", "));
    }
    if v["open_errors"].as_u64().unwrap_or(0) > 0 {
        println!("open errors    {} (GET /api/errors)", v["open_errors"]);
    }
    Ok(())
}

/// `slate gather import SLUG FILE`.
pub async fn gather_import(c: &Client, slug: &str, file: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    import_bytes(c, slug, name, bytes).await
}

async fn import_bytes(c: &Client, slug: &str, name: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
    let v = c
        .post_bytes(
            &format!(
                "/api/projects/{}/gather/import?filename={}",
                seg(slug),
                seg(name)
            ),
            bytes,
        )
        .await?;
    for d in v["documents"].as_array().into_iter().flatten() {
        println!(
            "added {}/{}",
            d["collection"].as_str().unwrap_or(""),
            d["id"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// `slate gather ls SLUG`.
pub async fn gather_ls(c: &Client, slug: &str) -> anyhow::Result<()> {
    let v: Value = c
        .get(&format!("/api/projects/{}/gather", seg(slug)))
        .await?;
    let cols = v["collections"].as_object().cloned().unwrap_or_default();
    if cols.is_empty() {
        println!("{slug} has no gather data yet: slate gather import {slug} FILE");
    }
    for (name, n) in cols {
        println!("{name:<32} {n}");
    }
    Ok(())
}

/// `slate readiness SLUG`.
pub async fn readiness(c: &Client, slug: &str, as_json: bool) -> anyhow::Result<()> {
    let v: Value = c
        .get(&format!("/api/projects/{}/readiness", seg(slug)))
        .await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let depts = v["departments"]
        .as_array()
        .or(v.as_array())
        .cloned()
        .unwrap_or_default();
    for d in depts {
        let ready = d["ready"].as_bool().unwrap_or(false);
        println!(
            "{:<12} {:>3}  {}",
            d["department"].as_str().unwrap_or(""),
            d["score"],
            if ready { "ready" } else { "not ready" }
        );
        for m in d["missing_items"].as_array().into_iter().flatten() {
            println!("               - {}", m.as_str().unwrap_or(""));
        }
    }
    Ok(())
}

/// How to start a project's work.
#[derive(Debug, Clone, Default)]
pub struct StartArgs {
    /// Past the readiness gate.
    pub force: bool,
    /// Seconds of the edit window.
    pub edit_window_secs: Option<u64>,
    /// The run's budget.
    pub budget_usd: Option<f64>,
    /// Wait for the run to end, showing progress.
    pub wait: bool,
}

/// `slate qualify|produce|generate SLUG`: start the project's work through its own route.
pub async fn start(c: &Client, what: &str, slug: &str, a: StartArgs) -> anyhow::Result<()> {
    let mut body = json!({});
    if what != "generate" {
        body["force"] = json!(a.force);
        if let Some(w) = a.edit_window_secs {
            body["edit_window_secs"] = json!(w);
        }
    }
    if let Some(b) = a.budget_usd {
        body["budget_usd"] = json!(b);
    }
    let v = c
        .post(&format!("/api/projects/{}/{what}", seg(slug)), Some(&body))
        .await
        .map_err(|e| {
            if e.to_string().contains("\"force\": true") {
                e.context(format!("to go on anyway: slate {what} {slug} --force"))
            } else {
                e
            }
        })?;
    let run = v["run_id"].as_str().unwrap_or("").to_string();
    println!("started {what} of {slug}: run {run}");
    if a.wait {
        wait(c, slug, &run).await?;
    }
    Ok(())
}

/// Wait for `run` to end, printing the project's progress when it changes. A run that waits on
/// a failed step (which a person must retry) ends the wait with what to do.
pub async fn wait(c: &Client, slug: &str, run: &str) -> anyhow::Result<()> {
    let mut last = String::new();
    loop {
        let d: Value = c.get(&format!("/api/runs/{}", seg(run))).await?;
        let status = d["run"]["status"].as_str().unwrap_or("").to_string();
        let p: Value = c
            .get(&format!("/api/projects/{}/progress", seg(slug)))
            .await
            .unwrap_or(Value::Null);
        let line = if p["scenes"].as_u64().unwrap_or(0) > 0 {
            format!(
                "{status}: {} of {} scenes done, {} in flight, {} failed",
                p["completed"],
                p["scenes"],
                p["in_flight"].as_array().map_or(0, Vec::len),
                p["failed"].as_array().map_or(0, Vec::len)
            )
        } else {
            format!(
                "{status}{}",
                d["current_step"]
                    .as_str()
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default()
            )
        };
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        match status.as_str() {
            "completed" => {
                let p: Value = c.get(&format!("/api/projects/{}", seg(slug))).await?;
                if let Some(f) = p["project"]["final_video"].as_str() {
                    println!("film: {f}");
                }
                return Ok(());
            }
            "failed" | "cancelled" => bail!(
                "run {run} {status}: {}",
                d["run"]["error"]["message"]
                    .as_str()
                    .unwrap_or("no error recorded")
            ),
            _ => {}
        }
        if let Some(b) = d.get("blocked_on").filter(|b| !b.is_null()) {
            bail!(
                "run {run} waits on {} run {}, which {}{}: retry it (slate runs retry {}) or cancel it",
                b["workflow"].as_str().unwrap_or(""),
                b["run_id"].as_str().unwrap_or(""),
                b["status"].as_str().unwrap_or("failed"),
                b["step"]
                    .as_str()
                    .map(|s| format!(" at `{s}`"))
                    .unwrap_or_default(),
                b["run_id"].as_str().unwrap_or(""),
            );
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}

/// `slate templates ls`.
pub async fn templates_ls(c: &Client) -> anyhow::Result<()> {
    let v: Value = c.get("/api/templates").await?;
    for t in v["templates"].as_array().into_iter().flatten() {
        println!(
            "{:<40} {}",
            t["name"].as_str().unwrap_or(""),
            t["description"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// `slate templates show NAME`: its prompt on standard output.
pub async fn templates_show(c: &Client, name: &str) -> anyhow::Result<()> {
    let v: Value = c.get(&format!("/api/templates/{}", seg(name))).await?;
    println!("{}", v["prompt"].as_str().unwrap_or(""));
    Ok(())
}

/// `slate templates set NAME FILE`: the template's prompt from a file (its other fields kept).
pub async fn templates_set(c: &Client, name: &str, file: &Path) -> anyhow::Result<()> {
    let prompt =
        std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let mut current: Value = c.get(&format!("/api/templates/{}", seg(name))).await?;
    let version = current["version"].clone();
    if let Some(o) = current.as_object_mut() {
        o.remove("version");
        o.insert("prompt".into(), json!(prompt));
    }
    c.put(
        &format!("/api/templates/{}", seg(name)),
        &json!({"version": version, "template": current}),
    )
    .await?;
    println!("saved {name}");
    Ok(())
}

/// `slate estimate SLUG`.
pub async fn estimate(c: &Client, slug: &str, as_json: bool) -> anyhow::Result<()> {
    // An estimate is asked for (POST): it reads the project and prices, and changes nothing.
    let v = c
        .post(&format!("/api/projects/{}/estimate", seg(slug)), None)
        .await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let e: slate_workflows::estimate::Estimate =
            serde_json::from_value(v).context("read the estimate")?;
        print!("{}", crate::runs::estimate_table(&e));
    }
    Ok(())
}

/// `slate costs SLUG`.
pub async fn costs(c: &Client, slug: &str, as_json: bool) -> anyhow::Result<()> {
    let path = format!("/api/projects/{}/costs", seg(slug));
    if as_json {
        let v: Value = c.get(&path).await?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let costs: crate::routes::production::Costs = c.get(&path).await?;
        print!("{}", crate::runs::costs_table(&costs));
    }
    Ok(())
}

/// `slate progress SLUG`.
pub async fn progress(c: &Client, slug: &str, as_json: bool) -> anyhow::Result<()> {
    let path = format!("/api/projects/{}/progress", seg(slug));
    if as_json {
        let v: Value = c.get(&path).await?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let p: crate::routes::scenes::Progress = c.get(&path).await?;
        print!("{}", crate::runs::progress_text(&p));
    }
    Ok(())
}

/// `slate screenplay SLUG [--fountain F] [--pdf F]`.
pub async fn screenplay(
    c: &Client,
    slug: &str,
    pdf: Option<&Path>,
    fountain: Option<&Path>,
) -> anyhow::Result<()> {
    let base = format!("/api/projects/{}/screenplay", seg(slug));
    if let Some(path) = pdf {
        let bytes = c.get_bytes(&format!("{base}?format=pdf")).await?;
        std::fs::write(path, bytes).with_context(|| format!("write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if fountain.is_some() || pdf.is_none() {
        let text = String::from_utf8(c.get_bytes(&format!("{base}?format=fountain")).await?)
            .context("the screenplay is not UTF-8")?;
        match fountain {
            Some(path) => {
                std::fs::write(path, &text).with_context(|| format!("write {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
            None => print!("{text}"),
        }
    }
    Ok(())
}

/// `slate film SLUG [--stitch | --remix]`.
pub async fn film(
    c: &Client,
    slug: &str,
    stitch: bool,
    remix: bool,
    as_json: bool,
) -> anyhow::Result<()> {
    let path = format!("/api/projects/{}/film", seg(slug));
    if remix {
        let r = c.post(&format!("{path}/remix"), None).await?;
        println!(
            "mixing {slug}'s sound again (run {}); `slate film {slug}` shows the new version when done",
            r["run_id"].as_str().unwrap_or("?")
        );
        return Ok(());
    }
    if stitch {
        let r = c.post(&path, None).await?;
        println!(
            "stitching a new version of {slug}'s film (run {}); `slate film {slug}` shows it when done",
            r["run_id"].as_str().unwrap_or("?")
        );
        return Ok(());
    }
    let v: Value = c.get(&path).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print!("{}", film_text(&v));
    Ok(())
}

/// The film as `slate film` prints it.
pub fn film_text(v: &Value) -> String {
    let mut out = String::new();
    let versions = v["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        out.push_str("no film yet\n");
    }
    for f in &versions {
        let takes: Vec<String> = f["scenes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                format!(
                    "{}:{}",
                    s["scene_number"],
                    s["take"].as_u64().map_or("-".into(), |t| t.to_string())
                )
            })
            .collect();
        let sound = match f["sound"]["loudness"]["integrated_lufs"].as_f64() {
            Some(i) => format!(
                "  mixed {i:.1} LUFS, {} cue{}",
                f["sound"]["cues"].as_array().map_or(0, Vec::len),
                if f["sound"]["cues"].as_array().map_or(0, Vec::len) == 1 {
                    ""
                } else {
                    "s"
                }
            ),
            None => "  voices only".to_string(),
        };
        out.push_str(&format!(
            "version {:<3} {:>7.2} s  {}  takes {}{sound}\n",
            f["version"],
            f["duration"].as_f64().unwrap_or(0.0),
            f["video"].as_str().unwrap_or(""),
            takes.join(" ")
        ));
    }
    if v["out_of_date"].as_bool() == Some(true) {
        let changed: Vec<String> = v["changed"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["scene_number"].to_string())
            .collect();
        out.push_str(&format!(
            "out of date: scene{} {} changed{}\n",
            if changed.len() == 1 { "" } else { "s" },
            changed.join(", "),
            if v["auto_restitch"].as_bool() == Some(true) {
                " (stitched again on its own)"
            } else {
                "; `slate film SLUG --stitch` makes a new version"
            }
        ));
    }
    for c in v["continuity_changed"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "continuity changed: scene {} started from scene {}'s earlier last frame; generate it again to follow the new one\n",
            c["scene_number"], c["previous_scene_number"]
        ));
    }
    out
}

/// `slate take SCENE [N]`.
pub async fn take(c: &Client, scene: &str, take: Option<u32>, as_json: bool) -> anyhow::Result<()> {
    let v: Value = match take {
        Some(n) => {
            c.put(
                &format!("/api/scenes/{}/take", seg(scene)),
                &json!({ "take": n }),
            )
            .await?
        }
        None => c.get(&format!("/api/scenes/{}/takes", seg(scene))).await?,
    };
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for t in v["takes"].as_array().into_iter().flatten() {
        let changed: Vec<&str> = t["changed"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect();
        println!(
            "{} take {:<3} {:<10} {:>6} ${:.3}  {}{}",
            if t["current"].as_bool() == Some(true) {
                "*"
            } else {
                " "
            },
            t["take"],
            t["status"].as_str().unwrap_or(""),
            t["duration"]
                .as_f64()
                .map_or("".into(), |d| format!("{d:.2} s")),
            t["cost_usd"].as_f64().unwrap_or(0.0),
            t["video"].as_str().unwrap_or("(no clip)"),
            if changed.is_empty() {
                String::new()
            } else {
                format!("  changed: {}", changed.join(", "))
            }
        );
    }
    Ok(())
}

/// `slate export SLUG --format F [--version N] [-o FILE]`.
pub async fn export(
    c: &Client,
    slug: &str,
    format: &str,
    version: Option<i64>,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let ext = match format {
        "otio" => "otio",
        "fcpxml" => "xml",
        "edl" => "edl",
        "srt" => "srt",
        "vtt" => "vtt",
        "otioz" => "otioz",
        other => bail!("no export format `{other}`: otio, fcpxml, edl, srt, vtt or otioz"),
    };
    let mut path = format!("/api/projects/{}/export?format={format}", seg(slug));
    let n = match version {
        Some(n) => {
            path.push_str(&format!("&version={n}"));
            n.to_string()
        }
        None => {
            let v: Value = c.get(&format!("/api/projects/{}/film", seg(slug))).await?;
            v["versions"][0]["version"].to_string()
        }
    };
    let bytes = c.get_bytes(&path).await?;
    let file = out.map_or_else(
        || Path::new(&format!("{slug}-v{n}.{ext}")).to_path_buf(),
        Path::to_path_buf,
    );
    std::fs::write(&file, &bytes).with_context(|| format!("write {}", file.display()))?;
    println!("wrote {} ({} bytes)", file.display(), bytes.len());
    Ok(())
}
