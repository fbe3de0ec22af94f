//! OpenRouter: chat completions with a strict JSON schema, the answer validated into our types,
//! and the remote planner built on it.
//!
//! Errors: `{error:{code, message}}` with HTTP status = code; 408/429/5xx are retried (honouring
//! `Retry-After`), 400/401/402/403 never. An error that happens after generation started comes
//! back as HTTP 200 with an error body, so the body is checked, not only the status.
//!
//! (Over 600 lines on purpose: one provider's client: its request shapes, prompts, answer parsing
//! and error classes for every planner call, each of which must follow the same contract.)

use async_trait::async_trait;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::config::OpenRouterSettings;
use crate::error::{ActivityError, ErrorKind, Result};
use crate::http::{self, Answer};
use crate::model::*;
use crate::traits::{Paid, Planner, ShotContext, Spend};

const P: &str = "openrouter";

/// The OpenRouter client.
#[derive(Debug, Clone)]
pub struct OpenRouterClient {
    http: reqwest::Client,
    settings: OpenRouterSettings,
    prices: crate::pricing::Prices,
}

fn classify(a: &Answer, err: Option<&Value>) -> ActivityError {
    let code = err
        .and_then(|e| e.get("code"))
        .and_then(|c| c.as_u64())
        .map(|c| c as u16)
        .unwrap_or(a.status.as_u16());
    let message = err
        .and_then(|e| e.get("message"))
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| http::truncate(&a.raw, 300));
    let (kind, retryable) = match code {
        408 => (ErrorKind::Timeout, true),
        429 => (ErrorKind::RateLimited, true),
        401 | 403 => (ErrorKind::Unauthorized, false),
        402 => (ErrorKind::PaymentRequired, false),
        400 | 404 | 422 => (ErrorKind::BadRequest, false),
        500..=599 => (ErrorKind::Unavailable, true),
        // A 200 with an error code we do not know: the generation failed midway.
        _ => (ErrorKind::Unavailable, true),
    };
    let mut e = ActivityError::new(P, kind, format!("error {code}: {message}"))
        .with_status(code)
        .with_details(err.cloned().unwrap_or(a.body.clone()))
        .retryable(retryable);
    e.retry_after = http::retry_after(&a.headers);
    e
}

impl OpenRouterClient {
    /// A client.
    pub fn new(settings: OpenRouterSettings) -> Self {
        OpenRouterClient {
            http: http::client(settings.timeout),
            settings,
            prices: crate::pricing::Prices::default(),
        }
    }

    /// Price missing costs with `prices` (the defaults and `SLATE_PRICES`).
    pub fn with_prices(mut self, prices: crate::pricing::Prices) -> Self {
        self.prices = prices;
        self
    }

    /// Ask for a JSON answer matching `schema` (a strict JSON schema whose root is an object),
    /// and read it into `T`.
    pub async fn complete_json<T: DeserializeOwned>(
        &self,
        name: &str,
        system: &str,
        user: &str,
        schema: Value,
    ) -> Result<Paid<T>> {
        let body = json!({
            "model": self.settings.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "strict": true, "schema": schema},
            },
            "provider": {"require_parameters": true},
            "max_tokens": self.settings.max_tokens,
        });
        let rb = self
            .http
            .post(&self.settings.url)
            .bearer_auth(self.settings.key.expose())
            .json(&body);
        let a = http::send(P, rb).await?;
        if let Some(err) = a.body.get("error") {
            return Err(classify(&a, Some(err)));
        }
        if !a.status.is_success() {
            return Err(classify(&a, None));
        }
        // An error after generation started arrives as a 200 whose choice carries it.
        if let Some(err) = a.body.pointer("/choices/0/error") {
            return Err(classify(&a, Some(err)));
        }
        let finish = a
            .body
            .pointer("/choices/0/finish_reason")
            .and_then(|f| f.as_str())
            .unwrap_or("");
        match finish {
            // Cut off: the JSON is incomplete. Asking again with the same limit would be cut
            // again, so it is final and says what to change.
            "length" => {
                return Err(ActivityError::new(
                    P,
                    ErrorKind::Truncated,
                    format!(
                        "the `{name}` answer was cut off at max_tokens = {} before it was complete; raise SLATE_OPENROUTER_MAX_TOKENS",
                        self.settings.max_tokens
                    ),
                )
                .retryable(false));
            }
            "content_filter" => {
                return Err(ActivityError::new(
                    P,
                    ErrorKind::ContentPolicy,
                    format!("the `{name}` answer was withheld by the provider's content filter"),
                )
                .retryable(false));
            }
            "error" => {
                return Err(ActivityError::new(
                    P,
                    ErrorKind::Unavailable,
                    format!("the `{name}` answer ended in an error at the provider"),
                )
                .retryable(true));
            }
            _ => {}
        }
        let content = a
            .body
            .pointer("/choices/0/message/content")
            .and_then(|c| c.as_str())
            .ok_or_else(|| {
                ActivityError::new(
                    P,
                    ErrorKind::Malformed,
                    "the answer has no choices[0].message.content",
                )
            })?;
        let value: Value = serde_json::from_str(content).map_err(|e| {
            ActivityError::new(
                P,
                ErrorKind::Malformed,
                format!("the model's answer is not JSON: {e}"),
            )
            .with_details(Value::String(http::truncate(content, 500)))
        })?;
        let parsed: T = http::decode(P, &format!("the `{name}` answer"), &value)?;
        Ok(Paid {
            value: parsed,
            spend: self.spend(&a.body, user),
        })
    }

    /// What an answer cost: `usage.cost` as OpenRouter reports it; where it is missing, the
    /// tokens it reports at the table's prices (or the prompt's length), marked estimated.
    fn spend(&self, body: &Value, prompt: &str) -> Spend {
        let usage = body.get("usage");
        let n = |k: &str| usage.and_then(|u| u.get(k)).and_then(|t| t.as_f64());
        let tokens_in =
            n("prompt_tokens").unwrap_or(prompt.len() as f64 / crate::pricing::CHARS_PER_TOKEN);
        let tokens_out = n("completion_tokens").unwrap_or(crate::pricing::TYPICAL_CALL_TOKENS.1);
        let units = n("total_tokens").unwrap_or(tokens_in + tokens_out);
        let expected = self
            .prices
            .llm_call(&self.settings.model, tokens_in, tokens_out);
        Spend::billed_or(units, n("cost"), expected)
    }
}

/// Strict-schema building blocks (every property required, no extra properties).
mod schema {
    use serde_json::{Value, json};

    pub(super) fn s() -> Value {
        json!({"type": "string"})
    }
    pub(super) fn n() -> Value {
        json!({"type": "number"})
    }
    pub(super) fn i() -> Value {
        json!({"type": "integer"})
    }
    pub(super) fn b() -> Value {
        json!({"type": "boolean"})
    }
    pub(super) fn e(values: &[&str]) -> Value {
        json!({"type": "string", "enum": values})
    }
    pub(super) fn a(item: Value) -> Value {
        json!({"type": "array", "items": item})
    }
    pub(super) fn o(fields: &[(&str, Value)]) -> Value {
        let props: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let req: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
        json!({"type": "object", "properties": props, "required": req, "additionalProperties": false})
    }
}

use schema::{a as arr, b as boolean, e as enm, i as int, n as num, o as obj, s as string};

fn characters_schema() -> Value {
    obj(&[(
        "characters",
        arr(obj(&[
            ("character_id", string()),
            ("name", string()),
            ("role", string()),
            ("personality", string()),
            ("appearance", string()),
            ("background", string()),
            ("costume", string()),
            ("palette", arr(string())),
        ])),
    )])
}

fn dialogue_schema() -> Value {
    obj(&[("character", string()), ("line", string())])
}

fn scene_schema() -> Value {
    use options::*;
    obj(&[
        ("scene_number", int()),
        ("sequence_number", int()),
        ("screenplay_text", string()),
        ("expected_duration", num()),
        ("dramatic_effect", string()),
        ("location", string()),
        ("time_of_day", enm(TIME_OF_DAY)),
        ("weather", enm(WEATHER)),
        ("camera_angle", enm(CAMERA_ANGLE)),
        ("camera_shot", enm(CAMERA_SHOT)),
        ("camera_movement", enm(CAMERA_MOVEMENT)),
        ("lighting_type", enm(LIGHTING_TYPE)),
        ("lighting_mood", string()),
        ("pacing", enm(PACING)),
        ("characters_present", arr(string())),
        ("props", arr(string())),
        ("dialogue", arr(dialogue_schema())),
        ("transition_in", enm(TRANSITION_IN)),
        ("transition_out", enm(TRANSITION_OUT)),
    ])
}

#[derive(Deserialize)]
struct Wrap<T> {
    #[serde(
        alias = "characters",
        alias = "departments",
        alias = "scenes",
        alias = "locations",
        alias = "props",
        alias = "voices"
    )]
    items: T,
}

#[derive(Deserialize)]
struct Relation {
    from: String,
    to: String,
    relation: String,
}

#[derive(Deserialize)]
struct BibleAnswer {
    title: String,
    logline: String,
    world_rules: Vec<WorldRule>,
    relationships: Vec<Relation>,
    timeline: Vec<TimelineEvent>,
    consistency_rules: Vec<ConsistencyRule>,
    locations: Vec<BibleLocation>,
}

/// The language model through OpenRouter.
#[derive(Debug, Clone)]
pub struct RemotePlanner {
    client: OpenRouterClient,
}

impl RemotePlanner {
    /// A planner through `client`.
    pub fn new(client: OpenRouterClient) -> Self {
        RemotePlanner { client }
    }
}

use prompt::SYSTEM;

/// The prompts the planner sends, one function per task: the estimate measures the same text
/// to count the tokens a production will pay for.
pub mod prompt {
    use crate::model::*;
    use crate::traits::ShotContext;

    /// The system message of every call.
    pub const SYSTEM: &str = "You are a department of a film production. Answer only with JSON that matches the schema. \
Keep names and ids exactly as given. Scenes last 3 to 7 seconds.";

    fn pretty<T: serde::Serialize + ?Sized>(v: &T) -> String {
        serde_json::to_string_pretty(v).unwrap_or_default()
    }

    /// Readiness of every department.
    pub fn readiness(g: &GatherSnapshot) -> String {
        format!(
            "Score each department's gathered material 0-100 for completeness (ready at {READY_SCORE}) and list what is missing.\n\nGathered data:\n{}",
            pretty(g)
        )
    }

    /// The characters' profiles.
    pub fn characters(g: &GatherSnapshot) -> String {
        format!(
            "Qualify the raw characters into profiles: deduplicate, resolve contradictions, keep ids. Palette: #rrggbb colours.\n\n{}",
            pretty(g)
        )
    }

    /// The story bible.
    pub fn story_bible(g: &GatherSnapshot, characters: &[CharacterProfile]) -> String {
        format!(
            "Write the story bible (world rules, relationships by character id, timeline, consistency rules, locations).\n\nCharacters:\n{}\n\nGathered data:\n{}",
            pretty(characters),
            pretty(g)
        )
    }

    /// The style guide.
    pub fn style_guide(g: &GatherSnapshot) -> String {
        format!("Write the visual style guide.\n\n{}", pretty(g))
    }

    /// The screenplay.
    pub fn screenplay(
        g: &GatherSnapshot,
        bible: &StoryBible,
        characters: &[CharacterProfile],
    ) -> String {
        format!(
            "Write the screenplay. Use character ids in `characters` and `dialogue.character`.\n\nStory bible:\n{}\n\nCharacters:\n{}\n\nGathered data:\n{}",
            pretty(bible),
            pretty(characters),
            pretty(g)
        )
    }

    /// The breakdown into scenes.
    pub fn breakdown(
        sp: &Screenplay,
        bible: &StoryBible,
        characters: &[CharacterProfile],
    ) -> String {
        format!(
            "Break this screenplay into scenes of 3 to 7 seconds each, in order. For each give the dramatic effect, camera and lighting.\n\nScreenplay:\n{}\n\nStory bible:\n{}\n\nCharacter ids: {}",
            sp.content,
            pretty(bible),
            characters
                .iter()
                .map(|c| c.character_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    /// The locations.
    pub fn locations(g: &GatherSnapshot, bible: &StoryBible) -> String {
        format!(
            "Qualify the locations.\n\nStory bible locations:\n{}\n\nGathered data:\n{}",
            pretty(&bible.locations),
            pretty(g)
        )
    }

    /// The props.
    pub fn props(g: &GatherSnapshot, sp: &Screenplay) -> String {
        format!(
            "List the approved props the screenplay needs.\n\nScreenplay:\n{}\n\nGathered props:\n{}",
            sp.content,
            pretty(g.docs("raw_props"))
        )
    }

    /// The voices.
    pub fn voices(characters: &[CharacterProfile]) -> String {
        format!(
            "Cast a voice for each character (pitch 0-99, speed in words per minute).\n\n{}",
            pretty(characters)
        )
    }

    /// A scene's shot plan.
    pub fn shot_plan(scene: &SceneBreakdown, ctx: &ShotContext) -> String {
        format!(
            "Plan this scene's shot: the composite layers in order (location first; at most 3 subjects per layer), camera, duration (3-7 s) and pacing.\n\nScene:\n{}\n\nCharacters:\n{}\n\nProps:\n{}",
            pretty(scene),
            pretty(&ctx.characters),
            pretty(&ctx.props)
        )
    }
}

fn checked_scenes(scenes: Vec<SceneBreakdown>) -> Result<Vec<SceneBreakdown>> {
    for s in &scenes {
        // The schema constrains the options; the 3-7 s rule is ours to check.
        s.validate()
            .map_err(|m| ActivityError::new(P, ErrorKind::Malformed, m))?;
    }
    Ok(scenes)
}

#[async_trait]
impl Planner for RemotePlanner {
    fn name(&self) -> &'static str {
        "OpenRouter"
    }

    async fn readiness(&self, g: &GatherSnapshot) -> Result<Paid<Vec<DepartmentReadiness>>> {
        let schema = obj(&[(
            "departments",
            arr(obj(&[
                ("department", enm(options::DEPARTMENTS)),
                ("score", int()),
                ("ready", boolean()),
                ("missing_items", arr(string())),
            ])),
        )]);
        let p: Paid<Wrap<Vec<DepartmentReadiness>>> = self
            .client
            .complete_json("readiness", SYSTEM, &prompt::readiness(g), schema)
            .await?;
        Ok(Paid {
            value: p
                .value
                .items
                .into_iter()
                .map(|mut d| {
                    d.score = d.score.min(100);
                    d.ready = d.score >= READY_SCORE;
                    d
                })
                .collect(),
            spend: p.spend,
        })
    }

    async fn characters(&self, g: &GatherSnapshot) -> Result<Paid<Vec<CharacterProfile>>> {
        let p: Paid<Wrap<Vec<CharacterProfile>>> = self
            .client
            .complete_json(
                "characters",
                SYSTEM,
                &prompt::characters(g),
                characters_schema(),
            )
            .await?;
        Ok(Paid {
            value: p.value.items,
            spend: p.spend,
        })
    }

    async fn story_bible(
        &self,
        g: &GatherSnapshot,
        characters: &[CharacterProfile],
    ) -> Result<Paid<StoryBible>> {
        let schema = obj(&[
            ("title", string()),
            ("logline", string()),
            (
                "world_rules",
                arr(obj(&[
                    (
                        "rule_category",
                        enm(&["physics", "magic", "technology", "society", "history"]),
                    ),
                    ("rule_description", string()),
                ])),
            ),
            (
                "relationships",
                arr(obj(&[
                    ("from", string()),
                    ("to", string()),
                    ("relation", string()),
                ])),
            ),
            (
                "timeline",
                arr(obj(&[
                    ("event", string()),
                    ("timestamp", string()),
                    ("description", string()),
                ])),
            ),
            (
                "consistency_rules",
                arr(obj(&[
                    ("rule", string()),
                    ("priority", enm(&["critical", "high", "medium", "low"])),
                ])),
            ),
            (
                "locations",
                arr(obj(&[
                    ("location_name", string()),
                    ("location_description", string()),
                    ("location_rules", string()),
                ])),
            ),
        ]);
        let p: Paid<BibleAnswer> = self
            .client
            .complete_json(
                "story_bible",
                SYSTEM,
                &prompt::story_bible(g, characters),
                schema,
            )
            .await?;
        let b = p.value;
        let mut rel: std::collections::BTreeMap<
            String,
            std::collections::BTreeMap<String, String>,
        > = Default::default();
        for r in b.relationships {
            rel.entry(r.from).or_default().insert(r.to, r.relation);
        }
        Ok(Paid {
            value: StoryBible {
                title: b.title,
                logline: b.logline,
                world_rules: b.world_rules,
                character_relationships: rel,
                timeline: b.timeline,
                consistency_rules: b.consistency_rules,
                locations: b.locations,
                resolved_contradictions: vec![],
            },
            spend: p.spend,
        })
    }

    async fn style_guide(&self, g: &GatherSnapshot) -> Result<Paid<StyleGuide>> {
        let schema = obj(&[
            ("palette", arr(string())),
            ("mood", string()),
            ("lighting", string()),
            ("camera_language", string()),
            ("aspect_ratio", enm(&["16:9", "21:9", "4:3", "1:1", "9:16"])),
            ("negative_prompt", string()),
        ]);
        self.client
            .complete_json("style_guide", SYSTEM, &prompt::style_guide(g), schema)
            .await
    }

    async fn screenplay(
        &self,
        g: &GatherSnapshot,
        bible: &StoryBible,
        characters: &[CharacterProfile],
    ) -> Result<Paid<Screenplay>> {
        let schema = obj(&[
            ("title", string()),
            ("content", string()),
            (
                "sequences",
                arr(obj(&[
                    ("heading", string()),
                    ("location", string()),
                    ("time_of_day", enm(options::TIME_OF_DAY)),
                    ("action", arr(string())),
                    ("dialogue", arr(dialogue_schema())),
                    ("characters", arr(string())),
                    ("props", arr(string())),
                ])),
            ),
        ]);
        self.client
            .complete_json(
                "screenplay",
                SYSTEM,
                &prompt::screenplay(g, bible, characters),
                schema,
            )
            .await
    }

    async fn breakdown(
        &self,
        sp: &Screenplay,
        bible: &StoryBible,
        characters: &[CharacterProfile],
    ) -> Result<Paid<Vec<SceneBreakdown>>> {
        let schema = obj(&[("scenes", arr(scene_schema()))]);
        let p: Paid<Wrap<Vec<SceneBreakdown>>> = self
            .client
            .complete_json(
                "breakdown",
                SYSTEM,
                &prompt::breakdown(sp, bible, characters),
                schema,
            )
            .await?;
        Ok(Paid {
            value: checked_scenes(p.value.items)?,
            spend: p.spend,
        })
    }

    async fn locations(
        &self,
        g: &GatherSnapshot,
        bible: &StoryBible,
    ) -> Result<Paid<Vec<LocationDetail>>> {
        let schema = obj(&[(
            "locations",
            arr(obj(&[
                ("name", string()),
                ("description", string()),
                ("palette", arr(string())),
                ("rules", string()),
            ])),
        )]);
        let p: Paid<Wrap<Vec<LocationDetail>>> = self
            .client
            .complete_json("locations", SYSTEM, &prompt::locations(g, bible), schema)
            .await?;
        Ok(Paid {
            value: p.value.items,
            spend: p.spend,
        })
    }

    async fn props(&self, g: &GatherSnapshot, sp: &Screenplay) -> Result<Paid<Vec<PropItem>>> {
        let schema = obj(&[(
            "props",
            arr(obj(&[
                ("name", string()),
                ("description", string()),
                ("color", string()),
            ])),
        )]);
        let p: Paid<Wrap<Vec<PropItem>>> = self
            .client
            .complete_json("props", SYSTEM, &prompt::props(g, sp), schema)
            .await?;
        Ok(Paid {
            value: p.value.items,
            spend: p.spend,
        })
    }

    async fn voices(&self, characters: &[CharacterProfile]) -> Result<Paid<Vec<VoiceCasting>>> {
        let schema = obj(&[(
            "voices",
            arr(obj(&[
                ("character_id", string()),
                ("voice", string()),
                ("pitch", int()),
                ("speed", int()),
                ("description", string()),
            ])),
        )]);
        let p: Paid<Wrap<Vec<VoiceCasting>>> = self
            .client
            .complete_json("voices", SYSTEM, &prompt::voices(characters), schema)
            .await?;
        Ok(Paid {
            value: p.value.items,
            spend: p.spend,
        })
    }

    async fn shot_plan(&self, scene: &SceneBreakdown, ctx: &ShotContext) -> Result<Paid<ShotPlan>> {
        use options::*;
        let schema = obj(&[
            (
                "composite_steps",
                arr(obj(&[
                    ("type", enm(&["location", "characters", "props"])),
                    ("description", string()),
                    ("subjects", arr(string())),
                ])),
            ),
            ("camera_angle", enm(CAMERA_ANGLE)),
            ("camera_shot", enm(CAMERA_SHOT)),
            ("camera_movement", enm(CAMERA_MOVEMENT)),
            ("duration", num()),
            ("pacing", enm(PACING)),
            ("notes", string()),
        ]);
        let p: Paid<ShotPlan> = self
            .client
            .complete_json("shot_plan", SYSTEM, &prompt::shot_plan(scene, ctx), schema)
            .await?;
        if !(MIN_SCENE_SECONDS..=MAX_SCENE_SECONDS).contains(&p.value.duration)
            || p.value
                .composite_steps
                .iter()
                .any(|s| s.subjects.len() > MAX_REFERENCES)
        {
            return Err(ActivityError::new(
                P,
                ErrorKind::Malformed,
                "the shot plan breaks the 3-7 s or 3-reference rule",
            ));
        }
        Ok(p)
    }
}
