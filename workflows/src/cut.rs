//! What a stitch cuts and gives: the film's clips in order ([`Cut`]), the version a stitch
//! keeps ([`version_of`]) and what it answers ([`StitchOutput`]); shared by the stitch
//! (`film_versions`) and the sound (`film_sound`).

use serde::{Deserialize, Serialize};
use slate_activities::local::media::layout;
use slate_activities::model::ClipSpec;

use crate::model::{FilmVersion, FilmVersionScene, Scene};

/// One clip of the film to be: which scene it is and how it is joined.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Cut {
    pub scene_id: String,
    pub scene_number: i32,
    pub clip: ClipSpec,
}

/// What a stitch gives: the film, its length, its version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StitchOutput {
    /// The film (blob key).
    pub film: String,
    /// Scenes in it.
    pub scenes: usize,
    /// Its length, seconds.
    pub duration: f64,
}

/// The version a stitch of `cuts` makes, each scene with the take its clip is.
pub(crate) fn version_of(
    run: &str,
    video: &str,
    duration: f64,
    cuts: &[Cut],
    scenes: &[Scene],
) -> FilmVersion {
    let clips: Vec<ClipSpec> = cuts.iter().map(|c| c.clip.clone()).collect();
    let places = layout(&clips);
    FilmVersion {
        version: 0,
        run_id: run.to_string(),
        video: video.to_string(),
        duration,
        scenes: cuts
            .iter()
            .zip(places)
            .map(|(c, p)| FilmVersionScene {
                scene_id: c.scene_id.clone(),
                scene_number: c.scene_number,
                take: scenes
                    .iter()
                    .find(|s| s.id == c.scene_id)
                    .and_then(|s| {
                        s.all_takes()
                            .into_iter()
                            .find(|t| t.video.as_deref() == Some(c.clip.video.key()))
                    })
                    .map(|t| t.take),
                video: c.clip.video.key().to_string(),
                duration: c.clip.duration,
                start: p.start,
                transition_in: c.clip.transition_in.clone(),
                transition_out: c.clip.transition_out.clone(),
            })
            .collect(),
        created_at: None,
        sound: None,
    }
}
