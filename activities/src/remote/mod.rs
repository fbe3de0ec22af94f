//! Remote clients of the production services. Each is a real `reqwest` client of the documented
//! API with a timeout, typed errors (retryable or final) and its secret from the environment.

pub mod fal;
pub mod fal_music;
pub mod fal_signature;
pub mod openrouter;
pub mod services;

pub use fal::{FalClient, FalImages, FalVideo, FalVision, FalWebhook};
pub use fal_music::FalMusic;
pub use openrouter::{OpenRouterClient, RemotePlanner};
pub use services::{
    BrainClient, LastFrameClient, RemoteMedia, TasksClient, TasksVideo, TasksVoice,
};
