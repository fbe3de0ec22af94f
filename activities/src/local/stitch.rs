//! Stitching a film in short pieces that each survive their process (decision 0027).
//!
//! One ffmpeg pass over a whole film takes longer the longer the film is (seconds for a few
//! minutes of picture), so a worker killed every few seconds could never finish it, and a
//! restarted attempt began again from nothing. Here the picture is cut where it changes hands:
//! each clip's stretch between its joins, and each crossfade between two clips, is its own
//! encode of at most one clip's length. The sound of the whole film is one pass (audio only, a
//! small fraction of a picture pass), and the film is then the pieces joined by stream copy.
//!
//! With a step checkpoint in scope (the film's `stitch` step) every piece is stored as a blob
//! and named in the checkpoint as soon as it is made, so an attempt after a crash makes only
//! the pieces still missing; when the film is stored the pieces are deleted. Pieces are made a
//! few at a time (one per core, at most four).
//!
//! Every boundary is rounded to a frame of the film, so the pieces add up to exactly
//! `round(length x 24)` frames whatever the clips' lengths, and the sound is cut to the same
//! length.

use std::path::{Path, PathBuf};

use super::tool::{FPS, a, p, run};
use crate::blob::{BlobRef, Blobs};
use crate::checkpoint;
use crate::error::Result;
use crate::model::ClipSpec;

/// Crossfade length of dissolves and fades between clips, seconds.
pub const CROSSFADE: f64 = 0.5;

/// The crossfade between two clips, from their transitions: `(xfade name, seconds)`.
pub(crate) fn crossfade(prev: &ClipSpec, next: &ClipSpec) -> Option<&'static str> {
    match (prev.transition_out.as_str(), next.transition_in.as_str()) {
        ("dissolve", _) | (_, "dissolve") => Some("dissolve"),
        ("fade_out", _) | (_, "fade_in") => Some("fadeblack"),
        ("wipe", _) | (_, "wipe") => Some("wipeleft"),
        _ => None,
    }
}

/// Length of a stitched film: the sum of its clips less each crossfade.
pub fn stitched_length(clips: &[ClipSpec]) -> f64 {
    let mut total = clips.first().map_or(0.0, |c| c.duration);
    for w in clips.windows(2) {
        total += w[1].duration;
        if crossfade(&w[0], &w[1]).is_some() {
            total -= fade_len(&w[0], &w[1]);
        }
    }
    total
}

pub(crate) fn fade_len(prev: &ClipSpec, next: &ClipSpec) -> f64 {
    CROSSFADE.min(prev.duration / 2.0).min(next.duration / 2.0)
}

/// Stitch normalised clips. Cuts alone are a stream copy; any dissolve, fade or wipe is made
/// in pieces that survive a crash of the step.
pub(crate) async fn stitch_files(
    blobs: &Blobs,
    files: &[PathBuf],
    clips: &[ClipSpec],
    out: &Path,
    scratch: &Path,
    output_key: &str,
) -> Result<()> {
    let fade_in = clips.first().is_some_and(|c| c.transition_in == "fade_in");
    let fade_out = clips.last().is_some_and(|c| c.transition_out == "fade_out");
    let cuts_only = clips.windows(2).all(|w| crossfade(&w[0], &w[1]).is_none());
    if !(cuts_only && !fade_in && !fade_out) {
        return stitch(blobs, files, clips, out, scratch, output_key).await;
    }
    let list = scratch.join("concat.txt");
    let body: String = files
        .iter()
        .map(|f| format!("file '{}'\n", p(f).replace('\'', "'\\''")))
        .collect();
    tokio::fs::write(&list, body).await?;
    run(
        "ffmpeg",
        &a([
            "-y",
            "-v",
            "error",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            &p(&list),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            &p(out),
        ]),
    )
    .await?;
    Ok(())
}

/// One piece of the film's picture.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    /// Clip `clip` alone, from `at` seconds into it.
    Solo { clip: usize, at: f64 },
    /// The crossfade from clip `from` into the next one, starting `at` seconds into `from`
    /// and `next_at` seconds into the next.
    Fade {
        from: usize,
        kind: &'static str,
        at: f64,
        next_at: f64,
    },
}

/// A piece and where it sits in the film, in frames.
#[derive(Debug, Clone, PartialEq)]
struct Placed {
    piece: Piece,
    first: u64,
    frames: u64,
}

/// Where each clip starts in the film, and the film's length (seconds).
fn starts(clips: &[ClipSpec], fades: &[f64]) -> (Vec<f64>, f64) {
    let mut at = 0.0;
    let mut out = Vec::with_capacity(clips.len());
    for (i, c) in clips.iter().enumerate() {
        out.push(at);
        at += c.duration - fades.get(i).copied().unwrap_or(0.0);
    }
    (out, at)
}

/// Cut the film's picture into pieces, boundaries rounded to frames. Pieces of no frames
/// (a clip wholly taken by its two crossfades) are left out.
fn plan(clips: &[ClipSpec]) -> (Vec<Placed>, u64) {
    let fades: Vec<f64> = clips
        .windows(2)
        .map(|w| crossfade(&w[0], &w[1]).map_or(0.0, |_| fade_len(&w[0], &w[1])))
        .collect();
    let (start, length) = starts(clips, &fades);
    let frame = |t: f64| (t * f64::from(FPS)).round().max(0.0) as u64;
    // Film times at which each piece ends, in order.
    let mut bounds: Vec<(Piece, f64)> = vec![];
    for (i, c) in clips.iter().enumerate() {
        bounds.push((Piece::Solo { clip: i, at: 0.0 }, start[i] + c.duration));
        if let Some(&f) = fades.get(i) {
            bounds.last_mut().expect("pushed").1 -= f;
            if f > 0.0 {
                let kind = crossfade(c, &clips[i + 1]).expect("a fade has a kind");
                let piece = Piece::Fade {
                    from: i,
                    kind,
                    at: 0.0,
                    next_at: 0.0,
                };
                bounds.push((piece, start[i] + c.duration));
            }
        }
    }
    let mut placed = vec![];
    let mut first = 0;
    for (mut piece, end) in bounds {
        let last = frame(end).max(first);
        let t = first as f64 / f64::from(FPS);
        match &mut piece {
            Piece::Solo { clip, at } => *at = (t - start[*clip]).max(0.0),
            Piece::Fade {
                from, at, next_at, ..
            } => {
                *at = (t - start[*from]).max(0.0);
                *next_at = (t - start[*from + 1]).max(0.0);
            }
        }
        if last > first {
            placed.push(Placed {
                piece,
                first,
                frames: last - first,
            });
        }
        first = last;
    }
    (placed, frame(length))
}

/// The film's fades from and to black, on a piece's picture (whose frames are at film time
/// `first / FPS` on): a filter chain, empty when neither touches it.
fn edges(first: u64, frames: u64, total: u64, fade_in: bool, fade_out: bool) -> String {
    let fps = f64::from(FPS);
    let (from, to, end) = (
        first as f64 / fps,
        (first + frames) as f64 / fps,
        total as f64 / fps,
    );
    let mut f = vec![];
    if fade_in && from < CROSSFADE {
        f.push(format!("fade=t=in:st=0:d={CROSSFADE}"));
    }
    if fade_out && to > end - CROSSFADE {
        f.push(format!(
            "fade=t=out:st={:.4}:d={CROSSFADE}",
            (end - CROSSFADE).max(0.0)
        ));
    }
    if f.is_empty() {
        return String::new();
    }
    // The fades are timed on the film's clock: shift there, fade, shift back.
    format!(
        ",setpts=PTS-STARTPTS+{from:.6}/TB,{},setpts=PTS-STARTPTS",
        f.join(",")
    )
}

/// The ffmpeg arguments that encode one piece to `out`.
fn piece_args(
    files: &[PathBuf],
    placed: &Placed,
    total: u64,
    fades: (bool, bool),
    out: &Path,
) -> Vec<String> {
    let mut args = a(["-y", "-v", "error"]);
    // A trimmed stream runs on with its last frame, so a piece never lacks a frame to rounding.
    let tail = "setpts=PTS-STARTPTS,fps=24,tpad=stop_mode=clone:stop_duration=1";
    let chain = match &placed.piece {
        Piece::Solo { clip, at } => {
            args.extend(a(["-i", &p(&files[*clip])]));
            format!("[0:v]trim=start={at:.6},{tail}")
        }
        Piece::Fade {
            from,
            kind,
            at,
            next_at,
        } => {
            args.extend(a(["-i", &p(&files[*from]), "-i", &p(&files[*from + 1])]));
            let d = placed.frames as f64 / f64::from(FPS);
            format!(
                "[0:v]trim=start={at:.6},{tail}[x];[1:v]trim=start={next_at:.6},{tail}[y];\
                 [x][y]xfade=transition={kind}:duration={d:.6}:offset=0"
            )
        }
    };
    let graph = format!(
        "{chain}{},format=yuv420p[v]",
        edges(placed.first, placed.frames, total, fades.0, fades.1)
    );
    args.extend(a(["-filter_complex", &graph, "-map", "[v]", "-frames:v"]));
    args.push(placed.frames.to_string());
    args.extend(a([
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "22",
        "-video_track_timescale",
        "24000",
    ]));
    args.push(p(out));
    args
}

/// The ffmpeg arguments that make the film's sound (AAC, `frames / FPS` seconds) to `out`.
fn sound_args(
    files: &[PathBuf],
    clips: &[ClipSpec],
    total: u64,
    fades: (bool, bool),
    out: &Path,
) -> Vec<String> {
    let mut args = a(["-y", "-v", "error"]);
    for f in files {
        args.extend(a(["-i", &p(f)]));
    }
    let mut graph = vec![];
    for i in 0..files.len() {
        graph.push(format!(
            "[{i}:a]aresample=48000,aformat=channel_layouts=stereo,asetpts=PTS-STARTPTS[a{i}]"
        ));
    }
    let mut cur = "a0".to_string();
    for k in 1..files.len() {
        let next = format!("ax{k}");
        match crossfade(&clips[k - 1], &clips[k]) {
            Some(_) => graph.push(format!(
                "[{cur}][a{k}]acrossfade=d={:.6}[{next}]",
                fade_len(&clips[k - 1], &clips[k])
            )),
            None => graph.push(format!("[{cur}][a{k}]concat=n=2:v=0:a=1[{next}]")),
        }
        cur = next;
    }
    let length = total as f64 / f64::from(FPS);
    let mut tail = vec![format!("apad=whole_dur={length:.6}")];
    if fades.0 {
        tail.push(format!("afade=t=in:st=0:d={CROSSFADE}"));
    }
    if fades.1 {
        tail.push(format!(
            "afade=t=out:st={:.6}:d={CROSSFADE}",
            (length - CROSSFADE).max(0.0)
        ));
    }
    graph.push(format!("[{cur}]{}[aout]", tail.join(",")));
    args.extend(a([
        "-filter_complex",
        &graph.join(";"),
        "-map",
        "[aout]",
        "-t",
    ]));
    args.push(format!("{length:.6}"));
    args.extend(a(["-c:a", "aac", "-b:a", "128k"]));
    args.push(p(out));
    args
}

/// Where this stitch keeps what it made: blobs under the film's key, named in the step's
/// checkpoint under the stitch's digest, so a different stitch never takes them.
struct Keep<'a> {
    blobs: &'a Blobs,
    scratch: &'a Path,
    prefix: String,
    digest: String,
    durable: bool,
}

impl Keep<'_> {
    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// The file named `name`: what an earlier attempt kept, or made now by ffmpeg with `args`
    /// (which write it to `self.file(name)`), and kept.
    async fn unit(&self, name: &str, args: Vec<String>) -> Result<PathBuf> {
        let mark = format!("stitch:{}:{name}", self.digest);
        if let Some(key) = checkpoint::recall::<String>(&mark) {
            if let Ok(r) = BlobRef::new(&key)
                && let Ok(path) = self.blobs.local_path(&r).await
            {
                return Ok(path);
            }
            checkpoint::forget(&mark);
        }
        let file = self.file(name);
        run("ffmpeg", &args).await?;
        if self.durable {
            let key = self.key(name);
            self.blobs.put_file(&key, &file).await?;
            checkpoint::keep("local", &mark, &key).await?;
        }
        Ok(file)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    /// Delete what was kept (the film is stored: nothing will read them again).
    async fn clear(&self, names: impl Iterator<Item = String>) {
        if !self.durable {
            return;
        }
        for name in names {
            if let Ok(r) = BlobRef::new(self.key(&name)) {
                let _ = self.blobs.delete(&r).await;
            }
        }
    }
}

/// Stitch normalised `files` (one per clip of `clips`) into `out`, keeping progress where a
/// step checkpoint is in scope (blobs under `{output_key}.parts/`).
async fn stitch(
    blobs: &Blobs,
    files: &[PathBuf],
    clips: &[ClipSpec],
    out: &Path,
    scratch: &Path,
    output_key: &str,
) -> Result<()> {
    let (placed, total) = plan(clips);
    let fades = (
        clips.first().is_some_and(|c| c.transition_in == "fade_in"),
        clips.last().is_some_and(|c| c.transition_out == "fade_out"),
    );
    let digest = checkpoint::digest(&(clips, 1));
    let keep = Keep {
        blobs,
        scratch,
        prefix: format!("{output_key}.parts/{digest}"),
        digest,
        durable: checkpoint::active(),
    };
    let names: Vec<String> = (0..placed.len()).map(|k| format!("v{k:05}.mp4")).collect();
    let width = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    let mut pieces: Vec<PathBuf> = Vec::with_capacity(placed.len());
    let all: Vec<(&Placed, &String)> = placed.iter().zip(&names).collect();
    for chunk in all.chunks(width) {
        let mut made = Vec::with_capacity(chunk.len());
        for (pl, name) in chunk {
            let args = piece_args(files, pl, total, fades, &keep.file(name));
            made.push(keep.unit(name, args));
        }
        pieces.extend(futures::future::try_join_all(made).await?);
    }
    let args = sound_args(files, clips, total, fades, &keep.file("sound.m4a"));
    let sound = keep.unit("sound.m4a", args).await?;
    let list = scratch.join("pieces.txt");
    let body: String = pieces
        .iter()
        .map(|f| format!("file '{}'\n", p(f).replace('\'', "'\\''")))
        .collect();
    tokio::fs::write(&list, body).await?;
    run(
        "ffmpeg",
        &a([
            "-y",
            "-v",
            "error",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            &p(&list),
            "-i",
            &p(&sound),
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            &p(out),
        ]),
    )
    .await?;
    Ok(())
}

/// Delete the pieces a stitch kept, once its film is stored.
pub(crate) async fn clear(blobs: &Blobs, clips: &[ClipSpec], output_key: &str) {
    let (placed, _) = plan(clips);
    let digest = checkpoint::digest(&(clips, 1));
    let keep = Keep {
        blobs,
        scratch: Path::new(""),
        prefix: format!("{output_key}.parts/{digest}"),
        digest,
        durable: checkpoint::active(),
    };
    let names = (0..placed.len())
        .map(|k| format!("v{k:05}.mp4"))
        .chain(["sound.m4a".to_string()]);
    keep.clear(names).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(d: f64, tin: &str, tout: &str) -> ClipSpec {
        ClipSpec {
            video: BlobRef::new("c.mp4").unwrap(),
            duration: d,
            transition_in: tin.into(),
            transition_out: tout.into(),
        }
    }

    #[test]
    fn pieces_cover_every_frame_of_the_film_once() {
        // 3 s, dissolve, 4.02 s (not a whole number of frames), cut, 5 s, wipe, 3.3 s.
        let clips = vec![
            clip(3.0, "fade_in", "dissolve"),
            clip(4.02, "cut", "cut"),
            clip(5.0, "cut", "wipe"),
            clip(3.3, "cut", "fade_out"),
        ];
        let (placed, total) = plan(&clips);
        let want = stitched_length(&clips);
        assert_eq!(total, (want * 24.0).round() as u64);
        let mut next = 0;
        for pl in &placed {
            assert_eq!(pl.first, next, "{placed:?}");
            next += pl.frames;
        }
        assert_eq!(next, total);
        // Solo, dissolve, solo, solo, wipe, solo.
        let fades: Vec<_> = placed
            .iter()
            .filter_map(|pl| match pl.piece {
                Piece::Fade { kind, .. } => Some((kind, pl.frames)),
                _ => None,
            })
            .collect();
        assert_eq!(fades, vec![("dissolve", 12), ("wipeleft", 12)]);
        assert_eq!(placed.len(), 6);
        // The third clip starts where the second ended (a cut): at its own beginning.
        assert_eq!(placed[3].piece, Piece::Solo { clip: 2, at: 0.0 });
    }

    #[test]
    fn a_clip_taken_whole_by_its_crossfades_gives_no_empty_piece() {
        // A 1 s clip between two dissolves: each fade is 0.5 s, nothing of it stands alone.
        let clips = vec![
            clip(3.0, "cut", "dissolve"),
            clip(1.0, "cut", "dissolve"),
            clip(3.0, "cut", "cut"),
        ];
        let (placed, total) = plan(&clips);
        assert!(placed.iter().all(|pl| pl.frames > 0));
        assert_eq!(placed.iter().map(|pl| pl.frames).sum::<u64>(), total);
        assert_eq!(total, 6 * 24);
    }
}
