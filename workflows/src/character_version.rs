//! A character changes partway through the film (issue 26, the seed's open question 5): a new
//! costume, an injury. `film.character-version` makes a new version of the character from a
//! given scene on, with its own master reference and 360-degree set (the same steps as the
//! qualified sheet, its images under `characters/{id}/v{n}/`); every scene made from then on
//! whose number is at least that scene's draws the character from it
//! ([`crate::repo::CharacterReference::for_scene`]). Scenes already made keep their takes: the
//! film page offers to make them again. [`estimate`] prices it before anything runs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use slate_activities::model::CharacterProfile;
use slate_activities::pricing::{CallKind, Prices};
use slate_engine::{Ctx, WfError, Workflow};

use crate::error::IntoStep;
use crate::estimate::EstimateLine;
use crate::film::{Film, record_failure};
use crate::repo::{CharacterVersion, looks_of_profile};
use crate::slug::Slug;

/// Input of [`CharacterVersioning`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CharacterVersionInput {
    /// Project.
    pub project: Slug,
    /// The character's id.
    pub character_id: String,
    /// The first scene (by number) that shows the new version.
    pub from_scene: i32,
    /// How they look from then on (1 to 2,000 characters).
    pub appearance: String,
    /// What they wear from then on (default: as before).
    #[serde(default)]
    pub costume: Option<String>,
}

/// What a new version is: the version number and the profile its sheet is drawn from.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Planned {
    version: u32,
    profile: CharacterProfile,
}

/// The calls a character version makes (a master image, six views edited from it, each view
/// described: as the qualification's estimate counts a character), priced
/// with the configured providers: what `POST …/characters/{id}/versions/estimate` answers.
pub fn estimate(f: &Film) -> Vec<EstimateLine> {
    let s = &f.studio.settings;
    let prices = Prices::new(&s.prices);
    [
        (CallKind::Image, 1.0),
        (CallKind::ImageEdit, 6.0),
        (CallKind::Vision, 6.0),
    ]
    .into_iter()
    .map(|(kind, units)| {
        let price = prices.of(s, kind);
        let usd = units * price.unit_usd;
        EstimateLine {
            stage: "qualification".into(),
            kind,
            price,
            units_low: units,
            units_high: units,
            low_usd: usd,
            high_usd: usd,
            expected_usd: usd,
        }
    })
    .collect()
}

/// The workflow (`film.character-version`).
#[derive(Clone)]
pub struct CharacterVersioning(pub Arc<Film>);

impl CharacterVersioning {
    async fn body(&self, ctx: &Ctx, input: &CharacterVersionInput) -> Result<u32, WfError> {
        let (f, i) = (self.0.clone(), input.clone());
        let planned: Planned = ctx
            .step("plan", move |_| async move {
                let words = i.appearance.trim().chars().count();
                if words == 0 || words > 2000 {
                    return Err(slate_engine::StepError::fatal(
                        "bad_appearance",
                        "a new version needs an appearance of 1 to 2,000 characters",
                    ));
                }
                let profiles = f
                    .qualified(&i.project, crate::names::collection::CHARACTER_PROFILES)
                    .await
                    .step()?;
                let mut profile: CharacterProfile = profiles
                    .into_iter()
                    .filter(|p| p["character_id"] == i.character_id.as_str())
                    .find_map(|p| serde_json::from_value(p).ok())
                    .ok_or_else(|| {
                        slate_engine::StepError::fatal(
                            "no_character",
                            format!("`{}` has no character `{}`", i.project, i.character_id),
                        )
                    })?;
                profile.appearance = i.appearance.clone();
                if let Some(c) = &i.costume {
                    profile.costume = c.clone();
                }
                let before = f
                    .repo
                    .character_references(&i.project)
                    .await
                    .step()?
                    .into_iter()
                    .find(|c| c.value.character_id == i.character_id)
                    .map_or(0, |c| c.value.versions.len() as u32);
                Ok(Planned {
                    version: before + 2,
                    profile,
                })
            })
            .await?;
        let p = &planned.profile;
        let dir = format!("characters/{}/v{}", p.character_id, planned.version);
        let sheet =
            crate::qualification::character_sheet(ctx, &self.0, &input.project, p, dir).await?;
        let v = CharacterVersion {
            version: planned.version,
            from_scene: input.from_scene,
            appearance: p.appearance.clone(),
            costume: p.costume.clone(),
            master_reference_url: sheet.master_reference_url,
            references_360: sheet.references_360,
            looks: Some(looks_of_profile(p)).filter(|l| !l.is_empty()),
            run_id: ctx.run_id().to_string(),
        };
        let (f, slug, id) = (
            self.0.clone(),
            input.project.clone(),
            input.character_id.clone(),
        );
        ctx.step("store", move |_| async move {
            f.repo.add_character_version(&slug, &id, &v).await.step()
        })
        .await?;
        Ok(planned.version)
    }
}

impl Workflow for CharacterVersioning {
    const NAME: &'static str = crate::names::workflow::CHARACTER_VERSION;
    type Input = CharacterVersionInput;
    type Output = u32;

    /// One new version of a character at a time.
    fn exclusive_key(input: &CharacterVersionInput) -> Option<String> {
        Some(format!("{}/{}", input.project, input.character_id))
    }

    async fn run(&self, ctx: Ctx, input: CharacterVersionInput) -> Result<u32, WfError> {
        match self.body(&ctx, &input).await {
            Ok(v) => Ok(v),
            Err(e) => Err(record_failure(
                &ctx,
                &self.0,
                &input.project,
                &format!(
                    "the new version of `{}` in `{}`",
                    input.character_id, input.project
                ),
                e,
                |_, _| Box::pin(async { Ok(()) }),
            )
            .await),
        }
    }
}
