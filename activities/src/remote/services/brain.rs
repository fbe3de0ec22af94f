//! The brain: the project's knowledge (nodes, queries, context) as the spec's service keeps it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{call, urlencode};
use crate::blob::Blobs;
use crate::config::ServiceSettings;
use crate::error::{ActivityError, ErrorKind, Result};
use crate::http;
use crate::model::*;
use crate::traits::{Knowledge, Paid};

const BRAIN: &str = "brain";

/// The brain service client (`X-API-Key`).
#[derive(Debug, Clone)]
pub struct BrainClient {
    http: reqwest::Client,
    s: ServiceSettings,
    blobs: Blobs,
}

impl BrainClient {
    /// A client; images are sent by URL from `blobs`.
    pub fn new(s: ServiceSettings, blobs: Blobs) -> Self {
        BrainClient {
            http: http::client(s.timeout),
            s,
            blobs,
        }
    }

    fn req(&self, m: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(m, format!("{}{path}", self.s.url))
            .header("X-API-Key", self.s.key.expose())
    }
}

#[derive(Deserialize)]
struct BrainAnswer {
    answer: String,
    confidence: f64,
    #[serde(default)]
    sources: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct BrainDoc {
    kind: String,
    key: String,
    title: String,
    content: String,
    #[serde(default)]
    metadata: Value,
}

#[async_trait]
impl Knowledge for BrainClient {
    fn name(&self) -> &'static str {
        "brain service"
    }

    async fn store(&self, docs: &[KnowledgeDoc]) -> Result<usize> {
        let mut n = 0;
        // One request per project: the service files documents under a project.
        let mut by_project: std::collections::BTreeMap<&str, Vec<BrainDoc>> = Default::default();
        for d in docs {
            by_project.entry(&d.project).or_default().push(BrainDoc {
                kind: d.kind.clone(),
                key: d.key.clone(),
                title: d.title.clone(),
                content: d.text.clone(),
                metadata: d.metadata.clone(),
            });
        }
        for (project, docs) in by_project {
            let a = call(
                BRAIN,
                self.req(reqwest::Method::POST, "/api/v1/knowledge/store")
                    .json(&json!({"project_id": project, "documents": docs})),
            )
            .await?;
            n += a
                .body
                .get("stored")
                .and_then(|s| s.as_u64())
                .unwrap_or(docs.len() as u64) as usize;
        }
        Ok(n)
    }

    async fn query(&self, q: &KnowledgeQuery) -> Result<Paid<KnowledgeAnswer>> {
        let image_url = match &q.image {
            Some(i) => Some(self.blobs.fetch_url(i).await?),
            None => None,
        };
        let a = call(
            BRAIN,
            self.req(reqwest::Method::POST, "/api/v1/knowledge/query")
                .json(&json!({
                    "query": q.query,
                    "image_url": image_url,
                    "context": {
                        "project_id": q.project,
                        "location": q.expect.location,
                        "characters": q.expect.characters,
                        "props": q.expect.props,
                    },
                })),
        )
        .await?;
        let b: BrainAnswer = http::decode(BRAIN, "the knowledge answer", &a.body)?;
        if !(0.0..=1.0).contains(&b.confidence) {
            return Err(ActivityError::new(
                BRAIN,
                ErrorKind::Malformed,
                format!("confidence {} is outside 0-1", b.confidence),
            ));
        }
        Ok(Paid::free(KnowledgeAnswer {
            answer: b.answer,
            confidence: b.confidence,
            sources: b.sources,
        }))
    }

    async fn context(&self, project: &str) -> Result<Vec<KnowledgeDoc>> {
        let a = call(
            BRAIN,
            self.req(
                reqwest::Method::GET,
                &format!("/api/v1/knowledge/context/{}", urlencode(project)),
            ),
        )
        .await?;
        let docs: Vec<BrainDoc> = http::decode(
            BRAIN,
            "the context",
            a.body.get("documents").unwrap_or(&Value::Null),
        )?;
        Ok(docs
            .into_iter()
            .map(|d| KnowledgeDoc {
                project: project.to_string(),
                kind: d.kind,
                key: d.key,
                title: d.title,
                text: d.content,
                metadata: d.metadata,
            })
            .collect())
    }

    async fn embeddings(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let a = call(
            BRAIN,
            self.req(reqwest::Method::POST, "/api/v1/embeddings/generate")
                .json(&json!({"texts": texts})),
        )
        .await?;
        let e: Vec<Vec<f32>> = http::decode(
            BRAIN,
            "the embeddings",
            a.body.get("embeddings").unwrap_or(&Value::Null),
        )?;
        if e.len() != texts.len() {
            return Err(ActivityError::new(
                BRAIN,
                ErrorKind::Malformed,
                format!("{} embeddings for {} texts", e.len(), texts.len()),
            ));
        }
        Ok(e)
    }

    async fn health(&self) -> Result<bool> {
        let a = http::send(BRAIN, self.req(reqwest::Method::GET, "/health")).await?;
        Ok(a.status.is_success())
    }
}
