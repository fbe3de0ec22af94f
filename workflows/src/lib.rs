//! # slate-workflows: the film domain and its durable workflows
//!
//! - The domain ([`model`], [`repo`], [`docstore`]): projects with validated slugs
//!   ([`slug::Slug`]), gather and qualified namespaces of flexible JSON documents, scenes with
//!   every field of the spec's Scenes collection, prompt templates, story bibles, character
//!   references and global errors, all in the workflow database (MongoDB for the namespaces
//!   behind the `mongodb` feature).
//! - The workflows: [`qualification::Qualification`] (phases 1-2), [`generation::SceneGeneration`]
//!   and [`generation::FilmGeneration`] (phases 3-4), and [`generation::Production`] (all of it,
//!   as child runs, so that one budget covers the whole film).
//!
//! Data goes where the spec's distribution rules say and nowhere else: raw input to
//! `gather_<slug>`; validated characters, 360-degree references and the story bible to
//! `qualified_<slug>` and the knowledge store; 360-degree metadata, the story bible, scenes,
//! scene prompts, generated media and prompt templates to the structured records; scene
//! structure (never prompts) to the knowledge store.

pub mod chain;
pub mod character_version;
pub mod cut;
pub mod db;
pub mod docstore;
pub mod error;
pub mod estimate;
pub mod examples;
pub mod export;
pub mod film;
pub mod film_music;
pub mod film_sound;
pub mod film_versions;
pub mod film_workflow;
pub mod generation;
pub mod import;
pub mod model;
pub mod names;
pub mod production;
pub mod qualification;
pub mod repo;
pub mod scene;
pub mod slug;
pub mod sound;

use std::sync::Arc;

pub use error::{FilmError, Result};
pub use film::{Film, FilmConfig};
pub use slate_activities::local::planner::slugify;
pub use slug::Slug;

/// The workflows [`register`] adds, each with a reference to the JSON Schema of its input: what
/// `POST /api/runs` may start, as the API's contract says it. [`catalog_components`] gives the
/// schemas the references point to.
pub fn catalog() -> Vec<(
    &'static str,
    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
)> {
    use slate_engine::Workflow;
    fn input<T: utoipa::ToSchema>() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::Ref::from_schema_name(T::name()).into()
    }
    vec![
        (
            qualification::Qualification::NAME,
            input::<qualification::QualifyInput>(),
        ),
        (
            generation::SceneGeneration::NAME,
            input::<generation::SceneInput>(),
        ),
        (
            generation::FilmGeneration::NAME,
            input::<generation::FilmInput>(),
        ),
        (
            generation::Production::NAME,
            input::<generation::ProduceInput>(),
        ),
        (
            film_versions::FilmStitch::NAME,
            input::<film_versions::StitchInput>(),
        ),
        (
            film_sound::FilmRemix::NAME,
            input::<film_sound::RemixInput>(),
        ),
        (
            character_version::CharacterVersioning::NAME,
            input::<character_version::CharacterVersionInput>(),
        ),
        (chain::ChainRemake::NAME, input::<chain::ChainInput>()),
    ]
}

/// The schemas [`catalog`] refers to, and theirs.
pub fn catalog_components(
    out: &mut Vec<(
        String,
        utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
    )>,
) {
    fn add<T: utoipa::ToSchema>(
        out: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        out.push((T::name().into_owned(), T::schema()));
        T::schemas(out);
    }
    add::<qualification::QualifyInput>(out);
    add::<generation::SceneInput>(out);
    add::<generation::FilmInput>(out);
    add::<generation::ProduceInput>(out);
    add::<film_versions::StitchInput>(out);
    add::<film_sound::RemixInput>(out);
    add::<character_version::CharacterVersionInput>(out);
    add::<chain::ChainInput>(out);
}

/// Register the film workflows on an engine.
pub fn register(engine: &slate_engine::Engine, film: Arc<Film>) {
    engine
        .register(qualification::Qualification(film.clone()))
        .register(generation::SceneGeneration(film.clone()))
        .register(generation::FilmGeneration(film.clone()))
        .register(generation::Production(film.clone()))
        .register(film_versions::FilmStitch(film.clone()))
        .register(film_sound::FilmRemix(film.clone()))
        .register(character_version::CharacterVersioning(film.clone()))
        .register(chain::ChainRemake(film));
}
