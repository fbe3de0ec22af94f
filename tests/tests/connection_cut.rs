//! The database cuts the engine's connections under a running workflow
//! (`pg_terminate_backend`, as a failover or an administrator would): the run completes, every
//! side effect happens, and one is repeated at most once per cut that landed inside its step.

use std::time::{Duration, Instant};

use slate_engine::testing::{fresh_postgres_url, postgres_admin_url, test_config};
use slate_engine::{Engine, RunStatus, StartOptions};
use slate_tests::{CrashInput, CrashPipeline, Sink};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

/// Close every connection to `db` but the caller's; how many were closed.
async fn cut(admin: &str, db: &str) -> u64 {
    let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
    let n: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(db)
    .fetch_all(&mut c)
    .await
    .unwrap();
    n.into_iter().filter(|t| *t).count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_survives_its_connections_being_cut() {
    let url = fresh_postgres_url().await.unwrap();
    let db = url.rsplit('/').next().unwrap().to_string();
    let admin = postgres_admin_url();
    let sink = Sink::new(
        std::env::temp_dir().join(format!("slate-cut-{}", uuid::Uuid::new_v4().simple())),
    );
    let engine = Engine::connect(&url, test_config()).await.unwrap();
    engine.register(CrashPipeline { sink: sink.clone() });
    let stop = CancellationToken::new();
    let worker = tokio::spawn(engine.worker().concurrency(4).run(stop.clone()));
    let input = CrashInput {
        label: "k".into(),
        pause_ms: 150,
        rejects: 1,
        max_attempts: 5,
        layers: 4,
        max_layers: 20,
        wait_for_approval: false,
        abort_in_a: false,
    };
    let id = engine
        .start::<CrashPipeline>(&input, StartOptions::default())
        .await
        .unwrap()
        .run
        .id;
    // Cut every 250 ms while the run goes on.
    let mut cuts = 0;
    let mut closed = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let status = match engine.get(id).await {
            Ok(r) => r.status,
            Err(_) => continue, // our own connection was cut a moment ago
        };
        if status.is_terminal() {
            break;
        }
        if cuts < 8 {
            closed += cut(&admin, &db).await;
            cuts += 1;
        }
        assert!(Instant::now() < deadline, "the run did not finish");
    }
    let run = engine.wait_for(id, Duration::from_secs(30)).await.unwrap();
    stop.cancel();
    let _ = worker.await;
    assert!(cuts >= 3 && closed > 0, "{cuts} cuts closed {closed}");
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    let expected = [
        "k:a",
        "k:b",
        "k:verify/1",
        "k:verify/2",
        "k:layer/0",
        "k:layer/1",
        "k:layer/2",
        "k:layer/3",
        "k:c",
    ];
    let mut repeated = 0;
    for e in expected {
        let n = sink.effect_count(e);
        assert!(n >= 1, "effect {e} never happened: {:?}", sink.effects());
        repeated += n - 1;
    }
    assert!(
        repeated <= cuts,
        "{repeated} effects repeated for {cuts} cuts: {:?}",
        sink.effects()
    );
    println!("{cuts} cuts closed {closed} connections; {repeated} effects repeated");
    drop(engine);
    let _ = slate_engine::testing::drop_postgres_database(&admin, &url).await;
}
