//! Scene generation and the final film, end to end on the local studio; the spec's limits.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use slate_activities::local::LocalVision;
use slate_activities::local::media::{probe_duration, stitched_length};
use slate_activities::model::*;
use slate_activities::traits::{Paid, Planner, ShotContext};
use slate_activities::{BlobRef, Blobs};
use slate_engine::{RunStatus, StartOptions};
use slate_workflows::generation::{
    FilmOutput, ProduceInput, ProduceOutput, Production, SceneGeneration, SceneInput,
};
use slate_workflows::model::{ProjectStatus, SceneStatus};
use slate_workflows::qualification::{Qualification, QualifyInput};
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
    assert_eq!(film.scenes, 9);

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

/// A shot agent that asks for far too many layers.
struct Greedy(Arc<dyn Planner>);

#[async_trait]
impl Planner for Greedy {
    fn name(&self) -> &'static str {
        "greedy"
    }
    async fn readiness(
        &self,
        g: &GatherSnapshot,
    ) -> slate_activities::Result<Paid<Vec<DepartmentReadiness>>> {
        self.0.readiness(g).await
    }
    async fn characters(
        &self,
        g: &GatherSnapshot,
    ) -> slate_activities::Result<Paid<Vec<CharacterProfile>>> {
        self.0.characters(g).await
    }
    async fn story_bible(
        &self,
        g: &GatherSnapshot,
        c: &[CharacterProfile],
    ) -> slate_activities::Result<Paid<StoryBible>> {
        self.0.story_bible(g, c).await
    }
    async fn style_guide(&self, g: &GatherSnapshot) -> slate_activities::Result<Paid<StyleGuide>> {
        self.0.style_guide(g).await
    }
    async fn screenplay(
        &self,
        g: &GatherSnapshot,
        b: &StoryBible,
        c: &[CharacterProfile],
    ) -> slate_activities::Result<Paid<Screenplay>> {
        self.0.screenplay(g, b, c).await
    }
    async fn breakdown(
        &self,
        s: &Screenplay,
        b: &StoryBible,
        c: &[CharacterProfile],
    ) -> slate_activities::Result<Paid<Vec<SceneBreakdown>>> {
        self.0.breakdown(s, b, c).await
    }
    async fn locations(
        &self,
        g: &GatherSnapshot,
        b: &StoryBible,
    ) -> slate_activities::Result<Paid<Vec<LocationDetail>>> {
        self.0.locations(g, b).await
    }
    async fn props(
        &self,
        g: &GatherSnapshot,
        s: &Screenplay,
    ) -> slate_activities::Result<Paid<Vec<PropItem>>> {
        self.0.props(g, s).await
    }
    async fn voices(
        &self,
        c: &[CharacterProfile],
    ) -> slate_activities::Result<Paid<Vec<VoiceCasting>>> {
        self.0.voices(c).await
    }
    async fn shot_plan(
        &self,
        s: &SceneBreakdown,
        c: &ShotContext,
    ) -> slate_activities::Result<Paid<ShotPlan>> {
        let mut p = self.0.shot_plan(s, c).await?;
        // 25 more prop layers (of the project's qualified props) after the real ones: 20 is
        // the limit.
        for i in 0..25 {
            p.value.composite_steps.push(CompositeStep {
                kind: "props".into(),
                description: format!("rearrange the props, pass {i}"),
                subjects: vec!["Lantern".into(), "Ledger".into(), "Key".into()],
            });
        }
        Ok(p)
    }
}

async fn qualified(b: &Bench, name: &str) -> Slug {
    let slug = examples::load(&b.film, examples::LANTERN_KEEPER, Some(name))
        .await
        .unwrap();
    let id = b
        .engine
        .start::<Qualification>(
            &QualifyInput {
                project: slug.clone(),
                edit_window_secs: Some(0),
            },
            StartOptions::default(),
        )
        .await
        .unwrap()
        .run
        .id;
    assert_eq!(finished(&b.engine, id).await.status, RunStatus::Completed);
    slug
}

async fn generate_first_scene(b: &Bench, slug: &Slug) -> (slate_engine::RunRecord, String) {
    let scene = b.film.repo.scenes(slug).await.unwrap().remove(0);
    let id = b
        .engine
        .start::<SceneGeneration>(
            &SceneInput {
                project: slug.clone(),
                scene_id: scene.id.clone(),
                previous: None,
            },
            StartOptions::default(),
        )
        .await
        .unwrap()
        .run
        .id;
    (finished(&b.engine, id).await, scene.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_composite_loop_stops_at_20_iterations() {
    let b = bench(false, |s| s.planner = Arc::new(Greedy(s.planner.clone()))).await;
    let slug = qualified(&b, "greedy").await;
    let (run, scene_id) = generate_first_scene(&b, &slug).await;
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(err.kind, "limit_exceeded");
    assert_eq!(err.step.as_deref(), Some("composite"));
    assert!(err.message.contains("20"), "{}", err.message);
    let scene = b.film.repo.scene(&scene_id).await.unwrap();
    assert_eq!(scene.status, SceneStatus::Failed);
    assert_eq!(
        scene.composite_iterations.len(),
        20,
        "twenty iterations, no more"
    );
    assert!(
        scene
            .composite_iterations
            .iter()
            .all(|it| it.references_used.len() <= 3)
    );
    assert!(scene.error_message.unwrap().contains("limit `composite`"));
    let errors = b.film.repo.errors(false).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].phase.contains("scene 1"), "{}", errors[0].phase);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_stops_at_5_attempts() {
    let b = bench(false, |s| {
        let blobs: Blobs = s.blobs.clone();
        s.vision = Arc::new(LocalVision::new(blobs, 1.0));
    })
    .await;
    // Qualification does not verify; scene generation does, and every check fails.
    let slug = qualified(&b, "rejected").await;
    let (run, scene_id) = generate_first_scene(&b, &slug).await;
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(err.kind, "limit_exceeded");
    assert_eq!(err.step.as_deref(), Some("composite/1/verify"));
    assert!(
        err.message.contains("failure rate"),
        "the last rejection is named: {}",
        err.message
    );
    let events = b.engine.store().events(run.id).await.unwrap();
    let images: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.data, slate_engine::EventData::StepSucceeded { .. }))
        .filter_map(|e| e.step.clone())
        .filter(|s| s.starts_with("composite/1/a") && s.ends_with("/submit"))
        .collect();
    assert_eq!(
        images.len(),
        5,
        "five candidate images for iteration 1: {images:?}"
    );
    let scene = b.film.repo.scene(&scene_id).await.unwrap();
    assert_eq!(scene.status, SceneStatus::Failed);
    assert!(scene.composite_iterations.is_empty());
}
