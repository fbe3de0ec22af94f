//! The studio: one implementation of every activity, chosen from the settings. Local is the
//! default; a remote client is used when its key is set.

use std::sync::Arc;
use std::time::Duration;

use crate::blob::Blobs;
use crate::config::{ProviderSettings, VideoProvider};
use crate::local::{
    Db, LocalKnowledge, LocalMedia, LocalPlanner, LocalVideo, LocalVision, LocalVoice, Storyboard,
};
use crate::remote::*;
use crate::traits::*;

/// Knobs of the local studio.
#[derive(Debug, Clone, Default)]
pub struct StudioOptions {
    /// Share of frames (0-1) the local vision check rejects regardless of content, to exercise
    /// retry paths (`SLATE_LOCAL_VISION_FAIL_RATE`).
    pub vision_fail_rate: f64,
}

/// Every activity, ready to call.
#[derive(Clone)]
pub struct Studio {
    /// Language model.
    pub planner: Arc<dyn Planner>,
    /// Images.
    pub images: Arc<dyn ImageGen>,
    /// Vision.
    pub vision: Arc<dyn Vision>,
    /// Knowledge.
    pub knowledge: Arc<dyn Knowledge>,
    /// Video.
    pub video: Arc<dyn VideoGen>,
    /// Voice.
    pub voice: Arc<dyn Voice>,
    /// The film's music, where a provider makes it (none: synthesized offline).
    pub music: Option<Arc<dyn MusicGen>>,
    /// Media operations.
    pub media: Arc<dyn Media>,
    /// Blobs.
    pub blobs: Blobs,
    /// The settings it was built from.
    pub settings: ProviderSettings,
}

impl std::fmt::Debug for Studio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Studio")
            .field("planner", &self.planner.name())
            .field("images", &self.images.name())
            .field("vision", &self.vision.name())
            .field("knowledge", &self.knowledge.name())
            .field("video", &self.video.name())
            .field("voice", &self.voice.name())
            .field("music", &self.music.as_ref().map(|m| m.model().to_string()))
            .field("media", &self.media.name())
            .finish()
    }
}

impl Studio {
    /// Build from settings: remote where a key is set, local elsewhere.
    pub fn build(settings: ProviderSettings, blobs: Blobs, db: Db, opts: StudioOptions) -> Studio {
        let hook = |path: &str| settings.webhook_url(path);
        let prices = crate::pricing::Prices::new(&settings.prices);
        let fal = settings.fal.clone().map(FalClient::new);
        let planner: Arc<dyn Planner> = match &settings.openrouter {
            Some(s) => Arc::new(RemotePlanner::new(
                OpenRouterClient::new(s.clone()).with_prices(prices.clone()),
            )),
            None => Arc::new(LocalPlanner),
        };
        let (images, vision): (Arc<dyn ImageGen>, Arc<dyn Vision>) = match &fal {
            Some(c) => (
                Arc::new(FalImages::new(
                    c.clone(),
                    blobs.clone(),
                    hook("/api/webhooks/fal"),
                )),
                Arc::new({
                    let v = FalVision::new(c.clone(), blobs.clone());
                    match settings.poll_every {
                        Some(every) => v.polling(every),
                        None => v,
                    }
                }),
            ),
            None => (
                Arc::new(Storyboard::new(blobs.clone())),
                Arc::new(LocalVision::new(blobs.clone(), opts.vision_fail_rate)),
            ),
        };
        let knowledge: Arc<dyn Knowledge> = match &settings.brain {
            Some(s) => Arc::new(BrainClient::new(s.clone(), blobs.clone())),
            None => Arc::new(LocalKnowledge::new(db, blobs.clone())),
        };
        let tasks = settings
            .tasks
            .clone()
            .map(|t| TasksClient::new(t).with_prices(prices.clone()));
        let fal_video = |c: &FalClient| -> Arc<dyn VideoGen> {
            Arc::new(FalVideo::new(
                c.clone(),
                blobs.clone(),
                hook("/api/webhooks/fal"),
            ))
        };
        let tasks_video = |t: &TasksClient| -> Arc<dyn VideoGen> {
            Arc::new(TasksVideo::new(t.clone(), blobs.clone()))
        };
        let video: Arc<dyn VideoGen> = match (settings.video, &fal, &tasks) {
            (VideoProvider::Fal | VideoProvider::Auto, Some(c), _) => fal_video(c),
            (VideoProvider::Tasks | VideoProvider::Auto, _, Some(t)) => tasks_video(t),
            _ => Arc::new(LocalVideo::new(blobs.clone())),
        };
        let voice: Arc<dyn Voice> = match &tasks {
            Some(t) => {
                let v = TasksVoice::new(t.clone(), blobs.clone());
                Arc::new(match settings.poll_every {
                    Some(every) => v.polling(every, Duration::from_secs(120)),
                    None => v,
                })
            }
            None => Arc::new(LocalVoice::new(blobs.clone())),
        };
        let music: Option<Arc<dyn MusicGen>> = fal.as_ref().and_then(|c| {
            let model = c.settings().music_model.clone()?;
            Some(Arc::new(crate::remote::FalMusic::new(
                c.clone(),
                blobs.clone(),
                hook("/api/webhooks/fal"),
                model,
            )) as Arc<dyn MusicGen>)
        });
        let media: Arc<dyn Media> = match &settings.last_frame {
            Some(s) => Arc::new(RemoteMedia::new(
                match settings.poll_every {
                    Some(every) => {
                        LastFrameClient::new(s.clone()).polling(every, Duration::from_secs(600))
                    }
                    None => LastFrameClient::new(s.clone()),
                },
                blobs.clone(),
                Some(settings.clone()),
            )),
            None => Arc::new(LocalMedia::new(blobs.clone())),
        };
        Studio {
            planner,
            images,
            vision,
            knowledge,
            video,
            voice,
            music,
            media,
            blobs,
            settings,
        }
    }

    /// Everything local.
    pub fn local(blobs: Blobs, db: Db, opts: StudioOptions) -> Studio {
        Self::build(ProviderSettings::default(), blobs, db, opts)
    }
}
