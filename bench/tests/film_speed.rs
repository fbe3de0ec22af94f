//! Scenes in parallel under the providers' limits (issue 14), on the fake remote providers
//! with latencies (the spec's, scaled down): a generated film made as `slate-bench film` makes
//! it, with limits other than the defaults.
//!
//! What is checked is what a person paying the providers cares about: scenes in other places
//! ran side by side, and at no moment did more jobs run at a provider than its limit allows,
//! counted by the provider itself from when each job started and ended, across the runs'
//! suspensions (a video's wait holds its slot while the run sleeps). How fast this is, is the
//! benchmark's to say (`slate-bench film`, `docs/benchmarks.md`), not a test's.

use slate_bench::film::{FilmBenchArgs, measure, peak_in_flight};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_scenes_never_run_more_provider_jobs_than_the_limits() {
    let args = FilmBenchArgs {
        scenes: 12,
        seed: 7,
        ms_per_minute: 60.0,
        concurrency: Some("images=3,video=1".into()),
        clip: "320x180".into(),
        no_sequential: true,
        keep: false,
        two_pass: false,
    };
    let m = measure(&args).await.expect("the production completes");
    let p = &m.parallel;
    assert_eq!(p.scenes.len(), 12, "every scene was made");
    assert!(p.chains.len() > 1, "the generated film changes place");
    assert!(
        peak_in_flight(p) >= 2,
        "scenes in other places ran side by side: {:?}",
        p.scenes
    );
    // Dependent scenes start early (their shot plan and references do not need the previous
    // scene), but their composite, which starts from its last frame, only once it exists.
    let mut early = 0;
    for chain in &p.chains {
        for w in chain.windows(2) {
            let (before, after) = (p.scenes[&w[0]], p.scenes[&w[1]]);
            let composite = p.composites[&w[1]];
            assert!(
                composite >= before.1,
                "scene {}'s composite began at {composite:?}, before scene {} it depends on had finished at {:?}",
                w[1],
                w[0],
                before.1
            );
            if after.0 < before.1 {
                early += 1;
            }
        }
    }
    assert!(
        p.chains.iter().any(|c| c.len() > 1),
        "the generated film has scenes that depend on the one before: {:?}",
        p.chains
    );
    assert!(
        early > 0,
        "dependent scenes started before their predecessor was done: {:?}",
        p.scenes
    );
    let image = p.jobs["image"];
    let video = p.jobs["video"];
    assert_eq!(video.count, 12, "one video per scene");
    // The limits bind (demand was above them) and hold, at the provider.
    assert_eq!(
        image.peak, 3,
        "image jobs at once at the provider: {image:?}"
    );
    assert_eq!(
        video.peak, 1,
        "video jobs at once at the provider: {video:?}"
    );
    assert!(p.film_seconds > 12.0 * 3.0, "a film of twelve clips");
}
