//! The composite image: one layer per iteration (location, characters, props, as the shot plan
//! orders them), each with at most three references, at most 20 iterations; each iteration is
//! verified by the knowledge store and the vision model together, at most 5 attempts.
//!
//! (Over 600 lines on purpose: the composite loop, its layers and its verification are one durable
//! sequence of journaled steps whose names are a contract; each phase is a function.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use slate_activities::BlobRef;
use slate_activities::model::*;
use slate_engine::{Attempt, Bounded, WfError, join2};

use super::Take;
use crate::error::IntoStep;
use crate::film::{image_with, plan_priced};
use crate::model::{
    CompositeIteration, ReferenceUsed, Scene, SceneStatus, UrlItem, VerificationResult,
};
use crate::qualification::view_for_angle;
use crate::repo::CharacterReference;
use slate_activities::pricing::CallKind;

/// Everything the composite needs from qualification (journaled as the `references` step's
/// result: its shape is a contract).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Refs {
    location: Option<(String, String)>,
    location_palette: Vec<String>,
    characters: BTreeMap<String, CharacterReference>,
    /// Lower-cased name → (reference, description, colour).
    props: BTreeMap<String, (String, String, String)>,
    pub(super) voices: BTreeMap<String, VoiceCasting>,
    style_mood: String,
}

/// The verification of one candidate image.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Verdict {
    passed: bool,
    results: Vec<VerificationResult>,
    reason: String,
}

/// The kinds of layer a shot plan composites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LayerKind {
    Location,
    Characters,
    Props,
}

impl LayerKind {
    fn parse(kind: &str) -> Result<Self, WfError> {
        match kind {
            "location" => Ok(LayerKind::Location),
            "characters" => Ok(LayerKind::Characters),
            "props" => Ok(LayerKind::Props),
            other => Err(WfError::failed(
                "bad_shot_plan",
                format!("the shot plan has a layer of unknown type `{other}`"),
            )),
        }
    }
}

/// The verified composite, and what a revision of it needs (the approval gate's rejection
/// redoes its last layer).
pub(super) struct Composite {
    pub(super) image: ImageOutput,
    /// The composite's iteration count: a revision is one more iteration of the same 20.
    iterations: Bounded,
    frame: Composition,
    last: CompositeStep,
    references: Vec<Reference>,
    /// What the last layer was drawn over.
    base: Option<ImageOutput>,
}

/// The scene as the planner reads it, with the spec's defaults for what people left empty.
pub(super) fn breakdown(scene: &Scene) -> SceneBreakdown {
    let or = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
    SceneBreakdown {
        scene_number: scene.scene_number,
        sequence_number: scene.sequence_number,
        screenplay_text: or(&scene.screenplay_text, ""),
        expected_duration: scene.expected_duration,
        dramatic_effect: or(&scene.dramatic_effect, ""),
        location: or(&scene.location, ""),
        time_of_day: or(&scene.time_of_day, "afternoon"),
        weather: or(&scene.weather, "clear"),
        camera_angle: or(&scene.camera_angle, "eye_level"),
        camera_shot: or(&scene.camera_shot, "medium"),
        camera_movement: or(&scene.camera_movement, "static"),
        lighting_type: or(&scene.lighting_type, "natural"),
        lighting_mood: or(&scene.lighting_mood, ""),
        pacing: or(&scene.pacing, "medium"),
        characters_present: scene.characters_present.clone(),
        props: scene.props.iter().map(|p| p.prop_name.clone()).collect(),
        dialogue: scene
            .dialogue
            .iter()
            .map(|d| DialogueLine {
                character: d.character.clone(),
                line: d.line.clone(),
                parenthetical: d.parenthetical.clone(),
            })
            .collect(),
        transition_in: or(&scene.transition_in, "cut"),
        transition_out: or(&scene.transition_out, "cut"),
    }
}

fn expectation(c: &Composition) -> Expectation {
    Expectation {
        location: c.location.clone(),
        characters: c.characters.iter().map(|f| f.name.clone()).collect(),
        props: c.props.iter().map(|p| p.name.clone()).collect(),
    }
}

fn reference(kind: ReferenceKind, url: &str, description: &str) -> Option<Reference> {
    BlobRef::new(url).ok().map(|blob| Reference {
        reference_type: kind,
        blob,
        reference_description: description.to_string(),
    })
}

impl Take<'_> {
    /// The qualified references the composite draws on: the location, the characters' sheets,
    /// the props, the voices and the style's mood.
    pub(super) async fn references(&self, scene: &Scene) -> Result<Refs, WfError> {
        let (f, s) = (self.film, self.slug);
        self.ctx
            .step("references", |_| async move {
                let mut r = Refs::default();
                let loc = scene.location.clone().unwrap_or_default();
                for l in f
                    .qualified(s, crate::names::collection::LOCATION_DETAILS)
                    .await
                    .step()?
                {
                    if l["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(&loc))
                    {
                        r.location = Some((
                            l["reference_url"].as_str().unwrap_or_default().to_string(),
                            l["description"].as_str().unwrap_or_default().to_string(),
                        ));
                        r.location_palette =
                            serde_json::from_value(l["palette"].clone()).unwrap_or_default();
                    }
                }
                // Each character as this scene shows them: a version made from this scene or
                // an earlier one replaces the qualified sheet.
                for c in f.repo.character_references(s).await.step()? {
                    r.characters.insert(
                        c.value.character_id.clone(),
                        c.value.for_scene(scene.scene_number),
                    );
                }
                for p in f
                    .qualified(s, crate::names::collection::PROP_CATALOG)
                    .await
                    .step()?
                {
                    let name = p["name"].as_str().unwrap_or_default().to_string();
                    r.props.insert(
                        name.to_lowercase(),
                        (
                            p["reference_url"].as_str().unwrap_or_default().to_string(),
                            p["description"].as_str().unwrap_or_default().to_string(),
                            p["color"].as_str().unwrap_or("#b08d57").to_string(),
                        ),
                    );
                }
                for v in f
                    .qualified(s, crate::names::collection::VOICE_CASTING)
                    .await
                    .step()?
                {
                    if let Ok(v) = serde_json::from_value::<VoiceCasting>(v) {
                        r.voices.insert(v.character_id.clone(), v);
                    }
                }
                r.style_mood = f
                    .qualified(s, crate::names::collection::VISUAL_GUIDELINES)
                    .await
                    .step()?
                    .first()
                    .and_then(|g| g["mood"].as_str().map(str::to_string))
                    .unwrap_or_default();
                Ok(r)
            })
            .await
    }

    /// Build the composite layer by layer, each iteration verified and recorded.
    pub(super) async fn composite(
        &self,
        scene: &Scene,
        shot: &ShotPlan,
        refs: &Refs,
    ) -> Result<Composite, WfError> {
        let mut frame = Composition {
            time_of_day: scene.time_of_day.clone(),
            lighting: scene.lighting_type.clone(),
            palette: if refs.location_palette.is_empty() {
                scene.color_palette.clone()
            } else {
                refs.location_palette.clone()
            },
            caption: scene.screenplay_text.clone().unwrap_or_default(),
            setting: refs.location.as_ref().map(|(_, desc)| desc.clone()),
            weather: scene.weather.clone(),
            camera_shot: Some(shot.camera_shot.clone()),
            camera_angle: Some(shot.camera_angle.clone()),
            ..Default::default()
        };
        let mut base: Option<ImageOutput> = None;
        let mut verdict = None;
        let mut iterations = self
            .ctx
            .bounded("composite", self.film.config.max_iterations);
        let mut used_views = BTreeMap::new();
        let mut prop_refs = vec![];
        let mut last = None;
        for step in &shot.composite_steps {
            let n = iterations.next().await?;
            let references = match LayerKind::parse(&step.kind)? {
                LayerKind::Location => self.location_layer(scene, refs, &mut frame),
                LayerKind::Characters => {
                    self.character_layer(scene, shot, step, refs, &mut frame, &mut used_views)
                }
                LayerKind::Props => self.prop_layer(step, refs, &mut frame, &mut prop_refs),
            };
            frame.layers.push(step.kind.clone());
            let (img, v, iteration) = self
                .iteration(
                    n,
                    scene,
                    step,
                    refs,
                    &frame,
                    references.clone(),
                    base.as_ref(),
                    None,
                )
                .await?;
            self.record_iteration(n, iteration).await?;
            last = Some((step.clone(), references, base.replace(img)));
            verdict = Some(v);
        }
        let (Some(image), Some((last, references, under))) = (base, last) else {
            return Err(WfError::failed(
                "empty_shot_plan",
                "the shot plan has no composite layers",
            ));
        };
        let results = verdict.map(|v| v.results).unwrap_or_default();
        let final_key = image.image.key().to_string();
        let location_ref = refs.location.as_ref().map(|l| l.0.clone());
        self.record("record/verified", move |s| {
            s.status = SceneStatus::VerifyingComposite;
            s.verification_results = results.clone();
            s.composite_final_url = Some(final_key.clone());
            s.generated_image_url = Some(final_key.clone());
            s.character_references_used = serde_json::to_value(&used_views).ok();
            s.location_reference_url = location_ref.clone();
            s.props_reference_urls = prop_refs
                .iter()
                .map(|u| UrlItem { url: u.clone() })
                .collect();
        })
        .await?;
        Ok(Composite {
            image,
            iterations,
            frame,
            last,
            references,
            base: under,
        })
    }

    /// Keep an iteration in the scene's history.
    async fn record_iteration(&self, n: u32, iteration: CompositeIteration) -> Result<(), WfError> {
        self.record(format!("record/composite/{n}"), move |s| {
            s.composite_iterations
                .retain(|it| it.iteration_number != iteration.iteration_number);
            s.composite_iterations.push(iteration.clone());
            s.composite_iterations.sort_by_key(|it| it.iteration_number);
            s.retry_count = s
                .composite_iterations
                .iter()
                .map(|it| it.attempts as i32 - 1)
                .sum();
        })
        .await
    }

    /// A person rejected the composite with `note`: its last layer is drawn again over what it
    /// was drawn over, with the note in the prompt, as one more iteration of the same bounded
    /// count (the 20-iteration limit holds across rejections), and verified as before.
    pub(super) async fn revise(
        &self,
        scene: &Scene,
        refs: &Refs,
        mut c: Composite,
        note: &str,
    ) -> Result<Composite, WfError> {
        let n = c.iterations.next().await?;
        let (img, v, iteration) = self
            .iteration(
                n,
                scene,
                &c.last,
                refs,
                &c.frame,
                c.references.clone(),
                c.base.as_ref(),
                Some(note),
            )
            .await?;
        self.record_iteration(n, iteration).await?;
        let key = img.image.key().to_string();
        let results = v.results;
        self.record(format!("record/revised/{n}"), move |s| {
            s.status = SceneStatus::VerifyingComposite;
            s.verification_results = results.clone();
            s.composite_final_url = Some(key.clone());
            s.generated_image_url = Some(key.clone());
        })
        .await?;
        c.image = img;
        Ok(c)
    }

    fn location_layer(
        &self,
        scene: &Scene,
        refs: &Refs,
        frame: &mut Composition,
    ) -> Vec<Reference> {
        frame.location = scene.location.clone();
        let mut out: Vec<Reference> = refs
            .location
            .as_ref()
            .and_then(|(url, desc)| reference(ReferenceKind::Location, url, desc))
            .into_iter()
            .collect();
        // Continuity: the previous scene's last frame seeds this one when the action stays in
        // the same place.
        if let Some(p) = self.previous
            && p.location == scene.location
        {
            out.extend(reference(
                ReferenceKind::Location,
                &p.last_frame,
                "the previous scene's last frame",
            ));
        }
        out
    }

    fn character_layer(
        &self,
        scene: &Scene,
        shot: &ShotPlan,
        step: &CompositeStep,
        refs: &Refs,
        frame: &mut Composition,
        used_views: &mut BTreeMap<String, String>,
    ) -> Vec<Reference> {
        let mut out = vec![];
        let count = frame.characters.len();
        for (k, cid) in step.subjects.iter().enumerate() {
            let Some(c) = refs.characters.get(cid) else {
                continue;
            };
            if frame.characters.iter().any(|f| &f.id == cid) {
                continue;
            }
            let view = view_for_angle(&shot.camera_angle, count + k);
            let expected = scene.characters_present.len();
            frame.place_character(cid, &c.name, view, &c.color, count + k + 1, expected);
            if let Some(f) = frame.characters.last_mut() {
                f.looks = c.looks.clone();
            }
            if let Some(v) = c.references_360.get(view) {
                out.extend(reference(ReferenceKind::Character, &v.url, &v.description));
            }
            used_views.insert(cid.clone(), view.to_string());
        }
        out
    }

    fn prop_layer(
        &self,
        step: &CompositeStep,
        refs: &Refs,
        frame: &mut Composition,
        prop_refs: &mut Vec<String>,
    ) -> Vec<Reference> {
        let mut out = vec![];
        for name in &step.subjects {
            if frame
                .props
                .iter()
                .any(|p| p.name.eq_ignore_ascii_case(name))
            {
                continue;
            }
            let (url, desc, color) = refs
                .props
                .get(&name.to_lowercase())
                .cloned()
                .unwrap_or_default();
            frame.place_prop(name, if color.is_empty() { "#b08d57" } else { &color });
            if let Some(r) = reference(ReferenceKind::Prop, &url, &desc) {
                prop_refs.push(r.blob.key().to_string());
                out.push(r);
            }
        }
        out
    }

    /// One iteration: the layer drawn over the previous one, verified, at most 5 attempts.
    #[allow(clippy::too_many_arguments)]
    async fn iteration(
        &self,
        n: u32,
        scene: &Scene,
        step: &CompositeStep,
        refs: &Refs,
        frame: &Composition,
        mut references: Vec<Reference>,
        base: Option<&ImageOutput>,
        note: Option<&str>,
    ) -> Result<(ImageOutput, Verdict, CompositeIteration), WfError> {
        // Our rule, enforced where requests are made: never more than three references.
        references.truncate(MAX_REFERENCES);
        let mut prompt = format!(
            "{}. Scene: {}, {}, {} light. Keep everything already in the image. {}",
            step.description,
            scene.location.clone().unwrap_or_default(),
            scene.time_of_day.clone().unwrap_or_default(),
            scene.lighting_type.clone().unwrap_or_default(),
            refs.style_mood
        );
        if let Some(note) = note {
            prompt.push_str(&format!(
                " A reviewer rejected the previous version of this image: {note}"
            ));
        }
        let base = base.map(|b| b.image.clone());
        let details = Arc::new(Mutex::new(Vec::<Value>::new()));
        let (img, verdict, attempts) = self
            .ctx
            .attempts(format!("composite/{n}/verify"), self.film.config.max_attempts, |attempt| {
                let req = ImageRequest {
                    prompt: prompt.clone(),
                    base: base.clone(),
                    references: references.clone(),
                    composition: frame.clone(),
                    output_key: self.key(&format!("composite-{n}-{attempt}.png")),
                    aspect_ratio: "16:9".into(),
                    seed: Some((scene.scene_number as u64) * 1000 + n as u64 * 10 + attempt as u64),
                };
                let name = format!("composite/{n}/a{attempt}");
                let details = details.clone();
                async move {
                    let out = image_with(self.ctx, self.film, &name, req, self.priority).await?;
                    let v = self.verify(&format!("{name}/verify"), &out, frame).await?;
                    details
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(json!({"attempt": attempt, "image": out.image, "passed": v.passed, "results": v.results, "reason": v.reason}));
                    Ok(if v.passed {
                        Attempt::Done((out, v, attempt))
                    } else {
                        Attempt::Retry(v.reason)
                    })
                }
            })
            .await?;
        let iteration = CompositeIteration {
            iteration_number: n,
            layer: step.kind.clone(),
            references_used: references
                .iter()
                .map(|r| ReferenceUsed {
                    reference_type: serde_json::to_value(r.reference_type)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    reference_url: r.blob.key().to_string(),
                    reference_description: r.reference_description.clone(),
                })
                .collect(),
            generated_url: img.image.key().to_string(),
            verification_passed: true,
            verification_details: json!(*details.lock().unwrap_or_else(|e| e.into_inner())),
            attempts,
            timestamp: Some(Utc::now()),
        };
        Ok((img, verdict, iteration))
    }

    /// The two-step verification: the knowledge store and the vision model, in parallel; both
    /// must pass.
    async fn verify(
        &self,
        name: &str,
        img: &ImageOutput,
        comp: &Composition,
    ) -> Result<Verdict, WfError> {
        let f = self.film;
        let expect = expectation(comp);
        let who = if expect.characters.is_empty() {
            "the scene".to_string()
        } else {
            expect.characters.join(", ")
        };
        let place = expect
            .location
            .clone()
            .unwrap_or_else(|| "the location".into());
        let question = format!(
            "Does this image correctly show {who} in {place} during {}? Verify character appearances match their references. Check for consistency with story bible rules.",
            comp.time_of_day.clone().unwrap_or_else(|| "the day".into()),
        );
        let kq = KnowledgeQuery {
            project: self.slug.to_string(),
            query: question.clone(),
            image: Some(img.image.clone()),
            manifest: img.manifest.clone(),
            expect: expect.clone(),
        };
        let vq = VisionQuery {
            image: img.image.clone(),
            manifest: img.manifest.clone(),
            question: format!(
                "Is this {place} with {}{}?",
                if expect.characters.is_empty() {
                    "no one".to_string()
                } else {
                    expect.characters.join(" and ")
                },
                if expect.props.is_empty() {
                    String::new()
                } else {
                    format!(" and {}", expect.props.join(", "))
                }
            ),
            expect,
        };
        let threshold = f.config.knowledge_threshold;
        let (knowledge, vision) = (f.studio.knowledge.clone(), f.studio.vision.clone());
        let (k, v) = join2(
            plan_priced(
                self.ctx,
                format!("{name}/knowledge"),
                self.film.price(CallKind::Knowledge),
                move || async move { knowledge.query(&kq).await },
            ),
            plan_priced(
                self.ctx,
                format!("{name}/vision"),
                self.film.price(CallKind::Vision),
                move || async move { vision.ask(&vq).await },
            ),
        )
        .await?;
        let now = Some(Utc::now());
        let k_ok = k.confidence > threshold;
        let mut reasons = vec![];
        if !k_ok {
            reasons.push(format!(
                "knowledge confidence {:.2} (needs > {threshold}): {}",
                k.confidence, k.answer
            ));
        }
        if !v.passed {
            reasons.push(format!("vision: {}", v.answer));
        }
        Ok(Verdict {
            passed: k_ok && v.passed,
            results: vec![
                VerificationResult {
                    verification_type: "brain_query".into(),
                    query: question,
                    result: k.answer.clone(),
                    passed: k_ok,
                    confidence: k.confidence,
                    timestamp: now,
                },
                VerificationResult {
                    verification_type: "vision_model".into(),
                    query: "vision".into(),
                    result: v.answer.clone(),
                    passed: v.passed,
                    confidence: v.confidence,
                    timestamp: now,
                },
            ],
            reason: reasons.join("; "),
        })
    }
}
