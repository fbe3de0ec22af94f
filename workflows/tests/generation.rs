//! Scene generation and the final film, end to end on the local studio. (The spec's limits are
//! tested across a SIGKILL in `tests/tests/film_crash.rs`.)

mod support;

use slate_activities::BlobRef;
use slate_activities::local::media::{probe_duration, stitched_length};
use slate_activities::model::*;
use slate_engine::{RunStatus, StartOptions};
use slate_workflows::generation::{FilmOutput, ProduceInput, ProduceOutput, Production};
use slate_workflows::model::{ProjectStatus, SceneStatus};
use slate_workflows::{Slug, examples};
use support::*;

async fn produce(b: &Bench, slug: &Slug) -> slate_engine::RunRecord {
    let id = b
        .engine
        .start::<Production>(
            &ProduceInput {
                project: slug.clone(),
                edit_window_secs: Some(0),
            },
            StartOptions::default(),
        )
        .await
        .unwrap()
        .run
        .id;
    finished(&b.engine, id).await
}

async fn gather_to_film(postgres: bool) {
    let b = bench(postgres, |_| {}).await;
    let f = b.film.clone();
    let slug = examples::load(&f, examples::LANTERN_KEEPER, None)
        .await
        .unwrap();
    let run = produce(&b, &slug).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    let out: ProduceOutput = serde_json::from_value(run.output.unwrap()).unwrap();
    let film: FilmOutput = out.film.unwrap();
    // Four ideas: 2 beats + 1 line, 2 (a summary that adds to its beat) + 1 line, 2 beats, 1 + 1 line.
    assert_eq!(film.scenes, 10);

    let project = f.repo.project(&slug).await.unwrap();
    assert_eq!(project.status, ProjectStatus::Completed);
    assert_eq!(project.final_video.as_deref(), Some(film.film.as_str()));
    let path = f
        .studio
        .blobs
        .local_path(&BlobRef::new(&film.film).unwrap())
        .await
        .unwrap();
    // Playable: ffprobe reads it and ffmpeg decodes every frame without error.
    let probed = probe_duration(&path).await.unwrap();
    let decode = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .await
        .unwrap();
    assert!(
        decode.status.success() && decode.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&decode.stderr)
    );

    let scenes = f.repo.scenes(&slug).await.unwrap();
    let clips: Vec<ClipSpec> = scenes
        .iter()
        .map(|s| ClipSpec {
            video: BlobRef::new(s.generated_video_url.as_ref().unwrap()).unwrap(),
            duration: s.actual_duration.unwrap(),
            transition_in: s.transition_in.clone().unwrap(),
            transition_out: s.transition_out.clone().unwrap(),
        })
        .collect();
    let expected = stitched_length(&clips);
    let sum: f64 = clips.iter().map(|c| c.duration).sum();
    assert!(expected < sum, "the example has crossfades");
    assert!(
        (probed - expected).abs() <= 0.06,
        "film {probed} s, scenes less crossfades {expected} s"
    );
    assert!((film.duration - probed).abs() < 0.01);

    for s in &scenes {
        assert_eq!(
            s.status,
            SceneStatus::Completed,
            "scene {}: {:?}",
            s.scene_number,
            s.error_message
        );
        let actual = s.actual_duration.unwrap();
        assert!(
            (actual - s.expected_duration).abs() <= 1.0 / 24.0 + 1e-6,
            "scene {} is {actual} s, planned {}",
            s.scene_number,
            s.expected_duration
        );
        assert!(!s.composite_iterations.is_empty());
        for (i, it) in s.composite_iterations.iter().enumerate() {
            assert_eq!(it.iteration_number, i as u32 + 1);
            assert!(it.references_used.len() <= 3);
            assert!(it.verification_passed);
            assert!(
                f.studio
                    .blobs
                    .exists(&BlobRef::new(&it.generated_url).unwrap())
                    .await
                    .unwrap()
            );
        }
        assert_eq!(s.composite_iterations[0].layer, "location");
        assert_eq!(s.verification_results.len(), 2);
        assert!(s.verification_results.iter().all(|v| v.passed));
        assert!(
            s.verification_results
                .iter()
                .any(|v| v.verification_type == "brain_query" && v.confidence > 0.8)
        );
        assert!(!s.continuity_checks.is_empty());
        assert!(s.shot_agent_decisions.is_some());
        assert!(s.processing_time.unwrap() > 0.0);
        let frame = f
            .studio
            .blobs
            .get(&BlobRef::new(s.last_frame_url.as_ref().unwrap()).unwrap())
            .await
            .unwrap();
        assert_eq!(&frame[1..4], b"PNG");
        assert!(s.generated_image_url.is_some() && s.composite_final_url == s.generated_image_url);
        for d in &s.dialogue {
            assert!(
                d.audio_url.is_some(),
                "scene {} line `{}` was voiced",
                s.scene_number,
                d.line
            );
        }
    }
    assert_eq!(scenes[0].continuity_checks[0].check_type, "first_scene");
    assert!(
        scenes[1]
            .continuity_checks
            .iter()
            .any(|c| c.check_type == "palette")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_gather_to_film_on_sqlite() {
    gather_to_film(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_gather_to_film_on_postgres() {
    gather_to_film(true).await;
}

/// The scene runs of a film, in film order, with the scenes they made.
async fn scene_runs(
    b: &Bench,
    slug: &Slug,
) -> Vec<(slate_workflows::model::Scene, slate_engine::RunRecord)> {
    let runs = b
        .engine
        .list(&slate_engine::RunFilter {
            workflow: Some("film.scene".into()),
            limit: Some(500),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = vec![];
    for sc in b.film.repo.scenes(slug).await.unwrap() {
        let run = runs
            .iter()
            .find(|r| r.input["scene_id"] == sc.id.as_str())
            .unwrap_or_else(|| panic!("no run of scene {}", sc.scene_number))
            .clone();
        out.push((sc, run));
    }
    out
}

/// Scenes in another place than the one before start at once, side by side; a scene in the
/// same place starts early too (its shot plan and references), but its composite waits for the
/// one before and is seeded with its last frame; the film is the same, scene for scene, as one
/// made a scene at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenes_in_other_places_are_made_side_by_side_and_the_film_is_the_same() {
    let mut films = vec![];
    for parallel in [true, false] {
        let b = bench_with(
            false,
            slate_workflows::FilmConfig {
                parallel_scenes: parallel,
                ..quick_config()
            },
            |_| {},
        )
        .await;
        let slug = examples::load(&b.film, examples::LANTERN_KEEPER, None)
            .await
            .unwrap();
        let run = produce(&b, &slug).await;
        assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
        let out: ProduceOutput = serde_json::from_value(run.output.unwrap()).unwrap();
        let runs = scene_runs(&b, &slug).await;
        let place = |s: &slate_workflows::model::Scene| {
            s.location.as_deref().map(|l| l.trim().to_lowercase())
        };
        let mut overlaps = 0;
        let mut early = 0;
        for (i, (sc, r)) in runs.iter().enumerate() {
            let previous = &r.input["previous"];
            if i == 0 {
                assert!(previous.is_null());
                continue;
            }
            let (before, br) = &runs[i - 1];
            let same_place = place(before) == place(sc);
            if same_place || !parallel {
                // Its composite waited for the scene before, and started from its last frame:
                // given at its start, or sent to it when that scene was done.
                let events = b.engine.store().events(r.id).await.unwrap();
                let composite = events
                    .iter()
                    .find(|e| {
                        e.step
                            .as_deref()
                            .is_some_and(|s| s.starts_with("composite/"))
                    })
                    .map(|e| e.at)
                    .unwrap();
                assert!(
                    composite >= br.finished_at.unwrap(),
                    "scene {}'s composite began before scene {} had its last frame",
                    sc.scene_number,
                    before.scene_number
                );
                let sent = events.iter().find_map(|e| match &e.data {
                    slate_engine::EventData::SignalReceived { payload, .. }
                        if e.step.as_deref() == Some("previous") =>
                    {
                        Some(payload.clone())
                    }
                    _ => None,
                });
                let given = sent.as_ref().unwrap_or(previous);
                assert_eq!(
                    given["last_frame"].as_str(),
                    before.last_frame_url.as_deref(),
                    "scene {}",
                    sc.scene_number
                );
                if !parallel {
                    assert!(r.created_at >= br.finished_at.unwrap());
                } else if r.created_at < br.finished_at.unwrap() {
                    early += 1;
                }
            } else {
                assert!(
                    previous.is_null(),
                    "scene {} waited for another place",
                    sc.scene_number
                );
            }
            // Runs that were in flight together.
            overlaps += runs[..i]
                .iter()
                .filter(|(_, o)| o.finished_at.unwrap() > r.created_at)
                .count();
        }
        if parallel {
            let heads = runs
                .windows(2)
                .filter(|w| place(&w[0].0) != place(&w[1].0))
                .count();
            assert!(heads >= 2, "the example changes place: {heads} times");
            assert!(
                early > 0,
                "scenes in the same place as the one before started early (shot plan, references)"
            );
            assert!(
                overlaps >= heads,
                "{overlaps} overlapping scene runs for {heads} changes of place"
            );
        } else {
            assert_eq!(overlaps, 0, "one scene at a time");
        }
        let durations: Vec<(i32, f64)> = runs
            .iter()
            .map(|(s, _)| (s.sequence_number, s.actual_duration.unwrap()))
            .collect();
        films.push((out.film.unwrap(), durations, overlaps));
        b.stop.cancel();
    }
    let (par, seq) = (&films[0], &films[1]);
    println!(
        "parallel: {} scenes, {:.2} s, {} overlapping runs; one at a time: {:.2} s",
        par.0.scenes, par.0.duration, par.2, seq.0.duration
    );
    assert_eq!(par.0.scenes, seq.0.scenes);
    assert_eq!(
        par.1, seq.1,
        "the same scenes, of the same lengths, in the same order"
    );
    assert!((par.0.duration - seq.0.duration).abs() < 0.05);
}
