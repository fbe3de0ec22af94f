//! The film's sound (issue 27), with real ffmpeg: music ducked under the lines by the envelope
//! from their timings, and the mix brought to -14 LUFS integrated with a true peak at most
//! -1 dBTP, as ffmpeg's `ebur128` measures it, the picture copied untouched.

use std::path::{Path, PathBuf};

use slate_activities::local::media::{count_frames, run};
use slate_activities::local::mixdown::{Loudness, duck, measured, mix};
use slate_activities::local::music::{MusicCue, RATE, Sound, render, save};

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "slate-sound-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rms_db(w: &Sound, spans: &[(f64, f64)]) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for &(a, b) in spans {
        for i in (a * RATE) as usize..((b * RATE) as usize).min(w.len()) {
            sum += f64::from(w.at(0, i)).powi(2);
            n += 1;
        }
    }
    10.0 * (sum / n.max(1) as f64).log10()
}

/// A ten-second clip whose sound is two "lines" (a voice-like tone) at known times.
async fn clip_with_lines(d: &Path) -> PathBuf {
    let out = d.join("clip.mp4");
    let args: Vec<String> = [
        "-y",
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x180:r=24:d=10",
        "-f",
        "lavfi",
        "-i",
        "sine=f=190:d=10,volume='0.5*(between(t,1,2.5)+between(t,5,7))':eval=frame",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string()])
    .collect();
    run("ffmpeg", &args).await.unwrap();
    out
}

#[tokio::test]
async fn music_ducks_under_the_lines_and_the_mix_meets_the_loudness_target() {
    let d = dir("mix");
    let lines = [(1.0, 2.5), (5.0, 7.0)];
    let mut music = render(
        &[MusicCue {
            start: 0.0,
            end: 10.0,
            mood: "hopeful".into(),
            tempo_bpm: 100.0,
            key: "G major".into(),
            instruments: vec![],
        }],
        10.0,
    );
    let before_in = rms_db(&music, &lines);
    duck(&mut music, 0.0, &lines, 12.0, 0.3);
    // Outside the lines and their ramps, and during them.
    let clear = [(0.0, 0.6), (2.9, 4.6), (7.4, 9.5)];
    let (under, over) = (rms_db(&music, &lines), rms_db(&music, &clear));
    assert!(
        (before_in - under - 12.0).abs() < 0.1,
        "ducked by 12 dB: {before_in} -> {under}"
    );
    assert!(
        over - under >= 8.0,
        "music {:.1} dB lower under the lines",
        over - under
    );
    let stem = d.join("music.wav");
    save(&music, &stem).unwrap();

    let clip = clip_with_lines(&d).await;
    let out = d.join("mixed.mp4");
    mix(&clip, &[(&stem, -6.0)], Loudness::default(), &d, &out)
        .await
        .unwrap();
    let got = measured(&out).await.unwrap();
    println!(
        "music {:.1} dB lower under the lines; mix {:.1} LUFS, true peak {:.1} dBTP",
        over - under,
        got.integrated_lufs,
        got.true_peak_dbtp
    );
    assert!(
        (got.integrated_lufs + 14.0).abs() <= 1.0,
        "integrated {} LUFS",
        got.integrated_lufs
    );
    assert!(
        got.true_peak_dbtp <= -1.0,
        "true peak {} dBTP",
        got.true_peak_dbtp
    );
    assert_eq!(
        count_frames(&out).await.unwrap(),
        count_frames(&clip).await.unwrap(),
        "picture copied"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A film nobody speaks in has no sound track: its mix is the stems alone, brought to the
/// target all the same; with no stems either, its sound is silence (never an error).
#[tokio::test]
async fn a_film_without_a_sound_track_is_mixed_from_its_stems() {
    let d = dir("silent");
    let clip = d.join("silent.mp4");
    let args: Vec<String> = [
        "-y",
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x180:r=24:d=6",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([clip.display().to_string()])
    .collect();
    run("ffmpeg", &args).await.unwrap();
    let music = render(
        &[MusicCue {
            start: 0.0,
            end: 6.0,
            mood: "calm".into(),
            tempo_bpm: 90.0,
            key: "C major".into(),
            instruments: vec![],
        }],
        6.0,
    );
    let stem = d.join("music.wav");
    save(&music, &stem).unwrap();
    let out = d.join("mixed.mp4");
    mix(&clip, &[(&stem, -6.0)], Loudness::default(), &d, &out)
        .await
        .unwrap();
    let l = measured(&out).await.unwrap();
    assert!((l.integrated_lufs + 14.0).abs() <= 1.0, "{l:?}");
    assert!(l.true_peak_dbtp <= -1.0, "{l:?}");
    let quiet = d.join("quiet.mp4");
    mix(&clip, &[], Loudness::default(), &d, &quiet)
        .await
        .unwrap();
    assert_eq!(
        count_frames(&quiet).await.unwrap(),
        count_frames(&clip).await.unwrap()
    );
    let _ = std::fs::remove_dir_all(&d);
}
