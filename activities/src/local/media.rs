//! Local media: ffmpeg, ffprobe and espeak-ng in place of the task and last-frame services.
//!
//! Every clip the studio makes has the same shape (640x360, 24 fps, yuv420p, AAC 48 kHz stereo),
//! so stitching with cuts is a stream copy; clips from elsewhere are normalised first.
//!
//! (Over 600 lines on purpose: every ffmpeg recipe of the studio, with the one normalised clip
//! format they all rely on, in one place.)

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;

use crate::blob::{BlobRef, Blobs};
use crate::error::{ActivityError, ErrorKind, Result};
use crate::model::*;
use crate::traits::{Media, Paid, Spend, VideoGen, Voice};

pub use super::stitch::{CROSSFADE, Placement, layout, stitched_length};
pub use super::tool::{FPS, audible_span, ffprobe_duration, probe_duration, run};
use super::tool::{a, has_audio, normalize, p};
/// Decoded video frames of a clip.
pub async fn count_frames(path: &Path) -> Result<u64> {
    let v = run(
        "ffprobe",
        &a([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .into_iter()
        .chain([p(path)])
        .collect::<Vec<_>>(),
    )
    .await?;
    v.trim().trim_end_matches(',').parse().map_err(|_| {
        ActivityError::tool(format!(
            "ffprobe could not count the frames of {}",
            path.display()
        ))
    })
}

/// The zoompan expressions of a camera movement over `n` frames.
fn movement(m: &str) -> (&'static str, &'static str, &'static str) {
    match m {
        "zoom" => ("1+0.25*on/N", "iw/2-(iw/zoom/2)", "ih/2-(ih/zoom/2)"),
        "dolly" => (
            "1+0.12*on/N",
            "(iw-iw/zoom)*(0.5+0.2*on/N)",
            "ih/2-(ih/zoom/2)",
        ),
        "pan" => ("1.2", "(iw-iw/zoom)*on/N", "(ih-ih/zoom)/2"),
        "tilt" => ("1.2", "(iw-iw/zoom)/2", "(ih-ih/zoom)*(1-on/N)"),
        "tracking" => ("1.15", "(iw-iw/zoom)*(1-on/N)", "(ih-ih/zoom)*0.4"),
        _ => ("1", "0", "0"),
    }
}

/// Turn a still into a clip of `seconds` with a camera move, and a silent stereo track.
pub async fn still_to_clip(still: &Path, out: &Path, seconds: f64, camera: &str) -> Result<()> {
    let frames = (seconds * FPS as f64).round().max(1.0) as u64;
    let (z, x, y) = movement(camera);
    let expr = |e: &str| e.replace('N', &frames.max(2).saturating_sub(1).to_string());
    let filter = format!(
        "[0:v]scale=1280:720,zoompan=z='{}':x='{}':y='{}':d={frames}:s=640x360:fps={FPS},format=yuv420p[v]",
        expr(z),
        expr(x),
        expr(y)
    );
    let secs = format!("{:.3}", frames as f64 / FPS as f64);
    run(
        "ffmpeg",
        &a([
            "-y",
            "-v",
            "error",
            "-i",
            &p(still),
            "-f",
            "lavfi",
            "-t",
            &secs,
            "-i",
            "anullsrc=r=48000:cl=stereo",
            "-filter_complex",
            &filter,
            "-map",
            "[v]",
            "-map",
            "1:a",
            "-frames:v",
            &frames.to_string(),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-r",
            &FPS.to_string(),
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-t",
            &secs,
            "-movflags",
            "+faststart",
            &p(out),
        ]),
    )
    .await?;
    Ok(())
}

/// Local media operations on the blob store.
#[derive(Debug, Clone)]
pub struct LocalMedia {
    blobs: Blobs,
}

impl LocalMedia {
    /// Media operations on these blobs.
    pub fn new(blobs: Blobs) -> Self {
        LocalMedia { blobs }
    }
}

async fn finish(blobs: &Blobs, scratch: &Path, file: &Path, key: &str) -> Result<BlobRef> {
    let r = blobs.put_file(key, file).await?;
    let _ = tokio::fs::remove_dir_all(scratch).await;
    Ok(r)
}

/// The filter graph that delays each voice line to its offset and mixes them over `base`.
fn voice_graph(base: &str, lines: &[(BlobRef, f64)]) -> String {
    let mut graph = vec![];
    let mut mixes = vec![base.to_string()];
    for (i, (_, at)) in lines.iter().enumerate() {
        let ms = (at.max(0.0) * 1000.0) as u64;
        graph.push(format!(
            "[{}:a]aformat=sample_rates=48000:channel_layouts=stereo,adelay={ms}|{ms}[d{i}]",
            i + 1
        ));
        mixes.push(format!("[d{i}]"));
    }
    graph.push(format!(
        "{}amix=inputs={}:duration=first:normalize=0[aout]",
        mixes.join(""),
        lines.len() + 1
    ));
    graph.join(";")
}

#[async_trait]
impl Media for LocalMedia {
    fn name(&self) -> &'static str {
        "local ffmpeg"
    }

    async fn last_frame(&self, video: &BlobRef, output_key: &str) -> Result<BlobRef> {
        let src = self.blobs.local_path(video).await?;
        let scratch = self.blobs.scratch().await?;
        let out = scratch.join("last.png");
        // Frame-exact: count the frames, then select the last one by number.
        let n = count_frames(&src).await?;
        if n == 0 {
            return Err(ActivityError::tool(format!("{video} has no video frames")));
        }
        run(
            "ffmpeg",
            &a([
                "-y",
                "-v",
                "error",
                "-i",
                &p(&src),
                "-vf",
                &format!("select=eq(n\\,{})", n - 1),
                "-fps_mode",
                "passthrough",
                "-frames:v",
                "1",
                &p(&out),
            ]),
        )
        .await?;
        finish(&self.blobs, &scratch, &out, output_key).await
    }

    async fn length(&self, media: &BlobRef) -> Result<f64> {
        probe_duration(&self.blobs.local_path(media).await?).await
    }

    async fn trim(&self, video: &BlobRef, seconds: f64, output_key: &str) -> Result<BlobRef> {
        let src = self.blobs.local_path(video).await?;
        let scratch = self.blobs.scratch().await?;
        let out = scratch.join("trimmed.mp4");
        let frames = (seconds * FPS as f64).round() as u64;
        // Re-encoded, so the cut is frame-exact rather than on a keyframe.
        run(
            "ffmpeg",
            &a([
                "-y",
                "-v",
                "error",
                "-i",
                &p(&src),
                "-t",
                &format!("{seconds:.3}"),
                "-frames:v",
                &frames.to_string(),
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "20",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-b:a",
                "96k",
                "-movflags",
                "+faststart",
                &p(&out),
            ]),
        )
        .await?;
        finish(&self.blobs, &scratch, &out, output_key).await
    }

    async fn mix_voices(
        &self,
        video: &BlobRef,
        lines: &[(BlobRef, f64)],
        output_key: &str,
    ) -> Result<BlobRef> {
        self.cut(video, None, lines, output_key).await
    }

    /// One ffmpeg pass: the clip cut to `seconds` (re-encoded, frame-exact) when given, and
    /// the voice lines mixed in at their offsets. The video is copied when it is not cut.
    async fn cut(
        &self,
        video: &BlobRef,
        seconds: Option<f64>,
        lines: &[(BlobRef, f64)],
        output_key: &str,
    ) -> Result<BlobRef> {
        if seconds.is_none() && lines.is_empty() {
            let bytes = self.blobs.get(video).await?;
            return self.blobs.put(output_key, bytes).await;
        }
        let src = self.blobs.local_path(video).await?;
        let scratch = self.blobs.scratch().await?;
        let out = scratch.join("cut.mp4");
        let mut args = a(["-y", "-v", "error", "-i"]);
        args.push(p(&src));
        let mut audio = vec!["-map".to_string(), "0:a?".to_string()];
        if !lines.is_empty() {
            for (b, _) in lines {
                args.push("-i".into());
                args.push(p(&self.blobs.local_path(b).await?));
            }
            // A silent clip (as providers often return) gets a silent bed to mix the lines into.
            let base = if has_audio(&src).await? {
                "[0:a]".to_string()
            } else {
                args.extend(a(["-f", "lavfi", "-t"]));
                args.push(format!("{:.3}", probe_duration(&src).await?));
                args.extend(a(["-i", "anullsrc=r=48000:cl=stereo"]));
                format!("[{}:a]", lines.len() + 1)
            };
            args.extend(a(["-filter_complex", &voice_graph(&base, lines)]));
            audio = a(["-map", "[aout]"]);
        }
        args.extend(a(["-map", "0:v"]));
        args.extend(audio);
        match seconds {
            Some(t) => {
                let frames = (t * FPS as f64).round() as u64;
                args.extend(a([
                    "-t",
                    &format!("{t:.3}"),
                    "-frames:v",
                    &frames.to_string(),
                ]));
                args.extend(a([
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
                ]));
            }
            None => args.extend(a(["-c:v", "copy"])),
        }
        args.extend(a(["-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart"]));
        args.push(p(&out));
        run("ffmpeg", &args).await?;
        finish(&self.blobs, &scratch, &out, output_key).await
    }

    async fn stitch(&self, clips: &[ClipSpec], output_key: &str) -> Result<BlobRef> {
        super::stitch::stitch(&self.blobs, clips, output_key).await
    }

    async fn music_track(
        &self,
        video: &BlobRef,
        music: &BlobRef,
        volume: f64,
        output_key: &str,
    ) -> Result<BlobRef> {
        let scratch = self.blobs.scratch().await?;
        let out = scratch.join("music-track.mp4");
        super::mixdown::music_track(
            &self.blobs.local_path(video).await?,
            &self.blobs.local_path(music).await?,
            volume,
            &out,
        )
        .await?;
        let r = self.blobs.put_file(output_key, &out).await;
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        r
    }
}

/// Local video generation: the composite image becomes a clip of the scene's exact length with
/// its camera movement. Work is done at submission (it is free and takes a second or two), so
/// the job is complete as soon as it is known.
#[derive(Debug, Clone)]
pub struct LocalVideo {
    blobs: Blobs,
}

impl LocalVideo {
    /// Video generation into these blobs.
    pub fn new(blobs: Blobs) -> Self {
        LocalVideo { blobs }
    }
}

#[async_trait]
impl VideoGen for LocalVideo {
    fn name(&self) -> &'static str {
        "local ffmpeg"
    }

    fn durations(&self) -> Vec<f64> {
        vec![]
    }

    async fn submit(&self, req: &VideoRequest) -> Result<crate::model::Job> {
        let out_ref = BlobRef::new(&req.output_key)?;
        if !self.blobs.exists(&out_ref).await? {
            let scratch = self.blobs.scratch().await?;
            let clip = scratch.join("clip.mp4");
            match req.mode {
                VideoMode::ImageToVideo | VideoMode::TextToVideo => {
                    let still = match (&req.start_image, req.mode) {
                        (Some(img), VideoMode::ImageToVideo) => self.blobs.local_path(img).await?,
                        _ => {
                            // Text-to-video: a title card of the prompt.
                            let comp = Composition {
                                caption: req.prompt.clone(),
                                ..Default::default()
                            };
                            let f = scratch.join("card.png");
                            tokio::fs::write(&f, crate::local::render::render(&comp).png()?)
                                .await?;
                            f
                        }
                    };
                    still_to_clip(&still, &clip, req.duration, &req.camera_movement).await?;
                }
                VideoMode::VideoToVideo => {
                    let src = req.source_video.as_ref().ok_or_else(|| {
                        ActivityError::bad_request("local", "video-to-video needs a source video")
                    })?;
                    let s = self.blobs.local_path(src).await?;
                    normalize(&s, &clip).await?;
                }
            }
            self.blobs.put_file(&req.output_key, &clip).await?;
            let _ = tokio::fs::remove_dir_all(&scratch).await;
        }
        Ok(crate::model::Job {
            provider: "local".into(),
            id: req.output_key.clone(),
            model: "ffmpeg-storyboard".into(),
            status_url: None,
            response_url: None,
            cancel_url: None,
        })
    }

    async fn poll(
        &self,
        job: &crate::model::Job,
        _req: &VideoRequest,
    ) -> Result<Paid<JobState<VideoOutput>>> {
        let r = BlobRef::new(&job.id)?;
        if !self.blobs.exists(&r).await? {
            // The work was lost with a crash before it was stored: submitting again is free.
            return Err(ActivityError::new(
                "local",
                ErrorKind::NotFound,
                format!("local video job {} has no result; submit it again", job.id),
            )
            .retryable(false));
        }
        let duration = probe_duration(&self.blobs.local_path(&r).await?).await?;
        Ok(Paid::free(JobState::Completed {
            output: VideoOutput { video: r, duration },
        }))
    }

    async fn cancel(&self, _job: &crate::model::Job) -> Result<()> {
        Ok(())
    }
}

/// Local voices with espeak-ng.
#[derive(Debug, Clone)]
pub struct LocalVoice {
    blobs: Blobs,
}

impl LocalVoice {
    /// Voices into these blobs.
    pub fn new(blobs: Blobs) -> Self {
        LocalVoice { blobs }
    }
}

#[async_trait]
impl Voice for LocalVoice {
    fn name(&self) -> &'static str {
        "local espeak-ng"
    }

    async fn synthesize(&self, req: &VoiceRequest) -> Result<Paid<BlobRef>> {
        let scratch = self.blobs.scratch().await?;
        let out = scratch.join("line.wav");
        let c = &req.casting;
        let res = tokio::time::timeout(
            Duration::from_secs(30),
            run(
                "espeak-ng",
                &a([
                    "-v",
                    &c.voice,
                    "-p",
                    &c.pitch.min(99).to_string(),
                    "-s",
                    &c.speed.clamp(80, 400).to_string(),
                    "-w",
                    &p(&out),
                    &req.text,
                ]),
            ),
        )
        .await
        .map_err(|_| {
            ActivityError::new(
                "local",
                ErrorKind::Timeout,
                "espeak-ng took longer than 30 s",
            )
        })?;
        res?;
        let r = finish(&self.blobs, &scratch, &out, &req.output_key).await?;
        Ok(Paid {
            value: r,
            spend: Spend::ZERO,
        })
    }
}
