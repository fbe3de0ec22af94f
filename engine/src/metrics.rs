//! In-process counters and latency samples, exported in Prometheus text format by the server
//! and read by the benchmark.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the step-duration histogram buckets.
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0, 600.0,
];

/// How many recent checkpoint latencies are kept for quantiles.
const SAMPLES: usize = 1 << 16;

/// Engine metrics of this process.
#[derive(Debug)]
pub struct Metrics {
    /// Steps that succeeded.
    pub steps_succeeded: AtomicU64,
    /// Step attempts that failed for good.
    pub steps_failed: AtomicU64,
    /// Step attempts that failed and were scheduled for a retry.
    pub steps_retried: AtomicU64,
    /// Steps replayed from the journal instead of executed.
    pub steps_replayed: AtomicU64,
    /// Checkpoint batches written.
    pub batches: AtomicU64,
    /// Checkpoints written.
    pub checkpoints: AtomicU64,
    /// Time spent in checkpoint commits (microseconds, summed over batches).
    pub commit_micros: AtomicU64,
    /// Runs claimed by workers of this process.
    pub claims: AtomicU64,
    /// Runs suspended by workers of this process.
    pub suspensions: AtomicU64,
    /// Runs completed by workers of this process.
    pub runs_completed: AtomicU64,
    /// Runs failed by workers of this process.
    pub runs_failed: AtomicU64,
    /// Runs blocked by workers of this process (journal and code parted ways).
    pub runs_blocked: AtomicU64,
    step_hist: Mutex<Histogram>,
    checkpoint_samples: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug)]
struct Ring {
    data: Vec<u32>,
    next: usize,
    full: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            steps_succeeded: AtomicU64::new(0),
            steps_failed: AtomicU64::new(0),
            steps_retried: AtomicU64::new(0),
            steps_replayed: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            commit_micros: AtomicU64::new(0),
            claims: AtomicU64::new(0),
            suspensions: AtomicU64::new(0),
            runs_completed: AtomicU64::new(0),
            runs_failed: AtomicU64::new(0),
            runs_blocked: AtomicU64::new(0),
            step_hist: Mutex::new(Histogram::default()),
            checkpoint_samples: Mutex::new(Ring {
                data: Vec::with_capacity(1024),
                next: 0,
                full: false,
            }),
        }
    }
}

/// Quantiles of checkpoint latency.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quantiles {
    /// Samples considered.
    pub count: usize,
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Maximum, milliseconds.
    pub max_ms: f64,
}

impl Metrics {
    pub(crate) fn record_batch(&self, size: usize, took: Duration) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.commit_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.checkpoints.fetch_add(size as u64, Ordering::Relaxed);
    }

    pub(crate) fn record_checkpoint(&self, latency: Duration) {
        let us = latency.as_micros().min(u32::MAX as u128) as u32;
        let mut r = self
            .checkpoint_samples
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if r.data.len() < SAMPLES {
            r.data.push(us);
        } else {
            let i = r.next;
            r.data[i] = us;
            r.full = true;
        }
        r.next = (r.next + 1) % SAMPLES;
    }

    pub(crate) fn record_step(&self, d: Duration) {
        let s = d.as_secs_f64();
        let mut h = self.step_hist.lock().unwrap_or_else(|e| e.into_inner());
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += s;
    }

    /// Forget the checkpoint latency samples (the benchmark starts each phase clean).
    pub fn reset_checkpoint_samples(&self) {
        let mut r = self
            .checkpoint_samples
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        r.data.clear();
        r.next = 0;
        r.full = false;
    }

    /// Quantiles of the recent checkpoint latencies (queueing + commit).
    pub fn checkpoint_quantiles(&self) -> Quantiles {
        let mut v = {
            let r = self
                .checkpoint_samples
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            r.data.clone()
        };
        if v.is_empty() {
            return Quantiles::default();
        }
        v.sort_unstable();
        let q = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0;
        Quantiles {
            count: v.len(),
            p50_ms: q(0.50),
            p99_ms: q(0.99),
            max_ms: *v.last().unwrap_or(&0) as f64 / 1000.0,
        }
    }

    /// Prometheus text exposition of these metrics.
    pub fn render_prometheus(&self, out: &mut String) {
        let c = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        };
        c(
            out,
            "slate_steps_succeeded_total",
            "Step attempts that succeeded.",
            &self.steps_succeeded,
        );
        c(
            out,
            "slate_steps_failed_total",
            "Step attempts that failed for good.",
            &self.steps_failed,
        );
        c(
            out,
            "slate_step_retries_total",
            "Step attempts that failed and were scheduled again.",
            &self.steps_retried,
        );
        c(
            out,
            "slate_steps_replayed_total",
            "Steps answered from the journal on replay.",
            &self.steps_replayed,
        );
        c(
            out,
            "slate_checkpoints_total",
            "Checkpoints committed.",
            &self.checkpoints,
        );
        c(
            out,
            "slate_checkpoint_batches_total",
            "Commits that carried checkpoints.",
            &self.batches,
        );
        c(
            out,
            "slate_claims_total",
            "Runs claimed by this process.",
            &self.claims,
        );
        c(
            out,
            "slate_suspensions_total",
            "Runs suspended by this process.",
            &self.suspensions,
        );
        c(
            out,
            "slate_runs_completed_total",
            "Runs completed by this process.",
            &self.runs_completed,
        );
        c(
            out,
            "slate_runs_failed_total",
            "Runs failed by this process.",
            &self.runs_failed,
        );
        c(
            out,
            "slate_runs_blocked_total",
            "Runs blocked by this process: their journal no longer fits the code.",
            &self.runs_blocked,
        );
        let h = self.step_hist.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            out,
            "# HELP slate_step_duration_seconds Wall time of executed step attempts.\n# TYPE slate_step_duration_seconds histogram"
        );
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "slate_step_duration_seconds_bucket{{le=\"{b}\"}} {}",
                h.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "slate_step_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "slate_step_duration_seconds_sum {}", h.sum);
        let _ = writeln!(out, "slate_step_duration_seconds_count {}", h.count);
        let q = self.checkpoint_quantiles();
        let _ = writeln!(
            out,
            "# HELP slate_checkpoint_latency_seconds Recent checkpoint latency (queue + commit).\n# TYPE slate_checkpoint_latency_seconds summary"
        );
        let _ = writeln!(
            out,
            "slate_checkpoint_latency_seconds{{quantile=\"0.5\"}} {}",
            q.p50_ms / 1000.0
        );
        let _ = writeln!(
            out,
            "slate_checkpoint_latency_seconds{{quantile=\"0.99\"}} {}",
            q.p99_ms / 1000.0
        );
    }
}
