//! The film's sound, synthesized offline (issue 27): music cues ([`music`]), ambience beds and
//! effects ([`foley`]), and the envelope that ducks the music under the lines ([`duck`]).
//!
//! Pure DSP with `fundsp`, no I/O and no samples: the same cues give the same samples on every
//! machine. It is a crate of its own so that it is built optimized even in tests (a sample
//! loop over generic DSP code renders slower than real time unoptimized, and a checkpointed
//! step that slow would starve under repeated kills); the mix itself (ffmpeg) is in the
//! activities crate.
//!
//! Everything renders by window: a stretch of a film's sound can be rendered on its own and
//! equals that stretch of the whole render (to within a reverb's last traces), so a workflow
//! renders a long film's stems in short checkpointed pieces.

pub mod foley;
pub mod music;

pub use fundsp::prelude64::Wave;

/// Lower `wave`, whose first sample is at `at` seconds, by `depth_db` during every span of
/// `spans` (seconds), ramping over `ramp` seconds before each span starts and after it ends:
/// the music dips under speech and comes back between lines. A depth of 120 dB or more is
/// silence (music turned off for a stretch).
pub fn duck(wave: &mut Wave, at: f64, spans: &[(f64, f64)], depth_db: f64, ramp: f64) {
    let rate = wave.sample_rate();
    let floor = if depth_db.abs() >= 120.0 {
        0.0
    } else {
        10f64.powf(-depth_db.abs() / 20.0)
    };
    let n = wave.len();
    let ramp = ramp.max(1.0 / rate);
    let end = at + n as f64 / rate;
    // Only the spans that reach this window matter (a long film has many lines).
    let near: Vec<(f64, f64)> = spans
        .iter()
        .copied()
        .filter(|&(s, e)| e + ramp >= at && s - ramp <= end)
        .collect();
    if near.is_empty() {
        return;
    }
    for i in 0..n {
        let t = at + i as f64 / rate;
        // How far into the nearest span's dip `t` is: 1 inside, 0 beyond the ramp.
        let depth = near
            .iter()
            .map(|&(s, e)| {
                if t >= s && t <= e {
                    1.0
                } else if t < s {
                    (1.0 - (s - t) / ramp).max(0.0)
                } else {
                    (1.0 - (t - e) / ramp).max(0.0)
                }
            })
            .fold(0.0, f64::max);
        if depth > 0.0 {
            let gain = (1.0 - depth * (1.0 - floor)) as f32;
            for ch in 0..wave.channels() {
                let v = wave.at(ch, i) * gain;
                wave.set(ch, i, v);
            }
        }
    }
}
