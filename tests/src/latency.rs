//! Provider latencies and the jobs a provider ran, for benchmarks and for tests that watch the
//! concurrency limits at the provider's side.
//!
//! A [`Latency`] turns a provider's typical duration (the spec's "images 30-90 seconds",
//! "videos 2-8 minutes") into a short one on a scale (one minute here lasting, say, 100 ms),
//! drawn from a hash of the request, so the same request takes the same time in two runs (a
//! film made with scenes in parallel and the same film made one scene at a time wait the same
//! for each call). [`Jobs`] keeps when each job ran, from which the jobs running at once are
//! counted exactly, with no sampling interval to miss a peak.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Typical durations at the providers, seconds (from the spec where it gives them).
pub mod typical {
    /// Image generation: 30-90 seconds (spec).
    pub const IMAGE: (f64, f64) = (30.0, 90.0);
    /// Video generation: 2-8 minutes (spec).
    pub const VIDEO: (f64, f64) = (120.0, 480.0);
    /// Voice synthesis: 10-30 seconds (spec).
    pub const VOICE: (f64, f64) = (10.0, 30.0);
    /// A vision question (not in the spec): a few seconds.
    pub const VISION: (f64, f64) = (3.0, 10.0);
    /// A language-model answer (not in the spec): structured answers of a few hundred tokens.
    pub const LLM: (f64, f64) = (5.0, 20.0);
}

/// How long a provider takes, scaled down.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    seed: u64,
    ms_per_minute: f64,
}

impl Latency {
    /// One provider minute lasts `ms_per_minute` here; `seed` picks the draws.
    pub fn new(seed: u64, ms_per_minute: f64) -> Latency {
        Latency {
            seed,
            ms_per_minute: ms_per_minute.max(0.0),
        }
    }

    /// A provider duration of `seconds`, on this scale.
    pub fn scaled(&self, seconds: f64) -> Duration {
        Duration::from_secs_f64(seconds / 60.0 * self.ms_per_minute / 1000.0)
    }

    /// How long the request `body` of kind `kind` takes: between `range.0` and `range.1`
    /// provider seconds, the same for the same request (hosts, idempotency keys and callback
    /// addresses left out: they differ between runs of the same film).
    pub fn draw(&self, kind: &str, body: &Value, range: (f64, f64)) -> Duration {
        let key = format!("{kind} {}", normalized(body));
        let u = (fnv1a(self.seed, key.as_bytes()) >> 11) as f64 / (1u64 << 53) as f64;
        self.scaled(range.0 + (range.1 - range.0) * u)
    }
}

fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf29ce484222325u64 ^ seed.wrapping_mul(0x9e3779b97f4a7c15);
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    // Finalize (splitmix64), so nearby keys draw far apart.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d049bb133111eb);
    h ^ (h >> 31)
}

/// The request as it would be in any run of the same film.
fn normalized(v: &Value) -> String {
    fn walk(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "idempotency_key" | "callback_url" | "webhook_url"
                        )
                    })
                    .map(|(k, v)| (k.clone(), walk(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(walk).collect()),
            Value::String(s) if s.starts_with("http://") || s.starts_with("https://") => {
                // The path, without the host that serves it.
                let rest = s.split_once("://").map(|x| x.1).unwrap_or(s);
                Value::String(rest.split_once('/').map(|x| x.1).unwrap_or("").to_string())
            }
            other => other.clone(),
        }
    }
    walk(v).to_string()
}

/// When each job ran at a provider, by kind (`image`, `video`, ...).
#[derive(Debug, Default)]
pub struct Jobs {
    spans: Mutex<Vec<(String, Instant, Instant)>>,
}

/// What a provider ran of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JobStats {
    /// Jobs.
    pub count: usize,
    /// Their durations added up.
    pub busy: Duration,
    /// The most that ran at once.
    pub peak: usize,
}

impl Jobs {
    /// A job of `kind` runs from `start` for `took`.
    pub fn record(&self, kind: &str, start: Instant, took: Duration) {
        self.spans
            .lock()
            .unwrap()
            .push((kind.to_string(), start, start + took));
    }

    /// What ran, per kind.
    pub fn stats(&self) -> BTreeMap<String, JobStats> {
        let spans = self.spans.lock().unwrap().clone();
        let mut out: BTreeMap<String, JobStats> = BTreeMap::new();
        let mut edges: BTreeMap<String, Vec<(Instant, i32)>> = BTreeMap::new();
        for (kind, start, end) in spans {
            let s = out.entry(kind.clone()).or_default();
            s.count += 1;
            s.busy += end - start;
            let e = edges.entry(kind).or_default();
            e.push((start, 1));
            e.push((end, -1));
        }
        for (kind, mut e) in edges {
            // A job that ends when another starts did not run beside it.
            e.sort_by_key(|(t, d)| (*t, *d));
            let (mut now, mut peak) = (0i32, 0i32);
            for (_, d) in e {
                now += d;
                peak = peak.max(now);
            }
            if let Some(s) = out.get_mut(&kind) {
                s.peak = peak as usize;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_same_request_takes_the_same_time_in_any_run() {
        let l = Latency::new(7, 100.0);
        let a = json!({"prompt": "a harbor", "image_url": "http://127.0.0.1:4100/media/p/s1.png", "idempotency_key": "run-1/x"});
        let b = json!({"prompt": "a harbor", "image_url": "http://127.0.0.1:5200/media/p/s1.png", "idempotency_key": "run-2/x"});
        let c = json!({"prompt": "a forest", "image_url": "http://127.0.0.1:4100/media/p/s1.png"});
        let (da, db) = (
            l.draw("image", &a, typical::IMAGE),
            l.draw("image", &b, typical::IMAGE),
        );
        assert_eq!(da, db);
        assert_ne!(da, l.draw("image", &c, typical::IMAGE));
        // 30-90 provider seconds at 100 ms a minute: 50-150 ms.
        assert!(da >= Duration::from_millis(50) && da <= Duration::from_millis(150));
    }

    #[test]
    fn peaks_count_jobs_running_at_once() {
        let j = Jobs::default();
        let t = Instant::now();
        let ms = Duration::from_millis;
        j.record("video", t, ms(10));
        j.record("video", t + ms(5), ms(10));
        j.record("video", t + ms(10), ms(10)); // starts as the first ends
        j.record("image", t, ms(1));
        let s = j.stats();
        assert_eq!(s["video"].peak, 2);
        assert_eq!(s["video"].count, 3);
        assert_eq!(s["video"].busy, ms(30));
        assert_eq!(s["image"].peak, 1);
    }
}
