//! An in-process stand-in for OpenRouter's chat completions, following the contract in
//! `CONTRACTS.md`: `POST /api/v1/chat/completions` with `Authorization: Bearer …` and a strict
//! `json_schema` response format; the answer is `choices[0].message.content` (a JSON string) and
//! `usage` with the tokens and their `cost` in dollars, priced per token like the model's
//! published price. Errors are `{error: {code, message}}`.
//!
//! The "model" behind it is Slate's local planner: the fake reads the inputs back from the
//! prompt's JSON sections (each one a `Header:\n{json}` paragraph) and answers in the schema's
//! shape. The breakdown and props prompts carry only the screenplay's text, so the fake
//! remembers the screenplays it wrote, as a conversation would.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use slate_activities::local::planner::LocalPlanner;
use slate_activities::model::*;
use slate_activities::{Planner, ShotContext};

/// Dollars per input token and per output token (Claude Sonnet 4.5's published $3 and $15 per
/// million).
pub const PRICE_IN: f64 = 3.0 / 1e6;
/// See [`PRICE_IN`].
pub const PRICE_OUT: f64 = 15.0 / 1e6;

/// One call, as the fake answered it.
#[derive(Debug, Clone)]
pub struct LlmCall {
    /// The schema's name (`readiness`, `shot_plan`, …).
    pub name: String,
    /// Tokens in (about four characters each).
    pub prompt_tokens: u64,
    /// Tokens out.
    pub completion_tokens: u64,
    /// What `usage.cost` said.
    pub cost: f64,
}

struct Inner {
    key: String,
    calls: Mutex<Vec<LlmCall>>,
    /// Screenplay text → the screenplay.
    screenplays: Mutex<BTreeMap<String, Screenplay>>,
    latency: Mutex<Option<crate::latency::Latency>>,
}

/// The fake; dropped with the test.
#[derive(Clone)]
pub struct FakeOpenRouter {
    inner: Arc<Inner>,
    url: String,
}

impl FakeOpenRouter {
    /// Start on a free port; `key` is the expected `OPENROUTER_API_KEY`.
    pub async fn start(key: &str) -> FakeOpenRouter {
        let inner = Arc::new(Inner {
            key: key.to_string(),
            calls: Mutex::new(vec![]),
            screenplays: Mutex::new(BTreeMap::new()),
            latency: Mutex::new(None),
        });
        let app = Router::new()
            .route("/api/v1/chat/completions", axum::routing::post(complete))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeOpenRouter {
            inner,
            url: format!("http://{addr}/api/v1/chat/completions"),
        }
    }

    /// The completions URL (`SLATE_OPENROUTER_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// From now on each answer takes a language model's typical time (5-20 s) on `latency`'s
    /// scale.
    pub fn set_latency(&self, latency: crate::latency::Latency) {
        *self.inner.latency.lock().unwrap_or_else(|e| e.into_inner()) = Some(latency);
    }

    /// Every call answered.
    pub fn calls(&self) -> Vec<LlmCall> {
        self.inner
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What every call cost, dollars (the sum of `usage.cost`).
    pub fn spent(&self) -> f64 {
        self.calls().iter().map(|c| c.cost).sum()
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": status.as_u16(), "message": message}})),
    )
        .into_response()
}

/// The JSON of the paragraph that starts with `header` (or the first JSON paragraph when
/// `header` is empty).
fn section<T: DeserializeOwned>(prompt: &str, header: &str) -> Result<T, String> {
    for para in prompt.split("\n\n") {
        let body = if header.is_empty() {
            para
        } else if let Some(rest) = para.strip_prefix(header) {
            rest.trim_start_matches(':').trim_start()
        } else {
            continue;
        };
        if let Ok(v) = serde_json::from_str::<T>(body) {
            return Ok(v);
        }
    }
    Err(format!(
        "the prompt has no `{header}` section this model can read"
    ))
}

/// The screenplay paragraph's text (between `Screenplay:` and the next header).
fn screenplay_text(prompt: &str) -> Option<&str> {
    let start = prompt.find("Screenplay:\n")? + "Screenplay:\n".len();
    let rest = &prompt[start..];
    let end = ["\n\nStory bible:", "\n\nGathered props:"]
        .iter()
        .filter_map(|h| rest.find(h))
        .min()
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

async fn answer(inner: &Inner, name: &str, prompt: &str) -> Result<Value, String> {
    let local = LocalPlanner;
    let err = |e: slate_activities::ActivityError| e.to_string();
    let gather = || {
        section::<GatherSnapshot>(prompt, "Gathered data")
            .or_else(|_| section::<GatherSnapshot>(prompt, ""))
    };
    let characters = || section::<Vec<CharacterProfile>>(prompt, "Characters");
    let remembered = || {
        let text = screenplay_text(prompt).ok_or("no screenplay in the prompt")?;
        inner
            .screenplays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(text.trim_end())
            .cloned()
            .ok_or_else(|| "a screenplay this model did not write".to_string())
    };
    Ok(match name {
        "readiness" => {
            json!({"departments": local.readiness(&gather()?).await.map_err(err)?.value})
        }
        "characters" => {
            json!({"characters": local.characters(&gather()?).await.map_err(err)?.value})
        }
        "story_bible" => {
            let b = local
                .story_bible(&gather()?, &characters()?)
                .await
                .map_err(err)?
                .value;
            let relationships: Vec<Value> = b
                .character_relationships
                .iter()
                .flat_map(|(from, to)| {
                    to.iter()
                        .map(move |(to, r)| json!({"from": from, "to": to, "relation": r}))
                })
                .collect();
            json!({
                "title": b.title, "logline": b.logline, "world_rules": b.world_rules,
                "relationships": relationships, "timeline": b.timeline,
                "consistency_rules": b.consistency_rules, "locations": b.locations,
            })
        }
        "style_guide" => json!(local.style_guide(&gather()?).await.map_err(err)?.value),
        "screenplay" => {
            let bible: StoryBible = section(prompt, "Story bible")?;
            let sp = local
                .screenplay(&gather()?, &bible, &characters()?)
                .await
                .map_err(err)?
                .value;
            inner
                .screenplays
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(sp.content.trim_end().to_string(), sp.clone());
            json!(sp)
        }
        "breakdown" => {
            let bible: StoryBible = section(prompt, "Story bible")?;
            let ids: Vec<CharacterProfile> = prompt
                .rsplit("Character ids: ")
                .next()
                .unwrap_or_default()
                .split(", ")
                .map(|id| id.trim())
                .filter(|id| !id.is_empty())
                .map(profile)
                .collect();
            let scenes = local
                .breakdown(&remembered()?, &bible, &ids)
                .await
                .map_err(err)?
                .value;
            json!({"scenes": scenes})
        }
        "locations" => {
            let locations: Vec<BibleLocation> = section(prompt, "Story bible locations")?;
            let bible = StoryBible {
                locations,
                ..placeholder_bible()
            };
            json!({"locations": local.locations(&gather()?, &bible).await.map_err(err)?.value})
        }
        "props" => {
            let raw: Vec<Value> = section(prompt, "Gathered props")?;
            let mut g = GatherSnapshot {
                project: String::new(),
                title: String::new(),
                collections: BTreeMap::new(),
            };
            g.collections.insert("raw_props".into(), raw);
            json!({"props": local.props(&g, &remembered()?).await.map_err(err)?.value})
        }
        "voices" => {
            let cs: Vec<CharacterProfile> = section(prompt, "")?;
            json!({"voices": local.voices(&cs).await.map_err(err)?.value})
        }
        "shot_plan" => {
            let scene: SceneBreakdown = section(prompt, "Scene")?;
            let ctx = ShotContext {
                characters: characters()?,
                props: section(prompt, "Props")?,
                style: None,
            };
            json!(local.shot_plan(&scene, &ctx).await.map_err(err)?.value)
        }
        other => return Err(format!("this model does not know the `{other}` task")),
    })
}

/// A character known only by its id (what the breakdown prompt gives).
fn profile(id: &str) -> CharacterProfile {
    CharacterProfile {
        character_id: id.to_string(),
        name: id.to_string(),
        role: String::new(),
        personality: String::new(),
        appearance: String::new(),
        background: String::new(),
        costume: String::new(),
        palette: vec![],
    }
}

fn placeholder_bible() -> StoryBible {
    StoryBible {
        title: String::new(),
        logline: String::new(),
        world_rules: vec![],
        character_relationships: BTreeMap::new(),
        timeline: vec![],
        consistency_rules: vec![],
        locations: vec![],
        resolved_contradictions: vec![],
    }
}

async fn complete(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {}", inner.key) {
        return error(StatusCode::UNAUTHORIZED, "No auth credentials found");
    }
    let latency = *inner.latency.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(l) = latency {
        tokio::time::sleep(l.draw("llm", &body, crate::latency::typical::LLM)).await;
    }
    let format = &body["response_format"];
    if format["type"] != "json_schema" || format["json_schema"]["strict"] != true {
        return error(
            StatusCode::BAD_REQUEST,
            "this fake answers strict json_schema requests only",
        );
    }
    let name = format["json_schema"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let text = |role: &str| {
        messages
            .iter()
            .filter(|m| m["role"] == role)
            .filter_map(|m| m["content"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (system, user) = (text("system"), text("user"));
    let content = match answer(&inner, &name, &user).await {
        Ok(v) => v.to_string(),
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let prompt_tokens = ((system.len() + user.len()) as u64).div_ceil(4);
    let completion_tokens = (content.len() as u64).div_ceil(4);
    let cost = prompt_tokens as f64 * PRICE_IN + completion_tokens as f64 * PRICE_OUT;
    inner
        .calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(LlmCall {
            name: name.clone(),
            prompt_tokens,
            completion_tokens,
            cost,
        });
    Json(json!({
        "id": format!("gen-{}", uuid::Uuid::new_v4().simple()),
        "object": "chat.completion",
        "model": body["model"],
        "choices": [{
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": content},
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost": cost,
        },
    }))
    .into_response()
}
