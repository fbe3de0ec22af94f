//! The local studio's ambience and sound effects (issue 27), synthesized offline with `fundsp`
//! from noise and oscillators, the same every time for the same words.
//!
//! Ambience is a bed under a whole scene, chosen by the words that describe the place and time
//! (rain, wind, sea, night insects, crowd, traffic; room tone otherwise). An effect is a short
//! event placed on its action (a door, footsteps, thunder, a horn, a knock, a bell; a soft
//! whoosh otherwise), and is cut with a short fade at its scene's end so nothing spills into
//! the next scene.

use fundsp::audiounit::AudioUnit;
use fundsp::prelude64::{
    Fade, ReplayMode, Sequencer, Wave, bandpass_hz, brown, highpass_hz, lowpass_hz, noise, pan,
    pink, saw_hz, sine_hz, square_hz,
};

use crate::music::RATE;

/// What an ambience is made of, from the words that describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bed {
    /// Rain: bright noise with drops.
    Rain,
    /// Wind: dark noise swelling slowly.
    Wind,
    /// The sea: dark noise in long swells.
    Sea,
    /// Night insects: high chirps.
    Insects,
    /// A crowd: a band of voices' frequencies, moving.
    Crowd,
    /// Traffic: a low rumble.
    Traffic,
    /// Room tone: quiet pink noise.
    Room,
}

/// The bed that `words` describe (a place, a time, an ambient sound).
pub fn bed_of(words: &str) -> Bed {
    let w = words.to_lowercase();
    let has = |k: &[&str]| k.iter().any(|x| w.contains(x));
    if has(&["rain", "storm", "drizzle", "downpour"]) {
        Bed::Rain
    } else if has(&[
        "sea", "ocean", "wave", "shore", "harbor", "harbour", "beach", "ferry", "dock",
    ]) {
        Bed::Sea
    } else if has(&["wind", "gust", "cliff", "moor", "mountain"]) {
        Bed::Wind
    } else if has(&["insect", "cricket", "night", "forest", "field"]) {
        Bed::Insects
    } else if has(&[
        "crowd", "market", "cafe", "café", "station", "party", "square",
    ]) {
        Bed::Crowd
    } else if has(&["traffic", "street", "city", "road", "car"]) {
        Bed::Traffic
    } else {
        Bed::Room
    }
}

fn sequencer() -> Sequencer {
    let mut s = Sequencer::new(0, 2, ReplayMode::None);
    s.set_sample_rate(RATE);
    s
}

/// A deterministic generator for where drops, chirps and steps fall.
struct Dice(u64);

impl Dice {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `len` seconds of the ambience `bed`, stereo.
pub fn ambience(bed: Bed, len: f64) -> Wave {
    let mut seq = sequencer();
    let mut dice = Dice(bed as u64 + 11);
    let whole = |u: Box<dyn AudioUnit>, seq: &mut Sequencer| {
        seq.push(
            0.0,
            len,
            Fade::Smooth,
            0.5_f64.min(len / 2.0),
            0.5_f64.min(len / 2.0),
            u,
        );
    };
    match bed {
        Bed::Rain => {
            whole(
                Box::new((noise() >> (bandpass_hz(3500.0, 0.5) * 0.12)) >> pan(0.0)),
                &mut seq,
            );
            let mut t = 0.0;
            while t < len {
                let at = t;
                let side = dice.unit() * 1.6 - 0.8;
                let drop = (noise() >> (highpass_hz(5000.0, 0.7) * 0.25)) >> pan(side as f32);
                seq.push(
                    at,
                    (at + 0.02).min(len),
                    Fade::Smooth,
                    0.002,
                    0.01_f64.min((len - at) / 2.0),
                    Box::new(drop),
                );
                t += 0.02 + dice.unit() * 0.08;
            }
        }
        Bed::Wind | Bed::Sea => {
            let (cut, rate) = if bed == Bed::Wind {
                (700.0, 0.23)
            } else {
                (450.0, 0.09)
            };
            let swell = sine_hz(rate) * 0.5 + 0.5;
            let u = ((brown() >> lowpass_hz(cut, 0.6)) * (swell * 0.5 + 0.2) * 0.6) >> pan(0.0);
            whole(Box::new(u), &mut seq);
        }
        Bed::Insects => {
            whole(
                Box::new((pink() >> (lowpass_hz(500.0, 0.6) * 0.03)) >> pan(0.0)),
                &mut seq,
            );
            let mut t = 0.0;
            while t < len {
                let f = 4200.0 + dice.unit() as f32 * 1200.0;
                let side = dice.unit() as f32 * 1.4 - 0.7;
                let chirp = (sine_hz(f) * (square_hz(18.0) * 0.5 + 0.5) * 0.04) >> pan(side);
                let e = (t + 0.35).min(len);
                seq.push(
                    t,
                    e,
                    Fade::Smooth,
                    0.02_f64.min((e - t) / 2.0),
                    0.05_f64.min((e - t) / 2.0),
                    Box::new(chirp),
                );
                t += 0.4 + dice.unit() * 0.9;
            }
        }
        Bed::Crowd => {
            let murmur = (pink() >> bandpass_hz(700.0, 0.8)) * (sine_hz(0.7) * 0.3 + 0.7) * 0.25;
            whole(Box::new(murmur >> pan(0.0)), &mut seq);
        }
        Bed::Traffic => {
            let rumble = (brown() >> lowpass_hz(220.0, 0.6)) * (sine_hz(0.13) * 0.4 + 0.6) * 0.5;
            whole(Box::new(rumble >> pan(0.0)), &mut seq);
        }
        Bed::Room => {
            whole(
                Box::new((pink() >> (lowpass_hz(1200.0, 0.6) * 0.02)) >> pan(0.0)),
                &mut seq,
            );
        }
    }
    Wave::render(RATE, len, &mut seq)
}

/// One sound effect from its name, and how long it lasts.
/// A part of an effect: when it starts after the effect's action, how long it lasts, its sound.
type Part = (f64, f64, Box<dyn AudioUnit>);

fn effect_unit(name: &str, dice: &mut Dice) -> (f64, Vec<Part>) {
    let n = name.to_lowercase();
    let has = |k: &[&str]| k.iter().any(|x| n.contains(x));
    let hit = |f: f32, g: f32| -> Box<dyn AudioUnit> {
        Box::new(((sine_hz(f) * g) + (noise() >> lowpass_hz(f * 6.0, 0.7)) * (g * 0.5)) >> pan(0.0))
    };
    if has(&["door", "slam", "knock"]) {
        let knocks = if has(&["knock"]) { 3 } else { 1 };
        let parts = (0..knocks)
            .map(|k| (k as f64 * 0.25, 0.18, hit(95.0, 0.5)))
            .collect();
        (0.25 * knocks as f64, parts)
    } else if has(&["step", "foot", "walk"]) {
        let parts = (0..6)
            .map(|k| {
                let side = if k % 2 == 0 { -0.2 } else { 0.2 };
                let u: Box<dyn AudioUnit> = Box::new(
                    ((noise() >> bandpass_hz(900.0 + dice.unit() as f32 * 300.0, 1.5)) * 0.35)
                        >> pan(side),
                );
                (k as f64 * 0.45, 0.08, u)
            })
            .collect();
        (2.7, parts)
    } else if has(&["thunder", "explos", "boom"]) {
        let u: Box<dyn AudioUnit> =
            Box::new(((brown() >> lowpass_hz(160.0, 0.6)) * 1.2) >> pan(0.0));
        (2.5, vec![(0.0, 2.5, u)])
    } else if has(&["horn", "ferry", "ship", "siren"]) {
        let u: Box<dyn AudioUnit> = Box::new(
            (((saw_hz(110.0) + saw_hz(138.6)) >> lowpass_hz(900.0, 0.7)) * 0.12) >> pan(0.0),
        );
        (2.0, vec![(0.0, 2.0, u)])
    } else if has(&["bell", "chime"]) {
        let u: Box<dyn AudioUnit> =
            Box::new((sine_hz(880.0) * 0.2 + sine_hz(2217.0) * 0.07) >> pan(0.0));
        (1.8, vec![(0.0, 1.8, u)])
    } else {
        let u: Box<dyn AudioUnit> =
            Box::new(((noise() >> bandpass_hz(1500.0, 0.5)) * 0.15) >> pan(0.0));
        (0.8, vec![(0.0, 0.8, u)])
    }
}

/// The effects of a scene of `len` seconds, each `(name, at)` placed on its action: one stem,
/// nothing after the scene's end (an effect running past it is faded out in its last 50 ms).
pub fn effects(list: &[(String, f64)], len: f64) -> Wave {
    let mut seq = sequencer();
    let mut dice = Dice(list.len() as u64 + 3);
    for (name, at) in list {
        let (_, parts) = effect_unit(name, &mut dice);
        for (offset, dur, unit) in parts {
            let s = at + offset;
            let e = (s + dur).min(len);
            if e - s < 0.01 {
                continue;
            }
            let fade_out = if s + dur > len { 0.05 } else { dur * 0.6 };
            let half = (e - s) / 2.0;
            seq.push(
                s,
                e,
                Fade::Smooth,
                0.002_f64.min(half),
                fade_out.min(half),
                unit,
            );
        }
    }
    let mut w = Wave::render(RATE, len, &mut seq);
    // Whatever an effect's tail left in the last samples ends at the scene's end.
    let tail = (0.01 * RATE) as usize;
    let n = w.len();
    for i in n.saturating_sub(tail)..n {
        let g = (n - i) as f32 / tail as f32;
        for ch in 0..2 {
            let v = w.at(ch, i) * g;
            w.set(ch, i, v);
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms(w: &Wave, a: f64, b: f64) -> f64 {
        let (a, b) = ((a * RATE) as usize, ((b * RATE) as usize).min(w.len()));
        ((a..b).map(|i| f64::from(w.at(0, i)).powi(2)).sum::<f64>() / (b - a).max(1) as f64).sqrt()
    }

    /// Share of a sound's energy above 2 kHz (a one-pole split).
    fn bright(w: &Wave) -> f64 {
        let k = (-2.0 * std::f64::consts::PI * 2000.0 / RATE).exp();
        let (mut low, mut e_low, mut e_all) = (0.0, 0.0, 0.0);
        for i in 0..w.len() {
            let x = f64::from(w.at(0, i));
            low = (1.0 - k) * x + k * low;
            e_low += low * low;
            e_all += x * x;
        }
        1.0 - e_low / e_all.max(1e-12)
    }

    #[test]
    fn places_and_times_pick_their_bed() {
        assert_eq!(bed_of("Harbor Market, dusk"), Bed::Sea);
        assert_eq!(bed_of("heavy rain on the roof"), Bed::Rain);
        assert_eq!(bed_of("the forest at night"), Bed::Insects);
        assert_eq!(bed_of("Mira's kitchen"), Bed::Room);
    }

    #[test]
    fn every_bed_is_heard_and_rain_is_brighter_than_the_sea() {
        for bed in [
            Bed::Rain,
            Bed::Wind,
            Bed::Sea,
            Bed::Insects,
            Bed::Crowd,
            Bed::Traffic,
            Bed::Room,
        ] {
            let w = ambience(bed, 4.0);
            assert!(
                rms(&w, 1.0, 3.0) > 0.001,
                "{bed:?} audible: {}",
                rms(&w, 1.0, 3.0)
            );
        }
        assert!(bright(&ambience(Bed::Rain, 3.0)) > 4.0 * bright(&ambience(Bed::Sea, 3.0)));
    }

    #[test]
    fn effects_sound_on_their_action_and_never_past_the_scene() {
        let w = effects(
            &[("a door slams".into(), 1.0), ("the ferry horn".into(), 3.5)],
            4.5,
        );
        assert!(rms(&w, 0.0, 0.9) < 1e-4, "silent before the door");
        assert!(rms(&w, 1.0, 1.2) > 0.01, "the door");
        assert!(rms(&w, 3.6, 4.3) > 0.01, "the horn");
        let last = w.len() - 1;
        assert!(
            w.at(0, last).abs() < 1e-3 && w.at(1, last).abs() < 1e-3,
            "ends with the scene"
        );
        assert_eq!(
            w.len(),
            (4.5 * RATE) as usize,
            "nothing past the scene's end"
        );
    }
}
