//! Reading and writing the structured film records.
//!
//! People edit records over HTTP with the version they read (`409` if someone changed it
//! since); the pipeline changes them with [`FilmRepo::modify_scene`], a read-modify-write that
//! retries on a version conflict, so a person's edit and the pipeline's progress never
//! overwrite each other.
//!
//! (Over 600 lines on purpose: one repository of the film tables, one section per record, the
//! same optimistic-version rule in each.)

use serde_json::Value;
use slate_activities::model::{CharacterProfile, StoryBible};

use crate::args;
use crate::db::{FilmDb, FilmRow, from_ms, now_ms};
use crate::error::{FilmError, Result};
use crate::model::*;
use crate::slug::Slug;

/// The film records.
#[derive(Debug, Clone)]
pub struct FilmRepo {
    db: FilmDb,
}

fn project_from(r: &FilmRow) -> Result<Project> {
    Ok(Project {
        slug: r.text("slug")?,
        title: r.text("title")?,
        status: ProjectStatus::parse(&r.text("status")?)?,
        gather_locked_at: r.opt_int("gather_locked_at")?.map(from_ms),
        final_video: r.opt_text("final_video")?,
        qualification_run: r.opt_text("qualification_run")?,
        production_run: r.opt_text("production_run")?,
        budget_usd: r.opt_int("budget_micros")?.map(|m| m as f64 / 1e6),
        approval_required: r.int("approval_required")? != 0,
        auto_restitch: r.int("auto_restitch")? != 0,
        sound: serde_json::from_str(&r.text("sound")?).map_err(|e| {
            FilmError::Internal(format!("the project's sound settings do not read: {e}"))
        })?,
        version: r.int("version")?,
        created_at: from_ms(r.int("created_at")?),
        updated_at: from_ms(r.int("updated_at")?),
    })
}

fn scene_from(r: &FilmRow) -> Result<Scene> {
    let mut s: Scene = r.json("doc")?;
    s.version = r.int("version")?;
    s.created_at = Some(from_ms(r.int("created_at")?));
    s.updated_at = Some(from_ms(r.int("updated_at")?));
    Ok(s)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| FilmError::Internal(e.to_string()))
}

/// A versioned document record (story bible, character reference).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Versioned<T> {
    /// The record.
    #[serde(flatten)]
    pub value: T,
    /// Its version (send it back with an edit).
    pub version: i64,
}

/// A character's reference sheet (the 360-degree views' metadata).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CharacterReference {
    /// Character id.
    pub character_id: String,
    /// Name.
    pub name: String,
    /// Master reference (blob key).
    pub master_reference_url: String,
    /// View name -> image and description.
    pub references_360: std::collections::BTreeMap<String, ViewReference>,
    /// Colour used to draw the character.
    #[serde(default)]
    pub color: String,
    /// What a storyboard draws of their appearance (absent on sheets made before looks were
    /// read: those characters are drawn plain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub looks: Option<slate_activities::model::Looks>,
    /// Later versions of the character (a new costume, an injury), each from a scene on
    /// (issue 26); the sheet above is the one before the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<CharacterVersion>,
}

/// A version of a character from a given scene on: a new appearance with its own 360-degree
/// set.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CharacterVersion {
    /// 2, 3, ... (the qualified sheet is version 1).
    pub version: u32,
    /// The first scene (by number) that shows it.
    pub from_scene: i32,
    /// The appearance it was made from.
    pub appearance: String,
    /// The costume it was made from.
    #[serde(default)]
    pub costume: String,
    /// Master reference (blob key).
    pub master_reference_url: String,
    /// View name -> image and description.
    pub references_360: std::collections::BTreeMap<String, ViewReference>,
    /// What a storyboard draws of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub looks: Option<slate_activities::model::Looks>,
    /// The run that made it.
    pub run_id: String,
}

impl CharacterReference {
    /// The character as scene `scene_number` shows it: the latest version from that scene or
    /// before, else the qualified sheet.
    pub fn for_scene(&self, scene_number: i32) -> CharacterReference {
        let mut r = self.clone();
        if let Some(v) = self
            .versions
            .iter()
            .filter(|v| v.from_scene <= scene_number)
            .max_by_key(|v| (v.from_scene, v.version))
        {
            r.master_reference_url = v.master_reference_url.clone();
            r.references_360 = v.references_360.clone();
            r.looks = v.looks.clone();
        }
        r.versions.clear();
        r
    }
}

/// One view of a character sheet.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ViewReference {
    /// Blob key.
    pub url: String,
    /// What the vision model saw.
    pub description: String,
}

/// The drawable looks a profile's appearance and costume describe (a storyboard draws them; a
/// remote image model reads the same words in its prompt).
pub fn looks_of_profile(p: &CharacterProfile) -> slate_activities::model::Looks {
    slate_activities::local::reader::looks_of(&format!("{}; {}", p.appearance, p.costume))
}

impl CharacterReference {
    /// The profile it belongs to is not stored here; only what the pipeline generated.
    pub fn for_profile(p: &CharacterProfile) -> Self {
        CharacterReference {
            character_id: p.character_id.clone(),
            name: p.name.clone(),
            master_reference_url: String::new(),
            references_360: Default::default(),
            color: p.palette.first().cloned().unwrap_or_default(),
            looks: Some(looks_of_profile(p)).filter(|l| !l.is_empty()),
            versions: vec![],
        }
    }
}

const PROJECT_COLS: &str = "slug, title, status, gather_locked_at, final_video, qualification_run, production_run, budget_micros, approval_required, auto_restitch, sound, version, created_at, updated_at";

impl FilmRepo {
    /// Records in `db`.
    pub fn new(db: FilmDb) -> Self {
        FilmRepo { db }
    }

    /// The database.
    pub fn db(&self) -> &FilmDb {
        &self.db
    }

    // --- projects ---------------------------------------------------------------------------

    /// Create a project.
    pub async fn create_project(&self, slug: &Slug, title: &str) -> Result<Project> {
        let title = title.trim();
        if !slate_activities::model::has_text(title) || title.chars().count() > 200 {
            return Err(FilmError::Invalid(
                "a project needs a title of 1 to 200 characters".into(),
            ));
        }
        let now = now_ms();
        let n = self
            .db
            .exec(
                "INSERT INTO projects (slug, title, status, created_at, updated_at)
                 VALUES ($1, $2, 'gathering', $3, $3) ON CONFLICT (slug) DO NOTHING",
                args![slug.as_str(), title, now],
            )
            .await?;
        if n == 0 {
            return Err(FilmError::Conflict(format!(
                "a project `{slug}` already exists"
            )));
        }
        self.project(slug).await
    }

    /// A project.
    pub async fn project(&self, slug: &Slug) -> Result<Project> {
        let r = self
            .db
            .fetch_fresh(
                "SELECT slug, title, status, gather_locked_at, final_video, qualification_run, production_run, budget_micros, approval_required, auto_restitch, sound, version, created_at, updated_at
                 FROM projects WHERE slug = $1",
                args![slug.as_str()],
            )
            .await?;
        r.first()
            .map(project_from)
            .transpose()?
            .ok_or_else(|| FilmError::NotFound(format!("project `{slug}`")))
    }

    /// All projects, newest first.
    pub async fn projects(&self) -> Result<Vec<Project>> {
        let _ = PROJECT_COLS;
        self.db
            .fetch(
                "SELECT slug, title, status, gather_locked_at, final_video, qualification_run, production_run, budget_micros, approval_required, auto_restitch, sound, version, created_at, updated_at
                 FROM projects ORDER BY created_at DESC, slug",
                vec![],
            )
            .await?
            .iter()
            .map(project_from)
            .collect()
    }

    /// Set a project's status.
    pub async fn set_project_status(&self, slug: &Slug, status: ProjectStatus) -> Result<()> {
        self.db
            .exec(
                "UPDATE projects SET status = $2, version = version + 1, updated_at = $3 WHERE slug = $1",
                args![slug.as_str(), status.as_str(), now_ms()],
            )
            .await?;
        Ok(())
    }

    /// Make the gather namespace read-only (idempotent: the first lock time stays).
    pub async fn lock_gather(&self, slug: &Slug) -> Result<()> {
        let n = self
            .db
            .exec(
                "UPDATE projects SET gather_locked_at = COALESCE(gather_locked_at, $2),
                        status = CASE WHEN status = 'gathering' THEN 'qualifying' ELSE status END,
                        version = version + 1, updated_at = $2
                 WHERE slug = $1",
                args![slug.as_str(), now_ms()],
            )
            .await?;
        if n == 0 {
            return Err(FilmError::NotFound(format!("project `{slug}`")));
        }
        Ok(())
    }

    /// Record a project's runs.
    pub async fn set_runs(
        &self,
        slug: &Slug,
        qualification: Option<String>,
        production: Option<String>,
    ) -> Result<()> {
        self.db
            .exec(
                "UPDATE projects SET qualification_run = COALESCE($2, qualification_run),
                        production_run = COALESCE($3, production_run), version = version + 1, updated_at = $4
                 WHERE slug = $1",
                args![slug.as_str(), qualification, production, now_ms()],
            )
            .await?;
        Ok(())
    }

    /// Set (or with `None` remove) what all of the project's runs together may spend.
    pub async fn set_budget(&self, slug: &Slug, usd: Option<f64>) -> Result<()> {
        let micros = usd.map(|u| (u * 1e6).round() as i64);
        self.db
            .exec(
                "UPDATE projects SET budget_micros = $2, version = version + 1, updated_at = $3 WHERE slug = $1",
                args![slug.as_str(), micros, now_ms()],
            )
            .await?;
        Ok(())
    }

    /// Whether each scene's verified composite waits for a person before its video.
    pub async fn set_approval_required(&self, slug: &Slug, required: bool) -> Result<()> {
        self.db
            .exec(
                "UPDATE projects SET approval_required = $2, version = version + 1, updated_at = $3 WHERE slug = $1",
                args![slug.as_str(), required as i64, now_ms()],
            )
            .await?;
        Ok(())
    }

    /// Whether the film is stitched again on its own when a scene's take changes.
    pub async fn set_auto_restitch(&self, slug: &Slug, on: bool) -> Result<()> {
        self.db
            .exec(
                "UPDATE projects SET auto_restitch = $2, version = version + 1, updated_at = $3 WHERE slug = $1",
                args![slug.as_str(), on as i64, now_ms()],
            )
            .await?;
        Ok(())
    }

    /// How the film sounds from its next mix on.
    pub async fn set_sound(&self, slug: &Slug, sound: &SoundSettings) -> Result<()> {
        sound.validate()?;
        self.db
            .exec(
                "UPDATE projects SET sound = $2, version = version + 1, updated_at = $3 WHERE slug = $1",
                args![slug.as_str(), to_json(sound)?, now_ms()],
            )
            .await?;
        Ok(())
    }

    /// Keep a stitch of the film as its next version and make it the project's film
    /// (idempotent on the run that stitched it: a step run again after a crash finds it).
    pub async fn add_film_version(&self, slug: &Slug, v: &FilmVersion) -> Result<FilmVersion> {
        let now = now_ms();
        self.db
            .exec(
                "INSERT INTO film_versions (project, version, run_id, video, doc, created_at)
                 SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5 FROM film_versions WHERE project = $1
                 ON CONFLICT (run_id) DO NOTHING",
                args![slug.as_str(), v.run_id.clone(), v.video.clone(), to_json(v)?, now],
            )
            .await?;
        self.set_final_video(slug, &v.video).await?;
        self.film_versions(slug)
            .await?
            .into_iter()
            .find(|x| x.run_id == v.run_id)
            .ok_or_else(|| {
                FilmError::Internal(format!("film version of run {} not kept", v.run_id))
            })
    }

    /// A project's film versions, oldest first.
    pub async fn film_versions(&self, slug: &Slug) -> Result<Vec<FilmVersion>> {
        self.db
            .fetch_fresh(
                "SELECT version, doc, created_at FROM film_versions WHERE project = $1 ORDER BY version",
                args![slug.as_str()],
            )
            .await?
            .iter()
            .map(|r| {
                let mut v: FilmVersion = r.json("doc")?;
                v.version = r.int("version")?;
                v.created_at = Some(from_ms(r.int("created_at")?));
                Ok(v)
            })
            .collect()
    }

    /// Record the final film.
    pub async fn set_final_video(&self, slug: &Slug, key: &str) -> Result<()> {
        self.db
            .exec(
                "UPDATE projects SET final_video = $2, status = 'completed', version = version + 1, updated_at = $3 WHERE slug = $1",
                args![slug.as_str(), key, now_ms()],
            )
            .await?;
        Ok(())
    }

    // --- scenes -----------------------------------------------------------------------------

    /// Insert scenes (idempotent on project and scene number), in one transaction.
    pub async fn insert_scenes(&self, scenes: &[Scene]) -> Result<usize> {
        let now = now_ms();
        let mut stmts = vec![];
        for s in scenes {
            s.validate()?;
            stmts.push((
                "INSERT INTO scenes (id, project, scene_number, sequence_number, status, expected_duration, retry_count, doc, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT DO NOTHING",
                args![s.id.clone(), s.project.clone(), s.scene_number, s.sequence_number, s.status.as_str(), s.expected_duration, s.retry_count, to_json(s)?, now],
            ));
        }
        Ok(self.db.exec_all(stmts).await?.iter().sum::<u64>() as usize)
    }

    /// A scene.
    pub async fn scene(&self, id: &str) -> Result<Scene> {
        self.db
            .fetch_fresh(
                "SELECT doc, version, created_at, updated_at FROM scenes WHERE id = $1",
                args![id],
            )
            .await?
            .first()
            .map(scene_from)
            .transpose()?
            .ok_or_else(|| FilmError::NotFound(format!("scene `{id}`")))
    }

    /// A project's scenes in film order.
    pub async fn scenes(&self, slug: &Slug) -> Result<Vec<Scene>> {
        self.db
            .fetch_fresh(
                "SELECT doc, version, created_at, updated_at FROM scenes WHERE project = $1 ORDER BY sequence_number, scene_number",
                args![slug.as_str()],
            )
            .await?
            .iter()
            .map(scene_from)
            .collect()
    }

    async fn write_scene(&self, s: &Scene, expected_version: i64) -> Result<bool> {
        s.validate()?;
        let n = self
            .db
            .exec(
                "UPDATE scenes SET doc = $2, status = $3, expected_duration = $4, retry_count = $5,
                        sequence_number = $6, version = version + 1, updated_at = $7
                 WHERE id = $1 AND version = $8",
                args![
                    s.id.clone(),
                    to_json(s)?,
                    s.status.as_str(),
                    s.expected_duration,
                    s.retry_count,
                    s.sequence_number,
                    now_ms(),
                    expected_version
                ],
            )
            .await?;
        Ok(n > 0)
    }

    /// A person's edit, based on `version`: refused with a conflict if the scene changed since.
    pub async fn edit_scene(&self, id: &str, version: i64, patch: &Value) -> Result<Scene> {
        let current = self.scene(id).await?;
        if current.version != version {
            return Err(FilmError::Conflict(format!(
                "scene `{id}` is at version {} (you edited version {version}); reload it and edit again",
                current.version
            )));
        }
        let edited = current.apply_edit(patch)?;
        if !self.write_scene(&edited, version).await? {
            return Err(FilmError::Conflict(format!(
                "scene `{id}` changed while you edited it; reload it"
            )));
        }
        self.scene(id).await
    }

    /// The pipeline's change to a scene: applied to the latest version, retried on conflict.
    pub async fn modify_scene(&self, id: &str, f: impl Fn(&mut Scene)) -> Result<Scene> {
        for _ in 0..20 {
            let mut s = self.scene(id).await?;
            let v = s.version;
            f(&mut s);
            if self.write_scene(&s, v).await? {
                return self.scene(id).await;
            }
        }
        Err(FilmError::Conflict(format!(
            "scene `{id}` kept changing; try again"
        )))
    }

    // --- prompt templates -------------------------------------------------------------------

    /// Insert the default templates that do not exist yet.
    pub async fn seed_templates(&self) -> Result<()> {
        let now = now_ms();
        let stmts = default_templates()
            .iter()
            .map(|t| {
                Ok((
                    "INSERT INTO prompt_templates (name, category, doc, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING",
                    args![t.name.clone(), t.category.clone(), to_json(t)?, now],
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        self.db.exec_all(stmts).await?;
        Ok(())
    }

    /// All templates by name.
    pub async fn templates(&self) -> Result<Vec<PromptTemplate>> {
        self.db
            .fetch(
                "SELECT doc, version FROM prompt_templates ORDER BY name",
                vec![],
            )
            .await?
            .iter()
            .map(|r| {
                let mut t: PromptTemplate = r.json("doc")?;
                t.version = r.int("version")?;
                Ok(t)
            })
            .collect()
    }

    /// A template.
    pub async fn template(&self, name: &str) -> Result<PromptTemplate> {
        let r = self
            .db
            .fetch_fresh(
                "SELECT doc, version FROM prompt_templates WHERE name = $1",
                args![name],
            )
            .await?;
        let r = r
            .first()
            .ok_or_else(|| FilmError::NotFound(format!("template `{name}`")))?;
        let mut t: PromptTemplate = r.json("doc")?;
        t.version = r.int("version")?;
        Ok(t)
    }

    /// Create a template.
    pub async fn create_template(&self, t: &PromptTemplate) -> Result<PromptTemplate> {
        t.validate()?;
        let now = now_ms();
        let n = self
            .db
            .exec(
                "INSERT INTO prompt_templates (name, category, doc, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING",
                args![t.name.clone(), t.category.clone(), to_json(t)?, now],
            )
            .await?;
        if n == 0 {
            return Err(FilmError::Conflict(format!(
                "a template named `{}` already exists",
                t.name
            )));
        }
        self.template(&t.name).await
    }

    /// Replace a template, based on `version`.
    pub async fn update_template(
        &self,
        name: &str,
        version: i64,
        t: &PromptTemplate,
    ) -> Result<PromptTemplate> {
        if t.name != name {
            return Err(FilmError::Invalid("a template's name cannot change".into()));
        }
        t.validate()?;
        self.template(name).await?;
        let n = self
            .db
            .exec(
                "UPDATE prompt_templates SET doc = $2, category = $3, version = version + 1, updated_at = $4 WHERE name = $1 AND version = $5",
                args![name, to_json(t)?, t.category.clone(), now_ms(), version],
            )
            .await?;
        if n == 0 {
            return Err(FilmError::Conflict(format!(
                "template `{name}` is not at version {version}; reload it"
            )));
        }
        self.template(name).await
    }

    // --- story bible and character references ----------------------------------------------

    /// Store the story bible (the pipeline's write: replaces it).
    pub async fn put_story_bible(&self, slug: &Slug, bible: &StoryBible) -> Result<()> {
        self.db
            .exec(
                "INSERT INTO story_bibles (project, doc, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (project) DO UPDATE SET doc = $2, version = story_bibles.version + 1, updated_at = $3",
                args![slug.as_str(), to_json(bible)?, now_ms()],
            )
            .await?;
        Ok(())
    }

    /// The story bible.
    pub async fn story_bible(&self, slug: &Slug) -> Result<Versioned<StoryBible>> {
        let r = self
            .db
            .fetch_fresh(
                "SELECT doc, version FROM story_bibles WHERE project = $1",
                args![slug.as_str()],
            )
            .await?;
        let r = r
            .first()
            .ok_or_else(|| FilmError::NotFound(format!("the story bible of `{slug}`")))?;
        Ok(Versioned {
            value: r.json("doc")?,
            version: r.int("version")?,
        })
    }

    /// A person's edit of the story bible, based on `version`.
    pub async fn edit_story_bible(
        &self,
        slug: &Slug,
        version: i64,
        bible: &StoryBible,
    ) -> Result<Versioned<StoryBible>> {
        if !slate_activities::model::has_text(&bible.title) {
            return Err(FilmError::Invalid("the story bible needs a title".into()));
        }
        for r in &bible.world_rules {
            slate_activities::model::options::check(
                "rule_category",
                &r.rule_category,
                &["physics", "magic", "technology", "society", "history"],
            )
            .map_err(FilmError::Invalid)?;
        }
        for r in &bible.consistency_rules {
            slate_activities::model::options::check(
                "priority",
                &r.priority,
                &["critical", "high", "medium", "low"],
            )
            .map_err(FilmError::Invalid)?;
        }
        self.story_bible(slug).await?;
        let n = self
            .db
            .exec(
                "UPDATE story_bibles SET doc = $2, version = version + 1, updated_at = $3 WHERE project = $1 AND version = $4",
                args![slug.as_str(), to_json(bible)?, now_ms(), version],
            )
            .await?;
        if n == 0 {
            return Err(FilmError::Conflict(format!(
                "the story bible of `{slug}` is not at version {version}; reload it"
            )));
        }
        self.story_bible(slug).await
    }

    /// Store a character reference (the pipeline's write).
    pub async fn put_character_reference(&self, slug: &Slug, r: &CharacterReference) -> Result<()> {
        self.db
            .exec(
                "INSERT INTO character_references (project, character_id, doc, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (project, character_id) DO UPDATE SET doc = $3, version = character_references.version + 1, updated_at = $4",
                args![slug.as_str(), r.character_id.clone(), to_json(r)?, now_ms()],
            )
            .await?;
        Ok(())
    }

    /// Keep a new version of character `id` (idempotent on the run that made it).
    pub async fn add_character_version(
        &self,
        slug: &Slug,
        id: &str,
        v: &CharacterVersion,
    ) -> Result<()> {
        for _ in 0..20 {
            let Some(now) = self
                .character_references(slug)
                .await?
                .into_iter()
                .find(|c| c.value.character_id == id)
            else {
                return Err(FilmError::NotFound(format!("character `{id}` of `{slug}`")));
            };
            if now.value.versions.iter().any(|x| x.run_id == v.run_id) {
                return Ok(());
            }
            let mut r = now.value;
            r.versions.push(v.clone());
            let n = self
                .db
                .exec(
                    "UPDATE character_references SET doc = $3, version = version + 1, updated_at = $4 WHERE project = $1 AND character_id = $2 AND version = $5",
                    args![slug.as_str(), id, to_json(&r)?, now_ms(), now.version],
                )
                .await?;
            if n > 0 {
                return Ok(());
            }
        }
        Err(FilmError::Conflict(format!(
            "character `{id}` kept changing; try again"
        )))
    }

    /// A project's character references.
    pub async fn character_references(
        &self,
        slug: &Slug,
    ) -> Result<Vec<Versioned<CharacterReference>>> {
        self.db
            .fetch_fresh(
                "SELECT doc, version FROM character_references WHERE project = $1 ORDER BY character_id",
                args![slug.as_str()],
            )
            .await?
            .iter()
            .map(|r| Ok(Versioned { value: r.json("doc")?, version: r.int("version")? }))
            .collect()
    }

    /// A person's edit of a character reference (descriptions, chosen images), based on `version`.
    pub async fn edit_character_reference(
        &self,
        slug: &Slug,
        id: &str,
        version: i64,
        r: &CharacterReference,
    ) -> Result<Versioned<CharacterReference>> {
        if r.character_id != id {
            return Err(FilmError::Invalid(
                "a character reference's id cannot change".into(),
            ));
        }
        // Its versions are made by the pipeline: an edit of the sheet keeps them.
        let mut r = r.clone();
        if let Some(now) = self
            .character_references(slug)
            .await?
            .into_iter()
            .find(|c| c.value.character_id == id)
        {
            r.versions = now.value.versions;
        }
        let r = &r;
        if let Some(k) = r
            .references_360
            .keys()
            .find(|k| !slate_activities::model::options::ANGLES.contains(&k.as_str()))
        {
            return Err(FilmError::Invalid(format!(
                "`{k}` is not one of the six views: {}",
                slate_activities::model::options::ANGLES.join(", ")
            )));
        }
        let n = self
            .db
            .exec(
                "UPDATE character_references SET doc = $3, version = version + 1, updated_at = $4 WHERE project = $1 AND character_id = $2 AND version = $5",
                args![slug.as_str(), id, to_json(r)?, now_ms(), version],
            )
            .await?;
        if n == 0 {
            let exists = self
                .character_references(slug)
                .await?
                .iter()
                .any(|c| c.value.character_id == id);
            return Err(if exists {
                FilmError::Conflict(format!(
                    "character reference `{id}` is not at version {version}; reload it"
                ))
            } else {
                FilmError::NotFound(format!("character reference `{id}` of `{slug}`"))
            });
        }
        self.character_references(slug)
            .await?
            .into_iter()
            .find(|c| c.value.character_id == id)
            .ok_or_else(|| FilmError::NotFound(format!("character reference `{id}`")))
    }

    // --- reopening the gather ----------------------------------------------------------------

    /// Open a locked gather namespace again after a failed or stopped qualification: the lock
    /// goes, the project is gathering again, and everything the failed attempt wrote (scenes,
    /// story bible, character references, the qualified namespace in this database) is removed
    /// so the next qualification starts clean. One transaction, recorded as a project event.
    /// The caller checks that no qualification is running (see
    /// `qualification::reopen_gather`).
    pub async fn reopen_gather(&self, slug: &Slug, message: &str, details: &Value) -> Result<()> {
        let now = now_ms();
        let p = slug.as_str();
        self.db
            .exec_all(vec![
                (
                    "UPDATE projects SET gather_locked_at = NULL, status = 'gathering', final_video = NULL,
                            version = version + 1, updated_at = $2 WHERE slug = $1",
                    args![p, now],
                ),
                ("DELETE FROM scenes WHERE project = $1", args![p]),
                ("DELETE FROM story_bibles WHERE project = $1", args![p]),
                ("DELETE FROM character_references WHERE project = $1", args![p]),
                ("DELETE FROM documents WHERE namespace = $1", args![slug.qualified()]),
                (
                    "INSERT INTO project_events (id, project, kind, message, details, created_at)
                     VALUES ($1, $2, 'gather_reopened', $3, $4, $5)",
                    args![uuid::Uuid::now_v7().to_string(), p, message, details.to_string(), now],
                ),
            ])
            .await?;
        Ok(())
    }

    /// A project's events, oldest first.
    pub async fn project_events(&self, slug: &Slug) -> Result<Vec<ProjectEvent>> {
        self.db
            .fetch_fresh(
                "SELECT id, kind, message, details, created_at FROM project_events WHERE project = $1 ORDER BY created_at, id",
                args![slug.as_str()],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(ProjectEvent {
                    id: r.text("id")?,
                    kind: r.text("kind")?,
                    message: r.text("message")?,
                    details: r.json("details")?,
                    created_at: from_ms(r.int("created_at")?),
                })
            })
            .collect()
    }

    // --- global errors ----------------------------------------------------------------------

    /// Record a global error once per `dedupe_key` (a step re-executed after a crash does not
    /// record it twice).
    pub async fn record_error(
        &self,
        project: Option<&Slug>,
        phase: &str,
        message: &str,
        details: &Value,
        dedupe_key: &str,
    ) -> Result<()> {
        self.db
            .exec(
                "INSERT INTO global_errors (id, project, phase, message, details, dedupe_key, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING",
                args![
                    uuid::Uuid::now_v7().to_string(),
                    project.map(|p| p.to_string()),
                    phase,
                    message,
                    details.to_string(),
                    dedupe_key,
                    now_ms()
                ],
            )
            .await?;
        Ok(())
    }

    /// Global errors, newest first (only the open ones unless `all`).
    pub async fn errors(&self, all: bool) -> Result<Vec<GlobalError>> {
        let rows = if all {
            self.db
                .fetch_fresh("SELECT id, project, phase, message, details, created_at, dismissed_at FROM global_errors ORDER BY created_at DESC, id DESC", vec![])
                .await?
        } else {
            self.db
                .fetch_fresh("SELECT id, project, phase, message, details, created_at, dismissed_at FROM global_errors WHERE dismissed_at IS NULL ORDER BY created_at DESC, id DESC", vec![])
                .await?
        };
        rows.iter()
            .map(|r| {
                Ok(GlobalError {
                    id: r.text("id")?,
                    project: r.opt_text("project")?,
                    phase: r.text("phase")?,
                    message: r.text("message")?,
                    details: r.json("details")?,
                    created_at: from_ms(r.int("created_at")?),
                    dismissed_at: r.opt_int("dismissed_at")?.map(from_ms),
                })
            })
            .collect()
    }

    /// Dismiss a global error.
    pub async fn dismiss_error(&self, id: &str) -> Result<()> {
        let n = self
            .db
            .exec(
                "UPDATE global_errors SET dismissed_at = COALESCE(dismissed_at, $2) WHERE id = $1",
                args![id, now_ms()],
            )
            .await?;
        if n == 0 {
            return Err(FilmError::NotFound(format!("global error `{id}`")));
        }
        Ok(())
    }
}
