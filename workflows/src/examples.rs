//! Bundled example projects (their gather data), for the demo and the tests.

use serde_json::Value;

use crate::docstore::Namespace;
use crate::error::{FilmError, Result};
use crate::film::Film;
use crate::slug::Slug;

/// The Lantern Keeper: three characters, three locations, three props, four scene ideas.
pub const LANTERN_KEEPER: &str = include_str!("../../examples/lantern-keeper/gather.json");

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
