//! The film's music from a provider (issue 27): each cue of the sound plan made by the music
//! model (fal's ElevenLabs Music) instead of synthesized, with the durability of a clip.
//!
//! Per cue `i`: `sound/music/{i}/kept` looks for the cue made before (its blob is named by the
//! model, the words and the length, so a re-mix or another version with the same cue pays
//! nothing); else `…/submit` pays for it (the attempt on disk before the call, the request id
//! journaled), `…/poll{k}` and `…/wait/{k}` wait for it (fal's webhook wakes the run, polling
//! is the fallback), and `…/decode` brings it to the offline music's loudness as raw samples
//! that the `sound/render` windows read their stretch of. A cue longer than the model makes is
//! synthesized. Runs planned before this existed have no music model in their plan and keep
//! the synthesized music.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use slate_activities::local::music::{CUE_FADE, MusicCue, RATE, Sound};
use slate_activities::model::{Job, JobState, MusicOutput, MusicRequest};
use slate_activities::pricing::CallKind;
use slate_engine::{Ctx, RetryPolicy, StepOptions, WfError};

use crate::error::IntoStep;
use crate::film::{Film, key, paid, report};
use crate::names::sound::MUSIC;
use crate::slug::Slug;
use crate::sound::SoundPlan;

/// Loudness the provider's cues are brought to: the offline music's, so that the music level
/// of the sound settings means the same with either.
pub const CUE_LUFS: f64 = -21.0;

/// The words a provider is asked for a cue in: its mood words (which often name the key,
/// tempo and instruments already, as the audio department writes them), with what they leave
/// out.
pub fn prompt(c: &MusicCue) -> String {
    let mood = c.mood.trim().trim_end_matches('.');
    let said = mood.to_lowercase();
    let mut p = format!("Instrumental film score cue: {mood}");
    if !said.contains(&c.key.trim().to_lowercase()) {
        p.push_str(&format!(", in {}", c.key.trim()));
    }
    if !said.contains("bpm") {
        p.push_str(&format!(", {:.0} bpm", c.tempo_bpm));
    }
    let missing: Vec<&str> = c
        .instruments
        .iter()
        .map(String::as_str)
        .filter(|i| !said.contains(&i.to_lowercase()))
        .collect();
    if !missing.is_empty() {
        p.push_str(&format!(", for {}", missing.join(", ")));
    }
    p.push_str(". No vocals: it plays under dialogue.");
    p
}

/// Seconds of music a cue plays for in a film of `length` seconds (with its fade out).
pub fn cue_seconds(c: &MusicCue, length: f64) -> f64 {
    ((c.end + CUE_FADE).min(length) - c.start.max(0.0)).max(0.0)
}

/// Each cue's samples (raw 48 kHz stereo f32) as the provider made them: a blob key per cue,
/// none for a cue that is synthesized.
/// `plan` is of a film of `length` seconds; `model` is the music model its plan chose.
pub(crate) async fn make(
    ctx: &Ctx,
    f: &Arc<Film>,
    slug: &Slug,
    plan: &SoundPlan,
    length: f64,
    model: Option<&str>,
) -> Result<Vec<Option<String>>, WfError> {
    let Some(model) = model.map(str::to_string) else {
        return Ok(vec![None; plan.cues.len()]);
    };
    let Some(maker) = f.studio.music.clone() else {
        // The plan was made with a provider this process is not configured with.
        return Err(WfError::failed(
            "music_provider_missing",
            format!(
                "this run's music is made by {model}, which is not configured here: set FAL_KEY \
                 (and SLATE_FAL_MUSIC_MODEL={model}) and retry the run"
            ),
        ));
    };
    let mut out = vec![];
    for (i, c) in plan.cues.iter().enumerate() {
        let seconds = cue_seconds(c, length);
        if silenced(c, &plan.quiet) {
            // Every scene under it has its music off: nothing to pay for.
            out.push(None);
            continue;
        }
        if seconds <= 0.0 || seconds > maker.longest() {
            tracing::warn!(
                cue = i,
                seconds,
                "the cue is longer than the music model makes; synthesizing it"
            );
            out.push(None);
            continue;
        }
        let name = format!(
            "{model}\n{}\n{}",
            prompt(c),
            (seconds * 1000.0).ceil() as u64
        );
        let digest = slate_activities::checkpoint::digest(&name);
        let req = MusicRequest {
            project: slug.to_string(),
            prompt: prompt(c),
            seconds,
            output_key: key(slug, &format!("music/{digest}.audio")),
        };
        let samples = key(slug, &format!("music/{digest}.f32"));
        out.push(Some(cue(ctx, f, &maker, i, req, samples).await?));
    }
    Ok(out)
}

/// Whether the music is off over all of `c` (the scenes it spans turned it off).
fn silenced(c: &MusicCue, quiet: &[(f64, f64)]) -> bool {
    let mut at = c.start;
    let mut spans = quiet.to_vec();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (s, e) in spans {
        if s <= at + 1e-6 && e > at {
            at = e;
        }
    }
    at >= c.end - 1e-6
}

/// One cue: found made, or paid for, waited for and decoded; its samples' blob key.
async fn cue(
    ctx: &Ctx,
    f: &Arc<Film>,
    maker: &Arc<dyn slate_activities::MusicGen>,
    i: usize,
    req: MusicRequest,
    samples: String,
) -> Result<String, WfError> {
    let (fr, k) = (f.clone(), samples.clone());
    let kept: bool = ctx
        .step(format!("{MUSIC}/{i}/kept"), move |_| async move {
            let r = slate_activities::BlobRef::new(k).step()?;
            fr.studio.blobs.exists(&r).await.step()
        })
        .await?;
    if kept {
        return Ok(samples);
    }
    let minutes = req.seconds / 60.0;
    let usd = f.price(CallKind::Music) * minutes;
    let (g, r) = (maker.clone(), req.clone());
    let job: Job = ctx
        .step_with(
            format!("{MUSIC}/{i}/submit"),
            paid().estimate(usd),
            |_| async move { g.submit(&r).await.step() },
        )
        .await?;
    let made = wait(ctx, f, maker, i, &job, &req).await?;
    let (fr, k) = (f.clone(), samples.clone());
    ctx.step(format!("{MUSIC}/{i}/decode"), move |_| async move {
        decode(&fr, &made, &k).await.step()
    })
    .await
}

/// Poll the cue's job, then wait for fal's webhook (or the timeout), until it is done or the
/// clip's deadline passes.
async fn wait(
    ctx: &Ctx,
    f: &Arc<Film>,
    maker: &Arc<dyn slate_activities::MusicGen>,
    i: usize,
    job: &Job,
    req: &MusicRequest,
) -> Result<MusicOutput, WfError> {
    let signal = job.completion_signal();
    for k in 0..f.config.video_rounds {
        let g = maker.clone();
        let state: JobState<MusicOutput> = ctx
            .step_with(
                format!("{MUSIC}/{i}/poll{k}"),
                StepOptions::new().retry(
                    RetryPolicy::attempts(5)
                        .backoff(Duration::from_secs(2), Duration::from_secs(30)),
                ),
                |sc| async move {
                    let p = g.poll(job, req).await.step()?;
                    report(&sc, p.spend);
                    Ok(p.value)
                },
            )
            .await?;
        if let JobState::Completed { output } = state {
            return Ok(output);
        }
        let w = format!("{MUSIC}/{i}/wait/{k}");
        match &signal {
            Some(name) => {
                let _: Option<Value> = ctx
                    .wait_signal(w, name.clone(), Some(f.config.video_wait))
                    .await?;
            }
            None => ctx.sleep(w, f.config.video_wait).await?,
        }
    }
    Err(WfError::failed(
        "music_timeout",
        format!(
            "music job {} did not finish in time; retry the run to poll it again",
            job.id
        ),
    ))
}

/// The provider's cue decoded to 48 kHz stereo f32 samples at [`CUE_LUFS`], at `key`.
async fn decode(f: &Film, made: &MusicOutput, key: &str) -> slate_activities::Result<String> {
    let blobs = &f.studio.blobs;
    let scratch = blobs.scratch().await?;
    let out = scratch.join("cue.f32");
    slate_activities::local::mixdown::decode_cue(
        &blobs.local_path(&made.audio).await?,
        CUE_LUFS,
        &out,
    )
    .await?;
    let r = blobs.put_file(key, &out).await?;
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    Ok(r.key().to_string())
}

/// Samples `a..b` of a cue decoded by [`decode`] at `path` (silence past its end).
pub fn read(path: &std::path::Path, a: usize, b: usize) -> std::io::Result<Sound> {
    use std::io::{Read, Seek, SeekFrom};
    let mut w = Sound::new(2, RATE);
    w.resize(b.saturating_sub(a));
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(a as u64 * 8))?;
    let mut bytes = vec![];
    file.take((b.saturating_sub(a) * 8) as u64)
        .read_to_end(&mut bytes)?;
    for (j, frame) in bytes.chunks_exact(8).enumerate() {
        for ch in 0..2 {
            let s = &frame[ch * 4..ch * 4 + 4];
            w.set(ch, j, f32::from_le_bytes([s[0], s[1], s[2], s[3]]));
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(start: f64, end: f64) -> MusicCue {
        MusicCue {
            start,
            end,
            mood: "tense, dread".into(),
            tempo_bpm: 92.0,
            key: "D minor".into(),
            instruments: vec!["strings".into()],
        }
    }

    #[test]
    fn a_cue_is_asked_for_in_words_and_skipped_where_its_music_is_off() {
        let p = prompt(&cue(0.0, 9.0));
        assert!(
            p.starts_with("Instrumental") && p.contains("in D minor, 92 bpm, for strings"),
            "{p}"
        );
        assert!(silenced(&cue(5.0, 12.0), &[(9.0, 12.0), (5.0, 9.0)]));
        assert!(!silenced(&cue(5.0, 12.0), &[(5.0, 9.0)]));
        assert!(!silenced(&cue(5.0, 12.0), &[]));
        // The fade out counts, the film's end does not pass.
        assert!((cue_seconds(&cue(2.0, 9.0), 30.0) - 8.5).abs() < 1e-9);
        assert!((cue_seconds(&cue(2.0, 9.0), 9.0) - 7.0).abs() < 1e-9);
    }

    #[test]
    fn a_decoded_cue_is_read_by_the_stretch_with_silence_past_its_end() {
        let dir = std::env::temp_dir().join(format!("slate-cue-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cue.f32");
        let mut bytes = vec![];
        for i in 0..100u32 {
            bytes.extend((i as f32).to_le_bytes());
            bytes.extend((-(i as f32)).to_le_bytes());
        }
        std::fs::write(&path, bytes).unwrap();
        let w = read(&path, 90, 110).unwrap();
        assert_eq!(w.len(), 20);
        assert_eq!((w.at(0, 0), w.at(1, 0)), (90.0, -90.0));
        assert_eq!((w.at(0, 9), w.at(1, 9)), (99.0, -99.0));
        assert_eq!((w.at(0, 10), w.at(1, 19)), (0.0, 0.0));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
