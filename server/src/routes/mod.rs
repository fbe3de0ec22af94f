//! The HTTP API, one module per resource. Each handler carries its own OpenAPI description
//! (`#[utoipa::path]`): the document is built from the very registrations the router serves.

pub mod admin;
pub mod approval;
pub mod errors;
pub mod film;
pub mod media;
pub mod production;
pub mod projects;
pub mod qualification;
pub mod runs;
pub mod scenes;
pub mod sound;
pub mod story;
pub mod system;
pub mod templates;
pub mod webhooks;
