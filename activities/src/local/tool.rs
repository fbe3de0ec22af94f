//! Running the media tools (ffmpeg, ffprobe, espeak-ng) and the frame rate every clip has.

use std::path::Path;

use tokio::process::Command;

use crate::error::{ActivityError, ErrorKind, Result};

/// Frames per second of every clip.
pub const FPS: u32 = 24;

/// Run a tool; on failure the error carries the end of its stderr.
pub async fn run(tool: &str, args: &[String]) -> Result<String> {
    let out = Command::new(tool)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{tool} is not installed (run ./scripts/demo or apt-get install {})",
                    if tool == "ffprobe" { "ffmpeg" } else { tool }
                )
            } else {
                format!("cannot start {tool}: {e}")
            };
            ActivityError::new("local", ErrorKind::Tool, hint).retryable(false)
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(6).collect();
        return Err(ActivityError::tool(format!(
            "{tool} failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where sound is heard in a file: from its first to its last sample louder than -45 dBFS,
/// seconds from its start; `None` when it is silent throughout. What subtitles are timed to
/// (a synthesized voice starts and ends with silence).
pub async fn audible_span(path: &Path) -> Result<Option<(f64, f64)>> {
    const RATE: f64 = 16_000.0;
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-map", "0:a:0", "-ac", "1", "-ar", "16000", "-f", "s16le", "-",
        ])
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            ActivityError::new(
                "local",
                ErrorKind::Tool,
                format!("cannot start ffmpeg: {e}"),
            )
        })?;
    if !out.status.success() {
        return Err(ActivityError::tool(format!(
            "ffmpeg could not read the sound of {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let floor = (32768.0 * 10f64.powf(-45.0 / 20.0)) as u16;
    let loud = |c: &[u8]| i16::from_le_bytes([c[0], c[1]]).unsigned_abs() > floor;
    let samples: Vec<&[u8]> = out.stdout.chunks_exact(2).collect();
    let (Some(first), Some(last)) = (
        samples.iter().position(|c| loud(c)),
        samples.iter().rposition(|c| loud(c)),
    ) else {
        return Ok(None);
    };
    Ok(Some((first as f64 / RATE, (last + 1) as f64 / RATE)))
}

pub(crate) fn a<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Vec<String> {
    items.into_iter().map(Into::into).collect()
}

pub(crate) fn p(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// What the MP4 reader makes of a file (off the async threads: it reads the disk).
pub(crate) async fn mp4_info(path: &Path) -> Option<super::mp4::Info> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || super::mp4::read(&path))
        .await
        .ok()
        .flatten()
}

/// Length of a media file, seconds (the video stream's when there is one): read from the file
/// when it is an MP4 ([`super::mp4`]), else asked of ffprobe.
pub async fn probe_duration(path: &Path) -> Result<f64> {
    match mp4_info(path).await {
        Some(info) => Ok(info.length()),
        None => ffprobe_duration(path).await,
    }
}

/// Length of a media file as ffprobe reports it (the video stream's when there is one).
pub async fn ffprobe_duration(path: &Path) -> Result<f64> {
    let v = run(
        "ffprobe",
        &a([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=duration",
            "-of",
            "default=nw=1:nk=1",
        ])
        .into_iter()
        .chain([p(path)])
        .collect::<Vec<_>>(),
    )
    .await?;
    let v = v.trim();
    let v = if v.is_empty() || v == "N/A" {
        run(
            "ffprobe",
            &a([
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "default=nw=1:nk=1",
            ])
            .into_iter()
            .chain([p(path)])
            .collect::<Vec<_>>(),
        )
        .await?
    } else {
        v.to_string()
    };
    v.trim().parse::<f64>().map_err(|_| {
        ActivityError::tool(format!("ffprobe gave no duration for {}", path.display()))
    })
}

/// Whether a clip already has the studio's shape.
pub(crate) async fn is_normal(path: &Path) -> Result<bool> {
    let v = run(
        "ffprobe",
        &a([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,width,height,pix_fmt,r_frame_rate,sample_rate,channels",
            "-of",
            "json",
        ])
        .into_iter()
        .chain([p(path)])
        .collect::<Vec<_>>(),
    )
    .await?;
    let j: serde_json::Value = serde_json::from_str(&v).unwrap_or_default();
    let streams = j["streams"].as_array().cloned().unwrap_or_default();
    let video_ok = streams.iter().any(|s| {
        s["codec_type"] == "video"
            && s["width"] == 640
            && s["height"] == 360
            && s["pix_fmt"] == "yuv420p"
            && s["r_frame_rate"] == format!("{FPS}/1").as_str()
    });
    let audio_ok = streams
        .iter()
        .any(|s| s["codec_type"] == "audio" && s["sample_rate"] == "48000" && s["channels"] == 2);
    Ok(video_ok && audio_ok)
}

/// Whether a media file has an audio stream (providers' clips are often silent).
pub(crate) async fn has_audio(src: &Path) -> Result<bool> {
    if let Some(info) = mp4_info(src).await {
        return Ok(info.has_audio());
    }
    Ok(!run(
        "ffprobe",
        &a([
            "-v",
            "error",
            "-select_streams",
            "a",
            "-show_entries",
            "stream=index",
            "-of",
            "csv=p=0",
        ])
        .into_iter()
        .chain([p(src)])
        .collect::<Vec<_>>(),
    )
    .await?
    .trim()
    .is_empty())
}

/// Re-encode a clip to the studio's shape (adding silence when it has no audio).
pub(crate) async fn normalize(src: &Path, out: &Path) -> Result<()> {
    let has_audio = has_audio(src).await?;
    let dur = probe_duration(src).await?;
    let mut args = a(["-y", "-v", "error", "-i"]);
    args.push(p(src));
    if !has_audio {
        args.extend(a(["-f", "lavfi", "-t"]));
        args.push(format!("{dur:.3}"));
        args.extend(a(["-i", "anullsrc=r=48000:cl=stereo"]));
    }
    args.extend(a([
        "-vf",
        "scale=640:360:force_original_aspect_ratio=decrease,pad=640:360:(ow-iw)/2:(oh-ih)/2,fps=24,format=yuv420p",
        "-map", "0:v:0", "-map", if has_audio { "0:a:0" } else { "1:a:0" },
        "-af", "aresample=48000,aformat=channel_layouts=stereo",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-c:a", "aac", "-b:a", "96k",
        "-t",
    ]));
    args.push(format!("{dur:.3}"));
    args.push(p(out));
    run("ffmpeg", &args).await?;
    Ok(())
}
