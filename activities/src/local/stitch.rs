//! Stitching a film in short pieces that each survive their process (decision 0027).
//!
//! One ffmpeg pass over a whole film takes longer the longer the film is (seconds for a few
//! minutes of picture), so a worker killed every few seconds could never finish it, and a
//! restarted attempt began again from nothing. Here the film is cut where the picture changes
//! hands: each clip's stretch between its joins, and each crossfade between two clips, is one
//! piece, one ffmpeg run of at most one clip's length making its picture (H.264) and its sound
//! (PCM, so the pieces join without a gap). The film is the pieces joined by stream copy, its
//! sound encoded once. A clip is checked (and normalised if it must be) when a piece first
//! needs it, so the first piece is made at once, however long the film.
//!
//! With a step checkpoint in scope (the film's `stitch` step) every piece is stored as a blob
//! and named in the checkpoint as soon as it is made, so an attempt after a crash makes only
//! the pieces still missing; when the film is stored the pieces are deleted. Pieces are made a
//! few at a time (one per core, at most four).
//!
//! Every boundary is rounded to a frame of the film, so the pieces add up to exactly
//! `round(length x 24)` frames whatever the clips' lengths, and each piece's sound to exactly
//! as many samples (2,000 a frame at 48 kHz).

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::sync::Mutex;

use super::tool::{FPS, a, is_normal, normalize, p, run};
use crate::blob::{BlobRef, Blobs};
use crate::checkpoint;
use crate::error::{ActivityError, Result};
use crate::model::ClipSpec;

/// Samples of sound per second in every piece.
const RATE: u64 = 48_000;

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

/// Where a clip sits in the stitched film.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Where it starts, seconds of film.
    pub start: f64,
    /// How long it overlaps the clip before it (its crossfade in), seconds; 0 on a cut.
    pub overlap_in: f64,
    /// How long it overlaps the clip after it, seconds; 0 on a cut.
    pub overlap_out: f64,
}

/// Where each clip sits in the film [`stitch`] makes of `clips` (what an editor's timeline
/// and the subtitles are timed from).
pub fn layout(clips: &[ClipSpec]) -> Vec<Placement> {
    let fades: Vec<f64> = clips
        .windows(2)
        .map(|w| crossfade(&w[0], &w[1]).map_or(0.0, |_| fade_len(&w[0], &w[1])))
        .collect();
    let (start, _) = starts(clips, &fades);
    (0..clips.len())
        .map(|i| Placement {
            start: start[i],
            overlap_in: i.checked_sub(1).map_or(0.0, |j| fades[j]),
            overlap_out: fades.get(i).copied().unwrap_or(0.0),
        })
        .collect()
}

pub(crate) fn fade_len(prev: &ClipSpec, next: &ClipSpec) -> f64 {
    CROSSFADE.min(prev.duration / 2.0).min(next.duration / 2.0)
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

/// The clips' files, each found (and normalised if it must be) when first needed.
struct Clips<'a> {
    clips: &'a [ClipSpec],
    files: Vec<Mutex<Option<PathBuf>>>,
}

impl<'a> Clips<'a> {
    fn new(clips: &'a [ClipSpec]) -> Self {
        Clips {
            clips,
            files: clips.iter().map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Clip `i`'s file in the studio's shape.
    async fn file(&self, i: usize, keep: &Keep<'_>) -> Result<PathBuf> {
        let mut slot = self.files[i].lock().await;
        if let Some(f) = &*slot {
            return Ok(f.clone());
        }
        let src = keep.blobs.local_path(&self.clips[i].video).await?;
        let f = if is_normal(&src).await? {
            src
        } else {
            let name = format!("n{i:05}.mp4");
            let out = keep.file(&name);
            keep.shared_unit(&[&name], &[&self.clips[i]], "normal", || async {
                normalize(&src, &out).await
            })
            .await?
            .remove(0)
        };
        *slot = Some(f.clone());
        Ok(f)
    }
}

/// The sound of `input`'s stream from `at` seconds, exactly `samples` long (silence after).
fn sound(input: usize, at: f64, samples: u64) -> String {
    format!(
        "[{input}:a]aresample={RATE},aformat=sample_fmts=fltp:channel_layouts=stereo,\
         atrim=start={at:.6},asetpts=PTS-STARTPTS,apad,atrim=end_sample={samples}"
    )
}

/// The film's fades from and to black on a piece's sound (as [`edges`] does on its picture).
fn sound_edges(first: u64, frames: u64, total: u64, fade_in: bool, fade_out: bool) -> String {
    edges(first, frames, total, fade_in, fade_out)
        .replace("setpts", "asetpts")
        .replace("fade=", "afade=")
}

/// The ffmpeg arguments that make one piece: its picture to `video`, its sound to `audio`.
fn piece_args(
    inputs: &[PathBuf],
    placed: &Placed,
    total: u64,
    fades: (bool, bool),
    (video, audio): (&Path, &Path),
) -> Vec<String> {
    let mut args = a(["-y", "-v", "error"]);
    for f in inputs {
        args.extend(a(["-i", &p(f)]));
    }
    // A trimmed stream runs on with its last frame, so a piece never lacks a frame to rounding.
    let tail = "setpts=PTS-STARTPTS,fps=24,tpad=stop_mode=clone:stop_duration=1";
    let n = placed.frames;
    let samples = n * RATE / u64::from(FPS);
    let (picture, sounds) = match &placed.piece {
        Piece::Solo { at, .. } => (
            format!("[0:v]trim=start={at:.6},{tail}"),
            sound(0, *at, samples),
        ),
        Piece::Fade {
            kind, at, next_at, ..
        } => {
            let d = n as f64 / f64::from(FPS);
            (
                format!(
                    "[0:v]trim=start={at:.6},{tail}[x];[1:v]trim=start={next_at:.6},{tail}[y];\
                     [x][y]xfade=transition={kind}:duration={d:.6}:offset=0"
                ),
                // The curve of `acrossfade`'s default: one fades out as the other fades in.
                format!(
                    "{},afade=t=out:st=0:d={d:.6}[p];{},afade=t=in:st=0:d={d:.6}[q];\
                     [p][q]amix=inputs=2:normalize=0:duration=longest",
                    sound(0, *at, samples),
                    sound(1, *next_at, samples)
                ),
            )
        }
    };
    let graph = format!(
        "{picture}{},format=yuv420p[v];{sounds}{}[a]",
        edges(placed.first, n, total, fades.0, fades.1),
        sound_edges(placed.first, n, total, fades.0, fades.1),
    );
    args.extend(a(["-filter_complex", &graph, "-map", "[v]", "-frames:v"]));
    args.push(n.to_string());
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
    args.push(p(video));
    args.extend(a(["-map", "[a]", "-c:a", "pcm_s16le"]));
    args.push(p(audio));
    args
}

/// Where this stitch keeps what it made: blobs under the film's key, named in the step's
/// checkpoint under the stitch's digest, so a different stitch never takes them. A piece made
/// only of takes' clips (whose keys are never written twice) is kept instead by what it is
/// made of, beside the film (`pieces/{digest}/`), where any later stitch of the project finds
/// it: a re-stitch makes only the pieces a changed clip is in (decision 0028).
struct Keep<'a> {
    blobs: &'a Blobs,
    scratch: &'a Path,
    prefix: String,
    shared: String,
    digest: String,
    durable: bool,
}

impl Keep<'_> {
    fn new<'b>(blobs: &'b Blobs, scratch: &'b Path, clips: &[ClipSpec], key: &str) -> Keep<'b> {
        let digest = checkpoint::digest(&(clips, 2));
        let dir = key.rsplit_once('/').map_or("", |(d, _)| d);
        Keep {
            blobs,
            scratch,
            prefix: format!("{key}.parts/{digest}"),
            shared: format!("{dir}/pieces"),
            digest,
            durable: checkpoint::active(),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// The files `names`, made of what `content` says (a digest): kept by it where every clip
    /// it is made of is a take's, else as [`Keep::unit`] keeps them.
    async fn shared_unit<F, Fut>(
        &self,
        names: &[&str],
        inputs: &[&ClipSpec],
        content: impl Serialize,
        make: F,
    ) -> Result<Vec<PathBuf>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        if !inputs.iter().all(|c| c.video.key().contains("/takes/")) {
            return self.unit(names, make).await;
        }
        let dir = format!(
            "{}/{}",
            self.shared,
            checkpoint::digest(&(inputs, content, 3))
        );
        let mut found = vec![];
        for name in names {
            if let Ok(r) = BlobRef::new(format!("{dir}/{name}"))
                && self.blobs.exists(&r).await.unwrap_or(false)
                && let Ok(path) = self.blobs.local_path(&r).await
            {
                found.push(path);
            }
        }
        if found.len() == names.len() {
            return Ok(found);
        }
        make().await?;
        let files: Vec<PathBuf> = names.iter().map(|n| self.file(n)).collect();
        for (name, file) in names.iter().zip(&files) {
            self.blobs.put_file(&format!("{dir}/{name}"), file).await?;
        }
        Ok(files)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    /// The files `names`: what an earlier attempt kept, or made now by `make` (which writes
    /// them to [`Keep::file`]) and kept.
    async fn unit<F, Fut>(&self, names: &[&str], make: F) -> Result<Vec<PathBuf>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let mark = format!("stitch:{}:{}", self.digest, names[0]);
        if let Some(keys) = checkpoint::recall::<Vec<String>>(&mark) {
            let mut found = vec![];
            for key in &keys {
                if let Ok(r) = BlobRef::new(key)
                    && let Ok(path) = self.blobs.local_path(&r).await
                {
                    found.push(path);
                }
            }
            if found.len() == names.len() {
                return Ok(found);
            }
            checkpoint::forget(&mark);
        }
        make().await?;
        let files: Vec<PathBuf> = names.iter().map(|n| self.file(n)).collect();
        if self.durable {
            let mut keys = vec![];
            for (name, file) in names.iter().zip(&files) {
                let key = self.key(name);
                self.blobs.put_file(&key, file).await?;
                keys.push(key);
            }
            checkpoint::keep("local", &mark, &keys).await?;
        }
        Ok(files)
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

/// The names of piece `k`'s picture and sound.
fn names(k: usize) -> [String; 2] {
    [format!("v{k:05}.mp4"), format!("a{k:05}.wav")]
}

/// Stitch `clips` into the blob `output_key`. Cuts alone are a stream copy of the clips; any
/// dissolve, fade or wipe makes the film in pieces, kept where a step checkpoint is in scope
/// (blobs under `{output_key}.parts/`, deleted once the film is stored).
pub(crate) async fn stitch(blobs: &Blobs, clips: &[ClipSpec], output_key: &str) -> Result<BlobRef> {
    if clips.is_empty() {
        return Err(ActivityError::bad_request(
            "local",
            "there are no clips to stitch",
        ));
    }
    let scratch = blobs.scratch().await?;
    let out = scratch.join("film.mp4");
    let film = match make(blobs, clips, &scratch, &out, output_key).await {
        Ok(()) => blobs.put_file(output_key, &out).await,
        Err(e) => Err(e),
    };
    if film.is_ok() {
        let (placed, _) = plan(clips);
        let kept = (0..placed.len())
            .flat_map(names)
            .chain((0..clips.len()).map(|i| format!("n{i:05}.mp4")));
        Keep::new(blobs, &scratch, clips, output_key)
            .clear(kept)
            .await;
    }
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    film
}

/// Make the film at `out`.
async fn make(
    blobs: &Blobs,
    clips: &[ClipSpec],
    scratch: &Path,
    out: &Path,
    output_key: &str,
) -> Result<()> {
    let keep = Keep::new(blobs, scratch, clips, output_key);
    let files = Clips::new(clips);
    let fades = (
        clips.first().is_some_and(|c| c.transition_in == "fade_in"),
        clips.last().is_some_and(|c| c.transition_out == "fade_out"),
    );
    let cuts_only = clips.windows(2).all(|w| crossfade(&w[0], &w[1]).is_none());
    if cuts_only && !fades.0 && !fades.1 {
        let mut all = vec![];
        for i in 0..clips.len() {
            all.push(files.file(i, &keep).await?);
        }
        return concat(scratch, &[("v", &all)], &[], out).await;
    }
    let (placed, total) = plan(clips);
    let width = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    let (mut videos, mut audios) = (vec![], vec![]);
    let all: Vec<(usize, &Placed)> = placed.iter().enumerate().collect();
    for chunk in all.chunks(width) {
        let mut made = Vec::with_capacity(chunk.len());
        for (k, pl) in chunk {
            made.push(piece(&keep, &files, pl, *k, total, fades));
        }
        for mut pair in futures::future::try_join_all(made).await? {
            audios.push(pair.pop().expect("two files"));
            videos.push(pair.pop().expect("two files"));
        }
    }
    concat(
        scratch,
        &[("v", &videos), ("a", &audios)],
        &["-c:v", "copy", "-c:a", "aac", "-b:a", "128k"],
        out,
    )
    .await
}

/// Piece `k`: its picture and sound files.
async fn piece(
    keep: &Keep<'_>,
    files: &Clips<'_>,
    pl: &Placed,
    k: usize,
    total: u64,
    fades: (bool, bool),
) -> Result<Vec<PathBuf>> {
    let [v, s] = names(k);
    let inputs: Vec<&ClipSpec> = match pl.piece {
        Piece::Solo { clip, .. } => vec![&files.clips[clip]],
        Piece::Fade { from, .. } => vec![&files.clips[from], &files.clips[from + 1]],
    };
    // What the piece is made of besides its clips: where in them, how long, how it is joined,
    // and the film's fades where they reach it.
    let content = (
        match &pl.piece {
            Piece::Solo { at, .. } => format!("solo {at:.6}"),
            Piece::Fade {
                kind, at, next_at, ..
            } => format!("{kind} {at:.6} {next_at:.6}"),
        },
        pl.frames,
        edges(pl.first, pl.frames, total, fades.0, fades.1),
    );
    keep.shared_unit(&[&v, &s], &inputs, content, || async {
        let inputs = match pl.piece {
            Piece::Solo { clip, .. } => vec![files.file(clip, keep).await?],
            Piece::Fade { from, .. } => vec![
                files.file(from, keep).await?,
                files.file(from + 1, keep).await?,
            ],
        };
        let args = piece_args(&inputs, pl, total, fades, (&keep.file(&v), &keep.file(&s)));
        run("ffmpeg", &args).await.map(drop)
    })
    .await
}

/// Join files with the concat demuxer, one input per list (its streams mapped in order); with
/// no codec arguments everything is copied.
async fn concat(
    scratch: &Path,
    lists: &[(&str, &[PathBuf])],
    codecs: &[&str],
    out: &Path,
) -> Result<()> {
    let mut args = a(["-y", "-v", "error"]);
    for (name, files) in lists {
        let list = scratch.join(format!("{name}.txt"));
        let body: String = files
            .iter()
            .map(|f| format!("file '{}'\n", p(f).replace('\'', "'\\''")))
            .collect();
        tokio::fs::write(&list, body).await?;
        args.extend(a(["-f", "concat", "-safe", "0", "-i", &p(&list)]));
    }
    for i in 0..lists.len() {
        args.extend(["-map".to_string(), i.to_string()]);
    }
    if codecs.is_empty() {
        args.extend(a(["-c", "copy"]));
    } else {
        args.extend(a(codecs.iter().copied()));
    }
    args.extend(a(["-movflags", "+faststart", &p(out)]));
    run("ffmpeg", &args).await.map(drop)
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
