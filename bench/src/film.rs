//! `slate-bench film`: how long a film takes, against how long its providers make it take.
//!
//! A generated project of N scenes (its places change every one to five scenes, as films do) is
//! produced twice, each time from nothing on a SQLite database of its own: once as Slate makes
//! films (chains of dependent scenes side by side, decision 0018) and once one scene after
//! another. The providers are the in-process fakes of `slate-tests`, following their documented
//! contracts, with the spec's latencies scaled down (one provider minute lasting
//! `--ms-per-minute`, 100 ms by default): images 30-90 s, videos 2-8 min, voices 10-30 s,
//! language-model answers 5-20 s, vision a few seconds. A request's latency is drawn from its
//! content, so both productions wait the same for the same call. The concurrency limits are
//! Slate's defaults unless `--concurrency` says otherwise.
//!
//! The lower bound the film's wall time is compared with is the largest of
//! - the longest chain of dependent scenes, each scene as long as it took alone in the
//!   sequential production (nothing else in flight);
//! - for each limited key, the provider time of its jobs divided by its limit;
//!
//! plus the film run's own work before its first scene and after its last (reading the scenes,
//! stitching), as measured; or, when larger, this machine's: the processor time the film used
//! (Slate, and the ffmpeg runs for it and for the fake providers) over its cores.
//!
//! (Over 600 lines on purpose: one benchmark: the generated project, the latency-scaled fakes,
//! both productions and the report read together as the measurement they make.)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};
use slate_engine::{Engine, RunFilter, RunId, RunRecord, RunStatus, StartOptions};
use slate_tests::fake_fal::FakeFal;
use slate_tests::fake_last_frame::FakeLastFrame;
use slate_tests::fake_openrouter::FakeOpenRouter;
use slate_tests::fake_tasks::FakeTasks;
use slate_tests::latency::{JobStats, Latency};
use slate_workflows::generation::{ProduceInput, Production};
use slate_workflows::{Film, Slug};
use tokio_util::sync::CancellationToken;

use slate_server::config::{Config, DEFAULT_LIMITS};

/// Options of `slate-bench film`.
#[derive(Args, Debug, Clone)]
pub struct FilmBenchArgs {
    /// Scenes in the generated project (N).
    #[arg(long, default_value_t = 40)]
    pub scenes: usize,
    /// Seed of the project and of the providers' latencies.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// How long one provider minute lasts here, ms.
    #[arg(long, default_value_t = 100.0)]
    pub ms_per_minute: f64,
    /// Concurrency limits (`images=4,video=2`; Slate's defaults when not given).
    #[arg(long)]
    pub concurrency: Option<String>,
    /// Size of the providers' clips (`WxH`). Trimming them, mixing voices in and taking their
    /// last frame is real ffmpeg work on this machine, which does not shrink with the
    /// providers' scale: small clips keep it in proportion.
    #[arg(long, default_value = "320x180", value_parser = clip_size)]
    pub clip: String,
    /// Skip the sequential production (no ratio to it, and a chain bound from the parallel
    /// production's own scene times, which is not a lower bound).
    #[arg(long)]
    pub no_sequential: bool,
    /// Keep the productions' data directories (printed) instead of deleting them.
    #[arg(long)]
    pub keep: bool,
    /// Cut and voice each scene's clip in two ffmpeg passes, as builds before the patch
    /// `one-pass-cut` (to measure what the one pass saves).
    #[arg(long)]
    pub two_pass: bool,
}

const SLUG: &str = "bench-film";

fn clip_size(s: &str) -> Result<String, String> {
    match s
        .split_once('x')
        .map(|(w, h)| (w.parse::<u32>(), h.parse::<u32>()))
    {
        Some((Ok(w), Ok(h)))
            if (16..=3840).contains(&w) && (16..=2160).contains(&h) && w % 2 == 0 && h % 2 == 0 =>
        {
            Ok(s.to_string())
        }
        _ => Err(format!(
            "`{s}` is not WxH with even sides from 16 to 3840x2160, e.g. 320x180"
        )),
    }
}

/// Run the benchmark and print its figures.
pub async fn run(args: FilmBenchArgs) -> anyhow::Result<()> {
    if args.scenes == 0 || args.scenes > 500 {
        bail!("--scenes must be 1 to 500");
    }
    if !(1.0..=60_000.0).contains(&args.ms_per_minute) {
        bail!("--ms-per-minute must be 1 to 60000");
    }
    let gather = project(args.scenes, args.seed);
    let places = places_in(&gather);
    let limits = limits(args.concurrency.as_deref())?;
    println!(
        "slate-bench film: N={} generated scenes (seed {}, {} changes of place), providers 1 min -> {} ms, clips {}, limits {}",
        args.scenes,
        args.seed,
        places.saturating_sub(1),
        args.ms_per_minute,
        args.clip,
        limits
            .iter()
            .map(|(k, v)| format!("{k}={}", v.map_or("off".to_string(), |n| n.to_string())))
            .collect::<Vec<_>>()
            .join(",")
    );
    let m = measure_with(&args, &gather, limits).await?;
    report(&args, &m);
    Ok(())
}

/// Both productions, measured (what `slate-bench film` prints).
#[derive(Debug)]
pub struct Measured {
    /// The limits in force, by key (`None`: no limit).
    pub limits: Vec<(String, Option<u32>)>,
    /// The film made as Slate makes films.
    pub parallel: Produced,
    /// The same film, one scene after another (unless skipped).
    pub sequential: Option<Produced>,
}

/// Run the benchmark's productions without printing their figures.
pub async fn measure(args: &FilmBenchArgs) -> anyhow::Result<Measured> {
    let limits = limits(args.concurrency.as_deref())?;
    measure_with(args, &project(args.scenes, args.seed), limits).await
}

async fn measure_with(
    args: &FilmBenchArgs,
    gather: &Value,
    limits: Vec<(String, Option<u32>)>,
) -> anyhow::Result<Measured> {
    let parallel = produce(args, gather, true).await?;
    let sequential = if args.no_sequential {
        None
    } else {
        Some(produce(args, gather, false).await?)
    };
    Ok(Measured {
        limits,
        parallel,
        sequential,
    })
}

/// The limits in force: Slate's defaults, with what `--concurrency` sets.
fn limits(set: Option<&str>) -> anyhow::Result<Vec<(String, Option<u32>)>> {
    let mut out: Vec<(String, Option<u32>)> = DEFAULT_LIMITS
        .iter()
        .map(|(k, v)| (k.to_string(), Some(*v)))
        .collect();
    if let Some(s) = set {
        let c = Config::load(None, |k| (k == "SLATE_CONCURRENCY").then(|| s.to_string()))
            .map_err(anyhow::Error::msg)?;
        for (k, v) in c.concurrency {
            if let Some(e) = out.iter_mut().find(|(o, _)| *o == k) {
                e.1 = v;
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The generated project

/// A small deterministic generator (splitmix64): the project is the same for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const CAST: &[(&str, &str, &str, &str)] = &[
    (
        "Ada",
        "hero",
        "thirty, short dark hair, a red scarf, a canvas satchel",
        "quick, warm",
    ),
    (
        "Bram",
        "supporting",
        "sixty, grey beard, a fisherman's sweater, a cane",
        "slow, gravelly",
    ),
    (
        "Cleo",
        "antagonist",
        "forty, tall, a long black coat, silver rings",
        "cool, precise",
    ),
];

const PLACES: &[(&str, &str)] = &[
    (
        "Harbor Wall",
        "a stone harbor wall with moored boats and gulls",
    ),
    (
        "Night Market",
        "a crowded market street under paper lanterns",
    ),
    (
        "Lighthouse Stair",
        "a spiral iron stair inside an old lighthouse",
    ),
    (
        "Fish Hall",
        "a vast wet hall of ice tables and hanging scales",
    ),
    ("Cliff Road", "a narrow road along a cliff above the sea"),
    (
        "Attic Room",
        "a low attic room with maps pinned over the bed",
    ),
    (
        "Tram Depot",
        "a dark depot of sleeping trams and humming wires",
    ),
    ("Salt Flats", "white salt flats under a wide pale sky"),
];

const ACTIONS: &[&str] = &[
    "{a} walks along the edge, watching the water.",
    "{a} opens the satchel and checks the map.",
    "{a} turns at a sound behind her.",
    "{a} runs past the crowd toward the far end.",
    "{a} and {b} stop and look at each other.",
    "{b} points at something far away.",
    "{c} steps out of the shadow.",
    "{a} hides the key in her scarf.",
];

const LINES: &[&str] = &[
    "We leave before the tide turns.",
    "You kept it all these years?",
    "Nobody comes here after dark.",
    "Give me the key and go home.",
    "I know where the ship is.",
];

const TIMES: &[&str] = &["dawn", "morning", "afternoon", "dusk", "night"];

/// The gather data of a project of `n` scenes: one shot per scene, its place changing every
/// one to five shots.
pub fn project(n: usize, seed: u64) -> Value {
    let mut r = Rng(seed);
    let (mut shots, mut place, mut left, mut time) = (vec![], 0usize, 0usize, 0usize);
    for i in 0..n {
        if left == 0 {
            let mut next = r.below(PLACES.len());
            if i > 0 && next == place {
                next = (next + 1) % PLACES.len();
            }
            place = next;
            left = 1 + r.below(5);
            time = r.below(TIMES.len());
        }
        left -= 1;
        let (a, b, c) = (CAST[0].0, CAST[1].0, CAST[2].0);
        let beat = if r.below(3) == 0 {
            let who = CAST[r.below(CAST.len())].0;
            format!("{who}: \"{}\"", LINES[r.below(LINES.len())])
        } else {
            ACTIONS[r.below(ACTIONS.len())]
                .replace("{a}", a)
                .replace("{b}", b)
                .replace("{c}", c)
        };
        shots.push(json!({
            "n": i + 1,
            "beat": beat,
            "where": PLACES[place].0,
            "when": TIMES[time],
        }));
    }
    json!({
        "project": {"slug": SLUG, "title": format!("Bench Film ({n} scenes)")},
        "collections": {
            "cast": CAST.iter().map(|(name, role, look, voice)| json!({"name": name, "role": role, "look": look, "voice": voice})).collect::<Vec<_>>(),
            "places": PLACES.iter().map(|(name, about)| json!({"name": name, "about": about})).collect::<Vec<_>>(),
            "objects": [
                {"name": "key", "about": "an old brass key on a string"},
                {"name": "map", "about": "a folded sea chart, water-stained"}
            ],
            "shots": shots,
        }
    })
}

fn places_in(gather: &Value) -> usize {
    let shots = gather["collections"]["shots"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut n = 0;
    let mut last = None;
    for s in &shots {
        let w = s["where"].as_str();
        if w != last {
            n += 1;
            last = w;
        }
    }
    n
}

// ---------------------------------------------------------------------------------------------
// One production

/// What one production did.
#[derive(Debug)]
pub struct Produced {
    /// Made with chains side by side (else one scene after another).
    pub parallel: bool,
    /// The production run, start to end.
    pub production: Duration,
    /// Its qualification.
    pub qualification: Duration,
    /// Its film run (every scene, the stitch).
    pub film: Duration,
    /// From the film run's start to its first scene's.
    pub head: Duration,
    /// From its last scene's end to its own.
    pub tail: Duration,
    /// Scene number → its run's (start, end), from the film run's start.
    pub scenes: BTreeMap<i32, (Duration, Duration)>,
    /// Scene number → when its composite began (its first step that may use the previous
    /// scene's last frame), from the film run's start.
    pub composites: BTreeMap<i32, Duration>,
    /// The chains of dependent scenes, by scene number.
    pub chains: Vec<Vec<i32>>,
    /// The film's length, seconds.
    pub film_seconds: f64,
    /// The jobs the providers ran, by kind (`image`, `vision`, `video`, `voice`).
    pub jobs: BTreeMap<String, JobStats>,
    /// Language-model calls answered.
    pub llm_calls: usize,
    /// Processor time this process and the programs it ran (ffmpeg for Slate and for the fake
    /// providers) used while the film ran, where the system says (Linux).
    pub film_cpu: Option<Duration>,
    /// Of which the programs it ran (ffmpeg, ffprobe).
    pub film_cpu_tools: Option<Duration>,
}

/// Processor time of this process and its finished children so far, and of the children alone
/// (Linux's `/proc`, whose clock ticks are 1/100 s on every architecture it reports them for).
fn cpu_time() -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces), from field 3 on.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|x| x.parse().ok())
        .collect();
    (f.len() == 4).then(|| {
        (
            Duration::from_millis(f.iter().sum::<u64>() * 10),
            Duration::from_millis((f[2] + f[3]) * 10),
        )
    })
}

async fn produce(args: &FilmBenchArgs, gather: &Value, parallel: bool) -> anyhow::Result<Produced> {
    let label = if parallel { "parallel" } else { "sequential" };
    let dir = std::env::temp_dir().join(format!("slate-bench-film-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let (fakes, state) = studio(args, &dir, parallel).await?;
    let (engine, film) = (state.engine.clone(), state.film.clone());
    let doc = serde_json::to_string(gather)?;
    let slug = slate_workflows::examples::load(&film, &doc, None).await?;
    let stop = CancellationToken::new();
    let worker = tokio::spawn(
        engine
            .worker()
            .concurrency(state.config.workers)
            .run(stop.clone()),
    );
    let began = Instant::now();
    let run = engine
        .start::<Production>(
            &ProduceInput {
                project: slug.clone(),
                edit_window_secs: Some(0),
            },
            StartOptions {
                scope: Some(slug.to_string()),
                ..Default::default()
            },
        )
        .await?
        .run;
    let (done, cpu_at_film) = watch(&engine, &film, &slug, run.id, label, began).await?;
    let (film_cpu, film_cpu_tools) = match (cpu_at_film, cpu_time()) {
        (Some(Some(a)), Some(b)) => (Some(b.0.saturating_sub(a.0)), Some(b.1.saturating_sub(a.1))),
        _ => (None, None),
    };
    stop.cancel();
    let _ = worker.await;
    if done.status != RunStatus::Completed {
        bail!(
            "the {label} production ended {}: {}",
            done.status,
            done.error.map(|e| e.message).unwrap_or_default()
        );
    }
    let mut out = figures(args, &engine, &film, &slug, &done, &fakes).await?;
    out.parallel = parallel;
    out.film_cpu = film_cpu;
    out.film_cpu_tools = film_cpu_tools;
    drop(state);
    if args.keep {
        println!("  {label} production kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(out)
}

/// The fake providers a production of the benchmark calls.
struct Fakes {
    fal: FakeFal,
    tasks: FakeTasks,
    llm: FakeOpenRouter,
    _last_frame: FakeLastFrame,
}

/// The fake providers, with the benchmark's latencies, and Slate configured to call them with
/// its data in `dir`.
async fn studio(
    args: &FilmBenchArgs,
    dir: &std::path::Path,
    parallel: bool,
) -> anyhow::Result<(Fakes, slate_server::state::AppState)> {
    let blobs = dir.join("blobs");
    let latency = Latency::new(args.seed, args.ms_per_minute);
    // Every 10th vision question (by content) is answered NO: scenes re-compose now and then.
    let fal = FakeFal::start("fal-key", 10, 5.0).await;
    let tasks = FakeTasks::start_sized("tasks-key", 5.0, &args.clip).await;
    let lf = FakeLastFrame::start("lf-token", &blobs).await;
    let llm = FakeOpenRouter::start("llm-key").await;
    fal.set_latency(latency);
    tasks.set_latency(latency);
    llm.set_latency(latency);
    let vars: BTreeMap<&str, String> = [
        ("SLATE_DATA_DIR", dir.display().to_string()),
        (
            "SLATE_DATABASE_URL",
            format!("sqlite://{}", dir.join("slate.db").display()),
        ),
        ("SLATE_PARALLEL_SCENES", parallel.to_string()),
        ("SLATE_SCENE_ONE_PASS", (!args.two_pass).to_string()),
        (
            "SLATE_CONCURRENCY",
            args.concurrency.clone().unwrap_or_default(),
        ),
        ("SLATE_FAL_STORAGE_URL", fal.url().to_string()),
        ("FAL_KEY", "fal-key".into()),
        ("SLATE_FAL_QUEUE_URL", fal.url().to_string()),
        ("TASK_API_KEY", "tasks-key".into()),
        ("SLATE_TASKS_URL", tasks.url().to_string()),
        ("SLATE_VIDEO_PROVIDER", "tasks".into()),
        ("LAST_FRAME_TOKEN", "lf-token".into()),
        ("SLATE_LAST_FRAME_URL", lf.url().to_string()),
        ("SLATE_MEDIA_URL", lf.media_url()),
        ("OPENROUTER_API_KEY", "llm-key".into()),
        ("SLATE_OPENROUTER_URL", llm.url().to_string()),
    ]
    .into_iter()
    .collect();
    let config = Config::load(None, |k| vars.get(k).cloned()).map_err(anyhow::Error::msg)?;
    let mut settings = config.providers.clone();
    // Polled as often, on the scaled clock, as Slate polls real providers.
    settings.poll_every = Some(latency.scaled(2.0));
    let state = slate_server::build_tuned(config, settings, |c| {
        c.image_poll = latency.scaled(1.0);
        c.video_wait = latency.scaled(10.0);
        // The same 10-minute deadline, scaled, with room for the polls' own time.
        c.video_rounds = 300;
    })
    .await?;
    Ok((
        Fakes {
            fal,
            tasks,
            llm,
            _last_frame: lf,
        },
        state,
    ))
}

/// Waits for the production to end, saying every 2 s how many scenes are done; returns its
/// record and the processor time when the film began.
async fn watch(
    engine: &Engine,
    film: &Film,
    slug: &Slug,
    run: RunId,
    label: &str,
    began: Instant,
) -> anyhow::Result<(RunRecord, Option<Option<(Duration, Duration)>>)> {
    let mut said = Instant::now();
    let mut cpu_at_film = None;
    let done = loop {
        let r = engine.get(run).await?;
        if r.status.is_terminal() {
            break r;
        }
        if cpu_at_film.is_none()
            && !engine
                .list(&RunFilter {
                    workflow: Some(slate_workflows::names::workflow::GENERATE.into()),
                    limit: Some(1),
                    ..Default::default()
                })
                .await?
                .is_empty()
        {
            cpu_at_film = Some(cpu_time());
        }
        if said.elapsed() >= Duration::from_secs(2) {
            said = Instant::now();
            let scenes = film.repo.scenes(slug).await.unwrap_or_default();
            let finished = scenes
                .iter()
                .filter(|s| s.status == slate_workflows::model::SceneStatus::Completed)
                .count();
            eprintln!(
                "  {label}: {:>5.1} s, {finished}/{} scenes done",
                began.elapsed().as_secs_f64(),
                scenes.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    Ok((done, cpu_at_film))
}

/// The production's figures from its runs, journals and the fakes' records.
async fn figures(
    args: &FilmBenchArgs,
    engine: &Engine,
    film: &Film,
    slug: &Slug,
    done: &RunRecord,
    fakes: &Fakes,
) -> anyhow::Result<Produced> {
    let list = |w: &str| {
        let engine = engine.clone();
        let w = w.to_string();
        async move {
            engine
                .list(&RunFilter {
                    workflow: Some(w),
                    limit: Some(500),
                    ..Default::default()
                })
                .await
        }
    };
    let one = |v: Vec<RunRecord>, what: &str| -> anyhow::Result<RunRecord> {
        v.into_iter()
            .next()
            .with_context(|| format!("no {what} run"))
    };
    let qual = one(
        list(slate_workflows::names::workflow::QUALIFY).await?,
        "qualification",
    )?;
    let filmrun = one(
        list(slate_workflows::names::workflow::GENERATE).await?,
        "film",
    )?;
    let span = |r: &RunRecord| {
        (r.finished_at.unwrap_or(r.updated_at) - r.created_at)
            .to_std()
            .unwrap_or_default()
    };
    let since =
        |t: chrono::DateTime<chrono::Utc>| (t - filmrun.created_at).to_std().unwrap_or_default();
    let scenes = film.repo.scenes(slug).await?;
    if scenes.len() != args.scenes {
        tracing::warn!(
            made = scenes.len(),
            asked = args.scenes,
            "qualification broke the screenplay into a different number of scenes"
        );
    }
    let number: BTreeMap<String, i32> = scenes
        .iter()
        .map(|s| (s.id.clone(), s.scene_number))
        .collect();
    let mut times = BTreeMap::new();
    let mut composites = BTreeMap::new();
    for r in list(slate_workflows::names::workflow::SCENE).await? {
        let Some(n) = r.input["scene_id"].as_str().and_then(|id| number.get(id)) else {
            continue;
        };
        let end = r.finished_at.unwrap_or(r.updated_at);
        times.insert(*n, (since(r.created_at), since(end)));
        let events = engine.store().events(r.id).await?;
        if let Some(e) = events.iter().find(|e| {
            e.step
                .as_deref()
                .is_some_and(|s| s.starts_with("composite/"))
        }) {
            composites.insert(*n, since(e.at));
        }
    }
    let first = times.values().map(|t| t.0).min().unwrap_or_default();
    let last = times.values().map(|t| t.1).max().unwrap_or_default();
    let film_time = span(&filmrun);
    let mut jobs = fakes.fal.jobs();
    for (k, v) in fakes.tasks.jobs() {
        jobs.insert(k, v);
    }
    Ok(Produced {
        parallel: true,
        production: span(done),
        qualification: span(&qual),
        film: film_time,
        head: first,
        tail: film_time.saturating_sub(last),
        scenes: times,
        composites,
        chains: slate_workflows::film_workflow::chains_of(&scenes),
        film_seconds: filmrun
            .output
            .as_ref()
            .and_then(|o| o["duration"].as_f64())
            .unwrap_or_default(),
        jobs,
        llm_calls: fakes.llm.calls().len(),
        film_cpu: None,
        film_cpu_tools: None,
    })
}

// ---------------------------------------------------------------------------------------------
// The figures

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The most scene runs in flight at once.
pub fn peak_in_flight(p: &Produced) -> usize {
    let mut edges: Vec<(Duration, i32)> = p
        .scenes
        .values()
        .flat_map(|(s, e)| [(*s, 1), (*e, -1)])
        .collect();
    edges.sort();
    let (mut now, mut peak) = (0, 0);
    for (_, d) in edges {
        now += d;
        peak = peak.max(now);
    }
    peak as usize
}

fn report(args: &FilmBenchArgs, m: &Measured) {
    let (par, seq) = (&m.parallel, m.sequential.as_ref());
    let runs: Vec<&Produced> = std::iter::once(par).chain(seq).collect();
    println!();
    print!("{:<28}", "");
    for p in &runs {
        print!("{:>14}", if p.parallel { "parallel" } else { "sequential" });
    }
    println!();
    let row = |name: &str, f: &dyn Fn(&Produced) -> String| {
        print!("{name:<28}");
        for p in &runs {
            print!("{:>14}", f(p));
        }
        println!();
    };
    row("production", &|p| secs(p.production));
    row("  qualification", &|p| secs(p.qualification));
    row("  film (the scenes, stitch)", &|p| secs(p.film));
    row("scenes", &|p| p.scenes.len().to_string());
    row("film length", &|p| format!("{:.2} s", p.film_seconds));
    row("scene runs at once, most", &|p| {
        peak_in_flight(p).to_string()
    });
    row("language-model calls", &|p| p.llm_calls.to_string());
    for kind in ["image", "vision", "video", "voice"] {
        row(&format!("{kind} jobs (most at once)"), &|p| {
            let j = p.jobs.get(kind).copied().unwrap_or_default();
            format!("{} ({})", j.count, j.peak)
        });
    }
    bounds(args, m);
}

/// The film's lower bound (the providers' and this machine's) and the measured film against it.
fn bounds(args: &FilmBenchArgs, m: &Measured) {
    let (limits, par, seq) = (&m.limits, &m.parallel, m.sequential.as_ref());
    let alone = seq.unwrap_or(par);
    let duration_alone = |n: &i32| {
        alone
            .scenes
            .get(n)
            .map(|(s, e)| e.saturating_sub(*s))
            .unwrap_or_default()
    };
    let (mut chain, mut chain_of) = (Duration::ZERO, vec![]);
    for c in &par.chains {
        let d: Duration = c.iter().map(duration_alone).sum();
        if d > chain {
            (chain, chain_of) = (d, c.clone());
        }
    }
    let mut parts = vec![(
        format!(
            "longest chain (scenes {}-{}, {} scenes, each as long as alone)",
            chain_of.first().copied().unwrap_or_default(),
            chain_of.last().copied().unwrap_or_default(),
            chain_of.len()
        ),
        chain,
    )];
    for (key, kind) in [("images", "image"), ("video", "video")] {
        let Some((_, Some(max))) = limits.iter().find(|(k, _)| k == key) else {
            continue;
        };
        let busy = par.jobs.get(kind).map(|j| j.busy).unwrap_or_default();
        parts.push((
            format!("{key}: {} of provider time / limit {max}", secs(busy)),
            busy / *max,
        ));
    }
    let widest = parts.iter().map(|p| p.1).max().unwrap_or_default();
    let providers = par.head + widest + par.tail;
    // The machine is a limit too: the film cannot take less than its processor time spread
    // over every core (most of it is ffmpeg starting up, for Slate's trims and voice mixes and
    // for the fake last-frame service's frames and probes, work that on real providers'
    // minutes would be noise).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let machine = par.film_cpu.map(|c| c / cores);
    let bound = providers.max(machine.unwrap_or_default());
    println!();
    println!(
        "the providers' bound: {} = before the first scene {} + the largest of:",
        secs(providers),
        secs(par.head)
    );
    for (what, d) in &parts {
        println!("    {:>9}  {what}", secs(*d));
    }
    println!(
        "  + after the last scene (stitch, finish) {}",
        secs(par.tail)
    );
    if let (Some(cpu), Some(m)) = (par.film_cpu, machine) {
        println!(
            "this machine's bound: {} = {} of processor time (Slate, and ffmpeg for it and for the fake providers) / {cores} cores",
            secs(m),
            secs(cpu)
        );
        if let Some(tools) = par.film_cpu_tools {
            println!(
                "    of which this process (Slate, the fakes) {}, the programs it ran (ffmpeg, ffprobe) {}",
                secs(cpu.saturating_sub(tools)),
                secs(tools)
            );
        }
    }
    println!(
        "lower bound of the parallel film: {} (the larger)",
        secs(bound)
    );
    for (key, kind) in [("images", "image"), ("video", "video")] {
        if let Some((_, Some(max))) = limits.iter().find(|(k, _)| k == key) {
            let peak = par.jobs.get(kind).map(|j| j.peak).unwrap_or_default();
            println!(
                "limit {key}={max}: at most {peak} {kind} jobs ran at once at the provider{}",
                if peak as u32 > *max {
                    "  (EXCEEDED)"
                } else {
                    ""
                }
            );
        }
    }
    println!();
    println!(
        "N={}: film wall {} / lower bound {} = {:.2}  (/ the providers' bound alone: {:.2})",
        args.scenes,
        secs(par.film),
        secs(bound),
        par.film.as_secs_f64() / bound.as_secs_f64().max(1e-9),
        par.film.as_secs_f64() / providers.as_secs_f64().max(1e-9)
    );
    if let Some(s) = seq {
        println!(
            "N={}: film wall {} / sequential {} = {:.2}",
            args.scenes,
            secs(par.film),
            secs(s.film),
            par.film.as_secs_f64() / s.film.as_secs_f64().max(1e-9)
        );
    } else {
        println!(
            "(no sequential production: --no-sequential; the chain bound used the parallel scene times)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_project_changes_place_every_one_to_five_shots() {
        let g = project(40, 7);
        assert_eq!(g, project(40, 7), "the same for the same seed");
        let shots = g["collections"]["shots"].as_array().unwrap();
        assert_eq!(shots.len(), 40);
        let mut run = 0;
        let mut last = None;
        for s in shots {
            let w = s["where"].as_str();
            if w == last {
                run += 1;
            } else {
                run = 1;
                last = w;
            }
            assert!(run <= 5, "a place holds at most five shots in a row");
        }
        assert!(places_in(&g) >= 40 / 5);
    }
}
