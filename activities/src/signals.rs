//! The names webhooks are delivered under as signals, one per provider's kind of callback.
//! They are durable (a waiting run listens on the name it journaled), so they are defined once
//! here, for the jobs that name their completion signal and the clients that receive callbacks.

/// The signal a fal webhook about `request_id` is delivered as.
pub fn fal(request_id: &str) -> String {
    format!("fal/{request_id}")
}

/// The tasks service's webhook for a finished video task (`/api/webhooks/video-complete`).
pub const VIDEO_COMPLETE: &str = "video-complete";

/// The signal a task webhook of `kind` about `task_id` is delivered as.
pub fn task(kind: &str, task_id: &str) -> String {
    format!("{kind}/{task_id}")
}
