//! Local knowledge (in place of the brain): documents in the workflow database, searched with
//! its full-text index (Postgres `tsvector`, SQLite FTS5).
//!
//! A verification query asks whether the names a frame should show (and the names its manifest
//! says it shows) are known, qualified entities of the project; the confidence is the share that
//! are.

use async_trait::async_trait;
use chrono::Utc;
use serde_json::Value;
use sqlx::{PgPool, Row, SqlitePool};

use crate::blob::{BlobRef, Blobs};
use crate::error::Result;
use crate::local::{Manifest, manifest_key};
use crate::model::{KnowledgeAnswer, KnowledgeDoc, KnowledgeQuery};
use crate::traits::{Knowledge, Paid};

/// The workflow database, as the activities that keep data in it see it.
#[derive(Debug, Clone)]
pub enum Db {
    /// Postgres.
    Postgres(PgPool),
    /// SQLite: one writer connection, several readers.
    Sqlite {
        /// Writes.
        writer: SqlitePool,
        /// Reads.
        reader: SqlitePool,
    },
}

/// The local knowledge store.
#[derive(Debug, Clone)]
pub struct LocalKnowledge {
    db: Db,
    blobs: Blobs,
}

impl LocalKnowledge {
    /// Knowledge in `db`; image questions read frame manifests from `blobs`.
    pub fn new(db: Db, blobs: Blobs) -> Self {
        LocalKnowledge { db, blobs }
    }

    /// Whether a name is known for the project (phrase search).
    async fn known(&self, project: &str, name: &str) -> Result<Option<String>> {
        let phrase = name.trim();
        if phrase.is_empty() {
            return Ok(None);
        }
        Ok(match &self.db {
            Db::Postgres(pool) => sqlx::query_scalar(
                "SELECT key FROM knowledge WHERE project = $1 AND tsv @@ phraseto_tsquery('english', $2)
                 ORDER BY kind, key LIMIT 1",
            )
            .bind(project)
            .bind(phrase)
            .fetch_optional(pool)
            .await?,
            Db::Sqlite { reader, .. } => sqlx::query_scalar(
                "SELECT k.key FROM knowledge_fts JOIN knowledge k ON k.rowid = knowledge_fts.rowid
                 WHERE knowledge_fts MATCH ?1 AND k.project = ?2 ORDER BY k.kind, k.key LIMIT 1",
            )
            .bind(fts_phrase(phrase))
            .bind(project)
            .fetch_optional(reader)
            .await?,
        })
    }

    async fn search(&self, project: &str, text: &str) -> Result<Vec<(String, String)>> {
        Ok(match &self.db {
            Db::Postgres(pool) => sqlx::query(
                "SELECT key, title FROM knowledge
                 WHERE project = $1 AND tsv @@ websearch_to_tsquery('english', $2)
                 ORDER BY ts_rank(tsv, websearch_to_tsquery('english', $2)) DESC LIMIT 10",
            )
            .bind(project)
            .bind(text)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| (r.get("key"), r.get("title")))
            .collect(),
            Db::Sqlite { reader, .. } => {
                let q = fts_any(text);
                if q.is_empty() {
                    return Ok(vec![]);
                }
                sqlx::query(
                    "SELECT k.key AS key, k.title AS title FROM knowledge_fts JOIN knowledge k ON k.rowid = knowledge_fts.rowid
                     WHERE knowledge_fts MATCH ?1 AND k.project = ?2 ORDER BY rank LIMIT 10",
                )
                .bind(q)
                .bind(project)
                .fetch_all(reader)
                .await?
                .iter()
                .map(|r| (r.get("key"), r.get("title")))
                .collect()
            }
        })
    }
}

/// An FTS5 phrase: the text in double quotes, quotes inside doubled (never query syntax).
fn fts_phrase(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Any of the words, each quoted.
fn fts_any(s: &str) -> String {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .map(fts_phrase)
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// A deterministic embedding: hashed word counts in 64 dimensions, normalised.
pub fn embed(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; 64];
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let h = crate::local::render::stable_hash(&w.to_lowercase());
        let sign = if (h >> 63) == 0 { 1.0 } else { -1.0 };
        v[(h % 64) as usize] += sign;
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

#[async_trait]
impl Knowledge for LocalKnowledge {
    fn name(&self) -> &'static str {
        "local full-text search"
    }

    async fn store(&self, docs: &[KnowledgeDoc]) -> Result<usize> {
        let now = Utc::now();
        match &self.db {
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                for d in docs {
                    sqlx::query(
                        "INSERT INTO knowledge (project, kind, key, title, body, metadata, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (project, kind, key) DO UPDATE
                         SET title = EXCLUDED.title, body = EXCLUDED.body, metadata = EXCLUDED.metadata,
                             updated_at = EXCLUDED.updated_at",
                    )
                    .bind(&d.project)
                    .bind(&d.kind)
                    .bind(&d.key)
                    .bind(&d.title)
                    .bind(&d.text)
                    .bind(&d.metadata)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }
            Db::Sqlite { writer, .. } => {
                let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
                for d in docs {
                    sqlx::query(
                        "INSERT INTO knowledge (project, kind, key, title, body, metadata, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT (project, kind, key) DO UPDATE
                         SET title = excluded.title, body = excluded.body, metadata = excluded.metadata,
                             updated_at = excluded.updated_at",
                    )
                    .bind(&d.project)
                    .bind(&d.kind)
                    .bind(&d.key)
                    .bind(&d.title)
                    .bind(&d.text)
                    .bind(d.metadata.to_string())
                    .bind(now.timestamp_millis())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(docs.len())
    }

    async fn query(&self, q: &KnowledgeQuery) -> Result<Paid<KnowledgeAnswer>> {
        let mut names: Vec<String> = vec![];
        names.extend(q.expect.location.clone());
        names.extend(q.expect.characters.iter().cloned());
        names.extend(q.expect.props.iter().cloned());
        // What the frame actually shows must be known too: an unqualified stranger in the
        // picture lowers the confidence.
        if let Some(img) = &q.image {
            let mkey = match &q.manifest {
                Some(m) => m.clone(),
                None => BlobRef::new(manifest_key(img.key()))?,
            };
            if self.blobs.exists(&mkey).await?
                && let Ok(m) = serde_json::from_slice::<Manifest>(&self.blobs.get(&mkey).await?)
            {
                let c = m.composition;
                names.extend(c.location);
                names.extend(c.characters.into_iter().map(|f| f.name));
                names.extend(c.props.into_iter().map(|p| p.name));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        names.retain(|n| seen.insert(n.to_lowercase()));
        if names.is_empty() {
            let hits = self.search(&q.project, &q.query).await?;
            return Ok(Paid::free(KnowledgeAnswer {
                answer: if hits.is_empty() {
                    "nothing known matches".into()
                } else {
                    format!(
                        "known: {}",
                        hits.iter()
                            .map(|h| h.1.clone())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
                confidence: if hits.is_empty() { 0.2 } else { 0.85 },
                sources: hits.into_iter().map(|h| h.0).collect(),
            }));
        }
        let mut known = vec![];
        let mut unknown = vec![];
        let mut sources = vec![];
        for n in &names {
            match self.known(&q.project, n).await? {
                Some(k) => {
                    known.push(n.clone());
                    sources.push(k);
                }
                None => unknown.push(n.clone()),
            }
        }
        let confidence = known.len() as f64 / names.len() as f64;
        Ok(Paid::free(KnowledgeAnswer {
            answer: if unknown.is_empty() {
                format!("consistent with the qualified world: {}", known.join(", "))
            } else {
                format!("not in the qualified world: {}", unknown.join(", "))
            },
            confidence,
            sources,
        }))
    }

    async fn context(&self, project: &str) -> Result<Vec<KnowledgeDoc>> {
        let rows: Vec<(String, String, String, String, Value)> = match &self.db {
            Db::Postgres(pool) => sqlx::query(
                "SELECT kind, key, title, body, metadata FROM knowledge WHERE project = $1 ORDER BY kind, key",
            )
            .bind(project)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| (r.get("kind"), r.get("key"), r.get("title"), r.get("body"), r.get("metadata")))
            .collect(),
            Db::Sqlite { reader, .. } => sqlx::query(
                "SELECT kind, key, title, body, metadata FROM knowledge WHERE project = ?1 ORDER BY kind, key",
            )
            .bind(project)
            .fetch_all(reader)
            .await?
            .iter()
            .map(|r| {
                let m: String = r.get("metadata");
                (r.get("kind"), r.get("key"), r.get("title"), r.get("body"), serde_json::from_str(&m).unwrap_or(Value::Null))
            })
            .collect(),
        };
        Ok(rows
            .into_iter()
            .map(|(kind, key, title, text, metadata)| KnowledgeDoc {
                project: project.to_string(),
                kind,
                key,
                title,
                text,
                metadata,
            })
            .collect())
    }

    async fn embeddings(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| embed(t)).collect())
    }

    async fn health(&self) -> Result<bool> {
        match &self.db {
            Db::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            Db::Sqlite { reader, .. } => {
                sqlx::query("SELECT 1").execute(reader).await?;
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_queries_are_quoted_never_syntax() {
        assert_eq!(fts_phrase("a \"b\" OR c*"), "\"a \"\"b\"\" OR c*\"");
        assert_eq!(fts_any("lantern; DROP"), "\"lantern\" OR \"DROP\"");
    }

    #[test]
    fn embeddings_are_deterministic_and_normalised() {
        let a = embed("the lantern glows");
        assert_eq!(a, embed("the lantern glows"));
        let n: f32 = a.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-4);
    }
}
