//! Every bundled example, written the way different people write, goes from gather data to a
//! playable film offline; and the local studio reads content, not field names: renaming and
//! reshaping an example's fields at random changes nothing about how many scenes it makes.

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
