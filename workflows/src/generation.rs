//! Scene generation and the final film (the spec's phases 3 and 4).
//!
//! A scene, as straight-line code: the shot agent plans it; the composite image is built one
//! layer per iteration (at most three references each, at most 20 iterations), each iteration
//! verified by the knowledge store and the vision model together (at most 5 attempts); the
//! continuity agent compares it with the previous scene's last frame while the video is
//! submitted; the video is awaited by webhook with a polling fallback and a deadline, fitted to
//! the scene's length, given its voices; its last frame is extracted for the next scene.
//!
//! The film runs its scenes in order as child runs, then stitches the clips with their
//! transitions. A scene that fails stops the film, which then waits for that scene to be retried
//! by a person (nothing already generated is generated again) instead of failing with it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use slate_activities::model::*;
use slate_activities::{BlobRef, Spend};
use slate_engine::{Attempt, Ctx, RetryPolicy, StepOptions, WfError, Workflow, join2};

use crate::error::{FilmError, IntoStep};
use crate::film::{Film, image, key, paid, plan, record_failure, report};
use crate::model::{
    CompositeIteration, ContinuityCheck, ProjectStatus, ReferenceUsed, Scene, SceneStatus, UrlItem,
    VerificationResult,
};
use crate::qualification::{shot_context, view_for_angle};
use crate::repo::CharacterReference;
use crate::slug::Slug;

/// The previous scene, as the next one needs it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PreviousScene {
    /// Its id.
    pub scene_id: String,
    /// Its last frame (blob key).
    pub last_frame: String,
    /// Where it was.
    pub location: Option<String>,
    /// When.
    pub time_of_day: Option<String>,
    /// Who was in it.
    pub characters: Vec<String>,
    /// Its clip (blob key), for video-to-video.
    #[serde(default)]
    pub video: Option<String>,
}

/// Input of [`SceneGeneration`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SceneInput {
    /// Project.
    pub project: Slug,
    /// Scene id.
    pub scene_id: String,
    /// The scene before it, if any.
    pub previous: Option<PreviousScene>,
}

/// A finished scene.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SceneOutput {
    /// Scene id.
    pub scene_id: String,
    /// The clip (blob key).
    pub video: String,
    /// Its last frame (blob key).
    pub last_frame: String,
    /// Its length, seconds.
    pub duration: f64,
}

/// The scene workflow.
#[derive(Clone)]
pub struct SceneGeneration(pub Arc<Film>);

/// Everything the composite needs from qualification.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Refs {
    location: Option<(String, String)>,
    location_palette: Vec<String>,
    characters: BTreeMap<String, CharacterReference>,
    props: BTreeMap<String, (String, String, String)>,
    voices: BTreeMap<String, VoiceCasting>,
    style_mood: String,
}

/// The verification of one candidate image.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Verdict {
    passed: bool,
    results: Vec<VerificationResult>,
    reason: String,
}

fn expectation(c: &Composition) -> Expectation {
    Expectation {
        location: c.location.clone(),
        characters: c.characters.iter().map(|f| f.name.clone()).collect(),
        props: c.props.iter().map(|p| p.name.clone()).collect(),
    }
}

impl SceneGeneration {
    async fn load(&self, ctx: &Ctx, slug: &Slug, scene: &Scene) -> Result<Refs, WfError> {
        let (f, s, sc) = (self.0.clone(), slug.clone(), scene.clone());
        ctx.step("references", move |_| async move {
            let mut r = Refs::default();
            let loc = sc.location.clone().unwrap_or_default();
            for l in f.qualified(&s, "location_details").await.step()? {
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
            for c in f.repo.character_references(&s).await.step()? {
                r.characters.insert(c.value.character_id.clone(), c.value);
            }
            for p in f.qualified(&s, "prop_catalog").await.step()? {
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
            for v in f.qualified(&s, "voice_casting").await.step()? {
                if let Ok(v) = serde_json::from_value::<VoiceCasting>(v) {
                    r.voices.insert(v.character_id.clone(), v);
                }
            }
            r.style_mood = f
                .qualified(&s, "visual_guidelines")
                .await
                .step()?
                .first()
                .and_then(|g| g["mood"].as_str().map(str::to_string))
                .unwrap_or_default();
            Ok(r)
        })
        .await
    }

    /// The two-step verification: the knowledge store and the vision model, in parallel; both
    /// must pass.
    async fn verify(
        &self,
        ctx: &Ctx,
        slug: &Slug,
        name: &str,
        img: &ImageOutput,
        comp: &Composition,
    ) -> Result<Verdict, WfError> {
        let f = &self.0;
        let expect = expectation(comp);
        let question = format!(
            "Does this image correctly show {} in {} during {}? Verify character appearances match their references. Check for consistency with story bible rules.",
            if expect.characters.is_empty() {
                "the scene".to_string()
            } else {
                expect.characters.join(", ")
            },
            expect
                .location
                .clone()
                .unwrap_or_else(|| "the location".into()),
            comp.time_of_day.clone().unwrap_or_else(|| "the day".into()),
        );
        let kq = KnowledgeQuery {
            project: slug.to_string(),
            query: question.clone(),
            image: Some(img.image.clone()),
            manifest: img.manifest.clone(),
            expect: expect.clone(),
        };
        let vq = VisionQuery {
            image: img.image.clone(),
            manifest: img.manifest.clone(),
            question: format!(
                "Is this {} with {}{}?",
                expect
                    .location
                    .clone()
                    .unwrap_or_else(|| "the location".into()),
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
        let (kname, vname) = (format!("{name}/knowledge"), format!("{name}/vision"));
        let (k, v) = join2(
            plan(
                ctx,
                kname,
                move || async move { knowledge.query(&kq).await },
            ),
            plan(ctx, vname, move || async move { vision.ask(&vq).await }),
        )
        .await?;
        let now = Some(Utc::now());
        let k_ok = k.confidence > threshold;
        let results = vec![
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
        ];
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
            results,
            reason: reasons.join("; "),
        })
    }

    async fn body(&self, ctx: &Ctx, input: &SceneInput) -> Result<SceneOutput, WfError> {
        let f = self.0.clone();
        let slug = &input.project;
        let id = input.scene_id.clone();
        // The scene as it stands when generation starts (people may have edited it).
        let (fr, i2) = (f.clone(), id.clone());
        let (started_at, scene): (i64, Scene) = ctx
            .step("start", move |_| async move {
                let s = fr
                    .repo
                    .modify_scene(&i2, |s| {
                        s.status = SceneStatus::GeneratingComposite;
                        s.error_message = None;
                    })
                    .await
                    .step()?;
                Ok((Utc::now().timestamp_millis(), s))
            })
            .await?;
        let breakdown = SceneBreakdown {
            scene_number: scene.scene_number,
            sequence_number: scene.sequence_number,
            screenplay_text: scene.screenplay_text.clone().unwrap_or_default(),
            expected_duration: scene.expected_duration,
            dramatic_effect: scene.dramatic_effect.clone().unwrap_or_default(),
            location: scene.location.clone().unwrap_or_default(),
            time_of_day: scene
                .time_of_day
                .clone()
                .unwrap_or_else(|| "afternoon".into()),
            weather: scene.weather.clone().unwrap_or_else(|| "clear".into()),
            camera_angle: scene
                .camera_angle
                .clone()
                .unwrap_or_else(|| "eye_level".into()),
            camera_shot: scene.camera_shot.clone().unwrap_or_else(|| "medium".into()),
            camera_movement: scene
                .camera_movement
                .clone()
                .unwrap_or_else(|| "static".into()),
            lighting_type: scene
                .lighting_type
                .clone()
                .unwrap_or_else(|| "natural".into()),
            lighting_mood: scene.lighting_mood.clone().unwrap_or_default(),
            pacing: scene.pacing.clone().unwrap_or_else(|| "medium".into()),
            characters_present: scene.characters_present.clone(),
            props: scene.props.iter().map(|p| p.prop_name.clone()).collect(),
            dialogue: scene
                .dialogue
                .iter()
                .map(|d| DialogueLine {
                    character: d.character.clone(),
                    line: d.line.clone(),
                })
                .collect(),
            transition_in: scene.transition_in.clone().unwrap_or_else(|| "cut".into()),
            transition_out: scene.transition_out.clone().unwrap_or_else(|| "cut".into()),
        };

        // 1. The shot agent.
        let (fr, s2, b2) = (f.clone(), slug.clone(), breakdown.clone());
        let shot: ShotPlan = plan(ctx, "shot-plan", move || async move {
            let sc = shot_context(&fr, &s2).await.map_err(|e| {
                slate_activities::ActivityError::new(
                    "film",
                    slate_activities::ErrorKind::Io,
                    e.to_string(),
                )
            })?;
            fr.studio.planner.shot_plan(&b2, &sc).await
        })
        .await?;
        let (fr, i2, sh) = (f.clone(), id.clone(), shot.clone());
        ctx.step("record/shot-plan", move |_| async move {
            fr.repo
                .modify_scene(&i2, |s| {
                    s.shot_agent_decisions = serde_json::to_value(&sh).ok();
                    s.camera_angle = Some(sh.camera_angle.clone());
                    s.camera_shot = Some(sh.camera_shot.clone());
                    s.camera_movement = Some(sh.camera_movement.clone());
                    s.pacing = Some(sh.pacing.clone());
                    s.status = SceneStatus::GeneratingComposite;
                })
                .await
                .step()
                .map(|_| ())
        })
        .await?;
        let refs = self.load(ctx, slug, &scene).await?;

        // 2. The composite, one layer per iteration.
        let mut composition = Composition {
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
        let mut iterations = ctx.bounded("composite", f.config.max_iterations);
        let mut used_views = BTreeMap::new();
        let mut prop_refs = vec![];
        let mut last_verdict = None;
        for step in &shot.composite_steps {
            let n = iterations.next().await?;
            let mut references = vec![];
            match step.kind.as_str() {
                "location" => {
                    composition.location = scene.location.clone();
                    if let Some((url, desc)) = &refs.location
                        && let Ok(b) = BlobRef::new(url)
                    {
                        references.push(Reference {
                            reference_type: ReferenceKind::Location,
                            blob: b,
                            reference_description: desc.clone(),
                        });
                    }
                    // Continuity: the previous scene's last frame seeds this one when the action
                    // stays in the same place.
                    if let Some(p) = &input.previous
                        && p.location == scene.location
                        && let Ok(b) = BlobRef::new(&p.last_frame)
                    {
                        references.push(Reference {
                            reference_type: ReferenceKind::Location,
                            blob: b,
                            reference_description: "the previous scene's last frame".into(),
                        });
                    }
                }
                "characters" => {
                    let count = composition.characters.len();
                    for (k, cid) in step.subjects.iter().enumerate() {
                        let Some(c) = refs.characters.get(cid) else {
                            continue;
                        };
                        if composition.characters.iter().any(|f| &f.id == cid) {
                            continue;
                        }
                        let view = view_for_angle(&shot.camera_angle, count + k);
                        let slots = (count + k + 1) as f32;
                        let x = 0.15
                            + 0.7
                                * ((slots - 0.5) / (scene.characters_present.len().max(1) as f32))
                                    .min(1.0);
                        composition.characters.push(FigureSpec {
                            id: cid.clone(),
                            name: c.name.clone(),
                            x,
                            view: view.into(),
                            color: c.color.clone(),
                        });
                        if let Some(v) = c.references_360.get(view)
                            && let Ok(b) = BlobRef::new(&v.url)
                        {
                            references.push(Reference {
                                reference_type: ReferenceKind::Character,
                                blob: b,
                                reference_description: v.description.clone(),
                            });
                        }
                        used_views.insert(cid.clone(), view.to_string());
                    }
                }
                "props" => {
                    for name in &step.subjects {
                        if composition
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
                        // Props stand in a row along the front of the frame, never on each
                        // other (the vision check looks for each one where it stands).
                        let slot = composition.props.len();
                        let x = 0.08 + 0.14 * (slot % 7) as f32;
                        composition.props.push(PropSpec {
                            name: name.clone(),
                            x,
                            color: if color.is_empty() {
                                "#b08d57".into()
                            } else {
                                color
                            },
                        });
                        if let Ok(b) = BlobRef::new(&url) {
                            references.push(Reference {
                                reference_type: ReferenceKind::Prop,
                                blob: b.clone(),
                                reference_description: desc,
                            });
                            prop_refs.push(b.key().to_string());
                        }
                    }
                }
                other => {
                    return Err(WfError::failed(
                        "bad_shot_plan",
                        format!("the shot plan has a layer of unknown type `{other}`"),
                    ));
                }
            }
            // Our rule, enforced where requests are made: never more than three references.
            references.truncate(MAX_REFERENCES);
            composition.layers.push(step.kind.clone());
            let comp_n = composition.clone();
            let prompt = format!(
                "{}. Scene: {}, {}, {} light. Keep everything already in the image. {}",
                step.description,
                scene.location.clone().unwrap_or_default(),
                scene.time_of_day.clone().unwrap_or_default(),
                scene.lighting_type.clone().unwrap_or_default(),
                refs.style_mood
            );
            let base_img = base.as_ref().map(|b| b.image.clone());
            let limit = format!("composite/{n}/verify");
            let details = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
            let film: &Film = &f;
            let (img, verdict, attempts) = ctx
                .attempts(limit, f.config.max_attempts, |attempt| {
                    let req = ImageRequest {
                        prompt: prompt.clone(),
                        base: base_img.clone(),
                        references: references.clone(),
                        composition: comp_n.clone(),
                        output_key: key(slug, &format!("scenes/{id}/composite-{n}-{attempt}.png")),
                        aspect_ratio: "16:9".into(),
                        seed: Some((scene.scene_number as u64) * 1000 + n as u64 * 10 + attempt as u64),
                    };
                    let name = format!("composite/{n}/a{attempt}");
                    let comp_n = comp_n.clone();
                    let details = details.clone();
                    async move {
                        let out = image(ctx, film, &name, req).await?;
                        let v = self.verify(ctx, slug, &format!("{name}/verify"), &out, &comp_n).await?;
                        details
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(json!({"attempt": attempt, "image": out.image, "passed": v.passed, "results": v.results, "reason": v.reason}));
                        Ok(if v.passed { Attempt::Done((out, v, attempt)) } else { Attempt::Retry(v.reason) })
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
            let (fr, i2) = (f.clone(), id.clone());
            ctx.step(format!("record/composite/{n}"), move |_| async move {
                fr.repo
                    .modify_scene(&i2, |s| {
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
                    .step()
                    .map(|_| ())
            })
            .await?;
            base = Some(img);
            last_verdict = Some(verdict);
        }
        let Some(final_image) = base else {
            return Err(WfError::failed(
                "empty_shot_plan",
                "the shot plan has no composite layers",
            ));
        };
        let verdict = last_verdict.unwrap_or(Verdict {
            passed: true,
            results: vec![],
            reason: String::new(),
        });
        let (fr, i2, fi, vr, uv, pr) = (
            f.clone(),
            id.clone(),
            final_image.clone(),
            verdict.results.clone(),
            used_views.clone(),
            prop_refs.clone(),
        );
        let loc_ref = refs.location.as_ref().map(|l| l.0.clone());
        ctx.step("record/verified", move |_| async move {
            fr.repo
                .modify_scene(&i2, |s| {
                    s.status = SceneStatus::VerifyingComposite;
                    s.verification_results = vr.clone();
                    s.composite_final_url = Some(fi.image.key().to_string());
                    s.generated_image_url = Some(fi.image.key().to_string());
                    s.character_references_used = serde_json::to_value(&uv).ok();
                    s.location_reference_url = loc_ref.clone();
                    s.props_reference_urls =
                        pr.iter().map(|u| UrlItem { url: u.clone() }).collect();
                })
                .await
                .step()
                .map(|_| ())
        })
        .await?;

        // 3. Continuity (in parallel with the video's submission).
        let duration = shot.duration.clamp(MIN_SCENE_SECONDS, MAX_SCENE_SECONDS);
        let prompt = self.video_prompt(&scene, &shot, duration).await;
        let req = VideoRequest {
            project: slug.to_string(),
            scene_id: id.clone(),
            prompt,
            mode: match scene.video_mode.as_deref() {
                Some("text_to_video") => VideoMode::TextToVideo,
                Some("video_to_video") => VideoMode::VideoToVideo,
                _ => VideoMode::ImageToVideo,
            },
            start_image: Some(final_image.image.clone()),
            // Video-to-video continues from the previous scene's clip.
            source_video: input
                .previous
                .as_ref()
                .and_then(|p| p.video.as_ref())
                .and_then(|v| BlobRef::new(v).ok()),
            duration,
            camera_movement: shot.camera_movement.clone(),
            callback_url: f.studio.settings.webhook_url(
                &slate_activities::remote::services::webhook_path(
                    slate_activities::remote::services::VIDEO_COMPLETE,
                ),
            ),
            output_key: key(slug, &format!("scenes/{id}/video-raw.mp4")),
        };
        let continuity = self.continuity(ctx, &id, &final_image, input.previous.as_ref(), &scene);
        let (fr, i2, rq, fsub) = (f.clone(), id.clone(), req.clone(), f.clone());
        let video_prompt = req.prompt.clone();
        let submit = async move {
            ctx.step("record/generating-video", move |_| async move {
                fr.repo
                    .modify_scene(&i2, |s| {
                        s.status = SceneStatus::GeneratingVideo;
                        s.text_prompt = Some(video_prompt.clone());
                    })
                    .await
                    .step()
                    .map(|_| ())
            })
            .await?;
            let (video, r2) = (fsub.studio.video.clone(), rq.clone());
            ctx.step_with(
                "video/submit",
                paid().concurrency("video"),
                move |_| async move { video.submit(&r2).await.step() },
            )
            .await
        };
        let (_, job) = join2(continuity, submit).await?;

        // 4. The video: awaited by webhook, with polling as the fallback and a deadline.
        let output = self.await_video(ctx, &job, &req).await?;
        let fitted = if output.duration > duration + 0.05 {
            let (media, v, k) = (
                f.studio.media.clone(),
                output.video.clone(),
                key(slug, &format!("scenes/{id}/video-fitted.mp4")),
            );
            ctx.step("video/trim", move |_| async move {
                media.trim(&v, duration, &k).await.step()
            })
            .await?
        } else {
            output.video.clone()
        };
        let clip = self
            .voices(ctx, slug, &id, &scene, &refs, fitted, duration)
            .await?;

        // 5. The last frame, for the next scene.
        let (media, c, k) = (
            f.studio.media.clone(),
            clip.clone(),
            key(slug, &format!("scenes/{id}/last-frame.png")),
        );
        let (last_frame, actual): (BlobRef, f64) = ctx
            .step("last-frame", move |_| async move {
                let lf = media.last_frame(&c, &k).await.step()?;
                let d = media.length(&c).await.step()?;
                Ok((lf, d))
            })
            .await?;
        let (fr, i2, c2, lf2) = (f.clone(), id.clone(), clip.clone(), last_frame.clone());
        ctx.step("record/completed", move |_| async move {
            fr.repo
                .modify_scene(&i2, |s| {
                    s.status = SceneStatus::Completed;
                    s.generated_video_url = Some(c2.key().to_string());
                    s.last_frame_url = Some(lf2.key().to_string());
                    s.actual_duration = Some(actual);
                    s.processing_time =
                        Some((Utc::now().timestamp_millis() - started_at) as f64 / 1000.0);
                    s.error_message = None;
                })
                .await
                .step()
                .map(|_| ())
        })
        .await?;
        Ok(SceneOutput {
            scene_id: id,
            video: clip.key().to_string(),
            last_frame: last_frame.key().to_string(),
            duration: actual,
        })
    }

    async fn video_prompt(&self, scene: &Scene, shot: &ShotPlan, duration: f64) -> String {
        let vars: BTreeMap<String, String> = [
            (
                "text_prompt",
                scene.screenplay_text.clone().unwrap_or_default(),
            ),
            ("camera_angle", shot.camera_angle.clone()),
            ("camera_shot", shot.camera_shot.clone()),
            ("camera_movement", shot.camera_movement.clone()),
            (
                "lighting_type",
                scene
                    .lighting_type
                    .clone()
                    .unwrap_or_else(|| "natural".into()),
            ),
            (
                "lighting_mood",
                scene.lighting_mood.clone().unwrap_or_default(),
            ),
            ("duration", format!("{duration}")),
            ("pacing", shot.pacing.clone()),
            (
                "dramatic_effect",
                scene.dramatic_effect.clone().unwrap_or_default(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let name = scene
            .prompt_template
            .clone()
            .unwrap_or_else(|| "Scene Video".into());
        match self
            .0
            .repo
            .template(&name)
            .await
            .and_then(|t| t.render(&vars))
        {
            Ok(p) => p,
            Err(_) => format!(
                "{} Camera: {}, {}. {duration} seconds.",
                vars["text_prompt"], shot.camera_shot, shot.camera_movement
            ),
        }
    }

    async fn continuity(
        &self,
        ctx: &Ctx,
        id: &str,
        current: &ImageOutput,
        previous: Option<&PreviousScene>,
        scene: &Scene,
    ) -> Result<(), WfError> {
        let (f, i2, cur, prev, sc) = (
            self.0.clone(),
            id.to_string(),
            current.image.clone(),
            previous.cloned(),
            scene.clone(),
        );
        ctx.step("continuity", move |_| async move {
            let now = Some(Utc::now());
            let checks = match prev {
                None => vec![ContinuityCheck {
                    check_type: "first_scene".into(),
                    passed: true,
                    notes: "the first scene has nothing to continue from".into(),
                    timestamp: now,
                }],
                Some(p) => {
                    let a = f.studio.blobs.get(&cur).await.step()?;
                    let b = f
                        .studio
                        .blobs
                        .get(&BlobRef::new(&p.last_frame).step()?)
                        .await
                        .step()?;
                    // Image analysis is CPU work: off the async threads.
                    tokio::task::spawn_blocking(move || continuity_checks(&a, &b, &p, &sc, now))
                        .await
                        .map_err(|e| {
                            slate_engine::StepError::retryable("continuity", e.to_string())
                        })?
                }
            };
            f.repo
                .modify_scene(&i2, |s| s.continuity_checks = checks.clone())
                .await
                .step()
                .map(|_| ())
        })
        .await
    }

    async fn await_video(
        &self,
        ctx: &Ctx,
        job: &Job,
        req: &VideoRequest,
    ) -> Result<VideoOutput, WfError> {
        let f = &self.0;
        let signal = job.completion_signal();
        for k in 0..f.config.video_rounds {
            let (video, j, r) = (f.studio.video.clone(), job.clone(), req.clone());
            let state: JobState<VideoOutput> = ctx
                .step_with(
                    format!("video/poll/{k}"),
                    StepOptions::new().retry(
                        RetryPolicy::attempts(5)
                            .backoff(Duration::from_secs(2), Duration::from_secs(30)),
                    ),
                    move |sc| async move {
                        let p = video.poll(&j, &r).await.step()?;
                        report(&sc, p.spend);
                        Ok(p.value)
                    },
                )
                .await?;
            if let JobState::Completed { output } = state {
                return Ok(output);
            }
            match &signal {
                Some(name) => {
                    // A webhook wakes the run at once; the timeout is the polling fallback.
                    let _: Option<Value> = ctx
                        .wait_signal(
                            format!("video/wait/{k}"),
                            name.clone(),
                            Some(f.config.video_wait),
                        )
                        .await?;
                }
                None => {
                    ctx.sleep(format!("video/wait/{k}"), f.config.video_wait)
                        .await?
                }
            }
        }
        Err(WfError::failed(
            "video_timeout",
            format!(
                "video job {} did not finish within {} s; retry the scene to poll it again",
                job.id,
                f.config.video_rounds as u64 * f.config.video_wait.as_secs()
            ),
        ))
    }

    #[allow(clippy::too_many_arguments)]
    async fn voices(
        &self,
        ctx: &Ctx,
        slug: &Slug,
        id: &str,
        scene: &Scene,
        refs: &Refs,
        clip: BlobRef,
        duration: f64,
    ) -> Result<BlobRef, WfError> {
        let f = &self.0;
        if scene.dialogue.is_empty() {
            return Ok(clip);
        }
        let mut lines = vec![];
        for (i, d) in scene.dialogue.iter().enumerate() {
            let casting = refs
                .voices
                .get(&d.character)
                .cloned()
                .unwrap_or(VoiceCasting {
                    character_id: d.character.clone(),
                    voice: "en-us".into(),
                    pitch: 50,
                    speed: 160,
                    description: String::new(),
                });
            let voice = f.studio.voice.clone();
            let req = VoiceRequest {
                project: slug.to_string(),
                text: d.line.clone(),
                casting,
                output_key: key(slug, &format!("scenes/{id}/voice-{i}.wav")),
            };
            let audio: BlobRef = ctx
                .step_with(format!("voice/{i}"), paid(), move |sc| async move {
                    let p = voice.synthesize(&req).await.step()?;
                    report(&sc, p.spend);
                    Ok(p.value)
                })
                .await?;
            let offset = 0.3 + i as f64 * (duration / scene.dialogue.len() as f64);
            lines.push((audio, offset));
        }
        let (media, l2, k) = (
            f.studio.media.clone(),
            lines.clone(),
            key(slug, &format!("scenes/{id}/video.mp4")),
        );
        let voiced: BlobRef = ctx
            .step("video/voices", move |_| async move {
                media.mix_voices(&clip, &l2, &k).await.step()
            })
            .await?;
        let (fr, i2, l3) = (f.clone(), id.to_string(), lines);
        ctx.step("record/voices", move |_| async move {
            fr.repo
                .modify_scene(&i2, |s| {
                    for (d, (a, _)) in s.dialogue.iter_mut().zip(&l3) {
                        d.audio_url = Some(a.key().to_string());
                    }
                })
                .await
                .step()
                .map(|_| ())
        })
        .await?;
        Ok(voiced)
    }
}

fn mean_luma(img: &image::RgbImage) -> f64 {
    img.pixels()
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .sum::<f64>()
        / (img.width() * img.height()).max(1) as f64
}

fn histogram(img: &image::RgbImage) -> Vec<f64> {
    let mut h = vec![0f64; 64];
    for p in img.pixels() {
        let i = ((p[0] >> 6) as usize) << 4 | ((p[1] >> 6) as usize) << 2 | (p[2] >> 6) as usize;
        h[i] += 1.0;
    }
    let n: f64 = h.iter().sum();
    h.iter().map(|x| x / n.max(1.0)).collect()
}

/// The continuity agent's checks of a scene's start against the previous scene's last frame.
fn continuity_checks(
    current: &[u8],
    previous: &[u8],
    p: &PreviousScene,
    scene: &Scene,
    now: Option<chrono::DateTime<Utc>>,
) -> Vec<ContinuityCheck> {
    let (Ok(a), Ok(b)) = (
        image::load_from_memory(current),
        image::load_from_memory(previous),
    ) else {
        return vec![ContinuityCheck {
            check_type: "frames".into(),
            passed: false,
            notes: "a frame could not be read".into(),
            timestamp: now,
        }];
    };
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let same_place = p.location == scene.location;
    let same_time = p.time_of_day == scene.time_of_day;
    let (la, lb) = (mean_luma(&a), mean_luma(&b));
    let (ha, hb) = (histogram(&a), histogram(&b));
    let overlap: f64 = ha.iter().zip(&hb).map(|(x, y)| x.min(*y)).sum();
    let shared: Vec<&String> = scene
        .characters_present
        .iter()
        .filter(|c| p.characters.contains(c))
        .collect();
    vec![
        ContinuityCheck {
            check_type: "lighting".into(),
            passed: !same_time || (la - lb).abs() < 40.0,
            notes: format!(
                "mean brightness {la:.0} now, {lb:.0} at the end of the previous scene{}",
                if same_time {
                    ""
                } else {
                    " (the time of day changes)"
                }
            ),
            timestamp: now,
        },
        ContinuityCheck {
            check_type: "palette".into(),
            passed: !same_place || overlap > 0.35,
            notes: format!(
                "colour overlap {:.0} %{}",
                overlap * 100.0,
                if same_place {
                    ""
                } else {
                    " (the location changes)"
                }
            ),
            timestamp: now,
        },
        ContinuityCheck {
            check_type: "characters".into(),
            passed: true,
            notes: if shared.is_empty() {
                "no character carries over".into()
            } else {
                format!(
                    "{} carry over, drawn from the same reference sheets",
                    shared
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            timestamp: now,
        },
    ]
}

impl Workflow for SceneGeneration {
    const NAME: &'static str = "film.scene";
    type Input = SceneInput;
    type Output = SceneOutput;

    /// One generation of a scene at a time.
    fn exclusive_key(input: &SceneInput) -> Option<String> {
        Some(input.scene_id.clone())
    }

    async fn run(&self, ctx: Ctx, input: SceneInput) -> Result<SceneOutput, WfError> {
        match self.body(&ctx, &input).await {
            Ok(v) => Ok(v),
            Err(e) => {
                let id = input.scene_id.clone();
                let number = self
                    .0
                    .repo
                    .scene(&id)
                    .await
                    .map(|s| s.scene_number)
                    .unwrap_or_default();
                Err(record_failure(
                    &ctx,
                    &self.0,
                    &input.project,
                    &format!("scene {number} of `{}`", input.project),
                    e,
                    move |repo, msg| {
                        Box::pin(async move {
                            repo.modify_scene(&id, |s| {
                                s.status = SceneStatus::Failed;
                                s.error_message = Some(msg.clone());
                                s.retry_count = s
                                    .composite_iterations
                                    .iter()
                                    .map(|it| it.attempts as i32 - 1)
                                    .sum::<i32>()
                                    + 1;
                            })
                            .await
                            .map(|_| ())
                        })
                    },
                )
                .await)
            }
        }
    }
}

/// Input of [`FilmGeneration`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FilmInput {
    /// Project.
    pub project: Slug,
}

/// The finished film.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FilmOutput {
    /// The film (blob key).
    pub film: String,
    /// Scenes in it.
    pub scenes: usize,
    /// Its length, seconds.
    pub duration: f64,
}

/// How many times a person may retry a failed scene before the film gives up.
const SCENE_RETRIES: u32 = 5;

/// The film workflow: every scene in order, then the stitch.
#[derive(Clone)]
pub struct FilmGeneration(pub Arc<Film>);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SceneRef {
    id: String,
    number: i32,
    location: Option<String>,
    time_of_day: Option<String>,
    characters: Vec<String>,
    transition_in: String,
    transition_out: String,
    done: Option<SceneOutput>,
}

impl FilmGeneration {
    async fn body(&self, ctx: &Ctx, slug: &Slug) -> Result<FilmOutput, WfError> {
        let f = self.0.clone();
        let (fr, s) = (f.clone(), slug.clone());
        let scenes: Vec<SceneRef> = ctx
            .step("scenes", move |_| async move {
                fr.repo
                    .set_project_status(&s, ProjectStatus::Generating)
                    .await
                    .step()?;
                let scenes = fr.repo.scenes(&s).await.step()?;
                Ok(scenes
                    .into_iter()
                    .map(|sc| SceneRef {
                        done: (sc.status == SceneStatus::Completed)
                            .then(|| {
                                Some(SceneOutput {
                                    scene_id: sc.id.clone(),
                                    video: sc.generated_video_url.clone()?,
                                    last_frame: sc.last_frame_url.clone()?,
                                    duration: sc.actual_duration?,
                                })
                            })
                            .flatten(),
                        id: sc.id,
                        number: sc.scene_number,
                        location: sc.location,
                        time_of_day: sc.time_of_day,
                        characters: sc.characters_present,
                        transition_in: sc.transition_in.unwrap_or_else(|| "cut".into()),
                        transition_out: sc.transition_out.unwrap_or_else(|| "cut".into()),
                    })
                    .collect())
            })
            .await?;
        if scenes.is_empty() {
            return Err(WfError::failed(
                "no_scenes",
                format!("project `{slug}` has no scenes: qualify it first"),
            ));
        }
        let mut previous: Option<PreviousScene> = None;
        let mut clips = vec![];
        for s in &scenes {
            // A scene finished by an earlier run is not generated again.
            let out = match &s.done {
                Some(done) => done.clone(),
                None => {
                    let input = SceneInput {
                        project: slug.clone(),
                        scene_id: s.id.clone(),
                        previous: previous.clone(),
                    };
                    let child = ctx
                        .start_child::<SceneGeneration>(format!("scene/{}", s.number), &input)
                        .await?;
                    let mut outcome = child.join_step(format!("scene/{}/join", s.number)).await;
                    // A failed scene is not the end of the film: wait for a person to fix and
                    // retry it (the run holds nothing meanwhile), at most SCENE_RETRIES times.
                    let mut retry = 0;
                    while let Err(WfError::ChildFailed { .. }) = &outcome {
                        retry += 1;
                        if retry > SCENE_RETRIES {
                            break;
                        }
                        let (fr, sl) = (f.clone(), slug.clone());
                        ctx.step(
                            format!("scene/{}/failed/{retry}", s.number),
                            move |_| async move {
                                fr.repo
                                    .set_project_status(&sl, ProjectStatus::Failed)
                                    .await
                                    .step()
                            },
                        )
                        .await?;
                        outcome = child
                            .join_step(format!("scene/{}/join/{retry}", s.number))
                            .await;
                        if outcome.is_ok() {
                            let (fr, sl) = (f.clone(), slug.clone());
                            ctx.step(
                                format!("scene/{}/resumed/{retry}", s.number),
                                move |_| async move {
                                    fr.repo
                                        .set_project_status(&sl, ProjectStatus::Generating)
                                        .await
                                        .step()
                                },
                            )
                            .await?;
                        }
                    }
                    outcome?
                }
            };
            clips.push(ClipSpec {
                video: BlobRef::new(&out.video)
                    .map_err(|e| WfError::failed("bad_blob", e.to_string()))?,
                duration: out.duration,
                transition_in: s.transition_in.clone(),
                transition_out: s.transition_out.clone(),
            });
            previous = Some(PreviousScene {
                scene_id: s.id.clone(),
                video: Some(out.video.clone()),
                last_frame: out.last_frame.clone(),
                location: s.location.clone(),
                time_of_day: s.time_of_day.clone(),
                characters: s.characters.clone(),
            });
        }
        let (media, c2, k) = (f.studio.media.clone(), clips.clone(), key(slug, "film.mp4"));
        let film: BlobRef = ctx
            .step("stitch", move |_| async move {
                media.stitch(&c2, &k).await.step()
            })
            .await?;
        let (fr, s2, fk) = (f.clone(), slug.clone(), film.clone());
        let duration: f64 = ctx
            .step("finish", move |_| async move {
                let d = fr.studio.media.length(&fk).await.step()?;
                fr.repo.set_final_video(&s2, fk.key()).await.step()?;
                Ok(d)
            })
            .await?;
        Ok(FilmOutput {
            film: film.key().to_string(),
            scenes: scenes.len(),
            duration,
        })
    }
}

impl Workflow for FilmGeneration {
    const NAME: &'static str = "film.generate";
    type Input = FilmInput;
    type Output = FilmOutput;

    /// One film of a project at a time.
    fn exclusive_key(input: &FilmInput) -> Option<String> {
        Some(input.project.to_string())
    }

    async fn run(&self, ctx: Ctx, input: FilmInput) -> Result<FilmOutput, WfError> {
        match self.body(&ctx, &input.project).await {
            Ok(v) => Ok(v),
            Err(e) => {
                let s = input.project.clone();
                Err(record_failure(
                    &ctx,
                    &self.0,
                    &input.project,
                    &format!("film of `{}`", input.project),
                    e,
                    move |repo, _| {
                        Box::pin(
                            async move { repo.set_project_status(&s, ProjectStatus::Failed).await },
                        )
                    },
                )
                .await)
            }
        }
    }
}

/// Input of [`Production`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProduceInput {
    /// Project.
    pub project: Slug,
    /// Seconds of the qualification edit window.
    #[serde(default, deserialize_with = "crate::qualification::edit_window")]
    #[schema(maximum = 604800)]
    pub edit_window_secs: Option<u64>,
}

/// What a production made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProduceOutput {
    /// Qualification's figures.
    pub qualification: crate::qualification::QualifyOutput,
    /// The film, unless qualification was stopped for edits.
    pub film: Option<FilmOutput>,
}

/// From gathered ideas to the film: qualification, then generation, as child runs (a budget on
/// this run covers both).
#[derive(Clone)]
pub struct Production(pub Arc<Film>);

impl Workflow for Production {
    const NAME: &'static str = "film.produce";
    type Input = ProduceInput;
    type Output = ProduceOutput;

    /// One production of a project at a time.
    fn exclusive_key(input: &ProduceInput) -> Option<String> {
        Some(input.project.to_string())
    }

    async fn run(&self, ctx: Ctx, input: ProduceInput) -> Result<ProduceOutput, WfError> {
        let q_in = crate::qualification::QualifyInput {
            project: input.project.clone(),
            edit_window_secs: input.edit_window_secs,
        };
        let q = ctx
            .start_child::<crate::qualification::Qualification>("qualify", &q_in)
            .await?;
        let (fr, s, qid, rid) = (
            self.0.clone(),
            input.project.clone(),
            q.id().to_string(),
            ctx.run_id().to_string(),
        );
        ctx.step("record/runs", move |_| async move {
            fr.repo.set_runs(&s, Some(qid), Some(rid)).await.step()
        })
        .await?;
        let mut qual = q.join_step("qualify/join").await;
        let mut retry = 0;
        while matches!(qual, Err(WfError::ChildFailed { .. })) && retry < SCENE_RETRIES {
            retry += 1;
            qual = q.join_step(format!("qualify/join/{retry}")).await;
        }
        let qualification = qual?;
        if qualification.stopped {
            return Ok(ProduceOutput {
                qualification,
                film: None,
            });
        }
        let film = ctx
            .child::<FilmGeneration>(
                "film",
                &FilmInput {
                    project: input.project.clone(),
                },
            )
            .await?;
        Ok(ProduceOutput {
            qualification,
            film: Some(film),
        })
    }
}

/// Spend as the engine records it (for tests and reports).
pub fn spend_usd(s: Spend) -> f64 {
    s.usd
}

/// Errors of this module, for the API.
pub fn not_found(what: &str) -> FilmError {
    FilmError::NotFound(what.into())
}
