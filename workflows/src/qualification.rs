//! Qualification (the spec's phases 1 and 2): from gathered ideas to qualified production data.
//!
//! ```text
//! edit window (10 s, durable; a signal continues at once or stops to edit)
//! lock the gather namespace
//! phase A, in parallel: character (master + six views in parallel + descriptions),
//!                       world (story bible), visual (style guide)
//! phase B: screenplay, then the breakdown into 3-7 s scenes (recorded, ready for generation)
//! phase C, in parallel: locations (plates), props (references), audio casting
//! phase D: knowledge ingestion of everything qualified
//! ```
//!
//! Any failure stops the run at the failing step and records one global error naming the
//! project, the phase and the cause; a person retries the step and the run goes on from there.
//!
//! (Over 600 lines on purpose: the workflow's four phases and their departments read top to
//! bottom as the spec lists them; `qualification::gate` and `reopen_gather` belong to them.)

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use slate_activities::model::options::ANGLES;
use slate_activities::model::*;
use slate_activities::traits::ShotContext;
use slate_engine::{Ctx, WfError, Workflow, join_all, join3};

use crate::error::IntoStep;
use crate::film::{Film, image, key, plan_priced, record_failure};
use crate::model::{ProjectStatus, Scene, SceneDialogue, SceneProp, SceneStatus};
use crate::names;
use crate::repo::{CharacterReference, ViewReference};
use crate::slug::Slug;
use slate_activities::pricing::CallKind;

/// Qualification's stages as a person names them, in order: the edit window, phases A to D,
/// and the end. Indexes are what [`phase_of`] returns.
pub const PHASES: [&str; 6] = [
    "edit window",
    "phase A: characters, world, style",
    "phase B: screenplay and scenes",
    "phase C: locations, props, voices",
    "phase D: knowledge",
    "qualified",
];

pub use crate::names::qualify::{department_of, phase_of};

/// The signal that ends the edit window early.
pub const EDIT_WINDOW_SIGNAL: &str = crate::names::signal::EDIT_WINDOW;

/// A person's answer during the edit window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EditDecision {
    /// Go on now.
    Continue,
    /// Stop: the person wants to edit the gather data first.
    Stop,
}

/// The signal's payload.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EditSignal {
    /// The decision.
    pub action: EditDecision,
}

/// The longest edit window: a week. Longer is a mistake, not a plan.
pub const MAX_EDIT_WINDOW_SECS: u64 = 7 * 24 * 3600;

/// Reads an edit window, refusing one longer than [`MAX_EDIT_WINDOW_SECS`].
pub fn edit_window<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<u64>::deserialize(d)?;
    match v {
        Some(s) if s > MAX_EDIT_WINDOW_SECS => Err(serde::de::Error::custom(format!(
            "edit_window_secs is at most {MAX_EDIT_WINDOW_SECS} (a week), not {s}"
        ))),
        v => Ok(v),
    }
}

/// Input of [`Qualification`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QualifyInput {
    /// The project.
    pub project: Slug,
    /// Seconds of the edit window (default 10).
    #[serde(default, deserialize_with = "edit_window")]
    #[schema(maximum = 604800)]
    pub edit_window_secs: Option<u64>,
}

/// What qualification produced.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct QualifyOutput {
    /// The person stopped it during the edit window.
    pub stopped: bool,
    /// Characters qualified.
    pub characters: usize,
    /// Scenes created.
    pub scenes: usize,
    /// Their total length, seconds.
    pub film_seconds: f64,
    /// Knowledge documents ingested.
    pub knowledge_docs: usize,
}

/// The qualification workflow.
#[derive(Clone)]
pub struct Qualification(pub Arc<Film>);

/// The view of a character a camera angle calls for (the shot agent's choice).
pub fn view_for_angle(camera_angle: &str, index: usize) -> &'static str {
    match camera_angle {
        "high_angle" => "three_quarter_left",
        "dutch_angle" => "three_quarter_right",
        "birds_eye" => "front",
        "worms_eye" | "low_angle" => "front",
        // At eye level, characters face each other: alternate the three-quarter views.
        _ => {
            if index.is_multiple_of(2) {
                "three_quarter_right"
            } else {
                "three_quarter_left"
            }
        }
    }
}

pub use crate::repo::looks_of_profile;

fn character_view_request(
    slug: &Slug,
    p: &CharacterProfile,
    view: &str,
    base: Option<slate_activities::BlobRef>,
    prompt: String,
) -> ImageRequest {
    let color = p
        .palette
        .first()
        .cloned()
        .unwrap_or_else(|| "#888888".into());
    ImageRequest {
        prompt,
        base,
        references: vec![],
        composition: Composition {
            characters: vec![FigureSpec {
                id: p.character_id.clone(),
                name: p.name.clone(),
                x: 0.5,
                view: view.into(),
                color,
                looks: Some(looks_of_profile(p)).filter(|l| !l.is_empty()),
            }],
            caption: format!("{}: {}", p.name, p.appearance),
            layers: vec!["character-view".into()],
            ..Default::default()
        },
        output_key: key(slug, &format!("characters/{}/{view}.png", p.character_id)),
        aspect_ratio: "16:9".into(),
        seed: None,
    }
}

/// A character's sheet: the master reference, then the six views at once, each described by
/// the vision model. Its images go under `dir` (`characters/{id}` for the qualified sheet); its
/// steps are named `characters/{id}/master`, `characters/{id}/{angle}` and
/// `characters/{id}/{angle}/describe` (a journal contract).
pub(crate) async fn character_sheet(
    ctx: &Ctx,
    f: &Film,
    slug: &Slug,
    p: &CharacterProfile,
    dir: String,
) -> Result<CharacterReference, WfError> {
    {
        let id = &p.character_id;
        let master_prompt = f
            .repo
            .template("Character Master Reference")
            .await
            .ok()
            .and_then(|t| {
                let vars: BTreeMap<String, String> = [
                    ("character_name", p.name.clone()),
                    ("appearance", p.appearance.clone()),
                    ("costume", p.costume.clone()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                t.render(&vars).ok()
            })
            .unwrap_or_else(|| {
                format!(
                    "Full-body character reference of {}, {}",
                    p.name, p.appearance
                )
            });
        let mut master_req = character_view_request(slug, p, "front", None, master_prompt);
        master_req.output_key = key(slug, &format!("{dir}/master.png"));
        let master = image(ctx, f, &format!("characters/{id}/master"), master_req).await?;
        // The six views in parallel, each described by the vision model.
        let vision_usd = f.price(CallKind::Vision);
        let views = join_all(ANGLES.iter().map(|angle| {
            let mut req = character_view_request(
                slug,
                p,
                angle,
                Some(master.image.clone()),
                format!("Same character, {} view", angle.replace('_', " ")),
            );
            req.output_key = key(slug, &format!("{dir}/{angle}.png"));
            let (ctx, vision, name) = (ctx.clone(), f.studio.vision.clone(), p.name.clone());
            async move {
                let out = image(&ctx, f, &format!("characters/{id}/{angle}"), req).await?;
                let (img, manifest) = (out.image.clone(), out.manifest.clone());
                let description: String = plan_priced(&ctx, format!("characters/{id}/{angle}/describe"), vision_usd, move || async move {
                    vision
                        .describe(
                            &img,
                            manifest.as_ref(),
                            &format!(
                                "Describe this image of {name} from the {} angle. Include visible features, clothing, expression, lighting, and any distinguishing characteristics.",
                                angle.replace('_', " ")
                            ),
                        )
                        .await
                })
                .await?;
                Ok::<_, WfError>((
                    angle.to_string(),
                    ViewReference {
                        url: out.image.key().to_string(),
                        description,
                    },
                ))
            }
        }))
        .await?;
        let mut r = CharacterReference::for_profile(p);
        r.master_reference_url = master.image.key().to_string();
        r.references_360 = views.into_iter().collect();
        Ok(r)
    }
}

impl Qualification {
    async fn character_department(
        &self,
        ctx: &Ctx,
        slug: &Slug,
    ) -> Result<Vec<CharacterProfile>, WfError> {
        let f = self.0.clone();
        let s = slug.clone();
        let profiles: Vec<CharacterProfile> = plan_priced(
            ctx,
            names::qualify::PROFILES,
            self.0.price(CallKind::Llm),
            move || async move {
                let g = f.gather(&s).await.map_err(to_activity)?;
                f.studio.planner.characters(&g).await
            },
        )
        .await?;
        let sheets = join_all(profiles.iter().map(|p| {
            character_sheet(
                ctx,
                &self.0,
                slug,
                p,
                format!("characters/{}", p.character_id),
            )
        }))
        .await?;
        let (f, s, ps) = (self.0.clone(), slug.clone(), profiles.clone());
        ctx.step("characters/store", move |_| async move {
            for (p, r) in ps.iter().zip(&sheets) {
                // Qualified: the profile with its references, as the spec's example document.
                let mut doc = serde_json::to_value(p).unwrap_or_default();
                doc["master_reference_url"] = json!(r.master_reference_url);
                doc["references_360"] = serde_json::to_value(&r.references_360).unwrap_or_default();
                doc["generated_by_agent"] = json!(format!("character department ({})", f.studio.planner.name()));
                f.put_qualified(&s, names::collection::CHARACTER_PROFILES, &p.character_id, &doc).await.step()?;
                for (angle, v) in &r.references_360 {
                    f.put_qualified(
                        &s,
                        names::collection::CHARACTER_360_REFERENCES,
                        &format!("{}-{angle}", p.character_id),
                        &json!({"character_id": p.character_id, "angle": angle, "url": v.url, "description": v.description}),
                    )
                    .await
                    .step()?;
                }
                // Structured: the 360-degree references' metadata.
                f.repo.put_character_reference(&s, r).await.step()?;
            }
            Ok(())
        })
        .await?;
        Ok(profiles)
    }

    async fn world_department(&self, ctx: &Ctx, slug: &Slug) -> Result<StoryBible, WfError> {
        let (f, s) = (self.0.clone(), slug.clone());
        let bible: StoryBible = plan_priced(
            ctx,
            names::qualify::STORY_BIBLE,
            self.0.price(CallKind::Llm),
            move || async move {
                let g = f.gather(&s).await.map_err(to_activity)?;
                f.studio.planner.story_bible(&g, &[]).await
            },
        )
        .await?;
        let (f, s, b) = (self.0.clone(), slug.clone(), bible.clone());
        ctx.step("world/store", move |_| async move {
            f.put_qualified(
                &s,
                names::collection::STORY_BIBLE,
                names::collection::STORY_BIBLE_DOC,
                &b,
            )
            .await
            .step()?;
            for (i, r) in b.world_rules.iter().enumerate() {
                f.put_qualified(
                    &s,
                    names::collection::WORLD_RULES,
                    &format!("rule-{:03}", i + 1),
                    r,
                )
                .await
                .step()?;
            }
            f.repo.put_story_bible(&s, &b).await.step()
        })
        .await?;
        Ok(bible)
    }

    async fn visual_department(&self, ctx: &Ctx, slug: &Slug) -> Result<StyleGuide, WfError> {
        let (f, s) = (self.0.clone(), slug.clone());
        let style: StyleGuide = plan_priced(
            ctx,
            names::qualify::STYLE_GUIDE,
            self.0.price(CallKind::Llm),
            move || async move {
                let g = f.gather(&s).await.map_err(to_activity)?;
                f.studio.planner.style_guide(&g).await
            },
        )
        .await?;
        let (f, s, st) = (self.0.clone(), slug.clone(), style.clone());
        ctx.step("visual/store", move |_| async move {
            f.put_qualified(
                &s,
                names::collection::VISUAL_GUIDELINES,
                names::collection::STYLE_GUIDE_DOC,
                &st,
            )
            .await
            .step()
        })
        .await?;
        Ok(style)
    }

    async fn story_department(
        &self,
        ctx: &Ctx,
        slug: &Slug,
        bible: &StoryBible,
        profiles: &[CharacterProfile],
        style: &StyleGuide,
    ) -> Result<(Screenplay, Vec<SceneBreakdown>), WfError> {
        let (f, s, b, p) = (
            self.0.clone(),
            slug.clone(),
            bible.clone(),
            profiles.to_vec(),
        );
        let screenplay: Screenplay = plan_priced(
            ctx,
            names::qualify::SCREENPLAY,
            self.0.price(CallKind::Llm),
            move || async move {
                let g = f.gather(&s).await.map_err(to_activity)?;
                f.studio.planner.screenplay(&g, &b, &p).await
            },
        )
        .await?;
        let (f, s, sp) = (self.0.clone(), slug.clone(), screenplay.clone());
        ctx.step("story/store-screenplay", move |_| async move {
            f.put_qualified(
                &s,
                names::collection::SCREENPLAY,
                names::collection::SCREENPLAY_DOC,
                &json!({"project_id": s, "title": sp.title, "content": sp.content, "sequences": sp.sequences,
                        "generated_by": format!("story department ({})", f.studio.planner.name())}),
            )
            .await
            .step()
        })
        .await?;
        let (f, b, p, sp) = (
            self.0.clone(),
            bible.clone(),
            profiles.to_vec(),
            screenplay.clone(),
        );
        let scenes: Vec<SceneBreakdown> = plan_priced(
            ctx,
            names::qualify::BREAKDOWN,
            self.0.price(CallKind::Llm),
            move || async move {
                let r = f.studio.planner.breakdown(&sp, &b, &p).await?;
                for sc in &r.value {
                    sc.validate().map_err(|m| {
                        slate_activities::ActivityError::new(
                            "planner",
                            slate_activities::ErrorKind::Malformed,
                            m,
                        )
                    })?;
                }
                Ok(r)
            },
        )
        .await?;
        if scenes.is_empty() {
            return Err(WfError::failed(
                "no_scenes",
                "the breakdown produced no scenes: add scene ideas to the gather data",
            ));
        }
        let (f, s, sc, st) = (self.0.clone(), slug.clone(), scenes.clone(), style.clone());
        ctx.step("story/scenes", move |_| async move {
            let records: Vec<Scene> = sc.iter().map(|b| scene_record(&s, b, &st, f.studio.planner.name())).collect();
            f.repo.insert_scenes(&records).await.step()?;
            // Qualified keeps a summary, not the scenes' structure (that is the scene records').
            f.put_qualified(
                &s,
                names::collection::SCENE_METADATA,
                "summary",
                &json!({
                    "scenes": sc.len(),
                    "total_seconds": sc.iter().map(|b| b.expected_duration).sum::<f64>(),
                    "locations": sc.iter().map(|b| b.location.clone()).collect::<std::collections::BTreeSet<_>>(),
                }),
            )
            .await
            .step()
        })
        .await?;
        Ok((screenplay, scenes))
    }

    async fn production_departments(
        &self,
        ctx: &Ctx,
        slug: &Slug,
        bible: &StoryBible,
        screenplay: &Screenplay,
        profiles: &[CharacterProfile],
    ) -> Result<(), WfError> {
        join3(
            self.locations(ctx, slug, bible),
            self.props(ctx, slug, screenplay),
            self.casting(ctx, slug, profiles),
        )
        .await?;
        Ok(())
    }

    /// The production department's places: each described, with an establishing plate.
    async fn locations(&self, ctx: &Ctx, slug: &Slug, bible: &StoryBible) -> Result<(), WfError> {
        let f = &self.0;
        let (f2, s, b) = (f.clone(), slug.clone(), bible.clone());
        let locs: Vec<LocationDetail> = plan_priced(
            ctx,
            names::qualify::LOCATIONS,
            self.0.price(CallKind::Llm),
            move || async move {
                let g = f2.gather(&s).await.map_err(to_activity)?;
                f2.studio.planner.locations(&g, &b).await
            },
        )
        .await?;
        let plates = join_all(locs.iter().map(|l| {
            let req = ImageRequest {
                prompt: format!(
                    "Establishing plate of {}: {}. No people.",
                    l.name, l.description
                ),
                base: None,
                references: vec![],
                composition: Composition {
                    location: Some(l.name.clone()),
                    time_of_day: Some("afternoon".into()),
                    lighting: Some("natural".into()),
                    palette: l.palette.clone(),
                    caption: l.description.clone(),
                    layers: vec!["location".into()],
                    setting: Some(l.description.clone()),
                    ..Default::default()
                },
                output_key: key(slug, &format!("locations/{}.png", crate::slugify(&l.name))),
                aspect_ratio: "16:9".into(),
                seed: None,
            };
            image(
                ctx,
                f,
                format!("locations/{}/plate", crate::slugify(&l.name)),
                req,
            )
        }))
        .await?;
        let (f2, s) = (f.clone(), slug.clone());
        ctx.step("locations/store", move |_| async move {
            for (l, p) in locs.iter().zip(&plates) {
                let mut doc = serde_json::to_value(l).unwrap_or_default();
                doc["reference_url"] = json!(p.image.key());
                f2.put_qualified(
                    &s,
                    names::collection::LOCATION_DETAILS,
                    &crate::slugify(&l.name),
                    &doc,
                )
                .await
                .step()?;
            }
            Ok(())
        })
        .await
    }

    /// The props that matter, each with a reference picture.
    async fn props(&self, ctx: &Ctx, slug: &Slug, screenplay: &Screenplay) -> Result<(), WfError> {
        let f = &self.0;
        let (f2, s, sp) = (f.clone(), slug.clone(), screenplay.clone());
        let items: Vec<PropItem> = plan_priced(
            ctx,
            names::qualify::PROPS,
            self.0.price(CallKind::Llm),
            move || async move {
                let g = f2.gather(&s).await.map_err(to_activity)?;
                f2.studio.planner.props(&g, &sp).await
            },
        )
        .await?;
        let refs = join_all(items.iter().map(|p| {
            let req = ImageRequest {
                prompt: format!("Product shot of {}: {}", p.name, p.description),
                base: None,
                references: vec![],
                composition: Composition {
                    props: vec![PropSpec {
                        name: p.name.clone(),
                        x: 0.5,
                        color: p.color.clone(),
                    }],
                    caption: p.description.clone(),
                    layers: vec!["prop".into()],
                    ..Default::default()
                },
                output_key: key(slug, &format!("props/{}.png", crate::slugify(&p.name))),
                aspect_ratio: "16:9".into(),
                seed: None,
            };
            image(
                ctx,
                f,
                format!("props/{}/reference", crate::slugify(&p.name)),
                req,
            )
        }))
        .await?;
        let (f2, s) = (f.clone(), slug.clone());
        ctx.step("props/store", move |_| async move {
            for (p, r) in items.iter().zip(&refs) {
                let mut doc = serde_json::to_value(p).unwrap_or_default();
                doc["reference_url"] = json!(r.image.key());
                f2.put_qualified(
                    &s,
                    names::collection::PROP_CATALOG,
                    &crate::slugify(&p.name),
                    &doc,
                )
                .await
                .step()?;
            }
            Ok(())
        })
        .await
    }

    /// The audio department's voice casting.
    async fn casting(
        &self,
        ctx: &Ctx,
        slug: &Slug,
        profiles: &[CharacterProfile],
    ) -> Result<(), WfError> {
        let f = &self.0;
        let (f2, ps) = (f.clone(), profiles.to_vec());
        let voices: Vec<VoiceCasting> = plan_priced(
            ctx,
            names::qualify::CASTING,
            self.0.price(CallKind::Llm),
            move || async move { f2.studio.planner.voices(&ps).await },
        )
        .await?;
        let (f2, s) = (f.clone(), slug.clone());
        ctx.step("audio/store", move |_| async move {
            for v in &voices {
                f2.put_qualified(&s, names::collection::VOICE_CASTING, &v.character_id, v)
                    .await
                    .step()?;
            }
            Ok(())
        })
        .await?;
        if !ctx.patched(names::qualify::SOUND_PATCH).await? {
            return Ok(());
        }
        // The film's sound, scene by scene, in the scenes' own fields (editable like the
        // rest): what is already there (a person's, the planner's) stays.
        let (f2, s) = (f.clone(), slug.clone());
        ctx.step(names::qualify::SOUND, move |_| async move {
            let mood = f2
                .qualified(&s, names::collection::VISUAL_GUIDELINES)
                .await
                .step()?
                .first()
                .and_then(|g| g["mood"].as_str().map(str::to_string))
                .unwrap_or_default();
            let scenes = f2.repo.scenes(&s).await.step()?;
            let mut scored = 0usize;
            for (before, after) in scenes.iter().zip(crate::sound::score(&scenes, &mood)) {
                if before == &after {
                    continue;
                }
                f2.repo
                    .modify_scene(&before.id, |x| {
                        // Filled where still empty (an edit made meanwhile stays).
                        if x.music_track.as_deref().is_none_or(|m| m.trim().is_empty()) {
                            x.music_track.clone_from(&after.music_track);
                        }
                        if x.ambient_sound
                            .as_deref()
                            .is_none_or(|a| a.trim().is_empty())
                        {
                            x.ambient_sound.clone_from(&after.ambient_sound);
                        }
                        if x.sound_effects.is_empty() {
                            x.sound_effects.clone_from(&after.sound_effects);
                        }
                    })
                    .await
                    .step()?;
                scored += 1;
            }
            Ok(scored)
        })
        .await
        .map(drop)
    }

    async fn ingest(&self, ctx: &Ctx, slug: &Slug) -> Result<usize, WfError> {
        let (f, s) = (self.0.clone(), slug.clone());
        ctx.step(names::qualify::KNOWLEDGE, move |_| async move {
            let docs = knowledge_docs(&f, &s).await.step()?;
            f.studio.knowledge.store(&docs).await.step()
        })
        .await
    }

    async fn body(&self, ctx: &Ctx, slug: &Slug) -> Result<QualifyOutput, WfError> {
        let (f, s) = (self.0.clone(), slug.clone());
        ctx.step(names::qualify::LOCK_GATHER, move |_| async move {
            f.repo.lock_gather(&s).await.step()
        })
        .await?;
        let (profiles, bible, style) = self
            .phase(
                ctx,
                slug,
                "phase A (character, world and visual departments)",
                join3(
                    self.character_department(ctx, slug),
                    self.world_department(ctx, slug),
                    self.visual_department(ctx, slug),
                ),
            )
            .await?;
        let (screenplay, scenes) = self
            .phase(
                ctx,
                slug,
                "phase B (story department)",
                self.story_department(ctx, slug, &bible, &profiles, &style),
            )
            .await?;
        self.phase(
            ctx,
            slug,
            "phase C (locations, props and audio departments)",
            self.production_departments(ctx, slug, &bible, &screenplay, &profiles),
        )
        .await?;
        let knowledge_docs = self
            .phase(
                ctx,
                slug,
                "phase D (knowledge ingestion)",
                self.ingest(ctx, slug),
            )
            .await?;
        let (f, s) = (self.0.clone(), slug.clone());
        ctx.step(names::qualify::FINISH, move |_| async move {
            f.repo
                .set_project_status(&s, ProjectStatus::Qualified)
                .await
                .step()
        })
        .await?;
        Ok(QualifyOutput {
            stopped: false,
            characters: profiles.len(),
            scenes: scenes.len(),
            film_seconds: scenes.iter().map(|s| s.expected_duration).sum(),
            knowledge_docs,
        })
    }

    /// Run a phase; on failure record one global error naming the project, phase and cause.
    async fn phase<T>(
        &self,
        ctx: &Ctx,
        slug: &Slug,
        phase: &str,
        fut: impl std::future::Future<Output = Result<T, WfError>>,
    ) -> Result<T, WfError> {
        match fut.await {
            Ok(v) => Ok(v),
            Err(e) => {
                let s = slug.clone();
                Err(record_failure(
                    ctx,
                    &self.0,
                    slug,
                    &format!("qualification of `{slug}`, {phase}"),
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

fn to_activity(e: crate::error::FilmError) -> slate_activities::ActivityError {
    match e {
        crate::error::FilmError::Activity(a) => a,
        other => slate_activities::ActivityError::new(
            "film",
            slate_activities::ErrorKind::Io,
            other.to_string(),
        ),
    }
}

/// The scene record made from a breakdown scene.
pub fn scene_record(slug: &Slug, b: &SceneBreakdown, style: &StyleGuide, planner: &str) -> Scene {
    Scene {
        id: format!("{slug}-s{:03}", b.scene_number),
        project: slug.to_string(),
        scene_number: b.scene_number,
        sequence_number: b.sequence_number,
        screenplay_text: Some(b.screenplay_text.clone()),
        dramatic_effect: Some(b.dramatic_effect.clone()),
        expected_duration: b.expected_duration,
        location: Some(b.location.clone()),
        time_of_day: Some(b.time_of_day.clone()),
        weather: Some(b.weather.clone()),
        camera_angle: Some(b.camera_angle.clone()),
        camera_shot: Some(b.camera_shot.clone()),
        camera_movement: Some(b.camera_movement.clone()),
        lighting_type: Some(b.lighting_type.clone()),
        lighting_mood: Some(b.lighting_mood.clone()),
        color_palette: style.palette.clone(),
        characters_present: b.characters_present.clone(),
        props: b
            .props
            .iter()
            .map(|p| SceneProp {
                prop_name: p.clone(),
                ..Default::default()
            })
            .collect(),
        dialogue: b
            .dialogue
            .iter()
            .map(|d| SceneDialogue {
                character: d.character.clone(),
                line: d.line.clone(),
                audio_url: None,
                parenthetical: d.parenthetical.clone(),
                ..Default::default()
            })
            .collect(),
        transition_in: Some(b.transition_in.clone()),
        transition_out: Some(b.transition_out.clone()),
        base_prompt: Some(b.screenplay_text.clone()),
        negative_prompt: Some(style.negative_prompt.clone()),
        pacing: Some(b.pacing.clone()),
        video_mode: Some("image_to_video".into()),
        generated_by_agent: Some(format!("story department ({planner})")),
        status: SceneStatus::ReadyForGeneration,
        ..Default::default()
    }
}

/// What the knowledge store receives (phase D): characters, their 360-degree references, the
/// story bible and the scenes' structure (no prompts, no raw input), plus locations and props.
pub async fn knowledge_docs(f: &Film, slug: &Slug) -> crate::error::Result<Vec<KnowledgeDoc>> {
    let mut docs = vec![];
    let d = |kind: &str, key: &str, title: &str, text: String, metadata: Value| KnowledgeDoc {
        project: slug.to_string(),
        kind: kind.into(),
        key: key.into(),
        title: title.into(),
        text,
        metadata,
    };
    for c in f
        .qualified(slug, names::collection::CHARACTER_PROFILES)
        .await?
    {
        let p: CharacterProfile = serde_json::from_value(c.clone())
            .map_err(|e| crate::error::FilmError::Internal(e.to_string()))?;
        docs.push(d(
            "character",
            &p.character_id,
            &p.name,
            format!(
                "{}. Role: {}. {} {} {}",
                p.name, p.role, p.personality, p.appearance, p.background
            ),
            json!({"costume": p.costume}),
        ));
    }
    for r in f
        .qualified(slug, names::collection::CHARACTER_360_REFERENCES)
        .await?
    {
        let id = r["character_id"].as_str().unwrap_or_default();
        let angle = r["angle"].as_str().unwrap_or_default();
        docs.push(d(
            "character_view",
            &format!("{id}-{angle}"),
            &format!("{id} {angle}"),
            r["description"].as_str().unwrap_or_default().to_string(),
            json!({"url": r["url"], "character_id": id, "angle": angle}),
        ));
    }
    if let Some(b) = f
        .qualified(slug, names::collection::STORY_BIBLE)
        .await?
        .into_iter()
        .next()
    {
        let bible: StoryBible = serde_json::from_value(b)
            .map_err(|e| crate::error::FilmError::Internal(e.to_string()))?;
        let text = bible_text(&bible);
        docs.push(d(
            "story_bible",
            "story_bible",
            &bible.title,
            text,
            json!({}),
        ));
    }
    for l in f
        .qualified(slug, names::collection::LOCATION_DETAILS)
        .await?
    {
        let name = l["name"].as_str().unwrap_or_default();
        docs.push(d(
            "location",
            &crate::slugify(name),
            name,
            format!("{name}. {}", l["description"].as_str().unwrap_or_default()),
            json!({"reference_url": l["reference_url"]}),
        ));
    }
    for p in f.qualified(slug, names::collection::PROP_CATALOG).await? {
        let name = p["name"].as_str().unwrap_or_default();
        docs.push(d(
            "prop",
            &crate::slugify(name),
            name,
            format!("{name}. {}", p["description"].as_str().unwrap_or_default()),
            json!({"reference_url": p["reference_url"]}),
        ));
    }
    for s in f.repo.scenes(slug).await? {
        let text = scene_text(&s);
        docs.push(d(
            "scene",
            &format!("scene-{:03}", s.scene_number),
            &format!("Scene {}", s.scene_number),
            text,
            json!({"sequence_number": s.sequence_number, "expected_duration": s.expected_duration}),
        ));
    }
    Ok(docs)
}

/// The story bible as one text: title, logline, the world's rules and consistency rules.
fn bible_text(bible: &StoryBible) -> String {
    format!(
        "{}. {} Rules: {} Consistency: {}",
        bible.title,
        bible.logline,
        bible
            .world_rules
            .iter()
            .map(|r| r.rule_description.clone())
            .collect::<Vec<_>>()
            .join(" "),
        bible
            .consistency_rules
            .iter()
            .map(|r| r.rule.clone())
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// A scene's structure only: where, when, who, what. Prompts stay in the scene records.
fn scene_text(s: &crate::model::Scene) -> String {
    format!(
        "Scene {} at {} in the {}. Characters: {}. Props: {}. {}",
        s.scene_number,
        s.location.clone().unwrap_or_default(),
        s.time_of_day.clone().unwrap_or_default(),
        s.characters_present.join(", "),
        s.props
            .iter()
            .map(|p| p.prop_name.clone())
            .collect::<Vec<_>>()
            .join(", "),
        s.dramatic_effect.clone().unwrap_or_default()
    )
}

impl Workflow for Qualification {
    const NAME: &'static str = crate::names::workflow::QUALIFY;
    type Input = QualifyInput;
    type Output = QualifyOutput;

    /// One qualification of a project at a time, however it is started.
    fn exclusive_key(input: &QualifyInput) -> Option<String> {
        Some(input.project.to_string())
    }

    async fn run(&self, ctx: Ctx, input: QualifyInput) -> Result<QualifyOutput, WfError> {
        let slug = input.project;
        let window = input
            .edit_window_secs
            .map(std::time::Duration::from_secs)
            .unwrap_or(self.0.config.edit_window);
        // The 10-second window: a durable wait, so a crash does not restart it.
        let decision: Option<EditSignal> = ctx
            .wait_signal("edit-window", EDIT_WINDOW_SIGNAL, Some(window))
            .await?;
        if decision.is_some_and(|d| d.action == EditDecision::Stop) {
            return Ok(QualifyOutput {
                stopped: true,
                ..Default::default()
            });
        }
        self.body(&ctx, &slug).await
    }
}

/// Readiness of every department (0-100, ready at 75), for the project page.
///
/// A remote planner's answer costs a language-model call and seconds, and the project page
/// asks on every refresh: the answer is kept per project and planner until the gathered data
/// changes.
pub async fn readiness(f: &Film, slug: &Slug) -> crate::error::Result<Vec<DepartmentReadiness>> {
    use std::hash::{Hash, Hasher};
    type Cache = std::collections::HashMap<String, (u64, Vec<DepartmentReadiness>)>;
    static CACHE: std::sync::OnceLock<std::sync::Mutex<Cache>> = std::sync::OnceLock::new();
    let g = f.gather(slug).await?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&g).unwrap_or_default().hash(&mut h);
    let digest = h.finish();
    let key = format!("{}\u{0}{slug}", f.studio.planner.name());
    let cache = CACHE.get_or_init(Default::default);
    if let Some((d, r)) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
        && *d == digest
    {
        return Ok(r.clone());
    }
    let r = f.studio.planner.readiness(&g).await?.value;
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, (digest, r.clone()));
    Ok(r)
}

/// The one readiness gate, for every way a qualification starts (`/qualify`, `/produce`, the
/// demo): every department at [`READY_SCORE`] or more, unless `force`. The refusal names each
/// department short of it and what it misses, in plain words.
#[tracing::instrument(skip(f), fields(project = %slug))]
pub async fn gate(f: &Film, slug: &Slug, force: bool) -> crate::error::Result<()> {
    if force {
        return Ok(());
    }
    let r = readiness(f, slug).await?;
    let missing: Vec<String> = r
        .iter()
        .filter(|d| !d.ready)
        .map(|d| {
            format!(
                "{} ({}): {}",
                d.department,
                d.score,
                d.missing_items.join("; ")
            )
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(crate::error::FilmError::Conflict(format!(
        "`{slug}` is not ready for qualification (every department needs {READY_SCORE}): {}. Add the missing material to the gather, or send {{\"force\": true}} to qualify with what is there",
        missing.join(" | ")
    )))
}

/// What reopening the gather did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Reopened {
    /// The project.
    pub project: String,
    /// The failed or stopped qualification run the reopening follows, if any.
    pub qualification_run: Option<String>,
    /// A production run that waited on that qualification and was cancelled.
    pub cancelled_production_run: Option<String>,
}

/// Reopen a project's gather for edits after a failed or stopped qualification. Refused while
/// a qualification run is active, and after a qualification completed (its scenes would be
/// lost: start a new project, or edit the qualified data). A production run waiting on the
/// failed qualification is cancelled, since it could only wait forever.
#[tracing::instrument(skip(f, engine), fields(project = %slug))]
pub async fn reopen_gather(
    f: &Film,
    engine: &slate_engine::Engine,
    slug: &Slug,
    reason: Option<&str>,
) -> crate::error::Result<Reopened> {
    use crate::error::FilmError;
    let project = f.repo.project(slug).await?;
    let run = |id: &Option<String>| {
        id.as_deref()
            .and_then(|i| i.parse::<slate_engine::RunId>().ok())
    };
    let qual = match run(&project.qualification_run) {
        Some(id) => Some(
            engine
                .get(id)
                .await
                .map_err(|e| FilmError::Internal(e.to_string()))?,
        ),
        None => None,
    };
    if let Some(q) = &qual
        && !q.status.is_terminal()
    {
        return Err(FilmError::Conflict(format!(
            "qualification of `{slug}` is still {} (run {}): stop it in its edit window, or cancel the run, before reopening the gather",
            q.status, q.id
        )));
    }
    if project.gather_locked_at.is_none() {
        return Err(FilmError::Conflict(format!(
            "the gather of `{slug}` is already open"
        )));
    }
    let qualified = qual
        .as_ref()
        .is_some_and(|q| q.status == slate_engine::RunStatus::Completed);
    if qualified
        || matches!(
            project.status,
            ProjectStatus::Qualified | ProjectStatus::Generating | ProjectStatus::Completed
        )
    {
        return Err(FilmError::Conflict(format!(
            "`{slug}` is {} and its qualification completed; reopening would discard its scenes. Edit the scenes and the story bible, or start a new project",
            project.status.as_str()
        )));
    }
    let mut cancelled = None;
    if let Some(id) = run(&project.production_run) {
        let p = engine
            .get(id)
            .await
            .map_err(|e| FilmError::Internal(e.to_string()))?;
        if !p.status.is_terminal() {
            engine
                .cancel(id, "the gather was reopened after a failed qualification")
                .await
                .map_err(|e| FilmError::Internal(e.to_string()))?;
            cancelled = Some(id.to_string());
        }
    }
    let out = Reopened {
        project: slug.to_string(),
        qualification_run: qual.as_ref().map(|q| q.id.to_string()),
        cancelled_production_run: cancelled,
    };
    let message = match &out.qualification_run {
        Some(q) => format!(
            "the gather was reopened for edits after qualification run {q} {}; what it qualified was removed",
            qual.as_ref().map(|q| q.status.as_str()).unwrap_or("ended")
        ),
        None => "the gather was reopened for edits".to_string(),
    };
    f.repo
        .reopen_gather(
            slug,
            &message,
            &serde_json::json!({"reason": reason, "qualification_run": out.qualification_run, "cancelled_production_run": out.cancelled_production_run}),
        )
        .await?;
    // The qualified namespace may live outside the workflow database (MongoDB).
    f.docs
        .clear(&crate::docstore::Namespace::Qualified(slug.clone()))
        .await?;
    Ok(out)
}

/// The shot agent's context for a project.
pub async fn shot_context(f: &Film, slug: &Slug) -> crate::error::Result<ShotContext> {
    fn parse<T: serde::de::DeserializeOwned>(v: Vec<Value>) -> Vec<T> {
        v.into_iter()
            .filter_map(|x| serde_json::from_value(x).ok())
            .collect()
    }
    Ok(ShotContext {
        characters: parse(
            f.qualified(slug, names::collection::CHARACTER_PROFILES)
                .await?,
        ),
        props: parse(f.qualified(slug, names::collection::PROP_CATALOG).await?),
        style: f
            .qualified(slug, names::collection::VISUAL_GUIDELINES)
            .await?
            .into_iter()
            .next()
            .and_then(|v| serde_json::from_value(v).ok()),
    })
}
