//! The dashboard: the spec's pages, rendered by the server (maud), served by `slate serve` at
//! `/` under the API's auth (decision 0013).
//!
//! Pages read through the same repository and engine calls as the API; every change a page
//! makes goes through the JSON API (`assets/app.js`), so the dashboard can do nothing the API
//! would refuse and shows the API's own messages. Live regions (`data-live`) are re-rendered by
//! fetching the page again when the server-sent-events stream (`/ui/live`) says something the
//! page watches has moved.

pub mod live;
mod pages;
pub mod session;
mod view;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

/// The dashboard's routes (not part of the OpenAPI document: they answer HTML; their data and
/// every action are API routes).
pub fn router(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(pages::projects::list))
        .route("/projects/{slug}", get(pages::project::show))
        .route(
            "/projects/{slug}/qualification",
            get(pages::qualification::show),
        )
        .route("/projects/{slug}/scenes", get(pages::scenes::grid))
        .route("/projects/{slug}/film", get(pages::film::show))
        .route("/projects/{slug}/story", get(pages::story::show))
        .route("/scenes/{id}", get(pages::scenes::show))
        .route("/runs", get(pages::runs::list))
        .route("/runs/{id}", get(pages::runs::show))
        .route("/templates", get(pages::templates::list))
        .route("/system", get(pages::system::show))
        .route("/ui/live", get(live::stream))
        .route_layer(middleware::from_fn_with_state(state, require_viewer));
    Router::new()
        .merge(pages)
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/ui/assets/{file}", get(asset))
}

/// Pages need a viewer: without a session (when the server has a key), a page sends the
/// browser to sign in and the live stream answers 401.
async fn require_viewer(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    match session::viewer(&s.config, req.headers()) {
        Some(v) => {
            req.extensions_mut().insert(v);
            next.run(req).await
        }
        None if req.uri().path().starts_with("/ui/") => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in at /login first",
        )
        .into_response(),
        None => {
            let next = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            Redirect::to(&format!("/login?next={}", urlencode(next))).into_response()
        }
    }
}

/// A value for one path segment (a document id, a template's name): everything but unreserved
/// characters encoded, `/` included.
pub(crate) fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where to go after signing in: only a path on this server (never `//elsewhere`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".into(),
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login_page(State(s): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    if s.config.api_key.is_none() {
        return Redirect::to(&safe_next(q.next.as_deref())).into_response();
    }
    view::bare("Sign in", login_form(q.next.as_deref(), None)).into_response()
}

fn login_form(next: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        main.signin {
            h1 { "Slate" }
            p.muted { "Sign in with the server's API key, or its admin key to also cancel, retry and reset runs." }
            @if let Some(e) = error { p.alert role="alert" { (e) } }
            form method="post" action="/login" {
                input type="hidden" name="next" value=(safe_next(next));
                label { "Key" input type="password" name="key" autocomplete="current-password" required autofocus; }
                button type="submit" { "Sign in" }
            }
        }
    }
}

#[derive(Deserialize)]
struct LoginForm {
    key: String,
    next: Option<String>,
}

/// A sign-in posted from another site is refused: the browser says where the form came from.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

async fn login(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            view::bare(
                "Sign in",
                login_form(
                    f.next.as_deref(),
                    Some("This sign-in came from another site."),
                ),
            ),
        )
            .into_response();
    }
    let Some(role) = session::role_for_key(&s.config, f.key.trim()) else {
        return (
            StatusCode::UNAUTHORIZED,
            view::bare(
                "Sign in",
                login_form(
                    f.next.as_deref(),
                    Some("That key is not valid for this server."),
                ),
            ),
        )
            .into_response();
    };
    let Some(cookie) = session::issue(&s.config, role) else {
        return Redirect::to("/").into_response();
    };
    let mut r = Redirect::to(&safe_next(f.next.as_deref())).into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&s.config, &cookie)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout() -> Response {
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return ApiError::not_found(format!("no asset `{file}`")).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            // The assets change with the binary; a short cache keeps an upgrade visible.
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// A page's failure, shown as a readable page with what to do, never a stack or a blank page.
pub struct UiError(ApiError);

impl<E> From<E> for UiError
where
    ApiError: From<E>,
{
    fn from(e: E) -> Self {
        UiError(ApiError::from(e))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let e = self.0;
        if e.status.is_server_error() {
            tracing::error!(code = e.code, message = %e.message, "a dashboard page failed");
        }
        let title = match e.status {
            StatusCode::NOT_FOUND => "Not found",
            s if s.is_client_error() => "Not possible",
            _ => "Something went wrong",
        };
        (
            e.status,
            view::bare(
                title,
                html! {
                    main.signin {
                        h1 { (title) }
                        p.alert role="alert" { (e.message) }
                        p { a href="/" { "Back to the projects" } }
                    }
                },
            ),
        )
            .into_response()
    }
}

/// What a page handler returns.
pub type UiResult = Result<Markup, UiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_never_sends_the_browser_elsewhere() {
        assert_eq!(
            safe_next(Some("/runs?status=failed")),
            "/runs?status=failed"
        );
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "runs"] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn path_segments_are_encoded_whole() {
        assert_eq!(
            segment("Character Scene Prompt"),
            "Character%20Scene%20Prompt"
        );
        assert_eq!(segment("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(segment("mira-01_x.y~"), "mira-01_x.y~");
    }

    #[test]
    fn origins_are_compared_with_the_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
    }
}
