//! The durable names: every workflow name, step name and step-name prefix that code other than
//! the writer reads back (estimates and costs, progress, slots, webhooks, the dashboard, the
//! CLI), each defined once here and used by writer and readers alike.
//!
//! They are a contract with the journals of runs in flight: a run started on older code replays
//! against these exact strings. Never change a value; give a changed workflow new names or a new
//! version instead. `tests/examples.rs` checks that every name here is one a production writes.

/// Workflow names (`Workflow::NAME`).
pub mod workflow {
    /// Qualification of a project's gather data.
    pub const QUALIFY: &str = "film.qualify";
    /// One scene: composite, verification, video, last frame.
    pub const SCENE: &str = "film.scene";
    /// The film: every scene, then the stitch.
    pub const GENERATE: &str = "film.generate";
    /// Qualification then the film.
    pub const PRODUCE: &str = "film.produce";
    /// A new version of a project's film from its scenes' current takes.
    pub const STITCH: &str = "film.stitch";
    /// A scene and the rest of its chain made again, in order.
    pub const CHAIN: &str = "film.chain";
    /// A new version of a character (appearance, 360-degree set) from a scene on.
    pub const CHARACTER_VERSION: &str = "film.character-version";
    /// A new version of a project's film with its sound mixed again (no picture made again).
    pub const REMIX: &str = "film.remix";
}

/// Steps of `film.qualify`; the part before the first `/` is the department.
pub mod qualify {
    /// Character profiles (language model).
    pub const PROFILES: &str = "characters/profiles";
    /// The story bible (language model).
    pub const STORY_BIBLE: &str = "world/story-bible";
    /// The style guide (language model).
    pub const STYLE_GUIDE: &str = "visual/style-guide";
    /// The screenplay (language model).
    pub const SCREENPLAY: &str = "story/screenplay";
    /// The scene breakdown (language model).
    pub const BREAKDOWN: &str = "story/breakdown";
    /// Location details (language model).
    pub const LOCATIONS: &str = "locations/details";
    /// The prop catalog (language model).
    pub const PROPS: &str = "props/catalog";
    /// Voice casting (language model).
    pub const CASTING: &str = "audio/casting";
    /// The patch point of the audio department's sound plan (issue 27).
    pub const SOUND_PATCH: &str = "audio-sound";
    /// The audio department's sound: each scene's music, ambience and effects, in words.
    pub const SOUND: &str = "audio/sound";
    /// Knowledge ingestion.
    pub const KNOWLEDGE: &str = "knowledge/ingest";
    /// Locking the gather data.
    pub const LOCK_GATHER: &str = "lock-gather";
    /// The last step.
    pub const FINISH: &str = "finish";
    /// The steps that ask the planner (a language model when remote).
    pub const PLANNER_STEPS: &[&str] = &[
        PROFILES,
        STORY_BIBLE,
        STYLE_GUIDE,
        SCREENPLAY,
        BREAKDOWN,
        LOCATIONS,
        PROPS,
        CASTING,
    ];

    /// The department a qualification step works for: the first part of its name
    /// (`characters/…` → `characters`).
    pub fn department_of(step: &str) -> Option<&str> {
        step.split('/').next().filter(|d| !d.is_empty())
    }

    /// The phase a qualification step belongs to (1: characters, world, visual; 2: story;
    /// 3: locations, props, audio; 4: knowledge and finish), 0 when none.
    pub fn phase_of(step: &str) -> usize {
        let dept = |s: &'static str| department_of(s).unwrap_or(s);
        match department_of(step) {
            Some(d) if d == dept(KNOWLEDGE) || d == dept(FINISH) => 4,
            Some(d) if [dept(LOCATIONS), dept(PROPS), dept(CASTING)].contains(&d) => 3,
            Some(d) if d == dept(SCREENPLAY) => 2,
            Some(d)
                if [
                    dept(PROFILES),
                    dept(STORY_BIBLE),
                    dept(STYLE_GUIDE),
                    dept(LOCK_GATHER),
                ]
                .contains(&d) =>
            {
                1
            }
            _ => 0,
        }
    }
}

/// Steps of `film.scene`.
pub mod scene {
    /// The shot plan (language model).
    pub const SHOT_PLAN: &str = "shot-plan";
    /// The video job's submission; holds the `video` slot until the clip is seen done.
    pub const VIDEO_SUBMIT: &str = "video/submit";
    /// Polls of the video job: `video/poll/{k}`.
    pub const VIDEO_POLL_PREFIX: &str = "video/poll/";
    /// Voice lines: `voice/{i}`.
    pub const VOICE_PREFIX: &str = "voice/";
    /// How long each voiced line is spoken (runs past the patch `takes`).
    pub const VOICE_LENGTHS: &str = "voice-lengths";
    /// The patch point of the one-pass cut (journaled as `patch/one-pass-cut`).
    pub const ONE_PASS_CUT: &str = "one-pass-cut";
    /// The clip cut to the scene's length with its voices mixed in, in one pass.
    pub const VIDEO_CUT: &str = "video/cut";
    /// The clip cut to the scene's length (before the one-pass cut).
    pub const VIDEO_TRIM: &str = "video/trim";
    /// The voices mixed into the clip (before the one-pass cut).
    pub const VIDEO_VOICES: &str = "video/voices";
    /// The clip's last frame.
    pub const LAST_FRAME: &str = "last-frame";
    /// The patch point of takes (journaled as `patch/takes`): a run past it keeps its blobs
    /// under `scenes/{id}/takes/{run}/` and records itself as a take of the scene.
    pub const TAKES: &str = "takes";
}

/// The film's sound, in `film.generate`, `film.stitch` and `film.remix` (issue 27).
pub mod sound {
    /// The patch point: a film stitched past it has its sound mixed (its stitch goes to
    /// `films/{run}.cut.mp4`, the mix to `films/{run}.mp4`).
    pub const PATCH: &str = "sound";
    /// What plays: the cues, ambience, effects and lines.
    pub const PLAN: &str = "sound/plan";
    /// One window of the stems, `sound/render/{n}` (n from 0).
    pub const RENDER: &str = "sound/render";
    /// The stems joined whole, the dialogue stem taken from the cut.
    pub const STEMS: &str = "sound/stems";
    /// The mix, brought to its loudness.
    pub const MIX: &str = "sound/mix";
    /// A re-mix's first step: the version it mixes again.
    pub const LOAD: &str = "load";
    /// A cue made by the music provider: `sound/music/{i}/kept` (made before, by its words and
    /// length), `…/submit` (paid), `…/poll{k}`, `…/wait/{k}`, `…/decode` (i from 0).
    pub const MUSIC: &str = "sound/music";
}

/// Steps of `film.generate`.
pub mod film {
    /// Stitching the clips into the film.
    pub const STITCH: &str = "stitch";
    /// The last step.
    pub const FINISH: &str = "finish";
}

/// Collections of the qualified namespace (what qualification writes and production reads).
pub mod collection {
    /// `screenplay`.
    pub const SCREENPLAY: &str = "screenplay";
    /// `story_bible`.
    pub const STORY_BIBLE: &str = "story_bible";
    /// `scene_metadata`.
    pub const SCENE_METADATA: &str = "scene_metadata";
    /// `character_profiles`.
    pub const CHARACTER_PROFILES: &str = "character_profiles";
    /// `character_360_references`.
    pub const CHARACTER_360_REFERENCES: &str = "character_360_references";
    /// `visual_guidelines`.
    pub const VISUAL_GUIDELINES: &str = "visual_guidelines";
    /// `world_rules`.
    pub const WORLD_RULES: &str = "world_rules";
    /// `location_details`.
    pub const LOCATION_DETAILS: &str = "location_details";
    /// `prop_catalog`.
    pub const PROP_CATALOG: &str = "prop_catalog";
    /// `voice_casting`.
    pub const VOICE_CASTING: &str = "voice_casting";
    /// The story bible's document id in its collection.
    pub const STORY_BIBLE_DOC: &str = "story_bible";
    /// The style guide's document id in `visual_guidelines`.
    pub const STYLE_GUIDE_DOC: &str = "style_guide";
    /// The screenplay's document id in its collection.
    pub const SCREENPLAY_DOC: &str = "screenplay";
}

/// Signals a workflow waits for, by the name a sender uses.
pub mod signal {
    /// Ends a qualification's edit window early (`continue` or `stop`).
    pub const EDIT_WINDOW: &str = "edit-window";
    /// Tells a scene that started early that the scene before it has its last frame.
    pub const PREVIOUS_SCENE: &str = "scene.previous";
}
