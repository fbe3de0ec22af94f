//! The local studio's music (issue 27): film cues synthesized offline with `fundsp`, no samples
//! and no model weights, the same every time for the same cues.
//!
//! A cue is a stretch of the film with a mood, a tempo, a key and an instrumentation. Its music
//! is a chord progression chosen by the mood (minor and slow for grief or dread, major for
//! warmth or joy), one chord a bar, voiced as an arrangement that the mood and instrumentation
//! pick from: a string pad (detuned saws through a low-pass filter), a bass on the roots, a
//! plucked arpeggio in eighths, and a melody that walks the scale and lands on chord tones,
//! all through a stereo room reverb. A cue plays through every cut inside it (it is rendered
//! as one piece of music over its whole span, never restarted at a scene) and crossfades into
//! the next cue over [`CUE_FADE`] seconds.

use fundsp::audiounit::AudioUnit;
/// A rendered sound: channels of samples at a rate (what [`render`] gives).
pub use fundsp::prelude64::Wave as Sound;
use fundsp::prelude64::{
    Fade, ReplayMode, Sequencer, U2, Wave, lowpass_hz, multipass, pan, pluck, reverb_stereo,
    saw_hz, sine_hz, triangle_hz, zero,
};
use serde::{Deserialize, Serialize};

/// Samples per second of the music.
pub const RATE: f64 = 48_000.0;

/// Seconds over which one cue hands over to the next (and fades in and out at the film's ends).
pub const CUE_FADE: f64 = 1.5;

/// A music cue: where it plays in the film and how it sounds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct MusicCue {
    /// Seconds of film it starts at.
    pub start: f64,
    /// Seconds of film it ends at.
    pub end: f64,
    /// Its mood, in words ("tense", "hopeful", "melancholy", ...).
    pub mood: String,
    /// Beats per minute.
    pub tempo_bpm: f64,
    /// Its key (`"D minor"`, `"E major"`, `"F# minor"`).
    pub key: String,
    /// What plays (`strings`, `bass`, `plucks`, `melody`); empty: what the mood asks for.
    #[serde(default)]
    pub instruments: Vec<String>,
}

/// How a mood is played.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Style {
    minor: bool,
    /// Scale degrees (0-based) of its four bars.
    progression: [usize; 4],
    arpeggio: bool,
    melody: bool,
    /// Low-pass cutoff of the pad, Hz: darker moods are duller.
    brightness: f32,
}

/// The style of a mood: the words it is described with decide.
fn style(mood: &str) -> Style {
    let m = mood.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if has(&[
        "tense", "dread", "ominous", "suspense", "danger", "fear", "dark",
    ]) {
        // i - VI - iv - V: unresolved, pulsing.
        Style {
            minor: true,
            progression: [0, 5, 3, 4],
            arpeggio: true,
            melody: false,
            brightness: 900.0,
        }
    } else if has(&[
        "sad", "melanch", "grief", "loss", "lonely", "somber", "wistful",
    ]) {
        // i - VI - III - VII.
        Style {
            minor: true,
            progression: [0, 5, 2, 6],
            arpeggio: false,
            melody: true,
            brightness: 1400.0,
        }
    } else if has(&[
        "joy", "triumph", "playful", "bright", "happy", "celebrat", "hope", "warm",
    ]) {
        // I - V - vi - IV.
        Style {
            minor: false,
            progression: [0, 4, 5, 3],
            arpeggio: true,
            melody: true,
            brightness: 3200.0,
        }
    } else {
        // Calm, quiet, reflective: I - IV - vi - V, sparse.
        Style {
            minor: false,
            progression: [0, 3, 5, 4],
            arpeggio: false,
            melody: true,
            brightness: 2000.0,
        }
    }
}

/// The way a mood is played, as one word (`tense`, `sad`, `joyful` or `calm`): scenes whose
/// moods play the same way can share a cue.
pub fn mood_class(mood: &str) -> &'static str {
    let st = style(mood);
    match (st.minor, st.arpeggio) {
        (true, true) => "tense",
        (true, false) => "sad",
        (false, true) => "joyful",
        (false, false) => "calm",
    }
}

const MAJOR: [i32; 7] = [0, 2, 4, 5, 7, 9, 11];
const MINOR: [i32; 7] = [0, 2, 3, 5, 7, 8, 10];

/// The key's tonic as a pitch class (C = 0) and whether it is minor; `None` for a key not
/// written as a note and a mode.
pub fn parse_key(key: &str) -> Option<(i32, bool)> {
    let mut words = key.split_whitespace();
    let note = words.next()?;
    let mut chars = note.chars();
    let base: i32 = match chars.next()?.to_ascii_uppercase() {
        'C' => 0,
        'D' => 2,
        'E' => 4,
        'F' => 5,
        'G' => 7,
        'A' => 9,
        'B' => 11,
        _ => return None,
    };
    let shift: i32 = match chars.next() {
        None => 0,
        Some('#') | Some('♯') => 1,
        Some('b') | Some('♭') => -1,
        Some(_) => return None,
    };
    let minor = match words.next().map(str::to_lowercase).as_deref() {
        None | Some("major") => false,
        Some("minor") => true,
        Some(_) => return None,
    };
    Some(((base + shift).rem_euclid(12), minor))
}

/// The pitch classes of the scale of `key` (the style's mode when the key does not say).
pub fn scale_of(key: &str, mood: &str) -> Vec<i32> {
    let (tonic, minor) = parse_key(key).unwrap_or((2, style(mood).minor));
    let steps = if minor { MINOR } else { MAJOR };
    steps.iter().map(|s| (tonic + s).rem_euclid(12)).collect()
}

fn hz(midi: i32) -> f32 {
    440.0 * 2f32.powf((midi - 69) as f32 / 12.0)
}

/// A small deterministic generator (the melody's walk): the same cue, the same tune.
struct Walk(u64);

impl Walk {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// What one cue plays with: its key, tempo and length, and the sequencer its notes go to.
struct Band {
    seq: Sequencer,
    tonic: i32,
    scale: [i32; 7],
    beat: f64,
    len: f64,
    style: Style,
    /// Where this render starts, seconds into the cue: notes that start before it are left
    /// out (a window's pre-roll is long enough for them to have ended), the rest shifted.
    origin: f64,
}

impl Band {
    /// A degree of the scale as a MIDI note in octave `octave` (C4 = 60).
    fn note(&self, degree: usize, octave: i32) -> i32 {
        12 * (octave + 1 + (degree / 7) as i32) + self.tonic + self.scale[degree % 7]
    }

    /// A note from `s` to `e` (cut at the cue's end), fading in and out over at most the
    /// times given.
    fn play(&mut self, s: f64, e: f64, fade: (f64, f64), unit: Box<dyn AudioUnit>) {
        let e = e.min(self.len);
        if e <= s || s < self.origin {
            return;
        }
        // Shifted first, so the fades fit the note as the sequencer sees it (to the last bit).
        let (s, e) = (s - self.origin, e - self.origin);
        let half = (e - s) / 2.0;
        self.seq
            .push(s, e, Fade::Smooth, fade.0.min(half), fade.1.min(half), unit);
    }

    /// The string pad: the chord's three notes, detuned saws through a low-pass, spread.
    fn pad(&mut self, t: f64, end: f64, chord: [usize; 3]) {
        for (k, d) in chord.iter().enumerate() {
            let f = hz(self.note(*d, 3));
            let voice = (saw_hz(f) * 0.5 + saw_hz(f * 1.004) * 0.5)
                >> lowpass_hz(self.style.brightness, 0.7);
            let unit = (voice * 0.045) >> pan([-0.4, 0.0, 0.4][k]);
            self.play(t, end + 0.25, (0.25, 0.25), Box::new(unit));
        }
    }

    /// The bass: the root on the first and third beats.
    fn bass(&mut self, t: f64, root: usize) {
        for b in [0.0, 2.0] {
            let s = t + b * self.beat;
            let f = hz(self.note(root, 1));
            let unit = (sine_hz(f) * 0.16 + triangle_hz(f) * 0.04) >> pan(0.0);
            self.play(s, s + 1.8 * self.beat, (0.01, 0.3), Box::new(unit));
        }
    }

    /// The plucked arpeggio: the chord up two octaves in eighths, left and right.
    fn arpeggio(&mut self, t: f64, chord: [usize; 3]) {
        for k in 0..8 {
            let s = t + k as f64 * self.beat / 2.0;
            let f = hz(self.note(chord[k % 3] + if k >= 4 { 7 } else { 0 }, 4));
            let side = if k % 2 == 0 { -0.3 } else { 0.3 };
            let unit = zero() >> (pluck(f, 0.6, 0.4) * 0.09) >> pan(side);
            self.play(s, s + self.beat, (0.003, 0.05), Box::new(unit));
        }
    }

    /// The melody over one bar: a walk on the scale in quarters and halves that lands on a
    /// chord tone at the bar's start. `degree` is where it was.
    fn melody(&mut self, t: f64, end: f64, chord: [usize; 3], walk: &mut Walk, degree: &mut usize) {
        let mut s = t;
        while s < end {
            let d = if walk.next(3) == 0 { 2.0 } else { 1.0 } * self.beat;
            let step = walk.next(3) as i64 - 1;
            *degree = (*degree as i64 + step).clamp(2, 11) as usize;
            if s == t {
                let at = *degree;
                *degree = chord
                    .iter()
                    .map(|c| c + 7)
                    .min_by_key(|c| c.abs_diff(at))
                    .unwrap_or(at);
            }
            let f = hz(self.note(*degree, 4));
            let unit = (triangle_hz(f) * 0.09 + sine_hz(f * 2.0) * 0.015) >> pan(0.1);
            self.play(s, s + d, (0.03, 0.12), Box::new(unit));
            s += d;
        }
    }
}

/// How long before a window its render starts, seconds: every note sounding at the window's
/// start began after it (the longest is a pad chord or a half note, under three seconds even at
/// the slowest tempo) and the room's reverb of what came before has died away by more than
/// 60 dB.
const PRE_ROLL: f64 = 4.0;

/// Samples `a..b` of one cue rendered over `len` samples (its own span and the crossfade
/// after it): stereo. The render starts at the bar a [`PRE_ROLL`] before `a`, not at the
/// cue's start, so a window of a long cue costs its own length and a few seconds.
fn render_cue(c: &MusicCue, len: usize, a: usize, b: usize) -> Wave {
    let st = style(&c.mood);
    let (tonic, minor) = parse_key(&c.key).unwrap_or((2, st.minor));
    let wants = |name: &str, default: bool| {
        if c.instruments.is_empty() {
            default
        } else {
            c.instruments
                .iter()
                .any(|i| i.to_lowercase().contains(name))
        }
    };
    let (pad, bass, arp, melody) = (
        wants("string", true) || wants("pad", false),
        wants("bass", true),
        wants("pluck", st.arpeggio) || wants("arp", false),
        wants("melod", st.melody) || wants("piano", false),
    );
    let mut seq = Sequencer::new(0, 2, ReplayMode::None);
    seq.set_sample_rate(RATE);
    let beat = 60.0 / c.tempo_bpm.clamp(40.0, 200.0);
    let bar = 4.0 * beat;
    // The pre-roll starts on a bar line, in whole samples, so every note lands on the sample
    // it lands on in a render of the whole cue.
    let start = a as f64 / RATE;
    let origin_bar = ((start - PRE_ROLL) / bar).floor().max(0.0);
    let origin_sample = (origin_bar * bar * RATE).round() as usize;
    let mut band = Band {
        seq,
        tonic,
        scale: if minor { MINOR } else { MAJOR },
        beat,
        len: len as f64 / RATE,
        style: st,
        origin: origin_sample as f64 / RATE,
    };
    let mut walk = Walk(
        c.key
            .bytes()
            .chain(c.mood.bytes())
            .fold(7_u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
    );
    let mut degree = 4usize;
    let until = b as f64 / RATE;
    let mut t = 0.0;
    let mut i = 0usize;
    // Every bar from the cue's start is walked (the melody's walk is a sequence), but only
    // the ones from the origin on are played.
    while t < band.len && t < until {
        let root = st.progression[i % 4];
        let end = (t + bar).min(band.len);
        let chord = [root, root + 2, root + 4];
        if pad {
            band.pad(t, end, chord);
        }
        if bass {
            band.bass(t, root);
        }
        if arp {
            band.arpeggio(t, chord);
        }
        if melody {
            band.melody(t, end, chord, &mut walk, &mut degree);
        }
        t += bar;
        i += 1;
    }
    let n = b - origin_sample;
    let secs = n as f64 / RATE;
    let mut dry = Wave::render(RATE, secs, &mut band.seq);
    dry.resize(n);
    let mut room = multipass::<U2>() & (0.25 * reverb_stereo(18.0, 2.2, 0.6));
    let mut wet = dry.filter(secs, &mut room);
    wet.resize(n);
    let mut out = Wave::new(2, RATE);
    out.resize(b - a);
    for ch in 0..2 {
        for j in 0..(b - a) {
            out.set(ch, j, wet.at(ch, a - origin_sample + j));
        }
    }
    out
}

/// The music of a film of `length` seconds: every cue rendered whole over its span (a cue
/// runs through the cuts inside it), each fading in and handing over to the next over
/// [`CUE_FADE`] seconds; silence where no cue plays. Stereo, [`RATE`] samples a second.
pub fn render(cues: &[MusicCue], length: f64) -> Wave {
    let total = (length * RATE).round().max(1.0) as usize;
    window(cues, length, 0, total)
}

/// Samples `from..to` of [`render`]`(cues, length)`, rendered on their own: the same music to
/// within the reverb's last traces, at the cost of the window and a few seconds' pre-roll.
pub fn window(cues: &[MusicCue], length: f64, from: usize, to: usize) -> Wave {
    window_made(cues, length, from, to, &|_, _, _| None)
}

/// [`window`], with the cues a provider made: `made(i, a, b)` gives samples `a..b` of cue
/// `i` (counted from the cue's start) as made, or none where the cue is synthesized. A made
/// cue fades and hands over exactly as a synthesized one.
pub fn window_made(
    cues: &[MusicCue],
    length: f64,
    from: usize,
    to: usize,
    made: &dyn Fn(usize, usize, usize) -> Option<Wave>,
) -> Wave {
    let total = (length * RATE).round().max(1.0) as usize;
    let to = to.min(total);
    let mut out = Wave::new(2, RATE);
    out.resize(to.saturating_sub(from));
    let fade = (CUE_FADE * RATE) as usize;
    for (k, c) in cues.iter().enumerate() {
        let cue_from = (c.start.max(0.0) * RATE).round() as usize;
        let cue_until = ((c.end + CUE_FADE).min(length) * RATE).round() as usize;
        let (lo, hi) = (from.max(cue_from), to.min(cue_until));
        if cue_until <= cue_from || hi <= lo {
            continue;
        }
        let n = cue_until - cue_from;
        let wave = made(k, lo - cue_from, hi - cue_from)
            .unwrap_or_else(|| render_cue(c, n, lo - cue_from, hi - cue_from));
        for j in 0..(hi - lo) {
            let i = lo - cue_from + j;
            let edge = (i.min(n - 1 - i) as f32 / fade as f32).min(1.0);
            // Equal power: a cue handing over keeps the level constant.
            let gain = (edge * std::f32::consts::FRAC_PI_2).sin();
            for ch in 0..2 {
                let v = out.at(ch, lo - from + j) + wave.at(ch, j) * gain;
                out.set(ch, lo - from + j, v);
            }
        }
    }
    out
}

/// Write `wave` as a 16-bit WAV file.
pub fn save(wave: &Wave, path: &std::path::Path) -> std::io::Result<()> {
    wave.save_wav16(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(mood: &str, key: &str, start: f64, end: f64) -> MusicCue {
        MusicCue {
            start,
            end,
            mood: mood.into(),
            tempo_bpm: 96.0,
            key: key.into(),
            instruments: vec![],
        }
    }

    /// Energy at each of the twelve pitch classes, octaves 2 to 5 (Goertzel), of channel 0.
    fn chroma(w: &Wave, from: f64, to: f64) -> [f64; 12] {
        let (a, b) = ((from * RATE) as usize, ((to * RATE) as usize).min(w.len()));
        let x: Vec<f64> = (a..b).map(|i| f64::from(w.at(0, i))).collect();
        let mut out = [0.0; 12];
        for midi in 36..84 {
            let f = 440.0 * 2f64.powf((midi as f64 - 69.0) / 12.0);
            let k = 2.0 * (2.0 * std::f64::consts::PI * f / RATE).cos();
            let (mut s1, mut s2) = (0.0, 0.0);
            for v in &x {
                let s = v + k * s1 - s2;
                s2 = s1;
                s1 = s;
            }
            out[(midi % 12) as usize] += s1 * s1 + s2 * s2 - k * s1 * s2;
        }
        out
    }

    fn top(c: &[f64; 12], n: usize) -> Vec<i32> {
        let mut idx: Vec<usize> = (0..12).collect();
        idx.sort_by(|a, b| c[*b].total_cmp(&c[*a]));
        idx.into_iter().take(n).map(|i| i as i32).collect()
    }

    fn rms(w: &Wave, from: f64, to: f64) -> f64 {
        let (a, b) = ((from * RATE) as usize, ((to * RATE) as usize).min(w.len()));
        ((a..b).map(|i| f64::from(w.at(0, i)).powi(2)).sum::<f64>() / (b - a) as f64).sqrt()
    }

    #[test]
    fn keys_are_read_as_musicians_write_them() {
        assert_eq!(parse_key("D minor"), Some((2, true)));
        assert_eq!(parse_key("F# major"), Some((6, false)));
        assert_eq!(parse_key("Bb"), Some((10, false)));
        assert_eq!(parse_key("H minor"), None);
    }

    #[test]
    fn a_cue_is_music_in_its_key_the_same_every_time() {
        let cues = [cue("melancholy", "D minor", 0.0, 8.0)];
        let a = render(&cues, 8.0);
        assert_eq!(a.len(), render(&cues, 8.0).len());
        let b = render(&cues, 8.0);
        assert!(
            (0..a.len()).all(|i| a.at(0, i) == b.at(0, i)),
            "the same every time"
        );
        assert!(rms(&a, 2.0, 6.0) > 0.02, "audible: {}", rms(&a, 2.0, 6.0));
        // The loudest pitch classes are the key's: D minor's tonic triad and scale.
        let scale = scale_of("D minor", "");
        let loud = top(&chroma(&a, 1.0, 7.0), 4);
        assert!(
            loud.iter().all(|p| scale.contains(p)),
            "{loud:?} not in {scale:?}"
        );
        assert!(loud.contains(&2), "the tonic D among {loud:?}");
    }

    #[test]
    fn the_mood_changes_the_music() {
        let sad = render(&[cue("melancholy", "D minor", 0.0, 8.0)], 8.0);
        let joy = render(&[cue("joyful", "D major", 0.0, 8.0)], 8.0);
        let (s, j) = (chroma(&sad, 1.0, 7.0), chroma(&joy, 1.0, 7.0));
        // F (minor third) against F# (major third).
        assert!(
            s[5] > s[6] && j[6] > j[5],
            "sad F {} F# {}, joyful F {} F# {}",
            s[5],
            s[6],
            j[5],
            j[6]
        );
    }

    #[test]
    fn a_cue_fades_in_and_hands_over_to_the_next_without_a_gap() {
        let w = render(
            &[
                cue("calm", "C major", 0.0, 6.0),
                cue("tense", "A minor", 6.0, 12.0),
            ],
            12.0,
        );
        assert!(rms(&w, 0.0, 0.05) < rms(&w, 2.0, 4.0) / 4.0, "fades in");
        for t in [5.5, 6.0, 6.5, 7.0] {
            assert!(
                rms(&w, t, t + 0.25) > 0.01,
                "no hole at {t}: {}",
                rms(&w, t, t + 0.25)
            );
        }
    }

    #[test]
    fn windows_rendered_apart_join_into_the_whole() {
        let cues = vec![
            cue("calm", "C major", 0.0, 14.0),
            cue("tense", "A minor", 14.0, 30.0),
        ];
        let whole = render(&cues, 30.0);
        let step = (7.3 * RATE) as usize;
        let mut worst = 0.0f32;
        let mut at = 0;
        while at < whole.len() {
            let w = window(&cues, 30.0, at, at + step);
            for j in 0..w.len() {
                for ch in 0..2 {
                    worst = worst.max((w.at(ch, j) - whole.at(ch, at + j)).abs());
                }
            }
            at += step;
        }
        let peak = (0..whole.len())
            .map(|i| whole.at(0, i).abs())
            .fold(0.0f32, f32::max);
        // What differs is the reverb of notes before the pre-roll: more than 50 dB down.
        assert!(
            20.0 * (worst / peak).log10() < -50.0,
            "worst difference {worst} against a peak of {peak}"
        );
    }

    #[test]
    fn every_window_of_a_film_renders_at_any_tempo() {
        // Windows of 10 s (the workflow's) over films at tempos whose bars do not divide
        // them: a note's fades always fit it once shifted to the window's origin.
        for bpm in [72.0, 92.0, 118.0, 41.0, 199.0] {
            let mut c = cue("calm quiet", "D major", 0.0, 30.0);
            c.tempo_bpm = bpm;
            let cues = [c];
            let total = (30.0 * RATE) as usize;
            let step = (10.0 * RATE) as usize;
            for from in (0..total).step_by(step) {
                let w = window(&cues, 30.0, from, from + step);
                assert_eq!(w.len(), step.min(total - from));
            }
        }
    }
}
