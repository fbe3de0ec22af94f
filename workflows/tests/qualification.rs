//! Qualification on the local studio: outputs, data distribution, phase order, the edit window,
//! the gather lock, and a failing department retried by a person.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use serde_json::json;
use slate_activities::model::*;
use slate_activities::traits::{Paid, Planner, ShotContext};
use slate_activities::{ActivityError, BlobRef, ErrorKind};
use slate_engine::{RunStatus, StartOptions};
use slate_workflows::docstore::{GATHER_COLLECTIONS, Namespace};
use slate_workflows::model::{ProjectStatus, SceneStatus};
use slate_workflows::qualification::{
    EDIT_WINDOW_SIGNAL, Qualification, QualifyInput, QualifyOutput,
};
use slate_workflows::{FilmError, Slug, examples};
use support::*;

async fn qualify(b: &Bench, slug: &Slug, window: u64) -> slate_engine::RunId {
    b.engine
        .start::<Qualification>(
            &QualifyInput {
                project: slug.clone(),
                edit_window_secs: Some(window),
            },
            StartOptions::default(),
        )
        .await
        .unwrap()
        .run
        .id
}

async fn qualifies_the_example(postgres: bool) {
    let b = bench(postgres, |_| {}).await;
    let f = b.film.clone();
    let slug = examples::load(&f, examples::LANTERN_KEEPER, None)
        .await
        .unwrap();
    // A long edit window, ended at once by a person's "continue".
    let id = qualify(&b, &slug, 3600).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while b.engine.get(id).await.unwrap().status != RunStatus::Waiting {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        f.repo
            .project(&slug)
            .await
            .unwrap()
            .gather_locked_at
            .is_none(),
        "nothing is locked during the edit window"
    );
    b.engine
        .signal(
            Some(id),
            EDIT_WINDOW_SIGNAL,
            Some("k".into()),
            json!({"action": "continue"}),
        )
        .await
        .unwrap();
    let run = finished(&b.engine, id).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    let out: QualifyOutput = serde_json::from_value(run.output.unwrap()).unwrap();
    assert_eq!(out.characters, 3);
    assert_eq!(out.scenes, 10);
    assert!(out.knowledge_docs > 0);

    let project = f.repo.project(&slug).await.unwrap();
    assert_eq!(project.status, ProjectStatus::Qualified);
    assert!(project.gather_locked_at.is_some());

    departments_wrote_their_outputs(&f, &slug).await;
    scenes_and_knowledge_are_ready(&f, &slug).await;
    let events = b.engine.store().events(id).await.unwrap();
    phases_ran_in_order(&events);
}

/// Gather keeps only the raw collections; every department's output is in qualified.
async fn departments_wrote_their_outputs(f: &std::sync::Arc<slate_workflows::Film>, slug: &Slug) {
    let slug = slug.clone();
    // Gather: only the raw collections, untouched.
    let gather = Namespace::Gather(slug.clone());
    let colls = f.docs.collections(&gather).await.unwrap();
    assert!(
        colls
            .iter()
            .all(|c| GATHER_COLLECTIONS.contains(&c.as_str())),
        "{colls:?}"
    );
    assert_eq!(
        f.docs.list(&gather, "raw_characters").await.unwrap().len(),
        3
    );

    // Qualified: every department's output.
    let q = |c: &str| {
        let f = f.clone();
        let s = slug.clone();
        let c = c.to_string();
        async move { f.qualified(&s, &c).await.unwrap() }
    };
    let profiles = q("character_profiles").await;
    assert_eq!(profiles.len(), 3);
    for p in &profiles {
        let refs = p["references_360"].as_object().unwrap();
        assert_eq!(refs.len(), 6, "six views of {}", p["name"]);
        for angle in options::ANGLES {
            let v = &refs[*angle];
            let blob = BlobRef::new(v["url"].as_str().unwrap()).unwrap();
            let png = f.studio.blobs.get(&blob).await.unwrap();
            assert_eq!(&png[1..4], b"PNG", "{angle} is a PNG");
            assert!(
                v["description"]
                    .as_str()
                    .unwrap()
                    .contains(p["name"].as_str().unwrap()),
                "{v}"
            );
        }
        assert!(
            f.studio
                .blobs
                .exists(&BlobRef::new(p["master_reference_url"].as_str().unwrap()).unwrap())
                .await
                .unwrap()
        );
    }
    assert_eq!(q("character_360_references").await.len(), 18);
    let bible = q("story_bible").await;
    assert_eq!(bible.len(), 1);
    assert_eq!(bible[0]["title"], "The Lantern Keeper");
    assert_eq!(q("world_rules").await.len(), 2);
    assert_eq!(q("visual_guidelines").await.len(), 1);
    assert_eq!(q("screenplay").await.len(), 1);
    let meta = q("scene_metadata").await;
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0]["scenes"], 10);
    assert!(
        meta[0].get("screenplay_text").is_none(),
        "no scene structure in qualified"
    );
    for (c, n) in [
        ("location_details", 3),
        ("prop_catalog", 3),
        ("voice_casting", 3),
    ] {
        let docs = q(c).await;
        assert_eq!(docs.len(), n, "{c}");
        if c != "voice_casting" {
            for d in &docs {
                assert!(
                    f.studio
                        .blobs
                        .exists(&BlobRef::new(d["reference_url"].as_str().unwrap()).unwrap())
                        .await
                        .unwrap()
                );
            }
        }
    }
}

/// Scenes ready for generation, 3-7 s each, in order; knowledge holds the structure and none
/// of the raw input or prompts.
async fn scenes_and_knowledge_are_ready(f: &std::sync::Arc<slate_workflows::Film>, slug: &Slug) {
    let slug = slug.clone();
    // Structured records: scenes ready for generation, 3-7 s each, in order.
    let scenes = f.repo.scenes(&slug).await.unwrap();
    assert_eq!(scenes.len(), 10);
    for (i, s) in scenes.iter().enumerate() {
        assert_eq!(s.sequence_number, i as i32 + 1);
        assert_eq!(s.status, SceneStatus::ReadyForGeneration);
        assert!((3.0..=7.0).contains(&s.expected_duration));
        s.validate().unwrap();
        assert!(
            s.dramatic_effect.is_some() && s.camera_angle.is_some() && s.lighting_type.is_some()
        );
    }
    assert_eq!(scenes[0].transition_in.as_deref(), Some("fade_in"));
    assert_eq!(
        scenes.last().unwrap().transition_out.as_deref(),
        Some("fade_out")
    );
    assert_eq!(f.repo.character_references(&slug).await.unwrap().len(), 3);
    assert_eq!(
        f.repo.story_bible(&slug).await.unwrap().value.title,
        "The Lantern Keeper"
    );

    // Knowledge: characters, their views, the bible, the scenes' structure; no raw input, no
    // scene prompts.
    let k = f.studio.knowledge.context(slug.as_str()).await.unwrap();
    let count = |kind: &str| k.iter().filter(|d| d.kind == kind).count();
    assert_eq!(count("character"), 3);
    assert_eq!(count("character_view"), 18);
    assert_eq!(count("story_bible"), 1);
    assert_eq!(count("scene"), 10);
    assert_eq!(count("location"), 3);
    assert_eq!(count("prop"), 3);
    assert!(
        k.iter().all(|d| !d.text.contains("Tam's fear of heights")),
        "raw input stays in gather"
    );
    for s in &scenes {
        let prompt = s.base_prompt.clone().unwrap();
        assert!(
            k.iter().all(|d| !d.text.contains(&prompt)),
            "scene prompts stay in the scene records"
        );
    }
}

/// Phase order from the history: A's departments overlap; B, C and D come strictly after; a
/// character's six views in parallel.
fn phases_ran_in_order(events: &[slate_engine::EventRecord]) {
    let events = events.to_vec();
    // Phase order from the history: A's departments overlap; B, C and D come strictly after.
    let (ch, wo, vi) = (
        span(&events, "characters/"),
        span(&events, "world/"),
        span(&events, "visual/"),
    );
    for (x, y) in [(ch, wo), (ch, vi), (wo, vi)] {
        assert!(
            x.0 < y.1 && y.0 < x.1,
            "phase A's departments overlap: {x:?} {y:?}"
        );
    }
    let a_end = ch.1.max(wo.1).max(vi.1);
    let story = span(&events, "story/");
    assert!(story.0 > a_end, "B after A");
    let c = [
        span(&events, "locations/"),
        span(&events, "props/"),
        span(&events, "audio/"),
    ];
    let c_start = c.iter().map(|x| x.0).min().unwrap();
    let c_end = c.iter().map(|x| x.1).max().unwrap();
    assert!(c_start > story.1, "C after B");
    assert!(span(&events, "knowledge/").0 > c_end, "D after C");
    // The six views of a character were generated in parallel: more than one was in flight
    // when the first was done (one after another, only the first would be). How many depends
    // on the machine's load: a local view can be drawn before the last one has started.
    let mira: Vec<(i64, i64)> = options::ANGLES
        .iter()
        .map(|a| span(&events, &format!("characters/mira/{a}/submit")))
        .collect();
    let first_done = mira.iter().map(|x| x.1).min().unwrap();
    let in_flight = mira.iter().filter(|x| x.0 < first_done).count();
    assert!(
        in_flight >= 2,
        "only {in_flight} of the six views had started when the first was done: {mira:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qualifies_the_example_on_sqlite() {
    qualifies_the_example(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qualifies_the_example_on_postgres() {
    qualifies_the_example(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_edit_window_changes_nothing() {
    let b = bench(false, |_| {}).await;
    let slug = examples::load(&b.film, examples::LANTERN_KEEPER, Some("stopped"))
        .await
        .unwrap();
    let id = qualify(&b, &slug, 3600).await;
    b.engine
        .signal(
            Some(id),
            EDIT_WINDOW_SIGNAL,
            None,
            json!({"action": "stop"}),
        )
        .await
        .unwrap();
    let run = finished(&b.engine, id).await;
    let out: QualifyOutput = serde_json::from_value(run.output.unwrap()).unwrap();
    assert!(out.stopped);
    let p = b.film.repo.project(&slug).await.unwrap();
    assert_eq!(p.status, ProjectStatus::Gathering);
    assert!(p.gather_locked_at.is_none());
    // Still editable.
    b.film
        .docs
        .insert(
            &Namespace::Gather(slug),
            "raw_notes",
            None,
            json!({"topic": "style", "text": "more fog"}),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gather_namespace_is_locked_once_qualification_starts() {
    let b = bench(false, |_| {}).await;
    let slug = examples::load(&b.film, examples::LANTERN_KEEPER, Some("locked"))
        .await
        .unwrap();
    let id = qualify(&b, &slug, 0).await;
    finished(&b.engine, id).await;
    let ns = Namespace::Gather(slug.clone());
    let before = b.film.docs.list(&ns, "raw_notes").await.unwrap();
    let e = b
        .film
        .docs
        .insert(
            &ns,
            "raw_notes",
            None,
            json!({"topic": "world", "text": "late idea"}),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, FilmError::Locked(_)), "{e}");
    assert!(e.to_string().contains("read-only"), "{e}");
    assert_eq!(
        b.film.docs.list(&ns, "raw_notes").await.unwrap(),
        before,
        "nothing changed"
    );
    // Hostile names never reach the store.
    for bad in ["../x", "a;drop", "日本"] {
        assert!(Slug::parse(bad).is_err());
    }
    let e = b
        .film
        .docs
        .insert(&ns, "raw notes; DROP", None, json!({}))
        .await
        .unwrap_err();
    assert!(matches!(e, FilmError::Invalid(_)));
}

/// A planner whose world department fails (with a final error) until told otherwise.
struct BrokenWorld {
    inner: Arc<dyn Planner>,
    broken: Arc<AtomicBool>,
}

#[async_trait]
impl Planner for BrokenWorld {
    fn name(&self) -> &'static str {
        "broken world"
    }
    async fn readiness(
        &self,
        g: &GatherSnapshot,
    ) -> slate_activities::Result<Paid<Vec<DepartmentReadiness>>> {
        self.inner.readiness(g).await
    }
    async fn characters(
        &self,
        g: &GatherSnapshot,
    ) -> slate_activities::Result<Paid<Vec<CharacterProfile>>> {
        self.inner.characters(g).await
    }
    async fn story_bible(
        &self,
        g: &GatherSnapshot,
        c: &[CharacterProfile],
    ) -> slate_activities::Result<Paid<StoryBible>> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(ActivityError::new(
                "openrouter",
                ErrorKind::BadRequest,
                "the world department's prompt was rejected",
            )
            .retryable(false));
        }
        self.inner.story_bible(g, c).await
    }
    async fn style_guide(&self, g: &GatherSnapshot) -> slate_activities::Result<Paid<StyleGuide>> {
        self.inner.style_guide(g).await
    }
    async fn screenplay(
        &self,
        g: &GatherSnapshot,
        b: &StoryBible,
        c: &[CharacterProfile],
    ) -> slate_activities::Result<Paid<Screenplay>> {
        self.inner.screenplay(g, b, c).await
    }
    async fn breakdown(
        &self,
        s: &Screenplay,
        b: &StoryBible,
        c: &[CharacterProfile],
    ) -> slate_activities::Result<Paid<Vec<SceneBreakdown>>> {
        self.inner.breakdown(s, b, c).await
    }
    async fn locations(
        &self,
        g: &GatherSnapshot,
        b: &StoryBible,
    ) -> slate_activities::Result<Paid<Vec<LocationDetail>>> {
        self.inner.locations(g, b).await
    }
    async fn props(
        &self,
        g: &GatherSnapshot,
        s: &Screenplay,
    ) -> slate_activities::Result<Paid<Vec<PropItem>>> {
        self.inner.props(g, s).await
    }
    async fn voices(
        &self,
        c: &[CharacterProfile],
    ) -> slate_activities::Result<Paid<Vec<VoiceCasting>>> {
        self.inner.voices(c).await
    }
    async fn shot_plan(
        &self,
        s: &SceneBreakdown,
        c: &ShotContext,
    ) -> slate_activities::Result<Paid<ShotPlan>> {
        self.inner.shot_plan(s, c).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_department_stops_with_one_global_error_and_resumes_on_retry() {
    let broken = Arc::new(AtomicBool::new(true));
    let flag = broken.clone();
    let b = bench(false, move |s| {
        s.planner = Arc::new(BrokenWorld {
            inner: s.planner.clone(),
            broken: flag,
        });
    })
    .await;
    let slug = examples::load(&b.film, examples::LANTERN_KEEPER, Some("broken"))
        .await
        .unwrap();
    let id = qualify(&b, &slug, 0).await;
    let run = finished(&b.engine, id).await;
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(
        err.step.as_deref(),
        Some("world/story-bible"),
        "it stopped at the failing step"
    );
    let errors = b.film.repo.errors(false).await.unwrap();
    assert_eq!(errors.len(), 1, "one global error: {errors:?}");
    let g = &errors[0];
    assert_eq!(g.project.as_deref(), Some("broken"));
    assert!(g.phase.contains("phase A"), "{}", g.phase);
    assert!(g.message.contains("rejected"), "{}", g.message);
    assert_eq!(
        b.film.repo.project(&slug).await.unwrap().status,
        ProjectStatus::Failed
    );
    // The other departments of phase A finished their work; it will not be redone.
    let events = b.engine.store().events(id).await.unwrap();
    let views_before = events
        .iter()
        .filter(|e| {
            matches!(e.data, slate_engine::EventData::StepSucceeded { .. })
                && e.step.as_deref().is_some_and(|s| s.ends_with("/submit"))
        })
        .count();
    assert!(
        views_before >= 21,
        "character sheets were generated: {views_before}"
    );

    broken.store(false, Ordering::SeqCst);
    b.engine
        .retry_step(id, "world/story-bible", "the prompt is fixed")
        .await
        .unwrap();
    let run = finished(&b.engine, id).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(
        b.film.repo.project(&slug).await.unwrap().status,
        ProjectStatus::Qualified
    );
    assert_eq!(
        b.film.repo.errors(false).await.unwrap().len(),
        1,
        "the error stays until a person dismisses it"
    );
    let events = b.engine.store().events(id).await.unwrap();
    let submits_total = events
        .iter()
        .filter(|e| {
            matches!(e.data, slate_engine::EventData::StepSucceeded { .. })
                && e.step
                    .as_deref()
                    .is_some_and(|s| s.starts_with("characters/") && s.ends_with("/submit"))
        })
        .count();
    assert_eq!(submits_total, 21, "no character image was generated twice");
    b.film.repo.dismiss_error(&errors[0].id).await.unwrap();
    assert!(b.film.repo.errors(false).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_scores_every_department() {
    let b = bench(false, |_| {}).await;
    let slug = examples::load(&b.film, examples::LANTERN_KEEPER, Some("ready"))
        .await
        .unwrap();
    let r = slate_workflows::qualification::readiness(&b.film, &slug)
        .await
        .unwrap();
    assert_eq!(r.len(), 6);
    assert!(r.iter().all(|d| d.ready && d.score >= 75), "{r:?}");
    let empty = Slug::parse("empty").unwrap();
    b.film.repo.create_project(&empty, "Empty").await.unwrap();
    let r = slate_workflows::qualification::readiness(&b.film, &empty)
        .await
        .unwrap();
    assert!(r.iter().all(|d| !d.ready));
    assert!(
        r.iter()
            .any(|d| d.missing_items.iter().any(|m| m.contains("character")))
    );
}
