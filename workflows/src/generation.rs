//! Scene generation, the film and the whole production: the workflows of the spec's phases 3
//! and 4, each in a module of its own ([`crate::scene`], [`crate::film_workflow`],
//! [`crate::production`]), gathered here under the paths callers have always used.

pub use crate::film_workflow::{FilmGeneration, FilmInput, FilmOutput};
pub use crate::production::{ProduceInput, ProduceOutput, Production};
pub use crate::scene::{
    PreviousScene, SceneGeneration, SceneInput, SceneOutput, VIDEO_SUBMIT, approval,
};
