//! Bundled example projects (their gather data), for the demo and the tests.

use serde_json::Value;

use crate::docstore::Namespace;
use crate::error::{FilmError, Result};
use crate::film::Film;
use crate::slug::Slug;

/// The Lantern Keeper: three characters, three locations, three props, four scene ideas, in
/// exactly the spec's collections and tidy fields.
pub const LANTERN_KEEPER: &str = include_str!("../../examples/lantern-keeper/gather.json");
/// The Storm Lamp: messy, as a new user writes it: `text`/`note` fields, a character twice with
/// contradicting looks, places only named in scene ideas, dialogue in quotes.
pub const STORM_LAMP: &str = include_str!("../../examples/storm-lamp/gather.json");
/// The Paper Kite: one-line ideas only, in a collection of the user's own.
pub const ONE_LINERS: &str = include_str!("../../examples/one-liners/gather.json");
/// Salt Road: a notebook of free-text entries ("Title:", "Character:", "Scene 2:", rules,
/// palette codes) and little structure.
pub const FIELD_NOTES: &str = include_str!("../../examples/field-notes/gather.json");
/// The Long Road: 26 scene ideas in a `shots` collection with `beat`/`where`/`when` fields, a
/// `cast`, `places` and `objects`.
pub const LONG_ROAD: &str = include_str!("../../examples/long-road/gather.json");

/// The Night Bus: a screenplay in Fountain (`examples/night-bus/screenplay.fountain`), six
/// scene headings and four speakers, as it is imported: one document holding the script.
pub const NIGHT_BUS: &str = include_str!("../../examples/night-bus/gather.json");
/// The screenplay the Night Bus example holds, as written.
pub const NIGHT_BUS_FOUNTAIN: &str = include_str!("../../examples/night-bus/screenplay.fountain");

/// The Lost Dog of Harrow Moor: a one-page prose treatment in Markdown
/// (`examples/moor-treatment/treatment.md`): a premise, characters and scenes in paragraphs
/// under section headings, as it is imported.
pub const MOOR_TREATMENT: &str = include_str!("../../examples/moor-treatment/gather.json");

/// Every bundled example, by the name `slate demo --example` takes.
pub const ALL: &[(&str, &str)] = &[
    ("lantern-keeper", LANTERN_KEEPER),
    ("storm-lamp", STORM_LAMP),
    ("one-liners", ONE_LINERS),
    ("field-notes", FIELD_NOTES),
    ("long-road", LONG_ROAD),
    ("night-bus", NIGHT_BUS),
    ("moor-treatment", MOOR_TREATMENT),
];

/// An example by name.
pub fn named(name: &str) -> Option<&'static str> {
    ALL.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
}

/// An example's project title.
pub fn title(example: &str) -> String {
    serde_json::from_str::<Value>(example)
        .ok()
        .and_then(|v| v["project"]["title"].as_str().map(str::to_string))
        .unwrap_or_else(|| "Example".into())
}

/// Create the project of an example (under `slug`, or the example's own) and add its gather
/// documents. Returns the slug.
pub async fn load(film: &Film, example: &str, slug: Option<&str>) -> Result<Slug> {
    let v: Value =
        serde_json::from_str(example).map_err(|e| FilmError::Invalid(format!("example: {e}")))?;
    let slug =
        Slug::parse(slug.unwrap_or_else(|| v["project"]["slug"].as_str().unwrap_or("example")))?;
    let title = v["project"]["title"].as_str().unwrap_or("Example");
    film.repo.create_project(&slug, title).await?;
    let ns = Namespace::Gather(slug.clone());
    if let Some(colls) = v["collections"].as_object() {
        for (name, docs) in colls {
            for d in docs.as_array().into_iter().flatten() {
                let id = d.get("id").and_then(|i| i.as_str()).map(str::to_string);
                film.docs.insert(&ns, name, id, d.clone()).await?;
            }
        }
    }
    Ok(slug)
}
