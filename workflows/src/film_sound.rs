//! The film's sound as workflow steps (issue 27): after the stitch, the film's music,
//! ambience and effects are planned, rendered and mixed under its voices, each stage a
//! checkpointed step; `film.remix` ([`FilmRemix`]) mixes a version's cut again with the
//! project's current sound settings and scene switches, and makes no picture.
//!
//! - `sound/plan`: the [`SoundPlan`] (journaled: a re-attempt renders the same sound).
//! - `sound/render/{n}`: window `n` of every stem ([`WINDOW`] seconds), rendered on its own
//!   and kept as a blob: a long film's stems are many short steps, each finished work kept,
//!   so repeated crashes cannot starve the render.
//! - `sound/stems`: the windows joined into one FLAC file a stem, and the dialogue stem (the
//!   cut's own sound), under `films/{run}.stems/`.
//! - `sound/mix`: the stems at their levels under the voices, brought to the loudness target
//!   (two-pass `loudnorm`), the picture copied, at `films/{run}.mp4`; measured after.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use slate_activities::BlobRef;
use slate_activities::local::mixdown;
use slate_activities::local::music::RATE;
use slate_activities::model::ClipSpec;
use slate_engine::{Ctx, StepError, WfError, Workflow};

use crate::cut::{Cut, StitchOutput, version_of};
use crate::error::IntoStep;
use crate::film::{Film, key, record_failure};
use crate::model::{FilmSound, FilmVersion, PlacedEffect, SoundSettings};
use crate::names::sound as step;
use crate::slug::Slug;
use crate::sound::{SoundPlan, Stem, plan, window};

/// Seconds of film a `sound/render` step renders.
pub const WINDOW: f64 = 10.0;

/// What `sound/plan` decides.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Planned {
    plan: SoundPlan,
    length: f64,
    settings: SoundSettings,
    /// The model the cues are made with (none: synthesized). Plans journaled before there
    /// was one read as none: those runs keep their synthesized music.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    music: Option<String>,
}

/// Mix the sound of the film `cut` (stitched from `cuts`) for the run's version: the mixed
/// film's blob and what its sound is made of. `base` is the run's film key without `.mp4`.
pub(crate) async fn mix_film(
    ctx: &Ctx,
    f: &Arc<Film>,
    slug: &Slug,
    cut: &BlobRef,
    cuts: &[Cut],
    base: &str,
) -> Result<(BlobRef, FilmSound), WfError> {
    let planned = Arc::new(plan_sound(ctx, f, slug, cut, cuts).await?);
    let made = crate::film_music::make(
        ctx,
        f,
        slug,
        &planned.plan,
        planned.length,
        planned.music.as_deref(),
    )
    .await?;
    let made = Arc::new(made);
    let pieces = render(ctx, f, &planned, &made, base).await?;
    let (fr, c2, b2) = (f.clone(), cut.clone(), base.to_string());
    let stems: BTreeMap<String, String> = ctx
        .step(step::STEMS, move |_| async move {
            join_stems(&fr, &c2, &pieces, &b2).await.step()
        })
        .await?;
    let (fr, c2, st2, p2) = (f.clone(), cut.clone(), stems.clone(), planned.clone());
    let film_key = format!("{base}.mp4");
    let (film, loudness): (String, mixdown::Loudness) = ctx
        .step(step::MIX, move |_| async move {
            mix_stems(&fr, &c2, &st2, &p2.settings, &film_key)
                .await
                .step()
        })
        .await?;
    let sound = FilmSound {
        cut: cut.key().to_string(),
        stems,
        cues: planned.plan.cues.clone(),
        effects: placed(&planned.plan),
        settings: Some(planned.settings.clone()),
        loudness: Some(loudness),
        music_model: made
            .iter()
            .any(Option::is_some)
            .then(|| planned.music.clone())
            .flatten(),
    };
    let film = BlobRef::new(film).map_err(|e| WfError::failed("bad_key", e.to_string()))?;
    Ok((film, sound))
}

/// `sound/plan`: what plays, from the scenes and the project's settings as they are now.
async fn plan_sound(
    ctx: &Ctx,
    f: &Arc<Film>,
    slug: &Slug,
    cut: &BlobRef,
    cuts: &[Cut],
) -> Result<Planned, WfError> {
    let (fr, s2, c2, cuts2) = (f.clone(), slug.clone(), cut.clone(), cuts.to_vec());
    let run = ctx.run_id().to_string();
    ctx.step(step::PLAN, move |_| async move {
        let project = fr.repo.project(&s2).await.step()?;
        let scenes = fr.repo.scenes(&s2).await.step()?;
        let length = fr.studio.media.length(&c2).await.step()?;
        let mood = fr
            .qualified(&s2, crate::names::collection::VISUAL_GUIDELINES)
            .await
            .step()?
            .first()
            .and_then(|g| g["mood"].as_str().map(str::to_string))
            .unwrap_or_default();
        let version = version_of(&run, c2.key(), length, &cuts2, &scenes);
        let plan = plan(&project.title, &version, &scenes, &mood, &project.sound);
        let music = match &fr.studio.music {
            Some(m) if !plan.cues.is_empty() => Some(m.model().to_string()),
            _ => None,
        };
        Ok(Planned {
            plan,
            length,
            settings: project.sound,
            music,
        })
    })
    .await
}

/// `sound/render/{n}`: every window of the stems that have anything in them, each a step and
/// a blob; the windows' keys, by stem, in order.
async fn render(
    ctx: &Ctx,
    f: &Arc<Film>,
    planned: &Arc<Planned>,
    made: &Arc<Vec<Option<String>>>,
    base: &str,
) -> Result<BTreeMap<Stem, Vec<String>>, WfError> {
    let total = (planned.length * RATE).round().max(1.0) as usize;
    let chunk = (WINDOW * RATE) as usize;
    let rendered = planned.plan.stems();
    let mut pieces: BTreeMap<Stem, Vec<String>> = BTreeMap::new();
    for n in 0..total.div_ceil(chunk) {
        let (fr, p, m) = (f.clone(), planned.clone(), made.clone());
        let keys: Vec<(Stem, String)> = rendered
            .iter()
            .map(|s| (*s, format!("{base}.stems/{}/{n:05}.wav", s.name())))
            .collect();
        let done: Vec<(Stem, String)> = ctx
            .step(format!("{}/{n}", step::RENDER), move |_| async move {
                let scratch = fr.studio.blobs.scratch().await.step()?;
                let (from, to) = (n * chunk, ((n + 1) * chunk).min(total));
                let sources = Arc::new(made_paths(&fr, &m).await.step()?);
                for (stem, key) in &keys {
                    let (p2, stem, src) = (p.clone(), *stem, sources.clone());
                    let file = scratch.join(format!("{}.wav", stem.name()));
                    let f2 = file.clone();
                    tokio::task::spawn_blocking(move || {
                        let made = |i: usize, a: usize, b: usize| {
                            let path = src.get(i)?.as_ref()?;
                            crate::film_music::read(path, a, b).ok()
                        };
                        window(&p2.plan, stem, p2.length, from, to, &made).save_wav16(&f2)
                    })
                    .await
                    .map_err(|e| StepError::retryable("render", e.to_string()))?
                    .map_err(|e| StepError::retryable("render", e.to_string()))?;
                    fr.studio.blobs.put_file(key, &file).await.step()?;
                }
                let _ = tokio::fs::remove_dir_all(&scratch).await;
                Ok(keys)
            })
            .await?;
        for (stem, key) in done {
            pieces.entry(stem).or_default().push(key);
        }
    }
    Ok(pieces)
}

/// Where each cue's made samples are on this machine (none: synthesized).
async fn made_paths(
    f: &Film,
    made: &[Option<String>],
) -> slate_activities::Result<Vec<Option<PathBuf>>> {
    let mut out = vec![];
    for m in made {
        out.push(match m {
            Some(k) => Some(f.studio.blobs.local_path(&BlobRef::new(k.clone())?).await?),
            None => None,
        });
    }
    Ok(out)
}

/// The windows of each stem joined into one FLAC file, and the dialogue stem (the cut's own
/// sound), under `{base}.stems/`: name → blob key.
async fn join_stems(
    f: &Film,
    cut: &BlobRef,
    pieces: &BTreeMap<Stem, Vec<String>>,
    base: &str,
) -> slate_activities::Result<BTreeMap<String, String>> {
    let blobs = &f.studio.blobs;
    let scratch = blobs.scratch().await?;
    let mut out = BTreeMap::new();
    let dialogue = scratch.join("dialogue.flac");
    mixdown::sound_of(&blobs.local_path(cut).await?, &dialogue).await?;
    let k = format!("{base}.stems/dialogue.flac");
    blobs.put_file(&k, &dialogue).await?;
    out.insert("dialogue".to_string(), k);
    for (stem, keys) in pieces {
        let mut files: Vec<PathBuf> = vec![];
        for k in keys {
            files.push(blobs.local_path(&BlobRef::new(k.clone())?).await?);
        }
        let refs: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
        let whole = scratch.join(format!("{}.flac", stem.name()));
        mixdown::join(&refs, &scratch, &whole).await?;
        let k = format!("{base}.stems/{}.flac", stem.name());
        blobs.put_file(&k, &whole).await?;
        out.insert(stem.name().to_string(), k);
    }
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    Ok(out)
}

/// The stems at their levels under the cut's voices, brought to the loudness target, at
/// `film_key`; the film's key and its loudness as measured after.
async fn mix_stems(
    f: &Film,
    cut: &BlobRef,
    stems: &BTreeMap<String, String>,
    s: &SoundSettings,
    film_key: &str,
) -> slate_activities::Result<(String, mixdown::Loudness)> {
    let blobs = &f.studio.blobs;
    let scratch = blobs.scratch().await?;
    let mut inputs = vec![];
    for (name, gain) in [
        ("music", s.music_db),
        ("ambience", s.ambience_db),
        ("effects", s.effects_db),
    ] {
        if let Some(k) = stems.get(name) {
            inputs.push((blobs.local_path(&BlobRef::new(k.clone())?).await?, gain));
        }
    }
    let refs: Vec<(&std::path::Path, f64)> =
        inputs.iter().map(|(f, g)| (f.as_path(), *g)).collect();
    let out = scratch.join("film.mp4");
    let media = &f.studio.media;
    if media.mixes_remotely() && !refs.is_empty() {
        // The last-frame service mixes the stems (one bed, at their levels) under the voices;
        // its mix is brought to the loudness target here.
        let bed = scratch.join("bed.flac");
        mixdown::bed(&refs, &bed).await?;
        let base = film_key.trim_end_matches(".mp4");
        let bed = blobs.put_file(&format!("{base}.bed.flac"), &bed).await?;
        let premix = media
            .music_track(cut, &bed, 1.0, &format!("{base}.premix.mp4"))
            .await?;
        let premix = blobs.local_path(&premix).await?;
        mixdown::normalize(&premix, &premix, s.loudness.into(), &scratch, &out).await?;
    } else {
        mixdown::mix(
            &blobs.local_path(cut).await?,
            &refs,
            s.loudness.into(),
            &scratch,
            &out,
        )
        .await?;
    }
    let loudness = mixdown::measured(&out).await?;
    let r = blobs.put_file(film_key, &out).await?;
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    Ok((r.key().to_string(), loudness))
}

/// The plan's effects, where they sound in the film.
fn placed(plan: &SoundPlan) -> Vec<PlacedEffect> {
    plan.scenes
        .iter()
        .flat_map(|s| {
            s.effects.iter().map(|(name, at)| PlacedEffect {
                scene_number: s.scene_number,
                name: name.clone(),
                at: s.start + at,
                scene_end: s.start + s.duration,
            })
        })
        .collect()
}

/// Input of [`FilmRemix`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RemixInput {
    /// Project.
    pub project: Slug,
}

/// A new version of the film whose sound is mixed again from the newest version's cut, with
/// the project's sound settings and the scenes' switches as they are now: the same picture
/// and voices, no image or video made again.
#[derive(Clone)]
pub struct FilmRemix(pub Arc<Film>);

impl FilmRemix {
    async fn body(&self, ctx: &Ctx, slug: &Slug) -> Result<StitchOutput, WfError> {
        let (f, s) = (self.0.clone(), slug.clone());
        let newest: FilmVersion = ctx
            .step(step::LOAD, move |_| async move {
                f.repo.film_versions(&s).await.step()?.pop().ok_or_else(|| {
                    StepError::fatal(
                        "no_film",
                        format!("project `{s}` has no film yet: stitch it first"),
                    )
                })
            })
            .await?;
        let cut = BlobRef::new(
            newest
                .sound
                .as_ref()
                .map_or(newest.video.clone(), |s| s.cut.clone()),
        )
        .map_err(|e| WfError::failed("bad_key", e.to_string()))?;
        let cuts: Vec<Cut> = newest
            .scenes
            .iter()
            .map(|v| {
                Ok(Cut {
                    scene_id: v.scene_id.clone(),
                    scene_number: v.scene_number,
                    clip: ClipSpec {
                        video: BlobRef::new(v.video.clone())?,
                        duration: v.duration,
                        transition_in: v.transition_in.clone(),
                        transition_out: v.transition_out.clone(),
                    },
                })
            })
            .collect::<Result<_, slate_activities::ActivityError>>()
            .map_err(|e| WfError::failed("bad_key", e.to_string()))?;
        let base = key(slug, &format!("films/{}", ctx.run_id()));
        let (film, sound) = mix_film(ctx, &self.0, slug, &cut, &cuts, &base).await?;
        let (fr, s2, run) = (self.0.clone(), slug.clone(), ctx.run_id().to_string());
        let (fk, n) = (film.clone(), cuts.len());
        ctx.step(crate::names::film::FINISH, move |_| async move {
            let d = fr.studio.media.length(&fk).await.step()?;
            let v = FilmVersion {
                version: 0,
                run_id: run,
                video: fk.key().to_string(),
                duration: d,
                scenes: newest.scenes.clone(),
                created_at: None,
                sound: Some(sound),
            };
            fr.repo.add_film_version(&s2, &v).await.step()?;
            Ok(StitchOutput {
                film: fk.key().to_string(),
                scenes: n,
                duration: d,
            })
        })
        .await
    }
}

impl Workflow for FilmRemix {
    const NAME: &'static str = crate::names::workflow::REMIX;
    type Input = RemixInput;
    type Output = StitchOutput;

    /// One stitch or mix of a project's film at a time.
    fn exclusive_key(input: &RemixInput) -> Option<String> {
        Some(input.project.to_string())
    }

    async fn run(&self, ctx: Ctx, input: RemixInput) -> Result<StitchOutput, WfError> {
        match self.body(&ctx, &input.project).await {
            Ok(v) => Ok(v),
            Err(e) => Err(record_failure(
                &ctx,
                &self.0,
                &input.project,
                &format!("the re-mix of `{}`", input.project),
                e,
                |_, _| Box::pin(async { Ok(()) }),
            )
            .await),
        }
    }
}
