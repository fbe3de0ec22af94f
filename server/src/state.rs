//! What every handler, page and use case can reach: the engine, the film domain, settings, the
//! live feed and fal's webhook keys. A module of its own so that the routes, the dashboard and
//! the use cases depend on it, and the application (`app`) on them, never the other way.

use std::sync::Arc;

use slate_engine::Engine;
use slate_workflows::Film;

use crate::config::Config;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Engine,
    /// The film domain and activities.
    pub film: Arc<Film>,
    /// Settings.
    pub config: Arc<Config>,
    /// What moved, for the dashboard's live pages.
    pub live: Arc<crate::live::Feed>,
    /// fal's webhook signing keys (fetched from its JWKS when first needed).
    pub fal_keys: Arc<slate_activities::remote::fal_signature::FalWebhookKeys>,
}
