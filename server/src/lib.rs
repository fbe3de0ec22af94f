//! # slate-server: how people and programs use Slate
//!
//! The HTTP API (axum) with its OpenAPI document at `/openapi.json`, webhooks that wake waiting
//! runs, media serving, health and Prometheus metrics; and the `slate` command line: `serve`,
//! `worker`, `migrate`, `runs`, `demo` (the benchmarks are `slate-bench`, crate `bench`).

pub mod app;
pub mod approvals;
pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
pub mod error;
pub mod extract;
pub mod history;
pub mod live;
pub mod routes;
pub mod runs;
pub mod service;
pub mod state;
pub mod ui;

use std::sync::Arc;

use anyhow::Context;
use slate_activities::{Blobs, ProviderSettings, Studio, StudioOptions};
use slate_engine::{Engine, EngineConfig};
use slate_workflows::db::FilmDb;
use slate_workflows::docstore::{DocumentStore, SqlDocuments};
use slate_workflows::repo::FilmRepo;
use slate_workflows::{Film, FilmConfig};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::state::AppState;

/// This build: the crate's version and the commit it is built from, recorded on every run.
pub const BUILD: &str = concat!(
    "slate ",
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SLATE_COMMIT"),
    ")"
);

/// Open the database (migrating it), build the studio from the configured provider settings
/// and register the workflows.
pub async fn build(config: Config) -> anyhow::Result<AppState> {
    let providers = config.providers.clone();
    build_with(config, providers).await
}

/// [`build`] with the provider settings given (tests point them at fake providers).
pub async fn build_with(config: Config, settings: ProviderSettings) -> anyhow::Result<AppState> {
    build_tuned(config, settings, |_| {}).await
}

/// [`build_with`], with the film workflows' settings adjusted by `tune` (a benchmark on
/// providers scaled down in time polls them as much more often).
pub async fn build_tuned(
    config: Config,
    mut settings: ProviderSettings,
    tune: impl FnOnce(&mut FilmConfig),
) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("create the data directory {}", config.data_dir.display()))?;
    let engine = Engine::connect(
        &config.database_url,
        EngineConfig {
            lease: config.lease,
            build: BUILD.to_string(),
            ..EngineConfig::default()
        },
    )
    .await
    .with_context(|| {
        format!(
            "open the database {}",
            slate_engine::store::redact_url(&config.database_url)
        )
    })?;
    // What is set wins; a key not set keeps the limit stored for it (a person may have changed
    // it over the admin API), or gets its default.
    let stored = engine.store().concurrency_usage().await?;
    for (key, default) in crate::config::DEFAULT_LIMITS {
        let max = match config.concurrency.iter().find(|(k, _)| k == key) {
            Some((_, max)) => *max,
            None if stored.iter().any(|(k, _, m)| k == key && m.is_some()) => continue,
            None => Some(*default),
        };
        engine.set_concurrency_limit(key, max).await?;
    }
    let db = FilmDb::of(&engine);
    if settings.public_url.is_none() {
        settings.public_url = config.public_url.clone();
    }
    if settings.webhook_secret.is_none() {
        settings.webhook_secret = config.webhook_secret.clone();
    }
    if settings.media_secret.is_none() {
        settings.media_secret = config.providers.media_secret.clone().or_else(|| {
            settings
                .webhook_secret
                .as_ref()
                .map(slate_activities::config::media_secret_from)
        });
    }
    let blobs = Blobs::open(
        config.blob_url.as_deref(),
        &config.data_dir,
        settings.media_url.clone(),
    )?
    .with_signed_media(settings.public_url.clone(), settings.media_secret.clone());
    let studio = Studio::build(
        settings,
        blobs,
        db.activities_db(),
        StudioOptions {
            vision_fail_rate: config.vision_fail_rate,
        },
    );
    let docs: Arc<dyn DocumentStore> = documents(&db, config.mongodb_uri.as_ref()).await?;
    let film = Arc::new(Film {
        studio,
        repo: FilmRepo::new(db),
        docs,
        config: {
            let mut c = FilmConfig {
                parallel_scenes: config.parallel_scenes,
                one_pass_cut: config.scene_one_pass,
                edit_window: config.edit_window,
                ..FilmConfig::default()
            };
            tune(&mut c);
            c
        },
    });
    film.repo.seed_templates().await?;
    slate_workflows::register(&engine, film.clone());
    let jwks = film
        .studio
        .settings
        .fal
        .as_ref()
        .map(|f| f.jwks_url.clone())
        .unwrap_or_else(|| slate_activities::config::DEFAULT_FAL_JWKS_URL.into());
    Ok(AppState {
        engine,
        film,
        config: Arc::new(config),
        live: Arc::default(),
        fal_keys: Arc::new(slate_activities::remote::fal_signature::FalWebhookKeys::new(jwks)),
    })
}

#[cfg(not(feature = "mongodb"))]
async fn documents(
    db: &FilmDb,
    mongodb_uri: Option<&slate_activities::Secret>,
) -> anyhow::Result<Arc<dyn DocumentStore>> {
    if mongodb_uri.is_some() {
        tracing::warn!(
            "MONGODB_URI is set but this build has no MongoDB support (cargo feature `mongodb`); documents stay in the workflow database"
        );
    }
    Ok(Arc::new(SqlDocuments::new(db.clone())))
}

#[cfg(feature = "mongodb")]
async fn documents(
    db: &FilmDb,
    mongodb_uri: Option<&slate_activities::Secret>,
) -> anyhow::Result<Arc<dyn DocumentStore>> {
    match mongodb_uri {
        Some(uri) => Ok(Arc::new(
            slate_workflows::docstore::mongo::MongoDocuments::connect(uri.expose(), db.clone())
                .await?,
        )),
        None => Ok(Arc::new(SqlDocuments::new(db.clone()))),
    }
}

/// What a process says at start, whatever `SLATE_LOG` lets through: what it does and where,
/// its stores, how providers reach our media, and which provider (and model) serves each
/// activity, so a person sees at once whether a key switched a provider on.
pub fn banner(state: &AppState, role: &str) -> String {
    use std::fmt::Write;
    let c = &state.config;
    let settings = &state.film.studio.settings;
    let mut out = String::new();
    let _ = writeln!(out, "{BUILD} {role}");
    if role != "worker" {
        let _ = writeln!(out, "  address        http://{}/", c.listen);
    }
    let _ = writeln!(
        out,
        "  database       {} ({})",
        state.engine.store().dialect(),
        slate_engine::store::redact_url(&c.database_url)
    );
    let _ = writeln!(
        out,
        "  blobs          {}",
        c.blob_url
            .clone()
            .unwrap_or_else(|| format!("{}", c.data_dir.join("blobs").display()))
    );
    for (what, who) in settings.describe() {
        let _ = writeln!(out, "  {what:<14} {who}");
    }
    if settings.any_remote() {
        let _ = writeln!(
            out,
            "  media          {}",
            state
                .film
                .studio
                .blobs
                .fetch_route()
                .unwrap_or("fal storage uploads only")
        );
        let _ = writeln!(
            out,
            "  callbacks      {}",
            settings
                .public_url
                .as_deref()
                .map(|u| format!("{u}/api/webhooks/…"))
                .unwrap_or_else(|| "none (no SLATE_PUBLIC_URL): jobs are polled".into())
        );
    }
    out
}

/// The start's refusal of a provider configuration that cannot work (the offline part of
/// `slate doctor`), naming what to set; warnings are logged.
pub fn check_providers(state: &AppState) -> anyhow::Result<()> {
    let findings = slate_activities::doctor::offline(
        &state.film.studio.settings,
        &state.film.studio.blobs,
        &slate_activities::doctor::today(),
    );
    for f in &findings {
        if f.status == slate_activities::doctor::Status::Warn {
            tracing::warn!(check = %f.check, variable = ?f.variable, "{}", f.message);
        }
    }
    let report = slate_activities::doctor::Report::of(findings);
    if !report.ok {
        anyhow::bail!(
            "the provider configuration cannot work:\n  {}\n(`slate doctor` checks it, online too)",
            report.failures().join("\n  ")
        );
    }
    Ok(())
}

/// Serve the API (and, with `workers`, execute runs) until `shutdown` fires.
pub async fn serve(
    state: AppState,
    workers: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(state.config.listen)
        .await
        .with_context(|| format!("listen on {} (SLATE_LISTEN)", state.config.listen))?;
    serve_on(state, listener, workers, shutdown).await
}

/// [`serve`] on a listener already bound (tests bind port 0).
pub async fn serve_on(
    state: AppState,
    listener: tokio::net::TcpListener,
    workers: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let worker = workers.then(|| {
        let w = state.engine.worker().concurrency(state.config.workers);
        tokio::spawn(w.run(shutdown.clone()))
    });
    // The film follows its scenes: whatever a crash or another process missed is found here.
    let follower = tokio::spawn(routes::film::follow_loop(
        state.clone(),
        std::time::Duration::from_secs(2),
        shutdown.clone(),
    ));
    let router = app::router(state);
    let stop = shutdown.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    follower.abort();
    if let Some(w) = worker {
        w.await??;
    }
    Ok(())
}

/// Fire the token on SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("install SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down: finishing the current steps");
        t.cancel();
    });
    token
}
