//! The clip: its request (prompt from the scene's template), the paid submission, the wait for
//! it (a webhook wakes the run; polling is the fallback; a deadline ends it), fitting it to the
//! scene's length, and the dialogue's voices mixed in.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use slate_activities::BlobRef;
use slate_activities::model::*;
use slate_activities::remote::services::{VIDEO_COMPLETE, webhook_path};
use slate_engine::{RetryPolicy, StepOptions, WfError};

use super::Take;
use super::composite::{Composite, Refs};
use crate::error::IntoStep;
use crate::film::{VIDEO, paid, report};
use crate::model::{Scene, SceneStatus};

/// The step that pays for the clip; its output is the provider's [`Job`]. A durable name:
/// runs in flight have it in their journals, and the video webhook reads it back to find the
/// job a spec-shaped callback (which names no task) is about.
pub const VIDEO_SUBMIT: &str = crate::names::scene::VIDEO_SUBMIT;

impl Take<'_> {
    /// What to ask the video provider for.
    pub(super) async fn video_request(
        &self,
        scene: &Scene,
        shot: &ShotPlan,
        composite: &Composite,
        duration: f64,
    ) -> VideoRequest {
        VideoRequest {
            project: self.slug.to_string(),
            scene_id: self.id.to_string(),
            prompt: self.video_prompt(scene, shot, duration).await,
            mode: match scene.video_mode.as_deref() {
                Some("text_to_video") => VideoMode::TextToVideo,
                Some("video_to_video") => VideoMode::VideoToVideo,
                _ => VideoMode::ImageToVideo,
            },
            start_image: Some(composite.image.image.clone()),
            // Video-to-video continues from the previous scene's clip.
            source_video: self
                .previous
                .and_then(|p| p.video.as_ref())
                .and_then(|v| BlobRef::new(v).ok()),
            duration,
            camera_movement: shot.camera_movement.clone(),
            // The run travels in the callback URL's query: the spec's callback body names the
            // scene, the clip and its length, not our task.
            callback_url: self.film.studio.settings.webhook_url_with(
                &webhook_path(VIDEO_COMPLETE),
                &[("run", &self.ctx.run_id().to_string())],
            ),
            output_key: self.key("video-raw.mp4"),
            idempotency_key: None,
        }
    }

    /// The scene's video template, rendered; a plain prompt when the template cannot be.
    async fn video_prompt(&self, scene: &Scene, shot: &ShotPlan, duration: f64) -> String {
        let text = scene.screenplay_text.clone().unwrap_or_default();
        let vars: BTreeMap<String, String> = [
            ("text_prompt", text.clone()),
            ("camera_angle", shot.camera_angle.clone()),
            ("camera_shot", shot.camera_shot.clone()),
            ("camera_movement", shot.camera_movement.clone()),
            (
                "lighting_type",
                scene.lighting_type.clone().unwrap_or_default(),
            ),
            (
                "lighting_mood",
                scene.lighting_mood.clone().unwrap_or_default(),
            ),
            ("duration", format!("{duration}")),
            ("pacing", shot.pacing.clone()),
            (
                "dramatic_effect",
                scene.dramatic_effect.clone().unwrap_or_default(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let name = scene
            .prompt_template
            .clone()
            .unwrap_or_else(|| "Scene Video".into());
        match self
            .film
            .repo
            .template(&name)
            .await
            .and_then(|t| t.render(&vars))
        {
            Ok(p) => p,
            Err(_) => format!(
                "{text} Camera: {}, {}. {duration} seconds.",
                shot.camera_shot, shot.camera_movement
            ),
        }
    }

    /// Pay for the clip (once: the submission is a step, its job journaled).
    pub(super) async fn submit_video(&self, req: &VideoRequest) -> Result<Job, WfError> {
        let prompt = req.prompt.clone();
        self.record("record/generating-video", move |s| {
            s.status = SceneStatus::GeneratingVideo;
            s.text_prompt = Some(prompt.clone());
        })
        .await?;
        let video = &self.film.studio.video;
        let usd = self.film.video_price(req.duration);
        self.ctx
            .step_with(
                VIDEO_SUBMIT,
                // Kept until the clip is seen done (`await_video`): the `video` limit bounds
                // the jobs running at the provider.
                paid()
                    .concurrency_held(VIDEO)
                    .priority(self.priority)
                    .estimate(usd),
                |sc| async move {
                    // The step's key is the same in every attempt: the provider's list finds
                    // an attempt whose answer was lost.
                    let mut req = req.clone();
                    req.idempotency_key = Some(sc.idempotency_key().to_string());
                    video.submit(&req).await.step()
                },
            )
            .await
    }

    /// Wait for the clip: poll, then wait for the provider's webhook (or the timeout), again,
    /// until it is done or the deadline passes.
    pub(super) async fn await_video(
        &self,
        job: &Job,
        req: &VideoRequest,
    ) -> Result<VideoOutput, WfError> {
        let f = self.film;
        let signal = job.completion_signal();
        for k in 0..f.config.video_rounds {
            let video = &f.studio.video;
            let state: JobState<VideoOutput> = self
                .ctx
                .step_with(
                    format!("{}{k}", crate::names::scene::VIDEO_POLL_PREFIX),
                    StepOptions::new().retry(
                        RetryPolicy::attempts(5)
                            .backoff(Duration::from_secs(2), Duration::from_secs(30)),
                    ),
                    |sc| async move {
                        let p = video.poll(job, req).await.step()?;
                        report(&sc, p.spend);
                        Ok(p.value)
                    },
                )
                .await?;
            if let JobState::Completed { output } = state {
                self.ctx.release_slot(VIDEO, VIDEO_SUBMIT).await?;
                return Ok(output);
            }
            let wait = format!("video/wait/{k}");
            match &signal {
                // A webhook wakes the run at once; the timeout is the polling fallback.
                Some(name) => {
                    let _: Option<Value> = self
                        .ctx
                        .wait_signal(wait, name.clone(), Some(f.config.video_wait))
                        .await?;
                }
                None => self.ctx.sleep(wait, f.config.video_wait).await?,
            }
        }
        Err(WfError::failed(
            "video_timeout",
            format!(
                "video job {} did not finish within {} s; retry the scene to poll it again",
                job.id,
                f.config.video_rounds as u64 * f.config.video_wait.as_secs()
            ),
        ))
    }

    /// The clip cut to the scene's length when the provider made it longer.
    pub(super) async fn fit(&self, output: VideoOutput, duration: f64) -> Result<BlobRef, WfError> {
        if output.duration <= duration + 0.05 {
            return Ok(output.video);
        }
        let (media, k) = (&self.film.studio.media, self.key("video-fitted.mp4"));
        let v = &output.video;
        self.ctx
            .step(crate::names::scene::VIDEO_TRIM, |_| async move {
                media.trim(v, duration, &k).await.step()
            })
            .await
    }

    /// Each line of dialogue spoken in its character's voice, with the offset it starts at.
    async fn speak(
        &self,
        scene: &Scene,
        refs: &Refs,
        duration: f64,
    ) -> Result<Vec<(BlobRef, f64)>, WfError> {
        let mut lines = vec![];
        for (i, d) in scene.dialogue.iter().enumerate() {
            let casting = refs
                .voices
                .get(&d.character)
                .cloned()
                .unwrap_or(VoiceCasting {
                    character_id: d.character.clone(),
                    voice: "en-us".into(),
                    pitch: 50,
                    speed: 160,
                    description: String::new(),
                });
            let req = VoiceRequest {
                project: self.slug.to_string(),
                text: d.line.clone(),
                casting,
                output_key: self.key(&format!("voice-{i}.wav")),
            };
            let voice = &self.film.studio.voice;
            let usd = self.film.price(slate_activities::pricing::CallKind::Voice);
            let audio: BlobRef = self
                .ctx
                .step_with(
                    format!("{}{i}", crate::names::scene::VOICE_PREFIX),
                    paid().estimate(usd),
                    |sc| async move {
                        let p = crate::film::checkpointed(&sc, voice.synthesize(&req))
                            .await
                            .step()?;
                        report(&sc, p.spend);
                        Ok(p.value)
                    },
                )
                .await?;
            lines.push((audio, line_start(i, scene.dialogue.len(), duration)));
        }
        Ok(lines)
    }

    /// Where each line is heard in its audio, from its first sound to its last, seconds (a
    /// take's subtitles are timed from them); runs started before takes were kept do without.
    async fn spoken(&self, lines: &[(BlobRef, f64)]) -> Result<Vec<(f64, f64)>, WfError> {
        if self.dir.is_empty() || lines.is_empty() {
            return Ok(vec![]);
        }
        let blobs = &self.film.studio.blobs;
        self.ctx
            .step(crate::names::scene::VOICE_LENGTHS, |_| async move {
                let mut out = vec![];
                for (audio, _) in lines {
                    let path = blobs.local_path(audio).await.step()?;
                    let span = slate_activities::local::media::audible_span(&path)
                        .await
                        .step()?;
                    out.push(span.unwrap_or((0.0, 0.0)));
                }
                Ok(out)
            })
            .await
    }

    /// Keep where each line is in the clip: its audio, start and length.
    async fn record_voices(&self, lines: Vec<(BlobRef, f64)>) -> Result<(), WfError> {
        let spoken = self.spoken(&lines).await?;
        self.record("record/voices", move |s| {
            for (i, (d, (a, at))) in s.dialogue.iter_mut().zip(&lines).enumerate() {
                d.audio_url = Some(a.key().to_string());
                if let Some((from, to)) = spoken.get(i) {
                    d.start = Some(at + from);
                    d.spoken = Some(to - from);
                }
            }
        })
        .await
    }

    /// Each line of dialogue spoken in its character's voice and mixed into the clip.
    pub(super) async fn voices(
        &self,
        scene: &Scene,
        refs: &Refs,
        clip: BlobRef,
        duration: f64,
    ) -> Result<BlobRef, WfError> {
        if scene.dialogue.is_empty() {
            return Ok(clip);
        }
        let lines = self.speak(scene, refs, duration).await?;
        let (media, k) = (&self.film.studio.media, self.key("video.mp4"));
        let (c, l) = (&clip, &lines);
        let voiced: BlobRef = self
            .ctx
            .step(crate::names::scene::VIDEO_VOICES, |_| async move {
                media.mix_voices(c, l, &k).await.step()
            })
            .await?;
        self.record_voices(lines).await?;
        Ok(voiced)
    }

    /// The clip cut to the scene's length (when the provider made it longer) with each line of
    /// dialogue mixed in, in one ffmpeg pass (the patch `one-pass-cut`).
    pub(super) async fn cut(
        &self,
        scene: &Scene,
        refs: &Refs,
        output: VideoOutput,
        duration: f64,
    ) -> Result<BlobRef, WfError> {
        let to = (output.duration > duration + 0.05).then_some(duration);
        if to.is_none() && scene.dialogue.is_empty() {
            return Ok(output.video);
        }
        let lines = self.speak(scene, refs, duration).await?;
        let (media, k) = (&self.film.studio.media, self.key("video.mp4"));
        let (v, l) = (&output.video, &lines);
        let clip: BlobRef = self
            .ctx
            .step(crate::names::scene::VIDEO_CUT, |_| async move {
                media.cut(v, to, l, &k).await.step()
            })
            .await?;
        if !lines.is_empty() {
            self.record_voices(lines).await?;
        }
        Ok(clip)
    }
}

/// Where line `i` of `n` starts in a clip of `duration` seconds: spread over the clip, the
/// first a little after its start.
pub fn line_start(i: usize, n: usize, duration: f64) -> f64 {
    0.3 + i as f64 * (duration / n.max(1) as f64)
}
