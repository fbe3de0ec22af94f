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

use serde::{Deserialize, Serialize};
use slate_activities::local::LocalPlanner;
use slate_activities::model::*;
use slate_activities::pricing::{CHARS_PER_TOKEN, CallKind, Price, Prices};
use slate_activities::remote::openrouter::prompt;
use slate_activities::{Planner, ShotContext};

use crate::error::Result;
use crate::film::Film;
use crate::model::Scene;
use crate::slug::Slug;

/// One kind of call in one stage.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
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
struct Counts {
    calls: BTreeMap<(u8, CallKind), (f64, f64)>,
    /// Dollars of the language-model calls per stage, priced by their tokens.
    llm_usd: [f64; 3],
}

const STAGES: [&str; 3] = ["qualification", "scenes", "film"];

/// Share of composite attempts expected to be rejected and made again (one in four).
const EXPECTED_RETRIES: f64 = 0.25;

impl Counts {
    fn add(&mut self, stage: u8, kind: CallKind, low: f64, high: f64) {
        let e = self.calls.entry((stage, kind)).or_default();
        e.0 += low;
        e.1 += high;
    }

    /// One language-model call: `prompt` is the text the planner will send and `answer` what
    /// the local planner answers in its place (the size of a model's answer).
    fn llm(&mut self, stage: u8, tokens: &Tokens<'_>, prompt: &str, answer: &impl Serialize) {
        self.add(stage, CallKind::Llm, 1.0, 1.0);
        let Some(model) = tokens.model else { return };
        let chars_in = (prompt::SYSTEM.len() + prompt.len()) as f64;
        let chars_out = serde_json::to_string(answer).map_or(0, |a| a.len()) as f64;
        self.llm_usd[stage as usize] += tokens.prices.llm_call(
            model,
            chars_in / CHARS_PER_TOKEN,
            chars_out / CHARS_PER_TOKEN,
        );
    }
}

/// How language-model calls are priced: the configured model (none: the local planner, free).
struct Tokens<'a> {
    prices: &'a Prices,
    model: Option<&'a str>,
}

/// The calls one scene makes after its shot plan: every composite layer (image, knowledge and
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
    let style = local.style_guide(&gather).await?.value;
    let voices = local.voices(&profiles).await?.value;
    let tokens = Tokens {
        prices: &prices,
        model: settings.openrouter.as_ref().map(|o| o.model.as_str()),
    };
    // Qualification: eight planner calls (profiles, bible, style, screenplay, breakdown,
    // locations, props, casting), each priced by its prompt and answer; per character a
    // master image and six described views; a plate per location and a reference per prop.
    c.llm(0, &tokens, &prompt::characters(&gather), &profiles);
    c.llm(0, &tokens, &prompt::story_bible(&gather, &profiles), &bible);
    c.llm(0, &tokens, &prompt::style_guide(&gather), &style);
    let sp_prompt = prompt::screenplay(&gather, &bible, &profiles);
    c.llm(0, &tokens, &sp_prompt, &screenplay);
    let bd_prompt = prompt::breakdown(&screenplay, &bible, &profiles);
    c.llm(0, &tokens, &bd_prompt, &breakdown);
    c.llm(0, &tokens, &prompt::locations(&gather, &bible), &locations);
    c.llm(0, &tokens, &prompt::props(&gather, &screenplay), &props);
    c.llm(0, &tokens, &prompt::voices(&profiles), &voices);
    let n = profiles.len() as f64;
    c.add(0, CallKind::Image, n, n);
    c.add(0, CallKind::ImageEdit, 6.0 * n, 6.0 * n);
    c.add(0, CallKind::Vision, 6.0 * n, 6.0 * n);
    let plates = (locations.len() + props.len()) as f64;
    c.add(0, CallKind::Image, plates, plates);

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
            c.llm(1, &tokens, &prompt::shot_plan(b, &shot_ctx), &plan);
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
            c.llm(1, &tokens, &prompt::shot_plan(&b, &shot_ctx), &plan);
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
    // The film: one stitch, one mix, and its music where a provider makes it.
    c.add(2, CallKind::Media, 2.0, 2.0);
    if f.studio.music.is_some() {
        let project = f.repo.project(slug).await?;
        let lengths: Vec<f64> = if scenes.is_empty() {
            breakdown.iter().map(|b| b.expected_duration).collect()
        } else {
            scenes.iter().map(|s| s.expected_duration).collect()
        };
        let (low, high) = music_minutes(&lengths, project.sound.music);
        c.add(2, CallKind::Music, low, high);
    }

    let lines = priced_lines(c, &prices, settings);
    let stages = stages_of(&lines);
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

/// Minutes of music a film of scenes of `lengths` seconds is made with: at least the film
/// (one cue over it all), at most a cue a scene (each asked for at least the model's 10 s and
/// with its fade out); none when the project's music is off.
fn music_minutes(lengths: &[f64], music_on: bool) -> (f64, f64) {
    if !music_on || lengths.is_empty() {
        return (0.0, 0.0);
    }
    let film: f64 = lengths.iter().sum();
    let per_scene: f64 = lengths
        .iter()
        .map(|l| {
            (l + slate_activities::local::music::CUE_FADE)
                .ceil()
                .max(10.0)
        })
        .sum();
    (film / 60.0, per_scene.max(film) / 60.0)
}

/// Each stage's and kind's calls, priced (an LLM call at the average of this project's calls).
fn priced_lines(
    c: Counts,
    prices: &Prices,
    settings: &slate_activities::config::ProviderSettings,
) -> Vec<EstimateLine> {
    let mut lines = vec![];
    for ((stage, kind), (low, high)) in c.calls {
        if low == 0.0 && high == 0.0 {
            continue;
        }
        let mut price = prices.of(settings, kind);
        if kind == CallKind::Llm && price.unit_usd > 0.0 {
            // The average of this project's calls, each priced by its tokens.
            price.unit_usd = c.llm_usd[stage as usize] / low;
        }
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
    lines
}

/// The lines summed per stage.
fn stages_of(lines: &[EstimateLine]) -> Vec<StageEstimate> {
    // (0.0 + : an empty sum of floats is -0.0.)
    let total = |s: &str, f: fn(&EstimateLine) -> f64| {
        0.0 + lines.iter().filter(|l| l.stage == s).map(f).sum::<f64>()
    };
    STAGES
        .iter()
        .map(|s| StageEstimate {
            stage: s.to_string(),
            low_usd: total(s, |l| l.low_usd),
            high_usd: total(s, |l| l.high_usd),
            expected_usd: total(s, |l| l.expected_usd),
        })
        .collect()
}

/// The stage and kind of call of a journaled step, by its workflow and name (step names are a
/// journal contract, so this reading stays valid for old runs). `None` for steps that call no
/// provider.
pub fn classify(workflow: &str, step: &str) -> Option<(&'static str, CallKind)> {
    use crate::names::{film, qualify, scene, workflow as wf};
    let stage = if workflow == wf::QUALIFY || workflow == wf::CHARACTER_VERSION {
        "qualification"
    } else if workflow == wf::SCENE || workflow == wf::CHAIN {
        "scenes"
    } else if workflow == wf::GENERATE || workflow == wf::STITCH || workflow == wf::REMIX {
        "film"
    } else {
        return None;
    };
    let last = step.rsplit('/').next().unwrap_or(step);
    let kind = if step == scene::VIDEO_SUBMIT || step.starts_with(scene::VIDEO_POLL_PREFIX) {
        CallKind::Video
    } else if step.starts_with(crate::names::sound::MUSIC)
        && (last == "submit" || last.starts_with("poll"))
    {
        CallKind::Music
    } else if step == crate::names::sound::MIX {
        CallKind::Media
    } else if last == "submit" || last == "await" {
        CallKind::Image
    } else if last == "describe" || last == "vision" {
        CallKind::Vision
    } else if last == "knowledge" {
        CallKind::Knowledge
    } else if step.starts_with(scene::VOICE_PREFIX) {
        CallKind::Voice
    } else if [scene::LAST_FRAME, film::STITCH, film::FINISH].contains(&step) {
        CallKind::Media
    } else if step == scene::SHOT_PLAN || qualify::PLANNER_STEPS.contains(&step) {
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
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
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
