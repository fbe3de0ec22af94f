//! What a production would cost, before any of it runs: calls × unit price per kind of call
//! and stage, with a low (every check passes at the first try) and a high (the limits: 5
//! attempts per composite layer, 20 iterations per scene).
//!
//! The counts come from the project itself: its scenes once qualification has made them, and
//! before that what the local planner reads from the gather data (characters, locations,
//! props, scenes, the layers of each shot), which costs nothing. A remote language model may
//! plan a few more or fewer; that uncertainty is in the estimate's error, and the budget
//! checks before each step (`StepOptions::estimate`) stop a run before it crosses.

use std::collections::BTreeMap;

use serde::Serialize;
use slate_activities::local::LocalPlanner;
use slate_activities::model::*;
use slate_activities::pricing::{CallKind, Price, Prices};
use slate_activities::{Planner, ShotContext};

use crate::error::Result;
use crate::film::Film;
use crate::model::Scene;
use crate::slug::Slug;

/// One kind of call in one stage.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EstimateLine {
    /// `qualification`, `scenes` or `film`.
    pub stage: String,
    /// The kind of call.
    pub kind: CallKind,
    /// Who is paid, and for which model.
    #[serde(flatten)]
    pub price: Price,
    /// Units at the fewest calls (a unit is a call, or a second of video where the model is
    /// priced per second).
    pub units_low: f64,
    /// Units at the most calls the limits allow.
    pub units_high: f64,
    /// `units_low × unit_usd`.
    pub low_usd: f64,
    /// `units_high × unit_usd`.
    pub high_usd: f64,
    /// The most likely cost: the low, plus one retry in four where checks can reject (the
    /// composite's images and their checks).
    pub expected_usd: f64,
}

/// A stage's total.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StageEstimate {
    /// `qualification`, `scenes` or `film`.
    pub stage: String,
    /// Dollars, low.
    pub low_usd: f64,
    /// Dollars, high.
    pub high_usd: f64,
    /// Dollars, most likely.
    pub expected_usd: f64,
}

/// The estimate of a production.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Estimate {
    /// Where the counts come from: `scenes` (qualified) or `gather` (read by the local planner).
    pub basis: String,
    /// Scenes counted.
    pub scenes: usize,
    /// Characters counted.
    pub characters: usize,
    /// Per stage and kind of call.
    pub lines: Vec<EstimateLine>,
    /// Per stage.
    pub stages: Vec<StageEstimate>,
    /// Dollars, low.
    pub low_usd: f64,
    /// Dollars, high.
    pub high_usd: f64,
    /// Dollars, most likely.
    pub expected_usd: f64,
    /// When the default prices were read from the providers' pages.
    pub prices_as_of: String,
}

/// Units of each kind of call, low and high, per stage.
#[derive(Default)]
struct Counts(BTreeMap<(u8, CallKind), (f64, f64)>);

const STAGES: [&str; 3] = ["qualification", "scenes", "film"];

/// Share of composite attempts expected to be rejected and made again (one in four).
const EXPECTED_RETRIES: f64 = 0.25;

impl Counts {
    fn add(&mut self, stage: u8, kind: CallKind, low: f64, high: f64) {
        let e = self.0.entry((stage, kind)).or_default();
        e.0 += low;
        e.1 += high;
    }
}

/// The calls one scene makes: its shot plan, every composite layer (image, knowledge and
/// vision checks; up to `max_attempts` each), its clip, its voices and its last frame.
fn scene_calls(
    c: &mut Counts,
    layers: usize,
    dialogue: usize,
    video_units: f64,
    max_attempts: u32,
    max_iterations: u32,
) {
    let layers = layers.clamp(1, max_iterations as usize) as f64;
    let high = layers * f64::from(max_attempts.max(1));
    c.add(1, CallKind::Llm, 1.0, 1.0);
    c.add(1, CallKind::ImageEdit, layers, high);
    c.add(1, CallKind::Knowledge, layers, high);
    c.add(1, CallKind::Vision, layers, high);
    c.add(1, CallKind::Video, video_units, video_units);
    c.add(1, CallKind::Voice, dialogue as f64, dialogue as f64);
    c.add(1, CallKind::Media, 1.0, 1.0);
}

fn layers(plan: &ShotPlan) -> usize {
    plan.composite_steps.len()
}

/// Estimate what producing `slug` (qualification, every scene, the film) would cost with the
/// configured providers.
pub async fn estimate(f: &Film, slug: &Slug) -> Result<Estimate> {
    let settings = &f.studio.settings;
    let prices = Prices::new(&settings.prices);
    let local = LocalPlanner;
    let gather = f.gather(slug).await?;
    let mut c = Counts::default();
    let profiles = local.characters(&gather).await?.value;
    let bible = local.story_bible(&gather, &profiles).await?.value;
    let screenplay = local.screenplay(&gather, &bible, &profiles).await?.value;
    let breakdown = local.breakdown(&screenplay, &bible, &profiles).await?.value;
    let locations = local.locations(&gather, &bible).await?.value;
    let props = local.props(&gather, &screenplay).await?.value;
    // Qualification: eight planner calls (profiles, bible, style, screenplay, breakdown,
    // locations, props, casting); per character a master image and six described views;
    // a plate per location and a reference per prop.
    let n = profiles.len() as f64;
    c.add(0, CallKind::Llm, 8.0, 8.0);
    c.add(0, CallKind::Image, n, n);
    c.add(0, CallKind::ImageEdit, 6.0 * n, 6.0 * n);
    c.add(0, CallKind::Vision, 6.0 * n, 6.0 * n);
    let plates = (locations.len() + props.len()) as f64;
    c.add(0, CallKind::Image, plates, plates);

    let style = local.style_guide(&gather).await?.value;
    let shot_ctx = ShotContext {
        characters: profiles.clone(),
        props: props.clone(),
        style: Some(style),
    };
    let cfg = &f.config;
    let scenes: Vec<Scene> = f.repo.scenes(slug).await?;
    let basis = if scenes.is_empty() {
        "gather"
    } else {
        "scenes"
    };
    let counted = if scenes.is_empty() {
        for b in &breakdown {
            let plan = local.shot_plan(b, &shot_ctx).await?.value;
            scene_calls(
                &mut c,
                layers(&plan),
                b.dialogue.len(),
                prices.video_units(settings, b.expected_duration),
                cfg.max_attempts,
                cfg.max_iterations,
            );
        }
        breakdown.len()
    } else {
        for s in &scenes {
            let b = crate::scene::breakdown_of(s);
            let plan = match s
                .shot_agent_decisions
                .clone()
                .and_then(|v| serde_json::from_value::<ShotPlan>(v).ok())
            {
                Some(p) => p,
                None => local.shot_plan(&b, &shot_ctx).await?.value,
            };
            scene_calls(
                &mut c,
                layers(&plan),
                s.dialogue.len(),
                prices.video_units(settings, s.expected_duration),
                cfg.max_attempts,
                cfg.max_iterations,
            );
        }
        scenes.len()
    };
    // The film: one stitch.
    c.add(2, CallKind::Media, 1.0, 1.0);

    let mut lines = vec![];
    for ((stage, kind), (low, high)) in c.0 {
        if low == 0.0 && high == 0.0 {
            continue;
        }
        let price = prices.of(settings, kind);
        let expected = if high > low {
            (low * (1.0 + EXPECTED_RETRIES)).min(high)
        } else {
            low
        };
        lines.push(EstimateLine {
            stage: STAGES[stage as usize].into(),
            kind,
            low_usd: low * price.unit_usd,
            high_usd: high * price.unit_usd,
            expected_usd: expected * price.unit_usd,
            units_low: low,
            units_high: high,
            price,
        });
    }
    // (0.0 + : an empty sum of floats is -0.0.)
    let total = |s: &str, f: fn(&EstimateLine) -> f64| {
        0.0 + lines.iter().filter(|l| l.stage == s).map(f).sum::<f64>()
    };
    let stages: Vec<StageEstimate> = STAGES
        .iter()
        .map(|s| StageEstimate {
            stage: s.to_string(),
            low_usd: total(s, |l| l.low_usd),
            high_usd: total(s, |l| l.high_usd),
            expected_usd: total(s, |l| l.expected_usd),
        })
        .collect();
    Ok(Estimate {
        basis: basis.into(),
        scenes: counted,
        characters: profiles.len(),
        low_usd: stages.iter().map(|s| s.low_usd).sum(),
        high_usd: stages.iter().map(|s| s.high_usd).sum(),
        expected_usd: stages.iter().map(|s| s.expected_usd).sum(),
        lines,
        stages,
        prices_as_of: slate_activities::pricing::PRICES_AS_OF.into(),
    })
}

/// The stage and kind of call of a journaled step, by its workflow and name (step names are a
/// journal contract, so this reading stays valid for old runs). `None` for steps that call no
/// provider.
pub fn classify(workflow: &str, step: &str) -> Option<(&'static str, CallKind)> {
    let stage = match workflow {
        "film.qualify" => "qualification",
        "film.scene" => "scenes",
        "film.generate" => "film",
        _ => return None,
    };
    let last = step.rsplit('/').next().unwrap_or(step);
    let kind = if step == "video/submit" || step.starts_with("video/poll/") {
        CallKind::Video
    } else if last == "submit" || last == "await" {
        CallKind::Image
    } else if last == "describe" || last == "vision" {
        CallKind::Vision
    } else if last == "knowledge" {
        CallKind::Knowledge
    } else if step.starts_with("voice/") {
        CallKind::Voice
    } else if matches!(step, "last-frame" | "stitch" | "finish") {
        CallKind::Media
    } else if matches!(
        step,
        "shot-plan"
            | "characters/profiles"
            | "world/story-bible"
            | "visual/style-guide"
            | "story/screenplay"
            | "story/breakdown"
            | "locations/details"
            | "props/catalog"
            | "audio/casting"
    ) {
        CallKind::Llm
    } else {
        return None;
    };
    Some((stage, kind))
}

/// Image edits and text-to-image are one kind when compared with what was spent.
pub fn compared_kind(k: CallKind) -> CallKind {
    match k {
        CallKind::ImageEdit => CallKind::Image,
        k => k,
    }
}

/// Estimated against spent, for one kind of call in one stage.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CostComparison {
    /// `qualification`, `scenes` or `film`.
    pub stage: String,
    /// The kind of call (image edits counted with images).
    pub kind: CallKind,
    /// Estimated, low.
    pub estimate_low_usd: f64,
    /// Estimated, most likely.
    pub estimate_expected_usd: f64,
    /// Estimated, high.
    pub estimate_high_usd: f64,
    /// Spent, from the providers' own figures journaled with each step.
    pub actual_usd: f64,
    /// Steps that reported a cost.
    pub paid_steps: u32,
}

/// Put an estimate beside what the project's runs spent: `spent` holds, per step of those
/// runs, its workflow, name and dollars.
pub fn compare(e: &Estimate, spent: &[(String, String, f64)]) -> Vec<CostComparison> {
    let mut rows: BTreeMap<(usize, CallKind), CostComparison> = BTreeMap::new();
    for l in &e.lines {
        let r = row(&mut rows, &l.stage, compared_kind(l.kind));
        r.estimate_low_usd += l.low_usd;
        r.estimate_expected_usd += l.expected_usd;
        r.estimate_high_usd += l.high_usd;
    }
    for (workflow, step, usd) in spent {
        let Some((stage, kind)) = classify(workflow, step) else {
            continue;
        };
        let r = row(&mut rows, stage, compared_kind(kind));
        r.actual_usd += usd;
        if *usd > 0.0 {
            r.paid_steps += 1;
        }
    }
    rows.into_values().collect()
}

fn row<'a>(
    rows: &'a mut BTreeMap<(usize, CallKind), CostComparison>,
    stage: &str,
    kind: CallKind,
) -> &'a mut CostComparison {
    let i = STAGES.iter().position(|s| *s == stage).unwrap_or(0);
    rows.entry((i, kind)).or_insert_with(|| CostComparison {
        stage: stage.to_string(),
        kind,
        estimate_low_usd: 0.0,
        estimate_expected_usd: 0.0,
        estimate_high_usd: 0.0,
        actual_usd: 0.0,
        paid_steps: 0,
    })
}
