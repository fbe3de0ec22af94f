//! The film's sound mix (issue 27): dialogue on top, ambience under it, music under both and
//! ducked under every line, effects on their action; the whole brought to a loudness target
//! (streaming's -14 LUFS integrated, -1 dBTP true peak by default) with ffmpeg's `loudnorm` in
//! two passes (measure, then apply the measured values linearly), the picture copied.
//!
//! The ducking is an envelope computed from the lines' known timings (the subtitles' cues),
//! not a sidechain compressor: the same film always gets the same mix, and a test can say by
//! how much the music is lower under speech.

use std::path::Path;

use serde::{Deserialize, Serialize};
pub use slate_sound::duck;

use super::tool::{a, has_audio, p, probe_duration, run};
use crate::error::{ActivityError, Result};

/// Where the mix lands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Loudness {
    /// Integrated loudness, LUFS.
    pub integrated_lufs: f64,
    /// Highest true peak, dBTP.
    pub true_peak_dbtp: f64,
}

impl Default for Loudness {
    /// Streaming platforms' target.
    fn default() -> Self {
        Loudness {
            integrated_lufs: -14.0,
            true_peak_dbtp: -1.0,
        }
    }
}

/// What `loudnorm` measured of a file (its first pass).
#[derive(Debug, Clone, Deserialize)]
struct Measured {
    input_i: String,
    input_tp: String,
    input_lra: String,
    input_thresh: String,
    target_offset: String,
}

/// The `loudnorm` filter aiming at `target`, with `measured` for its second pass.
fn loudnorm(target: Loudness, measured: Option<&Measured>) -> String {
    // The loudness range is the mix's own (lines over quiet beds can span 20 LU): the range
    // target is kept above what was measured, because `loudnorm` applies its linear gain only
    // when the input's range is within the target's and otherwise compresses (dynamic mode),
    // missing the integrated target by a few LU.
    let lra = measured
        .and_then(|m| m.input_lra.parse::<f64>().ok())
        .filter(|l| l.is_finite())
        .map_or(11.0, |l| (l.ceil() + 1.0).clamp(11.0, 50.0));
    let mut f = format!(
        "loudnorm=I={:.1}:TP={:.1}:LRA={lra:.0}",
        target.integrated_lufs, target.true_peak_dbtp
    );
    match measured {
        Some(m) => f.push_str(&format!(
            ":measured_I={}:measured_TP={}:measured_LRA={}:measured_thresh={}:offset={}:linear=true:print_format=summary",
            m.input_i, m.input_tp, m.input_lra, m.input_thresh, m.target_offset
        )),
        None => f.push_str(":print_format=json"),
    }
    f
}

/// The sound of `video` (its dialogue) mixed with `stems` (each a sound file and its gain in
/// dB: music, ambience, effects), brought to `target`, with the picture copied, written to
/// `out`. The mix is made once to PCM, measured, then normalized linearly.
pub async fn mix(
    video: &Path,
    stems: &[(&Path, f64)],
    target: Loudness,
    scratch: &Path,
    out: &Path,
) -> Result<()> {
    let mixed = scratch.join("mix.wav");
    // A film nobody speaks in has no sound track: its voices are silence as long as it.
    let voices = if has_audio(video).await? {
        video.to_path_buf()
    } else {
        let s = scratch.join("silence.flac");
        silence(probe_duration(video).await?, &s).await?;
        s
    };
    sum(&voices, stems, &mixed).await?;
    normalize(video, &mixed, target, scratch, out).await
}

/// The stems alone at their gains, summed (the film's sound under its voices): what a remote
/// mixer is handed as the music track. As long as the longest stem; FLAC.
pub async fn bed(stems: &[(&Path, f64)], out: &Path) -> Result<()> {
    let mut args = a(["-y", "-v", "error"]);
    for (stem, _) in stems {
        args.extend(a(["-i", &p(stem)]));
    }
    let mut graph = String::new();
    let mut labels = String::new();
    for (i, (_, gain)) in stems.iter().enumerate() {
        graph.push_str(&format!(
            "[{i}:a]aresample=48000,aformat=channel_layouts=stereo,volume={gain:.2}dB[s{i}];"
        ));
        labels.push_str(&format!("[s{i}]"));
    }
    graph.push_str(&format!(
        "{labels}amix=inputs={}:duration=longest:normalize=0[m]",
        stems.len()
    ));
    args.extend(a([
        "-filter_complex",
        &graph,
        "-map",
        "[m]",
        "-c:a",
        "flac",
        &p(out),
    ]));
    run("ffmpeg", &args).await.map(drop)
}

/// `music` mixed under the sound of `video` at `volume` (1.0: as it is), as long as the
/// video, its picture copied: what the last-frame service's `music-track` does, done here.
pub async fn music_track(video: &Path, music: &Path, volume: f64, out: &Path) -> Result<()> {
    let length = probe_duration(video).await?;
    let m = format!(
        "[1:a]aresample=48000,aformat=channel_layouts=stereo,volume={volume:.4},apad,atrim=duration={length:.3}"
    );
    let graph = if has_audio(video).await? {
        format!(
            "{m}[m];[0:a]aresample=48000,aformat=channel_layouts=stereo[d];[d][m]amix=inputs=2:duration=first:normalize=0[a]"
        )
    } else {
        format!("{m}[a]")
    };
    let args = a([
        "-y",
        "-v",
        "error",
        "-i",
        &p(video),
        "-i",
        &p(music),
        "-filter_complex",
        &graph,
        "-map",
        "0:v",
        "-map",
        "[a]",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-b:a",
        "256k",
        &p(out),
    ]);
    run("ffmpeg", &args).await.map(drop)
}

/// A music provider's cue at `src` decoded to raw 48 kHz stereo 32-bit float samples (little
/// endian, interleaved) at `lufs` integrated, at `out`: what the film's music windows read.
pub async fn decode_cue(src: &Path, lufs: f64, out: &Path) -> Result<()> {
    let args = a([
        "-y",
        "-v",
        "error",
        "-i",
        &p(src),
        "-vn",
        "-af",
        &format!(
            "loudnorm=I={lufs:.1}:TP=-2:LRA=11,aresample=48000,aformat=sample_fmts=flt:channel_layouts=stereo"
        ),
        "-f",
        "f32le",
        "-ac",
        "2",
        "-ar",
        "48000",
        &p(out),
    ]);
    run("ffmpeg", &args).await.map(drop)
}

/// `voices` and the stems at their gains, summed without `amix`'s averaging (so the dialogue
/// keeps its level), as long as the voices, at `mixed` (WAV).
async fn sum(voices: &Path, stems: &[(&Path, f64)], mixed: &Path) -> Result<()> {
    let mut args = a(["-y", "-v", "error", "-i", &p(voices)]);
    for (stem, _) in stems {
        args.extend(a(["-i", &p(stem)]));
    }
    // Every input to the film's rate and stereo, each at its gain, summed without the
    // averaging `amix` does by default (so the dialogue keeps its level).
    let mut graph = String::from("[0:a]aresample=48000,aformat=channel_layouts=stereo[d];");
    let mut labels = String::from("[d]");
    for (i, (_, gain)) in stems.iter().enumerate() {
        graph.push_str(&format!(
            "[{}:a]aresample=48000,aformat=channel_layouts=stereo,volume={gain:.2}dB[s{i}];",
            i + 1
        ));
        labels.push_str(&format!("[s{i}]"));
    }
    graph.push_str(&format!(
        "{labels}amix=inputs={}:duration=first:normalize=0[m]",
        stems.len() + 1
    ));
    args.extend(a([
        "-filter_complex",
        &graph,
        "-map",
        "[m]",
        "-c:a",
        "pcm_s24le",
        &p(mixed),
    ]));
    run("ffmpeg", &args).await.map(drop)
}

/// The picture of `video` with the sound of `mixed` brought to `target`, at `out`.
pub async fn normalize(
    video: &Path,
    mixed: &Path,
    target: Loudness,
    scratch: &Path,
    out: &Path,
) -> Result<()> {
    // The voices' peaks stand far above the film's loudness; brought up to the target as they
    // are, they would exceed the true-peak ceiling and `loudnorm` would fall back to its
    // dynamic mode (a compressor that pumps). So the mix is first raised by the measured
    // difference and its peaks limited 1.5 dB under the ceiling; the second pass then only
    // trims it, linearly.
    let first = measure(mixed, target).await?;
    // A silent film measures -inf: its silence is kept as it is.
    let Some(raise) = first
        .input_i
        .parse::<f64>()
        .ok()
        .filter(|i| i.is_finite())
        .map(|i| (target.integrated_lufs - i).clamp(-40.0, 40.0))
    else {
        return encode(video, mixed, "anull", out).await;
    };
    let limited = scratch.join("limited.wav");
    let ceiling = 10f64.powf((target.true_peak_dbtp - 1.5) / 20.0);
    let args = a([
        "-y",
        "-v",
        "error",
        "-i",
        &p(mixed),
        "-af",
        &format!(
            "volume={raise:.2}dB,alimiter=limit={ceiling:.4}:attack=1:release=60:level=disabled,aformat=sample_rates=48000:channel_layouts=stereo"
        ),
        "-c:a",
        "pcm_s24le",
        &p(&limited),
    ]);
    run("ffmpeg", &args).await?;
    let measured = measure(&limited, target).await?;
    encode(video, &limited, &loudnorm(target, Some(&measured)), out).await
}

/// The picture of `video` (copied) with `sound` through `filter`, as AAC, at `out`.
async fn encode(video: &Path, sound: &Path, filter: &str, out: &Path) -> Result<()> {
    let args = a([
        "-y",
        "-v",
        "error",
        "-i",
        &p(video),
        "-i",
        &p(sound),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "copy",
        "-af",
        &format!("{filter},aformat=sample_rates=48000:channel_layouts=stereo"),
        "-c:a",
        "aac",
        "-b:a",
        "192k",
        "-movflags",
        "+faststart",
        &p(out),
    ]);
    run("ffmpeg", &args).await.map(drop)
}

/// `seconds` of stereo silence at 48 kHz as a FLAC file at `out`.
async fn silence(seconds: f64, out: &Path) -> Result<()> {
    let args = a([
        "-y",
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=48000:cl=stereo",
        "-t",
        &format!("{seconds:.3}"),
        "-c:a",
        "flac",
        &p(out),
    ]);
    run("ffmpeg", &args).await.map(drop)
}

/// `loudnorm`'s first pass over `file`: what it measured.
async fn measure(file: &Path, target: Loudness) -> Result<Measured> {
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(file)
        .args(["-af", &loudnorm(target, None), "-f", "null", "-"])
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| ActivityError::tool(format!("cannot start ffmpeg: {e}")))?;
    let err = String::from_utf8_lossy(&out.stderr);
    // The JSON block is the last `{ ... }` ffmpeg prints.
    let json = err
        .rfind('{')
        .and_then(|s| err[s..].find('}').map(|e| &err[s..=s + e]))
        .ok_or_else(|| {
            ActivityError::tool(format!("loudnorm printed no measurement: {}", err.trim()))
        })?;
    serde_json::from_str(json).map_err(|e| {
        ActivityError::tool(format!("loudnorm's measurement did not read: {e}: {json}"))
    })
}

/// Integrated loudness and true peak of a file, as ffmpeg's `ebur128` measures them.
pub async fn measured(file: &Path) -> Result<Loudness> {
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(file)
        .args(["-map", "0:a", "-af", "ebur128=peak=true", "-f", "null", "-"])
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| ActivityError::tool(format!("cannot start ffmpeg: {e}")))?;
    let err = String::from_utf8_lossy(&out.stderr);
    let summary = err.rsplit("Summary:").next().unwrap_or("");
    let value = |key: &str| -> Option<f64> {
        summary
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    match (value("I:"), value("Peak:")) {
        (Some(i), Some(tp)) => Ok(Loudness {
            integrated_lufs: i,
            true_peak_dbtp: tp,
        }),
        _ => Err(ActivityError::tool(format!(
            "ebur128 printed no summary: {}",
            summary.trim()
        ))),
    }
}

/// `pieces` (sound files of one stem, in order) joined into one FLAC file at `out`: a stem
/// rendered in windows, kept whole.
pub async fn join(pieces: &[&Path], scratch: &Path, out: &Path) -> Result<()> {
    let list = scratch.join("pieces.txt");
    let body: String = pieces
        .iter()
        .map(|p| {
            format!(
                "file '{}'\n",
                p.display().to_string().replace('\'', "'\\''")
            )
        })
        .collect();
    tokio::fs::write(&list, body)
        .await
        .map_err(|e| ActivityError::tool(format!("cannot write the list of pieces: {e}")))?;
    let args = a([
        "-y",
        "-v",
        "error",
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        &p(&list),
        "-c:a",
        "flac",
        &p(out),
    ]);
    run("ffmpeg", &args).await.map(drop)
}

/// The sound of `video` (its voices) as a FLAC file at `out`: the dialogue stem (silence as
/// long as the film when it has no sound track).
pub async fn sound_of(video: &Path, out: &Path) -> Result<()> {
    if !has_audio(video).await? {
        return silence(probe_duration(video).await?, out).await;
    }
    let args = a([
        "-y",
        "-v",
        "error",
        "-i",
        &p(video),
        "-map",
        "0:a",
        "-c:a",
        "flac",
        &p(out),
    ]);
    run("ffmpeg", &args).await.map(drop)
}
