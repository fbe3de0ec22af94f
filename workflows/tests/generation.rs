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
