//! Past one machine (issue 13): blobs in an S3 bucket (a real S3 API, moto's server, run
//! locally), an API process and two `slate worker` processes with data directories of their
//! own, as on separate hosts, sharing one Postgres and one bucket. A production is made by
//! both workers; the first is SIGKILLed mid-run and the second finishes, stitching the film
//! from clips the first one made. Every blob is in the bucket; none is in a data directory.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::serve::{Serve, free_port, healthy};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// moto's S3 server on a free port, stopped when dropped.
struct Moto(Child, String);

impl Moto {
    async fn start() -> Moto {
        let bin = std::env::var("SLATE_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `{bin}` (a local S3 API; ./scripts/test installs it): {e}")
            });
        let url = format!("http://127.0.0.1:{port}");
        let http = client();
        let deadline = Instant::now() + Duration::from_secs(30);
        while http.get(&url).send().await.is_err() {
            assert!(Instant::now() < deadline, "moto did not come up on {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Moto(child, url)
    }

    async fn create_bucket(&self, bucket: &str) {
        let r = client()
            .put(format!("{}/{bucket}", self.1))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "create bucket: {}", r.status());
    }

    /// Every key in `bucket`, by listing it (ListObjectsV2, page by page).
    async fn list(&self, bucket: &str) -> Vec<String> {
        let http = client();
        let mut keys = vec![];
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{}/{bucket}?list-type=2&max-keys=1000", self.1);
            if let Some(t) = &token {
                url.push_str(&format!("&continuation-token={t}"));
            }
            let xml = http.get(&url).send().await.unwrap().text().await.unwrap();
            keys.extend(tags(&xml, "Key"));
            token = tags(&xml, "NextContinuationToken").into_iter().next();
            if token.is_none() {
                return keys;
            }
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tags(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_string()))
        .collect()
}

/// Files under `dir`, but the local copies a remote store keeps for media tools.
fn files_outside_cache(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p != dir.join("cache") {
                    stack.push(p);
                }
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// The pid in a worker id (`host:pid:n`).
fn pid_of(worker: &str) -> Option<u32> {
    worker.split(':').nth(1)?.parse().ok()
}

/// Which processes claimed the run `id`, in order.
async fn claimers(api: &Api, id: &str) -> Vec<u32> {
    let v = api.get(&format!("/api/runs/{id}/events")).await;
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["type"] == "run_claimed")
        .filter_map(|e| pid_of(e["data"]["worker"].as_str()?))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_bucket_make_a_film_and_survive_a_kill() {
    let moto = Moto::start().await;
    let bucket = "slate-films";
    moto.create_bucket(bucket).await;
    let root = temp_dir("s3");
    let (url, pg) = database_url(Db::Postgres, &root).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let shared: Vec<(String, String)> = [
        ("SLATE_DATABASE_URL", url.clone()),
        ("SLATE_BLOB_URL", format!("s3://{bucket}/studio")),
        ("AWS_ACCESS_KEY_ID", "slate-test".into()),
        ("AWS_SECRET_ACCESS_KEY", "slate-test-secret".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", moto.1.clone()),
        ("SLATE_API_KEY", API_KEY.into()),
        ("SLATE_ADMIN_KEY", ADMIN_KEY.into()),
        ("SLATE_LEASE_SECS", "3".into()),
        ("SLATE_LOG", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let host = |name: &str| {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut env = shared.clone();
        env.push(("SLATE_DATA_DIR".into(), dir.display().to_string()));
        env.push(("SLATE_LISTEN".into(), format!("127.0.0.1:{port}")));
        (dir, env)
    };
    let log = root.join("processes.log");
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let (api_dir, api_env) = host("api");
    let (a_dir, a_env) = host("worker-a");
    let (b_dir, b_env) = host("worker-b");
    let api = Api {
        base,
        http: client(),
    };

    let mut serve = Command::new(env!("CARGO_BIN_EXE_slate"));
    serve.args(["serve", "--api-only"]);
    common::serve::scrub(&mut serve);
    let _api = Serve(
        serve
            .envs(api_env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            )
            .spawn()
            .unwrap(),
    );
    healthy(&api, &log).await;
    let a = Serve::spawn_as("worker", &a_env, &log);
    let a_pid = a.0.id();

    let slug = "two-hosts";
    create_project(&api, slug, &mini_gather(2)).await;
    let (st, p) = api
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{p}");
    let production = p["run_id"].as_str().unwrap().to_string();

    // Worker A alone until it has finished a scene; then B joins and A is killed.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let scenes = api.get(&format!("/api/projects/{slug}/scenes")).await;
        if scenes["scenes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["status"] == "completed")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no scene completed:\n{}", logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = Serve::spawn_as("worker", &b_env, &log);
    let b_pid = b.0.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.kill();

    let run = api.wait_run(&production, Duration::from_secs(400)).await;
    assert_eq!(run["run"]["status"], "completed", "{run}\n{}", logs());

    let made_by = both_workers_made_scenes_and_b_stitched(&api, slug, a_pid, b_pid).await;
    let film = every_blob_is_in_the_bucket(
        &api,
        &moto,
        bucket,
        slug,
        [&api_dir, &a_dir, &b_dir],
        &made_by,
    )
    .await;
    the_film_is_served_from_the_bucket_and_plays(&api, &film, &root).await;
    drop(b);
    if let Some(url) = pg {
        let _ = slate_engine::testing::drop_postgres_database(
            &slate_engine::testing::postgres_admin_url(),
            &url,
        )
        .await;
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// Scenes made by both workers; the film stitched by B from clips A made too. Returns the processes that finished scenes.
async fn both_workers_made_scenes_and_b_stitched(
    api: &Api,
    slug: &str,
    a_pid: u32,
    b_pid: u32,
) -> std::collections::BTreeSet<u32> {
    // Scenes made by both workers; the film stitched by B from clips A made too.
    let scene_runs = api
        .get(&format!(
            "/api/runs?workflow=film.scene&project={slug}&limit=100"
        ))
        .await;
    let mut made_by = std::collections::BTreeSet::new();
    for r in scene_runs["runs"].as_array().unwrap() {
        if r["status"] == "completed"
            && let Some(last) = claimers(api, r["id"].as_str().unwrap()).await.last()
        {
            made_by.insert(*last);
        }
    }
    assert!(
        made_by.contains(&a_pid) && made_by.contains(&b_pid),
        "scenes finished by {made_by:?}; workers A {a_pid}, B {b_pid}"
    );
    let films = api
        .get(&format!("/api/runs?workflow=film.generate&project={slug}"))
        .await;
    let film_run = films["runs"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        claimers(api, &film_run).await.last(),
        Some(&b_pid),
        "B stitched the film"
    );

    made_by
}

/// Every blob is in the bucket, under the prefix; none in a data directory. Returns the film's key.
async fn every_blob_is_in_the_bucket(
    api: &Api,
    moto: &Moto,
    bucket: &str,
    slug: &str,
    dirs: [&Path; 3],
    made_by: &std::collections::BTreeSet<u32>,
) -> String {
    // Every blob is in the bucket, under the prefix; none in a data directory.
    let keys = moto.list(bucket).await;
    let project = api.get(&format!("/api/projects/{slug}")).await;
    let film = project["project"]["final_video"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(keys.contains(&format!("studio/{film}")), "{keys:?}");
    let scenes = api.get(&format!("/api/projects/{slug}/scenes")).await;
    for s in scenes["scenes"].as_array().unwrap() {
        for field in [
            "generated_video_url",
            "last_frame_url",
            "composite_final_url",
        ] {
            let k = s[field].as_str().unwrap();
            assert!(
                keys.contains(&format!("studio/{k}")),
                "{field} {k} not in the bucket"
            );
        }
    }
    assert!(keys.iter().all(|k| k.starts_with("studio/")), "{keys:?}");
    println!(
        "{} blobs in the bucket; scenes finished by {made_by:?}",
        keys.len()
    );
    for dir in dirs {
        let stray = files_outside_cache(dir);
        assert!(stray.is_empty(), "files in {}: {stray:?}", dir.display());
    }

    film
}

/// The API serves the film from the bucket, whole and by ranges; ffprobe reads its length from the bytes served.
async fn the_film_is_served_from_the_bucket_and_plays(api: &Api, film: &str, root: &Path) {
    // The API serves the film from the bucket, whole and by ranges.
    let get = |range: Option<&str>| {
        let mut r = api
            .http
            .get(api.url(&format!("/media/{film}")))
            .bearer_auth(API_KEY);
        if let Some(x) = range {
            r = r.header("range", x);
        }
        r.send()
    };
    let whole = get(None).await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["content-type"], "video/mp4");
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let bytes = whole.bytes().await.unwrap();
    let part = get(Some("bytes=100-199")).await.unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-199/{}", bytes.len()).as_str()
    );
    assert_eq!(&part.bytes().await.unwrap()[..], &bytes[100..200]);
    let out = get(Some(&format!("bytes={}-", bytes.len()))).await.unwrap();
    assert_eq!(out.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let r = api
        .http
        .get(api.url("/media/projects/nope/none.mp4"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().await.unwrap();
    assert!(is_error(&v), "{v}");
    // The film plays: ffprobe reads its length from the bytes the API served.
    let copy = root.join("film.mp4");
    std::fs::write(&copy, &bytes).unwrap();
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&copy)
        .output()
        .unwrap();
    let seconds: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(seconds > 10.0, "{seconds}");
}

/// A film-sized blob goes up in parts and comes back whole, by key and by range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_blob_goes_up_in_parts_and_comes_back_whole() {
    use object_store::aws::AmazonS3Builder;
    use object_store::prefix::PrefixStore;
    use slate_activities::{BlobRef, Blobs};
    let moto = Moto::start().await;
    moto.create_bucket("big").await;
    let s3 = AmazonS3Builder::new()
        .with_bucket_name("big")
        .with_endpoint(&moto.1)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("slate-test")
        .with_secret_access_key("slate-test-secret")
        .build()
        .unwrap();
    let dir = temp_dir("s3-big");
    let blobs = Blobs::remote(
        std::sync::Arc::new(PrefixStore::new(s3, "p")),
        dir.join("cache"),
        None,
    );
    // 20 MiB: three parts of 8 MiB at most.
    let data: Vec<u8> = (0..20u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let file = dir.join("film.mp4");
    std::fs::write(&file, &data).unwrap();
    let r = blobs.put_file("films/big.mp4", &file).await.unwrap();
    assert_eq!(moto.list("big").await, vec!["p/films/big.mp4".to_string()]);
    assert_eq!(blobs.size(&r).await.unwrap(), data.len() as u64);
    // A fresh reader (another host: an empty cache) gets the same bytes.
    let other = Blobs::remote(
        std::sync::Arc::new(PrefixStore::new(
            AmazonS3Builder::new()
                .with_bucket_name("big")
                .with_endpoint(&moto.1)
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_access_key_id("slate-test")
                .with_secret_access_key("slate-test-secret")
                .build()
                .unwrap(),
            "p",
        )),
        dir.join("other-cache"),
        None,
    );
    let copy = other.local_path(&r).await.unwrap();
    assert!(std::fs::read(&copy).unwrap() == data, "the copy differs");
    // Written again with other bytes: the other host's copy is not used, it is fetched anew.
    let changed: Vec<u8> = data.iter().map(|b| b.wrapping_add(1)).collect();
    std::fs::write(&file, &changed).unwrap();
    blobs.put_file("films/big.mp4", &file).await.unwrap();
    let copy = other.local_path(&r).await.unwrap();
    assert!(
        std::fs::read(&copy).unwrap() == changed,
        "a stale copy was used"
    );
    let missing = BlobRef::new("films/none.mp4").unwrap();
    let e = other.local_path(&missing).await.unwrap_err();
    assert_eq!(e.kind, slate_activities::ErrorKind::NotFound);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The spec's services fetch blobs in a bucket by presigned URLs: the right bytes, without our
/// credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_fetch_bucket_blobs_by_presigned_urls() {
    use object_store::aws::AmazonS3Builder;
    use slate_activities::Blobs;
    let moto = Moto::start().await;
    moto.create_bucket("shared").await;
    let s3 = AmazonS3Builder::new()
        .with_bucket_name("shared")
        .with_endpoint(&moto.1)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("slate-test")
        .with_secret_access_key("slate-test-secret")
        .build()
        .unwrap();
    let dir = temp_dir("s3-presign");
    let blobs = Blobs::s3(s3, "studio", dir.join("cache"), None);
    assert_eq!(blobs.fetch_route(), Some("presigned S3 URLs"));
    let r = blobs
        .put(
            "projects/p/scenes/1/still.png",
            b"a still, in a bucket".to_vec(),
        )
        .await
        .unwrap();
    let url = blobs.fetch_url(&r).await.unwrap();
    assert!(
        url.starts_with(&format!(
            "{}/shared/studio/projects/p/scenes/1/still.png?",
            moto.1
        )),
        "{url}"
    );
    assert!(url.contains("X-Amz-Signature="), "{url}");
    // Fetched as a service would: no credentials of ours.
    let got = reqwest::get(&url).await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().to_vec(), b"a still, in a bucket");
    // (That a signature opens only its own object is the store's to enforce; moto's server
    // does not check presigned signatures, so it is not asserted here.)
    let _ = std::fs::remove_dir_all(&dir);
}
