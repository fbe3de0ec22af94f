//! # slate-activities: every side effect of the film pipeline, behind a trait
//!
//! | trait | remote (production) | local (the studio: offline, no keys) |
//! |---|---|---|
//! | [`Planner`] | OpenRouter, strict JSON schema | deterministic planner over the gather data |
//! | [`ImageGen`] | fal.ai queue (`nano-banana`, `nano-banana/edit`) | storyboard renderer: real PNG frames |
//! | [`Vision`] | fal.ai `moondream2` | checks the frame's pixels against its manifest |
//! | [`Knowledge`] | the brain service | full-text search in the workflow database |
//! | [`VideoGen`] | fal.ai queue, or the tasks service | ffmpeg: a still becomes a clip with a camera move |
//! | [`Voice`] | the tasks service | espeak-ng |
//! | [`Media`] | the last-frame service | ffmpeg / ffprobe |
//!
//! [`Studio::build`] picks one of each from [`ProviderSettings`] (the environment): local by
//! default, remote when its key is set. Blobs (images, clips, films) live in an object store
//! ([`Blobs`]); remote results are copied in at once.
//!
//! Errors carry their retry intent ([`ActivityError`]): a content-policy rejection or a bad
//! request is final, a timeout, 429 or 5xx is retryable (with `Retry-After` when given). This
//! crate knows nothing about the engine; the workflows hand the intent over.

pub mod blob;
pub mod checkpoint;
pub mod config;
pub mod doctor;
pub mod error;
pub(crate) mod http;

/// An HTTP client as Slate builds them (TLS provider installed, timeouts set): for programs that
/// talk to Slate itself, such as the `slate` command line.
pub fn http_client(timeout: std::time::Duration) -> reqwest::Client {
    http::client(timeout)
}
pub mod local;
pub mod model;
pub mod pricing;
pub mod remote;
pub mod screenplay;
pub mod signals;
pub mod studio;
pub mod traits;
pub mod video_models;
pub mod wake;

pub use blob::{BlobRef, Blobs};
pub use config::{PROVIDER_VARIABLES, ProviderSettings, ProviderVars, Secret};
pub use error::{ActivityError, ErrorKind, Result};
pub use local::Db;
pub use studio::{Studio, StudioOptions};
pub use traits::*;
