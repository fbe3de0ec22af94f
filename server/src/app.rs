//! The application: its state, the router with its auth layers, and the OpenAPI document,
//! which is built from the same `routes!` registrations the router serves (so the two cannot
//! drift apart).

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::trace::TraceLayer;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    OpenApi, RefOr, Response as DocResponse, ResponseBuilder, SecurityRequirement,
};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::routes;
use crate::ui::session::{self, Role};

pub use crate::state::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, the API's description).
    Public,
    /// Webhook senders: the shared secret or the path's token, checked by the handler.
    Webhook,
    /// The API key.
    Api,
    /// The admin key.
    Admin,
}

/// A route as registered: what the router serves and the document describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// `get`, `post`...
    pub method: String,
    /// As documented (`/api/projects/{slug}`).
    pub path: String,
    /// Who may call it.
    pub access: Access,
}

/// The route groups, each with the access it needs.
fn groups() -> [(Access, OpenApiRouter<AppState>); 4] {
    [
        (Access::Public, routes::system::public()),
        (Access::Webhook, routes::webhooks::routes()),
        (
            Access::Api,
            OpenApiRouter::new()
                .merge(routes::system::api())
                .merge(routes::projects::routes())
                .merge(routes::qualification::routes())
                .merge(routes::production::routes())
                .merge(routes::scenes::routes())
                .merge(routes::film::routes())
                .merge(routes::sound::routes())
                .merge(routes::approval::routes())
                .merge(routes::story::routes())
                .merge(routes::templates::routes())
                .merge(routes::errors::routes())
                .merge(routes::runs::routes())
                .merge(routes::media::routes()),
        ),
        (Access::Admin, routes::admin::routes()),
    ]
}

/// Every route, with its access.
pub fn route_table() -> Vec<RouteInfo> {
    let mut out = vec![];
    for (access, r) in groups() {
        for (path, item) in &r.get_openapi().paths.paths {
            for (method, _) in operations(item) {
                out.push(RouteInfo {
                    method: method.to_string(),
                    path: doc_path(path),
                    access,
                });
            }
        }
    }
    out
}

/// The router, with auth on the API and admin groups, a body limit and a trace span per
/// request.
pub fn router(state: AppState) -> Router {
    let mut app = Router::new();
    for (access, group) in groups() {
        let (r, _) = group.split_for_parts();
        let r = match access {
            Access::Api => r.route_layer(middleware::from_fn_with_state(
                state.clone(),
                require_api_key,
            )),
            Access::Admin => r.route_layer(middleware::from_fn_with_state(
                state.clone(),
                require_admin_key,
            )),
            Access::Public | Access::Webhook => r,
        };
        app = app.merge(r);
    }
    app.merge(crate::ui::router(state.clone()))
        .fallback(|| async { ApiError::not_found("no such route; GET /openapi.json lists them") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method; GET /openapi.json lists them",
            )
        })
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The OpenAPI 3.1 document.
pub fn openapi() -> OpenApi {
    let mut doc = OpenApi::builder()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("Slate")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "A durable workflow engine running an AI film pipeline. Every error is JSON: \
                     `{\"error\": {\"code\", \"message\"}}`. Send the API key as \
                     `Authorization: Bearer <key>` or `X-API-Key: <key>`; admin routes take the \
                     admin key. The reference page is at `/docs`.",
                ))
                .build(),
        )
        .build();
    for (access, mut group) in groups() {
        for item in group.get_openapi_mut().paths.paths.values_mut() {
            for (_, op) in operations_mut(item) {
                describe(op, access);
            }
        }
        doc.merge(group.into_openapi());
    }
    // axum's catch-all `{*key}` is an ordinary parameter to OpenAPI.
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths.into_iter().map(|(k, v)| (doc_path(&k), v)).collect();
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        "ErrorBody".into(),
        <crate::error::ErrorBody as utoipa::PartialSchema>::schema(),
    );
    components.schemas.insert(
        "ErrorDetail".into(),
        <crate::error::ErrorDetail as utoipa::PartialSchema>::schema(),
    );
    components.add_security_scheme(
        "apiKey",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
    );
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    components.add_security_scheme(
        "webhookSecret",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Webhook-Secret"))),
    );
    doc
}

/// The document as served (built once).
pub fn openapi_text() -> &'static str {
    static TEXT: LazyLock<String> =
        LazyLock::new(|| openapi().to_pretty_json().expect("the document serializes"));
    &TEXT
}

fn doc_path(p: &str) -> String {
    p.replace("{*", "{")
}

fn operations(item: &utoipa::openapi::PathItem) -> Vec<(&'static str, &Operation)> {
    [
        ("get", &item.get),
        ("put", &item.put),
        ("post", &item.post),
        ("delete", &item.delete),
        ("patch", &item.patch),
        ("head", &item.head),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_ref().map(|op| (m, op)))
    .collect()
}

fn operations_mut(item: &mut utoipa::openapi::PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
        ("head", &mut item.head),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
    .collect()
}

fn error_response(description: &str) -> RefOr<DocResponse> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

/// What every operation of a group shares: its security, and the errors any route can give
/// (bad parameters, bodies that do not fit, auth, something broken on our side).
fn describe(op: &mut Operation, access: Access) {
    let responses = &mut op.responses.responses;
    let mut add = |code: &str, what: &str| {
        responses
            .entry(code.to_string())
            .or_insert_with(|| error_response(what));
    };
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let has_body = op.request_body.is_some();
    if has_params || has_body {
        add("400", "A parameter or the body is malformed");
        add("422", "A value does not fit");
    }
    if has_body {
        add("413", "The body is larger than the server accepts");
        add("415", "The body is not sent as application/json");
    }
    add("500", "Something went wrong on our side (it is logged)");
    let security = match access {
        Access::Public => vec![SecurityRequirement::default()],
        Access::Webhook => {
            add("401", "Neither the webhook secret nor this path's token");
            vec![
                SecurityRequirement::new("webhookSecret", Vec::<String>::new()),
                SecurityRequirement::default(),
            ]
        }
        Access::Api => {
            add("401", "No API key");
            add("403", "A key that is not valid here");
            vec![
                SecurityRequirement::new("bearer", Vec::<String>::new()),
                SecurityRequirement::new("apiKey", Vec::<String>::new()),
            ]
        }
        Access::Admin => {
            add("401", "No admin key");
            add("403", "Not the admin key");
            vec![SecurityRequirement::new("bearer", Vec::<String>::new())]
        }
    };
    op.security = Some(security);
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

pub use slate_activities::config::same_secret;

/// A request signed in through the dashboard: its role, once a request that changes state has
/// shown the session's CSRF token (decision 0013). `None` without a valid session cookie.
fn session_role(s: &AppState, req: &Request) -> Result<Option<Role>, ApiError> {
    let Some((role, csrf)) = session::from_headers(&s.config, req.headers()) else {
        return Ok(None);
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let sent = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !same_secret(sent, &csrf) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "a request that changes something came with the dashboard's session but without its X-CSRF-Token header; reload the page and try again",
            ));
        }
    }
    Ok(Some(role))
}

/// A `/media/{key}` request carrying a signature (`?expires=&sig=`, the URLs handed to the
/// spec's services): `Some(Ok)` when it signs this key and has not expired, `Some(Err)` when
/// it does not, `None` when the request carries none.
fn signed_media(s: &AppState, req: &Request) -> Option<Result<(), ApiError>> {
    let key = req.uri().path().strip_prefix("/media/")?;
    let q = req.uri().query()?;
    let get = |name: &str| {
        q.split('&')
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
    };
    let sig = get("sig")?;
    let refuse = |m: &str| ApiError::new(StatusCode::FORBIDDEN, "forbidden", m);
    let Some(secret) = &s.film.studio.settings.media_secret else {
        return Some(Err(refuse("this server signs no media URLs")));
    };
    let Some(expires) = get("expires").and_then(|e| e.parse::<i64>().ok()) else {
        return Some(Err(refuse(
            "a signed media URL needs `expires` (Unix seconds)",
        )));
    };
    let now = chrono::Utc::now().timestamp();
    if expires < now {
        return Some(Err(refuse(
            "this media URL has expired; the step that handed it out makes a new one when it runs again",
        )));
    }
    if !slate_activities::blob::media_signature_valid(secret, key, expires, sig, now) {
        return Some(Err(refuse(
            "this media URL's signature does not match its key and expiry",
        )));
    }
    Some(Ok(()))
}

async fn require_api_key(
    State(s): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(verdict) = signed_media(&s, &req) {
        verdict?;
        return Ok(next.run(req).await);
    }
    if let Some(key) = &s.config.api_key {
        let admin = s.config.admin_key.as_ref().map(|a| a.expose().to_string());
        match presented_key(&req) {
            None if session_role(&s, &req)?.is_some() => {}
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
            None => match session_role(&s, &req)? {
                Some(Role::Admin) => {}
                Some(Role::User) => {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        "admin operations need the admin key: sign in with it",
                    ));
                }
                None => {
                    return Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "admin operations need the admin key: `Authorization: Bearer <admin key>`",
                    ));
                }
            },
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
