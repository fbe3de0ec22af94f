//! Gather and qualified namespaces: flexible JSON documents by collection, per project.
//!
//! `gather_<slug>` holds raw, unvalidated material and becomes read-only when qualification
//! starts; `qualified_<slug>` holds the departments' validated output. By default both live in
//! the workflow database (`documents` table); with the `mongodb` feature they can be MongoDB
//! databases named exactly so.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::args;
use crate::db::{FilmDb, from_ms, now_ms};
use crate::error::{FilmError, Result};
use crate::slug::{Slug, collection};

/// Which namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespace {
    /// `gather_<slug>`.
    Gather(Slug),
    /// `qualified_<slug>`.
    Qualified(Slug),
}

impl Namespace {
    /// The namespace's name.
    pub fn name(&self) -> String {
        match self {
            Namespace::Gather(s) => s.gather(),
            Namespace::Qualified(s) => s.qualified(),
        }
    }
    /// The project.
    pub fn slug(&self) -> &Slug {
        match self {
            Namespace::Gather(s) | Namespace::Qualified(s) => s,
        }
    }
}

/// A stored document.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Doc {
    /// Id within its collection.
    pub id: String,
    /// Collection.
    pub collection: String,
    /// The document.
    pub body: Value,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Collections of the gather namespace (others may be created as needed).
pub const GATHER_COLLECTIONS: &[&str] = &[
    "raw_characters",
    "raw_scenes",
    "raw_locations",
    "raw_props",
    "raw_notes",
    "user_inputs",
    "ai_expansions",
];

/// Collections of the qualified namespace.
pub const QUALIFIED_COLLECTIONS: &[&str] = &[
    crate::names::collection::SCREENPLAY,
    crate::names::collection::STORY_BIBLE,
    crate::names::collection::SCENE_METADATA,
    crate::names::collection::CHARACTER_PROFILES,
    crate::names::collection::CHARACTER_360_REFERENCES,
    crate::names::collection::VISUAL_GUIDELINES,
    crate::names::collection::WORLD_RULES,
    crate::names::collection::LOCATION_DETAILS,
    crate::names::collection::PROP_CATALOG,
    crate::names::collection::VOICE_CASTING,
];

/// Largest document accepted, bytes of JSON.
pub const MAX_DOC_BYTES: usize = 512 * 1024;

/// A document store.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// `sql` or `mongodb`.
    fn kind(&self) -> &'static str;
    /// Insert a document (an id is generated when `id` is `None`). Writing to a locked gather
    /// namespace is refused with [`FilmError::Locked`] and changes nothing.
    async fn insert(
        &self,
        ns: &Namespace,
        collection: &str,
        id: Option<String>,
        body: Value,
    ) -> Result<String>;
    /// Insert or replace a document (qualified namespaces; the pipeline's idempotent writes).
    async fn put(&self, ns: &Namespace, collection: &str, id: &str, body: Value) -> Result<()>;
    /// A collection's documents, oldest first.
    async fn list(&self, ns: &Namespace, collection: &str) -> Result<Vec<Doc>>;
    /// Collections that have documents.
    async fn collections(&self, ns: &Namespace) -> Result<Vec<String>>;
    /// Replace an existing document's body (a person editing the gather). In a gather
    /// namespace only while it is open ([`FilmError::Locked`] after); an unknown id is
    /// [`FilmError::NotFound`].
    async fn replace(&self, ns: &Namespace, collection: &str, id: &str, body: Value) -> Result<()>;
    /// Delete a document. In a gather namespace only while it is open ([`FilmError::Locked`]
    /// after); an unknown id is [`FilmError::NotFound`].
    async fn delete(&self, ns: &Namespace, collection: &str, id: &str) -> Result<()>;
    /// Empty a whole namespace (a qualified namespace, before qualifying again); returns how
    /// many documents went.
    async fn clear(&self, ns: &Namespace) -> Result<u64>;
}

fn check_doc(body: &Value) -> Result<()> {
    if !body.is_object() {
        return Err(FilmError::Invalid("a document is a JSON object".into()));
    }
    let n = serde_json::to_string(body).map(|s| s.len()).unwrap_or(0);
    if n > MAX_DOC_BYTES {
        return Err(FilmError::Invalid(format!(
            "the document has {n} bytes; at most {MAX_DOC_BYTES} are accepted (store media as files and reference them)"
        )));
    }
    Ok(())
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.chars().count() > 128 || id.chars().any(|c| c.is_control()) {
        return Err(FilmError::Invalid(
            "a document id has 1 to 128 printable characters".into(),
        ));
    }
    Ok(())
}

/// Documents in the workflow database.
#[derive(Debug, Clone)]
pub struct SqlDocuments {
    db: FilmDb,
}

impl SqlDocuments {
    /// Documents in `db`.
    pub fn new(db: FilmDb) -> Self {
        SqlDocuments { db }
    }
}

fn locked_error(slug: &Slug) -> FilmError {
    FilmError::Locked(format!(
        "the gather namespace of `{slug}` is read-only: qualification has started. If qualification failed or was stopped, reopen the gather (POST /api/projects/{slug}/reopen) and edit it; otherwise edit the qualified data"
    ))
}

impl SqlDocuments {
    /// Why a write to an existing document changed nothing: no project, a locked gather, or
    /// no such document.
    async fn why_not(&self, ns: &Namespace, coll: &str, id: &str) -> Result<()> {
        let project = self
            .db
            .fetch_fresh(
                "SELECT gather_locked_at FROM projects WHERE slug = $1",
                args![ns.slug().as_str()],
            )
            .await?;
        match project.first() {
            None => Err(FilmError::NotFound(format!("project `{}`", ns.slug()))),
            Some(r)
                if matches!(ns, Namespace::Gather(_))
                    && r.opt_int("gather_locked_at")?.is_some() =>
            {
                Err(locked_error(ns.slug()))
            }
            Some(_) => Err(FilmError::NotFound(format!(
                "document `{id}` in {}/{coll}",
                ns.name()
            ))),
        }
    }
}

#[async_trait]
impl DocumentStore for SqlDocuments {
    fn kind(&self) -> &'static str {
        "sql"
    }

    async fn insert(
        &self,
        ns: &Namespace,
        coll: &str,
        id: Option<String>,
        body: Value,
    ) -> Result<String> {
        collection(coll)?;
        check_doc(&body)?;
        let id = id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        check_id(&id)?;
        let now = now_ms();
        // The lock check is part of the insert, so a write racing the lock cannot slip in.
        let n = self
            .db
            .exec(
                "INSERT INTO documents (namespace, collection, id, body, created_at, updated_at)
                 SELECT $1, $2, $3, $4, $5, $5
                 WHERE EXISTS (SELECT 1 FROM projects WHERE slug = $6 AND ($7 = 0 OR gather_locked_at IS NULL))
                 ON CONFLICT DO NOTHING",
                args![ns.name(), coll, id.clone(), body.to_string(), now, ns.slug().as_str(), i64::from(matches!(ns, Namespace::Gather(_)))],
            )
            .await?;
        if n == 1 {
            return Ok(id);
        }
        let project = self
            .db
            .fetch_fresh(
                "SELECT gather_locked_at FROM projects WHERE slug = $1",
                args![ns.slug().as_str()],
            )
            .await?;
        match project.first() {
            None => Err(FilmError::NotFound(format!("project `{}`", ns.slug()))),
            Some(r)
                if matches!(ns, Namespace::Gather(_))
                    && r.opt_int("gather_locked_at")?.is_some() =>
            {
                Err(locked_error(ns.slug()))
            }
            Some(_) => Err(FilmError::Conflict(format!(
                "a document `{id}` already exists in {}/{coll}",
                ns.name()
            ))),
        }
    }

    async fn put(&self, ns: &Namespace, coll: &str, id: &str, body: Value) -> Result<()> {
        collection(coll)?;
        check_doc(&body)?;
        check_id(id)?;
        if let Namespace::Gather(s) = ns {
            // Gather documents are added, never replaced; the pipeline never writes there.
            let _ = s;
            return Err(FilmError::Invalid(
                "gather documents are added with insert, not replaced".into(),
            ));
        }
        self.db
            .exec(
                "INSERT INTO documents (namespace, collection, id, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (namespace, collection, id) DO UPDATE SET body = $4, updated_at = $5",
                args![ns.name(), coll, id, body.to_string(), now_ms()],
            )
            .await?;
        Ok(())
    }

    async fn list(&self, ns: &Namespace, coll: &str) -> Result<Vec<Doc>> {
        collection(coll)?;
        self.db
            .fetch_fresh(
                "SELECT id, collection, body, created_at FROM documents WHERE namespace = $1 AND collection = $2 ORDER BY created_at, id",
                args![ns.name(), coll],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(Doc {
                    id: r.text("id")?,
                    collection: r.text("collection")?,
                    body: r.json("body")?,
                    created_at: from_ms(r.int("created_at")?),
                })
            })
            .collect()
    }

    async fn collections(&self, ns: &Namespace) -> Result<Vec<String>> {
        self.db
            .fetch_fresh(
                "SELECT DISTINCT collection FROM documents WHERE namespace = $1 ORDER BY collection",
                args![ns.name()],
            )
            .await?
            .iter()
            .map(|r| r.text("collection"))
            .collect()
    }

    async fn replace(&self, ns: &Namespace, coll: &str, id: &str, body: Value) -> Result<()> {
        collection(coll)?;
        check_doc(&body)?;
        check_id(id)?;
        // As with insert, the lock check is part of the statement.
        let n = self
            .db
            .exec(
                "UPDATE documents SET body = $4, updated_at = $5
                 WHERE namespace = $1 AND collection = $2 AND id = $3
                 AND EXISTS (SELECT 1 FROM projects WHERE slug = $6 AND ($7 = 0 OR gather_locked_at IS NULL))",
                args![ns.name(), coll, id, body.to_string(), now_ms(), ns.slug().as_str(), i64::from(matches!(ns, Namespace::Gather(_)))],
            )
            .await?;
        if n == 1 {
            return Ok(());
        }
        self.why_not(ns, coll, id).await
    }

    async fn delete(&self, ns: &Namespace, coll: &str, id: &str) -> Result<()> {
        collection(coll)?;
        check_id(id)?;
        // As with insert, the lock check is part of the statement.
        let n = self
            .db
            .exec(
                "DELETE FROM documents WHERE namespace = $1 AND collection = $2 AND id = $3
                 AND EXISTS (SELECT 1 FROM projects WHERE slug = $4 AND ($5 = 0 OR gather_locked_at IS NULL))",
                args![ns.name(), coll, id, ns.slug().as_str(), i64::from(matches!(ns, Namespace::Gather(_)))],
            )
            .await?;
        if n == 1 {
            return Ok(());
        }
        self.why_not(ns, coll, id).await
    }

    async fn clear(&self, ns: &Namespace) -> Result<u64> {
        self.db
            .exec(
                "DELETE FROM documents WHERE namespace = $1",
                args![ns.name()],
            )
            .await
    }
}

/// Gather and qualified namespaces as MongoDB databases (`gather_<slug>`, `qualified_<slug>`).
/// The lock lives on the project record in the workflow database and is checked before each
/// write.
#[cfg(feature = "mongodb")]
pub mod mongo {
    use super::*;
    use mongodb::bson::{Bson, Document, doc};

    /// MongoDB documents.
    #[derive(Debug, Clone)]
    pub struct MongoDocuments {
        client: mongodb::Client,
        db: FilmDb,
    }

    impl MongoDocuments {
        /// Connect (the URI comes from `MONGODB_URI`).
        pub async fn connect(uri: &str, db: FilmDb) -> Result<Self> {
            let client = mongodb::Client::with_uri_str(uri)
                .await
                .map_err(|e| FilmError::Internal(format!("MongoDB: {e}")))?;
            Ok(MongoDocuments { client, db })
        }

        async fn locked(&self, slug: &Slug) -> Result<bool> {
            let r = self
                .db
                .fetch_fresh(
                    "SELECT gather_locked_at FROM projects WHERE slug = $1",
                    args![slug.as_str()],
                )
                .await?;
            let r = r
                .first()
                .ok_or_else(|| FilmError::NotFound(format!("project `{slug}`")))?;
            Ok(r.opt_int("gather_locked_at")?.is_some())
        }
    }

    fn to_doc(id: &str, body: Value) -> Result<Document> {
        let mut d =
            mongodb::bson::to_document(&body).map_err(|e| FilmError::Invalid(e.to_string()))?;
        d.insert("_id", id);
        d.insert("created_at", Bson::Int64(now_ms()));
        Ok(d)
    }

    fn err(e: mongodb::error::Error) -> FilmError {
        FilmError::Internal(format!("MongoDB: {e}"))
    }

    #[async_trait]
    impl DocumentStore for MongoDocuments {
        fn kind(&self) -> &'static str {
            "mongodb"
        }

        async fn insert(
            &self,
            ns: &Namespace,
            coll: &str,
            id: Option<String>,
            body: Value,
        ) -> Result<String> {
            collection(coll)?;
            check_doc(&body)?;
            if matches!(ns, Namespace::Gather(_)) && self.locked(ns.slug()).await? {
                return Err(locked_error(ns.slug()));
            }
            let id = id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
            check_id(&id)?;
            self.client
                .database(&ns.name())
                .collection::<Document>(coll)
                .insert_one(to_doc(&id, body)?)
                .await
                .map_err(err)?;
            Ok(id)
        }

        async fn put(&self, ns: &Namespace, coll: &str, id: &str, body: Value) -> Result<()> {
            collection(coll)?;
            check_doc(&body)?;
            check_id(id)?;
            if matches!(ns, Namespace::Gather(_)) {
                return Err(FilmError::Invalid(
                    "gather documents are added with insert, not replaced".into(),
                ));
            }
            self.client
                .database(&ns.name())
                .collection::<Document>(coll)
                .replace_one(doc! {"_id": id}, to_doc(id, body)?)
                .upsert(true)
                .await
                .map_err(err)?;
            Ok(())
        }

        async fn list(&self, ns: &Namespace, coll: &str) -> Result<Vec<Doc>> {
            collection(coll)?;
            use futures::TryStreamExt;
            let docs: Vec<Document> = self
                .client
                .database(&ns.name())
                .collection::<Document>(coll)
                .find(doc! {})
                .sort(doc! {"created_at": 1, "_id": 1})
                .await
                .map_err(err)?
                .try_collect()
                .await
                .map_err(err)?;
            docs.into_iter()
                .map(|mut d| {
                    let id = d.get_str("_id").unwrap_or_default().to_string();
                    let created = d.get_i64("created_at").unwrap_or(0);
                    d.remove("_id");
                    d.remove("created_at");
                    Ok(Doc {
                        id,
                        collection: coll.to_string(),
                        body: serde_json::to_value(&d)
                            .map_err(|e| FilmError::Internal(e.to_string()))?,
                        created_at: from_ms(created),
                    })
                })
                .collect()
        }

        async fn collections(&self, ns: &Namespace) -> Result<Vec<String>> {
            let mut v = self
                .client
                .database(&ns.name())
                .list_collection_names()
                .await
                .map_err(err)?;
            v.sort();
            Ok(v)
        }

        async fn replace(&self, ns: &Namespace, coll: &str, id: &str, body: Value) -> Result<()> {
            collection(coll)?;
            check_doc(&body)?;
            check_id(id)?;
            if matches!(ns, Namespace::Gather(_)) && self.locked(ns.slug()).await? {
                return Err(locked_error(ns.slug()));
            }
            let r = self
                .client
                .database(&ns.name())
                .collection::<Document>(coll)
                .replace_one(doc! {"_id": id}, to_doc(id, body)?)
                .await
                .map_err(err)?;
            if r.matched_count == 0 {
                return Err(FilmError::NotFound(format!(
                    "document `{id}` in {}/{coll}",
                    ns.name()
                )));
            }
            Ok(())
        }

        async fn delete(&self, ns: &Namespace, coll: &str, id: &str) -> Result<()> {
            collection(coll)?;
            check_id(id)?;
            if matches!(ns, Namespace::Gather(_)) && self.locked(ns.slug()).await? {
                return Err(locked_error(ns.slug()));
            }
            let r = self
                .client
                .database(&ns.name())
                .collection::<Document>(coll)
                .delete_one(doc! {"_id": id})
                .await
                .map_err(err)?;
            if r.deleted_count == 0 {
                return Err(FilmError::NotFound(format!(
                    "document `{id}` in {}/{coll}",
                    ns.name()
                )));
            }
            Ok(())
        }

        async fn clear(&self, ns: &Namespace) -> Result<u64> {
            let db = self.client.database(&ns.name());
            let mut n = 0;
            for c in db.list_collection_names().await.map_err(err)? {
                n += db
                    .collection::<Document>(&c)
                    .delete_many(doc! {})
                    .await
                    .map_err(err)?
                    .deleted_count;
            }
            Ok(n)
        }
    }
}
