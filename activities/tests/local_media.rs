//! The local studio's media work, with real ffmpeg, ffprobe and espeak-ng.
//!
//! Tolerances: durations within one frame (1/24 s) for single clips and 0.06 s for stitched films
//! (AAC frames pad the audio track by a few milliseconds); the extracted last frame matches the
//! clip's last decoded frame exactly up to 2 levels per channel (PNG is lossless; both come from
//! the same decoder and colour conversion).

use std::path::Path;

use slate_activities::local::media::{count_frames, probe_duration, run, stitched_length};
use slate_activities::local::render;
use slate_activities::local::{LocalMedia, LocalVideo, LocalVoice};
use slate_activities::model::*;
use slate_activities::{BlobRef, Blobs, Media, VideoGen, Voice};

fn blobs() -> Blobs {
    let dir = std::env::temp_dir().join(format!("slate-media-{}", uuid_like()));
    Blobs::local(dir, None).unwrap()
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn composition(caption: &str) -> Composition {
    Composition {
        location: Some("Harbor Market".into()),
        time_of_day: Some("evening".into()),
        lighting: Some("natural".into()),
        palette: vec!["#6b4f3a".into(), "#3a2f28".into()],
        characters: vec![FigureSpec {
            id: "mira".into(),
            name: "Mira".into(),
            x: 0.35,
            view: "front".into(),
            color: "#2a9d8f".into(),
            looks: None,
        }],
        props: vec![],
        caption: caption.into(),
        layers: vec!["location".into(), "characters".into()],
        ..Default::default()
    }
}

async fn still(blobs: &Blobs, key: &str, caption: &str) -> BlobRef {
    blobs
        .put(key, render::render(&composition(caption)).png().unwrap())
        .await
        .unwrap()
}

async fn clip(blobs: &Blobs, name: &str, seconds: f64, movement: &str) -> VideoOutput {
    let start = still(blobs, &format!("stills/{name}.png"), name).await;
    let video = LocalVideo::new(blobs.clone());
    let req = VideoRequest {
        project: "p".into(),
        scene_id: name.into(),
        prompt: name.into(),
        mode: VideoMode::ImageToVideo,
        start_image: Some(start),
        source_video: None,
        duration: seconds,
        camera_movement: movement.into(),
        callback_url: None,
        output_key: format!("clips/{name}.mp4"),
        idempotency_key: None,
    };
    let job = video.submit(&req).await.unwrap();
    match video.poll(&job, &req).await.unwrap().value {
        JobState::Completed { output } => output,
        other => panic!("local video should be complete at once, got {other:?}"),
    }
}

/// All decoded frames of a clip as RGB24 rows.
async fn frames(path: &Path) -> Vec<Vec<u8>> {
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    out.stdout
        .chunks((render::WIDTH * render::HEIGHT * 3) as usize)
        .map(|c| c.to_vec())
        .collect()
}

fn diff(a: &[u8], b: &[u8]) -> (u8, f64) {
    let max = a
        .iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0);
    let mean = a
        .iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y) as f64)
        .sum::<f64>()
        / a.len() as f64;
    (max, mean)
}

#[tokio::test]
async fn a_still_becomes_a_clip_of_the_requested_length_and_movement() {
    let blobs = blobs();
    for (movement, seconds) in [
        ("static", 3.0),
        ("zoom", 4.5),
        ("pan", 3.5),
        ("tilt", 3.0),
        ("dolly", 5.0),
        ("tracking", 7.0),
    ] {
        let out = clip(&blobs, movement, seconds, movement).await;
        let path = blobs.local_path(&out.video).await.unwrap();
        let d = probe_duration(&path).await.unwrap();
        assert!(
            (d - seconds).abs() <= 1.0 / 24.0 + 1e-6,
            "{movement}: {d} s, wanted {seconds} s"
        );
        assert_eq!(out.duration, d);
        assert_eq!(
            count_frames(&path).await.unwrap(),
            (seconds * 24.0) as u64,
            "{movement}"
        );
        let f = frames(&path).await;
        let (_, mean) = diff(&f[0], f.last().unwrap());
        if movement == "static" {
            assert!(
                mean < 0.5,
                "a static shot does not move (mean change {mean})"
            );
        } else {
            assert!(mean > 3.0, "a {movement} shot moves (mean change {mean})");
        }
    }
}

#[tokio::test]
async fn the_last_frame_is_the_clips_final_frame() {
    let blobs = blobs();
    let out = clip(&blobs, "lf", 3.5, "zoom").await;
    let media = LocalMedia::new(blobs.clone());
    let png = media.last_frame(&out.video, "frames/lf.png").await.unwrap();
    let img = image::load_from_memory(&blobs.get(&png).await.unwrap())
        .unwrap()
        .to_rgb8();
    assert_eq!(img.dimensions(), (render::WIDTH, render::HEIGHT));
    let all = frames(&blobs.local_path(&out.video).await.unwrap()).await;
    let (max, _) = diff(img.as_raw(), all.last().unwrap());
    assert!(max <= 2, "last frame differs by up to {max} levels");
    // And it is not just any frame: the first one differs (the camera zoomed).
    let (_, mean_first) = diff(img.as_raw(), &all[0]);
    assert!(mean_first > 3.0);
}

#[tokio::test]
async fn trimming_is_frame_exact() {
    let blobs = blobs();
    let out = clip(&blobs, "long", 5.0, "pan").await;
    let media = LocalMedia::new(blobs.clone());
    let t = media
        .trim(&out.video, 3.5, "clips/trimmed.mp4")
        .await
        .unwrap();
    let path = blobs.local_path(&t).await.unwrap();
    assert!((probe_duration(&path).await.unwrap() - 3.5).abs() <= 1.0 / 24.0 + 1e-6);
    assert_eq!(count_frames(&path).await.unwrap(), 84);
    assert!((media.length(&t).await.unwrap() - 3.5).abs() <= 1.0 / 24.0 + 1e-6);
}

#[tokio::test]
async fn stitched_films_last_the_sum_of_their_clips_less_crossfades() {
    let blobs = blobs();
    let media = LocalMedia::new(blobs.clone());
    let a = clip(&blobs, "s1", 3.0, "static").await;
    let b = clip(&blobs, "s2", 4.0, "zoom").await;
    let c = clip(&blobs, "s3", 5.0, "pan").await;
    let spec = |v: &VideoOutput, tin: &str, tout: &str| ClipSpec {
        video: v.video.clone(),
        duration: v.duration,
        transition_in: tin.into(),
        transition_out: tout.into(),
    };

    // Cuts only: a stream copy, exactly the sum.
    let cuts = vec![
        spec(&a, "cut", "cut"),
        spec(&b, "cut", "cut"),
        spec(&c, "cut", "cut"),
    ];
    let film = media.stitch(&cuts, "films/cuts.mp4").await.unwrap();
    let d = probe_duration(&blobs.local_path(&film).await.unwrap())
        .await
        .unwrap();
    assert!((d - 12.0).abs() <= 0.06, "cuts: {d}");

    // A fade in, a dissolve, a cut and a fade out: 12 s less one 0.5 s crossfade.
    let mixed = vec![
        spec(&a, "fade_in", "cut"),
        spec(&b, "dissolve", "cut"),
        spec(&c, "cut", "fade_out"),
    ];
    assert_eq!(stitched_length(&mixed), 11.5);
    let film = media.stitch(&mixed, "films/mixed.mp4").await.unwrap();
    let path = blobs.local_path(&film).await.unwrap();
    let d = probe_duration(&path).await.unwrap();
    assert!((d - 11.5).abs() <= 0.06, "mixed: {d}");
    // It is playable: every frame decodes, and it fades from black.
    let f = frames(&path).await;
    assert_eq!(f.len() as f64, (11.5f64 * 24.0).round());
    let brightness = |fr: &Vec<u8>| fr.iter().map(|x| *x as f64).sum::<f64>() / fr.len() as f64;
    assert!(brightness(&f[0]) < 5.0, "starts black");
    assert!(brightness(&f[24]) > 20.0, "then the picture");
    // The fade out reaches black at the film's end: its last frame is 1/12 of the way back.
    let mid = brightness(&f[f.len() / 2]);
    assert!(
        brightness(f.last().unwrap()) < mid * 0.15,
        "fades out to black"
    );
}

#[tokio::test]
async fn a_long_film_is_stitched_in_pieces_with_every_transition() {
    // Eleven clips with fades, dissolves, wipes and cuts: the film is made piece by piece
    // (each clip between its joins, each crossfade) and joined by stream copy.
    let blobs = blobs();
    let media = LocalMedia::new(blobs.clone());
    let made = [
        clip(&blobs, "l1", 3.0, "static").await,
        clip(&blobs, "l2", 4.0, "zoom").await,
        clip(&blobs, "l3", 3.5, "pan").await,
    ];
    let n = 11;
    let specs: Vec<ClipSpec> = (0..n)
        .map(|k| {
            let v = &made[k % 3];
            ClipSpec {
                video: v.video.clone(),
                duration: v.duration,
                transition_in: match k {
                    0 => "fade_in",
                    _ if k % 8 == 0 => "dissolve",
                    _ if k % 3 == 1 => "wipe",
                    _ => "cut",
                }
                .into(),
                transition_out: if k == n - 1 { "fade_out" } else { "cut" }.into(),
            }
        })
        .collect();
    let want = stitched_length(&specs);
    let sum: f64 = specs.iter().map(|c| c.duration).sum();
    assert!(want < sum - 2.0, "the film has crossfades");
    let film = media.stitch(&specs, "films/long.mp4").await.unwrap();
    let path = blobs.local_path(&film).await.unwrap();
    let d = probe_duration(&path).await.unwrap();
    assert!((d - want).abs() <= 0.1, "{d} s, want {want} s");
    let f = frames(&path).await;
    assert_eq!(f.len() as f64, (want * 24.0).round(), "every frame decodes");
    let brightness = |fr: &Vec<u8>| fr.iter().map(|x| *x as f64).sum::<f64>() / fr.len() as f64;
    assert!(
        brightness(&f[0]) < 5.0,
        "the film (not each piece) fades in"
    );
    assert!(brightness(&f[f.len() / 2]) > 20.0);
}

/// A clip in the studio's shape with a steady tone for its sound.
async fn toned(blobs: &Blobs, name: &str, seconds: f64) -> ClipSpec {
    let dir = std::env::temp_dir().join(format!("slate-tone-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.mp4"));
    let args: Vec<String> = [
        "-y",
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=s=640x360:r=24:d={seconds}"),
        "-f",
        "lavfi",
        "-i",
        &format!("sine=f=440:r=48000:d={seconds}"),
        "-ac",
        "2",
        "-pix_fmt",
        "yuv420p",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-shortest",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([file.display().to_string()])
    .collect();
    run("ffmpeg", &args).await.unwrap();
    let r = blobs
        .put_file(&format!("clips/{name}.mp4"), &file)
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    ClipSpec {
        video: r,
        duration: seconds,
        transition_in: "cut".into(),
        transition_out: "cut".into(),
    }
}

#[tokio::test]
async fn the_sound_runs_unbroken_across_every_join() {
    // A steady tone in every clip: where pieces meet (cuts, a dissolve, a wipe) the film's
    // sound must not drop out, not even for an AAC frame, and it lasts as long as the picture.
    let blobs = blobs();
    let media = LocalMedia::new(blobs.clone());
    let mut clips = vec![
        toned(&blobs, "t1", 3.0).await,
        toned(&blobs, "t2", 4.0).await,
        toned(&blobs, "t3", 3.5).await,
        toned(&blobs, "t4", 3.0).await,
    ];
    clips[1].transition_in = "dissolve".into();
    clips[2].transition_in = "wipe".into();
    let film = media.stitch(&clips, "films/toned.mp4").await.unwrap();
    let path = blobs.local_path(&film).await.unwrap();
    let want = stitched_length(&clips);
    let streams = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,duration",
            "-of",
            "csv=p=0",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([path.display().to_string()])
        .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    for line in streams.lines() {
        let (kind, d) = line.split_once(',').unwrap();
        let d: f64 = d.parse().unwrap();
        assert!(
            (d - want).abs() <= 1.0 / 24.0 + 0.03,
            "{kind} lasts {d} s, want {want} s"
        );
    }
    let silence = tokio::process::Command::new("ffmpeg")
        .args(["-v", "info", "-i"])
        .arg(&path)
        .args(["-af", "silencedetect=n=-40dB:d=0.005", "-f", "null", "-"])
        .output()
        .await
        .unwrap();
    let log = String::from_utf8_lossy(&silence.stderr);
    assert!(
        !log.contains("silence_start"),
        "the sound drops out: {}",
        log.lines()
            .filter(|l| l.contains("silence"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
}

/// A step checkpoint kept in memory, as the engine keeps one in its journal: what `save`
/// merges, `resumed` gives the next attempt.
#[derive(Default)]
struct Kept {
    data: std::sync::Mutex<serde_json::Map<String, serde_json::Value>>,
    resumed: Option<serde_json::Value>,
    saves: std::sync::atomic::AtomicUsize,
    notify: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl slate_activities::checkpoint::Checkpoint for Kept {
    fn resumed(&self) -> Option<serde_json::Value> {
        self.resumed.clone()
    }
    async fn save(&self, data: serde_json::Value) -> Result<(), String> {
        if let serde_json::Value::Object(m) = data {
            self.data.lock().unwrap().extend(m);
        }
        self.saves.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_waiters();
        Ok(())
    }
}

#[tokio::test]
async fn a_stitch_cut_short_goes_on_from_the_pieces_it_kept() {
    let blobs = blobs();
    let media = LocalMedia::new(blobs.clone());
    let made = [
        clip(&blobs, "r1", 3.0, "static").await,
        clip(&blobs, "r2", 4.0, "zoom").await,
    ];
    let specs: Vec<ClipSpec> = (0..6)
        .map(|k| ClipSpec {
            video: made[k % 2].video.clone(),
            duration: made[k % 2].duration,
            transition_in: if k == 0 { "fade_in" } else { "dissolve" }.into(),
            transition_out: "cut".into(),
        })
        .collect();
    let pieces = 6 + 5; // every clip, every dissolve (each its picture and sound)

    // Undisturbed, for comparison (no checkpoint: nothing is kept).
    let calm = media.stitch(&specs, "films/calm.mp4").await.unwrap();
    let calm = frames(&blobs.local_path(&calm).await.unwrap()).await;

    // The first attempt is cut short (its future dropped, as a killed process stops) once it
    // has kept three pieces.
    let first = std::sync::Arc::new(Kept::default());
    let scoped = slate_activities::checkpoint::scope(
        first.clone(),
        media.stitch(&specs, "films/resumed.mp4"),
    );
    let three = async {
        while first.saves.load(std::sync::atomic::Ordering::SeqCst) < 3 {
            let wait = first.notify.notified();
            if first.saves.load(std::sync::atomic::Ordering::SeqCst) >= 3 {
                break;
            }
            wait.await;
        }
    };
    tokio::select! {
        r = scoped => panic!("the stitch finished before it was cut short: {r:?}"),
        () = three => {}
    }
    let kept = first.data.lock().unwrap().clone();
    assert!(kept.len() >= 3 && kept.len() < pieces, "{kept:?}");

    // The next attempt makes only what is missing, and the film is the undisturbed one.
    let second = std::sync::Arc::new(Kept {
        resumed: Some(serde_json::Value::Object(kept.clone())),
        ..Default::default()
    });
    let film = slate_activities::checkpoint::scope(
        second.clone(),
        media.stitch(&specs, "films/resumed.mp4"),
    )
    .await
    .unwrap();
    let made_again = second.saves.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(made_again, pieces - kept.len(), "pieces made twice");
    let path = blobs.local_path(&film).await.unwrap();
    let f = frames(&path).await;
    assert_eq!(f.len(), calm.len());
    let worst = f
        .iter()
        .zip(&calm)
        .map(|(x, y)| diff(x, y).1)
        .fold(0.0f64, f64::max);
    assert!(
        worst < 1.0,
        "frames differ from the undisturbed film by {worst} levels on average"
    );
    // The pieces kept as blobs are gone once the film is stored.
    for keys in kept.values() {
        for key in keys.as_array().unwrap() {
            let r = BlobRef::new(key.as_str().unwrap()).unwrap();
            assert!(!blobs.exists(&r).await.unwrap(), "{r} left behind");
        }
    }
}

#[tokio::test]
async fn voices_are_spoken_and_mixed_into_the_clip() {
    let blobs = blobs();
    let voice = LocalVoice::new(blobs.clone());
    let line = voice
        .synthesize(&VoiceRequest {
            project: "p".into(),
            text: "The lantern is warm.".into(),
            casting: VoiceCasting {
                character_id: "mira".into(),
                voice: "en-us+f3".into(),
                pitch: 60,
                speed: 160,
                description: String::new(),
            },
            output_key: "voices/l1.wav".into(),
        })
        .await
        .unwrap()
        .value;
    let wav = blobs.local_path(&line).await.unwrap();
    let spoken = probe_duration(&wav).await.unwrap();
    assert!(spoken > 0.5 && spoken < 4.0, "{spoken}");
    let out = clip(&blobs, "talk", 4.0, "static").await;
    let media = LocalMedia::new(blobs.clone());
    let voiced = media
        .mix_voices(&out.video, &[(line, 0.5)], "clips/talk-voiced.mp4")
        .await
        .unwrap();
    let path = blobs.local_path(&voiced).await.unwrap();
    assert!((probe_duration(&path).await.unwrap() - 4.0).abs() <= 1.0 / 24.0 + 1e-6);
    let vol = |p: &Path| {
        let p = p.to_path_buf();
        async move {
            let out = tokio::process::Command::new("ffmpeg")
                .args(["-v", "info", "-i"])
                .arg(&p)
                .args(["-af", "volumedetect", "-vn", "-f", "null", "-"])
                .output()
                .await
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            err.lines()
                .find_map(|l| l.split("max_volume:").nth(1))
                .map(|v| v.trim().trim_end_matches(" dB").parse::<f64>().unwrap())
                .unwrap_or(-91.0)
        }
    };
    let silent = vol(&blobs.local_path(&out.video).await.unwrap()).await;
    let loud = vol(&path).await;
    assert!(silent < -80.0, "the clip alone is silent ({silent} dB)");
    assert!(loud > -30.0, "the voiced clip speaks ({loud} dB)");
}

#[tokio::test]
async fn a_missing_tool_or_broken_input_is_a_clear_final_error() {
    let e = run(
        "ffmpeg",
        &[
            "-v".into(),
            "error".into(),
            "-i".into(),
            "/nonexistent.mp4".into(),
            "-f".into(),
            "null".into(),
            "-".into(),
        ],
    )
    .await
    .unwrap_err();
    assert!(!e.retryable);
    assert!(e.message.contains("ffmpeg failed"), "{}", e.message);
    let e = run("definitely-not-a-tool", &[]).await.unwrap_err();
    assert!(e.message.contains("not installed"), "{}", e.message);
}

/// Make a file from an ffmpeg test source.
async fn lavfi(source: &str, extra: &[&str], out: &Path) {
    let mut args: Vec<String> = ["-y", "-v", "error", "-f", "lavfi", "-i", source]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    args.push(out.display().to_string());
    run("ffmpeg", &args).await.unwrap();
}

#[tokio::test]
async fn voices_mix_into_a_provider_clip_without_an_audio_track() {
    // Providers often return silent clips with no audio stream at all.
    let blobs = blobs();
    let src = std::env::temp_dir().join(format!("slate-silent-{}.mp4", uuid_like()));
    lavfi(
        "testsrc2=size=320x180:rate=24:duration=3",
        &["-pix_fmt", "yuv420p", "-an"],
        &src,
    )
    .await;
    let video = blobs
        .put("clips/silent.mp4", std::fs::read(&src).unwrap())
        .await
        .unwrap();
    let tone = std::env::temp_dir().join(format!("slate-tone-{}.wav", uuid_like()));
    lavfi("sine=frequency=440:duration=1", &[], &tone).await;
    let line = blobs
        .put("voices/tone.wav", std::fs::read(&tone).unwrap())
        .await
        .unwrap();
    let voiced = LocalMedia::new(blobs.clone())
        .mix_voices(&video, &[(line, 1.0)], "clips/silent-voiced.mp4")
        .await
        .expect("a clip without audio takes voices");
    let path = blobs.local_path(&voiced).await.unwrap();
    assert!((probe_duration(&path).await.unwrap() - 3.0).abs() <= 1.0 / 24.0 + 1e-6);
    let streams = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "a",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([path.display().to_string()])
        .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    assert_eq!(streams.trim(), "aac");
    let _ = std::fs::remove_file(src);
    let _ = std::fs::remove_file(tone);
}

/// The MP4 reader that spares a process per question gives what ffprobe gives, on the kinds of
/// file the studio meets: a provider's silent clip, one with sound, the studio's own clips,
/// trimmed ones, voiced ones, a QuickTime file and a file written without `faststart` (its
/// index at the end); and it leaves what it does not know (a WAV, a WebM) to ffprobe.
#[tokio::test]
async fn the_mp4_reader_agrees_with_ffprobe() {
    use slate_activities::local::media::ffprobe_duration;
    use slate_activities::local::mp4;
    let dir = std::env::temp_dir().join(format!("slate-mp4-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let silent = dir.join("silent.mp4");
    lavfi(
        "testsrc2=size=320x180:rate=24:duration=4.3",
        &["-pix_fmt", "yuv420p", "-an"],
        &silent,
    )
    .await;
    let sound = dir.join("sound.mp4");
    lavfi(
        "testsrc2=size=320x180:rate=30:duration=2.5",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=220:duration=3.1",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
        &sound,
    )
    .await;
    let mov = dir.join("clip.mov");
    lavfi(
        "testsrc2=size=320x180:rate=25:duration=1.7",
        &["-pix_fmt", "yuv420p"],
        &mov,
    )
    .await;
    let streamed = dir.join("streamed.mp4");
    lavfi(
        "testsrc2=size=320x180:rate=24:duration=3",
        &[
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=44100:cl=mono",
            "-t",
            "3",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
        &streamed,
    )
    .await;
    let blobs = blobs();
    let media = LocalMedia::new(blobs.clone());
    let own = clip(&blobs, "own", 4.0, "zoom").await;
    let trimmed = media
        .trim(&own.video, 2.75, "clips/trimmed.mp4")
        .await
        .unwrap();
    let provider = blobs
        .put("clips/silent.mp4", std::fs::read(&silent).unwrap())
        .await
        .unwrap();
    let provider_trimmed = media
        .trim(&provider, 3.5, "clips/silent-trimmed.mp4")
        .await
        .unwrap();
    let tone = dir.join("tone.wav");
    lavfi("sine=frequency=440:duration=1", &[], &tone).await;
    let line = blobs
        .put("voices/tone.wav", std::fs::read(&tone).unwrap())
        .await
        .unwrap();
    let voiced = media
        .mix_voices(&provider_trimmed, &[(line, 0.5)], "clips/voiced.mp4")
        .await
        .unwrap();
    let mut files = vec![
        (silent.clone(), false),
        (sound, true),
        (mov, false),
        (streamed, true),
    ];
    for (b, audio) in [
        (&own.video, true),
        (&trimmed, true),
        (&provider_trimmed, false),
        (&voiced, true),
    ] {
        files.push((blobs.local_path(b).await.unwrap(), audio));
    }
    for (f, audio) in &files {
        let info = mp4::read(f).unwrap_or_else(|| panic!("{} should be read", f.display()));
        let probed = ffprobe_duration(f).await.unwrap();
        assert!(
            (info.length() - probed).abs() < 0.0015,
            "{}: the reader says {} s, ffprobe {probed} s",
            f.display(),
            info.length()
        );
        let format = run(
            "ffprobe",
            &[
                "-v".to_string(),
                "error".into(),
                "-show_entries".into(),
                "format=duration".into(),
                "-of".into(),
                "csv=p=0".into(),
                f.display().to_string(),
            ],
        )
        .await
        .unwrap();
        let format: f64 = format.trim().parse().unwrap();
        assert!(
            (info.duration - format).abs() < 0.0015,
            "{}: the reader says the movie lasts {} s, ffprobe {format} s",
            f.display(),
            info.duration
        );
        assert_eq!(info.has_audio(), *audio, "{}", f.display());
        let frames = count_frames(f).await.unwrap();
        assert_eq!(info.video().unwrap().samples, frames, "{}", f.display());
    }
    for other in [&tone] {
        assert_eq!(mp4::read(other), None);
        assert!(probe_duration(other).await.unwrap() > 0.9);
    }
    let webm = dir.join("clip.webm");
    lavfi(
        "testsrc2=size=160x90:rate=24:duration=1",
        &["-c:v", "libvpx", "-b:v", "200k"],
        &webm,
    )
    .await;
    assert_eq!(mp4::read(&webm), None);
    assert!((probe_duration(&webm).await.unwrap() - 1.0).abs() < 0.05);
    let _ = std::fs::remove_dir_all(&dir);
}
