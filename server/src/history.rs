//! `slate history export` and `slate replay`: check a build against the journals of real runs
//! before it is deployed (docs/upgrading.md).
//!
//! A history is a run's record and its events as JSON (`slate-history/1`). Replaying one runs
//! the workflow code of this binary over the journal in the engine's dry mode: nothing is
//! executed, written or paid for; each run's report says which journaled operations would be
//! reused, which would run, and the first place the journal and the code part ways.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use slate_engine::{Engine, History, ReplayReport, RunFilter, RunId, RunStatus};

/// Write the histories of `runs` (and of every run `filter` selects) into `dir`, one
/// `<run id>.json` file each. Returns the files written.
pub async fn export(
    engine: &Engine,
    runs: &[RunId],
    filter: Option<RunFilter>,
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut ids: Vec<RunId> = runs.to_vec();
    if let Some(f) = filter {
        ids.extend(
            crate::runs::select_all(engine, &f)
                .await?
                .into_iter()
                .map(|r| r.id),
        );
    }
    if ids.is_empty() {
        anyhow::bail!(
            "no runs to export: give run ids, or select runs with --workflow, --status, --version, --open"
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut out = vec![];
    for id in ids {
        let h = engine.history(id).await?;
        let path = dir.join(format!("{id}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&h)?)
            .with_context(|| format!("writing {}", path.display()))?;
        out.push(path);
    }
    Ok(out)
}

/// Read a history file.
pub fn read(path: &Path) -> anyhow::Result<History> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let h: History = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a Slate history (`slate history export` writes them)",
            path.display()
        )
    })?;
    if h.format != slate_engine::HISTORY_FORMAT {
        anyhow::bail!(
            "{} is a `{}` history; this build reads `{}`",
            path.display(),
            h.format,
            slate_engine::HISTORY_FORMAT
        );
    }
    Ok(h)
}

/// The runs not finished: what a deploy of this build would meet.
pub async fn open_runs(engine: &Engine) -> anyhow::Result<Vec<History>> {
    let mut out = vec![];
    for status in [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Waiting,
        RunStatus::Sleeping,
        RunStatus::Blocked,
    ] {
        let filter = RunFilter {
            status: Some(status),
            ..Default::default()
        };
        for r in crate::runs::select_all(engine, &filter).await? {
            out.push(engine.history(r.id).await?);
        }
    }
    Ok(out)
}

/// One line per run, and a summary per workflow; true when any run would block.
pub fn print(reports: &[(String, ReplayReport)]) -> bool {
    let mut per: BTreeMap<(String, u32), (usize, usize)> = BTreeMap::new();
    for (origin, r) in reports {
        let e = per.entry((r.workflow.clone(), r.version)).or_default();
        e.0 += 1;
        let would: Vec<String> = r
            .would_run
            .iter()
            .map(|w| {
                if w.again {
                    format!("{} (again)", w.name)
                } else {
                    w.name.clone()
                }
            })
            .collect();
        match &r.mismatch {
            Some(m) => {
                e.1 += 1;
                println!(
                    "BLOCKS  {} {} (v{}, {origin}): at seq {} the journal has `{}` ({}), the code asks for `{}` ({}); written by {}",
                    r.run,
                    r.workflow,
                    r.version,
                    m.seq,
                    m.expected.name,
                    m.expected.kind,
                    m.found.name,
                    m.found.kind,
                    m.build.as_deref().unwrap_or("an unrecorded build")
                );
            }
            None if r.blocks() => {
                e.1 += 1;
                println!(
                    "BLOCKS  {} {} (v{}, {origin}): {}",
                    r.run, r.workflow, r.version, r.outcome
                );
            }
            None => println!(
                "ok      {} {} (v{}, {origin}): {} reused, {}{}",
                r.run,
                r.workflow,
                r.version,
                r.reused.len(),
                r.outcome,
                if would.is_empty() {
                    String::new()
                } else {
                    format!("; would run {}", would.join(", "))
                }
            ),
        }
    }
    println!();
    let mut any = false;
    for ((w, v), (n, blocked)) in &per {
        any |= *blocked > 0;
        println!("{w} v{v}: {n} run(s), {blocked} would block");
    }
    any
}
