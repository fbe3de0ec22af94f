//! The film's music on fal's queue: ElevenLabs Music (`fal-ai/elevenlabs/music`, decision
//! 0030), one instrumental cue a request.
//!
//! Input `{prompt, music_length_ms, force_instrumental: true}`, output `{audio: {url}}`; fal
//! bills the minutes made (`x-fal-billable-units`). The model makes 10 s to 5 min: a shorter
//! cue is asked for at 10 s and cut to its length by the mix, a longer one is refused here and
//! synthesized offline by the workflow (which asks [`MusicGen::longest`] first).

use async_trait::async_trait;
use serde_json::json;

use super::fal::{FalClient, QueueStatus, job, urls};
use crate::blob::Blobs;
use crate::error::{ActivityError, ErrorKind, Result};
use crate::model::*;
use crate::traits::{MusicGen, Paid};

const P: &str = "fal";

/// The shortest and longest music the model makes, milliseconds.
pub const MUSIC_MS: (u64, u64) = (10_000, 300_000);

/// Music through a fal music model.
#[derive(Debug, Clone)]
pub struct FalMusic {
    client: FalClient,
    blobs: Blobs,
    webhook: Option<String>,
    model: String,
}

impl FalMusic {
    /// Music with `model` through `client`, results copied into `blobs`; `webhook` is our fal
    /// webhook URL.
    pub fn new(client: FalClient, blobs: Blobs, webhook: Option<String>, model: String) -> Self {
        FalMusic {
            client,
            blobs,
            webhook,
            model,
        }
    }

    /// The length a cue of `seconds` is asked for, milliseconds (whole seconds, within the
    /// model's bounds).
    pub fn length_ms(seconds: f64) -> u64 {
        ((seconds.max(0.0).ceil() as u64) * 1000).clamp(MUSIC_MS.0, MUSIC_MS.1)
    }
}

#[async_trait]
impl MusicGen for FalMusic {
    fn name(&self) -> &'static str {
        "fal.ai queue"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn longest(&self) -> f64 {
        MUSIC_MS.1 as f64 / 1000.0
    }

    async fn submit(&self, req: &MusicRequest) -> Result<Job> {
        if req.prompt.trim().is_empty() {
            return Err(ActivityError::bad_request(P, "a music cue needs a prompt"));
        }
        if !req.seconds.is_finite() || req.seconds > self.longest() {
            return Err(ActivityError::bad_request(
                P,
                format!(
                    "a music cue of {} s is longer than {} makes ({} s)",
                    req.seconds,
                    self.model,
                    self.longest()
                ),
            ));
        }
        let input = json!({
            "prompt": req.prompt,
            "music_length_ms": Self::length_ms(req.seconds),
            // Under dialogue: no singing.
            "force_instrumental": true,
        });
        let q = self
            .client
            .submit(&self.model, &input, self.webhook.as_deref())
            .await?;
        Ok(job(q, &self.model))
    }

    async fn poll(&self, j: &Job, req: &MusicRequest) -> Result<Paid<JobState<MusicOutput>>> {
        let (status_url, response_url) = urls(j)?;
        match self.client.status(status_url).await? {
            QueueStatus::InQueue { position } => Ok(Paid::free(JobState::Queued { position })),
            QueueStatus::InProgress | QueueStatus::Unknown(_) => Ok(Paid::free(JobState::Running)),
            QueueStatus::Completed => {
                let minutes = Self::length_ms(req.seconds) as f64 / 60_000.0;
                let Paid { value, spend } =
                    self.client.result(response_url, &j.model, minutes).await?;
                let url = value
                    .pointer("/audio/url")
                    .and_then(|u| u.as_str())
                    .ok_or_else(|| {
                        ActivityError::new(P, ErrorKind::Malformed, "the result has no audio.url")
                    })?;
                let audio = self
                    .blobs
                    .copy_from_url(self.client.http(), P, url, &req.output_key)
                    .await?;
                Ok(Paid {
                    value: JobState::Completed {
                        output: MusicOutput {
                            audio,
                            seconds: req.seconds,
                        },
                    },
                    spend,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cue_is_asked_for_in_whole_seconds_within_the_models_bounds() {
        assert_eq!(FalMusic::length_ms(4.2), 10_000);
        assert_eq!(FalMusic::length_ms(23.1), 24_000);
        assert_eq!(FalMusic::length_ms(900.0), 300_000);
    }
}
