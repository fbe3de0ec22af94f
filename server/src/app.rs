//! The application: state, the router with its auth layers, and the OpenAPI document built from
//! the very list of routes the router serves (so the document cannot miss one).

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::MethodRouter;
use serde_json::{Value, json};
use slate_engine::Engine;
use slate_workflows::Film;

use crate::config::Config;
use crate::error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Engine,
    /// The film domain and activities.
    pub film: Arc<Film>,
    /// Settings.
    pub config: Arc<Config>,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health).
    Public,
    /// Webhook senders: the shared secret, checked by the handler.
    Webhook,
    /// The API key.
    Api,
    /// The admin key.
    Admin,
}

/// Documentation of a route.
#[derive(Debug, Clone)]
pub struct Doc {
    /// One line.
    pub summary: &'static str,
    /// Group.
    pub tag: &'static str,
    /// Name of the request body's schema, if any.
    pub body: Option<&'static str>,
    /// Success status.
    pub ok: u16,
    /// Query parameters.
    pub query: &'static [&'static str],
}

/// A documented route.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    /// Method.
    pub method: Method,
    /// Path (axum syntax, `{param}`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Its documentation.
    pub doc: Doc,
}

/// Builds the router and records every route for the OpenAPI document.
pub struct Routes {
    public: Router<AppState>,
    webhook: Router<AppState>,
    api: Router<AppState>,
    admin: Router<AppState>,
    /// Everything registered.
    pub list: Vec<RouteInfo>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            public: Router::new(),
            webhook: Router::new(),
            api: Router::new(),
            admin: Router::new(),
            list: vec![],
        }
    }
}

impl Routes {
    /// Register a route.
    pub fn add(
        mut self,
        access: Access,
        method: Method,
        path: &'static str,
        handler: MethodRouter<AppState>,
        doc: Doc,
    ) -> Self {
        let r = match access {
            Access::Public => &mut self.public,
            Access::Webhook => &mut self.webhook,
            Access::Api => &mut self.api,
            Access::Admin => &mut self.admin,
        };
        *r = std::mem::take(r).route(path, handler);
        self.list.push(RouteInfo {
            method,
            path,
            access,
            doc,
        });
        self
    }

    /// The router, with auth on the API and admin groups and a body limit everywhere.
    pub fn into_router(self, state: AppState) -> Router {
        let api = self.api.route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ));
        let admin = self.admin.route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_admin_key,
        ));
        Router::new()
            .merge(self.public)
            .merge(self.webhook)
            .merge(api)
            .merge(admin)
            .fallback(|| async {
                ApiError::not_found("no such route; GET /openapi.json lists them")
            })
            .method_not_allowed_fallback(|| async {
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "this route does not take that method; GET /openapi.json lists them",
                )
            })
            .layer(DefaultBodyLimit::max(state.config.body_limit))
            .with_state(state)
    }
}

/// The key a request carries: `Authorization: Bearer <key>` or `X-API-Key: <key>`.
fn presented_key(req: &Request) -> Option<String> {
    let h = req.headers();
    if let Some(v) = h.get("authorization").and_then(|v| v.to_str().ok())
        && let Some(k) = v.strip_prefix("Bearer ")
    {
        return Some(k.trim().to_string());
    }
    h.get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// Constant-time comparison, so a key cannot be guessed byte by byte from response times.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= (a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

async fn require_api_key(
    State(s): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(key) = &s.config.api_key {
        let admin = s.config.admin_key.as_ref().map(|a| a.expose().to_string());
        match presented_key(&req) {
            None => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send the API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                ));
            }
            Some(k)
                if same_secret(&k, key.expose())
                    || admin.as_deref().is_some_and(|a| same_secret(&k, a)) => {}
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "this key is not valid for this server",
                ));
            }
        }
    }
    Ok(next.run(req).await)
}

async fn require_admin_key(
    State(s): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    // Without an admin key, admin operations take the API key; without either, the server
    // only listens on loopback (checked at start-up).
    let wanted = s.config.admin_key.as_ref().or(s.config.api_key.as_ref());
    if let Some(key) = wanted {
        match presented_key(&req) {
            None => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "admin operations need the admin key: `Authorization: Bearer <admin key>`",
                ));
            }
            Some(k) if same_secret(&k, key.expose()) => {}
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "admin operations need the admin key, not the API key",
                ));
            }
        }
    }
    Ok(next.run(req).await)
}

/// The OpenAPI 3.0 document of `routes`.
pub fn openapi(routes: &[RouteInfo]) -> Value {
    let mut paths = serde_json::Map::new();
    for r in routes {
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|p| {
                let name = p.trim_start_matches('*');
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .chain(r.doc.query.iter().map(|q| json!({"name": q, "in": "query", "required": false, "schema": {"type": "string"}})))
            .collect();
        let mut op = json!({
            "summary": r.doc.summary,
            "tags": [r.doc.tag],
            "operationId": format!("{}_{}", r.method.as_str().to_lowercase(), r.path.trim_matches('/').replace(['/', '{', '}', '*', '-'], "_")),
            "parameters": params,
            "responses": {
                r.doc.ok.to_string(): {"description": "success", "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
            },
        });
        match r.access {
            Access::Api => {
                op["security"] = json!([{"apiKey": []}, {"bearer": []}]);
                op["responses"]["401"] = json!({"$ref": "#/components/responses/Error"});
                op["responses"]["403"] = json!({"$ref": "#/components/responses/Error"});
            }
            Access::Admin => {
                op["security"] = json!([{"bearer": []}]);
                op["responses"]["401"] = json!({"$ref": "#/components/responses/Error"});
                op["responses"]["403"] = json!({"$ref": "#/components/responses/Error"});
            }
            Access::Webhook => {
                op["security"] = json!([{"webhookSecret": []}]);
                op["responses"]["401"] = json!({"$ref": "#/components/responses/Error"});
            }
            Access::Public => op["security"] = json!([]),
        }
        if let Some(b) = r.doc.body {
            op["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}},
            });
            op["responses"]["413"] = json!({"$ref": "#/components/responses/Error"});
            op["responses"]["422"] = json!({"$ref": "#/components/responses/Error"});
        }
        let path = r.path.replace("{*", "{");
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[r.method.as_str().to_lowercase()] = op;
    }
    let mut schemas = serde_json::Map::new();
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}),
    );
    for r in routes {
        if let Some(b) = r.doc.body {
            schemas.entry(b.to_string()).or_insert_with(
                || json!({"type": "object", "description": crate::api::schema_doc(b)}),
            );
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Slate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A durable workflow engine running an AI film pipeline. Errors are JSON: {\"error\": {\"code\", \"message\"}}.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {"Error": {"description": "an error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "webhookSecret": {"type": "apiKey", "in": "header", "name": "X-Webhook-Secret"},
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_fully() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }
}
