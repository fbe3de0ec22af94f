//! Every bundled example, written the way different people write, goes from gather data to a
//! playable film offline; and the local studio reads content, not field names: renaming and
//! reshaping an example's fields at random changes nothing about how many scenes it makes.
//!
//! (Over 600 lines on purpose: every bundled example made into a film, with the shared production
//! and film checks they all use.)

mod support;

use serde_json::{Map, Value, json};
use slate_activities::BlobRef;
use slate_activities::local::LocalPlanner;
use slate_activities::local::media::{probe_duration, stitched_length};
use slate_activities::model::*;
use slate_activities::traits::Planner;
use slate_engine::{RunStatus, StartOptions};
use slate_workflows::generation::{FilmOutput, ProduceInput, ProduceOutput, Production};
use slate_workflows::model::SceneStatus;
use slate_workflows::{Slug, examples};
use support::*;

/// Scene ideas each example holds, counted by hand from its file.
const IDEAS: &[(&str, usize)] = &[
    ("lantern-keeper", 4),
    ("storm-lamp", 5),
    ("one-liners", 6),
    ("field-notes", 4),
    ("long-road", 26),
    ("night-bus", 6),
    ("moor-treatment", 5),
];

/// The gather snapshot of an example, as `Film::gather` builds it (a document's `id` stays).
fn snapshot(example: &Value) -> GatherSnapshot {
    let mut g = GatherSnapshot {
        project: "p".into(),
        title: example["project"]["title"].as_str().unwrap().into(),
        ..Default::default()
    };
    for (c, docs) in example["collections"].as_object().unwrap() {
        g.collections
            .insert(c.clone(), docs.as_array().unwrap().clone());
    }
    g
}

async fn scenes_of(g: &GatherSnapshot) -> (Screenplay, Vec<SceneBreakdown>) {
    let p = LocalPlanner;
    let chars = p.characters(g).await.unwrap().value;
    let bible = p.story_bible(g, &chars).await.unwrap().value;
    let sp = p.screenplay(g, &bible, &chars).await.unwrap().value;
    let scenes = p.breakdown(&sp, &bible, &chars).await.unwrap().value;
    (sp, scenes)
}

#[tokio::test]
async fn every_example_reads_into_valid_scenes_one_or_more_per_idea() {
    for (name, ideas) in IDEAS {
        let ex: Value = serde_json::from_str(examples::named(name).unwrap()).unwrap();
        let (sp, scenes) = scenes_of(&snapshot(&ex)).await;
        assert_eq!(sp.sequences.len(), *ideas, "{name}: one sequence per idea");
        assert!(
            sp.sequences
                .iter()
                .all(|s| !s.action.is_empty() || !s.dialogue.is_empty())
        );
        assert!(scenes.len() >= *ideas, "{name}: {} scenes", scenes.len());
        for s in &scenes {
            s.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let locations: std::collections::BTreeSet<_> = scenes.iter().map(|s| &s.location).collect();
        println!(
            "{name}: {ideas} ideas -> {} scenes, {} locations, {:.1} s",
            scenes.len(),
            locations.len(),
            scenes.iter().map(|s| s.expected_duration).sum::<f64>()
        );
    }
}

/// A small deterministic generator (splitmix64), so a failing seed can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Rename every field (to another spelling or a meaningless token) and reshape values: a string
/// becomes a one-element list, a value is wrapped in an object. A document's `id` stays: it is
/// the document's identity, not one of its fields.
fn reshape(v: &Value, rng: &mut Rng, top: bool) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let key = if top && k == "id" {
                    k.clone()
                } else {
                    match rng.next() % 3 {
                        0 => format!("f{:x}", rng.next() % 0xffff),
                        1 => k.to_uppercase().replace('_', " "),
                        _ => {
                            // camelCase
                            let mut s = String::new();
                            let mut up = false;
                            for c in k.chars() {
                                if c == '_' {
                                    up = true;
                                } else if up {
                                    s.extend(c.to_uppercase());
                                    up = false;
                                } else {
                                    s.push(c);
                                }
                            }
                            format!("{s}{}", rng.next() % 10)
                        }
                    }
                };
                let mut val = reshape(x, rng, false);
                if !(top && k == "id") {
                    if val.is_string() && rng.chance(20) {
                        val = json!([val]);
                    } else if rng.chance(15) {
                        val = json!({ format!("v{}", rng.next() % 100): val });
                    }
                }
                out.insert(key, val);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| reshape(x, rng, false)).collect()),
        other => other.clone(),
    }
}

fn reshaped(example: &str, seed: u64) -> Value {
    let mut ex: Value = serde_json::from_str(example).unwrap();
    let mut rng = Rng(seed);
    for docs in ex["collections"].as_object_mut().unwrap().values_mut() {
        for d in docs.as_array_mut().unwrap() {
            *d = reshape(d, &mut rng, true);
        }
    }
    ex
}

#[tokio::test]
async fn renamed_and_reshaped_fields_make_the_same_number_of_scenes() {
    for (name, _) in IDEAS {
        let example = examples::named(name).unwrap();
        let original: Value = serde_json::from_str(example).unwrap();
        let (_, want) = scenes_of(&snapshot(&original)).await;
        for seed in 1..=12u64 {
            let ex = reshaped(example, seed);
            let (sp, got) = scenes_of(&snapshot(&ex)).await;
            assert_eq!(
                got.len(),
                want.len(),
                "{name}, seed {seed}: {} scenes instead of {}\n{}",
                got.len(),
                want.len(),
                sp.content
            );
        }
    }
}

async fn film_of(b: &Bench, example: &str, slug: &str) -> (Slug, FilmOutput) {
    let f = b.film.clone();
    let slug = examples::load(&f, example, Some(slug)).await.unwrap();
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
    let run = finished(&b.engine, id).await;
    assert_eq!(run.status, RunStatus::Completed, "{slug}: {:?}", run.error);
    let out: ProduceOutput = serde_json::from_value(run.output.unwrap()).unwrap();
    (slug, out.film.unwrap())
}

/// A playable film whose length is its scenes' less the crossfades, every scene 3-7 s.
async fn check_film(b: &Bench, slug: &Slug, film: &FilmOutput, ideas: usize) {
    let f = &b.film;
    let scenes = f.repo.scenes(slug).await.unwrap();
    assert!(
        scenes.len() >= ideas,
        "{slug}: {} scenes for {ideas} ideas",
        scenes.len()
    );
    assert_eq!(film.scenes, scenes.len());
    for s in &scenes {
        assert_eq!(
            s.status,
            SceneStatus::Completed,
            "{slug} scene {}",
            s.scene_number
        );
        let d = s.actual_duration.unwrap();
        assert!(
            (3.0 - 1e-6..=7.0 + 1e-6).contains(&d),
            "{slug} scene {}: {d} s",
            s.scene_number
        );
    }
    let path = f
        .studio
        .blobs
        .local_path(&BlobRef::new(&film.film).unwrap())
        .await
        .unwrap();
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
        "{slug} plays"
    );
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
    assert!(
        (probed - expected).abs() <= 0.06,
        "{slug}: film {probed} s, scenes less crossfades {expected} s"
    );
}

async fn example_film(name: &str) {
    let ideas = IDEAS.iter().find(|(n, _)| *n == name).unwrap().1;
    let b = bench(false, |_| {}).await;
    let (slug, film) = film_of(&b, examples::named(name).unwrap(), name).await;
    check_film(&b, &slug, &film, ideas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_lamp_becomes_a_film() {
    example_film("storm-lamp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_liners_become_a_film() {
    example_film("one-liners").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_notes_become_a_film() {
    example_film("field-notes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_six_ideas_become_a_film() {
    example_film("long-road").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fountain_screenplay_becomes_a_film() {
    example_film("night-bus").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prose_treatment_becomes_a_film() {
    example_film("moor-treatment").await;
}

/// The Night Bus example holds its screenplay exactly as the `.fountain` file has it.
#[test]
fn the_screenplay_example_is_its_fountain_file() {
    let ex: Value = serde_json::from_str(examples::NIGHT_BUS).unwrap();
    assert_eq!(
        ex["collections"]["screenplay"][0]["text"].as_str().unwrap(),
        examples::NIGHT_BUS_FOUNTAIN
    );
}

/// A screenplay's scenes follow its headings in order, with the heading's place, interior or
/// exterior and time of day; every line has its speaker and keeps its parenthetical.
#[tokio::test]
async fn a_screenplays_scenes_follow_its_headings() {
    let ex: Value = serde_json::from_str(examples::NIGHT_BUS).unwrap();
    let (sp, scenes) = scenes_of(&snapshot(&ex)).await;
    let headings: Vec<&str> = sp.sequences.iter().map(|s| s.heading.as_str()).collect();
    assert_eq!(
        headings,
        vec![
            "EXT. BUS DEPOT - NIGHT",
            "INT. NIGHT BUS - NIGHT",
            "EXT. COAST ROAD - NIGHT",
            "INT. NIGHT BUS - NIGHT",
            "EXT. LIGHTHOUSE POINT - DAWN",
            "INT. LIGHTHOUSE KITCHEN - MORNING",
        ]
    );
    // Scenes in heading order: their places and times, run together, are the headings'.
    let mut order: Vec<(String, String)> = vec![];
    for s in &scenes {
        let at = (s.location.clone(), s.time_of_day.clone());
        if order.last() != Some(&at) {
            order.push(at);
        }
    }
    let want: Vec<(String, String)> = [
        ("Bus Depot", "night"),
        ("Night Bus", "night"),
        ("Coast Road", "night"),
        ("Night Bus", "night"),
        ("Lighthouse Point", "dawn"),
        ("Lighthouse Kitchen", "morning"),
    ]
    .iter()
    .map(|(p, t)| (p.to_string(), t.to_string()))
    .collect();
    assert_eq!(order, want);
    let lines: Vec<(&str, &str, Option<&str>)> = scenes
        .iter()
        .flat_map(|s| s.dialogue.iter())
        .map(|d| {
            (
                d.character.as_str(),
                d.line.as_str(),
                d.parenthetical.as_deref(),
            )
        })
        .collect();
    assert_eq!(lines.len(), 10, "{lines:?}");
    assert_eq!(
        lines[0],
        (
            "ada",
            "It's the last one. If we miss it, we walk.",
            Some("whispering")
        )
    );
    assert_eq!(lines[3], ("ada", "Told you it was real.", Some("to Tom")));
    assert_eq!(lines[5].0, "radio");
    assert_eq!(lines[9], ("tom", "We didn't miss it.", None));
    // How scenes meet: a dissolve into the dawn, a fade out at the end.
    let dawn = scenes.iter().position(|s| s.time_of_day == "dawn").unwrap();
    assert_eq!(scenes[dawn].transition_in, "dissolve");
    assert_eq!(scenes[dawn - 1].transition_out, "dissolve");
    assert_eq!(scenes.last().unwrap().transition_out, "fade_out");
    // A screenplay is ready for the character and story departments as it is.
    let ready = LocalPlanner.readiness(&snapshot(&ex)).await.unwrap().value;
    for dept in ["character", "story"] {
        let d = ready.iter().find(|d| d.department == dept).unwrap();
        assert!(d.ready, "{dept}: {d:?}");
    }
    // The film's content is the screenplay, written back.
    assert!(
        sp.content.contains("ADA\n(whispering)\nIt's the last one."),
        "{}",
        sp.content
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reshaped_example_makes_a_film_of_as_many_scenes() {
    let b = bench(false, |_| {}).await;
    let original: Value = serde_json::from_str(examples::STORM_LAMP).unwrap();
    let (_, want) = scenes_of(&snapshot(&original)).await;
    let ex = reshaped(examples::STORM_LAMP, 7).to_string();
    let (slug, film) = film_of(&b, &ex, "reshaped").await;
    assert_eq!(film.scenes, want.len());
    check_film(&b, &slug, &film, 5).await;
}

/// A premise that writes its people's looks in prose, a prop document, and scene ideas that
/// mention the prop (once in the plural): the film's frames draw the looks on the characters
/// and the prop in exactly the scenes that mention it.
#[tokio::test]
async fn looks_and_props_of_the_gather_data_are_drawn_in_the_frames() {
    use slate_activities::local::manifest_key;
    use slate_activities::local::reader::mentions_object;
    use slate_activities::local::render;

    let gather = json!({
        "project": {"title": "The Lantern on the Moor"},
        "collections": {
            "my_notes": [{"text": "This is the story of two cousins, Ada, nine, with red hair, round glasses and green wellies, and Tom, twelve and tall, in a yellow raincoat, who cross the moor at midnight to bring a lost lamp home."}],
            "props": [{"name": "Storm Lantern", "description": "an old storm lantern of dented brass", "color": "#c9a227"}],
            "places": [{"name": "The Moor", "description": "open heather moorland under a wide sky, a stone wall and a stile"}],
            "look": [{"text": "Tone: a hushed storybook night in navy and amber, lamplight on wet heather."}],
            "rules": [{"text": "The lantern must never go out on the moor."}],
            "what_happens": [
                {"text": "Ada climbs over the stile onto the moor while Tom keeps watch. Tom: \"Quick, before the fog comes.\""},
                {"text": "Tom finds the lantern lying in the heather and lifts it up."},
                {"text": "Ada and Tom huddle by the stone wall out of the wind. Ada whispers, \"Do you hear that?\""},
                {"text": "Ada swings both lanterns as the cousins reach the farm gate."}
            ]
        }
    });
    let b = bench(false, |_| {}).await;
    let (slug, film) = film_of(&b, &gather.to_string(), "looks-and-props").await;
    check_film(&b, &slug, &film, 4).await;
    let f = &b.film;

    // The premise's facts reached the qualified characters.
    let profiles = f.repo.character_references(&slug).await.unwrap();
    let looks_of = |name: &str| {
        profiles
            .iter()
            .find(|c| c.value.name == name)
            .unwrap_or_else(|| panic!("{name} is a character"))
            .value
            .looks
            .clone()
            .unwrap_or_else(|| panic!("{name} has looks"))
    };
    let (ada, tom) = (looks_of("Ada"), looks_of("Tom"));
    assert_eq!(ada.age, Some(9));
    assert!(
        ada.glasses && ada.hair.is_some() && ada.feet.is_some(),
        "{ada:?}"
    );
    assert!(
        tom.top.is_some() && tom.height.unwrap_or(1.0) > 0.82,
        "{tom:?}"
    );

    let near = |img: &image::RgbImage, (x, y): (f32, f32), want: image::Rgb<u8>| {
        (-2..=2).any(|dy: i32| {
            (-2..=2).any(|dx: i32| {
                let (px, py) = (x as i32 + dx, y as i32 + dy);
                px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() && {
                    let p = img.get_pixel(px as u32, py as u32);
                    (0..3)
                        .map(|i| (p[i] as i32 - want[i] as i32).abs())
                        .sum::<i32>()
                        < 45
                }
            })
        })
    };
    let (mut with_lantern, mut hair_seen, mut glasses_seen) = (0, 0, 0);
    for s in f.repo.scenes(&slug).await.unwrap() {
        let key = s.composite_final_url.clone().unwrap();
        let png = f
            .studio
            .blobs
            .get(&BlobRef::new(&key).unwrap())
            .await
            .unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        let manifest = f
            .studio
            .blobs
            .get(&BlobRef::new(manifest_key(&key)).unwrap())
            .await
            .unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        let comp: Composition = serde_json::from_value(manifest["composition"].clone()).unwrap();
        let text = s.screenplay_text.clone().unwrap_or_default();
        let n = s.scene_number;

        // The lantern: in the manifest and drawn in its colour exactly where the text names it.
        let lantern = comp.props.iter().find(|p| p.name == "Storm Lantern");
        assert_eq!(
            lantern.is_some(),
            mentions_object(&text, "Storm Lantern"),
            "scene {n}: {text:?} has props {:?}",
            comp.props
        );
        if let Some(p) = lantern {
            with_lantern += 1;
            let (x, y) = render::prop_anchor(&comp, p);
            assert!(
                near(&img, (x as f32, y as f32), render::parse_color("#c9a227")),
                "scene {n}: the lantern is drawn"
            );
        }
        // The characters: drawn with their looks; red hair above Ada's face, Tom's raincoat
        // yellow where the vision check samples his body.
        if comp.lighting.as_deref() == Some("silhouette") {
            continue;
        }
        for fig in &comp.characters {
            let looks = fig.looks.clone().unwrap_or_default();
            let (x, y) = render::figure_anchor(&comp, fig);
            let k = render::figure_scale(&comp, fig);
            let hair_at = (x as f32, y as f32 - 48.0 * k - 11.0 * k);
            if fig.name == "Ada" {
                assert_eq!(looks, ada, "scene {n}");
                if hair_at.1 > 30.0
                    && near(
                        &img,
                        hair_at,
                        render::parse_color(ada.hair.as_deref().unwrap()),
                    )
                {
                    hair_seen += 1;
                }
                let rim = (x as f32 - 9.6 * k, y as f32 - 48.0 * k - 2.0 * k);
                if rim.1 > 30.0 && near(&img, rim, image::Rgb([25, 22, 20])) {
                    glasses_seen += 1;
                }
            } else if fig.name == "Tom" {
                assert_eq!(looks, tom, "scene {n}");
                assert_eq!(
                    fig.color,
                    tom.top.clone().unwrap(),
                    "scene {n}: Tom in his raincoat"
                );
            }
        }
    }
    eprintln!("lantern in {with_lantern} frames, hair {hair_seen}, glasses {glasses_seen}");
    assert!(
        with_lantern >= 2,
        "the lantern is in the scenes that name it"
    );
    assert!(
        hair_seen >= 2 && glasses_seen >= 2,
        "Ada's hair in {hair_seen} frames, glasses in {glasses_seen}"
    );
}

/// Every durable name a reader knows (`names`) is one a production writes, and the readers
/// classify the journal's own steps by those names: renaming a step in `names` renames it for
/// the workflow and every reader at once.
#[tokio::test]
async fn every_durable_name_a_reader_knows_is_written_by_a_production() {
    use slate_activities::pricing::CallKind;
    use slate_engine::RunFilter;
    use slate_workflows::estimate::classify;
    use slate_workflows::names::{film, qualify, scene, workflow};

    let b = bench(false, |_| {}).await;
    let (slug, film_out) = film_of(
        &b,
        examples::named("lantern-keeper").unwrap(),
        "durable-names",
    )
    .await;
    check_film(&b, &slug, &film_out, 4).await;
    let runs = b.engine.list(&RunFilter::default()).await.unwrap();
    let mut written: Vec<(String, String)> = vec![];
    for r in &runs {
        let d = b.engine.inspect(r.id).await.unwrap();
        for s in d.steps {
            written.push((r.workflow.clone(), s.name));
        }
    }
    for w in [
        workflow::QUALIFY,
        workflow::SCENE,
        workflow::GENERATE,
        workflow::PRODUCE,
    ] {
        assert!(runs.iter().any(|r| r.workflow == w), "no {w} run");
    }
    let wrote = |wf: &str, name: &str| written.iter().any(|(w, s)| w == wf && s == name);
    let wrote_prefix = |wf: &str, p: &str| written.iter().any(|(w, s)| w == wf && s.starts_with(p));
    for name in qualify::PLANNER_STEPS.iter().chain(&[
        qualify::KNOWLEDGE,
        qualify::LOCK_GATHER,
        qualify::FINISH,
    ]) {
        assert!(
            wrote(workflow::QUALIFY, name),
            "film.qualify never wrote {name}"
        );
    }
    for name in [scene::SHOT_PLAN, scene::VIDEO_SUBMIT, scene::LAST_FRAME] {
        assert!(
            wrote(workflow::SCENE, name),
            "film.scene never wrote {name}"
        );
    }
    assert!(
        wrote_prefix(workflow::SCENE, scene::VOICE_PREFIX),
        "no voice step"
    );
    for name in [film::STITCH, film::FINISH] {
        assert!(
            wrote(workflow::GENERATE, name),
            "film.generate never wrote {name}"
        );
    }
    // Every qualified collection the readers know holds what qualification wrote.
    for c in slate_workflows::docstore::QUALIFIED_COLLECTIONS {
        assert!(
            !b.film.qualified(&slug, c).await.unwrap().is_empty(),
            "qualification wrote nothing to `{c}`"
        );
    }
    // The readers classify what was written by the same names.
    for (w, s) in &written {
        let kind = classify(w, s).map(|(_, k)| k);
        if qualify::PLANNER_STEPS.contains(&s.as_str()) || s == scene::SHOT_PLAN {
            assert_eq!(kind, Some(CallKind::Llm), "{w} {s}");
        }
        if s == scene::VIDEO_SUBMIT || s.starts_with(scene::VIDEO_POLL_PREFIX) {
            assert_eq!(kind, Some(CallKind::Video), "{w} {s}");
        }
        if s.starts_with(scene::VOICE_PREFIX) {
            assert_eq!(kind, Some(CallKind::Voice), "{w} {s}");
        }
        if w == workflow::QUALIFY && qualify::PLANNER_STEPS.contains(&s.as_str()) {
            assert!(
                (1..=3).contains(&qualify::phase_of(s)),
                "{s} belongs to a phase"
            );
        }
    }
}
