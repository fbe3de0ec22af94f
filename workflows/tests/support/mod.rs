//! A film test bench: an engine on a fresh database, the local studio (or parts of it replaced),
//! the film workflows registered and a worker running.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use slate_activities::{Blobs, Studio, StudioOptions};
use slate_engine::testing::{fresh_postgres_url, fresh_sqlite_path, test_config};
use slate_engine::{Engine, EventRecord, RunId, RunRecord};
use slate_workflows::db::FilmDb;
use slate_workflows::docstore::SqlDocuments;
use slate_workflows::repo::FilmRepo;
use slate_workflows::{Film, FilmConfig};
use tokio_util::sync::CancellationToken;

pub struct Bench {
    pub engine: Engine,
    pub film: Arc<Film>,
    pub stop: CancellationToken,
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub fn temp_dir(what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "slate-{what}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ))
}

pub async fn database(postgres: bool) -> String {
    if postgres {
        fresh_postgres_url().await.unwrap()
    } else {
        format!("sqlite://{}", fresh_sqlite_path().display())
    }
}

pub fn quick_config() -> FilmConfig {
    FilmConfig {
        edit_window: Duration::from_millis(200),
        image_poll: Duration::from_millis(20),
        video_wait: Duration::from_millis(200),
        video_rounds: 50,
        ..FilmConfig::default()
    }
}

/// A bench with the local studio, optionally changed by `tweak` (to replace an activity).
pub async fn bench(postgres: bool, tweak: impl FnOnce(&mut Studio)) -> Bench {
    bench_with(postgres, quick_config(), tweak).await
}

/// [`bench`] with film settings of its own.
pub async fn bench_with(
    postgres: bool,
    config: FilmConfig,
    tweak: impl FnOnce(&mut Studio),
) -> Bench {
    let url = database(postgres).await;
    let engine = Engine::connect(&url, test_config()).await.unwrap();
    let db = FilmDb::of(&engine);
    let blobs = Blobs::local(temp_dir("blobs"), None).unwrap();
    let mut studio = Studio::local(blobs, db.activities_db(), StudioOptions::default());
    tweak(&mut studio);
    let film = Arc::new(Film {
        studio,
        repo: FilmRepo::new(db.clone()),
        docs: Arc::new(SqlDocuments::new(db)),
        config,
    });
    film.repo.seed_templates().await.unwrap();
    slate_workflows::register(&engine, film.clone());
    let stop = CancellationToken::new();
    tokio::spawn(engine.worker().concurrency(8).run(stop.clone()));
    Bench { engine, film, stop }
}

pub const WAIT: Duration = Duration::from_secs(180);

pub async fn finished(engine: &Engine, id: RunId) -> RunRecord {
    match engine.wait_for(id, WAIT).await {
        Ok(r) => r,
        Err(e) => {
            // Say what every run is doing, so a stuck test shows where.
            for r in engine.list(&Default::default()).await.unwrap_or_default() {
                eprintln!("{} {} {:?} error={:?}", r.id, r.workflow, r.status, r.error);
                if !r.status.is_terminal()
                    && let Ok(d) = engine.inspect(r.id).await
                {
                    let d = format!("{d:?}");
                    eprintln!("  {}", &d[d.len().saturating_sub(1500)..]);
                }
            }
            panic!("{e}");
        }
    }
}

/// The span of sequence numbers of the events of steps whose names start with `prefix`.
pub fn span(events: &[EventRecord], prefix: &str) -> (i64, i64) {
    let seqs: Vec<i64> = events
        .iter()
        .filter(|e| e.step.as_deref().is_some_and(|s| s.starts_with(prefix)))
        .map(|e| e.seq)
        .collect();
    assert!(!seqs.is_empty(), "no events for steps `{prefix}*`");
    (*seqs.iter().min().unwrap(), *seqs.iter().max().unwrap())
}
